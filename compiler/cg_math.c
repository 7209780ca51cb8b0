/* cg_math.c — inline math and random draws, as builder verbs.
 *
 * Takes values of the element type (or doubles, for draws); produces the
 * instructions computing e^x, tanh, expm1 and the sigmoid (inline in f32
 * so loops with them vectorize; libm in f64), each activation, its
 * derivative and second derivative, and the counter-based generator shared
 * with runtime/rng.c bit for bit: uniform doubles, Box–Muller normals (for
 * `init` and for RAND nodes alike) and Bernoulli draws.
 */
#include <math.h>

#include "cg.h"

/* e^x. In f32 an inline Cephes-style polynomial (within 2 ulp over the
 * whole range), so loops with exp vectorize instead of calling expf per
 * element; f64 (gradient checks) uses the exact libm exp. */
LLVMValueRef cg_exp(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "exp", x, true);
    LLVMBuilderRef b = cg->b;
    x = cg_max(cg, x, cg_real(cg, -87.33654));
    x = cg_select(cg, LLVMBuildFCmp(b, LLVMRealOGT, x, cg_real(cg, 88.72283), ""),
                  cg_real(cg, 88.72283), x);
    /* x = n·ln2 + r, |r| <= ln2/2; e^x = 2^n · e^r */
    LLVMValueRef n = cg_math1(
        cg, "floor", cg_add(cg, cg_mul(cg, x, cg_real(cg, 1.44269504088896341)), cg_real(cg, 0.5)),
        true);
    LLVMValueRef r = cg_sub(cg, x, cg_mul(cg, n, cg_real(cg, 0.693359375)));
    r = cg_sub(cg, r, cg_mul(cg, n, cg_real(cg, -2.12194440e-4)));
    static const double c[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                               4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
    LLVMValueRef p = cg_real(cg, c[0]);
    for (int i = 1; i < countof(c); i++)
        p = cg_add(cg, cg_mul(cg, p, r), cg_real(cg, c[i]));
    LLVMValueRef y = cg_add(cg, cg_add(cg, cg_mul(cg, p, cg_mul(cg, r, r)), r), cg_real(cg, 1));
    /* 2^n built in the exponent bits; n in [-126, 128], so split it in two
     * halves to stay in range at both ends. */
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, cg->i32, "");
    LLVMValueRef h1 = LLVMBuildAShr(b, ni, cg_i32(cg, 1), ""), h2 = LLVMBuildSub(b, ni, h1, "");
    LLVMValueRef p1 = LLVMBuildBitCast(
        b, LLVMBuildShl(b, LLVMBuildAdd(b, h1, cg_i32(cg, 127), ""), cg_i32(cg, 23), ""), cg->T,
        "");
    LLVMValueRef p2 = LLVMBuildBitCast(
        b, LLVMBuildShl(b, LLVMBuildAdd(b, h2, cg_i32(cg, 127), ""), cg_i32(cg, 23), ""), cg->T,
        "");
    return cg_mul(cg, cg_mul(cg, y, p1), p2);
}

/* tanh x. In f32 inline (Cephes' tanhf, within 2 ulp) so loops vectorize:
 * an odd polynomial for |x| < 0.625, where 1 - 2/(e^2|x| + 1) would lose
 * digits to cancellation, that formula with x's sign elsewhere. f64: libm. */
LLVMValueRef cg_tanh(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "tanh", x, false);
    LLVMValueRef ax = cg_math1(cg, "fabs", x, true), z = cg_mul(cg, x, x);
    static const double c[] = {-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                               1.33314422036e-1, -3.33332819422e-1};
    LLVMValueRef p = cg_real(cg, c[0]);
    for (int i = 1; i < countof(c); i++)
        p = cg_add(cg, cg_mul(cg, p, z), cg_real(cg, c[i]));
    LLVMValueRef small = cg_add(cg, cg_mul(cg, cg_mul(cg, p, z), x), x);
    LLVMValueRef e = cg_exp(cg, cg_add(cg, ax, ax));
    LLVMValueRef big =
        cg_sub(cg, cg_real(cg, 1), cg_div(cg, cg_real(cg, 2), cg_add(cg, e, cg_real(cg, 1))));
    big = cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, x, cg_real(cg, 0), ""),
                    LLVMBuildFNeg(cg->b, big, ""), big);
    return cg_select(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, ax, cg_real(cg, 0.625), ""), small, big);
}

