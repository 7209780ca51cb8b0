/* autodiff.c — reverse-mode differentiation of the training graph.
 *
 * Takes a GRAPH_TRAIN graph whose OUT_LOSS is a scalar; appends, in reverse
 * node order, one vector-Jacobian product per op (one switch, in the order
 * of the op table) and adds an OUT_GRAD output per trainable tensor.
 * Only nodes that depend on a trainable parameter get a gradient.
 * Summing a gradient back to a broadcast operand's type happens in exactly
 * one place: grad_reduce_to.
 */
#include <string.h>

#include "aec.h"
#include "irb.h"

typedef struct Grad {
    Graph *g;
    int *grad;   /* per node: its accumulated gradient node, -1 if none */
    bool *needs; /* per node: depends on a trainable parameter */
} Grad;

/* Sum gradient `d` down to type `t`: over the batch for a row operand that
 * was broadcast, over everything for a scalar; broadcast a scalar/row up
 * when the target is larger (the gradient of a sum). */
static int grad_reduce_to(Graph *g, int d, IrType t) {
    IrType dt = g->nodes[d].type;
    if (dt.batched == t.batched && dt.n == t.n) return d;
    if (ir_is_scalar(t)) return ir_unary(g, IR_SUM_ALL, d);
    if (!t.batched && dt.batched && dt.n == t.n) return ir_unary(g, IR_SUM_ROWS, d);
    return ir_add(g, (IrNode){.op = IR_EXPAND, .in = {d}, .type = t});
}

static void accumulate(Grad *G, int node, int d) {
    if (!G->needs[node]) return;
    d = grad_reduce_to(G->g, d, G->g->nodes[node].type);
    G->grad[node] = G->grad[node] < 0 ? d : ir_binary(G->g, IR_ADD, G->grad[node], d);
}

/* An image op of layer `layer` on (a, b), or on a alone (b < 0). */
static int image2(Graph *g, IrOp op, int a, int b, int layer) {
    return ir_add(g, (IrNode){.op = op, .in = {a, b < 0 ? 0 : b}, .layer = layer});
}

