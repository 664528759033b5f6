/* Provider mode of the fault proxy: see aws.h. */
#include "tests/tools/proxy/aws.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3/sigv4.h"

#define MAX_KMS 16
#define MAX_HEADERS 64

/* --kms-bucket BUCKET[/PREFIX]: the objects of BUCKET whose keys start with PREFIX (all when none) */
struct kms_rule {
    char *bucket;
    const char *prefix; /* after the bucket's '/' in the same allocation, or "" */
};

static struct {
    struct kms_rule kms[MAX_KMS];
    int nkms;
    struct s3_credentials creds;
} g;

static const char sse_headers[] = "x-amz-server-side-encryption: aws:kms\r\n"
                                  "x-amz-server-side-encryption-aws-kms-key-id: "
                                  "arn:aws:kms:us-east-1:111122223333:key/faultproxy-test-key\r\n";

bool aws_add_kms_bucket(const char *spec)
{
    if (g.nkms == MAX_KMS || !spec[0] || spec[0] == '/') {
        fprintf(stderr, "faultproxy: bad --kms-bucket '%s' (BUCKET or BUCKET/PREFIX; at most %d)\n", spec, MAX_KMS);
        return false;
    }
    struct kms_rule *r = &g.kms[g.nkms++];
    r->bucket = strdup(spec);
    if (!r->bucket) return false;
    char *slash = strchr(r->bucket, '/');
    if (slash) *slash = '\0';
    r->prefix = slash ? slash + 1 : "";
    return true;
}

bool aws_set_keys(const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        fprintf(stderr, "faultproxy: --resign-keys wants ACCESS_KEY:SECRET_KEY\n");
        return false;
    }
    g.creds.access_key = strndup(spec, (size_t)(colon - spec));
    g.creds.secret_key = strdup(colon + 1);
    return g.creds.access_key && g.creds.secret_key;
}

bool aws_enabled(void)
{
    return g.nkms > 0;
}

bool aws_check(void)
{
    if (aws_enabled() && !g.creds.access_key) {
        fprintf(stderr, "faultproxy: --kms-bucket rewrites signed requests: it needs --resign-keys\n");
        return false;
    }
    return true;
}

/* Whether the bucket has SSE-KMS objects at all (key NULL), or the object key (kl bytes, percent-encoded as
 * in URIs and encoding-type=url listings, or not) is one. */
