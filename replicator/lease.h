/* One run per target across hosts: a lease object in the target's reserved prefix (.replicate/lease, or
 * .replicate/lease-<hash> for a prefix or key range) naming its holder (host, pid, run id) and when it
 * expires. Taken at the start of a run (after the safety checks, before the first write of data), renewed from
 * the event loop while the run lives, released at the end by overwriting it with a released record: never
 * deleted. A lease whose holder died expires and is taken over with a warning. Writes are conditional
 * (If-None-Match: * to create, If-Match: ETAG to take over, renew and release); whether the server honours
 * the condition is probed with a second write that must fail, and where it does not the record is read back
 * after a settle delay and compared. */
#ifndef REPLICATOR_LEASE_H
#define REPLICATOR_LEASE_H

#include <cJSON.h>
#include <stdbool.h>
#include "replicator/replicate.h"

struct lease;

/* Takes the target's lease for `seconds` (renewed every third of it); the caller holds the local lock of
 * state_dir, so a lease held by a run of this host and state folder is a dead run's and is taken over at once.
 * Returns EXIT_OK with *out, EXIT_REFUSED (held by another run: printed, naming it), EXIT_FAILED (the lease
 * could not be read or written) or EXIT_INTERRUPTED. */
int lease_acquire(struct rep_ctx *ctx, const char *run_id, const char *state_dir, double seconds,
                  struct lease **out);
/* The renewal found the lease taken over, or could not renew it before it expired: the run must stop (the
 * run is then interrupted through ctx). The message says why. */
bool lease_lost(const struct lease *l, const char **why);
/* Stops renewing, writes the released record (unless the lease was lost) and frees l. NULL is fine. */
void lease_release(struct rep_ctx *ctx, struct lease *l);
/* The lease's key for this run's target (prefix and key range): ".replicate/lease" or ".replicate/lease-XXXX". */
void lease_key(const struct rep_options *o, char *out, size_t n);

/* The target's lease record as --status shows it: {"key", "state", "host", "pid", "run_id", "expires",
 * "expires_at", "expired"} from .replicate/lease (or this prefix's), a JSON null when there is none, NULL when
 * it cannot be read (err says why). Read-only. */
cJSON *lease_read_record(struct rep_ctx *ctx, char *err, size_t errlen);

/* The wait between writing the lease and reading it back where writes cannot be conditional (pure): from how
 * long this round's read and writes took, and whether one needed a retry. */
double lease_settle_seconds(double elapsed, bool retried);

#endif
