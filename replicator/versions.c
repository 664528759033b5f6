/* The versions of objects just written, learned in bulk (see versions.h).
 *
 * Asks are queued for up to FLUSH_DELAY seconds (or until BATCH are waiting, or the pass has nothing else in
 * flight: versions_flush), then sorted by key and walked
 * with ListObjectVersions pages: each page starts just before the first key still open (key-marker) under the
 * longest prefix the batch shares, so a batch of neighbouring keys costs one page however many keys it holds,
 * and keys far apart are jumped to. A page that teaches fewer than MIN_USEFUL keys means the batch is sparse:
 * its remaining keys go back to the caller, whose HEAD costs the server less than more pages would. Must not:
 * write anything (it only lists versions of the keys asked for). */
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "replicator/versions.h"
#include "s3/log.h"
#include "s3/ops.h"
#include "s3/xml.h"

#define BATCH 1000
#define FLUSH_DELAY 1.0
#define MIN_USEFUL 8

struct ask {
    char *key, *etag;
    versions_cb cb;
    void *ud;
};

struct batch {
    struct versions *v;
    struct ask *asks; /* sorted by key */
    size_t n, next;   /* asks[next..n) are still open */
    struct s3_request *rq;
    char *prefix;
    struct batch *prev, *nextb;
};

struct versions {
    struct rep_ctx *ctx;
    char *bucket;
    struct ask *queue;
    size_t nq, capq;
    size_t waiting;
    ev_timer timer;
    bool timer_on;
    struct batch *batches;
    unsigned long lists, learned, missed;
    void (*on_ask)(void *ud);
    void *on_ask_ud;
};

size_t versions_marker_len(const char *key)
{
    size_t n = strlen(key);
    while (n > 0) {
        n--;
        if (((unsigned char)key[n] & 0xC0) != 0x80) break; /* the first byte of the last character */
    }
    return n;
}

size_t versions_common_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    /* do not end inside a character: back off to the start of the one that differs */
    while (n > 0 && ((unsigned char)a[n] & 0xC0) == 0x80) n--;
    return n;
}

static int ask_cmp(const void *x, const void *y)
{
    const struct ask *a = x, *b = y;
    return strcmp(a->key, b->key);
}

static void answer(struct versions *v, struct ask *a, const char *version_id)
{
    v->waiting--;
    if (version_id) v->learned++;
    else v->missed++;
    versions_cb cb = a->cb;
    void *ud = a->ud;
    free(a->key);
    free(a->etag);
    a->key = a->etag = NULL;
    cb(version_id, ud);
}

static void batch_free(struct batch *b)
{
    struct versions *v = b->v;
    if (b->prev) b->prev->nextb = b->nextb;
    else v->batches = b->nextb;
    if (b->nextb) b->nextb->prev = b->prev;
    for (size_t i = b->next; i < b->n; i++) {
        free(b->asks[i].key);
        free(b->asks[i].etag);
    }
    free(b->asks);
    free(b->prefix);
    free(b);
}

/* Every open ask of the batch goes back to its caller; the batch is freed. */
static void batch_give_up(struct batch *b)
{
    while (b->next < b->n) answer(b->v, &b->asks[b->next++], NULL);
    batch_free(b);
}

static void page_done(struct s3_response *r, void *ud);

static void batch_page(struct batch *b)
{
    struct versions *v = b->v;
    const char *first = b->asks[b->next].key;
    size_t ml = versions_marker_len(first);
    char *marker = ml ? strndup(first, ml) : NULL;
    size_t open = b->n - b->next;
    size_t want = open + open / 2 + 8; /* room for keys of other batches and older versions in between */
    int max_keys = want > BATCH ? BATCH : (int)want;
    v->lists++;
    b->rq = s3_list_versions(v->ctx->dst_r, v->bucket, b->prefix, marker, NULL, max_keys, page_done, b);
    free(marker);
    if (!b->rq) batch_give_up(b);
}

