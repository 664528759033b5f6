/* The decisions of one object's copy, as pure functions of counts and options: which path a copy takes, how a
 * multipart copy spends its memory, what a multipart copy does next, whether a failed part runs again. No I/O,
 * no job, no clock: replicator/copy*.c gather the inputs and carry out the answer; tests/unit/test_copy_plan.c
 * checks every branch offline. */
#ifndef REPLICATOR_COPY_PLAN_H
#define REPLICATOR_COPY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "s3/retry.h"

#define PARTS_PER_JOB 4
#define PIPED_PARTS_PER_JOB 8
#define PIPE_RING (256u * 1024)
#define SMALL_STREAM_MAX (256u * 1024)

/* ---- the path ---- */

enum copy_path {
    COPY_PATH_SERVER,      /* CopyObject with the source's metadata (COPY directive) */
    COPY_PATH_SERVER_META, /* HEAD, then CopyObject with the metadata it read, filtered (REPLACE directive) */
    COPY_PATH_PART_COPY,   /* HEAD, then a multipart upload of UploadPartCopy parts (server-side) */
    COPY_PATH_STREAM,      /* GET of the whole object into memory, then one PUT */
    COPY_PATH_MULTIPART,   /* HEAD (asking for the checksum), then a multipart upload of ranged GETs */
};

struct copy_path_in {
    uint64_t size, copy_threshold, multipart_threshold;
    bool server_side;          /* same endpoint and identity: CopyObject is possible */
    bool key_has_percent;      /* Ceph RGW decodes an UploadPartCopy source twice: no part copies of such keys */
    bool bulk_versions;        /* the run learns new versions in bulk (replicator/versions.h) */
    bool copy_names_no_version; /* CopyObject replies were found to name no version */
    bool replace_meta;         /* the metadata must be rewritten: --storage-class, or a restore of a non-MD5 ETag */
};

enum copy_path copy_plan_path(const struct copy_path_in *in);

/* ---- a multipart copy's memory ---- */

struct mpu_plan_in {
    uint64_t size, part_size; /* the object's, and the one to use (copy_part_size) */
    uint64_t max_memory;      /* the budget of all jobs */
    int jobs;                 /* objects copied at once */
    bool one_host;            /* source and target share curl's connections per host */
    bool part_copy;           /* UploadPartCopy parts: nothing passes through here */
    bool dst_sse;             /* the target's part ETags are no MD5s: parts read whole, sent with Content-MD5 */
};

struct mpu_plan {
    bool buffered;     /* whole parts in memory (dst_sse) */
    size_t ring;       /* > 0: piped parts, through a ring of this many bytes each */
    int parallel;      /* parts in flight at most */
    uint64_t mem_need; /* charged to the memory budget for the whole upload (0: none) */
};

struct mpu_plan copy_plan_parts(const struct mpu_plan_in *in);

/* ---- what a multipart copy does next ---- */

enum mpu_check {
    MPU_CHECK_NONE,  /* nothing to check against (or not yet: parts outstanding) */
    MPU_CHECK_MATCH, /* the parts add up to the source's value */
    MPU_CHECK_MISS,  /* they do not */
};

struct mpu_counts {
    int nparts;       /* parts of the upload */
    int sent;         /* parts started so far (the next one is number sent + 1) */
    int done;         /* parts written, with their ETag */
    int inflight;     /* parts started and not ended (a part waiting to run again included) */
    bool stopping;    /* a part failed for good, the copy is to start again, or the run stops: send nothing */
    bool interrupted; /* the run is shutting down (and stopping not yet recorded) */
    /* once every part is done, the parts against the source: */
    enum mpu_check checksum;  /* its additional checksum, combined from the parts' (or their composite) */
    bool checksum_composite;  /* that checksum is of the source's parts, whose layout may not be ours */
    int checksum_misses;      /* composite checksums missed before, for this object */
    enum mpu_check etag;      /* its composite ETag, from the parts' MD5s */
    int rereads;              /* times the object was read again for a mismatch */
};

struct mpu_limits {
    int parallel;    /* parts in flight at most (the memory the job holds) */
    int max_rereads; /* reads again after a mismatch, at most */
};

enum mpu_action {
    MPU_START_PART,    /* send the next part */
    MPU_WAIT,          /* wait for a part in flight to end (as many in flight as allowed, or all sent) */
    MPU_STOP,          /* the run is stopping: record it (stopping), then wait for the parts in flight */
    MPU_ABORT,         /* stopping and nothing in flight: abort the upload, then what stopped it happens */
    MPU_COMPLETE,      /* all parts done and nothing contradicts the source: CompleteMultipartUpload */
    MPU_REREAD,        /* the checksum missed, reads left: abort, count a read, copy again */
    MPU_GIVE_UP,       /* the checksum missed, no reads left: abort and fail */
    MPU_ETAG_MISS,     /* the composite ETag missed: abort, copy again (after two, parts are hashed instead) */
};

enum mpu_action copy_plan_next(const struct mpu_counts *c, const struct mpu_limits *l);

/* A piped part's pair failed with a failure of class cls after tries runs again: whether to run it again (after
 * the retry policy's delay), not while the upload is stopping. */
bool copy_plan_part_retry(enum s3_retry_class cls, int tries, int max_attempts, bool stopping);

#endif
