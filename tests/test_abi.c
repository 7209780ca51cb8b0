/* test_abi.c — the model table and the entry points of ABI 6.
 *
 * - The table codegen lays out is aec_model: every field of aec.h's
 *   AEC_MODEL_FIELDS at its offsetof, the whole at its sizeof, and every
 *   entry point present in a JIT-compiled model.
 * - apply_grad: loss_grad_ex then apply_grad is train_step, bit for bit
 *   (parameters, optimizer state, loss), over several steps.
 * - aec_exec.row_offset keys the random draws by global row: a batch split
 *   in two halves, the second with row_offset = its first row, draws what
 *   the whole batch draws — corruption noise (specs/denoising.ae), dropout
 *   masks, the VAE's eps (specs/vae.ae) — so the halves' losses and
 *   gradients average to the whole batch's (f64); with row_offset 0 for the
 *   second half they do not.
 * - running_stats (ABI 8): with it, loss_grad_ex + apply_grad is
 *   train_step bit for bit for batch-norm models too; the statistics are
 *   the call's own rows'.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

/* offsetof(aec_model, f) of every field, in the X-macro's order. */
#define OFF_FIELD(type, name) offsetof(aec_model, name),
#define OFF_ENTRY(name, ret, args) offsetof(aec_model, name),
#define NO_ARG(type, name)
static const size_t field_offsets[] = {AEC_MODEL_FIELDS(OFF_FIELD, OFF_ENTRY, NO_ARG)};

static char *read_spec(Arena *a, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/specs/%s", AEC_SOURCE_DIR, name);
    size_t len;
    char *text = read_file_text(path, &len);
    if (!text) fail_msg("cannot read %s", path);
    char *kept = arena_strdup(a, text);
    free(text);
    return kept;
}

static void test_table_layout(void **state) {
    (void)state;
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m = tu_jit(a, read_spec(a, "denoising.ae"), false, &cg);
    assert_non_null(m);
    assert_int_equal(abi_nfields, countof(field_offsets));
    for (int i = 0; i < abi_nfields; i++) {
        if (cg_table_offset(cg, i) != (long)field_offsets[i])
            fail_msg("field %s: LLVM offset %ld, offsetof %zu", abi_fields[i].name,
                     cg_table_offset(cg, i), field_offsets[i]);
    }
    assert_int_equal(cg_table_size(cg), sizeof(aec_model));
    assert_int_equal(m->abi_version, AEC_ABI_VERSION);
    /* every entry point is there */
#define PRESENT(name, ret, args) assert_non_null(m->name);
#define NO_FIELD(type, name)
    AEC_MODEL_FIELDS(NO_FIELD, PRESENT, NO_ARG)
    cg_free(cg);
    arena_free(a);
}

/* loss_grad_ex + apply_grad == train_step, bit for bit, step after step. */
static void test_apply_grad_is_train_step(void **state) {
    (void)state;
    Arena *a = arena_new();
    Codegen *cg;
    /* adam (two state slots, bias correction by step), weight decay, noise */
    const char *spec = "model split {\n"
                       "  input 30\n"
                       "  encoder { dense 16 relu; dropout 0.2; dense 6 tanh }\n"
                       "  decoder mirror\n"
                       "  output sigmoid\n"
                       "  loss bce\n"
                       "  corrupt gaussian 0.1\n"
                       "  regularize { l2 weights 1e-3 }\n"
                       "  train { optimizer adam lr=1e-2 decay=1e-2; batch 10; seed 3 }\n"
                       "}\n";
    const aec_model *m = tu_jit(a, spec, false, &cg);
    assert_non_null(m);
    int B = 10;
    size_t pbytes = (size_t)m->param_count * 4, obytes = (size_t)m->opt_state_count * 4 + 4;
    float *p1 = tu_alloc(pbytes), *p2 = tu_alloc(pbytes), *o1 = tu_alloc(obytes),
          *o2 = tu_alloc(obytes);
    float *grad = tu_alloc((size_t)m->trainable_count * 4), *x = tu_alloc((size_t)(B * 30) * 4);
    void *ws1 = tu_alloc(m->workspace_size(B)), *ws2 = tu_alloc(m->workspace_size(B));
    for (int i = 0; i < B * 30; i++)
        x[i] = (float)((i * 37 % 101) / 101.0);
    assert_int_equal(m->init(p1, 7), AEC_OK);
    memcpy(p2, p1, pbytes);
    memset(o1, 0, obytes);
    memset(o2, 0, obytes);
    for (uint64_t step = 1; step <= 4; step++) {
        float l1, l2;
        assert_int_equal(m->train_step(p1, o1, x, NULL, B, step, &l1, ws1), AEC_OK);
        assert_int_equal(m->loss_grad_ex(p2, x, NULL, B, step, &l2, grad, ws2, NULL), AEC_OK);
        assert_int_equal(m->apply_grad(p2, o2, grad, step, ws2, NULL), AEC_OK);
        assert_memory_equal(&l1, &l2, sizeof l1);
        assert_memory_equal(p1, p2, pbytes);
        assert_memory_equal(o1, o2, (size_t)m->opt_state_count * 4);
    }
    assert_int_equal(m->apply_grad(NULL, o2, grad, 1, ws2, NULL), AEC_ENULL);
    assert_int_equal(m->apply_grad(p2, o2, NULL, 1, ws2, NULL), AEC_ENULL);
    free(p1), free(p2), free(o1), free(o2), free(grad), free(x), free(ws1), free(ws2);
    cg_free(cg);
    arena_free(a);
}

