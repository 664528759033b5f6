/* faultproxy: a fault-injecting HTTP/1.1 reverse proxy for tests. It sits between an S3 client and an S3
 * server and, per request (by --rule or by --rate), answers 503 SlowDown or 500, resets the connection,
 * stalls, cuts a body short, serves malformed listings, or turns a CopyObject / CompleteMultipartUpload
 * result into "200 OK" with an <Error> body, or (only when asked for) changes one byte of an object's body.
 * Forwarded requests are relayed byte for byte, so SigV4 signatures stay valid, except in provider mode
 * (--kms-bucket: tests/tools/proxy/aws.h), where RGW is made to answer as Amazon S3 does and what is rewritten is
 * signed again. One libev loop, non-blocking sockets, two fixed buffers per connection with back-pressure. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/proxy/aws.h"

#define BUF_CAP (64 * 1024)    /* per direction and connection; also bounds a message head */
#define HEAD_MAX (BUF_CAP / 2) /* larger request/response heads are refused */
#define MAX_RULES 64
#define OVERSIZE_BYTES (17u * 1024 * 1024)
#define UNKNOWN_LEN_CUT 1024  /* body bytes relayed before a cut when the length is not known */
#define LINGER_SECONDS 2.0    /* after our FIN, how long we drain a client before closing */
#define UPSTREAM_IDLE_MAX 5.0 /* reconnect rather than reuse an upstream connection idle this long */
#define PUMP_ROUNDS 64        /* I/O rounds per event before yielding to other connections */
#define HEAD_GROWTH 1024      /* provider mode: room kept free in the response buffer for headers it adds */

enum fault {
    F_NONE,
    F_SLOWDOWN,       /* 503 SlowDown with Retry-After */
    F_INTERNAL,       /* 500 InternalError */
    F_RESET_BEFORE,   /* RST instead of any reply */
    F_RESET_REQUEST,  /* read part of the request body, then RST */
    F_RESET_RESPONSE, /* forward, relay the head and part of the body, then RST */
    F_STALL,          /* read the request, say nothing for --stall-seconds, close */
    F_SHORT_BODY,     /* forward, relay the head and part of the body, then FIN */
    F_BAD_XML,        /* listing replaced by 200 with malformed XML */
    F_ERROR_200,      /* copy/complete forwarded, client gets 200 with an <Error> body */
    F_CORRUPT_BODY,   /* one byte in the middle of an object's body changed: a GET's reply or a PUT's request (opt-in) */
    F_ARCHIVED,       /* 403 InvalidObjectState, as Amazon S3 answers a GET or copy of a GLACIER object (opt-in) */
    F_WRONG_REGION,   /* --bucket-region: a request signed for another region gets S3's 400 AuthorizationHeaderMalformed */
    F_NKINDS
};

static const char *const fault_names[F_NKINDS] = {
    "none",           "slowdown", "internal",   "reset-before", "reset-request",
    "reset-response", "stall",    "short-body", "bad-xml",      "error-200",
    "corrupt-body",   "archived",   "wrong-region",
};
/* Kinds "all" (and the default) leave out: a changed body is not a transport accident a client can notice
 * by itself, so only the tests that check integrity ask for it. */
#define OPT_IN_KIND(k) ((k) == F_CORRUPT_BODY || (k) == F_ARCHIVED || (k) == F_WRONG_REGION)

enum badxml { BX_ANY, BX_TRUNCATED, BX_GARBAGE, BX_OVERSIZED };

struct rule {
    enum fault kind;
    enum badxml variant;
    const char *needle; /* matched against "METHOD URI" */
};

static struct {
    const char *listen, *upstream, *log_path, *count_path, *only;
    const char *bucket_region; /* --bucket-region: requests not signed for it are refused as S3 does */
    double rate, stall_seconds;
    uint64_t seed;
    bool enabled[F_NKINDS];
    struct rule rules[MAX_RULES];
    int nrules;
} opt;

static struct ev_loop *g_loop;
static struct sockaddr_storage up_addr;
static socklen_t up_addrlen;
static FILE *log_file;
static uint64_t rng_state;
static unsigned long request_seq;

/* Counters for --count-file. Methods are validated as [A-Z]+ so they are JSON-safe. */
#define MAX_METHODS 32
static struct {
    char name[16];
    unsigned long n;
} method_count[MAX_METHODS];
static int n_methods;
static unsigned long fault_count[F_NKINDS], total_requests;

/* ---- PRNG (splitmix64): deterministic for a given --seed and request order ---- */

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_double(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- buffers: [off,fwd) is ready to send to the other side, [fwd,len) is not yet parsed ---- */

struct buf {
    char *d;
    size_t off, fwd, len;
};

static void buf_make_room(struct buf *b)
{
    if (b->off > 0 && BUF_CAP - b->len < BUF_CAP / 4) {
        memmove(b->d, b->d + b->off, b->len - b->off);
        b->fwd -= b->off;
        b->len -= b->off;
        b->off = 0;
    }
}

static bool buf_has_room(const struct buf *b)
{
    return b->len < BUF_CAP || b->off > 0;
}

/* Remove n unparsed bytes at fwd (they are consumed without being forwarded). */
static void buf_drop(struct buf *b, size_t n)
{
    if (b->off == b->fwd) {
        b->off += n;
        b->fwd += n;
    } else {
        memmove(b->d + b->fwd, b->d + b->fwd + n, b->len - b->fwd - n);
        b->len -= n;
    }
    if (b->off == b->len) b->off = b->fwd = b->len = 0;
}

static void buf_clear(struct buf *b)
{
    b->off = b->fwd = b->len = 0;
}

/* ---- message body framing: scans bytes to find where a body ends, never modifies them ---- */

enum frame_type { FR_NONE, FR_LEN, FR_CHUNKED, FR_EOF };
enum chunk_state {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_LINE,
    CH_END_LF
};

struct framing {
    enum frame_type type;
    uint64_t left; /* FR_LEN: bytes left; FR_CHUNKED: chunk size being read / data left in chunk */
    enum chunk_state cs;
    bool digits, done, bad;
};

static void framing_init(struct framing *f, enum frame_type type, uint64_t len)
{
    memset(f, 0, sizeof *f);
    f->type = type;
    f->left = len;
    f->done = type == FR_NONE || (type == FR_LEN && len == 0);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static void chunk_size_done(struct framing *f)
{
    if (!f->digits)
        f->bad = true;
    else
        f->cs = f->left ? CH_DATA : CH_TRAILER;
}

/* Consume up to n bytes of body; returns how many belong to the body. Sets done at its end, bad on garbage.
 */
static size_t framing_scan(struct framing *f, const char *p, size_t n)
{
    size_t i = 0;
    if (f->done || f->bad) return 0;
    switch (f->type) {
    case FR_NONE:
        f->done = true;
        return 0;
    case FR_EOF:
        return n;
    case FR_LEN:
        i = n < f->left ? n : (size_t)f->left;
        f->left -= i;
        f->done = f->left == 0;
        return i;
    case FR_CHUNKED:
        break;
    }
    while (i < n && !f->done && !f->bad) {
        char ch = p[i];
        switch (f->cs) {
        case CH_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                if (f->left > (UINT64_MAX >> 4)) {
                    f->bad = true;
                    return i;
                }
                f->left = f->left * 16 + (uint64_t)h;
                f->digits = true;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                f->cs = CH_EXT;
            } else if (ch == '\r') {
                f->cs = CH_SIZE_LF;
            } else if (ch == '\n') {
                chunk_size_done(f);
            } else {
                f->bad = true;
                return i;
            }
            i++;
            break;
        }
        case CH_EXT:
            if (ch == '\n') chunk_size_done(f);
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n') {
                f->bad = true;
                return i;
            }
            chunk_size_done(f);
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i < f->left ? n - i : (size_t)f->left;
            i += take;
            f->left -= take;
            if (!f->left) f->cs = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            if (ch == '\n') {
                f->cs = CH_SIZE;
                f->left = 0;
                f->digits = false;
            } else if (ch == '\r' && f->cs == CH_DATA_CR) {
                f->cs = CH_DATA_LF;
            } else {
                f->bad = true;
                return i;
            }
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\n')
                f->done = true;
            else
                f->cs = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n') f->cs = CH_TRAILER;
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n') {
                f->bad = true;
                return i;
            }
            f->done = true;
            i++;
            break;
        }
    }
    return i;
}

