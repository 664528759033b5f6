/* --status: the runs recorded in a backup (newest first), the last successful one and its age (--max-age),
 * and the last restore drill and its age (--max-drill-age). Only reads from S3; the only files it writes are
 * temporary copies of manifests, removed before it returns. Must not: write to S3. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "manifest/manifest.h"
#include "replicator/lease.h"
#include "replicator/output.h"
#include "replicator/result.h"
#include "replicator/run.h"
#include "replicator/shard.h"
#include "replicator/store.h"
#include "replicator/verify.h"
#include "s3/log.h"

#define STATUS_MANIFESTS_MAX 100 /* newest manifests --status looks at for the last successful run */
#define RECENT_RUNS 10           /* runs --status lists */
#define DRILLS_MAX 50            /* newest drill records --status reads for the last clean drill */

/* The last drill and the last clean drill recorded for this backup (.replicate/drills/<id>.json), or NULL. */
static void find_drills(struct rep_ctx *ctx, cJSON **last, cJSON **clean)
{
    const struct rep_options *o = ctx->o;
    struct stored_manifest *sm = NULL;
    size_t n = 0;
    unsigned long total = 0;
    char err[600];
    *last = *clean = NULL;
    if (store_list_records(ctx, ctx->dst_r, o->dst_bucket, DRILL_PREFIX, ".json", DRILLS_MAX, &sm, &n, &total, err,
                           sizeof err) != 0) {
        s3_log_user(S3_LOG_WARN, "cannot list the drills in s3://%s/%s: %s", o->dst_bucket, DRILL_PREFIX,
                err);
        return;
    }
    for (size_t i = 0; i < n && !*clean; i++) {
        struct s3_request_spec s = {.method = "GET", .bucket = o->dst_bucket, .key = sm[i].key, .max_body = 1 << 20};
        struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
        cJSON *j = r && r->err == S3_OK ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
        s3_response_free(r);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "backup"), *res = cJSON_GetObjectItemCaseSensitive(j, "result");
        if (!cJSON_IsString(b) || !cJSON_IsString(res) || !store_manifest_for(o->dst_bucket, o->dst_prefix, b->valuestring)) {
            cJSON_Delete(j);
            continue;
        }
        bool ok = strcmp(res->valuestring, "ok") == 0;
        if (!*last) *last = ok ? cJSON_Duplicate(j, 1) : j;
        if (ok) *clean = j;
        else if (*last != j) cJSON_Delete(j);
    }
    store_free(sm, n);
}

static void print_drill(FILE *f, const char *title, const cJSON *d, double now)
{
    const cJSON *id = cJSON_GetObjectItem(d, "drill_id"), *run = cJSON_GetObjectItem(d, "run_id"),
                *res = cJSON_GetObjectItem(d, "result"), *end = cJSON_GetObjectItem(d, "ended"),
                *rd = cJSON_GetObjectItem(d, "objects_read"), *fl = cJSON_GetObjectItem(d, "objects_failed");
    char age[80];
    rep_fmt_age(cJSON_IsNumber(end) ? now - end->valuedouble : 0, age, sizeof age);
    fprintf(f, "%s: %s of run %s: %s, %.0f versions read, %.0f failed, %s\n", title,
            cJSON_IsString(id) ? id->valuestring : "?", cJSON_IsString(run) ? run->valuestring : "?",
            cJSON_IsString(res) ? res->valuestring : "?", cJSON_IsNumber(rd) ? rd->valuedouble : 0,
            cJSON_IsNumber(fl) ? fl->valuedouble : 0, age);
}

static double round3(double v)
{
    return round(v * 1000) / 1000;
}

/* ======================================== --status ======================================== */

struct run_info {
    char *key; /* the manifest's key in the target (a sharded run's: of the first shard manifest read) */
    struct manifest_summary sum;
    struct shard_group *g; /* a run made of shard manifests (--run-id), or NULL; then g->agg is its summary */
    int bad_shards;        /* shards of g that are missing, unfinished or failed */
};

static const struct manifest_summary *ri_sum(const struct run_info *r)
{
    return r->g ? &r->g->agg : &r->sum;
}

