/* Internal to the copy of one object (replicator/copy.h), shared by its three files and nothing else:
 *   replicator/copy.c           the job: its path, memory budget, metadata and tags, server-side CopyObject,
 *                               streamed GET -> PUT of whole objects, finishing (version, tags, retention)
 *   replicator/copy_parts.c     multipart copies: UploadPartCopy, piped parts, buffered parts, completion
 *   replicator/copy_checksum.c  additional checksums (x-amz-checksum-*) asked for, checked, sent, refused
 * The job's structure lives here. */
#ifndef REPLICATOR_COPY_INTERNAL_H
#define REPLICATOR_COPY_INTERNAL_H

#include <ev.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include "replicator/copy.h"
#include "replicator/retain.h"
#include "s3/checksum.h"
#include "s3/ops.h"


/* A job's life. */
enum copy_state {
    CS_START,        /* deciding the path */
    CS_WAIT_MEM,     /* queued for the memory budget */
    CS_COPY,         /* server-side CopyObject in flight */
    CS_GET,          /* GET of the whole object in flight (streamed copies) */
    CS_PUT,          /* PUT of what the GET read */
    CS_HEAD,         /* HEAD of the source for its metadata, before a multipart upload */
    CS_TAGS,         /* GetObjectTagging of the source, before the PUT or the multipart upload */
    CS_MPU_CREATE,   /* CreateMultipartUpload in flight */
    CS_MPU_PARTS,    /* parts in flight (ranged GET + UploadPart, or UploadPartCopy) */
    CS_MPU_COMPLETE, /* CompleteMultipartUpload in flight */
    CS_MPU_ABORT,    /* aborting the upload after a failure or a source change */
    CS_REFRESH,      /* the source changed (412): HEAD to learn its new version */
    CS_VERSION,      /* written; the reply named no version: waiting for it (bulk listing, or a HEAD) */
    CS_RETAIN,       /* --retain: PutObjectRetention on the version written (multipart, CopyObject) */
    CS_DONE,
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
#define PARTS_PER_JOB 4
#define PIPED_PARTS_PER_JOB 8
#define PIPE_RING (256u * 1024)
#define SMALL_STREAM_MAX (256u * 1024)

struct copy_job {
    struct rep_ctx *ctx;
    copy_done_cb cb;
    void *ud;
    enum copy_state state;
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
    bool restart_direct;  /* after the abort, start again at once (the source did not change) */
    /* memory budget */
    uint64_t mem_need;
    bool mem_held;
    void (*mem_resume)(struct copy_job *job);
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
    bool tags_after;                    /* a multipart upload: set the tags on the new version once it exists */
    bool retain_after;                  /* --retain, a multipart upload or a CopyObject: lock the new version */
    void (*after_tags)(struct copy_job *job);
    char content_md5[25];               /* base64 Content-MD5 of a whole-object PUT */
    /* multipart */
    char *upload_id;
    uint64_t part_size;
    int nparts, next_part, inflight, parts_done, parallel;
    struct part *parts;
    bool parts_failed;
    enum copy_result after_abort;
    bool restart_after_abort;
    bool part_copy; /* parts by UploadPartCopy (server-side) rather than ranged GET + UploadPart */
    bool replace_meta; /* server-side copy with the metadata a HEAD read (restores: bookkeeping filtered out) */
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


/* replicator/copy.c */
void job_check_started(struct copy_job *job, struct s3_request *rq);
void job_fail(struct copy_job *job, const char *why);
void job_finish(struct copy_job *job, enum copy_result r);
void job_finish_written(struct copy_job *job);
void job_head_source(struct copy_job *job);
bool job_is_precondition_failed(const struct s3_response *r);
bool job_is_source_missing(const struct s3_response *r);
void job_start(struct copy_job *job);
void job_learn_dst_sse(struct copy_job *job, const struct s3_response *r);
void job_mem_acquire(struct copy_job *job, uint64_t need, void (*resume)(struct copy_job *));
void job_mem_release(struct copy_job *job);
void job_refresh(struct copy_job *job);
void job_retention_set(struct copy_job *job);
void job_set_state(struct copy_job *job, enum copy_state st);
bool job_source_step_failed(struct copy_job *job, struct s3_response *r, const char *what);
void job_start_server_copy(struct copy_job *job);
void job_take_metadata(struct copy_job *job, struct s3_response *r, bool etag_will_differ);
void job_take_result(struct copy_job *job, const struct s3_response *r, char *etag_from_body);
size_t job_with_retention(const struct copy_job *job, struct s3_header *h, char until[RETAIN_UNTIL_LEN]);
void job_with_tags(struct copy_job *job, const struct s3_response *resp, void (*next)(struct copy_job *));

/* replicator/copy_parts.c */
void job_head_done(struct s3_response *r, void *ud);
void copy_mpu_create(struct copy_job *job);
void copy_parts_free(struct copy_job *job);

/* replicator/copy_checksum.c */
bool job_bytes_match_checksum(const struct copy_job *job, const void *data, size_t len, char got[S3_CHECKSUM_MAX]);
void copy_part_checksum_done(struct copy_job *job, struct part *p);
bool copy_parts_match_checksum(const struct copy_job *job, bool *checked, char got[S3_CHECKSUM_MAX]);
bool job_source_checksum_refused(struct copy_job *job, struct s3_response *r, void (*again)(struct copy_job *));
void job_take_source_checksum(struct copy_job *job, const struct s3_response *r);
bool job_target_checksum_refused(struct copy_job *job, struct s3_response *r, void (*again)(struct copy_job *));
bool job_want_checksum_mode(const struct copy_job *job);
size_t job_with_checksum(struct copy_job *job, struct s3_header *h, size_t n);

#endif