/* The VJP of node i given its output gradient d. */
static void backward(Grad *G, int i, int d) {
    Graph *g = G->g;
    IrNode n = g->nodes[i]; /* a copy: adding nodes may move the array */
    int a = n.in[0], b = n.in[1];
    switch (n.op) {
    case IR_INPUT:
    case IR_PARAM:
    case IR_GRADIN:
    case IR_OPTSTATE:
    case IR_CONST:
    case IR_BATCH:
    case IR_STEP: break; /* leaves */
    case IR_GEMM:
        /* C = A'·B' with A' = op(A), B' = op(B): dA' = G·B'ᵀ, dB' = A'ᵀ·G,
         * transposed back when A or B entered transposed. dB' first: then
         * dA' (a layer's dX) is the product right before the loop that
         * reads it (f'(y)·dX of the layer below), which the fuser makes
         * that product's epilogue. */
        if (G->needs[b]) {
            if (!n.tb)
                accumulate(G, b, ir_gemm(g, a, d, !n.ta, 0, n.k, n.n, n.m));
            else
                accumulate(G, b, ir_gemm(g, d, a, 1, n.ta, n.n, n.k, n.m));
        }
        if (G->needs[a]) {
            if (!n.ta)
                accumulate(G, a, ir_gemm(g, d, b, 0, !n.tb, n.m, n.k, n.n));
            else
                accumulate(G, a, ir_gemm(g, b, d, n.tb, 1, n.k, n.m, n.n));
        }
        break;
    case IR_ADD: /* d(a+b) = d, d */
        accumulate(G, a, d);
        accumulate(G, b, d);
        break;
    case IR_SUB: /* d(a-b) = d, -d */
        accumulate(G, a, d);
        if (G->needs[b]) accumulate(G, b, ir_unary(g, IR_NEG, d));
        break;
    case IR_MUL: /* d(a*b) = d*b, d*a */
        if (G->needs[a]) accumulate(G, a, MUL(d, b));
        if (G->needs[b]) accumulate(G, b, MUL(d, a));
        break;
    case IR_DIV: /* d(a/b) = d/b, -d*a/b² */
        if (G->needs[a]) accumulate(G, a, DIV(d, b));
        if (G->needs[b]) accumulate(G, b, ir_unary(g, IR_NEG, DIV(MUL(d, i), b)));
        break;
    case IR_POW: /* d(a^b) = d*b*a^(b-1), d*a^b*log a */
        if (G->needs[a])
            accumulate(
                G, a,
                MUL(d, MUL(b, ir_binary(g, IR_POW, a, ir_binary(g, IR_SUB, b, ir_const(g, 1))))));
        if (G->needs[b]) accumulate(G, b, MUL(d, MUL(i, ir_unary(g, IR_LOG, a))));
        break;
    case IR_NEG: accumulate(G, a, ir_unary(g, IR_NEG, d)); break;          /* d(-a) = -d */
    case IR_ABS: accumulate(G, a, MUL(d, ir_unary(g, IR_SIGN, a))); break; /* d|a| = d*sign(a) */
    case IR_SIGN: break; /* zero almost everywhere */
    case IR_SQRT: accumulate(G, a, DIV(MUL(d, ir_const(g, 0.5)), i)); break; /* d√a = d/(2√a) */
    case IR_LOG: accumulate(G, a, DIV(d, a)); break;                         /* d log a = d/a */
    case IR_EXP: accumulate(G, a, MUL(d, i)); break;                         /* d e^a = d*e^a */
    case IR_EXPAND: accumulate(G, a, d); break; /* reduced back by grad_reduce_to */
    case IR_ACT: /* d f(a) = d * f'(a); f' from y = f(a) alone when it can be, so the
                  * pre-activation need not be kept for the backward pass */
        accumulate(G, a, MUL(d, ir_act_prime(g, i)));
        break;
    case IR_ACT_GRAD: /* the contractive term's f'(z): d f'(x) = d * f''(x), sent to x whole
                       * (y = f(x) is x's function); from y alone, d f'/dy to y */
        if (act_info[n.act].second_zero) break; /* f'' = 0 */
        accumulate(G, a,
                   MUL(d, ir_add(g, (IrNode){.op = IR_ACT_GRAD2,
                                             .in = {a, b},
                                             .act = n.act,
                                             .alpha = n.alpha,
                                             .from_y = n.from_y})));
        break;
    case IR_ACT_GRAD2: internal_error("third derivative of an activation");
    case IR_BCE: /* d bce(p, t)/dp; the target is data */
        if (G->needs[a]) accumulate(G, a, MUL(d, ir_binary(g, IR_BCE_GRAD, a, b)));
        ensure(!G->needs[b]);
        break;
    case IR_BCE_GRAD: internal_error("second derivative of bce");
    case IR_SUM_ROWS:                            /* broadcast back over the batch */
    case IR_SUM_ALL: accumulate(G, a, d); break; /* broadcast back over everything */
    case IR_RAND: break;                         /* no inputs: noise is data */
    case IR_TILE:                                /* each copy's gradient summed back */
        accumulate(G, a, ir_add(g, (IrNode){.op = IR_SUM_TILES, .in = {d}, .copies = n.copies}));
        break;
    case IR_SUM_TILES: /* copied back to every tile */
        accumulate(G, a, ir_add(g, (IrNode){.op = IR_TILE, .in = {d}, .copies = n.copies}));
        break;
    /* Image ops: each adjoint is an op of the same geometry (same layer). */
    case IR_CONV: /* y = W·im2col(x): dx = col2im(Wᵀ·dy), dW = Σ dy·im2col(x)ᵀ */
        if (G->needs[a]) accumulate(G, a, image2(g, IR_CONV_T, d, b, n.layer));
        if (G->needs[b]) accumulate(G, b, image2(g, IR_CONV_W, d, a, n.layer));
        break;
    case IR_CONV_T: /* y = col2im(Wᵀ·x): dx = W·im2col(dy), dW = Σ x·im2col(dy)ᵀ */
        if (G->needs[a]) accumulate(G, a, image2(g, IR_CONV, d, b, n.layer));
        if (G->needs[b]) accumulate(G, b, image2(g, IR_CONV_W, a, d, n.layer));
        break;
    case IR_CONV_W: internal_error("second derivative of a convolution");
    case IR_MAXPOOL: /* dy goes to the (first) maximum of each window */
        accumulate(G, a, image2(g, IR_MAXPOOL_GRAD, a, d, n.layer));
        break;
    case IR_MAXPOOL_GRAD: internal_error("second derivative of maxpool");
    case IR_AVGPOOL: accumulate(G, a, image2(g, IR_AVGPOOL_GRAD, d, -1, n.layer)); break;
    case IR_AVGPOOL_GRAD: accumulate(G, a, image2(g, IR_AVGPOOL, d, -1, n.layer)); break;
    case IR_UPSAMPLE: accumulate(G, a, image2(g, IR_UPSAMPLE_GRAD, d, -1, n.layer)); break;
    case IR_UPSAMPLE_GRAD: accumulate(G, a, image2(g, IR_UPSAMPLE, d, -1, n.layer)); break;
    case IR_CHAN_EXPAND: /* summed back over each channel's positions */
        accumulate(G, a, ir_add(g, (IrNode){.op = IR_CHAN_SUM, .in = {d}, .hw = n.hw}));
        break;
    case IR_CHAN_SUM: /* spread back over the positions */
        accumulate(G, a, ir_add(g, (IrNode){.op = IR_CHAN_EXPAND, .in = {d}, .hw = n.hw}));
        break;
    case IR_OP_COUNT: internal_error("bad op");
    }
}

