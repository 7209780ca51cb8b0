/* gemm.c — shape-specialised matrix products, generated as LLVM IR.
 *
 * Takes a GemmSpec (C = op(A)·op(B) row-major, dimensions constant but for
 * a multiple of the batch) and a GemmTarget; chooses the tiling (this file:
 * the targets, the tiles, the pack sizes) and produces one function (see
 * gemm.h) from the parts gemm_kernels.c emits, built as GotoBLAS/BLIS
 * build theirs:
 *
 *   phase 1 (tasks): pack op(A) into row panels of mr rows, [panel][k][mr],
 *                    and op(B) into column panels of nr columns, [panel][k][nr],
 *                    zero-padded to whole panels — only where an operand
 *                    cannot be read in place (gemm_a_in_place,
 *                    gemm_b_in_place: then only a partial last panel);
 *   phase 2 (tasks): each task owns a block of mc_panels × nc_panels tiles
 *                    of C and, for each K block of kc, runs the micro-kernel
 *                    over its tiles: the B panel (kc × nr) stays in L1 while
 *                    the A panels of the block stream from L2.
 *
 * The micro-kernel keeps an mr × nr tile of C in mr·nv vector registers
 * and, for each k, loads nv vectors of B and broadcasts mr values of A into
 * mr·nv `llvm.fma` calls — explicit vector values, so what LLVM emits is
 * what is written here. Tiles that C's edges cut go through a small buffer.
 *
 * Invariants: the task grid depends on the shape and batch only, and each
 * element of C is summed over k in increasing order by one task, so the
 * bits do not depend on the thread count; nothing is allocated (pack is the
 * caller's, from the workspace plan; the edge buffer is on the stack).
 */
#include "gemm_gen.h"

#include <llvm-c/TargetMachine.h>

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- targets */

/* CPUs whose widest vectors are 512 or 256 bits, for a CPU named without a
 * feature string (`--cpu NAME`), and those that start one 512-bit FMA per
 * cycle (pipes 1). A CPU not listed gets 128-bit vectors: slower, never
 * wrong — LLVM legalizes any vector width. LLVM 14 knows no znver4 and
 * names every family-19h CPU znver3, so on the host "znver3" with AVX-512
 * is Zen 4. */
static const struct {
    const char *cpu;
    int bits, pipes;
} cpu_vectors[] = {
    {"x86-64-v4", 512, 2},  {"skylake-avx512", 512, 2}, {"cascadelake", 512, 2},
    {"cooperlake", 512, 2}, {"icelake-client", 512, 2}, {"icelake-server", 512, 2},
    {"tigerlake", 512, 2},  {"sapphirerapids", 512, 2}, {"rocketlake", 512, 2},
    {"cannonlake", 512, 2}, {"znver4", 512, 1},         {"znver5", 512, 2},
    {"x86-64-v3", 256, 2},  {"haswell", 256, 2},        {"broadwell", 256, 2},
    {"skylake", 256, 2},    {"alderlake", 256, 2},      {"raptorlake", 256, 2},
    {"znver1", 256, 2},     {"znver2", 256, 2},         {"znver3", 256, 1},
};

static bool has_feature(const char *features, const char *f) {
    size_t n = strlen(f);
    for (const char *p = features; p && (p = strstr(p, f)); p += n)
        if (p > features && p[-1] == '+' && (p - 1 == features || p[-2] == ',') &&
            (p[n] == ',' || !p[n]))
            return true;
    return false;
}

/* The table's row for cpu, or −1. */
static int cpu_row(const char *cpu) {
    for (int i = 0; cpu && i < (int)(sizeof cpu_vectors / sizeof cpu_vectors[0]); i++)
        if (strcmp(cpu, cpu_vectors[i].cpu) == 0) return i;
    return -1;
}

