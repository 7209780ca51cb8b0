/* abi.c — the public face of a model object (DESIGN §4, docs/abi.md).
 *
 * Takes the graph bodies kernels.c made for the Program's entries;
 * produces the exported functions that check their arguments (batch range,
 * NULL buffers), lay out and align the workspace, and call the bodies —
 * workspace_size, train_step, loss_grad, eval, encode, decode, metrics,
 * stage_step, init and, with --embed-weights, the _embedded twins — and
 * the constant `<name>_model` table of runtime/aec.h.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cg.h"

/* The body of the Program's entry (kind, stage). */
static LLVMValueRef body_of(Codegen *cg, const Bodies *bo, GraphKind kind, int stage) {
    return bo->fn[program_entry(cg->prog, kind, stage) - cg->prog->entries];
}

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
    LLVMValueRef elems = LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, b64, cg_i64(cg, cg->prog->ws_batch + cg->xhat_scratch + ones), ""),
                                      cg_i64(cg, cg->prog->ws_const + round16(cg->trainable) + WS_METRICS), "");
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
    if (cg->prog->opt_slots > 0) check_nonnull(cg, LLVMGetParam(fn, 1));
    b64 = LLVMBuildSExt(cg->b, batch, i64, "");
    ws = aligned_ws(cg, LLVMGetParam(fn, 7));
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    LLVMValueRef args[N_ARGS] = {LLVMGetParam(fn, 0), null, LLVMGetParam(fn, 2), grads, plan, null, null,
                                 metrics, b64, LLVMGetParam(fn, 5), mask_arg(cg, LLVMGetParam(fn, 3), ws, b64)};
    call_body(cg, body_of(cg, bo, GRAPH_TRAIN, 0), args);
    /* A non-finite loss leaves the parameters as they were. */
    check_finite(cg, copy_loss(cg, metrics, LLVMGetParam(fn, 6)));
    copy_buffers(cg, program_entry(cg->prog, GRAPH_TRAIN, 0)->plan, LLVMGetParam(fn, 0), plan, b64);
    LLVMValueRef oargs[N_ARGS] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), null, grads, plan, null, null,
                                  null, b64, LLVMGetParam(fn, 5), null};
    call_body(cg, body_of(cg, bo, GRAPH_OPTIM, 0), oargs);
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
    call_body(cg, body_of(cg, bo, GRAPH_TRAIN, 0), largs);
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
    call_body(cg, body_of(cg, bo, GRAPH_EVAL, 0), eargs);
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
        call_body(cg, body_of(cg, bo, dec ? GRAPH_DECODE : GRAPH_ENCODE, 0), dargs);
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
    ensure(cg->prog->nmetrics <= WS_METRICS);
    for (int i = 0; i < cg->prog->nmetrics; i++)
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
        if (a == 1 || a == 3 || a == 7 || a == 8 || (a == 2 && cg->prog->opt_slots > 0))
            check_nonnull(cg, LLVMGetParam(fn, (unsigned)a));
    LLVMValueRef b64 = LLVMBuildSExt(cg->b, batch, cg->i64, "");
    LLVMValueRef ws = aligned_ws(cg, LLVMGetParam(fn, 8));
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef params = LLVMGetParam(fn, 1), opt = LLVMGetParam(fn, 2), step = LLVMGetParam(fn, 6);
    LLVMValueRef loss = LLVMGetParam(fn, 7), metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    for (int s = 1; s <= cg->model->nstages; s++) {
        If is = cg_if(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, stage, cg_i32(cg, s), ""), "stage");
        LLVMValueRef args[N_ARGS] = {params, null, LLVMGetParam(fn, 3), grads, plan, null, null, metrics, b64, step, mask_arg(cg, LLVMGetParam(fn, 4), ws, b64)};
        call_body(cg, body_of(cg, bo, GRAPH_TRAIN, s), args);
        check_finite(cg, copy_loss(cg, metrics, loss));
        LLVMValueRef oargs[N_ARGS] = {params, opt, null, grads, plan, null, null, null, b64, step, null};
        call_body(cg, body_of(cg, bo, GRAPH_OPTIM, s), oargs);
        LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
        cg_end_if(cg, &is);
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
            v = LLVMBuildFMul(cg->b, cg_box_muller(cg, u1, u2), LLVMConstReal(cg->f64, sd), "");
        }
        if (!cg->opt.f64) v = LLVMBuildFPTrunc(cg->b, v, cg->T, "");
        cg_store(cg, v, base, l.index);
        cg_loop_end(cg, &l);
    }
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
}

/* ------------------------------------------------------- embedded weights */

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
    int n = cg->prog->nmetrics;
    LLVMValueRef v[LOWER_MAX_METRICS];
    for (int i = 0; i < n; i++) v[i] = const_str(cg, cg->prog->metric_names[i], "metric_name");
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
        cg_i64(cg, m->trainable_count), cg_i64(cg, (long)cg->prog->opt_slots * m->trainable_count),
        cg_i32(cg, m->ntensors), cg_i32(cg, 0), LLVMConstBitCast(tglob, i8p),
        LLVMConstNamedStruct(train_t, train_v, countof(train_v)), const_str(cg, summary, "summary"),
        fn_ptr(cg, "workspace_size"), fn_ptr(cg, "init"), fn_ptr(cg, "encode"), fn_ptr(cg, "decode"),
        fn_ptr(cg, "train_step"), fn_ptr(cg, "loss_grad"), fn_ptr(cg, "eval"),
        cg->embedded ? LLVMConstBitCast(cg->embedded, i8p) : LLVMConstNull(i8p),
        cg_i32(cg, cg->prog->nmetrics), cg_i32(cg, m->nstages), metric_names(cg),
        cg_i32(cg, m->latent_gaussian), cg_i32(cg, 0), fn_ptr(cg, "stage_step"), fn_ptr(cg, "metrics"),
        cg_i32(cg, m->masked), cg_i32(cg, 0)};
    char name[256];
    snprintf(name, sizeof name, "%s_model", cg->prefix);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, model_t, name);
    LLVMSetInitializer(g, LLVMConstNamedStruct(model_t, model_v, countof(model_v)));
    LLVMSetGlobalConstant(g, 1);
}

void emit_abi(Codegen *cg, const Bodies *bo) {
    emit_entry_points(cg, bo);
    emit_stage_step(cg, bo);
    emit_metrics(cg);
    if (cg->opt.embed) emit_embedded(cg);
    emit_init(cg);
    emit_model_table(cg, cg->prog->summary);
}
