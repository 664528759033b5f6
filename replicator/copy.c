/* One object's copy as a state machine: the job and its whole-object paths. See replicator/copy.h and
 * replicator/copy_internal.h. */
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "replicator/copy_internal.h"
#include "replicator/versions.h"
#include "s3/log.h"

void job_start(struct copy_job *job);
static void finish_ok(struct copy_job *job);

static const char *const state_names[] = {"start", "wait-mem", "copy", "get", "put", "head", "tags", "mpu-create",
                                          "mpu-parts", "mpu-complete", "mpu-abort", "job_refresh", "version", "retain",
                                          "done"};


void job_set_state(struct copy_job *job, enum copy_state st)
{
    if (s3_log_enabled(S3_LOG_TRACE))
        s3_log(S3_LOG_TRACE, "copy %s: %s -> %s", job->key, state_names[job->state], state_names[st]);
    job->state = st;
}

uint64_t copy_part_size(uint64_t object_size, uint64_t configured)
{
    uint64_t ps = configured ? configured : 8u << 20;
    while (object_size / ps >= 10000) ps *= 2;
    return ps;
}

/* ---- memory budget ---- */

void job_mem_release(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (!job->mem_held) return;
    job->mem_held = false;
    ctx->mem_used -= job->mem_need;
    while (ctx->mem_wait_head) {
        struct copy_job *w = ctx->mem_wait_head;
        if (ctx->mem_used && ctx->mem_used + w->mem_need > ctx->o->max_memory) break;
        ctx->mem_wait_head = w->mem_next;
        if (!ctx->mem_wait_head) ctx->mem_wait_tail = NULL;
        w->mem_next = NULL;
        w->mem_held = true;
        ctx->mem_used += w->mem_need;
        w->mem_resume(w);
    }
}

/* Runs resume now if the budget allows (always when nothing else holds memory), else queues the job. */
void job_mem_acquire(struct copy_job *job, uint64_t need, void (*resume)(struct copy_job *))
{
    struct rep_ctx *ctx = job->ctx;
    job->mem_need = need;
    job->mem_resume = resume;
    if (!ctx->mem_wait_head && (!ctx->mem_used || ctx->mem_used + need <= ctx->o->max_memory)) {
        job->mem_held = true;
        ctx->mem_used += need;
        resume(job);
        return;
    }
    job_set_state(job, CS_WAIT_MEM);
    if (ctx->mem_wait_tail) ctx->mem_wait_tail->mem_next = job;
    else ctx->mem_wait_head = job;
    ctx->mem_wait_tail = job;
}

/* ---- helpers ---- */

void job_finish(struct copy_job *job, enum copy_result r)
{
    job_mem_release(job);
    s3_response_free(job->data);
    job->data = NULL;
    job_set_state(job, CS_DONE);
    job->cb(job, r, job->ud);
}

void job_fail(struct copy_job *job, const char *why)
{
    snprintf(job->error, sizeof job->error, "%s", why);
    job_finish(job, COPY_FAILED);
}

void job_check_started(struct copy_job *job, struct s3_request *rq)
{
    if (!rq) {
        s3_log(S3_LOG_ERROR, "out of memory starting a request for %s", job->key);
        abort();
    }
}

bool job_is_precondition_failed(const struct s3_response *r)
{
    return r->status == 412 || (r->s3err.code && strcmp(r->s3err.code, "PreconditionFailed") == 0);
}

