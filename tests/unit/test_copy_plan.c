/* Unit tests for replicator/copy_plan.c: the decisions of one object's copy, offline. Which path a copy takes;
 * how a multipart copy spends the memory budget; what a multipart copy does next from its counts of parts sent,
 * done, failed (every branch of copy_plan_next); whether a failed piped part runs again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "replicator/copy_plan.h"

#define MiB (1024u * 1024u)

/* ---- the path ---- */

static struct copy_path_in server_in(uint64_t size)
{
    return (struct copy_path_in){.size = size, .copy_threshold = 64 * MiB, .multipart_threshold = 16 * MiB,
                                 .server_side = true};
}

static void test_path_server_side(void **state)
{
    (void)state;
    struct copy_path_in in = server_in(1000);
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER);
    in.replace_meta = true;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER_META);
    in = server_in(64 * MiB); /* at the threshold: still one CopyObject */
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER);
    in = server_in(64 * MiB + 1);
    assert_int_equal(copy_plan_path(&in), COPY_PATH_PART_COPY);
    in.replace_meta = true; /* part copies write the metadata the HEAD read anyway */
    assert_int_equal(copy_plan_path(&in), COPY_PATH_PART_COPY);
}

static void test_path_percent_key_streams(void **state)
{
    (void)state;
    struct copy_path_in in = server_in(64 * MiB + 1);
    in.key_has_percent = true; /* RGW decodes an UploadPartCopy source twice */
    assert_int_equal(copy_plan_path(&in), COPY_PATH_MULTIPART);
    in = server_in(1000);
    in.key_has_percent = true; /* a single CopyObject is fine */
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER);
}

static void test_path_small_streamed_without_versions(void **state)
{
    (void)state;
    struct copy_path_in in = server_in(SMALL_STREAM_MAX);
    in.copy_names_no_version = true;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_STREAM);
    in.size = SMALL_STREAM_MAX + 1;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER);
    in.size = SMALL_STREAM_MAX;
    in.bulk_versions = true; /* versions learned in bulk: CopyObject costs no HEAD */
    assert_int_equal(copy_plan_path(&in), COPY_PATH_SERVER);
}

static void test_path_cross_endpoint(void **state)
{
    (void)state;
    struct copy_path_in in = server_in(16 * MiB);
    in.server_side = false;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_STREAM);
    in.size = 16 * MiB + 1;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_MULTIPART);
    in.size = 0;
    assert_int_equal(copy_plan_path(&in), COPY_PATH_STREAM);
}

/* ---- memory ---- */

static void test_plan_part_copy_holds_nothing(void **state)
{
    (void)state;
    struct mpu_plan_in in = {.size = 100 * MiB, .part_size = 8 * MiB, .max_memory = 1, .jobs = 16, .part_copy = true};
    struct mpu_plan p = copy_plan_parts(&in);
    assert_false(p.buffered);
    assert_int_equal(p.ring, 0);
    assert_int_equal(p.parallel, PARTS_PER_JOB * 2);
    assert_int_equal(p.mem_need, 0);
}

static void test_plan_piped(void **state)
{
    (void)state;
    struct mpu_plan_in in = {.size = 100 * MiB, .part_size = 8 * MiB, .max_memory = 256 * MiB, .jobs = 8};
    struct mpu_plan p = copy_plan_parts(&in);
    assert_false(p.buffered);
    assert_int_equal(p.ring, PIPE_RING);
    /* each pipe charged budget / (jobs + 8) = 16 MiB: 16 fit, at most 8 per job */
    assert_int_equal(p.parallel, PIPED_PARTS_PER_JOB);
    assert_int_equal(p.mem_need, 8 * 16 * MiB);
    in.one_host = true; /* twice the charge: 32 MiB, 8 fit */
    p = copy_plan_parts(&in);
    assert_int_equal(p.parallel, 8);
    assert_int_equal(p.mem_need, 8 * 32 * MiB);
    in.part_size = 64 * 1024; /* a ring no larger than a part */
    p = copy_plan_parts(&in);
    assert_int_equal(p.ring, 64 * 1024);
}

