/* bench_gemm.c — the generated GEMM kernels against OpenBLAS and against
 * the machine's own FMA peak, on fmnist_dense's (W1's) shapes.
 *
 * The peak is measured here, not assumed: a generated loop of independent
 * vector FMA chains per thread (24, or 12 with 16 registers: enough to
 * cover the FMA latency on every current core), for the widest vectors the generator
 * uses, on 1 and on 2 threads at once. Each product is timed as the median
 * of REPS calls after a warm-up, at 1 and 2 threads: aec's through the
 * runtime's pool (runtime/pool.c), OpenBLAS's with openblas_set_num_threads.
 * Each call follows a short burst of the same peak loop, and its percent of
 * peak is the median over the calls of its GFLOP/s over that burst's: on a
 * shared host whose clock and neighbours change by the minute, a share of
 * a peak measured once at the start read over 100 %. Prints the CPU, its
 * vector features, OPENBLAS_CORETYPE and OpenBLAS's kernel, the bursts'
 * range, one line per product with GFLOP/s and percent of peak, and a
 * reference: the micro-kernel on a product whose B panel fits L1.
 *
 * Usage: bench_gemm [--json] [--cpu NAME]   (NAME: another CPU's code, such
 *        as x86-64-v3 for the AVX2 kernels on an AVX-512 host; the peak is
 *        then that code's)
 */
#include <cblas.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "gemm_jit.h"
#include "pool.h"
#define BENCH_NAME "bench_gemm"
#include "common.h"

enum { REPS = 31, MAX_CHAINS = 24 };

/* Independent FMA chains of the peak loop: enough to cover the FMA latency
 * (4 cycles, 2 pipes), and few enough to stay in registers — 24 of the 32
 * with AVX-512, 12 of AVX2's 16 (24 there spill: the peak read 75
 * GFLOP/s where the kernels reach 100). */
static int chains;

void openblas_set_num_threads(int);
char *openblas_get_corename(void);

typedef struct Exec { /* aec_exec's layout */
    void (*parallel_for)(void *, int64_t, void (*)(void *, int64_t), void *);
    void *pool;
    int64_t row_offset, reserved[4];
} Exec;

/* ------------------------------------------------------------- FMA peak */

typedef float (*peak_fn)(int64_t iterations);

/* float peak(i64 n): `chains` accumulators, each acc = fma(acc, x, y), n times. */
static void add_peak(GemmJit *j) {
    LLVMContextRef ctx = j->ctx;
    chains = j->target.registers >= 32 ? MAX_CHAINS : 12;
    int vl = j->target.vector_bits / 32;
    LLVMTypeRef f32 = LLVMFloatTypeInContext(ctx), V = LLVMVectorType(f32, (unsigned)vl);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef fty = LLVMFunctionType(f32, &i64, 1, 0);
    LLVMValueRef f = LLVMAddFunction(j->mod, "peak", fty);
    if (j->target.vector_bits >= 512)
        LLVMAddAttributeAtIndex(
            f, LLVMAttributeFunctionIndex,
            LLVMCreateStringAttribute(ctx, "prefer-vector-width", 19, "512", 3));
    LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(ctx, f, "entry");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(ctx, f, "body");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(ctx, f, "done");
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef xs[64], ys[64];
    for (int i = 0; i < vl; i++) {
        xs[i] = LLVMConstReal(f32, 0.999999);
        ys[i] = LLVMConstReal(f32, 1e-7);
    }
    LLVMValueRef x = LLVMConstVector(xs, (unsigned)vl);
    LLVMValueRef y = LLVMConstVector(ys, (unsigned)vl);
    LLVMBuildBr(b, body);
    LLVMPositionBuilderAtEnd(b, body);
    LLVMValueRef i = LLVMBuildPhi(b, i64, "i"), acc[MAX_CHAINS], next[MAX_CHAINS];
    LLVMValueRef zero = LLVMConstInt(i64, 0, 0);
    LLVMAddIncoming(i, &zero, &entry, 1);
    unsigned id = LLVMLookupIntrinsicID("llvm.fma", 8);
    LLVMValueRef fma = LLVMGetIntrinsicDeclaration(j->mod, id, &V, 1);
    LLVMTypeRef fma_ty = LLVMIntrinsicGetType(ctx, id, &V, 1);
    for (int c = 0; c < chains; c++) {
        acc[c] = LLVMBuildPhi(b, V, "acc");
        LLVMValueRef start = LLVMConstNull(V);
        LLVMAddIncoming(acc[c], &start, &entry, 1);
    }
    for (int c = 0; c < chains; c++) {
        LLVMValueRef args[3] = {acc[c], x, y};
        next[c] = LLVMBuildCall2(b, fma_ty, fma, args, 3, "");
    }
    LLVMValueRef i1 = LLVMBuildAdd(b, i, LLVMConstInt(i64, 1, 0), "");
    for (int c = 0; c < chains; c++)
        LLVMAddIncoming(acc[c], &next[c], &body, 1);
    LLVMAddIncoming(i, &i1, &body, 1);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, i1, LLVMGetParam(f, 0), ""), body, done);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMValueRef sum = next[0];
    for (int c = 1; c < chains; c++)
        sum = LLVMBuildFAdd(b, sum, next[c], "");
    LLVMBuildRet(b, LLVMBuildExtractElement(b, sum, LLVMConstInt(i64, 0, 0), ""));
    LLVMDisposeBuilder(b);
}

