/* Human output shared by the modes: stdout normally, stderr when --json owns stdout, nothing with --quiet.
 * Must not: build the --json document (each mode builds its own). */
#ifndef REPLICATOR_OUTPUT_H
#define REPLICATOR_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cJSON.h>
#include "replicator/options.h"

/* Where human-readable lines go, or NULL when they are not wanted. */
FILE *rep_human(const struct rep_options *o);
void rep_say(const struct rep_options *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "812 B", "1.5 MiB", ... */
void rep_fmt_bytes(uint64_t b, char *out, size_t n);

/* Unix seconds as "2026-11-26T16:02:01Z" (iso) or "2026-11-26 16:02:01 UTC". */
void rep_fmt_time(int64_t t, bool iso, char *out, size_t n);
/* An age in words: "42 seconds ago", "3.5 hours ago", ... */
void rep_fmt_age(double secs, char *out, size_t n);
/* What an exit code means, in a few words: "refused for safety, nothing written". */
const char *rep_exit_meaning(int code);

/* A number member of a JSON report. */
struct rep_json_number {
    const char *name;
    double value;
};
/* Adds each of the n numbers to the object j, in order (the summaries' counts: one table, not a line each). */
void rep_json_add_numbers(cJSON *j, const struct rep_json_number *f, size_t n);

#endif
