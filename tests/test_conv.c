/* test_conv.c — the image layers: conv, deconv, pooling, upsampling,
 * batchnorm (over channels and over features).
 *
 * - Gradients: every layer, with strides, paddings (same, valid, pixels),
 *   non-square kernels and odd sizes, compiled through the whole pipeline
 *   with --dtype f64; loss_grad must match central differences of the loss
 *   to a relative error (2-norm over all parameters) of at most 1e-6.
 * - Forward values against independent direct loops on random data: conv
 *   and deconv (PyTorch's Conv2d / ConvTranspose2d definitions, weights
 *   [out, in, kh, kw] / [in, out, kh, kw]), max/avg pooling, upsampling.
 * - Batchnorm as PyTorch's: batch statistics in training, the running
 *   statistics updated with momentum (variance unbiased) by train_step and
 *   kept in the params block, and used by eval/encode; loss_grad leaves them.
 * - Learning: specs/conv_small.ae trained on a Fashion-MNIST subset lowers
 *   its test MSE by a measured factor.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "rt.h"
#include "testutil.h"

enum { BATCH = 3 };

/* ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) over every trainable parameter. */
static void check_gradient_at(const char *spec, int batch) {
    TuFixture f;
    tu_open(&f, spec, batch, 2);
    double err = tu_gradient_error(&f, tu_loss);
    tu_close(&f);
    if (!(err <= 1e-6))
        fail_msg("relative gradient error %.3g at batch %d for:\n%s", err, batch, spec);
}
static void check_gradient(const char *spec) {
    check_gradient_at(spec, BATCH);
}

/* A model around `layers` (encoder) and `decoder`, mse loss. */
static void check_layers_at(int batch, const char *input, const char *encoder,
                            const char *decoder) {
    char spec[2048];
    snprintf(spec, sizeof spec, "model g {\n input %s\n encoder { %s }\n decoder { %s }\n}\n",
             input, encoder, decoder);
    check_gradient_at(spec, batch);
}
static void check_layers(const char *input, const char *encoder, const char *decoder) {
    check_layers_at(BATCH, input, encoder, decoder);
}

static void test_conv_gradients(void **state) {
    (void)state;
    /* same with stride 2 on odd sizes (asymmetric padding), pixels, valid,
     * a non-square kernel, 1x1 (no im2col), one output channel (a scalar bias) */
    /* a batch of one splits its sample into tasks; a batch of more runs
     * CONV_SLOTS tasks of samples (fewer samples than that; more, unevenly) */
    static const int batches[] = {1, BATCH, 2 * CONV_SLOTS + 3};
    for (int i = 0; i < countof(batches); i++)
        check_layers_at(batches[i], "2x5x7",
                        "conv 3 3x3 stride=2 pad=same tanh; conv 2 1x1; flatten; dense 4",
                        "dense 70; reshape 2x5x7; deconv 2 1x1");
    check_layers("2x6x5", "conv 2 3x2 pad=1 stride=2 elu; conv 3 2x2 pad=valid; flatten; dense 3",
                 "dense 60; reshape 2x6x5");
    check_layers("3x4x4", "conv 2 1x1 sigmoid; conv 1 1x1; flatten", "dense 48; reshape 3x4x4");
    check_layers("1x6x6", "conv 2 4x4 stride=2 pad=same; flatten", "dense 36; reshape 1x6x6");
}

static void test_deconv_gradients(void **state) {
    (void)state;
    check_layers("1x5x5", "flatten; dense 8",
                 "reshape 2x2x2; deconv 3 3x3 stride=2 pad=same tanh; "
                 "deconv 1 2x2 pad=valid; flatten; dense 25; reshape 1x5x5");
    check_layers("2x7x7", "flatten; dense 6",
                 "reshape 1x2x3; deconv 2 3x3 stride=3 pad=1; "
                 "flatten; dense 98; reshape 2x7x7");
    check_layers("2x4x4", "flatten; dense 8", "reshape 2x2x2; deconv 2 4x4 stride=2 pad=1");
}

