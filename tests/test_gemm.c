/* test_gemm.c — the generated GEMM kernels (compiler/gemm.c) against
 * OpenBLAS's cblas_sgemm/dgemm: every transposition, f32 and f64, the edge
 * shapes (M, N, K among 1, 3, 17, 31, 64, 255, 256, 784), a batch-sized
 * dimension, accumulation into C, B read in place (a convolution's
 * columns), the same bits at 1, 2 and 3 threads, and the tiling's rules;
 * and the embedded batch-1 kernel (gemm_sparse_rows) against C's fma.
 * An element may differ from BLAS's by what two K-term sums can: each is
 * within K·ε·Σ|a||b| of the exact one.
 */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aec.h" /* compiler/aec.h: f16_from_double */
#include "gemm_gen.h"
#include "gemm_jit.h"
#include "pool.h"

typedef struct Exec { /* aec_exec's layout */
    void (*parallel_for)(void *, int64_t, void (*)(void *, int64_t), void *);
    void *pool;
    int64_t row_offset, reserved[4];
} Exec;

static double uniform(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

typedef struct Case {
    long m, n, k;  /* as run */
    GemmSpec spec; /* as compiled: a dimension may be −r (r·batch) */
    long batch;
} Case;

static void *values(long count, bool f64, uint64_t *seed) {
    void *p = aligned_alloc(64, ((size_t)count * 8 + 64) / 64 * 64);
    for (long i = 0; i < count; i++) {
        double v = uniform(seed);
        if (f64)
            ((double *)p)[i] = v;
        else
            ((float *)p)[i] = (float)v;
    }
    return p;
}
static double get(const void *p, bool f64, long i) {
    return f64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

/* Runs one case through fn and BLAS; returns the worst error over its bound. */
static double check_case(const Case *c, gemm_fn fn, GemmTarget t, const Exec *exec, void **c_out) {
    const GemmSpec *s = &c->spec;
    bool f64 = s->f64;
    uint64_t seed =
        (uint64_t)(c->m * 1000003 + c->n * 1009 + c->k) ^ (s->ta ? 7 : 0) ^ (s->tb ? 11 : 0);
    void *a = values(c->m * c->k, f64, &seed), *b = values(c->k * c->n, f64, &seed);
    void *out = values(c->m * c->n, f64, &seed), *ref = malloc((size_t)(c->m * c->n) * 8);
    memcpy(ref, out, (size_t)(c->m * c->n) * (f64 ? 8 : 4));
    long per_batch, fixed;
    gemm_pack_elems(s, t, &per_batch, &fixed);
    assert_true(per_batch >= 0);
    void *pack = aligned_alloc(64, ((size_t)(per_batch * c->batch + fixed) * 8 + 64) / 64 * 64);
    fn(a, b, out, c->batch, pack, exec, NULL, NULL);
    int lda = s->ta ? (int)c->m : (int)c->k, ldb = s->tb ? (int)c->k : (int)c->n;
    double beta = s->accumulate ? 1 : 0;
    if (f64)
        cblas_dgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, (int)c->m, (int)c->n, (int)c->k, 1, a, lda,
                    b, ldb, beta, ref, (int)c->n);
    else
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, (int)c->m, (int)c->n, (int)c->k, 1, a, lda,
                    b, ldb, (float)beta, ref, (int)c->n);
    double eps = f64 ? 2.3e-16 : 1.2e-7, worst = 0;
    for (long i = 0; i < c->m; i++)
        for (long j = 0; j < c->n; j++) {
            double abs_sum = 0;
            for (long q = 0; q < c->k; q++) {
                double av = get(a, f64, s->ta ? q * c->m + i : i * c->k + q);
                double bv = get(b, f64, s->tb ? j * c->k + q : q * c->n + j);
                abs_sum += fabs(av * bv);
            }
            double bound = 2.0 * (double)(c->k + 2) * eps * (abs_sum + 1) + 1e-30;
            double err = fabs(get(out, f64, i * c->n + j) - get(ref, f64, i * c->n + j));
            if (err / bound > worst) worst = err / bound;
        }
    free(a);
    free(b);
    free(ref);
    free(pack);
    if (c_out)
        *c_out = out;
    else
        free(out);
    return worst;
}

