/* A request's life: built from its spec, signed (SigV4) for each attempt, run on the loop, and its finished
 * attempt decided: complete, or retried by the one retry loop (s3/retry.h), or sent again at once for the
 * bucket's region or with the server's clock. Writes through a reader and DELETEs of objects are refused here.
 * See s3/client.h and s3/client_internal.h. Must not: decide on an error's message text (statuses and codes only,
 * through s3/retry.h). */
#include <ctype.h>
#include <curl/curl.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "s3/client_internal.h"
#include "s3/log.h"

static void attempt_start(struct s3_request *rq);

void s3i_request_free(struct s3_request *rq)
{
    if (!rq) return;
    if (rq->loop) ev_timer_stop(rq->loop->ev, &rq->resume);
    if (rq->easy) {
        struct s3_loop *loop = rq->loop;
        /* a piped transfer may end paused: its handle is not reused */
        bool piped = rq->on_sink || rq->body_source;
        if (loop && !piped && loop->npool < sizeof loop->pool / sizeof loop->pool[0]) {
            curl_easy_reset(rq->easy);
            loop->pool[loop->npool++] = rq->easy;
        } else {
            curl_easy_cleanup(rq->easy);
        }
    }
    curl_slist_free_all(rq->hdrs);
    free(rq->method);
    free(rq->bucket);
    free(rq->key);
    free(rq->canonical_uri);
    free(rq->canonical_query);
    free(rq->url);
    s3i_kv_free(rq->xh, rq->nxh);
    s3i_kv_free(rq->rh, rq->nrh);
    s3_buf_free(&rq->buf);
    free(rq);
}

