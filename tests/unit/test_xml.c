/* Unit tests for s3/xml.c: real Ceph RGW bodies (tests/fixtures/rgw), S3 API reference bodies
 * (tests/fixtures/xml), hostile input (DOCTYPE/entities, truncation, garbage, caps) and the request builders.
 * Fixtures are found under $TEST_DATA_DIR (default "tests", relative to the repository root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3/xml.h"

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *data = NULL;
    size_t n = 0, alloc = 0;
    for (;;) {
        if (alloc - n < 4096) {
            alloc = alloc ? alloc * 2 : 8192;
            char *p = realloc(data, alloc + 1);
            if (!p) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + n, 1, alloc - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    data[n] = '\0';
    *len = n;
    return data;
}

/* Contents of tests/fixtures/<dir>/<name>; fails the test when missing. */
static char *fixture(const char *dir, const char *name, size_t *len)
{
    const char *base = getenv("TEST_DATA_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/%s/%s", base && *base ? base : "tests", dir, name);
    char *data = read_file(path, len);
    if (!data) fail_msg("cannot read fixture %s (run from the repository root or set TEST_DATA_DIR)", path);
    return data;
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

enum parser {
    P_LIST_V2,
    P_VERSIONS,
    P_ERROR,
    P_INITIATE,
    P_COMPLETE,
    P_COPY,
    P_VERSIONING,
    P_UPLOADS,
    P_COUNT
};

static char sentinel;
#define GARBAGE ((char *)&sentinel)

/* Runs one parser with outputs pre-filled with garbage; on failure checks they were zeroed; frees. */
static enum s3_err run_parser(enum parser p, const char *body, size_t len)
{
    enum s3_err err = S3_ERR_INVALID;
    switch (p) {
    case P_LIST_V2:
    case P_VERSIONS: {
        struct s3_list_page page;
        memset(&page, 0x5a, sizeof page);
        err = p == P_LIST_V2 ? s3_xml_parse_list_v2(body, len, &page)
                             : s3_xml_parse_list_versions(body, len, &page);
        if (err != S3_OK) assert_true(all_zero(&page, sizeof page));
        if (err == S3_OK) {
            for (size_t i = 0; i < page.count; i++) {
                assert_non_null(page.objects[i].key);
                assert_non_null(page.objects[i].last_modified);
                assert_true(page.objects[i].delete_marker || page.objects[i].etag);
            }
        }
        s3_list_page_free(&page);
        break;
    }
    case P_ERROR: {
        struct s3_error_info e;
        memset(&e, 0x5a, sizeof e);
        err = s3_xml_parse_error(body, len, &e);
        if (err != S3_OK) assert_true(all_zero(&e, sizeof e));
        s3_error_info_free(&e);
        break;
    }
    case P_INITIATE:
    case P_COMPLETE:
    case P_VERSIONING: {
        char *s = GARBAGE;
        err = p == P_INITIATE   ? s3_xml_parse_initiate(body, len, &s)
              : p == P_COMPLETE ? s3_xml_parse_complete(body, len, &s)
                                : s3_xml_parse_versioning(body, len, &s);
        if (err != S3_OK) assert_null(s);
        if (err == S3_OK) assert_non_null(s);
        free(s);
        break;
    }
    case P_COPY: {
        char *etag = GARBAGE, *lm = GARBAGE;
        err = s3_xml_parse_copy(body, len, &etag, &lm);
        if (err != S3_OK) {
            assert_null(etag);
            assert_null(lm);
        }
        free(etag);
        free(lm);
        break;
    }
    case P_UPLOADS: {
        struct s3_upload_list l;
        memset(&l, 0x5a, sizeof l);
        err = s3_xml_parse_uploads(body, len, &l);
        if (err != S3_OK) assert_true(all_zero(&l, sizeof l));
        s3_upload_list_free(&l);
        break;
    }
    case P_COUNT:
        break;
    }
    return err;
}

static void all_parsers_fail(const char *body, size_t len, enum s3_err want)
{
    for (int p = 0; p < P_COUNT; p++) {
        enum s3_err err = run_parser((enum parser)p, body, len);
        if (err != want) fail_msg("parser %d returned %s, want %s", p, s3_err_str(err), s3_err_str(want));
    }
    assert_false(want == S3_OK);
}

#define S(lit) (lit), (sizeof(lit) - 1)

struct fixture_case {
    const char *dir, *name;
    enum parser parser;
};

static const struct fixture_case good[] = {
    {"rgw", "list-objects-v2-page1.xml", P_LIST_V2},
    {"rgw", "list-objects-v2-page2.xml", P_LIST_V2},
    {"rgw", "list-objects-v2-encoding-url.xml", P_LIST_V2},
    {"rgw", "list-object-versions.xml", P_VERSIONS},
    {"rgw", "error-no-such-key.xml", P_ERROR},
    {"rgw", "error-no-such-bucket.xml", P_ERROR},
    {"rgw", "error-precondition-failed-copy.xml", P_ERROR},
    {"rgw", "error-signature-does-not-match.xml", P_ERROR},
    {"rgw", "initiate-multipart-upload.xml", P_INITIATE},
    {"rgw", "complete-multipart-upload.xml", P_COMPLETE},
    {"rgw", "copy-object-result.xml", P_COPY},
    {"rgw", "upload-part-copy-result.xml", P_COPY},
    {"rgw", "get-bucket-versioning-enabled.xml", P_VERSIONING},
    {"rgw", "get-bucket-versioning-never.xml", P_VERSIONING},
    {"rgw", "list-multipart-uploads.xml", P_UPLOADS},
    {"xml", "list-v2-truncated.xml", P_LIST_V2},
    {"xml", "list-v2-delimiter.xml", P_LIST_V2},
    {"xml", "list-v2-encoding-url.xml", P_LIST_V2},
    {"xml", "list-v2-empty.xml", P_LIST_V2},
    {"xml", "list-versions-truncated.xml", P_VERSIONS},
    {"xml", "error-no-such-key.xml", P_ERROR},
    {"xml", "error-slow-down.xml", P_ERROR},
    {"xml", "error-in-200-copy.xml", P_ERROR},
    {"xml", "initiate-multipart-upload.xml", P_INITIATE},
    {"xml", "complete-multipart-upload.xml", P_COMPLETE},
    {"xml", "copy-object-result.xml", P_COPY},
    {"xml", "copy-part-result.xml", P_COPY},
    {"xml", "versioning-suspended.xml", P_VERSIONING},
    {"xml", "versioning-never.xml", P_VERSIONING},
    {"xml", "list-multipart-uploads-truncated.xml", P_UPLOADS},
};
#define NGOOD (sizeof good / sizeof good[0])

static const char *const bad[] = {
    "bad-billion-laughs.xml",   "bad-xxe-file.xml",       "bad-xxe-parameter.xml",
    "bad-doctype-external.xml", "bad-truncated-list.xml", "bad-contents-without-key.xml",
    "bad-size-negative.xml",    "bad-size-overflow.xml",  "bad-wrong-root.xml",
};
#define NBAD (sizeof bad / sizeof bad[0])

/* Keys of the RGW listing bucket (see tests/fixtures/rgw/README.md). */
static const char *const rgw_keys[] = {
    "a b+c%20d.txt",
    "amp&and<lt>\"q'.txt",
    "dir/\xc3\xbcn\xc3\xaf"
    "c\xc3\xb8"
    "d\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.txt",
    "plain.txt",
    "z end.txt",
};
static const char *const rgw_etags[] = {
    "fe839eef981ed91ae8835f9f9ba30bbc", "86b1dbe5f00cf1c666b7b4f983bfe3e8",
    "908c3ab9ca5b3f7543b5fe6a861ca863", "b8070e1d05ddd3f98781834f3f104a4e",
    "51c62ea20f4316d533ddd268b3396e46",
};
static const uint64_t rgw_sizes[] = {22, 27, 35, 18, 18};

/* ---- real RGW responses ---- */

static void test_rgw_list_v2_pages(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("rgw", "list-objects-v2-page1.xml", &len);

    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 3);
    assert_true(p.is_truncated);
    assert_string_equal(p.next_token, rgw_keys[2]); /* RGW's token is the last key, in clear */
    assert_null(p.next_key_marker);
    assert_null(p.next_version_marker);
    assert_int_equal(p.nprefixes, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(p.objects[i].key, rgw_keys[i]);
        assert_string_equal(p.objects[i].etag, rgw_etags[i]);
        assert_int_equal(p.objects[i].size, rgw_sizes[i]);
        assert_null(p.objects[i].version_id);
        assert_false(p.objects[i].delete_marker);
    }
    assert_string_equal(p.objects[0].last_modified, "2026-11-26T16:14:22.892Z");
    s3_list_page_free(&p);
    free(body);

    body = fixture("rgw", "list-objects-v2-page2.xml", &len);
    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 2);
    assert_false(p.is_truncated);
    assert_null(p.next_token);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(p.objects[i].key, rgw_keys[3 + i]);
        assert_string_equal(p.objects[i].etag, rgw_etags[3 + i]);
        assert_int_equal(p.objects[i].size, rgw_sizes[3 + i]);
    }
    assert_string_equal(p.objects[1].last_modified, "2026-11-26T16:14:24.367Z");
    s3_list_page_free(&p);
    s3_list_page_free(&p); /* idempotent */
    free(body);
}

static void test_rgw_list_v2_encoding_url(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("rgw", "list-objects-v2-encoding-url.xml", &len);

    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 5);
    assert_false(p.is_truncated);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(p.objects[i].key, rgw_keys[i]); /* same keys as the unencoded pages */
        assert_string_equal(p.objects[i].etag, rgw_etags[i]);
        assert_int_equal(p.objects[i].size, rgw_sizes[i]);
    }
    s3_list_page_free(&p);
    free(body);
}

