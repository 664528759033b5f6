/* The fault proxy's additional-checksum modes. See tests/tools/proxy/checksum.h. */
#include "tests/tools/proxy/checksum.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3/checksum.h"

enum mode { M_OFF, M_S3, M_REFUSE };
static enum mode g_mode;
static bool g_refuse_mode; /* --refuse-checksums=mode: x-amz-checksum-mode refused as well */
static unsigned long n_verified, n_bad, n_refused, n_served;

bool ck_option(const char *m)
{
    if (strcmp(m, "s3") == 0) g_mode = M_S3;
    else if (strcmp(m, "refuse") == 0) g_mode = M_REFUSE;
    else if (strcmp(m, "refuse=mode") == 0) g_mode = M_REFUSE, g_refuse_mode = true;
    else return false;
    return true;
}

bool ck_enabled(void)
{
    return g_mode != M_OFF;
}

/* ---- what was stored: key -> its checksum, pinned to the ETag it was stored with ---- */

struct stored {
    char *key;
    enum s3_checksum_alg alg;
    char value[S3_CHECKSUM_MAX];
    bool composite;
    char etag[48];
};
static struct stored *stored;
static size_t nstored, capstored;

static struct stored *stored_find(const char *key, bool create)
{
    for (size_t i = 0; i < nstored; i++)
        if (strcmp(stored[i].key, key) == 0) return &stored[i];
    if (!create) return NULL;
    if (nstored == capstored) {
        size_t cap = capstored ? capstored * 2 : 64;
        struct stored *s = realloc(stored, cap * sizeof *s);
        if (!s) return NULL;
        stored = s;
        capstored = cap;
    }
    struct stored *s = &stored[nstored];
    memset(s, 0, sizeof *s);
    if (!(s->key = strdup(key))) return NULL;
    nstored++;
    return s;
}

/* ---- multipart uploads in progress: the parts seen, by upload id ---- */

struct part_seen {
    int no;
    uint64_t len, crc64;
    enum s3_checksum_alg alg; /* the checksum sent with it, if any */
    char value[S3_CHECKSUM_MAX];
    unsigned char md5[16];
};
struct upload {
    char *id;
    struct part_seen *parts;
    size_t n, cap;
};
static struct upload *uploads;
static size_t nuploads, capuploads;

static struct upload *upload_find(const char *id, bool create)
{
    for (size_t i = 0; i < nuploads; i++)
        if (strcmp(uploads[i].id, id) == 0) return &uploads[i];
    if (!create) return NULL;
    if (nuploads == capuploads) {
        size_t cap = capuploads ? capuploads * 2 : 16;
        struct upload *u = realloc(uploads, cap * sizeof *u);
        if (!u) return NULL;
        uploads = u;
        capuploads = cap;
    }
    struct upload *u = &uploads[nuploads];
    memset(u, 0, sizeof *u);
    if (!(u->id = strdup(id))) return NULL;
    nuploads++;
    return u;
}

static void upload_drop(struct upload *u)
{
    free(u->id);
    free(u->parts);
    *u = uploads[--nuploads];
}

static int cmp_part(const void *a, const void *b)
{
    return ((const struct part_seen *)a)->no - ((const struct part_seen *)b)->no;
}

/* ---- parsing ---- */

/* The value of header name in a message head (case-insensitive, trimmed) into out; false when absent. */
static bool head_get(const char *head, size_t hl, const char *name, char *out, size_t outn)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', hl), *end = head + hl;
    while (p && p + 1 < end) {
        const char *line = p + 1, *le = memchr(line, '\n', (size_t)(end - line));
        if (!le) break;
        if ((size_t)(le - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            snprintf(out, outn, "%.*s", (int)(ve - v), v);
            return true;
        }
        p = le;
    }
    return false;
}