static void test_pool_gradients(void **state) {
    (void)state;
    /* odd sizes (a row and a column left out), overlapping windows */
    check_layers("2x5x5", "conv 2 2x2 pad=1 tanh; maxpool 2; flatten; dense 3",
                 "dense 50; reshape 2x5x5");
    check_layers("1x6x5", "conv 2 3x3 pad=same; maxpool 3 stride=1; flatten",
                 "dense 30; reshape 1x6x5");
    check_layers("2x5x5", "conv 2 2x2 tanh; avgpool 2 stride=1; avgpool 3 stride=2; flatten",
                 "dense 50; reshape 2x5x5");
    check_layers("1x6x6", "flatten; dense 9", "reshape 1x3x3; upsample 2; conv 1 3x3 pad=same");
    check_layers("2x6x6", "conv 2 3x3 stride=3; upsample 3; flatten; dense 4",
                 "dense 72; reshape 2x6x6");
}

/* maxpool's adjoint sends a window's gradient to its first maximum, in
 * the window's row-major order, as PyTorch: an input whose windows tie
 * everywhere after a 1x1 convolution (w = (1, 1), b = 0), at x0 + x1 = 3
 * and 10, with x0 counting 1, 2, 3, 0 (4, 5, 6, 7) over each window's
 * positions. So dW = g·x at the first positions, (1, 2) and (4, 6), and
 * db = g0 + g1: the code's gradient g solved from dW must give db. Even
 * planes (the vector loops, maxpool2_planes) and odd (the scalar ones). */
static void test_maxpool_ties(void **state) {
    (void)state;
    static const char *const inputs[] = {"2x2x4", "2x3x5"};
    for (int c = 0; c < countof(inputs); c++) {
        int h, w;
        sscanf(inputs[c], "2x%dx%d", &h, &w);
        char spec[512];
        snprintf(spec, sizeof spec,
                 "model tie {\n input %s\n encoder { conv 1 1x1; maxpool 2; flatten }\n"
                 " decoder { dense %d; reshape %s }\n}\n",
                 inputs[c], 2 * h * w, inputs[c]);
        Arena *a = arena_new();
        Codegen *cg = NULL;
        const aec_model *m = tu_jit(a, spec, true, &cg);
        assert_non_null(m);
        double *params = tu_alloc(sizeof(double) * (size_t)m->param_count);
        double *grad = tu_alloc(sizeof(double) * (size_t)m->trainable_count);
        double *x = tu_alloc(sizeof(double) * (size_t)(2 * h * w));
        void *ws = malloc(m->workspace_size(1));
        assert_int_equal(m->init(params, 3), AEC_OK);
        assert_int_equal(m->tensors[0].numel, 2); /* the convolution's weight, then its bias */
        params[m->tensors[0].offset] = params[m->tensors[0].offset + 1] = 1;
        params[m->tensors[1].offset] = 0;
        static const int x0[2][2][2] = {{{1, 2}, {3, 0}}, {{4, 5}, {6, 7}}}; /* [window][i][j] */
        for (int win = 0; win < 2; win++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    int at = i * w + 2 * win + j;
                    x[at] = x0[win][i][j];
                    x[h * w + at] = (win ? 10 : 3) - x0[win][i][j];
                }
        double loss;
        assert_int_equal(m->loss_grad(params, x, NULL, 1, 1, &loss, grad, ws), AEC_OK);
        double dw0 = grad[m->tensors[0].offset], dw1 = grad[m->tensors[0].offset + 1];
        double db = grad[m->tensors[1].offset];
        double g1 = (2 * dw0 - dw1) / 2, g0 = dw0 - 4 * g1; /* dw0 = g0 + 4 g1, dw1 = 2 g0 + 6 g1 */
        assert_true(fabs(g0) > 1e-6 && fabs(g1) > 1e-6);
        if (!(fabs(db - (g0 + g1)) <= 1e-9 * (fabs(g0) + fabs(g1))))
            fail_msg("%s: db %.17g, but the first maxima give %.17g", inputs[c], db, g0 + g1);
        free(ws);
        free(x);
        free(grad);
        free(params);
        cg_free(cg);
        arena_free(a);
    }
}

