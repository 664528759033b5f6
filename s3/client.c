/* The libev <-> libcurl multi glue (socket callback, timer callback, event callback, info drain), request
 * signing and the retry loop. See s3/client.h for the contract. */
#include <ctype.h>
#include <limits.h>
#include <curl/curl.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "s3/buf.h"
#include "s3/client.h"
#include "s3/log.h"

#define ERROR_BODY_MAX (64 * 1024) /* room for an <Error> document, whatever the expected body's cap */

struct s3_loop {
    struct ev_loop *ev;
    CURLM *multi;
    ev_timer timer;
    struct s3_loop_options opts;
    size_t active;
    struct s3_loop_stats stats;
    struct s3_request *live;  /* every request not yet completed */
    struct s3_request *done;  /* finished attempts waiting to be processed at a safe point */
    unsigned int rng;
    CURL *pool[128];  /* finished easy handles kept for reuse: curl_easy_reset is cheaper than init */
    size_t npool;
    struct s3_clock *clocks; /* one per endpoint, shared by the clients of that endpoint */
};

/* An endpoint's clock as this host should sign for it: the correction learnt from a RequestTimeTooSkewed
 * refusal (clock_corrected), kept for the run; one per endpoint, so a source and a target on one server learn
 * it (and say it) once. */
struct s3_clock {
    char *base;  /* scheme://host[:port] as configured */
    long offset; /* seconds added to this host's clock; 0 until a refusal */
    struct s3_clock *next;
};

struct sock_watch {
    ev_io io;
    struct s3_loop *loop;
};

#define S3_PIPE_RECV_BUFFER (128 * 1024) /* at most half a pipe ring (replicator/copy.c), so a read fits */
#define S3_PIPE_SEND_BUFFER (256 * 1024)

struct s3_reader {
    struct s3_client *client;
};

struct s3_client {
    struct s3_loop *loop;
    struct s3_config cfg;
    bool read_only;
    struct s3_reader reader;
    char *base;      /* scheme://host[:port] */
    char *scheme;
    char *host;      /* host[:port] as sent in Host: */
    unsigned where;  /* bumped when the region (and with it an AWS endpoint) changes: requests re-address */
    struct s3_aimd aimd; /* adaptive concurrency of this endpoint */
    struct s3_clock *clock; /* the endpoint's (owned by the loop) */
};

/* A request's life: QUEUED (waiting for a retry/deferred timer) -> RUNNING (in the multi handle) ->
 * FINISHED (an attempt ended; on the loop's done list) -> QUEUED again for a retry, or COMPLETE. */
enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_FINISHED, REQ_COMPLETE };

struct s3_request {
    struct s3_loop *loop;
    struct s3_client *client;
    enum req_state state;
    CURL *easy;
    struct curl_slist *hdrs;
    char *method, *bucket, *key, *canonical_uri, *canonical_query, *url;
    unsigned where; /* the client's `where` when url was built and the attempt signed */
    int region_moves; /* times this request was sent again for another region */
    long signed_offset; /* the endpoint's clock offset when this attempt was signed */
    int skew_fixes;     /* times this request was sent again with a corrected clock */
    struct s3_kv *xh; /* extra headers */
    size_t nxh;
    const void *body;
    size_t body_len, body_off;
    bool unsigned_payload, error_in_200;
    size_t max_body;
    s3_body_cb on_body;
    s3_reset_cb on_reset;
    void *body_ud;
    int max_attempts;
    bool bad_digest_final;
    s3_sink_cb on_sink;
    s3_source_cb body_source;
    void *source_ud;
    ev_timer resume; /* s3_request_resume: curl_easy_pause(CONT) from the loop, outside curl's callbacks */
    char payload_hash[65];
    s3_done_cb cb;
    void *ud;
    struct s3_buf buf;
    struct s3_kv *rh;
    size_t nrh, arh;
    int attempt;
    ev_timer timer;
    bool streamed;
    bool sink_abort;
    bool too_large;
    enum s3_err forced; /* set for refusals/cancellation: complete with this error, no attempt */
    CURLcode result;
    char errbuf[CURL_ERROR_SIZE];
    struct s3_request *prev, *next, *done_next;
    bool *wait_flag;              /* s3_request_wait */
    struct s3_response **wait_out;
};

