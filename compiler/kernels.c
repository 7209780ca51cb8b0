/* kernels.c — one entry point's graph as an LLVM function.
 *
 * Takes an Entry of the Program (its graph, fusion and plan); produces the
 * internal function that runs its kernels in order: a GEMM kernel as a call
 * of its generated function (gemm.c; `--gemm blas`: a cblas call, at batch 1
 * a gemv; with embedded weights at batch 1, sparse_rows), a loop kernel as
 * one counted loop nest computing all its nodes (elementwise ops inline,
 * reductions accumulated and folded) — or, when the plan splits it, as tasks
 * on the caller's parallel-for over its rows or columns — a NEST kernel
 * through nest.c; then the scalar outputs and the loss's terms.
 */
#include <stdlib.h>
#include <string.h>

#include "cg.h"

static LLVMValueRef elementwise(Body *B, const IrNode *n, LLVMValueRef a, LLVMValueRef b);

/* A loop-invariant scalar: a leaf, a stored reduction, or an inline scalar
 * expression, emitted once per kernel before its loops. */
static LLVMValueRef scalar_value(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    if (B->scalar[i]) return B->scalar[i];
    LLVMValueRef v;
    if (n->op == IR_CONST)
        v = cg_real(cg, n->value);
    else if (n->op == IR_BATCH)
        v = B->batch_t;
    else if (n->op == IR_STEP)
        v = B->step_t;
    else if (B->f->info[i].inline_scalar) {
        LLVMValueRef a = scalar_value(B, n->in[0]);
        LLVMValueRef bb = ir_op_nin[n->op] > 1 ? scalar_value(B, n->in[1]) : NULL;
        v = elementwise(B, n, a, bb);
    } else
        v = LLVMBuildLoad2(cg->b, cg->T, buf_ptr(B, B->p->loc[i]), "");
    B->scalar[i] = v;
    return v;
}

/* Undo scalar_value(B, i) and what it computed through: NULL again. */
static void scalar_forget(Body *B, int i) {
    if (!B->scalar[i]) return;
    B->scalar[i] = NULL;
    const IrNode *n = &B->g->nodes[i];
    if (B->f->info[i].inline_scalar)
        for (int j = 0; j < ir_op_nin[n->op]; j++)
            scalar_forget(B, n->in[j]);
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
        return cg_select(
            cg, cg_gt0(cg, a), one,
            cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, a, zero, ""), cg_real(cg, -1), zero));
    case IR_SQRT: return cg_math1(cg, "sqrt", a, true);
    case IR_LOG: return cg_math1(cg, "log", a, true);
    case IR_EXP: return cg_exp(cg, a);
    case IR_EXPAND: return a;
    case IR_ACT: return cg_activation(cg, n->act, n->alpha, a);
    case IR_ACT_GRAD: /* from (y, y): the sign tests below read y, which has x's sign */
        return cg_activation_grad(cg, n->act, n->alpha, a, b);
    case IR_BCE: { /* -(t·max(log p, -100) + (1-t)·max(log(1-p), -100)), as PyTorch */
        LLVMValueRef lo = cg_real(cg, -100);
        LLVMValueRef lp = cg_max(cg, cg_math1(cg, "log", a, true), lo);
        LLVMValueRef lq = cg_max(cg, cg_math1(cg, "log", cg_sub(cg, one, a), true), lo);
        return LLVMBuildFNeg(cg->b,
                             cg_add(cg, cg_mul(cg, b, lp), cg_mul(cg, cg_sub(cg, one, b), lq)), "");
    }
    case IR_BCE_GRAD: { /* (p - t) / max(p(1-p), 1e-12) */
        LLVMValueRef den = cg_max(cg, cg_mul(cg, a, cg_sub(cg, one, a)), cg_real(cg, 1e-12));
        return cg_div(cg, cg_sub(cg, a, b), den);
    }
    case IR_RAND: ensure(B->index); return cg_rand(cg, n, B->step, B->index);
    case IR_ACT_GRAD2: return cg_activation_grad2(cg, n->act, n->alpha, a, b, n->from_y);
    case IR_TILE: return a; /* loop_kernel loaded the repeated element */
    default: internal_error("%s is not elementwise", ir_op_names[n->op]);
    }
}

/* ------------------------------------------------------------ GEMM kernels */

/* The k x n matrix op(B) of an inference GEMM whose B is an embedded weight,
 * as constant rows in the sparse-rows kernel's layout (gemm.h: its column
 * tasks' blocks one after another): the weight itself when op(B) is it (a
 * tied decoder's W) and the layer is one task, else a copy made at compile
 * time — transposed when op(B) is Wᵀ, f16 with --embed-half (the driver
 * checked the range). NULL when B is not one whole 2-D weight. */
