/* check.c — gives the parsed spec its meaning: the checked Model.
 *
 * Takes the AST of one file (ast.h); produces a Model (aec.h) with every
 * default applied, `decoder mirror|tied` expanded into layers, every shape
 * inferred, every parameter tensor named, shaped and placed, and counts of
 * parameters and FLOPs — or NULL, after reporting every error it found.
 *
 * Two passes. The first walks the statements in file order and turns each
 * into settings or draft layers, reporting unknown words (with a "did you
 * mean"), bad values and duplicates. The second
 * infers shapes from the input through the encoder, the latent heads and the
 * decoder (expanding mirror/tied and applying `output ACT` first), then lays
 * out the tensors. After a shape error the shape is unknown (ndim 0) until a
 * layer that fixes it (dense, reshape), so one mistake is reported once.
 *
 * Invariants of a returned Model: layers are the encoder, the decoder, then
 * the latent heads (if any); every shape is known; tensors are in
 * params-block order, trainable ones first (layer order, weight before
 * bias), then buffers, each offset the running sum of numel; names and
 * layouts are PyTorch nn.Sequential's (docs/language.md).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

const char *const act_names[ACT_COUNT] = {
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "elu", "softplus", "gelu",
};

/* ---------------------------------------------------------------- shapes */

long shape_numel(Shape s) {
    long n = s.ndim > 0;
    for (int i = 0; i < s.ndim; i++)
        n *= s.dim[i];
    return n;
}

char *shape_str(Arena *a, Shape s) {
    switch (s.ndim) {
    case 1: return arena_printf(a, "%d", s.dim[0]);
    case 3: return arena_printf(a, "%dx%dx%d", s.dim[0], s.dim[1], s.dim[2]);
    default: return arena_strdup(a, "?");
    }
}

static Shape vec(int n) {
    return (Shape){1, {n, 0, 0}};
}

static Shape chw(int c, int h, int w) {
    return (Shape){3, {c, h, w}};
}

