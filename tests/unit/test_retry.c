/* Unit tests for s3/retry.c: classification of statuses, S3 codes and curl errors; backoff bounds;
 * Retry-After parsing; clock skew (the server's time from a refusal, and what to do about it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>

#include <curl/curl.h>

#include "s3/retry.h"

#define DATE_2015 1445412480.0 /* Wed, 21 Oct 2015 07:28:00 GMT */

static void test_status_retryable(void **state)
{
    (void)state;
    static const long yes[] = {500, 502, 503, 504, 408};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        assert_int_equal(s3_retry_classify(yes[i], NULL, 0), S3_RETRY_YES);
        assert_int_equal(s3_retry_classify(yes[i], "", 0), S3_RETRY_YES);
    }
    assert_int_equal(s3_retry_classify(429, NULL, 0), S3_RETRY_THROTTLED);
}

static void test_status_permanent(void **state)
{
    (void)state;
    static const long no[] = {0,   200, 204, 206, 301, 304, 400, 401, 403,
                              404, 405, 409, 411, 412, 416, 501, 505};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        assert_int_equal(s3_retry_classify(no[i], NULL, 0), S3_RETRY_NO);
    }
}

static void test_codes_transient(void **state)
{
    (void)state;
    assert_int_equal(s3_retry_classify(500, "InternalError", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(503, "ServiceUnavailable", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(400, "RequestTimeout", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(403, "RequestTimeTooSkewed", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(400, "IncompleteBody", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(400, "BadDigest", 0), S3_RETRY_YES);
}

static void test_codes_throttled(void **state)
{
    (void)state;
    assert_int_equal(s3_retry_classify(503, "SlowDown", 0), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(400, "Throttling", 0), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(400, "ThrottlingException", 0), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(429, "TooManyRequests", 0), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(503, "RequestLimitExceeded", 0), S3_RETRY_THROTTLED);
}

static void test_codes_permanent(void **state)
{
    (void)state;
    assert_int_equal(s3_retry_classify(403, "AccessDenied", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(403, "SignatureDoesNotMatch", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(403, "InvalidAccessKeyId", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(400, "ExpiredToken", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(400, "InvalidArgument", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(404, "NoSuchKey", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(404, "NoSuchBucket", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(409, "BucketAlreadyOwnedByYou", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(412, "PreconditionFailed", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(416, "InvalidRange", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(501, "NotImplemented", 0), S3_RETRY_NO);
    /* codes are case-sensitive, as S3 sends them */
    assert_int_equal(s3_retry_classify(400, "slowdown", 0), S3_RETRY_NO);
}

static void test_unknown_code_falls_back_to_status(void **state)
{
    (void)state;
    assert_int_equal(s3_retry_classify(500, "SomethingNew", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(503, "SomethingNew", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(400, "SomethingNew", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(200, "SomethingNew", 0), S3_RETRY_NO);
}

/* CopyObject / CompleteMultipartUpload can answer 200 with an <Error> body. */
static void test_200_with_error_body(void **state)
{
    (void)state;
    assert_int_equal(s3_retry_classify(200, "InternalError", 0), S3_RETRY_YES);
    assert_int_equal(s3_retry_classify(200, "SlowDown", 0), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(200, "AccessDenied", 0), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(200, NULL, 0), S3_RETRY_NO);
}

static void test_curl_transient(void **state)
{
    (void)state;
    static const int yes[] = {
        CURLE_COULDNT_CONNECT,   CURLE_OPERATION_TIMEDOUT,   CURLE_SEND_ERROR, CURLE_RECV_ERROR,
        CURLE_GOT_NOTHING,       CURLE_PARTIAL_FILE,         CURLE_HTTP2,      CURLE_HTTP2_STREAM,
        CURLE_SSL_CONNECT_ERROR, CURLE_COULDNT_RESOLVE_HOST, CURLE_SEND_FAIL_REWIND,
    };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        assert_int_equal(s3_retry_classify(0, NULL, yes[i]), S3_RETRY_YES);
        /* a reset after a 200 status line (body cut) */
        assert_int_equal(s3_retry_classify(200, NULL, yes[i]), S3_RETRY_YES);
    }
    /* the connection broke while reading a SlowDown answer: still throttled */
    assert_int_equal(s3_retry_classify(503, "SlowDown", CURLE_RECV_ERROR), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(429, NULL, CURLE_PARTIAL_FILE), S3_RETRY_THROTTLED);
    assert_int_equal(s3_retry_classify(403, "AccessDenied", CURLE_RECV_ERROR), S3_RETRY_YES);
}

static void test_curl_permanent(void **state)
{
    (void)state;
    static const int no[] = {
        CURLE_ABORTED_BY_CALLBACK, CURLE_PEER_FAILED_VERIFICATION,
        CURLE_URL_MALFORMAT,       CURLE_UNSUPPORTED_PROTOCOL,
        CURLE_WRITE_ERROR,         CURLE_READ_ERROR,
        CURLE_OUT_OF_MEMORY,       CURLE_SSL_CACERT_BADFILE,
        CURLE_LOGIN_DENIED,
    };
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        assert_int_equal(s3_retry_classify(0, NULL, no[i]), S3_RETRY_NO);
    }
    /* cancellation wins over whatever the server said */
    assert_int_equal(s3_retry_classify(503, "SlowDown", CURLE_ABORTED_BY_CALLBACK), S3_RETRY_NO);
    assert_int_equal(s3_retry_classify(500, NULL, CURLE_ABORTED_BY_CALLBACK), S3_RETRY_NO);
}

static void test_policy_default(void **state)
{
    (void)state;
    struct s3_retry_policy p = {0};
    s3_retry_policy_default(&p);
    assert_int_equal(p.max_attempts, 10);
    assert_true(fabs(p.base_delay - 0.1) < 1e-12);
    assert_true(fabs(p.max_delay - 20.0) < 1e-12);
    s3_retry_policy_default(NULL); /* no crash */
}

static void check_backoff_bounds(enum s3_retry_class cls, double base)
{
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    double prev_hi = 0;
    for (int attempt = 1; attempt <= 20; attempt++) {
        double cap = base * pow(2.0, attempt - 1);
        if (cap > p.max_delay) cap = p.max_delay;
        double lo = s3_retry_delay(&p, attempt, cls, -1, 0.0);
        double hi = s3_retry_delay(&p, attempt, cls, -1, 0.999);
        assert_true(lo == 0.0);
        assert_true(hi >= 0.0 && hi < cap);
        assert_true(fabs(hi - 0.999 * cap) < 1e-9);
        assert_true(hi <= p.max_delay);
        assert_true(hi >= prev_hi); /* the window never shrinks */
        prev_hi = hi;
    }
    /* long past the cap: exactly the cap window */
    assert_true(fabs(prev_hi - 0.999 * p.max_delay) < 1e-9);
}

static void test_backoff_bounds_normal(void **state)
{
    (void)state;
    check_backoff_bounds(S3_RETRY_YES, 0.1);
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    /* attempt 1: [0, 0.1); attempt 4: [0, 0.8); attempt 9: 25.6 capped to 20 */
    assert_true(fabs(s3_retry_delay(&p, 1, S3_RETRY_YES, -1, 0.5) - 0.05) < 1e-12);
    assert_true(fabs(s3_retry_delay(&p, 4, S3_RETRY_YES, -1, 0.5) - 0.4) < 1e-12);
    assert_true(fabs(s3_retry_delay(&p, 9, S3_RETRY_YES, -1, 0.5) - 10.0) < 1e-12);
}

static void test_backoff_bounds_throttled(void **state)
{
    (void)state;
    check_backoff_bounds(S3_RETRY_THROTTLED, 0.4);
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    for (int attempt = 1; attempt <= 20; attempt++) {
        double n = s3_retry_delay(&p, attempt, S3_RETRY_YES, -1, 0.999);
        double t = s3_retry_delay(&p, attempt, S3_RETRY_THROTTLED, -1, 0.999);
        assert_true(t >= n);
        if (attempt <= 6) assert_true(fabs(t - 4 * n) < 1e-9); /* before either reaches the cap */
    }
}

static void test_backoff_odd_inputs(void **state)
{
    (void)state;
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    /* attempt < 1 behaves as the first retry */
    assert_true(fabs(s3_retry_delay(&p, 0, S3_RETRY_YES, -1, 0.5) - 0.05) < 1e-12);
    assert_true(fabs(s3_retry_delay(&p, -7, S3_RETRY_YES, -1, 0.5) - 0.05) < 1e-12);
    /* huge attempts do not overflow */
    double d = s3_retry_delay(&p, INT_MAX, S3_RETRY_YES, -1, 0.5);
    assert_true(isfinite(d) && fabs(d - 10.0) < 1e-12);
    d = s3_retry_delay(&p, 5000, S3_RETRY_THROTTLED, -1, 0.999);
    assert_true(isfinite(d) && d < p.max_delay);
    /* rnd outside [0,1) is clamped into it */
    assert_true(s3_retry_delay(&p, 3, S3_RETRY_YES, -1, -0.5) == 0.0);
    assert_true(s3_retry_delay(&p, 3, S3_RETRY_YES, -1, NAN) == 0.0);
    d = s3_retry_delay(&p, 3, S3_RETRY_YES, -1, 1.0);
    assert_true(d < 0.4 && d > 0.399);
    d = s3_retry_delay(&p, 3, S3_RETRY_YES, -1, 7.0);
    assert_true(d < 0.4 && d > 0.399);
    /* NULL policy means the defaults */
    assert_true(fabs(s3_retry_delay(NULL, 4, S3_RETRY_YES, -1, 0.5) - 0.4) < 1e-12);
    /* a custom policy */
    struct s3_retry_policy c = {.max_attempts = 3, .base_delay = 1.0, .max_delay = 3.0};
    assert_true(fabs(s3_retry_delay(&c, 1, S3_RETRY_YES, -1, 0.5) - 0.5) < 1e-12);
    assert_true(fabs(s3_retry_delay(&c, 2, S3_RETRY_YES, -1, 0.5) - 1.0) < 1e-12);
    assert_true(fabs(s3_retry_delay(&c, 3, S3_RETRY_YES, -1, 0.5) - 1.5) < 1e-12);
    /* nonsense policy values do not give negative or NaN delays */
    struct s3_retry_policy bad = {.max_attempts = 1, .base_delay = -1.0, .max_delay = NAN};
    d = s3_retry_delay(&bad, 3, S3_RETRY_YES, -1, 0.5);
    assert_true(d == 0.0);
}

static void test_retry_after_honoured(void **state)
{
    (void)state;
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    /* a floor: with rnd 0 the delay is exactly Retry-After */
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_THROTTLED, 5.0, 0.0) == 5.0);
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_YES, 2.5, 0.999) == 2.5);
    /* the jittered delay wins when it is longer */
    double d = s3_retry_delay(&p, 12, S3_RETRY_YES, 1.0, 0.999);
    assert_true(fabs(d - 0.999 * 20.0) < 1e-9);
    /* 0 means "now": no effect on the jitter */
    assert_true(fabs(s3_retry_delay(&p, 4, S3_RETRY_YES, 0.0, 0.5) - 0.4) < 1e-12);
    /* absent (negative) and NaN are ignored */
    assert_true(s3_retry_delay(&p, 4, S3_RETRY_YES, -1.0, 0.0) == 0.0);
    assert_true(s3_retry_delay(&p, 4, S3_RETRY_YES, NAN, 0.0) == 0.0);
}

static void test_retry_after_capped(void **state)
{
    (void)state;
    struct s3_retry_policy p;
    s3_retry_policy_default(&p);
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_THROTTLED, 1000.0, 0.0) == 100.0);
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_THROTTLED, 100.0, 0.0) == 100.0);
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_THROTTLED, 99.0, 0.0) == 99.0);
    assert_true(s3_retry_delay(&p, 1, S3_RETRY_THROTTLED, INFINITY, 0.5) < 100.0 + 1e-9);
    struct s3_retry_policy c = {.max_attempts = 3, .base_delay = 0.5, .max_delay = 2.0};
    assert_true(s3_retry_delay(&c, 1, S3_RETRY_YES, 3600.0, 0.0) == 10.0);
}

static void test_parse_delta_seconds(void **state)
{
    (void)state;
    assert_true(s3_retry_after_parse("120", DATE_2015) == 120.0);
    assert_true(s3_retry_after_parse("0", DATE_2015) == 0.0);
    assert_true(s3_retry_after_parse("  7 \r\n", DATE_2015) == 7.0);
    assert_true(s3_retry_after_parse("007", 0) == 7.0);
    assert_true(s3_retry_after_parse("86400", 0) == 86400.0);
    assert_true(s3_retry_after_parse("99999999999999999999", 0) > 1e19);
}

static void test_parse_http_date(void **state)
{
    (void)state;
    assert_true(s3_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 - 30) == 30.0);
    assert_true(s3_retry_after_parse(" Wed, 21 Oct 2015 07:28:00 GMT ", DATE_2015 - 1.5) == 1.5);
    /* a date in the past means "retry now" */
    assert_true(s3_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 + 100) == 0.0);
    assert_true(s3_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015) == 0.0);
    /* the obsolete forms RFC 9110 asks recipients to accept */
    assert_true(s3_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0 - 10) == 10.0);
    assert_true(s3_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0 - 10) == 10.0);
    assert_true(s3_retry_after_parse("Sun Nov  6 08:49:37 1994", 784111777.0 - 10) == 10.0);
    /* leap day */
    assert_true(s3_retry_after_parse("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800.0 - 1) == 1.0);
}

static void test_parse_http_date_any_locale(void **state)
{
    (void)state;
    /* Day and month names must be read as English whatever LC_TIME says. */
    const char *locales[] = {"C.UTF-8", "de_DE.UTF-8", "fr_FR.UTF-8"};
    for (size_t i = 0; i < sizeof locales / sizeof *locales; i++) {
        if (!setlocale(LC_ALL, locales[i])) continue;
        assert_true(s3_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", DATE_2015 - 30) == 30.0);
    }
    setlocale(LC_ALL, "C");
}

static void test_parse_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "-5",
        "+5",
        "1.5",
        "12abc",
        "12 34",
        "abc",
        "0x10",
        "Wed, 21 Oct 2015 07:28:00", /* no GMT */
        "Wed, 21 Oct 2015 07:28:00 UTC",
        "Wed, 21 Oct 2015 07:28:00 GMT xx", /* trailing junk */
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:28:00 GMT",
        "Wed, 21 Oct 2015 07:61:00 GMT",
        "Mon, 30 Feb 2015 07:28:00 GMT", /* no such day */
        "Fun, 21 Oct 2015 07:28:00 GMT",
        "21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015",
        "Wed, 21 Oct 2015 07:28:00 GMT Wed, 21 Oct 2015 07:28:00 GMT Wed, 21 Oct",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v = s3_retry_after_parse(bad[i], DATE_2015);
        if (v != -1.0) fail_msg("accepted \"%s\" as %f", bad[i], v);
    }
    assert_true(s3_retry_after_parse(NULL, DATE_2015) == -1.0);
    assert_true(s3_retry_after_parse("Wed, 21 Oct 2015 07:28:00 GMT", NAN) == -1.0);
}

/* ---- clock skew ---- */

#define SERVER_2026 1796183619.0 /* 2026-12-02T03:53:39Z = Wed, 02 Dec 2026 03:53:39 GMT */

static void test_skew_server_time(void **state)
{
    (void)state;
    double t = -1;
    assert_true(s3_skew_server_time("2026-12-02T03:53:39Z", NULL, &t));
    assert_true(t == SERVER_2026);
    assert_true(s3_skew_server_time("2026-12-02T03:53:39.250Z", NULL, &t)); /* a fraction is allowed */
    assert_true(t == SERVER_2026);
    assert_true(s3_skew_server_time(NULL, "Wed, 02 Dec 2026 03:53:39 GMT", &t)); /* RGW: the Date header */
    assert_true(t == SERVER_2026);
    assert_true(s3_skew_server_time(NULL, " Wed, 02 Dec 2026 03:53:39 GMT\r\n", &t));
    assert_true(t == SERVER_2026);
    /* <ServerTime> wins over Date; a broken one falls back to Date */
    assert_true(s3_skew_server_time("2026-12-02T03:53:39Z", "Thu, 01 Jan 1970 12:52:37 GMT", &t));
    assert_true(t == SERVER_2026);
    assert_true(s3_skew_server_time("yesterday", "Wed, 02 Dec 2026 03:53:39 GMT", &t));
    assert_true(t == SERVER_2026);
    /* what cannot be read is not guessed at */
    static const char *const bad[] = {"",
                                      "2026-12-02",
                                      "2026-12-02T03:53:39",
                                      "2026-12-02T03:53:39+01:00",
                                      "2026-12-02T03:53:39.Z",
                                      "2026-02-31T00:00:00Z",
                                      "2026-12-02T25:00:00Z",
                                      "2026-12-02T03:53:39Zjunk",
                                      " ",
                                      "-2026-12-02T03:53:39Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        t = -1;
        assert_false(s3_skew_server_time(bad[i], NULL, &t));
        assert_true(t == -1);
    }
    assert_false(s3_skew_server_time(NULL, "Wed, 31 Feb 2026 03:53:39 GMT", &t));
    assert_false(s3_skew_server_time(NULL, "1796183619", &t));
    assert_false(s3_skew_server_time(NULL, NULL, &t));
}

static void test_skew_corrects_from_refusal(void **state)
{
    (void)state;
    long fix = 0;
    const char *date = "Wed, 02 Dec 2026 03:53:39 GMT";
    /* this host 40 minutes behind (RGW: no <ServerTime>, the Date header) */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, SERVER_2026 - 2400, 0, 0, &fix),
                     S3_SKEW_CORRECT);
    assert_int_equal(fix, 2400);
    /* 40 minutes ahead, AWS's <ServerTime> */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", "2026-12-02T03:53:39Z", NULL,
                                    SERVER_2026 + 2400.4, 0, 0, &fix),
                     S3_SKEW_CORRECT);
    assert_int_equal(fix, -2400);
    /* the clock stepped again after a correction (NTP set it right mid-run): corrected back */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, SERVER_2026, 2400, 2400, &fix),
                     S3_SKEW_CORRECT);
    assert_int_equal(fix, 0);
    /* the code decides, whatever the status */
    assert_int_equal(s3_skew_decide(400, "RequestTimeTooSkewed", NULL, date, SERVER_2026 - 2400, 0, 0, &fix),
                     S3_SKEW_CORRECT);
}

