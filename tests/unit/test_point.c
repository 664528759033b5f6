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
static struct manifest_point_builder *g_tee; /* given the lines as write_manifest writes them, or NULL */

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
    if (g_tee) manifest_writer_tee(w, manifest_point_builder_tee, g_tee);
    struct manifest_header h = {.run_id = "r1", .tool_version = "t", .started = 1, .source = "s3://a",
                                .target = "s3://b"};
    assert_int_equal(manifest_writer_header(w, &h), 0);
    obj(w, "c", "e-c1", "vc1", 1);
    obj(w, "a", "e-a1", "va1", 1);
    obj(w, "z\nnl", "e-z1", NULL, 1);
    obj(w, "b", "e-b1", "vb1", 1);
    obj(w, "sp ace", "e-s1", "vs1", 1);
    struct manifest_object moved = {.key = "e", .size = 7, .etag = "e-e1", .last_modified = "2026-12-01T00:00:00Z",
                                    .target_key = "pre/e", .target_etag = "e-e1-t", .version_id = "ve1", .pass = 1};
    assert_int_equal(manifest_writer_add(w, &moved), 0);
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
    const char *k1[] = {"a", "b", "d", "e", "sp ace", "z\nnl"};
    const char *v1[] = {"va1", "vb2", "vd1", "ve1", "vs1", NULL};
    const char *k2[] = {"a", "b", "c", "d", "e", "sp ace", "z\nnl"};
    const char *v2[] = {"va1", "vb2", "vc3", "vd1", "ve1", "vs1", NULL};
    size_t n = c_back ? 7 : 6;
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

static void assert_same_entry(const struct manifest_point_entry *a, const struct manifest_point_entry *b)
{
    assert_string_equal(a->key, b->key);
    assert_string_equal(a->target_key, b->target_key);
    assert_string_equal(a->etag, b->etag);
    assert_string_equal(a->target_etag, b->target_etag);
    assert_string_equal(a->last_modified, b->last_modified);
    assert_string_equal(a->record, b->record);
    assert_int_equal(a->size, b->size);
    if (a->version_id) assert_string_equal(a->version_id, b->version_id);
    else assert_null(b->version_id);
}