static void test_rgw_list_versions(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("rgw", "list-object-versions.xml", &len);

    assert_int_equal(s3_xml_parse_list_versions(body, len, &p), S3_OK);
    assert_int_equal(p.count, 5);
    assert_false(p.is_truncated);
    assert_null(p.next_token);
    assert_null(p.next_key_marker);
    assert_null(p.next_version_marker);

    static const struct {
        const char *key, *version, *etag, *lm;
        uint64_t size;
        bool latest, marker;
    } want[] = {
        {"doc.txt", "GBvrPr6-rMw8vsiYsyIl54Qiyw9Sa7q", "f4b2671846449f316bd10e43f07d6633",
         "2026-11-26T16:14:25.048Z", 14, true, false},
        {"doc.txt", "DUK30KeRRnEQClUrdsjAJywSrFZRdjT", "7e04763e0bbe898ddcf0b1bcc9fd7b1f",
         "2026-11-26T16:14:25.006Z", 14, false, false},
        {"doc.txt", "d3RUqPiWaYCRo6oxeg.fjV5inQ-U6y0", "4a8a6d5c57ff794dda10af1200913cd8",
         "2026-11-26T16:14:24.968Z", 14, false, false},
        {"gone.txt", "-aXvHIJcQJEMf1WLeFYbK8lXTkIxXiX", NULL, "2026-11-26T16:14:26.774Z", 0, true, true},
        {"gone.txt", "zdum.Rwm1Eki6mjDv2qB0yaY7W4aXfp", "17cf052db18a2e466854a841f8030e7d",
         "2026-11-26T16:14:25.089Z", 10, false, false},
    };
    for (size_t i = 0; i < 5; i++) {
        const struct s3_object_info *o = &p.objects[i];
        assert_string_equal(o->key, want[i].key);
        assert_string_equal(o->version_id, want[i].version);
        assert_string_equal(o->last_modified, want[i].lm);
        if (want[i].etag)
            assert_string_equal(o->etag, want[i].etag);
        else
            assert_null(o->etag);
        assert_int_equal(o->size, want[i].size);
        assert_int_equal(o->is_latest, want[i].latest);
        assert_int_equal(o->delete_marker, want[i].marker);
    }
    s3_list_page_free(&p);
    free(body);
}

static void test_rgw_errors(void **state)
{
    (void)state;
    static const struct {
        const char *file, *code, *request_id;
    } cases[] = {
        {"error-no-such-key.xml", "NoSuchKey", "tx00000d159e83a05d635fe-006b085ae0-100c-default"},
        {"error-no-such-bucket.xml", "NoSuchBucket", "tx000006ea7b50ace20afed-006b085ae0-100c-default"},
        {"error-precondition-failed-copy.xml", "PreconditionFailed",
         "tx00000f5fdddbd83dddfbc-006b085ae3-100c-default"},
        {"error-signature-does-not-match.xml", "SignatureDoesNotMatch",
         "tx000009922123ab32fdeac-006b085ae0-100c-default"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        struct s3_error_info e = {0};
        char *body = fixture("rgw", cases[i].file, &len);
        assert_true(s3_xml_is_error(body, len));
        assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
        assert_string_equal(e.code, cases[i].code);
        assert_non_null(e.message); /* <Message></Message>: present and empty */
        assert_string_equal(e.message, "");
        assert_null(e.resource);
        assert_string_equal(e.request_id, cases[i].request_id);
        s3_error_info_free(&e);
        s3_error_info_free(&e);
        free(body);
    }
}

static void test_rgw_multipart(void **state)
{
    (void)state;
    size_t len;
    char *s = NULL, *lm = NULL;

    char *body = fixture("rgw", "initiate-multipart-upload.xml", &len);
    assert_int_equal(s3_xml_parse_initiate(body, len, &s), S3_OK);
    assert_string_equal(s, "2~yZUn3ret8B8eGzNrS0-su3ARo38WE1S");
    free(s);
    free(body);

    /* RGW 16.2 answers CompleteMultipartUpload with an empty <ETag></ETag>: OK, and "" */
    body = fixture("rgw", "complete-multipart-upload.xml", &len);
    assert_false(s3_xml_is_error(body, len));
    assert_int_equal(s3_xml_parse_complete(body, len, &s), S3_OK);
    assert_string_equal(s, "");
    free(s);
    free(body);

    /* RGW copy results carry unquoted ETags */
    body = fixture("rgw", "copy-object-result.xml", &len);
    assert_false(s3_xml_is_error(body, len));
    assert_int_equal(s3_xml_parse_copy(body, len, &s, &lm), S3_OK);
    assert_string_equal(s, "1c2a2139ada95c37601a7d0d64c84e16");
    assert_string_equal(lm, "2026-11-26T16:14:27.577Z");
    free(s);
    free(lm);
    assert_int_equal(s3_xml_parse_copy(body, len, &s, NULL), S3_OK); /* last_modified not wanted */
    assert_string_equal(s, "1c2a2139ada95c37601a7d0d64c84e16");
    free(s);
    free(body);

    body = fixture("rgw", "upload-part-copy-result.xml", &len);
    assert_int_equal(s3_xml_parse_copy(body, len, &s, &lm), S3_OK);
    assert_string_equal(s, "2b5c91ad399409ec9b409b66f5bb00fb");
    assert_string_equal(lm, "2026-11-26T16:14:33.000Z");
    free(s);
    free(lm);
    free(body);

    struct s3_upload_list l = {0};
    body = fixture("rgw", "list-multipart-uploads.xml", &len);
    assert_int_equal(s3_xml_parse_uploads(body, len, &l), S3_OK);
    assert_int_equal(l.count, 1);
    assert_false(l.is_truncated);
    assert_string_equal(l.uploads[0].key, "pending upload.bin");
    assert_string_equal(l.uploads[0].upload_id, "2~gKjQjBNw6-sCp-U_9fpiCxQiwEfSnVy");
    assert_string_equal(l.uploads[0].initiated, "2026-11-26T16:14:34.611Z");
    assert_string_equal(l.next_key_marker, "pending upload.bin");
    assert_string_equal(l.next_upload_id_marker, "2~gKjQjBNw6-sCp-U_9fpiCxQiwEfSnVy");
    s3_upload_list_free(&l);
    s3_upload_list_free(&l);
    free(body);
}

static void test_rgw_versioning(void **state)
{
    (void)state;
    size_t len;
    char *s = NULL;

    char *body = fixture("rgw", "get-bucket-versioning-enabled.xml", &len);
    assert_int_equal(s3_xml_parse_versioning(body, len, &s), S3_OK);
    assert_string_equal(s, "Enabled");
    free(s);
    free(body);

    body = fixture("rgw", "get-bucket-versioning-never.xml", &len);
    assert_int_equal(s3_xml_parse_versioning(body, len, &s), S3_OK);
    assert_string_equal(s, "");
    free(s);
    free(body);
}

/* ---- S3 API reference bodies ---- */

static void test_aws_list_v2(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("xml", "list-v2-truncated.xml", &len); /* indented: NOBLANKS at work */

    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 3);
    assert_true(p.is_truncated);
    assert_string_equal(p.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
    assert_string_equal(p.objects[0].key, "photos/2006/January/sample.jpg");
    assert_string_equal(p.objects[0].etag, "bf1d737a4d46a19f3bced6905cc8b902");
    assert_int_equal(p.objects[0].size, 142863);
    assert_string_equal(p.objects[0].last_modified, "2011-02-26T01:56:20.000Z");
    assert_string_equal(p.objects[1].etag, "9b2cf535f27731c974343645a3985328-3");
    assert_true(p.objects[1].size == 5368709120ULL);
    assert_string_equal(p.objects[2].key, " x & y <z> \xe6\x97\xa5\xe6\x9c\xac "); /* spaces kept */
    assert_int_equal(p.objects[2].size, 0);
    s3_list_page_free(&p);
    free(body);

    body = fixture("xml", "list-v2-delimiter.xml", &len);
    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_false(p.is_truncated);
    assert_null(p.next_token);
    assert_int_equal(p.count, 1);
    assert_string_equal(p.objects[0].key, "photos/index.html");
    assert_int_equal(p.nprefixes, 2);
    assert_string_equal(p.common_prefixes[0], "photos/2006/");
    assert_string_equal(p.common_prefixes[1], "photos/2007/");
    s3_list_page_free(&p);
    free(body);

    body = fixture("xml", "list-v2-empty.xml", &len);
    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 0);
    assert_null(p.objects);
    assert_false(p.is_truncated);
    s3_list_page_free(&p);
    free(body);
}

static void test_aws_list_v2_encoding_url(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("xml", "list-v2-encoding-url.xml", &len);

    assert_int_equal(s3_xml_parse_list_v2(body, len, &p), S3_OK);
    assert_int_equal(p.count, 4);
    assert_true(p.is_truncated);
    assert_string_equal(p.objects[0].key, "my dir/my file+1.txt"); /* '+' is a space, %2B a plus */
    assert_string_equal(p.objects[1].key, "my dir/100% & <x> #?");
    assert_string_equal(p.objects[2].key, "my dir/ctl\x01\x1f\x7f"
                                          "end");
    assert_string_equal(p.objects[3].key, "my dir/\xe6\x97\xa5\xe6\x9c\xac//trailing/");
    assert_int_equal(p.nprefixes, 1);
    assert_string_equal(p.common_prefixes[0], "my dir/sub+dir/");
    assert_string_equal(p.next_token, "1%2Bb%25c%3D%3D"); /* opaque: not decoded */
    s3_list_page_free(&p);
    free(body);
}

