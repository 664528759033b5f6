/* The decisions of one object's copy as pure functions (replicator/copy_plan.h): inputs in, an answer out. It
 * must not start requests, read the clock or touch a job: replicator/copy*.c do that with the answer. */
#include "replicator/copy_plan.h"

enum copy_path copy_plan_path(const struct copy_path_in *in)
{
    bool part_copy = in->server_side && in->size > in->copy_threshold && !in->key_has_percent;
    /* Where CopyObject replies name no version and the run cannot learn them in bulk, a server-side copy of a
     * small object costs CopyObject + HEAD; GET + PUT is the same two requests, less server work, and the PUT
     * names the version. */
    bool small_streamed = !in->bulk_versions && in->copy_names_no_version && in->size <= SMALL_STREAM_MAX;
    if (in->server_side && !small_streamed && (in->size <= in->copy_threshold || part_copy)) {
        if (part_copy) return COPY_PATH_PART_COPY;
        return in->replace_meta ? COPY_PATH_SERVER_META : COPY_PATH_SERVER;
    }
    return in->size <= in->multipart_threshold ? COPY_PATH_STREAM : COPY_PATH_MULTIPART;
}

static int clamp_parts(uint64_t fit, int most)
{
    return (int)(fit < 1 ? 1 : fit < (uint64_t)most ? fit : (uint64_t)most);
}

struct mpu_plan copy_plan_parts(const struct mpu_plan_in *in)
{
    struct mpu_plan p = {0};
    if (in->part_copy) {
        p.parallel = PARTS_PER_JOB * 2;
        return p;
    }
    uint64_t ps = in->part_size;
    if (in->dst_sse) {
        p.buffered = true;
        p.parallel = clamp_parts(in->max_memory / (ps + 1), PARTS_PER_JOB);
        p.mem_need = (ps + 1) * (uint64_t)p.parallel;
        return p;
    }
    /* Piped parts hold a small ring each (a 128 KiB to 1.8 MiB ring made no difference to throughput on RGW). Each
     * is charged to the memory budget as if it held budget / connections-per-host, so that all the pipes the
     * budget admits have a connection on each side; twice that where source and target are one host (a pipe
     * holds its GET's connection while its UploadPart needs one there). Charging every pipe double on two
     * hosts kept 6 x 128 MiB objects to 36 pipes: 3.9 s where 48 take 3.2 s. */
    uint64_t ring = PIPE_RING, charge = in->max_memory * (in->one_host ? 2 : 1) / (uint64_t)(in->jobs + 8);
    if (ring > ps) ring = ps;
    if (charge < ring) charge = ring;
    p.ring = (size_t)ring;
    p.parallel = clamp_parts(in->max_memory / charge, PIPED_PARTS_PER_JOB);
    p.mem_need = charge * (uint64_t)p.parallel;
    return p;
}

/* All parts are done: whether they contradict the source. */
static enum mpu_action mpu_verdict(const struct mpu_counts *c, const struct mpu_limits *l)
{
    /* a composite checksum missed again: the source's parts must differ from ours, it cannot be checked */
    bool checksum_miss = c->checksum == MPU_CHECK_MISS && !(c->checksum_composite && c->checksum_misses >= 1);
    if (checksum_miss) return c->rereads >= l->max_rereads ? MPU_GIVE_UP : MPU_REREAD;
    if (c->etag == MPU_CHECK_MISS) return MPU_ETAG_MISS;
    return MPU_COMPLETE;
}

enum mpu_action copy_plan_next(const struct mpu_counts *c, const struct mpu_limits *l)
{
    if (!c->stopping && c->interrupted) return MPU_STOP;
    if (c->stopping) return c->inflight > 0 ? MPU_WAIT : MPU_ABORT;
    if (c->done == c->nparts) return mpu_verdict(c, l);
    if (c->sent < c->nparts && c->inflight < l->parallel) return MPU_START_PART;
    return MPU_WAIT;
}

bool copy_plan_part_retry(enum s3_retry_class cls, int tries, int max_attempts, bool stopping)
{
    return cls != S3_RETRY_NO && !stopping && tries + 1 < max_attempts;
}
