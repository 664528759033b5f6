/* Unit tests for replicator/shard.c: balanced boundaries from a key sample (one segment, several segments of
 * different densities, an empty sample), shard ranges that partition the key space exactly, the stored sample's
 * round trip and segment merging, shard manifest names, and runs made of shard manifests. Offline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replicator/shard.h"

/* A sample of `count` keys "<prefix><i, 6 digits>" for i in [from, from+count), every `every`-th kept. */
static void make_sample(struct key_sample *ks, const char *prefix, int from, int count, int every)
{
    memset(ks, 0, sizeof *ks);
    ks->keys = calloc((size_t)count, sizeof *ks->keys);
    assert_non_null(ks->keys);
    for (int i = 0; i < count; i++) {
        if (i % every != every - 1) continue;
        assert_true(asprintf(&ks->keys[ks->n++], "%s%06d", prefix, from + i) > 0);
    }
    ks->seen = (uint64_t)count;
}

/* How many of the keys "<prefix><i>" fall in shard s of n for the given boundaries. */
static int in_shard(char **b, int n, int s, const char *prefix, int from, int count)
{
    char *sa, *eb;
    assert_int_equal(shard_range(b, n, s, "", &sa, &eb), 0);
    int c = 0;
    for (int i = from; i < from + count; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s%06d", prefix, i);
        if ((!sa || strcmp(k, sa) > 0) && (!eb || strcmp(k, eb) < 0)) c++;
    }
    free(sa);
    free(eb);
    return c;
}

static void test_bounds_balanced_under_one_prefix(void **state)
{
    (void)state;
    struct shard_sample s = {0};
    struct key_sample ks;
    make_sample(&ks, "uploads/2024/11/", 0, 3000, 3);
    assert_int_equal(shard_sample_merge(&s, "s3://src/", NULL, NULL, &ks), 0);
    key_sample_free(&ks);
    for (int n = 1; n <= 8; n++) {
        char **b = shard_bounds(&s, n);
        assert_non_null(b);
        int sum = 0;
        for (int i = 0; i < n; i++) {
            int c = in_shard(b, n, i, "uploads/2024/11/", 0, 3000);
            sum += c;
            assert_true(c >= 3000 / n - 6 && c <= 3000 / n + 6); /* within the sample's step */
        }
        assert_int_equal(sum, 3000); /* every key in exactly one shard (ranges are disjoint: see below) */
        shard_bounds_free(b, n);
    }
    /* more shards than sampled keys: some are empty, the partition still exact */
    char **b = shard_bounds(&s, 1500);
    assert_non_null(b);
    int sum = 0;
    for (int i = 0; i < 1500; i++) sum += in_shard(b, 1500, i, "uploads/2024/11/", 0, 3000);
    assert_int_equal(sum, 3000);
    shard_bounds_free(b, 1500);
    shard_sample_free(&s);
}

static void test_ranges_partition_exactly(void **state)
{
    (void)state;
    /* boundaries that are keys themselves, and keys that extend a boundary by bytes below and above it */
    char *bv[] = {"a", "a", "b/c", "z"};
    char **b = bv;
    const char *keys[] = {"", "\x01", "a", "a\x01", "a\x02", "a/", "b", "b/c", "b/c\x01", "b/c/d", "y", "z", "z\x01",
                          "\xf4\x8f\xbf\xbf"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        if (!keys[k][0]) continue;
        int hits = 0;
        for (int i = 0; i < 5; i++) {
            char *sa, *eb;
            assert_int_equal(shard_range(b, 5, i, "p/", &sa, &eb), 0);
            char full[64];
            snprintf(full, sizeof full, "p/%s", keys[k]);
            if ((!sa || strcmp(full, sa) > 0) && (!eb || strcmp(full, eb) < 0)) hits++;
            free(sa);
            free(eb);
        }
        assert_int_equal(hits, 1);
    }
    char *sa, *eb;
    assert_int_equal(shard_range(b, 5, 0, "p/", &sa, &eb), 0);
    assert_null(sa);
    assert_string_equal(eb, "p/a\x01");
    free(eb);
    assert_int_equal(shard_range(b, 5, 4, "p/", &sa, &eb), 0);
    assert_string_equal(sa, "p/z");
    assert_null(eb);
    free(sa);
}

