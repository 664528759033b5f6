/* Unit tests for manifest/: JSON Lines round-trips with hostile keys, truncated and corrupt files, the
 * writer's sticky failure state, the source-ETag index and the --status summary. Offline, temp files only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/manifest.h"

#define LINE_LIMIT 65536 /* the reader's documented cap */
#define TWO_POW_53 9007199254740992ULL

static char g_dir[PATH_MAX];
static unsigned g_seq;

/* ---- helpers ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state)
{
    const char *tmp = getenv("TMPDIR");

    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/test_manifest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh path in the test directory; the name is for reading failures. */
static void tpath(char *buf, size_t n, const char *name)
{
    int w = snprintf(buf, n, "%s/%u-%s", g_dir, ++g_seq, name);
    assert_true(w > 0 && (size_t)w < n);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, k;

    assert_non_null(f);
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        k = fread(buf + n, 1, cap - n, f);
        n += k;
    } while (k > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static const struct manifest_header k_header = {
    .run_id = "20261126T160137Z-4f2a",
    .tool_version = "replicate 0.1.0",
    .started = 1764172897,
    .source = "s3://prod-bucket/data/",
    .target = "s3://backup-bucket/data/",
    .source_endpoint = "https://s3.eu-west-1.amazonaws.com",
    .target_endpoint = "http://127.0.0.1:7480",
    .options_json =
        "{\"concurrency\":16,\"maintenance\":false,\"prefix\":\"d\\u00e9j\\u00e0/\",\"n\":{\"a\":[1,2]}}",
};

/* Keys meant to break naive JSON handling; all distinct, all NUL-free. */
static char k_key_1024_bytes[1025];
static char k_key_1024_utf8[1025];
static char k_key_ctrl[64];

static void init_tricky_keys(void)
{
    size_t i;

    /* Every byte value 1..255 in turn: control characters, quotes, backslashes, invalid UTF-8. */
    for (i = 0; i < 1024; i++)
        k_key_1024_bytes[i] = (char)(1 + i % 255);
    k_key_1024_bytes[1024] = '\0';
    /* 1024 bytes of valid UTF-8: 256 four-byte emoji. */
    for (i = 0; i < 1024; i += 4)
        memcpy(k_key_1024_utf8 + i, "\xf0\x9f\x98\x80", 4);
    k_key_1024_utf8[1024] = '\0';
    for (i = 0; i < 31; i++)
        k_key_ctrl[i] = (char)(i + 1);
    k_key_ctrl[31] = 0x7f;
    k_key_ctrl[32] = '\0';
}

static const char *const k_plain_keys[] = {
    "plain/key.txt",
    "with space, %20, + and ?query=1&x#frag",
    "quote\"back\\slash\\\"",
    "line\nbreak\r\ttab\b\f",
    "\xc3\xbc"
    "n"
    "\xc3\xaf"
    "c"
    "\xc3\xb8"
    "d"
    "\xc3\xa9"
    "/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80",
    "//leading/double//slash/",
    "\\u0041 not an escape",
    "</script><!-- & ' `",
};

/* The object records of the standard sample, filled with tricky keys. */
static size_t sample_objects(struct manifest_object *objs, size_t max)
{
    size_t n = 0, i;
    const char *extra[] = {k_key_1024_bytes, k_key_1024_utf8, k_key_ctrl};

    init_tricky_keys();
    for (i = 0; i < sizeof k_plain_keys / sizeof *k_plain_keys && n < max; i++, n++) {
        objs[n] = (struct manifest_object){.key = k_plain_keys[i],
                                           .size = i * 1000,
                                           .etag = "d41d8cd98f00b204e9800998ecf8427e",
                                           .last_modified = "2026-11-26T16:01:37.000Z",
                                           .pass = 1};
        if (i % 2) objs[n].target_key = objs[n].key;
        if (i % 3 == 0) objs[n].target_etag = "9b2cf535f27731c974343645a3985328-3";
        if (i % 4 == 1)
            objs[n].version_id = "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo";
        if (i % 5 == 2) {
            objs[n].checksum_algorithm = i % 2 ? "CRC32C" : "SHA256";
            objs[n].checksum = i % 2 ? "4waSgw==-3" : "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=";
        }
    }
    for (i = 0; i < 3 && n < max; i++, n++) {
        objs[n] = (struct manifest_object){.key = extra[i],
                                           .size = 5497558138880ULL /* 5 TiB */,
                                           .etag = "e\"t\\ag",
                                           .last_modified = "Thu, 26 Nov 2026 16:01:37 GMT",
                                           .pass = 2,
                                           .target_key = i == 1 ? k_key_1024_bytes : NULL,
                                           .target_etag = "tgt\n",
                                           .version_id = extra[i]};
    }
    if (n < max) {
        objs[n++] = (struct manifest_object){
            .key = "max-size", .size = 999999999999999ULL, .etag = "", .last_modified = "", .pass = INT_MAX};
    }
    return n;
}

static const struct manifest_pass k_pass = {
    .pass = 1,
    .maintenance = false,
    .started = 1764172897.123456789,
    .duration = 0.1,
    .listed = 123456,
    .copied = 1000,
    .bytes = 999999999999999ULL,
    .failed = 3,
    .skipped = 122453,
};

static const struct manifest_trailer k_trailer = {
    .ended = 1764176497,
    .result = "not-converged",
    .objects = 11,
    .bytes = 5497558138880ULL * 3,
    .failed = 0,
    .passes = 2,
    .gap = 1e-9,
    .maintenance = true,
};

/* Writes header, the sample objects, one pass line and (optionally) the trailer. Returns the object count. */
static size_t write_sample(const char *path, bool with_trailer)
{
    struct manifest_object objs[16];
    size_t n = sample_objects(objs, 16), i;
    char err[256] = "";
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);

    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    for (i = 0; i < n; i++) {
        assert_int_equal(manifest_writer_add(w, &objs[i]), 0);
        if (i == 5) assert_int_equal(manifest_writer_pass(w, &k_pass), 0);
    }
    if (with_trailer) assert_int_equal(manifest_writer_trailer(w, &k_trailer), 0);
    assert_int_equal(manifest_writer_close(w), 0);
    return n;
}

