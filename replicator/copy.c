/* One object's copy as a state machine. See replicator/copy.h. */
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "replicator/copy.h"
#include "replicator/retain.h"
#include "replicator/versions.h"
#include "s3/checksum.h"
#include "s3/log.h"
#include "s3/ops.h"

/* A job's life. */
enum copy_state {
    CS_START,        /* deciding the path */
    CS_WAIT_MEM,     /* queued for the memory budget */
    CS_COPY,         /* server-side CopyObject in flight */
    CS_GET,          /* GET of the whole object in flight (streamed copies) */
    CS_PUT,          /* PUT of what the GET read */
    CS_HEAD,         /* HEAD of the source for its metadata, before a multipart upload */
    CS_TAGS,         /* GetObjectTagging of the source, before the PUT or the multipart upload */
    CS_MPU_CREATE,   /* CreateMultipartUpload in flight */
    CS_MPU_PARTS,    /* parts in flight (ranged GET + UploadPart, or UploadPartCopy) */
    CS_MPU_COMPLETE, /* CompleteMultipartUpload in flight */
    CS_MPU_ABORT,    /* aborting the upload after a failure or a source change */
    CS_REFRESH,      /* the source changed (412): HEAD to learn its new version */
    CS_VERSION,      /* written; the reply named no version: waiting for it (bulk listing, or a HEAD) */
    CS_RETAIN,       /* --retain: PutObjectRetention on the version written (multipart, CopyObject) */
    CS_DONE,
};

static const char *const state_names[] = {"start", "wait-mem", "copy", "get", "put", "head", "tags", "mpu-create",
                                          "mpu-parts", "mpu-complete", "mpu-abort", "refresh", "version", "retain",
                                          "done"};

struct part {
    struct copy_job *job;
    int no;
    uint64_t first, last;
    char *etag;
    /* piped: the ranged GET's body flows into the UploadPart through a ring of job->ring bytes */
    struct s3_request *get_rq, *put_rq;
    struct s3_response *get_resp, *put_resp; /* held until both ends are done */
    char *ring;
    size_t ring_head, ring_len;
    uint64_t fed; /* bytes taken from the GET */
    bool get_paused, put_paused, overflow;
    EVP_MD_CTX *md5;
    char md5hex[33]; /* of the bytes read, when hashed ("" when not) */
    struct s3_checksum ck;          /* the source's checksum algorithm over the part's bytes, when it has one */
    char ck_value[S3_CHECKSUM_MAX]; /* its wire value once the part is done */
    uint64_t ck_crc;                /* and the CRC, to combine (CRCs only) */
    int tries;
    ev_timer retry;
};

#define MAX_META 40
#define MAX_REFRESH 3
#define MAX_INTEGRITY 3
#define PARTS_PER_JOB 4
#define PIPED_PARTS_PER_JOB 8
#define PIPE_RING (256u * 1024)
#define SMALL_STREAM_MAX (256u * 1024)

struct copy_job {
    struct rep_ctx *ctx;
    copy_done_cb cb;
    void *ud;
    enum copy_state state;
    char *key, *dst_key, *etag, *last_modified;
    char *src_version; /* the source version to copy (restores), or NULL for the latest */
    uint64_t size;
    char *target_etag, *version_id;
    char error[700];
    int refreshes, integrity_retries;
    /* A multipart source whose part count our part size reproduces: the parts are not hashed here, the
     * composite ETag of the target's parts must equal the source's (checks source -> target end to end). */
    bool composite;
    int composite_misses; /* after 2, the layouts differ: hash each part instead */
    bool restart_direct;  /* after the abort, start again at once (the source did not change) */
    /* memory budget */
    uint64_t mem_need;
    bool mem_held;
    void (*mem_resume)(struct copy_job *job);
    struct copy_job *mem_next;
    /* streamed single-request copy */
    struct s3_response *data;
    /* metadata to write (pointing into meta_resp, and tagging) */
    struct s3_response *meta_resp;
    struct s3_header meta[MAX_META];
    size_t nmeta;
    char *tagging;                      /* the source's tags as x-amz-tagging wants them, or NULL */
    char *tagging_xml;                  /* and as the source's <Tagging> document */
    size_t tagging_xml_len;
    bool tags_after;                    /* a multipart upload: set the tags on the new version once it exists */
    bool retain_after;                  /* --retain, a multipart upload or a CopyObject: lock the new version */
    void (*after_tags)(struct copy_job *job);
    char content_md5[25];               /* base64 Content-MD5 of a whole-object PUT */
    /* multipart */
    char *upload_id;
    uint64_t part_size;
    int nparts, next_part, inflight, parts_done, parallel;
    struct part *parts;
    bool parts_failed;
    enum copy_result after_abort;
    bool restart_after_abort;
    bool part_copy; /* parts by UploadPartCopy (server-side) rather than ranged GET + UploadPart */
    bool replace_meta; /* server-side copy with the metadata a HEAD read (restores: bookkeeping filtered out) */
    size_t ring;    /* > 0: parts are piped (ranged GET -> UploadPart through a ring of this size) */
    /* Encryption under which ETags are not MD5s (SSE-KMS, SSE-C; s3_sse_hides_md5), as the source's GET/HEAD and
     * the target's write replies name it. The source's ETag then proves nothing about bytes read, and the
     * target's part ETags nothing about bytes stored: parts go buffered, with Content-MD5, which S3 checks
     * under any encryption. */
    const char *src_sse, *dst_sse;
    bool buffered; /* parts by ranged GET into memory + UploadPart with Content-MD5 */
    /* The source's additional checksum of the listed version (s3/checksum.h), from the GET or HEAD that asked
     * for it: the bytes read must match it, a whole-object PUT carries it so the target checks them too. */
    enum s3_checksum_alg ck_alg;
    char ck_value[S3_CHECKSUM_MAX];
    bool ck_composite;   /* "<base64>-N": of the source's parts, not recomputable from the bytes alone */
    bool ck_mode_sent;   /* the GET/HEAD asked for it */
    bool ck_sent;        /* the PUT carried it */
    bool ck_probe;       /* the PUT is sent again without it: the target may refuse checksum headers */
    bool ck_src_probe;   /* the GET/HEAD is sent again without asking: the source may refuse to be asked */
    int ck_misses;       /* a composite the parts did not add up to: after 2, the layouts differ */
    char ck_refusal[512]; /* the answer that may have refused them, while probing */
};

