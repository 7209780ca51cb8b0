/* nest.c — the NEST kernels: image layers as loop nests of their own.
 *
 * Takes a NEST node of a graph body (CONV, CONV_T, CONV_W, MAXPOOL(_GRAD),
 * AVGPOOL(_GRAD), UPSAMPLE(_GRAD)) and its layer's geometry (ConvGeom);
 * produces its loop nest. A convolution runs sample by sample: im2col of
 * one sample into the plan's scratch (`partial`, reused for every sample,
 * so it stays in cache; tasks of channels on the caller's threads), then
 * one gemm giving that sample's NCHW output;
 * its adjoint is the gemm, then col2im. A 1x1 convolution with stride 1 and
 * no padding needs neither. Pooling and upsampling loop over the batch's
 * planes and the output positions, the window inside, as tasks of planes.
 */
#include <stdio.h>

#include "cg.h"

/* The generated product of one sample, C = op(A)·op(B) (+ C for CONV_W),
 * its tasks through exec (NULL: on this thread). */
static void conv_gemm_generated(Codegen *cg, const GemmSpec *s, LLVMValueRef a, LLVMValueRef b,
                                LLVMValueRef c, LLVMValueRef pack, LLVMValueRef exec) {
    LLVMValueRef none = LLVMConstNull(cg->i8_ptr);
    LLVMValueRef args[8] = {a, b, c, cg_i64(cg, 1), pack, exec, none, none};
    LLVMBuildCall2(cg->b, gemm_function_type(cg->ctx, cg->opt.f64), generated_gemm(cg, s), args, 8,
                   "");
}

/* Conv node i's product runs as a generated one (else cblas: --gemm blas). */
static bool conv_generated(Body *B, int i) {
    return B->cg->opt.gemm == GEMM_AEC && B->p->pack[i].base == BASE_WS;
}

/* It runs as tasks of samples: the plan gave it their slots (conv_slot). */
static bool conv_in_slots(Body *B, int i) {
    ConvGeom q = conv_geom(&B->g->model->layers[B->g->nodes[i].layer]);
    return conv_generated(B, i) && !conv_winograd(&q);
}

/* One sample's product of conv node i, C = op(A)·op(B) (+ C for CONV_W,
 * whose C the caller zeroed): the generated kernel, or cblas (--gemm blas). */
static void conv_gemm(Body *B, int i, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    Codegen *cg = B->cg;
    GemmSpec s;
    ensure(plan_gemm_spec(B->g, i, cg->opt.f64, &s)); /* B, the columns, read in place */
    if (!conv_generated(B, i)) {
        cg_gemm_call(cg, s.ta, s.tb, cg_i32(cg, s.m), cg_i32(cg, s.n), cg_i32(cg, s.k), a,
                     cg_i32(cg, s.lda), b, cg_i32(cg, s.ldb), cg_real(cg, s.accumulate ? 1 : 0), c,
                     cg_i32(cg, s.ldc));
        return;
    }
    conv_gemm_generated(cg, &s, a, b, c, buf_ptr(B, B->p->pack[i]), B->exec);
}

/* The outputs o in [lo, hi) of one spatial dimension whose input o·S + off
 * lies inside [0, size), with off known only at run time (the window
 * offset's loop index minus the padding). */
static void valid_range_at(Codegen *cg, LLVMValueRef off, long stride, long size, long outs,
                           LLVMValueRef *lo, LLVMValueRef *hi) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef zero = cg_i64(cg, 0), S = cg_i64(cg, stride);
    LLVMValueRef neg = LLVMBuildICmp(b, LLVMIntSLT, off, zero, "");
    /* lo = off < 0 ? ceil(−off / S) : 0 */
    LLVMValueRef up = LLVMBuildSDiv(b, cg_iadd(cg, LLVMBuildNeg(b, off, ""), stride - 1), S, "");
    *lo = cg_select(cg, neg, up, zero);
    /* hi = size − 1 − off < 0 ? 0 : min((size − 1 − off) / S + 1, outs) */
    LLVMValueRef last = LLVMBuildSub(b, cg_i64(cg, size - 1), off, "");
    LLVMValueRef h = cg_iadd(cg, LLVMBuildSDiv(b, last, S, ""), 1);
    h = cg_select(cg, LLVMBuildICmp(b, LLVMIntSLT, last, zero, ""), zero, h);
    h = cg_select(cg, LLVMBuildICmp(b, LLVMIntSGT, h, cg_i64(cg, outs), ""), cg_i64(cg, outs), h);
    *lo = cg_select(cg, LLVMBuildICmp(b, LLVMIntSGT, *lo, h, ""), h, *lo);
    *hi = h;
}