static void assert_object_eq(const struct manifest_object *got, const struct manifest_object *want)
{
    assert_string_equal(got->key, want->key);
    assert_true(got->size == want->size);
    assert_string_equal(got->etag, want->etag);
    assert_string_equal(got->last_modified, want->last_modified);
    assert_string_equal(got->target_key, want->target_key ? want->target_key : want->key);
    assert_string_equal(got->target_etag, want->target_etag ? want->target_etag : want->etag);
    if (want->version_id)
        assert_string_equal(got->version_id, want->version_id);
    else
        assert_null(got->version_id);
    assert_int_equal(got->pass, want->pass);
    if (want->checksum) {
        assert_string_equal(got->checksum_algorithm, want->checksum_algorithm);
        assert_string_equal(got->checksum, want->checksum);
    } else {
        assert_null(got->checksum_algorithm);
        assert_null(got->checksum);
    }
}

/* A text form of every field of a record, to compare records across files. */
static char *record_sig(const struct manifest_record *rec)
{
    char *s = NULL;
    int rc = -1;

    switch (rec->type) {
    case MANIFEST_REC_HEADER:
        rc = asprintf(&s, "H|%s|%s|%lld|%s|%s|%s|%s|%s", rec->header.run_id, rec->header.tool_version,
                      (long long)rec->header.started, rec->header.source, rec->header.target,
                      rec->header.source_endpoint ? rec->header.source_endpoint : "(null)",
                      rec->header.target_endpoint ? rec->header.target_endpoint : "(null)",
                      rec->header.options_json ? rec->header.options_json : "(null)");
        break;
    case MANIFEST_REC_OBJECT:
        rc = asprintf(&s, "O|%s|%llu|%s|%s|%s|%s|%s|%d|%s|%s", rec->object.key,
                      (unsigned long long)rec->object.size, rec->object.etag, rec->object.last_modified,
                      rec->object.target_key, rec->object.target_etag,
                      rec->object.version_id ? rec->object.version_id : "(null)", rec->object.pass,
                      rec->object.checksum_algorithm ? rec->object.checksum_algorithm : "(null)",
                      rec->object.checksum ? rec->object.checksum : "(null)");
        break;
    case MANIFEST_REC_DELETED:
        rc = asprintf(&s, "D|%s|%s|%d", rec->deleted.key, rec->deleted.target_key, rec->deleted.pass);
        break;
    case MANIFEST_REC_PASS:
        rc = asprintf(&s, "P|%d|%d|%.17g|%.17g|%llu|%llu|%llu|%llu|%llu", rec->pass.pass,
                      rec->pass.maintenance, rec->pass.started, rec->pass.duration,
                      (unsigned long long)rec->pass.listed, (unsigned long long)rec->pass.copied,
                      (unsigned long long)rec->pass.bytes, (unsigned long long)rec->pass.failed,
                      (unsigned long long)rec->pass.skipped);
        break;
    case MANIFEST_REC_TRAILER:
        rc = asprintf(&s, "T|%lld|%s|%llu|%llu|%llu|%d|%.17g|%d", (long long)rec->trailer.ended,
                      rec->trailer.result, (unsigned long long)rec->trailer.objects,
                      (unsigned long long)rec->trailer.bytes, (unsigned long long)rec->trailer.failed,
                      rec->trailer.passes, rec->trailer.gap, rec->trailer.maintenance);
        break;
    }
    assert_true(rc >= 0);
    return s;
}

/* Reads every record of path into sigs (caller frees); returns how many, asserting there is no corrupt line.
 */
static size_t read_all_sigs(const char *path, char **sigs, size_t max)
{
    char err[512] = "";
    struct manifest_reader *r = manifest_reader_open(path, err, sizeof err);
    struct manifest_record rec;
    size_t n = 0;
    int rc;

    assert_non_null(r);
    while ((rc = manifest_reader_next(r, &rec, err, sizeof err)) == 1) {
        assert_true(n < max);
        sigs[n++] = record_sig(&rec);
    }
    assert_int_equal(rc, 0);
    manifest_reader_close(r);
    return n;
}

/* ---- round trips ---- */

/* A shard's header carries its index, count and key range; the summary keeps index and count. */
static void test_shard_header(void **state)
{
    (void)state;
    char path[512], err[256];
    tpath(path, sizeof path, "shard.jsonl");
    struct manifest_header h = k_header;
    h.shard_index = 2;
    h.shard_count = 4;
    h.range_start_after = "uploads/2024/11/4";
    h.range_end_before = "uploads/2024/11/8\x01";
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &h), 0);
    assert_int_equal(manifest_writer_close(w), 0);
    struct manifest_reader *r = manifest_reader_open(path, err, sizeof err);
    assert_non_null(r);
    struct manifest_record rec;
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_int_equal(rec.header.shard_index, 2);
    assert_int_equal(rec.header.shard_count, 4);
    assert_string_equal(rec.header.range_start_after, "uploads/2024/11/4");
    assert_string_equal(rec.header.range_end_before, "uploads/2024/11/8\x01");
    manifest_reader_close(r);
    struct manifest_summary sum;
    assert_int_equal(manifest_summary_read(path, &sum, err, sizeof err), 0);
    assert_int_equal(sum.shard_index, 2);
    assert_int_equal(sum.shard_count, 4);
    assert_false(sum.trailer_found);
    manifest_summary_free(&sum);
    unlink(path);
    /* an index outside the count is not written */
    h.shard_index = 4;
    w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &h), -1);
    manifest_writer_close(w);
    unlink(path);
    /* an unsharded header reads back as count 0 */
    w = manifest_writer_open(path, err, sizeof err);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    assert_int_equal(manifest_writer_close(w), 0);
    assert_int_equal(manifest_summary_read(path, &sum, err, sizeof err), 0);
    assert_int_equal(sum.shard_count, 0);
    manifest_summary_free(&sum);
    unlink(path);
}