static bool shape_eq(Shape a, Shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

static int clamp_int(long x) {
    return x > INT_MAX ? INT_MAX : x < INT_MIN ? INT_MIN : (int)x;
}

/* Keras `same`: ceil(in/stride); otherwise floor((in + 2·pad − k)/stride) + 1. */
int conv_out_size(int in, int k, int stride, int pad) {
    if (pad == CONV_PAD_SAME) return (int)(((long)in + stride - 1) / stride);
    long padded = (long)in + 2L * pad;
    return padded < k ? 0 : clamp_int((padded - k) / stride + 1);
}

/* Keras `same`: in·stride; otherwise PyTorch's (in − 1)·stride + k − 2·pad. */
int deconv_out_size(int in, int k, int stride, int pad) {
    if (pad == CONV_PAD_SAME) return clamp_int((long)in * stride);
    return clamp_int(((long)in - 1) * stride + k - 2L * pad);
}

int pool_out_size(int in, int k, int stride) {
    return in < k ? 0 : (in - k) / stride + 1;
}

/* The padding PyTorch needs along one dimension for pad mode `mode`:
 * `before` pixels at the top/left, and `extra` — for conv the one more pixel
 * at the bottom/right that Keras `same` adds when the total is odd, for
 * deconv PyTorch's output_padding. */
static void conv_padding(LayerKind kind, int in, int k, int stride, int mode, int *before,
                         int *extra) {
    *before = mode == CONV_PAD_SAME ? 0 : mode;
    *extra = 0;
    if (mode != CONV_PAD_SAME) return;
    if (kind == LY_CONV) {
        long out = conv_out_size(in, k, stride, CONV_PAD_SAME);
        long total = (out - 1) * stride + k - in;
        if (total < 0) total = 0;
        *before = (int)(total / 2);
        *extra = (int)(total - total / 2 * 2);
    } else {
        /* (in−1)·S − 2P + K + extra = in·S  with  extra in [0, S). */
        int total = k - stride;
        *before = total > 0 ? (total + 1) / 2 : 0;
        *extra = 2 * *before - total;
    }
}

/* ------------------------------------------------------------ the checker */

/* A layer as it is being checked: the Layer plus what only checking needs. */
typedef struct Draft {
    Layer l;
    bool act_written; /* the spec wrote this layer's ACT (so `output ACT` must agree) */
    bool bad;         /* a value was wrong: its output shape is unknown, not a guess */
    int tie;          /* mirror of: encoder draft index, TIE_LATENT_MU, or TIE_NONE */
} Draft;

enum { TIE_NONE = -1, TIE_LATENT_MU = -2 };

typedef struct Drafts {
    Draft *items;
    int n, cap;
} Drafts;

typedef enum { DEC_NONE, DEC_LAYERS, DEC_MIRROR, DEC_TIED } DecoderKind;

/* Where a statement may appear; keywords of one context are unknown in
 * another, and the error says where they belong. */
typedef enum { CTX_FILE, CTX_MODEL, CTX_LAYERS, CTX_TRAIN, CTX_REGULARIZE, CTX_COUNT } Context;

typedef struct Checker {
    Arena *arena;
    Model *m;                                       /* settings are written here as they are read */
    const AstStmt *seen_model[16], *seen_train[16]; /* first use of each keyword */
    const AstStmt *seen_l2, *seen_l1w, *seen_l1c, *seen_kls, *seen_contractive, *seen_kl;
    bool have_input; /* the input shape is valid */
    const AstStmt *input_stmt, *encoder_stmt, *pretrain_stmt;
    Drafts enc, dec, heads;
    DecoderKind decoder;
    const AstStmt *decoder_stmt;
    const AstStmt *output_stmt; /* `output ACT`, if given */
    ActKind out_act;
    double out_alpha;
    const AstStmt *latent_stmt;
    bool encoder_ok; /* encoder shapes all known, so mirror can expand */
} Checker;

static bool act_takes_param(ActKind a) {
    return a == ACT_LEAKY_RELU || a == ACT_ELU;
}

static double act_default_alpha(ActKind a) {
    return a == ACT_LEAKY_RELU ? 0.01 : a == ACT_ELU ? 1.0 : 0.0;
}

static int find_word(const char *w, const char *const *words, int n) {
    for (int i = 0; i < n; i++)
        if (words[i] && strcmp(w, words[i]) == 0) return i;
    return -1;
}

static char *join(Arena *a, const char *const *words, int n) {
    char *s = "";
    for (int i = 0; i < n; i++)
        if (words[i]) s = arena_printf(a, "%s%s%s", s, *s ? ", " : "", words[i]);
    return s;
}

/* ", did you mean 'X'?" or "". */
static const char *did_you_mean(Arena *a, const char *w, const char *const *words, int n) {
    const char *s = suggest(w, words, n);
    return s ? arena_printf(a, ", did you mean '%s'?", s) : "";
}

/* ------------------------------------------------------- statement forms */

typedef enum { BODY_NO, BODY_YES, BODY_OPTIONAL } BodyRule;

/* What a statement may contain, besides its keyword. */
typedef struct Form {
    const char *usage;    /* shown in errors: "dense N [ACT]" */
    int min_pos, max_pos; /* positional arguments, an ACT not counted */
    bool act;             /* takes an optional ACT: `relu` or `leaky_relu=0.2` */
    BodyRule body;
    const char *keys[7]; /* allowed key=value keys */
    bool head_value;     /* may be written `keyword=value` (an ACT alone) */
} Form;

/* A statement's arguments, sorted by check_form. */
typedef struct Args {
    const AstArg *pos[4];
    int npos;
    const AstArg *act; /* the ACT argument, positional or keyed */
} Args;

static const AstArg *keyarg(const AstStmt *s, const char *key) {
    for (int i = 0; i < s->nargs; i++)
        if (s->args[i]->key && strcmp(s->args[i]->key, key) == 0) return s->args[i];
    return NULL;
}

static int nkeys(const Form *f) {
    int n = 0;
    while (n < countof(f->keys) && f->keys[n])
        n++;
    return n;
}

/* Checks a statement against its form: block, argument count, keys (unknown
 * ones with a suggestion, duplicates), at most one ACT. Values are checked
 * by the caller, which gets the positional arguments in order. */
static Args check_form(Checker *c, const AstStmt *s, const Form *f) {
    Args out = {0};
    if (s->keyword_value && !f->head_value)
        diag_error(s->keyword_value->loc, "'%s' takes no '=' value (usage: %s)", s->keyword,
                   f->usage);
    if (s->has_body && f->body == BODY_NO)
        diag_error(s->body_loc, "'%s' takes no { } block (usage: %s)", s->keyword, f->usage);
    if (!s->has_body && f->body == BODY_YES)
        diag_error(s->loc, "'%s' needs a { } block (usage: %s)", s->keyword, f->usage);

    int nk = nkeys(f);
    bool too_many = false;
    for (int i = 0; i < s->nargs; i++) {
        const AstArg *a = s->args[i];
        bool is_act = f->act && (a->key ? find_word(a->key, act_names, ACT_COUNT) >= 0
                                        : a->value->kind == AV_IDENT);
        if (is_act) {
            if (out.act)
                diag_error(a->loc, "two activations for '%s': '%s' and '%s'", s->keyword,
                           out.act->key ? out.act->key : out.act->value->text,
                           a->key ? a->key : a->value->text);
            else
                out.act = a;
        } else if (a->key) {
            if (find_word(a->key, f->keys, nk) < 0) {
                const char *cand[countof(f->keys) + ACT_COUNT];
                int nc = 0;
                for (int k = 0; k < nk; k++)
                    cand[nc++] = f->keys[k];
                for (int k = 0; f->act && k < ACT_COUNT; k++)
                    cand[nc++] = act_names[k];
                const char *hint = did_you_mean(c->arena, a->key, cand, nc);
                diag_error(a->key_loc, "unknown key '%s' for '%s'%s", a->key, s->keyword,
                           *hint ? hint : arena_printf(c->arena, " (usage: %s)", f->usage));
            } else if (keyarg(s, a->key) != a) {
                diag_error(a->key_loc, "duplicate key '%s'", a->key);
                diag_note(keyarg(s, a->key)->key_loc, "first given here");
            }
        } else if (out.npos < f->max_pos) {
            out.pos[out.npos++] = a;
        } else if (!too_many) {
            diag_error(a->loc, "too many arguments to '%s' (usage: %s)", s->keyword, f->usage);
            too_many = true;
        }
    }
    if (out.npos < f->min_pos)
        diag_error(s->loc, "missing %s to '%s' (usage: %s)",
                   f->min_pos - out.npos > 1 ? "arguments" : "an argument", s->keyword, f->usage);
    return out;
}

/* ---------------------------------------------------------------- values */

typedef enum { R_ANY, R_POSITIVE, R_NONNEG, R_PROB, R_UNIT, R_OPEN_UNIT } Range;
static const char *const range_text[] = {"a number",  "> 0",       ">= 0",
                                         "in [0, 1)", "in [0, 1]", "in (0, 1)"};

static bool in_range(double x, Range r) {
    switch (r) {
    case R_ANY: return true;
    case R_POSITIVE: return x > 0;
    case R_NONNEG: return x >= 0;
    case R_PROB: return x >= 0 && x < 1;
    case R_UNIT: return x >= 0 && x <= 1;
    case R_OPEN_UNIT: return x > 0 && x < 1;
    }
    return false;
}

/* The value as the user wrote it, quoted if it is a word. */
static const char *written(Arena *a, const AstValue *v) {
    return v->kind == AV_IDENT ? arena_printf(a, "'%s'", v->text) : v->text;
}

static bool get_real(Checker *c, const AstValue *v, const char *what, Range r, double *out) {
    if (v->kind != AV_NUMBER || !in_range(v->number.value, r)) {
        diag_error(v->loc, "%s must be %s%s, got %s", what, r == R_ANY ? "" : "a number ",
                   range_text[r], written(c->arena, v));
        return false;
    }
    *out = v->number.value;
    return true;
}

static bool get_int(Checker *c, const AstValue *v, const char *what, long min, int *out) {
    if (v->kind != AV_NUMBER || !v->number.is_int || v->number.value < (double)min) {
        diag_error(v->loc, "%s must be an integer >= %ld, got %s", what, min, written(c->arena, v));
        return false;
    }
    if (v->number.value > INT_MAX) {
        diag_error(v->loc, "%s %s is too large (at most %d)", what, v->text, INT_MAX);
        return false;
    }
    *out = (int)v->number.value;
    return true;
}

/* N or CxHxW, every dimension at least 1, at most INT_MAX elements. */
static bool get_shape(Checker *c, const AstValue *v, const char *what, Shape *out) {
    Shape s = {0};
    if (v->kind == AV_NUMBER && v->number.is_int && v->number.value >= 1 &&
        v->number.value <= INT_MAX)
        s = vec((int)v->number.value);
    else if (v->kind == AV_SHAPE && v->shape.ndim == 3)
        s = chw(v->shape.dim[0], v->shape.dim[1], v->shape.dim[2]);
    if (v->kind == AV_SHAPE && v->shape.ndim == 2) {
        diag_error(v->loc, "%s must be N or CxHxW, got %s (one channel: 1x%s)", what, v->text,
                   v->text);
        return false;
    }
    bool positive = s.ndim > 0;
    for (int i = 0; i < s.ndim; i++)
        positive = positive && s.dim[i] >= 1;
    if (!positive) {
        diag_error(v->loc, "%s must be N or CxHxW with every dimension >= 1, got %s", what,
                   written(c->arena, v));
        return false;
    }
    if (shape_numel(s) > INT_MAX) {
        diag_error(v->loc, "%s %s is too large", what, v->text);
        return false;
    }
    *out = s;
    return true;
}

/* K (square) or KxK. */
static bool get_kernel(Checker *c, const AstValue *v, const char *what, int *kh, int *kw) {
    if (v->kind == AV_NUMBER && v->number.is_int && v->number.value >= 1 &&
        v->number.value <= 65536) {
        *kh = *kw = (int)v->number.value;
        return true;
    }
    if (v->kind == AV_SHAPE && v->shape.ndim == 2 && v->shape.dim[0] >= 1 && v->shape.dim[1] >= 1 &&
        v->shape.dim[0] <= 65536 && v->shape.dim[1] <= 65536) {
        *kh = v->shape.dim[0];
        *kw = v->shape.dim[1];
        return true;
    }
    diag_error(v->loc, "%s must be K or KxK (each from 1 to 65536), got %s", what,
               written(c->arena, v));
    return false;
}

/* One of `words`; returns its index, or -1 after reporting. */
static int get_word(Checker *c, const AstValue *v, const char *what, const char *const *words,
                    int n) {
    int i = v->kind == AV_IDENT ? find_word(v->ident.name, words, n) : -1;
    if (i >= 0) return i;
    if (v->kind != AV_IDENT) {
        diag_error(v->loc, "%s must be one of %s; got %s", what, join(c->arena, words, n), v->text);
        return -1;
    }
    const char *hint = did_you_mean(c->arena, v->ident.name, words, n);
    diag_error(v->loc, "unknown %s '%s'%s", what, v->ident.name,
               *hint ? hint : arena_printf(c->arena, " (one of: %s)", join(c->arena, words, n)));
    return -1;
}

/* An activation `name` with an optional `=param` (slope or alpha). */
static bool get_act(Checker *c, const char *name, Loc loc, const AstValue *param, ActKind *act,
                    double *alpha) {
    int i = find_word(name, act_names, ACT_COUNT);
    if (i < 0) {
        const char *hint = did_you_mean(c->arena, name, act_names, ACT_COUNT);
        diag_error(
            loc, "unknown activation '%s'%s", name,
            *hint ? hint
                  : arena_printf(c->arena, " (one of: %s)", join(c->arena, act_names, ACT_COUNT)));
        return false;
    }
    *act = (ActKind)i;
    *alpha = act_default_alpha(*act);
    if (!param) return true;
    if (!act_takes_param(*act)) {
        diag_error(param->loc, "'%s' takes no parameter (only leaky_relu=SLOPE and elu=ALPHA do)",
                   name);
        return false;
    }
    return get_real(c, param, *act == ACT_ELU ? "the elu alpha" : "the leaky_relu slope", R_ANY,
                    alpha);
}

static bool get_act_arg(Checker *c, const AstArg *a, ActKind *act, double *alpha) {
    if (a->key) return get_act(c, a->key, a->key_loc, a->value, act, alpha);
    return get_act(c, a->value->ident.name, a->value->loc, NULL, act, alpha);
}

/* --------------------------------------------------------------- keywords */

typedef void StmtFn(Checker *c, const AstStmt *s);
typedef struct Keyword {
    const char *name;
    StmtFn *fn;
} Keyword;

static const char *const ctx_names[CTX_COUNT] = {
    [CTX_FILE] = "the file",   [CTX_MODEL] = "model { }",           [CTX_LAYERS] = "layers",
    [CTX_TRAIN] = "train { }", [CTX_REGULARIZE] = "regularize { }",
};

static const char *const layer_keywords[] = {
    "dense",    "conv",      "deconv",  "maxpool", "avgpool",
    "upsample", "batchnorm", "dropout", "flatten", "reshape",
};

static const Keyword *keywords_of(Context ctx, int *n);

/* Every keyword of a context (at most KEYWORDS_MAX), for suggestions. */
enum { KEYWORDS_MAX = 32 };
static int keyword_names(Context ctx, const char **names) {
    int n = 0;
    if (ctx == CTX_FILE) {
        names[n++] = "model";
    } else if (ctx == CTX_LAYERS) {
        for (int i = 0; i < countof(layer_keywords); i++)
            names[n++] = layer_keywords[i];
        for (int i = 0; i < ACT_COUNT; i++)
            names[n++] = act_names[i];
    } else {
        int nk;
        const Keyword *k = keywords_of(ctx, &nk);
        for (int i = 0; i < nk; i++)
            names[n++] = k[i].name;
    }
    ensure(n <= KEYWORDS_MAX);
    return n;
}

/* A keyword that is not one of context `ctx`: say where it belongs, or
 * suggest the closest keyword of `ctx`. `where` names the block. */
static void unknown_keyword(Checker *c, const AstStmt *s, Context ctx, const char *where) {
    const char *names[KEYWORDS_MAX];
    for (int other = 0; other < CTX_COUNT; other++) {
        int n = keyword_names((Context)other, names);
        if (other == (int)ctx || find_word(s->keyword, names, n) < 0) continue;
        if (other == CTX_LAYERS)
            diag_error(s->loc, "'%s' is a layer: it belongs in encoder { } or decoder { }",
                       s->keyword);
        else if (other == CTX_FILE)
            diag_error(s->loc, "'model' must be the outermost statement");
        else
            diag_error(s->loc, "'%s' belongs in %s, not in %s", s->keyword, ctx_names[other],
                       where);
        return;
    }
    int n = keyword_names(ctx, names);
    diag_error(s->loc, "unknown keyword '%s' in %s%s", s->keyword, where,
               did_you_mean(c->arena, s->keyword, names, n));
}

/* Runs the handler of statement s's keyword in context ctx; `seen` (one slot
 * per keyword, or NULL) catches a keyword given twice. */
static void dispatch(Checker *c, const AstStmt *s, Context ctx, const char *where,
                     const AstStmt **seen) {
    int n;
    const Keyword *k = keywords_of(ctx, &n);
    for (int i = 0; i < n; i++) {
        if (strcmp(s->keyword, k[i].name) != 0) continue;
        if (seen && seen[i]) {
            diag_error(s->loc, "duplicate '%s' in %s", s->keyword, where);
            diag_note(seen[i]->loc, "first '%s' here", s->keyword);
            return;
        }
        if (seen) seen[i] = s;
        k[i].fn(c, s);
        return;
    }
    unknown_keyword(c, s, ctx, where);
}

/* For statements whose duplicates depend on an argument (`l1 weights` and
 * `l1 code` are different terms). */
static bool first_use(const AstStmt **slot, const AstStmt *s, const char *what) {
    if (*slot) {
        diag_error(s->loc, "duplicate '%s' in regularize { }", what);
        diag_note((*slot)->loc, "first '%s' here", what);
        return false;
    }
    *slot = s;
    return true;
}

/* ----------------------------------------------------------------- layers */

static const struct {
    const char *keyword;
    Form form;
} layer_forms[] = {
    [LY_DENSE] = {"dense", {.usage = "dense N [ACT]", .min_pos = 1, .max_pos = 1, .act = true}},
    [LY_CONV] = {"conv",
                 {.usage = "conv N KxK [stride=S] [pad=same|valid|P] [ACT]",
                  .min_pos = 2,
                  .max_pos = 2,
                  .act = true,
                  .keys = {"stride", "pad"}}},
    [LY_DECONV] = {"deconv",
                   {.usage = "deconv N KxK [stride=S] [pad=same|valid|P] [ACT]",
                    .min_pos = 2,
                    .max_pos = 2,
                    .act = true,
                    .keys = {"stride", "pad"}}},
    [LY_MAXPOOL] =
        {"maxpool",
         {.usage = "maxpool K [stride=S]", .min_pos = 1, .max_pos = 1, .keys = {"stride"}}},
    [LY_AVGPOOL] =
        {"avgpool",
         {.usage = "avgpool K [stride=S]", .min_pos = 1, .max_pos = 1, .keys = {"stride"}}},
    [LY_UPSAMPLE] = {"upsample", {.usage = "upsample K", .min_pos = 1, .max_pos = 1}},
    [LY_BATCHNORM] = {"batchnorm",
                      {.usage = "batchnorm [momentum=M] [eps=E]",
                       .min_pos = 0,
                       .max_pos = 0,
                       .keys = {"momentum", "eps"}}},
    [LY_DROPOUT] = {"dropout", {.usage = "dropout P", .min_pos = 1, .max_pos = 1}},
    [LY_FLATTEN] = {"flatten", {.usage = "flatten", .min_pos = 0, .max_pos = 0}},
    [LY_RESHAPE] = {"reshape", {.usage = "reshape SHAPE", .min_pos = 1, .max_pos = 1}},
    [LY_ACT] = {NULL,
                {.usage = "ACT (e.g. relu, leaky_relu=0.2)",
                 .min_pos = 0,
                 .max_pos = 0,
                 .head_value = true}},
};

static bool has_act_field(LayerKind k) {
    return k == LY_DENSE || k == LY_CONV || k == LY_DECONV;
}

static Draft new_draft(LayerKind kind, Loc loc, bool in_decoder) {
    Draft d = {.tie = TIE_NONE};
    d.l.kind = kind;
    d.l.loc = loc;
    d.l.in_decoder = in_decoder;
    d.l.tied_to = -1;
    d.l.weight = d.l.bias = d.l.running_mean = d.l.running_var = -1;
    d.l.stride = 1;
    return d;
}

/* conv/deconv `pad=`: same, valid (0) or pixels. */
static void get_pad(Checker *c, const AstArg *a, Layer *l) {
    if (!a) return;
    const AstValue *v = a->value;
    if (v->kind == AV_IDENT && strcmp(v->ident.name, "same") == 0) {
        l->pad_same = true;
    } else if (v->kind == AV_IDENT && strcmp(v->ident.name, "valid") == 0) {
        l->pad = 0;
    } else if (v->kind == AV_IDENT) {
        const char *const modes[] = {"same", "valid"};
        const char *hint = did_you_mean(c->arena, v->ident.name, modes, 2);
        diag_error(v->loc, "unknown padding '%s'%s", v->ident.name,
                   *hint ? hint : " (same, valid or a number of pixels)");
    } else {
        get_int(c, v, "the padding", 0, &l->pad);
    }
}

/* One statement of encoder { } or decoder { } into a draft layer. */
static void layer_stmt(Checker *c, const AstStmt *s, Drafts *out, const char *where,
                       bool in_decoder) {
    LayerKind kind;
    int i = find_word(s->keyword, layer_keywords, countof(layer_keywords));
    if (i >= 0)
        kind = (LayerKind)i; /* layer_keywords follows LayerKind's order */
    else if (find_word(s->keyword, act_names, ACT_COUNT) >= 0)
        kind = LY_ACT;
    else {
        unknown_keyword(c, s, CTX_LAYERS, where);
        return;
    }
    ensure(kind == LY_ACT || strcmp(layer_forms[kind].keyword, s->keyword) == 0);

    Draft d = new_draft(kind, s->loc, in_decoder);
    int errors = diag_error_count();
    Layer *l = &d.l;
    Form form = layer_forms[kind].form;
    if (kind == LY_ACT) /* the usage of an activation layer is its own name */
        form.usage = strcmp(s->keyword, "leaky_relu") == 0 ? "leaky_relu[=SLOPE]"
                     : strcmp(s->keyword, "elu") == 0      ? "elu[=ALPHA]"
                                                           : s->keyword;
    Args a = check_form(c, s, &form);
    const AstValue *p0 = a.npos > 0 ? a.pos[0]->value : NULL;
    const AstValue *p1 = a.npos > 1 ? a.pos[1]->value : NULL;
    const AstArg *stride = keyarg(s, "stride");
    switch (kind) {
    case LY_DENSE:
        if (p0) get_int(c, p0, "dense units", 1, &l->units);
        break;
    case LY_CONV:
    case LY_DECONV:
        if (p0) get_int(c, p0, "the number of channels", 1, &l->units);
        if (p1) get_kernel(c, p1, "the kernel", &l->kh, &l->kw);
        if (stride) get_int(c, stride->value, "the stride", 1, &l->stride);
        get_pad(c, keyarg(s, "pad"), l);
        break;
    case LY_MAXPOOL:
    case LY_AVGPOOL:
        if (p0 && get_int(c, p0, "the pooling window", 1, &l->kh)) l->kw = l->stride = l->kh;
        if (stride) get_int(c, stride->value, "the stride", 1, &l->stride);
        break;
    case LY_UPSAMPLE:
        /* The factor is kept as kh = kw = stride. */
        if (p0 && get_int(c, p0, "the upsampling factor", 1, &l->kh)) l->kw = l->stride = l->kh;
        break;
    case LY_BATCHNORM: {
        const AstArg *mom = keyarg(s, "momentum"), *eps = keyarg(s, "eps");
        l->momentum = 0.1; /* PyTorch's defaults */
        l->eps = 1e-5;
        if (mom) get_real(c, mom->value, "the batchnorm momentum", R_UNIT, &l->momentum);
        if (eps) get_real(c, eps->value, "the batchnorm eps", R_POSITIVE, &l->eps);
        break;
    }
    case LY_DROPOUT:
        if (p0) get_real(c, p0, "the dropout probability", R_PROB, &l->p);
        break;
    case LY_FLATTEN: break;
    case LY_RESHAPE:
        if (p0) get_shape(c, p0, "the reshape target", &l->out); /* the target, until inference */
        break;
    case LY_ACT:
        get_act(c, s->keyword, s->loc, s->keyword_value, &l->act, &l->act_alpha);
        d.act_written = true;
        break;
    }
    if (a.act) {
        const AstValue *v = a.act->value;
        if (!a.act->key && (kind == LY_CONV || kind == LY_DECONV) &&
            (strcmp(v->text, "same") == 0 || strcmp(v->text, "valid") == 0))
            diag_error(v->loc, "padding is written pad=%s", v->text);
        else if (get_act_arg(c, a.act, &l->act, &l->act_alpha))
            d.act_written = true;
    }
    d.bad = diag_error_count() > errors;
    ARRAY_PUSH(c->arena, out->items, out->n, out->cap, d);
}

/* The layer as a spec line; `full` adds keys and the activation. */
static char *layer_text(Arena *a, const Layer *l, bool full) {
    char buf[256];
    int n = 0;
#define PUT(...) n += snprintf(buf + n, sizeof buf - (size_t)n, __VA_ARGS__)
    switch (l->kind) {
    case LY_DENSE: PUT("dense %d", l->units); break;
    case LY_CONV:
    case LY_DECONV:
        PUT("%s %d %dx%d", l->kind == LY_CONV ? "conv" : "deconv", l->units, l->kh, l->kw);
        if (full && l->stride != 1) PUT(" stride=%d", l->stride);
        if (full && l->pad_same) PUT(" pad=same");
        if (full && !l->pad_same && l->pad) PUT(" pad=%d", l->pad);
        break;
    case LY_MAXPOOL:
    case LY_AVGPOOL:
        PUT("%s %d", l->kind == LY_MAXPOOL ? "maxpool" : "avgpool", l->kh);
        if (full && l->stride != l->kh) PUT(" stride=%d", l->stride);
        break;
    case LY_UPSAMPLE: PUT("upsample %d", l->kh); break;
    case LY_BATCHNORM:
        PUT("batchnorm");
        if (full && l->momentum != 0.1) PUT(" momentum=%g", l->momentum);
        if (full && l->eps != 1e-5) PUT(" eps=%g", l->eps);
        break;
    case LY_DROPOUT: PUT("dropout %g", l->p); break;
    case LY_FLATTEN: PUT("flatten"); break;
    case LY_RESHAPE: PUT("reshape %s", shape_str(a, l->out)); break;
    case LY_ACT: break;
    }
    if (l->kind == LY_ACT || (full && has_act_field(l->kind) && l->act != ACT_LINEAR)) {
        PUT("%s%s", n ? " " : "", act_names[l->act]);
        if (l->act_alpha != act_default_alpha(l->act)) PUT("=%g", l->act_alpha);
    }
#undef PUT
    return arena_strdup(a, buf);
}

char *check_layer_str(Arena *a, const Layer *l) {
    return layer_text(a, l, true);
}

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
    static const char *const losses[] = {[AEC_LOSS_MSE] = "mse",
                                         [AEC_LOSS_RMSE] = "rmse",
                                         [AEC_LOSS_MAE] = "mae",
                                         [AEC_LOSS_BCE] = "bce"};
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
    static const char *const kinds[] = {"gaussian", "mask", "saltpepper"};
    Args a = check_form(c, s, &f);
    int k = a.npos > 0 ? get_word(c, a.pos[0]->value, "corruption", kinds, 3) : -1;
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

static const char *const optimizer_names[] = {
    [AEC_OPT_SGD] = "sgd",     [AEC_OPT_MOMENTUM] = "momentum", [AEC_OPT_ADAM] = "adam",
    [AEC_OPT_ADAMW] = "adamw", [AEC_OPT_RMSPROP] = "rmsprop",
};

/* PyTorch's defaults per optimizer, and the keys each one has.
 * rmsprop's smoothing constant (PyTorch's alpha) is beta2. */
static const struct {
    double lr, momentum, beta1, beta2, eps, decay;
    const char *keys[6];
} optimizer_defaults[] = {
    [AEC_OPT_SGD] = {0.01, 0, 0, 0, 0, 0, {"lr", "decay"}},
    [AEC_OPT_MOMENTUM] = {0.01, 0.9, 0, 0, 0, 0, {"lr", "momentum", "decay"}},
    [AEC_OPT_ADAM] = {1e-3, 0, 0.9, 0.999, 1e-8, 0, {"lr", "beta1", "beta2", "eps", "decay"}},
    [AEC_OPT_ADAMW] = {1e-3, 0, 0.9, 0.999, 1e-8, 0.01, {"lr", "beta1", "beta2", "eps", "decay"}},
    [AEC_OPT_RMSPROP] = {0.01, 0, 0, 0.99, 1e-8, 0, {"lr", "momentum", "beta2", "eps", "decay"}},
};

static void set_optimizer(aec_train_config *t, int opt) {
    t->optimizer = opt;
    t->lr = optimizer_defaults[opt].lr;
    t->momentum = optimizer_defaults[opt].momentum;
    t->beta1 = optimizer_defaults[opt].beta1;
    t->beta2 = optimizer_defaults[opt].beta2;
    t->eps = optimizer_defaults[opt].eps;
    t->decay = optimizer_defaults[opt].decay;
}

static void set_optimizer_key(Checker *c, const AstStmt *s, int opt, const char *key, Range r,
                              double *field) {
    const AstArg *a = keyarg(s, key);
    if (!a) return;
    const char *const *keys = optimizer_defaults[opt].keys;
    if (find_word(key, keys, countof(optimizer_defaults[opt].keys)) < 0) {
        diag_error(a->key_loc, "optimizer %s has no '%s' (its keys: %s)%s", optimizer_names[opt],
                   key, join(c->arena, keys, countof(optimizer_defaults[opt].keys)),
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
    int opt = a.npos > 0 ? get_word(c, a.pos[0]->value, "optimizer", optimizer_names,
                                    countof(optimizer_names))
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
    static const char *const inits[] = {
        [INIT_XAVIER] = "xavier", [INIT_HE] = "he", [INIT_NORMAL] = "normal"};
    Args a = check_form(c, s, &f);
    const AstArg *normal = keyarg(s, "normal");
    if (normal && a.npos > 0) {
        diag_error(a.pos[0]->loc, "'init' takes one scheme (usage: %s)", f.usage);
    } else if (normal) {
        if (get_real(c, normal->value, "the normal init's standard deviation", R_POSITIVE,
                     &c->m->init_std))
            c->m->init = INIT_NORMAL;
    } else if (a.npos > 0) {
        int k = get_word(c, a.pos[0]->value, "init", inits, 3);
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

/* -------------------------------------------------------- shape inference */

/* Reports "LAYER after PREV: rule (fix)" at the layer; returns false. */
static bool shape_error(Checker *c, const Layer *l, const char *after, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool shape_error(Checker *c, const Layer *l, const char *after, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    diag_error(l->loc, "%s after %s: %s", layer_text(c->arena, l, false), after, msg);
    return false;
}

/* FLOPs of an activation over n elements: one per element, none for linear. */
static long act_flops(ActKind a, long n) {
    return a == ACT_LINEAR ? 0 : n;
}

/* One layer's output shape from l->in (ndim 0: unknown after an earlier
 * error), its parameter elements and FLOPs. A broken shape rule is reported,
 * naming both shapes, and leaves l->out unknown. */
static bool infer_layer(Checker *c, Layer *l, const char *after) {
    Shape in = l->in;
    Arena *A = c->arena;
    const char *ins = shape_str(A, in);
    bool known = in.ndim > 0;
    /* A reshape's output is its target, set when it was read, even when the
     * sizes disagree: what follows is checked against what the user meant. */
    if (l->kind != LY_RESHAPE) l->out = (Shape){0};
    Shape target = l->out;
    switch (l->kind) {
    case LY_DENSE:
        if (in.ndim == 3)
            return shape_error(c, l, after, "expected a vector, got %s (add flatten)", ins);
        l->out = vec(l->units);
        l->params = known ? (long)in.dim[0] * l->units + l->units : 0;
        l->flops = 2L * in.dim[0] * l->units + l->units + act_flops(l->act, l->units);
        break;
    case LY_CONV:
    case LY_DECONV: {
        if (in.ndim == 1)
            return shape_error(c, l, after, "expected CxHxW, got %s (add reshape)", ins);
        if (!known) return false;
        bool conv = l->kind == LY_CONV;
        int mode = l->pad_same ? CONV_PAD_SAME : l->pad;
        int h = conv ? conv_out_size(in.dim[1], l->kh, l->stride, mode)
                     : deconv_out_size(in.dim[1], l->kh, l->stride, mode);
        int w = conv ? conv_out_size(in.dim[2], l->kw, l->stride, mode)
                     : deconv_out_size(in.dim[2], l->kw, l->stride, mode);
        if (h < 1 || w < 1) {
            if (conv && mode == 0)
                return shape_error(c, l, after, "kernel %dx%d is larger than the input %dx%d",
                                   l->kh, l->kw, in.dim[1], in.dim[2]);
            if (conv)
                return shape_error(c, l, after,
                                   "kernel %dx%d is larger than the padded input %dx%d", l->kh,
                                   l->kw, in.dim[1] + 2 * mode, in.dim[2] + 2 * mode);
            return shape_error(c, l, after,
                               "its output (H-1)*S + K - 2*P would be %dx%d (pad=%d is too large)",
                               h, w, mode);
        }
        conv_padding(l->kind, in.dim[1], l->kh, l->stride, mode, &l->pad, &l->pad_extra);
        conv_padding(l->kind, in.dim[2], l->kw, l->stride, mode, &l->pad_w, &l->pad_extra_w);
        l->out = chw(l->units, h, w);
        long k = (long)in.dim[0] * l->units * l->kh * l->kw;
        long out_pixels = (long)h * w, in_pixels = (long)in.dim[1] * in.dim[2];
        l->params = k + l->units;
        /* A conv does k MACs per output pixel; a deconv scatters k per input pixel. */
        l->flops = 2 * k * (conv ? out_pixels : in_pixels) + l->units * out_pixels +
                   act_flops(l->act, l->units * out_pixels);
        break;
    }
    case LY_MAXPOOL:
    case LY_AVGPOOL: {
        if (in.ndim == 1)
            return shape_error(c, l, after, "expected CxHxW, got %s (add reshape)", ins);
        if (!known) return false;
        if (l->kh > in.dim[1] || l->kw > in.dim[2])
            return shape_error(c, l, after, "window %dx%d is larger than the input %dx%d", l->kh,
                               l->kw, in.dim[1], in.dim[2]);
        l->out = chw(in.dim[0], pool_out_size(in.dim[1], l->kh, l->stride),
                     pool_out_size(in.dim[2], l->kw, l->stride));
        l->flops = (long)l->kh * l->kw * shape_numel(l->out);
        break;
    }
    case LY_UPSAMPLE:
        if (in.ndim == 1)
            return shape_error(c, l, after, "expected CxHxW, got %s (add reshape)", ins);
        if (!known) return false;
        l->out =
            chw(in.dim[0], clamp_int((long)in.dim[1] * l->kh), clamp_int((long)in.dim[2] * l->kw));
        break;
    case LY_BATCHNORM:
        if (!known) return false;
        l->out = in;
        l->units = in.dim[0]; /* channels, or features of a vector */
        l->params = 4L * l->units;
        l->flops = 2 * shape_numel(in); /* at inference: one scale and one shift */
        break;
    case LY_DROPOUT: l->out = in; break;
    case LY_FLATTEN:
        if (known) l->out = vec(clamp_int(shape_numel(in)));
        break;
    case LY_RESHAPE:
        if (known && target.ndim > 0 && shape_numel(in) != shape_numel(target))
            return shape_error(c, l, after, "cannot view %s (%ld elements) as %s (%ld elements)",
                               ins, shape_numel(in), shape_str(A, target), shape_numel(target));
        l->out = target;
        break;
    case LY_ACT:
        l->out = in;
        l->flops = act_flops(l->act, shape_numel(in));
        break;
    }
    if (shape_numel(l->out) > INT_MAX)
        return shape_error(c, l, after, "its output %s is too large", shape_str(A, l->out));
    return true;
}

/* Infers a run of layers from `in`; returns the last output (ndim 0 if
 * unknown) and whether every rule held. */
static Shape infer_section(Checker *c, Drafts *ds, Shape in, const char *first_after, bool *ok) {
    const char *after = first_after;
    for (int i = 0; i < ds->n; i++) {
        Layer *l = &ds->items[i].l;
        l->in = in;
        if (ds->items[i].bad)
            l->out = (Shape){0}, *ok = false;
        else if (!infer_layer(c, l, after))
            *ok = false;
        in = l->out;
        after = layer_text(c->arena, l, false);
    }
    return in;
}

/* ------------------------------------------------------ mirror and tied */

/* The activation in effect on encoder layer i's input: that of the nearest
 * earlier layer that computes or activates (views, dropout, pooling and
 * batchnorm pass it through); the model input has none. */
static bool act_before(const Drafts *enc, int i, ActKind *act, double *alpha) {
    for (int j = i - 1; j >= 0; j--) {
        const Layer *l = &enc->items[j].l;
        if (has_act_field(l->kind) || l->kind == LY_ACT) {
            *act = l->act;
            *alpha = l->act_alpha;
            return true;
        }
    }
    return false;
}

static void push_mirror(Checker *c, Draft d) {
    ARRAY_PUSH(c->arena, c->dec.items, c->dec.n, c->dec.cap, d);
}

/* `decoder mirror|tied`: the encoder reversed. Each dense (conv) maps back to
 * the size (channels) its encoder layer consumed, with the activation in
 * effect on that layer's input; views are undone; pooling becomes
 * upsampling; activations, batchnorm and dropout are not repeated. The last
 * computing layer gets `output ACT`. Tied layers use the encoder layer's
 * weight (W^T for dense) and own only their bias. */
static bool expand_mirror(Checker *c, bool tied) {
    Loc loc = c->decoder_stmt->loc;
    const Drafts *enc = &c->enc;
    if (c->m->latent_gaussian) {
        /* The mu head is the encoder's last dense. */
        Draft d = new_draft(LY_DENSE, loc, true);
        Shape h = c->heads.items[0].l.in;
        d.l.units = h.dim[0];
        act_before(enc, enc->n, &d.l.act, &d.l.act_alpha);
        d.tie = tied ? TIE_LATENT_MU : TIE_NONE;
        push_mirror(c, d);
    }
    for (int i = enc->n - 1; i >= 0; i--) {
        const Layer *e = &enc->items[i].l;
        Draft d = new_draft(e->kind, loc, true);
        switch (e->kind) {
        case LY_DENSE: d.l.units = e->in.dim[0]; break;
        case LY_CONV:
        case LY_DECONV:
            d.l.kind = e->kind == LY_CONV ? LY_DECONV : LY_CONV;
            d.l.units = e->in.dim[0];
            d.l.kh = e->kh;
            d.l.kw = e->kw;
            d.l.stride = e->stride;
            d.l.pad_same = e->pad_same;
            d.l.pad = e->pad_same ? 0 : e->pad;
            break;
        case LY_FLATTEN:
            if (e->in.ndim == 1) continue; /* flattening a vector did nothing */
            d.l.kind = LY_RESHAPE;
            d.l.out = e->in;
            break;
        case LY_RESHAPE:
            if (e->in.ndim == 1) {
                d.l.kind = LY_FLATTEN;
            } else {
                d.l.out = e->in;
            }
            break;
        case LY_MAXPOOL:
        case LY_AVGPOOL:
            d.l.kind = LY_UPSAMPLE;
            d.l.kh = d.l.kw = d.l.stride = e->stride;
            break;
        case LY_UPSAMPLE:
            diag_error(loc,
                       "'decoder %s' cannot undo '%s' (encoder layer %d); write the decoder "
                       "out",
                       tied ? "tied" : "mirror", layer_text(c->arena, e, false), i + 1);
            return false;
        case LY_BATCHNORM:
        case LY_DROPOUT:
        case LY_ACT: continue;
        }
        if (has_act_field(d.l.kind)) {
            act_before(enc, i, &d.l.act, &d.l.act_alpha);
            if (tied) d.tie = i;
        }
        push_mirror(c, d);
    }
    /* The reconstruction's activation is `output ACT` (linear by default). */
    for (int i = c->dec.n - 1; i >= 0; i--) {
        Layer *l = &c->dec.items[i].l;
        if (!has_act_field(l->kind)) continue;
        l->act = c->out_act;
        l->act_alpha = c->out_alpha;
        return true;
    }
    if (c->out_act != ACT_LINEAR) {
        Draft d = new_draft(LY_ACT, loc, true);
        d.l.act = c->out_act;
        d.l.act_alpha = c->out_alpha;
        push_mirror(c, d);
    }
    return true;
}

/* An explicit decoder with `output ACT`: the ACT goes on the last layer that
 * computes, looking through trailing views (an elementwise function commutes
 * with them); a different ACT written there is an error. With no such layer,
 * the ACT becomes a layer of its own. */
static void apply_output(Checker *c) {
    if (!c->output_stmt || c->dec.n == 0) return;
    int i = c->dec.n - 1;
    while (i > 0 && (c->dec.items[i].l.kind == LY_FLATTEN || c->dec.items[i].l.kind == LY_RESHAPE))
        i--;
    Draft *d = &c->dec.items[i];
    Layer *l = &d->l;
    if (has_act_field(l->kind) || l->kind == LY_ACT) {
        if (d->act_written && (l->act != c->out_act || l->act_alpha != c->out_alpha)) {
            diag_error(
                c->output_stmt->loc, "'output %s' conflicts with the last decoder layer '%s'",
                layer_text(c->arena,
                           &(Layer){.kind = LY_ACT, .act = c->out_act, .act_alpha = c->out_alpha},
                           false),
                layer_text(c->arena, l, true));
            diag_note(l->loc, "the last decoder layer is here");
            return;
        }
        l->act = c->out_act;
        l->act_alpha = c->out_alpha;
        return;
    }
    if (c->out_act == ACT_LINEAR) return;
    Draft a = new_draft(LY_ACT, c->output_stmt->loc, true);
    a.l.act = c->out_act;
    a.l.act_alpha = c->out_alpha;
    ARRAY_PUSH(c->arena, c->dec.items, c->dec.n, c->dec.cap, a);
}

/* Shapes through encoder, latent heads and decoder; the reconstruction must
 * have the input's shape. */
static void infer_model(Checker *c) {
    Model *m = c->m;
    Arena *A = c->arena;
    bool ok = true;
    Shape in = c->have_input ? m->input : (Shape){0};
    Shape code = infer_section(c, &c->enc, in, arena_printf(A, "input %s", shape_str(A, in)), &ok);
    c->encoder_ok = ok && code.ndim > 0;

    if (m->latent_gaussian && m->latent_size > 0) {
        const char *names[] = {"mu", "logvar"};
        for (int i = 0; i < 2; i++) {
            Draft d = new_draft(LY_DENSE, c->latent_stmt->loc, false);
            d.l.units = m->latent_size;
            d.l.in = code;
            if (code.ndim == 3 && i == 0)
                diag_error(c->latent_stmt->loc,
                           "latent gaussian %d after %s: expected a vector, got %s (add flatten)",
                           m->latent_size,
                           c->enc.n ? layer_text(A, &c->enc.items[c->enc.n - 1].l, false)
                                    : "the input",
                           shape_str(A, code));
            if (code.ndim != 3) infer_layer(c, &d.l, arena_printf(A, "latent.%s", names[i]));
            ARRAY_PUSH(A, c->heads.items, c->heads.n, c->heads.cap, d);
        }
        c->encoder_ok = c->encoder_ok && code.ndim == 1;
        code = vec(m->latent_size);
    }
    m->code = code;

    if (c->decoder == DEC_MIRROR || c->decoder == DEC_TIED) {
        if (!c->encoder_ok) return; /* nothing reliable to mirror; the error is reported */
        if (!expand_mirror(c, c->decoder == DEC_TIED)) return;
    } else {
        apply_output(c);
    }
    /* Missing, malformed or empty: reported already. */
    if (c->decoder == DEC_NONE || (c->decoder == DEC_LAYERS && c->dec.n == 0)) return;
    ok = true;
    Shape out =
        infer_section(c, &c->dec, code, arena_printf(A, "code %s", shape_str(A, code)), &ok);
    if (ok && out.ndim > 0 && c->have_input && !shape_eq(out, m->input)) {
        Loc at = c->dec.n ? c->dec.items[c->dec.n - 1].l.loc : c->decoder_stmt->loc;
        diag_error(at,
                   "the decoder produces %s but the input is %s (the reconstruction must have "
                   "the input's shape)",
                   shape_str(A, out), shape_str(A, m->input));
        diag_note(c->input_stmt->loc, "the input is declared here");
    }
}

/* ---------------------------------------------------------- tensor layout */

static int add_tensor(Checker *c, int layer, const char *prefix, const char *what, int kind,
                      int ndim, const int *shape, int fan_in, int fan_out) {
    Model *m = c->m;
    ParamTensor t = {0};
    t.name = arena_printf(c->arena, "%s.%s", prefix, what);
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        t.numel *= shape[i];
    }
    t.kind = kind;
    t.fan_in = fan_in;
    t.fan_out = fan_out;
    t.layer = layer;
    ensure(m->ntensors < 4 * m->nlayers + 8); /* at most 4 per layer, as allocated */
    m->tensors[m->ntensors] = t;
    return m->ntensors++;
}

/* A layer's tensors: trainable ones (buffers == false) or its buffers. */
static void layer_tensors(Checker *c, int li, const char *prefix, bool buffers) {
    Layer *l = &c->m->layers[li];
    int in_c = l->in.dim[0];
    switch (l->kind) {
    case LY_DENSE:
        if (buffers) break;
        if (l->tied_to < 0)
            l->weight = add_tensor(c, li, prefix, "weight", AEC_TENSOR_WEIGHT, 2,
                                   (int[]){l->units, in_c}, in_c, l->units);
        l->bias = add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, in_c,
                             l->units);
        break;
    case LY_CONV:
    case LY_DECONV: {
        if (buffers) break;
        int rf = l->kh * l->kw;
        /* PyTorch computes fans from the weight's dims 1 and 0: for a deconv,
         * whose weight is [in, out, kh, kw], fan_in is out·kh·kw. */
        int fan_in = (l->kind == LY_CONV ? in_c : l->units) * rf;
        int fan_out = (l->kind == LY_CONV ? l->units : in_c) * rf;
        int shape[4] = {l->units, in_c, l->kh, l->kw};
        if (l->kind == LY_DECONV) shape[0] = in_c, shape[1] = l->units;
        if (l->tied_to < 0)
            l->weight =
                add_tensor(c, li, prefix, "weight", AEC_TENSOR_WEIGHT, 4, shape, fan_in, fan_out);
        l->bias = add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, fan_in,
                             fan_out);
        break;
    }
    case LY_BATCHNORM:
        /* gamma and beta: trainable, not decayed (initialized to 1 and 0). */
        if (!buffers) {
            l->weight =
                add_tensor(c, li, prefix, "weight", AEC_TENSOR_BIAS, 1, (int[]){l->units}, 0, 0);
            l->bias =
                add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, 0, 0);
        } else {
            l->running_mean = add_tensor(c, li, prefix, "running_mean", AEC_TENSOR_BUFFER, 1,
                                         (int[]){l->units}, 0, 0);
            l->running_var = add_tensor(c, li, prefix, "running_var", AEC_TENSOR_BUFFER, 1,
                                        (int[]){l->units}, 0, 0);
        }
        break;
    default: break;
    }
}

/* The PyTorch nn.Sequential module count of a layer: a dense/conv/deconv
 * with a non-linear activation is the Linear/Conv module then the
 * activation module; everything else is one module. */
static int modules_of(const Layer *l) {
    return has_act_field(l->kind) && l->act != ACT_LINEAR ? 2 : 1;
}

static const char *layer_prefix(Arena *a, const Model *m, int i) {
    if (i == m->latent_mu) return "latent.mu";
    if (i == m->latent_logvar) return "latent.logvar";
    return arena_printf(a, "%s.%d", m->layers[i].in_decoder ? "decoder" : "encoder",
                        m->layers[i].module_index);
}

/* Layers in the order tensors are laid out: encoder, latent heads, decoder. */
static int walk_order(const Model *m, int k) {
    int nh = m->nlayers - m->n_encoder - m->n_decoder;
    if (k < m->n_encoder) return k;
    if (k < m->n_encoder + nh) return m->n_encoder + m->n_decoder + (k - m->n_encoder);
    return k - nh;
}

/* The index of the k-th (from 1) dense layer in [from, to), or `to`. */
static int nth_dense(const Model *m, int from, int to, int k) {
    for (int i = from; i < to; i++)
        if (m->layers[i].kind == LY_DENSE && --k == 0) return i;
    return to;
}

/* What later stages ask of the model: its symbol prefix (a C identifier
 * from the name), the layer-wise pretraining stages and which tensors each
 * trains. */
static void derive_facts(Checker *c) {
    Model *m = c->m;
    char *s = arena_strdup(c->arena, m->name);
    for (char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p)) *p = '_';
    if (isdigit((unsigned char)s[0])) s = arena_printf(c->arena, "m_%s", s);
    m->symbol = s;

    m->nstages = 0;
    if (m->train.pretrain_epochs > 0)
        for (int i = 0; i < m->n_encoder; i++) m->nstages += m->layers[i].kind == LY_DENSE;
    int K = m->nstages, dec0 = m->n_encoder, dec_end = m->n_encoder + m->n_decoder;
    m->stages = arena_alloc(c->arena, sizeof(ModelStage) * (size_t)(K + 1));
    for (int k = 1; k <= K; k++) {
        ModelStage *st = &m->stages[k - 1];
        st->in_to = st->enc_from = nth_dense(m, 0, m->n_encoder, k);
        st->enc_to = nth_dense(m, 0, m->n_encoder, k + 1);
        st->dec_from = nth_dense(m, dec0, dec_end, K + 1 - k);
        st->dec_to = k > 1 ? nth_dense(m, dec0, dec_end, K + 2 - k) : dec_end;
        ensure(st->dec_from < dec_end);
        for (int t = 0; t < m->ntensors; t++) {
            int l = m->tensors[t].layer;
            if (m->tensors[t].kind != AEC_TENSOR_BUFFER &&
                ((l >= st->enc_from && l < st->enc_to) || (l >= st->dec_from && l < st->dec_to)))
                m->tensors[t].stage = k;
        }
    }
}

bool model_trains(const Model *m, int stage, int tensor) {
    if (m->tensors[tensor].kind == AEC_TENSOR_BUFFER) return false;
    return stage == 0 || m->tensors[tensor].stage == stage;
}

static void assemble(Checker *c) {
    Model *m = c->m;
    Arena *A = c->arena;
    m->n_encoder = c->enc.n;
    m->n_decoder = c->dec.n;
    m->nlayers = c->enc.n + c->dec.n + c->heads.n;
    m->layers = arena_alloc(A, sizeof(Layer) * (size_t)(m->nlayers ? m->nlayers : 1));
    int n = 0, module = 0;
    for (int i = 0; i < c->enc.n; i++, n++) {
        m->layers[n] = c->enc.items[i].l;
        m->layers[n].module_index = module;
        module += modules_of(&m->layers[n]);
    }
    module = 0;
    for (int i = 0; i < c->dec.n; i++, n++) {
        m->layers[n] = c->dec.items[i].l;
        m->layers[n].module_index = module;
        module += modules_of(&m->layers[n]);
    }
    m->latent_mu = m->latent_logvar = -1;
    if (c->heads.n == 2) {
        m->latent_mu = n;
        m->latent_logvar = n + 1;
        m->layers[n++] = c->heads.items[0].l;
        m->layers[n++] = c->heads.items[1].l;
    }
    for (int i = 0; i < c->dec.n; i++) {
        int tie = c->dec.items[i].tie;
        m->layers[m->n_encoder + i].tied_to = tie == TIE_LATENT_MU ? m->latent_mu : tie;
    }

    m->tensors = arena_alloc(A, sizeof(ParamTensor) * (size_t)(4 * m->nlayers + 8));
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < m->nlayers; k++)
            layer_tensors(c, walk_order(m, k), layer_prefix(A, m, walk_order(m, k)), pass == 1);
    long offset = 0;
    for (int i = 0; i < m->ntensors; i++) {
        ParamTensor *t = &m->tensors[i];
        t->offset = offset;
        offset += t->numel;
        if (t->kind != AEC_TENSOR_BUFFER) m->trainable_count += t->numel;
    }
    m->param_count = offset;
    for (int i = 0; i < m->nlayers; i++) {
        Layer *l = &m->layers[i];
        if (l->tied_to >= 0) l->params = l->units; /* only the bias is its own */
        m->flops += l->flops;
    }
    derive_facts(c);
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
                   "with no activation (end the encoder with sigmoid)", what);
    else if (has_act_field(l->kind) || l->kind == LY_ACT)
        diag_error(s->loc, "'kl_sparsity' needs code activations in (0, 1), but the code's "
                           "activation is %s (use sigmoid)", act_names[l->act]);
    else
        diag_error(s->loc,
                   "'kl_sparsity' needs code activations in (0, 1), but the code comes from '%s' "
                   "(end the encoder with a sigmoid)", what);
    diag_note(l->loc, "the code is this layer's output");
}

