/* --restore-drill: the read half of a restore, checked. Reads the restore point's recorded versions back from
 * the backup (all, or a random --sample percent) by version id, hashes what it reads and compares it with the
 * manifest (size, and the MD5 or composite multipart ETag of the version), then records the drill in the
 * backup's .replicate/drills/ (its only write) so --status --max-drill-age can alert when drills stop.
 * Owns: the drill's reads, checks, report and record. Must not: write anything but its record. */
#include <cJSON.h>
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "replicator/copy.h"
#include "replicator/metrics.h"
#include "replicator/output.h"
#include "replicator/restore.h"
#include "replicator/run.h"
#include "replicator/state.h"
#include "replicator/verify.h"
#include "s3/log.h"
#include "s3/ops.h"

#define FAILURES_MAX 10000

struct drill {
    struct rep_ctx *ctx;
    const struct rep_options *o;
    struct manifest_point *pt;
    int inflight;
    bool ended, finished;
    uint64_t seen, checked, bytes, failed, unrecorded, size_only;
    cJSON *jfailures;
    ev_idle kick;
};

/* One read: the whole version streamed through an MD5 (and per-part MD5s for a multipart ETag). */
struct read {
    struct drill *d;
    char *key, *version, *etag;
    uint64_t size, got, part_size, in_part;
    int nparts, part;
    EVP_MD_CTX *whole, *part_md, *composite;
};

static void drill_pump(struct drill *d);

static void schedule(struct drill *d)
{
    if (!ev_is_active(&d->kick)) ev_idle_start(s3_loop_ev(d->ctx->loop), &d->kick);
}

static void kick(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(ev, w);
    drill_pump(w->data);
}

static void read_free(struct read *r)
{
    free(r->key);
    free(r->version);
    free(r->etag);
    EVP_MD_CTX_free(r->whole);
    EVP_MD_CTX_free(r->part_md);
    EVP_MD_CTX_free(r->composite);
    free(r);
}

static void digests_start(struct read *r)
{
    r->got = r->in_part = 0;
    r->part = 0;
    if (!EVP_DigestInit_ex(r->whole, EVP_md5(), NULL) || !EVP_DigestInit_ex(r->part_md, EVP_md5(), NULL) ||
        !EVP_DigestInit_ex(r->composite, EVP_md5(), NULL))
        abort();
}

static void part_end(struct read *r)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int l = 0;
    EVP_DigestFinal_ex(r->part_md, md, &l);
    EVP_DigestUpdate(r->composite, md, l);
    EVP_DigestInit_ex(r->part_md, EVP_md5(), NULL);
    r->part++;
    r->in_part = 0;
}

static bool on_body(const void *data, size_t len, void *ud)
{
    struct read *r = ud;
    const unsigned char *p = data;
    EVP_DigestUpdate(r->whole, p, len);
    r->got += len;
    while (len && r->nparts) {
        uint64_t room = r->part_size - r->in_part;
        size_t n = len < room ? len : (size_t)room;
        EVP_DigestUpdate(r->part_md, p, n);
        r->in_part += n;
        p += n;
        len -= n;
        if (r->in_part == r->part_size) part_end(r);
    }
    return true;
}

static void on_reset(void *ud)
{
    digests_start(ud);
}

static void failed(struct drill *d, const char *key, const char *version, const char *why)
{
    d->failed++;
    s3_log(S3_LOG_ERROR, "drill: %s (version %s): %s", key, version ? version : "none", why);
    if (cJSON_GetArraySize(d->jfailures) >= FAILURES_MAX) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    if (version) cJSON_AddStringToObject(o, "version_id", version);
    cJSON_AddStringToObject(o, "error", why);
    cJSON_AddItemToArray(d->jfailures, o);
}

/* Whether what was read is the recorded version: its size, and its ETag from the bytes, unless the backup says
 * the version is encrypted so that its ETag is no MD5 (sse: SSE-KMS, SSE-C; s3_sse_hides_md5). */
