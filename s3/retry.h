/* Retry policy: one place decides whether a failed request is worth trying again, and how long to wait. Must not:
 * do I/O (the caller passes the time and the randomness). */
#ifndef S3_RETRY_H
#define S3_RETRY_H

#include <stdbool.h>

enum s3_retry_class {
    S3_RETRY_NO = 0,      /* permanent: 4xx other than the throttling/timeout ones, integrity of a final state */
    S3_RETRY_YES,         /* transient: 500/502/503/504, InternalError, SlowDown, RequestTimeout, resets... */
    S3_RETRY_THROTTLED,   /* transient and the server asked us to slow down (503 SlowDown, 429, TooManyRequests) */
};

/* Classify one attempt. http_status 0 when no response was received; s3_code is the <Code> of an error body
 * (may be NULL, also for a 200-with-<Error> body where http_status is 200); curl_code is a CURLcode (0 if the
 * transfer itself succeeded). */
enum s3_retry_class s3_retry_classify(long http_status, const char *s3_code, int curl_code);

struct s3_retry_policy {
    int max_attempts;      /* total tries including the first; default 10 */
    double base_delay;     /* seconds; default 0.1 */
    double max_delay;      /* seconds; default 20 */
};
void s3_retry_policy_default(struct s3_retry_policy *p);

/* Delay in seconds before attempt number `attempt` (1 = first retry): full jitter over
 * min(max_delay, base_delay * 2^(attempt-1)), throttled responses use 4x the base. A Retry-After value
 * (seconds, >= 0; pass a negative number when absent) is honoured as a lower bound, capped at 5*max_delay.
 * rnd is a uniform random number in [0,1) supplied by the caller (tests pass fixed values). */
double s3_retry_delay(const struct s3_retry_policy *p, int attempt, enum s3_retry_class cls,
                      double retry_after, double rnd);

/* Parse a Retry-After header value (delta-seconds or an HTTP-date relative to now_epoch). -1 if unusable. */
double s3_retry_after_parse(const char *value, double now_epoch);

/* Clock skew: S3 (and RGW) refuse a request whose signed date is more than S3_SKEW_ALLOWED seconds off their
 * clock with 403 RequestTimeTooSkewed, and a fresh date from the same clock fails again. The client then
 * signs with the server's time: this host's clock plus a correction in whole seconds, learnt from such a
 * refusal only (its <ServerTime>, else its Date header), never from ordinary replies. */
#define S3_SKEW_ALLOWED 900          /* S3's window each way */
#define S3_SKEW_MIN_CHANGE 60        /* a refusal whose server time is this close to ours: a late request */
#define S3_SKEW_MAX (7L * 24 * 3600) /* a larger correction is not believed: the clock must be set */

/* The server's time in a skew refusal, seconds since the epoch: <ServerTime> of the error body (ISO 8601 UTC,
 * "2026-03-01T10:00:00Z", fraction allowed; AWS sends it) when given and valid, else the Date header
 * (HTTP-date). Either may be NULL. false when neither parses. */
bool s3_skew_server_time(const char *server_time, const char *date, double *out);

enum s3_skew {
    S3_SKEW_NO,     /* not a skew refusal, or one the server's time does not explain: retried as classified */
    S3_SKEW_RESIGN, /* the correction changed since this attempt was signed: sign again, send at once */
    S3_SKEW_CORRECT, /* a new correction (*correction): keep it, sign again, send at once */
};
/* Decides about one failed reply. s3_code is the error body's <Code>, NULL when there was none (a HEAD's 403
 * has no body: then a Date more than S3_SKEW_ALLOWED off our corrected clock is what says it was the clock).
 * now: this host's clock, uncorrected; signed_with: the correction this attempt was signed with; current: the
 * client's correction now. A new correction is |server - now| <= S3_SKEW_MAX and differs from current by more
 * than S3_SKEW_MIN_CHANGE. */
enum s3_skew s3_skew_decide(long http_status, const char *s3_code, const char *server_time, const char *date,
                            double now, long signed_with, long current, long *correction);

/* Adaptive concurrency per endpoint (AIMD, as TCP's congestion window): the limit starts at the ceiling (--jobs),
 * halves when the server says slow down (503 / SlowDown / 429), at most once per S3_AIMD_WINDOW seconds, so
 * one burst of throttled replies to the requests in flight counts once, and grows back by one for each `limit`
 * successes. Pure: the caller passes the time. */
#define S3_AIMD_WINDOW 1.0
struct s3_aimd {
    int ceiling;          /* 0: not adaptive (the limit is the caller's) */
    double limit;
    double lowest;
    double last_cut;      /* time of the last decrease */
    bool cut_once;
    unsigned long throttled; /* throttled replies seen */
    unsigned long cuts;      /* decreases made */
};
void s3_aimd_init(struct s3_aimd *a, int ceiling);
void s3_aimd_throttled(struct s3_aimd *a, double now);
void s3_aimd_success(struct s3_aimd *a);
/* The number of requests (or jobs) to keep in flight: 1..ceiling; INT_MAX when not adaptive. */
int s3_aimd_limit(const struct s3_aimd *a);

#endif
