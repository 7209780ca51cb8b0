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
#include "config.h" /* generated: AEC_VERSION, AEC_LLVM_VERSION */

/* ------------------------------------------------------------ the ABI table */

/* aec.h's AEC_MODEL_FIELDS as data. */
#define STRIP_(...) __VA_ARGS__
#define ARG_(type_, name_)                                                                         \
    { ABI_##type_, #name_ }
#define FIELD_(type_, name_) {.kind = ABI_##type_, .name = #name_},
#define ENTRY_(name_, ret_, args_)                                                                 \
    {.kind = ABI_ENTRY,                                                                            \
     .name = #name_,                                                                               \
     .ret = ABI_RET_##ret_,                                                                        \
     .args = (const AbiArg[]){STRIP_ args_},                                                       \
     .nargs = (int)(sizeof((const AbiArg[]){STRIP_ args_}) / sizeof(AbiArg))},
const AbiField abi_fields[] = {AEC_MODEL_FIELDS(FIELD_, ENTRY_, ARG_)};
const int abi_nfields = countof(abi_fields);
#undef STRIP_
#undef ARG_
#undef FIELD_
#undef ENTRY_

const AbiField *abi_entry(const char *name) {
    for (int i = 0; i < abi_nfields; i++)
        if (abi_fields[i].kind == ABI_ENTRY && !strcmp(abi_fields[i].name, name))
            return &abi_fields[i];
    internal_error("no entry point %s in aec.h's AEC_MODEL_FIELDS", name);
}

int abi_arg(const AbiField *e, const char *name) {
    for (int i = 0; i < e->nargs; i++)
        if (!strcmp(e->args[i].name, name)) return i;
    internal_error("entry point %s has no argument %s", e->name, name);
}

static LLVMTypeRef abi_type(Codegen *cg, AbiType t) {
    switch (t) {
    case ABI_BUF:
    case ABI_CBUF: return cg->T_ptr;
    case ABI_INT: return cg->i32;
    case ABI_U64: return cg->i64;
    case ABI_WS:
    case ABI_CWS:
    case ABI_EXEC: return cg->i8_ptr;
    default: internal_error("abi type %d is not an argument", t);
    }
}

/* A public entry point, its signature from the table; the builder at its entry. */
typedef struct Fn {
    const AbiField *e;
    LLVMValueRef fn;
} Fn;

static Fn entry_function(Codegen *cg, const char *entry) {
    Fn f = {abi_entry(entry), NULL};
    LLVMTypeRef params[16];
    ensure(f.e->nargs <= countof(params));
    for (int i = 0; i < f.e->nargs; i++)
        params[i] = abi_type(cg, f.e->args[i].type);
    char name[256];
    snprintf(name, sizeof name, "%s_%s", cg->prefix, entry);
    f.fn = cg_function(cg, name, f.e->ret == ABI_RET_SIZE ? cg->i64 : cg->i32, params, f.e->nargs,
                       false);
    for (int i = 0; i < f.e->nargs; i++)
        LLVMSetValueName2(LLVMGetParam(f.fn, (unsigned)i), f.e->args[i].name,
                          strlen(f.e->args[i].name));
    return f;
}

/* The argument `name` of the entry point being built. */
static LLVMValueRef arg(const Fn *f, const char *name) {
    return LLVMGetParam(f->fn, (unsigned)abi_arg(f->e, name));
}

/* The body of the Program's entry (kind, stage). */
static LLVMValueRef body_of(Codegen *cg, const Bodies *bo, GraphKind kind, int stage) {
    return bo->fn[program_entry(cg->prog, kind, stage) - cg->prog->entries];
}

/* Copy the train graph's new running statistics (OUT_BUFFER, in the plan's
 * workspace) into their tensors in dst: the params block (first 0), or a
 * block of the buffers alone (first: trainable_count, where they start in
 * params). */
static void copy_buffers(Codegen *cg, const Plan *p, LLVMValueRef dst_block, long first,
                         LLVMValueRef plan, LLVMValueRef batch) {
    const Graph *g = p->fusion->graph;
    for (int o = 0; o < g->nouts; o++) {
        if (g->outs[o].kind != OUT_BUFFER) continue;
        BufLoc l = p->loc[g->outs[o].node];
        ensure(l.base == BASE_WS);
        LLVMValueRef off =
            LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, batch, cg_i64(cg, l.off_batch), ""),
                         cg_i64(cg, l.off_const), "");
        LLVMValueRef src = cg_gep(cg, plan, off, "");
        const ParamTensor *t = &cg->model->tensors[g->outs[o].index];
        LLVMValueRef dst = cg_gep(cg, dst_block, cg_i64(cg, t->offset - first), t->name);
        Loop l2 = cg_loop_begin(cg, cg_i64(cg, t->numel), "buffer");
        cg_store(cg, cg_load(cg, src, l2.index, ""), dst, l2.index);
        cg_loop_end(cg, &l2);
    }
}