/* im2col of one sample: cols[(c·KH + i)·KW + j][y·OW + x] =
 * img[c][y·S − pad_h + i][x·S − pad_w + j] where that is inside the image,
 * 0 where it is padding: every element written once, so cols needs no
 * zeroing first (which doubled its writes: a batch-1 encode's cols are 1.8
 * MB). With `add`, its adjoint col2im: img[...] += cols[...] over the pairs
 * inside, img's channels [c_lo, c_hi) zeroed first (in the task, not on
 * the caller's one thread). Loops over the
 * window offsets (i, j) at run time, each with its valid output range: a
 * compact function (an unrolled one made conv specs take seconds to
 * compile) whose inner copy is a plain loop that vectorizes for stride 1. */
/* p[from, to) = 0. */
static void zero_span(Codegen *cg, LLVMValueRef p, LLVMValueRef from, LLVMValueRef to) {
    Loop l = cg_loop_begin(cg, LLVMBuildSub(cg->b, to, from, ""), "pad");
    cg_store(cg, cg_real(cg, 0), p, LLVMBuildAdd(cg->b, from, l.index, ""));
    cg_loop_end(cg, &l);
}

static void emit_im2col_body(Codegen *cg, const ConvGeom *q, LLVMValueRef img, LLVMValueRef cols,
                             bool add, LLVMValueRef c_lo, LLVMValueRef c_hi) {
    LLVMBuilderRef b = cg->b;
    long P = (long)q->oh * q->ow, S = q->stride;
    if (add) /* col2im adds into its channels of the image: zero them here, in the task */
        cg_zero(cg, cg_at(cg, img, cg_imul(cg, c_lo, (long)q->h * q->w)),
                cg_imul(cg, LLVMBuildSub(b, c_hi, c_lo, ""), (long)q->h * q->w));
    Loop lc = cg_loop_begin(cg, LLVMBuildSub(b, c_hi, c_lo, ""), "chan");
    LLVMValueRef c = LLVMBuildAdd(b, c_lo, lc.index, "c");
    LLVMValueRef img_c = cg_at(cg, img, cg_imul(cg, c, (long)q->h * q->w));
    LLVMValueRef cols_c = cg_at(cg, cols, cg_imul(cg, c, (long)q->kh * q->kw * P));
    Loop li = cg_loop_begin(cg, cg_i64(cg, q->kh), "ki");
    Loop lj = cg_loop_begin(cg, cg_i64(cg, q->kw), "kj");
    LLVMValueRef i = li.index, j = lj.index;
    LLVMValueRef row = cg_at(cg, cols_c, cg_imul(cg, cg_iadd(cg, cg_imul(cg, i, q->kw), 0), P));
    row = cg_at(cg, row, cg_imul(cg, j, P));
    LLVMValueRef y0, y1, x0, x1;
    valid_range_at(cg, cg_iadd(cg, i, -q->pad_h), S, q->h, q->oh, &y0, &y1);
    valid_range_at(cg, cg_iadd(cg, j, -q->pad_w), S, q->w, q->ow, &x0, &x1);
    LLVMValueRef ny = LLVMBuildSub(b, y1, y0, ""), nx = LLVMBuildSub(b, x1, x0, "");
    if (!add) { /* the padding's rows: above y0, below y1 */
        zero_span(cg, row, cg_i64(cg, 0), cg_imul(cg, y0, q->ow));
        zero_span(cg, row, cg_imul(cg, y1, q->ow), cg_i64(cg, P));
    }
    Loop ly = cg_loop_begin(cg, ny, "y");
    LLVMValueRef y = LLVMBuildAdd(b, ly.index, y0, "");
    LLVMValueRef dst = cg_at(cg, row, cg_imul(cg, y, q->ow));
    if (!add) { /* the padding's columns of row y: left of x0, right of x1 */
        zero_span(cg, dst, cg_i64(cg, 0), x0);
        zero_span(cg, dst, x1, cg_i64(cg, q->ow));
    }
    /* the input row y·S − pad_h + i, from its column −pad_w + j */
    LLVMValueRef src_off = LLVMBuildAdd(b, cg_imul(cg, y, S * q->w),
                                        cg_iadd(cg, LLVMBuildAdd(b, cg_imul(cg, i, q->w), j, ""),
                                                -(long)q->pad_h * q->w - q->pad_w),
                                        "");
    LLVMValueRef src = cg_at(cg, img_c, src_off);
    Loop lx = cg_loop_begin(cg, nx, "x");
    LLVMValueRef x = LLVMBuildAdd(b, lx.index, x0, ""), at = cg_imul(cg, x, S);
    if (add)
        cg_store(cg, cg_add(cg, cg_load(cg, src, at, ""), cg_load(cg, dst, x, "")), src, at);
    else
        cg_store(cg, cg_load(cg, src, at, ""), dst, x);
    cg_loop_end(cg, &lx);
    cg_loop_end(cg, &ly);
    cg_loop_end(cg, &lj);
    cg_loop_end(cg, &li);
    cg_loop_end(cg, &lc);
}