static void test_skew_resign_after_another_correction(void **state)
{
    (void)state;
    long fix = 12345;
    /* signed before another request corrected the clock: just sign again, no new correction, dates or not */
    assert_int_equal(
        s3_skew_decide(403, "RequestTimeTooSkewed", NULL, NULL, SERVER_2026 - 2400, 0, 2400, &fix),
        S3_SKEW_RESIGN);
    assert_int_equal(fix, 12345);
}

static void test_skew_not_explained(void **state)
{
    (void)state;
    long fix = 12345;
    const char *date = "Wed, 02 Dec 2026 03:53:39 GMT";
    /* not a skew refusal */
    assert_int_equal(s3_skew_decide(403, "AccessDenied", NULL, date, SERVER_2026 - 2400, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(403, "SignatureDoesNotMatch", NULL, date, SERVER_2026 - 2400, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(503, NULL, NULL, date, SERVER_2026 - 2400, 0, 0, &fix), S3_SKEW_NO);
    /* a refusal without a readable server time: no correction (ordinary retries, then the error) */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, NULL, SERVER_2026 - 2400, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(
        s3_skew_decide(403, "RequestTimeTooSkewed", "soon", "whenever", SERVER_2026 - 2400, 0, 0, &fix),
        S3_SKEW_NO);
    /* our clock agrees with the server's: the request was late (queued), not the clock */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, SERVER_2026 - 5, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date,
                                    SERVER_2026 - 2400 + S3_SKEW_MIN_CHANGE, 2400, 2400, &fix),
                     S3_SKEW_NO);
    /* not believed: more than S3_SKEW_MAX (a server, or a box in between, with a broken clock) */
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, "Thu, 01 Jan 1970 12:52:37 GMT",
                                    SERVER_2026, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(
        s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, SERVER_2026 - S3_SKEW_MAX - 1, 0, 0, &fix),
        S3_SKEW_NO);
    assert_int_equal(
        s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, SERVER_2026 - S3_SKEW_MAX, 0, 0, &fix),
        S3_SKEW_CORRECT);
    assert_int_equal(fix, S3_SKEW_MAX);
    fix = 12345;
    assert_int_equal(s3_skew_decide(403, "RequestTimeTooSkewed", NULL, date, NAN, 0, 0, &fix), S3_SKEW_NO);
    assert_int_equal(fix, 12345);
}

