/* The replication run as SPEC.md's algorithm: the safety checks, passes until they settle, the optional final
 * pass under the maintenance flag, then the manifest (run_manifest.c) and the report (run_report.c); its result
 * is one of replicator/result.h's. Also the set-up shared with the other modes (rep_open/rep_close) and the
 * failure notes a pass makes. Must not talk S3 itself beyond aborting a killed run's leftover uploads. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "manifest/point.h"
#include "replicator/lease.h"
#include "replicator/maintenance.h"
#include "replicator/mstore.h"
#include "replicator/output.h"
#include "replicator/pass.h"
#include "replicator/result.h"
#include "replicator/run.h"
#include "replicator/run_internal.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/target.h"
#include "replicator/versions.h"
#include "s3/log.h"
#include "s3/ops.h"

void rep_note_failure(struct rep_ctx *ctx, const char *key, const char *reason)
{
    if (ctx->nfailures >= MAX_REPORTED) return;
    char *s = NULL;
    if (asprintf(&s, "%s: %s", key, reason) < 0) return;
    ctx->failure_keylen[ctx->nfailures] = strlen(key) + 2;
    ctx->failures[ctx->nfailures++] = s;
}

void rep_note_extra(struct rep_ctx *ctx, const char *key)
{
    if (ctx->nextras >= MAX_REPORTED) return;
    char *s = strdup(key);
    if (s) ctx->extras[ctx->nextras++] = s;
}

void rep_note_archived(struct rep_ctx *ctx, const char *key, const char *storage_class)
{
    if (ctx->narchived >= MAX_REPORTED) return;
    char *s = NULL;
    if (asprintf(&s, "%s (%s)", key, storage_class ? storage_class : "InvalidObjectState") >= 0)
        ctx->archived[ctx->narchived++] = s;
}

bool rep_class_archived(const char *storage_class)
{
    return storage_class && (strcmp(storage_class, "GLACIER") == 0 || strcmp(storage_class, "DEEP_ARCHIVE") == 0);
}

static void stats_add(struct rep_stats *a, const struct rep_stats *b)
{
    a->listed += b->listed;
    a->copied += b->copied;
    a->bytes += b->bytes;
    a->skipped += b->skipped;
    a->failed += b->failed;
    a->extra = b->extra; /* a property of the last listing, not a sum */
    a->vanished += b->vanished;
    a->archived = b->archived; /* like extra: what the last listing found */
    a->checked += b->checked;
}

static struct s3_config g_src_cfg, g_dst_cfg;

int rep_open(struct rep_ctx *ctx, const struct rep_options *o, bool need_source)
{
    char err[768];
    memset(ctx, 0, sizeof *ctx);
    ctx->o = o;
    if (need_source && s3_config_resolve(&o->src_req, &g_src_cfg, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "source: %s", err);
        return EXIT_USAGE;
    }
    if (s3_config_resolve(&o->dst_req, &g_dst_cfg, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "target: %s", err);
        return EXIT_USAGE;
    }
    struct s3_loop_options lo;
    s3_loop_options_default(&lo);
    lo.max_host_connections = o->jobs + 8;
    lo.stall_timeout = o->timeout;
    lo.retry.max_attempts = o->retries;
    /* threads that parse listing pages (s3_loop_offload); REPLICATE_PARSE_THREADS=0 parses on the loop's
     * thread, as before (for comparisons; see NOTES.md) */
    const char *pt = getenv("REPLICATE_PARSE_THREADS");
    if (pt && *pt >= '0' && *pt <= '9') lo.workers = atoi(pt);
    ctx->loop = s3_loop_new(NULL, &lo);
    if (!ctx->loop) {
        s3_log_user(S3_LOG_ERROR, "cannot initialise the network layer");
        return EXIT_FAILED;
    }
    if (need_source) {
        ctx->src = s3_reader_open(ctx->loop, &g_src_cfg, err, sizeof err);
        if (!ctx->src) {
            s3_log_user(S3_LOG_ERROR, "source: %s", err);
            return EXIT_USAGE;
        }
    }
    ctx->dst = s3_client_new(ctx->loop, &g_dst_cfg, err, sizeof err);
    if (!ctx->dst) {
        s3_log_user(S3_LOG_ERROR, "target: %s", err);
        return EXIT_USAGE;
    }
    ctx->dst_r = s3_client_reader(ctx->dst);
    if (o->src_req.insecure || o->dst_req.insecure)
        s3_log_user(S3_LOG_WARN, "--insecure: TLS certificate verification is off, so anyone on the network path "
                                 "can read and change what is sent; give the CA with --source-ca-bundle/"
                                 "--target-ca-bundle instead");
    ctx->server_side = need_source && s3_config_same_account(&g_src_cfg, &g_dst_cfg);
    /* curl limits connections per host name: one endpoint is one host, unless both address their buckets as
     * virtual hosts (bucket.endpoint) and the buckets differ */
    ctx->one_host = !need_source || !g_src_cfg.endpoint || !g_dst_cfg.endpoint ||
                    (strcmp(g_src_cfg.endpoint, g_dst_cfg.endpoint) == 0 &&
                     (g_src_cfg.path_style || g_dst_cfg.path_style || strcmp(o->src_bucket, o->dst_bucket) == 0));
    /* --jobs is the ceiling: each endpoint that answers SlowDown/503 lowers it (s3/retry.h, AIMD) */
    if (ctx->src) s3_reader_adapt(ctx->src, o->jobs);
    s3_reader_adapt(ctx->dst_r, o->jobs);
    return EXIT_OK;
}

