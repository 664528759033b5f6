/* One object's copy as a state machine: the states of replicator/copy_internal.h and the one function that moves
 * between them (copy_step), the memory budget shared by all jobs, re-reading a source that changed, and the end of
 * a copy (the version written, its retention, its tags). Callbacks here and in copy_whole.c / copy_parts.c only
 * record what a reply said and report an event; they never choose the next request. See replicator/copy.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "replicator/copy_internal.h"
#include "replicator/versions.h"
#include "s3/log.h"

static const char *const state_names[] = {
    [CS_START] = "start",           [CS_WAIT_MEM] = "wait-mem",     [CS_COPY] = "copy",
    [CS_GET] = "get",               [CS_PUT] = "put",               [CS_HEAD] = "head",
    [CS_TAGS] = "tags",             [CS_MPU_CREATE] = "mpu-create", [CS_MPU_PARTS] = "mpu-parts",
    [CS_MPU_DRAIN] = "mpu-drain",   [CS_MPU_ABORT] = "mpu-abort",   [CS_MPU_COMPLETE] = "mpu-complete",
    [CS_RECHECK] = "recheck",       [CS_REFRESH] = "refresh",       [CS_VERSION] = "version",
    [CS_VERSION_HEAD] = "version-head", [CS_RETAIN] = "retain",     [CS_TAGS_SET] = "tags-set",
    [CS_DONE] = "done",
};

static void enter(struct copy_job *job, enum copy_state st);

uint64_t copy_part_size(uint64_t object_size, uint64_t configured)
{
    uint64_t ps = configured ? configured : 8u << 20;
    while (object_size / ps >= 10000) ps *= 2;
    return ps;
}

/* ---- memory budget ---- */

static void mem_release(struct copy_job *job)
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
        copy_step(w, CE_OK);
    }
}

/* Takes need bytes of the budget if it allows (always when nothing else holds memory): true; else queues the job,
 * which mem_release moves on (CE_OK) once the memory is its. */
static bool mem_acquire(struct copy_job *job, uint64_t need)
{
    struct rep_ctx *ctx = job->ctx;
    job->mem_need = need;
    if (!ctx->mem_wait_head && (!ctx->mem_used || ctx->mem_used + need <= ctx->o->max_memory)) {
        job->mem_held = true;
        ctx->mem_used += need;
        return true;
    }
    if (ctx->mem_wait_tail) ctx->mem_wait_tail->mem_next = job;
    else ctx->mem_wait_head = job;
    ctx->mem_wait_tail = job;
    return false;
}

/* ---- what every path shares ---- */

void copy_check_started(struct copy_job *job, struct s3_request *rq)
{
    if (!rq) {
        s3_log(S3_LOG_ERROR, "out of memory starting a request for %s", job->key);
        abort();
    }
}

bool copy_is_precondition_failed(const struct s3_response *r)
{
    return r->status == 412 || (r->s3err.code && strcmp(r->s3err.code, "PreconditionFailed") == 0);
}

static bool is_source_missing(const struct s3_response *r)
{
    if (r->status != 404) return false;
    return r->s3err.code ? strcmp(r->s3err.code, "NoSuchKey") == 0 : true;
}

/* What a failed reply to a request conditional on the source's ETag says happened (r is freed; job->error says
 * why on CE_FAILED). archived: an InvalidObjectState means archived (not for parts, whose HEAD came first). */
enum copy_event copy_source_event(struct copy_job *job, struct s3_response *r, const char *what, bool archived)
{
    enum copy_event ev = CE_FAILED;
    if (r->err == S3_ERR_CANCELLED) ev = CE_CANCELLED;
    else if (copy_is_precondition_failed(r)) ev = CE_CHANGED;
    else if (is_source_missing(r)) ev = CE_VANISHED;
    else if (archived && r->s3err.code && strcmp(r->s3err.code, "InvalidObjectState") == 0) ev = CE_ARCHIVED;
    else snprintf(job->error, sizeof job->error, "%s: %s", what, r->message);
    s3_response_free(r);
    return ev;
}

/* The same for a request that does not read the source: cancelled, or failed (r is freed). */
enum copy_event copy_write_event(struct copy_job *job, struct s3_response *r, const char *what)
{
    bool cancelled = r->err == S3_ERR_CANCELLED;
    snprintf(job->error, sizeof job->error, "%s: %s", what, r->message);
    s3_response_free(r);
    return cancelled ? CE_CANCELLED : CE_FAILED;
}

char *copy_dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* A write reply from the target: does it say its ETags are not MD5s? Said once per run. */
void copy_learn_dst_sse(struct copy_job *job, const struct s3_response *r)
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

