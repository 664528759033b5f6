/* The replication run. */
#include <cJSON.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "replicator/mstore.h"
#include "replicator/lease.h"
#include "replicator/maintenance.h"
#include "replicator/metrics.h"
#include "replicator/output.h"
#include "replicator/notify.h"
#include "replicator/pass.h"
#include "replicator/retain.h"
#include "replicator/run.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/target.h"
#include "replicator/versions.h"
#include "s3/log.h"
#include "s3/ops.h"

void rep_note_failure(struct rep_ctx *ctx, const char *key, const char *reason)
{
    if (ctx->nfailures >= MAX_REPORTED) return;
    char *s = NULL;
    if (asprintf(&s, "%s: %s", key, reason) >= 0) ctx->failures[ctx->nfailures++] = s;
}

void rep_note_extra(struct rep_ctx *ctx, const char *key)
{
    if (ctx->nextras >= MAX_REPORTED) return;
    char *s = strdup(key);
    if (s) ctx->extras[ctx->nextras++] = s;
}

void rep_note_archived(struct rep_ctx *ctx, const char *key, const char *storage_class)
{
    if (ctx->narchived >= MAX_REPORTED) return;
    char *s = NULL;
    if (asprintf(&s, "%s (%s)", key, storage_class ? storage_class : "InvalidObjectState") >= 0)
        ctx->archived[ctx->narchived++] = s;
}

bool rep_class_archived(const char *storage_class)
{
    return storage_class && (strcmp(storage_class, "GLACIER") == 0 || strcmp(storage_class, "DEEP_ARCHIVE") == 0);
}

static void stats_add(struct rep_stats *a, const struct rep_stats *b)
{
    a->listed += b->listed;
    a->copied += b->copied;
    a->bytes += b->bytes;
    a->skipped += b->skipped;
    a->failed += b->failed;
    a->extra = b->extra; /* a property of the last listing, not a sum */
    a->vanished += b->vanished;
    a->archived = b->archived; /* like extra: what the last listing found */
    a->checked += b->checked;
}

static struct s3_config g_src_cfg, g_dst_cfg;

int rep_open(struct rep_ctx *ctx, const struct rep_options *o, bool need_source)
{
    char err[768];
    memset(ctx, 0, sizeof *ctx);
    ctx->o = o;
    if (need_source && s3_config_resolve(&o->src_req, &g_src_cfg, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "source: %s", err);
        return EXIT_USAGE;
    }
    if (s3_config_resolve(&o->dst_req, &g_dst_cfg, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "target: %s", err);
        return EXIT_USAGE;
    }
    struct s3_loop_options lo;
    s3_loop_options_default(&lo);
    lo.max_host_connections = o->jobs + 8;
    lo.stall_timeout = o->timeout;
    lo.retry.max_attempts = o->retries;
    ctx->loop = s3_loop_new(NULL, &lo);
    if (!ctx->loop) {
        s3_log_user(S3_LOG_ERROR, "cannot initialise the network layer");
        return EXIT_FAILED;
    }
    if (need_source) {
        ctx->src = s3_reader_open(ctx->loop, &g_src_cfg, err, sizeof err);
        if (!ctx->src) {
            s3_log_user(S3_LOG_ERROR, "source: %s", err);
            return EXIT_USAGE;
        }
    }
    ctx->dst = s3_client_new(ctx->loop, &g_dst_cfg, err, sizeof err);
    if (!ctx->dst) {
        s3_log_user(S3_LOG_ERROR, "target: %s", err);
        return EXIT_USAGE;
    }
    ctx->dst_r = s3_client_reader(ctx->dst);
    if (o->src_req.insecure || o->dst_req.insecure)
        s3_log_user(S3_LOG_WARN, "--insecure: TLS certificate verification is off, so anyone on the network path "
                                 "can read and change what is sent; give the CA with --source-ca-bundle/"
                                 "--target-ca-bundle instead");
    ctx->server_side = need_source && s3_config_same_account(&g_src_cfg, &g_dst_cfg);
    /* curl limits connections per host name: one endpoint is one host, unless both address their buckets as
     * virtual hosts (bucket.endpoint) and the buckets differ */
    ctx->one_host = !need_source || !g_src_cfg.endpoint || !g_dst_cfg.endpoint ||
                    (strcmp(g_src_cfg.endpoint, g_dst_cfg.endpoint) == 0 &&
                     (g_src_cfg.path_style || g_dst_cfg.path_style || strcmp(o->src_bucket, o->dst_bucket) == 0));
    /* --jobs is the ceiling: each endpoint that answers SlowDown/503 lowers it (s3/retry.h, AIMD) */
    if (ctx->src) s3_reader_adapt(ctx->src, o->jobs);
    s3_reader_adapt(ctx->dst_r, o->jobs);
    return EXIT_OK;
}

int rep_jobs(const struct rep_ctx *ctx)
{
    int n = ctx->o->jobs, s = s3_reader_concurrency(ctx->src), d = s3_reader_concurrency(ctx->dst_r);
    if (s < n) n = s;
    if (d < n) n = d;
    return n;
}

/* Both sides' throttled replies and the lowest concurrency either reached. */
static void concurrency_totals(const struct rep_ctx *ctx, double *lowest, unsigned long *throttled)
{
    const struct s3_reader *sides[2] = {ctx->src, ctx->dst_r};
    *lowest = ctx->o->jobs;
    *throttled = 0;
    for (int i = 0; i < 2; i++) {
        if (!sides[i]) continue;
        const struct s3_aimd *a = s3_reader_aimd(sides[i]);
        if (a->lowest < *lowest) *lowest = a->lowest;
        *throttled += a->throttled;
    }
}

