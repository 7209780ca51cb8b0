/* test_check.c — the checker: meaning, defaults, shapes, counts, layout.
 *
 * Golden files: every tests/golden/check/NAME.ae is parsed and checked. If
 * that reports errors, they must equal NAME.err exactly; otherwise the
 * checked model's dump must equal NAME.shapes. A first-line comment
 * `# test: table` also compares check_print_table with NAME.table. AEC_UPDATE_GOLDEN=1 rewrites the
 * goldens. The C tests below pin what the goldens only show: the design's mnist_conv counts, the
 * mirror/tied expansion, defaults, shape arithmetic.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "aec.h"
#include "golden.h"

#define DIR "tests/golden/check"

static char *rel_path(const char *name, const char *ext) {
    size_t n = strlen(DIR) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s%s", DIR, name, ext);
    return p;
}

/* Parse and check `text` (kept registered, so never freed); NULL on errors. */
static Model *check_text(Arena *a, const char *file, const char *text) {
    AstModel *ast = parse_spec(a, file, text);
    return ast ? check_model(a, ast) : NULL;
}

/* Checks `text` with diagnostics captured; returns the model and the text. */
static Model *check_quiet(Arena *a, const char *text, char **diags) {
    Capture cap;
    capture_begin(&cap);
    Model *m = check_text(a, "test.ae", arena_strdup(a, text));
    char *out = capture_end(&cap);
    if (diags)
        *diags = out;
    else
        free(out);
    return m;
}

static void test_check_goldens(void **state) {
    (void)state;
    char **names = golden_list(DIR, ".ae");
    int count = 0, failed = 0;
    for (char **n = names; *n; n++, count++) {
        char *spec = rel_path(*n, ".ae");
        char *text = golden_read(spec);
        assert_non_null(text);
        const char *directive = strncmp(text, "# test:", 7) == 0 ? text : "";
        size_t dlen = strcspn(directive, "\n");
        bool table = memmem(directive, dlen, "table", 5) != NULL;

        Arena *a = arena_new();
        Capture cap;
        capture_begin(&cap);
        Model *m = check_text(a, spec, text);
        int errors = diag_error_count();
        if (m) check_dump_shapes(cap.f, m);
        char *out = capture_end(&cap);
        if ((m != NULL) != (errors == 0)) {
            fprintf(stderr, "%s: check returned %p after %d errors\n", spec, (void *)m, errors);
            failed++;
        }
        char *expected = rel_path(*n, m ? ".shapes" : ".err");
        failed += !golden_expect(expected, out);
        free(expected);
        free(out);
        if (m && table) {
            capture_begin(&cap);
            check_print_table(cap.f, m);
            out = capture_end(&cap);
            expected = rel_path(*n, ".table");
            failed += !golden_expect(expected, out);
            free(expected);
            free(out);
        }
        arena_free(a);
    }
    golden_free_list(names);
    assert_true(count > 0);
    assert_int_equal(failed, 0);
}

/* DESIGN §1: Keras reports 416,262 parameters, 415,494 trainable. */
static void test_mnist_conv_counts(void **state) {
    (void)state;
    Arena *a = arena_new();
    char *text = golden_read(DIR "/mnist_conv.ae");
    assert_non_null(text);
    char *diags;
    Model *m = check_quiet(a, text, &diags);
    assert_non_null(m);
    assert_string_equal(diags, "");
    free(diags);
    assert_int_equal(m->param_count, 416262);
    assert_int_equal(m->trainable_count, 415494);
    assert_int_equal(m->param_count - m->trainable_count, 768);
    assert_int_equal(m->n_encoder, 13);
    assert_int_equal(m->n_decoder, 5);
    assert_int_equal(shape_numel(m->code), 49);
    /* The buffers come last in the params block. */
    const ParamTensor *last = &m->tensors[m->ntensors - 1];
    assert_string_equal(last->name, "encoder.6.running_var");
    assert_int_equal(last->kind, AEC_TENSOR_BUFFER);
    assert_int_equal(last->offset + last->numel, 416262);
    assert_int_equal(m->tensors[0].offset, 0);
    for (int i = 1; i < m->ntensors; i++)
        assert_int_equal(m->tensors[i].offset, m->tensors[i - 1].offset + m->tensors[i - 1].numel);
    free(text);
    arena_free(a);
}

static const char *const dense_ae = "model ae {\n"
                                    "    input 784\n"
                                    "    encoder { dense 512 relu; dense 128 relu; dense 32 }\n"
                                    "    decoder %s\n"
                                    "    output sigmoid\n"
                                    "}\n";