/* Compiles every case into one module for `cpu` (NULL: the host), with
 * the tiles of `pipes` FMA pipes (0: the CPU's own), and runs them. */
static void run_cases(Case *cases, int n, const char *cpu, int pipes) {
    GemmJit j;
    gemm_jit_begin(&j, cpu);
    if (pipes) j.target.fma_pipes = pipes;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        cases[i].spec.batch_hint = 256;
        gemm_jit_add(&j, &cases[i].spec, name);
    }
    assert_int_equal(gemm_jit_finish(&j), 0);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "g%d", i);
        gemm_fn fn = gemm_jit_lookup(&j, name);
        assert_non_null(fn);
        double worst = check_case(&cases[i], fn, j.target, NULL, NULL);
        if (worst > 1) {
            const GemmSpec *s = &cases[i].spec;
            printf("%s %c%c%s %ldx%ldx%ld: error %.2f x its bound\n", s->f64 ? "f64" : "f32",
                   s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', s->accumulate ? " +=" : "", cases[i].m,
                   cases[i].n, cases[i].k, worst);
            failed++;
        }
    }
    gemm_jit_end(&j);
    assert_int_equal(failed, 0);
}

static Case fixed_case(long m, long n, long k, bool ta, bool tb, bool f64, bool acc) {
    return (Case){
        m, n, k, {.m = m, .n = n, .k = k, .ta = ta, .tb = tb, .f64 = f64, .accumulate = acc}, 1};
}

/* The host's tiles and, with AVX-512, the other FMA pipe count's too
 * (16 × 1 first for one pipe, 6 × 4 for two: gemm.c). */
static void run_host_tiles(Case *cases, int n) {
    run_cases(cases, n, NULL, 0);
    GemmTarget host = gemm_target(NULL, NULL, NULL);
    if (host.vector_bits == 512) run_cases(cases, n, NULL, host.fma_pipes == 1 ? 2 : 1);
}

/* Every transposition and both types on shapes with every kind of edge. */
static void test_edges(void **state) {
    (void)state;
    static const long sizes[] = {1, 3, 17, 31, 64, 255, 256, 784};
    Case cases[512];
    int n = 0;
    uint64_t seed = 42;
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 4; t++)
            for (int r = 0; r < 12;
                 r++) { /* shapes drawn from the sizes, the large ones kept rare */
                long d[3];
                for (int q = 0; q < 3; q++) {
                    int pick = (int)((uniform(&seed) + 0.5) * 8);
                    if (pick > 5 && (uniform(&seed) + 0.5) < 0.6) pick -= 3;
                    d[q] = sizes[pick];
                }
                cases[n++] = fixed_case(d[0], d[1], d[2], t & 1, t & 2, f, r % 5 == 4);
                cases[n - 1].spec.b_in_place = r % 3 == 1; /* B read in place (not with tb) */
            }
    run_host_tiles(cases, n);
}

/* The specs' own shapes (fmnist_dense's forward, dW and dX products) and a
 * dimension that is the batch: m (forward, dX) or k (dW) as r·batch. */
static void test_model_shapes(void **state) {
    (void)state;
    Case cases[] = {
        fixed_case(256, 512, 784, false, true, false, false),
        fixed_case(512, 784, 256, true, false, false, false),
        fixed_case(256, 784, 512, false, false, false, false),
        fixed_case(256, 32, 128, false, true, false, false),
        {100, 128, 512, {.m = -1, .n = 128, .k = 512, .tb = true}, 100},
        {2 * 37, 64, 49, {.m = -2, .n = 64, .k = 49}, 37},
        {128, 512, 300, {.m = 128, .n = 512, .k = -1, .ta = true}, 300},
        {128, 512, 3, {.m = 128, .n = 512, .k = -3, .ta = true, .f64 = true}, 1},
        {1, 512, 784, {.m = -1, .n = 512, .k = 784, .tb = true}, 1},
        /* one row (batch 1): the matrix-vector path, every transposition and edge */
        {1, 511, 783, {.m = -1, .n = 511, .k = 783, .tb = true}, 1},
        {1, 785, 513, {.m = -1, .n = 785, .k = 513}, 1},
        {1, 67, 33, {.m = -1, .n = 67, .k = 33, .accumulate = true}, 1},
        {1, 3, 5, {.m = -1, .n = 3, .k = 5, .tb = true, .accumulate = true, .f64 = true}, 1},
        {1, 129, 17, {.m = 1, .n = 129, .k = 17, .ta = true}, 1},
        {1, 17, 129, {.m = 1, .n = 17, .k = 129, .ta = true, .tb = true}, 1},
        /* mnist_conv's per-sample products, B (the im2col columns) read in place */
        {128, 784, 576, {.m = 128, .n = 784, .k = 576, .b_in_place = true}, 1},
        {256, 196, 1152, {.m = 256, .n = 196, .k = 1152, .b_in_place = true}, 1},
        {576, 784, 128, {.m = 576, .n = 784, .k = 128, .ta = true, .b_in_place = true}, 1},
        {64, 784, 9, {.m = 64, .n = 784, .k = 9, .f64 = true, .b_in_place = true}, 1},
    };
    run_host_tiles(cases, (int)(sizeof cases / sizeof cases[0]));
}

