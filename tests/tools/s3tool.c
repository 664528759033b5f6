/* s3tool: a small test and demo helper built on the project's S3 layer (so it is fast: one loop, many
 * requests in flight). Credentials and endpoint from the AWS environment (AWS_ACCESS_KEY_ID, ...,
 * AWS_ENDPOINT_URL).
 *   s3tool mkbucket BUCKET [--versioned]
 *   s3tool fill BUCKET PREFIX COUNT MINSIZE MAXSIZE [SEED]   objects PREFIX000000.. with random content
 *                                  (a PREFIX with {uuid} in it: a random UUID there instead, e.g. a/{uuid}.jpg)
 *   s3tool put BUCKET KEY SIZE [SEED]                          one object (multipart above 16 MiB)
 *   s3tool writer BUCKET PREFIX LOG [--flag FILE] [--interval MS] [--max N] [--stop-on-flag]
 *       writes small objects one after another until SIGTERM, skipping while FILE exists (the app's
 *       maintenance flag; with --stop-on-flag it exits once it has seen the flag, like an app taken down
 *       for a deploy); appends "KEY MD5" for every object the server confirmed to LOG. */
#include <ev.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "s3/client.h"
#include "s3/config.h"
#include "s3/ops.h"

static struct s3_loop *g_loop;
static struct s3_client *g_c;

static void die(const char *msg)
{
    fprintf(stderr, "s3tool: %s\n", msg);
    _exit(1); /* a failed test tool: no clean-up, and no leak report either */
}

static void setup(void)
{
    struct s3_config cfg;
    struct s3_config_request req = {.path_style = 1};
    char err[512];
    if (s3_config_resolve(&req, &cfg, err, sizeof err) != 0) die(err);
    g_loop = s3_loop_new(NULL, NULL);
    g_c = s3_client_new(g_loop, &cfg, err, sizeof err);
    if (!g_c) die(err);
    s3_config_free(&cfg);
}

static unsigned long long rng_state;
static unsigned long long rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (char)('a' + rnd() % 26);
}

static int cmd_mkbucket(int argc, char **argv)
{
    if (argc < 3) die("mkbucket BUCKET [--versioned]");
    struct s3_request_spec s = {.method = "PUT", .bucket = argv[2]};
    struct s3_response *r = s3_request_wait(g_c, &s);
    if (r->err != S3_OK && !(r->s3err.code && strcmp(r->s3err.code, "BucketAlreadyOwnedByYou") == 0)) die(r->message);
    s3_response_free(r);
    if (argc > 3 && strcmp(argv[3], "--versioned") == 0) {
        static const char body[] =
            "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status>"
            "</VersioningConfiguration>";
        struct s3_query_param q[] = {{"versioning", ""}};
        struct s3_request_spec v = {.method = "PUT", .bucket = argv[2], .query = q, .nquery = 1, .body = body,
                                    .body_len = sizeof body - 1};
        r = s3_request_wait(g_c, &v);
        if (r->err != S3_OK) die(r->message);
        s3_response_free(r);
    }
    return 0;
}

struct fill_ctx {
    const char *bucket, *prefix;
    long count, next, done, inflight;
    size_t minsz, maxsz;
    int failed;
};

static void fill_pump(struct fill_ctx *f);

static void fill_done(struct s3_response *r, void *ud)
{
    char **slot = ud;
    struct fill_ctx *f = (struct fill_ctx *)slot[1];
    if (r->err != S3_OK) {
        fprintf(stderr, "s3tool: %s\n", r->message);
        f->failed++;
    }
    s3_response_free(r);
    free(slot[0]);
    free(slot);
    f->inflight--;
    f->done++;
    fill_pump(f);
}

static void fill_pump(struct fill_ctx *f)
{
    while (f->inflight < 64 && f->next < f->count) {
        char key[1024];
        const char *u = strstr(f->prefix, "{uuid}");
        if (u) { /* PREFIX with {uuid}: a random version-4 UUID there (keys like uploads/2024/11/<uuid>.jpg) */
            unsigned long long a = rnd(), b = rnd(), c = rnd();
            snprintf(key, sizeof key, "%.*s%08llx-%04llx-4%03llx-%04llx-%012llx%s", (int)(u - f->prefix), f->prefix,
                     a & 0xffffffffull, (a >> 32) & 0xffff, b & 0xfff, 0x8000 | ((b >> 12) & 0x3fff),
                     c & 0xffffffffffffull, u + 6);
            f->next++;
        } else {
            snprintf(key, sizeof key, "%s%06ld", f->prefix, f->next++);
        }
        size_t n = f->minsz + (f->maxsz > f->minsz ? rnd() % (f->maxsz - f->minsz + 1) : 0);
        char *body = malloc(n ? n : 1);
        fill_random(body, n);
        char **slot = malloc(2 * sizeof *slot);
        slot[0] = body;
        slot[1] = (char *)f;
        f->inflight++;
        s3_put_object(g_c, f->bucket, key, NULL, 0, body, n, NULL, fill_done, slot);
    }
}

static int cmd_fill(int argc, char **argv)
{
    if (argc < 7) die("fill BUCKET PREFIX COUNT MINSIZE MAXSIZE [SEED]");
    struct fill_ctx f = {.bucket = argv[2], .prefix = argv[3], .count = atol(argv[4]),
                         .minsz = (size_t)atol(argv[5]), .maxsz = (size_t)atol(argv[6])};
    rng_state = argc > 7 ? strtoull(argv[7], NULL, 10) * 2654435761ull + 1 : (unsigned long long)time(NULL) | 1;
    fill_pump(&f);
    while (f.done < f.count) ev_run(s3_loop_ev(g_loop), EVRUN_ONCE);
    return f.failed ? 1 : 0;
}