/* The concurrency reached: {"jobs", "lowest", "final", "throttled", and the same per side}. */
static cJSON *concurrency_json(const struct rep_ctx *ctx)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "jobs", ctx->o->jobs);
    cJSON_AddNumberToObject(c, "final", rep_jobs(ctx));
    const struct s3_reader *sides[2] = {ctx->src, ctx->dst_r};
    const char *names[2] = {"source", "target"};
    for (int i = 0; i < 2; i++) {
        if (!sides[i]) continue;
        const struct s3_aimd *a = s3_reader_aimd(sides[i]);
        cJSON *sj = cJSON_AddObjectToObject(c, names[i]);
        cJSON_AddNumberToObject(sj, "throttled", (double)a->throttled);
        cJSON_AddNumberToObject(sj, "backoffs", (double)a->cuts);
        cJSON_AddNumberToObject(sj, "lowest", floor(a->lowest));
        cJSON_AddNumberToObject(sj, "final", s3_aimd_limit(a));
    }
    double lowest;
    unsigned long throttled;
    concurrency_totals(ctx, &lowest, &throttled);
    cJSON_AddNumberToObject(c, "lowest", floor(lowest));
    cJSON_AddNumberToObject(c, "throttled", (double)throttled);
    return c;
}

void rep_close(struct rep_ctx *ctx)
{
    s3_reader_close(ctx->src);
    if (ctx->versions) {
        unsigned long lists, learned, missed;
        versions_stats(ctx->versions, &lists, &learned, &missed);
        if (lists)
            s3_log(S3_LOG_INFO, "new versions: %lu learned with %lu ListObjectVersions requests, %lu read one by one",
                   learned, lists, missed);
        versions_free(ctx->versions);
        ctx->versions = NULL;
    }
    s3_client_free(ctx->dst);
    s3_loop_free(ctx->loop);
    manifest_index_free(ctx->idx);
    manifest_point_builder_free(ctx->pb);
    pass_bounds_free(ctx);
    for (size_t i = 0; i < ctx->nfailures; i++) free(ctx->failures[i]);
    for (size_t i = 0; i < ctx->nextras; i++) free(ctx->extras[i]);
    for (size_t i = 0; i < ctx->narchived; i++) free(ctx->archived[i]);
    s3_config_free(&g_src_cfg);
    s3_config_free(&g_dst_cfg);
}

/* ---- output ---- */

/* ---- signals and progress ---- */

static struct rep_ctx *g_ctx;
static int g_signals;

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
    (void)ev;
    (void)revents;
    g_signals++;
    if (!g_ctx) return;
    if (g_signals == 1) {
        if (g_ctx->o->progress) fputc('\n', stderr); /* below the progress line */
        s3_log_user(S3_LOG_INFO, "%s received: stopping (finishing nothing new, switching maintenance off)",
                    strsignal(w->signum));
    }
    g_ctx->interrupted = true;
    s3_loop_cancel_all(g_ctx->loop);
}

static void on_progress(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    struct rep_ctx *ctx = w->data;
    const struct rep_stats *s = &ctx->cur;
    double el = ev_now(ev) - ctx->pass_started;
    char b[32], r[32];
    rep_fmt_bytes(s->bytes, b, sizeof b);
    rep_fmt_bytes(el > 0 ? (uint64_t)(s->bytes / el) : 0, r, sizeof r);
    if (ctx->o->progress)
        fprintf(stderr, "\r\033[Kpass %d: listed %llu, copied %llu (%s; %.0f obj/s, %s/s), unchanged %llu, failed %llu",
                ctx->pass, (unsigned long long)s->listed, (unsigned long long)s->copied, b,
                el > 0 ? s->copied / el : 0.0, r,
                (unsigned long long)s->skipped, (unsigned long long)s->failed);
    else {
        struct s3_log_field f[] = {{"pass", NULL, ctx->pass}, {"listed", NULL, (double)s->listed},
                                   {"copied", NULL, (double)s->copied}, {"bytes", NULL, (double)s->bytes},
                                   {"unchanged", NULL, (double)s->skipped}, {"failed", NULL, (double)s->failed}};
        s3_log_event(S3_LOG_INFO, "progress", NULL, f, sizeof f / sizeof *f,
                     "progress pass=%d listed=%llu copied=%llu bytes=%llu unchanged=%llu failed=%llu", ctx->pass,
                     (unsigned long long)s->listed, (unsigned long long)s->copied, (unsigned long long)s->bytes,
                     (unsigned long long)s->skipped, (unsigned long long)s->failed);
    }
}

static void progress_clear(const struct rep_options *o)
{
    if (o->progress) fprintf(stderr, "\r\033[K");
}

/* ---- manifest ---- */

static void load_index(struct rep_ctx *ctx, const char *dir)
{
    ctx->idx = manifest_index_new();
    if (!ctx->idx) abort();
    size_t n = 0, use = 0;
    char **list = state_manifests(dir, &n);
    /* newest first, back to the last run whose first pass completed (it recorded every object) */
    while (use < n) {
        struct manifest_summary sum;
        char err[256];
        bool full = false;
        if (manifest_summary_read(list[use], &sum, err, sizeof err) == 0) {
            full = sum.trailer_found && sum.result &&
                   (!strcmp(sum.result, "ok") || !strcmp(sum.result, "failed") || !strcmp(sum.result, "not-converged"));
            manifest_summary_free(&sum);
        } else {
            s3_log(S3_LOG_WARN, "manifest %s is unreadable (%s); ignoring it", list[use], err);
        }
        use++;
        if (full) break;
    }
    /* then load them oldest first, so newer records win */
    for (size_t i = use; i-- > 0;) {
        int corrupt = 0;
        manifest_index_load(ctx->idx, list[i], &corrupt);
        if (corrupt) s3_log(S3_LOG_WARN, "manifest %s: %d corrupt line(s) skipped", list[i], corrupt);
    }
    state_free_list(list, n);
}

