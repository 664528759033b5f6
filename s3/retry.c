/* Retry policy: which failures are transient (HTTP status, S3 <Code>, curl error), how long to back off
 * (capped exponential backoff with full jitter, Retry-After as a lower bound), and when a refusal says our
 * clock is off and by how much. Pure functions: no clock (the caller passes the time). Must not: sleep, read the
 * clock or draw random numbers itself. */
#include "s3/retry.h"

#include <ctype.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

/* S3 error codes that mean "slow down": back off harder. The non-S3 spellings come from other AWS services
 * and S3-compatible servers that reuse them. */
static const char *const throttle_codes[] = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
};

/* Transient server-side conditions. RequestTimeTooSkewed is retried because the request is re-signed with a
 * fresh date on the next attempt (after a clock correction, s3_skew_decide, when our clock is off);
 * IncompleteBody and BadDigest mean the body was cut or damaged in transit, which a bounded number of resends
 * can fix. */
static const char *const transient_codes[] = {
    "InternalError",        "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException",
    "RequestTimeTooSkewed", "IncompleteBody",     "BadDigest",
};

static bool code_in(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0) return true;
    return false;
}

static bool curl_code_transient(int curl_code)
{
    switch (curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST: /* DNS blips */
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: /* includes our low-speed stall detection */
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: /* connection reset */
    case CURLE_SEND_FAIL_REWIND: /* a reused connection died and a streamed body cannot be sent again: the
                                  * caller runs the request again from the start */
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static enum s3_retry_class classify_response(long http_status, const char *s3_code)
{
    /* A known code decides, whatever the status: S3 can send an <Error> inside a 200 (CopyObject,
     * CompleteMultipartUpload), and a 400 RequestTimeout is transient. */
    if (s3_code && *s3_code) {
        if (code_in(s3_code, throttle_codes, sizeof throttle_codes / sizeof *throttle_codes))
            return S3_RETRY_THROTTLED;
        if (code_in(s3_code, transient_codes, sizeof transient_codes / sizeof *transient_codes))
            return S3_RETRY_YES;
    }
    switch (http_status) {
    case 429:
        return S3_RETRY_THROTTLED;
    case 408:
    case 500:
    case 502:
    case 503: /* without a SlowDown code (e.g. a HEAD, which has no body): plain transient */
    case 504:
        return S3_RETRY_YES;
    default:
        return S3_RETRY_NO;
    }
}

enum s3_retry_class s3_retry_classify(long http_status, const char *s3_code, int curl_code)
{
    if (curl_code != CURLE_OK) {
        /* Cancellation (CURLE_ABORTED_BY_CALLBACK), TLS verification failures, local errors: never retried,
         * even if a status line had already arrived. */
        if (!curl_code_transient(curl_code)) return S3_RETRY_NO;
        /* The connection broke; if what did arrive said "slow down", honour that. */
        return classify_response(http_status, s3_code) == S3_RETRY_THROTTLED ? S3_RETRY_THROTTLED
                                                                             : S3_RETRY_YES;
    }
    return classify_response(http_status, s3_code);
}

void s3_retry_policy_default(struct s3_retry_policy *p)
{
    if (!p) return;
    p->max_attempts = 10;
    p->base_delay = 0.1;
    p->max_delay = 20.0;
}

/* A non-negative finite value, or 0. */
static double nonneg(double v)
{
    return (isfinite(v) && v > 0) ? v : 0.0;
}

double s3_retry_delay(const struct s3_retry_policy *p, int attempt, enum s3_retry_class cls,
                      double retry_after, double rnd)
{
    struct s3_retry_policy def;
    if (!p) {
        s3_retry_policy_default(&def);
        p = &def;
    }
    double base = nonneg(p->base_delay);
    double max_delay = nonneg(p->max_delay);
    if (cls == S3_RETRY_THROTTLED) base *= 4.0;

    /* 2^(attempt-1) with the exponent clamped: past 2^62 the cap has long been reached anyway. */
    if (attempt < 1) attempt = 1;
    int exp = attempt - 1 > 62 ? 62 : attempt - 1;
    double cap = ldexp(base, exp);
    if (cap > max_delay) cap = max_delay;

    if (!(rnd >= 0.0)) rnd = 0.0; /* also NaN */
    if (rnd >= 1.0) rnd = nextafter(1.0, 0.0);
    double delay = rnd * cap;

    /* The server's Retry-After is a floor, but a server must not park us for hours. */
    if (isfinite(retry_after) && retry_after >= 0) {
        double floor_s = retry_after;
        if (floor_s > 5.0 * max_delay) floor_s = 5.0 * max_delay;
        if (delay < floor_s) delay = floor_s;
    }
    return delay;
}

/* tm as seconds since the epoch (UTC). strptime accepts "31 Feb"; timegm would silently roll it into March.
 * Insist on a real date. */
static bool utc_time(const struct tm *tm_in, time_t *out)
{
    struct tm tm = *tm_in, check = tm;
    time_t t = timegm(&check);
    if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon || check.tm_year != tm.tm_year ||
        check.tm_hour != tm.tm_hour || check.tm_min != tm.tm_min || check.tm_sec != tm.tm_sec)
        return false;
    *out = t;
    return true;
}

/* strptime in the "C" locale whatever the program's locale is (day and month names are English in HTTP).
 * The whole of s must match one of the formats; the rest (after a match) is returned in *rest when rest is
 * not NULL, else it must be empty. */
static bool parse_c_time(const char *s, const char *const *formats, size_t nformats, struct tm *tm,
                         const char **rest)
{
    locale_t c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_loc == (locale_t)0) return false;
    locale_t old = uselocale(c_loc);
    bool ok = false;
    for (size_t i = 0; i < nformats && !ok; i++) {
        memset(tm, 0, sizeof *tm);
        const char *end = strptime(s, formats[i], tm);
        ok = end && (rest ? true : *end == '\0');
        if (ok && rest) *rest = end;
    }
    uselocale(old);
    freelocale(c_loc);
    return ok;
}