static int cmd_put(int argc, char **argv)
{
    if (argc < 5) die("put BUCKET KEY SIZE [SEED]");
    size_t n = (size_t)strtoull(argv[4], NULL, 10);
    rng_state = argc > 5 ? strtoull(argv[5], NULL, 10) * 2654435761ull + 1 : (unsigned long long)time(NULL) | 1;
    const size_t part = 8u << 20;
    if (n <= 16u << 20) {
        char *body = malloc(n ? n : 1);
        fill_random(body, n);
        struct s3_request_spec s = {.method = "PUT", .bucket = argv[2], .key = argv[3], .body = body, .body_len = n};
        struct s3_response *r = s3_request_wait(g_c, &s);
        if (r->err != S3_OK) die(r->message);
        s3_response_free(r);
        free(body);
        return 0;
    }
    struct s3_query_param cq[] = {{"uploads", ""}};
    struct s3_request_spec cs = {.method = "POST", .bucket = argv[2], .key = argv[3], .query = cq, .nquery = 1};
    struct s3_response *r = s3_request_wait(g_c, &cs);
    char *uid = NULL;
    if (r->err != S3_OK || s3_xml_parse_initiate(r->body, r->body_len, &uid) != S3_OK) die(r->message);
    s3_response_free(r);
    size_t np = (n + part - 1) / part;
    char **etags = calloc(np, sizeof *etags);
    char *buf = malloc(part);
    for (size_t i = 0; i < np; i++) {
        size_t len = i + 1 < np ? part : n - i * part;
        fill_random(buf, len);
        char pn[24];
        snprintf(pn, sizeof pn, "%zu", i + 1);
        struct s3_query_param pq[] = {{"partNumber", pn}, {"uploadId", uid}};
        struct s3_request_spec ps = {.method = "PUT", .bucket = argv[2], .key = argv[3], .query = pq, .nquery = 2,
                                     .body = buf, .body_len = len};
        r = s3_request_wait(g_c, &ps);
        if (r->err != S3_OK) die(r->message);
        etags[i] = s3_response_etag(r);
        s3_response_free(r);
    }
    size_t bl;
    char *body = s3_xml_build_complete((const char *const *)etags, np, &bl);
    struct s3_query_param fq[] = {{"uploadId", uid}};
    struct s3_request_spec fs = {.method = "POST", .bucket = argv[2], .key = argv[3], .query = fq, .nquery = 1,
                                 .body = body, .body_len = bl, .error_in_200 = true};
    r = s3_request_wait(g_c, &fs);
    if (r->err != S3_OK) die(r->message);
    s3_response_free(r);
    for (size_t i = 0; i < np; i++) free(etags[i]);
    free(etags);
    free(buf);
    free(body);
    free(uid);
    return 0;
}

static volatile sig_atomic_t g_stop;
static void on_term(int s)
{
    (void)s;
    g_stop = 1;
}

static int cmd_writer(int argc, char **argv)
{
    if (argc < 5) die("writer BUCKET PREFIX LOG [--flag FILE] [--interval MS] [--max N]");
    const char *bucket = argv[2], *prefix = argv[3], *flag = NULL;
    long interval = 20, max = -1;
    int stop_on_flag = 0;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--stop-on-flag")) stop_on_flag = 1;
        else if (i + 1 >= argc) die("option needs a value");
        else if (!strcmp(argv[i], "--flag")) flag = argv[++i];
        else if (!strcmp(argv[i], "--interval")) interval = atol(argv[++i]);
        else if (!strcmp(argv[i], "--max")) max = atol(argv[++i]);
    }
    FILE *log = fopen(argv[4], "a");
    if (!log) die("cannot open the log");
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    rng_state = (unsigned long long)getpid() * 2654435761ull | 1;
    long n = 0;
    while (!g_stop && (max < 0 || n < max)) {
        struct stat st;
        if (flag && stat(flag, &st) == 0) { /* the app is in maintenance: no writes */
            if (stop_on_flag) break;
            usleep(10000);
            continue;
        }
        char key[256], body[2048];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(key, sizeof key, "%s%lld-%06ld", prefix, (long long)ts.tv_sec, n);
        size_t len = 100 + rnd() % 1900;
        fill_random(body, len);
        struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .body = body, .body_len = len};
        struct s3_response *r = s3_request_wait(g_c, &s);
        if (r->err == S3_OK) {
            unsigned char md[16];
            unsigned int ml;
            EVP_Digest(body, len, md, &ml, EVP_md5(), NULL);
            fprintf(log, "%s ", key);
            for (int i = 0; i < 16; i++) fprintf(log, "%02x", md[i]);
            fprintf(log, "\n");
            fflush(log);
            n++;
        } else {
            fprintf(stderr, "s3tool writer: %s\n", r->message);
        }
        s3_response_free(r);
        if (interval > 0) usleep((useconds_t)interval * 1000);
    }
    fclose(log);
    fprintf(stderr, "s3tool writer: wrote %ld objects\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) die("usage: s3tool mkbucket|fill|put|writer ...");
    setup();
    int rc = 2;
    if (!strcmp(argv[1], "mkbucket")) rc = cmd_mkbucket(argc, argv);
    else if (!strcmp(argv[1], "fill")) rc = cmd_fill(argc, argv);
    else if (!strcmp(argv[1], "put")) rc = cmd_put(argc, argv);
    else if (!strcmp(argv[1], "writer")) rc = cmd_writer(argc, argv);
    else die("unknown command");
    s3_client_free(g_c);
    s3_loop_free(g_loop);
    return rc;
}
