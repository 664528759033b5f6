/* S3 operations as request builders (see s3/ops.h): each sets the path, query and headers of one operation and
 * starts it. Must not: parse replies (s3/xml.h), retry (s3/request.c), or delete an object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <openssl/evp.h>
#include "s3/ops.h"

#define Q(n, v) ((struct s3_query_param){(n), (v)})

/* A listing's GET: q holds the n parameters of its kind and room for two more (max-keys, encoding-type). */
static struct s3_request *list_start(struct s3_reader *r, const char *bucket, struct s3_query_param *q, size_t n,
                                     int max_keys, s3_done_cb cb, void *ud)
{
    char mk[16];
    if (max_keys > 0) {
        snprintf(mk, sizeof mk, "%d", max_keys);
        q[n++] = Q("max-keys", mk);
    }
    q[n++] = Q("encoding-type", "url"); /* keys with control characters survive XML */
    struct s3_request_spec s = {.method = "GET", .bucket = bucket, .query = q, .nquery = n,
                                .max_body = S3_XML_MAX_BODY};
    return s3_reader_request_start(r, &s, cb, ud);
}

struct s3_request *s3_list_v2(struct s3_reader *r, const char *bucket, const char *prefix, const char *start_after,
                              const char *token, int max_keys, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[6];
    size_t n = 0;
    q[n++] = Q("list-type", "2");
    if (prefix && prefix[0]) q[n++] = Q("prefix", prefix);
    if (start_after && start_after[0]) q[n++] = Q("start-after", start_after);
    if (token) q[n++] = Q("continuation-token", token);
    return list_start(r, bucket, q, n, max_keys, cb, ud);
}

struct s3_request *s3_list_versions(struct s3_reader *r, const char *bucket, const char *prefix,
                                    const char *key_marker, const char *version_marker, int max_keys, s3_done_cb cb,
                                    void *ud)
{
    struct s3_query_param q[7];
    size_t n = 0;
    q[n++] = Q("versions", "");
    if (prefix && prefix[0]) q[n++] = Q("prefix", prefix);
    if (key_marker) q[n++] = Q("key-marker", key_marker);
    if (version_marker) q[n++] = Q("version-id-marker", version_marker);
    return list_start(r, bucket, q, n, max_keys, cb, ud);
}

static size_t cond_header(struct s3_header *h, size_t n, const char *name, const char *etag, char *buf, size_t bl)
{
    if (!etag) return n;
    snprintf(buf, bl, "\"%s\"", etag);
    h[n].name = name;
    h[n].value = buf;
    return n + 1;
}

static struct s3_request *head_object(struct s3_reader *r, const char *bucket, const char *key,
                                      const char *version_id, const char *if_match, bool checksum_mode,
                                      s3_done_cb cb, void *ud)
{
    struct s3_query_param q[1];
    struct s3_header h[2];
    char im[160];
    size_t nq = 0, nh = cond_header(h, 0, "If-Match", if_match, im, sizeof im);
    if (version_id) q[nq++] = Q("versionId", version_id);
    if (checksum_mode) h[nh++] = (struct s3_header){"x-amz-checksum-mode", "ENABLED"};
    struct s3_request_spec s = {.method = "HEAD", .bucket = bucket, .key = key, .query = q, .nquery = nq,
                                .headers = h, .nheaders = nh};
    return s3_reader_request_start(r, &s, cb, ud);
}

struct s3_request *s3_head_object(struct s3_reader *r, const char *bucket, const char *key, const char *version_id,
                                  const char *if_match, s3_done_cb cb, void *ud)
{
    return head_object(r, bucket, key, version_id, if_match, false, cb, ud);
}

struct s3_request *s3_head_object_checksum(struct s3_reader *r, const char *bucket, const char *key,
                                           const char *version_id, const char *if_match, s3_done_cb cb, void *ud)
{
    return head_object(r, bucket, key, version_id, if_match, true, cb, ud);
}

