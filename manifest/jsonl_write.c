/* The manifest's JSON Lines writer: buffered, fsynced at pass ends, a sticky failure; every line built by cJSON
 * and checked against the field rules of manifest/jsonl_internal.h. Must not: read manifests, or write a line
 * the reader would refuse. */
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

/* The writer's buffer holds at least one maximal line plus its newline, so a line is never split by a flush.
 */
#define WRITE_BUF_SIZE (2 * MANIFEST_LINE_MAX)

/* ---- writer ---- */

enum writer_stage {
    WRITER_NEED_HEADER, /* nothing written yet: only the header is accepted */
    WRITER_BODY,        /* object and pass lines */
    WRITER_DONE,        /* trailer written: only sync and close */
};

struct manifest_writer {
    int fd;
    bool failed;     /* sticky: set by the first error, never cleared */
    int saved_errno; /* errno of that first error, returned by every later call */
    enum writer_stage stage;
    size_t len; /* bytes pending in buf */
    manifest_tee_fn tee; /* given every line written, or NULL */
    void *tee_ud;
    char buf[WRITE_BUF_SIZE];
};

static int writer_fail(struct manifest_writer *w, int err)
{
    if (!w->failed) {
        w->failed = true;
        w->saved_errno = err ? err : EIO;
    }
    errno = w->saved_errno;
    return -1;
}