static void job_start(struct copy_job *job);
static void finish_written(struct copy_job *job);
static void finish_ok(struct copy_job *job);
static void mpu_pump(struct copy_job *job);

static void set_state(struct copy_job *job, enum copy_state st)
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
        w->mem_resume(w);
    }
}

/* Runs resume now if the budget allows (always when nothing else holds memory), else queues the job. */
static void mem_acquire(struct copy_job *job, uint64_t need, void (*resume)(struct copy_job *))
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
    set_state(job, CS_WAIT_MEM);
    if (ctx->mem_wait_tail) ctx->mem_wait_tail->mem_next = job;
    else ctx->mem_wait_head = job;
    ctx->mem_wait_tail = job;
}

/* ---- helpers ---- */

static void finish(struct copy_job *job, enum copy_result r)
{
    mem_release(job);
    s3_response_free(job->data);
    job->data = NULL;
    set_state(job, CS_DONE);
    job->cb(job, r, job->ud);
}

static void fail(struct copy_job *job, const char *why)
{
    snprintf(job->error, sizeof job->error, "%s", why);
    finish(job, COPY_FAILED);
}

static void check_started(struct copy_job *job, struct s3_request *rq)
{
    if (!rq) {
        s3_log(S3_LOG_ERROR, "out of memory starting a request for %s", job->key);
        abort();
    }
}

static bool is_precondition_failed(const struct s3_response *r)
{
    return r->status == 412 || (r->s3err.code && strcmp(r->s3err.code, "PreconditionFailed") == 0);
}

static bool is_source_missing(const struct s3_response *r)
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
static void learn_dst_sse(struct copy_job *job, const struct s3_response *r)
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
static void take_result(struct copy_job *job, const struct s3_response *r, char *etag_from_body)
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
static size_t with_retention(const struct copy_job *job, struct s3_header *h, char until[RETAIN_UNTIL_LEN])
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
        finish(job, COPY_CANCELLED);
        return;
    }
    char *q = NULL;
    if (r->err != S3_OK || s3_xml_parse_tagging(r->body, r->body_len, &q) != S3_OK) {
        snprintf(job->error, sizeof job->error, "reading its tags (GetObjectTagging) failed: %s (--no-tags copies "
                 "objects without their tags)", r->err != S3_OK ? r->message : "the reply is not valid XML");
        s3_response_free(r);
        finish(job, COPY_FAILED);
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
static void with_tags(struct copy_job *job, const struct s3_response *resp, void (*next)(struct copy_job *))
{
    const char *count = resp ? s3_response_header(resp, "x-amz-tagging-count") : "1";
    if (job->ctx->o->no_tags || !count || strtol(count, NULL, 10) <= 0) {
        next(job);
        return;
    }
    job->after_tags = next;
    set_state(job, CS_TAGS);
    check_started(job, s3_get_object_tagging(job->ctx->src, job->ctx->o->src_bucket, job->key, job->src_version,
                                             tags_done, job));
}

static void take_metadata(struct copy_job *job, struct s3_response *r, bool etag_will_differ)
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
        finish(job, COPY_CANCELLED);
        return;
    }
    if (r->err != S3_OK) {
        if (r->status == 404) {
            s3_response_free(r);
            finish(job, COPY_VANISHED);
            return;
        }
        snprintf(job->error, sizeof job->error, "re-reading the changed source failed: %s", r->message);
        s3_response_free(r);
        finish(job, COPY_FAILED);
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
        finish(job, COPY_FAILED);
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
    mem_release(job);
    job_start(job);
}

static void refresh(struct copy_job *job)
{
    if (job->src_version) { /* a version never changes: it is not the one the manifest recorded */
        snprintf(job->error, sizeof job->error, "version %s is not as recorded (its ETag is not %s)", job->src_version,
                 job->etag);
        finish(job, COPY_FAILED);
        return;
    }
    if (++job->refreshes > MAX_REFRESH) {
        snprintf(job->error, sizeof job->error, "the source object kept changing while being copied (%d times)",
                 MAX_REFRESH);
        finish(job, COPY_FAILED);
        return;
    }
    set_state(job, CS_REFRESH);
    check_started(job, s3_head_object(job->ctx->src, job->ctx->o->src_bucket, job->key, NULL, NULL, refresh_done, job));
}

/* Common handling of a failed response from a step that read the source conditionally. Returns true if
 * the job moved on (refresh, vanished, cancelled, failed). */
static bool source_step_failed(struct copy_job *job, struct s3_response *r, const char *what)
{
    if (r->err == S3_OK) return false;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        finish(job, COPY_CANCELLED);
        return true;
    }
    if (is_precondition_failed(r)) {
        s3_response_free(r);
        refresh(job);
        return true;
    }
    if (r->status == 404 && is_source_missing(r)) {
        s3_response_free(r);
        finish(job, COPY_VANISHED);
        return true;
    }
    if (r->s3err.code && strcmp(r->s3err.code, "InvalidObjectState") == 0) {
        s3_response_free(r);
        finish(job, COPY_ARCHIVED);
        return true;
    }
    snprintf(job->error, sizeof job->error, "%s: %s", what, r->message);
    s3_response_free(r);
    finish(job, COPY_FAILED);
    return true;
}

/* ---- server-side CopyObject ---- */

static void copy_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (source_step_failed(job, r, "CopyObject")) return;
    char *etag = NULL, *lm = NULL;
    if (s3_xml_parse_copy(r->body, r->body_len, &etag, &lm) != S3_OK) {
        s3_response_free(r);
        fail(job, "CopyObject: the reply has no valid CopyObjectResult");
        return;
    }
    free(lm);
    take_result(job, r, etag);
    learn_dst_sse(job, r);
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
    finish_written(job);
}

/* CopyObject: the source's metadata (COPY), or job->meta when a HEAD has read and filtered it (REPLACE). */
static void start_server_copy(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    /* Ceph RGW 16 ignores x-amz-tagging-directive and drops the tags of a CopyObject that replaces the
     * metadata: such a copy sets its tags on the version it wrote, as multipart copies do */
    job->tags_after = job->meta_resp && job->tagging_xml;
    set_state(job, CS_COPY);
    /* Object Lock headers are not metadata: they go with either directive */
    struct s3_header lock[2];
    char until[RETAIN_UNTIL_LEN];
    size_t nlock = retain_headers(ctx->o, lock, until);
    check_started(job, s3_copy_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, ctx->o->src_bucket, job->key,
                                      job->src_version, job->etag, job->meta_resp ? job->meta : NULL, job->nmeta,
                                      lock, nlock, copy_done, job));
}