/* The other kind of x86 code: AVX2 kernels (16 registers) where the host
 * has AVX-512, and the reverse only compiles where it can run. */
static void test_other_target(void **state) {
    (void)state;
    Case cases[] = {
        fixed_case(255, 784, 31, false, true, false, false),
        fixed_case(64, 17, 256, true, false, false, true),
        {31, 255, 64, {.m = 31, .n = 255, .k = 64, .f64 = true, .b_in_place = true}, 1},
    };
    run_cases(cases, 3, "x86-64-v3", 0);
    if (gemm_target(NULL, NULL, NULL).vector_bits == 512) {
        run_cases(cases, 3, "x86-64-v4", 0);
    } else { /* AVX-512 code on a host without it: compiles to an object */
        GemmJit j;
        gemm_jit_begin(&j, "x86-64-v4");
        for (int i = 0; i < 3; i++)
            gemm_jit_add(&j, &cases[i].spec, i ? i == 1 ? "b" : "c" : "a");
        char *err = NULL;
        LLVMMemoryBufferRef obj;
        assert_int_equal(
            LLVMTargetMachineEmitToMemoryBuffer(j.tm, j.mod, LLVMObjectFile, &err, &obj), 0);
        assert_true(LLVMGetBufferSize(obj) > 1000);
        LLVMDisposeMemoryBuffer(obj);
        gemm_jit_end(&j);
    }
    GemmTarget t = gemm_target(NULL, "x86-64-v3", NULL);
    assert_int_equal(t.vector_bits, 256);
    assert_int_equal(gemm_target("aarch64-linux-gnu", "", "").vector_bits, 128);
    assert_int_equal(gemm_target(NULL, "x86-64-v4", NULL).vector_bits, 512);
}

/* ------------------------------------------------------------ sparse rows */

typedef void (*sparse_fn)(const void *a, const void *rows, void *c, int64_t n, int64_t k,
                          int64_t tasks, const void *exec);

/* gemm_sparse_rows (the embedded batch-1 kernel) on one target: for each
 * shape, inputs with zeros and a NaN, W stored in the task blocks of
 * gemm_sparse_task_cols, against C's fma over the nonzero rows in order —
 * the same bits, as the kernel promises, at 1, 2 and 3 threads; f32, f64
 * and f16 rows. k past 1024 takes more than one chunk of the list; k not a
 * multiple of the vector length, the list's scalar tail. */