/* Every entry of a and b alike, in the same order, and the same stats. */
static void assert_same_point(struct manifest_point *a, struct manifest_point *b)
{
    const struct manifest_point_entry *x, *y;
    char err[256];
    int ga, gb;
    assert_int_equal(manifest_point_rewind(a), 0);
    assert_int_equal(manifest_point_rewind(b), 0);
    while ((ga = manifest_point_next(a, &x, err, sizeof err)) == 1) {
        gb = manifest_point_next(b, &y, err, sizeof err);
        assert_int_equal(gb, 1);
        assert_same_entry(x, y);
    }
    assert_int_equal(ga, 0);
    assert_int_equal(manifest_point_next(b, &y, err, sizeof err), 0);
    assert_string_equal(manifest_point_stats(a)->digest, manifest_point_stats(b)->digest);
    assert_int_equal(manifest_point_stats(a)->entries, manifest_point_stats(b)->entries);
    assert_int_equal(manifest_point_stats(a)->without_version, manifest_point_stats(b)->without_version);
    assert_int_equal(manifest_point_stats(a)->bytes, manifest_point_stats(b)->bytes);
    assert_int_equal(manifest_point_stats(a)->etag_differs, manifest_point_stats(b)->etag_differs);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    unsigned char *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A point built as the manifest is written (the writer's tee), saved and opened again, is the point read from the
 * file; the builder keeps the summary lines; a damaged saved point is refused. */
static void test_point_builder_and_saved(void **state)
{
    (void)state;
    for (size_t m = 0; m <= 4; m++) {
        for (int saved = 0; saved < 2; saved++) {
            g_tee = manifest_point_builder_new(NULL, m);
            assert_non_null(g_tee);
            write_manifest(true);
            char err[256] = "", spath[300];
            snprintf(spath, sizeof spath, "%s.point", g_path);
            struct manifest_point *built = manifest_point_builder_finish(g_tee, err, sizeof err);
            g_tee = NULL;
            assert_non_null(built);
            const char *const *tail;
            size_t ntail;
            const char *header = manifest_point_lines(built, &tail, &ntail);
            assert_non_null(header);
            assert_non_null(strstr(header, "\"run_id\":\"r1\""));
            assert_int_equal(ntail, 1);
            assert_non_null(strstr(tail[0], "\"trailer\""));
            struct manifest_point *read = manifest_point_build(g_path, NULL, m, err, sizeof err);
            assert_non_null(read);
            assert_same_point(read, built);
            assert_int_equal(manifest_point_save(built, spath, "{\"m\":1}", err, sizeof err), 0);
            if (saved) assert_same_point(read, built); /* saving rewinds: the built point reads the same again */
            char *meta = NULL;
            struct manifest_point *opened = manifest_point_open(spath, &meta, err, sizeof err);
            assert_non_null(opened);
            assert_string_equal(meta, "{\"m\":1}");
            free(meta);
            assert_same_point(read, opened);
            manifest_point_free(opened);
            /* the same point as a version 1 file (entry count and digest, no CRC) is read, checked by its digest */
            size_t len = 0;
            unsigned char *v2 = read_all(spath, &len);
            const size_t meta_at = 18 + 4, head_at = meta_at + 7, run_at = head_at + 4 * 8 + 16 + 8 + 4;
            assert_true(len >= run_at);
            char v1path[320];
            snprintf(v1path, sizeof v1path, "%s.v1", spath);
            FILE *f = fopen(v1path, "w");
            assert_non_null(f);
            fputs("replicate-point 1\n", f);
            fwrite(v2 + 18, 1, 4 + 7, f);              /* the meta text */
            fwrite(v2 + head_at, 1, 8, f);             /* the entry count */
            fwrite(v2 + head_at + 4 * 8, 1, 16, f);    /* the digest */
            fwrite(v2 + run_at, 1, len - run_at, f);   /* the run */
            fclose(f);
            opened = manifest_point_open(v1path, &meta, err, sizeof err);
            assert_non_null(opened);
            free(meta);
            assert_same_point(read, opened);
            manifest_point_free(opened);
            unlink(v1path);
            /* a torn copy (the file is not fsynced: a crash can leave it short) is refused */
            assert_int_equal(truncate(spath, (off_t)len - 1), 0);
            assert_null(manifest_point_open(spath, &meta, err, sizeof err));
            assert_null(meta);
            /* a byte of the first entry's key changed (a field the digest of record lines does not cover) */
            f = fopen(spath, "w");
            assert_non_null(f);
            v2[run_at + 4] ^= 1;
            fwrite(v2, 1, len, f);
            fclose(f);
            assert_null(manifest_point_open(spath, &meta, err, sizeof err));
            assert_null(meta);
            v2[run_at + 4] ^= 1;
            f = fopen(spath, "w");
            fwrite(v2, 1, len, f);
            fclose(f);
            free(v2);
            opened = manifest_point_open(spath, &meta, err, sizeof err); /* restored: read again */
            assert_non_null(opened);
            free(meta);
            manifest_point_free(opened);
            /* one byte of an entry changed: the digest it recorded no longer holds */
            f = fopen(spath, "r+");
            assert_non_null(f);
            assert_int_equal(fseek(f, -20, SEEK_END), 0);
            int c = fgetc(f);
            assert_int_equal(fseek(f, -20, SEEK_END), 0);
            fputc(c == 'x' ? 'y' : 'x', f);
            fclose(f);
            assert_null(manifest_point_open(spath, &meta, err, sizeof err));
            assert_null(meta);
            assert_true(err[0] != '\0');
            manifest_point_free(read);
            manifest_point_free(built);
            unlink(spath);
            unlink(g_path);
        }
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
        cmocka_unit_test(test_point_builder_and_saved),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
