/* test_emit.c — what shipping a model adds to codegen, checked in process.
 *
 * - --embed-weights: the *_embedded entry points and the table's
 *   embedded_params give the same bits as the params-taking entry points
 *   with the same weights, in f32 and f64; --embed-half's batch-1 calls
 *   those of the weights rounded to f16, and the conversion itself.
 * - -g: a module with debug info verifies and computes the same bits.
 * - Batch 1, where a GEMM whose rows are the batch becomes a GEMV: encode,
 *   decode and eval give (to rounding) what the same sample gives inside a
 *   larger batch, and loss_grad matches central differences, for every
 *   orientation (a tied decoder multiplies by W, not Wᵀ).
 * Objects, headers, linking, threads, valgrind, targets and `aec run` are
 * checked from the command line by tests/e2e/emit.sh.
 */
/* cmocka 1.1 needs these before <cmocka.h> */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "pool.h"
#include "testutil.h"

static const char tied_spec[] = "model tied {\n"
                                "  input 12\n"
                                "  encoder { dense 7 tanh; dense 3 sigmoid }\n"
                                "  decoder tied\n"
                                "  output sigmoid\n"
                                "  loss mse\n"
                                "}\n";

static const char dense_spec[] = "model dense {\n"
                                 "  input 1x4x5\n"
                                 "  encoder { flatten; dense 9 relu; dense 4 }\n"
                                 "  decoder { dense 9 elu; dense 20 sigmoid; reshape 1x4x5 }\n"
                                 "  loss bce\n"
                                 "}\n";

/* Wide enough for every pass width and several column tasks in the
 * batch-1 embedded path (gemm_sparse_rows), with tails of columns: with
 * AVX-512, 500 columns are f32 tasks of 16 and 15 vectors (passes of 16;
 * 8, 4 and a masked one), 200 one of 12 (8 and 4) and a masked rest. */
static const char wide_spec[] = "model wide {\n"
                                "  input 1x10x30\n"
                                "  encoder { flatten; dense 500 relu; dense 70 }\n"
                                "  decoder { dense 200 relu; dense 300 sigmoid; reshape 1x10x30 }\n"
                                "  loss mse\n"
                                "}\n";
/* A tied decoder wide enough for several column tasks: it reads the
 * encoder's W untransposed, as a copy in the tasks' blocks (gemm.h). */
static const char wide_tied_spec[] = "model wtied {\n"
                                     "  input 600\n"
                                     "  encoder { dense 300 relu; dense 20 }\n"
                                     "  decoder tied\n"
                                     "  output sigmoid\n"
                                     "  loss mse\n"
                                     "}\n";
/* Winograd convolutions (a conv and a deconv, 8 channels, 3x3 same): with
 * the embedded weights their filters' transforms are constants made at
 * compile time, which must give the generated transform's bits. */
static const char conv_spec[] = "model wg {\n"
                                " input 8x6x6\n"
                                " encoder { conv 8 3x3 pad=same relu; flatten; dense 4 }\n"
                                " decoder { dense 288; reshape 8x6x6; deconv 8 3x3 pad=same }\n"
                                "}\n";

typedef int (*encode_embedded_fn)(const void *, void *, int, void *);
typedef int (*eval_embedded_fn)(const void *, const void *, int, void *, void *, void *);

/* The pipeline with codegen options of our choosing; the model table. */
static const aec_model *jit(Arena *a, const char *text, const CodegenOptions *opt, Codegen **cg) {
    Model *m = tu_model(a, "test.ae", text);
    assert_non_null(m);
    *cg = cg_program(compile_model(a, m), opt);
    assert_non_null(*cg);
    const aec_model *table = cg_jit_lookup(*cg, arena_printf(a, "%s_model", cg_prefix(*cg)));
    assert_non_null(table);
    return table;
}

static void *lookup(Arena *a, Codegen *cg, const char *suffix) {
    void *f = cg_jit_lookup(cg, arena_printf(a, "%s_%s", cg_prefix(cg), suffix));
    assert_non_null(f);
    return f;
}

