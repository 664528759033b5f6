/* One pass: stream both listings in key order, merge-join them, and copy what is missing or different with
 * up to --jobs copies in flight. A pass ends when every copy it started succeeded or failed for good. */
#ifndef REPLICATOR_PASS_H
#define REPLICATOR_PASS_H

#include "replicator/replicate.h"

struct pass_result {
    struct rep_stats st;
    double started, duration;
    bool maintenance;
    bool listing_failed;
    bool interrupted;
    char error[700];
};

/* Runs pass number ctx->pass to completion on the loop. deadline: absolute ev_now() time after which the pass
 * is cancelled (0 = none); *deadline_hit tells whether it was. Returns 0 when the pass finished its listing
 * (copy failures are counted in st.failed), -1 when it could not (listing failed, interrupted, deadline). */
int pass_run(struct rep_ctx *ctx, bool maintenance, double deadline, struct pass_result *out);

#endif
