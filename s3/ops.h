/* The S3 operations the replicator uses, as thin asynchronous wrappers over s3_request_start: each builds the
 * request (path, query, headers) and completes through s3_done_cb with the raw response; parse result bodies
 * with s3/xml.h. Read operations take a struct s3_reader, write operations a struct s3_client. Must not: offer a
 * DELETE of an object or a bucket. */
#ifndef S3_OPS_H
#define S3_OPS_H

#include "s3/client.h"

/* ListObjectsV2, one page. token/start_after/prefix may be NULL; max_keys 0 = server default (1000). */
struct s3_request *s3_list_v2(struct s3_reader *r, const char *bucket, const char *prefix, const char *start_after,
                              const char *token, int max_keys, s3_done_cb cb, void *ud);
/* ListObjectVersions, one page. */
struct s3_request *s3_list_versions(struct s3_reader *r, const char *bucket, const char *prefix,
                                    const char *key_marker, const char *version_marker, int max_keys, s3_done_cb cb,
                                    void *ud);
/* HeadObject; version_id and if_match may be NULL. */
struct s3_request *s3_head_object(struct s3_reader *r, const char *bucket, const char *key, const char *version_id,
                                  const char *if_match, s3_done_cb cb, void *ud);
/* The same, asking for the object's additional checksum (x-amz-checksum-mode: ENABLED; s3/checksum.h reads it
 * from the reply). Amazon S3 then needs kms:Decrypt for an SSE-KMS object, which a plain HEAD does not. */
struct s3_request *s3_head_object_checksum(struct s3_reader *r, const char *bucket, const char *key,
                                           const char *version_id, const char *if_match, s3_done_cb cb, void *ud);

struct s3_get_args {
    const char *bucket, *key;
    const char *version_id; /* NULL = latest */
    const char *if_match;   /* ETag without quotes, or NULL */
    bool ranged;            /* send Range: bytes=first-last */
    uint64_t first, last;
    size_t max_body;        /* cap when buffering; default 1 MiB */
    s3_body_cb on_body;     /* stream instead of buffering */
    s3_reset_cb on_reset;
    void *body_ud;
    s3_sink_cb on_sink;     /* or pipe the body, flow-controlled (sent once: see s3/client.h) */
    void *sink_ud;
    bool checksum_mode;     /* x-amz-checksum-mode: ENABLED (the object's additional checksum in the reply) */
};
struct s3_request *s3_get_object(struct s3_reader *r, const struct s3_get_args *a, s3_done_cb cb, void *ud);

/* PutObject from memory (body not copied: keep it alive until cb). content_md5 is base64, or NULL; with it, a
 * BadDigest reply is delivered at once instead of resending the same bytes (the caller may have taken the
 * digest from the source, so only reading the body again can help). headers are
 * the object's metadata (Content-Type, x-amz-meta-*, ...). */
struct s3_request *s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                                 const struct s3_header *headers, size_t nheaders, const void *body, size_t len,
                                 const char *content_md5, s3_done_cb cb, void *ud);

/* CopyObject of src_key (its version src_version_id, or the latest when NULL). src_if_match:
 * x-amz-copy-source-if-match (NULL = unconditional). With headers == NULL the metadata directive is COPY;
 * otherwise REPLACE with exactly these headers (with an x-amz-tagging among them, the tags are replaced too).
 * extra: request headers that are not metadata (Object Lock retention), sent with either directive; may be NULL.
 * A 200 with <Error> fails. */
struct s3_request *s3_copy_object(struct s3_client *c, const char *bucket, const char *key, const char *src_bucket,
                                  const char *src_key, const char *src_version_id, const char *src_if_match,
                                  const struct s3_header *headers, size_t nheaders, const struct s3_header *extra,
                                  size_t nextra, s3_done_cb cb, void *ud);

struct s3_request *s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                                 const struct s3_header *headers, size_t nheaders, s3_done_cb cb, void *ud);
struct s3_request *s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                      int part, const void *body, size_t len, const char *content_md5, s3_done_cb cb,
                                      void *ud);
/* UploadPart of len bytes read from source as they become ready (flow-controlled, sent once, UNSIGNED-PAYLOAD,
 * no Content-MD5: the caller checks the part's ETag against the MD5 of what it fed in). */
struct s3_request *s3_mpu_upload_part_from(struct s3_client *c, const char *bucket, const char *key,
                                           const char *upload_id, int part, size_t len, s3_source_cb source,
                                           void *source_ud, s3_done_cb cb, void *ud);