typedef struct PeakRun {
    peak_fn fn;
    int64_t n;
    double seconds;
    float sink;
} PeakRun;

static void *peak_thread(void *p) {
    PeakRun *r = p;
    double t = now();
    r->sink = r->fn(r->n);
    r->seconds = now() - t;
    return NULL;
}

/* GFLOP/s of `threads` threads each running the loop at once: the median of 5. */
static double measure_peak(peak_fn fn, int vl, int threads) {
    double runs[5];
    int64_t n = 20000000;
    for (int r = 0; r < 5; r++) {
        PeakRun pr[8];
        pthread_t th[8];
        for (int t = 0; t < threads; t++) {
            pr[t] = (PeakRun){fn, n, 0, 0};
            pthread_create(&th[t], NULL, peak_thread, &pr[t]);
        }
        double slowest = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            if (pr[t].seconds > slowest) slowest = pr[t].seconds;
        }
        runs[r] = 2.0 * chains * vl * (double)n * threads / slowest / 1e9;
    }
    return quantile(runs, 5, 0.5);
}

/* --------------------------------------------------------------- products */

typedef struct Shape {
    const char *what;
    bool ta, tb;
    long m, n, k;
    bool alone; /* not W1's: a reference, outside the weighted total */
} Shape;

/* W1 = fmnist_dense, 784-512-128-32-128-512-784 at batch 256: its forward
 * (X·Wᵀ), weight gradient (dYᵀ·X) and input gradient (dY·W) products. */
static const Shape shapes[] = {
    {"fwd 784->512", false, true, 256, 512, 784, false},
    {"dW 512x784", true, false, 512, 784, 256, false},
    {"dX 512->784", false, false, 256, 784, 512, false},
    {"fwd 512->784", false, true, 256, 784, 512, false},
    {"dW 784x512", true, false, 784, 512, 256, false},
    {"fwd 512->128", false, true, 256, 128, 512, false},
    {"dW 128x512", true, false, 128, 512, 256, false},
    {"dX 128->512", false, false, 256, 512, 128, false},
    {"fwd 128->32", false, true, 256, 32, 128, false},
    {"dW 32x128", true, false, 32, 128, 256, false},
    /* the micro-kernel's own ceiling on this machine now: one task and one
     * K block, its B panel (128 × 64, 32 KB) in L1 while A streams */
    {"kernel in L1", false, false, 132, 64, 128, true},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* One call of the product: aec's generated function, or cblas_sgemm. */
static void call_product(gemm_fn fn, const Shape *s, const float *a, const float *b, float *c,
                         void *pack, const Exec *ex, bool blas) {
    if (blas)
        cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                    s->tb ? CblasTrans : CblasNoTrans, (int)s->m, (int)s->n, (int)s->k, 1, a,
                    s->ta ? (int)s->m : (int)s->k, b, s->tb ? (int)s->k : (int)s->n, 0, c,
                    (int)s->n);
    else
        fn(a, b, c, 256, pack, ex, NULL, NULL);
}

