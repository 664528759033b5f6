/* Audits: --verify compares a target with its source (and the latest manifest); --status reports the last run
 * recorded in the target and checks its age. Must not: write to S3 (both only read). */
#ifndef REPLICATOR_VERIFY_H
#define REPLICATOR_VERIFY_H

#include <ev.h>
#include "replicator/replicate.h"

/* SIGINT/SIGTERM/SIGHUP set ctx->interrupted and cancel every request (one context at a time). */
struct rep_signals {
    ev_signal s[3];
};
void rep_signals_start(struct rep_ctx *ctx, struct rep_signals *sg);
void rep_signals_stop(struct rep_ctx *ctx, struct rep_signals *sg);

int run_verify(const struct rep_options *o);
int run_status(const struct rep_options *o);

#endif
