/* test_regularizers.c — what makes an autoencoder learn more than the
 * identity, derived by the compiler and checked.
 *
 * - Gradients (f64, central differences, relative error <= 1e-6 in the
 *   2-norm over all parameters) of every new term and layer, each alone and
 *   combined: l1/l2 weights, l1 code, KL sparsity, the contractive term for
 *   one to three dense layers and every smooth activation, dropout, the
 *   three corruptions, the variational code with each loss, and the
 *   pretraining stages. Noise is keyed by the step, so a fixed step makes
 *   the loss a deterministic function of the parameters.
 * - Each term's value against an independent computation in this file
 *   (the contractive term against the Jacobian by finite differences).
 * - Modes: dropout and corruption act in training only, and exactly as
 *   defined (the masks of aec_rng_noise, the 1/(1-p) scale), also with batch
 *   norm before or after dropout; inference is deterministic; the metrics
 *   are reported as documented.
 * - Layer-wise pretraining stages update only their own tensors.
 * Models are JIT-compiled without LLVM's optimizations (the compile is most
 * of a tiny model's test time); one test checks that the optimized build of
 * the combined model computes the same loss and gradient.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rt.h"
#include "testutil.h"

enum { BATCH = 4 };

/* The loss and its metrics at step 3 (any fixed step: the same noise). */
static double loss_at(TuFixture *f, double *grad, double *metrics) {
    double local[AEC_MAX_METRICS];
    if (!metrics) metrics = local;
    assert_int_equal(f->m->loss_grad(f->params, f->x, NULL, BATCH, 3, metrics, grad, f->ws),
                     AEC_OK);
    double loss = metrics[0];
    assert_int_equal(f->m->metrics(f->ws, metrics), AEC_OK);
    assert_true(metrics[0] == loss);
    return loss;
}

static double loss_step3(TuFixture *f, double *grad) {
    return loss_at(f, grad, NULL);
}

static void check_spec(const char *spec) {
    TuFixture f;
    tu_open(&f, spec, BATCH, 0);
    double err = tu_gradient_error(&f, loss_step3);
    tu_close(&f);
    if (err > 1e-6) fail_msg("relative gradient error %.3g for:\n%s", err, spec);
}

/* A spec around an encoder and a body of extra statements. */
static void check_with(const char *encoder, const char *decoder, const char *extra) {
    char spec[1024];
    snprintf(spec, sizeof spec, "model g {\n input 7\n encoder { %s }\n decoder %s\n%s\n}\n",
             encoder, decoder, extra);
    check_spec(spec);
}

static void test_grad_weight_terms(void **state) {
    (void)state;
    check_with("dense 5 tanh; dense 3", "mirror", " regularize { l2 weights 0.3 }");
    check_with("dense 5 tanh; dense 3", "mirror", " regularize { l1 weights 0.2 }");
    check_with("dense 5 tanh; dense 3", "tied",
               " output sigmoid\n loss bce\n"
               " regularize { l2 weights 0.1; l1 weights 0.05 }");
}

static void test_grad_sparsity(void **state) {
    (void)state;
    check_with("dense 5 tanh; dense 3 tanh", "mirror", " regularize { l1 code 0.7 }");
    check_with("dense 5 elu; dense 3 sigmoid", "mirror", " regularize { kl_sparsity 0.05 2 }");
    check_with("dense 5 tanh; dense 4; sigmoid", "{ dense 5 softplus; dense 7 }",
               " regularize { kl_sparsity 0.2 0.5; l1 code 0.1 }");
}

/* The contractive term for one to three layers, each smooth activation,
 * activation layers, views, a linear code and a variational one. */
