/* Failure notification: --notify-cmd gets the JSON summary on stdin; --notify-url gets a Slack-compatible
 * POST ({"text": ...}). Best effort: a failing notifier is reported, never changes the exit code. */
#ifndef REPLICATOR_NOTIFY_H
#define REPLICATOR_NOTIFY_H

#include <cJSON.h>
#include "replicator/options.h"

void notify_failure(const struct rep_options *o, const cJSON *summary);

#endif
