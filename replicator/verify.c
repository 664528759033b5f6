/* --verify: an audit of the target against the source and the manifests recorded in the target; --status: the
 * last runs recorded in the target and their age. Both only read from S3 (GET and HEAD); the only files they
 * write are temporary copies of manifests, removed before they return. */
#include <cJSON.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "replicator/run.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/store.h"
#include "replicator/target.h"
#include "replicator/join.h"
#include "replicator/output.h"
#include "replicator/verify.h"
#include "s3/checksum.h"
#include "s3/list.h"
#include "s3/log.h"
#include "s3/ops.h"

#define JSON_MAX_ENTRIES 100000     /* per list in the --json report */
#define VERSION_CHECK_MAX 10000     /* recorded versions checked by one --verify */
#define VERIFY_MANIFESTS_MAX 3      /* target manifests --verify downloads (newest first) */
#define LOCAL_MANIFESTS_MAX 3       /* local manifests --verify loads (newest first) */
#define CHECKSUM_MANIFESTS_MAX 32   /* local manifests --verify --deep reads for recorded checksums */

/* ---- output helpers ---- */

/* A key with control characters escaped, so a hostile key cannot rewrite the terminal. */
static void put_key(FILE *f, const char *k)
{
    if (!f) return;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}


/* ---- signals: stop cleanly ---- */

static struct rep_ctx *g_vctx;

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
    (void)ev;
    (void)revents;
    if (!g_vctx) return;
    if (!g_vctx->interrupted) {
        if (g_vctx->o->progress) fputc('\n', stderr);
        s3_log_user(S3_LOG_INFO, "%s received: stopping", strsignal(w->signum));
    }
    g_vctx->interrupted = true;
    s3_loop_cancel_all(g_vctx->loop);
}

void rep_signals_start(struct rep_ctx *ctx, struct rep_signals *sg)
{
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    int nums[3] = {SIGINT, SIGTERM, SIGHUP};
    g_vctx = ctx;
    for (int i = 0; i < 3; i++) {
        ev_signal_init(&sg->s[i], on_signal, nums[i]);
        ev_signal_start(ev, &sg->s[i]);
        ev_unref(ev); /* the watchers alone must not keep the loop running */
    }
}

void rep_signals_stop(struct rep_ctx *ctx, struct rep_signals *sg)
{
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    for (int i = 0; i < 3; i++) {
        ev_ref(ev);
        ev_signal_stop(ev, &sg->s[i]);
    }
    g_vctx = NULL;
}

/* ======================================== --verify ======================================== */

enum disc_kind { D_MISSING, D_DIFFERENT, D_EXTRA, D_UNVERSIONED, D_LOST_VERSION, D_ERROR, D_SHARD };
static const char *const kind_name[] = {"missing",     "different",    "extra", "unversioned",
                                        "lost-version", "error",       "shard"};

struct disc_line {
    enum disc_kind kind;
    char *key;
    char *detail;
};

struct verify_counts {
    uint64_t src_listed, dst_listed, both, same;
    uint64_t missing, different, extra, lost_versions, errors, unversioned;
    uint64_t bad_shards; /* shards of the newest run that are missing, unfinished or failed */
    uint64_t same_etag, by_manifest, by_header, heads;
    uint64_t deep_read, deep_same, deep_bytes, changed;
    uint64_t deep_checksums; /* --deep reads whose target bytes were checked against a recorded checksum */
    uint64_t versions_checked, version_records;
    uint64_t records_without_version; /* object records the version check cannot use */
};

struct loaded_manifest {
    char *path; /* a local manifest, or a temporary copy of one stored in the target */
    char *name; /* "<run id>.jsonl" */
    bool from_target;
    bool temp; /* unlink path at the end */
};

struct verify {
    struct rep_ctx *ctx;
    const struct rep_options *o;
    struct s3_lister *src_l, *dst_l;
    struct join join; /* source (left) against target (right) */
    bool join_ended;
    size_t src_plen, dst_plen;
    int inflight; /* requests in flight */
    bool stop, finished;
    bool listing_failed;
    char error[700];
    ev_idle kick;
    void (*pump)(struct verify *v);
    struct verify_counts c;
    /* the first discrepancies (and extras) for the human summary */
    struct disc_line first[MAX_REPORTED];
    size_t nfirst;
    struct disc_line first_extra[MAX_REPORTED];
    size_t nfirst_extra;
    struct disc_line first_error[MAX_REPORTED];
    size_t nfirst_error;
    /* the --json lists */
    cJSON *jdisc, *jextra, *jerrors;
    size_t njdisc, njextra, njerrors;
    bool jdisc_trunc, jextra_trunc, jerrors_trunc;
    /* manifests */
    struct loaded_manifest *mans;
    size_t nmans;
    cJSON *jmanifest_notes;
    struct shard_group *newest; /* the newest run, when it is made of shard manifests */
    /* the version check: target manifests, newest first */
    size_t vm_next;            /* next entry of mans to read */
    bool versions_from_target; /* read the target's manifests (else the local ones: the target has none) */
    struct manifest_reader *mr;
    struct manifest_record rec; /* the reader's current record (strings point into the reader) */
    const char *mr_name;
    bool versions_done, versions_truncated;
    uint64_t *vseen; /* hashes of (key, version) already checked: an open-addressing set */
    /* --deep: target key -> "ALGORITHM value" of the checksums the manifests recorded (manifest.h) */
    struct manifest_index *checksums;
};

#define VSEEN_SLOTS 32768 /* a power of two, over twice VERSION_CHECK_MAX */

static void schedule_pump(struct verify *v)
{
    if (!ev_is_active(&v->kick)) ev_idle_start(s3_loop_ev(v->ctx->loop), &v->kick);
}