/* Channels per im2col task: at most IM2COL_TASKS tasks. */
enum { IM2COL_TASKS = 16 };
static long im2col_group(const ConvGeom *q) {
    return (q->c + IM2COL_TASKS - 1) / IM2COL_TASKS;
}

/* The call of layer `layer`'s im2col (or col2im) on one sample, as tasks
 * of a fixed number of channels each on the caller's threads (exec): each
 * task writes its own channels' rows of cols (or, col2im, its channels of
 * the image), so the bits do not depend on the threads. The task function
 * — (env = {img, cols}, t) — is made once per layer, so the loops are
 * compiled once rather than in every kernel and graph that use them. `env`
 * is the caller's {img, cols} slot (conv_kernel's). */
static void emit_im2col(Codegen *cg, int layer, const ConvGeom *q, LLVMValueRef img,
                        LLVMValueRef cols, bool add, LLVMValueRef exec, LLVMValueRef env) {
    LLVMValueRef *fn = &cg->im2col[2 * layer + add];
    LLVMTypeRef ptrs[2] = {cg->T_ptr, cg->T_ptr};
    LLVMTypeRef env_ty = LLVMStructTypeInContext(cg->ctx, ptrs, 2, 0);
    long group = im2col_group(q);
    if (!*fn) {
        CgAside saved;
        char name[256];
        snprintf(name, sizeof name, "%s__%s_%d", cg->prefix, add ? "col2im" : "im2col", layer);
        LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64};
        *fn = cg_aside_begin(cg, name, params, 2, &saved);
        LLVMValueRef e =
            LLVMBuildBitCast(cg->b, LLVMGetParam(*fn, 0), LLVMPointerType(env_ty, 0), "env");
        LLVMValueRef im =
            LLVMBuildLoad2(cg->b, cg->T_ptr, LLVMBuildStructGEP2(cg->b, env_ty, e, 0, ""), "img");
        LLVMValueRef co =
            LLVMBuildLoad2(cg->b, cg->T_ptr, LLVMBuildStructGEP2(cg->b, env_ty, e, 1, ""), "cols");
        LLVMValueRef c_lo = cg_imul(cg, LLVMGetParam(*fn, 1), group);
        LLVMValueRef c_hi = cg_iadd(cg, c_lo, group);
        c_hi = cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, c_hi, cg_i64(cg, q->c), ""), c_hi,
                         cg_i64(cg, q->c));
        emit_im2col_body(cg, q, im, co, add, c_lo, c_hi);
        cg_aside_end(cg, &saved, (Loc){0});
    }
    LLVMBuildStore(cg->b, img, LLVMBuildStructGEP2(cg->b, env_ty, env, 0, ""));
    LLVMBuildStore(cg->b, cols, LLVMBuildStructGEP2(cg->b, env_ty, env, 1, ""));
    gemm_parallel_for(cg->mod, cg->b, exec, cg_i64(cg, (q->c + group - 1) / group), *fn, env);
}

/* ------------------------------------------------------ tasks of samples */

/* The env of a task of samples: the node's inputs and output (the batch's),
 * its first slot (its scratch) and the others' (ws_later_slots), the
 * batch and the number of tasks. */
enum { S_A, S_W, S_OUT, S_SCRATCH, S_LATER, S_BATCH, S_SLOTS, S_FIELDS };
static LLVMTypeRef samples_env_type(Codegen *cg) {
    LLVMTypeRef f[S_FIELDS];
    for (int k = 0; k < S_FIELDS; k++)
        f[k] = k >= S_BATCH ? cg->i64 : cg->T_ptr;
    return LLVMStructTypeInContext(cg->ctx, f, S_FIELDS, 0);
}

/* Task `slot`: its share of the samples, each an im2col/col2im and a
 * product on this thread, in the slot's own columns and pack buffer;
 * CONV_W adds its samples into the slot's own dW. */
