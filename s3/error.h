/* One error enum for the whole S3 layer and replicator, with a string table (s3/error.c). Must not: classify
 * failures (s3/retry.h does). */
#ifndef S3_ERROR_H
#define S3_ERROR_H

enum s3_err {
    S3_OK = 0,
    S3_ERR_NOMEM,      /* allocation failed */
    S3_ERR_INVALID,    /* bad argument or configuration */
    S3_ERR_TOO_LARGE,  /* a response body exceeded its cap */
    S3_ERR_XML,        /* malformed or unexpected XML from the server */
    S3_ERR_HTTP,       /* the server answered with an error status (see status / S3 code) */
    S3_ERR_TRANSPORT,  /* connection, TLS, timeout or stall (curl error) */
    S3_ERR_READ_ONLY,  /* a write was attempted through a read-only (source) handle */
    S3_ERR_INTEGRITY,  /* content hash did not match */
    S3_ERR_IO,         /* local file or disk error */
    S3_ERR_CANCELLED,  /* the operation was cancelled (shutdown, signal) */
};

/* Static English text for an error value; never NULL. */
const char *s3_err_str(enum s3_err err);

#endif
