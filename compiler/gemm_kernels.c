/* gemm_kernels.c — the parts of a generated product, as LLVM IR.
 *
 * Takes the generator's state (gemm_gen.h: the spec, its tiling, the
 * types); emits the functions gemm.c assembles a product from: the packing
 * task (A's row panels, B's column panels, zero-padded; a transposed B by
 * in-register transposes), the register-blocked micro-kernel, the task that
 * runs it over a block of C's tiles for every K block, and the one-row
 * (matrix-vector) kernel. Every sum over k runs in increasing k, in one
 * task, so the bits do not depend on the thread count.
 */
#include "gemm_gen.h"

#include <stdio.h>
#include <string.h>

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
        for (int i = 0; i < mr; i++)
            store_t(G, load_t(G, at(G, src, i64c(G, i))), at(G, out, i64c(G, i)));
        loop_end(G, &lk);
    } else { /* A stored m × k: row by row, k contiguous */
        Loop li = loop(G, i64c(G, mr), "pi");
        LLVMValueRef src = at(G, a, mul(G, add(G, row0, li.index), d->lda));
        Loop lk = loop(G, d->k, "pk");
        store_t(G, load_t(G, at(G, src, lk.index)),
                at(G, dst, add(G, mulc(G, lk.index, mr), li.index)));
        loop_end(G, &lk);
        loop_end(G, &li);
    }
    if_else(G, &f);
    { /* the last, partial panel: element by element, zeros past m */
        Loop lk = loop(G, d->k, "pke");
        Loop li = loop(G, i64c(G, mr), "pie");
        LLVMValueRef row = add(G, row0, li.index);
        LLVMValueRef in = LLVMBuildICmp(G->b, LLVMIntSLT, row, d->m, "");
        LLVMValueRef idx = G->s->ta ? add(G, mul(G, lk.index, d->lda), row)
                                    : add(G, mul(G, row, d->lda), lk.index);
        idx = LLVMBuildSelect(G->b, in, idx, i64c(G, 0), "");
        LLVMValueRef v =
            LLVMBuildSelect(G->b, in, load_t(G, at(G, a, idx)), LLVMConstNull(G->T), "");
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
    LLVMValueRef lo_mask = LLVMConstVector(lo, (unsigned)vl),
                 hi_mask = LLVMConstVector(hi, (unsigned)vl);
    for (int round = 1; round < vl; round *= 2) {
        for (int i = 0; i < half; i++) {
            next[2 * i] = LLVMBuildShuffleVector(G->b, v[i], v[i + half], lo_mask, "");
            next[2 * i + 1] = LLVMBuildShuffleVector(G->b, v[i], v[i + half], hi_mask, "");
        }
        memcpy(v, next, sizeof(LLVMValueRef) * (size_t)vl);
    }
}

/* A column panel of a transposed op(B) (B stored n × k: column j of op(B)
 * is row j, k contiguous) from column col0: vl × vl blocks transposed in
 * registers, then the k past the last block. valid: the panel's columns
 * that exist (rows past them read as zeros), NULL: all nr. Block column by
 * block column, k inner: vl rows streamed at a time (all nr rows at once
 * were nr streams; fmnist_dense's first forward pack took 101 µs at two
 * threads, 44–79 this way, sixteenth session). */
static void pack_bt_panel(Gen *G, const Dims *d, LLVMValueRef b, LLVMValueRef dst,
                          LLVMValueRef col0, LLVMValueRef valid) {
    int nr = G->g.nr, vl = G->g.vl;
    unsigned align = G->s->f64 ? 8 : 4;
    LLVMValueRef last = addc(G, d->n, -1);
    LLVMValueRef kv = mulc(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), vl);
    /* the nv column blocks as a loop: one transpose in the IR, not nv
     * (a transpose is 64 shuffles at 16 lanes, slow to select) */
    Loop lb = loop(G, i64c(G, G->g.nv), "pjb");
    LLVMValueRef jb = mulc(G, lb.index, vl);
    LLVMValueRef src[64], in[64]; /* row jb + r of B (clamped to the last), and whether it exists */
    for (int r = 0; r < vl; r++) {
        LLVMValueRef j = addc(G, jb, r);
        in[r] = valid ? LLVMBuildICmp(G->b, LLVMIntSLT, j, valid, "") : NULL;
        LLVMValueRef col = add(G, col0, j);
        if (valid) col = imin(G, col, last);
        src[r] = at(G, b, mul(G, col, d->ldb));
    }
    Loop lk = loop(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), "pkv");
    LLVMValueRef k0 = mulc(G, lk.index, vl);
    LLVMValueRef rows[64];
    for (int r = 0; r < vl; r++) {
        rows[r] = load_v(G, at(G, src[r], k0), align);
        if (valid) rows[r] = LLVMBuildSelect(G->b, in[r], rows[r], LLVMConstNull(G->V), "");
    }
    transpose(G, rows);
    for (int q = 0; q < vl; q++)
        store_v(G, rows[q], at(G, dst, add(G, mulc(G, addc(G, k0, q), nr), jb)));
    loop_end(G, &lk);
    loop_end(G, &lb);
    Loop lj = loop(G, i64c(G, nr), "pj");
    LLVMValueRef col = add(G, col0, lj.index), exists = NULL;
    if (valid) {
        exists = LLVMBuildICmp(G->b, LLVMIntSLT, lj.index, valid, "");
        col = imin(G, col, last);
    }
    LLVMValueRef row = at(G, b, mul(G, col, d->ldb));
    Loop lt = loop_from(G, kv, d->k, "pkt");
    LLVMValueRef v = load_t(G, at(G, row, lt.index));
    if (valid) v = LLVMBuildSelect(G->b, exists, v, LLVMConstNull(G->T), "");
    store_t(G, v, at(G, dst, add(G, mulc(G, lt.index, nr), lj.index)));
    loop_end(G, &lt);
    loop_end(G, &lj);
}

/* Column panel p of op(B): dst[k][j] = op(B)[k][p·nr + j], zero past n. */
static void pack_b_panel(Gen *G, const Dims *d, LLVMValueRef b, LLVMValueRef p) {
    int nr = G->g.nr, vl = G->g.vl;
    LLVMValueRef dst = at(G, d->b_pack, G->direct_b ? i64c(G, 0) : mul(G, mulc(G, p, nr), d->k));
    LLVMValueRef col0 = mulc(G, p, nr);
    LLVMValueRef full = LLVMBuildICmp(G->b, LLVMIntSLE, addc(G, col0, nr), d->n, "");
    If f = if_begin(G, full, "b_full");
    if (!G->s->tb) { /* B stored k × n: nr contiguous values per k, whole vectors */
        Loop lk = loop(G, d->k, "pk");
        LLVMValueRef src = at(G, b, add(G, mul(G, lk.index, d->ldb), col0));
        LLVMValueRef out = at(G, dst, mulc(G, lk.index, nr));
        for (int v = 0; v < G->g.nv; v++)
            store_v(G, load_v(G, at(G, src, i64c(G, v * vl)), G->s->f64 ? 8 : 4),
                    at(G, out, i64c(G, v * vl)));
        loop_end(G, &lk);
    } else {
        pack_bt_panel(G, d, b, dst, col0, NULL);
    }
    if_else(G, &f);
    if (!G->s->tb) { /* the last, partial panel: its columns' lanes, zeros past n */
        LLVMValueRef valid = LLVMBuildSub(G->b, d->n, col0, "");
        Loop lk = loop(G, d->k, "pke");
        LLVMValueRef src = at(G, b, add(G, mul(G, lk.index, d->ldb), col0));
        LLVMValueRef out = at(G, dst, mulc(G, lk.index, nr));
        for (int v = 0; v < G->g.nv; v++)
            store_v(G, load_v_masked(G, at(G, src, i64c(G, v * vl)), addc(G, valid, -v * vl)),
                    at(G, out, i64c(G, v * vl)));
        loop_end(G, &lk);
    } else { /* transposed as the full ones, the missing rows as zeros */
        pack_bt_panel(G, d, b, dst, col0, LLVMBuildSub(G->b, d->n, col0, ""));
    }
    if_end(G, &f);
}

