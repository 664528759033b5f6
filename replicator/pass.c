/* The merge-join of the source and target listings that drives the copies of one pass. */
#include <errno.h>
#include <cJSON.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "replicator/copy.h"
#include "replicator/join.h"
#include "replicator/pass.h"
#include "replicator/shard.h"
#include "replicator/versions.h"
#include "s3/list.h"
#include "s3/log.h"
#include "s3/ops.h"

/* One key range of the pass: its own source and target listers and their join. The ranges are independent, so
 * they are joined side by side, each listing at its own pace (a lister reads ahead only in the range it is
 * consuming: one lister per range lets every range read ahead), up to MAX_ACTIVE_RANGES at a time. */
struct prange {
    char *src_sa, *src_incl, *dst_sa, *dst_incl; /* (start_after, inclusive end]; NULL = open */
    struct s3_lister *src_l, *dst_l;
    struct join join; /* source (left) against target (right) */
    bool started, ended;
};

/* Memory: at most two pages per side in each active range. */
#define MAX_ACTIVE_RANGES 16

struct pass {
    struct rep_ctx *ctx;
    struct prange *rg;
    size_t nrg, nstarted, nended, rr; /* rr: the range the pump serves first (round robin) */
    bool versions;      /* pass 1 lists the target's versions */
    char *dst_eb;
    size_t src_plen, dst_plen;
    int inflight;
    bool stop;          /* listing failed or interrupted: start nothing new */
    bool finished;
    bool listing_ended; /* the join reached the end of both listings */
    bool deadline_hit;
    ev_timer deadline;
    ev_idle kick;       /* re-run the pump from the loop, not from inside a callback chain */
    struct pass_result *res;
};

/* A HEAD of the target object to read the recorded source ETag, when ETags differ but sizes match. */
struct check {
    struct pass *p;
    struct s3_object_info src; /* owned copies */
    char *dst_key;
};

#define MAX_EXCUSED 4000 /* copies waiting for their version beyond --jobs */

static void pump(struct pass *p);

static void schedule_pump(struct pass *p)
{
    if (!ev_is_active(&p->kick)) ev_idle_start(p->ctx->loop ? s3_loop_ev(p->ctx->loop) : EV_DEFAULT, &p->kick);
}

static void kick_cb(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)revents;
    ev_idle_stop(ev, w);
    pump(w->data);
}

static void pass_kick(void *ud)
{
    schedule_pump(ud);
}

static void lister_ready(void *ud)
{
    schedule_pump(ud);
}

/* ck_alg/ck: the source's additional checksum of what was copied (both or neither, NULL when unknown). */
static void record(struct rep_ctx *ctx, const char *key, const char *dst_key, uint64_t size, const char *etag,
                   const char *lm, const char *target_etag, const char *version_id, const char *ck_alg,
                   const char *ck)
{
    if (!ctx->mw || ctx->manifest_failed) return;
    struct manifest_object mo = {.key = key, .size = size, .etag = etag, .last_modified = lm, .target_key = dst_key,
                                 .target_etag = target_etag ? target_etag : etag, .version_id = version_id,
                                 .pass = ctx->pass, .checksum_algorithm = ck ? ck_alg : NULL,
                                 .checksum = ck_alg ? ck : NULL};
    int rc = manifest_writer_add(ctx->mw, &mo);
    /* a killed run's manifest must show what it finished: push records to disk about once a second */
    double now = ev_now(s3_loop_ev(ctx->loop));
    if (rc == 0 && now - ctx->manifest_synced >= 1.0) {
        ctx->manifest_synced = now;
        rc = manifest_writer_sync(ctx->mw);
    }
    if (rc != 0) {
        ctx->manifest_failed = true;
        snprintf(ctx->manifest_error, sizeof ctx->manifest_error, "writing the manifest failed: %s",
                 strerror(errno));
    }
}

/* A later pass found a key gone from the source: the run's restore point leaves it out (pass 1 does not record
 * extras: only what it saw is in the restore point). */