static LLVMValueRef embedded_rows(Body *B, const IrNode *n) {
    Codegen *cg = B->cg;
    const IrNode *w = &B->g->nodes[n->in[1]];
    if (!cg->embedded || w->op != IR_PARAM || w->tensor < 0) return NULL;
    const ParamTensor *t = &cg->model->tensors[w->tensor];
    long rows = n->tb ? t->shape[1] : t->shape[0], cols = n->tb ? t->shape[0] : t->shape[1];
    if (t->ndim != 2 || n->k != rows || n->n != cols) return NULL;
    bool half = cg->opt.embed_half;
    long tasks = gemm_sparse_tasks(cg->gemm_target, cg->opt.f64, cols);
    if (!n->tb && !half && tasks == 1)
        return cg_gep(cg, LLVMConstBitCast(cg->embedded, cg->T_ptr), cg_i64(cg, t->offset), "");
    if (!cg->rows) /* per tensor and orientation */
        cg->rows = arena_alloc(cg->arena, sizeof(LLVMValueRef) * 2 * (size_t)cg->model->ntensors);
    LLVMValueRef *copy = &cg->rows[2 * w->tensor + n->tb];
    if (!*copy) {
        size_t el = cg->opt.f64 ? 8 : 4, out_el = half ? 2 : el;
        const char *src = (const char *)cg->opt.embed + (size_t)t->offset * el;
        char *copied = malloc((size_t)t->numel * out_el);
        if (!copied) internal_error("out of memory copying %s", t->name);
        for (long task = 0, j0, j1; task < tasks; task++) {
            gemm_sparse_task_cols(cg->gemm_target, cg->opt.f64, cols, task, &j0, &j1);
            for (long r = 0; r < rows; r++)
                for (long c = j0; c < j1; c++) { /* [r][c] = W[c][r], or W[r][c] */
                    const char *from = src + (size_t)(n->tb ? c * rows + r : r * cols + c) * el;
                    char *to = copied + (size_t)(rows * j0 + r * (j1 - j0) + c - j0) * out_el;
                    if (!half) {
                        memcpy(to, from, el);
                        continue;
                    }
                    float f32;
                    double v;
                    if (cg->opt.f64)
                        memcpy(&v, from, 8);
                    else
                        memcpy(&f32, from, 4), v = f32;
                    uint16_t h = f16_from_double(v);
                    memcpy(to, &h, 2);
                }
        }
        char name[300];
        snprintf(name, sizeof name, "%s%s%s", t->name, n->tb ? ".T" : "", half ? ".f16" : "");
        *copy = LLVMConstBitCast(embed_global(cg, name, copied, (size_t)t->numel, out_el, false),
                                 cg->T_ptr);
        free(copied);
    }
    return *copy;
}

/* c[0..n) = Σ_i a_i · rows[i][0..n) over the k rows, skipping a_i = 0:
 * batch 1 with embedded weights, through the generator's sparse-rows
 * kernel (gemm.h: the sums in registers, the columns in tasks, a fixed
 * order whatever the target or thread count). ReLU outputs and image
 * backgrounds are about half zeros, so about half the weights are never
 * read (a batch-1 encode is bound by reading them). NaN inputs are not
 * skipped. */
static void sparse_rows(Body *B, LLVMValueRef a, LLVMValueRef rows, LLVMValueRef c, long k,
                        long n) {
    Codegen *cg = B->cg;
    LLVMValueRef f = gemm_sparse_rows(cg->mod, cg->gemm_target, cg->opt.f64, cg->opt.embed_half);
    LLVMValueRef args[7] = {a,
                            rows,
                            c,
                            cg_i64(cg, n),
                            cg_i64(cg, k),
                            cg_i64(cg, gemm_sparse_tasks(cg->gemm_target, cg->opt.f64, n)),
                            LLVMBuildBitCast(cg->b, B->exec, cg->i8_ptr, "")};
    LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(f), f, args, 7, "");
}

/* C = op(A)·op(B) through a generated kernel (compiler/gemm.c), its panels
 * packed in the plan's scratch for this node. */
static void generated_gemm_call(Body *B, int i, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c,
                                LLVMValueRef epi, LLVMValueRef epi_env) {
    Codegen *cg = B->cg;
    GemmSpec s;
    ensure(plan_gemm_spec(B->g, i, cg->opt.f64, &s));
    LLVMValueRef fn = generated_gemm(cg, &s);
    LLVMValueRef pack = buf_ptr(B, B->p->pack[i]);
    LLVMValueRef args[8] = {a, b, c, B->batch, pack, B->exec, epi, epi_env};
    LLVMBuildCall2(cg->b, gemm_function_type(cg->ctx, cg->opt.f64), fn, args, 8, "");
}

static void loop_kernel(Body *B, const Kernel *k);
static LLVMValueRef epilogue_task(Body *B, const Kernel *k);
static void add_task_sums(Body *B, const Kernel *k, LLVMValueRef ntasks);

/* Loop kernel `epi` (the kernel after this GEMM's) as a kernel of its own. */
static void epilogue_alone(Body *B, const Kernel *epi) {
    B->kernel++;
    loop_kernel(B, epi);
    B->kernel--;
}

