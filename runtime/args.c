/* args.c — the trainer's option parsing and usage errors, in one place.
 *
 * Takes a command's row of aec_commands and argv after the command's name;
 * fills aec_args from the command's option rows (`--name value`,
 * `--name=value`, `-o value`; one positional argument, into aec_args.input,
 * for a command that takes one), checking each value against its kind. A
 * usage error is printed here, as "PROG CMD: what (did you mean 'X'?)" and
 * a pointer to --help, and comes back as AEC_EXIT_USAGE. Uses only the
 * command and option rows it is given (not the tables) and suggest.c, so
 * the command files can use it.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *prog = "aec-model";

void aec_set_prog(const char *name) {
    prog = name;
}

const char *aec_prog(void) {
    return prog;
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

const char *aec_closest(const char *word, const char *const *names, size_t n, size_t stride) {
    const char *hint = NULL;
    int best = 3;
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)names + i * stride);
        int d = aec_edit_distance(word, name, 0);
        if (d < best) best = d, hint = name;
    }
    return hint;
}

int aec_parse_args(const aec_command *c, int argc, char **argv, aec_args *a) {
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
                                   aec_closest(arg, names, n, sizeof names[0]));
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
