/* The manifest's JSON Lines reader: bounded lines (corrupt ones reported and skipped), records decoded by cJSON
 * under the field rules of manifest/jsonl_internal.h, and the --status summary of a whole manifest. Must not:
 * write anything, or trust a line's length or content. */
#include "manifest/manifest.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "manifest/jsonl_internal.h"

#define READ_CHUNK_SIZE 16384
#define LINE_INITIAL_CAP 4096

/* ---- reader ---- */

struct manifest_reader {
    gzFile gz; /* plain files are read through as they are */
    char *path;
    unsigned long lineno; /* number of the line last read, 1-based */
    bool eof;             /* read() returned 0 or failed: no more input */
    size_t rpos, rlen;    /* unread part of rbuf */
    char *line;           /* current line, NUL-terminated, at most MANIFEST_LINE_MAX + 1 bytes */
    size_t line_cap;
    cJSON *json;        /* tree of the last record returned; its strings are what *rec points to */
    char *options_text; /* printed "options" object of the last header returned */
    char rbuf[READ_CHUNK_SIZE];
};

enum line_status {
    LINE_OK,           /* a complete line, newline stripped */
    LINE_EOF,          /* no more input */
    LINE_TOO_LONG,     /* over MANIFEST_LINE_MAX; consumed up to and including its newline */
    LINE_UNTERMINATED, /* the file ends without a final newline: a crash mid-write */
    LINE_READ_ERROR,   /* read() failed; errno set; treated as the end of the file afterwards */
    LINE_NO_MEMORY,
};

struct manifest_reader *manifest_reader_open(const char *path, char *err, size_t errlen)
{
    struct manifest_reader *r = NULL;
    int saved;

    if (!path) {
        set_err(err, errlen, "no manifest path");
        errno = EINVAL;
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r) {
        set_err(err, errlen, "opening manifest %s: out of memory", path);
        goto error_clean_up;
    }
    r->path = strdup(path);
    if (!r->path) {
        set_err(err, errlen, "opening manifest %s: out of memory", path);
        goto error_clean_up;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "opening manifest %s: %s", path, strerror(errno));
        goto error_clean_up;
    }
    r->gz = gzdopen(fd, "rb");
    if (!r->gz) {
        close(fd);
        set_err(err, errlen, "opening manifest %s: out of memory", path);
        errno = ENOMEM;
        goto error_clean_up;
    }
    return r;

error_clean_up:
    saved = errno;
    manifest_reader_close(r);
    errno = saved;
    return NULL;
}

static int line_reserve(struct manifest_reader *r, size_t need)
{
    size_t cap = r->line_cap ? r->line_cap : LINE_INITIAL_CAP;
    char *p;

    if (need <= r->line_cap) return 0;
    while (cap < need)
        cap *= 2;
    if (cap > MANIFEST_LINE_MAX + 1) cap = MANIFEST_LINE_MAX + 1;
    p = realloc(r->line, cap);
    if (!p) return -1;
    r->line = p;
    r->line_cap = cap;
    return 0;
}

/* Reads the next line into r->line without ever holding more than MANIFEST_LINE_MAX bytes of it. */
static enum line_status read_line(struct manifest_reader *r, size_t *out_len)
{
    size_t len = 0;
    bool any = false, too_long = false;