static void test_grad_contractive(void **state) {
    (void)state;
    check_with("dense 4 sigmoid", "mirror", " output sigmoid\n regularize { contractive 0.8 }");
    check_with("dense 4 softplus", "mirror", " regularize { contractive 0.8 }");
    check_with("dense 6 sigmoid; dense 5 tanh; dense 3 elu", "mirror",
               " regularize { contractive 0.3 }");
    check_with("dense 6 elu=0.5; dense 5 softplus; dense 4 gelu; dense 3 leaky_relu=0.3", "mirror",
               " regularize { contractive 0.3 }");
    check_with("dense 6 tanh; dense 5 sigmoid; dense 2", "mirror",
               " regularize { contractive 0.5 }");
    check_with("dense 6; tanh; elu; dense 5; dense 3 softplus", "mirror",
               " regularize { contractive 0.5 }");
    check_with("dense 5", "mirror", " regularize { contractive 1; l1 code 0.1 }");
    check_with("dense 5 tanh; dense 1 sigmoid", "mirror", " regularize { contractive 2 }");
    check_spec("model cimg {\n input 1x2x3\n encoder { flatten; dense 4 tanh; dense 2 tanh }\n"
               " decoder mirror\n regularize { contractive 0.4 }\n}\n");
}

static void test_grad_noise_and_dropout(void **state) {
    (void)state;
    check_with("dense 5 tanh; dropout 0.3; dense 3", "{ dense 5 tanh; dropout 0.5; dense 7 }", "");
    check_with("dense 5 tanh; dense 3", "mirror", " corrupt gaussian 0.3");
    check_with("dense 5 tanh; dense 3", "mirror", " corrupt mask 0.25");
    check_with("dense 5 tanh; dense 3", "mirror",
               " output sigmoid\n loss bce\n corrupt saltpepper 0.2");
}

static void test_grad_variational(void **state) {
    (void)state;
    const char *losses[] = {"mse", "mae", "bce"};
    for (int i = 0; i < countof(losses); i++) {
        char extra[256];
        snprintf(extra, sizeof extra, " latent gaussian 2\n output sigmoid\n loss %s", losses[i]);
        check_with("dense 5 tanh", "mirror", extra);
    }
    check_with("dense 5 tanh; dense 4 elu", "tied",
               " latent gaussian 3\n output sigmoid\n loss bce\n regularize { kl 0.25 }");
    check_with("dense 5 tanh", "{ dense 5 softplus; dense 7 sigmoid }",
               " latent gaussian 2\n loss mse\n regularize { kl 0 }");
}

/* Everything at once: every term and layer in one model. */
static void test_grad_combined(void **state) {
    (void)state;
    check_with(
        "dense 6 tanh; dropout 0.2; dense 4 sigmoid", "mirror",
        " output sigmoid\n loss bce\n corrupt gaussian 0.1\n"
        " regularize { l2 weights 0.01; l1 weights 0.01; l1 code 0.1; kl_sparsity 0.1 0.5 }");
    check_with("dense 6 tanh; dense 4 tanh", "{ dense 6 tanh; dropout 0.3; dense 7 sigmoid }",
               " loss mse\n corrupt mask 0.2\n regularize { contractive 0.2; l2 weights 0.05; l1 "
               "code 0.1 }");
    check_with("dense 6 tanh; dense 4 softplus", "{ dense 4 tanh; dropout 0.1; dense 7 sigmoid }",
               " latent gaussian 3\n loss bce\n corrupt saltpepper 0.1\n"
               " regularize { kl 0.5; l1 code 0.2; l2 weights 0.01; contractive 0.3 }");
}

/* LLVM's optimizations change nothing that matters: -O2 and -O0 agree. */
static void test_optimized_agrees(void **state) {
    (void)state;
    const char *spec = "model oa {\n input 7\n encoder { dense 6 tanh; dense 4 sigmoid }\n"
                       " decoder { dense 6 tanh; dropout 0.3; dense 7 sigmoid }\n loss bce\n"
                       " corrupt gaussian 0.1\n regularize { contractive 0.2; l2 weights 0.05;"
                       " l1 code 0.1; kl_sparsity 0.1 0.5 }\n}\n";
    TuFixture f0, f2;
    tu_open(&f0, spec, BATCH, 0);
    tu_open(&f2, spec, BATCH, 2);
    double m0[AEC_MAX_METRICS], m2[AEC_MAX_METRICS];
    loss_at(&f0, f0.grad, m0);
    loss_at(&f2, f2.grad, m2);
    for (int i = 0; i < f0.m->n_metrics; i++)
        assert_true(fabs(m0[i] - m2[i]) <= 1e-12 * fmax(1, fabs(m0[i])));
    for (int64_t i = 0; i < f0.m->trainable_count; i++)
        assert_true(fabs(f0.grad[i] - f2.grad[i]) <= 1e-12 * fmax(1, fabs(f0.grad[i])));
    tu_close(&f0);
    tu_close(&f2);
}

