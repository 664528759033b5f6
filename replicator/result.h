/* The results of a backup run: one table from each result to the name written in the manifest's trailer and the
 * --json summary, the exit code, and what a run that ended so counts as (a success, a restore point, a run that
 * recorded every object). The run, the manifest, --status, --restore, --json and the metrics all read it here;
 * nothing else compares result names. Pure: no I/O. */
#ifndef REPLICATOR_RESULT_H
#define REPLICATOR_RESULT_H

#include <stdbool.h>

enum rep_result {
    REP_RESULT_OK,                     /* converged; with a maintenance flag, the final pass completed */
    REP_RESULT_FAILED,                 /* objects failed, or the run did (listing, manifest, lease) */
    REP_RESULT_CONFIG,                 /* a configuration error before anything ran: named "failed", exit 2 */
    REP_RESULT_REFUSED,                /* a safety check stopped the run before it wrote anything */
    REP_RESULT_NOT_CONVERGED,          /* every copy made, but the last pass still took longer than --settle */
    REP_RESULT_MAINTENANCE_FAILED,     /* the maintenance flag could not be switched on: no final pass */
    REP_RESULT_MAINTENANCE_INCOMPLETE, /* the final pass under the flag did not complete */
    REP_RESULT_INTERRUPTED,            /* SIGINT/SIGTERM/SIGHUP */
    REP_RESULT_UNKNOWN,                /* read back: a name no table entry has (another version's, or none) */
    REP_RESULT_COUNT
};

/* The name in the manifest and the JSON summary ("ok", "not-converged", ...); "unknown" for REP_RESULT_UNKNOWN.
 * REP_RESULT_CONFIG is named "failed" like REP_RESULT_FAILED: only its exit code differs (it never reaches a
 * manifest: configuration errors end the run before its manifest is opened). Static storage. */
const char *rep_result_name(enum rep_result r);
/* The process's exit code (options.h EXIT_*): 0, 1, 2, 3, 4 or 130; 1 for REP_RESULT_UNKNOWN. */
int rep_result_exit(enum rep_result r);
/* A successful run: --status's "last success", the metrics' last success, a shard that counts as done. */
bool rep_result_successful(enum rep_result r);
/* A run whose manifest is a restore point: it ended with every copy made ("ok", "not-converged"). */
bool rep_result_restore_point(enum rep_result r);
/* A run that completed its first pass, so its manifest records every object it saw: the source-ETag index and the
 * stored manifest's base start from it ("ok", "failed", "not-converged"). */
bool rep_result_first_pass_done(enum rep_result r);
/* The result a name read back from a manifest or a summary stands for; REP_RESULT_UNKNOWN for NULL or a name not
 * in the table ("failed" gives REP_RESULT_FAILED). */
enum rep_result rep_result_from_name(const char *name);
/* What a step that returned an exit code before the passes makes of the run: EXIT_REFUSED refused,
 * EXIT_INTERRUPTED interrupted, EXIT_USAGE configuration, anything else failed. */
enum rep_result rep_result_from_exit(int exit_code);

#endif