static void test_aws_list_versions(void **state)
{
    (void)state;
    size_t len;
    struct s3_list_page p = {0};
    char *body = fixture("xml", "list-versions-truncated.xml", &len);

    assert_int_equal(s3_xml_parse_list_versions(body, len, &p), S3_OK);
    assert_int_equal(p.count, 3);
    assert_true(p.is_truncated);
    assert_string_equal(p.next_key_marker, "my-second-image.jpg");
    assert_string_equal(p.next_version_marker, "03jpff543dhffds434rfdsFDN943fdsFkdmqnh892");
    assert_null(p.next_token);
    assert_true(p.objects[0].delete_marker);
    assert_true(p.objects[0].is_latest);
    assert_null(p.objects[0].etag);
    assert_int_equal(p.objects[0].size, 0);
    assert_string_equal(p.objects[0].key, "my-image.jpg");
    assert_false(p.objects[1].delete_marker);
    assert_false(p.objects[1].is_latest);
    assert_string_equal(p.objects[1].version_id, "3/L4kqtJl40Nr8X8gdRQBpUMLUo");
    assert_string_equal(p.objects[1].etag, "fba9dede5f27731c9771645a39863328");
    assert_int_equal(p.objects[1].size, 434234);
    assert_string_equal(p.objects[2].version_id, "null");
    assert_true(p.objects[2].is_latest);
    s3_list_page_free(&p);
    free(body);
}

static void test_aws_errors(void **state)
{
    (void)state;
    size_t len;
    struct s3_error_info e = {0};

    char *body = fixture("xml", "error-no-such-key.xml", &len);
    assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
    assert_string_equal(e.code, "NoSuchKey");
    assert_string_equal(e.message, "The resource you requested does not exist");
    assert_string_equal(e.resource, "/mybucket/myfoto.jpg");
    assert_string_equal(e.request_id, "4442587FB7D0A2F9");
    s3_error_info_free(&e);
    free(body);

    body = fixture("xml", "error-slow-down.xml", &len);
    assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
    assert_string_equal(e.code, "SlowDown");
    assert_string_equal(e.message, ""); /* <Message/> */
    assert_null(e.resource);
    s3_error_info_free(&e);
    free(body);

    /* AWS's clock skew refusal carries the server's time; RGW's does not (its Date header does) */
    body = fixture("xml", "error-time-skewed.xml", &len);
    assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
    assert_string_equal(e.code, "RequestTimeTooSkewed");
    assert_string_equal(e.server_time, "2026-12-02T03:53:39Z");
    s3_error_info_free(&e);
    free(body);
    body = fixture("xml", "error-time-skewed-rgw.xml", &len);
    assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
    assert_string_equal(e.code, "RequestTimeTooSkewed");
    assert_null(e.server_time);
    s3_error_info_free(&e);
    free(body);

    /* 200 OK with an error body after keep-alive whitespace (CopyObject, CompleteMultipartUpload) */
    body = fixture("xml", "error-in-200-copy.xml", &len);
    assert_true(s3_xml_is_error(body, len));
    assert_int_equal(s3_xml_parse_error(body, len, &e), S3_OK);
    assert_string_equal(e.code, "InternalError");
    s3_error_info_free(&e);
    char *etag = GARBAGE, *lm = GARBAGE;
    assert_int_equal(s3_xml_parse_copy(body, len, &etag, &lm), S3_ERR_XML);
    assert_null(etag);
    assert_null(lm);
    assert_int_equal(s3_xml_parse_complete(body, len, &etag), S3_ERR_XML);
    free(body);

    /* only the four documented fields; unknown ones ignored; no namespace needed */
    assert_int_equal(s3_xml_parse_error(S("<Error><Foo>x</Foo></Error>"), &e), S3_OK);
    assert_null(e.code);
    assert_null(e.message);
    s3_error_info_free(&e);
    assert_int_equal(s3_xml_parse_error(S("<Error><Code>A</Code><Code>B</Code></Error>"), &e), S3_ERR_XML);
    assert_true(all_zero(&e, sizeof e));
}

static void test_aws_multipart_and_copy(void **state)
{
    (void)state;
    size_t len;
    char *s = NULL, *lm = NULL;

    char *body = fixture("xml", "initiate-multipart-upload.xml", &len);
    assert_int_equal(s3_xml_parse_initiate(body, len, &s), S3_OK);
    assert_string_equal(s, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    free(s);
    free(body);

    body = fixture("xml", "complete-multipart-upload.xml", &len);
    assert_int_equal(s3_xml_parse_complete(body, len, &s), S3_OK);
    assert_string_equal(s, "3858f62230ac3c915f300c664312c11f-9");
    free(s);
    free(body);

    body = fixture("xml", "copy-object-result.xml", &len); /* &quot; form */
    assert_int_equal(s3_xml_parse_copy(body, len, &s, &lm), S3_OK);
    assert_string_equal(s, "9b2cf535f27731c974343645a3985328");
    assert_string_equal(lm, "2009-10-28T22:32:00.000Z");
    free(s);
    free(lm);
    free(body);

    body = fixture("xml", "copy-part-result.xml", &len);
    assert_int_equal(s3_xml_parse_copy(body, len, &s, &lm), S3_OK);
    assert_string_equal(s, "b1946ac92492d2347c6235b4d2611184");
    free(s);
    free(lm);
    free(body);

    /* LastModified is optional, ETag is not; an empty UploadId is useless */
    assert_int_equal(s3_xml_parse_copy(S("<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>"), &s, &lm),
                     S3_OK);
    assert_string_equal(s, "e");
    assert_null(lm);
    free(s);
    assert_int_equal(
        s3_xml_parse_copy(S("<CopyObjectResult><LastModified>x</LastModified></CopyObjectResult>"), &s, &lm),
        S3_ERR_XML);
    assert_null(s);
    assert_null(lm);
    assert_int_equal(s3_xml_parse_complete(S("<CompleteMultipartUploadResult/>"), &s), S3_ERR_XML);
    assert_int_equal(s3_xml_parse_initiate(S("<InitiateMultipartUploadResult><UploadId></UploadId>"
                                             "</InitiateMultipartUploadResult>"),
                                           &s),
                     S3_ERR_XML);
    assert_null(s);

    struct s3_upload_list l = {0};
    body = fixture("xml", "list-multipart-uploads-truncated.xml", &len);
    assert_int_equal(s3_xml_parse_uploads(body, len, &l), S3_OK);
    assert_int_equal(l.count, 2);
    assert_true(l.is_truncated);
    assert_string_equal(l.next_key_marker, "my-movie.m2ts");
    assert_string_equal(l.next_upload_id_marker, "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ");
    assert_string_equal(l.uploads[0].key, "my-divisor");
    assert_string_equal(l.uploads[0].upload_id, "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw");
    assert_string_equal(l.uploads[1].initiated, "2010-11-10T20:48:34.000Z");
    s3_upload_list_free(&l);
    free(body);

    /* an upload without UploadId, and a truncated list with nowhere to continue from */
    assert_int_equal(s3_xml_parse_uploads(S("<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                                            "<Upload><Key>k</Key></Upload></ListMultipartUploadsResult>"),
                                          &l),
                     S3_ERR_XML);
    assert_true(all_zero(&l, sizeof l));
    assert_int_equal(s3_xml_parse_uploads(S("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                            "</ListMultipartUploadsResult>"),
                                          &l),
                     S3_ERR_XML);
    assert_int_equal(s3_xml_parse_uploads(S("<ListMultipartUploadsResult><EncodingType>url</EncodingType>"
                                            "<IsTruncated>false</IsTruncated><Upload><Key>a+b%2Bc</Key>"
                                            "<UploadId>u</UploadId></Upload></ListMultipartUploadsResult>"),
                                          &l),
                     S3_OK);
    assert_string_equal(l.uploads[0].key, "a b+c");
    assert_null(l.uploads[0].initiated);
    s3_upload_list_free(&l);
}

static void test_aws_versioning(void **state)
{
    (void)state;
    size_t len;
    char *s = NULL;

    char *body = fixture("xml", "versioning-suspended.xml", &len);
    assert_int_equal(s3_xml_parse_versioning(body, len, &s), S3_OK);
    assert_string_equal(s, "Suspended");
    free(s);
    free(body);

    body = fixture("xml", "versioning-never.xml", &len); /* self-closed root */
    assert_int_equal(s3_xml_parse_versioning(body, len, &s), S3_OK);
    assert_string_equal(s, "");
    free(s);
    free(body);

    assert_int_equal(s3_xml_parse_versioning(S("<VersioningConfiguration><Status>Maybe</Status>"
                                               "</VersioningConfiguration>"),
                                             &s),
                     S3_ERR_XML);
    assert_null(s);
}

/* Every good fixture is accepted by its own parser and refused (S3_ERR_XML, outputs zeroed) by all others. */
static void test_fixture_matrix(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGOOD; i++) {
        size_t len;
        char *body = fixture(good[i].dir, good[i].name, &len);
        for (int p = 0; p < P_COUNT; p++) {
            enum s3_err want = p == (int)good[i].parser ? S3_OK : S3_ERR_XML;
            enum s3_err got = run_parser((enum parser)p, body, len);
            if (got != want)
                fail_msg("%s/%s with parser %d: got %s, want %s", good[i].dir, good[i].name, p,
                         s3_err_str(got), s3_err_str(want));
        }
        bool err_doc = good[i].parser == P_ERROR;
        assert_int_equal(s3_xml_is_error(body, len), err_doc);
        free(body);
    }
}

/* Every strict prefix of every good fixture (a truncated response) is refused. */
static void test_truncated_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < NGOOD; i++) {
        size_t len;
        char *body = fixture(good[i].dir, good[i].name, &len);
        size_t end = len;
        while (end && (body[end - 1] == '\n' || body[end - 1] == ' '))
            end--;
        for (size_t cut = 0; cut < end; cut++) {
            char *copy = malloc(cut ? cut : 1); /* exact-size copy so ASan sees any overread */
            assert_non_null(copy);
            memcpy(copy, body, cut);
            enum s3_err err = run_parser(good[i].parser, copy, cut);
            if (err != S3_ERR_XML) fail_msg("%s cut at %zu: got %s", good[i].name, cut, s3_err_str(err));
            free(copy);
        }
        free(body);
    }
}

