/* Unit tests for s3/checksum.c: the published check values of the three CRCs ("123456789"), SHA known answers,
 * S3's wire form (base64 of the big-endian value), streaming in odd chunks equal to one shot, CRC-64/NVME's
 * slice-by-8 against a bit-at-a-time reference at every alignment, CRC combination, names and value forms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "s3/checksum.h"

static const char check[] = "123456789";

static uint64_t crc_of(enum s3_checksum_alg alg, const void *data, size_t len)
{
    struct s3_checksum c = {0};
    assert_int_equal(s3_checksum_init(&c, alg), 0);
    assert_int_equal(s3_checksum_update(&c, data, len), 0);
    uint64_t v = s3_checksum_crc_value(&c);
    s3_checksum_cleanup(&c);
    return v;
}

static void test_check_values(void **state)
{
    (void)state;
    assert_true(crc_of(S3_CK_CRC32, check, 9) == 0xcbf43926u);
    assert_true(crc_of(S3_CK_CRC32C, check, 9) == 0xe3069283u);
    assert_true(crc_of(S3_CK_CRC64NVME, check, 9) == 0xae8b14860a799888ULL);
    /* and of nothing: init xor xorout */
    assert_true(crc_of(S3_CK_CRC32, "", 0) == 0);
    assert_true(crc_of(S3_CK_CRC64NVME, "", 0) == 0);
}

/* The wire form: base64 of the big-endian CRC, or of the digest (values from Python's hashlib and struct). */
static void test_wire_values(void **state)
{
    (void)state;
    static const struct {
        enum s3_checksum_alg alg;
        const char *data, *want;
    } cases[] = {
        {S3_CK_CRC32, check, "y/Q5Jg=="},
        {S3_CK_CRC32C, check, "4waSgw=="},
        {S3_CK_CRC64NVME, check, "rosUhgp5mIg="},
        {S3_CK_SHA1, check, "98O8HYCOBHMq32eZZczDTKeuNEE="},
        {S3_CK_SHA256, check, "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="},
        {S3_CK_SHA256, "", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
        {S3_CK_SHA1, "", "2jmj7l5rSw0yVb/vlWAYkK/YBwk="},
        {S3_CK_CRC32, "", "AAAAAA=="},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[S3_CHECKSUM_MAX];
        assert_int_equal(s3_checksum_compute(cases[i].alg, cases[i].data, strlen(cases[i].data), out), 0);
        assert_string_equal(out, cases[i].want);
        bool composite = true;
        assert_true(s3_checksum_value_ok(cases[i].alg, out, &composite));
        assert_false(composite);
    }
    uint64_t v = 0;
    assert_int_equal(s3_checksum_crc_from_wire(S3_CK_CRC64NVME, "rosUhgp5mIg=", &v), 0);
    assert_true(v == 0xae8b14860a799888ULL);
    assert_int_equal(s3_checksum_crc_from_wire(S3_CK_CRC32C, "4waSgw==", &v), 0);
    assert_true(v == 0xe3069283u);
    assert_int_equal(s3_checksum_crc_from_wire(S3_CK_CRC32C, "rosUhgp5mIg=", &v), -1); /* a 64-bit value */
    assert_int_equal(s3_checksum_crc_from_wire(S3_CK_CRC32, "y/Q5Jg==-2", &v), -1);   /* composite */
    assert_int_equal(s3_checksum_crc_from_wire(S3_CK_SHA1, "98O8HYCOBHMq32eZZczDTKeuNEE=", &v), -1);
}

static unsigned char *pattern(size_t n)
{
    unsigned char *d = malloc(n);
    assert_non_null(d);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (unsigned char)(x >> 16);
    }
    return d;
}

