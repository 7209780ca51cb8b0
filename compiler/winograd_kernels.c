/* winograd_kernels.c — 3x3 convolutions by Winograd's minimal filtering, F(2x2, 3x3).
 *
 * Takes a CONV, CONV_T or CONV_W node whose layer is a 3x3 convolution
 * with stride 1 and one pixel of padding on each side (`pad=same`) between
 * channel counts of at least WINOGRAD_MIN_CHANNELS (conv_winograd, winograd.c,
 * which also gives its sizes); produces its loop nest (nest.c calls it
 * instead of im2col with --gemm aec). As
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"
 * (CVPR 2016): the output in tiles of m x m, each from the input tile of
 * a x a around it (a = m + 2),
 *
 *     y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,
 *
 * summed over the input channels — which makes it a² matrix products, one
 * per element ξ of the transformed tile, of [out x in]·[in x tiles], with
 * 9/4 fewer multiply-adds than im2col's one [out x 9·in]·[9·in x positions]
 * for m = 2. The adjoints are the same algorithm: the input gradient is the
 * convolution of dy with the flipped, transposed filter; the filter
 * gradient is the derivative of the formula above,
 *
 *     dg = Gᵀ [ Σ_tiles (A dy Aᵀ) ⊙ (Bᵀ d B) ] G,
 *
 * a² products [out x tiles]·[tiles x in] summed over the batch's samples.
 * In exact arithmetic all three equal the direct convolution; in floating
 * point they differ from it by a few ulps of the sums (tests/test_conv.c).
 *
 * A batch runs as CONV_SLOTS tasks of whole samples on the caller's
 * threads, each sample's transforms and a² products on its task's thread,
 * in the task's own slot of scratch: V [ξ][in][tiles], M [ξ][out][tiles]
 * (CONV_W: A dy Aᵀ), a pack buffer, and CONV_W's own dU, which the filter
 * gradient's transform adds up in slot order. A batch of one splits its
 * sample into three regions of tasks instead: the input's transform (tasks
 * of channels, each writing its own channels' rows), the a² products (a
 * task per ξ, each with its own pack buffer), the output's transform. The
 * grids depend on the shape and batch only and no sum is split between
 * tasks, so the bits do not depend on the thread count. U [ξ][out][in],
 * the transformed filter, is shared (winograd.c has the scratch's layout).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

enum { WINOGRAD_TASKS = 16 }; /* at most this many tasks of channels per transform */
typedef WinogradNode Wg;

/* ------------------------------------------------------- tile transforms */

/* A constant matrix, or its transpose (t): element (i, j) of rows x cols. */
typedef struct Mat {
    const double *p;
    int ld, rows, cols;
    bool t;
} Mat;
static double mat_at(Mat L, int i, int j) {
    return L.t ? L.p[j * L.ld + i] : L.p[i * L.ld + j];
}

/* k in the type of v: a scalar, or a vector of k. */
static LLVMValueRef const_like(Codegen *cg, LLVMValueRef v, double k) {
    LLVMTypeRef ty = LLVMTypeOf(v);
    if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return cg_real(cg, k);
    LLVMValueRef lanes[64];
    unsigned n = LLVMGetVectorSize(ty);
    for (unsigned i = 0; i < n; i++)
        lanes[i] = cg_real(cg, k);
    return LLVMConstVector(lanes, n);
}

/* Σ_j k_j·x_j over the nonzero k_j: no multiply for ±1. */
static LLVMValueRef lincomb(Codegen *cg, Mat L, int row, LLVMValueRef *x, int stride) {
    LLVMValueRef acc = NULL;
    for (int j = 0; j < L.cols; j++) {
        double k = mat_at(L, row, j);
        LLVMValueRef v = x[j * stride];
        if (k == 0) continue;
        if (k == 1 || k == -1)
            acc = !acc ? (k == 1 ? v : LLVMBuildFNeg(cg->b, v, ""))
                       : (k == 1 ? cg_add(cg, acc, v) : cg_sub(cg, acc, v));
        else
            acc = acc ? cg_add(cg, acc, cg_mul(cg, v, const_like(cg, v, k)))
                      : cg_mul(cg, v, const_like(cg, v, k));
    }
    return acc ? acc : const_like(cg, x[0], 0);
}

