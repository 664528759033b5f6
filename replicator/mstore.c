/* The stored copy of a run's manifest. See replicator/mstore.h.
 * Owns: the choice of the base, the local copies of manifests. Must not: write to S3 (run.c uploads). */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "manifest/chain.h"
#include "manifest/manifest.h"
#include "replicator/mstore.h"
#include "replicator/options.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/store.h"
#include "s3/log.h"

#define RUN_POINT_RECORDS 32768 /* records a restore point sorts in memory here: the run keeps its flat memory */
#define SEED_MANIFESTS_MAX 16   /* newest stored manifests looked at for a seed (killed runs after the last good one) */

/* The header of a stored copy: its depth, the digest of its restore point and its base ("" for a full one).
 * 0, or -1. */
static int stored_header(const char *path, int *depth, char *digest, size_t dlen, char *base, size_t blen)
{
    struct manifest_reader *r = manifest_reader_open(path, NULL, 0);
    struct manifest_record rec;
    int rc = -1, got;
    while (r && rc != 0 && (got = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
        if (got < 0) break; /* a stored copy's header is its first line */
        if (rec.type != MANIFEST_REC_HEADER || !rec.header.have_point) break;
        *depth = rec.header.depth;
        snprintf(digest, dlen, "%s", rec.header.point_digest);
        snprintf(base, blen, "%s", rec.header.base ? rec.header.base : "");
        rc = 0;
    }
    manifest_reader_close(r);
    return rc;
}

/* Whether the target holds key at this size: a base the target lost cannot be one. */
static bool target_holds(struct rep_ctx *ctx, const char *key, off_t size, char *why, size_t wlen)
{
    struct s3_request_spec s = {.method = "HEAD", .bucket = ctx->o->dst_bucket, .key = key};
    struct s3_response *r = s3_reader_request_wait(ctx->dst_r, &s);
    const char *cl = r && r->err == S3_OK ? s3_response_header(r, "content-length") : NULL;
    bool ok = cl && strtoll(cl, NULL, 10) == (long long)size;
    if (!ok)
        snprintf(why, wlen, "%s", !r ? "out of memory" : r->err != S3_OK ? r->message : "its size differs from the local copy");
    s3_response_free(r);
    return ok;
}

/* Whether the target holds the stored copy of NAME.jsonl and every manifest of its chain as they are here (one
 * HEAD each, at most MANIFEST_CHAIN_MAX_DEPTH + 1): a delta on a chain the target lost a link of would be
 * as broken as that chain. why says what is missing. */
static bool chain_held(struct rep_ctx *ctx, const char *mdir, const char *name, char *why, size_t wlen)
{
    char stored[256];
    snprintf(stored, sizeof stored, "%s.gz", name);
    for (int links = 0; links <= MANIFEST_CHAIN_MAX_DEPTH + 1; links++) {
        char path[4500], key[1200], digest[40], base[256], err[1300];
        struct stat st;
        int depth = 0;
        snprintf(path, sizeof path, "%s/%s", mdir, stored);
        snprintf(key, sizeof key, "%s%s", MANIFEST_PREFIX, stored);
        if (stat(path, &st) != 0) {
            /* an older run stored uncompressed (format 1, full, as written): its own manifest is the copy */
            snprintf(why, wlen, "%s is not in the state folder", path);
            return false;
        }
        if (!target_holds(ctx, key, st.st_size, err, sizeof err)) {
            snprintf(why, wlen, "s3://%s/%s: %s", ctx->o->dst_bucket, key, err);
            return false;
        }
        bool compressed = strlen(stored) > 3 && !strcmp(stored + strlen(stored) - 3, ".gz");
        if (!compressed || stored_header(path, &depth, digest, sizeof digest, base, sizeof base) != 0) return compressed ? false : true;
        if (!base[0]) return true;
        snprintf(stored, sizeof stored, "%s", base);
    }
    snprintf(why, wlen, "the chain of %s is longer than a chain is made", name);
    return false;
}

static int cmp_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* Stored copies (NAME.jsonl.gz) in dir whose own manifest is there too, newest first. */
static char **candidates(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    char **list = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d) return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 9 || strcmp(e->d_name + l - 9, ".jsonl.gz") != 0) continue;
        if (*n == cap) {
            char **p = realloc(list, (cap = cap ? cap * 2 : 16) * sizeof *p);
            if (!p) break;
            list = p;
        }
        if (!(list[*n] = strndup(e->d_name, l - 3))) break; /* NAME.jsonl */
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(list, *n, sizeof *list, cmp_desc);
    return list;
}