/* Aborts multipart uploads a killed run left behind under the target prefix. */
static void abort_leftovers(struct rep_ctx *ctx)
{
    const struct rep_options *o = ctx->o;
    struct s3_query_param q[] = {{"uploads", ""}, {"prefix", o->dst_prefix}};
    struct s3_request_spec s = {.method = "GET", .bucket = o->dst_bucket, .query = q, .nquery = o->dst_prefix[0] ? 2 : 1,
                                .max_body = S3_XML_MAX_BODY};
    struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
    struct s3_upload_list ul = {0};
    if (!r || r->err != S3_OK || s3_xml_parse_uploads(r->body, r->body_len, &ul) != S3_OK) {
        s3_log(S3_LOG_WARN, "could not list unfinished multipart uploads in the target: %s",
               r ? r->message : "out of memory");
        s3_response_free(r);
        return;
    }
    s3_response_free(r);
    for (size_t i = 0; i < ul.count; i++) {
        if (strncmp(ul.uploads[i].key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0 && !o->dst_prefix[0]) continue;
        struct s3_query_param aq[] = {{"uploadId", ul.uploads[i].upload_id}};
        struct s3_request_spec as = {.method = "DELETE", .bucket = o->dst_bucket, .key = ul.uploads[i].key,
                                     .query = aq, .nquery = 1};
        struct s3_response *ar = s3_request_wait(ctx->dst, &as);
        if (ar && ar->err == S3_OK)
            s3_log(S3_LOG_WARN, "aborted an unfinished multipart upload of %s left by an earlier run",
                   ul.uploads[i].key);
        s3_response_free(ar);
    }
    s3_upload_list_free(&ul);
}

/* A byte range of an open file as a request body, read as the request sends it (no copy of the file in memory). */
struct file_range {
    int fd;
    off_t off, end;
};

static size_t file_range_read(char *buf, size_t room, void *ud)
{
    struct file_range *f = ud;
    if (f->off >= f->end) return S3_SOURCE_ABORT;
    if ((off_t)room > f->end - f->off) room = (size_t)(f->end - f->off);
    ssize_t n = pread(f->fd, buf, room, f->off);
    if (n <= 0) return S3_SOURCE_ABORT; /* the file shrank or cannot be read: fail rather than wait */
    f->off += n;
    return (size_t)n;
}

/* PUT (an object or an UploadPart) of len bytes of fd from off, streamed from the file with Content-MD5,
 * and sent again after the retry policy's delay on a transient failure. Returns the last response. */
static struct s3_response *put_file_range(struct rep_ctx *ctx, const char *key, const struct s3_query_param *q,
                                          size_t nq, bool typed, int fd, off_t off, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE], buf[64 * 1024];
    unsigned int mdlen = 0;
    char b64[25];
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestInit_ex(m, EVP_md5(), NULL);
    for (size_t done = 0; ok && done < len;) {
        size_t want = len - done < sizeof buf ? len - done : sizeof buf;
        ssize_t n = pread(fd, buf, want, off + (off_t)done);
        ok = n > 0 && EVP_DigestUpdate(m, buf, (size_t)n);
        done += n > 0 ? (size_t)n : 0;
    }
    ok = ok && EVP_DigestFinal_ex(m, md, &mdlen) && mdlen == 16;
    EVP_MD_CTX_free(m);
    if (!ok) return NULL;
    s3_md5_base64(md, b64);
    struct s3_header h[4] = {{"Content-MD5", b64}, {"Content-Type", "application/x-ndjson"}};
    int max = s3_loop_retry_policy(ctx->loop)->max_attempts;
    for (int attempt = 1;; attempt++) {
        struct file_range f = {fd, off, off + (off_t)len};
        char until[RETAIN_UNTIL_LEN]; /* --retain: a whole manifest is locked like the versions it records */
        size_t nh = typed ? 2 + retain_headers(ctx->o, h + 2, until) : 1;
        struct s3_request_spec s = {.method = "PUT", .bucket = ctx->o->dst_bucket, .key = key, .query = q,
                                    .nquery = nq, .headers = h, .nheaders = nh, .body_len = len,
                                    .body_source = file_range_read, .source_ud = &f};
        struct s3_response *r = s3_request_wait(ctx->dst, &s);
        if (!r || r->err == S3_OK || attempt >= max) return r;
        enum s3_retry_class cls = s3_retry_classify(r->status, r->s3err.code, r->curl_code);
        if (cls == S3_RETRY_NO && !(r->s3err.code && strcmp(r->s3err.code, "BadDigest") == 0)) return r;
        double delay = s3_loop_retry_delay(ctx->loop, attempt, cls == S3_RETRY_NO ? S3_RETRY_YES : cls, -1);
        s3_log(S3_LOG_INFO, "%s; sending it again in %.2fs (attempt %d of %d)", r->message, delay, attempt + 1,
               max);
        s3_response_free(r);
        struct timespec ts = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* Uploads a manifest to .replicate/manifests/NAME (NAME: "RUN.jsonl.gz", or a shard's "RUN.shard-...jsonl"),
 * streamed from the local file: one PUT, or parts of 1 GiB above PutObject's 5 GiB limit. Memory does not grow
 * with the manifest. */
static int upload_manifest(struct rep_ctx *ctx, const char *path, const char *name)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    char key[512];
    snprintf(key, sizeof key, "%s%s", MANIFEST_PREFIX, name);
    const size_t part = (size_t)1 << 30;
    size_t size = (size_t)st.st_size;
    int rc = -1;
    struct s3_response *r = NULL;
    if (size <= ((size_t)5 << 30)) {
        r = put_file_range(ctx, key, NULL, 0, true, fd, 0, size);
        if (r && r->err == S3_OK) rc = 0;
        else s3_log(S3_LOG_ERROR, "uploading the manifest failed: %s", r ? r->message : "cannot read it");
        s3_response_free(r);
        close(fd);
        return rc;
    }
    struct s3_header h[3] = {{"Content-Type", "application/x-ndjson"}};
    char until[RETAIN_UNTIL_LEN]; /* its parts carry Content-MD5, so the upload can be created locked */
    struct s3_query_param cq[] = {{"uploads", ""}};
    struct s3_request_spec cs = {.method = "POST", .bucket = ctx->o->dst_bucket, .key = key, .query = cq, .nquery = 1,
                                 .headers = h, .nheaders = 1 + retain_headers(ctx->o, h + 1, until),
                                 .error_in_200 = true};
    r = s3_request_wait(ctx->dst, &cs);
    char *uid = NULL;
    if (!r || r->err != S3_OK || s3_xml_parse_initiate(r->body, r->body_len, &uid) != S3_OK) {
        s3_log(S3_LOG_ERROR, "uploading the manifest failed: %s", r ? r->message : "out of memory");
        s3_response_free(r);
        close(fd);
        return -1;
    }
    s3_response_free(r);
    size_t nparts = (size + part - 1) / part;
    char **etags = calloc(nparts, sizeof *etags);
    bool ok = etags != NULL;
    for (size_t i = 0; ok && i < nparts; i++) {
        size_t len = i + 1 < nparts ? part : size - i * part;
        char pn[24];
        snprintf(pn, sizeof pn, "%zu", i + 1);
        struct s3_query_param pq[] = {{"partNumber", pn}, {"uploadId", uid}};
        r = put_file_range(ctx, key, pq, 2, false, fd, (off_t)(i * part), len);
        if (!r || r->err != S3_OK || !(etags[i] = s3_response_etag(r))) ok = false;
        if (!ok) s3_log(S3_LOG_ERROR, "uploading the manifest failed: %s", r ? r->message : "cannot read it");
        s3_response_free(r);
    }
    if (ok) {
        size_t bl = 0;
        char *body = s3_xml_build_complete((const char *const *)etags, nparts, &bl);
        struct s3_query_param fq[] = {{"uploadId", uid}};
        struct s3_request_spec fs = {.method = "POST", .bucket = ctx->o->dst_bucket, .key = key, .query = fq,
                                     .nquery = 1, .body = body, .body_len = bl, .error_in_200 = true};
        r = body ? s3_request_wait(ctx->dst, &fs) : NULL;
        ok = r && r->err == S3_OK;
        s3_response_free(r);
        free(body);
    }
    if (!ok) {
        struct s3_query_param aq[] = {{"uploadId", uid}};
        struct s3_request_spec as = {.method = "DELETE", .bucket = ctx->o->dst_bucket, .key = key, .query = aq,
                                     .nquery = 1};
        s3_response_free(s3_request_wait(ctx->dst, &as));
    }
    for (size_t i = 0; etags && i < nparts; i++) free(etags[i]);
    free(etags);
    free(uid);
    close(fd);
    return ok ? 0 : -1;
}

/* ---- the run ---- */

struct run_summary {
    const char *result;
    int exit_code;
    int passes;
    double gap;
    bool gap_zero_by_flag;
    double duration;
    int64_t ended; /* unix time: the manifest trailer's and the metrics' */
    struct pass_result passes_r[64];
};

static cJSON *summary_json(struct rep_ctx *ctx, const struct run_summary *s, const char *run_id,
                           const char *manifest_path, const char *message)
{
    const struct rep_options *o = ctx->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "run_id", run_id);
    cJSON_AddStringToObject(j, "source", o->src_url);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddStringToObject(j, "result", s->result);
    cJSON_AddNumberToObject(j, "exit_code", s->exit_code);
    cJSON_AddBoolToObject(j, "dry_run", o->dry_run);
    if (o->retain > 0) { /* --retain: how every version written is locked */
        cJSON *rj = cJSON_AddObjectToObject(j, "retain");
        cJSON_AddStringToObject(rj, "mode", retain_mode(o));
        cJSON_AddNumberToObject(rj, "seconds", o->retain);
    }
    cJSON_AddStringToObject(j, "copy_mode", ctx->server_side ? "server-side" : "streamed");
    cJSON_AddNumberToObject(j, "passes", s->passes);
    cJSON_AddNumberToObject(j, "gap_seconds", round(s->gap * 1000) / 1000);
    cJSON_AddBoolToObject(j, "maintenance", s->gap_zero_by_flag);
    cJSON_AddNumberToObject(j, "duration_seconds", round(s->duration * 1000) / 1000);
    cJSON_AddNumberToObject(j, "objects_copied", (double)ctx->total.copied);
    cJSON_AddNumberToObject(j, "bytes_copied", (double)ctx->total.bytes);
    cJSON_AddNumberToObject(j, "objects_failed", (double)ctx->total.failed);
    cJSON_AddNumberToObject(j, "objects_deleted_at_source", (double)ctx->total.extra);
    cJSON_AddNumberToObject(j, "objects_vanished", (double)ctx->total.vanished);
    cJSON_AddNumberToObject(j, "objects_archived", (double)ctx->total.archived);
    cJSON *ja = cJSON_AddArrayToObject(j, "archived");
    for (size_t i = 0; ja && i < ctx->narchived; i++) cJSON_AddItemToArray(ja, cJSON_CreateString(ctx->archived[i]));
    cJSON_AddItemToObject(j, "concurrency", concurrency_json(ctx));
    cJSON *ck = cJSON_AddObjectToObject(j, "checksums"); /* additional checksums: replicator/copy.c */
    cJSON_AddNumberToObject(ck, "sent", (double)ctx->checksums_sent);
    cJSON_AddBoolToObject(ck, "target_refused", ctx->dst_no_checksums);
    cJSON_AddBoolToObject(ck, "source_refused", ctx->src_no_checksum_mode);
    cJSON *arr = cJSON_AddArrayToObject(j, "pass_details");
    for (int i = 0; i < s->passes && i < 64; i++) {
        const struct pass_result *p = &s->passes_r[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddNumberToObject(pj, "pass", i + 1);
        cJSON_AddBoolToObject(pj, "maintenance", p->maintenance);
        cJSON_AddNumberToObject(pj, "duration_seconds", round(p->duration * 1000) / 1000);
        cJSON_AddNumberToObject(pj, "listed", (double)p->st.listed);
        cJSON_AddNumberToObject(pj, "copied", (double)p->st.copied);
        cJSON_AddNumberToObject(pj, "bytes", (double)p->st.bytes);
        cJSON_AddNumberToObject(pj, "unchanged", (double)p->st.skipped);
        cJSON_AddNumberToObject(pj, "failed", (double)p->st.failed);
        cJSON_AddItemToArray(arr, pj);
    }
    cJSON *f = cJSON_AddArrayToObject(j, "failures");
    for (size_t i = 0; i < ctx->nfailures; i++) cJSON_AddItemToArray(f, cJSON_CreateString(ctx->failures[i]));
    cJSON *x = cJSON_AddArrayToObject(j, "deleted_at_source");
    for (size_t i = 0; i < ctx->nextras; i++) cJSON_AddItemToArray(x, cJSON_CreateString(ctx->extras[i]));
    if (manifest_path) cJSON_AddStringToObject(j, "manifest", manifest_path);
    if (message) cJSON_AddStringToObject(j, "message", message);
    char fallback[1200] = "";
    if (ctx->nfailures)
        snprintf(fallback, sizeof fallback, "%llu object(s) failed after retries, e.g. %s",
                 (unsigned long long)ctx->total.failed, ctx->failures[0]);
    notify_explain(j, s->exit_code, fallback[0] ? fallback : NULL);
    return j;
}

/* The end of the newest successful run recorded in the state folder's manifests (at most the newest 50 looked
 * at), or -1. */
static double last_success_local(const char *state)
{
    double t = -1;
    size_t n = 0;
    char **list = state ? state_manifests(state, &n) : NULL;
    for (size_t i = 0; i < n && i < 50 && t < 0; i++) {
        struct manifest_summary ms;
        char merr[256];
        if (manifest_summary_read(list[i], &ms, merr, sizeof merr) != 0) continue;
        if (ms.trailer_found && ms.result && strcmp(ms.result, "ok") == 0) t = (double)ms.trailer.ended;
        manifest_summary_free(&ms);
    }
    state_free_list(list, n);
    return t;
}

/* --metrics-file: this run's samples, and the last success kept across failed runs (from the file itself, else
 * the local manifests), so "time() - replicate_last_success_timestamp_seconds" keeps growing while backups fail. */
static void write_metrics(const struct rep_options *o, struct rep_ctx *ctx, const struct run_summary *s,
                          const char *state)
{
    if (!o->metrics_file || o->dry_run) return;
    double last_ok = -1;
    if (s->exit_code == EXIT_OK) last_ok = (double)s->ended;
    else if (!metrics_read(o->metrics_file, "replicate_last_success_timestamp_seconds", o->dst_url, &last_ok))
        last_ok = last_success_local(state);
    struct metric_sample m[] = {
        {"replicate_last_run_timestamp_seconds", "End of the last backup run (Unix time).", (double)s->ended},
        {"replicate_last_run_exit_code", "Exit code of the last backup run (0 ok, 1 failed, 2 usage, 3 refused, "
                                         "4 not converged, 130 interrupted).", s->exit_code},
        {"replicate_last_run_duration_seconds", "Duration of the last backup run.", round(s->duration * 1000) / 1000},
        {"replicate_objects_copied", "Objects copied by the last backup run.", (double)ctx->total.copied},
        {"replicate_bytes_copied", "Bytes copied by the last backup run.", (double)ctx->total.bytes},
        {"replicate_objects_failed", "Objects the last backup run failed to copy.", (double)ctx->total.failed},
        {"replicate_gap_seconds", "Duration of the last pass that ran without a maintenance flag.",
         round(s->gap * 1000) / 1000},
        {"replicate_last_success_timestamp_seconds", "End of the last successful backup run (Unix time).", last_ok},
    };
    size_t n = sizeof m / sizeof *m - (last_ok < 0 ? 1 : 0); /* never a success: no sample, the alert's absent() */
    char err[4400];
    if (metrics_write(o->metrics_file, o->dst_url, m, n, err, sizeof err) != 0)
        s3_log(S3_LOG_WARN, "cannot write the metrics: %s", err);
}

static void print_pass(const struct rep_options *o, int n, const struct pass_result *p)
{
    char b[32];
    rep_fmt_bytes(p->st.bytes, b, sizeof b);
    rep_say(o, "pass %d%s: listed %llu, copied %llu (%s), unchanged %llu, failed %llu, %.2fs\n", n,
        p->maintenance ? " (maintenance on)" : "", (unsigned long long)p->st.listed, (unsigned long long)p->st.copied,
        b, (unsigned long long)p->st.skipped, (unsigned long long)p->st.failed, p->duration);
}

static int finish_pass(struct rep_ctx *ctx, struct manifest_writer *mw, int n, const struct pass_result *p)
{
    stats_add(&ctx->total, &p->st);
    /* a pass that completed its listing retried every earlier failure (see pass_run): its count is the run's */
    if (!p->listing_failed && !p->interrupted && !ctx->manifest_failed) ctx->total.failed = p->st.failed;
    progress_clear(ctx->o);
    print_pass(ctx->o, n, p);
    if (!mw) return 0;
    struct manifest_pass mp = {.pass = n, .maintenance = p->maintenance, .started = p->started,
                               .duration = p->duration, .listed = p->st.listed, .copied = p->st.copied,
                               .bytes = p->st.bytes, .failed = p->st.failed, .skipped = p->st.skipped};
    if (manifest_writer_pass(mw, &mp) != 0 && !ctx->manifest_failed) {
        ctx->manifest_failed = true;
        snprintf(ctx->manifest_error, sizeof ctx->manifest_error, "writing the manifest failed: %s", strerror(errno));
    }
    return ctx->manifest_failed ? -1 : 0;
}

void rep_sleep(struct rep_ctx *ctx, double seconds)
{
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_now_update(ev);
    double until = ev_now(ev) + seconds;
    while (!ctx->interrupted && ev_now(ev) < until) {
        double left = until - ev_now(ev);
        ev_sleep(left > 0.1 ? 0.1 : left);
        ev_run(ev, EVRUN_NOWAIT);
        ev_now_update(ev);
    }
}

int run_replicate(struct rep_options *o)
{
    struct rep_ctx ctx_s, *ctx = &ctx_s;
    struct run_summary sum = {.result = "failed", .exit_code = EXIT_FAILED};
    char run_id[80], local_id[32], stored_name[128], err[1024], manifest_path[4200] = "";
    char message[1600] = "";
    /* the run id, shared by the shards of one job with --run-id; the local manifest keeps a time-ordered name of
     * its own (a retried shard runs again under the same id), the target's copy the run's name */
    state_run_id(local_id);
    snprintf(run_id, sizeof run_id, "%s", o->shared_run_id ? o->shared_run_id : local_id);
    if (o->shard_n) shard_manifest_name(stored_name, sizeof stored_name, run_id, o->shard_i, o->shard_n);
    else snprintf(stored_name, sizeof stored_name, "%s", run_id);
    char stored_name_ext[160];
    snprintf(stored_name_ext, sizeof stored_name_ext, "%s.jsonl", stored_name);
    cJSON *jstored = NULL; /* what was stored in the target, for the --json summary */
    struct manifest_writer *mw = NULL;
    char *state = NULL;
    int lock_fd = -1;
    struct maint maint;
    bool maint_used = false;
    struct lease *lease = NULL;
    const char *lease_why = NULL;

    int rc = rep_open(ctx, o, true);
    if (rc != EXIT_OK) { /* configuration: reported like any failed run */
        sum.exit_code = rc;
        sum.ended = (int64_t)time(NULL);
        cJSON *js = summary_json(ctx, &sum, run_id, NULL, NULL);
        if (o->json && js) {
            char *t = cJSON_Print(js);
            if (t) printf("%s\n", t);
            free(t);
        }
        if (js) notify_failure(o, js);
        cJSON_Delete(js);
        write_metrics(o, ctx, &sum, NULL);
        rep_close(ctx);
        return rc;
    }
    g_ctx = ctx;
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_signal sig_int, sig_term, sig_hup;
    ev_signal_init(&sig_int, on_signal, SIGINT);
    ev_signal_init(&sig_term, on_signal, SIGTERM);
    ev_signal_init(&sig_hup, on_signal, SIGHUP);
    ev_signal_start(ev, &sig_int);
    ev_signal_start(ev, &sig_term);
    ev_signal_start(ev, &sig_hup);
    ev_unref(ev);
    ev_unref(ev);
    ev_unref(ev);
    ev_now_update(ev);
    double t0 = ev_now(ev);

    state = state_target_dir(o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    if (!state) {
        s3_log_user(S3_LOG_ERROR, "%s", err);
        sum.exit_code = EXIT_USAGE;
        goto out;
    }
    lock_fd = state_lock(state, err, sizeof err);
    if (lock_fd < 0) {
        s3_log_user(S3_LOG_ERROR, "refused: %s", err);
        sum.exit_code = EXIT_REFUSED;
        sum.result = "refused";
        goto out;
    }
    maint_init(&maint, o->maint_file, o->maint_on, o->maint_off, state);
    /* a flag left on by a killed run is cleared before anything else */
    int mr = maint_recover(state, err, sizeof err);
    if (mr != 0) s3_log_user(S3_LOG_WARN, "%s", err);
    if (mr < 0) {
        sum.exit_code = EXIT_FAILED;
        goto out;
    }

    bool versioned = false;
    rc = target_prepare(ctx, &versioned);
    ctx->target_versioned = versioned;
    /* a server-side copy's reply may name no version (RGW): learn them in bulk rather than a HEAD per copy */
    if (rc == EXIT_OK && versioned && ctx->server_side && !o->dry_run && !(ctx->versions = versions_new(ctx, o->dst_bucket)))
        rc = EXIT_FAILED;
    if (rc != EXIT_OK) {
        sum.exit_code = rc;
        sum.result = rc == EXIT_REFUSED ? "refused" : "failed";
        goto out;
    }
    rc = shard_resolve(ctx, o, run_id); /* the shard's key range: after the checks, before the lease */
    if (rc != EXIT_OK) {
        sum.exit_code = rc;
        sum.result = rc == EXIT_INTERRUPTED ? "interrupted" : "failed";
        goto out;
    }
    if (!o->dry_run) { /* after the safety checks, before any data is written */
        rc = lease_acquire(ctx, run_id, state, o->lease, &lease);
        if (rc != EXIT_OK) {
            sum.exit_code = rc;
            sum.result = rc == EXIT_REFUSED ? "refused" : rc == EXIT_INTERRUPTED ? "interrupted" : "failed";
            goto out;
        }
    }
    if (!o->quiet)
        rep_say(o, "replicating %s -> %s (%s copy%s)\n", o->src_url, o->dst_url,
            ctx->server_side ? "server-side" : "streamed", o->dry_run ? ", dry run: nothing is written" : "");
    if (!o->dry_run) abort_leftovers(ctx);
    load_index(ctx, state);
    pass_bounds_load(ctx, state);

    if (!o->dry_run) {
        snprintf(manifest_path, sizeof manifest_path, "%s/manifests/%s.jsonl", state,
                 o->shared_run_id ? local_id : run_id);
        mw = manifest_writer_open(manifest_path, err, sizeof err);
        if (!mw) {
            s3_log_user(S3_LOG_ERROR, "cannot write the manifest: %s", err);
            manifest_path[0] = '\0';
            goto out;
        }
        if (!o->shard_n) mstore_watch(ctx, mw);
        cJSON *opts = cJSON_CreateObject();
        cJSON_AddNumberToObject(opts, "jobs", o->jobs);
        cJSON_AddNumberToObject(opts, "settle", o->settle);
        cJSON_AddNumberToObject(opts, "max_passes", o->max_passes);
        cJSON_AddBoolToObject(opts, "maintenance", maint_configured(&maint));
        cJSON_AddBoolToObject(opts, "versioned_target", versioned);
        char *ojs = cJSON_PrintUnformatted(opts);
        cJSON_Delete(opts);
        struct manifest_header mh = {.run_id = run_id, .tool_version = REPLICATE_VERSION, .started = (int64_t)time(NULL),
                                     .source = o->src_url, .target = o->dst_url,
                                     .source_endpoint = s3_reader_config(ctx->src)->endpoint,
                                     .target_endpoint = s3_reader_config(ctx->dst_r)->endpoint, .options_json = ojs,
                                     .shard_index = o->shard_i, .shard_count = o->shard_n,
                                     .range_start_after = o->start_after, .range_end_before = o->end_before};
        int hr = manifest_writer_header(mw, &mh);
        free(ojs);
        if (hr == 0 && o->shard_n) hr = manifest_writer_sync(mw);
        if (hr != 0) {
            s3_log_user(S3_LOG_ERROR, "writing the manifest failed: %s", strerror(errno));
            goto out;
        }
        ctx->mw = mw;
        /* a shard's header goes to the target at once: a shard that dies is then seen as unfinished, not as
         * one that never ran */
        if (o->shard_n && upload_manifest(ctx, manifest_path, stored_name_ext) != 0) {
            snprintf(message, sizeof message, "cannot record the shard's start in the target");
            goto out;
        }
    }

    ev_timer prog;
    ev_timer_init(&prog, on_progress, 1.0, o->progress ? 0.5 : 10.0);
    prog.data = ctx;
    if (o->progress || o->verbose) {
        ev_timer_start(ev, &prog);
        ev_unref(ev);
    }

    /* passes until converged */
    bool converged = false, failed_listing = false;
    double gap = 0;
    for (int n = 1; n <= o->max_passes && !ctx->interrupted; n++) {
        ctx->pass = n;
        struct pass_result *pr = &sum.passes_r[sum.passes < 63 ? sum.passes : 63];
        int prc = pass_run(ctx, false, 0, pr);
        sum.passes++;
        finish_pass(ctx, mw, n, pr);
        gap = pr->duration;
        if (prc != 0) {
            if (pr->listing_failed) failed_listing = true;
            snprintf(message, sizeof message, "%s", pr->error);
            break;
        }
        if (o->dry_run || pr->duration <= o->settle || pr->st.copied == 0) { /* a dry run copies nothing: one pass */
            converged = true;
            break;
        }
        if (n < o->max_passes)
            rep_say(o, "pass %d took %.1fs (> --settle %.0fs): running a delta pass for what changed meanwhile\n", n,
                pr->duration, o->settle);
    }

    /* the final pass under the maintenance flag */
    if (converged && maint_configured(&maint) && !ctx->interrupted && !ctx->manifest_failed && !o->dry_run) {
        maint_used = true;
        if (maint_on(&maint, run_id, err, sizeof err) != 0) {
            s3_log_user(S3_LOG_ERROR, "switching maintenance on failed: %s\n  The final pass did not run; the "
                            "flag is off.", err);
            snprintf(message, sizeof message, "maintenance on failed: %s", err);
            sum.result = "maintenance-failed";
            sum.exit_code = EXIT_FAILED;
            converged = false;
        } else {
            rep_say(o, "maintenance on (%s); waiting %.1fs for in-flight writes\n",
                o->maint_file ? o->maint_file : "command", o->grace);
            ev_now_update(ev);
            double deadline = ev_now(ev) + o->maint_max;
            rep_sleep(ctx, o->grace);
            if (!ctx->interrupted) {
                ctx->pass = sum.passes + 1;
                struct pass_result *pr = &sum.passes_r[sum.passes < 63 ? sum.passes : 63];
                int prc = pass_run(ctx, true, deadline, pr);
                sum.passes++;
                finish_pass(ctx, mw, ctx->pass, pr);
                if (prc == 0) {
                    gap = 0;
                    sum.gap_zero_by_flag = true;
                } else {
                    snprintf(message, sizeof message, "final pass incomplete: %s", pr->error);
                    converged = false;
                    if (!ctx->interrupted) sum.result = "maintenance-incomplete";
                }
            }
            if (maint_off(&maint, err, sizeof err) != 0) {
                s3_log_user(S3_LOG_ERROR, "SWITCHING MAINTENANCE OFF FAILED: %s\n  Switch the app back by hand.", err);
                snprintf(message, sizeof message, "maintenance off failed: %s", err);
                converged = false;
            } else {
                rep_say(o, "maintenance off\n");
            }
        }
    }
    sum.gap = gap;
    if (!o->dry_run) pass_bounds_save(ctx, state);
    shard_store_sample(ctx, run_id);

    if (lease_lost(lease, &lease_why)) {
        sum.result = "failed";
        sum.exit_code = EXIT_FAILED;
        snprintf(message, sizeof message, "%s", lease_why);
    } else if (ctx->interrupted) {
        sum.result = "interrupted";
        sum.exit_code = EXIT_INTERRUPTED;
    } else if (ctx->manifest_failed) {
        sum.result = "failed";
        sum.exit_code = EXIT_FAILED;
        snprintf(message, sizeof message, "%s", ctx->manifest_error);
    } else if (failed_listing) {
        sum.result = "failed";
        sum.exit_code = EXIT_FAILED;
    } else if (!strcmp(sum.result, "maintenance-failed") || !strcmp(sum.result, "maintenance-incomplete")) {
        sum.exit_code = EXIT_FAILED;
    } else if (ctx->total.failed || (ctx->total.archived && !o->skip_archived)) {
        sum.result = "failed";
        sum.exit_code = EXIT_FAILED;
        if (!ctx->total.failed)
            snprintf(message, sizeof message, "%llu archived objects (GLACIER/DEEP_ARCHIVE) were not copied: restore "
                     "them at the source (RestoreObject), or accept them with --skip-archived",
                     (unsigned long long)ctx->total.archived);
    } else if (!converged) {
        sum.result = "not-converged";
        sum.exit_code = EXIT_NOT_CONVERGED;
        if (!message[0])
            snprintf(message, sizeof message, "did not converge: %d passes and the last still took %.1fs (> --settle %.0fs)",
                     sum.passes, gap, o->settle);
    } else {
        sum.result = "ok";
        sum.exit_code = EXIT_OK;
    }

out:
    if (maint.on) { /* any path that left the flag on */
        if (maint_off(&maint, err, sizeof err) != 0)
            s3_log_user(S3_LOG_ERROR, "SWITCHING MAINTENANCE OFF FAILED: %s", err);
    }
    (void)maint_used;
    ev_now_update(ev);
    sum.duration = ev_now(ev) - t0;
    sum.ended = (int64_t)time(NULL);
    if (mw) {
        struct manifest_trailer mt = {.ended = sum.ended, .result = sum.result, .objects = ctx->total.copied,
                                      .bytes = ctx->total.bytes, .failed = ctx->total.failed,
                                      .archived = ctx->total.archived, .passes = sum.passes,
                                      .gap = sum.gap, .maintenance = sum.gap_zero_by_flag};
        bool trailer_ok = !ctx->manifest_failed && manifest_writer_trailer(mw, &mt) == 0;
        if (manifest_writer_close(mw) != 0 || !trailer_ok) {
            if (sum.exit_code == EXIT_OK) {
                sum.exit_code = EXIT_FAILED;
                sum.result = "failed";
            }
            s3_log_user(S3_LOG_ERROR, "the manifest %s could not be written completely (%s); this run is not "
                            "recorded as successful. Free space in the state directory.",
                    manifest_path, ctx->manifest_error[0] ? ctx->manifest_error : strerror(errno));
            /* without its header (a full disk from the start) it is not a manifest: do not leave it as the latest */
            struct manifest_summary ms;
            char merr[256];
            if (manifest_summary_read(manifest_path, &ms, merr, sizeof merr) == 0) manifest_summary_free(&ms);
            else if (unlink(manifest_path) == 0) manifest_path[0] = '\0';
        } else {
            /* an unsharded run stores a compressed copy, a delta where it can be; shards store theirs full, as
             * written (their key ranges move with the sample: a chain per shard would not line up) */
            char stored[4400] = "";
            struct manifest_store_info si;
            const char *upload = manifest_path;
            if (!o->shard_n) {
                if (mstore_prepare(ctx, state, manifest_path, stored_name, stored, sizeof stored, &si) == 0) {
                    upload = stored;
                    snprintf(stored_name_ext, sizeof stored_name_ext, "%s.jsonl.gz", stored_name);
                } else {
                    s3_log_user(S3_LOG_WARN, "the run's manifest is stored uncompressed and full instead");
                    stored[0] = '\0';
                }
            }
            struct stat ust;
            if (stat(upload, &ust) == 0 && (jstored = cJSON_CreateObject())) {
                char skey[300];
                snprintf(skey, sizeof skey, "%s%s", MANIFEST_PREFIX, stored_name_ext);
                cJSON_AddStringToObject(jstored, "key", skey);
                cJSON_AddNumberToObject(jstored, "bytes", (double)ust.st_size);
                cJSON_AddBoolToObject(jstored, "delta", stored[0] && si.delta);
                if (stored[0]) {
                    cJSON_AddNumberToObject(jstored, "records", (double)si.records);
                    cJSON_AddNumberToObject(jstored, "depth", si.depth);
                    cJSON_AddNumberToObject(jstored, "objects", (double)si.entries);
                }
            }
            int ur = upload_manifest(ctx, upload, stored_name_ext);
            if (stored[0] && ur == 0)
                mstore_commit(state, stored, !strcmp(sum.result, "ok") || !strcmp(sum.result, "failed") ||
                                                 !strcmp(sum.result, "not-converged"));
            else if (stored[0])
                unlink(stored);
            if (ur != 0) {
                s3_log(S3_LOG_WARN, "the manifest stays local (%s): uploading it to the target failed", manifest_path);
                if (sum.exit_code == EXIT_OK) {
                    sum.exit_code = EXIT_FAILED;
                    sum.result = "failed";
                    snprintf(message, sizeof message, "uploading the manifest to the target failed");
                }
            }
        }
    }
    lease_release(ctx, lease); /* after the manifest upload: the lease covers every write */
    progress_clear(o);
    if (sum.passes > 0 || sum.exit_code == EXIT_OK) {
        char b[32];
        rep_fmt_bytes(ctx->total.bytes, b, sizeof b);
        rep_say(o, "%s: %llu objects %s (%s) in %d pass%s, %.1fs; failed %llu; deleted at source (kept) %llu\n",
            sum.exit_code == 0 ? (o->dry_run ? "dry run" : "done") : sum.result, (unsigned long long)ctx->total.copied,
            o->dry_run ? "would be copied" : "copied", b, sum.passes,
            sum.passes == 1 ? "" : "es", sum.duration, (unsigned long long)ctx->total.failed,
            (unsigned long long)ctx->total.extra);
        if (sum.gap_zero_by_flag) rep_say(o, "gap: 0s (the final pass ran with the maintenance flag on)\n");
        else if (sum.passes > 0)
            rep_say(o, "gap: %.2fs (the last pass ran without a maintenance flag: writes in that window may be missed)\n",
                sum.gap);
        double lowest;
        unsigned long throttled;
        concurrency_totals(ctx, &lowest, &throttled);
        if (throttled > 0)
            rep_say(o, "throttled: %lu replies said slow down (503/SlowDown); concurrency backed off to %.0f of %d "
                       "jobs (%d at the end)\n", throttled, floor(lowest), o->jobs, rep_jobs(ctx));
        if (ctx->checksums_sent || ctx->dst_no_checksums)
            rep_say(o, "checksums: %llu objects written with the source's additional checksum, checked by the target%s\n",
                    (unsigned long long)ctx->checksums_sent,
                    ctx->dst_no_checksums ? "; the target refuses them: the rest went without" : "");
        for (size_t i = 0; i < ctx->nextras; i++) rep_say(o, "  deleted at source, kept in target: %s\n", ctx->extras[i]);
        if (ctx->total.extra > ctx->nextras)
            rep_say(o, "  ... and %llu more\n", (unsigned long long)(ctx->total.extra - ctx->nextras));
        for (size_t i = 0; i < ctx->narchived; i++)
            fprintf(stderr, "replicate: archived, not copied: %s\n", ctx->archived[i]);
        if (ctx->total.archived > ctx->narchived)
            fprintf(stderr, "replicate: ... and %llu more archived objects\n",
                    (unsigned long long)(ctx->total.archived - ctx->narchived));
    }
    for (size_t i = 0; i < ctx->nfailures; i++) s3_log_user(S3_LOG_ERROR, "FAILED %s", ctx->failures[i]);
    if (ctx->total.failed > ctx->nfailures)
        s3_log_user(S3_LOG_ERROR, "... and %llu more failures", (unsigned long long)(ctx->total.failed - ctx->nfailures));
    if (message[0]) s3_log_user(S3_LOG_ERROR, "%s", message);

    cJSON *js = summary_json(ctx, &sum, run_id, manifest_path[0] ? manifest_path : NULL, message[0] ? message : NULL);
    if (js && jstored) cJSON_AddItemToObject(js, "manifest_stored", jstored);
    else cJSON_Delete(jstored);
    if (o->json && js) {
        char *t = cJSON_Print(js);
        if (t) printf("%s\n", t);
        free(t);
    }
    if (sum.exit_code != EXIT_OK && js) notify_failure(o, js);
    cJSON_Delete(js);
    write_metrics(o, ctx, &sum, state);
    if (s3_log_enabled(S3_LOG_DEBUG)) {
        struct s3_loop_stats ls;
        s3_loop_stats(ctx->loop, &ls);
        s3_log(S3_LOG_DEBUG, "requests: %llu (GET %llu, HEAD %llu, PUT %llu, POST %llu, DELETE %llu), retries %llu",
               (unsigned long long)ls.requests, (unsigned long long)ls.get, (unsigned long long)ls.head,
               (unsigned long long)ls.put, (unsigned long long)ls.post, (unsigned long long)ls.del,
               (unsigned long long)ls.retries);
    }
    g_ctx = NULL;
    if (lock_fd >= 0) close(lock_fd);
    free(state);
    rep_close(ctx);
    return sum.exit_code;
}