/* e^x - 1 without the cancellation near 0: the Taylor series to x^7 for
 * |x| < 0.35 (error below 2e-8 relative), e^x - 1 elsewhere. */
LLVMValueRef cg_expm1(Codegen *cg, LLVMValueRef x) {
    if (cg->opt.f64) return cg_math1(cg, "expm1", x, false);
    LLVMValueRef series = cg_real(cg, 1); /* x·(1 + x/2·(1 + x/3·(... (1 + x/7)))) */
    for (int k = 7; k >= 2; k--)
        series =
            cg_add(cg, cg_real(cg, 1), cg_mul(cg, cg_mul(cg, x, cg_real(cg, 1.0 / k)), series));
    series = cg_mul(cg, x, series);
    LLVMValueRef direct = cg_sub(cg, cg_exp(cg, x), cg_real(cg, 1));
    LLVMValueRef near0 =
        LLVMBuildFCmp(cg->b, LLVMRealOLT, cg_math1(cg, "fabs", x, true), cg_real(cg, 0.35), "");
    return cg_select(cg, near0, series, direct);
}

LLVMValueRef cg_sigmoid(Codegen *cg, LLVMValueRef x) {
    LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, x, ""));
    return cg_div(cg, cg_real(cg, 1), cg_add(cg, cg_real(cg, 1), e));
}

/* ----------------------------------------------------------- activations */

LLVMValueRef cg_activation(Codegen *cg, ActKind act, double alpha, LLVMValueRef x) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    switch (act) {
    case ACT_LINEAR: return x;
    case ACT_RELU: return cg_select(cg, cg_gt0(cg, x), x, zero);
    case ACT_LEAKY_RELU: return cg_select(cg, cg_gt0(cg, x), x, cg_mul(cg, cg_real(cg, alpha), x));
    case ACT_SIGMOID: return cg_sigmoid(cg, x);
    case ACT_TANH: return cg_tanh(cg, x);
    case ACT_ELU:
        return cg_select(cg, cg_gt0(cg, x), x, cg_mul(cg, cg_real(cg, alpha), cg_expm1(cg, x)));
    case ACT_SOFTPLUS: { /* max(x, 0) + log1p(e^-|x|): no overflow */
        LLVMValueRef e = cg_exp(cg, LLVMBuildFNeg(cg->b, cg_math1(cg, "fabs", x, true), ""));
        return cg_add(cg, cg_max(cg, x, zero), cg_math1(cg, "log1p", e, false));
    }
    case ACT_GELU: { /* x * Φ(x) = x/2 * (1 + erf(x/√2)) */
        LLVMValueRef erf = cg_math1(cg, "erf", cg_mul(cg, x, cg_real(cg, M_SQRT1_2)), false);
        return cg_mul(cg, cg_mul(cg, x, cg_real(cg, 0.5)), cg_add(cg, one, erf));
    }
    default: internal_error("activation %d", act);
    }
}

