/* ab_embed.c — a spec's embedded-weights batch-1 latency, compiled two
 * ways, timed against each other in one process.
 *
 * Linked against two objects of the same spec built with the same
 * --embed-weights file, its model renamed `va` and `vb` (bench/ab_embed.sh
 * does that). On the first CALLS Fashion-MNIST training images it times
 * batch-1 encodes, then evals (the anomaly score), alternating the builds
 * in runs of RUN calls: short enough that a disturbance of the machine hits
 * both alike, long enough that each run finds its own weights in the
 * caches again (call by call, the two builds' 4 MB of weights evicted each
 * other and the figures were 3-4x the real ones). Prints each build's
 * medians, their ratios, and whether codes and scores are the same bits.
 * Usage: ab_embed THREADS [DATA]   (THREADS > 1: a pool, runtime/pool.c)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "va.h"
#include "vb.h"
#define BENCH_NAME "ab_embed"
#define BENCH_IDX
#include "common.h"

#define CALLS 5000
#define RUN 100 /* calls of one build before the other's */
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

static double t[4][CALLS]; /* encode a, encode b, score a, score b */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: ab_embed THREADS [DATA]\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    float *data = load_idx(argc > 2 ? argv[2] : DEFAULT_DATA, VA_INPUT_SIZE, CALLS, NULL);
    void *ws[2] = {xalloc(va_workspace_size(1)), xalloc(vb_workspace_size(1))};
    aec_pool *pool = threads > 1 ? aec_pool_new(threads) : NULL;
    aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
    const aec_exec *ex = pool ? &exec : NULL;
    float code[2][VA_CODE_SIZE], loss[2][VA_N_METRICS];
    bool same = true;
    for (int r = 0; r < CALLS / RUN; r++) {
        for (int what = 0; what < 4; what++) /* encode a, b; score a, b */
            for (int q = 0; q < RUN; q++) {
                int i = r * RUN + q;
                const float *x = data + (size_t)i * VA_INPUT_SIZE;
                double t0 = now();
                if (what == 0) va_encode_ex(va_embedded_params, x, code[0], 1, ws[0], ex);
                if (what == 1) vb_encode_ex(vb_embedded_params, x, code[1], 1, ws[1], ex);
                if (what == 2) va_eval_ex(va_embedded_params, x, NULL, 1, loss[0], NULL, ws[0], ex);
                if (what == 3) vb_eval_ex(vb_embedded_params, x, NULL, 1, loss[1], NULL, ws[1], ex);
                t[what][i] = now() - t0;
            }
        same = same && !memcmp(code[0], code[1], sizeof code[0]) &&
               !memcmp(loss[0], loss[1], sizeof loss[0]);
    }
    double m[4];
    for (int w = 0; w < 4; w++)
        m[w] = 1e6 * quantile(t[w], CALLS, 0.5);
    printf("%d thread(s), batch 1, medians of %d calls each, in runs of %d:\n", threads, CALLS,
           RUN);
    printf("  encode: a %.2f us, b %.2f us, b/a %.3f\n", m[0], m[1], m[1] / m[0]);
    printf("  score:  a %.2f us, b %.2f us, b/a %.3f (below 1: b is faster)\n", m[2], m[3],
           m[3] / m[2]);
    printf("  codes and scores: %s\n", same ? "the same bits" : "they differ");
    aec_pool_free(pool);
    return 0;
}
