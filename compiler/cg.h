/* cg.h — what the code generator's files share (not the compiler's API:
 * that is the codegen section of aec.h).
 *
 * codegen emits a Program (pipeline.c) as one LLVM module; its files, in
 * the order a module is built:
 *   cg.c       builder verbs over the LLVM C API: constants, arithmetic,
 *              loads/stores, loops, if/else, functions, the BLAS calls,
 *              planned addresses, constant data
 *   cg_math.c  inline math (exp, tanh, expm1, activations and their
 *              derivatives) and the counter-based RNG (Box–Muller once)
 *   kernels.c  a graph's body: its loop and GEMM kernels in order
 *   winograd_kernels.c  3x3 convolutions as Winograd's F(2x2, 3x3)
 *   nest.c     the NEST kernels: convolutions, pooling, upsampling
 *   abi.c      the public entry points, init, and the model table
 *   emit.c     target setup, the module's life, emission and the JIT
 * Each uses only the files above it, aec.h's ir/fuse/plan/util sections
 * and the Program.
 */
#ifndef AEC_CG_H
#define AEC_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/DebugInfo.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/TargetMachine.h>

#include "aec.h"

struct Codegen {
    const Program *prog; /* while the module is built (cg_program) */
    const Model *model;
    CodegenOptions opt;
    Arena *arena;
    const char *prefix;              /* C symbol prefix: the model's name */
    LLVMOrcThreadSafeContextRef tsc; /* owns ctx, so the module can be JIT-compiled */
    LLVMContextRef ctx;
    LLVMModuleRef mod; /* NULL once handed to the JIT */
    bool optimized;    /* mod has been through the passes (target.c) */
    LLVMOrcLLJITRef jit;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    LLVMTypeRef T, T_ptr, i8_ptr, i32, i64, f64, void_t;
    LLVMValueRef fn;         /* the function being built */
    long trainable;          /* elements of the trainable block */
    long xhat_scratch;       /* eval's reconstruction when the caller passes none */
    long ws_batch, ws_const; /* the largest plan, elements (a masked model's ones follow it) */
    long ws_slot;            /* then the convolutions' later slots (Plan.ws_slot) */
    /* -g: DWARF for the spec; every function gets a subprogram, and the
     * builder's location follows the IR node being emitted. NULL without -g. */
    LLVMDIBuilderRef dib;
    LLVMMetadataRef di_file, di_fn_type, di_scope; /* di_scope: the current function's */
    int fn_line;            /* the current function's line: the default location */
    LLVMValueRef embedded;  /* --embed-weights: NAME_embedded_params, else NULL */
    LLVMValueRef *rows;     /* per tensor and orientation (2t + tb): an embedded weight's
                               transpose or f16 copy (kernels.c), made on first use */
    LLVMValueRef *im2col;   /* per layer, [2·layer + add]: its im2col/col2im function */
    GemmTarget gemm_target; /* what the generated GEMM kernels are tiled for */
    struct GemmFn {         /* the generated products so far: one function per shape */
        GemmSpec spec;
        LLVMValueRef fn;
    } * gemms;
    int ngemms, gemm_cap;
};

/* ------------------------------------------------------------------ cg.c */

static inline LLVMValueRef cg_i64(Codegen *cg, long v) {
    return LLVMConstInt(cg->i64, (unsigned long long)v, 1);
}
static inline LLVMValueRef cg_i32(Codegen *cg, long v) {
    return LLVMConstInt(cg->i32, (unsigned long long)v, 1);
}
static inline LLVMValueRef cg_real(Codegen *cg, double v) {
    return LLVMConstReal(cg->T, v);
}
static inline LLVMValueRef cg_add(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFAdd(cg->b, a, b, "");
}
static inline LLVMValueRef cg_sub(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFSub(cg->b, a, b, "");
}
static inline LLVMValueRef cg_mul(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFMul(cg->b, a, b, "");
}
static inline LLVMValueRef cg_div(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFDiv(cg->b, a, b, "");
}
static inline LLVMValueRef cg_select(Codegen *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(cg->b, c, a, b, "");
}
static inline LLVMValueRef cg_gt0(Codegen *cg, LLVMValueRef x) {
    return LLVMBuildFCmp(cg->b, LLVMRealOGT, x, cg_real(cg, 0), "");
}
static inline LLVMValueRef cg_max(Codegen *cg, LLVMValueRef a, LLVMValueRef b) {
    return cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, ""), a, b);
}
/* i64 index arithmetic with a constant; no instruction for + 0 or · 1. */
static inline LLVMValueRef cg_iadd(Codegen *cg, LLVMValueRef a, long b) {
    return b ? LLVMBuildAdd(cg->b, a, cg_i64(cg, b), "") : a;
}
static inline LLVMValueRef cg_imul(Codegen *cg, LLVMValueRef a, long b) {
    return b == 1 ? a : LLVMBuildMul(cg->b, a, cg_i64(cg, b), "");
}