/* Random parameters and data of the model's element type, from seed s. */
static void *random_values(int64_t n, bool f64, uint64_t *s) {
    void *v = tu_alloc((f64 ? 8 : 4) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double r = 0.05 + 0.9 * tu_rand(s);
        if (f64)
            ((double *)v)[i] = r;
        else
            ((float *)v)[i] = (float)r;
    }
    return v;
}

/* Weights of either sign, in [-0.45, 0.45): ReLUs then give zeros for the
 * batch-1 path to skip, and a sigmoid output does not saturate — with
 * positive weights every reconstruction was 1.0, and a decoder that read
 * the wrong weights went unnoticed. */
static void *centered_weights(int64_t n, bool f64, uint64_t *s) {
    void *v = random_values(n, f64, s);
    for (int64_t i = 0; i < n; i++)
        if (f64)
            ((double *)v)[i] -= 0.5;
        else
            ((float *)v)[i] -= 0.5f;
    return v;
}

/* The largest |a - b| / max(1, |b|) over n values of the element type. */
static double max_rel_diff(const void *a, const void *b, int64_t n, bool f64) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double u = f64 ? ((const double *)a)[i] : ((const float *)a)[i];
        double v = f64 ? ((const double *)b)[i] : ((const float *)b)[i];
        worst = fmax(worst, fabs(u - v) / fmax(1, fabs(v)));
    }
    return worst;
}

static void embedded_same_bits(const char *spec, bool f64) {
    Arena *a = arena_new();
    Model *m = tu_model(a, "test.ae", spec);
    assert_non_null(m);
    size_t el = f64 ? 8 : 4;
    uint64_t s = 3;
    void *weights = centered_weights(m->param_count, f64, &s);
    CodegenOptions plain = {.f64 = f64, .opt_level = 2}, embed = plain;
    embed.embed = weights;
    Codegen *cg0, *cg1;
    const aec_model *m0 = jit(a, spec, &plain, &cg0), *m1 = jit(a, spec, &embed, &cg1);
    assert_null(m0->embedded_params);
    assert_non_null(m1->embedded_params);
    assert_int_equal((uintptr_t)m1->embedded_params % AEC_ALIGN, 0);
    assert_memory_equal(m1->embedded_params, weights, el * (size_t)m->param_count);
    assert_ptr_equal(m1->embedded_params, lookup(a, cg1, "embedded_params"));

    enum { B = 5 };
    void *x = random_values(B * m0->input_size, f64, &s);
    for (int64_t i = 0; i < B * m0->input_size; i += 3) /* zeros, which batch 1 skips */
        memset((char *)x + (size_t)i * el, 0, el);
    void *ws = malloc(m0->workspace_size(B));
    void *c0 = tu_alloc(el * B * (size_t)m0->code_size),
         *c1 = tu_alloc(el * B * (size_t)m0->code_size);
    void *c2 = tu_alloc(el * B * (size_t)m0->code_size);
    void *y0 = tu_alloc(el * B * (size_t)m0->input_size),
         *y1 = tu_alloc(el * B * (size_t)m0->input_size);
    void *y2 = tu_alloc(el * B * (size_t)m0->input_size);
    double l0 = 0, l1 = 0;
    const void *emb = m1->embedded_params;
    for (int batch = 1; batch <= B; batch += B - 1) {
        int64_t nc = batch * m0->code_size, ny = batch * m0->input_size;
        /* The _embedded entry points are their twins given the embedded block. */
        assert_int_equal(m1->encode(emb, x, c0, batch, ws), AEC_OK);
        assert_int_equal(((encode_embedded_fn)lookup(a, cg1, "encode_embedded"))(x, c1, batch, ws),
                         AEC_OK);
        assert_memory_equal(c0, c1, el * (size_t)nc);
        assert_int_equal(m1->decode(emb, c0, y0, batch, ws), AEC_OK);
        assert_int_equal(((encode_embedded_fn)lookup(a, cg1, "decode_embedded"))(c0, y1, batch, ws),
                         AEC_OK);
        assert_memory_equal(y0, y1, el * (size_t)ny);
        assert_int_equal(m1->eval(emb, x, NULL, batch, &l0, y0, ws), AEC_OK);
        assert_int_equal(
            ((eval_embedded_fn)lookup(a, cg1, "eval_embedded"))(x, NULL, batch, &l1, y1, ws),
            AEC_OK);
        assert_memory_equal(&l0, &l1, el);
        assert_memory_equal(y0, y1, el * (size_t)ny);
        /* The same weights passed in: the same BLAS calls, the same bits; but
         * at batch 1 the embedded block goes through sparse_rows, which adds
         * in another order: equal to rounding. */
        assert_int_equal(m0->encode(weights, x, c2, batch, ws), AEC_OK);
        assert_int_equal(m0->decode(weights, c0, y2, batch, ws), AEC_OK);
        if (batch > 1) {
            assert_memory_equal(c0, c2, el * (size_t)nc);
            assert_memory_equal(y0, y2, el * (size_t)ny);
        } else {
            assert_true(max_rel_diff(c0, c2, nc, f64) < (f64 ? 1e-12 : 1e-5));
            assert_true(max_rel_diff(y0, y2, ny, f64) < (f64 ? 1e-12 : 1e-5));
            /* its column tasks on 2 and 3 threads: the same bits */
            for (int threads = 2; threads <= 3; threads++) {
                aec_pool *pool = aec_pool_new(threads);
                aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
                assert_int_equal(m1->encode_ex(emb, x, c2, batch, ws, &exec), AEC_OK);
                assert_memory_equal(c0, c2, el * (size_t)nc);
                assert_int_equal(m1->decode_ex(emb, c0, y2, batch, ws, &exec), AEC_OK);
                assert_memory_equal(y0, y2, el * (size_t)ny);
                aec_pool_free(pool);
            }
        }
    }
    assert_int_equal(((encode_embedded_fn)lookup(a, cg1, "encode_embedded"))(x, c1, 0, ws),
                     AEC_EBATCH);
    assert_int_equal(((encode_embedded_fn)lookup(a, cg1, "encode_embedded"))(x, NULL, 1, ws),
                     AEC_ENULL);
    free(x), free(ws), free(c0), free(c1), free(c2), free(y0), free(y1), free(y2), free(weights);
    cg_free(cg0);
    cg_free(cg1);
    arena_free(a);
}