static void attempt_start(struct s3_request *rq);
static void drain_done(struct s3_loop *loop);

void s3_loop_options_default(struct s3_loop_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_host_connections = 64;
    o->connect_timeout = 10;
    o->stall_timeout = 60;
    o->total_timeout = 0;
    s3_retry_policy_default(&o->retry);
}

/* ---- the loop ---- */

static void check_multi_info(struct s3_loop *loop)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(loop->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        struct s3_request *rq = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
        CURLcode res = msg->data.result;
        curl_multi_remove_handle(loop->multi, msg->easy_handle);
        if (!rq) continue;
        rq->result = res;
        rq->state = REQ_FINISHED;
        rq->done_next = loop->done;
        loop->done = rq;
    }
    drain_done(loop);
}

static void io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev;
    struct sock_watch *sw = (struct sock_watch *)w;
    /* socket_action may close this socket and free sw (CURL_POLL_REMOVE): read what we need first */
    struct s3_loop *loop = sw->loop;
    curl_socket_t fd = w->fd;
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(loop->multi, fd, action, &running);
    check_multi_info(loop);
}

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)ev;
    (void)revents;
    struct s3_loop *loop = w->data;
    int running;
    curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(loop);
}

static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct s3_loop *loop = userp;
    ev_timer_stop(loop->ev, &loop->timer);
    if (timeout_ms >= 0) {
        ev_timer_set(&loop->timer, timeout_ms / 1000.0, 0.);
        ev_timer_start(loop->ev, &loop->timer);
    }
    return 0;
}

static int multi_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct s3_loop *loop = userp;
    struct sock_watch *sw = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sw) {
            ev_io_stop(loop->ev, &sw->io);
            free(sw);
            curl_multi_assign(loop->multi, s, NULL);
        }
        return 0;
    }
    int kind = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sw) {
        sw = calloc(1, sizeof *sw);
        if (!sw) return -1;
        sw->loop = loop;
        curl_multi_assign(loop->multi, s, sw);
    } else {
        ev_io_stop(loop->ev, &sw->io);
    }
    ev_io_init(&sw->io, io_cb, s, kind);
    ev_io_start(loop->ev, &sw->io);
    return 0;
}

struct s3_loop *s3_loop_new(struct ev_loop *ev, const struct s3_loop_options *opts)
{
    static bool global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
        global_done = true;
    }
    struct s3_loop *loop = calloc(1, sizeof *loop);
    if (!loop) return NULL;
    if (opts) loop->opts = *opts;
    else s3_loop_options_default(&loop->opts);
    if (loop->opts.retry.max_attempts <= 0) s3_retry_policy_default(&loop->opts.retry);
    loop->ev = ev ? ev : EV_DEFAULT;
    loop->rng = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)loop;
    loop->multi = curl_multi_init();
    if (!loop->multi) goto error_clean_up;
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
    curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
    curl_multi_setopt(loop->multi, CURLMOPT_MAX_HOST_CONNECTIONS, loop->opts.max_host_connections);
    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, loop->opts.max_host_connections * 2);
    ev_timer_init(&loop->timer, timer_cb, 0., 0.);
    loop->timer.data = loop;
    return loop;

error_clean_up:
    free(loop);
    return NULL;
}

static void request_free(struct s3_request *rq);