static void run_info_free(struct run_info *r)
{
    if (r->g) shard_group_free(r->g);
    else manifest_summary_free(&r->sum);
    memset(r, 0, sizeof *r);
}

static cJSON *shards_json(const struct run_info *r)
{
    cJSON *j = cJSON_CreateObject();
    char text[4096];
    cJSON_AddNumberToObject(j, "count", r->g->count);
    cJSON_AddNumberToObject(j, "ok", r->g->count - r->bad_shards);
    cJSON *p = cJSON_AddArrayToObject(j, "problems");
    shard_group_problems(r->g, text, sizeof text);
    for (char *line = strtok(text, "\n"); p && line; line = strtok(NULL, "\n"))
        cJSON_AddItemToArray(p, cJSON_CreateString(line));
    return j;
}

static cJSON *run_json(const struct run_info *r, double now)
{
    const struct manifest_summary *s = ri_sum(r);
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    char iso[40];
    cJSON_AddStringToObject(j, "run_id", s->run_id ? s->run_id : "");
    cJSON_AddStringToObject(j, "manifest", r->key);
    if (s->source) cJSON_AddStringToObject(j, "source", s->source);
    if (s->tool_version) cJSON_AddStringToObject(j, "tool_version", s->tool_version);
    cJSON_AddStringToObject(j, "result", s->trailer_found && s->result ? s->result : "unfinished");
    rep_fmt_time(s->started, true, iso, sizeof iso);
    cJSON_AddStringToObject(j, "started", iso);
    if (s->trailer_found) {
        rep_fmt_time(s->trailer.ended, true, iso, sizeof iso);
        cJSON_AddStringToObject(j, "ended", iso);
        cJSON_AddNumberToObject(j, "ended_unix", (double)s->trailer.ended);
        cJSON_AddNumberToObject(j, "age_seconds", round(now - (double)s->trailer.ended));
        cJSON_AddNumberToObject(j, "objects_copied", (double)s->trailer.objects);
        cJSON_AddNumberToObject(j, "bytes_copied", (double)s->trailer.bytes);
        cJSON_AddNumberToObject(j, "objects_failed", (double)s->trailer.failed);
        cJSON_AddNumberToObject(j, "passes", s->trailer.passes);
        cJSON_AddNumberToObject(j, "gap_seconds", round3(s->trailer.gap));
        cJSON_AddBoolToObject(j, "maintenance", s->trailer.maintenance);
    } else {
        cJSON_AddNullToObject(j, "ended");
        cJSON_AddNumberToObject(j, "passes", s->passes);
    }
    cJSON_AddNumberToObject(j, "corrupt_lines", s->corrupt_lines);
    if (r->g) cJSON_AddItemToObject(j, "shards", shards_json(r));
    return j;
}

static void print_run(FILE *f, const char *title, const struct run_info *r, double now)
{
    if (!f) return;
    const struct manifest_summary *s = ri_sum(r);
    char when[40], age[80], b[32];
    fprintf(f, "%s: %s\n", title, s->run_id ? s->run_id : "?");
    fprintf(f, "  result:   %s\n", s->trailer_found && s->result ? s->result : "unfinished (no trailer)");
    if (r->g) {
        char text[4096];
        fprintf(f, "  shards:   %d of %d ok\n", r->g->count - r->bad_shards, r->g->count);
        shard_group_problems(r->g, text, sizeof text);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) fprintf(f, "    %s\n", line);
    }
    if (s->source) fprintf(f, "  source:   %s\n", s->source);
    rep_fmt_time(s->started, false, when, sizeof when);
    fprintf(f, "  started:  %s\n", when);
    if (!s->trailer_found) {
        fprintf(f, "  the manifest has no trailer: the run did not finish writing it\n");
        return;
    }
    rep_fmt_time(s->trailer.ended, false, when, sizeof when);
    rep_fmt_age(now - (double)s->trailer.ended, age, sizeof age);
    fprintf(f, "  ended:    %s (%s)\n", when, age);
    rep_fmt_bytes(s->trailer.bytes, b, sizeof b);
    fprintf(f, "  copied:   %llu objects, %s (%llu bytes); failed %llu\n",
            (unsigned long long)s->trailer.objects, b, (unsigned long long)s->trailer.bytes,
            (unsigned long long)s->trailer.failed);
    fprintf(f, "  passes:   %d\n", s->trailer.passes);
    if (s->trailer.maintenance)
        fprintf(f, "  gap:      0s (the final pass ran under the maintenance flag)\n");
    else
        fprintf(f, "  gap:      %.2fs (the last pass ran without a maintenance flag)\n", s->trailer.gap);
    if (s->corrupt_lines)
        fprintf(f, "  warning:  %d corrupt line(s) in its manifest were skipped\n", s->corrupt_lines);
}