/* decoder mirror of 784-512-128-32: dense 128 relu, dense 512 relu, dense 784 sigmoid. */
static void test_mirror(void **state) {
    (void)state;
    Arena *a = arena_new();
    Model *m = check_quiet(a, arena_printf(a, dense_ae, "mirror"), NULL);
    assert_non_null(m);
    assert_int_equal(m->n_encoder, 3);
    assert_int_equal(m->n_decoder, 3);
    assert_int_equal(m->nlayers, 6);
    const int units[] = {128, 512, 784}, ins[] = {32, 128, 512};
    const ActKind acts[] = {ACT_RELU, ACT_RELU, ACT_SIGMOID};
    for (int i = 0; i < 3; i++) {
        const Layer *l = &m->layers[3 + i];
        assert_int_equal(l->kind, LY_DENSE);
        assert_true(l->in_decoder);
        assert_int_equal(l->units, units[i]);
        assert_int_equal(l->in.dim[0], ins[i]);
        assert_int_equal(l->act, acts[i]);
        assert_int_equal(l->tied_to, -1);
        assert_int_equal(l->module_index, 2 * i); /* Linear, activation */
        assert_int_equal(m->tensors[l->weight].shape[0], units[i]);
        assert_int_equal(m->tensors[l->weight].shape[1], ins[i]);
    }
    assert_string_equal(m->tensors[m->layers[5].weight].name, "decoder.4.weight");
    assert_string_equal(m->tensors[m->layers[2].bias].name, "encoder.4.bias");
    assert_int_equal(m->layers[2].act, ACT_LINEAR); /* the code stays linear */
    /* Decoder loc: the `decoder mirror` statement. */
    assert_int_equal(m->layers[3].loc.line, 4);
    assert_int_equal(m->layers[3].loc.col, 5);
    long enc = 784 * 512 + 512 + 512 * 128 + 128 + 128 * 32 + 32;
    long dec = 32 * 128 + 128 + 128 * 512 + 512 + 512 * 784 + 784;
    assert_int_equal(m->param_count, enc + dec);
    arena_free(a);
}

/* decoder tied: the same layers, each using its encoder layer's W^T, own biases only. */
static void test_tied(void **state) {
    (void)state;
    Arena *a = arena_new();
    Model *m = check_quiet(a, arena_printf(a, dense_ae, "tied"), NULL);
    assert_non_null(m);
    const int tied[] = {2, 1, 0};
    for (int i = 0; i < 3; i++) {
        const Layer *l = &m->layers[3 + i];
        assert_int_equal(l->tied_to, tied[i]);
        assert_int_equal(l->weight, -1);
        assert_true(l->bias >= 0);
        assert_int_equal(l->params, l->units);
        /* W_enc [out_e, in_e] = [in_d, out_d]: its transpose maps this layer. */
        const ParamTensor *w = &m->tensors[m->layers[l->tied_to].weight];
        assert_int_equal(w->shape[0], l->in.dim[0]);
        assert_int_equal(w->shape[1], l->units);
    }
    assert_int_equal(m->ntensors, 9);
    assert_int_equal(m->param_count,
                     784 * 512 + 512 + 512 * 128 + 128 + 128 * 32 + 32 + 128 + 512 + 784);
    arena_free(a);
}