/* Fed in chunks of 1, 3, 7, ... bytes the value equals one shot, for every algorithm. */
static void test_streaming(void **state)
{
    (void)state;
    size_t n = 100003;
    unsigned char *d = pattern(n);
    for (int a = S3_CK_CRC32; a < S3_CK_COUNT; a++) {
        char one[S3_CHECKSUM_MAX], chunked[S3_CHECKSUM_MAX];
        assert_int_equal(s3_checksum_compute((enum s3_checksum_alg)a, d, n, one), 0);
        struct s3_checksum c = {0};
        assert_int_equal(s3_checksum_init(&c, (enum s3_checksum_alg)a), 0);
        size_t off = 0, step = 1;
        while (off < n) {
            size_t k = step < n - off ? step : n - off;
            assert_int_equal(s3_checksum_update(&c, d + off, k), 0);
            off += k;
            step = step * 2 + 1 > 70000 ? 1 : step * 2 + 1;
        }
        assert_int_equal(s3_checksum_final(&c, chunked), 0);
        assert_string_equal(one, chunked);
        assert_int_equal(s3_checksum_update(&c, d, 1), -1); /* ended */
        /* init again reuses the struct */
        assert_int_equal(s3_checksum_init(&c, (enum s3_checksum_alg)a), 0);
        assert_int_equal(s3_checksum_update(&c, d, n), 0);
        assert_int_equal(s3_checksum_final(&c, chunked), 0);
        assert_string_equal(one, chunked);
        s3_checksum_cleanup(&c);
    }
    free(d);
}

/* Larger data cross-checked with other implementations (zlib's crc32, awscrt's crc32c). */
static void test_known_large(void **state)
{
    (void)state;
    size_t n = 100000;
    unsigned char *d = malloc(n);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)((i * 7 + 3) & 0xff);
    assert_true(crc_of(S3_CK_CRC32, d, n) == 0xf730caa8u);
    assert_true(crc_of(S3_CK_CRC32C, d, n) == 0x96f31dc6u);
    free(d);
}

static uint64_t crc64nvme_bitwise(const unsigned char *p, size_t n)
{
    uint64_t crc = ~0ULL;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0x9a6c9329ac4bc9b5ULL : crc >> 1;
    }
    return ~crc;
}

/* The slice-by-8 loop against the plain definition, at every start alignment and length mod 8. */
static void test_crc64_slices(void **state)
{
    (void)state;
    unsigned char *d = pattern(4200);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len < 40; len++) assert_true(crc_of(S3_CK_CRC64NVME, d + off, len) == crc64nvme_bitwise(d + off, len));
    assert_true(crc_of(S3_CK_CRC64NVME, d + 3, 4190) == crc64nvme_bitwise(d + 3, 4190));
    free(d);
}

/* crc(A||B) from crc(A), crc(B) and len(B), at split points including the empty ends. */
static void test_combine(void **state)
{
    (void)state;
    size_t n = 70001;
    unsigned char *d = pattern(n);
    enum s3_checksum_alg crcs[] = {S3_CK_CRC32, S3_CK_CRC32C, S3_CK_CRC64NVME};
    size_t splits[] = {0, 1, 9, 4096, 65536, 70000, 70001};
    for (size_t a = 0; a < 3; a++) {
        uint64_t whole = crc_of(crcs[a], d, n);
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            size_t k = splits[s];
            uint64_t ca = crc_of(crcs[a], d, k), cb = crc_of(crcs[a], d + k, n - k);
            assert_true(s3_checksum_crc_combine(crcs[a], ca, cb, n - k) == whole);
        }
        /* many parts folded left to right, as a multipart upload's parts would be */
        uint64_t acc = crc_of(crcs[a], d, 0);
        for (size_t off = 0; off < n; off += 8191) {
            size_t k = n - off < 8191 ? n - off : 8191;
            acc = s3_checksum_crc_combine(crcs[a], acc, crc_of(crcs[a], d + off, k), k);
        }
        assert_true(acc == whole);
    }
    /* "123456789" as "1234" + "56789" */
    assert_true(s3_checksum_crc_combine(S3_CK_CRC64NVME, crc_of(S3_CK_CRC64NVME, check, 4),
                                        crc_of(S3_CK_CRC64NVME, check + 4, 5), 5) == 0xae8b14860a799888ULL);
    free(d);
}