void s3_loop_free(struct s3_loop *loop)
{
    if (!loop) return;
    while (loop->live) {
        struct s3_request *rq = loop->live;
        loop->live = rq->next;
        if (rq->state == REQ_RUNNING) curl_multi_remove_handle(loop->multi, rq->easy);
        ev_timer_stop(loop->ev, &rq->timer);
        request_free(rq);
    }
    ev_timer_stop(loop->ev, &loop->timer);
    while (loop->clocks) {
        struct s3_clock *k = loop->clocks;
        loop->clocks = k->next;
        free(k->base);
        free(k);
    }
    while (loop->npool) curl_easy_cleanup(loop->pool[--loop->npool]);
    curl_multi_cleanup(loop->multi);
    free(loop);
}

struct ev_loop *s3_loop_ev(struct s3_loop *loop)
{
    return loop->ev;
}

size_t s3_loop_active(const struct s3_loop *loop)
{
    return loop->active;
}

void s3_loop_stats(const struct s3_loop *loop, struct s3_loop_stats *out)
{
    *out = loop->stats;
}

const struct s3_retry_policy *s3_loop_retry_policy(const struct s3_loop *loop)
{
    return &loop->opts.retry;
}

double s3_loop_retry_delay(struct s3_loop *loop, int attempt, enum s3_retry_class cls, double retry_after)
{
    loop->rng = loop->rng * 1103515245u + 12345u;
    double rnd = ((loop->rng >> 8) & 0xffffff) / (double)0x1000000;
    return s3_retry_delay(&loop->opts.retry, attempt, cls, retry_after, rnd);
}

/* ---- clients ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int copy_config(struct s3_config *dst, const struct s3_config *src)
{
    memset(dst, 0, sizeof *dst);
    dst->endpoint = xstrdup(src->endpoint);
    dst->region = xstrdup(src->region ? src->region : "us-east-1");
    dst->path_style = src->path_style;
    dst->insecure = src->insecure;
    dst->ca_bundle = xstrdup(src->ca_bundle);
    dst->ca_source = xstrdup(src->ca_source);
    if ((src->ca_bundle && !dst->ca_bundle) || (src->ca_source && !dst->ca_source)) return -1;
    dst->profile = xstrdup(src->profile);
    dst->creds.access_key = xstrdup(src->creds.access_key);
    dst->creds.secret_key = xstrdup(src->creds.secret_key);
    dst->creds.session_token = xstrdup(src->creds.session_token);
    if (!dst->endpoint || !dst->region || !dst->creds.access_key || !dst->creds.secret_key) return -1;
    return 0;
}

/* The loop's clock of endpoint base, made on first use; NULL when out of memory. */
static struct s3_clock *loop_clock(struct s3_loop *loop, const char *base)
{
    for (struct s3_clock *k = loop->clocks; k; k = k->next)
        if (strcmp(k->base, base) == 0) return k;
    struct s3_clock *k = calloc(1, sizeof *k);
    if (!k || !(k->base = strdup(base))) {
        free(k);
        return NULL;
    }
    k->next = loop->clocks;
    loop->clocks = k;
    return k;
}

static struct s3_client *client_new(struct s3_loop *loop, const struct s3_config *cfg, bool read_only,
                                    char *err, size_t errlen)
{
    struct s3_client *c = calloc(1, sizeof *c);
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (!c) goto error_clean_up;
    c->loop = loop;
    c->read_only = read_only;
    c->reader.client = c;
    if (!cfg->endpoint || !cfg->creds.access_key || !cfg->creds.secret_key) {
        snprintf(err, errlen, "incomplete S3 configuration (endpoint and credentials are required)");
        goto error_clean_up;
    }
    if (copy_config(&c->cfg, cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        goto error_clean_up;
    }
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, cfg->endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "cannot parse endpoint URL \"%s\"", cfg->endpoint);
        goto error_clean_up;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    size_t n = strlen(host) + (port ? strlen(port) + 1 : 0) + 1;
    c->host = malloc(n);
    c->scheme = strdup(scheme);
    if (!c->host || !c->scheme) goto error_clean_up;
    if (port) snprintf(c->host, n, "%s:%s", host, port);
    else snprintf(c->host, n, "%s", host);
    if (asprintf(&c->base, "%s://%s", scheme, c->host) < 0) {
        c->base = NULL;
        goto error_clean_up;
    }
    if (!(c->clock = loop_clock(loop, c->base))) goto error_clean_up;
    s3_log_add_secret(c->cfg.creds.secret_key);
    s3_log_add_secret(c->cfg.creds.session_token);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return c;

error_clean_up:
    if (err && errlen && !err[0]) snprintf(err, errlen, "out of memory");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    s3_client_free(c);
    return NULL;
}

