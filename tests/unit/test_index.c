/* Unit tests for the source-ETag index off the heap (manifest/index.c) and the external sort under it
 * (manifest/sort.c): many mappings over several loads against a model of the rules (the newest record wins, a
 * record with equal ETags removes a mapping of the same target object), lookups in key and random order,
 * the overlay of puts winning, absent keys, keys with bytes >= 0x80 (strcmp byte order), an empty index, a
 * load after lookups, and sorted runs compacted; the sort itself against a stable in-memory sort (many runs, NULL
 * and empty fields, fields longer than a run's read buffer, a run written and adopted back). Offline, temp files
 * only. */
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
#include "manifest/sort.h"

enum { N = 200000, LOADS = 4 };

static const struct manifest_header k_header = {.run_id = "20261202T000000Z-test", .tool_version = "test",
                                                .started = 1764633600, .source = "s3://src/", .target = "s3://dst/"};

/* The model: key i's mapping (have, size, target ETag variant v: "t<i>-<v>", source ETag "s<i>-<v>"). */
struct model {
    bool have;
    uint64_t size;
    int v;
};

static struct model *g_model;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* Key i: a few shapes, some with UTF-8 bytes >= 0x80 that sort after every ASCII byte. */
static void key_of(char *buf, size_t len, int i)
{
    static const char *const pre[] = {"a/", "photos/\xc3\xa9t\xc3\xa9/", "z/", "\xe2\x82\xac/", "\xf0\x9f\x98\x80 "};
    snprintf(buf, len, "%s%07d", pre[mix((uint64_t)i) % 5], i);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(buf, len, "%s/test_index.%d.%s", tmp && *tmp ? tmp : "/tmp", (int)getpid(), name);
}

static void add(struct manifest_writer *w, const char *key, uint64_t size, const char *etag, const char *tetag)
{
    struct manifest_object o = {.key = key, .size = size, .etag = etag, .last_modified = "m", .target_key = key,
                                .target_etag = tetag, .pass = 1};
    assert_int_equal(manifest_writer_add(w, &o), 0);
}

/* One load's records for key i, applied to the model as the index must: a new mapping, a removal of the
 * current one (same size and target ETag), a removal of another state (leaves it), or nothing. Some keys get
 * two records in one file (a mapping, then a removal of it). */
static void write_key(struct manifest_writer *w, int i, int load)
{
    char key[64], te[32], se[32];
    struct model *m = &g_model[i];
    uint64_t r = mix(((uint64_t)load << 32) | (uint64_t)i);
    key_of(key, sizeof key, i);
    switch (r % 8) {
    case 0: case 1: case 2: case 3: /* a mapping */
        m->have = true;
        m->size = r >> 40;
        m->v = load;
        snprintf(te, sizeof te, "t%d-%d", i, load);
        snprintf(se, sizeof se, "s%d-%d", i, load);
        add(w, key, m->size, se, te);
        if (r % 8 == 3 && (r >> 8) % 4 == 0) { /* and in the same file, a record saying it now matches */
            add(w, key, m->size, te, te);
            m->have = false;
        }
        break;
    case 4: /* equal ETags, this very target object: the mapping goes */
        snprintf(te, sizeof te, "t%d-%d", i, m->v);
        add(w, key, m->size, te, te);
        m->have = false;
        break;
    case 5: /* equal ETags, another size: the mapping stays */
        snprintf(te, sizeof te, "t%d-%d", i, m->v);
        add(w, key, m->size + 1, te, te);
        break;
    default: /* not in this file */
        break;
    }
}

static void write_load(const char *path, int load)
{
    char err[256] = "";
    unlink(path);
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    for (int k = 0; k < N; k++) write_key(w, (int)((uint64_t)k * 7919 % N), load); /* not in key order */
    assert_int_equal(manifest_writer_close(w), 0);
}

static size_t model_count(void)
{
    size_t n = 0;
    for (int i = 0; i < N; i++) n += g_model[i].have;
    return n;
}

