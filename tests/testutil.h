/* testutil.h — helpers the cmocka suites share: compile a spec given as
 * text through the whole pipeline and JIT it in process, aligned buffers,
 * deterministic test data. Header-only: each suite is one translation unit. */
#ifndef AEC_TESTUTIL_H
#define AEC_TESTUTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

/* Parse and check `text` as if read from `name`; NULL (errors reported) on failure. */
static inline Model *tu_model(Arena *a, const char *name, const char *text) {
    AstModel *ast = parse_spec(a, name, arena_strdup(a, text));
    if (!ast || diag_error_count()) return NULL;
    return check_model(a, ast);
}

/* The whole pipeline to a JIT-compiled model table. *cg keeps it alive. */
static inline const aec_model *tu_jit(Arena *a, const char *text, bool f64, Codegen **cg) {
    Model *m = tu_model(a, "test.ae", text);
    if (!m) return NULL;
    CodegenOptions opt = {.f64 = f64, .opt_level = 2};
    *cg = cg_model(m, &opt);
    if (!*cg) return NULL;
    char sym[256];
    snprintf(sym, sizeof sym, "%s_model", cg_prefix(*cg));
    return cg_jit_lookup(*cg, sym);
}

static inline void *tu_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, AEC_ALIGN, bytes ? bytes : AEC_ALIGN)) return NULL;
    memset(p, 0, bytes);
    return p;
}

/* A small deterministic generator for test data (not the model's RNG). */
static inline double tu_rand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * 0x1p-53;
}

#endif
