/* The shard records a backup keeps in its target (.replicate/ranges*.json, .replicate/shards/) and what a run
 * does with them: resolve --shard I/N into a key range, store the sample at the end. See replicator/shard.h.
 * Must not: write outside the target's reserved prefix (.replicate/). */
#include <cJSON.h>
#include <errno.h>
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "replicator/output.h"
#include "replicator/restore.h"
#include "replicator/shard.h"
#include "replicator/store.h"
#include "s3/list.h"
#include "s3/log.h"

#define RECORD_MAX (4u << 20) /* a ranges record or split larger than this is not one of ours */

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* "" for a bucket-wide target, else "-" and 12 hex digits of a hash of the target prefix. */
static void target_suffix(const struct rep_options *o, char *out, size_t n)
{
    if (!o->dst_prefix[0]) {
        snprintf(out, n, "%s", "");
        return;
    }
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(o->dst_prefix, strlen(o->dst_prefix), md, &ml, EVP_sha256(), NULL);
    snprintf(out, n, "-%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4], md[5]);
}

static void sample_key(const struct rep_options *o, char *out, size_t n)
{
    char sfx[16];
    target_suffix(o, sfx, sizeof sfx);
    snprintf(out, n, "%sranges%s.json", RESERVED_PREFIX, sfx);
}

static void plan_key(const struct rep_options *o, const char *run_id, char *out, size_t n)
{
    char sfx[16];
    target_suffix(o, sfx, sizeof sfx);
    snprintf(out, n, "%s%s%s.json", SHARD_PLAN_PREFIX, run_id, sfx);
}

static void source_id(const struct rep_options *o, char *out, size_t n)
{
    snprintf(out, n, "s3://%s/%s", o->src_bucket, o->src_prefix);
}

/* GETs a small record of the target: 1 with its body (malloc'd), 0 when there is none, -1 (message in err). */
static int get_record(struct rep_ctx *ctx, const char *key, char **body, size_t *len, char *err, size_t errlen)
{
    struct s3_request_spec s = {.method = "GET", .bucket = ctx->o->dst_bucket, .key = key, .max_body = RECORD_MAX};
    struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
    *body = NULL;
    *len = 0;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    if (r->err == S3_OK) {
        *body = r->body;
        *len = r->body_len;
        r->body = NULL;
        rc = *body ? 1 : 0;
    } else if (r->status == 404) {
        rc = 0;
    } else {
        snprintf(err, errlen, "%s", r->message);
    }
    s3_response_free(r);
    return rc;
}

/* PUTs a record; with exclusive, only if there is none (If-None-Match: *). 0 written, 1 there was one already
 * (412), -1 (message in err). */
static int put_record(struct rep_ctx *ctx, const char *key, const char *body, bool exclusive, char *err,
                      size_t errlen)
{
    struct s3_header h[] = {{"Content-Type", "application/json"}, {"If-None-Match", "*"}};
    struct s3_request_spec s = {.method = "PUT", .bucket = ctx->o->dst_bucket, .key = key, .headers = h,
                                .nheaders = exclusive ? 2 : 1, .body = body, .body_len = strlen(body)};
    struct s3_response *r = s3_request_wait(ctx->dst, &s);
    int rc = -1;
    if (!r) snprintf(err, errlen, "out of memory");
    else if (r->err == S3_OK) rc = 0;
    else if (exclusive && (r->status == 412 || r->status == 409)) rc = 1;
    else snprintf(err, errlen, "%s", r->message);
    s3_response_free(r);
    return rc;
}


/* The first-run sampling listing: every source key under the prefix, one page at a time, through the passes'
 * sampler (at most 1024 keys kept, so memory is bounded whatever the bucket's size). */
static int sample_walk(struct rep_ctx *ctx, struct key_sample *out, char *err, size_t errlen)
{
    const struct rep_options *o = ctx->o;
    bool ready = false;
    size_t plen = strlen(o->src_prefix);
    struct s3_lister *l =
        s3_lister_new(ctx->src, o->src_bucket, o->src_prefix, NULL, NULL, 0, store_lister_ready, &ready);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    for (;;) {
        const struct s3_object_info *oi;
        enum s3_list_status st = store_lister_next(ctx, l, &ready, &oi);
        if (st == S3_LIST_OBJECT) {
            if (plen == 0 && strncmp(oi->key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0) continue;
            pass_sample_add(ctx, oi->key + plen);
        } else if (st == S3_LIST_END) {
            break;
        } else {
            store_lister_error(ctx, l, err, errlen, "listing s3://%s/%s to sample its keys", o->src_bucket,
                               o->src_prefix);
            rc = -1;
            break;
        }
    }
    s3_lister_free(l);
    pass_sample_take(ctx, out);
    if (rc != 0) key_sample_free(out);
    return rc;
}

static char *plan_json(const struct rep_options *o, const char *run_id, char *const *bounds, int n)
{
    char src[2200];
    source_id(o, src, sizeof src);
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "format", 1);
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "run_id", run_id);
    cJSON_AddStringToObject(j, "source", src);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddNumberToObject(j, "count", n);
    cJSON_AddNumberToObject(j, "created", (double)time(NULL));
    cJSON *a = cJSON_AddArrayToObject(j, "bounds");
    for (int i = 0; a && i < n - 1; i++) cJSON_AddItemToArray(a, cJSON_CreateString(bounds[i]));
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* The run's pinned split: 1 with *bounds, 0 when there is none, -1 (message in err; a split for another
 * number of shards or another source is an error: shards of one run must agree). */