/* Panels per packing task: about 64 KB of packed data each. */
long gemm_pack_group(Gen *G, int width) {
    long per_panel = (long)width * (G->s->k > 0 ? G->s->k : 256);
    long g = (16384 + per_panel - 1) / per_panel;
    return g < 1 ? 1 : g;
}

/* True when m (n) leaves a partial last row (column) panel. */
static LLVMValueRef partial_rows(Gen *G, const Dims *d) {
    return LLVMBuildICmp(G->b, LLVMIntNE, LLVMBuildSRem(G->b, d->m, i64c(G, G->g.mr), ""),
                         i64c(G, 0), "");
}
static LLVMValueRef partial_cols(Gen *G, const Dims *d) {
    return LLVMBuildICmp(G->b, LLVMIntNE, LLVMBuildSRem(G->b, d->n, i64c(G, G->g.nr), ""),
                         i64c(G, 0), "");
}

/* Tasks that pack A: groups of panels, or with direct A one for a partial
 * last panel (none when m is a multiple of mr). */
LLVMValueRef gemm_pack_a_tasks(Gen *G, const Dims *d, LLVMValueRef group) {
    if (G->direct_a) return LLVMBuildZExt(G->b, partial_rows(G, d), G->i64, "");
    return LLVMBuildSDiv(G->b, LLVMBuildSub(G->b, add(G, d->mp, group), i64c(G, 1), ""), group, "");
}

/* Tasks that pack B: groups of panels, or with direct B one for a partial
 * last panel (none when n is a multiple of nr). */
LLVMValueRef gemm_pack_b_tasks(Gen *G, const Dims *d, LLVMValueRef group) {
    if (G->direct_b) return LLVMBuildZExt(G->b, partial_cols(G, d), G->i64, "");
    return LLVMBuildSDiv(G->b, LLVMBuildSub(G->b, add(G, d->np, group), i64c(G, 1), ""), group, "");
}

