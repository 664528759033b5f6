/* Unit tests for replicator/result.c: the run's result table. Names read back give the result written, the exit
 * codes are the documented ones (README "Exit codes", replicate.1 EXIT STATUS), and what each result counts as
 * (success, restore point, first pass done) is what --status, --restore, the index and the metrics expect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "replicator/options.h"
#include "replicator/result.h"

static void test_names_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < REP_RESULT_UNKNOWN; i++) {
        enum rep_result r = (enum rep_result)i;
        const char *name = rep_result_name(r);
        assert_non_null(name);
        /* a configuration error is written "failed": it reads back as a failed run */
        assert_int_equal(rep_result_from_name(name), r == REP_RESULT_CONFIG ? REP_RESULT_FAILED : r);
    }
    assert_string_equal(rep_result_name(REP_RESULT_OK), "ok");
    assert_string_equal(rep_result_name(REP_RESULT_FAILED), "failed");
    assert_string_equal(rep_result_name(REP_RESULT_CONFIG), "failed");
    assert_string_equal(rep_result_name(REP_RESULT_REFUSED), "refused");
    assert_string_equal(rep_result_name(REP_RESULT_NOT_CONVERGED), "not-converged");
    assert_string_equal(rep_result_name(REP_RESULT_MAINTENANCE_FAILED), "maintenance-failed");
    assert_string_equal(rep_result_name(REP_RESULT_MAINTENANCE_INCOMPLETE), "maintenance-incomplete");
    assert_string_equal(rep_result_name(REP_RESULT_INTERRUPTED), "interrupted");
}

static void test_unknown_names(void **state)
{
    (void)state;
    assert_int_equal(rep_result_from_name(NULL), REP_RESULT_UNKNOWN);
    assert_int_equal(rep_result_from_name(""), REP_RESULT_UNKNOWN);
    assert_int_equal(rep_result_from_name("OK"), REP_RESULT_UNKNOWN); /* names are exact */
    assert_int_equal(rep_result_from_name("ok "), REP_RESULT_UNKNOWN);
    assert_int_equal(rep_result_from_name("incomplete"), REP_RESULT_UNKNOWN); /* --status's, not a run's */
    assert_int_equal(rep_result_from_name("unknown"), REP_RESULT_UNKNOWN);
    /* an unknown result counts as nothing, like any name the code before the table did not list */
    assert_false(rep_result_successful(REP_RESULT_UNKNOWN));
    assert_false(rep_result_restore_point(REP_RESULT_UNKNOWN));
    assert_false(rep_result_first_pass_done(REP_RESULT_UNKNOWN));
    assert_int_equal(rep_result_exit(REP_RESULT_UNKNOWN), EXIT_FAILED);
    /* out of range is unknown, never a read past the table */
    assert_string_equal(rep_result_name((enum rep_result)REP_RESULT_COUNT), "unknown");
    assert_string_equal(rep_result_name((enum rep_result)-1), "unknown");
}

static void test_exit_codes(void **state)
{
    (void)state;
    /* README "Exit codes": 0 ok, 1 failures, 2 usage/config, 3 refused, 4 not converged, 130 interrupted */
    assert_int_equal(rep_result_exit(REP_RESULT_OK), 0);
    assert_int_equal(rep_result_exit(REP_RESULT_FAILED), 1);
    assert_int_equal(rep_result_exit(REP_RESULT_CONFIG), 2);
    assert_int_equal(rep_result_exit(REP_RESULT_REFUSED), 3);
    assert_int_equal(rep_result_exit(REP_RESULT_NOT_CONVERGED), 4);
    assert_int_equal(rep_result_exit(REP_RESULT_MAINTENANCE_FAILED), 1);
    assert_int_equal(rep_result_exit(REP_RESULT_MAINTENANCE_INCOMPLETE), 1);
    assert_int_equal(rep_result_exit(REP_RESULT_INTERRUPTED), 130);
    /* only an ok run exits 0 */
    for (int i = 0; i < REP_RESULT_COUNT; i++)
        assert_int_equal(rep_result_exit((enum rep_result)i) == 0, i == REP_RESULT_OK);
}

static void test_from_exit(void **state)
{
    (void)state;
    assert_int_equal(rep_result_from_exit(EXIT_REFUSED), REP_RESULT_REFUSED);
    assert_int_equal(rep_result_from_exit(EXIT_INTERRUPTED), REP_RESULT_INTERRUPTED);
    assert_int_equal(rep_result_from_exit(EXIT_USAGE), REP_RESULT_CONFIG);
    assert_int_equal(rep_result_from_exit(EXIT_FAILED), REP_RESULT_FAILED);
    /* the exit code a step returned is the run's */
    const int codes[] = {EXIT_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERRUPTED};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++)
        assert_int_equal(rep_result_exit(rep_result_from_exit(codes[i])), codes[i]);
}

static void test_what_results_count_as(void **state)
{
    (void)state;
    for (int i = 0; i < REP_RESULT_COUNT; i++) {
        enum rep_result r = (enum rep_result)i;
        /* --status and the metrics: only "ok" is a success */
        assert_int_equal(rep_result_successful(r), r == REP_RESULT_OK);
        /* --restore: a run that ended with every copy made */
        assert_int_equal(rep_result_restore_point(r), r == REP_RESULT_OK || r == REP_RESULT_NOT_CONVERGED);
        /* the index and the stored manifest's base: a run whose first pass recorded every object */
        assert_int_equal(rep_result_first_pass_done(r),
                         r == REP_RESULT_OK || r == REP_RESULT_FAILED || r == REP_RESULT_NOT_CONVERGED);
        /* a restore point completed its first pass */
        if (rep_result_restore_point(r)) assert_true(rep_result_first_pass_done(r));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_round_trip), cmocka_unit_test(test_unknown_names),
        cmocka_unit_test(test_exit_codes),       cmocka_unit_test(test_from_exit),
        cmocka_unit_test(test_what_results_count_as),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
