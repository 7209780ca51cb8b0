/* codegen.c — LLVM IR for every entry point of a model, through the C API.
 *
 * Takes the checked Model; lowers, differentiates, fuses and plans each
 * graph (train, optim, eval, encode, decode) and emits one LLVM module:
 * an internal function per graph that runs its kernels in order (GEMMs as
 * cblas calls, loop kernels as counted loop nests, NEST kernels — the
 * image layers — as loop nests of their own around cblas calls: see "image
 * kernels" and docs/internals.md), the public entry points
 * of DESIGN §4 that check their arguments and call them, `init`, and the
 * constant `<name>_model` table of runtime/aec.h. With --embed-weights, the
 * parameters as constant data and `_embedded` entry points (batch 1 with
 * them takes sparse_rows); with -g, DWARF mapping instructions to the spec
 * lines in IrNode.loc. The module is verified (a failure is an internal
 * error) and optimized for the target (the host's CPU and features unless
 * --target/--cpu/--features say otherwise).
 *
 * The thin builder layer at the top (cg_*) owns the context, module,
 * builder and types, so kernel code reads as loops and arithmetic.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/ErrorHandling.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

struct Codegen {
    const Model *model;
    CodegenOptions opt;
    Arena *arena;
    const char *prefix;        /* C symbol prefix: the model's name */
    LLVMOrcThreadSafeContextRef tsc; /* owns ctx, so the module can be JIT-compiled */
    LLVMContextRef ctx;
    LLVMModuleRef mod;                /* NULL once handed to the JIT */
    LLVMOrcLLJITRef jit;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    LLVMTypeRef T, T_ptr, i8_ptr, i32, i64, f64, void_t;
    LLVMValueRef fn;           /* the function being built */
    long trainable;            /* elements of the trainable block */
    long xhat_scratch;         /* eval's reconstruction when the caller passes none */
    long ws_batch, ws_const;   /* the largest plan, elements (a masked model's ones follow it) */
    /* -g: DWARF for the spec; every function gets a subprogram, and the
     * builder's location follows the IR node being emitted. NULL without -g. */
    LLVMDIBuilderRef dib;
    LLVMMetadataRef di_file, di_fn_type, di_scope; /* di_scope: the current function's */
    int fn_line;               /* the current function's line: the default location */
    LLVMValueRef embedded;     /* --embed-weights: NAME_embedded_params, else NULL */
    LLVMValueRef *rows;        /* per tensor: an embedded weight's transpose, made on first use */
    LLVMValueRef *im2col;      /* per layer, [2·layer + add]: its im2col/col2im function */
};

/* ------------------------------------------------------------ builder layer */

static LLVMValueRef cg_i64(Codegen *cg, long v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }
static LLVMValueRef cg_i32(Codegen *cg, long v) { return LLVMConstInt(cg->i32, (unsigned long long)v, 1); }
static LLVMValueRef cg_real(Codegen *cg, double v) { return LLVMConstReal(cg->T, v); }

static LLVMValueRef cg_gep(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name) {
    return LLVMBuildGEP2(cg->b, cg->T, base, &index, 1, name);
}
static LLVMValueRef cg_load(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name) {
    return LLVMBuildLoad2(cg->b, cg->T, cg_gep(cg, base, index, ""), name);
}
static void cg_store(Codegen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index) {
    LLVMBuildStore(cg->b, v, cg_gep(cg, base, index, ""));
}

/* Call an LLVM intrinsic or libm function on the element type. */
static LLVMValueRef cg_call_math(Codegen *cg, const char *base, int nargs, LLVMValueRef *args,
                                 bool intrinsic) {
    char name[64];
    if (intrinsic) snprintf(name, sizeof name, "llvm.%s.%s", base, cg->opt.f64 ? "f64" : "f32");
    else snprintf(name, sizeof name, "%s%s", base, cg->opt.f64 ? "" : "f");
    LLVMTypeRef params[2] = {cg->T, cg->T};
    LLVMTypeRef fty = LLVMFunctionType(cg->T, params, (unsigned)nargs, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, fty);
    return LLVMBuildCall2(cg->b, fty, f, args, (unsigned)nargs, "");
}
static LLVMValueRef cg_math1(Codegen *cg, const char *name, LLVMValueRef x, bool intrinsic) {
    return cg_call_math(cg, name, 1, &x, intrinsic);
}

static LLVMValueRef cg_add(Codegen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(cg->b, a, b, ""); }
static LLVMValueRef cg_sub(Codegen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(cg->b, a, b, ""); }
static LLVMValueRef cg_mul(Codegen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(cg->b, a, b, ""); }
static LLVMValueRef cg_div(Codegen *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(cg->b, a, b, ""); }
static LLVMValueRef cg_gt0(Codegen *cg, LLVMValueRef x) {
    return LLVMBuildFCmp(cg->b, LLVMRealOGT, x, cg_real(cg, 0), "");
}
static LLVMValueRef cg_select(Codegen *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, c, a, b, "");
}
static LLVMValueRef cg_max(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, ""), a, b);
}
/* e^x. In f32 an inline Cephes-style polynomial (within 2 ulp over the
 * whole range), so loops with exp vectorize instead of calling expf per
 * element; f64 (gradient checks) uses the exact libm exp. */
static LLVMValueRef cg_exp(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "exp", x, true);
    LLVMBuilderRef b = cg->b;
    x = cg_max(cg, x, cg_real(cg, -87.33654));
    x = cg_select(cg, LLVMBuildFCmp(b, LLVMRealOGT, x, cg_real(cg, 88.72283), ""), cg_real(cg, 88.72283), x);
    /* x = n·ln2 + r, |r| <= ln2/2; e^x = 2^n · e^r */
    LLVMValueRef n = cg_math1(cg, "floor", cg_add(cg, cg_mul(cg, x, cg_real(cg, 1.44269504088896341)),
                                                 cg_real(cg, 0.5)), true);
    LLVMValueRef r = cg_sub(cg, x, cg_mul(cg, n, cg_real(cg, 0.693359375)));
    r = cg_sub(cg, r, cg_mul(cg, n, cg_real(cg, -2.12194440e-4)));
    static const double c[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                               4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
    LLVMValueRef p = cg_real(cg, c[0]);
    for (int i = 1; i < countof(c); i++) p = cg_add(cg, cg_mul(cg, p, r), cg_real(cg, c[i]));
    LLVMValueRef y = cg_add(cg, cg_add(cg, cg_mul(cg, p, cg_mul(cg, r, r)), r), cg_real(cg, 1));
    /* 2^n built in the exponent bits; n in [-126, 128], so split it in two
     * halves to stay in range at both ends. */
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, cg->i32, "");
    LLVMValueRef h1 = LLVMBuildAShr(b, ni, cg_i32(cg, 1), ""), h2 = LLVMBuildSub(b, ni, h1, "");
    LLVMValueRef p1 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, h1, cg_i32(cg, 127), ""), cg_i32(cg, 23), ""), cg->T, "");
    LLVMValueRef p2 = LLVMBuildBitCast(b, LLVMBuildShl(b, LLVMBuildAdd(b, h2, cg_i32(cg, 127), ""), cg_i32(cg, 23), ""), cg->T, "");
    return cg_mul(cg, cg_mul(cg, y, p1), p2);
}

/* tanh x. In f32 inline (Cephes' tanhf, within 2 ulp) so loops vectorize:
 * an odd polynomial for |x| < 0.625, where 1 - 2/(e^2|x| + 1) would lose
 * digits to cancellation, that formula with x's sign elsewhere. f64: libm. */
static LLVMValueRef cg_tanh(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "tanh", x, false);
    LLVMValueRef ax = cg_math1(cg, "fabs", x, true), z = cg_mul(cg, x, x);
    static const double c[] = {-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                               1.33314422036e-1, -3.33332819422e-1};
    LLVMValueRef p = cg_real(cg, c[0]);
    for (int i = 1; i < countof(c); i++) p = cg_add(cg, cg_mul(cg, p, z), cg_real(cg, c[i]));
    LLVMValueRef small = cg_add(cg, cg_mul(cg, cg_mul(cg, p, z), x), x);
    LLVMValueRef e = cg_exp(cg, cg_add(cg, ax, ax));
    LLVMValueRef big = cg_sub(cg, cg_real(cg, 1), cg_div(cg, cg_real(cg, 2), cg_add(cg, e, cg_real(cg, 1))));
    big = cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, x, cg_real(cg, 0), ""), LLVMBuildFNeg(cg->b, big, ""), big);
    return cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, ax, cg_real(cg, 0.625), ""), small, big);
}

/* e^x - 1 without the cancellation near 0: the Taylor series to x^7 for
 * |x| < 0.35 (error below 2e-8 relative), e^x - 1 elsewhere. */
static LLVMValueRef cg_expm1(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "expm1", x, false);
    LLVMValueRef series = cg_real(cg, 1); /* x·(1 + x/2·(1 + x/3·(... (1 + x/7)))) */
    for (int k = 7; k >= 2; k--)
        series = cg_add(cg, cg_real(cg, 1), cg_mul(cg, cg_mul(cg, x, cg_real(cg, 1.0 / k)), series));
    series = cg_mul(cg, x, series);
    LLVMValueRef direct = cg_sub(cg, cg_exp(cg, x), cg_real(cg, 1));
    LLVMValueRef near0 = LLVMBuildFCmp(cg->b, LLVMRealOLT, cg_math1(cg, "fabs", x, true), cg_real(cg, 0.35), "");
    return cg_select(cg, near0, series, direct);
}

static LLVMValueRef cg_sigmoid(Codegen *cg, LLVMValueRef x) {
    LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, x, ""));
    return cg_div(cg, cg_real(cg, 1), cg_add(cg, cg_real(cg, 1), e));
}

static LLVMBasicBlockRef cg_block(Codegen *cg, const char *name) {
    return LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
}

/* A counted loop `for (i = 0; i < end; i++)`: cg_loop_begin leaves the
 * builder in the body; cg_loop_end closes it and continues after. */
typedef struct Loop {
    LLVMValueRef index, end;
    LLVMBasicBlockRef head, body;
} Loop;

static Loop cg_loop_begin(Codegen *cg, LLVMValueRef end, const char *name) {
    Loop l = {.end = end};
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
    l.head = cg_block(cg, name);
    l.body = cg_block(cg, name);
    LLVMBuildBr(cg->b, l.head);
    LLVMPositionBuilderAtEnd(cg->b, l.head);
    l.index = LLVMBuildPhi(cg->b, cg->i64, name);
    LLVMValueRef zero = cg_i64(cg, 0);
    LLVMAddIncoming(l.index, &zero, &pre, 1);
    LLVMBasicBlockRef exit = cg_block(cg, "");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, l.index, end, ""), l.body, exit);
    LLVMPositionBuilderAtEnd(cg->b, l.body);
    l.body = exit; /* remembered for cg_loop_end */
    return l;
}

static void cg_loop_end(Codegen *cg, Loop *l) {
    LLVMValueRef next = LLVMBuildAdd(cg->b, l->index, cg_i64(cg, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
    LLVMAddIncoming(l->index, &next, &latch, 1);
    LLVMBuildBr(cg->b, l->head);
    LLVMPositionBuilderAtEnd(cg->b, l->body);
}

/* A stack slot in the entry block, where mem2reg turns it into registers. */
static LLVMValueRef cg_alloca_entry(Codegen *cg, const char *name) {
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(tmp, first);
    else LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef slot = LLVMBuildAlloca(tmp, cg->T, name);
    LLVMDisposeBuilder(tmp);
    return slot;
}

/* With -g, what follows is attributed to spec line `loc` (the function's
 * own line when loc has none): gdb steps and perf annotates by spec line. */
static void cg_debug_loc(Codegen *cg, Loc loc) {
    if (!cg->dib) return;
    int line = loc.line > 0 ? loc.line : cg->fn_line;
    LLVMMetadataRef md = LLVMDIBuilderCreateDebugLocation(cg->ctx, (unsigned)line,
                                                          (unsigned)(loc.line > 0 ? loc.col : 0),
                                                          cg->di_scope, NULL);
    LLVMSetCurrentDebugLocation2(cg->b, md);
}

/* A new function, the builder at its entry block. With -g it gets a
 * subprogram at the model's line, which is also its default location. */
static LLVMValueRef cg_function(Codegen *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                                int n, bool internal) {
    LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)n, 0);
    LLVMValueRef f = LLVMAddFunction(cg->mod, name, fty);
    if (internal) LLVMSetLinkage(f, LLVMInternalLinkage);
    cg->fn = f;
    LLVMPositionBuilderAtEnd(cg->b, cg_block(cg, "entry"));
    if (cg->dib) {
        cg->fn_line = cg->model->loc.line > 0 ? cg->model->loc.line : 1;
        cg->di_scope = LLVMDIBuilderCreateFunction(
            cg->dib, cg->di_file, name, strlen(name), name, strlen(name), cg->di_file,
            (unsigned)cg->fn_line, cg->di_fn_type, internal, 1, (unsigned)cg->fn_line,
            LLVMDIFlagPrototyped, cg->opt.opt_level > 0);
        LLVMSetSubprogram(f, cg->di_scope);
        cg_debug_loc(cg, (Loc){0});
    }
    return f;
}

/* ----------------------------------------------------- counter-based RNG */

