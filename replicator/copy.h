/* Copying one object from the source to the target: a small state machine per object (server-side copy,
 * streamed GET -> PUT, or multipart with parallel parts), conditional on the listed ETag, re-reading the
 * object if it changed meanwhile, with integrity checks and a memory budget shared by all jobs. */
#ifndef REPLICATOR_COPY_H
#define REPLICATOR_COPY_H

#include "replicator/replicate.h"
#include "s3/xml.h"

enum copy_result {
    COPY_OK,        /* copied; job->version_id / job->target_etag say what was written */
    COPY_FAILED,    /* failed for good; job->error says why */
    COPY_VANISHED,  /* the source object was deleted before it could be read */
    COPY_CANCELLED, /* the run is shutting down */
    COPY_ARCHIVED,  /* the source answered InvalidObjectState: archived (GLACIER...), unreadable until restored */
};

struct copy_job;
typedef void (*copy_done_cb)(struct copy_job *job, enum copy_result r, void *ud);

/* Starts copying src (as listed; its version src->version_id when set, as restores do) to dst_key. The callback fires once, from the loop; then free the job. */
struct copy_job *copy_start(struct rep_ctx *ctx, const struct s3_object_info *src, const char *dst_key,
                            copy_done_cb cb, void *ud);
void copy_job_free(struct copy_job *job);

/* What the job copied (valid after COPY_OK; the source fields may differ from the listing if the object
 * changed in between and was re-read). */
const char *copy_job_key(const struct copy_job *job);
const char *copy_job_dst_key(const struct copy_job *job);
uint64_t copy_job_size(const struct copy_job *job);
const char *copy_job_etag(const struct copy_job *job);
const char *copy_job_last_modified(const struct copy_job *job);
const char *copy_job_target_etag(const struct copy_job *job);
const char *copy_job_version_id(const struct copy_job *job);
const char *copy_job_error(const struct copy_job *job);
/* The source's additional checksum of the version copied, as its GET/HEAD named it (NULL when none, or the copy
 * was server-side): the algorithm ("CRC32C", ...) and the value (base64, "-N" for a composite). */
const char *copy_job_checksum_algorithm(const struct copy_job *job);
const char *copy_job_checksum(const struct copy_job *job);

/* Part size for an object: the configured one (or 8 MiB), doubled until the object fits in 10,000 parts. */
uint64_t copy_part_size(uint64_t object_size, uint64_t configured);

#endif