/* ------------------------------------------------------------ the values */

/* The metrics are the unweighted terms, the loss their weighted sum; each
 * term equals a direct computation from the parameters and the codes. */
static void test_term_values(void **state) {
    (void)state;
    TuFixture f;
    tu_open(&f,
            "model tv {\n input 7\n encoder { dense 5 tanh; dense 3 sigmoid }\n"
            " decoder mirror\n output sigmoid\n loss mse\n"
            " regularize { l2 weights 0.3; l1 weights 0.2; l1 code 0.7; kl_sparsity 0.1 2;"
            " contractive 0.5 }\n}\n",
            BATCH, 0);
    const aec_model *m = f.m;
    const char *want[] = {"loss",        "recon",      "l1_code",   "kl_sparsity",
                          "contractive", "l2_weights", "l1_weights"};
    assert_int_equal(m->n_metrics, countof(want));
    for (int i = 0; i < countof(want); i++)
        assert_string_equal(m->metric_names[i], want[i]);
    double mt[AEC_MAX_METRICS], ev[AEC_MAX_METRICS];
    loss_at(&f, f.grad, mt);
    assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev, NULL, f.ws), AEC_OK);
    assert_int_equal(m->metrics(f.ws, ev), AEC_OK);
    for (int i = 0; i < m->n_metrics; i++) /* no noise or dropout: train == eval */
        assert_true(fabs(mt[i] - ev[i]) <= 1e-12 * fmax(1, fabs(mt[i])));
    double w[] = {0, 1, 0.7, 2, 0.5, 0.3, 0.2}, sum = 0;
    for (int i = 1; i < m->n_metrics; i++)
        sum += w[i] * mt[i];
    assert_true(fabs(sum - mt[0]) < 1e-12);

    /* The code, the weights. */
    double code[BATCH * 3], l2 = 0, l1 = 0;
    assert_int_equal(m->encode(f.params, f.x, code, BATCH, f.ws), AEC_OK);
    for (int t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].kind == AEC_TENSOR_WEIGHT)
            for (int64_t i = 0; i < m->tensors[t].numel; i++) {
                double v = f.params[m->tensors[t].offset + i];
                l2 += v * v, l1 += fabs(v);
            }
    double l1c = 0, kls = 0;
    for (int i = 0; i < BATCH * 3; i++)
        l1c += fabs(code[i]) / BATCH;
    for (int j = 0; j < 3; j++) {
        double r = 0;
        for (int b = 0; b < BATCH; b++)
            r += code[b * 3 + j] / BATCH;
        kls += 0.1 * log(0.1 / r) + 0.9 * log(0.9 / (1 - r));
    }
    /* The Jacobian of encode by central differences, one sample at a time. */
    double jac = 0, h = 1e-5;
    for (int b = 0; b < BATCH; b++)
        for (int i = 0; i < 7; i++) {
            double xb[7], up[3], down[3];
            memcpy(xb, f.x + b * 7, sizeof xb);
            xb[i] += h;
            assert_int_equal(m->encode(f.params, xb, up, 1, f.ws), AEC_OK);
            xb[i] -= 2 * h;
            assert_int_equal(m->encode(f.params, xb, down, 1, f.ws), AEC_OK);
            for (int j = 0; j < 3; j++)
                jac += pow((up[j] - down[j]) / (2 * h), 2) / BATCH;
        }
    print_message("terms: l1_code %.6g (direct %.6g), kl_sparsity %.6g (%.6g), contractive %.6g "
                  "(finite differences %.6g), l2 %.6g (%.6g), l1 %.6g (%.6g)\n",
                  mt[2], l1c, mt[3], kls, mt[4], jac, mt[5], l2, mt[6], l1);
    assert_true(fabs(mt[2] - l1c) < 1e-12);
    assert_true(fabs(mt[3] - kls) < 1e-12);
    assert_true(fabs(mt[4] - jac) < 1e-7 * jac);
    assert_true(fabs(mt[5] - l2) < 1e-12);
    assert_true(fabs(mt[6] - l1) < 1e-12);
    tu_close(&f);
}

