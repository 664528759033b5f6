/* S3's additional checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256): a streaming hash over
 * the five algorithms giving S3's wire form (base64 of the big-endian CRC, or of the SHA digest), the names and
 * header names, how a value says it is a composite of parts ("<base64>-N"), and CRC combination so parts hashed
 * apart give the whole object's CRC. CRC32 and CRC32C come from ISA-L (SIMD), CRC-64/NVME from a table here
 * (ISA-L 2.30 has none), SHA-1/SHA-256 from OpenSSL EVP. Must not: do I/O: pure computation over the bytes it is
 * given. */
#ifndef S3_CHECKSUM_H
#define S3_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct s3_response;

enum s3_checksum_alg {
    S3_CK_NONE = 0,
    S3_CK_CRC32,     /* CRC-32 (ISO-HDLC, as zlib and gzip) */
    S3_CK_CRC32C,    /* CRC-32C (Castagnoli, as iSCSI) */
    S3_CK_CRC64NVME, /* CRC-64/NVME */
    S3_CK_SHA1,
    S3_CK_SHA256,
};
#define S3_CK_COUNT 6

/* Longest wire value: base64 of a SHA-256 digest (44) or a composite "<base64>-10000", plus the NUL. */
#define S3_CHECKSUM_MAX 56

/* "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256" (NULL for S3_CK_NONE or out of range). */
const char *s3_checksum_name(enum s3_checksum_alg alg);
/* The algorithm named (case-insensitive, as in x-amz-checksum-algorithm), or S3_CK_NONE. */
enum s3_checksum_alg s3_checksum_from_name(const char *name);
/* "x-amz-checksum-crc32" etc. (lowercase; NULL for S3_CK_NONE). */
const char *s3_checksum_header(enum s3_checksum_alg alg);
/* True for the three CRCs (which combine, see s3_checksum_crc_combine). */
bool s3_checksum_is_crc(enum s3_checksum_alg alg);

/* A streaming checksum. init returns 0, or -1 (unknown algorithm, or EVP could not allocate); a failed
 * update or final returns -1 too. cleanup frees what init took; it accepts a zeroed or cleaned-up struct. */
struct s3_checksum {
    enum s3_checksum_alg alg;
    uint64_t crc;  /* CRCs: the running value (finalized form for CRC32, register for the others) */
    uint64_t len;  /* bytes fed in */
    void *md;      /* SHAs: the EVP_MD_CTX */
    bool failed;
};
int s3_checksum_init(struct s3_checksum *c, enum s3_checksum_alg alg);
int s3_checksum_update(struct s3_checksum *c, const void *data, size_t len);
/* The value in S3's wire form (base64) into out; the checksum can not be updated afterwards (init again). */
int s3_checksum_final(struct s3_checksum *c, char out[S3_CHECKSUM_MAX]);
/* For CRCs: the CRC of what was fed so far (without ending the stream), for s3_checksum_crc_combine. */
uint64_t s3_checksum_crc_value(const struct s3_checksum *c);
void s3_checksum_cleanup(struct s3_checksum *c);

/* One shot: the wire value of data. 0 or -1. */
int s3_checksum_compute(enum s3_checksum_alg alg, const void *data, size_t len, char out[S3_CHECKSUM_MAX]);

/* CRC of A||B from crc(A), crc(B) and the length of B (the three CRCs only: all have init = xorout = ~0). */
uint64_t s3_checksum_crc_combine(enum s3_checksum_alg alg, uint64_t crc_a, uint64_t crc_b, uint64_t len_b);
/* A CRC value to its wire form, and back (-1 when b64 is not a full-object value of that CRC's width). */
void s3_checksum_crc_to_wire(enum s3_checksum_alg alg, uint64_t crc, char out[S3_CHECKSUM_MAX]);
int s3_checksum_crc_from_wire(enum s3_checksum_alg alg, const char *b64, uint64_t *crc);

/* The composite checksum of a multipart object from its parts' wire values (in part order): the checksum of the
 * concatenated raw part values, "-n" appended, as S3 computes a COMPOSITE checksum. 0, or -1 when a part value
 * is not a full-object value of alg. */
int s3_checksum_composite(enum s3_checksum_alg alg, const char *const *part_values, size_t n,
                          char out[S3_CHECKSUM_MAX]);

/* Whether a wire value is well formed for alg: base64 of the right length, optionally "-N" (1 <= N <= 10000)
 * for a composite. *composite (may be NULL) tells which. */
bool s3_checksum_value_ok(enum s3_checksum_alg alg, const char *value, bool *composite);

/* The checksum a GET/HEAD reply (sent with x-amz-checksum-mode: ENABLED) carries: the first of the five
 * x-amz-checksum-* headers present, in the order CRC64NVME, CRC32C, CRC32, SHA256, SHA1. Returns its algorithm
 * (S3_CK_NONE when there is none, or it is malformed); *value points into r; *composite from the value's form or
 * x-amz-checksum-type: COMPOSITE. */
enum s3_checksum_alg s3_checksum_from_response(const struct s3_response *r, const char **value, bool *composite);

#endif