struct s3_request *s3_get_object(struct s3_reader *r, const struct s3_get_args *a, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[1];
    struct s3_header h[3];
    char im[160], range[64];
    size_t nq = 0, nh = cond_header(h, 0, "If-Match", a->if_match, im, sizeof im);
    if (a->version_id) q[nq++] = Q("versionId", a->version_id);
    if (a->checksum_mode) h[nh++] = (struct s3_header){"x-amz-checksum-mode", "ENABLED"};
    if (a->ranged) {
        snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)a->first, (unsigned long long)a->last);
        h[nh++] = (struct s3_header){"Range", range};
    }
    struct s3_request_spec s = {.method = "GET", .bucket = a->bucket, .key = a->key, .query = q, .nquery = nq,
                                .headers = h, .nheaders = nh, .max_body = a->max_body, .on_body = a->on_body,
                                .on_reset = a->on_reset, .body_ud = a->body_ud, .on_sink = a->on_sink,
                                .source_ud = a->sink_ud};
    return s3_reader_request_start(r, &s, cb, ud);
}

/* Copies caller headers plus up to `extra` more into a new array. */
static struct s3_header *headers_with(const struct s3_header *headers, size_t n, size_t extra)
{
    struct s3_header *h = calloc(n + extra + 1, sizeof *h);
    if (h && n) memcpy(h, headers, n * sizeof *h);
    return h;
}

struct s3_request *s3_put_object(struct s3_client *c, const char *bucket, const char *key,
                                 const struct s3_header *headers, size_t nheaders, const void *body, size_t len,
                                 const char *content_md5, s3_done_cb cb, void *ud)
{
    struct s3_header *h = headers_with(headers, nheaders, 1);
    if (!h) return NULL;
    size_t nh = nheaders;
    if (content_md5) h[nh++] = (struct s3_header){"Content-MD5", content_md5};
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .headers = h, .nheaders = nh,
                                .body = body, .body_len = len, .unsigned_payload = content_md5 != NULL,
                                .bad_digest_final = content_md5 != NULL};
    struct s3_request *rq = s3_request_start(c, &s, cb, ud);
    free(h);
    return rq;
}

/* x-amz-copy-source: "/bucket/key", with "?versionId=V" to copy one version. */
static char *copy_source(const char *bucket, const char *key, const char *version_id)
{
    char *path = s3_uri_encode_path(bucket, key);
    if (!path || !version_id) return path;
    char *v = s3_uri_encode(version_id, strlen(version_id), 0), *out = NULL;
    if (v && asprintf(&out, "%s?versionId=%s", path, v) < 0) out = NULL;
    free(v);
    free(path);
    return out;
}

struct s3_request *s3_copy_object(struct s3_client *c, const char *bucket, const char *key, const char *src_bucket,
                                  const char *src_key, const char *src_version_id, const char *src_if_match,
                                  const struct s3_header *headers, size_t nheaders, const struct s3_header *extra,
                                  size_t nextra, s3_done_cb cb, void *ud)
{
    char *src = copy_source(src_bucket, src_key, src_version_id);
    struct s3_header *h = headers_with(headers, headers ? nheaders : 0, 5 + (extra ? nextra : 0));
    struct s3_request *rq = NULL;
    char im[160];
    if (!src || !h) goto out;
    size_t nh = headers ? nheaders : 0;
    h[nh++] = (struct s3_header){"x-amz-copy-source", src};
    nh = cond_header(h, nh, "x-amz-copy-source-if-match", src_if_match, im, sizeof im);
    /* Ceph RGW (16.x) ignores x-amz-copy-source-if-match and honours only the older name */
    if (src_if_match) h[nh++] = (struct s3_header){"x-amz-copy-if-match", im};
    h[nh++] = (struct s3_header){"x-amz-metadata-directive", headers ? "REPLACE" : "COPY"};
    for (size_t i = 0; headers && i < nheaders; i++) /* tags given: they replace the source's */
        if (strcasecmp(headers[i].name, "x-amz-tagging") == 0) {
            h[nh++] = (struct s3_header){"x-amz-tagging-directive", "REPLACE"};
            break;
        }
    for (size_t i = 0; extra && i < nextra; i++) h[nh++] = extra[i];
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .headers = h, .nheaders = nh,
                                .error_in_200 = true};
    rq = s3_request_start(c, &s, cb, ud);
