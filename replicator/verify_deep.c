/* --verify --deep: both sides of an object read and hashed as they stream, the target's bytes checked against
 * the checksum a manifest recorded, then the tags compared. Must not: buffer a body, or write anything. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "replicator/verify_internal.h"
#include "s3/checksum.h"
#include "s3/log.h"
#include "s3/ops.h"
#include "s3/xml.h"

/* --deep: both sides read and hashed as they stream; nothing is buffered. Where a manifest recorded the
 * source's full-object checksum for this target object, the target's bytes are also checked against it: the
 * value the source itself computed when the object was written, not only the source's bytes of today. */
struct deep_side {
    EVP_MD_CTX *md;
    uint64_t n;
    bool done, failed;
    struct s3_response *resp;
    unsigned char digest[EVP_MAX_MD_SIZE];
    struct s3_checksum ck; /* ck.alg != S3_CK_NONE: the recorded checksum is computed too (target side) */
};

struct deep_check {
    struct verify *v;
    char *src_key, *dst_key;
    uint64_t size;
    char want_ck[S3_CHECKSUM_MAX]; /* the recorded value, when side[1].ck is on */
    struct deep_side side[2]; /* 0 source, 1 target */
    struct s3_request *rq[2];
    int first_fail; /* the side that failed first (its twin was cancelled), or -1 */
    /* then, for equal content with tags on either side: both sides' tags (GetObjectTagging) */
    char *tags[2];
    int tags_pending;
    bool tags_failed;
};

static void deep_free(struct deep_check *dc)
{
    for (int i = 0; i < 2; i++) {
        EVP_MD_CTX_free(dc->side[i].md);
        s3_response_free(dc->side[i].resp);
        s3_checksum_cleanup(&dc->side[i].ck);
    }
    free(dc->src_key);
    free(dc->dst_key);
    free(dc->tags[0]);
    free(dc->tags[1]);
    free(dc);
}