/* ---- HTTP head helpers ---- */

struct head_info {
    bool has_len, chunked, expect100, conn_close, conn_keepalive, copy_source, bad;
    uint64_t len;
    char region[64]; /* the signing region in Authorization's credential scope, or "" */
};

static bool ci_contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(s + i, needle, k) == 0) return true;
    return false;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Parse the header lines in p[0..n) (after the start line, up to and including the blank line). */
static void parse_headers(const char *p, size_t n, struct head_info *h)
{
    memset(h, 0, sizeof *h);
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        size_t ll = (size_t)(nl - p);
        if (ll && p[ll - 1] == '\r') ll--;
        const char *colon = ll ? memchr(p, ':', ll) : NULL;
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            const char *v = colon + 1, *ve = p + ll;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t vlen = (size_t)(ve - v);
            if (name_is(p, nlen, "content-length")) {
                uint64_t val = 0;
                bool ok = vlen > 0 && vlen <= 18;
                for (size_t i = 0; ok && i < vlen; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        ok = false;
                    else
                        val = val * 10 + (uint64_t)(v[i] - '0');
                }
                if (!ok || (h->has_len && h->len != val)) h->bad = true;
                h->has_len = true;
                h->len = val;
            } else if (name_is(p, nlen, "transfer-encoding")) {
                if (ci_contains(v, vlen, "chunked")) h->chunked = true;
            } else if (name_is(p, nlen, "expect")) {
                if (ci_contains(v, vlen, "100-continue")) h->expect100 = true;
            } else if (name_is(p, nlen, "connection")) {
                if (ci_contains(v, vlen, "close")) h->conn_close = true;
                if (ci_contains(v, vlen, "keep-alive")) h->conn_keepalive = true;
            } else if (name_is(p, nlen, "x-amz-copy-source")) {
                h->copy_source = true;
            } else if (name_is(p, nlen, "authorization")) {
                /* "AWS4-HMAC-SHA256 Credential=AK/20261201/REGION/s3/aws4_request, ..." */
                const char *cr = memmem(v, vlen, "Credential=", 11);
                const char *s1 = cr ? memchr(cr, '/', (size_t)(ve - cr)) : NULL;
                const char *s2 = s1 ? memchr(s1 + 1, '/', (size_t)(ve - s1 - 1)) : NULL;
                const char *s3 = s2 ? memchr(s2 + 1, '/', (size_t)(ve - s2 - 1)) : NULL;
                if (s3 && (size_t)(s3 - s2 - 1) < sizeof h->region)
                    snprintf(h->region, sizeof h->region, "%.*s", (int)(s3 - s2 - 1), s2 + 1);
            }
        }
        p = nl + 1;
    }
}

/* ---- connections ---- */

enum phase {
    PH_ACTIVE, /* proxying exchanges */
    PH_STALL,  /* stall fault: client input discarded, nothing sent until the timer closes us */
    PH_LINGER, /* our FIN is sent: client input discarded until its EOF or the timer */
};

/* Request side of an exchange (before its head is parsed there is no exchange). */
enum rq_state {
    RQ_BODY, /* body bytes still to come from the client */
    RQ_DONE, /* request fully read; the client is not read again until the exchange ends */
};
enum rq_disp {
    RQ_FORWARD, /* request goes to the upstream */
    RQ_DRAIN,   /* answered locally: body read and thrown away */
    RQ_RESET,   /* reset-request: body read and thrown away up to rq_cut, then RST */
};
/* Response side: from the upstream, or RS_DONE at once when the reply is local. */
enum rs_state {
    RS_HEAD, /* waiting for the (final) response head; 1xx heads are relayed on the way */
    RS_BODY, /* body bytes still to come from the upstream */
    RS_CUT,  /* a cut fault reached its cut: RST or FIN once the relayed part is flushed */
    RS_DONE, /* upstream reply complete (or none expected) */
};
enum rs_disp {
    RS_RELAY,   /* relay as is */
    RS_CAPTURE, /* provider mode: collect the whole body, rewrite it, then send head and body */
    RS_DISCARD, /* error-200: read and drop, then answer 200 with an <Error> */
    RS_CUT_RST, /* reset-response */
    RS_CUT_FIN, /* short-body */
};

/* A locally generated reply, produced into the response buffer as room allows. */
struct gen {
    bool active, interim; /* interim: a 100 Continue, not the final reply */
    bool close;
    int status;
    char *head;
    size_t head_len;
    char *body;        /* NULL with body_len > 0: the oversized listing, generated on the fly */
    uint64_t body_len; /* bytes actually sent after the head (0 for HEAD requests) */
    uint64_t pos;      /* over head then body */
};

/* One request/response exchange. */
struct exch {
    bool in_flight; /* counted in requests_in_flight */
    unsigned at_start; /* requests in flight (this one included) when its head arrived */
    bool active, logged, head_sent, close_after, is_head, has_body, expect100, copy_source, wrong_region;
    char *line; /* "METHOD URI", owned */
    char method[16];
    const char *uri; /* inside line */
    enum fault fault;
    enum badxml variant;
    int status;    /* final status sent to the client, 0 if none */
    int up_status; /* error-200: the status the upstream really answered */
    enum rq_state rq_st;
    enum rq_disp rq_disp;
    struct framing rqf;
    uint64_t rq_seen, rq_cut;
    enum rs_state rs_st;
    enum rs_disp rs_disp;
    struct framing rsf;
    uint64_t rs_seen, rs_cut;
    bool local_queued; /* gen prepared, starts once the request is read (and any upstream reply discarded) */
    struct gen gen;
    char *cap_head, *cap; /* RS_CAPTURE: the rewritten head (without framing headers) and the body so far */
    size_t cap_head_len, cap_len, cap_size;
};

struct conn {
    int cfd, ufd;
    ev_io cr, cw, ur, uw;
    ev_timer tm;
    enum phase phase;
    bool u_connecting, dead;
    ev_tstamp u_last;
    struct buf rq, rs;
    struct exch x;
    struct conn *prev, *next; /* all connections, so that exit can free them */
};

static struct conn *conns;

static void conn_pump(struct conn *c);

static bool would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static void count_method(const char *m)
{
    for (int i = 0; i < n_methods; i++) {
        if (strcmp(method_count[i].name, m) == 0) {
            method_count[i].n++;
            return;
        }
    }
    if (n_methods < MAX_METHODS) {
        snprintf(method_count[n_methods].name, sizeof method_count[n_methods].name, "%s", m);
        method_count[n_methods++].n = 1;
    }
}

/* Log and count the exchange once. */
static void exch_finish(struct conn *c, bool aborted)
{
    struct exch *x = &c->x;
    if (!x->active || x->logged) return;
    x->logged = true;
    total_requests++;
    count_method(x->method);
    fault_count[x->fault]++;
    if (log_file) {
        char st[16] = "-";
        if (x->status) snprintf(st, sizeof st, "%d", x->status);
        fprintf(log_file, "%s -> %s", x->line, st);
        if (x->fault != F_NONE) fprintf(log_file, " [fault=%s]", fault_names[x->fault]);
        if (x->up_status) fprintf(log_file, " [upstream=%d]", x->up_status);
        if (aborted) fprintf(log_file, " [aborted]");
        if (x->at_start) fprintf(log_file, " [in-flight=%u]", x->at_start);
        fputc('\n', log_file);
        fflush(log_file);
    }
}

static unsigned long requests_in_flight, requests_in_flight_max;

