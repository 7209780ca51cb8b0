/* lower.c — from the checked model to the IR graph of one entry point.
 *
 * Takes a Model (shapes known, decoders expanded) and a GraphKind; produces
 * the forward ops of the layers the entry point runs, the loss for the
 * train/eval graphs, and the outputs. The optimizer update is lowered here
 * too, as elementwise ops over the whole trainable block, so the fuser turns
 * it into one loop like any other elementwise work.
 * Views (flatten, reshape) produce no ops: an IR value is n contiguous
 * elements per sample whatever its shape (an image: NCHW).
 * Image layers: conv/deconv, pooling and upsampling are NEST ops carrying
 * their layer's geometry; per-channel values meet images through
 * CHAN_EXPAND/CHAN_SUM; batch norm is made of existing ops, and in training
 * also outputs its new running statistics (OUT_BUFFER).
 *
 * What makes an autoencoder learn more than the identity is lowered here
 * too, from existing ops and a few of its own (docs/regularizers.md):
 * corruption of the input and dropout (RAND noise, training graphs only),
 * the regularizer terms, the variational code (reparameterization and its
 * KL term), and the graphs of greedy layer-wise pretraining (one train and
 * one optim graph per stage). Every random draw has its own stream: the
 * graph's stage in the high bits, the use (a layer's index, or STREAM_*)
 * in the low ones.
 */
#include <math.h>
#include <string.h>

#include "aec.h"
#include "../runtime/metrics.h" /* the metric names, shared with the runtime */

typedef struct Lower {
    Graph *g;
    const Model *m;
    bool training;
    int *act;      /* per layer: the IR_ACT node of its activation, or -1 (contractive) */
} Lower;

/* RAND streams that are not a layer's (a layer's is its index). */
enum { STREAM_CORRUPT = 0x8000, STREAM_SALT = 0x8001, STREAM_EPS = 0x8002 };

static int rand_node(Lower *L, IrType t, RandKind kind, double p, int use) {
    return ir_add(L->g, (IrNode){.op = IR_RAND, .type = t, .act = kind, .value = p,
                                 .slot = L->g->stage << 16 | use});
}

static int param(Lower *L, int tensor) {
    ensure(tensor >= 0);
    return ir_add(L->g, (IrNode){.op = IR_PARAM, .tensor = tensor});
}

static int set_loc(Lower *L, int node, Loc loc) {
    if (!L->g->nodes[node].loc.line) L->g->nodes[node].loc = loc;
    return node;
}

static int activation(Lower *L, int x, ActKind act, double alpha, Loc loc) {
    if (act == ACT_LINEAR) return x;
    return set_loc(L, ir_add(L->g, (IrNode){.op = IR_ACT, .in = {x}, .act = act, .value = alpha}),
                   loc);
}

/* y = x·Wᵀ + b, W [out, in]; a tied layer computes y = x·W_enc + b with the
 * encoder's W_enc [in_enc=out, out_enc=in]. */
static int dense(Lower *L, const Layer *ly, int x) {
    const Model *m = L->m;
    long in = shape_numel(ly->in), out = ly->units;
    int y;
    if (ly->tied_to >= 0) {
        int w = param(L, m->layers[ly->tied_to].weight);
        y = ir_gemm(L->g, x, w, 0, 0, IR_BATCH_DIM, out, in);
    } else {
        y = ir_gemm(L->g, x, param(L, ly->weight), 0, 1, IR_BATCH_DIM, out, in);
    }
    set_loc(L, y, ly->loc);
    if (ly->bias >= 0) y = set_loc(L, ir_binary(L->g, IR_ADD, y, param(L, ly->bias)), ly->loc);
    return activation(L, y, ly->act, ly->act_alpha, ly->loc);
}

/* Inverted dropout: y = x·keep/(1-p), keep ~ Bernoulli(1-p), in training
 * only. The mask is a node, so the backward pass reads the same one. */
static int dropout(Lower *L, const Layer *ly, int x) {
    if (!L->training || ly->p == 0) return x;
    Graph *g = L->g;
    int keep = rand_node(L, g->nodes[x].type, RAND_BERNOULLI, 1 - ly->p, (int)(ly - L->m->layers));
    int mask = set_loc(L, ir_binary(g, IR_MUL, keep, ir_const(g, 1 / (1 - ly->p))), ly->loc);
    return set_loc(L, ir_binary(g, IR_MUL, x, mask), ly->loc);
}

/* ------------------------------------------------------------ image layers
 * Convolutions, pooling and upsampling are ops of their own (NEST kernels,
 * with the geometry of their Layer); a per-channel value [C] meets an image
 * [B, C·hw] through CHAN_EXPAND and comes back through CHAN_SUM. */

static int layer_index(Lower *L, const Layer *ly) { return (int)(ly - L->m->layers); }