static void test_defaults(void **state) {
    (void)state;
    Arena *a = arena_new();
    Model *m = check_quiet(a, "model d { input 4; encoder { dense 2 }; decoder mirror }", NULL);
    assert_non_null(m);
    const aec_train_config *t = &m->train;
    assert_int_equal(t->optimizer, AEC_OPT_ADAM);
    assert_true(t->lr == 1e-3 && t->beta1 == 0.9 && t->beta2 == 0.999 && t->eps == 1e-8);
    assert_true(t->decay == 0 && t->momentum == 0);
    assert_int_equal(t->batch, 32);
    assert_int_equal(t->epochs, 10);
    assert_int_equal(t->seed, 0);
    assert_true(t->validation == 0 && t->min_delta == 0);
    assert_int_equal(t->early_stop, 0);
    assert_int_equal(t->pretrain_epochs, 0);
    assert_int_equal(m->loss, AEC_LOSS_MSE);
    assert_int_equal(t->loss, AEC_LOSS_MSE);
    assert_int_equal(m->init, INIT_XAVIER);
    assert_true(m->kl_beta == 1);
    assert_int_equal(m->layers[1].act, ACT_LINEAR); /* output defaults to linear */
    assert_int_equal(m->latent_mu, -1);

    /* Each optimizer's PyTorch defaults. */
    static const struct {
        const char *name;
        int opt;
        double lr, momentum, beta1, beta2, eps, decay;
    } opts[] = {
        {"sgd", AEC_OPT_SGD, 0.01, 0, 0, 0, 0, 0},
        {"momentum", AEC_OPT_MOMENTUM, 0.01, 0.9, 0, 0, 0, 0},
        {"adam", AEC_OPT_ADAM, 1e-3, 0, 0.9, 0.999, 1e-8, 0},
        {"adamw", AEC_OPT_ADAMW, 1e-3, 0, 0.9, 0.999, 1e-8, 0.01},
        {"rmsprop", AEC_OPT_RMSPROP, 0.01, 0, 0, 0.99, 1e-8, 0},
    };
    for (int i = 0; i < countof(opts); i++) {
        char *spec = arena_printf(
            a, "model d { input 4; encoder { dense 2 }; decoder mirror; train { optimizer %s } }",
            opts[i].name);
        m = check_quiet(a, spec, NULL);
        assert_non_null(m);
        t = &m->train;
        assert_int_equal(t->optimizer, opts[i].opt);
        assert_true(t->lr == opts[i].lr && t->momentum == opts[i].momentum);
        assert_true(t->beta1 == opts[i].beta1 && t->beta2 == opts[i].beta2);
        assert_true(t->eps == opts[i].eps && t->decay == opts[i].decay);
    }
    arena_free(a);
}

static void test_leaky_and_elu(void **state) {
    (void)state;
    Arena *a = arena_new();
    Model *m = check_quiet(a,
                           "model l { input 8; encoder { dense 4 leaky_relu; dense 3 "
                           "leaky_relu=0.2; elu; elu=0.5 }; decoder { dense 8 } }",
                           NULL);
    assert_non_null(m);
    assert_true(m->layers[0].act == ACT_LEAKY_RELU && m->layers[0].act_alpha == 0.01);
    assert_true(m->layers[1].act == ACT_LEAKY_RELU && m->layers[1].act_alpha == 0.2);
    assert_true(m->layers[2].kind == LY_ACT && m->layers[2].act == ACT_ELU);
    assert_true(m->layers[2].act_alpha == 1.0);
    assert_true(m->layers[3].act_alpha == 0.5);
    assert_int_equal(m->layers[3].module_index, 5); /* 2 + 2 + 1 */
    arena_free(a);
}

/* The pure shape arithmetic, against Keras/PyTorch's formulas. */
static void test_shape_arithmetic(void **state) {
    (void)state;
    assert_int_equal(conv_out_size(28, 3, 1, CONV_PAD_SAME), 28);
    assert_int_equal(conv_out_size(28, 3, 2, CONV_PAD_SAME), 14);
    assert_int_equal(conv_out_size(27, 3, 2, CONV_PAD_SAME), 14); /* ceil(27/2) */
    assert_int_equal(conv_out_size(28, 3, 1, 0), 26);
    assert_int_equal(conv_out_size(28, 5, 2, 2), 14);
    assert_int_equal(conv_out_size(2, 3, 1, 0), 0); /* kernel larger than the input */
    assert_int_equal(deconv_out_size(14, 3, 2, CONV_PAD_SAME), 28);
    assert_int_equal(deconv_out_size(7, 3, 2, 0), 15); /* (7-1)*2 + 3 */
    assert_int_equal(deconv_out_size(7, 4, 2, 1), 14); /* (7-1)*2 + 4 - 2 */
    assert_int_equal(deconv_out_size(1, 1, 1, 1), -1);
    assert_int_equal(pool_out_size(28, 2, 2), 14);
    assert_int_equal(pool_out_size(7, 2, 2), 3);
    assert_int_equal(pool_out_size(7, 3, 1), 5);
    assert_int_equal(pool_out_size(1, 2, 2), 0);

    Arena *a = arena_new();
    assert_string_equal(shape_str(a, (Shape){3, {1, 28, 28}}), "1x28x28");
    assert_string_equal(shape_str(a, (Shape){1, {784, 0, 0}}), "784");
    assert_int_equal(shape_numel((Shape){3, {3, 4, 5}}), 60);
    assert_string_equal(act_names[ACT_LEAKY_RELU], "leaky_relu");
    assert_string_equal(act_names[ACT_GELU], "gelu");
    arena_free(a);
}

/* The latent heads (checked only): named latent.mu / latent.logvar, stored
 * after the decoder, and the mirror starts from the code size. */
