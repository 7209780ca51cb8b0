/* test_reg_effects.c — each regularizer does what it claims, on real data.
 *
 * Every test trains a shipped spec (specs/NAME.ae) and the same spec without
 * its regularizer (the line removed from the text) on the same Fashion-MNIST
 * subset, for the same few epochs, and measures on test images:
 * - sparse_l1: the code's mean absolute activation is lower;
 * - sparse_kl: the code's mean activation is lower, and near rho;
 * - contractive: the encoder's Jacobian norm, by finite differences, is lower;
 * - denoising: on test images with the training noise (masking, p 0.5)
 *   applied, the output is closer to the clean images (PSNR) than the noisy
 *   input, and than the plain model's output;
 * - vae: the KL term is positive and finite, the ELBO improves epoch by
 *   epoch, samples decoded from N(0, I) have the data's shape and range;
 * - stacked_pretrained: each pretraining stage's loss decreases.
 * Subsets and epochs are small so that the suite takes seconds; the numbers
 * are printed (docs/regularizers.md quotes them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rt.h"
#include "testutil.h"

enum { N_TRAIN = 6000, N_TEST = 1000, BATCH = 128 };

static aec_data train_set, test_set;

static int load_data(void **state) {
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    char path[256];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (aec_data_load(path, AEC_F32, N_TRAIN, 0, &train_set)) return -1;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    return aec_data_load(path, AEC_F32, N_TEST, 0, &test_set) ? -1 : 0;
}

static int free_data(void **state) {
    (void)state;
    aec_data_free(&train_set);
    aec_data_free(&test_set);
    return 0;
}

typedef struct Trained {
    Arena *arena;
    Codegen *cg;
    const aec_model *m;
    float *params, *opt;
    void *ws;
    uint64_t step;
} Trained;

/* The spec file's text; with `drop`, without the statement line that starts
 * with that keyword (comments may mention it). */
static char *spec_text(const char *name, const char *drop) {
    char path[512];
    snprintf(path, sizeof path, "%s/specs/%s.ae", AEC_SOURCE_DIR, name);
    size_t len;
    char *text = read_file_text(path, &len);
    assert_non_null(text);
    if (!drop) return text;
    for (char *bol = text; *bol;) {
        char *eol = strchr(bol, '\n'), *word = bol + strspn(bol, " \t");
        if (!eol) break;
        if (!strncmp(word, drop, strlen(drop))) {
            memmove(bol, eol + 1, strlen(eol + 1) + 1);
            return text;
        }
        bol = eol + 1;
    }
    fail_msg("%s has no '%s' statement", path, drop);
    return NULL;
}

static void model_open(Trained *t, const char *text) {
    diag_reset();
    t->arena = arena_new();
    t->m = tu_jit(t->arena, text, false, &t->cg);
    if (!t->m) fail_msg("does not compile:\n%s", text);
    t->params = tu_alloc(sizeof(float) * (size_t)t->m->param_count);
    t->opt = tu_alloc(sizeof(float) * (size_t)(t->m->opt_state_count + 1));
    int ws_batch = BATCH > N_TEST ? BATCH : N_TEST;
    t->ws = malloc(t->m->workspace_size(ws_batch));
    t->step = 0;
    assert_int_equal(t->m->init(t->params, t->m->train.seed), AEC_OK);
}

static void model_close(Trained *t) {
    free(t->params);
    free(t->opt);
    free(t->ws);
    cg_free(t->cg);
    arena_free(t->arena);
}

/* One epoch over the training subset in order; the mean training loss. */
static double train_epoch(Trained *t) {
    int64_t dim = t->m->input_size;
    const float *x = train_set.x;
    double sum = 0;
    for (int64_t i = 0; i < train_set.n; i += BATCH) {
        int bs = (int)(train_set.n - i < BATCH ? train_set.n - i : BATCH);
        float loss[AEC_MAX_METRICS];
        assert_int_equal(
            t->m->train_step(t->params, t->opt, x + i * dim, NULL, bs, ++t->step, loss, t->ws),
            AEC_OK);
        sum += loss[0] * bs;
    }
    return sum / (double)train_set.n;
}