/* The runs --status has taken in so far, newest first. */
struct status_runs {
    struct run_info last, success;
    bool have_last, have_success, success_is_last;
    cJSON *recent;
    int nrecent;
};

/* Takes in one run (the caller's *ri is consumed): listed among the recent ones, kept as the last run and/or
 * the last successful one, else freed. */
static void consider(struct status_runs *st, struct run_info *ri, double now)
{
    if (ri->g) ri->bad_shards = shard_group_finish(ri->g);
    const struct manifest_summary *s = ri_sum(ri);
    bool ok = s->trailer_found && rep_result_successful(rep_result_from_name(s->result));
    if (st->nrecent < RECENT_RUNS) {
        cJSON_AddItemToArray(st->recent, run_json(ri, now));
        st->nrecent++;
    }
    if (!st->have_last) {
        st->last = *ri;
        st->have_last = true;
        if (ok) {
            st->have_success = st->success_is_last = true;
            st->success = *ri;
        }
    } else if (ok && !st->have_success) {
        st->success = *ri;
        st->have_success = true;
    } else {
        run_info_free(ri);
    }
    memset(ri, 0, sizeof *ri);
}

/* Everything one --status gathers before it reports. */
struct status {
    struct rep_ctx *ctx;
    const struct rep_options *o;
    int exit_code;
    struct stored_manifest *sm;
    size_t n;
    unsigned long total;
    struct status_runs st;
    struct run_info pending; /* a sharded run whose manifests are still being read */
    size_t other_targets, examined;
    cJSON *skipped;
    const char *message;
    char msgbuf[1200];
    cJSON *last_drill, *clean_drill, *lease;
    char lerr[800];
    double now, age, drill_age;
    bool stale, shards_bad, drill_stale;
};

static void skip_note(struct status *s, const char *key, const char *why)
{
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "manifest", key);
    cJSON_AddStringToObject(x, "error", why);
    cJSON_AddItemToArray(s->skipped, x);
}

/* Reads the stored manifest sm[i] into the runs; -1 when out of memory. */
static int take_manifest(struct status *s, size_t i)
{
    const struct rep_options *o = s->o;
    struct stored_manifest *sm = s->sm;
    char err[1024];
    char path[4096], shown[1200];
    snprintf(shown, sizeof shown, "s3://%s/%s", o->dst_bucket, sm[i].key);
    s->examined++;
    if (store_download(s->ctx->dst_r, o->dst_bucket, &sm[i], true, path, sizeof path, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_WARN, "cannot read the manifest %s: %s; skipped", shown, err);
        skip_note(s, sm[i].key, err);
        return 0;
    }
    struct run_info ri = {.key = sm[i].key};
    int r = manifest_summary_read(path, &ri.sum, err, sizeof err);
    unlink(path);
    if (r != 0) {
        /* the temporary path means nothing to the user: name the stored manifest */
        const char *why = store_strip_path(err, path);
        s3_log_user(S3_LOG_WARN, "the manifest %s is corrupt or truncated (%s); skipped",
                shown, why);
        skip_note(s, sm[i].key, why);
        return 0;
    }
    if (!store_manifest_for(o->dst_bucket, o->dst_prefix, ri.sum.target)) {
        s->other_targets++;
        manifest_summary_free(&ri.sum);
        return 0;
    }
    if (ri.sum.corrupt_lines)
        s3_log_user(S3_LOG_WARN, "the manifest %s has %d corrupt line(s); they were skipped",
                shown, ri.sum.corrupt_lines);
    if (ri.sum.shard_count > 0 && s->pending.g && shard_group_add(s->pending.g, &ri.sum)) {
        manifest_summary_free(&ri.sum);
        return 0;
    }
    if (s->pending.g) consider(&s->st, &s->pending, s->now);
    if (ri.sum.shard_count > 0) {
        s->pending.key = sm[i].key;
        s->pending.g = shard_group_new(&ri.sum);
        manifest_summary_free(&ri.sum);
        if (!s->pending.g) {
            s3_log_user(S3_LOG_ERROR, "out of memory");
            return -1;
        }
        return 0;
    }
    consider(&s->st, &ri, s->now);
    return 0;
}

