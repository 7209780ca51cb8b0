/* lower.c — from the checked model to the IR graph of one entry point.
 *
 * Takes a Model (shapes known, decoders expanded) and a GraphKind (and a
 * pretraining stage); produces the graph of that entry point: for train and
 * eval the forward pass and its objective (objective.c), for encode and
 * decode the encoder's or decoder's layers (forward.c), for optim the
 * optimizer update (optim.c); with the outputs the entry point writes.
 * Autodiff adds a train graph's backward pass.
 */
#include "lower.h"

/* ------------------------------------------------------------ entry */

Graph *lower_model_stage(Arena *a, const Model *m, GraphKind kind, int stage) {
    Lower L = {ir_new(a, m, kind), m, kind == GRAPH_TRAIN, NULL};
    Graph *g = L.g;
    g->stage = stage;
    L.act = arena_alloc(a, sizeof(int) * (size_t)(m->nlayers + 1));
    for (int i = 0; i < m->nlayers; i++)
        L.act[i] = -1;
    ensure(stage == 0 || kind == GRAPH_TRAIN || kind == GRAPH_OPTIM);
    switch (kind) {
    case GRAPH_TRAIN:
    case GRAPH_EVAL:
        if (stage)
            stage_objective(&L, stage);
        else
            model_objective(&L);
        break;
    case GRAPH_ENCODE: {
        int x = ir_add(g, (IrNode){.op = IR_INPUT, .role = INPUT_X});
        int h = layers(&L, x, 0, m->n_encoder);
        if (m->latent_gaussian) h = dense(&L, &m->layers[m->latent_mu], h); /* the code is μ */
        ir_output(g, OUT_CODE, h, 0);
        break;
    }
    case GRAPH_DECODE: {
        int z = ir_add(g, (IrNode){.op = IR_INPUT, .role = INPUT_CODE});
        ir_output(g, OUT_XHAT, layers(&L, z, m->n_encoder, m->n_encoder + m->n_decoder), 0);
        break;
    }
    case GRAPH_OPTIM:
        if (!stage) lower_optimizer(g, -1);
        for (int t = 0; stage && t < m->ntensors; t++)
            if (model_trains(m, stage, t)) lower_optimizer(g, t);
        break;
    }
    g->n_forward = g->nnodes;
    ir_verify(g);
    return g;
}

Graph *lower_model(Arena *a, const Model *m, GraphKind kind) {
    return lower_model_stage(a, m, kind, 0);
}
