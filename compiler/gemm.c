/* gemm.c — shape-specialised matrix products, generated as LLVM IR.
 *
 * Takes a GemmSpec (C = op(A)·op(B) row-major, dimensions constant but for
 * a multiple of the batch) and a GemmTarget; produces one function (see
 * gemm.h) built as GotoBLAS/BLIS build theirs:
 *
 *   phase 1 (tasks): pack op(A) into row panels of mr rows, [panel][k][mr],
 *                    and op(B) into column panels of nr columns, [panel][k][nr],
 *                    zero-padded to whole panels;
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
#include "gemm.h"

#include <llvm-c/DebugInfo.h>
#include <llvm-c/TargetMachine.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- targets */

/* CPUs whose widest vectors are 512 or 256 bits, for a CPU named without a
 * feature string (`--cpu NAME`). A CPU not listed gets 128-bit vectors:
 * slower, never wrong — LLVM legalizes any vector width. */
static const struct { const char *cpu; int bits; } cpu_vectors[] = {
    {"x86-64-v4", 512},   {"skylake-avx512", 512}, {"cascadelake", 512}, {"cooperlake", 512},
    {"icelake-client", 512}, {"icelake-server", 512}, {"tigerlake", 512}, {"sapphirerapids", 512},
    {"rocketlake", 512},  {"cannonlake", 512},     {"znver4", 512},      {"znver5", 512},
    {"x86-64-v3", 256},   {"haswell", 256},        {"broadwell", 256},   {"skylake", 256},
    {"alderlake", 256},   {"raptorlake", 256},     {"znver1", 256},      {"znver2", 256},
    {"znver3", 256},
};

static bool has_feature(const char *features, const char *f) {
    size_t n = strlen(f);
    for (const char *p = features; p && (p = strstr(p, f)); p += n)
        if (p > features && p[-1] == '+' && (p - 1 == features || p[-2] == ',') && (p[n] == ',' || !p[n]))
            return true;
    return false;
}

GemmTarget gemm_target(const char *triple, const char *cpu, const char *features) {
    GemmTarget t = {128, 16};
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
        if (strncmp(triple, "aarch64", 7) == 0 || strncmp(triple, "arm64", 5) == 0) t.registers = 32;
    } else if (features && has_feature(features, "avx512f")) {
        t = (GemmTarget){512, 32};
    } else if (features && (has_feature(features, "avx2") || has_feature(features, "avx"))) {
        t = (GemmTarget){256, 16};
    } else if (cpu) {
        for (size_t i = 0; i < sizeof cpu_vectors / sizeof cpu_vectors[0]; i++)
            if (strcmp(cpu, cpu_vectors[i].cpu) == 0)
                t = (GemmTarget){cpu_vectors[i].bits, cpu_vectors[i].bits == 512 ? 32 : 16};
    }
    LLVMDisposeMessage(host_triple);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    return t;
}

/* ---------------------------------------------------------------- tiling */

enum { IR_BATCH_ROWS = -1 }; /* a dimension that is the batch itself */

static long ceil_div(long a, long b) { return (a + b - 1) / b; }
static long dim_hint(long d, int batch) { return d > 0 ? d : -d * (batch > 0 ? batch : 256); }

/* Micro-tiles by vector registers: mr × nv accumulators plus nv for B and
 * one broadcast must fit. The first fits best when several waste the same. */
static const struct { int regs, mr, nv; } tiles[] = {
    {32, 6, 4}, {32, 14, 2}, {32, 8, 3}, {32, 28, 1},
    {16, 6, 2},  {16, 4, 3}, {16, 12, 1},
};

GemmTiling gemm_tiling(const GemmSpec *s, GemmTarget t) {
    GemmTiling g = {0};
    g.vl = t.vector_bits / (s->f64 ? 64 : 32);
    long m = dim_hint(s->m, s->batch_hint), n = dim_hint(s->n, s->batch_hint);
    long k = dim_hint(s->k, s->batch_hint);
    double best = 0;
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        if (tiles[i].regs != t.registers) continue;
        long nr = (long)tiles[i].nv * g.vl;
        /* padded work over useful work; a narrow matrix prefers narrow tiles */
        double waste = (double)(ceil_div(m, tiles[i].mr) * tiles[i].mr) * (double)(ceil_div(n, nr) * nr) /
                       ((double)m * (double)n);
        /* another tile only for a clearly better fit: fewer tiles mean
         * fewer kernels to compile, shared by more products */
        if (!g.mr || waste < best * 0.9) {
            best = waste;
            g.mr = tiles[i].mr;
            g.nv = tiles[i].nv;
        }
    }
    g.nr = g.nv * g.vl;
    /* K blocks of at most 256 (f32) equal parts: kc·nr of B stays in L1-L2 */
    long kc_max = s->f64 ? 128 : 256;
    g.kc = s->k > 0 ? ceil_div(k, ceil_div(k, kc_max)) : kc_max;
    /* Task blocks: about 128 rows × 256 columns, so a block of A (mc × kc)
     * sits in L2 and a W1-sized product splits into a dozen or more tasks. */
    g.mc_panels = (int)ceil_div(128, g.mr);
    g.nc_panels = (int)(ceil_div(256, g.nr) > ceil_div(n, g.nr) ? ceil_div(n, g.nr) : ceil_div(256, g.nr));
    if (g.nc_panels < 1) g.nc_panels = 1;
    return g;
}

void gemm_pack_elems(const GemmSpec *s, GemmTarget t, long *per_batch, long *fixed) {
    GemmTiling g = gemm_tiling(s, t);
    /* A: ceil(m/mr)·mr·k ≤ (m + mr − 1)·k; B: k·ceil(n/nr)·nr. A batch
     * dimension in both m and k would make it quadratic in the batch. */
    long m = s->m, k = s->k, n = s->n;
    long np = n > 0 ? ceil_div(n, g.nr) * g.nr : 0;
    long pb = 0, fx = 0;
    long lda = s->lda ? s->lda : k;
    if (!s->ta && lda > 0) fx += g.mr * k; /* direct A: a partial last panel only */
    else if (m > 0 && k > 0) fx += (ceil_div(m, g.mr) * g.mr) * k;
    else if (m < 0 && k > 0) pb += -m * k, fx += (g.mr - 1) * k;
    else if (m > 0 && k < 0) pb += ceil_div(m, g.mr) * g.mr * -k;
    else pb = -1; /* both batched: not supported (caller falls back) */
    if (pb >= 0) {
        if (n > 0 && k > 0) fx += k * np;
        else if (n > 0 && k < 0) pb += -k * np;
        else pb = -1;
    }
    *per_batch = pb;
    *fixed = fx + 16; /* one vector of slack: panels start aligned */
}