static void test_plan_budget_full_still_one_part(void **state)
{
    (void)state;
    /* a budget smaller than one ring: one pipe, charged its ring (the budget admits it when nothing else holds) */
    struct mpu_plan_in in = {.size = 100 * MiB, .part_size = 8 * MiB, .max_memory = 1000, .jobs = 8};
    struct mpu_plan p = copy_plan_parts(&in);
    assert_int_equal(p.parallel, 1);
    assert_int_equal(p.mem_need, PIPE_RING);
    in.dst_sse = true; /* buffered: one whole part */
    p = copy_plan_parts(&in);
    assert_true(p.buffered);
    assert_int_equal(p.ring, 0);
    assert_int_equal(p.parallel, 1);
    assert_int_equal(p.mem_need, 8 * MiB + 1);
}

static void test_plan_buffered(void **state)
{
    (void)state;
    struct mpu_plan_in in = {.size = 100 * MiB, .part_size = 8 * MiB, .max_memory = 20 * MiB, .jobs = 8,
                             .dst_sse = true};
    struct mpu_plan p = copy_plan_parts(&in);
    assert_true(p.buffered);
    assert_int_equal(p.parallel, 2); /* 20 MiB holds two parts of 8 MiB + 1 */
    assert_int_equal(p.mem_need, 2 * (8 * MiB + 1));
    in.max_memory = 1024 * MiB;
    p = copy_plan_parts(&in);
    assert_int_equal(p.parallel, PARTS_PER_JOB);
}

/* ---- what a multipart copy does next ---- */

static const struct mpu_limits limits = {.parallel = 2, .max_rereads = 3};

static void test_next_starts_parts_up_to_parallel(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 5};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_START_PART);
    c.sent = c.inflight = 1;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_START_PART);
    c.sent = c.inflight = 2; /* as many in flight as the memory held allows */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_WAIT);
    c.inflight = 1, c.done = 1;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_START_PART);
}

static void test_next_waits_when_all_sent(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 3, .sent = 3, .done = 2, .inflight = 1};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_WAIT);
}

static void test_next_completes_when_all_done(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 3, .sent = 3, .done = 3};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_COMPLETE);
    c.checksum = MPU_CHECK_MATCH, c.etag = MPU_CHECK_MATCH;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_COMPLETE);
    c.nparts = c.sent = c.done = 1;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_COMPLETE);
}

static void test_next_failed_part_drains_then_aborts(void **state)
{
    (void)state;
    /* a part failed for good while two more are in flight: nothing more is sent, then the upload is aborted */
    struct mpu_counts c = {.nparts = 6, .sent = 3, .done = 0, .inflight = 2, .stopping = true};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_WAIT);
    c.inflight = 0, c.done = 2;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ABORT);
    /* even with every part done: a failure (or a restart) recorded wins over completing */
    c = (struct mpu_counts){.nparts = 2, .sent = 2, .done = 2, .stopping = true};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ABORT);
}

static void test_next_interrupted(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 6, .sent = 3, .inflight = 3, .interrupted = true};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_STOP);
    c.stopping = true; /* recorded: wait for the three, then abort */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_WAIT);
    c.inflight = 0;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ABORT);
    c = (struct mpu_counts){.nparts = 2, .sent = 2, .done = 2, .interrupted = true}; /* not completed either */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_STOP);
}

static void test_next_composite_etag_miss_restarts(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 4, .sent = 4, .done = 4, .etag = MPU_CHECK_MISS};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ETAG_MISS);
    c.checksum = MPU_CHECK_MATCH; /* the checksum matching does not excuse the ETag */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ETAG_MISS);
}

static void test_next_checksum_miss_rereads_then_gives_up(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 4, .sent = 4, .done = 4, .checksum = MPU_CHECK_MISS};
    for (c.rereads = 0; c.rereads < limits.max_rereads; c.rereads++)
        assert_int_equal(copy_plan_next(&c, &limits), MPU_REREAD);
    assert_int_equal(copy_plan_next(&c, &limits), MPU_GIVE_UP);
    c.rereads = 0, c.etag = MPU_CHECK_MISS; /* the checksum is looked at first */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_REREAD);
}

