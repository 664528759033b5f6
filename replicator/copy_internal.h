/* Internal to the copy of one object (replicator/copy.h), shared by its files and nothing else (the pure
 * decisions are in replicator/copy_plan.h):
 *   replicator/copy.c           the job: its states and the transition function (copy_step), the memory
 *                               budget, re-reading a changed source, finishing (version, retention, tags)
 *   replicator/copy_whole.c     whole objects: server-side CopyObject, streamed GET -> PUT, metadata and tags
 *   replicator/copy_parts.c     multipart copies: UploadPartCopy, piped parts, buffered parts, completion
 *   replicator/copy_checksum.c  additional checksums (x-amz-checksum-*) asked for, checked, sent, refused
 * The job's structure lives here. */
#ifndef REPLICATOR_COPY_INTERNAL_H
#define REPLICATOR_COPY_INTERNAL_H

#include <ev.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include "replicator/copy.h"
#include "replicator/copy_plan.h"
#include "replicator/retain.h"
#include "s3/checksum.h"
#include "s3/ops.h"


/* A job's life. The state is what the code switches on: copy_step (replicator/copy.c) is the one function that
 * moves a job from one state to the next, on an event a callback reports; entering a state starts its request.
 * Where the multipart states go next is decided by copy_plan_next (replicator/copy_plan.h). */
enum copy_state {
    CS_START,        /* deciding the path (copy_plan_path); entered again to copy anew after a change or a miss */
    CS_WAIT_MEM,     /* holding, or queued for, the memory budget (a streamed GET, or a multipart copy's parts) */
    CS_COPY,         /* server-side CopyObject in flight */
    CS_GET,          /* GET of the whole object in flight (streamed copies) */
    CS_PUT,          /* PUT of what the GET read */
    CS_HEAD,         /* HEAD of the source for its metadata, before a multipart upload or a metadata-replacing copy */
    CS_TAGS,         /* GetObjectTagging of the source, before the write */
    CS_MPU_CREATE,   /* CreateMultipartUpload in flight */
    CS_MPU_PARTS,    /* parts in flight: copy_plan_next decides which part is sent, and when the upload completes */
    CS_MPU_DRAIN,    /* a part failed for good, the copy must start again, or the run stops (job->pending says
                        which): nothing more is sent; the parts in flight end, then the upload is aborted */
    CS_MPU_ABORT,    /* AbortMultipartUpload in flight; then job->pending happens */
    CS_MPU_COMPLETE, /* CompleteMultipartUpload in flight */
    CS_RECHECK,      /* after UploadPartCopy parts: HEAD of the source, conditional, to see it did not change */
    CS_REFRESH,      /* the source changed (412): HEAD to learn its new version */
    CS_VERSION,      /* written; the reply named no version: waiting for the run's bulk listing to name it */
    CS_VERSION_HEAD, /* or a HEAD of the target to read it (only this tool writes the target) */
    CS_RETAIN,       /* --retain: PutObjectRetention on the version written (multipart, CopyObject) */
    CS_TAGS_SET,     /* PutObjectTagging on the version written (multipart, metadata-replacing CopyObject) */
    CS_DONE,         /* the callback has run with job->result */
};

/* What a callback reports to copy_step: what happened, never what to do next. */
enum copy_event {
    CE_OK,        /* the state's request succeeded; what it said is in the job */
    CE_AGAIN,     /* send the state's request again (an additional-checksum header may have been refused) */
    CE_REREAD,    /* the bytes read are not the listed version (job->error says how): read them again */
    CE_PART,      /* a part ended, written or (while draining) not: the job's counts say so */
    CE_RESTART,   /* copy the same version again from the start (another plan, or parts that missed) */
    CE_CHANGED,   /* the source is no longer the version listed (412): learn the new one and copy it */
    CE_VANISHED,  /* the source was deleted */
    CE_ARCHIVED,  /* the source is archived (InvalidObjectState) */
    CE_CANCELLED, /* the run is shutting down */
    CE_FAILED,    /* failed for good: job->error says why */
};


struct part {
    struct copy_job *job;
    int no;
    uint64_t first, last;
    char *etag;
    /* piped: the ranged GET's body flows into the UploadPart through a ring of job->ring bytes */
    struct s3_request *get_rq, *put_rq;
    struct s3_response *get_resp, *put_resp; /* held until both ends are done */
    char *ring;
    size_t ring_head, ring_len;
    uint64_t fed; /* bytes taken from the GET */
    bool get_paused, put_paused, overflow;
    EVP_MD_CTX *md5;
    char md5hex[33]; /* of the bytes read, when hashed ("" when not) */
    struct s3_checksum ck;          /* the source's checksum algorithm over the part's bytes, when it has one */
    char ck_value[S3_CHECKSUM_MAX]; /* its wire value once the part is done */
    uint64_t ck_crc;                /* and the CRC, to combine (CRCs only) */
    int tries;
    ev_timer retry;
};

#define MAX_META 40
#define MAX_REFRESH 3
#define MAX_INTEGRITY 3

