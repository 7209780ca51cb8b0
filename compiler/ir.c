/* ir.c — the graph of tensor ops every later stage works on.
 *
 * Takes node prototypes from lower.c and autodiff.c; produces a Graph whose
 * node array is in creation order, hence topological. ir_add infers each
 * node's type and hash-conses on (op, inputs, attributes), so building the
 * same expression twice yields one node: common-subexpression elimination
 * for free. ir_verify re-checks every invariant after each pass.
 */
#include <math.h>
#include <string.h>

#include "aec.h"

/* IR_OPS, one array per column, indexed by op. */
#define COL_NAME(e, name, nin, cls, attrs, red, leaf, unit, comm) name,
#define COL_NIN(e, name, nin, cls, attrs, red, leaf, unit, comm) nin,
#define COL_CLASS(e, name, nin, cls, attrs, red, leaf, unit, comm) OPC_##cls,
#define COL_ATTRS(e, name, nin, cls, attrs, red, leaf, unit, comm) attrs,
#define COL_RED(e, name, nin, cls, attrs, red, leaf, unit, comm) RED_##red,
#define COL_LEAF(e, name, nin, cls, attrs, red, leaf, unit, comm) BASE_##leaf,
#define COL_UNIT(e, name, nin, cls, attrs, red, leaf, unit, comm) unit,
#define COL_COMM(e, name, nin, cls, attrs, red, leaf, unit, comm) comm,
const char *const ir_op_names[IR_OP_COUNT] = {IR_OPS(COL_NAME)};
const int ir_op_nin[IR_OP_COUNT] = {IR_OPS(COL_NIN)};
const IrOpClass ir_op_class[IR_OP_COUNT] = {IR_OPS(COL_CLASS)};
const unsigned ir_op_attrs[IR_OP_COUNT] = {IR_OPS(COL_ATTRS)};
const IrRedMap ir_op_red[IR_OP_COUNT] = {IR_OPS(COL_RED)};
const BufBase ir_op_leaf[IR_OP_COUNT] = {IR_OPS(COL_LEAF)};
const double ir_op_unit[IR_OP_COUNT] = {IR_OPS(COL_UNIT)};
const bool ir_op_commutes[IR_OP_COUNT] = {IR_OPS(COL_COMM)};

Graph *ir_new(Arena *a, const Model *m, GraphKind kind) {
    Graph *g = arena_alloc(a, sizeof *g);
    g->kind = kind;
    g->model = m;
    g->arena = a;
    g->hash_cap = 1024;
    g->hash = arena_alloc(a, sizeof(int) * (size_t)g->hash_cap);
    return g;
}

bool ir_is_scalar(IrType t) {
    return !t.batched && t.n == 1;
}

static bool type_eq(IrType a, IrType b) {
    return a.batched == b.batched && a.n == b.n;
}

/* Elementwise broadcasting: a scalar goes with anything, a row [n] with a
 * batch [B, n]. Returns false when the two types do not broadcast. */
static bool broadcast(IrType a, IrType b, IrType *out) {
    if (ir_is_scalar(a))
        *out = b;
    else if (ir_is_scalar(b) || type_eq(a, b))
        *out = a;
    else if (a.n == b.n)
        *out = (IrType){true, a.n};
    else
        return false;
    return true;
}

/* The matrix an operand of a GEMM must be, rows x cols, given its type:
 * rows -r (r·B) are r rows of every sample of a batched value. */
static bool gemm_operand_ok(IrType t, long rows, long cols) {
    if (rows < 0) return t.batched && t.n == -rows * cols;
    return !t.batched && t.n == rows * cols;
}

/* ------------------------------------------------------ image geometry */