static void test_batchnorm_gradients(void **state) {
    (void)state;
    check_layers("2x3x4", "conv 3 3x3 pad=same; batchnorm; relu; flatten; dense 4",
                 "dense 24; reshape 2x3x4");
    check_layers("1x4x3", "conv 1 3x3 pad=same; batchnorm eps=0.1; flatten",
                 "dense 12; reshape 1x4x3");
    check_layers("6", "dense 5; batchnorm; tanh; dense 3; batchnorm momentum=0.5",
                 "dense 6 sigmoid");
}

/* Batch norm's sums over a batch of 18,816-value rows (24 channels of
 * 28x28) are tasks of whole channels, all rows each (Plan.col_split), not
 * a task per row: the plan must split them so, and the gradient still
 * match. Pooling runs as tasks of planes. */
static void test_sums_over_wide_rows_gradients(void **state) {
    (void)state;
    const char *spec =
        "model w {\n input 1x28x28\n encoder { conv 24 3x3 pad=same; batchnorm; relu;\n"
        " maxpool 2; conv 1 1x1; flatten; dense 3 }\n"
        " decoder { dense 784; reshape 1x28x28 }\n}\n";
    Arena *a = arena_new();
    Model *m = tu_model(a, "w", spec);
    assert_non_null(m);
    const Plan *p = program_entry(compile_model(a, m), GRAPH_TRAIN, 0)->plan;
    int by_columns = 0;
    for (int k = 0; k < p->fusion->nkernels; k++)
        if (p->col_split[k]) {
            by_columns++;
            assert_int_equal(p->col_split[k] % 784, 0); /* whole channels */
            assert_int_equal(p->split[k], 0);
        }
    assert_true(by_columns >= 2); /* the mean's and the variance's sums, forward */
    arena_free(a);
    TuFixture f;
    tu_open(&f, spec, BATCH, 2);
    double err = tu_gradient_error(&f, tu_loss);
    tu_close(&f);
    if (!(err <= 1e-6)) fail_msg("relative gradient error %.3g", err);
}

/* 3x3, stride 1, pad 1 between 8 or more channels runs as Winograd's
 * F(2x2, 3x3) (compiler/winograd.c): conv, deconv, odd sizes (partial
 * tiles) and even, through all three of its ops (forward, input and filter
 * gradient). */
static void test_winograd_gradients(void **state) {
    (void)state;
    ConvGeom q = {.c = 8,
                  .h = 5,
                  .w = 7,
                  .r = 9,
                  .oh = 5,
                  .ow = 7,
                  .kh = 3,
                  .kw = 3,
                  .stride = 1,
                  .pad_h = 1,
                  .pad_w = 1};
    assert_true(conv_winograd(&q));
    q.c = 4; /* too thin: im2col */
    assert_false(conv_winograd(&q));
    static const int batches[] = {1, BATCH, 2 * CONV_SLOTS + 3}; /* as in test_conv_gradients */
    for (int i = 0; i < countof(batches); i++)
        check_layers_at(batches[i], "8x5x7",
                        "conv 9 3x3 pad=same tanh; conv 8 3x3 pad=1; flatten; dense 3",
                        "dense 280; reshape 8x5x7; deconv 8 3x3 pad=same");
    check_layers("8x4x6", "conv 8 3x3 pad=same; batchnorm; relu; maxpool 2; flatten; dense 2",
                 "dense 192; reshape 8x4x6");
}

/* f32 loss_grad of `spec` on fixed data, compiled with these options. */
static float *winograd_grad_f32(const char *spec, CodegenOptions opt, const float *x, int batch,
                                long *n) {
    Arena *a = arena_new();
    diag_reset();
    Codegen *cg = cg_program(compile_model(a, tu_model(a, "w.ae", spec)), &opt);
    assert_non_null(cg);
    char sym[256];
    snprintf(sym, sizeof sym, "%s_model", cg_prefix(cg));
    const aec_model *m = cg_jit_lookup(cg, sym);
    float *params = tu_alloc(sizeof(float) * (size_t)m->param_count);
    float *grad = tu_alloc(sizeof(float) * (size_t)(m->trainable_count + 1));
    void *ws = malloc(m->workspace_size(batch));
    assert_int_equal(m->init(params, 5), AEC_OK);
    float loss;
    assert_int_equal(m->loss_grad(params, x, NULL, batch, 1, &loss, grad, ws), AEC_OK);
    *n = m->trainable_count;
    free(params);
    free(ws);
    cg_free(cg);
    arena_free(a);
    return grad;
}

