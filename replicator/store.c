/* The manifests a backup holds. See replicator/store.h. */
#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "replicator/store.h"
#include "s3/list.h"


void store_free(struct stored_manifest *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(m[i].key);
    free(m);
}

void store_lister_ready(void *ready)
{
    *(bool *)ready = true;
}

enum s3_list_status store_lister_next(struct rep_ctx *ctx, struct s3_lister *l, bool *ready,
                                      const struct s3_object_info **oi)
{
    for (;;) {
        enum s3_list_status st = s3_lister_next(l, oi);
        if (st != S3_LIST_WAIT) return st;
        *ready = false;
        while (!*ready && !ctx->interrupted) ev_run(s3_loop_ev(ctx->loop), EVRUN_ONCE);
        if (ctx->interrupted) return S3_LIST_ERROR;
    }
}

/* A record's name: directly under prefix and ending in suffix. */
static bool name_ok(const char *key, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strncmp(key, prefix, pl) != 0) return false;
    const char *name = key + pl;
    size_t l = strlen(name);
    return l > sl && !strchr(name, '/') && strcmp(name + l - sl, suffix) == 0;
}

int store_list(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, size_t keep,
               struct stored_manifest **out, size_t *n, unsigned long *total, char *err, size_t errlen)
{
    return store_list_records(ctx, r, bucket, MANIFEST_PREFIX, ".jsonl", keep, out, n, total, err, errlen);
}

int store_list_records(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, const char *prefix,
                       const char *suffix, size_t keep, struct stored_manifest **out, size_t *n, unsigned long *total,
                       char *err, size_t errlen)
{
    struct stored_manifest *ring = calloc(keep, sizeof *ring);
    bool ready = false;
    struct s3_lister *l = ring ? s3_lister_new(r, bucket, prefix, NULL, NULL, 0, store_lister_ready, &ready) : NULL;
    *out = NULL;
    *n = 0;
    *total = 0;
    if (!l) {
        free(ring);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    unsigned long seen = 0;
    for (;;) {
        const struct s3_object_info *oi;
        enum s3_list_status st = store_lister_next(ctx, l, &ready, &oi);
        if (st == S3_LIST_OBJECT) {
            if (!name_ok(oi->key, prefix, suffix)) continue;
            struct stored_manifest *slot = &ring[seen % keep];
            free(slot->key);
            slot->key = strdup(oi->key);
            slot->size = oi->size;
            if (!slot->key) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            seen++;
        } else if (st == S3_LIST_END) {
            break;
        } else if (ctx->interrupted) {
            snprintf(err, errlen, "interrupted");
            rc = -1;
            break;
        } else {
            snprintf(err, errlen, "listing %s in s3://%s: %s", prefix, bucket,
                     s3_lister_error(l));
            rc = strcmp(s3_lister_error_code(l), "NoSuchBucket") == 0 ? STORE_NO_BUCKET : -1;
            break;
        }
    }
    s3_lister_free(l);
    if (rc != 0) {
        for (size_t i = 0; i < keep; i++)
            free(ring[i].key);
        free(ring);
        return rc;
    }
    size_t have = seen < keep ? (size_t)seen : keep;
    struct stored_manifest *res = calloc(have ? have : 1, sizeof *res);
    if (!res) {
        for (size_t i = 0; i < keep; i++)
            free(ring[i].key);
        free(ring);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < have; i++)
        res[i] = ring[(seen - 1 - i) % keep]; /* newest first */
    free(ring);
    *out = res;
    *n = have;
    *total = seen;
    return 0;
}

FILE *store_temp_file(char *path, size_t len)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    snprintf(path, len, "%s/replicate-manifest-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "w+");
    if (!f) {
        close(fd);
        unlink(path);
    }
    return f;
}

struct file_sink {
    FILE *f;
    bool failed;
};

static bool sink_body(const void *data, size_t len, void *ud)
{
    struct file_sink *s = ud;
    if (fwrite(data, 1, len, s->f) != len) {
        s->failed = true;
        return false;
    }
    return true;
}

static void sink_reset(void *ud)
{
    struct file_sink *s = ud;
    fflush(s->f);
    rewind(s->f);
    if (ftruncate(fileno(s->f), 0) != 0) s->failed = true;
}

/* GETs bytes first..last (inclusive) of a target object into memory; for small ranges only. */
static struct s3_response *get_range(struct s3_reader *r, const char *bucket, const char *key, uint64_t first,
                                     uint64_t last)
{
    char range[64];
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)first, (unsigned long long)last);
    struct s3_header h[] = {{"Range", range}};
    struct s3_request_spec s = {.method = "GET",
                                .bucket = bucket,
                                .key = key,
                                .headers = h,
                                .nheaders = 1,
                                .max_body = SUMMARY_CHUNK + 1024};
    return s3_reader_request_wait(r, &s);
}

