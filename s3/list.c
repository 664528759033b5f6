/* Streamed, read-ahead ListObjectsV2 over one or more key ranges (see s3/list.h). Owns: the pages in flight and
 * the order the ranges are read back in. Must not: parse XML itself (s3/xml_list.c), or write anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3/list.h"
#include "s3/log.h"
#include "s3/ops.h"

/* A listing reply that arrives whole but is not a valid page (truncated or garbled XML, a body over the cap,
 * truncated without a token) is a transport accident as much as a reset is: ask for the page again. */
#define MAX_BAD_REPLIES 5

/* Pages a range holds: the one being consumed and up to RANGE_PAGES - 1 read ahead. A range's pages can only be
 * fetched one after another (each needs the previous one's token); holding some ahead keeps a range's chain of
 * requests going while the consumer serves other ranges, so a single-threaded server is not left idle while the
 * client parses (measured on synth_s3: with one page ahead, client and server took turns). */
#define RANGE_PAGES 4

/* One key range: a chain of pages. */
struct range {
    struct s3_lister *owner;
    char *start_after;    /* first request only */
    char *end_before;     /* exclusive upper bound (keys >= it end the range), or NULL */
    char *end_inclusive;  /* inclusive upper bound for split ranges, or NULL */
    struct s3_list_page q[RANGE_PAGES]; /* q[0] is being consumed (at pos), the others are read ahead */
    int npages;
    size_t pos;
    bool fetching, done_fetching, ended, orphan;
    bool parsing; /* its last reply is being parsed (fetching stays true until it joins q) */
    int bad_replies; /* invalid replies in a row for the page being fetched */
    struct s3_request *rq;
};

struct s3_lister {
    struct s3_reader *reader;
    bool versions; /* ListObjectVersions: only the latest version of each key, delete markers hidden */
    char *bucket, *prefix;
    int page_size;
    s3_lister_ready_cb ready;
    void *ud;
    struct range **ranges;
    size_t nranges, cur;
    bool waiting;
    bool failed;
    char error[600];
    char error_code[64]; /* the S3 <Code> of the request that failed the listing ("NoSuchBucket"), or "" */
    unsigned long pages;
};

static void range_fetch(struct range *rg);

static void range_drop_pages(struct range *rg)
{
    for (int i = 0; i < rg->npages; i++) s3_list_page_free(&rg->q[i]);
    rg->npages = 0;
}

/* The current range may fetch its next page now: it has room and a page left to ask for. */
static void range_read_ahead(struct range *rg)
{
    if (rg->npages > 0 && rg->npages < RANGE_PAGES && !rg->done_fetching && !rg->fetching) range_fetch(rg);
}

static void range_free(struct range *rg)
{
    if (!rg) return;
    range_drop_pages(rg);
    free(rg->start_after);
    free(rg->end_before);
    free(rg->end_inclusive);
    free(rg);
}

/* A listing reply being parsed: off the loop's thread when the loop has workers (s3_loop_offload), so the
 * loop goes on with the other ranges' replies and the join meanwhile. A range has one at a time (its next
 * request needs this page's token), so its pages still arrive in order. */
struct parse_job {
    struct s3_job job;
    struct range *rg;
    struct s3_response *resp;
    bool versions;
    struct s3_list_page page;
    enum s3_err e;
};

static void page_parsed(struct range *rg, struct s3_response *resp, struct s3_list_page page, enum s3_err e);

static void parse_work(struct s3_job *job)
{
    struct parse_job *pj = (struct parse_job *)job;
    const struct s3_response *resp = pj->resp;
    pj->e = resp->err != S3_OK ? S3_OK
            : pj->versions     ? s3_xml_parse_list_versions(resp->body, resp->body_len, &pj->page)
                               : s3_xml_parse_list_v2(resp->body, resp->body_len, &pj->page);
}