out:
    free(src);
    free(h);
    return rq;
}

struct s3_request *s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
                                 const struct s3_header *headers, size_t nheaders, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[] = {Q("uploads", "")};
    struct s3_request_spec s = {.method = "POST", .bucket = bucket, .key = key, .query = q, .nquery = 1,
                                .headers = headers, .nheaders = nheaders, .error_in_200 = true};
    return s3_request_start(c, &s, cb, ud);
}

struct s3_request *s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                      int part, const void *body, size_t len, const char *content_md5, s3_done_cb cb,
                                      void *ud)
{
    char pn[16];
    snprintf(pn, sizeof pn, "%d", part);
    struct s3_query_param q[] = {Q("partNumber", pn), Q("uploadId", upload_id)};
    struct s3_header h[1];
    size_t nh = 0;
    if (content_md5) h[nh++] = (struct s3_header){"Content-MD5", content_md5};
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = 2,
                                .headers = h, .nheaders = nh, .body = body, .body_len = len,
                                .unsigned_payload = content_md5 != NULL};
    return s3_request_start(c, &s, cb, ud);
}

struct s3_request *s3_mpu_upload_part_from(struct s3_client *c, const char *bucket, const char *key,
                                           const char *upload_id, int part, size_t len, s3_source_cb source,
                                           void *source_ud, s3_done_cb cb, void *ud)
{
    char pn[16];
    snprintf(pn, sizeof pn, "%d", part);
    struct s3_query_param q[] = {Q("partNumber", pn), Q("uploadId", upload_id)};
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = 2,
                                .body_len = len, .body_source = source, .source_ud = source_ud};
    return s3_request_start(c, &s, cb, ud);
}

struct s3_request *s3_mpu_upload_part_copy(struct s3_client *c, const char *bucket, const char *key,
                                           const char *upload_id, int part, const char *src_bucket,
                                           const char *src_key, const char *src_version_id, uint64_t first,
                                           uint64_t last, const char *src_if_match, s3_done_cb cb, void *ud)
{
    char pn[16], range[64], im[160];
    snprintf(pn, sizeof pn, "%d", part);
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)first, (unsigned long long)last);
    char *src = copy_source(src_bucket, src_key, src_version_id);
    if (!src) return NULL;
    struct s3_query_param q[] = {Q("partNumber", pn), Q("uploadId", upload_id)};
    struct s3_header h[4];
    size_t nh = 0;
    h[nh++] = (struct s3_header){"x-amz-copy-source", src};
    h[nh++] = (struct s3_header){"x-amz-copy-source-range", range};
    nh = cond_header(h, nh, "x-amz-copy-source-if-match", src_if_match, im, sizeof im);
    if (src_if_match) h[nh++] = (struct s3_header){"x-amz-copy-if-match", im}; /* RGW, see s3_copy_object */
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = 2,
                                .headers = h, .nheaders = nh, .error_in_200 = true};
    struct s3_request *rq = s3_request_start(c, &s, cb, ud);
    free(src);
    return rq;
}

/* Requests whose body this module allocates: free it when the request completes. */
struct owned_body {
    char *body;
    s3_done_cb cb;
    void *ud;
};

static void owned_body_done(struct s3_response *resp, void *ud)
{
    struct owned_body *ob = ud;
    s3_done_cb cb = ob->cb;
    void *cud = ob->ud;
    free(ob->body);
    free(ob);
    cb(resp, cud);
}

static struct s3_request *start_owned(struct s3_client *c, struct s3_request_spec *s, char *body, size_t len,
                                      s3_done_cb cb, void *ud)
{
    struct owned_body *ob = malloc(sizeof *ob);
    if (!body || !ob) {
        free(body);
        free(ob);
        return NULL;
    }
    ob->body = body;
    ob->cb = cb;
    ob->ud = ud;
    s->body = body;
    s->body_len = len;
    struct s3_request *rq = s3_request_start(c, s, owned_body_done, ob);
    if (!rq) {
        free(body);
        free(ob);
    }
    return rq;
}