/* C = op(A)·op(B): the generated kernel (`--gemm aec`), or one cblas ?gemm
 * call, row-major. With BLAS, when C's rows are the
 * batch and the batch is 1 at run time, a ?gemv instead: BLAS's gemm packs
 * op(B) on every call, which makes a batch-1 encode several times slower
 * than the matrix-vector product it is. And at batch 1 with the embedded
 * weights (an inference graph whose params are NAME_embedded_params),
 * sparse_rows over constant rows instead of either. */
static bool gemm_kernel(Body *B, int i, const Kernel *epi) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    cg_debug_loc(cg, n->loc);
    if (cg->opt.gemm == GEMM_AEC && B->p->pack[i].base == BASE_WS) {
        /* the next kernel as this product's epilogue, block by block (gemm.h) */
        LLVMValueRef none = LLVMConstNull(cg->i8_ptr), epi_fn = none, epi_env = none, blocks = NULL;
        if (epi) {
            B->kernel++;
            epi_fn = LLVMBuildBitCast(cg->b, epilogue_task(B, epi), cg->i8_ptr, "");
            B->kernel--;
            epi_env = LLVMBuildBitCast(cg->b, B->env, cg->i8_ptr, "");
            GemmSpec s;
            ensure(plan_gemm_spec(B->g, i, cg->opt.f64, &s));
            long rows = gemm_row_block(&s, cg->gemm_target);
            blocks = LLVMBuildSDiv(cg->b, cg_iadd(cg, B->batch, rows - 1), cg_i64(cg, rows), "");
        }
        LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), b = buf_ptr(B, B->p->loc[n->in[1]]);
        LLVMValueRef c = buf_ptr(B, B->p->loc[i]);
        LLVMValueRef rows =
            B->g->kind == GRAPH_TRAIN || B->g->kind == GRAPH_OPTIM || n->m != IR_BATCH_DIM
                ? NULL
                : embedded_rows(B, n);
        If sparse = {0};
        if (rows) { /* batch 1 with the embedded weights: as below */
            LLVMValueRef one_row = LLVMBuildICmp(cg->b, LLVMIntEQ, B->batch, cg_i64(cg, 1), "");
            LLVMValueRef mine = LLVMBuildICmp(cg->b, LLVMIntEQ, B->base[BASE_PARAMS],
                                              LLVMConstBitCast(cg->embedded, cg->T_ptr), "");
            sparse = cg_if(cg, LLVMBuildAnd(cg->b, one_row, mine, ""), "sparse");
            sparse_rows(B, a, rows, c, n->k, n->n);
            if (epi) epilogue_alone(B, epi);
            cg_else(cg, &sparse);
        }
        generated_gemm_call(B, i, a, b, c, epi_fn, epi_env);
        if (epi) {
            B->kernel++;
            add_task_sums(B, epi, blocks);
            B->kernel--;
        }
        if (rows) cg_end_if(cg, &sparse);
        return epi != NULL;
    }
    LLVMValueRef dim[3];
    const long d[3] = {n->m, n->n, n->k};
    for (int j = 0; j < 3; j++)
        if (d[j] >= 0)
            dim[j] = cg_i32(cg, d[j]);
        else /* -r: r rows per sample */
            dim[j] = LLVMBuildTrunc(cg->b, LLVMBuildMul(cg->b, B->batch, cg_i64(cg, -d[j]), ""),
                                    cg->i32, "");
    /* Leading dimensions: the row length of each operand as stored. */
    LLVMValueRef lda = n->ta ? dim[0] : dim[2], ldb = n->tb ? dim[2] : dim[1], ldc = dim[1];
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), b = buf_ptr(B, B->p->loc[n->in[1]]);
    LLVMValueRef c = buf_ptr(B, B->p->loc[i]);
    if (n->m != IR_BATCH_DIM) {
        cg_gemm_call(cg, n->ta, n->tb, dim[0], dim[1], dim[2], a, lda, b, ldb, cg_real(cg, 0), c,
                     ldc);
        return false;
    }
    /* With one row, op(A) is a contiguous vector (stored 1 x k, or k x 1)
     * and C's row is op(B)ᵀ·a: B as stored, transposed unless tb. */
    LLVMValueRef one_row = LLVMBuildICmp(cg->b, LLVMIntEQ, B->batch, cg_i64(cg, 1), "");
    LLVMValueRef rows =
        B->g->kind == GRAPH_TRAIN || B->g->kind == GRAPH_OPTIM ? NULL : embedded_rows(B, n);
    If sparse = {0};
    if (rows) {
        LLVMValueRef mine = LLVMBuildICmp(cg->b, LLVMIntEQ, B->base[BASE_PARAMS],
                                          LLVMConstBitCast(cg->embedded, cg->T_ptr), "");
        sparse = cg_if(cg, LLVMBuildAnd(cg->b, one_row, mine, ""), "sparse");
        sparse_rows(B, a, rows, c, n->k, n->n);
        cg_else(cg, &sparse);
    }
    If gemv = cg_if(cg, one_row, "gemv");
    cg_gemv_call(cg, !n->tb, n->tb ? dim[1] : dim[2], n->tb ? dim[2] : dim[1], b, ldb, a, c);
    cg_else(cg, &gemv);
    cg_gemm_call(cg, n->ta, n->tb, dim[0], dim[1], dim[2], a, lda, b, ldb, cg_real(cg, 0), c, ldc);
    cg_end_if(cg, &gemv);
    if (rows) cg_end_if(cg, &sparse);
    return false;
}