static int read_plan(struct rep_ctx *ctx, const char *key, char ***bounds, char *err, size_t errlen)
{
    const struct rep_options *o = ctx->o;
    char *body = NULL, shown[600];
    size_t len = 0;
    *bounds = NULL;
    int rc = get_record(ctx, key, &body, &len, err, errlen);
    if (rc <= 0) return rc;
    cJSON *j = cJSON_ParseWithLength(body, len);
    free(body);
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(j, "count"), *a = cJSON_GetObjectItemCaseSensitive(j, "bounds");
    char src[2200];
    source_id(o, src, sizeof src);
    const char *jsrc = json_str(j, "source");
    int n = o->shard_n;
    rc = -1;
    if (!cJSON_IsNumber(cnt) || !cJSON_IsArray(a) || !jsrc) {
        snprintf(err, errlen, "s3://%s/%s is not a split this tool wrote", o->dst_bucket, key);
    } else if (cnt->valuedouble != n || cJSON_GetArraySize(a) != n - 1) {
        snprintf(err, errlen, "run %s was split into %.0f shards (s3://%s/%s), not %d: give its shards the same "
                 "count, or another --run-id", json_str(j, "run_id") ? json_str(j, "run_id") : "?",
                 cnt->valuedouble, o->dst_bucket, key, n);
    } else if (strcmp(jsrc, src) != 0) {
        snprintf(shown, sizeof shown, "%s", jsrc);
        snprintf(err, errlen, "run %s is a backup of %s, not of s3://%s/%s: use another --run-id",
                 json_str(j, "run_id") ? json_str(j, "run_id") : "?", shown, o->src_bucket, o->src_prefix);
    } else if ((*bounds = calloc(n > 1 ? (size_t)n - 1 : 1, sizeof **bounds))) {
        rc = 1;
        for (int i = 0; i < n - 1; i++) {
            const cJSON *e = cJSON_GetArrayItem(a, i);
            if (!cJSON_IsString(e) || (i && strcmp((*bounds)[i - 1], e->valuestring) > 0) ||
                !((*bounds)[i] = strdup(e->valuestring))) {
                snprintf(err, errlen, "s3://%s/%s: boundaries out of order", o->dst_bucket, key);
                shard_bounds_free(*bounds, n);
                *bounds = NULL;
                rc = -1;
                break;
            }
        }
    } else {
        snprintf(err, errlen, "out of memory");
    }
    cJSON_Delete(j);
    return rc;
}

/* The sample in the target, or (none yet, or of another source) one taken by listing the source, which is then
 * stored. *from says which. 0 or -1 (message in err). */
static int load_sample(struct rep_ctx *ctx, const char *key, struct shard_sample *smp, const char **from, char *err,
                       size_t errlen)
{
    const struct rep_options *o = ctx->o;
    char src[2200], *body = NULL;
    size_t len = 0;
    source_id(o, src, sizeof src);
    memset(smp, 0, sizeof *smp);
    int rc = get_record(ctx, key, &body, &len, err, errlen);
    if (rc < 0) return -1;
    if (rc > 0 && shard_sample_parse(body, len, smp) == 0 && smp->source && strcmp(smp->source, src) == 0) {
        free(body);
        *from = "the key sample stored in the target";
        return 0;
    }
    free(body);
    shard_sample_free(smp);
    rep_say(o, "no key sample of %s in the target yet: listing the source once to sample it\n", src);
    struct key_sample ks = {0};
    if (sample_walk(ctx, &ks, err, errlen) != 0) return -1;
    rc = shard_sample_merge(smp, src, NULL, NULL, &ks);
    key_sample_free(&ks);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *from = "a sampling listing of the source";
    char *t = o->dry_run ? NULL : shard_sample_json(smp, o->dst_url, NULL, (int64_t)time(NULL));
    if (t && put_record(ctx, key, t, false, err, errlen) != 0)
        s3_log_user(S3_LOG_WARN, "storing the key sample in s3://%s/%s failed: %s", o->dst_bucket, key, err);
    free(t);
    return 0;
}