struct s3_client *s3_client_new(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    return client_new(loop, cfg, false, err, errlen);
}

void s3_client_free(struct s3_client *c)
{
    if (!c) return;
    s3_config_free(&c->cfg);
    free(c->base);
    free(c->scheme);
    free(c->host);
    free(c);
}

struct s3_reader *s3_client_reader(struct s3_client *c)
{
    return &c->reader;
}

struct s3_reader *s3_reader_open(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    struct s3_client *c = client_new(loop, cfg, true, err, errlen);
    return c ? &c->reader : NULL;
}

void s3_reader_close(struct s3_reader *r)
{
    if (r && r->client->read_only) s3_client_free(r->client);
}

const struct s3_config *s3_reader_config(const struct s3_reader *r)
{
    return &r->client->cfg;
}

void s3_reader_adapt(struct s3_reader *r, int ceiling)
{
    s3_aimd_init(&r->client->aimd, ceiling);
}

int s3_reader_concurrency(const struct s3_reader *r)
{
    return r ? s3_aimd_limit(&r->client->aimd) : INT_MAX;
}

const struct s3_aimd *s3_reader_aimd(const struct s3_reader *r)
{
    return &r->client->aimd;
}

/* ---- responses ---- */

const char *s3_response_header(const struct s3_response *r, const char *name)
{
    for (size_t i = 0; r && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

char *s3_response_etag(const struct s3_response *r)
{
    const char *v = s3_response_header(r, "etag");
    if (!v) return NULL;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') return strndup(v + 1, n - 2);
    return strdup(v);
}

static void kv_free(struct s3_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void s3_response_free(struct s3_response *r)
{
    if (!r) return;
    free(r->body);
    s3_error_info_free(&r->s3err);
    kv_free(r->headers, r->nheaders);
    free(r);
}

char *s3_object_url(const char *bucket, const char *key)
{
    char *s = NULL;
    if (asprintf(&s, "s3://%s/%s", bucket ? bucket : "", key ? key : "") < 0) return NULL;
    return s;
}

/* ---- requests ---- */

static void request_free(struct s3_request *rq)
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
    kv_free(rq->xh, rq->nxh);
    kv_free(rq->rh, rq->nrh);
    s3_buf_free(&rq->buf);
    free(rq);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct s3_request *rq = ud;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
    rq->loop->stats.bytes_in += n;
    /* an error document is kept whatever the cap for the expected body: a 503 for a 100-byte object must
     * stay a retryable 503, not become "response too large" */
    if ((status < 200 || status >= 300) && rq->buf.cap < ERROR_BODY_MAX) rq->buf.cap = ERROR_BODY_MAX;
    if (rq->on_sink && status >= 200 && status < 300) {
        rq->streamed = true;
        switch (rq->on_sink(ptr, n, rq->source_ud)) {
        case S3_SINK_TAKEN:
            return n;
        case S3_SINK_FULL:
            rq->loop->stats.bytes_in -= n; /* delivered again after the resume */
            return CURL_WRITEFUNC_PAUSE;
        case S3_SINK_ABORT:
            break;
        }
        rq->sink_abort = true;
        return 0;
    }
    if (rq->on_body && status >= 200 && status < 300) {
        rq->streamed = true;
        if (!rq->on_body(ptr, n, rq->body_ud)) {
            rq->sink_abort = true;
            return 0;
        }
        return n;
    }
    enum s3_err e = s3_buf_append(&rq->buf, ptr, n);
    if (e != S3_OK) {
        rq->too_large = true;
        return 0;
    }
    return n;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
    struct s3_request *rq = ud;
    size_t room = size * nitems, left = rq->body_len - rq->body_off;
    size_t n = left < room ? left : room;
    if (rq->body_source && n) {
        n = rq->body_source(buf, n, rq->source_ud);
        if (n == S3_SOURCE_ABORT) return CURL_READFUNC_ABORT;
        if (!n) return CURL_READFUNC_PAUSE;
    } else if (n) {
        memcpy(buf, (const char *)rq->body + rq->body_off, n);
    }
    rq->body_off += n;
    rq->loop->stats.bytes_out += n;
    return n;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
    struct s3_request *rq = ud;
    if (origin != SEEK_SET || offset < 0 || (size_t)offset > rq->body_len) return CURL_SEEKFUNC_CANTSEEK;
    if (rq->body_source && (size_t)offset != rq->body_off) return CURL_SEEKFUNC_CANTSEEK;
    rq->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t header_cb(char *ptr, size_t size, size_t nitems, void *ud)
{
    struct s3_request *rq = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) { /* a new response (after 100-continue, redirects) */
        kv_free(rq->rh, rq->nrh);
        rq->rh = NULL;
        rq->nrh = rq->arh = 0;
        return n;
    }
    const char *colon = memchr(ptr, ':', n);
    if (!colon || colon == ptr) return n;
    if (rq->nrh == rq->arh) {
        size_t na = rq->arh ? rq->arh * 2 : 16;
        if (na > 512) return n; /* ignore absurd header counts */
        struct s3_kv *p = realloc(rq->rh, na * sizeof *p);
        if (!p) return 0;
        rq->rh = p;
        rq->arh = na;
    }
    size_t nl = (size_t)(colon - ptr);
    const char *v = colon + 1, *end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    char *name = strndup(ptr, nl), *value = strndup(v, (size_t)(end - v));
    if (!name || !value) {
        free(name);
        free(value);
        return 0;
    }
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    rq->rh[rq->nrh].name = name;
    rq->rh[rq->nrh].value = value;
    rq->nrh++;
    return n;
}

static bool method_writes(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

static int add_header(struct curl_slist **l, const char *name, const char *value)
{
    char *line = NULL;
    if (asprintf(&line, "%s: %s", name, value) < 0) return -1;
    struct curl_slist *n = curl_slist_append(*l, line);
    free(line);
    if (!n) return -1;
    *l = n;
    return 0;
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

time_t s3_client_time(const struct s3_client *c)
{
    return time(NULL) + (time_t)c->clock->offset;
}

time_t s3_reader_time(const struct s3_reader *r)
{
    return s3_client_time(r->client);
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
        if (add_header(&l, h[i].name, h[i].value) != 0) goto out;
    if (add_header(&l, "Authorization", auth) != 0) goto out;
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

static int easy_setup(struct s3_request *rq)
{
    struct s3_loop *loop = rq->loop;
    CURL *e = loop->npool ? loop->pool[--loop->npool] : curl_easy_init();
    if (!e) return -1;
    rq->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L); /* keys like "a/../b" must reach the server unchanged */
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)rq);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rq);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->errbuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, loop->opts.connect_timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, loop->opts.stall_timeout);
    if (loop->opts.total_timeout > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT, loop->opts.total_timeout);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rq->on_sink || rq->body_source) {
        /* piped part bodies: 8x fewer socket reads, 4x fewer writes than curl's defaults (16 / 64 KiB); such
         * handles are not pooled, so the larger buffers go with the transfer */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)S3_PIPE_RECV_BUFFER);
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)S3_PIPE_SEND_BUFFER);
    }
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (rq->client->cfg.insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (rq->client->cfg.ca_bundle) {
        curl_easy_setopt(e, CURLOPT_CAINFO, rq->client->cfg.ca_bundle);
    }
    const char *m = rq->method;
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "PUT") == 0) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(m, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else if (strcmp(m, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
    if (strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, rq);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, rq);
    }
    return 0;
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
        drain_done(rq->loop);
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
    kv_free(rq->rh, rq->nrh);
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

static void link_live(struct s3_loop *loop, struct s3_request *rq)
{
    rq->next = loop->live;
    if (loop->live) loop->live->prev = rq;
    loop->live = rq;
}

static void unlink_live(struct s3_loop *loop, struct s3_request *rq)
{
    if (rq->prev) rq->prev->next = rq->next;
    else loop->live = rq->next;
    if (rq->next) rq->next->prev = rq->prev;
    rq->prev = rq->next = NULL;
}

static const char *short_curl_reason(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT: return "connection refused";
    case CURLE_COULDNT_RESOLVE_HOST: return "host name not resolved";
    case CURLE_OPERATION_TIMEDOUT: return "timed out (no data)";
    case CURLE_GOT_NOTHING: return "connection closed with no reply";
    case CURLE_RECV_ERROR: return "connection reset while receiving";
    case CURLE_SEND_ERROR: return "connection reset while sending";
    case CURLE_PARTIAL_FILE: return "reply body cut short";
    case CURLE_PEER_FAILED_VERIFICATION: return "TLS certificate not trusted";
    case CURLE_SSL_CACERT_BADFILE: return "the CA bundle cannot be used";
    default: return curl_easy_strerror(c);
    }
}

