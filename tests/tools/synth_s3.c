/* synth_s3: a synthetic S3 endpoint for listing-scale benchmarks (issue 17). It serves a source and a target
 * bucket of N generated keys (tests/tools/synth/model.h: no memory per key, so 10M keys cost nothing) and answers
 * what a backup run asks: ListObjectsV2 / V1 / ListObjectVersions, HEAD and GET (ETag = MD5 of the content),
 * PUT, CopyObject, multipart uploads, conditional PUTs (If-None-Match / If-Match, as replicate's lease uses),
 * versioning and uploads queries. Written objects are kept in an overlay that later requests see. Every request
 * must carry a valid SigV4 signature for --keys (s3/sigv4.c recomputes it): a bad one gets 403
 * SignatureDoesNotMatch as from S3. Optional latency per request (--latency-ms, a libev timer per connection),
 * request counts by kind (--count-file, also on SIGUSR1), SIGUSR2 changes a --change fraction of the source
 * (the next generation), and its own CPU time printed at exit. One libev loop, non-blocking sockets,
 * HTTP/1.1 keep-alive. */
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "replicator/options.h"
#include "s3/sigv4.h"
#include "tests/tools/synth/http.h"
#include "tests/tools/synth/model.h"

enum kind {
    K_LIST_V2, K_LIST_V1, K_LIST_VERSIONS, K_HEAD, K_GET, K_PUT, K_COPY, K_MPU_CREATE, K_MPU_PART,
    K_MPU_COMPLETE, K_MPU_ABORT, K_LIST_UPLOADS, K_BUCKET, K_OTHER, K_N
};
static const char *const kind_names[K_N] = {
    "list_v2", "list_v1", "list_versions", "head", "get", "put", "copy", "mpu_create", "mpu_part",
    "mpu_complete", "mpu_abort", "list_uploads", "bucket", "other"};

static struct {
    const char *listen, *count_path;
    struct s3_credentials creds;
} opt;

static struct {
    unsigned long kind[K_N], denied, listed_keys, dumps;
    unsigned long data_heads; /* HEADs of keys outside .replicate/ (the objects, not replicate's own files) */
    uint64_t changed;
} cnt;

struct part {
    int num;
    uint64_t size;
    char etag[33];
    unsigned char md5[16], *body;
};

struct upload {
    struct upload *next;
    char id[40];
    int b;
    char *key, *meta;
    struct part *parts;
    int nparts;
};
static struct upload *uploads;
static unsigned long upload_seq;


static void reply_error(struct conn *c, int status, const char *code, const char *msg)
{
    struct sbuf b = {0};
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>", code);
    sb_key(&b, msg, false);
    sb_printf(&b, "</Message><Resource>/%s/", c->rq.bucket ? c->rq.bucket : "");
    sb_key(&b, c->rq.key ? c->rq.key : "", false);
    sb_printf(&b, "</Resource><RequestId>synth%lu</RequestId></Error>", http_stats.requests);
    http_reply(c, status, "Content-Type: application/xml\r\n", b.d, b.n, strcmp(c->rq.method, "HEAD") == 0);
    free(b.d);
}

static void reply_xml(struct conn *c, const char *extra, const struct sbuf *b)
{
    char h[512];
    snprintf(h, sizeof h, "Content-Type: application/xml\r\n%s", extra ? extra : "");
    http_reply(c, 200, h, b->d, b->n, false);
}

/* ---- SigV4: the signature the request should carry, from what arrived ---- */

static bool auth_field(const char *auth, const char *name, char *out, size_t n)
{
    const char *p = strstr(auth, name);
    if (!p) return false;
    p += strlen(name);
    size_t l = strcspn(p, ", ");
    if (l >= n) return false;
    memcpy(out, p, l);
    out[l] = '\0';
    return true;
}

