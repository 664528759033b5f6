/* The end of a backup run, told: the human summary, the --json summary (also what --notify-cmd/--notify-url get),
 * the failure notification and the --metrics-file samples. Reads the run's state (taking only the stored
 * manifest's description into the summary); must not decide or change its result. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "manifest/manifest.h"
#include "replicator/metrics.h"
#include "replicator/notify.h"
#include "replicator/output.h"
#include "replicator/retain.h"
#include "replicator/run_internal.h"
#include "replicator/state.h"
#include "s3/log.h"

static double round_ms(double seconds)
{
    return round(seconds * 1000) / 1000;
}

/* Both sides' throttled replies and the lowest concurrency either reached. */
static void concurrency_totals(const struct rep_ctx *ctx, double *lowest, unsigned long *throttled)
{
    const struct s3_reader *sides[2] = {ctx->src, ctx->dst_r};
    *lowest = ctx->o->jobs;
    *throttled = 0;
    for (int i = 0; i < 2; i++) {
        if (!sides[i]) continue;
        const struct s3_aimd *a = s3_reader_aimd(sides[i]);
        if (a->lowest < *lowest) *lowest = a->lowest;
        *throttled += a->throttled;
    }
}

/* The concurrency reached: {"jobs", "lowest", "final", "throttled", and the same per side}. */
static cJSON *concurrency_json(const struct rep_ctx *ctx)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "jobs", ctx->o->jobs);
    cJSON_AddNumberToObject(c, "final", rep_jobs(ctx));
    const struct s3_reader *sides[2] = {ctx->src, ctx->dst_r};
    const char *names[2] = {"source", "target"};
    for (int i = 0; i < 2; i++) {
        if (!sides[i]) continue;
        const struct s3_aimd *a = s3_reader_aimd(sides[i]);
        cJSON *sj = cJSON_AddObjectToObject(c, names[i]);
        cJSON_AddNumberToObject(sj, "throttled", (double)a->throttled);
        cJSON_AddNumberToObject(sj, "backoffs", (double)a->cuts);
        cJSON_AddNumberToObject(sj, "lowest", floor(a->lowest));
        cJSON_AddNumberToObject(sj, "final", s3_aimd_limit(a));
    }
    double lowest;
    unsigned long throttled;
    concurrency_totals(ctx, &lowest, &throttled);
    cJSON_AddNumberToObject(c, "lowest", floor(lowest));
    cJSON_AddNumberToObject(c, "throttled", (double)throttled);
    return c;
}

/* The per-pass details of the summary. */
static cJSON *passes_json(const struct run *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < r->passes && i < RUN_PASSES_KEPT; i++) {
        const struct pass_result *p = &r->passes_r[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddNumberToObject(pj, "pass", i + 1);
        cJSON_AddBoolToObject(pj, "maintenance", p->maintenance);
        struct rep_json_number n[] = {{"duration_seconds", round_ms(p->duration)}, {"listed", (double)p->st.listed},
                                      {"copied", (double)p->st.copied}, {"bytes", (double)p->st.bytes},
                                      {"unchanged", (double)p->st.skipped}, {"failed", (double)p->st.failed}};
        rep_json_add_numbers(pj, n, sizeof n / sizeof *n);
        cJSON_AddItemToArray(arr, pj);
    }
    return arr;
}