static void test_segments_weighted_and_merged(void **state)
{
    (void)state;
    /* an unsharded run's sample, then shard 1 of 2 (keys after 001999) found five times as many keys there */
    struct shard_sample s = {0};
    struct key_sample ks;
    make_sample(&ks, "k", 0, 4000, 4);
    assert_int_equal(shard_sample_merge(&s, "s3://src/", NULL, NULL, &ks), 0);
    key_sample_free(&ks);
    make_sample(&ks, "k", 2000, 10000, 8);
    assert_int_equal(shard_sample_merge(&s, "s3://src/", "k001999", NULL, &ks), 0);
    key_sample_free(&ks);
    assert_int_equal(s.nseg, 2); /* the old segment trimmed to (start, k001999], the new one after it */
    assert_null(s.seg[0].start_after);
    assert_string_equal(s.seg[0].end_before, "k001999");
    assert_true(s.seg[0].objects >= 1990 && s.seg[0].objects <= 2010);
    assert_int_equal(s.seg[1].objects, 10000);

    /* round trip through the stored record */
    char *t = shard_sample_json(&s, "s3://dst", "run1", 1);
    assert_non_null(t);
    struct shard_sample r;
    assert_int_equal(shard_sample_parse(t, strlen(t), &r), 0);
    free(t);
    assert_string_equal(r.source, "s3://src/");
    assert_int_equal(r.nseg, 2);
    assert_int_equal(r.seg[1].objects, 10000);
    assert_int_equal(r.seg[1].n, s.seg[1].n);

    /* 12,000 objects in 4 shards: about 3,000 each, the first one all in the old segment */
    char **b = shard_bounds(&r, 4);
    assert_non_null(b);
    int c0 = in_shard(b, 4, 0, "k", 0, 12000);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        int c = in_shard(b, 4, i, "k", 0, 12000);
        total += c;
        assert_true(c >= 2900 && c <= 3100);
    }
    assert_true(c0 > 0);
    assert_int_equal(total, 12000);
    shard_bounds_free(b, 4);
    shard_sample_free(&r);

    /* a sample of another source is replaced, not merged */
    make_sample(&ks, "x", 0, 10, 1);
    assert_int_equal(shard_sample_merge(&s, "s3://other/", "x000004", NULL, &ks), 0);
    key_sample_free(&ks);
    assert_int_equal(s.nseg, 1);
    shard_sample_free(&s);

    /* records that are not ours, or keys out of order, are refused */
    const char *badrec[] = {"{}", "[]", "{\"format\":2,\"segments\":[]}",
                            "{\"format\":1,\"segments\":[{\"objects\":2,\"keys\":[\"b\",\"a\"]}]}",
                            "{\"format\":1,\"segments\":[{\"end_before\":\"a\",\"objects\":1,\"keys\":[\"b\"]}]}"};
    for (size_t i = 0; i < sizeof badrec / sizeof *badrec; i++)
        assert_int_equal(shard_sample_parse(badrec[i], strlen(badrec[i]), &r), -1);
}

static void test_empty_sample_and_thinning(void **state)
{
    (void)state;
    char **b = shard_bounds(NULL, 4);
    assert_non_null(b);
    assert_true(strcmp(b[0], b[1]) < 0 && strcmp(b[1], b[2]) < 0); /* fixed, spread, increasing */
    shard_bounds_free(b, 4);
    /* 100 shards' segments of 1024 keys each are thinned to at most 4096 keys in all */
    struct shard_sample s = {0};
    for (int i = 0; i < 100; i++) {
        struct key_sample ks;
        make_sample(&ks, "k", i * 1024, 1024, 1);
        char lo[16], hi[16];
        snprintf(lo, sizeof lo, "k%06d", i * 1024 - 1);
        snprintf(hi, sizeof hi, "k%06d", i * 1024 + 1023);
        assert_int_equal(shard_sample_merge(&s, "s3://src/", i ? lo : NULL, i < 99 ? hi : NULL, &ks), 0);
        key_sample_free(&ks);
    }
    size_t keys = 0;
    for (size_t i = 0; i < s.nseg; i++) keys += s.seg[i].n;
    assert_int_equal(s.nseg, 100);
    assert_true(keys <= 4096);
    b = shard_bounds(&s, 10);
    int sum = 0;
    for (int i = 0; i < 10; i++) {
        int c = in_shard(b, 10, i, "k", 0, 102400);
        sum += c;
        assert_true(c >= 10240 - 300 && c <= 10240 + 300);
    }
    assert_int_equal(sum, 102400);
    shard_bounds_free(b, 10);
    shard_sample_free(&s);
}

