/* check.c — gives the parsed spec its meaning: the checked Model.
 *
 * Takes the AST of one file (ast.h); produces a Model (aec.h) with every
 * default applied, `decoder mirror|tied` expanded into layers, every shape
 * inferred, every parameter tensor named, shaped and placed, and counts of
 * parameters and FLOPs — or NULL, after reporting every error it found.
 *
 * This file holds the model's statements (input, encoder, latent, decoder,
 * output, loss, corrupt, regularize { }, train { }) with their keyword
 * tables, the checks of terms that need a kind of model, and check_model,
 * which runs two passes. The first walks the statements in file order and
 * turns each into settings or draft layers (check_layer.c), through the
 * generic grammar of form.c, which reports unknown words (with a "did you
 * mean"), bad values and duplicates. The second infers shapes from the
 * input through the encoder, the latent heads and the decoder (expand.c:
 * mirror/tied and `output ACT` first), then lays out the tensors
 * (layout.c). After a shape error the shape is unknown (ndim 0) until a
 * layer that fixes it (dense, reshape), so one mistake is reported once.
 *
 * Invariants of a returned Model: layers are the encoder, the decoder, then
 * the latent heads (if any); every shape is known; tensors are in
 * params-block order, trainable ones first (layer order, weight before
 * bias), then buffers, each offset the running sum of numel; names and
 * layouts are PyTorch nn.Sequential's (docs/language.md).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ------------------------------------------------------- model statements */

static void stmt_input(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "input SHAPE (N or CxHxW)", .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    c->input_stmt = s;
    if (a.npos == 1) c->have_input = get_shape(c, a.pos[0]->value, "the input", &c->m->input);
}

static void layers_block(Checker *c, const AstStmt *s, Drafts *out, const char *where,
                         bool in_decoder) {
    for (int i = 0; i < s->nbody; i++)
        layer_stmt(c, s->body[i], out, where, in_decoder);
    if (s->has_body && s->nbody == 0) diag_error(s->body_loc, "%s has no layers", where);
}

static void stmt_encoder(Checker *c, const AstStmt *s) {
    static const Form f = {
        .usage = "encoder { LAYER ... }", .min_pos = 0, .max_pos = 0, .body = BODY_YES};
    check_form(c, s, &f);
    c->encoder_stmt = s;
    layers_block(c, s, &c->enc, "encoder", false);
}

static void stmt_latent(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "latent gaussian N", .min_pos = 2, .max_pos = 2};
    static const char *const kinds[] = {"gaussian"};
    Args a = check_form(c, s, &f);
    c->latent_stmt = s;
    if (a.npos > 0 && get_word(c, a.pos[0]->value, "latent kind", kinds, 1) == 0)
        c->m->latent_gaussian = true;
    if (a.npos > 1) get_int(c, a.pos[1]->value, "the latent size", 1, &c->m->latent_size);
}

static void stmt_decoder(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "decoder { LAYER ... } | decoder mirror | decoder tied",
                           .min_pos = 0,
                           .max_pos = 1,
                           .body = BODY_OPTIONAL};
    static const char *const kinds[] = {"mirror", "tied"};
    Args a = check_form(c, s, &f);
    c->decoder_stmt = s;
    if (s->has_body && a.npos > 0) {
        diag_error(a.pos[0]->loc, "'decoder' takes layers { } or '%s', not both",
                   a.pos[0]->value->text);
    } else if (s->has_body) {
        c->decoder = DEC_LAYERS;
        layers_block(c, s, &c->dec, "decoder", true);
    } else if (a.npos > 0) {
        int k = get_word(c, a.pos[0]->value, "decoder kind", kinds, 2);
        if (k >= 0) c->decoder = k == 0 ? DEC_MIRROR : DEC_TIED;
    } else {
        diag_error(s->loc, "'decoder' needs its layers { ... }, 'mirror' or 'tied'");
    }
}

static void stmt_output(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "output ACT", .min_pos = 0, .max_pos = 0, .act = true};
    Args a = check_form(c, s, &f);
    if (!a.act)
        diag_error(s->loc, "missing the activation to 'output' (usage: output ACT)");
    else if (get_act_arg(c, a.act, &c->out_act, &c->out_alpha))
        c->output_stmt = s;
}