/* ------------------------------------------------------------ loop kernels */

/* Where column j of row r of a [B, m·n] loop meets its [B, n] tile: r·n + j mod n. */
static LLVMValueRef tile_index(Body *B, LLVMValueRef row, LLVMValueRef j, long n) {
    LLVMBuilderRef b = B->cg->b;
    return LLVMBuildAdd(b, LLVMBuildMul(b, row, cg_i64(B->cg, n), ""),
                        LLVMBuildURem(b, j, cg_i64(B->cg, n), ""), "");
}

/* Column j's channel for `hw` positions per channel: the channel loop's
 * index when hw is the kernel's, else j / hw. */
static LLVMValueRef chan_index(Codegen *cg, LLVMValueRef j, LLVMValueRef chan, long hw,
                               long loop_hw) {
    return hw == loop_hw ? chan : LLVMBuildUDiv(cg->b, j, cg_i64(cg, hw), "");
}

/* A full reduction's column sums `part` folded in column order into *out,
 * in double whatever the element type: a loss over a batch is thousands of
 * columns (784 for an MNIST image), whose f32 sum would be off by up to a
 * few 1e-6 — as much as a data-parallel run's parts differ from the whole
 * (docs/trainer.md, "Summation order"). */
static void fold_columns(Codegen *cg, LLVMValueRef part, long n, LLVMValueRef out) {
    LLVMValueRef acc = cg_var(cg, "acc", LLVMConstReal(cg->f64, 0));
    Loop l = cg_loop_begin(cg, cg_i64(cg, n), "fold");
    LLVMValueRef v = cg_load(cg, part, l.index, "");
    if (cg->T != cg->f64) v = LLVMBuildFPExt(cg->b, v, cg->f64, "");
    LLVMBuildStore(cg->b, LLVMBuildFAdd(cg->b, LLVMBuildLoad2(cg->b, cg->f64, acc, ""), v, ""),
                   acc);
    cg_loop_end(cg, &l);
    LLVMValueRef sum = LLVMBuildLoad2(cg->b, cg->f64, acc, "");
    if (cg->T != cg->f64) sum = LLVMBuildFPTrunc(cg->b, sum, cg->T, "");
    cg_store(cg, sum, out, cg_i64(cg, 0));
}

/* The part of a loop kernel's domain one call computes: rows [row_lo,
 * row_hi) and columns [col_lo, col_hi), a NULL bound meaning all; as task
 * `task` (of a split kernel, or a block of an epilogue) its sums over rows
 * go to that task's own column sums (Plan.task_sums), which the kernel
 * adds up after its tasks — but for a task of whole columns (all rows,
 * Plan.col_split), whose sums are its columns' final ones. */
typedef struct Range {
    LLVMValueRef row_lo, row_hi, col_lo, col_hi, task;
    bool whole_columns;
} Range;

/* Reductions: one path for every RED op, by its index map (ir_op_red).
 * Before the loops its accumulator is zeroed: the output itself, or for a
 * full sum (RED_ALL) the column sums the plan gave it (Plan.partial), or in
 * a task (of a split kernel, or a block of an epilogue), for a per-column
 * map, the task's own column sums (Plan.task_sums) — an epilogue block only
 * its own columns of them. In the loop element (row, j) is added at the
 * map's index; after the loops a full sum's column sums are folded. */
static LLVMValueRef red_begin(Body *B, int i, LLVMValueRef out, Range r, LLVMValueRef ncols) {
    LLVMValueRef task = r.task;
    Codegen *cg = B->cg;
    const IrNode *node = &B->g->nodes[i];
    IrRedMap red = ir_op_red[node->op];
    LLVMValueRef acc;
    if (task && red_per_column(red) && !r.whole_columns) /* this task's sums */
        acc = cg_at(cg, buf_ptr(B, B->p->task_sums[i]), LLVMBuildMul(cg->b, task, ncols, ""));
    else
        acc = red == RED_ALL ? buf_ptr(B, B->p->partial[i]) : out;
    ensure(acc && (!task || red_per_column(red)));
    if (red_per_column(red) && task && r.col_lo) /* a block's or task's columns */
        cg_zero(cg, cg_at(cg, acc, r.col_lo), LLVMBuildSub(cg->b, r.col_hi, r.col_lo, ""));
    else if (red_per_column(red))
        cg_zero(cg, acc, ncols);
    else /* the output's size */
        cg_zero(cg, acc,
                node->type.batched ? LLVMBuildMul(cg->b, B->batch, cg_i64(cg, node->type.n), "")
                                   : cg_i64(cg, node->type.n));
    return acc;
}

