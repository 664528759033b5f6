/* The target's lease: one run per target across hosts (see lease.h): claiming it by conditional PUT, renewing it
 * while the run lasts, releasing it, reading it for --status. Must not: write anything but the lease object. */
#include <cJSON.h>
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "replicator/lease.h"
#include "replicator/output.h"
#include "s3/log.h"

/* Where conditions are not honoured, the write is read back after a settle time: long enough that a racing run,
 * which read the lease before our write landed and writes right after its read, has written by then. That gap
 * is about its read and write round trips, like ours: 5x what our read and writes took, 0.2 s to 1 s, and 1 s
 * whenever one of them needed a retry (a throttled or slow server). Renewals read the lease again anyway. */
#define LEASE_SETTLE_MIN 0.2
#define LEASE_SETTLE_MAX 1.0
#define LEASE_SETTLE_FACTOR 5.0
#define LEASE_TRIES 5      /* rounds of read, decide, write before giving up (the record kept changing) */
#define LEASE_MAX_BODY 65536

struct lease {
    struct rep_ctx *ctx;
    char key[160];
    char run_id[32];
    char host[256];
    char state_id[16]; /* hash of host and state folder: a run holding that folder's lock is the only one */
    double seconds;
    char *etag;       /* of our last write */
    time_t acquired;
    time_t expires;   /* of our last write */
    ev_timer renew;
    bool timer_on, inflight, lost;
    bool if_match_broken; /* the server refuses every If-Match on PUT (RGW 16 does): read, compare, then write */
    double round_start;   /* monotonic time of this round's read */
    bool retried;         /* a request of this round needed more than one attempt */
    char *body;       /* of the renewal in flight (the request does not copy it) */
    char why[1400];
};

void lease_key(const struct rep_options *o, char *out, size_t n)
{
    if (!o->dst_prefix[0] && !o->start_after && !o->end_before && !o->shard_n) {
        snprintf(out, n, "%slease", RESERVED_PREFIX);
        return;
    }
    char id[3200];
    if (o->shard_n) /* a shard's range moves with the key sample: its lease is that of "shard I of N" */
        snprintf(id, sizeof id, "%s\nshard %d/%d", o->dst_prefix, o->shard_i, o->shard_n);
    else
        snprintf(id, sizeof id, "%s\n%s\n%s", o->dst_prefix, o->start_after ? o->start_after : "",
                 o->end_before ? o->end_before : "");
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(id, strlen(id), md, &ml, EVP_sha256(), NULL);
    snprintf(out, n, "%slease-%02x%02x%02x%02x%02x%02x", RESERVED_PREFIX, md[0], md[1], md[2], md[3], md[4], md[5]);
}

static char *record_json(const struct lease *l, const char *state, time_t now, time_t expires)
{
    const struct rep_options *o = l->ctx->o;
    cJSON *j = cJSON_CreateObject();
    char iso[40];
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "state", state);
    cJSON_AddStringToObject(j, "host", l->host);
    cJSON_AddNumberToObject(j, "pid", (double)getpid());
    cJSON_AddStringToObject(j, "run_id", l->run_id);
    cJSON_AddStringToObject(j, "state_id", l->state_id);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddNumberToObject(j, "acquired", (double)l->acquired);
    cJSON_AddNumberToObject(j, "renewed", (double)now);
    cJSON_AddNumberToObject(j, "expires", (double)expires);
    rep_fmt_time(expires, true, iso, sizeof iso);
    cJSON_AddStringToObject(j, "expires_at", iso);
    cJSON_AddNumberToObject(j, "lease_seconds", l->seconds);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

/* An ETag as If-Match wants it: quoted. */
static const char *quoted(const char *etag, char *buf, size_t n)
{
    if (!etag || etag[0] == '"' || strcmp(etag, "*") == 0) return etag;
    snprintf(buf, n, "\"%s\"", etag);
    return buf;
}

double lease_settle_seconds(double elapsed, bool retried)
{
    double s = retried ? LEASE_SETTLE_MAX : elapsed * LEASE_SETTLE_FACTOR;
    return s < LEASE_SETTLE_MIN ? LEASE_SETTLE_MIN : s > LEASE_SETTLE_MAX ? LEASE_SETTLE_MAX : s;
}

/* The target's clock (this host's, corrected when the target refused our date, s3/client.h): expiry times are
 * compared by runs on other hosts, whose clocks may differ from ours, but all of them talk to the target. */
