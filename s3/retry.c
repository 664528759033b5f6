/* Retry policy: which failures are transient (HTTP status, S3 <Code>, curl error) and how long to back off
 * (capped exponential backoff with full jitter, Retry-After as a lower bound). Pure functions: no clock. */
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
 * fresh date on the next attempt; IncompleteBody and BadDigest mean the body was cut or damaged in transit,
 * which a bounded number of resends can fix. */
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

/* strptime in the "C" locale whatever the program's locale is (day and month names are English in HTTP). */
static bool parse_http_date(const char *s, time_t *out)
{
    /* IMF-fixdate first; RFC 9110 also asks recipients to accept the obsolete RFC 850 and asctime forms. */
    static const char *const formats[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };
    locale_t c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c_loc == (locale_t)0) return false;
    locale_t old = uselocale(c_loc);
    bool ok = false;
    struct tm tm;
    for (size_t i = 0; i < sizeof formats / sizeof *formats && !ok; i++) {
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, formats[i], &tm);
        ok = end && *end == '\0';
    }
    uselocale(old);
    freelocale(c_loc);
    if (!ok) return false;

    /* strptime accepts "31 Feb"; timegm would silently roll it into March. Insist on a real date. */
    struct tm check = tm;
    time_t t = timegm(&check);
    if (check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon || check.tm_year != tm.tm_year ||
        check.tm_hour != tm.tm_hour || check.tm_min != tm.tm_min || check.tm_sec != tm.tm_sec)
        return false;
    *out = t;
    return true;
}

double s3_retry_after_parse(const char *value, double now_epoch)
{
    if (!value) return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                       value[len - 1] == '\n'))
        len--;
    if (len == 0 || len > 64) return -1;
    char buf[65];
    memcpy(buf, value, len);
    buf[len] = '\0';

    /* delta-seconds = 1*DIGIT: no sign, no fraction. */
    size_t ndigits = strspn(buf, "0123456789");
    if (ndigits == len) return strtod(buf, NULL);
    if (isdigit((unsigned char)buf[0])) return -1; /* "12abc", "1.5" */

    time_t when;
    if (!isfinite(now_epoch) || !parse_http_date(buf, &when)) return -1;
    double delta = (double)when - now_epoch;
    return delta > 0 ? delta : 0.0; /* a date in the past: retry now */
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
