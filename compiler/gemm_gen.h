/* gemm_gen.h — what the GEMM generator's two files share (not its API:
 * that is gemm.h). gemm.c chooses the tiling and assembles a product's
 * function; gemm_kernels.c emits its parts — packing, the micro-kernel, the
 * tile task, the matrix-vector kernel. Here: the generator's state (Gen),
 * its builder verbs (index arithmetic, loads and stores, loops, if/else),
 * a product's run-time dimensions and the task argument's fields.
 */
#ifndef AEC_GEMM_GEN_H
#define AEC_GEMM_GEN_H

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <stdbool.h>
#include <string.h>

#include "gemm.h"

typedef struct Gen {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMTypeRef T, V, T_ptr, V_ptr, i8p, i32, i64, void_t, arg_ty, arg_ptr, task_ty;
    const GemmSpec *s;
    GemmTiling g;
    bool direct_a;  /* the micro-kernel reads op(A) where it is, not packed */
    bool direct_b;  /* and op(B) = B (k × n) where it is (GemmSpec.b_in_place) */
    bool half_rows; /* gemm_sparse_rows: the rows are f16, widened as they are read */
    GemmTarget target;
    LLVMValueRef fma; /* llvm.fma.vNfT */
    LLVMTypeRef fma_ty;
} Gen;

/* Which operands a product reads where they are (gemm.c). */
bool gemm_a_in_place(const GemmSpec *s, const GemmTiling *g);
bool gemm_b_in_place(const GemmSpec *s, const GemmTiling *g);

static inline LLVMValueRef i64c(Gen *G, long v) {
    return LLVMConstInt(G->i64, (unsigned long long)v, 1);
}
static inline LLVMValueRef add(Gen *G, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildAdd(G->b, a, b, "");
}
static inline LLVMValueRef mul(Gen *G, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildMul(G->b, a, b, "");
}
static inline LLVMValueRef addc(Gen *G, LLVMValueRef a, long c) {
    return c ? add(G, a, i64c(G, c)) : a;
}
static inline LLVMValueRef mulc(Gen *G, LLVMValueRef a, long c) {
    return c == 1 ? a : mul(G, a, i64c(G, c));
}
static inline LLVMValueRef imin(Gen *G, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, a, b, ""), a, b, "");
}
static inline LLVMValueRef cdiv(Gen *G, LLVMValueRef a, long b) {
    return LLVMBuildSDiv(G->b, addc(G, a, b - 1), i64c(G, b), "");
}
static inline LLVMValueRef at(Gen *G, LLVMValueRef base, LLVMValueRef i) {
    return LLVMBuildGEP2(G->b, G->T, base, &i, 1, "");
}
static inline LLVMValueRef load_t(Gen *G, LLVMValueRef p) {
    LLVMValueRef v = LLVMBuildLoad2(G->b, G->T, p, "");
    LLVMSetAlignment(v, G->s->f64 ? 8 : 4);
    return v;
}
static inline void store_t(Gen *G, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(G->b, v, p), G->s->f64 ? 8 : 4);
}
static inline LLVMValueRef load_v(Gen *G, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(G->b, G->V, LLVMBuildBitCast(G->b, p, G->V_ptr, ""), "");
    LLVMSetAlignment(v, align);
    return v;
}
static inline void store_v(Gen *G, LLVMValueRef v, LLVMValueRef p) {
    LLVMSetAlignment(LLVMBuildStore(G->b, v, LLVMBuildBitCast(G->b, p, G->V_ptr, "")),
                     G->s->f64 ? 8 : 4);
}
/* The lanes below `valid` (an i64, any value) of a vector at p: a
 * masked load (0 elsewhere, nothing read there), or a masked store. */