static void stmt_loss(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "loss mse|rmse|mae|bce [masked]", .min_pos = 1, .max_pos = 2};
    const char *losses[AEC_N_LOSSES];
    for (int i = 0; i < AEC_N_LOSSES; i++)
        losses[i] = aec_loss_name(i);
    static const char *const options[] = {"masked"};
    Args a = check_form(c, s, &f);
    if (a.npos > 0) {
        int k = get_word(c, a.pos[0]->value, "loss", losses, countof(losses));
        if (k >= 0) c->m->loss = k;
    }
    if (a.npos > 1 && get_word(c, a.pos[1]->value, "loss option", options, 1) == 0) {
        c->m->masked = true;
    }
}

static void stmt_corrupt(Checker *c, const AstStmt *s) {
    static const Form f = {.usage =
                               "corrupt gaussian SIGMA | corrupt mask P | corrupt saltpepper P",
                           .min_pos = 2,
                           .max_pos = 2};
    const char *const *kinds = corrupt_names + CORRUPT_GAUSSIAN; /* "none" is not written */
    Args a = check_form(c, s, &f);
    int k = a.npos > 0 ? get_word(c, a.pos[0]->value, "corruption", kinds, CORRUPT_COUNT - 1) : -1;
    if (k < 0) return;
    c->m->corrupt = (CorruptKind)(CORRUPT_GAUSSIAN + k);
    if (a.npos > 1)
        get_real(c, a.pos[1]->value, k == 0 ? "the noise sigma" : "the corruption probability",
                 k == 0 ? R_POSITIVE : R_PROB, &c->m->corrupt_value);
}

/* regularize { } terms */

static void term_l2(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "l2 weights L", .min_pos = 2, .max_pos = 2};
    static const char *const targets[] = {"weights"};
    Args a = check_form(c, s, &f);
    if (a.npos > 0 && get_word(c, a.pos[0]->value, "l2 target", targets, 1) < 0) return;
    if (!first_use(&c->seen_l2, s, "l2 weights")) return;
    if (a.npos > 1) get_real(c, a.pos[1]->value, "the l2 weight", R_NONNEG, &c->m->l2_weights);
}

static void term_l1(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "l1 weights L | l1 code L", .min_pos = 2, .max_pos = 2};
    static const char *const targets[] = {"weights", "code"};
    Args a = check_form(c, s, &f);
    int t = a.npos > 0 ? get_word(c, a.pos[0]->value, "l1 target", targets, 2) : -1;
    if (t < 0) return;
    const char *what = t == 0 ? "l1 weights" : "l1 code";
    if (!first_use(t == 0 ? &c->seen_l1w : &c->seen_l1c, s, what)) return;
    if (a.npos > 1)
        get_real(c, a.pos[1]->value, t == 0 ? "the l1 weight" : "the l1 code weight", R_NONNEG,
                 t == 0 ? &c->m->l1_weights : &c->m->l1_code);
}

static void term_kl_sparsity(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "kl_sparsity RHO BETA", .min_pos = 2, .max_pos = 2};
    Args a = check_form(c, s, &f);
    if (!first_use(&c->seen_kls, s, "kl_sparsity")) return;
    if (a.npos > 0)
        get_real(c, a.pos[0]->value, "the target activation rho", R_OPEN_UNIT, &c->m->kl_rho);
    if (a.npos > 1)
        get_real(c, a.pos[1]->value, "the kl_sparsity weight beta", R_NONNEG,
                 &c->m->kl_beta_sparsity);
}

static void term_contractive(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "contractive L", .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    if (!first_use(&c->seen_contractive, s, "contractive")) return;
    if (a.npos > 0)
        get_real(c, a.pos[0]->value, "the contractive weight", R_NONNEG, &c->m->contractive);
}

static void term_kl(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "kl BETA", .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    if (!first_use(&c->seen_kl, s, "kl")) return;
    if (a.npos > 0) get_real(c, a.pos[0]->value, "the kl weight", R_NONNEG, &c->m->kl_beta);
}

static void stmt_regularize(Checker *c, const AstStmt *s) {
    static const Form f = {
        .usage = "regularize { TERM ... }", .min_pos = 0, .max_pos = 0, .body = BODY_YES};
    check_form(c, s, &f);
    for (int i = 0; i < s->nbody; i++)
        dispatch(c, s->body[i], CTX_REGULARIZE, "regularize { }", NULL);
}