GemmTarget gemm_target(const char *triple, const char *cpu, const char *features) {
    GemmTarget t = {128, 16, 2};
    char *host_triple = NULL, *host_cpu = NULL, *host_features = NULL;
    if (!triple && !cpu) {
        host_cpu = LLVMGetHostCPUName();
        cpu = host_cpu;
        if (!features) features = host_features = LLVMGetHostCPUFeatures();
    }
    if (!triple) triple = host_triple = LLVMGetDefaultTargetTriple();
    bool x86 = strncmp(triple, "x86_64", 6) == 0 || strncmp(triple, "i686", 4) == 0;
    if (!x86) {
        /* aarch64 (NEON) and the others: 128-bit vectors; NEON has 32 */
        if (strncmp(triple, "aarch64", 7) == 0 || strncmp(triple, "arm64", 5) == 0)
            t.registers = 32;
    } else if (features && has_feature(features, "avx512f")) {
        int r = cpu_row(cpu); /* a CPU not listed: two pipes */
        t = (GemmTarget){512, 32, r >= 0 ? cpu_vectors[r].pipes : 2};
    } else if (features && (has_feature(features, "avx2") || has_feature(features, "avx"))) {
        t = (GemmTarget){256, 16, 2};
    } else if (cpu_row(cpu) >= 0) {
        int r = cpu_row(cpu);
        t = (GemmTarget){cpu_vectors[r].bits, cpu_vectors[r].bits == 512 ? 32 : 16,
                         cpu_vectors[r].pipes};
    }
    LLVMDisposeMessage(host_triple);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    return t;
}

/* ---------------------------------------------------------------- tiling */

enum { IR_BATCH_ROWS = -1 }; /* a dimension that is the batch itself */

static long ceil_div(long a, long b) {
    return (a + b - 1) / b;
}
static long dim_hint(long d, int batch) {
    return d > 0 ? d : -d * (batch > 0 ? batch : 256);
}

/* Micro-tiles by vector registers and FMA pipes (0: any): mr × nv
 * accumulators plus nv for B and one broadcast must fit. The first fits
 * best when several waste the same. Each k step of a tile loads nv vectors
 * and broadcasts mr values for mr·nv FMAs: two pipes need more FMAs than
 * loads (two of those a cycle too), one pipe not. Measured, f32, 1 thread:
 * on Zen 4 (one pipe) 16 × 1 ran mnist_conv's per-sample products at
 * 101-106 GFLOP/s against 82-98 for 6 × 4 and 93 for 28 × 1, a 256 × 32
 * product at 114 against 73 for 14 × 2, and W1's step 2 % faster; on
 * Sapphire Rapids (two pipes) W1's products ran at 135-178 GFLOP/s with
 * 6 × 4 against 87-137 with 16 × 1, and W1's step 27 % faster (22 % at 2
 * threads), while its 256 × 32 products keep 16 × 1 (128 against 64). */
static const struct {
    int regs, pipes, mr, nv;
} tiles[] = {
    {32, 1, 16, 1}, {32, 1, 6, 4},  {32, 1, 14, 2}, {32, 1, 8, 3}, {32, 1, 28, 1},
    {32, 2, 6, 4},  {32, 2, 16, 1}, {32, 2, 14, 2}, {32, 2, 8, 3}, {32, 2, 28, 1},
    {16, 0, 6, 2},  {16, 0, 4, 3},  {16, 0, 12, 1},
};

GemmTiling gemm_tiling(const GemmSpec *s, GemmTarget t) {
    GemmTiling g = {0};
    g.vl = t.vector_bits / (s->f64 ? 64 : 32);
    long m = dim_hint(s->m, s->batch_hint), n = dim_hint(s->n, s->batch_hint);
    long k = dim_hint(s->k, s->batch_hint);
    /* under 2^20 multiply-adds (mnist_conv's 1 × 784 × 64 and 9 × 784 × 64
     * per sample; one row goes to the matrix-vector kernel anyway) */
    bool small = (double)m * (double)n * (double)k < (double)(1L << 20);
    double best = 0;
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        if (tiles[i].regs != t.registers ||
            (tiles[i].pipes && tiles[i].pipes != (t.fma_pipes == 1 ? 1 : 2)))
            continue;
        long nr = (long)tiles[i].nv * g.vl;
        /* padded work over useful work; a narrow matrix prefers narrow tiles */
        double waste = (double)(ceil_div(m, tiles[i].mr) * tiles[i].mr) *
                       (double)(ceil_div(n, nr) * nr) / ((double)m * (double)n);
        /* another tile only for a clearly better fit, and on a product
         * big enough for the fit to matter: fewer tiles mean fewer kernels
         * to compile, shared by more products */
        if (!g.mr || (waste < best * 0.9 && !small)) {
            best = waste;
            g.mr = tiles[i].mr;
            g.nv = tiles[i].nv;
        }
    }
    g.nr = g.nv * g.vl;
    /* K blocks of at most 256 (f32) equal parts: kc·nr of B stays in L1-L2 */
    long kc_max = s->f64 ? 128 : 256;
    g.kc = s->k > 0 ? ceil_div(k, ceil_div(k, kc_max)) : kc_max;
    /* Task blocks: about 128 rows × 64 columns, so a block of A (mc × kc)
     * sits in L2 and the threads finish a round together: a convolution's
     * per-sample product (128 × 784, one row block) is 13 tasks, not 4 of
     * which one is 16 columns wide (mnist_conv's training at 2 threads
     * ~15 % faster than with 256 columns; W1 the same within the noise). */
    g.mc_panels = (int)ceil_div(GEMM_ROW_BLOCK_MIN, g.mr);
    g.nc_panels =
        (int)(ceil_div(64, g.nr) > ceil_div(n, g.nr) ? ceil_div(n, g.nr) : ceil_div(64, g.nr));
    if (g.nc_panels < 1) g.nc_panels = 1;
    return g;
}

