/* objective.c — what a train or eval graph minimizes, in the IR.
 *
 * Takes the model and the forward ops (forward.c); produces the loss (mse,
 * rmse, mae, bce; masked for `loss ... masked`), and what makes an
 * autoencoder learn more than the identity (docs/regularizers.md): the
 * corruption of the input (training only), the variational code (the
 * reparameterization and its KL term), the regularizer terms, their sum as
 * the objective and each term as an OUT_METRIC (lower_metrics names them);
 * and the shallow autoencoder of each layer-wise pretraining stage.
 */
#include <math.h>
#include <string.h>

#include "../runtime/metrics.h" /* the metric names, shared with the runtime */
#include "lower.h"

/* The loss `kind` (AEC_LOSS_*) of y against target: the mean over every
 * element of the batch, as PyTorch's reduction='mean': sum / (batch * n);
 * with `summed`, the negative ELBO's convention: summed over a sample's
 * features, averaged over the batch (the checker refuses rmse there).
 * `masked` (loss ... masked): elements whose mask is 0 are left out, so the
 * mean is over the present elements only (the sum over a sample's present
 * features, with `summed`); a batch with none present has loss 0. */
static int loss(Lower *L, int kind, int y, int target, bool summed, bool masked) {
    Graph *g = L->g;
    long n = summed ? 1 : g->nodes[target].type.n;
    int inv =
        ir_binary(g, IR_DIV, ir_const(g, 1.0 / (double)n), ir_add(g, (IrNode){.op = IR_BATCH}));
    int mask = masked ? ir_add(g, (IrNode){.op = IR_INPUT, .role = INPUT_MASK}) : -1;
    if (masked && !summed) /* 1 / (present + tiny): exact for any count >= 1, 0 loss for none */
        inv = ir_binary(g, IR_DIV, ir_const(g, 1),
                        ir_binary(g, IR_ADD, ir_unary(g, IR_SUM_ALL, mask), ir_const(g, 1e-30)));
    int d = ir_binary(g, IR_SUB, y, target), per_elem;
    switch (kind) {
    case AEC_LOSS_MSE:
    case AEC_LOSS_RMSE: per_elem = ir_binary(g, IR_MUL, d, d); break;
    case AEC_LOSS_MAE: per_elem = ir_unary(g, IR_ABS, d); break;
    case AEC_LOSS_BCE: per_elem = ir_binary(g, IR_BCE, y, target); break;
    default: internal_error("unknown loss %d", kind);
    }
    if (masked) per_elem = ir_binary(g, IR_MUL, per_elem, mask);
    int mean = ir_binary(g, IR_MUL, ir_unary(g, IR_SUM_ALL, per_elem), inv);
    return kind == AEC_LOSS_RMSE ? ir_unary(g, IR_SQRT, mean) : mean;
}

/* ------------------------------------------------------- denoising, VAE */

/* The corrupted input of a denoising autoencoder (training only): the loss
 * still targets the clean x. */
static int corrupt(Lower *L, int x) {
    Graph *g = L->g;
    const Model *m = L->m;
    IrType t = g->nodes[x].type;
    double v = m->corrupt_value;
    switch (m->corrupt) {
    case CORRUPT_NONE: return x;
    case CORRUPT_GAUSSIAN: /* x + σ·ε, ε ~ N(0, 1) */
        return ir_binary(
            g, IR_ADD, x,
            ir_binary(g, IR_MUL, ir_const(g, v), rand_node(L, t, RAND_NORMAL, 0, STREAM_CORRUPT)));
    case CORRUPT_MASK: /* each value zeroed with probability P */
        return ir_binary(g, IR_MUL, x, rand_node(L, t, RAND_BERNOULLI, 1 - v, STREAM_CORRUPT));
    case CORRUPT_SALTPEPPER: { /* with probability P, 0 or 1 (even odds) */
        int keep = rand_node(L, t, RAND_BERNOULLI, 1 - v, STREAM_CORRUPT);
        int salt = rand_node(L, t, RAND_BERNOULLI, 0.5, STREAM_SALT);
        int hit = ir_binary(g, IR_SUB, ir_const(g, 1), keep);
        return ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, x, keep), ir_binary(g, IR_MUL, hit, salt));
    }
    default: internal_error("corruption %d", m->corrupt);
    }
}

