/* The manifests a backup holds (see replicator/store.h): listing them newest first, downloading one (whole or its
 * summary), resolving a delta's chain. Must not: write or delete anything in the target. */
#include <errno.h>
#include <stdarg.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "manifest/chain.h"
#include "replicator/result.h"
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

void store_lister_error(struct rep_ctx *ctx, struct s3_lister *l, char *err, size_t errlen, const char *fmt, ...)
{
    if (ctx->interrupted) {
        snprintf(err, errlen, "interrupted");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w < errlen) snprintf(err + w, errlen - (size_t)w, ": %s", s3_lister_error(l));
}

/* A record's name: directly under prefix and ending in suffix (manifests: ".jsonl", or ".jsonl.gz" for the
 * compressed copies, full or delta, that runs store now). */
static bool name_ok(const char *key, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (strncmp(key, prefix, pl) != 0) return false;
    const char *name = key + pl;
    size_t l = strlen(name);
    if (strchr(name, '/')) return false;
    if (strcmp(prefix, MANIFEST_PREFIX) == 0 && strcmp(suffix, ".jsonl") == 0 && l > 9 &&
        strcmp(name + l - 9, ".jsonl.gz") == 0)
        return true;
    return l > sl && strcmp(name + l - sl, suffix) == 0;
}

int store_list(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, size_t keep,
               struct stored_manifest **out, size_t *n, unsigned long *total, char *err, size_t errlen)
{
    return store_list_records(ctx, r, bucket, MANIFEST_PREFIX, ".jsonl", keep, out, n, total, err, errlen);
}

bool store_is_compressed(const char *key)
{
    size_t l = strlen(key);
    return l > 3 && strcmp(key + l - 3, ".gz") == 0;
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
        } else {
            store_lister_error(ctx, l, err, errlen, "listing %s in s3://%s", prefix, bucket);
            rc = !ctx->interrupted && strcmp(s3_lister_error_code(l), "NoSuchBucket") == 0 ? STORE_NO_BUCKET : -1;
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

/* Inflates the first bytes of a gzip file into f, up to the end of the last whole line they hold. */
static int inflate_head(const char *in, size_t len, FILE *f)
{
    z_stream z = {0};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return -1;
    size_t cap = 8 * SUMMARY_CHUNK, used = 0;
    char *out = malloc(cap);
    int zr = Z_OK;
    z.next_in = (unsigned char *)in;
    z.avail_in = (unsigned)len;
    while (out && zr == Z_OK && used < cap) {
        z.next_out = (unsigned char *)out + used;
        z.avail_out = (unsigned)(cap - used);
        zr = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
    }
    inflateEnd(&z);
    const char *nl = out && used ? memrchr(out, '\n', used) : NULL;
    int rc = (zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR) && nl &&
                     fwrite(out, 1, (size_t)(nl - out) + 1, f) == (size_t)(nl - out) + 1
                 ? 0
                 : -1;
    free(out);
    return rc;
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
    if (summary_only && store_is_compressed(m->key) && m->size > 2 * (uint64_t)SUMMARY_CHUNK) {
        /* a compressed copy begins with its summary: its first bytes, inflated, to the last whole line */
        struct s3_response *h = get_range(rd, bucket, m->key, 0, SUMMARY_CHUNK - 1);
        if (!h || h->err != S3_OK)
            snprintf(err, errlen, "%s", h ? h->message : "out of memory");
        else if (inflate_head(h->body, h->body_len, f) != 0)
            snprintf(err, errlen, "%s is not a readable gzip file", m->key);
        else
            rc = 0;
        s3_response_free(h);
    } else if (summary_only && !store_is_compressed(m->key) && m->size > 2 * (uint64_t)SUMMARY_CHUNK) {
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
    return s->trailer_found && rep_result_first_pass_done(rep_result_from_name(s->result));
}


/* ---- chains ---- */

#define CHAIN_LINKS_MAX (4 * MANIFEST_CHAIN_MAX_DEPTH) /* a loop of bases, or a chain no run of ours writes */

struct chain_files {
    char **paths, **names;
    size_t n;
};

static void chain_files_free(struct chain_files *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->paths[i][0]) unlink(c->paths[i]);
        free(c->paths[i]);
        free(c->names[i]);
    }
    free(c->paths);
    free(c->names);
    memset(c, 0, sizeof *c);
}

/* Downloads m and its bases, newest first, into c (c->paths[0] = m). The path of m already downloaded may be
 * given (first); it is not removed. 0, or -1 with a message naming what is missing. */
