/* The libev <-> libcurl multi glue: curl's sockets and timer as libev watchers, finished transfers handed to
 * s3/request.c at a safe point; the loop's options, statistics and retry delays. See s3/client_internal.h.
 * Must not: decide an attempt's outcome (s3/request.c), or free a transfer inside curl's callbacks. */
#include <curl/curl.h>
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "s3/client_internal.h"

void s3_loop_options_default(struct s3_loop_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_host_connections = 64;
    o->connect_timeout = 10;
    o->stall_timeout = 60;
    o->total_timeout = 0;
    s3_retry_policy_default(&o->retry);
    o->workers = s3i_default_workers();
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
    s3i_drain_done(loop);
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
    if (s3i_workers_start(loop, loop->opts.workers) != 0) loop->opts.workers = 0; /* then work runs inline */
    return loop;

error_clean_up:
    free(loop);
    return NULL;
}

void s3_loop_free(struct s3_loop *loop)
{
    if (!loop) return;
    s3i_workers_stop(loop); /* first: a job's done may still use the loop */
    while (loop->live) {
        struct s3_request *rq = loop->live;
        loop->live = rq->next;
        if (rq->state == REQ_RUNNING) curl_multi_remove_handle(loop->multi, rq->easy);
        ev_timer_stop(loop->ev, &rq->timer);
        s3i_request_free(rq);
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

void s3i_loop_link(struct s3_loop *loop, struct s3_request *rq)
{
    rq->next = loop->live;
    if (loop->live) loop->live->prev = rq;
    loop->live = rq;
}

void s3i_loop_unlink(struct s3_loop *loop, struct s3_request *rq)
{
    if (rq->prev) rq->prev->next = rq->next;
    else loop->live = rq->next;
    if (rq->next) rq->next->prev = rq->prev;
    rq->prev = rq->next = NULL;
}
