/* AWS Signature Version 4 for S3: URI encoding, canonical query and request, string to sign, and the
 * Authorization header. Pure functions (no I/O, no clock, no logging); every result is malloc'd. Must not: do I/O,
 * read the clock, or log (keys are secrets). */
#include "s3/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define SHA256_LEN 32

/* A growable string; once an allocation fails it stays failed and every append is a no-op. */
struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    int failed;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (n > SIZE_MAX - 1 - b->len) {
        b->failed = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                cap = b->len + n + 1;
                break;
            }
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sbuf_adds(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

/* Hand over the string (NULL if anything failed). */
static char *sbuf_take(struct sbuf *b)
{
    if (b->failed || !b->p) {
        free(b->p);
        b->p = NULL;
        return b->failed ? NULL : strdup("");
    }
    char *p = b->p;
    b->p = NULL;
    return p;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *s3_uri_encode(const char *s, size_t len, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!s && len) return NULL;
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0x0f];
        }
    }
    *o = '\0';
    return out;
}

char *s3_uri_encode_path(const char *bucket, const char *key)
{
    char *ebucket = NULL, *ekey = NULL, *out = NULL;
    struct sbuf b = {0};
    if (!key) key = "";
    ekey = s3_uri_encode(key, strlen(key), 1);
    if (!ekey) goto done;
    /* An empty bucket name cannot be path-style: treat it as virtual-hosted. */
    if (bucket && *bucket) {
        ebucket = s3_uri_encode(bucket, strlen(bucket), 0);
        if (!ebucket) goto done;
    }
    if (ebucket) {
        sbuf_adds(&b, "/");
        sbuf_adds(&b, ebucket);
    }
    sbuf_adds(&b, "/");
    sbuf_adds(&b, ekey);
    out = sbuf_take(&b);
done:
    free(ebucket);
    free(ekey);
    return out;
}

struct query_pair {
    char *name;
    char *value;
};

