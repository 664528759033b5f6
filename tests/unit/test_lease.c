/* Unit tests for the lease's settle time (replicator/lease.c): the wait between writing the lease and reading
 * it back on servers that ignore conditional writes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>

#include "replicator/lease.h"

static void test_settle(void **state)
{
    (void)state;
    /* a fast local server: the floor */
    assert_true(lease_settle_seconds(0.004, false) == 0.2);
    /* 5x the round trips in between */
    assert_true(lease_settle_seconds(0.1, false) > 0.49 && lease_settle_seconds(0.1, false) < 0.51);
    /* a slow server: at most a second */
    assert_true(lease_settle_seconds(0.9, false) == 1.0);
    /* a retried request says the server is slow or throttling: the longest wait, however fast the rest was */
    assert_true(lease_settle_seconds(0.004, true) == 1.0);
    /* nonsense (a clock step) stays within bounds */
    assert_true(lease_settle_seconds(-3.0, false) == 0.2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_settle)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
