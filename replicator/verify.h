/* Audits: --verify compares a target with its source (and the latest manifest); --status reports the last run
 * recorded in the target and checks its age. */
#ifndef REPLICATOR_VERIFY_H
#define REPLICATOR_VERIFY_H

#include "replicator/options.h"

int run_verify(const struct rep_options *o);
int run_status(const struct rep_options *o);

#endif
