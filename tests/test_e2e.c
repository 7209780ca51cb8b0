/* test_e2e.c — compile specs, train them, and check what they learned.
 *
 * - A linear autoencoder with code size k, trained on synthetic data with a
 *   known low-rank structure, reaches a reconstruction MSE within 1 % of the
 *   PCA optimum with k components, computed independently with LAPACK.
 * - specs/fmnist_dense.ae, trained on a Fashion-MNIST subset, lowers its
 *   test MSE by a measured factor.
 * - eval's reconstruction equals decode(encode(x)) bit for bit.
 * - Training is reproducible bit for bit for a seed.
 * Models are JIT-compiled in process (f32, the default element type).
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <lapacke.h>

#include "rt.h"
#include "testutil.h"

typedef struct Trained {
    Arena *arena;
    Codegen *cg;
    const aec_model *m;
    float *params, *opt;
    void *ws;
    int batch;
} Trained;

static void model_open(Trained *t, const char *spec_text, int batch) {
    t->arena = arena_new();
    t->m = tu_jit(t->arena, spec_text, false, &t->cg);
    assert_non_null(t->m);
    t->batch = batch;
    t->params = tu_alloc(sizeof(float) * (size_t)t->m->param_count);
    t->opt = tu_alloc(sizeof(float) * (size_t)(t->m->opt_state_count + 1));
    t->ws = malloc(t->m->workspace_size(batch));
    assert_int_equal(t->m->init(t->params, t->m->train.seed), AEC_OK);
}

static void model_close(Trained *t) {
    free(t->params);
    free(t->opt);
    free(t->ws);
    cg_free(t->cg);
    arena_free(t->arena);
}

/* Epochs over x in order (the trainer shuffles; these tests need not). */
static void train_epochs(Trained *t, const float *x, int64_t n, int epochs, uint64_t *step) {
    int64_t dim = t->m->input_size;
    for (int e = 0; e < epochs; e++)
        for (int64_t i = 0; i < n; i += t->batch) {
            int bs = (int)(n - i < t->batch ? n - i : t->batch);
            float loss;
            assert_int_equal(
                t->m->train_step(t->params, t->opt, x + i * dim, NULL, bs, ++*step, &loss, t->ws),
                AEC_OK);
        }
}

static double mse(Trained *t, const float *x, int64_t n) {
    aec_data d = {.x = (void *)x, .n = n, .dim = t->m->input_size, .dtype = AEC_F32};
    double loss;
    assert_int_equal(aec_eval_data(t->m, t->params, &d, t->batch, t->ws, NULL, &loss), AEC_OK);
    return loss;
}

/* Data x = mean + U·z + noise: k strong directions (spreads 2.0, 1.7,
 * 1.4, ...) in d dimensions, plus small uniform noise in every one. */
static float *low_rank_data(int64_t n, int d, int k) {
    uint64_t s = 99;
    double *u = calloc((size_t)(d * k), sizeof *u);
    for (int i = 0; i < d * k; i++)
        u[i] = tu_rand(&s) - 0.5;
    float *x = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t r = 0; r < n; r++) {
        double z[8];
        for (int c = 0; c < k; c++) /* Box–Muller */
            z[c] = (2.0 - 0.3 * c) * sqrt(-2 * log(1 - tu_rand(&s))) * cos(2 * M_PI * tu_rand(&s));
        for (int j = 0; j < d; j++) {
            double v = 0.3 + 0.01 * j + 0.5 * (tu_rand(&s) - 0.5);
            for (int c = 0; c < k; c++)
                v += u[j * k + c] * z[c];
            x[r * d + j] = (float)v;
        }
    }
    free(u);
    return x;
}

/* The best MSE of any rank-k affine reconstruction: the mean of the
 * covariance eigenvalues past the k largest, over all d features. */
static double pca_optimum(const float *x, int64_t n, int d, int k) {
    double *mean = calloc((size_t)d, sizeof *mean), *cov = calloc((size_t)(d * d), sizeof *cov),
           *w = calloc((size_t)d, sizeof *w);
    for (int64_t r = 0; r < n; r++)
        for (int j = 0; j < d; j++)
            mean[j] += x[r * d + j] / (double)n;
    for (int64_t r = 0; r < n; r++)
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++)
                cov[i * d + j] += (x[r * d + i] - mean[i]) * (x[r * d + j] - mean[j]) / (double)n;
    assert_int_equal(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', d, cov, d, w), 0);
    double rest = 0; /* eigenvalues ascend */
    for (int i = 0; i < d - k; i++)
        rest += w[i];
    free(mean);
    free(cov);
    free(w);
    return rest / d;
}