static void train(Trained *t, int epochs) {
    for (int e = 0; e < epochs; e++)
        train_epoch(t);
}

/* The codes of the test images (n x code_size, malloc'd). */
static float *codes_of(Trained *t, const float *x, int64_t n) {
    float *c = malloc(sizeof(float) * (size_t)(n * t->m->code_size));
    assert_int_equal(t->m->encode(t->params, x, c, (int)n, t->ws), AEC_OK);
    return c;
}

static double mean_of(const float *v, int64_t n, bool absolute) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += absolute ? fabs(v[i]) : v[i];
    return s / (double)n;
}

/* The test images' reconstruction loss (the "recon" metric, or the loss). */
static double recon_of(Trained *t) {
    double mt[AEC_MAX_METRICS];
    assert_int_equal(aec_eval_metrics(t->m, t->params, &test_set, N_TEST, t->ws, NULL, mt), AEC_OK);
    return t->m->n_metrics > 1 ? mt[1] : mt[0];
}

static double psnr(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return 10 * log10((double)n / s);
}

/* The shipped spec `name` and the same spec without its `drop` line, each
 * opened and trained for `epochs` on the training subset. */
static void train_both(Trained *with, Trained *without, const char *name, const char *drop,
                       int epochs) {
    char *a = spec_text(name, NULL), *b = spec_text(name, drop);
    model_open(with, a);
    model_open(without, b);
    train(with, epochs);
    train(without, epochs);
    free(a), free(b);
}

static void test_sparse_l1(void **state) {
    (void)state;
    Trained with, without;
    train_both(&with, &without, "sparse_l1", "regularize", 3);
    int64_t n = test_set.n, cs = with.m->code_size;
    float *cw = codes_of(&with, test_set.x, n), *co = codes_of(&without, test_set.x, n);
    double mw = mean_of(cw, n * cs, true), mo = mean_of(co, n * cs, true);
    double zw = 0, zo = 0; /* fraction of exactly-zero code units */
    for (int64_t i = 0; i < n * cs; i++)
        zw += cw[i] == 0, zo += co[i] == 0;
    print_message(
        "sparse_l1: mean |h| %.4f with l1 code, %.4f without (%.1fx lower); zero units %.1f%% "
        "vs %.1f%%; test MSE %.4f vs %.4f\n",
        mw, mo, mo / mw, 100 * zw / (double)(n * cs), 100 * zo / (double)(n * cs), recon_of(&with),
        recon_of(&without));
    assert_true(mw < mo / 2);
    free(cw), free(co);
    model_close(&with);
    model_close(&without);
}

static void test_sparse_kl(void **state) {
    (void)state;
    Trained with, without;
    train_both(&with, &without, "sparse_kl", "regularize", 3);
    int64_t n = test_set.n, cs = with.m->code_size;
    float *cw = codes_of(&with, test_set.x, n), *co = codes_of(&without, test_set.x, n);
    double mw = mean_of(cw, n * cs, false), mo = mean_of(co, n * cs, false);
    print_message(
        "sparse_kl: mean code activation %.4f with kl_sparsity 0.05, %.4f without; test MSE "
        "%.4f vs %.4f\n",
        mw, mo, recon_of(&with), recon_of(&without));
    assert_true(mw < mo / 2);
    assert_true(fabs(mw - 0.05) < 0.025);
    free(cw), free(co);
    model_close(&with);
    model_close(&without);
}

/* ‖∂h/∂x‖²_F of encode at each of `n` test images, by central differences
 * (all 784 directions of one image in one batch), averaged. */
