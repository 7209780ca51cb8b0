/* test_grad.c — derived gradients against central differences, in f64.
 *
 * Every activation, every loss, tied and mirrored decoders, views and
 * activation layers are compiled through the whole pipeline (lower,
 * autodiff, fuse, plan, LLVM) with --dtype f64; the gradient loss_grad
 * returns must match central differences of the loss to a relative error
 * (in the 2-norm over all parameters) of at most 1e-6. The optimizers'
 * updates are checked against an independent implementation of PyTorch's
 * formulas.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "testutil.h"

enum { BATCH = 3 };

/* ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖) for a spec. */
static double gradient_error(const char *spec) {
    TuFixture f;
    tu_open(&f, spec, BATCH, 2);
    double err = tu_gradient_error(&f, tu_loss);
    tu_close(&f);
    return err;
}

static void check_spec(const char *spec) {
    double err = gradient_error(spec);
    if (err > 1e-6) fail_msg("relative gradient error %.3g for:\n%s", err, spec);
}

static void test_every_activation(void **state) {
    (void)state;
    const char *acts[] = {"linear", "relu",     "leaky_relu", "leaky_relu=0.2", "sigmoid", "tanh",
                          "elu",    "softplus", "gelu"};
    for (int i = 0; i < countof(acts); i++) {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "model act {\n input 7\n encoder { dense 5 %s; dense 3 %s }\n decoder mirror\n"
                 " output %s\n loss mse\n}\n",
                 acts[i], acts[i], acts[i]);
        check_spec(spec);
    }
}

static void test_every_loss(void **state) {
    (void)state;
    const char *losses[] = {"mse", "rmse", "mae", "bce"};
    for (int i = 0; i < countof(losses); i++) {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "model loss_%s {\n input 6\n encoder { dense 4 tanh; dense 2 }\n"
                 " decoder { dense 4 relu; dense 6 sigmoid }\n loss %s\n}\n",
                 losses[i], losses[i]);
        check_spec(spec);
    }
}

static void test_tied_decoder(void **state) {
    (void)state;
    check_spec("model tied {\n input 6\n encoder { dense 4 tanh; dense 3 sigmoid }\n"
               " decoder tied\n output sigmoid\n loss bce\n}\n");
}

static void test_views_and_activation_layers(void **state) {
    (void)state;
    check_spec("model views {\n input 1x3x2\n encoder { flatten; dense 4; elu; dense 3 }\n"
               " decoder { dense 6; sigmoid; reshape 1x3x2 }\n loss mse\n}\n");
}

/* PyTorch's optimizer formulas, one parameter at a time. */
typedef struct OptRef {
    const char *name;
    const char *settings;
} OptRef;

static void reference_step(const char *opt, const aec_train_config *c, double *p, double *s0,
                           double *s1, const double *g, int64_t n, int step) {
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        if (strcmp(opt, "adamw") && c->decay) gi += c->decay * p[i];
        if (!strcmp(opt, "sgd"))
            p[i] -= c->lr * gi;
        else if (!strcmp(opt, "momentum")) {
            s0[i] = c->momentum * s0[i] + gi;
            p[i] -= c->lr * s0[i];
        } else if (!strcmp(opt, "adam") || !strcmp(opt, "adamw")) {
            if (!strcmp(opt, "adamw")) p[i] *= 1 - c->lr * c->decay;
            s0[i] = c->beta1 * s0[i] + (1 - c->beta1) * gi;
            s1[i] = c->beta2 * s1[i] + (1 - c->beta2) * gi * gi;
            double bc1 = 1 - pow(c->beta1, step), bc2 = 1 - pow(c->beta2, step);
            p[i] -= c->lr / bc1 * s0[i] / (sqrt(s1[i]) / sqrt(bc2) + c->eps);
        } else if (!strcmp(opt, "rmsprop")) {
            s0[i] = c->beta2 * s0[i] + (1 - c->beta2) * gi * gi;
            double upd = gi / (sqrt(s0[i]) + c->eps);
            if (c->momentum) upd = s1[i] = c->momentum * s1[i] + upd;
            p[i] -= c->lr * upd;
        }
    }
}

