/* Parsing of S3 XML response bodies (and building the one XML request body we send) with libxml2:
 * no network access, no entity expansion, no DTD loading, bodies larger than S3_XML_MAX_BODY refused.
 * Every parser returns S3_OK or S3_ERR_XML / S3_ERR_TOO_LARGE / S3_ERR_NOMEM and never crashes on any input.
 * The parsers keep one libxml2 parser context per thread between calls (reset for each body; its name
 * dictionary is capped), so they are cheap to call once per request. */
#ifndef S3_XML_H
#define S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "s3/error.h"

#define S3_XML_MAX_BODY (16u * 1024 * 1024) /* a 1000-key listing of 1024-byte keys is ~1.3 MiB */

/* One object in a listing. All strings owned by the containing page. */
struct s3_object_info {
    char *key; /* raw key bytes (XML-decoded; url-decoded if EncodingType=url was used) */
    uint64_t size;
    char *etag; /* without the surrounding quotes, e.g. "9b2cf535f27731c974343645a3985328" or "...-3" */
    char *last_modified; /* as sent, ISO 8601, e.g. "2026-11-26T16:01:37.000Z" */
    char *version_id;    /* ListObjectVersions only, else NULL */
    char *storage_class; /* <StorageClass> as listed (STANDARD, GLACIER, ...), or NULL */
    bool is_latest;      /* ListObjectVersions only */
    bool delete_marker;  /* ListObjectVersions: this entry is a DeleteMarker (size 0, etag NULL) */
};

/* One page of ListObjectsV2 or ListObjectVersions. */
struct s3_list_page {
    struct s3_object_info *objects;
    size_t count;
    bool is_truncated;
    char *next_token;          /* ListObjectsV2 NextContinuationToken, or NULL */
    char *next_key_marker;     /* ListObjectVersions NextKeyMarker, or NULL */
    char *next_version_marker; /* ListObjectVersions NextVersionIdMarker, or NULL */
    char **common_prefixes;    /* when a delimiter was used */
    size_t nprefixes;
    struct s3_list_strings *strings; /* the objects' strings live here, freed with the page (not one by one) */
};

/* An S3 <Error> body. */
struct s3_error_info {
    char *code;       /* e.g. "NoSuchKey", "SlowDown"; NULL if absent */
    char *message;    /* may be NULL or "" (RGW sends empty <Message/>) */
    char *resource;   /* may be NULL */
    char *request_id; /* may be NULL */
    char *region; /* <Region>: the bucket's region, in AuthorizationHeaderMalformed and redirects; or NULL */
    char *server_time; /* <ServerTime>: the server's clock, in AWS's RequestTimeTooSkewed; or NULL */
};

/* Threads: the parsers may run on several threads at once (each keeps its own parser context) once
 * s3_xml_init has run on the first; a thread that parsed and ends calls s3_xml_thread_end (frees its context). */
void s3_xml_init(void);
void s3_xml_thread_end(void);

/* ListObjectsV2 result (<ListBucketResult>). Handles EncodingType=url (keys then percent-decoded). */
enum s3_err s3_xml_parse_list_v2(const char *body, size_t len, struct s3_list_page *out);
/* ListObjectVersions result (<ListVersionsResult>): Version and DeleteMarker entries in document order. */
enum s3_err s3_xml_parse_list_versions(const char *body, size_t len, struct s3_list_page *out);
void s3_list_page_free(struct s3_list_page *page); /* frees contents, not the struct; NULL ok */

/* Returns S3_OK and fills out when body is an <Error> document; S3_ERR_XML otherwise. */
enum s3_err s3_xml_parse_error(const char *body, size_t len, struct s3_error_info *out);
void s3_error_info_free(struct s3_error_info *e); /* frees contents; NULL ok */

/* True when the body's root element is <Error> (S3 can answer CopyObject, UploadPartCopy and
 * CompleteMultipartUpload with 200 OK and an error body). Cheap prefix check after whitespace/XML decl. */
bool s3_xml_is_error(const char *body, size_t len);

/* <InitiateMultipartUploadResult>: malloc'd UploadId into *upload_id. */
enum s3_err s3_xml_parse_initiate(const char *body, size_t len, char **upload_id);
/* <CompleteMultipartUploadResult>: malloc'd ETag (quotes stripped). */
enum s3_err s3_xml_parse_complete(const char *body, size_t len, char **etag);
/* <CopyObjectResult> or <CopyPartResult>: malloc'd ETag (quotes stripped); last_modified may be NULL. */
enum s3_err s3_xml_parse_copy(const char *body, size_t len, char **etag, char **last_modified);
/* <Tagging> (GetObjectTagging): the tags as a query string "k1=v1&k2=v2", percent-encoded, the form the
 * x-amz-tagging header takes ("" when there are none); malloc'd. */
enum s3_err s3_xml_parse_tagging(const char *body, size_t len, char **query);

/* <VersioningConfiguration>: *status = "Enabled", "Suspended" or "" (never versioned); malloc'd. */
enum s3_err s3_xml_parse_versioning(const char *body, size_t len, char **status);

/* <ObjectLockConfiguration> (GetObjectLockConfiguration): *enabled when <ObjectLockEnabled> is "Enabled". A bucket
 * without Object Lock answers 404 ObjectLockConfigurationNotFoundError instead. The default retention (<Rule>) is
 * not read. */
enum s3_err s3_xml_parse_object_lock(const char *body, size_t len, bool *enabled);

/* One in-progress multipart upload from ListMultipartUploads. */
struct s3_upload_info {
    char *key;
    char *upload_id;
    char *initiated;
};
struct s3_upload_list {
    struct s3_upload_info *uploads;
    size_t count;
    bool is_truncated;
    char *next_key_marker;
    char *next_upload_id_marker;
};
enum s3_err s3_xml_parse_uploads(const char *body, size_t len, struct s3_upload_list *out);
void s3_upload_list_free(struct s3_upload_list *l);

/* Build the CompleteMultipartUpload request body from part ETags (quotes optional; part numbers 1..n in
 * order). Returns malloc'd NUL-terminated XML and its length, or NULL. */
char *s3_xml_build_complete(const char *const *etags, size_t nparts, size_t *len_out);
/* Build <VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>. malloc'd. */
char *s3_xml_build_versioning(const char *status, size_t *len_out);

/* Build <Retention><Mode>MODE</Mode><RetainUntilDate>UNTIL</RetainUntilDate></Retention> (PutObjectRetention;
 * mode GOVERNANCE or COMPLIANCE, until an ISO 8601 time). malloc'd, or NULL. */
char *s3_xml_build_retention(const char *mode, const char *until, size_t *len_out);

#endif
