/* Unit tests for replicator/notify.c: what to do about a failure (the hint table, the message's own advice
 * first), the summary's explanation fields and the --notify-url text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "replicator/notify.h"
#include "s3/log.h"

static void test_hint(void **state)
{
    (void)state;
    const char *refused = "cannot read the target's versioning: GET s3://b/: connection refused (...)";
    assert_non_null(strstr(notify_hint(refused, NULL, EXIT_FAILED), "check the endpoint URL"));
    assert_non_null(strstr(notify_hint("GET s3://b/: HTTP 403 InvalidAccessKeyId", NULL, 1), "access key"));
    assert_non_null(strstr(notify_hint("HEAD s3://b/x: HTTP 404 NoSuchBucket", NULL, 2), "bucket does not exist"));
    assert_non_null(strstr(notify_hint("x: TLS certificate not trusted", NULL, 1), "--target-ca-bundle"));
    /* the message's own advice wins */
    assert_string_equal(notify_hint("refused: x", "Did you swap the arguments?", EXIT_REFUSED),
                        "Did you swap the arguments?");
    /* a refusal explains itself; it is not matched against the table */
    assert_non_null(strstr(notify_hint("refused: another replicate run (manifest)", NULL, EXIT_REFUSED), "safety"));
    assert_non_null(strstr(notify_hint("FAILED a/b: HTTP 500", NULL, EXIT_FAILED), "failures"));
    assert_non_null(strstr(notify_hint(NULL, NULL, EXIT_NOT_CONVERGED), "--max-passes"));
    assert_non_null(strstr(notify_hint("something new", NULL, EXIT_FAILED), "log"));
}

static void test_explain(void **state)
{
    (void)state;
    s3_log_set(S3_LOG_ERROR, NULL, NULL);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "source", "s3://a");
    cJSON_AddStringToObject(j, "target", "s3://b");
    cJSON_AddStringToObject(j, "run_id", "20261201T000000Z-abcd");
    cJSON_AddStringToObject(j, "result", "failed");
    cJSON_AddNumberToObject(j, "exit_code", 1);
    cJSON_AddNumberToObject(j, "objects_failed", 0);
    notify_explain(j, 1, "fallback reason");
    /* no error was logged in this process: the fallback is the reason */
    assert_string_equal(cJSON_GetObjectItem(j, "message")->valuestring, "fallback reason");
    assert_string_equal(cJSON_GetObjectItem(j, "host")->valuestring, host);
    assert_non_null(cJSON_GetObjectItem(j, "hint")->valuestring);
    assert_non_null(strstr(cJSON_GetObjectItem(j, "exit_meaning")->valuestring, "failed"));
    char text[2048];
    notify_text(j, text, sizeof text);
    assert_non_null(strstr(text, "replicate s3://a -> s3://b on "));
    assert_non_null(strstr(text, "(exit 1: the run failed"));
    assert_non_null(strstr(text, ": fallback reason. Run 20261201T000000Z-abcd; 0 objects failed. What to do: "));
    cJSON_Delete(j);

    /* the first error logged is the reason, and its indented lines are the advice */
    s3_log_set(S3_LOG_ERROR, NULL, NULL);
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    s3_log_user(S3_LOG_WARN, "a warning is not an error");
    s3_log_user(S3_LOG_ERROR, "refused: the source holds .replicate/marker\n  Did you swap the arguments?\n  Add "
                              "--source-is-replica.");
    s3_log_user(S3_LOG_ERROR, "a later error");
    fclose(stderr);
    stderr = saved;
    j = cJSON_CreateObject();
    notify_explain(j, EXIT_REFUSED, "fallback");
    assert_string_equal(cJSON_GetObjectItem(j, "error")->valuestring, "refused: the source holds .replicate/marker");
    assert_string_equal(cJSON_GetObjectItem(j, "hint")->valuestring,
                        "Did you swap the arguments? Add --source-is-replica.");
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hint),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
