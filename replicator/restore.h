/* Giving backups back. --restore writes DEST as the source was when a recorded run ended (its restore point:
 * manifest/point.h), from the backup alone: the run is picked from the backup's .replicate/manifests/, the
 * restore point is merge-joined (replicator/join.h) with DEST's listing, and the recorded versions are copied by
 * the backup's copy machinery (replicator/copy.h, reading by version id). It never deletes, never writes to the
 * backup (opened as a reader), refuses a DEST that is a backup or holds other content (unless told).
 * --restore-drill reads the recorded versions back and checks them (replicator/drill.c). */
#ifndef REPLICATOR_RESTORE_H
#define REPLICATOR_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include "manifest/point.h"
#include "replicator/replicate.h"

/* The run a restore or drill works from. */
struct restore_run {
    char run_id[128];
    char *source;        /* the source URL the run backed up */
    char *source_prefix; /* its prefix: restore-point keys are relative to it */
    int64_t ended;
    double gap;
    char *result;
    bool complete;       /* its first pass completed (it recorded every object) */
    char manifest_path[4200]; /* a temporary copy of its manifest */
};

/* Picks the run (o->run_id, o->at, or the latest successful one) among the manifests in bucket that are for
 * s3://bucket/prefix, downloads its manifest and builds its restore point. Prints which run and why others
 * were passed over. EXIT_OK, or an exit code after printing why. */
int restore_open_point(struct rep_ctx *ctx, struct s3_reader *r, const char *bucket, const char *prefix,
                       struct restore_run *run, struct manifest_point **point);
void restore_run_free(struct restore_run *run);

int run_restore(const struct rep_options *o);
int run_drill(const struct rep_options *o);

#endif