/* A burst of the peak loop on `threads` threads at once, about half a
 * millisecond, timed next to each call of a product so that its share of
 * the peak is taken against the peak of that moment. Through the pool when
 * the product runs on it (its worker then spins for the product's call, as
 * it does between a training step's products); else on this thread, or on
 * threads of its own that are gone before OpenBLAS's call. */
enum { BURST_ITERATIONS = 100000 };
static void burst_task(void *arg, int64_t t) {
    PeakRun *r = (PeakRun *)arg + t;
    double t0 = now();
    r->sink += r->fn(r->n);
    r->seconds = now() - t0;
}
static double burst_gflops(peak_fn fn, int vl, int threads, aec_pool *pool) {
    PeakRun pr[8];
    pthread_t th[8];
    for (int t = 0; t < threads; t++)
        pr[t] = (PeakRun){fn, BURST_ITERATIONS, 0, 0};
    if (pool)
        aec_pool_parallel_for(pool, threads, burst_task, pr);
    else if (threads == 1)
        burst_task(pr, 0);
    else {
        for (int t = 0; t < threads; t++)
            pthread_create(&th[t], NULL, peak_thread, &pr[t]);
        for (int t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
    }
    double slowest = 0;
    for (int t = 0; t < threads; t++)
        if (pr[t].seconds > slowest) slowest = pr[t].seconds;
    return 2.0 * chains * vl * (double)BURST_ITERATIONS * threads / slowest / 1e9;
}

/* A product timed REPS times after a warm-up, each call next to a burst:
 * the median time, and the median over the calls of its GFLOP/s over the
 * burst's (the share of the peak, robust to a clock or a neighbour that
 * changes during the run: a share against a peak measured minutes earlier
 * read over 100 % on a shared host). The bursts' range goes to peak_lo/hi. */
typedef struct Timing {
    double seconds, share;
} Timing;
static Timing time_product(gemm_fn fn, const Shape *s, const float *a, const float *b, float *c,
                           void *pack, const Exec *ex, bool blas, peak_fn peak, int vl, int threads,
                           double *peak_lo, double *peak_hi) {
    double t[REPS], share[REPS];
    double flop = 2.0 * (double)s->m * (double)s->n * (double)s->k;
    for (int r = -2; r < REPS; r++) {
        double pk = burst_gflops(peak, vl, threads, ex && !blas ? ex->pool : NULL);
        double t0 = now();
        call_product(fn, s, a, b, c, pack, ex, blas);
        if (r < 0) continue;
        t[r] = now() - t0;
        share[r] = flop / t[r] / 1e9 / pk;
        if (pk < *peak_lo) *peak_lo = pk;
        if (pk > *peak_hi) *peak_hi = pk;
    }
    return (Timing){quantile(t, REPS, 0.5), quantile(share, REPS, 0.5)};
}

static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *v = strchr(line, ':');
            if (v) {
                v += 2;
                v[strcspn(v, "\n")] = 0;
                snprintf(out, n, "%s", v);
            }
            break;
        }
    fclose(f);
}