/* Call a graph body; the arguments not given (NULL) are null pointers or 0. */
static LLVMValueRef call_body(Codegen *cg, LLVMValueRef body, LLVMValueRef *args) {
    LLVMTypeRef fty = LLVMGlobalGetValueType(body), types[N_ARGS];
    LLVMGetParamTypes(fty, types);
    for (int a = 0; a < N_ARGS; a++)
        if (!args[a]) args[a] = LLVMConstNull(types[a]);
    return LLVMBuildCall2(cg->b, fty, body, args, N_ARGS, "");
}

/* exec->row_offset, or 0 for a NULL exec. */
static LLVMValueRef row_offset(Codegen *cg, LLVMValueRef exec) {
    LLVMTypeRef fields[] = {cg->i8_ptr, cg->i8_ptr, cg->i64}; /* parallel_for, pool, row_offset */
    LLVMTypeRef exec_t = LLVMStructTypeInContext(cg->ctx, fields, countof(fields), 0);
    LLVMValueRef v = cg_var(cg, "row_offset", cg_i64(cg, 0));
    If given = cg_if(cg, LLVMBuildIsNotNull(cg->b, exec, ""), "exec");
    LLVMValueRef p = LLVMBuildBitCast(cg->b, exec, LLVMPointerType(exec_t, 0), "");
    LLVMBuildStore(
        cg->b, LLVMBuildLoad2(cg->b, cg->i64, LLVMBuildStructGEP2(cg->b, exec_t, p, 2, ""), ""), v);
    cg_end_if(cg, &given);
    return LLVMBuildLoad2(cg->b, cg->i64, v, "row_offset");
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
 * scratch][the plan's buffers][a masked model's ones, see mask_arg][the
 * convolutions' later slots, ws_later_slots]. The
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
    LLVMValueRef off =
        LLVMBuildAdd(cg->b, cg_i64(cg, grads),
                     LLVMBuildMul(cg->b, batch64, cg_i64(cg, cg->xhat_scratch), ""), "");
    return cg_gep(cg, ws, off, "plan");
}

/* A masked model's mask argument: the caller's, or when it passes NULL, a
 * workspace region after the plan filled with ones (nothing missing).
 * NULL for a model without `loss ... masked`, which never reads it. */
static LLVMValueRef mask_arg(Codegen *cg, LLVMValueRef mask, LLVMValueRef ws,
                             LLVMValueRef batch64) {
    if (!cg->model->masked) return LLVMConstNull(cg->T_ptr);
    LLVMValueRef ones =
        cg_gep(cg, ws_region(cg, ws, batch64, 2),
               LLVMBuildAdd(cg->b, LLVMBuildMul(cg->b, batch64, cg_i64(cg, cg->ws_batch), ""),
                            cg_i64(cg, cg->ws_const), ""),
               "ones");
    LLVMValueRef none = LLVMBuildIsNull(cg->b, mask, "");
    LLVMValueRef count =
        LLVMBuildMul(cg->b, batch64, cg_i64(cg, shape_numel(cg->model->input)), "");
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
    bad = LLVMBuildOr(
        cg->b, bad,
        LLVMBuildFCmp(cg->b, LLVMRealOEQ, cg_math1(cg, "fabs", v, true), cg_real(cg, INFINITY), ""),
        "");
    cg_return_if(cg, bad, AEC_ENONFINITE);
}

/* The checks every entry point makes: the batch in range (when it takes
 * one), no NULL among the named buffers. */
static void check_args(Codegen *cg, const Fn *f, const char *const *nonnull) {
    for (int i = 0; i < f->e->nargs; i++)
        if (!strcmp(f->e->args[i].name, "batch")) check_batch(cg, arg(f, "batch"));
    for (; *nonnull; nonnull++)
        check_nonnull(cg, arg(f, *nonnull));
}