void gemm_pack_bound(const GemmSpec *s, long *per_batch, long *fixed) {
    static const GemmTarget targets[] = {{512, 32}, {256, 16}, {128, 32}, {128, 16}};
    *per_batch = *fixed = 0;
    for (int f64 = 0; f64 < 2; f64++)
        for (int t = 0; t < 4; t++) {
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

/* ------------------------------------------------------------ IR helpers */

typedef struct Gen {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMTypeRef T, V, T_ptr, V_ptr, i8p, i32, i64, void_t, arg_ty, arg_ptr, task_ty;
    const GemmSpec *s;
    GemmTiling g;
    bool direct_a; /* the micro-kernel reads op(A) = A (m × k) where it is, not packed */
    GemmTarget target;
    LLVMValueRef fma; /* llvm.fma.vNfT */
    LLVMTypeRef fma_ty;
} Gen;

static LLVMValueRef i64c(Gen *G, long v) { return LLVMConstInt(G->i64, (unsigned long long)v, 1); }
static LLVMValueRef add(Gen *G, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(G->b, a, b, ""); }
static LLVMValueRef mul(Gen *G, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(G->b, a, b, ""); }
static LLVMValueRef addc(Gen *G, LLVMValueRef a, long c) { return c ? add(G, a, i64c(G, c)) : a; }
static LLVMValueRef mulc(Gen *G, LLVMValueRef a, long c) { return c == 1 ? a : mul(G, a, i64c(G, c)); }
static LLVMValueRef imin(Gen *G, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static LLVMValueRef cdiv(Gen *G, LLVMValueRef a, long b) {
    return LLVMBuildSDiv(G->b, addc(G, a, b - 1), i64c(G, b), "");
}
static LLVMValueRef at(Gen *G, LLVMValueRef base, LLVMValueRef i) {
    return LLVMBuildGEP2(G->b, G->T, base, &i, 1, "");
}
static LLVMValueRef load_t(Gen *G, LLVMValueRef p) {
    LLVMValueRef v = LLVMBuildLoad2(G->b, G->T, p, "");
    LLVMSetAlignment(v, G->s->f64 ? 8 : 4);
    return v;
}
static void store_t(Gen *G, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(G->b, v, p), G->s->f64 ? 8 : 4);
}
static LLVMValueRef load_v(Gen *G, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(G->b, G->V, LLVMBuildBitCast(G->b, p, G->V_ptr, ""), "");
    LLVMSetAlignment(v, align);
    return v;
}
static void store_v(Gen *G, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(G->b, v, LLVMBuildBitCast(G->b, p, G->V_ptr, "")),
                     G->s->f64 ? 8 : 4);
}
static LLVMBasicBlockRef block(Gen *G, const char *name) {
    return LLVMAppendBasicBlockInContext(G->ctx, G->fn, name);
}

typedef struct Loop {
    LLVMValueRef index;
    LLVMBasicBlockRef head, exit;
} Loop;

/* for (i = from; i < end; i++): leaves the builder in the body. */
static Loop loop_from(Gen *G, LLVMValueRef from, LLVMValueRef end, const char *name) {
    Loop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(G->b), body = block(G, name);
    l.head = block(G, name);
    l.exit = block(G, "");
    LLVMBuildBr(G->b, l.head);
    LLVMPositionBuilderAtEnd(G->b, l.head);
    l.index = LLVMBuildPhi(G->b, G->i64, name);
    LLVMAddIncoming(l.index, &from, &pre, 1);
    LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, l.index, end, ""), body, l.exit);
    LLVMPositionBuilderAtEnd(G->b, body);
    return l;
}
static Loop loop(Gen *G, LLVMValueRef end, const char *name) { return loop_from(G, i64c(G, 0), end, name); }
/* Marks the loop whose latch branch is br as not to be unrolled: these
 * loops are already blocked by hand, and unrolling them again costs more
 * compile time than it gains. */
static void no_unroll(Gen *G, LLVMValueRef br) {
    static const char key[] = "llvm.loop.unroll.disable";
    LLVMMetadataRef temp = LLVMTemporaryMDNode(G->ctx, NULL, 0);
    LLVMMetadataRef opt = LLVMMDStringInContext2(G->ctx, key, sizeof key - 1);
    LLVMMetadataRef opts = LLVMMDNodeInContext2(G->ctx, &opt, 1);
    LLVMMetadataRef ops[2] = {temp, opts};
    LLVMMetadataRef self = LLVMMDNodeInContext2(G->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(temp, self);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(G->ctx, "llvm.loop", 9), LLVMMetadataAsValue(G->ctx, self));
}

static void loop_end(Gen *G, Loop *l) {
    LLVMValueRef next = addc(G, l->index, 1);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(G->b);
    LLVMAddIncoming(l->index, &next, &latch, 1);
    no_unroll(G, LLVMBuildBr(G->b, l->head));
    LLVMPositionBuilderAtEnd(G->b, l->exit);
}

/* A k loop `for (k = 0; k < end; k += step)` carrying n vector
 * accumulators in registers (phis), from first[] (NULL: zeros): the
 * builder is left in the body with acc[] the current values; acc_loop_end
 * takes the next values and leaves the builder after the loop, acc[] then
 * the final values. */
enum { MAX_ACC = 28 * 4 };
typedef struct AccLoop {
    LLVMValueRef k, acc[MAX_ACC];
    LLVMBasicBlockRef head, done;
    int n;
} AccLoop;

static AccLoop acc_loop(Gen *G, LLVMValueRef end, int n, const LLVMValueRef *first, const char *name) {
    AccLoop l = {.n = n};
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(G->b), body = block(G, name);
    l.head = block(G, name);
    l.done = block(G, "");
    LLVMBuildBr(G->b, l.head);
    LLVMPositionBuilderAtEnd(G->b, l.head);
    LLVMValueRef zero = i64c(G, 0), vzero = LLVMConstNull(G->V);
    l.k = LLVMBuildPhi(G->b, G->i64, "k");
    LLVMAddIncoming(l.k, &zero, &pre, 1);
    for (int q = 0; q < n; q++) {
        l.acc[q] = LLVMBuildPhi(G->b, G->V, "acc");
        LLVMAddIncoming(l.acc[q], first ? (LLVMValueRef *)&first[q] : &vzero, &pre, 1);
    }
    LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, l.k, end, ""), body, l.done);
    LLVMPositionBuilderAtEnd(G->b, body);
    return l;
}

static void acc_loop_end(Gen *G, AccLoop *l, const LLVMValueRef *next, long step) {
    LLVMValueRef k1 = addc(G, l->k, step);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(G->b);
    LLVMAddIncoming(l->k, &k1, &latch, 1);
    for (int q = 0; q < l->n; q++) LLVMAddIncoming(l->acc[q], (LLVMValueRef *)&next[q], &latch, 1);
    no_unroll(G, LLVMBuildBr(G->b, l->head));
    LLVMPositionBuilderAtEnd(G->b, l->done);
}

/* if (cond) { then } else { other }: returns the blocks; the caller fills
 * them and calls join. */
typedef struct If {
    LLVMBasicBlockRef then, other, join;
} If;
static If if_begin(Gen *G, LLVMValueRef cond, const char *name) {
    If f = {block(G, name), block(G, ""), block(G, "")};
    LLVMBuildCondBr(G->b, cond, f.then, f.other);
    LLVMPositionBuilderAtEnd(G->b, f.then);
    return f;
}
static void if_else(Gen *G, If *f) {
    LLVMBuildBr(G->b, f->join);
    LLVMPositionBuilderAtEnd(G->b, f->other);
}
static void if_end(Gen *G, If *f) {
    LLVMBuildBr(G->b, f->join);
    LLVMPositionBuilderAtEnd(G->b, f->join);
}

