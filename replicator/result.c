/* The result table of a backup run (replicator/result.h): names, exit codes and what each result counts as.
 * Must not do I/O; a new result is one row here, and the manifest.h trailer comment lists the names written. */
#include <string.h>
#include "replicator/options.h"
#include "replicator/result.h"

static const struct {
    const char *name;
    int exit_code;
    bool successful, restore_point, first_pass_done;
} g_results[REP_RESULT_COUNT] = {
    [REP_RESULT_OK] = {"ok", EXIT_OK, true, true, true},
    [REP_RESULT_FAILED] = {"failed", EXIT_FAILED, false, false, true},
    [REP_RESULT_CONFIG] = {"failed", EXIT_USAGE, false, false, false},
    [REP_RESULT_REFUSED] = {"refused", EXIT_REFUSED, false, false, false},
    [REP_RESULT_NOT_CONVERGED] = {"not-converged", EXIT_NOT_CONVERGED, false, true, true},
    /* the delta passes converged, but the run is not counted as complete: as before this table */
    [REP_RESULT_MAINTENANCE_FAILED] = {"maintenance-failed", EXIT_FAILED, false, false, false},
    [REP_RESULT_MAINTENANCE_INCOMPLETE] = {"maintenance-incomplete", EXIT_FAILED, false, false, false},
    [REP_RESULT_INTERRUPTED] = {"interrupted", EXIT_INTERRUPTED, false, false, false},
    [REP_RESULT_UNKNOWN] = {"unknown", EXIT_FAILED, false, false, false},
};

static enum rep_result checked(enum rep_result r)
{
    return (unsigned)r < REP_RESULT_COUNT ? r : REP_RESULT_UNKNOWN;
}

const char *rep_result_name(enum rep_result r)
{
    return g_results[checked(r)].name;
}

int rep_result_exit(enum rep_result r)
{
    return g_results[checked(r)].exit_code;
}

bool rep_result_successful(enum rep_result r)
{
    return g_results[checked(r)].successful;
}

bool rep_result_restore_point(enum rep_result r)
{
    return g_results[checked(r)].restore_point;
}

bool rep_result_first_pass_done(enum rep_result r)
{
    return g_results[checked(r)].first_pass_done;
}

enum rep_result rep_result_from_name(const char *name)
{
    if (!name) return REP_RESULT_UNKNOWN;
    /* the first row of a name wins: "failed" read back is REP_RESULT_FAILED, never REP_RESULT_CONFIG */
    for (int r = 0; r < REP_RESULT_UNKNOWN; r++)
        if (strcmp(g_results[r].name, name) == 0) return (enum rep_result)r;
    return REP_RESULT_UNKNOWN;
}

enum rep_result rep_result_from_exit(int exit_code)
{
    switch (exit_code) {
    case EXIT_REFUSED: return REP_RESULT_REFUSED;
    case EXIT_INTERRUPTED: return REP_RESULT_INTERRUPTED;
    case EXIT_USAGE: return REP_RESULT_CONFIG;
    default: return REP_RESULT_FAILED;
    }
}