/* Phase 1's task t: tasks [0, na) pack A, the rest groups of B panels. */
LLVMValueRef gemm_pack_task(Gen *G, const char *name) {
    LLVMValueRef f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), G->arg_ptr, "arg");
    LLVMValueRef t = LLVMGetParam(f, 1);
    Dims d = arg_dims(G, arg);
    LLVMValueRef gb = arg_field(G, arg, ARG_B_GROUP);
    LLVMValueRef na = gemm_pack_a_tasks(G, &d, arg_field(G, arg, ARG_A_GROUP));
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
    if (G->direct_b) {
        pack_b_panel(G, &d, arg_field(G, arg, ARG_B), addc(G, d.np, -1));
    } else {
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

enum { KERNEL_UNROLL = 4 }; /* k per trip of the micro-kernel's loop; by 8 it spills */

/* Steps k .. k + steps − 1 of the micro-kernel: for each, nv vectors of B's
 * row k, mr broadcasts of A's column k, mr·nv FMAs from acc into next. */
static void kernel_steps(Gen *G, LLVMValueRef k, int steps, LLVMValueRef pa, LLVMValueRef a_k,
                         LLVMValueRef a_row, LLVMValueRef pb, LLVMValueRef kb,
                         const LLVMValueRef *acc, LLVMValueRef *next) {
    int mr = G->g.mr, nv = G->g.nv, vl = G->g.vl;
    LLVMValueRef brow0 = at(G, pb, mul(G, k, kb)), arow0 = at(G, pa, mul(G, k, a_k));
    LLVMValueRef undef = LLVMGetUndef(G->V),
                 zmask = LLVMConstNull(LLVMVectorType(G->i32, (unsigned)vl));
    LLVMValueRef cur[MAX_ACC];
    memcpy(cur, acc, sizeof(LLVMValueRef) * (size_t)(mr * nv));
    for (int u = 0; u < steps; u++) {
        LLVMValueRef brow = at(G, brow0, mulc(G, kb, u)), arow = at(G, arow0, mulc(G, a_k, u));
        LLVMValueRef bv[4];
        for (int v = 0; v < nv; v++) /* B's rows in place are not vector-aligned */
            bv[v] = load_v(G, at(G, brow, i64c(G, v * vl)), G->s->f64 ? 8 : 4);
        for (int i = 0; i < mr; i++) {
            LLVMValueRef ai = load_t(G, at(G, arow, mulc(G, a_row, i)));
            LLVMValueRef splat = LLVMBuildShuffleVector(
                G->b, LLVMBuildInsertElement(G->b, undef, ai, LLVMConstInt(G->i32, 0, 0), ""),
                undef, zmask, "a");
            for (int v = 0; v < nv; v++) {
                LLVMValueRef args[3] = {splat, bv[v], cur[i * nv + v]};
                cur[i * nv + v] = LLVMBuildCall2(G->b, G->fma_ty, G->fma, args, 3, "");
            }
        }
    }
    memcpy(next, cur, sizeof(LLVMValueRef) * (size_t)(mr * nv));
}

/* c[0..mr)[0..nr) (row stride ldc) = (load ? c : 0) + Σ_k a[i][k]·pb[k][j]
 * for k < kc: mr·nv accumulators in registers, k in increasing order.
 * a[i][k] is a packed panel's pa[k·mr + i], or A's own (direct):
 * pa[i·lda + k], or pa[k·lda + i] when A is stored transposed;
 * pb[k][j] is pb[k·kb + j]: kb = nr packed, B's row length in place. */
LLVMValueRef gemm_micro_kernel(Gen *G, const char *name, bool direct) {
    int mr = G->g.mr, nv = G->g.nv, vl = G->g.vl;
    LLVMTypeRef params[] = {G->T_ptr, G->T_ptr, G->i64,
                            G->T_ptr, G->i64,   LLVMInt1TypeInContext(G->ctx),
                            G->i64,   G->i64};
    LLVMValueRef f = new_function(G, name, LLVMFunctionType(G->void_t, params, 8, 0));
    LLVMValueRef kb = LLVMGetParam(f, 7), lda = LLVMGetParam(f, 6);
    /* a[i][k] = pa[i·a_row + k·a_k]: (1, mr) packed; in place (lda, 1), or
     * (1, lda) when A is stored transposed (k × m) */
    LLVMValueRef a_row = direct && !G->s->ta ? lda : i64c(G, 1);
    LLVMValueRef a_k = !direct ? i64c(G, mr) : G->s->ta ? lda : i64c(G, 1);
    LLVMValueRef pa = LLVMGetParam(f, 0), pb = LLVMGetParam(f, 1), kc = LLVMGetParam(f, 2);
    LLVMValueRef c = LLVMGetParam(f, 3), ldc = LLVMGetParam(f, 4), load_c = LLVMGetParam(f, 5);
    for (int i = 0; i < 4; i++) /* the packed panels and C never alias */
        if (i != 2)
            LLVMAddAttributeAtIndex(
                f, (unsigned)i + 1,
                LLVMCreateEnumAttribute(G->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(G->b);
    LLVMBasicBlockRef from_c = block(G, "load_c"), zero = block(G, "zero"),
                      start = block(G, "start");
    LLVMBuildCondBr(G->b, load_c, from_c, zero);
    LLVMPositionBuilderAtEnd(G->b, from_c);
    LLVMValueRef init_c[MAX_ACC];
    for (int i = 0; i < mr; i++) {
        LLVMValueRef row = at(G, c, mulc(G, ldc, i));
        for (int v = 0; v < nv; v++)
            init_c[i * nv + v] = load_v(G, at(G, row, i64c(G, v * vl)), G->s->f64 ? 8 : 4);
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
    /* k in steps of KERNEL_UNROLL, then one at a time: the loop's own
     * instructions (its counter and, with loop strength reduction off, the
     * addresses) are then shared by that many k. Not with more than 8 rows
     * of A read in place: their row pointers already fill the registers,
     * and unrolled they spill (16 × 1: 28 stack references → 88); nor with
     * NEON, whose 6 × 4 unrolled spills (8 → 60). */
    bool spills = (direct && !G->s->ta && mr > 8) || G->target.vector_bits < 256;
    int unroll = spills ? 1 : KERNEL_UNROLL;
    LLVMValueRef next[MAX_ACC], k_rest = i64c(G, 0);
    const LLVMValueRef *acc_rest = first;
    AccLoop l;
    if (unroll > 1) {
        l = acc_loop(G, LLVMBuildSub(G->b, kc, i64c(G, unroll - 1), ""), mr * nv, first, "k");
        kernel_steps(G, l.k, unroll, pa, a_k, a_row, pb, kb, l.acc, next);
        acc_loop_end(G, &l, next, unroll);
        k_rest = l.k;
        acc_rest = l.acc;
    }
    AccLoop r = acc_loop_from(G, k_rest, kc, mr * nv, acc_rest, "k1");
    kernel_steps(G, r.k, 1, pa, a_k, a_row, pb, kb, r.acc, next);
    acc_loop_end(G, &r, next, 1);
    LLVMValueRef *acc = r.acc;
    for (int i = 0; i < mr; i++) {
        LLVMValueRef row = at(G, c, mulc(G, ldc, i));
        for (int v = 0; v < nv; v++)
            store_v(G, acc[i * nv + v], at(G, row, i64c(G, v * vl)));
    }
    LLVMBuildRetVoid(G->b);
    return f;
}

/* ------------------------------------------------------------ compute task */

/* Phase 2's column blocks: about nc_panels panels each, and one more when
 * that makes the number of tasks even — two threads then share them
 * equally (a per-sample product of mnist_conv, 49 panels, was 13 tasks:
 * 7 for one thread, 6 for the other). Block b has panels [b·np/nb,
 * (b+1)·np/nb): the grid still depends on the shape and batch only. */
/* Phase 2's row blocks: ceil(row panels / mcp). */
static LLVMValueRef row_blocks(Gen *G, const Dims *d, LLVMValueRef mcp) {
    return LLVMBuildSDiv(G->b, addc(G, add(G, d->mp, mcp), -1), mcp, "");
}

LLVMValueRef gemm_col_blocks(Gen *G, const Dims *d, LLVMValueRef mcp, LLVMValueRef ncp) {
    LLVMValueRef nb = LLVMBuildSDiv(G->b, addc(G, add(G, d->np, ncp), -1), ncp, "");
    LLVMValueRef rows = row_blocks(G, d, mcp);
    LLVMValueRef odd = LLVMBuildTrunc(G->b, mul(G, rows, nb), LLVMInt1TypeInContext(G->ctx), "");
    LLVMValueRef more = LLVMBuildAnd(G->b, odd, LLVMBuildICmp(G->b, LLVMIntSLT, nb, d->np, ""), "");
    return add(G, nb, LLVMBuildZExt(G->b, more, G->i64, ""));
}

/* One tile: kernel k's direct variant on A in place where A is read so
 * and the tile has all mr rows (whole_rows; NULL: known), else its packed
 * one. */
static void call_kernel(Gen *G, MicroKernels k, LLVMValueRef whole_rows, LLVMValueRef a_in,
                        LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef kc, LLVMValueRef c,
                        LLVMValueRef ldc, LLVMValueRef load_c, LLVMValueRef lda, LLVMValueRef kb) {
    LLVMTypeRef ty = LLVMGlobalGetValueType(k.packed);
    LLVMValueRef direct_args[8] = {a_in, pb, kc, c, ldc, load_c, lda, kb};
    LLVMValueRef packed_args[8] = {pa, pb, kc, c, ldc, load_c, lda, kb};
    if (!k.direct) {
        LLVMBuildCall2(G->b, ty, k.packed, packed_args, 8, "");
    } else if (!whole_rows) {
        LLVMBuildCall2(G->b, ty, k.direct, direct_args, 8, "");
    } else {
        If f_rows = if_begin(G, whole_rows, "rows");
        LLVMBuildCall2(G->b, ty, k.direct, direct_args, 8, "");
        if_else(G, &f_rows);
        LLVMBuildCall2(G->b, ty, k.packed, packed_args, 8, "");
        if_end(G, &f_rows);
    }
}

/* An edge tile (rows × cols of C, fewer than mr × nr) through the buffer,
 * copying only C's part in and out, by kernel k. */
static void edge_tile(Gen *G, MicroKernels k, LLVMValueRef whole_rows, LLVMValueRef a_in,
                      LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef kc, LLVMValueRef ctile,
                      LLVMValueRef ldc, LLVMValueRef load_c, LLVMValueRef lda, LLVMValueRef kb,
                      LLVMValueRef buf, LLVMValueRef rows, LLVMValueRef cols) {
    int nr = G->g.nr, vl = G->g.vl;
    If f_in = if_begin(G, load_c, "edge_in");
    {
        Loop li = loop(G, rows, "ei");
        LLVMValueRef from = at(G, ctile, mul(G, li.index, ldc));
        LLVMValueRef to = at(G, buf, mulc(G, li.index, nr));
        for (int v = 0; v < k.nv; v++)
            store_v(G, load_v_masked(G, at(G, from, i64c(G, v * vl)), addc(G, cols, -v * vl)),
                    at(G, to, i64c(G, v * vl)));
        loop_end(G, &li);
    }
    if_else(G, &f_in);
    if_end(G, &f_in);
    call_kernel(G, k, whole_rows, a_in, pa, pb, kc, buf, i64c(G, nr), load_c, lda, kb);
    Loop li = loop(G, rows, "eo");
    LLVMValueRef from = at(G, buf, mulc(G, li.index, nr));
    LLVMValueRef to = at(G, ctile, mul(G, li.index, ldc));
    for (int v = 0; v < k.nv; v++)
        store_v_masked(G, load_v(G, at(G, from, i64c(G, v * vl)), G->s->f64 ? 8 : 4),
                       at(G, to, i64c(G, v * vl)), addc(G, cols, -v * vl));
    loop_end(G, &li);
}

/* Phase 2's task t: block (t mod blocks_m, t / blocks_m) of tiles. */
LLVMValueRef gemm_tile_task(Gen *G, const char *name, MicroKernels full, MicroKernels edge) {
    int mr = G->g.mr, nr = G->g.nr, vl = G->g.vl;
    LLVMValueRef f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), G->arg_ptr, "arg");
    LLVMValueRef t = LLVMGetParam(f, 1);
    /* the edge buffer, in the entry block */
    LLVMValueRef edge_buf = LLVMBuildAlloca(G->b, LLVMArrayType(G->T, (unsigned)(mr * nr)), "edge");
    LLVMSetAlignment(edge_buf, 64);
    edge_buf = LLVMBuildBitCast(G->b, edge_buf, G->T_ptr, "");
    LLVMValueRef c = arg_field(G, arg, ARG_C);
    Dims d = arg_dims(G, arg);
    LLVMValueRef mcp = arg_field(G, arg, ARG_MC_PANELS), ncp = arg_field(G, arg, ARG_NC_PANELS);
    LLVMValueRef kc_max = arg_field(G, arg, ARG_KC);
    LLVMValueRef blocks_n = gemm_col_blocks(G, &d, mcp, ncp);
    /* consecutive tasks — one thread's share of the pool — go down a
     * column of blocks, so they read one strip of B while the row blocks
     * of A stay in L2 (across the row first, every task read a new strip:
     * W1's step 1-2 % slower at 2 threads on Sapphire Rapids) */
    LLVMValueRef blocks_m = row_blocks(G, &d, mcp);
    LLVMValueRef bm = LLVMBuildSRem(G->b, t, blocks_m, ""),
                 bn = LLVMBuildSDiv(G->b, t, blocks_m, "");
    LLVMValueRef ip0 = mul(G, bm, mcp), ip1 = imin(G, add(G, ip0, mcp), d.mp);
    LLVMValueRef jp0 = LLVMBuildSDiv(G->b, mul(G, bn, d.np), blocks_n, "");
    LLVMValueRef jp1 = LLVMBuildSDiv(G->b, mul(G, addc(G, bn, 1), d.np), blocks_n, "");

    Loop lpc = loop(G, LLVMBuildSDiv(G->b, addc(G, add(G, d.k, kc_max), -1), kc_max, ""), "pc");
    LLVMValueRef k0 = mul(G, lpc.index, kc_max);
    LLVMValueRef kc = imin(G, kc_max, LLVMBuildSub(G->b, d.k, k0, ""));
    /* the first K block starts from zero (or C when accumulating) */
    LLVMValueRef load_c = G->s->accumulate
                              ? LLVMConstInt(LLVMInt1TypeInContext(G->ctx), 1, 0)
                              : LLVMBuildICmp(G->b, LLVMIntNE, lpc.index, i64c(G, 0), "");
    Loop ljp = loop_from(G, jp0, jp1, "jp");
    LLVMValueRef col0 = mulc(G, ljp.index, nr);
    LLVMValueRef cols = imin(G, i64c(G, nr), LLVMBuildSub(G->b, d.n, col0, ""));
    LLVMValueRef pb, kb = i64c(G, nr);
    if (G->direct_b) { /* whole panels in place, a partial one packed at panel 0 */
        LLVMValueRef whole_panel = LLVMBuildICmp(G->b, LLVMIntEQ, cols, i64c(G, nr), "");
        LLVMValueRef in_place = at(G, arg_field(G, arg, ARG_B), add(G, mul(G, k0, d.ldb), col0));
        pb = LLVMBuildSelect(G->b, whole_panel, in_place, at(G, d.b_pack, mulc(G, k0, nr)), "");
        kb = LLVMBuildSelect(G->b, whole_panel, d.ldb, kb, "");
    } else {
        pb = at(G, d.b_pack, add(G, mul(G, mulc(G, ljp.index, nr), d.k), mulc(G, k0, nr)));
    }
    Loop lip = loop_from(G, ip0, ip1, "ip");
    LLVMValueRef row0 = mulc(G, lip.index, mr);
    LLVMValueRef rows = imin(G, i64c(G, mr), LLVMBuildSub(G->b, d.m, row0, ""));
    LLVMValueRef pa =
        at(G, d.a_pack, add(G, G->direct_a ? i64c(G, 0) : mul(G, row0, d.k), mulc(G, k0, mr)));
    LLVMValueRef ctile = at(G, c, add(G, mul(G, row0, d.ldc), col0));
    LLVMValueRef whole_rows = LLVMBuildICmp(G->b, LLVMIntEQ, rows, i64c(G, mr), "");
    LLVMValueRef whole =
        LLVMBuildAnd(G->b, whole_rows, LLVMBuildICmp(G->b, LLVMIntEQ, cols, i64c(G, nr), ""), "");
    LLVMValueRef a_in = NULL; /* this row panel's A in place */
    if (full.direct)
        a_in = at(G, arg_field(G, arg, ARG_A),
                  G->s->ta ? add(G, mul(G, k0, d.lda), row0)   /* A stored k × m */
                           : add(G, mul(G, row0, d.lda), k0)); /* A stored m × k */
    If f_whole = if_begin(G, whole, "whole");
    call_kernel(G, full, NULL, a_in, pa, pb, kc, ctile, d.ldc, load_c, d.lda, kb);
    if_else(G, &f_whole);
    /* the last column panel, narrower: C itself when it is exactly the
     * kernel's width with all rows, else through the buffer */
    If f_narrow = {0}, f_exact = {0};
    if (edge.nv) {
        long width = (long)edge.nv * vl;
        LLVMValueRef narrow = LLVMBuildICmp(G->b, LLVMIntSLE, cols, i64c(G, width), "");
        f_narrow = if_begin(G, narrow, "narrow");
        LLVMValueRef exact = LLVMBuildAnd(
            G->b, whole_rows, LLVMBuildICmp(G->b, LLVMIntEQ, cols, i64c(G, width), ""), "");
        f_exact = if_begin(G, exact, "exact");
        call_kernel(G, edge, NULL, a_in, pa, pb, kc, ctile, d.ldc, load_c, d.lda, kb);
        if_else(G, &f_exact);
        edge_tile(G, edge, whole_rows, a_in, pa, pb, kc, ctile, d.ldc, load_c, d.lda, kb, edge_buf,
                  rows, cols);
        if_end(G, &f_exact);
        if_else(G, &f_narrow);
    }
    edge_tile(G, full, whole_rows, a_in, pa, pb, kc, ctile, d.ldc, load_c, d.lda, kb, edge_buf,
              rows, cols);
    if (edge.nv) if_end(G, &f_narrow);
    if_end(G, &f_whole);
    loop_end(G, &lip);
    loop_end(G, &ljp);
    loop_end(G, &lpc);
    /* the block is final: its epilogue, while it is in cache */
    gemm_call_epilogue(G, arg, mulc(G, ip0, mr), imin(G, mulc(G, ip1, mr), d.m), mulc(G, jp0, nr),
                       imin(G, mulc(G, jp1, nr), d.n), bm);
    LLVMBuildRetVoid(G->b);
    return f;
}

LLVMTypeRef gemm_epilogue_type(LLVMContextRef ctx) {
    LLVMTypeRef i64 = LLVMInt64TypeInContext(ctx);
    LLVMTypeRef params[] = {
        LLVMPointerType(LLVMInt8TypeInContext(ctx), 0), i64, i64, i64, i64, i64};
    return LLVMFunctionType(LLVMVoidTypeInContext(ctx), params, 6, 0);
}

void gemm_call_epilogue(Gen *G, LLVMValueRef arg, LLVMValueRef r0, LLVMValueRef r1, LLVMValueRef c0,
                        LLVMValueRef c1, LLVMValueRef block) {
    LLVMValueRef epi = arg_field(G, arg, ARG_EPI);
    If f_epi = if_begin(G, LLVMBuildIsNotNull(G->b, epi, ""), "epilogue");
    LLVMTypeRef ty = gemm_epilogue_type(G->ctx);
    LLVMValueRef args[6] = {arg_field(G, arg, ARG_EPI_ENV), r0, r1, c0, c1, block};
    LLVMBuildCall2(G->b, ty, LLVMBuildBitCast(G->b, epi, LLVMPointerType(ty, 0), ""), args, 6, "");
    if_else(G, &f_epi);
    if_end(G, &f_epi);
}

/* ------------------------------------------------------------------ GEMV */

/* Horizontal sum of a vector, lanes in a fixed order. */
static LLVMValueRef hsum(Gen *G, LLVMValueRef v) {
    LLVMValueRef sum = LLVMBuildExtractElement(G->b, v, LLVMConstInt(G->i32, 0, 0), "");
    for (int l = 1; l < G->g.vl; l++)
        sum = LLVMBuildFAdd(
            G->b, sum, LLVMBuildExtractElement(G->b, v, LLVMConstInt(G->i32, (unsigned)l, 0), ""),
            "");
    return sum;
}

static LLVMValueRef vfma(Gen *G, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return LLVMBuildCall2(G->b, G->fma_ty, G->fma, args, 3, "");
}
static LLVMValueRef splat(Gen *G, LLVMValueRef x) {
    LLVMValueRef undef = LLVMGetUndef(G->V),
                 zmask = LLVMConstNull(LLVMVectorType(G->i32, (unsigned)G->g.vl));
    return LLVMBuildShuffleVector(
        G->b, LLVMBuildInsertElement(G->b, undef, x, LLVMConstInt(G->i32, 0, 0), ""), undef, zmask,
        "");
}

/* A scalar stack slot in the function's entry block (mem2reg makes it a
 * register); never inside a loop, where each pass would grow the stack. */
static LLVMValueRef entry_alloca(Gen *G) {
    LLVMBuilderRef tmp = LLVMCreateBuilderInContext(G->ctx);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(G->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(tmp, first);
    else
        LLVMPositionBuilderAtEnd(tmp, entry);
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
        LLVMValueRef kv =
            mulc(G, LLVMBuildSDiv(G->b, d->k, i64c(G, vl), ""), vl); /* whole vectors of k */
        LLVMValueRef j_full = mulc(G, LLVMBuildSDiv(G->b, d->n, i64c(G, ROWS), ""), ROWS);
        /* for j in whole groups of ROWS, then the rest one by one (group size 1) */
        for (int pass = 0; pass < 2; pass++) {
            int rows = pass ? 1 : ROWS;
            Loop lj = pass ? loop_from(G, j_full, d->n, "gvr")
                           : loop(G, LLVMBuildSDiv(G->b, d->n, i64c(G, ROWS), ""), "gv");
            LLVMValueRef j0 = pass ? lj.index : mulc(G, lj.index, ROWS);
            AccLoop l = acc_loop(G, kv, rows, NULL, "gk");
            LLVMValueRef k = l.k, *acc = l.acc, next[ROWS];
            LLVMValueRef av;
            if (G->s->ta) { /* strided a: gather it element by element */
                av = LLVMGetUndef(G->V);
                for (int lane = 0; lane < vl; lane++)
                    av = LLVMBuildInsertElement(
                        G->b, av, load_t(G, at(G, a, mul(G, addc(G, k, lane), a_stride))),
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
                store_t(G,
                        LLVMBuildFAdd(G->b, load_t(G, slot),
                                      LLVMBuildFMul(G->b,
                                                    load_t(G, at(G, a, mul(G, lk.index, a_stride))),
                                                    load_t(G, at(G, row, lk.index)), ""),
                                      ""),
                        slot);
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
            next[v] =
                vfma(G, ak, load_v(G, at(G, row, i64c(G, v * vl)), G->s->f64 ? 8 : 4), acc[v]);
        acc_loop_end(G, &l, next, 1);
        for (int v = 0; v < NVEC; v++) {
            LLVMValueRef dst = at(G, c, addc(G, j0, v * vl)), val = acc[v];
            if (G->s->accumulate)
                val = LLVMBuildFAdd(G->b, load_v(G, dst, G->s->f64 ? 8 : 4), val, "");
            store_v(G, val, dst);
        }
    }
    loop_end(G, &lj);
    Loop lc = loop_from(G, mulc(G, jb_full, block_cols), d->n, "gnt");
    LLVMValueRef slot = entry_alloca(G);
    store_t(G, LLVMConstNull(G->T), slot);
    Loop lk = loop(G, d->k, "gkt");
    store_t(G,
            LLVMBuildFAdd(
                G->b, load_t(G, slot),
                LLVMBuildFMul(G->b, load_t(G, at(G, a, mul(G, lk.index, a_stride))),
                              load_t(G, at(G, b, add(G, mul(G, lk.index, d->ldb), lc.index))), ""),
                ""),
            slot);
    loop_end(G, &lk);
    LLVMValueRef v = load_t(G, slot), dst = at(G, c, lc.index);
    if (G->s->accumulate) v = LLVMBuildFAdd(G->b, load_t(G, dst), v, "");
    store_t(G, v, dst);
    loop_end(G, &lc);
}

/* The GEMV as a function of (a, b, c, n, k, lda, ldb), shared by the
 * products of one transposition: its name is its key. */
LLVMValueRef gemm_gemv_function(Gen *G) {
    char name[64];
    snprintf(name, sizeof name, "aec.gemv.%s.%d.%c%c%s", G->s->f64 ? "f64" : "f32", G->g.vl,
             G->s->ta ? 't' : 'n', G->s->tb ? 't' : 'n', G->s->accumulate ? ".acc" : "");
    LLVMValueRef f = LLVMGetNamedFunction(G->mod, name);
    if (f) return f;
    LLVMTypeRef params[] = {G->T_ptr, G->T_ptr, G->T_ptr, G->i64, G->i64, G->i64, G->i64};
    f = new_function(G, name, LLVMFunctionType(G->void_t, params, 7, 0));
    Dims d = {.m = i64c(G, 1),
              .n = LLVMGetParam(f, 3),
              .k = LLVMGetParam(f, 4),
              .lda = LLVMGetParam(f, 5),
              .ldb = LLVMGetParam(f, 6)};
    gemv_body(G, &d, LLVMGetParam(f, 0), LLVMGetParam(f, 1), LLVMGetParam(f, 2));
    LLVMBuildRetVoid(G->b);
    return f;
}

/* The one-row product as tasks of GEMV_TASK_COLS columns of C (rows of a
 * transposed B, 64 × k contiguous), one task under GEMV_MIN_WORK
 * multiply-adds: each column's sum is the same whatever its task, so the
 * bits do not depend on the grid or the threads, and on two threads each
 * core reads its half of the weights, which its L2 then keeps from call
 * to call (fmnist_dense's 1.9 MB encoder does not fit one core's 1 MB:
 * its batch-1 encode 18.6 → 10.7 µs at two threads, sixteenth session). 64 is
 * a whole number of the !tb body's column blocks on every target. */
enum { GEMV_TASK_COLS = 64, GEMV_MIN_WORK = 1 << 15 };

static LLVMValueRef gemv_task_cols(Gen *G, LLVMValueRef n, LLVMValueRef k) {
    LLVMValueRef small = LLVMBuildICmp(G->b, LLVMIntSLT, mul(G, n, k), i64c(G, GEMV_MIN_WORK), "");
    return LLVMBuildSelect(G->b, small, n, i64c(G, GEMV_TASK_COLS), "");
}

static LLVMValueRef gemv_task(Gen *G, LLVMValueRef gemv) {
    char name[80];
    snprintf(name, sizeof name, "%s.task", LLVMGetValueName(gemv));
    LLVMValueRef f = LLVMGetNamedFunction(G->mod, name);
    if (f) return f;
    f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), G->arg_ptr, "");
    LLVMValueRef n = arg_field(G, arg, ARG_N), k = arg_field(G, arg, ARG_K);
    LLVMValueRef ldb = arg_field(G, arg, ARG_LDB), cols = gemv_task_cols(G, n, k);
    LLVMValueRef j0 = mul(G, LLVMGetParam(f, 1), cols), j1 = imin(G, add(G, j0, cols), n);
    LLVMValueRef b = at(G, arg_field(G, arg, ARG_B), G->s->tb ? mul(G, j0, ldb) : j0);
    LLVMValueRef args[7] = {arg_field(G, arg, ARG_A),
                            b,
                            at(G, arg_field(G, arg, ARG_C), j0),
                            LLVMBuildSub(G->b, j1, j0, ""),
                            k,
                            arg_field(G, arg, ARG_LDA),
                            ldb};
    LLVMBuildCall2(G->b, LLVMGlobalGetValueType(gemv), gemv, args, 7, "");
    LLVMBuildRetVoid(G->b);
    return f;
}

void gemm_run_gemv(Gen *G, LLVMValueRef exec, LLVMValueRef arg, const Dims *d) {
    LLVMBasicBlockRef here = LLVMGetInsertBlock(G->b); /* the functions below move the builder */
    LLVMValueRef fn = G->fn, task = gemv_task(G, gemm_gemv_function(G));
    G->fn = fn;
    LLVMPositionBuilderAtEnd(G->b, here);
    LLVMValueRef cols = gemv_task_cols(G, d->n, d->k);
    LLVMValueRef tasks =
        LLVMBuildSDiv(G->b, LLVMBuildSub(G->b, add(G, d->n, cols), i64c(G, 1), ""), cols, "");
    gemm_run_tasks(G, exec, tasks, task, LLVMBuildBitCast(G->b, arg, G->i8p, ""));
}

/* ---------------------------------------------------------------- tasks */

/* `void aec.run_tasks(exec, n, task, arg)`, the module's one: exec's
 * parallel_for(pool, n, task, arg), or the tasks in order without one. A
 * call of it per region, not the test and the loop inline, keeps the graph
 * bodies (a training step issues some 60 regions) straight lines: inline,
 * the optimizer threaded jumps from each region's test to the next one's,
 * and the tangle was a third of mnist_conv's train body. */
static void run_tasks_body(Gen *G, LLVMValueRef exec, LLVMValueRef n, LLVMValueRef task,
                           LLVMValueRef arg) {
    LLVMTypeRef pfor_params[] = {G->i8p, G->i64, LLVMPointerType(G->task_ty, 0), G->i8p};
    LLVMTypeRef pfor_ty = LLVMFunctionType(G->void_t, pfor_params, 4, 0);
    LLVMTypeRef pfor_ptr = LLVMPointerType(pfor_ty, 0);
    /* aec_exec: { parallel_for, pool, row_offset, reserved[4] } */
    LLVMTypeRef exec_fields[] = {pfor_ptr, G->i8p};
    LLVMTypeRef exec_ty = LLVMStructTypeInContext(G->ctx, exec_fields, 2, 0);
    LLVMValueRef ex = LLVMBuildBitCast(G->b, exec, LLVMPointerType(exec_ty, 0), "");
    LLVMValueRef has_exec = LLVMBuildIsNotNull(G->b, exec, "");
    If f_ex = if_begin(G, has_exec, "exec");
    LLVMValueRef pfor =
        LLVMBuildLoad2(G->b, pfor_ptr, LLVMBuildStructGEP2(G->b, exec_ty, ex, 0, ""), "pfor");
    LLVMValueRef pool =
        LLVMBuildLoad2(G->b, G->i8p, LLVMBuildStructGEP2(G->b, exec_ty, ex, 1, ""), "pool");
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

static LLVMValueRef run_tasks_function(Gen *G) {
    LLVMValueRef f = LLVMGetNamedFunction(G->mod, "aec.run_tasks");
    if (f) return f;
    LLVMTypeRef params[] = {G->i8p, G->i64, LLVMPointerType(G->task_ty, 0), G->i8p};
    /* its own builder and no vector attributes: whoever asks first (the
     * generator, or a graph body at a debug location) makes the same function */
    Gen H = {.ctx = G->ctx,
             .mod = G->mod,
             .b = LLVMCreateBuilderInContext(G->ctx),
             .i8p = G->i8p,
             .i64 = G->i64,
             .void_t = G->void_t,
             .task_ty = G->task_ty};
    f = new_function(&H, "aec.run_tasks", LLVMFunctionType(G->void_t, params, 4, 0));
    run_tasks_body(&H, LLVMGetParam(f, 0), LLVMGetParam(f, 1), LLVMGetParam(f, 2),
                   LLVMGetParam(f, 3));
    LLVMBuildRetVoid(H.b);
    LLVMDisposeBuilder(H.b);
    return f;
}

void gemm_run_tasks(Gen *G, LLVMValueRef exec, LLVMValueRef n, LLVMValueRef task,
                    LLVMValueRef arg) {
    LLVMValueRef f = run_tasks_function(G);
    LLVMValueRef args[] = {LLVMBuildBitCast(G->b, exec, G->i8p, ""), n, task,
                           LLVMBuildBitCast(G->b, arg, G->i8p, "")};
    LLVMBuildCall2(G->b, LLVMGlobalGetValueType(f), f, args, 4, "");
}

/* ------------------------------------------------------------ sparse rows */

/* c[0..n) = Σ_i a_i · W[i][0..n), skipping a_i = 0 (batch 1 with the
 * embedded weights: ReLU outputs and image backgrounds are about half
 * zeros, so about half the weights are never read). The nonzero a_i of up
 * to SPARSE_CHUNK rows at a time are listed first, without a branch; then
 * tasks of at most sparse_vecs vectors of columns each (a grid that
 * depends on n and the target only) sum them into registers, i in
 * increasing order, by fma: the same bits at any thread count, and C is
 * read and written once per chunk instead of once per row. W is stored
 * task by task (gemm.h): with rows of all n columns, a thread reading its
 * half of each row also pulled lines of the other half into its L2 (the
 * prefetchers run past the end of a row's half), and fmnist_dense's first
 * layer at two threads took 2.9 µs per task where the same bytes as one
 * task of a narrower layer took 2.0 (Zen 5, sixteenth session). */
enum {
    SPARSE_CHUNK = 1024, /* 12 KB of list on the stack */
    SPARSE_MAX_VECS = 16,
    SPARSE_MIN_VECS = 4
};
enum { SP_IDX, SP_VAL, SP_NNZ, SP_ROWS, SP_C, SP_N, SP_K, SP_FIRST, SP_UNITS, SP_TASKS, SP_FIELDS };

/* Vectors of columns per pass over the list, and per task: half the
 * registers, at most 16. Each row read feeds that many FMAs for one index
 * and one broadcast; on Sapphire Rapids a hand-written pass over
 * fmnist_dense's first layer took 14.5 µs with 4 vectors, 11.8 with 8 and
 * 11.2 with 16 (thirteenth session). A power of two (sparse_task). */
static int sparse_vecs(GemmTarget t) {
    int v = t.registers / 2;
    return v < SPARSE_MAX_VECS ? v : SPARSE_MAX_VECS;
}

/* The grid: the caller passes the task count, the tasks compute their
 * columns in IR as gemm_sparse_task_cols does (sparse_task). */
static long sparse_unit(GemmTarget t, bool f64) {
    return (long)SPARSE_MIN_VECS * (t.vector_bits / (f64 ? 64 : 32));
}
static long sparse_units(GemmTarget t, bool f64, long n) {
    return (n + sparse_unit(t, f64) - 1) / sparse_unit(t, f64);
}
/* As few tasks as passes of sparse_vecs allow, an even number when more
 * than one, so that two threads get the same share; the units of
 * SPARSE_MIN_VECS vectors dealt evenly over them (fmnist_dense's
 * 784-column layer: 12, 12, 12 and 13 vectors, not 16, 16, 16 and 1). */
long gemm_sparse_tasks(GemmTarget t, bool f64, long n) {
    long units = sparse_units(t, f64, n), per = sparse_vecs(t) / SPARSE_MIN_VECS;
    long tasks = (units + per - 1) / per;
    return tasks > 1 && tasks % 2 ? tasks + 1 : tasks;
}
void gemm_sparse_task_cols(GemmTarget t, bool f64, long n, long task, long *j0, long *j1) {
    long units = sparse_units(t, f64, n), tasks = gemm_sparse_tasks(t, f64, n);
    long u0 = task * units / tasks, u1 = (task + 1) * units / tasks, unit = sparse_unit(t, f64);
    *j0 = u0 * unit < n ? u0 * unit : n;
    *j1 = u1 * unit < n ? u1 * unit : n;
}

static LLVMTypeRef sparse_arg_type(Gen *G) {
    LLVMTypeRef i32p = LLVMPointerType(G->i32, 0);
    LLVMTypeRef fields[SP_FIELDS] = {i32p,   G->T_ptr, G->i64, G->T_ptr, G->T_ptr,
                                     G->i64, G->i64,   G->i64, G->i64,   G->i64};
    return LLVMStructTypeInContext(G->ctx, fields, SP_FIELDS, 0);
}

static LLVMValueRef sp_field(Gen *G, LLVMTypeRef ty, LLVMValueRef arg, int field) {
    return LLVMBuildLoad2(G->b, LLVMStructGetTypeAtIndex(ty, (unsigned)field),
                          LLVMBuildStructGEP2(G->b, ty, arg, (unsigned)field, ""), "");
}

/* Entry q of the nonzero list: the row index, as i64. */
static LLVMValueRef sparse_row(Gen *G, LLVMValueRef idx, LLVMValueRef q) {
    LLVMValueRef i = LLVMBuildLoad2(G->b, G->i32, LLVMBuildGEP2(G->b, G->i32, idx, &q, 1, ""), "");
    return LLVMBuildSExt(G->b, i, G->i64, "");
}

/* The vector of rows' elements from j on, widened from f16 with
 * half_rows; left: how many of its lanes there are (the rest masked off),
 * NULL: all. */
static LLVMValueRef load_row(Gen *G, LLVMValueRef row, LLVMValueRef j, LLVMValueRef left) {
    if (!G->half_rows)
        return left ? load_v_masked(G, at(G, row, j), left)
                    : load_v(G, at(G, row, j), G->s->f64 ? 8 : 4);
    LLVMTypeRef H = LLVMHalfTypeInContext(G->ctx), HV = LLVMVectorType(H, (unsigned)G->g.vl);
    LLVMTypeRef HV_ptr = LLVMPointerType(HV, 0);
    LLVMValueRef p =
        LLVMBuildGEP2(G->b, H, LLVMBuildBitCast(G->b, row, LLVMPointerType(H, 0), ""), &j, 1, "");
    p = LLVMBuildBitCast(G->b, p, HV_ptr, "");
    LLVMValueRef h;
    if (left) {
        const char *name = "llvm.masked.load";
        unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
        LLVMTypeRef types[2] = {HV, HV_ptr};
        LLVMValueRef args[4] = {p, LLVMConstInt(G->i32, 2, 0), lanes_below(G, left),
                                LLVMConstNull(HV)};
        h = LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->ctx, id, types, 2),
                           LLVMGetIntrinsicDeclaration(G->mod, id, types, 2), args, 4, "");
    } else {
        h = LLVMBuildLoad2(G->b, HV, p, "");
        LLVMSetAlignment(h, 2);
    }
    return LLVMBuildFPExt(G->b, h, G->V, "");
}

/* One pass over the nonzero list for nv vectors of columns from jb:
 * c[jb..] (+)= Σ val[q]·W[idx[q]][jb..], in registers, W's columns from
 * j0 on stored as rows of `width` at block. valid: how many of the columns
 * there are, the lanes past it masked off; NULL: all. */
static void sparse_pass(Gen *G, int nv, LLVMValueRef idx, LLVMValueRef val, LLVMValueRef nnz,
                        LLVMValueRef block, LLVMValueRef width, LLVMValueRef j0, LLVMValueRef c,
                        LLVMValueRef first, LLVMValueRef jb, LLVMValueRef valid) {
    int vl = G->g.vl;
    unsigned align = G->s->f64 ? 8 : 4;
    LLVMValueRef left[SPARSE_MAX_VECS], init[SPARSE_MAX_VECS], next[SPARSE_MAX_VECS];
    LLVMValueRef col = LLVMBuildSub(G->b, jb, j0, ""); /* in the task's block */
    for (int v = 0; v < nv; v++) {
        left[v] = valid ? addc(G, valid, -v * vl) : NULL;
        LLVMValueRef at_c = at(G, c, addc(G, jb, v * vl));
        LLVMValueRef old = valid ? load_v_masked(G, at_c, left[v]) : load_v(G, at_c, align);
        init[v] = LLVMBuildSelect(G->b, first, LLVMConstNull(G->V), old, "");
    }
    AccLoop l = acc_loop(G, nnz, nv, init, "snz");
    LLVMValueRef i = sparse_row(G, idx, l.k);
    LLVMValueRef ai = splat(G, load_t(G, at(G, val, l.k)));
    LLVMValueRef row0 = add(G, mul(G, i, width), col);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef w = load_row(G, block, addc(G, row0, v * vl), valid ? left[v] : NULL);
        next[v] = vfma(G, ai, w, l.acc[v]);
    }
    acc_loop_end(G, &l, next, 1);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef at_c = at(G, c, addc(G, jb, v * vl));
        if (valid)
            store_v_masked(G, l.acc[v], at_c, left[v]);
        else
            store_v(G, l.acc[v], at_c);
    }
}