static void conv_samples_body(Codegen *cg, const Graph *g, int i, LLVMValueRef *e,
                              LLVMValueRef slot) {
    LLVMBuilderRef b = cg->b;
    const IrNode *n = &g->nodes[i];
    ConvGeom q = conv_geom(&g->model->layers[n->layer]);
    ConvSlot cs = conv_slot(g, i);
    GemmSpec s;
    ensure(plan_gemm_spec(g, i, cg->opt.f64, &s));
    bool id = conv_geom_is_identity(&q);
    long img = (long)q.c * q.h * q.w, ys = (long)q.r * q.oh * q.ow;
    LLVMValueRef lo, hi;
    conv_task_samples(cg, slot, e[S_BATCH], e[S_SLOTS], &lo, &hi);
    LLVMValueRef cols = conv_task_slot(cg, slot, e[S_SCRATCH], e[S_LATER], cs.size);
    LLVMValueRef pack = cg_at(cg, cols, cg_i64(cg, cs.cols)),
                 dw = cg_at(cg, pack, cg_i64(cg, cs.pack));
    if (n->op == IR_CONV_W) cg_zero(cg, dw, cg_i64(cg, s.m * s.n));
    LLVMTypeRef ptrs[2] = {cg->T_ptr, cg->T_ptr}; /* im2col's tasks' {img, cols} */
    LLVMValueRef env =
        id ? NULL : cg_alloca_entry_of(cg, LLVMStructTypeInContext(cg->ctx, ptrs, 2, 0), "im2col");
    LLVMValueRef one = LLVMConstNull(cg->i8_ptr); /* this thread */
    Loop ls = cg_loop_begin(cg, LLVMBuildSub(b, hi, lo, ""), "sample");
    LLVMValueRef sm = LLVMBuildAdd(b, lo, ls.index, "");
    switch (n->op) {
    case IR_CONV: {
        LLVMValueRef x = cg_at(cg, e[S_A], cg_imul(cg, sm, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, cols, false, one, env);
        conv_gemm_generated(cg, &s, e[S_W], id ? x : cols, cg_at(cg, e[S_OUT], cg_imul(cg, sm, ys)),
                            pack, one);
        break;
    }
    case IR_CONV_T: {
        LLVMValueRef y = cg_at(cg, e[S_OUT], cg_imul(cg, sm, img));
        conv_gemm_generated(cg, &s, e[S_W], cg_at(cg, e[S_A], cg_imul(cg, sm, ys)), id ? y : cols,
                            pack, one);
        if (!id) emit_im2col(cg, n->layer, &q, y, cols, true, one, env);
        break;
    }
    case IR_CONV_W: {
        LLVMValueRef x = cg_at(cg, e[S_W], cg_imul(cg, sm, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, cols, false, one, env);
        conv_gemm_generated(cg, &s, cg_at(cg, e[S_A], cg_imul(cg, sm, ys)), id ? x : cols, dw, pack,
                            one);
        break;
    }
    default: internal_error("%s is not a convolution", ir_op_names[n->op]);
    }
    cg_loop_end(cg, &ls);
}

/* Node i's task of samples, made once per module for its layer and op
 * (train, eval and encode share it). */
static LLVMValueRef conv_samples_fn(Codegen *cg, const Graph *g, int i) {
    const IrNode *n = &g->nodes[i];
    char name[300];
    snprintf(name, sizeof name, "%s__conv_samples_%s_%d", cg->prefix, ir_op_names[n->op], n->layer);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (fn) return fn;
    CgAside saved;
    LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64}, env_ty = samples_env_type(cg);
    fn = cg_aside_begin(cg, name, params, 2, &saved);
    LLVMValueRef env =
        LLVMBuildBitCast(cg->b, LLVMGetParam(fn, 0), LLVMPointerType(env_ty, 0), "env");
    LLVMValueRef e[S_FIELDS];
    for (unsigned f = 0; f < S_FIELDS; f++)
        e[f] = LLVMBuildLoad2(cg->b, LLVMStructGetTypeAtIndex(env_ty, f),
                              LLVMBuildStructGEP2(cg->b, env_ty, env, f, ""), "");
    conv_samples_body(cg, g, i, e, LLVMGetParam(fn, 1));
    cg_aside_end(cg, &saved, n->loc);
    return fn;
}

/* A batch of two or more: CONV_SLOTS tasks of samples (fewer for a smaller
 * batch); CONV_W's dW is then the slots' sums added in slot order. */
static void conv_samples(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    ConvSlot cs = conv_slot(B->g, i);
    LLVMValueRef slots = conv_task_count(cg, B->batch);
    LLVMValueRef scratch = buf_ptr(B, B->p->partial[i]), out = buf_ptr(B, B->p->loc[i]);
    LLVMValueRef later = ws_later_slots(cg, B->base[BASE_WS], B->batch);
    LLVMValueRef vals[S_FIELDS] = {buf_ptr(B, B->p->loc[n->in[0]]),
                                   buf_ptr(B, B->p->loc[n->in[1]]),
                                   out,
                                   scratch,
                                   later,
                                   B->batch,
                                   slots};
    LLVMTypeRef env_ty = samples_env_type(cg);
    LLVMValueRef env = cg_alloca_entry_of(cg, env_ty, "samples");
    for (unsigned f = 0; f < S_FIELDS; f++)
        LLVMBuildStore(cg->b, vals[f], LLVMBuildStructGEP2(cg->b, env_ty, env, f, ""));
    gemm_parallel_for(cg->mod, cg->b, B->exec, slots, conv_samples_fn(cg, B->g, i),
                      LLVMBuildBitCast(cg->b, env, cg->i8_ptr, ""));
    if (n->op != IR_CONV_W) return;
    GemmSpec s;
    ensure(plan_gemm_spec(B->g, i, cg->opt.f64, &s));
    LLVMValueRef dw0 = cg_at(cg, scratch, cg_i64(cg, cs.cols + cs.pack));
    Loop lj = cg_loop_begin(cg, cg_i64(cg, s.m * s.n), "dw"); /* dW = Σ of the slots, in order */
    LLVMValueRef sum = cg_var(cg, "dw", cg_load(cg, dw0, lj.index, ""));
    Loop ls = cg_loop_begin(cg, cg_iadd(cg, slots, -1), "slot");
    LLVMValueRef at = LLVMBuildAdd(cg->b, cg_imul(cg, ls.index, cs.size), lj.index, "");
    LLVMValueRef dw = cg_at(cg, later, cg_i64(cg, cs.cols + cs.pack)); /* the second slot's */
    LLVMBuildStore(cg->b,
                   cg_add(cg, LLVMBuildLoad2(cg->b, cg->T, sum, ""), cg_load(cg, dw, at, "")), sum);
    cg_loop_end(cg, &ls);
    cg_store(cg, LLVMBuildLoad2(cg->b, cg->T, sum, ""), out, lj.index);
    cg_loop_end(cg, &lj);
}

/* CONV, CONV_T, CONV_W: a loop over the samples, each an im2col/col2im
 * and a gemm — with generated products and a batch of two or more, as
 * tasks of samples (conv_samples; not for --conv im2col's alternative to
 * Winograd, whose scratch is one sample's columns). */
static void conv_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    If one = {0};
    if (conv_in_slots(B, i)) {
        one = cg_if(cg, LLVMBuildICmp(cg->b, LLVMIntNE, B->batch, cg_i64(cg, 1), ""), "samples");
        conv_samples(B, i);
        cg_else(cg, &one);
    }
    const IrNode *n = &B->g->nodes[i];
    ConvGeom q = conv_geom(&B->g->model->layers[n->layer]);
    long img = (long)q.c * q.h * q.w, P = (long)q.oh * q.ow, ckk = (long)q.c * q.kh * q.kw;
    long cols = (long)q.r * P;
    bool id = conv_geom_is_identity(&q);
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), w = buf_ptr(B, B->p->loc[n->in[1]]);
    LLVMValueRef out = buf_ptr(B, B->p->loc[i]), scratch = id ? NULL : buf_ptr(B, B->p->partial[i]);
    LLVMTypeRef ptrs[2] = {cg->T_ptr, cg->T_ptr}; /* im2col's tasks' {img, cols} */
    LLVMValueRef env =
        id ? NULL : cg_alloca_entry_of(cg, LLVMStructTypeInContext(cg->ctx, ptrs, 2, 0), "im2col");
    if (n->op == IR_CONV_W)
        cg_zero(cg, out, cg_i64(cg, (long)q.r * ckk)); /* the samples add to it */
    Loop lb = cg_loop_begin(cg, B->batch, "sample");
    LLVMValueRef s = lb.index;
    switch (n->op) {
    case IR_CONV: { /* y_s [R, P] = W [R, CKK] · im2col(x_s) [CKK, P] */
        LLVMValueRef x = cg_at(cg, a, cg_imul(cg, s, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, scratch, false, B->exec, env);
        conv_gemm(B, i, w, id ? x : scratch, cg_at(cg, out, cg_imul(cg, s, cols)));
        break;
    }
    case IR_CONV_T: { /* y_s = col2im(Wᵀ [CKK, R] · d_s [R, P]) */
        LLVMValueRef d = cg_at(cg, a, cg_imul(cg, s, cols)),
                     y = cg_at(cg, out, cg_imul(cg, s, img));
        conv_gemm(B, i, w, d, id ? y : scratch);
        if (!id) {
            emit_im2col(cg, n->layer, &q, y, scratch, true, B->exec, env);
        }
        break;
    }
    case IR_CONV_W: { /* dW [R, CKK] = Σ_s d_s [R, P] · im2col(x_s)ᵀ [P, CKK] */
        LLVMValueRef d = cg_at(cg, a, cg_imul(cg, s, cols)), x = cg_at(cg, w, cg_imul(cg, s, img));
        if (!id) emit_im2col(cg, n->layer, &q, x, scratch, false, B->exec, env);
        conv_gemm(B, i, d, id ? x : scratch, out); /* dW was zeroed before the samples */
        break;
    }
    default: internal_error("%s is not a convolution", ir_op_names[n->op]);
    }
    cg_loop_end(cg, &lb);
    if (conv_in_slots(B, i)) cg_end_if(cg, &one);
}