static void record_deleted(struct rep_ctx *ctx, const char *dst_key, const char *rel)
{
    if (!ctx->mw || ctx->manifest_failed) return;
    char *src_key = NULL;
    if (asprintf(&src_key, "%s%s", ctx->o->src_prefix, rel) < 0) abort();
    struct manifest_deleted d = {.key = src_key, .target_key = dst_key, .pass = ctx->pass};
    if (manifest_writer_deleted(ctx->mw, &d) != 0) {
        ctx->manifest_failed = true;
        snprintf(ctx->manifest_error, sizeof ctx->manifest_error, "writing the manifest failed: %s",
                 strerror(errno));
    }
    free(src_key);
}

static void copy_finished(struct copy_job *job, enum copy_result r, void *ud)
{
    struct pass *p = ud;
    struct rep_ctx *ctx = p->ctx;
    p->inflight--;
    switch (r) {
    case COPY_OK:
        ctx->cur.copied++;
        ctx->cur.bytes += copy_job_size(job);
        if (s3_log_enabled(S3_LOG_INFO)) {
            struct s3_log_field f[] = {{"bytes", NULL, (double)copy_job_size(job)}};
            s3_log_event(S3_LOG_INFO, "copied", copy_job_key(job), f, 1, "copied %s (%llu bytes)", copy_job_key(job),
                         (unsigned long long)copy_job_size(job));
        }
        record(ctx, copy_job_key(job), copy_job_dst_key(job), copy_job_size(job), copy_job_etag(job),
               copy_job_last_modified(job), copy_job_target_etag(job), copy_job_version_id(job),
               copy_job_checksum_algorithm(job), copy_job_checksum(job));
        if (copy_job_target_etag(job) && strcmp(copy_job_target_etag(job), copy_job_etag(job)) != 0)
            manifest_index_put(ctx->idx, copy_job_dst_key(job), copy_job_size(job), copy_job_target_etag(job),
                               copy_job_etag(job));
        break;
    case COPY_FAILED:
        ctx->cur.failed++;
        rep_note_failure(ctx, copy_job_key(job), copy_job_error(job));
        s3_log_event(S3_LOG_ERROR, "copy_failed", copy_job_key(job),
                     (struct s3_log_field[]){{"error", copy_job_error(job), 0}}, 1, "FAILED %s: %s", copy_job_key(job),
                     copy_job_error(job));
        break;
    case COPY_VANISHED:
        ctx->cur.vanished++;
        s3_log(S3_LOG_INFO, "%s was deleted from the source before it could be copied", copy_job_key(job));
        break;
    case COPY_ARCHIVED:
        ctx->cur.archived++;
        rep_note_archived(ctx, copy_job_key(job), NULL);
        s3_log(S3_LOG_WARN, "%s is archived (InvalidObjectState): not copied", copy_job_key(job));
        break;
    case COPY_CANCELLED:
        break;
    }
    copy_job_free(job);
    schedule_pump(p);
}

static void start_copy(struct pass *p, const struct s3_object_info *src, const char *dst_key)
{
    struct rep_ctx *ctx = p->ctx;
    if (rep_class_archived(src->storage_class)) { /* a GET or copy would answer 403 InvalidObjectState */
        ctx->cur.archived++;
        rep_note_archived(ctx, src->key, src->storage_class);
        s3_log(S3_LOG_WARN, "%s is in %s and cannot be read until it is restored: not copied", src->key,
               src->storage_class);
        return;
    }
    if (ctx->o->dry_run) {
        ctx->cur.copied++;
        ctx->cur.bytes += src->size;
        if (!ctx->o->quiet && !ctx->o->json)
            printf("would copy: %s (%llu bytes)\n", src->key, (unsigned long long)src->size);
        return;
    }
    p->inflight++;
    if (!copy_start(ctx, src, dst_key, copy_finished, p)) {
        s3_log(S3_LOG_ERROR, "out of memory");
        abort();
    }
}

static void check_free(struct check *c)
{
    free(c->src.key);
    free(c->src.etag);
    free(c->src.last_modified);
    free(c->dst_key);
    free(c);
}