static void test_roundtrip_header(void **state)
{
    struct {
        const char *options; /* given to the writer */
        bool embedded;       /* expected as a JSON object in the file */
    } cases[] = {
        {k_header.options_json, true},
        {"{}", true},
        {"not json {", false},
        {"[1,2]", false}, /* valid JSON but not an object: kept as text */
        {"{\"a\":1} trailing", false},
        {"", false},
        {NULL, false},
    };
    (void)state;

    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[PATH_MAX], err[256] = "", *text;
        struct manifest_header h = k_header;
        struct manifest_writer *w;
        struct manifest_reader *r;
        struct manifest_record rec;
        size_t len;
        cJSON *line, *opts;

        tpath(path, sizeof path, "header.jsonl");
        h.options_json = cases[c].options;
        if (c == sizeof cases / sizeof *cases - 1) h.source_endpoint = h.target_endpoint = NULL;
        w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &h), 0);
        assert_int_equal(manifest_writer_close(w), 0);

        /* The file: one line, "t" and "format" present, options embedded only when it is an object. */
        text = read_bytes(path, &len);
        assert_true(len > 0 && text[len - 1] == '\n');
        assert_null(memchr(text, '\n', len - 1));
        line = cJSON_Parse(text);
        assert_non_null(line);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(line, "t")->valuestring, "header");
        assert_true(cJSON_GetObjectItemCaseSensitive(line, "format")->valuedouble == MANIFEST_FORMAT);
        opts = cJSON_GetObjectItemCaseSensitive(line, "options");
        if (!cases[c].options)
            assert_null(opts);
        else if (cases[c].embedded)
            assert_true(cJSON_IsObject(opts));
        else
            assert_true(cJSON_IsString(opts));
        if (!h.source_endpoint) assert_null(cJSON_GetObjectItemCaseSensitive(line, "source_endpoint"));
        cJSON_Delete(line);
        free(text);

        r = manifest_reader_open(path, err, sizeof err);
        assert_non_null(r);
        assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
        assert_int_equal(rec.type, MANIFEST_REC_HEADER);
        assert_string_equal(rec.header.run_id, h.run_id);
        assert_string_equal(rec.header.tool_version, h.tool_version);
        assert_true(rec.header.started == h.started);
        assert_string_equal(rec.header.source, h.source);
        assert_string_equal(rec.header.target, h.target);
        if (h.source_endpoint) {
            assert_string_equal(rec.header.source_endpoint, h.source_endpoint);
            assert_string_equal(rec.header.target_endpoint, h.target_endpoint);
        } else {
            assert_null(rec.header.source_endpoint);
            assert_null(rec.header.target_endpoint);
        }
        if (!cases[c].options) {
            assert_null(rec.header.options_json);
        } else if (cases[c].embedded) {
            cJSON *a = cJSON_Parse(cases[c].options), *b = cJSON_Parse(rec.header.options_json);
            assert_non_null(b);
            assert_true(cJSON_Compare(a, b, 1));
            cJSON_Delete(a);
            cJSON_Delete(b);
        } else {
            assert_string_equal(rec.header.options_json, cases[c].options);
        }
        assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0);
        manifest_reader_close(r);
    }
}

static void test_roundtrip_objects(void **state)
{
    struct manifest_object objs[16];
    size_t n = sample_objects(objs, 16), i, len;
    char path[PATH_MAX], err[256] = "", *text, *line, *save = NULL;
    struct manifest_reader *r;
    struct manifest_record rec;
    (void)state;

    tpath(path, sizeof path, "objects.jsonl");
    write_sample(path, true);
    r = manifest_reader_open(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_int_equal(rec.type, MANIFEST_REC_HEADER);
    for (i = 0; i < n; i++) {
        assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
        assert_int_equal(rec.type, MANIFEST_REC_OBJECT);
        assert_object_eq(&rec.object, &objs[i]);
        if (i == 5) {
            assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
            assert_int_equal(rec.type, MANIFEST_REC_PASS);
        }
    }
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_int_equal(rec.type, MANIFEST_REC_TRAILER);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0); /* EOF is stable */
    manifest_reader_close(r);

    /* On disk: one line per record; target_key / target_etag / version_id omitted when redundant. */
    text = read_bytes(path, &len);
    assert_int_equal(strlen(text), len);
    i = 0;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const char *t;

        assert_non_null(j);
        t = cJSON_GetObjectItemCaseSensitive(j, "t")->valuestring;
        if (strcmp(t, "object") == 0) {
            const struct manifest_object *o = &objs[i++];
            bool same_key = !o->target_key || strcmp(o->target_key, o->key) == 0;
            bool same_etag = !o->target_etag || strcmp(o->target_etag, o->etag) == 0;
            assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "size")));
            assert_int_equal(cJSON_HasObjectItem(j, "target_key"), !same_key);
            assert_int_equal(cJSON_HasObjectItem(j, "target_etag"), !same_etag);
            assert_int_equal(cJSON_HasObjectItem(j, "version_id"), o->version_id != NULL);
        }
        cJSON_Delete(j);
    }
    assert_int_equal(i, n);
    free(text);
}

static void test_roundtrip_pass_trailer(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct manifest_writer *w;
    struct manifest_reader *r;
    struct manifest_record rec;
    struct manifest_pass p2 = k_pass;
    struct manifest_trailer t = k_trailer;
    (void)state;

    p2.pass = 2;
    p2.maintenance = true;
    p2.started = -0.0;
    p2.duration = 0.1 + 0.2; /* 0.30000000000000004: cJSON prints "0.3", one ulp off (see jsonl.c) */
    p2.listed = 0;
    p2.bytes = TWO_POW_53; /* 16 digits: cJSON may round it by a few units, still an integer */
    t.result = "";
    t.ended = -1;
    t.gap = 0;
    t.maintenance = false;
    tpath(path, sizeof path, "passes.jsonl");
    w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    assert_int_equal(manifest_writer_pass(w, &k_pass), 0);
    assert_int_equal(manifest_writer_pass(w, &p2), 0);
    assert_int_equal(manifest_writer_trailer(w, &t), 0);
    assert_int_equal(manifest_writer_sync(w), 0);
    assert_int_equal(manifest_writer_close(w), 0);

    r = manifest_reader_open(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    for (int k = 0; k < 2; k++) {
        const struct manifest_pass *want = k ? &p2 : &k_pass;
        assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
        assert_int_equal(rec.type, MANIFEST_REC_PASS);
        assert_int_equal(rec.pass.pass, want->pass);
        assert_int_equal(rec.pass.maintenance, want->maintenance);
        assert_true(rec.pass.started == want->started);
        assert_true(rec.pass.listed == want->listed);
        assert_true(rec.pass.copied == want->copied);
        if (k == 0) {
            assert_true(rec.pass.duration == want->duration);
            assert_true(rec.pass.bytes == want->bytes); /* exact below 10^15 */
        } else {
            assert_true(rec.pass.duration - want->duration <= want->duration * DBL_EPSILON &&
                        want->duration - rec.pass.duration <= want->duration * DBL_EPSILON);
            assert_true(rec.pass.bytes + 8 >= want->bytes && rec.pass.bytes <= want->bytes + 8);
        }
        assert_true(rec.pass.failed == want->failed);
        assert_true(rec.pass.skipped == want->skipped);
    }
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_int_equal(rec.type, MANIFEST_REC_TRAILER);
    assert_true(rec.trailer.ended == t.ended);
    assert_string_equal(rec.trailer.result, t.result);
    assert_true(rec.trailer.objects == t.objects);
    assert_true(rec.trailer.bytes == t.bytes);
    assert_true(rec.trailer.failed == t.failed);
    assert_int_equal(rec.trailer.passes, t.passes);
    assert_true(rec.trailer.gap == t.gap);
    assert_int_equal(rec.trailer.maintenance, t.maintenance);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0);
    manifest_reader_close(r);
}