    *out_len = 0;
    for (;;) {
        const char *start, *nl;
        size_t avail, take;

        if (r->rpos == r->rlen) {
            ssize_t n;

            if (r->eof) break;
            n = gzread(r->gz, r->rbuf, sizeof r->rbuf);
            if (n <= 0) {
                r->eof = true;
                /* a compressed copy cut short reads as far as it goes: its last line is then unterminated */
                if (n < 0) {
                    int zerr = 0;
                    gzerror(r->gz, &zerr);
                    if (zerr == Z_ERRNO) return LINE_READ_ERROR;
                    if (any) break;
                    errno = EIO;
                    return LINE_READ_ERROR;
                }
                break;
            }
            r->rpos = 0;
            r->rlen = (size_t)n;
        }
        any = true;
        start = r->rbuf + r->rpos;
        avail = r->rlen - r->rpos;
        nl = memchr(start, '\n', avail);
        take = nl ? (size_t)(nl - start) : avail;
        if (!too_long) {
            if (take > MANIFEST_LINE_MAX - len) {
                too_long = true; /* keep consuming up to the newline, storing nothing more */
            } else {
                if (line_reserve(r, len + take + 1) != 0) return LINE_NO_MEMORY;
                memcpy(r->line + len, start, take);
                len += take;
            }
        }
        r->rpos += take + (nl ? 1 : 0);
        if (nl) {
            *out_len = len;
            return too_long ? LINE_TOO_LONG : LINE_OK;
        }
    }
    if (!any) return LINE_EOF;
    return too_long ? LINE_TOO_LONG : LINE_UNTERMINATED;
}

/* Field accessors: on a missing or ill-typed field they name it in *bad (the first one only). */
static void mark_bad(const char **bad, const char *name)
{
    if (!*bad) *bad = name;
}

static const char *get_str(const cJSON *o, const char *name, bool required, const char **bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!it || cJSON_IsNull(it)) {
        if (required) mark_bad(bad, name);
        return NULL;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        mark_bad(bad, name);
        return NULL;
    }
    return it->valuestring;
}

static double get_num(const cJSON *o, const char *name, const char **bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
        mark_bad(bad, name);
        return 0;
    }
    return it->valuedouble;
}

static uint64_t get_u64(const cJSON *o, const char *name, const char **bad)
{
    double d = get_num(o, name, bad);

    if (!(d >= 0 && d <= EXACT_INT_MAX) || (double)(uint64_t)d != d) {
        mark_bad(bad, name);
        return 0;
    }
    return (uint64_t)d;
}

static int64_t get_i64(const cJSON *o, const char *name, const char **bad)
{
    double d = get_num(o, name, bad);

    if (!(d >= -EXACT_INT_MAX && d <= EXACT_INT_MAX) || (double)(int64_t)d != d) {
        mark_bad(bad, name);
        return 0;
    }
    return (int64_t)d;
}

static int get_int(const cJSON *o, const char *name, int min, const char **bad)
{
    double d = get_num(o, name, bad);

    if (!(d >= min && d <= INT_MAX) || (double)(int)d != d) {
        mark_bad(bad, name);
        return 0;
    }
    return (int)d;
}

static bool get_bool(const cJSON *o, const char *name, const char **bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsBool(it)) {
        mark_bad(bad, name);
        return false;
    }
    return cJSON_IsTrue(it);
}

/* "chain" (a delta names its base; a full manifest has none) and "point" (optional in both). */
static const char *decode_chain(const cJSON *o, struct manifest_header *h, bool delta, const char **bad)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "chain"), *pt = cJSON_GetObjectItemCaseSensitive(o, "point");
    h->base = h->base_digest = h->point_digest = NULL;
    h->depth = 0;
    h->have_point = false;
    h->point_entries = h->point_bytes = 0;
    if (delta != (c != NULL)) return delta ? "a delta manifest without its \"chain\"" : "a full manifest with a \"chain\"";
    if (c) {
        h->base = get_str(c, "base", true, bad);
        h->depth = get_int(c, "depth", 1, bad);
        h->base_digest = get_str(c, "base_digest", true, bad);
        if (h->base && (!h->base[0] || strchr(h->base, '/'))) mark_bad(bad, "chain.base");
    }
    if (pt) {
        h->have_point = true;
        h->point_entries = get_u64(pt, "entries", bad);
        h->point_bytes = get_u64(pt, "bytes", bad);
        h->point_digest = get_str(pt, "digest", true, bad);
    }
    return NULL;
}