int main(int argc, char **argv) {
    bool json = false;
    const char *cpu = NULL; /* the host */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--cpu") && i + 1 < argc)
            cpu = argv[++i];
        else {
            fprintf(stderr, "usage: bench_gemm [--json] [--cpu NAME]\n");
            return 2;
        }
    GemmJit j;
    gemm_jit_begin(&j, cpu);
    GemmSpec specs[NSHAPES];
    for (int i = 0; i < NSHAPES; i++) {
        /* as the model compiles them: the batch rows are m (forward, dX) or k (dW) */
        specs[i] = (GemmSpec){.m = shapes[i].ta || shapes[i].alone ? shapes[i].m : -1,
                              .n = shapes[i].n,
                              .k = shapes[i].ta ? -1 : shapes[i].k,
                              .ta = shapes[i].ta,
                              .tb = shapes[i].tb,
                              .batch_hint = 256,
                              .b_in_place = !shapes[i].tb};
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        gemm_jit_add(&j, &specs[i], name);
    }
    add_peak(&j);
    double t0 = now();
    if (gemm_jit_finish(&j)) return 1;
    peak_fn peak = (peak_fn)(uintptr_t)gemm_jit_lookup(&j, "peak");
    (void)t0;

    char model[256];
    cpu_model(model, sizeof model);
    char *features = LLVMGetHostCPUFeatures();
    bool avx512 = strstr(features, "+avx512f") != NULL, avx2 = strstr(features, "+avx2") != NULL;
    LLVMDisposeMessage(features);
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    int vl = j.target.vector_bits / 32;
    double peak1 = measure_peak(peak, vl, 1), peak2 = measure_peak(peak, vl, 2);
    if (!json) {
        printf("CPU: %s; AVX2 %s, AVX-512 %s; generated vectors %d bits\n", model,
               avx2 ? "yes" : "no", avx512 ? "yes" : "no", j.target.vector_bits);
        printf("OPENBLAS_CORETYPE=%s, OpenBLAS kernel %s\n", coretype ? coretype : "(unset)",
               openblas_get_corename());
        printf("FMA peak (measured, f32): 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s\n", peak1,
               peak2);
    } else {
        printf("{\"cpu\": \"%s\", \"avx2\": %s, \"avx512\": %s, \"openblas_coretype\": \"%s\", "
               "\"openblas_kernel\": \"%s\", \"peak1\": %.1f, \"peak2\": %.1f, ",
               model, avx2 ? "true" : "false", avx512 ? "true" : "false", coretype ? coretype : "",
               openblas_get_corename(), peak1, peak2);
    }
    aec_pool *pool2 = aec_pool_new(2);
    Exec ex2 = {aec_pool_parallel_for, pool2, 0, {0}};
    double sum_flop = 0, sum_t[4] = {0}, sum_share_t[4] = {0};
    double peak_lo[2] = {1e30, 1e30}, peak_hi[2] = {0, 0}; /* the bursts, 1 and 2 threads */
    char rows[NSHAPES][256];
    for (int i = 0; i < NSHAPES; i++) {
        const Shape *s = &shapes[i];
        char name[16];
        snprintf(name, sizeof name, "g%d", i);
        gemm_fn fn = gemm_jit_lookup(&j, name);
        float *a = aligned_alloc(64, (size_t)(s->m * s->k) * 4),
              *b = aligned_alloc(64, (size_t)(s->k * s->n) * 4);
        float *c = aligned_alloc(64, (size_t)(s->m * s->n) * 4);
        for (long q = 0; q < s->m * s->k; q++)
            a[q] = (float)((q * 7919) % 1000) / 1000.0f - 0.5f;
        for (long q = 0; q < s->k * s->n; q++)
            b[q] = (float)((q * 104729) % 1000) / 1000.0f - 0.5f;
        long per_batch, fixed;
        gemm_pack_elems(&specs[i], j.target, &per_batch, &fixed);
        void *pack = aligned_alloc(64, ((size_t)(per_batch * 256 + fixed) * 4 + 63) / 64 * 64);
        Timing t[4];
        openblas_set_num_threads(1);
        t[0] =
            time_product(fn, s, a, b, c, pack, NULL, false, peak, vl, 1, &peak_lo[0], &peak_hi[0]);
        t[1] =
            time_product(fn, s, a, b, c, pack, NULL, true, peak, vl, 1, &peak_lo[0], &peak_hi[0]);
        openblas_set_num_threads(2);
        t[2] =
            time_product(fn, s, a, b, c, pack, &ex2, false, peak, vl, 2, &peak_lo[1], &peak_hi[1]);
        t[3] =
            time_product(fn, s, a, b, c, pack, NULL, true, peak, vl, 2, &peak_lo[1], &peak_hi[1]);
        double flop = 2.0 * (double)s->m * (double)s->n * (double)s->k;
        for (int q = 0; q < 4 && !s->alone; q++) {
            sum_t[q] += t[q].seconds;
            sum_share_t[q] += t[q].share * t[q].seconds;
        }
        if (!s->alone) sum_flop += flop;
        GemmTiling g = gemm_tiling(&specs[i], j.target);
        char dims[32], tile[16], cell[4][32];
        snprintf(dims, sizeof dims, "%ldx%ldx%ld", s->m, s->n, s->k);
        snprintf(tile, sizeof tile, "%dx%d", g.mr, g.nr);
        for (int q = 0; q < 4; q++)
            snprintf(cell[q], sizeof cell[q], "%6.1f (%3.0f%%)", flop / t[q].seconds / 1e9,
                     100 * t[q].share);
        if (!json)
            snprintf(rows[i], sizeof rows[i], "%-14s %-15s %-9s %18s %18s %18s %18s\n", s->what,
                     dims, tile, cell[0], cell[1], cell[2], cell[3]);
        else
            snprintf(
                rows[i], sizeof rows[i],
                "%s{\"product\": \"%s\", \"m\": %ld, \"n\": %ld, \"k\": %ld, \"aec1\": "
                "%.1f, \"blas1\": %.1f, \"aec2\": %.1f, \"blas2\": %.1f, \"aec1_pct\": %.0f, "
                "\"blas1_pct\": %.0f, \"aec2_pct\": %.0f, \"blas2_pct\": %.0f, \"reference\": %s}",
                i ? ", " : "", s->what, s->m, s->n, s->k, flop / t[0].seconds / 1e9,
                flop / t[1].seconds / 1e9, flop / t[2].seconds / 1e9, flop / t[3].seconds / 1e9,
                100 * t[0].share, 100 * t[1].share, 100 * t[2].share, 100 * t[3].share,
                s->alone ? "true" : "false");
        free(a);
        free(b);
        free(c);
        free(pack);
    }
    if (!json) {
        printf("FMA peak next to each call (the bursts the percentages divide by): 1 thread "
               "%.1f-%.1f, 2 threads %.1f-%.1f GFLOP/s\n",
               peak_lo[0], peak_hi[0], peak_lo[1], peak_hi[1]);
        printf("%-14s %-15s %-9s %18s %18s %18s %18s\n", "product", "m x n x k", "tile",
               "aec 1 thr", "OpenBLAS 1 thr", "aec 2 thr", "OpenBLAS 2 thr");
        for (int i = 0; i < NSHAPES; i++)
            if (!shapes[i].alone) fputs(rows[i], stdout);
        printf("%-40s", "all of W1's products, weighted by FLOPs");
        for (int q = 0; q < 4; q++)
            printf(" %6.1f (%3.0f%%)    ", sum_flop / sum_t[q] / 1e9,
                   100 * sum_share_t[q] / sum_t[q]);
        printf("\n");
        for (int i = 0; i < NSHAPES; i++)
            if (shapes[i].alone) fputs(rows[i], stdout);
    } else {
        printf("\"peak1_lo\": %.1f, \"peak1_hi\": %.1f, \"peak2_lo\": %.1f, \"peak2_hi\": %.1f, "
               "\"products\": [",
               peak_lo[0], peak_hi[0], peak_lo[1], peak_hi[1]);
        for (int i = 0; i < NSHAPES; i++)
            fputs(rows[i], stdout);
        printf("], \"total\": {\"aec1\": %.1f, \"blas1\": %.1f, \"aec2\": %.1f, \"blas2\": "
               "%.1f, \"aec1_pct\": %.0f, \"blas1_pct\": %.0f, \"aec2_pct\": %.0f, "
               "\"blas2_pct\": %.0f}}\n",
               sum_flop / sum_t[0] / 1e9, sum_flop / sum_t[1] / 1e9, sum_flop / sum_t[2] / 1e9,
               sum_flop / sum_t[3] / 1e9, 100 * sum_share_t[0] / sum_t[0],
               100 * sum_share_t[1] / sum_t[1], 100 * sum_share_t[2] / sum_t[2],
               100 * sum_share_t[3] / sum_t[3]);
    }
    aec_pool_free(pool2);
    gemm_jit_end(&j);
    return 0;
}