/* The meta text of a saved point: which backup it belongs to. */
static char *point_meta(const struct rep_ctx *ctx)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "source", ctx->o->src_url) ||
        !cJSON_AddStringToObject(m, "target", ctx->o->dst_url)) {
        cJSON_Delete(m);
        return NULL;
    }
    char *t = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    return t;
}

/* The restore point a complete run saved beside its manifest (PATH.jsonl -> PATH.point), read back and checked;
 * with want, only if its meta text is that. NULL: none, another backup's, or damaged (said). */
static struct manifest_point *open_saved(const char *manifest_path, const char *want, char **meta_out)
{
    size_t l = strlen(manifest_path), sl = sizeof ".jsonl" - 1;
    if (l <= sl || strcmp(manifest_path + l - sl, ".jsonl") != 0) return NULL;
    char path[4400], err[1024], *meta = NULL;
    snprintf(path, sizeof path, "%.*s.point", (int)(l - sl), manifest_path);
    if (access(path, F_OK) != 0) return NULL;
    struct manifest_point *pt = manifest_point_open(path, &meta, err, sizeof err);
    if (!pt) {
        s3_log(S3_LOG_WARN, "ignoring the saved restore point %s: %s", path, err);
    } else if (want && (!meta || strcmp(meta, want) != 0)) {
        manifest_point_free(pt);
        pt = NULL;
    }
    if (pt && meta_out) *meta_out = meta;
    else free(meta);
    return pt;
}

struct manifest_point *mstore_open_prev_point(struct rep_ctx *ctx, const char *manifest_path)
{
    mstore_drop_point(ctx);
    char *meta = NULL;
    struct manifest_point *pt = open_saved(manifest_path, NULL, &meta);
    if (pt && (!meta || !(ctx->prev_point_path = strdup(manifest_path)))) {
        manifest_point_free(pt);
        free(meta);
        return NULL;
    }
    ctx->prev_point = pt;
    ctx->prev_point_meta = meta;
    return pt;
}

void mstore_drop_point(struct rep_ctx *ctx)
{
    manifest_point_free(ctx->prev_point);
    free(ctx->prev_point_path);
    free(ctx->prev_point_meta);
    ctx->prev_point = NULL;
    ctx->prev_point_path = ctx->prev_point_meta = NULL;
}

/* NAME.point in mdir, if it belongs to this source and target; NULL otherwise (the caller builds the point from
 * NAME.jsonl then). */
static struct manifest_point *saved_point(struct rep_ctx *ctx, const char *mdir, const char *name)
{
    char full[4400], *want = point_meta(ctx);
    snprintf(full, sizeof full, "%s/%s", mdir, name);
    struct manifest_point *pt = NULL;
    if (ctx->prev_point && strcmp(ctx->prev_point_path, full) == 0) { /* read by run_load_index: not again */
        if (want && strcmp(ctx->prev_point_meta, want) == 0 && manifest_point_rewind(ctx->prev_point) == 0) {
            pt = ctx->prev_point;
            ctx->prev_point = NULL;
        }
        mstore_drop_point(ctx);
    } else if (want) {
        pt = open_saved(full, want, NULL);
    }
    free(want);
    return pt;
}