/* Takes what a response says about the written object. */
void copy_take_result(struct copy_job *job, const struct s3_response *r, char *etag_from_body)
{
    free(job->version_id);
    job->version_id = copy_dup_or_null(s3_response_header(r, "x-amz-version-id"));
    free(job->target_etag);
    job->target_etag = etag_from_body ? etag_from_body : s3_response_etag(r);
}

/* ---- re-reading a source that changed between listing and copying ---- */

/* HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT") to the ISO form listings use. */
static char *http_date_to_iso(const char *v)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!v || !strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm)) return copy_dup_or_null(v);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return strdup(buf);
}

static void refresh_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        enum copy_event ev = r->err == S3_ERR_CANCELLED ? CE_CANCELLED : r->status == 404 ? CE_VANISHED : CE_FAILED;
        if (ev == CE_FAILED)
            snprintf(job->error, sizeof job->error, "re-reading the changed source failed: %s", r->message);
        s3_response_free(r);
        copy_step(job, ev);
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
        copy_step(job, CE_FAILED);
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
    copy_step(job, CE_OK);
}

/* CE_CHANGED: the state to go to, a HEAD of the source unless that cannot help (job->error then says why). */
static enum copy_state changed_next(struct copy_job *job)
{
    if (job->src_version) { /* a version never changes: it is not the one the manifest recorded */
        snprintf(job->error, sizeof job->error, "version %s is not as recorded (its ETag is not %s)", job->src_version,
                 job->etag);
        job->result = COPY_FAILED;
        return CS_DONE;
    }
    if (++job->refreshes > MAX_REFRESH) {
        snprintf(job->error, sizeof job->error, "the source object kept changing while being copied (%d times)",
                 MAX_REFRESH);
        job->result = COPY_FAILED;
        return CS_DONE;
    }
    return CS_REFRESH;
}

/* CE_REREAD of a streamed copy: GET it again, unless it was read wrong too often. */
static enum copy_state reread_next(struct copy_job *job)
{
    if (++job->integrity_retries > MAX_INTEGRITY) {
        char why[sizeof job->error];
        snprintf(why, sizeof why, "%s", job->error);
        snprintf(job->error, sizeof job->error, "%.600s (gave up after %d reads)", why, MAX_INTEGRITY + 1);
        job->result = COPY_FAILED;
        return CS_DONE;
    }
    s3_log(S3_LOG_WARN, "%s: %s; reading it again", job->key, job->error);
    job->error[0] = '\0';
    return CS_GET;
}

/* ---- the end of a copy: the version written, its retention, its tags ---- */

/* A finishing request's reply, its failure already put into job->error: what happened. */
static void reply_step(struct copy_job *job, struct s3_response *r)
{
    enum copy_event ev = r->err == S3_OK ? CE_OK : r->err == S3_ERR_CANCELLED ? CE_CANCELLED : CE_FAILED;
    s3_response_free(r);
    copy_step(job, ev);
}

/* Some servers (Ceph RGW 16) ignore x-amz-tagging on CreateMultipartUpload and on a CopyObject that replaces the
 * metadata: such copies set their tags on the version they wrote (one PutObjectTagging, on any server). */
static void tags_set_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK)
        snprintf(job->error, sizeof job->error, "setting its tags (PutObjectTagging) failed: %s (--no-tags copies "
                 "objects without their tags)", r->message);
    reply_step(job, r);
}

/* --retain where the write itself could not carry the lock (piped multipart uploads) or the server may have ignored
 * it (other multipart uploads, CopyObject): the version is locked before the copy counts as done. */
static void retention_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK)
        snprintf(job->error, sizeof job->error, "locking the version written (PutObjectRetention%s%s) failed: %s; "
                 "that version is not protected by --retain (the target's credentials need s3:PutObjectRetention)",
                 job->version_id ? " of version " : "", job->version_id ? job->version_id : "", r->message);
    reply_step(job, r);
}

/* Some servers (Ceph RGW) name neither the new version (CopyObject) nor the ETag (CompleteMultipartUpload) in
 * their reply: read them from the object. Only this tool writes the target (per-target lock), so the latest
 * version is the one just written. */
static void version_head_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_OK) {
        if (!job->target_etag) job->target_etag = s3_response_etag(r);
        if (!job->version_id) job->version_id = copy_dup_or_null(s3_response_header(r, "x-amz-version-id"));
    } else {
        s3_log(S3_LOG_WARN, "%s: could not read the new object's version (%s)", job->dst_key, r->message);
    }
    s3_response_free(r);
    copy_step(job, CE_OK);
}

static void version_learned(const char *version_id, void *ud)
{
    struct copy_job *job = ud;
    if (version_id) {
        job->version_id = strdup(version_id);
        if (!job->version_id) abort();
    }
    copy_step(job, CE_OK); /* without it, CS_VERSION_HEAD reads it */
}