/* The deep contractive term equals the Jacobian by finite differences. */
static void test_contractive_deep_value(void **state) {
    (void)state;
    TuFixture f;
    tu_open(&f,
            "model cd {\n input 7\n encoder { dense 6 gelu; dense 5 tanh; dense 4 elu; dense 3 }\n"
            " decoder mirror\n regularize { contractive 1 }\n}\n",
            BATCH, 0);
    double mt[AEC_MAX_METRICS], jac = 0, h = 1e-5;
    loss_at(&f, f.grad, mt);
    for (int b = 0; b < BATCH; b++)
        for (int i = 0; i < 7; i++) {
            double xb[7], up[3], down[3];
            memcpy(xb, f.x + b * 7, sizeof xb);
            xb[i] += h;
            assert_int_equal(f.m->encode(f.params, xb, up, 1, f.ws), AEC_OK);
            xb[i] -= 2 * h;
            assert_int_equal(f.m->encode(f.params, xb, down, 1, f.ws), AEC_OK);
            for (int j = 0; j < 3; j++)
                jac += pow((up[j] - down[j]) / (2 * h), 2) / BATCH;
        }
    assert_string_equal(f.m->metric_names[2], "contractive");
    print_message("4-layer contractive %.9g, finite differences %.9g\n", mt[2], jac);
    assert_true(fabs(mt[2] - jac) < 1e-7 * jac);
    tu_close(&f);
}

/* The VAE's metrics: recon summed over features, KL of N(mu, sigma²). */
static void test_variational_values(void **state) {
    (void)state;
    TuFixture f;
    tu_open(&f,
            "model vv {\n input 7\n encoder { dense 5 tanh }\n latent gaussian 2\n"
            " decoder mirror\n output sigmoid\n loss bce\n regularize { kl 0.5 }\n}\n",
            BATCH, 0);
    const aec_model *m = f.m;
    assert_int_equal(m->variational, 1);
    assert_int_equal(m->n_metrics, 3);
    assert_string_equal(m->metric_names[2], "kl");
    assert_int_equal(m->code_size, 2);
    double ev[AEC_MAX_METRICS], xhat[BATCH * 7], mu[BATCH * 2];
    assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev, xhat, f.ws), AEC_OK);
    assert_int_equal(m->metrics(f.ws, ev), AEC_OK);
    assert_int_equal(m->encode(f.params, f.x, mu, BATCH, f.ws), AEC_OK);
    /* logvar = the logvar head on the encoder's output */
    int tw = -1, tb = -1, ew = -1, eb = -1;
    for (int t = 0; t < m->n_tensors; t++) {
        if (!strcmp(m->tensors[t].name, "latent.logvar.weight")) tw = t;
        if (!strcmp(m->tensors[t].name, "latent.logvar.bias")) tb = t;
        if (!strcmp(m->tensors[t].name, "encoder.0.weight")) ew = t;
        if (!strcmp(m->tensors[t].name, "encoder.0.bias")) eb = t;
    }
    assert_true(tw >= 0 && tb >= 0 && ew >= 0 && eb >= 0);
    double kl = 0, recon = 0;
    for (int b = 0; b < BATCH; b++) {
        double hdn[5];
        for (int j = 0; j < 5; j++) {
            double z = f.params[m->tensors[eb].offset + j];
            for (int i = 0; i < 7; i++)
                z += f.params[m->tensors[ew].offset + j * 7 + i] * f.x[b * 7 + i];
            hdn[j] = tanh(z);
        }
        for (int k = 0; k < 2; k++) {
            double lv = f.params[m->tensors[tb].offset + k];
            for (int j = 0; j < 5; j++)
                lv += f.params[m->tensors[tw].offset + k * 5 + j] * hdn[j];
            double u = mu[b * 2 + k];
            kl += -0.5 * (1 + lv - u * u - exp(lv)) / BATCH;
        }
        for (int i = 0; i < 7; i++) {
            double p = xhat[b * 7 + i], t = f.x[b * 7 + i];
            recon -= (t * log(p) + (1 - t) * log(1 - p)) / BATCH;
        }
    }
    print_message("vae eval: recon %.9g (direct %.9g), kl %.9g (direct %.9g), loss %.9g\n", ev[1],
                  recon, ev[2], kl, ev[0]);
    assert_true(fabs(ev[1] - recon) < 1e-9 * recon);
    assert_true(fabs(ev[2] - kl) < 1e-12 + 1e-9 * kl);
    assert_true(fabs(ev[0] - (recon + 0.5 * kl)) < 1e-9 * ev[0]);
    assert_true(kl > 0);
    tu_close(&f);
}