static void test_embedded_f32(void **state) {
    (void)state;
    embedded_same_bits(dense_spec, false);
    embedded_same_bits(tied_spec, false);
    embedded_same_bits(wide_spec, false);
    embedded_same_bits(wide_tied_spec, false);
    embedded_same_bits(conv_spec, false);
}

static void test_embedded_f64(void **state) {
    (void)state;
    embedded_same_bits(tied_spec, true);
    embedded_same_bits(wide_spec, true);
    embedded_same_bits(wide_tied_spec, true);
    embedded_same_bits(conv_spec, true);
}

/* --embed-half: the batch-1 embedded calls compute with every 2-D weight
 * rounded to f16 (sums in the model's type), so they agree to rounding
 * with the plain model given those rounded weights, and differ more from
 * the plain model given the weights as they are; the same bits at any
 * thread count; larger batches read the params block as before. */
static void embedded_half(const char *spec, bool f64) {
    Arena *a = arena_new();
    Model *m = tu_model(a, "test.ae", spec);
    assert_non_null(m);
    size_t el = f64 ? 8 : 4;
    uint64_t s = 5;
    void *weights = centered_weights(m->param_count, f64, &s);
    void *rounded = tu_alloc(el * (size_t)m->param_count);
    memcpy(rounded, weights, el * (size_t)m->param_count);
    for (int t = 0; t < m->ntensors; t++)
        for (int64_t i = 0; m->tensors[t].ndim == 2 && i < m->tensors[t].numel; i++) {
            int64_t at = m->tensors[t].offset + i;
            if (f64)
                ((double *)rounded)[at] = f16_to_double(f16_from_double(((double *)weights)[at]));
            else
                ((float *)rounded)[at] =
                    (float)f16_to_double(f16_from_double(((float *)weights)[at]));
        }
    CodegenOptions plain = {.f64 = f64, .opt_level = 2}, half = plain;
    half.embed = weights;
    half.embed_half = true;
    Codegen *cg0, *cg1;
    const aec_model *m0 = jit(a, spec, &plain, &cg0), *m1 = jit(a, spec, &half, &cg1);
    assert_memory_equal(m1->embedded_params, weights, el * (size_t)m->param_count);
    enum { B = 4 };
    int64_t nc = m0->code_size, ny = m0->input_size;
    void *x = random_values(B * ny, f64, &s);
    for (int64_t i = 0; i < B * ny; i += 3)
        memset((char *)x + (size_t)i * el, 0, el);
    void *ws = malloc(m0->workspace_size(B));
    void *c0 = tu_alloc(el * B * (size_t)nc), *c1 = tu_alloc(el * B * (size_t)nc);
    void *c2 = tu_alloc(el * B * (size_t)nc);
    void *y0 = tu_alloc(el * B * (size_t)ny), *y1 = tu_alloc(el * B * (size_t)ny);
    encode_embedded_fn encode = (encode_embedded_fn)lookup(a, cg1, "encode_embedded");
    encode_embedded_fn decode = (encode_embedded_fn)lookup(a, cg1, "decode_embedded");
    double close = f64 ? 1e-12 : 1e-5;
    assert_int_equal(encode(x, c1, 1, ws), AEC_OK);
    assert_int_equal(m0->encode(rounded, x, c0, 1, ws), AEC_OK);
    assert_true(max_rel_diff(c1, c0, nc, f64) < close);
    assert_int_equal(m0->encode(weights, x, c2, 1, ws), AEC_OK);
    double near = max_rel_diff(c1, c0, nc, f64); /* f16 was read: */
    assert_true(max_rel_diff(c1, c2, nc, f64) > fmax(10 * near, f64 ? 1e-9 : 1e-6));
    assert_int_equal(decode(c1, y1, 1, ws), AEC_OK);
    assert_int_equal(m0->decode(rounded, c1, y0, 1, ws), AEC_OK);
    assert_true(max_rel_diff(y1, y0, ny, f64) < close);
    for (int threads = 2; threads <= 3; threads++) {
        aec_pool *pool = aec_pool_new(threads);
        aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
        assert_int_equal(m1->encode_ex(m1->embedded_params, x, c2, 1, ws, &exec), AEC_OK);
        assert_memory_equal(c1, c2, el * (size_t)nc);
        aec_pool_free(pool);
    }
    assert_int_equal(encode(x, c1, B, ws), AEC_OK);
    assert_int_equal(m0->encode(weights, x, c0, B, ws), AEC_OK);
    assert_memory_equal(c0, c1, el * B * (size_t)nc);
    free(x), free(ws), free(c0), free(c1), free(c2), free(y0), free(y1), free(weights);
    free(rounded);
    cg_free(cg0);
    cg_free(cg1);
    arena_free(a);
}