int shard_stored_bounds(struct rep_ctx *ctx, int n, char ***bounds, uint64_t *objects)
{
    char key[256], src[2200], err[1400], *body = NULL;
    size_t len = 0;
    struct shard_sample smp = {0};
    *bounds = NULL;
    *objects = 0;
    if (n < 2) return 0;
    sample_key(ctx->o, key, sizeof key);
    source_id(ctx->o, src, sizeof src);
    int rc = get_record(ctx, key, &body, &len, err, sizeof err);
    if (rc > 0 && shard_sample_parse(body, len, &smp) == 0 && smp.source && strcmp(smp.source, src) == 0) {
        for (size_t i = 0; i < smp.nseg; i++) *objects += smp.seg[i].objects;
        *bounds = *objects ? shard_bounds(&smp, n) : NULL;
    }
    free(body);
    shard_sample_free(&smp);
    return *bounds ? n - 1 : 0;
}

int shard_resolve(struct rep_ctx *ctx, struct rep_options *o, const char *run_id)
{
    if (o->shard_n <= 1) return EXIT_OK; /* one shard: the whole key space, no split to compute */
    int n = o->shard_n;
    char skey[256], pkey[512], err[1400];
    sample_key(o, skey, sizeof skey);
    plan_key(o, run_id, pkey, sizeof pkey);
    char **bounds = NULL;
    const char *from = NULL;
    int rc = o->shared_run_id ? read_plan(ctx, pkey, &bounds, err, sizeof err) : 0;
    if (rc > 0) from = "the run's split";
    if (rc == 0) {
        struct shard_sample smp;
        if (load_sample(ctx, skey, &smp, &from, err, sizeof err) != 0) rc = -1;
        else if (!(bounds = shard_bounds(&smp, n))) {
            snprintf(err, sizeof err, "out of memory");
            rc = -1;
        }
        shard_sample_free(&smp);
    }
    if (rc == 0 && o->shared_run_id && !o->dry_run) {
        /* pin the split for the run's other shards: the first writer wins. Where the server ignores
         * If-None-Match, two shards that both wrote read back the later record a second later. */
        char *t = plan_json(o, run_id, bounds, n);
        int w = t ? put_record(ctx, pkey, t, true, err, sizeof err) : -1;
        free(t);
        if (w == 0) rep_sleep(ctx, 1.0);
        char **pinned = NULL;
        if (w >= 0 && read_plan(ctx, pkey, &pinned, err, sizeof err) > 0) {
            shard_bounds_free(bounds, n);
            bounds = pinned;
            if (w == 1) from = "the run's split";
        } else {
            if (w >= 0 && !err[0]) snprintf(err, sizeof err, "the split did not read back");
            rc = -1;
        }
    }
    if (rc < 0 || ctx->interrupted) {
        shard_bounds_free(bounds, n);
        if (ctx->interrupted) return EXIT_INTERRUPTED;
        s3_log_user(S3_LOG_ERROR, "cannot split the key space into %d shards: %s", n, err);
        return EXIT_FAILED;
    }
    free(o->shard_start_after);
    free(o->shard_end_before);
    rc = shard_range(bounds, n, o->shard_i, o->src_prefix, &o->shard_start_after, &o->shard_end_before);
    if (rc == 0 && !o->quiet)
        rep_say(o, "shard %d of %d (from %s): keys %s%s%s through %s%s%s\n", o->shard_i, n, from,
                o->shard_i ? "after \"" : "from the start", o->shard_i ? bounds[o->shard_i - 1] : "",
                o->shard_i ? "\"" : "", o->shard_i < n - 1 ? "\"" : "", o->shard_i < n - 1 ? bounds[o->shard_i] : "the end",
                o->shard_i < n - 1 ? "\"" : "");
    shard_bounds_free(bounds, n);
    if (rc != 0) {
        s3_log_user(S3_LOG_ERROR, "out of memory");
        return EXIT_FAILED;
    }
    o->start_after = o->shard_start_after;
    o->end_before = o->shard_end_before;
    return EXIT_OK;
}