/* ---- damaged files ---- */

/* Cut the sample after every byte: only the complete lines come back, in order; a partial last line is one
 * corrupt line; nothing crashes. */
static void test_truncated_every_offset(void **state)
{
    char full[PATH_MAX], cut[PATH_MAX], err[512], *data, *sigs[32];
    size_t len, nrec, i;
    (void)state;

    tpath(full, sizeof full, "full.jsonl");
    tpath(cut, sizeof cut, "cut.jsonl");
    write_sample(full, true);
    data = read_bytes(full, &len);
    nrec = read_all_sigs(full, sigs, 32);
    assert_true(nrec >= 14);
    write_bytes(cut, data, len);
    for (size_t at = len + 1; at-- > 0;) { /* shrinking one file is cheaper than writing ~10k of them */
        size_t complete = 0, got = 0, corrupt = 0;
        struct manifest_reader *r;
        struct manifest_record rec;
        int rc;

        for (i = 0; i < at; i++)
            complete += data[i] == '\n';
        assert_int_equal(truncate(cut, (off_t)at), 0);
        r = manifest_reader_open(cut, err, sizeof err);
        assert_non_null(r);
        while ((rc = manifest_reader_next(r, &rec, err, sizeof err)) != 0) {
            if (rc < 0) {
                corrupt++;
                assert_non_null(strstr(err, "no newline"));
                continue;
            }
            char *s = record_sig(&rec);
            assert_true(got < complete);
            assert_int_equal(corrupt, 0); /* the partial line can only be last */
            assert_string_equal(s, sigs[got]);
            free(s);
            got++;
        }
        assert_int_equal(got, complete);
        assert_int_equal(corrupt, (at > 0 && data[at - 1] != '\n') ? 1 : 0);
        manifest_reader_close(r);
    }
    for (i = 0; i < nrec; i++)
        free(sigs[i]);
    free(data);
}

static void test_garbage_between_good_lines(void **state)
{
#define G(lit)                                                                                               \
    {                                                                                                        \
        lit, sizeof(lit) - 1                                                                                 \
    }
    static const struct {
        const char *s;
        size_t len;
    } garbage[] = {
        G("not json"),
        G(""),
        G("   "),
        G("[1,2,3]"),
        G("\"just a string\""),
        G("{}"),
        G("{\"t\":\"bogus\"}"),
        G("{\"t\":7}"),
        G("{\"t\":\"object\"}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":-1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1.5,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":\"12\",\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":"
          "1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1e300,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":"
          "1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1e999,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":"
          "1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":9007199254740994,\"etag\":\"e\",\"last_modified\":\"m\","
          "\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":0}"),
        G("{\"t\":\"object\",\"key\":\"\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":5,\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1,\"etag\":null,\"last_modified\":\"m\",\"pass\":1}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1,"
          "\"version_id\":3}"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1} x"),
        G("{\"t\":\"object\",\"key\":\"k\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1"),
        G("{\"t\":\"header\",\"format\":2,\"run_id\":\"r\",\"tool_version\":\"v\",\"started\":1,\"source\":"
          "\"s\",\"target\":\"t\"}"),
        G("{\"t\":\"header\",\"run_id\":\"r\",\"tool_version\":\"v\",\"started\":1,\"source\":\"s\","
          "\"target\":\"t\"}"),
        G("{\"t\":\"header\",\"format\":1,\"run_id\":\"r\",\"tool_version\":\"v\",\"started\":1,\"source\":"
          "\"s\",\"target\":\"t\",\"options\":[1]}"),
        G("{\"t\":\"pass\",\"pass\":1,\"maintenance\":\"yes\",\"started\":1,\"duration\":1,\"listed\":1,"
          "\"copied\":1,\"bytes\":1,\"failed\":1,\"skipped\":1}"),
        G("{\"t\":\"trailer\",\"ended\":1,\"objects\":1,\"bytes\":1,\"failed\":0,\"passes\":1,\"gap\":0,"
          "\"maintenance\":false}"),
        G("{\"t\":\"trailer\",\"ended\":1,\"result\":\"ok\",\"objects\":1,\"bytes\":1,\"failed\":0,"
          "\"passes\":-1,\"gap\":0,\"maintenance\":false}"),
        G("\xff\xfe\x00\x01 binary"),
        G("{\"t\":\"object\",\"key\":\"k\x00\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":"
          "1}"),
        {NULL, 0}, /* placeholder: 3000-deep nesting, built below */
    };
#undef G
    size_t ng = sizeof garbage / sizeof *garbage, len, i, lines = 0, good_lines = 0;
    char src[PATH_MAX], mixed[PATH_MAX], err[512], *good, *p, *sigs[32], *deep;
    size_t nsig;
    FILE *f;
    struct manifest_reader *r;
    struct manifest_record rec;
    int rc;
    (void)state;

    tpath(src, sizeof src, "good.jsonl");
    tpath(mixed, sizeof mixed, "mixed.jsonl");
    write_sample(src, true);
    nsig = read_all_sigs(src, sigs, 32);
    good = read_bytes(src, &len);
    deep = malloc(6001);
    assert_non_null(deep);
    memset(deep, '[', 3000);
    memset(deep + 3000, ']', 3000);
    deep[6000] = '\0';

    /* good line, garbage, good line, garbage ... until both run out */
    f = fopen(mixed, "wb");
    assert_non_null(f);
    p = good;
    for (i = 0; i < ng || *p; i++) {
        if (*p) {
            char *nl = strchr(p, '\n');
            fwrite(p, 1, (size_t)(nl - p) + 1, f);
            p = nl + 1;
            good_lines++;
        }
        if (i < ng) {
            if (garbage[i].s)
                fwrite(garbage[i].s, 1, garbage[i].len, f);
            else
                fputs(deep, f);
            fputc('\n', f);
        }
    }
    fclose(f);
    assert_int_equal(good_lines, nsig);

    r = manifest_reader_open(mixed, err, sizeof err);
    assert_non_null(r);
    size_t got = 0, corrupt = 0;
    while ((rc = manifest_reader_next(r, &rec, err, sizeof err)) != 0) {
        char expect[32];
        lines++;
        if (rc < 0) {
            corrupt++;
            /* the message names the file and the line */
            snprintf(expect, sizeof expect, ".jsonl:%zu:", lines);
            assert_non_null(strstr(err, expect));
            assert_non_null(strstr(err, mixed));
            continue;
        }
        char *s = record_sig(&rec);
        assert_true(got < nsig);
        assert_string_equal(s, sigs[got]);
        free(s);
        got++;
    }
    assert_int_equal(got, nsig);
    assert_int_equal(corrupt, ng);
    manifest_reader_close(r);
    for (i = 0; i < nsig; i++)
        free(sigs[i]);
    free(good);
    free(deep);
}