/* In f32, Winograd's gradients agree with im2col's to rounding — with the
 * host's code and with AVX2 code (x86-64-v3: 8-lane rows, AVX2's masked
 * moves) where this machine runs it. */
static void test_winograd_agrees_with_im2col_f32(void **state) {
    (void)state;
    const char *spec = "model w {\n input 16x14x13\n encoder { conv 16 3x3 pad=same relu;\n"
                       " conv 24 3x3 pad=same; flatten; dense 8 }\n decoder mirror\n}\n";
    enum { B = 4, N = B * 16 * 14 * 13 };
    static float x[N];
    uint64_t seed = 3;
    for (int i = 0; i < N; i++)
        x[i] = (float)tu_rand(&seed);
    const char *cpus[2] = {NULL, NULL};
    int ncpus = 1;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cpus[ncpus++] = "x86-64-v3";
#endif
    long n = 0, n2 = 0;
    CodegenOptions base = {.opt_level = 2, .gemm = GEMM_AEC};
    base.im2col = true;
    float *ref = winograd_grad_f32(spec, base, x, B, &n);
    for (int c = 0; c < ncpus; c++) {
        CodegenOptions opt = {.opt_level = 2, .gemm = GEMM_AEC, .cpu = cpus[c]};
        float *g = winograd_grad_f32(spec, opt, x, B, &n2);
        assert_int_equal(n, n2);
        double diff = 0, norm = 0;
        for (long i = 0; i < n; i++)
            diff += ((double)g[i] - ref[i]) * ((double)g[i] - ref[i]),
                norm += (double)ref[i] * ref[i];
        if (!(sqrt(diff) <= 1e-5 * sqrt(norm)))
            fail_msg("%s: Winograd vs im2col gradient differs by %.3g (relative)",
                     cpus[c] ? cpus[c] : "host", sqrt(diff / norm));
        free(g);
    }
    free(ref);
}

static void test_mirror_and_tied_gradients(void **state) {
    (void)state;
    check_gradient(
        "model m {\n input 1x6x6\n encoder { conv 3 3x3 stride=2 pad=same relu; batchnorm;\n"
        " conv 2 3x3 pad=1 tanh; maxpool 3 }\n decoder mirror\n output sigmoid\n loss bce\n}\n");
    check_gradient("model t {\n input 2x5x5\n encoder { conv 3 3x3 stride=2 tanh; conv 2 1x1 }\n"
                   " decoder tied\n loss mae\n}\n");
}

/* ---------------------------------------------------- forward vs direct loops */

/* PyTorch's Conv2d on one sample: x [C, H, W], w [R, C, KH, KW] -> y [R, OH, OW]. */
static void direct_conv(const double *x, const double *w, const double *bias, double *y, int C,
                        int H, int W, int R, int KH, int KW, int S, int PH, int PW, int OH,
                        int OW) {
    for (int r = 0; r < R; r++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double acc = bias[r];
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < KH; i++)
                        for (int j = 0; j < KW; j++) {
                            int iy = oy * S - PH + i, ix = ox * S - PW + j;
                            if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                acc +=
                                    w[((r * C + c) * KH + i) * KW + j] * x[(c * H + iy) * W + ix];
                        }
                y[(r * OH + oy) * OW + ox] = acc;
            }
}

/* PyTorch's ConvTranspose2d: x [C, H, W], w [C, R, KH, KW] -> y [R, OH, OW],
 * y[r, iy·S − P + i, ix·S − P + j] += w[c, r, i, j]·x[c, iy, ix]. */
