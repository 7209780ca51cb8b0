/* plan.c — the static memory plan of one entry point.
 *
 * Takes a Fusion; produces where every stored value lives: a caller's buffer
 * (data, params, gradients, optimizer state, outputs) or an offset into the
 * one workspace. Offsets and sizes are linear in the symbolic batch
 * (off_batch * batch + off_const elements), every buffer starts on a
 * 16-element boundary, and a workspace buffer is reused once the last
 * kernel reading its value has run (first fit, by liveness).
 */
#include <string.h>

#include "aec.h"

#define ALIGN_ELEMS 16

typedef struct Slot {
    long off_b, off_c;   /* where it starts */
    long size_b, size_c; /* its capacity */
    int free_after;      /* kernel after which it may be reused; INT_MAX while held */
} Slot;

typedef struct Planner {
    Arena *a;
    Slot *slots;
    int nslots, cap;
    long end_b, end_c; /* the workspace so far */
} Planner;

static long round_up(long n) {
    return (n + ALIGN_ELEMS - 1) / ALIGN_ELEMS * ALIGN_ELEMS;
}

/* A workspace buffer of need_b·batch + need_c elements, live through kernel `until`. */
static BufLoc take_sized(Planner *P, long need_b, long need_c, int now, int until) {
    need_b = round_up(need_b);
    need_c = round_up(need_c);
    for (int s = 0; s < P->nslots; s++) {
        Slot *sl = &P->slots[s];
        if (sl->free_after < now && sl->size_b >= need_b && sl->size_c >= need_c) {
            sl->free_after = until;
            return (BufLoc){BASE_WS, sl->off_b, sl->off_c};
        }
    }
    Slot sl = {P->end_b, P->end_c, need_b, need_c, until};
    ARRAY_PUSH(P->a, P->slots, P->nslots, P->cap, sl);
    P->end_b += need_b;
    P->end_c += need_c;
    return (BufLoc){BASE_WS, sl.off_b, sl.off_c};
}

/* A workspace buffer of `t`'s size, live through kernel `until`. */
static BufLoc take(Planner *P, IrType t, int now, int until) {
    return take_sized(P, t.batched ? t.n : 0, t.batched ? 0 : t.n, now, until);
}

bool plan_gemm_spec(const Graph *g, int node, bool f64, GemmSpec *s) {
    const IrNode *n = &g->nodes[node];
    *s = (GemmSpec){.f64 = f64, .batch_hint = g->model->train.batch};
    if (n->op == IR_GEMM) {
        s->m = n->m, s->n = n->n, s->k = n->k, s->ta = n->ta, s->tb = n->tb;
        return true;
    }
    if (n->op != IR_CONV && n->op != IR_CONV_T && n->op != IR_CONV_W) return false;
    /* one sample: im2col's columns [CKK, P] (or the image itself for 1x1) */
    ConvGeom q = conv_geom(&g->model->layers[n->layer]);
    long P = (long)q.oh * q.ow, ckk = (long)q.c * q.kh * q.kw;
    if (n->op == IR_CONV) /* y [R, P] = W [R, CKK] · cols [CKK, P] */
        *s = (GemmSpec){q.r, P, ckk, ckk, P, P, false, false, false, f64, 1};
    else if (n->op == IR_CONV_T) /* cols [CKK, P] = Wᵀ · d [R, P] */
        *s = (GemmSpec){ckk, P, q.r, ckk, P, P, true, false, false, f64, 1};
    else /* dW [R, CKK] += d [R, P] · colsᵀ */
        *s = (GemmSpec){q.r, ckk, P, P, P, ckk, false, true, true, f64, 1};
    return true;
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
 * first output of the node that has a place. */
static bool output_loc(const Graph *g, int node, BufLoc *loc) {
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].node == node && out_place(g, &g->outs[o], loc)) return true;
    return false;
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
    Planner P = {.a = a};

    for (int i = 0; i < g->nnodes; i++)
        if (ir_op_class[g->nodes[i].op] == OPC_LEAF) p->loc[i] = leaf_loc(g, &g->nodes[i]);

    for (int k = 0; k < f->nkernels; k++) {
        const Kernel *kn = &f->kernels[k];
        p->split[k] = split_of(g, kn);
        int now = starts_at(f, k);
        int count = kn->kind != K_LOOP ? 1 : kn->nnodes;
        for (int m = 0; m < count; m++) {
            int i = kn->kind != K_LOOP ? kn->node : kn->nodes[m];
            const NodeInfo *info = &f->info[i];
            if (!info->materialized) continue;
            if (!output_loc(g, i, &p->loc[i]))
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
            /* A convolution's im2col columns of one sample, reused sample by sample. */
            IrOp op = g->nodes[i].op;
            if (op == IR_CONV || op == IR_CONV_T || op == IR_CONV_W) {
                ConvGeom q = conv_geom(&g->model->layers[g->nodes[i].layer]);
                if (!conv_geom_is_identity(&q))
                    p->partial[i] =
                        take(&P, (IrType){false, (long)q.c * q.kh * q.kw * q.oh * q.ow}, k, k);
            }
        }
    }
    /* Inline scalar outputs (the loss) are written after the last kernel. */
    for (int o = 0; o < g->nouts; o++)
        if (f->info[g->outs[o].node].inline_scalar &&
            !output_loc(g, g->outs[o].node, &p->loc[g->outs[o].node]) &&
            g->outs[o].kind == OUT_BUFFER) /* kept in the workspace for the caller to copy */
            p->loc[g->outs[o].node] =
                take(&P, g->nodes[g->outs[o].node].type, f->nkernels, f->nkernels);
    p->out_loc = arena_alloc(a, sizeof(BufLoc) * (size_t)(g->nouts + 1));
    for (int o = 0; o < g->nouts; o++)
        if (!out_place(g, &g->outs[o], &p->out_loc[o])) p->out_loc[o] = (BufLoc){BASE_NONE, 0, 0};
    p->ws_batch = P.end_b;
    p->ws_const = P.end_c;
    return p;
}

void plan_dump(FILE *out, const Plan *p) {
    static const char *const bases[] = {"-",   "ws",   "x",     "params", "grads",
                                        "opt", "code", "x_hat", "loss",   "mask"};
    const Graph *g = p->fusion->graph;
    fprintf(out, "plan of %s: workspace %ld*B + %ld elements\n", ir_graph_name(g->kind),
            p->ws_batch, p->ws_const);
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
    Span sp = {node, from, to, l.off_batch, l.off_const, size_b, size_c};
    ARRAY_PUSH(a, *s, *n, *cap, sp);
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

    /* Workspace buffers live at the same time must not overlap, at the
     * smallest and the largest batch (offsets are linear in it, so then
     * at every batch in between). */
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
    for (int x = 0; x < n; x++)
        for (int y = x + 1; y < n; y++) {
            const Span *s = &spans[x], *t = &spans[y];
            if (s->to < t->from || t->to < s->from) continue;
            bool apart = (before(s, t, 1) && before(s, t, AEC_MAX_BATCH)) ||
                         (before(t, s, 1) && before(t, s, AEC_MAX_BATCH));
            if (!apart)
                internal_error(
                    "plan of %s: the buffers of %%%d and %%%d overlap while both are live",
                    ir_graph_name(g->kind), s->node, t->node);
        }
    arena_free(a);
}