static bool parse_http_date(const char *s, time_t *out)
{
    /* IMF-fixdate first; RFC 9110 also asks recipients to accept the obsolete RFC 850 and asctime forms. */
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };
    struct tm tm;
    return parse_c_time(s, formats, sizeof formats / sizeof *formats, &tm, NULL) && utc_time(&tm, out);
}

/* "2026-03-01T10:00:00Z", "2026-03-01T10:00:00.123Z": UTC only (S3 sends nothing else). */
static bool parse_iso8601_utc(const char *s, time_t *out)
{
    static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S"};
    struct tm tm;
    const char *rest = NULL;
    if (!isdigit((unsigned char)s[0]) || !parse_c_time(s, formats, 1, &tm, &rest)) return false;
    if (*rest == '.') {
        rest++;
        size_t n = strspn(rest, "0123456789");
        if (n == 0) return false;
        rest += n;
    }
    return strcmp(rest, "Z") == 0 && utc_time(&tm, out);
}

/* value without surrounding blanks into buf (at most n-1 bytes); false when empty or too long. */
static bool trimmed(const char *value, char *buf, size_t n)
{
    if (!value) return false;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                       value[len - 1] == '\n'))
        len--;
    if (len == 0 || len >= n) return false;
    memcpy(buf, value, len);
    buf[len] = '\0';
    return true;
}

double s3_retry_after_parse(const char *value, double now_epoch)
{
    char buf[65];
    if (!trimmed(value, buf, sizeof buf)) return -1;
    size_t len = strlen(buf);

    /* delta-seconds = 1*DIGIT: no sign, no fraction. */
    size_t ndigits = strspn(buf, "0123456789");
    if (ndigits == len) return strtod(buf, NULL);
    if (isdigit((unsigned char)buf[0])) return -1; /* "12abc", "1.5" */

    time_t when;
    if (!isfinite(now_epoch) || !parse_http_date(buf, &when)) return -1;
    double delta = (double)when - now_epoch;
    return delta > 0 ? delta : 0.0; /* a date in the past: retry now */
}

bool s3_skew_server_time(const char *server_time, const char *date, double *out)
{
    char buf[65];
    time_t t;
    if ((trimmed(server_time, buf, sizeof buf) && parse_iso8601_utc(buf, &t)) ||
        (trimmed(date, buf, sizeof buf) && parse_http_date(buf, &t))) {
        *out = (double)t;
        return true;
    }
    return false;
}

enum s3_skew s3_skew_decide(long http_status, const char *s3_code, const char *server_time, const char *date,
                            double now, long signed_with, long current, long *correction)
{
    bool coded = s3_code && strcmp(s3_code, "RequestTimeTooSkewed") == 0;
    if (!coded && !(http_status == 403 && !s3_code)) return S3_SKEW_NO;
    double server;
    if (coded && signed_with != current) return S3_SKEW_RESIGN; /* another request corrected the clock */
    if (!isfinite(now) || !s3_skew_server_time(server_time, date, &server)) return S3_SKEW_NO;
    double off = server - now;
    if (!coded) {
        /* a bare 403 (HEAD): the clock only if the server's time is out of S3's window from what we signed */
        if (fabs(off - (double)signed_with) <= S3_SKEW_ALLOWED) return S3_SKEW_NO;
        if (signed_with != current) return S3_SKEW_RESIGN;
    }
    if (fabs(off) > (double)S3_SKEW_MAX || fabs(off - (double)current) <= S3_SKEW_MIN_CHANGE)
        return S3_SKEW_NO;
    *correction = lround(off);
    return S3_SKEW_CORRECT;
}

void s3_aimd_init(struct s3_aimd *a, int ceiling)
{
    memset(a, 0, sizeof *a);
    a->ceiling = ceiling > 0 ? ceiling : 0;
    a->limit = a->lowest = a->ceiling;
}

void s3_aimd_throttled(struct s3_aimd *a, double now)
{
    if (!a->ceiling) return;
    a->throttled++;
    if (a->cut_once && now - a->last_cut < S3_AIMD_WINDOW) return; /* the same burst */
    a->limit /= 2;
    if (a->limit < 1) a->limit = 1;
    if (a->limit < a->lowest) a->lowest = a->limit;
    a->last_cut = now;
    a->cut_once = true;
    a->cuts++;
}

void s3_aimd_success(struct s3_aimd *a)
{
    if (!a->ceiling || a->limit >= a->ceiling) return;
    a->limit += 1.0 / a->limit;
    if (a->limit > a->ceiling) a->limit = a->ceiling;
}

int s3_aimd_limit(const struct s3_aimd *a)
{
    if (!a->ceiling) return INT_MAX;
    int n = (int)a->limit;
    return n < 1 ? 1 : n > a->ceiling ? a->ceiling : n;
}