/* Clear what loop kernel k set in B->ptr, B->acc and B->scalar: the
 * nodes it computes and the ones it reads, as its first loop found them. */
static void kernel_forget(Body *B, const Kernel *k) {
    const Graph *g = B->g;
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        const IrNode *node = &g->nodes[i];
        for (int j = 0; j < ir_op_nin[node->op]; j++) {
            int u = node->in[j];
            if (g->nodes[u].op == IR_CHAN_EXPAND) u = g->nodes[u].in[0];
            scalar_forget(B, u);
            B->ptr[u] = NULL;
        }
        B->ptr[i] = B->acc[i] = NULL;
    }
}

static void loop_kernel_range(Body *B, const Kernel *k, Range r) {
    LLVMValueRef task = r.task;
    Codegen *cg = B->cg;
    const Graph *g = B->g;
    long n = k->domain.n;
    LLVMValueRef ncols = cg_i64(cg, n);
    cg_debug_loc(cg, g->nodes[k->nodes[0]].loc); /* the loops: the kernel's first node */

    /* Before the loops: pointers, loop-invariant scalars, zeroed accumulators.
     * B->ptr, B->acc and B->scalar are all NULL between loop kernels: each
     * kernel clears what it set (kernel_forget), so a kernel costs its own
     * size, not the graph's (a clear or two arrays of the graph's size per
     * kernel were quadratic in the spec's depth, in time and memory). */
    LLVMValueRef *ptr = B->ptr, *acc = B->acc;
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        const IrNode *node = &g->nodes[i];
        for (int j = 0; j < ir_op_nin[node->op]; j++) {
            int u = node->in[j];
            if (B->f->info[u].kernel == B->kernel && ir_op_class[g->nodes[u].op] != OPC_RED)
                continue;
            if (g->nodes[u].op == IR_CHAN_EXPAND) u = g->nodes[u].in[0]; /* loaded per channel */
            if (ir_is_scalar(g->nodes[u].type))
                scalar_value(B, u);
            else if (!ptr[u])
                ptr[u] = buf_ptr(B, B->p->loc[u]);
        }
        if (B->f->info[i].materialized) ptr[i] = buf_ptr(B, B->p->loc[i]);
        if (ir_op_class[node->op] == OPC_RED) acc[i] = red_begin(B, i, ptr[i], r, ncols);
    }

    LLVMValueRef rows = k->domain.batched ? B->batch : cg_i64(cg, 1);
    LLVMValueRef row_lo = r.row_lo, col_lo = r.col_lo;
    if (row_lo) rows = LLVMBuildSub(cg->b, r.row_hi, row_lo, "rows");
    long hw = kernel_hw(g, k);
    Loop outer = cg_loop_begin(cg, rows, "row"), chan = {0};
    LLVMValueRef row = row_lo ? LLVMBuildAdd(cg->b, row_lo, outer.index, "r") : outer.index;
    LLVMValueRef row_start = LLVMBuildMul(cg->b, row, ncols, "");
    /* channel by channel: a column range is whole channels (Plan.col_split) */
    ensure(hw == 1 || !col_lo || r.whole_columns);
    LLVMValueRef chan_at = NULL;
    if (hw > 1) {
        LLVMValueRef chans = col_lo
                                 ? LLVMBuildUDiv(cg->b, LLVMBuildSub(cg->b, r.col_hi, col_lo, ""),
                                                 cg_i64(cg, hw), "chans")
                                 : cg_i64(cg, n / hw);
        chan = cg_loop_begin(cg, chans, "chan");
        chan_at = col_lo ? LLVMBuildAdd(cg->b, LLVMBuildUDiv(cg->b, col_lo, cg_i64(cg, hw), ""),
                                        chan.index, "c")
                         : chan.index;
    }
    Loop inner = cg_loop_begin(cg,
                               hw > 1   ? cg_i64(cg, hw)
                               : col_lo ? LLVMBuildSub(cg->b, r.col_hi, col_lo, "cols")
                                        : ncols,
                               "col");
    LLVMValueRef j = hw > 1 ? LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, chan_at, cg_i64(cg, hw), ""),
                                           inner.index, "j")
                     : col_lo ? LLVMBuildAdd(cg->b, col_lo, inner.index, "j")
                              : inner.index;
    LLVMValueRef idx = LLVMBuildAdd(cg->b, row_start, j, "i");
    /* Draws are keyed by the row in the global batch (aec_exec.row_offset). */
    B->index = k->domain.batched
                   ? LLVMBuildAdd(cg->b, idx, LLVMBuildMul(cg->b, B->row0, ncols, ""), "g")
                   : idx;
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        const IrNode *node = &g->nodes[i];
        cg_debug_loc(cg, node->loc);
        LLVMValueRef in[2] = {0};
        for (int q = 0; q < ir_op_nin[node->op]; q++) {
            int u = node->in[q];
            IrType t = g->nodes[u].type;
            if (B->f->info[u].kernel == B->kernel && ir_op_class[g->nodes[u].op] != OPC_RED)
                in[q] = B->val[u];
            else if (ir_is_scalar(t))
                in[q] = scalar_value(B, u);
            else if (g->nodes[u].op == IR_CHAN_EXPAND) { /* [C] at the column's channel */
                int v = g->nodes[u].in[0];
                in[q] =
                    ir_is_scalar(g->nodes[v].type)
                        ? scalar_value(B, v)
                        : cg_load(cg, ptr[v], chan_index(cg, j, chan_at, g->nodes[u].hw, hw), "");
            } else if (node->op == IR_TILE) /* row r, column j mod n of the stored input */
                in[q] = cg_load(cg, ptr[u], tile_index(B, row, j, t.n), "");
            else
                in[q] = cg_load(cg, ptr[u], t.batched ? idx : j, "");
        }
        if (ir_op_class[node->op] == OPC_RED) { /* added in at the op's index map */
            LLVMValueRef at;
            switch (ir_op_red[node->op]) {
            case RED_COLS:
            case RED_ALL: at = j; break;
            case RED_TILES: at = tile_index(B, row, j, node->type.n); break;
            case RED_CHAN: at = chan_index(cg, j, chan_at, node->hw, hw); break;
            default: internal_error("%s has no index map", ir_op_names[node->op]);
            }
            cg_store(cg, cg_add(cg, cg_load(cg, acc[i], at, ""), in[0]), acc[i], at);
            continue;
        }
        LLVMValueRef v = elementwise(B, node, in[0], in[1]);
        B->val[i] = v;
        if (B->f->info[i].materialized) cg_store(cg, v, ptr[i], k->domain.batched ? idx : j);
    }
    cg_loop_end(cg, &inner);
    if (hw > 1) cg_loop_end(cg, &chan);
    cg_loop_end(cg, &outer);
    B->index = NULL;

    /* After the loops: fold each full reduction's column sums, in order
     * (a task leaves its sums to the kernel). */
    for (int m = 0; m < k->nnodes && !task; m++) {
        int i = k->nodes[m];
        if (ir_op_red[g->nodes[i].op] == RED_ALL) fold_columns(cg, acc[i], n, ptr[i]);
    }
    kernel_forget(B, k);
}

