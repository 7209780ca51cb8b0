/* test_pool.c — the trainer's thread pool (runtime/pool.c): every task of
 * every region runs exactly once, whatever the thread count and however
 * regions follow each other (the model issues thousands per epoch, some of
 * a single task), and a pool of one thread runs them in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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
        cmocka_unit_test(test_null_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
