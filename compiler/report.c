/* report.c — what `aec check` prints of a checked Model.
 *
 * Takes a Model; prints the layer table (layer, output shape, parameters,
 * FLOPs per sample, totals), which is also the model table's summary and
 * the layers comment of m.h, and the --dump=shapes listing.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"

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
        r[3] = lim_commas(a, l->params);
        r[4] = lim_commas(a, l->flops);
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
    fprintf(out, "Total params: %s\n", lim_commas(a, m->param_count));
    fprintf(out, "Trainable params: %s\n", lim_commas(a, m->trainable_count));
    fprintf(out, "Non-trainable params: %s\n", lim_commas(a, buffers));
    fprintf(out, "Forward FLOPs per sample: %s\n", lim_commas(a, m->flops));
    if (m->code.ndim == 1)
        fprintf(out, "Code size: %s\n", lim_commas(a, shape_numel(m->code)));
    else
        fprintf(out, "Code size: %s (%s)\n", lim_commas(a, shape_numel(m->code)),
                shape_str(a, m->code));
    arena_free(a);
}

void check_dump_shapes(FILE *out, const Model *m) {
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
        fprintf(out, "] offset=%ld numel=%ld fan=%ld,%ld\n", t->offset, t->numel, t->fan_in,
                t->fan_out);
    }
    fprintf(out, "params total=%ld trainable=%ld flops=%ld\n", m->param_count, m->trainable_count,
            m->flops);
    fprintf(out, "loss %s%s\n", aec_loss_name(m->loss), m->masked ? " masked" : "");
    if (m->latent_gaussian) fprintf(out, "latent gaussian %d kl=%g\n", m->latent_size, m->kl_beta);
    if (m->corrupt != CORRUPT_NONE)
        fprintf(out, "corrupt %s %g\n", corrupt_names[m->corrupt], m->corrupt_value);
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
            aec_optimizer_name(t->optimizer), t->lr, t->momentum, t->beta1, t->beta2, t->eps,
            t->decay, t->batch, t->epochs, (unsigned long long)t->seed, t->validation,
            t->early_stop, t->min_delta, t->pretrain_epochs);
    if (m->init == INIT_NORMAL)
        fprintf(out, "init normal=%g\n", m->init_std);
    else
        fprintf(out, "init %s\n", init_names[m->init]);
    arena_free(a);
}
