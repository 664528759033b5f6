/* The restore point of a run's manifest by external sort. See manifest/point.h.
 * Owns: reading object/deleted records into the external sort (manifest/sort.c), each key's last event. Must
 * not: know of S3, hold more than max_records records in memory. */
#include "manifest/point.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "manifest/internal.h"
#include "manifest/sort.h"

#define DEFAULT_MAX_RECORDS 100000
#define NFIELDS 7 /* key, target_key, etag, target_etag, last_modified, version_id, the record's line */
#define KIND_DELETED 1 /* a sort record's kind: a deletion (else an object record) */

struct manifest_point {
    struct manifest_sort *sort; /* the events (object records, deletions) of the manifests, by key */
    char *header;               /* a builder's summary lines (header, then pass and trailer lines), or NULL */
    char **tail;
    size_t ntail;
    bool expect; /* the last manifest describes its restore point: the result must match it */
    uint64_t expect_entries;
    char expect_digest[40];
    struct manifest_point_stats st;
    uint64_t digest; /* st.digest as it is computed */
    struct manifest_point_entry out;
};

/* Each key's last event decides. */
static size_t keep_last(const struct manifest_sort_rec *group, size_t n)
{
    (void)group;
    return n - 1;
}

/* A target key or ETag equal to the source's is kept once (NULL), as the manifest line does. */
static int take_record(struct manifest_sort_rec *e, const struct manifest_record *rec, const char *line)
{
    memset(e, 0, sizeof *e);
    if (rec->type == MANIFEST_REC_DELETED) {
        e->kind = KIND_DELETED;
        const char *tk = strcmp(rec->deleted.target_key, rec->deleted.key) != 0 ? rec->deleted.target_key : NULL;
        return manifest_sort_rec_pack(e, (const char *[]){rec->deleted.key, tk}, 2);
    }
    const struct manifest_object *o = &rec->object;
    const char *tk = strcmp(o->target_key, o->key) != 0 ? o->target_key : NULL;
    const char *te = o->target_etag && o->etag && strcmp(o->target_etag, o->etag) != 0 ? o->target_etag : NULL;
    const char *v[NFIELDS] = {o->key, tk, o->etag, te, o->last_modified, o->version_id, line};
    e->size = o->size;
    return manifest_sort_rec_pack(e, v, NFIELDS);
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

/* Reads the files in order into the sorter (one sequence over all of them, so a later file's event wins). */
static int read_manifests(struct manifest_point *p, const char *const *paths, const char *const *names, size_t nf,
                          char *err, size_t errlen)
{
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
            if (rec.type == MANIFEST_REC_OBJECT) p->st.records++;
            else p->st.deleted++;
            struct manifest_sort_rec e;
            if (take_record(&e, &rec, manifest_reader_line(r)) != 0) {
                manifest_sort_rec_clear(&e);
                set_err(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            rc = manifest_sort_add(p->sort, &e, err, errlen);
        }
        manifest_reader_close(r);
        if (rc == 0 && !header) {
            set_err(err, errlen, "manifest %s: no valid header", shown);
            rc = -1;
        }
    }
    return rc == 0 ? manifest_sort_finish(p->sort, err, errlen) : -1;
}

int manifest_point_rewind(struct manifest_point *p)
{
    return manifest_sort_rewind(p->sort);
}

int manifest_point_next(struct manifest_point *p, const struct manifest_point_entry **out, char *err,
                        size_t errlen)
{
    for (;;) {
        const struct manifest_sort_rec *g;
        size_t n;
        int got = manifest_sort_next(p->sort, &g, &n, err, errlen);
        if (got <= 0) return got;
        const struct manifest_sort_rec *e = &g[n - 1]; /* the key's last event */
        if (e->kind == KIND_DELETED) continue;
        p->out = (struct manifest_point_entry){.key = e->f[0], .target_key = e->f[1] ? e->f[1] : e->f[0], .etag = e->f[2] ? e->f[2] : "",
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

static struct manifest_point *point_new(const char *tmpdir, size_t max_records)
{
    struct manifest_point *p = calloc(1, sizeof *p);
    if (p && !(p->sort = manifest_sort_new(tmpdir, max_records ? max_records : DEFAULT_MAX_RECORDS, NFIELDS,
                                           keep_last))) {
        free(p);
        p = NULL;
    }
    return p;
}

/* Counts an entry of the point being finished and adds its record line to the digest. */
static void count_entry(void *arg, const struct manifest_sort_rec *e)
{
    struct manifest_point *p = arg;
    if (e->kind == KIND_DELETED) return;
    p->st.entries++;
    p->st.bytes += e->size;
    if (!e->f[5]) p->st.without_version++;
    if (e->f[3]) p->st.etag_differs++; /* kept only when it differs (take_record) */
    digest_add(&p->digest, e->f[6] ? e->f[6] : "");
}

/* The sort finished: merges it into one run (then the diff and the save that follow are sequential reads, not a
 * merge each), counting the entries and computing the digest as it goes, and checks them against what the last
 * manifest (or the saved point) described. p, or NULL (freed) with err. */
static struct manifest_point *point_finish(struct manifest_point *p, char *err, size_t errlen)
{
    p->st.runs = manifest_sort_runs(p->sort);
    p->digest = 14695981039346656037ULL;
    if (manifest_sort_merge_runs(p->sort, count_entry, p, err, errlen) != 0) {
        manifest_point_free(p);
        return NULL;
    }
    snprintf(p->st.digest, sizeof p->st.digest, "%016llx", (unsigned long long)p->digest);
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

/* ---- the builder: the writer's tee ---- */

struct manifest_point_builder {
    struct manifest_point *p;
    bool failed;
    char err[256];
};

struct manifest_point_builder *manifest_point_builder_new(const char *tmpdir, size_t max_records)
{
    struct manifest_point_builder *b = calloc(1, sizeof *b);
    if (b && !(b->p = point_new(tmpdir, max_records))) {
        free(b);
        b = NULL;
    }
    return b;
}

static int keep_line(struct manifest_point *p, const struct manifest_record *rec, const char *line)
{
    if (rec->type == MANIFEST_REC_HEADER) return p->header || (p->header = strdup(line)) ? 0 : -1;
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
    if (rec->type != MANIFEST_REC_OBJECT && rec->type != MANIFEST_REC_DELETED) {
        if (keep_line(b->p, rec, line) != 0) snprintf(b->err, sizeof b->err, "out of memory"), b->failed = true;
        return;
    }
    if (rec->type == MANIFEST_REC_OBJECT) b->p->st.records++;
    else b->p->st.deleted++;
    struct manifest_sort_rec e;
    if (take_record(&e, rec, line) != 0) {
        manifest_sort_rec_clear(&e);
        snprintf(b->err, sizeof b->err, "out of memory");
        b->failed = true;
    } else if (manifest_sort_add(b->p->sort, &e, b->err, sizeof b->err) != 0) {
        b->failed = true;
    }
}

void manifest_point_builder_free(struct manifest_point_builder *b)
{
    if (!b) return;
    manifest_point_free(b->p);
    free(b);
}

struct manifest_point *manifest_point_builder_finish(struct manifest_point_builder *b, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!b) {
        set_err(err, errlen, "no restore point was being built");
        return NULL;
    }
    struct manifest_point *p = b->p;
    b->p = NULL;
    bool failed = b->failed;
    if (failed) set_err(err, errlen, "%s", b->err);
    manifest_point_builder_free(b);
    if (failed || manifest_sort_finish(p->sort, err, errlen) != 0) {
        manifest_point_free(p);
        return NULL;
    }
    return point_finish(p, err, errlen);
}

struct manifest_point *manifest_point_build_chain(const char *const *paths, const char *const *names, size_t n,
                                                  const char *tmpdir, size_t max_records, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!paths || n == 0) {
        set_err(err, errlen, "no manifest to read");
        return NULL;
    }
    struct manifest_point *p = point_new(tmpdir, max_records);
    if (!p) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (read_manifests(p, paths, names, n, err, errlen) != 0) {
        if (err && !err[0]) set_err(err, errlen, "reading %s: %s", paths[0], strerror(errno));
        manifest_point_free(p);
        return NULL;
    }
    return point_finish(p, err, errlen);
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
    manifest_sort_free(p->sort);
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

/* ---- saved points: "replicate-point 2\n", the caller's meta text (a 32-bit length and its bytes), the point's
 * entry count, bytes, entries without a version and with another target ETag, digest, the length and CRC-32C of
 * what follows, then the sorted events as one run file of manifest/sort.c. Read back, the run's bytes are checked
 * against the CRC before the point is used, so the file is a cache: not fsynced (a copy torn by a crash fails the
 * check, and the caller reads the manifest instead). Version 1 files (no CRC: the entries are counted and hashed
 * again) are still read. ---- */

#define SAVED_MAGIC "replicate-point 2\n"
#define SAVED_MAGIC_V1 "replicate-point 1\n"
#define META_MAX (1u << 20)

struct saved_head { /* after the magic and the meta text */
    uint64_t entries, bytes, without_version, etag_differs;
    char digest[16];
    uint64_t run_bytes;
    uint32_t crc;
};

static bool write_head(FILE *f, const struct saved_head *h)
{
    return fwrite(&h->entries, 8, 1, f) == 1 && fwrite(&h->bytes, 8, 1, f) == 1 &&
           fwrite(&h->without_version, 8, 1, f) == 1 && fwrite(&h->etag_differs, 8, 1, f) == 1 &&
           fwrite(h->digest, 16, 1, f) == 1 && fwrite(&h->run_bytes, 8, 1, f) == 1 && fwrite(&h->crc, 4, 1, f) == 1;
}

static bool read_head(FILE *f, struct saved_head *h)
{
    return fread(&h->entries, 8, 1, f) == 1 && fread(&h->bytes, 8, 1, f) == 1 &&
           fread(&h->without_version, 8, 1, f) == 1 && fread(&h->etag_differs, 8, 1, f) == 1 &&
           fread(h->digest, 16, 1, f) == 1 && fread(&h->run_bytes, 8, 1, f) == 1 && fread(&h->crc, 4, 1, f) == 1;
}

int manifest_point_save(struct manifest_point *p, const char *path, const char *meta, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    uint32_t ml = meta ? (uint32_t)strlen(meta) : 0;
    struct saved_head h = {.entries = p->st.entries, .bytes = p->st.bytes, .without_version = p->st.without_version,
                           .etag_differs = p->st.etag_differs};
    memcpy(h.digest, p->st.digest, sizeof h.digest);
    struct manifest_sort_sum sum;
    long at = -1;
    errno = 0;
    bool ok = fputs(SAVED_MAGIC, f) >= 0 && fwrite(&ml, sizeof ml, 1, f) == 1 && fwrite(meta ? meta : "", 1, ml, f) == ml &&
              (at = ftell(f)) >= 0 && write_head(f, &h); /* the run's length and CRC are filled in after it */
    if (!ok) set_err(err, errlen, "writing %s: %s", path, strerror(errno ? errno : EIO));
    else ok = manifest_sort_write_run(p->sort, f, &sum, err, errlen) == 0;
    if (ok) {
        h.run_bytes = sum.bytes;
        h.crc = sum.crc;
        errno = 0;
        if (fseek(f, at, SEEK_SET) != 0 || !write_head(f, &h) || fflush(f) != 0) {
            set_err(err, errlen, "writing %s: %s", path, strerror(errno ? errno : EIO));
            ok = false;
        }
    }
    if (fclose(f) != 0 && ok) {
        set_err(err, errlen, "writing %s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok) unlink(path);
    return ok ? 0 : -1;
}

/* The run of a version 2 file from where f stands: its length and CRC-32C are what the head says. */
static bool run_intact(FILE *f, const struct saved_head *h)
{
    long at = ftell(f);
    unsigned char buf[1 << 16];
    uint64_t n = 0;
    uint32_t crc = MANIFEST_SORT_SUM_INIT;
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        n += got;
        crc = crc32_iscsi(buf, (int)got, crc);
    }
    return at >= 0 && !ferror(f) && n == h->run_bytes && crc == h->crc && fseek(f, at, SEEK_SET) == 0;
}

struct manifest_point *manifest_point_open(const char *path, char **meta, char *err, size_t errlen)
{
    *meta = NULL;
    struct manifest_point *p = point_new(NULL, 1);
    FILE *f = p ? fopen(path, "r") : NULL;
    if (!f) {
        set_err(err, errlen, "cannot open %s: %s", path, p ? strerror(errno) : "out of memory");
        manifest_point_free(p);
        return NULL;
    }
    char magic[sizeof SAVED_MAGIC - 1];
    uint32_t ml = 0;
    char *text = NULL;
    struct saved_head h;
    bool ok = fread(magic, sizeof magic, 1, f) == 1, v1 = ok && memcmp(magic, SAVED_MAGIC_V1, sizeof magic) == 0;
    ok = ok && (v1 || memcmp(magic, SAVED_MAGIC, sizeof magic) == 0) && fread(&ml, sizeof ml, 1, f) == 1 &&
         ml < META_MAX && (text = calloc(1, (size_t)ml + 1)) && fread(text, 1, ml, f) == ml;
    if (ok && v1) { /* the entries must give the count and digest the file recorded */
        ok = fread(&p->expect_entries, sizeof p->expect_entries, 1, f) == 1 && fread(p->expect_digest, 16, 1, f) == 1;
        p->expect = true;
    } else if (ok) {
        ok = read_head(f, &h) && run_intact(f, &h);
    }
    if (!ok || manifest_sort_adopt_run(p->sort, f, err, errlen) != 0) {
        if (!ok) set_err(err, errlen, "%s is not a saved restore point, or it is damaged", path);
        fclose(f);
        free(text);
        manifest_point_free(p);
        return NULL;
    }
    if (v1 && !(p = point_finish(p, err, errlen))) {
        free(text);
        return NULL;
    }
    if (!v1) {
        p->st = (struct manifest_point_stats){.records = h.entries, .entries = h.entries, .bytes = h.bytes,
                                              .without_version = h.without_version,
                                              .etag_differs = h.etag_differs, .runs = 1};
        memcpy(p->st.digest, h.digest, sizeof h.digest);
    }
    *meta = text;
    return p;
}