/* Fills rec from one parsed line. NULL when the line is a valid record, else why it is not. */
static const char *decode_header(struct manifest_reader *r, const cJSON *o, struct manifest_header *h,
                                 const char **bad)
{
    const cJSON *opts;
    double format = get_num(o, "format", bad);

    if (*bad) return NULL;
    if (format != MANIFEST_FORMAT && format != MANIFEST_FORMAT_DELTA)
        return "unsupported manifest format (written by a newer replicate?)";
    h->run_id = get_str(o, "run_id", true, bad);
    h->tool_version = get_str(o, "tool_version", true, bad);
    h->started = get_i64(o, "started", bad);
    h->source = get_str(o, "source", true, bad);
    h->target = get_str(o, "target", true, bad);
    h->source_endpoint = get_str(o, "source_endpoint", false, bad);
    h->target_endpoint = get_str(o, "target_endpoint", false, bad);
    opts = cJSON_GetObjectItemCaseSensitive(o, "options");
    if (cJSON_IsObject(opts)) {
        r->options_text = cJSON_PrintUnformatted(opts);
        if (!r->options_text) return "out of memory";
        h->options_json = r->options_text;
    } else {
        h->options_json = get_str(o, "options", false, bad);
    }
    h->shard_index = h->shard_count = 0;
    h->range_start_after = h->range_end_before = NULL;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shard");
    if (sh) {
        double i = get_num(sh, "index", bad), n = get_num(sh, "count", bad);
        if (*bad) return NULL;
        if (!(n >= 1 && n <= 1e6 && i >= 0 && i < n && i == (int)i && n == (int)n)) return "bad shard index or count";
        h->shard_index = (int)i;
        h->shard_count = (int)n;
        h->range_start_after = get_str(sh, "start_after", false, bad);
        h->range_end_before = get_str(sh, "end_before", false, bad);
    }
    return decode_chain(o, h, format == MANIFEST_FORMAT_DELTA, bad);
}

static void decode_object(const cJSON *o, struct manifest_object *obj, const char **bad)
{
    obj->key = get_str(o, "key", true, bad);
    if (obj->key && !key_ok(obj->key)) mark_bad(bad, "key");
    obj->size = get_u64(o, "size", bad);
    obj->etag = get_str(o, "etag", true, bad);
    obj->last_modified = get_str(o, "last_modified", true, bad);
    obj->target_key = get_str(o, "target_key", false, bad);
    if (obj->target_key && !key_ok(obj->target_key)) mark_bad(bad, "target_key");
    if (!obj->target_key) obj->target_key = obj->key;
    obj->target_etag = get_str(o, "target_etag", false, bad);
    if (!obj->target_etag) obj->target_etag = obj->etag;
    obj->version_id = get_str(o, "version_id", false, bad);
    obj->pass = get_int(o, "pass", 1, bad);
    /* "checksum" came later: records without it are read as before */
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(o, "checksum");
    obj->checksum_algorithm = obj->checksum = NULL;
    if (ck) {
        if (!cJSON_IsObject(ck)) {
            mark_bad(bad, "checksum");
            return;
        }
        obj->checksum_algorithm = get_str(ck, "algorithm", true, bad);
        obj->checksum = get_str(ck, "value", true, bad);
        if (!checksum_ok(obj->checksum_algorithm, obj->checksum)) mark_bad(bad, "checksum");
    }
}

static void decode_deleted(const cJSON *o, struct manifest_deleted *d, const char **bad)
{
    d->key = get_str(o, "key", true, bad);
    if (d->key && !key_ok(d->key)) mark_bad(bad, "key");
    d->target_key = get_str(o, "target_key", false, bad);
    if (d->target_key && !key_ok(d->target_key)) mark_bad(bad, "target_key");
    if (!d->target_key) d->target_key = d->key;
    d->pass = get_int(o, "pass", 1, bad);
}