/* A per-channel [C] value spread over hw positions per channel; a vector's
 * features (hw 1) and a single channel broadcast as they are. */
static int expand_chan(Lower *L, int v, long hw) {
    if (hw == 1 || ir_is_scalar(L->g->nodes[v].type)) return v;
    return ir_add(L->g, (IrNode){.op = IR_CHAN_EXPAND, .in = {v}, .hw = hw});
}

/* The per-channel sum over the batch and the positions of v [B, C·hw]. */
static int sum_chan(Lower *L, int v, long hw) {
    int rows = ir_unary(L->g, IR_SUM_ROWS, v);
    return hw == 1 ? rows : ir_add(L->g, (IrNode){.op = IR_CHAN_SUM, .in = {rows}, .hw = hw});
}

/* conv: y = W·im2col(x) + b; deconv: y = col2im(Wᵀ·x) + b; a tied layer
 * uses its encoder layer's weight, whose layout is already this one's. */
static int conv(Lower *L, const Layer *ly, int x) {
    Graph *g = L->g;
    int w = param(L, ly->tied_to >= 0 ? L->m->layers[ly->tied_to].weight : ly->weight);
    int y = ir_add(g, (IrNode){.op = ly->kind == LY_CONV ? IR_CONV : IR_CONV_T, .in = {x, w},
                               .layer = layer_index(L, ly)});
    set_loc(L, y, ly->loc);
    long hw = (long)ly->out.dim[1] * ly->out.dim[2];
    y = set_loc(L, ir_binary(g, IR_ADD, y, expand_chan(L, param(L, ly->bias), hw)), ly->loc);
    return activation(L, y, ly->act, ly->act_alpha, ly->loc);
}

static int image_op(Lower *L, const Layer *ly, IrOp op, int x) {
    return set_loc(L, ir_add(L->g, (IrNode){.op = op, .in = {x}, .layer = layer_index(L, ly)}), ly->loc);
}

/* PyTorch's BatchNorm over channels (an image: C planes of hw values) or
 * features (a vector: hw 1). Training normalizes with the batch's mean and
 * biased variance and moves the running statistics towards the batch's
 * (the variance unbiased): r = (1 - momentum)·r + momentum·s, written out
 * as OUT_BUFFER; inference normalizes with the running statistics. Made of
 * existing ops, so autodiff derives the gradient and the fuser makes each
 * pass over the batch one loop. */
static int batchnorm(Lower *L, const Layer *ly, int x) {
    Graph *g = L->g;
    long hw = shape_numel(ly->in) / ly->units;
#define K(v) ir_const(g, (v))
#define ADD(a, b) ir_binary(g, IR_ADD, a, b)
#define SUB(a, b) ir_binary(g, IR_SUB, a, b)
#define MUL(a, b) ir_binary(g, IR_MUL, a, b)
#define DIV(a, b) ir_binary(g, IR_DIV, a, b)
    int rmean = param(L, ly->running_mean), rvar = param(L, ly->running_var);
    int mean = rmean, var = rvar;
    if (L->training) {
        int count = MUL(ir_add(g, (IrNode){.op = IR_BATCH}), K((double)hw)); /* N per channel */
        mean = DIV(sum_chan(L, x, hw), count);
        int xc = SUB(x, expand_chan(L, mean, hw));
        var = DIV(sum_chan(L, MUL(xc, xc), hw), count);
        if (g->stage == 0) {
            /* unbiased: N / max(N - 1, 1), with max(a, 1) = (a + 1 + |a - 1|) / 2 */
            int unbias = DIV(MUL(count, K(2)), ADD(count, ir_unary(g, IR_ABS, SUB(count, K(2)))));
            double m = ly->momentum;
            ir_output(g, OUT_BUFFER, ADD(MUL(K(1 - m), rmean), MUL(K(m), mean)), ly->running_mean);
            ir_output(g, OUT_BUFFER, ADD(MUL(K(1 - m), rvar), MUL(K(m), MUL(var, unbias))),
                      ly->running_var);
        }
        x = xc, mean = -1;
    }
    int scale = MUL(DIV(K(1), ir_unary(g, IR_SQRT, ADD(var, K(ly->eps)))), param(L, ly->weight));
    if (mean >= 0) x = SUB(x, expand_chan(L, mean, hw));
    int y = ADD(MUL(x, expand_chan(L, scale, hw)), expand_chan(L, param(L, ly->bias), hw));
#undef K
#undef ADD
#undef SUB
#undef MUL
#undef DIV
    return set_loc(L, y, ly->loc);
}