int rep_jobs(const struct rep_ctx *ctx)
{
    int n = ctx->o->jobs, s = s3_reader_concurrency(ctx->src), d = s3_reader_concurrency(ctx->dst_r);
    if (s < n) n = s;
    if (d < n) n = d;
    return n;
}

void rep_close(struct rep_ctx *ctx)
{
    s3_reader_close(ctx->src);
    if (ctx->versions) {
        unsigned long lists, learned, missed;
        versions_stats(ctx->versions, &lists, &learned, &missed);
        if (lists)
            s3_log(S3_LOG_INFO, "new versions: %lu learned with %lu ListObjectVersions requests, %lu read one by one",
                   learned, lists, missed);
        versions_free(ctx->versions);
        ctx->versions = NULL;
    }
    s3_client_free(ctx->dst);
    s3_loop_free(ctx->loop);
    manifest_index_free(ctx->idx);
    manifest_point_builder_free(ctx->pb);
    mstore_drop_point(ctx);
    pass_bounds_free(ctx);
    for (size_t i = 0; i < ctx->nfailures; i++) free(ctx->failures[i]);
    for (size_t i = 0; i < ctx->nextras; i++) free(ctx->extras[i]);
    for (size_t i = 0; i < ctx->narchived; i++) free(ctx->archived[i]);
    s3_config_free(&g_src_cfg);
    s3_config_free(&g_dst_cfg);
}

/* ---- signals and progress ---- */

static struct rep_ctx *g_ctx;
static int g_signals;

static void on_signal(struct ev_loop *ev, ev_signal *w, int revents)
{
    (void)ev;
    (void)revents;
    g_signals++;
    if (!g_ctx) return;
    if (g_signals == 1) {
        if (g_ctx->o->progress) fputc('\n', stderr); /* below the progress line */
        s3_log_user(S3_LOG_INFO, "%s received: stopping (finishing nothing new, switching maintenance off)",
                    strsignal(w->signum));
    }
    g_ctx->interrupted = true;
    s3_loop_cancel_all(g_ctx->loop);
}