static bool method_writes(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

/* rq->url from the client's current address and the request's canonical URI and query. 0 or -1. */
static int build_url(struct s3_request *rq)
{
    struct s3_client *c = rq->client;
    bool vhost = !c->cfg.path_style && rq->bucket[0];
    char *url = NULL;
    int n;
    if (vhost)
        n = asprintf(&url, "%s://%s.%s%s%s%s", c->scheme, rq->bucket, c->host, rq->canonical_uri,
                     rq->canonical_query[0] ? "?" : "", rq->canonical_query);
    else
        n = asprintf(&url, "%s%s%s%s", c->base, rq->canonical_uri, rq->canonical_query[0] ? "?" : "",
                     rq->canonical_query);
    if (n < 0) return -1;
    free(rq->url);
    rq->url = url;
    rq->where = c->where;
    return 0;
}

/* The bucket lives in another region than the one configured: S3 says so with 400 AuthorizationHeaderMalformed
 * (<Region>) or 301 PermanentRedirect, and x-amz-bucket-region. The client signs for that region from now on
 * (and, on an AWS regional endpoint, addresses that region's endpoint), said once at -v. Returns true when the
 * request is to be sent again at once: the region changed, now or since this attempt was signed. */
static bool region_moved(struct s3_request *rq, long status, const struct s3_error_info *e)
{
    struct s3_client *c = rq->client;
    const char *hdr = NULL;
    for (size_t i = 0; i < rq->nrh; i++)
        if (strcmp(rq->rh[i].name, "x-amz-bucket-region") == 0) hdr = rq->rh[i].value;
    /* a HEAD reply has no body: then the header alone says it */
    bool malformed = e->code ? strcmp(e->code, "AuthorizationHeaderMalformed") == 0 : hdr != NULL;
    if (!(status == 301 || (status == 400 && malformed))) return false;
    if (rq->where != c->where) return true; /* another request already moved the client */
    const char *want = e->region ? e->region : hdr;
    if (!want || !want[0] || strlen(want) > 64 || strcmp(want, c->cfg.region) == 0) return false;
    for (const char *p = want; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-')) return false;
    char *region = strdup(want), *host = NULL, *base = NULL;
    if (!region) return false;
    /* an AWS regional endpoint follows the region (s3.REGION.amazonaws.com); any other endpoint stays */
    char old[80];
    snprintf(old, sizeof old, "s3.%s.amazonaws.com", c->cfg.region);
    if (strcmp(c->host, old) == 0 || strcmp(c->host, "s3.amazonaws.com") == 0) {
        if (asprintf(&host, "s3.%s.amazonaws.com", region) < 0) host = NULL;
        if (host && asprintf(&base, "%s://%s", c->scheme, host) < 0) base = NULL;
        if (!host || !base) {
            free(region);
            free(host);
            return false;
        }
        free(c->host);
        free(c->base);
        c->host = host;
        c->base = base;
    }
    s3_log(S3_LOG_INFO, "s3://%s is in region %s, not %s: signing for %s%s%s from now on", rq->bucket, region,
           c->cfg.region, region, host ? " at " : "", host ? host : "");
    free(c->cfg.region);
    c->cfg.region = region;
    c->where++;
    return true;
}

/* The server refused the attempt's date (RequestTimeTooSkewed, or a HEAD's bare 403 with a Date far from
 * ours): this host's clock is off. The endpoint's clients sign with the server's time from now on (this
 * host's clock plus the endpoint's offset), said once at -v. Returns true when the request is to be signed
 * and sent again at once: the correction changed, now or since this attempt was signed. */
static bool clock_corrected(struct s3_request *rq, long status, const struct s3_error_info *e)
{
    struct s3_client *c = rq->client;
    const char *date = NULL;
    for (size_t i = 0; i < rq->nrh; i++)
        if (strcmp(rq->rh[i].name, "date") == 0) date = rq->rh[i].value;
    long fix = 0;
    switch (s3_skew_decide(status, e->code, e->server_time, date, (double)time(NULL), rq->signed_offset,
                           c->clock->offset, &fix)) {
    case S3_SKEW_NO:
        return false;
    case S3_SKEW_RESIGN:
        return true;
    case S3_SKEW_CORRECT:
        break;
    }
    s3_log(S3_LOG_INFO, "the clock here is %ld s %s %s's; signing with its time from now on", labs(fix),
           fix > 0 ? "behind" : "ahead of", c->host);
    c->clock->offset = fix;
    return true;
}

/* Signs the attempt and (re)configures the easy handle. Returns 0 or -1 (allocation). */
static int attempt_prepare(struct s3_request *rq)
{
    struct s3_client *c = rq->client;
    if (rq->where != c->where) { /* the region moved since the URL was built */
        if (build_url(rq) != 0) return -1;
        curl_easy_setopt(rq->easy, CURLOPT_URL, rq->url);
    }
    char amz_date[17];
    rq->signed_offset = c->clock->offset;
    time_t now = s3_client_time(c);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);

    size_t nh = rq->nxh + 4;
    struct s3_header *h = calloc(nh, sizeof *h);
    if (!h) return -1;
    size_t k = 0;
    char *vhost = NULL;
    const char *host = c->host;
    if (!c->cfg.path_style && rq->bucket && rq->bucket[0]) {
        if (asprintf(&vhost, "%s.%s", rq->bucket, c->host) < 0) {
            free(h);
            return -1;
        }
        host = vhost;
    }
    h[k++] = (struct s3_header){"host", host};
    h[k++] = (struct s3_header){"x-amz-date", amz_date};
    h[k++] = (struct s3_header){"x-amz-content-sha256", rq->payload_hash};
    if (c->cfg.creds.session_token && c->cfg.creds.session_token[0])
        h[k++] = (struct s3_header){"x-amz-security-token", c->cfg.creds.session_token};
    for (size_t i = 0; i < rq->nxh; i++) h[k++] = (struct s3_header){rq->xh[i].name, rq->xh[i].value};

    struct sigv4_request sr = {
        .method = rq->method,
        .canonical_uri = rq->canonical_uri,
        .canonical_query = rq->canonical_query,
        .headers = h,
        .nheaders = k,
        .payload_hash = rq->payload_hash,
    };
    char *auth = sigv4_authorization(&sr, &c->cfg.creds, amz_date, c->cfg.region, "s3");
    int rc = -1;
    struct curl_slist *l = NULL;
    if (!auth) goto out;
    for (size_t i = 1; i < k; i++) /* host: curl sends it from the URL */
        if (s3i_header_add(&l, h[i].name, h[i].value) != 0) goto out;
    if (s3i_header_add(&l, "Authorization", auth) != 0) goto out;
    struct curl_slist *t = curl_slist_append(l, "Expect:");
    if (!t) goto out;
    l = t;
    if (strcmp(rq->method, "POST") == 0) {
        bool has_ct = false;
        for (size_t i = 0; i < rq->nxh; i++)
            if (strcasecmp(rq->xh[i].name, "content-type") == 0) has_ct = true;
        if (!has_ct) {
            t = curl_slist_append(l, "Content-Type:");
            if (!t) goto out;
            l = t;
        }
    }
    curl_slist_free_all(rq->hdrs);
    rq->hdrs = l;
    l = NULL;
    curl_easy_setopt(rq->easy, CURLOPT_HTTPHEADER, rq->hdrs);
    rc = 0;
out:
    if (auth) { /* the signature is not a secret by itself, but keep memory tidy */
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    curl_slist_free_all(l);
    free(vhost);
    free(h);
    return rc;
}

static void timer_fire(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct s3_request *rq = w->data;
    if (rq->forced != S3_OK) { /* deferred refusal or cancellation */
        rq->state = REQ_FINISHED;
        rq->done_next = rq->loop->done;
        rq->loop->done = rq;
        s3i_drain_done(rq->loop);
        return;
    }
    attempt_start(rq);
}

static void resume_fire(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct s3_request *rq = w->data;
    if (rq->state == REQ_RUNNING) curl_easy_pause(rq->easy, CURLPAUSE_CONT);
}

void s3_request_resume(struct s3_request *rq)
{
    if (rq && rq->state == REQ_RUNNING && !ev_is_active(&rq->resume)) {
        ev_timer_set(&rq->resume, 0., 0.);
        ev_timer_start(rq->loop->ev, &rq->resume);
    }
}

static void attempt_start(struct s3_request *rq)
{
    struct s3_loop *loop = rq->loop;
    rq->attempt++;
    rq->body_off = 0;
    rq->streamed = rq->sink_abort = rq->too_large = false;
    rq->errbuf[0] = '\0';
    s3_buf_reset(&rq->buf);
    rq->buf.cap = rq->max_body; /* write_cb may have raised it for an error document */
    s3i_kv_free(rq->rh, rq->nrh);
    rq->rh = NULL;
    rq->nrh = rq->arh = 0;
    loop->stats.requests++;
    if (rq->attempt > 1) loop->stats.retries++;
    if (attempt_prepare(rq) != 0 || curl_multi_add_handle(loop->multi, rq->easy) != CURLM_OK) {
        rq->forced = S3_ERR_NOMEM;
        ev_timer_set(&rq->timer, 0., 0.);
        ev_timer_start(loop->ev, &rq->timer);
        rq->state = REQ_QUEUED;
        return;
    }
    rq->state = REQ_RUNNING;
}

/* What a finished attempt came to. */
struct outcome {
    long status;
    enum s3_err err;
    enum s3_retry_class cls;
    const char *code; /* the parsed S3 error code (points into einfo), or NULL */
    struct s3_error_info einfo;
    bool at_once;     /* sent again at once (region or clock corrected): not a retry */
};

/* The attempt's result from curl's code, the status and the parsed error document; never from message text. */
static void attempt_classify(struct s3_request *rq, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    o->cls = S3_RETRY_NO;
    if (rq->forced == S3_OK) curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &o->status);
    long status = o->status;
    if (rq->forced != S3_OK) {
        o->err = rq->forced;
    } else if (rq->result != CURLE_OK && !(rq->result == CURLE_WRITE_ERROR && (rq->sink_abort || rq->too_large))) {
        o->err = S3_ERR_TRANSPORT;
        o->cls = s3_retry_classify(0, NULL, (int)rq->result);
    } else if (rq->too_large) {
        o->err = S3_ERR_TOO_LARGE;
    } else if (rq->sink_abort) {
        o->err = S3_ERR_CANCELLED;
    } else if (status < 200 || status >= 300) {
        o->err = S3_ERR_HTTP;
        if (rq->buf.len && s3_xml_parse_error(rq->buf.data, rq->buf.len, &o->einfo) == S3_OK) o->code = o->einfo.code;
        o->cls = s3_retry_classify(status, o->code, 0);
        if (rq->bad_digest_final && o->code && strcmp(o->code, "BadDigest") == 0) o->cls = S3_RETRY_NO;
    } else if (rq->error_in_200 && (!rq->buf.len || s3_xml_is_error(rq->buf.data, rq->buf.len))) {
        /* 200 with an <Error> body (or an empty body where a result document was due) */
        o->err = S3_ERR_HTTP;
        if (rq->buf.len && s3_xml_parse_error(rq->buf.data, rq->buf.len, &o->einfo) == S3_OK) o->code = o->einfo.code;
        o->cls = s3_retry_classify(status, o->code ? o->code : "InternalError", 0);
    }
}

/* What the attempt says about the endpoint: its concurrency (a 503 -- SlowDown, or a HEAD's bodiless 503 -- or
 * a 429 says too many; a reply that completes says it took it), the bucket's region, the server's clock. */
static void attempt_learn(struct s3_request *rq, struct outcome *o)
{
    struct s3_loop *loop = rq->loop;
    if (o->cls == S3_RETRY_THROTTLED || o->status == 503) s3_aimd_throttled(&rq->client->aimd, ev_now(loop->ev));
    else if (o->err == S3_OK) s3_aimd_success(&rq->client->aimd);
    bool replayable = !rq->on_sink && !rq->body_source;
    bool moved = o->err == S3_ERR_HTTP && rq->region_moves < 2 && replayable && region_moved(rq, o->status, &o->einfo);
    if (moved) { /* sent again at once, signed for the bucket's region; not counted as a retry */
        rq->region_moves++;
        rq->attempt--;
        o->cls = S3_RETRY_YES;
    }
    /* the correction is kept even for a request not sent again here: its caller's rerun signs right */
    bool skewed = o->err == S3_ERR_HTTP && !moved && clock_corrected(rq, o->status, &o->einfo) &&
                  rq->skew_fixes < 2 && replayable;
    if (skewed) { /* sent again at once, signed with the server's time; not counted as a retry */
        rq->skew_fixes++;
        rq->attempt--;
        o->cls = S3_RETRY_YES;
    }
    o->at_once = moved || skewed;
}

static void attempt_log(struct s3_request *rq, const struct outcome *o)
{
    if (!s3_log_enabled(S3_LOG_DEBUG)) return;
    double t = 0;
    if (rq->forced == S3_OK) curl_easy_getinfo(rq->easy, CURLINFO_TOTAL_TIME, &t);
    const char *code = o->code;
    struct s3_log_field f[] = {{"method", rq->method, 0}, {"bucket", rq->bucket, 0}, {"status", NULL, (double)o->status},
                               {"code", code ? code : "", 0}, {"ms", NULL, round(t * 10000) / 10},
                               {"attempt", NULL, rq->attempt}};
    s3_log_event(S3_LOG_DEBUG, "request", rq->key, f, sizeof f / sizeof *f, "%s s3://%s/%s -> %ld%s%s (%.1f ms, attempt %d)",
                 rq->method, rq->bucket, rq->key ? rq->key : "", o->status, code ? " " : "", code ? code : "", t * 1000,
                 rq->attempt);
}

/* The one retry loop: a failed attempt that may succeed later runs again after the policy's delay (or at once,
 * after a correction), a streamed body's consumer told to start over. Returns whether it was scheduled. */
static bool retry_scheduled(struct s3_request *rq, struct outcome *o)
{
    struct s3_loop *loop = rq->loop;
    int max = rq->max_attempts > 0 ? rq->max_attempts : loop->opts.retry.max_attempts;
    if (o->err == S3_OK || o->cls == S3_RETRY_NO || !(rq->attempt < max || o->at_once)) return false;
    double ra = -1;
    for (size_t i = 0; i < rq->nrh; i++)
        if (strcmp(rq->rh[i].name, "retry-after") == 0)
            ra = s3_retry_after_parse(rq->rh[i].value, (double)s3_client_time(rq->client));
    double delay = o->at_once ? 0 : s3_loop_retry_delay(loop, rq->attempt, o->cls, ra);
    const char *why = o->err == S3_ERR_TRANSPORT ? s3i_curl_reason(rq->result) : "HTTP error ";
    struct s3_log_field f[] = {{"method", rq->method, 0}, {"bucket", rq->bucket, 0}, {"status", NULL, (double)o->status},
                               {"code", o->code ? o->code : "", 0}, {"delay", NULL, round(delay * 100) / 100},
                               {"attempt", NULL, rq->attempt + 1}, {"max_attempts", NULL, max}};
    char status_s[24]; /* a bodiless reply (HEAD) has no code: its status then */
    snprintf(status_s, sizeof status_s, "%ld", o->status);
    const char *what = o->err == S3_ERR_TRANSPORT ? "" : o->code ? o->code : status_s;
    s3_log_event(S3_LOG_INFO, "retry", rq->key, f, sizeof f / sizeof *f,
                 "%s s3://%s/%s: %s%s; retrying in %.2fs (attempt %d of %d)", rq->method, rq->bucket,
                 rq->key ? rq->key : "", why, what, delay, rq->attempt + 1, max);
    s3_error_info_free(&o->einfo);
    if (rq->streamed && rq->on_reset) rq->on_reset(rq->body_ud);
    rq->state = REQ_QUEUED;
    ev_timer_set(&rq->timer, delay, 0.);
    ev_timer_start(loop->ev, &rq->timer);
    return true;
}

/* The user's line for a final response (no secrets: redacted). */
static void response_message(const struct s3_request *rq, struct s3_response *resp)
{
    const char *k = rq->key ? rq->key : "";
    const struct s3_error_info *e = &resp->s3err;
    long status = resp->status;
    switch (resp->err) {
    case S3_OK:
        snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: ok", rq->method, rq->bucket, k);
        break;
    case S3_ERR_HTTP:
        snprintf(
            resp->message, sizeof resp->message, "%s s3://%s/%s: HTTP %ld %s%s%s%s%s", rq->method, rq->bucket,
            k, status,
            e->code         ? e->code
            : status == 404 ? "NotFound"
            : status == 403 ? "Forbidden (wrong access key or secret, no permission, or the wrong region)"
                            : "",
            e->message && e->message[0] ? ": " : "", e->message ? e->message : "",
            rq->attempt > 1 ? " (after retries)" : "",
            e->code && strcmp(e->code, "RequestTimeTooSkewed") == 0
                ? "; this machine's clock is off and the server's time could not be used: set the clock (NTP)"
                : "");
        break;
    case S3_ERR_TRANSPORT: {
        char advice[600];
        s3i_tls_advice(rq->client, rq->result, advice, sizeof advice);
        int n = snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: %s (%s; %d attempt%s)", rq->method,
                         rq->bucket, k, s3i_curl_reason(rq->result),
                         rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(rq->result), rq->attempt,
                         rq->attempt == 1 ? "" : "s");
        if (n > 0 && (size_t)n < sizeof resp->message) /* then what to do, as far as it fits */
            snprintf(resp->message + n, sizeof resp->message - (size_t)n, "%.*s",
                     (int)(sizeof resp->message - (size_t)n - 1), advice);
        break;
    }
    case S3_ERR_READ_ONLY:
        snprintf(resp->message, sizeof resp->message,
                 "%s s3://%s/%s: refused: the source is opened read-only and this request would write", rq->method,
                 rq->bucket, k);
        break;
    default:
        snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: %s", rq->method, rq->bucket, k,
                 s3_err_str(resp->err));
        break;
    }
    s3_log_redact(resp->message);
}