static void test_optimizers(void **state) {
    (void)state;
    const OptRef opts[] = {{"sgd", "optimizer sgd lr=0.1"},
                           {"sgd", "optimizer sgd lr=0.1 decay=0.01"},
                           {"momentum", "optimizer momentum lr=0.05 momentum=0.8"},
                           {"adam", "optimizer adam lr=0.01"},
                           {"adam", "optimizer adam lr=0.01 decay=0.001"},
                           {"adamw", "optimizer adamw lr=0.01 decay=0.1"},
                           {"rmsprop", "optimizer rmsprop lr=0.01"},
                           {"rmsprop", "optimizer rmsprop lr=0.01 momentum=0.5"}};
    for (int o = 0; o < countof(opts); o++) {
        char spec[512];
        snprintf(
            spec, sizeof spec,
            "model opt {\n input 5\n encoder { dense 3 tanh }\n decoder mirror\n output sigmoid\n"
            " train { %s }\n}\n",
            opts[o].settings);
        TuFixture f;
        tu_open(&f, spec, BATCH, 2);
        int64_t n = f.m->trainable_count;
        double *state_blk = tu_alloc(sizeof(double) * (size_t)(f.m->opt_state_count + 1));
        double *ref = tu_alloc(sizeof(double) * (size_t)n),
               *s0 = tu_alloc(sizeof(double) * (size_t)n),
               *s1 = tu_alloc(sizeof(double) * (size_t)n);
        memcpy(ref, f.params, sizeof(double) * (size_t)n);
        for (int step = 1; step <= 3; step++) {
            double loss;
            assert_int_equal(
                f.m->loss_grad(ref, f.x, NULL, BATCH, (uint64_t)step, &loss, f.grad, f.ws), AEC_OK);
            reference_step(opts[o].name, &f.m->train, ref, s0, s1, f.grad, n, step);
            assert_int_equal(
                f.m->train_step(f.params, state_blk, f.x, NULL, BATCH, (uint64_t)step, &loss, f.ws),
                AEC_OK);
        }
        for (int64_t i = 0; i < n; i++)
            if (fabs(ref[i] - f.params[i]) > 1e-12 * fmax(1, fabs(ref[i])))
                fail_msg("%s: parameter %ld is %.17g, PyTorch's formula gives %.17g",
                         opts[o].settings, (long)i, f.params[i], ref[i]);
        free(state_blk);
        free(ref);
        free(s0);
        free(s1);
        tu_close(&f);
    }
}

/* The f32 code (with its inline exp) computes what the f64 code computes,
 * to f32 precision, for every activation over a wide range of inputs. */
static void test_f32_matches_f64(void **state) {
    (void)state;
    const char *acts[] = {"relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus", "gelu"};
    for (int a = 0; a < countof(acts); a++) {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "model prec {\n input 64\n encoder { dense 64 %s }\n decoder { dense 64 %s }\n"
                 " train { init normal=1 }\n}\n",
                 acts[a], acts[a]);
        TuFixture f;
        tu_open(&f, spec, BATCH, 2);
        Arena *a32 = arena_new();
        Codegen *cg32 = NULL;
        const aec_model *m32 = tu_jit(a32, spec, false, &cg32);
        assert_non_null(m32);
        int64_t np = f.m->param_count, nx = 4 * 64;
        float *p32 = tu_alloc(sizeof(float) * (size_t)np),
              *x32 = tu_alloc(sizeof(float) * (size_t)nx);
        double *x64 = tu_alloc(sizeof(double) * (size_t)nx),
               *y64 = tu_alloc(sizeof(double) * (size_t)nx);
        float *y32 = tu_alloc(sizeof(float) * (size_t)nx);
        uint64_t s = 3;
        for (int64_t i = 0; i < np; i++)
            f.params[i] = p32[i] = (float)f.params[i];
        for (int64_t i = 0; i < nx; i++)
            x64[i] = x32[i] = (float)(20 * (tu_rand(&s) - 0.5));
        void *ws32 = malloc(m32->workspace_size(4)), *ws64 = malloc(f.m->workspace_size(4));
        assert_int_equal(f.m->encode(f.params, x64, y64, 4, ws64), AEC_OK);
        assert_int_equal(m32->encode(p32, x32, y32, 4, ws32), AEC_OK);
        for (int64_t i = 0; i < nx; i++)
            if (fabs(y64[i] - y32[i]) > 2e-5 * fmax(1, fabs(y64[i])))
                fail_msg("%s: f32 gives %.9g, f64 %.9g", acts[a], y32[i], y64[i]);
        free(p32), free(x32), free(x64), free(y64), free(y32), free(ws32), free(ws64);
        cg_free(cg32);
        arena_free(a32);
        tu_close(&f);
    }
}