/* train { } settings */

/* The optimizers' names, for get_word. */
static const char *const *optimizer_names(void) {
    static const char *names[AEC_N_OPTIMIZERS];
    for (int i = 0; i < AEC_N_OPTIMIZERS; i++)
        names[i] = opt_info[i].name;
    return names;
}

static void set_optimizer(aec_train_config *t, int opt) {
    t->optimizer = opt;
    t->lr = opt_info[opt].lr;
    t->momentum = opt_info[opt].momentum;
    t->beta1 = opt_info[opt].beta1;
    t->beta2 = opt_info[opt].beta2;
    t->eps = opt_info[opt].eps;
    t->decay = opt_info[opt].decay;
}

static void set_optimizer_key(Checker *c, const AstStmt *s, int opt, const char *key, Range r,
                              double *field) {
    const AstArg *a = keyarg(s, key);
    if (!a) return;
    const char *const *keys = opt_info[opt].keys;
    if (find_word(key, keys, countof(opt_info[opt].keys)) < 0) {
        diag_error(a->key_loc, "optimizer %s has no '%s' (its keys: %s)%s", opt_info[opt].name, key,
                   join(c->arena, keys, countof(opt_info[opt].keys)),
                   opt == AEC_OPT_SGD && strcmp(key, "momentum") == 0
                       ? "; SGD with momentum is 'optimizer momentum'"
                       : "");
        return;
    }
    get_real(c, a->value, key, r, field);
}

static void set_optimizer_stmt(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "optimizer sgd|momentum|adam|adamw|rmsprop [lr=] [momentum=] "
                                    "[beta1=] [beta2=] [eps=] [decay=]",
                           .min_pos = 1,
                           .max_pos = 1,
                           .keys = {"lr", "momentum", "beta1", "beta2", "eps", "decay"}};
    Args a = check_form(c, s, &f);
    int opt = a.npos > 0
                  ? get_word(c, a.pos[0]->value, "optimizer", optimizer_names(), AEC_N_OPTIMIZERS)
                  : -1;
    if (opt < 0) return;
    aec_train_config *t = &c->m->train;
    set_optimizer(t, opt);
    set_optimizer_key(c, s, opt, "lr", R_POSITIVE, &t->lr);
    set_optimizer_key(c, s, opt, "momentum", R_PROB, &t->momentum);
    set_optimizer_key(c, s, opt, "beta1", R_PROB, &t->beta1);
    set_optimizer_key(c, s, opt, "beta2", R_PROB, &t->beta2);
    set_optimizer_key(c, s, opt, "eps", R_POSITIVE, &t->eps);
    set_optimizer_key(c, s, opt, "decay", R_NONNEG, &t->decay);
}

static void set_int_setting(Checker *c, const AstStmt *s, const char *usage, const char *what,
                            long min, int32_t *field) {
    const Form f = {.usage = usage, .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    int v;
    if (a.npos > 0 && get_int(c, a.pos[0]->value, what, min, &v)) *field = v;
}

static void set_batch(Checker *c, const AstStmt *s) {
    set_int_setting(c, s, "batch N", "the batch size", 1, &c->m->train.batch);
}

static void set_epochs(Checker *c, const AstStmt *s) {
    set_int_setting(c, s, "epochs N", "the number of epochs", 1, &c->m->train.epochs);
}

static void set_seed(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "seed N", .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    if (a.npos == 0) return;
    /* Seeds are 64-bit: read the digits, since a double keeps only 53 bits. */
    const AstValue *v = a.pos[0]->value;
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(v->text, &end, 10);
    if (v->kind != AV_NUMBER || *end || v->text[0] == '-' || v->text[0] == '+' || errno)
        diag_error(v->loc, "the seed must be an integer from 0 to 2^64-1, got %s",
                   written(c->arena, v));
    else
        c->m->train.seed = seed;
}

static void set_validation(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "validation F", .min_pos = 1, .max_pos = 1};
    Args a = check_form(c, s, &f);
    if (a.npos > 0)
        get_real(c, a.pos[0]->value, "the validation fraction", R_PROB, &c->m->train.validation);
}