/* out = L·x·Lᵀ: x is L.cols², out L.rows², both row-major. */
static void transform(Codegen *cg, Mat L, LLVMValueRef *x, LLVMValueRef *out) {
    LLVMValueRef t[6 * 6];
    for (int i = 0; i < L.rows; i++) /* t = L·x, L.rows x L.cols */
        for (int j = 0; j < L.cols; j++)
            t[i * L.cols + j] = lincomb(cg, L, i, x + j, L.cols);
    for (int i = 0; i < L.rows; i++) /* out = t·Lᵀ */
        for (int j = 0; j < L.rows; j++)
            out[i * L.rows + j] = lincomb(cg, L, j, t + i * L.cols, 1);
}

static Mat mat_bt(const WinogradF *f) {
    return (Mat){&f->bt[0][0], 4, f->a, f->a, false};
}
static Mat mat_g(const WinogradF *f, bool t) { /* G (a x 3), or Gᵀ */
    return t ? (Mat){&f->g[0][0], 3, 3, f->a, true} : (Mat){&f->g[0][0], 3, f->a, 3, false};
}
static Mat mat_at_(const WinogradF *f, bool t) { /* Aᵀ (m x a), or A */
    return t ? (Mat){&f->at[0][0], 4, f->a, f->m, true} : (Mat){&f->at[0][0], 4, f->m, f->a, false};
}

/* ----------------------------------------------------------------- tasks */

/* What each task reads: the env of every region of one node. E_V is the
 * first slot's V; a task of samples finds its own slot from it. */
enum {
    E_SRC, /* the sample's input (a task of samples: the batch's) */
    E_DST, /* the sample's output (the batch's) */
    E_U,   /* U; CONV_W: dU (the first slot's) */
    E_V,   /* V, M and the pack buffer(s) */
    E_M,
    E_PACK,
    E_SRC2,      /* CONV_W's x, the batch's (E_SRC: its dy) */
    E_LATER,     /* the second slot (ws_later_slots); the others follow it */
    E_PACK_STEP, /* i64: elements from one ξ's pack buffer to the next (0: one for all) */
    E_BATCH,     /* i64: samples, for the tasks of samples */
    E_SLOTS,     /* i64: tasks of samples, or slots of dU to add up */
    E_FIELDS
};
typedef enum {
    T_FILTER,      /* W -> U = G g Gᵀ (CONV_T: of the flipped, transposed filter) */
    T_INPUT,       /* src (one sample's image) -> V = Bᵀ d B */
    T_GRAD_OUT,    /* src (one sample's dy) -> M = A dy Aᵀ (CONV_W) */
    T_PRODUCT,     /* the product of ξ = the task */
    T_OUTPUT,      /* M -> dst (one sample) = Aᵀ M A */
    T_FILTER_GRAD, /* the slots' dU -> dst = dW = Gᵀ dU G */
    T_SAMPLES,     /* a slot's samples, each through the kinds above on this thread */
    T_KINDS
} TaskKind;
static const char *const task_names[T_KINDS] = {"wg_filter",  "wg_input",  "wg_grad_out",
                                                "wg_product", "wg_output", "wg_filter_grad",
                                                "wg_samples"};

static long du_offset(const Wg *w) { /* CONV_W's dU in a slot */
    return (long)w->f->a * w->f->a * (w->v + w->mm) + w->pe;
}

static LLVMTypeRef env_type(Codegen *cg) {
    LLVMTypeRef f[E_FIELDS];
    for (int k = 0; k < E_FIELDS; k++)
        f[k] = k >= E_PACK_STEP ? cg->i64 : cg->T_ptr;
    return LLVMStructTypeInContext(cg->ctx, f, E_FIELDS, 0);
}

static long channels_of(const Wg *w, TaskKind k) {
    switch (k) {
    case T_INPUT: return w->in;
    case T_GRAD_OUT: return w->q.r;
    case T_FILTER: return w->out;
    case T_FILTER_GRAD: return w->q.r;
    case T_OUTPUT: return w->out;
    default: return (long)w->f->a * w->f->a;
    }
}
static long group_of(const Wg *w, TaskKind k) {
    return k == T_PRODUCT ? 1 : (channels_of(w, k) + WINOGRAD_TASKS - 1) / WINOGRAD_TASKS;
}