void grad_build(Graph *g) {
    ensure(g->kind == GRAPH_TRAIN);
    const Model *m = g->model;
    int loss = -1;
    for (int i = 0; i < g->nouts; i++)
        if (g->outs[i].kind == OUT_LOSS) loss = g->outs[i].node;
    ensure(loss >= 0 && ir_is_scalar(g->nodes[loss].type));

    int n = g->nnodes;
    Grad G = {g, arena_alloc(g->arena, sizeof(int) * (size_t)n),
              arena_alloc(g->arena, sizeof(bool) * (size_t)n)};
    for (int i = 0; i < n; i++) {
        const IrNode *node = &g->nodes[i];
        G.grad[i] = -1;
        G.needs[i] =
            node->op == IR_PARAM && node->tensor >= 0 && model_trains(m, g->stage, node->tensor);
        for (int j = 0; j < ir_op_nin[node->op]; j++)
            G.needs[i] |= G.needs[node->in[j]];
    }
    G.grad[loss] = ir_const(g, 1.0);
    for (int i = loss; i >= 0; i--) {
        if (G.grad[i] < 0) continue;
        int first = g->nnodes;
        backward(&G, i, G.grad[i]);
        /* A node's backward pass comes from its spec line too (for -g). */
        for (int j = first; j < g->nnodes; j++)
            if (!g->nodes[j].loc.line) g->nodes[j].loc = g->nodes[i].loc;
    }

    /* One output per trainable tensor (a pretraining stage's own); an unused
     * tensor gets a zero gradient. */
    for (int t = 0; t < m->ntensors; t++) {
        if (!model_trains(m, g->stage, t)) continue;
        int p = ir_add(g, (IrNode){.op = IR_PARAM, .tensor = t});
        int d = p < n && G.grad[p] >= 0 ? G.grad[p] : ir_const(g, 0);
        d = grad_reduce_to(g, d, g->nodes[p].type);
        ir_output(g, OUT_GRAD, d, t);
    }
    ir_verify(g);
}