/* ---- additional checksums (x-amz-checksum-*, s3/checksum.h) ----
 * Asked of the source on the GET or HEAD that starts a streamed copy; the bytes read must match a full-object
 * checksum, and a whole-object PUT carries it so that the target checks them as well, whatever its ETags are.
 * Multipart uploads carry none (a piped part's header would be needed before its bytes are read): their parts'
 * checksums are checked against the source's here. An endpoint may refuse the headers (Backblaze B2: 400
 * "Unsupported header 'x-amz-checksum-crc32'"; others 501 NotImplemented): the request is sent again without
 * them, and if that works they are not sent to that endpoint again in this run (said once). */

/* Whether a reply may be a refusal of the checksum headers: any 400 or 501 (B2 says InvalidArgument, GCS is
 * reported to say ExcessHeaderValues, others NotImplemented), but not BadDigest, which says the bytes are wrong.
 * Only a resend without them that succeeds proves it, so a request refused for another reason costs one more. */
static bool may_refuse_checksums(const struct s3_response *r)
{
    if (r->err == S3_OK || r->err == S3_ERR_CANCELLED) return false;
    const char *code = r->s3err.code ? r->s3err.code : "";
    if (strcmp(code, "BadDigest") == 0) return false;
    return r->status == 400 || r->status == 501 || strcmp(code, "NotImplemented") == 0;
}

static bool want_checksum_mode(const struct copy_job *job)
{
    return !job->ctx->src_no_checksum_mode && !job->ck_src_probe;
}

/* The source's checksum as a GET/HEAD that asked for it names it (most servers keep none: fine). */
static void take_source_checksum(struct copy_job *job, const struct s3_response *r)
{
    const char *v = NULL;
    bool composite = false;
    job->ck_alg = job->ck_mode_sent ? s3_checksum_from_response(r, &v, &composite) : S3_CK_NONE;
    job->ck_composite = composite;
    snprintf(job->ck_value, sizeof job->ck_value, "%s", job->ck_alg ? v : "");
    if (job->ck_src_probe && !job->ctx->src_no_checksum_mode) {
        job->ctx->src_no_checksum_mode = true;
        s3_log(S3_LOG_WARN, "the source refused x-amz-checksum-mode (%s): its additional checksums are not asked "
                            "for in the rest of this run", job->ck_refusal);
    }
}

/* A source GET/HEAD that asked for the checksum and may have been refused for it: run it again without. A 403
 * counts too: Amazon S3 wants kms:Decrypt for the checksum of an SSE-KMS object, which a plain HEAD does not. */
static bool source_checksum_refused(struct copy_job *job, struct s3_response *r, void (*again)(struct copy_job *))
{
    if (!job->ck_mode_sent || job->ck_src_probe || (!may_refuse_checksums(r) && r->status != 403)) return false;
    snprintf(job->ck_refusal, sizeof job->ck_refusal, "%s", r->message);
    job->ck_src_probe = true;
    s3_response_free(r);
    again(job);
    return true;
}

/* Whether bytes read whole match the source's full-object checksum (true when there is none to check: none, or
 * a composite of parts); got is what they hash to. */
static bool bytes_match_checksum(const struct copy_job *job, const void *data, size_t len, char got[S3_CHECKSUM_MAX])
{
    got[0] = '\0';
    if (!job->ck_alg || job->ck_composite) return true;
    return s3_checksum_compute(job->ck_alg, data, len, got) == 0 && strcmp(got, job->ck_value) == 0;
}

/* A whole-object PUT's n headers, and the source's full-object checksum unless the target refuses them (h has
 * room for one more). */
static size_t with_checksum(struct copy_job *job, struct s3_header *h, size_t n)
{
    job->ck_sent = job->ck_alg && !job->ck_composite && !job->ctx->dst_no_checksums && !job->ck_probe;
    if (job->ck_sent) h[n++] = (struct s3_header){s3_checksum_header(job->ck_alg), job->ck_value};
    return n;
}

/* After a PUT: a refusal of the checksum header is tried again without it (true: the PUT is sent again); a
 * success without it after such a refusal proves the target refuses them. */
static bool target_checksum_refused(struct copy_job *job, struct s3_response *r, void (*again)(struct copy_job *))
{
    if (job->ck_sent && may_refuse_checksums(r)) {
        snprintf(job->ck_refusal, sizeof job->ck_refusal, "%s", r->message);
        job->ck_probe = true;
        s3_response_free(r);
        again(job);
        return true;
    }
    if (r->err != S3_OK) return false;
    if (job->ck_sent) job->ctx->checksums_sent++;
    if (job->ck_probe && !job->ctx->dst_no_checksums) {
        job->ctx->dst_no_checksums = true;
        s3_log(S3_LOG_WARN, "the target refused the additional checksum header (%s) and took the object without "
                            "it: no checksum headers are sent to it in the rest of this run (copies are still "
                            "checked by Content-MD5 and ETags)", job->ck_refusal);
    }
    return false;
}

/* A piped part's checksum, once all its bytes went through. */
static void part_checksum_done(struct copy_job *job, struct part *p)
{
    p->ck_value[0] = '\0';
    if (!job->ck_alg) return;
    p->ck_crc = s3_checksum_crc_value(&p->ck);
    if (s3_checksum_final(&p->ck, p->ck_value) != 0) p->ck_value[0] = '\0';
}

/* The parts' checksums against the source's: a full-object CRC combined from the parts' CRCs, or a composite
 * of as many parts. *checked false when neither applies (no checksum, a full-object SHA, which parts hashed
 * apart cannot give, or a composite of another number of parts). got: the value computed. */