/* Decides the outcome of a finished attempt: the final response, or NULL when a retry is scheduled (or, with
 * rq->state not REQ_QUEUED, when memory ran out). */
static struct s3_response *attempt_evaluate(struct s3_request *rq)
{
    struct outcome o;
    attempt_classify(rq, &o);
    attempt_learn(rq, &o);
    attempt_log(rq, &o);
    if (retry_scheduled(rq, &o)) return NULL;
    struct s3_response *resp = calloc(1, sizeof *resp);
    if (!resp) {
        s3_error_info_free(&o.einfo);
        return NULL; /* caller treats as fatal OOM */
    }
    resp->err = o.err;
    resp->status = o.status;
    resp->curl_code = (int)rq->result;
    resp->attempts = rq->attempt;
    resp->s3err = o.einfo;
    resp->headers = rq->rh;
    resp->nheaders = rq->nrh;
    rq->rh = NULL;
    rq->nrh = rq->arh = 0;
    if (!rq->streamed || o.err != S3_OK) resp->body = s3_buf_steal(&rq->buf, &resp->body_len);
    response_message(rq, resp);
    return resp;
}

void s3i_drain_done(struct s3_loop *loop)
{
    while (loop->done) {
        struct s3_request *rq = loop->done;
        loop->done = rq->done_next;
        rq->done_next = NULL;
        struct s3_response *resp = attempt_evaluate(rq);
        if (!resp && rq->state == REQ_QUEUED) continue; /* retry scheduled */
        rq->state = REQ_COMPLETE;
        s3i_loop_unlink(loop, rq);
        loop->active--;
        s3_done_cb cb = rq->cb;
        void *ud = rq->ud;
        s3i_request_free(rq);
        if (resp) {
            cb(resp, ud);
        } else {
            s3_log(S3_LOG_ERROR, "out of memory completing a request");
            abort();
        }
    }
}

