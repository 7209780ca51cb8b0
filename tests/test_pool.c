/* test_pool.c — the trainer's thread pool (runtime/pool.c): every task of
 * every region runs exactly once, whatever the thread count and however
 * regions follow each other (the model issues thousands per epoch, some of
 * a single task), every thread takes part, each takes its own share of a
 * region first, and a pool of one thread runs them in order. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "pool.h"

enum { MAX_TASKS = 300 };

typedef struct Region {
    atomic_int runs[MAX_TASKS]; /* how often each task ran */
    int64_t order[MAX_TASKS];   /* with one thread: the order they ran in */
    atomic_int next;
} Region;

static void count_task(void *arg, int64_t t) {
    Region *r = arg;
    atomic_fetch_add(&r->runs[t], 1);
    r->order[atomic_fetch_add(&r->next, 1)] = t;
}

static void test_every_task_once(void **state) {
    (void)state;
    static Region r;
    for (int threads = 1; threads <= 4; threads++) {
        aec_pool *p = aec_pool_new(threads);
        assert_non_null(p);
        assert_int_equal(aec_pool_threads(p), threads);
        for (int region = 0; region < 2000; region++) {
            int64_t n = 1 + (region * 7919) % MAX_TASKS;
            memset(&r, 0, sizeof r);
            aec_pool_parallel_for(p, n, count_task, &r);
            for (int64_t t = 0; t < MAX_TASKS; t++)
                assert_int_equal(atomic_load(&r.runs[t]), t < n ? 1 : 0);
            if (threads == 1)
                for (int64_t t = 0; t < n; t++)
                    assert_int_equal(r.order[t], t);
        }
        aec_pool_free(p);
    }
}

/* A region of one task per thread whose tasks wait for each other: it ends
 * only if every worker takes part — in the first region, issued before the
 * workers have started, and after each pause long enough for them to have
 * gone to sleep (a missed wake-up leaves a task waiting). A task gives up
 * after 10 s so that a failure fails rather than hangs. */
typedef struct Rendezvous {
    atomic_int arrived;
    atomic_int gave_up;
    int threads;
} Rendezvous;

static void meet_task(void *arg, int64_t t) {
    (void)t;
    Rendezvous *r = arg;
    atomic_fetch_add(&r->arrived, 1);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (atomic_load(&r->arrived) < r->threads) {
        sched_yield(); /* more threads than CPUs: let the others run */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 10) {
            atomic_fetch_add(&r->gave_up, 1);
            return;
        }
    }
}

static void test_all_threads_take_part(void **state) {
    (void)state;
    for (int threads = 2; threads <= 3; threads++) {
        aec_pool *p = aec_pool_new(threads);
        assert_non_null(p);
        for (int region = 0; region < 200; region++) {
            Rendezvous r = {.threads = threads};
            aec_pool_parallel_for(p, threads, meet_task, &r);
            assert_int_equal(atomic_load(&r.gave_up), 0);
            assert_int_equal(atomic_load(&r.arrived), threads);
            if (region % 4 == 3) { /* past the workers' spinning: they sleep */
                struct timespec pause = {0, 1000000};
                nanosleep(&pause, NULL);
            }
        }
        aec_pool_free(p);
    }
}

/* Thread i's share, tasks [i·n/T, (i+1)·n/T), runs on one thread, and
 * each share on its own (so that a region issued again finds its data in
 * that core's cache): tasks of 25 ms, 4 per thread, after a region that
 * leaves the workers awake. With one shared queue the shares would be
 * dealt out alternately. One task of a share may be taken by a thread
 * that fell behind by a task's length (the others steal what is left). */
typedef struct Owners {
    pthread_t ran_on[16];
} Owners;

static void owner_task(void *arg, int64_t t) {
    Owners *o = arg;
    o->ran_on[t] = pthread_self();
    struct timespec pause = {0, 25000000};
    nanosleep(&pause, NULL);
}

static void test_own_share_first(void **state) {
    (void)state;
    for (int threads = 2; threads <= 3; threads++) {
        aec_pool *p = aec_pool_new(threads);
        assert_non_null(p);
        static Region warm;
        memset(&warm, 0, sizeof warm);
        aec_pool_parallel_for(p, 64, count_task, &warm);
        Owners o;
        memset(&o, 0, sizeof o);
        int n = 4 * threads;
        aec_pool_parallel_for(p, n, owner_task, &o);
        for (int i = 0; i < threads; i++) {
            pthread_t first = o.ran_on[n * i / threads];
            int same = 0;
            for (int t = n * i / threads; t < n * (i + 1) / threads; t++)
                same += pthread_equal(o.ran_on[t], first) != 0;
            assert_true(same >= 3);
            for (int j = 0; j < i; j++)
                assert_false(pthread_equal(o.ran_on[n * j / threads], first));
        }
        aec_pool_free(p);
    }
}

/* No pool (NULL) is one thread too: an embedder may pass it. */
static void test_null_pool(void **state) {
    (void)state;
    static Region r;
    memset(&r, 0, sizeof r);
    aec_pool_parallel_for(NULL, 5, count_task, &r);
    for (int64_t t = 0; t < 5; t++)
        assert_int_equal(r.order[t], t);
    assert_int_equal(aec_pool_threads(NULL), 1);
    assert_true(aec_online_cpus() >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_task_once),
        cmocka_unit_test(test_all_threads_take_part),
        cmocka_unit_test(test_own_share_first),
        cmocka_unit_test(test_null_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
