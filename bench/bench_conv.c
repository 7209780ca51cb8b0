/* bench_conv.c — times the seed's mnist_conv model that aec compiled to an object.
 *
 * Linked against the object and header of
 *   aec build specs/mnist_conv.ae --emit obj -o DIR/mnist_conv.o
 * it loads the Fashion-MNIST training images into memory, then measures
 *   - training: STEPS steps of mnist_conv_train_step at batch 256 on
 *     contiguous slices, after one warm-up step; samples/s over those steps
 *     (a full epoch takes minutes, and every step does the same work);
 *   - inference: batch-1 mnist_conv_encode latency, median of ENCODE_CALLS.
 * Threads are OpenBLAS's own (OPENBLAS_NUM_THREADS); the model starts none.
 * Prints one JSON line. Usage: bench_conv [STEPS [train-images-idx3-ubyte.gz]]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "mnist_conv.h"
#include "pool.h"
#define BENCH_NAME "bench_conv"
#define BENCH_IDX
#include "common.h"

#define BATCH 256
#define ENCODE_CALLS 100
#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

int openblas_get_num_threads(void);
char *openblas_get_corename(void);

static void check(int status, const char *what) {
    if (status) {
        fprintf(stderr, "bench_conv: %s: %s\n", what, aec_strerror(status));
        exit(1);
    }
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 4;
    if (steps < 1) steps = 1;
    int n = (steps + 1) * BATCH;
    float *data = load_idx(argc > 2 ? argv[2] : DEFAULT_DATA, MNIST_CONV_INPUT_SIZE, n, NULL);
    float *params = xalloc(MNIST_CONV_PARAM_COUNT * sizeof(float));
    float *opt = xalloc(MNIST_CONV_OPT_STATE_COUNT * sizeof(float));
    size_t ws_bytes = mnist_conv_workspace_size(BATCH);
    void *ws = xalloc(ws_bytes);
    check(mnist_conv_init(params, 1), "init");
    /* AEC_THREADS for the generated kernels (runtime/pool.c), OpenBLAS's own for --gemm blas */
    const char *env = getenv("AEC_THREADS");
    aec_pool *pool = aec_pool_new(env ? atoi(env) : 1);
    aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};

    float loss;
    check(mnist_conv_train_step_ex(params, opt, data, NULL, BATCH, 1, &loss, ws, &exec),
          "train_step"); /* warm-up */
    double sum = 0, t0 = now();
    for (int s = 1; s <= steps; s++) {
        check(mnist_conv_train_step_ex(params, opt,
                                       data + (size_t)s * BATCH * MNIST_CONV_INPUT_SIZE, NULL,
                                       BATCH, (uint64_t)s + 1, &loss, ws, &exec),
              "train_step");
        sum += loss;
    }
    double secs = now() - t0;

    float code[MNIST_CONV_CODE_SIZE];
    static double lat[ENCODE_CALLS];
    for (int i = 0; i < 10; i++)
        check(mnist_conv_encode_ex(params, data, code, 1, ws, &exec), "encode");
    for (int i = 0; i < ENCODE_CALLS; i++) {
        double t = now();
        mnist_conv_encode_ex(params, data + (size_t)(i % n) * MNIST_CONV_INPUT_SIZE, code, 1, ws,
                             &exec);
        lat[i] = now() - t;
    }

    printf("{\"impl\": \"aec\", \"model\": \"mnist_conv\", \"threads\": %d, \"blas_core\": \"%s\", "
           "\"batch\": %d, \"steps\": %d, \"seconds\": %.3f, \"samples_per_s\": %.2f, "
           "\"mean_loss\": %.6f, "
           "\"encode_us\": %.1f, \"workspace_mb\": %.1f}\n",
           aec_pool_threads(pool) > openblas_get_num_threads() ? aec_pool_threads(pool)
                                                               : openblas_get_num_threads(),
           openblas_get_corename(), BATCH, steps, secs, steps * BATCH / secs, sum / steps,
           1e6 * quantile(lat, ENCODE_CALLS, 0.5), ws_bytes / 1e6);
    free(data);
    free(params);
    free(opt);
    free(ws);
    return 0;
}