static bool parts_match_checksum(const struct copy_job *job, bool *checked, char got[S3_CHECKSUM_MAX])
{
    *checked = false;
    got[0] = '\0';
    if (!job->ck_alg) return true;
    if (job->ck_composite) {
        const char *dash = strrchr(job->ck_value, '-');
        if (!dash || strtol(dash + 1, NULL, 10) != job->nparts) return true;
        const char **v = calloc((size_t)job->nparts, sizeof *v);
        if (!v) abort();
        for (int i = 0; i < job->nparts; i++) v[i] = job->parts[i].ck_value;
        int rc = s3_checksum_composite(job->ck_alg, v, (size_t)job->nparts, got);
        free(v);
        *checked = true;
        return rc == 0 && strcmp(got, job->ck_value) == 0;
    }
    if (!s3_checksum_is_crc(job->ck_alg)) return true;
    uint64_t crc = 0;
    for (int i = 0; i < job->nparts; i++) {
        const struct part *p = &job->parts[i];
        crc = i ? s3_checksum_crc_combine(job->ck_alg, crc, p->ck_crc, p->last - p->first + 1) : p->ck_crc;
    }
    s3_checksum_crc_to_wire(job->ck_alg, crc, got);
    *checked = true;
    return strcmp(got, job->ck_value) == 0;
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
    if (target_checksum_refused(job, r, put_whole)) return;
    if (r->err == S3_OK) {
        take_result(job, r, NULL);
        learn_dst_sse(job, r);
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
        finish(job, COPY_CANCELLED);
    } else if (reread) {
        s3_response_free(r);
        integrity_retry(job, reread);
    } else if (r->err != S3_OK) {
        snprintf(job->error, sizeof job->error, "PutObject: %s", r->message);
        s3_response_free(r);
        finish(job, COPY_FAILED);
    } else {
        s3_response_free(r);
        finish_written(job);
    }
}

static void integrity_retry(struct copy_job *job, const char *why)
{
    if (++job->integrity_retries > MAX_INTEGRITY) {
        snprintf(job->error, sizeof job->error, "%s (gave up after %d reads)", why, MAX_INTEGRITY + 1);
        finish(job, COPY_FAILED);
        return;
    }
    s3_log(S3_LOG_WARN, "%s: %s; reading it again", job->key, why);
    start_get(job);
}

static void get_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (source_checksum_refused(job, r, start_get)) return;
    if (source_step_failed(job, r, "GetObject")) return;
    /* what was read must be exactly the listed version */
    if (r->body_len != job->size) {
        s3_response_free(r);
        integrity_retry(job, "read a different number of bytes than listed");
        return;
    }
    take_source_checksum(job, r);
    char got[S3_CHECKSUM_MAX];
    if (!bytes_match_checksum(job, r->body, r->body_len, got)) {
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
    with_tags(job, r, put_whole);
}

static void put_whole(struct copy_job *job)
{
    set_state(job, CS_PUT);
    struct rep_ctx *ctx = job->ctx;
    struct s3_header h[MAX_META + 3];
    char until[RETAIN_UNTIL_LEN];
    size_t nh = with_checksum(job, h, with_retention(job, h, until));
    check_started(job, s3_put_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, h, nh, job->data->body,
                                     job->data->body_len, job->content_md5, put_done, job));
}

static void start_get(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    set_state(job, CS_GET);
    job->ck_mode_sent = want_checksum_mode(job);
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .max_body = (size_t)job->size + 1,
                            .checksum_mode = job->ck_mode_sent};
    check_started(job, s3_get_object(ctx->src, &a, get_done, job));
}

/* ---- multipart ---- */

static void parts_free(struct copy_job *job)
{
    for (int i = 0; job->parts && i < job->nparts; i++) {
        struct part *p = &job->parts[i];
        free(p->etag);
        s3_response_free(p->get_resp);
        s3_response_free(p->put_resp);
        free(p->ring);
        EVP_MD_CTX_free(p->md5);
        s3_checksum_cleanup(&p->ck);
        ev_timer_stop(s3_loop_ev(job->ctx->loop), &p->retry);
    }
    free(job->parts);
    job->parts = NULL;
    job->nparts = job->next_part = job->inflight = job->parts_done = 0;
    job->parts_failed = false;
}

static void abort_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r && r->err != S3_OK && r->err != S3_ERR_CANCELLED) /* r is NULL when there was no upload to abort */
        s3_log(S3_LOG_WARN, "%s: aborting multipart upload failed (%s); the next run cleans it up", job->key,
               r->message);
    s3_response_free(r);
    free(job->upload_id);
    job->upload_id = NULL;
    parts_free(job);
    if (job->restart_after_abort) {
        job->restart_after_abort = false;
        if (job->restart_direct) {
            job->restart_direct = false;
            mem_release(job);
            job_start(job);
            return;
        }
        refresh(job);
        return;
    }
    finish(job, job->after_abort);
}

/* Ends a multipart upload that will not complete: abort it, then finish with r (or refresh if restart). */
static void mpu_abandon(struct copy_job *job, enum copy_result r, bool restart)
{
    job->after_abort = r;
    job->restart_after_abort = restart;
    if (!job->upload_id) {
        abort_done(NULL, job);
        return;
    }
    set_state(job, CS_MPU_ABORT);
    struct rep_ctx *ctx = job->ctx;
    check_started(job, s3_mpu_abort(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, abort_done, job));
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
        finish(job, COPY_OK);
        return;
    }
    snprintf(job->error, sizeof job->error, "setting its tags (PutObjectTagging) failed: %s (--no-tags copies "
             "objects without their tags)", r->message);
    bool cancelled = r->err == S3_ERR_CANCELLED;
    s3_response_free(r);
    finish(job, cancelled ? COPY_CANCELLED : COPY_FAILED);
}