long gemm_row_block(const GemmSpec *s, GemmTarget t) {
    GemmTiling g = gemm_tiling(s, t);
    return (long)g.mc_panels * g.mr;
}

/* op(A) is read where it is, when its row length as stored is known: A
 * stored m × k, a micro-kernel's mr rows are mr streams the prefetchers
 * follow; stored k × m (transposed), its mr values per k are contiguous, a
 * packed panel's layout with A's row length as the stride — when they are
 * whole cache lines (16 × 1 f32 tiles on AVX-512; AVX2's 6-row panels
 * straddle lines, and read in place made W1's dW 15-25 % slower). Only a
 * partial last row panel is packed. */
bool gemm_a_in_place(const GemmSpec *s, const GemmTiling *g) {
    long row = s->lda ? s->lda : s->ta ? s->m : s->k, line = 64 / (s->f64 ? 8 : 4);
    if (row <= 0) return false;
    return !s->ta || (g->mr % line == 0 && row % line == 0);
}

/* B (k × n) is read where it is when the spec asks and the tile has at
 * least 16 accumulators: then each strided row of a column panel feeds 16
 * or more FMAs, time enough to hide its load (AVX-512's 16 × 1: W1's step
 * 2-4 % faster than packing; AVX2's 6 × 2 has 12, and W1's step was 4 %
 * slower in place). */
bool gemm_b_in_place(const GemmSpec *s, const GemmTiling *g) {
    return s->b_in_place && !s->tb && (s->ldb ? s->ldb : s->n) > 0 && g->mr * g->nv >= 16;
}

void gemm_pack_elems(const GemmSpec *s, GemmTarget t, long *per_batch, long *fixed) {
    GemmTiling g = gemm_tiling(s, t);
    /* A: ceil(m/mr)·mr·k ≤ (m + mr − 1)·k; B: k·ceil(n/nr)·nr. A batch
     * dimension in both m and k would make it quadratic in the batch. */
    long m = s->m, k = s->k, n = s->n;
    long np = n > 0 ? ceil_div(n, g.nr) * g.nr : 0;
    long pb = 0, fx = 0;
    if (gemm_a_in_place(s, &g)) { /* a partial last panel only */
        if (k > 0)
            fx += g.mr * k;
        else
            pb += g.mr * -k;
    } else if (m > 0 && k > 0)
        fx += (ceil_div(m, g.mr) * g.mr) * k;
    else if (m < 0 && k > 0)
        pb += -m * k, fx += (g.mr - 1) * k;
    else if (m > 0 && k < 0)
        pb += ceil_div(m, g.mr) * g.mr * -k;
    else
        pb = -1; /* both batched: not supported (caller falls back) */
    if (pb >= 0 && gemm_b_in_place(s, &g) && k > 0)
        fx += k * g.nr; /* a partial last panel only */
    else if (pb >= 0) {
        if (n > 0 && k > 0)
            fx += k * np;
        else if (n > 0 && k < 0)
            pb += -k * np;
        else
            pb = -1;
    }
    *per_batch = pb;
    *fixed = fx + 16; /* one vector of slack: panels start aligned */
}

