/* The curl easy handle of one attempt: its options (timeouts, TLS, method, the larger buffers of piped
 * bodies) and the callbacks that move bytes: the reply body into a buffer or a sink, the request body from
 * memory or a source, the reply headers into the request. See s3/client_internal.h. Must not: decide an attempt's
 * outcome (s3/request.c does). */
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s3/client_internal.h"

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
        s3i_kv_free(rq->rh, rq->nrh);
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

int s3i_header_add(struct curl_slist **l, const char *name, const char *value)
{
    char *line = NULL;
    if (asprintf(&line, "%s: %s", name, value) < 0) return -1;
    struct curl_slist *n = curl_slist_append(*l, line);
    free(line);
    if (!n) return -1;
    *l = n;
    return 0;
}
int s3i_easy_setup(struct s3_request *rq)
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

const char *s3i_curl_reason(CURLcode c)
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
void s3i_tls_advice(const struct s3_client *c, CURLcode code, char *out, size_t n)
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
