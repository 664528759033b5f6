/* Unit tests for s3/workers.c (s3_loop_offload): work runs off the loop's thread and done on it, from the loop;
 * pending jobs keep ev_run(loop, 0) running and nothing else does; without workers both run inline; freeing the
 * loop finishes the jobs still pending. No network: the loop has no transfer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "s3/client.h"

#define JOBS 200

struct tjob {
    struct s3_job job;
    int index;
    pthread_t worked_on;
    bool worked, done_on_loop;
    int *order; /* where done records its index */
    int *ndone;
};

static pthread_t main_thread;

static void work(struct s3_job *j)
{
    struct tjob *t = (struct tjob *)j;
    t->worked_on = pthread_self();
    /* a little work, so that several jobs are in flight at once */
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    t->worked = true;
}

static void done(struct s3_job *j)
{
    struct tjob *t = (struct tjob *)j;
    t->done_on_loop = pthread_equal(pthread_self(), main_thread) && t->worked;
    t->order[(*t->ndone)++] = t->index;
}

static struct s3_loop *new_loop(struct ev_loop *ev, int workers)
{
    struct s3_loop_options o;
    s3_loop_options_default(&o);
    o.workers = workers;
    struct s3_loop *loop = s3_loop_new(ev, &o);
    assert_non_null(loop);
    return loop;
}

static void offload_all(struct s3_loop *loop, struct tjob *jobs, int *order, int *ndone)
{
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct tjob){.job = {.work = work, .done = done}, .index = i, .order = order, .ndone = ndone};
        s3_loop_offload(loop, &jobs[i].job);
    }
}

static void test_offload_on_workers(void **state)
{
    (void)state;
    main_thread = pthread_self();
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    struct s3_loop *loop = new_loop(ev, 3);
    static struct tjob jobs[JOBS];
    static int order[JOBS];
    int ndone = 0;
    offload_all(loop, jobs, order, &ndone);
    assert_int_equal(ndone, 0); /* never before s3_loop_offload returns */
    ev_run(ev, 0); /* no other watcher: returns once every job's done has run, not before */
    assert_int_equal(ndone, JOBS);
    bool seen[JOBS] = {false};
    for (int i = 0; i < JOBS; i++) {
        assert_true(jobs[i].done_on_loop);
        assert_false(pthread_equal(jobs[i].worked_on, main_thread));
        assert_false(seen[order[i]]);
        seen[order[i]] = true;
    }
    /* idle again: ev_run returns at once */
    ev_run(ev, 0);
    s3_loop_free(loop);
    ev_loop_destroy(ev);
}

static void test_offload_inline(void **state)
{
    (void)state;
    main_thread = pthread_self();
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    struct s3_loop *loop = new_loop(ev, 0);
    static struct tjob jobs[JOBS];
    static int order[JOBS];
    int ndone = 0;
    offload_all(loop, jobs, order, &ndone);
    assert_int_equal(ndone, JOBS); /* no workers: work and done ran at once, in order */
    for (int i = 0; i < JOBS; i++) {
        assert_int_equal(order[i], i);
        assert_true(jobs[i].done_on_loop);
    }
    s3_loop_free(loop);
    ev_loop_destroy(ev);
}

static void test_free_finishes_pending(void **state)
{
    (void)state;
    main_thread = pthread_self();
    struct ev_loop *ev = ev_loop_new(EVFLAG_AUTO);
    struct s3_loop *loop = new_loop(ev, 2);
    static struct tjob jobs[JOBS];
    static int order[JOBS];
    int ndone = 0;
    offload_all(loop, jobs, order, &ndone);
    s3_loop_free(loop); /* the loop never ran: free waits for the work and runs every done */
    assert_int_equal(ndone, JOBS);
    for (int i = 0; i < JOBS; i++) assert_true(jobs[i].done_on_loop);
    ev_loop_destroy(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offload_on_workers),
        cmocka_unit_test(test_offload_inline),
        cmocka_unit_test(test_free_finishes_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