/* What to do about a TLS verification failure, into out ("" for other failures): which option gives the CA. */
static void tls_advice(const struct s3_client *c, CURLcode code, char *out, size_t n)
{
    out[0] = '\0';
    if (code != CURLE_PEER_FAILED_VERIFICATION && code != CURLE_SSL_CACERT_BADFILE) return;
    if (c->cfg.ca_bundle && code == CURLE_SSL_CACERT_BADFILE)
        snprintf(out, n, ": %s (from %s) is not a PEM file of CA certificates", c->cfg.ca_bundle, c->cfg.ca_source);
    else if (c->cfg.ca_bundle)
        snprintf(out, n, ": no CA in %s (from %s) signed the server's certificate", c->cfg.ca_bundle,
                 c->cfg.ca_source);
    else
        snprintf(out, n, ": give its CA with --source-ca-bundle/--target-ca-bundle FILE, AWS_CA_BUNDLE or the "
                         "profile's ca_bundle (--insecure: tests only)");
}

/* Decides the outcome of a finished attempt: fills resp on final completion, or schedules a retry and
 * returns NULL. */
static struct s3_response *attempt_evaluate(struct s3_request *rq)
{
    struct s3_loop *loop = rq->loop;
    long status = 0;
    if (rq->forced == S3_OK) curl_easy_getinfo(rq->easy, CURLINFO_RESPONSE_CODE, &status);
    struct s3_error_info einfo = {0};
    enum s3_err err = S3_OK;
    enum s3_retry_class cls = S3_RETRY_NO;
    const char *code = NULL;

