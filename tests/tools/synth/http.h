/* The synthetic endpoint's HTTP/1.1 server: one libev loop, non-blocking sockets, keep-alive, request bodies
 * streamed through MD5 (and SHA-256 when the request names its payload hash) and kept up to a size, each reply
 * held back by an optional latency (a timer per connection, never a sleep). It knows nothing of S3: the
 * handlers below decide what a request means. */
#ifndef SYNTH_HTTP_H
#define SYNTH_HTTP_H

#include <ev.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/tools/synth/model.h"

#define MAX_HEADERS 64
#define MAX_QUERY 16

struct req {
    char *head; /* a copy of the head, split in place */
    char *method, *rawpath;
    char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
    int nh;
    char *qn[MAX_QUERY], *qv[MAX_QUERY]; /* decoded */
    int nq;
    char *path, *bucket, *key; /* decoded; key "" for a bucket request */
    uint64_t clen, got;
    unsigned char *body; /* the whole body when keep (NUL-terminated), else NULL */
    bool keep;
    EVP_MD_CTX *md5, *sha;
};

struct conn {
    int fd;
    ev_io r, w;
    ev_timer delay;
    struct sbuf in, out;
    size_t out_off;
    bool in_body, waiting, close_after;
    struct req rq;
};

struct http_opts {
    double latency;   /* seconds before each reply */
    size_t store_max; /* bodies up to this size are kept */
    /* the head has arrived: false when a reply was queued instead (the body is then not read) */
    bool (*on_head)(struct conn *c);
    /* the whole request has arrived: queue exactly one reply */
    void (*on_request)(struct conn *c);
};

struct http_stats {
    unsigned long requests, status4, status5;
};
extern struct http_stats http_stats;

/* Listens on HOST:PORT (port 0: any), prints "listening on HOST:PORT" on stdout. 0, or -1 with a message. */
int http_listen(struct ev_loop *loop, const char *spec, const struct http_opts *o);

void http_reply(struct conn *c, int status, const char *extra, const void *body, size_t len, bool head_only);
const char *http_hdr(const struct req *r, const char *name);
const char *http_query(const struct req *r, const char *name);
void http_pct_decode(char *s);
int http_hexval(int ch);
/* An ETag header value without its quotes into out. */
void http_unquote(const char *v, char *out, size_t n);
void http_date(time_t t, char out[40]);

#endif