/* The --json summary, also what a notification gets. */
static cJSON *summary_json(const struct run *r)
{
    const struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    int exit_code = rep_result_exit(r->result);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "run_id", r->run_id);
    cJSON_AddStringToObject(j, "source", o->src_url);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddStringToObject(j, "result", rep_result_name(r->result));
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    cJSON_AddBoolToObject(j, "dry_run", o->dry_run);
    if (o->retain > 0) { /* --retain: how every version written is locked */
        cJSON *rj = cJSON_AddObjectToObject(j, "retain");
        cJSON_AddStringToObject(rj, "mode", retain_mode(o));
        cJSON_AddNumberToObject(rj, "seconds", o->retain);
    }
    cJSON_AddStringToObject(j, "copy_mode", ctx->server_side ? "server-side" : "streamed");
    cJSON_AddNumberToObject(j, "passes", r->passes);
    cJSON_AddNumberToObject(j, "gap_seconds", round_ms(r->gap));
    cJSON_AddBoolToObject(j, "maintenance", r->gap_zero_by_flag);
    const struct rep_stats *t = &ctx->total;
    struct rep_json_number n[] = {{"duration_seconds", round_ms(r->duration)}, {"objects_copied", (double)t->copied},
                                  {"bytes_copied", (double)t->bytes},          {"objects_failed", (double)t->failed},
                                  {"objects_deleted_at_source", (double)t->extra},
                                  {"objects_vanished", (double)t->vanished},   {"objects_archived", (double)t->archived}};
    rep_json_add_numbers(j, n, sizeof n / sizeof *n);
    cJSON *ja = cJSON_AddArrayToObject(j, "archived");
    for (size_t i = 0; ja && i < ctx->narchived; i++) cJSON_AddItemToArray(ja, cJSON_CreateString(ctx->archived[i]));
    cJSON_AddItemToObject(j, "concurrency", concurrency_json(ctx));
    cJSON *ck = cJSON_AddObjectToObject(j, "checksums"); /* additional checksums: replicator/copy.c */
    cJSON_AddNumberToObject(ck, "sent", (double)ctx->checksums_sent);
    cJSON_AddBoolToObject(ck, "target_refused", ctx->dst_no_checksums);
    cJSON_AddBoolToObject(ck, "source_refused", ctx->src_no_checksum_mode);
    cJSON_AddItemToObject(j, "pass_details", passes_json(r));
    cJSON *f = cJSON_AddArrayToObject(j, "failures");
    for (size_t i = 0; i < ctx->nfailures; i++) cJSON_AddItemToArray(f, cJSON_CreateString(ctx->failures[i]));
    cJSON *x = cJSON_AddArrayToObject(j, "deleted_at_source");
    for (size_t i = 0; i < ctx->nextras; i++) cJSON_AddItemToArray(x, cJSON_CreateString(ctx->extras[i]));
    if (r->manifest_path[0]) cJSON_AddStringToObject(j, "manifest", r->manifest_path);
    if (r->message[0]) cJSON_AddStringToObject(j, "message", r->message);
    char fallback[1200] = "";
    if (ctx->nfailures)
        snprintf(fallback, sizeof fallback, "%llu object(s) failed after retries, e.g. %s",
                 (unsigned long long)ctx->total.failed, ctx->failures[0]);
    notify_explain(j, exit_code, fallback[0] ? fallback : NULL);
    return j;
}

/* The end of the newest successful run recorded in the state folder's manifests (at most the newest 50 looked
 * at), or -1. */
static double last_success_local(const char *state)
{
    double t = -1;
    size_t n = 0;
    char **list = state ? state_manifests(state, &n) : NULL;
    for (size_t i = 0; i < n && i < 50 && t < 0; i++) {
        struct manifest_summary ms;
        char merr[256];
        if (manifest_summary_read(list[i], &ms, merr, sizeof merr) != 0) continue;
        if (ms.trailer_found && rep_result_successful(rep_result_from_name(ms.result))) t = (double)ms.trailer.ended;
        manifest_summary_free(&ms);
    }
    state_free_list(list, n);
    return t;
}

/* --metrics-file: this run's samples, and the last success kept across failed runs (from the file itself, else
 * the local manifests), so "time() - replicate_last_success_timestamp_seconds" keeps growing while backups fail. */
static void write_metrics(const struct run *r)
{
    const struct rep_options *o = r->o;
    const struct rep_ctx *ctx = r->ctx;
    if (!o->metrics_file || o->dry_run) return;
    double last_ok = -1;
    if (rep_result_successful(r->result)) last_ok = (double)r->ended;
    else if (!metrics_read(o->metrics_file, "replicate_last_success_timestamp_seconds", o->dst_url, &last_ok))
        last_ok = last_success_local(r->state);
    struct metric_sample m[] = {
        {"replicate_last_run_timestamp_seconds", "End of the last backup run (Unix time).", (double)r->ended},
        {"replicate_last_run_exit_code", "Exit code of the last backup run (0 ok, 1 failed, 2 usage, 3 refused, "
                                         "4 not converged, 130 interrupted).", rep_result_exit(r->result)},
        {"replicate_last_run_duration_seconds", "Duration of the last backup run.", round_ms(r->duration)},
        {"replicate_objects_copied", "Objects copied by the last backup run.", (double)ctx->total.copied},
        {"replicate_bytes_copied", "Bytes copied by the last backup run.", (double)ctx->total.bytes},
        {"replicate_objects_failed", "Objects the last backup run failed to copy.", (double)ctx->total.failed},
        {"replicate_gap_seconds", "Duration of the last pass that ran without a maintenance flag.",
         round_ms(r->gap)},
        {"replicate_last_success_timestamp_seconds", "End of the last successful backup run (Unix time).", last_ok},
    };
    size_t n = sizeof m / sizeof *m - (last_ok < 0 ? 1 : 0); /* never a success: no sample, the alert's absent() */
    char err[4400];
    if (metrics_write(o->metrics_file, o->dst_url, m, n, err, sizeof err) != 0)
        s3_log(S3_LOG_WARN, "cannot write the metrics: %s", err);
}

