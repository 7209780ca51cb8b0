/* test_ops.c — every IR op's gradient rule, one op at a time.
 *
 * For each differentiable op, a train graph with that op at its centre:
 * operands made from the model's parameters (and data), y = op(...), the
 * loss Σ y² — autodiff's backward pass appended, fused, planned,
 * compiled in f64 through the real back end (cg_program, JIT) — and the
 * gradient loss_grad returns is compared with central differences of the
 * loss in every parameter. Operands are built from other ops where an op
 * needs a shape or a range of its own (a positive base, a probability, an
 * image); those ops are checked in their own cases too.
 *
 * The ops that are not differentiable, and why, are listed in
 * `not_differentiable`; the test fails when an op is in neither list, so a
 * new op must come with its case or its reason. test_op_table checks the
 * op table's columns against each other.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

/* Dense model: tensors 0..3 are encoder.0.weight [6, 6], encoder.0.bias [6],
 * decoder.0.weight [6, 6], decoder.0.bias [6]; x is [B, 6]. */
static const char dense_spec[] =
    "model ops { input 6; encoder { dense 6 }; decoder { dense 6 } }\n";
/* Image model: layer 0 conv 3x4x4 from 2x4x4, 1 maxpool (3x2x2), 2 avgpool
 * (3x1x1), 3 and 4 upsample, 5 deconv back to 2x4x4; tensors conv.weight,
 * conv.bias [3], deconv.weight, deconv.bias [2]. */
static const char image_spec[] = "model img { input 2x4x4\n"
                                 "  encoder { conv 3 3x3 pad=same; maxpool 2; avgpool 2 }\n"
                                 "  decoder { upsample 2; upsample 2; deconv 2 3x3 pad=same } }\n";
enum { B = 3 };

typedef struct Ctx {
    Graph *g;
    const Model *m;
} Ctx;

static int P(Ctx *c, int t) {
    return ir_add(c->g, (IrNode){.op = IR_PARAM, .tensor = t});
}
static int X(Ctx *c) {
    return ir_add(c->g, (IrNode){.op = IR_INPUT, .role = INPUT_X});
}
/* [B, 6]: the data plus a bias row, so it depends on a parameter. */
static int batched(Ctx *c, int t) {
    return ir_binary(c->g, IR_ADD, X(c), P(c, t));
}
static int positive(Ctx *c, int v) { /* v² + 0.5 */
    Graph *g = c->g;
    return ir_binary(g, IR_ADD, ir_binary(g, IR_MUL, v, v), ir_const(g, 0.5));
}
static int scalar(Ctx *c, int t) {
    return ir_unary(c->g, IR_SUM_ALL, P(c, t));
}
/* The image model's input with the deconv bias over each channel: [B, 32]. */
static int image(Ctx *c) {
    Graph *g = c->g;
    int b = ir_add(g, (IrNode){.op = IR_CHAN_EXPAND, .in = {P(c, 3)}, .hw = 16});
    return ir_binary(g, IR_ADD, X(c), b);
}
static int nest(Ctx *c, IrOp op, int a, int b, int layer) {
    return ir_add(c->g, (IrNode){.op = op, .in = {a, b < 0 ? 0 : b}, .layer = layer});
}
static int conv_out(Ctx *c) {
    return nest(c, IR_CONV, image(c), P(c, 0), 0);
} /* [B, 48] */

typedef struct Case {
    const char *name;
    IrOp op;    /* the op it checks */
    bool image; /* on the image model */
    int (*build)(Ctx *c);
} Case;

