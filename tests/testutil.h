/* testutil.h — helpers the cmocka suites share: compile a spec given as
 * text through the whole pipeline and JIT it in process, aligned buffers,
 * deterministic test data. Header-only: each suite is one translation unit. */
#ifndef AEC_TESTUTIL_H
#define AEC_TESTUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

/* Parse and check `text` as if read from `name`; NULL (errors reported) on failure. */
static inline Model *tu_model(Arena *a, const char *name, const char *text) {
    AstModel *ast = parse_spec(a, name, arena_strdup(a, text));
    if (!ast || diag_error_count()) return NULL;
    return check_model(a, ast);
}

/* The whole pipeline to a JIT-compiled model table, at LLVM level `opt`.
 * *cg keeps it alive. */
static inline const aec_model *tu_jit_at(Arena *a, const char *text, bool f64, int opt_level,
                                         Codegen **cg) {
    Model *m = tu_model(a, "test.ae", text);
    if (!m) return NULL;
    CodegenOptions opt = {.f64 = f64, .opt_level = opt_level};
    *cg = cg_program(compile_model(a, m), &opt);
    if (!*cg) return NULL;
    char sym[256];
    snprintf(sym, sizeof sym, "%s_model", cg_prefix(*cg));
    return cg_jit_lookup(*cg, sym);
}

static inline const aec_model *tu_jit(Arena *a, const char *text, bool f64, Codegen **cg) {
    return tu_jit_at(a, text, f64, 2, cg);
}

static inline void *tu_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, AEC_ALIGN, bytes ? bytes : AEC_ALIGN)) return NULL;
    memset(p, 0, bytes);
    return p;
}

/* A small deterministic generator for test data (not the model's RNG). */
static inline double tu_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * 0x1p-53;
}

/* Gradient checks need cmocka (included before this header by every suite). */
#ifdef cmocka_unit_test

/* An f64 model ready for a gradient check: params from init(seed 7) with
 * biases (and batch norm's gamma and beta) moved off their initial values,
 * so no check sits at a special point; data in (0.05, 0.95), so bce is
 * defined. */
typedef struct TuFixture {
    Arena *arena;
    Codegen *cg;
    const aec_model *m;
    double *params, *grad, *x; /* grad: trainable_count values */
    void *ws;
    int batch;
} TuFixture;

static inline void tu_open(TuFixture *f, const char *spec, int batch, int opt_level) {
    diag_reset();
    f->arena = arena_new();
    f->batch = batch;
    f->m = tu_jit_at(f->arena, spec, true, opt_level, &f->cg);
    if (!f->m) fail_msg("does not compile:\n%s", spec);
    assert_int_equal(f->m->dtype, AEC_F64);
    f->params = tu_alloc(sizeof(double) * (size_t)f->m->param_count);
    f->grad = tu_alloc(sizeof(double) * (size_t)(f->m->trainable_count + 1));
    f->x = tu_alloc(sizeof(double) * (size_t)(batch * f->m->input_size));
    f->ws = malloc(f->m->workspace_size(batch));
    assert_int_equal(f->m->init(f->params, 7), AEC_OK);
    uint64_t s = 42;
    for (int t = 0; t < f->m->n_tensors; t++)
        if (f->m->tensors[t].kind == AEC_TENSOR_BIAS)
            for (int64_t i = 0; i < f->m->tensors[t].numel; i++)
                f->params[f->m->tensors[t].offset + i] += 0.2 * (tu_rand(&s) - 0.5);
    for (int64_t i = 0; i < batch * f->m->input_size; i++)
        f->x[i] = 0.05 + 0.9 * tu_rand(&s);
}

static inline void tu_close(TuFixture *f) {
    free(f->params);
    free(f->grad);
    free(f->x);
    free(f->ws);
    cg_free(f->cg);
    arena_free(f->arena);
}

/* The training-mode loss at step 1, its gradient into grad. */
static inline double tu_loss(TuFixture *f, double *grad) {
    double loss;
    assert_int_equal(f->m->loss_grad(f->params, f->x, NULL, f->batch, 1, &loss, grad, f->ws),
                     AEC_OK);
    return loss;
}

/* ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) over every trainable
 * parameter, the numeric gradient by central differences of `loss`. */
static inline double tu_gradient_error(TuFixture *f, double (*loss)(TuFixture *, double *)) {
    assert_true(isfinite(loss(f, f->grad)));
    double *scratch = tu_alloc(sizeof(double) * (size_t)(f->m->trainable_count + 1));
    double diff = 0, na = 0, nn = 0;
    for (int64_t i = 0; i < f->m->trainable_count; i++) {
        double p = f->params[i], h = 1e-6 * fmax(1.0, fabs(p));
        f->params[i] = p + h;
        double up = loss(f, scratch);
        f->params[i] = p - h;
        double down = loss(f, scratch);
        f->params[i] = p;
        double numeric = (up - down) / (2 * h);
        diff += (f->grad[i] - numeric) * (f->grad[i] - numeric);
        na += f->grad[i] * f->grad[i];
        nn += numeric * numeric;
    }
    free(scratch);
    if (!(na > 0)) fail_msg("zero gradient"); /* a zero gradient would pass trivially */
    return sqrt(diff) / fmax(sqrt(na), sqrt(nn));
}

#endif
#endif