struct s3_request *s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                   const char *const *etags, size_t n, s3_done_cb cb, void *ud)
{
    size_t len = 0;
    char *body = s3_xml_build_complete(etags, n, &len);
    struct s3_query_param q[] = {Q("uploadId", upload_id)};
    struct s3_header h[] = {{"Content-Type", "application/xml"}};
    struct s3_request_spec s = {.method = "POST", .bucket = bucket, .key = key, .query = q, .nquery = 1,
                                .headers = h, .nheaders = 1, .error_in_200 = true};
    return start_owned(c, &s, body, len, cb, ud);
}

struct s3_request *s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
                                int max_attempts, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[] = {Q("uploadId", upload_id)};
    struct s3_request_spec s = {.method = "DELETE", .bucket = bucket, .key = key, .query = q, .nquery = 1,
                                .max_attempts = max_attempts};
    return s3_request_start(c, &s, cb, ud);
}

struct s3_request *s3_mpu_list(struct s3_reader *r, const char *bucket, const char *prefix, const char *key_marker,
                               const char *upload_id_marker, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[4];
    size_t n = 0;
    q[n++] = Q("uploads", "");
    if (prefix && prefix[0]) q[n++] = Q("prefix", prefix);
    if (key_marker) q[n++] = Q("key-marker", key_marker);
    if (upload_id_marker) q[n++] = Q("upload-id-marker", upload_id_marker);
    struct s3_request_spec s = {.method = "GET", .bucket = bucket, .query = q, .nquery = n,
                                .max_body = S3_XML_MAX_BODY};
    return s3_reader_request_start(r, &s, cb, ud);
}

/* The query of an object's tag set (GetObjectTagging, PutObjectTagging), of one version or the current one. */
static size_t tagging_query(struct s3_query_param q[2], const char *version_id)
{
    size_t n = 0;
    q[n++] = Q("tagging", "");
    if (version_id) q[n++] = Q("versionId", version_id);
    return n;
}

struct s3_request *s3_get_object_tagging(struct s3_reader *r, const char *bucket, const char *key,
                                         const char *version_id, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[2];
    size_t nq = tagging_query(q, version_id);
    struct s3_request_spec s = {.method = "GET", .bucket = bucket, .key = key, .query = q, .nquery = nq,
                                .max_body = 64 * 1024};
    return s3_reader_request_start(r, &s, cb, ud);
}

struct s3_request *s3_put_object_tagging(struct s3_client *c, const char *bucket, const char *key,
                                         const char *version_id, const char *xml, size_t len, s3_done_cb cb,
                                         void *ud)
{
    struct s3_query_param q[2];
    size_t nq = tagging_query(q, version_id);
    unsigned char md[16];
    char b64[25];
    s3_md5(xml, len, md);
    s3_md5_base64(md, b64);
    struct s3_header h[] = {{"Content-MD5", b64}, {"Content-Type", "application/xml"}};
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = nq,
                                .headers = h, .nheaders = 2, .body = xml, .body_len = len};
    return s3_request_start(c, &s, cb, ud);
}

struct s3_request *s3_put_object_retention(struct s3_client *c, const char *bucket, const char *key,
                                           const char *version_id, const char *mode, const char *until,
                                           s3_done_cb cb, void *ud)
{
    size_t len = 0;
    char *body = s3_xml_build_retention(mode, until, &len);
    struct s3_query_param q[2];
    size_t nq = 0;
    q[nq++] = Q("retention", "");
    if (version_id) q[nq++] = Q("versionId", version_id);
    char b64[25] = "";
    if (body) {
        unsigned char md[16];
        s3_md5(body, len, md);
        s3_md5_base64(md, b64);
    }
    struct s3_header h[] = {{"Content-MD5", b64}, {"Content-Type", "application/xml"}};
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .key = key, .query = q, .nquery = nq,
                                .headers = h, .nheaders = 2};
    return start_owned(c, &s, body, len, cb, ud);
}