static void on_progress(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    struct rep_ctx *ctx = w->data;
    const struct rep_stats *s = &ctx->cur;
    double el = ev_now(ev) - ctx->pass_started;
    char b[32], r[32];
    rep_fmt_bytes(s->bytes, b, sizeof b);
    rep_fmt_bytes(el > 0 ? (uint64_t)(s->bytes / el) : 0, r, sizeof r);
    if (ctx->o->progress)
        fprintf(stderr, "\r\033[Kpass %d: listed %llu, copied %llu (%s; %.0f obj/s, %s/s), unchanged %llu, failed %llu",
                ctx->pass, (unsigned long long)s->listed, (unsigned long long)s->copied, b,
                el > 0 ? s->copied / el : 0.0, r,
                (unsigned long long)s->skipped, (unsigned long long)s->failed);
    else {
        struct s3_log_field f[] = {{"pass", NULL, ctx->pass}, {"listed", NULL, (double)s->listed},
                                   {"copied", NULL, (double)s->copied}, {"bytes", NULL, (double)s->bytes},
                                   {"unchanged", NULL, (double)s->skipped}, {"failed", NULL, (double)s->failed}};
        s3_log_event(S3_LOG_INFO, "progress", NULL, f, sizeof f / sizeof *f,
                     "progress pass=%d listed=%llu copied=%llu bytes=%llu unchanged=%llu failed=%llu", ctx->pass,
                     (unsigned long long)s->listed, (unsigned long long)s->copied, (unsigned long long)s->bytes,
                     (unsigned long long)s->skipped, (unsigned long long)s->failed);
    }
}

static void progress_clear(const struct rep_options *o)
{
    if (o->progress) fprintf(stderr, "\r\033[K");
}

/* ---- before and after each pass ---- */

/* Aborts multipart uploads a killed run left behind under the target prefix. */
static void abort_leftovers(struct rep_ctx *ctx)
{
    const struct rep_options *o = ctx->o;
    struct s3_query_param q[] = {{"uploads", ""}, {"prefix", o->dst_prefix}};
    struct s3_request_spec s = {.method = "GET", .bucket = o->dst_bucket, .query = q, .nquery = o->dst_prefix[0] ? 2 : 1,
                                .max_body = S3_XML_MAX_BODY};
    struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
    struct s3_upload_list ul = {0};
    if (!r || r->err != S3_OK || s3_xml_parse_uploads(r->body, r->body_len, &ul) != S3_OK) {
        s3_log(S3_LOG_WARN, "could not list unfinished multipart uploads in the target: %s",
               r ? r->message : "out of memory");
        s3_response_free(r);
        return;
    }
    s3_response_free(r);
    for (size_t i = 0; i < ul.count; i++) {
        if (strncmp(ul.uploads[i].key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0 && !o->dst_prefix[0]) continue;
        struct s3_query_param aq[] = {{"uploadId", ul.uploads[i].upload_id}};
        struct s3_request_spec as = {.method = "DELETE", .bucket = o->dst_bucket, .key = ul.uploads[i].key,
                                     .query = aq, .nquery = 1};
        struct s3_response *ar = s3_request_wait(ctx->dst, &as);
        if (ar && ar->err == S3_OK)
            s3_log(S3_LOG_WARN, "aborted an unfinished multipart upload of %s left by an earlier run",
                   ul.uploads[i].key);
        s3_response_free(ar);
    }
    s3_upload_list_free(&ul);
}

/* A pass's counts into the run's, its line said and its record written to the manifest. */
static int finish_pass(struct rep_ctx *ctx, struct manifest_writer *mw, int n, const struct pass_result *p)
{
    stats_add(&ctx->total, &p->st);
    /* a pass that completed its listing retried every earlier failure (see pass_run): its count is the run's */
    if (!p->listing_failed && !p->interrupted && !ctx->manifest_failed) ctx->total.failed = p->st.failed;
    progress_clear(ctx->o);
    run_print_pass(ctx->o, n, p);
    if (!mw) return 0;
    struct manifest_pass mp = {.pass = n, .maintenance = p->maintenance, .started = p->started,
                               .duration = p->duration, .listed = p->st.listed, .copied = p->st.copied,
                               .bytes = p->st.bytes, .failed = p->st.failed, .skipped = p->st.skipped};
    if (manifest_writer_pass(mw, &mp) != 0 && !ctx->manifest_failed) {
        ctx->manifest_failed = true;
        snprintf(ctx->manifest_error, sizeof ctx->manifest_error, "writing the manifest failed: %s", strerror(errno));
    }
    return ctx->manifest_failed ? -1 : 0;
}

void rep_sleep(struct rep_ctx *ctx, double seconds)
{
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_now_update(ev);
    double until = ev_now(ev) + seconds;
    while (!ctx->interrupted && ev_now(ev) < until) {
        double left = until - ev_now(ev);
        ev_sleep(left > 0.1 ? 0.1 : left);
        ev_run(ev, EVRUN_NOWAIT);
        ev_now_update(ev);
    }
}


/* ---- the run's phases ---- */

static void run_init(struct run *r, struct rep_ctx *ctx, struct rep_options *o)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->o = o;
    r->result = REP_RESULT_FAILED;
    r->lock_fd = -1;
    state_run_id(r->local_id);
    snprintf(r->run_id, sizeof r->run_id, "%s", o->shared_run_id ? o->shared_run_id : r->local_id);
    if (o->shard_n) shard_manifest_name(r->stored_name, sizeof r->stored_name, r->run_id, o->shard_i, o->shard_n);
    else snprintf(r->stored_name, sizeof r->stored_name, "%s", r->run_id);
    snprintf(r->stored_name_ext, sizeof r->stored_name_ext, "%s.jsonl", r->stored_name);
}