ConvGeom conv_geom(const Layer *l) {
    ConvGeom g = {
        .kh = l->kh, .kw = l->kw, .stride = l->stride, .pad_h = l->pad, .pad_w = l->pad_w};
    /* A deconv is the adjoint of the conv from its output to its input. */
    const Shape *img = l->kind == LY_DECONV ? &l->out : &l->in;
    const Shape *other = l->kind == LY_DECONV ? &l->in : &l->out;
    g.c = img->dim[0], g.h = img->dim[1], g.w = img->dim[2];
    g.r = other->dim[0], g.oh = other->dim[1], g.ow = other->dim[2];
    if (l->kind != LY_CONV && l->kind != LY_DECONV) g.pad_h = g.pad_w = 0;
    return g;
}

bool conv_geom_is_identity(const ConvGeom *g) {
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad_h == 0 && g->pad_w == 0 &&
           g->oh == g->h && g->ow == g->w;
}

/* The type of an image op, checking its operands against its layer's geometry. */
static IrType image_type(const Graph *g, const IrNode *n, IrType a, IrType b) {
    ensure(n->layer >= 0 && n->layer < g->model->nlayers);
    ConvGeom q = conv_geom(&g->model->layers[n->layer]);
    long img = (long)q.c * q.h * q.w, cols = (long)q.r * q.oh * q.ow;
    long wsize = (long)q.r * q.c * q.kh * q.kw;
    bool ok;
    IrType t;
    switch (n->op) {
    case IR_CONV: /* image, weight -> r channels */
        ok = a.batched && a.n == img && !b.batched && b.n == wsize, t = (IrType){true, cols};
        break;
    case IR_CONV_T: /* r channels, weight -> image */
        ok = a.batched && a.n == cols && !b.batched && b.n == wsize, t = (IrType){true, img};
        break;
    case IR_CONV_W: /* r channels, image -> weight */
        ok = a.batched && a.n == cols && b.batched && b.n == img, t = (IrType){false, wsize};
        break;
    case IR_MAXPOOL_GRAD:
        ok = a.batched && a.n == img && b.batched && b.n == (long)q.c * q.oh * q.ow;
        t = (IrType){true, img};
        break;
    case IR_MAXPOOL:
    case IR_AVGPOOL:
    case IR_UPSAMPLE:
        ok = a.batched && a.n == img, t = (IrType){true, (long)q.c * q.oh * q.ow};
        break;
    default: /* the adjoints of pooling and upsampling */
        ok = a.batched && a.n == (long)q.c * q.oh * q.ow, t = (IrType){true, img};
        break;
    }
    if (!ok)
        internal_error("%s: operands [%s%ld], [%s%ld] do not fit layer %d", ir_op_names[n->op],
                       a.batched ? "B," : "", a.n, b.batched ? "B," : "", b.n, n->layer);
    return t;
}

/* Per-channel values: [C] expanded over hw positions, or summed back. */
static IrType chan_type(const IrNode *n, IrType a) {
    if (a.batched || n->hw < 1 || (n->op == IR_CHAN_SUM && a.n % n->hw))
        internal_error("%s of [%s%ld] by %ld", ir_op_names[n->op], a.batched ? "B," : "", a.n,
                       n->hw);
    return (IrType){false, n->op == IR_CHAN_SUM ? a.n / n->hw : a.n * n->hw};
}

/* A leaf's type: a scalar (no argument), a tensor of a block (or the
 * block's trainable part), or the data: x and its mask, or the code. */
static IrType leaf_type(const Model *m, const IrNode *n) {
    if (ir_op_leaf[n->op] == BASE_NONE) return (IrType){false, 1};
    if (ir_op_attrs[n->op] & AT_TENSOR)
        return (IrType){false, n->tensor >= 0 ? m->tensors[n->tensor].numel : m->trainable_count};
    return (IrType){true, n->role == INPUT_CODE ? shape_numel(m->code) : shape_numel(m->input)};
}