static void exch_reset(struct exch *x)
{
    if (x->in_flight) requests_in_flight--;
    free(x->line);
    free(x->gen.head);
    free(x->gen.body);
    free(x->cap_head);
    free(x->cap);
    memset(x, 0, sizeof *x);
}

static void upstream_close(struct conn *c)
{
    if (c->ufd < 0) return;
    ev_io_stop(g_loop, &c->ur);
    ev_io_stop(g_loop, &c->uw);
    close(c->ufd);
    c->ufd = -1;
    c->u_connecting = false;
}

static void conn_free(struct conn *c)
{
    exch_finish(c, true);
    ev_io_stop(g_loop, &c->cr);
    ev_io_stop(g_loop, &c->cw);
    ev_timer_stop(g_loop, &c->tm);
    upstream_close(c);
    if (c->cfd >= 0) close(c->cfd);
    exch_reset(&c->x);
    free(c->rq.d);
    free(c->rs.d);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
}

/* Abort with a TCP RST (SO_LINGER 0): the client sees "connection reset by peer". */
static void conn_reset(struct conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    exch_finish(c, false);
    setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    c->dead = true;
}

/* Send FIN and drain whatever the client still sends, so unread input does not turn our close into a RST. */
static void conn_linger(struct conn *c)
{
    upstream_close(c);
    buf_clear(&c->rq);
    buf_clear(&c->rs);
    shutdown(c->cfd, SHUT_WR);
    c->phase = PH_LINGER;
    ev_timer_stop(g_loop, &c->tm);
    ev_timer_set(&c->tm, LINGER_SECONDS, 0.);
    ev_timer_start(g_loop, &c->tm);
}

static void xml_escape_append(char *out, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 7 < cap; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        default:
            out[(*pos)++] = *s;
            continue;
        }
        size_t k = strlen(rep);
        memcpy(out + *pos, rep, k);
        *pos += k;
    }
    out[*pos] = '\0';
}

/* An S3 error document; owned by the caller. */
static char *error_xml(const char *code, const char *message, const char *resource, size_t *len)
{
    size_t cap = 512 + 6 * strlen(resource);
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t pos = (size_t)snprintf(out, cap,
                                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
                                  "<Message>%s</Message><Resource>",
                                  code, message);
    xml_escape_append(out, cap, &pos, resource);
    pos += (size_t)snprintf(out + pos, cap - pos,
                            "</Resource><RequestId>faultproxy-%lu</RequestId>"
                            "<HostId>faultproxy</HostId></Error>\n",
                            request_seq);
    *len = pos;
    return out;
}

/* Prepare a local final reply (consumes body); conn_process starts it once the request has been read. */
static void reply_local(struct conn *c, int status, const char *reason, const char *extra, char *body,
                        uint64_t body_len, bool close_conn)
{
    struct exch *x = &c->x;
    struct gen *g = &x->gen;
    char date[64];
    time_t now = time(NULL);
    struct tm tmv;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tmv));
    free(g->head);
    free(g->body);
    memset(g, 0, sizeof *g);
    size_t cap = 512 + (extra ? strlen(extra) : 0);
    g->head = malloc(cap);
    if (!g->head) {
        free(body);
        c->dead = true;
        return;
    }
    int n =
        snprintf(g->head, cap,
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: faultproxy\r\nx-amz-request-id: faultproxy-%lu\r\n"
                 "Content-Type: application/xml\r\nContent-Length: %" PRIu64 "\r\n%s%s\r\n",
                 status, reason, date, request_seq, body_len, extra ? extra : "",
                 close_conn ? "Connection: close\r\n" : "");
    g->head_len = (size_t)n;
    g->body = body;
    g->body_len = x->is_head ? 0 : body_len;
    g->status = status;
    g->close = close_conn;
    x->local_queued = true;
    x->rs_st = RS_DONE;
}

static void reply_error(struct conn *c, int status, const char *reason, const char *extra, const char *code,
                        const char *message, bool close_conn)
{
    size_t len = 0;
    char *body = error_xml(code, message, c->x.uri ? c->x.uri : "/", &len);
    if (!body) {
        c->dead = true;
        return;
    }
    reply_local(c, status, reason, extra, body, len, close_conn);
}

