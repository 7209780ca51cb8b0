/* form.c — the generic statement grammar of a spec, and "did you mean".
 *
 * Takes AST statements and a description of what each may contain (a Form:
 * positional arguments, an optional activation, key=value keys, a body) or
 * the keyword table of a context; produces the sorted arguments, checked
 * values (numbers in range, shapes, kernels, words, activations), the call
 * of a keyword's handler — and the located errors for everything else:
 * unknown words with the closest known one, a keyword in the wrong block,
 * duplicates, values out of range.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int find_word(const char *w, const char *const *words, int n) {
    for (int i = 0; i < n; i++)
        if (words[i] && strcmp(w, words[i]) == 0) return i;
    return -1;
}

char *join(Arena *a, const char *const *words, int n) {
    char *s = "";
    for (int i = 0; i < n; i++)
        if (words[i]) s = arena_printf(a, "%s%s%s", s, *s ? ", " : "", words[i]);
    return s;
}

/* ", did you mean 'X'?" or "". */
const char *did_you_mean(Arena *a, const char *w, const char *const *words, int n) {
    const char *s = suggest(w, words, n);
    return s ? arena_printf(a, ", did you mean '%s'?", s) : "";
}

/* ------------------------------------------------------- statement forms */

const AstArg *keyarg(const AstStmt *s, const char *key) {
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
Args check_form(Checker *c, const AstStmt *s, const Form *f) {
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
const char *written(Arena *a, const AstValue *v) {
    return v->kind == AV_IDENT ? arena_printf(a, "'%s'", v->text) : v->text;
}

bool get_real(Checker *c, const AstValue *v, const char *what, Range r, double *out) {
    if (v->kind != AV_NUMBER || !in_range(v->number.value, r)) {
        diag_error(v->loc, "%s must be %s%s, got %s", what, r == R_ANY ? "" : "a number ",
                   range_text[r], written(c->arena, v));
        return false;
    }
    *out = v->number.value;
    return true;
}

bool get_int(Checker *c, const AstValue *v, const char *what, long min, int *out) {
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
bool get_shape(Checker *c, const AstValue *v, const char *what, Shape *out) {
    Shape s = {0};
    if (v->kind == AV_NUMBER && v->number.is_int && v->number.value >= 1 &&
        v->number.value <= INT_MAX)
        s = shape_vec((int)v->number.value);
    else if (v->kind == AV_SHAPE && v->shape.ndim == 3)
        s = shape_chw(v->shape.dim[0], v->shape.dim[1], v->shape.dim[2]);
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
bool get_kernel(Checker *c, const AstValue *v, const char *what, int *kh, int *kw) {
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
int get_word(Checker *c, const AstValue *v, const char *what, const char *const *words, int n) {
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
bool get_act(Checker *c, const char *name, Loc loc, const AstValue *param, ActKind *act,
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
    return get_real(c, param, arena_printf(c->arena, "the %s %s", name, act_info[*act].param),
                    R_ANY, alpha);
}

bool get_act_arg(Checker *c, const AstArg *a, ActKind *act, double *alpha) {
    if (a->key) return get_act(c, a->key, a->key_loc, a->value, act, alpha);
    return get_act(c, a->value->ident.name, a->value->loc, NULL, act, alpha);
}

/* --------------------------------------------------------------- keywords */

const char *const layer_keywords[LAYER_KEYWORDS] = {
    "dense",    "conv",      "deconv",  "maxpool", "avgpool",
    "upsample", "batchnorm", "dropout", "flatten", "reshape",
};

static const char *const ctx_names[CTX_COUNT] = {
    [CTX_FILE] = "the file",   [CTX_MODEL] = "model { }",           [CTX_LAYERS] = "layers",
    [CTX_TRAIN] = "train { }", [CTX_REGULARIZE] = "regularize { }",
};

/* Every keyword of a context (at most KEYWORDS_MAX), for suggestions. */
int keyword_names(const Checker *c, Context ctx, const char **names) {
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
        const Keyword *k = c->keywords_of(ctx, &nk);
        for (int i = 0; i < nk; i++)
            names[n++] = k[i].name;
    }
    ensure(n <= KEYWORDS_MAX);
    return n;
}

/* A keyword that is not one of context `ctx`: say where it belongs, or
 * suggest the closest keyword of `ctx`. `where` names the block. */
void unknown_keyword(Checker *c, const AstStmt *s, Context ctx, const char *where) {
    const char *names[KEYWORDS_MAX];
    for (int other = 0; other < CTX_COUNT; other++) {
        int n = keyword_names(c, (Context)other, names);
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
    int n = keyword_names(c, ctx, names);
    diag_error(s->loc, "unknown keyword '%s' in %s%s", s->keyword, where,
               did_you_mean(c->arena, s->keyword, names, n));
}

/* Runs the handler of statement s's keyword in context ctx; `seen` (one slot
 * per keyword, or NULL) catches a keyword given twice. */
void dispatch(Checker *c, const AstStmt *s, Context ctx, const char *where, const AstStmt **seen) {
    int n;
    const Keyword *k = c->keywords_of(ctx, &n);
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
bool first_use(const AstStmt **slot, const AstStmt *s, const char *what) {
    if (*slot) {
        diag_error(s->loc, "duplicate '%s' in regularize { }", what);
        diag_note((*slot)->loc, "first '%s' here", what);
        return false;
    }
    *slot = s;
    return true;
}
