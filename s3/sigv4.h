/* AWS Signature Version 4 for S3 requests, and S3's URI encoding rules. Pure functions: no I/O, no clock.
 * Must not: log (keys are secrets). */
#ifndef S3_SIGV4_H
#define S3_SIGV4_H

#include <stddef.h>

struct s3_credentials {
    char *access_key;
    char *secret_key;    /* never printed */
    char *session_token; /* NULL if none; never printed */
};

struct s3_header {
    const char *name;
    const char *value;
};

struct sigv4_request {
    const char *method;          /* "GET", "PUT", ... */
    const char *canonical_uri;   /* already encoded path, e.g. "/bucket/my%20key" (see s3_uri_encode_path) */
    const char *canonical_query; /* already canonical query (see sigv4_canonical_query), "" when none */
    const struct s3_header *headers; /* the headers to sign: must include host and x-amz-date; any name case */
    size_t nheaders;
    const char *payload_hash;    /* lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
};

/* Percent-encode per SigV4 (RFC 3986 unreserved A-Za-z0-9-._~ kept, everything else %XX uppercase).
 * keep_slash: keep '/' as is (object key paths) or encode it (query values).
 * Returns a malloc'd string the caller frees, or NULL on allocation failure. */
char *s3_uri_encode(const char *s, size_t len, int keep_slash);

/* "/" + bucket + "/" + key for path-style, or "/" + key for virtual-hosted (bucket NULL); the key is
 * encoded once with '/' kept, so "a//b/" stays "a//b/". key may be NULL or "" (bucket-level request).
 * Returns malloc'd string or NULL. */
char *s3_uri_encode_path(const char *bucket, const char *key);

struct s3_query_param {
    const char *name;
    const char *value; /* NULL or "" both give "name=" */
};

/* Canonical query string: each name and value encoded (slash encoded), sorted by encoded name then value,
 * joined "n=v&n=v". The same string is used on the wire. Returns malloc'd string ("" if n == 0) or NULL. */
char *sigv4_canonical_query(const struct s3_query_param *params, size_t n);

/* The canonical request text (for tests and --verbose debugging; it contains no secret).
 * Header names lowercased, values trimmed with inner runs of spaces collapsed, sorted by name, duplicate
 * names joined with ','. Returns malloc'd string or NULL. */
char *sigv4_canonical_request(const struct sigv4_request *req);

/* String to sign for amz_date "YYYYMMDDTHHMMSSZ", region and service ("s3"). Returns malloc'd or NULL. */
char *sigv4_string_to_sign(const struct sigv4_request *req, const char *amz_date, const char *region,
                           const char *service);

/* Full Authorization header value:
 * "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=a;b, Signature=hex".
 * Returns malloc'd string or NULL. */
char *sigv4_authorization(const struct sigv4_request *req, const struct s3_credentials *creds,
                          const char *amz_date, const char *region, const char *service);

/* Lowercase hex SHA-256 of data into out[65]. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Hex SHA-256 of the empty string. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#endif
