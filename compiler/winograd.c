/* winograd.c — the facts of Winograd's F(2x2, 3x3) for 3x3 convolutions.
 *
 * Takes a convolution's geometry (ConvGeom) and one of its ops (CONV,
 * CONV_T, CONV_W); gives whether it runs as Winograd's minimal filtering
 * (conv_winograd), and its sizes: the transforms' matrices, the tiles, the
 * scratch's parts and the product of one element ξ of the transformed tile
 * (WinogradNode), which the plan reserves and winograd_kernels.c emits.
 * The algorithm is in winograd_kernels.c's header and docs/internals.md.
 */
#include <string.h>

#include "aec.h"

/* Bᵀ (a x a), G (a x 3) and Aᵀ (m x a) of F(2x2, 3x3) (Lavin and Gray, 2016). */
static const WinogradF F2X3 = {
    .m = 2,
    .a = 4,
    .bt = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    .g = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
    .at = {{1, 1, 1, 0}, {0, 1, -1, -1}},
};

enum {
    WINOGRAD_MIN_CHANNELS = 8, /* fewer: the a² products are too thin to pay for the transforms */
    WINOGRAD_MAX_PLANE = 64,   /* the padded plane a task keeps on its stack, per side */
};

bool conv_winograd(const ConvGeom *q) {
    return q->kh == 3 && q->kw == 3 && q->stride == 1 && q->pad_h == 1 && q->pad_w == 1 &&
           q->oh == q->h && q->ow == q->w && q->c >= WINOGRAD_MIN_CHANNELS &&
           q->r >= WINOGRAD_MIN_CHANNELS && q->h + 4 <= WINOGRAD_MAX_PLANE &&
           q->w + 4 <= WINOGRAD_MAX_PLANE;
}

WinogradNode winograd_node(const ConvGeom *q, int op, bool f64) {
    WinogradNode w = {.f = &F2X3, .q = *q, .op = op};
    w.th = (q->oh + w.f->m - 1) / w.f->m, w.tw = (q->ow + w.f->m - 1) / w.f->m;
    w.tiles = w.th * w.tw;
    w.in = op == IR_CONV_T ? q->r : q->c;
    w.out = op == IR_CONV_T ? q->c : q->r;
    memset(&w.s, 0, sizeof w.s); /* compared bytewise (generated_gemm) */
    w.s.f64 = f64;
    w.s.batch_hint = 1;
    if (op == IR_CONV_W) { /* dU [r, c] += (A dy Aᵀ) [r, tiles] · V [c, tiles]ᵀ */
        w.s.m = q->r, w.s.n = q->c, w.s.k = w.tiles;
        w.s.lda = w.tiles, w.s.ldb = w.tiles, w.s.ldc = q->c;
        w.s.tb = w.s.accumulate = true;
    } else { /* M [out, tiles] = U [out, in] · V [in, tiles] */
        w.s.m = w.out, w.s.n = w.tiles, w.s.k = w.in;
        w.s.lda = w.in, w.s.ldb = w.tiles, w.s.ldc = w.tiles;
        w.s.b_in_place = true;
    }
    long per_batch, fixed;
    gemm_pack_bound(&w.s, &per_batch, &fixed);
    ensure(per_batch == 0); /* every dimension is a constant */
    w.pe = (fixed + 15) / 16 * 16;
    w.u = (w.out * w.in + 15) / 16 * 16;
    w.v = (w.in * w.tiles + 15) / 16 * 16;
    w.mm = (w.out * w.tiles + 15) / 16 * 16;
    long xi = (long)w.f->a * w.f->a;
    w.shared = xi * ((op == IR_CONV_W ? 0 : w.u) + w.pe);
    w.slot = xi * (w.v + w.mm + (op == IR_CONV_W ? w.u : 0)) + w.pe;
    return w;
}

/* Σ_j L[row][j]·x[j·stride] over the nonzero L[row][j], in the order and
 * with the operations of winograd_kernels.c's lincomb (no multiply for
 * ±1), so that a filter transformed here has the bits of one transformed
 * by the generated code. T is float or double. */
#define WINOGRAD_LINCOMB(T, name)                                                                  \
    static T name(const double *L, int cols, int row, const T *x, int stride) {                    \
        T acc = 0;                                                                                 \
        bool any = false;                                                                          \
        for (int j = 0; j < cols; j++) {                                                           \
            T k = (T)L[row * cols + j], v = x[j * stride];                                         \
            if (k == 0) continue;                                                                  \
            if (k == 1 || k == -1)                                                                 \
                acc = !any ? (k == 1 ? v : -v) : (k == 1 ? acc + v : acc - v);                     \
            else                                                                                   \
                acc = any ? acc + v * k : v * k;                                                   \
            any = true;                                                                            \
        }                                                                                          \
        return acc;                                                                                \
    }
WINOGRAD_LINCOMB(float, lincomb_f32)
WINOGRAD_LINCOMB(double, lincomb_f64)

/* U[ξ][ch][i] = (G g Gᵀ)[ξ] for each output channel ch and input i, g
 * the 3x3 filter W[ch][i] (CONV_T: W[i][ch] turned 180°). */
#define WINOGRAD_FILTER(T, name, lincomb)                                                          \
    static void name(const WinogradNode *w, const T *W, T *U) {                                    \
        const WinogradF *f = w->f;                                                                 \
        bool flip = w->op == IR_CONV_T;                                                            \
        for (long ch = 0; ch < w->out; ch++)                                                       \
            for (long i = 0; i < w->in; i++) {                                                     \
                long oc = flip ? i : ch, ic = flip ? ch : i;                                       \
                T g[9], t[4 * 3];                                                                  \
                for (int u = 0; u < 9; u++)                                                        \
                    g[u] = W[(oc * w->q.c + ic) * 9 + (flip ? 8 - u : u)];                         \
                for (int r = 0; r < f->a; r++) /* t = G·g */                                      \
                    for (int j = 0; j < 3; j++)                                                    \
                        t[r * 3 + j] = lincomb(&f->g[0][0], 3, r, g + j, 3);                       \
                for (int r = 0; r < f->a; r++) /* (G g)·Gᵀ */                                   \
                    for (int j = 0; j < f->a; j++)                                                 \
                        U[(r * f->a + j) * w->u + ch * w->in + i] =                                \
                            lincomb(&f->g[0][0], 3, j, t + r * 3, 1);                              \
            }                                                                                      \
    }
WINOGRAD_FILTER(float, filter_f32, lincomb_f32)
WINOGRAD_FILTER(double, filter_f64, lincomb_f64)

void winograd_filter(const WinogradNode *w, const void *W, void *U) {
    ensure(w->op != IR_CONV_W);
    if (w->s.f64)
        filter_f64(w, W, U);
    else
        filter_f32(w, W, U);
}

long winograd_scratch(const ConvGeom *q, int op) {
    WinogradNode w = winograd_node(q, op, false);
    return w.shared + w.slot;
}
