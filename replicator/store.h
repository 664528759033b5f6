/* The manifests a backup holds, in its reserved prefix (.replicate/manifests/<run id>.jsonl): list them
 * newest first, download one (whole, or just enough for its summary), tell which target a manifest is for and
 * whether its run recorded every object. Owns nothing but these reads; must not write to S3. Used by --verify,
 * --status, restores and drills. */
#ifndef REPLICATOR_STORE_H
#define REPLICATOR_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "manifest/manifest.h"
#include "manifest/point.h"
#include "replicator/replicate.h"
#include "s3/list.h"

#define SUMMARY_CHUNK (128u * 1024) /* a summary download reads this much of each end of a large manifest */

struct stored_manifest {
    char *key; /* ".replicate/manifests/<run id>.jsonl" */
    uint64_t size;
};

/* Lists the manifests in bucket and returns the newest `keep` of them, newest first (run ids sort by time), in
 * a malloc'd array; *total counts them all. Memory is bounded by keep. Waits on ctx's loop (stops when
 * ctx->interrupted). 0, or -1 with a message in err (STORE_NO_BUCKET when the bucket does not exist). */
#define STORE_NO_BUCKET (-2)
int store_list(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, size_t keep,
               struct stored_manifest **out, size_t *n, unsigned long *total, char *err, size_t errlen);
/* The same for any records named prefix<name>suffix (drills: DRILL_PREFIX, ".json"). */
int store_list_records(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, const char *prefix,
                       const char *suffix, size_t keep, struct stored_manifest **out, size_t *n, unsigned long *total,
                       char *err, size_t errlen);
void store_free(struct stored_manifest *m, size_t n);

/* A listing read to its end while nothing else runs (setup steps and reports, not passes): make the lister with
 * store_lister_ready and a bool as its callback argument, then call store_lister_next, which waits on ctx's
 * loop instead of returning S3_LIST_WAIT. S3_LIST_ERROR when the listing failed or ctx was interrupted
 * (ctx->interrupted says which). */
void store_lister_ready(void *ready);
enum s3_list_status store_lister_next(struct rep_ctx *ctx, struct s3_lister *l, bool *ready,
                                      const struct s3_object_info **oi);
/* After store_lister_next's S3_LIST_ERROR: "interrupted", or the printf-style description of the listing, ": ",
 * and the lister's error, into err. */
void store_lister_error(struct rep_ctx *ctx, struct s3_lister *l, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Downloads a stored manifest into a new temporary file whose path is written to path (the caller unlinks
 * it); with summary_only a large manifest is cut to its header and its last SUMMARY_CHUNK bytes (enough for
 * manifest_summary_read). 0, or -1 with a message in err. */
int store_download(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m, bool summary_only,
                   char *path, size_t pathlen, char *err, size_t errlen);
/* A new temporary file in $TMPDIR (or /tmp), its path in path. */
FILE *store_temp_file(char *path, size_t len);
/* "<run id>.jsonl" of a manifest key or path. */
const char *store_run_name(const char *p);
/* An error message about a temporary copy without the temporary path. */
const char *store_strip_path(const char *err, const char *path);
/* Whether a manifest header's target URL is s3://bucket/prefix. */
bool store_manifest_for(const char *bucket, const char *prefix, const char *target_url);
/* Whether a stored manifest's key names a compressed copy (".jsonl.gz": full or a delta, manifest/chain.h). */
bool store_is_compressed(const char *key);
/* The restore point of stored manifest m: m alone when it is full, else m and its bases back to a full
 * manifest (downloaded into temporary files, removed before returning; m's own copy may be given as first, and
 * stays). NULL with a message in err naming the manifest of the chain that is missing, unreadable or does not
 * fit: a broken chain is never taken for a smaller restore point. *links: manifests read (may be NULL). With
 * keep_dir, the bases downloaded are moved there under their stored names instead (a seeded state folder keeps
 * its chain: replicator/mstore.c); on failure to do so, NULL. */
struct manifest_point *store_chain_point(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m,
                                         const char *first, const char *keep_dir, size_t *links, char *err,
                                         size_t errlen);
/* from moved to to: renamed, or copied when they are on different file systems. 0, or -1 (to removed). */
int store_move_file(const char *from, const char *to);
/* m's chain resolved into a full manifest (format 1, plain) in a new temporary file (its path in out; the caller
 * unlinks it), for readers of records (--verify): path is m's downloaded copy. 0, or -1 with a message. */
int store_chain_full(struct s3_reader *rd, const char *bucket, const struct stored_manifest *m, const char *path,
                     char *out, size_t outlen, char *err, size_t errlen);
/* A run whose first pass completed recorded every object it saw. */
bool store_summary_complete(const struct manifest_summary *s);

#endif
