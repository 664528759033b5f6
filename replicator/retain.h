/* --retain: Object Lock retention on what a backup writes (every object version and the run's manifest), so that
 * not even the backup's own credentials can destroy a version before its retain-until date. The pure parts (the
 * DURATION grammar, the retain-until date) are here with unit tests; the target check is in target.c, the
 * writes in copy.c and run.c. Must not: make a request here. */
#ifndef REPLICATOR_RETAIN_H
#define REPLICATOR_RETAIN_H

#include <stddef.h>
#include "replicator/options.h"
#include "s3/client.h"

#define RETAIN_MIN_SECONDS 60.0                     /* shorter ends before a slow write lands */
#define RETAIN_MAX_SECONDS (100.0 * 365 * 86400)    /* S3's longest default retention, 100 years */
#define RETAIN_UNTIL_LEN 32

/* --retain DURATION: a number (decimals allowed) and a unit, s m h d w y (y = 365 days), e.g. "30d", "12h", "90m",
 * "2w", "1y", "3600s". A unit is required: a bare "30" could mean days as well as seconds. Returns seconds, or
 * -1 when s is not such a duration or outside RETAIN_MIN_SECONDS..RETAIN_MAX_SECONDS. */
double retain_parse_duration(const char *s);

/* The retain-until date of a version written at `now` (unix seconds) and kept `seconds`: ISO 8601 UTC,
 * "2026-12-03T09:30:00Z", rounded up to the next whole second (never shorter than asked). 0, or -1 when out of
 * range. */
int retain_until(double now, double seconds, char out[RETAIN_UNTIL_LEN]);

/* "GOVERNANCE" (the default) or "COMPLIANCE" (--retain-mode compliance). */
const char *retain_mode(const struct rep_options *o);

/* Appends to h the two Object Lock headers of a write made now (x-amz-object-lock-mode and
 * x-amz-object-lock-retain-until-date, pointing into until) when --retain was given; returns how many (0 or 2). */
size_t retain_headers(const struct rep_options *o, struct s3_header *h, char until[RETAIN_UNTIL_LEN]);

#endif