static void kick_cb(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(ev, w);
    struct verify *v = w->data;
    v->pump(v);
}

static void lister_ready(void *ud)
{
    schedule_pump(ud);
}

static void line_keep(struct disc_line *arr, size_t *n, enum disc_kind k, const char *key, const char *detail)
{
    if (*n >= MAX_REPORTED) return;
    arr[*n].kind = k;
    arr[*n].key = strdup(key ? key : "");
    arr[*n].detail = detail ? strdup(detail) : NULL;
    (*n)++;
}

static void lines_free(struct disc_line *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i].key);
        free(arr[i].detail);
    }
}

/* Records one finding: counts it, keeps it for the summary and the JSON report (both capped). */
static void report(struct verify *v, enum disc_kind k, const char *src_key, const char *dst_key,
                   const char *detail)
{
    const char *key = dst_key ? dst_key : src_key ? src_key : "";
    switch (k) {
    case D_MISSING:
        v->c.missing++;
        break;
    case D_DIFFERENT:
        v->c.different++;
        break;
    case D_EXTRA:
        v->c.extra++;
        break;
    case D_UNVERSIONED:
        v->c.unversioned++;
        break;
    case D_LOST_VERSION:
        v->c.lost_versions++;
        break;
    case D_ERROR:
        v->c.errors++;
        break;
    case D_SHARD:
        v->c.bad_shards++;
        break;
    }
    if (k == D_MISSING) key = src_key ? src_key : key;
    if (k == D_EXTRA)
        line_keep(v->first_extra, &v->nfirst_extra, k, key, detail);
    else if (k == D_ERROR)
        line_keep(v->first_error, &v->nfirst_error, k, key, detail);
    else
        line_keep(v->first, &v->nfirst, k, key, detail);
    s3_log(k == D_ERROR ? S3_LOG_WARN : S3_LOG_INFO, "verify: %s %s%s%s", kind_name[k], key,
           detail ? ": " : "", detail ? detail : "");
    if (!v->o->json) return;
    cJSON *arr = k == D_EXTRA ? v->jextra : k == D_ERROR ? v->jerrors : v->jdisc;
    size_t *cnt = k == D_EXTRA ? &v->njextra : k == D_ERROR ? &v->njerrors : &v->njdisc;
    bool *trunc = k == D_EXTRA ? &v->jextra_trunc : k == D_ERROR ? &v->jerrors_trunc : &v->jdisc_trunc;
    if (*cnt >= JSON_MAX_ENTRIES) {
        *trunc = true;
        return;
    }
    cJSON *e = cJSON_CreateObject();
    if (!e) return;
    cJSON_AddStringToObject(e, "kind", kind_name[k]);
    if (src_key) cJSON_AddStringToObject(e, "source_key", src_key);
    if (dst_key) cJSON_AddStringToObject(e, "target_key", dst_key);
    if (detail) cJSON_AddStringToObject(e, "detail", detail);
    cJSON_AddItemToArray(arr, e);
    (*cnt)++;
}

/* ---- the merge-join ---- */


/* A HEAD of the target object, to read the source ETag recorded on it. */
struct head_check {
    struct verify *v;
    char *src_key, *dst_key, *src_etag, *dst_etag;
    const char *recorded; /* the manifest's source ETag for the target object, or NULL (owned copy) */
    char *rec;
};

static void head_check_free(struct head_check *h)
{
    free(h->src_key);
    free(h->dst_key);
    free(h->src_etag);
    free(h->dst_etag);
    free(h->rec);
    free(h);
}

static void head_done(struct s3_response *r, void *ud)
{
    struct head_check *h = ud;
    struct verify *v = h->v;
    v->inflight--;
    char detail[1200];
    if (r->err == S3_ERR_CANCELLED) {
        /* shutting down */
    } else if (r->err == S3_OK) {
        const char *meta = s3_response_header(r, SOURCE_ETAG_META);
        if (meta && strcmp(meta, h->src_etag) == 0) {
            v->c.same++;
            v->c.by_header++;
        } else {
            int n = snprintf(detail, sizeof detail, "ETag differs (source %s, target %s)", h->src_etag,
                             h->dst_etag);
            if (meta)
                snprintf(detail + n, sizeof detail - (size_t)n,
                         "; the target is a copy of source ETag %s: the "
                         "source changed since, or the target was overwritten",
                         meta);
            else if (h->rec)
                snprintf(detail + n, sizeof detail - (size_t)n,
                         "; the manifest records the target as a copy of "
                         "source ETag %s",
                         h->rec);
            else
                snprintf(detail + n, sizeof detail - (size_t)n, "; no recorded source ETag explains it");
            report(v, D_DIFFERENT, h->src_key, h->dst_key, detail);
        }
    } else if (r->status == 404) {
        report(v, D_MISSING, h->src_key, NULL, "deleted from the target during the audit");
    } else {
        report(v, D_ERROR, h->src_key, h->dst_key, r->message);
    }
    s3_response_free(r);
    head_check_free(h);
    schedule_pump(v);
}