/* Batch norm (ABI 8): loss_grad_ex, its running_stats copied into params,
 * then apply_grad is train_step bit for bit, over channels and features;
 * and the running statistics are the call's rows': two halves of a batch,
 * each with its own, average to the whole batch's running mean in the
 * first batch norm (the mean splits over rows; the variance does not, nor
 * does a later batch norm's input). */
static void check_running_stats(const char *what, const char *spec, int B) {
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m = tu_jit(a, spec, false, &cg);
    if (!m) fail_msg("%s does not compile", what);
    long n = m->input_size, T = m->trainable_count, S = m->param_count - T;
    assert_true(S > 0);
    size_t pbytes = (size_t)m->param_count * 4, obytes = (size_t)m->opt_state_count * 4 + 4;
    float *p1 = tu_alloc(pbytes), *p2 = tu_alloc(pbytes), *o1 = tu_alloc(obytes),
          *o2 = tu_alloc(obytes), *grad = tu_alloc((size_t)T * 4),
          *x = tu_alloc((size_t)(B * n) * 4);
    void *ws1 = tu_alloc(m->workspace_size(B)), *ws2 = tu_alloc(m->workspace_size(B));
    for (long i = 0; i < B * n; i++)
        x[i] = (float)((i * 37 % 101) / 101.0);
    assert_int_equal(m->init(p1, 5), AEC_OK);
    memcpy(p2, p1, pbytes);
    memset(o1, 0, obytes);
    memset(o2, 0, obytes);
    for (uint64_t step = 1; step <= 4; step++) {
        float l1, l2;
        assert_int_equal(m->train_step(p1, o1, x, NULL, B, step, &l1, ws1), AEC_OK);
        assert_int_equal(m->loss_grad_ex(p2, x, NULL, B, step, &l2, grad, ws2, NULL), AEC_OK);
        float *before = tu_alloc((size_t)S * 4);
        memcpy(before, p2 + T, (size_t)S * 4);
        assert_int_equal(m->running_stats(ws2, B, p2 + T), AEC_OK);
        if (!memcmp(before, p2 + T, (size_t)S * 4))
            fail_msg("%s: running_stats returned the old statistics at step %d", what, (int)step);
        free(before);
        assert_int_equal(m->apply_grad(p2, o2, grad, step, ws2, NULL), AEC_OK);
        assert_memory_equal(&l1, &l2, sizeof l1);
        if (memcmp(p1, p2, pbytes)) fail_msg("%s: step %d: params differ", what, (int)step);
        assert_memory_equal(o1, o2, (size_t)m->opt_state_count * 4);
    }
    assert_int_equal(m->running_stats(NULL, B, p2 + T), AEC_ENULL);
    assert_int_equal(m->running_stats(ws2, B, NULL), AEC_ENULL);
    assert_int_equal(m->running_stats(ws2, 0, p2 + T), AEC_EBATCH);
    /* halves: the mean of their running means is the whole batch's */
    float *whole = tu_alloc((size_t)S * 4), *h1 = tu_alloc((size_t)S * 4),
          *h2 = tu_alloc((size_t)S * 4), l;
    assert_int_equal(m->loss_grad_ex(p2, x, NULL, B, 9, &l, grad, ws2, NULL), AEC_OK);
    assert_int_equal(m->running_stats(ws2, B, whole), AEC_OK);
    assert_int_equal(m->loss_grad_ex(p2, x, NULL, B / 2, 9, &l, grad, ws2, NULL), AEC_OK);
    assert_int_equal(m->running_stats(ws2, B / 2, h1), AEC_OK);
    aec_exec ex = {.row_offset = B / 2};
    assert_int_equal(m->loss_grad_ex(p2, x + (B / 2) * n, NULL, B / 2, 9, &l, grad, ws2, &ex),
                     AEC_OK);
    assert_int_equal(m->running_stats(ws2, B / 2, h2), AEC_OK);
    /* the first batch norm's: its input does not depend on the batch */
    int means = 0;
    for (int t = 0; t < m->n_tensors && !means; t++) {
        const aec_tensor_info *ti = &m->tensors[t];
        if (ti->kind != AEC_TENSOR_BUFFER || !strstr(ti->name, "running_mean")) continue;
        for (int64_t i = ti->offset - T; i < ti->offset - T + ti->numel; i++, means++) {
            double avg = ((double)h1[i] + h2[i]) / 2;
            if (fabs(avg - whole[i]) > 1e-5 * (fabs(whole[i]) + 1e-3))
                fail_msg("%s: %s[%lld]: halves average %g, the whole batch %g", what, ti->name,
                         (long long)(i - (ti->offset - T)), avg, (double)whole[i]);
            if (h1[i] == h2[i])
                fail_msg("%s: %s[%lld]: both halves have %g", what, ti->name,
                         (long long)(i - (ti->offset - T)), (double)h1[i]);
        }
    }
    assert_true(means > 0);
    free(p1), free(p2), free(o1), free(o2), free(grad), free(x), free(ws1), free(ws2);
    free(whole), free(h1), free(h2);
    cg_free(cg);
    arena_free(a);
}

