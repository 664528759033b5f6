/* --verify: the manifests an audit reads, the target's own copies (newest runs, deltas resolved to full
 * manifests) and the local state's, and the index and checksums loaded from them. Must not: write to S3; the
 * only files it writes are the temporary copies listed in v->mans (removed by run_verify). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "replicator/state.h"
#include "replicator/store.h"
#include "replicator/verify_internal.h"
#include "s3/log.h"

#define VERIFY_MANIFESTS_MAX 3      /* target manifests --verify downloads (newest first) */
#define LOCAL_MANIFESTS_MAX 3       /* local manifests --verify loads (newest first) */
#define CHECKSUM_MANIFESTS_MAX 32   /* local manifests --verify --deep reads for recorded checksums */

/* ---- manifests: local state and the target's own copies ---- */

static void manifest_note(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void manifest_note(struct verify *v, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s3_log_user(S3_LOG_WARN, "%s", msg);
    if (v->jmanifest_notes) cJSON_AddItemToArray(v->jmanifest_notes, cJSON_CreateString(msg));
}

static int add_manifest(struct verify *v, const char *path, bool from_target, bool temp)
{
    struct loaded_manifest *nm = realloc(v->mans, (v->nmans + 1) * sizeof *nm);
    if (!nm) return -1;
    v->mans = nm;
    struct loaded_manifest *m = &v->mans[v->nmans];
    m->path = strdup(path);
    m->name = strdup(store_run_name(path));
    m->from_target = from_target;
    m->temp = temp;
    if (!m->path || !m->name) {
        free(m->path);
        free(m->name);
        return -1;
    }
    v->nmans++;
    return 0;
}

/* Reads a manifest's summary; reports and returns -1 when it is unusable (corrupt, truncated, another
 * target). */
/* The shard manifests of the newest run stored in the target, gathered to check that none is missing. */
static void group_note(struct verify *v, const struct manifest_summary *sum, bool newest_run)
{
    if (sum->shard_count < 1 || !newest_run) return;
    if (!v->newest) {
        if (!(v->newest = shard_group_new(sum))) abort();
    } else {
        shard_group_add(v->newest, sum);
    }
}

static int check_manifest(struct verify *v, const char *shown, const char *path, bool *complete, bool newest_run)
{
    struct manifest_summary sum;
    char err[600];
    if (manifest_summary_read(path, &sum, err, sizeof err) != 0) {
        manifest_note(v, "manifest %s is corrupt or truncated (%s): skipped", shown, store_strip_path(err, path));
        return -1;
    }
    int rc = 0;
    if (!store_manifest_for(v->o->dst_bucket, v->o->dst_prefix, sum.target)) {
        s3_log(S3_LOG_INFO, "manifest %s is for %s, not %s: skipped", shown, sum.target ? sum.target : "?",
               v->o->dst_url);
        rc = -1;
    } else {
        if (sum.corrupt_lines)
            manifest_note(v, "manifest %s has %d corrupt line(s); they were skipped", shown,
                          sum.corrupt_lines);
        *complete = store_summary_complete(&sum);
        group_note(v, &sum, newest_run);
    }
    manifest_summary_free(&sum);
    return rc;
}

void verify_collect_manifests(struct verify *v, int *stored_total)
{
    struct rep_ctx *ctx = v->ctx;
    char err[1024];
    *stored_total = 0;
    /* the target's own copies first: they are what an auditor without local state has */
    struct stored_manifest *sm = NULL;
    size_t n = 0;
    unsigned long total = 0;
    if (store_list(ctx, ctx->dst_r, ctx->o->dst_bucket, 32 + SHARDS_MAX, &sm, &n, &total, err, sizeof err) != 0) {
        if (!ctx->interrupted) manifest_note(v, "cannot read the manifests stored in the target: %s", err);
    } else {
        *stored_total = (int)total;
        int got = 0; /* runs */
        /* the shard manifests of one run (next to each other) count as one run: all of them are read */
        char group[80] = "", run[80];
        int gi, gn, group_n = 0, members = 0;
        bool group_complete = false;
        for (size_t i = 0; i < n && !ctx->interrupted; i++) {
            bool sharded = shard_parse_name(sm[i].key, run, sizeof run, &gi, &gn);
            if (!(sharded && group[0] && strcmp(run, group) == 0)) { /* the next run */
                if (group[0] && group_complete && members == group_n) break;
                if (got >= VERIFY_MANIFESTS_MAX) break;
                snprintf(group, sizeof group, "%s", sharded ? run : "");
                group_n = sharded ? gn : 0;
                members = 0;
                group_complete = true;
            }
            char path[4096];
            if (store_download(ctx->dst_r, ctx->o->dst_bucket, &sm[i], false, path, sizeof path, err, sizeof err) != 0) {
                manifest_note(v, "cannot download the manifest s3://%s/%s: %s", ctx->o->dst_bucket, sm[i].key,
                              err);
                continue;
            }
            /* a delta is read as the full manifest its chain gives, so the index and the version check see every
             * object of the run; a chain that does not resolve is an error: that run cannot be restored */
            struct manifest_summary cs;
            char cerr[2048];
            if (manifest_summary_read(path, &cs, cerr, sizeof cerr) == 0) {
                bool delta = cs.base != NULL;
                manifest_summary_free(&cs);
                char full[4096];
                if (delta && store_chain_full(ctx->dst_r, ctx->o->dst_bucket, &sm[i], path, full, sizeof full, cerr,
                                              sizeof cerr) != 0) {
                    verify_finding(v, D_ERROR, NULL, NULL, cerr);
                    unlink(path);
                    group_complete = false;
                    continue;
                }
                if (delta) {
                    unlink(path);
                    snprintf(path, sizeof path, "%s", full);
                }
            }
            /* the temporary file is named by its run in notes and reports */
            char shown[1200];
            snprintf(shown, sizeof shown, "s3://%s/%s", ctx->o->dst_bucket, sm[i].key);
            bool complete = false;
            /* the newest run: the first one read, with the rest of its shards */
            if (check_manifest(v, shown, path, &complete, got == 0 || (got == 1 && members > 0)) != 0 ||
                add_manifest(v, path, true, true) != 0) {
                unlink(path);
                group_complete = false;
                continue;
            }
            free(v->mans[v->nmans - 1].name);
            v->mans[v->nmans - 1].name = strdup(store_run_name(sm[i].key));
            if (!v->mans[v->nmans - 1].name) abort();
            if (!members++) got++;
            if (!complete) group_complete = false;
            if (complete && !group[0]) break;
        }
    }
    store_free(sm, n);

    /* the local state directory of this target, when this machine ran the replication */
    char *dir = state_target_dir(ctx->o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    if (!dir) {
        s3_log(S3_LOG_INFO, "no local state: %s", err);
        return;
    }
    size_t ln = 0;
    char **list = state_manifests(dir, &ln);
    for (size_t i = 0, got = 0; i < ln && got < LOCAL_MANIFESTS_MAX; i++) {
        bool complete = false;
        if (check_manifest(v, list[i], list[i], &complete, false) != 0) continue;
        if (add_manifest(v, list[i], false, false) != 0) break;
        got++;
        if (complete) break;
    }
    state_free_list(list, ln);
    free(dir);
}

static int cmp_run_asc(const void *a, const void *b)
{
    const struct loaded_manifest *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (int)x->from_target - (int)y->from_target;
}

/* --deep: the checksums recorded for the target's objects (manifest_index_load_checksums). A run that found an
 * object unchanged records it without one (it did not read it), so an object's checksum is in the manifest of
 * the run that copied it: besides the manifests collected, the newest CHECKSUM_MANIFESTS_MAX of the local state
 * directory are read for them (a target's older manifests are not downloaded for this). */
static void load_checksums(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    if (!(v->checksums = manifest_index_new())) abort();
    for (size_t i = 0; i < v->nmans; i++)
        manifest_index_load_checksums(v->checksums, v->mans[i].path, NULL);
    char err[512];
    char *dir = state_target_dir(ctx->o, s3_reader_config(ctx->dst_r)->endpoint, err, sizeof err);
    size_t ln = 0;
    char **list = dir ? state_manifests(dir, &ln) : NULL;
    for (size_t i = 0; i < ln && i < CHECKSUM_MANIFESTS_MAX; i++) {
        bool loaded = false;
        for (size_t k = 0; k < v->nmans && !loaded; k++) loaded = strcmp(v->mans[k].path, list[i]) == 0;
        if (!loaded) manifest_index_load_checksums(v->checksums, list[i], NULL);
    }
    state_free_list(list, ln);
    free(dir);
}

/* Loads the source-ETag index from every collected manifest, oldest first so that the newest record of a key
 * wins; leaves v->mans sorted newest first. */
void verify_load_index(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    ctx->idx = manifest_index_new();
    if (!ctx->idx) abort();
    if (v->nmans > 1) qsort(v->mans, v->nmans, sizeof *v->mans, cmp_run_asc);
    for (size_t i = 0; i < v->nmans; i++) {
        int corrupt = 0;
        if (manifest_index_load(ctx->idx, v->mans[i].path, &corrupt) != 0)
            manifest_note(v, "cannot read the manifest %s: %s", v->mans[i].name, strerror(errno));
    }
    if (v->o->deep) load_checksums(v);
    /* the versions the backup documents itself are checked; local manifests only when it holds none */
    for (size_t i = 0; i < v->nmans; i++)
        if (v->mans[i].from_target) v->versions_from_target = true;
    for (size_t i = 0; i < v->nmans / 2; i++) { /* newest first */
        struct loaded_manifest t = v->mans[i];
        v->mans[i] = v->mans[v->nmans - 1 - i];
        v->mans[v->nmans - 1 - i] = t;
    }
}