#define CASE(fn) static int fn(Ctx *c)
CASE(c_gemm_batch) {
    return ir_gemm(c->g, batched(c, 1), P(c, 0), 0, 1, IR_BATCH_DIM, 6, 6);
}
CASE(c_gemm_batch_nt) {
    return ir_gemm(c->g, batched(c, 1), P(c, 2), 0, 0, IR_BATCH_DIM, 6, 6);
}
CASE(c_gemm_tn) {
    return ir_gemm(c->g, P(c, 0), P(c, 2), 1, 0, 6, 6, 6);
}
CASE(c_gemm_tt) {
    return ir_gemm(c->g, P(c, 0), P(c, 2), 1, 1, 6, 6, 6);
}
CASE(c_gemm_rows) { /* -r dimensions: r rows per sample of a batched operand */
    int a = ir_add(c->g, (IrNode){.op = IR_TILE, .in = {batched(c, 1)}, .copies = 6}); /* [B, 36] */
    return ir_gemm(c->g, a, P(c, 0), 0, 1, -6, 6, 6);
}
CASE(c_add) {
    return ir_binary(c->g, IR_ADD, batched(c, 1), P(c, 3));
}
CASE(c_sub) {
    return ir_binary(c->g, IR_SUB, batched(c, 1), P(c, 3));
}
CASE(c_mul) {
    return ir_binary(c->g, IR_MUL, batched(c, 1), P(c, 3));
}
CASE(c_div) {
    return ir_binary(c->g, IR_DIV, batched(c, 1), positive(c, P(c, 3)));
}
CASE(c_pow) {
    return ir_binary(c->g, IR_POW, positive(c, scalar(c, 1)), scalar(c, 3));
}
CASE(c_neg) {
    return ir_unary(c->g, IR_NEG, batched(c, 1));
}
CASE(c_abs) {
    return ir_unary(c->g, IR_ABS, batched(c, 1));
}
CASE(c_sign) {
    return ir_binary(c->g, IR_MUL, ir_unary(c->g, IR_SIGN, batched(c, 1)), batched(c, 3));
}
CASE(c_sqrt) {
    return ir_unary(c->g, IR_SQRT, positive(c, batched(c, 1)));
}
CASE(c_log) {
    return ir_unary(c->g, IR_LOG, positive(c, batched(c, 1)));
}
CASE(c_exp) {
    return ir_unary(c->g, IR_EXP, batched(c, 1));
}
CASE(c_expand_row) {
    return ir_add(c->g, (IrNode){.op = IR_EXPAND, .in = {P(c, 1)}, .type = {true, 6}});
}
CASE(c_expand_scalar) {
    return ir_add(c->g, (IrNode){.op = IR_EXPAND, .in = {scalar(c, 1)}, .type = {false, 6}});
}
CASE(c_bce) { /* p in (0, 1): data in (0.05, 0.45) plus a bias in (0.05, 0.45) */
    return ir_binary(c->g, IR_BCE, batched(c, 1), X(c));
}
CASE(c_sum_rows) {
    return ir_unary(c->g, IR_SUM_ROWS, ir_binary(c->g, IR_MUL, batched(c, 1), batched(c, 3)));
}
CASE(c_sum_all) {
    return ir_unary(c->g, IR_SUM_ALL, ir_binary(c->g, IR_MUL, batched(c, 1), batched(c, 3)));
}
CASE(c_tile) {
    return ir_add(c->g, (IrNode){.op = IR_TILE, .in = {batched(c, 1)}, .copies = 3});
}
CASE(c_sum_tiles) {
    int t = ir_add(c->g, (IrNode){.op = IR_TILE, .in = {batched(c, 1)}, .copies = 2}); /* [B, 12] */
    int u = ir_binary(c->g, IR_MUL, t,
                      ir_add(c->g, (IrNode){.op = IR_TILE, .in = {batched(c, 3)}, .copies = 2}));
    return ir_add(c->g, (IrNode){.op = IR_SUM_TILES, .in = {u}, .copies = 3}); /* [B, 4] */
}
CASE(c_chan_expand) {
    return ir_binary(c->g, IR_MUL, image(c), X(c));
}
CASE(c_chan_sum) {
    return ir_add(
        c->g,
        (IrNode){.op = IR_CHAN_SUM, .in = {ir_binary(c->g, IR_MUL, P(c, 1), P(c, 3))}, .hw = 2});
}
CASE(c_conv) {
    return conv_out(c);
}
CASE(c_conv_t) {
    return nest(c, IR_CONV_T, conv_out(c), P(c, 2), 5);
}
CASE(c_maxpool) {
    return nest(c, IR_MAXPOOL, conv_out(c), -1, 1);
}
CASE(c_avgpool) {
    return nest(c, IR_AVGPOOL, nest(c, IR_MAXPOOL, conv_out(c), -1, 1), -1, 2);
}
CASE(c_avgpool_grad) {
    int b = ir_add(c->g, (IrNode){.op = IR_EXPAND, .in = {P(c, 1)}, .type = {true, 3}});
    return nest(c, IR_AVGPOOL_GRAD, ir_binary(c->g, IR_MUL, b, b), -1, 2);
}
CASE(c_upsample) {
    int b = ir_add(c->g, (IrNode){.op = IR_EXPAND, .in = {P(c, 1)}, .type = {true, 3}});
    return nest(c, IR_UPSAMPLE, ir_binary(c->g, IR_MUL, b, b), -1, 3);
}
CASE(c_upsample_grad) {
    return nest(c, IR_UPSAMPLE_GRAD, nest(c, IR_MAXPOOL, conv_out(c), -1, 1), -1, 3);
}