/* Signals stop the run cleanly (finishing nothing new, the flag switched off); the clock starts. */
static void run_watch(struct run *r)
{
    struct ev_loop *ev = s3_loop_ev(r->ctx->loop);
    ev_signal *sigs[] = {&r->sig_int, &r->sig_term, &r->sig_hup};
    const int nums[] = {SIGINT, SIGTERM, SIGHUP};
    g_ctx = r->ctx;
    for (int i = 0; i < 3; i++) {
        ev_signal_init(sigs[i], on_signal, nums[i]);
        ev_signal_start(ev, sigs[i]);
        ev_unref(ev); /* a signal watcher alone does not keep the loop running */
    }
    ev_now_update(ev);
    r->t0 = ev_now(ev);
}

/* The state folder and its lock (one run per target on this host), and a maintenance flag a killed run left on,
 * cleared before anything else. 0, or -1 with r->result set. */
static int run_lock(struct run *r)
{
    const struct rep_options *o = r->o;
    char err[1024];
    r->state = state_target_dir(o, s3_reader_config(r->ctx->dst_r)->endpoint, err, sizeof err);
    if (!r->state) {
        s3_log_user(S3_LOG_ERROR, "%s", err);
        r->result = REP_RESULT_CONFIG;
        return -1;
    }
    r->lock_fd = state_lock(r->state, err, sizeof err);
    if (r->lock_fd < 0) {
        s3_log_user(S3_LOG_ERROR, "refused: %s", err);
        r->result = REP_RESULT_REFUSED;
        return -1;
    }
    maint_init(&r->maint, o->maint_file, o->maint_on, o->maint_off, r->state);
    int mr = maint_recover(r->state, err, sizeof err);
    if (mr != 0) s3_log_user(S3_LOG_WARN, "%s", err);
    return mr < 0 ? -1 : 0;
}

/* The safety checks on the target, the shard's key range (after the checks) and the lease (after the checks,
 * before any data is written): EXIT_OK or the exit code that ends the run. */
static int run_check_target(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    bool versioned = false;
    int rc = target_prepare(ctx, &versioned);
    ctx->target_versioned = versioned;
    /* a server-side copy's reply may name no version (RGW): learn them in bulk rather than a HEAD per copy */
    if (rc == EXIT_OK && versioned && ctx->server_side && !o->dry_run && !(ctx->versions = versions_new(ctx, o->dst_bucket)))
        rc = EXIT_FAILED;
    if (rc == EXIT_OK) rc = shard_resolve(ctx, r->o, r->run_id);
    if (rc == EXIT_OK && !o->dry_run) rc = lease_acquire(ctx, r->run_id, r->state, o->lease, &r->lease);
    return rc;
}

/* Everything before the first pass: lock, checks, lease, what earlier runs recorded, the manifest's header.
 * 0, or -1 with r->result (and perhaps r->message) set. */