/* Workspace regions start on 16-element boundaries. */
static inline long round16(long n) {
    return (n + 15) / 16 * 16;
}

LLVMValueRef cg_gep(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name);
LLVMValueRef cg_at(Codegen *cg, LLVMValueRef base, LLVMValueRef index); /* base + index elements */
LLVMValueRef cg_load(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name);
void cg_store(Codegen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index);
void cg_zero(Codegen *cg, LLVMValueRef p, LLVMValueRef count); /* count elements at p */
/* Vectors of vl elements: at p, the lanes below `valid` (the others 0, not
 * read; masked where valid < vl: AVX-512's and AVX2's masked moves, NEON's
 * scalar code), and stored so (nothing written beyond); lanes first,
 * first + step, ... of a and then b as one vector of n; a and b's lanes
 * alternated (a0, b0, a1, b1, ...; 2·vl); the lanes for rows of n: the
 * next power of two, at least 2, at most the target's vector. */
LLVMValueRef cg_vload(Codegen *cg, LLVMValueRef p, int vl, int valid);
void cg_vstore(Codegen *cg, LLVMValueRef v, LLVMValueRef p, int vl, int valid);
LLVMValueRef cg_lanes_strided(Codegen *cg, LLVMValueRef a, LLVMValueRef b, int first, int step,
                              int n);
LLVMValueRef cg_interleave(Codegen *cg, LLVMValueRef a, LLVMValueRef b, int vl);
int cg_vector_lanes(Codegen *cg, long n);
/* The workspace after the plan's region `plan` (abi.c has the whole
 * layout): a masked model's ones, ws_ones per sample; then the
 * convolutions' second and later slots of their tasks of samples
 * (Plan.ws_slot each), which ws_later_slots finds. */
long ws_ones(Codegen *cg);
LLVMValueRef ws_later_slots(Codegen *cg, LLVMValueRef plan, LLVMValueRef batch64);
/* A convolution's tasks of samples (nest.c, winograd_kernels.c): how many,
 * min(batch, CONV_SLOTS); task t's samples [lo, hi) =
 * [t·batch/tasks, (t+1)·batch/tasks); and its slot of `size` elements —
 * the node's scratch `first` for task 0, else ws_later_slots' `later`. */
LLVMValueRef conv_task_count(Codegen *cg, LLVMValueRef batch64);
void conv_task_samples(Codegen *cg, LLVMValueRef task, LLVMValueRef batch64, LLVMValueRef tasks,
                       LLVMValueRef *lo, LLVMValueRef *hi);
LLVMValueRef conv_task_slot(Codegen *cg, LLVMValueRef task, LLVMValueRef first, LLVMValueRef later,
                            long size);

/* Call an LLVM intrinsic or libm function on the element type. */
LLVMValueRef cg_call_math(Codegen *cg, const char *base, int nargs, LLVMValueRef *args,
                          bool intrinsic);
LLVMValueRef cg_math1(Codegen *cg, const char *name, LLVMValueRef x, bool intrinsic);
/* A function of one double, whatever the element type (noise is drawn in f64). */
LLVMValueRef cg_math_f64(Codegen *cg, const char *name, LLVMValueRef x);

LLVMBasicBlockRef cg_block(Codegen *cg, const char *name);
/* A counted loop `for (i = 0; i < end; i++)`: cg_loop_begin leaves the
 * builder in the body; cg_loop_end closes it and continues after. */
