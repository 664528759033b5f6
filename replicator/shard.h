/* Sharding: splitting the key space into N ranges of about equal object counts, from the key-distribution
 * sample a backup stores in its reserved prefix, and the runs made of N shard manifests.
 *
 * In the target (one set per target prefix; <t> is "" for a bucket-wide target, else "-" and 12 hex digits
 * of a hash of the prefix):
 *   .replicate/ranges<t>.json          the key-distribution sample: segments of the source key space (relative
 *                                      keys), each with its object count and every k-th key. Written by every
 *                                      unsharded run, by the first-run sampling listing, and by the shards of a
 *                                      run with --run-id (each replaces its own segment).
 *   .replicate/shards/<run><t>.json    the split a run with --run-id uses: N-1 boundaries, written by its first
 *                                      shard, read by the others (and by retries), so all of them cut the key
 *                                      space at the same keys even if the sample changes meanwhile.
 *   .replicate/manifests/<run>.shard-IIII-of-NNNN.jsonl   each shard's manifest (first a header-only copy at
 *                                      its start, so a shard that dies is seen as unfinished).
 * Shard i covers the keys k with b[i-1] < k <= b[i] (no bound below shard 0 or above shard N-1). Must not
 * (shard.c): make a request; the records are read and written by replicator/shard_records.c. */
#ifndef REPLICATOR_SHARD_H
#define REPLICATOR_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "manifest/manifest.h"
#include "replicator/replicate.h"

#define SHARD_PLAN_PREFIX ".replicate/shards/"

/* ---- the key-distribution sample (pure) ---- */

struct shard_segment {
    char *start_after, *end_before; /* relative keys, NULL = unbounded */
    uint64_t objects;               /* keys listed in the segment */
    char **keys;                    /* sorted sample keys */
    size_t n;
};

struct shard_sample {
    char *source;                   /* the source URL the sample is of */
    struct shard_segment *seg;      /* sorted by range, disjoint */
    size_t nseg;
};

/* Parses a ranges record (JSON text). 0, or -1 when it is not one. */
int shard_sample_parse(const char *text, size_t len, struct shard_sample *out);
/* The record's JSON text (malloc'd), or NULL. */
char *shard_sample_json(const struct shard_sample *s, const char *target, const char *run_id, int64_t now);
void shard_sample_free(struct shard_sample *s);
/* Replaces every segment overlapping the range (sa, eb] (relative keys, NULL = unbounded) with one made of ks
 * (copied). source names the sample's source; a sample of another source is emptied first. 0 or -1. */
int shard_sample_merge(struct shard_sample *s, const char *source, const char *sa, const char *eb,
                       const struct key_sample *ks);
/* n-1 boundaries (malloc'd relative keys, non-decreasing) splitting the sampled objects into n ranges of about
 * equal counts; an empty sample gives fixed boundaries spread over printable ASCII. NULL on ENOMEM. */
char **shard_bounds(const struct shard_sample *s, int n);
void shard_bounds_free(char **b, int n);
/* Shard i's range as options: *sa = prefix + b[i-1] (NULL for i == 0), *eb = prefix + b[i] + "\x01" (NULL for
 * the last shard): end_before is exclusive and no key holds a NUL byte, so the range ends at b[i] inclusive.
 * 0 or -1 (ENOMEM). */
int shard_range(char *const *bounds, int n, int i, const char *prefix, char **sa, char **eb);

/* ---- runs made of shard manifests ---- */

/* The stored name of a shard's manifest: "<run>.shard-IIII-of-NNNN" (without .jsonl). */
void shard_manifest_name(char *out, size_t len, const char *run_id, int i, int n);
/* Splits a manifest key or name "<run>.shard-IIII-of-NNNN.jsonl" into run, i, n. false for other names. */
bool shard_parse_name(const char *key, char *run, size_t runlen, int *i, int *n);

enum shard_state { SHARD_MISSING = 0, SHARD_OK, SHARD_FAILED, SHARD_UNFINISHED };

/* The shard manifests of one run, as --status and --verify read them. */
struct shard_group {
    char *run_id;
    int count;
    unsigned char *state;           /* enum shard_state per index */
    char **result;                  /* each shard's result ("unfinished" when it has no trailer) */
    struct manifest_summary agg;    /* totals: earliest start, latest end, sums; result "ok" only if all are */
};

/* A new group for the run of summary s (s->shard_count > 0), s added. NULL on ENOMEM. */
struct shard_group *shard_group_new(const struct manifest_summary *s);
/* Adds a shard's summary when it belongs to the group (same run id and count): true, else false. */
bool shard_group_add(struct shard_group *g, const struct manifest_summary *s);
/* Fills g->agg's trailer and result from the shards; returns the number of shards not ok. */
int shard_group_finish(struct shard_group *g);
/* "shard 2 of 4: missing (no manifest in the target: never started, or still being written)" lines for each
 * shard not ok, one per line into out (at most len bytes). */
void shard_group_problems(const struct shard_group *g, char *out, size_t len);
void shard_group_free(struct shard_group *g);

/* ---- in a run ---- */

/* Resolves --shard I/N into the shard's key range (o->start_after/end_before): the run's pinned split when it
 * has one (--run-id), else boundaries from the target's sample, else from a sampling listing of the source
 * (stored as the sample). With --run-id, pins the split for the other shards. Reads the target (and the
 * source); writes only the sample and the split, never in a dry run. EXIT_OK or an exit code (message
 * logged). */
int shard_resolve(struct rep_ctx *ctx, struct rep_options *o, const char *run_id);
/* The boundaries of n ranges of about equal object counts from the key sample stored in the target (another
 * host's runs store it too), without listing anything: the number of boundaries (n - 1; some may repeat) with
 * *bounds (shard_bounds_free(b, n)) and the objects the sample counted, or 0 when the target holds none of this
 * source. */
int shard_stored_bounds(struct rep_ctx *ctx, int n, char ***bounds, uint64_t *objects);
/* At the end of a run: stores the last complete pass's sample in the target (unsharded runs over the whole
 * key space replace it; shards of a --run-id run replace their segment; others store nothing). */
void shard_store_sample(struct rep_ctx *ctx, const char *run_id);

struct restore_run;
struct stored_manifest;
/* For restores: the run that the shard manifest sm[at] belongs to, from the listing sm[0..n): downloads all
 * its shard manifests into one temporary file (run->manifest_path; disjoint ranges, so the union of their
 * restore points) and fills *run. 0 when every shard ended ok, -1 with why in err (nothing kept). */
int shard_open_run(struct s3_reader *r, const char *bucket, const struct stored_manifest *sm, size_t n, size_t at,
                   struct restore_run *run, char *err, size_t errlen);

#endif
