/* main.c — the `aec` command line: check, build, run, --version.
 * Parses arguments by the tables of options.c and hands them to the
 * driver; usage errors exit 2. */
#include <stdlib.h>
#include <string.h>

#include "aec.h"
#include "config.h" /* generated: AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT */

static void print_usage(FILE *f) {
    for (int c = 0; c < CLI_N_COMMANDS; c++)
        fprintf(f, "%s aec %s %s\n          %s\n", c ? "      " : "usage:", cli_commands[c].name,
                cli_commands[c].args, cli_commands[c].summary);
    fprintf(f, "       aec --version\n\noptions:\n");
    for (int o = 0; o < CLI_N_OPTIONS; o++) {
        const CliOption *opt = &cli_options[o];
        /* The value: its words when it has a list (obj|asm|llvm), else the metavar. */
        char value[64] = "";
        if (opt->values && strcmp(opt->values, "FILE"))
            for (const char *v = opt->values; *v && strlen(value) < sizeof value - 1; v++)
                value[strlen(value)] = *v == ' ' ? '|' : *v;
        else if (opt->metavar)
            snprintf(value, sizeof value, "%s", opt->metavar);
        char head[96];
        snprintf(head, sizeof head, "%s%s%s", opt->name,
                 !opt->metavar || o == CLI_OPT_OPT ? ""
                 : o == CLI_OPT_OUT                ? " "
                                                   : "=",
                 value);
        fprintf(f, "  %-26s %s (%s)\n", head, opt->help, opt->commands);
    }
    fprintf(f, "Specs are .ae files: aec(5), docs/language.md; the trainer: aec-trainer(1).\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "aec: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    print_usage(stderr);
    return 2;
}

/* `--key=value` or `--key value` (`-O3`: attached), or a flag: the index of
 * the option argv[*i] is, its value in *value (advancing *i), or -1. */
static int match_option(int argc, char **argv, int *i, const char **value) {
    for (int o = 0; o < CLI_N_OPTIONS; o++) {
        const char *name = cli_options[o].name, *arg = argv[*i];
        size_t n = strlen(name);
        if (strncmp(arg, name, n)) continue;
        if (!cli_options[o].metavar) {
            if (arg[n]) continue;
            *value = "";
        } else if (o == CLI_OPT_OPT) {
            if (!arg[n]) continue;
            *value = arg + n;
        } else if (arg[n] == '=') {
            *value = arg + n + 1;
        } else if (arg[n] == 0 && *i + 1 < argc) {
            *value = argv[++*i];
        } else
            continue;
        return o;
    }
    return -1;
}

/* Whether `word` is one of the space-separated `words`. */
static bool one_of(const char *word, const char *words) {
    size_t n = strlen(word);
    for (const char *w = strstr(words, word); w; w = strstr(w + 1, word))
        if ((w == words || w[-1] == ' ') && (w[n] == ' ' || w[n] == 0)) return true;
    return false;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("aec %s\nLLVM %s\nGEMM %s\n", AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT);
        return 0;
    }
    const char *cmd = argv[1], *spec = NULL, *val[CLI_N_OPTIONS] = {0};
    int run_argc = 0; /* aec run: the trainer's arguments, after `--` */
    char **run_argv = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--") && !strcmp(cmd, "run")) {
            run_argc = argc - i - 1;
            run_argv = argv + i + 1;
            break;
        }
        const char *v;
        int o = match_option(argc, argv, &i, &v);
        if (o >= 0) {
            const CliOption *opt = &cli_options[o];
            if (opt->values && strcmp(opt->values, "FILE") && !one_of(v, opt->values)) {
                fprintf(stderr, "aec: error: unknown %s '%s' (%s)\n", opt->name, v, opt->values);
                return 2;
            }
            val[o] = v;
        } else if (argv[i][0] == '-')
            return usage_error("unknown option '%s'", argv[i]);
        else if (!spec)
            spec = argv[i];
        else
            return usage_error("unexpected argument '%s'", argv[i]);
    }
    CodegenOptions opt = {
        .opt_level = val[CLI_OPT_OPT] ? val[CLI_OPT_OPT][0] - '0' : 3,
        .triple = val[CLI_OPT_TARGET],
        .cpu = val[CLI_OPT_CPU],
        .features = val[CLI_OPT_FEATURES],
        .f64 = val[CLI_OPT_DTYPE] && !strcmp(val[CLI_OPT_DTYPE], "f64"),
        .debug = val[CLI_OPT_DEBUG] != NULL,
        .gemm = !val[CLI_OPT_GEMM]                   ? GEMM_DEFAULT
                : !strcmp(val[CLI_OPT_GEMM], "blas") ? GEMM_BLAS
                                                     : GEMM_AEC,
        .im2col = val[CLI_OPT_CONV] && !strcmp(val[CLI_OPT_CONV], "im2col"),
        .embed_half = val[CLI_OPT_EMBED_HALF] != NULL,
    };
    const char *out = val[CLI_OPT_OUT], *emit = val[CLI_OPT_EMIT];
    const char *weights = val[CLI_OPT_EMBED_WEIGHTS];
    if (!spec) return usage_error("%s needs a SPEC", cmd);
    if (!strcmp(cmd, "check")) return driver_check(spec, val[CLI_OPT_DUMP]);
    if (!strcmp(cmd, "build")) {
        if (!out) return usage_error("build needs -o %s", emit ? "FILE" : "PROG");
        if (weights && !emit) return usage_error("%s", "--embed-weights needs --emit obj|asm|llvm");
        if (opt.embed_half && !weights)
            return usage_error("%s", "--embed-half needs --embed-weights W.safetensors");
        bool mpi = val[CLI_OPT_MPI] != NULL;
        if (mpi && emit) return usage_error("%s", "--mpi builds a trainer: it takes no --emit");
        return driver_build(spec, out, emit, &opt, weights, mpi);
    }
    if (!strcmp(cmd, "run")) {
        if (out || emit || weights || opt.embed_half || opt.triple || val[CLI_OPT_MPI])
            return usage_error("%s", "run takes no -o, --emit, --embed-weights, --embed-half, "
                                     "--target or --mpi");
        return driver_run(spec, &opt, run_argc, run_argv);
    }
    return usage_error("unknown command '%s' (check, build, run)", cmd);
}