static int chain_download(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m,
                          const char *first, struct chain_files *c, char *err, size_t errlen)
{
    char key[1200], shown[300];
    snprintf(key, sizeof key, "%s", m->key);
    snprintf(shown, sizeof shown, "%s", store_run_name(m->key));
    uint64_t size = m->size;
    for (;;) {
        if (c->n >= CHAIN_LINKS_MAX) {
            snprintf(err, errlen, "the chain of manifest %s is longer than %d manifests (a loop?)", shown,
                     CHAIN_LINKS_MAX);
            return -1;
        }
        char **np = realloc(c->paths, (c->n + 1) * sizeof *np), **nn = np ? realloc(c->names, (c->n + 1) * sizeof *nn) : NULL;
        if (np) c->paths = np;
        if (nn) c->names = nn;
        char *path = np && nn ? calloc(1, 4200) : NULL;
        char *name = path ? strdup(store_run_name(key)) : NULL;
        if (!name) {
            free(path);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->paths[c->n] = path;
        c->names[c->n] = name;
        c->n++;
        char derr[1024];
        if (c->n == 1 && first) {
            snprintf(path, 4200, "%s", first);
        } else {
            struct stored_manifest sm = {.key = key, .size = size};
            if (store_download(rd, bucket, &sm, false, path, 4200, derr, sizeof derr) != 0) {
                path[0] = '\0';
                snprintf(err, errlen, "manifest %s%s%s cannot be read from s3://%s/%s: %s", name,
                         c->n > 1 ? ", the base of " : "", c->n > 1 ? c->names[c->n - 2] : "", bucket, key, derr);
                return -1;
            }
        }
        struct manifest_summary s;
        if (manifest_summary_read(path, &s, derr, sizeof derr) != 0) {
            snprintf(err, errlen, "manifest %s (s3://%s/%s) is unreadable: %s", name, bucket, key,
                     store_strip_path(derr, path));
            return -1;
        }
        bool more = s.base != NULL;
        if (more) snprintf(key, sizeof key, "%s%s", MANIFEST_PREFIX, s.base);
        size = 0;
        manifest_summary_free(&s);
        if (!more) return 0;
    }
}

int store_move_file(const char *from, const char *to)
{
    if (rename(from, to) == 0) return 0;
    if (errno != EXDEV) return -1;
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[1 << 16];
    size_t n;
    bool ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = false;
    if (!ok) unlink(to);
    else unlink(from);
    return ok ? 0 : -1;
}

struct manifest_point *store_chain_point(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m,
                                         const char *first, const char *keep_dir, size_t *links, char *err,
                                         size_t errlen)
{
    struct chain_files c = {0};
    struct manifest_point *pt = NULL;
    if (links) *links = 0;
    if (chain_download(rd, bucket, m, first, &c, err, errlen) == 0) {
        /* oldest first: the full manifest, then each delta on the one before it */
        for (size_t i = 0; i < c.n / 2; i++) {
            char *t = c.paths[i];
            c.paths[i] = c.paths[c.n - 1 - i];
            c.paths[c.n - 1 - i] = t;
            t = c.names[i];
            c.names[i] = c.names[c.n - 1 - i];
            c.names[c.n - 1 - i] = t;
        }
        char perr[1024];
        pt = manifest_point_build_chain((const char *const *)c.paths, (const char *const *)c.names, c.n, NULL, 0,
                                        perr, sizeof perr);
        if (!pt)
            snprintf(err, errlen, "the restore point of %s (a chain of %zu manifests back to %s) cannot be built: %s",
                     store_run_name(m->key), c.n, c.names[0], perr);
        if (links) *links = c.n;
    }
    if (first)
        for (size_t i = 0; i < c.n; i++)
            if (strcmp(c.paths[i], first) == 0) c.paths[i][0] = '\0'; /* the caller's copy stays */
    for (size_t i = 0; pt && keep_dir && i < c.n; i++) {
        if (!c.paths[i][0]) continue;
        char to[4600];
        snprintf(to, sizeof to, "%s/%s", keep_dir, c.names[i]);
        if (store_move_file(c.paths[i], to) != 0) {
            snprintf(err, errlen, "cannot keep manifest %s in %s: %s", c.names[i], keep_dir, strerror(errno));
            manifest_point_free(pt);
            pt = NULL;
        } else {
            c.paths[i][0] = '\0';
        }
    }
    chain_files_free(&c);
    return pt;
}

int store_chain_full(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m, const char *path,
                     char *out, size_t outlen, char *err, size_t errlen)
{
    struct manifest_point *pt = store_chain_point(rd, bucket, m, path, NULL, NULL, err, errlen);
    if (!pt) return -1;
    FILE *f = store_temp_file(out, outlen);
    int rc = -1;
    if (!f) {
        snprintf(err, errlen, "cannot create a temporary file: %s", strerror(errno));
    } else {
        fclose(f);
        struct manifest_store_info info;
        char werr[1024];
        rc = manifest_store_write(path, pt, NULL, out, false, &info, werr, sizeof werr);
        if (rc != 0) {
            snprintf(err, errlen, "writing the restore point of %s: %s", store_run_name(m->key), werr);
            unlink(out);
        }
    }
    if (rc != 0) out[0] = '\0';
    manifest_point_free(pt);
    return rc;
}
