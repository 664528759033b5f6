/* Internal to the S3 client, shared by its five files and by nothing outside s3/:
 *   s3/loop.c      the libev <-> libcurl multi glue (sockets, timers, finished transfers), the loop's API
 *   s3/client.c    clients and readers of one endpoint (config, clock, adaptive concurrency), responses
 *   s3/request.c   a request's life: signing, attempts, the one retry loop, region and clock corrections
 *   s3/transfer.c  the curl easy handle of an attempt: its options and the body/header callbacks
 *   s3/workers.c   the loop's worker threads (s3_loop_offload)
 * The structures behind the opaque handles of s3/client.h live here. Must not: be included outside s3/. */
#ifndef S3_CLIENT_INTERNAL_H
#define S3_CLIENT_INTERNAL_H

#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include "s3/buf.h"
#include "s3/client.h"

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
    struct s3_workers *workers; /* s3_loop_offload's threads, or NULL (work runs inline) */
};

/* An endpoint's clock as this host should sign for it: the correction learnt from a RequestTimeTooSkewed
 * refusal (clock_corrected), kept for the run; one per endpoint, so a source and a target on one server learn
 * it (and say it) once. */
struct s3_clock {
    char *base;  /* scheme://host[:port] as configured */
    long offset; /* seconds added to this host's clock; 0 until a refusal */
    struct s3_clock *next;
};

/* s3/workers.c: the loop's worker threads (s3_loop_offload). start: 0, or -1 (none started: work runs inline);
 * stop waits for every job and runs its done. */
int s3i_workers_start(struct s3_loop *loop, int n);
void s3i_workers_stop(struct s3_loop *loop);
int s3i_default_workers(void);

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

/* s3/loop.c: the live list (every request not yet completed) */
void s3i_loop_link(struct s3_loop *loop, struct s3_request *rq);
void s3i_loop_unlink(struct s3_loop *loop, struct s3_request *rq);

/* s3/request.c: complete the finished attempts on loop->done (retry or call back), at a safe point */
void s3i_drain_done(struct s3_loop *loop);
void s3i_request_free(struct s3_request *rq);

/* s3/transfer.c */
int s3i_easy_setup(struct s3_request *rq);
int s3i_header_add(struct curl_slist **l, const char *name, const char *value);
const char *s3i_curl_reason(CURLcode c);
void s3i_tls_advice(const struct s3_client *c, CURLcode code, char *out, size_t n);

/* s3/client.c */
void s3i_kv_free(struct s3_kv *kv, size_t n);

#endif