static int writer_usable(struct manifest_writer *w)
{
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    if (w->failed) {
        errno = w->saved_errno;
        return -1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (k == 0) {
            errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int writer_flush(struct manifest_writer *w)
{
    if (w->len > 0 && write_all(w->fd, w->buf, w->len) != 0) return writer_fail(w, errno);
    w->len = 0;
    return 0;
}

static int writer_flush_sync(struct manifest_writer *w)
{
    if (writer_flush(w) != 0) return -1;
    while (fsync(w->fd) != 0) {
        if (errno != EINTR) return writer_fail(w, errno);
    }
    return 0;
}

/* Prints obj as one line straight into the buffer (no copy of the text) and consumes obj. */
static int writer_emit(struct manifest_writer *w, cJSON *obj, const struct manifest_record *rec)
{
    if (sizeof w->buf - w->len < MANIFEST_LINE_MAX + 2 && writer_flush(w) != 0) {
        cJSON_Delete(obj);
        return -1;
    }
    char *text = w->buf + w->len;
    int room = (int)(sizeof w->buf - w->len - 1); /* keeps a byte for the newline */
    bool printed = cJSON_PrintPreallocated(obj, text, room, 0);
    cJSON_Delete(obj);
    size_t n = printed ? strlen(text) : 0;
    if (!printed || n > MANIFEST_LINE_MAX) return writer_fail(w, EINVAL); /* the reader would refuse it */
    if (w->tee) w->tee(w->tee_ud, rec, text);
    text[n] = '\n';
    w->len += n + 1;
    return 0;
}

/* Object and deletion lines, the bulk of a manifest, are built without copying: names are constants, string
 * values are referenced (they outlive the object, which is printed and freed before the call returns), whole
 * numbers are printed here instead of by cJSON's double formatting. */
static bool add_ref(cJSON *o, const char *const_name, const char *value)
{
    return cJSON_AddItemToObjectCS(o, const_name, cJSON_CreateStringReference(value));
}

static bool add_uint(cJSON *o, const char *const_name, uint64_t value)
{
    /* decimal digits as "%llu" writes them (snprintf costs ~700 instructions a call: two per record) */
    char digits[24], *d = digits + sizeof digits - 1;
    *d = '\0';
    do {
        *--d = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    return cJSON_AddItemToObjectCS(o, const_name, cJSON_CreateRaw(d));
}

/* Each add_* returns false when cJSON could not allocate; callers fold them into one flag. */
static bool add_str(cJSON *o, const char *name, const char *value)
{
    return cJSON_AddStringToObject(o, name, value) != NULL;
}

static bool add_num(cJSON *o, const char *name, double value)
{
    return cJSON_AddNumberToObject(o, name, value) != NULL;
}

static bool add_bool(cJSON *o, const char *name, bool value)
{
    return cJSON_AddBoolToObject(o, name, value) != NULL;
}

/* Builds obj's line or fails the writer: EINVAL for a record the reader would refuse, ENOMEM otherwise. */
static int writer_finish(struct manifest_writer *w, cJSON *obj, bool ok, const struct manifest_record *rec)
{
    if (!ok) {
        cJSON_Delete(obj);
        return writer_fail(w, ENOMEM);
    }
    return writer_emit(w, obj, rec);
}

void manifest_writer_tee(struct manifest_writer *w, manifest_tee_fn fn, void *ud)
{
    w->tee = fn;
    w->tee_ud = ud;
}

static int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;

    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) return -1;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    while (fsync(fd) != 0) {
        if (errno == EINTR) continue;
        if (errno != EINVAL)
            rc = -1; /* some filesystems cannot fsync a directory; nothing more to do there */
        break;
    }
    if (rc != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    return 0;
}

struct manifest_writer *manifest_writer_open(const char *path, char *err, size_t errlen)
{
    struct manifest_writer *w = NULL;
    bool created = false;
    int saved;

    if (!path || !*path) {
        set_err(err, errlen, "manifest path is empty");
        errno = EINVAL;
        return NULL;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        set_err(err, errlen, "creating manifest %s: out of memory", path);
        goto error_clean_up;
    }
    w->fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        set_err(err, errlen, "creating manifest %s: %s", path, strerror(errno));
        goto error_clean_up;
    }
    created = true;
    if (fsync_parent_dir(path) != 0) {
        set_err(err, errlen, "creating manifest %s: fsync of its directory: %s", path, strerror(errno));
        goto error_clean_up;
    }
    w->stage = WRITER_NEED_HEADER;
    return w;

error_clean_up:
    saved = errno;
    if (w && w->fd >= 0) close(w->fd);
    if (created) unlink(path);
    free(w);
    errno = saved;
    return NULL;
}

bool manifest_header_add_chain(cJSON *o, const struct manifest_header *h)
{
    bool ok = true;
    if (h->base) {
        cJSON *c = cJSON_AddObjectToObject(o, "chain");
        ok = c && add_str(c, "base", h->base) && add_num(c, "depth", h->depth) &&
             add_str(c, "base_digest", h->base_digest);
    }
    if (ok && h->have_point) {
        cJSON *pt = cJSON_AddObjectToObject(o, "point");
        ok = pt && add_num(pt, "entries", (double)h->point_entries) && add_num(pt, "bytes", (double)h->point_bytes) &&
             add_str(pt, "digest", h->point_digest);
    }
    return ok;
}

int manifest_writer_header(struct manifest_writer *w, const struct manifest_header *h)
{
    cJSON *o, *opts = NULL;
    bool ok;

    if (writer_usable(w) != 0) return -1;
    if (!h || w->stage != WRITER_NEED_HEADER || !h->run_id || !h->tool_version || !h->source || !h->target ||
        !i64_ok(h->started))
        return writer_fail(w, EINVAL);
    if (h->base && (!h->base[0] || h->depth < 1 || !h->base_digest)) return writer_fail(w, EINVAL);
    if (h->have_point && (!h->point_digest || !u64_ok(h->point_entries) || !u64_ok(h->point_bytes)))
        return writer_fail(w, EINVAL);
    o = cJSON_CreateObject();
    ok = o && add_str(o, "t", "header") && add_num(o, "format", h->base ? MANIFEST_FORMAT_DELTA : MANIFEST_FORMAT) &&
         add_str(o, "run_id", h->run_id) && add_str(o, "tool_version", h->tool_version) &&
         add_num(o, "started", (double)h->started) && add_str(o, "source", h->source) &&
         add_str(o, "target", h->target);
    if (ok && h->source_endpoint) ok = add_str(o, "source_endpoint", h->source_endpoint);
    if (ok && h->target_endpoint) ok = add_str(o, "target_endpoint", h->target_endpoint);
    if (ok && h->options_json) {
        /* An options object is embedded as JSON; anything else is kept verbatim as a string. */
        opts = cJSON_ParseWithOpts(h->options_json, NULL, 1);
        if (opts && !cJSON_IsObject(opts)) {
            cJSON_Delete(opts);
            opts = NULL;
        }
        if (opts)
            ok = cJSON_AddItemToObject(o, "options", opts);
        else
            ok = add_str(o, "options", h->options_json);
        if (!ok) cJSON_Delete(opts);
    }
    if (ok && h->shard_count > 0) {
        cJSON *sh = cJSON_AddObjectToObject(o, "shard");
        ok = sh && h->shard_index >= 0 && h->shard_index < h->shard_count && add_num(sh, "index", h->shard_index) &&
             add_num(sh, "count", h->shard_count);
        if (ok && h->range_start_after) ok = add_str(sh, "start_after", h->range_start_after);
        if (ok && h->range_end_before) ok = add_str(sh, "end_before", h->range_end_before);
    }
    if (ok) ok = manifest_header_add_chain(o, h);
    if (writer_finish(w, o, ok, &(struct manifest_record){.type = MANIFEST_REC_HEADER, .header = *h}) != 0) return -1;
    w->stage = WRITER_BODY;
    return 0;
}

int manifest_writer_add(struct manifest_writer *w, const struct manifest_object *obj)
{
    cJSON *o;
    bool ok;

    if (writer_usable(w) != 0) return -1;
    if (!obj || w->stage != WRITER_BODY || !key_ok(obj->key) || !obj->etag || !obj->last_modified ||
        obj->size > PRINT_EXACT_MAX || obj->pass < 1 || (obj->target_key && !key_ok(obj->target_key)) ||
        !checksum_ok(obj->checksum_algorithm, obj->checksum))
        return writer_fail(w, EINVAL);
    o = cJSON_CreateObject();
    ok = o && add_ref(o, "t", "object") && add_ref(o, "key", obj->key) && add_uint(o, "size", obj->size) &&
         add_ref(o, "etag", obj->etag) && add_ref(o, "last_modified", obj->last_modified);
    /* target_key / target_etag are omitted when equal to the source's: the common case costs nothing. */
    if (ok && obj->target_key && strcmp(obj->target_key, obj->key) != 0)
        ok = add_ref(o, "target_key", obj->target_key);
    if (ok && obj->target_etag && strcmp(obj->target_etag, obj->etag) != 0)
        ok = add_ref(o, "target_etag", obj->target_etag);
    if (ok && obj->version_id) ok = add_ref(o, "version_id", obj->version_id);
    if (ok) ok = add_uint(o, "pass", (uint64_t)obj->pass);
    if (ok && obj->checksum) {
        cJSON *ck = cJSON_CreateObject();
        ok = cJSON_AddItemToObjectCS(o, "checksum", ck) && add_ref(ck, "algorithm", obj->checksum_algorithm) &&
             add_ref(ck, "value", obj->checksum);
    }
    struct manifest_record rec = {.type = MANIFEST_REC_OBJECT, .object = *obj}; /* as the reader gives it back */
    if (!rec.object.target_key) rec.object.target_key = obj->key;
    if (!rec.object.target_etag) rec.object.target_etag = obj->etag;
    return writer_finish(w, o, ok, &rec);
}

int manifest_writer_deleted(struct manifest_writer *w, const struct manifest_deleted *d)
{
    if (writer_usable(w) != 0) return -1;
    if (!d || w->stage != WRITER_BODY || !key_ok(d->key) || d->pass < 1 || (d->target_key && !key_ok(d->target_key)))
        return writer_fail(w, EINVAL);
    cJSON *o = cJSON_CreateObject();
    bool ok = o && add_ref(o, "t", "deleted") && add_ref(o, "key", d->key);
    if (ok && d->target_key && strcmp(d->target_key, d->key) != 0) ok = add_ref(o, "target_key", d->target_key);
    if (ok) ok = add_uint(o, "pass", (uint64_t)d->pass);
    struct manifest_record rec = {.type = MANIFEST_REC_DELETED, .deleted = *d};
    if (!rec.deleted.target_key) rec.deleted.target_key = d->key;
    return writer_finish(w, o, ok, &rec);
}

int manifest_writer_pass(struct manifest_writer *w, const struct manifest_pass *p)
{
    cJSON *o;
    bool ok;

    if (writer_usable(w) != 0) return -1;
    if (!p || w->stage != WRITER_BODY || p->pass < 1 || !isfinite(p->started) || !isfinite(p->duration) ||
        !u64_ok(p->listed) || !u64_ok(p->copied) || !u64_ok(p->bytes) || !u64_ok(p->failed) ||
        !u64_ok(p->skipped))
        return writer_fail(w, EINVAL);
    o = cJSON_CreateObject();
    ok = o && add_str(o, "t", "pass") && add_num(o, "pass", p->pass) &&
         add_bool(o, "maintenance", p->maintenance) && add_num(o, "started", p->started) &&
         add_num(o, "duration", p->duration) && add_num(o, "listed", (double)p->listed) &&
         add_num(o, "copied", (double)p->copied) && add_num(o, "bytes", (double)p->bytes) &&
         add_num(o, "failed", (double)p->failed) && add_num(o, "skipped", (double)p->skipped);
    if (writer_finish(w, o, ok, &(struct manifest_record){.type = MANIFEST_REC_PASS, .pass = *p}) != 0) return -1;
    return writer_flush_sync(w);
}

int manifest_writer_trailer(struct manifest_writer *w, const struct manifest_trailer *t)
{
    cJSON *o;
    bool ok;

    if (writer_usable(w) != 0) return -1;
    if (!t || w->stage != WRITER_BODY || !t->result || !i64_ok(t->ended) || !u64_ok(t->objects) ||
        !u64_ok(t->bytes) || !u64_ok(t->failed) || t->passes < 0 || !isfinite(t->gap))
        return writer_fail(w, EINVAL);
    o = cJSON_CreateObject();
    ok = o && add_str(o, "t", "trailer") && add_num(o, "ended", (double)t->ended) &&
         add_str(o, "result", t->result) && add_num(o, "objects", (double)t->objects) &&
         add_num(o, "bytes", (double)t->bytes) && add_num(o, "failed", (double)t->failed) &&
         add_num(o, "passes", t->passes) && add_num(o, "gap", t->gap) &&
         add_bool(o, "maintenance", t->maintenance);
    if (ok && t->archived) ok = u64_ok(t->archived) && add_num(o, "archived", (double)t->archived);
    if (writer_finish(w, o, ok, &(struct manifest_record){.type = MANIFEST_REC_TRAILER, .trailer = *t}) != 0)
        return -1;
    w->stage = WRITER_DONE;
    return writer_flush_sync(w);
}

int manifest_writer_sync(struct manifest_writer *w)
{
    if (writer_usable(w) != 0) return -1;
    return writer_flush_sync(w);
}

int manifest_writer_close(struct manifest_writer *w)
{
    int rc = 0, saved = 0;

    if (!w) return 0;
    if (w->failed || writer_flush_sync(w) != 0) {
        rc = -1;
        saved = w->saved_errno;
    }
    if (close(w->fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    free(w);
    if (rc != 0) errno = saved;
    return rc;
}