/* Downloads a stored manifest into a new temporary file whose path is written to path (the caller unlinks
 * it). With summary_only, a large manifest is reduced to its first line (the header) and its last
 * SUMMARY_CHUNK bytes (the pass lines of the last passes and the trailer): enough for manifest_summary_read,
 * at a bounded cost. Returns 0, or -1 with a message in err. */
int store_download(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m, bool summary_only,
                   char *path, size_t pathlen, char *err, size_t errlen)
{
    FILE *f = store_temp_file(path, pathlen);
    if (!f) {
        snprintf(err, errlen, "cannot create a temporary file in %s: %s",
                 getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp", strerror(errno));
        path[0] = '\0';
        return -1;
    }
    int rc = -1;
    if (summary_only && m->size > 2 * (uint64_t)SUMMARY_CHUNK) {
        struct s3_response *h = get_range(rd, bucket, m->key, 0, SUMMARY_CHUNK - 1);
        struct s3_response *t =
            h && h->err == S3_OK ? get_range(rd, bucket, m->key, m->size - SUMMARY_CHUNK, m->size - 1) : NULL;
        if (!h || h->err != S3_OK || !t || t->err != S3_OK) {
            snprintf(err, errlen, "%s",
                     !h                ? "out of memory"
                     : h->err != S3_OK ? h->message
                     : t               ? t->message
                                       : "out of memory");
        } else {
            /* the header line, then the tail from its first complete line on */
            const char *nl = h->body ? memchr(h->body, '\n', h->body_len) : NULL;
            size_t hl = nl ? (size_t)(nl - h->body) + 1 : h->body_len;
            const char *tn = t->body ? memchr(t->body, '\n', t->body_len) : NULL;
            size_t toff = tn ? (size_t)(tn - t->body) + 1 : t->body_len;
            bool ok = (hl == 0 || fwrite(h->body, 1, hl, f) == hl) && (!nl ? fputc('\n', f) != EOF : true) &&
                      (t->body_len == toff ||
                       fwrite(t->body + toff, 1, t->body_len - toff, f) == t->body_len - toff);
            if (ok)
                rc = 0;
            else
                snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
        }
        s3_response_free(h);
        s3_response_free(t);
    } else {
        struct file_sink sink = {.f = f};
        struct s3_request_spec s = {.method = "GET",
                                    .bucket = bucket,
                                    .key = m->key,
                                    .on_body = sink_body,
                                    .on_reset = sink_reset,
                                    .body_ud = &sink};
        struct s3_response *r = s3_reader_request_wait(rd, &s);
        if (!r)
            snprintf(err, errlen, "out of memory");
        else if (sink.failed)
            snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
        else if (r->err != S3_OK)
            snprintf(err, errlen, "%s", r->message);
        else
            rc = 0;
        s3_response_free(r);
    }
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(path);
        path[0] = '\0';
    }
    return rc;
}

/* The run id part of a manifest key or path: "<run id>.jsonl" after the last '/'. */
const char *store_run_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* An error message about a temporary copy, without the temporary path (the caller names the manifest). */
const char *store_strip_path(const char *err, const char *path)
{
    size_t pl = strlen(path);
    if (pl && strncmp(err, path, pl) == 0) err += pl;
    while (*err == ':' || *err == ' ')
        err++;
    return err;
}

/* Whether a manifest header's target URL names our target (same bucket and prefix). */
bool store_manifest_for(const char *bucket, const char *prefix, const char *target_url)
{
    char *b = NULL, *p = NULL, err[256];
    if (!target_url || cli_parse_s3_url(target_url, &b, &p, err, sizeof err) != 0) return false;
    bool same = strcmp(b, bucket) == 0 && strcmp(p, prefix) == 0;
    free(b);
    free(p);
    return same;
}

/* A run whose first pass completed recorded every object it saw. */
bool store_summary_complete(const struct manifest_summary *s)
{
    return s->trailer_found && s->result &&
           (!strcmp(s->result, "ok") || !strcmp(s->result, "failed") || !strcmp(s->result, "not-converged"));
}