/* maxpool 2 (and its adjoint) over planes [p_lo, p_hi) of an image of
 * even height and width: a vector of vl outputs along a row from two input
 * rows of 2·vl, each split into its even and odd columns — the window's
 * four values as four vectors, scanned in the window's order for the first
 * maximum, as the scalar loops do. The adjoint writes dy where that was and
 * 0 at the other three: every input once, so nothing is zeroed first. */
enum { MAXPOOL2_MAX_ROW = 64 }; /* outputs per row: the row's vectors are unrolled */
static bool maxpool2_vectors(IrOp op, const ConvGeom *q) {
    return (op == IR_MAXPOOL || op == IR_MAXPOOL_GRAD) && q->kh == 2 && q->kw == 2 &&
           q->stride == 2 && q->h == 2 * q->oh && q->w == 2 * q->ow && q->ow <= MAXPOOL2_MAX_ROW;
}
static LLVMValueRef i32_splat(Codegen *cg, int vl, int k) {
    LLVMValueRef lanes[64];
    for (int i = 0; i < vl; i++)
        lanes[i] = cg_i32(cg, k);
    return LLVMConstVector(lanes, (unsigned)vl);
}
static void maxpool2_planes(Codegen *cg, IrOp op, const ConvGeom *q, LLVMValueRef x,
                            LLVMValueRef dy, LLVMValueRef out, LLVMValueRef p_lo,
                            LLVMValueRef p_hi) {
    LLVMBuilderRef b = cg->b;
    long in_plane = (long)q->h * q->w, out_plane = (long)q->oh * q->ow;
    int vl = cg_vector_lanes(cg, q->ow);
    LLVMValueRef zero = LLVMConstNull(LLVMVectorType(cg->T, (unsigned)vl));
    Loop lp = cg_loop_begin(cg, LLVMBuildSub(b, p_hi, p_lo, ""), "plane");
    LLVMValueRef plane = LLVMBuildAdd(b, p_lo, lp.index, "");
    Loop ly = cg_loop_begin(cg, cg_i64(cg, q->oh), "y");
    LLVMValueRef in_row =
        LLVMBuildAdd(b, cg_imul(cg, plane, in_plane), cg_imul(cg, ly.index, 2 * q->w), "");
    LLVMValueRef out_row =
        LLVMBuildAdd(b, cg_imul(cg, plane, out_plane), cg_imul(cg, ly.index, q->ow), "");
    for (long x0 = 0; x0 < q->ow; x0 += vl) {
        int valid = (int)(q->ow - x0 < vl ? q->ow - x0 : vl);
        LLVMValueRef at[2] = {cg_iadd(cg, in_row, 2 * x0), cg_iadd(cg, in_row, 2 * x0 + q->w)};
        LLVMValueRef win[4]; /* the window's (0,0), (0,1), (1,0), (1,1) */
        for (int r = 0; r < 2; r++) {
            LLVMValueRef v = cg_vload(cg, cg_at(cg, x, at[r]), 2 * vl, 2 * valid);
            win[2 * r] = cg_lanes_strided(cg, v, v, 0, 2, vl);
            win[2 * r + 1] = cg_lanes_strided(cg, v, v, 1, 2, vl);
        }
        LLVMValueRef best = win[0], which = i32_splat(cg, vl, 0);
        for (int k = 1; k < 4; k++) {
            LLVMValueRef better = LLVMBuildFCmp(b, LLVMRealOGT, win[k], best, "");
            best = LLVMBuildSelect(b, better, win[k], best, "");
            which = LLVMBuildSelect(b, better, i32_splat(cg, vl, k), which, "");
        }
        if (op == IR_MAXPOOL) {
            cg_vstore(cg, best, cg_at(cg, out, cg_iadd(cg, out_row, x0)), vl, valid);
            continue;
        }
        LLVMValueRef g = cg_vload(cg, cg_at(cg, dy, cg_iadd(cg, out_row, x0)), vl, valid), d[4];
        for (int k = 0; k < 4; k++)
            d[k] = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, which, i32_splat(cg, vl, k), ""),
                                   g, zero, "");
        for (int r = 0; r < 2; r++)
            cg_vstore(cg, cg_interleave(cg, d[2 * r], d[2 * r + 1], vl), cg_at(cg, out, at[r]),
                      2 * vl, 2 * valid);
    }
    cg_loop_end(cg, &ly);
    cg_loop_end(cg, &lp);
}