/* Recorded hostile/broken bodies: a clean S3_ERR_XML from every parser. */
static void test_bad_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < NBAD; i++) {
        size_t len;
        char *body = fixture("xml", bad[i], &len);
        all_parsers_fail(body, len, S3_ERR_XML);
        free(body);
    }
}

/* ---- DOCTYPE, entities, external loads ---- */

static int loads;
static xmlParserInputPtr counting_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    loads++;
    return NULL;
}

static void test_doctype_refused_nothing_loaded(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "<!DOCTYPE Error><Error><Code>x</Code></Error>",
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Error [<!ENTITY e \"boom\">]><Error><Code>&e;</Code></Error>",
        "<!DOCTYPE Error SYSTEM \"file:///etc/passwd\"><Error/>",
        "<!DOCTYPE Error PUBLIC \"-//x//y\" \"http://127.0.0.1:9/x.dtd\"><Error/>",
        "<!DOCTYPE Error [<!ENTITY % p SYSTEM \"file:///etc/passwd\"> %p;]><Error/>",
        "<!-- c --><!DOCTYPE Error><Error/>",
        "<Error/><!DOCTYPE Error>",
        "<Error><Code>&xxe;</Code></Error>", /* undeclared entity */
        "<Error><!ENTITY x \"y\"></Error>",
    };
    xmlExternalEntityLoader prev = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(counting_loader);
    loads = 0;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        all_parsers_fail(docs[i], strlen(docs[i]), S3_ERR_XML);
    }
    for (size_t i = 0; i < NBAD; i++) {
        size_t len;
        char *body = fixture("xml", bad[i], &len);
        all_parsers_fail(body, len, S3_ERR_XML);
        free(body);
    }
    xmlSetExternalEntityLoader(prev);
    assert_int_equal(loads, 0); /* no external entity or DTD was even requested */

    /* XInclude is not processed: the include element is just ignored markup inside the text */
    size_t len;
    char *s = NULL;
    char *body = fixture("xml", "bad-xinclude.xml", &len);
    assert_int_equal(s3_xml_parse_initiate(body, len, &s), S3_OK);
    assert_string_equal(s, "id-");
    free(s);
    free(body);

    /* markup declarations inside comments, CDATA or escaped text are data, not a DOCTYPE */
    struct s3_error_info e = {0};
    assert_int_equal(s3_xml_parse_error(S("<!-- <!DOCTYPE x> --><Error><Code><![CDATA[<!DOCTYPE a>]]></Code>"
                                          "<Message>&lt;!DOCTYPE b&gt;</Message></Error>"),
                                        &e),
                     S3_OK);
    assert_string_equal(e.code, "<!DOCTYPE a>");
    assert_string_equal(e.message, "<!DOCTYPE b>");
    s3_error_info_free(&e);
}

/* ---- caps and degenerate input ---- */

static void test_size_cap(void **state)
{
    (void)state;
    /* a realistic body of exactly S3_XML_MAX_BODY bytes: ~166000 entries, padded with trailing whitespace */
    size_t cap = S3_XML_MAX_BODY, n, i = 0;
    char *big = malloc(cap + 1);
    assert_non_null(big);
    n = (size_t)sprintf(big, "<ListBucketResult><IsTruncated>false</IsTruncated>");
    while (n + 400 < cap) {
        n += (size_t)sprintf(big + n,
                             "<Contents><Key>k%zu</Key><LastModified>t</LastModified><ETag>e</ETag>"
                             "<Size>%zu</Size></Contents>",
                             i, i);
        i++;
    }
    n += (size_t)sprintf(big + n, "</ListBucketResult>");
    memset(big + n, ' ', cap + 1 - n);

    struct s3_list_page p = {0};
    assert_int_equal(s3_xml_parse_list_v2(big, cap, &p), S3_OK); /* exactly at the cap */
    assert_int_equal(p.count, i);
    s3_list_page_free(&p);
    all_parsers_fail(big, cap + 1, S3_ERR_TOO_LARGE);
    all_parsers_fail(big, SIZE_MAX, S3_ERR_TOO_LARGE); /* refused before anything is read */
    free(big);
}

