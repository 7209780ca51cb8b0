/* cli.c — the trainer program: `aec_main`.
 *
 * Takes a model table and argv; finds the command in `aec_commands`
 * (commands.c), parses its options into aec_args (args.c), and runs its
 * handler (cmd_<name>.c). Returns the exit status: 0 on success, 1 when
 * the work failed (the error was printed where it was found),
 * AEC_EXIT_USAGE (2) for a usage error (printed here, with a pointer to
 * --help). The command list, `--help` and "did you mean" all follow the
 * two tables.
 */
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "config.h" /* generated: AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT */
#include "pool.h"

/* ------------------------------------------------------------------- usage */

static void print_usage(FILE *f) {
    const char *prog = aec_prog();
    fprintf(f, "usage: %s COMMAND [options]\n\ncommands:\n", prog);
    for (size_t i = 0; i < aec_n_commands; i++)
        fprintf(f, "  %-12s %s\n", aec_commands[i].name, aec_commands[i].summary);
    fprintf(f, "\n'%s COMMAND --help' shows a command's options.\n", prog);
}

static void print_help(const aec_command *c) {
    printf("usage: %s %s %s\n\n%s\n\noptions:\n", aec_prog(), c->name, c->args, c->summary);
    for (const aec_option *const *p = c->options; *p; p++) {
        const aec_option *o = *p;
        char left[48];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                 o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-24s %s\n", left, o->help);
    }
}

/* ---------------------------------------------------------------- aec_main */

const aec_command *aec_find_command(const char *name) {
    for (size_t i = 0; i < aec_n_commands; i++)
        if (strcmp(aec_commands[i].name, name) == 0) return &aec_commands[i];
    return NULL;
}

int aec_main(const aec_model *m, int argc, char **argv) {
    /* A write beyond the file-size limit (ulimit -f) fails with EFBIG, which
     * the atomic writer reports keeping the old file, instead of SIGXFSZ
     * killing the trainer mid-checkpoint. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        aec_set_prog(slash ? slash + 1 : argv[0]);
    }
    const char *prog = aec_prog();
    if (!m || m->abi_version != AEC_ABI_VERSION || (m->dtype != AEC_F32 && m->dtype != AEC_F64)) {
        fprintf(stderr,
                "%s: error: the model was built for ABI version %u, this runtime is "
                "version %d (rebuild with the same aec)\n",
                prog, m ? m->abi_version : 0, AEC_ABI_VERSION);
        return 1;
    }
    if (m->max_batch < 1 || m->input_size < 1 || m->code_size < 1) {
        fprintf(stderr,
                "%s: error: model table %s is malformed (max_batch %d, input_size %lld, "
                "code_size %lld)\n",
                prog, m->name, m->max_batch, (long long)m->input_size, (long long)m->code_size);
        return 1;
    }
    if (argc < 2) {
        print_usage(stderr);
        return AEC_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--version")) { /* the runtime's version, and what built the model */
        printf("%s: model %s, trainer of aec %s\nmodel built by %s\nLLVM %s\nGEMM %s\n", prog,
               m->name, AEC_VERSION, m->producer ? m->producer : "?", AEC_LLVM_VERSION,
               m->gemm ? m->gemm : "?");
        return 0;
    }
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        const aec_command *c = argc > 2 ? aec_find_command(argv[2]) : NULL;
        if (c)
            print_help(c);
        else
            print_usage(stdout);
        return 0;
    }
    const aec_command *c = aec_find_command(name);
    if (!c) {
        const char *hint =
            aec_closest(name, &aec_commands[0].name, aec_n_commands, sizeof aec_commands[0]);
        fprintf(stderr, "%s: unknown command '%s'", prog, name);
        if (hint) fprintf(stderr, " (did you mean '%s'?)", hint);
        fprintf(stderr, "\n");
        print_usage(stderr);
        return AEC_EXIT_USAGE;
    }
    aec_args a = {0};
    int st = aec_parse_args(c, argc - 2, argv + 2, &a);
    if (st) return st;
    if (a.help) {
        print_help(c);
        return 0;
    }
    aec_trainer_set_threads(a.threads ? a.threads : aec_online_cpus());
    return c->run(c, m, &a);
}
