/* tsan.c — an embedded model called from many threads at once (run by
 * tests/e2e/tsan.sh under ThreadSanitizer).
 *
 * Usage: tsan IMAGES N THREADS REPEATS. Loads N test images, computes
 * every batch's code (encode) and loss and reconstruction (eval) in one
 * thread, then has THREADS threads do the same calls concurrently, each with
 * its own workspace and outputs, REPEATS times, interleaved in a different
 * order per thread; each thread's results must equal the first thread's bit
 * for bit. Odd threads call through the ABI's parallel-for hook (aec_exec),
 * which runs each call's tasks on two more threads. The object has no writable data (emit.sh
 * checks), so the only state is what the caller passes: TSan sees the harness, the runtime's
 * loader, the allocator and the BLAS calls; the generated code itself is not
 * instrumented. Prints `ok`/`not ok` lines.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm.h"
#include "rt.h"

enum { BATCH = 50, MAX_THREADS = 64 };

static aec_data data;
static int64_t nbatch, repeats;
static float *ref_code, *ref_xhat, *ref_loss;

typedef struct Job {
    int id;
    float *code, *xhat, *loss;
    int status;
} Job;

/* The ABI's parallel-for hook (aec_exec): each call's tasks split over two
 * threads of its own, so the model's tasks run concurrently inside every
 * caller's call as well. */
typedef struct Span {
    aec_task_fn fn;
    void *arg;
    int64_t from, to;
} Span;

static long hook_calls, hook_tasks; /* counted, so the hook is known to have run */

static void *run_span(void *p) {
    Span *s = p;
    for (int64_t t = s->from; t < s->to; t++)
        s->fn(s->arg, t);
    __atomic_fetch_add(&hook_tasks, (long)(s->to - s->from), __ATOMIC_RELAXED);
    return NULL;
}

static void two_threads(void *pool, int64_t ntasks, aec_task_fn fn, void *arg) {
    (void)pool;
    __atomic_fetch_add(&hook_calls, 1, __ATOMIC_RELAXED);
    Span half[2] = {{fn, arg, 0, ntasks / 2}, {fn, arg, ntasks / 2, ntasks}};
    pthread_t t;
    pthread_create(&t, NULL, run_span, &half[1]);
    run_span(&half[0]);
    pthread_join(t, NULL);
}

static const aec_exec exec2 = {.parallel_for = two_threads};

/* Batch b of the data: its rows, count and outputs' offsets; through the
 * _embedded entry points, or (hook) the model table's _ex ones with the
 * parallel-for hook. */
static int run_batch(int64_t b, void *ws, float *code, float *xhat, float *loss, int hook) {
    int64_t first = b * BATCH;
    int bs = (int)(data.n - first < BATCH ? data.n - first : BATCH);
    const float *x = (const float *)data.x + first * FMNIST_DENSE_INPUT_SIZE;
    float *c = code + first * FMNIST_DENSE_CODE_SIZE, *r = xhat + first * FMNIST_DENSE_INPUT_SIZE;
    const aec_model *m = &fmnist_dense_model;
    if (hook) {
        int st = m->encode_ex(m->embedded_params, x, c, bs, ws, &exec2);
        return st ? st : m->eval_ex(m->embedded_params, x, NULL, bs, loss + b, r, ws, &exec2);
    }
    int st = fmnist_dense_encode_embedded(x, c, bs, ws);
    return st ? st : fmnist_dense_eval_embedded(x, NULL, bs, loss + b, r, ws);
}

static void *worker(void *arg) {
    Job *j = arg;
    void *ws = aec_alloc(fmnist_dense_workspace_size(BATCH));
    if (!ws) {
        j->status = AEC_ENOMEM;
        return NULL;
    }
    for (int64_t r = 0; r < repeats && !j->status; r++)
        for (int64_t k = 0; k < nbatch && !j->status; k++) {
            /* Every batch once per repeat, in an order of its own: rotated by
             * the thread and repeat, and backwards in odd threads. */
            int64_t at = (k + 7 * j->id + 3 * r) % nbatch;
            int64_t b = j->id % 2 ? nbatch - 1 - at : at;
            j->status = run_batch(b, ws, j->code, j->xhat, j->loss, j->id % 2);
        }
    free(ws);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: tsan IMAGES N THREADS REPEATS\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    repeats = atoll(argv[4]);
    if (threads < 1 || threads > MAX_THREADS) return 2;
    if (aec_data_load(argv[1], AEC_F32, atoll(argv[2]), 0, &data)) return 1;
    nbatch = (data.n + BATCH - 1) / BATCH;
    size_t ncode = (size_t)data.n * FMNIST_DENSE_CODE_SIZE,
           nx = (size_t)data.n * FMNIST_DENSE_INPUT_SIZE;

    ref_code = calloc(ncode, sizeof(float));
    ref_xhat = calloc(nx, sizeof(float));
    ref_loss = calloc((size_t)nbatch, sizeof(float));
    void *ws = aec_alloc(fmnist_dense_workspace_size(BATCH));
    int st = 0;
    for (int64_t b = 0; b < nbatch && !st; b++)
        st = run_batch(b, ws, ref_code, ref_xhat, ref_loss, 0);
    free(ws);
    printf("%s - one thread encodes and evaluates %lld images\n", st ? "not ok" : "ok",
           (long long)data.n);

    Job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (Job){.id = t,
                        .code = calloc(ncode, sizeof(float)),
                        .xhat = calloc(nx, sizeof(float)),
                        .loss = calloc((size_t)nbatch, sizeof(float))};
        pthread_create(&tid[t], NULL, worker, &jobs[t]);
    }
    int bad = 0, failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        failed += jobs[t].status != 0;
        bad += memcmp(jobs[t].code, ref_code, ncode * sizeof(float)) != 0 ||
               memcmp(jobs[t].xhat, ref_xhat, nx * sizeof(float)) != 0 ||
               memcmp(jobs[t].loss, ref_loss, (size_t)nbatch * sizeof(float)) != 0;
        free(jobs[t].code);
        free(jobs[t].xhat);
        free(jobs[t].loss);
    }
    printf("%s - %d threads x %lld repeats (the odd ones through the parallel-for hook): every "
           "call returned AEC_OK\n",
           failed ? "not ok" : "ok", threads, (long long)repeats);
    /* A comment, not a check: whether the model's code hands tasks to the
     * hook is codegen's choice (with 0, the odd threads still ran the _ex
     * entry points with an exec). */
    printf("# the parallel-for hook ran %ld tasks in %ld calls\n", hook_tasks, hook_calls);
    printf("%s - every thread's codes, reconstructions and losses equal one thread's, bit for bit "
           "(%d differ)\n",
           bad ? "not ok" : "ok", bad);
    free(ref_code);
    free(ref_xhat);
    free(ref_loss);
    aec_data_free(&data);
    return failed || bad;
}