static LLVMValueRef new_function(Gen *G, const char *name, LLVMTypeRef ty) {
    LLVMValueRef f = LLVMAddFunction(G->mod, name, ty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    /* Each function is called from many places (every product of its
     * tiling); inlined, their copies would only cost compile time. */
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(G->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    if (G->target.vector_bits >= 512) {
        /* keep 512-bit vectors on CPUs tuned to prefer 256 (LLVM splits them otherwise) */
        const char *keys[] = {"min-legal-vector-width", "prefer-vector-width"};
        for (int i = 0; i < 2; i++)
            LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                                    LLVMCreateStringAttribute(G->ctx, keys[i], (unsigned)strlen(keys[i]),
                                                              "512", 3));
    }
    G->fn = f;
    LLVMPositionBuilderAtEnd(G->b, block(G, "entry"));
    return f;
}

/* ----------------------------------------------------------- dimensions */

/* The run-time value of a dimension: a constant, or −d·batch. */
static LLVMValueRef dim(Gen *G, long d, LLVMValueRef batch) { return d > 0 ? i64c(G, d) : mulc(G, batch, -d); }

typedef struct Dims {
    LLVMValueRef m, n, k, lda, ldb, ldc;
    LLVMValueRef mp, np;   /* row and column panels */
    LLVMValueRef a_pack, b_pack; /* T*: the packed panels in `pack` */
} Dims;

/* The panels' places in pack. B's panels start on a 64-byte boundary: the
 * micro-kernel's loads of them are aligned (pack itself is
 * AEC_ALIGN-aligned). With direct A, only a partial last row panel is
 * packed, at panel 0. */
static void panels(Gen *G, Dims *d, LLVMValueRef pack) {
    d->mp = cdiv(G, d->m, G->g.mr);
    d->np = cdiv(G, d->n, G->g.nr);
    d->a_pack = pack;
    LLVMValueRef a_elems = mul(G, G->direct_a ? i64c(G, G->g.mr) : mulc(G, d->mp, G->g.mr), d->k);
    long per_line = 64 / (G->s->f64 ? 8 : 4);
    d->b_pack = at(G, pack, mulc(G, cdiv(G, a_elems, per_line), per_line));
}

/* The product's dimensions at run time: constants, or multiples of batch. */
static Dims spec_dims(Gen *G, LLVMValueRef batch, LLVMValueRef pack) {
    const GemmSpec *s = G->s;
    Dims d;
    d.m = dim(G, s->m, batch);
    d.n = dim(G, s->n, batch);
    d.k = dim(G, s->k, batch);
    d.lda = s->lda ? i64c(G, s->lda) : s->ta ? d.m : d.k;
    d.ldb = s->ldb ? i64c(G, s->ldb) : s->tb ? d.k : d.n;
    d.ldc = s->ldc ? i64c(G, s->ldc) : d.n;
    panels(G, &d, pack);
    return d;
}

/* The task argument: everything a task needs, as one struct in the
 * caller's frame. The task functions read the shape from it, so products
 * of one tiling and transposition share them (and their compile time). */
enum {
    ARG_A, ARG_B, ARG_C, ARG_PACK, /* pointers */
    ARG_M, ARG_N, ARG_K, ARG_LDA, ARG_LDB, ARG_LDC,
    ARG_KC, ARG_MC_PANELS, ARG_NC_PANELS, ARG_A_GROUP, ARG_B_GROUP, /* the tiling's blocks */
    ARG_FIELDS
};

static LLVMValueRef arg_field(Gen *G, LLVMValueRef arg, int field) {
    LLVMValueRef p = LLVMBuildStructGEP2(G->b, G->arg_ty, arg, (unsigned)field, "");
    LLVMTypeRef ty = field > ARG_PACK ? G->i64 : G->T_ptr;
    return LLVMBuildLoad2(G->b, ty, p, "");
}

static Dims arg_dims(Gen *G, LLVMValueRef arg) {
    Dims d;
    d.m = arg_field(G, arg, ARG_M);
    d.n = arg_field(G, arg, ARG_N);
    d.k = arg_field(G, arg, ARG_K);
    d.lda = arg_field(G, arg, ARG_LDA);
    d.ldb = arg_field(G, arg, ARG_LDB);
    d.ldc = arg_field(G, arg, ARG_LDC);
    panels(G, &d, arg_field(G, arg, ARG_PACK));
    return d;
}

/* ---------------------------------------------------------------- packing */

/* Row panel p of op(A): dst[k][i] = op(A)[p·mr + i][k], zero past row m. */
static void pack_a_panel(Gen *G, const Dims *d, LLVMValueRef a, LLVMValueRef p) {
    int mr = G->g.mr;
    LLVMValueRef dst = at(G, d->a_pack, G->direct_a ? i64c(G, 0) : mul(G, mulc(G, p, mr), d->k));
    LLVMValueRef row0 = mulc(G, p, mr);
    LLVMValueRef full = LLVMBuildICmp(G->b, LLVMIntSLE, addc(G, row0, mr), d->m, "");
    If f = if_begin(G, full, "a_full");
    if (G->s->ta) { /* A stored k × m: mr contiguous values per k */
        Loop lk = loop(G, d->k, "pk");
        LLVMValueRef src = at(G, a, add(G, mul(G, lk.index, d->lda), row0));
        LLVMValueRef out = at(G, dst, mulc(G, lk.index, mr));
        for (int i = 0; i < mr; i++) store_t(G, load_t(G, at(G, src, i64c(G, i))), at(G, out, i64c(G, i)));
        loop_end(G, &lk);
    } else { /* A stored m × k: row by row, k contiguous */
        Loop li = loop(G, i64c(G, mr), "pi");
        LLVMValueRef src = at(G, a, mul(G, add(G, row0, li.index), d->lda));
        Loop lk = loop(G, d->k, "pk");
        store_t(G, load_t(G, at(G, src, lk.index)), at(G, dst, add(G, mulc(G, lk.index, mr), li.index)));
        loop_end(G, &lk);
        loop_end(G, &li);
    }
    if_else(G, &f);
    { /* the last, partial panel: element by element, zeros past m */
        Loop lk = loop(G, d->k, "pke");
        Loop li = loop(G, i64c(G, mr), "pie");
        LLVMValueRef row = add(G, row0, li.index);
        LLVMValueRef in = LLVMBuildICmp(G->b, LLVMIntSLT, row, d->m, "");
        LLVMValueRef idx = G->s->ta ? add(G, mul(G, lk.index, d->lda), row) : add(G, mul(G, row, d->lda), lk.index);
        idx = LLVMBuildSelect(G->b, in, idx, i64c(G, 0), "");
        LLVMValueRef v = LLVMBuildSelect(G->b, in, load_t(G, at(G, a, idx)), LLVMConstNull(G->T), "");
        store_t(G, v, at(G, dst, add(G, mulc(G, lk.index, mr), li.index)));
        loop_end(G, &li);
        loop_end(G, &lk);
    }
    if_end(G, &f);
}

/* Transposes vl vectors of vl lanes in place: log2(vl) rounds of
 * interleaving pairs (v[i], v[i + vl/2]) — the perfect-shuffle transpose. */
static void transpose(Gen *G, LLVMValueRef *v) {
    int vl = G->g.vl, half = vl / 2;
    LLVMValueRef lo[64], hi[64], next[64];
    for (int l = 0; l < half; l++) {
        lo[2 * l] = LLVMConstInt(G->i32, (unsigned)l, 0);
        lo[2 * l + 1] = LLVMConstInt(G->i32, (unsigned)(vl + l), 0);
        hi[2 * l] = LLVMConstInt(G->i32, (unsigned)(half + l), 0);
        hi[2 * l + 1] = LLVMConstInt(G->i32, (unsigned)(vl + half + l), 0);
    }
    LLVMValueRef lo_mask = LLVMConstVector(lo, (unsigned)vl), hi_mask = LLVMConstVector(hi, (unsigned)vl);
    for (int round = 1; round < vl; round *= 2) {
        for (int i = 0; i < half; i++) {
            next[2 * i] = LLVMBuildShuffleVector(G->b, v[i], v[i + half], lo_mask, "");
            next[2 * i + 1] = LLVMBuildShuffleVector(G->b, v[i], v[i + half], hi_mask, "");
        }
        memcpy(v, next, sizeof(LLVMValueRef) * (size_t)vl);
    }
}

/* Column panel p of op(B): dst[k][j] = op(B)[k][p·nr + j], zero past n. */
static void pack_b_panel(Gen *G, const Dims *d, LLVMValueRef b, LLVMValueRef p) {
    int nr = G->g.nr, vl = G->g.vl;
    LLVMValueRef dst = at(G, d->b_pack, mul(G, mulc(G, p, nr), d->k));
    LLVMValueRef col0 = mulc(G, p, nr);
    LLVMValueRef full = LLVMBuildICmp(G->b, LLVMIntSLE, addc(G, col0, nr), d->n, "");
    If f = if_begin(G, full, "b_full");
    if (!G->s->tb) { /* B stored k × n: nr contiguous values per k, whole vectors */
        Loop lk = loop(G, d->k, "pk");
        LLVMValueRef src = at(G, b, add(G, mul(G, lk.index, d->ldb), col0));
        LLVMValueRef out = at(G, dst, mulc(G, lk.index, nr));
        for (int v = 0; v < G->g.nv; v++)
            store_v(G, load_v(G, at(G, src, i64c(G, v * vl)), G->s->f64 ? 8 : 4), at(G, out, i64c(G, v * vl)));
        loop_end(G, &lk);
    } else { /* B stored n × k: column j of op(B) is row j, k contiguous */
        /* vl × vl blocks transposed in registers, then the k past the last block */
        LLVMValueRef kv = mulc(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), vl);
        Loop lk = loop(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), "pkv");
        LLVMValueRef k0 = mulc(G, lk.index, vl);
        for (int jb = 0; jb < G->g.nv; jb++) {
            LLVMValueRef rows[64];
            for (int r = 0; r < vl; r++)
                rows[r] = load_v(G, at(G, b, add(G, mul(G, addc(G, col0, jb * vl + r), d->ldb), k0)),
                                 G->s->f64 ? 8 : 4);
            transpose(G, rows);
            for (int q = 0; q < vl; q++)
                store_v(G, rows[q], at(G, dst, addc(G, mulc(G, addc(G, k0, q), nr), jb * vl)));
        }
        loop_end(G, &lk);
        Loop lj = loop(G, i64c(G, nr), "pj");
        LLVMValueRef src = at(G, b, mul(G, add(G, col0, lj.index), d->ldb));
        Loop lt = loop_from(G, kv, d->k, "pkt");
        store_t(G, load_t(G, at(G, src, lt.index)), at(G, dst, add(G, mulc(G, lt.index, nr), lj.index)));
        loop_end(G, &lt);
        loop_end(G, &lj);
    }
    if_else(G, &f);
    {
        Loop lk = loop(G, d->k, "pke");
        Loop lj = loop(G, i64c(G, nr), "pje");
        LLVMValueRef col = add(G, col0, lj.index);
        LLVMValueRef in = LLVMBuildICmp(G->b, LLVMIntSLT, col, d->n, "");
        LLVMValueRef idx = G->s->tb ? add(G, mul(G, col, d->ldb), lk.index) : add(G, mul(G, lk.index, d->ldb), col);
        idx = LLVMBuildSelect(G->b, in, idx, i64c(G, 0), "");
        LLVMValueRef v = LLVMBuildSelect(G->b, in, load_t(G, at(G, b, idx)), LLVMConstNull(G->T), "");
        store_t(G, v, at(G, dst, add(G, mulc(G, lk.index, nr), lj.index)));
        loop_end(G, &lj);
        loop_end(G, &lk);
    }
    if_end(G, &f);
}