/* The value of query parameter name (raw) into out; false when absent. */
static bool query_get(const char *query, const char *name, char *out, size_t outn)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, nl) == 0 && (p[nl] == '=' || p[nl] == '&' || !p[nl])) {
            const char *v = p[nl] == '=' ? p + nl + 1 : p + nl, *e = strchr(v, '&');
            snprintf(out, outn, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            return true;
        }
    }
    return false;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The path part of a URI, percent-decoded (clients encode keys differently). */
static char *path_key(const char *uri, size_t n)
{
    char *k = malloc(n + 1);
    size_t o = 0;
    if (!k) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (uri[i] == '%' && i + 2 < n && hexval(uri[i + 1]) >= 0 && hexval(uri[i + 2]) >= 0) {
            k[o++] = (char)(hexval(uri[i + 1]) * 16 + hexval(uri[i + 2]));
            i += 2;
        } else {
            k[o++] = uri[i];
        }
    }
    k[o] = '\0';
    return k;
}

/* The checksum header a request carries (the first of the five), or S3_CK_NONE. */
static enum s3_checksum_alg sent_checksum(const char *head, size_t hl, char value[S3_CHECKSUM_MAX])
{
    for (int a = S3_CK_CRC32; a < S3_CK_COUNT; a++)
        if (head_get(head, hl, s3_checksum_header((enum s3_checksum_alg)a), value, S3_CHECKSUM_MAX))
            return (enum s3_checksum_alg)a;
    return S3_CK_NONE;
}

/* ---- exchanges ---- */

enum op { OP_PUT, OP_PART, OP_COMPLETE, OP_READ };

struct ck_exch {
    enum op op;
    char *key;
    char upload_id[256];
    int part_no;
    bool hashed; /* the body is hashed (a Content-Length body) */
    uint64_t len;
    enum s3_checksum_alg sent_alg;
    char sent[S3_CHECKSUM_MAX];
    struct s3_checksum sent_ck, crc64;
    EVP_MD_CTX *md5;
    bool bad;
};

void ck_exch_free(struct ck_exch *e)
{
    if (!e) return;
    free(e->key);
    s3_checksum_cleanup(&e->sent_ck);
    s3_checksum_cleanup(&e->crc64);
    EVP_MD_CTX_free(e->md5);
    free(e);
}

static const char *refusal(const char *head, size_t hl, bool is_read, int *status, const char **code)
{
    static char msg[200];
    char v[S3_CHECKSUM_MAX];
    enum s3_checksum_alg a = sent_checksum(head, hl, v);
    if (a) {
        snprintf(msg, sizeof msg, "Unsupported header '%s' received for this API call.", s3_checksum_header(a));
    } else if (head_get(head, hl, "x-amz-sdk-checksum-algorithm", v, sizeof v) ||
               head_get(head, hl, "x-amz-checksum-algorithm", v, sizeof v)) {
        snprintf(msg, sizeof msg, "Unsupported header 'x-amz-checksum-algorithm' received for this API call.");
    } else if (is_read && g_refuse_mode && head_get(head, hl, "x-amz-checksum-mode", v, sizeof v)) {
        *status = 501;
        *code = "NotImplemented";
        return "A header you provided implies functionality that is not implemented";
    } else {
        return NULL;
    }
    *status = 400;
    *code = "InvalidArgument";
    return msg;
}