static void test_empty_and_null(void **state)
{
    (void)state;
    all_parsers_fail("", 0, S3_ERR_XML);
    all_parsers_fail(NULL, 0, S3_ERR_XML);
    all_parsers_fail(NULL, 10, S3_ERR_XML);
    all_parsers_fail(S("   \n\t"), S3_ERR_XML);
    all_parsers_fail(S("<?xml version=\"1.0\"?>"), S3_ERR_XML);
    all_parsers_fail(S("<"), S3_ERR_XML);
    all_parsers_fail(S("<!"), S3_ERR_XML);
    all_parsers_fail(S("\0\0\0\0"), S3_ERR_XML);
    all_parsers_fail(S("<Error>\0</Error>"), S3_ERR_XML);

    /* NULL outputs are refused, not dereferenced */
    assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_list_versions(S("<ListVersionsResult/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_error(S("<Error/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_initiate(S("<Error/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_complete(S("<Error/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_copy(S("<Error/>"), NULL, NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_versioning(S("<Error/>"), NULL), S3_ERR_INVALID);
    assert_int_equal(s3_xml_parse_uploads(S("<Error/>"), NULL), S3_ERR_INVALID);
    s3_list_page_free(NULL);
    s3_error_info_free(NULL);
    s3_upload_list_free(NULL);
}

static void test_deep_nesting_and_attributes(void **state)
{
    (void)state;
    /* 100000 levels: libxml2 stops at its depth limit, we return an error */
    size_t depth = 100000;
    char *deep = malloc(depth * 7 + 64);
    assert_non_null(deep);
    size_t n = (size_t)sprintf(deep, "<ListBucketResult>");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "<a>");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "</a>");
    n += (size_t)sprintf(deep + n, "</ListBucketResult>");
    all_parsers_fail(deep, n, S3_ERR_XML);
    free(deep);

    /* moderate unknown nesting inside an entry is ignored */
    struct s3_list_page p = {0};
    char buf[4096];
    n = (size_t)sprintf(buf, "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
                             "<LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "<x>");
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(buf + n, "</x>");
    n += (size_t)sprintf(buf + n, "</Contents></ListBucketResult>");
    assert_int_equal(s3_xml_parse_list_v2(buf, n, &p), S3_OK);
    assert_int_equal(p.count, 1);
    s3_list_page_free(&p);

    /* 200000 attributes on one tag: libxml2 2.9 would spend minutes on pairwise checks; refused up front */
    size_t nattr = 200000;
    char *attrs = malloc(nattr * 16 + 64);
    assert_non_null(attrs);
    n = (size_t)sprintf(attrs, "<Error");
    for (size_t i = 0; i < nattr; i++)
        n += (size_t)sprintf(attrs + n, " a%zu=''", i);
    n += (size_t)sprintf(attrs + n, "/>");
    all_parsers_fail(attrs, n, S3_ERR_XML);
    free(attrs);

    /* a few attributes (xmlns, xsi) are fine; quoted '=' and '>' do not count or end the tag */
    struct s3_error_info e = {0};
    assert_int_equal(s3_xml_parse_error(S("<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\" "
                                          "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                                          "a=\"x=y>z\"><Code>C</Code></Error>"),
                                        &e),
                     S3_OK);
    assert_string_equal(e.code, "C");
    s3_error_info_free(&e);
}

static void test_encodings(void **state)
{
    (void)state;
    struct s3_error_info e = {0};

    /* UTF-8 byte order mark */
    assert_int_equal(
        s3_xml_parse_error(S("\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>"
                             "\xc3\xbc</Code></Error>"),
                           &e),
        S3_OK);
    assert_string_equal(e.code, "\xc3\xbc");
    s3_error_info_free(&e);
    assert_true(s3_xml_is_error(S("\xef\xbb\xbf<Error>")));

    /* numeric character references decode to UTF-8; forbidden ones (&#1;) are malformed */
    assert_int_equal(s3_xml_parse_error(S("<Error><Code>&#x65E5;&#26412;</Code></Error>"), &e), S3_OK);
    assert_string_equal(e.code, "\xe6\x97\xa5\xe6\x9c\xac");
    s3_error_info_free(&e);
    all_parsers_fail(S("<Error><Code>&#1;</Code></Error>"), S3_ERR_XML);

    /* S3 speaks UTF-8 only: other declared encodings, invalid UTF-8 and UTF-16 are refused */
    all_parsers_fail(S("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>\xe9</Code></Error>"),
                     S3_ERR_XML);
    all_parsers_fail(
        S("<?xml version=\"1.0\" encoding=\"SHIFT_JIS\"?><Error><Code>\x82\xff\x82</Code></Error>"),
        S3_ERR_XML);
    all_parsers_fail(S("<Error><Code>\xff\xfe</Code></Error>"), S3_ERR_XML);
    all_parsers_fail(S("\xff\xfe<\0E\0r\0r\0o\0r\0/\0>\0"), S3_ERR_XML);
    all_parsers_fail(S("\xfe\xff\0<\0E\0r\0r\0o\0r\0/\0>"), S3_ERR_XML);
    /* no byte order mark: what libxml2 would guess from the first four bytes when no encoding is forced
     * (UTF-16, UCS-4, EBCDIC) is refused as well */
    all_parsers_fail(S("<\0?\0x\0m\0l\0 \0v\0e\0r\0s\0i\0o\0n\0=\0\"\0001\0.\0000\0\"\0?\0>\0<\0E\0r\0r\0o\0r\0/\0>\0"),
                     S3_ERR_XML);
    all_parsers_fail(S("\0<\0E\0r\0r\0o\0r\0/\0>"), S3_ERR_XML);
    all_parsers_fail(S("<\0\0\0E\0\0\0/\0\0\0>\0\0\0"), S3_ERR_XML);
    all_parsers_fail(S("\x4c\x6f\xa7\x94\x93\x40\xa5\x85\x99\xa2\x89\x96\x95\x7e\x7f\xf1\x4b\xf0\x7f\x6f\x6e"
                       "\x4c\xc5\x99\x99\x96\x99\x61\x6e"),
                     S3_ERR_XML);
}

/* Nothing reaches stderr, whatever the input (libxml2 would otherwise print parser and encoding errors). */
static void test_silent_on_stderr(void **state)
{
    (void)state;
#define D(lit)                                                                                               \
    {                                                                                                        \
        (lit), sizeof(lit) - 1                                                                               \
    }
    static const struct {
        const char *body;
        size_t len;
    } docs[] = {
        D("<Error><Code>x</Cod></Error>"),
        D("<?xml version=\"1.0\" encoding=\"SHIFT_JIS\"?><Error><Code>\x82\xff\x82</Code></Error>"),
        D("<?xml version=\"1.0\" encoding=\"EUC-JP\"?><Error>\x8e\xff\xff\xfe\xa1</Error>"),
        D("<?xml version=\"1.0\" encoding=\"no-such-encoding\"?><Error/>"),
        D("<Error>&undefined;</Error>"),
        D("<!DOCTYPE Error [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Error>&e;</Error>"),
        D("\xff\xfe<\0E\0r\0r\0o\0r\0/\0>\0"),
        D("<Error><a b='1' b='2'/></Error>"),
        D("<p:Error xmlns:p='http://x'><q:Code/></p:Error>"),
        D("<Error>\0</Error>"),
        D("garbage\x01\x02\x03"),
    };
#undef D
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_true(saved >= 0);
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        for (int p = 0; p < P_COUNT; p++)
            (void)run_parser((enum parser)p, docs[i].body, docs[i].len);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long size = ftell(tmp) < 0 ? -1 : (fseek(tmp, 0, SEEK_END), ftell(tmp));
    fclose(tmp);
    assert_int_equal(size, 0);
}

/* ---- field validation ---- */

/* A one-object ListBucketResult with the given <Contents> inner XML. */
static enum s3_err list_one(const char *contents, struct s3_list_page *p)
{
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
                     "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><IsTruncated>false</IsTruncated>"
                     "<Contents>%s</Contents></ListBucketResult>",
                     contents);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return s3_xml_parse_list_v2(buf, (size_t)n, p);
}

#define ENTRY(key, size)                                                                                     \
    "<Key>" key "</Key><LastModified>2026-11-26T16:01:37.000Z</LastModified>"                                \
    "<ETag>\"abc\"</ETag><Size>" size "</Size>"

static void test_sizes(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const char *const bad_sizes[] = {"-1",
                                            "abc",
                                            "",
                                            " ",
                                            "1.5",
                                            "1e3",
                                            "+5",
                                            "0x10",
                                            "12 34",
                                            "18446744073709551616",
                                            "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        char contents[512];
        snprintf(contents, sizeof contents, ENTRY("k", "%s"), bad_sizes[i]);
        if (list_one(contents, &p) != S3_ERR_XML) fail_msg("size '%s' accepted", bad_sizes[i]);
        assert_true(all_zero(&p, sizeof p));
    }
    assert_int_equal(list_one(ENTRY("k", "18446744073709551615"), &p), S3_OK);
    assert_true(p.objects[0].size == UINT64_MAX);
    s3_list_page_free(&p);
    assert_int_equal(list_one(ENTRY("k", " 0042\n"), &p), S3_OK);
    assert_int_equal(p.objects[0].size, 42);
    s3_list_page_free(&p);
}

static void test_required_fields(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const char *const broken[] = {
        "<LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>",            /* no Key */
        "<Key></Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>", /* empty Key */
        "<Key>k</Key><LastModified>t</LastModified><ETag>e</ETag>",              /* no Size */
        "<Key>k</Key><LastModified>t</LastModified><Size>1</Size>",              /* no ETag */
        "<Key>k</Key><ETag>e</ETag><Size>1</Size>",                              /* no LastModified */
        "<Key>k</Key><Key>j</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>", /* twice */
        "<Key>k</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size><Size>2</Size>",
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        if (list_one(broken[i], &p) != S3_ERR_XML) fail_msg("accepted: %s", broken[i]);
        assert_true(all_zero(&p, sizeof p));
    }

    /* page level: IsTruncated must be present and boolean; truncated needs a continuation token */
    static const char *const pages[] = {
        "<ListBucketResult></ListBucketResult>",
        "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken/></ListBucketResult>",
        "<ListBucketResult><IsTruncated>false</IsTruncated><IsTruncated>true</IsTruncated></"
        "ListBucketResult>",
        "<ListBucketResult><IsTruncated>false</IsTruncated><CommonPrefixes/></ListBucketResult>",
        "<ListBucketResult><IsTruncated>false</IsTruncated><EncodingType>base64</EncodingType></"
        "ListBucketResult>",
        "<ListBucketResult><IsTruncated>false</IsTruncated>" /* a good entry, then a bad one: all freed */
        "<Contents>" ENTRY("a", "1") "</Contents><Contents>" ENTRY("b", "x") "</Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>" ENTRY(
            "a", "1") "</Contents>"
                      "</ListBucketResult><ListBucketResult/>",
        "<ListBucketResult><IsTruncated>false</IsTruncated>", /* never closed */
    };
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        if (s3_xml_parse_list_v2(pages[i], strlen(pages[i]), &p) != S3_ERR_XML)
            fail_msg("accepted: %s", pages[i]);
        assert_true(all_zero(&p, sizeof p));
    }
    assert_int_equal(
        s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated> 1 </IsTruncated>"
                               "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>"),
                             &p),
        S3_OK);
    assert_true(p.is_truncated);
    s3_list_page_free(&p);

    /* versions: VersionId required, IsLatest boolean, truncated needs NextKeyMarker */
    static const char *const vpages[] = {
        "<ListVersionsResult><IsTruncated>false</IsTruncated><Version>" ENTRY("k",
                                                                              "1") "</Version>"
                                                                                   "</ListVersionsResult>",
        "<ListVersionsResult><IsTruncated>false</IsTruncated><Version>" ENTRY(
            "k", "1") "<VersionId>v</VersionId><IsLatest>yes</IsLatest></Version></ListVersionsResult>",
        "<ListVersionsResult><IsTruncated>false</IsTruncated><DeleteMarker><VersionId>v</VersionId>"
        "<LastModified>t</LastModified></DeleteMarker></ListVersionsResult>",
        "<ListVersionsResult><IsTruncated>true</IsTruncated><NextVersionIdMarker>v</NextVersionIdMarker>"
        "</ListVersionsResult>",
    };
    for (size_t i = 0; i < sizeof vpages / sizeof vpages[0]; i++) {
        if (s3_xml_parse_list_versions(vpages[i], strlen(vpages[i]), &p) != S3_ERR_XML)
            fail_msg("accepted: %s", vpages[i]);
        assert_true(all_zero(&p, sizeof p));
    }
}