/* Equal sizes, ETags compared: identical, explained by the manifest, or a HEAD decides. */
static void etag_check(struct verify *v, const struct s3_object_info *s, const struct s3_object_info *d)
{
    struct rep_ctx *ctx = v->ctx;
    if (s->etag && d->etag && strcmp(s->etag, d->etag) == 0) {
        v->c.same++;
        v->c.same_etag++;
        return;
    }
    const char *rec = manifest_index_get(ctx->idx, d->key, d->size, d->etag);
    if (rec && s->etag && strcmp(rec, s->etag) == 0) {
        v->c.same++;
        v->c.by_manifest++;
        return;
    }
    struct head_check *h = calloc(1, sizeof *h);
    if (!h) abort();
    h->v = v;
    h->src_key = strdup(s->key);
    h->dst_key = strdup(d->key);
    h->src_etag = strdup(s->etag ? s->etag : "");
    h->dst_etag = strdup(d->etag ? d->etag : "");
    h->rec = rec ? strdup(rec) : NULL;
    if (!h->src_key || !h->dst_key || !h->src_etag || !h->dst_etag) abort();
    v->inflight++;
    v->c.heads++;
    if (!s3_head_object(ctx->dst_r, v->o->dst_bucket, d->key, NULL, NULL, head_done, h)) abort();
}

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
        report(v, D_ERROR, dc->src_key, dc->dst_key, "reading the tags (GetObjectTagging) failed");
    } else {
        char *a = tags_sorted(dc->tags[0]), *b = tags_sorted(dc->tags[1]);
        if (strcmp(a, b) != 0) {
            char detail[1200];
            snprintf(detail, sizeof detail, "tags differ (--deep: source \"%.500s\", target \"%.500s\")", a, b);
            report(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else {
            v->c.same++;
            v->c.deep_same++;
        }
        free(a);
        free(b);
    }
    deep_free(dc);
    schedule_pump(v);
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
        report(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
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
            report(v, D_ERROR, dc->src_key, dc->dst_key,
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
            report(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else if (ck->alg && strcmp(got_ck, dc->want_ck) != 0) {
            snprintf(detail, sizeof detail,
                     "the target's content does not match the checksum recorded when it was copied (--deep: "
                     "%s recorded %s, target %s)", s3_checksum_name(ck->alg), dc->want_ck, got_ck);
            report(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
        } else if (l0 != l1 || memcmp(dc->side[0].digest, dc->side[1].digest, l0) != 0) {
            char a[17], b[17];
            hex8(dc->side[0].digest, a);
            hex8(dc->side[1].digest, b);
            snprintf(detail, sizeof detail, "content differs (--deep: SHA-256 source %s..., target %s...)", a,
                     b);
            report(v, D_DIFFERENT, dc->src_key, dc->dst_key, detail);
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
    schedule_pump(v);
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

static void deep_check(struct verify *v, const struct s3_object_info *s, const struct s3_object_info *d)
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

static bool sampled(struct verify *v)
{
    return v->o->sample >= 100 || drand48() * 100.0 < v->o->sample;
}

/* Source and target hold the same relative key. */
static void compare(struct verify *v, const struct s3_object_info *s, const struct s3_object_info *d)
{
    v->c.both++;
    if (s->size != d->size) {
        char detail[160];
        snprintf(detail, sizeof detail, "size differs (source %llu bytes, target %llu bytes)",
                 (unsigned long long)s->size, (unsigned long long)d->size);
        report(v, D_DIFFERENT, s->key, d->key, detail);
        return;
    }
    if (v->o->deep && sampled(v))
        deep_check(v, s, d);
    else
        etag_check(v, s, d);
}

/* Advances a listing head; false when the pump must wait or stop. */
static void join_pump(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    if (ctx->interrupted) v->stop = true;
    while (!v->stop && v->inflight < rep_jobs(v->ctx)) {
        const struct s3_object_info *s, *d;
        enum join_status js = join_next(&v->join, &s, &d);
        if (js == JOIN_WAIT) break;
        if (js == JOIN_END) {
            v->join_ended = true;
            break;
        }
        if (js == JOIN_ERROR) {
            int side;
            const char *why = join_error(&v->join, &side);
            if (!v->listing_failed) {
                v->listing_failed = true;
                snprintf(v->error, sizeof v->error, "%s: %s", side ? "target" : "source", why);
            }
            v->stop = true;
            break;
        }
        if (s) v->c.src_listed++;
        if (d) v->c.dst_listed++;
        if (js == JOIN_LEFT)
            report(v, D_MISSING, s->key, NULL, NULL);
        else if (js == JOIN_RIGHT)
            report(v, D_EXTRA, NULL, d->key, "deleted at the source, kept in the target");
        else
            compare(v, s, d);
    }
    bool done = v->stop || v->join_ended;
    if (done && v->inflight == 0 && !v->finished) {
        v->finished = true;
        ev_break(s3_loop_ev(ctx->loop), EVBREAK_ONE);
    }
}

static int run_join(struct verify *v)
{
    const struct rep_options *o = v->o;
    struct ev_loop *ev = s3_loop_ev(v->ctx->loop);
    v->src_plen = strlen(o->src_prefix);
    v->dst_plen = strlen(o->dst_prefix);
    char *dst_sa = join_map_bound(o, o->start_after), *dst_eb = join_map_bound(o, o->end_before);
    v->src_l = s3_lister_new(v->ctx->src, o->src_bucket, o->src_prefix, o->start_after, o->end_before, 0,
                             lister_ready, v);
    v->dst_l = s3_lister_new(v->ctx->dst_r, o->dst_bucket, o->dst_prefix, dst_sa, dst_eb, 0, lister_ready, v);
    free(dst_sa);
    free(dst_eb);
    if (!v->src_l || !v->dst_l) {
        s3_lister_free(v->src_l);
        s3_lister_free(v->dst_l);
        snprintf(v->error, sizeof v->error, "out of memory");
        v->listing_failed = true;
        return -1;
    }
    join_init(&v->join, join_lister(v->src_l, v->src_plen), join_lister(v->dst_l, v->dst_plen));
    v->pump = join_pump;
    v->finished = v->stop = v->join_ended = false;
    schedule_pump(v);
    while (!v->finished)
        ev_run(ev, 0);
    ev_idle_stop(ev, &v->kick);
    s3_lister_free(v->src_l);
    s3_lister_free(v->dst_l);
    v->src_l = v->dst_l = NULL;
    return v->listing_failed ? -1 : 0;
}

/* ---- recorded versions still exist ---- */

struct version_check {
    struct verify *v;
    char *key, *version_id, *run;
};

static void version_done(struct s3_response *r, void *ud)
{
    struct version_check *vc = ud;
    struct verify *v = vc->v;
    v->inflight--;
    if (r->err == S3_ERR_CANCELLED) {
        /* shutting down */
    } else if (r->err == S3_OK) {
        v->c.versions_checked++;
    } else if (r->status == 404 || r->status == 405) {
        char detail[800];
        v->c.versions_checked++;
        snprintf(detail, sizeof detail,
                 "version %s recorded by run %s no longer exists in the target (HTTP %ld%s)", vc->version_id,
                 vc->run, r->status, r->status == 405 ? ": it is a delete marker" : "");
        report(v, D_LOST_VERSION, NULL, vc->key, detail);
    } else {
        report(v, D_ERROR, NULL, vc->key, r->message);
    }
    s3_response_free(r);
    free(vc->key);
    free(vc->version_id);
    free(vc->run);
    free(vc);
    schedule_pump(v);
}

/* The next object record with a version id from the target's manifests (newest first); NULL at the end. */
static const struct manifest_object *next_versioned(struct verify *v)
{
    struct manifest_record *rec = &v->rec;
    char err[512];
    for (;;) {
        if (!v->mr) {
            while (v->vm_next < v->nmans && v->mans[v->vm_next].from_target != v->versions_from_target)
                v->vm_next++;
            if (v->vm_next >= v->nmans) return NULL;
            struct loaded_manifest *m = &v->mans[v->vm_next++];
            v->mr = manifest_reader_open(m->path, err, sizeof err);
            v->mr_name = m->name;
            if (!v->mr) {
                s3_log(S3_LOG_WARN, "manifest %s: %s", m->name, err);
                continue;
            }
        }
        int rc = manifest_reader_next(v->mr, rec, err, sizeof err);
        if (rc == 0) {
            manifest_reader_close(v->mr);
            v->mr = NULL;
            continue;
        }
        if (rc < 0) continue; /* corrupt lines were reported when the manifest was loaded */
        if (rec->type != MANIFEST_REC_OBJECT) continue;
        if (rec->object.version_id && rec->object.version_id[0]) return &rec->object;
        v->c.records_without_version++;
    }
}

/* True the first time a (key, version) pair is seen: a run recorded in two manifests is checked once. */
static bool version_first_seen(struct verify *v, const char *key, const char *version)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* a byte no key contains between the two parts */
    for (const unsigned char *p = (const unsigned char *)version; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    if (h == 0) h = 1;
    for (size_t i = (size_t)h & (VSEEN_SLOTS - 1);; i = (i + 1) & (VSEEN_SLOTS - 1)) {
        if (v->vseen[i] == h) return false;
        if (v->vseen[i] == 0) {
            v->vseen[i] = h;
            return true;
        }
    }
}

static void versions_pump(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    if (ctx->interrupted) v->stop = true;
    while (!v->stop && !v->versions_done && v->inflight < rep_jobs(v->ctx)) {
        const struct manifest_object *mo = next_versioned(v);
        if (!mo) {
            v->versions_done = true;
            break;
        }
        if (!version_first_seen(v, mo->target_key, mo->version_id)) continue;
        if (v->c.version_records >= VERSION_CHECK_MAX) {
            v->versions_truncated = true;
            v->versions_done = true;
            break;
        }
        v->c.version_records++;
        struct version_check *vc = calloc(1, sizeof *vc);
        if (!vc) abort();
        vc->v = v;
        vc->key = strdup(mo->target_key);
        vc->version_id = strdup(mo->version_id);
        vc->run = strdup(v->mr_name ? v->mr_name : "?");
        char *dot = vc->run ? strstr(vc->run, ".jsonl") : NULL; /* RUN.jsonl, RUN.jsonl.gz */
        if (dot) *dot = '\0';
        if (!vc->key || !vc->version_id || !vc->run) abort();
        v->inflight++;
        if (!s3_head_object(ctx->dst_r, v->o->dst_bucket, vc->key, vc->version_id, NULL, version_done, vc))
            abort();
    }
    if ((v->stop || v->versions_done) && v->inflight == 0 && !v->finished) {
        v->finished = true;
        ev_break(s3_loop_ev(ctx->loop), EVBREAK_ONE);
    }
}

static void run_versions(struct verify *v)
{
    struct ev_loop *ev = s3_loop_ev(v->ctx->loop);
    v->vseen = calloc(VSEEN_SLOTS, sizeof *v->vseen);
    if (!v->vseen) abort();
    v->pump = versions_pump;
    v->finished = v->stop = false;
    v->vm_next = 0;
    schedule_pump(v);
    while (!v->finished)
        ev_run(ev, 0);
    ev_idle_stop(ev, &v->kick);
    manifest_reader_close(v->mr);
    v->mr = NULL;
    free(v->vseen);
    v->vseen = NULL;
}

/* ---- manifests: local state and the target's own copies ---- */

static void manifest_note(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void manifest_note(struct verify *v, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s3_log_user(S3_LOG_WARN, "%s", msg);
    if (v->jmanifest_notes) cJSON_AddItemToArray(v->jmanifest_notes, cJSON_CreateString(msg));
}

static int add_manifest(struct verify *v, const char *path, bool from_target, bool temp)
{
    struct loaded_manifest *nm = realloc(v->mans, (v->nmans + 1) * sizeof *nm);
    if (!nm) return -1;
    v->mans = nm;
    struct loaded_manifest *m = &v->mans[v->nmans];
    m->path = strdup(path);
    m->name = strdup(store_run_name(path));
    m->from_target = from_target;
    m->temp = temp;
    if (!m->path || !m->name) {
        free(m->path);
        free(m->name);
        return -1;
    }
    v->nmans++;
    return 0;
}

/* Reads a manifest's summary; reports and returns -1 when it is unusable (corrupt, truncated, another
 * target). */
/* The shard manifests of the newest run stored in the target, gathered to check that none is missing. */
static void group_note(struct verify *v, const struct manifest_summary *sum, bool newest_run)
{
    if (sum->shard_count < 1 || !newest_run) return;
    if (!v->newest) {
        if (!(v->newest = shard_group_new(sum))) abort();
    } else {
        shard_group_add(v->newest, sum);
    }
}

static int check_manifest(struct verify *v, const char *shown, const char *path, bool *complete, bool newest_run)
{
    struct manifest_summary sum;
    char err[600];
    if (manifest_summary_read(path, &sum, err, sizeof err) != 0) {
        manifest_note(v, "manifest %s is corrupt or truncated (%s): skipped", shown, store_strip_path(err, path));
        return -1;
    }
    int rc = 0;
    if (!store_manifest_for(v->o->dst_bucket, v->o->dst_prefix, sum.target)) {
        s3_log(S3_LOG_INFO, "manifest %s is for %s, not %s: skipped", shown, sum.target ? sum.target : "?",
               v->o->dst_url);
        rc = -1;
    } else {
        if (sum.corrupt_lines)
            manifest_note(v, "manifest %s has %d corrupt line(s); they were skipped", shown,
                          sum.corrupt_lines);
        *complete = store_summary_complete(&sum);
        group_note(v, &sum, newest_run);
    }
    manifest_summary_free(&sum);
    return rc;
}

static void collect_manifests(struct verify *v, int *stored_total)
{
    struct rep_ctx *ctx = v->ctx;
    char err[1024];
    *stored_total = 0;
    /* the target's own copies first: they are what an auditor without local state has */
    struct stored_manifest *sm = NULL;
    size_t n = 0;
    unsigned long total = 0;
    if (store_list(ctx, ctx->dst_r, ctx->o->dst_bucket, 32 + SHARDS_MAX, &sm, &n, &total, err, sizeof err) != 0) {
        if (!ctx->interrupted) manifest_note(v, "cannot read the manifests stored in the target: %s", err);
    } else {
        *stored_total = (int)total;
        int got = 0; /* runs */
        /* the shard manifests of one run (next to each other) count as one run: all of them are read */
        char group[80] = "", run[80];
        int gi, gn, group_n = 0, members = 0;
        bool group_complete = false;
        for (size_t i = 0; i < n && !ctx->interrupted; i++) {
            bool sharded = shard_parse_name(sm[i].key, run, sizeof run, &gi, &gn);
            if (!(sharded && group[0] && strcmp(run, group) == 0)) { /* the next run */
                if (group[0] && group_complete && members == group_n) break;
                if (got >= VERIFY_MANIFESTS_MAX) break;
                snprintf(group, sizeof group, "%s", sharded ? run : "");
                group_n = sharded ? gn : 0;
                members = 0;
                group_complete = true;
            }
            char path[4096];
            if (store_download(ctx->dst_r, ctx->o->dst_bucket, &sm[i], false, path, sizeof path, err, sizeof err) != 0) {
                manifest_note(v, "cannot download the manifest s3://%s/%s: %s", ctx->o->dst_bucket, sm[i].key,
                              err);
                continue;
            }
            /* a delta is read as the full manifest its chain gives, so the index and the version check see every
             * object of the run; a chain that does not resolve is an error: that run cannot be restored */
            struct manifest_summary cs;
            char cerr[2048];
            if (manifest_summary_read(path, &cs, cerr, sizeof cerr) == 0) {
                bool delta = cs.base != NULL;
                manifest_summary_free(&cs);
                char full[4096];
                if (delta && store_chain_full(ctx->dst_r, ctx->o->dst_bucket, &sm[i], path, full, sizeof full, cerr,
                                              sizeof cerr) != 0) {
                    report(v, D_ERROR, NULL, NULL, cerr);
                    unlink(path);
                    group_complete = false;
                    continue;
                }
                if (delta) {
                    unlink(path);
                    snprintf(path, sizeof path, "%s", full);
                }
            }
            /* the temporary file is named by its run in notes and reports */
            char shown[1200];
            snprintf(shown, sizeof shown, "s3://%s/%s", ctx->o->dst_bucket, sm[i].key);
            bool complete = false;
            /* the newest run: the first one read, with the rest of its shards */
            if (check_manifest(v, shown, path, &complete, got == 0 || (got == 1 && members > 0)) != 0 ||
                add_manifest(v, path, true, true) != 0) {
                unlink(path);
                group_complete = false;
                continue;
            }
            free(v->mans[v->nmans - 1].name);
            v->mans[v->nmans - 1].name = strdup(store_run_name(sm[i].key));
            if (!v->mans[v->nmans - 1].name) abort();
            if (!members++) got++;
            if (!complete) group_complete = false;
            if (complete && !group[0]) break;
        }
    }
    store_free(sm, n);

    /* the local state directory of this target, when this machine ran the replication */
    char *dir = state_target_dir(ctx->o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    if (!dir) {
        s3_log(S3_LOG_INFO, "no local state: %s", err);
        return;
    }
    size_t ln = 0;
    char **list = state_manifests(dir, &ln);
    for (size_t i = 0, got = 0; i < ln && got < LOCAL_MANIFESTS_MAX; i++) {
        bool complete = false;
        if (check_manifest(v, list[i], list[i], &complete, false) != 0) continue;
        if (add_manifest(v, list[i], false, false) != 0) break;
        got++;
        if (complete) break;
    }
    state_free_list(list, ln);
    free(dir);
}

static int cmp_run_asc(const void *a, const void *b)
{
    const struct loaded_manifest *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (int)x->from_target - (int)y->from_target;
}

/* --deep: the checksums recorded for the target's objects (manifest_index_load_checksums). A run that found an
 * object unchanged records it without one (it did not read it), so an object's checksum is in the manifest of
 * the run that copied it: besides the manifests collected, the newest CHECKSUM_MANIFESTS_MAX of the local state
 * directory are read for them (a target's older manifests are not downloaded for this). */
static void load_checksums(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    if (!(v->checksums = manifest_index_new())) abort();
    for (size_t i = 0; i < v->nmans; i++)
        manifest_index_load_checksums(v->checksums, v->mans[i].path, NULL);
    char err[512];
    char *dir = state_target_dir(ctx->o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    size_t ln = 0;
    char **list = dir ? state_manifests(dir, &ln) : NULL;
    for (size_t i = 0; i < ln && i < CHECKSUM_MANIFESTS_MAX; i++) {
        bool loaded = false;
        for (size_t k = 0; k < v->nmans && !loaded; k++) loaded = strcmp(v->mans[k].path, list[i]) == 0;
        if (!loaded) manifest_index_load_checksums(v->checksums, list[i], NULL);
    }
    state_free_list(list, ln);
    free(dir);
}

/* Loads the source-ETag index from every collected manifest, oldest first so that the newest record of a key
 * wins; leaves v->mans sorted newest first. */
static void load_index(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    ctx->idx = manifest_index_new();
    if (!ctx->idx) abort();
    if (v->nmans > 1) qsort(v->mans, v->nmans, sizeof *v->mans, cmp_run_asc);
    for (size_t i = 0; i < v->nmans; i++) {
        int corrupt = 0;
        if (manifest_index_load(ctx->idx, v->mans[i].path, &corrupt) != 0)
            manifest_note(v, "cannot read the manifest %s: %s", v->mans[i].name, strerror(errno));
    }
    if (v->o->deep) load_checksums(v);
    /* the versions the backup documents itself are checked; local manifests only when it holds none */
    for (size_t i = 0; i < v->nmans; i++)
        if (v->mans[i].from_target) v->versions_from_target = true;
    for (size_t i = 0; i < v->nmans / 2; i++) { /* newest first */
        struct loaded_manifest t = v->mans[i];
        v->mans[i] = v->mans[v->nmans - 1 - i];
        v->mans[v->nmans - 1 - i] = t;
    }
}

/* ---- the report ---- */

static void print_lines(FILE *f, const struct disc_line *arr, size_t n, uint64_t total, const char *more)
{
    if (!f) return;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %-13s ", kind_name[arr[i].kind]);
        put_key(f, arr[i].key);
        if (arr[i].detail) fprintf(f, "%s%s", arr[i].key[0] ? ": " : "", arr[i].detail);
        fputc('\n', f);
    }
    if (total > n) fprintf(f, "  ... and %llu more %s\n", (unsigned long long)(total - n), more);
}

static cJSON *verify_json(struct verify *v, const char *result, int exit_code, const char *versioning,
                          int stored_total)
{
    const struct rep_options *o = v->o;
    const struct verify_counts *c = &v->c;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "mode", "verify");
    cJSON_AddStringToObject(j, "source", o->src_url);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddStringToObject(j, "result", result);
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    if (versioning)
        cJSON_AddStringToObject(j, "target_versioning", versioning[0] ? versioning : "Off");
    else
        cJSON_AddNullToObject(j, "target_versioning");
    cJSON_AddNumberToObject(j, "source_objects", (double)c->src_listed);
    cJSON_AddNumberToObject(j, "target_objects", (double)c->dst_listed);
    cJSON_AddNumberToObject(j, "compared", (double)c->both);
    cJSON_AddNumberToObject(j, "identical", (double)c->same);
    cJSON_AddNumberToObject(j, "missing", (double)c->missing);
    cJSON_AddNumberToObject(j, "different", (double)c->different);
    cJSON_AddNumberToObject(j, "extra", (double)c->extra);
    cJSON_AddNumberToObject(j, "lost_versions", (double)c->lost_versions);
    if (v->newest) {
        cJSON *sh = cJSON_AddObjectToObject(j, "shards");
        cJSON_AddStringToObject(sh, "run_id", v->newest->run_id);
        cJSON_AddNumberToObject(sh, "count", v->newest->count);
        cJSON_AddNumberToObject(sh, "not_ok", (double)c->bad_shards);
    }
    cJSON_AddNumberToObject(j, "errors", (double)c->errors);
    cJSON_AddNumberToObject(j, "changed_during_audit", (double)c->changed);
    cJSON *e = cJSON_AddObjectToObject(j, "etag_check");
    cJSON_AddNumberToObject(e, "same_etag", (double)c->same_etag);
    cJSON_AddNumberToObject(e, "explained_by_manifest", (double)c->by_manifest);
    cJSON_AddNumberToObject(e, "explained_by_target_metadata", (double)c->by_header);
    cJSON_AddNumberToObject(e, "head_requests", (double)c->heads);
    cJSON *d = cJSON_AddObjectToObject(j, "deep");
    cJSON_AddBoolToObject(d, "enabled", o->deep);
    cJSON_AddNumberToObject(d, "sample_percent", o->deep ? o->sample : 0);
    cJSON_AddNumberToObject(d, "objects_read", (double)c->deep_read);
    cJSON_AddNumberToObject(d, "identical", (double)c->deep_same);
    cJSON_AddNumberToObject(d, "bytes_read", (double)c->deep_bytes);
    cJSON_AddNumberToObject(d, "checksums_checked", (double)c->deep_checksums);
    cJSON *m = cJSON_AddObjectToObject(j, "manifests");
    cJSON_AddNumberToObject(m, "stored_in_target", stored_total);
    cJSON *ml = cJSON_AddArrayToObject(m, "loaded");
    for (size_t i = 0; i < v->nmans; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", v->mans[i].name);
        cJSON_AddStringToObject(x, "from", v->mans[i].from_target ? "target" : "local");
        cJSON_AddItemToArray(ml, x);
    }
    cJSON_AddNumberToObject(m, "etag_mappings", (double)manifest_index_count(v->ctx->idx));
    cJSON_AddNumberToObject(m, "versions_checked", (double)c->versions_checked);
    cJSON_AddBoolToObject(m, "versions_truncated", v->versions_truncated);
    cJSON_AddStringToObject(m, "versions_from", v->versions_from_target ? "target" : "local");
    cJSON_AddNumberToObject(m, "records_without_version", (double)c->records_without_version);
    cJSON_AddItemToObject(m, "warnings", v->jmanifest_notes);
    v->jmanifest_notes = NULL;
    cJSON_AddItemToObject(j, "discrepancies", v->jdisc);
    cJSON_AddBoolToObject(j, "discrepancies_truncated", v->jdisc_trunc);
    cJSON_AddItemToObject(j, "extra_in_target", v->jextra);
    cJSON_AddBoolToObject(j, "extra_truncated", v->jextra_trunc);
    cJSON_AddItemToObject(j, "error_list", v->jerrors);
    cJSON_AddBoolToObject(j, "errors_truncated", v->jerrors_trunc);
    v->jdisc = v->jextra = v->jerrors = NULL;
    if (v->error[0]) cJSON_AddStringToObject(j, "message", v->error);
    return j;
}

int run_verify(const struct rep_options *o)
{
    struct rep_ctx ctx_s, *ctx = &ctx_s;
    int rc = rep_open(ctx, o, true);
    if (rc != EXIT_OK) {
        rep_close(ctx);
        return rc;
    }
    struct verify *v = calloc(1, sizeof *v);
    if (!v) {
        rep_close(ctx);
        return EXIT_FAILED;
    }
    v->ctx = ctx;
    v->o = o;
    ev_idle_init(&v->kick, kick_cb);
    v->kick.data = v;
    if (o->json) {
        v->jdisc = cJSON_CreateArray();
        v->jextra = cJSON_CreateArray();
        v->jerrors = cJSON_CreateArray();
        v->jmanifest_notes = cJSON_CreateArray();
    }
    srand48((long)time(NULL) ^ (long)getpid());
    struct rep_signals sg;
    rep_signals_start(ctx, &sg);
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_now_update(ev);
    double t0 = ev_now(ev);
    FILE *hf = rep_human(o);
    char err[768];
    int stored_total = 0;
    int exit_code = EXIT_OK;
    const char *result = "ok";

    rep_say(o, "verifying %s -> %s%s\n", o->src_url, o->dst_url,
        o->deep ? (o->sample < 100 ? " (deep, sampled)" : " (deep: reading both sides)") : "");

    /* 1. the target must still be versioned */
    bool no_bucket = false;
    char *versioning = target_versioning(ctx->dst_r, o->dst_bucket, &no_bucket, err, sizeof err);
    if (!versioning) {
        s3_log_user(S3_LOG_ERROR, "cannot read the target's versioning: %s%s", err,
                    no_bucket ? "\n  Check the target URL and --target-endpoint." : "");
        if (no_bucket) {
            exit_code = EXIT_USAGE;
            result = "failed";
            snprintf(v->error, sizeof v->error, "the target bucket does not exist");
            goto out;
        }
        report(v, D_ERROR, NULL, NULL, err);
    } else if (strcmp(versioning, "Enabled") != 0) {
        char detail[600];
        snprintf(detail, sizeof detail,
                 "versioning is %s on s3://%s: an overwrite or delete destroys the only copy",
                 versioning[0] ? versioning : "not enabled", o->dst_bucket);
        report(v, D_UNVERSIONED, NULL, NULL, detail);
    }

    /* 2. manifests: the source ETags recorded where the target's ETag differs, and the versions written */
    collect_manifests(v, &stored_total);
    load_index(v);
    if (ctx->interrupted) goto out;
    if (v->newest && shard_group_finish(v->newest) > 0) { /* a run of shards: every one must be there, ok */
        char text[8192];
        shard_group_problems(v->newest, text, sizeof text);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            char detail[600];
            snprintf(detail, sizeof detail, "run %s: %s", v->newest->run_id, line);
            report(v, D_SHARD, NULL, NULL, detail);
        }
    }

    /* 3. both listings, merge-joined */
    if (run_join(v) != 0 && !ctx->interrupted) s3_log_user(S3_LOG_ERROR, "%s", v->error);

    /* 4. the versions recorded in the target's manifests still exist */
    if (!ctx->interrupted) run_versions(v);

out:
    ev_now_update(ev);
    double duration = ev_now(ev) - t0;
    const struct verify_counts *c = &v->c;
    uint64_t bad = c->missing + c->different + c->unversioned + c->lost_versions + c->bad_shards;
    if (exit_code != EXIT_OK) {
        /* set above */
    } else if (ctx->interrupted) {
        exit_code = EXIT_INTERRUPTED;
        result = "interrupted";
    } else if (bad) {
        exit_code = EXIT_DISCREPANCY;
        result = "discrepancies";
    } else if (v->listing_failed || c->errors) {
        exit_code = EXIT_FAILED;
        result = "failed";
    }

    if (hf && exit_code != EXIT_USAGE) {
        char b[32];
        fprintf(hf, "target versioning: %s\n",
                !versioning     ? "unknown (could not be read)"
                : versioning[0] ? versioning
                                : "not enabled");
        if (v->nmans) {
            fprintf(hf, "manifests: ");
            for (size_t i = 0; i < v->nmans; i++)
                fprintf(hf, "%s%s (%s)", i ? ", " : "", v->mans[i].name,
                        v->mans[i].from_target ? "target" : "local");
            fprintf(hf, "; %zu recorded source ETag%s\n", manifest_index_count(ctx->idx),
                    manifest_index_count(ctx->idx) == 1 ? "" : "s");
        } else {
            fprintf(hf, "manifests: none found (%d stored in the target, none usable locally)\n",
                    stored_total);
        }
        if (v->newest)
            fprintf(hf, "shards: the newest run, %s, has %d shards, %llu of them missing, unfinished or failed\n",
                    v->newest->run_id, v->newest->count, (unsigned long long)c->bad_shards);
        fprintf(hf, "listed: %llu source objects, %llu target objects; %llu on both sides\n",
                (unsigned long long)c->src_listed, (unsigned long long)c->dst_listed,
                (unsigned long long)c->both);
        char deep_part[64] = "";
        if (o->deep)
            snprintf(deep_part, sizeof deep_part, "%llu same content (--deep), ",
                     (unsigned long long)c->deep_same);
        fprintf(hf,
                "compared: %llu identical (%s%llu same ETag, %llu explained by the manifest, %llu by the "
                "target's recorded source ETag; %llu HEAD requests)\n",
                (unsigned long long)c->same, deep_part, (unsigned long long)c->same_etag,
                (unsigned long long)c->by_manifest, (unsigned long long)c->by_header,
                (unsigned long long)c->heads);
        if (o->deep) {
            rep_fmt_bytes(c->deep_bytes, b, sizeof b);
            fprintf(
                hf,
                "deep: %llu objects read on both sides (%s, %.0f%% sample), %llu with identical content; %llu "
                "checked against the checksum recorded when copied\n",
                (unsigned long long)c->deep_read, b, o->sample, (unsigned long long)c->deep_same,
                (unsigned long long)c->deep_checksums);
        }
        if (c->changed)
            fprintf(hf, "changed during the audit (not compared): %llu\n", (unsigned long long)c->changed);
        fprintf(
            hf,
            "versions: %llu recorded versions checked in the target (from the %s manifests), %llu lost%s\n",
            (unsigned long long)c->versions_checked, v->versions_from_target ? "target's" : "local",
            (unsigned long long)c->lost_versions,
            v->versions_truncated ? " (stopped at 10000: the check is truncated)" : "");
        if (c->records_without_version)
            fprintf(hf,
                    "versions: %llu%s manifest records carry no version id (copies whose reply named no "
                    "version): "
                    "not checkable\n",
                    (unsigned long long)c->records_without_version, v->versions_truncated ? "+" : "");
        fprintf(hf,
                "found: %llu missing, %llu different, %llu lost versions%s%s; %llu extra in the target "
                "(deleted at the source, kept: informational)\n",
                (unsigned long long)c->missing, (unsigned long long)c->different,
                (unsigned long long)c->lost_versions, c->unversioned ? ", target NOT versioned" : "",
                c->bad_shards ? ", shards not ok" : "",
                (unsigned long long)c->extra);
        print_lines(hf, v->first, v->nfirst, bad, "discrepancies (see --json for all)");
        print_lines(hf, v->first_extra, v->nfirst_extra, c->extra, "extra objects");
        print_lines(hf, v->first_error, v->nfirst_error, c->errors, "errors");
        if (exit_code == EXIT_OK)
            fprintf(hf, "verify: ok, the target holds every source object (%.1fs)\n", duration);
        else if (exit_code == EXIT_DISCREPANCY)
            fprintf(hf, "verify: DISCREPANCIES: the target does not hold everything%s (%.1fs)\n",
                    v->listing_failed || c->errors ? "; the audit was also incomplete" : "", duration);
        else if (exit_code == EXIT_FAILED)
            fprintf(hf, "verify: FAILED: the audit could not be completed%s%s\n", v->error[0] ? ": " : "",
                    v->error);
        else if (exit_code == EXIT_INTERRUPTED)
            fprintf(
                hf,
                "verify: INTERRUPTED: the audit is incomplete; the findings above are those made so far\n");
        fflush(hf);
    }
    if (o->json) {
        cJSON *j = verify_json(v, result, exit_code, versioning, stored_total);
        char *t = j ? cJSON_Print(j) : NULL;
        if (t)
            printf("%s\n", t);
        else
            s3_log_user(S3_LOG_ERROR, "out of memory building the JSON report");
        free(t);
        cJSON_Delete(j);
    }

    free(versioning);
    rep_signals_stop(ctx, &sg);
    for (size_t i = 0; i < v->nmans; i++) {
        if (v->mans[i].temp) unlink(v->mans[i].path);
        free(v->mans[i].path);
        free(v->mans[i].name);
    }
    free(v->mans);
    shard_group_free(v->newest);
    lines_free(v->first, v->nfirst);
    lines_free(v->first_extra, v->nfirst_extra);
    lines_free(v->first_error, v->nfirst_error);
    cJSON_Delete(v->jdisc);
    cJSON_Delete(v->jextra);
    cJSON_Delete(v->jerrors);
    cJSON_Delete(v->jmanifest_notes);
    manifest_index_free(v->checksums);
    free(v);
    rep_close(ctx);
    return exit_code;
}