typedef struct Loop {
    LLVMValueRef index, end;
    LLVMBasicBlockRef head, body;
} Loop;
Loop cg_loop_begin(Codegen *cg, LLVMValueRef end, const char *name);
void cg_loop_end(Codegen *cg, Loop *l);
/* A stack slot of the element type in the entry block (mem2reg makes it a register). */
LLVMValueRef cg_alloca_entry(Codegen *cg, const char *name);
/* A stack slot of `type` in the entry block. */
LLVMValueRef cg_alloca_entry_of(Codegen *cg, LLVMTypeRef type, const char *name);
/* The same of v's type, initialized to v here. */
LLVMValueRef cg_var(Codegen *cg, const char *name, LLVMValueRef v);
/* if (cond) { ... } [else { ... }]: cg_if leaves the builder in the
 * then-branch (block `name`), cg_else in the else-branch, cg_end_if after
 * both. A branch may end in a return. */
typedef struct If {
    LLVMBasicBlockRef then, rest, join; /* rest: the else-branch, or what follows */
} If;
If cg_if(Codegen *cg, LLVMValueRef cond, const char *name);
void cg_else(Codegen *cg, If *c);
void cg_end_if(Codegen *cg, If *c);
/* Return `code` from the function when `cond` holds. */
void cg_return_if(Codegen *cg, LLVMValueRef cond, int code);

/* With -g, what follows is attributed to spec line `loc`. */
void cg_debug_loc(Codegen *cg, Loc loc);
/* A new function, the builder at its entry block (with -g, a subprogram). */
/* A task function (void, internal, noinline) built aside from the one being
 * built: cg_aside_begin makes it and leaves the builder in it; cg_aside_end
 * returns to the function and place it left, at debug location loc. */
typedef struct CgAside {
    LLVMValueRef caller;
    LLVMBasicBlockRef at;
    LLVMMetadataRef scope;
} CgAside;
LLVMValueRef cg_aside_begin(Codegen *cg, const char *name, LLVMTypeRef *params, int n,
                            CgAside *saved);
void cg_aside_end(Codegen *cg, const CgAside *saved, Loc loc);
LLVMValueRef cg_function(Codegen *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n,
                         bool internal);

/* The BLAS calls of the element type, row-major: C = alpha·op(A)·op(B) +
 * beta·C (dimensions and leading dimensions i32), and y = op(A)·x. */
void cg_gemm_call(Codegen *cg, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
                  LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
                  LLVMValueRef beta, LLVMValueRef c, LLVMValueRef ldc);
void cg_gemv_call(Codegen *cg, bool ta, LLVMValueRef m, LLVMValueRef n, LLVMValueRef a,
                  LLVMValueRef lda, LLVMValueRef x, LLVMValueRef y);

/* ------------------------------------------------------------- cg_math.c */

LLVMValueRef cg_exp(Codegen *cg, LLVMValueRef x);
LLVMValueRef cg_tanh(Codegen *cg, LLVMValueRef x);
LLVMValueRef cg_expm1(Codegen *cg, LLVMValueRef x);
LLVMValueRef cg_sigmoid(Codegen *cg, LLVMValueRef x);
LLVMValueRef cg_activation(Codegen *cg, ActKind act, double alpha, LLVMValueRef x);
/* f'(x), given x and y = f(x). */
LLVMValueRef cg_activation_grad(Codegen *cg, ActKind act, double alpha, LLVMValueRef x,
                                LLVMValueRef y);
/* f''(x) from x and y; from y alone (from_y), d f'/dy. */
LLVMValueRef cg_activation_grad2(Codegen *cg, ActKind act, double alpha, LLVMValueRef x,
                                 LLVMValueRef y, bool from_y);
/* aec_rng_u64(seed, stream, counter) of runtime/rng.c as a double in [0, 1). */
LLVMValueRef cg_uniform(Codegen *cg, LLVMValueRef seed, LLVMValueRef stream, LLVMValueRef counter);
/* N(0, 1) from two uniform doubles: √(−2 ln(1−u1))·cos(2π u2). */
LLVMValueRef cg_box_muller(Codegen *cg, LLVMValueRef u1, LLVMValueRef u2);
/* Element `index` of RAND node n at this step, in the element type. */
LLVMValueRef cg_rand(Codegen *cg, const IrNode *n, LLVMValueRef step, LLVMValueRef index);