static int run_prepare(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    if (run_lock(r) != 0) return -1;
    int rc = run_check_target(r);
    if (rc != EXIT_OK) {
        r->result = rep_result_from_exit(rc);
        return -1;
    }
    if (!o->quiet)
        rep_say(o, "replicating %s -> %s (%s copy%s)\n", o->src_url, o->dst_url,
                ctx->server_side ? "server-side" : "streamed", o->dry_run ? ", dry run: nothing is written" : "");
    if (!o->dry_run) abort_leftovers(ctx);
    mstore_seed(ctx, r->state);
    run_load_index(ctx, r->state);
    pass_bounds_load(ctx, r->state);
    return run_manifest_open(r);
}

/* The next pass, counted and recorded in the manifest; *out is its result. Returns pass_run's. */
static int run_pass(struct run *r, bool maintenance, double deadline, struct pass_result **out)
{
    struct rep_ctx *ctx = r->ctx;
    ctx->pass = r->passes + 1;
    struct pass_result *pr = &r->passes_r[r->passes < RUN_PASSES_KEPT - 1 ? r->passes : RUN_PASSES_KEPT - 1];
    int prc = pass_run(ctx, maintenance, deadline, pr);
    r->passes++;
    finish_pass(ctx, r->mw, ctx->pass, pr);
    *out = pr;
    return prc;
}

/* The first pass, then delta passes until one settles: it took no longer than --settle, or copied nothing. */
static void run_passes(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    ev_timer_init(&r->progress, on_progress, 1.0, o->progress ? 0.5 : 10.0);
    r->progress.data = ctx;
    if (o->progress || o->verbose) {
        ev_timer_start(s3_loop_ev(ctx->loop), &r->progress);
        ev_unref(s3_loop_ev(ctx->loop));
    }
    for (int n = 1; n <= o->max_passes && !ctx->interrupted; n++) {
        struct pass_result *pr;
        int prc = run_pass(r, false, 0, &pr);
        r->gap = pr->duration;
        if (prc != 0) {
            if (pr->listing_failed) r->failed_listing = true;
            snprintf(r->message, sizeof r->message, "%s", pr->error);
            return;
        }
        if (o->dry_run || pr->duration <= o->settle || pr->st.copied == 0) { /* a dry run copies nothing: one pass */
            r->converged = true;
            return;
        }
        if (n < o->max_passes)
            rep_say(o, "pass %d took %.1fs (> --settle %.0fs): running a delta pass for what changed meanwhile\n", n,
                    pr->duration, o->settle);
    }
}

/* Once the passes converged: the flag on, --grace for in-flight writes, one more pass, the flag off. The gap is
 * then zero. Not run when the passes did not converge (a pass that long would keep the app down too long). */
static void run_maintenance_pass(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    char err[1024];
    if (!r->converged || !maint_configured(&r->maint) || ctx->interrupted || ctx->manifest_failed || o->dry_run) return;
    if (maint_on(&r->maint, r->run_id, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "switching maintenance on failed: %s\n  The final pass did not run; the "
                                  "flag is off.", err);
        snprintf(r->message, sizeof r->message, "maintenance on failed: %s", err);
        r->result = REP_RESULT_MAINTENANCE_FAILED;
        r->converged = false;
        return;
    }
    rep_say(o, "maintenance on (%s); waiting %.1fs for in-flight writes\n", o->maint_file ? o->maint_file : "command",
            o->grace);
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    ev_now_update(ev);
    double deadline = ev_now(ev) + o->maint_max;
    rep_sleep(ctx, o->grace);
    struct pass_result *pr;
    if (!ctx->interrupted) {
        if (run_pass(r, true, deadline, &pr) == 0) {
            r->gap = 0;
            r->gap_zero_by_flag = true;
        } else {
            snprintf(r->message, sizeof r->message, "final pass incomplete: %s", pr->error);
            r->converged = false;
            if (!ctx->interrupted) r->result = REP_RESULT_MAINTENANCE_INCOMPLETE;
        }
    }
    if (maint_off(&r->maint, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "SWITCHING MAINTENANCE OFF FAILED: %s\n  Switch the app back by hand.", err);
        snprintf(r->message, sizeof r->message, "maintenance off failed: %s", err);
        r->converged = false;
    } else {
        rep_say(o, "maintenance off\n");
    }
}