static void emit_entry_points(Codegen *cg, const Bodies *bo) {
    /* size_t NAME_workspace_size(int batch) */
    Fn f = entry_function(cg, "workspace_size");
    LLVMValueRef b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    LLVMValueRef elems = LLVMBuildAdd(
        cg->b,
        LLVMBuildMul(cg->b, b64, cg_i64(cg, cg->ws_batch + cg->xhat_scratch + ws_ones(cg)), ""),
        cg_i64(cg, cg->ws_const + round16(cg->trainable) + WS_METRICS), "");
    /* min(batch, CONV_SLOTS) − 1 later slots: none for a batch of one */
    LLVMValueRef later = cg_iadd(cg, conv_task_count(cg, b64), -1);
    elems = LLVMBuildAdd(cg->b, elems, LLVMBuildMul(cg->b, later, cg_i64(cg, cg->ws_slot), ""), "");
    LLVMValueRef bytes = LLVMBuildMul(cg->b, elems, cg_i64(cg, cg->opt.f64 ? 8 : 4), "");
    LLVMBuildRet(cg->b, LLVMBuildAdd(cg->b, bytes, cg_i64(cg, AEC_ALIGN), ""));
    bool opt = cg->prog->opt_slots > 0;

    /* train_step_ex: the train graph, then (the loss finite) the optimizer. */
    f = entry_function(cg, "train_step_ex");
    check_args(cg, &f,
               (const char *const[]){"params", "x", "loss", "ws", opt ? "opt_state" : NULL, NULL});
    b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    LLVMValueRef ws = aligned_ws(cg, arg(&f, "ws")), exec = arg(&f, "exec");
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef metrics = ws_region(cg, ws, b64, WS_REGION_METRICS), row0 = row_offset(cg, exec);
    LLVMValueRef targs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                  [ARG_X] = arg(&f, "x"),
                                  [ARG_GRADS] = grads,
                                  [ARG_WS] = plan,
                                  [ARG_LOSS] = metrics,
                                  [ARG_BATCH] = b64,
                                  [ARG_STEP] = arg(&f, "step"),
                                  [ARG_MASK] = mask_arg(cg, arg(&f, "mask"), ws, b64),
                                  [ARG_EXEC] = exec,
                                  [ARG_ROW0] = row0};
    call_body(cg, body_of(cg, bo, GRAPH_TRAIN, 0), targs);
    /* A non-finite loss leaves the parameters as they were. */
    check_finite(cg, copy_loss(cg, metrics, arg(&f, "loss")));
    copy_buffers(cg, program_entry(cg->prog, GRAPH_TRAIN, 0)->plan, arg(&f, "params"), 0, plan,
                 b64);
    LLVMValueRef oargs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                  [ARG_OPT] = arg(&f, "opt_state"),
                                  [ARG_GRADS] = grads,
                                  [ARG_WS] = plan,
                                  [ARG_BATCH] = b64,
                                  [ARG_STEP] = arg(&f, "step"),
                                  [ARG_EXEC] = exec};
    call_body(cg, body_of(cg, bo, GRAPH_OPTIM, 0), oargs);
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* loss_grad_ex: the train graph alone, the gradient into the caller's grad. */
    f = entry_function(cg, "loss_grad_ex");
    check_args(cg, &f, (const char *const[]){"params", "x", "loss", "grad", "ws", NULL});
    b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    ws = aligned_ws(cg, arg(&f, "ws"));
    exec = arg(&f, "exec");
    metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    row0 = row_offset(cg, exec);
    LLVMValueRef largs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                  [ARG_X] = arg(&f, "x"),
                                  [ARG_GRADS] = arg(&f, "grad"),
                                  [ARG_WS] = ws_region(cg, ws, b64, 2),
                                  [ARG_LOSS] = metrics,
                                  [ARG_BATCH] = b64,
                                  [ARG_STEP] = arg(&f, "step"),
                                  [ARG_MASK] = mask_arg(cg, arg(&f, "mask"), ws, b64),
                                  [ARG_EXEC] = exec,
                                  [ARG_ROW0] = row0};
    call_body(cg, body_of(cg, bo, GRAPH_TRAIN, 0), largs);
    copy_loss(cg, metrics, arg(&f, "loss"));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* running_stats (ABI 8): the running statistics the last loss_grad_ex
     * on this workspace and batch left in its plan, where train_step_ex
     * copies them from into params. A model without them has none to write. */
    f = entry_function(cg, "running_stats");
    bool buffers = cg->model->param_count > cg->model->trainable_count;
    check_args(cg, &f, (const char *const[]){"ws", buffers ? "out" : NULL, NULL});
    b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    ws = aligned_ws(cg, arg(&f, "ws"));
    copy_buffers(cg, program_entry(cg->prog, GRAPH_TRAIN, 0)->plan, arg(&f, "out"),
                 cg->model->trainable_count, ws_region(cg, ws, b64, 2), b64);
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* apply_grad: the optimizer from the caller's gradient. Its graph is
     * over the trainable block, not the batch: its workspace is batch 1's. */
    f = entry_function(cg, "apply_grad");
    check_args(cg, &f,
               (const char *const[]){"params", "grad", "ws", opt ? "opt_state" : NULL, NULL});
    ws = aligned_ws(cg, arg(&f, "ws"));
    LLVMValueRef aargs[N_ARGS] = {
        [ARG_PARAMS] = arg(&f, "params"), [ARG_OPT] = arg(&f, "opt_state"),
        [ARG_GRADS] = arg(&f, "grad"),    [ARG_WS] = ws_region(cg, ws, cg_i64(cg, 1), 2),
        [ARG_BATCH] = cg_i64(cg, 1),      [ARG_STEP] = arg(&f, "step"),
        [ARG_EXEC] = arg(&f, "exec")};
    call_body(cg, body_of(cg, bo, GRAPH_OPTIM, 0), aargs);
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* eval_ex: x_hat may be NULL (then the workspace's scratch). */
    f = entry_function(cg, "eval_ex");
    check_args(cg, &f, (const char *const[]){"params", "x", "loss", "ws", NULL});
    b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    ws = aligned_ws(cg, arg(&f, "ws"));
    LLVMValueRef xhat = arg(&f, "x_hat");
    xhat = cg_select(cg, LLVMBuildIsNull(cg->b, xhat, ""), ws_region(cg, ws, b64, 1), xhat);
    metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    exec = arg(&f, "exec");
    LLVMValueRef eargs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                  [ARG_X] = arg(&f, "x"),
                                  [ARG_WS] = ws_region(cg, ws, b64, 2),
                                  [ARG_XHAT] = xhat,
                                  [ARG_LOSS] = metrics,
                                  [ARG_BATCH] = b64,
                                  [ARG_MASK] = mask_arg(cg, arg(&f, "mask"), ws, b64),
                                  [ARG_EXEC] = exec,
                                  [ARG_ROW0] = row_offset(cg, exec)};
    call_body(cg, body_of(cg, bo, GRAPH_EVAL, 0), eargs);
    copy_loss(cg, metrics, arg(&f, "loss"));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));

    /* encode_ex(params, x, code, batch, ws, exec), decode_ex(params, code, x_hat, ...) */
    for (int dec = 0; dec < 2; dec++) {
        f = entry_function(cg, dec ? "decode_ex" : "encode_ex");
        const char *in = dec ? "code" : "x", *out = dec ? "x_hat" : "code";
        check_args(cg, &f, (const char *const[]){"params", in, out, "ws", NULL});
        b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
        ws = aligned_ws(cg, arg(&f, "ws"));
        exec = arg(&f, "exec");
        LLVMValueRef dargs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                      [ARG_X] = arg(&f, in),
                                      [ARG_WS] = ws_region(cg, ws, b64, 2),
                                      [ARG_BATCH] = b64,
                                      [ARG_EXEC] = exec,
                                      [ARG_ROW0] = row_offset(cg, exec)};
        dargs[dec ? ARG_XHAT : ARG_CODE] = arg(&f, out);
        call_body(cg, body_of(cg, bo, dec ? GRAPH_DECODE : GRAPH_ENCODE, 0), dargs);
        LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
    }

    /* Each entry point X with an X_ex is X_ex with a NULL exec. */
    for (int i = 0; i < abi_nfields; i++) {
        const AbiField *ex = &abi_fields[i];
        size_t len = strlen(ex->name);
        if (ex->kind != ABI_ENTRY || len < 4 || strcmp(ex->name + len - 3, "_ex")) continue;
        char base[64], name[256];
        snprintf(base, sizeof base, "%.*s", (int)(len - 3), ex->name);
        snprintf(name, sizeof name, "%s_%s", cg->prefix, ex->name);
        LLVMValueRef target = LLVMGetNamedFunction(cg->mod, name);
        f = entry_function(cg, base);
        ensure(target && f.e->nargs == ex->nargs - 1 && ex->args[ex->nargs - 1].type == ABI_EXEC);
        LLVMValueRef args[16];
        for (int a = 0; a < f.e->nargs; a++) {
            ensure(f.e->args[a].type == ex->args[a].type);
            args[a] = LLVMGetParam(f.fn, (unsigned)a);
        }
        args[f.e->nargs] = LLVMConstNull(cg->i8_ptr);
        LLVMBuildRet(cg->b, LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(target), target, args,
                                           (unsigned)ex->nargs, ""));
    }
}

