/* forward.c — the layers' forward ops in the IR.
 *
 * Takes the checked Model's layers and the graph being built (training or
 * inference mode); produces each layer's ops: dense (a GEMM and its bias),
 * activations, dropout (a RAND mask, training only), the image layers
 * (conv/deconv, pooling and upsampling as NEST ops carrying their layer's
 * geometry; per-channel values through CHAN_EXPAND/CHAN_SUM) and batch norm
 * (made of existing ops; in training it also outputs its new running
 * statistics, OUT_BUFFER). Views (flatten, reshape) produce no ops: an IR
 * value is n contiguous elements per sample whatever its shape (NCHW).
 * Every random draw has its own stream: the graph's stage in the high bits,
 * the use (a layer's index, or STREAM_*) in the low ones.
 */
#include <math.h>
#include <string.h>

#include "irb.h"
#include "lower.h"

int rand_node(Lower *L, IrType t, RandKind kind, double p, int use) {
    return ir_add(
        L->g,
        (IrNode){
            .op = IR_RAND, .type = t, .rand = kind, .p = p, .stream = L->g->stage << 16 | use});
}

int param(Lower *L, int tensor) {
    ensure(tensor >= 0);
    return ir_add(L->g, (IrNode){.op = IR_PARAM, .tensor = tensor});
}

int set_loc(Lower *L, int node, Loc loc) {
    if (!L->g->nodes[node].loc.line) L->g->nodes[node].loc = loc;
    return node;
}

int activation(Lower *L, int x, ActKind act, double alpha, Loc loc) {
    if (act == ACT_LINEAR) return x;
    return set_loc(L, ir_add(L->g, (IrNode){.op = IR_ACT, .in = {x}, .act = act, .alpha = alpha}),
                   loc);
}

/* y = x·Wᵀ + b, W [out, in]; a tied layer computes y = x·W_enc + b with the
 * encoder's W_enc [in_enc=out, out_enc=in]. */
int dense(Lower *L, const Layer *ly, int x) {
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

static int layer_index(Lower *L, const Layer *ly) {
    return (int)(ly - L->m->layers);
}

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
    int y = ir_add(g, (IrNode){.op = ly->kind == LY_CONV ? IR_CONV : IR_CONV_T,
                               .in = {x, w},
                               .layer = layer_index(L, ly)});
    set_loc(L, y, ly->loc);
    long hw = (long)ly->out.dim[1] * ly->out.dim[2];
    y = set_loc(L, ir_binary(g, IR_ADD, y, expand_chan(L, param(L, ly->bias), hw)), ly->loc);
    return activation(L, y, ly->act, ly->act_alpha, ly->loc);
}

static int image_op(Lower *L, const Layer *ly, IrOp op, int x) {
    return set_loc(L, ir_add(L->g, (IrNode){.op = op, .in = {x}, .layer = layer_index(L, ly)}),
                   ly->loc);
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
    default:
        internal_error("layer kind %d reached lowering (the checker should reject it)", ly->kind);
    }
}

int layers(Lower *L, int x, int from, int to) {
    for (int i = from; i < to; i++) {
        int y = layer(L, &L->m->layers[i], x);
        if (y != x && L->g->nodes[y].op == IR_ACT) L->act[i] = y;
        x = y;
    }
    return x;
}