static void check_done(struct s3_response *r, void *ud)
{
    struct check *c = ud;
    struct pass *p = c->p;
    struct rep_ctx *ctx = p->ctx;
    p->inflight--;
    ctx->cur.checked++;
    if (r->err == S3_ERR_CANCELLED) {
        s3_response_free(r);
        check_free(c);
        schedule_pump(p);
        return;
    }
    const char *rec = r->err == S3_OK ? s3_response_header(r, SOURCE_ETAG_META) : NULL;
    if (rec && strcmp(rec, c->src.etag) == 0) {
        ctx->cur.skipped++;
        char *te = s3_response_etag(r);
        if (te) manifest_index_put(ctx->idx, c->dst_key, c->src.size, te, c->src.etag);
        if (ctx->pass == 1)
            record(ctx, c->src.key, c->dst_key, c->src.size, c->src.etag, c->src.last_modified, te,
                   s3_response_header(r, "x-amz-version-id"), NULL, NULL);
        free(te);
    } else {
        start_copy(p, &c->src, c->dst_key);
    }
    s3_response_free(r);
    check_free(c);
    schedule_pump(p);
}

static char *dst_key_for(struct pass *p, const char *src_key)
{
    char *k = NULL;
    if (asprintf(&k, "%s%s", p->ctx->o->dst_prefix, src_key + p->src_plen) < 0) return NULL;
    return k;
}

/* Source and target hold the same relative key: decide whether it needs copying. */
static void compare(struct pass *p, const struct s3_object_info *s, const struct s3_object_info *d)
{
    struct rep_ctx *ctx = p->ctx;
    if (s->size == d->size) {
        if (s->etag && d->etag && strcmp(s->etag, d->etag) == 0) goto same;
        const char *rec = manifest_index_get(ctx->idx, d->key, d->size, d->etag);
        if (rec) {
            if (strcmp(rec, s->etag) == 0) goto same;
        } else {
            /* ETags differ (multipart or another provider): the target may carry the recorded source ETag */
            struct check *c = calloc(1, sizeof *c);
            if (!c) abort();
            c->p = p;
            c->src.key = strdup(s->key);
            c->src.etag = strdup(s->etag ? s->etag : "");
            c->src.last_modified = s->last_modified ? strdup(s->last_modified) : NULL;
            c->src.size = s->size;
            c->dst_key = strdup(d->key);
            p->inflight++;
            if (!s3_head_object(ctx->dst_r, ctx->o->dst_bucket, d->key, NULL, NULL, check_done, c)) abort();
            return;
        }
    }
    char *dk = dst_key_for(p, s->key);
    if (!dk) abort();
    start_copy(p, s, dk);
    free(dk);
    return;
same:
    ctx->cur.skipped++;
    /* pass 1 records every object, each with the version the target holds (listed in pass 1), so that the run's
     * manifest alone names the whole restore point */
    if (ctx->pass == 1)
        record(ctx, s->key, d->key, s->size, s->etag, s->last_modified, d->etag, d->version_id, NULL, NULL);
}

/* ---- key-range sampling ----
 * Every sample_every-th source key is kept; when more than MAX_SAMPLE are kept, every other one is dropped
 * and the step doubles. The kept keys split the next listing into about nranges equal ranges. */
#define MAX_SAMPLE 1024

void pass_sample_add(struct rep_ctx *ctx, const char *rel)
{
    if (!ctx->sample_every) ctx->sample_every = 1;
    if (ctx->sample_seen++ % ctx->sample_every != ctx->sample_every - 1) return;
    if (!ctx->sample) {
        ctx->sample = calloc(MAX_SAMPLE + 1, sizeof *ctx->sample);
        if (!ctx->sample) return;
    }
    if (ctx->nsample == MAX_SAMPLE) {
        size_t k = 0;
        for (size_t i = 0; i < ctx->nsample; i++) {
            if (i % 2) ctx->sample[k++] = ctx->sample[i];
            else free(ctx->sample[i]);
        }
        ctx->nsample = k;
        ctx->sample_every *= 2;
    }
    char *c = strdup(rel);
    if (c) ctx->sample[ctx->nsample++] = c;
}

static void free_list(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
}

void key_sample_free(struct key_sample *s)
{
    if (!s) return;
    free_list(s->keys, s->n);
    memset(s, 0, sizeof *s);
}

