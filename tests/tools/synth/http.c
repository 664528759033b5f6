/* The synthetic endpoint's HTTP/1.1 server: see http.h. */
#include "tests/tools/synth/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX (64 * 1024)
#define READ_CHUNK (256 * 1024)

struct http_stats http_stats;
static struct http_opts ho;
static struct ev_loop *hloop;
static ev_io acc;

int http_hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* In place; '+' stays what it is (SigV4 clients send a space as %20). */
void http_pct_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && http_hexval(s[1]) >= 0 && http_hexval(s[2]) >= 0) {
            *o++ = (char)(http_hexval(s[1]) * 16 + http_hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

const char *http_hdr(const struct req *r, const char *name)
{
    for (int i = 0; i < r->nh; i++)
        if (strcasecmp(r->hname[i], name) == 0) return r->hval[i];
    return NULL;
}

const char *http_query(const struct req *r, const char *name)
{
    for (int i = 0; i < r->nq; i++)
        if (strcmp(r->qn[i], name) == 0) return r->qv[i];
    return NULL;
}

void http_unquote(const char *v, char *out, size_t n)
{
    if (*v == '"') v++;
    snprintf(out, n, "%s", v);
    size_t l = strlen(out);
    if (l && out[l - 1] == '"') out[l - 1] = '\0';
}

void http_date(time_t t, char out[40])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void http_reply(struct conn *c, int status, const char *extra, const void *body, size_t len, bool head_only)
{
    static const struct {
        int s;
        const char *t;
    } reasons[] = {{200, "OK"}, {204, "No Content"}, {206, "Partial Content"}, {304, "Not Modified"},
                   {400, "Bad Request"}, {403, "Forbidden"}, {404, "Not Found"}, {411, "Length Required"},
                   {412, "Precondition Failed"}, {416, "Range Not Satisfiable"}, {431, "Headers Too Large"},
                   {501, "Not Implemented"}};
    const char *why = "Status";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].s == status) why = reasons[i].t;
    char date[40];
    http_date(time(NULL), date);
    if (status >= 500) http_stats.status5++;
    else if (status >= 400) http_stats.status4++;
    sb_printf(&c->out, "HTTP/1.1 %d %s\r\nx-amz-request-id: synth%lu\r\nDate: %s\r\nContent-Length: %zu\r\n", status,
              why, http_stats.requests, date, len);
    if (extra) sb_add(&c->out, extra, strlen(extra));
    if (c->close_after) sb_add(&c->out, "Connection: close\r\n", 19);
    sb_add(&c->out, "\r\n", 2);
    if (!head_only && len) sb_add(&c->out, body, len);
}

/* ---- requests ---- */

static void req_free(struct req *r)
{
    free(r->head);
    free(r->path);
    free(r->body);
    if (r->md5) EVP_MD_CTX_free(r->md5);
    if (r->sha) EVP_MD_CTX_free(r->sha);
    memset(r, 0, sizeof *r);
}

/* The head (hl bytes, ending in the blank line) into c->rq. false for one that is not HTTP/1.1. */
static bool parse_head(struct conn *c, const char *p, size_t hl)
{
    struct req *r = &c->rq;
    r->head = malloc(hl + 1);
    if (!r->head) abort();
    memcpy(r->head, p, hl);
    r->head[hl] = '\0';
    char *save = NULL, *line = strtok_r(r->head, "\r\n", &save);
    char *sp1 = line ? strchr(line, ' ') : NULL, *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) return false;
    *sp1 = *sp2 = '\0';
    r->method = line;
    r->rawpath = sp1 + 1;
    if (strcmp(sp2 + 1, "HTTP/1.0") == 0) c->close_after = true;
    for (char *l = strtok_r(NULL, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(l, ':');
        if (!colon || r->nh == MAX_HEADERS) return false;
        *colon = '\0';
        char *v = colon + 1, *e = v + strlen(v);
        while (*v == ' ' || *v == '\t') v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
        r->hname[r->nh] = l;
        r->hval[r->nh++] = v;
    }
    char *q = strchr(r->rawpath, '?');
    if (q) {
        *q++ = '\0';
        for (char *s2 = NULL, *t = strtok_r(q, "&", &s2); t && r->nq < MAX_QUERY; t = strtok_r(NULL, "&", &s2)) {
            char *eq = strchr(t, '=');
            if (eq) *eq = '\0';
            r->qn[r->nq] = t;
            r->qv[r->nq] = eq ? eq + 1 : t + strlen(t);
            http_pct_decode(r->qn[r->nq]);
            http_pct_decode(r->qv[r->nq]);
            r->nq++;
        }
    }
    /* path style: /bucket/key */
    r->path = strdup(r->rawpath);
    if (!r->path) abort();
    http_pct_decode(r->path);
    r->bucket = r->path + (r->path[0] == '/');
    char *slash = strchr(r->bucket, '/');
    r->key = slash ? slash + 1 : r->bucket + strlen(r->bucket);
    if (slash) *slash = '\0';
    const char *cl = http_hdr(r, "content-length"), *conn = http_hdr(r, "connection");
    r->clen = cl ? strtoull(cl, NULL, 10) : 0;
    if (conn && strcasecmp(conn, "close") == 0) c->close_after = true;
    r->keep = r->clen <= ho.store_max;
    r->md5 = EVP_MD_CTX_new();
    EVP_DigestInit_ex(r->md5, EVP_md5(), NULL);
    const char *sha = http_hdr(r, "x-amz-content-sha256");
    if (sha && strlen(sha) == 64 && strspn(sha, "0123456789abcdef") == 64) {
        r->sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL);
    }
    r->body = malloc(r->keep ? r->clen + 1 : 1);
    if (!r->body) abort();
    r->body[0] = '\0';
    return true;
}

