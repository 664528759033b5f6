/* --restore, the restore itself (see replicator/restore.h): the restore point (picked by replicator/restore.c)
 * merge-joined with DEST's listing, the plan, the copies back, the report and the local record of each restore.
 * Must not: write to the backup (it is a struct s3_reader here), delete anything, pick the run. */
#include <cJSON.h>
#include <errno.h>
#include <ev.h>
#include <openssl/evp.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "replicator/copy.h"
#include "replicator/join.h"
#include "replicator/notify.h"
#include "replicator/output.h"
#include "replicator/restore.h"
#include "replicator/run.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/store.h"
#include "replicator/target.h"
#include "replicator/verify.h"
#include "s3/log.h"
#include "s3/ops.h"

#define JSON_KEYS_MAX 10000     /* per list in the --json report */

/* ======================================== the restore ======================================== */

/* The restore point as a join input: objects named by their source key, carrying the backup's version. */
struct point_input {
    struct manifest_point *pt;
    const struct manifest_point_entry *e; /* the entry behind the head */
    struct s3_object_info oi;
    char err[300];
};

static enum s3_list_status point_next(void *ud, const struct s3_object_info **out)
{
    struct point_input *pi = ud;
    int g = manifest_point_next(pi->pt, &pi->e, pi->err, sizeof pi->err);
    if (g <= 0) return g < 0 ? S3_LIST_ERROR : S3_LIST_END;
    pi->oi = (struct s3_object_info){.key = (char *)pi->e->key, .size = pi->e->size,
                                     .etag = (char *)pi->e->target_etag, .last_modified = (char *)pi->e->last_modified,
                                     .version_id = (char *)pi->e->version_id};
    *out = &pi->oi;
    return S3_LIST_OBJECT;
}

static const char *point_error(void *ud)
{
    return ((struct point_input *)ud)->err;
}

struct restore_counts {
    uint64_t points, missing, missing_bytes, same, conflicts, extra, unrecorded;
    uint64_t copied, bytes, failed;
    uint64_t content_checked; /* DEST objects read to compare content (same size, other ETag) */
};

struct rpass {
    struct rep_ctx *ctx;
    const struct rep_options *o;
    const struct restore_run *run;
    bool execute; /* false: plan only */
    struct point_input pi;
    struct s3_lister *dl;
    struct join join;
    size_t src_plen, dst_plen;
    int inflight;
    bool stop, ended, finished, failed_listing;
    char error[700];
    ev_idle kick;
    struct restore_counts c;
    cJSON *jconflicts, *jextras, *jfailures; /* key lists for the report (first JSON_KEYS_MAX) */
};

static void rp_pump(struct rpass *rp);

static void rp_schedule(struct rpass *rp)
{
    if (!ev_is_active(&rp->kick)) ev_idle_start(s3_loop_ev(rp->ctx->loop), &rp->kick);
}

static void rp_kick(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(ev, w);
    rp_pump(w->data);
}

static void rp_ready(void *ud)
{
    rp_schedule(ud);
}

static void note(cJSON *list, const char *key, const char *why)
{
    if (!list || cJSON_GetArraySize(list) >= JSON_KEYS_MAX) return;
    if (!why) {
        cJSON_AddItemToArray(list, cJSON_CreateString(key));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "error", why);
    cJSON_AddItemToArray(list, o);
}

static void rp_failed(struct rpass *rp, const char *key, const char *why)
{
    rp->c.failed++;
    note(rp->jfailures, key, why);
    rep_note_failure(rp->ctx, key, why);
    s3_log(S3_LOG_ERROR, "FAILED %s: %s", key, why);
}

static void restored(struct copy_job *job, enum copy_result r, void *ud)
{
    struct rpass *rp = ud;
    rp->inflight--;
    switch (r) {
    case COPY_OK:
        rp->c.copied++;
        rp->c.bytes += copy_job_size(job);
        s3_log(S3_LOG_INFO, "restored %s (%llu bytes)", copy_job_dst_key(job), (unsigned long long)copy_job_size(job));
        break;
    case COPY_FAILED: rp_failed(rp, copy_job_dst_key(job), copy_job_error(job)); break;
    case COPY_VANISHED: rp_failed(rp, copy_job_dst_key(job), "the recorded version is gone from the backup"); break;
    case COPY_ARCHIVED:
        rp_failed(rp, copy_job_dst_key(job), "the recorded version is archived in the backup (InvalidObjectState): "
                                             "restore it there first (RestoreObject), then run again");
        break;
    case COPY_CANCELLED: break;
    }
    copy_job_free(job);
    rp_schedule(rp);
}