/* splitmix64's finalizer; must match runtime/rng.c bit for bit. */
static LLVMValueRef cg_mix64(Codegen *cg, LLVMValueRef z) {
    LLVMBuilderRef b = cg->b;
    z = LLVMBuildAdd(b, z, LLVMConstInt(cg->i64, 0x9E3779B97F4A7C15ull, 0), "");
    z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 30), ""), ""),
                     LLVMConstInt(cg->i64, 0xBF58476D1CE4E5B9ull, 0), "");
    z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 27), ""), ""),
                     LLVMConstInt(cg->i64, 0x94D049BB133111EBull, 0), "");
    return LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 31), ""), "");
}

/* aec_rng_u64(seed, stream, counter) as a double uniform in [0, 1). */
static LLVMValueRef cg_uniform(Codegen *cg, LLVMValueRef seed, LLVMValueRef stream, LLVMValueRef counter) {
    LLVMValueRef u = cg_mix64(cg, LLVMBuildXor(cg->b, cg_mix64(cg, LLVMBuildXor(cg->b, cg_mix64(cg, seed), stream, "")), counter, ""));
    u = LLVMBuildLShr(cg->b, u, cg_i64(cg, 11), "");
    return LLVMBuildFMul(cg->b, LLVMBuildUIToFP(cg->b, u, cg->f64, ""), LLVMConstReal(cg->f64, 0x1p-53), "");
}

/* A libm function of doubles, whatever the element type (noise is drawn in f64). */
static LLVMValueRef cg_math_f64(Codegen *cg, const char *name, LLVMValueRef x) {
    LLVMTypeRef fty = LLVMFunctionType(cg->f64, &cg->f64, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, fty);
    return LLVMBuildCall2(cg->b, fty, f, &x, 1, "");
}

/* The top 53 of 64 random bits as a double in [0, 1). */
static LLVMValueRef cg_unit(Codegen *cg, LLVMValueRef bits) {
    LLVMValueRef u = LLVMBuildUIToFP(cg->b, LLVMBuildLShr(cg->b, bits, cg_i64(cg, 11), ""), cg->f64, "");
    return LLVMBuildFMul(cg->b, u, LLVMConstReal(cg->f64, 0x1p-53), "");
}

/* Element `index` of RAND node n at this step: aec_rng_noise(seed, stream,
 * step, counter) of runtime/rng.c, bit for bit. The key is loop-invariant
 * (LLVM hoists it), so an element costs one mix64, two for a normal. */
static LLVMValueRef cg_rand(Codegen *cg, const IrNode *n, LLVMValueRef step, LLVMValueRef index) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef seed = LLVMConstInt(cg->i64, cg->model->train.seed, 0);
    LLVMValueRef stream = LLVMConstInt(cg->i64, IR_STREAM_NOISE + (unsigned)n->slot, 0);
    /* aec_rng_u64(seed, stream, step): mix64(mix64(mix64(seed) ^ stream) ^ step) */
    LLVMValueRef key = cg_mix64(cg, LLVMBuildXor(b, cg_mix64(cg, seed), stream, ""));
    key = cg_mix64(cg, LLVMBuildXor(b, key, step, ""));
    LLVMValueRef v, one = LLVMConstReal(cg->f64, 1);
    if (n->act == RAND_NORMAL) { /* Box–Muller: √(−2 ln(1−u1))·cos(2π u2) */
        LLVMValueRef i2 = LLVMBuildShl(b, index, cg_i64(cg, 1), "");
        LLVMValueRef i2p1 = LLVMBuildOr(b, i2, cg_i64(cg, 1), "");
        LLVMValueRef u1 = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, i2, "")));
        LLVMValueRef u2 = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, i2p1, "")));
        LLVMValueRef r = cg_math_f64(cg, "llvm.log.f64", LLVMBuildFSub(b, one, u1, ""));
        r = cg_math_f64(cg, "llvm.sqrt.f64", LLVMBuildFMul(b, LLVMConstReal(cg->f64, -2), r, ""));
        LLVMValueRef angle = LLVMBuildFMul(b, u2, LLVMConstReal(cg->f64, 2 * M_PI), "");
        v = LLVMBuildFMul(b, r, cg_math_f64(cg, "llvm.cos.f64", angle), "");
    } else {
        v = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, index, "")));
        if (n->act == RAND_BERNOULLI) {
            LLVMValueRef hit = LLVMBuildFCmp(b, LLVMRealOLT, v, LLVMConstReal(cg->f64, n->value), "");
            return cg_select(cg, hit, cg_real(cg, 1), cg_real(cg, 0));
        }
    }
    return cg->opt.f64 ? v : LLVMBuildFPTrunc(b, v, cg->T, "");
}

/* ----------------------------------------------------------- graph bodies */

/* The argument list every graph body takes; unused ones are NULL. */
enum { ARG_PARAMS, ARG_OPT, ARG_X, ARG_GRADS, ARG_WS, ARG_CODE, ARG_XHAT, ARG_LOSS, ARG_BATCH, ARG_STEP, ARG_MASK, N_ARGS };

typedef struct Body {
    Codegen *cg;
    const Graph *g;
    const Fusion *f;
    const Plan *p;
    LLVMValueRef base[BASE_MASK + 1];
    LLVMValueRef batch, batch_t, step_t; /* i64, and as element type */
    LLVMValueRef step, index; /* i64: the step; in a loop, the element's index (RAND) */
    LLVMValueRef *val;   /* per node: its value in the current loop iteration */
    LLVMValueRef *scalar;/* per node: inline scalar value in the current kernel */
    int kernel;
} Body;

static LLVMValueRef buf_ptr(Body *B, BufLoc l) {
    ensure(l.base != BASE_NONE);
    LLVMValueRef off = LLVMBuildAdd(B->cg->b, LLVMBuildMul(B->cg->b, B->batch, cg_i64(B->cg, l.off_batch), ""),
                                    cg_i64(B->cg, l.off_const), "");
    return cg_gep(B->cg, B->base[l.base], off, "");
}

static LLVMValueRef elementwise(Body *B, const IrNode *n, LLVMValueRef a, LLVMValueRef b);

/* A loop-invariant scalar: a leaf, a stored reduction, or an inline scalar
 * expression, emitted once per kernel before its loops. */
static LLVMValueRef scalar_value(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    if (B->scalar[i]) return B->scalar[i];
    LLVMValueRef v;
    if (n->op == IR_CONST) v = cg_real(cg, n->value);
    else if (n->op == IR_BATCH) v = B->batch_t;
    else if (n->op == IR_STEP) v = B->step_t;
    else if (B->f->info[i].inline_scalar) {
        LLVMValueRef a = scalar_value(B, n->in[0]);
        LLVMValueRef bb = ir_op_nin[n->op] > 1 ? scalar_value(B, n->in[1]) : NULL;
        v = elementwise(B, n, a, bb);
    } else v = LLVMBuildLoad2(cg->b, cg->T, buf_ptr(B, B->p->loc[i]), "");
    B->scalar[i] = v;
    return v;
}

static LLVMValueRef activation(Codegen *cg, ActKind act, double alpha, LLVMValueRef x) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    switch (act) {
    case ACT_LINEAR: return x;
    case ACT_RELU: return cg_select(cg, cg_gt0(cg, x), x, zero);
    case ACT_LEAKY_RELU: return cg_select(cg, cg_gt0(cg, x), x, cg_mul(cg, cg_real(cg, alpha), x));
    case ACT_SIGMOID: return cg_sigmoid(cg, x);
    case ACT_TANH: return cg_tanh(cg, x);
    case ACT_ELU:
        return cg_select(cg, cg_gt0(cg, x), x, cg_mul(cg, cg_real(cg, alpha), cg_expm1(cg, x)));
    case ACT_SOFTPLUS: { /* max(x, 0) + log1p(e^-|x|): no overflow */
        LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, cg_math1(cg, "fabs", x, true), ""));
        return cg_add(cg, cg_max(cg, x, zero), cg_math1(cg, "log1p", e, false));
    }
    case ACT_GELU: { /* x * Φ(x) = x/2 * (1 + erf(x/√2)) */
        LLVMValueRef erf = cg_math1(cg, "erf", cg_mul(cg, x, cg_real(cg, M_SQRT1_2)), false);
        return cg_mul(cg, cg_mul(cg, x, cg_real(cg, 0.5)), cg_add(cg, one, erf));
    }
    default: internal_error("activation %d", act);
    }
}

/* f'(x), given x and y = f(x). */
static LLVMValueRef activation_grad(Codegen *cg, ActKind act, double alpha, LLVMValueRef x, LLVMValueRef y) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    switch (act) {
    case ACT_LINEAR: return one;
    case ACT_RELU: return cg_select(cg, cg_gt0(cg, x), one, zero);
    case ACT_LEAKY_RELU: return cg_select(cg, cg_gt0(cg, x), one, cg_real(cg, alpha));
    case ACT_SIGMOID: return cg_mul(cg, y, cg_sub(cg, one, y));              /* y(1-y) */
    case ACT_TANH: return cg_sub(cg, one, cg_mul(cg, y, y));                 /* 1-y² */
    case ACT_ELU: return cg_select(cg, cg_gt0(cg, x), one, cg_add(cg, y, cg_real(cg, alpha))); /* y+α */
    case ACT_SOFTPLUS: return cg_sigmoid(cg, x);
    case ACT_GELU: { /* Φ(x) + x φ(x) */
        LLVMValueRef erf = cg_math1(cg, "erf", cg_mul(cg, x, cg_real(cg, M_SQRT1_2)), false);
        LLVMValueRef cdf = cg_mul(cg, cg_real(cg, 0.5), cg_add(cg, one, erf));
        LLVMValueRef pdf = cg_mul(cg, cg_real(cg, 0.3989422804014327),
                                  cg_exp(cg, cg_mul(cg, cg_real(cg, -0.5), cg_mul(cg, x, x))));
        return cg_add(cg, cdf, cg_mul(cg, x, pdf));
    }
    default: internal_error("activation %d", act);
    }
}

/* The derivative of f' (the contractive term's gradient): f''(x) from x and
 * y = f(x); from y alone (from_y), d f'/dy, as f' was written in y. */
static LLVMValueRef activation_grad2(Codegen *cg, ActKind act, double alpha, LLVMValueRef x,
                                     LLVMValueRef y, bool from_y) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1), two = cg_real(cg, 2);
    switch (act) {
    case ACT_LINEAR:
    case ACT_RELU:
    case ACT_LEAKY_RELU: return zero;
    case ACT_SIGMOID: { /* f' = y(1-y): d/dy = 1-2y; f'' = y(1-y)(1-2y) */
        LLVMValueRef d = cg_sub(cg, one, cg_mul(cg, two, y));
        return from_y ? d : cg_mul(cg, cg_mul(cg, y, cg_sub(cg, one, y)), d);
    }
    case ACT_TANH: { /* f' = 1-y²: d/dy = -2y; f'' = -2y(1-y²) */
        LLVMValueRef d = cg_mul(cg, cg_real(cg, -2), y);
        return from_y ? d : cg_mul(cg, d, cg_sub(cg, one, cg_mul(cg, y, y)));
    }
    case ACT_ELU: /* f' = 1 or y+α: d/dy = 0 or 1; f'' = 0 or y+α */
        return cg_select(cg, cg_gt0(cg, x), zero, from_y ? one : cg_add(cg, y, cg_real(cg, alpha)));
    case ACT_SOFTPLUS: { /* f' = σ(x): f'' = σ(1-σ) */
        LLVMValueRef s = cg_sigmoid(cg, x);
        return cg_mul(cg, s, cg_sub(cg, one, s));
    }
    case ACT_GELU: { /* f' = Φ + xφ: f'' = φ(x)(2 - x²) */
        LLVMValueRef pdf = cg_mul(cg, cg_real(cg, 0.3989422804014327),
                                  cg_exp(cg, cg_mul(cg, cg_real(cg, -0.5), cg_mul(cg, x, x))));
        return cg_mul(cg, pdf, cg_sub(cg, two, cg_mul(cg, x, x)));
    }
    default: internal_error("activation %d", act);
    }
}

static LLVMValueRef elementwise(Body *B, const IrNode *n, LLVMValueRef a, LLVMValueRef b) {
    Codegen *cg = B->cg;
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    switch (n->op) {
    case IR_ADD: return cg_add(cg, a, b);
    case IR_SUB: return cg_sub(cg, a, b);
    case IR_MUL: return cg_mul(cg, a, b);
    case IR_DIV: return cg_div(cg, a, b);
    case IR_POW: {
        LLVMValueRef args[2] = {a, b};
        return cg_call_math(cg, "pow", 2, args, true);
    }
    case IR_NEG: return LLVMBuildFNeg(cg->b, a, "");
    case IR_ABS: return cg_math1(cg, "fabs", a, true);
    case IR_SIGN:
        return cg_select(cg, cg_gt0(cg, a), one,
                         cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, a, zero, ""), cg_real(cg, -1), zero));
    case IR_SQRT: return cg_math1(cg, "sqrt", a, true);
    case IR_LOG: return cg_math1(cg, "log", a, true);
    case IR_EXP: return cg_exp(cg, a);
    case IR_EXPAND: return a;
    case IR_ACT: return activation(cg, n->act, n->value, a);
    case IR_ACT_GRAD: /* from (y, y): the sign tests below read y, which has x's sign */
        return activation_grad(cg, n->act, n->value, a, b);
    case IR_BCE: { /* -(t·max(log p, -100) + (1-t)·max(log(1-p), -100)), as PyTorch */
        LLVMValueRef lo = cg_real(cg, -100);
        LLVMValueRef lp = cg_max(cg, cg_math1(cg, "log", a, true), lo);
        LLVMValueRef lq = cg_max(cg, cg_math1(cg, "log", cg_sub(cg, one, a), true), lo);
        return LLVMBuildFNeg(cg->b, cg_add(cg, cg_mul(cg, b, lp), cg_mul(cg, cg_sub(cg, one, b), lq)), "");
    }
    case IR_BCE_GRAD: { /* (p - t) / max(p(1-p), 1e-12) */
        LLVMValueRef den = cg_max(cg, cg_mul(cg, a, cg_sub(cg, one, a)), cg_real(cg, 1e-12));
        return cg_div(cg, cg_sub(cg, a, b), den);
    }
    case IR_RAND: ensure(B->index); return cg_rand(cg, n, B->step, B->index);
    case IR_ACT_GRAD2: return activation_grad2(cg, n->act, n->value, a, b, n->slot);
    case IR_TILE: return a; /* loop_kernel loaded the repeated element */
    default: internal_error("%s is not elementwise", ir_op_names[n->op]);
    }
}