/* ------------------------------------------------------------- the modes */

/* Dropout: in training y = x·keep/(1−p) with keep from aec_rng_noise at
 * the step; at inference the identity. Corruption: the spec's noise on the
 * input in training, none at inference. Checked through a linear model
 * whose code is its input (identity weights), so values are visible. */
static void test_dropout_and_corruption_modes(void **state) {
    (void)state;
    const char *cases[] = {"encoder { dense 6; dropout 0.4 }", "corrupt mask 0.3",
                           "corrupt saltpepper 0.3", "corrupt gaussian 0.5"};
    for (int c = 0; c < countof(cases); c++) {
        char spec[512];
        bool drop = c == 0;
        snprintf(spec, sizeof spec,
                 "model dm {\n input 6\n %s\n decoder { dense 6 }\n%s\n train { seed 99 }\n}\n",
                 drop ? cases[0] : "encoder { dense 6 }", drop ? "" : cases[c]);
        TuFixture f;
        tu_open(&f, spec, BATCH, 0);
        const aec_model *m = f.m;
        /* Identity weights, zero biases: encoder and decoder pass x through. */
        memset(f.params, 0, sizeof(double) * (size_t)m->param_count);
        for (int t = 0; t < m->n_tensors; t++)
            if (m->tensors[t].kind == AEC_TENSOR_WEIGHT)
                for (int i = 0; i < 6; i++)
                    f.params[m->tensors[t].offset + i * 6 + i] = 1;
        /* Training loss = mean((x̃ − x)²): compare with the masks recomputed here. */
        for (uint64_t step = 1; step <= 3; step++) {
            double loss[AEC_MAX_METRICS], want = 0;
            assert_int_equal(m->loss_grad(f.params, f.x, NULL, BATCH, step, loss, f.grad, f.ws),
                             AEC_OK);
            for (int i = 0; i < BATCH * 6; i++) {
                double x = f.x[i], xt;
                uint64_t base = AEC_STREAM_NOISE;
                if (drop) { /* layer 1 of the model: stream 1 */
                    double u =
                        (double)(aec_rng_noise(99, base + 1, step, (uint64_t)i) >> 11) * 0x1p-53;
                    xt = u < 0.6 ? x / 0.6 : 0;
                } else if (c == 1) {
                    double u = (double)(aec_rng_noise(99, base + 0x8000, step, (uint64_t)i) >> 11) *
                               0x1p-53;
                    xt = u < 0.7 ? x : 0;
                } else if (c == 2) {
                    double u = (double)(aec_rng_noise(99, base + 0x8000, step, (uint64_t)i) >> 11) *
                               0x1p-53;
                    double s = (double)(aec_rng_noise(99, base + 0x8001, step, (uint64_t)i) >> 11) *
                               0x1p-53;
                    xt = u < 0.7 ? x : s < 0.5 ? 1 : 0;
                } else {
                    uint64_t i2 = 2 * (uint64_t)i;
                    double u1 =
                        (double)(aec_rng_noise(99, base + 0x8000, step, i2) >> 11) * 0x1p-53;
                    double u2 =
                        (double)(aec_rng_noise(99, base + 0x8000, step, i2 + 1) >> 11) * 0x1p-53;
                    xt = x + 0.5 * sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
                }
                want += (xt - x) * (xt - x) / (BATCH * 6);
            }
            if (fabs(loss[0] - want) > 1e-12 * fmax(1, want))
                fail_msg("%s, step %d: training loss %.17g, the masks give %.17g", cases[c],
                         (int)step, loss[0], want);
            assert_true(want > 0);
        }
        /* Inference: the identity, so the loss is 0, the same on every call. */
        double ev[AEC_MAX_METRICS], ev2[AEC_MAX_METRICS], xhat[BATCH * 6];
        assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev, xhat, f.ws), AEC_OK);
        assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev2, NULL, f.ws), AEC_OK);
        assert_true(ev[0] < 1e-28 && ev[0] == ev2[0]);
        assert_memory_equal(xhat, f.x, sizeof xhat);
        tu_close(&f);
    }
}