bool job_is_source_missing(const struct s3_response *r)
{
    if (r->s3err.code) return strcmp(r->s3err.code, "NoSuchKey") == 0;
    return r->status == 404;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Whether the source's ETag is the MD5 of the listed version's bytes: it looks like one, and no reply said the
 * object is encrypted so that it is not (SSE-KMS, SSE-C). */
static bool src_etag_is_md5(const struct copy_job *job)
{
    return !job->src_sse && s3_etag_is_md5(job->etag);
}

/* A write reply from the target: does it say its ETags are not MD5s? Said once per run. */
void job_learn_dst_sse(struct copy_job *job, const struct s3_response *r)
{
    const char *sse = s3_sse_hides_md5(r);
    if (!sse) return;
    job->dst_sse = sse;
    if (!job->ctx->dst_sse) {
        job->ctx->dst_sse = sse;
        s3_log(S3_LOG_INFO, "the target encrypts with %s, so its ETags are not MD5s: copies are checked by the "
                            "Content-MD5 sent with each write (parts are read whole into memory to compute it)",
               sse);
    }
}

/* HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT") to the ISO form listings use. */
static char *http_date_to_iso(const char *v)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!v || !strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) return dup_or_null(v);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return strdup(buf);
}

/* Takes what a response says about the written object. */
void job_take_result(struct copy_job *job, const struct s3_response *r, char *etag_from_body)
{
    free(job->version_id);
    job->version_id = dup_or_null(s3_response_header(r, "x-amz-version-id"));
    free(job->target_etag);
    job->target_etag = etag_from_body ? etag_from_body : s3_response_etag(r);
}

/* The object metadata to write from a GET/HEAD reply: the source's, without a stale recorded ETag (a replica
 * source), and in a restore without any of the tool's bookkeeping; plus the recorded source ETag where the
 * target's ETag will differ from it (backups only). */
static void set_metadata(struct copy_job *job, const struct s3_response *r, bool etag_will_differ)
{
    static const char book[] = "x-amz-meta-replicate-";
    job->nmeta = s3_metadata_headers(r, job->meta, MAX_META - 1);
    for (size_t i = 0; i < job->nmeta;) {
        const char *n = job->meta[i].name;
        if (strcasecmp(n, SOURCE_ETAG_META) == 0 || (job->ctx->restore && strncasecmp(n, book, sizeof book - 1) == 0))
            job->meta[i] = job->meta[--job->nmeta];
        else
            i++;
    }
    if (etag_will_differ && !job->ctx->restore) job->meta[job->nmeta++] = (struct s3_header){SOURCE_ETAG_META, job->etag};
    if (job->ctx->o->storage_class && job->nmeta < MAX_META - 2)
        job->meta[job->nmeta++] = (struct s3_header){"x-amz-storage-class", job->ctx->o->storage_class};
}

/* The headers of a write made now: job->meta, plus the Object Lock retention under --retain (h has room for
 * MAX_META + 2). */
size_t job_with_retention(const struct copy_job *job, struct s3_header *h, char until[RETAIN_UNTIL_LEN])
{
    memcpy(h, job->meta, job->nmeta * sizeof *h);
    return job->nmeta + retain_headers(job->ctx->o, h + job->nmeta, until);
}

/* ---- tags: read from the source (only when x-amz-tagging-count says there are any), written with the object */

static void tags_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        job_finish(job, COPY_CANCELLED);
        return;
    }
    char *q = NULL;
    if (r->err != S3_OK || s3_xml_parse_tagging(r->body, r->body_len, &q) != S3_OK) {
        snprintf(job->error, sizeof job->error, "reading its tags (GetObjectTagging) failed: %s (--no-tags copies "
                 "objects without their tags)", r->err != S3_OK ? r->message : "the reply is not valid XML");
        s3_response_free(r);
        job_finish(job, COPY_FAILED);
        return;
    }
    free(job->tagging_xml);
    job->tagging_xml = q[0] ? malloc(r->body_len + 1) : NULL;
    if (job->tagging_xml) {
        memcpy(job->tagging_xml, r->body, r->body_len);
        job->tagging_xml[r->body_len] = '\0';
        job->tagging_xml_len = r->body_len;
    }
    s3_response_free(r);
    free(job->tagging);
    job->tagging = q;
    if (q[0] && job->nmeta < MAX_META) job->meta[job->nmeta++] = (struct s3_header){"x-amz-tagging", job->tagging};
    job->after_tags(job);
}

/* Runs next once the source's tags are in job->meta. A GET reply says how many there are
 * (x-amz-tagging-count, absent when none); a HEAD reply does not (S3's HeadObject has no tag count), so after a
 * HEAD (resp NULL: large objects only) they are always asked for. */