static int per_sample_mean(Lower *L, int v) { /* sum over the batch / B */
    Graph *g = L->g;
    return ir_binary(g, IR_DIV, ir_unary(g, IR_SUM_ALL, v), ir_add(g, (IrNode){.op = IR_BATCH}));
}

/* KL(N(μ, σ²) ‖ N(0, I)) = -½ Σ_j (1 + log σ_j² − μ_j² − σ_j²), batch mean. */
static int vae_kl(Lower *L, int mu, int logvar) {
    Graph *g = L->g;
    int mu2 = ir_binary(g, IR_MUL, mu, mu), var = ir_unary(g, IR_EXP, logvar);
    int t = ir_binary(g, IR_SUB, ir_binary(g, IR_ADD, ir_const(g, 1), logvar),
                      ir_binary(g, IR_ADD, mu2, var));
    return per_sample_mean(L, ir_binary(g, IR_MUL, ir_const(g, -0.5), t));
}

/* ------------------------------------------------------------- regularizers */

/* The KL sparsity penalty Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the batch mean of code unit j:
 * ρ log(ρ/ρ̂) + (1−ρ) log((1−ρ)/(1−ρ̂)). */
static int kl_sparsity(Lower *L, int code) {
    Graph *g = L->g;
    double rho = L->m->kl_rho;
    int batch = ir_add(g, (IrNode){.op = IR_BATCH});
    int rho_hat = ir_binary(g, IR_DIV, ir_unary(g, IR_SUM_ROWS, code), batch);
    int one_minus = ir_binary(g, IR_SUB, ir_const(g, 1), rho_hat);
    int on = ir_binary(g, IR_MUL, ir_const(g, rho), ir_unary(g, IR_LOG, rho_hat));
    int off = ir_binary(g, IR_MUL, ir_const(g, 1 - rho), ir_unary(g, IR_LOG, one_minus));
    int cross = ir_binary(g, IR_ADD, on, off);
    int entropy = ir_const(g, rho * log(rho) + (1 - rho) * log(1 - rho));
    return ir_unary(g, IR_SUM_ALL, ir_binary(g, IR_SUB, entropy, cross));
}

/* Σ w² (or Σ |w|) over every weight tensor (not biases). */
static int weight_norm(Lower *L, bool l1) {
    Graph *g = L->g;
    const Model *m = L->m;
    int sum = ir_const(g, 0);
    for (int t = 0; t < m->ntensors; t++) {
        if (m->tensors[t].kind != AEC_TENSOR_WEIGHT) continue;
        int p = param(L, t);
        int v = l1 ? ir_unary(g, IR_ABS, p) : ir_binary(g, IR_MUL, p, p);
        sum = ir_binary(g, IR_ADD, sum, ir_unary(g, IR_SUM_ALL, v));
    }
    return sum;
}

/* The contractive penalty ‖∂h/∂x‖²_F of the dense encoder, exact, batch mean.
 * The encoder is stages h_l = f_l(W_l h_{l-1} + b_l), l = 1..L (f_l the
 * product of the activations after dense l), so the Jacobian is
 * J = D_L W_L D_{L-1} W_{L-1} ... D_1 W_1 with D_l = diag(f_l'(z_l)).
 * With one layer ‖J‖² = Σ_j f'(z_j)² Σ_i W_ji². Deeper, the per-sample
 * matrix M = W_L D_{L-1} W_{L-1} ... W_1 ([h_L, in]) is built left to right
 * for all samples at once — stacked into [B·h_L, ·] rows, so each W_l is one
 * GEMM with r·B rows — and ‖J‖² = Σ_k d_L,k² Σ_i M_ki². Cost per sample:
 * 2·h_L·Σ_{l<L} h_l·h_{l-1} multiply-adds, and as much again for the
 * gradient (docs/regularizers.md). */