/* A reduction's type: its index map's image of its input's. */
static IrType red_type(const IrNode *n, IrType a) {
    switch (ir_op_red[n->op]) {
    case RED_COLS: /* [B, n] -> [n] */
        if (!a.batched) internal_error("sum_rows of an unbatched value");
        return (IrType){false, a.n};
    case RED_ALL: return (IrType){false, 1};
    case RED_TILES: /* [B, m·n] -> [B, n] */
        if (!a.batched || n->copies < 1 || a.n % n->copies)
            internal_error("sum_tiles of %ld by %ld", a.n, n->copies);
        return (IrType){true, a.n / n->copies};
    case RED_CHAN: return chan_type(n, a); /* [C·hw] -> [C] */
    default: internal_error("%s has no index map", ir_op_names[n->op]);
    }
}

static IrType infer_type(const Graph *g, const IrNode *n) {
    const Model *m = g->model;
    IrType a = n->in[0] >= 0 && ir_op_nin[n->op] > 0 ? g->nodes[n->in[0]].type : (IrType){0};
    IrType b = ir_op_nin[n->op] > 1 ? g->nodes[n->in[1]].type : (IrType){0};
    IrType t;
    if (ir_op_attrs[n->op] & AT_GIVEN_TYPE) return n->type;            /* given by the caller */
    if (ir_op_class[n->op] == OPC_NEST) return image_type(g, n, a, b); /* shapes of its layer */
    if (ir_op_class[n->op] == OPC_RED) return red_type(n, a);          /* by its index map */
    if (ir_op_class[n->op] == OPC_LEAF) return leaf_type(m, n);        /* by what it reads */
    switch (n->op) {
    case IR_GEMM: {
        long ar = n->ta ? n->k : n->m, ac = n->ta ? n->m : n->k;
        long br = n->tb ? n->n : n->k, bc = n->tb ? n->k : n->n;
        if (!gemm_operand_ok(a, ar, ac) || !gemm_operand_ok(b, br, bc) || n->n < 0)
            internal_error("gemm operands do not match m=%ld n=%ld k=%ld", n->m, n->n, n->k);
        return n->m < 0 ? (IrType){true, -n->m * n->n} : (IrType){false, n->m * n->n};
    }
    case IR_TILE:
        if (!a.batched || n->copies < 1) internal_error("tile of an unbatched value");
        return (IrType){true, a.n * n->copies};
    case IR_CHAN_EXPAND: return chan_type(n, a);
    default: break;
    }
    if (ir_op_nin[n->op] == 1) return a;
    if (!broadcast(a, b, &t))
        internal_error("%s: types [%s%ld] and [%s%ld] do not broadcast", ir_op_names[n->op],
                       a.batched ? "B," : "", a.n, b.batched ? "B," : "", b.n);
    return t;
}

/* The 64-bit words of attribute `at` of node n (at most 3), for hashing and equality. */
static int attr_words(const IrNode *n, int at, uint64_t *w) {
    switch (at) {
    case IR_ATTR_BIT_LAYER: w[0] = (uint64_t)n->layer; return 1;
    case IR_ATTR_BIT_ROLE: w[0] = (uint64_t)n->role; return 1;
    case IR_ATTR_BIT_OPT_SLOT: w[0] = (uint64_t)n->opt_slot; return 1;
    case IR_ATTR_BIT_TENSOR: w[0] = (uint64_t)n->tensor; return 1;
    case IR_ATTR_BIT_RAND: w[0] = (uint64_t)n->rand; return 1;
    case IR_ATTR_BIT_STREAM: w[0] = (uint64_t)n->stream; return 1;
    case IR_ATTR_BIT_P: memcpy(w, &n->p, 8); return 1;
    case IR_ATTR_BIT_COPIES: w[0] = (uint64_t)n->copies; return 1;
    case IR_ATTR_BIT_HW: w[0] = (uint64_t)n->hw; return 1;
    case IR_ATTR_BIT_VALUE: memcpy(w, &n->value, 8); return 1;
    case IR_ATTR_BIT_ACT: w[0] = (uint64_t)n->act; return 1;
    case IR_ATTR_BIT_ALPHA: memcpy(w, &n->alpha, 8); return 1;
    case IR_ATTR_BIT_FROM_Y: w[0] = n->from_y; return 1;
    case IR_ATTR_BIT_TRANS: w[0] = (uint64_t)n->ta, w[1] = (uint64_t)n->tb; return 2;
    case IR_ATTR_BIT_MNK:
        w[0] = (uint64_t)n->m, w[1] = (uint64_t)n->n, w[2] = (uint64_t)n->k;
        return 3;
    case IR_ATTR_BIT_GIVEN_TYPE: w[0] = n->type.batched, w[1] = (uint64_t)n->type.n; return 2;
    default: internal_error("attribute %d", at);
    }
}