/* Panels per packing task: about 64 KB of packed data each. */
static long pack_group(Gen *G, int width) {
    long per_panel = (long)width * (G->s->k > 0 ? G->s->k : 256);
    long g = (16384 + per_panel - 1) / per_panel;
    return g < 1 ? 1 : g;
}

/* True when m leaves a partial last row panel. */
static LLVMValueRef partial_rows(Gen *G, const Dims *d) {
    return LLVMBuildICmp(G->b, LLVMIntNE, LLVMBuildSRem(G->b, d->m, i64c(G, G->g.mr), ""), i64c(G, 0), "");
}

/* Tasks that pack A: groups of panels, or with direct A one for a partial
 * last panel (none when m is a multiple of mr). */
static LLVMValueRef pack_a_tasks(Gen *G, const Dims *d, LLVMValueRef group) {
    if (G->direct_a) return LLVMBuildZExt(G->b, partial_rows(G, d), G->i64, "");
    return LLVMBuildSDiv(G->b, LLVMBuildSub(G->b, add(G, d->mp, group), i64c(G, 1), ""), group, "");
}

/* Phase 1's task t: tasks [0, na) pack A, the rest groups of B panels. */
static LLVMValueRef emit_pack_task(Gen *G, const char *name) {
    LLVMValueRef f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), G->arg_ptr, "arg");
    LLVMValueRef t = LLVMGetParam(f, 1);
    Dims d = arg_dims(G, arg);
    LLVMValueRef gb = arg_field(G, arg, ARG_B_GROUP);
    LLVMValueRef na = pack_a_tasks(G, &d, arg_field(G, arg, ARG_A_GROUP));
    If f_a = if_begin(G, LLVMBuildICmp(G->b, LLVMIntSLT, t, na, ""), "pack_a");
    if (G->direct_a) {
        pack_a_panel(G, &d, arg_field(G, arg, ARG_A), addc(G, d.mp, -1));
    } else {
        LLVMValueRef ga = arg_field(G, arg, ARG_A_GROUP);
        LLVMValueRef p0 = mul(G, t, ga);
        Loop lp = loop_from(G, p0, imin(G, add(G, p0, ga), d.mp), "pa");
        pack_a_panel(G, &d, arg_field(G, arg, ARG_A), lp.index);
        loop_end(G, &lp);
    }
    if_else(G, &f_a);
    {
        LLVMValueRef p0 = mul(G, LLVMBuildSub(G->b, t, na, ""), gb);
        Loop lp = loop_from(G, p0, imin(G, add(G, p0, gb), d.np), "pb");
        pack_b_panel(G, &d, arg_field(G, arg, ARG_B), lp.index);
        loop_end(G, &lp);
    }
    if_end(G, &f_a);
    LLVMBuildRetVoid(G->b);
    return f;
}

/* ------------------------------------------------------------ micro-kernel */

/* c[0..mr)[0..nr) (row stride ldc) = (load ? c : 0) + Σ_k a[i][k]·pb[k][j]
 * for k < kc: mr·nv accumulators in registers, k in increasing order.
 * a[i][k] is a packed panel's pa[k·mr + i], or A's own pa[i·lda + k] (direct). */