/* UploadPartCopy of bytes first..last of the source (inclusive; its version src_version_id, or the latest). */
struct s3_request *s3_mpu_upload_part_copy(struct s3_client *c, const char *bucket, const char *key,
                                           const char *upload_id, int part, const char *src_bucket,
                                           const char *src_key, const char *src_version_id, uint64_t first,
                                           uint64_t last, const char *src_if_match, s3_done_cb cb, void *ud);
/* CompleteMultipartUpload with part ETags 1..n (copied). A 200 with <Error> fails. */
struct s3_request *s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                   const char *const *etags, size_t n, s3_done_cb cb, void *ud);
/* AbortMultipartUpload (the only DELETE the tool sends; it deletes no object). max_attempts: 0 = the loop's
 * policy; a run that is stopping tries once (an upload left behind is cleaned up by the next run). */
struct s3_request *s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                int max_attempts, s3_done_cb cb, void *ud);
/* ListMultipartUploads, one page. */
struct s3_request *s3_mpu_list(struct s3_reader *r, const char *bucket, const char *prefix, const char *key_marker,
                               const char *upload_id_marker, s3_done_cb cb, void *ud);

/* GetObjectTagging of key (its version version_id, or the latest); parse with s3_xml_parse_tagging. */
struct s3_request *s3_get_object_tagging(struct s3_reader *r, const char *bucket, const char *key,
                                         const char *version_id, s3_done_cb cb, void *ud);

/* PutObjectTagging of key's version version_id (NULL = latest) with a <Tagging> body (not copied: keep it until
 * cb; Content-MD5 sent). */
struct s3_request *s3_put_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                                         const char *version_id, const char *xml, size_t len, s3_done_cb cb,
                                         void *ud);

/* PutObjectRetention of key's version version_id (NULL = latest): mode "GOVERNANCE" or "COMPLIANCE", until an ISO
 * 8601 time (the <Retention> body is built here; Content-MD5 sent, which S3 requires). */
struct s3_request *s3_put_object_retention(struct s3_client *c, const char *bucket, const char *key,
                                           const char *version_id, const char *mode, const char *until,
                                           s3_done_cb cb, void *ud);

struct s3_request *s3_versioning_get(struct s3_reader *r, const char *bucket, s3_done_cb cb, void *ud);
/* status: "Enabled" or "Suspended". */
struct s3_request *s3_versioning_put(struct s3_client *c, const char *bucket, const char *status, s3_done_cb cb,
                                     void *ud);

/* The headers that make up an object's metadata, as S3 returns them on GET/HEAD: Content-Type, Cache-Control,
 * Content-Disposition, Content-Encoding, Content-Language, Expires and x-amz-meta-*. Fills up to max entries
 * pointing into resp (valid while resp lives); returns the count. */
size_t s3_metadata_headers(const struct s3_response *resp, struct s3_header *out, size_t max);

/* MD5 of data (the integrity hash S3 uses for Content-MD5 and plain ETags). */
void s3_md5(const void *data, size_t len, unsigned char out[16]);
/* base64 of 16 raw MD5 bytes into out[25]; hex MD5 (32 chars) to base64 (returns -1 if hex is not an MD5). */
void s3_md5_base64(const unsigned char md5[16], char out[25]);
int s3_md5_hex_to_base64(const char *hex, char out[25]);
/* Lowercase hex of an MD5 digest; and back (0, or -1 when hex is not 32 hex digits). */
void s3_md5_hex(const unsigned char md5[16], char out[33]);
int s3_md5_from_hex(const char *hex, unsigned char out[16]);
/* True if an ETag looks like a plain MD5 (32 hex digits, no "-N" multipart suffix). Whether it is one depends on
 * the object's encryption as well: see s3_sse_hides_md5. */
bool s3_etag_is_md5(const char *etag);
/* The encryption a GET/HEAD/PUT/CreateMultipartUpload/UploadPart reply names when it is one under which Amazon S3's
 * ETags are not the MD5 of the bytes (though they look like one): "aws:kms", "aws:kms:dsse" (SSE-KMS) or "SSE-C"
 * (a customer-provided key); NULL for none or SSE-S3 ("AES256"), whose ETags are MD5s. */
const char *s3_sse_hides_md5(const struct s3_response *resp);

#endif
