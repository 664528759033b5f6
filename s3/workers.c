/* The loop's worker threads: s3_loop_offload (see s3/client.h). Jobs wait in one queue; a worker runs a job's
 * work, puts the job on the finished list and wakes the loop (ev_async), whose callback runs each job's done on
 * the loop's thread. Owns: the threads, the two lists, the async watcher. Must not: run anything but a job's
 * work on a worker (the loop, curl and the log are the loop thread's alone), or keep a job after its done. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include "s3/client_internal.h"
#include "s3/xml.h"

#define MAX_WORKERS 8

struct s3_workers {
    struct ev_loop *ev;
    ev_async wake;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct s3_job *queue, *queue_tail; /* waiting for a worker, oldest first */
    struct s3_job *finished;           /* work done, done not yet run (newest first) */
    size_t pending;                    /* offloaded jobs whose done has not run yet */
    bool stop;
    int nthreads;
    pthread_t threads[MAX_WORKERS];
};

static void *worker_main(void *arg)
{
    struct s3_workers *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->queue && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        struct s3_job *job = w->queue;
        if (!job) break; /* stopping, and nothing left to do */
        w->queue = job->next;
        if (!w->queue) w->queue_tail = NULL;
        pthread_mutex_unlock(&w->mu);
        job->work(job);
        pthread_mutex_lock(&w->mu);
        job->next = w->finished;
        w->finished = job;
        ev_async_send(w->ev, &w->wake); /* thread-safe, by libev's contract */
    }
    pthread_mutex_unlock(&w->mu);
    s3_xml_thread_end();
    return NULL;
}

/* Runs the done of every job whose work has finished, in the order they finished. */
static void run_finished(struct s3_workers *w)
{
    pthread_mutex_lock(&w->mu);
    struct s3_job *list = w->finished, *fifo = NULL;
    w->finished = NULL;
    pthread_mutex_unlock(&w->mu);
    while (list) { /* newest first -> oldest first */
        struct s3_job *j = list;
        list = j->next;
        j->next = fifo;
        fifo = j;
    }
    while (fifo) {
        struct s3_job *j = fifo;
        fifo = j->next;
        j->next = NULL;
        /* the watcher holds a reference on the loop only while jobs are pending, so that ev_run(loop, 0)
         * waits for them as it waits for a transfer, and returns as before when there is nothing to wait for */
        if (--w->pending == 0) ev_unref(w->ev);
        j->done(j);
    }
}

static void wake_cb(struct ev_loop *ev, ev_async *a, int revents)
{
    (void)ev;
    (void)revents;
    run_finished(a->data);
}

int s3i_workers_start(struct s3_loop *loop, int n)
{
    if (n <= 0) return 0;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    struct s3_workers *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->ev = loop->ev;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return -1;
    }
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return -1;
    }
    s3_xml_init(); /* libxml2's globals, before a second thread can reach them */
    ev_async_init(&w->wake, wake_cb);
    w->wake.data = w;
    ev_async_start(w->ev, &w->wake);
    ev_unref(w->ev); /* no job pending: the watcher does not keep the loop running */
    /* the workers take no signal: the loop's thread handles them all */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[w->nthreads], NULL, worker_main, w) != 0) break;
        w->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    loop->workers = w;
    if (w->nthreads == 0) { /* none could be started: the work runs inline */
        s3i_workers_stop(loop);
        return -1;
    }
    return 0;
}

void s3i_workers_stop(struct s3_loop *loop)
{
    struct s3_workers *w = loop->workers;
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stop = true; /* the workers finish the queue first */
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; i < w->nthreads; i++) pthread_join(w->threads[i], NULL);
    loop->workers = NULL; /* a done below that offloads more work has it run inline */
    while (w->queue) { /* no worker ever ran (or all failed to start): finish here */
        struct s3_job *j = w->queue;
        w->queue = j->next;
        j->work(j);
        j->next = w->finished;
        w->finished = j;
    }
    run_finished(w);
    ev_ref(w->ev); /* undo the start's unref before the watcher stops */
    ev_async_stop(w->ev, &w->wake);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void s3_loop_offload(struct s3_loop *loop, struct s3_job *job)
{
    struct s3_workers *w = loop->workers;
    job->next = NULL;
    if (!w) {
        job->work(job);
        job->done(job);
        return;
    }
    if (w->pending++ == 0) ev_ref(w->ev); /* see run_finished */
    pthread_mutex_lock(&w->mu);
    if (w->queue_tail) w->queue_tail->next = job;
    else w->queue = job;
    w->queue_tail = job;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int s3i_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) - 1;
    return n < 1 ? 1 : n > 3 ? 3 : (int)n;
}