static const char oversize_prefix[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
                                      "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>";

static void reply_bad_xml(struct conn *c, bool close_conn)
{
    struct exch *x = &c->x;
    enum badxml v = x->variant;
    bool versions = strstr(x->uri, "versions") != NULL;
    const char *root = versions ? "ListVersionsResult" : "ListBucketResult";
    const char *item = versions ? "Version" : "Contents";
    char *body = NULL;
    uint64_t len = 0;
    if (v == BX_ANY) v = (enum badxml)(1 + rng_next() % 3);
    x->variant = v;
    if (v == BX_OVERSIZED) {
        len = OVERSIZE_BYTES; /* body stays NULL: generated in gen_fill */
    } else if (v == BX_GARBAGE) {
        static const char garbage[] =
            "\x00\x01\xfe\xff<<?xml ?? <ListBucketResult>>\x80\x81 &&amp;; </Contents>"
            "<Key>\xc3\x28</Name>\n<<<]]>";
        body = malloc(sizeof garbage);
        if (body) memcpy(body, garbage, sizeof garbage - 1);
        len = sizeof garbage - 1;
    } else {
        body = malloc(1024);
        if (body)
            len = (uint64_t)snprintf(
                body, 1024,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s "
                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/"
                "\"><Name>faultproxy</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false"
                "</IsTruncated><%s><Key>faultproxy-truncated/a</Key><LastModified>2024-01-01T00:00:00.000Z"
                "</LastModified><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
                "<StorageClass>STANDARD</StorageClass></%s><%s><Key>faultproxy-trunc",
                root, item, item, item);
    }
    if (!body && v != BX_OVERSIZED) {
        c->dead = true;
        return;
    }
    reply_local(c, 200, "OK", NULL, body, len, close_conn);
}

/* The reply for a fault that is answered without the upstream (slowdown, internal, bad-xml). */
static void reply_fault(struct conn *c, bool close_conn)
{
    switch (c->x.fault) {
    case F_SLOWDOWN:
        reply_error(c, 503, "Slow Down", "Retry-After: 1\r\n", "SlowDown", "Please reduce your request rate.",
                    close_conn);
        break;
    case F_INTERNAL:
        reply_error(c, 500, "Internal Server Error", NULL, "InternalError",
                    "We encountered an internal error. Please try again.", close_conn);
        break;
    case F_BAD_XML:
        reply_bad_xml(c, close_conn);
        break;
    case F_ARCHIVED:
        reply_error(c, 403, "Forbidden", NULL, "InvalidObjectState",
                    "The operation is not valid for the object's storage class", close_conn);
        break;
    case F_WRONG_REGION: {
        const char *want = opt.bucket_region ? opt.bucket_region : "eu-west-1";
        char extra[128], msg[200];
        snprintf(extra, sizeof extra, "x-amz-bucket-region: %s\r\n", want);
        snprintf(msg, sizeof msg, "The authorization header is malformed; the region is wrong; expecting '%s'</Message>"
                 "<Region>%s", want, want);
        reply_error(c, 400, "Bad Request", extra, "AuthorizationHeaderMalformed", msg, close_conn);
        break;
    }
    default:
        break;
    }
}

/* Copy as much of the local reply into the response buffer as fits. */
static bool gen_fill(struct conn *c)
{
    struct exch *x = &c->x;
    struct gen *g = &x->gen;
    struct buf *b = &c->rs;
    bool progress = false;
    b->len = b->fwd; /* nothing unparsed from the upstream may sit behind a local reply */
    if (b->off == b->len) buf_clear(b);
    buf_make_room(b);
    uint64_t total = g->head_len + g->body_len;
    while (g->pos < total && b->len < BUF_CAP) {
        size_t room = BUF_CAP - b->len, n;
        char *dst = b->d + b->len;
        if (g->pos < g->head_len) {
            n = g->head_len - (size_t)g->pos < room ? g->head_len - (size_t)g->pos : room;
            memcpy(dst, g->head + g->pos, n);
        } else {
            uint64_t bpos = g->pos - g->head_len, left = g->body_len - bpos;
            n = left < room ? (size_t)left : room;
            if (g->body) {
                memcpy(dst, g->body + bpos, n);
            } else {
                for (size_t i = 0; i < n; i++) {
                    uint64_t k = bpos + i;
                    dst[i] = k < sizeof oversize_prefix - 1 ? oversize_prefix[k] : (char)('a' + k % 26);
                }
            }
        }
        g->pos += n;
        b->len += n;
        b->fwd = b->len;
        progress = true;
    }
    if (g->pos == total) {
        g->active = false;
        if (!g->interim) {
            x->status = g->status;
            x->head_sent = true;
            if (g->close) x->close_after = true;
        }
        free(g->head);
        free(g->body);
        g->head = g->body = NULL;
        progress = true;
    }
    return progress;
}

static void gen_continue100(struct conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct gen *g = &c->x.gen;
    memset(g, 0, sizeof *g);
    g->head = strdup(cont);
    if (!g->head) {
        c->dead = true;
        return;
    }
    g->head_len = sizeof cont - 1;
    g->interim = true;
    g->active = true;
}

/* ---- fault decision ---- */

static bool is_listing(const char *uri)
{
    if (strstr(uri, "list-type=2")) return true;
    for (const char *p = uri; (p = strstr(p, "versions")) != NULL; p++) {
        char before = p == uri ? '\0' : p[-1], after = p[8];
        if ((before == '?' || before == '&') && (after == '\0' || after == '&' || after == '=')) return true;
    }
    return false;
}

static bool fault_applies(enum fault f, const struct exch *x)
{
    switch (f) {
    case F_RESET_REQUEST:
        return x->has_body;
    case F_SHORT_BODY:
        return strcmp(x->method, "GET") == 0 || strcmp(x->method, "POST") == 0;
    case F_BAD_XML:
        return strcmp(x->method, "GET") == 0 && is_listing(x->uri);
    case F_CORRUPT_BODY:
        return (strcmp(x->method, "GET") == 0 && !is_listing(x->uri) && strchr(x->uri + 1, '/') != NULL) ||
               (strcmp(x->method, "PUT") == 0 && x->has_body && !x->copy_source);
    case F_ERROR_200:
        return (strcmp(x->method, "PUT") == 0 && x->copy_source) ||
               (strcmp(x->method, "POST") == 0 && strstr(x->uri, "uploadId=") != NULL);
    default:
        return f != F_NONE;
    }
}

/* Rules first (the first whose substring occurs in "METHOD URI" decides), then --rate over the enabled kinds
 * that apply to this request, so that the rate stays close to the requested one. */
static enum fault decide(struct exch *x)
{
    for (int i = 0; i < opt.nrules; i++) {
        const struct rule *r = &opt.rules[i];
        if (strstr(x->line, r->needle)) {
            x->variant = r->variant;
            return fault_applies(r->kind, x) ? r->kind : F_NONE;
        }
    }
    if (opt.only && !strstr(x->line, opt.only)) return F_NONE;
    if (opt.rate <= 0 || rng_double() >= opt.rate) return F_NONE;
    enum fault cand[F_NKINDS];
    int n = 0;
    for (int k = 1; k < F_NKINDS; k++)
        if (opt.enabled[k] && fault_applies((enum fault)k, x)) cand[n++] = (enum fault)k;
    return n ? cand[rng_next() % (uint64_t)n] : F_NONE;
}

/* ---- upstream ---- */

static bool upstream_open(struct conn *c)
{
    if (c->ufd >= 0 && !c->u_connecting && ev_now(g_loop) - c->u_last > UPSTREAM_IDLE_MAX) upstream_close(c);
    if (c->ufd >= 0) return true;
    int fd = socket(up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&up_addr, up_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return false;
        }
        c->u_connecting = true;
    }
    c->ufd = fd;
    c->u_last = ev_now(g_loop);
    ev_io_set(&c->ur, fd, EV_READ);
    ev_io_set(&c->uw, fd, EV_WRITE);
    return true;
}

/* The upstream connection is gone (or could not be made). Decide what the client sees. */
static void upstream_lost(struct conn *c, const char *why, int err)
{
    struct exch *x = &c->x;
    upstream_close(c);
    if (!x->active || x->rq_disp != RQ_FORWARD) return; /* idle or answered locally: nothing lost */
    if (x->rs_st == RS_HEAD || x->rs_st == RS_BODY)
        fprintf(stderr, "faultproxy: %s: upstream %s%s%s\n", x->line, why, err ? ": " : "",
                err ? strerror(err) : "");
    if ((x->rs_st == RS_HEAD || x->rs_st == RS_BODY) && !x->head_sent) {
        /* nothing of the final reply reached the client yet: tell it, and close */
        buf_clear(&c->rq);
        x->rq_st = RQ_DONE;
        x->local_queued = false;
        reply_error(c, 502, "Bad Gateway", NULL, "BadGateway", "faultproxy: upstream connection failed",
                    true);
    } else if (x->rs_st == RS_HEAD || x->rs_st == RS_BODY) {
        c->dead = true; /* mid-body: the client sees a truncated reply */
    } else if (x->rs_st == RS_DONE && x->rq_st != RQ_DONE) {
        /* replied early (e.g. an error before the whole body was sent): drain the rest, then close */
        c->rq.off = c->rq.fwd;
        if (c->rq.off == c->rq.len) buf_clear(&c->rq);
        x->rq_disp = RQ_DRAIN;
        x->close_after = true;
    }
}

static bool response_expected(const struct conn *c)
{
    const struct exch *x = &c->x;
    return x->active && x->rq_disp == RQ_FORWARD && (x->rs_st == RS_HEAD || x->rs_st == RS_BODY);
}

static bool upstream_io(struct conn *c)
{
    bool progress = false;
    if (c->ufd < 0 || c->u_connecting) return false;
    struct buf *q = &c->rq;
    while (q->fwd > q->off) {
        ssize_t n = send(c->ufd, q->d + q->off, q->fwd - q->off, MSG_NOSIGNAL);
        if (n > 0) {
            q->off += (size_t)n;
            if (q->off == q->len) buf_clear(q);
            progress = true;
        } else {
            if (n < 0 && would_block()) break;
            upstream_lost(c, "send failed", errno);
            return true;
        }
    }
    if (response_expected(c)) {
        struct buf *b = &c->rs;
        size_t cap = aws_enabled() ? BUF_CAP - HEAD_GROWTH : BUF_CAP;
        buf_make_room(b);
        if (b->len >= cap) return progress;
        ssize_t n = recv(c->ufd, b->d + b->len, cap - b->len, 0);
        if (n > 0) {
            b->len += (size_t)n;
            return true;
        }
        if (n < 0 && would_block()) return progress;
        if (n == 0 && c->x.rs_st == RS_BODY && c->x.rsf.type == FR_EOF) {
            c->x.rsf.done = true; /* close-delimited body complete */
            c->x.close_after = true;
            upstream_close(c);
            return true;
        }
        upstream_lost(c, n ? "receive failed" : "closed the connection", n ? errno : 0);
        return true;
    }
    /* Idle: anything readable is the server closing (or junk); either way the connection is done. */
    char scratch[512];
    ssize_t n = recv(c->ufd, scratch, sizeof scratch, 0);
    if (n < 0 && would_block()) return progress;
    upstream_lost(c,
                  n > 0 ? "sent data out of turn"
                  : n   ? "receive failed"
                        : "closed the connection",
                  n < 0 ? errno : 0);
    return true;
}

/* ---- request and response parsing ---- */