/* Finds the base and builds its restore point into *b (b->point NULL: none, full). */
static void pick_base(struct rep_ctx *ctx, const char *mdir, const char *self, struct manifest_base *b,
                      char *name, size_t nlen)
{
    size_t n = 0;
    char **list = candidates(mdir, &n);
    b->point = NULL;
    const char *why = "no earlier complete run in the state folder has stored its manifest";
    char detail[9600] = "";
    for (size_t i = 0; i < n && !b->point; i++) {
        if (strcmp(list[i], self) == 0) continue;
        char full[4400], gz[4400];
        snprintf(full, sizeof full, "%s/%s", mdir, list[i]);
        snprintf(gz, sizeof gz, "%s/%s.gz", mdir, list[i]);
        struct manifest_summary s;
        char err[5000];
        struct stat st;
        /* a saved point exists only for a complete, unsharded run (mstore_commit) */
        struct manifest_point *pt = saved_point(ctx, mdir, list[i]);
        if (!pt) {
            if (stat(full, &st) != 0 || manifest_summary_read(full, &s, err, sizeof err) != 0) continue;
            bool fits = store_summary_complete(&s) && s.shard_count == 0 && s.source && s.target &&
                        !strcmp(s.source, ctx->o->src_url) && !strcmp(s.target, ctx->o->dst_url);
            manifest_summary_free(&s);
            if (!fits) continue;
        }
        /* the newest complete run is the base, or there is none: an older one would make a longer delta */
        int depth = 0;
        char digest[40];
        char base[256];
        if (stored_header(gz, &depth, digest, sizeof digest, base, sizeof base) != 0) {
            why = "the stored copy of the last complete run is unreadable here";
            snprintf(detail, sizeof detail, " (%s)", gz);
            manifest_point_free(pt);
            break;
        }
        if (!chain_held(ctx, mdir, list[i], err, sizeof err)) {
            why = "the target does not hold the whole chain of the last complete run's manifest";
            snprintf(detail, sizeof detail, " (%s)", err);
            manifest_point_free(pt);
            break;
        }
        if (!pt) pt = manifest_point_build(full, NULL, RUN_POINT_RECORDS, err, sizeof err);
        if (!pt || strcmp(manifest_point_stats(pt)->digest, digest) != 0) {
            why = "the last complete run's manifest here does not give the restore point it stored";
            snprintf(detail, sizeof detail, " (%s: %s)", full, pt ? "another digest" : err);
            manifest_point_free(pt);
            break;
        }
        snprintf(name, nlen, "%s.gz", list[i]);
        b->name = name;
        b->depth = depth;
        b->point = pt;
    }
    if (!b->point) {
        bool loud = detail[0] != '\0'; /* a chain that broke is news; a first run is not */
        s3_log(loud ? S3_LOG_WARN : S3_LOG_INFO, "this run's manifest is stored full: %s%s", why, detail);
    }
    for (size_t i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* Saved points of earlier runs whose stored copy never reached the target (RUN.point.tmp): one run at a time
 * uses a state folder (its lock), so any left now is litter. */
static void remove_stray_points(const char *mdir)
{
    DIR *d = opendir(mdir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name), sl = sizeof ".point.tmp" - 1;
        if (l <= sl || strcmp(e->d_name + l - sl, ".point.tmp") != 0) continue;
        char path[4500];
        snprintf(path, sizeof path, "%s/%s", mdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

struct manifest_point *mstore_saved_point(const char *manifest_path)
{
    return open_saved(manifest_path, NULL, NULL);
}

void mstore_watch(struct rep_ctx *ctx, struct manifest_writer *mw)
{
    if (!(ctx->pb = manifest_point_builder_new(NULL, RUN_POINT_RECORDS))) return; /* read back from the file */
    manifest_writer_tee(mw, manifest_point_builder_tee, ctx->pb);
}

int mstore_prepare(struct rep_ctx *ctx, const char *state, const char *full_path, const char *run_name, char *out,
                   size_t outlen, struct manifest_store_info *info)
{
    char mdir[4200], self[200], err[1024], bname[256], saved[4400];
    snprintf(mdir, sizeof mdir, "%s/manifests", state);
    snprintf(self, sizeof self, "%s.jsonl", run_name);
    snprintf(out, outlen, "%s/%s.gz.tmp", mdir, self);
    snprintf(saved, sizeof saved, "%s/%s.point.tmp", mdir, run_name);
    remove_stray_points(mdir);
    /* the point built as the manifest was written, else (no builder: out of memory) read back from it */
    struct manifest_point *pt = NULL;
    char *meta = point_meta(ctx);
    if (ctx->pb) {
        pt = manifest_point_builder_finish(ctx->pb, err, sizeof err);
        ctx->pb = NULL;
    } else {
        pt = manifest_point_build(full_path, NULL, RUN_POINT_RECORDS, err, sizeof err);
    }
    if (!pt) {
        s3_log_user(S3_LOG_ERROR, "reading the run's manifest %s: %s", full_path, err);
        free(meta);
        return -1;
    }
    struct manifest_base base = {0};
    pick_base(ctx, mdir, self, &base, bname, sizeof bname);
    int rc = manifest_store_write(full_path, pt, base.point ? &base : NULL, out, true, info, err, sizeof err);
    if (rc != 0) s3_log_user(S3_LOG_ERROR, "writing the manifest's stored copy: %s", err);
    else if (info->delta)
        s3_log(S3_LOG_INFO, "manifest stored as a delta on %s: %llu records for %llu objects (chain depth %d)",
               base.name, (unsigned long long)info->records, (unsigned long long)info->entries, info->depth);
    else
        s3_log(S3_LOG_INFO, "manifest stored full: %llu objects%s%s%s", (unsigned long long)info->entries,
               info->why_full ? " (" : "", info->why_full ? info->why_full : "", info->why_full ? ")" : "");
    /* kept for the next run's base (mstore_commit), so that it need not read this run's manifest again */
    if (rc == 0 && meta && manifest_point_save(pt, saved, meta, err, sizeof err) != 0)
        s3_log(S3_LOG_WARN, "cannot save the run's restore point for the next run: %s", err);
    free(meta);
    manifest_point_free(base.point);
    manifest_point_free(pt);
    return rc;
}

/* PATH ending in ".jsonl.gz.tmp" -> the saved point's path, RUN.point (final) or RUN.point.tmp. */
static void point_path(char *out, size_t outlen, const char *tmp, bool final)
{
    size_t l = strlen(tmp), cut = sizeof ".jsonl.gz.tmp" - 1;
    snprintf(out, outlen, "%.*s.point%s", (int)(l > cut ? l - cut : 0), tmp, final ? "" : ".tmp");
}

void mstore_commit(const char *state, const char *tmp, bool complete)
{
    char final[4400], ptmp[4400], pfinal[4400];
    size_t l = strlen(tmp);
    snprintf(final, sizeof final, "%.*s", (int)(l - 4), tmp); /* without ".tmp" */
    point_path(ptmp, sizeof ptmp, tmp, false);
    point_path(pfinal, sizeof pfinal, tmp, true);
    if (rename(tmp, final) != 0) {
        s3_log(S3_LOG_WARN, "cannot keep the stored manifest %s: %s", final, strerror(errno));
        unlink(tmp);
        unlink(ptmp);
        return;
    }
    if (!complete || rename(ptmp, pfinal) != 0) unlink(ptmp);
    if (!complete) return;
    /* this run is the next one's base: the own manifests and saved points of earlier runs are not needed */
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/manifests", state);
    size_t n = 0;
    char **list = candidates(mdir, &n);
    const char *self = strrchr(final, '/') + 1;
    for (size_t i = 0; i < n; i++) {
        char full[4400];
        if (strncmp(self, list[i], strlen(list[i])) != 0 || self[strlen(list[i])] != '.') {
            snprintf(full, sizeof full, "%s/%s", mdir, list[i]);
            unlink(full);
            size_t ll = strlen(full);
            snprintf(full + ll - 6, sizeof full - (ll - 6), ".point"); /* NAME.jsonl -> NAME.point */
            unlink(full);
        }
        free(list[i]);
    }
    free(list);
}

/* ---- a state folder seeded from the target ---- */

/* The newest stored manifest of a complete, unsharded run of this source into this target, compressed (so a
 * later delta can name it): its index in sm, or -1. */
static long seed_pick(struct rep_ctx *ctx, const struct stored_manifest *sm, size_t n)
{
    for (size_t i = 0; i < n && !ctx->interrupted; i++) {
        char run[80], path[4096], err[1024];
        int si, sn;
        if (!store_is_compressed(sm[i].key) || shard_parse_name(sm[i].key, run, sizeof run, &si, &sn)) continue;
        if (store_download(ctx->dst_r, ctx->o->dst_bucket, &sm[i], true, path, sizeof path, err, sizeof err) != 0) {
            s3_log(S3_LOG_INFO, "no seed from s3://%s/%s: %s", ctx->o->dst_bucket, sm[i].key, err);
            continue;
        }
        struct manifest_summary sum;
        bool fits = manifest_summary_read(path, &sum, err, sizeof err) == 0;
        unlink(path);
        if (!fits) continue;
        fits = store_summary_complete(&sum) && sum.shard_count == 0 && sum.source && sum.target &&
               strcmp(sum.source, ctx->o->src_url) == 0 && strcmp(sum.target, ctx->o->dst_url) == 0;
        manifest_summary_free(&sum);
        if (fits) return (long)i;
    }
    return -1;
}

void mstore_seed(struct rep_ctx *ctx, const char *state)
{
    size_t have = 0;
    char **local = state_manifests(state, &have);
    state_free_list(local, have);
    if (have || ctx->o->shard_n) return; /* this folder has its own history; a shard's manifests are its range's */
    char err[5000], mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/manifests", state);
    struct stored_manifest *sm = NULL;
    size_t n = 0;
    unsigned long total = 0;
    if (store_list(ctx, ctx->dst_r, ctx->o->dst_bucket, SEED_MANIFESTS_MAX, &sm, &n, &total, err, sizeof err) != 0) {
        s3_log(S3_LOG_INFO, "the state folder is new and the target's manifests cannot be listed: %s", err);
        return;
    }
    long at = seed_pick(ctx, sm, n);
    if (at < 0) {
        if (total) s3_log(S3_LOG_INFO, "the state folder is new; no complete run of this source among the "
                                       "target's %zu newest manifests to start from", n);
        store_free(sm, n);
        return;
    }
    const struct stored_manifest *m = &sm[at];
    const char *name = store_run_name(m->key); /* RUN.jsonl.gz (seed_pick took only compressed copies) */
    char full[4500], gz[4510], pt[4510], gzt[4520], fullt[4520], ptt[4520], copy[4096] = "";
    err[0] = '\0';
    size_t rl = strlen(name) - (sizeof ".jsonl.gz" - 1); /* the run id's length */
    snprintf(full, sizeof full, "%s/%.*s.jsonl", mdir, (int)rl, name);
    snprintf(gz, sizeof gz, "%s.gz", full);
    snprintf(pt, sizeof pt, "%s/%.*s.point", mdir, (int)rl, name);
    snprintf(gzt, sizeof gzt, "%s.seed", gz);
    snprintf(fullt, sizeof fullt, "%s.seed", full);
    snprintf(ptt, sizeof ptt, "%s.seed", pt);
    char *meta = point_meta(ctx);
    struct manifest_point *point = NULL;
    struct manifest_store_info info;
    bool ok = meta && state_mkdirs(mdir) == 0 &&
              store_download(ctx->dst_r, ctx->o->dst_bucket, m, false, copy, sizeof copy, err, sizeof err) == 0;
    /* the chain is checked against the restore point its newest manifest recorded; its bases are kept in mdir
     * under their names (chain_held looks for them there) */
    ok = ok && (point = store_chain_point(ctx->dst_r, ctx->o->dst_bucket, m, copy, mdir, NULL, err, sizeof err));
    ok = ok && manifest_store_write(copy, point, NULL, fullt, false, &info, err, sizeof err) == 0 &&
         manifest_point_save(point, ptt, meta, err, sizeof err) == 0 && store_move_file(copy, gzt) == 0;
    /* the run's own manifest last: it is what makes the folder's files a candidate base (candidates()) */
    ok = ok && rename(ptt, pt) == 0 && rename(gzt, gz) == 0 && rename(fullt, full) == 0;
    if (ok) {
        s3_log(S3_LOG_INFO,
               "the state folder is new: it starts from the target's run %.*s (%llu objects), as if this host had "
               "made it", (int)rl, name, (unsigned long long)manifest_point_stats(point)->entries);
    } else {
        s3_log(S3_LOG_WARN, "the state folder is new and the target's run %.*s could not be taken as its start "
               "(%s): this run HEADs what it cannot tell apart and stores a full manifest", (int)rl, name,
               err[0] ? err : strerror(errno));
        unlink(full), unlink(gz), unlink(pt), unlink(fullt), unlink(gzt), unlink(ptt);
        if (copy[0]) unlink(copy);
    }
    manifest_point_free(point);
    free(meta);
    store_free(sm, n);
}