/* A plane of rows x cols on the task's stack. */
static LLVMValueRef plane_alloca(Codegen *cg, long rows, long cols) {
    LLVMValueRef p = cg_alloca_entry_of(cg, LLVMArrayType(cg->T, (unsigned)(rows * cols)), "plane");
    LLVMSetAlignment(p, AEC_ALIGN);
    return LLVMBuildBitCast(cg->b, p, cg->T_ptr, "");
}

/* ------------------------------------------------------------- vectors */

/* Tiles along a row are the vector lanes of every transform: VL of them,
 * the target's vector (or the next power of two above a short row). */
static int lanes_of(Codegen *cg, const Wg *w) {
    return cg_vector_lanes(cg, w->tw);
}

/* The deinterleaved plane of T_INPUT and T_GRAD_OUT: column X of row Y at
 * (Y·m + X mod m)·K + X / m, so that the tiles of a row, m columns apart,
 * are consecutive elements at every offset inside a tile. */
typedef struct Plane {
    LLVMValueRef p;
    long rows, K; /* rows, and elements per row and parity (with room for a vector's overrun) */
    int off;      /* the image starts at row and column off (1: the padding) */
} Plane;

/* Channel `src` (h x w) into plane P: each source row in vectors of 2·vl
 * split into its even and odd columns. Lanes beyond w load as 0 and land
 * where the padding is, which is 0. */
static void fill_plane(Codegen *cg, const Plane *P, LLVMValueRef src, long h, long w, int vl) {
    Loop ly = cg_loop_begin(cg, cg_i64(cg, h), "y");
    LLVMValueRef Y = cg_iadd(cg, ly.index, P->off);
    LLVMValueRef row = cg_at(cg, P->p, cg_imul(cg, Y, 2 * P->K)); /* parity 0; parity 1 at +K */
    for (long x0 = 0; x0 < w; x0 += 2 * vl) {
        LLVMValueRef s = cg_vload(cg, cg_at(cg, src, cg_iadd(cg, cg_imul(cg, ly.index, w), x0)),
                                  2 * vl, (int)(w - x0 < 2 * vl ? w - x0 : 2 * vl));
        LLVMValueRef even = cg_lanes_strided(cg, s, s, 0, 2, vl),
                     odd = cg_lanes_strided(cg, s, s, 1, 2, vl);
        /* source column x is plane column X = x + off */
        long k = x0 / 2;
        if (P->off == 0) {
            cg_vstore(cg, even, cg_at(cg, row, cg_i64(cg, k)), vl, vl);
            cg_vstore(cg, odd, cg_at(cg, row, cg_i64(cg, P->K + k)), vl, vl);
        } else {
            cg_vstore(cg, even, cg_at(cg, row, cg_i64(cg, P->K + k)), vl, vl);
            cg_vstore(cg, odd, cg_at(cg, row, cg_i64(cg, k + 1)), vl, vl);
        }
    }
    cg_loop_end(cg, &ly);
}