/* Task t of T: units [t·U/T, (t+1)·U/T) of SPARSE_MIN_VECS vectors of
 * columns (U of them), cut at n. Its whole vectors, at most sparse_vecs =
 * w, go as passes of w, w/2, ... down to SPARSE_MIN_VECS (each at most
 * once: the bits of their count), the rest as one masked pass of
 * SPARSE_MIN_VECS vectors (column by column, a 32-column layer's 32
 * serial FMA chains were 12 % of the embedded encode). */
static LLVMValueRef sparse_task(Gen *G, const char *name) {
    int vl = G->g.vl, nv = sparse_vecs(G->target);
    LLVMTypeRef ty = sparse_arg_type(G);
    LLVMValueRef f = new_function(G, name, G->task_ty);
    LLVMValueRef arg = LLVMBuildBitCast(G->b, LLVMGetParam(f, 0), LLVMPointerType(ty, 0), "");
    LLVMValueRef t = LLVMGetParam(f, 1);
    LLVMValueRef idx = sp_field(G, ty, arg, SP_IDX), val = sp_field(G, ty, arg, SP_VAL);
    LLVMValueRef nnz = sp_field(G, ty, arg, SP_NNZ), rows = sp_field(G, ty, arg, SP_ROWS);
    LLVMValueRef c = sp_field(G, ty, arg, SP_C), n = sp_field(G, ty, arg, SP_N);
    LLVMValueRef k = sp_field(G, ty, arg, SP_K);
    LLVMValueRef first =
        LLVMBuildICmp(G->b, LLVMIntNE, sp_field(G, ty, arg, SP_FIRST), i64c(G, 0), "");
    LLVMValueRef units = sp_field(G, ty, arg, SP_UNITS), tasks = sp_field(G, ty, arg, SP_TASKS);
    long unit = (long)SPARSE_MIN_VECS * vl;
    LLVMValueRef u0 = LLVMBuildSDiv(G->b, mul(G, t, units), tasks, "");
    LLVMValueRef u1 = LLVMBuildSDiv(G->b, mul(G, addc(G, t, 1), units), tasks, "");
    LLVMValueRef j0 = imin(G, mulc(G, u0, unit), n), j1 = imin(G, mulc(G, u1, unit), n);
    LLVMValueRef width = LLVMBuildSub(G->b, j1, j0, "");
    LLVMValueRef vecs = LLVMBuildSDiv(G->b, width, i64c(G, vl), "");
    /* the task's k × width block, at element k·j0 (of f16 with half_rows) */
    LLVMTypeRef el = G->half_rows ? LLVMHalfTypeInContext(G->ctx) : G->T;
    LLVMValueRef start = mul(G, k, j0);
    LLVMValueRef block = LLVMBuildBitCast(
        G->b,
        LLVMBuildGEP2(G->b, el, LLVMBuildBitCast(G->b, rows, LLVMPointerType(el, 0), ""), &start, 1,
                      ""),
        G->T_ptr, "block");
    for (int w = nv; w >= SPARSE_MIN_VECS; w /= 2) {
        /* the pass of w vectors runs when bit w of vecs is set, after the larger ones */
        LLVMValueRef bit = LLVMBuildAnd(G->b, vecs, i64c(G, w), "");
        If f_w = if_begin(G, LLVMBuildICmp(G->b, LLVMIntNE, bit, i64c(G, 0), ""), "spass");
        LLVMValueRef done = LLVMBuildAnd(G->b, vecs, i64c(G, -2L * w), "");
        sparse_pass(G, w, idx, val, nnz, block, width, j0, c, first, add(G, j0, mulc(G, done, vl)),
                    NULL);
        if_else(G, &f_w);
        if_end(G, &f_w);
    }
    LLVMValueRef done = LLVMBuildAnd(G->b, vecs, i64c(G, -SPARSE_MIN_VECS), "");
    LLVMValueRef jr = add(G, j0, mulc(G, done, vl)), rest = LLVMBuildSub(G->b, j1, jr, "");
    If f_rest = if_begin(G, LLVMBuildICmp(G->b, LLVMIntSGT, rest, i64c(G, 0), ""), "srest");
    sparse_pass(G, SPARSE_MIN_VECS, idx, val, nnz, block, width, j0, c, first, jr, rest);
    if_else(G, &f_rest);
    if_end(G, &f_rest);
    LLVMBuildRetVoid(G->b);
    return f;
}