void gemm_pack_bound(const GemmSpec *s, long *per_batch, long *fixed) {
    static const GemmTarget targets[] = {
        {512, 32, 1}, {512, 32, 2}, {256, 16, 2}, {128, 32, 2}, {128, 16, 2}};
    *per_batch = *fixed = 0;
    for (int f64 = 0; f64 < 2; f64++)
        for (int t = 0; t < 5; t++) {
            GemmSpec v = *s;
            v.f64 = f64;
            long pb, fx;
            gemm_pack_elems(&v, targets[t], &pb, &fx);
            if (pb < 0) {
                *per_batch = -1;
                return;
            }
            if (pb > *per_batch) *per_batch = pb;
            if (fx > *fixed) *fixed = fx;
        }
}

/* ---------------------------------------------------------------- driver */

LLVMTypeRef gemm_function_type(LLVMContextRef ctx, bool f64) {
    LLVMTypeRef T_ptr =
        LLVMPointerType(f64 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx), 0);
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    LLVMTypeRef params[] = {T_ptr, T_ptr, T_ptr, LLVMInt64TypeInContext(ctx), T_ptr, i8p, i8p, i8p};
    return LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 8, 0);
}

void gemm_parallel_for(LLVMModuleRef mod, LLVMBuilderRef b, LLVMValueRef exec, LLVMValueRef ntasks,
                       LLVMValueRef task, LLVMValueRef arg) {
    Gen G = {0};
    G.ctx = LLVMGetModuleContext(mod);
    G.mod = mod;
    G.b = b;
    G.fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
    G.i8p = LLVMPointerType(LLVMInt8TypeInContext(G.ctx), 0);
    G.i64 = LLVMInt64TypeInContext(G.ctx);
    G.void_t = LLVMVoidTypeInContext(G.ctx);
    LLVMTypeRef task_params[] = {G.i8p, G.i64};
    G.task_ty = LLVMFunctionType(G.void_t, task_params, 2, 0);
    gemm_run_tasks(&G, exec, ntasks, task, LLVMBuildBitCast(b, arg, G.i8p, ""));
}

/* The generator's state for spec s on the target: types, tiling, the
 * task argument's struct, llvm.fma of the vector type. */
static void gen_begin(Gen *G, LLVMModuleRef mod, const GemmSpec *s, GemmTarget target) {
    G->ctx = LLVMGetModuleContext(mod);
    G->mod = mod;
    G->b = LLVMCreateBuilderInContext(G->ctx);
    G->s = s;
    G->target = target;
    G->g = gemm_tiling(s, target);
    G->T = s->f64 ? LLVMDoubleTypeInContext(G->ctx) : LLVMFloatTypeInContext(G->ctx);
    G->V = LLVMVectorType(G->T, (unsigned)G->g.vl);
    G->T_ptr = LLVMPointerType(G->T, 0);
    G->V_ptr = LLVMPointerType(G->V, 0);
    G->i8p = LLVMPointerType(LLVMInt8TypeInContext(G->ctx), 0);
    G->i32 = LLVMInt32TypeInContext(G->ctx);
    G->i64 = LLVMInt64TypeInContext(G->ctx);
    G->void_t = LLVMVoidTypeInContext(G->ctx);
    LLVMTypeRef fields[ARG_FIELDS];
    for (int i = 0; i < ARG_FIELDS; i++)
        fields[i] = i >= ARG_EPI ? G->i8p : i <= ARG_PACK ? G->T_ptr : G->i64;
    G->arg_ty = LLVMStructTypeInContext(G->ctx, fields, ARG_FIELDS, 0);
    G->arg_ptr = LLVMPointerType(G->arg_ty, 0);
    LLVMTypeRef task_params[] = {G->i8p, G->i64};
    G->task_ty = LLVMFunctionType(G->void_t, task_params, 2, 0);
    unsigned fma_id = LLVMLookupIntrinsicID("llvm.fma", 8);
    G->fma = LLVMGetIntrinsicDeclaration(mod, fma_id, &G->V, 1);
    G->fma_ty = LLVMIntrinsicGetType(G->ctx, fma_id, &G->V, 1);
}