/* --retain where the write itself could not carry the lock (piped multipart uploads) or the server may have ignored
 * it (other multipart uploads: mpu_create; CopyObject: copy_done): the version is locked before the copy counts as
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
    finish(job, cancelled ? COPY_CANCELLED : COPY_FAILED);
}

static void retention_set(struct copy_job *job)
{
    const struct rep_options *o = job->ctx->o;
    char until[RETAIN_UNTIL_LEN];
    job->retain_after = false;
    retain_until((double)time(NULL), o->retain, until);
    set_state(job, CS_RETAIN);
    check_started(job, s3_put_object_retention(job->ctx->dst, o->dst_bucket, job->dst_key, job->version_id,
                                               retain_mode(o), until, retention_done, job));
}

static void finish_ok(struct copy_job *job)
{
    if (job->retain_after) {
        retention_set(job);
        return;
    }
    if (!job->tags_after || !job->tagging_xml) {
        finish(job, COPY_OK);
        return;
    }
    job->tags_after = false;
    set_state(job, CS_TAGS);
    check_started(job, s3_put_object_tagging(job->ctx->dst, job->ctx->o->dst_bucket, job->dst_key, job->version_id,
                                             job->tagging_xml, job->tagging_xml_len, tags_put_done, job));
}

/* The new version (and ETag) read from the object itself: only this tool writes the target. */
static void read_written(struct copy_job *job)
{
    check_started(job, s3_head_object(job->ctx->dst_r, job->ctx->o->dst_bucket, job->dst_key, job->version_id, NULL,
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
static void finish_written(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (job->target_etag && (job->version_id || !ctx->target_versioned)) {
        finish_ok(job);
        return;
    }
    set_state(job, CS_VERSION);
    if (job->target_etag && !job->version_id && ctx->versions) {
        versions_ask(ctx->versions, job->dst_key, job->target_etag, version_learned, job);
        return;
    }
    read_written(job);
}

/* After a part-copied upload: if the source changed meanwhile the parts may mix two versions; copy again
 * (the mixed upload stays only as an older version of the target object). */
static void source_recheck_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK && (is_precondition_failed(r) || r->status == 404)) {
        s3_log(S3_LOG_WARN, "%s changed during a multipart copy; copying it again", job->key);
        s3_response_free(r);
        free(job->target_etag);
        free(job->version_id);
        job->target_etag = job->version_id = NULL;
        refresh(job);
        return;
    }
    s3_response_free(r);
    finish_written(job);
}

static void complete_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        bool cancelled = r->err == S3_ERR_CANCELLED;
        snprintf(job->error, sizeof job->error, "CompleteMultipartUpload: %s", r->message);
        s3_response_free(r);
        mpu_abandon(job, cancelled ? COPY_CANCELLED : COPY_FAILED, false);
        return;
    }
    char *etag = NULL;
    if (s3_xml_parse_complete(r->body, r->body_len, &etag) != S3_OK && s3_xml_is_error(r->body, r->body_len)) {
        s3_response_free(r);
        snprintf(job->error, sizeof job->error, "CompleteMultipartUpload: reply without a valid result");
        mpu_abandon(job, COPY_FAILED, false);
        return;
    }
    if (etag && !etag[0]) {
        free(etag);
        etag = NULL;
    }
    take_result(job, r, etag);
    s3_response_free(r);
    free(job->upload_id);
    job->upload_id = NULL;
    parts_free(job);
    job->retain_after = job->ctx->o->retain > 0; /* see mpu_create */
    if (job->part_copy) { /* some servers (RGW) ignore the condition on UploadPartCopy: check afterwards */
        check_started(job, s3_head_object(job->ctx->src, job->ctx->o->src_bucket, job->key, job->src_version,
                                          job->etag, source_recheck_done, job));
        return;
    }
    finish_written(job);
}

/* "md5(concat(binary part MD5s))-N" of the parts uploaded, compared with the source's ETag. The part MD5s are
 * the target's part ETags (what it stored), or, where those are not MD5s, the digests of what was read (each
 * checked by the target against the Content-MD5 sent with it). */
static bool composite_matches(const struct copy_job *job)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestInit_ex(m, EVP_md5(), NULL);
    for (int i = 0; ok && i < job->nparts; i++) {
        unsigned char b[16];
        const struct part *p = &job->parts[i];
        ok = s3_md5_from_hex(job->buffered ? p->md5hex : p->etag, b) == 0 && EVP_DigestUpdate(m, b, sizeof b);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(m, md, &len) && len == 16;
    EVP_MD_CTX_free(m);
    if (!ok) return false;
    char want[48];
    s3_md5_hex(md, want);
    snprintf(want + 32, sizeof want - 32, "-%d", job->nparts);
    return strcasecmp(want, job->etag) == 0;
}

/* The parts' checksums checked against the source's before completing: true when the job moved on (the
 * upload abandoned, to copy again or to fail). */
static bool parts_checksum_failed(struct copy_job *job)
{
    bool checked;
    char got[S3_CHECKSUM_MAX];
    if (parts_match_checksum(job, &checked, got)) return false;
    const char *name = s3_checksum_name(job->ck_alg);
    if (job->ck_composite && ++job->ck_misses >= 2) { /* a layout of parts unlike the source's: not checkable */
        s3_log(S3_LOG_WARN, "%s: the parts written do not add up to the source's composite %s checksum %s again "
               "(%s): its parts must differ from ours; not checked", job->key, name, job->ck_value, got);
        return false;
    }
    if (++job->integrity_retries > MAX_INTEGRITY) {
        snprintf(job->error, sizeof job->error, "the bytes read do not match the source's %s checksum %s (read: "
                 "%s; gave up after %d reads)", name, job->ck_value, got, MAX_INTEGRITY + 1);
        mpu_abandon(job, COPY_FAILED, false);
        return true;
    }
    s3_log(S3_LOG_WARN, "%s: the bytes read do not match the source's %s checksum %s (read: %s); copying it again",
           job->key, name, job->ck_value, got);
    job->restart_direct = true;
    mpu_abandon(job, COPY_OK, true);
    return true;
}

static void mpu_complete(struct copy_job *job)
{
    if (parts_checksum_failed(job)) return;
    if (job->composite && !composite_matches(job)) {
        job->composite_misses++;
        s3_log(S3_LOG_WARN, "%s: the parts written do not add up to the source's ETag %s (%s); copying it again",
               job->key, job->etag, job->composite_misses < 2 ? "a part was read wrong, or the source's parts differ"
                                                              : "now hashing each part");
        job->restart_direct = true;
        mpu_abandon(job, COPY_OK, true);
        return;
    }
    const char **etags = calloc((size_t)job->nparts, sizeof *etags);
    if (!etags) abort();
    for (int i = 0; i < job->nparts; i++) etags[i] = job->parts[i].etag;
    set_state(job, CS_MPU_COMPLETE);
    struct rep_ctx *ctx = job->ctx;
    check_started(job, s3_mpu_complete(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, etags,
                                       (size_t)job->nparts, complete_done, job));
    free(etags);
}

/* A part's request failed: remember the first reason; the pump abandons the upload once nothing is in flight. */
static void part_failed(struct copy_job *job, struct s3_response *r, const char *what)
{
    if (!job->parts_failed) {
        job->parts_failed = true;
        if (r->err == S3_ERR_CANCELLED) job->after_abort = COPY_CANCELLED;
        else if (is_precondition_failed(r)) job->after_abort = COPY_OK, job->restart_after_abort = true;
        else if (r->status == 404 && is_source_missing(r)) job->after_abort = COPY_VANISHED;
        else {
            job->after_abort = COPY_FAILED;
            snprintf(job->error, sizeof job->error, "%s: %s", what, r->message);
        }
    }
    s3_response_free(r);
}