enum { IR_NATTRS = IR_ATTR_BIT_GIVEN_TYPE + 1 };

/* Every word that identifies a node: op, inputs, type and its op's attributes. */
static int node_words(const IrNode *n, uint64_t *w) {
    int k = 0;
    w[k++] = (uint64_t)n->op, w[k++] = (uint64_t)n->in[0], w[k++] = (uint64_t)n->in[1];
    w[k++] = n->type.batched, w[k++] = (uint64_t)n->type.n;
    for (int at = 0; at < IR_NATTRS; at++)
        if (ir_op_attrs[n->op] & (1u << at)) k += attr_words(n, at, w + k);
    return k;
}

static unsigned node_hash(const IrNode *n) {
    uint64_t w[64], h = 1469598103934665603ull;
    int k = node_words(n, w);
    for (int i = 0; i < k; i++)
        h = (h ^ w[i]) * 1099511628211ull;
    return (unsigned)(h ^ (h >> 32));
}

static bool node_same(const IrNode *a, const IrNode *b) {
    uint64_t wa[64], wb[64];
    int ka = node_words(a, wa), kb = node_words(b, wb);
    return ka == kb && !memcmp(wa, wb, sizeof(uint64_t) * (size_t)ka);
}

/* Whether the attributes node n's op does not use are all zero (the type
 * is every node's: inferred unless given). */
static bool unused_attrs_zero(const IrNode *n) {
    for (int at = 0; at < IR_NATTRS; at++) {
        if ((ir_op_attrs[n->op] & (1u << at)) || at == IR_ATTR_BIT_GIVEN_TYPE) continue;
        uint64_t w[3];
        int k = attr_words(n, at, w);
        for (int i = 0; i < k; i++)
            if (w[i]) return false;
    }
    return true;
}

static void rehash(Graph *g) {
    g->hash_cap *= 2;
    g->hash = arena_alloc(g->arena, sizeof(int) * (size_t)g->hash_cap);
    for (int i = 0; i < g->nnodes; i++) {
        unsigned h = node_hash(&g->nodes[i]) & (unsigned)(g->hash_cap - 1);
        while (g->hash[h])
            h = (h + 1) & (unsigned)(g->hash_cap - 1);
        g->hash[h] = i + 1;
    }
}

int ir_add(Graph *g, IrNode proto) {
    for (int i = ir_op_nin[proto.op]; i < 2; i++)
        proto.in[i] = -1;
    for (int i = 0; i < ir_op_nin[proto.op]; i++)
        ensure(proto.in[i] >= 0 && proto.in[i] < g->nnodes);
    proto.type = infer_type(g, &proto);
    if (2 * (g->nnodes + 1) > g->hash_cap) rehash(g);
    unsigned mask = (unsigned)(g->hash_cap - 1), h = node_hash(&proto) & mask;
    for (; g->hash[h]; h = (h + 1) & mask)
        if (node_same(&g->nodes[g->hash[h] - 1], &proto)) return g->hash[h] - 1;
    ARRAY_PUSH(g->arena, g->nodes, g->nnodes, g->cap, proto);
    g->hash[h] = g->nnodes;
    return g->nnodes - 1;
}

int ir_const(Graph *g, double v) {
    return ir_add(g, (IrNode){.op = IR_CONST, .value = v});
}