void pass_sample_take(struct rep_ctx *ctx, struct key_sample *out)
{
    out->keys = ctx->sample;
    out->n = ctx->nsample;
    out->seen = ctx->sample_seen;
    ctx->sample = NULL;
    ctx->nsample = 0;
    ctx->sample_every = 0;
    ctx->sample_seen = 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Turns the collected sample into the boundaries for the next pass (at most nranges - 1 of them). */
static void sample_finish(struct rep_ctx *ctx)
{
    int nranges = ctx->o->list_ranges ? ctx->o->list_ranges : 16;
    /* the ranges are joined side by side, so the sample arrives in no particular order */
    if (ctx->nsample > 1) qsort(ctx->sample, ctx->nsample, sizeof *ctx->sample, cmp_key);
    free_list(ctx->bounds, ctx->nbounds);
    ctx->bounds = NULL;
    ctx->nbounds = 0;
    if (nranges > 1 && ctx->nsample >= 2) {
        size_t want = (size_t)nranges - 1;
        if (want > ctx->nsample) want = ctx->nsample;
        ctx->bounds = calloc(want, sizeof *ctx->bounds);
        for (size_t i = 0; ctx->bounds && i < want; i++) {
            char *b = ctx->sample[(i + 1) * ctx->nsample / (want + 1)];
            if (ctx->nbounds && strcmp(ctx->bounds[ctx->nbounds - 1], b) >= 0) continue;
            ctx->bounds[ctx->nbounds] = strdup(b);
            if (ctx->bounds[ctx->nbounds]) ctx->nbounds++;
        }
    }
    /* ListObjectsV2 has no upper bound: size the pages to the keys a range is expected to hold, so that
     * ranges do not list far past their end */
    uint64_t per = ctx->sample_seen / (ctx->nbounds + 1);
    uint64_t page = per + per / 4 + 16;
    ctx->range_page = ctx->nbounds ? (int)(page > 1000 ? 1000 : page) : 0;
    key_sample_free(&ctx->last_sample); /* kept for the target's key-distribution record (shard.c) */
    pass_sample_take(ctx, &ctx->last_sample);
}

void pass_bounds_free(struct rep_ctx *ctx)
{
    free_list(ctx->bounds, ctx->nbounds);
    free_list(ctx->sample, ctx->nsample);
    ctx->bounds = ctx->sample = NULL;
    ctx->nbounds = ctx->nsample = 0;
    key_sample_free(&ctx->last_sample);
}

/* No local sample (a first run here: a new host, a pod, a wiped state folder): the boundaries from the sample
 * the target holds, so that even this run lists its key ranges side by side. */
static void bounds_from_target(struct rep_ctx *ctx)
{
    int n = ctx->o->list_ranges ? ctx->o->list_ranges : 16;
    char **b = NULL;
    uint64_t objects = 0;
    int nb = shard_stored_bounds(ctx, n, &b, &objects);
    if (nb > 0 && (ctx->bounds = calloc((size_t)nb, sizeof *ctx->bounds))) {
        for (int i = 0; i < nb; i++) {
            if (ctx->nbounds && strcmp(ctx->bounds[ctx->nbounds - 1], b[i]) >= 0) continue;
            if ((ctx->bounds[ctx->nbounds] = strdup(b[i]))) ctx->nbounds++;
        }
        uint64_t per = objects / (ctx->nbounds + 1), page = per + per / 4 + 16;
        ctx->range_page = ctx->nbounds ? (int)(page > 1000 ? 1000 : page) : 0;
        s3_log(S3_LOG_INFO, "no key sample in the state folder: %zu key ranges from the sample the target holds",
               ctx->nbounds + 1);
    }
    shard_bounds_free(b, n);
}

void pass_bounds_load(struct rep_ctx *ctx, const char *state_dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ranges.json", state_dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        bounds_from_target(ctx);
        return;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) return;
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "bounds");
    const cJSON *pg = cJSON_GetObjectItemCaseSensitive(j, "page");
    int cnt = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 0;
    ctx->range_page = cJSON_IsNumber(pg) && pg->valuedouble >= 1 && pg->valuedouble <= 1000 ? pg->valueint : 0;
    if (cnt > 0 && (ctx->bounds = calloc((size_t)cnt, sizeof *ctx->bounds))) {
        for (int i = 0; i < cnt; i++) {
            const cJSON *e = cJSON_GetArrayItem(a, i);
            if (!cJSON_IsString(e)) continue;
            if (ctx->nbounds && strcmp(ctx->bounds[ctx->nbounds - 1], e->valuestring) >= 0) continue;
            if ((ctx->bounds[ctx->nbounds] = strdup(e->valuestring))) ctx->nbounds++;
        }
    }
    cJSON_Delete(j);
}