/* The runs recorded in the target, newest first, until the last successful one and RECENT_RUNS are known;
 * returns the exit code so far. */
static int read_runs(struct status *s)
{
    struct rep_ctx *ctx = s->ctx;
    char err[1024];
    int src = store_list(ctx, ctx->dst_r, ctx->o->dst_bucket, STATUS_MANIFESTS_MAX + SHARDS_MAX, &s->sm, &s->n,
                         &s->total, err, sizeof err);
    if (src != 0) {
        snprintf(s->msgbuf, sizeof s->msgbuf, "%s", err);
        s->message = s->msgbuf;
        s3_log_user(S3_LOG_ERROR, "cannot read the runs recorded in the target: %s", err);
        return ctx->interrupted              ? EXIT_INTERRUPTED
               : src == STORE_NO_BUCKET ? EXIT_USAGE
                                             : EXIT_FAILED;
    }
    /* the shard manifests of one run are next to each other (they share its id): read them all */
    for (size_t i = 0; i < s->n && !ctx->interrupted &&
                       (s->pending.g || (s->examined < STATUS_MANIFESTS_MAX &&
                                         (!s->st.have_success || s->st.nrecent < RECENT_RUNS)));
         i++)
        if (take_manifest(s, i) != 0) return EXIT_FAILED;
    if (s->pending.g) consider(&s->st, &s->pending, s->now);
    return ctx->interrupted ? EXIT_INTERRUPTED : EXIT_OK;
}

/* The ages against --max-age and --max-drill-age, the shards of the last run, the drills and the lease. */
static int judge(struct status *s)
{
    const struct rep_options *o = s->o;
    struct status_runs *st = &s->st;
    int exit_code = EXIT_OK;
    s->age = st->have_success ? s->now - (double)ri_sum(&st->success)->trailer.ended : 0;
    s->stale = !st->have_success || (o->max_age > 0 && s->age > o->max_age);
    if (s->stale) exit_code = EXIT_STALE;
    /* the last run made of shards lacks one, or one failed: say so and fail, even if an older run was good */
    s->shards_bad = st->have_last && st->last.g && st->last.bad_shards > 0;
    if (s->shards_bad) {
        snprintf(s->msgbuf, sizeof s->msgbuf, "the last run, %s, is incomplete: %d of its %d shards %s not ok",
                 st->last.g->run_id, st->last.bad_shards, st->last.g->count, st->last.bad_shards == 1 ? "is" : "are");
        s->message = s->msgbuf;
        if (exit_code == EXIT_OK) exit_code = EXIT_FAILED;
    }
    find_drills(s->ctx, &s->last_drill, &s->clean_drill);
    /* informational: a lease that cannot be read fails nothing */
    s->lease = lease_read_record(s->ctx, s->lerr, sizeof s->lerr);
    const cJSON *cend = cJSON_GetObjectItem(s->clean_drill, "ended");
    s->drill_age = cJSON_IsNumber(cend) ? s->now - cend->valuedouble : 0;
    s->drill_stale = o->max_drill_age > 0 && (!s->clean_drill || s->drill_age > o->max_drill_age);
    if (s->drill_stale) exit_code = EXIT_STALE;
    return exit_code;
}

