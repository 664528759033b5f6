/* --verify: an audit of the target against the source and the manifests recorded in the target (see
 * replicator/verify.h and replicator/verify_internal.h). Owns the audit's state and findings, the merge-join of
 * both listings with its size/ETag checks, run_verify's phases and the stop-on-signal watchers the read-only
 * modes share. Must not: write to S3 (only GET and HEAD), or keep a file it wrote (temporary manifests). */
#include <cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "replicator/output.h"
#include "replicator/run.h"
#include "replicator/target.h"
#include "replicator/verify.h"
#include "replicator/verify_internal.h"
#include "s3/list.h"
#include "s3/log.h"
#include "s3/ops.h"

#define JSON_MAX_ENTRIES 100000     /* per list in the --json report */

const char *const verify_kind_name[] = {"missing",     "different",    "extra", "unversioned",
                                        "lost-version", "error",       "shard"};

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

void verify_schedule_pump(struct verify *v)
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
    verify_schedule_pump(ud);
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

void verify_finding(struct verify *v, enum disc_kind k, const char *src_key, const char *dst_key,
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
    s3_log(k == D_ERROR ? S3_LOG_WARN : S3_LOG_INFO, "verify: %s %s%s%s", verify_kind_name[k], key,
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
    cJSON_AddStringToObject(e, "kind", verify_kind_name[k]);
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
            verify_finding(v, D_DIFFERENT, h->src_key, h->dst_key, detail);
        }
    } else if (r->status == 404) {
        verify_finding(v, D_MISSING, h->src_key, NULL, "deleted from the target during the audit");
    } else {
        verify_finding(v, D_ERROR, h->src_key, h->dst_key, r->message);
    }
    s3_response_free(r);
    head_check_free(h);
    verify_schedule_pump(v);
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
        verify_finding(v, D_DIFFERENT, s->key, d->key, detail);
        return;
    }
    if (v->o->deep && sampled(v))
        verify_deep_check(v, s, d);
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
            verify_finding(v, D_MISSING, s->key, NULL, NULL);
        else if (js == JOIN_RIGHT)
            verify_finding(v, D_EXTRA, NULL, d->key, "deleted at the source, kept in the target");
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
    verify_schedule_pump(v);
    while (!v->finished)
        ev_run(ev, 0);
    ev_idle_stop(ev, &v->kick);
    s3_lister_free(v->src_l);
    s3_lister_free(v->dst_l);
    v->src_l = v->dst_l = NULL;
    return v->listing_failed ? -1 : 0;
}

static struct verify *verify_new(struct rep_ctx *ctx, const struct rep_options *o)
{
    struct verify *v = calloc(1, sizeof *v);
    if (!v) return NULL;
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
    return v;
}

static void verify_free(struct verify *v)
{
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
}

/* Phase 1: the target must still be versioned. Returns its versioning status (owned, NULL when unreadable);
 * *usage is set when the target bucket does not exist. */
static char *check_versioning(struct verify *v, bool *usage)
{
    const struct rep_options *o = v->o;
    char err[768];
    bool no_bucket = false;
    *usage = false;
    char *versioning = target_versioning(v->ctx->dst_r, o->dst_bucket, &no_bucket, err, sizeof err);
    if (!versioning) {
        s3_log_user(S3_LOG_ERROR, "cannot read the target's versioning: %s%s", err,
                    no_bucket ? "\n  Check the target URL and --target-endpoint." : "");
        if (no_bucket) {
            *usage = true;
            snprintf(v->error, sizeof v->error, "the target bucket does not exist");
            return NULL;
        }
        verify_finding(v, D_ERROR, NULL, NULL, err);
    } else if (strcmp(versioning, "Enabled") != 0) {
        char detail[600];
        snprintf(detail, sizeof detail,
                 "versioning is %s on s3://%s: an overwrite or delete destroys the only copy",
                 versioning[0] ? versioning : "not enabled", o->dst_bucket);
        verify_finding(v, D_UNVERSIONED, NULL, NULL, detail);
    }
    return versioning;
}

/* Phase 2, after the manifests are read: a run of shards must have every one there, ok. */
static void check_shards(struct verify *v)
{
    if (!v->newest || shard_group_finish(v->newest) <= 0) return;
    char text[8192];
    shard_group_problems(v->newest, text, sizeof text);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char detail[600];
        snprintf(detail, sizeof detail, "run %s: %s", v->newest->run_id, line);
        verify_finding(v, D_SHARD, NULL, NULL, detail);
    }
}

/* The audit's result and exit code from what it found. */
static int verify_result(const struct verify *v, const char **result)
{
    const struct verify_counts *c = &v->c;
    *result = "ok";
    if (v->ctx->interrupted) {
        *result = "interrupted";
        return EXIT_INTERRUPTED;
    }
    if (verify_bad_count(c)) {
        *result = "discrepancies";
        return EXIT_DISCREPANCY;
    }
    if (v->listing_failed || c->errors) {
        *result = "failed";
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

int run_verify(const struct rep_options *o)
{
    struct rep_ctx ctx_s, *ctx = &ctx_s;
    int rc = rep_open(ctx, o, true);
    if (rc != EXIT_OK) {
        rep_close(ctx);
        return rc;
    }
    struct verify *v = verify_new(ctx, o);
    if (!v) {
        rep_close(ctx);
        return EXIT_FAILED;
    }
    srand48((long)time(NULL) ^ (long)getpid());
    struct rep_signals sg;
    rep_signals_start(ctx, &sg);
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_now_update(ev);
    double t0 = ev_now(ev);
    FILE *hf = rep_human(o);
    int stored_total = 0;
    int exit_code = EXIT_OK;
    const char *result = "ok";

    rep_say(o, "verifying %s -> %s%s\n", o->src_url, o->dst_url,
        o->deep ? (o->sample < 100 ? " (deep, sampled)" : " (deep: reading both sides)") : "");

    /* 1. the target must still be versioned */
    bool usage;
    char *versioning = check_versioning(v, &usage);
    if (usage) {
        exit_code = EXIT_USAGE;
        result = "failed";
        goto out;
    }

    /* 2. manifests: the source ETags recorded where the target's ETag differs, and the versions written */
    verify_collect_manifests(v, &stored_total);
    verify_load_index(v);
    if (ctx->interrupted) goto out;
    check_shards(v);

    /* 3. both listings, merge-joined */
    if (run_join(v) != 0 && !ctx->interrupted) s3_log_user(S3_LOG_ERROR, "%s", v->error);

    /* 4. the versions recorded in the target's manifests still exist */
    if (!ctx->interrupted) verify_run_versions(v);

out:
    ev_now_update(ev);
    double duration = ev_now(ev) - t0;
    if (exit_code == EXIT_OK) exit_code = verify_result(v, &result);
    if (hf && exit_code != EXIT_USAGE) verify_print_human(v, hf, exit_code, versioning, stored_total, duration);
    if (o->json) verify_print_json(v, result, exit_code, versioning, stored_total);

    free(versioning);
    rep_signals_stop(ctx, &sg);
    verify_free(v);
    rep_close(ctx);
    return exit_code;
}
