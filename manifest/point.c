/* The restore point of a run's manifest by external sort. See manifest/point.h.
 * Owns: reading object/deleted records, the sorted run files and their merge. Must not: know of S3, hold more
 * than max_records records in memory. */
#include "manifest/point.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "manifest/internal.h"

#define DEFAULT_MAX_RECORDS 100000
#define NFIELDS 7 /* key, target_key, etag, target_etag, last_modified, version_id, the record's line */

/* One event: an object record or a deletion, in manifest order (seq). */
struct event {
    char *f[NFIELDS]; /* NULL fields allowed (version_id; all but key/target_key for a deletion) */
    uint64_t size;
    uint64_t seq;
    bool deleted;
};

/* A sorted run file and its current head. */
struct run {
    FILE *f;
    struct event head;
    bool have;
};

struct manifest_point {
    struct run *runs;
    int nruns;
    bool expect; /* the last manifest describes its restore point: the result must match it */
    uint64_t expect_entries;
    char expect_digest[40];
    struct manifest_point_stats st;
    struct event cur; /* the entry last returned */
    struct manifest_point_entry out;
    char tmpdir[4096];
};

static void event_clear(struct event *e)
{
    for (int i = 0; i < NFIELDS; i++) free(e->f[i]);
    memset(e, 0, sizeof *e);
}

