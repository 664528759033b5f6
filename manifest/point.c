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
    long start; /* where its events begin (a saved point has a header before them) */
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
    int *heap; /* run indexes, a binary min-heap on (head key, newest run first) */
    int nheap;
    FILE *into;      /* with a builder finishing into a saved point: that file, its header written */
    long into_stats; /* where the header's stats are in it */
    char *header; /* a builder's summary lines (header, then pass and trailer lines), or NULL */
    char **tail;
    size_t ntail;
    char tmpdir[4096];
};

/* A restore point being built: events in memory up to max, then sorted runs in p. */
struct manifest_point_builder {
    struct manifest_point *p;
    struct event *ev;
    size_t n, max;
    uint64_t seq;
    bool failed;
    char err[256];
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
    return e->f[0] ? 1 : -1;
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
        if (strcmp(rec->deleted.target_key, rec->deleted.key) != 0) e->f[1] = strdup(rec->deleted.target_key);
        return e->f[0] && (e->f[1] || !strcmp(rec->deleted.target_key, rec->deleted.key)) ? 0 : -1;
    }
    /* a target key or ETag equal to the source's is kept once (NULL), as the manifest line does */
    const struct manifest_object *o = &rec->object;
    const char *tk = strcmp(o->target_key, o->key) != 0 ? o->target_key : NULL;
    const char *te = o->target_etag && o->etag && strcmp(o->target_etag, o->etag) != 0 ? o->target_etag : NULL;
    const char *v[NFIELDS] = {o->key, tk, o->etag, te, o->last_modified, o->version_id, line};
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

/* ---- the builder ---- */

static struct manifest_point *point_new(const char *tmpdir)
{
    struct manifest_point *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (!tmpdir || !tmpdir[0]) tmpdir = getenv("TMPDIR");
    snprintf(p->tmpdir, sizeof p->tmpdir, "%s", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    return p;
}

struct manifest_point_builder *manifest_point_builder_new(const char *tmpdir, size_t max_records)
{
    struct manifest_point_builder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->max = max_records ? max_records : DEFAULT_MAX_RECORDS;
    if (!(b->p = point_new(tmpdir)) || !(b->ev = calloc(b->max, sizeof *b->ev))) {
        manifest_point_builder_free(b);
        return NULL;
    }
    return b;
}

static void builder_fail(struct manifest_point_builder *b, const char *why)
{
    if (!b->failed) snprintf(b->err, sizeof b->err, "%s", why);
    b->failed = true;
}

/* An object or deleted record, in manifest order. 0, or -1 (the builder has failed: out of memory, or a
 * temporary file could not be written). */
static int builder_take(struct manifest_point_builder *b, const struct manifest_record *rec, const char *line)
{
    if (b->failed) return -1;
    if (rec->type == MANIFEST_REC_OBJECT) b->p->st.records++;
    else b->p->st.deleted++;
    if (take_record(&b->ev[b->n], rec, line, b->seq++) != 0) {
        event_clear(&b->ev[b->n]);
        builder_fail(b, "out of memory");
        return -1;
    }
    if (++b->n == b->max) {
        char err[256] = "";
        int rc = flush_run(b->p, b->ev, b->n, err, sizeof err);
        for (size_t i = 0; i < b->n; i++) event_clear(&b->ev[i]);
        b->n = 0;
        if (rc != 0) {
            builder_fail(b, err);
            return -1;
        }
    }
    return 0;
}

static int keep_line(struct manifest_point *p, const struct manifest_record *rec, const char *line)
{
    if (rec->type == MANIFEST_REC_HEADER) {
        if (!p->header && !(p->header = strdup(line))) return -1;
        return 0;
    }
    char **t = realloc(p->tail, (p->ntail + 1) * sizeof *t);
    if (!t) return -1;
    p->tail = t;
    if (!(t[p->ntail] = strdup(line))) return -1;
    p->ntail++;
    return 0;
}

void manifest_point_builder_tee(void *builder, const struct manifest_record *rec, const char *line)
{
    struct manifest_point_builder *b = builder;
    if (!b || b->failed) return;
    if (rec->type == MANIFEST_REC_OBJECT || rec->type == MANIFEST_REC_DELETED) builder_take(b, rec, line);
    else if (keep_line(b->p, rec, line) != 0) builder_fail(b, "out of memory");
}

void manifest_point_builder_free(struct manifest_point_builder *b)
{
    if (!b) return;
    for (size_t i = 0; b->ev && i < b->n; i++) event_clear(&b->ev[i]);
    free(b->ev);
    manifest_point_free(b->p);
    free(b);
}

static struct manifest_point *point_finish(struct manifest_point *p, bool merge, char *err, size_t errlen);

struct manifest_point *manifest_point_builder_finish(struct manifest_point_builder *b, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!b) {
        set_err(err, errlen, "no restore point was being built");
        return NULL;
    }
    if (!b->failed && (b->n || b->p->nruns == 0)) {
        char ferr[256] = "";
        if (flush_run(b->p, b->ev, b->n, ferr, sizeof ferr) != 0) builder_fail(b, ferr);
    }
    if (b->failed) {
        set_err(err, errlen, "%s", b->err);
        manifest_point_builder_free(b);
        return NULL;
    }
    struct manifest_point *p = b->p;
    b->p = NULL;
    manifest_point_builder_free(b);
    /* one run is already in key order, one event a key: merging it would only copy it */
    return point_finish(p, p->nruns > 1 || p->into, err, errlen);
}

