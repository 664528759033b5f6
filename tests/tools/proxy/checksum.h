/* The fault proxy's additional-checksum modes (tests/tools/faultproxy.c): in front of a server that ignores
 * x-amz-checksum-* (Ceph RGW 16), act as Amazon S3 does with them, or as a provider that refuses them.
 *   --s3-checksums      a PutObject or UploadPart whose x-amz-checksum-<alg> header does not match the body it
 *                       relays is cut before its last byte reaches the server and answered 400 BadDigest; every
 *                       object written through the proxy gets a checksum (the one sent, else CRC64NVME as S3
 *                       adds by default; a multipart upload: the composite of the part checksums sent, else the
 *                       full-object CRC64NVME of its parts); a GET/HEAD with x-amz-checksum-mode: ENABLED of such
 *                       an object gets x-amz-checksum-<alg> and x-amz-checksum-type in its reply.
 *   --refuse-checksums  a request with an x-amz-checksum-<alg> header gets 400 InvalidArgument "Unsupported
 *                       header 'x-amz-checksum-crc32'" (Backblaze B2's answer); with "=mode" a GET/HEAD with
 *                       x-amz-checksum-mode gets 501 NotImplemented too.
 * Request bytes are relayed unchanged; only reply heads grow. State is in memory, per proxy process. */
#ifndef TESTS_TOOLS_PROXY_CHECKSUM_H
#define TESTS_TOOLS_PROXY_CHECKSUM_H

#include <stdbool.h>
#include <stddef.h>

#define CK_HEAD_GROWTH 256 /* reply-head bytes kept free for the headers a reply gets */

/* Options: "s3" (--s3-checksums), "refuse" or "refuse=mode" (--refuse-checksums[=mode]). false if unknown. */
bool ck_option(const char *mode);
bool ck_enabled(void);

/* Per exchange. NULL: nothing to do for this request. */
struct ck_exch;

enum ck_verdict {
    CK_FORWARD,      /* relay it */
    CK_REFUSE,       /* answer *status with the S3 error *code and *message, without the server */
};
/* A request head (head: the whole head, hl bytes, with its request line). body_len: the body's length when it
 * has a Content-Length (else -1: not hashed). */
struct ck_exch *ck_request(const char *method, const char *uri, const char *head, size_t hl, long long body_len,
                           enum ck_verdict *verdict, int *status, const char **code, const char **message);
void ck_body(struct ck_exch *e, const void *data, size_t n);
/* Once all of the body went through ck_body: NULL when it matches the header sent (or there was none), else the
 * BadDigest message (S3's). */
const char *ck_body_end(struct ck_exch *e);
/* The final reply's head. Remembers what a successful write stored; returns header lines to add to the reply
 * ("Name: value\r\n"..., at most CK_HEAD_GROWTH bytes, valid until the next call) or NULL. */
const char *ck_response(struct ck_exch *e, int status, const char *head, size_t hl);
void ck_exch_free(struct ck_exch *e);

/* For the count file: "checksums": {"verified": N, "bad_digest": N, "refused": N, "served": N}. */
void ck_counts_json(char *out, size_t n);

#endif