static bool is_kms(const char *bucket, size_t n, const char *key, size_t kl)
{
    char dec[1024];
    size_t dl = 0;
    for (size_t i = 0; key && i < kl && dl < sizeof dec; i++) {
        if (key[i] == '%' && i + 2 < kl && isxdigit((unsigned char)key[i + 1]) &&
            isxdigit((unsigned char)key[i + 2])) {
            char hex[3] = {key[i + 1], key[i + 2], 0};
            dec[dl++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            dec[dl++] = key[i];
        }
    }
    for (int i = 0; i < g.nkms; i++) {
        const struct kms_rule *r = &g.kms[i];
        size_t pl = strlen(r->prefix);
        if (strlen(r->bucket) != n || memcmp(r->bucket, bucket, n) != 0) continue;
        if (!key || (dl >= pl && memcmp(dec, r->prefix, pl) == 0)) return true;
    }
    return false;
}

/* The bucket of a path-style URI or copy source ("/bucket/key?...", "bucket/key"): its span in s. */
static bool bucket_span(const char *s, size_t n, const char **b, size_t *bl)
{
    if (n && *s == '/') s++, n--;
    size_t k = 0;
    while (k < n && s[k] != '/' && s[k] != '?' && s[k] != ' ') k++;
    *b = s;
    *bl = k;
    return k > 0;
}

/* The key of a path-style URI or copy source after its bucket (up to '?', ' ' or the end): its span. */
static void key_span(const char *b, size_t bl, const char *end, const char **k, size_t *kl)
{
    const char *p = b + bl;
    *k = NULL;
    *kl = 0;
    if (p >= end || *p != '/') return;
    p++;
    size_t n = 0;
    while (p + n < end && p[n] != '?' && p[n] != ' ') n++;
    if (n) *k = p, *kl = n;
}

/* Whether a request's URI (or a copy source) names an SSE-KMS object, or a bucket that holds some. */
static bool kms_uri(const char *uri, size_t n)
{
    const char *b, *k;
    size_t bl, kl;
    if (!bucket_span(uri, n, &b, &bl)) return false;
    key_span(b, bl, uri + n, &k, &kl);
    return is_kms(b, bl, k, kl);
}

/* Whether the URI names an object (a key after the bucket), not the bucket itself. */
static bool object_uri(const char *uri)
{
    const char *q = strchr(uri, '?');
    size_t n = q ? (size_t)(q - uri) : strlen(uri);
    const char *slash = n > 1 ? memchr(uri + 1, '/', n - 1) : NULL;
    return slash && slash + 1 < uri + n;
}

/* ---- the ETag rewrite: each hex digit rotated by 5 (to the client) or back by 5 (to the server), in the
 * first run of exactly 32 hex digits in s[0..n). Another 32 hex digits, not the MD5 of anything sent. */
static void rotate(char *s, size_t n, int by)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n;) {
        if (!isxdigit((unsigned char)s[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && isxdigit((unsigned char)s[j])) j++;
        if (j - i == 32) {
            for (size_t k = i; k < j; k++) {
                int v = isdigit((unsigned char)s[k]) ? s[k] - '0' : tolower((unsigned char)s[k]) - 'a' + 10;
                s[k] = digits[(v + by + 16) % 16];
            }
            return;
        }
        i = j;
    }
}

/* Every <ETag>...</ETag> in an XML body of a request or reply for uri that belongs to an SSE-KMS object: the
 * object is the one named by the last <Key> before it (listings, CompleteMultipartUploadResult), else the URI's. */
static void rotate_xml(const char *uri, char *body, size_t len, int by)
{
    const char *b, *k;
    size_t bl, kl, ulen = strcspn(uri, " ");
    if (!bucket_span(uri, ulen, &b, &bl)) return;
    key_span(b, bl, uri + ulen, &k, &kl);
    char *p = body, *end = body + len;
    for (;;) {
        char *etag = memmem(p, (size_t)(end - p), "<ETag>", 6), *key = memmem(p, (size_t)(end - p), "<Key>", 5);
        if (!etag) return;
        if (key && key < etag) { /* the object the next ETags belong to */
            char *ke = memmem(key + 5, (size_t)(end - key - 5), "</Key>", 6);
            if (!ke) return;
            k = key + 5;
            kl = (size_t)(ke - k);
            p = ke + 6;
            continue;
        }
        p = etag + 6;
        char *e = memmem(p, (size_t)(end - p), "</ETag>", 7);
        if (!e) return;
        if (is_kms(b, bl, k, kl)) rotate(p, (size_t)(e - p), by);
        p = e + 7;
    }
}

void aws_body(const char *uri, char *body, size_t len)
{
    rotate_xml(uri, body, len, 5);
}

/* ---- heads ---- */

struct hline {
    char *name, *value; /* into the head; not terminated */
    size_t nlen, vlen;
};

/* Header lines of a head (after the start line); returns the count, or -1 if there are too many. */
static int split_head(char *head, size_t hl, struct hline *h)
{
    int n = 0;
    char *p = memchr(head, '\n', hl), *end = head + hl;
    if (!p) return -1;
    p++;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        size_t ll = (size_t)(nl - p);
        if (ll && p[ll - 1] == '\r') ll--;
        char *colon = ll ? memchr(p, ':', ll) : NULL;
        if (colon) {
            if (n == MAX_HEADERS) return -1;
            char *v = colon + 1, *ve = p + ll;
            while (v < ve && (*v == ' ' || *v == '\t')) v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            h[n++] = (struct hline){p, v, (size_t)(colon - p), (size_t)(ve - v)};
        }
        p = nl + 1;
    }
    return n;
}

static struct hline *find(struct hline *h, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strlen(name) == h[i].nlen && strncasecmp(h[i].name, name, h[i].nlen) == 0) return &h[i];
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The canonical query of the request's query string (already encoded on the wire): its parameters sorted, each
 * as "name=value". */