static int event_cmp(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    int c = strcmp(x->f[0], y->f[0]);
    if (c) return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- run files: each field as a 32-bit length (0xffffffff = NULL) and its bytes ---- */

static bool put_field(FILE *f, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
    return fwrite(&n, sizeof n, 1, f) == 1 && (!s || fwrite(s, 1, n, f) == n);
}

static bool put_event(FILE *f, const struct event *e)
{
    unsigned char del = e->deleted;
    for (int i = 0; i < NFIELDS; i++)
        if (!put_field(f, e->f[i])) return false;
    return fwrite(&e->size, sizeof e->size, 1, f) == 1 && fwrite(&del, 1, 1, f) == 1;
}

/* 1 read, 0 end of file, -1 error. */
static int get_event(FILE *f, struct event *e)
{
    event_clear(e);
    for (int i = 0; i < NFIELDS; i++) {
        uint32_t n;
        if (fread(&n, sizeof n, 1, f) != 1) {
            if (i == 0 && feof(f)) return 0;
            return -1;
        }
        if (n == UINT32_MAX) continue;
        if (n > 1u << 20 || !(e->f[i] = malloc((size_t)n + 1))) return -1;
        if (n && fread(e->f[i], 1, n, f) != n) return -1;
        e->f[i][n] = '\0';
    }
    unsigned char del;
    if (fread(&e->size, sizeof e->size, 1, f) != 1 || fread(&del, 1, 1, f) != 1) return -1;
    e->deleted = del;
    return e->f[0] && e->f[1] ? 1 : -1;
}

static FILE *temp_run(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/replicate-point-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    unlink(path); /* nothing is left behind, whatever happens to the process */
    FILE *f = fdopen(fd, "w+");
    if (!f) close(fd);
    return f;
}

/* Sorts the events in memory, keeps each key's last one, and writes them as a new run. */
static int flush_run(struct manifest_point *p, struct event *ev, size_t n, char *err, size_t errlen)
{
    qsort(ev, n, sizeof *ev, event_cmp);
    struct run *nr = realloc(p->runs, (size_t)(p->nruns + 1) * sizeof *nr);
    if (!nr) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    p->runs = nr;
    struct run *r = &p->runs[p->nruns];
    memset(r, 0, sizeof *r);
    if (!(r->f = temp_run(p->tmpdir))) {
        set_err(err, errlen, "cannot create a temporary file in %s: %s", p->tmpdir, strerror(errno));
        return -1;
    }
    p->nruns++;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(ev[i].f[0], ev[i + 1].f[0]) == 0) continue; /* a later event for the key */
        if (!put_event(r->f, &ev[i])) {
            set_err(err, errlen, "writing a temporary file in %s: %s", p->tmpdir, strerror(errno));
            return -1;
        }
    }
    if (fflush(r->f) != 0) {
        set_err(err, errlen, "writing a temporary file in %s: %s", p->tmpdir, strerror(errno));
        return -1;
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int take_record(struct event *e, const struct manifest_record *rec, const char *line, uint64_t seq)
{
    memset(e, 0, sizeof *e);
    e->seq = seq;
    if (rec->type == MANIFEST_REC_DELETED) {
        e->deleted = true;
        e->f[0] = strdup(rec->deleted.key);
        e->f[1] = strdup(rec->deleted.target_key);
        return e->f[0] && e->f[1] ? 0 : -1;
    }
    const struct manifest_object *o = &rec->object;
    const char *v[NFIELDS] = {o->key, o->target_key, o->etag, o->target_etag, o->last_modified, o->version_id, line};
    for (int i = 0; i < NFIELDS; i++)
        if (v[i] && !(e->f[i] = dup_or_null(v[i]))) return -1;
    e->size = o->size;
    return 0;
}

/* Checks file i's header against the chain: the first is a full manifest, each later one a delta on the one
 * before it. NULL when it fits, else why not. */
static const char *link_problem(const struct manifest_header *h, size_t i, const char *const *names)
{
    if (i == 0) return h->base ? "it is a delta on another run's manifest: its chain must be read with it" : NULL;
    if (!h->base) return "a full manifest where a delta was expected";
    if (names && names[i - 1] && strcmp(h->base, names[i - 1]) != 0) return "its base is another manifest";
    return NULL;
}

/* Reads the files in order into sorted runs (one sequence over all of them, so a later file's event wins). */
static int read_manifests(struct manifest_point *p, const char *const *paths, const char *const *names, size_t nf,
                          size_t max, char *err, size_t errlen)
{
    struct event *ev = calloc(max, sizeof *ev);
    size_t n = 0;
    uint64_t seq = 0;
    int rc = ev ? 0 : -1;
    if (!ev) set_err(err, errlen, "out of memory");
    for (size_t fi = 0; rc == 0 && fi < nf; fi++) {
        const char *shown = names && names[fi] ? names[fi] : paths[fi];
        struct manifest_reader *r = manifest_reader_open(paths[fi], err, errlen);
        if (!r) {
            rc = -1;
            break;
        }
        struct manifest_record rec;
        bool header = false;
        int got;
        while (rc == 0 && (got = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
            if (got < 0) {
                p->st.corrupt++;
                continue;
            }
            if (rec.type == MANIFEST_REC_HEADER && !header) {
                header = true;
                const char *why = link_problem(&rec.header, fi, names);
                if (why) {
                    set_err(err, errlen, "manifest %s: %s", shown, why);
                    rc = -1;
                }
                if (fi + 1 == nf && rec.header.have_point) {
                    p->expect = true;
                    p->expect_entries = rec.header.point_entries;
                    snprintf(p->expect_digest, sizeof p->expect_digest, "%s", rec.header.point_digest);
                }
                continue;
            }
            if (rec.type != MANIFEST_REC_OBJECT && rec.type != MANIFEST_REC_DELETED) continue;
            if (!header) { /* a manifest whose header is corrupt could be a delta: never read it as a whole */
                set_err(err, errlen, "manifest %s: no valid header before its records", shown);
                rc = -1;
                break;
            }
            if (rec.type == MANIFEST_REC_OBJECT) p->st.records++;
            else p->st.deleted++;
            if (take_record(&ev[n], &rec, manifest_reader_line(r), seq++) != 0) {
                event_clear(&ev[n]);
                set_err(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            if (++n == max) {
                rc = flush_run(p, ev, n, err, errlen);
                for (size_t i = 0; i < n; i++) event_clear(&ev[i]);
                n = 0;
            }
        }
        manifest_reader_close(r);
        if (rc == 0 && !header) {
            set_err(err, errlen, "manifest %s: no valid header", shown);
            rc = -1;
        }
    }
    if (rc == 0 && (n || p->nruns == 0)) rc = flush_run(p, ev, n, err, errlen);
    for (size_t i = 0; ev && i < n; i++) event_clear(&ev[i]);
    free(ev);
    return rc;
}

int manifest_point_rewind(struct manifest_point *p)
{
    event_clear(&p->cur);
    for (int i = 0; i < p->nruns; i++) {
        struct run *r = &p->runs[i];
        event_clear(&r->head);
        if (fseek(r->f, 0, SEEK_SET) != 0) return -1;
        int g = get_event(r->f, &r->head);
        if (g < 0) return -1;
        r->have = g == 1;
    }
    return 0;
}

int manifest_point_next(struct manifest_point *p, const struct manifest_point_entry **out, char *err,
                        size_t errlen)
{
    for (;;) {
        /* the smallest key among the heads; for a key in several runs, the last run's event is the latest */
        int best = -1;
        for (int i = 0; i < p->nruns; i++) {
            if (!p->runs[i].have) continue;
            if (best < 0 || strcmp(p->runs[i].head.f[0], p->runs[best].head.f[0]) <= 0) best = i;
        }
        if (best < 0) return 0;
        event_clear(&p->cur);
        p->cur = p->runs[best].head;
        memset(&p->runs[best].head, 0, sizeof p->runs[best].head);
        for (int i = 0; i < p->nruns; i++) {
            struct run *r = &p->runs[i];
            if (!r->have) continue;
            if (i != best && strcmp(r->head.f[0], p->cur.f[0]) != 0) continue;
            if (i != best) event_clear(&r->head);
            int g = get_event(r->f, &r->head);
            if (g < 0) {
                set_err(err, errlen, "reading a temporary file: %s", errno ? strerror(errno) : "corrupt");
                return -1;
            }
            r->have = g == 1;
        }
        if (p->cur.deleted) continue;
        struct event *e = &p->cur;
        p->out = (struct manifest_point_entry){.key = e->f[0], .target_key = e->f[1], .etag = e->f[2] ? e->f[2] : "",
                                               .target_etag = e->f[3] ? e->f[3] : (e->f[2] ? e->f[2] : ""),
                                               .last_modified = e->f[4] ? e->f[4] : "", .version_id = e->f[5],
                                               .record = e->f[6] ? e->f[6] : "", .size = e->size};
        *out = &p->out;
        return 1;
    }
}

static void digest_add(uint64_t *h, const char *s)
{
    for (; *s; s++)
        *h = (*h ^ (unsigned char)*s) * 1099511628211ULL;
    *h = (*h ^ '\n') * 1099511628211ULL;
}

struct manifest_point *manifest_point_build_chain(const char *const *paths, const char *const *names, size_t n,
                                                  const char *tmpdir, size_t max_records, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!paths || n == 0) {
        set_err(err, errlen, "no manifest to read");
        return NULL;
    }
    struct manifest_point *p = calloc(1, sizeof *p);
    if (!p) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (!tmpdir || !tmpdir[0]) tmpdir = getenv("TMPDIR");
    snprintf(p->tmpdir, sizeof p->tmpdir, "%s", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (read_manifests(p, paths, names, n, max_records ? max_records : DEFAULT_MAX_RECORDS, err, errlen) != 0 ||
        manifest_point_rewind(p) != 0) {
        if (err && !err[0]) set_err(err, errlen, "reading %s: %s", paths[0], strerror(errno));
        manifest_point_free(p);
        return NULL;
    }
    p->st.runs = p->nruns;
    const struct manifest_point_entry *e;
    uint64_t h = 14695981039346656037ULL;
    int g;
    while ((g = manifest_point_next(p, &e, err, errlen)) == 1) {
        p->st.entries++;
        p->st.bytes += e->size;
        if (!e->version_id) p->st.without_version++;
        digest_add(&h, e->record);
    }
    snprintf(p->st.digest, sizeof p->st.digest, "%016llx", (unsigned long long)h);
    if (g < 0 || manifest_point_rewind(p) != 0) {
        manifest_point_free(p);
        return NULL;
    }
    if (p->expect && (p->expect_entries != p->st.entries || strcmp(p->expect_digest, p->st.digest) != 0)) {
        set_err(err, errlen,
                "the manifests read give a restore point of %llu objects (digest %s), but the last one recorded "
                "%llu (digest %s): a manifest of the chain is corrupt or not the one it names",
                (unsigned long long)p->st.entries, p->st.digest, (unsigned long long)p->expect_entries,
                p->expect_digest);
        manifest_point_free(p);
        return NULL;
    }
    return p;
}

struct manifest_point *manifest_point_build(const char *path, const char *tmpdir, size_t max_records, char *err,
                                            size_t errlen)
{
    return manifest_point_build_chain(&path, NULL, 1, tmpdir, max_records, err, errlen);
}

const struct manifest_point_stats *manifest_point_stats(const struct manifest_point *p)
{
    return &p->st;
}

void manifest_point_free(struct manifest_point *p)
{
    if (!p) return;
    event_clear(&p->cur);
    for (int i = 0; i < p->nruns; i++) {
        event_clear(&p->runs[i].head);
        if (p->runs[i].f) fclose(p->runs[i].f);
    }
    free(p->runs);
    free(p);
}