void job_with_tags(struct copy_job *job, const struct s3_response *resp, void (*next)(struct copy_job *))
{
    const char *count = resp ? s3_response_header(resp, "x-amz-tagging-count") : "1";
    if (job->ctx->o->no_tags || !count || strtol(count, NULL, 10) <= 0) {
        next(job);
        return;
    }
    job->after_tags = next;
    job_set_state(job, CS_TAGS);
    job_check_started(job, s3_get_object_tagging(job->ctx->src, job->ctx->o->src_bucket, job->key, job->src_version,
                                             tags_done, job));
}

void job_take_metadata(struct copy_job *job, struct s3_response *r, bool etag_will_differ)
{
    s3_response_free(job->meta_resp);
    job->meta_resp = r;
    set_metadata(job, r, etag_will_differ);
}

/* The object changed between listing and copying: learn its new version and start over. */
static void refresh_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        job_finish(job, COPY_CANCELLED);
        return;
    }
    if (r->err != S3_OK) {
        if (r->status == 404) {
            s3_response_free(r);
            job_finish(job, COPY_VANISHED);
            return;
        }
        snprintf(job->error, sizeof job->error, "re-reading the changed source failed: %s", r->message);
        s3_response_free(r);
        job_finish(job, COPY_FAILED);
        return;
    }
    char *etag = s3_response_etag(r);
    const char *len = s3_response_header(r, "content-length");
    char *lm = http_date_to_iso(s3_response_header(r, "last-modified"));
    if (!etag || !len) {
        free(etag);
        free(lm);
        snprintf(job->error, sizeof job->error, "HEAD of the changed source returned no ETag or length");
        s3_response_free(r);
        job_finish(job, COPY_FAILED);
        return;
    }
    s3_log(S3_LOG_INFO, "%s changed while being copied (ETag %s -> %s); copying the new version", job->key, job->etag,
           etag);
    free(job->etag);
    job->etag = etag;
    free(job->last_modified);
    job->last_modified = lm;
    job->size = strtoull(len, NULL, 10);
    s3_response_free(r);
    job_mem_release(job);
    job_start(job);
}

void job_refresh(struct copy_job *job)
{
    if (job->src_version) { /* a version never changes: it is not the one the manifest recorded */
        snprintf(job->error, sizeof job->error, "version %s is not as recorded (its ETag is not %s)", job->src_version,
                 job->etag);
        job_finish(job, COPY_FAILED);
        return;
    }
    if (++job->refreshes > MAX_REFRESH) {
        snprintf(job->error, sizeof job->error, "the source object kept changing while being copied (%d times)",
                 MAX_REFRESH);
        job_finish(job, COPY_FAILED);
        return;
    }
    job_set_state(job, CS_REFRESH);
    job_check_started(job, s3_head_object(job->ctx->src, job->ctx->o->src_bucket, job->key, NULL, NULL, refresh_done, job));
}

/* Common handling of a failed response from a step that read the source conditionally. Returns true if
 * the job moved on (job_refresh, vanished, cancelled, failed). */
bool job_source_step_failed(struct copy_job *job, struct s3_response *r, const char *what)
{
    if (r->err == S3_OK) return false;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        job_finish(job, COPY_CANCELLED);
        return true;
    }
    if (job_is_precondition_failed(r)) {
        s3_response_free(r);
        job_refresh(job);
        return true;
    }
    if (r->status == 404 && job_is_source_missing(r)) {
        s3_response_free(r);
        job_finish(job, COPY_VANISHED);
        return true;
    }
    if (r->s3err.code && strcmp(r->s3err.code, "InvalidObjectState") == 0) {
        s3_response_free(r);
        job_finish(job, COPY_ARCHIVED);
        return true;
    }
    snprintf(job->error, sizeof job->error, "%s: %s", what, r->message);
    s3_response_free(r);
    job_finish(job, COPY_FAILED);
    return true;
}

/* ---- server-side CopyObject ---- */