static void set_early_stop(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "early_stop PATIENCE [min_delta=D]",
                           .min_pos = 1,
                           .max_pos = 1,
                           .keys = {"min_delta"}};
    Args a = check_form(c, s, &f);
    int patience;
    if (a.npos > 0 && get_int(c, a.pos[0]->value, "the early_stop patience", 1, &patience))
        c->m->train.early_stop = patience;
    const AstArg *d = keyarg(s, "min_delta");
    if (d) get_real(c, d->value, "min_delta", R_NONNEG, &c->m->train.min_delta);
}

static void set_init(Checker *c, const AstStmt *s) {
    static const Form f = {
        .usage = "init xavier|he|normal=STD", .min_pos = 0, .max_pos = 1, .keys = {"normal"}};
    Args a = check_form(c, s, &f);
    const AstArg *normal = keyarg(s, "normal");
    if (normal && a.npos > 0) {
        diag_error(a.pos[0]->loc, "'init' takes one scheme (usage: %s)", f.usage);
    } else if (normal) {
        if (get_real(c, normal->value, "the normal init's standard deviation", R_POSITIVE,
                     &c->m->init_std))
            c->m->init = INIT_NORMAL;
    } else if (a.npos > 0) {
        int k = get_word(c, a.pos[0]->value, "init", init_names, INIT_COUNT);
        if (k == INIT_NORMAL)
            diag_error(a.pos[0]->loc, "'init normal' needs its standard deviation: normal=STD");
        else if (k >= 0)
            c->m->init = (InitKind)k;
    } else {
        diag_error(s->loc, "missing the scheme to 'init' (usage: %s)", f.usage);
    }
}

static void set_pretrain(Checker *c, const AstStmt *s) {
    static const Form f = {.usage = "pretrain layerwise EPOCHS", .min_pos = 2, .max_pos = 2};
    static const char *const kinds[] = {"layerwise"};
    Args a = check_form(c, s, &f);
    c->pretrain_stmt = s;
    bool kind_ok = a.npos > 0 && get_word(c, a.pos[0]->value, "pretraining", kinds, 1) == 0;
    int epochs;
    if (a.npos > 1 && get_int(c, a.pos[1]->value, "the pretraining epochs", 1, &epochs) && kind_ok)
        c->m->train.pretrain_epochs = epochs;
}

static void stmt_train(Checker *c, const AstStmt *s) {
    static const Form f = {
        .usage = "train { SETTING ... }", .min_pos = 0, .max_pos = 0, .body = BODY_YES};
    check_form(c, s, &f);
    for (int i = 0; i < s->nbody; i++)
        dispatch(c, s->body[i], CTX_TRAIN, "train { }", c->seen_train);
}

static const Keyword model_keywords[] = {
    {"input", stmt_input},     {"encoder", stmt_encoder},       {"latent", stmt_latent},
    {"decoder", stmt_decoder}, {"output", stmt_output},         {"loss", stmt_loss},
    {"corrupt", stmt_corrupt}, {"regularize", stmt_regularize}, {"train", stmt_train},
};

static const Keyword train_keywords[] = {
    {"optimizer", set_optimizer_stmt},
    {"batch", set_batch},
    {"epochs", set_epochs},
    {"seed", set_seed},
    {"validation", set_validation},
    {"early_stop", set_early_stop},
    {"init", set_init},
    {"pretrain", set_pretrain},
};

static const Keyword regularize_keywords[] = {
    {"l2", term_l2},
    {"l1", term_l1},
    {"kl_sparsity", term_kl_sparsity},
    {"contractive", term_contractive},
    {"kl", term_kl},
};

static const Keyword *keywords_of(Context ctx, int *n) {
    switch (ctx) {
    case CTX_MODEL: *n = countof(model_keywords); return model_keywords;
    case CTX_TRAIN: *n = countof(train_keywords); return train_keywords;
    case CTX_REGULARIZE: *n = countof(regularize_keywords); return regularize_keywords;
    default: *n = 0; return NULL;
    }
}

/* Adds the words not yet in `out` (n of them, at most max). */
static int add_words(const char **out, int n, int max, const char *const *words, int count) {
    for (int i = 0; i < count; i++)
        if (words[i] && find_word(words[i], out, n) < 0) {
            ensure(n < max);
            out[n++] = words[i];
        }
    return n;
}

/* The language's words by class, for the generated editor grammars. The
 * statement keywords, layers, activations, optimizers, inits, corruptions
 * and losses come from the checker's tables; the few words a handler
 * checks itself are listed here (tests/e2e/editors.sh fails when one that
 * docs/language.md uses is missing). */