static int query_pair_cmp(const void *a, const void *b)
{
    const struct query_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *sigv4_canonical_query(const struct s3_query_param *params, size_t n)
{
    if (n == 0) return strdup("");
    if (!params || n > SIZE_MAX / sizeof(struct query_pair)) return NULL;
    char *out = NULL;
    size_t done = 0;
    struct sbuf b = {0};
    struct query_pair *pairs = calloc(n, sizeof(*pairs));
    if (!pairs) return NULL;
    for (; done < n; done++) {
        const char *name = params[done].name;
        const char *value = params[done].value ? params[done].value : "";
        if (!name) goto cleanup;
        pairs[done].name = s3_uri_encode(name, strlen(name), 0);
        pairs[done].value = s3_uri_encode(value, strlen(value), 0);
        if (!pairs[done].name || !pairs[done].value) {
            done++; /* free this partial pair too */
            goto cleanup;
        }
    }
    qsort(pairs, n, sizeof(*pairs), query_pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_adds(&b, "&");
        sbuf_adds(&b, pairs[i].name);
        sbuf_adds(&b, "=");
        sbuf_adds(&b, pairs[i].value);
    }
    out = sbuf_take(&b);
cleanup:
    for (size_t i = 0; i < done; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    return out;
}

struct canon_header {
    char *name;   /* lowercased */
    char *value;  /* trimmed, inner whitespace runs collapsed to one space */
    size_t order; /* input position: duplicates keep the order they were given in */
};

static int canon_header_cmp(const void *a, const void *b)
{
    const struct canon_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int is_hspace(char c)
{
    return c == ' ' || c == '\t';
}

static char *lower_name(const char *s)
{
    while (is_hspace(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_hspace(s[n - 1]))
        n--;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[n] = '\0';
    return out;
}

static char *trim_value(const char *s)
{
    char *out = malloc(strlen(s) + 1);
    if (!out) return NULL;
    char *o = out;
    int pending_space = 0;
    while (is_hspace(*s))
        s++;
    for (; *s; s++) {
        if (is_hspace(*s)) {
            pending_space = 1;
            continue;
        }
        if (pending_space) *o++ = ' ';
        pending_space = 0;
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* Builds the canonical request and, if wanted, the signed-headers list. 0 on success, -1 on failure. */
static int build_canonical(const struct sigv4_request *req, char **creq_out, char **signed_out)
{
    int rc = -1;
    size_t built = 0;
    struct canon_header *hs = NULL;
    struct sbuf creq = {0}, sh = {0};
    const char *uri = req && req->canonical_uri && *req->canonical_uri ? req->canonical_uri : "/";

    *creq_out = NULL;
    if (signed_out) *signed_out = NULL;
    if (!req || !req->method || !req->payload_hash || (req->nheaders && !req->headers)) return -1;
    if (req->nheaders > SIZE_MAX / sizeof(*hs)) return -1;
    if (req->nheaders) {
        hs = calloc(req->nheaders, sizeof(*hs));
        if (!hs) return -1;
    }
    for (; built < req->nheaders; built++) {
        const struct s3_header *h = &req->headers[built];
        if (!h->name) goto cleanup;
        hs[built].name = lower_name(h->name);
        hs[built].value = trim_value(h->value ? h->value : "");
        hs[built].order = built;
        if (!hs[built].name || !hs[built].value) {
            built++; /* free this partial entry too */
            goto cleanup;
        }
    }
    if (req->nheaders) qsort(hs, req->nheaders, sizeof(*hs), canon_header_cmp);

    sbuf_adds(&creq, req->method);
    sbuf_adds(&creq, "\n");
    sbuf_adds(&creq, uri);
    sbuf_adds(&creq, "\n");
    sbuf_adds(&creq, req->canonical_query ? req->canonical_query : "");
    sbuf_adds(&creq, "\n");
    for (size_t i = 0; i < req->nheaders; i++) {
        int same = i > 0 && strcmp(hs[i - 1].name, hs[i].name) == 0;
        if (same) {
            sbuf_adds(&creq, ",");
        } else {
            if (i > 0) {
                sbuf_adds(&creq, "\n");
                sbuf_adds(&sh, ";");
            }
            sbuf_adds(&creq, hs[i].name);
            sbuf_adds(&creq, ":");
            sbuf_adds(&sh, hs[i].name);
        }
        sbuf_adds(&creq, hs[i].value);
    }
    if (req->nheaders) sbuf_adds(&creq, "\n");
    sbuf_adds(&creq, "\n");
    sbuf_add(&creq, sh.p ? sh.p : "", sh.p ? sh.len : 0);
    sbuf_adds(&creq, "\n");
    sbuf_adds(&creq, req->payload_hash);
    if (creq.failed || sh.failed) goto cleanup;

    *creq_out = sbuf_take(&creq);
    if (!*creq_out) goto cleanup;
    if (signed_out) {
        *signed_out = sbuf_take(&sh);
        if (!*signed_out) {
            free(*creq_out);
            *creq_out = NULL;
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    for (size_t i = 0; i < built; i++) {
        free(hs[i].name);
        free(hs[i].value);
    }
    free(hs);
    free(creq.p);
    free(sh.p);
    return rc;
}

char *sigv4_canonical_request(const struct sigv4_request *req)
{
    char *creq = NULL;
    if (build_canonical(req, &creq, NULL) != 0) return NULL;
    return creq;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    static const unsigned char empty[1];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!data) data = empty;
    /* fetched once: an implicit fetch per digest costs more than hashing a canonical request */
    static EVP_MD *sha256;
    static EVP_MD_CTX *ctx;
    if (!sha256) sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!ctx) ctx = EVP_MD_CTX_new();
    if (!sha256 || !ctx) return -1;
    if (!EVP_DigestInit_ex(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, data, len) ||
        !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != SHA256_LEN)
        return -1;
    hex_encode(md, SHA256_LEN, out);
    return 0;
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    /* The signature of this function cannot report failure: on failure the output is "", which no
     * payload hash equals, so a request signed with it is refused rather than mis-signed. */
    if (sha256_hex(data, len, out) != 0) out[0] = '\0';
}

/* "YYYYMMDDTHHMMSSZ" */
static int valid_amz_date(const char *d)
{
    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z') return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9')) return 0;
    return 1;
}

/* "20130524/us-east-1/s3/aws4_request" */
static char *credential_scope(const char *amz_date, const char *region, const char *service)
{
    struct sbuf b = {0};
    sbuf_add(&b, amz_date, 8);
    sbuf_adds(&b, "/");
    sbuf_adds(&b, region);
    sbuf_adds(&b, "/");
    sbuf_adds(&b, service);
    sbuf_adds(&b, "/aws4_request");
    return sbuf_take(&b);
}

static char *string_to_sign(const char *creq, const char *amz_date, const char *scope)
{
    char hash[65];
    if (sha256_hex(creq, strlen(creq), hash) != 0) return NULL;
    struct sbuf b = {0};
    sbuf_adds(&b, "AWS4-HMAC-SHA256\n");
    sbuf_adds(&b, amz_date);
    sbuf_adds(&b, "\n");
    sbuf_adds(&b, scope);
    sbuf_adds(&b, "\n");
    sbuf_adds(&b, hash);
    return sbuf_take(&b);
}

char *sigv4_string_to_sign(const struct sigv4_request *req, const char *amz_date, const char *region,
                           const char *service)
{
    char *creq = NULL, *scope = NULL, *sts = NULL;
    if (!valid_amz_date(amz_date) || !region || !service) return NULL;
    if (build_canonical(req, &creq, NULL) != 0) return NULL;
    scope = credential_scope(amz_date, region, service);
    if (scope) sts = string_to_sign(creq, amz_date, scope);
    free(creq);
    free(scope);
    return sts;
}

static int hmac_sha256(EVP_MAC_CTX *ctx, const void *key, size_t keylen, const void *data, size_t len,
                       unsigned char out[SHA256_LEN])
{
    static char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outlen = 0;
    if (!EVP_MAC_init(ctx, key, keylen, params) || !EVP_MAC_update(ctx, data, len) ||
        !EVP_MAC_final(ctx, out, &outlen, SHA256_LEN) || outlen != SHA256_LEN)
        return -1;
    return 0;
}

/* The HMAC implementation, fetched once: EVP_MAC_fetch is costly in OpenSSL 3 and the program signs
 * thousands of requests a second. */
static EVP_MAC *hmac_impl(void)
{
    static EVP_MAC *mac;
    if (!mac) mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    return mac;
}

/* kSigning depends only on the secret, the date, the region and the service: for the last few (secret, date,
 * region, service) tuples (a run has two sides) an HMAC context already keyed with kSigning is kept, and each
 * signature is computed on a copy of it. Keying a context costs more than hashing a string to sign (callgrind:
 * ~18k instructions for init+update+final per signature before, ~5k with a copy). */
#define KEY_CACHE 4
struct key_cache_entry {
    char *secret, *region, *service;
    char date[9];
    EVP_MAC_CTX *keyed; /* EVP_MAC_init'ed with kSigning; never updated itself */
};
static struct key_cache_entry key_cache[KEY_CACHE];
static unsigned key_cache_next;

static void key_cache_entry_clear(struct key_cache_entry *e)
{
    if (e->secret) OPENSSL_cleanse(e->secret, strlen(e->secret));
    free(e->secret);
    free(e->region);
    free(e->service);
    EVP_MAC_CTX_free(e->keyed); /* OpenSSL cleanses the key material it holds */
    memset(e, 0, sizeof *e);
}

/* kSigning = HMAC chain over date, region, service, "aws4_request", starting from "AWS4" + secret. */
static int derive_key(EVP_MAC_CTX *ctx, const char *secret, const char *amz_date, const char *region,
                      const char *service, unsigned char out[SHA256_LEN])
{
    int rc = -1;
    unsigned char k1[SHA256_LEN], k2[SHA256_LEN];
    size_t slen = strlen(secret);
    char *ksecret = NULL;
    if (slen > SIZE_MAX - 5) return -1;
    ksecret = malloc(slen + 5);
    if (!ksecret) return -1;
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, secret, slen + 1);
    if (hmac_sha256(ctx, ksecret, slen + 4, amz_date, 8, k1) != 0 ||
        hmac_sha256(ctx, k1, sizeof(k1), region, strlen(region), k2) != 0 ||
        hmac_sha256(ctx, k2, sizeof(k2), service, strlen(service), k1) != 0 ||
        hmac_sha256(ctx, k1, sizeof(k1), "aws4_request", 12, out) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    OPENSSL_cleanse(ksecret, slen + 5);
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    free(ksecret);
    return rc;
}

/* The cached context keyed with kSigning for this tuple, deriving and caching it on a miss; NULL on failure. */
static const EVP_MAC_CTX *signing_ctx(const char *secret, const char *amz_date, const char *region,
                                      const char *service)
{
    for (int i = 0; i < KEY_CACHE; i++) {
        struct key_cache_entry *e = &key_cache[i];
        if (e->secret && strncmp(e->date, amz_date, 8) == 0 && strcmp(e->secret, secret) == 0 &&
            strcmp(e->region, region) == 0 && strcmp(e->service, service) == 0)
            return e->keyed;
    }
    EVP_MAC *mac = hmac_impl();
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_CTX *keyed = mac ? EVP_MAC_CTX_new(mac) : NULL;
    unsigned char key[SHA256_LEN];
    static char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    char *cs = strdup(secret), *cr = strdup(region), *cv = strdup(service);
    int ok = ctx && keyed && cs && cr && cv && derive_key(ctx, secret, amz_date, region, service, key) == 0 &&
             EVP_MAC_init(keyed, key, sizeof key, params);
    OPENSSL_cleanse(key, sizeof key);
    EVP_MAC_CTX_free(ctx);
    if (!ok) {
        EVP_MAC_CTX_free(keyed);
        if (cs) OPENSSL_cleanse(cs, strlen(cs));
        free(cs);
        free(cr);
        free(cv);
        return NULL;
    }
    struct key_cache_entry *e = &key_cache[key_cache_next++ % KEY_CACHE];
    key_cache_entry_clear(e);
    e->secret = cs;
    e->region = cr;
    e->service = cv;
    memcpy(e->date, amz_date, 8);
    e->date[8] = '\0';
    e->keyed = keyed;
    return keyed;
}

/* Signature = hex(HMAC(kSigning, sts)), kSigning derived from the secret through date, region, service. */
static int compute_signature(const char *secret, const char *amz_date, const char *region,
                             const char *service, const char *sts, char out[65])
{
    unsigned char sig[SHA256_LEN];
    size_t outlen = 0;
    const EVP_MAC_CTX *keyed = signing_ctx(secret, amz_date, region, service);
    EVP_MAC_CTX *ctx = keyed ? EVP_MAC_CTX_dup(keyed) : NULL;
    int ok = ctx && EVP_MAC_update(ctx, (const unsigned char *)sts, strlen(sts)) &&
             EVP_MAC_final(ctx, sig, &outlen, sizeof sig) && outlen == SHA256_LEN;
    EVP_MAC_CTX_free(ctx);
    if (!ok) return -1;
    hex_encode(sig, sizeof(sig), out);
    return 0;
}

char *sigv4_authorization(const struct sigv4_request *req, const struct s3_credentials *creds,
                          const char *amz_date, const char *region, const char *service)
{
    char *creq = NULL, *signed_headers = NULL, *scope = NULL, *sts = NULL, *out = NULL;
    char sig[65];
    struct sbuf b = {0};

    if (!creds || !creds->access_key || !creds->secret_key || !valid_amz_date(amz_date) || !region ||
        !service)
        return NULL;
    if (build_canonical(req, &creq, &signed_headers) != 0) return NULL;
    scope = credential_scope(amz_date, region, service);
    if (!scope) goto cleanup;
    sts = string_to_sign(creq, amz_date, scope);
    if (!sts) goto cleanup;
    if (compute_signature(creds->secret_key, amz_date, region, service, sts, sig) != 0) goto cleanup;

    sbuf_adds(&b, "AWS4-HMAC-SHA256 Credential=");
    sbuf_adds(&b, creds->access_key);
    sbuf_adds(&b, "/");
    sbuf_adds(&b, scope);
    sbuf_adds(&b, ", SignedHeaders=");
    sbuf_adds(&b, signed_headers);
    sbuf_adds(&b, ", Signature=");
    sbuf_adds(&b, sig);
    out = sbuf_take(&b);
cleanup:
    free(creq);
    free(signed_headers);
    free(scope);
    free(sts);
    return out;
}
