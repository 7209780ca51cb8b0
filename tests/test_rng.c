/* test_rng.c — the counter-based generator and the shuffle.
 *
 * The generator is shared bit for bit with generated code, so its values are
 * pinned against numbers computed independently (Python, integer arithmetic
 * mod 2^64); aec_mix64(0) is also splitmix64's published first output for
 * seed 0. The shuffle's exact permutation is pinned the same way, since
 * checkpoints resume by recomputing it.
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
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static void test_mix64_known_values(void **state) {
    (void)state;
    assert_true(aec_mix64(0) == 0xe220a8397b1dcdafull);
    assert_true(aec_mix64(1) == 0x910a2dec89025cc1ull);
    assert_true(aec_mix64(0xffffffffffffffffull) == 0xe4d971771b652c20ull);
    assert_true(aec_mix64(0x123456789abcdef0ull) == 0x161922c645ce50e8ull);
}

static void test_rng_composition(void **state) {
    (void)state;
    assert_true(aec_rng_u64(42, AEC_STREAM_SHUFFLE, 7) == 0x965b1ddfbb3b5c2bull);
    assert_true(aec_rng_u64(42, AEC_STREAM_SHUFFLE, 7) ==
                aec_mix64(aec_mix64(aec_mix64(42) ^ AEC_STREAM_SHUFFLE) ^ 7));
    /* (u >> 11) * 2^-53 is exact in a double. */
    assert_true(aec_rng_uniform(42, AEC_STREAM_SHUFFLE, 7) == 0.5873278304309059);
    assert_true(aec_rng_uniform(42, AEC_STREAM_SHUFFLE, 7) ==
                (double)(0x965b1ddfbb3b5c2bull >> 11) / 9007199254740992.0);
}

/* Mean, variance and ten equal bins of 100k draws; tolerances are > 5 sigma. */
static void test_uniform_sanity(void **state) {
    (void)state;
    enum { N = 100000 };
    int bins[10] = {0};
    double sum = 0, sum2 = 0;
    for (uint64_t i = 0; i < N; i++) {
        double u = aec_rng_uniform(123, 9, i);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        sum2 += u * u;
        bins[(int)(u * 10)]++;
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    assert_true(fabs(mean - 0.5) < 0.005);
    assert_true(fabs(var - 1.0 / 12) < 0.002);
    for (int b = 0; b < 10; b++)
        assert_true(abs(bins[b] - N / 10) < 500);
    /* Neighbouring seeds and streams are unrelated, not shifted copies. */
    int same = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        same += aec_rng_u64(1, 0, i) == aec_rng_u64(2, 0, i);
        same += aec_rng_u64(1, 0, i + 1) == aec_rng_u64(1, 1, i);
    }
    assert_int_equal(same, 0);
}

static void iota(int64_t *idx, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
}

static void test_shuffle_pinned(void **state) {
    (void)state;
    int64_t idx[10];
    const int64_t shuff[10] = {8, 4, 0, 2, 1, 6, 3, 9, 5, 7};
    const int64_t valid[10] = {4, 7, 6, 1, 8, 2, 9, 5, 3, 0};
    iota(idx, 10);
    aec_shuffle(idx, 10, 1, AEC_STREAM_SHUFFLE);
    assert_memory_equal(idx, shuff, sizeof idx);
    iota(idx, 10);
    aec_shuffle(idx, 10, 1, AEC_STREAM_VALID);
    assert_memory_equal(idx, valid, sizeof idx);
}

static void test_shuffle_permutation_reproducible(void **state) {
    (void)state;
    enum { N = 1000 };
    static int64_t a[N], b[N], c[N];
    iota(a, N);
    iota(b, N);
    iota(c, N);
    aec_shuffle(a, N, 5, AEC_STREAM_SHUFFLE + 3);
    aec_shuffle(b, N, 5, AEC_STREAM_SHUFFLE + 3);
    aec_shuffle(c, N, 5, AEC_STREAM_SHUFFLE + 4);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    static char seen[N];
    memset(seen, 0, sizeof seen);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        assert_true(a[i] >= 0 && a[i] < N);
        assert_int_equal(seen[a[i]], 0);
        seen[a[i]] = 1;
        moved += a[i] != i;
    }
    assert_true(moved > N * 9 / 10);
    /* Degenerate sizes are left alone. */
    int64_t one = 0;
    aec_shuffle(&one, 1, 5, 0);
    aec_shuffle(NULL, 0, 5, 0);
    assert_int_equal(one, 0);
}

/* Every position is equally likely for every element (chi-square-ish). */
static void test_shuffle_uniform(void **state) {
    (void)state;
    enum { N = 5, TRIALS = 50000 };
    int count[N][N] = {{0}};
    for (int t = 0; t < TRIALS; t++) {
        int64_t idx[N];
        iota(idx, N);
        aec_shuffle(idx, N, (uint64_t)t, AEC_STREAM_SHUFFLE);
        for (int i = 0; i < N; i++)
            count[idx[i]][i]++;
    }
    for (int e = 0; e < N; e++)
        for (int i = 0; i < N; i++)
            assert_true(abs(count[e][i] - TRIALS / N) < 450);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mix64_known_values),
        cmocka_unit_test(test_rng_composition),
        cmocka_unit_test(test_uniform_sanity),
        cmocka_unit_test(test_shuffle_pinned),
        cmocka_unit_test(test_shuffle_permutation_reproducible),
        cmocka_unit_test(test_shuffle_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