/* ------------------------------------------------------ split into tasks */

static void body_init(Body *B, LLVMValueRef *args);

/* A function of (env, ...) computing part of kernel B->kernel, where env
 * holds the graph body's arguments (B->env): task_begin makes it and the
 * task's own Body *T from env, and leaves the builder in it; task_end
 * returns to the caller. */
typedef struct TaskFn {
    LLVMValueRef fn;
    CgAside saved;
} TaskFn;

static TaskFn task_begin(Body *B, const char *what, LLVMTypeRef *params, int nparams, Body *T) {
    Codegen *cg = B->cg;
    TaskFn t;
    char name[300];
    snprintf(name, sizeof name, "%s.%s%d", LLVMGetValueName(cg->fn), what, B->kernel);
    t.fn = cg_aside_begin(cg, name, params, nparams, &t.saved);
    LLVMValueRef env =
        LLVMBuildBitCast(cg->b, LLVMGetParam(t.fn, 0), LLVMPointerType(B->env_ty, 0), "env");
    LLVMValueRef args[N_ARGS];
    for (int a = 0; a < N_ARGS; a++)
        args[a] = LLVMBuildLoad2(cg->b, LLVMStructGetTypeAtIndex(B->env_ty, (unsigned)a),
                                 LLVMBuildStructGEP2(cg->b, B->env_ty, env, (unsigned)a, ""), "");
    /* The caller's per-node arrays: all NULL between loop kernels, and a
     * loop reads val only of its own nodes, set before. */
    *T = (Body){.cg = cg, .g = B->g, .f = B->f, .p = B->p, .kernel = B->kernel};
    T->val = B->val, T->scalar = B->scalar, T->ptr = B->ptr, T->acc = B->acc;
    body_init(T, args);
    return t;
}

static LLVMValueRef task_end(Body *B, const TaskFn *t) {
    cg_aside_end(B->cg, &t->saved, (Loc){0});
    return t->fn;
}

/* Kernel k as a function of (env, t) computing task t's rows or columns
 * (of a batched kernel split by columns: those columns of every row). */
static LLVMValueRef loop_task(Body *B, const Kernel *k) {
    Codegen *cg = B->cg;
    LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64};
    Body T;
    TaskFn tf = task_begin(B, "loop", params, 2, &T);
    long cols = B->p->col_split[B->kernel], span = cols ? cols : B->p->split[B->kernel];
    bool by_rows = k->domain.batched && !cols;
    LLVMValueRef t = LLVMGetParam(tf.fn, 1);
    LLVMValueRef end = by_rows ? T.batch : cg_i64(cg, k->domain.n);
    LLVMValueRef lo = cg_imul(cg, t, span), hi = cg_iadd(cg, lo, span);
    hi = cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, hi, end, ""), hi, end);
    loop_kernel_range(&T, k,
                      by_rows ? (Range){lo, hi, NULL, NULL, t, false}
                              : (Range){NULL, NULL, lo, hi, t, .whole_columns = cols != 0});
    return task_end(B, &tf);
}