static void page_done(struct s3_response *r, void *ud)
{
    struct batch *b = ud;
    struct versions *v = b->v;
    b->rq = NULL;
    struct s3_list_page page = {0};
    if (r->err != S3_OK || s3_xml_parse_list_versions(r->body, r->body_len, &page) != S3_OK) {
        if (r->err != S3_ERR_CANCELLED)
            s3_log(S3_LOG_INFO, "listing the new versions in s3://%s failed (%s): reading them one by one",
                   v->bucket, r->err != S3_OK ? r->message : "the reply is not a version listing");
        s3_response_free(r);
        s3_list_page_free(&page);
        batch_give_up(b);
        return;
    }
    s3_response_free(r);
    size_t learned = 0;
    const char *prev_key = NULL;
    for (size_t i = 0; i < page.count && b->next < b->n; i++) {
        const struct s3_object_info *e = &page.objects[i];
        bool first_of_key = !prev_key || strcmp(prev_key, e->key) != 0; /* a key's latest version comes first */
        prev_key = e->key;
        int c;
        while (b->next < b->n && (c = strcmp(b->asks[b->next].key, e->key)) < 0)
            answer(v, &b->asks[b->next++], NULL); /* listed past it: not there (or not visible yet) */
        if (b->next == b->n || c != 0 || !first_of_key) continue;
        struct ask *a = &b->asks[b->next++];
        bool ok = e->is_latest && !e->delete_marker && e->version_id && e->etag && strcasecmp(e->etag, a->etag) == 0;
        if (ok) learned++;
        answer(v, a, ok ? e->version_id : NULL);
    }
    bool more = page.is_truncated && page.count > 0;
    s3_list_page_free(&page);
    if (b->next == b->n) {
        batch_free(b);
        return;
    }
    if (!more || learned < MIN_USEFUL || v->ctx->interrupted) {
        batch_give_up(b); /* the end of the listing, or too sparse to be worth more pages */
        return;
    }
    batch_page(b);
}

void versions_flush(struct versions *v)
{
    if (v->timer_on) {
        ev_timer_stop(s3_loop_ev(v->ctx->loop), &v->timer);
        v->timer_on = false;
    }
    if (!v->nq) return;
    struct batch *b = calloc(1, sizeof *b);
    if (!b) abort();
    b->v = v;
    b->asks = v->queue;
    b->n = v->nq;
    v->queue = NULL;
    v->nq = v->capq = 0;
    qsort(b->asks, b->n, sizeof *b->asks, ask_cmp);
    const char *lo = b->asks[0].key, *hi = b->asks[b->n - 1].key;
    b->prefix = strndup(lo, versions_common_prefix(lo, hi));
    if (!b->prefix) abort();
    b->nextb = v->batches;
    if (v->batches) v->batches->prev = b;
    v->batches = b;
    batch_page(b);
}

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct versions *v = w->data;
    v->timer_on = false;
    versions_flush(v);
}

struct versions *versions_new(struct rep_ctx *ctx, const char *bucket)
{
    struct versions *v = calloc(1, sizeof *v);
    if (!v || !(v->bucket = strdup(bucket))) {
        free(v);
        return NULL;
    }
    v->ctx = ctx;
    ev_timer_init(&v->timer, timer_cb, FLUSH_DELAY, 0.);
    v->timer.data = v;
    return v;
}

void versions_ask(struct versions *v, const char *key, const char *etag, versions_cb cb, void *ud)
{
    if (v->nq == v->capq) {
        size_t cap = v->capq ? v->capq * 2 : 64;
        struct ask *q = realloc(v->queue, cap * sizeof *q);
        if (!q) abort();
        v->queue = q;
        v->capq = cap;
    }
    struct ask *a = &v->queue[v->nq++];
    a->key = strdup(key);
    a->etag = strdup(etag);
    if (!a->key || !a->etag) abort();
    a->cb = cb;
    a->ud = ud;
    v->waiting++;
    if (v->nq >= BATCH) {
        versions_flush(v);
    } else if (!v->timer_on) {
        ev_timer_set(&v->timer, FLUSH_DELAY, 0.);
        ev_timer_start(s3_loop_ev(v->ctx->loop), &v->timer);
        v->timer_on = true;
    }
    if (v->on_ask) v->on_ask(v->on_ask_ud);
}

void versions_on_ask(struct versions *v, void (*cb)(void *ud), void *ud)
{
    if (!v) return;
    v->on_ask = cb;
    v->on_ask_ud = ud;
}

size_t versions_waiting(const struct versions *v)
{
    return v ? v->waiting : 0;
}

void versions_stats(const struct versions *v, unsigned long *lists, unsigned long *learned, unsigned long *missed)
{
    *lists = v ? v->lists : 0;
    *learned = v ? v->learned : 0;
    *missed = v ? v->missed : 0;
}

void versions_free(struct versions *v)
{
    if (!v) return;
    struct ev_loop *ev = s3_loop_ev(v->ctx->loop);
    if (v->timer_on) ev_timer_stop(ev, &v->timer);
    v->timer_on = false;
    versions_flush(v); /* nothing is normally open when a run ends: whatever is goes back to its callers */
    for (struct batch *b = v->batches; b; b = b->nextb)
        if (b->rq) s3_request_cancel(b->rq);
    while (v->batches) ev_run(ev, EVRUN_ONCE); /* the cancelled pages answer their asks */
    free(v->queue);
    free(v->bucket);
    free(v);
}