void pass_bounds_save(struct rep_ctx *ctx, const char *state_dir)
{
    if (!ctx->nbounds) return;
    cJSON *j = cJSON_CreateObject();
    cJSON *a = j ? cJSON_AddArrayToObject(j, "bounds") : NULL;
    if (j) cJSON_AddNumberToObject(j, "page", ctx->range_page);
    for (size_t i = 0; a && i < ctx->nbounds; i++) cJSON_AddItemToArray(a, cJSON_CreateString(ctx->bounds[i]));
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/ranges.json", state_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = t ? fopen(tmp, "w") : NULL;
    if (f) {
        bool ok = fputs(t, f) >= 0;
        if (fclose(f) == 0 && ok) rename(tmp, path);
        else unlink(tmp);
    }
    free(t);
}

/* Full keys for the boundaries that fall inside (start_after, end_before) of this run. */
static char **map_bounds(struct rep_ctx *ctx, const char *prefix, size_t *n)
{
    const struct rep_options *o = ctx->o;
    size_t pl = strlen(o->src_prefix);
    const char *sa = o->start_after && strncmp(o->start_after, o->src_prefix, pl) == 0 ? o->start_after + pl : NULL;
    const char *eb = o->end_before && strncmp(o->end_before, o->src_prefix, pl) == 0 ? o->end_before + pl : NULL;
    *n = 0;
    if (!ctx->nbounds) return NULL;
    char **out = calloc(ctx->nbounds, sizeof *out);
    for (size_t i = 0; out && i < ctx->nbounds; i++) {
        if ((sa && strcmp(ctx->bounds[i], sa) <= 0) || (eb && strcmp(ctx->bounds[i], eb) >= 0)) continue;
        if (asprintf(&out[*n], "%s%s", prefix, ctx->bounds[i]) >= 0) (*n)++;
    }
    return out;
}

static void ranges_free(struct pass *p)
{
    for (size_t i = 0; p->rg && i < p->nrg; i++) {
        struct prange *r = &p->rg[i];
        s3_lister_free(r->src_l);
        s3_lister_free(r->dst_l);
        free(r->src_sa);
        free(r->src_incl);
        free(r->dst_sa);
        free(r->dst_incl);
    }
    free(p->rg);
    p->rg = NULL;
    free(p->dst_eb);
    p->dst_eb = NULL;
}

/* Starts the listers of range i; false on ENOMEM. */
static bool range_start(struct pass *p, struct prange *r)
{
    struct rep_ctx *ctx = p->ctx;
    const struct rep_options *o = ctx->o;
    int page = p->nrg > 1 ? ctx->range_page : 0;
    r->started = true;
    p->nstarted++;
    r->src_l = s3_lister_new_range(ctx->src, false, o->src_bucket, o->src_prefix, r->src_sa, o->end_before, r->src_incl,
                                   page, lister_ready, p);
    r->dst_l = s3_lister_new_range(ctx->dst_r, p->versions, o->dst_bucket, o->dst_prefix, r->dst_sa, p->dst_eb,
                                   r->dst_incl, page, lister_ready, p);
    if (!r->src_l || !r->dst_l) return false;
    join_init(&r->join, join_lister(r->src_l, p->src_plen), join_lister(r->dst_l, p->dst_plen));
    return true;
}

static void range_end(struct pass *p, struct prange *r)
{
    r->ended = true;
    p->nended++;
    s3_lister_free(r->src_l);
    s3_lister_free(r->dst_l);
    r->src_l = r->dst_l = NULL;
}

/* One key of range r's join: copy, count, or record. */
static void pump_one(struct pass *p, enum join_status js, const struct s3_object_info *s,
                     const struct s3_object_info *d)
{
    struct rep_ctx *ctx = p->ctx;
    if (s) {
        ctx->cur.listed++;
        pass_sample_add(ctx, s->key + p->src_plen);
    }
    if (js == JOIN_LEFT) { /* only in the source: new */
        char *dk = dst_key_for(p, s->key);
        if (!dk) abort();
        start_copy(p, s, dk);
        free(dk);
    } else if (js == JOIN_RIGHT) { /* only in the target: deleted at the source, kept */
        ctx->cur.extra++;
        rep_note_extra(ctx, d->key);
        if (ctx->pass > 1) record_deleted(ctx, d->key, d->key + p->dst_plen);
    } else {
        compare(p, s, d);
    }
}