int check_vocabulary(VocabClass cls, const char **out, int max) {
    static const char *const keys[] = {"stride", "pad", "momentum", "eps", "min_delta", "normal"};
    static const char *const values[] = {"gaussian", "mirror",    "tied", "masked", "weights",
                                         "code",     "layerwise", "same", "valid"};
    int n = 0;
    switch (cls) {
    case VOCAB_STATEMENT: {
        const char *model = "model";
        n = add_words(out, n, max, &model, 1);
        const Context ctxs[] = {CTX_MODEL, CTX_TRAIN, CTX_REGULARIZE};
        for (int c = 0; c < countof(ctxs); c++) {
            int nk;
            const Keyword *k = keywords_of(ctxs[c], &nk);
            for (int i = 0; i < nk; i++)
                n = add_words(out, n, max, &k[i].name, 1);
        }
        break;
    }
    case VOCAB_LAYER: n = add_words(out, n, max, layer_keywords, countof(layer_keywords)); break;
    case VOCAB_ACTIVATION: n = add_words(out, n, max, act_names, ACT_COUNT); break;
    case VOCAB_KEY:
        n = add_words(out, n, max, keys, countof(keys));
        for (int o = 0; o < AEC_N_OPTIMIZERS; o++)
            n = add_words(out, n, max, opt_info[o].keys, countof(opt_info[o].keys));
        break;
    case VOCAB_VALUE:
        n = add_words(out, n, max, values, countof(values));
        n = add_words(out, n, max, optimizer_names(), AEC_N_OPTIMIZERS);
        n = add_words(out, n, max, init_names, INIT_COUNT);
        n = add_words(out, n, max, corrupt_names + CORRUPT_GAUSSIAN, 3);
        for (int l = 0; l < AEC_N_LOSSES; l++) {
            const char *name = aec_loss_name(l);
            n = add_words(out, n, max, &name, 1);
        }
        break;
    default: internal_error("unknown vocabulary class %d", (int)cls);
    }
    return n;
}

/* ------------------------------------------------ terms that need a kind of model */

/* "the code's activation is relu" and the like: the last encoder layer that
 * computes or activates (views pass through), or NULL. */
static const Layer *code_layer(const Checker *c) {
    for (int i = c->enc.n - 1; i >= 0; i--) {
        const Layer *l = &c->enc.items[i].l;
        if (l->kind != LY_FLATTEN && l->kind != LY_RESHAPE) return l;
    }
    return NULL;
}

static void check_kl_sparsity(Checker *c) {
    const AstStmt *s = c->seen_kls;
    if (c->m->latent_gaussian) {
        diag_error(s->loc, "'kl_sparsity' needs code activations in (0, 1), but the code of "
                           "'latent gaussian' (mu) is unbounded");
        diag_note(c->latent_stmt->loc, "the variational code is declared here");
        return;
    }
    const Layer *l = code_layer(c);
    if (!l || ((has_act_field(l->kind) || l->kind == LY_ACT) && l->act == ACT_SIGMOID)) return;
    const char *what = layer_text(c->arena, l, true);
    if (has_act_field(l->kind) && l->act == ACT_LINEAR)
        diag_error(s->loc,
                   "'kl_sparsity' needs code activations in (0, 1), but the code comes from '%s' "
                   "with no activation (end the encoder with sigmoid)",
                   what);
    else if (has_act_field(l->kind) || l->kind == LY_ACT)
        diag_error(s->loc,
                   "'kl_sparsity' needs code activations in (0, 1), but the code's "
                   "activation is %s (use sigmoid)",
                   act_names[l->act]);
    else
        diag_error(s->loc,
                   "'kl_sparsity' needs code activations in (0, 1), but the code comes from '%s' "
                   "(end the encoder with a sigmoid)",
                   what);
    diag_note(l->loc, "the code is this layer's output");
}

/* The contractive term differentiates the encoder twice, in closed form for
 * dense layers and their activations (lower.c): nothing else may be in it. */