static double jacobian_norm(Trained *t, int n) {
    int64_t dim = t->m->input_size, cs = t->m->code_size;
    const float h = 1e-2f;
    float *xs = malloc(sizeof(float) * (size_t)(2 * dim * dim)),
          *cs2 = malloc(sizeof(float) * (size_t)(2 * dim * cs));
    void *ws = malloc(t->m->workspace_size((int)(2 * dim)));
    double total = 0;
    for (int k = 0; k < n; k++) {
        const float *x = (const float *)test_set.x + (int64_t)k * dim;
        for (int64_t i = 0; i < dim; i++) {
            memcpy(xs + (2 * i) * dim, x, sizeof(float) * (size_t)dim);
            memcpy(xs + (2 * i + 1) * dim, x, sizeof(float) * (size_t)dim);
            xs[(2 * i) * dim + i] += h;
            xs[(2 * i + 1) * dim + i] -= h;
        }
        assert_int_equal(t->m->encode(t->params, xs, cs2, (int)(2 * dim), ws), AEC_OK);
        for (int64_t i = 0; i < dim; i++)
            for (int64_t j = 0; j < cs; j++) {
                double d = (cs2[(2 * i) * cs + j] - cs2[(2 * i + 1) * cs + j]) / (2.0 * h);
                total += d * d;
            }
    }
    free(xs), free(cs2), free(ws);
    return total / n;
}

static void test_contractive(void **state) {
    (void)state;
    Trained with, without;
    train_both(&with, &without, "contractive", "regularize", 3);
    double jw = jacobian_norm(&with, 10), jo = jacobian_norm(&without, 10);
    float loss[AEC_MAX_METRICS];
    assert_int_equal(with.m->eval(with.params, test_set.x, NULL, 10, loss, NULL, with.ws), AEC_OK);
    assert_int_equal(with.m->metrics(with.ws, loss), AEC_OK);
    assert_string_equal(with.m->metric_names[2], "contractive");
    print_message(
        "contractive: ||dh/dx||_F^2 on 10 test images %.3f with the penalty, %.3f without "
        "(%.1fx lower); the model's own term %.3f; test MSE %.4f vs %.4f\n",
        jw, jo, jo / jw, loss[2], recon_of(&with), recon_of(&without));
    assert_true(jw < jo / 2);
    assert_true(fabs(loss[2] - jw) < 0.02 * jw); /* the compiled term is the Jacobian's norm */
    model_close(&with);
    model_close(&without);
}

static void test_denoising(void **state) {
    (void)state;
    Trained with, without;
    char *text = spec_text("denoising", NULL);
    assert_non_null(strstr(text, "\n    corrupt mask 0.5\n")); /* the noise made below */
    free(text);
    train_both(&with, &without, "denoising", "corrupt", 4);
    int64_t n = test_set.n * test_set.dim;
    const float *clean = test_set.x;
    float *noisy = malloc(sizeof(float) * (size_t)n), *yw = malloc(sizeof(float) * (size_t)n),
          *yo = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) /* the training noise, from another stream */
        noisy[i] = aec_rng_uniform(12345, 1, (uint64_t)i) < 0.5 ? 0 : clean[i];
    float loss;
    assert_int_equal(with.m->eval(with.params, noisy, NULL, N_TEST, &loss, yw, with.ws), AEC_OK);
    assert_int_equal(without.m->eval(without.params, noisy, NULL, N_TEST, &loss, yo, without.ws),
                     AEC_OK);
    double p_noisy = psnr(noisy, clean, n), p_with = psnr(yw, clean, n),
           p_without = psnr(yo, clean, n);
    float *cw = malloc(sizeof(float) * (size_t)n);
    assert_int_equal(with.m->eval(with.params, clean, NULL, N_TEST, &loss, cw, with.ws), AEC_OK);
    print_message(
        "denoising: PSNR to the clean test images, half their pixels masked: masked input "
        "%.2f dB, denoising model %.2f dB, plain model %.2f dB (clean input: denoising "
        "model %.2f dB)\n",
        p_noisy, p_with, p_without, psnr(cw, clean, n));
    assert_true(p_with > p_noisy + 3);
    assert_true(p_with > p_without + 1.5);
    free(noisy), free(yw), free(yo), free(cw);
    model_close(&with);
    model_close(&without);
}

