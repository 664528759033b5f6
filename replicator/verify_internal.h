/* Internal to --verify (replicator/verify.h), shared by its five files and nothing else:
 *   replicator/verify.c           the audit's state, the findings, the merge-join and its checks, run_verify
 *   replicator/verify_deep.c      --deep: both sides read and hashed, the recorded checksum, the tags
 *   replicator/verify_versions.c  the versions recorded in the manifests still exist in the target
 *   replicator/verify_manifests.c the manifests read: the target's own copies and the local state's
 *   replicator/verify_report.c    the human summary and the --json report
 * Must not: be included outside these files. */
#ifndef REPLICATOR_VERIFY_INTERNAL_H
#define REPLICATOR_VERIFY_INTERNAL_H

#include <cJSON.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "manifest/manifest.h"
#include "replicator/join.h"
#include "replicator/replicate.h"
#include "replicator/shard.h"
#include "s3/list.h"

/* ======================================== --verify ======================================== */

enum disc_kind { D_MISSING, D_DIFFERENT, D_EXTRA, D_UNVERSIONED, D_LOST_VERSION, D_ERROR, D_SHARD };
extern const char *const verify_kind_name[]; /* indexed by enum disc_kind */

struct disc_line {
    enum disc_kind kind;
    char *key;
    char *detail;
};

struct verify_counts {
    uint64_t src_listed, dst_listed, both, same;
    uint64_t missing, different, extra, lost_versions, errors, unversioned;
    uint64_t bad_shards; /* shards of the newest run that are missing, unfinished or failed */
    uint64_t same_etag, by_manifest, by_header, heads;
    uint64_t deep_read, deep_same, deep_bytes, changed;
    uint64_t deep_checksums; /* --deep reads whose target bytes were checked against a recorded checksum */
    uint64_t versions_checked, version_records;
    uint64_t records_without_version; /* object records the version check cannot use */
};

struct loaded_manifest {
    char *path; /* a local manifest, or a temporary copy of one stored in the target */
    char *name; /* "<run id>.jsonl" */
    bool from_target;
    bool temp; /* unlink path at the end */
};

struct verify {
    struct rep_ctx *ctx;
    const struct rep_options *o;
    struct s3_lister *src_l, *dst_l;
    struct join join; /* source (left) against target (right) */
    bool join_ended;
    size_t src_plen, dst_plen;
    int inflight; /* requests in flight */
    bool stop, finished;
    bool listing_failed;
    char error[700];
    ev_idle kick;
    void (*pump)(struct verify *v);
    struct verify_counts c;
    /* the first discrepancies (and extras) for the human summary */
    struct disc_line first[MAX_REPORTED];
    size_t nfirst;
    struct disc_line first_extra[MAX_REPORTED];
    size_t nfirst_extra;
    struct disc_line first_error[MAX_REPORTED];
    size_t nfirst_error;
    /* the --json lists */
    cJSON *jdisc, *jextra, *jerrors;
    size_t njdisc, njextra, njerrors;
    bool jdisc_trunc, jextra_trunc, jerrors_trunc;
    /* manifests */
    struct loaded_manifest *mans;
    size_t nmans;
    cJSON *jmanifest_notes;
    struct shard_group *newest; /* the newest run, when it is made of shard manifests */
    /* the version check: target manifests, newest first */
    size_t vm_next;            /* next entry of mans to read */
    bool versions_from_target; /* read the target's manifests (else the local ones: the target has none) */
    struct manifest_reader *mr;
    struct manifest_record rec; /* the reader's current record (strings point into the reader) */
    const char *mr_name;
    bool versions_done, versions_truncated;
    uint64_t *vseen; /* hashes of (key, version) already checked: an open-addressing set */
    /* --deep: target key -> "ALGORITHM value" of the checksums the manifests recorded (manifest.h) */
    struct manifest_index *checksums;
};

static inline uint64_t verify_bad_count(const struct verify_counts *c)
{
    return c->missing + c->different + c->unversioned + c->lost_versions + c->bad_shards;
}

/* replicator/verify.c */
/* Runs v->pump on the next turn of the loop. */
void verify_schedule_pump(struct verify *v);
/* Records one finding: counts it, keeps it for the summary and the JSON report (both capped). */
void verify_finding(struct verify *v, enum disc_kind k, const char *src_key, const char *dst_key,
                    const char *detail);

/* replicator/verify_deep.c: reads both sides of one object of equal size (v->inflight counts its requests) */
void verify_deep_check(struct verify *v, const struct s3_object_info *s, const struct s3_object_info *d);

/* replicator/verify_versions.c: checks the recorded versions of v->mans (newest first) on the loop */
void verify_run_versions(struct verify *v);

/* replicator/verify_manifests.c */
/* Collects the manifests into v->mans: the target's newest runs, then the local state's; *stored_total is the
 * count stored in the target. */
void verify_collect_manifests(struct verify *v, int *stored_total);
/* Loads the source-ETag index (and, with --deep, the recorded checksums); leaves v->mans newest first. */
void verify_load_index(struct verify *v);

/* replicator/verify_report.c */
void verify_print_human(struct verify *v, FILE *hf, int exit_code, const char *versioning, int stored_total,
                        double duration);
/* Prints the --json report to stdout; takes the JSON lists out of v. */
void verify_print_json(struct verify *v, const char *result, int exit_code, const char *versioning,
                       int stored_total);

#endif
