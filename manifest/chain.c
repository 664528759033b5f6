/* The stored copy of a run's manifest, full or a delta on its base's. See manifest/chain.h.
 * Owns: the difference of two restore points and the stored file's layout. Must not: know of S3, hold more than
 * one line of either restore point in memory (both are external sorts, read in key order). */
#include "manifest/chain.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "manifest/manifest.h"
#include "manifest/internal.h"

#define DELTA_MAX_SHARE 4 /* a delta of more than entries / DELTA_MAX_SHARE records is written full */
#define DELTA_MIN_RECORDS 64

/* ---- the output: plain or gzip, one line at a time ---- */

struct out {
    int fd;
    gzFile gz;
    FILE *f;
    bool failed;
};

static void out_line(struct out *o, const char *line)
{
    size_t n = strlen(line);
    if (o->failed) return;
    if (o->gz) {
        if ((n && gzwrite(o->gz, line, (unsigned)n) != (int)n) || gzputc(o->gz, '\n') != '\n') o->failed = true;
    } else if (fwrite(line, 1, n, o->f) != n || fputc('\n', o->f) == EOF) {
        o->failed = true;
    }
}

static int out_open(struct out *o, const char *path, bool compress)
{
    memset(o, 0, sizeof *o);
    o->fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (o->fd < 0) return -1;
    int fd2 = dup(o->fd);
    if (fd2 >= 0) {
        if (compress) o->gz = gzdopen(fd2, "wb6");
        else o->f = fdopen(fd2, "w");
    }
    if (!o->gz && !o->f) {
        if (fd2 >= 0) close(fd2);
        close(o->fd);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* Flushes, fsyncs and closes; -1 if anything failed. */
static int out_close(struct out *o)
{
    bool ok = !o->failed;
    if (o->gz) ok = gzclose(o->gz) == Z_OK && ok;
    if (o->f) ok = fclose(o->f) == 0 && ok;
    ok = fsync(o->fd) == 0 && ok;
    ok = close(o->fd) == 0 && ok;
    if (!ok && !errno) errno = EIO;
    return ok ? 0 : -1;
}

/* ---- the summary lines of the run ---- */

struct lines {
    char *header;   /* the first header line */
    char **tail;    /* pass and trailer lines in order */
    size_t n;
};

static void lines_free(struct lines *l)
{
    free(l->header);
    for (size_t i = 0; i < l->n; i++) free(l->tail[i]);
    free(l->tail);
    memset(l, 0, sizeof *l);
}

/* The summary lines a builder kept while the manifest was written (manifest_point_lines). 1 = none kept. */
static int point_lines(const struct manifest_point *point, struct lines *l, char *err, size_t errlen)
{
    const char *const *tail;
    size_t n;
    const char *header = manifest_point_lines(point, &tail, &n);
    memset(l, 0, sizeof *l);
    if (!header) return 1;
    bool ok = (l->header = strdup(header)) && (!n || (l->tail = calloc(n, sizeof *l->tail)));
    for (size_t i = 0; ok && i < n; i++, l->n++)
        ok = (l->tail[i] = strdup(tail[i])) != NULL;
    if (ok) return 0;
    lines_free(l);
    set_err(err, errlen, "out of memory");
    return -1;
}

static int read_lines(const char *path, struct lines *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    struct manifest_reader *r = manifest_reader_open(path, err, errlen);
    if (!r) return -1;
    struct manifest_record rec;
    int got, rc = 0;
    while (rc == 0 && (got = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
        if (got < 0) continue;
        if (rec.type == MANIFEST_REC_HEADER) {
            if (!l->header && !(l->header = strdup(manifest_reader_line(r)))) rc = -1;
        } else if (rec.type == MANIFEST_REC_PASS || rec.type == MANIFEST_REC_TRAILER) {
            char **t = realloc(l->tail, (l->n + 1) * sizeof *t);
            if (!t || !(t[l->n] = strdup(manifest_reader_line(r)))) {
                if (t) l->tail = t;
                rc = -1;
            } else {
                l->tail = t;
                l->n++;
            }
        }
    }
    manifest_reader_close(r);
    if (rc != 0) set_err(err, errlen, "out of memory");
    else if (!l->header) set_err(err, errlen, "%s: no valid manifest header", path), rc = -1;
    if (rc != 0) lines_free(l);
    return rc;
}

/* The run's header line with its format, chain and point replaced. */
static char *header_line(const char *line, const struct manifest_header *h)
{
    cJSON *o = cJSON_Parse(line);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "chain");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "point");
    bool ok = cJSON_ReplaceItemInObjectCaseSensitive(
                  o, "format", cJSON_CreateNumber(h->base ? MANIFEST_FORMAT_DELTA : MANIFEST_FORMAT)) &&
              manifest_header_add_chain(o, h);
    char *t = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return t;
}

/* ---- the records ---- */

static void deleted_line(struct out *o, const struct manifest_point_entry *e)
{
    cJSON *j = cJSON_CreateObject();
    bool ok = j && cJSON_AddStringToObject(j, "t", "deleted") && cJSON_AddStringToObject(j, "key", e->key);
    if (ok && strcmp(e->target_key, e->key) != 0) ok = cJSON_AddStringToObject(j, "target_key", e->target_key);
    if (ok) ok = cJSON_AddNumberToObject(j, "pass", 1) != NULL;
    char *t = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!t) o->failed = true;
    else out_line(o, t);
    free(t);
}