/* int NAME_metrics(ws, out): the loss and its terms (n_metrics values) of
 * the last train_step, loss_grad, eval or stage_step on this workspace. */
static void emit_metrics(Codegen *cg) {
    Fn f = entry_function(cg, "metrics");
    check_args(cg, &f, (const char *const[]){"ws", "out", NULL});
    LLVMValueRef ws = aligned_ws(cg, arg(&f, "ws"));
    ensure(cg->prog->nmetrics <= WS_METRICS);
    for (int i = 0; i < cg->prog->nmetrics; i++)
        cg_store(cg, cg_load(cg, ws, cg_i64(cg, i), ""), arg(&f, "out"), cg_i64(cg, i));
    LLVMBuildRet(cg->b, cg_i32(cg, AEC_OK));
}

/* int NAME_stage_step(stage, params, opt, x, mask, batch, step, loss, ws):
 * train_step for layer-wise pretraining stage `stage` (1..n_stages), which
 * updates only that stage's tensors; AEC_EUNSUPPORTED for another stage. */
static void emit_stage_step(Codegen *cg, const Bodies *bo) {
    Fn f = entry_function(cg, "stage_step");
    check_args(cg, &f,
               (const char *const[]){"params", "x", "loss", "ws",
                                     cg->prog->opt_slots > 0 ? "opt_state" : NULL, NULL});
    LLVMValueRef b64 = LLVMBuildSExt(cg->b, arg(&f, "batch"), cg->i64, "");
    LLVMValueRef ws = aligned_ws(cg, arg(&f, "ws"));
    LLVMValueRef grads = ws_region(cg, ws, b64, 0), plan = ws_region(cg, ws, b64, 2);
    LLVMValueRef metrics = ws_region(cg, ws, b64, WS_REGION_METRICS);
    for (int s = 1; s <= cg->model->nstages; s++) {
        If is = cg_if(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, arg(&f, "stage"), cg_i32(cg, s), ""),
                      "stage");
        LLVMValueRef args[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                     [ARG_X] = arg(&f, "x"),
                                     [ARG_GRADS] = grads,
                                     [ARG_WS] = plan,
                                     [ARG_LOSS] = metrics,
                                     [ARG_BATCH] = b64,
                                     [ARG_STEP] = arg(&f, "step"),
                                     [ARG_MASK] = mask_arg(cg, arg(&f, "mask"), ws, b64)};
        call_body(cg, body_of(cg, bo, GRAPH_TRAIN, s), args);
        check_finite(cg, copy_loss(cg, metrics, arg(&f, "loss")));
        LLVMValueRef oargs[N_ARGS] = {[ARG_PARAMS] = arg(&f, "params"),
                                      [ARG_OPT] = arg(&f, "opt_state"),
                                      [ARG_GRADS] = grads,
                                      [ARG_WS] = plan,
                                      [ARG_BATCH] = b64,
                                      [ARG_STEP] = arg(&f, "step")};
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
    Fn f = entry_function(cg, "init");
    check_args(cg, &f, (const char *const[]){"params", NULL});
    LLVMValueRef params = arg(&f, "params"), seed = arg(&f, "seed");
    for (int t = 0; t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        LLVMValueRef base = cg_gep(cg, params, cg_i64(cg, pt->offset), pt->name);
        LLVMValueRef stream = LLVMConstInt(cg->i64, IR_STREAM_INIT + (unsigned)t, 0);
        Loop l = cg_loop_begin(cg, cg_i64(cg, pt->numel), "init");
        LLVMValueRef v;
        bool is_var = strstr(pt->name, "running_var") != NULL;
        bool is_bn_weight =
            m->layers[pt->layer].kind == LY_BATCHNORM && m->layers[pt->layer].weight == t;
        if (pt->kind != AEC_TENSOR_WEIGHT || is_bn_weight) {
            v = LLVMConstReal(cg->f64, is_var || is_bn_weight ? 1.0 : 0.0);
        } else if (m->init == INIT_XAVIER) { /* U(-a, a), a = √(6 / (fan_in + fan_out)) */
            double a = sqrt(6.0 / (pt->fan_in + pt->fan_out));
            LLVMValueRef u = cg_uniform(cg, seed, stream, l.index);
            v = LLVMBuildFMul(cg->b,
                              LLVMBuildFSub(cg->b,
                                            LLVMBuildFMul(cg->b, u, LLVMConstReal(cg->f64, 2), ""),
                                            LLVMConstReal(cg->f64, 1), ""),
                              LLVMConstReal(cg->f64, a), "");
        } else { /* N(0, σ) by Box–Muller from two draws */
            double sd = m->init == INIT_HE ? sqrt(2.0 / pt->fan_in) : m->init_std;
            LLVMValueRef i2 = LLVMBuildShl(cg->b, l.index, cg_i64(cg, 1), "");
            LLVMValueRef u1 = cg_uniform(cg, seed, stream, i2);
            LLVMValueRef u2 =
                cg_uniform(cg, seed, stream, LLVMBuildOr(cg->b, i2, cg_i64(cg, 1), ""));
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
        for (unsigned a = 1; a < n; a++)
            args[a] = LLVMGetParam(fn, a - 1);
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
    for (int i = 0; i < 4; i++)
        e[i] = cg_i32(cg, i < n ? v[i] : 0);
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
    for (int i = 0; i < n; i++)
        v[i] = const_str(cg, cg->prog->metric_names[i], "metric_name");
    LLVMValueRef arr = LLVMConstArray(cg->i8_ptr, v, (unsigned)n);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), "metric_names");
    LLVMSetInitializer(g, arr);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return LLVMConstBitCast(g, cg->i8_ptr);
}

