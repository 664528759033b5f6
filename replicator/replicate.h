/* What a replication run shares between its parts: the loop, the two sides, budgets, counters, the manifest.
 * Must not: hold what only one mode needs (that stays in its own files). */
#ifndef REPLICATOR_REPLICATE_H
#define REPLICATOR_REPLICATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "manifest/manifest.h"
#include "replicator/options.h"
#include "s3/client.h"

struct copy_job;
struct versions;

struct rep_stats {
    uint64_t listed;    /* source objects seen */
    uint64_t copied;    /* objects copied */
    uint64_t bytes;     /* bytes copied */
    uint64_t skipped;   /* already identical in the target */
    uint64_t failed;    /* copies that failed for good */
    uint64_t extra;     /* in the target but no longer in the source (kept) */
    uint64_t vanished;  /* deleted from the source between listing and copying */
    uint64_t archived;  /* not copied: in an archive storage class (GLACIER, DEEP_ARCHIVE) that cannot be read */
    uint64_t checked;   /* HEAD requests made to confirm a recorded source ETag */
};

#define MAX_REPORTED 20

/* A key-distribution sample of one listing: every k-th relative key (k doubling, so at most 1024 are kept)
 * and how many keys were seen. Owns its keys (key_sample_free). */
struct key_sample {
    char **keys;
    size_t n;
    uint64_t seen;
};
void key_sample_free(struct key_sample *s);

struct rep_ctx {
    const struct rep_options *o;
    struct s3_loop *loop;
    struct s3_reader *src;       /* read-only by construction */
    struct s3_client *dst;
    struct s3_reader *dst_r;
    bool server_side;            /* same endpoint and identity: CopyObject instead of GET+PUT */
    bool one_host;               /* source and target share an endpoint (and with it curl's per-host connections) */
    bool restore;                /* a restore: the source is a backup read by version id (objects name one), its
                                  * bookkeeping metadata (x-amz-meta-replicate-*) is neither copied nor added,
                                  * and a version that is not as recorded is a failure, not a change */
    bool target_versioned;       /* versioning Enabled on the target */
    int copy_names_version;      /* CopyObject replies carry x-amz-version-id: 1 yes, -1 no, 0 unknown */
    const char *dst_sse;         /* the target said it encrypts so that its ETags are not MD5s (s3_sse_hides_md5) */
    struct versions *versions;   /* learns written objects' versions in bulk (server-side backups), or NULL */
    struct manifest_writer *mw;  /* NULL in dry runs */
    struct manifest_point_builder *pb; /* the run's restore point, built as mw writes (mstore_watch), or NULL */
    struct manifest_point *prev_point; /* the saved point the index was loaded from, kept for the base (mstore) */
    char *prev_point_path, *prev_point_meta; /* its manifest's path and its meta text */
    struct manifest_index *idx;  /* target key -> source ETag where the ETags differ */
    int pass;                    /* current pass number, 1-based */
    bool interrupted;            /* SIGINT/SIGTERM/SIGHUP seen */
    bool manifest_failed;        /* a manifest write failed (disk full?) */
    char manifest_error[256];
    double manifest_synced;      /* ev_now() of the last manifest sync */
    /* memory budget for object data in flight */
    uint64_t mem_used;
    struct copy_job *mem_wait_head, *mem_wait_tail;
    /* the first failures and extras, for the report */
    char *failures[MAX_REPORTED];
    size_t failure_keylen[MAX_REPORTED]; /* the length of each failure's "key: " */
    size_t nfailures;
    char *extras[MAX_REPORTED];
    size_t nextras;
    char *archived[MAX_REPORTED]; /* "key (CLASS)" */
    size_t narchived;
    struct rep_stats total;  /* all passes */
    struct rep_stats cur;    /* the pass running now */
    /* Key-range boundaries (relative keys, sorted) sampled from the previous listing, so the next pass can
     * list the key space in parallel ranges. */
    char **bounds;
    size_t nbounds;
    char **sample;           /* being collected during the current pass */
    size_t nsample, sample_every;
    uint64_t sample_seen;
    int range_page;          /* keys per listing page when listing in ranges */
    struct key_sample last_sample; /* the sample of the last complete pass (stored in the target: shard.c) */
    double pass_started;
    /* Additional checksums (x-amz-checksum-*, replicator/copy.c): an endpoint that refused them once is not
     * asked again in this run. */
    bool src_no_checksum_mode;       /* the source refused x-amz-checksum-mode on GET/HEAD */
    bool dst_no_checksums;           /* the target refused x-amz-checksum-<alg> on PutObject */
    uint64_t checksums_sent;         /* PutObjects that carried the source's checksum */
};

/* Records a failure line ("key: reason") for the final report (keeps the first MAX_REPORTED). */
void rep_note_failure(struct rep_ctx *ctx, const char *key, const char *reason);
void rep_note_extra(struct rep_ctx *ctx, const char *key);
/* Jobs to keep in flight now: --jobs, or less while an endpoint throttles (adaptive, s3/retry.h). */
int rep_jobs(const struct rep_ctx *ctx);
/* Waits this long on the run's loop (signals still stop it: returns early when ctx->interrupted). */
void rep_sleep(struct rep_ctx *ctx, double seconds);
/* An object that cannot be copied because it is archived (storage class, or a 403 InvalidObjectState). */
void rep_note_archived(struct rep_ctx *ctx, const char *key, const char *storage_class);
/* Storage classes whose objects cannot be read until restored (GLACIER_IR and the IA classes can). */
bool rep_class_archived(const char *storage_class);
/* Range boundaries: persisted in the state folder between runs (replicator/pass.c). */
void pass_bounds_load(struct rep_ctx *ctx, const char *state_dir);
void pass_bounds_save(struct rep_ctx *ctx, const char *state_dir);
void pass_bounds_free(struct rep_ctx *ctx);
/* The sampler every pass runs over the source keys (relative to the prefix), also used by the first-run
 * sampling listing of --shard (shard.c): add keys in order, then take the sample (the sampler is reset). */
void pass_sample_add(struct rep_ctx *ctx, const char *rel);
void pass_sample_take(struct rep_ctx *ctx, struct key_sample *out);

#endif
