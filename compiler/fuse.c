/* fuse.c — group the graph's nodes into kernels.
 *
 * Takes a verified Graph; produces a Fusion: an ordered list of kernels,
 * each either one GEMM (a cblas call) or a loop nest over a domain
 * (rows x n) computing a run of elementwise and reduction nodes in one pass,
 * plus per-node facts (which kernel, stored or kept in registers).
 *
 * Rules, applied greedily in node order (which is topological):
 * - a GEMM is a kernel of its own, and so is a NEST op (convolution,
 *   pooling, upsampling: a loop nest of its own);
 * - a CHAN_EXPAND is no kernel: a loop reading it loads its [C] input at
 *   the channel of the position (so that input is stored);
 * - scalar elementwise nodes are never kernels: they are recomputed where
 *   used (they are loop-invariant, LLVM hoists them);
 * - an elementwise or reduction node joins the open loop kernel when its
 *   domain matches and it does not read a reduction finished in that same
 *   kernel (a reduction is only complete after the loop);
 * - a node is stored when a later kernel or an output reads it;
 * - a loop kernel right after a GEMM whose rows are the batch, over that
 *   GEMM's [B, n] and reading its result, whose nodes are elementwise or
 *   sums over rows, is that GEMM's epilogue: a generated GEMM runs it on
 *   each block of C as soon as the block is final (bias and activation
 *   forward; f'(y)·dY and the bias gradient's column sums backward), so
 *   those values are read while in cache, and no separate pass or round of
 *   threads runs for them.
 * Nodes no output depends on are dropped.
 */
#include <string.h>

#include "aec.h"

/* The loop domain a node is computed over: its own type, or for a
 * reduction the type of what it reduces. */
static IrType domain_of(const Graph *g, const IrNode *n) {
    return ir_op_class[n->op] == OPC_RED ? g->nodes[n->in[0]].type : n->type;
}

/* Does node i read (directly, or through inline scalars) a reduction that
 * kernel k computes? */
static bool reads_reduction_of(const Graph *g, const NodeInfo *info, int i, int k) {
    const IrNode *n = &g->nodes[i];
    for (int j = 0; j < ir_op_nin[n->op]; j++) {
        int u = n->in[j];
        if (ir_op_class[g->nodes[u].op] == OPC_RED && info[u].kernel == k) return true;
        if ((info[u].inline_scalar || g->nodes[u].op == IR_CHAN_EXPAND) &&
            reads_reduction_of(g, info, u, k))
            return true;
    }
    return false;
}

/* Mark every node an output depends on. */
static bool *live_nodes(Arena *a, const Graph *g) {
    bool *live = arena_alloc(a, sizeof(bool) * (size_t)g->nnodes);
    for (int i = 0; i < g->nouts; i++)
        live[g->outs[i].node] = true;
    for (int i = g->nnodes - 1; i >= 0; i--)
        if (live[i])
            for (int j = 0; j < ir_op_nin[g->nodes[i].op]; j++)
                live[g->nodes[i].in[j]] = true;
    return live;
}

/* Mark every node an output reads: one pass, not a scan of the outputs per
 * node (a training graph has an output per parameter tensor, so that scan
 * was quadratic in the spec's depth). */
static bool *output_nodes(Arena *a, const Graph *g) {
    bool *out = arena_alloc(a, sizeof(bool) * (size_t)g->nnodes);
    for (int o = 0; o < g->nouts; o++)
        out[g->outs[o].node] = true;
    return out;
}

/* Mark the value `u` read by kernel k: stored if computed by another kernel,
 * and through inline scalars, whatever they read. */
static void note_use(const Graph *g, NodeInfo *info, int u, int k) {
    if (info[u].last_use < k) info[u].last_use = k;
    if (info[u].kernel >= 0 && info[u].kernel != k) info[u].materialized = true;
    if (info[u].inline_scalar || g->nodes[u].op == IR_CHAN_EXPAND)
        for (int j = 0; j < ir_op_nin[g->nodes[u].op]; j++)
            note_use(g, info, g->nodes[u].in[j], k);
}

/* Can loop kernel k run as the epilogue of GEMM kernel k − 1 (see above)? */
static bool is_epilogue(const Graph *g, const Fusion *f, int k) {
    const Kernel *gk = &f->kernels[k - 1], *lk = &f->kernels[k];
    if (gk->kind != K_GEMM || lk->kind != K_LOOP) return false;
    const IrNode *gemm = &g->nodes[gk->node];
    if (gemm->op != IR_GEMM || gemm->m != IR_BATCH_DIM || !lk->domain.batched ||
        lk->domain.n != gemm->n)
        return false;
    bool reads_gemm = false;
    for (int m = 0; m < lk->nnodes; m++) {
        const IrNode *n = &g->nodes[lk->nodes[m]];
        if (ir_op_class[n->op] == OPC_RED && !red_per_column(ir_op_red[n->op])) return false;
        if (n->op == IR_TILE) return false;
        for (int q = 0; q < ir_op_nin[n->op]; q++) {
            if (g->nodes[n->in[q]].op == IR_CHAN_EXPAND) return false;
            reads_gemm |= n->in[q] == gk->node;
        }
    }
    return reads_gemm;
}