struct ck_exch *ck_request(const char *method, const char *uri, const char *head, size_t hl, long long body_len,
                           enum ck_verdict *verdict, int *status, const char **code, const char **message)
{
    *verdict = CK_FORWARD;
    if (g_mode == M_OFF) return NULL;
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    const char *query = q ? q + 1 : "";
    bool object = plen > 1 && memchr(uri + 1, '/', plen - 1) && uri[plen - 1] != '/';
    bool is_read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    char v[256];
    if (g_mode == M_REFUSE) {
        const char *why = refusal(head, hl, is_read, status, code);
        if (why) {
            n_refused++;
            *verdict = CK_REFUSE;
            *message = why;
        }
        return NULL;
    }
    if (!object || head_get(head, hl, "x-amz-copy-source", v, sizeof v)) return NULL;
    struct ck_exch *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    if (strcmp(method, "PUT") == 0 && !query[0]) {
        e->op = OP_PUT;
    } else if (strcmp(method, "PUT") == 0 && query_get(query, "partNumber", v, sizeof v) &&
               query_get(query, "uploadId", e->upload_id, sizeof e->upload_id)) {
        e->op = OP_PART;
        e->part_no = atoi(v);
    } else if (strcmp(method, "POST") == 0 && query_get(query, "uploadId", e->upload_id, sizeof e->upload_id)) {
        e->op = OP_COMPLETE;
    } else if (is_read && head_get(head, hl, "x-amz-checksum-mode", v, sizeof v) && strcasecmp(v, "ENABLED") == 0) {
        e->op = OP_READ;
    } else {
        free(e);
        return NULL;
    }
    if (!(e->key = path_key(uri, plen))) {
        free(e);
        return NULL;
    }
    if (e->op == OP_PUT || e->op == OP_PART) {
        e->sent_alg = sent_checksum(head, hl, e->sent);
        e->hashed = body_len >= 0;
        if (e->hashed && ((e->sent_alg && s3_checksum_init(&e->sent_ck, e->sent_alg) != 0) ||
                          s3_checksum_init(&e->crc64, S3_CK_CRC64NVME) != 0 || !(e->md5 = EVP_MD_CTX_new()) ||
                          EVP_DigestInit_ex(e->md5, EVP_md5(), NULL) != 1)) {
            ck_exch_free(e);
            return NULL;
        }
    }
    return e;
}

void ck_body(struct ck_exch *e, const void *data, size_t n)
{
    if (!e || !e->hashed) return;
    e->len += n;
    if (e->sent_alg) s3_checksum_update(&e->sent_ck, data, n);
    s3_checksum_update(&e->crc64, data, n);
    EVP_DigestUpdate(e->md5, data, n);
}

const char *ck_body_end(struct ck_exch *e)
{
    static char msg[128];
    if (!e || !e->hashed || !e->sent_alg) return NULL;
    char got[S3_CHECKSUM_MAX];
    if (s3_checksum_final(&e->sent_ck, got) == 0 && strcmp(got, e->sent) == 0) {
        n_verified++;
        return NULL;
    }
    n_bad++;
    e->bad = true;
    snprintf(msg, sizeof msg, "The %s you specified did not match the calculated checksum.",
             s3_checksum_name(e->sent_alg));
    return msg;
}

/* The ETag of a reply head, without quotes. */
static void reply_etag(const char *head, size_t hl, char out[48])
{
    char v[64] = "";
    head_get(head, hl, "ETag", v, sizeof v);
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') snprintf(out, 48, "%.*s", (int)(n - 2 < 47 ? n - 2 : 47), v + 1);
    else snprintf(out, 48, "%.47s", v);
}