static void test_keys_and_etags(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const struct {
        const char *xml_key, *key;
    } keys[] = {
        {"   ", "   "}, /* whitespace-only key survives NOBLANKS */
        {" lead and trail ", " lead and trail "},
        {"a&amp;b&lt;c&gt;d&quot;e&apos;f", "a&b<c>d\"e'f"},
        {"<![CDATA[x<y&z]]>", "x<y&z"},
        {"a<!-- comment -->b", "ab"},
        {"a<?pi x?>b", "ab"},
        {"line\nbreak", "line\nbreak"},
        {"tab\there", "tab\there"},
        {"a%20b+c", "a%20b+c"}, /* not url-encoded: literal */
        {"//double//slash/", "//double//slash/"},
        {"#?", "#?"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char contents[512];
        snprintf(contents, sizeof contents,
                 "<Key>%s</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>", keys[i].xml_key);
        if (list_one(contents, &p) != S3_OK) fail_msg("refused key %s", keys[i].xml_key);
        assert_string_equal(p.objects[0].key, keys[i].key);
        s3_list_page_free(&p);
    }

    /* a 1024-byte key */
    char key[1025], contents[1400];
    memset(key, 'k', 1024);
    key[1024] = '\0';
    snprintf(contents, sizeof contents,
             "<Key>%s</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>", key);
    assert_int_equal(list_one(contents, &p), S3_OK);
    assert_string_equal(p.objects[0].key, key);
    s3_list_page_free(&p);

    static const struct {
        const char *xml, *etag;
    } etags[] = {
        {"&quot;abc&quot;", "abc"},
        {"\"abc\"", "abc"},
        {"abc", "abc"},
        {"\"", "\""},
        {"\"\"", ""},
        {"", ""},
        {"\"a\"b\"", "a\"b"},
        {"\"abc-12\"", "abc-12"},
    };
    for (size_t i = 0; i < sizeof etags / sizeof etags[0]; i++) {
        snprintf(contents, sizeof contents,
                 "<Key>k</Key><LastModified>t</LastModified><ETag>%s</ETag><Size>1</Size>", etags[i].xml);
        assert_int_equal(list_one(contents, &p), S3_OK);
        assert_string_equal(p.objects[0].etag, etags[i].etag);
        s3_list_page_free(&p);
    }

    /* namespaces are ignored: prefixed names or none at all */
    assert_int_equal(
        s3_xml_parse_list_v2(S("<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                               "<s3:IsTruncated>false</s3:IsTruncated><s3:Contents><s3:Key>k</s3:Key>"
                               "<s3:LastModified>t</s3:LastModified><s3:ETag>e</s3:ETag><s3:Size>7"
                               "</s3:Size></s3:Contents></s3:ListBucketResult>"),
                             &p),
        S3_OK);
    assert_int_equal(p.count, 1);
    assert_int_equal(p.objects[0].size, 7);
    s3_list_page_free(&p);
}

static void test_url_decoding(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    char buf[1024];
    static const struct {
        const char *enc, *dec;
    } good_keys[] = {
        {"a+b", "a b"},         {"a%2Bb", "a+b"},          {"a%20b", "a b"},   {"%25", "%"},
        {"%2f%2F", "//"},       {"%01", "\x01"},           {"%0A%0D", "\n\r"}, {"%C3%A9", "\xc3\xa9"},
        {"%FF%FE", "\xff\xfe"}, {"%26%3C%3E%22", "&<>\""}, {"q&apos;", "q'"},  {"plain", "plain"},
    };
    for (size_t i = 0; i < sizeof good_keys / sizeof good_keys[0]; i++) {
        int n = snprintf(buf, sizeof buf,
                         "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
                         "<Contents>" ENTRY("%s", "1") "</Contents></ListBucketResult>",
                         good_keys[i].enc);
        if (s3_xml_parse_list_v2(buf, (size_t)n, &p) != S3_OK) fail_msg("refused %s", good_keys[i].enc);
        assert_string_equal(p.objects[0].key, good_keys[i].dec);
        s3_list_page_free(&p);
    }
    static const char *const bad_keys[] = {"%", "%4", "a%zz", "%g0", "%00", "a%00b", "%%", "%+1"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        int n = snprintf(buf, sizeof buf,
                         "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
                         "<Contents>" ENTRY("%s", "1") "</Contents></ListBucketResult>",
                         bad_keys[i]);
        if (s3_xml_parse_list_v2(buf, (size_t)n, &p) != S3_ERR_XML) fail_msg("accepted %s", bad_keys[i]);
        assert_true(all_zero(&p, sizeof p));
    }

    /* EncodingType may come after the entries; the token stays opaque; no EncodingType → no decoding */
    assert_int_equal(
        s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>true</IsTruncated><Contents>" ENTRY(
                                 "x%2By", "1") "</Contents><NextContinuationToken>a%2Bb+c"
                                               "</NextContinuationToken><EncodingType>url</EncodingType>"
                                               "</ListBucketResult>"),
                             &p),
        S3_OK);
    assert_string_equal(p.objects[0].key, "x+y");
    assert_string_equal(p.next_token, "a%2Bb+c");
    s3_list_page_free(&p);

    /* versions: Key and NextKeyMarker decoded, version ids not */
    assert_int_equal(
        s3_xml_parse_list_versions(
            S("<ListVersionsResult><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
              "<NextKeyMarker>next%20key</NextKeyMarker><NextVersionIdMarker>v%20v"
              "</NextVersionIdMarker><DeleteMarker><Key>a%26b</Key><VersionId>v%2B</VersionId>"
              "<IsLatest>true</IsLatest><LastModified>t</LastModified></DeleteMarker>"
              "<CommonPrefixes><Prefix>p%2F</Prefix></CommonPrefixes></ListVersionsResult>"),
            &p),
        S3_OK);
    assert_string_equal(p.next_key_marker, "next key");
    assert_string_equal(p.next_version_marker, "v%20v");
    assert_string_equal(p.objects[0].key, "a&b");
    assert_string_equal(p.objects[0].version_id, "v%2B");
    assert_string_equal(p.common_prefixes[0], "p/");
    s3_list_page_free(&p);
}

/* ---- big pages ---- */

/* ---- what a tree-less (SAX) parser could get wrong ---- */

/* Only direct children of the root and of entries count; nested elements' text is not the field's. */
static void test_depth_and_names(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const struct {
        const char *contents, *key; /* key NULL: refused */
    } cases[] = {
        {"<Owner><Key>deep</Key></Owner><Key>k</Key>", "k"},
        {"<Owner><Key>deep</Key></Owner>", NULL},        /* a nested Key is not the entry's */
        {"<Key>a<b>c</b>d</Key>", "ad"},                 /* text of nested elements is not taken */
        {"<Key><Key>x</Key></Key>", NULL},               /* the outer Key is empty */
        {"<x:Key>k</x:Key>", NULL},                      /* undeclared prefix: the name is "x:Key" */
        {"<s3:Key xmlns:s3=\"urn:s3\">k</s3:Key>", "k"}, /* any namespace */
        {"<Key>&quot;a&amp;b&#x2F;c&#47;&lt;&#233;</Key>", "\"a&b/c/<\xc3\xa9"},
        {"<Key>a<![CDATA[ b ]]>c<![CDATA[]]>d</Key>", "a b cd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char contents[512];
        snprintf(contents, sizeof contents, "%s<LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>",
                 cases[i].contents);
        enum s3_err err = list_one(contents, &p);
        if (!cases[i].key) {
            if (err != S3_ERR_XML) fail_msg("accepted %s", cases[i].contents);
            continue;
        }
        if (err != S3_OK) fail_msg("refused %s", cases[i].contents);
        assert_string_equal(p.objects[0].key, cases[i].key);
        s3_list_page_free(&p);
    }

    /* entries below the root's children, and fields directly under the root, are not entries */
    assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>false</IsTruncated><W><Contents>"
                                            "<Key>k</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1"
                                            "</Size></Contents></W><Key>root</Key></ListBucketResult>"),
                                          &p),
                     S3_OK);
    assert_int_equal(p.count, 0);
    assert_null(p.objects);
    s3_list_page_free(&p);
    /* root matched by local name; an undeclared prefix on it is refused */
    assert_int_equal(s3_xml_parse_list_v2(S("<s3:ListBucketResult xmlns:s3=\"urn:x\"><s3:IsTruncated>false"
                                            "</s3:IsTruncated></s3:ListBucketResult>"),
                                          &p),
                     S3_OK);
    s3_list_page_free(&p);
    assert_int_equal(s3_xml_parse_list_v2(S("<s3:ListBucketResult><IsTruncated>false</IsTruncated>"
                                            "</s3:ListBucketResult>"),
                                          &p),
                     S3_ERR_XML);
}

/* XML_PARSE_NOBLANKS drops a whitespace-only run when libxml2 guesses it is indentation (the element has a
 * non-text child and no text child next to it), keeps it otherwise: the same with or without a tree. */
static void test_blank_text(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const struct {
        const char *key_xml, *key;
    } cases[] = {
        {"<![CDATA[a]]> ", "a"},         {" <![CDATA[a]]>", "a"}, {"a<!--c--> ", "a "},
        {"&#32;<!--c--> ", "  "},        {"a <b/> ", "a  "},      {" ", " "},
        {"<![CDATA[a]]>\n  <?p?>", "a"}, {"<b/> <b/>", NULL}, /* all blanks dropped: empty key */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char contents[512];
        snprintf(contents, sizeof contents,
                 "<Key>%s</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>", cases[i].key_xml);
        enum s3_err err = list_one(contents, &p);
        if (!cases[i].key) {
            assert_int_equal(err, S3_ERR_XML);
            continue;
        }
        if (err != S3_OK) fail_msg("refused %s", cases[i].key_xml);
        if (strcmp(p.objects[0].key, cases[i].key) != 0)
            fail_msg("<Key>%s</Key> gave \"%s\", want \"%s\"", cases[i].key_xml, p.objects[0].key,
                     cases[i].key);
        s3_list_page_free(&p);
    }
    /* xml:space="preserve" keeps them */
    assert_int_equal(list_one("<Key xml:space=\"preserve\"><![CDATA[a]]> </Key><LastModified>t</LastModified>"
                              "<ETag>e</ETag><Size>1</Size>",
                              &p),
                     S3_OK);
    assert_string_equal(p.objects[0].key, "a ");
    s3_list_page_free(&p);
}

/* EncodingType after the entries still decodes keys, prefixes and NextKeyMarker; duplicates are errors. */
static void test_encoding_anywhere(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    assert_int_equal(
        s3_xml_parse_list_versions(
            S("<ListVersionsResult><IsTruncated>true</IsTruncated><NextKeyMarker>n%2Fm</NextKeyMarker>"
              "<Version><Key>a%20b</Key><VersionId>v</VersionId><LastModified>t</LastModified>"
              "<ETag>e</ETag><Size>1</Size></Version><CommonPrefixes><Prefix>p+q/</Prefix>"
              "</CommonPrefixes><EncodingType>url</EncodingType></ListVersionsResult>"),
            &p),
        S3_OK);
    assert_string_equal(p.objects[0].key, "a b");
    assert_string_equal(p.common_prefixes[0], "p q/");
    assert_string_equal(p.next_key_marker, "n/m");
    s3_list_page_free(&p);
    /* a bad escape is found whatever the order */
    assert_int_equal(
        s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>"
                               "a%zz</Key><LastModified>t</LastModified><ETag>e</ETag><Size>1</Size>"
                               "</Contents><EncodingType>url</EncodingType></ListBucketResult>"),
                             &p),
        S3_ERR_XML);
    assert_true(all_zero(&p, sizeof p));
    assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>"
                                            "false</IsTruncated><EncodingType>url</EncodingType>"
                                            "</ListBucketResult>"),
                                          &p),
                     S3_ERR_XML);
    assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>false</IsTruncated><IsTruncated>"
                                            "false</IsTruncated></ListBucketResult>"),
                                          &p),
                     S3_ERR_XML);
}

