/* --restore, picking the run (see replicator/restore.h): the restore point of the run asked for (--run, --at, or
 * the newest clean one), read from the backup's manifests and their chains; shared with --restore-drill. The
 * restore itself is replicator/restore_pass.c. Must not: write to the backup (it is a struct s3_reader here),
 * delete anything. */
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
#include "replicator/result.h"
#include "replicator/run.h"
#include "replicator/shard.h"
#include "replicator/state.h"
#include "replicator/store.h"
#include "replicator/target.h"
#include "replicator/verify.h"
#include "s3/log.h"
#include "s3/ops.h"

#define PICK_MANIFESTS_MAX 1000 /* newest manifests looked at for the restore point */

/* ======================================== picking the run ======================================== */

void restore_run_free(struct restore_run *run)
{
    if (run->manifest_path[0]) unlink(run->manifest_path);
    free(run->source);
    free(run->source_prefix);
    free(run->result);
    memset(run, 0, sizeof *run);
}

static void fmt_utc(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm)) snprintf(out, n, "%lld", (long long)t);
}

/* What a run that is not a clean restore point lacks, for --run. */
static void say_lacks(const struct manifest_summary *s)
{
    if (!s->trailer_found)
        s3_log_user(S3_LOG_WARN, "run %s did not end (killed or crashed): its restore point holds only "
                        "what it recorded before it stopped", s->run_id);
    else if (!store_summary_complete(s))
        s3_log_user(S3_LOG_WARN, "run %s ended \"%s\" before its first pass completed: keys it did not "
                        "reach are not in its restore point", s->run_id, s->result);
    else if (!rep_result_restore_point(rep_result_from_name(s->result)))
        s3_log_user(S3_LOG_WARN, "run %s ended \"%s\" (%llu objects failed): those keys are restored as "
                        "an earlier pass or run recorded them, or not at all", s->run_id, s->result,
                (unsigned long long)s->trailer.failed);
}

/* Whether the summary is the run asked for: 1 take it, 0 pass over it. */
static int run_wanted(const struct rep_options *o, const char *name, const struct manifest_summary *s)
{
    if (o->run_id) { /* a run, or one shard's manifest by its name; a sharded run's are RUN.shard-... */
        size_t l = strlen(o->run_id);
        return strncmp(name, o->run_id, l) == 0 && (strcmp(name + l, ".jsonl") == 0 || strcmp(name + l, ".jsonl.gz") == 0 ||
                                                    !strncmp(name + l, ".shard-", 7));
    }
    if (!s) return 0;
    /* a restore point: a run that ended with every copy made ("not-converged" only says its last pass was
     * longer than --settle) */
    if (!s->trailer_found || !rep_result_restore_point(rep_result_from_name(s->result)))
        return 0;
    return !o->at_given || (double)s->trailer.ended <= o->at;
}

/* What the search for the run has found so far. */
struct pick {
    const char *bucket, *prefix;
    bool found, stop;
    struct stored_manifest picked; /* an unsharded run's manifest: its chain is resolved by open_chain */
    char passed[128];              /* the sharded run last tried */
};

/* Takes the unsharded run (or one shard's manifest) of summary s, stored as sm, into run and downloads its
 * manifest. */
static void take_single(struct rep_ctx *ctx, struct s3_reader *r, const struct stored_manifest *sm,
                        const char *name, const struct manifest_summary *s, struct restore_run *run, struct pick *p)
{
    const struct rep_options *o = ctx->o;
    char err[1024];
    p->found = true;
    if (s->shard_count > 0)
        s3_log_user(S3_LOG_WARN, "%s is shard %d of %d of run %s: it restores that shard's key range only "
                    "(--run %s restores the whole run)", name, s->shard_index, s->shard_count, s->run_id,
                    s->run_id);
    if (o->run_id) say_lacks(s);
    snprintf(run->run_id, sizeof run->run_id, "%s", s->run_id ? s->run_id : name);
    run->source = s->source ? strdup(s->source) : NULL;
    run->ended = s->trailer_found ? s->trailer.ended : 0;
    run->gap = s->trailer.gap;
    run->result = strdup(s->trailer_found && s->result ? s->result : "did not end");
    run->complete = store_summary_complete(s);
    p->picked.key = strdup(sm->key);
    p->picked.size = sm->size;
    if (!p->picked.key) abort();
    if (s->base)
        s3_log(S3_LOG_INFO, "run %s's manifest is a delta on %s (chain depth %d)", run->run_id, s->base,
               s->depth);
    if (store_download(r, p->bucket, sm, false, run->manifest_path, sizeof run->manifest_path, err,
                       sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "downloading manifest %s: %s", name, err);
        p->found = false;
        p->stop = true;
    }
}