static void test_skew_bare_403(void **state)
{
    (void)state;
    long fix = 0;
    const char *date = "Wed, 02 Dec 2026 03:53:39 GMT";
    /* a HEAD's 403 has no body: its Date out of S3's window from what we signed says it was the clock */
    assert_int_equal(s3_skew_decide(403, NULL, NULL, date, SERVER_2026 - 2400, 0, 0, &fix), S3_SKEW_CORRECT);
    assert_int_equal(fix, 2400);
    assert_int_equal(s3_skew_decide(403, NULL, NULL, date, SERVER_2026 - 2400, 0, 2400, &fix),
                     S3_SKEW_RESIGN);
    /* within the window: a real AccessDenied */
    assert_int_equal(s3_skew_decide(403, NULL, NULL, date, SERVER_2026 - S3_SKEW_ALLOWED, 0, 0, &fix),
                     S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(403, NULL, NULL, date, SERVER_2026 - 2400, 2400, 2400, &fix), S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(403, NULL, NULL, NULL, SERVER_2026 - 2400, 0, 0, &fix), S3_SKEW_NO);
    /* other bodiless statuses are never the clock */
    assert_int_equal(s3_skew_decide(404, NULL, NULL, date, SERVER_2026 - 2400, 0, 0, &fix), S3_SKEW_NO);
    assert_int_equal(s3_skew_decide(400, NULL, NULL, date, SERVER_2026 - 2400, 0, 0, &fix), S3_SKEW_NO);
}