static void test_vae(void **state) {
    (void)state;
    Trained t;
    char *text = spec_text("vae", NULL);
    model_open(&t, text);
    const aec_model *m = t.m;
    assert_true(m->variational);
    assert_int_equal(m->n_metrics, 3);
    double prev = -INFINITY;
    for (int e = 1; e <= 4; e++) {
        train_epoch(&t);
        double mt[AEC_MAX_METRICS];
        assert_int_equal(aec_eval_metrics(m, t.params, &test_set, N_TEST, t.ws, NULL, mt), AEC_OK);
        double elbo = aec_elbo(m, mt);
        print_message("vae epoch %d: test recon %.2f  kl %.3f  elbo %.2f\n", e, mt[1], mt[2], elbo);
        assert_true(isfinite(mt[2]) && mt[2] > 0);
        assert_true(elbo > prev);
        prev = elbo;
    }
    /* Samples: decode z ~ N(0, I); the data's shape and range. */
    enum { NS = 200 };
    float *z = malloc(sizeof(float) * NS * (size_t)m->code_size),
          *x = malloc(sizeof(float) * NS * 784);
    for (int64_t i = 0; i < NS * m->code_size; i++)
        z[i] = (float)aec_rng_normal(9, AEC_STREAM_SAMPLE, (uint64_t)i);
    assert_int_equal(m->input_size, 784);
    assert_int_equal(m->decode(t.params, z, x, NS, t.ws), AEC_OK);
    double lo = INFINITY, hi = -INFINITY, mean = mean_of(x, NS * 784, false);
    double data_mean = mean_of(test_set.x, test_set.n * 784, false);
    for (int64_t i = 0; i < NS * 784; i++)
        lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    /* Border pixels are background in the data; samples keep that. */
    double border = 0, center = 0;
    for (int s = 0; s < NS; s++)
        for (int r = 0; r < 28; r++) {
            border += x[s * 784 + r * 28] / (NS * 28.0);
            center += x[s * 784 + r * 28 + 14] / (NS * 28.0);
        }
    print_message(
        "vae samples: values in [%.3f, %.3f], mean %.3f (test images %.3f); left column %.3f, "
        "middle column %.3f\n",
        lo, hi, mean, data_mean, border, center);
    assert_true(lo >= 0 && hi <= 1);
    assert_true(fabs(mean - data_mean) < 0.5 * data_mean);
    assert_true(center > 3 * border);
    free(z), free(x), free(text);
    model_close(&t);
}

/* Each stage's epoch-mean loss goes down, then fine-tuning starts lower
 * than the same model from scratch does after its first epoch. */
static void test_pretraining(void **state) {
    (void)state;
    Trained t;
    char *text = spec_text("stacked_pretrained", NULL);
    model_open(&t, text);
    const aec_model *m = t.m;
    assert_int_equal(m->n_stages, 3);
    int64_t dim = m->input_size, n = 3000; /* half the subset keeps it quick */
    for (int s = 1; s <= m->n_stages; s++) {
        memset(t.opt, 0, sizeof(float) * (size_t)m->opt_state_count);
        uint64_t step = 0;
        double first = 0, last = 0;
        for (int e = 0; e < 3; e++) {
            double sum = 0;
            for (int64_t i = 0; i < n; i += BATCH) {
                int bs = (int)(n - i < BATCH ? n - i : BATCH);
                float loss[AEC_MAX_METRICS];
                assert_int_equal(m->stage_step(s, t.params, t.opt,
                                               (const float *)train_set.x + i * dim, NULL, bs,
                                               ++step, loss, t.ws),
                                 AEC_OK);
                sum += loss[0] * bs;
            }
            double mean = sum / (double)n;
            print_message("pretrain stage %d epoch %d: loss %.5f\n", s, e + 1, mean);
            if (e == 0)
                first = mean;
            else
                assert_true(mean < last);
            last = mean;
        }
        assert_true(last < 0.8 * first);
    }
    memset(t.opt, 0, sizeof(float) * (size_t)m->opt_state_count);
    double tuned = train_epoch(&t);
    Trained scratch;
    model_open(&scratch, text);
    double fresh = train_epoch(&scratch);
    print_message("first fine-tuning epoch: loss %.5f after pretraining, %.5f from scratch\n",
                  tuned, fresh);
    assert_true(tuned < fresh);
    free(text);
    model_close(&t);
    model_close(&scratch);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_l1),   cmocka_unit_test(test_sparse_kl),
        cmocka_unit_test(test_contractive), cmocka_unit_test(test_denoising),
        cmocka_unit_test(test_vae),         cmocka_unit_test(test_pretraining),
    };
    return cmocka_run_group_tests_name("reg_effects", tests, load_data, free_data);
}