static int cmp_param(const void *a, const void *b)
{
    const struct s3_query_param *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* NULL when the signature is right, else the S3 error code (and *status). */
static const char *check_signature(const struct req *r, int *status, const char **msg)
{
    const char *auth = http_hdr(r, "authorization"), *date = http_hdr(r, "x-amz-date"), *sha = http_hdr(r, "x-amz-content-sha256");
    char cred[256], signed_h[1024], sig[80];
    *status = 403;
    if (!auth || strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0) {
        *msg = "synth_s3 takes only SigV4 requests signed in the Authorization header";
        return "AccessDenied";
    }
    if (!auth_field(auth, "Credential=", cred, sizeof cred) || !auth_field(auth, "SignedHeaders=", signed_h, sizeof signed_h) ||
        !auth_field(auth, "Signature=", sig, sizeof sig) || !date || !sha) {
        *status = 400;
        *msg = "the Authorization header, x-amz-date or x-amz-content-sha256 is missing or malformed";
        return "AuthorizationHeaderMalformed";
    }
    char *scope[5] = {0}, *save = NULL;
    int ns = 0;
    for (char *t = strtok_r(cred, "/", &save); t && ns < 5; t = strtok_r(NULL, "/", &save)) scope[ns++] = t;
    if (ns != 5) {
        *status = 400;
        *msg = "the credential scope is not AK/DATE/REGION/SERVICE/aws4_request";
        return "AuthorizationHeaderMalformed";
    }
    if (strcmp(scope[0], opt.creds.access_key) != 0) {
        *msg = "The AWS Access Key Id you provided does not exist in our records (synth_s3 --keys).";
        return "InvalidAccessKeyId";
    }
    struct s3_header h[MAX_HEADERS];
    size_t nh = 0;
    save = NULL;
    for (char *t = strtok_r(signed_h, ";", &save); t && nh < MAX_HEADERS; t = strtok_r(NULL, ";", &save)) {
        bool any = false;
        for (int i = 0; i < r->nh && nh < MAX_HEADERS; i++)
            if (strcasecmp(r->hname[i], t) == 0) h[nh++] = (struct s3_header){t, r->hval[i]}, any = true;
        if (!any && nh < MAX_HEADERS) h[nh++] = (struct s3_header){t, ""};
    }
    struct s3_query_param q[MAX_QUERY];
    for (int i = 0; i < r->nq; i++) q[i] = (struct s3_query_param){r->qn[i], r->qv[i]};
    qsort(q, (size_t)r->nq, sizeof q[0], cmp_param);
    char *path = strdup(r->rawpath);
    if (!path) abort();
    http_pct_decode(path);
    char *uri = s3_uri_encode(path, strlen(path), 1), *query = sigv4_canonical_query(q, (size_t)r->nq);
    struct sigv4_request sr = {r->method, uri, query, h, nh, sha};
    char *want = uri && query ? sigv4_authorization(&sr, &opt.creds, date, scope[2], scope[3]) : NULL;
    const char *ws = want ? strstr(want, "Signature=") : NULL;
    bool ok = ws && strcmp(ws + 10, sig) == 0;
    free(path);
    free(uri);
    free(query);
    free(want);
    if (ok) return NULL;
    *msg = "The request signature we calculated does not match the signature you provided. Check your key and "
           "signing method.";
    return "SignatureDoesNotMatch";
}

/* ---- object requests ---- */

/* The metadata a PUT carries, as header lines to give back on GET/HEAD. */
static char *meta_of(const struct req *r)
{
    static const char *const keep[] = {"content-type", "cache-control", "content-disposition", "content-encoding",
                                       "content-language", "expires"};
    struct sbuf b = {0};
    for (int i = 0; i < r->nh; i++) {
        bool k = strncasecmp(r->hname[i], "x-amz-meta-", 11) == 0;
        for (size_t j = 0; !k && j < sizeof keep / sizeof keep[0]; j++) k = strcasecmp(r->hname[i], keep[j]) == 0;
        if (k) sb_printf(&b, "%s: %s\r\n", r->hname[i], r->hval[i]);
    }
    return b.d;
}

static void version_header(char *out, size_t n, int b, const struct ver *v)
{
    if (b == DST || strcmp(v->vid, "null") != 0) snprintf(out, n, "x-amz-version-id: %s\r\n", v->vid);
    else out[0] = '\0';
}

/* Conditional writes: If-None-Match: * (create only) and If-Match: ETag (replace only that). */
static bool put_conditions(struct conn *c, int b)
{
    const char *inm = http_hdr(&c->rq, "if-none-match"), *im = http_hdr(&c->rq, "if-match");
    bool dm;
    const struct ver *cur = model_get(b, c->rq.key, NULL, &dm);
    if (inm && cur) {
        reply_error(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        return false;
    }
    if (im) {
        char e[64];
        http_unquote(im, e, sizeof e);
        if (!cur) {
            reply_error(c, 404, "NoSuchKey", "The specified key does not exist.");
            return false;
        }
        if (strcmp(e, cur->etag) != 0) {
            reply_error(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
            return false;
        }
    }
    return true;
}

static void body_md5(struct req *r, unsigned char md5[16], char hex[33])
{
    unsigned int l = 16;
    EVP_DigestFinal_ex(r->md5, md5, &l);
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", md5[i]);
}

static void do_put(struct conn *c, int b)
{
    if (!put_conditions(c, b)) return;
    unsigned char md5[16];
    char hex[33], vh[80], eh[160];
    body_md5(&c->rq, md5, hex);
    struct ver *v = model_put(b, c->rq.key);
    v->size = c->rq.got;
    memcpy(v->etag, hex, 33);
    v->meta = meta_of(&c->rq);
    v->stored = c->rq.keep;
    v->body = c->rq.body;
    c->rq.body = NULL;
    version_header(vh, sizeof vh, b, v);
    snprintf(eh, sizeof eh, "ETag: \"%s\"\r\n%s", v->etag, vh);
    http_reply(c, 200, eh, NULL, 0, false);
}

/* x-amz-copy-source "/bucket/key?versionId=V" (URL-encoded): the version it names, or NULL after a reply. */
static const struct ver *copy_source(struct conn *c, int *sb, char **skey)
{
    char *src = strdup(http_hdr(&c->rq, "x-amz-copy-source")), *vid = strstr(src, "?versionId=");
    if (vid) *vid = '\0', vid += 11, http_pct_decode(vid);
    char *p = src + (*src == '/'), *slash = strchr(p, '/');
    if (!slash) {
        reply_error(c, 400, "InvalidArgument", "x-amz-copy-source wants /bucket/key");
        free(src);
        return NULL;
    }
    *slash = '\0';
    http_pct_decode(p);
    http_pct_decode(slash + 1);
    bool dm;
    *sb = model_bucket(p);
    const struct ver *v = *sb < 0 ? NULL : model_get(*sb, slash + 1, vid, &dm);
    if (!v) reply_error(c, 404, *sb < 0 ? "NoSuchBucket" : "NoSuchKey", "The copy source does not exist.");
    const char *cim = http_hdr(&c->rq, "x-amz-copy-source-if-match");
    if (!cim) cim = http_hdr(&c->rq, "x-amz-copy-if-match");
    char e[64];
    if (v && cim && (http_unquote(cim, e, sizeof e), strcmp(e, v->etag) != 0)) {
        reply_error(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        v = NULL;
    }
    *skey = v ? strdup(slash + 1) : NULL;
    free(src);
    return v;
}

static void do_copy(struct conn *c, int b)
{
    int sb;
    char *skey;
    const struct ver *sv = copy_source(c, &sb, &skey);
    if (!sv) return;
    struct ver src = *sv; /* model_get's answer may be overwritten */
    const char *dir = http_hdr(&c->rq, "x-amz-metadata-directive");
    bool replace = dir && strcasecmp(dir, "REPLACE") == 0;
    struct ver *v = model_put(b, c->rq.key);
    v->size = src.size;
    memcpy(v->etag, src.etag, sizeof v->etag);
    v->cls = src.cls;
    v->var = src.var;
    v->stored = src.stored;
    if (src.body) {
        v->body = malloc(src.size ? src.size : 1);
        memcpy(v->body, src.body, src.size);
    }
    v->meta = replace ? meta_of(&c->rq) : src.meta ? strdup(src.meta) : strdup(model_content_type(skey));
    if (strchr(v->etag, '-') && (v->body || v->cls >= 0)) { /* a copy is one part: its ETag is the MD5 */
        unsigned char *tmp = malloc(v->size ? v->size : 1);
        model_read(v, 0, tmp, v->size);
        md5_hex(tmp, v->size, v->etag);
        free(tmp);
    }
    char lm[32], vh[80], h[160];
    iso_time(v->lm, lm);
    version_header(vh, sizeof vh, b, v);
    snprintf(h, sizeof h, "%s", vh);
    struct sbuf x = {0};
    sb_printf(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult><LastModified>%s</LastModified>"
                  "<ETag>&quot;%s&quot;</ETag></CopyObjectResult>", lm, v->etag);
    reply_xml(c, h, &x);
    free(x.d);
    free(skey);
}

static void do_get(struct conn *c, int b, bool head)
{
    bool dm;
    const struct ver *v = model_get(b, c->rq.key, http_query(&c->rq, "versionId"), &dm);
    if (!v) {
        if (dm) {
            c->close_after = c->close_after;
            http_reply(c, 404, "x-amz-delete-marker: true\r\n", NULL, 0, true);
            return;
        }
        reply_error(c, 404, "NoSuchKey", "The specified key does not exist.");
        return;
    }
    const char *im = http_hdr(&c->rq, "if-match"), *inm = http_hdr(&c->rq, "if-none-match"), *range = http_hdr(&c->rq, "range");
    char e[64];
    if (im && (http_unquote(im, e, sizeof e), strcmp(e, v->etag) != 0)) {
        reply_error(c, 412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
        return;
    }
    if (inm && (http_unquote(inm, e, sizeof e), strcmp(e, v->etag) == 0)) {
        http_reply(c, 304, NULL, NULL, 0, true);
        return;
    }
    uint64_t first = 0, last = v->size ? v->size - 1 : 0;
    int status = 200;
    char extra[4096], lmh[40], vh[80], cr[96] = "";
    if (range && v->size) {
        unsigned long long a = 0, z = last;
        if (sscanf(range, "bytes=%llu-%llu", &a, &z) < 1 || a > last) {
            reply_error(c, 416, "InvalidRange", "The requested range is not satisfiable");
            return;
        }
        first = a;
        last = z > last ? last : z;
        status = 206;
        snprintf(cr, sizeof cr, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first, last, v->size);
    }
    if (!v->stored && v->cls < 0 && !head) {
        reply_error(c, 501, "NotImplemented", "synth_s3 kept only the size and ETag of this object (over --store-max)");
        return;
    }
    http_date(v->lm, lmh);
    version_header(vh, sizeof vh, b, v);
    char rec[128] = "";
    if (v->etag_differs) {
        char se[48];
        model_source_etag(v, se);
        snprintf(rec, sizeof rec, SOURCE_ETAG_META ": %s\r\n", se);
    }
    snprintf(extra, sizeof extra, "ETag: \"%s\"\r\nLast-Modified: %s\r\nAccept-Ranges: bytes\r\n%s%s%s%s", v->etag,
             lmh, vh, cr, rec, v->meta ? v->meta : model_content_type(c->rq.key));
    size_t len = v->size ? (size_t)(last - first + 1) : 0;
    unsigned char *buf = malloc(len ? len : 1);
    if (!head) model_read(v, first, buf, len);
    http_reply(c, status, extra, buf, len, head);
    free(buf);
}

/* ---- multipart ---- */

static struct upload *find_upload(const char *id)
{
    for (struct upload *u = uploads; u; u = u->next)
        if (id && strcmp(u->id, id) == 0) return u;
    return NULL;
}

static void upload_free(struct upload *u)
{
    for (struct upload **p = &uploads; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            break;
        }
    for (int i = 0; i < u->nparts; i++) free(u->parts[i].body);
    free(u->parts);
    free(u->key);
    free(u->meta);
    free(u);
}

static void do_mpu(struct conn *c, int b, enum kind k)
{
    struct upload *u = find_upload(http_query(&c->rq, "uploadId"));
    struct sbuf x = {0};
    if (k != K_MPU_CREATE && (!u || strcmp(u->key, c->rq.key) != 0)) {
        reply_error(c, 404, "NoSuchUpload", "The specified upload does not exist.");
        return;
    }
    if (k == K_MPU_CREATE) {
        u = calloc(1, sizeof *u);
        snprintf(u->id, sizeof u->id, "synth-upload-%lu", ++upload_seq);
        u->b = b;
        u->key = strdup(c->rq.key);
        u->meta = meta_of(&c->rq);
        u->next = uploads;
        uploads = u;
        sb_printf(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>%s</Bucket>"
                      "<Key>", c->rq.bucket);
        sb_key(&x, c->rq.key, false);
        sb_printf(&x, "</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>", u->id);
        reply_xml(c, NULL, &x);
    } else if (k == K_MPU_PART) {
        int num = atoi(http_query(&c->rq, "partNumber") ? http_query(&c->rq, "partNumber") : "0");
        if (num < 1 || num > 10000) {
            reply_error(c, 400, "InvalidArgument", "partNumber must be 1..10000");
            return;
        }
        struct part p = {.num = num};
        if (http_hdr(&c->rq, "x-amz-copy-source")) { /* UploadPartCopy */
            int sb;
            char *skey;
            const struct ver *sv = copy_source(c, &sb, &skey);
            if (!sv) return;
            unsigned long long a = 0, z = sv->size ? sv->size - 1 : 0;
            const char *rg = http_hdr(&c->rq, "x-amz-copy-source-range");
            if (rg) sscanf(rg, "bytes=%llu-%llu", &a, &z);
            p.size = z >= a && sv->size ? z - a + 1 : 0;
            p.body = malloc(p.size ? p.size : 1);
            model_read(sv, a, p.body, p.size);
            free(skey);
        } else {
            p.size = c->rq.got;
            p.body = c->rq.body;
            c->rq.body = NULL;
        }
        unsigned int l = 16;
        EVP_Digest(p.body, p.size, p.md5, &l, EVP_md5(), NULL);
        for (int i = 0; i < 16; i++) snprintf(p.etag + 2 * i, 3, "%02x", p.md5[i]);
        int at = 0;
        while (at < u->nparts && u->parts[at].num != num) at++;
        if (at == u->nparts) {
            u->parts = realloc(u->parts, (size_t)(u->nparts + 1) * sizeof *u->parts);
            u->nparts++;
        } else {
            free(u->parts[at].body);
        }
        u->parts[at] = p;
        if (http_hdr(&c->rq, "x-amz-copy-source")) {
            sb_printf(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult><ETag>&quot;%s&quot;</ETag>"
                          "</CopyPartResult>", p.etag);
            reply_xml(c, NULL, &x);
        } else {
            char eh[64];
            snprintf(eh, sizeof eh, "ETag: \"%s\"\r\n", p.etag);
            http_reply(c, 200, eh, NULL, 0, false);
        }
    } else if (k == K_MPU_ABORT) {
        upload_free(u);
        http_reply(c, 204, NULL, NULL, 0, true);
    } else { /* complete: the parts the body lists, in its order */
        const char *s = c->rq.body ? (const char *)c->rq.body : "";
        struct sbuf all = {0}, md5s = {0};
        int n = 0;
        for (const char *pn = strstr(s, "<PartNumber>"); pn; pn = strstr(pn + 1, "<PartNumber>")) {
            int num = atoi(pn + 12), at = 0;
            while (at < u->nparts && u->parts[at].num != num) at++;
            if (at == u->nparts) {
                reply_error(c, 400, "InvalidPart", "One or more of the specified parts could not be found.");
                free(all.d);
                free(md5s.d);
                return;
            }
            sb_add(&all, u->parts[at].body, u->parts[at].size);
            sb_add(&md5s, u->parts[at].md5, 16);
            n++;
        }
        struct ver *v = model_put(u->b, u->key);
        md5_hex(md5s.d ? md5s.d : "", md5s.n, v->etag);
        snprintf(v->etag + 32, sizeof v->etag - 32, "-%d", n);
        v->size = all.n;
        v->body = (unsigned char *)all.d;
        v->stored = true;
        v->meta = u->meta;
        u->meta = NULL;
        char vh[80];
        version_header(vh, sizeof vh, u->b, v);
        sb_printf(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Bucket>%s</Bucket>"
                      "<Key>", c->rq.bucket);
        sb_key(&x, c->rq.key, false);
        sb_printf(&x, "</Key><ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>", v->etag);
        reply_xml(c, vh, &x);
        free(md5s.d);
        upload_free(u);
    }
    free(x.d);
}

/* ---- bucket requests ---- */

static int max_keys(const struct req *r)
{
    const char *mk = http_query(r, "max-keys");
    int n = mk ? atoi(mk) : 1000;
    return n < 0 ? 0 : n > 1000 ? 1000 : n;
}

static void do_list(struct conn *c, int b, enum kind k)
{
    const struct req *r = &c->rq;
    const char *enc = http_query(r, "encoding-type");
    struct list_args a = {.prefix = http_query(r, "prefix"), .delim = http_query(r, "delimiter"), .max = max_keys(r),
                          .url = enc && !strcmp(enc, "url"), .v2 = k == K_LIST_V2};
    char *tok = NULL;
    if (k == K_LIST_V2) {
        a.start_after = http_query(r, "start-after");
        a.token_in = http_query(r, "continuation-token");
        a.after = a.start_after;
        if (a.token_in) { /* our tokens are the hex of the last key listed */
            size_t n = strlen(a.token_in) / 2;
            tok = calloc(1, n + 1);
            for (size_t i = 0; i < n; i++) tok[i] = (char)(http_hexval(a.token_in[2 * i]) * 16 + http_hexval(a.token_in[2 * i + 1]));
            a.after = tok;
        }
    } else if (k == K_LIST_V1) {
        a.marker = a.after = http_query(r, "marker");
    } else {
        a.after = http_query(r, "key-marker");
        a.vid_after = http_query(r, "version-id-marker");
        if (a.vid_after && !a.vid_after[0]) a.vid_after = NULL;
        if (a.after && !a.after[0]) a.after = NULL;
    }
    if (a.after && !a.after[0]) a.after = NULL;
    static struct sbuf x; /* reused, as the page bodies are */
    x.n = 0;
    if (k == K_LIST_VERSIONS) model_list_versions(b, &a, &x, &cnt.listed_keys);
    else model_list(b, &a, &x, &cnt.listed_keys);
    reply_xml(c, NULL, &x);
    free(tok);
}

static void do_bucket(struct conn *c, int b)
{
    const struct req *r = &c->rq;
    struct sbuf x = {0};
    sb_add(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39);
    if (http_query(r, "versioning") && !strcmp(r->method, "GET")) {
        sb_printf(&x, "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">%s"
                      "</VersioningConfiguration>", b == DST ? "<Status>Enabled</Status>" : "");
    } else if (http_query(r, "uploads")) {
        sb_printf(&x, "<ListMultipartUploadsResult><Bucket>%s</Bucket><IsTruncated>false</IsTruncated>", r->bucket);
        for (struct upload *u = uploads; u; u = u->next) {
            if (u->b != b) continue;
            sb_add(&x, "<Upload><Key>", 13);
            sb_key(&x, u->key, false);
            sb_printf(&x, "</Key><UploadId>%s</UploadId></Upload>", u->id);
        }
        sb_add(&x, "</ListMultipartUploadsResult>", 29);
    } else if (http_query(r, "location")) {
        sb_add(&x, "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>", 70);
    } else if (!strcmp(r->method, "HEAD") || !strcmp(r->method, "PUT")) {
        http_reply(c, 200, NULL, NULL, 0, true); /* HeadBucket, CreateBucket, PutBucketVersioning: accepted */
        free(x.d);
        return;
    } else {
        reply_error(c, 501, "NotImplemented", "synth_s3 does not implement this bucket request");
        free(x.d);
        return;
    }
    reply_xml(c, NULL, &x);
    free(x.d);
}

/* ---- dispatch ---- */

static void dispatch(struct conn *c)
{
    struct req *r = &c->rq;
    int b = model_bucket(r->bucket);
    bool obj = r->key[0] != '\0', get = !strcmp(r->method, "GET"), put = !strcmp(r->method, "PUT");
    bool post = !strcmp(r->method, "POST"), del = !strcmp(r->method, "DELETE"), head = !strcmp(r->method, "HEAD");
    enum kind k = K_OTHER;
    if (!obj && get && http_query(r, "list-type")) k = K_LIST_V2;
    else if (!obj && get && http_query(r, "versions")) k = K_LIST_VERSIONS;
    else if (!obj && get && http_query(r, "uploads")) k = K_LIST_UPLOADS;
    else if (!obj && get && r->nq == 0 + (http_query(r, "encoding-type") != NULL) + (http_query(r, "prefix") != NULL) +
                                 (http_query(r, "marker") != NULL) + (http_query(r, "max-keys") != NULL) +
                                 (http_query(r, "delimiter") != NULL)) k = K_LIST_V1;
    else if (!obj) k = K_BUCKET;
    else if (head) k = K_HEAD;
    else if (get && !http_query(r, "tagging")) k = K_GET;
    else if (post && http_query(r, "uploads")) k = K_MPU_CREATE;
    else if (post && http_query(r, "uploadId")) k = K_MPU_COMPLETE;
    else if (put && http_query(r, "uploadId")) k = K_MPU_PART;
    else if (del && http_query(r, "uploadId")) k = K_MPU_ABORT;
    else if (put && !r->nq && http_hdr(r, "x-amz-copy-source")) k = K_COPY;
    else if (put && !r->nq) k = K_PUT;
    cnt.kind[k]++;
    if (k == K_HEAD && strncmp(r->key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) != 0) cnt.data_heads++;
    if (!r->bucket[0]) {
        struct sbuf x = {0};
        sb_printf(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult><Buckets>"
                      "<Bucket><Name>%s</Name></Bucket><Bucket><Name>%s</Name></Bucket></Buckets>"
                      "</ListAllMyBucketsResult>", model_opts()->bucket[0], model_opts()->bucket[1]);
        reply_xml(c, NULL, &x);
        free(x.d);
        return;
    }
    if (b < 0) return reply_error(c, 404, "NoSuchBucket", "The specified bucket does not exist");
    switch (k) {
    case K_LIST_V2: case K_LIST_V1: case K_LIST_VERSIONS: return do_list(c, b, k);
    case K_LIST_UPLOADS: case K_BUCKET: return do_bucket(c, b);
    case K_HEAD: case K_GET: return do_get(c, b, k == K_HEAD);
    case K_PUT: return do_put(c, b);
    case K_COPY: return do_copy(c, b);
    case K_MPU_CREATE: case K_MPU_PART: case K_MPU_COMPLETE: case K_MPU_ABORT: return do_mpu(c, b, k);
    default: break;
    }
    if (put && http_query(r, "tagging")) return http_reply(c, 200, NULL, NULL, 0, false);
    if (get && http_query(r, "tagging")) {
        struct sbuf x = {0};
        sb_add(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging><TagSet></TagSet></Tagging>", 77);
        reply_xml(c, NULL, &x);
        free(x.d);
        return;
    }
    reply_error(c, 501, "NotImplemented", "synth_s3 does not implement this request");
}

/* ---- the server's callbacks ---- */

static bool on_head(struct conn *c)
{
    int status;
    const char *msg, *code = check_signature(&c->rq, &status, &msg);
    if (!code) return true;
    cnt.denied++;
    reply_error(c, status, code, msg);
    return false;
}

static void on_request(struct conn *c)
{
    struct req *r = &c->rq;
    /* the payload hashes a request names: S3 refuses a body that does not match them */
    if (r->sha) {
        unsigned char d[32];
        unsigned int l = 32;
        char hex[65];
        EVP_DigestFinal_ex(r->sha, d, &l);
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
        if (strcmp(hex, http_hdr(r, "x-amz-content-sha256")) != 0)
            return reply_error(c, 400, "XAmzContentSHA256Mismatch",
                               "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const char *cmd5 = http_hdr(r, "content-md5");
    if (cmd5) {
        EVP_MD_CTX *copy = EVP_MD_CTX_new();
        EVP_MD_CTX_copy_ex(copy, r->md5);
        unsigned char d[16], b64[32];
        unsigned int l = 16;
        EVP_DigestFinal_ex(copy, d, &l);
        EVP_MD_CTX_free(copy);
        EVP_EncodeBlock(b64, d, 16);
        if (strcmp((char *)b64, cmd5) != 0)
            return reply_error(c, 400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
    }
    if (!r->keep && r->clen && (!strcmp(r->method, "POST") || http_query(r, "uploadId")))
        return reply_error(c, 400, "EntityTooLarge", "synth_s3 keeps parts and request documents up to --store-max");
    dispatch(c);
}

/* ---- counts, signals, options ---- */

static void counts_write(bool final)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    if (final)
        fprintf(stderr, "synth_s3: %lu requests; own CPU %.2f s user + %.2f s system, peak RSS %ld MiB\n",
                http_stats.requests, user, sys, ru.ru_maxrss / 1024);
    if (!opt.count_path) return;
    uint64_t differ, extra;
    model_diff(&differ, &extra);
    cnt.dumps++;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", opt.count_path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "synth_s3: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "{\"dump\": %lu, \"requests\": %lu, \"kinds\": {", cnt.dumps, http_stats.requests);
    for (int k = 0; k < K_N; k++) fprintf(f, "%s\"%s\": %lu", k ? ", " : "", kind_names[k], cnt.kind[k]);
    fprintf(f, "}, \"data_heads\": %lu", cnt.data_heads);
    fprintf(f, ", \"lists\": %lu, \"denied\": %lu, \"status_4xx\": %lu, \"status_5xx\": %lu, \"listed_keys\": %lu,\n"
               " \"cpu_user\": %.3f, \"cpu_sys\": %.3f, \"max_rss_kb\": %ld, \"objects\": %" PRIu64 ", \"generation\": %d,"
               " \"changed\": %" PRIu64 ", \"target_differs\": %" PRIu64 ", \"target_extra\": %" PRIu64 "}\n",
            cnt.kind[K_LIST_V2] + cnt.kind[K_LIST_V1] + cnt.kind[K_LIST_VERSIONS], cnt.denied, http_stats.status4,
            http_stats.status5, cnt.listed_keys, user, sys, ru.ru_maxrss, model_opts()->n, model_generation(),
            cnt.changed, differ, extra);
    if (fclose(f) != 0 || rename(tmp, opt.count_path) != 0)
        fprintf(stderr, "synth_s3: %s: %s\n", opt.count_path, strerror(errno));
}

static void signal_cb(struct ev_loop *l, ev_signal *w, int revents)
{
    if (w->signum == SIGUSR1) {
        counts_write(false);
    } else if (w->signum == SIGUSR2) {
        cnt.changed = model_next_generation();
        fprintf(stderr, "synth_s3: generation %d: %" PRIu64 " source objects changed\n", model_generation(),
                cnt.changed);
        counts_write(false);
    } else {
        ev_break(l, EVBREAK_ALL);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: synth_s3 --listen HOST:PORT --keys ACCESS_KEY:SECRET_KEY [--objects N] [--seed N]\n"
               "                [--source-bucket src] [--target-bucket dst] [--target-delta F] [--change F]\n"
               "                [--latency-ms MS] [--count-file FILE] [--store-max BYTES] [--target-etag-differs]\n"
               "Serves N generated keys (default 1000) in the source bucket and the same keys in the target (a\n"
               "replica with a replicate marker), except a --target-delta fraction there (half missing, half with\n"
               "other content). SIGUSR2: the next source generation, a --change fraction of its keys with new\n"
               "content. SIGUSR1: write --count-file (requests by kind, own CPU, and how many source keys the\n"
               "target does not match). Requests must be signed with SigV4 for --keys. Port 0 picks one; the\n"
               "port is printed as \"listening on HOST:PORT\".\n"
               "--target-etag-differs: the target's generated objects report the ETag \"<source ETag>-1\" and carry\n"
               "the source's ETag in " SOURCE_ETAG_META " (as replicate's multipart or SSE-KMS copies do).\n");
}

static bool fraction(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return !*end && end != s && *out >= 0 && *out <= 1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},        {"keys", required_argument, NULL, 'k'},
        {"objects", required_argument, NULL, 'n'},       {"seed", required_argument, NULL, 's'},
        {"source-bucket", required_argument, NULL, 'S'}, {"target-bucket", required_argument, NULL, 'T'},
        {"target-delta", required_argument, NULL, 'd'},  {"change", required_argument, NULL, 'c'},
        {"latency-ms", required_argument, NULL, 'L'},    {"count-file", required_argument, NULL, 'C'},
        {"store-max", required_argument, NULL, 'M'},     {"help", no_argument, NULL, 'h'},
        {"target-etag-differs", no_argument, NULL, 'E'},
        {NULL, 0, NULL, 0},
    };
    struct model_opts mo = {.n = 1000, .seed = 17, .bucket = {"src", "dst"}, .change = 0.001};
    struct http_opts ho = {.store_max = 16u << 20, .on_head = on_head, .on_request = on_request};
    int ch;
    char *end;
    const char *colon;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': opt.listen = optarg; break;
        case 'k':
            colon = strchr(optarg, ':');
            if (!colon || colon == optarg || !colon[1]) {
                fprintf(stderr, "synth_s3: --keys wants ACCESS_KEY:SECRET_KEY\n");
                return 2;
            }
            opt.creds.access_key = strndup(optarg, (size_t)(colon - optarg));
            opt.creds.secret_key = strdup(colon + 1);
            break;
        case 'n':
        case 's':
        case 'M': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || end == optarg || (ch == 'n' && v > (1ull << 40))) {
                fprintf(stderr, "synth_s3: --%s wants a non-negative integer\n",
                        ch == 'n' ? "objects" : ch == 's' ? "seed" : "store-max");
                return 2;
            }
            if (ch == 'n') mo.n = v;
            else if (ch == 's') mo.seed = v;
            else ho.store_max = (size_t)v;
            break;
        }
        case 'S': mo.bucket[SRC] = optarg; break;
        case 'T': mo.bucket[DST] = optarg; break;
        case 'd':
        case 'c':
            if (!fraction(optarg, ch == 'd' ? &mo.target_delta : &mo.change)) {
                fprintf(stderr, "synth_s3: --%s wants a fraction in [0,1]\n", ch == 'd' ? "target-delta" : "change");
                return 2;
            }
            break;
        case 'L':
            ho.latency = strtod(optarg, &end) / 1000;
            if (*end || end == optarg || ho.latency < 0) {
                fprintf(stderr, "synth_s3: --latency-ms wants a non-negative number\n");
                return 2;
            }
            break;
        case 'C': opt.count_path = optarg; break;
        case 'E': mo.target_etag_differs = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !opt.listen || !opt.creds.access_key || !strcmp(mo.bucket[SRC], mo.bucket[DST])) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    model_init(&mo);
    /* the target is a replica already: its marker is there */
    static const char marker[] = "{\"tool\":\"replicate\",\"note\":\"synth_s3's target\"}\n";
    struct ver *v = model_put(DST, ".replicate/marker");
    v->size = sizeof marker - 1;
    md5_hex(marker, v->size, v->etag);
    v->body = (unsigned char *)strdup(marker);
    v->stored = true;
    v->meta = strdup("Content-Type: application/json\r\n");
    struct ev_loop *loop = ev_default_loop(0);
    if (http_listen(loop, opt.listen, &ho) != 0) return 1;
    ev_signal sigs[4];
    int nums[4] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
    for (int i = 0; i < 4; i++) {
        ev_signal_init(&sigs[i], signal_cb, nums[i]);
        ev_signal_start(loop, &sigs[i]);
    }
    fprintf(stderr, "synth_s3: %" PRIu64 " objects in s3://%s and s3://%s (target delta %.4f, change %.4f per "
                    "generation), latency %.0f ms%s\n", mo.n, mo.bucket[SRC], mo.bucket[DST], mo.target_delta,
            mo.change, ho.latency * 1000, mo.target_etag_differs ? ", every target ETag differs" : "");
    ev_run(loop, 0);
    counts_write(true);
    return 0;
}