/* Channels [lo, hi) of task kind k. */
static void task_body(Codegen *cg, const Wg *w, TaskKind k, LLVMValueRef *e, LLVMValueRef lo,
                      LLVMValueRef hi) {
    LLVMBuilderRef b = cg->b;
    const WinogradF *f = w->f;
    const ConvGeom *q = &w->q;
    int m = f->m, a = f->a, xi = a * a;
    LLVMValueRef x[36], y[36];
    /* T_INPUT, T_GRAD_OUT: the channel's plane over a zero border (and the
     * far side's partial tiles), zeroed once for all the task's channels */
    bool in = k == T_INPUT;
    int vl = lanes_of(cg, w);
    Plane P = {.off = in ? 1 : 0, .rows = m * w->th + (in ? 2 : 0)};
    if (k == T_INPUT || k == T_GRAD_OUT) {
        ensure(m == 2);                               /* fill_plane splits even and odd columns */
        long wide = (in ? q->w : q->ow) + 2 * vl + 2; /* a source row's last vector, split */
        if (wide < 2 * (w->tw + vl + 1)) wide = 2 * (w->tw + vl + 1); /* a tile row's */
        P.K = round16((wide + 1) / 2);
        P.p = plane_alloca(cg, P.rows * 2, P.K);
        cg_zero(cg, P.p, cg_i64(cg, P.rows * 2 * P.K));
    }
    Loop lc = cg_loop_begin(cg, LLVMBuildSub(b, hi, lo, ""), "chan");
    LLVMValueRef ch = LLVMBuildAdd(b, lo, lc.index, "ch");
    switch (k) {
    case T_FILTER: { /* U[ξ][ch][i] = (G g Gᵀ)[ξ], ch an output channel */
        Loop li = cg_loop_begin(cg, cg_i64(cg, w->in), "in");
        bool flip = w->op == IR_CONV_T; /* g[u][v] = W[i][ch][2 − u][2 − v] */
        LLVMValueRef oc = flip ? li.index : ch, ic = flip ? ch : li.index;
        LLVMValueRef base = cg_imul(cg, LLVMBuildAdd(b, cg_imul(cg, oc, q->c), ic, ""), 9);
        for (int u = 0; u < 9; u++)
            x[u] = cg_load(cg, e[E_SRC], cg_iadd(cg, base, flip ? 8 - u : u), "");
        transform(cg, mat_g(f, false), x, y);
        LLVMValueRef at = LLVMBuildAdd(b, cg_imul(cg, ch, w->in), li.index, "");
        for (int t = 0; t < xi; t++)
            cg_store(cg, y[t], e[E_U], cg_iadd(cg, at, t * w->u));
        cg_loop_end(cg, &li);
        break;
    }
    case T_FILTER_GRAD: { /* dW[ch][i] = Gᵀ dU[·][ch][i] G, ch = r */
        Loop li = cg_loop_begin(cg, cg_i64(cg, q->c), "in");
        LLVMValueRef at = LLVMBuildAdd(b, cg_imul(cg, ch, q->c), li.index, "");
        LLVMValueRef sum[36]; /* dU of the first slot, plus each other's in order */
        for (int t = 0; t < xi; t++)
            sum[t] = cg_var(cg, "du", cg_load(cg, e[E_U], cg_iadd(cg, at, t * w->u), ""));
        Loop ls = cg_loop_begin(cg, cg_iadd(cg, e[E_SLOTS], -1), "slot");
        LLVMValueRef slot =
            cg_at(cg, e[E_LATER], cg_iadd(cg, cg_imul(cg, ls.index, w->slot), du_offset(w)));
        for (int t = 0; t < xi; t++)
            LLVMBuildStore(b,
                           cg_add(cg, LLVMBuildLoad2(b, cg->T, sum[t], ""),
                                  cg_load(cg, slot, cg_iadd(cg, at, t * w->u), "")),
                           sum[t]);
        cg_loop_end(cg, &ls);
        for (int t = 0; t < xi; t++)
            x[t] = LLVMBuildLoad2(b, cg->T, sum[t], "");
        transform(cg, mat_g(f, true), x, y);
        LLVMValueRef base = cg_imul(cg, at, 9);
        for (int u = 0; u < 9; u++)
            cg_store(cg, y[u], e[E_DST], cg_iadd(cg, base, u));
        cg_loop_end(cg, &li);
        break;
    }
    case T_INPUT:
    case T_GRAD_OUT: { /* V = Bᵀ d B (or M = A dy Aᵀ) of each tile of channel ch */
        long h = in ? q->h : q->oh, wd = in ? q->w : q->ow;
        fill_plane(cg, &P, cg_at(cg, e[E_SRC], cg_imul(cg, ch, h * wd)), h, wd, vl);
        LLVMValueRef out = in ? e[E_V] : e[E_M];
        long slab = in ? w->v : w->mm;
        int side = in ? a : m;
        Loop ly = cg_loop_begin(cg, cg_i64(cg, w->th), "ty");
        LLVMValueRef at =
            LLVMBuildAdd(b, cg_imul(cg, ch, w->tiles), cg_imul(cg, ly.index, w->tw), "");
        for (long tx0 = 0; tx0 < w->tw; tx0 += vl) {
            for (int i = 0; i < side; i++) {
                LLVMValueRef Y = cg_iadd(cg, cg_imul(cg, ly.index, m), i);
                for (int j = 0; j < side; j++) {
                    LLVMValueRef row = cg_imul(cg, cg_iadd(cg, cg_imul(cg, Y, m), j % m), P.K);
                    x[i * side + j] =
                        cg_vload(cg, cg_at(cg, P.p, cg_iadd(cg, row, tx0 + j / m)), vl, vl);
                }
            }
            transform(cg, in ? mat_bt(f) : mat_at_(f, true), x, y);
            int valid = (int)(w->tw - tx0 < vl ? w->tw - tx0 : vl);
            for (int t = 0; t < xi; t++)
                cg_vstore(cg, y[t], cg_at(cg, out, cg_iadd(cg, at, t * slab + tx0)), vl, valid);
        }
        cg_loop_end(cg, &ly);
        break;
    }
    case T_OUTPUT: { /* dst[ch] = Aᵀ M A of each tile, its two columns interleaved */
        LLVMValueRef dst_c = cg_at(cg, e[E_DST], cg_imul(cg, ch, (long)q->oh * q->ow));
        Loop ly = cg_loop_begin(cg, cg_i64(cg, w->th), "ty");
        LLVMValueRef at =
            LLVMBuildAdd(b, cg_imul(cg, ch, w->tiles), cg_imul(cg, ly.index, w->tw), "");
        for (long tx0 = 0; tx0 < w->tw; tx0 += vl) {
            int valid = (int)(w->tw - tx0 < vl ? w->tw - tx0 : vl);
            for (int t = 0; t < xi; t++)
                x[t] = cg_vload(cg, cg_at(cg, e[E_M], cg_iadd(cg, at, t * w->mm + tx0)), vl, valid);
            transform(cg, mat_at_(f, false), x, y);
            long cols = q->ow - m * tx0 < 2 * vl ? q->ow - m * tx0 : 2 * vl;
            for (int p = 0; p < m; p++) {
                LLVMValueRef oy = cg_iadd(cg, cg_imul(cg, ly.index, m), p);
                /* a partial last tile row (odd height): its second row is not there */
                If there = {0};
                bool guard = p > 0 && q->oh % m != 0;
                if (guard)
                    there =
                        cg_if(cg, LLVMBuildICmp(b, LLVMIntSLT, oy, cg_i64(cg, q->oh), ""), "row");
                /* y[p][0][0], y[p][1][0], y[p][0][1], ... */
                LLVMValueRef row = cg_interleave(cg, y[p * m], y[p * m + 1], vl);
                cg_vstore(cg, row, cg_at(cg, dst_c, cg_iadd(cg, cg_imul(cg, oy, q->ow), m * tx0)),
                          2 * vl, (int)cols);
                if (guard) cg_end_if(cg, &there);
            }
        }
        cg_loop_end(cg, &ly);
        break;
    }
    default: internal_error("winograd task %d", (int)k);
    }
    cg_loop_end(cg, &lc);
}