static void restore_one(struct rpass *rp, const struct manifest_point_entry *e)
{
    char *dk = NULL;
    if (asprintf(&dk, "%s%s", rp->o->dst_prefix, e->key + rp->src_plen) < 0) abort();
    struct s3_object_info src = {.key = (char *)e->target_key, .size = e->size, .etag = (char *)e->target_etag,
                                 .last_modified = (char *)e->last_modified, .version_id = (char *)e->version_id};
    rp->inflight++;
    if (!copy_start(rp->ctx, &src, dk, restored, rp)) abort();
    free(dk);
}

/* DEST already holds this key: the same content (the backup's version, or the source's ETag) or not. */
static bool same_content(const struct manifest_point_entry *e, const struct s3_object_info *d)
{
    return d->size == e->size && d->etag && (strcmp(d->etag, e->target_etag) == 0 || strcmp(d->etag, e->etag) == 0);
}

/* The content MD5 a restore-point entry is known by (its version's or the source's ETag when that is an MD5). */
static const char *known_md5(const struct manifest_point_entry *e)
{
    return s3_etag_is_md5(e->target_etag) ? e->target_etag : s3_etag_is_md5(e->etag) ? e->etag : NULL;
}

/* Same size, other ETag (another part layout: e.g. what a killed restore wrote multipart): read DEST's object and
 * compare its MD5 with the recorded one, then decide as for any key in DEST. */
struct content_check {
    struct rpass *rp;
    char *f[6]; /* key, target_key, etag, target_etag, last_modified, version_id */
    uint64_t size;
    char dst_key[2048];
    EVP_MD_CTX *md;
};

static bool check_body(const void *data, size_t len, void *ud)
{
    return EVP_DigestUpdate(((struct content_check *)ud)->md, data, len) == 1;
}

static void check_reset(void *ud)
{
    EVP_DigestInit_ex(((struct content_check *)ud)->md, EVP_md5(), NULL);
}

static void decide(struct rpass *rp, const struct manifest_point_entry *e, const char *dst_key, bool same);

static void check_done(struct s3_response *r, void *ud)
{
    struct content_check *cc = ud;
    struct rpass *rp = cc->rp;
    rp->inflight--;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int l = 0;
    char hex[33] = "";
    if (r->err == S3_OK && EVP_DigestFinal_ex(cc->md, md, &l) && l == 16) s3_md5_hex(md, hex);
    struct manifest_point_entry e = {.key = cc->f[0], .target_key = cc->f[1], .etag = cc->f[2],
                                     .target_etag = cc->f[3], .last_modified = cc->f[4], .version_id = cc->f[5],
                                     .size = cc->size};
    if (r->err != S3_ERR_CANCELLED) {
        const char *want = known_md5(&e);
        decide(rp, &e, cc->dst_key, r->err == S3_OK && want && strcasecmp(hex, want) == 0);
    }
    s3_response_free(r);
    for (int i = 0; i < 6; i++) free(cc->f[i]);
    EVP_MD_CTX_free(cc->md);
    free(cc);
    rp_schedule(rp);
}

static void check_content(struct rpass *rp, const struct manifest_point_entry *e, const char *dst_key)
{
    struct content_check *cc = calloc(1, sizeof *cc);
    if (!cc) abort();
    cc->rp = rp;
    const char *v[6] = {e->key, e->target_key, e->etag, e->target_etag, e->last_modified, e->version_id};
    for (int i = 0; i < 6; i++)
        if (v[i] && !(cc->f[i] = strdup(v[i]))) abort();
    cc->size = e->size;
    snprintf(cc->dst_key, sizeof cc->dst_key, "%s", dst_key);
    cc->md = EVP_MD_CTX_new();
    if (!cc->md || !EVP_DigestInit_ex(cc->md, EVP_md5(), NULL)) abort();
    struct s3_get_args a = {.bucket = rp->o->dst_bucket, .key = cc->dst_key, .on_body = check_body,
                            .on_reset = check_reset, .body_ud = cc};
    rp->inflight++;
    rp->c.content_checked++;
    if (!s3_get_object(rp->ctx->dst_r, &a, check_done, cc)) abort();
}