/* A cblas function of the element type, declared on first use. */
static LLVMValueRef cg_blas(Codegen *cg, const char *base, LLVMTypeRef *params, int n,
                            LLVMTypeRef *fty) {
    char name[32];
    snprintf(name, sizeof name, "cblas_%c%s", cg->opt.f64 ? 'd' : 's', base);
    *fty = LLVMFunctionType(cg->void_t, params, (unsigned)n, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    return f ? f : LLVMAddFunction(cg->mod, name, *fty);
}

static LLVMValueRef embed_global(Codegen *cg, const char *name, const void *data, size_t count,
                                 bool exported);
static void cg_zero(Codegen *cg, LLVMValueRef p, LLVMValueRef count);

/* The k x n matrix op(B) of an inference GEMM whose B is an embedded weight,
 * as constant rows: the weight itself when op(B) is it (a tied decoder's
 * W), a transposed copy made at compile time when op(B) is Wᵀ. NULL when B
 * is not one whole 2-D weight. */
static LLVMValueRef embedded_rows(Body *B, const IrNode *n) {
    Codegen *cg = B->cg;
    const IrNode *w = &B->g->nodes[n->in[1]];
    if (!cg->embedded || w->op != IR_PARAM || w->tensor < 0) return NULL;
    const ParamTensor *t = &cg->model->tensors[w->tensor];
    long rows = n->tb ? t->shape[1] : t->shape[0], cols = n->tb ? t->shape[0] : t->shape[1];
    if (t->ndim != 2 || n->k != rows || n->n != cols) return NULL;
    if (!n->tb) return cg_gep(cg, LLVMConstBitCast(cg->embedded, cg->T_ptr), cg_i64(cg, t->offset), "");
    if (!cg->rows) cg->rows = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)cg->model->ntensors);
    if (!cg->rows[w->tensor]) {
        size_t el = cg->opt.f64 ? 8 : 4;
        const char *src = (const char *)cg->opt.embed + (size_t)t->offset * el;
        char *wt = malloc((size_t)t->numel * el);
        if (!wt) internal_error("out of memory transposing %s", t->name);
        for (long r = 0; r < rows; r++) /* wt[r][c] = W[c][r] */
            for (long c = 0; c < cols; c++) memcpy(wt + (size_t)(r * cols + c) * el, src + (size_t)(c * rows + r) * el, el);
        char name[300];
        snprintf(name, sizeof name, "%s.T", t->name);
        cg->rows[w->tensor] = LLVMConstBitCast(embed_global(cg, name, wt, (size_t)t->numel, false), cg->T_ptr);
        free(wt);
    }
    return cg->rows[w->tensor];
}

/* c[0..n) = Σ_i a_i · rows[i][0..n) over the k rows, skipping a_i = 0:
 * batch 1 with embedded weights. ReLU outputs and image backgrounds are
 * about half zeros, so about half the weights are never read (a batch-1
 * encode is bound by reading them); the loop over a row has no reduction,
 * so it vectorizes as written, and the sum's order is fixed (row by row),
 * whatever the target or BLAS. NaN inputs are not skipped. */
static void sparse_rows(Body *B, LLVMValueRef a, LLVMValueRef rows, LLVMValueRef c, long k, long n) {
    Codegen *cg = B->cg;
    cg_zero(cg, c, cg_i64(cg, n));
    Loop li = cg_loop_begin(cg, cg_i64(cg, k), "srow");
    LLVMValueRef ai = cg_load(cg, a, li.index, "a");
    LLVMBasicBlockRef add = cg_block(cg, "saxpy"), next = cg_block(cg, "");
    LLVMBuildCondBr(cg->b, LLVMBuildFCmp(cg->b, LLVMRealUNE, ai, cg_real(cg, 0), ""), add, next);
    LLVMPositionBuilderAtEnd(cg->b, add);
    LLVMValueRef row = cg_gep(cg, rows, LLVMBuildMul(cg->b, li.index, cg_i64(cg, n), ""), "row");
    Loop lj = cg_loop_begin(cg, cg_i64(cg, n), "scol");
    cg_store(cg, cg_add(cg, cg_load(cg, c, lj.index, ""), cg_mul(cg, ai, cg_load(cg, row, lj.index, ""))), c,
             lj.index);
    cg_loop_end(cg, &lj);
    LLVMBuildBr(cg->b, next);
    LLVMPositionBuilderAtEnd(cg->b, next);
    cg_loop_end(cg, &li);
}

/* One cblas ?gemm call, row-major: C = op(A)·op(B). When C's rows are the
 * batch and the batch is 1 at run time, a ?gemv instead: BLAS's gemm packs
 * op(B) on every call, which makes a batch-1 encode several times slower
 * than the matrix-vector product it is. And at batch 1 with the embedded
 * weights (an inference graph whose params are NAME_embedded_params),
 * sparse_rows over constant rows instead of either. */
static void gemm_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    cg_debug_loc(cg, n->loc);
    LLVMValueRef dim[3];
    const long d[3] = {n->m, n->n, n->k};
    for (int j = 0; j < 3; j++)
        if (d[j] >= 0) dim[j] = cg_i32(cg, d[j]);
        else /* -r: r rows per sample */
            dim[j] = LLVMBuildTrunc(cg->b, LLVMBuildMul(cg->b, B->batch, cg_i64(cg, -d[j]), ""),
                                    cg->i32, "");
    /* Leading dimensions: the row length of each operand as stored. */
    LLVMValueRef lda = n->ta ? dim[0] : dim[2], ldb = n->tb ? dim[2] : dim[1], ldc = dim[1];
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), b = buf_ptr(B, B->p->loc[n->in[1]]);
    LLVMValueRef c = buf_ptr(B, B->p->loc[i]);
    enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
    LLVMBasicBlockRef join = NULL;
    if (n->m == IR_BATCH_DIM) {
        /* With one row, op(A) is a contiguous vector (stored 1 x k, or k x 1)
         * and C's row is op(B)ᵀ·a: B as stored, transposed unless tb. */
        LLVMBasicBlockRef gemv = cg_block(cg, "gemv"), gemm = cg_block(cg, "gemm");
        join = cg_block(cg, "");
        LLVMValueRef one_row = LLVMBuildICmp(cg->b, LLVMIntEQ, B->batch, cg_i64(cg, 1), "");
        LLVMValueRef rows = B->g->kind == GRAPH_TRAIN || B->g->kind == GRAPH_OPTIM ? NULL : embedded_rows(B, n);
        if (rows) {
            LLVMBasicBlockRef sparse = cg_block(cg, "sparse"), other = cg_block(cg, "");
            LLVMValueRef mine = LLVMBuildICmp(cg->b, LLVMIntEQ, B->base[BASE_PARAMS],
                                              LLVMConstBitCast(cg->embedded, cg->T_ptr), "");
            LLVMBuildCondBr(cg->b, LLVMBuildAnd(cg->b, one_row, mine, ""), sparse, other);
            LLVMPositionBuilderAtEnd(cg->b, sparse);
            sparse_rows(B, a, rows, c, n->k, n->n);
            LLVMBuildBr(cg->b, join);
            LLVMPositionBuilderAtEnd(cg->b, other);
        }
        LLVMBuildCondBr(cg->b, one_row, gemv, gemm);
        LLVMPositionBuilderAtEnd(cg->b, gemv);
        LLVMTypeRef params[12] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->T, cg->T_ptr,
                                  cg->i32, cg->T_ptr, cg->i32, cg->T, cg->T_ptr, cg->i32};
        LLVMTypeRef fty;
        LLVMValueRef f = cg_blas(cg, "gemv", params, 12, &fty);
        LLVMValueRef args[12] = {cg_i32(cg, ROW_MAJOR), cg_i32(cg, n->tb ? NO_TRANS : TRANS),
                                 n->tb ? dim[1] : dim[2], n->tb ? dim[2] : dim[1], cg_real(cg, 1),
                                 b, ldb, a, cg_i32(cg, 1), cg_real(cg, 0), c, cg_i32(cg, 1)};
        LLVMBuildCall2(cg->b, fty, f, args, 12, "");
        LLVMBuildBr(cg->b, join);
        LLVMPositionBuilderAtEnd(cg->b, gemm);
    }
    LLVMTypeRef params[14] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->T,
                              cg->T_ptr, cg->i32, cg->T_ptr, cg->i32, cg->T, cg->T_ptr, cg->i32};
    LLVMTypeRef fty;
    LLVMValueRef f = cg_blas(cg, "gemm", params, 14, &fty);
    LLVMValueRef args[14] = {cg_i32(cg, ROW_MAJOR), cg_i32(cg, n->ta ? TRANS : NO_TRANS),
                             cg_i32(cg, n->tb ? TRANS : NO_TRANS), dim[0], dim[1], dim[2],
                             cg_real(cg, 1), a, lda, b, ldb, cg_real(cg, 0), c, ldc};
    LLVMBuildCall2(cg->b, fty, f, args, 14, "");
    if (join) {
        LLVMBuildBr(cg->b, join);
        LLVMPositionBuilderAtEnd(cg->b, join);
    }
}

/* Zero `count` elements at p. */
static void cg_zero(Codegen *cg, LLVMValueRef p, LLVMValueRef count) {
    Loop l = cg_loop_begin(cg, count, "zero");
    cg_store(cg, cg_real(cg, 0), p, l.index);
    cg_loop_end(cg, &l);
}

/* Where column j of row r of a [B, m·n] loop meets its [B, n] tile: r·n + j mod n. */
static LLVMValueRef tile_index(Body *B, LLVMValueRef row, LLVMValueRef j, long n) {
    LLVMBuilderRef b = B->cg->b;
    return LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_i64(B->cg, n), ""),
                        LLVMBuildURem(b, j, cg_i64(B->cg, n), ""), "");
}

/* The positions per channel of a kernel that reads a CHAN_EXPAND or
 * computes a CHAN_SUM (its columns then loop as channel x position, so a
 * channel's value is loop-invariant in the inner loop); 1 for none. */
static long kernel_hw(const Graph *g, const Kernel *k) {
    for (int m = 0; m < k->nnodes; m++) {
        const IrNode *node = &g->nodes[k->nodes[m]];
        if (node->op == IR_CHAN_SUM) return node->hw;
        for (int q = 0; q < ir_op_nin[node->op]; q++)
            if (g->nodes[node->in[q]].op == IR_CHAN_EXPAND) return g->nodes[node->in[q]].hw;
    }
    return 1;
}

/* Column j's channel for `hw` positions per channel: the channel loop's
 * index when hw is the kernel's, else j / hw. */
static LLVMValueRef chan_index(Codegen *cg, LLVMValueRef j, LLVMValueRef chan, long hw, long kernel_hw) {
    return hw == kernel_hw ? chan : LLVMBuildUDiv(cg->b, j, cg_i64(cg, hw), "");
}