/* The product of ξ = t on this thread, with its own pack scratch. */
static void product_body(Codegen *cg, const Wg *w, LLVMValueRef *e, LLVMValueRef t) {
    LLVMBuilderRef b = cg->b;
    bool grad = w->op == IR_CONV_W; /* dU += Md · Vᵀ, else M = U · V */
    LLVMValueRef A = grad ? e[E_M] : e[E_U], C = grad ? e[E_U] : e[E_M];
    long sa = grad ? w->mm : w->u, sc = grad ? w->u : w->mm;
    LLVMValueRef none = LLVMConstNull(cg->i8_ptr);
    LLVMValueRef args[8] = {cg_at(cg, A, cg_imul(cg, t, sa)),
                            cg_at(cg, e[E_V], cg_imul(cg, t, w->v)),
                            cg_at(cg, C, cg_imul(cg, t, sc)),
                            cg_i64(cg, 1),
                            cg_at(cg, e[E_PACK], LLVMBuildMul(b, t, e[E_PACK_STEP], "")),
                            none,
                            none,
                            none};
    LLVMBuildCall2(b, gemm_function_type(cg->ctx, cg->opt.f64), generated_gemm(cg, &w->s), args, 8,
                   "");
}

static LLVMValueRef task_fn(Codegen *cg, const Wg *w, int layer, TaskKind k, Loc loc);
static void samples_body(Codegen *cg, const Wg *w, LLVMValueRef *e, LLVMValueRef slot,
                         LLVMValueRef *fns);

/* The env's fields at p. */
static void load_env(Codegen *cg, LLVMValueRef p, LLVMValueRef *e) {
    LLVMTypeRef env_ty = env_type(cg);
    LLVMValueRef env = LLVMBuildBitCast(cg->b, p, LLVMPointerType(env_ty, 0), "env");
    for (unsigned f = 0; f < E_FIELDS; f++)
        e[f] = LLVMBuildLoad2(cg->b, LLVMStructGetTypeAtIndex(env_ty, f),
                              LLVMBuildStructGEP2(cg->b, env_ty, env, f, ""), "");
}