static void direct_deconv(const double *x, const double *w, const double *bias, double *y, int C,
                          int H, int W, int R, int KH, int KW, int S, int PH, int PW, int OH,
                          int OW) {
    for (int r = 0; r < R; r++)
        for (int i = 0; i < OH * OW; i++)
            y[r * OH * OW + i] = bias[r];
    for (int c = 0; c < C; c++)
        for (int iy = 0; iy < H; iy++)
            for (int ix = 0; ix < W; ix++)
                for (int r = 0; r < R; r++)
                    for (int i = 0; i < KH; i++)
                        for (int j = 0; j < KW; j++) {
                            int oy = iy * S - PH + i, ox = ix * S - PW + j;
                            if (oy >= 0 && oy < OH && ox >= 0 && ox < OW)
                                y[(r * OH + oy) * OW + ox] +=
                                    w[((c * R + r) * KH + i) * KW + j] * x[(c * H + iy) * W + ix];
                        }
}

/* Encode random samples with the encoder of `spec` and compare with the
 * direct loops applied layer by layer. */
typedef void RefFn(const Model *m, const Layer *l, const double *params, const double *x,
                   double *y);
static RefFn *ref_of(LayerKind kind);

static void check_forward(const char *spec) {
    Arena *a = arena_new();
    Model *model = tu_model(a, "fwd.ae", spec);
    assert_non_null(model);
    TuFixture f;
    tu_open(&f, spec, BATCH, 2);
    uint64_t s = 9;
    for (int64_t i = 0; i < f.m->param_count; i++)
        f.params[i] = 2 * tu_rand(&s) - 1;
    for (int64_t i = 0; i < BATCH * f.m->input_size; i++)
        f.x[i] = 2 * tu_rand(&s) - 1;
    int64_t nc = f.m->code_size;
    double *code = tu_alloc(sizeof(double) * (size_t)(BATCH * nc));
    assert_int_equal(f.m->encode(f.params, f.x, code, BATCH, f.ws), AEC_OK);
    for (int b = 0; b < BATCH; b++) {
        double *cur = tu_alloc(sizeof(double) * (size_t)f.m->input_size);
        memcpy(cur, f.x + b * f.m->input_size, sizeof(double) * (size_t)f.m->input_size);
        for (int k = 0; k < model->n_encoder; k++) {
            const Layer *l = &model->layers[k];
            double *next = tu_alloc(sizeof(double) * (size_t)shape_numel(l->out));
            ref_of(l->kind)(model, l, f.params, cur, next);
            free(cur);
            cur = next;
        }
        for (int64_t i = 0; i < nc; i++)
            if (fabs(code[b * nc + i] - cur[i]) > 1e-12 * fmax(1, fabs(cur[i])))
                fail_msg("%s\nsample %d, output %ld: %.17g, the direct loops give %.17g", spec, b,
                         (long)i, code[b * nc + i], cur[i]);
        free(cur);
    }
    free(code);
    tu_close(&f);
    arena_free(a);
}

static void ref_conv(const Model *m, const Layer *l, const double *p, const double *x, double *y) {
    const ParamTensor *w = &m->tensors[l->weight], *b = &m->tensors[l->bias];
    direct_conv(x, p + w->offset, p + b->offset, y, l->in.dim[0], l->in.dim[1], l->in.dim[2],
                l->units, l->kh, l->kw, l->stride, l->pad, l->pad_w, l->out.dim[1], l->out.dim[2]);
}

static void ref_deconv(const Model *m, const Layer *l, const double *p, const double *x,
                       double *y) {
    const ParamTensor *w = &m->tensors[l->weight], *b = &m->tensors[l->bias];
    direct_deconv(x, p + w->offset, p + b->offset, y, l->in.dim[0], l->in.dim[1], l->in.dim[2],
                  l->units, l->kh, l->kw, l->stride, l->pad, l->pad_w, l->out.dim[1],
                  l->out.dim[2]);
}