/* Reads the files in order into b (one sequence over all of them, so a later file's event wins). */
static int read_manifests(struct manifest_point_builder *b, const char *const *paths, const char *const *names,
                          size_t nf, char *err, size_t errlen)
{
    struct manifest_point *p = b->p;
    int rc = 0;
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
            if (builder_take(b, &rec, manifest_reader_line(r)) != 0) {
                set_err(err, errlen, "%s", b->err);
                rc = -1;
            }
        }
        manifest_reader_close(r);
        if (rc == 0 && !header) {
            set_err(err, errlen, "manifest %s: no valid header", shown);
            rc = -1;
        }
    }
    return rc;
}

/* ---- the merge: a binary heap of the runs by their heads; for one key in several runs the last run's event is
 * the latest (runs are written in manifest order), so it sorts first ---- */

static bool run_before(const struct manifest_point *p, int a, int b)
{
    int c = strcmp(p->runs[a].head.f[0], p->runs[b].head.f[0]);
    return c < 0 || (c == 0 && a > b);
}

static void heap_down(struct manifest_point *p, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->nheap && run_before(p, p->heap[l], p->heap[m])) m = l;
        if (r < p->nheap && run_before(p, p->heap[r], p->heap[m])) m = r;
        if (m == i) return;
        int t = p->heap[i];
        p->heap[i] = p->heap[m];
        p->heap[m] = t;
        i = m;
    }
}

/* Reads run i's next head: the heap's top is i; it stays there or leaves. 0, or -1. */
static int heap_advance_top(struct manifest_point *p)
{
    struct run *r = &p->runs[p->heap[0]];
    int g = get_event(r->f, &r->head);
    if (g < 0) return -1;
    r->have = g == 1;
    if (!r->have) p->heap[0] = p->heap[--p->nheap];
    if (p->nheap) heap_down(p, 0);
    return 0;
}

int manifest_point_rewind(struct manifest_point *p)
{
    event_clear(&p->cur);
    free(p->heap);
    p->nheap = 0;
    if (!(p->heap = malloc(((size_t)p->nruns + 1) * sizeof *p->heap))) return -1;
    for (int i = 0; i < p->nruns; i++) {
        struct run *r = &p->runs[i];
        event_clear(&r->head);
        if (fseek(r->f, r->start, SEEK_SET) != 0) return -1;
        int g = get_event(r->f, &r->head);
        if (g < 0) return -1;
        r->have = g == 1;
        if (r->have) p->heap[p->nheap++] = i;
    }
    for (int i = p->nheap / 2; i-- > 0;)
        heap_down(p, i);
    return 0;
}

int manifest_point_next(struct manifest_point *p, const struct manifest_point_entry **out, char *err,
                        size_t errlen)
{
    for (;;) {
        if (p->nheap == 0) return 0;
        struct run *top = &p->runs[p->heap[0]];
        event_clear(&p->cur);
        p->cur = top->head;
        memset(&top->head, 0, sizeof top->head);
        /* the older events of the same key in other runs are superseded */
        int g = heap_advance_top(p);
        while (g == 0 && p->nheap && strcmp(p->runs[p->heap[0]].head.f[0], p->cur.f[0]) == 0)
            g = heap_advance_top(p);
        if (g != 0) {
            set_err(err, errlen, "reading a temporary file: %s", errno ? strerror(errno) : "corrupt");
            return -1;
        }
        if (p->cur.deleted) continue;
        struct event *e = &p->cur;
        p->out = (struct manifest_point_entry){.key = e->f[0], .target_key = e->f[1] ? e->f[1] : e->f[0], .etag = e->f[2] ? e->f[2] : "",
                                               .target_etag = e->f[3] ? e->f[3] : (e->f[2] ? e->f[2] : ""),
                                               .last_modified = e->f[4] ? e->f[4] : "", .version_id = e->f[5],
                                               .record = e->f[6] ? e->f[6] : "", .size = e->size};
        *out = &p->out;
        return 1;
    }
}