/* The layer table (ABI 7): aec_layer_info per layer, laid out exactly as
 * runtime/aec.h (no implicit padding: 128 bytes). LayerKind and ActKind
 * follow AEC_LAYER_* and AEC_ACT_* (asserted). */
static LLVMValueRef layer_table(Codegen *cg) {
    _Static_assert((int)LY_ACT == (int)AEC_LAYER_ACT && (int)ACT_GELU == (int)AEC_ACT_GELU,
                   "ABI enums");
    const Model *m = cg->model;
    LLVMTypeRef i32 = cg->i32, f64 = cg->f64, arr3 = LLVMArrayType(i32, 3);
    LLVMTypeRef fields[] = {
        i32, i32, f64, i32, i32, arr3, i32, arr3, i32, i32, i32,
        i32, i32, i32, i32, i32, i32,  i32, i32,  i32, i32, LLVMArrayType(i32, 2),
        f64, f64};
    LLVMTypeRef layer_t = LLVMStructTypeInContext(cg->ctx, fields, countof(fields), 0);
    LLVMValueRef *rows = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(m->nlayers + 1));
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = &m->layers[i];
        int part = i == m->latent_mu       ? AEC_PART_LATENT_MU
                   : i == m->latent_logvar ? AEC_PART_LATENT_LOGVAR
                   : i < m->n_encoder      ? AEC_PART_ENCODER
                                           : AEC_PART_DECODER;
        /* A tied layer uses the encoder layer's weight (its W^T). */
        int weight = l->tied_to >= 0 ? m->layers[l->tied_to].weight : l->weight;
        LLVMValueRef zero2[2] = {cg_i32(cg, 0), cg_i32(cg, 0)};
        LLVMValueRef v[] = {
            cg_i32(cg, l->kind),
            cg_i32(cg, l->act),
            LLVMConstReal(f64, l->act_alpha),
            cg_i32(cg, part),
            cg_i32(cg, l->in.ndim),
            LLVMConstArray(i32,
                           (LLVMValueRef[]){cg_i32(cg, l->in.dim[0]), cg_i32(cg, l->in.dim[1]),
                                            cg_i32(cg, l->in.dim[2])},
                           3),
            cg_i32(cg, l->out.ndim),
            LLVMConstArray(i32,
                           (LLVMValueRef[]){cg_i32(cg, l->out.dim[0]), cg_i32(cg, l->out.dim[1]),
                                            cg_i32(cg, l->out.dim[2])},
                           3),
            cg_i32(cg, l->units),
            cg_i32(cg, l->kh),
            cg_i32(cg, l->kw),
            cg_i32(cg, l->stride),
            cg_i32(cg, l->pad),
            cg_i32(cg, l->pad_w),
            cg_i32(cg, l->pad_extra),
            cg_i32(cg, l->pad_extra_w),
            cg_i32(cg, weight),
            cg_i32(cg, l->bias),
            cg_i32(cg, l->running_mean),
            cg_i32(cg, l->running_var),
            cg_i32(cg, l->tied_to >= 0),
            LLVMConstArray(i32, zero2, 2),
            LLVMConstReal(f64, l->p),
            LLVMConstReal(f64, l->eps)};
        ensure(countof(v) == countof(fields));
        rows[i] = LLVMConstNamedStruct(layer_t, v, countof(v));
    }
    LLVMValueRef arr = LLVMConstArray(layer_t, rows, (unsigned)m->nlayers);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, LLVMTypeOf(arr), "layers");
    LLVMSetInitializer(g, arr);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    return LLVMConstBitCast(g, cg->i8_ptr);
}

