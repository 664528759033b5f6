/* Logging for the S3 layer and the replicator. One sink, set by the program; messages never carry secrets
 * (callers log method, bucket, key, status and S3 code — never headers, signatures or query strings).
 * Two formats on stderr: human lines ("replicate: warn: ...") or one JSON object per line (--log-format json:
 * time, level, event, message, key, and the event's fields). */
#ifndef S3_LOG_H
#define S3_LOG_H

#include <stddef.h>

enum s3_log_level { S3_LOG_ERROR = 0, S3_LOG_WARN, S3_LOG_INFO, S3_LOG_DEBUG, S3_LOG_TRACE };
enum s3_log_format { S3_LOG_FORMAT_HUMAN = 0, S3_LOG_FORMAT_JSON };

typedef void (*s3_log_sink)(enum s3_log_level level, const char *msg, void *ud);

/* Messages above `level` are dropped before formatting. Default: WARN to stderr. */
void s3_log_set(enum s3_log_level level, s3_log_sink sink, void *ud);
void s3_log_set_format(enum s3_log_format format);
enum s3_log_format s3_log_get_format(void);
int s3_log_enabled(enum s3_log_level level);
void s3_log(enum s3_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A message for the user (an error, a refusal, a warning): printed whatever the level, as the program's own
 * output always was: "replicate: MSG" ("replicate: warning: MSG" for S3_LOG_WARN). Lines after the first
 * (indented) say what to do. */
void s3_log_user(enum s3_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One structured field of an event: a string (str set) or a number. */
struct s3_log_field {
    const char *name;
    const char *str;
    double num;
};
/* An event (a short name such as "retry" or "copy_failed"), the object key it is about (or NULL) and fields;
 * dropped above the level like s3_log. In the human format only the message is printed. */
void s3_log_event(enum s3_log_level level, const char *event, const char *key, const struct s3_log_field *fields,
                  size_t nfields, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same with a formatted message; always: print whatever the level (as s3_log_user does). */
void s3_log_emit(enum s3_log_level level, int always, const char *event, const char *key,
                 const struct s3_log_field *fields, size_t nfields, const char *msg);

/* The first ERROR-level message of the process (redacted; its first line only), or NULL: the reason a run
 * failed, for summaries and notifications. s3_log_first_error_detail gives the lines after it (what to do),
 * or NULL. */
const char *s3_log_first_error(void);
const char *s3_log_first_error_detail(void);

/* Replace every credential-looking substring (Signature=..., Credential=..., X-Amz-Security-Token=...,
 * X-Amz-Signature=..., secret values registered with s3_log_add_secret) in s by "[redacted]", in place. */
void s3_log_redact(char *s);
/* Registers a secret string (secret key, session token) that must never appear in any log line. */
void s3_log_add_secret(const char *secret);

#endif
