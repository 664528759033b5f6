/* The run's manifest: the source-ETag index read from earlier runs' manifests, the local manifest written as the
 * run goes (header, passes, trailer), and its copy stored in the target's reserved prefix, streamed from the local
 * file. Must not decide the run's result beyond "a manifest that was not written or stored is not a success". */
#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "replicator/mstore.h"
#include "replicator/retain.h"
#include "replicator/run_internal.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/store.h"
#include "s3/log.h"
#include "s3/ops.h"

void run_load_index(struct rep_ctx *ctx, const char *dir)
{
    ctx->idx = manifest_index_new();
    if (!ctx->idx) abort();
    size_t n = 0, use = 0;
    char **list = state_manifests(dir, &n);
    struct manifest_point *saved = NULL; /* that run's saved restore point, read instead of its manifest */
    /* newest first, back to the last run whose first pass completed (it recorded every object) */
    while (use < n) {
        if ((saved = mstore_open_prev_point(ctx, list[use]))) { /* saved only by a complete run; kept by ctx */
            use++;
            break;
        }
        struct manifest_summary sum;
        char err[256];
        bool full = false;
        if (manifest_summary_read(list[use], &sum, err, sizeof err) == 0) {
            full = store_summary_complete(&sum);
            manifest_summary_free(&sum);
        } else {
            s3_log(S3_LOG_WARN, "manifest %s is unreadable (%s); ignoring it", list[use], err);
        }
        use++;
        if (full) break;
    }
    /* then load them oldest first, so newer records win */
    size_t from = use;
    if (saved && manifest_index_load_point(ctx->idx, saved) == 0) {
        from = use - 1;
    } else if (saved) {
        s3_log(S3_LOG_WARN, "reading the saved restore point of %s failed (%s): reading the manifest",
               list[use - 1], strerror(errno));
        mstore_drop_point(ctx);
    }
    for (size_t i = from; i-- > 0;) {
        int corrupt = 0;
        manifest_index_load(ctx->idx, list[i], &corrupt);
        if (corrupt) s3_log(S3_LOG_WARN, "manifest %s: %d corrupt line(s) skipped", list[i], corrupt);
    }
    if (manifest_index_seal(ctx->idx) != 0) /* sorted into temporary files */
        s3_log(S3_LOG_WARN, "cannot build the source-ETag index in $TMPDIR (%s): objects whose ETags differ are "
               "checked with a HEAD", strerror(errno));
    state_free_list(list, n);
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

/* The header's "options": what decides how the run behaves. Owned by the caller. */
static char *options_json(const struct run *r)
{
    cJSON *opts = cJSON_CreateObject();
    cJSON_AddNumberToObject(opts, "jobs", r->o->jobs);
    cJSON_AddNumberToObject(opts, "settle", r->o->settle);
    cJSON_AddNumberToObject(opts, "max_passes", r->o->max_passes);
    cJSON_AddBoolToObject(opts, "maintenance", maint_configured(&r->maint));
    cJSON_AddBoolToObject(opts, "versioned_target", r->ctx->target_versioned);
    char *ojs = cJSON_PrintUnformatted(opts);
    cJSON_Delete(opts);
    return ojs;
}

int run_manifest_open(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    char err[1024];
    if (o->dry_run) return 0;
    snprintf(r->manifest_path, sizeof r->manifest_path, "%s/manifests/%s.jsonl", r->state,
             o->shared_run_id ? r->local_id : r->run_id);
    r->mw = manifest_writer_open(r->manifest_path, err, sizeof err);
    if (!r->mw) {
        s3_log_user(S3_LOG_ERROR, "cannot write the manifest: %s", err);
        r->manifest_path[0] = '\0';
        return -1;
    }
    if (!o->shard_n) mstore_watch(ctx, r->mw); /* the restore point, built as the manifest is written */
    char *ojs = options_json(r);
    struct manifest_header mh = {.run_id = r->run_id, .tool_version = REPLICATE_VERSION, .started = (int64_t)time(NULL),
                                 .source = o->src_url, .target = o->dst_url,
                                 .source_endpoint = s3_reader_config(ctx->src)->endpoint,
                                 .target_endpoint = s3_reader_config(ctx->dst_r)->endpoint, .options_json = ojs,
                                 .shard_index = o->shard_i, .shard_count = o->shard_n,
                                 .range_start_after = o->start_after, .range_end_before = o->end_before};
    int hr = manifest_writer_header(r->mw, &mh);
    free(ojs);
    if (hr == 0 && o->shard_n) hr = manifest_writer_sync(r->mw);
    if (hr != 0) {
        s3_log_user(S3_LOG_ERROR, "writing the manifest failed: %s", strerror(errno));
        return -1;
    }
    ctx->mw = r->mw;
    /* a shard's header goes to the target at once: a shard that dies is then seen as unfinished, not as one that
     * never ran */
    if (o->shard_n && upload_manifest(ctx, r->manifest_path, r->stored_name_ext) != 0) {
        snprintf(r->message, sizeof r->message, "cannot record the shard's start in the target");
        return -1;
    }
    return 0;
}

/* Writes the trailer and closes the manifest: false (said, and an "ok" run failed) when it is not whole. */
static bool manifest_close(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    struct manifest_trailer mt = {.ended = r->ended, .result = rep_result_name(r->result),
                                  .objects = ctx->total.copied, .bytes = ctx->total.bytes,
                                  .failed = ctx->total.failed, .archived = ctx->total.archived,
                                  .passes = r->passes, .gap = r->gap, .maintenance = r->gap_zero_by_flag};
    bool trailer_ok = !ctx->manifest_failed && manifest_writer_trailer(r->mw, &mt) == 0;
    if (manifest_writer_close(r->mw) == 0 && trailer_ok) return true;
    if (r->result == REP_RESULT_OK) r->result = REP_RESULT_FAILED;
    s3_log_user(S3_LOG_ERROR, "the manifest %s could not be written completely (%s); this run is not "
                              "recorded as successful. Free space in the state directory.",
                r->manifest_path, ctx->manifest_error[0] ? ctx->manifest_error : strerror(errno));
    /* without its header (a full disk from the start) it is not a manifest: do not leave it as the latest */
    struct manifest_summary ms;
    char merr[256];
    if (manifest_summary_read(r->manifest_path, &ms, merr, sizeof merr) == 0) manifest_summary_free(&ms);
    else if (unlink(r->manifest_path) == 0) r->manifest_path[0] = '\0';
    return false;
}

/* What was stored in the target, for the --json summary: NULL when the file to upload cannot be read. */
static cJSON *stored_json(const struct run *r, const char *upload, bool prepared, const struct manifest_store_info *si)
{
    struct stat ust;
    cJSON *j = NULL;
    if (stat(upload, &ust) != 0 || !(j = cJSON_CreateObject())) return NULL;
    char skey[300];
    snprintf(skey, sizeof skey, "%s%s", MANIFEST_PREFIX, r->stored_name_ext);
    cJSON_AddStringToObject(j, "key", skey);
    cJSON_AddNumberToObject(j, "bytes", (double)ust.st_size);
    cJSON_AddBoolToObject(j, "delta", prepared && si->delta);
    if (prepared) {
        cJSON_AddNumberToObject(j, "records", (double)si->records);
        cJSON_AddNumberToObject(j, "depth", si->depth);
        cJSON_AddNumberToObject(j, "objects", (double)si->entries);
    }
    return j;
}

void run_manifest_finish(struct run *r)
{
    if (!r->mw || !manifest_close(r)) return;
    /* an unsharded run stores a compressed copy, a delta where it can be; shards store theirs full, as written
     * (their key ranges move with the sample: a chain per shard would not line up) */
    char stored[4400] = "";
    struct manifest_store_info si;
    const char *upload = r->manifest_path;
    if (!r->o->shard_n) {
        if (mstore_prepare(r->ctx, r->state, r->manifest_path, r->stored_name, stored, sizeof stored, &si) == 0) {
            upload = stored;
            snprintf(r->stored_name_ext, sizeof r->stored_name_ext, "%s.jsonl.gz", r->stored_name);
        } else {
            s3_log_user(S3_LOG_WARN, "the run's manifest is stored uncompressed and full instead");
            stored[0] = '\0';
        }
    }
    r->jstored = stored_json(r, upload, stored[0] != '\0', &si);
    int ur = upload_manifest(r->ctx, upload, r->stored_name_ext);
    if (stored[0] && ur == 0) mstore_commit(r->state, stored, rep_result_first_pass_done(r->result));
    else if (stored[0]) unlink(stored);
    if (ur != 0) {
        s3_log(S3_LOG_WARN, "the manifest stays local (%s): uploading it to the target failed", r->manifest_path);
        if (r->result == REP_RESULT_OK) {
            r->result = REP_RESULT_FAILED;
            snprintf(r->message, sizeof r->message, "uploading the manifest to the target failed");
        }
    }
}