static void print_runs(const struct status *s, FILE *hf)
{
    const struct rep_options *o = s->o;
    const struct status_runs *st = &s->st;
    fprintf(hf, "target: %s (%lu manifest%s in %s)\n", o->dst_url, s->total, s->total == 1 ? "" : "s",
            MANIFEST_PREFIX);
    if (st->have_last)
        print_run(hf, "last run", &st->last, s->now);
    else if (s->other_targets)
        fprintf(hf,
                "no run recorded for %s (the %zu manifest%s read %s to other prefixes of the bucket)\n",
                o->dst_url, s->other_targets, s->other_targets == 1 ? "" : "s",
                s->other_targets == 1 ? "belongs" : "belong");
    else
        fprintf(hf, "no run recorded in the target\n");
    if (st->have_success && !st->success_is_last)
        print_run(hf, "last successful run", &st->success, s->now);
    else if (st->have_success)
        fprintf(hf, "the last run was successful\n");
    else if (st->have_last)
        fprintf(hf, "no successful run among the newest %zu manifest%s examined\n", s->examined,
                s->examined == 1 ? "" : "s");
    if (st->nrecent > 1) {
        fprintf(hf, "recent runs (newest first):\n");
        const cJSON *it;
        cJSON_ArrayForEach(it, st->recent) {
            const cJSON *id = cJSON_GetObjectItem(it, "run_id"), *res = cJSON_GetObjectItem(it, "result"),
                        *en = cJSON_GetObjectItem(it, "ended"), *ob = cJSON_GetObjectItem(it, "objects_copied"),
                        *gp = cJSON_GetObjectItem(it, "gap_seconds");
            fprintf(hf, "  %-24s %-14s ended %-22s copied %-8.0f gap %.2fs\n",
                    cJSON_IsString(id) ? id->valuestring : "?", cJSON_IsString(res) ? res->valuestring : "-",
                    cJSON_IsString(en) ? en->valuestring : "-", cJSON_IsNumber(ob) ? ob->valuedouble : 0,
                    cJSON_IsNumber(gp) ? gp->valuedouble : 0);
        }
    }
}

static void print_health(const struct status *s, FILE *hf)
{
    const struct rep_options *o = s->o;
    const cJSON *lease = s->lease, *last_drill = s->last_drill, *clean_drill = s->clean_drill;
    if (lease && cJSON_IsObject(lease)) {
        const char *state = cJSON_GetObjectItem(lease, "state")->valuestring;
        bool held = strcmp(state, "held") == 0 && !cJSON_IsTrue(cJSON_GetObjectItem(lease, "expired"));
        fprintf(hf, "lease: %s by run %s (host %s, pid %.0f)%s%s\n",
                held ? "held" : strcmp(state, "held") == 0 ? "expired, was held" : state,
                cJSON_GetObjectItem(lease, "run_id")->valuestring, cJSON_GetObjectItem(lease, "host")->valuestring,
                cJSON_GetObjectItem(lease, "pid")->valuedouble, held ? " until " : "",
                held ? cJSON_GetObjectItem(lease, "expires_at")->valuestring : "");
    } else if (lease) {
        fprintf(hf, "lease: none (no run has taken it yet)\n");
    } else {
        fprintf(hf, "lease: unknown (%s)\n", s->lerr);
    }
    if (last_drill) print_drill(hf, "last drill", last_drill, s->now);
    if (clean_drill && clean_drill != last_drill) print_drill(hf, "last clean drill", clean_drill, s->now);
    if (!last_drill) fprintf(hf, "no restore drill recorded (replicate --restore-drill %s)\n", o->dst_url);
    char a[80], m[80];
    if (o->max_drill_age > 0) {
        rep_fmt_age(o->max_drill_age, m, sizeof m);
        char *ago = strstr(m, " ago");
        if (ago) *ago = '\0';
        if (clean_drill) rep_fmt_age(s->drill_age, a, sizeof a);
        fprintf(hf, "drills: %s: %s%s (max drill age %s)\n", s->drill_stale ? "STALE" : "fresh",
                clean_drill ? "the last clean drill ended " : "no clean drill is recorded", clean_drill ? a : "", m);
    }
    if (s->shards_bad) fprintf(hf, "status: FAILED: %s\n", s->msgbuf);
    if (!s->st.have_success) {
        fprintf(hf, "status: STALE: no successful run is recorded in the target\n");
    } else if (o->max_age > 0) {
        rep_fmt_age(s->age, a, sizeof a);
        rep_fmt_age(o->max_age, m, sizeof m);
        char *ago = strstr(m, " ago");
        if (ago) *ago = '\0';
        fprintf(hf, "status: %s: the last successful run ended %s (max age %s)\n",
                s->stale ? "STALE" : "fresh", a, m);
    }
}