/* One loop nest over the kernel's domain computing all its nodes. */
static void loop_kernel(Body *B, const Kernel *k) {
    Codegen *cg = B->cg;
    const Graph *g = B->g;
    long n = k->domain.n;
    LLVMValueRef ncols = cg_i64(cg, n);
    memset(B->scalar, 0, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    cg_debug_loc(cg, g->nodes[k->nodes[0]].loc); /* the loops: the kernel's first node */

    /* Before the loops: pointers, loop-invariant scalars, zeroed accumulators. */
    LLVMValueRef *ptr = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        const IrNode *node = &g->nodes[i];
        for (int j = 0; j < ir_op_nin[node->op]; j++) {
            int u = node->in[j];
            if (B->f->info[u].kernel == B->kernel && ir_op_class[g->nodes[u].op] != OPC_RED) continue;
            if (g->nodes[u].op == IR_CHAN_EXPAND) u = g->nodes[u].in[0]; /* loaded per channel */
            if (ir_is_scalar(g->nodes[u].type)) scalar_value(B, u);
            else if (!ptr[u]) ptr[u] = buf_ptr(B, B->p->loc[u]);
        }
        if (B->f->info[i].materialized) ptr[i] = buf_ptr(B, B->p->loc[i]);
        if (node->op == IR_SUM_ROWS) cg_zero(cg, ptr[i], ncols);
        if (node->op == IR_SUM_TILES)
            cg_zero(cg, ptr[i], LLVMBuildMul(cg->b, B->batch, cg_i64(cg, g->nodes[i].type.n), ""));
        if (node->op == IR_SUM_ALL) cg_zero(cg, buf_ptr(B, B->p->partial[i]), ncols);
        if (node->op == IR_CHAN_SUM) cg_zero(cg, ptr[i], cg_i64(cg, node->type.n));
    }

    LLVMValueRef rows = k->domain.batched ? B->batch : cg_i64(cg, 1);
    long hw = kernel_hw(g, k);
    Loop outer = cg_loop_begin(cg, rows, "row"), chan = {0};
    LLVMValueRef row_start = LLVMBuildMul(cg->b, outer.index, ncols, "");
    if (hw > 1) chan = cg_loop_begin(cg, cg_i64(cg, n / hw), "chan");
    Loop inner = cg_loop_begin(cg, hw > 1 ? cg_i64(cg, hw) : ncols, "col");
    LLVMValueRef j = hw > 1 ? LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, chan.index, cg_i64(cg, hw), ""),
                                           inner.index, "j")
                            : inner.index;
    LLVMValueRef idx = LLVMBuildAdd(cg->b, row_start, j, "i");
    B->index = idx;
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        const IrNode *node = &g->nodes[i];
        cg_debug_loc(cg, node->loc);
        LLVMValueRef in[2] = {0};
        for (int q = 0; q < ir_op_nin[node->op]; q++) {
            int u = node->in[q];
            IrType t = g->nodes[u].type;
            if (B->f->info[u].kernel == B->kernel && ir_op_class[g->nodes[u].op] != OPC_RED) in[q] = B->val[u];
            else if (ir_is_scalar(t)) in[q] = scalar_value(B, u);
            else if (g->nodes[u].op == IR_CHAN_EXPAND) { /* [C] at the column's channel */
                int v = g->nodes[u].in[0];
                in[q] = ir_is_scalar(g->nodes[v].type)
                            ? scalar_value(B, v)
                            : cg_load(cg, ptr[v], chan_index(cg, j, chan.index, g->nodes[u].hw, hw), "");
            } else if (node->op == IR_TILE) /* row r, column j mod n of the stored input */
                in[q] = cg_load(cg, ptr[u], tile_index(B, outer.index, j, t.n), "");
            else in[q] = cg_load(cg, ptr[u], t.batched ? idx : j, "");
        }
        LLVMValueRef v;
        if (node->op == IR_SUM_ROWS) {
            cg_store(cg, cg_add(cg, cg_load(cg, ptr[i], j, ""), in[0]), ptr[i], j);
            continue;
        }
        if (node->op == IR_SUM_TILES) {
            LLVMValueRef at = tile_index(B, outer.index, j, g->nodes[i].type.n);
            cg_store(cg, cg_add(cg, cg_load(cg, ptr[i], at, ""), in[0]), ptr[i], at);
            continue;
        }
        if (node->op == IR_SUM_ALL) {
            LLVMValueRef part = buf_ptr(B, B->p->partial[i]);
            cg_store(cg, cg_add(cg, cg_load(cg, part, j, ""), in[0]), part, j);
            continue;
        }
        if (node->op == IR_CHAN_SUM) {
            LLVMValueRef c = chan_index(cg, j, chan.index, node->hw, hw);
            cg_store(cg, cg_add(cg, cg_load(cg, ptr[i], c, ""), in[0]), ptr[i], c);
            continue;
        }
        v = elementwise(B, node, in[0], in[1]);
        B->val[i] = v;
        if (B->f->info[i].materialized) cg_store(cg, v, ptr[i], k->domain.batched ? idx : j);
    }
    cg_loop_end(cg, &inner);
    if (hw > 1) cg_loop_end(cg, &chan);
    cg_loop_end(cg, &outer);
    B->index = NULL;

    /* After the loops: fold each full reduction's column sums, in order. */
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        if (g->nodes[i].op != IR_SUM_ALL) continue;
        LLVMValueRef part = buf_ptr(B, B->p->partial[i]);
        LLVMValueRef acc = cg_alloca_entry(cg, "acc");
        LLVMBuildStore(cg->b, cg_real(cg, 0), acc);
        Loop l = cg_loop_begin(cg, ncols, "fold");
        LLVMBuildStore(cg->b, cg_add(cg, LLVMBuildLoad2(cg->b, cg->T, acc, ""), cg_load(cg, part, l.index, "")), acc);
        cg_loop_end(cg, &l);
        cg_store(cg, LLVMBuildLoad2(cg->b, cg->T, acc, ""), ptr[i], cg_i64(cg, 0));
    }
}

/* ------------------------------------------------------------ image kernels
 * NEST ops are kernels of their own: loop nests written out here, over the
 * geometry of their layer (ConvGeom). A convolution runs sample by sample:
 * im2col of one sample into the plan's scratch (`partial`, reused for every
 * sample, so it stays in cache), then one gemm giving that sample's NCHW
 * output; its adjoint is the gemm, then col2im. A 1x1 convolution with
 * stride 1 and no padding needs neither. */

static LLVMValueRef cg_iadd(Codegen *cg, LLVMValueRef a, long b) {
    return b ? LLVMBuildAdd(cg->b, a, cg_i64(cg, b), "") : a;
}
static LLVMValueRef cg_imul(Codegen *cg, LLVMValueRef a, long b) {
    return b == 1 ? a : LLVMBuildMul(cg->b, a, cg_i64(cg, b), "");
}
/* base + index (elements) */
static LLVMValueRef cg_at(Codegen *cg, LLVMValueRef base, LLVMValueRef index) {
    return cg_gep(cg, base, index, "");
}

/* C = op(A)·op(B) + beta·C, row-major, through cblas. */
static void cg_gemm_call(Codegen *cg, bool ta, bool tb, long m, long n, long k, LLVMValueRef a,
                         long lda, LLVMValueRef b, long ldb, LLVMValueRef beta, LLVMValueRef c,
                         long ldc) {
    enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
    LLVMTypeRef params[14] = {cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->i32, cg->T,
                              cg->T_ptr, cg->i32, cg->T_ptr, cg->i32, cg->T, cg->T_ptr, cg->i32};
    LLVMTypeRef fty;
    LLVMValueRef f = cg_blas(cg, "gemm", params, 14, &fty);
    LLVMValueRef args[14] = {cg_i32(cg, ROW_MAJOR), cg_i32(cg, ta ? TRANS : NO_TRANS),
                             cg_i32(cg, tb ? TRANS : NO_TRANS), cg_i32(cg, m), cg_i32(cg, n),
                             cg_i32(cg, k), cg_real(cg, 1), a, cg_i32(cg, lda), b, cg_i32(cg, ldb),
                             beta, c, cg_i32(cg, ldc)};
    LLVMBuildCall2(cg->b, fty, f, args, 14, "");
}

/* The outputs o in [lo, hi) of one spatial dimension whose input o·S + off
 * lies inside [0, size); outside it the window sees padding. */
static void valid_range(long off, long stride, long size, long outs, long *lo, long *hi) {
    *lo = off < 0 ? (-off + stride - 1) / stride : 0;
    *hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / stride + 1;
    if (*hi > outs) *hi = outs;
    if (*lo > *hi) *lo = *hi;
}

/* im2col of one sample: cols[(c·KH + i)·KW + j][y·OW + x] =
 * img[c][y·S − pad_h + i][x·S − pad_w + j] where that is inside the image;
 * the positions that see padding are left alone (the caller zeroed them
 * once, they never change). With `add`, its adjoint col2im: img[...] +=
 * cols[...] over the same pairs (img zeroed by the caller). The window
 * offsets (i, j) are unrolled, so every range is a constant and the copies
 * are plain loops that vectorize. */
static void emit_im2col_body(Codegen *cg, const ConvGeom *q, LLVMValueRef img, LLVMValueRef cols, bool add) {
    long P = (long)q->oh * q->ow, S = q->stride;
    Loop lc = cg_loop_begin(cg, cg_i64(cg, q->c), "chan");
    LLVMValueRef img_c = cg_at(cg, img, cg_imul(cg, lc.index, (long)q->h * q->w));
    LLVMValueRef cols_c = cg_at(cg, cols, cg_imul(cg, lc.index, (long)q->kh * q->kw * P));
    for (int i = 0; i < q->kh; i++)
        for (int j = 0; j < q->kw; j++) {
            LLVMValueRef row = cg_at(cg, cols_c, cg_i64(cg, ((long)i * q->kw + j) * P));
            long y0, y1, x0, x1;
            valid_range(i - q->pad_h, S, q->h, q->oh, &y0, &y1);
            valid_range(j - q->pad_w, S, q->w, q->ow, &x0, &x1);
            if (y1 <= y0 || x1 <= x0) continue;
            Loop ly = cg_loop_begin(cg, cg_i64(cg, y1 - y0), "y");
            LLVMValueRef y = cg_iadd(cg, ly.index, y0);
            LLVMValueRef dst = cg_at(cg, row, cg_imul(cg, y, q->ow));
            /* the input row y·S − pad_h + i, from its column −pad_w + j */
            LLVMValueRef src = cg_at(cg, img_c, cg_iadd(cg, cg_imul(cg, y, S * q->w),
                                                        (long)(i - q->pad_h) * q->w + j - q->pad_w));
            Loop lx = cg_loop_begin(cg, cg_i64(cg, x1 - x0), "x");
            LLVMValueRef x = cg_iadd(cg, lx.index, x0), at = cg_imul(cg, x, S);
            if (add) cg_store(cg, cg_add(cg, cg_load(cg, src, at, ""), cg_load(cg, dst, x, "")), src, at);
            else cg_store(cg, cg_load(cg, src, at, ""), dst, x);
            cg_loop_end(cg, &lx);
            cg_loop_end(cg, &ly);
        }
    cg_loop_end(cg, &lc);
}

/* The call of layer `layer`'s im2col (or col2im) on one sample: a function
 * of its own, made on first use, so that the unrolled loops are compiled
 * once per layer rather than in every kernel and graph that use them. */
static void emit_im2col(Codegen *cg, int layer, const ConvGeom *q, LLVMValueRef img, LLVMValueRef cols,
                        bool add) {
    LLVMValueRef *fn = &cg->im2col[2 * layer + add];
    LLVMTypeRef params[2] = {cg->T_ptr, cg->T_ptr};
    if (!*fn) {
        /* Build it aside, then come back to the function being built. */
        LLVMValueRef caller = cg->fn;
        LLVMBasicBlockRef at = LLVMGetInsertBlock(cg->b);
        LLVMMetadataRef scope = cg->di_scope;
        char name[256];
        snprintf(name, sizeof name, "%s__%s_%d", cg->prefix, add ? "col2im" : "im2col", layer);
        *fn = cg_function(cg, name, cg->void_t, params, 2, true);
        LLVMAddAttributeAtIndex(*fn, LLVMAttributeFunctionIndex,
                                LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
        emit_im2col_body(cg, q, LLVMGetParam(*fn, 0), LLVMGetParam(*fn, 1), add);
        LLVMBuildRetVoid(cg->b);
        cg->fn = caller;
        cg->di_scope = scope;
        LLVMPositionBuilderAtEnd(cg->b, at);
        if (cg->dib) cg_debug_loc(cg, (Loc){0});
    }
    LLVMValueRef args[2] = {img, cols};
    LLVMBuildCall2(cg->b, LLVMFunctionType(cg->void_t, params, 2, 0), *fn, args, 2, "");
}

/* CONV, CONV_T, CONV_W: a loop over the samples, each an im2col/col2im and a gemm. */
static void conv_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    ConvGeom q = conv_geom(&B->g->model->layers[n->layer]);
    long img = (long)q.c * q.h * q.w, P = (long)q.oh * q.ow, ckk = (long)q.c * q.kh * q.kw;
    long cols = (long)q.r * P;
    bool id = conv_geom_is_identity(&q);
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), w = buf_ptr(B, B->p->loc[n->in[1]]);
    LLVMValueRef out = buf_ptr(B, B->p->loc[i]), scratch = id ? NULL : buf_ptr(B, B->p->partial[i]);
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    /* The padding's columns stay zero from sample to sample. */
    if (!id && n->op != IR_CONV_T) cg_zero(cg, scratch, cg_i64(cg, ckk * P));
    Loop lb = cg_loop_begin(cg, B->batch, "sample");
    LLVMValueRef s = lb.index;
    switch (n->op) {
    case IR_CONV: { /* y_s [R, P] = W [R, CKK] · im2col(x_s) [CKK, P] */
        LLVMValueRef x = cg_at(cg, a, cg_imul(cg, s, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, scratch, false);
        cg_gemm_call(cg, false, false, q.r, P, ckk, w, ckk, id ? x : scratch, P, zero,
                     cg_at(cg, out, cg_imul(cg, s, cols)), P);
        break;
    }
    case IR_CONV_T: { /* y_s = col2im(Wᵀ [CKK, R] · d_s [R, P]) */
        LLVMValueRef d = cg_at(cg, a, cg_imul(cg, s, cols)), y = cg_at(cg, out, cg_imul(cg, s, img));
        cg_gemm_call(cg, true, false, ckk, P, q.r, w, ckk, d, P, zero, id ? y : scratch, P);
        if (!id) {
            cg_zero(cg, y, cg_i64(cg, img));
            emit_im2col(cg, n->layer, &q, y, scratch, true);
        }
        break;
    }
    case IR_CONV_W: { /* dW [R, CKK] = Σ_s d_s [R, P] · im2col(x_s)ᵀ [P, CKK] */
        LLVMValueRef d = cg_at(cg, a, cg_imul(cg, s, cols)), x = cg_at(cg, w, cg_imul(cg, s, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, scratch, false);
        LLVMValueRef beta = cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, s, cg_i64(cg, 0), ""), zero, one);
        cg_gemm_call(cg, false, true, q.r, ckk, P, d, P, id ? x : scratch, P, beta, out, ckk);
        break;
    }
    default: internal_error("%s is not a convolution", ir_op_names[n->op]);
    }
    cg_loop_end(cg, &lb);
}

