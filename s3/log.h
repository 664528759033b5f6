/* Logging for the S3 layer and the replicator. One sink, set by the program; messages never carry secrets
 * (callers log method, bucket, key, status and S3 code — never headers, signatures or query strings). */
#ifndef S3_LOG_H
#define S3_LOG_H

enum s3_log_level { S3_LOG_ERROR = 0, S3_LOG_WARN, S3_LOG_INFO, S3_LOG_DEBUG, S3_LOG_TRACE };

typedef void (*s3_log_sink)(enum s3_log_level level, const char *msg, void *ud);

/* Messages above `level` are dropped before formatting. Default: WARN to stderr. */
void s3_log_set(enum s3_log_level level, s3_log_sink sink, void *ud);
int s3_log_enabled(enum s3_log_level level);
void s3_log(enum s3_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Replace every credential-looking substring (Signature=..., Credential=..., X-Amz-Security-Token=...,
 * X-Amz-Signature=..., secret values registered with s3_log_add_secret) in s by "[redacted]", in place. */
void s3_log_redact(char *s);
/* Registers a secret string (secret key, session token) that must never appear in any log line. */
void s3_log_add_secret(const char *secret);

#endif