static char *canonical_query(const char *q, size_t n)
{
    char *copy = strndup(q, n), **params = NULL, *out = NULL;
    size_t np = 0, cap = 0, total = 0;
    if (!copy) return NULL;
    for (char *save = NULL, *t = strtok_r(copy, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
        char *one = NULL;
        if (asprintf(&one, strchr(t, '=') ? "%s" : "%s=", t) < 0) goto done;
        if (np == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = realloc(params, cap * sizeof *params);
            if (!grown) {
                free(one);
                goto done;
            }
            params = grown;
        }
        params[np++] = one;
        total += strlen(one) + 1;
    }
    qsort(params, np, sizeof *params, cmp_str);
    out = calloc(1, total + 1);
    for (size_t i = 0; out && i < np; i++) {
        if (i) strcat(out, "&");
        strcat(out, params[i]);
    }
done:
    for (size_t i = 0; i < np; i++) free(params[i]);
    free(params);
    free(copy);
    return out;
}

/* Signs the (rewritten) request again with the test keys: the Signature in Authorization and, when the body
 * changed, x-amz-content-sha256 are overwritten in place (both are 64 hex digits). */
static int resign(char *head, size_t hl, struct hline *h, int n, const char *body_sha256)
{
    struct hline *auth = find(h, n, "authorization"), *date = find(h, n, "x-amz-date"),
                 *sha = find(h, n, "x-amz-content-sha256");
    if (!auth || !date || !sha) {
        fprintf(stderr, "faultproxy: a request to rewrite is not signed with SigV4 headers: left as it is\n");
        return -2;
    }
    char *a = strndup(auth->value, auth->vlen);
    char *cred = a ? strstr(a, "Credential=") : NULL, *sh = a ? strstr(a, "SignedHeaders=") : NULL,
         *sig = a ? strstr(a, "Signature=") : NULL;
    char scope[5][128] = {{0}};
    int parts = 0;
    if (cred) {
        char *c = cred + 11, *ce = strchr(c, ',');
        if (ce) *ce = '\0';
        for (char *save = NULL, *t = strtok_r(c, "/", &save); t && parts < 5; t = strtok_r(NULL, "/", &save))
            snprintf(scope[parts++], sizeof scope[0], "%s", t);
    }
    if (!sh || !sig || parts != 5 || strcmp(scope[0], g.creds.access_key) != 0) {
        fprintf(stderr, "faultproxy: cannot sign a rewritten request again (%s): left as it is\n",
                parts == 5 ? "another access key than --resign-keys" : "unexpected Authorization");
        free(a);
        return -2;
    }
    if (body_sha256 && sha->vlen == 64) memcpy(sha->value, body_sha256, 64); /* else UNSIGNED-PAYLOAD */
    struct s3_header sh_list[MAX_HEADERS];
    char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t nsh = 0;
    char *s = sh + 14, *se = strchr(s, ',');
    if (se) *se = '\0';
    for (char *save = NULL, *t = strtok_r(s, ";", &save); t && nsh < MAX_HEADERS; t = strtok_r(NULL, ";", &save)) {
        struct hline *x = find(h, n, t);
        names[nsh] = t;
        values[nsh] = x ? strndup(x->value, x->vlen) : strdup("");
        sh_list[nsh] = (struct s3_header){names[nsh], values[nsh]};
        nsh++;
    }
    /* the start line: "METHOD URI HTTP/1.1" */
    char *sp1 = memchr(head, ' ', hl), *sp2 = sp1 ? memchr(sp1 + 1, ' ', hl - (size_t)(sp1 + 1 - head)) : NULL;
    int rc = -2;
    if (sp1 && sp2) {
        char *method = strndup(head, (size_t)(sp1 - head));
        char *uri = sp1 + 1, *q = memchr(uri, '?', (size_t)(sp2 - uri));
        char *path = strndup(uri, (size_t)((q ? q : sp2) - uri));
        char *query = q ? canonical_query(q + 1, (size_t)(sp2 - q - 1)) : strdup("");
        char *amz_date = strndup(date->value, date->vlen), *payload = strndup(sha->value, sha->vlen);
        struct sigv4_request rq = {method, path, query, sh_list, nsh, payload};
        char *newauth = method && path && query && amz_date && payload
                            ? sigv4_authorization(&rq, &g.creds, amz_date, scope[2], scope[3])
                            : NULL;
        const char *ns = newauth ? strstr(newauth, "Signature=") : NULL;
        char *old = memmem(auth->value, auth->vlen, "Signature=", 10);
        if (ns && old && strlen(ns + 10) == 64 && (size_t)(auth->value + auth->vlen - (old + 10)) >= 64) {
            memcpy(old + 10, ns + 10, 64);
            rc = 1;
        }
        free(method);
        free(path);
        free(query);
        free(amz_date);
        free(payload);
        free(newauth);
    }
    for (size_t i = 0; i < nsh; i++) free(values[i]);
    free(a);
    return rc;
}

int aws_request(char *msg, size_t hl, size_t avail)
{
    if (!aws_enabled()) return 0;
    struct hline h[MAX_HEADERS];
    int n = split_head(msg, hl, h);
    char *sp1 = memchr(msg, ' ', hl);
    if (n < 0 || !sp1) return 0;
    char *uri = sp1 + 1;
    size_t ulen = strcspn(uri, " \r\n");
    bool kms = kms_uri(uri, ulen), changed = false;
    /* CompleteMultipartUpload: the part list names the ETags the client was given; it must be here whole
     * before anything is changed */
    bool complete = kms && strncmp(msg, "POST ", 5) == 0 && memmem(uri, ulen, "uploadId=", 9);
    size_t body_len = 0;
    if (complete) {
        struct hline *cl = find(h, n, "content-length");
        if (!cl || find(h, n, "expect")) {
            fprintf(stderr, "faultproxy: CompleteMultipartUpload without Content-Length, or with Expect: its ETags "
                            "are not turned back\n");
            return -2;
        }
        body_len = strtoul(cl->value, NULL, 10);
        if (avail - hl < body_len) return -1;
    }
    static const char *const cond[] = {"if-match", "if-none-match"};
    /* (x-amz-copy-if-match: the older name, which Ceph RGW 16 honours and replicate sends too) */
    static const char *const copy_cond[] = {"x-amz-copy-source-if-match", "x-amz-copy-source-if-none-match",
                                            "x-amz-copy-if-match", "x-amz-copy-if-none-match"};
    for (int i = 0; i < 2; i++) {
        struct hline *x = find(h, n, cond[i]);
        if (kms && x) rotate(x->value, x->vlen, -5), changed = true;
    }
    struct hline *src = find(h, n, "x-amz-copy-source");
    if (src && kms_uri(src->value, src->vlen)) {
        for (int i = 0; i < 4; i++) {
            struct hline *x = find(h, n, copy_cond[i]);
            if (x) rotate(x->value, x->vlen, -5), changed = true;
        }
    }
    char sha[65];
    const char *body_sha = NULL;
    if (complete) {
        rotate_xml(uri, msg + hl, body_len, -5);
        sigv4_sha256_hex(msg + hl, body_len, sha);
        body_sha = sha;
        changed = true;
    }
    if (!changed) return 0;
    return resign(msg, hl, h, n, body_sha);
}

char *aws_response_head(const char *method, const char *uri, bool copy_source, const char *head, size_t hl,
                        size_t *len, bool *capture)
{
    *capture = false;
    if (!aws_enabled() || !kms_uri(uri, strlen(uri))) return NULL;
    int status = atoi(head + 9);
    if (status / 100 != 2) return NULL;
    bool listing = strcmp(method, "GET") == 0 && (strstr(uri, "list-type=2") || strstr(uri, "?versions") ||
                                                  strstr(uri, "&versions"));
    bool copy = strcmp(method, "PUT") == 0 && copy_source;
    bool complete = strcmp(method, "POST") == 0 && strstr(uri, "uploadId=");
    *capture = listing || copy || complete;
    bool sse = object_uri(uri) && strcmp(method, "DELETE") != 0 && !strstr(uri, "tagging");
    char *out = malloc(hl + sizeof sse_headers + 1);
    if (!out) return NULL;
    struct hline h[MAX_HEADERS];
    char *copy_head = strndup(head, hl);
    int n = copy_head ? split_head(copy_head, hl, h) : -1;
    if (n < 0) {
        free(copy_head);
        free(out);
        return NULL;
    }
    /* start line, then each header line (the ETag rotated; the framing dropped when captured), then ours */
    char *nl = memchr(copy_head, '\n', hl);
    size_t o = (size_t)(nl + 1 - copy_head);
    memcpy(out, copy_head, o);
    for (int i = 0; i < n; i++) {
        if (*capture && ((h[i].nlen == 14 && strncasecmp(h[i].name, "content-length", 14) == 0) ||
                         (h[i].nlen == 17 && strncasecmp(h[i].name, "transfer-encoding", 17) == 0)))
            continue;
        if (h[i].nlen == 4 && strncasecmp(h[i].name, "etag", 4) == 0) rotate(h[i].value, h[i].vlen, 5);
        if (h[i].nlen >= 28 && strncasecmp(h[i].name, "x-amz-server-side-encryption", 28) == 0) continue;
        size_t ll = (size_t)(h[i].value + h[i].vlen - h[i].name);
        memcpy(out + o, h[i].name, ll);
        o += ll;
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    if (sse) {
        memcpy(out + o, sse_headers, sizeof sse_headers - 1);
        o += sizeof sse_headers - 1;
    }
    if (!*capture) {
        memcpy(out + o, "\r\n", 2);
        o += 2;
    }
    free(copy_head);
    *len = o;
    return out;
}

size_t aws_dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end;
        unsigned long n = strtoul(body + in, &end, 16);
        char *nl = memchr(body + in, '\n', len - in);
        if (!nl || end == body + in) break;
        in = (size_t)(nl + 1 - body);
        if (n == 0 || in + n > len) break;
        memmove(body + out, body + in, n);
        out += n;
        in += n;
        while (in < len && (body[in] == '\r' || body[in] == '\n')) in++;
    }
    return out;
}