/* The difference of point against base, in key order, into o: entries new or different (their lines as they
 * are), and a deletion for each key only the base holds. Counts into *records; stops early once past limit. */
static int write_diff(struct out *o, struct manifest_point *point, struct manifest_point *base, uint64_t limit,
                      uint64_t *records, char *err, size_t errlen)
{
    const struct manifest_point_entry *a = NULL, *b = NULL;
    int ga = manifest_point_next(point, &a, err, errlen), gb = manifest_point_next(base, &b, err, errlen);
    *records = 0;
    while (ga == 1 || gb == 1) {
        if (*records > limit || o->failed) break;
        int c = ga != 1 ? 1 : gb != 1 ? -1 : strcmp(a->key, b->key);
        if (c < 0 || (c == 0 && strcmp(a->record, b->record) != 0)) {
            out_line(o, a->record);
            ++*records;
        } else if (c > 0) {
            deleted_line(o, b);
            ++*records;
        }
        if (c <= 0) ga = manifest_point_next(point, &a, err, errlen);
        if (c >= 0) gb = manifest_point_next(base, &b, err, errlen);
    }
    return ga < 0 || gb < 0 ? -1 : 0;
}

static int write_all(struct out *o, struct manifest_point *point, uint64_t *records, char *err, size_t errlen)
{
    const struct manifest_point_entry *e;
    int g;
    *records = 0;
    while ((g = manifest_point_next(point, &e, err, errlen)) == 1 && !o->failed) {
        out_line(o, e->record);
        ++*records;
    }
    return g < 0 ? -1 : 0;
}

/* One attempt: a delta when base is given, else full. 1 = a delta would exceed its limit (nothing valid written). */
static int write_copy(const struct lines *l, struct manifest_point *point, const struct manifest_base *base,
                      const char *out_path, bool compress, struct manifest_store_info *info, char *err, size_t errlen)
{
    const struct manifest_point_stats *st = manifest_point_stats(point);
    struct manifest_header h = {.have_point = true, .point_entries = st->entries, .point_bytes = st->bytes,
                                .point_digest = st->digest};
    if (base) {
        h.base = base->name;
        h.depth = base->depth + 1;
        h.base_digest = manifest_point_stats(base->point)->digest;
    }
    char *head = header_line(l->header, &h);
    struct out o;
    if (!head) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (out_open(&o, out_path, compress) != 0) {
        set_err(err, errlen, "cannot create %s: %s", out_path, strerror(errno));
        free(head);
        return -1;
    }
    out_line(&o, head);
    free(head);
    for (size_t i = 0; i < l->n; i++) out_line(&o, l->tail[i]);
    uint64_t limit = st->entries / DELTA_MAX_SHARE > DELTA_MIN_RECORDS ? st->entries / DELTA_MAX_SHARE
                                                                       : DELTA_MIN_RECORDS;
    int rc = manifest_point_rewind(point) == 0 && (!base || manifest_point_rewind(base->point) == 0) ? 0 : -1;
    if (rc != 0) set_err(err, errlen, "reading a temporary file: %s", strerror(errno));
    if (rc == 0)
        rc = base ? write_diff(&o, point, base->point, limit, &info->records, err, errlen)
                  : write_all(&o, point, &info->records, err, errlen);
    bool too_long = rc == 0 && base && info->records > limit;
    if (out_close(&o) != 0 && rc == 0) {
        set_err(err, errlen, "writing %s: %s", out_path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 || too_long) return rc != 0 ? -1 : 1;
    info->delta = base != NULL;
    info->depth = h.depth;
    info->entries = st->entries;
    snprintf(info->digest, sizeof info->digest, "%s", st->digest);
    return 0;
}

int manifest_store_write(const char *lines_from, struct manifest_point *point, const struct manifest_base *base,
                         const char *out_path, bool compress, struct manifest_store_info *info, char *err,
                         size_t errlen)
{
    struct lines l;
    memset(info, 0, sizeof *info);
    int got = point_lines(point, &l, err, errlen);
    if (got < 0 || (got == 1 && read_lines(lines_from, &l, err, errlen) != 0)) return -1;
    int rc = 1;
    if (base && base->depth + 1 > MANIFEST_CHAIN_MAX_DEPTH) info->why_full = "the chain reached its longest";
    else if (base) rc = write_copy(&l, point, base, out_path, compress, info, err, errlen);
    if (rc == 1 && base && !info->why_full) info->why_full = "more changed than a delta is worth";
    if (rc == 1) rc = write_copy(&l, point, NULL, out_path, compress, info, err, errlen);
    lines_free(&l);
    if (rc != 0) unlink(out_path);
    return rc;
}