static void test_manifest_names(void **state)
{
    (void)state;
    char name[128], run[80];
    int i, n;
    shard_manifest_name(name, sizeof name, "nightly-29412345", 3, 16);
    assert_string_equal(name, "nightly-29412345.shard-0003-of-0016");
    strcat(name, ".jsonl");
    assert_true(shard_parse_name(name, run, sizeof run, &i, &n));
    assert_string_equal(run, "nightly-29412345");
    assert_int_equal(i, 3);
    assert_int_equal(n, 16);
    assert_true(shard_parse_name(".replicate/manifests/r.shard-0000-of-0001.jsonl", run, sizeof run, &i, &n));
    assert_false(shard_parse_name("20261202T010000Z-ab12.jsonl", run, sizeof run, &i, &n));
    assert_false(shard_parse_name("r.shard-0004-of-0004.jsonl", run, sizeof run, &i, &n));
    assert_false(shard_parse_name("r.shard-0001-of-0004.jsonl.tmp", run, sizeof run, &i, &n));
    assert_false(shard_parse_name(".shard-0001-of-0004.jsonl", run, sizeof run, &i, &n));
}

static void summary(struct manifest_summary *s, const char *run, int i, int n, const char *result, uint64_t objects)
{
    memset(s, 0, sizeof *s);
    s->run_id = (char *)run;
    s->shard_index = i;
    s->shard_count = n;
    s->started = 100 + i;
    s->trailer_found = result != NULL;
    s->result = (char *)result;
    s->trailer.result = result;
    s->trailer.ended = 200 + i;
    s->trailer.objects = objects;
    s->trailer.maintenance = true;
}

static void test_groups(void **state)
{
    (void)state;
    struct manifest_summary s;
    summary(&s, "r", 3, 4, "ok", 10);
    struct shard_group *g = shard_group_new(&s);
    assert_non_null(g);
    summary(&s, "r", 1, 4, "ok", 20);
    assert_true(shard_group_add(g, &s));
    summary(&s, "other", 0, 4, "ok", 1);
    assert_false(shard_group_add(g, &s));
    summary(&s, "r", 0, 3, "ok", 1);
    assert_false(shard_group_add(g, &s)); /* another count: not this run */
    summary(&s, "r", 2, 4, NULL, 5);     /* unfinished (killed) */
    assert_true(shard_group_add(g, &s));
    assert_int_equal(shard_group_finish(g), 2); /* shard 0 missing, shard 2 unfinished */
    assert_string_equal(g->agg.result, "incomplete");
    assert_int_equal(g->agg.trailer.objects, 30);
    assert_int_equal(g->agg.trailer.ended, 203);
    assert_int_equal(g->agg.started, 101);
    assert_false(g->agg.trailer.maintenance);
    char text[1000];
    shard_group_problems(g, text, sizeof text);
    assert_non_null(strstr(text, "shard 0 of 4: missing"));
    assert_non_null(strstr(text, "shard 2 of 4: unfinished"));
    assert_null(strstr(text, "shard 1 of 4"));
    shard_group_free(g);

    summary(&s, "r", 0, 2, "ok", 1);
    g = shard_group_new(&s);
    summary(&s, "r", 1, 2, "failed", 1);
    shard_group_add(g, &s);
    assert_int_equal(shard_group_finish(g), 1);
    assert_string_equal(g->agg.result, "failed");
    shard_group_problems(g, text, sizeof text);
    assert_non_null(strstr(text, "shard 1 of 2: failed"));
    shard_group_free(g);

    summary(&s, "r", 0, 2, "ok", 1);
    g = shard_group_new(&s);
    summary(&s, "r", 1, 2, "ok", 1);
    shard_group_add(g, &s);
    assert_int_equal(shard_group_finish(g), 0);
    assert_string_equal(g->agg.result, "ok");
    assert_true(g->agg.trailer.maintenance);
    shard_group_problems(g, text, sizeof text);
    assert_string_equal(text, "");
    shard_group_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_balanced_under_one_prefix),
        cmocka_unit_test(test_ranges_partition_exactly),
        cmocka_unit_test(test_segments_weighted_and_merged),
        cmocka_unit_test(test_empty_sample_and_thinning),
        cmocka_unit_test(test_manifest_names),
        cmocka_unit_test(test_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
