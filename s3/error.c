/* The string table of enum s3_err (s3/error.h). Must not: decide anything (which failures are retried is
 * s3/retry.c). */
#include "s3/error.h"

const char *s3_err_str(enum s3_err err)
{
    switch (err) {
    case S3_OK: return "ok";
    case S3_ERR_NOMEM: return "out of memory";
    case S3_ERR_INVALID: return "invalid argument";
    case S3_ERR_TOO_LARGE: return "response too large";
    case S3_ERR_XML: return "malformed XML from server";
    case S3_ERR_HTTP: return "server returned an error";
    case S3_ERR_TRANSPORT: return "network error";
    case S3_ERR_READ_ONLY: return "write refused on a read-only source handle";
    case S3_ERR_INTEGRITY: return "content hash mismatch";
    case S3_ERR_IO: return "local I/O error";
    case S3_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}
