/* cli.c — the trainer program's command line: `aec_main`.
 *
 * Takes a model table and argv; finds the command in `aec_commands`, parses
 * its options from `aec_options` (commands.c) into aec_args, and runs its
 * handler (cmd_<name>.c). Returns the exit status: 0 on success, 1 when
 * the work failed (the error was printed where it was found),
 * AEC_EXIT_USAGE (2) for a usage error (printed here, with a pointer to
 * --help). The command list, `--help` and "did you mean" all follow the
 * two tables.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h" /* generated: AEC_VERSION, AEC_LLVM_VERSION, AEC_GEMM_DEFAULT */

static const char *prog = "aec-model";

/* ------------------------------------------------------------------- usage */

static void print_usage(FILE *f) {
    fprintf(f, "usage: %s COMMAND [options]\n\ncommands:\n", prog);
    for (size_t i = 0; i < aec_n_commands; i++)
        fprintf(f, "  %-12s %s\n", aec_commands[i].name, aec_commands[i].summary);
    fprintf(f, "\n'%s COMMAND --help' shows a command's options.\n", prog);
}

static void print_help(const aec_command *c) {
    printf("usage: %s %s %s\n\n%s\n\noptions:\n", prog, c->name, c->args, c->summary);
    for (const aec_option *const *p = c->options; *p; p++) {
        const aec_option *o = *p;
        char left[48];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                 o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-24s %s\n", left, o->help);
    }
}

int aec_usage_error(const aec_command *c, const char *fmt, const char *arg, const char *hint) {
    fprintf(stderr, "%s %s: ", prog, c->name);
    fprintf(stderr, fmt, arg);
    if (hint) fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "\nsee '%s %s --help'\n", prog, c->name);
    return AEC_EXIT_USAGE;
}

int aec_require(const aec_command *c, const char *value, const char *name) {
    return value ? 0 : aec_usage_error(c, "%s is required", name, NULL);
}

/* ----------------------------------------------------------------- parsing */

static int parse_value(const aec_command *c, const aec_option *o, const char *v, aec_args *a) {
    char *base = (char *)a + o->at, *end;
    errno = 0;
    if (o->kind == AEC_OPT_STR) {
        *(const char **)base = v;
    } else if (o->kind == AEC_OPT_U64) {
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno || *v == '-')
            return aec_usage_error(c, "%s expects a non-negative whole number", o->name, NULL);
        *(uint64_t *)base = x;
    } else if (o->kind == AEC_OPT_REAL) {
        double x = strtod(v, &end);
        if (end == v || *end || !(x >= 0) || !isfinite(x))
            return aec_usage_error(c, "%s expects a number >= 0", o->name, NULL);
        *(double *)base = x;
    } else {
        long long x = strtoll(v, &end, 10), min = o->kind == AEC_OPT_POSITIVE ? 1 : 0;
        long long max = o->size == sizeof(int32_t) ? INT32_MAX : INT64_MAX;
        if (end == v || *end || errno || x < min || x > max)
            return aec_usage_error(
                c, min ? "%s expects a whole number >= 1" : "%s expects a whole number >= 0",
                o->name, NULL);
        if (o->size == sizeof(int32_t))
            *(int32_t *)base = (int32_t)x;
        else
            *(int64_t *)base = x;
    }
    return 0;
}

static const aec_option *find_option(const aec_command *c, const char *name, size_t len) {
    for (const aec_option *const *p = c->options; *p; p++) {
        const aec_option *o = *p;
        if ((strlen(o->name) == len && !strncmp(o->name, name, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, name, len)))
            return o;
    }
    return NULL;
}

/* The closest of `names` (n of them, `stride` bytes apart) to `word` within
 * an edit distance of 2 (exact letters, no swaps), the first on a tie. */
static const char *closest(const char *word, const char *const *names, size_t n, size_t stride) {
    const char *hint = NULL;
    int best = 3;
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        int d = aec_edit_distance(word, name, 0);
        if (d < best) best = d, hint = name;
    }
    return hint;
}

/* `--name value`, `--name=value`, `-o value`; one positional argument for a
 * command that takes one (aec_command.positional). */
static int parse_args(const aec_command *c, int argc, char **argv, aec_args *a) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if ((arg[0] != '-' || !arg[1]) && c->positional && !a->input) {
            a->input = arg;
            continue;
        }
        if (arg[0] != '-' || !arg[1])
            return aec_usage_error(c, "unexpected argument '%s'", arg, NULL);
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const aec_option *o = find_option(c, arg, len);
        if (!o) {
            const char *names[AEC_N_OPTIONS];
            size_t n = 0;
            for (const aec_option *const *p = c->options; *p; p++)
                names[n++] = (*p)->name;
            return aec_usage_error(c, "unknown option '%s'", arg,
                                   closest(arg, names, n, sizeof names[0]));
        }
        if (o->kind == AEC_OPT_LIST) {
            const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
            if (!value) return aec_usage_error(c, "%s needs a value", o->name, NULL);
            int *count = (int *)((char *)a + o->has);
            if (*count == (int)(o->size / sizeof(char *)))
                return aec_usage_error(c, "%s is given too many times", o->name, NULL);
            ((const char **)((char *)a + o->at))[(*count)++] = value;
            continue;
        }
        if (o->kind == AEC_OPT_FLAG) {
            if (eq) return aec_usage_error(c, "%s takes no value", o->name, NULL);
            *(int *)((char *)a + o->at) = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value) return aec_usage_error(c, "%s needs a value", o->name, NULL);
        int st = parse_value(c, o, value, a);
        if (st) return st;
        if (o->has >= 0) *(int *)((char *)a + o->has) = 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- aec_main */

const aec_command *aec_find_command(const char *name) {
    for (size_t i = 0; i < aec_n_commands; i++)
        if (strcmp(aec_commands[i].name, name) == 0) return &aec_commands[i];
    return NULL;
}

int aec_main(const aec_model *m, int argc, char **argv) {
    if (argc > 0 && argv[0]) {
        const char *slash = strrchr(argv[0], '/');
        prog = slash ? slash + 1 : argv[0];
    }
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
    if (!strcmp(name, "--version")) {
        printf("%s: model %s, trainer of aec %s\nLLVM %s\nGEMM %s\n", prog, m->name, AEC_VERSION,
               AEC_LLVM_VERSION, AEC_GEMM_DEFAULT);
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
            closest(name, &aec_commands[0].name, aec_n_commands, sizeof aec_commands[0]);
        fprintf(stderr, "%s: unknown command '%s'", prog, name);
        if (hint) fprintf(stderr, " (did you mean '%s'?)", hint);
        fprintf(stderr, "\n");
        print_usage(stderr);
        return AEC_EXIT_USAGE;
    }
    aec_args a = {0};
    int st = parse_args(c, argc - 2, argv + 2, &a);
    if (st) return st;
    if (a.help) {
        print_help(c);
        return 0;
    }
    return c->run(c, m, &a);
}