static void test_embedded_half(void **state) {
    (void)state;
    embedded_half(dense_spec, false);
    embedded_half(tied_spec, false);
    embedded_half(wide_spec, false);
    embedded_half(wide_spec, true);
    embedded_half(wide_tied_spec, false);
}

/* binary16 conversion: every finite code comes back as itself; a value
 * halfway between two neighbours goes to the even one, just past halfway
 * to the nearer; past the range to infinity; subnormals are kept. */
static void test_f16_conversion(void **state) {
    (void)state;
    for (unsigned h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue; /* inf and NaN */
        assert_int_equal(f16_from_double(f16_to_double((uint16_t)h)), h);
        unsigned next = h + 1;
        if ((next & 0x7fff) >= 0x7c00 || (h & 0x7fff) == 0x7fff || next == 0x8000) continue;
        double lo = f16_to_double((uint16_t)h), hi = f16_to_double((uint16_t)next);
        double mid = (lo + hi) / 2, even = (h & 1) ? next : h;
        assert_int_equal(f16_from_double(mid), even);
        assert_int_equal(f16_from_double(nextafter(mid, hi)), next);
        assert_int_equal(f16_from_double(nextafter(mid, lo)), h);
    }
    assert_int_equal(f16_from_double(F16_MAX), 0x7bff);
    assert_int_equal(f16_from_double(65519.99), 0x7bff);
    assert_int_equal(f16_from_double(65520), 0x7c00);
    assert_int_equal(f16_from_double(-1e9), 0xfc00);
    assert_int_equal(f16_from_double(ldexp(1, -24)), 1);
    assert_int_equal(f16_from_double(ldexp(1, -26)), 0);
    assert_int_equal(f16_from_double(-0.0), 0x8000);
    assert_true(f16_to_double(0x3c00) == 1.0 && f16_to_double(0xc000) == -2.0);
    assert_true(isnan(f16_to_double(f16_from_double(NAN))));
    assert_true(isinf(f16_to_double(0x7c00)));
}