/* A restore-point key: in DEST with the same content (same), in DEST otherwise (dst_key set: a conflict), or
 * missing: count it and, when carrying out the plan, copy what is to be copied. */
static void decide(struct rpass *rp, const struct manifest_point_entry *e, const char *dst_key, bool same)
{
    if (same) {
        rp->c.same++;
        return;
    }
    if (dst_key) {
        rp->c.conflicts++;
        note(rp->jconflicts, dst_key, NULL);
        if (!rp->o->overwrite) return;
    } else {
        rp->c.missing++;
        rp->c.missing_bytes += e->size;
    }
    if (!e->version_id) { /* a manifest written before versions were recorded for every object */
        rp->c.unrecorded++;
        if (rp->execute)
            rp_failed(rp, e->key, "the manifest names no version for it: restore an older run that copied it (--run)");
        return;
    }
    if (rp->execute && !rp->o->dry_run) restore_one(rp, e);
}

static void rp_pump(struct rpass *rp)
{
    struct rep_ctx *ctx = rp->ctx;
    if (ctx->interrupted) rp->stop = true;
    while (!rp->stop && rp->inflight < rep_jobs(rp->ctx)) {
        const struct s3_object_info *l, *d;
        enum join_status js = join_next(&rp->join, &l, &d);
        if (js == JOIN_WAIT) break;
        if (js == JOIN_END) {
            rp->ended = true;
            break;
        }
        if (js == JOIN_ERROR) {
            int side;
            const char *why = join_error(&rp->join, &side);
            snprintf(rp->error, sizeof rp->error, "%s: %s", side ? "listing the destination" : "the restore point",
                     why);
            rp->failed_listing = rp->stop = true;
            break;
        }
        const struct manifest_point_entry *e = l ? rp->pi.e : NULL;
        if (e) rp->c.points++;
        if (js == JOIN_RIGHT) { /* in DEST only: not part of the restore point; reported, never deleted */
            rp->c.extra++;
            note(rp->jextras, d->key, NULL);
            continue;
        }
        if (js == JOIN_BOTH && !same_content(e, d) && d->size == e->size && known_md5(e)) {
            check_content(rp, e, d->key);
            continue;
        }
        decide(rp, e, d ? d->key : NULL, js == JOIN_BOTH && same_content(e, d));
    }
    if ((rp->stop || rp->ended) && rp->inflight == 0 && !rp->finished) {
        rp->finished = true;
        ev_break(s3_loop_ev(ctx->loop), EVBREAK_ONE);
    }
}

static void on_progress(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct rpass *rp = w->data;
    char b[32];
    rep_fmt_bytes(rp->c.bytes, b, sizeof b);
    fprintf(stderr, "\r\033[Krestore: %llu of %llu objects (%s), failed %llu", (unsigned long long)rp->c.copied,
            (unsigned long long)(rp->c.missing + (rp->o->overwrite ? rp->c.conflicts : 0)), b,
            (unsigned long long)rp->c.failed);
}

/* One walk of the restore point against DEST: the plan, or the plan carried out. 0, or -1 (rp->error). */
static int rp_run(struct rpass *rp)
{
    struct rep_ctx *ctx = rp->ctx;
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    if (manifest_point_rewind(rp->pi.pt) != 0) {
        snprintf(rp->error, sizeof rp->error, "re-reading the restore point: %s", strerror(errno));
        return -1;
    }
    rp->dl = s3_lister_new(ctx->dst_r, rp->o->dst_bucket, rp->o->dst_prefix, NULL, NULL, 0, rp_ready, rp);
    if (!rp->dl) abort();
    join_init(&rp->join, (struct join_input){.next = point_next, .error = point_error, .ud = &rp->pi,
                                             .plen = rp->src_plen},
              join_lister(rp->dl, rp->dst_plen));
    ev_idle_init(&rp->kick, rp_kick);
    rp->kick.data = rp;
    ev_timer prog;
    ev_timer_init(&prog, on_progress, 1., 1.);
    prog.data = rp;
    if (rp->execute && rp->o->progress) ev_timer_start(ev, &prog);
    rp_schedule(rp);
    while (!rp->finished) ev_run(ev, 0);
    ev_timer_stop(ev, &prog);
    if (rp->execute && rp->o->progress) fprintf(stderr, "\r\033[K");
    ev_idle_stop(ev, &rp->kick);
    s3_lister_free(rp->dl);
    rp->dl = NULL;
    return rp->failed_listing || ctx->interrupted ? -1 : 0;
}