static void parse_done(struct s3_job *job)
{
    struct parse_job *pj = (struct parse_job *)job;
    struct range *rg = pj->rg;
    rg->parsing = false;
    page_parsed(rg, pj->resp, pj->page, pj->e);
    free(pj);
}

static void page_done(struct s3_response *resp, void *ud)
{
    struct range *rg = ud;
    rg->rq = NULL;
    if (rg->orphan) { /* the lister was freed while this page was in flight */
        rg->fetching = false;
        s3_response_free(resp);
        range_free(rg);
        return;
    }
    struct parse_job *pj = calloc(1, sizeof *pj);
    if (!pj) { /* parsed here, then */
        struct parse_job here = {.rg = rg, .resp = resp, .versions = rg->owner->versions};
        parse_work(&here.job);
        page_parsed(rg, resp, here.page, here.e);
        return;
    }
    *pj = (struct parse_job){.job = {.work = parse_work, .done = parse_done}, .rg = rg, .resp = resp,
                             .versions = rg->owner->versions};
    rg->parsing = true;
    s3_loop_offload(s3_reader_loop(rg->owner->reader), &pj->job);
}

/* The rest of a reply, on the loop's thread: the page (or the error) joins the range's queue. */
static void page_parsed(struct range *rg, struct s3_response *resp, struct s3_list_page page, enum s3_err e)
{
    rg->fetching = false;
    if (rg->orphan) { /* the lister was freed while this page was parsed */
        s3_list_page_free(&page);
        s3_response_free(resp);
        range_free(rg);
        return;
    }
    struct s3_lister *l = rg->owner;
    l->pages++;
    bool no_token = resp->err == S3_OK && e == S3_OK && page.is_truncated &&
                    !(l->versions ? page.next_key_marker : page.next_token);
    bool invalid = resp->err == S3_ERR_TOO_LARGE || e != S3_OK || no_token;
    if (invalid && !l->failed && rg->bad_replies < MAX_BAD_REPLIES) {
        rg->bad_replies++;
        s3_log(S3_LOG_INFO, "listing s3://%s/%s: the reply is not a valid page (%s); asking again (%d of %d)",
               l->bucket, l->prefix ? l->prefix : "",
               no_token ? "truncated without a continuation token" : s3_err_str(e != S3_OK ? e : resp->err),
               rg->bad_replies, MAX_BAD_REPLIES);
        s3_list_page_free(&page);
        s3_response_free(resp);
        range_fetch(rg);
        return;
    }
    if (!invalid) rg->bad_replies = 0;
    if (resp->err != S3_OK) {
        if (!l->failed) {
            snprintf(l->error, sizeof l->error, "listing failed: %s", resp->message);
            snprintf(l->error_code, sizeof l->error_code, "%s", resp->s3err.code ? resp->s3err.code : "");
        }
        l->failed = true;
    } else {
        if (e != S3_OK) {
            if (!l->failed)
                snprintf(l->error, sizeof l->error,
                         "listing s3://%s/%s failed: the server's ListObjectsV2 reply is not valid (%s)", l->bucket,
                         l->prefix ? l->prefix : "", s3_err_str(e));
            l->failed = true;
        } else if (no_token) {
            snprintf(l->error, sizeof l->error, "listing s3://%s failed: truncated page without a continuation token",
                     l->bucket);
            l->failed = true;
            s3_list_page_free(&page);
        }
    }
    s3_response_free(resp);
    if (!l->failed) {
        if (!page.is_truncated) rg->done_fetching = true;
        /* past the range's upper bound: no need to fetch more */
        if (page.count) {
            const char *last = page.objects[page.count - 1].key;
            if ((rg->end_before && strcmp(last, rg->end_before) >= 0) ||
                (rg->end_inclusive && strcmp(last, rg->end_inclusive) >= 0))
                rg->done_fetching = true;
        }
        if (rg->npages == 0) rg->pos = 0;
        rg->q[rg->npages++] = page; /* one request at a time, sent only with room: npages < RANGE_PAGES */
        /* read ahead only in the range being consumed: the others wait with their first page, so that memory
         * is one page per range plus RANGE_PAGES - 1, however long the ranges are */
        if (l->cur < l->nranges && l->ranges[l->cur] == rg) range_read_ahead(rg);
    }
    if (l->waiting) {
        l->waiting = false;
        l->ready(l->ud);
    }
}

