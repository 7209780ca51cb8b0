/* check_layer.c — one layer: its statement, its spelling, its shapes.
 *
 * Takes a statement of encoder { } or decoder { } (or an activation alone);
 * produces a draft Layer with its values checked against the layer's form
 * (layer_forms), the layer spelled as a spec line (layer_text, for errors,
 * the table and headers), and — given its input shape — its output shape,
 * parameter elements and FLOPs, or a located error naming both shapes
 * (infer_layer; infer_section runs a list of layers).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

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

bool has_act_field(LayerKind k) {
    return k == LY_DENSE || k == LY_CONV || k == LY_DECONV;
}

Draft new_draft(LayerKind kind, Loc loc, bool in_decoder) {
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

/* An activation's usage: "relu", "leaky_relu[=SLOPE]" (its parameter's name, upper-cased). */
static const char *act_usage(Arena *a, const char *name) {
    int k = find_word(name, act_names, ACT_COUNT);
    const char *param = k >= 0 ? act_info[k].param : NULL;
    if (!param) return name;
    char up[32];
    snprintf(up, sizeof up, "%s", param);
    for (char *p = up; *p; p++)
        *p = (char)(*p - 'a' + 'A');
    return arena_printf(a, "%s[=%s]", name, up);
}

/* One statement of encoder { } or decoder { } into a draft layer. */
void layer_stmt(Checker *c, const AstStmt *s, Drafts *out, const char *where, bool in_decoder) {
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
        form.usage = act_usage(c->arena, s->keyword);
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
char *layer_text(Arena *a, const Layer *l, bool full) {
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

/* ------------------------------------------------------------- shapes */

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
bool infer_layer(Checker *c, Layer *l, const char *after) {
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
        l->out = shape_vec(l->units);
        l->params = known ? lim_add(lim_mul(in.dim[0], l->units), l->units) : 0;
        l->flops = lim_add(lim_mul(lim_mul(2, in.dim[0]), l->units),
                           lim_add(l->units, act_flops(l->act, l->units)));
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
        l->out = shape_chw(l->units, h, w);
        long k = lim_mul(lim_mul(in.dim[0], l->units), lim_mul(l->kh, l->kw));
        long out_pixels = lim_mul(h, w), in_pixels = lim_mul(in.dim[1], in.dim[2]);
        l->params = lim_add(k, l->units);
        /* A conv does k MACs per output pixel; a deconv scatters k per input pixel. */
        long outs = lim_mul(l->units, out_pixels);
        l->flops = lim_add(lim_mul(lim_mul(2, k), conv ? out_pixels : in_pixels),
                           lim_add(outs, act_flops(l->act, outs)));
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
        l->out = shape_chw(in.dim[0], pool_out_size(in.dim[1], l->kh, l->stride),
                           pool_out_size(in.dim[2], l->kw, l->stride));
        l->flops = lim_mul(lim_mul(l->kh, l->kw), shape_numel(l->out));
        break;
    }
    case LY_UPSAMPLE:
        if (in.ndim == 1)
            return shape_error(c, l, after, "expected CxHxW, got %s (add reshape)", ins);
        if (!known) return false;
        l->out = shape_chw(in.dim[0], clamp_int((long)in.dim[1] * l->kh),
                           clamp_int((long)in.dim[2] * l->kw));
        break;
    case LY_BATCHNORM:
        if (!known) return false;
        l->out = in;
        l->units = in.dim[0]; /* channels, or features of a vector */
        l->params = lim_mul(4, l->units);
        l->flops = lim_mul(2, shape_numel(in)); /* at inference: one scale and one shift */
        break;
    case LY_DROPOUT: l->out = in; break;
    case LY_FLATTEN:
        if (known) l->out = shape_vec(clamp_int(shape_numel(in)));
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
Shape infer_section(Checker *c, Drafts *ds, Shape in, const char *first_after, bool *ok) {
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