/* A stack variable of v's type in the entry block (mem2reg makes it a
 * register), initialized to v here. */
static LLVMValueRef cg_var(Codegen *cg, const char *name, LLVMValueRef v) {
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(tmp, first);
    else LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef slot = LLVMBuildAlloca(tmp, LLVMTypeOf(v), name);
    LLVMDisposeBuilder(tmp);
    LLVMBuildStore(cg->b, v, slot);
    return slot;
}

/* Pooling, upsampling and their adjoints: loops over the batch's planes
 * (samples x channels) and the output positions, the window inside. */
static void pool_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    LLVMBuilderRef b = cg->b;
    const IrNode *n = &B->g->nodes[i];
    ConvGeom q = conv_geom(&B->g->model->layers[n->layer]);
    long in_plane = (long)q.h * q.w, out_plane = (long)q.oh * q.ow, S = q.stride;
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), out = buf_ptr(B, B->p->loc[i]);
    LLVMValueRef planes = cg_imul(cg, B->batch, q.c);
    bool adjoint = n->op == IR_MAXPOOL_GRAD || n->op == IR_AVGPOOL_GRAD;
    if (adjoint) cg_zero(cg, out, cg_imul(cg, planes, in_plane));
    if (n->op == IR_UPSAMPLE || n->op == IR_UPSAMPLE_GRAD) {
        /* the big plane is the output (upsample) or the input (its adjoint) */
        bool up = n->op == IR_UPSAMPLE;
        long K = q.stride;
        Loop lp = cg_loop_begin(cg, planes, "plane");
        Loop ly = cg_loop_begin(cg, cg_i64(cg, q.h), "y");
        Loop lx = cg_loop_begin(cg, cg_i64(cg, q.w), "x");
        LLVMValueRef small = LLVMBuildAdd(b, LLVMBuildAdd(b, cg_imul(cg, lp.index, in_plane),
                                                           cg_imul(cg, ly.index, q.w), ""), lx.index, "");
        LLVMValueRef big0 = LLVMBuildAdd(b, cg_imul(cg, lp.index, out_plane),
                                         LLVMBuildAdd(b, cg_imul(cg, ly.index, K * q.ow), cg_imul(cg, lx.index, K), ""), "");
        LLVMValueRef v = up ? cg_load(cg, a, small, "") : NULL, acc = up ? NULL : cg_var(cg, "acc", cg_real(cg, 0));
        Loop li = cg_loop_begin(cg, cg_i64(cg, K), "i");
        Loop lj = cg_loop_begin(cg, cg_i64(cg, K), "j");
        LLVMValueRef big = LLVMBuildAdd(b, big0, LLVMBuildAdd(b, cg_imul(cg, li.index, q.ow), lj.index, ""), "");
        if (up) cg_store(cg, v, out, big);
        else LLVMBuildStore(b, cg_add(cg, LLVMBuildLoad2(b, cg->T, acc, ""), cg_load(cg, a, big, "")), acc);
        cg_loop_end(cg, &lj);
        cg_loop_end(cg, &li);
        if (!up) cg_store(cg, LLVMBuildLoad2(b, cg->T, acc, ""), out, small);
        cg_loop_end(cg, &lx);
        cg_loop_end(cg, &ly);
        cg_loop_end(cg, &lp);
        return;
    }
    /* pooling: x is the first input of every op but AVGPOOL_GRAD (dy alone) */
    LLVMValueRef x = n->op == IR_AVGPOOL_GRAD ? NULL : a;
    LLVMValueRef dy = n->op == IR_MAXPOOL_GRAD ? buf_ptr(B, B->p->loc[n->in[1]]) : a;
    LLVMValueRef inv = cg_real(cg, 1.0 / (q.kh * q.kw));
    Loop lp = cg_loop_begin(cg, planes, "plane");
    Loop ly = cg_loop_begin(cg, cg_i64(cg, q.oh), "y");
    Loop lx = cg_loop_begin(cg, cg_i64(cg, q.ow), "x");
    LLVMValueRef o = LLVMBuildAdd(b, cg_imul(cg, lp.index, out_plane),
                                  LLVMBuildAdd(b, cg_imul(cg, ly.index, q.ow), lx.index, ""), "o");
    LLVMValueRef corner = LLVMBuildAdd(b, cg_imul(cg, lp.index, in_plane),
                                       LLVMBuildAdd(b, cg_imul(cg, ly.index, S * q.w), cg_imul(cg, lx.index, S), ""), "");
    LLVMValueRef acc = NULL, best_at = NULL, g = NULL;
    if (n->op == IR_MAXPOOL || n->op == IR_MAXPOOL_GRAD) { /* the first maximum, as PyTorch */
        acc = cg_var(cg, "best", cg_load(cg, x, corner, ""));
        best_at = cg_var(cg, "best_at", corner);
    } else if (n->op == IR_AVGPOOL) {
        acc = cg_var(cg, "sum", cg_real(cg, 0));
    } else {
        g = cg_mul(cg, cg_load(cg, dy, o, ""), inv);
    }
    Loop li = cg_loop_begin(cg, cg_i64(cg, q.kh), "i");
    Loop lj = cg_loop_begin(cg, cg_i64(cg, q.kw), "j");
    LLVMValueRef at = LLVMBuildAdd(b, corner, LLVMBuildAdd(b, cg_imul(cg, li.index, q.w), lj.index, ""), "");
    if (best_at) {
        LLVMValueRef v = cg_load(cg, x, at, ""), cur = LLVMBuildLoad2(b, cg->T, acc, "");
        LLVMValueRef better = LLVMBuildFCmp(b, LLVMRealOGT, v, cur, "");
        LLVMBuildStore(b, cg_select(cg, better, v, cur), acc);
        LLVMBuildStore(b, cg_select(cg, better, at, LLVMBuildLoad2(b, cg->i64, best_at, "")), best_at);
    } else if (acc) {
        LLVMBuildStore(b, cg_add(cg, LLVMBuildLoad2(b, cg->T, acc, ""), cg_load(cg, a, at, "")), acc);
    } else {
        cg_store(cg, cg_add(cg, cg_load(cg, out, at, ""), g), out, at);
    }
    cg_loop_end(cg, &lj);
    cg_loop_end(cg, &li);
    if (n->op == IR_MAXPOOL) cg_store(cg, LLVMBuildLoad2(b, cg->T, acc, ""), out, o);
    if (n->op == IR_AVGPOOL) cg_store(cg, cg_mul(cg, LLVMBuildLoad2(b, cg->T, acc, ""), inv), out, o);
    if (n->op == IR_MAXPOOL_GRAD) {
        LLVMValueRef to = LLVMBuildLoad2(b, cg->i64, best_at, "");
        cg_store(cg, cg_add(cg, cg_load(cg, out, to, ""), cg_load(cg, dy, o, "")), out, to);
    }
    cg_loop_end(cg, &lx);
    cg_loop_end(cg, &ly);
    cg_loop_end(cg, &lp);
}

static void nest_kernel(Body *B, int i) {
    cg_debug_loc(B->cg, B->g->nodes[i].loc);
    switch (B->g->nodes[i].op) {
    case IR_CONV:
    case IR_CONV_T:
    case IR_CONV_W: conv_kernel(B, i); break;
    default: pool_kernel(B, i); break;
    }
}

/* The internal function computing one graph. */
static LLVMValueRef graph_body(Codegen *cg, const Graph *g, const Plan **plan_out) {
    const Fusion *f = fuse_graph(cg->arena, g);
    const Plan *p = plan_memory(cg->arena, f);
    *plan_out = p;
    LLVMTypeRef params[N_ARGS];
    for (int a = 0; a < N_ARGS; a++) params[a] = cg->T_ptr;
    params[ARG_BATCH] = params[ARG_STEP] = cg->i64;
    char name[256];
    if (g->stage)
        snprintf(name, sizeof name, "%s__%s_stage%d", cg->prefix, ir_graph_name(g->kind), g->stage);
    else
        snprintf(name, sizeof name, "%s__%s", cg->prefix, ir_graph_name(g->kind));
    LLVMValueRef fn = cg_function(cg, name, cg->void_t, params, N_ARGS, true);
    static const char *const arg_names[N_ARGS] = {"params", "opt", "x", "grads", "ws", "code", "x_hat", "loss", "batch", "step", "mask"};
    for (int a = 0; a < N_ARGS; a++) LLVMSetValueName2(LLVMGetParam(fn, (unsigned)a), arg_names[a], strlen(arg_names[a]));

    Body B = {.cg = cg, .g = g, .f = f, .p = p};
    B.val = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.scalar = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.base[BASE_WS] = LLVMGetParam(fn, ARG_WS);
    B.base[BASE_X] = LLVMGetParam(fn, ARG_X);
    B.base[BASE_PARAMS] = LLVMGetParam(fn, ARG_PARAMS);
    B.base[BASE_GRADS] = LLVMGetParam(fn, ARG_GRADS);
    B.base[BASE_OPT] = LLVMGetParam(fn, ARG_OPT);
    B.base[BASE_CODE] = LLVMGetParam(fn, ARG_CODE);
    B.base[BASE_XHAT] = LLVMGetParam(fn, ARG_XHAT);
    B.base[BASE_LOSS] = LLVMGetParam(fn, ARG_LOSS);
    B.base[BASE_MASK] = LLVMGetParam(fn, ARG_MASK);
    B.batch = LLVMGetParam(fn, ARG_BATCH);
    B.batch_t = LLVMBuildSIToFP(cg->b, B.batch, cg->T, "batch_f");
    B.step_t = LLVMBuildUIToFP(cg->b, LLVMGetParam(fn, ARG_STEP), cg->T, "step_f");
    B.step = LLVMGetParam(fn, ARG_STEP);

    for (int k = 0; k < f->nkernels; k++) {
        B.kernel = k;
        if (f->kernels[k].kind == K_GEMM) gemm_kernel(&B, f->kernels[k].node);
        else if (f->kernels[k].kind == K_NEST) nest_kernel(&B, f->kernels[k].node);
        else loop_kernel(&B, &f->kernels[k]);
    }
    /* Inline scalar outputs (the loss), from the stored reductions. */
    memset(B.scalar, 0, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.kernel = f->nkernels;
    for (int o = 0; o < g->nouts; o++) {
        int i = g->outs[o].node;
        if (f->info[i].inline_scalar && g->outs[o].kind != OUT_METRIC)
            LLVMBuildStore(cg->b, scalar_value(&B, i), buf_ptr(&B, p->loc[i]));
    }
    /* The loss's terms, after it: loss[index]. */
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].kind == OUT_METRIC)
            cg_store(cg, scalar_value(&B, g->outs[o].node), B.base[BASE_LOSS],
                     cg_i64(cg, g->outs[o].index));
    LLVMBuildRetVoid(cg->b);
    return fn;
}

/* ------------------------------------------------------------ entry points */

typedef struct Bodies {
    LLVMValueRef train, optim, eval, encode, decode;
    LLVMValueRef *stage_train, *stage_optim; /* pretraining stage k at [k - 1] */
    int nstages;
    long ws_batch, ws_const; /* the largest plan, elements */
    const Plan *train_plan;  /* where the train graph leaves its OUT_BUFFER values */
} Bodies;

/* Copy the train graph's new running statistics (OUT_BUFFER, in the plan's
 * workspace) into their tensors in the params block. */
static void copy_buffers(Codegen *cg, const Plan *p, LLVMValueRef params, LLVMValueRef plan,
                         LLVMValueRef batch) {
    const Graph *g = p->fusion->graph;
    for (int o = 0; o < g->nouts; o++) {
        if (g->outs[o].kind != OUT_BUFFER) continue;
        BufLoc l = p->loc[g->outs[o].node];
        ensure(l.base == BASE_WS);
        LLVMValueRef off = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, batch, cg_i64(cg, l.off_batch), ""),
                                        cg_i64(cg, l.off_const), "");
        LLVMValueRef src = cg_gep(cg, plan, off, "");
        const ParamTensor *t = &cg->model->tensors[g->outs[o].index];
        LLVMValueRef dst = cg_gep(cg, params, cg_i64(cg, t->offset), t->name);
        Loop l2 = cg_loop_begin(cg, cg_i64(cg, t->numel), "buffer");
        cg_store(cg, cg_load(cg, src, l2.index, ""), dst, l2.index);
        cg_loop_end(cg, &l2);
    }
}

static LLVMValueRef call_body(Codegen *cg, LLVMValueRef body, LLVMValueRef *args) {
    return LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(body), body, args, N_ARGS, "");
}

/* Return `code` from the function when `cond` holds. */
static void cg_return_if(Codegen *cg, LLVMValueRef cond, int code) {
    LLVMBasicBlockRef fail = cg_block(cg, "fail"), ok = cg_block(cg, "ok");
    LLVMBuildCondBr(cg->b, cond, fail, ok);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    LLVMBuildRet(cg->b, cg_i32(cg, code));
    LLVMPositionBuilderAtEnd(cg->b, ok);
}