static const Case cases[] = {
    {"gemm [B,6]·Wᵀ", IR_GEMM, false, c_gemm_batch},
    {"gemm [B,6]·W", IR_GEMM, false, c_gemm_batch_nt},
    {"gemm Aᵀ·B", IR_GEMM, false, c_gemm_tn},
    {"gemm Aᵀ·Bᵀ", IR_GEMM, false, c_gemm_tt},
    {"gemm of 6 rows per sample", IR_GEMM, false, c_gemm_rows},
    {"add", IR_ADD, false, c_add},
    {"sub", IR_SUB, false, c_sub},
    {"mul", IR_MUL, false, c_mul},
    {"div", IR_DIV, false, c_div},
    {"pow", IR_POW, false, c_pow},
    {"neg", IR_NEG, false, c_neg},
    {"abs", IR_ABS, false, c_abs},
    {"sign (its gradient is 0)", IR_SIGN, false, c_sign},
    {"sqrt", IR_SQRT, false, c_sqrt},
    {"log", IR_LOG, false, c_log},
    {"exp", IR_EXP, false, c_exp},
    {"expand a row", IR_EXPAND, false, c_expand_row},
    {"expand a scalar", IR_EXPAND, false, c_expand_scalar},
    {"bce", IR_BCE, false, c_bce},
    {"sum_rows", IR_SUM_ROWS, false, c_sum_rows},
    {"sum_all", IR_SUM_ALL, false, c_sum_all},
    {"tile", IR_TILE, false, c_tile},
    {"sum_tiles", IR_SUM_TILES, false, c_sum_tiles},
    {"chan_expand", IR_CHAN_EXPAND, true, c_chan_expand},
    {"chan_sum", IR_CHAN_SUM, false, c_chan_sum},
    {"conv", IR_CONV, true, c_conv},
    {"conv_t", IR_CONV_T, true, c_conv_t},
    {"maxpool", IR_MAXPOOL, true, c_maxpool},
    {"avgpool", IR_AVGPOOL, true, c_avgpool},
    {"avgpool_grad", IR_AVGPOOL_GRAD, true, c_avgpool_grad},
    {"upsample", IR_UPSAMPLE, true, c_upsample},
    {"upsample_grad", IR_UPSAMPLE_GRAD, true, c_upsample_grad},
};

/* The ops without a gradient rule of their own, and why. */
static const struct {
    IrOp op;
    const char *why;
} not_differentiable[] = {
    {IR_INPUT, "a leaf: data"},
    {IR_PARAM, "a leaf: the variable itself"},
    {IR_GRADIN, "a leaf of the optimizer graph, which is not differentiated"},
    {IR_OPTSTATE, "a leaf of the optimizer graph, which is not differentiated"},
    {IR_CONST, "a leaf: a constant"},
    {IR_BATCH, "a leaf: the batch size"},
    {IR_STEP, "a leaf: the step"},
    {IR_RAND, "no inputs: noise is data"},
    {IR_BCE_GRAD, "only in backward passes; nothing differentiates twice through bce"},
    {IR_ACT_GRAD2, "the second derivative, only in the contractive term's backward pass"},
    {IR_CONV_W, "only in backward passes (a convolution's weight gradient)"},
    {IR_MAXPOOL_GRAD, "only in backward passes (maxpool's)"},
};

/* ACT and ACT_GRAD are checked for every activation, in test_activations. */
static bool covered(IrOp op) {
    if (op == IR_ACT || op == IR_ACT_GRAD) return true;
    for (int i = 0; i < countof(cases); i++)
        if (cases[i].op == op) return true;
    return false;
}

