/* libFuzzer target for replicator/cli.c: the input, split at NUL bytes and newlines, becomes the arguments of
 * `replicate ...` for cli_parse, and each piece also goes to cli_parse_s3_url, cli_parse_duration and
 * cli_parse_size. On success the results must be consistent (ranges the parser promises, URLs split into a
 * bucket and a prefix that is "" or ends in '/'). cli_parse prints usage errors and --help: stdout and stderr
 * point at /dev/null during the call (sanitizer reports go to file descriptor 2 and still show).
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I. $(pkg-config --cflags libcurl libxml-2.0
 *        libcjson) tests/fuzz/fuzz_cli.c replicator/cli.c s3/config.c s3/error.c -lcurl -o fuzz_cli; seeds in
 *        tests/fuzz/corpus/cli/ (make fuzz does all of this). */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replicator/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "fuzz_cli: check failed at line %d: %s\n", __LINE__, #cond);                    \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#define MAX_ARGS 64
#define MAX_INPUT 4096

static FILE *devnull(void)
{
    static FILE *f;
    if (!f && !(f = fopen("/dev/null", "w"))) abort();
    return f;
}

static void check_url(const char *s)
{
    char *bucket = (char *)s, *prefix = (char *)s, err[512];
    err[0] = '\0';
    if (cli_parse_s3_url(s, &bucket, &prefix, err, sizeof err) == 0) {
        CHECK(strncmp(s, "s3://", 5) == 0);
        CHECK(bucket && bucket[0] && strlen(bucket) <= 255 && !strchr(bucket, '/'));
        CHECK(prefix && (!prefix[0] || prefix[strlen(prefix) - 1] == '/'));
        /* "s3://" bucket ["/" prefix]: the pieces give the URL back, but for the '/' added to a prefix */
        size_t bl = strlen(bucket), pl = strlen(prefix);
        CHECK(strncmp(s + 5, bucket, bl) == 0);
        if (pl) CHECK(s[5 + bl] == '/' && strncmp(s + 6 + bl, prefix, pl - 1) == 0);
    } else {
        CHECK(bucket == NULL && prefix == NULL && err[0]);
    }
    free(bucket);
    free(prefix);
}

static void check_numbers(const char *s)
{
    double d = cli_parse_duration(s);
    CHECK(d == -1 || d >= 0); /* also false for NaN */
    uint64_t n = cli_parse_size(s);
    CHECK(n <= 1000000000000000ull);
}

/* getopt_long keeps a pointer into the previous argv between calls (glibc's __nextchar): setting optind to 0
 * makes the next call start from scratch. cli_parse sets optind to 1, which does not. */
static void getopt_reset(void)
{
    static char arg0[] = "x";
    static char *argv0[] = {arg0, NULL};
    static const struct option none[] = {{0, 0, 0, 0}};
    optind = 0;
    opterr = 0;
    (void)getopt_long(1, argv0, "", none, NULL);
}

static void check_parse(int argc, char **argv)
{
    struct rep_options o;
    FILE *out = stdout, *err = stderr;
    getopt_reset();
    stdout = stderr = devnull();
    int rc = cli_parse(argc, argv, &o);
    stdout = out;
    stderr = err;
    CHECK(rc == -1 || rc == 0 || rc == EXIT_USAGE);
    if (rc == 0) {
        CHECK(o.dst_bucket && o.dst_bucket[0] && o.dst_prefix);
        CHECK(!o.dst_prefix[0] || o.dst_prefix[strlen(o.dst_prefix) - 1] == '/');
        if (o.mode != MODE_STATUS && o.mode != MODE_DRILL) { /* those take one URL, the backup */
            CHECK(o.src_bucket && o.src_bucket[0] && o.src_prefix);
            CHECK(!o.src_prefix[0] || o.src_prefix[strlen(o.src_prefix) - 1] == '/');
        }
        CHECK(o.jobs >= 1 && o.jobs <= 4096);
        CHECK(o.max_passes >= 1 && o.max_passes <= 1000);
        CHECK(o.retries >= 1 && o.retries <= 100);
        CHECK(o.timeout >= 1 && o.timeout <= 86400);
        CHECK(o.part_size == 0 || (o.part_size >= (5u << 20) && o.part_size <= (5ull << 30)));
        CHECK(o.multipart_threshold > 0 && o.multipart_threshold <= (5ull << 30));
        CHECK(o.copy_threshold > 0 && o.copy_threshold <= (5ull << 30));
        CHECK(o.max_memory >= (8u << 20) && o.max_memory >= o.part_size);
        CHECK(o.settle >= 0 && o.grace >= 0 && o.maint_max > 0 && o.max_age >= 0);
        CHECK(o.sample > 0 && o.sample <= 100);
        CHECK(o.shard_n == 0 || (o.shard_n <= SHARDS_MAX && o.shard_i >= 0 && o.shard_i < o.shard_n));
        if (o.shard_n) { /* a backup run; its key range comes from the backup's key sample, later (shard.c) */
            CHECK(o.mode == MODE_REPLICATE);
            CHECK(o.start_after == NULL && o.end_before == NULL);
        }
        CHECK(!o.shared_run_id || (o.mode == MODE_REPLICATE && strlen(o.shared_run_id) <= 64));
        CHECK((o.maint_on == NULL) == (o.maint_off == NULL) && !(o.maint_file && o.maint_on));
    }
    cli_options_free(&o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT) return 0;
    char *buf = malloc(size + 1);
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    static char arg0[] = "replicate";
    argv[argc++] = arg0;
    /* pieces at NUL and newline; each is its own malloc'd string, so ASan sees reads past its end */
    for (size_t i = 0, start = 0; i <= size && argc <= MAX_ARGS; i++) {
        if (i < size && buf[i] != '\0' && buf[i] != '\n') continue;
        size_t n = i - start;
        char *a = malloc(n + 1);
        if (!a) break;
        memcpy(a, buf + start, n);
        a[n] = '\0';
        argv[argc++] = a;
        start = i + 1;
    }
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++) {
        check_url(argv[i]);
        check_numbers(argv[i]);
    }
    check_parse(argc, argv);
    for (int i = 1; i < argc; i++) free(argv[i]);
    free(buf);
    return 0;
}
