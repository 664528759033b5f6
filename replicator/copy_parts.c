/* Multipart copies of one object: parts by UploadPartCopy (server-side), piped (ranged GET -> UploadPart through
 * a ring) or buffered (whole parts with Content-MD5, for targets whose part ETags are no MD5s), their memory,
 * completion and its end-to-end checks, abort. What is sent next is copy_plan_next's decision
 * (replicator/copy_plan.h), asked through copy_mpu_next; callbacks here count what ended and report it to
 * copy_step. See replicator/copy_internal.h. */
#include <ev.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "replicator/copy_internal.h"
#include "s3/log.h"

/* The upload is being given up: parts still running end without sending more. */
static bool stopping(const struct copy_job *job)
{
    return job->state == CS_MPU_DRAIN;
}

void copy_parts_free(struct copy_job *job)
{
    for (int i = 0; job->parts && i < job->nparts; i++) {
        struct part *p = &job->parts[i];
        free(p->etag);
        s3_response_free(p->get_resp);
        s3_response_free(p->put_resp);
        free(p->ring);
        EVP_MD_CTX_free(p->md5);
        s3_checksum_cleanup(&p->ck);
        ev_timer_stop(s3_loop_ev(job->ctx->loop), &p->retry);
    }
    free(job->parts);
    job->parts = NULL;
    job->nparts = job->next_part = job->inflight = job->parts_done = 0;
}

/* ---- the plan: parts by UploadPartCopy, piped, or buffered within the memory budget ---- */

/* Sets how the parts go, and returns the memory to hold for them. */
uint64_t copy_mpu_plan(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    uint64_t ps = copy_part_size(job->size, ctx->o->part_size);
    struct mpu_plan_in in = {.size = job->size, .part_size = ps, .max_memory = ctx->o->max_memory, .jobs = ctx->o->jobs,
                             .one_host = ctx->one_host, .part_copy = job->path == COPY_PATH_PART_COPY,
                             .dst_sse = ctx->dst_sse != NULL};
    struct mpu_plan plan = copy_plan_parts(&in);
    job->buffered = plan.buffered;
    job->ring = plan.ring;
    job->parallel = plan.parallel;
    /* A source whose ETag's "-N" is our part count: the composite ETag of the target's parts checks the copy */
    const char *dash = strrchr(job->etag, '-');
    uint64_t nparts = (job->size + ps - 1) / ps;
    job->composite = !in.part_copy && dash && dash - job->etag == 32 && strtoull(dash + 1, NULL, 10) == nparts &&
                     job->composite_misses < 2 && !job->src_sse;
    return plan.mem_need;
}

/* ---- create, complete, abort ---- */

static void abort_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r && r->err != S3_OK && r->err != S3_ERR_CANCELLED) /* r is NULL when there was no upload to abort */
        s3_log(S3_LOG_WARN, "%s: aborting multipart upload failed (%s); the next run cleans it up", job->key,
               r->message);
    s3_response_free(r);
    free(job->upload_id);
    job->upload_id = NULL;
    copy_parts_free(job);
    copy_step(job, job->pending);
}

void copy_mpu_send_abort(struct copy_job *job)
{
    if (!job->upload_id) {
        abort_done(NULL, job);
        return;
    }
    struct rep_ctx *ctx = job->ctx;
    /* A stopping run (a signal, a lost lease) tries once: against a target that hangs, ten tries of
     * --timeout each would keep it running for many minutes after it said it stops. */
    int tries = ctx->interrupted ? 1 : 0;
    copy_check_started(job, s3_mpu_abort(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, tries,
                                         abort_done, job));
}

/* After a part-copied upload: if the source changed meanwhile the parts may mix two versions; copy again
 * (the mixed upload stays only as an older version of the target object). */
static void recheck_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    bool changed = r->err != S3_OK && (copy_is_precondition_failed(r) || r->status == 404);
    s3_response_free(r);
    if (changed) {
        s3_log(S3_LOG_WARN, "%s changed during a multipart copy; copying it again", job->key);
        free(job->target_etag);
        free(job->version_id);
        job->target_etag = job->version_id = NULL;
    }
    copy_step(job, changed ? CE_CHANGED : CE_OK);
}

