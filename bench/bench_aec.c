/* bench_aec.c — times the fmnist_dense model that aec compiled to an object.
 *
 * Linked against the object and header of
 *   aec build specs/fmnist_dense.ae --emit obj -o DIR/fmnist_dense.o
 * it loads the Fashion-MNIST training images into memory, then measures
 *   - training: one epoch of fmnist_dense_train_step over the 60000 images at
 *     batch 256 (contiguous slices, last partial batch included), after one
 *     warm-up step; 3 epochs, the median reported in samples/s (and per second
 *     of CPU time, which other load on the machine disturbs less);
 *   - inference: batch-1 fmnist_dense_encode latency, median of 5000 calls.
 * Threads: AEC_THREADS (default 1) for the generated kernels, through the
 * runtime's pool (runtime/pool.c) and the _ex entry points; OpenBLAS's own
 * (OPENBLAS_NUM_THREADS) for an object built with --gemm blas. The model
 * starts none.
 * Prints one JSON line. Usage: bench_aec [train-images-idx3-ubyte.gz]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "fmnist_dense.h"
#include "pool.h"
#define BENCH_NAME "bench_aec"
#define BENCH_IDX
#include "common.h"

#define BATCH 256
#define EPOCHS 3
#define ENCODE_CALLS 5000
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* OpenBLAS's own queries (declared here to avoid depending on its cblas.h). */
int openblas_get_num_threads(void);
char *openblas_get_corename(void);

static void check(int status, const char *what) {
    if (status) {
        fprintf(stderr, "bench_aec: %s: %s\n", what, aec_strerror(status));
        exit(1);
    }
}

int main(int argc, char **argv) {
    int n;
    float *data = load_idx(argc > 1 ? argv[1] : DEFAULT_DATA, FMNIST_DENSE_INPUT_SIZE, 0, &n);
    float *params = xalloc(FMNIST_DENSE_PARAM_COUNT * sizeof(float));
    float *opt = xalloc(FMNIST_DENSE_OPT_STATE_COUNT * sizeof(float));
    size_t ws_bytes = fmnist_dense_workspace_size(BATCH);
    if (fmnist_dense_workspace_size(1) > ws_bytes) ws_bytes = fmnist_dense_workspace_size(1);
    void *ws = xalloc(ws_bytes);
    check(fmnist_dense_init(params, 1), "init");
    const char *env = getenv("AEC_THREADS");
    int threads = env ? atoi(env) : 1;
    aec_pool *pool = aec_pool_new(threads);
    aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};

    /* Training: one warm-up step, then EPOCHS timed epochs. */
    uint64_t step = 1;
    float loss;
    check(fmnist_dense_train_step_ex(params, opt, data, NULL, BATCH, step++, &loss, ws, &exec),
          "train_step");
    double epoch_s[EPOCHS], cpu_s[EPOCHS], epoch_loss = 0;
    for (int e = 0; e < EPOCHS; e++) {
        double sum = 0, t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < n; i += BATCH) {
            int b = n - i < BATCH ? n - i : BATCH;
            check(fmnist_dense_train_step_ex(params, opt,
                                             data + (size_t)i * FMNIST_DENSE_INPUT_SIZE, NULL, b,
                                             step++, &loss, ws, &exec),
                  "train_step");
            sum += (double)loss * b;
        }
        epoch_s[e] = now() - t0;
        cpu_s[e] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        epoch_loss = sum / n;
    }
    double sps[EPOCHS], cpu_sps[EPOCHS]; /* per second of wall clock, of CPU time */
    for (int e = 0; e < EPOCHS; e++)
        sps[e] = n / epoch_s[e], cpu_sps[e] = n / cpu_s[e];

    /* Inference: batch-1 encode latency. */
    float code[FMNIST_DENSE_CODE_SIZE];
    static double lat[ENCODE_CALLS];
    for (int i = 0; i < 200; i++)
        check(fmnist_dense_encode_ex(params, data, code, 1, ws, &exec), "encode");
    for (int i = 0; i < ENCODE_CALLS; i++) {
        const float *x = data + (size_t)(i % n) * FMNIST_DENSE_INPUT_SIZE;
        double t0 = now();
        fmnist_dense_encode_ex(params, x, code, 1, ws, &exec);
        lat[i] = now() - t0;
    }

    printf("{\"impl\": \"aec\", \"threads\": %d, \"openblas_threads\": %d, \"blas_core\": \"%s\", "
           "\"samples\": %d, \"batch\": %d, "
           "\"epoch_s\": [%.4f, %.4f, %.4f], \"samples_per_s\": %.1f, \"samples_per_cpu_s\": %.1f, "
           "\"last_epoch_loss\": %.6f, \"encode_us\": %.2f}\n",
           aec_pool_threads(pool), openblas_get_num_threads(), openblas_get_corename(), n, BATCH,
           epoch_s[0], epoch_s[1], epoch_s[2], median(sps, EPOCHS), median(cpu_sps, EPOCHS),
           epoch_loss, 1e6 * median(lat, ENCODE_CALLS));
    free(data);
    free(params);
    free(opt);
    free(ws);
    aec_pool_free(pool);
    return 0;
}
