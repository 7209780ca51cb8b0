/* fuzz_spec.c — libFuzzer target: a spec through every stage before LLVM.
 *
 * Takes arbitrary bytes as the text of a spec and runs what `aec build`
 * runs before code generation: parse → check → compile_model (pipeline.c:
 * for every entry point and pretraining stage, lower → autodiff → verify →
 * fuse → plan → verify the plan). Produces nothing; a
 * crash, a sanitizer report, an internal error (exit 70) or a leak is a
 * finding. Errors in the spec are expected and go to /dev/null.
 * Built and run by `make fuzz` (docs/reliability.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    Model *m = ast && !diag_error_count() ? check_model(a, ast) : NULL;
    if (m) compile_model(a, m); /* every entry point: lower .. plan, each verified */
    arena_free(a);
    return 0;
}