void shard_store_sample(struct rep_ctx *ctx, const char *run_id)
{
    const struct rep_options *o = ctx->o;
    if (o->dry_run || ctx->interrupted || !ctx->last_sample.seen) return;
    /* a shard without a shared run id only reads the sample: its siblings may still be computing their ranges
     * from it, and a changed sample would move their boundaries */
    if (o->shard_n ? !o->shared_run_id : (o->start_after || o->end_before)) return;
    char key[256], src[2200], err[1400];
    sample_key(o, key, sizeof key);
    source_id(o, src, sizeof src);
    size_t pl = strlen(o->src_prefix);
    char *sa = o->start_after ? strdup(o->start_after + pl) : NULL;
    char *eb = o->end_before ? strdup(o->end_before + pl) : NULL;
    if (eb && eb[0] && eb[strlen(eb) - 1] == '\x01') eb[strlen(eb) - 1] = '\0'; /* the range ends at it */
    struct shard_sample smp = {0};
    if (o->shard_n) { /* replace this shard's segment only */
        char *body = NULL;
        size_t len = 0;
        if (get_record(ctx, key, &body, &len, err, sizeof err) > 0 && shard_sample_parse(body, len, &smp) != 0)
            memset(&smp, 0, sizeof smp);
        free(body);
    }
    char *t = NULL;
    if (shard_sample_merge(&smp, src, sa, eb, &ctx->last_sample) == 0)
        t = shard_sample_json(&smp, o->dst_url, run_id, (int64_t)time(NULL));
    if (!t) snprintf(err, sizeof err, "out of memory");
    if (!t || put_record(ctx, key, t, false, err, sizeof err) != 0)
        s3_log_user(S3_LOG_WARN, "storing the key sample in s3://%s/%s failed: %s", o->dst_bucket, key, err);
    else
        s3_log(S3_LOG_INFO, "stored the key sample (%zu keys of %llu) in s3://%s/%s", ctx->last_sample.n,
               (unsigned long long)ctx->last_sample.seen, o->dst_bucket, key);
    free(t);
    free(sa);
    free(eb);
    shard_sample_free(&smp);
}

int shard_open_run(struct s3_reader *r, const char *bucket, const struct stored_manifest *sm, size_t n, size_t at,
                   struct restore_run *run, char *err, size_t errlen)
{
    char want[80], got[80];
    int wi, wn, gi, gn;
    if (!shard_parse_name(sm[at].key, want, sizeof want, &wi, &wn)) {
        snprintf(err, errlen, "%s is not a shard's manifest", sm[at].key);
        return -1;
    }
    FILE *all = store_temp_file(run->manifest_path, sizeof run->manifest_path);
    if (!all) {
        snprintf(err, errlen, "cannot create a temporary file: %s", strerror(errno));
        run->manifest_path[0] = '\0';
        return -1;
    }
    struct shard_group *g = NULL;
    int rc = 0;
    /* the run's manifests are next to each other in the listing; their key ranges are disjoint, so the
     * concatenation of the files holds the union of their restore points */
    for (size_t j = 0; j < n && rc == 0; j++) {
        if (!shard_parse_name(sm[j].key, got, sizeof got, &gi, &gn) || strcmp(got, want) != 0 || gn != wn) continue;
        char path[4200];
        struct manifest_summary s;
        if (store_download(r, bucket, &sm[j], false, path, sizeof path, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (manifest_summary_read(path, &s, err, errlen) != 0) {
            unlink(path);
            rc = -1;
            break;
        }
        if (!g && !(g = shard_group_new(&s))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else {
            shard_group_add(g, &s); /* the first one was added by shard_group_new: a second add is a no-op */
        }
        manifest_summary_free(&s);
        FILE *f = rc == 0 ? fopen(path, "r") : NULL;
        if (rc == 0 && !f) {
            snprintf(err, errlen, "reading a temporary file: %s", strerror(errno));
            rc = -1;
        }
        char buf[65536];
        size_t k;
        while (rc == 0 && f && (k = fread(buf, 1, sizeof buf, f)) > 0) {
            if (fwrite(buf, 1, k, all) != k) {
                snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
                rc = -1;
            }
        }
        if (f) fclose(f);
        unlink(path);
    }
    if (fclose(all) != 0 && rc == 0) {
        snprintf(err, errlen, "writing a temporary file: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && g && shard_group_finish(g) > 0) {
        char text[1500];
        shard_group_problems(g, text, sizeof text);
        for (char *p = text; (p = strchr(p, '\n'));) *p = ';';
        snprintf(err, errlen, "it is not a whole restore point: %s", text);
        rc = -1;
    }
    if (rc == 0 && g) {
        snprintf(run->run_id, sizeof run->run_id, "%s", g->run_id);
        run->source = g->agg.source ? strdup(g->agg.source) : NULL;
        run->ended = g->agg.trailer.ended;
        run->gap = g->agg.trailer.gap;
        run->result = strdup(g->agg.result ? g->agg.result : "?");
        run->complete = true; /* every shard ended ok */
    }
    if (rc != 0) {
        unlink(run->manifest_path);
        run->manifest_path[0] = '\0';
    }
    shard_group_free(g);
    return rc;
}
