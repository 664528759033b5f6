/* Unit tests for the pure helpers of replicator/versions.c: the key-marker that lists a key and everything after
 * it, and the listing prefix a batch of keys shares, both on UTF-8 character boundaries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "replicator/versions.h"

static void test_marker(void **state)
{
    (void)state;
    assert_int_equal(versions_marker_len("p/000123"), 7); /* "p/00012" < "p/000123" */
    assert_int_equal(versions_marker_len("a"), 0);        /* no marker: from the start */
    assert_int_equal(versions_marker_len(""), 0);
    /* a last character of several bytes goes whole: "x/" + U+00E9 (2 bytes) and U+1F600 (4 bytes) */
    assert_int_equal(versions_marker_len("x/\xc3\xa9"), 2);
    assert_int_equal(versions_marker_len("x/\xf0\x9f\x98\x80"), 2);
    assert_int_equal(versions_marker_len("\xc3\xa9"), 0);
    /* the marker is a proper prefix of the key, so the key itself sorts after it (listings start after it) */
    const char *keys[] = {"p/000123", "x/\xc3\xa9", "ab", "a/b/c/"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char m[32];
        size_t n = versions_marker_len(keys[i]);
        memcpy(m, keys[i], n);
        m[n] = '\0';
        assert_true(n < strlen(keys[i]) && strcmp(m, keys[i]) < 0);
    }
}

static void test_common_prefix(void **state)
{
    (void)state;
    assert_int_equal(versions_common_prefix("p/000100", "p/000199"), 6);
    assert_int_equal(versions_common_prefix("p/000100", "p/000100"), 8);
    assert_int_equal(versions_common_prefix("a", "b"), 0);
    assert_int_equal(versions_common_prefix("", "abc"), 0);
    /* U+00E9 (c3 a9) and U+00E8 (c3 a8) share a first byte, not a character */
    assert_int_equal(versions_common_prefix("x/\xc3\xa9", "x/\xc3\xa8"), 2);
    assert_int_equal(versions_common_prefix("x/\xc3\xa9z", "x/\xc3\xa9y"), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_marker),
        cmocka_unit_test(test_common_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