    if (rq->forced != S3_OK) {
        err = rq->forced;
    } else if (rq->result != CURLE_OK && !(rq->result == CURLE_WRITE_ERROR && (rq->sink_abort || rq->too_large))) {
        err = S3_ERR_TRANSPORT;
        cls = s3_retry_classify(0, NULL, (int)rq->result);
    } else if (rq->too_large) {
        err = S3_ERR_TOO_LARGE;
    } else if (rq->sink_abort) {
        err = S3_ERR_CANCELLED;
    } else if (status < 200 || status >= 300) {
        err = S3_ERR_HTTP;
        if (rq->buf.len && s3_xml_parse_error(rq->buf.data, rq->buf.len, &einfo) == S3_OK) code = einfo.code;
        cls = s3_retry_classify(status, code, 0);
        if (rq->bad_digest_final && code && strcmp(code, "BadDigest") == 0) cls = S3_RETRY_NO;
    } else if (rq->error_in_200 && (!rq->buf.len || s3_xml_is_error(rq->buf.data, rq->buf.len))) {
        /* 200 with an <Error> body (or an empty body where a result document was due) */
        err = S3_ERR_HTTP;
        if (rq->buf.len && s3_xml_parse_error(rq->buf.data, rq->buf.len, &einfo) == S3_OK) code = einfo.code;
        cls = s3_retry_classify(status, code ? code : "InternalError", 0);
    }