static void set(Codegen *cg, LLVMValueRef env, int field, LLVMValueRef v) {
    LLVMBuildStore(cg->b, v, LLVMBuildStructGEP2(cg->b, env_type(cg), env, (unsigned)field, ""));
}

/* The kinds a sample goes through, in order, for op (T_KINDS ends it). */
static const TaskKind *sample_kinds(int op) {
    static const TaskKind fwd[] = {T_INPUT, T_PRODUCT, T_OUTPUT, T_KINDS};
    static const TaskKind grad[] = {T_INPUT, T_GRAD_OUT, T_PRODUCT, T_KINDS};
    return op == IR_CONV_W ? grad : fwd;
}

/* Kind k's task function for layer `layer`'s op w->op, made once per module
 * (train, eval and encode share it; CONV and CONV_W share their input's
 * transform): a third of the functions to compile. */
static LLVMValueRef task_fn(Codegen *cg, const Wg *w, int layer, TaskKind k, Loc loc) {
    char name[300];
    const char *op = k == T_INPUT && w->op != IR_CONV_T ? "x" : ir_op_names[w->op];
    snprintf(name, sizeof name, "%s__%s_%s_%d", cg->prefix, task_names[k], op, layer);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (fn) return fn;
    LLVMValueRef fns[T_KINDS] = {0}; /* a task of samples calls the others' functions */
    if (k == T_SAMPLES)
        for (const TaskKind *sk = sample_kinds(w->op); *sk != T_KINDS; sk++)
            fns[*sk] = task_fn(cg, w, layer, *sk, loc);
    CgAside saved;
    LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64};
    fn = cg_aside_begin(cg, name, params, 2, &saved);
    if (k == T_FILTER_GRAD) /* once per training step: compiled small, not vectorized */
        for (int a = 0; a < 2; a++) {
            const char *attr = a ? "minsize" : "optsize";
            LLVMAddAttributeAtIndex(
                fn, LLVMAttributeFunctionIndex,
                LLVMCreateEnumAttribute(cg->ctx,
                                        LLVMGetEnumAttributeKindForName(attr, strlen(attr)), 0));
        }
    LLVMValueRef e[E_FIELDS];
    load_env(cg, LLVMGetParam(fn, 0), e);
    LLVMValueRef t = LLVMGetParam(fn, 1);
    if (k == T_PRODUCT) {
        product_body(cg, w, e, t);
    } else if (k == T_SAMPLES) {
        samples_body(cg, w, e, t, fns);
    } else {
        long group = group_of(w, k), n = channels_of(w, k);
        LLVMValueRef lo = cg_imul(cg, t, group), hi = cg_iadd(cg, lo, group);
        hi = cg_select(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, hi, cg_i64(cg, n), ""), hi,
                       cg_i64(cg, n));
        task_body(cg, w, k, e, lo, hi);
    }
    cg_aside_end(cg, &saved, loc);
    return fn;
}

static long tasks_of(const Wg *w, TaskKind k) {
    long n = channels_of(w, k), group = group_of(w, k);
    return (n + group - 1) / group;
}

/* Kind k's tasks over env, one after the other on this thread. */
static void call_tasks(Codegen *cg, const Wg *w, TaskKind k, LLVMValueRef fn, LLVMValueRef env) {
    LLVMTypeRef params[2] = {cg->i8_ptr, cg->i64};
    LLVMTypeRef fty = LLVMFunctionType(cg->void_t, params, 2, 0);
    Loop lt = cg_loop_begin(cg, cg_i64(cg, tasks_of(w, k)), "task");
    LLVMValueRef args[2] = {LLVMBuildBitCast(cg->b, env, cg->i8_ptr, ""), lt.index};
    LLVMBuildCall2(cg->b, fty, fn, args, 2, "");
    cg_loop_end(cg, &lt);
}

/* Task `slot` of E_SLOTS: its share of the batch's samples, each through
 * the transforms and products on this thread, in its own slot of the
 * scratch (CONV_W: adding to the slot's own dU). */