static void test_running_stats(void **state) {
    (void)state;
    check_running_stats(
        "features",
        "model bnf {\n  input 20\n  encoder { dense 12; batchnorm; relu; dropout 0.2;"
        " dense 4; batchnorm momentum=0.3 }\n  decoder { dense 20 sigmoid }\n"
        "  loss bce\n  train { optimizer adam lr=1e-2; batch 10 }\n}\n",
        10);
    check_running_stats("channels",
                        "model bnc {\n  input 2x6x6\n  encoder { conv 3 3x3 pad=same; batchnorm;"
                        " relu; flatten; dense 5 }\n  decoder { dense 72; reshape 2x6x6 }\n"
                        "  loss mse\n  train { optimizer momentum lr=1e-2 }\n}\n",
                        8);
    /* no batch norm: nothing to write, and out may be NULL */
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m = tu_jit(a, read_spec(a, "denoising.ae"), false, &cg);
    void *ws = tu_alloc(m->workspace_size(2));
    assert_int_equal(m->running_stats(ws, 2, NULL), AEC_OK);
    free(ws);
    cg_free(cg);
    arena_free(a);
}

/* The loss and gradient of rows [r0, r0 + n) of x, as the call with
 * row_offset `offset` computes them. */
static double half(const aec_model *m, const double *params, const double *x, int r0, int n,
                   int64_t offset, double *grad, void *ws) {
    aec_exec ex = {.row_offset = offset};
    double loss;
    assert_int_equal(m->loss_grad_ex(params, x + (size_t)r0 * (size_t)m->input_size, NULL, n, 5,
                                     &loss, grad, ws, &ex),
                     AEC_OK);
    return loss;
}

static void check_split(const char *what, const char *spec, int B) {
    Arena *a = arena_new();
    Codegen *cg;
    const aec_model *m = tu_jit(a, spec, true, &cg);
    if (!m) fail_msg("%s does not compile", what);
    long n = m->input_size, T = m->trainable_count;
    double *params = tu_alloc((size_t)m->param_count * 8), *x = tu_alloc((size_t)(B * n) * 8);
    double *g = tu_alloc((size_t)T * 8), *g1 = tu_alloc((size_t)T * 8),
           *g2 = tu_alloc((size_t)T * 8);
    void *ws = tu_alloc(m->workspace_size(B));
    assert_int_equal(m->init(params, 11), AEC_OK);
    for (long i = 0; i < B * n; i++)
        x[i] = (double)((i * 7919 % 1000) / 1000.0);
    double whole = half(m, params, x, 0, B, 0, g, ws);
    double l1 = half(m, params, x, 0, B / 2, 0, g1, ws);
    double l2 = half(m, params, x, B / 2, B / 2, B / 2, g2, ws);
    /* each loss is a mean over its rows: the halves average to the whole */
    if (fabs((l1 + l2) / 2 - whole) > 1e-12 * fabs(whole))
        fail_msg("%s: halves %.17g, %.17g average %.17g, the whole batch %.17g", what, l1, l2,
                 (l1 + l2) / 2, whole);
    double worst = 0, scale = 0;
    for (long i = 0; i < T; i++) {
        worst = fmax(worst, fabs((g1[i] + g2[i]) / 2 - g[i]));
        scale = fmax(scale, fabs(g[i]));
    }
    if (worst > 1e-12 * scale) fail_msg("%s: gradients differ by %g (of %g)", what, worst, scale);
    /* the same halves keyed by local rows draw other noise */
    double wrong = half(m, params, x, B / 2, B / 2, 0, g2, ws);
    if (fabs((l1 + wrong) / 2 - whole) < 1e-6 * fabs(whole))
        fail_msg("%s: row_offset changes nothing (%.17g vs %.17g)", what, (l1 + wrong) / 2, whole);
    free(params), free(x), free(g), free(g1), free(g2), free(ws);
    cg_free(cg);
    arena_free(a);
}

static void test_row_offset_keys_draws(void **state) {
    (void)state;
    Arena *a = arena_new();
    check_split("denoising (mask noise)", read_spec(a, "denoising.ae"), 8);
    check_split("vae (eps)", read_spec(a, "vae.ae"), 8);
    check_split("dropout",
                "model drop {\n  input 24\n  encoder { dense 16 relu; dropout 0.5; dense 5 }\n"
                "  decoder { dense 16 relu; dropout 0.25; dense 24 }\n  loss mse\n}\n",
                12);
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_layout),
        cmocka_unit_test(test_apply_grad_is_train_step),
        cmocka_unit_test(test_row_offset_keys_draws),
        cmocka_unit_test(test_running_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