/* A line of exactly LINE_LIMIT bytes is read; one byte more is corrupt and skipped without losing the next.
 */
static void test_line_length_limit(void **state)
{
    char path[PATH_MAX], err[256];
    struct manifest_reader *r;
    struct manifest_record rec;
    FILE *f;
    (void)state;

    tpath(path, sizeof path, "long.jsonl");
    f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t target = LINE_LIMIT; target <= LINE_LIMIT + 1; target++) {
        cJSON *o = cJSON_CreateObject();
        char *text, *pad;
        size_t base;

        cJSON_AddStringToObject(o, "t", "object");
        cJSON_AddStringToObject(o, "key", "k");
        cJSON_AddNumberToObject(o, "size", 1);
        cJSON_AddStringToObject(o, "etag", "e");
        cJSON_AddStringToObject(o, "last_modified", "m");
        cJSON_AddNumberToObject(o, "pass", 1);
        cJSON_AddStringToObject(o, "pad", "");
        text = cJSON_PrintUnformatted(o);
        base = strlen(text);
        free(text);
        cJSON_DeleteItemFromObject(o, "pad");
        pad = malloc(target - base + 1);
        memset(pad, 'x', target - base);
        pad[target - base] = '\0';
        cJSON_AddStringToObject(o, "pad", pad); /* unknown fields are ignored */
        text = cJSON_PrintUnformatted(o);
        assert_int_equal(strlen(text), target);
        fprintf(f, "%s\n", text);
        free(text);
        free(pad);
        cJSON_Delete(o);
    }
    /* a 1 MiB line, then a good one */
    for (int i = 0; i < 1 << 20; i++)
        fputc('{', f);
    fputs("\n{\"t\":\"object\",\"key\":\"after\",\"size\":2,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":"
          "1}\n",
          f);
    fclose(f);

    r = manifest_reader_open(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_string_equal(rec.object.key, "k");
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2: corrupt line: longer than"));
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), -1);
    assert_non_null(strstr(err, ":3: corrupt line: longer than"));
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_string_equal(rec.object.key, "after");
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0);
    manifest_reader_close(r);
}

static void test_reader_open_missing(void **state)
{
    char path[PATH_MAX], err[256] = "";
    (void)state;

    tpath(path, sizeof path, "does-not-exist.jsonl");
    assert_null(manifest_reader_open(path, err, sizeof err));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    manifest_reader_close(NULL);
}

/* ---- writer failures ---- */

static void test_writer_refuses_existing_file(void **state)
{
    char path[PATH_MAX], err[256] = "", *data;
    size_t len;
    (void)state;

    tpath(path, sizeof path, "exists.jsonl");
    write_bytes(path, "precious\n", 9);
    errno = 0;
    assert_null(manifest_writer_open(path, err, sizeof err));
    assert_int_equal(errno, EEXIST);
    assert_non_null(strstr(err, path));
    data = read_bytes(path, &len);
    assert_string_equal(data, "precious\n"); /* untouched */
    free(data);
    assert_null(manifest_writer_open("", err, sizeof err));
    assert_int_equal(manifest_writer_close(NULL), 0);
}

/* A write that fails (EFBIG under RLIMIT_FSIZE, like ENOSPC on a full disk) leaves the writer failed for
 * good. */
static void test_writer_sticky_failure(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct rlimit old, lim;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_sa;
    struct manifest_writer *w;
    struct manifest_object o = {.key = "some/key/with/a/reasonable/length.bin",
                                .size = 1,
                                .etag = "d41d8cd98f00b204e9800998ecf8427e",
                                .last_modified = "2026-11-26T16:01:37.000Z",
                                .pass = 1};
    int first_fail = -1, first_errno = 0, later[6], later_errno[6], close_rc, close_errno, i;
    struct stat st;
    (void)state;

    tpath(path, sizeof path, "efbig.jsonl");
    w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);

    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(sigaction(SIGXFSZ, &ign, &old_sa), 0);
    lim = old;
    lim.rlim_cur = 4000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    /* Only record results while the limit is in force; assert after restoring it. */
    for (i = 0; i < 100000 && first_fail < 0; i++) {
        if (manifest_writer_add(w, &o) != 0 || (i % 10 == 9 && manifest_writer_sync(w) != 0)) {
            first_fail = i;
            first_errno = errno;
        }
    }
    errno = 0;
    later[0] = manifest_writer_add(w, &o);
    later_errno[0] = errno;
    errno = 0;
    later[1] = manifest_writer_pass(w, &k_pass);
    later_errno[1] = errno;
    errno = 0;
    later[2] = manifest_writer_sync(w);
    later_errno[2] = errno;
    errno = 0;
    later[3] = manifest_writer_trailer(w, &k_trailer);
    later_errno[3] = errno;
    errno = 0;
    later[4] = manifest_writer_header(w, &k_header);
    later_errno[4] = errno;
    errno = 0;
    later[5] = manifest_writer_add(w, &o);
    later_errno[5] = errno;
    errno = 0;
    close_rc = manifest_writer_close(w);
    close_errno = errno;
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &old_sa, NULL);

    assert_true(first_fail >= 0);
    assert_int_equal(first_errno, EFBIG);
    for (i = 0; i < 6; i++) {
        assert_int_equal(later[i], -1);
        assert_int_equal(later_errno[i], EFBIG);
    }
    assert_int_equal(close_rc, -1);
    assert_int_equal(close_errno, EFBIG);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size <= 4000);

    /* What did reach the disk reads back as whole records plus at most one corrupt (partial) line. */
    struct manifest_reader *r = manifest_reader_open(path, err, sizeof err);
    struct manifest_record rec;
    int rc, good = 0, bad = 0;
    assert_non_null(r);
    while ((rc = manifest_reader_next(r, &rec, err, sizeof err)) != 0) {
        if (rc < 0)
            bad++;
        else
            good++;
    }
    manifest_reader_close(r);
    assert_true(good >= 1);
    assert_true(bad <= 1);
}

