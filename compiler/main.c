/* main.c — the `aec` command line: check, build, run.
 * Parses arguments and hands them to the driver; usage errors exit 2. */
#include <stdlib.h>
#include <string.h>

#include "aec.h"
#include "config.h" /* generated: AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT */

static const char usage[] =
    "usage: aec check SPEC [--dump=tokens|ast|shapes|ir|grad|kernels|llvm]\n"
    "       aec build SPEC -o PROG                  a standalone trainer\n"
    "       aec build SPEC --emit obj|asm|llvm -o FILE  (obj also writes FILE's .h)\n"
    "             [--embed-weights W.safetensors] [--target TRIPLE] [--cpu NAME]\n"
    "             [--features LIST] [--dtype f32|f64] [-O0..-O3] [-g]\n"
    "       aec run SPEC -- ARGS                    the trainer, JIT-compiled: ARGS as for PROG\n"
    "       aec --version                           version, LLVM version, GEMM backend\n"
    "Specs are .ae files; see docs/language.md.\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "aec: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* `--key=value` or `--key value`: the value, advancing *i as needed. */
static const char *option_value(int argc, char **argv, int *i, const char *key) {
    size_t n = strlen(key);
    if (strncmp(argv[*i], key, n)) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] == 0 && *i + 1 < argc) return argv[++*i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("aec %s\nLLVM %s\nGEMM %s\n", AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT);
        return 0;
    }
    const char *cmd = argv[1], *spec = NULL, *dump = NULL, *out = NULL, *emit = NULL, *v;
    const char *weights = NULL;
    bool allow_unsupported = false;
    CodegenOptions opt = {.opt_level = 3};
    int run_argc = 0; /* aec run: the trainer's arguments, after `--` */
    char **run_argv = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--") && !strcmp(cmd, "run")) {
            run_argc = argc - i - 1;
            run_argv = argv + i + 1;
            break;
        }
        if ((v = option_value(argc, argv, &i, "--dump"))) dump = v;
        else if ((v = option_value(argc, argv, &i, "--embed-weights"))) weights = v;
        else if ((v = option_value(argc, argv, &i, "--emit"))) emit = v;
        else if ((v = option_value(argc, argv, &i, "--target"))) opt.triple = v;
        else if ((v = option_value(argc, argv, &i, "--cpu"))) opt.cpu = v;
        else if ((v = option_value(argc, argv, &i, "--features"))) opt.features = v;
        else if ((v = option_value(argc, argv, &i, "--dtype"))) {
            if (strcmp(v, "f32") && strcmp(v, "f64")) return usage_error("unknown dtype '%s' (f32, f64)", v);
            opt.f64 = !strcmp(v, "f64");
        } else if (!strcmp(argv[i], "-o") && i + 1 < argc) out = argv[++i];
        else if (!strncmp(argv[i], "-O", 2) && argv[i][2] >= '0' && argv[i][2] <= '3' && !argv[i][3])
            opt.opt_level = argv[i][2] - '0';
        else if (!strcmp(argv[i], "-g")) opt.debug = true;
        else if (!strcmp(argv[i], "--allow-unsupported")) allow_unsupported = true;
        else if (argv[i][0] == '-') return usage_error("unknown option '%s'", argv[i]);
        else if (!spec) spec = argv[i];
        else return usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!spec) return usage_error("%s needs a SPEC", cmd);
    if (!strcmp(cmd, "check")) return driver_check(spec, dump, allow_unsupported);
    if (!strcmp(cmd, "build")) {
        if (!out) return usage_error("build needs -o %s", emit ? "FILE" : "PROG");
        if (weights && !emit) return usage_error("%s", "--embed-weights needs --emit obj|asm|llvm");
        return driver_build(spec, out, emit, &opt, weights);
    }
    if (!strcmp(cmd, "run")) {
        if (out || emit || weights || opt.triple)
            return usage_error("%s", "run takes no -o, --emit, --embed-weights or --target");
        return driver_run(spec, &opt, run_argc, run_argv);
    }
    return usage_error("unknown command '%s' (check, build, run)", cmd);
}
