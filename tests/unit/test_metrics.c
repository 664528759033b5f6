/* Unit tests for replicator/metrics.c: the textfile merge (other targets, other families and histograms kept,
 * ours replaced, families grouped), label escaping, reading a sample back, and the atomic replacement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replicator/metrics.h"

static char g_dir[256], g_path[512];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/test_metrics.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_path, sizeof g_path, "%s/replicate.prom", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[800];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(g_dir);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_file(const char *text)
{
    FILE *f = fopen(g_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_new_file(void **state)
{
    (void)state;
    char err[256];
    struct metric_sample s[] = {{"replicate_a", "A thing.", 1796000000}, {"replicate_b", "B.", 0.125}};
    assert_int_equal(metrics_write(g_path, "s3://bk/p", s, 2, err, sizeof err), 0);
    assert_string_equal(slurp(g_path), "# HELP replicate_a A thing.\n# TYPE replicate_a gauge\n"
                                       "replicate_a{target=\"s3://bk/p\"} 1796000000\n"
                                       "# HELP replicate_b B.\n# TYPE replicate_b gauge\n"
                                       "replicate_b{target=\"s3://bk/p\"} 0.125\n");
    struct stat st;
    assert_int_equal(stat(g_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    double v = 0;
    assert_true(metrics_read(g_path, "replicate_a", "s3://bk/p", &v));
    assert_true(v == 1796000000);
    assert_false(metrics_read(g_path, "replicate_a", "s3://other", &v));
    assert_false(metrics_read(g_path, "replicate_c", "s3://bk/p", &v));
    /* only the textfile is left in the directory */
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') files++;
    closedir(d);
    assert_int_equal(files, 1);
}

static void test_merge(void **state)
{
    (void)state;
    write_file("# HELP replicate_a Old help.\n# TYPE replicate_a gauge\n"
               "replicate_a{target=\"s3://other\"} 5\n"
               "replicate_a{target=\"s3://bk\"} 6\n"
               "# a comment\n"
               "# HELP http_seconds A histogram.\n# TYPE http_seconds histogram\n"
               "http_seconds_bucket{le=\"1\"} 3\nhttp_seconds_sum 2.5\nhttp_seconds_count 3\n"
               "replicate_kept{target=\"s3://bk\"} 7\n");
    char err[256];
    struct metric_sample s[] = {{"replicate_a", "New help.", 8}, {"replicate_new", "N.", 9}};
    assert_int_equal(metrics_write(g_path, "s3://bk", s, 2, err, sizeof err), 0);
    assert_string_equal(slurp(g_path), "# HELP replicate_a New help.\n# TYPE replicate_a gauge\n"
                                       "replicate_a{target=\"s3://other\"} 5\n"
                                       "replicate_a{target=\"s3://bk\"} 8\n"
                                       "# HELP http_seconds A histogram.\n# TYPE http_seconds histogram\n"
                                       "http_seconds_bucket{le=\"1\"} 3\nhttp_seconds_sum 2.5\nhttp_seconds_count 3\n"
                                       "replicate_kept{target=\"s3://bk\"} 7\n"
                                       "# HELP replicate_new N.\n# TYPE replicate_new gauge\n"
                                       "replicate_new{target=\"s3://bk\"} 9\n");
    /* a sample this writer no longer writes (left out of s) keeps its old value */
    double v = 0;
    assert_true(metrics_read(g_path, "replicate_kept", "s3://bk", &v));
    assert_true(v == 7);
}

static void test_escape(void **state)
{
    (void)state;
    char out[64], err[256];
    assert_string_equal(metrics_label_escape("s3://b/a\"q\\x\ny", out, sizeof out), "s3://b/a\\\"q\\\\x\\ny");
    struct metric_sample s[] = {{"replicate_a", "A.", 1}};
    const char *t = "s3://b/we}ird\"/";
    assert_int_equal(metrics_write(g_path, t, s, 1, err, sizeof err), 0);
    assert_int_equal(metrics_write(g_path, t, s, 1, err, sizeof err), 0); /* replaced, not added twice */
    assert_string_equal(slurp(g_path), "# HELP replicate_a A.\n# TYPE replicate_a gauge\n"
                                       "replicate_a{target=\"s3://b/we}ird\\\"/\"} 1\n");
    double v = 0;
    assert_true(metrics_read(g_path, "replicate_a", t, &v));
}

static void test_unwritable(void **state)
{
    (void)state;
    char err[256] = "", path[600];
    snprintf(path, sizeof path, "%s/no-such-dir/replicate.prom", g_dir);
    struct metric_sample s[] = {{"replicate_a", "A.", 1}};
    assert_int_equal(metrics_write(path, "s3://b", s, 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "temporary file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
