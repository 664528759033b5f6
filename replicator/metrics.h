/* Prometheus textfile metrics (node_exporter's textfile collector, --metrics-file). One file may hold the
 * samples of several writers (a backup run, a restore drill) and several targets: each writer replaces its
 * own samples for its own target and keeps every other line. The file is replaced atomically (a temporary
 * file in the same directory, then rename), so the collector never reads half a file. */
#ifndef REPLICATOR_METRICS_H
#define REPLICATOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>

struct metric_sample {
    const char *name; /* replicate_... */
    const char *help; /* one line */
    double value;
};

/* Writes the samples as name{target="TARGET"} VALUE (gauges) into path, keeping the file's other samples
 * (other metric names, other targets) grouped by family. 0, or -1 with a message in err. */
int metrics_write(const char *path, const char *target, const struct metric_sample *s, size_t n, char *err,
                  size_t errlen);
/* The value of name{target="TARGET"} in the file at path: true and *out when the file has it. */
bool metrics_read(const char *path, const char *name, const char *target, double *out);
/* TARGET as a Prometheus label value: backslash, double quote and newline escaped. Returns out. */
char *metrics_label_escape(const char *s, char *out, size_t outlen);

#endif