static void rp_reset(struct rpass *rp)
{
    memset(&rp->c, 0, sizeof rp->c);
    rp->stop = rp->ended = rp->finished = rp->failed_listing = false;
    cJSON_Delete(rp->jconflicts);
    cJSON_Delete(rp->jextras);
    cJSON_Delete(rp->jfailures);
    rp->jconflicts = cJSON_CreateArray();
    rp->jextras = cJSON_CreateArray();
    rp->jfailures = cJSON_CreateArray();
}

/* ---- report ---- */

static void print_keys(FILE *f, const char *title, const cJSON *list, uint64_t total)
{
    if (!f || !total) return;
    fprintf(f, "%s:\n", title);
    int shown = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (shown++ == 20) break;
        const cJSON *k = cJSON_IsObject(it) ? cJSON_GetObjectItem(it, "key") : it;
        const cJSON *e = cJSON_IsObject(it) ? cJSON_GetObjectItem(it, "error") : NULL;
        fprintf(f, "  %s%s%s\n", k->valuestring, e ? ": " : "", e ? e->valuestring : "");
    }
    if (total > 20) fprintf(f, "  ... and %llu more\n", (unsigned long long)(total - 20));
}

static cJSON *report_json(const struct rpass *rp, const char *result, int code, double secs)
{
    const struct restore_run *run = rp->run;
    char ended[40];
    rep_fmt_time(run->ended, true, ended, sizeof ended);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", "restore");
    cJSON_AddStringToObject(j, "result", result);
    cJSON_AddNumberToObject(j, "exit_code", code);
    cJSON_AddStringToObject(j, "backup", rp->o->src_url);
    cJSON_AddStringToObject(j, "destination", rp->o->dst_url);
    cJSON_AddStringToObject(j, "run_id", run->run_id);
    cJSON_AddStringToObject(j, "run_result", run->result);
    cJSON_AddStringToObject(j, "run_ended", ended);
    cJSON_AddNumberToObject(j, "run_gap_seconds", run->gap);
    cJSON_AddStringToObject(j, "source", run->source);
    cJSON_AddBoolToObject(j, "dry_run", rp->o->dry_run);
    const struct restore_counts *c = &rp->c;
    struct rep_json_number n[] = {
        {"objects_in_restore_point", (double)c->points},  {"objects_to_copy", (double)c->missing},
        {"bytes_to_copy", (double)c->missing_bytes},       {"objects_already_there", (double)c->same},
        {"objects_copied", (double)c->copied},             {"bytes_copied", (double)c->bytes},
        {"objects_failed", (double)c->failed},             {"conflicts", (double)c->conflicts},
        {"objects_compared_by_content", (double)c->content_checked},
        {"extra_in_destination", (double)c->extra},        {"duration_seconds", secs}};
    rep_json_add_numbers(j, n, sizeof n / sizeof *n);
    cJSON_AddItemReferenceToObject(j, "conflict_keys", rp->jconflicts);
    cJSON_AddItemReferenceToObject(j, "extra_keys", rp->jextras);
    cJSON_AddItemReferenceToObject(j, "failures", rp->jfailures);
    return j;
}

