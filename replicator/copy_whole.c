/* The requests of a copy that reads the source whole or not at all: server-side CopyObject, the streamed GET ->
 * PUT, the HEAD that reads the source's metadata first, its tags, and the metadata a write carries. Each callback
 * records what the reply said and reports it to copy_step (replicator/copy.c), which decides what comes next;
 * nothing here starts a request of another state. See replicator/copy_internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "replicator/copy_internal.h"
#include "s3/log.h"

/* Whether the source's ETag is the MD5 of the listed version's bytes: it looks like one, and no reply said the
 * object is encrypted so that it is not (SSE-KMS, SSE-C). */
static bool src_etag_is_md5(const struct copy_job *job)
{
    return !job->src_sse && s3_etag_is_md5(job->etag);
}

/* ---- metadata and tags ---- */

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
size_t copy_with_retention(const struct copy_job *job, struct s3_header *h, char until[RETAIN_UNTIL_LEN])
{
    memcpy(h, job->meta, job->nmeta * sizeof *h);
    return job->nmeta + retain_headers(job->ctx->o, h + job->nmeta, until);
}

/* The source's tags (asked for only when a GET's x-amz-tagging-count says there are any, or after a HEAD, which
 * cannot say), written with the object. */
static void tags_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        copy_step(job, CE_CANCELLED);
        return;
    }
    char *q = NULL;
    if (r->err != S3_OK || s3_xml_parse_tagging(r->body, r->body_len, &q) != S3_OK) {
        snprintf(job->error, sizeof job->error, "reading its tags (GetObjectTagging) failed: %s (--no-tags copies "
                 "objects without their tags)", r->err != S3_OK ? r->message : "the reply is not valid XML");
        s3_response_free(r);
        copy_step(job, CE_FAILED);
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
    copy_step(job, CE_OK);
}

void copy_send_tags_get(struct copy_job *job)
{
    copy_check_started(job, s3_get_object_tagging(job->ctx->src, job->ctx->o->src_bucket, job->key, job->src_version,
                                                  tags_done, job));
}

/* A source GET/HEAD that did not succeed: reported to copy_step (true; r is freed). One that may have been refused
 * for asking for the checksum is sent again without. */
static bool source_read_failed(struct copy_job *job, struct s3_response *r, const char *what)
{
    if (copy_source_checksum_refused(job, r)) {
        s3_response_free(r);
        copy_step(job, CE_AGAIN);
        return true;
    }
    if (r->err == S3_OK) return false;
    copy_step(job, copy_source_event(job, r, what, true));
    return true;
}

/* ---- the HEAD of the source before a multipart upload or a metadata-replacing CopyObject ---- */

static void head_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (source_read_failed(job, r, "HeadObject")) return;
    job->src_sse = s3_sse_hides_md5(r);
    copy_take_source_checksum(job, r);
    s3_response_free(job->meta_resp);
    job->meta_resp = r;
    set_metadata(job, r, true);
    job->src_tags = true; /* S3's HeadObject has no tag count: ask. A CopyObject that replaces the metadata
                           * replaces the tags too on some servers (Ceph RGW): send them */
    copy_step(job, CE_OK);
}

/* Only a streamed multipart copy asks for the source's checksum (server-side copies read no bytes). */
void copy_send_head(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    job->ck_mode_sent = job->path == COPY_PATH_MULTIPART && copy_want_checksum_mode(job);
    copy_check_started(job, (job->ck_mode_sent ? s3_head_object_checksum : s3_head_object)(
                                ctx->src, ctx->o->src_bucket, job->key, job->src_version, job->etag, head_done, job));
}

/* ---- server-side CopyObject ---- */

/* The first CopyObject reply of the run: does the target name the new version in it? */
static void learn_copy_names_version(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (!ctx->target_versioned || ctx->copy_names_version != 0) return;
    ctx->copy_names_version = job->version_id ? 1 : -1;
    if (!job->version_id && ctx->versions)
        s3_log(S3_LOG_INFO, "the target does not name the new version in CopyObject replies: learning the new "
                            "versions with one ListObjectVersions per batch of copied keys");
    else if (!job->version_id)
        s3_log(S3_LOG_INFO, "the target does not name the new version in CopyObject replies: objects up to "
                            "%llu bytes are copied by GET+PUT from now on (one request pair instead of "
                            "CopyObject+HEAD)", (unsigned long long)SMALL_STREAM_MAX);
}

static void object_copy_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        copy_step(job, copy_source_event(job, r, "CopyObject", true));
        return;
    }
    char *etag = NULL, *lm = NULL;
    if (s3_xml_parse_copy(r->body, r->body_len, &etag, &lm) != S3_OK) {
        s3_response_free(r);
        snprintf(job->error, sizeof job->error, "CopyObject: the reply has no valid CopyObjectResult");
        copy_step(job, CE_FAILED);
        return;
    }
    free(lm);
    copy_take_result(job, r, etag);
    copy_learn_dst_sse(job, r);
    s3_response_free(r);
    learn_copy_names_version(job);
    /* Ceph RGW 16 ignores the Object Lock headers of a CopyObject: lock the version written as well (on S3, which
     * honours them, this only sets the same date again) */
    job->retain_after = job->ctx->o->retain > 0;
    copy_step(job, CE_OK);
}

