/* The copy of a run's manifest that is stored in the target (manifest/chain.h): a delta on the newest complete
 * run this state folder stored, or a full manifest, gzip-compressed, as .replicate/manifests/RUN.jsonl.gz. The
 * run's own manifest (RUN.jsonl, every object of its first pass) stays in the state folder until a later run
 * that completed has stored its copy; then only the stored copy (RUN.jsonl.gz) is kept there. Must not: write to
 * S3 (the run stores what this chooses). */
#ifndef REPLICATOR_MSTORE_H
#define REPLICATOR_MSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include "manifest/chain.h"
#include "replicator/replicate.h"

/* The restore point a complete run saved beside its manifest (NAME.jsonl -> NAME.point), read back and checked,
 * or NULL (none, or damaged: said). */
struct manifest_point *mstore_saved_point(const char *manifest_path);
/* The same, kept in ctx (which owns it) for choosing this run's base: that reads it again from its start instead
 * of opening and checking the file a second time. NULL: none. */
struct manifest_point *mstore_open_prev_point(struct rep_ctx *ctx, const char *manifest_path);
/* Frees what mstore_open_prev_point kept. */
void mstore_drop_point(struct rep_ctx *ctx);
/* Builds the run's restore point as its manifest is written by mw (ctx->pb), so mstore_prepare need not read
 * the manifest back. */
void mstore_watch(struct rep_ctx *ctx, struct manifest_writer *mw);
/* Writes the stored copy of the run's manifest full_path (complete: its trailer written) into out (a path in
 * the state folder's manifests/, ending in .tmp). Picks the base: the newest run in the state folder whose own
 * manifest and stored copy are both there, that completed its first pass, backed up the same source, and whose
 * stored copy the target still holds at the same size; else full, saying why at -v. 0, or -1 (said). */
int mstore_prepare(struct rep_ctx *ctx, const char *state, const char *full_path, const char *run_name, char *out,
                   size_t outlen, struct manifest_store_info *info);
/* After the stored copy was uploaded: keeps it as RUN.jsonl.gz beside the run's manifest, and when the run
 * completed its first pass, its restore point as RUN.point (the next run's base, read without parsing a
 * manifest), and removes the own manifests and saved points of earlier runs that have their stored copies
 * here. */
void mstore_commit(const char *state, const char *tmp, bool complete);
/* A state folder without manifests (a new host, a pod's empty volume) of an unsharded run starts from the
 * target's newest complete run of this source: its stored copy (RUN.jsonl.gz), the full manifest its chain
 * gives (RUN.jsonl) and its restore point (RUN.point) are written there as if this host had made that run, so
 * the source-ETag index and the next stored manifest's delta start from it instead of HEADs and a full
 * manifest. The chain is checked against the restore point it recorded. Best effort: on any failure the folder
 * is left without them (said). Reads the target only. */
void mstore_seed(struct rep_ctx *ctx, const char *state);

#endif