static LLVMValueRef emit_micro_kernel(Gen *G, const char *name, bool direct) {
    int mr = G->g.mr, nv = G->g.nv, vl = G->g.vl, nr = G->g.nr;
    LLVMTypeRef params[] = {G->T_ptr, G->T_ptr, G->i64, G->T_ptr, G->i64, LLVMInt1TypeInContext(G->ctx), G->i64};
    LLVMValueRef f = new_function(G, name, LLVMFunctionType(G->void_t, params, 7, 0));
    /* a[i][k] = pa[i·a_row + k·a_k]: (1, mr) packed, (lda, 1) in place */
    LLVMValueRef a_row = direct ? LLVMGetParam(f, 6) : i64c(G, 1);
    long a_k = direct ? 1 : mr;
    LLVMValueRef pa = LLVMGetParam(f, 0), pb = LLVMGetParam(f, 1), kc = LLVMGetParam(f, 2);
    LLVMValueRef c = LLVMGetParam(f, 3), ldc = LLVMGetParam(f, 4), load_c = LLVMGetParam(f, 5);
    for (int i = 0; i < 4; i++) /* the packed panels and C never alias */
        if (i != 2) LLVMAddAttributeAtIndex(f, (unsigned)i + 1,
                                        LLVMCreateEnumAttribute(G->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(G->b);
    LLVMBasicBlockRef from_c = block(G, "load_c"), zero = block(G, "zero"), start = block(G, "start");
    LLVMBuildCondBr(G->b, load_c, from_c, zero);
    LLVMPositionBuilderAtEnd(G->b, from_c);
    LLVMValueRef init_c[MAX_ACC];
    for (int i = 0; i < mr; i++) {
        LLVMValueRef row = at(G, c, mulc(G, ldc, i));
        for (int v = 0; v < nv; v++) init_c[i * nv + v] = load_v(G, at(G, row, i64c(G, v * vl)), G->s->f64 ? 8 : 4);
    }
    LLVMBuildBr(G->b, start);
    LLVMPositionBuilderAtEnd(G->b, zero);
    LLVMBuildBr(G->b, start);
    (void)entry;

    /* start: the accumulators' first values; then the k loop */
    LLVMPositionBuilderAtEnd(G->b, start);
    LLVMValueRef first[MAX_ACC];
    for (int q = 0; q < mr * nv; q++) {
        first[q] = LLVMBuildPhi(G->b, G->V, "c0");
        LLVMValueRef in[2] = {init_c[q], LLVMConstNull(G->V)};
        LLVMBasicBlockRef from[2] = {from_c, zero};
        LLVMAddIncoming(first[q], in, from, 2);
    }
    AccLoop l = acc_loop(G, kc, mr * nv, first, "k");
    LLVMValueRef k = l.k, *acc = l.acc;
    LLVMValueRef brow = at(G, pb, mulc(G, k, nr)), arow = at(G, pa, mulc(G, k, a_k));
    LLVMValueRef bv[4];
    for (int v = 0; v < nv; v++) bv[v] = load_v(G, at(G, brow, i64c(G, v * vl)), (unsigned)(vl * (G->s->f64 ? 8 : 4)));
    LLVMValueRef next[MAX_ACC];
    LLVMValueRef undef = LLVMGetUndef(G->V), zmask = LLVMConstNull(LLVMVectorType(G->i32, (unsigned)vl));
    for (int i = 0; i < mr; i++) {
        LLVMValueRef ai = load_t(G, at(G, arow, mulc(G, a_row, i)));
        LLVMValueRef splat = LLVMBuildShuffleVector(
            G->b, LLVMBuildInsertElement(G->b, undef, ai, LLVMConstInt(G->i32, 0, 0), ""), undef, zmask, "a");
        for (int v = 0; v < nv; v++) {
            LLVMValueRef args[3] = {splat, bv[v], acc[i * nv + v]};
            next[i * nv + v] = LLVMBuildCall2(G->b, G->fma_ty, G->fma, args, 3, "");
        }
    }
    acc_loop_end(G, &l, next, 1);
    for (int i = 0; i < mr; i++) {
        LLVMValueRef row = at(G, c, mulc(G, ldc, i));
        for (int v = 0; v < nv; v++) store_v(G, acc[i * nv + v], at(G, row, i64c(G, v * vl)));
    }
    LLVMBuildRetVoid(G->b);
    return f;
}

/* ------------------------------------------------------------ compute task */

/* Phase 2's task t: block (t / blocks_n, t mod blocks_n) of tiles. */
static LLVMValueRef emit_compute_task(Gen *G, const char *name, LLVMValueRef kernel, LLVMValueRef direct) {
    int mr = G->g.mr, nr = G->g.nr;
    LLVMValueRef f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), G->arg_ptr, "arg");
    LLVMValueRef t = LLVMGetParam(f, 1);
    /* the edge buffer, in the entry block */
    LLVMValueRef edge = LLVMBuildAlloca(G->b, LLVMArrayType(G->T, (unsigned)(mr * nr)), "edge");
    LLVMSetAlignment(edge, 64);
    edge = LLVMBuildBitCast(G->b, edge, G->T_ptr, "");
    LLVMValueRef c = arg_field(G, arg, ARG_C);
    Dims d = arg_dims(G, arg);
    LLVMValueRef mcp = arg_field(G, arg, ARG_MC_PANELS), ncp = arg_field(G, arg, ARG_NC_PANELS);
    LLVMValueRef kc_max = arg_field(G, arg, ARG_KC);
    LLVMValueRef blocks_n = LLVMBuildSDiv(G->b, addc(G, add(G, d.np, ncp), -1), ncp, "");
    LLVMValueRef bm = LLVMBuildSDiv(G->b, t, blocks_n, ""), bn = LLVMBuildSRem(G->b, t, blocks_n, "");
    LLVMValueRef ip0 = mul(G, bm, mcp), jp0 = mul(G, bn, ncp);
    LLVMValueRef ip1 = imin(G, add(G, ip0, mcp), d.mp), jp1 = imin(G, add(G, jp0, ncp), d.np);
    LLVMTypeRef kern_ty = LLVMGlobalGetValueType(kernel);

    Loop lpc = loop(G, LLVMBuildSDiv(G->b, addc(G, add(G, d.k, kc_max), -1), kc_max, ""), "pc");
    LLVMValueRef k0 = mul(G, lpc.index, kc_max);
    LLVMValueRef kc = imin(G, kc_max, LLVMBuildSub(G->b, d.k, k0, ""));
    /* the first K block starts from zero (or C when accumulating) */
    LLVMValueRef load_c = G->s->accumulate ? LLVMConstInt(LLVMInt1TypeInContext(G->ctx), 1, 0)
                                           : LLVMBuildICmp(G->b, LLVMIntNE, lpc.index, i64c(G, 0), "");
    Loop ljp = loop_from(G, jp0, jp1, "jp");
    LLVMValueRef pb = at(G, d.b_pack, add(G, mul(G, mulc(G, ljp.index, nr), d.k), mulc(G, k0, nr)));
    LLVMValueRef col0 = mulc(G, ljp.index, nr);
    LLVMValueRef cols = imin(G, i64c(G, nr), LLVMBuildSub(G->b, d.n, col0, ""));
    Loop lip = loop_from(G, ip0, ip1, "ip");
    LLVMValueRef row0 = mulc(G, lip.index, mr);
    LLVMValueRef rows = imin(G, i64c(G, mr), LLVMBuildSub(G->b, d.m, row0, ""));
    LLVMValueRef pa = at(G, d.a_pack, add(G, G->direct_a ? i64c(G, 0) : mul(G, row0, d.k), mulc(G, k0, mr)));
    LLVMValueRef ctile = at(G, c, add(G, mul(G, row0, d.ldc), col0));
    LLVMValueRef whole = LLVMBuildAnd(G->b, LLVMBuildICmp(G->b, LLVMIntEQ, rows, i64c(G, mr), ""),
                                      LLVMBuildICmp(G->b, LLVMIntEQ, cols, i64c(G, nr), ""), "");
    If f_whole = if_begin(G, whole, "whole");
    if (direct) { /* whole row panels read A in place */
        LLVMValueRef a_in = at(G, arg_field(G, arg, ARG_A), add(G, mul(G, row0, d.lda), k0));
        LLVMValueRef args[7] = {a_in, pb, kc, ctile, d.ldc, load_c, d.lda};
        LLVMBuildCall2(G->b, kern_ty, direct, args, 7, "");
    } else {
        LLVMValueRef args[7] = {pa, pb, kc, ctile, d.ldc, load_c, d.lda};
        LLVMBuildCall2(G->b, kern_ty, kernel, args, 7, "");
    }
    if_else(G, &f_whole);
    { /* an edge tile: through the buffer, copying only C's part */
        If f_in = if_begin(G, load_c, "edge_in");
        {
            Loop li = loop(G, rows, "ei");
            Loop lj = loop(G, cols, "ej");
            store_t(G, load_t(G, at(G, ctile, add(G, mul(G, li.index, d.ldc), lj.index))),
                    at(G, edge, add(G, mulc(G, li.index, nr), lj.index)));
            loop_end(G, &lj);
            loop_end(G, &li);
        }
        if_else(G, &f_in);
        if_end(G, &f_in);
        if (direct) {
            If f_rows = if_begin(G, LLVMBuildICmp(G->b, LLVMIntEQ, rows, i64c(G, mr), ""), "rows");
            LLVMValueRef a_in = at(G, arg_field(G, arg, ARG_A), add(G, mul(G, row0, d.lda), k0));
            LLVMValueRef args[7] = {a_in, pb, kc, edge, i64c(G, nr), load_c, d.lda};
            LLVMBuildCall2(G->b, kern_ty, direct, args, 7, "");
            if_else(G, &f_rows);
            LLVMValueRef args2[7] = {pa, pb, kc, edge, i64c(G, nr), load_c, d.lda};
            LLVMBuildCall2(G->b, kern_ty, kernel, args2, 7, "");
            if_end(G, &f_rows);
        } else {
            LLVMValueRef args[7] = {pa, pb, kc, edge, i64c(G, nr), load_c, d.lda};
            LLVMBuildCall2(G->b, kern_ty, kernel, args, 7, "");
        }
        Loop li = loop(G, rows, "eo");
        Loop lj = loop(G, cols, "ej");
        store_t(G, load_t(G, at(G, edge, add(G, mulc(G, li.index, nr), lj.index))),
                at(G, ctile, add(G, mul(G, li.index, d.ldc), lj.index)));
        loop_end(G, &lj);
        loop_end(G, &li);
    }
    if_end(G, &f_whole);
    loop_end(G, &lip);
    loop_end(G, &ljp);
    loop_end(G, &lpc);
    LLVMBuildRetVoid(G->b);
    return f;
}