static int layer(Lower *L, const Layer *ly, int x) {
    switch (ly->kind) {
    case LY_DENSE: return dense(L, ly, x);
    case LY_CONV:
    case LY_DECONV: return conv(L, ly, x);
    case LY_MAXPOOL: return image_op(L, ly, IR_MAXPOOL, x);
    case LY_AVGPOOL: return image_op(L, ly, IR_AVGPOOL, x);
    case LY_UPSAMPLE: return image_op(L, ly, IR_UPSAMPLE, x);
    case LY_BATCHNORM: return batchnorm(L, ly, x);
    case LY_DROPOUT: return dropout(L, ly, x);
    case LY_ACT: return activation(L, x, ly->act, ly->act_alpha, ly->loc);
    case LY_FLATTEN:
    case LY_RESHAPE: return x;
    default: internal_error("layer kind %d reached lowering (the checker should reject it)", ly->kind);
    }
}

static int layers(Lower *L, int x, int from, int to) {
    for (int i = from; i < to; i++) {
        int y = layer(L, &L->m->layers[i], x);
        if (y != x && L->g->nodes[y].op == IR_ACT) L->act[i] = y;
        x = y;
    }
    return x;
}

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
    int inv = ir_binary(g, IR_DIV, ir_const(g, 1.0 / (double)n), ir_add(g, (IrNode){.op = IR_BATCH}));
    int mask = masked ? ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_MASK}) : -1;
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

/* Optimizer updates, PyTorch's formulas (torch.optim), over the flat block
 * of trainable parameters p with gradient gr — or, for a pretraining stage,
 * over the range of one `tensor` of it (-1: the whole block). `decay` is
 * PyTorch's weight_decay: L2 added to the gradient, decoupled for adamw. */
static void optimizer(Lower *L, int tensor) {
    Graph *g = L->g;
    const aec_train_config *c = &L->m->train;
    int p = ir_add(g, (IrNode){.op = IR_PARAM, .tensor = tensor});
    int gr = ir_add(g, (IrNode){.op = IR_GRADIN, .tensor = tensor});
    int lr = ir_const(g, c->lr);
#define K(v) ir_const(g, (v))
#define ADD(a, b) ir_binary(g, IR_ADD, a, b)
#define SUB(a, b) ir_binary(g, IR_SUB, a, b)
#define MUL(a, b) ir_binary(g, IR_MUL, a, b)
#define DIV(a, b) ir_binary(g, IR_DIV, a, b)
    if (c->decay != 0 && c->optimizer != AEC_OPT_ADAMW) gr = ADD(gr, MUL(K(c->decay), p));
    int slot0 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .slot = 0, .tensor = tensor});
    int slot1 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .slot = 1, .tensor = tensor});
    switch (c->optimizer) {
    case AEC_OPT_SGD: p = SUB(p, MUL(lr, gr)); break;
    case AEC_OPT_MOMENTUM: { /* buf = μ·buf + g; p -= lr·buf (buf starts at 0, so at g) */
        int buf = ADD(MUL(K(c->momentum), slot0), gr);
        ir_output_tensor(g, OUT_OPTSTATE, buf, 0, tensor);
        p = SUB(p, MUL(lr, buf));
        break;
    }
    case AEC_OPT_ADAM:
    case AEC_OPT_ADAMW: { /* m, v moments; bias-corrected step */
        if (c->optimizer == AEC_OPT_ADAMW) p = MUL(p, K(1 - c->lr * c->decay));
        int step = ir_add(g, (IrNode){.op = IR_STEP});
        int m1 = ADD(MUL(K(c->beta1), slot0), MUL(K(1 - c->beta1), gr));
        int v = ADD(MUL(K(c->beta2), slot1), MUL(K(1 - c->beta2), MUL(gr, gr)));
        int bc1 = SUB(K(1), ir_binary(g, IR_POW, K(c->beta1), step));
        int bc2 = SUB(K(1), ir_binary(g, IR_POW, K(c->beta2), step));
        int denom = ADD(DIV(ir_unary(g, IR_SQRT, v), ir_unary(g, IR_SQRT, bc2)), K(c->eps));
        p = SUB(p, DIV(MUL(DIV(lr, bc1), m1), denom));
        ir_output_tensor(g, OUT_OPTSTATE, m1, 0, tensor);
        ir_output_tensor(g, OUT_OPTSTATE, v, 1, tensor);
        break;
    }
    case AEC_OPT_RMSPROP: { /* v = α·v + (1-α)·g²; p -= lr·g / (√v + ε), optional momentum */
        int v = ADD(MUL(K(c->beta2), slot0), MUL(K(1 - c->beta2), MUL(gr, gr)));
        int upd = DIV(gr, ADD(ir_unary(g, IR_SQRT, v), K(c->eps)));
        ir_output_tensor(g, OUT_OPTSTATE, v, 0, tensor);
        if (c->momentum != 0) {
            upd = ADD(MUL(K(c->momentum), slot1), upd);
            ir_output_tensor(g, OUT_OPTSTATE, upd, 1, tensor);
        }
        p = SUB(p, MUL(lr, upd));
        break;
    }
    default: internal_error("unknown optimizer %d", c->optimizer);
    }