LLVMValueRef gemm_sparse_rows(LLVMModuleRef mod, GemmTarget target, bool f64, bool half_rows) {
    char name[48];
    snprintf(name, sizeof name, "aec.sparse_rows.%s%s.%d", f64 ? "f64" : "f32",
             half_rows ? ".f16_rows" : "", target.vector_bits / (f64 ? 64 : 32));
    LLVMValueRef f = LLVMGetNamedFunction(mod, name);
    if (f) return f;
    GemmSpec s = {.m = 1, .n = 1, .k = 1, .f64 = f64};
    Gen G = {0};
    gen_begin(&G, mod, &s, target);
    G.half_rows = half_rows;
    f = gemm_sparse_function(&G, name);
    LLVMDisposeBuilder(G.b);
    return f;
}

/* The micro-kernel of the tiling's mr rows and nv vectors, and its
 * variant that reads A in place where the product does, once per module. */
static MicroKernels micro_kernels(Gen *G, int nv) {
    MicroKernels k = {0};
    int tiling_nv = G->g.nv;
    G->g.nv = nv;
    const char *t = G->s->f64 ? "f64" : "f32";
    char name[96];
    snprintf(name, sizeof name, "aec.gemm.%s.%dx%dx%d.kernel", t, G->g.mr, nv, G->g.vl);
    if (!(k.packed = LLVMGetNamedFunction(G->mod, name)))
        k.packed = gemm_micro_kernel(G, name, false);
    if (G->direct_a) {
        snprintf(name, sizeof name, "aec.gemm.%s.%dx%dx%d.kernel_a%s", t, G->g.mr, nv, G->g.vl,
                 G->s->ta ? "t" : "");
        if (!(k.direct = LLVMGetNamedFunction(G->mod, name)))
            k.direct = gemm_micro_kernel(G, name, true);
    }
    G->g.nv = tiling_nv;
    k.nv = nv;
    return k;
}