static inline LLVMValueRef lanes_below(Gen *G, LLVMValueRef valid) {
    LLVMValueRef idx[64];
    for (int i = 0; i < G->g.vl; i++)
        idx[i] = LLVMConstInt(G->i64, (unsigned long long)i, 0);
    LLVMTypeRef V64 = LLVMVectorType(G->i64, (unsigned)G->g.vl);
    LLVMValueRef splat =
        LLVMBuildInsertElement(G->b, LLVMGetUndef(V64), valid, LLVMConstInt(G->i32, 0, 0), "");
    splat = LLVMBuildShuffleVector(G->b, splat, LLVMGetUndef(V64),
                                   LLVMConstNull(LLVMVectorType(G->i32, (unsigned)G->g.vl)), "");
    return LLVMBuildICmp(G->b, LLVMIntSLT, LLVMConstVector(idx, (unsigned)G->g.vl), splat, "");
}
static inline LLVMValueRef masked_intrinsic(Gen *G, bool store, LLVMTypeRef *fty) {
    const char *name = store ? "llvm.masked.store" : "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef types[2] = {G->V, G->V_ptr};
    *fty = LLVMIntrinsicGetType(G->ctx, id, types, 2);
    return LLVMGetIntrinsicDeclaration(G->mod, id, types, 2);
}
static inline LLVMValueRef load_v_masked(Gen *G, LLVMValueRef p, LLVMValueRef valid) {
    LLVMTypeRef fty;
    LLVMValueRef fn = masked_intrinsic(G, false, &fty);
    LLVMValueRef args[4] = {LLVMBuildBitCast(G->b, p, G->V_ptr, ""),
                            LLVMConstInt(G->i32, G->s->f64 ? 8 : 4, 0), lanes_below(G, valid),
                            LLVMConstNull(G->V)};
    return LLVMBuildCall2(G->b, fty, fn, args, 4, "");
}
static inline void store_v_masked(Gen *G, LLVMValueRef v, LLVMValueRef p, LLVMValueRef valid) {
    LLVMTypeRef fty;
    LLVMValueRef fn = masked_intrinsic(G, true, &fty);
    LLVMValueRef args[4] = {v, LLVMBuildBitCast(G->b, p, G->V_ptr, ""),
                            LLVMConstInt(G->i32, G->s->f64 ? 8 : 4, 0), lanes_below(G, valid)};
    LLVMBuildCall2(G->b, fty, fn, args, 4, "");
}
static inline LLVMBasicBlockRef block(Gen *G, const char *name) {
    return LLVMAppendBasicBlockInContext(G->ctx, G->fn, name);
}

typedef struct Loop {
    LLVMValueRef index;
    LLVMBasicBlockRef head, exit;
} Loop;