/* The dropout keep rate is 1 − p over many draws, and the masks of two
 * dropout layers, of two steps, differ. */
static void test_dropout_statistics(void **state) {
    (void)state;
    int64_t kept = 0, n = 200000, same = 0;
    for (int64_t i = 0; i < n; i++) {
        double u =
            (double)(aec_rng_noise(5, AEC_STREAM_NOISE + 3, 17, (uint64_t)i) >> 11) * 0x1p-53;
        double v =
            (double)(aec_rng_noise(5, AEC_STREAM_NOISE + 3, 18, (uint64_t)i) >> 11) * 0x1p-53;
        kept += u >= 0.25;
        same += (u >= 0.25) == (v >= 0.25);
    }
    double rate = (double)kept / (double)n;
    print_message("dropout 0.25: kept %.4f; two steps agree on %.4f\n", rate,
                  (double)same / (double)n);
    assert_true(fabs(rate - 0.75) < 0.005);
    assert_true(fabs((double)same / (double)n - (0.75 * 0.75 + 0.25 * 0.25)) < 0.005);
}

/* Dropout with batch norm, in both orders: training normalizes with the
 * batch's statistics of what reaches it (after dropout's scaling when
 * dropout comes first) and drops with the generator's mask; inference
 * normalizes with the running statistics and keeps everything, the same on
 * every call. Identity dense layers make the values visible. */
static void test_dropout_with_batchnorm(void **state) {
    (void)state;
    const char *encoders[] = {"dense 6; batchnorm; dropout 0.4", "dense 6; dropout 0.4; batchnorm"};
    for (int c = 0; c < 2; c++) {
        char spec[512];
        snprintf(
            spec, sizeof spec,
            "model db {\n input 6\n encoder { %s }\n decoder { dense 6 }\n train { seed 5 }\n}\n",
            encoders[c]);
        TuFixture f;
        tu_open(&f, spec, BATCH, 0);
        const aec_model *m = f.m;
        memset(f.params, 0, sizeof(double) * (size_t)m->param_count);
        for (int t = 0; t < m->n_tensors; t++) {
            const aec_tensor_info *ti = &m->tensors[t];
            if (ti->kind == AEC_TENSOR_WEIGHT)
                for (int i = 0; i < 6; i++)
                    f.params[ti->offset + i * 6 + i] = 1;
            if (ti->ndim == 1 && (strstr(ti->name, ".weight") || strstr(ti->name, "running_var")))
                for (int i = 0; i < 6; i++)
                    f.params[ti->offset + i] = 1; /* gamma, running var */
        }
        int drop_layer = c == 0 ? 2 : 1; /* the dropout's stream: its layer index */
        for (uint64_t step = 1; step <= 2; step++) {
            double loss[AEC_MAX_METRICS], y[BATCH * 6], want = 0;
            for (int i = 0; i < BATCH * 6; i++) {
                uint64_t bits =
                    aec_rng_noise(5, AEC_STREAM_NOISE + (uint64_t)drop_layer, step, (uint64_t)i);
                y[i] = (double)(bits >> 11) * 0x1p-53 < 0.6 ? 1 / 0.6 : 0; /* the mask */
                if (c == 1) y[i] *= f.x[i];                                /* dropout first */
            }
            for (int j = 0; j < 6; j++) { /* batch norm of feature j */
                double mean = 0, var = 0;
                for (int b = 0; b < BATCH; b++)
                    mean += (c ? y[b * 6 + j] : f.x[b * 6 + j]) / BATCH;
                for (int b = 0; b < BATCH; b++)
                    var += pow((c ? y[b * 6 + j] : f.x[b * 6 + j]) - mean, 2) / BATCH;
                for (int b = 0; b < BATCH; b++) {
                    double in = c ? y[b * 6 + j] : f.x[b * 6 + j];
                    double bn = (in - mean) / sqrt(var + 1e-5);
                    double out = c ? bn : bn * y[b * 6 + j];
                    want += pow(out - f.x[b * 6 + j], 2) / (BATCH * 6);
                }
            }
            assert_int_equal(m->loss_grad(f.params, f.x, NULL, BATCH, step, loss, f.grad, f.ws),
                             AEC_OK);
            if (fabs(loss[0] - want) > 1e-12 * want)
                fail_msg("%s, step %d: training loss %.17g, by hand %.17g", encoders[c], (int)step,
                         loss[0], want);
        }
        double ev[AEC_MAX_METRICS], ev2[AEC_MAX_METRICS], xhat[BATCH * 6], xhat2[BATCH * 6];
        assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev, xhat, f.ws), AEC_OK);
        assert_int_equal(m->eval(f.params, f.x, NULL, BATCH, ev2, xhat2, f.ws), AEC_OK);
        for (int i = 0; i < BATCH * 6; i++) { /* running mean 0, variance 1; no dropout */
            double v = f.x[i] / sqrt(1 + 1e-5);
            if (fabs(xhat[i] - v) > 1e-15)
                fail_msg("%s: eval gives %.17g, not %.17g", encoders[c], xhat[i], v);
        }
        assert_true(ev[0] == ev2[0]);
        assert_memory_equal(xhat, xhat2, sizeof xhat);
        tu_close(&f);
        /* And the gradient of the combination, from ordinary weights. */
        snprintf(spec, sizeof spec,
                 "model dbg {\n input 7\n encoder { %s; tanh; dense 3 }\n decoder mirror\n}\n",
                 encoders[c]);
        check_spec(spec);
    }
}