/* Pooling, upsampling and their adjoints over planes [p_lo, p_hi) of the
 * batch's (samples x channels): the output positions, the window inside.
 * x is the pooled input, dy the gradient (MAXPOOL_GRAD reads both). A plane
 * writes only its own part of out (an adjoint zeroes it first). */
static void pool_planes(Codegen *cg, IrOp op, const ConvGeom *q, LLVMValueRef a, LLVMValueRef dy_in,
                        LLVMValueRef out, LLVMValueRef p_lo, LLVMValueRef p_hi) {
    LLVMBuilderRef b = cg->b;
    long in_plane = (long)q->h * q->w, out_plane = (long)q->oh * q->ow, S = q->stride;
    if (maxpool2_vectors(op, q)) {
        maxpool2_planes(cg, op, q, a, dy_in, out, p_lo, p_hi);
        return;
    }
    LLVMValueRef count = LLVMBuildSub(b, p_hi, p_lo, "planes");
    bool adjoint = op == IR_MAXPOOL_GRAD || op == IR_AVGPOOL_GRAD;
    if (adjoint)
        cg_zero(cg, cg_at(cg, out, cg_imul(cg, p_lo, in_plane)), cg_imul(cg, count, in_plane));
    if (op == IR_UPSAMPLE || op == IR_UPSAMPLE_GRAD) {
        /* the big plane is the output (upsample) or the input (its adjoint) */
        bool up = op == IR_UPSAMPLE;
        long K = q->stride;
        Loop lp = cg_loop_begin(cg, count, "plane");
        LLVMValueRef plane = LLVMBuildAdd(b, p_lo, lp.index, "");
        Loop ly = cg_loop_begin(cg, cg_i64(cg, q->h), "y");
        Loop lx = cg_loop_begin(cg, cg_i64(cg, q->w), "x");
        LLVMValueRef small = LLVMBuildAdd(
            b, LLVMBuildAdd(b, cg_imul(cg, plane, in_plane), cg_imul(cg, ly.index, q->w), ""),
            lx.index, "");
        LLVMValueRef big0 = LLVMBuildAdd(
            b, cg_imul(cg, plane, out_plane),
            LLVMBuildAdd(b, cg_imul(cg, ly.index, K * q->ow), cg_imul(cg, lx.index, K), ""), "");
        LLVMValueRef v = up ? cg_load(cg, a, small, "") : NULL,
                     acc = up ? NULL : cg_var(cg, "acc", cg_real(cg, 0));
        Loop li = cg_loop_begin(cg, cg_i64(cg, K), "i");
        Loop lj = cg_loop_begin(cg, cg_i64(cg, K), "j");
        LLVMValueRef big =
            LLVMBuildAdd(b, big0, LLVMBuildAdd(b, cg_imul(cg, li.index, q->ow), lj.index, ""), "");
        if (up)
            cg_store(cg, v, out, big);
        else
            LLVMBuildStore(
                b, cg_add(cg, LLVMBuildLoad2(b, cg->T, acc, ""), cg_load(cg, a, big, "")), acc);
        cg_loop_end(cg, &lj);
        cg_loop_end(cg, &li);
        if (!up) cg_store(cg, LLVMBuildLoad2(b, cg->T, acc, ""), out, small);
        cg_loop_end(cg, &lx);
        cg_loop_end(cg, &ly);
        cg_loop_end(cg, &lp);
        return;
    }
    /* pooling: x is the first input of every op but AVGPOOL_GRAD (dy alone) */
    LLVMValueRef x = op == IR_AVGPOOL_GRAD ? NULL : a;
    LLVMValueRef dy = op == IR_MAXPOOL_GRAD ? dy_in : a;
    LLVMValueRef inv = cg_real(cg, 1.0 / (q->kh * q->kw));
    Loop lp = cg_loop_begin(cg, count, "plane");
    LLVMValueRef plane = LLVMBuildAdd(b, p_lo, lp.index, "");
    Loop ly = cg_loop_begin(cg, cg_i64(cg, q->oh), "y");
    Loop lx = cg_loop_begin(cg, cg_i64(cg, q->ow), "x");
    LLVMValueRef o = LLVMBuildAdd(b, cg_imul(cg, plane, out_plane),
                                  LLVMBuildAdd(b, cg_imul(cg, ly.index, q->ow), lx.index, ""), "o");
    LLVMValueRef corner = LLVMBuildAdd(
        b, cg_imul(cg, plane, in_plane),
        LLVMBuildAdd(b, cg_imul(cg, ly.index, S * q->w), cg_imul(cg, lx.index, S), ""), "");
    LLVMValueRef acc = NULL, best_at = NULL, g = NULL;
    if (op == IR_MAXPOOL || op == IR_MAXPOOL_GRAD) { /* the first maximum, as PyTorch */
        acc = cg_var(cg, "best", cg_load(cg, x, corner, ""));
        best_at = cg_var(cg, "best_at", corner);
    } else if (op == IR_AVGPOOL) {
        acc = cg_var(cg, "sum", cg_real(cg, 0));
    } else {
        g = cg_mul(cg, cg_load(cg, dy, o, ""), inv);
    }
    Loop li = cg_loop_begin(cg, cg_i64(cg, q->kh), "i");
    Loop lj = cg_loop_begin(cg, cg_i64(cg, q->kw), "j");
    LLVMValueRef at =
        LLVMBuildAdd(b, corner, LLVMBuildAdd(b, cg_imul(cg, li.index, q->w), lj.index, ""), "");
    if (best_at) {
        LLVMValueRef v = cg_load(cg, x, at, ""), cur = LLVMBuildLoad2(b, cg->T, acc, "");
        LLVMValueRef better = LLVMBuildFCmp(b, LLVMRealOGT, v, cur, "");
        LLVMBuildStore(b, cg_select(cg, better, v, cur), acc);
        LLVMBuildStore(b, cg_select(cg, better, at, LLVMBuildLoad2(b, cg->i64, best_at, "")),
                       best_at);
    } else if (acc) {
        LLVMBuildStore(b, cg_add(cg, LLVMBuildLoad2(b, cg->T, acc, ""), cg_load(cg, a, at, "")),
                       acc);
    } else {
        cg_store(cg, cg_add(cg, cg_load(cg, out, at, ""), g), out, at);
    }
    cg_loop_end(cg, &lj);
    cg_loop_end(cg, &li);
    if (op == IR_MAXPOOL) cg_store(cg, LLVMBuildLoad2(b, cg->T, acc, ""), out, o);
    if (op == IR_AVGPOOL) cg_store(cg, cg_mul(cg, LLVMBuildLoad2(b, cg->T, acc, ""), inv), out, o);
    if (op == IR_MAXPOOL_GRAD) {
        LLVMValueRef to = LLVMBuildLoad2(b, cg->i64, best_at, "");
        cg_store(cg, cg_add(cg, cg_load(cg, out, to, ""), cg_load(cg, dy, o, "")), out, to);
    }
    cg_loop_end(cg, &lx);
    cg_loop_end(cg, &ly);
    cg_loop_end(cg, &lp);
}

