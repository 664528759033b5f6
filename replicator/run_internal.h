/* The state of one backup run, shared by its phases (run.c), its manifest (run_manifest.c) and its report
 * (run_report.c). Private to those three files: nothing else sees a struct run. */
#ifndef REPLICATOR_RUN_INTERNAL_H
#define REPLICATOR_RUN_INTERNAL_H

#include <cJSON.h>
#include <ev.h>
#include <stdint.h>
#include "replicator/lease.h"
#include "replicator/maintenance.h"
#include "replicator/pass.h"
#include "replicator/replicate.h"
#include "replicator/result.h"

#define RUN_PASSES_KEPT 64 /* passes described in the summary; a longer run reuses the last slot */

struct run {
    struct rep_ctx *ctx;
    struct rep_options *o;
    enum rep_result result; /* REP_RESULT_FAILED until a phase decides otherwise */
    bool opened;            /* rep_open succeeded: the loop and both sides exist */
    /* the run id, shared by the shards of one job with --run-id; the local manifest keeps a time-ordered name of
     * its own (a retried shard runs again under the same id), the target's copy the run's name */
    char run_id[80], local_id[32], stored_name[128], stored_name_ext[160];
    char manifest_path[4200]; /* the local manifest, "" when there is none */
    char message[1600];       /* why the run did not succeed, "" when nothing more than the result says */
    char *state;              /* the target's state folder (owned) */
    int lock_fd;
    struct maint maint;
    struct lease *lease;
    struct manifest_writer *mw;
    cJSON *jstored; /* what was stored in the target, for the --json summary (owned) */
    bool converged, failed_listing;
    ev_signal sig_int, sig_term, sig_hup;
    ev_timer progress;
    double t0;
    int passes;
    double gap; /* the last pass without the flag; 0 when the final pass ran under it */
    bool gap_zero_by_flag;
    double duration;
    int64_t ended; /* unix time: the manifest trailer's and the metrics' */
    struct pass_result passes_r[RUN_PASSES_KEPT];
};

/* run_manifest.c */
/* Loads the source-ETag index from the state folder's manifests: newest first, back to the last run that
 * completed its first pass, then oldest first so newer records win. */
void run_load_index(struct rep_ctx *ctx, const char *dir);
/* Opens the run's local manifest and writes its header (a shard's also goes to the target at once). 0, or -1
 * after saying why (r->message for a shard start that could not be recorded). Nothing to do for a dry run. */
int run_manifest_open(struct run *r);
/* Writes the trailer, closes the manifest and stores it in the target (compressed, a delta where it can be); a
 * manifest that could not be written or stored turns an "ok" run into a failed one. */
void run_manifest_finish(struct run *r);

/* run_report.c */
void run_print_pass(const struct rep_options *o, int n, const struct pass_result *p);
/* The end of a run: the human summary, the failures, the --json summary, the notification and the metrics. */
void run_report(struct run *r);

#endif