    /* the endpoint's concurrency: a 503 (SlowDown, or a HEAD's bodiless 503) or 429 says too many; a reply
     * that completes says the endpoint took it */
    if (cls == S3_RETRY_THROTTLED || status == 503) s3_aimd_throttled(&rq->client->aimd, ev_now(loop->ev));
    else if (err == S3_OK) s3_aimd_success(&rq->client->aimd);
    int max = rq->max_attempts > 0 ? rq->max_attempts : loop->opts.retry.max_attempts;
    bool moved = err == S3_ERR_HTTP && rq->region_moves < 2 && !rq->on_sink && !rq->body_source &&
                 region_moved(rq, status, &einfo);
    if (moved) { /* sent again at once, signed for the bucket's region; not counted as a retry */
        rq->region_moves++;
        rq->attempt--;
        cls = S3_RETRY_YES;
    }
    /* the correction is kept even for a request not sent again here: its caller's rerun signs right */
    bool skewed = err == S3_ERR_HTTP && !moved && clock_corrected(rq, status, &einfo) && rq->skew_fixes < 2 &&
                  !rq->on_sink && !rq->body_source;
    if (skewed) { /* sent again at once, signed with the server's time; not counted as a retry */
        rq->skew_fixes++;
        rq->attempt--;
        cls = S3_RETRY_YES;
    }
    bool at_once = moved || skewed;
    if (s3_log_enabled(S3_LOG_DEBUG)) {
        double t = 0;
        if (rq->forced == S3_OK) curl_easy_getinfo(rq->easy, CURLINFO_TOTAL_TIME, &t);
        struct s3_log_field f[] = {{"method", rq->method, 0}, {"bucket", rq->bucket, 0}, {"status", NULL, (double)status},
                                   {"code", code ? code : "", 0}, {"ms", NULL, round(t * 10000) / 10},
                                   {"attempt", NULL, rq->attempt}};
        s3_log_event(S3_LOG_DEBUG, "request", rq->key, f, sizeof f / sizeof *f, "%s s3://%s/%s -> %ld%s%s (%.1f ms, attempt %d)",
                     rq->method, rq->bucket, rq->key ? rq->key : "", status, code ? " " : "", code ? code : "", t * 1000,
                     rq->attempt);
    }
    if (err != S3_OK && cls != S3_RETRY_NO && (rq->attempt < max || at_once)) {
        double ra = -1;
        for (size_t i = 0; i < rq->nrh; i++)
            if (strcmp(rq->rh[i].name, "retry-after") == 0)
                ra = s3_retry_after_parse(rq->rh[i].value, (double)s3_client_time(rq->client));
        double delay = at_once ? 0 : s3_loop_retry_delay(loop, rq->attempt, cls, ra);
        const char *why = err == S3_ERR_TRANSPORT ? short_curl_reason(rq->result) : "HTTP error ";
        struct s3_log_field f[] = {{"method", rq->method, 0}, {"bucket", rq->bucket, 0}, {"status", NULL, (double)status},
                                   {"code", code ? code : "", 0}, {"delay", NULL, round(delay * 100) / 100},
                                   {"attempt", NULL, rq->attempt + 1}, {"max_attempts", NULL, max}};
        char status_s[24]; /* a bodiless reply (HEAD) has no code: its status then */
        snprintf(status_s, sizeof status_s, "%ld", status);
        const char *what = err == S3_ERR_TRANSPORT ? "" : code ? code : status_s;
        s3_log_event(S3_LOG_INFO, "retry", rq->key, f, sizeof f / sizeof *f,
                     "%s s3://%s/%s: %s%s; retrying in %.2fs (attempt %d of %d)", rq->method, rq->bucket,
                     rq->key ? rq->key : "", why, what, delay, rq->attempt + 1, max);
        s3_error_info_free(&einfo);
        if (rq->streamed && rq->on_reset) rq->on_reset(rq->body_ud);
        rq->state = REQ_QUEUED;
        ev_timer_set(&rq->timer, delay, 0.);
        ev_timer_start(loop->ev, &rq->timer);
        return NULL;
    }

