/* fuzz_spec.c — libFuzzer target: a spec through every stage before LLVM.
 *
 * Takes arbitrary bytes as the text of a spec and runs what `aec build`
 * runs before code generation: parse → check → lower (every entry point and
 * every pretraining stage) → autodiff → fuse → plan. Produces nothing; a
 * crash, a sanitizer report, an internal error (exit 70) or a leak is a
 * finding. Errors in the spec are expected and go to /dev/null.
 * Built and run by `make fuzz` (docs/reliability.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void pipeline(Arena *a, const Model *m, GraphKind kind, int stage) {
    Graph *g = stage ? lower_model_stage(a, m, kind, stage) : lower_model(a, m, kind);
    if (kind == GRAPH_TRAIN) grad_build(g);
    ir_verify(g);
    plan_memory(a, fuse_graph(a, g));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *devnull;
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        diag_set_stream(devnull);
    }
    Arena *a = arena_new();
    char *text = arena_alloc(a, size + 1); /* NUL-terminated, as read_file_text gives it */
    memcpy(text, data, size);
    diag_reset();
    AstModel *ast = parse_spec(a, "fuzz.ae", text);
    Model *m = ast && !diag_error_count() ? check_model_ex(a, ast, false) : NULL;
    if (m) {
        const GraphKind kinds[] = {GRAPH_TRAIN, GRAPH_OPTIM, GRAPH_EVAL, GRAPH_ENCODE, GRAPH_DECODE};
        for (int k = 0; k < countof(kinds); k++) pipeline(a, m, kinds[k], 0);
        for (int s = 1; s <= lower_stage_count(m); s++) {
            pipeline(a, m, GRAPH_TRAIN, s);
            pipeline(a, m, GRAPH_OPTIM, s);
        }
    }
    arena_free(a);
    return 0;
}