static void test_writer_rejects_bad_records(void **state)
{
    struct manifest_object good = {.key = "k", .size = 1, .etag = "e", .last_modified = "m", .pass = 1};
    struct {
        const char *name;
        struct manifest_object o;
        bool header_first;
    } cases[] = {
        {"add before header", good, false},
        {"NULL key", {.key = NULL, .size = 1, .etag = "e", .last_modified = "m", .pass = 1}, true},
        {"empty key", {.key = "", .size = 1, .etag = "e", .last_modified = "m", .pass = 1}, true},
        {"NULL etag", {.key = "k", .size = 1, .etag = NULL, .last_modified = "m", .pass = 1}, true},
        {"size of 16 digits",
         {.key = "k", .size = 1000000000000000ULL, .etag = "e", .last_modified = "m", .pass = 1},
         true},
        {"pass 0", {.key = "k", .size = 1, .etag = "e", .last_modified = "m", .pass = 0}, true},
        {"line over 64 KiB", {.key = NULL, .size = 1, .etag = "e", .last_modified = "m", .pass = 1}, true},
    };
    char *huge = malloc(70000);
    (void)state;

    assert_non_null(huge);
    memset(huge, 'a', 69999);
    huge[69999] = '\0';
    cases[6].o.key = huge;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[PATH_MAX], err[256];
        struct manifest_writer *w;

        tpath(path, sizeof path, "bad.jsonl");
        w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        if (cases[c].header_first) assert_int_equal(manifest_writer_header(w, &k_header), 0);
        errno = 0;
        assert_int_equal(manifest_writer_add(w, &cases[c].o), -1);
        assert_int_equal(errno, EINVAL);
        /* the manifest would be missing a record: the writer stays failed */
        assert_int_equal(manifest_writer_add(w, &good), -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(manifest_writer_close(w), -1);
    }
    free(huge);

    /* Order: header once, trailer last. Non-finite doubles would print as null and are refused. */
    {
        char path[PATH_MAX], err[256];
        struct manifest_writer *w;
        struct manifest_pass p = k_pass;

        tpath(path, sizeof path, "order.jsonl");
        w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        assert_int_equal(manifest_writer_header(w, &k_header), -1);
        assert_int_equal(errno, EINVAL);
        manifest_writer_close(w);

        tpath(path, sizeof path, "nan.jsonl");
        w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        p.duration = NAN;
        assert_int_equal(manifest_writer_pass(w, &p), -1);
        assert_int_equal(errno, EINVAL);
        manifest_writer_close(w);

        tpath(path, sizeof path, "after-trailer.jsonl");
        w = manifest_writer_open(path, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        assert_int_equal(manifest_writer_trailer(w, &k_trailer), 0);
        assert_int_equal(manifest_writer_sync(w), 0);
        assert_int_equal(manifest_writer_add(w, &good), -1);
        assert_int_equal(manifest_writer_close(w), -1);
    }
}

/* ---- index ---- */

static void test_index_basic(void **state)
{
    struct manifest_index *idx = manifest_index_new();
    (void)state;

    assert_non_null(idx);
    assert_int_equal(manifest_index_count(idx), 0);
    assert_null(manifest_index_get(idx, "a", 1, "t"));
    assert_int_equal(manifest_index_put(idx, "a", 10, "tgt-1", "src-1"), 0);
    assert_int_equal(manifest_index_put(idx, k_plain_keys[3], 0, "", "src\"2"), 0);
    assert_int_equal(manifest_index_count(idx), 2);
    assert_string_equal(manifest_index_get(idx, "a", 10, "tgt-1"), "src-1");
    assert_string_equal(manifest_index_get(idx, k_plain_keys[3], 0, ""), "src\"2");
    assert_null(manifest_index_get(idx, "a", 11, "tgt-1")); /* size differs */
    assert_null(manifest_index_get(idx, "a", 10, "tgt-2")); /* target ETag differs */
    assert_null(manifest_index_get(idx, "A", 10, "tgt-1")); /* keys are case-sensitive */
    assert_null(manifest_index_get(idx, "a ", 10, "tgt-1"));
    /* replace */
    assert_int_equal(manifest_index_put(idx, "a", 20, "tgt-3", "src-3"), 0);
    assert_int_equal(manifest_index_count(idx), 2);
    assert_null(manifest_index_get(idx, "a", 10, "tgt-1"));
    assert_string_equal(manifest_index_get(idx, "a", 20, "tgt-3"), "src-3");
    /* bad arguments */
    assert_int_equal(manifest_index_put(idx, NULL, 1, "t", "s"), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(manifest_index_get(idx, NULL, 1, "t"));
    assert_null(manifest_index_get(NULL, "a", 20, "tgt-3"));
    manifest_index_free(idx);
    manifest_index_free(NULL);
}

static void test_index_grow_100k(void **state)
{
    enum { N = 100000 };
    struct manifest_index *idx = manifest_index_new();
    char key[64], tgt[64], src[64];
    (void)state;

    assert_non_null(idx);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "dir/%d/object-%06d.bin", i % 97, i);
        snprintf(tgt, sizeof tgt, "%08x-%d", (unsigned)i * 2654435761u, i % 10 + 2);
        snprintf(src, sizeof src, "src-%d", i);
        assert_int_equal(manifest_index_put(idx, key, (uint64_t)i * 8388608, tgt, src), 0);
    }
    assert_int_equal(manifest_index_count(idx), N);
    /* replace every third */
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof key, "dir/%d/object-%06d.bin", i % 97, i);
        snprintf(tgt, sizeof tgt, "%08x-%d", (unsigned)i * 2654435761u, i % 10 + 2);
        snprintf(src, sizeof src, "new-%d", i);
        assert_int_equal(manifest_index_put(idx, key, (uint64_t)i * 8388608, tgt, src), 0);
    }
    assert_int_equal(manifest_index_count(idx), N);
    for (int i = 0; i < N; i++) {
        const char *got;
        snprintf(key, sizeof key, "dir/%d/object-%06d.bin", i % 97, i);
        snprintf(tgt, sizeof tgt, "%08x-%d", (unsigned)i * 2654435761u, i % 10 + 2);
        snprintf(src, sizeof src, i % 3 ? "src-%d" : "new-%d", i);
        got = manifest_index_get(idx, key, (uint64_t)i * 8388608, tgt);
        assert_non_null(got);
        assert_string_equal(got, src);
        assert_null(manifest_index_get(idx, key, (uint64_t)i * 8388608 + 1, tgt));
        tgt[0] ^= 1;
        assert_null(manifest_index_get(idx, key, (uint64_t)i * 8388608, tgt));
    }
    assert_null(manifest_index_get(idx, "dir/0/object-100000.bin", 0, "x"));
    manifest_index_free(idx);
}