static void part_put_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    job->inflight--;
    if (r->err != S3_OK) {
        part_failed(job, r, "UploadPartCopy");
    } else {
        char *etag = NULL;
        if (s3_xml_parse_copy(r->body, r->body_len, &etag, NULL) != S3_OK) etag = NULL;
        if (!etag) {
            r->err = S3_ERR_XML;
            snprintf(r->message, sizeof r->message, "part %d: reply has no ETag", p->no);
            part_failed(job, r, "UploadPartCopy");
        } else {
            p->etag = etag;
            job->parts_done++;
            s3_response_free(r);
        }
    }
    mpu_pump(job);
}

/* ---- piped parts: ranged GET -> UploadPart with a bounded ring in between ----
 * Memory per part in flight is the ring, not the part, so many more parts can be in flight in the same
 * budget, and a part's upload overlaps its download. Piped requests are sent once (their bytes cannot be
 * replayed): a failure of either end cancels the other and the pair runs again after the retry policy's
 * delay. The part's ETag from the target must be the MD5 of what was fed in. */

static void pipe_start(struct part *p);
static void part_buffered_start(struct part *p);

/* A target found to hide MD5s while parts are piped: abandon the upload and copy the object again, planned
 * with buffered parts and memory for them. */
static void restart_buffered(struct copy_job *job)
{
    if (job->parts_failed) return;
    s3_log(S3_LOG_INFO, "%s: the target's part ETags are not MD5s: copying it again with Content-MD5 on each part",
           job->key);
    job->parts_failed = true;
    job->after_abort = COPY_OK;
    job->restart_after_abort = true;
    job->restart_direct = true;
}

static enum s3_sink pipe_sink(const void *data, size_t n, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    if (job->parts_failed) return S3_SINK_ABORT;
    if (p->fed + n > p->last - p->first + 1) {
        p->overflow = true;
        return S3_SINK_ABORT;
    }
    if (job->ring - p->ring_len < n) {
        p->get_paused = true;
        return S3_SINK_FULL;
    }
    size_t tail = (p->ring_head + p->ring_len) % job->ring, first = job->ring - tail;
    if (first > n) first = n;
    memcpy(p->ring + tail, data, first);
    memcpy(p->ring, (const char *)data + first, n - first);
    p->ring_len += n;
    p->fed += n;
    if (!job->composite) EVP_DigestUpdate(p->md5, data, n);
    if (job->ck_alg) s3_checksum_update(&p->ck, data, n);
    if (p->put_paused) {
        p->put_paused = false;
        s3_request_resume(p->put_rq);
    }
    return S3_SINK_TAKEN;
}

static size_t pipe_source(char *buf, size_t room, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    if (!p->ring_len) {
        p->put_paused = true;
        return 0;
    }
    size_t n = job->ring - p->ring_head;
    if (n > p->ring_len) n = p->ring_len;
    if (n > room) n = room;
    memcpy(buf, p->ring + p->ring_head, n);
    p->ring_head = (p->ring_head + n) % job->ring;
    p->ring_len -= n;
    if (p->get_paused) {
        p->get_paused = false;
        s3_request_resume(p->get_rq);
    }
    return n;
}

static void pipe_retry_fire(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct part *p = w->data;
    struct copy_job *job = p->job;
    if (job->parts_failed || job->ctx->interrupted) {
        job->inflight--;
        mpu_pump(job);
        return;
    }
    pipe_start(p);
}

/* Both ends are done: take the part, run the pair again, or fail the upload. */
static void pipe_settle(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    if (p->get_rq || p->put_rq) return;
    struct s3_response *g = p->get_resp, *u = p->put_resp;
    p->get_resp = p->put_resp = NULL;
    free(p->ring);
    p->ring = NULL;
    uint64_t want = p->last - p->first + 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[33] = "";
    if (EVP_DigestFinal_ex(p->md5, md, &mdlen) && mdlen == 16) s3_md5_hex(md, hex);
    memcpy(p->md5hex, hex, sizeof hex);
    struct s3_response *bad = NULL; /* the end whose failure decides */
    if (g->err != S3_OK && g->err != S3_ERR_CANCELLED) bad = g;
    else if (u->err != S3_OK && u->err != S3_ERR_CANCELLED) bad = u;
    else if (g->err != S3_OK) bad = g; /* both cancelled: an interruption */
    else if (u->err != S3_OK) bad = u;
    bool integrity = false;
    char *etag = NULL;
    if (!bad && s3_sse_hides_md5(u)) {
        /* the target's part ETags are no MD5s, so nothing checks what it stored of a piped part: start the
         * object again with buffered parts (mpu_start plans them from ctx->dst_sse) */
        learn_dst_sse(job, u);
        s3_response_free(g);
        s3_response_free(u);
        restart_buffered(job);
        job->inflight--;
        mpu_pump(job);
        return;
    }
    if (!bad) {
        etag = s3_response_etag(u);
        if (p->fed != want || !etag || (!job->composite && s3_etag_is_md5(etag) && strcasecmp(etag, hex) != 0)) {
            integrity = true;
            bad = u;
            bad->err = S3_ERR_INTEGRITY;
            snprintf(bad->message, sizeof bad->message,
                     "part %d: %s (read %llu of %llu bytes, MD5 %s, part ETag %s)", p->no,
                     !etag ? "the reply has no ETag" : p->fed != want ? "read a different number of bytes"
                                                                      : "the target stored other bytes",
                     (unsigned long long)p->fed, (unsigned long long)want, hex, etag ? etag : "none");
            free(etag);
            etag = NULL;
        }
    } else if (bad == g && p->overflow) {
        bad->err = S3_ERR_INTEGRITY;
        snprintf(bad->message, sizeof bad->message, "part %d: the ranged GET returned more than %llu bytes",
                 p->no, (unsigned long long)want);
        integrity = true;
    }
    if (!bad) {
        p->etag = etag;
        part_checksum_done(job, p);
        job->parts_done++;
        job->inflight--;
        s3_response_free(g);
        s3_response_free(u);
        mpu_pump(job);
        return;
    }
    struct s3_response *other = bad == g ? u : g;
    s3_response_free(other);
    enum s3_retry_class cls = integrity ? S3_RETRY_YES
                                        : s3_retry_classify(bad->status, bad->s3err.code, bad->curl_code);
    if (bad->err == S3_ERR_CANCELLED || is_precondition_failed(bad) || (bad->status == 404 && bad == g)) cls = S3_RETRY_NO;
    int max = s3_loop_retry_policy(ctx->loop)->max_attempts;
    if (cls != S3_RETRY_NO && !job->parts_failed && !ctx->interrupted && ++p->tries < max) {
        double delay = s3_loop_retry_delay(ctx->loop, p->tries, cls, -1);
        s3_log(S3_LOG_INFO, "%s: %s; running the part again in %.2fs (attempt %d of %d)", job->key, bad->message,
               delay, p->tries + 1, max);
        s3_response_free(bad);
        ev_timer_set(&p->retry, delay, 0.);
        ev_timer_start(s3_loop_ev(ctx->loop), &p->retry);
        return;
    }
    job->inflight--;
    part_failed(job, bad, bad == g ? "GetObject (range)" : "UploadPart");
    mpu_pump(job);
}

