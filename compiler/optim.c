/* optim.c — the optimizer update as IR, and the state it keeps.
 *
 * Takes the model's train { } settings and a GRAPH_OPTIM graph; produces
 * the update of the trainable block (or of one tensor's range of it, for a
 * pretraining stage) as elementwise ops over the whole block — so the fuser
 * turns it into one loop like any other elementwise work — with the new
 * optimizer state as outputs; and the number of state slots.
 */
#include "aec.h"
#include "irb.h"

/* Optimizer updates, PyTorch's formulas (torch.optim), over the flat block
 * of trainable parameters p with gradient gr — or, for a pretraining stage,
 * over the range of one `tensor` of it (-1: the whole block). `decay` is
 * PyTorch's weight_decay: L2 added to the gradient, decoupled for adamw. */
void lower_optimizer(Graph *g, int tensor) {
    const aec_train_config *c = &g->model->train;
    int p = ir_add(g, (IrNode){.op = IR_PARAM, .tensor = tensor});
    int gr = ir_add(g, (IrNode){.op = IR_GRADIN, .tensor = tensor});
    int lr = ir_const(g, c->lr);
    if (c->decay != 0 && c->optimizer != AEC_OPT_ADAMW) gr = ADD(gr, MUL(K(c->decay), p));
    int slot0 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .opt_slot = 0, .tensor = tensor});
    int slot1 = ir_add(g, (IrNode){.op = IR_OPTSTATE, .opt_slot = 1, .tensor = tensor});
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
    ir_output_tensor(g, OUT_PARAMS, p, 0, tensor);
}

/* Number of optimizer state slots (each as long as the trainable block). */
int lower_opt_slots(const Model *m) {
    const OptInfo *o = &opt_info[m->train.optimizer];
    return o->slots + (o->momentum_slot && m->train.momentum != 0);
}