static void test_duplicates_and_markers(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    static const char *const dup[] = {"Key",          "LastModified", "Size",    "ETag",
                                      "StorageClass", "VersionId",    "IsLatest"};
    for (size_t i = 0; i < sizeof dup / sizeof dup[0]; i++) {
        char buf[1024];
        int n =
            snprintf(buf, sizeof buf,
                     "<ListVersionsResult><IsTruncated>false</IsTruncated><Version><Key>k</Key><VersionId>v"
                     "</VersionId><IsLatest>true</IsLatest><LastModified>t</LastModified><ETag>e</ETag>"
                     "<Size>1</Size><StorageClass>S</StorageClass><%s>1</%s></Version></ListVersionsResult>",
                     dup[i], dup[i]);
        if (s3_xml_parse_list_versions(buf, (size_t)n, &p) != S3_ERR_XML)
            fail_msg("duplicate %s accepted", dup[i]);
    }
    /* a DeleteMarker's Size, ETag and StorageClass are ignored, even twice */
    assert_int_equal(
        s3_xml_parse_list_versions(
            S("<ListVersionsResult><IsTruncated>false</IsTruncated><DeleteMarker><Key>k</Key>"
              "<VersionId>v</VersionId><IsLatest>false</IsLatest><LastModified>t</LastModified>"
              "<Size>x</Size><Size>y</Size><ETag>e</ETag><ETag>f</ETag></DeleteMarker><Version>"
              "<Key>k</Key><VersionId>w</VersionId><LastModified>t</LastModified><ETag>&quot;e&quot;"
              "</ETag><Size>7</Size></Version></ListVersionsResult>"),
            &p),
        S3_OK);
    assert_int_equal(p.count, 2);
    assert_true(p.objects[0].delete_marker);
    assert_null(p.objects[0].etag);
    assert_int_equal(p.objects[0].size, 0);
    assert_false(p.objects[0].is_latest);
    assert_false(p.objects[1].delete_marker);
    assert_string_equal(p.objects[1].etag, "e");
    assert_int_equal(p.objects[1].size, 7);
    s3_list_page_free(&p);
    /* in ListObjectsV2 a DeleteMarker is not an entry, and VersionId is not read */
    assert_int_equal(
        s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>false</IsTruncated><DeleteMarker>"
                               "</DeleteMarker><Contents><Key>k</Key><VersionId>v</VersionId>"
                               "<VersionId>w</VersionId><LastModified>t</LastModified><ETag>e</ETag>"
                               "<Size>1</Size></Contents></ListBucketResult>"),
                             &p),
        S3_OK);
    assert_int_equal(p.count, 1);
    assert_null(p.objects[0].version_id);
    s3_list_page_free(&p);
    /* single-value results take the first element; <Error> fields must be unique */
    char *etag = NULL, *lm = NULL;
    assert_int_equal(s3_xml_parse_copy(S("<CopyObjectResult><ETag>\"a\"</ETag><ETag>b</ETag><LastModified>1"
                                         "</LastModified><LastModified>2</LastModified></CopyObjectResult>"),
                                       &etag, &lm),
                     S3_OK);
    assert_string_equal(etag, "a");
    assert_string_equal(lm, "1");
    free(etag);
    free(lm);
    struct s3_error_info e;
    assert_int_equal(s3_xml_parse_error(S("<Error><Code>A</Code><Code>B</Code></Error>"), &e), S3_ERR_XML);
    assert_true(all_zero(&e, sizeof e));
}

/* The parser context is reused: a document that failed half-way (open elements, namespace bindings) must not
 * leak into the next one, whatever parser runs next; many distinct element names stay harmless. */
static void test_context_reuse(void **state)
{
    (void)state;
    struct s3_list_page p = {0};
    char *s = NULL;
    for (int round = 0; round < 3; round++) {
        assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult xmlns:p=\"urn:p\"><p:IsTruncated>false"
                                                "</p:IsTruncated><Contents><Key>"),
                                              &p),
                         S3_ERR_XML);
        /* p: is not declared here, so p:IsTruncated is not IsTruncated */
        assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult><p:IsTruncated>false</p:IsTruncated>"
                                                "</ListBucketResult>"),
                                              &p),
                         S3_ERR_XML);
        assert_int_equal(s3_xml_parse_initiate(S("<InitiateMultipartUploadResult><UploadId>u</UploadId>"
                                                 "</InitiateMultipartUploadResult>"),
                                               &s),
                         S3_OK);
        assert_string_equal(s, "u");
        free(s);
        assert_int_equal(s3_xml_parse_list_v2(S("<ListBucketResult><IsTruncated>false</IsTruncated>"
                                                "</ListBucketResult>"),
                                              &p),
                         S3_OK);
        s3_list_page_free(&p);
    }
    for (int i = 0; i < 5000; i++) { /* 5000 names: the dictionary is dropped and rebuilt on the way */
        char buf[256];
        int n = snprintf(buf, sizeof buf,
                         "<CopyObjectResult><Name%d a%d=\"1\" xmlns:n%d=\"urn:%d\"/><ETag>e%d</ETag>"
                         "</CopyObjectResult>",
                         i, i, i, i, i);
        assert_int_equal(s3_xml_parse_copy(buf, (size_t)n, &s, NULL), S3_OK);
        snprintf(buf, sizeof buf, "e%d", i);
        assert_string_equal(s, buf);
        free(s);
    }
}

/* The prescan's cheap path (few name="value" pairs) and its full scan decide alike: the attribute cap counts
 * the whole body, '=' in text is not an attribute, "<!" is refused outside comments, CDATA and PIs. */
static void test_prescan_paths(void **state)
{
    (void)state;
    struct s3_error_info e;
    size_t alloc = 400 * 24 + 64, n;
    char *buf = malloc(alloc);
    assert_non_null(buf);
    for (int attrs = 255; attrs <= 258; attrs++) { /* xmlns on the root + attrs - 1 on children */
        n = (size_t)sprintf(buf, "<Error xmlns=\"urn:x\">");
        for (int i = 1; i < attrs; i++)
            n += (size_t)sprintf(buf + n, i % 2 ? "<x a=\"%d\"/>" : "<x a = '%d'/>", i);
        n += (size_t)sprintf(buf + n, "<Code>c</Code></Error>");
        assert_int_equal(s3_xml_parse_error(buf, n, &e), attrs <= 256 ? S3_OK : S3_ERR_XML);
        s3_error_info_free(&e);
    }
    /* thousands of '=' in text (year=2026/month=11 keys), some followed by a quote, are not attributes */
    size_t want = 0;
    n = (size_t)sprintf(buf, "<Error><Code>");
    for (int i = 0; i < 400; i++) {
        n += (size_t)sprintf(buf + n, i % 3 ? "y=1&amp;m=2/" : "k=\"v\"/");
        want += i % 3 ? 8 : 6;
    }
    n += (size_t)sprintf(buf + n, "</Code></Error>");
    assert_int_equal(s3_xml_parse_error(buf, n, &e), S3_OK);
    assert_int_equal(strlen(e.code), want);
    s3_error_info_free(&e);
    free(buf);

    static const struct {
        const char *xml;
        enum s3_err want;
    } cases[] = {
        {"<?pi <!DOCTYPE x?><Error><Code>c</Code></Error>", S3_OK},
        {"<Error><!-- <!DOCTYPE x> --><Code><![CDATA[<!ENTITY]]></Code></Error>", S3_OK},
        {"<Error><Code>c</Code><!ENTITY x \"y\"></Error>", S3_ERR_XML},
        {"<Error><!-- a --><!ELEMENT x ANY><Code>c</Code></Error>", S3_ERR_XML},
        {"<Error a=\"<!x\"><Code>c</Code></Error>", S3_ERR_XML}, /* '<' in an attribute value */
        {"<Error><Code>c</Code></Error><!--", S3_ERR_XML},       /* unterminated comment */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (s3_xml_parse_error(cases[i].xml, strlen(cases[i].xml), &e) != cases[i].want)
            fail_msg("%s: not %s", cases[i].xml, s3_err_str(cases[i].want));
        s3_error_info_free(&e);
    }
}