static void pipe_get_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    p->get_rq = NULL;
    p->get_resp = r;
    /* a failed GET, or one that ended short, leaves the PUT waiting for bytes that will not come */
    if (p->put_rq && (r->err != S3_OK || p->fed != p->last - p->first + 1)) s3_request_cancel(p->put_rq);
    pipe_settle(p);
}

static void pipe_put_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    p->put_rq = NULL;
    p->put_resp = r;
    if (r->err != S3_OK && p->get_rq) s3_request_cancel(p->get_rq);
    pipe_settle(p);
}

static void pipe_start(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    if (!p->md5) p->md5 = EVP_MD_CTX_new();
    p->ring = malloc(job->ring);
    if (!p->md5 || !p->ring || !EVP_DigestInit_ex(p->md5, EVP_md5(), NULL)) {
        s3_log(S3_LOG_ERROR, "out of memory piping a part of %s", job->key);
        abort();
    }
    if (job->ck_alg && s3_checksum_init(&p->ck, job->ck_alg) != 0) {
        s3_log(S3_LOG_ERROR, "out of memory piping a part of %s", job->key);
        abort();
    }
    p->ring_head = p->ring_len = 0;
    p->fed = 0;
    p->get_paused = p->put_paused = p->overflow = false;
    ev_timer_init(&p->retry, pipe_retry_fire, 0., 0.);
    p->retry.data = p;
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .ranged = true,
                            .first = p->first, .last = p->last, .on_sink = pipe_sink, .sink_ud = p};
    p->get_rq = s3_get_object(ctx->src, &a, pipe_get_done, p);
    check_started(job, p->get_rq);
    p->put_rq = s3_mpu_upload_part_from(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, p->no,
                                        (size_t)(p->last - p->first + 1), pipe_source, p, pipe_put_done, p);
    check_started(job, p->put_rq);
}

/* ---- buffered parts: ranged GET into memory, then UploadPart with Content-MD5 ----
 * For targets whose part ETags are not MD5s (SSE-KMS, SSE-C): the digest goes with the part, so the target
 * checks what it stores. Memory per part in flight is the part. */

static void part_integrity(struct copy_job *job, struct part *p, struct s3_response *r, const char *why)
{
    r->err = S3_ERR_INTEGRITY;
    snprintf(r->message, sizeof r->message, "part %d: %s", p->no, why);
    part_failed(job, r, "UploadPart");
}

static void part_upload_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    p->put_rq = NULL;
    s3_response_free(p->get_resp);
    p->get_resp = NULL;
    job->inflight--;
    char *etag = r->err == S3_OK ? s3_response_etag(r) : NULL;
    if (r->err != S3_OK) {
        part_failed(job, r, "UploadPart");
    } else if (!etag) {
        part_integrity(job, p, r, "the reply has no ETag");
    } else if (!s3_sse_hides_md5(r) && s3_etag_is_md5(etag) && strcasecmp(etag, p->md5hex) != 0) {
        free(etag);
        part_integrity(job, p, r, "the target stored other bytes than were sent");
    } else {
        p->etag = etag;
        job->parts_done++;
        s3_response_free(r);
    }
    mpu_pump(job);
}

static void part_read_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    p->get_rq = NULL;
    if (r->err != S3_OK || r->body_len != p->last - p->first + 1 || job->parts_failed || ctx->interrupted) {
        job->inflight--;
        if (r->err == S3_OK && !job->parts_failed && !ctx->interrupted)
            part_integrity(job, p, r, "the ranged GET returned another number of bytes than asked for");
        else if (r->err != S3_OK)
            part_failed(job, r, "GetObject (range)");
        else
            s3_response_free(r);
        mpu_pump(job);
        return;
    }
    unsigned char md[16];
    char b64[25];
    s3_md5(r->body, r->body_len, md);
    s3_md5_hex(md, p->md5hex);
    s3_md5_base64(md, b64);
    if (job->ck_alg &&
        (s3_checksum_init(&p->ck, job->ck_alg) != 0 || s3_checksum_update(&p->ck, r->body, r->body_len) != 0)) {
        s3_log(S3_LOG_ERROR, "out of memory hashing a part of %s", job->key);
        abort();
    }
    part_checksum_done(job, p);
    p->get_resp = r;
    p->put_rq = s3_mpu_upload_part(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, p->no, r->body,
                                   r->body_len, b64, part_upload_done, p);
    check_started(job, p->put_rq);
}

static void part_buffered_start(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    free(p->etag);
    p->etag = NULL;
    p->md5hex[0] = '\0';
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .ranged = true, .first = p->first, .last = p->last,
                            .max_body = (size_t)(p->last - p->first + 2)};
    p->get_rq = s3_get_object(ctx->src, &a, part_read_done, p);
    check_started(job, p->get_rq);
}

/* The scheduling decision for a multipart copy: look at what is in flight and done, start what is next. */
static void mpu_pump(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (job->parts_failed || ctx->interrupted) {
        if (!job->parts_failed) {
            job->parts_failed = true;
            job->after_abort = COPY_CANCELLED;
        }
        if (job->inflight == 0) mpu_abandon(job, job->after_abort, job->restart_after_abort);
        return;
    }
    if (job->parts_done == job->nparts) {
        mpu_complete(job);
        return;
    }
    while (job->inflight < job->parallel && job->next_part < job->nparts) {
        struct part *p = &job->parts[job->next_part++];
        job->inflight++;
        if (job->buffered) {
            part_buffered_start(p);
        } else if (job->ring) {
            pipe_start(p);
        } else if (job->part_copy) {
            check_started(job, s3_mpu_upload_part_copy(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id,
                                                       p->no, ctx->o->src_bucket, job->key, job->src_version,
                                                       p->first, p->last, job->etag, part_put_done, p));
        }
    }
}