static void copy_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (job_source_step_failed(job, r, "CopyObject")) return;
    char *etag = NULL, *lm = NULL;
    if (s3_xml_parse_copy(r->body, r->body_len, &etag, &lm) != S3_OK) {
        s3_response_free(r);
        job_fail(job, "CopyObject: the reply has no valid CopyObjectResult");
        return;
    }
    free(lm);
    job_take_result(job, r, etag);
    job_learn_dst_sse(job, r);
    s3_response_free(r);
    if (job->ctx->target_versioned && job->ctx->copy_names_version == 0) {
        job->ctx->copy_names_version = job->version_id ? 1 : -1;
        if (!job->version_id && job->ctx->versions)
            s3_log(S3_LOG_INFO, "the target does not name the new version in CopyObject replies: learning the new "
                                "versions with one ListObjectVersions per batch of copied keys");
        else if (!job->version_id)
            s3_log(S3_LOG_INFO, "the target does not name the new version in CopyObject replies: objects up to "
                                "%llu bytes are copied by GET+PUT from now on (one request pair instead of "
                                "CopyObject+HEAD)", (unsigned long long)SMALL_STREAM_MAX);
    }
    /* Ceph RGW 16 ignores the Object Lock headers of a CopyObject: lock the version written as well (on S3, which
     * honours them, this only sets the same date again) */
    job->retain_after = job->ctx->o->retain > 0;
    job_finish_written(job);
}

/* CopyObject: the source's metadata (COPY), or job->meta when a HEAD has read and filtered it (REPLACE). */
void job_start_server_copy(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    /* Ceph RGW 16 ignores x-amz-tagging-directive and drops the tags of a CopyObject that replaces the
     * metadata: such a copy sets its tags on the version it wrote, as multipart copies do */
    job->tags_after = job->meta_resp && job->tagging_xml;
    job_set_state(job, CS_COPY);
    /* Object Lock headers are not metadata: they go with either directive */
    struct s3_header lock[2];
    char until[RETAIN_UNTIL_LEN];
    size_t nlock = retain_headers(ctx->o, lock, until);
    job_check_started(job, s3_copy_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, ctx->o->src_bucket, job->key,
                                      job->src_version, job->etag, job->meta_resp ? job->meta : NULL, job->nmeta,
                                      lock, nlock, copy_done, job));
}

/* ---- streamed GET -> PUT ---- */

static void start_get(struct copy_job *job);
static void put_whole(struct copy_job *job);
static void integrity_retry(struct copy_job *job, const char *why);

/* Whether the bytes read (job->data) hash to the source's plain-MD5 ETag. */
static bool data_matches_etag(const struct copy_job *job)
{
    unsigned char md[16];
    char hex[33];
    s3_md5(job->data->body, job->data->body_len, md);
    s3_md5_hex(md, hex);
    return strcasecmp(hex, job->etag) == 0;
}

static void put_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    const char *reread = NULL; /* why the object is to be read again */
    if (job_target_checksum_refused(job, r, put_whole)) return;
    if (r->err == S3_OK) {
        job_take_result(job, r, NULL);
        job_learn_dst_sse(job, r);
        /* A plain-MD5 source copied whole: the target's ETag is the MD5 of what it stored, so equal ETags prove
         * the copy end to end without hashing here. Otherwise (a target whose ETags are not MD5s, or one that
         * ignored Content-MD5) hash what was read: if it is not the listed version, read and write it again
         * (what was written stays only as an older version). A source ETag that is no MD5 (encrypted with
         * SSE-KMS or SSE-C) says nothing about the bytes: Content-MD5 was their own digest. */
        if (src_etag_is_md5(job) && !(job->target_etag && strcasecmp(job->target_etag, job->etag) == 0) &&
            !data_matches_etag(job))
            reread = "content read does not match the source ETag (MD5)";
    } else if (r->s3err.code && strcmp(r->s3err.code, "BadDigest") == 0) {
        /* Content-MD5 was the source's ETag: a target refusing it means the bytes read were not that version;
         * or it was their own digest, and they were damaged on the way (the PUT was sent again already) */
        reread = src_etag_is_md5(job) ? "content read does not match the source ETag (MD5): the target refused it"
                                      : "the target refused the content as damaged (BadDigest)";
    }
    s3_response_free(job->data);
    job->data = NULL;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        job_finish(job, COPY_CANCELLED);
    } else if (reread) {
        s3_response_free(r);
        integrity_retry(job, reread);
    } else if (r->err != S3_OK) {
        snprintf(job->error, sizeof job->error, "PutObject: %s", r->message);
        s3_response_free(r);
        job_finish(job, COPY_FAILED);
    } else {
        s3_response_free(r);
        job_finish_written(job);
    }
}