static void test_next_composite_checksum_second_miss_not_checked(void **state)
{
    (void)state;
    struct mpu_counts c = {.nparts = 4, .sent = 4, .done = 4, .checksum = MPU_CHECK_MISS, .checksum_composite = true};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_REREAD); /* the first: maybe a part read wrong */
    c.checksum_misses = 1; /* again: the source's parts are not ours, it cannot be checked */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_COMPLETE);
    c.etag = MPU_CHECK_MISS;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ETAG_MISS);
    c.checksum_composite = false, c.etag = MPU_CHECK_NONE; /* a full-object checksum is always checkable */
    assert_int_equal(copy_plan_next(&c, &limits), MPU_REREAD);
}

static void test_next_restart_after_abort_starts_afresh(void **state)
{
    (void)state;
    /* a restart (a miss, or piped parts on a target that hides MD5s) aborts once the parts in flight end ... */
    struct mpu_counts c = {.nparts = 8, .sent = 5, .done = 3, .inflight = 1, .stopping = true};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_WAIT);
    c.inflight = 0;
    assert_int_equal(copy_plan_next(&c, &limits), MPU_ABORT);
    /* ... and the new upload's counts start from nothing, with the reads already spent */
    c = (struct mpu_counts){.nparts = 8, .rereads = 1};
    assert_int_equal(copy_plan_next(&c, &limits), MPU_START_PART);
}

static void test_next_parallel_one(void **state)
{
    (void)state;
    const struct mpu_limits one = {.parallel = 1, .max_rereads = 0};
    struct mpu_counts c = {.nparts = 2, .sent = 1, .inflight = 1};
    assert_int_equal(copy_plan_next(&c, &one), MPU_WAIT);
    c.inflight = 0, c.done = 1;
    assert_int_equal(copy_plan_next(&c, &one), MPU_START_PART);
    c = (struct mpu_counts){.nparts = 2, .sent = 2, .done = 2, .checksum = MPU_CHECK_MISS};
    assert_int_equal(copy_plan_next(&c, &one), MPU_GIVE_UP); /* no reads allowed */
}

/* ---- a failed piped part ---- */

static void test_part_retry(void **state)
{
    (void)state;
    assert_true(copy_plan_part_retry(S3_RETRY_YES, 0, 3, false));  /* retries left */
    assert_true(copy_plan_part_retry(S3_RETRY_THROTTLED, 1, 3, false));
    assert_false(copy_plan_part_retry(S3_RETRY_YES, 2, 3, false)); /* the third run was the last */
    assert_false(copy_plan_part_retry(S3_RETRY_NO, 0, 3, false));  /* not retryable */
    assert_false(copy_plan_part_retry(S3_RETRY_YES, 0, 3, true));  /* the upload is being given up */
    assert_false(copy_plan_part_retry(S3_RETRY_YES, 0, 1, false)); /* one attempt only */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_server_side),
        cmocka_unit_test(test_path_percent_key_streams),
        cmocka_unit_test(test_path_small_streamed_without_versions),
        cmocka_unit_test(test_path_cross_endpoint),
        cmocka_unit_test(test_plan_part_copy_holds_nothing),
        cmocka_unit_test(test_plan_piped),
        cmocka_unit_test(test_plan_budget_full_still_one_part),
        cmocka_unit_test(test_plan_buffered),
        cmocka_unit_test(test_next_starts_parts_up_to_parallel),
        cmocka_unit_test(test_next_waits_when_all_sent),
        cmocka_unit_test(test_next_completes_when_all_done),
        cmocka_unit_test(test_next_failed_part_drains_then_aborts),
        cmocka_unit_test(test_next_interrupted),
        cmocka_unit_test(test_next_composite_etag_miss_restarts),
        cmocka_unit_test(test_next_checksum_miss_rereads_then_gives_up),
        cmocka_unit_test(test_next_composite_checksum_second_miss_not_checked),
        cmocka_unit_test(test_next_restart_after_abort_starts_afresh),
        cmocka_unit_test(test_next_parallel_one),
        cmocka_unit_test(test_part_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