static void ref_pool(const Model *m, const Layer *l, const double *p, const double *x, double *y) {
    (void)m, (void)p;
    int C = l->in.dim[0], H = l->in.dim[1], W = l->in.dim[2], OH = l->out.dim[1],
        OW = l->out.dim[2];
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double best = -INFINITY, sum = 0;
                for (int i = 0; i < l->kh; i++)
                    for (int j = 0; j < l->kw; j++) {
                        double v = x[(c * H + oy * l->stride + i) * W + ox * l->stride + j];
                        best = fmax(best, v);
                        sum += v;
                    }
                y[(c * OH + oy) * OW + ox] = l->kind == LY_MAXPOOL ? best : sum / (l->kh * l->kw);
            }
}

static void ref_upsample(const Model *m, const Layer *l, const double *p, const double *x,
                         double *y) {
    (void)m, (void)p;
    int C = l->in.dim[0], H = l->in.dim[1], W = l->in.dim[2], K = l->kh;
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < H * K; oy++)
            for (int ox = 0; ox < W * K; ox++)
                y[(c * H * K + oy) * W * K + ox] = x[(c * H + oy / K) * W + ox / K];
}

static RefFn *ref_of(LayerKind kind) {
    switch (kind) {
    case LY_CONV: return ref_conv;
    case LY_DECONV: return ref_deconv;
    case LY_MAXPOOL:
    case LY_AVGPOOL: return ref_pool;
    case LY_UPSAMPLE: return ref_upsample;
    default: fail_msg("no direct loop for layer kind %d", kind);
    }
    return NULL;
}

static void test_forward_against_direct_loops(void **state) {
    (void)state;
    static const struct {
        const char *input, *layers;
    } cases[] = {
        /* same (stride 1, 2 with an even kernel), pixels with stride 3, 1x1, valid */
        {"3x9x8", "conv 4 3x3 pad=same; conv 3 4x4 stride=2 pad=same; conv 5 3x2 stride=3 pad=2; "
                  "conv 2 1x1; conv 3 2x2 pad=valid"},
        {"3x2x3",
         "deconv 2 2x2 stride=2; deconv 2 3x3 stride=2 pad=same; deconv 2 4x4 stride=2 pad=1; "
         "deconv 3 3x2 stride=3 pad=1; deconv 2 1x1"},
        {"2x7x9", "maxpool 3 stride=1; avgpool 3 stride=2; upsample 2; maxpool 2"},
        /* Winograd F(2x2, 3x3) (compiler/winograd.c): even and odd sizes, deconv */
        {"8x6x7", "conv 9 3x3 pad=same; conv 8 3x3 pad=1; deconv 10 3x3 pad=same"},
        {"8x9x34", "conv 8 3x3 pad=same; deconv 9 3x3 pad=1"}, /* rows of several vectors */
    };
    for (int i = 0; i < countof(cases); i++) {
        char spec[512];
        int c, h, w;
        sscanf(cases[i].input, "%dx%dx%d", &c, &h, &w);
        /* The decoder only has to give the input's shape back. */
        snprintf(spec, sizeof spec,
                 "model f {\n input %s\n encoder { %s }\n decoder { flatten; dense 4; "
                 "dense %d; reshape %s }\n}\n",
                 cases[i].input, cases[i].layers, c * h * w, cases[i].input);
        check_forward(spec);
    }
}

/* ------------------------------------------------------------- batchnorm */

/* PyTorch's BatchNorm over channels: y = (x − mean)/√(var + eps)·γ + β with
 * the batch's biased variance; running = (1 − m)·running + m·stat, the
 * variance unbiased. Checked on encode after one train_step (eval mode),
 * against the statistics computed here. */