static void bad_request(struct conn *c, int status, const char *reason)
{
    struct exch *x = &c->x;
    exch_reset(x);
    x->active = true;
    x->line = strdup("- -");
    if (!x->line) {
        c->dead = true;
        return;
    }
    x->uri = x->line + 2;
    strcpy(x->method, "-");
    x->rq_st = RQ_DONE;
    x->rq_disp = RQ_DRAIN;
    buf_clear(&c->rq);
    reply_error(c, status, reason, NULL, "InvalidRequest", "faultproxy could not parse the request", true);
}

/* Parse a request head if one is complete and set up the exchange. Returns whether anything happened. */
static bool request_head(struct conn *c)
{
    struct buf *b = &c->rq;
    struct exch *x = &c->x;
    while (b->fwd < b->len && (b->d[b->fwd] == '\r' || b->d[b->fwd] == '\n'))
        buf_drop(b, 1);
    size_t avail = b->len - b->fwd;
    if (!avail) return false;
    const char *p = b->d + b->fwd;
    const char *e = memmem(p, avail, "\r\n\r\n", 4);
    if (!e || e + 4 - p > HEAD_MAX) {
        if (avail >= HEAD_MAX) bad_request(c, 431, "Request Header Fields Too Large");
        return avail >= HEAD_MAX;
    }
    size_t hl = (size_t)(e + 4 - p);
    /* provider mode: ETags the client was given turned back, and the request signed again (in place) */
    if (aws_request(b->d + b->fwd, hl, avail) == -1) return false; /* its body is still to come */
    const char *le = memchr(p, '\n', hl);
    size_t ll = (size_t)(le - p);
    if (ll && p[ll - 1] == '\r') ll--;
    const char *sp1 = memchr(p, ' ', ll);
    const char *sp2 = sp1 ? memrchr(sp1 + 1, ' ', ll - (size_t)(sp1 + 1 - p)) : NULL;
    size_t mlen = sp1 ? (size_t)(sp1 - p) : 0;
    bool ok = sp2 && mlen > 0 && mlen < sizeof x->method && sp2 > sp1 + 1 &&
              (size_t)(p + ll - (sp2 + 1)) >= 8 && memcmp(sp2 + 1, "HTTP/1.", 7) == 0;
    for (size_t i = 0; ok && i < mlen; i++)
        ok = p[i] >= 'A' && p[i] <= 'Z';
    struct head_info h;
    if (ok) {
        parse_headers(le + 1, hl - (size_t)(le + 1 - p), &h);
        ok = !h.bad;
    }
    if (!ok) {
        bad_request(c, 400, "Bad Request");
        return true;
    }

    exch_reset(x);
    x->active = true;
    x->in_flight = true;
    x->at_start = (unsigned)++requests_in_flight;
    if (requests_in_flight > requests_in_flight_max) requests_in_flight_max = requests_in_flight;
    request_seq++;
    x->line = strndup(p, (size_t)(sp2 - p));
    if (!x->line) {
        c->dead = true;
        return true;
    }
    memcpy(x->method, p, mlen);
    x->method[mlen] = '\0';
    x->uri = x->line + mlen + 1;
    x->is_head = strcmp(x->method, "HEAD") == 0;
    x->expect100 = h.expect100;
    x->copy_source = h.copy_source;
    x->close_after = h.conn_close || (sp2[8] == '0' && !h.conn_keepalive);
    if (h.chunked)
        framing_init(&x->rqf, FR_CHUNKED, 0);
    else
        framing_init(&x->rqf, h.has_len ? FR_LEN : FR_NONE, h.len);
    x->has_body = !x->rqf.done;
    x->rq_st = x->has_body ? RQ_BODY : RQ_DONE;
    x->wrong_region = opt.bucket_region && strcmp(h.region, opt.bucket_region) != 0;
    x->fault = x->wrong_region ? F_WRONG_REGION : decide(x);
    if (x->fault == F_CORRUPT_BODY && strcmp(x->method, "PUT") == 0) {
        if (x->rqf.type == FR_LEN) x->rq_cut = x->rqf.left / 2; /* the offset of the byte to change */
        else x->fault = F_NONE;
    }

    switch (x->fault) {
    case F_NONE:
    case F_RESET_RESPONSE:
    case F_SHORT_BODY:
    case F_ERROR_200:
    case F_CORRUPT_BODY:
        b->fwd += hl;
        x->rq_disp = RQ_FORWARD;
        x->rs_st = RS_HEAD;
        if (!upstream_open(c)) upstream_lost(c, "connect failed", errno);
        break;
    case F_SLOWDOWN:
    case F_INTERNAL:
    case F_BAD_XML:
    case F_ARCHIVED:
    case F_WRONG_REGION:
        buf_drop(b, hl);
        x->rq_disp = RQ_DRAIN;
        if (x->has_body && x->expect100) {
            /* The client waits for 100 Continue before sending its body: answer now and close, as S3 does. */
            x->rq_st = RQ_DONE;
            buf_clear(b);
            reply_fault(c, true);
        } else {
            reply_fault(c, false); /* sent after the body has been drained, keeping the connection */
        }
        break;
    case F_RESET_BEFORE:
        conn_reset(c);
        break;
    case F_RESET_REQUEST:
        buf_drop(b, hl);
        x->rq_disp = RQ_RESET;
        x->rs_st = RS_DONE;
        x->rq_cut = x->rqf.type == FR_LEN ? (x->rqf.left / 2 ? x->rqf.left / 2 : 1) : UNKNOWN_LEN_CUT;
        if (x->expect100) gen_continue100(c);
        break;
    case F_STALL:
        buf_clear(b);
        upstream_close(c);
        c->phase = PH_STALL;
        ev_timer_set(&c->tm, opt.stall_seconds, 0.);
        ev_timer_start(g_loop, &c->tm);
        break;
    case F_NKINDS:
        break;
    }
    return true;
}

static bool request_body(struct conn *c)
{
    struct buf *b = &c->rq;
    struct exch *x = &c->x;
    size_t avail = b->len - b->fwd;
    if (x->rq_disp == RQ_RESET && avail > x->rq_cut - x->rq_seen) avail = (size_t)(x->rq_cut - x->rq_seen);
    size_t n = framing_scan(&x->rqf, b->d + b->fwd, avail);
    if (x->rqf.bad) {
        c->dead = true;
        return true;
    }
    if (x->fault == F_CORRUPT_BODY && x->rq_disp == RQ_FORWARD && x->rq_cut >= x->rq_seen &&
        x->rq_cut < x->rq_seen + n)
        b->d[b->fwd + (x->rq_cut - x->rq_seen)] ^= 0x20;
    if (x->rq_disp == RQ_FORWARD)
        b->fwd += n;
    else
        buf_drop(b, n);
    x->rq_seen += n;
    if (x->rq_disp == RQ_RESET && (x->rq_seen >= x->rq_cut || x->rqf.done)) {
        conn_reset(c);
        return true;
    }
    if (x->rqf.done) {
        x->rq_st = RQ_DONE;
        return true;
    }
    return n > 0;
}

/* Replace the n unparsed bytes at fwd (a head) with m others; false if they do not fit. */
static bool buf_replace(struct buf *b, size_t n, const char *with, size_t m)
{
    if (b->off > 0) {
        memmove(b->d, b->d + b->off, b->len - b->off);
        b->fwd -= b->off;
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len - n + m > BUF_CAP) return false;
    memmove(b->d + b->fwd + m, b->d + b->fwd + n, b->len - b->fwd - n);
    memcpy(b->d + b->fwd, with, m);
    b->len = b->len - n + m;
    return true;
}

static bool capture_add(struct exch *x, const char *p, size_t n)
{
    if (x->cap_len + n > x->cap_size) {
        size_t size = x->cap_size ? x->cap_size : 64 * 1024;
        while (size < x->cap_len + n) size *= 2;
        char *grown = realloc(x->cap, size);
        if (!grown) return false;
        x->cap = grown;
        x->cap_size = size;
    }
    memcpy(x->cap + x->cap_len, p, n);
    x->cap_len += n;
    return true;
}