static void decode_pass(const cJSON *o, struct manifest_pass *p, const char **bad)
{
    p->pass = get_int(o, "pass", 1, bad);
    p->maintenance = get_bool(o, "maintenance", bad);
    p->started = get_num(o, "started", bad);
    p->duration = get_num(o, "duration", bad);
    p->listed = get_u64(o, "listed", bad);
    p->copied = get_u64(o, "copied", bad);
    p->bytes = get_u64(o, "bytes", bad);
    p->failed = get_u64(o, "failed", bad);
    p->skipped = get_u64(o, "skipped", bad);
}

static void decode_trailer(const cJSON *o, struct manifest_trailer *t, const char **bad)
{
    t->ended = get_i64(o, "ended", bad);
    t->result = get_str(o, "result", true, bad);
    t->objects = get_u64(o, "objects", bad);
    t->bytes = get_u64(o, "bytes", bad);
    t->failed = get_u64(o, "failed", bad);
    t->archived = cJSON_GetObjectItemCaseSensitive(o, "archived") ? get_u64(o, "archived", bad) : 0;
    t->passes = get_int(o, "passes", 0, bad);
    t->gap = get_num(o, "gap", bad);
    t->maintenance = get_bool(o, "maintenance", bad);
}

static const char *decode(struct manifest_reader *r, const cJSON *o, struct manifest_record *rec,
                          const char **bad)
{
    const char *t;

    if (!cJSON_IsObject(o)) return "not a JSON object";
    t = get_str(o, "t", true, bad);
    if (!t) return NULL;
    if (strcmp(t, "header") == 0) {
        rec->type = MANIFEST_REC_HEADER;
        return decode_header(r, o, &rec->header, bad);
    }
    if (strcmp(t, "object") == 0) {
        rec->type = MANIFEST_REC_OBJECT;
        decode_object(o, &rec->object, bad);
    } else if (strcmp(t, "deleted") == 0) {
        rec->type = MANIFEST_REC_DELETED;
        decode_deleted(o, &rec->deleted, bad);
    } else if (strcmp(t, "pass") == 0) {
        rec->type = MANIFEST_REC_PASS;
        decode_pass(o, &rec->pass, bad);
    } else if (strcmp(t, "trailer") == 0) {
        rec->type = MANIFEST_REC_TRAILER;
        decode_trailer(o, &rec->trailer, bad);
    } else {
        return "unknown record type \"t\"";
    }
    return NULL;
}

static void reader_release_record(struct manifest_reader *r)
{
    cJSON_Delete(r->json);
    r->json = NULL;
    free(r->options_text);
    r->options_text = NULL;
}

int manifest_reader_next(struct manifest_reader *r, struct manifest_record *rec, char *err, size_t errlen)
{
    const char *why = NULL, *bad = NULL;
    enum line_status st;
    size_t len;
    cJSON *j;

    if (!r || !rec) {
        set_err(err, errlen, "manifest_reader_next: no reader or record");
        errno = EINVAL;
        return -1;
    }
    reader_release_record(r);
    memset(rec, 0, sizeof *rec);
    st = read_line(r, &len);
    if (st == LINE_EOF) return 0;
    r->lineno++;
    switch (st) {
    case LINE_OK:
        break;
    case LINE_EOF:
        return 0;
    case LINE_TOO_LONG:
        set_err(err, errlen, "%s:%lu: corrupt line: longer than %d bytes", r->path, r->lineno,
                MANIFEST_LINE_MAX);
        return -1;
    case LINE_UNTERMINATED:
        set_err(err, errlen, "%s:%lu: corrupt line: no newline at end of file (interrupted write)", r->path,
                r->lineno);
        return -1;
    case LINE_READ_ERROR:
        set_err(err, errlen, "%s:%lu: read error: %s", r->path, r->lineno, strerror(errno));
        return -1;
    case LINE_NO_MEMORY:
        set_err(err, errlen, "%s:%lu: out of memory", r->path, r->lineno);
        return -1;
    }
    if (len == 0) {
        set_err(err, errlen, "%s:%lu: corrupt line: empty", r->path, r->lineno);
        return -1;
    }
    r->line[len] = '\0';
    if (memchr(r->line, '\0', len)) {
        set_err(err, errlen, "%s:%lu: corrupt line: contains a NUL byte", r->path, r->lineno);
        return -1;
    }
    j = cJSON_ParseWithOpts(r->line, NULL, 1);
    if (!j) {
        set_err(err, errlen, "%s:%lu: corrupt line: not valid JSON", r->path, r->lineno);
        return -1;
    }
    why = decode(r, j, rec, &bad);
    if (why || bad) {
        if (why)
            set_err(err, errlen, "%s:%lu: corrupt line: %s", r->path, r->lineno, why);
        else
            set_err(err, errlen, "%s:%lu: corrupt line: field \"%s\" missing or invalid", r->path, r->lineno,
                    bad);
        cJSON_Delete(j);
        reader_release_record(r);
        memset(rec, 0, sizeof *rec);
        return -1;
    }
    r->json = j;
    return 1;
}

