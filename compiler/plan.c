/* plan.c — the static memory plan of one entry point.
 *
 * Takes a Fusion; produces where every stored value lives: a caller's buffer
 * (data, params, gradients, optimizer state, outputs) or an offset into the
 * one workspace. Offsets and sizes are linear in the symbolic batch
 * (off_batch * batch + off_const elements), every buffer starts on a
 * 16-element boundary, and a workspace buffer is reused once the last
 * kernel reading its value has run (first fit, by liveness).
 */
#include <stdlib.h>
#include <string.h>

#include "aec.h"

#define ALIGN_ELEMS 16

typedef struct Slot {
    long off_b, off_c;   /* where it starts */
    long size_b, size_c; /* its capacity */
    int free_after;      /* kernel after which it may be reused */
    int next;            /* the next slot freed after the same kernel, or -1 */
} Slot;

/* First fit in log time (a scan of every slot per buffer was quadratic in
 * the spec's depth): a max tree over the slots in creation order holding
 * the sizes of the free ones (-1 for a held one), descended to the leftmost
 * that fits; a held slot waits in the list of the kernel after which it is
 * free. Kernels only advance (`now` never decreases), so a slot joins the
 * tree once `now` passes its kernel. */
typedef struct Planner {
    Arena *a;
    Slot *slots;
    int nslots, cap;
    long end_b, end_c;   /* the workspace so far */
    long *max_b, *max_c; /* the tree: node 1 the root, leaves from `leaves` */
    int leaves;
    int *freed_after;    /* per kernel, the first slot free after it, or -1 */
    int nkernels, ready; /* slots free after kernels < ready are in the tree */
} Planner;