static const char *mismatch(struct read *r, const char *sse)
{
    if (r->got != r->size) return "its size is not the recorded size";
    if (sse) {
        r->d->size_only++;
        return NULL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int l = 0;
    char hex[48];
    if (r->nparts) {
        if (r->in_part) part_end(r);
        EVP_DigestFinal_ex(r->composite, md, &l);
        s3_md5_hex(md, hex);
        snprintf(hex + 32, sizeof hex - 32, "-%d", r->nparts);
        return strcasecmp(hex, r->etag) == 0 ? NULL : "its content does not add up to the recorded ETag";
    }
    EVP_DigestFinal_ex(r->whole, md, &l);
    s3_md5_hex(md, hex);
    if (!s3_etag_is_md5(r->etag)) {
        r->d->size_only++; /* an ETag that is no MD5 (another part layout, encryption): size checked only */
        return NULL;
    }
    return strcasecmp(hex, r->etag) == 0 ? NULL : "its content does not match the recorded ETag (MD5)";
}

static void read_done(struct s3_response *resp, void *ud)
{
    struct read *r = ud;
    struct drill *d = r->d;
    d->inflight--;
    if (resp->err == S3_ERR_CANCELLED) {
    } else if (resp->err != S3_OK) {
        failed(d, r->key, r->version,
               resp->status == 404 ? "the recorded version is missing from the backup" : resp->message);
    } else {
        const char *why = mismatch(r, s3_sse_hides_md5(resp));
        if (why) failed(d, r->key, r->version, why);
        d->checked++;
        d->bytes += r->got;
    }
    s3_response_free(resp);
    read_free(r);
    schedule(d);
}

static void start_read(struct drill *d, const struct manifest_point_entry *e)
{
    struct read *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->d = d;
    r->key = strdup(e->target_key);
    r->version = strdup(e->version_id);
    r->etag = strdup(e->target_etag);
    r->size = e->size;
    r->whole = EVP_MD_CTX_new();
    r->part_md = EVP_MD_CTX_new();
    r->composite = EVP_MD_CTX_new();
    if (!r->key || !r->version || !r->etag || !r->whole || !r->part_md || !r->composite) abort();
    const char *dash = strrchr(r->etag, '-');
    if (dash && dash - r->etag == 32) { /* a multipart ETag: hash in the part layout backups write */
        r->part_size = copy_part_size(r->size, d->o->part_size);
        uint64_t n = r->size ? (r->size + r->part_size - 1) / r->part_size : 1;
        if (strtoull(dash + 1, NULL, 10) == n) r->nparts = (int)n;
        else d->size_only++; /* another layout: the size is what can be checked */
    }
    digests_start(r);
    struct s3_get_args a = {.bucket = d->o->dst_bucket, .key = r->key, .version_id = r->version,
                            .on_body = on_body, .on_reset = on_reset, .body_ud = r};
    d->inflight++;
    if (!s3_get_object(d->ctx->dst_r, &a, read_done, r)) abort();
}

static void drill_pump(struct drill *d)
{
    char err[300];
    while (!d->ended && !d->ctx->interrupted && d->inflight < rep_jobs(d->ctx)) {
        const struct manifest_point_entry *e;
        int g = manifest_point_next(d->pt, &e, err, sizeof err);
        if (g <= 0) {
            if (g < 0) failed(d, "(restore point)", NULL, err);
            d->ended = true;
            break;
        }
        d->seen++;
        if (d->o->sample < 100 && drand48() * 100 >= d->o->sample) continue;
        if (!e->version_id) {
            d->unrecorded++;
            continue;
        }
        start_read(d, e);
    }
    if ((d->ended || d->ctx->interrupted) && d->inflight == 0 && !d->finished) {
        d->finished = true;
        ev_break(s3_loop_ev(d->ctx->loop), EVBREAK_ONE);
    }
}

static int record_drill(struct rep_ctx *ctx, const char *id, const cJSON *j)
{
    char key[256];
    snprintf(key, sizeof key, "%s%s.json", DRILL_PREFIX, id);
    char *body = cJSON_Print(j);
    if (!body) return -1;
    struct s3_header h[] = {{"Content-Type", "application/json"}};
    struct s3_request_spec s = {.method = "PUT", .bucket = ctx->o->dst_bucket, .key = key, .headers = h,
                                .nheaders = 1, .body = body, .body_len = strlen(body)};
    struct s3_response *resp = s3_request_wait(ctx->dst, &s);
    int rc = resp && resp->err == S3_OK ? 0 : -1;
    if (rc) s3_log_user(S3_LOG_ERROR, "recording the drill in s3://%s/%s failed: %s", ctx->o->dst_bucket, key,
                    resp ? resp->message : "out of memory");
    s3_response_free(resp);
    free(body);
    return rc;
}

/* --metrics-file: the drill's samples beside the backup's (same target label); the last clean drill is kept
 * across failed ones, so "time() - replicate_last_clean_drill_timestamp_seconds" alerts when drills stop
 * passing. */
static void write_drill_metrics(const struct rep_options *o, int rc, uint64_t failed)
{
    if (!o->metrics_file) return;
    double now = (double)time(NULL), clean = -1;
    if (rc == EXIT_OK) clean = now;
    else metrics_read(o->metrics_file, "replicate_last_clean_drill_timestamp_seconds", o->dst_url, &clean);
    struct metric_sample m[] = {
        {"replicate_last_drill_timestamp_seconds", "End of the last restore drill (Unix time).", now},
        {"replicate_last_drill_exit_code", "Exit code of the last restore drill (0 clean, 5 discrepancies).", rc},
        {"replicate_drill_objects_failed", "Recorded versions the last restore drill found missing or changed.",
         (double)failed},
        {"replicate_last_clean_drill_timestamp_seconds", "End of the last clean restore drill (Unix time).", clean},
    };
    char err[4400];
    if (metrics_write(o->metrics_file, o->dst_url, m, sizeof m / sizeof *m - (clean < 0 ? 1 : 0), err, sizeof err))
        s3_log(S3_LOG_WARN, "cannot write the metrics: %s", err);
}

int run_drill(const struct rep_options *o)
{
    struct rep_ctx ctx;
    int rc = rep_open(&ctx, o, false);
    if (rc != EXIT_OK) {
        rep_close(&ctx);
        return rc;
    }
    struct rep_signals sg;
    rep_signals_start(&ctx, &sg);
    struct restore_run run;
    struct manifest_point *pt = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    time_t started = time(NULL);
    srand48((long)started ^ (long)getpid());
    rc = restore_open_point(&ctx, ctx.dst_r, o->dst_bucket, o->dst_prefix, &run, &pt);
    if (rc != EXIT_OK) {
        if (rc != EXIT_INTERRUPTED) write_drill_metrics(o, rc, 0);
        goto out;
    }
    rep_say(o, "drill: reading back %s of run %s's %llu recorded versions from %s\n",
            o->sample < 100 ? "a sample" : "all", run.run_id,
            (unsigned long long)manifest_point_stats(pt)->entries, o->dst_url);
    struct drill d = {.ctx = &ctx, .o = o, .pt = pt, .jfailures = cJSON_CreateArray()};
    ev_idle_init(&d.kick, kick);
    d.kick.data = &d;
    schedule(&d);
    while (!d.finished) ev_run(s3_loop_ev(ctx.loop), 0);
    ev_idle_stop(s3_loop_ev(ctx.loop), &d.kick);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    double rate = secs > 0 ? (double)d.bytes / secs : 0;
    uint64_t total = manifest_point_stats(pt)->bytes;
    double full = rate > 0 ? (double)total / rate : 0;
    const char *result = ctx.interrupted ? "interrupted" : d.failed ? "discrepancies" : "ok";
    rc = ctx.interrupted ? EXIT_INTERRUPTED : d.failed ? EXIT_DISCREPANCY : EXIT_OK;
    char id[32], when[40], b[32], rb[32];
    state_run_id(id);
    struct tm tm;
    gmtime_r(&started, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "mode", "restore-drill");
    cJSON_AddStringToObject(j, "drill_id", id);
    cJSON_AddStringToObject(j, "result", result);
    cJSON_AddNumberToObject(j, "exit_code", rc);
    cJSON_AddStringToObject(j, "backup", o->dst_url);
    cJSON_AddStringToObject(j, "run_id", run.run_id);
    cJSON_AddStringToObject(j, "started", when);
    cJSON_AddNumberToObject(j, "ended", (double)time(NULL));
    cJSON_AddNumberToObject(j, "sample_percent", o->sample);
    cJSON_AddNumberToObject(j, "objects_in_restore_point", (double)d.seen);
    cJSON_AddNumberToObject(j, "objects_read", (double)d.checked);
    cJSON_AddNumberToObject(j, "bytes_read", (double)d.bytes);
    cJSON_AddNumberToObject(j, "objects_failed", (double)d.failed);
    cJSON_AddNumberToObject(j, "objects_size_checked_only", (double)d.size_only);
    cJSON_AddNumberToObject(j, "objects_without_version", (double)d.unrecorded);
    cJSON_AddNumberToObject(j, "read_bytes_per_second", rate);
    cJSON_AddNumberToObject(j, "full_restore_estimate_seconds", full);
    cJSON_AddNumberToObject(j, "duration_seconds", secs);
    cJSON_AddItemToObject(j, "failures", d.jfailures);
    if (!ctx.interrupted && record_drill(&ctx, id, j) != 0 && rc == EXIT_OK) rc = EXIT_FAILED;
    write_drill_metrics(o, rc, d.failed);
    FILE *h = rep_human(o);
    if (h) {
        const cJSON *it;
        int shown = 0;
        cJSON_ArrayForEach(it, d.jfailures) {
            if (shown++ == 20) break;
            fprintf(h, "  %s (version %s): %s\n", cJSON_GetObjectItem(it, "key")->valuestring,
                    cJSON_GetObjectItem(it, "version_id") ? cJSON_GetObjectItem(it, "version_id")->valuestring : "-",
                    cJSON_GetObjectItem(it, "error")->valuestring);
        }
        rep_fmt_bytes(d.bytes, b, sizeof b);
        rep_fmt_bytes((uint64_t)rate, rb, sizeof rb);
        fprintf(h, "drill %s: read %llu versions (%s) in %.1fs at %s/s, %llu failed%s; a full restore of run %s "
                   "would take about %.0fs at this rate\n", result, (unsigned long long)d.checked, b, secs, rb,
                (unsigned long long)d.failed, d.unrecorded ? " (some records name no version: not checkable)" : "",
                run.run_id, full);
    }
    if (o->json) {
        char *t = cJSON_Print(j);
        if (t) puts(t);
        free(t);
    }
    cJSON_Delete(j);
out:
    manifest_point_free(pt);
    restore_run_free(&run);
    rep_signals_stop(&ctx, &sg);
    rep_close(&ctx);
    return rc;
}