/* Prints the --json report; takes the recent runs, the lease and the skipped list out of s. */
static void print_json(struct status *s)
{
    const struct rep_options *o = s->o;
    struct status_runs *st = &s->st;
    int exit_code = s->exit_code;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "mode", "status");
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddNumberToObject(j, "manifests", (double)s->total);
    if (st->have_last)
        cJSON_AddItemToObject(j, "last_run", run_json(&st->last, s->now));
    else
        cJSON_AddNullToObject(j, "last_run");
    if (st->have_success)
        cJSON_AddItemToObject(j, "last_success", run_json(&st->success, s->now));
    else
        cJSON_AddNullToObject(j, "last_success");
    if (o->max_age > 0)
        cJSON_AddNumberToObject(j, "max_age_seconds", o->max_age);
    else
        cJSON_AddNullToObject(j, "max_age_seconds");
    cJSON_AddStringToObject(j, "result",
                            exit_code == EXIT_OK      ? "fresh"
                            : exit_code == EXIT_STALE ? "stale"
                                                      : "failed");
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    cJSON_AddItemToObject(j, "runs", st->recent);
    st->recent = NULL;
    cJSON_AddItemToObject(j, "last_drill", s->last_drill ? cJSON_Duplicate(s->last_drill, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "last_clean_drill",
                          s->clean_drill ? cJSON_Duplicate(s->clean_drill, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(j, "lease", s->lease ? s->lease : cJSON_CreateNull());
    s->lease = NULL;
    cJSON_AddItemToObject(j, "skipped_manifests", s->skipped);
    s->skipped = NULL;
    if (s->message) cJSON_AddStringToObject(j, "message", s->message);
    char *t = cJSON_Print(j);
    if (t) printf("%s\n", t);
    free(t);
    cJSON_Delete(j);
}

static void status_free(struct status *s)
{
    struct status_runs *st = &s->st;
    cJSON_Delete(s->skipped);
    cJSON_Delete(s->lease);
    cJSON_Delete(st->recent);
    if (s->clean_drill != s->last_drill) cJSON_Delete(s->clean_drill);
    cJSON_Delete(s->last_drill);
    if (!st->success_is_last && st->have_success) run_info_free(&st->success);
    if (st->have_last) run_info_free(&st->last);
    run_info_free(&s->pending);
    store_free(s->sm, s->n);
}

int run_status(const struct rep_options *o)
{
    struct rep_ctx ctx_s, *ctx = &ctx_s;
    int rc = rep_open(ctx, o, false);
    if (rc != EXIT_OK) {
        rep_close(ctx);
        return rc;
    }
    struct rep_signals sg;
    rep_signals_start(ctx, &sg);
    FILE *hf = rep_human(o);
    struct status s = {.ctx = ctx, .o = o, .st = {.recent = cJSON_CreateArray()}, .skipped = cJSON_CreateArray(),
                       .now = (double)time(NULL)};
    s.exit_code = read_runs(&s);
    if (s.exit_code == EXIT_OK) {
        s.exit_code = judge(&s);
        if (hf) {
            print_runs(&s, hf);
            print_health(&s, hf);
            fflush(hf);
        }
    }
    if (o->json) print_json(&s);
    int exit_code = s.exit_code;
    status_free(&s);
    rep_signals_stop(ctx, &sg);
    rep_close(ctx);
    return exit_code;
}
