/* --verify: the versions recorded in the manifests still exist in the target (a HEAD of each, up to
 * VERSION_CHECK_MAX, each (key, version) once). Must not: write anything, or read a manifest's records twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "replicator/verify_internal.h"
#include "s3/log.h"
#include "s3/ops.h"

#define VERSION_CHECK_MAX 10000     /* recorded versions checked by one --verify */
#define VSEEN_SLOTS 32768 /* a power of two, over twice VERSION_CHECK_MAX */

/* ---- recorded versions still exist ---- */

struct version_check {
    struct verify *v;
    char *key, *version_id, *run;
};

static void version_done(struct s3_response *r, void *ud)
{
    struct version_check *vc = ud;
    struct verify *v = vc->v;
    v->inflight--;
    if (r->err == S3_ERR_CANCELLED) {
        /* shutting down */
    } else if (r->err == S3_OK) {
        v->c.versions_checked++;
    } else if (r->status == 404 || r->status == 405) {
        char detail[800];
        v->c.versions_checked++;
        snprintf(detail, sizeof detail,
                 "version %s recorded by run %s no longer exists in the target (HTTP %ld%s)", vc->version_id,
                 vc->run, r->status, r->status == 405 ? ": it is a delete marker" : "");
        verify_finding(v, D_LOST_VERSION, NULL, vc->key, detail);
    } else {
        verify_finding(v, D_ERROR, NULL, vc->key, r->message);
    }
    s3_response_free(r);
    free(vc->key);
    free(vc->version_id);
    free(vc->run);
    free(vc);
    verify_schedule_pump(v);
}

/* The next object record with a version id from the target's manifests (newest first); NULL at the end. */
static const struct manifest_object *next_versioned(struct verify *v)
{
    struct manifest_record *rec = &v->rec;
    char err[512];
    for (;;) {
        if (!v->mr) {
            while (v->vm_next < v->nmans && v->mans[v->vm_next].from_target != v->versions_from_target)
                v->vm_next++;
            if (v->vm_next >= v->nmans) return NULL;
            struct loaded_manifest *m = &v->mans[v->vm_next++];
            v->mr = manifest_reader_open(m->path, err, sizeof err);
            v->mr_name = m->name;
            if (!v->mr) {
                s3_log(S3_LOG_WARN, "manifest %s: %s", m->name, err);
                continue;
            }
        }
        int rc = manifest_reader_next(v->mr, rec, err, sizeof err);
        if (rc == 0) {
            manifest_reader_close(v->mr);
            v->mr = NULL;
            continue;
        }
        if (rc < 0) continue; /* corrupt lines were reported when the manifest was loaded */
        if (rec->type != MANIFEST_REC_OBJECT) continue;
        if (rec->object.version_id && rec->object.version_id[0]) return &rec->object;
        v->c.records_without_version++;
    }
}

/* True the first time a (key, version) pair is seen: a run recorded in two manifests is checked once. */
static bool version_first_seen(struct verify *v, const char *key, const char *version)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* a byte no key contains between the two parts */
    for (const unsigned char *p = (const unsigned char *)version; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    if (h == 0) h = 1;
    for (size_t i = (size_t)h & (VSEEN_SLOTS - 1);; i = (i + 1) & (VSEEN_SLOTS - 1)) {
        if (v->vseen[i] == h) return false;
        if (v->vseen[i] == 0) {
            v->vseen[i] = h;
            return true;
        }
    }
}

static void versions_pump(struct verify *v)
{
    struct rep_ctx *ctx = v->ctx;
    if (ctx->interrupted) v->stop = true;
    while (!v->stop && !v->versions_done && v->inflight < rep_jobs(v->ctx)) {
        const struct manifest_object *mo = next_versioned(v);
        if (!mo) {
            v->versions_done = true;
            break;
        }
        if (!version_first_seen(v, mo->target_key, mo->version_id)) continue;
        if (v->c.version_records >= VERSION_CHECK_MAX) {
            v->versions_truncated = true;
            v->versions_done = true;
            break;
        }
        v->c.version_records++;
        struct version_check *vc = calloc(1, sizeof *vc);
        if (!vc) abort();
        vc->v = v;
        vc->key = strdup(mo->target_key);
        vc->version_id = strdup(mo->version_id);
        vc->run = strdup(v->mr_name ? v->mr_name : "?");
        char *dot = vc->run ? strstr(vc->run, ".jsonl") : NULL; /* RUN.jsonl, RUN.jsonl.gz */
        if (dot) *dot = '\0';
        if (!vc->key || !vc->version_id || !vc->run) abort();
        v->inflight++;
        if (!s3_head_object(ctx->dst_r, v->o->dst_bucket, vc->key, vc->version_id, NULL, version_done, vc))
            abort();
    }
    if ((v->stop || v->versions_done) && v->inflight == 0 && !v->finished) {
        v->finished = true;
        ev_break(s3_loop_ev(ctx->loop), EVBREAK_ONE);
    }
}

void verify_run_versions(struct verify *v)
{
    struct ev_loop *ev = s3_loop_ev(v->ctx->loop);
    v->vseen = calloc(VSEEN_SLOTS, sizeof *v->vseen);
    if (!v->vseen) abort();
    v->pump = versions_pump;
    v->finished = v->stop = false;
    v->vm_next = 0;
    verify_schedule_pump(v);
    while (!v->finished)
        ev_run(ev, 0);
    ev_idle_stop(ev, &v->kick);
    manifest_reader_close(v->mr);
    v->mr = NULL;
    free(v->vseen);
    v->vseen = NULL;
}