void run_print_pass(const struct rep_options *o, int n, const struct pass_result *p)
{
    char b[32];
    rep_fmt_bytes(p->st.bytes, b, sizeof b);
    rep_say(o, "pass %d%s: listed %llu, copied %llu (%s), unchanged %llu, failed %llu, %.2fs\n", n,
        p->maintenance ? " (maintenance on)" : "", (unsigned long long)p->st.listed, (unsigned long long)p->st.copied,
        b, (unsigned long long)p->st.skipped, (unsigned long long)p->st.failed, p->duration);
}


/* The human summary: totals, the gap, throttling, checksums, what was deleted at the source or is archived. */
static void say_summary(const struct run *r)
{
    const struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    char b[32];
    rep_fmt_bytes(ctx->total.bytes, b, sizeof b);
    rep_say(o, "%s: %llu objects %s (%s) in %d pass%s, %.1fs; failed %llu; deleted at source (kept) %llu\n",
            rep_result_exit(r->result) == EXIT_OK ? (o->dry_run ? "dry run" : "done") : rep_result_name(r->result),
            (unsigned long long)ctx->total.copied, o->dry_run ? "would be copied" : "copied", b, r->passes,
            r->passes == 1 ? "" : "es", r->duration, (unsigned long long)ctx->total.failed,
            (unsigned long long)ctx->total.extra);
    if (r->gap_zero_by_flag) rep_say(o, "gap: 0s (the final pass ran with the maintenance flag on)\n");
    else if (r->passes > 0)
        rep_say(o, "gap: %.2fs (the last pass ran without a maintenance flag: writes in that window may be missed)\n",
                r->gap);
    double lowest;
    unsigned long throttled;
    concurrency_totals(ctx, &lowest, &throttled);
    if (throttled > 0)
        rep_say(o, "throttled: %lu replies said slow down (503/SlowDown); concurrency backed off to %.0f of %d "
                   "jobs (%d at the end)\n", throttled, floor(lowest), o->jobs, rep_jobs(ctx));
    if (ctx->checksums_sent || ctx->dst_no_checksums)
        rep_say(o, "checksums: %llu objects written with the source's additional checksum, checked by the target%s\n",
                (unsigned long long)ctx->checksums_sent,
                ctx->dst_no_checksums ? "; the target refuses them: the rest went without" : "");
    for (size_t i = 0; i < ctx->nextras; i++) rep_say(o, "  deleted at source, kept in target: %s\n", ctx->extras[i]);
    if (ctx->total.extra > ctx->nextras)
        rep_say(o, "  ... and %llu more\n", (unsigned long long)(ctx->total.extra - ctx->nextras));
    for (size_t i = 0; i < ctx->narchived; i++) fprintf(stderr, "replicate: archived, not copied: %s\n", ctx->archived[i]);
    if (ctx->total.archived > ctx->narchived)
        fprintf(stderr, "replicate: ... and %llu more archived objects\n",
                (unsigned long long)(ctx->total.archived - ctx->narchived));
}

static void log_requests(const struct run *r)
{
    if (!r->opened || !s3_log_enabled(S3_LOG_DEBUG)) return;
    struct s3_loop_stats ls;
    s3_loop_stats(r->ctx->loop, &ls);
    s3_log(S3_LOG_DEBUG, "requests: %llu (GET %llu, HEAD %llu, PUT %llu, POST %llu, DELETE %llu), retries %llu",
           (unsigned long long)ls.requests, (unsigned long long)ls.get, (unsigned long long)ls.head,
           (unsigned long long)ls.put, (unsigned long long)ls.post, (unsigned long long)ls.del,
           (unsigned long long)ls.retries);
}

void run_report(struct run *r)
{
    const struct rep_ctx *ctx = r->ctx;
    const struct rep_options *o = r->o;
    bool ok = rep_result_exit(r->result) == EXIT_OK;
    if (r->passes > 0 || ok) say_summary(r);
    for (size_t i = 0; i < ctx->nfailures; i++) s3_log_user(S3_LOG_ERROR, "FAILED %s", ctx->failures[i]);
    if (ctx->total.failed > ctx->nfailures)
        s3_log_user(S3_LOG_ERROR, "... and %llu more failures", (unsigned long long)(ctx->total.failed - ctx->nfailures));
    if (r->message[0]) s3_log_user(S3_LOG_ERROR, "%s", r->message);

    cJSON *js = summary_json(r);
    if (js && r->jstored) cJSON_AddItemToObject(js, "manifest_stored", r->jstored);
    else cJSON_Delete(r->jstored);
    r->jstored = NULL;
    if (o->json && js) {
        char *t = cJSON_Print(js);
        if (t) printf("%s\n", t);
        free(t);
    }
    if (!ok && js) notify_failure(o, js);
    cJSON_Delete(js);
    write_metrics(r);
    log_requests(r);
}