static int contractive(Lower *L) {
    Graph *g = L->g;
    const Model *m = L->m;
    enum { MAX_STAGES = AEC_CONTRACTIVE_MAX_DENSE }; /* the checker refuses more */
    int w[MAX_STAGES], d[MAX_STAGES], n = 0;
    long units[MAX_STAGES], in[MAX_STAGES];
    for (int i = 0; i < m->n_encoder + (m->latent_mu >= 0); i++) {
        const Layer *ly = &m->layers[i < m->n_encoder ? i : m->latent_mu];
        if (ly->kind == LY_DENSE) {
            ensure(n < MAX_STAGES);
            w[n] = param(L, ly->weight);
            units[n] = ly->units;
            in[n] = shape_numel(ly->in);
            d[n++] = -1;
        }
        if (i < m->n_encoder && L->act[i] >= 0) { /* an activation: a factor of D */
            ensure(n > 0); /* the checker refuses an activation before the first dense */
            int prime = ir_act_prime(g, L->act[i]);
            d[n - 1] = d[n - 1] < 0 ? prime : ir_binary(g, IR_MUL, d[n - 1], prime);
        }
    }
    ensure(n > 0); /* the checker refuses an encoder without a dense layer */
    long hl = units[n - 1];
    int M = w[n - 1];
    for (int l = n - 2; l >= 0; l--) {
        if (d[l] >= 0) { /* scale M's columns by d_l, per sample */
            int tiled =
                hl == 1 ? d[l] : ir_add(g, (IrNode){.op = IR_TILE, .in = {d[l]}, .copies = hl});
            M = ir_binary(g, IR_MUL, M, tiled);
        }
        bool batched = g->nodes[M].type.batched;
        M = ir_gemm(g, M, w[l], 0, 0, batched ? -hl : hl, in[l], units[l]);
    }
    bool batched = g->nodes[M].type.batched;
    int ones = ir_add(g, (IrNode){.op = IR_EXPAND, .in = {ir_const(g, 1)}, .type = {false, in[0]}});
    int rows = ir_gemm(g, ir_binary(g, IR_MUL, M, M), ones, 0, 0, batched ? -hl : hl, 1, in[0]);
    if (d[n - 1] < 0 && !batched) return ir_unary(g, IR_SUM_ALL, rows); /* all samples' */
    int dd = d[n - 1] < 0 ? -1 : ir_binary(g, IR_MUL, d[n - 1], d[n - 1]);
    return per_sample_mean(L, dd < 0 ? rows : ir_binary(g, IR_MUL, dd, rows));
}

/* ------------------------------------------------------------- the objective */

/* The terms beyond the reconstruction are the rows of the metric table
 * shared with the runtime (runtime/metrics.h) from AEC_METRIC_FIRST_TERM
 * on, in that order. A term's weight in the loss, and whether the model has
 * it at all: a regularizer of weight 0 is left out, the VAE's KL is always
 * reported. */
static double term_weight(const Model *m, int t, bool *on) {
    double w = 0;
    switch (t) {
    case AEC_METRIC_KL: w = m->kl_beta; break;
    case AEC_METRIC_L1_CODE: w = m->l1_code; break;
    case AEC_METRIC_KL_SPARSITY: w = m->kl_beta_sparsity; break;
    case AEC_METRIC_CONTRACTIVE: w = m->contractive; break;
    case AEC_METRIC_L2_WEIGHTS: w = m->l2_weights; break;
    case AEC_METRIC_L1_WEIGHTS: w = m->l1_weights; break;
    }
    *on = t == AEC_METRIC_KL ? m->latent_gaussian : w > 0;
    return w;
}

int lower_metrics(const Model *m, const char **names) {
    int n = 0;
    const char *local[LOWER_MAX_METRICS];
    if (!names) names = local;
    names[n++] = aec_metric_name(AEC_METRIC_LOSS);
    names[n++] = aec_metric_name(AEC_METRIC_RECON);
    for (int t = AEC_METRIC_FIRST_TERM; t < AEC_N_METRIC_NAMES; t++) {
        bool on;
        term_weight(m, t, &on);
        if (on) names[n++] = aec_metric_name(t);
    }
    ensure(n <= LOWER_MAX_METRICS);
    return n == 2 ? 1 : n; /* the reconstruction alone is the loss */
}