/* Constant folding of the algebraic identities autodiff produces a lot of
 * (g*1, x+0, 1*x), so gradients stay as small as written by hand. */
static bool is_const(const Graph *g, int a, double v) {
    return g->nodes[a].op == IR_CONST && g->nodes[a].value == v;
}

int ir_unary(Graph *g, IrOp op, int a) {
    if (op == IR_NEG && g->nodes[a].op == IR_CONST) return ir_const(g, -g->nodes[a].value);
    return ir_add(g, (IrNode){.op = op, .in = {a}});
}

int ir_binary(Graph *g, IrOp op, int a, int b) {
    IrType ta = g->nodes[a].type, tb = g->nodes[b].type;
    if (g->nodes[a].op == IR_CONST && g->nodes[b].op == IR_CONST) {
        double x = g->nodes[a].value, y = g->nodes[b].value;
        switch (op) {
        case IR_ADD: return ir_const(g, x + y);
        case IR_SUB: return ir_const(g, x - y);
        case IR_MUL: return ir_const(g, x * y);
        case IR_DIV: return ir_const(g, x / y);
        case IR_POW: return ir_const(g, pow(x, y));
        default: break;
        }
    }
    /* The op's unit (x op u = x; u op x = x if it commutes), only when the
     * kept operand already has the result's type. */
    IrType t;
    double u = ir_op_unit[op];
    if (!isnan(u) && broadcast(ta, tb, &t)) {
        if (ir_op_commutes[op] && is_const(g, a, u) && type_eq(tb, t)) return b;
        if (is_const(g, b, u) && type_eq(ta, t)) return a;
    }
    return ir_add(g, (IrNode){.op = op, .in = {a, b}});
}

int ir_gemm(Graph *g, int a, int b, int ta, int tb, long m, long n, long k) {
    return ir_add(
        g, (IrNode){.op = IR_GEMM, .in = {a, b}, .ta = ta, .tb = tb, .m = m, .n = n, .k = k});
}

void ir_output_tensor(Graph *g, OutKind kind, int node, int index, int tensor) {
    GraphOutput o = {kind, node, index, tensor};
    ARRAY_PUSH(g->arena, g->outs, g->nouts, g->outs_cap, o);
}

void ir_output(Graph *g, OutKind kind, int node, int index) {
    ir_output_tensor(g, kind, node, index, -1);
}

void ir_verify(const Graph *g) {
    for (int i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        ensure(n->op >= 0 && n->op < IR_OP_COUNT);
        for (int j = 0; j < ir_op_nin[n->op]; j++)
            ensure(n->in[j] >= 0 && n->in[j] < i);
        if (!unused_attrs_zero(n))
            internal_error("node %%%d (%s) sets an attribute its op does not have", i,
                           ir_op_names[n->op]);
        IrType t = infer_type(g, n);
        if (!type_eq(t, n->type))
            internal_error("node %%%d (%s) has a stale type", i, ir_op_names[n->op]);
    }
    for (int i = 0; i < g->nouts; i++)
        ensure(g->outs[i].node >= 0 && g->outs[i].node < g->nnodes);
}

const char *ir_graph_name(GraphKind k) {
    static const char *const names[] = {"train", "eval", "encode", "decode", "optim"};
    return names[k];
}

static void print_dim(FILE *out, long d) {
    if (d == IR_BATCH_DIM)
        fputc('B', out);
    else if (d < 0)
        fprintf(out, "%ldB", -d);
    else
        fprintf(out, "%ld", d);
}