Fusion *fuse_graph(Arena *a, const Graph *g) {
    Fusion *f = arena_alloc(a, sizeof *f);
    f->graph = g;
    f->info = arena_alloc(a, sizeof(NodeInfo) * (size_t)g->nnodes);
    bool *live = live_nodes(a, g), *is_out = output_nodes(a, g);
    int cap = 0, open = -1, members_cap = 0;

    for (int i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        NodeInfo *info = &f->info[i];
        info->kernel = -1;
        info->last_use = -1;
        if (!live[i] || ir_op_class[n->op] == OPC_LEAF) continue;
        if (ir_op_class[n->op] == OPC_EW && ir_is_scalar(n->type)) {
            info->inline_scalar = true;
            continue;
        }
        if (n->op == IR_CHAN_EXPAND) continue; /* loaded where used */
        if (n->op == IR_GEMM || ir_op_class[n->op] == OPC_NEST) {
            Kernel k = {.kind = n->op == IR_GEMM ? K_GEMM : K_NEST, .node = i};
            ARRAY_PUSH(a, f->kernels, f->nkernels, cap, k);
            info->kernel = f->nkernels - 1;
            open = -1;
            continue;
        }
        IrType d = domain_of(g, n);
        bool joins = open >= 0 && f->kernels[open].domain.batched == d.batched &&
                     f->kernels[open].domain.n == d.n && !reads_reduction_of(g, f->info, i, open);
        if (!joins) {
            Kernel k = {.kind = K_LOOP, .domain = d};
            ARRAY_PUSH(a, f->kernels, f->nkernels, cap, k);
            open = f->nkernels - 1;
            members_cap = 0;
        }
        Kernel *k = &f->kernels[open];
        ARRAY_PUSH(a, k->nodes, k->nnodes, members_cap, i);
        info->kernel = open;
    }

    for (int k = 1; k < f->nkernels; k++)
        f->kernels[k].epilogue = is_epilogue(g, f, k);

    /* Which values must be stored: read by another kernel, or an output. */
    for (int k = 0; k < f->nkernels; k++) {
        const Kernel *kn = &f->kernels[k];
        int count = kn->kind != K_LOOP ? 1 : kn->nnodes;
        for (int m = 0; m < count; m++) {
            const IrNode *n = &g->nodes[kn->kind != K_LOOP ? kn->node : kn->nodes[m]];
            for (int j = 0; j < ir_op_nin[n->op]; j++) {
                /* Only a loop can read a CHAN_EXPAND (as a load). */
                ensure(kn->kind == K_LOOP || g->nodes[n->in[j]].op != IR_CHAN_EXPAND);
                note_use(g, f->info, n->in[j], k);
            }
        }
    }
    for (int i = 0; i < g->nnodes; i++) {
        NodeInfo *info = &f->info[i];
        if (!live[i]) continue;
        if (is_out[i]) info->last_use = f->nkernels; /* read after the last kernel */
        if (is_out[i] && info->kernel >= 0) info->materialized = true;
        /* GEMM results and reductions always live in memory. */
        if (ir_op_class[g->nodes[i].op] == OPC_GEMM || ir_op_class[g->nodes[i].op] == OPC_RED ||
            ir_op_class[g->nodes[i].op] == OPC_NEST)
            info->materialized = true;
        /* Inline scalar outputs are stored once, after the kernels. */
        if (is_out[i] && info->inline_scalar) note_use(g, f->info, i, f->nkernels);
    }
    return f;
}

void fuse_dump(FILE *out, const Fusion *f) {
    const Graph *g = f->graph;
    fprintf(out, "kernels of %s: %d\n", ir_graph_name(g->kind), f->nkernels);
    for (int k = 0; k < f->nkernels; k++) {
        const Kernel *kn = &f->kernels[k];
        if (kn->kind != K_LOOP) {
            fprintf(out, "  k%d %s %%%d\n", k, ir_op_names[g->nodes[kn->node].op], kn->node);
            continue;
        }
        fprintf(out, "  k%d loop [%s%ld]:", k, kn->domain.batched ? "B," : "", kn->domain.n);
        for (int m = 0; m < kn->nnodes; m++) {
            int i = kn->nodes[m];
            fprintf(out, " %%%d:%s%s", i, ir_op_names[g->nodes[i].op],
                    f->info[i].materialized ? "*" : "");
        }
        if (kn->epilogue) fprintf(out, " (epilogue of k%d)", k - 1);
        fputc('\n', out);
    }
    fprintf(out, "  (* = stored)\n");
}

/* The positions per channel of a kernel that reads a CHAN_EXPAND or
 * computes a CHAN_SUM (its columns then loop as channel x position, so a
 * channel's value is loop-invariant in the inner loop); 1 for none. */
long kernel_hw(const Graph *g, const Kernel *k) {
    for (int m = 0; m < k->nnodes; m++) {
        const IrNode *node = &g->nodes[k->nodes[m]];
        if (ir_op_red[node->op] == RED_CHAN) return node->hw;
        for (int q = 0; q < ir_op_nin[node->op]; q++)
            if (g->nodes[node->in[q]].op == IR_CHAN_EXPAND) return g->nodes[node->in[q]].hw;
    }
    return 1;
}