static void test_index_load(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct manifest_writer *w;
    struct manifest_index *idx;
    FILE *f;
    int corrupt = 5;
    const struct manifest_object objs[] = {
        {.key = "same", .size = 1, .etag = "e1", .last_modified = "m", .pass = 1},
        {.key = "same-explicit",
         .size = 1,
         .etag = "e1",
         .last_modified = "m",
         .target_etag = "e1",
         .pass = 1},
        {.key = "multi", .size = 2, .etag = "md5", .last_modified = "m", .target_etag = "md5-2", .pass = 1},
        {.key = "src/moved",
         .size = 3,
         .etag = "s3",
         .last_modified = "m",
         .target_key = "dst/moved",
         .target_etag = "t3",
         .pass = 1},
        {.key = "multi", .size = 4, .etag = "md5b", .last_modified = "m", .target_etag = "md5b-3", .pass = 2},
        /* copied from a multipart source, then the source was re-uploaded in one part and copied again */
        {.key = "flip", .size = 5, .etag = "abc-2", .last_modified = "m", .target_etag = "e5", .pass = 1},
        {.key = "flip", .size = 5, .etag = "e5", .last_modified = "m", .pass = 2},
    };
    (void)state;

    tpath(path, sizeof path, "index.jsonl");
    w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    for (size_t i = 0; i < sizeof objs / sizeof *objs; i++)
        assert_int_equal(manifest_writer_add(w, &objs[i]), 0);
    assert_int_equal(manifest_writer_close(w), 0);
    f = fopen(path, "ab");
    fputs("garbage\n{\"t\":\"object\",\"key\":\"cut", f); /* a corrupt line and a crash mid-write */
    fclose(f);

    idx = manifest_index_new();
    assert_int_equal(manifest_index_load(idx, path, &corrupt), 0);
    assert_int_equal(corrupt, 7); /* added to the caller's count */
    assert_int_equal(manifest_index_count(idx), 2);
    assert_null(manifest_index_get(idx, "same", 1, "e1"));
    assert_null(manifest_index_get(idx, "same-explicit", 1, "e1"));
    assert_null(manifest_index_get(idx, "multi", 2, "md5-2")); /* replaced by the pass 2 record */
    assert_string_equal(manifest_index_get(idx, "multi", 4, "md5b-3"), "md5b");
    assert_string_equal(manifest_index_get(idx, "dst/moved", 3, "t3"), "s3");
    assert_null(manifest_index_get(idx, "src/moved", 3, "t3"));
    assert_null(manifest_index_get(idx, "flip", 5, "e5")); /* superseded by a record with equal ETags */
    tpath(path, sizeof path, "missing.jsonl");
    assert_int_equal(manifest_index_load(idx, path, NULL), -1);
    assert_int_equal(errno, ENOENT);
    manifest_index_free(idx);
}

/* The optional "checksum" of an object record: written and read back, absent in older records, both fields or
 * neither, well-formed or the line is corrupt; and the checksum index loaded from it. */
static void test_checksum_field(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct manifest_record rec;
    (void)state;

    tpath(path, sizeof path, "checksum.jsonl");
    struct manifest_writer *w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    const struct manifest_object with = {.key = "a", .size = 9, .etag = "e", .last_modified = "m", .pass = 1,
                                         .target_etag = "t", .checksum_algorithm = "CRC64NVME",
                                         .checksum = "rosUhgp5mIg="};
    const struct manifest_object plain = {.key = "b", .size = 1, .etag = "e", .last_modified = "m", .pass = 1};
    assert_int_equal(manifest_writer_add(w, &with), 0);
    assert_int_equal(manifest_writer_add(w, &plain), 0);
    /* a record without its checksum does not erase the checksum recorded for the same target object */
    const struct manifest_object again = {.key = "a", .size = 9, .etag = "e", .last_modified = "m", .pass = 2,
                                          .target_etag = "t"};
    assert_int_equal(manifest_writer_add(w, &again), 0);
    assert_int_equal(manifest_writer_close(w), 0);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    /* an older tool's record, then malformed checksums: each line corrupt, the reader goes on */
    fputs("{\"t\":\"object\",\"key\":\"old\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1}\n", f);
    fputs("{\"t\":\"object\",\"key\":\"c\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1,"
          "\"checksum\":{\"algorithm\":\"CRC32\"}}\n", f);
    fputs("{\"t\":\"object\",\"key\":\"c\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1,"
          "\"checksum\":\"CRC32 y/Q5Jg==\"}\n", f);
    fputs("{\"t\":\"object\",\"key\":\"c\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1,"
          "\"checksum\":{\"algorithm\":\"crc32\",\"value\":\"y/Q5Jg==\"}}\n", f);
    fputs("{\"t\":\"object\",\"key\":\"c\",\"size\":1,\"etag\":\"e\",\"last_modified\":\"m\",\"pass\":1,"
          "\"checksum\":{\"algorithm\":\"CRC32\",\"value\":\"y/Q5 Jg==\"}}\n", f);
    fclose(f);

    struct manifest_reader *r = manifest_reader_open(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1); /* header */
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_object_eq(&rec.object, &with);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_object_eq(&rec.object, &plain);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_object_eq(&rec.object, &again);
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 1);
    assert_string_equal(rec.object.key, "old");
    assert_null(rec.object.checksum);
    assert_null(rec.object.checksum_algorithm);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), -1);
        assert_non_null(strstr(err, "checksum"));
    }
    assert_int_equal(manifest_reader_next(r, &rec, err, sizeof err), 0);
    manifest_reader_close(r);

    struct manifest_index *idx = manifest_index_new();
    int corrupt = 0;
    assert_int_equal(manifest_index_load_checksums(idx, path, &corrupt), 0);
    assert_int_equal(corrupt, 4);
    assert_int_equal(manifest_index_count(idx), 1);
    assert_string_equal(manifest_index_get(idx, "a", 9, "t"), "CRC64NVME rosUhgp5mIg=");
    assert_null(manifest_index_get(idx, "a", 9, "other")); /* another state of the target object */
    assert_null(manifest_index_get(idx, "b", 1, "e"));
    manifest_index_free(idx);

    /* the writer refuses what the reader would */
    const struct manifest_object half[] = {
        {.key = "h", .size = 1, .etag = "e", .last_modified = "m", .pass = 1, .checksum = "y/Q5Jg=="},
        {.key = "h", .size = 1, .etag = "e", .last_modified = "m", .pass = 1, .checksum_algorithm = "CRC32"},
        {.key = "h", .size = 1, .etag = "e", .last_modified = "m", .pass = 1, .checksum_algorithm = "crc32",
         .checksum = "y/Q5Jg=="},
        {.key = "h", .size = 1, .etag = "e", .last_modified = "m", .pass = 1, .checksum_algorithm = "CRC32",
         .checksum = ""},
    };
    for (size_t i = 0; i < sizeof half / sizeof *half; i++) {
        char p2[PATH_MAX];
        tpath(p2, sizeof p2, "checksum-bad.jsonl");
        w = manifest_writer_open(p2, err, sizeof err);
        assert_non_null(w);
        assert_int_equal(manifest_writer_header(w, &k_header), 0);
        assert_int_equal(manifest_writer_add(w, &half[i]), -1);
        assert_int_equal(errno, EINVAL);
        manifest_writer_close(w);
    }
}