static void pump(struct pass *p)
{
    struct rep_ctx *ctx = p->ctx;
    if (ctx->interrupted || ctx->manifest_failed) p->stop = true;
    /* copies only waiting to learn their new version (replicator/versions.h) hold no connection: not counted */
    size_t excused = versions_waiting(ctx->versions);
    if (excused > MAX_EXCUSED) excused = MAX_EXCUSED;
    size_t budget = (size_t)rep_jobs(ctx) + excused;
    /* every active range in turn, each until it waits for a page; a new range starts when one ends */
    for (size_t t = 0; t < p->nrg && !p->stop && (size_t)p->inflight < budget; t++) {
        struct prange *r = &p->rg[(p->rr + t) % p->nrg];
        if (r->ended) continue;
        if (!r->started) {
            if (p->nstarted - p->nended >= MAX_ACTIVE_RANGES) continue;
            if (!range_start(p, r)) {
                s3_log(S3_LOG_ERROR, "out of memory");
                abort();
            }
        }
        while (!p->stop && (size_t)p->inflight < budget) {
            const struct s3_object_info *s, *d;
            enum join_status js = join_next(&r->join, &s, &d);
            if (js == JOIN_WAIT) break;
            if (js == JOIN_END) {
                range_end(p, r);
                t = (size_t)-1; /* a range may start in its place: look at all of them again */
                break;
            }
            if (js == JOIN_ERROR) {
                int side;
                const char *why = join_error(&r->join, &side);
                if (!p->res->listing_failed) {
                    p->res->listing_failed = true;
                    snprintf(p->res->error, sizeof p->res->error, "%s: %s", side ? "target" : "source", why);
                }
                p->stop = true;
                break;
            }
            pump_one(p, js, s, d);
        }
    }
    p->rr = p->nrg ? (p->rr + 1) % p->nrg : 0;
    bool ended = p->nended == p->nrg;
    p->listing_ended = p->listing_ended || ended;
    bool listing_done = p->stop || p->listing_ended;
    /* everything in flight only waits for its version: list them now rather than at the batch's deadline */
    if (p->inflight > 0 && (size_t)p->inflight == versions_waiting(ctx->versions)) versions_flush(ctx->versions);
    if (listing_done && p->inflight == 0 && !p->finished) {
        p->finished = true;
        ev_break(s3_loop_ev(ctx->loop), EVBREAK_ONE);
    }
}

static void deadline_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct pass *p = w->data;
    p->deadline_hit = true;
    p->stop = true;
    s3_loop_cancel_all(p->ctx->loop);
    schedule_pump(p);
}

/* Whether the failures noted so far name the key of NOTE, whose first keylen bytes are "key: " (the length noted
 * with it: a key may itself hold ": ", so the note is not searched for it). */
static bool failure_noted(const struct rep_ctx *ctx, const char *note, size_t keylen)
{
    for (size_t i = 0; i < ctx->nfailures; i++)
        if (ctx->failure_keylen[i] == keylen && strncmp(ctx->failures[i], note, keylen) == 0) return true;
    return false;
}