static void create_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        bool cancelled = r->err == S3_ERR_CANCELLED;
        snprintf(job->error, sizeof job->error, "CreateMultipartUpload: %s", r->message);
        s3_response_free(r);
        finish(job, cancelled ? COPY_CANCELLED : COPY_FAILED);
        return;
    }
    char *uid = NULL;
    if (s3_xml_parse_initiate(r->body, r->body_len, &uid) != S3_OK) {
        s3_response_free(r);
        fail(job, "CreateMultipartUpload: reply without an UploadId");
        return;
    }
    learn_dst_sse(job, r);
    s3_response_free(r);
    job->upload_id = uid;
    if (job->dst_sse && job->ring) { /* planned piped before the run knew: start again, buffered */
        restart_buffered(job);
        mpu_abandon(job, COPY_OK, true);
        return;
    }
    job->part_size = copy_part_size(job->size, job->ctx->o->part_size);
    job->nparts = (int)((job->size + job->part_size - 1) / job->part_size);
    if (job->nparts < 1) job->nparts = 1;
    job->parts = calloc((size_t)job->nparts, sizeof *job->parts);
    if (!job->parts) abort();
    for (int i = 0; i < job->nparts; i++) {
        struct part *p = &job->parts[i];
        p->job = job;
        p->no = i + 1;
        p->first = (uint64_t)i * job->part_size;
        p->last = p->first + job->part_size - 1;
        if (p->last >= job->size) p->last = job->size - 1;
    }
    set_state(job, CS_MPU_PARTS);
    mpu_pump(job);
}

static void mpu_create(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    job->tags_after = job->tagging_xml != NULL;
    set_state(job, CS_MPU_CREATE);
    /* Piped parts carry no Content-MD5 (their bytes stream through), which S3 requires of every part of an upload
     * created with Object Lock headers: such uploads are created without them. Every upload is locked once
     * complete (retention_set), since Ceph RGW 16 ignores the headers on CreateMultipartUpload. */
    struct s3_header h[MAX_META + 2];
    char until[RETAIN_UNTIL_LEN];
    size_t nh = job->ring ? job->nmeta : with_retention(job, h, until);
    check_started(job, s3_mpu_create(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->ring ? job->meta : h, nh,
                                     create_done, job));
}

static void mpu_with_memory(struct copy_job *job)
{
    mpu_create(job);
}

static void mpu_start(struct copy_job *job);

static void head_source(struct copy_job *job);

static void head_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (source_checksum_refused(job, r, head_source)) return;
    if (source_step_failed(job, r, "HeadObject")) return;
    job->src_sse = s3_sse_hides_md5(r);
    take_source_checksum(job, r);
    take_metadata(job, r, true);
    /* a CopyObject that replaces the metadata replaces the tags too on some servers (Ceph RGW): send them */
    with_tags(job, NULL, job->replace_meta ? start_server_copy : mpu_start);
}

/* A multipart copy with the metadata and tags read: parts by UploadPartCopy, or piped within the budget. */
static void mpu_start(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (job->part_copy) {
        job->ring = 0;
        job->parallel = PARTS_PER_JOB * 2;
        mpu_create(job);
        return;
    }
    uint64_t ps = copy_part_size(job->size, ctx->o->part_size);
    /* Piped parts hold a small ring each (a 128 KiB to 1.8 MiB ring made no difference to throughput on RGW). Each
     * is charged to the memory budget as if it held budget / connections-per-host, so that all the pipes the
     * budget admits have a connection on each side; twice that where source and target are one host (a pipe
     * holds its GET's connection while its UploadPart needs one there). Charging every pipe double on two
     * hosts kept 6 x 128 MiB objects to 36 pipes: 3.9 s where 48 take 3.2 s. */
    const char *dash = strrchr(job->etag, '-');
    uint64_t nparts = (job->size + ps - 1) / ps;
    job->composite = dash && dash - job->etag == 32 && strtoull(dash + 1, NULL, 10) == nparts &&
                     job->composite_misses < 2 && !job->src_sse;
    if (ctx->dst_sse) { /* a target whose part ETags are no MD5s: parts read whole, sent with Content-MD5 */
        uint64_t fit = ctx->o->max_memory / (ps + 1);
        job->buffered = true;
        job->ring = 0;
        job->parallel = (int)(fit < 1 ? 1 : fit < PARTS_PER_JOB ? fit : PARTS_PER_JOB);
        mem_acquire(job, (ps + 1) * (uint64_t)job->parallel, mpu_with_memory);
        return;
    }
    uint64_t ring = PIPE_RING,
             charge = ctx->o->max_memory * (ctx->one_host ? 2 : 1) / (uint64_t)(ctx->o->jobs + 8);
    if (ring > ps) ring = ps;
    if (charge < ring) charge = ring;
    uint64_t fit = ctx->o->max_memory / charge;
    job->ring = (size_t)ring;
    job->parallel = (int)(fit < 1 ? 1 : fit < PIPED_PARTS_PER_JOB ? fit : PIPED_PARTS_PER_JOB);
    mem_acquire(job, charge * (uint64_t)job->parallel, mpu_with_memory);
}

/* ---- the job ---- */

/* The HEAD before a streamed multipart copy: metadata, and the source's checksum. */
static void head_source(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    set_state(job, CS_HEAD);
    job->ck_mode_sent = want_checksum_mode(job);
    check_started(job, (job->ck_mode_sent ? s3_head_object_checksum : s3_head_object)(
                           ctx->src, ctx->o->src_bucket, job->key, job->src_version, job->etag, head_done, job));
}

static void job_start(struct copy_job *job)
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
        if (job->size <= o->copy_threshold && !job->replace_meta) start_server_copy(job);
        else {
            set_state(job, CS_HEAD);
            check_started(job, s3_head_object(ctx->src, o->src_bucket, job->key, job->src_version, job->etag,
                                              head_done, job));
        }
        return;
    }
    if (job->size <= o->multipart_threshold)
        mem_acquire(job, job->size + 1, start_get);
    else
        head_source(job);
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
    parts_free(job);
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