/* ---- connections ---- */

static void conn_close(struct conn *c)
{
    ev_io_stop(hloop, &c->r);
    ev_io_stop(hloop, &c->w);
    ev_timer_stop(hloop, &c->delay);
    close(c->fd);
    req_free(&c->rq);
    free(c->in.d);
    free(c->out.d);
    free(c);
}

static void consume(struct sbuf *b, size_t n)
{
    memmove(b->d, b->d + n, b->n - n);
    b->n -= n;
}

static void start_write(struct conn *c)
{
    ev_io_start(hloop, &c->w);
}

/* A reply is queued: after the latency, write it. Reading stops until it is written. */
static void queue_reply(struct conn *c)
{
    c->waiting = true;
    ev_io_stop(hloop, &c->r);
    if (ho.latency > 0) {
        ev_timer_set(&c->delay, ho.latency, 0.);
        ev_timer_start(hloop, &c->delay);
    } else {
        start_write(c);
    }
}

static void conn_step(struct conn *c)
{
    while (!c->waiting) {
        if (!c->in_body) {
            char *end = c->in.n ? memmem(c->in.d, c->in.n, "\r\n\r\n", 4) : NULL;
            if (!end) {
                if (c->in.n > HEAD_MAX) {
                    c->close_after = true;
                    http_reply(c, 431, NULL, NULL, 0, false);
                    queue_reply(c);
                }
                return;
            }
            size_t hlen = (size_t)(end + 4 - c->in.d);
            http_stats.requests++;
            bool ok = parse_head(c, c->in.d, hlen);
            consume(&c->in, hlen);
            if (!ok || http_hdr(&c->rq, "transfer-encoding")) {
                c->close_after = true;
                http_reply(c, ok ? 411 : 400, NULL, NULL, 0, false);
                queue_reply(c);
                return;
            }
            if (!ho.on_head(c)) {
                if (c->rq.clen) c->close_after = true; /* its body is not read */
                req_free(&c->rq);
                queue_reply(c);
                return;
            }
            const char *ex = http_hdr(&c->rq, "expect");
            if (ex && strcasecmp(ex, "100-continue") == 0 && c->rq.clen > c->in.n) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (write(c->fd, cont, sizeof cont - 1) < 0) { /* a full socket this early: the client waits */
                }
            }
            c->in_body = true;
        }
        struct req *r = &c->rq;
        size_t take = c->in.n < r->clen - r->got ? c->in.n : (size_t)(r->clen - r->got);
        if (take) {
            EVP_DigestUpdate(r->md5, c->in.d, take);
            if (r->sha) EVP_DigestUpdate(r->sha, c->in.d, take);
            if (r->keep) memcpy(r->body + r->got, c->in.d, take);
            r->got += take;
            if (r->keep) r->body[r->got] = '\0';
            consume(&c->in, take);
        }
        if (r->got < r->clen) return;
        c->in_body = false;
        ho.on_request(c);
        req_free(r);
        queue_reply(c);
    }
}

static void read_cb(struct ev_loop *l, ev_io *w, int revents)
{
    struct conn *c = w->data;
    for (;;) {
        if (c->in.cap < c->in.n + READ_CHUNK + 1) {
            c->in.cap = c->in.n + READ_CHUNK + 1;
            c->in.d = realloc(c->in.d, c->in.cap);
            if (!c->in.d) abort();
        }
        ssize_t n = read(c->fd, c->in.d + c->in.n, READ_CHUNK);
        if (n > 0) {
            c->in.n += (size_t)n;
            conn_step(c); /* a big body streams through instead of piling up */
            if (c->waiting || (size_t)n < READ_CHUNK) return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_close(c); /* EOF or error */
        return;
    }
}

static void write_cb(struct ev_loop *l, ev_io *w, int revents)
{
    struct conn *c = w->data;
    while (c->out_off < c->out.n) {
        ssize_t n = write(c->fd, c->out.d + c->out_off, c->out.n - c->out_off);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->out_off += (size_t)n;
    }
    ev_io_stop(l, &c->w);
    if (c->close_after) {
        conn_close(c);
        return;
    }
    c->out.n = c->out_off = 0;
    c->waiting = false;
    ev_io_start(l, &c->r);
    conn_step(c); /* a request that arrived meanwhile */
}

static void delay_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    start_write(w->data);
}

static void accept_cb(struct ev_loop *l, ev_io *w, int revents)
{
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                fprintf(stderr, "synth_s3: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->fd = fd;
        ev_io_init(&c->r, read_cb, fd, EV_READ);
        ev_io_init(&c->w, write_cb, fd, EV_WRITE);
        ev_timer_init(&c->delay, delay_cb, 0., 0.);
        c->r.data = c->w.data = c->delay.data = c;
        ev_io_start(l, &c->r);
    }
}

int http_listen(struct ev_loop *loop, const char *spec, const struct http_opts *o)
{
    ho = *o;
    hloop = loop;
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "synth_s3: --listen wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
        fprintf(stderr, "synth_s3: cannot resolve '%s'\n", spec);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0) {
        fprintf(stderr, "synth_s3: listen on %s: %s\n", spec, strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    printf("listening on %s:%d\n", host, ntohs(sin.sin_port));
    fflush(stdout);
    ev_io_init(&acc, accept_cb, fd, EV_READ);
    ev_io_start(loop, &acc);
    return 0;
}