/* llvm.masked.compressstore: the lanes of v where mask is set, stored one
 * after another from p. */
static void compress_store(Gen *G, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
    const char *name = "llvm.masked.compressstore";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty = LLVMTypeOf(v);
    LLVMValueRef args[3] = {v, p, mask};
    LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->ctx, id, &ty, 1),
                   LLVMGetIntrinsicDeclaration(G->mod, id, &ty, 1), args, 3, "");
}

/* The nonzero list of a[k0..k1) a vector at a time, where the target
 * compresses in one instruction (AVX-512's vcompressps/vpcompressd):
 * fmnist_dense's three lists were 0.5 µs of its 4–8 µs embedded encode one
 * element at a time. Appends at *count; returns where the vectors stopped. */
static LLVMValueRef sparse_list_vectors(Gen *G, LLVMValueRef a, LLVMValueRef k0, LLVMValueRef k1,
                                        LLVMValueRef idx, LLVMValueRef val, LLVMValueRef count) {
    int vl = G->g.vl;
    LLVMValueRef whole = LLVMBuildSub(G->b, k1, k0, "");
    LLVMValueRef kv = add(G, k0, LLVMBuildAnd(G->b, whole, i64c(G, -(long)vl), ""));
    LLVMTypeRef VI = LLVMVectorType(G->i32, (unsigned)vl), MI = LLVMIntTypeInContext(G->ctx, vl);
    LLVMValueRef lane[64];
    for (int i = 0; i < vl; i++)
        lane[i] = LLVMConstInt(G->i32, (unsigned long long)i, 0);
    AccLoop l = acc_loop_from(G, k0, kv, 0, NULL, "listv");
    LLVMValueRef x = load_v(G, at(G, a, l.k), G->s->f64 ? 8 : 4);
    LLVMValueRef nz = LLVMBuildFCmp(G->b, LLVMRealUNE, x, LLVMConstNull(G->V), "");
    LLVMValueRef q = LLVMBuildLoad2(G->b, G->i64, count, "");
    LLVMValueRef first = LLVMBuildInsertElement(G->b, LLVMGetUndef(VI),
                                                LLVMBuildTrunc(G->b, l.k, G->i32, ""), lane[0], "");
    LLVMValueRef ids = LLVMBuildAdd(
        G->b, LLVMBuildShuffleVector(G->b, first, LLVMGetUndef(VI), LLVMConstNull(VI), ""),
        LLVMConstVector(lane, (unsigned)vl), "");
    compress_store(G, x, at(G, val, q), nz);
    compress_store(G, ids, LLVMBuildGEP2(G->b, G->i32, idx, &q, 1, ""), nz);
    const char *ctpop = "llvm.ctpop";
    unsigned id = LLVMLookupIntrinsicID(ctpop, strlen(ctpop));
    LLVMValueRef bits = LLVMBuildBitCast(G->b, nz, MI, "");
    LLVMValueRef ones =
        LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->ctx, id, &MI, 1),
                       LLVMGetIntrinsicDeclaration(G->mod, id, &MI, 1), &bits, 1, "");
    LLVMBuildStore(G->b, add(G, q, LLVMBuildZExt(G->b, ones, G->i64, "")), count);
    acc_loop_end(G, &l, NULL, vl);
    return kv;
}