/* A composite of parts: the checksum of the raw part values, "-N". The CRC32 of the bytes cb f4 39 26 (the raw
 * CRC32 of "123456789") twice, computed independently with Python's zlib: 0x7023ac4f. */
static void test_composite(void **state)
{
    (void)state;
    const char *parts[] = {"y/Q5Jg==", "y/Q5Jg=="};
    char out[S3_CHECKSUM_MAX];
    assert_int_equal(s3_checksum_composite(S3_CK_CRC32, parts, 2, out), 0);
    char want[S3_CHECKSUM_MAX];
    s3_checksum_crc_to_wire(S3_CK_CRC32, 0x7023ac4fu, want);
    strcat(want, "-2");
    assert_string_equal(out, want);
    bool comp = false;
    assert_true(s3_checksum_value_ok(S3_CK_CRC32, out, &comp));
    assert_true(comp);
    /* SHA-256 parts: the digest of the two raw digests */
    const char *sp[] = {"FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU="};
    assert_int_equal(s3_checksum_composite(S3_CK_SHA256, sp, 1, out), 0);
    assert_string_equal(out, "KSsNAHVmgy25S/rmic1w0at3KBH9RLn0nYVQ7p6mpJQ=-1");
    const char *bad[] = {"y/Q5Jg==", "rosUhgp5mIg="};
    assert_int_equal(s3_checksum_composite(S3_CK_CRC32, bad, 2, out), -1);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(s3_checksum_from_name("crc32c"), S3_CK_CRC32C);
    assert_int_equal(s3_checksum_from_name("CRC64NVME"), S3_CK_CRC64NVME);
    assert_int_equal(s3_checksum_from_name("SHA256"), S3_CK_SHA256);
    assert_int_equal(s3_checksum_from_name("MD5"), S3_CK_NONE);
    assert_int_equal(s3_checksum_from_name(NULL), S3_CK_NONE);
    assert_string_equal(s3_checksum_name(S3_CK_SHA1), "SHA1");
    assert_string_equal(s3_checksum_header(S3_CK_CRC64NVME), "x-amz-checksum-crc64nvme");
    assert_null(s3_checksum_name(S3_CK_NONE));
    assert_null(s3_checksum_header((enum s3_checksum_alg)99));
    for (int a = S3_CK_CRC32; a < S3_CK_COUNT; a++)
        assert_int_equal(s3_checksum_from_name(s3_checksum_name((enum s3_checksum_alg)a)), a);
    struct s3_checksum c = {0};
    assert_int_equal(s3_checksum_init(&c, S3_CK_NONE), -1);
    s3_checksum_cleanup(&c);
}

static void test_value_forms(void **state)
{
    (void)state;
    bool comp = false;
    assert_true(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg==-3", &comp));
    assert_true(comp);
    assert_true(s3_checksum_value_ok(S3_CK_SHA256, "FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=-10000", &comp));
    assert_true(comp);
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg==-0", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg==-10001", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg==-", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg==-2x", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg=", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5J===", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "y/Q5Jg!=", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "rosUhgp5mIg=", NULL)); /* a CRC64's length */
    assert_false(s3_checksum_value_ok(S3_CK_CRC64NVME, "y/Q5Jg==", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_CRC32, "", NULL));
    assert_false(s3_checksum_value_ok(S3_CK_NONE, "y/Q5Jg==", NULL));
    char w[S3_CHECKSUM_MAX];
    s3_checksum_crc_to_wire(S3_CK_CRC32C, 0xe3069283u, w);
    assert_string_equal(w, "4waSgw==");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_values), cmocka_unit_test(test_wire_values), cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_known_large),  cmocka_unit_test(test_crc64_slices), cmocka_unit_test(test_combine),
        cmocka_unit_test(test_composite), cmocka_unit_test(test_names),        cmocka_unit_test(test_value_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
