/* pool.c — the trainer's threads: a fixed pool that runs a model's
 * parallel-for (aec_exec.parallel_for, runtime/aec.h).
 *
 * Takes a thread count once; then each parallel_for(pool, n, fn, arg) runs
 * fn(arg, 0..n−1) on the caller and the pool's workers and returns when all
 * n are done. Which thread runs which task does not matter: the model splits
 * its work into a grid that does not depend on the thread count, so results
 * are the same bits with any pool (or none). It matters to the caches:
 * thread i (the caller is 0) first takes the tasks of its own share,
 * [i·n/T, (i+1)·n/T), so a region issued again — the next batch-1 encode,
 * the next training step — finds its share's data in its core's L2; then
 * it takes what is left of the others' shares, so a thread that wakes
 * late holds nobody up.
 *
 * Workers spin briefly for the next region (a training step issues one
 * every few microseconds), then sleep on a condition variable. Nothing is
 * allocated after aec_pool_new.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "pool.h"

#include "aec.h"

enum { SPIN_ROUNDS = 20000 }; /* about 50-100 µs of polling before sleeping */

/* One thread's share of the current region: (generation << 32) | its next
 * task, a line of its own (the owner takes from it at every task). */
typedef struct Share {
    _Alignas(64) atomic_ullong next;
} Share;

typedef struct Worker {
    struct aec_pool *pool;
    int index; /* 1.. threads − 1: its share */
} Worker;

struct aec_pool {
    int threads; /* including the caller */
    pthread_t *workers;
    Worker *worker_args; /* each worker's pool and index */
    Share *shares;       /* threads of them */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    /* the current region */
    void (*fn)(void *arg, int64_t task);
    void *arg;
    /* (generation << 32) | the region's task count: a worker late from the
     * last region reads a limit it can tell is not its own */
    atomic_ullong limit;
    atomic_llong finished;  /* tasks done */
    atomic_uint generation; /* bumped for each region; workers wait for a change */
    atomic_int sleepers;
    atomic_bool stop;
};

/* The first task of share i of n tasks over t threads. */
static int64_t share_start(int64_t n, int i, int t) {
    return n * i / t;
}

/* Take and run tasks of region `gen` until none is left: share `self`
 * first, then the others' in turn. A task is claimed only while its share
 * has some left and carries this generation, so fn and arg are this
 * region's (the caller waits for all of them) and a worker late from the
 * last region takes nothing of the next. */
static void run_region(aec_pool *p, unsigned gen, int self) {
    int64_t done = 0;
    unsigned long long limit = atomic_load_explicit(&p->limit, memory_order_acquire);
    if ((unsigned)(limit >> 32) != gen) return; /* that region is over */
    int64_t n = (int64_t)(limit & 0xffffffffu);
    for (int q = 0; q < p->threads; q++) {
        int i = (self + q) % p->threads;
        unsigned long long end = (unsigned long long)share_start(n, i + 1, p->threads);
        atomic_ullong *next = &p->shares[i].next;
        unsigned long long v = atomic_load_explicit(next, memory_order_acquire);
        while ((unsigned)(v >> 32) == gen && (v & 0xffffffffu) < end) {
            if (!atomic_compare_exchange_weak_explicit(next, &v, v + 1, memory_order_acq_rel,
                                                       memory_order_acquire))
                continue;
            p->fn(p->arg, (int64_t)(v & 0xffffffffu));
            done++;
            v = atomic_load_explicit(next, memory_order_acquire);
        }
    }
    if (done) atomic_fetch_add_explicit(&p->finished, done, memory_order_release);
}

static void *worker(void *arg) {
    const Worker *w = arg;
    aec_pool *p = w->pool;
    /* generation 0 is the pool's start: a region issued before this thread
     * ran is one it has not seen, and joins */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ROUNDS)
            spins++;
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        run_region(p, g, w->index);
    }
}

aec_pool *aec_pool_new(int threads) {
    if (threads < 1) threads = 1;
    aec_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    p->worker_args = calloc((size_t)threads, sizeof *p->worker_args);
    p->shares = aligned_alloc(64, (size_t)threads * sizeof *p->shares);
    if (!p->workers || !p->worker_args || !p->shares) {
        free(p->workers);
        free(p->worker_args);
        free(p->shares);
        free(p);
        return NULL;
    }
    for (int i = 0; i < threads; i++)
        atomic_init(&p->shares[i].next, 0);
    for (int i = 1; i < threads; i++) {
        p->worker_args[i] = (Worker){p, i};
        if (pthread_create(&p->workers[i], NULL, worker, &p->worker_args[i])) {
            p->threads = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

int aec_pool_threads(const aec_pool *p) {
    return p ? p->threads : 1;
}

void aec_pool_parallel_for(void *pool, int64_t ntasks, void (*fn)(void *arg, int64_t task),
                           void *arg) {
    aec_pool *p = pool;
    /* (a count past 32 bits, which no grid reaches, runs here alone) */
    if (!p || p->threads == 1 || ntasks <= 1 || ntasks > 0xffffffffLL) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    unsigned gen = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->limit, (unsigned long long)gen << 32 | (unsigned long long)ntasks,
                          memory_order_release);
    for (int i = 0; i < p->threads; i++)
        atomic_store_explicit(&p->shares[i].next,
                              (unsigned long long)gen << 32 |
                                  (unsigned long long)share_start(ntasks, i, p->threads),
                              memory_order_release);
    /* sequentially consistent, not just release: the load of sleepers must
     * not pass this store, or a worker that has just counted itself asleep
     * and still reads the old generation would sleep through the region
     * (the worker does the mirror image: sleepers, then generation) */
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    run_region(p, gen, 0);
    while (atomic_load_explicit(&p->finished, memory_order_acquire) < ntasks) {
    }
}

void aec_pool_free(aec_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p->worker_args);
    free(p->shares);
    free(p);
}

int aec_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static aec_pool *trainer_pool;
static aec_exec trainer_exec;

const aec_exec *aec_trainer_set_threads(int threads) {
    if (threads > 1 && !trainer_pool) {
        trainer_pool = aec_pool_new(threads);
        trainer_exec = (aec_exec){.parallel_for = aec_pool_parallel_for, .pool = trainer_pool};
    }
    return aec_trainer_exec();
}

const aec_exec *aec_trainer_exec(void) {
    return trainer_pool ? &trainer_exec : NULL;
}