static void test_batchnorm_semantics(void **state) {
    (void)state;
    const char *spec = "model bn {\n input 2x3x2\n encoder { batchnorm momentum=0.3 eps=0.01 }\n"
                       " decoder { conv 2 1x1 }\n train { optimizer sgd lr=1e-12 }\n}\n";
    TuFixture f;
    tu_open(&f, spec, BATCH, 2);
    const aec_tensor_info *t = f.m->tensors;
    /* weight, bias, then decoder weight, bias, then the buffers */
    assert_string_equal(t[0].name, "encoder.0.weight");
    assert_int_equal(t[0].kind, AEC_TENSOR_BIAS);
    assert_string_equal(t[f.m->n_tensors - 2].name, "encoder.0.running_mean");
    assert_string_equal(t[f.m->n_tensors - 1].name, "encoder.0.running_var");
    double init[4];
    double fresh[64];
    assert_int_equal(f.m->init(fresh, 3), AEC_OK);
    init[0] = fresh[t[0].offset], init[1] = fresh[t[1].offset];
    init[2] = fresh[t[f.m->n_tensors - 2].offset], init[3] = fresh[t[f.m->n_tensors - 1].offset];
    assert_true(init[0] == 1 && init[1] == 0 && init[2] == 0 &&
                init[3] == 1); /* γ 1, β 0, mean 0, var 1 */

    double *rm = f.params + t[f.m->n_tensors - 2].offset,
           *rv = f.params + t[f.m->n_tensors - 1].offset;
    rm[0] = 0.5, rm[1] = -0.25, rv[0] = 2, rv[1] = 0.5;
    double before[4] = {rm[0], rm[1], rv[0], rv[1]};

    /* loss_grad does not move the running statistics */
    tu_loss(&f, f.grad);
    assert_true(rm[0] == before[0] && rv[1] == before[3]);

    double *opt = tu_alloc(sizeof(double) * (size_t)(f.m->opt_state_count + 1)), loss;
    assert_int_equal(f.m->train_step(f.params, opt, f.x, NULL, BATCH, 1, &loss, f.ws), AEC_OK);
    for (int c = 0; c < 2; c++) {
        double sum = 0, sq = 0;
        int n = BATCH * 6;
        for (int b = 0; b < BATCH; b++)
            for (int i = 0; i < 6; i++)
                sum += f.x[b * 12 + c * 6 + i];
        double mean = sum / n;
        for (int b = 0; b < BATCH; b++)
            for (int i = 0; i < 6; i++)
                sq += pow(f.x[b * 12 + c * 6 + i] - mean, 2);
        double want_m = 0.7 * before[c] + 0.3 * mean,
               want_v = 0.7 * before[2 + c] + 0.3 * sq / (n - 1);
        if (fabs(rm[c] - want_m) > 1e-12 || fabs(rv[c] - want_v) > 1e-12)
            fail_msg("channel %d: running mean %.17g var %.17g, PyTorch's %.17g %.17g", c, rm[c],
                     rv[c], want_m, want_v);
    }
    /* encode (eval mode) normalizes with the running statistics */
    double code[BATCH * 12];
    assert_int_equal(f.m->encode(f.params, f.x, code, BATCH, f.ws), AEC_OK);
    const double *gamma = f.params + t[0].offset, *beta = f.params + t[1].offset;
    for (int b = 0; b < BATCH; b++)
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 6; i++) {
                double x = f.x[b * 12 + c * 6 + i];
                double want = (x - rm[c]) / sqrt(rv[c] + 0.01) * gamma[c] + beta[c];
                assert_true(fabs(code[b * 12 + c * 6 + i] - want) < 1e-12);
            }
    free(opt);
    tu_close(&f);
}

/* A dense batchnorm (over features) trained in f32 moves its running
 * statistics towards the data's and keeps training finite with a batch of 1. */
static void test_batchnorm_dense_f32(void **state) {
    (void)state;
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m =
        tu_jit(a,
               "model bnd {\n input 4\n encoder { batchnorm }\n decoder { dense 4 }\n"
               " train { optimizer adam lr=0.01 }\n}\n",
               false, &cg);
    assert_non_null(m);
    float *p = tu_alloc(sizeof(float) * (size_t)m->param_count);
    float *opt = tu_alloc(sizeof(float) * (size_t)m->opt_state_count), x[8 * 4], loss;
    void *ws = malloc(m->workspace_size(8));
    assert_int_equal(m->init(p, 1), AEC_OK);
    uint64_t s = 5;
    for (int i = 0; i < 32; i++)
        x[i] = (float)(3 + tu_rand(&s)); /* mean 3.5, var 1/12 */
    for (int step = 1; step <= 60; step++)
        assert_int_equal(m->train_step(p, opt, x, NULL, 8, (uint64_t)step, &loss, ws), AEC_OK);
    const float *rm = p + m->tensors[m->n_tensors - 2].offset,
                *rv = p + m->tensors[m->n_tensors - 1].offset;
    for (int c = 0; c < 4; c++) {
        assert_true(fabs(rm[c] - 3.5) < 0.4);
        assert_true(rv[c] > 0.02 && rv[c] < 0.2);
    }
    /* One sample: a variance of 0, still a finite loss and running variance. */
    assert_int_equal(m->train_step(p, opt, x, NULL, 1, 61, &loss, ws), AEC_OK);
    assert_true(isfinite(loss) && isfinite(rv[0]));
    free(p), free(opt), free(ws);
    cg_free(cg);
    arena_free(a);
}