/* Pooling, upsampling and their adjoints: tasks of planes on the caller's
 * threads (exec), a fixed number of planes each (about PLAN_TASK_ELEMS
 * input values), so the bits do not depend on the threads. The task
 * function — (env = {a, dy, out, planes}, t) — is its layer's and op's. */
static void pool_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    ConvGeom q = conv_geom(&B->g->model->layers[n->layer]);
    long big_plane = (long)q.h * q.w > (long)q.oh * q.ow ? (long)q.h * q.w : (long)q.oh * q.ow;
    long group = (PLAN_TASK_ELEMS + big_plane - 1) / big_plane;
    LLVMTypeRef fields[4] = {cg->T_ptr, cg->T_ptr, cg->T_ptr, cg->i64};
    LLVMTypeRef env_ty = LLVMStructTypeInContext(cg->ctx, fields, 4, 0);

    char name[300]; /* one per layer and op in the module: train, eval and encode share it */
    snprintf(name, sizeof name, "%s__%s_%d", cg->prefix, ir_op_names[n->op], n->layer);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (!fn) {
        CgAside saved;
        LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64};
        fn = cg_aside_begin(cg, name, params, 2, &saved);
        LLVMValueRef e =
            LLVMBuildBitCast(cg->b, LLVMGetParam(fn, 0), LLVMPointerType(env_ty, 0), "env");
        LLVMValueRef f[4];
        for (unsigned k = 0; k < 4; k++)
            f[k] =
                LLVMBuildLoad2(cg->b, fields[k], LLVMBuildStructGEP2(cg->b, env_ty, e, k, ""), "");
        LLVMValueRef p_lo = cg_imul(cg, LLVMGetParam(fn, 1), group);
        LLVMValueRef p_hi = cg_iadd(cg, p_lo, group);
        p_hi = cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, p_hi, f[3], ""), p_hi, f[3]);
        pool_planes(cg, n->op, &q, f[0], f[1], f[2], p_lo, p_hi);
        cg_aside_end(cg, &saved, n->loc);
    }

    LLVMValueRef planes = cg_imul(cg, B->batch, q.c);
    LLVMValueRef dy =
        n->op == IR_MAXPOOL_GRAD ? buf_ptr(B, B->p->loc[n->in[1]]) : LLVMConstNull(cg->T_ptr);
    LLVMValueRef vals[4] = {buf_ptr(B, B->p->loc[n->in[0]]), dy, buf_ptr(B, B->p->loc[i]), planes};
    LLVMValueRef env = cg_alloca_entry_of(cg, env_ty, "pool");
    for (unsigned k = 0; k < 4; k++)
        LLVMBuildStore(cg->b, vals[k], LLVMBuildStructGEP2(cg->b, env_ty, env, k, ""));
    LLVMValueRef ntasks =
        LLVMBuildSDiv(cg->b, cg_iadd(cg, planes, group - 1), cg_i64(cg, group), "");
    gemm_parallel_for(cg->mod, cg->b, B->exec, ntasks, fn, env);
}

void nest_kernel(Body *B, int i) {
    cg_debug_loc(B->cg, B->g->nodes[i].loc);
    switch (B->g->nodes[i].op) {
    case IR_CONV:
    case IR_CONV_T:
    case IR_CONV_W: {
        ConvGeom q = conv_geom(&B->g->model->layers[B->g->nodes[i].layer]);
        if (B->cg->opt.gemm == GEMM_AEC && !B->cg->opt.im2col && conv_winograd(&q))
            winograd_kernel(B, i);
        else
            conv_kernel(B, i);
        break;
    }
    default: pool_kernel(B, i); break;
    }
}
