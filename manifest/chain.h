/* Manifest chains: the copy of a run's manifest that is stored in the target is either full (every entry of the
 * run's restore point, key-sorted) or a delta on an earlier run's stored manifest (its base): the entries that
 * are new or differ, and a "deleted" record for each key of the base's restore point that the run's does not
 * hold. The restore point of a delta is its base's (resolved the same way, back to a full manifest) with the
 * delta applied: manifest_point_build_chain (manifest/point.h). Every stored copy is gzip-compressed and
 * begins with its summary (header, pass lines, trailer), so a reader of its first bytes has the summary.
 * Knows nothing of S3. Must not: depend on anything of ours outside manifest/. */
#ifndef MANIFEST_CHAIN_H
#define MANIFEST_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "manifest/point.h"

/* A full manifest at least every CHAIN_MAX_DEPTH runs, so that a restore reads at most that many deltas. */
#define MANIFEST_CHAIN_MAX_DEPTH 30

struct manifest_base {
    const char *name;            /* its stored name, "RUN.jsonl.gz" (or an older "RUN.jsonl") */
    int depth;                   /* its own depth: 0 for a full manifest */
    struct manifest_point *point; /* its restore point (rewound by the writer) */
};

struct manifest_store_info {
    bool delta;         /* written as a delta on the base (else full) */
    int depth;          /* 0, or the base's depth + 1 */
    uint64_t records;   /* object and deleted records written */
    uint64_t entries;   /* entries of the run's restore point */
    char digest[17];    /* its digest (manifest_point_stats) */
    const char *why_full; /* with a base given but a full manifest written: why (a static string) */
};

/* Writes the stored copy of a run: the header, pass and trailer lines of lines_from (the run's own manifest,
 * or for a resolved chain its last delta), then the entries of point (the run's restore point): all of them, or
 * with a base only the difference, unless that is more than a quarter of the entries (and more than 64) or the
 * chain would grow past MANIFEST_CHAIN_MAX_DEPTH. Creates out_path (replacing it), compressed when compress.
 * The header becomes format 1 (full) or 2 (delta) with "chain" and "point". 0, or -1 with a message in err. */
int manifest_store_write(const char *lines_from, struct manifest_point *point, const struct manifest_base *base,
                         const char *out_path, bool compress, struct manifest_store_info *info, char *err,
                         size_t errlen);

#endif
