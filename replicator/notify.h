/* Failure notification: --notify-cmd gets the JSON summary on stdin; --notify-url gets a Slack-compatible
 * POST ({"text": ...}). Best effort: a failing notifier is reported, never changes the exit code.
 * Both say why: the summary carries the host, the run id, the exit code and its meaning, the first error of
 * the run and what to do about it (notify_explain). */
#ifndef REPLICATOR_NOTIFY_H
#define REPLICATOR_NOTIFY_H

#include <cJSON.h>
#include "replicator/options.h"

/* What to do about a failure, from its first error (error, with detail: the lines the message had after its
 * first, or NULL) and the exit code. Returns detail when there is one, else a static string. */
const char *notify_hint(const char *error, const char *detail, int exit_code);
/* Adds "host" and "exit_meaning" to a summary and, when exit_code is not 0, "error" (the run's first error:
 * s3_log_first_error, else fallback) and "hint", and sets "message" to the error when it has none. */
void notify_explain(cJSON *summary, int exit_code, const char *fallback);
/* The one-line text of the --notify-url POST for a summary. Returns n-1 at most, like snprintf. */
int notify_text(const cJSON *summary, char *out, size_t n);
void notify_failure(const struct rep_options *o, const cJSON *summary);

#endif