static void samples_body(Codegen *cg, const Wg *w, LLVMValueRef *e, LLVMValueRef slot,
                         LLVMValueRef *fns) {
    LLVMBuilderRef b = cg->b;
    const ConvGeom *q = &w->q;
    long xi = (long)w->f->a * w->f->a;
    long img = (long)q->c * q->h * q->w, ys = (long)q->r * q->oh * q->ow; /* per sample */
    LLVMValueRef lo, hi;
    conv_task_samples(cg, slot, e[E_BATCH], e[E_SLOTS], &lo, &hi);
    LLVMValueRef V = conv_task_slot(cg, slot, e[E_V], e[E_LATER], w->slot);
    LLVMValueRef M = cg_at(cg, V, cg_i64(cg, xi * w->v)),
                 pack = cg_at(cg, M, cg_i64(cg, xi * w->mm));
    LLVMValueRef U = e[E_U];
    if (w->op == IR_CONV_W) { /* this slot's dU, from zero */
        U = cg_at(cg, V, cg_i64(cg, du_offset(w)));
        cg_zero(cg, U, cg_i64(cg, xi * w->u));
    }
    LLVMValueRef env = cg_alloca_entry_of(cg, env_type(cg), "sample");
    LLVMValueRef fields[E_FIELDS] = {[E_U] = U, [E_V] = V, [E_M] = M, [E_PACK] = pack};
    for (int f = E_U; f <= E_PACK; f++)
        set(cg, env, f, fields[f]);
    set(cg, env, E_PACK_STEP, cg_i64(cg, 0));
    Loop ls = cg_loop_begin(cg, LLVMBuildSub(b, hi, lo, ""), "sample");
    LLVMValueRef s = LLVMBuildAdd(b, lo, ls.index, "");
    for (const TaskKind *k = sample_kinds(w->op); *k != T_KINDS; k++) {
        /* CONV_T reads dy and writes dx; CONV_W reads x, then dy */
        bool reads_y = w->op == IR_CONV_T || *k == T_GRAD_OUT;
        LLVMValueRef src = w->op == IR_CONV_W && *k == T_INPUT ? e[E_SRC2] : e[E_SRC];
        set(cg, env, E_SRC, cg_at(cg, src, cg_imul(cg, s, reads_y ? ys : img)));
        set(cg, env, E_DST, cg_at(cg, e[E_DST], cg_imul(cg, s, w->op == IR_CONV_T ? img : ys)));
        call_tasks(cg, w, *k, fns[*k], env);
    }
    cg_loop_end(cg, &ls);
}

/* Run kind k's tasks over env, n of them (NULL: its tasks of channels). */
static void run(Body *B, const Wg *w, int i, TaskKind k, LLVMValueRef env, LLVMValueRef n) {
    Codegen *cg = B->cg;
    LLVMValueRef fn = task_fn(cg, w, B->g->nodes[i].layer, k, B->g->nodes[i].loc);
    gemm_parallel_for(cg->mod, cg->b, B->exec, n ? n : cg_i64(cg, tasks_of(w, k)), fn,
                      LLVMBuildBitCast(cg->b, env, cg->i8_ptr, ""));
}

/* A batch of one: the sample's work in tasks of channels and of ξ, the
 * scratch's first slot and a pack buffer per ξ. */
static void one_sample(Body *B, const Wg *w, int i, LLVMValueRef env, LLVMValueRef a,
                       LLVMValueRef b) {
    Codegen *cg = B->cg;
    set(cg, env, E_PACK_STEP, cg_i64(cg, w->pe));
    if (w->op == IR_CONV_W) {
        set(cg, env, E_SRC, b); /* V of x, M of dy */
        run(B, w, i, T_INPUT, env, NULL);
        set(cg, env, E_SRC, a);
        run(B, w, i, T_GRAD_OUT, env, NULL);
        run(B, w, i, T_PRODUCT, env, NULL);
        return;
    }
    set(cg, env, E_SRC, a);
    run(B, w, i, T_INPUT, env, NULL);
    run(B, w, i, T_PRODUCT, env, NULL);
    run(B, w, i, T_OUTPUT, env, NULL);
}

/* With --embed-weights, the U of an inference graph's CONV or CONV_T of
 * an embedded weight, transformed at compile time (winograd_filter, the
 * generated transform's bits), once per module; NULL otherwise. It spares
 * a batch-1 encode the filter's transform on every call. */
