/* gemm.h — the GEMM kernel generator (compiler/gemm.c).
 *
 * Takes one matrix product C = op(A)·op(B) (+ C), row-major, with its
 * dimensions known at compile time except a multiple of the batch, and the
 * target's vector width; produces one LLVM function that computes it the
 * way GotoBLAS/BLIS do: A and B packed into contiguous micro-panels
 * (zero-padded to whole tiles), cache blocking over K, and a
 * register-blocked micro-kernel of explicit vector FMAs.
 *
 * The generated function is
 *     void name(const T *a, const T *b, T *c, i64 batch, T *pack,
 *               const aec_exec *exec, epilogue *epi, void *epi_env)
 * `pack` is scratch of gemm_pack_elems() elements, AEC_ALIGN-aligned;
 * `exec` may be NULL (then one thread). `epi`, when not NULL, is called as
 *     epi(epi_env, r0, r1, c0, c1, block)
 * once for each block of C — rows [r0, r1), columns [c0, c1) — when that
 * block is final, by the task that computed it (so while it is in cache):
 * the fused epilogue of the product (bias, activation, f'(y)·dY, the bias
 * gradient's column sums). `block` numbers the block's rows: blocks of
 * gemm_row_block() rows, 0 to ceil(m / gemm_row_block()) − 1; one call
 * (block 0) covers a one-row product. Work is split into a fixed grid of
 * tasks that depends on the shape only — never on the thread count — and
 * each element of C is summed over K by one task in one fixed order, so
 * the result is bit-identical for any number of threads.
 */
#ifndef AEC_GEMM_H
#define AEC_GEMM_H

#include <llvm-c/Core.h>
#include <stdbool.h>

/* What the generator needs to know of the target. */
typedef struct GemmTarget {
    int vector_bits; /* widest vector register: 512 (AVX-512), 256 (AVX2), 128 (SSE, NEON) */
    int registers;   /* vector registers: 32 (AVX-512, NEON) or 16 */
    /* widest-vector FMAs the core starts per cycle: 2 (Intel's AVX-512
     * server cores, and the default), 1 (Zen 4, which splits a 512-bit FMA
     * into two 256-bit halves); it orders the tiles (gemm.c) */
    int fma_pipes;
} GemmTarget;

/* The target of a triple, CPU name and feature string (NULLs: the host). */
GemmTarget gemm_target(const char *triple, const char *cpu, const char *features);

/* One product. A dimension > 0 is a constant; −r means r·batch (r rows
 * per sample), as IrNode's GEMM dimensions. A leading dimension of 0 is
 * the operand's row length as stored (lda = ta ? m : k, ldb = tb ? k : n,
 * ldc = n). */
typedef struct GemmSpec {
    long m, n, k;
    long lda, ldb, ldc;
    bool ta, tb;     /* op(X) = Xᵀ */
    bool accumulate; /* C += op(A)·op(B) (beta 1) instead of C = (beta 0) */
    bool f64;        /* double instead of float */
    int batch_hint;  /* the spec's batch, to choose the tiling */
    /* B (k × n, not transposed) may be read where it is, not packed (only
     * a partial last column panel is), where the tiling allows: the plan
     * asks it for every such B (plan_gemm_spec). op(A) is read in place
     * without asking, where its row length and the tiling allow. */
    bool b_in_place;
} GemmSpec;

/* The tiling chosen for a spec on a target (exposed for the tests, the
 * dumps and the benchmark). */
typedef struct GemmTiling {
    int vl;     /* elements per vector */
    int mr, nv; /* micro-tile: mr rows × nv vectors (nr = nv·vl columns) */
    int nr;
    long kc;       /* K block */
    int mc_panels; /* row panels (of mr) per task */
    int nc_panels; /* column panels (of nr) per task */
} GemmTiling;

GemmTiling gemm_tiling(const GemmSpec *s, GemmTarget t);

/* Rows of C per task (and per epilogue block): at least GEMM_ROW_BLOCK_MIN. */
#define GEMM_ROW_BLOCK_MIN 128
long gemm_row_block(const GemmSpec *s, GemmTarget t);

/* Pack scratch, elements: per_batch·batch + fixed. */
void gemm_pack_elems(const GemmSpec *s, GemmTarget t, long *per_batch, long *fixed);

/* Pack scratch for any target and element type: what the plan reserves
 * (the plan is made before a target is chosen). */
void gemm_pack_bound(const GemmSpec *s, long *per_batch, long *fixed);

/* Emits the function into mod (internal linkage). exec_ty is the LLVM type
 * of the aec_exec struct the function's last argument points to. */
LLVMValueRef gemm_emit(LLVMModuleRef mod, const GemmSpec *s, GemmTarget t, const char *name);

/* At b: exec->parallel_for(exec->pool, ntasks, task, arg) when exec and
 * its parallel_for are set and ntasks > 1, else task(arg, t) for t in
 * order. task is a void(i8*, i64); the other kernels' tasks use it too. */
void gemm_parallel_for(LLVMModuleRef mod, LLVMBuilderRef b, LLVMValueRef exec, LLVMValueRef ntasks,
                       LLVMValueRef task, LLVMValueRef arg);

/* void f(const T *a, const T *rows, T *c, i64 n, i64 k, i64 tasks, const aec_exec *exec)
 * (tasks: gemm_sparse_tasks(t, f64, n)):
 * c[0..n) = Σ_i a_i · W[i][0..n) over the k rows of a k × n matrix W,
 * skipping a_i = 0, the columns in tasks through exec (NULL: one thread),
 * the same bits at any thread count. rows holds W task by task (see
 * gemm_sparse_tasks): task t's columns [j0, j1) as a row-major k × (j1 − j0)
 * block at element k·j0, so that a thread's share is one stream and none of
 * its lines holds another task's columns. half_rows: rows holds f16 values
 * (--embed-half), widened to T as they are read; the sums stay in T.
 * Once per module, target, type and kind of rows. */
LLVMValueRef gemm_sparse_rows(LLVMModuleRef mod, GemmTarget t, bool f64, bool half_rows);

/* The column tasks of gemm_sparse_rows over n columns: how many, and task
 * t's columns [*j0, *j1). They depend on n and the target only. */
long gemm_sparse_tasks(GemmTarget t, bool f64, long n);
void gemm_sparse_task_cols(GemmTarget t, bool f64, long n, long task, long *j0, long *j1);

/* The LLVM function type gemm_emit produces, for callers. */
LLVMTypeRef gemm_function_type(LLVMContextRef ctx, bool f64);
/* An epilogue's: void(i8 *env, i64 r0, i64 r1, i64 c0, i64 c1, i64 block). */
LLVMTypeRef gemm_epilogue_type(LLVMContextRef ctx);

#endif
