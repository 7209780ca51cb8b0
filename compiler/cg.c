/* cg.c — the builder verbs the code generator is written in.
 *
 * Takes a Codegen (context, module, builder, types: emit.c sets them up);
 * produces LLVM instructions through the C API: memory access, math calls,
 * loops, if/else, stack variables, function definitions with their debug
 * scopes, and the BLAS calls (one cblas enum, one place building each
 * call). Control flow elsewhere in codegen goes through these verbs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

LLVMValueRef cg_gep(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name) {
    return LLVMBuildGEP2(cg->b, cg->T, base, &index, 1, name);
}

/* base + index (elements) */
LLVMValueRef cg_at(Codegen *cg, LLVMValueRef base, LLVMValueRef index) {
    return cg_gep(cg, base, index, "");
}

LLVMValueRef cg_load(Codegen *cg, LLVMValueRef base, LLVMValueRef index, const char *name) {
    return LLVMBuildLoad2(cg->b, cg->T, cg_gep(cg, base, index, ""), name);
}

void cg_store(Codegen *cg, LLVMValueRef v, LLVMValueRef base, LLVMValueRef index) {
    LLVMBuildStore(cg->b, v, cg_gep(cg, base, index, ""));
}

/* Zero `count` elements at p. */
void cg_zero(Codegen *cg, LLVMValueRef p, LLVMValueRef count) {
    Loop l = cg_loop_begin(cg, count, "zero");
    cg_store(cg, cg_real(cg, 0), p, l.index);
    cg_loop_end(cg, &l);
}

/* Call an LLVM intrinsic or libm function on the element type. */
LLVMValueRef cg_call_math(Codegen *cg, const char *base, int nargs, LLVMValueRef *args,
                          bool intrinsic) {
    char name[64];
    if (intrinsic)
        snprintf(name, sizeof name, "llvm.%s.%s", base, cg->opt.f64 ? "f64" : "f32");
    else
        snprintf(name, sizeof name, "%s%s", base, cg->opt.f64 ? "" : "f");
    LLVMTypeRef params[2] = {cg->T, cg->T};
    LLVMTypeRef fty = LLVMFunctionType(cg->T, params, (unsigned)nargs, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, fty);
    return LLVMBuildCall2(cg->b, fty, f, args, (unsigned)nargs, "");
}

LLVMValueRef cg_math1(Codegen *cg, const char *name, LLVMValueRef x, bool intrinsic) {
    return cg_call_math(cg, name, 1, &x, intrinsic);
}