static void test_linear_matches_pca(void **state) {
    (void)state;
    enum { N = 4000, D = 24, K = 4 };
    float *x = low_rank_data(N, D, K);
    double best = pca_optimum(x, N, D, K);
    Trained t;
    model_open(&t,
               "model linear_pca {\n input 24\n encoder { dense 4 }\n decoder { dense 24 }\n"
               " loss mse\n train { optimizer adam lr=1e-3; batch 100; seed 5 }\n}\n",
               100);
    uint64_t step = 0;
    double before = mse(&t, x, N);
    train_epochs(&t, x, N, 300, &step);
    double after = mse(&t, x, N);
    print_message(
        "linear AE: MSE %.6g before, %.6g after %lu steps; PCA optimum %.6g (ratio %.4f)\n", before,
        after, (unsigned long)step, best, after / best);
    assert_true(after >= best * 0.999); /* nothing beats PCA */
    assert_true(after <= best * 1.01);
    model_close(&t);
    free(x);
}

static const char *fmnist_path(const char *file) {
    static char path[256];
    snprintf(path, sizeof path, "/usr/share/datasets/fashion-mnist/%s", file);
    return path;
}

static char *read_spec(const char *rel) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", AEC_SOURCE_DIR, rel);
    size_t len;
    char *text = read_file_text(path, &len);
    assert_non_null(text);
    return text;
}

static void test_fmnist_dense_learns(void **state) {
    (void)state;
    aec_data train, test;
    assert_int_equal(
        aec_data_load(fmnist_path("train-images-idx3-ubyte.gz"), AEC_F32, 6000, 0, &train), 0);
    assert_int_equal(
        aec_data_load(fmnist_path("t10k-images-idx3-ubyte.gz"), AEC_F32, 1000, 0, &test), 0);
    char *spec = read_spec("specs/fmnist_dense.ae");
    Trained t;
    model_open(&t, spec, 256);
    free(spec);
    assert_int_equal(train.dim, t.m->input_size);
    double before = mse(&t, test.x, test.n);
    uint64_t step = 0;
    train_epochs(&t, train.x, train.n, 3, &step);
    double after = mse(&t, test.x, test.n);
    print_message("fmnist_dense on 6000 images, 3 epochs: test MSE %.4f -> %.4f (factor %.1f)\n",
                  before, after, before / after);
    assert_true(after < before / 4);
    assert_true(after < 0.05);

    /* eval's reconstruction is decode(encode(x)), bit for bit. */
    int64_t n = 100, dim = t.m->input_size, cs = t.m->code_size;
    float *xhat = malloc(sizeof(float) * (size_t)(n * dim)),
          *code = malloc(sizeof(float) * (size_t)(n * cs)),
          *xhat2 = malloc(sizeof(float) * (size_t)(n * dim));
    float loss;
    assert_int_equal(t.m->eval(t.params, test.x, NULL, (int)n, &loss, xhat, t.ws), AEC_OK);
    assert_int_equal(t.m->encode(t.params, test.x, code, (int)n, t.ws), AEC_OK);
    assert_int_equal(t.m->decode(t.params, code, xhat2, (int)n, t.ws), AEC_OK);
    assert_memory_equal(xhat, xhat2, sizeof(float) * (size_t)(n * dim));
    free(xhat);
    free(xhat2);
    free(code);
    model_close(&t);
    aec_data_free(&train);
    aec_data_free(&test);
}

static void test_training_is_reproducible(void **state) {
    (void)state;
    const char *spec =
        "model repro {\n input 16\n encoder { dense 8 tanh; dense 3 }\n decoder mirror\n"
        " output sigmoid\n train { optimizer adam; seed 11 }\n}\n";
    float *x = low_rank_data(256, 16, 3);
    for (int i = 0; i < 256 * 16; i++)
        x[i] = 1 / (1 + expf(-x[i]));
    Trained a, b;
    model_open(&a, spec, 32);
    model_open(&b, spec, 32);
    uint64_t sa = 0, sb = 0;
    train_epochs(&a, x, 256, 3, &sa);
    train_epochs(&b, x, 256, 3, &sb);
    assert_memory_equal(a.params, b.params, sizeof(float) * (size_t)a.m->param_count);
    model_close(&a);
    model_close(&b);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_matches_pca),
        cmocka_unit_test(test_fmnist_dense_learns),
        cmocka_unit_test(test_training_is_reproducible),
    };
    return cmocka_run_group_tests_name("e2e", tests, NULL, NULL);
}