static void integrity_retry(struct copy_job *job, const char *why)
{
    if (++job->integrity_retries > MAX_INTEGRITY) {
        snprintf(job->error, sizeof job->error, "%s (gave up after %d reads)", why, MAX_INTEGRITY + 1);
        job_finish(job, COPY_FAILED);
        return;
    }
    s3_log(S3_LOG_WARN, "%s: %s; reading it again", job->key, why);
    start_get(job);
}

static void get_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (job_source_checksum_refused(job, r, start_get)) return;
    if (job_source_step_failed(job, r, "GetObject")) return;
    /* what was read must be exactly the listed version */
    if (r->body_len != job->size) {
        s3_response_free(r);
        integrity_retry(job, "read a different number of bytes than listed");
        return;
    }
    job_take_source_checksum(job, r);
    char got[S3_CHECKSUM_MAX];
    if (!job_bytes_match_checksum(job, r->body, r->body_len, got)) {
        char why[200];
        snprintf(why, sizeof why, "content read does not match the source's %s checksum (%s; read: %s)",
                 s3_checksum_name(job->ck_alg), job->ck_value, got);
        s3_response_free(r);
        integrity_retry(job, why);
        return;
    }
    /* Content-MD5: a plain-MD5 source ETag names the digest of the listed version, so the target checks the
     * bytes against the source itself (put_done); otherwise (multipart, SSE-KMS, SSE-C) the digest of what was
     * read. */
    job->src_sse = s3_sse_hides_md5(r);
    if (!src_etag_is_md5(job) || s3_md5_hex_to_base64(job->etag, job->content_md5) != 0) {
        unsigned char md[16];
        s3_md5(r->body, r->body_len, md);
        s3_md5_base64(md, job->content_md5);
    }
    job->data = r;
    s3_response_free(job->meta_resp);
    job->meta_resp = NULL;
    set_metadata(job, r, !src_etag_is_md5(job) || job->ctx->dst_sse);
    job_with_tags(job, r, put_whole);
}

static void put_whole(struct copy_job *job)
{
    job_set_state(job, CS_PUT);
    struct rep_ctx *ctx = job->ctx;
    struct s3_header h[MAX_META + 3];
    char until[RETAIN_UNTIL_LEN];
    size_t nh = job_with_checksum(job, h, job_with_retention(job, h, until));
    job_check_started(job, s3_put_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, h, nh, job->data->body,
                                     job->data->body_len, job->content_md5, put_done, job));
}

static void start_get(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    job_set_state(job, CS_GET);
    job->ck_mode_sent = job_want_checksum_mode(job);
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .max_body = (size_t)job->size + 1,
                            .checksum_mode = job->ck_mode_sent};
    job_check_started(job, s3_get_object(ctx->src, &a, get_done, job));
}

/* Some servers (Ceph RGW) name neither the new version (CopyObject) nor the ETag (CompleteMultipartUpload) in
 * their reply: read them from the object. Only this tool writes the target (per-target lock), so the latest
 * version is the one just written. */
static void result_head_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_OK) {
        if (!job->target_etag) job->target_etag = s3_response_etag(r);
        if (!job->version_id) job->version_id = dup_or_null(s3_response_header(r, "x-amz-version-id"));
    } else {
        s3_log(S3_LOG_WARN, "%s: could not read the new object's version (%s)", job->dst_key, r->message);
    }
    s3_response_free(r);
    finish_ok(job);
}