/* The captured reply, its ETags rewritten, sent as a local reply with its real status. */
static void capture_reply(struct conn *c)
{
    struct exch *x = &c->x;
    struct gen *g = &x->gen;
    size_t len = x->rsf.type == FR_CHUNKED ? aws_dechunk(x->cap, x->cap_len) : x->cap_len;
    if (x->cap) aws_body(x->uri, x->cap, len);
    char *head = malloc(x->cap_head_len + 64);
    if (!head) {
        c->dead = true;
        return;
    }
    memcpy(head, x->cap_head, x->cap_head_len);
    int k = snprintf(head + x->cap_head_len, 64, "Content-Length: %zu\r\n\r\n", len);
    free(g->head);
    free(g->body);
    memset(g, 0, sizeof *g);
    g->head = head;
    g->head_len = x->cap_head_len + (size_t)k;
    g->body = x->cap;
    x->cap = NULL;
    x->cap_len = x->cap_size = 0;
    g->body_len = x->is_head ? 0 : len;
    g->status = x->status;
    g->close = x->close_after;
    x->local_queued = true;
    x->rs_st = RS_DONE;
}

static bool response_head(struct conn *c)
{
    struct buf *b = &c->rs;
    struct exch *x = &c->x;
    size_t avail = b->len - b->fwd;
    if (!avail) return false;
    const char *p = b->d + b->fwd;
    const char *e = memmem(p, avail, "\r\n\r\n", 4);
    if (!e || e + 4 - p > HEAD_MAX) {
        if (avail >= HEAD_MAX) {
            upstream_lost(c, "response head too large", 0);
            return true;
        }
        return false;
    }
    size_t hl = (size_t)(e + 4 - p);
    const char *le = memchr(p, '\n', hl);
    int status = 0;
    if (hl < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' || sscanf(p + 9, "%3d", &status) != 1 ||
        status < 100 || status == 101) {
        upstream_lost(c, "sent a bad status line", 0);
        return true;
    }
    struct head_info h;
    parse_headers(le + 1, hl - (size_t)(le + 1 - p), &h);
    if (h.bad) {
        upstream_lost(c, "sent a bad Content-Length", 0);
        return true;
    }
    if (status < 200) {
        b->fwd += hl; /* 100 Continue and friends go to the client, the final reply follows */
        return true;
    }
    if (h.conn_close || (p[7] == '0' && !h.conn_keepalive)) x->close_after = true;
    if (x->is_head || status == 204 || status == 304)
        framing_init(&x->rsf, FR_NONE, 0);
    else if (h.chunked)
        framing_init(&x->rsf, FR_CHUNKED, 0);
    else if (h.has_len)
        framing_init(&x->rsf, FR_LEN, h.len);
    else
        framing_init(&x->rsf, FR_EOF, 0);
    bool has_body = !x->rsf.done;

    x->rs_disp = RS_RELAY;
    switch (x->fault) {
    case F_ERROR_200:
        buf_drop(b, hl); /* the real reply is read and thrown away; the client gets ours */
        x->rs_disp = RS_DISCARD;
        x->up_status = status;
        x->rs_st = has_body ? RS_BODY : RS_DONE;
        if (!has_body)
            reply_error(c, 200, "OK", NULL, "InternalError",
                        "We encountered an internal error. Please try again.", x->close_after);
        return true;
    case F_RESET_RESPONSE:
        if (!has_body) {
            conn_reset(c); /* nothing to cut: the reply itself is lost */
            return true;
        }
        x->rs_disp = RS_CUT_RST;
        break;
    case F_SHORT_BODY:
        if (!has_body || x->rsf.type == FR_EOF)
            x->fault = F_NONE; /* no length to fall short of */
        else
            x->rs_disp = RS_CUT_FIN;
        break;
    case F_CORRUPT_BODY:
        if (strcmp(x->method, "PUT") == 0) break; /* the request's body was changed, not the reply's */
        if (status / 100 != 2 || x->rsf.type != FR_LEN || x->rsf.left == 0)
            x->fault = F_NONE; /* only a plain body of known length is changed */
        else
            x->rs_cut = x->rsf.left / 2; /* the offset of the byte to change */
        break;
    default:
        break;
    }
    if (x->rs_disp == RS_CUT_RST || x->rs_disp == RS_CUT_FIN)
        x->rs_cut = x->rsf.type == FR_LEN ? x->rsf.left / 2 : UNKNOWN_LEN_CUT;
    if (aws_enabled()) {
        bool capture = false;
        size_t nlen = 0;
        char *nh = aws_response_head(x->method, x->uri, x->copy_source, p, hl, &nlen, &capture);
        if (nh && capture && x->fault == F_NONE) { /* ETags in the body: rewritten once it is all here */
            buf_drop(b, hl);
            x->cap_head = nh;
            x->cap_head_len = nlen;
            x->rs_disp = RS_CAPTURE;
            x->status = status;
            x->rs_st = has_body ? RS_BODY : RS_DONE;
            if (!has_body) capture_reply(c);
            return true;
        }
        if (nh && !capture) {
            if (buf_replace(b, hl, nh, nlen))
                hl = nlen;
            else
                fprintf(stderr, "faultproxy: %s: no room to rewrite the reply's head; relayed as it is\n", x->line);
        }
        free(nh);
    }
    b->fwd += hl;
    x->status = status;
    x->head_sent = true;
    x->rs_st = has_body ? RS_BODY : RS_DONE;
    if (x->rs_st == RS_BODY && (x->rs_disp == RS_CUT_RST || x->rs_disp == RS_CUT_FIN) && x->rs_cut == 0)
        x->rs_st = RS_CUT;
    return true;
}

static bool response_body(struct conn *c)
{
    struct buf *b = &c->rs;
    struct exch *x = &c->x;
    bool cut = x->rs_disp == RS_CUT_RST || x->rs_disp == RS_CUT_FIN;
    size_t avail = b->len - b->fwd;
    if (cut && avail > x->rs_cut - x->rs_seen) avail = (size_t)(x->rs_cut - x->rs_seen);
    size_t n = framing_scan(&x->rsf, b->d + b->fwd, avail);
    if (x->rsf.bad) {
        c->dead = true;
        return true;
    }
    if (cut && x->rsf.done && n > 0) n--; /* never let a cut reply look complete */
    if (x->fault == F_CORRUPT_BODY && !x->has_body && x->rs_cut >= x->rs_seen && x->rs_cut < x->rs_seen + n)
        b->d[b->fwd + (x->rs_cut - x->rs_seen)] ^= 0x20;
    if (x->rs_disp == RS_CAPTURE && !capture_add(x, b->d + b->fwd, n)) {
        c->dead = true;
        return true;
    }
    if (x->rs_disp == RS_DISCARD || x->rs_disp == RS_CAPTURE)
        buf_drop(b, n);
    else
        b->fwd += n;
    x->rs_seen += n;
    if (cut && (x->rs_seen >= x->rs_cut || x->rsf.done)) {
        x->rs_st = RS_CUT;
        return true;
    }
    if (x->rsf.done) {
        x->rs_st = RS_DONE;
        if (x->rs_disp == RS_CAPTURE) capture_reply(c);
        if (x->rs_disp == RS_DISCARD) {
            if (b->len > b->fwd) { /* junk after the reply: do not reuse this upstream connection */
                b->len = b->fwd;
                upstream_close(c);
            }
            reply_error(c, 200, "OK", NULL, "InternalError",
                        "We encountered an internal error. Please try again.", x->close_after);
        }
        return true;
    }
    return n > 0;
}