/* -g changes what the object says about the code, not what it computes. */
static void test_debug_info_same_bits(void **state) {
    (void)state;
    Arena *a = arena_new();
    CodegenOptions plain = {.opt_level = 3}, debug = plain;
    debug.debug = true;
    Codegen *cg0, *cg1;
    const aec_model *m0 = jit(a, dense_spec, &plain, &cg0), *m1 = jit(a, dense_spec, &debug, &cg1);
    enum { B = 7 };
    uint64_t s = 9;
    float *params = tu_alloc(sizeof(float) * (size_t)m0->param_count);
    assert_int_equal(m0->init(params, 1), AEC_OK);
    float *x = random_values(B * m0->input_size, false, &s);
    float *opt0 = tu_alloc(sizeof(float) * (size_t)m0->opt_state_count);
    float *opt1 = tu_alloc(sizeof(float) * (size_t)m0->opt_state_count);
    float *p1 = tu_alloc(sizeof(float) * (size_t)m0->param_count);
    memcpy(p1, params, sizeof(float) * (size_t)m0->param_count);
    void *ws = malloc(m0->workspace_size(B));
    for (uint64_t step = 1; step <= 3; step++) {
        float l0, l1;
        assert_int_equal(m0->train_step(params, opt0, x, NULL, B, step, &l0, ws), AEC_OK);
        assert_int_equal(m1->train_step(p1, opt1, x, NULL, B, step, &l1, ws), AEC_OK);
        assert_memory_equal(&l0, &l1, sizeof l0);
    }
    assert_memory_equal(params, p1, sizeof(float) * (size_t)m0->param_count);
    free(params), free(x), free(opt0), free(opt1), free(p1), free(ws);
    cg_free(cg0);
    cg_free(cg1);
    arena_free(a);
}

/* Batch 1 against the same sample as row 0 of a batch of 3 (f64: the two
 * paths differ only in rounding). */
