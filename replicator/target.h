/* The safety rules checked before anything is written: source != target, the target is versioned, the
 * target carries the replica marker (or is empty), the source does not. Every check is read-only; the only
 * writes (enable versioning, write the marker) happen after all checks passed, and never in a dry run. */
#ifndef REPLICATOR_TARGET_H
#define REPLICATOR_TARGET_H

#include "replicator/replicate.h"

/* Returns EXIT_OK, or EXIT_REFUSED / EXIT_USAGE / EXIT_FAILED after printing why. *versioned tells whether
 * the target is versioned (false only with --allow-unversioned). */
int target_prepare(struct rep_ctx *ctx, bool *versioned);

/* Reads the target's versioning status ("Enabled", "Suspended", "" never) into a malloc'd string; NULL and a
 * message in err on failure, *no_bucket (may be NULL) true when the bucket does not exist. */
char *target_versioning(struct s3_reader *r, const char *bucket, bool *no_bucket, char *err, size_t errlen);

/* Whether bucket carries the replica marker: 1 yes, 0 no, -1 error, -2 access denied (both printed, naming the
 * side). */
int target_has_marker(struct s3_reader *r, const char *bucket, const char *side);

#endif