/* Some servers (RGW) ignore the condition on UploadPartCopy: check afterwards. */
void copy_mpu_send_recheck(struct copy_job *job)
{
    copy_check_started(job, s3_head_object(job->ctx->src, job->ctx->o->src_bucket, job->key, job->src_version,
                                           job->etag, recheck_done, job));
}

static void complete_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        copy_step(job, copy_write_event(job, r, "CompleteMultipartUpload"));
        return;
    }
    char *etag = NULL;
    if (s3_xml_parse_complete(r->body, r->body_len, &etag) != S3_OK && s3_xml_is_error(r->body, r->body_len)) {
        s3_response_free(r);
        snprintf(job->error, sizeof job->error, "CompleteMultipartUpload: reply without a valid result");
        copy_step(job, CE_FAILED);
        return;
    }
    if (etag && !etag[0]) {
        free(etag);
        etag = NULL;
    }
    copy_take_result(job, r, etag);
    s3_response_free(r);
    free(job->upload_id);
    job->upload_id = NULL;
    copy_parts_free(job);
    job->retain_after = job->ctx->o->retain > 0; /* see copy_mpu_send_create */
    copy_step(job, CE_OK);
}

void copy_mpu_send_complete(struct copy_job *job)
{
    const char **etags = calloc((size_t)job->nparts, sizeof *etags);
    if (!etags) abort();
    for (int i = 0; i < job->nparts; i++) etags[i] = job->parts[i].etag;
    struct rep_ctx *ctx = job->ctx;
    copy_check_started(job, s3_mpu_complete(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, etags,
                                            (size_t)job->nparts, complete_done, job));
    free(etags);
}

/* The upload's parts, laid out once it exists. */
static void parts_lay_out(struct copy_job *job)
{
    job->part_size = copy_part_size(job->size, job->ctx->o->part_size);
    job->nparts = (int)((job->size + job->part_size - 1) / job->part_size);
    if (job->nparts < 1) job->nparts = 1;
    job->parts = calloc((size_t)job->nparts, sizeof *job->parts);
    if (!job->parts) abort();
    for (int i = 0; i < job->nparts; i++) {
        struct part *p = &job->parts[i];
        p->job = job;
        p->no = i + 1;
        p->first = (uint64_t)i * job->part_size;
        p->last = p->first + job->part_size - 1;
        if (p->last >= job->size) p->last = job->size - 1;
    }
}

static void create_done(struct s3_response *r, void *ud)
{
    struct copy_job *job = ud;
    if (r->err != S3_OK) {
        copy_step(job, copy_write_event(job, r, "CreateMultipartUpload"));
        return;
    }
    char *uid = NULL;
    if (s3_xml_parse_initiate(r->body, r->body_len, &uid) != S3_OK) {
        s3_response_free(r);
        snprintf(job->error, sizeof job->error, "CreateMultipartUpload: reply without an UploadId");
        copy_step(job, CE_FAILED);
        return;
    }
    copy_learn_dst_sse(job, r);
    s3_response_free(r);
    job->upload_id = uid;
    if (job->dst_sse && job->ring) { /* planned piped before the run knew: start again, buffered */
        s3_log(S3_LOG_INFO, "%s: the target's part ETags are not MD5s: copying it again with Content-MD5 on each part",
               job->key);
        copy_step(job, CE_RESTART);
        return;
    }
    parts_lay_out(job);
    copy_step(job, CE_OK);
}

void copy_mpu_send_create(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    if (job->path == COPY_PATH_PART_COPY) (void)copy_mpu_plan(job); /* no memory to wait for */
    job->tags_after = job->tagging_xml != NULL;
    /* Piped parts carry no Content-MD5 (their bytes stream through), which S3 requires of every part of an upload
     * created with Object Lock headers: such uploads are created without them. Every upload is locked once
     * complete (CS_RETAIN), since Ceph RGW 16 ignores the headers on CreateMultipartUpload. */
    struct s3_header h[MAX_META + 2];
    char until[RETAIN_UNTIL_LEN];
    size_t nh = job->ring ? job->nmeta : copy_with_retention(job, h, until);
    copy_check_started(job, s3_mpu_create(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->ring ? job->meta : h, nh,
                                          create_done, job));
}

/* ---- what is next: copy_plan_next's decision, with what it implies recorded ---- */