/* ---- adaptive concurrency (AIMD) ---- */

static void test_aimd_halves_once_per_burst(void **state)
{
    (void)state;
    struct s3_aimd a;
    s3_aimd_init(&a, 64);
    assert_int_equal(s3_aimd_limit(&a), 64);
    s3_aimd_throttled(&a, 100.0);
    assert_int_equal(s3_aimd_limit(&a), 32);
    /* the other replies of the same burst (within the window) do not cut again */
    for (int i = 0; i < 30; i++) s3_aimd_throttled(&a, 100.0 + i * (S3_AIMD_WINDOW / 40));
    assert_int_equal(s3_aimd_limit(&a), 32);
    s3_aimd_throttled(&a, 100.0 + S3_AIMD_WINDOW + 0.01);
    assert_int_equal(s3_aimd_limit(&a), 16);
    assert_int_equal(a.throttled, 32);
    assert_int_equal(a.cuts, 2);
    assert_int_equal((int)a.lowest, 16);
}

static void test_aimd_floor_and_growth(void **state)
{
    (void)state;
    struct s3_aimd a;
    s3_aimd_init(&a, 8);
    for (int i = 0; i < 10; i++) s3_aimd_throttled(&a, i * 2.0);
    assert_int_equal(s3_aimd_limit(&a), 1); /* never below one */
    assert_int_equal((int)a.lowest, 1);
    /* additive increase, 1/limit per success (about one more per `limit` successes): 1, 2, 2.5, 2.9, 3.24 */
    s3_aimd_success(&a);
    assert_int_equal(s3_aimd_limit(&a), 2);
    s3_aimd_success(&a);
    s3_aimd_success(&a);
    assert_int_equal(s3_aimd_limit(&a), 2);
    s3_aimd_success(&a);
    assert_int_equal(s3_aimd_limit(&a), 3);
    for (int i = 0; i < 1000; i++) s3_aimd_success(&a);
    assert_int_equal(s3_aimd_limit(&a), 8); /* capped at the ceiling */
    assert_int_equal((int)a.lowest, 1);     /* the lowest reached stays reported */
}