LLVMValueRef gemm_sparse_function(Gen *G, const char *name) {
    char sub[64];
    snprintf(sub, sizeof sub, "%s.task", name);
    LLVMValueRef task = sparse_task(G, sub);
    LLVMTypeRef params[] = {G->T_ptr, G->T_ptr, G->T_ptr, G->i64, G->i64, G->i64, G->i8p};
    LLVMValueRef f = new_function(G, name, LLVMFunctionType(G->void_t, params, 7, 0));
    LLVMValueRef a = LLVMGetParam(f, 0), rows = LLVMGetParam(f, 1), c = LLVMGetParam(f, 2);
    LLVMValueRef n = LLVMGetParam(f, 3), k = LLVMGetParam(f, 4), ntasks = LLVMGetParam(f, 5);
    LLVMValueRef exec = LLVMGetParam(f, 6);
    LLVMTypeRef ty = sparse_arg_type(G);
    LLVMValueRef arg = LLVMBuildAlloca(G->b, ty, "arg");
    LLVMValueRef idx = LLVMBuildArrayAlloca(G->b, G->i32, i64c(G, SPARSE_CHUNK), "idx");
    LLVMValueRef val = LLVMBuildArrayAlloca(G->b, G->T, i64c(G, SPARSE_CHUNK), "val");
    LLVMValueRef count = LLVMBuildAlloca(G->b, G->i64, "nnz");
    LLVMValueRef units = cdiv(G, n, (long)SPARSE_MIN_VECS * G->g.vl);
    Loop lc = loop(G, cdiv(G, k, SPARSE_CHUNK), "chunk");
    LLVMValueRef k0 = mulc(G, lc.index, SPARSE_CHUNK);
    LLVMValueRef k1 = imin(G, addc(G, k0, SPARSE_CHUNK), k);
    LLVMBuildStore(G->b, i64c(G, 0), count);
    if (G->target.vector_bits == 512) k0 = sparse_list_vectors(G, a, k0, k1, idx, val, count);
    Loop li = loop_from(G, k0, k1, "list");
    LLVMValueRef x = load_t(G, at(G, a, li.index)), q = LLVMBuildLoad2(G->b, G->i64, count, "");
    /* written at q always, kept when x ≠ 0: no branch to mispredict */
    LLVMBuildStore(G->b, LLVMBuildTrunc(G->b, li.index, G->i32, ""),
                   LLVMBuildGEP2(G->b, G->i32, idx, &q, 1, ""));
    store_t(G, x, at(G, val, q));
    LLVMValueRef nz = LLVMBuildFCmp(G->b, LLVMRealUNE, x, LLVMConstNull(G->T), "");
    LLVMBuildStore(G->b, add(G, q, LLVMBuildZExt(G->b, nz, G->i64, "")), count);
    loop_end(G, &li);
    LLVMValueRef fields[SP_FIELDS] = {
        idx,
        val,
        LLVMBuildLoad2(G->b, G->i64, count, ""),
        rows,
        c,
        n,
        k,
        LLVMBuildZExt(G->b, LLVMBuildICmp(G->b, LLVMIntEQ, lc.index, i64c(G, 0), ""), G->i64, ""),
        units,
        ntasks};
    for (int i = 0; i < SP_FIELDS; i++)
        LLVMBuildStore(G->b, fields[i], LLVMBuildStructGEP2(G->b, ty, arg, (unsigned)i, ""));
    gemm_run_tasks(G, exec, ntasks, task, LLVMBuildBitCast(G->b, arg, G->i8p, ""));
    loop_end(G, &lc);
    LLVMBuildRetVoid(G->b);
    return f;
}
