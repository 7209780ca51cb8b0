/* test_parser.c — the front end's plumbing: util (arena, diagnostics,
 * suggestions, files), the lexer and the parser.
 *
 * Golden files: every tests/golden/lexer/NAME.ae beside NAME.tokens (its
 * token dump), and every tests/golden/parser/NAME.ae beside NAME.ast (its
 * AST dump) if it parses or NAME.err (the exact diagnostics) if it does
 * not. AEC_UPDATE_GOLDEN=1 rewrites them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "aec.h"
#include "golden.h"

/* Sources stay registered with the diagnostics, so their text and name are
 * kept for the whole run (never freed). */
static char *rel_path(const char *dir, const char *name, const char *ext) {
    size_t n = strlen(dir) + strlen(name) + strlen(ext) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s%s", dir, name, ext);
    return p;
}

static void test_lexer_goldens(void **state) {
    (void)state;
    const char *dir = "tests/golden/lexer";
    char **names = golden_list(dir, ".ae");
    int count = 0, failed = 0;
    for (char **n = names; *n; n++, count++) {
        char *spec = rel_path(dir, *n, ".ae");
        char *text = golden_read(spec);
        assert_non_null(text);
        Capture cap;
        capture_begin(&cap);
        lex_dump_tokens(cap.f, spec, text);
        char *out = capture_end(&cap);
        char *expected = rel_path(dir, *n, ".tokens");
        failed += !golden_expect(expected, out);
        free(expected);
        free(out);
    }
    golden_free_list(names);
    assert_true(count > 0);
    assert_int_equal(failed, 0);
}

static void test_parser_goldens(void **state) {
    (void)state;
    const char *dir = "tests/golden/parser";
    char **names = golden_list(dir, ".ae");
    int count = 0, failed = 0;
    for (char **n = names; *n; n++, count++) {
        char *spec = rel_path(dir, *n, ".ae");
        char *text = golden_read(spec);
        assert_non_null(text);
        Arena *a = arena_new();
        Capture cap;
        capture_begin(&cap);
        AstModel *m = parse_spec(a, spec, text);
        if (m) ast_dump(cap.f, m);
        int errors = diag_error_count();
        char *out = capture_end(&cap);
        /* A spec parses exactly when it reports nothing. */
        if ((m != NULL) != (errors == 0)) {
            fprintf(stderr, "%s: parse_spec returned %p after %d errors\n", spec, (void *)m,
                    errors);
            failed++;
        }
        char *expected = rel_path(dir, *n, m ? ".ast" : ".err");
        failed += !golden_expect(expected, out);
        free(expected);
        free(out);
        arena_free(a);
    }
    golden_free_list(names);
    assert_true(count > 0);
    assert_int_equal(failed, 0);
}

/* Locations are what every diagnostic stands on: check them exactly. */
static void test_locations(void **state) {
    (void)state;
    Arena *a = arena_new();
    diag_reset();
    const char *text = "model m {\n  dense 64 lr = -1e-3 leaky_relu=0.2\n\tconv 8 3x3\n}\n";
    AstModel *m = parse_spec(a, "loc.ae", text);
    assert_non_null(m);
    assert_int_equal(m->nstmts, 1);
    const AstStmt *model = m->stmts[0];
    assert_int_equal(model->loc.line, 1);
    assert_int_equal(model->loc.col, 1);
    assert_int_equal(model->loc.len, 5);
    assert_true(model->has_body);
    assert_int_equal(model->body_loc.col, 9);
    assert_int_equal(model->nbody, 2);

    const AstStmt *dense = model->body[0];
    assert_string_equal(dense->keyword, "dense");
    assert_int_equal(dense->loc.line, 2);
    assert_int_equal(dense->loc.col, 3);
    assert_int_equal(dense->nargs, 3);
    const AstArg *units = dense->args[0], *lr = dense->args[1], *slope = dense->args[2];
    assert_null(units->key);
    assert_int_equal(units->value->kind, AV_NUMBER);
    assert_true(units->value->number.is_int);
    assert_int_equal(units->loc.col, 9);
    assert_int_equal(units->loc.len, 2);
    assert_string_equal(lr->key, "lr");
    assert_int_equal(lr->key_loc.col, 12);
    assert_int_equal(lr->key_loc.len, 2);
    assert_int_equal(lr->loc.col, 12); /* the whole `lr = -1e-3` */
    assert_int_equal(lr->loc.len, 10);
    assert_int_equal(lr->value->loc.col, 17);
    assert_int_equal(lr->value->loc.len, 5);
    assert_true(lr->value->number.value == -1e-3);
    assert_false(lr->value->number.is_int);
    assert_string_equal(slope->key, "leaky_relu");

    const AstStmt *conv = model->body[1];
    assert_int_equal(conv->loc.line, 3);
    assert_int_equal(conv->loc.col, 2); /* a tab is one column */
    assert_int_equal(conv->args[1]->value->kind, AV_SHAPE);
    assert_int_equal(conv->args[1]->value->shape.ndim, 2);
    assert_int_equal(conv->args[1]->value->shape.dim[0], 3);
    assert_int_equal(diag_error_count(), 0);
    arena_free(a);
}