static void runs_close(struct manifest_point *p)
{
    for (int i = 0; i < p->nruns; i++) {
        event_clear(&p->runs[i].head);
        if (p->runs[i].f) fclose(p->runs[i].f);
    }
    free(p->runs);
    p->runs = NULL;
    p->nruns = 0;
    free(p->heap);
    p->heap = NULL;
    p->nheap = 0;
}

static void digest_add(uint64_t *h, const char *s)
{
    for (; *s; s++)
        *h = (*h ^ (unsigned char)*s) * 1099511628211ULL;
    *h = (*h ^ '\n') * 1099511628211ULL;
}

/* Counts the entries and computes the digest; with merge, also replaces the runs by one: their merge, in key
 * order, without deletions, so that later reads are one sequential file however often the point is rewound. */
static bool write_stats(FILE *f, const struct manifest_point_stats *st);

static int consolidate(struct manifest_point *p, bool merge, char *err, size_t errlen)
{
    FILE *m = p->into ? p->into : merge ? temp_run(p->tmpdir) : NULL;
    long start = p->into ? ftell(p->into) : 0;
    p->into = NULL;
    if (merge && !m) {
        set_err(err, errlen, "cannot create a temporary file in %s: %s", p->tmpdir, strerror(errno));
        return -1;
    }
    const struct manifest_point_entry *e;
    uint64_t h = 14695981039346656037ULL;
    int g;
    bool wrote = true;
    while (wrote && (g = manifest_point_next(p, &e, err, errlen)) == 1) {
        p->st.entries++;
        p->st.bytes += e->size;
        if (!e->version_id) p->st.without_version++;
        digest_add(&h, e->record);
        if (m) wrote = put_event(m, &p->cur);
    }
    snprintf(p->st.digest, sizeof p->st.digest, "%016llx", (unsigned long long)h);
    if (m && start && wrote) /* a saved point: its stats, now known, into its header */
        wrote = fseek(m, p->into_stats, SEEK_SET) == 0 && write_stats(m, &p->st) && fseek(m, 0, SEEK_END) == 0;
    if (m && (!wrote || fflush(m) != 0)) {
        set_err(err, errlen, "writing a temporary file in %s: %s", p->tmpdir, strerror(errno));
        g = -1;
    }
    if (g < 0 || !m) {
        if (m) fclose(m);
        if (g < 0) return -1;
        if (manifest_point_rewind(p) != 0) {
            set_err(err, errlen, "reading a temporary file: %s", strerror(errno));
            return -1;
        }
        return 0;
    }
    runs_close(p);
    if (!(p->runs = calloc(1, sizeof *p->runs))) {
        fclose(m);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    p->runs[0].f = m;
    p->runs[0].start = start;
    p->nruns = 1;
    if (manifest_point_rewind(p) != 0) {
        set_err(err, errlen, "reading a temporary file: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The runs written: merged into one (unless merge is false), counted, and checked against what the last
 * manifest described. */
static struct manifest_point *point_finish(struct manifest_point *p, bool merge, char *err, size_t errlen)
{
    if (manifest_point_rewind(p) != 0) {
        set_err(err, errlen, "reading a temporary file: %s", strerror(errno));
        manifest_point_free(p);
        return NULL;
    }
    p->st.runs = p->nruns;
    if (consolidate(p, merge, err, errlen) != 0) {
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

struct manifest_point *manifest_point_build_chain(const char *const *paths, const char *const *names, size_t n,
                                                  const char *tmpdir, size_t max_records, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!paths || n == 0) {
        set_err(err, errlen, "no manifest to read");
        return NULL;
    }
    struct manifest_point_builder *b = manifest_point_builder_new(tmpdir, max_records);
    if (!b) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (read_manifests(b, paths, names, n, err, errlen) != 0) {
        if (err && !err[0]) set_err(err, errlen, "reading %s: %s", paths[0], strerror(errno));
        manifest_point_builder_free(b);
        return NULL;
    }
    return manifest_point_builder_finish(b, err, errlen);
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
    runs_close(p);
    if (p->into) fclose(p->into);
    free(p->header);
    for (size_t i = 0; i < p->ntail; i++) free(p->tail[i]);
    free(p->tail);
    free(p);
}

const char *manifest_point_lines(const struct manifest_point *p, const char *const **tail, size_t *ntail)
{
    *tail = (const char *const *)p->tail;
    *ntail = p->ntail;
    return p->header;
}

/* ---- saved points: "replicate-point 1\n", the caller's meta text, the stats, then the entries as in a run
 * file. Read back, every entry is counted and hashed again before the point is used. ---- */

#define SAVED_MAGIC "replicate-point 1\n"

static bool write_stats(FILE *f, const struct manifest_point_stats *st)
{
    const uint64_t n[] = {st->records, st->deleted, st->entries, st->without_version, st->bytes};
    char digest[sizeof st->digest] = "0000000000000000"; /* 16 hex digits: the header's size is fixed */
    if (st->digest[0]) memcpy(digest, st->digest, sizeof digest);
    return fwrite(n, sizeof n, 1, f) == 1 && put_field(f, digest);
}

/* The header of a saved point; *stats_at: where its stats are (written again once known). */
static bool write_head(FILE *f, const char *meta, const struct manifest_point_stats *st, long *stats_at)
{
    if (fputs(SAVED_MAGIC, f) < 0 || !put_field(f, meta ? meta : "")) return false;
    *stats_at = ftell(f);
    return *stats_at > 0 && write_stats(f, st);
}

int manifest_point_save(struct manifest_point *p, const char *path, const char *meta, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    long at;
    bool ok = write_head(f, meta, &p->st, &at) && manifest_point_rewind(p) == 0;
    const struct manifest_point_entry *e;
    int g = 0;
    while (ok && (g = manifest_point_next(p, &e, err, errlen)) == 1)
        ok = put_event(f, &p->cur);
    ok = ok && g == 0 && manifest_point_rewind(p) == 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = false;
    if (fclose(f) != 0) ok = false;
    if (!ok) {
        if (g >= 0) set_err(err, errlen, "writing %s: %s", path, strerror(errno ? errno : EIO));
        unlink(path);
        return -1;
    }
    return 0;
}

struct manifest_point *manifest_point_builder_finish_saved(struct manifest_point_builder *b, const char *path,
                                                           const char *meta, char *err, size_t errlen)
{
    FILE *f = b && !b->failed && path ? fopen(path, "w+") : NULL;
    long at = 0;
    if (f && !write_head(f, meta, &b->p->st, &at)) {
        fclose(f);
        f = NULL;
    }
    if (!f) {
        if (path) unlink(path);
        return manifest_point_builder_finish(b, err, errlen);
    }
    b->p->into = f;
    b->p->into_stats = at;
    struct manifest_point *p = manifest_point_builder_finish(b, err, errlen); /* merges into f */
    if (!p || fflush(p->runs[0].f) != 0 || fsync(fileno(p->runs[0].f)) != 0) {
        if (p) set_err(err, errlen, "writing %s: %s", path, strerror(errno));
        manifest_point_free(p);
        unlink(path);
        return NULL;
    }
    return p;
}

struct manifest_point *manifest_point_open(const char *path, char **meta, char *err, size_t errlen)
{
    *meta = NULL;
    struct manifest_point *p = point_new(NULL);
    FILE *f = fopen(path, "r");
    if (!p || !f) {
        set_err(err, errlen, "cannot open %s: %s", path, p ? strerror(errno) : "out of memory");
        if (f) fclose(f);
        manifest_point_free(p);
        return NULL;
    }
    char magic[sizeof SAVED_MAGIC - 1];
    struct event m = {0}; /* f[0]: meta, f[1]: digest */
    uint64_t n[5];
    bool ok = fread(magic, sizeof magic, 1, f) == 1 && memcmp(magic, SAVED_MAGIC, sizeof magic) == 0;
    uint32_t l;
    ok = ok && fread(&l, sizeof l, 1, f) == 1 && l < (1u << 20) && (m.f[0] = calloc(1, (size_t)l + 1)) &&
         fread(m.f[0], 1, l, f) == l && fread(n, sizeof n, 1, f) == 1 && fread(&l, sizeof l, 1, f) == 1 &&
         l < sizeof p->st.digest && (m.f[1] = calloc(1, (size_t)l + 1)) && fread(m.f[1], 1, l, f) == l;
    if (!ok || !(p->runs = calloc(1, sizeof *p->runs))) {
        set_err(err, errlen, "%s is not a saved restore point", path);
        fclose(f);
        event_clear(&m);
        manifest_point_free(p);
        return NULL;
    }
    p->runs[0].f = f;
    p->runs[0].start = ftell(f);
    p->nruns = 1;
    /* the entries must give the digest and the counts the file claims */
    p->expect = true;
    p->expect_entries = n[2];
    snprintf(p->expect_digest, sizeof p->expect_digest, "%s", m.f[1]);
    *meta = m.f[0];
    m.f[0] = NULL;
    event_clear(&m);
    p = point_finish(p, false, err, errlen);
    if (!p) {
        free(*meta);
        *meta = NULL;
        return NULL;
    }
    p->st.records = n[0];
    p->st.deleted = n[1];
    if (p->st.without_version != n[3] || p->st.bytes != n[4]) {
        set_err(err, errlen, "%s: its entries do not give the sizes it recorded", path);
        manifest_point_free(p);
        free(*meta);
        *meta = NULL;
        return NULL;
    }
    return p;
}