void manifest_reader_close(struct manifest_reader *r)
{
    if (!r) return;
    reader_release_record(r);
    if (r->gz) gzclose(r->gz);
    free(r->line);
    free(r->path);
    free(r);
}

const char *manifest_reader_line(const struct manifest_reader *r)
{
    return r && r->json ? r->line : NULL;
}

/* ---- summary ---- */

static int dup_opt(char **dst, const char *src)
{
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

int manifest_summary_read(const char *path, struct manifest_summary *out, char *err, size_t errlen)
{
    struct manifest_reader *r;
    struct manifest_record rec;
    bool have_header = false;
    int rc;

    if (!out) {
        set_err(err, errlen, "manifest_summary_read: no output");
        errno = EINVAL;
        return -1;
    }
    memset(out, 0, sizeof *out);
    r = manifest_reader_open(path, err, errlen);
    if (!r) return -1;
    while ((rc = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
        if (rc < 0) {
            if (out->corrupt_lines < INT_MAX) out->corrupt_lines++;
            continue;
        }
        switch (rec.type) {
        case MANIFEST_REC_HEADER:
            if (have_header) break; /* the first header describes the run */
            have_header = true;
            out->started = rec.header.started;
            out->shard_index = rec.header.shard_index;
            out->shard_count = rec.header.shard_count;
            out->depth = rec.header.depth;
            out->have_point = rec.header.have_point;
            out->point_entries = rec.header.point_entries;
            out->point_bytes = rec.header.point_bytes;
            if (dup_opt(&out->run_id, rec.header.run_id) || dup_opt(&out->source, rec.header.source) ||
                dup_opt(&out->target, rec.header.target) ||
                dup_opt(&out->tool_version, rec.header.tool_version) || dup_opt(&out->base, rec.header.base))
                goto nomem;
            break;
        case MANIFEST_REC_OBJECT:
            out->objects_recorded++;
            break;
        case MANIFEST_REC_DELETED:
            break;
        case MANIFEST_REC_PASS:
            if (out->passes < INT_MAX) out->passes++;
            break;
        case MANIFEST_REC_TRAILER:
            /* the last trailer wins; normally there is exactly one */
            free(out->result);
            out->trailer = rec.trailer;
            out->result = strdup(rec.trailer.result);
            out->trailer.result = out->result;
            out->trailer_found = true;
            if (!out->result) goto nomem;
            break;
        }
    }
    manifest_reader_close(r);
    if (!have_header) {
        set_err(err, errlen, "%s: no valid manifest header", path);
        manifest_summary_free(out);
        errno = EINVAL;
        return -1;
    }
    return 0;

nomem:
    set_err(err, errlen, "reading manifest %s: out of memory", path);
    manifest_reader_close(r);
    manifest_summary_free(out);
    errno = ENOMEM;
    return -1;
}

void manifest_summary_free(struct manifest_summary *s)
{
    if (!s) return;
    free(s->run_id);
    free(s->source);
    free(s->target);
    free(s->tool_version);
    free(s->result);
    free(s->base);
    memset(s, 0, sizeof *s);
}