int pass_run(struct rep_ctx *ctx, bool maintenance, double deadline, struct pass_result *out)
{
    const struct rep_options *o = ctx->o;
    struct ev_loop *ev = s3_loop_ev(ctx->loop);
    struct pass p = {.ctx = ctx, .res = out};
    memset(out, 0, sizeof *out);
    memset(&ctx->cur, 0, sizeof ctx->cur);
    for (size_t i = 0; i < ctx->nextras; i++) free(ctx->extras[i]); /* each pass lists the extras anew */
    ctx->nextras = 0;
    for (size_t i = 0; i < ctx->narchived; i++) free(ctx->archived[i]); /* and the archived objects */
    ctx->narchived = 0;
    ev_now_update(ev);
    out->started = ev_now(ev);
    ctx->pass_started = out->started;
    out->maintenance = maintenance;
    p.src_plen = strlen(o->src_prefix);
    p.dst_plen = strlen(o->dst_prefix);
    ev_idle_init(&p.kick, kick_cb);
    p.kick.data = &p;

    char *dst_sa = join_map_bound(o, o->start_after);
    p.dst_eb = join_map_bound(o, o->end_before);
    /* both listings split at the same relative keys: range i is (b[i-1], b[i]] on each side */
    size_t nsb = 0, ndb = 0;
    char **sb = map_bounds(ctx, o->src_prefix, &nsb), **db = map_bounds(ctx, o->dst_prefix, &ndb);
    if (nsb != ndb) nsb = ndb = 0; /* cannot happen (the same relative bounds): list in one range then */
    /* pass 1 lists the target's versions, so that every object it records names its version */
    p.versions = ctx->pass == 1 && ctx->mw && ctx->target_versioned;
    p.nrg = nsb + 1;
    p.rg = calloc(p.nrg, sizeof *p.rg);
    bool oom = !p.rg;
    for (size_t i = 0; !oom && i < p.nrg; i++) {
        struct prange *r = &p.rg[i];
        const char *ssa = i ? sb[i - 1] : o->start_after, *dsa = i ? db[i - 1] : dst_sa;
        r->src_sa = ssa ? strdup(ssa) : NULL;
        r->dst_sa = dsa ? strdup(dsa) : NULL;
        r->src_incl = i < nsb ? strdup(sb[i]) : NULL;
        r->dst_incl = i < ndb ? strdup(db[i]) : NULL;
        oom = (ssa && !r->src_sa) || (dsa && !r->dst_sa) || (i < nsb && (!r->src_incl || !r->dst_incl));
    }
    free_list(sb, nsb);
    free_list(db, ndb);
    free(dst_sa);
    if (oom) {
        ranges_free(&p);
        snprintf(out->error, sizeof out->error, "out of memory");
        return -1;
    }
    if (deadline > 0) {
        ev_timer_init(&p.deadline, deadline_cb, deadline - ev_now(ev) > 0 ? deadline - ev_now(ev) : 0, 0.);
        p.deadline.data = &p;
        ev_timer_start(ev, &p.deadline);
    }
    /* A pass that completes its listing examines every key again, so its failures replace those of earlier
     * passes: an object that failed twice is one failure, one that failed and was then copied is none. */
    char *earlier[MAX_REPORTED];
    size_t earlier_keylen[MAX_REPORTED], nearlier = ctx->nfailures;
    memcpy(earlier, ctx->failures, nearlier * sizeof *earlier);
    memcpy(earlier_keylen, ctx->failure_keylen, nearlier * sizeof *earlier_keylen);
    ctx->nfailures = 0;
    versions_on_ask(ctx->versions, pass_kick, &p);
    schedule_pump(&p);
    while (!p.finished) ev_run(ev, 0);
    versions_on_ask(ctx->versions, NULL, NULL);
    if (deadline > 0) ev_timer_stop(ev, &p.deadline);
    ev_idle_stop(ev, &p.kick);
    ranges_free(&p);
    if (!out->listing_failed && !ctx->interrupted && !p.deadline_hit) sample_finish(ctx);
    ev_now_update(ev);
    out->duration = ev_now(ev) - out->started;
    out->st = ctx->cur;
    out->interrupted = ctx->interrupted || p.deadline_hit;
    if (p.deadline_hit && !out->error[0])
        snprintf(out->error, sizeof out->error, "the pass was stopped at the --maintenance-max deadline");
    if (ctx->manifest_failed && !out->error[0]) snprintf(out->error, sizeof out->error, "%s", ctx->manifest_error);
    bool complete = !(out->listing_failed || out->interrupted || ctx->manifest_failed);
    for (size_t i = 0; i < nearlier; i++) { /* an incomplete pass may not have reached them: keep them */
        if (!complete && ctx->nfailures < MAX_REPORTED && !failure_noted(ctx, earlier[i], earlier_keylen[i])) {
            ctx->failure_keylen[ctx->nfailures] = earlier_keylen[i];
            ctx->failures[ctx->nfailures++] = earlier[i];
        } else {
            free(earlier[i]);
        }
    }
    return complete ? 0 : -1;
}