static struct s3_request *request_start(struct s3_client *c, const struct s3_request_spec *spec, s3_done_cb cb,
                                        void *ud, bool via_reader)
{
    struct s3_loop *loop = c->loop;
    struct s3_request *rq = calloc(1, sizeof *rq);
    if (!rq) return NULL;
    rq->loop = loop;
    rq->client = c;
    rq->cb = cb;
    rq->ud = ud;
    rq->method = strdup(spec->method);
    rq->bucket = strdup(spec->bucket ? spec->bucket : "");
    rq->key = spec->key ? strdup(spec->key) : NULL;
    rq->body = spec->body;
    rq->body_len = spec->body_len;
    rq->unsigned_payload = spec->unsigned_payload;
    rq->error_in_200 = spec->error_in_200;
    rq->max_body = spec->max_body ? spec->max_body : 1024 * 1024;
    rq->on_body = spec->on_body;
    rq->on_reset = spec->on_reset;
    rq->body_ud = spec->body_ud;
    rq->max_attempts = spec->max_attempts;
    rq->bad_digest_final = spec->bad_digest_final;
    rq->on_sink = spec->on_sink;
    rq->body_source = spec->body_source;
    rq->source_ud = spec->source_ud;
    if (rq->on_sink || rq->body_source) rq->max_attempts = 1; /* the bytes cannot be replayed */
    ev_timer_init(&rq->resume, resume_fire, 0., 0.);
    rq->resume.data = rq;
    s3_buf_init(&rq->buf, rq->max_body);
    ev_timer_init(&rq->timer, timer_fire, 0., 0.);
    rq->timer.data = rq;
    if (!rq->method || !rq->bucket || (spec->key && !rq->key)) goto error_clean_up;
    if (spec->nheaders) {
        rq->xh = calloc(spec->nheaders, sizeof *rq->xh);
        if (!rq->xh) goto error_clean_up;
        for (size_t i = 0; i < spec->nheaders; i++) {
            rq->xh[i].name = strdup(spec->headers[i].name);
            rq->xh[i].value = strdup(spec->headers[i].value ? spec->headers[i].value : "");
            rq->nxh++;
            if (!rq->xh[i].name || !rq->xh[i].value) goto error_clean_up;
        }
    }
    if (rq->unsigned_payload || rq->body_source) snprintf(rq->payload_hash, sizeof rq->payload_hash, "UNSIGNED-PAYLOAD");
    else if (!rq->body_len) memcpy(rq->payload_hash, SIGV4_EMPTY_SHA256, sizeof SIGV4_EMPTY_SHA256);
    else sigv4_sha256_hex(rq->body, rq->body_len, rq->payload_hash);

    bool vhost = !c->cfg.path_style && rq->bucket[0];
    rq->canonical_uri = s3_uri_encode_path(vhost ? NULL : rq->bucket, rq->key);
    rq->canonical_query = sigv4_canonical_query(spec->query, spec->nquery);
    if (!rq->canonical_uri || !rq->canonical_query) goto error_clean_up;
    if (build_url(rq) != 0) goto error_clean_up;
    if (s3i_easy_setup(rq) != 0) goto error_clean_up;

    const char *m = rq->method;
    if (!strcmp(m, "GET")) loop->stats.get++;
    else if (!strcmp(m, "HEAD")) loop->stats.head++;
    else if (!strcmp(m, "PUT")) loop->stats.put++;
    else if (!strcmp(m, "POST")) loop->stats.post++;
    else if (!strcmp(m, "DELETE")) loop->stats.del++;

    s3i_loop_link(loop, rq);
    loop->active++;
    bool refuse = (via_reader || c->read_only) && method_writes(m);
    /* The only DELETE this tool may send aborts a multipart upload; objects and buckets are never deleted. */
    bool abort_mpu = false;
    for (size_t i = 0; i < spec->nquery; i++)
        if (strcmp(spec->query[i].name, "uploadId") == 0) abort_mpu = true;
    if (!strcmp(m, "DELETE") && !abort_mpu) refuse = true;
    if (refuse) {
        rq->forced = S3_ERR_READ_ONLY;
        rq->state = REQ_QUEUED;
        ev_timer_start(loop->ev, &rq->timer);
        return rq;
    }
    attempt_start(rq);
    return rq;

error_clean_up:
    s3i_request_free(rq);
    return NULL;
}

