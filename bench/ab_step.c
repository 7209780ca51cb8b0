/* ab_step.c — one spec compiled two ways (two aec builds, or two sets of
 * options), its training steps timed against each other in one process.
 *
 * Linked against two objects of the same spec, its model renamed `va` and
 * `vb` (bench/ab.sh does that). Both start from the same init and train on
 * the same Fashion-MNIST batches, steps alternating in rounds (a round of
 * STEPS of va, then of vb), so a noisy machine disturbs both alike: it
 * prints each one's minimum and median step time over the rounds, their
 * ratios, and whether the parameters stay the same bits (two compilers that
 * should agree must; a change of summation order shows here).
 * Usage: ab_step THREADS [ROUNDS [DATA]]   (AEC pool threads; ROUNDS 20)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"
#include "pool.h"
#define BENCH_NAME "ab_step"
#define BENCH_IDX
#include "common.h"

#define STEPS 4 /* per round and build */
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

extern const aec_model va_model, vb_model;

typedef struct Run {
    const aec_model *m;
    float *params, *opt;
    void *ws;
    double *seconds; /* per round, per step */
} Run;

static void open_run(Run *r, const aec_model *m, int batch, int rounds) {
    r->m = m;
    r->params = xalloc(sizeof(float) * (size_t)m->param_count);
    r->opt = xalloc(sizeof(float) * (size_t)(m->opt_state_count + 1));
    r->ws = xalloc(m->workspace_size(batch));
    r->seconds = xalloc(sizeof(double) * (size_t)rounds);
    if (m->init(r->params, 1)) {
        fprintf(stderr, "ab_step: %s: init failed\n", m->name);
        exit(1);
    }
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1, rounds = argc > 2 ? atoi(argv[2]) : 20;
    const aec_model *a = &va_model, *b = &vb_model;
    if (a->param_count != b->param_count || a->input_size != b->input_size || a->dtype != AEC_F32 ||
        b->dtype != AEC_F32 || rounds < 2) {
        fprintf(stderr, "ab_step: the two objects are not one f32 spec (or ROUNDS < 2)\n");
        return 1;
    }
    int batch = a->train.batch, n;
    float *data = load_idx(argc > 3 ? argv[3] : DEFAULT_DATA, a->input_size, 0, &n);
    aec_pool *pool = aec_pool_new(threads);
    aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
    Run runs[2];
    open_run(&runs[0], a, batch, rounds);
    open_run(&runs[1], b, batch, rounds);
    int same_until = -1; /* the last round after which the params were the same bits */
    uint64_t step = 1;
    for (int round = 0; round < rounds; round++, step += STEPS) {
        for (int v = 0; v < 2; v++) {
            Run *r = &runs[v];
            double t0 = now();
            for (int s = 0; s < STEPS; s++) {
                const float *x = data + (size_t)(((step + (uint64_t)s) * (uint64_t)batch) %
                                                 (uint64_t)(n - batch)) *
                                            (size_t)a->input_size;
                float loss;
                if (r->m->train_step_ex(r->params, r->opt, x, NULL, batch, step + (uint64_t)s,
                                        &loss, r->ws, &exec)) {
                    fprintf(stderr, "ab_step: %s: train_step failed\n", r->m->name);
                    return 1;
                }
            }
            r->seconds[round] = (now() - t0) / STEPS;
        }
        if (same_until == round - 1 &&
            !memcmp(runs[0].params, runs[1].params, sizeof(float) * (size_t)a->param_count))
            same_until = round;
    }
    /* the first round warms caches and pages: left out */
    double min[2], med[2];
    for (int v = 0; v < 2; v++) {
        med[v] = median(runs[v].seconds + 1, rounds - 1);
        min[v] = runs[v].seconds[1]; /* sorted by median() */
    }
    printf("%d thread(s), batch %d, %d rounds of %d steps each:\n", aec_pool_threads(pool), batch,
           rounds - 1, STEPS);
    printf("  a: min %.2f ms, median %.2f ms per step\n", 1e3 * min[0], 1e3 * med[0]);
    printf("  b: min %.2f ms, median %.2f ms per step\n", 1e3 * min[1], 1e3 * med[1]);
    printf("  b/a: min %.3f, median %.3f (below 1: b is faster)\n", min[1] / min[0],
           med[1] / med[0]);
    printf("  params: %s\n", same_until == rounds - 1
                                 ? "the same bits after every round"
                                 : "differ (a summation order or a result changed)");
    aec_pool_free(pool);
    return 0;
}
