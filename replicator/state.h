/* The local state directory: one folder per target holding its manifests, the run lock and the record of a
 * maintenance flag switched on by a run that may have been killed. Must not: touch S3. */
#ifndef REPLICATOR_STATE_H
#define REPLICATOR_STATE_H

#include <stdbool.h>
#include <stddef.h>

struct rep_options;

/* Creates (mkdir -p) and returns the target's state folder, malloc'd; NULL with a message in err. */
char *state_target_dir(const struct rep_options *o, const char *dst_endpoint, char *err, size_t errlen);
/* Takes the per-target lock (flock, non-blocking). Returns the fd (keep it open for the run), or -1 with a
 * message in err (held by pid N). */
int state_lock(const char *dir, char *err, size_t errlen);
/* A new run id: "YYYYMMDDTHHMMSSZ-xxxx". */
void state_run_id(char out[32]);
/* Paths of manifests in dir/manifests, newest first (by name: run ids sort by time): RUN.jsonl as the run wrote
 * it, else RUN.jsonl.gz, the copy it stored in the target (replicator/mstore.h). malloc'd array of malloc'd
 * strings; *n set. NULL when none. */
char **state_manifests(const char *dir, size_t *n);
void state_free_list(char **list, size_t n);
/* mkdir -p. 0 or -1 (errno). */
int state_mkdirs(const char *path);

#endif