/* The f32 code's inline exp, expm1 and tanh (which let the loops vectorize)
 * are within a few ulp of the exact activations, over [-20, 20]. */
static double ref_act(int act, double x) {
    switch (act) {
    case 0: return tanh(x);
    case 1: return 1 / (1 + exp(-x));
    case 2: return x > 0 ? x : expm1(x);
    default: return fmax(x, 0) + log1p(exp(-fabs(x)));
    }
}

static void test_f32_activation_ulp(void **state) {
    (void)state;
    const char *acts[] = {"tanh", "sigmoid", "elu", "softplus"};
    enum { N = 4096 };
    for (int a = 0; a < countof(acts); a++) {
        char spec[256];
        snprintf(spec, sizeof spec,
                 "model ulp {\n input %d\n encoder { %s }\n decoder { linear }\n}\n", N, acts[a]);
        Arena *arena = arena_new();
        Codegen *cg = NULL;
        const aec_model *m = tu_jit(arena, spec, false, &cg);
        assert_non_null(m);
        float *x = tu_alloc(sizeof(float) * N), *y = tu_alloc(sizeof(float) * N), params[16];
        void *ws = malloc(m->workspace_size(1));
        double worst = 0, at = 0;
        for (int r = 1; r <= 40; r++) {
            for (int i = 0; i < N; i++)
                x[i] = (float)((i - N / 2) / (double)(N / 2) * r * 0.5);
            assert_int_equal(m->encode(params, x, y, 1, ws), AEC_OK);
            for (int i = 0; i < N; i++) {
                float want = (float)ref_act(a, x[i]);
                double ulp = nextafterf(fabsf(want), INFINITY) - fabsf(want);
                double e = fabs(y[i] - ref_act(a, x[i])) / ulp;
                if (e > worst) worst = e, at = x[i];
            }
        }
        print_message("%s: worst %.2f ulp (at x = %g)\n", acts[a], worst, at);
        if (worst > 4) fail_msg("%s is %.1f ulp off at x = %g", acts[a], worst, at);
        free(x), free(y), free(ws);
        cg_free(cg);
        arena_free(arena);
    }
}

/* `loss ... masked`: elements whose mask is 0 are left out of the loss, the
 * mean is over the present ones, the gradient follows, and a NULL mask
 * means nothing is missing. */
static const double *test_mask;
static double masked_loss(TuFixture *f, double *grad) {
    double loss;
    assert_int_equal(f->m->loss_grad(f->params, f->x, test_mask, f->batch, 1, &loss, grad, f->ws),
                     AEC_OK);
    return loss;
}

