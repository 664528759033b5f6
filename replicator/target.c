/* Target and source safety checks, then marker and versioning set-up (see target.h). Must not: write to the
 * source; in the target, nothing but the marker and the versioning setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <ev.h>
#include "replicator/target.h"
#include "s3/log.h"
#include "s3/ops.h"

struct waiter {
    bool done;
    struct s3_response *r;
};

static void wait_cb(struct s3_response *r, void *ud)
{
    struct waiter *w = ud;
    w->done = true;
    w->r = r;
}

static struct s3_response *wait_for(struct rep_ctx *ctx, struct waiter *w, struct s3_request *rq)
{
    if (!rq) return NULL;
    while (!w->done) ev_run(s3_loop_ev(ctx->loop), EVRUN_ONCE);
    return w->r;
}

char *target_versioning(struct s3_reader *r, const char *bucket, bool *no_bucket, char *err, size_t errlen)
{
    if (no_bucket) *no_bucket = false;
    struct s3_request_spec s = {.method = "GET", .bucket = bucket,
                                .query = (struct s3_query_param[]){{"versioning", ""}}, .nquery = 1};
    struct s3_response *resp = s3_reader_request_wait(r, &s);
    if (!resp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char *status = NULL;
    if (resp->err != S3_OK) {
        snprintf(err, errlen, "%s", resp->message);
        if (no_bucket) *no_bucket = resp->s3err.code && strcmp(resp->s3err.code, "NoSuchBucket") == 0;
    } else if (s3_xml_parse_versioning(resp->body, resp->body_len, &status) != S3_OK) {
        snprintf(err, errlen, "GetBucketVersioning on %s: the reply is not valid XML", bucket);
        status = NULL;
    }
    s3_response_free(resp);
    return status;
}

/* 1 = the marker exists, 0 = it does not, -1 = error, -2 = access denied (printed). */
int target_has_marker(struct s3_reader *r, const char *bucket, const char *side)
{
    struct s3_request_spec s = {.method = "HEAD", .bucket = bucket, .key = MARKER_KEY};
    struct s3_response *resp = s3_reader_request_wait(r, &s);
    if (!resp) return -1;
    int rc;
    if (resp->err == S3_OK) rc = 1;
    else if (resp->status == 404) rc = 0;
    else {
        if (resp->status == 403)
            s3_log_user(S3_LOG_ERROR, "cannot check the %s bucket s3://%s: %s\n  Check the %s credentials (profile, "
                        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and endpoint.", side, bucket, resp->message, side);
        else
            s3_log_user(S3_LOG_ERROR, "cannot check the %s bucket s3://%s: %s", side, bucket, resp->message);
        rc = resp->status == 403 ? -2 : -1;
    }
    s3_response_free(resp);
    return rc;
}

/* 1 = the bucket holds at least one object (anywhere), 0 = empty, -1 = error. *first: whether the first key
 * listed is the marker. */
static int bucket_nonempty(struct s3_reader *r, const char *bucket, bool *first_is_marker)
{
    *first_is_marker = false;
    struct s3_query_param q[] = {{"list-type", "2"}, {"max-keys", "1"}};
    struct s3_request_spec s = {.method = "GET", .bucket = bucket, .query = q, .nquery = 2,
                                .max_body = S3_XML_MAX_BODY};
    struct s3_response *resp = s3_reader_request_wait(r, &s);
    if (!resp) return -1;
    int rc = -1;
    struct s3_list_page page = {0};
    if (resp->err != S3_OK) {
        s3_log_user(S3_LOG_ERROR, "cannot list the target bucket s3://%s: %s", bucket, resp->message);
    } else if (s3_xml_parse_list_v2(resp->body, resp->body_len, &page) != S3_OK) {
        s3_log_user(S3_LOG_ERROR, "listing s3://%s: the server's reply is not valid", bucket);
    } else {
        rc = page.count > 0;
        *first_is_marker = rc && strcmp(page.objects[0].key, MARKER_KEY) == 0;
    }
    s3_list_page_free(&page);
    s3_response_free(resp);
    return rc;
}

static int write_marker(struct rep_ctx *ctx)
{
    char body[1024];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(body, sizeof body,
                     "{\"tool\":\"replicate\",\"version\":\"%s\",\"created\":\"%s\",\"note\":\"This bucket is a "
                     "replica written by replicate. Do not use it as a source.\"}\n",
                     REPLICATE_VERSION, when);
    struct s3_header h[] = {{"Content-Type", "application/json"}};
    struct s3_request_spec s = {.method = "PUT", .bucket = ctx->o->dst_bucket, .key = MARKER_KEY, .headers = h,
                                .nheaders = 1, .body = body, .body_len = (size_t)n};
    struct s3_response *resp = s3_request_wait(ctx->dst, &s);
    int rc = resp && resp->err == S3_OK ? 0 : -1;
    if (rc) s3_log_user(S3_LOG_ERROR, "writing the replica marker failed: %s", resp ? resp->message : "out of memory");
    s3_response_free(resp);
    return rc;
}

/* --retain needs Object Lock on the target (GetObjectLockConfiguration): EXIT_OK, or the exit code after printing
 * why not. Read-only: a bucket gets Object Lock when it is created (most providers allow nothing else), so the
 * tool never tries to turn it on. */
static int check_object_lock(struct rep_ctx *ctx)
{
    const char *b = ctx->o->dst_bucket;
    struct s3_request_spec s = {.method = "GET", .bucket = b,
                                .query = (struct s3_query_param[]){{"object-lock", ""}}, .nquery = 1};
    struct s3_response *resp = s3_reader_request_wait(ctx->dst_r, &s);
    if (!resp) return EXIT_FAILED;
    bool enabled = false;
    int rc = EXIT_OK;
    const char *code = resp->s3err.code ? resp->s3err.code : "";
    if (resp->err == S3_OK) {
        if (s3_xml_parse_object_lock(resp->body, resp->body_len, &enabled) != S3_OK) {
            s3_log_user(S3_LOG_ERROR, "GetObjectLockConfiguration on s3://%s: the reply is not valid XML", b);
            rc = EXIT_FAILED;
        }
    } else if ((resp->status == 404 && strcmp(code, "NoSuchBucket") != 0) || resp->status == 501 ||
               strcmp(code, "NotImplemented") == 0) {
        /* ObjectLockConfigurationNotFoundError: the bucket has no Object Lock; 501: the provider has none (R2) */
        enabled = false;
    } else if (resp->status == 403) {
        s3_log_user(S3_LOG_ERROR, "cannot read the target's Object Lock configuration: %s\n  --retain needs "
                    "s3:GetBucketObjectLockConfiguration on the target bucket (and s3:PutObjectRetention on its "
                    "objects): see scripts/iam/replicate-target-policy.json.", resp->message);
        rc = EXIT_USAGE;
    } else {
        s3_log_user(S3_LOG_ERROR, "cannot read the target's Object Lock configuration: %s", resp->message);
        rc = resp->status == 404 ? EXIT_USAGE : EXIT_FAILED;
    }
    s3_response_free(resp);
    if (rc == EXIT_OK && !enabled) {
        s3_log_user(S3_LOG_ERROR,
                    "refused: Object Lock is not enabled on the target s3://%s, so --retain cannot protect what "
                    "is written.\n"
                    "  Object Lock can only be enabled when a bucket is created (on most providers), and replicate "
                    "does not enable it:\n"
                    "  create a new target with it (aws s3api create-bucket --bucket NAME "
                    "--object-lock-enabled-for-bucket) and back up into that, or leave --retain out.",
                    b);
        rc = EXIT_REFUSED;
    }
    return rc;
}

static bool overlaps(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return strncmp(a, b, la < lb ? la : lb) == 0;
}

/* 1. the same bucket on the same service: refuse overlapping prefixes */
static int refuse_overlap(const struct rep_ctx *ctx)
{
    const struct rep_options *o = ctx->o;
    if (!ctx->server_side && strcasecmp(s3_reader_config(ctx->src)->endpoint, s3_reader_config(ctx->dst_r)->endpoint) != 0)
        return EXIT_OK;
    if (strcmp(o->src_bucket, o->dst_bucket) == 0 && overlaps(o->src_prefix, o->dst_prefix)) {
        s3_log_user(S3_LOG_ERROR,
                "refused: source and target overlap (s3://%s/%s and s3://%s/%s): a backup must not "
                "write into what it reads.",
                o->src_bucket, o->src_prefix, o->dst_bucket, o->dst_prefix);
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

/* 2. the source must not be a replica (swapped arguments) */
static int refuse_replica_source(struct rep_ctx *ctx)
{
    const struct rep_options *o = ctx->o;
    int src_marker = target_has_marker(ctx->src, o->src_bucket, "source");
    if (src_marker < 0) return src_marker == -2 ? EXIT_USAGE : EXIT_FAILED;
    if (src_marker && !o->source_is_replica && strcmp(o->src_bucket, o->dst_bucket) != 0) {
        s3_log_user(S3_LOG_ERROR,
                "refused: the source s3://%s holds %s, so it is a replica written by replicate.\n"
                "  Did you swap the arguments? The order is: replicate SOURCE TARGET.\n"
                "  To back up a replica on purpose, add --source-is-replica.",
                o->src_bucket, MARKER_KEY);
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

/* 3. the target's versioning, read (and with --retain its Object Lock, before anything is written) */
static int read_versioning(struct rep_ctx *ctx, bool *enabled)
{
    const struct rep_options *o = ctx->o;
    char err[600];
    bool no_bucket = false;
    char *status = target_versioning(ctx->dst_r, o->dst_bucket, &no_bucket, err, sizeof err);
    if (!status) {
        if (no_bucket)
            s3_log_user(S3_LOG_ERROR, "cannot read the target's versioning: %s\n  Create the target bucket first and "
                        "enable versioning on it (aws s3api create-bucket / put-bucket-versioning), or check "
                        "--target-endpoint.", err);
        else
            s3_log_user(S3_LOG_ERROR, "cannot read the target's versioning: %s", err);
        return no_bucket ? EXIT_USAGE : EXIT_FAILED;
    }
    *enabled = strcmp(status, "Enabled") == 0;
    free(status);
    if (o->retain > 0) return check_object_lock(ctx); /* dry runs too */
    return EXIT_OK;
}

/* 4. the target: a replica (its marker), or empty (a first run writes the marker), else refused */
static int check_target_is_ours(struct rep_ctx *ctx, bool *need_marker)
{
    const struct rep_options *o = ctx->o;
    int dst_marker = target_has_marker(ctx->dst_r, o->dst_bucket, "target");
    if (dst_marker < 0) return dst_marker == -2 ? EXIT_USAGE : EXIT_FAILED;
    *need_marker = false;
    if (dst_marker) return EXIT_OK;
    bool listed_marker;
    int nonempty = bucket_nonempty(ctx->dst_r, o->dst_bucket, &listed_marker);
    if (nonempty < 0) return EXIT_FAILED;
    /* a run that started at the same time (the other shards of a first run) may have written the marker,
     * then objects, between the two reads: it writes nothing before the marker, so look again. A listing may
     * show the marker while its PUT is still in flight (RGW lists a pending write; HEAD says 404 until it
     * completes, measured: ~20 ms): then wait for it, a few seconds at most. */
    for (int tries = 0; nonempty; tries++) {
        if ((dst_marker = target_has_marker(ctx->dst_r, o->dst_bucket, "target")) < 0)
            return dst_marker == -2 ? EXIT_USAGE : EXIT_FAILED;
        if (dst_marker || !listed_marker || tries == 30 || ctx->interrupted) break;
        rep_sleep(ctx, 0.1);
    }
    if (dst_marker) nonempty = 0;
    if (nonempty && !o->init_target) {
        s3_log_user(S3_LOG_ERROR,
                "refused: the target s3://%s is not empty and has no %s, so it is not a replica "
                "made by replicate.\n"
                "  Did you swap the arguments? The order is: replicate SOURCE TARGET.\n"
                "  If this bucket really is meant to receive the backup, add --init-target.",
                o->dst_bucket, MARKER_KEY);
        return EXIT_REFUSED;
    }
    *need_marker = !dst_marker;
    return EXIT_OK;
}

/* 5. an unversioned target: versioning turned on (--enable-versioning), accepted (--allow-unversioned) or refused */
static int settle_versioning(struct rep_ctx *ctx, bool *enabled)
{
    const struct rep_options *o = ctx->o;
    if (*enabled) return EXIT_OK;
    if (o->enable_versioning) {
        if (!o->dry_run) {
            struct waiter w = {0};
            struct s3_response *r = wait_for(ctx, &w, s3_versioning_put(ctx->dst, o->dst_bucket, "Enabled", wait_cb, &w));
            bool ok = r && r->err == S3_OK;
            if (!ok) s3_log_user(S3_LOG_ERROR, "enabling versioning on s3://%s failed: %s", o->dst_bucket,
                             r ? r->message : "out of memory");
            s3_response_free(r);
            if (!ok) return EXIT_FAILED;
            s3_log(S3_LOG_WARN, "versioning enabled on s3://%s", o->dst_bucket);
        }
        *enabled = true;
    } else if (!o->allow_unversioned) {
        s3_log_user(S3_LOG_ERROR,
                "refused: versioning is not enabled on the target s3://%s, so an overwrite would "
                "destroy the previous copy.\n"
                "  Enable it (add --enable-versioning, or aws s3api put-bucket-versioning --bucket %s "
                "--versioning-configuration Status=Enabled),\n"
                "  or accept the risk with --allow-unversioned.",
                o->dst_bucket, o->dst_bucket);
        return EXIT_REFUSED;
    } else {
        s3_log(S3_LOG_WARN, "the target s3://%s is not versioned (--allow-unversioned): overwrites replace data",
               o->dst_bucket);
    }
    return EXIT_OK;
}

int target_prepare(struct rep_ctx *ctx, bool *versioned)
{
    bool enabled = false, need_marker = false;
    int rc;
    *versioned = false;
    if ((rc = refuse_overlap(ctx)) != EXIT_OK || (rc = refuse_replica_source(ctx)) != EXIT_OK ||
        (rc = read_versioning(ctx, &enabled)) != EXIT_OK || (rc = check_target_is_ours(ctx, &need_marker)) != EXIT_OK ||
        (rc = settle_versioning(ctx, &enabled)) != EXIT_OK)
        return rc;
    *versioned = enabled;
    if (need_marker && !ctx->o->dry_run && write_marker(ctx) != 0) return EXIT_FAILED;
    return EXIT_OK;
}
