/* expand.c — `decoder mirror|tied` and `output ACT`, then the model's shapes.
 *
 * Takes the checker's draft encoder, latent heads and decoder; produces the
 * decoder a mirror or tied spec means (the encoder reversed, each layer
 * mapping back to what its encoder layer consumed; tied layers own only
 * their bias), the `output ACT` applied to the last computing layer, and
 * every shape inferred from the input through encoder, heads and decoder
 * (infer_model), with the errors of a decoder that does not end at the
 * input's shape.
 */
#include <string.h>

#include "check.h"

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
void infer_model(Checker *c) {
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
        code = shape_vec(m->latent_size);
    }
    m->code = code;

    /* A `latent gaussian` whose size was refused has no heads to mirror. */
    if (m->latent_gaussian && m->latent_size <= 0) c->encoder_ok = false;
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