/* "md5(concat(binary part MD5s))-N" of the parts uploaded, compared with the source's ETag. The part MD5s are
 * the target's part ETags (what it stored), or, where those are not MD5s, the digests of what was read (each
 * checked by the target against the Content-MD5 sent with it). */
static bool composite_matches(const struct copy_job *job)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    bool ok = m && EVP_DigestInit_ex(m, EVP_md5(), NULL);
    for (int i = 0; ok && i < job->nparts; i++) {
        unsigned char b[16];
        const struct part *p = &job->parts[i];
        ok = s3_md5_from_hex(job->buffered ? p->md5hex : p->etag, b) == 0 && EVP_DigestUpdate(m, b, sizeof b);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ok = ok && EVP_DigestFinal_ex(m, md, &len) && len == 16;
    EVP_MD_CTX_free(m);
    if (!ok) return false;
    char want[48];
    s3_md5_hex(md, want);
    snprintf(want + 32, sizeof want - 32, "-%d", job->nparts);
    return strcasecmp(want, job->etag) == 0;
}

static struct mpu_counts counts_of(const struct copy_job *job, char got[S3_CHECKSUM_MAX])
{
    struct mpu_counts c = {.nparts = job->nparts, .sent = job->next_part, .done = job->parts_done,
                           .inflight = job->inflight, .stopping = stopping(job), .interrupted = job->ctx->interrupted,
                           .checksum_composite = job->ck_composite, .checksum_misses = job->ck_misses,
                           .rereads = job->integrity_retries};
    got[0] = '\0';
    if (c.stopping || c.done < c.nparts) return c;
    bool checked;
    bool match = copy_parts_match_checksum(job, &checked, got);
    c.checksum = !match ? MPU_CHECK_MISS : checked ? MPU_CHECK_MATCH : MPU_CHECK_NONE;
    c.etag = !job->composite ? MPU_CHECK_NONE : composite_matches(job) ? MPU_CHECK_MATCH : MPU_CHECK_MISS;
    return c;
}

/* What the multipart copy does next (copy_step carries it out). Misses are counted and said here, and a give-up
 * puts its reason in job->error. */
enum mpu_action copy_mpu_next(struct copy_job *job)
{
    char got[S3_CHECKSUM_MAX];
    struct mpu_counts c = counts_of(job, got);
    struct mpu_limits l = {.parallel = job->parallel, .max_rereads = MAX_INTEGRITY};
    enum mpu_action a = copy_plan_next(&c, &l);
    const char *name = s3_checksum_name(job->ck_alg);
    if (c.checksum == MPU_CHECK_MISS) {
        if (job->ck_composite) job->ck_misses++;
        if (a == MPU_REREAD || a == MPU_GIVE_UP) job->integrity_retries++;
    }
    if (a == MPU_GIVE_UP)
        snprintf(job->error, sizeof job->error, "the bytes read do not match the source's %s checksum %s (read: "
                 "%s; gave up after %d reads)", name, job->ck_value, got, MAX_INTEGRITY + 1);
    else if (a == MPU_REREAD)
        s3_log(S3_LOG_WARN, "%s: the bytes read do not match the source's %s checksum %s (read: %s); copying it "
               "again", job->key, name, job->ck_value, got);
    else if (c.checksum == MPU_CHECK_MISS) /* a layout of parts unlike the source's: not checkable */
        s3_log(S3_LOG_WARN, "%s: the parts written do not add up to the source's composite %s checksum %s again "
               "(%s): its parts must differ from ours; not checked", job->key, name, job->ck_value, got);
    if (a == MPU_ETAG_MISS) {
        job->composite_misses++;
        s3_log(S3_LOG_WARN, "%s: the parts written do not add up to the source's ETag %s (%s); copying it again",
               job->key, job->etag, job->composite_misses < 2 ? "a part was read wrong, or the source's parts differ"
                                                              : "now hashing each part");
    }
    return a;
}

/* A part's request failed: what happened, the first time (r is freed). While stopping, the first reason stands. */
static enum copy_event part_failure(struct copy_job *job, struct s3_response *r, const char *what)
{
    if (!stopping(job)) return copy_source_event(job, r, what, false);
    s3_response_free(r);
    return CE_PART;
}

/* ---- parts by UploadPartCopy ---- */

