/* Command-line options of replicate, parsed once (replicator/cli.c) and read everywhere else. Must not: hold
 * anything but the parsed options (no state of a run). */
#ifndef REPLICATOR_OPTIONS_H
#define REPLICATOR_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include "s3/config.h"

#define REPLICATE_VERSION "0.1.0"
#define RESERVED_PREFIX ".replicate/"
#define MARKER_KEY ".replicate/marker"
#define MANIFEST_PREFIX ".replicate/manifests/"
#define DRILL_PREFIX ".replicate/drills/"
#define SOURCE_ETAG_META "x-amz-meta-replicate-source-etag"
#define SHARDS_MAX 4096 /* --shard I/N, --shards N: N at most this */

/* Exit codes (documented in --help and README). */
enum rep_exit {
    EXIT_OK = 0,
    EXIT_FAILED = 1,        /* some objects failed after retries, or the run failed */
    EXIT_USAGE = 2,         /* usage or configuration error */
    EXIT_REFUSED = 3,       /* refused for safety */
    EXIT_NOT_CONVERGED = 4, /* delta passes did not converge within --max-passes */
    EXIT_DISCREPANCY = 5,   /* --verify found missing or different objects */
    EXIT_STALE = 6,         /* --status: no successful run, or the last one is older than --max-age */
    EXIT_INTERRUPTED = 130,
};

enum rep_mode { MODE_REPLICATE, MODE_VERIFY, MODE_STATUS, MODE_RESTORE, MODE_DRILL };

struct rep_options {
    enum rep_mode mode;
    const char *src_url, *dst_url;
    char *src_bucket, *src_prefix; /* prefix "" or ending in '/' */
    char *dst_bucket, *dst_prefix;
    struct s3_config_request src_req, dst_req;
    int jobs;
    double settle;
    int max_passes;
    bool dry_run, json, quiet;
    int verbose;
    bool progress;          /* progress line on a terminal */
    bool allow_unversioned, enable_versioning, init_target, source_is_replica;
    uint64_t part_size;     /* 0 = automatic (8 MiB, grown to stay within 10,000 parts) */
    uint64_t multipart_threshold; /* streamed copies above this use multipart; default 8 MiB */
    uint64_t copy_threshold;      /* server-side copies above this use UploadPartCopy; default 5 GiB */
    uint64_t max_memory;          /* budget for in-flight buffers; default 64 MiB */
    const char *state_dir;
    const char *maint_file, *maint_on, *maint_off;
    double grace, maint_max;
    bool deep;
    double sample;          /* --sample percent for --deep, 100 = all */
    double max_age;         /* seconds; 0 = not given */
    const char *notify_cmd, *notify_url;
    const char *start_after, *end_before;
    int shard_i, shard_n;   /* --shard I/N (or auto/N, --shards N), n = 0 when not sharded */
    char *shard_start_after, *shard_end_before; /* the shard's key range (owned), set by shard_resolve */
    const char *shared_run_id; /* --run-id: the run id the shards of one job share, or NULL */
    long timeout;           /* stall timeout seconds */
    int retries;            /* attempts per request */
    int list_ranges;        /* parallel listing ranges for delta passes; 0 = automatic */
    const char *metrics_file; /* Prometheus textfile */
    bool no_tags;           /* --no-tags: objects are written without their tags */
    bool skip_archived;     /* --skip-archived: archived (unreadable) objects do not fail the run */
    const char *storage_class; /* --storage-class: for every object written to the target, or NULL */
    bool log_json;          /* --log-format json: one JSON object per line on stderr */
    double lease;           /* --lease: seconds a run's lease on the target lasts unless renewed (default 300) */
    double retain;          /* --retain: seconds every version written stays locked (Object Lock); 0 = not given */
    bool retain_compliance; /* --retain-mode compliance (else governance) */
    bool retain_mode_given;
    /* restores and drills */
    const char *run_id;     /* --run: the run to restore (NULL = the latest successful one) */
    bool at_given;
    double at;              /* --at: unix seconds; the latest successful run that ended at or before it */
    bool only_missing, overwrite;
    double max_drill_age;   /* --status: seconds; 0 = not given */
};

/* Parses argv into *o. Returns -1 to exit with EXIT_OK (help/version printed), 0 ok, or EXIT_USAGE after
 * printing a message. */
int cli_parse(int argc, char **argv, struct rep_options *o);
void cli_options_free(struct rep_options *o);
void cli_usage(FILE *f);
/* Parses "s3://bucket[/prefix]" into malloc'd bucket and prefix ("" or ending in '/'). -1 with msg. */
int cli_parse_s3_url(const char *url, char **bucket, char **prefix, char *err, size_t errlen);
/* "10", "10s", "5m", "26h", "7d" → seconds; -1 on error. */
double cli_parse_duration(const char *s);
/* "2026-12-01T09:30:00Z" (RFC 3339, any offset) or an age ("90m", "2d": that long before now) → unix seconds;
 * -1 on error. */
double cli_parse_time(const char *s, double now);
/* "8M", "8MiB", "5G", "1048576" → bytes; 0 on error. */
uint64_t cli_parse_size(const char *s);

#endif
