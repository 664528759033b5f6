/* Additional checksums in a copy: asked of the source, checked against the bytes read, sent with the upload,
 * and a side that refuses them probed once and left alone for the run. See replicator/copy_internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "replicator/copy_internal.h"
#include "s3/log.h"

/* ---- additional checksums (x-amz-checksum-*, s3/checksum.h) ----
 * Asked of the source on the GET or HEAD that starts a streamed copy; the bytes read must match a full-object
 * checksum, and a whole-object PUT carries it so that the target checks them as well, whatever its ETags are.
 * Multipart uploads carry none (a piped part's header would be needed before its bytes are read): their parts'
 * checksums are checked against the source's here. An endpoint may refuse the headers (Backblaze B2: 400
 * "Unsupported header 'x-amz-checksum-crc32'"; others 501 NotImplemented): the request is sent again without
 * them, and if that works they are not sent to that endpoint again in this run (said once). */

/* Whether a reply may be a refusal of the checksum headers: any 400 or 501 (B2 says InvalidArgument, GCS is
 * reported to say ExcessHeaderValues, others NotImplemented), but not BadDigest, which says the bytes are wrong.
 * Only a resend without them that succeeds proves it, so a request refused for another reason costs one more. */
static bool may_refuse_checksums(const struct s3_response *r)
{
    if (r->err == S3_OK || r->err == S3_ERR_CANCELLED) return false;
    const char *code = r->s3err.code ? r->s3err.code : "";
    if (strcmp(code, "BadDigest") == 0) return false;
    return r->status == 400 || r->status == 501 || strcmp(code, "NotImplemented") == 0;
}

bool copy_want_checksum_mode(const struct copy_job *job)
{
    return !job->ctx->src_no_checksum_mode && !job->ck_src_probe;
}

/* The source's checksum as a GET/HEAD that asked for it names it (most servers keep none: fine). */
void copy_take_source_checksum(struct copy_job *job, const struct s3_response *r)
{
    const char *v = NULL;
    bool composite = false;
    job->ck_alg = job->ck_mode_sent ? s3_checksum_from_response(r, &v, &composite) : S3_CK_NONE;
    job->ck_composite = composite;
    snprintf(job->ck_value, sizeof job->ck_value, "%s", job->ck_alg ? v : "");
    if (job->ck_src_probe && !job->ctx->src_no_checksum_mode) {
        job->ctx->src_no_checksum_mode = true;
        s3_log(S3_LOG_WARN, "the source refused x-amz-checksum-mode (%s): its additional checksums are not asked "
                            "for in the rest of this run", job->ck_refusal);
    }
}

/* A source GET/HEAD that asked for the checksum and may have been refused for it: true when it is to run again
 * without (the caller reports CE_AGAIN). A 403
 * counts too (AccessDenied, or a HEAD's bodiless 403): Amazon S3 wants kms:Decrypt for the checksum of an SSE-KMS
 * object, which a plain HEAD does not. A 403 with another code says something else (InvalidObjectState: an
 * archived object) and is left to the caller. */
bool copy_source_checksum_refused(struct copy_job *job, const struct s3_response *r)
{
    bool denied = r->status == 403 && (!r->s3err.code || strcmp(r->s3err.code, "AccessDenied") == 0);
    if (!job->ck_mode_sent || job->ck_src_probe || (!may_refuse_checksums(r) && !denied)) return false;
    snprintf(job->ck_refusal, sizeof job->ck_refusal, "%s", r->message);
    job->ck_src_probe = true;
    return true;
}

/* Whether bytes read whole match the source's full-object checksum (true when there is none to check: none, or
 * a composite of parts); got is what they hash to. */
bool copy_bytes_match_checksum(const struct copy_job *job, const void *data, size_t len, char got[S3_CHECKSUM_MAX])
{
    got[0] = '\0';
    if (!job->ck_alg || job->ck_composite) return true;
    return s3_checksum_compute(job->ck_alg, data, len, got) == 0 && strcmp(got, job->ck_value) == 0;
}

/* A whole-object PUT's n headers, and the source's full-object checksum unless the target refuses them (h has
 * room for one more). */
size_t copy_with_checksum(struct copy_job *job, struct s3_header *h, size_t n)
{
    job->ck_sent = job->ck_alg && !job->ck_composite && !job->ctx->dst_no_checksums && !job->ck_probe;
    if (job->ck_sent) h[n++] = (struct s3_header){s3_checksum_header(job->ck_alg), job->ck_value};
    return n;
}

/* After a PUT: a refusal of the checksum header is tried again without it (true: the PUT is to be sent again); a
 * success without it after such a refusal proves the target refuses them. */
bool copy_target_checksum_refused(struct copy_job *job, const struct s3_response *r)
{
    if (job->ck_sent && may_refuse_checksums(r)) {
        snprintf(job->ck_refusal, sizeof job->ck_refusal, "%s", r->message);
        job->ck_probe = true;
        return true;
    }
    if (r->err != S3_OK) return false;
    if (job->ck_sent) job->ctx->checksums_sent++;
    if (job->ck_probe && !job->ctx->dst_no_checksums) {
        job->ctx->dst_no_checksums = true;
        s3_log(S3_LOG_WARN, "the target refused the additional checksum header (%s) and took the object without "
                            "it: no checksum headers are sent to it in the rest of this run (copies are still "
                            "checked by Content-MD5 and ETags)", job->ck_refusal);
    }
    return false;
}

/* A piped part's checksum, once all its bytes went through. */
void copy_part_checksum_done(struct copy_job *job, struct part *p)
{
    p->ck_value[0] = '\0';
    if (!job->ck_alg) return;
    p->ck_crc = s3_checksum_crc_value(&p->ck);
    if (s3_checksum_final(&p->ck, p->ck_value) != 0) p->ck_value[0] = '\0';
}

/* The parts' checksums against the source's: a full-object CRC combined from the parts' CRCs, or a composite
 * of as many parts. *checked false when neither applies (no checksum, a full-object SHA, which parts hashed
 * apart cannot give, or a composite of another number of parts). got: the value computed. */
bool copy_parts_match_checksum(const struct copy_job *job, bool *checked, char got[S3_CHECKSUM_MAX])
{
    *checked = false;
    got[0] = '\0';
    if (!job->ck_alg) return true;
    if (job->ck_composite) {
        const char *dash = strrchr(job->ck_value, '-');
        if (!dash || strtol(dash + 1, NULL, 10) != job->nparts) return true;
        const char **v = calloc((size_t)job->nparts, sizeof *v);
        if (!v) abort();
        for (int i = 0; i < job->nparts; i++) v[i] = job->parts[i].ck_value;
        int rc = s3_checksum_composite(job->ck_alg, v, (size_t)job->nparts, got);
        free(v);
        *checked = true;
        return rc == 0 && strcmp(got, job->ck_value) == 0;
    }
    if (!s3_checksum_is_crc(job->ck_alg)) return true;
    uint64_t crc = 0;
    for (int i = 0; i < job->nparts; i++) {
        const struct part *p = &job->parts[i];
        crc = i ? s3_checksum_crc_combine(job->ck_alg, crc, p->ck_crc, p->last - p->first + 1) : p->ck_crc;
    }
    s3_checksum_crc_to_wire(job->ck_alg, crc, got);
    *checked = true;
    return strcmp(got, job->ck_value) == 0;
}