/* CopyObject: the source's metadata (COPY), or job->meta when a HEAD has read and filtered it (REPLACE). */
void copy_send_object_copy(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    /* Ceph RGW 16 ignores x-amz-tagging-directive and drops the tags of a CopyObject that replaces the
     * metadata: such a copy sets its tags on the version it wrote, as multipart copies do */
    job->tags_after = job->meta_resp && job->tagging_xml;
    /* Object Lock headers are not metadata: they go with either directive */
    struct s3_header lock[2];
    char until[RETAIN_UNTIL_LEN];
    size_t nlock = retain_headers(ctx->o, lock, until);
    copy_check_started(job, s3_copy_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, ctx->o->src_bucket, job->key,
                                           job->src_version, job->etag, job->meta_resp ? job->meta : NULL, job->nmeta,
                                           lock, nlock, object_copy_done, job));
}

/* ---- streamed GET -> PUT ---- */

/* Whether the bytes read (job->data) hash to the source's plain-MD5 ETag. */
static bool data_matches_etag(const struct copy_job *job)
{
    unsigned char md[16];
    char hex[33];
    s3_md5(job->data->body, job->data->body_len, md);
    s3_md5_hex(md, hex);
    return strcasecmp(hex, job->etag) == 0;
}

/* Why a PUT's reply says the bytes written are not the listed version, or NULL. */
static const char *put_reread_why(const struct copy_job *job, const struct s3_response *r)
{
    if (r->err == S3_OK) {
        /* A plain-MD5 source copied whole: the target's ETag is the MD5 of what it stored, so equal ETags prove
         * the copy end to end without hashing here. Otherwise (a target whose ETags are not MD5s, or one that
         * ignored Content-MD5) hash what was read: if it is not the listed version, read and write it again
         * (what was written stays only as an older version). A source ETag that is no MD5 (encrypted with
         * SSE-KMS or SSE-C) says nothing about the bytes: Content-MD5 was their own digest. */
        if (src_etag_is_md5(job) && !(job->target_etag && strcasecmp(job->target_etag, job->etag) == 0) &&
            !data_matches_etag(job))
            return "content read does not match the source ETag (MD5)";
        return NULL;
    }
    if (r->s3err.code && strcmp(r->s3err.code, "BadDigest") == 0) {
        /* Content-MD5 was the source's ETag: a target refusing it means the bytes read were not that version;
         * or it was their own digest, and they were damaged on the way (the PUT was sent again already) */
        return src_etag_is_md5(job) ? "content read does not match the source ETag (MD5): the target refused it"
                                    : "the target refused the content as damaged (BadDigest)";
    }
    return NULL;
}

static void put_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (copy_target_checksum_refused(job, r)) {
        s3_response_free(r);
        copy_step(job, CE_AGAIN);
        return;
    }
    if (r->err == S3_OK) {
        copy_take_result(job, r, NULL);
        copy_learn_dst_sse(job, r);
    }
    const char *reread = put_reread_why(job, r);
    s3_response_free(job->data);
    job->data = NULL;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        copy_step(job, CE_CANCELLED);
    } else if (reread) {
        s3_response_free(r);
        snprintf(job->error, sizeof job->error, "%s", reread);
        copy_step(job, CE_REREAD);
    } else if (r->err != S3_OK) {
        copy_step(job, copy_write_event(job, r, "PutObject"));
    } else {
        s3_response_free(r);
        copy_step(job, CE_OK);
    }
}

void copy_send_put(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    struct s3_header h[MAX_META + 3];
    char until[RETAIN_UNTIL_LEN];
    size_t nh = copy_with_checksum(job, h, copy_with_retention(job, h, until));
    copy_check_started(job, s3_put_object(ctx->dst, ctx->o->dst_bucket, job->dst_key, h, nh, job->data->body,
                                          job->data->body_len, job->content_md5, put_done, job));
}

/* What was read must be exactly the listed version: its size and its checksum; why not, or NULL. */
static const char *get_reread_why(struct copy_job *job, const struct s3_response *r, char why[200])
{
    if (r->body_len != job->size) return "read a different number of bytes than listed";
    copy_take_source_checksum(job, r);
    char got[S3_CHECKSUM_MAX];
    if (copy_bytes_match_checksum(job, r->body, r->body_len, got)) return NULL;
    snprintf(why, 200, "content read does not match the source's %s checksum (%s; read: %s)",
             s3_checksum_name(job->ck_alg), job->ck_value, got);
    return why;
}

static void get_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (source_read_failed(job, r, "GetObject")) return;
    char buf[200];
    const char *why = get_reread_why(job, r, buf);
    if (why) {
        snprintf(job->error, sizeof job->error, "%s", why);
        s3_response_free(r);
        copy_step(job, CE_REREAD);
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
    const char *count = s3_response_header(r, "x-amz-tagging-count");
    job->src_tags = count && strtol(count, NULL, 10) > 0;
    copy_step(job, CE_OK);
}

void copy_send_get(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    job->ck_mode_sent = copy_want_checksum_mode(job);
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .max_body = (size_t)job->size + 1,
                            .checksum_mode = job->ck_mode_sent};
    copy_check_started(job, s3_get_object(ctx->src, &a, get_done, job));
}