static void range_fetch(struct range *rg)
{
    struct s3_lister *l = rg->owner;
    const char *token = NULL, *sa = NULL;
    const struct s3_list_page *last = rg->npages ? &rg->q[rg->npages - 1] : NULL; /* the newest page */
    if (last) token = l->versions ? last->next_key_marker : last->next_token;
    else sa = rg->start_after;
    if (last && !token) {
        rg->done_fetching = true;
        return;
    }
    /* the token lives in a page; the request copies its query, so the page may be freed afterwards */
    rg->fetching = true;
    if (l->versions) /* the key marker lists keys after it, as start-after does */
        rg->rq = s3_list_versions(l->reader, l->bucket, l->prefix, token ? token : sa,
                                  token ? last->next_version_marker : NULL, l->page_size, page_done, rg);
    else
        rg->rq = s3_list_v2(l->reader, l->bucket, l->prefix, sa, token, l->page_size, page_done, rg);
    if (!rg->rq) {
        rg->fetching = false;
        l->failed = true;
        snprintf(l->error, sizeof l->error, "listing: out of memory");
    }
}

static struct range *range_new(struct s3_lister *l, const char *start_after, const char *end_before,
                               const char *end_inclusive)
{
    struct range *rg = calloc(1, sizeof *rg);
    if (!rg) return NULL;
    rg->owner = l;
    rg->start_after = start_after ? strdup(start_after) : NULL;
    rg->end_before = end_before ? strdup(end_before) : NULL;
    rg->end_inclusive = end_inclusive ? strdup(end_inclusive) : NULL;
    if ((start_after && !rg->start_after) || (end_before && !rg->end_before) ||
        (end_inclusive && !rg->end_inclusive)) {
        range_free(rg);
        return NULL;
    }
    return rg;
}

static struct s3_lister *lister_new(struct s3_reader *r, bool versions, const char *bucket, const char *prefix,
                                    const char *start_after, const char *end_before, const char *const *bounds,
                                    size_t nb, const char *last_inclusive, int page_size, s3_lister_ready_cb ready,
                                    void *ud)
{
    struct s3_lister *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->reader = r;
    l->versions = versions;
    l->bucket = strdup(bucket);
    l->prefix = prefix ? strdup(prefix) : NULL;
    l->page_size = page_size;
    l->ready = ready;
    l->ud = ud;
    l->ranges = calloc(nb + 1, sizeof *l->ranges);
    if (!l->bucket || (prefix && !l->prefix) || !l->ranges) goto error_clean_up;
    for (size_t i = 0; i <= nb; i++) {
        const char *sa = i == 0 ? start_after : bounds[i - 1];
        const char *incl = i < nb ? bounds[i] : last_inclusive;
        l->ranges[i] = range_new(l, sa, end_before, incl);
        if (!l->ranges[i]) goto error_clean_up;
        l->nranges++;
    }
    for (size_t i = 0; i < l->nranges; i++) range_fetch(l->ranges[i]);
    return l;

error_clean_up:
    s3_lister_free(l);
    return NULL;
}

struct s3_lister *s3_lister_new_split(struct s3_reader *r, const char *bucket, const char *prefix,
                                      const char *start_after, const char *end_before,
                                      const char *const *bounds, size_t nb, int page_size,
                                      s3_lister_ready_cb ready, void *ud)
{
    return lister_new(r, false, bucket, prefix, start_after, end_before, bounds, nb, NULL, page_size, ready, ud);
}