/* Epilogue kernel k as the GEMM's epilogue (gemm.h): a function of (env,
 * r0, r1, c0, c1, block) computing that block, its sums block `block`'s. */
static LLVMValueRef epilogue_task(Body *B, const Kernel *k) {
    Codegen *cg = B->cg;
    LLVMTypeRef params[6] = {cg->i8_ptr, cg->i64, cg->i64, cg->i64, cg->i64, cg->i64};
    Body T;
    TaskFn tf = task_begin(B, "epilogue", params, 6, &T);
    LLVMValueRef p[6];
    for (int i = 1; i < 6; i++)
        p[i] = LLVMGetParam(tf.fn, (unsigned)i);
    loop_kernel_range(&T, k, (Range){p[1], p[2], p[3], p[4], p[5], false});
    return task_end(B, &tf);
}

/* After kernel k's tasks: its sums, added up in task order — a sum over
 * rows is its column sums; a full sum, its column sums folded. */
static void add_task_sums(Body *B, const Kernel *k, LLVMValueRef ntasks) {
    Codegen *cg = B->cg;
    const Graph *g = B->g;
    long n = k->domain.n;
    for (int m = 0; m < k->nnodes; m++) {
        int i = k->nodes[m];
        IrRedMap red = ir_op_red[g->nodes[i].op];
        if (!red_per_column(red)) continue;
        LLVMValueRef sums = buf_ptr(B, B->p->task_sums[i]);
        LLVMValueRef to = red == RED_COLS ? buf_ptr(B, B->p->loc[i]) : buf_ptr(B, B->p->partial[i]);
        cg_zero(cg, to, cg_i64(cg, n));
        Loop lt = cg_loop_begin(cg, ntasks, "task_sum");
        LLVMValueRef from = cg_at(cg, sums, cg_imul(cg, lt.index, n));
        Loop lj = cg_loop_begin(cg, cg_i64(cg, n), "col");
        cg_store(cg, cg_add(cg, cg_load(cg, to, lj.index, ""), cg_load(cg, from, lj.index, "")), to,
                 lj.index);
        cg_loop_end(cg, &lj);
        cg_loop_end(cg, &lt);
        if (red == RED_ALL) fold_columns(cg, to, n, buf_ptr(B, B->p->loc[i]));
    }
}

/* A loop kernel: split into tasks on the caller's threads when it pays,
 * else one loop nest here. */
static void loop_kernel(Body *B, const Kernel *k) {
    Codegen *cg = B->cg;
    long cols = B->p->col_split[B->kernel], span = cols ? cols : B->p->split[B->kernel];
    long n = k->domain.n;
    if (!span) {
        loop_kernel_range(B, k, (Range){0});
        return;
    }
    LLVMValueRef task = loop_task(B, k);
    LLVMValueRef end = k->domain.batched && !cols ? B->batch : cg_i64(cg, n);
    LLVMValueRef ntasks =
        LLVMBuildSDiv(cg->b, cg_iadd(cg, end, span - 1), cg_i64(cg, span), "tasks");
    gemm_parallel_for(cg->mod, cg->b, B->exec, ntasks, task, B->env);
    if (!cols) {
        add_task_sums(B, k, ntasks);
        return;
    }
    for (int m = 0; m < k->nnodes; m++) { /* whole columns: only a full sum's fold is left */
        int i = k->nodes[m];
        if (ir_op_red[B->g->nodes[i].op] == RED_ALL)
            fold_columns(cg, buf_ptr(B, B->p->partial[i]), n, buf_ptr(B, B->p->loc[i]));
    }
}

/* ------------------------------------------------------------ the body */

/* A body's values from its arguments (a graph body's, or a task's copy). */
static void body_init(Body *B, LLVMValueRef *args) {
    Codegen *cg = B->cg;
    B->base[BASE_WS] = args[ARG_WS];
    B->base[BASE_X] = args[ARG_X];
    B->base[BASE_PARAMS] = args[ARG_PARAMS];
    B->base[BASE_GRADS] = args[ARG_GRADS];
    B->base[BASE_OPT] = args[ARG_OPT];
    B->base[BASE_CODE] = args[ARG_CODE];
    B->base[BASE_XHAT] = args[ARG_XHAT];
    B->base[BASE_LOSS] = args[ARG_LOSS];
    B->base[BASE_MASK] = args[ARG_MASK];
    B->batch = args[ARG_BATCH];
    B->batch_t = LLVMBuildSIToFP(cg->b, B->batch, cg->T, "batch_f");
    B->step_t = LLVMBuildUIToFP(cg->b, args[ARG_STEP], cg->T, "step_f");
    B->step = args[ARG_STEP];
    B->row0 = args[ARG_ROW0];
    B->exec = args[ARG_EXEC];
}

