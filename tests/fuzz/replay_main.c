/* Replays saved inputs through a libFuzzer target without libFuzzer (any C compiler): each file is one cmocka
 * test that hands its bytes to LLVMFuzzerTestOneInput, so `make unit` and `make check` catch a regression on
 * the corpus and on every crash reproducer kept there. The Makefile links this with tests/fuzz/fuzz_NAME.c
 * into BUILD/tests/replay_fuzz_NAME, with AddressSanitizer and UBSan when the compiler has them.
 *   replay_fuzz_NAME [DIR|FILE]...   without arguments: FUZZ_CORPUS (tests/fuzz/corpus/NAME, from the
 *                                    repository root, where make and scripts/check.sh run)
 * Files in a directory run in name order; names starting with '.' are skipped. TMPDIR points at a fresh
 * directory for the run (targets may write files there) which is removed at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef FUZZ_CORPUS
#error "build with -DFUZZ_CORPUS='\"tests/fuzz/corpus/NAME\"'"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static struct CMUnitTest *g_tests;
static size_t g_n, g_cap;

static int add_file(const char *path)
{
    if (g_n == g_cap) {
        size_t nc = g_cap ? g_cap * 2 : 64;
        struct CMUnitTest *t = realloc(g_tests, nc * sizeof *t);
        if (!t) return -1;
        g_tests = t;
        g_cap = nc;
    }
    char *p = strdup(path);
    if (!p) return -1;
    g_tests[g_n++] = (struct CMUnitTest){.name = p, .test_func = NULL, .initial_state = p};
    return 0;
}

static int dot_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* A directory's regular files in name order, or the file itself. */
static int add_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return add_file(path);
    struct dirent **names;
    int n = scandir(path, &names, dot_filter, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *full = NULL;
        if (rc == 0 && asprintf(&full, "%s/%s", path, names[i]->d_name) >= 0) {
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) rc = add_file(full);
        }
        free(full);
        free(names[i]);
    }
    free(names);
    return rc;
}

static void replay_one(void **state)
{
    const char *path = *state;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            assert_non_null(nb);
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    assert_int_equal(ferror(f), 0);
    fclose(f);
    /* exactly sized, as libFuzzer hands it over: a read past the end is a sanitizer error */
    uint8_t *data = malloc(n ? n : 1);
    assert_non_null(data);
    memcpy(data, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++) rc = add_path(argv[i]);
    } else {
        rc = add_path(FUZZ_CORPUS);
    }
    if (rc != 0) return 1;
    if (g_n == 0) {
        fprintf(stderr, "%s: no inputs to replay (a replay that tests nothing does not pass)\n", self);
        return 1;
    }
    for (size_t i = 0; i < g_n; i++) g_tests[i].test_func = replay_one;

    char tmp[] = "/tmp/replay-fuzz.XXXXXX";
    const char *base = getenv("TMPDIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/replay-fuzz.XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(dir)) {
        free(dir);
        dir = mkdtemp(tmp) ? strdup(tmp) : NULL;
    }
    if (dir) setenv("TMPDIR", dir, 1);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);

    rc = _cmocka_run_group_tests(self, g_tests, g_n, NULL, NULL);

    if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    for (size_t i = 0; i < g_n; i++) free((void *)g_tests[i].name);
    free(g_tests);
    return rc;
}
