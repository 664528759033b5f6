/* The asynchronous S3 client: one libev loop drives one libcurl multi handle; every request is signed
 * (SigV4), retried per s3/retry.h, and completes through a callback. No thread per request and no
 * blocking calls: s3_request_wait() merely runs the same loop until one request is done (setup steps).
 *
 * Read-only by construction: a source is opened with s3_reader_open(), which returns a struct s3_reader —
 * the read operations (list, head, get) take a reader, the write operations take a struct s3_client, and
 * there is no way to obtain a client from a reader. A reader's requests are also refused at the one place
 * every request passes (s3_request_start) unless the method is GET or HEAD. DELETE is only ever sent for
 * AbortMultipartUpload (it carries uploadId); no object or bucket delete exists in this API.
 * Must not: know of the replicator or the manifest (s3/ depends on nothing of ours). */
#ifndef S3_CLIENT_H
#define S3_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "s3/config.h"
#include "s3/error.h"
#include "s3/retry.h"
#include "s3/sigv4.h"
#include "s3/xml.h"

struct ev_loop;
struct s3_loop;
struct s3_client;
struct s3_reader;
struct s3_request;

struct s3_loop_options {
    long max_host_connections; /* per host; default 64 */
    long connect_timeout;      /* seconds; default 10 */
    long stall_timeout;        /* seconds without a byte in either direction → retry; default 60 */
    long total_timeout;        /* seconds for one attempt; 0 = none */
    struct s3_retry_policy retry;
    int workers;               /* threads for work taken off the loop (s3_loop_offload); default: one fewer
                                * than the processors online, 1 to 3; 0 = none (the work runs inline) */
};
void s3_loop_options_default(struct s3_loop_options *o);

/* ev may be NULL for libev's default loop. */
struct s3_loop *s3_loop_new(struct ev_loop *ev, const struct s3_loop_options *opts);
void s3_loop_free(struct s3_loop *loop); /* NULL ok; requests still in flight are cancelled */
struct ev_loop *s3_loop_ev(struct s3_loop *loop);
/* Transfers in flight (started and not yet completed, retries waiting included). */
size_t s3_loop_active(const struct s3_loop *loop);
/* Work taken off the loop's thread (the XML of listing pages): job->work(job) runs on a worker thread, then
 * job->done(job) on the loop's thread, from the loop (never before s3_loop_offload returns), in the order the
 * work finished. work must touch nothing but the job (no logging, no loop, no client). Without workers both run
 * before s3_loop_offload returns. A pending job keeps ev_run going as a transfer does; s3_loop_free waits for
 * the jobs and runs their done. */
struct s3_job {
    void (*work)(struct s3_job *job);
    void (*done)(struct s3_job *job);
    struct s3_job *next; /* the loop's */
};
void s3_loop_offload(struct s3_loop *loop, struct s3_job *job);

/* Counters since creation, by method, for --verbose summaries and tests. */
struct s3_loop_stats {
    uint64_t requests, retries, get, head, put, post, del, bytes_in, bytes_out;
};
void s3_loop_stats(const struct s3_loop *loop, struct s3_loop_stats *out);
/* The loop's retry policy, and the delay before retry number `attempt` under it (full jitter from the loop's
 * generator; retry_after in seconds, negative when none): for callers that run a request again themselves
 * (requests with a flow-controlled body are sent once). */
const struct s3_retry_policy *s3_loop_retry_policy(const struct s3_loop *loop);
double s3_loop_retry_delay(struct s3_loop *loop, int attempt, enum s3_retry_class cls, double retry_after);

/* A read-write client for a target. cfg is copied. NULL on failure (message in err). */
struct s3_client *s3_client_new(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen);
void s3_client_free(struct s3_client *c);
/* The read view of a read-write client (borrowed; lives as long as c). */
struct s3_reader *s3_client_reader(struct s3_client *c);

/* A read-only handle for a source. */
struct s3_reader *s3_reader_open(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen);
/* Closes a reader from s3_reader_open (not one from s3_client_reader). NULL ok. */
void s3_reader_close(struct s3_reader *r);
const struct s3_config *s3_reader_config(const struct s3_reader *r);
struct s3_loop *s3_reader_loop(const struct s3_reader *r);
/* Adaptive concurrency of one endpoint (s3/retry.h, struct s3_aimd): off until a ceiling is set; fed by every
 * final reply and every throttled attempt (503, SlowDown, 429) of requests on this client. */
void s3_reader_adapt(struct s3_reader *r, int ceiling);
/* How many jobs to keep in flight against this endpoint now (INT_MAX when not adaptive). */
int s3_reader_concurrency(const struct s3_reader *r);
const struct s3_aimd *s3_reader_aimd(const struct s3_reader *r);

/* This host's clock as the endpoint sees it, seconds since the epoch: time(NULL) plus the endpoint's
 * correction, learnt from a RequestTimeTooSkewed refusal on any client of that endpoint on this loop (0 until
 * one). What requests are signed with; also for times that other hosts compare through this endpoint's
 * objects (the lease). */
time_t s3_client_time(const struct s3_client *c);
time_t s3_reader_time(const struct s3_reader *r);