static void test_large_pages(void **state)
{
    (void)state;
    /* 1000 keys of 1024 bytes (the largest normal page), then 50000 small entries */
    const size_t nkeys = 1000;
    size_t alloc = nkeys * 1300 + 256;
    char *buf = malloc(alloc);
    assert_non_null(buf);
    size_t n = (size_t)sprintf(buf, "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                                    "<IsTruncated>true</IsTruncated>");
    char key[1025];
    for (size_t i = 0; i < nkeys; i++) {
        memset(key, 'a' + (char)(i % 26), 1024);
        snprintf(key, 8, "%06zu", i);
        key[6] = '/';
        key[1024] = '\0';
        n += (size_t)sprintf(buf + n,
                             "<Contents><Key>%s</Key><LastModified>2026-11-26T16:01:37.000Z</LastModified>"
                             "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>%zu</Size>"
                             "<StorageClass>STANDARD</StorageClass></Contents>",
                             key, i * 1000);
    }
    n += (size_t)sprintf(buf + n, "<NextContinuationToken>t</NextContinuationToken></ListBucketResult>");
    assert_true(n < alloc);
    struct s3_list_page p = {0};
    assert_int_equal(s3_xml_parse_list_v2(buf, n, &p), S3_OK);
    assert_int_equal(p.count, nkeys);
    for (size_t i = 0; i < nkeys; i++) {
        assert_int_equal(strlen(p.objects[i].key), 1024);
        assert_int_equal(atoi(p.objects[i].key), (int)i);
        assert_int_equal(p.objects[i].size, i * 1000);
    }
    s3_list_page_free(&p);
    free(buf);

    const size_t nsmall = 50000;
    alloc = nsmall * 200 + 256;
    buf = malloc(alloc);
    assert_non_null(buf);
    n = (size_t)sprintf(buf, "<ListBucketResult><IsTruncated>false</IsTruncated>");
    for (size_t i = 0; i < nsmall; i++)
        n += (size_t)sprintf(buf + n,
                             "<Contents><Key>k%zu</Key><LastModified>t</LastModified><ETag>e</ETag>"
                             "<Size>%zu</Size></Contents><CommonPrefixes><Prefix>p%zu/</Prefix>"
                             "</CommonPrefixes>",
                             i, i, i);
    n += (size_t)sprintf(buf + n, "</ListBucketResult>");
    assert_int_equal(s3_xml_parse_list_v2(buf, n, &p), S3_OK);
    assert_int_equal(p.count, nsmall);
    assert_int_equal(p.nprefixes, nsmall);
    assert_string_equal(p.objects[nsmall - 1].key, "k49999");
    assert_string_equal(p.common_prefixes[nsmall - 1], "p49999/");
    s3_list_page_free(&p);
    free(buf);
}

/* ---- garbage ---- */

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_garbage_and_mutations(void **state)
{
    (void)state;
    unsigned char buf[4096];
    for (int round = 0; round < 2000; round++) {
        size_t n = rng() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)rng();
        if (round % 3 == 0 && n > 8) memcpy(buf, "<Error>", 7);
        for (int p = 0; p < P_COUNT; p++)
            assert_int_not_equal(run_parser((enum parser)p, (char *)buf, n), S3_OK);
        (void)s3_xml_is_error((char *)buf, n);
    }

    /* byte flips, insertions of markup characters and deletions in every good fixture */
    static const char markup[] = "<>&;\"'/=![]?%-\x00\xff";
    for (size_t f = 0; f < NGOOD; f++) {
        size_t len;
        char *body = fixture(good[f].dir, good[f].name, &len);
        char *m = malloc(len + 8);
        assert_non_null(m);
        for (int round = 0; round < 300; round++) {
            memcpy(m, body, len);
            size_t mlen = len;
            for (int k = 0; k < 1 + (int)(rng() % 3); k++) {
                size_t at = rng() % mlen;
                switch (rng() % 3) {
                case 0:
                    m[at] = markup[rng() % (sizeof markup - 1)];
                    break;
                case 1:
                    memmove(m + at + 1, m + at, mlen - at);
                    m[at] = markup[rng() % (sizeof markup - 1)];
                    mlen++;
                    break;
                default:
                    if (mlen > 1) {
                        memmove(m + at, m + at + 1, mlen - at - 1);
                        mlen--;
                    }
                }
            }
            for (int p = 0; p < P_COUNT; p++)
                (void)run_parser((enum parser)p, m, mlen);
            (void)s3_xml_is_error(m, mlen);
        }
        free(m);
        free(body);
    }
}

/* ---- s3_xml_is_error ---- */

static void test_is_error(void **state)
{
    (void)state;
    assert_true(s3_xml_is_error(S("<Error>")));
    assert_true(s3_xml_is_error(S("<Error><Code>x</Code></Error>")));
    assert_true(s3_xml_is_error(S("<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">")));
    assert_true(s3_xml_is_error(S("<Error\n>")));
    assert_true(s3_xml_is_error(S("<Error/>")));
    assert_true(s3_xml_is_error(S(" \r\n\t<Error>")));
    assert_true(s3_xml_is_error(S("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>")));
    assert_true(s3_xml_is_error(S("<?xml version=\"1.0\"?>\n \n \n<Error>")));

    assert_false(s3_xml_is_error(NULL, 0));
    assert_false(s3_xml_is_error(NULL, 10));
    assert_false(s3_xml_is_error(S("")));
    assert_false(s3_xml_is_error(S("<Error")));
    assert_false(s3_xml_is_error(S("<Err")));
    assert_false(s3_xml_is_error(S("<Errors>")));
    assert_false(s3_xml_is_error(S("<ErrorX>")));
    assert_false(s3_xml_is_error(S("<error>")));
    assert_false(s3_xml_is_error(S("<CopyObjectResult><Error>")));
    assert_false(s3_xml_is_error(S("<?xml version=\"1.0\"<Error>")));
    assert_false(s3_xml_is_error(S("<?xml version=\"1.0\"?>")));
    assert_false(s3_xml_is_error(S("x<Error>")));
    /* only len bytes are looked at */
    assert_false(s3_xml_is_error("<Error>", 6));
    assert_true(s3_xml_is_error("<Error>trailing", 7));
}

/* ---- builders ---- */

static void test_build_complete(void **state)
{
    (void)state;
    const char *etags[] = {"\"abc\"", "def", "a&b<c>\"d", "\"9b2cf535f27731c974343645a3985328-3\""};
    size_t len = 0;
    char *xml = s3_xml_build_complete(etags, 4, &len);
    assert_non_null(xml);
    assert_string_equal(xml,
                        "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                        "<Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag></Part>"
                        "<Part><PartNumber>2</PartNumber><ETag>\"def\"</ETag></Part>"
                        "<Part><PartNumber>3</PartNumber><ETag>\"a&amp;b&lt;c&gt;&quot;d\"</ETag></Part>"
                        "<Part><PartNumber>4</PartNumber><ETag>\"9b2cf535f27731c974343645a3985328-3\"</ETag>"
                        "</Part></CompleteMultipartUpload>");
    assert_int_equal(len, strlen(xml));

    /* well-formed for an independent parser, with the values intact */
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR);
    assert_non_null(doc);
    xmlNodePtr part = xmlDocGetRootElement(doc)->children;
    for (int i = 0; i < 2; i++)
        part = part->next;
    xmlChar *text = xmlNodeGetContent(part->children->next);
    assert_string_equal((const char *)text, "\"a&b<c>\"d\"");
    xmlFree(text);
    xmlFreeDoc(doc);
    free(xml);

    /* 10000 parts is the S3 maximum */
    const char **many = malloc(10001 * sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < 10001; i++)
        many[i] = "0123456789abcdef0123456789abcdef";
    xml = s3_xml_build_complete(many, 10000, NULL);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<PartNumber>10000</PartNumber>"));
    free(xml);
    assert_null(s3_xml_build_complete(many, 10001, &len));
    assert_int_equal(len, 0);
    free(many);

    assert_null(s3_xml_build_complete(etags, 0, &len));
    assert_null(s3_xml_build_complete(NULL, 1, &len));
    const char *with_null[] = {"a", NULL};
    assert_null(s3_xml_build_complete(with_null, 2, &len));
    const char *ctl[] = {"a\x01"
                         "b"};
    assert_null(s3_xml_build_complete(ctl, 1, &len));
    const char *non_ascii[] = {"abc", "\xc3\xa9"};
    assert_null(s3_xml_build_complete(non_ascii, 2, &len));
}

static void test_build_versioning(void **state)
{
    (void)state;
    size_t len = 0;
    char *xml = s3_xml_build_versioning("Enabled", &len);
    assert_string_equal(xml, "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                             "<Status>Enabled</Status></VersioningConfiguration>");
    assert_int_equal(len, strlen(xml));
    char *status = NULL;
    assert_int_equal(s3_xml_parse_versioning(xml, len, &status), S3_OK); /* round trip */
    assert_string_equal(status, "Enabled");
    free(status);
    free(xml);

    xml = s3_xml_build_versioning("Suspended", NULL);
    assert_non_null(strstr(xml, "<Status>Suspended</Status>"));
    free(xml);

    assert_null(s3_xml_build_versioning(NULL, &len));
    assert_null(s3_xml_build_versioning("", &len));
    assert_null(s3_xml_build_versioning("enabled", &len));
    assert_null(s3_xml_build_versioning("Enabled</Status>", &len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rgw_list_v2_pages),
        cmocka_unit_test(test_rgw_list_v2_encoding_url),
        cmocka_unit_test(test_rgw_list_versions),
        cmocka_unit_test(test_rgw_errors),
        cmocka_unit_test(test_rgw_multipart),
        cmocka_unit_test(test_rgw_versioning),
        cmocka_unit_test(test_aws_list_v2),
        cmocka_unit_test(test_aws_list_v2_encoding_url),
        cmocka_unit_test(test_aws_list_versions),
        cmocka_unit_test(test_aws_errors),
        cmocka_unit_test(test_aws_multipart_and_copy),
        cmocka_unit_test(test_aws_versioning),
        cmocka_unit_test(test_fixture_matrix),
        cmocka_unit_test(test_truncated_fixtures),
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_doctype_refused_nothing_loaded),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_deep_nesting_and_attributes),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_silent_on_stderr),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_keys_and_etags),
        cmocka_unit_test(test_url_decoding),
        cmocka_unit_test(test_depth_and_names),
        cmocka_unit_test(test_blank_text),
        cmocka_unit_test(test_encoding_anywhere),
        cmocka_unit_test(test_duplicates_and_markers),
        cmocka_unit_test(test_context_reuse),
        cmocka_unit_test(test_prescan_paths),
        cmocka_unit_test(test_large_pages),
        cmocka_unit_test(test_garbage_and_mutations),
        cmocka_unit_test(test_is_error),
        cmocka_unit_test(test_build_complete),
        cmocka_unit_test(test_build_versioning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