/* ------------------------------------------------------------- kernels.c */

/* The argument list every graph body takes; unused ones are NULL. */
enum {
    ARG_PARAMS,
    ARG_OPT,
    ARG_X,
    ARG_GRADS,
    ARG_WS,
    ARG_CODE,
    ARG_XHAT,
    ARG_LOSS,
    ARG_BATCH,
    ARG_STEP,
    ARG_MASK,
    ARG_EXEC, /* the caller's aec_exec (i8*), or NULL */
    ARG_ROW0, /* i64: the batch's first row in the global batch (exec->row_offset) */
    N_ARGS
};

typedef struct Body {
    Codegen *cg;
    const Graph *g;
    const Fusion *f;
    const Plan *p;
    LLVMValueRef base[BASE_MASK + 1];
    LLVMValueRef batch, batch_t, step_t; /* i64, and as element type */
    LLVMValueRef step, index;            /* i64: the step; in a loop, the element's index (RAND),
                                            counted from the global batch's first row */
    LLVMValueRef row0;                   /* i64: ARG_ROW0 */
    LLVMValueRef exec;                   /* i8*: ARG_EXEC, for kernels that run tasks */
    LLVMValueRef env; /* the body's arguments in a struct (env_ty), for its tasks; or NULL */
    LLVMTypeRef env_ty;
    LLVMValueRef *val;    /* per node: its value in the current loop iteration */
    LLVMValueRef *scalar; /* per node: inline scalar value in the current kernel */
    LLVMValueRef *ptr,
        *acc; /* per node: a loop kernel's buffers and its reductions' accumulators */
    int kernel;
} Body;

/* The generated function computing product s (compiler/gemm.c): one per
 * distinct product in the module. */
LLVMValueRef generated_gemm(Codegen *cg, const GemmSpec *s);
/* cg.c: the address of a planned buffer; `count` values of `el` bytes
 * each (the element type's, or 2 for f16) as a constant, AEC_ALIGN-aligned
 * global (in the target's byte order), exported or private. */
LLVMValueRef buf_ptr(Body *B, BufLoc l);
LLVMValueRef embed_global(Codegen *cg, const char *name, const void *data, size_t count, size_t el,
                          bool exported);

/* The internal function computing one entry point's graph. */
LLVMValueRef graph_body(Codegen *cg, const Entry *e);

/* ---------------------------------------------------------------- nest.c */

/* A NEST op (conv, pooling, upsampling and their adjoints): its loop nest. */
void nest_kernel(Body *B, int i);

/* --------------------------------------------------- winograd_kernels.c */

/* A CONV, CONV_T or CONV_W node whose layer conv_winograd takes, as F(2x2, 3x3). */
void winograd_kernel(Body *B, int i);

/* ----------------------------------------------------------------- abi.c */

/* The internal function of every entry point of the Program, in order. */
typedef struct Bodies {
    LLVMValueRef *fn; /* per Program entry */
} Bodies;
void emit_abi(Codegen *cg, const Bodies *bo);

/* -------------------------------------------------------------- target.c */

/* The target machine for --target/--cpu/--features/-O (the host's CPU and
 * features by default) and its normalized triple (LLVMDisposeMessage it);
 * NULL after reporting an unknown target. */
LLVMTargetMachineRef cg_target_machine(const CodegenOptions *opt, char **triple);
/* A module through the optimization pipeline of -O`opt_level` (none at 0),
 * first merging identical functions when `merge`; or only that merge. */
void cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level, bool merge);
void cg_merge_functions(LLVMModuleRef mod, LLVMTargetMachineRef tm);

/* --------------------------------------------------------------- units.c */

/* Write the (unoptimized) module as one object file compiled in parts on
 * threads: 0 when written, 1 after reporting an error, -1 when it does
 * not apply (a small module, another architecture than the host's, no
 * linker), and the caller compiles it whole. cg->mod is left unchanged. */
int cg_emit_units(Codegen *cg, const char *path);

#endif