/* A successful CompleteMultipartUpload: the object's checksum from its parts. */
static void complete_store(struct ck_exch *e)
{
    struct upload *u = upload_find(e->upload_id, false);
    if (!u || !u->n) return;
    struct stored *s = stored_find(e->key, true);
    if (!s) return;
    qsort(u->parts, u->n, sizeof *u->parts, cmp_part);
    bool sent = u->parts[0].alg != S3_CK_NONE;
    for (size_t i = 0; i < u->n; i++) sent = sent && u->parts[i].alg == u->parts[0].alg;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    EVP_DigestInit_ex(m, EVP_md5(), NULL);
    for (size_t i = 0; i < u->n; i++) EVP_DigestUpdate(m, u->parts[i].md5, 16);
    EVP_DigestFinal_ex(m, md, &ml);
    EVP_MD_CTX_free(m);
    for (int i = 0; i < 16; i++) snprintf(s->etag + 2 * i, 3, "%02x", md[i]);
    snprintf(s->etag + 32, sizeof s->etag - 32, "-%zu", u->n);
    if (sent) { /* S3: the checksum of the part checksums, "-N" (COMPOSITE) */
        const char **v = calloc(u->n, sizeof *v);
        for (size_t i = 0; v && i < u->n; i++) v[i] = u->parts[i].value;
        s->alg = v && s3_checksum_composite(u->parts[0].alg, v, u->n, s->value) == 0 ? u->parts[0].alg : S3_CK_NONE;
        s->composite = true;
        free(v);
    } else { /* S3's default: the full-object CRC64NVME */
        uint64_t crc = u->parts[0].crc64;
        for (size_t i = 1; i < u->n; i++)
            crc = s3_checksum_crc_combine(S3_CK_CRC64NVME, crc, u->parts[i].crc64, u->parts[i].len);
        s3_checksum_crc_to_wire(S3_CK_CRC64NVME, crc, s->value);
        s->alg = S3_CK_CRC64NVME;
        s->composite = false;
    }
    upload_drop(u);
}

static void part_store(struct ck_exch *e)
{
    struct upload *u = upload_find(e->upload_id, true);
    if (!u) return;
    struct part_seen *p = NULL;
    for (size_t i = 0; i < u->n; i++)
        if (u->parts[i].no == e->part_no) p = &u->parts[i]; /* sent again: the last one counts */
    if (!p) {
        if (u->n == u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 16;
            struct part_seen *np = realloc(u->parts, cap * sizeof *np);
            if (!np) return;
            u->parts = np;
            u->cap = cap;
        }
        p = &u->parts[u->n++];
    }
    memset(p, 0, sizeof *p);
    p->no = e->part_no;
    p->len = e->len;
    p->crc64 = s3_checksum_crc_value(&e->crc64);
    p->alg = e->sent_alg;
    snprintf(p->value, sizeof p->value, "%s", e->sent);
    unsigned int ml = 0;
    EVP_DigestFinal_ex(e->md5, p->md5, &ml);
}

const char *ck_response(struct ck_exch *e, int status, const char *head, size_t hl)
{
    static char extra[CK_HEAD_GROWTH];
    if (!e || status != 200 || e->bad) return NULL;
    switch (e->op) {
    case OP_PUT: {
        if (!e->hashed) return NULL;
        struct stored *s = stored_find(e->key, true);
        if (!s) return NULL;
        s->alg = e->sent_alg ? e->sent_alg : S3_CK_CRC64NVME;
        s->composite = false;
        if (e->sent_alg) snprintf(s->value, sizeof s->value, "%s", e->sent);
        else s3_checksum_final(&e->crc64, s->value);
        reply_etag(head, hl, s->etag);
        /* S3 names the checksum it stored in the PutObject reply */
        snprintf(extra, sizeof extra, "%s: %s\r\nx-amz-checksum-type: FULL_OBJECT\r\n", s3_checksum_header(s->alg),
                 s->value);
        return extra;
    }
    case OP_PART:
        if (e->hashed) part_store(e);
        return NULL;
    case OP_COMPLETE:
        complete_store(e);
        return NULL;
    case OP_READ: {
        struct stored *s = stored_find(e->key, false);
        char etag[48];
        reply_etag(head, hl, etag);
        if (!s || !s->alg || strcmp(etag, s->etag) != 0) return NULL;
        n_served++;
        snprintf(extra, sizeof extra, "%s: %s\r\nx-amz-checksum-type: %s\r\n", s3_checksum_header(s->alg), s->value,
                 s->composite ? "COMPOSITE" : "FULL_OBJECT");
        return extra;
    }
    }
    return NULL;
}

void ck_counts_json(char *out, size_t n)
{
    snprintf(out, n, "\"checksums\": {\"verified\": %lu, \"bad_digest\": %lu, \"refused\": %lu, \"served\": %lu}",
             n_verified, n_bad, n_refused, n_served);
}
