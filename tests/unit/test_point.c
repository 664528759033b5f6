/* Unit tests for manifest/point.c: the restore point of a run's manifest (last event per key wins, deletions
 * take keys out, key order, several sorted runs merged, rewind). Offline, temp files only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "manifest/point.h"

static char g_path[256];

static void obj(struct manifest_writer *w, const char *key, const char *etag, const char *version, int pass)
{
    struct manifest_object o = {.key = key, .size = strlen(key), .etag = etag, .last_modified = "2026-12-01T00:00:00Z",
                                .target_key = key, .target_etag = etag, .version_id = version, .pass = pass};
    assert_int_equal(manifest_writer_add(w, &o), 0);
}

static void del(struct manifest_writer *w, const char *key, int pass)
{
    struct manifest_deleted d = {.key = key, .target_key = key, .pass = pass};
    assert_int_equal(manifest_writer_deleted(w, &d), 0);
}

/* pass 1 saw a, b, c, "sp ace", "z\nnl" (unsorted, as copies finish); pass 2 overwrote b, deleted c, saw d
 * appear and noted a key deleted long ago (old); pass 3 brought c back */
static void write_manifest(bool c_back)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/test_point.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(g_path);
    assert_true(fd >= 0);
    close(fd);
    unlink(g_path);
    char err[256];
    struct manifest_writer *w = manifest_writer_open(g_path, err, sizeof err);
    assert_non_null(w);
    struct manifest_header h = {.run_id = "r1", .tool_version = "t", .started = 1, .source = "s3://a",
                                .target = "s3://b"};
    assert_int_equal(manifest_writer_header(w, &h), 0);
    obj(w, "c", "e-c1", "vc1", 1);
    obj(w, "a", "e-a1", "va1", 1);
    obj(w, "z\nnl", "e-z1", NULL, 1);
    obj(w, "b", "e-b1", "vb1", 1);
    obj(w, "sp ace", "e-s1", "vs1", 1);
    obj(w, "b", "e-b2", "vb2", 2);
    del(w, "c", 2);
    del(w, "old", 2);
    obj(w, "d", "e-d1", "vd1", 2);
    if (c_back) obj(w, "c", "e-c3", "vc3", 3);
    struct manifest_trailer t = {.ended = 2, .result = "ok", .passes = 3};
    assert_int_equal(manifest_writer_trailer(w, &t), 0);
    assert_int_equal(manifest_writer_close(w), 0);
}

static void expect_point(struct manifest_point *p, const char *const *keys, const char *const *versions, size_t n)
{
    const struct manifest_point_entry *e;
    char err[256];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(manifest_point_next(p, &e, err, sizeof err), 1);
        assert_string_equal(e->key, keys[i]);
        if (versions[i]) assert_string_equal(e->version_id, versions[i]);
        else assert_null(e->version_id);
    }
    assert_int_equal(manifest_point_next(p, &e, err, sizeof err), 0);
}

static void check(size_t max_records, bool c_back)
{
    write_manifest(c_back);
    char err[256] = "";
    struct manifest_point *p = manifest_point_build(g_path, NULL, max_records, err, sizeof err);
    assert_non_null(p);
    const char *k1[] = {"a", "b", "d", "sp ace", "z\nnl"};
    const char *v1[] = {"va1", "vb2", "vd1", "vs1", NULL};
    const char *k2[] = {"a", "b", "c", "d", "sp ace", "z\nnl"};
    const char *v2[] = {"va1", "vb2", "vc3", "vd1", "vs1", NULL};
    size_t n = c_back ? 6 : 5;
    expect_point(p, c_back ? k2 : k1, c_back ? v2 : v1, n);
    const struct manifest_point_stats *st = manifest_point_stats(p);
    assert_int_equal(st->entries, n);
    assert_int_equal(st->without_version, 1);
    assert_int_equal(st->deleted, 2);
    if (max_records && max_records < 4) assert_true(st->runs > 1);
    assert_int_equal(manifest_point_rewind(p), 0); /* the same again */
    expect_point(p, c_back ? k2 : k1, c_back ? v2 : v1, n);
    manifest_point_free(p);
    unlink(g_path);
}

static void test_point_one_run(void **state)
{
    (void)state;
    check(0, false);
    check(0, true);
}

static void test_point_many_runs(void **state)
{
    (void)state;
    for (size_t m = 1; m <= 5; m++) {
        check(m, false);
        check(m, true);
    }
}

static void test_point_missing_file(void **state)
{
    (void)state;
    char err[256] = "";
    assert_null(manifest_point_build("/nonexistent/manifest.jsonl", NULL, 0, err, sizeof err));
    assert_true(err[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_one_run),
        cmocka_unit_test(test_point_many_runs),
        cmocka_unit_test(test_point_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