static void test_masked_loss(void **state) {
    (void)state;
    const char *losses[] = {"mse", "rmse", "mae", "bce"};
    for (int l = 0; l < countof(losses); l++) {
        char spec[512];
        snprintf(spec, sizeof spec,
                 "model masked {\n input 7\n encoder { dense 4 tanh; dense 3 }\n decoder mirror\n"
                 " output sigmoid\n loss %s masked\n}\n",
                 losses[l]);
        TuFixture f;
        tu_open(&f, spec, BATCH, 2);
        assert_int_equal(f.m->masked, 1);
        double mask[BATCH * 7], ones[BATCH * 7], xhat[BATCH * 7], loss, eval_loss;
        int present = 0;
        for (int i = 0; i < BATCH * 7; i++) {
            mask[i] = (i * 5) % 3 != 0; /* a third missing */
            ones[i] = 1;
            present += mask[i] != 0;
            if (!mask[i]) f.x[i] = 0; /* missing values are zero-filled */
        }
        test_mask = mask;
        double err = tu_gradient_error(&f, masked_loss);
        if (err > 1e-6) fail_msg("%s masked: relative gradient error %.3g", losses[l], err);

        /* The loss is the mean over the present elements of the reconstruction. */
        assert_int_equal(f.m->loss_grad(f.params, f.x, mask, BATCH, 1, &loss, f.grad, f.ws),
                         AEC_OK);
        assert_int_equal(f.m->eval(f.params, f.x, mask, BATCH, &eval_loss, xhat, f.ws), AEC_OK);
        double sum = 0;
        for (int i = 0; i < BATCH * 7; i++) {
            if (!mask[i]) continue;
            double p = xhat[i], t = f.x[i], d = p - t;
            if (l == 0 || l == 1)
                sum += d * d;
            else if (l == 2)
                sum += fabs(d);
            else
                sum += -(t * fmax(log(p), -100) + (1 - t) * fmax(log(1 - p), -100));
        }
        double want = l == 1 ? sqrt(sum / present) : sum / present;
        if (fabs(loss - want) > 1e-12 * want || fabs(eval_loss - want) > 1e-12 * want)
            fail_msg("%s masked: loss %.17g, eval %.17g, by hand %.17g", losses[l], loss, eval_loss,
                     want);

        /* No mask is an all-ones mask. */
        double with_ones, without;
        assert_int_equal(f.m->loss_grad(f.params, f.x, ones, BATCH, 1, &with_ones, f.grad, f.ws),
                         AEC_OK);
        assert_int_equal(f.m->loss_grad(f.params, f.x, NULL, BATCH, 1, &without, f.grad, f.ws),
                         AEC_OK);
        assert_true(with_ones == without && without != loss);
        tu_close(&f);
    }
}

/* Entry points refuse bad arguments with a status, never a crash. */
static void test_entry_point_errors(void **state) {
    (void)state;
    TuFixture f;
    tu_open(&f, "model e {\n input 4\n encoder { dense 2 }\n decoder mirror\n}\n", BATCH, 2);
    double loss, code[8];
    assert_int_equal(f.m->encode(f.params, f.x, code, 0, f.ws), AEC_EBATCH);
    assert_int_equal(f.m->encode(f.params, f.x, code, AEC_MAX_BATCH + 1, f.ws), AEC_EBATCH);
    assert_int_equal(f.m->encode(NULL, f.x, code, 1, f.ws), AEC_ENULL);
    assert_int_equal(f.m->loss_grad(f.params, f.x, NULL, 1, 1, NULL, f.grad, f.ws), AEC_ENULL);
    assert_int_equal(f.m->eval(f.params, f.x, NULL, 1, &loss, NULL, f.ws), AEC_OK);
    /* A NaN in the data gives a non-finite loss and leaves the parameters alone. */
    double *before = tu_alloc(sizeof(double) * (size_t)f.m->param_count);
    memcpy(before, f.params, sizeof(double) * (size_t)f.m->param_count);
    double *opt = tu_alloc(sizeof(double) * (size_t)(f.m->opt_state_count + 1));
    f.x[0] = NAN;
    assert_int_equal(f.m->train_step(f.params, opt, f.x, NULL, 1, 1, &loss, f.ws), AEC_ENONFINITE);
    assert_memory_equal(before, f.params, sizeof(double) * (size_t)f.m->param_count);
    free(before);
    free(opt);
    tu_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_activation),
        cmocka_unit_test(test_every_loss),
        cmocka_unit_test(test_tied_decoder),
        cmocka_unit_test(test_views_and_activation_layers),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_f32_matches_f64),
        cmocka_unit_test(test_f32_activation_ulp),
        cmocka_unit_test(test_masked_loss),
        cmocka_unit_test(test_entry_point_errors),
    };
    return cmocka_run_group_tests_name("grad", tests, NULL, NULL);
}