/* f'(x), given x and y = f(x). */
LLVMValueRef cg_activation_grad(Codegen *cg, ActKind act, double alpha, LLVMValueRef x,
                                LLVMValueRef y) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1);
    switch (act) {
    case ACT_LINEAR: return one;
    case ACT_RELU: return cg_select(cg, cg_gt0(cg, x), one, zero);
    case ACT_LEAKY_RELU: return cg_select(cg, cg_gt0(cg, x), one, cg_real(cg, alpha));
    case ACT_SIGMOID: return cg_mul(cg, y, cg_sub(cg, one, y)); /* y(1-y) */
    case ACT_TANH: return cg_sub(cg, one, cg_mul(cg, y, y));    /* 1-y² */
    case ACT_ELU:
        return cg_select(cg, cg_gt0(cg, x), one, cg_add(cg, y, cg_real(cg, alpha))); /* y+α */
    case ACT_SOFTPLUS: return cg_sigmoid(cg, x);
    case ACT_GELU: { /* Φ(x) + x φ(x) */
        LLVMValueRef erf = cg_math1(cg, "erf", cg_mul(cg, x, cg_real(cg, M_SQRT1_2)), false);
        LLVMValueRef cdf = cg_mul(cg, cg_real(cg, 0.5), cg_add(cg, one, erf));
        LLVMValueRef pdf = cg_mul(cg, cg_real(cg, 0.3989422804014327),
                                  cg_exp(cg, cg_mul(cg, cg_real(cg, -0.5), cg_mul(cg, x, x))));
        return cg_add(cg, cdf, cg_mul(cg, x, pdf));
    }
    default: internal_error("activation %d", act);
    }
}

/* The derivative of f' (the contractive term's gradient): f''(x) from x and
 * y = f(x); from y alone (from_y), d f'/dy, as f' was written in y. */
LLVMValueRef cg_activation_grad2(Codegen *cg, ActKind act, double alpha, LLVMValueRef x,
                                 LLVMValueRef y, bool from_y) {
    LLVMValueRef zero = cg_real(cg, 0), one = cg_real(cg, 1), two = cg_real(cg, 2);
    switch (act) {
    case ACT_LINEAR:
    case ACT_RELU:
    case ACT_LEAKY_RELU: return zero;
    case ACT_SIGMOID: { /* f' = y(1-y): d/dy = 1-2y; f'' = y(1-y)(1-2y) */
        LLVMValueRef d = cg_sub(cg, one, cg_mul(cg, two, y));
        return from_y ? d : cg_mul(cg, cg_mul(cg, y, cg_sub(cg, one, y)), d);
    }
    case ACT_TANH: { /* f' = 1-y²: d/dy = -2y; f'' = -2y(1-y²) */
        LLVMValueRef d = cg_mul(cg, cg_real(cg, -2), y);
        return from_y ? d : cg_mul(cg, d, cg_sub(cg, one, cg_mul(cg, y, y)));
    }
    case ACT_ELU: /* f' = 1 or y+α: d/dy = 0 or 1; f'' = 0 or y+α */
        return cg_select(cg, cg_gt0(cg, x), zero, from_y ? one : cg_add(cg, y, cg_real(cg, alpha)));
    case ACT_SOFTPLUS: { /* f' = σ(x): f'' = σ(1-σ) */
        LLVMValueRef s = cg_sigmoid(cg, x);
        return cg_mul(cg, s, cg_sub(cg, one, s));
    }
    case ACT_GELU: { /* f' = Φ + xφ: f'' = φ(x)(2 - x²) */
        LLVMValueRef pdf = cg_mul(cg, cg_real(cg, 0.3989422804014327),
                                  cg_exp(cg, cg_mul(cg, cg_real(cg, -0.5), cg_mul(cg, x, x))));
        return cg_mul(cg, pdf, cg_sub(cg, two, cg_mul(cg, x, x)));
    }
    default: internal_error("activation %d", act);
    }
}

/* ----------------------------------------------------- counter-based RNG */

/* splitmix64's finalizer; must match runtime/rng.c bit for bit. */
static LLVMValueRef cg_mix64(Codegen *cg, LLVMValueRef z) {
    LLVMBuilderRef b = cg->b;
    z = LLVMBuildAdd(b, z, LLVMConstInt(cg->i64, 0x9E3779B97F4A7C15ull, 0), "");
    z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 30), ""), ""),
                     LLVMConstInt(cg->i64, 0xBF58476D1CE4E5B9ull, 0), "");
    z = LLVMBuildMul(b, LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 27), ""), ""),
                     LLVMConstInt(cg->i64, 0x94D049BB133111EBull, 0), "");
    return LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(cg, 31), ""), "");
}