static void check_batch(Codegen *cg, LLVMValueRef batch32) {
    LLVMValueRef lo = LLVMBuildICmp(cg->b, LLVMIntSLT, batch32, cg_i32(cg, 1), "");
    LLVMValueRef hi = LLVMBuildICmp(cg->b, LLVMIntSGT, batch32, cg_i32(cg, AEC_MAX_BATCH), "");
    cg_return_if(cg, LLVMBuildOr(cg->b, lo, hi, ""), AEC_EBATCH);
}

static void check_nonnull(Codegen *cg, LLVMValueRef p) {
    cg_return_if(cg, LLVMBuildIsNull(cg->b, p, ""), AEC_ENULL);
}

/* The workspace, aligned up to AEC_ALIGN (workspace_size leaves room). */
static LLVMValueRef aligned_ws(Codegen *cg, LLVMValueRef ws) {
    LLVMValueRef as_int = LLVMBuildPtrToInt(cg->b, ws, cg->i64, "");
    as_int = LLVMBuildAnd(cg->b, LLVMBuildAdd(cg->b, as_int, cg_i64(cg, AEC_ALIGN - 1), ""),
                          cg_i64(cg, -(long)AEC_ALIGN), "");
    return LLVMBuildIntToPtr(cg->b, as_int, cg->T_ptr, "ws");
}

static long round16(long n) { return (n + 15) / 16 * 16; }

/* Workspace layout: [the loss and its terms][gradient block][eval's x_hat
 * scratch][the plan's buffers][a masked model's ones, see mask_arg]. The
 * graphs write every metric to the first
 * region; the entry points copy loss[0] out, so the caller's `loss` is one
 * value as DESIGN §4 says, and `metrics` reads the rest. */
enum { WS_METRICS = 16, WS_REGION_METRICS = -1 };
static LLVMValueRef ws_region(Codegen *cg, LLVMValueRef ws, LLVMValueRef batch64, int region) {
    long grads = round16(cg->trainable);
    if (region == WS_REGION_METRICS) return ws;
    ws = cg_gep(cg, ws, cg_i64(cg, WS_METRICS), "");
    if (region == 0) return ws;
    if (region == 1) return cg_gep(cg, ws, cg_i64(cg, grads), "");
    LLVMValueRef off = LLVMBuildAdd(cg->b, cg_i64(cg, grads), LLVMBuildMul(cg->b, batch64, cg_i64(cg, cg->xhat_scratch), ""), "");
    return cg_gep(cg, ws, off, "plan");
}

/* A masked model's mask argument: the caller's, or when it passes NULL, a
 * workspace region after the plan filled with ones (nothing missing).
 * NULL for a model without `loss ... masked`, which never reads it. */
static LLVMValueRef mask_arg(Codegen *cg, LLVMValueRef mask, LLVMValueRef ws, LLVMValueRef batch64) {
    if (!cg->model->masked) return LLVMConstNull(cg->T_ptr);
    LLVMValueRef ones = cg_gep(cg, ws_region(cg, ws, batch64, 2),
                               LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, batch64, cg_i64(cg, cg->ws_batch), ""),
                                            cg_i64(cg, cg->ws_const), ""), "ones");
    LLVMValueRef none = LLVMBuildIsNull(cg->b, mask, "");
    LLVMValueRef count = LLVMBuildMul(cg->b, batch64, cg_i64(cg, shape_numel(cg->model->input)), "");
    Loop l = cg_loop_begin(cg, cg_select(cg, none, count, cg_i64(cg, 0)), "ones");
    cg_store(cg, cg_real(cg, 1), ones, l.index);
    cg_loop_end(cg, &l);
    return cg_select(cg, none, ones, mask);
}

/* *loss = metrics[0]; returns the value. */
static LLVMValueRef copy_loss(Codegen *cg, LLVMValueRef metrics, LLVMValueRef loss) {
    LLVMValueRef v = cg_load(cg, metrics, cg_i64(cg, 0), "loss");
    cg_store(cg, v, loss, cg_i64(cg, 0));
    return v;
}

/* Return AEC_ENONFINITE unless v is finite. */
static void check_finite(Codegen *cg, LLVMValueRef v) {
    LLVMValueRef bad = LLVMBuildFCmp(cg->b, LLVMRealUNO, v, v, "");
    bad = LLVMBuildOr(cg->b, bad, LLVMBuildFCmp(cg->b, LLVMRealOEQ, cg_math1(cg, "fabs", v, true),
                                                 cg_real(cg, INFINITY), ""), "");
    cg_return_if(cg, bad, AEC_ENONFINITE);
}

static void emit_entry_points(Codegen *cg, const Bodies *bo) {
    const char *P = cg->prefix;
    LLVMTypeRef Tp = cg->T_ptr, i32 = cg->i32, i64 = cg->i64;
    char name[256];
    LLVMValueRef null = LLVMConstNull(Tp);

    /* size_t NAME_workspace_size(int batch) */
    snprintf(name, sizeof name, "%s_workspace_size", P);
    LLVMValueRef fn = cg_function(cg, name, i64, &i32, 1, false);
    LLVMValueRef b64 = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 0), i64, "");
    long ones = cg->model->masked ? round16(shape_numel(cg->model->input)) : 0;
    LLVMValueRef elems = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, b64, cg_i64(cg, bo->ws_batch + cg->xhat_scratch + ones), ""),
                                      cg_i64(cg, bo->ws_const + round16(cg->trainable) + WS_METRICS), "");
    LLVMValueRef bytes = LLVMBuildMul(cg->b, elems, cg_i64(cg, cg->opt.f64 ? 8 : 4), "");
    LLVMBuildRet(cg->b, LLVMBuildAdd(cg->b, bytes, cg_i64(cg, AEC_ALIGN), ""));

    /* int NAME_train_step(params, opt, x, mask, batch, step, loss, ws) */
    snprintf(name, sizeof name, "%s_train_step", P);
    LLVMTypeRef ts[8] = {Tp, Tp, Tp, Tp, i32, i64, Tp, cg->i8_ptr};
    fn = cg_function(cg, name, i32, ts, 8, false);
    LLVMValueRef batch = LLVMGetParam(fn, 4), ws;
    check_batch(cg, batch);
    check_nonnull(cg, LLVMGetParam(fn, 0));
    check_nonnull(cg, LLVMGetParam(fn, 2));
    check_nonnull(cg, LLVMGetParam(fn, 6));
    check_nonnull(cg, LLVMGetParam(fn, 7));
    if (lower_opt_slots(cg->model) > 0) check_nonnull(cg, LLVMGetParam(fn, 1));
    b64 = LLVMBuildSExt(cg->b, batch, i64, "");
    ws = aligned_ws(cg, LLVMGetParam(fn, 7));
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    LLVMValueRef args[N_ARGS] = {LLVMGetParam(fn, 0), null, LLVMGetParam(fn, 2), grads, plan, null, null,
                                 metrics, b64, LLVMGetParam(fn, 5), mask_arg(cg, LLVMGetParam(fn, 3), ws, b64)};
    call_body(cg, bo->train, args);
    /* A non-finite loss leaves the parameters as they were. */
    check_finite(cg, copy_loss(cg, metrics, LLVMGetParam(fn, 6)));
    copy_buffers(cg, bo->train_plan, LLVMGetParam(fn, 0), plan, b64);
    LLVMValueRef oargs[N_ARGS] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), null, grads, plan, null, null,
                                  null, b64, LLVMGetParam(fn, 5), null};
    call_body(cg, bo->optim, oargs);
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* int NAME_loss_grad(params, x, mask, batch, step, loss, grad, ws) */
    snprintf(name, sizeof name, "%s_loss_grad", P);
    LLVMTypeRef lg[8] = {Tp, Tp, Tp, i32, i64, Tp, Tp, cg->i8_ptr};
    fn = cg_function(cg, name, i32, lg, 8, false);
    check_batch(cg, LLVMGetParam(fn, 3));
    for (int a = 0; a < 8; a++)
        if (a != 2 && a != 3 && a != 4) check_nonnull(cg, LLVMGetParam(fn, (unsigned)a));
    b64 = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 3), i64, "");
    ws = aligned_ws(cg, LLVMGetParam(fn, 7));
    metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    LLVMValueRef largs[N_ARGS] = {LLVMGetParam(fn, 0), null, LLVMGetParam(fn, 1), LLVMGetParam(fn, 6),
                                  ws_region(cg, ws, b64, 2), null, null, metrics, b64,
                                  LLVMGetParam(fn, 4), mask_arg(cg, LLVMGetParam(fn, 2), ws, b64)};
    call_body(cg, bo->train, largs);
    copy_loss(cg, metrics, LLVMGetParam(fn, 5));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* int NAME_eval(params, x, mask, batch, loss, x_hat (may be NULL), ws) */
    snprintf(name, sizeof name, "%s_eval", P);
    LLVMTypeRef ev[7] = {Tp, Tp, Tp, i32, Tp, Tp, cg->i8_ptr};
    fn = cg_function(cg, name, i32, ev, 7, false);
    check_batch(cg, LLVMGetParam(fn, 3));
    check_nonnull(cg, LLVMGetParam(fn, 0));
    check_nonnull(cg, LLVMGetParam(fn, 1));
    check_nonnull(cg, LLVMGetParam(fn, 4));
    check_nonnull(cg, LLVMGetParam(fn, 6));
    b64 = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 3), i64, "");
    ws = aligned_ws(cg, LLVMGetParam(fn, 6));
    LLVMValueRef xhat = LLVMGetParam(fn, 5);
    xhat = cg_select(cg, LLVMBuildIsNull(cg->b, xhat, ""), ws_region(cg, ws, b64, 1), xhat);
    metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    LLVMValueRef eargs[N_ARGS] = {LLVMGetParam(fn, 0), null, LLVMGetParam(fn, 1), null, ws_region(cg, ws, b64, 2),
                                  null, xhat, metrics, b64, cg_i64(cg, 0), mask_arg(cg, LLVMGetParam(fn, 2), ws, b64)};
    call_body(cg, bo->eval, eargs);
    copy_loss(cg, metrics, LLVMGetParam(fn, 4));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* int NAME_encode(params, x, code, batch, ws) / NAME_decode(params, code, x_hat, batch, ws) */
    for (int dec = 0; dec < 2; dec++) {
        snprintf(name, sizeof name, "%s_%s", P, dec ? "decode" : "encode");
        LLVMTypeRef ed[5] = {Tp, Tp, Tp, i32, cg->i8_ptr};
        fn = cg_function(cg, name, i32, ed, 5, false);
        check_batch(cg, LLVMGetParam(fn, 3));
        for (int a = 0; a < 5; a++)
            if (a != 3) check_nonnull(cg, LLVMGetParam(fn, (unsigned)a));
        b64 = LLVMBuildSExt(cg->b, LLVMGetParam(fn, 3), i64, "");
        ws = aligned_ws(cg, LLVMGetParam(fn, 4));
        LLVMValueRef dargs[N_ARGS] = {LLVMGetParam(fn, 0), null, LLVMGetParam(fn, 1), null, ws_region(cg, ws, b64, 2),
                                      dec ? null : LLVMGetParam(fn, 2), dec ? LLVMGetParam(fn, 2) : null, null,
                                      b64, cg_i64(cg, 0), null};
        call_body(cg, dec ? bo->decode : bo->encode, dargs);
        LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
    }
}

/* int NAME_metrics(ws, out): the loss and its terms (n_metrics values) of
 * the last train_step, loss_grad, eval or stage_step on this workspace. */
static void emit_metrics(Codegen *cg) {
    char name[256];
    snprintf(name, sizeof name, "%s_metrics", cg->prefix);
    LLVMTypeRef ps[2] = {cg->i8_ptr, cg->T_ptr};
    LLVMValueRef fn = cg_function(cg, name, cg->i32, ps, 2, false);
    check_nonnull(cg, LLVMGetParam(fn, 0));
    check_nonnull(cg, LLVMGetParam(fn, 1));
    LLVMValueRef ws = aligned_ws(cg, LLVMGetParam(fn, 0));
    ensure(lower_metrics(cg->model, NULL) <= WS_METRICS);
    for (int i = 0; i < lower_metrics(cg->model, NULL); i++)
        cg_store(cg, cg_load(cg, ws, cg_i64(cg, i), ""), LLVMGetParam(fn, 1), cg_i64(cg, i));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
}

/* int NAME_stage_step(stage, params, opt, x, mask, batch, step, loss, ws):
 * train_step for layer-wise pretraining stage `stage` (1..n_stages), which
 * updates only that stage's tensors; AEC_EUNSUPPORTED for another stage. */