/* ------------------------------------------------------------------ GEMV */

/* Horizontal sum of a vector, lanes in a fixed order. */
static LLVMValueRef hsum(Gen *G, LLVMValueRef v) {
    LLVMValueRef sum = LLVMBuildExtractElement(G->b, v, LLVMConstInt(G->i32, 0, 0), "");
    for (int l = 1; l < G->g.vl; l++)
        sum = LLVMBuildFAdd(G->b, sum, LLVMBuildExtractElement(G->b, v, LLVMConstInt(G->i32, (unsigned)l, 0), ""), "");
    return sum;
}

static LLVMValueRef vfma(Gen *G, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return LLVMBuildCall2(G->b, G->fma_ty, G->fma, args, 3, "");
}
static LLVMValueRef splat(Gen *G, LLVMValueRef x) {
    LLVMValueRef undef = LLVMGetUndef(G->V), zmask = LLVMConstNull(LLVMVectorType(G->i32, (unsigned)G->g.vl));
    return LLVMBuildShuffleVector(G->b, LLVMBuildInsertElement(G->b, undef, x, LLVMConstInt(G->i32, 0, 0), ""),
                                  undef, zmask, "");
}

/* A scalar stack slot in the function's entry block (mem2reg makes it a
 * register); never inside a loop, where each pass would grow the stack. */