struct s3_request *s3_versioning_get(struct s3_reader *r, const char *bucket, s3_done_cb cb, void *ud)
{
    struct s3_query_param q[] = {Q("versioning", "")};
    struct s3_request_spec s = {.method = "GET", .bucket = bucket, .query = q, .nquery = 1};
    return s3_reader_request_start(r, &s, cb, ud);
}

struct s3_request *s3_versioning_put(struct s3_client *c, const char *bucket, const char *status, s3_done_cb cb,
                                     void *ud)
{
    size_t len = 0;
    char *body = s3_xml_build_versioning(status, &len);
    struct s3_query_param q[] = {Q("versioning", "")};
    struct s3_header h[2] = {{"Content-Type", "application/xml"}};
    char md5b64[25];
    size_t nh = 1;
    if (body) {
        unsigned char md[16];
        s3_md5(body, len, md);
        s3_md5_base64(md, md5b64);
        h[nh++] = (struct s3_header){"Content-MD5", md5b64};
    }
    struct s3_request_spec s = {.method = "PUT", .bucket = bucket, .query = q, .nquery = 1, .headers = h,
                                .nheaders = nh};
    return start_owned(c, &s, body, len, cb, ud);
}

size_t s3_metadata_headers(const struct s3_response *resp, struct s3_header *out, size_t max)
{
    static const char *const keep[] = {"content-type", "cache-control", "content-disposition",
                                       "content-encoding", "content-language", "expires"};
    size_t n = 0;
    for (size_t i = 0; i < resp->nheaders && n < max; i++) {
        const char *name = resp->headers[i].name;
        bool take = strncmp(name, "x-amz-meta-", 11) == 0;
        for (size_t k = 0; !take && k < sizeof keep / sizeof keep[0]; k++) take = strcmp(name, keep[k]) == 0;
        if (take) out[n++] = (struct s3_header){name, resp->headers[i].value};
    }
    return n;
}

void s3_md5(const void *data, size_t len, unsigned char out[16])
{
    static EVP_MD *md5;
    static EVP_MD_CTX *ctx;
    unsigned int ml = 0;
    if (!md5) md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    if (!ctx) ctx = EVP_MD_CTX_new();
    if (!md5 || !ctx || !EVP_DigestInit_ex(ctx, md5, NULL) || !EVP_DigestUpdate(ctx, data ? data : "", len) ||
        !EVP_DigestFinal_ex(ctx, out, &ml))
        memset(out, 0, 16); /* never matches a real ETag: the copy is then retried and fails loudly */
}

void s3_md5_base64(const unsigned char md5[16], char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, md5, 16);
}

void s3_md5_hex(const unsigned char md5[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[md5[i] >> 4];
        out[2 * i + 1] = digits[md5[i] & 0x0f];
    }
    out[32] = '\0';
}

int s3_md5_from_hex(const char *hex, unsigned char out[16])
{
    if (!s3_etag_is_md5(hex)) return -1;
    for (int i = 0; i < 16; i++) { /* digits checked above */
        int hi = hex[2 * i], lo = hex[2 * i + 1];
        hi = isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10);
        lo = isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10);
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int s3_md5_hex_to_base64(const char *hex, char out[25])
{
    unsigned char md[16];
    if (s3_md5_from_hex(hex, md) != 0) return -1;
    s3_md5_base64(md, out);
    return 0;
}

bool s3_etag_is_md5(const char *etag)
{
    if (!etag || strlen(etag) != 32) return false;
    for (int i = 0; i < 32; i++)
        if (!isxdigit((unsigned char)etag[i])) return false;
    return true;
}

const char *s3_sse_hides_md5(const struct s3_response *resp)
{
    if (!resp) return NULL;
    if (s3_response_header(resp, "x-amz-server-side-encryption-customer-algorithm")) return "SSE-C";
    const char *v = s3_response_header(resp, "x-amz-server-side-encryption");
    if (!v) return NULL;
    if (strcasecmp(v, "aws:kms") == 0) return "aws:kms";
    if (strcasecmp(v, "aws:kms:dsse") == 0) return "aws:kms:dsse";
    return NULL;
}