/* The train or eval graph of the model: corrupted input and dropout in
 * training; the code, or μ and z = μ + σ·ε (z = μ at inference) for a
 * variational one; the loss (the negative ELBO for a variational code)
 * plus every weighted term; each term unweighted as a metric. */
void model_objective(Lower *L) {
    Graph *g = L->g;
    const Model *m = L->m;
    int x = ir_add(g, (IrNode){.op = IR_INPUT, .role = INPUT_X});
    int h = layers(L, L->training ? corrupt(L, x) : x, 0, m->n_encoder);
    int code = h, z = h, mu = -1, logvar = -1;
    if (m->latent_gaussian) {
        code = mu = dense(L, &m->layers[m->latent_mu], h);
        logvar = dense(L, &m->layers[m->latent_logvar], h);
        if (L->training) { /* the reparameterization trick */
            int sigma = ir_unary(g, IR_EXP, ir_binary(g, IR_MUL, ir_const(g, 0.5), logvar));
            int eps = rand_node(L, g->nodes[mu].type, RAND_NORMAL, 0, STREAM_EPS);
            z = ir_binary(g, IR_ADD, mu, ir_binary(g, IR_MUL, sigma, eps));
            set_loc(L, z, m->layers[m->latent_mu].loc);
        } else {
            z = mu;
        }
    }
    int y = layers(L, z, m->n_encoder, m->n_encoder + m->n_decoder);
    int recon = loss(L, m->loss, y, x, m->latent_gaussian, m->masked), total = recon;
    int metric = 1;
    bool any = false;
    for (int t = AEC_METRIC_FIRST_TERM; t < AEC_N_METRIC_NAMES; t++) {
        bool on;
        double w = term_weight(m, t, &on);
        if (!on) continue;
        int v;
        switch (t) {
        case AEC_METRIC_KL: v = vae_kl(L, mu, logvar); break;
        case AEC_METRIC_L1_CODE: v = per_sample_mean(L, ir_unary(g, IR_ABS, code)); break;
        case AEC_METRIC_KL_SPARSITY: v = kl_sparsity(L, code); break;
        case AEC_METRIC_CONTRACTIVE: v = contractive(L); break;
        case AEC_METRIC_L2_WEIGHTS: v = weight_norm(L, false); break;
        default: v = weight_norm(L, true); break;
        }
        if (!any) ir_output(g, OUT_METRIC, recon, metric++);
        any = true;
        ir_output(g, OUT_METRIC, v, metric++);
        if (w != 0) total = ir_binary(g, IR_ADD, total, ir_binary(g, IR_MUL, ir_const(g, w), v));
    }
    ensure(metric == (any ? lower_metrics(m, NULL) : 1));
    ir_output(g, OUT_LOSS, total, 0);
    if (g->kind == GRAPH_EVAL) ir_output(g, OUT_XHAT, y, 0);
}

/* ------------------------------------------------ layer-wise pretraining */

/* Stage k (Model.stages, from the checker): layers [0, in_to) give its
 * input (frozen, inference mode), [enc_from, enc_to) and [dec_from,
 * dec_to) are trained. */
static ModelStage stage_of(const Model *m, int k) {
    ensure(k >= 1 && k <= m->nstages);
    return m->stages[k - 1];
}

/* Stage k's shallow autoencoder: its input h (the data for stage 1),
 * corrupted as the spec says (stacked denoising autoencoders), through its
 * two layers, against h; the spec's loss on the data, mse on codes. */
void stage_objective(Lower *L, int k) {
    Graph *g = L->g;
    ModelStage s = stage_of(L->m, k);
    int x = ir_add(g, (IrNode){.op = IR_INPUT, .role = INPUT_X});
    L->training = false;
    int h = layers(L, x, 0, s.in_to);
    L->training = g->kind == GRAPH_TRAIN;
    int c = layers(L, L->training ? corrupt(L, h) : h, s.enc_from, s.enc_to);
    int y = layers(L, c, s.dec_from, s.dec_to);
    ir_output(g, OUT_LOSS,
              loss(L, k == 1 ? L->m->loss : AEC_LOSS_MSE, y, h, false, k == 1 && L->m->masked), 0);
}