/* A tag set as the sorted "k=v" pairs of its query form, so that the order S3 lists them in does not matter. */
static char *tags_sorted(const char *q)
{
    char *copy = strdup(q), *out = calloc(1, strlen(q) + 2), *items[64];
    int n = 0; /* S3 allows 10 tags per object, RGW more: beyond 64 the rest are compared in order */
    if (!copy || !out) abort();
    char *rest = NULL;
    for (char *save = NULL, *t = strtok_r(copy, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
        if (n == 64) {
            rest = t;
            break;
        }
        items[n++] = t;
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful of items */
        for (int j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        if (i) strcat(out, "&");
        strcat(out, items[i]);
    }
    if (rest) strcat(out, "&"), strcat(out, rest);
    free(copy);
    return out;
}

static int tag_count(const struct s3_response *r)
{
    const char *c = s3_response_header(r, "x-amz-tagging-count");
    return c ? atoi(c) : 0;
}

static void deep_tags_finish(struct deep_check *dc)
{
    struct verify *v = dc->v;
    if (v->ctx->interrupted) {
    } else if (dc->tags_failed) {
        verify_finding(v, D_ERROR, dc->src_key, dc->dst_key, "reading the tags (GetObjectTagging) failed");
    } else {
        char *a = tags_sorted(dc->tags[0]), *b = tags_sorted(dc->tags[1]);
        if (strcmp(a, b) != 0) {
            char detail[1200];
            snprintf(detail, sizeof detail, "tags differ (--deep: source \"%.500s\", target \"%.500s\")", a, b);
            verify_finding(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else {
            v->c.same++;
            v->c.deep_same++;
        }
        free(a);
        free(b);
    }
    deep_free(dc);
    verify_schedule_pump(v);
}

static void deep_tags_done(struct s3_response *r, void *ud, int i)
{
    struct deep_check *dc = ud;
    dc->v->inflight--;
    char *q = NULL;
    if (r->err != S3_OK || s3_xml_parse_tagging(r->body, r->body_len, &q) != S3_OK) dc->tags_failed = true;
    dc->tags[i] = q ? q : strdup("");
    s3_response_free(r);
    if (--dc->tags_pending == 0) deep_tags_finish(dc);
}

static void deep_tags_src(struct s3_response *r, void *ud)
{
    deep_tags_done(r, ud, 0);
}

static void deep_tags_dst(struct s3_response *r, void *ud)
{
    deep_tags_done(r, ud, 1);
}

enum tags_outcome { TAGS_SAME, TAGS_DIFFER, TAGS_PENDING };

/* Equal content: the tags must be equal too (unless --no-tags). The GET replies say how many each side has;
 * both sets are read only when that does not decide (TAGS_PENDING: deep_tags_finish reports). */
static enum tags_outcome deep_tags(struct deep_check *dc)
{
    struct verify *v = dc->v;
    int n0 = tag_count(dc->side[0].resp), n1 = tag_count(dc->side[1].resp);
    if (v->o->no_tags || (n0 == 0 && n1 == 0)) return TAGS_SAME;
    if (n0 != n1) {
        char detail[160];
        snprintf(detail, sizeof detail, "tags differ (--deep: %d on the source, %d on the target)", n0, n1);
        verify_finding(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        return TAGS_DIFFER;
    }
    const char *ver[2];
    for (int i = 0; i < 2; i++) ver[i] = s3_response_header(dc->side[i].resp, "x-amz-version-id");
    dc->tags_pending = 2;
    v->inflight += 2;
    if (!s3_get_object_tagging(v->ctx->src, v->o->src_bucket, dc->src_key, ver[0], deep_tags_src, dc)) abort();
    if (!s3_get_object_tagging(v->ctx->dst_r, v->o->dst_bucket, dc->dst_key, ver[1], deep_tags_dst, dc)) abort();
    return TAGS_PENDING;
}

static bool deep_body(const void *data, size_t len, void *ud)
{
    struct deep_side *s = ud;
    s->n += len;
    if (EVP_DigestUpdate(s->md, data, len) != 1 || (s->ck.alg && s3_checksum_update(&s->ck, data, len) != 0)) {
        s->failed = true;
        return false;
    }
    return true;
}

static void deep_reset(void *ud)
{
    struct deep_side *s = ud;
    s->n = 0;
    if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1 || (s->ck.alg && s3_checksum_init(&s->ck, s->ck.alg) != 0))
        s->failed = true;
}

static void hex8(const unsigned char *d, char out[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void deep_finish(struct deep_check *dc)
{
    struct verify *v = dc->v;
    char detail[1200];
    if (dc->first_fail >= 0) {
        struct s3_response *r = dc->side[dc->first_fail].resp;
        const char *side = dc->first_fail == 0 ? "source" : "target";
        if (r->err == S3_ERR_CANCELLED && !dc->side[dc->first_fail].failed) {
            /* shutting down */
        } else if (r->status == 412 || r->status == 404) {
            v->c.changed++;
            s3_log(S3_LOG_INFO, "verify: %s changed on the %s during the audit: not compared", dc->src_key,
                   side);
        } else {
            verify_finding(v, D_ERROR, dc->src_key, dc->dst_key,
                   dc->side[dc->first_fail].failed ? "hashing failed" : r->message);
        }
    } else if (dc->side[0].resp->err != S3_OK || dc->side[1].resp->err != S3_OK) {
        /* both cancelled: shutting down */
    } else {
        unsigned int l0 = 0, l1 = 0;
        EVP_DigestFinal_ex(dc->side[0].md, dc->side[0].digest, &l0);
        EVP_DigestFinal_ex(dc->side[1].md, dc->side[1].digest, &l1);
        v->c.deep_read++;
        v->c.deep_bytes += dc->side[0].n + dc->side[1].n;
        struct s3_checksum *ck = &dc->side[1].ck;
        char got_ck[S3_CHECKSUM_MAX] = "";
        if (ck->alg) {
            v->c.deep_checksums++;
            s3_checksum_final(ck, got_ck);
        }
        if (dc->side[0].n != dc->size || dc->side[1].n != dc->size) {
            snprintf(detail, sizeof detail,
                     "read %llu bytes from the source and %llu from the target, listed %llu",
                     (unsigned long long)dc->side[0].n, (unsigned long long)dc->side[1].n,
                     (unsigned long long)dc->size);
            verify_finding(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else if (ck->alg && strcmp(got_ck, dc->want_ck) != 0) {
            snprintf(detail, sizeof detail,
                     "the target's content does not match the checksum recorded when it was copied (--deep: "
                     "%s recorded %s, target %s)", s3_checksum_name(ck->alg), dc->want_ck, got_ck);
            verify_finding(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else if (l0 != l1 || memcmp(dc->side[0].digest, dc->side[1].digest, l0) != 0) {
            char a[17], b[17];
            hex8(dc->side[0].digest, a);
            hex8(dc->side[1].digest, b);
            snprintf(detail, sizeof detail, "content differs (--deep: SHA-256 source %s..., target %s...)", a,
                     b);
            verify_finding(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else {
            enum tags_outcome t = deep_tags(dc);
            if (t == TAGS_PENDING) return; /* counted once the tags are in */
            if (t == TAGS_SAME) {
                v->c.same++;
                v->c.deep_same++;
            }
        }
    }
    deep_free(dc);
    verify_schedule_pump(v);
}

static void deep_done(struct s3_response *r, void *ud, int i)
{
    struct deep_check *dc = ud;
    dc->v->inflight--;
    dc->side[i].resp = r;
    dc->side[i].done = true;
    dc->rq[i] = NULL; /* freed by the client before this callback */
    bool bad = r->err != S3_OK || dc->side[i].failed;
    if (bad && (r->err != S3_ERR_CANCELLED || dc->side[i].failed) && dc->first_fail < 0) dc->first_fail = i;
    if (bad && !dc->side[1 - i].done && dc->rq[1 - i]) {
        /* no point reading the other side to the end */
        s3_request_cancel(dc->rq[1 - i]);
    }
    if (dc->side[0].done && dc->side[1].done) deep_finish(dc);
}

static void deep_done_src(struct s3_response *r, void *ud)
{
    deep_done(r, ud, 0);
}

static void deep_done_dst(struct s3_response *r, void *ud)
{
    deep_done(r, ud, 1);
}

/* Turns on the target side's checksum when a manifest recorded a full-object one for this target object (a
 * composite of parts cannot be recomputed from the whole object without the source's part sizes). */
static void deep_recorded_checksum(struct verify *v, const struct s3_object_info *d, struct deep_check *dc)
{
    const char *rec = v->checksums ? manifest_index_get(v->checksums, d->key, d->size, d->etag) : NULL;
    const char *sp = rec ? strchr(rec, ' ') : NULL;
    if (!sp) return;
    char name[16];
    snprintf(name, sizeof name, "%.*s", (int)(sp - rec < 15 ? sp - rec : 15), rec);
    enum s3_checksum_alg alg = s3_checksum_from_name(name);
    bool composite = true;
    if (!alg || !s3_checksum_value_ok(alg, sp + 1, &composite) || composite) return;
    snprintf(dc->want_ck, sizeof dc->want_ck, "%s", sp + 1);
    if (s3_checksum_init(&dc->side[1].ck, alg) != 0) abort();
}

void verify_deep_check(struct verify *v, const struct s3_object_info *s, const struct s3_object_info *d)
{
    struct rep_ctx *ctx = v->ctx;
    struct deep_check *dc = calloc(1, sizeof *dc);
    if (!dc) abort();
    dc->v = v;
    dc->src_key = strdup(s->key);
    dc->dst_key = strdup(d->key);
    dc->size = s->size;
    dc->first_fail = -1;
    for (int i = 0; i < 2; i++) {
        dc->side[i].md = EVP_MD_CTX_new();
        if (!dc->side[i].md || EVP_DigestInit_ex(dc->side[i].md, EVP_sha256(), NULL) != 1) abort();
    }
    if (!dc->src_key || !dc->dst_key) abort();
    deep_recorded_checksum(v, d, dc);
    /* If-Match pins the versions that were listed: a change meanwhile is a 412, not a false difference */
    struct s3_get_args gs = {.bucket = v->o->src_bucket,
                             .key = s->key,
                             .if_match = s->etag,
                             .on_body = deep_body,
                             .on_reset = deep_reset,
                             .body_ud = &dc->side[0]};
    struct s3_get_args gd = {.bucket = v->o->dst_bucket,
                             .key = d->key,
                             .if_match = d->etag,
                             .on_body = deep_body,
                             .on_reset = deep_reset,
                             .body_ud = &dc->side[1]};
    v->inflight += 2;
    if (!(dc->rq[0] = s3_get_object(ctx->src, &gs, deep_done_src, dc))) abort();
    if (!(dc->rq[1] = s3_get_object(ctx->dst_r, &gd, deep_done_dst, dc))) abort();
}