static LLVMValueRef embedded_u(Body *B, const Wg *w, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i], *wn = &B->g->nodes[n->in[1]];
    if (!cg->embedded || B->g->kind == GRAPH_TRAIN || B->g->kind == GRAPH_OPTIM ||
        wn->op != IR_PARAM || wn->tensor < 0)
        return NULL;
    const ParamTensor *t = &cg->model->tensors[wn->tensor];
    if (t->numel != (long)w->q.r * w->q.c * 9) return NULL;
    char name[300];
    snprintf(name, sizeof name, "%s.wg_u_%s_%d", cg->prefix, ir_op_names[w->op], n->layer);
    LLVMValueRef g = LLVMGetNamedGlobal(cg->mod, name);
    if (!g) {
        size_t el = cg->opt.f64 ? 8 : 4, count = (size_t)(w->f->a * w->f->a * w->u);
        void *u = calloc(count, el);
        if (!u) internal_error("out of memory transforming %s", t->name);
        winograd_filter(w, (const char *)cg->opt.embed + (size_t)t->offset * el, u);
        g = embed_global(cg, name, u, count, el, false);
        free(u);
    }
    return LLVMConstBitCast(g, cg->T_ptr);
}

/* Two threads reading each other's freshly written V and M cost more than
 * the transforms themselves (perf: the input transforms took twice the
 * cycles at 2 threads); so a batch runs as CONV_SLOTS tasks of whole
 * samples, each in its own slot, and only a batch of one splits a sample. */
void winograd_kernel(Body *B, int i) {
    Codegen *cg = B->cg;
    const IrNode *n = &B->g->nodes[i];
    ConvGeom q = conv_geom(&B->g->model->layers[n->layer]);
    Wg w = winograd_node(&q, n->op, cg->opt.f64);
    long xi = (long)w.f->a * w.f->a;
    LLVMValueRef a = buf_ptr(B, B->p->loc[n->in[0]]), b = buf_ptr(B, B->p->loc[n->in[1]]);
    LLVMValueRef out = buf_ptr(B, B->p->loc[i]), scratch = buf_ptr(B, B->p->partial[i]);
    bool grad = n->op == IR_CONV_W;
    /* the shared part: U, the packs of one sample's ξ; then the slots */
    LLVMValueRef U = scratch, packs = cg_at(cg, U, cg_i64(cg, grad ? 0 : xi * w.u));
    LLVMValueRef V = cg_at(cg, scratch, cg_i64(cg, w.shared));
    LLVMValueRef M = cg_at(cg, V, cg_i64(cg, xi * w.v));
    LLVMValueRef dU = cg_at(cg, V, cg_i64(cg, du_offset(&w))); /* the first slot's */
    LLVMValueRef env = cg_alloca_entry_of(cg, env_type(cg), "winograd");
    LLVMValueRef fields[E_FIELDS] = {[E_U] = grad ? dU : U, [E_V] = V, [E_M] = M, [E_PACK] = packs};
    for (int f = E_U; f <= E_PACK; f++)
        set(cg, env, f, fields[f]);
    set(cg, env, E_DST, out);
    set(cg, env, E_LATER, ws_later_slots(cg, B->base[BASE_WS], B->batch));
    if (!grad) {
        LLVMValueRef u_const = embedded_u(B, &w, i);
        If given = {0};
        if (u_const) { /* the caller passed the embedded weights: their U, made at compile time */
            LLVMValueRef mine = LLVMBuildICmp(cg->b, LLVMIntEQ, B->base[BASE_PARAMS],
                                              LLVMConstBitCast(cg->embedded, cg->T_ptr), "");
            given = cg_if(cg, mine, "embedded_u");
            set(cg, env, E_U, u_const);
            cg_else(cg, &given);
        }
        set(cg, env, E_SRC, b); /* W */
        run(B, &w, i, T_FILTER, env, NULL);
        if (u_const) cg_end_if(cg, &given);
    }
    LLVMValueRef slots = conv_task_count(cg, B->batch);
    set(cg, env, E_SLOTS, slots);
    set(cg, env, E_BATCH, B->batch);
    If single = cg_if(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, B->batch, cg_i64(cg, 1), ""), "one");
    if (grad) cg_zero(cg, dU, cg_i64(cg, xi * w.u));
    one_sample(B, &w, i, env, a, b);
    cg_else(cg, &single);
    set(cg, env, E_SRC, a);
    set(cg, env, E_SRC2, b);
    run(B, &w, i, T_SAMPLES, env, slots);
    cg_end_if(cg, &single);
    if (grad) run(B, &w, i, T_FILTER_GRAD, env, NULL); /* dW = Gᵀ (Σ of the slots' dU) G */
}