#undef K
#undef ADD
#undef SUB
#undef MUL
#undef DIV
    ir_output_tensor(g, OUT_PARAMS, p, 0, tensor);
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
        return ir_binary(g, IR_ADD, x, ir_binary(g, IR_MUL, ir_const(g, v),
                                                 rand_node(L, t, RAND_NORMAL, 0, STREAM_CORRUPT)));
    case CORRUPT_MASK: /* each value zeroed with probability P */
        return ir_binary(g, IR_MUL, x, rand_node(L, t, RAND_BERNOULLI, 1 - v, STREAM_CORRUPT));
    case CORRUPT_SALTPEPPER: { /* with probability P, 0 or 1 (even odds) */
        int keep = rand_node(L, t, RAND_BERNOULLI, 1 - v, STREAM_CORRUPT);
        int salt = rand_node(L, t, RAND_BERNOULLI, 0.5, STREAM_SALT);
        int hit = ir_binary(g, IR_SUB, ir_const(g, 1), keep);
        return ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, x, keep), ir_binary(g, IR_MUL, hit, salt));
    }
    }
    internal_error("corruption %d", m->corrupt);
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
    enum { MAX_STAGES = 64 };
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
    ensure(n > 0);
    long hl = units[n - 1];
    int M = w[n - 1];
    for (int l = n - 2; l >= 0; l--) {
        if (d[l] >= 0) { /* scale M's columns by d_l, per sample */
            int tiled = hl == 1 ? d[l] : ir_add(g, (IrNode){.op = IR_TILE, .in = {d[l]}, .m = hl});
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
static void model_objective(Lower *L) {
    Graph *g = L->g;
    const Model *m = L->m;
    int x = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_X});
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
static void stage_objective(Lower *L, int k) {
    Graph *g = L->g;
    ModelStage s = stage_of(L->m, k);
    int x = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_X});
    L->training = false;
    int h = layers(L, x, 0, s.in_to);
    L->training = g->kind == GRAPH_TRAIN;
    int c = layers(L, L->training ? corrupt(L, h) : h, s.enc_from, s.enc_to);
    int y = layers(L, c, s.dec_from, s.dec_to);
    ir_output(g, OUT_LOSS, loss(L, k == 1 ? L->m->loss : AEC_LOSS_MSE, y, h, false, k == 1 && L->m->masked), 0);
}

/* ------------------------------------------------------------ entry */

Graph *lower_model_stage(Arena *a, const Model *m, GraphKind kind, int stage) {
    Lower L = {ir_new(a, m, kind), m, kind == GRAPH_TRAIN, NULL};
    Graph *g = L.g;
    g->stage = stage;
    L.act = arena_alloc(a, sizeof(int) * (size_t)(m->nlayers + 1));
    for (int i = 0; i < m->nlayers; i++) L.act[i] = -1;
    ensure(stage == 0 || kind == GRAPH_TRAIN || kind == GRAPH_OPTIM);
    switch (kind) {
    case GRAPH_TRAIN:
    case GRAPH_EVAL:
        if (stage) stage_objective(&L, stage);
        else model_objective(&L);
        break;
    case GRAPH_ENCODE: {
        int x = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_X});
        int h = layers(&L, x, 0, m->n_encoder);
        if (m->latent_gaussian) h = dense(&L, &m->layers[m->latent_mu], h); /* the code is μ */
        ir_output(g, OUT_CODE, h, 0);
        break;
    }
    case GRAPH_DECODE: {
        int z = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_CODE});
        ir_output(g, OUT_XHAT, layers(&L, z, m->n_encoder, m->n_encoder + m->n_decoder), 0);
        break;
    }
    case GRAPH_OPTIM:
        if (!stage) optimizer(&L, -1);
        for (int t = 0; stage && t < m->ntensors; t++)
            if (model_trains(m, stage, t)) optimizer(&L, t);
        break;
    }
    g->n_forward = g->nnodes;
    ir_verify(g);
    return g;
}

Graph *lower_model(Arena *a, const Model *m, GraphKind kind) {
    return lower_model_stage(a, m, kind, 0);
}

/* Number of optimizer state slots (each as long as the trainable block). */
int lower_opt_slots(const Model *m) {
    switch (m->train.optimizer) {
    case AEC_OPT_MOMENTUM: return 1;
    case AEC_OPT_ADAM:
    case AEC_OPT_ADAMW: return 2;
    case AEC_OPT_RMSPROP: return m->train.momentum != 0 ? 2 : 1;
    default: return 0;
    }
}