static void test_aimd_off(void **state)
{
    (void)state;
    struct s3_aimd a;
    s3_aimd_init(&a, 0);
    s3_aimd_throttled(&a, 1.0);
    s3_aimd_success(&a);
    assert_int_equal(s3_aimd_limit(&a), INT_MAX);
    assert_int_equal(a.throttled, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_retryable),
        cmocka_unit_test(test_status_permanent),
        cmocka_unit_test(test_codes_transient),
        cmocka_unit_test(test_codes_throttled),
        cmocka_unit_test(test_codes_permanent),
        cmocka_unit_test(test_unknown_code_falls_back_to_status),
        cmocka_unit_test(test_200_with_error_body),
        cmocka_unit_test(test_curl_transient),
        cmocka_unit_test(test_curl_permanent),
        cmocka_unit_test(test_policy_default),
        cmocka_unit_test(test_backoff_bounds_normal),
        cmocka_unit_test(test_backoff_bounds_throttled),
        cmocka_unit_test(test_backoff_odd_inputs),
        cmocka_unit_test(test_retry_after_honoured),
        cmocka_unit_test(test_retry_after_capped),
        cmocka_unit_test(test_parse_delta_seconds),
        cmocka_unit_test(test_parse_http_date),
        cmocka_unit_test(test_parse_http_date_any_locale),
        cmocka_unit_test(test_parse_garbage),
        cmocka_unit_test(test_skew_server_time),
        cmocka_unit_test(test_skew_corrects_from_refusal),
        cmocka_unit_test(test_skew_resign_after_another_correction),
        cmocka_unit_test(test_skew_not_explained),
        cmocka_unit_test(test_skew_bare_403),
        cmocka_unit_test(test_aimd_halves_once_per_burst),
        cmocka_unit_test(test_aimd_floor_and_growth),
        cmocka_unit_test(test_aimd_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
