/* test_cli.c — the trainer's command and option tables, and the edit distance.
 *
 * The command line is generated from two tables (runtime/commands.c), and
 * completion and man pages will be too, so the tables' invariants are
 * checked here: every row complete, names unique, aliases unambiguous within
 * a command, every command listing --help and reaching its own handler.
 * The edit distance is the one copy the trainer and the compiler share; its
 * two modes are pinned on hand-computed cases.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <string.h>

#include "cli.h"

static void test_edit_distance_strict(void **state) {
    (void)state;
    assert_int_equal(aec_edit_distance("", "", 0), 0);
    assert_int_equal(aec_edit_distance("", "abc", 0), 3);
    assert_int_equal(aec_edit_distance("--epochs", "--epochs", 0), 0);
    assert_int_equal(aec_edit_distance("--epoch", "--epochs", 0), 1);  /* insertion */
    assert_int_equal(aec_edit_distance("--epochz", "--epochs", 0), 1); /* substitution */
    assert_int_equal(aec_edit_distance("--epcohs", "--epochs", 0), 2); /* a swap is two edits */
    assert_int_equal(aec_edit_distance("--EPOCHS", "--epochs", 0), 6); /* case counts */
    assert_int_equal(aec_edit_distance("kitten", "sitting", 0), 3);
}

static void test_edit_distance_loose(void **state) {
    (void)state;
    int loose = AEC_EDIT_SWAP | AEC_EDIT_NOCASE;
    assert_int_equal(aec_edit_distance("rleu", "relu", loose), 1);
    assert_int_equal(aec_edit_distance("rleu", "relu", AEC_EDIT_SWAP), 1);
    assert_int_equal(aec_edit_distance("rleu", "relu", AEC_EDIT_NOCASE), 2);
    assert_int_equal(aec_edit_distance("ReLU", "relu", loose), 0);
    assert_int_equal(aec_edit_distance("ReLU", "relu", AEC_EDIT_SWAP), 3);
    assert_int_equal(aec_edit_distance("ca", "abc", loose),
                     3); /* OSA, not Damerau: no edit after a swap */
    assert_int_equal(aec_edit_distance("kitten", "sitting", loose), 3);
}

static void test_edit_distance_long_words_are_far(void **state) {
    (void)state;
    char w[65];
    memset(w, 'a', 64);
    w[64] = 0;
    assert_int_equal(aec_edit_distance(w, "a", 0), AEC_EDIT_FAR);
    w[63] = 0; /* 63 characters: still measured */
    assert_int_equal(aec_edit_distance(w, w, 0), 0);
    assert_int_equal(aec_edit_distance(w, "", 0), 63);
}

static void test_options_are_complete(void **state) {
    (void)state;
    for (int i = 0; i < AEC_N_OPTIONS; i++) {
        const aec_option *o = &aec_options[i];
        assert_non_null(o->name); /* a row the enum names but the table forgot */
        assert_true(strncmp(o->name, "--", 2) == 0);
        assert_true(!o->alias || (o->alias[0] == '-' && o->alias[1] && o->alias[1] != '-'));
        assert_true(o->help && o->help[0]);
        assert_true((o->kind == AEC_OPT_FLAG) == (o->metavar == NULL));
        assert_true(o->at + o->size <= sizeof(aec_args));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(o->name, aec_options[j].name);
    }
}

static void test_commands_are_complete(void **state) {
    (void)state;
    assert_true(aec_n_commands >= 8);
    for (size_t i = 0; i < aec_n_commands; i++) {
        const aec_command *c = &aec_commands[i];
        assert_true(c->name && c->args && c->summary && c->summary[0] && c->run);
        assert_ptr_equal(aec_find_command(c->name), c);
        int help = 0;
        for (const aec_option *const *p = c->options; *p; p++) {
            help |= *p == &aec_options[AEC_OPT_HELP];
            for (const aec_option *const *q = c->options; q < p; q++) {
                assert_ptr_not_equal(*p, *q);
                assert_true(!(*p)->alias || !(*q)->alias || strcmp((*p)->alias, (*q)->alias));
            }
        }
        assert_true(help);
    }
    assert_null(aec_find_command("trian"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_distance_strict),
        cmocka_unit_test(test_edit_distance_loose),
        cmocka_unit_test(test_edit_distance_long_words_are_far),
        cmocka_unit_test(test_options_are_complete),
        cmocka_unit_test(test_commands_are_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