/* aec_train_config as an LLVM struct. */
static LLVMTypeRef train_type(Codegen *cg) {
    LLVMTypeRef i32 = cg->i32, i64 = cg->i64, f64 = cg->f64;
    LLVMTypeRef fields[] = {i32, i32, f64, f64, f64, f64, f64, f64,
                            i32, i32, i64, f64, i32, i32, f64};
    return LLVMStructTypeInContext(cg->ctx, fields, countof(fields), 0);
}

/* The LLVM type of each kind of field in the model table. */
static LLVMTypeRef field_type(Codegen *cg, AbiType t) {
    switch (t) {
    case ABI_U32:
    case ABI_I32: return cg->i32;
    case ABI_I64: return cg->i64;
    case ABI_I32X4: return LLVMArrayType(cg->i32, 4);
    case ABI_TRAIN: return train_type(cg);
    case ABI_STR:
    case ABI_STRS:
    case ABI_TENSORS:
    case ABI_LAYERS:
    case ABI_CPTR:
    case ABI_ENTRY: return cg->i8_ptr;
    default: internal_error("abi type %d is not a field", t);
    }
}

/* aec_model as an LLVM struct, from the table. */
static LLVMTypeRef table_type(Codegen *cg) {
    LLVMTypeRef *fields = arena_alloc(cg->arena, sizeof(LLVMTypeRef) * (size_t)abi_nfields);
    for (int i = 0; i < abi_nfields; i++)
        fields[i] = field_type(cg, abi_fields[i].kind);
    return LLVMStructTypeInContext(cg->ctx, fields, (unsigned)abi_nfields, 0);
}