static void batch1_agrees(const char *spec) {
    Arena *a = arena_new();
    CodegenOptions opt = {.f64 = true, .opt_level = 2};
    Codegen *cg;
    const aec_model *m = jit(a, spec, &opt, &cg);
    uint64_t s = 5;
    double *params = random_values(m->param_count, true, &s);
    for (int64_t i = 0; i < m->param_count; i++)
        params[i] -= 0.5;
    double *x = random_values(3 * m->input_size, true, &s);
    double *c1 = tu_alloc(8 * (size_t)m->code_size), *c3 = tu_alloc(8 * 3 * (size_t)m->code_size);
    double *y1 = tu_alloc(8 * (size_t)m->input_size), *y3 = tu_alloc(8 * 3 * (size_t)m->input_size);
    void *ws = malloc(m->workspace_size(3));
    assert_int_equal(m->encode(params, x, c1, 1, ws), AEC_OK);
    assert_int_equal(m->encode(params, x, c3, 3, ws), AEC_OK);
    for (int64_t i = 0; i < m->code_size; i++)
        assert_true(fabs(c1[i] - c3[i]) <= 1e-12);
    assert_int_equal(m->decode(params, c1, y1, 1, ws), AEC_OK);
    assert_int_equal(m->decode(params, c3, y3, 3, ws), AEC_OK);
    for (int64_t i = 0; i < m->input_size; i++)
        assert_true(fabs(y1[i] - y3[i]) <= 1e-12);
    /* batch 1's matrix-vector products in column tasks on 2 and 3 threads: the same bits */
    for (int threads = 2; threads <= 3; threads++) {
        aec_pool *pool = aec_pool_new(threads);
        aec_exec exec = {.parallel_for = aec_pool_parallel_for, .pool = pool};
        assert_int_equal(m->encode_ex(params, x, c3, 1, ws, &exec), AEC_OK);
        assert_memory_equal(c1, c3, 8 * (size_t)m->code_size);
        assert_int_equal(m->decode_ex(params, c1, y3, 1, ws, &exec), AEC_OK);
        assert_memory_equal(y1, y3, 8 * (size_t)m->input_size);
        aec_pool_free(pool);
    }
    double l1, l3;
    memcpy(x + m->input_size, x, 8 * (size_t)m->input_size);     /* three copies of one sample: */
    memcpy(x + 2 * m->input_size, x, 8 * (size_t)m->input_size); /* the same mean loss */
    assert_int_equal(m->eval(params, x, NULL, 1, &l1, y1, ws), AEC_OK);
    assert_int_equal(m->eval(params, x, NULL, 3, &l3, y3, ws), AEC_OK);
    assert_true(fabs(l1 - l3) <= 1e-12 * fmax(1, fabs(l1)));
    free(params), free(x), free(c1), free(c3), free(y1), free(y3), free(ws);
    cg_free(cg);
    arena_free(a);
}

static void test_batch1_forward(void **state) {
    (void)state;
    batch1_agrees(dense_spec);
    batch1_agrees(tied_spec);
    batch1_agrees(wide_spec);
}

/* loss_grad at batch 1 against central differences of its loss. */
static void test_batch1_gradient(void **state) {
    (void)state;
    Arena *a = arena_new();
    CodegenOptions opt = {.f64 = true, .opt_level = 2};
    Codegen *cg;
    const aec_model *m = jit(a, tied_spec, &opt, &cg);
    uint64_t s = 11;
    double *params = random_values(m->param_count, true, &s);
    for (int64_t i = 0; i < m->param_count; i++)
        params[i] -= 0.5;
    double *x = random_values(m->input_size, true, &s);
    double *grad = tu_alloc(8 * (size_t)m->trainable_count),
           *scratch = tu_alloc(8 * (size_t)m->trainable_count);
    void *ws = malloc(m->workspace_size(1));
    double loss, up, down, diff = 0, norm = 0;
    assert_int_equal(m->loss_grad(params, x, NULL, 1, 1, &loss, grad, ws), AEC_OK);
    for (int64_t i = 0; i < m->trainable_count; i++) {
        double p = params[i], h = 1e-6;
        params[i] = p + h;
        assert_int_equal(m->loss_grad(params, x, NULL, 1, 1, &up, scratch, ws), AEC_OK);
        params[i] = p - h;
        assert_int_equal(m->loss_grad(params, x, NULL, 1, 1, &down, scratch, ws), AEC_OK);
        params[i] = p;
        double numeric = (up - down) / (2 * h);
        diff += (grad[i] - numeric) * (grad[i] - numeric);
        norm += grad[i] * grad[i];
    }
    assert_true(norm > 0);
    assert_true(sqrt(diff / norm) < 1e-6);
    free(params), free(x), free(grad), free(scratch), free(ws);
    cg_free(cg);
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded_f32),         cmocka_unit_test(test_embedded_f64),
        cmocka_unit_test(test_debug_info_same_bits), cmocka_unit_test(test_batch1_forward),
        cmocka_unit_test(test_batch1_gradient),      cmocka_unit_test(test_embedded_half),
        cmocka_unit_test(test_f16_conversion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
