/* Replays saved inputs through a libFuzzer target without libFuzzer (any C compiler): every file is handed to
 * LLVMFuzzerTestOneInput, so `make unit` and `make check` catch a regression on the corpus and on every crash
 * reproducer kept there. The Makefile links this with tests/fuzz/fuzz_NAME.c into
 * BUILD/tests/replay_fuzz_NAME, with AddressSanitizer and UBSan when the compiler has them.
 *   replay_fuzz_NAME [DIR|FILE]...   without arguments: FUZZ_CORPUS (tests/fuzz/corpus/NAME, from the
 *                                    repository root, where make and scripts/check.sh run)
 * Each argument is one cmocka test; the files of a directory run in name order (names starting with '.' are
 * skipped). An input that crashes the target (abort, a signal, a sanitizer report) is named on stderr before
 * the process dies. TMPDIR points at a fresh directory (targets may write files) removed at the end. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
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

/* One argument: its files. */
struct input_set {
    char *name;
    char **files;
    size_t n, cap;
};

static const char *volatile g_current; /* the input being replayed, for the crash message */

/* Sanitizers report, then abort() (instead of _exit), so that the handler below names the input. */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);
const char *__asan_default_options(void)
{
    return "abort_on_error=1";
}
const char *__ubsan_default_options(void)
{
    return "abort_on_error=1:print_stacktrace=1";
}

static void on_crash(int sig)
{
    static const char pre[] = "\nreplay: the target crashed on the input ";
    const char *f = g_current;
    if (write(2, pre, sizeof pre - 1) < 0 || (f && write(2, f, strlen(f)) < 0) || write(2, "\n", 1) < 0) {
        /* nothing more to do */
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int add_file(struct input_set *set, const char *path)
{
    if (set->n == set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        char **t = realloc(set->files, nc * sizeof *t);
        if (!t) return -1;
        set->files = t;
        set->cap = nc;
    }
    if (!(set->files[set->n] = strdup(path))) return -1;
    set->n++;
    return 0;
}

static int dot_filter(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* A directory's regular files in name order, or the file itself. */
static int add_path(struct input_set *set, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return add_file(set, path);
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
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) rc = add_file(set, full);
        }
        free(full);
        free(names[i]);
    }
    free(names);
    return rc;
}

static void replay_one(const char *path)
{
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
    g_current = path;
    LLVMFuzzerTestOneInput(data, n);
    g_current = NULL;
    free(data);
}

static void replay_set(void **state)
{
    const struct input_set *set = *state;
    static const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_crash); /* over cmocka's */
    assert_true(set->n > 0);
    for (size_t i = 0; i < set->n; i++) replay_one(set->files[i]);
    print_message("replay: %zu input(s) from %s\n", set->n, set->name);
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
    static char *dflt[] = {(char *)FUZZ_CORPUS};
    char **paths = argc > 1 ? argv + 1 : dflt;
    size_t npaths = argc > 1 ? (size_t)argc - 1 : 1;
    struct input_set *sets = calloc(npaths, sizeof *sets);
    struct CMUnitTest *tests = calloc(npaths, sizeof *tests);
    if (!sets || !tests) return 1;
    for (size_t i = 0; i < npaths; i++) {
        sets[i].name = paths[i];
        if (add_path(&sets[i], paths[i]) != 0) return 1;
        if (sets[i].n == 0) {
            fprintf(stderr, "%s: no inputs in %s (a replay that tests nothing does not pass)\n", self, paths[i]);
            return 1;
        }
        tests[i] = (struct CMUnitTest){.name = paths[i], .test_func = replay_set, .initial_state = &sets[i]};
    }
    int rc;

    char tmp[] = "/tmp/replay-fuzz.XXXXXX";
    const char *base = getenv("TMPDIR");
    char *dir = NULL;
    if (asprintf(&dir, "%s/replay-fuzz.XXXXXX", base && *base ? base : "/tmp") < 0 || !mkdtemp(dir)) {
        free(dir);
        dir = mkdtemp(tmp) ? strdup(tmp) : NULL;
    }
    if (dir) setenv("TMPDIR", dir, 1);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);

    rc = _cmocka_run_group_tests(self, tests, npaths, NULL, NULL);

    if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    for (size_t i = 0; i < npaths; i++) {
        for (size_t k = 0; k < sets[i].n; k++) free(sets[i].files[k]);
        free(sets[i].files);
    }
    free(sets);
    free(tests);
    return rc;
}