static void test_numbers_and_shapes(void **state) {
    (void)state;
    Arena *a = arena_new();
    diag_reset();
    AstModel *m = parse_spec(a, "num.ae", "x 64 0.5 .5 1e-3 2E3 -7 +3 1x28x28 3x3 64.\n");
    assert_non_null(m);
    const AstStmt *s = m->stmts[0];
    assert_int_equal(s->nargs, 10);
    const double want[] = {64, 0.5, 0.5, 1e-3, 2000, -7, 3};
    const bool is_int[] = {true, false, false, false, true, true, true};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(s->args[i]->value->kind, AV_NUMBER);
        assert_true(s->args[i]->value->number.value == want[i]);
        assert_int_equal(s->args[i]->value->number.is_int, is_int[i]);
    }
    const AstValue *img = s->args[7]->value;
    assert_int_equal(img->kind, AV_SHAPE);
    assert_int_equal(img->shape.ndim, 3);
    assert_int_equal(img->shape.dim[0], 1);
    assert_int_equal(img->shape.dim[2], 28);
    assert_string_equal(img->text, "1x28x28");
    assert_int_equal(s->args[9]->value->number.value, 64);
    arena_free(a);
}

static void test_suggest(void **state) {
    (void)state;
    const char *const layers[] = {"dense", "conv", "deconv", "maxpool", "flatten", "reshape"};
    const char *const acts[] = {"linear", "relu", "leaky_relu", "sigmoid", "tanh"};
    assert_string_equal(suggest("dens", layers, 6), "dense");
    assert_string_equal(suggest("Dense", layers, 6), "dense"); /* case is a slip, too */
    assert_string_equal(suggest("flaten", layers, 6), "flatten");
    assert_string_equal(suggest("rleu", acts, 5), "relu"); /* swapped letters cost one */
    assert_string_equal(suggest("sigmod", acts, 5), "sigmoid");
    assert_null(suggest("banana", layers, 6));
    assert_null(suggest("x", acts, 5));
    assert_null(suggest("relu", acts, 0));
}

/* The exact diagnostic format, with a tab before the caret's column. */
static void test_diag_format(void **state) {
    (void)state;
    diag_register_source("fmt.ae", "model m {\n\tdense 128 rleu\n}");
    Capture cap;
    capture_begin(&cap);
    diag_error((Loc){"fmt.ae", 2, 12, 4}, "unknown activation '%s'", "rleu");
    diag_note((Loc){"fmt.ae", 3, 1, 1}, "here");
    diag_error((Loc){"fmt.ae", 2, 13, 40}, "long span is cut at the end of the line");
    diag_error((Loc){"fmt.ae", 0, 0, 0}, "no line");
    diag_error((Loc){NULL, 0, 0, 0}, "no file");
    diag_error((Loc){"fmt.ae", 9, 1, 1}, "past the end");
    assert_int_equal(diag_error_count(), 5);
    char *out = capture_end(&cap);
    assert_string_equal(out, "fmt.ae:2:12: error: unknown activation 'rleu'\n"
                             "    2 | \tdense 128 rleu\n"
                             "      | \t          ^~~~\n"
                             "fmt.ae:3:1: note: here\n"
                             "    3 | }\n"
                             "      | ^\n"
                             "fmt.ae:2:13: error: long span is cut at the end of the line\n"
                             "    2 | \tdense 128 rleu\n"
                             "      | \t           ^~~\n"
                             "fmt.ae: error: no line\n"
                             "aec: error: no file\n"
                             "fmt.ae:9:1: error: past the end\n");
    free(out);
    diag_reset();
    assert_int_equal(diag_error_count(), 0);
}

static void test_arena(void **state) {
    (void)state;
    Arena *a = arena_new();
    for (int i = 0; i < 10000; i++) {
        unsigned char *p = arena_alloc(a, (size_t)(i % 97) + 1);
        assert_true((uintptr_t)p % _Alignof(max_align_t) == 0);
        for (int k = 0; k < i % 97 + 1; k++)
            assert_int_equal(p[k], 0);
        p[0] = 0xff;
    }
    unsigned char *big = arena_alloc(a, 1 << 20); /* larger than a block */
    assert_int_equal(big[(1 << 20) - 1], 0);
    assert_string_equal(arena_strdup(a, "dense"), "dense");
    assert_string_equal(arena_printf(a, "%s.%d.%s", "encoder", 3, "weight"), "encoder.3.weight");
    arena_free(a);
    arena_free(NULL);
}

static void test_read_file_text(void **state) {
    (void)state;
    size_t len = 0;
    char *text = read_file_text(AEC_SOURCE_DIR "/tests/golden/lexer/tokens.ae", &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    free(text);
    assert_null(read_file_text(AEC_SOURCE_DIR "/tests/golden/no-such-file.ae", NULL));
}

/* An internal error is aec's bug: it says where and exits 70. */
static void test_internal_error(void **state) {
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        internal_error("broken invariant %d", 42);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 70);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lexer_goldens),  cmocka_unit_test(test_parser_goldens),
        cmocka_unit_test(test_locations),      cmocka_unit_test(test_numbers_and_shapes),
        cmocka_unit_test(test_suggest),        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_arena),          cmocka_unit_test(test_read_file_text),
        cmocka_unit_test(test_internal_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