/* Advance the current exchange as far as the buffered bytes allow. */
static bool conn_process(struct conn *c)
{
    struct exch *x = &c->x;
    bool progress = false;
    if (c->phase != PH_ACTIVE || c->dead) return false;
    if (!x->active) {
        if (!request_head(c)) return false;
        progress = true;
        if (c->dead || c->phase != PH_ACTIVE) return true;
    }
    if (x->rq_st == RQ_BODY) {
        progress |= request_body(c);
        if (c->dead) return true;
    }
    if (x->rs_st == RS_HEAD && x->rq_disp == RQ_FORWARD) progress |= response_head(c);
    if (!c->dead && x->rs_st == RS_BODY && x->rq_disp == RQ_FORWARD) progress |= response_body(c);
    if (c->dead) return true;
    if (x->local_queued && x->rq_st == RQ_DONE && !x->gen.active) {
        x->local_queued = false;
        x->gen.active = true;
        x->status = x->gen.status; /* for the log, even if the client leaves before the end */
        progress = true;
    }
    if (x->gen.active) progress |= gen_fill(c);
    if (x->rs_st == RS_CUT && c->rs.off == c->rs.fwd) {
        if (x->rs_disp == RS_CUT_RST) {
            conn_reset(c);
        } else {
            exch_finish(c, false);
            conn_linger(c); /* short-body: a clean FIN before Content-Length is reached */
        }
        return true;
    }
    if (x->active && x->rq_st == RQ_DONE && c->rq.off == c->rq.fwd && x->rs_st == RS_DONE && !x->gen.active &&
        !x->local_queued && c->rs.off == c->rs.fwd) {
        bool close_conn = x->close_after;
        exch_finish(c, false);
        if (x->rq_disp == RQ_FORWARD) c->u_last = ev_now(g_loop);
        if (c->rs.len > c->rs.fwd) { /* the upstream sent more than one reply: do not trust it again */
            buf_clear(&c->rs);
            upstream_close(c);
        }
        exch_reset(x);
        if (close_conn) conn_linger(c);
        return true;
    }
    return progress;
}

static bool client_read(struct conn *c)
{
    ssize_t n;
    if (c->phase != PH_ACTIVE) {
        char scratch[16384];
        n = recv(c->cfd, scratch, sizeof scratch, 0);
        if (n > 0) return true;
        if (n < 0 && would_block()) return false;
        if (c->phase == PH_STALL) exch_finish(c, false);
        c->dead = true;
        return true;
    }
    if (c->x.active && c->x.rq_st != RQ_BODY) return false;
    struct buf *b = &c->rq;
    buf_make_room(b);
    if (b->len == BUF_CAP) return false;
    n = recv(c->cfd, b->d + b->len, BUF_CAP - b->len, 0);
    if (n > 0) {
        b->len += (size_t)n;
        return true;
    }
    if (n < 0 && would_block()) return false;
    c->dead = true; /* EOF or error: an exchange in progress is logged as aborted */
    return true;
}

static bool client_write(struct conn *c)
{
    struct buf *b = &c->rs;
    bool progress = false;
    if (c->phase != PH_ACTIVE) return false;
    while (b->fwd > b->off) {
        ssize_t n = send(c->cfd, b->d + b->off, b->fwd - b->off, MSG_NOSIGNAL);
        if (n > 0) {
            b->off += (size_t)n;
            if (b->off == b->len) buf_clear(b);
            progress = true;
        } else {
            if (n < 0 && would_block()) break;
            c->dead = true;
            return true;
        }
    }
    return progress;
}

static void watch(ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(g_loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(g_loop, w);
}

/* Arm exactly the watchers for what is blocked: this is where back-pressure happens. */
static void conn_watch(struct conn *c)
{
    const struct exch *x = &c->x;
    bool active = c->phase == PH_ACTIVE;
    bool want_input = !x->active || x->rq_st == RQ_BODY;
    watch(&c->cr, !active || (want_input && buf_has_room(&c->rq)));
    watch(&c->cw, active && c->rs.fwd > c->rs.off);
    bool up = c->ufd >= 0;
    watch(&c->uw, up && (c->u_connecting || c->rq.fwd > c->rq.off));
    watch(&c->ur, up && !c->u_connecting && (!response_expected(c) || buf_has_room(&c->rs)));
}

static void conn_pump(struct conn *c)
{
    bool progress = true;
    for (int round = 0; round < PUMP_ROUNDS && progress && !c->dead; round++) {
        progress = client_read(c);
        if (!c->dead) progress |= conn_process(c);
        if (!c->dead) progress |= upstream_io(c);
        if (!c->dead) progress |= conn_process(c);
        if (!c->dead) progress |= client_write(c);
    }
    if (c->dead) {
        conn_free(c);
        return;
    }
    conn_watch(c);
    /* Out of rounds while still moving: let other connections run, then come back even if no watcher would
     * fire (e.g. a generated body with an empty buffer). Stopping the watcher clears this pending event. */
    if (progress) ev_feed_event(g_loop, &c->cr, EV_CUSTOM);
}

static void io_cb(EV_P_ ev_io *w, int revents)
{
    (void)EV_A;
    (void)revents;
    conn_pump(w->data);
}

static void upstream_write_cb(EV_P_ ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)EV_A;
    (void)revents;
    if (c->u_connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
            upstream_lost(c, "connect failed", err);
        else
            c->u_connecting = false;
    }
    conn_pump(c);
}

static void timer_cb(EV_P_ ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)EV_A;
    (void)revents;
    if (c->phase == PH_STALL) exch_finish(c, false);
    conn_free(c);
}

static void accept_cb(EV_P_ ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "faultproxy: accept: %s\n", strerror(errno));
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        char *d1 = malloc(BUF_CAP), *d2 = malloc(BUF_CAP);
        if (!c || !d1 || !d2) {
            free(c);
            free(d1);
            free(d2);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->cfd = fd;
        c->ufd = -1;
        c->rq.d = d1;
        c->rs.d = d2;
        ev_io_init(&c->cr, io_cb, fd, EV_READ);
        ev_io_init(&c->cw, io_cb, fd, EV_WRITE);
        ev_io_init(&c->ur, io_cb, -1, EV_READ);
        ev_io_init(&c->uw, upstream_write_cb, -1, EV_WRITE);
        ev_timer_init(&c->tm, timer_cb, 0., 0.);
        c->cr.data = c->cw.data = c->ur.data = c->uw.data = c->tm.data = c;
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        ev_io_start(EV_A, &c->cr);
    }
}

/* ---- counts, signals, options ---- */

static void counts_write(void)
{
    if (!opt.count_path) return;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", opt.count_path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "faultproxy: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "{\n  \"requests\": %lu,\n  \"max_in_flight\": %lu,\n  \"methods\": {", total_requests,
            requests_in_flight_max);
    for (int i = 0; i < n_methods; i++)
        fprintf(f, "%s\"%s\": %lu", i ? ", " : "", method_count[i].name, method_count[i].n);
    fprintf(f, "},\n  \"faults\": {");
    for (int k = 0; k < F_NKINDS; k++)
        fprintf(f, "%s\"%s\": %lu", k ? ", " : "", fault_names[k], fault_count[k]);
    fprintf(f, "}\n}\n");
    if (fclose(f) != 0 || rename(tmp, opt.count_path) != 0)
        fprintf(stderr, "faultproxy: %s: %s\n", opt.count_path, strerror(errno));
}