/* The local record of a restore: <state>/restores/<restore id>.json. */
static void save_record(const struct rep_options *o, struct rep_ctx *ctx, const cJSON *rep)
{
    char err[512], id[32], path[4400];
    char *dir = state_target_dir(o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    if (!dir) {
        s3_log_user(S3_LOG_WARN, "the restore is not recorded locally: %s", err);
        return;
    }
    state_run_id(id);
    snprintf(path, sizeof path, "%s/restores", dir);
    char *text = cJSON_Print(rep);
    FILE *f = state_mkdirs(path) == 0 && text ? (snprintf(path, sizeof path, "%s/restores/%s.json", dir, id), fopen(path, "w"))
                                                : NULL;
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        s3_log_user(S3_LOG_WARN, "cannot write the restore record %s: %s", path, strerror(errno));
    free(text);
    free(dir);
}

static int finish_report(struct rpass *rp, const char *result, int code, double t0)
{
    const struct rep_options *o = rp->o;
    double secs = (double)time(NULL) - t0;
    cJSON *j = report_json(rp, result, code, secs);
    notify_explain(j, code, rp->error[0] ? rp->error : NULL);
    FILE *h = rep_human(o);
    if (h) {
        print_keys(h, "conflicts (in the destination with other content)", rp->jconflicts, rp->c.conflicts);
        print_keys(h, "in the destination but not in the restore point (left alone)", rp->jextras, rp->c.extra);
        print_keys(h, "failed", rp->jfailures, rp->c.failed);
        char b[32];
        rep_fmt_bytes(o->dry_run ? rp->c.missing_bytes : rp->c.bytes, b, sizeof b);
        if (o->dry_run)
            fprintf(h, "dry run: would copy %llu objects (%s)%s; %llu already there, %llu conflicts, %llu extra in "
                       "the destination; nothing written\n", (unsigned long long)(rp->c.missing +
                       (o->overwrite ? rp->c.conflicts : 0)), b, o->overwrite && rp->c.conflicts ? " (conflicts "
                       "overwritten)" : "", (unsigned long long)rp->c.same, (unsigned long long)rp->c.conflicts,
                    (unsigned long long)rp->c.extra);
        else
            fprintf(h, "restore %s: %llu objects copied (%s), %llu already there, %llu conflicts%s, %llu extra in the "
                       "destination, %llu failed\n", result, (unsigned long long)rp->c.copied, b,
                    (unsigned long long)rp->c.same, (unsigned long long)rp->c.conflicts,
                    o->overwrite ? " overwritten" : o->only_missing ? " left alone" : "",
                    (unsigned long long)rp->c.extra, (unsigned long long)rp->c.failed);
    }
    if (o->json) {
        char *t = cJSON_Print(j);
        if (t) puts(t);
        free(t);
    }
    if (!o->dry_run && code != EXIT_USAGE) save_record(o, rp->ctx, j);
    if (code != EXIT_OK) notify_failure(o, j);
    cJSON_Delete(j);
    return code;
}

/* Refusals that need no listing: DEST is the backup, or is itself a backup. */
static int check_destination(struct rep_ctx *ctx, const struct rep_options *o)
{
    if (strcmp(o->src_bucket, o->dst_bucket) == 0 &&
        strcmp(s3_reader_config(ctx->src)->endpoint, s3_reader_config(ctx->dst_r)->endpoint) == 0) {
        s3_log_user(S3_LOG_ERROR, "refusing to restore s3://%s into itself: a restore never writes to the backup; "
                        "name another bucket as the destination", o->src_bucket);
        return EXIT_REFUSED;
    }
    int m = target_has_marker(ctx->dst_r, o->dst_bucket, "destination");
    if (m == 1) {
        s3_log_user(S3_LOG_ERROR, "refusing to restore into s3://%s: it carries %s, so it is a backup (swapped "
                        "arguments?): replicate --restore s3://BACKUP s3://DEST restores from the first into the "
                        "second", o->dst_bucket, MARKER_KEY);
        return EXIT_REFUSED;
    }
    if (m < 0) return m == -2 ? EXIT_USAGE : EXIT_FAILED;
    return EXIT_OK;
}

static int restore_with(struct rep_ctx *ctx, struct rpass *rp, double t0)
{
    const struct rep_options *o = rp->o;
    char ended[40];
    rep_fmt_time(rp->run->ended, true, ended, sizeof ended);
    rep_say(o, "restoring run %s (%s, ended %s, gap %.1fs) of %s\n  from %s into %s%s\n", rp->run->run_id,
            rp->run->result, ended, rp->run->gap, rp->run->source, o->src_url, o->dst_url,
            o->dry_run ? " (dry run)" : "");
    /* the plan first: nothing is written before every conflict is known */
    rp_reset(rp);
    if (rp_run(rp) != 0)
        return finish_report(rp, ctx->interrupted ? "interrupted" : "failed",
                             ctx->interrupted ? EXIT_INTERRUPTED : EXIT_FAILED, t0);
    char b[32];
    rep_fmt_bytes(rp->c.missing_bytes, b, sizeof b);
    rep_say(o, "restore point: %llu objects; %llu to copy (%s), %llu already there, %llu conflicts, %llu extra in "
               "the destination\n", (unsigned long long)rp->c.points, (unsigned long long)rp->c.missing, b,
            (unsigned long long)rp->c.same, (unsigned long long)rp->c.conflicts, (unsigned long long)rp->c.extra);
    if (rp->c.conflicts && !o->only_missing && !o->overwrite) {
        s3_log_user(S3_LOG_ERROR, "refusing to restore: %llu objects in %s have other content than the restore "
                        "point; nothing was written. --only-missing writes only what is missing, --overwrite also "
                        "rewrites those (a versioned destination keeps the old versions)",
                (unsigned long long)rp->c.conflicts, o->dst_url);
        return finish_report(rp, "refused", EXIT_REFUSED, t0);
    }
    if (o->overwrite && rp->c.conflicts && !o->allow_unversioned) {
        char err[512];
        char *st = target_versioning(ctx->dst_r, o->dst_bucket, NULL, err, sizeof err);
        bool versioned = st && strcmp(st, "Enabled") == 0;
        free(st);
        if (!versioned) {
            s3_log_user(S3_LOG_ERROR, "refusing --overwrite: s3://%s is not versioned, so overwriting would destroy "
                            "what is there (enable versioning, or add --allow-unversioned)", o->dst_bucket);
            return finish_report(rp, "refused", EXIT_REFUSED, t0);
        }
    }
    if (o->dry_run) return finish_report(rp, "ok", EXIT_OK, t0);
    rp->execute = true;
    rp_reset(rp);
    int rc = rp_run(rp);
    if (ctx->interrupted) return finish_report(rp, "interrupted", EXIT_INTERRUPTED, t0);
    if (rc != 0 || rp->c.failed) {
        if (rp->error[0]) s3_log_user(S3_LOG_ERROR, "%s", rp->error);
        return finish_report(rp, "failed", EXIT_FAILED, t0);
    }
    return finish_report(rp, "ok", EXIT_OK, t0);
}

int run_restore(const struct rep_options *o)
{
    struct rep_ctx ctx;
    double t0 = (double)time(NULL);
    int rc = rep_open(&ctx, o, true);
    if (rc != EXIT_OK) {
        rep_close(&ctx);
        return rc;
    }
    ctx.restore = true;
    struct rep_signals sg;
    rep_signals_start(&ctx, &sg);
    struct restore_run run;
    struct manifest_point *pt = NULL;
    rc = check_destination(&ctx, o);
    if (rc == EXIT_OK) rc = restore_open_point(&ctx, ctx.src, o->src_bucket, o->src_prefix, &run, &pt);
    if (rc == EXIT_OK) {
        struct rpass rp = {.ctx = &ctx, .o = o, .run = &run, .pi = {.pt = pt}};
        rp.src_plen = strlen(run.source_prefix);
        rp.dst_plen = strlen(o->dst_prefix);
        const struct manifest_point_stats *st = manifest_point_stats(pt);
        if (st->corrupt)
            s3_log_user(S3_LOG_WARN, "%d corrupt lines in the manifest of run %s were skipped",
                    st->corrupt, run.run_id);
        rc = restore_with(&ctx, &rp, t0);
        cJSON_Delete(rp.jconflicts);
        cJSON_Delete(rp.jextras);
        cJSON_Delete(rp.jfailures);
        manifest_point_free(pt);
        restore_run_free(&run);
    }
    rep_signals_stop(&ctx, &sg);
    rep_close(&ctx);
    return rc;
}