static time_t lease_now(const struct lease *l)
{
    return s3_client_time(l->ctx->dst);
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct s3_response *put_record(struct lease *l, const char *body, const char *cond, const char *value)
{
    char q[300];
    struct s3_header h[] = {{"Content-Type", "application/json"}, {cond, quoted(value, q, sizeof q)}};
    struct s3_request_spec s = {.method = "PUT", .bucket = l->ctx->o->dst_bucket, .key = l->key, .headers = h,
                                .nheaders = cond ? 2 : 1, .body = body, .body_len = strlen(body)};
    struct s3_response *r = s3_request_wait(l->ctx->dst, &s);
    if (r && r->attempts > 1) l->retried = true;
    return r;
}

static bool precondition_failed(const struct s3_response *r)
{
    return r && r->err == S3_ERR_HTTP && (r->status == 412 || r->status == 409);
}

/* 1 and the record (and its ETag) when the lease exists, 0 when not, -1 on error (message in err). */
static int read_record(struct lease *l, cJSON **rec, char **etag, char *err, size_t errlen)
{
    struct s3_request_spec s = {.method = "GET", .bucket = l->ctx->o->dst_bucket, .key = l->key,
                                .max_body = LEASE_MAX_BODY};
    struct s3_response *r = s3_reader_request_wait(l->ctx->dst_r, &s);
    *rec = NULL;
    *etag = NULL;
    if (r && r->attempts > 1) l->retried = true;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc;
    if (r->err == S3_OK) {
        *rec = cJSON_ParseWithLength(r->body, r->body_len);
        if (!*rec) *rec = cJSON_CreateObject(); /* unreadable: treated as expired, taken over */
        *etag = s3_response_etag(r);
        rc = 1;
    } else if (r->status == 404) {
        rc = 0;
    } else {
        snprintf(err, errlen, "reading the lease s3://%s/%s: %s", l->ctx->o->dst_bucket, l->key, r->message);
        rc = -1;
    }
    s3_response_free(r);
    return rc;
}

static const char *rec_str(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static double rec_num(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void renew_lost(struct lease *l, const char *detail)
{
    l->lost = true;
    if (detail)
        snprintf(l->why, sizeof l->why, "the lease s3://%s/%s expired: renewing it failed (%s)",
                 l->ctx->o->dst_bucket, l->key, detail);
    else
        snprintf(l->why, sizeof l->why, "another run took over the lease s3://%s/%s (it had expired: was this run "
                 "stalled for longer than --lease?)", l->ctx->o->dst_bucket, l->key);
    s3_log_user(S3_LOG_ERROR, "%s; stopping so that two runs never write at once", l->why);
    l->ctx->interrupted = true;
    s3_loop_cancel_all(l->ctx->loop);
}

static void renew_check(struct lease *l);

static void renew_done(struct s3_response *r, void *ud)
{
    struct lease *l = ud;
    l->inflight = false;
    free(l->body);
    l->body = NULL;
    time_t now = lease_now(l);
    if (r->err == S3_OK) {
        char *etag = s3_response_etag(r);
        if (etag) {
            free(l->etag);
            l->etag = etag;
        }
        l->expires = now + (time_t)l->seconds;
    } else if (r->err != S3_ERR_CANCELLED && precondition_failed(r)) {
        renew_check(l); /* taken over, or a server that refuses every If-Match: the record tells */
    } else if (r->err != S3_ERR_CANCELLED && now >= l->expires) {
        renew_lost(l, r->message);
    } else if (r->err != S3_ERR_CANCELLED) {
        s3_log(S3_LOG_WARN, "renewing the lease failed (%s); trying again", r->message);
    }
    s3_response_free(r);
}

static void renew_put(struct lease *l, bool conditional)
{
    time_t now = lease_now(l);
    l->body = record_json(l, "held", now, now + (time_t)l->seconds);
    char q[300];
    struct s3_header h[] = {{"Content-Type", "application/json"}, {"If-Match", quoted(l->etag, q, sizeof q)}};
    struct s3_request_spec s = {.method = "PUT", .bucket = l->ctx->o->dst_bucket, .key = l->key, .headers = h,
                                .nheaders = conditional && l->etag ? 2 : 1, .body = l->body,
                                .body_len = l->body ? strlen(l->body) : 0, .max_attempts = 3};
    if (l->body && s3_request_start(l->ctx->dst, &s, renew_done, l)) {
        l->inflight = true;
    } else {
        l->inflight = false;
        free(l->body);
        l->body = NULL;
    }
}

/* Where If-Match cannot be used: the record read back must still be ours before it is written again. */
static void renew_checked(struct s3_response *r, void *ud)
{
    struct lease *l = ud;
    l->inflight = false;
    if (r->err == S3_OK) {
        cJSON *rec = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(rec, "run_id");
        bool mine = cJSON_IsString(id) && strcmp(id->valuestring, l->run_id) == 0;
        cJSON_Delete(rec);
        if (mine && !l->if_match_broken)
            s3_log(S3_LOG_INFO, "the target refuses If-Match on PUT: the lease is read back before each renewal");
        if (mine) {
            l->if_match_broken = true;
            renew_put(l, false);
        } else {
            renew_lost(l, NULL);
        }
    } else if (r->err != S3_ERR_CANCELLED && lease_now(l) >= l->expires) {
        renew_lost(l, r->message);
    } else if (r->err != S3_ERR_CANCELLED) {
        s3_log(S3_LOG_WARN, "reading the lease back failed (%s); trying again", r->message);
    }
    s3_response_free(r);
}

static void renew_fire(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct lease *l = w->data;
    if (l->inflight || l->lost || l->ctx->interrupted) return;
    if (l->if_match_broken) renew_check(l);
    else renew_put(l, true);
}

static void renew_check(struct lease *l)
{
    struct s3_request_spec s = {.method = "GET", .bucket = l->ctx->o->dst_bucket, .key = l->key,
                                .max_body = LEASE_MAX_BODY, .max_attempts = 3};
    if (s3_reader_request_start(l->ctx->dst_r, &s, renew_checked, l)) l->inflight = true;
}

static void lease_free(struct lease *l)
{
    if (!l) return;
    free(l->etag);
    free(l->body);
    free(l);
}

/* Writes our record over what was read (cond If-Match: etag) or where nothing was (If-None-Match: *). 1 when
 * the lease is ours, 0 when another run won the race, -1 on error (printed). */
static int claim(struct lease *l, const char *cond, const char *value)
{
    time_t now = lease_now(l);
    char *body = record_json(l, "held", now, now + (time_t)l->seconds);
    if (!body) return -1;
    struct s3_response *r = put_record(l, body, cond, value);
    bool conditional = true;
    if (precondition_failed(r) && strcmp(cond, "If-Match") == 0) {
        /* someone wrote it since we read it, or the server refuses every If-Match (RGW 16): read it again */
        s3_response_free(r);
        r = NULL;
        cJSON *rec;
        char *etag, err[700];
        int rc = read_record(l, &rec, &etag, err, sizeof err);
        bool same = rc == 1 && etag && strcmp(etag, value) == 0;
        cJSON_Delete(rec);
        free(etag);
        if (!same) {
            free(body);
            return 0;
        }
        l->if_match_broken = true;
        s3_log(S3_LOG_INFO, "the target refuses If-Match on PUT: writing the lease unconditionally, then reading "
                            "it back");
        r = put_record(l, body, NULL, NULL);
        conditional = false;
    } else if (precondition_failed(r)) { /* someone created it since we read it */
        s3_response_free(r);
        free(body);
        return 0;
    }
    if (!r || r->err != S3_OK) {
        s3_log_user(S3_LOG_ERROR, "writing the lease s3://%s/%s failed: %s", l->ctx->o->dst_bucket, l->key,
                    r ? r->message : "out of memory");
        s3_response_free(r);
        free(body);
        return -1;
    }
    free(l->etag);
    l->etag = s3_response_etag(r);
    l->expires = now + (time_t)l->seconds;
    s3_response_free(r);
    /* Did the server honour the condition? The same write again, with a condition that cannot hold, must fail.
     * Where it does not fail (RGW ignores If-None-Match on PUT), a racing run may have written between our read
     * and our write: wait, read back, and the record that stands decides. */
    if (conditional) {
        r = put_record(l, body, cond, strcmp(cond, "If-None-Match") == 0 ? "*" : "\"00000000000000000000000000000000\"");
        if (precondition_failed(r)) {
            s3_response_free(r);
            free(body);
            return 1;
        }
        if (r && r->err == S3_OK) {
            free(l->etag);
            l->etag = s3_response_etag(r);
        }
        s3_response_free(r);
    }
    free(body);
    double settle = lease_settle_seconds(mono_now() - l->round_start, l->retried);
    if (conditional)
        s3_log(S3_LOG_INFO, "the target ignores %s on PUT: reading the lease back after %.2fs", cond, settle);
    else
        s3_log(S3_LOG_INFO, "reading the lease back after %.2fs", settle);
    rep_sleep(l->ctx, settle);
    cJSON *rec;
    char *etag, err[700];
    int rc = read_record(l, &rec, &etag, err, sizeof err);
    if (rc < 0) s3_log_user(S3_LOG_ERROR, "%s", err);
    int mine = rc == 1 && strcmp(rec_str(rec, "run_id"), l->run_id) == 0;
    if (mine) {
        free(l->etag);
        l->etag = etag;
        etag = NULL;
    }
    cJSON_Delete(rec);
    free(etag);
    return rc < 0 ? -1 : mine;
}

int lease_acquire(struct rep_ctx *ctx, const char *run_id, const char *state_dir, double seconds,
                  struct lease **out)
{
    const struct rep_options *o = ctx->o;
    struct lease *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l) return EXIT_FAILED;
    l->ctx = ctx;
    l->seconds = seconds;
    l->acquired = lease_now(l);
    snprintf(l->run_id, sizeof l->run_id, "%s", run_id);
    if (gethostname(l->host, sizeof l->host - 1) != 0) snprintf(l->host, sizeof l->host, "unknown");
    lease_key(o, l->key, sizeof l->key);
    char id[4400];
    unsigned char md[32];
    unsigned int ml = 0;
    snprintf(id, sizeof id, "%s\n%s", l->host, state_dir);
    EVP_Digest(id, strlen(id), md, &ml, EVP_sha256(), NULL);
    snprintf(l->state_id, sizeof l->state_id, "%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4], md[5]);
    for (int round = 0; round < LEASE_TRIES && !ctx->interrupted; round++) {
        cJSON *rec;
        char *etag, err[700];
        l->round_start = mono_now();
        l->retried = false;
        int rc = read_record(l, &rec, &etag, err, sizeof err);
        if (rc < 0) {
            s3_log_user(S3_LOG_ERROR, "%s", err);
            lease_free(l);
            return EXIT_FAILED;
        }
        time_t now = lease_now(l);
        if (rc == 1) {
            const char *state = rec_str(rec, "state");
            double expires = rec_num(rec, "expires");
            char when[40];
            rep_fmt_time((int64_t)expires, true, when, sizeof when);
            /* held by a run of this host and state folder: it is dead, since we hold that folder's lock */
            bool ours = strcmp(rec_str(rec, "state_id"), l->state_id) == 0;
            /* held by the same shard of the same run (--run-id): an earlier attempt of this shard, which an
             * Indexed Job starts again only once that pod has ended (podReplacementPolicy: Failed) */
            bool retry = o->shard_n && o->shared_run_id && strcmp(rec_str(rec, "run_id"), l->run_id) == 0;
            if (strcmp(state, "held") == 0 && expires > (double)now && retry && !ours)
                s3_log_user(S3_LOG_WARN,
                            "taking over the lease of an earlier attempt of this shard of run %s (host %s, pid %.0f): "
                            "it ended without releasing it",
                            rec_str(rec, "run_id"), rec_str(rec, "host"), rec_num(rec, "pid"));
            else if (strcmp(state, "held") == 0 && expires > (double)now && ours)
                s3_log_user(S3_LOG_WARN,
                            "taking over the lease of run %s (pid %.0f): it ran from this host and state directory "
                            "and died without releasing it",
                            rec_str(rec, "run_id"), rec_num(rec, "pid"));
            else if (strcmp(state, "held") == 0 && expires > (double)now) {
                s3_log_user(S3_LOG_ERROR,
                            "refused: s3://%s is leased to another replicate run: host %s, pid %.0f, run %s, until %s "
                            "(in %.0fs); runs into one target never overlap, from any host.\n"
                            "  Wait for that run to finish; if it died, its lease expires by itself at %s "
                            "(its --lease).",
                            o->dst_bucket, rec_str(rec, "host"), rec_num(rec, "pid"), rec_str(rec, "run_id"), when,
                            expires - (double)now, when);
                cJSON_Delete(rec);
                free(etag);
                lease_free(l);
                return EXIT_REFUSED;
            }
            else if (strcmp(state, "held") == 0)
                s3_log_user(S3_LOG_WARN,
                            "taking over the lease of run %s (host %s, pid %.0f): it expired at %s, %.0fs ago, so "
                            "that run died or lost the target",
                            rec_str(rec, "run_id"), rec_str(rec, "host"), rec_num(rec, "pid"), when,
                            (double)now - expires);
        }
        cJSON_Delete(rec);
        int c = rc == 1 && etag ? claim(l, "If-Match", etag) : claim(l, "If-None-Match", "*");
        free(etag);
        if (c < 0) {
            lease_free(l);
            return EXIT_FAILED;
        }
        if (c == 1) {
            s3_log(S3_LOG_INFO, "lease s3://%s/%s taken for %.0fs (renewed every %.0fs)", o->dst_bucket, l->key,
                   seconds, seconds / 3);
            ev_timer_init(&l->renew, renew_fire, seconds / 3, seconds / 3);
            l->renew.data = l;
            ev_timer_start(s3_loop_ev(ctx->loop), &l->renew);
            ev_unref(s3_loop_ev(ctx->loop)); /* the renewal alone does not keep the loop running */
            l->timer_on = true;
            *out = l;
            return EXIT_OK;
        }
        /* another run wrote the lease between our read and our write: read it again and decide */
    }
    if (!ctx->interrupted)
        s3_log_user(S3_LOG_ERROR, "could not take the lease s3://%s/%s: it kept changing under us", o->dst_bucket,
                    l->key);
    lease_free(l);
    return ctx->interrupted ? EXIT_INTERRUPTED : EXIT_FAILED;
}

cJSON *lease_read_record(struct rep_ctx *ctx, char *err, size_t errlen)
{
    char key[160];
    lease_key(ctx->o, key, sizeof key);
    struct s3_request_spec s = {.method = "GET", .bucket = ctx->o->dst_bucket, .key = key,
                                .max_body = LEASE_MAX_BODY};
    struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cJSON *out = NULL;
    if (r->err == S3_OK) {
        cJSON *rec = cJSON_ParseWithLength(r->body, r->body_len);
        out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "key", key);
        static const char *const strs[] = {"state", "host", "run_id", "expires_at"};
        for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) cJSON_AddStringToObject(out, strs[i], rec_str(rec, strs[i]));
        cJSON_AddNumberToObject(out, "pid", rec_num(rec, "pid"));
        cJSON_AddNumberToObject(out, "expires", rec_num(rec, "expires"));
        cJSON_AddBoolToObject(out, "expired", rec_num(rec, "expires") <= (double)s3_reader_time(ctx->dst_r));
        cJSON_Delete(rec);
    } else if (r->status == 404) {
        out = cJSON_CreateNull();
    } else {
        snprintf(err, errlen, "reading the lease s3://%s/%s: %s", ctx->o->dst_bucket, key, r->message);
    }
    s3_response_free(r);
    return out;
}

bool lease_lost(const struct lease *l, const char **why)
{
    if (!l || !l->lost) return false;
    if (why) *why = l->why;
    return true;
}

void lease_release(struct rep_ctx *ctx, struct lease *l)
{
    if (!l) return;
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    if (l->timer_on) {
        ev_ref(ev);
        ev_timer_stop(ev, &l->renew);
    }
    while (l->inflight) ev_run(ev, EVRUN_ONCE);
    bool mine = !l->lost;
    if (mine && l->if_match_broken) { /* no If-Match: it must still be ours before it is overwritten */
        cJSON *rec;
        char *etag, err[700];
        mine = read_record(l, &rec, &etag, err, sizeof err) == 1 &&
               strcmp(rec_str(rec, "run_id"), l->run_id) == 0;
        cJSON_Delete(rec);
        free(etag);
        if (!mine)
            s3_log_user(S3_LOG_WARN, "the lease s3://%s/%s had been taken over by another run; left to it",
                        ctx->o->dst_bucket, l->key);
    }
    if (mine) {
        time_t now = lease_now(l);
        char *body = record_json(l, "released", now, now);
        bool cond = l->etag && !l->if_match_broken;
        struct s3_response *r = body ? put_record(l, body, cond ? "If-Match" : NULL, cond ? l->etag : NULL) : NULL;
        if (precondition_failed(r)) { /* taken over, or a server that refuses every If-Match */
            cJSON *rec;
            char *etag, err[700];
            if (read_record(l, &rec, &etag, err, sizeof err) == 1 && strcmp(rec_str(rec, "run_id"), l->run_id) == 0) {
                s3_response_free(r);
                r = put_record(l, body, NULL, NULL);
            }
            cJSON_Delete(rec);
            free(etag);
        }
        if (precondition_failed(r))
            s3_log_user(S3_LOG_WARN, "the lease s3://%s/%s had been taken over by another run; left to it",
                        ctx->o->dst_bucket, l->key);
        else if (!r || r->err != S3_OK)
            s3_log_user(S3_LOG_WARN, "releasing the lease s3://%s/%s failed (%s): it expires by itself in %.0fs",
                        ctx->o->dst_bucket, l->key, r ? r->message : "out of memory",
                        (double)(l->expires - now));
        s3_response_free(r);
        free(body);
    }
    lease_free(l);
}
