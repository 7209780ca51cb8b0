/* test_dumps.c — the middle of the pipeline, stage by stage, for every spec.
 *
 * For each specs/NAME.ae, what `aec check --dump=ir|grad|kernels` prints
 * (program_dump of compile_model's Program) must equal
 * tests/golden/dumps/NAME.ir, NAME.grad and NAME.kernels: the lowered
 * graphs, the gradient graph, the kernels with what each stores and the
 * memory plan. A lost fusion, a changed buffer reuse or a new node in a
 * backward pass shows as a diff even when no number changes.
 * AEC_UPDATE_GOLDEN=1 rewrites the goldens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "golden.h"
#include "testutil.h"

static void test_dump_goldens(void **state) {
    (void)state;
    static const char *const whats[] = {"ir", "grad", "kernels"};
    char **names = golden_list("specs", ".ae");
    int count = 0, failed = 0;
    for (char **n = names; *n; n++, count++) {
        char rel[512];
        snprintf(rel, sizeof rel, "specs/%s.ae", *n);
        char *text = golden_read(rel);
        assert_non_null(text);
        Arena *a = arena_new();
        Model *m = tu_model(a, rel, text);
        if (!m) fail_msg("%s does not check", rel);
        Program *p = compile_model(a, m);
        for (int w = 0; w < countof(whats); w++) {
            char *out = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&out, &len);
            program_dump(f, p, whats[w]);
            fclose(f);
            char golden[512];
            snprintf(golden, sizeof golden, "tests/golden/dumps/%s.%s", *n, whats[w]);
            if (!golden_expect(golden, out)) failed++;
            free(out);
        }
        arena_free(a);
        free(text);
        free(*n);
    }
    free(names);
    assert_true(count >= 14); /* every shipped spec */
    assert_int_equal(failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dump_goldens)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