static void check_contractive(Checker *c) {
    bool dense_seen = false;
    for (int i = 0; i < c->enc.n; i++) {
        const Layer *l = &c->enc.items[i].l;
        const char *why = NULL;
        if (l->kind == LY_DENSE)
            dense_seen = true;
        else if (l->kind == LY_ACT && !dense_seen)
            why = "an activation of the input itself";
        else if (l->kind != LY_ACT && l->kind != LY_FLATTEN && l->kind != LY_RESHAPE)
            why = l->kind == LY_DROPOUT ? "random, so the Jacobian is not defined" : "not dense";
        if (!why) continue;
        diag_error(c->seen_contractive->loc,
                   "'contractive' needs an encoder of dense layers, activations and views: "
                   "'%s' is %s",
                   layer_text(c->arena, l, true), why);
        diag_note(l->loc, "this encoder layer");
        return;
    }
    int dense = c->m->latent_gaussian; /* the code's mean is a dense layer */
    for (int i = 0; i < c->enc.n; i++)
        dense += c->enc.items[i].l.kind == LY_DENSE;
    if (dense == 0)
        diag_error(c->seen_contractive->loc,
                   "'contractive' needs a dense layer in the encoder: without one the code is "
                   "a view of the input and its Jacobian a constant");
    else if (dense > AEC_CONTRACTIVE_MAX_DENSE)
        diag_error(c->seen_contractive->loc,
                   "'contractive' takes an encoder of at most %d dense layers, this one has %d",
                   AEC_CONTRACTIVE_MAX_DENSE, dense);
}

/* Each encoder dense k pairs with decoder dense K+1-k, which must give back
 * its input's size. */
static void check_pretrain(Checker *c) {
    const AstStmt *s = c->pretrain_stmt;
    if (c->m->latent_gaussian) {
        diag_error(s->loc,
                   "'pretrain layerwise' needs a deterministic code, not 'latent gaussian'");
        return;
    }
    for (int i = 0; i < c->enc.n + c->dec.n; i++) {
        LayerKind k = (i < c->enc.n ? c->enc.items[i] : c->dec.items[i - c->enc.n]).l.kind;
        if (k == LY_CONV || k == LY_DECONV) return; /* reported in pass 1 */
    }
    int ne = 0, nd = 0, enc[256], dec[256];
    for (int i = 0; i < c->enc.n; i++)
        if (c->enc.items[i].l.kind == LY_DENSE && ne < 256) enc[ne++] = i;
    for (int i = 0; i < c->dec.n; i++)
        if (c->dec.items[i].l.kind == LY_DENSE && nd < 256) dec[nd++] = i;
    if (nd == 0) return; /* no decoder: reported already */
    if (ne != nd) {
        diag_error(s->loc,
                   "'pretrain layerwise' pairs each encoder dense layer with a decoder "
                   "one, but the encoder has %d and the decoder %d",
                   ne, nd);
        return;
    }
    for (int k = 0; k < ne; k++) {
        const Layer *e = &c->enc.items[enc[k]].l, *d = &c->dec.items[dec[ne - 1 - k]].l;
        long want = shape_numel(e->in);
        if (e->in.ndim == 0 || want == d->units) continue;
        diag_error(s->loc,
                   "'pretrain layerwise' pairs encoder '%s' (input %ld) with decoder '%s', "
                   "which does not give back %ld values",
                   layer_text(c->arena, e, false), want, layer_text(c->arena, d, false), want);
        diag_note(d->loc, "the decoder layer");
        return;
    }
}

/* Terms and settings that only some models can have, once shapes are known. */
static void check_objective(Checker *c) {
    if (c->seen_kls && c->m->kl_beta_sparsity > 0) check_kl_sparsity(c);
    if (c->seen_contractive && c->m->contractive > 0) check_contractive(c);
    if (c->pretrain_stmt && c->m->train.pretrain_epochs > 0 && c->enc.n > 0) check_pretrain(c);
    if (c->m->latent_gaussian && c->m->loss == AEC_LOSS_RMSE) {
        const AstStmt *loss = c->seen_model[5]; /* model_keywords: "loss" */
        ensure(loss && !strcmp(loss->keyword, "loss"));
        diag_error(loss->loc, "'loss rmse' is not a sum over features, which the negative ELBO of "
                              "'latent gaussian' needs (use mse, mae or bce)");
        diag_note(c->latent_stmt->loc, "the variational code is declared here");
    }
}

/* ------------------------------------------------------------- the model */