LLVMValueRef gemm_emit(LLVMModuleRef mod, const GemmSpec *s, GemmTarget target, const char *name) {
    Gen G = {0};
    gen_begin(&G, mod, s, target);

    G.direct_a = gemm_a_in_place(s, &G.g);
    G.direct_b = gemm_b_in_place(s, &G.g);
    /* The functions that depend on the tiling and transpositions only,
     * once per module. */
    char key[112], pack_key[96], sub[128];
    snprintf(pack_key, sizeof pack_key, "aec.gemm.%s.%dx%dx%d.%c%c%s%s", s->f64 ? "f64" : "f32",
             G.g.mr, G.g.nv, G.g.vl, s->ta ? 't' : 'n', s->tb ? 't' : 'n',
             G.direct_a ? ".direct" : "", G.direct_b ? ".direct_b" : "");
    /* The last column panel's vectors when fewer than nv (n known and
     * more than a panel): its tiles take micro-kernels that narrow, which
     * compute the same sums without the padding's zero columns
     * (fmnist_dense's 784 columns: 12 panels of 64 and one of 16, that one
     * at a quarter of the FMAs' use). A product of one partial panel has
     * its tile chosen for its width already, and a tiny model's extra
     * kernels would only cost compile time. */
    int edge_nv = 0;
    if (s->n > G.g.nr && s->n % G.g.nr) {
        int e = (int)ceil_div(s->n % G.g.nr, G.g.vl);
        if (e < G.g.nv) edge_nv = e;
    }
    /* the tile task depends on accumulating and the edge too; the packing does not */
    snprintf(key, sizeof key, "%s%s", pack_key, s->accumulate ? ".acc" : "");
    if (edge_nv) snprintf(key + strlen(key), sizeof key - strlen(key), ".e%d", edge_nv);
    LLVMValueRef pack_task, compute_task;
    snprintf(sub, sizeof sub, "%s.pack", pack_key);
    if (!(pack_task = LLVMGetNamedFunction(mod, sub))) pack_task = gemm_pack_task(&G, sub);
    snprintf(sub, sizeof sub, "%s.tile", key);
    if (!(compute_task = LLVMGetNamedFunction(mod, sub))) {
        MicroKernels full = micro_kernels(&G, G.g.nv), edge = {0};
        if (edge_nv) edge = micro_kernels(&G, edge_nv);
        compute_task = gemm_tile_task(&G, sub, full, edge);
    }

    bool one_row = s->m == 1 || s->m == IR_BATCH_ROWS; /* can m be 1 */

    LLVMValueRef f = new_function(&G, name, gemm_function_type(G.ctx, s->f64));
    LLVMValueRef arg = LLVMBuildAlloca(G.b, G.arg_ty, "arg");
    LLVMValueRef a = LLVMGetParam(f, 0), b = LLVMGetParam(f, 1), c = LLVMGetParam(f, 2);
    LLVMValueRef batch = LLVMGetParam(f, 3), pack = LLVMGetParam(f, 4);
    LLVMValueRef exec = LLVMGetParam(f, 5), argp = LLVMBuildBitCast(G.b, arg, G.i8p, "");
    LLVMValueRef epi = LLVMGetParam(f, 6), epi_env = LLVMGetParam(f, 7);
    Dims d = spec_dims(&G, batch, pack);
    LLVMValueRef vals[ARG_FIELDS] = {a,
                                     b,
                                     c,
                                     pack,
                                     d.m,
                                     d.n,
                                     d.k,
                                     d.lda,
                                     d.ldb,
                                     d.ldc,
                                     i64c(&G, G.g.kc),
                                     i64c(&G, G.g.mc_panels),
                                     i64c(&G, G.g.nc_panels),
                                     i64c(&G, gemm_pack_group(&G, G.g.mr)),
                                     i64c(&G, gemm_pack_group(&G, G.g.nr)),
                                     epi,
                                     epi_env};
    for (int i = 0; i < ARG_FIELDS; i++)
        LLVMBuildStore(G.b, vals[i], LLVMBuildStructGEP2(G.b, G.arg_ty, arg, (unsigned)i, ""));
    LLVMValueRef empty = LLVMBuildOr(G.b, LLVMBuildICmp(G.b, LLVMIntSLE, d.m, i64c(&G, 0), ""),
                                     LLVMBuildICmp(G.b, LLVMIntSLE, d.n, i64c(&G, 0), ""), "");
    If f_empty = if_begin(&G, empty, "empty");
    if_else(&G, &f_empty);
    /* one row (a batch of 1): the matrix-vector kernel */
    If f_row = {0};
    if (one_row) {
        f_row = if_begin(&G, LLVMBuildICmp(G.b, LLVMIntEQ, d.m, i64c(&G, 1), ""), "one_row");
        gemm_run_gemv(&G, exec, arg, &d);
        gemm_call_epilogue(&G, arg, i64c(&G, 0), i64c(&G, 1), i64c(&G, 0), d.n, i64c(&G, 0));
        if_else(&G, &f_row);
    }
    if (!s->accumulate) { /* k = 0: C = 0 (the K loop below runs no block) */
        If f_k0 = if_begin(&G, LLVMBuildICmp(G.b, LLVMIntSLE, d.k, i64c(&G, 0), ""), "k0");
        Loop li = loop(&G, d.m, "z");
        Loop lj = loop(&G, d.n, "zj");
        store_t(&G, LLVMConstNull(G.T), at(&G, c, add(&G, mul(&G, li.index, d.ldc), lj.index)));
        loop_end(&G, &lj);
        loop_end(&G, &li);
        if_else(&G, &f_k0);
        if_end(&G, &f_k0);
    }
    LLVMValueRef n_pack = add(&G, gemm_pack_a_tasks(&G, &d, i64c(&G, gemm_pack_group(&G, G.g.mr))),
                              gemm_pack_b_tasks(&G, &d, i64c(&G, gemm_pack_group(&G, G.g.nr))));
    gemm_run_tasks(&G, exec, n_pack, pack_task, argp);
    LLVMValueRef n_tiles =
        mul(&G, cdiv(&G, d.mp, G.g.mc_panels),
            gemm_col_blocks(&G, &d, i64c(&G, G.g.mc_panels), i64c(&G, G.g.nc_panels)));
    gemm_run_tasks(&G, exec, n_tiles, compute_task, argp);
    if (one_row) if_end(&G, &f_row);
    if_end(&G, &f_empty);
    LLVMBuildRetVoid(G.b);
    LLVMDisposeBuilder(G.b);
    return f;
}