struct s3_request *s3_request_start(struct s3_client *c, const struct s3_request_spec *spec, s3_done_cb cb,
                                    void *ud)
{
    return request_start(c, spec, cb, ud, false);
}

struct s3_request *s3_reader_request_start(struct s3_reader *r, const struct s3_request_spec *spec,
                                           s3_done_cb cb, void *ud)
{
    return request_start(r->client, spec, cb, ud, true);
}

void s3_request_cancel(struct s3_request *rq)
{
    if (!rq || rq->state == REQ_COMPLETE || rq->state == REQ_FINISHED) return;
    if (rq->state == REQ_RUNNING) curl_multi_remove_handle(rq->loop->multi, rq->easy);
    ev_timer_stop(rq->loop->ev, &rq->timer);
    rq->forced = S3_ERR_CANCELLED;
    rq->state = REQ_QUEUED;
    ev_timer_set(&rq->timer, 0., 0.);
    ev_timer_start(rq->loop->ev, &rq->timer);
}

void s3_loop_cancel_all(struct s3_loop *loop)
{
    for (struct s3_request *rq = loop->live; rq; rq = rq->next) s3_request_cancel(rq);
}

struct wait_ctx {
    bool done;
    struct s3_response *resp;
};

static void wait_cb(struct s3_response *resp, void *ud)
{
    struct wait_ctx *w = ud;
    w->done = true;
    w->resp = resp;
}

static struct s3_response *wait_common(struct s3_client *c, const struct s3_request_spec *spec, bool via_reader)
{
    struct wait_ctx w = {0};
    if (!request_start(c, spec, wait_cb, &w, via_reader)) return NULL;
    while (!w.done) ev_run(c->loop->ev, EVRUN_ONCE);
    return w.resp;
}

struct s3_response *s3_request_wait(struct s3_client *c, const struct s3_request_spec *spec)
{
    return wait_common(c, spec, false);
}

struct s3_response *s3_reader_request_wait(struct s3_reader *r, const struct s3_request_spec *spec)
{
    return wait_common(r->client, spec, true);
}