/* The contractive term differentiates the encoder twice, in closed form for
 * dense layers and their activations (lower.c): nothing else may be in it. */
static void check_contractive(Checker *c) {
    bool dense_seen = false;
    for (int i = 0; i < c->enc.n; i++) {
        const Layer *l = &c->enc.items[i].l;
        const char *why = NULL;
        if (l->kind == LY_DENSE) dense_seen = true;
        else if (l->kind == LY_ACT && !dense_seen) why = "an activation of the input itself";
        else if (l->kind != LY_ACT && l->kind != LY_FLATTEN && l->kind != LY_RESHAPE)
            why = l->kind == LY_DROPOUT ? "random, so the Jacobian is not defined" : "not dense";
        if (!why) continue;
        diag_error(c->seen_contractive->loc,
                   "'contractive' needs an encoder of dense layers, activations and views: "
                   "'%s' is %s", layer_text(c->arena, l, true), why);
        diag_note(l->loc, "this encoder layer");
        return;
    }
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
        diag_error(s->loc, "'pretrain layerwise' pairs each encoder dense layer with a decoder "
                           "one, but the encoder has %d and the decoder %d", ne, nd);
        return;
    }
    for (int k = 0; k < ne; k++) {
        const Layer *e = &c->enc.items[enc[k]].l, *d = &c->dec.items[dec[ne - 1 - k]].l;
        long want = shape_numel(e->in);
        if (e->in.ndim == 0 || want == d->units) continue;
        diag_error(s->loc, "'pretrain layerwise' pairs encoder '%s' (input %ld) with decoder '%s', "
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
                known = find_word(s->keyword, names, keyword_names((Context)ctx, names)) >= 0;
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
    Checker checker = {.arena = a};
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
    return m;
}

/* ---------------------------------------------------------------- output */

static char *commas(Arena *a, long n) {
    char digits[32], out[48];
    int len = snprintf(digits, sizeof digits, "%ld", n < 0 ? -n : n), k = 0;
    if (n < 0) out[k++] = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
    return arena_strdup(a, out);
}

/* A layer's text as the table and the dump show it. */
static char *layer_label(Arena *a, const Model *m, const Layer *l) {
    char *s = layer_text(a, l, true);
    if (l->tied_to >= 0) s = arena_printf(a, "%s (tied to %s)", s, layer_prefix(a, m, l->tied_to));
    return s;
}

void check_print_table(FILE *out, const Model *m) {
    Arena *a = arena_new();
    enum { COLS = 5 };
    int nrows = m->nlayers + 2;
    const char *(*rows)[COLS] = arena_alloc(a, sizeof(*rows) * (size_t)nrows);
    rows[0][0] = "module", rows[0][1] = "layer", rows[0][2] = "output", rows[0][3] = "params",
    rows[0][4] = "FLOPs";
    rows[1][0] = "input", rows[1][1] = "", rows[1][2] = shape_str(a, m->input), rows[1][3] = "",
    rows[1][4] = "";
    for (int k = 0; k < m->nlayers; k++) {
        int i = walk_order(m, k);
        const Layer *l = &m->layers[i];
        const char **r = rows[k + 2];
        r[0] = layer_prefix(a, m, i);
        r[1] = layer_label(a, m, l);
        r[2] = shape_str(a, l->out);
        r[3] = commas(a, l->params);
        r[4] = commas(a, l->flops);
    }
    int width[COLS] = {0};
    for (int r = 0; r < nrows; r++)
        for (int k = 0; k < COLS; k++)
            if ((int)strlen(rows[r][k]) > width[k]) width[k] = (int)strlen(rows[r][k]);
    fprintf(out, "model %s\n", m->name);
    for (int r = 0; r < nrows; r++) {
        /* Text columns to the left, numbers to the right, no trailing blanks. */
        char *line = arena_printf(a, "%-*s  %-*s  %-*s  %*s  %*s", width[0], rows[r][0], width[1],
                                  rows[r][1], width[2], rows[r][2], width[3], rows[r][3], width[4],
                                  rows[r][4]);
        size_t len = strlen(line);
        while (len > 0 && line[len - 1] == ' ')
            len--;
        fprintf(out, "%.*s\n", (int)len, line);
        if (r == 0) {
            for (int k = 0; k < COLS; k++) {
                for (int i = 0; i < width[k]; i++)
                    fputc('-', out);
                fputs(k + 1 < COLS ? "  " : "\n", out);
            }
        }
    }
    long buffers = m->param_count - m->trainable_count;
    fprintf(out, "Total params: %s\n", commas(a, m->param_count));
    fprintf(out, "Trainable params: %s\n", commas(a, m->trainable_count));
    fprintf(out, "Non-trainable params: %s\n", commas(a, buffers));
    fprintf(out, "Forward FLOPs per sample: %s\n", commas(a, m->flops));
    if (m->code.ndim == 1)
        fprintf(out, "Code size: %s\n", commas(a, shape_numel(m->code)));
    else
        fprintf(out, "Code size: %s (%s)\n", commas(a, shape_numel(m->code)),
                shape_str(a, m->code));
    arena_free(a);
}

void check_dump_shapes(FILE *out, const Model *m) {
    static const char *const losses[] = {"mse", "rmse", "mae", "bce"};
    static const char *const inits[] = {"xavier", "he", "normal"};
    static const char *const corrupts[] = {"none", "gaussian", "mask", "saltpepper"};
    Arena *a = arena_new();
    fprintf(out, "model %s\n", m->name);
    fprintf(out, "input %s\n", shape_str(a, m->input));
    int code_at = m->n_encoder + (m->latent_mu >= 0 ? 2 : 0); /* the first decoder layer */
    for (int k = 0; k <= m->nlayers; k++) {
        if (k == code_at) fprintf(out, "code %s\n", shape_str(a, m->code));
        if (k == m->nlayers) break;
        int i = walk_order(m, k);
        const Layer *l = &m->layers[i];
        fprintf(out, "%s %s: %s -> %s params=%ld flops=%ld", layer_prefix(a, m, i),
                layer_label(a, m, l), shape_str(a, l->in), shape_str(a, l->out), l->params,
                l->flops);
        if (l->kind == LY_CONV || l->kind == LY_DECONV)
            fprintf(out, " padding=%d,%d extra=%d,%d", l->pad, l->pad_w, l->pad_extra,
                    l->pad_extra_w);
        fputc('\n', out);
    }
    for (int i = 0; i < m->ntensors; i++) {
        const ParamTensor *t = &m->tensors[i];
        static const char *const kinds[] = {"weight", "bias", "buffer"};
        fprintf(out, "tensor %s %s [", t->name, kinds[t->kind]);
        for (int d = 0; d < t->ndim; d++)
            fprintf(out, "%s%d", d ? "," : "", t->shape[d]);
        fprintf(out, "] offset=%ld numel=%ld fan=%d,%d\n", t->offset, t->numel, t->fan_in,
                t->fan_out);
    }
    fprintf(out, "params total=%ld trainable=%ld flops=%ld\n", m->param_count, m->trainable_count,
            m->flops);
    fprintf(out, "loss %s%s\n", losses[m->loss], m->masked ? " masked" : "");
    if (m->latent_gaussian) fprintf(out, "latent gaussian %d kl=%g\n", m->latent_size, m->kl_beta);
    if (m->corrupt != CORRUPT_NONE)
        fprintf(out, "corrupt %s %g\n", corrupts[m->corrupt], m->corrupt_value);
    if (m->l2_weights || m->l1_weights || m->l1_code || m->kl_beta_sparsity || m->contractive)
        fprintf(out,
                "regularize l2_weights=%g l1_weights=%g l1_code=%g kl_rho=%g kl_beta=%g "
                "contractive=%g\n",
                m->l2_weights, m->l1_weights, m->l1_code, m->kl_rho, m->kl_beta_sparsity,
                m->contractive);
    const aec_train_config *t = &m->train;
    fprintf(out,
            "train optimizer=%s lr=%g momentum=%g beta1=%g beta2=%g eps=%g decay=%g batch=%d "
            "epochs=%d seed=%llu validation=%g early_stop=%d min_delta=%g pretrain=%d\n",
            optimizer_names[t->optimizer], t->lr, t->momentum, t->beta1, t->beta2, t->eps, t->decay,
            t->batch, t->epochs, (unsigned long long)t->seed, t->validation, t->early_stop,
            t->min_delta, t->pretrain_epochs);
    if (m->init == INIT_NORMAL)
        fprintf(out, "init normal=%g\n", m->init_std);
    else
        fprintf(out, "init %s\n", inits[m->init]);
    arena_free(a);
}