/* ------------------------------------------------------------ pretraining */

/* A stage's step changes its own layers only; the stages pair encoder dense
 * k with decoder dense K+1−k; a stage's loss equals the shallow
 * autoencoder's, computed here. */
static void test_pretraining_stages(void **state) {
    (void)state;
    TuFixture f;
    tu_open(&f,
            "model st {\n input 7\n encoder { dense 5 tanh; dense 3 }\n decoder mirror\n"
            " output sigmoid\n loss bce\n train { optimizer adamw lr=0.01; pretrain "
            "layerwise 2 }\n}\n",
            BATCH, 0);
    const aec_model *m = f.m;
    assert_int_equal(m->n_stages, 2);
    double *opt = tu_alloc(sizeof(double) * (size_t)(m->opt_state_count + 1));
    double *before = tu_alloc(sizeof(double) * (size_t)m->param_count);
    /* tensors: encoder.0 W b, encoder.2 W b, decoder.0 W b, decoder.2 W b */
    const char *stage_tensors[2][4] = {
        {"encoder.0.weight", "encoder.0.bias", "decoder.2.weight", "decoder.2.bias"},
        {"encoder.2.weight", "encoder.2.bias", "decoder.0.weight", "decoder.0.bias"}};
    for (int s = 1; s <= 2; s++) {
        memcpy(before, f.params, sizeof(double) * (size_t)m->param_count);
        memset(opt, 0, sizeof(double) * (size_t)m->opt_state_count);
        double loss[AEC_MAX_METRICS];
        assert_int_equal(m->stage_step(s, f.params, opt, f.x, NULL, BATCH, 1, loss, f.ws), AEC_OK);
        assert_true(isfinite(loss[0]) && loss[0] > 0);
        for (int t = 0; t < m->n_tensors; t++) {
            bool own = false;
            for (int k = 0; k < 4; k++)
                own |= !strcmp(m->tensors[t].name, stage_tensors[s - 1][k]);
            bool changed = memcmp(before + m->tensors[t].offset, f.params + m->tensors[t].offset,
                                  sizeof(double) * (size_t)m->tensors[t].numel) != 0;
            if (own != changed)
                fail_msg("stage %d: %s %s", s, m->tensors[t].name,
                         changed ? "changed" : "did not change");
        }
    }
    double loss[AEC_MAX_METRICS];
    assert_int_equal(m->stage_step(3, f.params, opt, f.x, NULL, BATCH, 1, loss, f.ws),
                     AEC_EUNSUPPORTED);
    free(opt);
    free(before);
    tu_close(&f);
}