static void sparse_rows_on(const char *cpu) {
    static const long shapes[][2] = {{1, 1},     {15, 63},   {16, 64},   {17, 200},
                                     {300, 500}, {784, 512}, {1025, 70}, {2100, 784}};
    for (int kind = 0; kind < 3; kind++) {
        bool f64 = kind == 1, half = kind == 2;
        GemmJit j;
        gemm_jit_begin(&j, cpu);
        LLVMValueRef f = gemm_sparse_rows(j.mod, j.target, f64, half);
        LLVMSetLinkage(f, LLVMExternalLinkage);
        char name[64];
        snprintf(name, sizeof name, "%s", LLVMGetValueName(f));
        GemmTarget t = j.target;
        assert_int_equal(gemm_jit_finish(&j), 0);
        sparse_fn fn = (sparse_fn)(uintptr_t)gemm_jit_lookup(&j, name);
        assert_non_null(fn);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            long k = shapes[s][0], n = shapes[s][1], el = f64 ? 8 : 4;
            uint64_t seed = (uint64_t)(k * 31 + n);
            char *a = values(k, f64, &seed), *w = values(k * n, f64, &seed);
            for (long i = 0; i < k; i += 3) /* zeros, skipped */
                memset(a + i * el, 0, (size_t)el);
            if (k > 20) { /* a NaN is not skipped: its columns are NaN */
                if (f64)
                    ((double *)a)[k - 2] = NAN;
                else
                    ((float *)a)[k - 2] = NAN;
            }
            long tasks = gemm_sparse_tasks(t, f64, n);
            char *rows = aligned_alloc(64, ((size_t)(k * n * el) + 64) / 64 * 64);
            double *want = calloc((size_t)n, sizeof *want);
            for (long task = 0, j0, j1; task < tasks; task++) {
                gemm_sparse_task_cols(t, f64, n, task, &j0, &j1);
                for (long i = 0; i < k; i++)
                    for (long c = j0; c < j1; c++) {
                        long at = k * j0 + i * (j1 - j0) + c - j0;
                        double v = get(w, f64, i * n + c);
                        if (half) {
                            uint16_t h = f16_from_double(v);
                            memcpy(rows + at * 2, &h, 2);
                            v = f16_to_double(h);
                        } else
                            memcpy(rows + at * el, w + (i * n + c) * el, (size_t)el);
                        double x = get(a, f64, i);
                        if (x != 0)
                            want[c] =
                                f64 ? fma(x, v, want[c]) : fmaf((float)x, (float)v, (float)want[c]);
                    }
            }
            for (int threads = 1; threads <= 3; threads++) {
                aec_pool *pool = threads > 1 ? aec_pool_new(threads) : NULL;
                Exec ex = {aec_pool_parallel_for, pool, 0, {0}};
                char *c = values(n, f64, &seed); /* overwritten */
                fn(a, rows, c, n, k, tasks, pool ? &ex : NULL);
                for (long i = 0; i < n; i++) {
                    double got = get(c, f64, i);
                    if (!(got == want[i] || (isnan(got) && isnan(want[i]))))
                        fail_msg("%s %s k=%ld n=%ld, %d threads: c[%ld] = %.17g, not %.17g",
                                 cpu ? cpu : "host",
                                 half  ? "f16"
                                 : f64 ? "f64"
                                       : "f32",
                                 k, n, threads, i, got, want[i]);
                }
                free(c);
                aec_pool_free(pool);
            }
            free(a), free(w), free(rows), free(want);
        }
        gemm_jit_end(&j);
    }
}

static void test_sparse_rows(void **state) {
    (void)state;
    sparse_rows_on(NULL);
    sparse_rows_on("x86-64-v3"); /* AVX2: the list one element at a time */
    if (gemm_target(NULL, NULL, NULL).vector_bits == 512) sparse_rows_on("x86-64-v4");
}

/* The tiling's rules (docs/internals.md), on the two x86 register files
 * and AVX-512's two FMA pipe counts: another tile than the first only for
 * a product of 2^20 multiply-adds or more; tasks 64 columns wide; a
 * transposed A read in place only in whole cache lines, a B only with 16
 * accumulators or more. */