/* A libm function of doubles, whatever the element type (noise is drawn in f64). */
LLVMValueRef cg_math_f64(Codegen *cg, const char *name, LLVMValueRef x) {
    LLVMTypeRef fty = LLVMFunctionType(cg->f64, &cg->f64, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (!f) f = LLVMAddFunction(cg->mod, name, fty);
    return LLVMBuildCall2(cg->b, fty, f, &x, 1, "");
}

LLVMBasicBlockRef cg_block(Codegen *cg, const char *name) {
    return LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
}

Loop cg_loop_begin(Codegen *cg, LLVMValueRef end, const char *name) {
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

void cg_loop_end(Codegen *cg, Loop *l) {
    LLVMValueRef next = LLVMBuildAdd(cg->b, l->index, cg_i64(cg, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
    LLVMAddIncoming(l->index, &next, &latch, 1);
    LLVMBuildBr(cg->b, l->head);
    LLVMPositionBuilderAtEnd(cg->b, l->body);
}

/* A stack slot in the entry block, where mem2reg turns it into registers. */
LLVMValueRef cg_alloca_entry(Codegen *cg, const char *name) {
    return cg_alloca_entry_of(cg, cg->T, name);
}

LLVMValueRef cg_alloca_entry_of(Codegen *cg, LLVMTypeRef type, const char *name) {
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(tmp, first);
    else
        LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef slot = LLVMBuildAlloca(tmp, type, name);
    LLVMDisposeBuilder(tmp);
    return slot;
}

/* A stack variable of v's type in the entry block (mem2reg makes it a
 * register), initialized to v here. */
LLVMValueRef cg_var(Codegen *cg, const char *name, LLVMValueRef v) {
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(cg->fn);
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(tmp, first);
    else
        LLVMPositionBuilderAtEnd(tmp, entry);
    LLVMValueRef slot = LLVMBuildAlloca(tmp, LLVMTypeOf(v), name);
    LLVMDisposeBuilder(tmp);
    LLVMBuildStore(cg->b, v, slot);
    return slot;
}

/* Return `code` from the function when `cond` holds. */
If cg_if(Codegen *cg, LLVMValueRef cond, const char *name) {
    If c = {.then = cg_block(cg, name)};
    c.rest = cg_block(cg, "");
    LLVMBuildCondBr(cg->b, cond, c.then, c.rest);
    LLVMPositionBuilderAtEnd(cg->b, c.then);
    return c;
}

/* Branch to `to` unless the block already ends (a branch that returned). */
static void cg_br_open(Codegen *cg, LLVMBasicBlockRef to) {
    if (!LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(cg->b))) LLVMBuildBr(cg->b, to);
}

void cg_else(Codegen *cg, If *c) {
    ensure(!c->join);
    c->join = cg_block(cg, "");
    cg_br_open(cg, c->join);
    LLVMPositionBuilderAtEnd(cg->b, c->rest);
}

void cg_end_if(Codegen *cg, If *c) {
    LLVMBasicBlockRef after = c->join ? c->join : c->rest;
    cg_br_open(cg, after);
    LLVMPositionBuilderAtEnd(cg->b, after);
}

void cg_return_if(Codegen *cg, LLVMValueRef cond, int code) {
    LLVMBasicBlockRef fail = cg_block(cg, "fail"), ok = cg_block(cg, "ok");
    LLVMBuildCondBr(cg->b, cond, fail, ok);
    LLVMPositionBuilderAtEnd(cg->b, fail);
    LLVMBuildRet(cg->b, cg_i32(cg, code));
    LLVMPositionBuilderAtEnd(cg->b, ok);
}

/* With -g, what follows is attributed to spec line `loc` (the function's
 * own line when loc has none): gdb steps and perf annotates by spec line. */
void cg_debug_loc(Codegen *cg, Loc loc) {
    if (!cg->dib) return;
    int line = loc.line > 0 ? loc.line : cg->fn_line;
    LLVMMetadataRef md = LLVMDIBuilderCreateDebugLocation(
        cg->ctx, (unsigned)line, (unsigned)(loc.line > 0 ? loc.col : 0), cg->di_scope, NULL);
    LLVMSetCurrentDebugLocation2(cg->b, md);
}

/* A new function, the builder at its entry block. With -g it gets a
 * subprogram at the model's line, which is also its default location. */
LLVMValueRef cg_function(Codegen *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int n,
                         bool internal) {
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

LLVMValueRef cg_aside_begin(Codegen *cg, const char *name, LLVMTypeRef *params, int n,
                            CgAside *saved) {
    *saved = (CgAside){cg->fn, LLVMGetInsertBlock(cg->b), cg->di_scope};
    LLVMValueRef f = cg_function(cg, name, cg->void_t, params, n, true);
    LLVMAddAttributeAtIndex(
        f, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    return f;
}

void cg_aside_end(Codegen *cg, const CgAside *saved, Loc loc) {
    LLVMBuildRetVoid(cg->b);
    cg->fn = saved->caller;
    cg->di_scope = saved->scope;
    LLVMPositionBuilderAtEnd(cg->b, saved->at);
    if (cg->dib) cg_debug_loc(cg, loc);
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

/* CBLAS's enum values (cblas.h), the only copy. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

void cg_gemm_call(Codegen *cg, bool ta, bool tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
                  LLVMValueRef a, LLVMValueRef lda, LLVMValueRef b, LLVMValueRef ldb,
                  LLVMValueRef beta, LLVMValueRef c, LLVMValueRef ldc) {
    LLVMTypeRef params[14] = {cg->i32,   cg->i32, cg->i32,   cg->i32, cg->i32, cg->i32,   cg->T,
                              cg->T_ptr, cg->i32, cg->T_ptr, cg->i32, cg->T,   cg->T_ptr, cg->i32};
    LLVMTypeRef fty;
    LLVMValueRef f = cg_blas(cg, "gemm", params, 14, &fty);
    LLVMValueRef args[14] = {cg_i32(cg, CBLAS_ROW_MAJOR),
                             cg_i32(cg, ta ? CBLAS_TRANS : CBLAS_NO_TRANS),
                             cg_i32(cg, tb ? CBLAS_TRANS : CBLAS_NO_TRANS),
                             m,
                             n,
                             k,
                             cg_real(cg, 1),
                             a,
                             lda,
                             b,
                             ldb,
                             beta,
                             c,
                             ldc};
    LLVMBuildCall2(cg->b, fty, f, args, 14, "");
}

void cg_gemv_call(Codegen *cg, bool ta, LLVMValueRef m, LLVMValueRef n, LLVMValueRef a,
                  LLVMValueRef lda, LLVMValueRef x, LLVMValueRef y) {
    LLVMTypeRef params[12] = {cg->i32, cg->i32,   cg->i32, cg->i32, cg->T,     cg->T_ptr,
                              cg->i32, cg->T_ptr, cg->i32, cg->T,   cg->T_ptr, cg->i32};
    LLVMTypeRef fty;
    LLVMValueRef f = cg_blas(cg, "gemv", params, 12, &fty);
    LLVMValueRef args[12] = {cg_i32(cg, CBLAS_ROW_MAJOR),
                             cg_i32(cg, ta ? CBLAS_TRANS : CBLAS_NO_TRANS),
                             m,
                             n,
                             cg_real(cg, 1),
                             a,
                             lda,
                             x,
                             cg_i32(cg, 1),
                             cg_real(cg, 0),
                             y,
                             cg_i32(cg, 1)};
    LLVMBuildCall2(cg->b, fty, f, args, 12, "");
}

/* ------------------------------------------------------------ planned memory */

/* The address of a planned buffer: base + off_batch·batch + off_const. */
LLVMValueRef buf_ptr(Body *B, BufLoc l) {
    ensure(l.base != BASE_NONE);
    LLVMValueRef off =
        LLVMBuildAdd(B->cg->b, LLVMBuildMul(B->cg->b, B->batch, cg_i64(B->cg, l.off_batch), ""),
                     cg_i64(B->cg, l.off_const), "");
    return cg_gep(B->cg, B->base[l.base], off, "");
}

/* ------------------------------------------------------------ constant data */

/* `count` values of `el` bytes (the element type's, or f16's) as a
 * constant, AEC_ALIGN-aligned global, in the target's byte order (data is
 * in the host's, which the runtime requires be little-endian); exported or
 * private to the object. */
LLVMValueRef embed_global(Codegen *cg, const char *name, const void *data, size_t count, size_t el,
                          bool exported) {
    size_t bytes = count * el;
    const char *src = data;
    char *swapped = NULL;
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cg->tm);
    if (LLVMByteOrder(td) == LLVMBigEndian) {
        swapped = malloc(bytes);
        if (!swapped) internal_error("out of memory embedding %zu bytes", bytes);
        for (size_t i = 0; i < bytes; i++)
            swapped[i] = src[i / el * el + (el - 1 - i % el)];
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

/* The generated GEMM function of product s (compiler/gemm.c), made once per
 * distinct product in the module. */
LLVMValueRef generated_gemm(Codegen *cg, const GemmSpec *s) {
    for (int q = 0; q < cg->ngemms; q++)
        if (!memcmp(&cg->gemms[q].spec, s, sizeof *s)) return cg->gemms[q].fn;
    char name[300];
    snprintf(name, sizeof name, "%s__gemm%d_%c%c_%ldx%ldx%ld", cg->prefix, cg->ngemms,
             s->ta ? 't' : 'n', s->tb ? 't' : 'n', s->m, s->n, s->k);
    struct GemmFn g = {*s, gemm_emit(cg->mod, s, cg->gemm_target, name)};
    ARRAY_PUSH(cg->arena, cg->gemms, cg->ngemms, cg->gemm_cap, g);
    return g.fn;
}

/* Elements per sample of a masked model's ones (abi.c, mask_arg). */
long ws_ones(Codegen *cg) {
    return cg->model->masked ? round16(shape_numel(cg->model->input)) : 0;
}

LLVMValueRef ws_later_slots(Codegen *cg, LLVMValueRef plan, LLVMValueRef batch64) {
    LLVMValueRef per_batch =
        LLVMBuildMul(cg->b, batch64, cg_i64(cg, cg->ws_batch + ws_ones(cg)), "");
    return cg_gep(cg, plan, cg_iadd(cg, per_batch, cg->ws_const), "later_slots");
}

/* ------------------------------------------------------------- vectors */

/* The masked load or store intrinsic for vectors of vl. */
static LLVMValueRef masked_fn(Codegen *cg, bool store, int vl, LLVMTypeRef *fty) {
    const char *name = store ? "llvm.masked.store" : "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef V = LLVMVectorType(cg->T, (unsigned)vl), types[2] = {V, LLVMPointerType(V, 0)};
    *fty = LLVMIntrinsicGetType(cg->ctx, id, types, 2);
    return LLVMGetIntrinsicDeclaration(cg->mod, id, types, 2);
}
static LLVMValueRef lane_mask(Codegen *cg, int vl, int valid) {
    LLVMValueRef bits[64];
    for (int i = 0; i < vl; i++)
        bits[i] = LLVMConstInt(LLVMInt1TypeInContext(cg->ctx), i < valid, 0);
    return LLVMConstVector(bits, (unsigned)vl);
}
static LLVMValueRef vec_ptr(Codegen *cg, LLVMValueRef p, int vl) {
    return LLVMBuildBitCast(cg->b, p, LLVMPointerType(LLVMVectorType(cg->T, (unsigned)vl), 0), "");
}
static unsigned elem_bytes(Codegen *cg) {
    return cg->opt.f64 ? 8 : 4;
}

LLVMValueRef cg_vload(Codegen *cg, LLVMValueRef p, int vl, int valid) {
    LLVMTypeRef V = LLVMVectorType(cg->T, (unsigned)vl);
    if (valid >= vl) {
        LLVMValueRef v = LLVMBuildLoad2(cg->b, V, vec_ptr(cg, p, vl), "");
        LLVMSetAlignment(v, elem_bytes(cg));
        return v;
    }
    LLVMTypeRef fty;
    LLVMValueRef fn = masked_fn(cg, false, vl, &fty);
    LLVMValueRef args[4] = {vec_ptr(cg, p, vl), cg_i32(cg, elem_bytes(cg)),
                            lane_mask(cg, vl, valid), LLVMConstNull(V)};
    return LLVMBuildCall2(cg->b, fty, fn, args, 4, "");
}

void cg_vstore(Codegen *cg, LLVMValueRef v, LLVMValueRef p, int vl, int valid) {
    if (valid >= vl) {
        LLVMSetAlignment(LLVMBuildStore(cg->b, v, vec_ptr(cg, p, vl)), elem_bytes(cg));
        return;
    }
    LLVMTypeRef fty;
    LLVMValueRef fn = masked_fn(cg, true, vl, &fty);
    LLVMValueRef args[4] = {v, vec_ptr(cg, p, vl), cg_i32(cg, elem_bytes(cg)),
                            lane_mask(cg, vl, valid)};
    LLVMBuildCall2(cg->b, fty, fn, args, 4, "");
}

LLVMValueRef cg_lanes_strided(Codegen *cg, LLVMValueRef a, LLVMValueRef b, int first, int step,
                              int n) {
    LLVMValueRef idx[64];
    for (int i = 0; i < n; i++)
        idx[i] = cg_i32(cg, first + i * step);
    return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(idx, (unsigned)n), "");
}

LLVMValueRef cg_interleave(Codegen *cg, LLVMValueRef a, LLVMValueRef b, int vl) {
    LLVMValueRef idx[128];
    for (int l = 0; l < 2 * vl; l++)
        idx[l] = cg_i32(cg, l / 2 + (l % 2) * vl);
    return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(idx, (unsigned)(2 * vl)), "");
}

int cg_vector_lanes(Codegen *cg, long n) {
    int most = cg->gemm_target.vector_bits / (cg->opt.f64 ? 64 : 32), vl = 2;
    while (vl < n && vl < most)
        vl *= 2;
    return vl;
}

/* ------------------------------------------------- tasks of samples */

LLVMValueRef conv_task_count(Codegen *cg, LLVMValueRef batch64) {
    LLVMValueRef few = LLVMBuildICmp(cg->b, LLVMIntSLT, batch64, cg_i64(cg, CONV_SLOTS), "");
    return cg_select(cg, few, batch64, cg_i64(cg, CONV_SLOTS));
}

void conv_task_samples(Codegen *cg, LLVMValueRef task, LLVMValueRef batch64, LLVMValueRef tasks,
                       LLVMValueRef *lo, LLVMValueRef *hi) {
    LLVMBuilderRef b = cg->b;
    *lo = LLVMBuildUDiv(b, LLVMBuildMul(b, task, batch64, ""), tasks, "");
    *hi = LLVMBuildUDiv(b, LLVMBuildMul(b, cg_iadd(cg, task, 1), batch64, ""), tasks, "");
}

LLVMValueRef conv_task_slot(Codegen *cg, LLVMValueRef task, LLVMValueRef first, LLVMValueRef later,
                            long size) {
    LLVMValueRef at = cg_at(cg, later, cg_imul(cg, cg_iadd(cg, task, -1), size));
    return cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, task, cg_i64(cg, 0), ""), first, at);
}