/* Stage k's gradient, through the same VJP rules, is what SGD's update
 * shows (the change divided by lr): checked by finite differences of the
 * stage's loss over the stage's own tensors (the frozen layers below feed
 * its input and target, but are not trained). */
static void test_pretraining_stage_gradient(void **state) {
    (void)state;
    const double lr = 1e-3;
    TuFixture f;
    tu_open(&f,
            "model sg {\n input 7\n encoder { dense 5 tanh; dropout 0.2; dense 3 elu }\n"
            " decoder mirror\n output sigmoid\n loss bce\n corrupt gaussian 0.1\n"
            " train { optimizer sgd lr=0.001; pretrain layerwise 1 }\n}\n",
            BATCH, 0);
    const aec_model *m = f.m;
    double *p0 = tu_alloc(sizeof(double) * (size_t)m->param_count);
    memcpy(p0, f.params, sizeof(double) * (size_t)m->param_count);
    for (int s = 1; s <= m->n_stages; s++) {
        double loss[AEC_MAX_METRICS], diff = 0, na = 0, nn = 0;
        memcpy(f.params, p0, sizeof(double) * (size_t)m->param_count);
        assert_int_equal(m->stage_step(s, f.params, NULL, f.x, NULL, BATCH, 2, loss, f.ws), AEC_OK);
        for (int64_t i = 0; i < m->trainable_count; i++) {
            int t = 0;
            while (i >= m->tensors[t].offset + m->tensors[t].numel)
                t++;
            if (!memcmp(p0 + m->tensors[t].offset, f.params + m->tensors[t].offset,
                        sizeof(double) * (size_t)m->tensors[t].numel))
                continue; /* not this stage's */
            double analytic = (p0[i] - f.params[i]) / lr;
            double *q = tu_alloc(sizeof(double) * (size_t)m->param_count);
            double h = 1e-6 * fmax(1, fabs(p0[i])), up, down;
            memcpy(q, p0, sizeof(double) * (size_t)m->param_count);
            q[i] = p0[i] + h;
            assert_int_equal(m->stage_step(s, q, NULL, f.x, NULL, BATCH, 2, &up, f.ws), AEC_OK);
            memcpy(q, p0, sizeof(double) * (size_t)m->param_count);
            q[i] = p0[i] - h;
            assert_int_equal(m->stage_step(s, q, NULL, f.x, NULL, BATCH, 2, &down, f.ws), AEC_OK);
            free(q);
            double numeric = (up - down) / (2 * h);
            diff += (analytic - numeric) * (analytic - numeric);
            na += analytic * analytic;
            nn += numeric * numeric;
        }
        double err = sqrt(diff) / fmax(sqrt(na), sqrt(nn));
        print_message("stage %d: relative gradient error %.3g\n", s, err);
        assert_true(na > 0);
        assert_true(err < 1e-6); /* the update is the gradient times lr, to rounding */
    }
    free(p0);
    tu_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_weight_terms),
        cmocka_unit_test(test_grad_sparsity),
        cmocka_unit_test(test_grad_contractive),
        cmocka_unit_test(test_grad_noise_and_dropout),
        cmocka_unit_test(test_grad_variational),
        cmocka_unit_test(test_grad_combined),
        cmocka_unit_test(test_optimized_agrees),
        cmocka_unit_test(test_term_values),
        cmocka_unit_test(test_contractive_deep_value),
        cmocka_unit_test(test_variational_values),
        cmocka_unit_test(test_dropout_and_corruption_modes),
        cmocka_unit_test(test_dropout_statistics),
        cmocka_unit_test(test_dropout_with_batchnorm),
        cmocka_unit_test(test_pretraining_stages),
        cmocka_unit_test(test_pretraining_stage_gradient),
    };
    return cmocka_run_group_tests_name("regularizers", tests, NULL, NULL);
}