static void send_retention(struct copy_job *job)
{
    const struct rep_options *o = job->ctx->o;
    char until[RETAIN_UNTIL_LEN];
    job->retain_after = false;
    retain_until((double)time(NULL), o->retain, until);
    copy_check_started(job, s3_put_object_retention(job->ctx->dst, o->dst_bucket, job->dst_key, job->version_id,
                                                    retain_mode(o), until, retention_done, job));
}

/* What is left once the version written is known: lock it, tag it, or done. */
static enum copy_state finishing_next(const struct copy_job *job)
{
    if (job->retain_after) return CS_RETAIN;
    if (job->tags_after && job->tagging_xml) return CS_TAGS_SET;
    return CS_DONE;
}

/* Written: first ask the target what the reply left out, the new version from a bulk listing where the run learns
 * them so (replicator/versions.h), else with a HEAD. */
static enum copy_state written_next(const struct copy_job *job)
{
    const struct rep_ctx *ctx = job->ctx;
    if (job->target_etag && (job->version_id || !ctx->target_versioned)) return finishing_next(job);
    if (job->target_etag && !job->version_id && ctx->versions) return CS_VERSION;
    return CS_VERSION_HEAD;
}

/* ---- the transition function ---- */

/* Once the source's metadata (and, at a GET, its bytes) are in: what the path writes with them. */
static enum copy_state write_next(const struct copy_job *job)
{
    switch (job->path) {
    case COPY_PATH_STREAM: return CS_PUT;
    case COPY_PATH_SERVER:
    case COPY_PATH_SERVER_META: return CS_COPY;
    case COPY_PATH_PART_COPY: return CS_MPU_CREATE;
    case COPY_PATH_MULTIPART: return CS_WAIT_MEM;
    }
    return CS_DONE;
}

static enum copy_state first_next(struct copy_job *job)
{
    const struct rep_ctx *ctx = job->ctx;
    const struct rep_options *o = ctx->o;
    /* a restore of an object whose ETag is not its MD5 may carry the backup's bookkeeping metadata, and
     * --storage-class needs the metadata replaced: read the metadata first and copy with it (filtered) */
    struct copy_path_in in = {.size = job->size, .copy_threshold = o->copy_threshold,
                              .multipart_threshold = o->multipart_threshold, .server_side = ctx->server_side,
                              .key_has_percent = strchr(job->key, '%') != NULL, .bulk_versions = ctx->versions != NULL,
                              .copy_names_no_version = ctx->copy_names_version < 0,
                              .replace_meta = (ctx->restore && !s3_etag_is_md5(job->etag)) || o->storage_class};
    job->path = copy_plan_path(&in);
    switch (job->path) {
    case COPY_PATH_SERVER: return CS_COPY;
    case COPY_PATH_STREAM: return CS_WAIT_MEM;
    default: return CS_HEAD;
    }
}

/* CE_OK: where each state goes when its request succeeded. */
static enum copy_state ok_next(struct copy_job *job)
{
    switch (job->state) {
    case CS_START: return first_next(job);
    case CS_WAIT_MEM: return job->path == COPY_PATH_STREAM ? CS_GET : CS_MPU_CREATE;
    case CS_HEAD:
    case CS_GET: return job->src_tags && !job->ctx->o->no_tags ? CS_TAGS : write_next(job);
    case CS_TAGS: return write_next(job);
    case CS_MPU_CREATE: return CS_MPU_PARTS;
    case CS_MPU_COMPLETE: return job->path == COPY_PATH_PART_COPY ? CS_RECHECK : written_next(job);
    case CS_COPY:
    case CS_PUT:
    case CS_RECHECK: return written_next(job);
    case CS_VERSION: return job->version_id ? finishing_next(job) : CS_VERSION_HEAD;
    case CS_VERSION_HEAD:
    case CS_RETAIN: return finishing_next(job);
    case CS_TAGS_SET: return CS_DONE;
    case CS_REFRESH: return CS_START;
    case CS_MPU_PARTS:
    case CS_MPU_DRAIN:
    case CS_MPU_ABORT:
    case CS_DONE: break;
    }
    s3_log(S3_LOG_ERROR, "copy %s: no success is expected in state %s", job->key, state_names[job->state]);
    abort();
}

/* copy_step's multipart half: carry out what copy_mpu_next decides, until it is to wait for a part. */
static void mpu_step(struct copy_job *job)
{
    for (;;) {
        switch (copy_mpu_next(job)) {
        case MPU_START_PART: copy_mpu_send_part(job); break;
        case MPU_WAIT: return;
        case MPU_STOP:
            job->pending = CE_CANCELLED;
            enter(job, CS_MPU_DRAIN);
            break;
        case MPU_ABORT: enter(job, CS_MPU_ABORT); return;
        case MPU_COMPLETE: enter(job, CS_MPU_COMPLETE); return;
        case MPU_REREAD:
        case MPU_ETAG_MISS:
            job->pending = CE_RESTART;
            enter(job, CS_MPU_ABORT);
            return;
        case MPU_GIVE_UP:
            job->pending = CE_FAILED;
            enter(job, CS_MPU_ABORT);
            return;
        }
    }
}