struct s3_kv {
    char *name;  /* lowercase */
    char *value;
};

struct s3_response {
    enum s3_err err;        /* S3_OK when the request succeeded (2xx, no <Error> body) */
    long status;            /* last HTTP status, 0 if none */
    int curl_code;          /* last CURLcode */
    char *body;             /* buffered body (NUL-terminated), or NULL; not set when streamed */
    size_t body_len;
    struct s3_error_info s3err; /* parsed S3 error body, fields NULL when none */
    struct s3_kv *headers;  /* response headers of the last attempt */
    size_t nheaders;
    int attempts;
    char message[512];      /* for the user: "GET s3://bucket/key: HTTP 403 AccessDenied: ..." (no secrets) */
};
/* Case-insensitive response header lookup; NULL when absent. */
const char *s3_response_header(const struct s3_response *r, const char *name);
/* Header value with surrounding quotes removed (ETag), malloc'd, or NULL. */
char *s3_response_etag(const struct s3_response *r);
void s3_response_free(struct s3_response *r); /* NULL ok */

/* Streaming sink for a response body (2xx only). Return false to abort the transfer (no retry).
 * reset is called before a retried attempt delivers data again from its start. */
typedef bool (*s3_body_cb)(const void *data, size_t len, void *ud);
typedef void (*s3_reset_cb)(void *ud);

/* Flow-controlled body ends, for piping one request's response body into another's request body with a
 * bounded buffer in between (replicator/copy.c). A sink takes all len bytes (S3_SINK_TAKEN) or none
 * (S3_SINK_FULL: the transfer pauses and the same bytes come again after s3_request_resume), or aborts. A
 * source copies up to room bytes into buf and returns how many; 0 while none are ready pauses the request
 * until s3_request_resume. Requests with either are sent once: their bytes cannot be replayed, so every
 * failure is delivered and the caller decides whether to run the pair again. */
enum s3_sink { S3_SINK_TAKEN, S3_SINK_FULL, S3_SINK_ABORT };
#define S3_SOURCE_ABORT ((size_t)-1) /* a source's answer that ends the request (a read error) */
typedef enum s3_sink (*s3_sink_cb)(const void *data, size_t len, void *ud);
typedef size_t (*s3_source_cb)(char *buf, size_t room, void *ud);

/* Completion: the callback owns resp and must s3_response_free it. Called from the loop, never from
 * inside s3_request_start. */
typedef void (*s3_done_cb)(struct s3_response *resp, void *ud);

struct s3_request_spec {
    const char *method;      /* GET HEAD PUT POST DELETE */
    const char *bucket;
    const char *key;         /* NULL for bucket-level requests */
    const struct s3_query_param *query;
    size_t nquery;
    const struct s3_header *headers; /* extra headers to send and sign (copied) */
    size_t nheaders;
    const void *body;        /* request body; NOT copied: keep it alive until the callback */
    size_t body_len;
    bool unsigned_payload;   /* sign with UNSIGNED-PAYLOAD (large data bodies carry Content-MD5 instead) */
    bool error_in_200;       /* a 200 whose body is an <Error> document is a failure (copy, complete) */
    size_t max_body;         /* cap on the buffered response body; 0 = 1 MiB */
    s3_body_cb on_body;      /* stream the 2xx response body here instead of buffering */
    s3_reset_cb on_reset;
    void *body_ud;
    int max_attempts;        /* 0 = the loop's policy */
    bool bad_digest_final;   /* a BadDigest reply is not resent: the body itself is wrong (see s3_put_object) */
    s3_sink_cb on_sink;      /* 2xx response body, flow-controlled (instead of on_body or buffering) */
    s3_source_cb body_source; /* request body of body_len bytes, flow-controlled (instead of body); signed
                               * UNSIGNED-PAYLOAD */
    void *source_ud;         /* for on_sink and body_source */
};

/* Starts a request on a client (or reader, via s3_reader_request_start). NULL only on allocation failure;
 * every other failure (read-only refusal included) is delivered through cb. */
struct s3_request *s3_request_start(struct s3_client *c, const struct s3_request_spec *spec, s3_done_cb cb,
                                    void *ud);
struct s3_request *s3_reader_request_start(struct s3_reader *r, const struct s3_request_spec *spec,
                                           s3_done_cb cb, void *ud);
/* Lets a request paused by its sink or source go on (deferred to the loop; a no-op once it finished). */
void s3_request_resume(struct s3_request *req);
/* Cancels a request still in flight; its callback is called with S3_ERR_CANCELLED. */
void s3_request_cancel(struct s3_request *req);
/* Cancels every request on the loop (shutdown). */
void s3_loop_cancel_all(struct s3_loop *loop);

/* Runs the loop until this spec's request completes; returns the response (caller frees). For setup steps
 * outside the copy path. */
struct s3_response *s3_request_wait(struct s3_client *c, const struct s3_request_spec *spec);
struct s3_response *s3_reader_request_wait(struct s3_reader *r, const struct s3_request_spec *spec);

/* "s3://bucket/key" for messages, malloc'd. */
char *s3_object_url(const char *bucket, const char *key);

#endif