static void test_tiling_rules(void **state) {
    (void)state;
    GemmTarget zen4 = {512, 32, 1}, two_pipes = {512, 32, 2}, avx2 = {256, 16, 2};
    GemmSpec small = {.m = 9, .n = 784, .k = 64, .batch_hint = 1};
    GemmSpec big = {.m = 9, .n = 784, .k = 576, .batch_hint = 1};
    GemmTiling g = gemm_tiling(&small, zen4);
    assert_int_equal(g.mr, 16); /* 451,584 multiply-adds: the first tile */
    assert_int_equal(g.nv, 1);
    g = gemm_tiling(&big, zen4);
    assert_int_equal(g.mr, 6); /* 6 x 4 pads 9 rows to 12, not 16 */
    assert_int_equal(g.nv, 4);
    GemmSpec dw = {.m = 512, .n = 784, .k = -1, .ta = true, .batch_hint = 256, .b_in_place = true};
    g = gemm_tiling(&dw, zen4);
    assert_int_equal(g.nc_panels * g.nr, 64);
    assert_true(gemm_a_in_place(&dw, &g) && gemm_b_in_place(&dw, &g));
    g = gemm_tiling(&dw, avx2); /* 6 x 2: rows straddle lines, 12 accumulators */
    assert_int_equal(g.mr * g.nv, 12);
    assert_false(gemm_a_in_place(&dw, &g) || gemm_b_in_place(&dw, &g));
    g = gemm_tiling(&dw, two_pipes); /* 6 x 4: A packed, B in place */
    assert_int_equal(g.mr * 10 + g.nv, 64);
    assert_false(gemm_a_in_place(&dw, &g));
    assert_true(gemm_b_in_place(&dw, &g));
    GemmSpec odd = dw;
    odd.m = 17; /* A's rows are 17 floats: not whole lines */
    g = gemm_tiling(&odd, zen4);
    assert_false(gemm_a_in_place(&odd, &g));
    GemmSpec fwd = {.m = -1, .n = 512, .k = 784, .tb = true, .batch_hint = 256, .b_in_place = true};
    g = gemm_tiling(&fwd, zen4);
    assert_true(gemm_a_in_place(&fwd, &g));  /* X's rows as streams */
    assert_false(gemm_b_in_place(&fwd, &g)); /* Wᵀ is packed */
    g = gemm_tiling(&fwd, two_pipes);
    assert_int_equal(g.mr * 10 + g.nv, 64);
    /* two pipes: a product 32 columns wide keeps 16 x 1 (6 x 4 would pad it to 64) */
    GemmSpec narrow = {.m = -1, .n = 32, .k = 128, .tb = true, .batch_hint = 256};
    g = gemm_tiling(&narrow, two_pipes);
    assert_int_equal(g.mr * 10 + g.nv, 161);
    /* the host's pipes: Zen 4 is one (LLVM 14 names it znver3), Intel's two */
    assert_int_equal(gemm_target("x86_64-linux-gnu", "znver3", "+avx2,+avx512f").fma_pipes, 1);
    assert_int_equal(gemm_target("x86_64-linux-gnu", "rocketlake", "+avx2,+avx512f").fma_pipes, 2);
    assert_int_equal(gemm_target(NULL, "znver4", NULL).fma_pipes, 1);
}

/* The task grid does not depend on the thread count: the same bits with
 * none, 1, 2 and 3 threads. */
static void test_thread_counts_same_bits(void **state) {
    (void)state;
    Case c = fixed_case(256, 512, 784, false, true, false, false);
    Case d = {2 * 100, 784, 512, {.m = -2, .n = 784, .k = 512}, 100};
    GemmJit j;
    gemm_jit_begin(&j, NULL);
    c.spec.batch_hint = d.spec.batch_hint = 256;
    gemm_jit_add(&j, &c.spec, "c");
    gemm_jit_add(&j, &d.spec, "d");
    assert_int_equal(gemm_jit_finish(&j), 0);
    Case *cs[2] = {&c, &d};
    const char *names[2] = {"c", "d"};
    for (int q = 0; q < 2; q++) {
        void *first = NULL;
        assert_true(check_case(cs[q], gemm_jit_lookup(&j, names[q]), j.target, NULL, &first) <= 1);
        for (int threads = 1; threads <= 3; threads++) {
            aec_pool *pool = aec_pool_new(threads);
            Exec ex = {aec_pool_parallel_for, pool, 0, {0}};
            void *out = NULL;
            check_case(cs[q], gemm_jit_lookup(&j, names[q]), j.target, &ex, &out);
            assert_memory_equal(out, first, (size_t)(cs[q]->m * cs[q]->n) * 4);
            free(out);
            aec_pool_free(pool);
        }
        free(first);
    }
    gemm_jit_end(&j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),        cmocka_unit_test(test_model_shapes),
        cmocka_unit_test(test_other_target), cmocka_unit_test(test_tiling_rules),
        cmocka_unit_test(test_sparse_rows),  cmocka_unit_test(test_thread_counts_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