static void signal_cb(EV_P_ ev_signal *w, int revents)
{
    (void)revents;
    if (w->signum == SIGUSR1)
        counts_write();
    else
        ev_break(EV_A, EVBREAK_ALL);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: faultproxy --listen HOST:PORT --upstream HOST:PORT [--rate 0.10] [--seed N]\n"
               "                  [--faults KIND,...] [--rule KIND:SUBSTRING]... [--log FILE]\n"
               "                  [--stall-seconds 30] [--count-file FILE] [--only SUBSTRING]\n"
               "                  [--bucket-region REGION] [--kms-bucket BUCKET]... [--resign-keys AK:SK]\n"
               "kinds: slowdown internal reset-before reset-request reset-response stall short-body\n"
               "       bad-xml error-200 (all by default), corrupt-body (only when named: one byte of an object\n"
               "       GET's body changed), archived (only when named: 403 InvalidObjectState, as S3 answers\n"
               "       for a GLACIER object); rules also take none, bad-xml-truncated,\n"
               "       bad-xml-garbage, bad-xml-oversized. A rule applies to requests whose \"METHOD URI\"\n"
               "       contains SUBSTRING; the first matching rule wins over --rate. --only: --rate faults only\n"
               "       requests whose \"METHOD URI\" contains SUBSTRING. --bucket-region: every request signed for\n"
               "       another region gets 400 AuthorizationHeaderMalformed naming REGION (as Amazon S3 answers).\n"
               "--kms-bucket BUCKET[/PREFIX]: BUCKET's objects (those under PREFIX) answer as Amazon S3's SSE-KMS\n"
               "       objects do: their ETags are not the MD5 of the bytes, their replies say\n"
               "       x-amz-server-side-encryption: aws:kms.\n"
               "       The ETags sent back are turned back and the request signed again with --resign-keys.\n");
}

static bool parse_kind(const char *s, size_t n, enum fault *kind, enum badxml *variant)
{
    static const struct {
        const char *name;
        enum badxml v;
    } bx[] = {{"bad-xml-truncated", BX_TRUNCATED},
              {"bad-xml-garbage", BX_GARBAGE},
              {"bad-xml-oversized", BX_OVERSIZED}};
    *variant = BX_ANY;
    for (int k = 0; k < F_NKINDS; k++) {
        if (strlen(fault_names[k]) == n && strncmp(s, fault_names[k], n) == 0) {
            *kind = (enum fault)k;
            return true;
        }
    }
    for (size_t i = 0; i < sizeof bx / sizeof bx[0]; i++) {
        if (strlen(bx[i].name) == n && strncmp(s, bx[i].name, n) == 0) {
            *kind = F_BAD_XML;
            *variant = bx[i].v;
            return true;
        }
    }
    return false;
}

static bool parse_faults(const char *list)
{
    memset(opt.enabled, 0, sizeof opt.enabled);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        enum fault k;
        enum badxml v;
        if (n == 3 && strncmp(p, "all", 3) == 0) {
            for (int i = 1; i < F_NKINDS; i++)
                opt.enabled[i] = !OPT_IN_KIND(i);
        } else if (n > 0) {
            if (!parse_kind(p, n, &k, &v) || k == F_NONE) {
                fprintf(stderr, "faultproxy: unknown fault kind '%.*s'\n", (int)n, p);
                return false;
            }
            opt.enabled[k] = true;
        }
        p += n;
        if (*p == ',') p++;
    }
    return true;
}

/* "HOST:PORT" or "[V6]:PORT" into an address. */
static bool resolve(const char *spec, bool passive, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof host) return false;
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static bool parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"rate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"faults", required_argument, NULL, 'f'},
        {"rule", required_argument, NULL, 'R'},
        {"log", required_argument, NULL, 'L'},
        {"stall-seconds", required_argument, NULL, 'S'},
        {"count-file", required_argument, NULL, 'c'},
        {"only", required_argument, NULL, 'O'},
        {"bucket-region", required_argument, NULL, 'B'},
        {"kms-bucket", required_argument, NULL, 'K'},
        {"resign-keys", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool seeded = false;
    char *end;
    opt.stall_seconds = 30;
    for (int k = 1; k < F_NKINDS; k++)
        opt.enabled[k] = !OPT_IN_KIND(k);
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            opt.listen = optarg;
            break;
        case 'O':
            opt.only = optarg;
            break;
        case 'B':
            opt.bucket_region = optarg;
            break;
        case 'K':
            if (!aws_add_kms_bucket(optarg)) return false;
            break;
        case 'k':
            if (!aws_set_keys(optarg)) return false;
            break;
        case 'u':
            opt.upstream = optarg;
            break;
        case 'r':
            opt.rate = strtod(optarg, &end);
            if (*end || end == optarg || opt.rate < 0 || opt.rate > 1) {
                fprintf(stderr, "faultproxy: --rate wants a number in [0,1]\n");
                return false;
            }
            break;
        case 's':
            opt.seed = strtoull(optarg, &end, 0);
            if (*end || end == optarg) {
                fprintf(stderr, "faultproxy: --seed wants an integer\n");
                return false;
            }
            seeded = true;
            break;
        case 'f':
            if (!parse_faults(optarg)) return false;
            break;
        case 'R': {
            const char *colon = strchr(optarg, ':');
            struct rule *r = &opt.rules[opt.nrules];
            if (opt.nrules == MAX_RULES || !colon ||
                !parse_kind(optarg, (size_t)(colon - optarg), &r->kind, &r->variant)) {
                fprintf(stderr, "faultproxy: bad --rule '%s' (want KIND:SUBSTRING, at most %d)\n", optarg,
                        MAX_RULES);
                return false;
            }
            r->needle = colon + 1;
            opt.nrules++;
            break;
        }
        case 'L':
            opt.log_path = optarg;
            break;
        case 'S':
            opt.stall_seconds = strtod(optarg, &end);
            if (*end || end == optarg || opt.stall_seconds < 0) {
                fprintf(stderr, "faultproxy: --stall-seconds wants a non-negative number\n");
                return false;
            }
            break;
        case 'c':
            opt.count_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return false;
        }
    }
    if (optind != argc || !opt.listen || !opt.upstream || !aws_check()) return false;
    if (!seeded) opt.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return true;
}

int main(int argc, char **argv)
{
    if (!parse_args(argc, argv)) {
        usage(stderr);
        return 2;
    }
    rng_state = opt.seed;
    signal(SIGPIPE, SIG_IGN);
    if (!resolve(opt.upstream, false, &up_addr, &up_addrlen)) {
        fprintf(stderr, "faultproxy: cannot resolve upstream '%s'\n", opt.upstream);
        return 2;
    }
    struct sockaddr_storage la;
    socklen_t lalen;
    if (!resolve(opt.listen, true, &la, &lalen)) {
        fprintf(stderr, "faultproxy: cannot resolve listen address '%s'\n", opt.listen);
        return 2;
    }
    int lfd = socket(la.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&la, lalen) < 0 || listen(lfd, 512) < 0) {
        fprintf(stderr, "faultproxy: listen on %s: %s\n", opt.listen, strerror(errno));
        return 1;
    }
    if (opt.log_path && !(log_file = fopen(opt.log_path, "w"))) {
        fprintf(stderr, "faultproxy: %s: %s\n", opt.log_path, strerror(errno));
        return 1;
    }
    lalen = sizeof la;
    getsockname(lfd, (struct sockaddr *)&la, &lalen);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (la.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&la;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
        port = ntohs(sin->sin_port);
    } else if (la.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&la;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
        port = ntohs(sin6->sin6_port);
    }

    g_loop = ev_default_loop(0);
    ev_io acc;
    ev_signal sig_term, sig_int, sig_usr1;
    ev_io_init(&acc, accept_cb, lfd, EV_READ);
    ev_io_start(g_loop, &acc);
    ev_signal_init(&sig_term, signal_cb, SIGTERM);
    ev_signal_init(&sig_int, signal_cb, SIGINT);
    ev_signal_init(&sig_usr1, signal_cb, SIGUSR1);
    ev_signal_start(g_loop, &sig_term);
    ev_signal_start(g_loop, &sig_int);
    ev_signal_start(g_loop, &sig_usr1);

    fprintf(stderr, "faultproxy: upstream %s, rate %.3f, seed %" PRIu64 ", %d rule(s)\n", opt.upstream,
            opt.rate, opt.seed, opt.nrules);
    printf("listening on %s:%d\n", host, port);
    fflush(stdout);
    ev_run(g_loop, 0);

    while (conns)
        conn_free(conns); /* exchanges still in flight are logged as aborted */
    counts_write();
    if (log_file) fclose(log_file);
    close(lfd);
    return 0;
}