/* ------------------------------------------------------------- learning */

static double test_mse(const aec_model *m, const float *params, const aec_data *d, void *ws,
                       int batch) {
    double sum = 0;
    for (int64_t i = 0; i < d->n; i += batch) {
        int bs = (int)(d->n - i < batch ? d->n - i : batch);
        float loss;
        assert_int_equal(
            m->eval(params, (const float *)d->x + i * d->dim, NULL, bs, &loss, NULL, ws), AEC_OK);
        sum += (double)loss * bs;
    }
    return sum / (double)d->n;
}

static void test_conv_small_learns(void **state) {
    (void)state;
    enum { BS = 128, EPOCHS = 4 };
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char path[256];
    aec_data train, test;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    assert_int_equal(aec_data_load(path, AEC_F32, 4096, 0, &train), 0);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    assert_int_equal(aec_data_load(path, AEC_F32, 1024, 0, &test), 0);
    snprintf(path, sizeof path, "%s/specs/conv_small.ae", AEC_SOURCE_DIR);
    char *spec = read_file_text(path, NULL);
    assert_non_null(spec);
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m = tu_jit(a, spec, false, &cg);
    free(spec);
    assert_non_null(m);
    assert_int_equal(train.dim, m->input_size);
    float *p = tu_alloc(sizeof(float) * (size_t)m->param_count);
    float *opt = tu_alloc(sizeof(float) * (size_t)m->opt_state_count);
    void *ws = malloc(m->workspace_size(BS));
    assert_int_equal(m->init(p, 1), AEC_OK);
    double before = test_mse(m, p, &test, ws, BS);
    uint64_t step = 1;
    double t0 = aec_now();
    for (int e = 0; e < EPOCHS; e++)
        for (int64_t i = 0; i + BS <= train.n; i += BS) {
            float loss;
            assert_int_equal(m->train_step(p, opt, (const float *)train.x + i * train.dim, NULL, BS,
                                           step++, &loss, ws),
                             AEC_OK);
        }
    double secs = aec_now() - t0, after = test_mse(m, p, &test, ws, BS);
    print_message("conv_small on 4096 images, %d epochs (%.0f images/s): test MSE %.4f -> %.4f "
                  "(factor %.1f)\n",
                  EPOCHS, EPOCHS * 4096 / secs, before, after, before / after);
    assert_true(after < before / 4); /* measured: 6.1 */
    free(p), free(opt), free(ws);
    cg_free(cg);
    arena_free(a);
    aec_data_free(&train);
    aec_data_free(&test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_gradients),
        cmocka_unit_test(test_deconv_gradients),
        cmocka_unit_test(test_pool_gradients),
        cmocka_unit_test(test_batchnorm_gradients),
        cmocka_unit_test(test_sums_over_wide_rows_gradients),
        cmocka_unit_test(test_maxpool_ties),
        cmocka_unit_test(test_winograd_gradients),
        cmocka_unit_test(test_winograd_agrees_with_im2col_f32),
        cmocka_unit_test(test_mirror_and_tied_gradients),
        cmocka_unit_test(test_forward_against_direct_loops),
        cmocka_unit_test(test_batchnorm_semantics),
        cmocka_unit_test(test_batchnorm_dense_f32),
        cmocka_unit_test(test_conv_small_learns),
    };
    return cmocka_run_group_tests_name("conv", tests, NULL, NULL);
}
