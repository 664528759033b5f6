/* Human output shared by the modes: stdout normally, stderr when --json owns stdout, nothing with --quiet. */
#ifndef REPLICATOR_OUTPUT_H
#define REPLICATOR_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "replicator/options.h"

/* Where human-readable lines go, or NULL when they are not wanted. */
FILE *rep_human(const struct rep_options *o);
void rep_say(const struct rep_options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "812 B", "1.5 MiB", ... */
void rep_fmt_bytes(uint64_t b, char *out, size_t n);

#endif