static void part_copy_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    job->inflight--;
    char *etag = NULL;
    if (r->err == S3_OK && (s3_xml_parse_copy(r->body, r->body_len, &etag, NULL) != S3_OK || !etag)) {
        etag = NULL;
        r->err = S3_ERR_XML;
        snprintf(r->message, sizeof r->message, "part %d: reply has no ETag", p->no);
    }
    if (r->err != S3_OK) {
        copy_step(job, part_failure(job, r, "UploadPartCopy"));
        return;
    }
    p->etag = etag;
    job->parts_done++;
    s3_response_free(r);
    copy_step(job, CE_PART);
}

/* ---- piped parts: ranged GET -> UploadPart with a bounded ring in between ----
 * Memory per part in flight is the ring, not the part, so many more parts can be in flight in the same
 * budget, and a part's upload overlaps its download. Piped requests are sent once (their bytes cannot be
 * replayed): a failure of either end cancels the other and the pair runs again after the retry policy's
 * delay. The part's ETag from the target must be the MD5 of what was fed in. */

static void pipe_start(struct part *p);
static void part_buffered_start(struct part *p);

static enum s3_sink pipe_sink(const void *data, size_t n, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    if (stopping(job)) return S3_SINK_ABORT;
    if (p->fed + n > p->last - p->first + 1) {
        p->overflow = true;
        return S3_SINK_ABORT;
    }
    if (job->ring - p->ring_len < n) {
        p->get_paused = true;
        return S3_SINK_FULL;
    }
    size_t tail = (p->ring_head + p->ring_len) % job->ring, first = job->ring - tail;
    if (first > n) first = n;
    memcpy(p->ring + tail, data, first);
    memcpy(p->ring, (const char *)data + first, n - first);
    p->ring_len += n;
    p->fed += n;
    if (!job->composite) EVP_DigestUpdate(p->md5, data, n);
    if (job->ck_alg) s3_checksum_update(&p->ck, data, n);
    if (p->put_paused) {
        p->put_paused = false;
        s3_request_resume(p->put_rq);
    }
    return S3_SINK_TAKEN;
}

static size_t pipe_source(char *buf, size_t room, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    if (!p->ring_len) {
        p->put_paused = true;
        return 0;
    }
    size_t n = job->ring - p->ring_head;
    if (n > p->ring_len) n = p->ring_len;
    if (n > room) n = room;
    memcpy(buf, p->ring + p->ring_head, n);
    p->ring_head = (p->ring_head + n) % job->ring;
    p->ring_len -= n;
    if (p->get_paused) {
        p->get_paused = false;
        s3_request_resume(p->get_rq);
    }
    return n;
}

static void pipe_retry_fire(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct part *p = w->data;
    struct copy_job *job = p->job;
    if (stopping(job) || job->ctx->interrupted) {
        job->inflight--;
        copy_step(job, CE_PART);
        return;
    }
    pipe_start(p);
}