/* Attribute `at` of node n as the dump shows it (after its inputs). */
static void dump_attr(FILE *out, const Graph *g, const IrNode *n, int at) {
    static const char *const rand_names[] = {"uniform", "normal", "bernoulli"};
    static const char *const roles[] = {"x", "code", "mask"};
    switch (at) {
    case IR_ATTR_BIT_LAYER: fprintf(out, " layer=%d", n->layer); break;
    case IR_ATTR_BIT_ROLE: fprintf(out, " %s", roles[n->role]); break;
    case IR_ATTR_BIT_OPT_SLOT: fprintf(out, " slot=%d", n->opt_slot); break;
    case IR_ATTR_BIT_TENSOR:
        if (n->tensor >= 0)
            fprintf(out, " %s", g->model->tensors[n->tensor].name);
        else if (n->op == IR_PARAM)
            fprintf(out, " trainable");
        break;
    case IR_ATTR_BIT_RAND: fprintf(out, " %s", rand_names[n->rand]); break;
    case IR_ATTR_BIT_STREAM: fprintf(out, " stream=%d", n->stream); break;
    case IR_ATTR_BIT_P:
        if (n->rand == RAND_BERNOULLI) fprintf(out, " p=%g", n->p);
        break;
    case IR_ATTR_BIT_COPIES: fprintf(out, " x%ld", n->copies); break;
    case IR_ATTR_BIT_HW: fprintf(out, " hw=%ld", n->hw); break;
    case IR_ATTR_BIT_VALUE: fprintf(out, " %.9g", n->value); break;
    case IR_ATTR_BIT_ACT: fprintf(out, " %s", act_names[n->act]); break;
    case IR_ATTR_BIT_ALPHA:
        if (n->alpha != 0) fprintf(out, "=%g", n->alpha);
        break;
    case IR_ATTR_BIT_TRANS: fprintf(out, " %c%c", n->ta ? 't' : 'n', n->tb ? 't' : 'n'); break;
    case IR_ATTR_BIT_MNK:
        fputs(" m=", out);
        print_dim(out, n->m);
        fputs(" n=", out);
        print_dim(out, n->n);
        fputs(" k=", out);
        print_dim(out, n->k);
        break;
    default: break; /* from_y and a given type: the type is printed anyway */
    }
}

void ir_dump(FILE *out, const Graph *g) {
    static const char *const out_names[] = {"loss",   "code",     "x_hat",  "grad",
                                            "params", "optstate", "metric", "buffer"};
    fprintf(out, "graph %s (%d nodes, %d forward)\n", ir_graph_name(g->kind), g->nnodes,
            g->n_forward);
    for (int i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        fprintf(out, "  %%%d = %s", i, ir_op_names[n->op]);
        for (int j = 0; j < ir_op_nin[n->op]; j++)
            fprintf(out, "%s%%%d", j ? ", " : " ", n->in[j]);
        for (int at = 0; at < IR_NATTRS; at++)
            if (ir_op_attrs[n->op] & (1u << at)) dump_attr(out, g, n, at);
        fprintf(out, " : [%s%ld]", n->type.batched ? "B," : "", n->type.n);
        if (n->loc.line) fprintf(out, "  ; line %d", n->loc.line);
        fputc('\n', out);
    }
    for (int i = 0; i < g->nouts; i++) {
        const GraphOutput *o = &g->outs[i];
        fprintf(out, "  out %s", out_names[o->kind]);
        if (o->kind == OUT_GRAD || o->kind == OUT_BUFFER)
            fprintf(out, " %s", g->model->tensors[o->index].name);
        if (o->kind == OUT_OPTSTATE || o->kind == OUT_METRIC) fprintf(out, " %d", o->index);
        if ((o->kind == OUT_PARAMS || o->kind == OUT_OPTSTATE) && o->tensor >= 0)
            fprintf(out, " %s", g->model->tensors[o->tensor].name);
        fprintf(out, " = %%%d\n", o->node);
    }
}

/* f'(x) from y alone where the activation allows it (act_prime_from_y). */
int ir_act_prime(Graph *g, int y) {
    IrNode n = g->nodes[y];
    ensure(n.op == IR_ACT);
    bool from_y = act_prime_from_y(n.act, n.alpha);
    return ir_add(g, (IrNode){.op = IR_ACT_GRAD,
                              .in = {from_y ? y : n.in[0], y},
                              .act = n.act,
                              .alpha = n.alpha,
                              .from_y = from_y});
}