/* The op's graph through every pass and the back end; the gradient error:
 * max |analytic - central difference| over the parameters, relative to
 * the largest gradient (at least 1). */
static double check_graph(const char *spec, int (*build)(Ctx *, const void *), const void *arg,
                          const char *what) {
    Arena *a = arena_new();
    Model *m = tu_model(a, "ops.ae", spec);
    assert_non_null(m);
    Program *p = compile_model(a, m);
    Graph *g = ir_new(a, m, GRAPH_TRAIN);
    Ctx c = {g, m};
    int y = build(&c, arg);
    ir_output(g, OUT_LOSS, ir_unary(g, IR_SUM_ALL, ir_binary(g, IR_MUL, y, y)), 0);
    g->n_forward = g->nnodes;
    grad_build(g);
    ir_verify(g);
    Entry *e = &p->entries[0];
    ensure(e->kind == GRAPH_TRAIN && e->stage == 0);
    e->graph = g;
    e->fusion = fuse_graph(a, g);
    e->plan = plan_memory(a, e->fusion);
    plan_verify(e->plan);
    if (e->plan->ws_batch > p->ws_batch) p->ws_batch = e->plan->ws_batch;
    if (e->plan->ws_const > p->ws_const) p->ws_const = e->plan->ws_const;
    CodegenOptions opt = {.f64 = true, .opt_level = 1};
    Codegen *cg = cg_program(p, &opt);
    assert_non_null(cg);
    const aec_model *t = cg_jit_lookup(cg, arena_printf(a, "%s_model", cg_prefix(cg)));
    assert_non_null(t);

    long np = t->trainable_count, n = t->input_size;
    double *params = tu_alloc((size_t)t->param_count * 8), *x = tu_alloc((size_t)(B * n) * 8);
    double *grad = tu_alloc((size_t)np * 8), *scratch = tu_alloc((size_t)np * 8);
    void *ws = tu_alloc(t->workspace_size(B));
    uint64_t s = 12345;
    for (long i = 0; i < t->param_count; i++)
        params[i] = 0.05 + 0.4 * tu_rand(&s);
    for (long i = 0; i < B * n; i++)
        x[i] = 0.05 + 0.4 * tu_rand(&s);
    double loss;
    assert_int_equal(t->loss_grad(params, x, NULL, B, 1, &loss, grad, ws), AEC_OK);
    if (!isfinite(loss)) fail_msg("%s: loss %g", what, loss);
    double worst = 0, scale = 1;
    for (long i = 0; i < np; i++) {
        const double h = 1e-6, keep = params[i];
        double lp, lm;
        params[i] = keep + h;
        assert_int_equal(t->loss_grad(params, x, NULL, B, 1, &lp, scratch, ws), AEC_OK);
        params[i] = keep - h;
        assert_int_equal(t->loss_grad(params, x, NULL, B, 1, &lm, scratch, ws), AEC_OK);
        params[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (getenv("OPS_DEBUG") && fabs(fd - grad[i]) > 1e-6)
            fprintf(stderr, "  %s p%ld: fd %g grad %g\n", what, i, fd, grad[i]);
        worst = fmax(worst, fabs(fd - grad[i]));
        scale = fmax(scale, fabs(fd));
    }
    free(params), free(x), free(grad), free(scratch), free(ws);
    cg_free(cg);
    arena_free(a);
    return worst / scale;
}

static int build_case(Ctx *c, const void *arg) {
    return ((const Case *)arg)->build(c);
}

static void test_ops(void **state) {
    (void)state;
    int failed = 0;
    for (int i = 0; i < countof(cases); i++) {
        const Case *k = &cases[i];
        double err = check_graph(k->image ? image_spec : dense_spec, build_case, k, k->name);
        if (err > 1e-6) {
            fprintf(stderr, "%s: gradient error %.3g\n", k->name, err);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

typedef struct ActCase {
    ActKind act;
    double alpha;
    bool grad;   /* ACT_GRAD (f', the contractive term's) instead of ACT */
    bool from_y; /* ACT_GRAD computed from (y, y) */
} ActCase;

static int build_act(Ctx *c, const void *arg) {
    const ActCase *k = arg;
    Graph *g = c->g;
    /* centred on 0, so the kinks of relu-like activations are inside the range */
    int x = ir_binary(g, IR_SUB, batched(c, 1), ir_const(g, 0.5));
    x = ir_binary(g, IR_MUL, x, ir_const(g, 4));
    int y = ir_add(g, (IrNode){.op = IR_ACT, .in = {x}, .act = k->act, .alpha = k->alpha});
    if (!k->grad) return y;
    return ir_add(g, (IrNode){.op = IR_ACT_GRAD,
                              .in = {k->from_y ? y : x, y},
                              .act = k->act,
                              .alpha = k->alpha,
                              .from_y = k->from_y});
}

/* ACT for every activation (and a non-default parameter), and ACT_GRAD —
 * whose rule is ACT_GRAD2 — from (x, y) and, where f' follows from y, from (y, y). */
static void test_activations(void **state) {
    (void)state;
    int failed = 0, n = 0;
    for (int act = 0; act < ACT_COUNT; act++) {
        if (act == ACT_LINEAR) continue; /* never an op: lowering leaves x as it is */
        double alphas[2] = {act_default_alpha(act), 0.3};
        for (int a = 0; a < (act_takes_param(act) ? 2 : 1); a++)
            for (int kind = 0; kind < 3; kind++) {
                ActCase k = {act, alphas[a], kind > 0, kind == 2};
                if (k.from_y && !act_prime_from_y(act, k.alpha)) continue;
                char what[96];
                snprintf(what, sizeof what, "%s %s=%g%s", kind ? "act_grad" : "act", act_names[act],
                         k.alpha, k.from_y ? " from y" : "");
                double err = check_graph(dense_spec, build_act, &k, what);
                n++;
                if (err > 1e-6) {
                    fprintf(stderr, "%s: gradient error %.3g\n", what, err);
                    failed++;
                }
            }
    }
    assert_true(n >= 20);
    assert_int_equal(failed, 0);
}

/* The op table's columns agree with its classes: a reduction, and only a
 * reduction, has an index map; only a leaf reads an argument, and every
 * leaf that is a tensor of a block does; only a binary elementwise op has a
 * unit, and only an op with a unit is marked commuting. */
static void test_op_table(void **state) {
    (void)state;
    for (int op = 0; op < IR_OP_COUNT; op++) {
        IrOpClass c = ir_op_class[op];
        const char *name = ir_op_names[op];
        if ((c == OPC_RED) != (ir_op_red[op] != RED_NONE))
            fail_msg("op %s: an index map iff it is a reduction", name);
        if (ir_op_leaf[op] != BASE_NONE && c != OPC_LEAF) fail_msg("op %s: not a leaf", name);
        if (c == OPC_LEAF && (ir_op_attrs[op] & AT_TENSOR) && ir_op_leaf[op] == BASE_NONE)
            fail_msg("op %s: a tensor leaf reads no argument", name);
        if (!isnan(ir_op_unit[op]) && !(c == OPC_EW && ir_op_nin[op] == 2))
            fail_msg("op %s: a unit but no binary elementwise op", name);
        if (ir_op_commutes[op] && isnan(ir_op_unit[op])) fail_msg("op %s: commutes, no unit", name);
    }
    /* What the columns say, on the ops they fold and place. */
    assert_true(ir_op_unit[IR_ADD] == 0 && ir_op_commutes[IR_ADD]);
    assert_true(ir_op_unit[IR_DIV] == 1 && !ir_op_commutes[IR_DIV]);
    assert_int_equal(ir_op_leaf[IR_OPTSTATE], BASE_OPT);
    assert_int_equal(ir_op_red[IR_CHAN_SUM], RED_CHAN);
}

/* Every op has a case or a reason, and not both. */
static void test_every_op_accounted(void **state) {
    (void)state;
    for (int op = 0; op < IR_OP_COUNT; op++) {
        int listed = 0;
        for (int i = 0; i < countof(not_differentiable); i++)
            listed += (int)not_differentiable[i].op == op;
        if (covered((IrOp)op) == (listed == 1) || listed > 1)
            fail_msg("op %s: %s", ir_op_names[op],
                     covered(op) ? "has a case and is listed as not differentiable"
                                 : "has no gradient case and no reason in not_differentiable");
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_every_op_accounted),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
