/* Unit tests for manifest/chain.c and manifest_point_build_chain: the stored copies of runs (full, or deltas on
 * the run before), resolved back into restore points that equal the runs' own; no-change deltas stay small;
 * broken chains (a link skipped, a delta alone, a corrupt delta) are refused, never read as less. Offline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/chain.h"
#include "manifest/manifest.h"
#include "manifest/point.h"

#define NKEYS 200
#define RUNS 6
#define SMALL_SORT 7 /* records per sorted run: every point is merged from many */

static char g_dir[256];

/* What the source holds at each run: per key an ETag generation (0 = absent) and a Last-Modified generation. */
struct state {
    int gen[NKEYS];
    int lm[NKEYS];
};

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

/* The run's own manifest, as a run writes it: pass 1 in a scrambled order, later-pass copies and deletions. */
static void write_full(const char *name, const struct state *s, int run, bool later_pass)
{
    char path[512], err[256], etag[32], ver[32], lm[40], key[32];
    path_of(path, sizeof path, name);
    unlink(path);
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    char id[16];
    snprintf(id, sizeof id, "run%d", run);
    struct manifest_header h = {.run_id = id, .tool_version = "t", .started = run, .source = "s3://a",
                                .target = "s3://b"};
    assert_int_equal(manifest_writer_header(w, &h), 0);
    for (int j = 0; j < NKEYS; j++) {
        int i = (j * 37) % NKEYS; /* copies finish out of order */
        if (!s->gen[i]) continue;
        snprintf(key, sizeof key, "k%03d%s", i, i % 10 == 3 ? " sp%ce" : "");
        snprintf(etag, sizeof etag, "e%d-%d", i, s->gen[i]);
        snprintf(ver, sizeof ver, "v%d-%d", i, s->gen[i]);
        snprintf(lm, sizeof lm, "2026-12-%02dT00:00:00Z", 1 + s->lm[i] % 28);
        struct manifest_object o = {.key = key, .size = (uint64_t)i * 10 + (uint64_t)s->gen[i], .etag = etag,
                                    .last_modified = lm, .target_key = key, .target_etag = etag,
                                    .version_id = i % 17 ? ver : NULL, .pass = 1};
        assert_int_equal(manifest_writer_add(w, &o), 0);
    }
    struct manifest_pass p = {.pass = 1, .listed = NKEYS};
    assert_int_equal(manifest_writer_pass(w, &p), 0);
    if (later_pass) { /* pass 2: a key copied again, one deleted, one that never was (ignored) */
        struct manifest_object o = {.key = "k000", .size = 1, .etag = "late", .last_modified = "x",
                                    .target_key = "k000", .target_etag = "late", .version_id = "vlate", .pass = 2};
        assert_int_equal(manifest_writer_add(w, &o), 0);
        struct manifest_deleted d = {.key = "k001", .target_key = "k001", .pass = 2};
        assert_int_equal(manifest_writer_deleted(w, &d), 0);
        struct manifest_deleted d2 = {.key = "nothing", .target_key = "nothing", .pass = 2};
        assert_int_equal(manifest_writer_deleted(w, &d2), 0);
    }
    struct manifest_trailer t = {.ended = run, .result = "ok", .passes = later_pass ? 2 : 1};
    assert_int_equal(manifest_writer_trailer(w, &t), 0);
    assert_int_equal(manifest_writer_close(w), 0);
}

static struct manifest_point *point_of(const char *name)
{
    char path[512], err[512] = "";
    path_of(path, sizeof path, name);
    struct manifest_point *p = manifest_point_build(path, g_dir, SMALL_SORT, err, sizeof err);
    if (!p) fail_msg("%s: %s", name, err);
    return p;
}

static struct manifest_point *chain_of(const char *const *names, size_t n, char *err, size_t errlen)
{
    char paths[RUNS + 2][512];
    const char *pp[RUNS + 2];
    for (size_t i = 0; i < n; i++) {
        path_of(paths[i], sizeof paths[i], names[i]);
        pp[i] = paths[i];
    }
    return manifest_point_build_chain(pp, names, n, g_dir, SMALL_SORT, err, errlen);
}