/* Both ends are done: take the part, run the pair again, or report its failure. */
static void pipe_settle(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    if (p->get_rq || p->put_rq) return;
    struct s3_response *g = p->get_resp, *u = p->put_resp;
    p->get_resp = p->put_resp = NULL;
    free(p->ring);
    p->ring = NULL;
    uint64_t want = p->last - p->first + 1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[33] = "";
    if (EVP_DigestFinal_ex(p->md5, md, &mdlen) && mdlen == 16) s3_md5_hex(md, hex);
    memcpy(p->md5hex, hex, sizeof hex);
    struct s3_response *bad = NULL; /* the end whose failure decides */
    if (g->err != S3_OK && g->err != S3_ERR_CANCELLED) bad = g;
    else if (u->err != S3_OK && u->err != S3_ERR_CANCELLED) bad = u;
    else if (g->err != S3_OK) bad = g; /* both cancelled: an interruption */
    else if (u->err != S3_OK) bad = u;
    bool integrity = false;
    char *etag = NULL;
    if (!bad && s3_sse_hides_md5(u)) {
        /* the target's part ETags are no MD5s, so nothing checks what it stored of a piped part: start the
         * object again with buffered parts (copy_mpu_plan plans them from ctx->dst_sse) */
        copy_learn_dst_sse(job, u);
        s3_response_free(g);
        s3_response_free(u);
        job->inflight--;
        if (!stopping(job))
            s3_log(S3_LOG_INFO, "%s: the target's part ETags are not MD5s: copying it again with Content-MD5 on each "
                   "part", job->key);
        copy_step(job, CE_RESTART);
        return;
    }
    if (!bad) {
        etag = s3_response_etag(u);
        if (p->fed != want || !etag || (!job->composite && s3_etag_is_md5(etag) && strcasecmp(etag, hex) != 0)) {
            integrity = true;
            bad = u;
            bad->err = S3_ERR_INTEGRITY;
            snprintf(bad->message, sizeof bad->message,
                     "part %d: %s (read %llu of %llu bytes, MD5 %s, part ETag %s)", p->no,
                     !etag ? "the reply has no ETag" : p->fed != want ? "read a different number of bytes"
                                                                      : "the target stored other bytes",
                     (unsigned long long)p->fed, (unsigned long long)want, hex, etag ? etag : "none");
            free(etag);
            etag = NULL;
        }
    } else if (bad == g && p->overflow) {
        bad->err = S3_ERR_INTEGRITY;
        snprintf(bad->message, sizeof bad->message, "part %d: the ranged GET returned more than %llu bytes",
                 p->no, (unsigned long long)want);
        integrity = true;
    }
    if (!bad) {
        p->etag = etag;
        copy_part_checksum_done(job, p);
        job->parts_done++;
        job->inflight--;
        s3_response_free(g);
        s3_response_free(u);
        copy_step(job, CE_PART);
        return;
    }
    struct s3_response *other = bad == g ? u : g;
    s3_response_free(other);
    enum s3_retry_class cls = integrity ? S3_RETRY_YES
                                        : s3_retry_classify(bad->status, bad->s3err.code, bad->curl_code);
    if (bad->err == S3_ERR_CANCELLED || copy_is_precondition_failed(bad) || (bad->status == 404 && bad == g))
        cls = S3_RETRY_NO;
    int max = s3_loop_retry_policy(ctx->loop)->max_attempts;
    if (copy_plan_part_retry(cls, p->tries, max, stopping(job) || ctx->interrupted)) {
        p->tries++;
        double delay = s3_loop_retry_delay(ctx->loop, p->tries, cls, -1);
        s3_log(S3_LOG_INFO, "%s: %s; running the part again in %.2fs (attempt %d of %d)", job->key, bad->message,
               delay, p->tries + 1, max);
        s3_response_free(bad);
        ev_timer_set(&p->retry, delay, 0.);
        ev_timer_start(s3_loop_ev(ctx->loop), &p->retry);
        return;
    }
    job->inflight--;
    copy_step(job, part_failure(job, bad, bad == g ? "GetObject (range)" : "UploadPart"));
}

static void pipe_get_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    p->get_rq = NULL;
    p->get_resp = r;
    /* a failed GET, or one that ended short, leaves the PUT waiting for bytes that will not come */
    if (p->put_rq && (r->err != S3_OK || p->fed != p->last - p->first + 1)) s3_request_cancel(p->put_rq);
    pipe_settle(p);
}

static void pipe_put_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    p->put_rq = NULL;
    p->put_resp = r;
    if (r->err != S3_OK && p->get_rq) s3_request_cancel(p->get_rq);
    pipe_settle(p);
}

static void pipe_start(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    if (!p->md5) p->md5 = EVP_MD_CTX_new();
    p->ring = malloc(job->ring);
    if (!p->md5 || !p->ring || !EVP_DigestInit_ex(p->md5, EVP_md5(), NULL)) {
        s3_log(S3_LOG_ERROR, "out of memory piping a part of %s", job->key);
        abort();
    }
    if (job->ck_alg && s3_checksum_init(&p->ck, job->ck_alg) != 0) {
        s3_log(S3_LOG_ERROR, "out of memory piping a part of %s", job->key);
        abort();
    }
    p->ring_head = p->ring_len = 0;
    p->fed = 0;
    p->get_paused = p->put_paused = p->overflow = false;
    ev_timer_init(&p->retry, pipe_retry_fire, 0., 0.);
    p->retry.data = p;
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .ranged = true,
                            .first = p->first, .last = p->last, .on_sink = pipe_sink, .sink_ud = p};
    p->get_rq = s3_get_object(ctx->src, &a, pipe_get_done, p);
    copy_check_started(job, p->get_rq);
    p->put_rq = s3_mpu_upload_part_from(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, p->no,
                                        (size_t)(p->last - p->first + 1), pipe_source, p, pipe_put_done, p);
    copy_check_started(job, p->put_rq);
}