long cg_table_offset(Codegen *cg, int field) {
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    long off = (long)LLVMOffsetOfElement(td, table_type(cg), (unsigned)field);
    LLVMDisposeTargetData(td);
    return off;
}

long cg_table_size(Codegen *cg) {
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    long size = (long)LLVMABISizeOfType(td, table_type(cg));
    LLVMDisposeTargetData(td);
    return size;
}

/* The value of model-table field f. */
static LLVMValueRef field_value(Codegen *cg, const AbiField *f, LLVMValueRef tensors,
                                LLVMValueRef train, const char *summary) {
    const Model *m = cg->model;
    const char *n = f->name;
    LLVMValueRef v = NULL;
    if (f->kind == ABI_ENTRY)
        v = fn_ptr(cg, n);
    else if (!strncmp(n, "reserved", 8))
        v = cg_i32(cg, 0);
    else if (!strcmp(n, "abi_version"))
        v = cg_i32(cg, AEC_ABI_VERSION);
    else if (!strcmp(n, "dtype"))
        v = cg_i32(cg, cg->opt.f64 ? AEC_F64 : AEC_F32);
    else if (!strcmp(n, "name"))
        v = const_str(cg, m->name, "model_name");
    else if (!strcmp(n, "input_ndim"))
        v = cg_i32(cg, m->input.ndim);
    else if (!strcmp(n, "input_shape"))
        v = const_i32_array(cg, m->input.dim, m->input.ndim);
    else if (!strcmp(n, "max_batch"))
        v = cg_i32(cg, AEC_MAX_BATCH);
    else if (!strcmp(n, "input_size"))
        v = cg_i64(cg, shape_numel(m->input));
    else if (!strcmp(n, "code_size"))
        v = cg_i64(cg, shape_numel(m->code));
    else if (!strcmp(n, "param_count"))
        v = cg_i64(cg, m->param_count);
    else if (!strcmp(n, "trainable_count"))
        v = cg_i64(cg, m->trainable_count);
    else if (!strcmp(n, "opt_state_count"))
        v = cg_i64(cg, (long)cg->prog->opt_slots * m->trainable_count);
    else if (!strcmp(n, "n_tensors"))
        v = cg_i32(cg, m->ntensors);
    else if (!strcmp(n, "tensors"))
        v = LLVMConstBitCast(tensors, cg->i8_ptr);
    else if (!strcmp(n, "train"))
        v = train;
    else if (!strcmp(n, "summary"))
        v = const_str(cg, summary, "summary");
    else if (!strcmp(n, "embedded_params"))
        v = cg->embedded ? LLVMConstBitCast(cg->embedded, cg->i8_ptr) : LLVMConstNull(cg->i8_ptr);
    else if (!strcmp(n, "n_metrics"))
        v = cg_i32(cg, cg->prog->nmetrics);
    else if (!strcmp(n, "n_stages"))
        v = cg_i32(cg, m->nstages);
    else if (!strcmp(n, "metric_names"))
        v = metric_names(cg);
    else if (!strcmp(n, "variational"))
        v = cg_i32(cg, m->latent_gaussian);
    else if (!strcmp(n, "masked"))
        v = cg_i32(cg, m->masked);
    else if (!strcmp(n, "n_layers"))
        v = cg_i32(cg, m->nlayers);
    else if (!strcmp(n, "n_encoder_layers"))
        v = cg_i32(cg, m->n_encoder);
    else if (!strcmp(n, "n_decoder_layers"))
        v = cg_i32(cg, m->n_decoder);
    else if (!strcmp(n, "latent_mu"))
        v = cg_i32(cg, m->latent_mu);
    else if (!strcmp(n, "latent_logvar"))
        v = cg_i32(cg, m->latent_logvar);
    else if (!strcmp(n, "layers"))
        v = layer_table(cg);
    else if (!strcmp(n, "producer"))
        v = const_str(cg, "aec " AEC_VERSION ", LLVM " AEC_LLVM_VERSION, "producer");
    else if (!strcmp(n, "gemm")) /* --gemm, resolved in cg_program */
        v = const_str(cg, cg->opt.gemm == GEMM_BLAS ? "blas" : "aec", "gemm");
    if (!v) internal_error("model table field %s has no value", n);
    ensure(LLVMTypeOf(v) == field_type(cg, f->kind));
    return v;
}