/* The key sample the passes took, for the next run's listing ranges and for the shards. */
static void run_keep_sample(struct run *r)
{
    if (!r->o->dry_run) pass_bounds_save(r->ctx, r->state);
    shard_store_sample(r->ctx, r->run_id);
}

/* The run's result from what the phases left: the first that applies wins. */
static void run_decide(struct run *r)
{
    struct rep_ctx *ctx = r->ctx;
    const char *why = NULL;
    if (lease_lost(r->lease, &why)) {
        r->result = REP_RESULT_FAILED;
        snprintf(r->message, sizeof r->message, "%s", why);
    } else if (ctx->interrupted) {
        r->result = REP_RESULT_INTERRUPTED;
    } else if (ctx->manifest_failed) {
        r->result = REP_RESULT_FAILED;
        snprintf(r->message, sizeof r->message, "%s", ctx->manifest_error);
    } else if (r->failed_listing) {
        r->result = REP_RESULT_FAILED;
    } else if (r->result == REP_RESULT_MAINTENANCE_FAILED || r->result == REP_RESULT_MAINTENANCE_INCOMPLETE) {
        /* as the maintenance pass said */
    } else if (ctx->total.failed || (ctx->total.archived && !r->o->skip_archived)) {
        r->result = REP_RESULT_FAILED;
        if (!ctx->total.failed)
            snprintf(r->message, sizeof r->message, "%llu archived objects (GLACIER/DEEP_ARCHIVE) were not copied: "
                     "restore them at the source (RestoreObject), or accept them with --skip-archived",
                     (unsigned long long)ctx->total.archived);
    } else if (!r->converged) {
        r->result = REP_RESULT_NOT_CONVERGED;
        if (!r->message[0])
            snprintf(r->message, sizeof r->message, "did not converge: %d passes and the last still took %.1fs "
                     "(> --settle %.0fs)", r->passes, r->gap, r->o->settle);
    } else {
        r->result = REP_RESULT_OK;
    }
}

/* On every path: the maintenance flag off if something left it on; the run's duration and end. */
static void run_end(struct run *r)
{
    char err[1024];
    if (r->maint.on && maint_off(&r->maint, err, sizeof err) != 0)
        s3_log_user(S3_LOG_ERROR, "SWITCHING MAINTENANCE OFF FAILED: %s", err);
    struct ev_loop *ev = s3_loop_ev(r->ctx->loop);
    ev_now_update(ev);
    r->duration = ev_now(ev) - r->t0;
    r->ended = (int64_t)time(NULL);
}

int run_replicate(struct rep_options *o)
{
    struct rep_ctx ctx;
    struct run run, *r = &run;
    run_init(r, &ctx, o);
    int rc = rep_open(&ctx, o, true);
    if (rc != EXIT_OK) { /* configuration: reported like any failed run */
        r->result = rep_result_from_exit(rc);
        r->ended = (int64_t)time(NULL);
        run_report(r);
        rep_close(&ctx);
        return rep_result_exit(r->result);
    }
    r->opened = true;
    run_watch(r);
    if (run_prepare(r) == 0) {   /* checks, lock, lease, the index, the manifest's header */
        run_passes(r);           /* the first pass, delta passes until they settle */
        run_maintenance_pass(r); /* the optional final pass under the flag */
        run_keep_sample(r);
        run_decide(r);
    }
    run_end(r);
    run_manifest_finish(r);
    lease_release(&ctx, r->lease); /* after the manifest upload: the lease covers every write */
    progress_clear(o);
    run_report(r);
    g_ctx = NULL;
    if (r->lock_fd >= 0) close(r->lock_fd);
    free(r->state);
    rep_close(&ctx);
    return rep_result_exit(r->result);
}