/* The internal function computing one graph. */
LLVMValueRef graph_body(Codegen *cg, const Entry *e) {
    const Graph *g = e->graph;
    const Fusion *f = e->fusion;
    const Plan *p = e->plan;
    LLVMTypeRef params[N_ARGS];
    for (int a = 0; a < N_ARGS; a++)
        params[a] = cg->T_ptr;
    params[ARG_BATCH] = params[ARG_STEP] = params[ARG_ROW0] = cg->i64;
    params[ARG_EXEC] = cg->i8_ptr;
    char name[256];
    if (g->stage)
        snprintf(name, sizeof name, "%s__%s_stage%d", cg->prefix, ir_graph_name(g->kind), g->stage);
    else
        snprintf(name, sizeof name, "%s__%s", cg->prefix, ir_graph_name(g->kind));
    LLVMValueRef fn = cg_function(cg, name, cg->void_t, params, N_ARGS, true);
    static const char *const arg_names[N_ARGS] = {"params", "opt",   "x",    "grads", "ws",
                                                  "code",   "x_hat", "loss", "batch", "step",
                                                  "mask",   "exec",  "row0"};
    for (int a = 0; a < N_ARGS; a++)
        LLVMSetValueName2(LLVMGetParam(fn, (unsigned)a), arg_names[a], strlen(arg_names[a]));

    Body B = {.cg = cg, .g = g, .f = f, .p = p};
    B.val = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.scalar = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.ptr = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.acc = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    LLVMValueRef args[N_ARGS];
    for (int a = 0; a < N_ARGS; a++)
        args[a] = LLVMGetParam(fn, (unsigned)a);
    body_init(&B, args);
    /* The arguments again, for the kernels run as tasks (task_begin). */
    bool any_task = false;
    for (int k = 0; k < f->nkernels; k++)
        any_task |= p->split[k] != 0 || p->col_split[k] != 0 || f->kernels[k].epilogue;
    if (any_task) {
        B.env_ty = LLVMStructTypeInContext(cg->ctx, params, N_ARGS, 0);
        B.env = LLVMBuildAlloca(cg->b, B.env_ty, "env");
        for (int a = 0; a < N_ARGS; a++)
            LLVMBuildStore(cg->b, args[a],
                           LLVMBuildStructGEP2(cg->b, B.env_ty, B.env, (unsigned)a, ""));
    }

    for (int k = 0; k < f->nkernels; k++) {
        B.kernel = k;
        if (f->kernels[k].kind == K_GEMM) {
            const Kernel *next = k + 1 < f->nkernels ? &f->kernels[k + 1] : NULL;
            if (gemm_kernel(&B, f->kernels[k].node, next && next->epilogue ? next : NULL))
                k++; /* ran as its epilogue */
        } else if (f->kernels[k].kind == K_NEST)
            nest_kernel(&B, f->kernels[k].node);
        else
            loop_kernel(&B, &f->kernels[k]);
    }
    /* An output whose node an earlier output holds (equal gradients are one
     * node) gets a copy in its own place. */
    for (int o = 0; o < g->nouts; o++) {
        int i = g->outs[o].node;
        BufLoc to = p->out_loc[o], from = p->loc[i];
        if (f->info[i].inline_scalar || to.base == BASE_NONE ||
            (to.base == from.base && to.off_batch == from.off_batch &&
             to.off_const == from.off_const))
            continue;
        IrType t = g->nodes[i].type;
        LLVMValueRef src = buf_ptr(&B, from), dst = buf_ptr(&B, to);
        Loop l = cg_loop_begin(cg, t.batched ? cg_imul(cg, B.batch, t.n) : cg_i64(cg, t.n), "copy");
        cg_store(cg, cg_load(cg, src, l.index, ""), dst, l.index);
        cg_loop_end(cg, &l);
    }
    /* Inline scalar outputs (the loss), from the stored reductions. */
    memset(B.scalar, 0, sizeof(LLVMValueRef) * (size_t)g->nnodes);
    B.kernel = f->nkernels;
    for (int o = 0; o < g->nouts; o++) {
        int i = g->outs[o].node;
        if (f->info[i].inline_scalar && g->outs[o].kind != OUT_METRIC)
            LLVMBuildStore(
                cg->b, scalar_value(&B, i),
                buf_ptr(&B, p->out_loc[o].base != BASE_NONE ? p->out_loc[o] : p->loc[i]));
    }
    /* The loss's terms, after it: loss[index]. */
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].kind == OUT_METRIC)
            cg_store(cg, scalar_value(&B, g->outs[o].node), B.base[BASE_LOSS],
                     cg_i64(cg, g->outs[o].index));
    LLVMBuildRetVoid(cg->b);
    return fn;
}