static enum copy_result event_result(enum copy_event ev)
{
    switch (ev) {
    case CE_VANISHED: return COPY_VANISHED;
    case CE_ARCHIVED: return COPY_ARCHIVED;
    case CE_CANCELLED: return COPY_CANCELLED;
    default: return COPY_FAILED;
    }
}

/* The transition function: the next state from what happened (ev) in the state the job is in. Nothing else
 * changes a job's state (enter does, for copy_step and its multipart half mpu_step). */
void copy_step(struct copy_job *job, enum copy_event ev)
{
    if (ev == CE_OK) {
        job->result = COPY_OK;
        enter(job, ok_next(job));
        return;
    }
    if (ev == CE_AGAIN) {
        enter(job, job->state);
        return;
    }
    if (job->upload_id && ev != CE_REREAD) { /* an upload is open: what happened waits for it to be aborted */
        bool parts = job->state == CS_MPU_PARTS || job->state == CS_MPU_DRAIN;
        if (ev != CE_PART && job->state != CS_MPU_DRAIN) {
            job->pending = ev;
            if (!parts) {
                enter(job, CS_MPU_ABORT);
                return;
            }
            enter(job, CS_MPU_DRAIN);
        }
        mpu_step(job);
        return;
    }
    switch (ev) {
    case CE_REREAD: enter(job, reread_next(job)); return;
    case CE_RESTART: enter(job, CS_START); return;
    case CE_CHANGED: enter(job, changed_next(job)); return;
    default: job->result = event_result(ev); enter(job, CS_DONE); return;
    }
}

static void finish(struct copy_job *job)
{
    mem_release(job);
    s3_response_free(job->data);
    job->data = NULL;
    job->cb(job, job->result, job->ud);
}

/* Moves to st (logged old -> new) and starts what st waits for. */
static void enter(struct copy_job *job, enum copy_state st)
{
    struct rep_ctx *ctx = job->ctx;
    if (s3_log_enabled(S3_LOG_TRACE))
        s3_log(S3_LOG_TRACE, "copy %s: %s -> %s", job->key, state_names[job->state], state_names[st]);
    job->state = st;
    switch (st) {
    case CS_START:
        mem_release(job);
        job->ck_alg = S3_CK_NONE; /* read again with the version copied */
        job->ck_value[0] = '\0';
        job->ck_mode_sent = job->ck_sent = false;
        copy_step(job, CE_OK);
        return;
    case CS_WAIT_MEM:
        if (mem_acquire(job, job->path == COPY_PATH_STREAM ? job->size + 1 : copy_mpu_plan(job))) copy_step(job, CE_OK);
        return;
    case CS_COPY: copy_send_object_copy(job); return;
    case CS_GET: copy_send_get(job); return;
    case CS_PUT: copy_send_put(job); return;
    case CS_HEAD: copy_send_head(job); return;
    case CS_TAGS: copy_send_tags_get(job); return;
    case CS_MPU_CREATE: copy_mpu_send_create(job); return;
    case CS_MPU_PARTS: mpu_step(job); return;
    case CS_MPU_DRAIN: return; /* the parts in flight end first (mpu_step) */
    case CS_MPU_ABORT: copy_mpu_send_abort(job); return;
    case CS_MPU_COMPLETE: copy_mpu_send_complete(job); return;
    case CS_RECHECK: copy_mpu_send_recheck(job); return;
    case CS_REFRESH:
        copy_check_started(job, s3_head_object(ctx->src, ctx->o->src_bucket, job->key, NULL, NULL, refresh_done, job));
        return;
    case CS_VERSION: versions_ask(ctx->versions, job->dst_key, job->target_etag, version_learned, job); return;
    case CS_VERSION_HEAD:
        copy_check_started(job, s3_head_object(ctx->dst_r, ctx->o->dst_bucket, job->dst_key, job->version_id, NULL,
                                               version_head_done, job));
        return;
    case CS_RETAIN: send_retention(job); return;
    case CS_TAGS_SET:
        job->tags_after = false;
        copy_check_started(job, s3_put_object_tagging(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->version_id,
                                                      job->tagging_xml, job->tagging_xml_len, tags_set_done, job));
        return;
    case CS_DONE: finish(job); return;
    }
}

/* ---- the job ---- */

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
    job->last_modified = copy_dup_or_null(src->last_modified);
    job->src_version = copy_dup_or_null(src->version_id);
    job->size = src->size;
    if (!job->key || !job->dst_key || !job->etag || (src->version_id && !job->src_version)) {
        copy_job_free(job);
        return NULL;
    }
    enter(job, CS_START);
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