static void defaults(Model *m) {
    m->loss = AEC_LOSS_MSE;
    set_optimizer(&m->train, AEC_OPT_ADAM);
    m->train.batch = 32;
    m->train.epochs = 10;
    m->init = INIT_XAVIER;
    m->kl_beta = 1; /* the VAE's KL term, weighted 1 unless `kl BETA` */
    m->latent_mu = m->latent_logvar = -1;
}

/* The single `model NAME { }` of the file, or NULL after reporting. */
static const AstStmt *find_model(Checker *c, const AstModel *ast) {
    const AstStmt *model = NULL;
    for (int i = 0; i < ast->nstmts; i++) {
        const AstStmt *s = ast->stmts[i];
        if (strcmp(s->keyword, "model") != 0) {
            const char *names[KEYWORDS_MAX], *kw[] = {"model"};
            bool known = false;
            for (int ctx = CTX_MODEL; !known && ctx < CTX_COUNT; ctx++)
                known = find_word(s->keyword, names, keyword_names(c, (Context)ctx, names)) >= 0;
            if (known)
                diag_error(s->loc, "'%s' must be inside 'model NAME { ... }'", s->keyword);
            else
                diag_error(s->loc, "expected 'model NAME { ... }', got '%s'%s", s->keyword,
                           did_you_mean(c->arena, s->keyword, kw, 1));
        } else if (model) {
            diag_error(s->loc, "a file holds one model; '%s' is a second",
                       s->nargs ? s->args[0]->value->text : s->keyword);
            diag_note(model->loc, "the first model is here");
        } else {
            model = s;
        }
    }
    if (!model && ast->nstmts == 0)
        diag_error((Loc){ast->file, 1, 1, 1}, "no 'model NAME { ... }' in this file");
    return model;
}

Model *check_model(Arena *a, const AstModel *ast) {
    int errors = diag_error_count();
    Checker checker = {.arena = a, .keywords_of = keywords_of};
    Checker *c = &checker;
    Model *m = c->m = arena_alloc(a, sizeof(Model));
    defaults(m);

    const AstStmt *s = find_model(c, ast);
    if (!s) return NULL;
    static const Form f = {
        .usage = "model NAME { ... }", .min_pos = 1, .max_pos = 1, .body = BODY_YES};
    Args args = check_form(c, s, &f);
    m->loc = s->loc;
    m->name = "model";
    if (args.npos > 0 && args.pos[0]->value->kind != AV_IDENT)
        diag_error(args.pos[0]->loc, "the model name must be an identifier, got %s",
                   args.pos[0]->value->text);
    else if (args.npos > 0)
        m->name = args.pos[0]->value->ident.name;

    /* Pass 1: statements, in file order. */
    for (int i = 0; i < s->nbody; i++)
        dispatch(c, s->body[i], CTX_MODEL, "model { }", c->seen_model);
    if (!c->input_stmt) diag_error(s->loc, "model '%s' has no 'input SHAPE'", m->name);
    if (!c->encoder_stmt) diag_error(s->loc, "model '%s' has no 'encoder { ... }'", m->name);
    if (!c->decoder_stmt)
        diag_error(s->loc,
                   "model '%s' has no decoder (write 'decoder { ... }', 'decoder mirror' or "
                   "'decoder tied')",
                   m->name);
    if (c->seen_kl && !c->latent_stmt)
        diag_error(c->seen_kl->loc, "'kl' weighs the KL term of 'latent gaussian N', which this "
                                    "model does not have");
    if (m->train.pretrain_epochs > 0) {
        for (int i = 0; i < c->enc.n + c->dec.n; i++) {
            const Layer *l = i < c->enc.n ? &c->enc.items[i].l : &c->dec.items[i - c->enc.n].l;
            if (l->kind == LY_CONV || l->kind == LY_DECONV) {
                diag_error(c->pretrain_stmt->loc,
                           "'pretrain layerwise' needs a stacked dense encoder and decoder");
                diag_note(l->loc, "this layer is not dense");
                break;
            }
        }
    }
    m->train.loss = m->loss;

    /* Pass 2: shapes, only where pass 1 left something to infer. */
    if (c->enc.n > 0) infer_model(c);
    check_objective(c);
    if (diag_error_count() > errors) return NULL;
    assemble(c);
    return diag_error_count() > errors ? NULL : m; /* assemble checks the limits */
}
