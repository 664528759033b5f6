/* Unit tests for --retain (replicator/retain.c): the DURATION grammar, the retain-until date, the two Object Lock
 * headers; and the XML of Object Lock (s3/xml.c): GetObjectLockConfiguration replies, the PutObjectRetention body. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "replicator/retain.h"
#include "s3/xml.h"

static void test_durations(void **state)
{
    (void)state;
    assert_true(retain_parse_duration("30d") == 30 * 86400.0);
    assert_true(retain_parse_duration("12h") == 12 * 3600.0);
    assert_true(retain_parse_duration("90m") == 90 * 60.0);
    assert_true(retain_parse_duration("2w") == 14 * 86400.0);
    assert_true(retain_parse_duration("1y") == 365 * 86400.0); /* a year is 365 days, as S3's Years rule */
    assert_true(retain_parse_duration("3600s") == 3600.0);
    assert_true(retain_parse_duration("1.5d") == 1.5 * 86400.0);
    assert_true(retain_parse_duration("1m") == 60.0);     /* the shortest */
    assert_true(retain_parse_duration("100y") == 100 * 365 * 86400.0); /* the longest */
}

static void test_bad_durations(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "30",    /* no unit: days or seconds? */
        "",      "d",    "-1d", "+1d",  " 1d", "1d ", "1 d", "1dd", "1D", "1e3d", "0x10d", "infd", "nand",
        "59s",   /* shorter than a minute: would end before a slow write lands */
        "0.5m",  "0d",   "101y", "5300w", "1.d.", "1..5d", "30days", "1mo",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v = retain_parse_duration(bad[i]);
        if (v != -1) fail_msg("\"%s\" parsed as %g seconds", bad[i], v);
    }
    assert_true(retain_parse_duration(NULL) == -1);
}

static void test_until(void **state)
{
    (void)state;
    char out[RETAIN_UNTIL_LEN];
    assert_int_equal(retain_until(0, 86400, out), 0);
    assert_string_equal(out, "1970-01-02T00:00:00Z");
    assert_int_equal(retain_until(1796184000.0, 30 * 86400.0, out), 0); /* 2026-12-02T04:00:00Z + 30 days */
    assert_string_equal(out, "2027-01-01T04:00:00Z");
    /* rounded up: never shorter than asked */
    assert_int_equal(retain_until(1796184000.25, 60, out), 0);
    assert_string_equal(out, "2026-12-02T04:01:01Z");
    assert_int_equal(retain_until(1796184000.0, 365 * 86400.0, out), 0); /* 2027 is no leap year */
    assert_string_equal(out, "2027-12-02T04:00:00Z");
    /* out of range: an empty date (the server refuses the write) */
    assert_int_equal(retain_until(253402300799.0, 60, out), -1);
    assert_string_equal(out, "");
}

static void test_headers(void **state)
{
    (void)state;
    struct rep_options o;
    memset(&o, 0, sizeof o);
    struct s3_header h[2];
    char until[RETAIN_UNTIL_LEN];
    assert_int_equal(retain_headers(&o, h, until), 0); /* no --retain: nothing */
    o.retain = 86400;
    time_t before = time(NULL);
    assert_int_equal(retain_headers(&o, h, until), 2);
    assert_string_equal(h[0].name, "x-amz-object-lock-mode");
    assert_string_equal(h[0].value, "GOVERNANCE");
    assert_string_equal(h[1].name, "x-amz-object-lock-retain-until-date");
    assert_ptr_equal(h[1].value, until);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(until, "%Y-%m-%dT%H:%M:%SZ", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '\0');
    time_t t = timegm(&tm);
    assert_true(t >= before + 86400 && t <= time(NULL) + 86401);
    o.retain_compliance = true;
    assert_int_equal(retain_headers(&o, h, until), 2);
    assert_string_equal(h[0].value, "COMPLIANCE");
    assert_string_equal(retain_mode(&o), "COMPLIANCE");
}

/* The options: --retain-mode needs --retain, a restore refuses --retain, bad values are usage errors. */
static int parse(struct rep_options *o, int n, char **argv)
{
    int rc = cli_parse(n, argv, o);
    return rc;
}

static void test_cli(void **state)
{
    (void)state;
    struct rep_options o;
    char *ok[] = {"replicate", "--retain", "2w", "--retain-mode", "compliance", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 7, ok), 0);
    assert_true(o.retain == 14 * 86400.0 && o.retain_compliance);
    cli_options_free(&o);
    char *def[] = {"replicate", "--retain", "30d", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 5, def), 0);
    assert_true(o.retain == 30 * 86400.0 && !o.retain_compliance);
    cli_options_free(&o);
    char *bad_value[] = {"replicate", "--retain", "30", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 5, bad_value), EXIT_USAGE);
    cli_options_free(&o);
    char *bad_mode[] = {"replicate", "--retain", "1d", "--retain-mode", "legal-hold", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 7, bad_mode), EXIT_USAGE);
    cli_options_free(&o);
    char *mode_alone[] = {"replicate", "--retain-mode", "governance", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 5, mode_alone), EXIT_USAGE);
    cli_options_free(&o);
    char *restore[] = {"replicate", "--restore", "--retain", "1d", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 6, restore), EXIT_USAGE);
    cli_options_free(&o);
    char *verify[] = {"replicate", "--verify", "--retain", "1d", "s3://a", "s3://b"};
    assert_int_equal(parse(&o, 6, verify), EXIT_USAGE);
    cli_options_free(&o);
}

static void test_xml(void **state)
{
    (void)state;
    bool on = true;
    static const char enabled[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ObjectLockConfiguration "
                                  "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ObjectLockEnabled>Enabled"
                                  "</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1"
                                  "</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
    assert_int_equal(s3_xml_parse_object_lock(enabled, sizeof enabled - 1, &on), S3_OK);
    assert_true(on);
    static const char none[] = "<ObjectLockConfiguration/>";
    assert_int_equal(s3_xml_parse_object_lock(none, sizeof none - 1, &on), S3_OK);
    assert_false(on);
    static const char other[] = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    assert_int_not_equal(s3_xml_parse_object_lock(other, sizeof other - 1, &on), S3_OK);
    assert_false(on);
    assert_int_not_equal(s3_xml_parse_object_lock("<ObjectLockConfiguration>", 25, &on), S3_OK);

    size_t len = 0;
    char *body = s3_xml_build_retention("COMPLIANCE", "2027-01-01T04:00:00Z", &len);
    assert_non_null(body);
    assert_string_equal(body, "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>COMPLIANCE</Mode>"
                              "<RetainUntilDate>2027-01-01T04:00:00Z</RetainUntilDate></Retention>");
    assert_int_equal(len, strlen(body));
    free(body);
    assert_null(s3_xml_build_retention("LEGAL", "2027-01-01T04:00:00Z", &len));
    assert_null(s3_xml_build_retention("GOVERNANCE", NULL, &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations), cmocka_unit_test(test_bad_durations), cmocka_unit_test(test_until),
        cmocka_unit_test(test_headers),   cmocka_unit_test(test_cli),           cmocka_unit_test(test_xml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