static LLVMValueRef entry_alloca(Gen *G) {
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(G->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(G->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(tmp, first);
    else LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef slot = LLVMBuildAlloca(tmp, G->T, "sum");
    LLVMDisposeBuilder(tmp);
    return slot;
}

/* One row of C (m = 1, the batch-1 products of encode and eval): a
 * matrix-vector product, bound by reading B once — packing it would cost
 * more than the product. a[k] is op(A)[0][k]. For op(B) = Bᵀ (B stored
 * n × k) each c[j] is a dot product of a with row j of B: vectors along k,
 * 4 rows at a time, summed across lanes at the end; for op(B) = B (k × n)
 * c is Σ_k a[k]·B[k][:]: vectors along n, 4 at a time. Edges element by
 * element. The order of every sum is fixed. */
static void gemv_body(Gen *G, const Dims *d, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    int vl = G->g.vl;
    enum { ROWS = 4 };
    LLVMValueRef a_stride = G->s->ta ? d->lda : i64c(G, 1); /* op(A)[0][k] = A[k·lda] when ta */
    if (G->s->tb) {
        LLVMValueRef kv = mulc(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), vl); /* whole vectors of k */
        LLVMValueRef j_full = mulc(G, LLVMBuildSDiv(G->b, d->n, i64c(G, ROWS), ""), ROWS);
        /* for j in whole groups of ROWS, then the rest one by one (group size 1) */
        for (int pass = 0; pass < 2; pass++) {
            int rows = pass ? 1 : ROWS;
            Loop lj = pass ? loop_from(G, j_full, d->n, "gvr") : loop(G, LLVMBuildSDiv(G->b, d->n, i64c(G, ROWS), ""), "gv");
            LLVMValueRef j0 = pass ? lj.index : mulc(G, lj.index, ROWS);
            AccLoop l = acc_loop(G, kv, rows, NULL, "gk");
            LLVMValueRef k = l.k, *acc = l.acc, next[ROWS];
            LLVMValueRef av;
            if (G->s->ta) { /* strided a: gather it element by element */
                av = LLVMGetUndef(G->V);
                for (int lane = 0; lane < vl; lane++)
                    av = LLVMBuildInsertElement(G->b, av, load_t(G, at(G, a, mul(G, addc(G, k, lane), a_stride))),
                                                LLVMConstInt(G->i32, (unsigned)lane, 0), "");
            } else {
                av = load_v(G, at(G, a, k), G->s->f64 ? 8 : 4);
            }
            for (int r = 0; r < rows; r++) {
                LLVMValueRef row = at(G, b, mul(G, addc(G, j0, r), d->ldb));
                next[r] = vfma(G, av, load_v(G, at(G, row, k), G->s->f64 ? 8 : 4), acc[r]);
            }
            acc_loop_end(G, &l, next, vl);
            for (int r = 0; r < rows; r++) {
                LLVMValueRef row = at(G, b, mul(G, addc(G, j0, r), d->ldb));
                /* the lanes' sum, then the k past the last whole vector */
                LLVMValueRef slot = entry_alloca(G);
                store_t(G, hsum(G, acc[r]), slot);
                Loop lk = loop_from(G, kv, d->k, "gkt");
                store_t(G, LLVMBuildFAdd(G->b, load_t(G, slot),
                                         LLVMBuildFMul(G->b, load_t(G, at(G, a, mul(G, lk.index, a_stride))),
                                                       load_t(G, at(G, row, lk.index)), ""), ""), slot);
                loop_end(G, &lk);
                LLVMValueRef v = load_t(G, slot), dst = at(G, c, addc(G, j0, r));
                if (G->s->accumulate) v = LLVMBuildFAdd(G->b, load_t(G, dst), v, "");
                store_t(G, v, dst);
            }
            loop_end(G, &lj);
        }
        return;
    }
    /* op(B) = B: c[j0 .. j0 + 4·vl) over whole blocks, then columns one by one */
    enum { NVEC = 4 };
    long block_cols = (long)NVEC * vl;
    LLVMValueRef jb_full = LLVMBuildSDiv(G->b, d->n, i64c(G, block_cols), "");
    Loop lj = loop(G, jb_full, "gn");
    LLVMValueRef j0 = mulc(G, lj.index, block_cols);
    {
        AccLoop l = acc_loop(G, d->k, NVEC, NULL, "gk");
        LLVMValueRef k = l.k, *acc = l.acc, next[NVEC];
        LLVMValueRef ak = splat(G, load_t(G, at(G, a, mul(G, k, a_stride))));
        LLVMValueRef row = at(G, b, add(G, mul(G, k, d->ldb), j0));
        for (int v = 0; v < NVEC; v++)
            next[v] = vfma(G, ak, load_v(G, at(G, row, i64c(G, v * vl)), G->s->f64 ? 8 : 4), acc[v]);
        acc_loop_end(G, &l, next, 1);
        for (int v = 0; v < NVEC; v++) {
            LLVMValueRef dst = at(G, c, addc(G, j0, v * vl)), val = acc[v];
            if (G->s->accumulate) val = LLVMBuildFAdd(G->b, load_v(G, dst, G->s->f64 ? 8 : 4), val, "");
            store_v(G, val, dst);
        }
    }
    loop_end(G, &lj);
    Loop lc = loop_from(G, mulc(G, jb_full, block_cols), d->n, "gnt");
    LLVMValueRef slot = entry_alloca(G);
    store_t(G, LLVMConstNull(G->T), slot);
    Loop lk = loop(G, d->k, "gkt");
    store_t(G, LLVMBuildFAdd(G->b, load_t(G, slot),
                             LLVMBuildFMul(G->b, load_t(G, at(G, a, mul(G, lk.index, a_stride))),
                                           load_t(G, at(G, b, add(G, mul(G, lk.index, d->ldb), lc.index))), ""), ""),
            slot);
    loop_end(G, &lk);
    LLVMValueRef v = load_t(G, slot), dst = at(G, c, lc.index);
    if (G->s->accumulate) v = LLVMBuildFAdd(G->b, load_t(G, dst), v, "");
    store_t(G, v, dst);
    loop_end(G, &lc);
}

/* The GEMV as a function of (a, b, c, n, k, lda, ldb), shared by the
 * products of one transposition: its name is its key. */
static LLVMValueRef gemv_function(Gen *G) {
    char name[64];
    snprintf(name, sizeof name, "aec.gemv.%s.%d.%c%c%s", G->s->f64 ? "f64" : "f32", G->g.vl, G->s->ta ? 't' : 'n',
             G->s->tb ? 't' : 'n', G->s->accumulate ? ".acc" : "");
    LLVMValueRef f = LLVMGetNamedFunction(G->mod, name);
    if (f) return f;
    LLVMTypeRef params[] = {G->T_ptr, G->T_ptr, G->T_ptr, G->i64, G->i64, G->i64, G->i64};
    f = new_function(G, name, LLVMFunctionType(G->void_t, params, 7, 0));
    Dims d = {.m = i64c(G, 1), .n = LLVMGetParam(f, 3), .k = LLVMGetParam(f, 4), .lda = LLVMGetParam(f, 5),
              .ldb = LLVMGetParam(f, 6)};
    gemv_body(G, &d, LLVMGetParam(f, 0), LLVMGetParam(f, 1), LLVMGetParam(f, 2));
    LLVMBuildRetVoid(G->b);
    return f;
}

/* ---------------------------------------------------------------- driver */

LLVMTypeRef gemm_function_type(LLVMContextRef ctx, bool f64) {
    LLVMTypeRef T_ptr = LLVMPointerType(f64 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx), 0);
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(ctx), 0);
    LLVMTypeRef params[] = {T_ptr, T_ptr, T_ptr, LLVMInt64TypeInContext(ctx), T_ptr, i8p};
    return LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 6, 0);
}

/* parallel_for(pool, n, task, arg), or the tasks in order without one. */
static void run_tasks(Gen *G, LLVMValueRef exec, LLVMValueRef n, LLVMValueRef task, LLVMValueRef arg) {
    LLVMTypeRef pfor_params[] = {G->i8p, G->i64, LLVMPointerType(G->task_ty, 0), G->i8p};
    LLVMTypeRef pfor_ty = LLVMFunctionType(G->void_t, pfor_params, 4, 0);
    LLVMTypeRef pfor_ptr = LLVMPointerType(pfor_ty, 0);
    /* aec_exec: { parallel_for, pool, row_offset, reserved[4] } */
    LLVMTypeRef exec_fields[] = {pfor_ptr, G->i8p};
    LLVMTypeRef exec_ty = LLVMStructTypeInContext(G->ctx, exec_fields, 2, 0);
    LLVMValueRef ex = LLVMBuildBitCast(G->b, exec, LLVMPointerType(exec_ty, 0), "");
    LLVMValueRef has_exec = LLVMBuildIsNotNull(G->b, exec, "");
    If f_ex = if_begin(G, has_exec, "exec");
    LLVMValueRef pfor = LLVMBuildLoad2(G->b, pfor_ptr, LLVMBuildStructGEP2(G->b, exec_ty, ex, 0, ""), "pfor");
    LLVMValueRef pool = LLVMBuildLoad2(G->b, G->i8p, LLVMBuildStructGEP2(G->b, exec_ty, ex, 1, ""), "pool");
    LLVMBasicBlockRef with_exec = LLVMGetInsertBlock(G->b);
    if_else(G, &f_ex);
    LLVMBasicBlockRef without = LLVMGetInsertBlock(G->b);
    if_end(G, &f_ex);
    LLVMValueRef pf = LLVMBuildPhi(G->b, pfor_ptr, "pfor");
    LLVMValueRef in[2] = {pfor, LLVMConstNull(pfor_ptr)};
    LLVMBasicBlockRef from[2] = {with_exec, without};
    LLVMAddIncoming(pf, in, from, 2);
    LLVMValueRef pl = LLVMBuildPhi(G->b, G->i8p, "pool");
    LLVMValueRef in2[2] = {pool, LLVMConstNull(G->i8p)};
    LLVMAddIncoming(pl, in2, from, 2);

    /* one task needs no threads */
    LLVMValueRef threaded = LLVMBuildAnd(G->b, LLVMBuildIsNotNull(G->b, pf, ""),
                                         LLVMBuildICmp(G->b, LLVMIntSGT, n, i64c(G, 1), ""), "");
    If f_par = if_begin(G, threaded, "parallel");
    LLVMValueRef args[4] = {pl, n, task, arg};
    LLVMBuildCall2(G->b, pfor_ty, pf, args, 4, "");
    if_else(G, &f_par);
    Loop lt = loop(G, n, "task");
    LLVMValueRef targs[2] = {arg, lt.index};
    LLVMBuildCall2(G->b, G->task_ty, task, targs, 2, "");
    loop_end(G, &lt);
    if_end(G, &f_par);
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
    run_tasks(&G, exec, ntasks, task, LLVMBuildBitCast(b, arg, G.i8p, ""));
}