static void check_key(struct manifest_index *idx, int i)
{
    char key[64], te[32], se[32];
    const struct model *m = &g_model[i];
    key_of(key, sizeof key, i);
    snprintf(te, sizeof te, "t%d-%d", i, m->v);
    snprintf(se, sizeof se, "s%d-%d", i, m->v);
    const char *got = manifest_index_get(idx, key, m->size, te);
    if (!m->have) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, se);
    assert_null(manifest_index_get(idx, key, m->size + 1, te)); /* another size */
}

/* Every key in key order, or the first n of a random order (each random lookup may decode a block). */
static void check_all(struct manifest_index *idx, const int *order, int n)
{
    for (int k = 0; k < n; k++) check_key(idx, order ? order[k] : k);
}

static void test_index_many_loads(void **state)
{
    (void)state;
    char paths[LOADS][256];
    g_model = calloc(N, sizeof *g_model);
    assert_non_null(g_model);
    struct manifest_index *idx = manifest_index_new();
    assert_non_null(idx);
    for (int l = 0; l < LOADS; l++) {
        char name[16];
        snprintf(name, sizeof name, "load%d", l);
        tmp_path(paths[l], sizeof paths[l], name);
        write_load(paths[l], l);
        int corrupt = 0;
        assert_int_equal(manifest_index_load(idx, paths[l], &corrupt), 0);
        assert_int_equal(corrupt, 0);
    }
    assert_int_equal(manifest_index_seal(idx), 0);
    size_t want = model_count();
    assert_true(want > N / 4 && want < N);
    assert_int_equal(manifest_index_count(idx), want);

    /* key order (the order of the join), then a random order */
    int *order = malloc(N * sizeof *order);
    assert_non_null(order);
    for (int k = 0; k < N; k++) order[k] = k;
    check_all(idx, NULL, N);
    for (int k = N - 1; k > 0; k--) {
        int j = (int)(mix((uint64_t)k + 99) % (uint64_t)(k + 1)), t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    check_all(idx, order, N / 10);

    /* absent keys: before the first, between, after the last */
    assert_null(manifest_index_get(idx, "", 0, ""));
    assert_null(manifest_index_get(idx, "a/", 0, "t"));
    assert_null(manifest_index_get(idx, "m", 0, "t"));
    assert_null(manifest_index_get(idx, "\xff\xff", 0, "t"));

    /* the overlay wins: a new state of a loaded key, a key never loaded */
    int i = 0;
    while (!g_model[i].have) i++;
    char key[64], te[32];
    key_of(key, sizeof key, i);
    snprintf(te, sizeof te, "t%d-%d", i, g_model[i].v);
    assert_int_equal(manifest_index_put(idx, key, 1, "new-t", "new-s"), 0);
    assert_string_equal(manifest_index_get(idx, key, 1, "new-t"), "new-s");
    assert_null(manifest_index_get(idx, key, g_model[i].size, te)); /* the loaded mapping is superseded */
    assert_int_equal(manifest_index_put(idx, "a/0000000-new", 7, "nt", "ns"), 0);
    assert_string_equal(manifest_index_get(idx, "a/0000000-new", 7, "nt"), "ns");
    assert_int_equal(manifest_index_count(idx), want + 1);
    g_model[i] = (struct model){.have = true, .size = 1, .v = -1};

    /* a load after lookups applies on top of everything, the overlay included */
    int j = i + 1;
    while (!g_model[j].have) j++;
    char path[256], kj[64], tj[32];
    tmp_path(path, sizeof path, "late");
    unlink(path);
    char err[256] = "";
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    key_of(kj, sizeof kj, j);
    snprintf(tj, sizeof tj, "t%d-%d", j, g_model[j].v);
    add(w, kj, g_model[j].size, tj, tj);   /* removes j's mapping */
    add(w, key, 1, "new-t", "new-t");       /* removes the overlay's mapping of i */
    assert_int_equal(manifest_writer_close(w), 0);
    assert_int_equal(manifest_index_load(idx, path, NULL), 0);
    assert_null(manifest_index_get(idx, kj, g_model[j].size, tj));
    assert_null(manifest_index_get(idx, key, 1, "new-t"));
    assert_string_equal(manifest_index_get(idx, "a/0000000-new", 7, "nt"), "ns");
    assert_int_equal(manifest_index_count(idx), want - 1);
    g_model[j].have = false;
    g_model[i].have = false;
    for (int k = 0; k < N; k += 97) check_key(idx, k);

    manifest_index_free(idx);
    for (int l = 0; l < LOADS; l++) unlink(paths[l]);
    unlink(path);
    free(order);
    free(g_model);
}

static void test_index_empty(void **state)
{
    (void)state;
    struct manifest_index *idx = manifest_index_new();
    assert_int_equal(manifest_index_seal(idx), 0);
    assert_int_equal(manifest_index_count(idx), 0);
    assert_null(manifest_index_get(idx, "a", 1, "t"));
    char path[256], err[256] = "";
    tmp_path(path, sizeof path, "empty");
    unlink(path);
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    add(w, "same", 1, "e", "e"); /* equal ETags only: nothing to map */
    assert_int_equal(manifest_writer_close(w), 0);
    assert_int_equal(manifest_index_load(idx, path, NULL), 0);
    assert_int_equal(manifest_index_count(idx), 0);
    assert_null(manifest_index_get(idx, "same", 1, "e"));
    assert_null(manifest_index_get(idx, "", 0, ""));
    assert_int_equal(manifest_index_seal(NULL), -1);
    assert_int_equal(manifest_index_count(NULL), 0);
    manifest_index_free(idx);
    unlink(path);
}

/* The index from a restore point (the base run's saved point): its differing ETags are mapped; a point whose
 * ETags are all equal adds nothing, and is not read unless a mapping was loaded before it (then an equal record
 * of the same target object removes that mapping). */
static void test_index_load_point(void **state)
{
    (void)state;
    char path[256], err[256] = "";
    tmp_path(path, sizeof path, "point");
    for (int differs = 0; differs < 2; differs++) {
        unlink(path);
        struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        add(w, "a", 1, "s-a", "s-a");
        add(w, "b", 2, "s-b", differs ? "t-b-1" : "s-b");
        add(w, "c", 3, "s-c", "s-c");
        assert_int_equal(manifest_writer_close(w), 0);
        struct manifest_point *p = manifest_point_build(path, NULL, 0, err, sizeof err);
        assert_non_null(p);
        assert_int_equal(manifest_point_stats(p)->etag_differs, (uint64_t)differs);
        struct manifest_index *idx = manifest_index_new();
        assert_int_equal(manifest_index_load_point(idx, p), 0);
        assert_int_equal(manifest_index_seal(idx), 0);
        assert_int_equal(manifest_index_count(idx), (size_t)differs);
        const char *got = manifest_index_get(idx, "b", 2, "t-b-1");
        if (differs) assert_string_equal(got, "s-b");
        else assert_null(got);
        manifest_index_free(idx);
        /* a mapping loaded first (an older run said c's target ETag was another): the equal point removes it */
        char older[256];
        tmp_path(older, sizeof older, "older");
        unlink(older);
        w = manifest_writer_open(older, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        add(w, "c", 3, "s-c-old", "s-c");
        assert_int_equal(manifest_writer_close(w), 0);
        idx = manifest_index_new();
        assert_int_equal(manifest_index_load(idx, older, NULL), 0);
        assert_int_equal(manifest_index_load_point(idx, p), 0);
        assert_int_equal(manifest_index_seal(idx), 0);
        assert_null(manifest_index_get(idx, "c", 3, "s-c"));
        assert_int_equal(manifest_index_count(idx), (size_t)differs);
        manifest_index_free(idx);
        manifest_point_free(p);
        unlink(older);
    }
    unlink(path);
}

/* The sort alone: 3 records in memory at a time, so hundreds of runs, compacted past MANIFEST_SORT_MAX_RUNS;
 * every key's records come back as one group, in the order added, keys in byte order. */
static size_t keep_all(const struct manifest_sort_rec *g, size_t n)
{
    (void)g;
    (void)n;
    return 0;
}

static void test_sort_compacts(void **state)
{
    (void)state;
    enum { KEYS = 150, PER = 3 };
    char err[256] = "";
    struct manifest_sort *s = manifest_sort_new(NULL, 3, 2, keep_all);
    assert_non_null(s);
    for (int r = 0; r < PER; r++) {
        for (int k = 0; k < KEYS; k++) {
            char key[32], v[32];
            snprintf(key, sizeof key, k % 2 ? "\xc3\xa9%03d" : "k%03d", (k * 37) % KEYS);
            snprintf(v, sizeof v, "%d", r);
            struct manifest_sort_rec rec = {.f = {strdup(key), strdup(v)}, .size = (uint64_t)r};
            assert_int_equal(manifest_sort_add(s, &rec, err, sizeof err), 0);
        }
    }
    assert_int_equal(manifest_sort_finish(s, err, sizeof err), 0);
    assert_true(manifest_sort_runs(s) > MANIFEST_SORT_MAX_RUNS);
    for (int pass = 0; pass < 2; pass++) {
        const struct manifest_sort_rec *g;
        size_t n, groups = 0;
        char prev[32] = "";
        int got;
        while ((got = manifest_sort_next(s, &g, &n, err, sizeof err)) == 1) {
            assert_true(groups == 0 || strcmp(prev, g[0].f[0]) < 0);
            snprintf(prev, sizeof prev, "%s", g[0].f[0]);
            assert_int_equal(n, PER);
            for (size_t i = 0; i < n; i++) {
                assert_string_equal(g[i].f[0], prev);
                assert_int_equal(g[i].size, i);
            }
            groups++;
        }
        assert_int_equal(got, 0);
        assert_int_equal(groups, KEYS);
        assert_int_equal(manifest_sort_rewind(s), 0);
    }
    manifest_sort_free(s);
}

/* ---- the sort against a reference: records (key, value) in the order added, stably sorted by key ---- */

struct ref {
    char key[16];
    char *val; /* NULL, "", short, or longer than the sort's read buffer */
    uint64_t seq;
};

static int ref_cmp(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static char *make_val(unsigned r, uint64_t i)
{
    if (r % 11 == 0) return NULL;
    if (r % 7 == 0) return strdup("");
    size_t len = r % 97 == 0 ? 70000 + r % 1000 : 1 + r % 40;
    char *v = malloc(len + 1);
    for (size_t j = 0; j < len; j++) v[j] = (char)('a' + (i + j) % 26);
    v[len] = '\0';
    return v;
}

/* Reads every group of s and checks it against ref[0..n) (sorted): same keys, same records in the same order. */
static void check_against(struct manifest_sort *s, const struct ref *ref, size_t n)
{
    const struct manifest_sort_rec *g;
    size_t gn, at = 0;
    char err[256];
    int got;
    while ((got = manifest_sort_next(s, &g, &gn, err, sizeof err)) == 1) {
        assert_true(gn >= 1);
        for (size_t i = 0; i < gn; i++, at++) {
            assert_true(at < n);
            assert_string_equal(g[i].f[0], ref[at].key);
            if (ref[at].val) assert_string_equal(g[i].f[1], ref[at].val);
            else assert_null(g[i].f[1]);
            assert_int_equal(g[i].size, ref[at].seq);
        }
        assert_true(at == n || strcmp(ref[at].key, g[0].f[0]) != 0); /* the whole key in one group */
    }
    assert_int_equal(got, 0);
    assert_int_equal(at, n);
}

static void test_sort_matches_stable_sort(void **state)
{
    (void)state;
    enum { RECS = 6000 };
    static const size_t batches[] = {1, 7, 100, 6000};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        struct ref *ref = calloc(RECS, sizeof *ref);
        struct manifest_sort *s = manifest_sort_new(NULL, batches[b], 2, NULL);
        assert_non_null(ref);
        assert_non_null(s);
        char err[256] = "";
        unsigned r = 12345;
        for (uint64_t i = 0; i < RECS; i++) {
            r = r * 1103515245u + 12345u;
            snprintf(ref[i].key, sizeof ref[i].key, "%c%03u", (r >> 8) % 2 ? 'k' : '\xc3', (r >> 12) % 700);
            ref[i].val = make_val(r >> 4, i);
            ref[i].seq = i;
            struct manifest_sort_rec rec = {.f = {strdup(ref[i].key), ref[i].val ? strdup(ref[i].val) : NULL},
                                            .size = i};
            assert_int_equal(manifest_sort_add(s, &rec, err, sizeof err), 0);
        }
        assert_int_equal(manifest_sort_finish(s, err, sizeof err), 0);
        qsort(ref, RECS, sizeof *ref, ref_cmp);
        check_against(s, ref, RECS);
        assert_int_equal(manifest_sort_rewind(s), 0);
        check_against(s, ref, RECS);

        /* written as one run and adopted by another sort: the same records */
        FILE *f = manifest_sort_temp_file(NULL);
        assert_non_null(f);
        assert_int_equal(fputs("header", f) >= 0, 1);
        assert_int_equal(manifest_sort_write_run(s, f, NULL, err, sizeof err), 0);
        assert_int_equal(fseek(f, 6, SEEK_SET), 0);
        struct manifest_sort *t = manifest_sort_new(NULL, 1, 2, NULL);
        assert_int_equal(manifest_sort_adopt_run(t, f, err, sizeof err), 0);
        check_against(t, ref, RECS);
        /* an adopted run (records after a header) written again: its bytes copied from where they start */
        FILE *f2 = manifest_sort_temp_file(NULL);
        assert_non_null(f2);
        assert_int_equal(manifest_sort_write_run(t, f2, NULL, err, sizeof err), 0);
        assert_int_equal(fseek(f2, 0, SEEK_SET), 0);
        struct manifest_sort *t2 = manifest_sort_new(NULL, 1, 2, NULL);
        assert_int_equal(manifest_sort_adopt_run(t2, f2, err, sizeof err), 0);
        check_against(t2, ref, RECS);
        manifest_sort_free(t2);
        manifest_sort_free(t);
        check_against(s, ref, RECS); /* write_run rewound s */
        /* merged into one run, then written: the same records */
        assert_int_equal(manifest_sort_merge_runs(s, NULL, NULL, err, sizeof err), 0);
        check_against(s, ref, RECS);
        f2 = manifest_sort_temp_file(NULL);
        assert_int_equal(manifest_sort_write_run(s, f2, NULL, err, sizeof err), 0);
        assert_int_equal(fseek(f2, 0, SEEK_SET), 0);
        t2 = manifest_sort_new(NULL, 1, 2, NULL);
        assert_int_equal(manifest_sort_adopt_run(t2, f2, err, sizeof err), 0);
        check_against(t2, ref, RECS);
        manifest_sort_free(t2);

        /* a truncated run file is an error, not a short read */
        f = manifest_sort_temp_file(NULL);
        assert_int_equal(manifest_sort_write_run(s, f, NULL, err, sizeof err), 0);
        long len = ftell(f);
        assert_int_equal(ftruncate(fileno(f), len - 3), 0);
        assert_int_equal(fseek(f, 0, SEEK_SET), 0);
        t = manifest_sort_new(NULL, 1, 2, NULL);
        assert_int_equal(manifest_sort_adopt_run(t, f, err, sizeof err), 0);
        const struct manifest_sort_rec *g;
        size_t gn;
        int got;
        while ((got = manifest_sort_next(t, &g, &gn, err, sizeof err)) == 1) continue;
        assert_int_equal(got, -1);
        manifest_sort_free(t);

        manifest_sort_free(s);
        for (size_t i = 0; i < RECS; i++) free(ref[i].val);
        free(ref);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_many_loads),
        cmocka_unit_test(test_index_empty),
        cmocka_unit_test(test_index_load_point),
        cmocka_unit_test(test_sort_compacts),
        cmocka_unit_test(test_sort_matches_stable_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