static long round_up(long n) {
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

static long max_of(long x, long y) {
    return x > y ? x : y;
}

/* Slot s free with its sizes, or held (-1). */
static void tree_set(Planner *P, int s, bool is_free) {
    int i = P->leaves + s;
    P->max_b[i] = is_free ? P->slots[s].size_b : -1;
    P->max_c[i] = is_free ? P->slots[s].size_c : -1;
    for (i /= 2; i >= 1; i /= 2) {
        P->max_b[i] = max_of(P->max_b[2 * i], P->max_b[2 * i + 1]);
        P->max_c[i] = max_of(P->max_c[2 * i], P->max_c[2 * i + 1]);
    }
}

/* Room for slot s in the tree: doubled and refilled when full. */
static void tree_grow(Planner *P, int s) {
    if (s < P->leaves) return;
    int old = P->leaves;
    long *old_b = P->max_b, *old_c = P->max_c;
    P->leaves = old ? 2 * old : 64;
    P->max_b = arena_alloc(P->a, sizeof(long) * 2 * (size_t)P->leaves);
    P->max_c = arena_alloc(P->a, sizeof(long) * 2 * (size_t)P->leaves);
    for (int i = 0; i < 2 * P->leaves; i++)
        P->max_b[i] = P->max_c[i] = -1;
    for (int i = 0; i < old; i++) {
        P->max_b[P->leaves + i] = old_b[old + i];
        P->max_c[P->leaves + i] = old_c[old + i];
    }
    for (int i = P->leaves - 1; i >= 1; i--) {
        P->max_b[i] = max_of(P->max_b[2 * i], P->max_b[2 * i + 1]);
        P->max_c[i] = max_of(P->max_c[2 * i], P->max_c[2 * i + 1]);
    }
}

/* The leftmost free slot under tree node i that fits, or -1. A subtree
 * whose largest sizes fit may still hold no slot fitting both (a miss
 * costs a backtrack); a buffer sized in one of the two never misses. */
static int tree_find(const Planner *P, int i, long need_b, long need_c) {
    if (i >= 2 * P->leaves || P->max_b[i] < need_b || P->max_c[i] < need_c) return -1;
    if (i >= P->leaves) return i - P->leaves;
    int s = tree_find(P, 2 * i, need_b, need_c);
    return s >= 0 ? s : tree_find(P, 2 * i + 1, need_b, need_c);
}

/* Slot s is held through kernel `until`: free for buffers from kernel
 * until + 1 on. */
static void hold(Planner *P, int s, int until) {
    P->slots[s].free_after = until;
    tree_set(P, s, false);
    if (until < P->ready) { /* free already (a buffer nothing reads later) */
        tree_set(P, s, true);
        return;
    }
    ensure(until <= P->nkernels);
    P->slots[s].next = P->freed_after[until];
    P->freed_after[until] = s;
}

/* A workspace buffer of need_b·batch + need_c elements, live through kernel
 * `until`: the first slot (in creation order) free before kernel `now` and
 * large enough, else a new one at the end. */
static BufLoc take_sized(Planner *P, long need_b, long need_c, int now, int until) {
    need_b = round_up(need_b);
    need_c = round_up(need_c);
    ensure(now >= P->ready); /* kernels only advance */
    for (; P->ready < now; P->ready++)
        for (int s = P->freed_after[P->ready]; s >= 0; s = P->slots[s].next)
            tree_set(P, s, true);
    int s = P->leaves ? tree_find(P, 1, need_b, need_c) : -1;
    if (s < 0) {
        Slot sl = {P->end_b, P->end_c, need_b, need_c, until, -1};
        ARRAY_PUSH(P->a, P->slots, P->nslots, P->cap, sl);
        P->end_b += need_b;
        P->end_c += need_c;
        s = P->nslots - 1;
        tree_grow(P, s);
    }
    hold(P, s, until);
    return (BufLoc){BASE_WS, P->slots[s].off_b, P->slots[s].off_c};
}

/* A workspace buffer of `t`'s size, live through kernel `until`. */
static BufLoc take(Planner *P, IrType t, int now, int until) {
    return take_sized(P, t.batched ? t.n : 0, t.batched ? 0 : t.n, now, until);
}

bool plan_gemm_spec(const Graph *g, int node, bool f64, GemmSpec *s) {
    const IrNode *n = &g->nodes[node];
    /* A B that is not transposed is read in place where the tiling allows
     * (gemm_b_in_place): the micro-kernel reads one row of a column panel
     * per k, which the prefetchers follow as they follow a packed panel
     * (W1's step 2-4 % faster with AVX-512), and a convolution's columns,
     * used by few row panels, are not copied. */
    *s = (GemmSpec){.f64 = f64, .batch_hint = g->model->train.batch};
    if (n->op == IR_GEMM) {
        s->m = n->m, s->n = n->n, s->k = n->k, s->ta = n->ta, s->tb = n->tb;
    } else if (n->op == IR_CONV || n->op == IR_CONV_T || n->op == IR_CONV_W) {
        /* one sample: im2col's columns [CKK, P] (or the image itself for 1x1) */
        ConvGeom q = conv_geom(&g->model->layers[n->layer]);
        long P = (long)q.oh * q.ow, ckk = (long)q.c * q.kh * q.kw;
        if (n->op == IR_CONV) /* y [R, P] = W [R, CKK] · cols [CKK, P] */
            *s = (GemmSpec){q.r, P, ckk, ckk, P, P, false, false, false, f64, 1, false};
        else if (n->op == IR_CONV_T) /* cols [CKK, P] = Wᵀ · d [R, P] */
            *s = (GemmSpec){ckk, P, q.r, ckk, P, P, true, false, false, f64, 1, false};
        else /* dW [R, CKK] += d [R, P] · colsᵀ */
            *s = (GemmSpec){q.r, ckk, P, P, P, ckk, false, true, true, f64, 1, false};
    } else {
        return false;
    }
    s->b_in_place = !s->tb;
    return true;
}

ConvSlot conv_slot(const Graph *g, int node) {
    ConvGeom q = conv_geom(&g->model->layers[g->nodes[node].layer]);
    GemmSpec s;
    ensure(plan_gemm_spec(g, node, false, &s));
    long per_batch, fixed;
    gemm_pack_bound(&s, &per_batch, &fixed);
    ensure(per_batch == 0); /* one sample's product: every dimension a constant */
    ConvSlot c = {0};
    if (!conv_geom_is_identity(&q)) c.cols = round_up((long)q.c * q.kh * q.kw * q.oh * q.ow);
    c.pack = round_up(fixed);
    if (g->nodes[node].op == IR_CONV_W) c.dw = round_up(s.m * s.n);
    c.size = c.cols + c.pack + c.dw;
    return c;
}

/* The generated GEMM's packed panels, for any target (gemm_pack_bound);
 * nothing for a node that is no product. */
static void pack_size(const Graph *g, int node, long *per_batch, long *fixed) {
    GemmSpec s;
    *per_batch = *fixed = 0;
    if (!plan_gemm_spec(g, node, false, &s)) return;
    gemm_pack_bound(&s, per_batch, fixed);
    if (*per_batch < 0) *per_batch = *fixed = 0; /* not generated: such a GEMM goes to BLAS */
}

/* A leaf's place: the argument its op reads (ir_op_leaf; the mask for
 * INPUT_MASK), at its tensor's offset in the block and its state slot. */
static BufLoc leaf_loc(const Graph *g, const IrNode *n) {
    const Model *m = g->model;
    BufLoc l = {ir_op_leaf[n->op], 0, 0};
    if (n->op == IR_INPUT && n->role == INPUT_MASK) l.base = BASE_MASK;
    if ((ir_op_attrs[n->op] & AT_TENSOR) && n->tensor >= 0)
        l.off_const = m->tensors[n->tensor].offset;
    if (ir_op_attrs[n->op] & AT_OPT_SLOT) l.off_const += (long)n->opt_slot * m->trainable_count;
    return l;
}

/* Where output `out` goes in the caller's buffers; false for a metric
 * (copied to loss[index] after the kernels) or a buffer (kept in the
 * workspace; train_step copies it to the params). */
static bool out_place(const Graph *g, const GraphOutput *out, BufLoc *loc) {
    const Model *m = g->model;
    long range = out->tensor >= 0 ? m->tensors[out->tensor].offset : 0; /* a tensor's range */
    switch (out->kind) {
    case OUT_LOSS: *loc = (BufLoc){BASE_LOSS, 0, 0}; return true;
    case OUT_CODE: *loc = (BufLoc){BASE_CODE, 0, 0}; return true;
    case OUT_XHAT: *loc = (BufLoc){BASE_XHAT, 0, 0}; return true;
    case OUT_GRAD: *loc = (BufLoc){BASE_GRADS, 0, m->tensors[out->index].offset}; return true;
    case OUT_PARAMS: *loc = (BufLoc){BASE_PARAMS, 0, range}; return true;
    case OUT_OPTSTATE:
        *loc = (BufLoc){BASE_OPT, 0, (long)out->index * m->trainable_count + range};
        return true;
    case OUT_METRIC:
    case OUT_BUFFER: return false;
    }
    return false;
}

/* Rows (batched) or columns (one row) per task when loop kernel k is run
 * as tasks, or 0. A kernel splits when it is large enough and each task can
 * compute its part alone: elementwise nodes, and sums over the rows
 * (SUM_ROWS, SUM_ALL), which each task adds up for its own rows and the
 * kernel then adds up in task order — so the bits depend on the split,
 * which depends on the shape only, never on the threads. Sums across a
 * row's tiles or channels stay in one loop nest. */
static long split_of(const Graph *g, const Kernel *k) {
    if (k->kind != K_LOOP) return 0;
    bool sums = false;
    for (int m = 0; m < k->nnodes; m++) {
        const IrNode *n = &g->nodes[k->nodes[m]];
        if (n->op == IR_TILE) return 0;
        if (ir_op_class[n->op] == OPC_RED) {
            if (!red_per_column(ir_op_red[n->op])) return 0;
            sums = true;
        }
        if (!k->domain.batched)
            for (int q = 0; q < ir_op_nin[n->op]; q++)
                if (g->nodes[n->in[q]].op == IR_CHAN_EXPAND) return 0;
    }
    if (sums && !k->domain.batched) return 0;
    long rows = k->domain.batched ? g->model->train.batch : 1;
    if (rows * k->domain.n < PLAN_SPLIT_MIN) return 0;
    if (!k->domain.batched) return PLAN_TASK_ELEMS;
    long r = PLAN_TASK_ELEMS / k->domain.n;
    return r < 1 ? 1 : r;
}

/* Columns per task of a batched kernel with sums over rows that would be
 * split a row per task (rows of PLAN_TASK_ELEMS or more): tasks of whole
 * columns (whole channels for a kernel looping by channel), each summing
 * its columns over all rows in row order — the order a task per row and
 * the tasks' sums added in task order give, so the same bits — with no
 * per-task sums: those were [B][n] (100 MB for one of mnist_conv's
 * batch-norm sums) and added up on one thread. 0: split by rows, or not. */
static long col_split_of(const Graph *g, const Kernel *k, long rows_split) {
    if (rows_split != 1 || !k->domain.batched) return 0;
    bool sums = false;
    for (int m = 0; m < k->nnodes; m++)
        sums |= ir_op_class[g->nodes[k->nodes[m]].op] == OPC_RED;
    if (!sums) return 0;
    long unit = kernel_hw(g, k), cols = (PLAN_TASK_COLS + unit - 1) / unit * unit;
    return cols < k->domain.n ? cols : k->domain.n;
}

/* A split or epilogue kernel's per-task column sums, [task][n]: ceil(B /
 * rows) tasks for tasks of `rows` rows, at most B·ceil(n / rows) + n. A
 * split kernel's tasks have `split` rows; an epilogue's (its GEMM's row
 * blocks) at least GEMM_ROW_BLOCK_MIN; it may run either way (the GEMM
 * it belongs to may be a BLAS call). */
static void task_sums_size(const Kernel *k, long split, long *per_batch, long *fixed) {
    long n = k->domain.n, rows = split;
    if (k->epilogue && (!rows || rows > GEMM_ROW_BLOCK_MIN)) rows = GEMM_ROW_BLOCK_MIN;
    *per_batch = (n + rows - 1) / rows;
    *fixed = n;
}

/* The first kernel during which kernel k runs: an epilogue runs inside the
 * GEMM kernel before it, so what that GEMM reads stays live for it. */
static int starts_at(const Fusion *f, int k) {
    return k < f->nkernels && f->kernels[k].epilogue ? k - 1 : k;
}

/* An output's value is computed straight into the caller's buffer: the
 * first output of the node that has a place. placed[node] is that output,
 * or -1: found in one pass over the outputs (a scan of them per node was
 * quadratic in the spec's depth, a training graph having an output per
 * parameter tensor). */
static int *placed_outputs(Arena *a, const Graph *g) {
    int *placed = arena_alloc(a, sizeof(int) * (size_t)g->nnodes);
    for (int i = 0; i < g->nnodes; i++)
        placed[i] = -1;
    BufLoc l;
    for (int o = g->nouts - 1; o >= 0; o--)
        if (out_place(g, &g->outs[o], &l)) placed[g->outs[o].node] = o;
    return placed;
}

static bool output_loc(const Graph *g, const int *placed, int node, BufLoc *loc) {
    return placed[node] >= 0 && out_place(g, &g->outs[placed[node]], loc);
}

/* A convolution's scratch, elements: its tasks of samples' first slot
 * (conv_slot), or where codegen may choose Winograd's (winograd.c) that
 * one's, which --conv im2col uses for one sample's columns at a time. */
static long conv_scratch(const Graph *g, int i) {
    IrOp op = g->nodes[i].op;
    if (op != IR_CONV && op != IR_CONV_T && op != IR_CONV_W) return 0;
    ConvGeom q = conv_geom(&g->model->layers[g->nodes[i].layer]);
    if (!conv_winograd(&q)) return conv_slot(g, i).size;
    /* Winograd's, or with --conv im2col one sample's columns */
    long cols = (long)q.c * q.kh * q.kw * q.oh * q.ow;
    return winograd_scratch(&q, op) > cols ? winograd_scratch(&q, op) : cols;
}

/* The size of conv node i's second and later slots: what Plan.ws_slot
 * reserves after the workspace. */
static long conv_later_slot(const Graph *g, int i) {
    IrOp op = g->nodes[i].op;
    if (op != IR_CONV && op != IR_CONV_T && op != IR_CONV_W) return 0;
    ConvGeom q = conv_geom(&g->model->layers[g->nodes[i].layer]);
    return conv_winograd(&q) ? winograd_node(&q, op, false).slot : conv_slot(g, i).size;
}

Plan *plan_memory(Arena *a, const Fusion *f) {
    const Graph *g = f->graph;
    Plan *p = arena_alloc(a, sizeof *p);
    p->fusion = f;
    p->loc = arena_alloc(a, sizeof(BufLoc) * (size_t)g->nnodes);
    p->partial = arena_alloc(a, sizeof(BufLoc) * (size_t)g->nnodes);
    p->pack = arena_alloc(a, sizeof(BufLoc) * (size_t)g->nnodes);
    p->task_sums = arena_alloc(a, sizeof(BufLoc) * (size_t)g->nnodes);
    p->split = arena_alloc(a, sizeof(long) * (size_t)(f->nkernels + 1));
    p->col_split = arena_alloc(a, sizeof(long) * (size_t)(f->nkernels + 1));
    Arena *scratch = arena_new();
    Planner P = {.a = scratch, .nkernels = f->nkernels};
    /* The convolutions share one scratch, the largest one's, held from the
     * first to the last: the planner's slots do not merge, and freed between
     * them it would be taken by small buffers and reserved again. */
    long conv_size = 0;
    int conv_last = -1;
    for (int k = 0; k < f->nkernels; k++)
        if (f->kernels[k].kind != K_LOOP && conv_scratch(g, f->kernels[k].node)) {
            long size = conv_scratch(g, f->kernels[k].node);
            conv_size = size > conv_size ? size : conv_size;
            conv_last = k;
        }
    BufLoc conv_region = {BASE_NONE, 0, 0};
    for (int i = 0; i < g->nnodes; i++)
        if (conv_later_slot(g, i) > p->ws_slot) p->ws_slot = round_up(conv_later_slot(g, i));
    P.freed_after = arena_alloc(scratch, sizeof(int) * (size_t)(f->nkernels + 1));
    for (int k = 0; k <= f->nkernels; k++)
        P.freed_after[k] = -1;
    int *placed = placed_outputs(scratch, g);

    for (int i = 0; i < g->nnodes; i++)
        if (ir_op_class[g->nodes[i].op] == OPC_LEAF) p->loc[i] = leaf_loc(g, &g->nodes[i]);

    for (int k = 0; k < f->nkernels; k++) {
        const Kernel *kn = &f->kernels[k];
        p->split[k] = split_of(g, kn);
        p->col_split[k] = col_split_of(g, kn, p->split[k]);
        if (p->col_split[k]) p->split[k] = 0;
        int now = starts_at(f, k);
        int count = kn->kind != K_LOOP ? 1 : kn->nnodes;
        for (int m = 0; m < count; m++) {
            int i = kn->kind != K_LOOP ? kn->node : kn->nodes[m];
            const NodeInfo *info = &f->info[i];
            if (!info->materialized) continue;
            if (!output_loc(g, placed, i, &p->loc[i]))
                p->loc[i] = take(&P, g->nodes[i].type, now, info->last_use);
            /* A split or epilogue kernel's sums: each task's own, added up after the tasks. */
            if ((p->split[k] || kn->epilogue) && red_per_column(ir_op_red[g->nodes[i].op])) {
                long tb, tc;
                task_sums_size(kn, p->split[k], &tb, &tc);
                p->task_sums[i] = take_sized(&P, tb, tc, now, k);
            }
            /* A generated GEMM packs its operands into panels, during its kernel. */
            long pack_b, pack_c;
            pack_size(g, i, &pack_b, &pack_c);
            if (pack_b || pack_c) p->pack[i] = take_sized(&P, pack_b, pack_c, k, k);
            /* A full reduction sums per column first: vectorizable, deterministic. */
            if (ir_op_red[g->nodes[i].op] == RED_ALL)
                p->partial[i] = take(&P, (IrType){false, kn->domain.n}, now, k);
            /* A convolution's scratch: the one all of them share (conv_scratch). */
            if (conv_scratch(g, i)) {
                if (conv_region.base == BASE_NONE)
                    conv_region = take(&P, (IrType){false, conv_size}, k, conv_last);
                p->partial[i] = conv_region;
            }
        }
    }
    /* Inline scalar outputs (the loss) are written after the last kernel. */
    for (int o = 0; o < g->nouts; o++)
        if (f->info[g->outs[o].node].inline_scalar &&
            !output_loc(g, placed, g->outs[o].node, &p->loc[g->outs[o].node]) &&
            g->outs[o].kind == OUT_BUFFER) /* kept in the workspace for the caller to copy */
            p->loc[g->outs[o].node] =
                take(&P, g->nodes[g->outs[o].node].type, f->nkernels, f->nkernels);
    p->out_loc = arena_alloc(a, sizeof(BufLoc) * (size_t)(g->nouts + 1));
    for (int o = 0; o < g->nouts; o++)
        if (!out_place(g, &g->outs[o], &p->out_loc[o])) p->out_loc[o] = (BufLoc){BASE_NONE, 0, 0};
    p->ws_batch = P.end_b;
    p->ws_const = P.end_c;
    arena_free(scratch);
    return p;
}

void plan_dump(FILE *out, const Plan *p) {
    static const char *const bases[] = {"-",   "ws",   "x",     "params", "grads",
                                        "opt", "code", "x_hat", "loss",   "mask"};
    const Graph *g = p->fusion->graph;
    fprintf(out, "plan of %s: workspace %ld*B + %ld elements\n", ir_graph_name(g->kind),
            p->ws_batch, p->ws_const);
    bool any = false; /* the loop kernels run as tasks, and their tasks' size */
    for (int k = 0; k < p->fusion->nkernels; k++) {
        long n = p->col_split[k] ? p->col_split[k] : p->split[k];
        if (!n) continue;
        fprintf(out, "%s k%d %ld %s", any ? "," : "  tasks:", k, n,
                p->col_split[k] || !p->fusion->kernels[k].domain.batched ? "cols" : "rows");
        any = true;
    }
    if (any) fputc('\n', out);
    for (int i = 0; i < g->nnodes; i++) {
        const BufLoc *l = &p->loc[i];
        if (l->base == BASE_NONE || ir_op_class[g->nodes[i].op] == OPC_LEAF) continue;
        fprintf(out, "  %%%d -> %s", i, bases[l->base]);
        if (l->off_batch) fprintf(out, " + %ld*B", l->off_batch);
        if (l->off_const || !l->off_batch) fprintf(out, " + %ld", l->off_const);
        fputc('\n', out);
    }
}

/* ------------------------------------------------------------ verify */

/* The kernel that writes node i's stored value (after the kernels for an
 * inline scalar output), or -1 for a leaf. */
static int written_by(const Fusion *f, int i) {
    if (ir_op_class[f->graph->nodes[i].op] == OPC_LEAF) return -1;
    return f->info[i].inline_scalar ? f->nkernels : f->info[i].kernel;
}

/* Kernel k reads node u: from memory unless it is a leaf scalar, an inline
 * scalar (then what it reads) or a CHAN_EXPAND (then its input). */
static void check_read(const Plan *p, int k, int u) {
    const Fusion *f = p->fusion;
    const Graph *g = f->graph;
    const IrNode *n = &g->nodes[u];
    if (ir_op_class[n->op] == OPC_LEAF && ir_op_leaf[n->op] == BASE_NONE) return; /* a scalar */
    if (f->info[u].inline_scalar || n->op == IR_CHAN_EXPAND) {
        for (int j = 0; j < ir_op_nin[n->op]; j++)
            check_read(p, k, n->in[j]);
        return;
    }
    if (p->loc[u].base == BASE_NONE)
        internal_error("plan of %s: kernel %d reads %%%d, which has no place",
                       ir_graph_name(g->kind), k, u);
    int w = written_by(f, u);
    if (w >= k)
        internal_error("plan of %s: kernel %d reads %%%d before kernel %d writes it",
                       ir_graph_name(g->kind), k, u, w);
    if (p->loc[u].base == BASE_WS && f->info[u].last_use < k)
        internal_error("plan of %s: kernel %d reads %%%d after its buffer was freed (kernel %d)",
                       ir_graph_name(g->kind), k, u, f->info[u].last_use);
}

/* A workspace buffer: elements [off(B), off(B) + size(B)), live during
 * kernels [from, to]. */
typedef struct Span {
    int node, from, to;
    long off_b, off_c, size_b, size_c;
} Span;

static bool before(const Span *x, const Span *y,
                   long batch) { /* x ends where y starts, or earlier */
    return (x->off_b + x->size_b) * batch + x->off_c + x->size_c <= y->off_b * batch + y->off_c;
}

static void add_span(Arena *a, Span **s, int *n, int *cap, int node, BufLoc l, long size_b,
                     long size_c, int from, int to) {
    if (l.base != BASE_WS) return;
    /* the sweep below relies on every buffer having a size at batch 1 */
    ensure(size_b >= 0 && size_c >= 0 && size_b + size_c > 0);
    Span sp = {node, from, to, l.off_batch, l.off_const, size_b, size_c};
    ARRAY_PUSH(a, *s, *n, *cap, sp);
}

/* Two buffers live at the same time must be apart: one ends before the
 * other starts, at the smallest and the largest batch (offsets are linear
 * in it, so then at every batch in between). */
static void check_apart(const Graph *g, const Span *s, const Span *t) {
    bool apart = (before(s, t, 1) && before(s, t, AEC_MAX_BATCH)) ||
                 (before(t, s, 1) && before(t, s, AEC_MAX_BATCH));
    if (!apart)
        internal_error("plan of %s: the buffers of %%%d and %%%d overlap while both are live",
                       ir_graph_name(g->kind), s->node, t->node);
}

/* A span's start at batch 1, for sorting (ties by index: a total order). */
typedef struct Start {
    long at;
    int span;
} Start;

static int by_start(const void *x, const void *y) {
    const Start *s = x, *t = y;
    if (s->at != t->at) return s->at < t->at ? -1 : 1;
    return s->span - t->span;
}

/* The live buffers, as a Fenwick tree over their ranks by start at batch 1:
 * counts of live ranks, so a rank's live neighbours take log time. */
typedef struct Live {
    int *tree, n, top; /* top: the highest power of two <= n */
} Live;

static void live_add(Live *L, int r, int d) { /* r: 1-based */
    for (; r <= L->n; r += r & -r)
        L->tree[r] += d;
}
static int live_count(const Live *L, int r) { /* live ranks <= r */
    int c = 0;
    for (; r > 0; r -= r & -r)
        c += L->tree[r];
    return c;
}
static int live_kth(const Live *L, int k) { /* the k-th live rank, k >= 1 */
    int r = 0;
    for (int step = L->top; step; step >>= 1)
        if (r + step <= L->n && L->tree[r + step] < k) {
            r += step;
            k -= L->tree[r];
        }
    return r + 1;
}

/* Every pair of buffers live at the same time is apart. A sweep over the
 * kernels: a buffer joining the live ones (which are apart, by induction,
 * so ordered alike at both batches) is checked against its neighbours by
 * start at batch 1; being apart from them it is apart from all, sizes being
 * positive. n log n, where checking every pair was quadratic in the spec's
 * depth. Finds an overlap exactly when the pairwise check would (it may
 * name another pair). */
static void check_spans(Arena *a, const Graph *g, const Span *spans, int n, int nkernels) {
    Start *order = arena_alloc(a, sizeof(Start) * (size_t)(n + 1));
    int *rank = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    for (int x = 0; x < n; x++)
        order[x] = (Start){spans[x].off_b + spans[x].off_c, x};
    qsort(order, (size_t)n, sizeof(Start), by_start);
    for (int r = 0; r < n; r++)
        rank[order[r].span] = r + 1;
    /* spans by the kernel they start and end at (counting sort) */
    int nt = nkernels + 1;
    int *from_at = arena_alloc(a, sizeof(int) * (size_t)(nt + 1));
    int *to_at = arena_alloc(a, sizeof(int) * (size_t)(nt + 1));
    int *by_from = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    int *by_to = arena_alloc(a, sizeof(int) * (size_t)(n + 1));
    for (int x = 0; x < n; x++) {
        ensure(spans[x].from >= 0 && spans[x].from <= spans[x].to && spans[x].to < nt);
        from_at[spans[x].from + 1]++;
        to_at[spans[x].to + 1]++;
    }
    for (int t = 0; t < nt; t++) {
        from_at[t + 1] += from_at[t];
        to_at[t + 1] += to_at[t];
    }
    for (int x = 0; x < n; x++) {
        by_from[from_at[spans[x].from]++] = x;
        by_to[to_at[spans[x].to]++] = x;
    }
    Live L = {arena_alloc(a, sizeof(int) * (size_t)(n + 1)), n, 1};
    while (L.top * 2 <= n)
        L.top *= 2;
    int nlive = 0;
    for (int t = 0, f = 0, e = 0; t < nt; t++) {
        /* buffers first live at kernel t join; then those last live there leave */
        for (; f < n && spans[by_from[f]].from == t; f++) {
            int x = by_from[f], r = rank[x], below = live_count(&L, r - 1);
            if (below > 0) check_apart(g, &spans[order[live_kth(&L, below) - 1].span], &spans[x]);
            if (below < nlive)
                check_apart(g, &spans[x], &spans[order[live_kth(&L, below + 1) - 1].span]);
            live_add(&L, r, 1);
            nlive++;
        }
        for (; e < n && spans[by_to[e]].to == t; e++) {
            live_add(&L, rank[by_to[e]], -1);
            nlive--;
        }
    }
}

void plan_verify(const Plan *p) {
    const Fusion *f = p->fusion;
    const Graph *g = f->graph;
    for (int k = 0; k < f->nkernels; k++) {
        const Kernel *kn = &f->kernels[k];
        int count = kn->kind != K_LOOP ? 1 : kn->nnodes;
        for (int m = 0; m < count; m++) {
            int i = kn->kind != K_LOOP ? kn->node : kn->nodes[m];
            const IrNode *n = &g->nodes[i];
            for (int j = 0; j < ir_op_nin[n->op]; j++) {
                int u = n->in[j];
                /* a loop's own elementwise values stay in registers */
                if (f->info[u].kernel == k && kn->kind == K_LOOP &&
                    ir_op_class[g->nodes[u].op] != OPC_RED)
                    continue;
                check_read(p, k, u);
            }
            if (f->info[i].materialized && p->loc[i].base == BASE_NONE)
                internal_error("plan of %s: %%%d is stored but has no place",
                               ir_graph_name(g->kind), i);
        }
    }
    for (int o = 0; o < g->nouts; o++)
        check_read(p, f->nkernels, g->outs[o].node);

    /* Workspace buffers live at the same time must not overlap. */
    Arena *a = arena_new();
    Span *spans = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < g->nnodes; i++) {
        if (ir_op_class[g->nodes[i].op] == OPC_LEAF) continue;
        int w = written_by(f, i);
        if (w < 0) continue;
        IrType t = g->nodes[i].type;
        int from = starts_at(f, w);
        add_span(a, &spans, &n, &cap, i, p->loc[i], t.batched ? t.n : 0, t.batched ? 0 : t.n, from,
                 f->info[i].last_use > w ? f->info[i].last_use : w);
        if (p->pack[i].base == BASE_WS) {
            long size_b, size_c;
            pack_size(g, i, &size_b, &size_c);
            add_span(a, &spans, &n, &cap, i, p->pack[i], size_b, size_c, w, w);
        }
        if (p->task_sums[i].base == BASE_WS) {
            long size_b, size_c;
            task_sums_size(&f->kernels[w], p->split[w], &size_b, &size_c);
            add_span(a, &spans, &n, &cap, i, p->task_sums[i], size_b, size_c, from, w);
        }
        if (p->partial[i].base == BASE_WS) { /* scratch of its own kernel */
            long size_b = 0, size_c = 0;
            if (ir_op_red[g->nodes[i].op] == RED_ALL)
                size_c = f->kernels[w].domain.n;
            else {
                ConvGeom q = conv_geom(&g->model->layers[g->nodes[i].layer]);
                size_c = (long)q.c * q.kh * q.kw * q.oh * q.ow;
            }
            add_span(a, &spans, &n, &cap, i, p->partial[i], size_b, size_c, from, w);
        }
    }
    check_spans(a, g, spans, n, f->nkernels);
    arena_free(a);
}
