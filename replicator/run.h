/* A whole replication run: set-up and safety checks, passes until converged, the optional final pass under
 * the maintenance flag, manifest, summary, notification. Also the shared set-up used by --verify. */
#ifndef REPLICATOR_RUN_H
#define REPLICATOR_RUN_H

#include "replicator/replicate.h"

/* Resolves both sides' configuration and opens the loop, the source reader and the target client.
 * Returns EXIT_OK or an exit code after printing why. */
int rep_open(struct rep_ctx *ctx, const struct rep_options *o, bool need_source);
void rep_close(struct rep_ctx *ctx);

/* The replicate mode: returns the process exit code. A sharded run sets its key range into *o (shard.c). */
int run_replicate(struct rep_options *o);

#endif