struct s3_lister *s3_lister_new_versions_split(struct s3_reader *r, const char *bucket, const char *prefix,
                                               const char *start_after, const char *end_before,
                                               const char *const *bounds, size_t nb, int page_size,
                                               s3_lister_ready_cb ready, void *ud)
{
    return lister_new(r, true, bucket, prefix, start_after, end_before, bounds, nb, NULL, page_size, ready, ud);
}

struct s3_lister *s3_lister_new_range(struct s3_reader *r, bool versions, const char *bucket, const char *prefix,
                                      const char *start_after, const char *end_before, const char *end_inclusive,
                                      int page_size, s3_lister_ready_cb ready, void *ud)
{
    return lister_new(r, versions, bucket, prefix, start_after, end_before, NULL, 0, end_inclusive, page_size, ready,
                      ud);
}

struct s3_lister *s3_lister_new(struct s3_reader *r, const char *bucket, const char *prefix,
                                const char *start_after, const char *end_before, int page_size,
                                s3_lister_ready_cb ready, void *ud)
{
    return s3_lister_new_split(r, bucket, prefix, start_after, end_before, NULL, 0, page_size, ready, ud);
}

enum s3_list_status s3_lister_next(struct s3_lister *l, const struct s3_object_info **out)
{
    for (;;) {
        if (l->failed) return S3_LIST_ERROR;
        if (l->cur >= l->nranges) return S3_LIST_END;
        struct range *rg = l->ranges[l->cur];
        if (!rg->ended && rg->npages > 0 && rg->pos < rg->q[0].count) {
            const struct s3_object_info *o = &rg->q[0].objects[rg->pos++];
            if (l->versions && (!o->is_latest || o->delete_marker)) continue; /* older, or deleted */
            if ((rg->end_before && strcmp(o->key, rg->end_before) >= 0) ||
                (rg->end_inclusive && strcmp(o->key, rg->end_inclusive) > 0)) {
                rg->ended = true;
                continue;
            }
            *out = o;
            return S3_LIST_OBJECT;
        }
        if (!rg->ended && rg->npages > 1) {
            s3_list_page_free(&rg->q[0]);
            memmove(&rg->q[0], &rg->q[1], (size_t)(rg->npages - 1) * sizeof rg->q[0]);
            rg->npages--;
            memset(&rg->q[rg->npages], 0, sizeof rg->q[0]);
            rg->pos = 0;
            range_read_ahead(rg);
            continue;
        }
        if (rg->ended || (rg->npages > 0 && rg->done_fetching && !rg->fetching)) {
            /* this range is finished: release its pages and move on */
            range_drop_pages(rg);
            rg->ended = true;
            if (rg->fetching && (rg->rq || rg->parsing)) { /* cannot happen often: a read-ahead past end_before */
                rg->orphan = true;
                if (rg->rq) s3_request_cancel(rg->rq);
                l->ranges[l->cur] = NULL;
            }
            l->cur++;
            if (l->cur < l->nranges) { /* the next range becomes the one read ahead */
                struct range *nx = l->ranges[l->cur];
                range_read_ahead(nx);
            }
            continue;
        }
        l->waiting = true;
        return S3_LIST_WAIT;
    }
}

const char *s3_lister_error(const struct s3_lister *l)
{
    return l->error;
}

const char *s3_lister_error_code(const struct s3_lister *l)
{
    return l->error_code;
}

unsigned long s3_lister_pages(const struct s3_lister *l)
{
    return l->pages;
}

void s3_lister_free(struct s3_lister *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->nranges; i++) {
        struct range *rg = l->ranges[i];
        if (!rg) continue;
        if (rg->fetching && (rg->rq || rg->parsing)) { /* freed when its reply comes back */
            rg->orphan = true;
            if (rg->rq) s3_request_cancel(rg->rq);
        } else {
            range_free(rg);
        }
    }
    free(l->ranges);
    free(l->bucket);
    free(l->prefix);
    free(l);
}