/* Some servers (Ceph RGW 16) ignore x-amz-tagging on CreateMultipartUpload and on a CopyObject that replaces the
 * metadata: such copies set their tags on the version they wrote (one PutObjectTagging, on any server). */
static void tags_put_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_OK) {
        s3_response_free(r);
        job_finish(job, COPY_OK);
        return;
    }
    snprintf(job->error, sizeof job->error, "setting its tags (PutObjectTagging) failed: %s (--no-tags copies "
             "objects without their tags)", r->message);
    bool cancelled = r->err == S3_ERR_CANCELLED;
    s3_response_free(r);
    job_finish(job, cancelled ? COPY_CANCELLED : COPY_FAILED);
}

/* --retain where the write itself could not carry the lock (piped multipart uploads) or the server may have ignored
 * it (other multipart uploads: copy_mpu_create; CopyObject: copy_done): the version is locked before the copy counts as
 * done. */
static void retention_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_OK) {
        s3_response_free(r);
        finish_ok(job);
        return;
    }
    snprintf(job->error, sizeof job->error, "locking the version written (PutObjectRetention%s%s) failed: %s; that "
             "version is not protected by --retain (the target's credentials need s3:PutObjectRetention)",
             job->version_id ? " of version " : "", job->version_id ? job->version_id : "", r->message);
    bool cancelled = r->err == S3_ERR_CANCELLED;
    s3_response_free(r);
    job_finish(job, cancelled ? COPY_CANCELLED : COPY_FAILED);
}

void job_retention_set(struct copy_job *job)
{
    const struct rep_options *o = job->ctx->o;
    char until[RETAIN_UNTIL_LEN];
    job->retain_after = false;
    retain_until((double)time(NULL), o->retain, until);
    job_set_state(job, CS_RETAIN);
    job_check_started(job, s3_put_object_retention(job->ctx->dst, o->dst_bucket, job->dst_key, job->version_id,
                                               retain_mode(o), until, retention_done, job));
}

static void finish_ok(struct copy_job *job)
{
    if (job->retain_after) {
        job_retention_set(job);
        return;
    }
    if (!job->tags_after || !job->tagging_xml) {
        job_finish(job, COPY_OK);
        return;
    }
    job->tags_after = false;
    job_set_state(job, CS_TAGS);
    job_check_started(job, s3_put_object_tagging(job->ctx->dst, job->ctx->o->dst_bucket, job->dst_key, job->version_id,
                                             job->tagging_xml, job->tagging_xml_len, tags_put_done, job));
}

/* The new version (and ETag) read from the object itself: only this tool writes the target. */
static void read_written(struct copy_job *job)
{
    job_check_started(job, s3_head_object(job->ctx->dst_r, job->ctx->o->dst_bucket, job->dst_key, job->version_id, NULL,
                                      result_head_done, job));
}

static void version_learned(const char *version_id, void *ud)
{
    struct copy_job *job = ud;
    if (version_id) {
        job->version_id = strdup(version_id);
        if (!job->version_id) abort();
        finish_ok(job);
        return;
    }
    read_written(job);
}

/* Finishes a successful write, first asking the target what the reply left out: the new version from a bulk
 * listing where the run learns them so (replicator/versions.h), else with a HEAD. */
void job_finish_written(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (job->target_etag && (job->version_id || !ctx->target_versioned)) {
        finish_ok(job);
        return;
    }
    job_set_state(job, CS_VERSION);
    if (job->target_etag && !job->version_id && ctx->versions) {
        versions_ask(ctx->versions, job->dst_key, job->target_etag, version_learned, job);
        return;
    }
    read_written(job);
}

/* ---- the job ---- */

/* The HEAD before a streamed multipart copy: metadata, and the source's checksum. */
void job_head_source(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    job_set_state(job, CS_HEAD);
    job->ck_mode_sent = job_want_checksum_mode(job);
    job_check_started(job, (job->ck_mode_sent ? s3_head_object_checksum : s3_head_object)(
                           ctx->src, ctx->o->src_bucket, job->key, job->src_version, job->etag, job_head_done, job));
}