static void emit_stage_step(Codegen *cg, const Bodies *bo) {
    char name[256];
    snprintf(name, sizeof name, "%s_stage_step", cg->prefix);
    LLVMTypeRef Tp = cg->T_ptr, ts[9] = {cg->i32, Tp, Tp, Tp, Tp, cg->i32, cg->i64, Tp, cg->i8_ptr};
    LLVMValueRef fn = cg_function(cg, name, cg->i32, ts, 9, false), null = LLVMConstNull(Tp);
    LLVMValueRef stage = LLVMGetParam(fn, 0), batch = LLVMGetParam(fn, 5);
    check_batch(cg, batch);
    for (int a = 1; a < 9; a++)
        if (a == 1 || a == 3 || a == 7 || a == 8 || (a == 2 && lower_opt_slots(cg->model) > 0))
            check_nonnull(cg, LLVMGetParam(fn, (unsigned)a));
    LLVMValueRef b64 = LLVMBuildSExt(cg->b, batch, cg->i64, "");
    LLVMValueRef ws = aligned_ws(cg, LLVMGetParam(fn, 8));
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef params = LLVMGetParam(fn, 1), opt = LLVMGetParam(fn, 2), step = LLVMGetParam(fn, 6);
    LLVMValueRef loss = LLVMGetParam(fn, 7), metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    for (int s = 1; s <= bo->nstages; s++) {
        LLVMBasicBlockRef here = cg_block(cg, "stage"), next = cg_block(cg, "");
        LLVMValueRef is = LLVMBuildICmp(cg->b, LLVMIntEQ, stage, cg_i32(cg, s), "");
        LLVMBuildCondBr(cg->b, is, here, next);
        LLVMPositionBuilderAtEnd(cg->b, here);
        LLVMValueRef args[N_ARGS] = {params, null, LLVMGetParam(fn, 3), grads, plan, null, null, metrics, b64, step, mask_arg(cg, LLVMGetParam(fn, 4), ws, b64)};
        call_body(cg, bo->stage_train[s - 1], args);
        check_finite(cg, copy_loss(cg, metrics, loss));
        LLVMValueRef oargs[N_ARGS] = {params, opt, null, grads, plan, null, null, null, b64, step, null};
        call_body(cg, bo->stage_optim[s - 1], oargs);
        LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
        LLVMPositionBuilderAtEnd(cg->b, next);
    }
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_EUNSUPPORTED));
}

/* int NAME_init(params, seed): weights from the spec's `init`, biases 0,
 * batch-norm variances 1. Uniform/normal draws come from the counter-based
 * generator, stream "INIT" + tensor index, counter = element index. */
static void emit_init(Codegen *cg) {
    const Model *m = cg->model;
    char name[256];
    snprintf(name, sizeof name, "%s_init", cg->prefix);
    LLVMTypeRef ps[2] = {cg->T_ptr, cg->i64};
    LLVMValueRef fn = cg_function(cg, name, cg->i32, ps, 2, false);
    check_nonnull(cg, LLVMGetParam(fn, 0));
    LLVMValueRef params = LLVMGetParam(fn, 0), seed = LLVMGetParam(fn, 1);
    for (int t = 0; t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        LLVMValueRef base = cg_gep(cg, params, cg_i64(cg, pt->offset), pt->name);
        LLVMValueRef stream = LLVMConstInt(cg->i64, 0x494E495400000000ull + (unsigned)t, 0);
        Loop l = cg_loop_begin(cg, cg_i64(cg, pt->numel), "init");
        LLVMValueRef v;
        bool is_var = strstr(pt->name, "running_var") != NULL;
        bool is_bn_weight = m->layers[pt->layer].kind == LY_BATCHNORM && m->layers[pt->layer].weight == t;
        if (pt->kind != AEC_TENSOR_WEIGHT || is_bn_weight) {
            v = LLVMConstReal(cg->f64, is_var || is_bn_weight ? 1.0 : 0.0);
        } else if (m->init == INIT_XAVIER) { /* U(-a, a), a = √(6 / (fan_in + fan_out)) */
            double a = sqrt(6.0 / (pt->fan_in + pt->fan_out));
            LLVMValueRef u = cg_uniform(cg, seed, stream, l.index);
            v = LLVMBuildFMul(cg->b, LLVMBuildFSub(cg->b, LLVMBuildFMul(cg->b, u, LLVMConstReal(cg->f64, 2), ""),
                                                   LLVMConstReal(cg->f64, 1), ""), LLVMConstReal(cg->f64, a), "");
        } else { /* N(0, σ) by Box–Muller from two draws */
            double sd = m->init == INIT_HE ? sqrt(2.0 / pt->fan_in) : m->init_std;
            LLVMValueRef i2 = LLVMBuildShl(cg->b, l.index, cg_i64(cg, 1), "");
            LLVMValueRef u1 = cg_uniform(cg, seed, stream, i2);
            LLVMValueRef u2 = cg_uniform(cg, seed, stream, LLVMBuildOr(cg->b, i2, cg_i64(cg, 1), ""));
            LLVMTypeRef dty = cg->f64;
            LLVMTypeRef fty = LLVMFunctionType(dty, &dty, 1, 0);
            LLVMValueRef lg = LLVMGetNamedFunction(cg->mod, "llvm.log.f64");
            if (!lg) lg = LLVMAddFunction(cg->mod, "llvm.log.f64", fty);
            LLVMValueRef cs = LLVMGetNamedFunction(cg->mod, "llvm.cos.f64");
            if (!cs) cs = LLVMAddFunction(cg->mod, "llvm.cos.f64", fty);
            LLVMValueRef sq = LLVMGetNamedFunction(cg->mod, "llvm.sqrt.f64");
            if (!sq) sq = LLVMAddFunction(cg->mod, "llvm.sqrt.f64", fty);
            LLVMValueRef one_minus = LLVMBuildFSub(cg->b, LLVMConstReal(dty, 1), u1, "");
            LLVMValueRef r = LLVMBuildFMul(cg->b, LLVMConstReal(dty, -2), LLVMBuildCall2(cg->b, fty, lg, &one_minus, 1, ""), "");
            r = LLVMBuildCall2(cg->b, fty, sq, &r, 1, "");
            LLVMValueRef ang = LLVMBuildFMul(cg->b, u2, LLVMConstReal(dty, 2 * M_PI), "");
            v = LLVMBuildFMul(cg->b, LLVMBuildFMul(cg->b, r, LLVMBuildCall2(cg->b, fty, cs, &ang, 1, ""), ""),
                              LLVMConstReal(dty, sd), "");
        }
        if (!cg->opt.f64) v = LLVMBuildFPTrunc(cg->b, v, cg->T, "");
        cg_store(cg, v, base, l.index);
        cg_loop_end(cg, &l);
    }
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
}

/* ------------------------------------------------------- embedded weights */

/* `count` values of the element type as a constant, AEC_ALIGN-aligned
 * global, in the target's byte order (data is in the host's, which the
 * runtime requires be little-endian); exported or private to the object. */
static LLVMValueRef embed_global(Codegen *cg, const char *name, const void *data, size_t count,
                                 bool exported) {
    size_t el = cg->opt.f64 ? 8 : 4, bytes = count * el;
    const char *src = data;
    char *swapped = NULL;
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    if (LLVMByteOrder(td) == LLVMBigEndian) {
        swapped = malloc(bytes);
        if (!swapped) internal_error("out of memory embedding %zu bytes", bytes);
        for (size_t i = 0; i < bytes; i++) swapped[i] = src[i / el * el + (el - 1 - i % el)];
        src = swapped;
    }
    LLVMDisposeTargetData(td);
    ensure(bytes < (1ull << 32)); /* LLVMConstStringInContext takes an unsigned length */
    LLVMValueRef init = LLVMConstStringInContext(cg->ctx, src, (unsigned)bytes, 1);
    free(swapped);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetAlignment(g, AEC_ALIGN);
    if (!exported) LLVMSetLinkage(g, LLVMPrivateLinkage);
    return g;
}

/* `const T NAME_embedded_params[param_count]`: the trained parameters as
 * read-only data, AEC_ALIGN-aligned, in the target's byte order; and entry
 * points that use it, without a params argument:
 *   NAME_encode_embedded(x, code, batch, ws)
 *   NAME_decode_embedded(code, x_hat, batch, ws)
 *   NAME_eval_embedded(x, mask, batch, loss, x_hat, ws)
 * Each is its params-taking twin's call with the constant block, so the two
 * give the same results bit for bit. */
static void emit_embedded(Codegen *cg) {
    LLVMValueRef g = cg->embedded;
    char name[256];
    static const char *const twins[] = {"encode", "decode", "eval"};
    for (int t = 0; t < countof(twins); t++) {
        snprintf(name, sizeof name, "%s_%s", cg->prefix, twins[t]);
        LLVMValueRef twin = LLVMGetNamedFunction(cg->mod, name);
        LLVMTypeRef tty = LLVMGlobalGetValueType(twin), types[8];
        unsigned n = LLVMCountParamTypes(tty);
        ensure(n <= countof(types));
        LLVMGetParamTypes(tty, types);
        snprintf(name, sizeof name, "%s_%s_embedded", cg->prefix, twins[t]);
        LLVMValueRef fn = cg_function(cg, name, cg->i32, types + 1, (int)n - 1, false);
        LLVMValueRef args[8] = {LLVMConstBitCast(g, cg->T_ptr)};
        for (unsigned a = 1; a < n; a++) args[a] = LLVMGetParam(fn, a - 1);
        LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, tty, twin, args, n, ""));
    }
}

/* ------------------------------------------------------- the model table */

static LLVMValueRef const_str(Codegen *cg, const char *s, const char *name) {
    LLVMValueRef init = LLVMConstStringInContext(cg->ctx, s, (unsigned)strlen(s), 0);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddr(g, 1);
    return LLVMConstBitCast(g, cg->i8_ptr);
}

static LLVMValueRef const_i32_array(Codegen *cg, const int *v, int n) {
    LLVMValueRef e[4];
    for (int i = 0; i < 4; i++) e[i] = cg_i32(cg, i < n ? v[i] : 0);
    return LLVMConstArray(cg->i32, e, 4);
}

static LLVMValueRef fn_ptr(Codegen *cg, const char *suffix) {
    char name[256];
    snprintf(name, sizeof name, "%s_%s", cg->prefix, suffix);
    return LLVMConstBitCast(LLVMGetNamedFunction(cg->mod, name), cg->i8_ptr);
}

/* The names of the values written to `loss`: a constant array of strings. */
static LLVMValueRef metric_names(Codegen *cg) {
    const char *names[LOWER_MAX_METRICS];
    int n = lower_metrics(cg->model, names);
    LLVMValueRef v[LOWER_MAX_METRICS];
    for (int i = 0; i < n; i++) v[i] = const_str(cg, names[i], "metric_name");
    LLVMValueRef arr = LLVMConstArray(cg->i8_ptr, v, (unsigned)n);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), "metric_names");
    LLVMSetInitializer(g, arr);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return LLVMConstBitCast(g, cg->i8_ptr);
}

/* `const aec_model NAME_model`, laid out exactly as runtime/aec.h. */
static void emit_model_table(Codegen *cg, const char *summary) {
    const Model *m = cg->model;
    LLVMContextRef c = cg->ctx;
    LLVMTypeRef i8p = cg->i8_ptr, i32 = cg->i32, i64 = cg->i64, f64 = cg->f64;
    LLVMTypeRef arr4 = LLVMArrayType(i32, 4);

    LLVMTypeRef tensor_fields[] = {i8p, i32, arr4, i32, i32, i64, i64};
    LLVMTypeRef tensor_t = LLVMStructTypeInContext(c, tensor_fields, countof(tensor_fields), 0);
    LLVMValueRef *tensors = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(m->ntensors + 1));
    for (int t = 0; t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        LLVMValueRef f[] = {const_str(cg, pt->name, "tensor_name"), cg_i32(cg, pt->ndim),
                            const_i32_array(cg, pt->shape, pt->ndim), cg_i32(cg, pt->kind), cg_i32(cg, 0),
                            cg_i64(cg, pt->offset), cg_i64(cg, pt->numel)};
        tensors[t] = LLVMConstNamedStruct(tensor_t, f, countof(f));
    }
    LLVMValueRef tarr = LLVMConstArray(tensor_t, tensors, (unsigned)m->ntensors);
    LLVMValueRef tglob = LLVMAddGlobal(cg->mod, LLVMTypeOf(tarr), "tensors");
    LLVMSetInitializer(tglob, tarr);
    LLVMSetGlobalConstant(tglob, 1);
    LLVMSetLinkage(tglob, LLVMPrivateLinkage);

    const aec_train_config *tc = &m->train;
    LLVMTypeRef train_fields[] = {i32, i32, f64, f64, f64, f64, f64, f64, i32, i32, i64, f64, i32, i32, f64};
    LLVMTypeRef train_t = LLVMStructTypeInContext(c, train_fields, countof(train_fields), 0);
    LLVMValueRef train_v[] = {cg_i32(cg, tc->optimizer), cg_i32(cg, tc->loss), LLVMConstReal(f64, tc->lr),
                              LLVMConstReal(f64, tc->momentum), LLVMConstReal(f64, tc->beta1),
                              LLVMConstReal(f64, tc->beta2), LLVMConstReal(f64, tc->eps),
                              LLVMConstReal(f64, tc->decay), cg_i32(cg, tc->batch), cg_i32(cg, tc->epochs),
                              LLVMConstInt(i64, tc->seed, 0), LLVMConstReal(f64, tc->validation),
                              cg_i32(cg, tc->early_stop), cg_i32(cg, tc->pretrain_epochs),
                              LLVMConstReal(f64, tc->min_delta)};

    LLVMTypeRef model_fields[] = {i32, i32, i8p, i32, arr4, i32, i64, i64, i64, i64, i64, i32, i32, i8p,
                                  train_t, i8p, i8p, i8p, i8p, i8p, i8p, i8p, i8p, i8p,
                                  i32, i32, i8p, i32, i32, i8p, i8p, i32, i32};
    LLVMTypeRef model_t = LLVMStructTypeInContext(c, model_fields, countof(model_fields), 0);
    LLVMValueRef model_v[] = {
        cg_i32(cg, AEC_ABI_VERSION), cg_i32(cg, cg->opt.f64 ? AEC_F64 : AEC_F32),
        const_str(cg, m->name, "model_name"), cg_i32(cg, m->input.ndim),
        const_i32_array(cg, m->input.dim, m->input.ndim), cg_i32(cg, AEC_MAX_BATCH),
        cg_i64(cg, shape_numel(m->input)), cg_i64(cg, shape_numel(m->code)), cg_i64(cg, m->param_count),
        cg_i64(cg, m->trainable_count), cg_i64(cg, (long)lower_opt_slots(m) * m->trainable_count),
        cg_i32(cg, m->ntensors), cg_i32(cg, 0), LLVMConstBitCast(tglob, i8p),
        LLVMConstNamedStruct(train_t, train_v, countof(train_v)), const_str(cg, summary, "summary"),
        fn_ptr(cg, "workspace_size"), fn_ptr(cg, "init"), fn_ptr(cg, "encode"), fn_ptr(cg, "decode"),
        fn_ptr(cg, "train_step"), fn_ptr(cg, "loss_grad"), fn_ptr(cg, "eval"),
        cg->embedded ? LLVMConstBitCast(cg->embedded, i8p) : LLVMConstNull(i8p),
        cg_i32(cg, lower_metrics(m, NULL)), cg_i32(cg, lower_stage_count(m)), metric_names(cg),
        cg_i32(cg, m->latent_gaussian), cg_i32(cg, 0), fn_ptr(cg, "stage_step"), fn_ptr(cg, "metrics"),
        cg_i32(cg, m->masked), cg_i32(cg, 0)};
    char name[256];
    snprintf(name, sizeof name, "%s_model", cg->prefix);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, model_t, name);
    LLVMSetInitializer(g, LLVMConstNamedStruct(model_t, model_v, countof(model_v)));
    LLVMSetGlobalConstant(g, 1);
}