/* aec_rng_u64(seed, stream, counter) as a double uniform in [0, 1). */
LLVMValueRef cg_uniform(Codegen *cg, LLVMValueRef seed, LLVMValueRef stream, LLVMValueRef counter) {
    LLVMValueRef u = cg_mix64(
        cg, LLVMBuildXor(cg->b, cg_mix64(cg, LLVMBuildXor(cg->b, cg_mix64(cg, seed), stream, "")),
                         counter, ""));
    u = LLVMBuildLShr(cg->b, u, cg_i64(cg, 11), "");
    return LLVMBuildFMul(cg->b, LLVMBuildUIToFP(cg->b, u, cg->f64, ""),
                         LLVMConstReal(cg->f64, 0x1p-53), "");
}

/* The top 53 of 64 random bits as a double in [0, 1). */
static LLVMValueRef cg_unit(Codegen *cg, LLVMValueRef bits) {
    LLVMValueRef u =
        LLVMBuildUIToFP(cg->b, LLVMBuildLShr(cg->b, bits, cg_i64(cg, 11), ""), cg->f64, "");
    return LLVMBuildFMul(cg->b, u, LLVMConstReal(cg->f64, 0x1p-53), "");
}

LLVMValueRef cg_box_muller(Codegen *cg, LLVMValueRef u1, LLVMValueRef u2) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef r =
        cg_math_f64(cg, "llvm.log.f64", LLVMBuildFSub(b, LLVMConstReal(cg->f64, 1), u1, ""));
    r = cg_math_f64(cg, "llvm.sqrt.f64", LLVMBuildFMul(b, LLVMConstReal(cg->f64, -2), r, ""));
    LLVMValueRef angle = LLVMBuildFMul(b, u2, LLVMConstReal(cg->f64, 2 * M_PI), "");
    return LLVMBuildFMul(b, r, cg_math_f64(cg, "llvm.cos.f64", angle), "");
}

/* Element `index` of RAND node n at this step: aec_rng_noise(seed, stream,
 * step, counter) of runtime/rng.c, bit for bit. The key is loop-invariant
 * (LLVM hoists it), so an element costs one mix64, two for a normal. */
LLVMValueRef cg_rand(Codegen *cg, const IrNode *n, LLVMValueRef step, LLVMValueRef index) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef seed = LLVMConstInt(cg->i64, cg->model->train.seed, 0);
    LLVMValueRef stream = LLVMConstInt(cg->i64, IR_STREAM_NOISE + (unsigned)n->stream, 0);
    /* aec_rng_u64(seed, stream, step): mix64(mix64(mix64(seed) ^ stream) ^ step) */
    LLVMValueRef key = cg_mix64(cg, LLVMBuildXor(b, cg_mix64(cg, seed), stream, ""));
    key = cg_mix64(cg, LLVMBuildXor(b, key, step, ""));
    LLVMValueRef v;
    if (n->rand == RAND_NORMAL) { /* Box–Muller from counters 2i and 2i+1 */
        LLVMValueRef i2 = LLVMBuildShl(b, index, cg_i64(cg, 1), "");
        LLVMValueRef i2p1 = LLVMBuildOr(b, i2, cg_i64(cg, 1), "");
        LLVMValueRef u1 = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, i2, "")));
        LLVMValueRef u2 = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, i2p1, "")));
        v = cg_box_muller(cg, u1, u2);
    } else {
        v = cg_unit(cg, cg_mix64(cg, LLVMBuildXor(b, key, index, "")));
        if (n->rand == RAND_BERNOULLI) {
            LLVMValueRef hit = LLVMBuildFCmp(b, LLVMRealOLT, v, LLVMConstReal(cg->f64, n->p), "");
            return cg_select(cg, hit, cg_real(cg, 1), cg_real(cg, 0));
        }
    }
    return cg->opt.f64 ? v : LLVMBuildFPTrunc(b, v, cg->T, "");
}