/* Both restore points hold the same entries, records and all. */
static void expect_same(struct manifest_point *a, struct manifest_point *b)
{
    const struct manifest_point_entry *x, *y;
    char err[256];
    assert_int_equal(manifest_point_rewind(a), 0);
    assert_int_equal(manifest_point_rewind(b), 0);
    for (;;) {
        int ga = manifest_point_next(a, &x, err, sizeof err), gb = manifest_point_next(b, &y, err, sizeof err);
        assert_int_equal(ga, gb);
        if (ga != 1) break;
        assert_string_equal(x->key, y->key);
        assert_string_equal(x->record, y->record);
        assert_string_equal(x->etag, y->etag);
        if (x->version_id) assert_string_equal(x->version_id, y->version_id);
        else assert_null(y->version_id);
    }
    assert_int_equal(manifest_point_stats(a)->entries, manifest_point_stats(b)->entries);
    assert_string_equal(manifest_point_stats(a)->digest, manifest_point_stats(b)->digest);
}

static off_t size_of(const char *name)
{
    char path[512];
    struct stat st;
    path_of(path, sizeof path, name);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Runs 1..RUNS with adds, changes, deletions, a no-change run and a later pass; each stored on the one before. */
static void test_chain_resolves_every_run(void **st)
{
    (void)st;
    struct state s = {0};
    for (int i = 0; i < NKEYS; i++) s.gen[i] = i % 5 ? 1 : 0; /* a fifth come later */
    const char *stored[RUNS];
    static char names[RUNS][32];
    struct manifest_point *prev = NULL;
    int depth = 0;
    for (int run = 1; run <= RUNS; run++) {
        if (run == 2) for (int i = 0; i < NKEYS; i += 5) s.gen[i] = 1;               /* adds */
        if (run == 3) for (int i = 1; i < NKEYS; i += 9) s.gen[i]++;                 /* changes */
        if (run == 3) for (int i = 2; i < NKEYS; i += 11) s.gen[i] = 0;              /* deletions */
        if (run == 5) for (int i = 4; i < NKEYS; i += 13) s.lm[i]++;                 /* only Last-Modified */
        if (run == 6) for (int i = 2; i < NKEYS; i += 22) s.gen[i] = 7;              /* deleted ones back */
        /* run 4: no change */
        char full[32];
        snprintf(full, sizeof full, "run%d.jsonl", run);
        snprintf(names[run - 1], sizeof names[run - 1], "run%d.jsonl.gz", run);
        stored[run - 1] = names[run - 1];
        write_full(full, &s, run, run == 5);
        struct manifest_point *pt = point_of(full);
        struct manifest_base base = {.name = run > 1 ? names[run - 2] : NULL, .depth = depth, .point = prev};
        struct manifest_store_info info;
        char in[512], out[512], err[512] = "";
        path_of(in, sizeof in, full);
        path_of(out, sizeof out, names[run - 1]);
        if (manifest_store_write(in, pt, prev ? &base : NULL, out, true, &info, err, sizeof err) != 0)
            fail_msg("run %d: %s", run, err);
        assert_int_equal(info.delta, run > 1);
        depth = info.depth;
        assert_int_equal(depth, run - 1);
        if (run == 4) {
            assert_int_equal(info.records, 0);
            assert_true(size_of(names[run - 1]) < 1024);
        }
        if (run == 3) assert_int_equal(info.records, 23 + 18 - 2); /* 23 changed, 18 deleted, 2 (46, 145) both */
        /* the chain up to this run gives exactly the run's own restore point */
        struct manifest_point *c = chain_of(stored, (size_t)run, err, sizeof err);
        if (!c) fail_msg("run %d: %s", run, err);
        expect_same(pt, c);
        manifest_point_free(c);
        manifest_point_free(prev);
        prev = pt;
    }
    manifest_point_free(prev);

    char err[512] = "";
    /* a link left out: run 5's delta is not on run 3's */
    const char *skip[] = {stored[0], stored[1], stored[2], stored[4]};
    assert_null(chain_of(skip, 4, err, sizeof err));
    assert_non_null(strstr(err, "its base is another manifest"));
    /* a delta alone is never a restore point */
    assert_null(chain_of(&stored[3], 1, err, sizeof err));
    assert_non_null(strstr(err, "delta"));
    /* a chain without its full manifest */
    assert_null(chain_of(&stored[1], 2, err, sizeof err));
}

/* A delta that lost a record (a corrupt or replaced copy) does not give the point it recorded: refused. */
static void test_chain_corrupt_delta_refused(void **st)
{
    (void)st;
    struct state s = {0};
    for (int i = 0; i < NKEYS; i++) s.gen[i] = 1;
    write_full("a.jsonl", &s, 1, false);
    for (int i = 0; i < 20; i++) s.gen[i] = 2;
    write_full("b.jsonl", &s, 2, false);
    struct manifest_point *pa = point_of("a.jsonl"), *pb = point_of("b.jsonl");
    char out[512], in[512], err[512] = "";
    struct manifest_store_info info;
    path_of(in, sizeof in, "a.jsonl");
    path_of(out, sizeof out, "a.jsonl.gz");
    assert_int_equal(manifest_store_write(in, pa, NULL, out, true, &info, err, sizeof err), 0);
    struct manifest_base base = {.name = "a.jsonl.gz", .depth = 0, .point = pa};
    path_of(in, sizeof in, "b.jsonl");
    path_of(out, sizeof out, "b.jsonl");
    char plain[512];
    path_of(plain, sizeof plain, "b.delta.jsonl");
    assert_int_equal(manifest_store_write(in, pb, &base, plain, false, &info, err, sizeof err), 0);
    assert_true(info.delta);
    assert_int_equal(info.records, 20);
    /* drop its last record line */
    FILE *f = fopen(plain, "r");
    char bad[512];
    path_of(bad, sizeof bad, "b.jsonl.gz");
    FILE *g = fopen(bad, "w");
    char line[70000];
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines++;
    rewind(f);
    for (int i = 0; fgets(line, sizeof line, f); i++)
        if (i < lines - 1) fputs(line, g);
    fclose(f);
    fclose(g);
    const char *names[] = {"a.jsonl.gz", "b.jsonl.gz"};
    assert_null(chain_of(names, 2, err, sizeof err));
    assert_non_null(strstr(err, "corrupt"));
    /* the intact plain delta resolves */
    rename(plain, bad);
    struct manifest_point *c = chain_of(names, 2, err, sizeof err);
    assert_non_null(c);
    expect_same(pb, c);
    manifest_point_free(c);
    manifest_point_free(pa);
    manifest_point_free(pb);
}

/* A delta is not worth it when most of the bucket changed, nor past the longest chain: written full. */
static void test_chain_falls_back_to_full(void **st)
{
    (void)st;
    struct state s = {0};
    for (int i = 0; i < NKEYS; i++) s.gen[i] = 1;
    write_full("x.jsonl", &s, 1, false);
    for (int i = 0; i < NKEYS; i++) s.gen[i] = 2;
    write_full("y.jsonl", &s, 2, false);
    struct manifest_point *px = point_of("x.jsonl"), *py = point_of("y.jsonl");
    char in[512], out[512], err[512] = "";
    struct manifest_store_info info;
    struct manifest_base base = {.name = "x.jsonl", .depth = 0, .point = px};
    path_of(in, sizeof in, "y.jsonl");
    path_of(out, sizeof out, "y.jsonl.gz");
    assert_int_equal(manifest_store_write(in, py, &base, out, true, &info, err, sizeof err), 0);
    assert_false(info.delta);
    assert_int_equal(info.records, NKEYS);
    assert_non_null(info.why_full);
    base.depth = MANIFEST_CHAIN_MAX_DEPTH;
    assert_int_equal(manifest_store_write(in, px, &base, out, true, &info, err, sizeof err), 0);
    assert_false(info.delta);
    /* the full copy reads alone, and its summary comes first */
    const char *one[] = {"y.jsonl.gz"};
    struct manifest_point *c = chain_of(one, 1, err, sizeof err);
    assert_non_null(c);
    expect_same(px, c);
    manifest_point_free(c);
    struct manifest_summary sum;
    assert_int_equal(manifest_summary_read(out, &sum, err, sizeof err), 0);
    assert_true(sum.trailer_found);
    assert_null(sum.base);
    assert_true(sum.have_point);
    assert_int_equal(sum.point_entries, NKEYS);
    manifest_summary_free(&sum);
    manifest_point_free(px);
    manifest_point_free(py);
}

static int setup(void **st)
{
    (void)st;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_chain.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_resolves_every_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_corrupt_delta_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_falls_back_to_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