    struct s3_response *resp = calloc(1, sizeof *resp);
    if (!resp) {
        s3_error_info_free(&einfo);
        return NULL; /* caller treats as fatal OOM */
    }
    resp->err = err;
    resp->status = status;
    resp->curl_code = (int)rq->result;
    resp->attempts = rq->attempt;
    resp->s3err = einfo;
    resp->headers = rq->rh;
    resp->nheaders = rq->nrh;
    rq->rh = NULL;
    rq->nrh = rq->arh = 0;
    if (!rq->streamed || err != S3_OK) resp->body = s3_buf_steal(&rq->buf, &resp->body_len);
    const char *k = rq->key ? rq->key : "";
    switch (err) {
    case S3_OK:
        snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: ok", rq->method, rq->bucket, k);
        break;
    case S3_ERR_HTTP:
        snprintf(
            resp->message, sizeof resp->message, "%s s3://%s/%s: HTTP %ld %s%s%s%s%s", rq->method, rq->bucket,
            k, status,
            einfo.code      ? einfo.code
            : status == 404 ? "NotFound"
            : status == 403 ? "Forbidden (wrong access key or secret, no permission, or the wrong region)"
                            : "",
            einfo.message && einfo.message[0] ? ": " : "", einfo.message ? einfo.message : "",
            rq->attempt > 1 ? " (after retries)" : "",
            einfo.code && strcmp(einfo.code, "RequestTimeTooSkewed") == 0
                ? "; this machine's clock is off and the server's time could not be used: set the clock (NTP)"
                : "");
        break;
    case S3_ERR_TRANSPORT:
    {
        char advice[600];
        tls_advice(rq->client, rq->result, advice, sizeof advice);
        snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: %s (%s; %d attempt%s)%s", rq->method,
                 rq->bucket, k, short_curl_reason(rq->result), rq->errbuf[0] ? rq->errbuf : curl_easy_strerror(rq->result),
                 rq->attempt, rq->attempt == 1 ? "" : "s", advice);
        break;
    }
    case S3_ERR_READ_ONLY:
        snprintf(resp->message, sizeof resp->message,
                 "%s s3://%s/%s: refused: the source is opened read-only and this request would write", rq->method,
                 rq->bucket, k);
        break;
    default:
        snprintf(resp->message, sizeof resp->message, "%s s3://%s/%s: %s", rq->method, rq->bucket, k, s3_err_str(err));
        break;
    }
    s3_log_redact(resp->message);
    return resp;
}

static void drain_done(struct s3_loop *loop)
{
    while (loop->done) {
        struct s3_request *rq = loop->done;
        loop->done = rq->done_next;
        rq->done_next = NULL;
        struct s3_response *resp = attempt_evaluate(rq);
        if (!resp && rq->state == REQ_QUEUED) continue; /* retry scheduled */
        rq->state = REQ_COMPLETE;
        unlink_live(loop, rq);
        loop->active--;
        s3_done_cb cb = rq->cb;
        void *ud = rq->ud;
        request_free(rq);
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
    if (easy_setup(rq) != 0) goto error_clean_up;

    const char *m = rq->method;
    if (!strcmp(m, "GET")) loop->stats.get++;
    else if (!strcmp(m, "HEAD")) loop->stats.head++;
    else if (!strcmp(m, "PUT")) loop->stats.put++;
    else if (!strcmp(m, "POST")) loop->stats.post++;
    else if (!strcmp(m, "DELETE")) loop->stats.del++;

    link_live(loop, rq);
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
    request_free(rq);
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