/* ---- buffered parts: ranged GET into memory, then UploadPart with Content-MD5 ----
 * For targets whose part ETags are not MD5s (SSE-KMS, SSE-C): the digest goes with the part, so the target
 * checks what it stores. Memory per part in flight is the part. */

static enum copy_event part_integrity(struct copy_job *job, struct part *p, struct s3_response *r, const char *why)
{
    r->err = S3_ERR_INTEGRITY;
    snprintf(r->message, sizeof r->message, "part %d: %s", p->no, why);
    return part_failure(job, r, "UploadPart");
}

static void part_upload_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    p->put_rq = NULL;
    s3_response_free(p->get_resp);
    p->get_resp = NULL;
    job->inflight--;
    char *etag = r->err == S3_OK ? s3_response_etag(r) : NULL;
    enum copy_event ev = CE_PART;
    if (r->err != S3_OK) {
        ev = part_failure(job, r, "UploadPart");
    } else if (!etag) {
        ev = part_integrity(job, p, r, "the reply has no ETag");
    } else if (!s3_sse_hides_md5(r) && s3_etag_is_md5(etag) && strcasecmp(etag, p->md5hex) != 0) {
        free(etag);
        ev = part_integrity(job, p, r, "the target stored other bytes than were sent");
    } else {
        p->etag = etag;
        job->parts_done++;
        s3_response_free(r);
    }
    copy_step(job, ev);
}

static void part_read_done(struct s3_response *r, void *ud)
{
    struct part *p = ud;
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    p->get_rq = NULL;
    if (r->err != S3_OK || r->body_len != p->last - p->first + 1 || stopping(job) || ctx->interrupted) {
        enum copy_event ev = CE_PART;
        job->inflight--;
        if (r->err == S3_OK && !stopping(job) && !ctx->interrupted)
            ev = part_integrity(job, p, r, "the ranged GET returned another number of bytes than asked for");
        else if (r->err != S3_OK)
            ev = part_failure(job, r, "GetObject (range)");
        else
            s3_response_free(r);
        copy_step(job, ev);
        return;
    }
    unsigned char md[16];
    char b64[25];
    s3_md5(r->body, r->body_len, md);
    s3_md5_hex(md, p->md5hex);
    s3_md5_base64(md, b64);
    if (job->ck_alg &&
        (s3_checksum_init(&p->ck, job->ck_alg) != 0 || s3_checksum_update(&p->ck, r->body, r->body_len) != 0)) {
        s3_log(S3_LOG_ERROR, "out of memory hashing a part of %s", job->key);
        abort();
    }
    copy_part_checksum_done(job, p);
    p->get_resp = r;
    p->put_rq = s3_mpu_upload_part(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id, p->no, r->body,
                                   r->body_len, b64, part_upload_done, p);
    copy_check_started(job, p->put_rq);
}

static void part_buffered_start(struct part *p)
{
    struct copy_job *job = p->job;
    struct rep_ctx *ctx = job->ctx;
    free(p->etag);
    p->etag = NULL;
    p->md5hex[0] = '\0';
    struct s3_get_args a = {.bucket = ctx->o->src_bucket, .key = job->key, .version_id = job->src_version,
                            .if_match = job->etag, .ranged = true, .first = p->first, .last = p->last,
                            .max_body = (size_t)(p->last - p->first + 2)};
    p->get_rq = s3_get_object(ctx->src, &a, part_read_done, p);
    copy_check_started(job, p->get_rq);
}

void copy_mpu_send_part(struct copy_job *job)
{
    struct rep_ctx *ctx = job->ctx;
    struct part *p = &job->parts[job->next_part++];
    job->inflight++;
    if (job->buffered) {
        part_buffered_start(p);
    } else if (job->ring) {
        pipe_start(p);
    } else {
        copy_check_started(job, s3_mpu_upload_part_copy(ctx->dst, ctx->o->dst_bucket, job->dst_key, job->upload_id,
                                                        p->no, ctx->o->src_bucket, job->key, job->src_version,
                                                        p->first, p->last, job->etag, part_copy_done, p));
    }
}
