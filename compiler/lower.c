/* lower.c — from the checked model to the IR graph of one entry point.
 *
 * Takes a Model (shapes known, decoders expanded) and a GraphKind; produces
 * the forward ops of the layers the entry point runs, the loss for the
 * train/eval graphs, and the outputs. The optimizer update is lowered here
 * too, as elementwise ops over the whole trainable block, so the fuser turns
 * it into one loop like any other elementwise work.
 * Views (flatten, reshape) produce no ops: an IR value is n contiguous
 * elements per sample whatever its shape.
 */
#include <string.h>

#include "aec.h"

typedef struct Lower {
    Graph *g;
    const Model *m;
    bool training;
} Lower;

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

static int layer(Lower *L, const Layer *ly, int x) {
    switch (ly->kind) {
    case LY_DENSE: return dense(L, ly, x);
    case LY_ACT: return activation(L, x, ly->act, ly->act_alpha, ly->loc);
    case LY_FLATTEN:
    case LY_RESHAPE: return x;
    default: internal_error("layer kind %d reached lowering (the checker should reject it)", ly->kind);
    }
}

static int layers(Lower *L, int x, int from, int to) {
    for (int i = from; i < to; i++) x = layer(L, &L->m->layers[i], x);
    return x;
}

/* The loss is the mean over every element of the batch, as PyTorch's
 * reduction='mean': sum / (batch * n). */
static int loss(Lower *L, int y, int target) {
    Graph *g = L->g;
    long n = shape_numel(L->m->input);
    int inv = ir_binary(g, IR_DIV, ir_const(g, 1.0 / (double)n), ir_add(g, (IrNode){.op = IR_BATCH}));
    int d = ir_binary(g, IR_SUB, y, target), per_elem;
    switch (L->m->loss) {
    case AEC_LOSS_MSE:
    case AEC_LOSS_RMSE: per_elem = ir_binary(g, IR_MUL, d, d); break;
    case AEC_LOSS_MAE: per_elem = ir_unary(g, IR_ABS, d); break;
    case AEC_LOSS_BCE: per_elem = ir_binary(g, IR_BCE, y, target); break;
    default: internal_error("unknown loss %d", L->m->loss);
    }
    int mean = ir_binary(g, IR_MUL, ir_unary(g, IR_SUM_ALL, per_elem), inv);
    return L->m->loss == AEC_LOSS_RMSE ? ir_unary(g, IR_SQRT, mean) : mean;
}

/* Optimizer updates, PyTorch's formulas (torch.optim), over the flat block
 * of trainable parameters p with gradient gr. `decay` is PyTorch's
 * weight_decay: L2 added to the gradient, decoupled for adamw. */
static void optimizer(Lower *L) {
    Graph *g = L->g;
    const aec_train_config *c = &L->m->train;
    int p = ir_add(g, (IrNode){.op = IR_PARAM, .tensor = -1});
    int gr = ir_add(g, (IrNode){.op = IR_GRADIN});
    int lr = ir_const(g, c->lr);
#define K(v) ir_const(g, (v))
#define ADD(a, b) ir_binary(g, IR_ADD, a, b)
#define SUB(a, b) ir_binary(g, IR_SUB, a, b)
#define MUL(a, b) ir_binary(g, IR_MUL, a, b)
#define DIV(a, b) ir_binary(g, IR_DIV, a, b)
    if (c->decay != 0 && c->optimizer != AEC_OPT_ADAMW) gr = ADD(gr, MUL(K(c->decay), p));
    int slot0 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .slot = 0});
    int slot1 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .slot = 1});
    switch (c->optimizer) {
    case AEC_OPT_SGD: p = SUB(p, MUL(lr, gr)); break;
    case AEC_OPT_MOMENTUM: { /* buf = μ·buf + g; p -= lr·buf (buf starts at 0, so at g) */
        int buf = ADD(MUL(K(c->momentum), slot0), gr);
        ir_output(g, OUT_OPTSTATE, buf, 0);
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
        ir_output(g, OUT_OPTSTATE, m1, 0);
        ir_output(g, OUT_OPTSTATE, v, 1);
        break;
    }
    case AEC_OPT_RMSPROP: { /* v = α·v + (1-α)·g²; p -= lr·g / (√v + ε), optional momentum */
        int v = ADD(MUL(K(c->beta2), slot0), MUL(K(1 - c->beta2), MUL(gr, gr)));
        int upd = DIV(gr, ADD(ir_unary(g, IR_SQRT, v), K(c->eps)));
        ir_output(g, OUT_OPTSTATE, v, 0);
        if (c->momentum != 0) {
            upd = ADD(MUL(K(c->momentum), slot1), upd);
            ir_output(g, OUT_OPTSTATE, upd, 1);
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
    ir_output(g, OUT_PARAMS, p, 0);
}

Graph *lower_model(Arena *a, const Model *m, GraphKind kind) {
    Lower L = {ir_new(a, m, kind), m, kind == GRAPH_TRAIN};
    Graph *g = L.g;
    switch (kind) {
    case GRAPH_TRAIN:
    case GRAPH_EVAL: {
        int x = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_X});
        int code = layers(&L, x, 0, m->n_encoder);
        int y = layers(&L, code, m->n_encoder, m->nlayers);
        ir_output(g, OUT_LOSS, loss(&L, y, x), 0);
        if (kind == GRAPH_EVAL) ir_output(g, OUT_XHAT, y, 0);
        break;
    }
    case GRAPH_ENCODE: {
        int x = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_X});
        ir_output(g, OUT_CODE, layers(&L, x, 0, m->n_encoder), 0);
        break;
    }
    case GRAPH_DECODE: {
        int z = ir_add(g, (IrNode){.op = IR_INPUT, .slot = INPUT_CODE});
        ir_output(g, OUT_XHAT, layers(&L, z, m->n_encoder, m->nlayers), 0);
        break;
    }
    case GRAPH_OPTIM: optimizer(&L); break;
    }
    g->n_forward = g->nnodes;
    ir_verify(g);
    return g;
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