/* for (i = from; i < end; i++): leaves the builder in the body. */
static inline Loop loop_from(Gen *G, LLVMValueRef from, LLVMValueRef end, const char *name) {
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
static inline Loop loop(Gen *G, LLVMValueRef end, const char *name) {
    return loop_from(G, i64c(G, 0), end, name);
}
/* Marks the loop whose latch branch is br as not to be unrolled: these
 * loops are already blocked by hand, and unrolling them again costs more
 * compile time than it gains. */
static inline void no_unroll(Gen *G, LLVMValueRef br) {
    static const char key[] = "llvm.loop.unroll.disable";
    LLVMMetadataRef temp = LLVMTemporaryMDNode(G->ctx, NULL, 0);
    LLVMMetadataRef opt = LLVMMDStringInContext2(G->ctx, key, sizeof key - 1);
    LLVMMetadataRef opts = LLVMMDNodeInContext2(G->ctx, &opt, 1);
    LLVMMetadataRef ops[2] = {temp, opts};
    LLVMMetadataRef self = LLVMMDNodeInContext2(G->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(temp, self);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(G->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(G->ctx, self));
}

static inline void loop_end(Gen *G, Loop *l) {
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

static inline AccLoop acc_loop_from(Gen *G, LLVMValueRef start, LLVMValueRef end, int n,
                                    const LLVMValueRef *first, const char *name) {
    AccLoop l = {.n = n};
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(G->b), body = block(G, name);
    l.head = block(G, name);
    l.done = block(G, "");
    LLVMBuildBr(G->b, l.head);
    LLVMPositionBuilderAtEnd(G->b, l.head);
    LLVMValueRef vzero = LLVMConstNull(G->V);
    l.k = LLVMBuildPhi(G->b, G->i64, "k");
    LLVMAddIncoming(l.k, &start, &pre, 1);
    for (int q = 0; q < n; q++) {
        l.acc[q] = LLVMBuildPhi(G->b, G->V, "acc");
        LLVMAddIncoming(l.acc[q], first ? (LLVMValueRef *)&first[q] : &vzero, &pre, 1);
    }
    LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, l.k, end, ""), body, l.done);
    LLVMPositionBuilderAtEnd(G->b, body);
    return l;
}

static inline AccLoop acc_loop(Gen *G, LLVMValueRef end, int n, const LLVMValueRef *first,
                               const char *name) {
    return acc_loop_from(G, i64c(G, 0), end, n, first, name);
}

static inline void acc_loop_end(Gen *G, AccLoop *l, const LLVMValueRef *next, long step) {
    LLVMValueRef k1 = addc(G, l->k, step);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(G->b);
    LLVMAddIncoming(l->k, &k1, &latch, 1);
    for (int q = 0; q < l->n; q++)
        LLVMAddIncoming(l->acc[q], (LLVMValueRef *)&next[q], &latch, 1);
    no_unroll(G, LLVMBuildBr(G->b, l->head));
    LLVMPositionBuilderAtEnd(G->b, l->done);
}

/* if (cond) { then } else { other }: returns the blocks; the caller fills
 * them and calls join. */
typedef struct If {
    LLVMBasicBlockRef then, other, join;
} If;
static inline If if_begin(Gen *G, LLVMValueRef cond, const char *name) {
    If f = {block(G, name), block(G, ""), block(G, "")};
    LLVMBuildCondBr(G->b, cond, f.then, f.other);
    LLVMPositionBuilderAtEnd(G->b, f.then);
    return f;
}
static inline void if_else(Gen *G, If *f) {
    LLVMBuildBr(G->b, f->join);
    LLVMPositionBuilderAtEnd(G->b, f->other);
}
static inline void if_end(Gen *G, If *f) {
    LLVMBuildBr(G->b, f->join);
    LLVMPositionBuilderAtEnd(G->b, f->join);
}

static inline LLVMValueRef new_function(Gen *G, const char *name, LLVMTypeRef ty) {
    LLVMValueRef f = LLVMAddFunction(G->mod, name, ty);
    LLVMSetLinkage(f, LLVMInternalLinkage);
    /* Each function is called from many places (every product of its
     * tiling); inlined, their copies would only cost compile time. */
    LLVMAddAttributeAtIndex(
        f, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(G->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    if (G->target.vector_bits >= 512) {
        /* keep 512-bit vectors on CPUs tuned to prefer 256 (LLVM splits them otherwise) */
        const char *keys[] = {"min-legal-vector-width", "prefer-vector-width"};
        for (int i = 0; i < 2; i++)
            LLVMAddAttributeAtIndex(
                f, LLVMAttributeFunctionIndex,
                LLVMCreateStringAttribute(G->ctx, keys[i], (unsigned)strlen(keys[i]), "512", 3));
    }
    G->fn = f;
    LLVMPositionBuilderAtEnd(G->b, block(G, "entry"));
    return f;
}

/* ----------------------------------------------------------- dimensions */

/* The run-time value of a dimension: a constant, or −d·batch. */
static inline LLVMValueRef dim(Gen *G, long d, LLVMValueRef batch) {
    return d > 0 ? i64c(G, d) : mulc(G, batch, -d);
}

typedef struct Dims {
    LLVMValueRef m, n, k, lda, ldb, ldc;
    LLVMValueRef mp, np;         /* row and column panels */
    LLVMValueRef a_pack, b_pack; /* T*: the packed panels in `pack` */
} Dims;

/* The panels' places in pack. B's panels start on a 64-byte boundary
 * (pack itself is AEC_ALIGN-aligned). With direct A (B), only a partial
 * last row (column) panel is packed, at panel 0. */
static inline void panels(Gen *G, Dims *d, LLVMValueRef pack) {
    d->mp = cdiv(G, d->m, G->g.mr);
    d->np = cdiv(G, d->n, G->g.nr);
    d->a_pack = pack;
    LLVMValueRef a_elems = mul(G, G->direct_a ? i64c(G, G->g.mr) : mulc(G, d->mp, G->g.mr), d->k);
    long per_line = 64 / (G->s->f64 ? 8 : 4);
    d->b_pack = at(G, pack, mulc(G, cdiv(G, a_elems, per_line), per_line));
}

/* The product's dimensions at run time: constants, or multiples of batch. */
static inline Dims spec_dims(Gen *G, LLVMValueRef batch, LLVMValueRef pack) {
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
    ARG_A,
    ARG_B,
    ARG_C,
    ARG_PACK, /* pointers */
    ARG_M,
    ARG_N,
    ARG_K,
    ARG_LDA,
    ARG_LDB,
    ARG_LDC,
    ARG_KC,
    ARG_MC_PANELS,
    ARG_NC_PANELS,
    ARG_A_GROUP,
    ARG_B_GROUP, /* the tiling's blocks */
    ARG_EPI,
    ARG_EPI_ENV, /* the epilogue and its argument (i8*), or NULL */
    ARG_FIELDS
};

static inline LLVMValueRef arg_field(Gen *G, LLVMValueRef arg, int field) {
    LLVMValueRef p = LLVMBuildStructGEP2(G->b, G->arg_ty, arg, (unsigned)field, "");
    LLVMTypeRef ty = field >= ARG_EPI ? G->i8p : field > ARG_PACK ? G->i64 : G->T_ptr;
    return LLVMBuildLoad2(G->b, ty, p, "");
}

static inline Dims arg_dims(Gen *G, LLVMValueRef arg) {
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

/* ----------------------------------------------------------- gemm_kernels.c */

/* Panels per packing task: about 64 KB of packed data each. */
long gemm_pack_group(Gen *G, int width);
/* Tasks that pack A (groups of `group` panels; direct A: a partial last one), and B. */
LLVMValueRef gemm_pack_a_tasks(Gen *G, const Dims *d, LLVMValueRef group);
LLVMValueRef gemm_pack_b_tasks(Gen *G, const Dims *d, LLVMValueRef group);
/* Round 1's task: pack A's and B's panels. */
LLVMValueRef gemm_pack_task(Gen *G, const char *name);
/* The micro-kernel: packed A, or A in place (direct). */
LLVMValueRef gemm_micro_kernel(Gen *G, const char *name, bool direct);
typedef struct MicroKernels {
    LLVMValueRef packed, direct; /* A packed, A in place (NULL where it is not) */
    int nv;                      /* their vectors of columns; 0: none */
} MicroKernels;
/* Round 2's column blocks (an even task count where it can), and its task:
 * a block of C's tiles over every K block; edge: narrower kernels for the
 * last column panel, or nv 0. */
LLVMValueRef gemm_col_blocks(Gen *G, const Dims *d, LLVMValueRef mcp, LLVMValueRef ncp);
LLVMValueRef gemm_tile_task(Gen *G, const char *name, MicroKernels full, MicroKernels edge);
/* At G->b: epilogue(env, r0, r1, c0, c1, block) when the task argument
 * has one (gemm.h). */
void gemm_call_epilogue(Gen *G, LLVMValueRef arg, LLVMValueRef r0, LLVMValueRef r1, LLVMValueRef c0,
                        LLVMValueRef c1, LLVMValueRef block);
/* The one-row product (a batch of 1), shared by the products of one transposition. */
LLVMValueRef gemm_gemv_function(Gen *G);
/* At G->b: the one-row product of the task argument arg (shape d) as tasks
 * of columns through exec. */
void gemm_run_gemv(Gen *G, LLVMValueRef exec, LLVMValueRef arg, const Dims *d);
/* At G->b: exec->parallel_for(pool, n, task, arg), or the tasks in order —
 * a call of the module's one `aec.run_tasks`. */
void gemm_run_tasks(Gen *G, LLVMValueRef exec, LLVMValueRef n, LLVMValueRef task, LLVMValueRef arg);
/* gemm_sparse_rows's function (gemm.h), named `name`. */
LLVMValueRef gemm_sparse_function(Gen *G, const char *name);

#endif
