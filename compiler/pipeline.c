/* pipeline.c — the pass list: a checked Model in, a Program out.
 *
 * For every entry point of the model — train, optim, eval, encode, decode,
 * and the train and optim graphs of each layer-wise pretraining stage — it
 * runs the middle of the compiler in order:
 *
 *   lower -> autodiff (training graphs) -> verify -> fuse -> plan -> verify the plan
 *
 * and collects what the back end needs besides the graphs (the largest
 * workspace, the optimizer's state slots, the names of the loss's terms,
 * the layer table). `aec build`, `aec run` and every `--dump` consume the
 * one Program this makes; codegen only emits it.
 */
#include <stdlib.h>
#include <string.h>

#include "aec.h"

static Entry compile_entry(Arena *a, const Model *m, GraphKind kind, int stage) {
    Entry e = {.kind = kind, .stage = stage};
    e.graph = lower_model_stage(a, m, kind, stage);
    if (kind == GRAPH_TRAIN) grad_build(e.graph);
    ir_verify(e.graph);
    e.fusion = fuse_graph(a, e.graph);
    e.plan = plan_memory(a, e.fusion);
    plan_verify(e.plan);
    return e;
}

Program *compile_model(Arena *a, const Model *m) {
    Program *p = arena_alloc(a, sizeof *p);
    p->model = m;
    static const GraphKind kinds[] = {GRAPH_TRAIN, GRAPH_OPTIM, GRAPH_EVAL, GRAPH_ENCODE,
                                      GRAPH_DECODE};
    p->entries = arena_alloc(a, sizeof(Entry) * (size_t)(countof(kinds) + 2 * m->nstages));
    for (int k = 0; k < countof(kinds); k++)
        p->entries[p->nentries++] = compile_entry(a, m, kinds[k], 0);
    for (int s = 1; s <= m->nstages; s++) {
        p->entries[p->nentries++] = compile_entry(a, m, GRAPH_TRAIN, s);
        p->entries[p->nentries++] = compile_entry(a, m, GRAPH_OPTIM, s);
    }
    for (int e = 0; e < p->nentries; e++) {
        const Plan *plan = p->entries[e].plan;
        if (plan->ws_batch > p->ws_batch) p->ws_batch = plan->ws_batch;
        if (plan->ws_const > p->ws_const) p->ws_const = plan->ws_const;
        if (plan->ws_slot > p->ws_slot) p->ws_slot = plan->ws_slot;
    }
    p->opt_slots = lower_opt_slots(m);
    p->nmetrics = lower_metrics(m, p->metric_names);
    char *table = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&table, &len);
    check_print_table(mem, m);
    fclose(mem);
    p->summary = arena_strdup(a, table);
    free(table);
    return p;
}

void program_dump(FILE *out, const Program *p, const char *what) {
    if (!strcmp(what, "ir")) { /* the graphs as lowered: eval's and optim's */
        ir_dump(out, program_entry(p, GRAPH_EVAL, 0)->graph);
        ir_dump(out, program_entry(p, GRAPH_OPTIM, 0)->graph);
    } else if (!strcmp(what, "grad")) { /* train's, with its backward pass */
        ir_dump(out, program_entry(p, GRAPH_TRAIN, 0)->graph);
    } else { /* kernels and memory plan of each graph but the stages' */
        static const GraphKind kinds[] = {GRAPH_TRAIN, GRAPH_OPTIM, GRAPH_EVAL, GRAPH_ENCODE,
                                          GRAPH_DECODE};
        for (int k = 0; k < countof(kinds); k++) {
            const Entry *e = program_entry(p, kinds[k], 0);
            fuse_dump(out, e->fusion);
            plan_dump(out, e->plan);
        }
    }
}
