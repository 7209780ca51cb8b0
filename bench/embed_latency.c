/* embed_latency.c — batch-1 latency of the model with its weights compiled in.
 *
 * Linked against the object and header of
 *   aec build specs/fmnist_dense.ae --emit obj --embed-weights W -o DIR/fmnist_dense.o
 * (the anomaly-detection use of examples/embed: no weights to pass or load),
 * it times, on the first 5000 Fashion-MNIST training images in turn, after
 * 200 warm-up calls:
 *   - fmnist_dense_encode_embedded, one image: median and 99th percentile;
 *   - fmnist_dense_eval_embedded, one image: its reconstruction error (the
 *     anomaly score), median;
 * each called as its _ex twin with fmnist_dense_embedded_params (which is
 * what _embedded does, with no aec_exec).
 * As bench_aec.c times fmnist_dense_encode, so the figures compare. With
 * AEC_THREADS > 1 the calls are their _ex twins given the embedded weights
 * and a pool of that many threads (runtime/pool.c): the same path, its
 * column tasks on the threads. Prints one JSON line.
 * Usage: embed_latency [train-images-idx3-ubyte.gz]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "fmnist_dense.h"
#include "pool.h"
#define BENCH_NAME "embed_latency"
#define BENCH_IDX
#include "common.h"

#define CALLS 5000
#define WARMUP 200
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

int main(int argc, char **argv) {
    float *data = load_idx(argc > 1 ? argv[1] : DEFAULT_DATA, FMNIST_DENSE_INPUT_SIZE, CALLS, NULL);
    void *ws = malloc(fmnist_dense_workspace_size(1));
    const char *env = getenv("AEC_THREADS");
    int threads = env ? atoi(env) : 1;
    aec_pool *pool = threads > 1 ? aec_pool_new(threads) : NULL;
    aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
    const aec_exec *ex = pool ? &exec : NULL;
    const float *w = fmnist_dense_embedded_params;
    float code[FMNIST_DENSE_CODE_SIZE], loss[FMNIST_DENSE_N_METRICS];
    static double enc[CALLS], score[CALLS];
    for (int i = 0; i < WARMUP; i++) {
        int st = fmnist_dense_encode_ex(w, data, code, 1, ws, ex);
        if (!st) st = fmnist_dense_eval_ex(w, data, NULL, 1, loss, NULL, ws, ex);
        if (st) {
            fprintf(stderr, "embed_latency: %s\n", aec_strerror(st));
            return 1;
        }
    }
    for (int i = 0; i < CALLS; i++) {
        const float *x = data + (size_t)i * FMNIST_DENSE_INPUT_SIZE;
        double t0 = now();
        fmnist_dense_encode_ex(w, x, code, 1, ws, ex); /* = _embedded with ex NULL */
        enc[i] = now() - t0;
    }
    for (int i = 0; i < CALLS; i++) {
        const float *x = data + (size_t)i * FMNIST_DENSE_INPUT_SIZE;
        double t0 = now();
        fmnist_dense_eval_ex(w, x, NULL, 1, loss, NULL, ws, ex);
        score[i] = now() - t0;
    }
    printf("{\"impl\": \"aec-embedded\", \"threads\": %d, \"calls\": %d, \"embedded_encode_us\": "
           "%.2f, "
           "\"embedded_encode_p99_us\": %.2f, \"embedded_score_us\": %.2f}\n",
           threads, CALLS, 1e6 * quantile(enc, CALLS, 0.5), 1e6 * quantile(enc, CALLS, 0.99),
           1e6 * quantile(score, CALLS, 0.5));
    aec_pool_free(pool);
    free(ws);
    free(data);
    return 0;
}