LLVMValueRef gemm_emit(LLVMModuleRef mod, const GemmSpec *s, GemmTarget target, const char *name) {
    Gen G = {0};
    G.ctx = LLVMGetModuleContext(mod);
    G.mod = mod;
    G.b = LLVMCreateBuilderInContext(G.ctx);
    G.s = s;
    G.target = target;
    G.g = gemm_tiling(s, target);
    G.T = s->f64 ? LLVMDoubleTypeInContext(G.ctx) : LLVMFloatTypeInContext(G.ctx);
    G.V = LLVMVectorType(G.T, (unsigned)G.g.vl);
    G.T_ptr = LLVMPointerType(G.T, 0);
    G.V_ptr = LLVMPointerType(G.V, 0);
    G.i8p = LLVMPointerType(LLVMInt8TypeInContext(G.ctx), 0);
    G.i32 = LLVMInt32TypeInContext(G.ctx);
    G.i64 = LLVMInt64TypeInContext(G.ctx);
    G.void_t = LLVMVoidTypeInContext(G.ctx);
    LLVMTypeRef fields[ARG_FIELDS];
    for (int i = 0; i < ARG_FIELDS; i++) fields[i] = i <= ARG_PACK ? G.T_ptr : G.i64;
    G.arg_ty = LLVMStructTypeInContext(G.ctx, fields, ARG_FIELDS, 0);
    G.arg_ptr = LLVMPointerType(G.arg_ty, 0);
    LLVMTypeRef task_params[] = {G.i8p, G.i64};
    G.task_ty = LLVMFunctionType(G.void_t, task_params, 2, 0);
    unsigned fma_id = LLVMLookupIntrinsicID("llvm.fma", 8);
    G.fma = LLVMGetIntrinsicDeclaration(mod, fma_id, &G.V, 1);
    G.fma_ty = LLVMIntrinsicGetType(G.ctx, fma_id, &G.V, 1);

    /* A (m × k) as stored is read in place when its row length is known:
     * a micro-kernel's mr rows are mr streams the prefetchers follow. */
    G.direct_a = !s->ta && (s->lda ? s->lda : s->k) > 0;
    /* The functions that depend on the tiling and transpositions only,
     * once per module. */
    char key[96], sub[128];
    snprintf(key, sizeof key, "aec.gemm.%s.%dx%dx%d.%c%c%s%s", s->f64 ? "f64" : "f32", G.g.mr, G.g.nv, G.g.vl,
             s->ta ? 't' : 'n', s->tb ? 't' : 'n', s->accumulate ? ".acc" : "", G.direct_a ? ".direct" : "");
    LLVMValueRef kernel, direct = NULL, pack_task, compute_task;
    snprintf(sub, sizeof sub, "%s.tile", key);
    if ((compute_task = LLVMGetNamedFunction(mod, sub))) {
        snprintf(sub, sizeof sub, "%s.pack", key);
        pack_task = LLVMGetNamedFunction(mod, sub);
    } else {
        snprintf(sub, sizeof sub, "aec.gemm.%s.%dx%dx%d.kernel", s->f64 ? "f64" : "f32", G.g.mr, G.g.nv, G.g.vl);
        if (!(kernel = LLVMGetNamedFunction(mod, sub))) kernel = emit_micro_kernel(&G, sub, false);
        if (G.direct_a) {
            snprintf(sub, sizeof sub, "aec.gemm.%s.%dx%dx%d.kernel_a", s->f64 ? "f64" : "f32", G.g.mr, G.g.nv, G.g.vl);
            if (!(direct = LLVMGetNamedFunction(mod, sub))) direct = emit_micro_kernel(&G, sub, true);
        }
        snprintf(sub, sizeof sub, "%s.pack", key);
        pack_task = emit_pack_task(&G, sub);
        snprintf(sub, sizeof sub, "%s.tile", key);
        compute_task = emit_compute_task(&G, sub, kernel, direct);
    }

    bool one_row = s->m == 1 || s->m == IR_BATCH_ROWS; /* can m be 1 */
    LLVMValueRef gemv = one_row ? gemv_function(&G) : NULL;

    LLVMValueRef f = new_function(&G, name, gemm_function_type(G.ctx, s->f64));
    LLVMValueRef arg = LLVMBuildAlloca(G.b, G.arg_ty, "arg");
    LLVMValueRef a = LLVMGetParam(f, 0), b = LLVMGetParam(f, 1), c = LLVMGetParam(f, 2);
    LLVMValueRef batch = LLVMGetParam(f, 3), pack = LLVMGetParam(f, 4);
    LLVMValueRef exec = LLVMGetParam(f, 5), argp = LLVMBuildBitCast(G.b, arg, G.i8p, "");
    Dims d = spec_dims(&G, batch, pack);
    LLVMValueRef vals[ARG_FIELDS] = {
        a, b, c, pack, d.m, d.n, d.k, d.lda, d.ldb, d.ldc, i64c(&G, G.g.kc), i64c(&G, G.g.mc_panels),
        i64c(&G, G.g.nc_panels), i64c(&G, pack_group(&G, G.g.mr)), i64c(&G, pack_group(&G, G.g.nr))};
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
        LLVMValueRef args[7] = {a, b, c, d.n, d.k, d.lda, d.ldb};
        LLVMBuildCall2(G.b, LLVMGlobalGetValueType(gemv), gemv, args, 7, "");
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
    LLVMValueRef n_pack = add(&G, pack_a_tasks(&G, &d, i64c(&G, pack_group(&G, G.g.mr))),
                              cdiv(&G, d.np, pack_group(&G, G.g.nr)));
    run_tasks(&G, exec, n_pack, pack_task, argp);
    LLVMValueRef n_tiles = mul(&G, cdiv(&G, d.mp, G.g.mc_panels), cdiv(&G, d.np, G.g.nc_panels));
    run_tasks(&G, exec, n_tiles, compute_task, argp);
    if (one_row) if_end(&G, &f_row);
    if_end(&G, &f_empty);
    LLVMBuildRetVoid(G.b);
    LLVMDisposeBuilder(G.b);
    return f;
}