static void test_latent_layout(void **state) {
    (void)state;
    Arena *a = arena_new();
    Model *m = check_quiet(a,
                           "model v { input 784; encoder { dense 256 relu }; latent gaussian 16; "
                           "decoder mirror; output sigmoid; loss bce }",
                           NULL);
    assert_non_null(m);
    assert_true(m->latent_gaussian);
    assert_int_equal(m->latent_size, 16);
    assert_int_equal(shape_numel(m->code), 16);
    assert_int_equal(m->n_encoder, 1);
    assert_int_equal(m->n_decoder, 2);
    assert_int_equal(m->latent_mu, 3);
    assert_int_equal(m->latent_logvar, 4);
    assert_string_equal(m->tensors[m->layers[3].weight].name, "latent.mu.weight");
    assert_int_equal(m->tensors[m->layers[4].weight].shape[0], 16);
    assert_int_equal(m->tensors[m->layers[4].weight].shape[1], 256);
    assert_int_equal(m->layers[1].units, 256); /* decoder: 16 -> 256 relu -> 784 sigmoid */
    assert_int_equal(m->layers[1].act, ACT_RELU);
    assert_int_equal(m->layers[2].act, ACT_SIGMOID);
    arena_free(a);
}

/* Limits (docs/reliability.md): activations of a training batch beyond this
 * machine's memory are refused at check time, naming the size and the
 * machine's memory. The batch is chosen from the memory, so it holds on any
 * machine: 2.6e9 values per sample (1x46000x46000 and its pooling), 4 bytes. */
static void test_limit_memory(void **state) {
    (void)state;
    Arena *a = arena_new();
    long per_sample = 2645000000L * 4;
    long batch = limits_memory() / per_sample + 2;
    if (batch > AEC_MAX_BATCH) batch = AEC_MAX_BATCH;
    assert_true(lim_mul(per_sample, batch) > limits_memory());
    char *text = arena_printf(a,
                              "model wide {\n input 1x46000x46000\n encoder { maxpool 2 }\n"
                              " decoder mirror\n train { batch %ld }\n}\n",
                              batch);
    char *diags;
    assert_null(check_quiet(a, text, &diags));
    assert_non_null(strstr(diags, "test.ae:1:1: error: model wide is too large: the activations "
                                  "of one training batch (2,645,000,000 values per sample"));
    assert_non_null(strstr(diags, "more than this machine's memory ("));
    free(diags);
    /* The saturating arithmetic the limits rest on. */
    assert_int_equal(lim_mul(1L << 40, 1L << 40), LIM_INF);
    assert_int_equal(lim_add(LIM_INF, 1), LIM_INF);
    assert_int_equal(lim_mul(3, 5), 15);
    arena_free(a);
}

/* 100,000 layers are checked in seconds, on a 256 KiB stack: nothing in the
 * parser or checker recurses once per layer (a spec is data, not depth). */
enum { DEEP_LAYERS = 100000 };
typedef struct {
    Arena *a;
    const char *text;
    Model *m;
} DeepJob;

static void *check_deep(void *arg) {
    DeepJob *j = arg;
    j->m = check_quiet(j->a, j->text, NULL);
    return NULL;
}

static void test_deep_spec(void **state) {
    (void)state;
    Arena *a = arena_new();
    size_t cap = (size_t)DEEP_LAYERS * 16 + 256, n = 0;
    char *text = arena_alloc(a, cap);
    n += (size_t)snprintf(text + n, cap - n, "model deep {\n input 16\n encoder {\n");
    for (int i = 0; i < DEEP_LAYERS / 2; i++)
        n += (size_t)snprintf(text + n, cap - n, "  dense 16 relu\n");
    n += (size_t)snprintf(text + n, cap - n, " }\n decoder mirror\n}\n");
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    DeepJob j = {a, text, NULL};
    pthread_t t;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pthread_create(&t, &attr, check_deep, &j), 0);
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    print_message("# %d layers checked in %.2f s\n", DEEP_LAYERS, seconds);
    assert_non_null(j.m);
    assert_int_equal(j.m->nlayers, DEEP_LAYERS);
    assert_true(seconds < 10);
    arena_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_goldens),    cmocka_unit_test(test_mnist_conv_counts),
        cmocka_unit_test(test_mirror),           cmocka_unit_test(test_tied),
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_leaky_and_elu),
        cmocka_unit_test(test_shape_arithmetic), cmocka_unit_test(test_latent_layout),
        cmocka_unit_test(test_limit_memory),     cmocka_unit_test(test_deep_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