/* Thousands of mappings; every third is superseded by an equal-ETag record for the same target object
 * (removed, exercising deletion inside collision clusters); every sixth gets an equal-ETag record for another
 * target state (kept). */
static void test_index_load_supersede(void **state)
{
    enum { N = 3000 };
    char path[PATH_MAX], err[256] = "", key[32], etag[32], tgt[32];
    struct manifest_writer *w;
    struct manifest_index *idx;
    struct manifest_object o = {.last_modified = "m", .pass = 1};
    (void)state;

    tpath(path, sizeof path, "supersede.jsonl");
    w = manifest_writer_open(path, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(manifest_writer_header(w, &k_header), 0);
    for (int pass = 1; pass <= 2; pass++) {
        for (int i = 0; i < N; i++) {
            if (pass == 2 && i % 3 != 0 && i % 6 != 1) continue;
            snprintf(key, sizeof key, "k%d", i);
            snprintf(etag, sizeof etag, "src%d", i);
            snprintf(tgt, sizeof tgt, "tgt%d", i);
            o.key = key;
            o.size = (uint64_t)i;
            o.etag = pass == 1 ? etag : i % 3 == 0 ? tgt : "other";
            o.target_etag = pass == 1 ? tgt : NULL;
            o.pass = pass;
            assert_int_equal(manifest_writer_add(w, &o), 0);
        }
    }
    assert_int_equal(manifest_writer_close(w), 0);
    idx = manifest_index_new();
    assert_int_equal(manifest_index_load(idx, path, NULL), 0);
    assert_int_equal(manifest_index_count(idx), N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        const char *got;
        snprintf(key, sizeof key, "k%d", i);
        snprintf(etag, sizeof etag, "src%d", i);
        snprintf(tgt, sizeof tgt, "tgt%d", i);
        got = manifest_index_get(idx, key, (uint64_t)i, tgt);
        if (i % 3 == 0) {
            assert_null(got);
        } else {
            assert_non_null(got);
            assert_string_equal(got, etag);
        }
    }
    manifest_index_free(idx);
}

/* ---- summary ---- */

static void test_summary_complete(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct manifest_summary s;
    size_t n;
    (void)state;

    tpath(path, sizeof path, "complete.jsonl");
    n = write_sample(path, true);
    assert_int_equal(manifest_summary_read(path, &s, err, sizeof err), 0);
    assert_string_equal(s.run_id, k_header.run_id);
    assert_string_equal(s.source, k_header.source);
    assert_string_equal(s.target, k_header.target);
    assert_string_equal(s.tool_version, k_header.tool_version);
    assert_true(s.started == k_header.started);
    assert_true(s.trailer_found);
    assert_string_equal(s.result, "not-converged");
    assert_ptr_equal(s.trailer.result, s.result);
    assert_true(s.trailer.ended == k_trailer.ended);
    assert_true(s.trailer.bytes == k_trailer.bytes);
    assert_int_equal(s.trailer.passes, 2);
    assert_true(s.trailer.gap == k_trailer.gap);
    assert_true(s.trailer.maintenance);
    assert_int_equal(s.passes, 1);
    assert_true(s.objects_recorded == n);
    assert_int_equal(s.corrupt_lines, 0);
    manifest_summary_free(&s);
    manifest_summary_free(NULL);
}

static void test_summary_crashed(void **state)
{
    char path[PATH_MAX], err[256] = "";
    struct manifest_summary s;
    size_t n;
    FILE *f;
    (void)state;

    tpath(path, sizeof path, "crashed.jsonl");
    n = write_sample(path, false);
    f = fopen(path, "ab");
    fputs("{\"t\":\"object\",\"key\":\"half-writ", f);
    fclose(f);
    assert_int_equal(manifest_summary_read(path, &s, err, sizeof err), 0);
    assert_string_equal(s.run_id, k_header.run_id);
    assert_false(s.trailer_found);
    assert_null(s.result);
    assert_int_equal(s.passes, 1);
    assert_true(s.objects_recorded == n);
    assert_int_equal(s.corrupt_lines, 1);
    manifest_summary_free(&s);
}

static void test_summary_without_header(void **state)
{
    char full[PATH_MAX], path[PATH_MAX], err[256] = "", *data;
    struct manifest_summary s;
    size_t len;
    (void)state;

    tpath(full, sizeof full, "full.jsonl");
    tpath(path, sizeof path, "headless.jsonl");
    write_sample(full, true);
    data = read_bytes(full, &len);
    char *second = strchr(data, '\n') + 1;
    write_bytes(path, second, len - (size_t)(second - data));
    free(data);
    assert_int_equal(manifest_summary_read(path, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "header"));
    assert_null(s.run_id);
    manifest_summary_free(&s);

    tpath(path, sizeof path, "empty.jsonl");
    write_bytes(path, "", 0);
    assert_int_equal(manifest_summary_read(path, &s, err, sizeof err), -1);
    tpath(path, sizeof path, "nonexistent.jsonl");
    assert_int_equal(manifest_summary_read(path, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_header),
        cmocka_unit_test(test_shard_header),
        cmocka_unit_test(test_roundtrip_objects),
        cmocka_unit_test(test_roundtrip_pass_trailer),
        cmocka_unit_test(test_truncated_every_offset),
        cmocka_unit_test(test_garbage_between_good_lines),
        cmocka_unit_test(test_line_length_limit),
        cmocka_unit_test(test_reader_open_missing),
        cmocka_unit_test(test_writer_refuses_existing_file),
        cmocka_unit_test(test_writer_sticky_failure),
        cmocka_unit_test(test_writer_rejects_bad_records),
        cmocka_unit_test(test_index_basic),
        cmocka_unit_test(test_index_grow_100k),
        cmocka_unit_test(test_index_load),
        cmocka_unit_test(test_index_load_supersede),
        cmocka_unit_test(test_checksum_field),
        cmocka_unit_test(test_summary_complete),
        cmocka_unit_test(test_summary_crashed),
        cmocka_unit_test(test_summary_without_header),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