/* Looks at the stored manifest sm[i]: the run asked for (found), one to pass over, or a reason to stop. */
static void pick_one(struct rep_ctx *ctx, struct s3_reader *r, struct stored_manifest *sm, size_t n, size_t i,
                     struct restore_run *run, struct pick *p)
{
    const struct rep_options *o = ctx->o;
    const char *bucket = p->bucket, *prefix = p->prefix;
    char err[1024];
    const char *name = store_run_name(sm[i].key);
    if (o->run_id && !run_wanted(o, name, NULL)) return;
    char path[4200];
    if (store_download(r, bucket, &sm[i], true, path, sizeof path, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_WARN, "cannot read manifest %s: %s", name, err);
        return;
    }
    struct manifest_summary s;
    int got = manifest_summary_read(path, &s, err, sizeof err);
    unlink(path);
    if (got != 0) {
        s3_log_user(S3_LOG_WARN, "manifest %s is unreadable (%s): passed over", name,
                store_strip_path(err, path));
        return;
    }
    bool whole = s.shard_count > 0 && (!o->run_id || !strcmp(o->run_id, s.run_id)); /* not one shard */
    if (whole && store_manifest_for(bucket, prefix, s.target) && run_wanted(o, name, &s) &&
        strcmp(s.run_id, p->passed) != 0) {
        snprintf(p->passed, sizeof p->passed, "%s", s.run_id); /* its other shards are not tried again */
        p->found = shard_open_run(r, bucket, sm, n, i, run, err, sizeof err) == 0 &&
                   (!o->at_given || (double)run->ended <= o->at);
        if (!p->found) s3_log_user(S3_LOG_WARN, "run %s passed over: %s", s.run_id, err);
        if (!p->found) restore_run_free(run);
        p->stop = !p->found && o->run_id;
    } else if (whole) { /* a shard of a run tried already, or not one to take */
    } else if (store_manifest_for(bucket, prefix, s.target) && run_wanted(o, name, &s)) {
        take_single(ctx, r, &sm[i], name, &s, run, p);
    } else if (o->run_id) {
        s3_log_user(S3_LOG_ERROR, "run %s is a backup of %s, not of s3://%s/%s", o->run_id,
                s.target ? s.target : "(unknown)", bucket, prefix);
        p->stop = true;
    }
    manifest_summary_free(&s);
}

/* No run to restore from: says why; returns the exit code. */
static int say_not_found(const struct rep_options *o, const char *bucket, const char *prefix, unsigned long total)
{
    char when[40] = "";
    if (o->at_given) fmt_utc((int64_t)o->at, when, sizeof when);
    if (o->run_id)
        s3_log_user(S3_LOG_ERROR, "no run %s in s3://%s/%s (replicate --status s3://%s/%s lists the runs)",
                o->run_id, bucket, MANIFEST_PREFIX, bucket, prefix);
    else
        s3_log_user(S3_LOG_ERROR, "no successful run%s%s is recorded for s3://%s/%s in its %s (%lu manifests "
                        "looked at): nothing to restore from", when[0] ? " that ended at or before " : "", when,
                bucket, prefix, MANIFEST_PREFIX, total < PICK_MANIFESTS_MAX ? total : PICK_MANIFESTS_MAX);
    return o->run_id ? EXIT_USAGE : EXIT_FAILED;
}

/* The picked run's restore point from its manifest (consumes picked->key and the downloaded manifest). */
static int open_chain(struct s3_reader *r, const char *bucket, struct stored_manifest *picked,
                      struct restore_run *run, struct manifest_point **point)
{
    char err[1024];
    char *sb = NULL;
    if (!run->source || cli_parse_s3_url(run->source, &sb, &run->source_prefix, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "manifest of run %s names no valid source URL", run->run_id);
        free(picked->key);
        restore_run_free(run);
        return EXIT_FAILED;
    }
    free(sb);
    /* a sharded run's manifests were joined into one file (full, disjoint ranges); an unsharded run's may be a
     * delta, resolved through its bases: a chain that is broken refuses the restore, it never restores less */
    size_t links = 1;
    if (picked->key)
        *point = store_chain_point(r, bucket, picked, run->manifest_path, NULL, &links, err, sizeof err);
    else
        *point = manifest_point_build(run->manifest_path, NULL, 0, err, sizeof err);
    free(picked->key);
    unlink(run->manifest_path);
    run->manifest_path[0] = '\0';
    if (!*point) {
        s3_log_user(S3_LOG_ERROR, "reading the manifest of run %s: %s\n  Nothing was restored. Restore another "
                        "run (replicate --status lists them), or bring the missing manifest back into %s.",
                    run->run_id, err, MANIFEST_PREFIX);
        restore_run_free(run);
        return EXIT_FAILED;
    }
    if (links > 1) s3_log(S3_LOG_INFO, "restore point of run %s read from %zu manifests", run->run_id, links);
    return EXIT_OK;
}

int restore_open_point(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, const char *prefix,
                       struct restore_run *run, struct manifest_point **point)
{
    const struct rep_options *o = ctx->o;
    char err[1024];
    struct stored_manifest *sm = NULL;
    size_t n = 0;
    unsigned long total = 0;
    memset(run, 0, sizeof *run);
    *point = NULL;
    if (store_list(ctx, r, bucket, PICK_MANIFESTS_MAX, &sm, &n, &total, err, sizeof err) != 0) {
        s3_log_user(S3_LOG_ERROR, "reading the backup's manifests: %s", err);
        return ctx->interrupted ? EXIT_INTERRUPTED : EXIT_FAILED;
    }
    struct pick p = {.bucket = bucket, .prefix = prefix};
    for (size_t i = 0; i < n && !p.found && !p.stop && !ctx->interrupted; i++)
        pick_one(ctx, r, sm, n, i, run, &p);
    store_free(sm, n);
    if (ctx->interrupted || !p.found) free(p.picked.key);
    if (ctx->interrupted) return EXIT_INTERRUPTED;
    if (!p.found) {
        restore_run_free(run);
        return say_not_found(o, bucket, prefix, total);
    }
    return open_chain(r, bucket, &p.picked, run, point);
}