/* `const aec_model NAME_model`, laid out exactly as runtime/aec.h. */
static void emit_model_table(Codegen *cg, const char *summary) {
    const Model *m = cg->model;
    LLVMContextRef c = cg->ctx;
    LLVMTypeRef i8p = cg->i8_ptr, i32 = cg->i32, i64 = cg->i64, f64 = cg->f64;
    LLVMTypeRef arr4 = LLVMArrayType(i32, 4);

    LLVMTypeRef tensor_fields[] = {i8p, i32, arr4, i32, i32, i64, i64};
    LLVMTypeRef tensor_t = LLVMStructTypeInContext(c, tensor_fields, countof(tensor_fields), 0);
    LLVMValueRef *tensors =
        arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)(m->ntensors + 1));
    for (int t = 0; t < m->ntensors; t++) {
        const ParamTensor *pt = &m->tensors[t];
        LLVMValueRef f[] = {const_str(cg, pt->name, "tensor_name"),
                            cg_i32(cg, pt->ndim),
                            const_i32_array(cg, pt->shape, pt->ndim),
                            cg_i32(cg, pt->kind),
                            cg_i32(cg, 0),
                            cg_i64(cg, pt->offset),
                            cg_i64(cg, pt->numel)};
        tensors[t] = LLVMConstNamedStruct(tensor_t, f, countof(f));
    }
    LLVMValueRef tarr = LLVMConstArray(tensor_t, tensors, (unsigned)m->ntensors);
    LLVMValueRef tglob = LLVMAddGlobal(cg->mod, LLVMTypeOf(tarr), "tensors");
    LLVMSetInitializer(tglob, tarr);
    LLVMSetGlobalConstant(tglob, 1);
    LLVMSetLinkage(tglob, LLVMPrivateLinkage);

    const aec_train_config *tc = &m->train;
    LLVMTypeRef train_t = train_type(cg);
    LLVMValueRef train_v[] = {cg_i32(cg, tc->optimizer),
                              cg_i32(cg, tc->loss),
                              LLVMConstReal(f64, tc->lr),
                              LLVMConstReal(f64, tc->momentum),
                              LLVMConstReal(f64, tc->beta1),
                              LLVMConstReal(f64, tc->beta2),
                              LLVMConstReal(f64, tc->eps),
                              LLVMConstReal(f64, tc->decay),
                              cg_i32(cg, tc->batch),
                              cg_i32(cg, tc->epochs),
                              LLVMConstInt(i64, tc->seed, 0),
                              LLVMConstReal(f64, tc->validation),
                              cg_i32(cg, tc->early_stop),
                              cg_i32(cg, tc->pretrain_epochs),
                              LLVMConstReal(f64, tc->min_delta)};

    LLVMValueRef train = LLVMConstNamedStruct(train_t, train_v, countof(train_v));
    LLVMTypeRef *model_fields = arena_alloc(cg->arena, sizeof(LLVMTypeRef) * (size_t)abi_nfields);
    LLVMValueRef *model_v = arena_alloc(cg->arena, sizeof(LLVMValueRef) * (size_t)abi_nfields);
    for (int i = 0; i < abi_nfields; i++) {
        model_v[i] = field_value(cg, &abi_fields[i], tglob, train, summary);
        model_fields[i] = LLVMTypeOf(model_v[i]);
    }
    LLVMTypeRef model_t = LLVMStructTypeInContext(c, model_fields, (unsigned)abi_nfields, 0);
    ensure(model_t == table_type(cg));
    char name[256];
    snprintf(name, sizeof name, "%s_model", cg->prefix);
    LLVMValueRef g = LLVMAddGlobal(cg->mod, model_t, name);
    LLVMSetInitializer(g, LLVMConstNamedStruct(model_t, model_v, (unsigned)abi_nfields));
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