struct copy_job {
    struct rep_ctx *ctx;
    copy_done_cb cb;
    void *ud;
    enum copy_state state;
    enum copy_path path;     /* decided on entering CS_START */
    enum copy_event pending; /* CS_MPU_DRAIN, CS_MPU_ABORT: what stopped the upload, to happen once it is aborted */
    enum copy_result result; /* CS_DONE: what the callback is told */
    char *key, *dst_key, *etag, *last_modified;
    char *src_version; /* the source version to copy (restores), or NULL for the latest */
    uint64_t size;
    char *target_etag, *version_id;
    char error[700];
    int refreshes, integrity_retries;
    /* A multipart source whose part count our part size reproduces: the parts are not hashed here, the
     * composite ETag of the target's parts must equal the source's (checks source -> target end to end). */
    bool composite;
    int composite_misses; /* after 2, the layouts differ: hash each part instead */
    /* memory budget */
    uint64_t mem_need;
    bool mem_held;
    struct copy_job *mem_next;
    /* streamed single-request copy */
    struct s3_response *data;
    /* metadata to write (pointing into meta_resp, and tagging) */
    struct s3_response *meta_resp;
    struct s3_header meta[MAX_META];
    size_t nmeta;
    char *tagging;                      /* the source's tags as x-amz-tagging wants them, or NULL */
    char *tagging_xml;                  /* and as the source's <Tagging> document */
    size_t tagging_xml_len;
    bool src_tags;                      /* the GET/HEAD says the source may have tags (a HEAD cannot tell) */
    bool tags_after;                    /* still to do: set the tags on the new version once it exists */
    bool retain_after;                  /* still to do: --retain, lock the new version (multipart, CopyObject) */
    char content_md5[25];               /* base64 Content-MD5 of a whole-object PUT */
    /* multipart */
    char *upload_id;
    uint64_t part_size;
    int nparts, next_part, inflight, parts_done, parallel;
    struct part *parts;
    size_t ring;    /* > 0: parts are piped (ranged GET -> UploadPart through a ring of this size) */
    /* Encryption under which ETags are not MD5s (SSE-KMS, SSE-C; s3_sse_hides_md5), as the source's GET/HEAD and
     * the target's write replies name it. The source's ETag then proves nothing about bytes read, and the
     * target's part ETags nothing about bytes stored: parts go buffered, with Content-MD5, which S3 checks
     * under any encryption. */
    const char *src_sse, *dst_sse;
    bool buffered; /* parts by ranged GET into memory + UploadPart with Content-MD5 */
    /* The source's additional checksum of the listed version (s3/checksum.h), from the GET or HEAD that asked
     * for it: the bytes read must match it, a whole-object PUT carries it so the target checks them too. */
    enum s3_checksum_alg ck_alg;
    char ck_value[S3_CHECKSUM_MAX];
    bool ck_composite;   /* "<base64>-N": of the source's parts, not recomputable from the bytes alone */
    bool ck_mode_sent;   /* the GET/HEAD asked for it */
    bool ck_sent;        /* the PUT carried it */
    bool ck_probe;       /* the PUT is sent again without it: the target may refuse checksum headers */
    bool ck_src_probe;   /* the GET/HEAD is sent again without asking: the source may refuse to be asked */
    int ck_misses;       /* a composite the parts did not add up to: after 2, the layouts differ */
    char ck_refusal[512]; /* the answer that may have refused them, while probing */
};


/* replicator/copy.c: the transition function and what all paths share */
void copy_step(struct copy_job *job, enum copy_event ev);
void copy_check_started(struct copy_job *job, struct s3_request *rq);
enum copy_event copy_source_event(struct copy_job *job, struct s3_response *r, const char *what, bool archived);
bool copy_is_precondition_failed(const struct s3_response *r);
enum copy_event copy_write_event(struct copy_job *job, struct s3_response *r, const char *what);
void copy_learn_dst_sse(struct copy_job *job, const struct s3_response *r);
void copy_take_result(struct copy_job *job, const struct s3_response *r, char *etag_from_body);
char *copy_dup_or_null(const char *s);

/* replicator/copy_whole.c: the requests of whole objects, their metadata and tags */
void copy_send_object_copy(struct copy_job *job);
void copy_send_get(struct copy_job *job);
void copy_send_put(struct copy_job *job);
void copy_send_head(struct copy_job *job);
void copy_send_tags_get(struct copy_job *job);
size_t copy_with_retention(const struct copy_job *job, struct s3_header *h, char until[RETAIN_UNTIL_LEN]);

/* replicator/copy_parts.c: multipart uploads */
uint64_t copy_mpu_plan(struct copy_job *job);
void copy_mpu_send_create(struct copy_job *job);
enum mpu_action copy_mpu_next(struct copy_job *job);
void copy_mpu_send_part(struct copy_job *job);
void copy_mpu_send_complete(struct copy_job *job);
void copy_mpu_send_abort(struct copy_job *job);
void copy_mpu_send_recheck(struct copy_job *job);
void copy_parts_free(struct copy_job *job);

/* replicator/copy_checksum.c */
bool copy_bytes_match_checksum(const struct copy_job *job, const void *data, size_t len, char got[S3_CHECKSUM_MAX]);
void copy_part_checksum_done(struct copy_job *job, struct part *p);
bool copy_parts_match_checksum(const struct copy_job *job, bool *checked, char got[S3_CHECKSUM_MAX]);
bool copy_source_checksum_refused(struct copy_job *job, const struct s3_response *r);
void copy_take_source_checksum(struct copy_job *job, const struct s3_response *r);
bool copy_target_checksum_refused(struct copy_job *job, const struct s3_response *r);
bool copy_want_checksum_mode(const struct copy_job *job);
size_t copy_with_checksum(struct copy_job *job, struct s3_header *h, size_t n);

#endif