void job_start(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    const struct rep_options *o = ctx->o;
    job->ck_alg = S3_CK_NONE; /* read again with the version copied */
    job->ck_value[0] = '\0';
    job->ck_mode_sent = job->ck_sent = false;
    /* Ceph RGW decodes an UploadPartCopy source twice: a key with '%' would copy another object's bytes (or
     * crash the server), so such keys take the streamed multipart path. */
    job->part_copy = ctx->server_side && job->size > o->copy_threshold && !strchr(job->key, '%');
    /* On a server whose CopyObject reply names no version (Ceph RGW), the run learns the new versions in bulk
     * (ctx->versions); without that, a server-side copy of a small object would cost CopyObject + HEAD, and
     * GET + PUT costs the same two requests, less server work, and the PUT names the version. */
    bool small_streamed = !ctx->versions && ctx->copy_names_version < 0 && job->size <= SMALL_STREAM_MAX;
    if (ctx->server_side && !small_streamed && (job->size <= o->copy_threshold || job->part_copy)) {
        /* a restore of an object whose ETag is not its MD5 may carry the backup's bookkeeping metadata, and
         * --storage-class needs the metadata replaced: read the metadata first and copy with it (filtered) */
        job->replace_meta = !job->part_copy && ((ctx->restore && !s3_etag_is_md5(job->etag)) || o->storage_class);
        if (job->size <= o->copy_threshold && !job->replace_meta) job_start_server_copy(job);
        else {
            job_set_state(job, CS_HEAD);
            job_check_started(job, s3_head_object(ctx->src, o->src_bucket, job->key, job->src_version, job->etag,
                                              job_head_done, job));
        }
        return;
    }
    if (job->size <= o->multipart_threshold)
        job_mem_acquire(job, job->size + 1, start_get);
    else
        job_head_source(job);
}

struct copy_job *copy_start(struct rep_ctx *ctx, const struct s3_object_info *src, const char *dst_key,
                            copy_done_cb cb, void *ud)
{
    struct copy_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    job->ctx = ctx;
    job->cb = cb;
    job->ud = ud;
    job->key = strdup(src->key);
    job->dst_key = strdup(dst_key);
    job->etag = strdup(src->etag ? src->etag : "");
    job->last_modified = dup_or_null(src->last_modified);
    job->src_version = dup_or_null(src->version_id);
    job->size = src->size;
    if (!job->key || !job->dst_key || !job->etag || (src->version_id && !job->src_version)) {
        copy_job_free(job);
        return NULL;
    }
    job_start(job);
    return job;
}

void copy_job_free(struct copy_job *job)
{
    if (!job) return;
    copy_parts_free(job);
    s3_response_free(job->data);
    s3_response_free(job->meta_resp);
    free(job->key);
    free(job->dst_key);
    free(job->etag);
    free(job->last_modified);
    free(job->src_version);
    free(job->tagging);
    free(job->tagging_xml);
    free(job->target_etag);
    free(job->version_id);
    free(job->upload_id);
    free(job);
}

const char *copy_job_key(const struct copy_job *job) { return job->key; }
const char *copy_job_dst_key(const struct copy_job *job) { return job->dst_key; }
uint64_t copy_job_size(const struct copy_job *job) { return job->size; }
const char *copy_job_etag(const struct copy_job *job) { return job->etag; }
const char *copy_job_last_modified(const struct copy_job *job) { return job->last_modified; }
const char *copy_job_target_etag(const struct copy_job *job) { return job->target_etag; }
const char *copy_job_version_id(const struct copy_job *job) { return job->version_id; }
const char *copy_job_error(const struct copy_job *job) { return job->error; }
const char *copy_job_checksum_algorithm(const struct copy_job *job) { return s3_checksum_name(job->ck_alg); }
const char *copy_job_checksum(const struct copy_job *job) { return job->ck_alg ? job->ck_value : NULL; }