/* -------------------------------------------------------------- debug info */

/* -g: a compile unit whose file is the spec (absolute, so gdb finds it from
 * anywhere); functions get subprograms in cg_function, and instructions the
 * line of the IR node they compute (IrNode.loc, from Layer.loc). */
static void debug_begin(Codegen *cg) {
    const char *path = cg->model->loc.file ? cg->model->loc.file : cg->model->name;
    char *full = realpath(path, NULL);
    const char *p = full ? full : path, *slash = strrchr(p, '/');
    const char *file = slash ? slash + 1 : p;
    const char *dir = !slash ? "." : slash == p ? "/" : p;
    size_t dirlen = !slash ? 1 : slash == p ? 1 : (size_t)(slash - p);
    cg->dib = LLVMCreateDIBuilder(cg->mod);
    cg->di_file = LLVMDIBuilderCreateFile(cg->dib, file, strlen(file), dir, dirlen);
    free(full);
    LLVMDIBuilderCreateCompileUnit(cg->dib, LLVMDWARFSourceLanguageC99, cg->di_file, "aec", 3,
                                   cg->opt.opt_level > 0, "", 0, 0, "", 0, LLVMDWARFEmissionFull, 0,
                                   0, 0, "", 0, "", 0);
    cg->di_fn_type =
        LLVMDIBuilderCreateSubroutineType(cg->dib, cg->di_file, NULL, 0, LLVMDIFlagZero);
    LLVMAddModuleFlag(cg->mod, LLVMModuleFlagBehaviorWarning, "Debug Info Version", 18,
                      LLVMValueAsMetadata(cg_i32(cg, LLVMDebugMetadataVersion())));
    LLVMAddModuleFlag(cg->mod, LLVMModuleFlagBehaviorWarning, "Dwarf Version", 13,
                      LLVMValueAsMetadata(cg_i32(cg, 4)));
}

/* ------------------------------------------------------------------ driver */

/* LLVM's fatal errors (a target that cannot compile what it was asked)
 * end aec with a message, as its own errors do, not with an abort. */
static void llvm_fatal(const char *reason) {
    fprintf(stderr, "aec: error: LLVM: %s\n", reason);
    exit(1);
}

static LLVMTargetMachineRef target_machine(const CodegenOptions *opt, char **triple_out) {
    LLVMInstallFatalErrorHandler(llvm_fatal);
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
    char *triple = opt->triple ? LLVMNormalizeTargetTriple(opt->triple) : LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        fprintf(stderr, "aec: error: unknown target '%s': %s\n", triple, err);
        LLVMDisposeMessage(err);
        return NULL;
    }
    /* The host CPU name can be "generic" on new CPUs: pass its features too.
     * A named CPU or another target gets its own features (plus --features);
     * an empty CPU is the target's baseline (RISC-V refuses "generic"). */
    bool host = !opt->cpu && !opt->triple;
    char *cpu = opt->cpu ? strdup(opt->cpu) : host ? LLVMGetHostCPUName() : strdup("");
    char *features = opt->features ? strdup(opt->features)
                     : host        ? LLVMGetHostCPUFeatures()
                                   : strdup("");
    LLVMCodeGenOptLevel level = opt->opt_level >= 3 ? LLVMCodeGenLevelAggressive
                                : opt->opt_level == 0 ? LLVMCodeGenLevelNone : LLVMCodeGenLevelDefault;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, level, LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    free(cpu);
    free(features);
    *triple_out = triple;
    return tm;
}

Codegen *cg_model(const Model *m, const CodegenOptions *opt) {
    Codegen *cg = calloc(1, sizeof *cg);
    cg->model = m;
    cg->opt = *opt;
    cg->arena = arena_new();
    cg->prefix = model_symbol_prefix(cg->arena, m);
    char *triple;
    cg->tm = target_machine(opt, &triple);
    if (!cg->tm) {
        cg_free(cg);
        return NULL;
    }
    cg->tsc = LLVMOrcCreateNewThreadSafeContext();
    cg->ctx = LLVMOrcThreadSafeContextGetContext(cg->tsc);
    cg->mod = LLVMModuleCreateWithNameInContext(m->name, cg->ctx);
    LLVMSetTarget(cg->mod, triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(cg->tm);
    LLVMSetModuleDataLayout(cg->mod, layout);
    LLVMDisposeTargetData(layout);
    LLVMDisposeMessage(triple);
    cg->b = LLVMCreateBuilderInContext(cg->ctx);
    cg->T = opt->f64 ? LLVMDoubleTypeInContext(cg->ctx) : LLVMFloatTypeInContext(cg->ctx);
    cg->T_ptr = LLVMPointerType(cg->T, 0);
    cg->i8_ptr = LLVMPointerType(LLVMInt8TypeInContext(cg->ctx), 0);
    cg->i32 = LLVMInt32TypeInContext(cg->ctx);
    cg->i64 = LLVMInt64TypeInContext(cg->ctx);
    cg->f64 = LLVMDoubleTypeInContext(cg->ctx);
    cg->void_t = LLVMVoidTypeInContext(cg->ctx);
    cg->trainable = m->trainable_count;
    cg->xhat_scratch = round16(shape_numel(m->input));
    cg->im2col = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(2 * m->nlayers + 1));
    if (opt->debug) debug_begin(cg);
    if (opt->embed) /* before the bodies: their batch-1 GEMMs test for it */
        cg->embedded = embed_global(cg, arena_printf(cg->arena, "%s_embedded_params", cg->prefix),
                                    opt->embed, (size_t)m->param_count, true);

    Bodies bo = {0};
    const GraphKind kinds[] = {GRAPH_TRAIN, GRAPH_OPTIM, GRAPH_EVAL, GRAPH_ENCODE, GRAPH_DECODE};
    LLVMValueRef *slots[] = {&bo.train, &bo.optim, &bo.eval, &bo.encode, &bo.decode};
    for (int k = 0; k < countof(kinds); k++) {
        Graph *g = lower_model(cg->arena, m, kinds[k]);
        if (kinds[k] == GRAPH_TRAIN) grad_build(g);
        const Plan *p;
        *slots[k] = graph_body(cg, g, &p);
        if (kinds[k] == GRAPH_TRAIN) bo.train_plan = p;
        if (p->ws_batch > bo.ws_batch) bo.ws_batch = p->ws_batch;
        if (p->ws_const > bo.ws_const) bo.ws_const = p->ws_const;
    }
    bo.nstages = lower_stage_count(m);
    bo.stage_train = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(bo.nstages + 1));
    bo.stage_optim = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(bo.nstages + 1));
    for (int s = 1; s <= bo.nstages; s++)
        for (int k = 0; k < 2; k++) {
            Graph *g = lower_model_stage(cg->arena, m, k ? GRAPH_OPTIM : GRAPH_TRAIN, s);
            if (!k) grad_build(g);
            const Plan *p;
            (k ? bo.stage_optim : bo.stage_train)[s - 1] = graph_body(cg, g, &p);
            if (p->ws_batch > bo.ws_batch) bo.ws_batch = p->ws_batch;
            if (p->ws_const > bo.ws_const) bo.ws_const = p->ws_const;
        }
    cg->ws_batch = bo.ws_batch;
    cg->ws_const = bo.ws_const;
    emit_entry_points(cg, &bo);
    emit_stage_step(cg, &bo);
    emit_metrics(cg);
    if (opt->embed) emit_embedded(cg);
    emit_init(cg);

    char *summary = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&summary, &len);
    check_print_table(mem, m);
    fclose(mem);
    emit_model_table(cg, summary);
    free(summary);

    if (cg->dib) { /* nothing is emitted after this */
        LLVMDIBuilderFinalize(cg->dib);
        LLVMDisposeDIBuilder(cg->dib);
        cg->dib = NULL;
    }
    char *err = NULL;
    if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &err)) {
        LLVMDumpModule(cg->mod);
        internal_error("generated module does not verify: %s", err);
    }
    LLVMDisposeMessage(err);

    if (opt->opt_level > 0) {
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
        LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
        LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
        char pipeline[32];
        snprintf(pipeline, sizeof pipeline, "default<O%d>", opt->opt_level > 3 ? 3 : opt->opt_level);
        LLVMErrorRef e = LLVMRunPasses(cg->mod, pipeline, cg->tm, po);
        if (e) {
            char *msg = LLVMGetErrorMessage(e);
            internal_error("LLVM passes failed: %s", msg);
        }
        LLVMDisposePassBuilderOptions(po);
    }
    return cg;
}

void cg_dump_llvm(FILE *out, Codegen *cg) {
    char *s = LLVMPrintModuleToString(cg->mod);
    fputs(s, out);
    LLVMDisposeMessage(s);
}

int cg_emit_file(Codegen *cg, const char *path, bool assembly) {
    char *err = NULL;
    if (LLVMTargetMachineEmitToFile(cg->tm, cg->mod, (char *)path, assembly ? LLVMAssemblyFile : LLVMObjectFile, &err)) {
        fprintf(stderr, "aec: error: cannot write %s: %s\n", path, err);
        LLVMDisposeMessage(err);
        return 1;
    }
    return 0;
}

static bool jit_failed(LLVMErrorRef e, const char *what) {
    if (!e) return false;
    char *msg = LLVMGetErrorMessage(e);
    fprintf(stderr, "aec: error: JIT %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
    return true;
}

/* Compile the module in process (ORC LLJIT) and return the address of
 * `symbol`; external symbols (cblas, libm) resolve in this process. */
void *cg_jit_lookup(Codegen *cg, const char *symbol) {
    if (!cg->jit) {
        if (!cg->mod) return NULL;
        /* The host program may not link OpenBLAS itself: load it globally
         * so the process symbol search below finds cblas_?gemm. */
        if (!dlopen("libopenblas.so.0", RTLD_NOW | RTLD_GLOBAL) &&
            !dlopen("libopenblas.so", RTLD_NOW | RTLD_GLOBAL) && !dlopen("libblas.so.3", RTLD_NOW | RTLD_GLOBAL)) {
            fprintf(stderr, "aec: error: JIT: cannot load OpenBLAS: %s\n", dlerror());
            return NULL;
        }
        LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
        char *triple;
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
            builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(target_machine(&cg->opt, &triple)));
        LLVMDisposeMessage(triple);
        if (jit_failed(LLVMOrcCreateLLJIT(&cg->jit, builder), "setup")) return NULL;
        LLVMOrcDefinitionGeneratorRef gen;
        if (jit_failed(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                           &gen, LLVMOrcLLJITGetGlobalPrefix(cg->jit), NULL, NULL), "symbols"))
            return NULL;
        LLVMOrcJITDylibRef dylib = LLVMOrcLLJITGetMainJITDylib(cg->jit);
        LLVMOrcJITDylibAddGenerator(dylib, gen);
        LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cg->mod, cg->tsc);
        cg->mod = NULL; /* owned by the JIT now */
        if (jit_failed(LLVMOrcLLJITAddLLVMIRModule(cg->jit, dylib, tsm), "add module")) return NULL;
    }
    LLVMOrcExecutorAddress addr;
    if (jit_failed(LLVMOrcLLJITLookup(cg->jit, &addr, symbol), "lookup")) return NULL;
    return (void *)(uintptr_t)addr;
}

void cg_free(Codegen *cg) {
    if (!cg) return;
    if (cg->b) LLVMDisposeBuilder(cg->b);
    if (cg->mod) LLVMDisposeModule(cg->mod);
    if (cg->jit) LLVMOrcDisposeLLJIT(cg->jit);
    if (cg->tsc) LLVMOrcDisposeThreadSafeContext(cg->tsc);
    if (cg->tm) LLVMDisposeTargetMachine(cg->tm);
    arena_free(cg->arena);
    free(cg);
}

const char *cg_prefix(const Codegen *cg) { return cg->prefix; }
