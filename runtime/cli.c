/* cli.c — the trainer program's command line: `aec_main`.
 *
 * Takes a model table and argv; runs one subcommand (train, eval, encode,
 * decode, reconstruct, sample, interpolate, summary) and returns the exit
 * status: 0 on success,
 * 1 when the work failed (the error was printed where it was found), 2 for
 * a usage error (printed here, with a pointer to --help).
 *
 * Options live in one table (name, kind, field of Args, help text); each
 * command lists the ones it takes, so parsing, `--help` and "did you mean"
 * all follow that table.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rt.h"

enum { EXIT_USAGE = 2 };

typedef struct Args {
    const char *data, *val, *out, *resume, *weights, *codes, *png;
    int32_t epochs, batch, n, rows, cols, scale, early_stop, steps, pretrain_epochs;
    int64_t limit, from, to;
    uint64_t seed;
    double min_delta;
    int has_seed, has_early_stop, has_min_delta, has_to, has_pretrain_epochs, json, quiet, help;
} Args;

typedef enum OptKind {
    OPT_FLAG,     /* no value: sets an int to 1 */
    OPT_STR,      /* a file name */
    OPT_POSITIVE, /* an int32 >= 1 */
    OPT_COUNT,    /* an int32 or int64 >= 0 (size says which) */
    OPT_U64,
    OPT_REAL, /* a double >= 0 */
} OptKind;

typedef struct Option {
    const char *name, *alias; /* "--out", "-o" */
    OptKind kind;
    size_t at, size; /* the field in Args */
    ptrdiff_t has;   /* an int set to 1 when given, or -1 */
    const char *metavar, *help;
} Option;

#define FIELD(f) offsetof(Args, f), sizeof(((Args *)0)->f)
#define HAS(f) (ptrdiff_t) offsetof(Args, f)

static const Option options[] = {
    {"--data", NULL, OPT_STR, FIELD(data), -1, "FILE", "data: IDX (.gz), .npy or CSV"},
    {"--val", NULL, OPT_STR, FIELD(val), -1, "FILE",
     "validation data (instead of the spec's `validation F` hold-out)"},
    {"--epochs", NULL, OPT_POSITIVE, FIELD(epochs), -1, "N",
     "total epochs (a resumed run continues up to N); default: the spec's"},
    {"--batch", NULL, OPT_POSITIVE, FIELD(batch), -1, "N", "batch size; default: the spec's"},
    {"--seed", NULL, OPT_U64, FIELD(seed), HAS(has_seed), "N", "random seed; default: the spec's"},
    {"--early-stop", NULL, OPT_COUNT, FIELD(early_stop), HAS(has_early_stop), "N",
     "stop after N epochs without validation improvement (0: off)"},
    {"--min-delta", NULL, OPT_REAL, FIELD(min_delta), HAS(has_min_delta), "D",
     "an improvement must lower the validation loss by more than D"},
    {"--pretrain-epochs", NULL, OPT_COUNT, FIELD(pretrain_epochs), HAS(has_pretrain_epochs), "N",
     "epochs per layer-wise pretraining stage (0: none); default: the spec's"},
    {"--out", "-o", OPT_STR, FIELD(out), -1, "FILE", "output file"},
    {"--resume", NULL, OPT_STR, FIELD(resume), -1, "CKPT",
     "continue the run that wrote this checkpoint, exactly"},
    {"--weights", "-w", OPT_STR, FIELD(weights), -1, "FILE", "trained weights (.safetensors)"},
    {"--codes", NULL, OPT_STR, FIELD(codes), -1, "FILE", "codes to decode (.npy, CSV, IDX)"},
    {"--png", NULL, OPT_STR, FIELD(png), -1, "FILE",
     "a PNG grid: originals, and their reconstructions below"},
    {"--n", "-n", OPT_POSITIVE, FIELD(n), -1, "N", "images in the PNG grid (default 10)"},
    {"--from", NULL, OPT_COUNT, FIELD(from), -1, "I", "interpolate from sample I (default 0)"},
    {"--to", NULL, OPT_COUNT, FIELD(to), HAS(has_to), "J", "interpolate to sample J (default 1)"},
    {"--steps", NULL, OPT_POSITIVE, FIELD(steps), -1, "K",
     "points on the line, both ends included (default 10)"},
    {"--cols", NULL, OPT_POSITIVE, FIELD(cols), -1, "N", "images per PNG row (default 10)"},
    {"--rows", NULL, OPT_POSITIVE, FIELD(rows), -1, "N",
     "pairs of PNG rows (sets --n to rows x cols)"},
    {"--scale", NULL, OPT_POSITIVE, FIELD(scale), -1, "N",
     "PNG pixels per value (default: 4 up to 16 px, 2 up to 64 px)"},
    {"--limit", NULL, OPT_COUNT, FIELD(limit), -1, "N", "use only the first N samples"},
    {"--json", NULL, OPT_FLAG, FIELD(json), -1, NULL, "machine-readable results on stdout"},
    {"--quiet", "-q", OPT_FLAG, FIELD(quiet), -1, NULL, "no progress or informational output"},
    {"--help", "-h", OPT_FLAG, FIELD(help), -1, NULL, "show this help"},
};

typedef struct Command {
    const char *name, *args, *summary;
    const char *options; /* the option names it takes, space-separated */
    int (*run)(const aec_model *m, const Args *a);
} Command;

static int cmd_train(const aec_model *m, const Args *a);
static int cmd_eval(const aec_model *m, const Args *a);
static int cmd_encode(const aec_model *m, const Args *a);
static int cmd_decode(const aec_model *m, const Args *a);
static int cmd_reconstruct(const aec_model *m, const Args *a);
static int cmd_summary(const aec_model *m, const Args *a);
static int cmd_sample(const aec_model *m, const Args *a);
static int cmd_interpolate(const aec_model *m, const Args *a);
static const Command *find_command(const char *name);

static const Command commands[] = {
    {"train", "--data X [options]", "Train the model; a checkpoint is written after every epoch.",
     "--data --val --epochs --batch --seed --early-stop --min-delta --pretrain-epochs --out "
     "--resume --limit --json --quiet --help",
     cmd_train},
    {"eval", "--data X --weights W [options]",
     "The model's loss, the MSE and the PSNR (for data in [0, 1]) on a data set.",
     "--data --weights --limit --json --quiet --help", cmd_eval},
    {"encode", "--data X --weights W -o codes.npy",
     "Write the code of every sample (the mean for a variational model).",
     "--data --weights --out --limit --quiet --help", cmd_encode},
    {"decode", "--codes Z --weights W -o out.npy", "Write the decoding of every code.",
     "--codes --weights --out --limit --quiet --help", cmd_decode},
    {"reconstruct", "--data X --weights W [-o out.npy] [--png grid.png]",
     "Reconstruct every sample; optionally draw the first ones as a PNG grid.",
     "--data --weights --out --png --n --rows --cols --scale --limit --json --quiet --help",
     cmd_reconstruct},
    {"sample", "-n N --weights W [-o out.npy] [--png grid.png] [--seed S]",
     "Decode N codes drawn from N(0, I): new samples of a variational model.",
     "--weights --n --out --png --cols --scale --seed --quiet --help", cmd_sample},
    {"interpolate", "--data X --weights W [--from I] [--to J] [--steps K] [-o out.npy] [--png F]",
     "Decode the straight line between the codes of samples I and J of X.",
     "--data --weights --from --to --steps --out --png --scale --quiet --help", cmd_interpolate},
    {"summary", "", "The model: layers, sizes, parameters, training settings.", "--help",
     cmd_summary},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *prog = "aec-model";

/* ------------------------------------------------------------------- usage */

static int takes(const Command *c, const Option *o) {
    size_t len = strlen(o->name);
    for (const char *s = strstr(c->options, o->name); s; s = strstr(s + 1, o->name))
        if ((s == c->options || s[-1] == ' ') && (s[len] == ' ' || s[len] == 0)) return 1;
    return 0;
}

static void print_usage(FILE *f) {
    fprintf(f, "usage: %s COMMAND [options]\n\ncommands:\n", prog);
    for (size_t i = 0; i < COUNT(commands); i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'%s COMMAND --help' shows a command's options.\n", prog);
}

static void print_help(const Command *c) {
    printf("usage: %s %s %s\n\n%s\n\noptions:\n", prog, c->name, c->args, c->summary);
    for (size_t i = 0; i < COUNT(options); i++) {
        const Option *o = &options[i];
        if (!takes(c, o)) continue;
        char left[48];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                 o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        printf("  %-24s %s\n", left, o->help);
    }
}

/* Edit distance, for "did you mean". */
static int distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), row[64];
    if (la > 62 || lb > 62) return 99;
    for (int j = 0; j <= lb; j++)
        row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int usage_error(const char *cmd, const char *fmt, const char *arg, const char *hint) {
    fprintf(stderr, "%s %s: ", prog, cmd);
    fprintf(stderr, fmt, arg);
    if (hint) fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "\nsee '%s %s --help'\n", prog, cmd);
    return EXIT_USAGE;
}

/* ----------------------------------------------------------------- parsing */

static int parse_value(const Command *c, const Option *o, const char *v, Args *a) {
    char *base = (char *)a + o->at, *end;
    errno = 0;
    if (o->kind == OPT_STR) {
        *(const char **)base = v;
    } else if (o->kind == OPT_U64) {
        unsigned long long x = strtoull(v, &end, 0);
        if (end == v || *end || errno || *v == '-')
            return usage_error(c->name, "%s expects a non-negative whole number", o->name, NULL);
        *(uint64_t *)base = x;
    } else if (o->kind == OPT_REAL) {
        double x = strtod(v, &end);
        if (end == v || *end || !(x >= 0) || !isfinite(x))
            return usage_error(c->name, "%s expects a number >= 0", o->name, NULL);
        *(double *)base = x;
    } else {
        long long x = strtoll(v, &end, 10), min = o->kind == OPT_POSITIVE ? 1 : 0;
        long long max = o->size == sizeof(int32_t) ? INT32_MAX : INT64_MAX;
        if (end == v || *end || errno || x < min || x > max)
            return usage_error(
                c->name, min ? "%s expects a whole number >= 1" : "%s expects a whole number >= 0",
                o->name, NULL);
        if (o->size == sizeof(int32_t))
            *(int32_t *)base = (int32_t)x;
        else
            *(int64_t *)base = x;
    }
    return 0;
}

static const Option *find_option(const Command *c, const char *name, size_t len) {
    for (size_t i = 0; i < COUNT(options); i++) {
        const Option *o = &options[i];
        if (!takes(c, o)) continue;
        if ((strlen(o->name) == len && !strncmp(o->name, name, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, name, len)))
            return o;
    }
    return NULL;
}

/* `--name value`, `--name=value`, `-o value`; no positional arguments. */
static int parse_args(const Command *c, int argc, char **argv, Args *a) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || !arg[1])
            return usage_error(c->name, "unexpected argument '%s'", arg, NULL);
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const Option *o = find_option(c, arg, len);
        if (!o) {
            const char *hint = NULL;
            int best = 3;
            for (size_t k = 0; k < COUNT(options); k++)
                if (takes(c, &options[k]) && distance(arg, options[k].name) < best)
                    best = distance(arg, options[k].name), hint = options[k].name;
            return usage_error(c->name, "unknown option '%s'", arg, hint);
        }
        if (o->kind == OPT_FLAG) {
            if (eq) return usage_error(c->name, "%s takes no value", o->name, NULL);
            *(int *)((char *)a + o->at) = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!value) return usage_error(c->name, "%s needs a value", o->name, NULL);
        int st = parse_value(c, o, value, a);
        if (st) return st;
        if (o->has >= 0) *(int *)((char *)a + o->has) = 1;
    }
    return 0;
}

static int require(const Command *c, const char *value, const char *name) {
    return value ? 0 : usage_error(c->name, "%s is required", name, NULL);
}

/* ---------------------------------------------------------------- commands */

static int exit_status(int status) {
    return status ? 1 : 0;
}

static int cmd_train(const aec_model *m, const Args *a) {
    aec_train_opts o = {
        .data = a->data,
        .val = a->val,
        .out = a->out,
        .resume = a->resume,
        .epochs = a->epochs,
        .batch = a->batch,
        .limit = a->limit,
        .seed = a->seed,
        .has_seed = a->has_seed,
        .early_stop = a->early_stop,
        .has_early_stop = a->has_early_stop,
        .min_delta = a->min_delta,
        .has_min_delta = a->has_min_delta,
        .pretrain_epochs = a->pretrain_epochs,
        .has_pretrain_epochs = a->has_pretrain_epochs,
        .json = a->json,
        .quiet = a->quiet,
    };
    return exit_status(aec_train(m, &o));
}

/* What the inference commands share: data, weights, a workspace. */
typedef struct Infer {
    aec_data data;
    void *params, *ws, *out;
    int batch;
} Infer;

static void infer_free(Infer *f) {
    aec_data_free(&f->data);
    free(f->params);
    free(f->ws);
    free(f->out);
}

/* Loads `path` (codes when `codes`), the weights, and allocates out_dim
 * values per sample of output. */
static int infer_setup(const aec_model *m, const Args *a, const char *path, int codes,
                       int64_t out_dim, Infer *f) {
    memset(f, 0, sizeof *f);
    size_t el = aec_dtype_size(m->dtype);
    int st = aec_data_load_for(path, m, codes, a->limit, &f->data);
    if (st) return st;
    f->params = aec_alloc((size_t)m->param_count * el);
    if (!f->params) return AEC_ENOMEM;
    st = aec_ckpt_load(a->weights, m, f->params, NULL, NULL, NULL, NULL);
    if (st) return st;
    f->batch = m->max_batch < 256 ? m->max_batch : 256;
    if (f->data.n < f->batch) f->batch = (int)f->data.n;
    f->ws = aec_alloc(m->workspace_size ? m->workspace_size(f->batch) : 0);
    f->out = malloc((size_t)(f->data.n * out_dim) * el + 1);
    if (!f->ws || !f->out) {
        aec_error("out of memory for %lld x %lld outputs", (long long)f->data.n,
                  (long long)out_dim);
        return AEC_ENOMEM;
    }
    return AEC_OK;
}

/* MSE over the present values of x, and the model's loss. */
static double mse_of(const aec_data *d, const void *x_hat) {
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < d->n * d->dim; i++) {
        if (d->mask && aec_get(d->mask, d->dtype, i) == 0) continue;
        double e = aec_get(x_hat, d->dtype, i) - aec_get(d->x, d->dtype, i);
        sum += e * e;
        count++;
    }
    return count ? sum / (double)count : NAN;
}

/* eval's result always prints; reconstruct's is a by-product that --quiet
 * hides. metrics: the loss, then its terms (aec_model.n_metrics). */
static void report_metrics(const aec_model *m, const Args *a, int always, const aec_data *d,
                           const double *metrics, double mse) {
    double psnr = mse > 0 ? 10 * log10(1 / mse) : INFINITY, loss = metrics[0];
    double elbo = aec_elbo(m, metrics);
    if (a->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "samples", json_object_new_int64(d->n));
        double v[] = {loss, mse, psnr};
        const char *k[] = {"loss", "mse", "psnr"};
        for (int i = 0; i < 3; i++)
            json_object_object_add(o, k[i], isfinite(v[i]) ? json_object_new_double(v[i]) : NULL);
        for (int i = 1; i < m->n_metrics; i++)
            json_object_object_add(o, m->metric_names[i], isfinite(metrics[i])
                                                              ? json_object_new_double(metrics[i])
                                                              : NULL);
        if (!isnan(elbo)) json_object_object_add(o, "elbo", json_object_new_double(elbo));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (always || !a->quiet) {
        printf("loss %.6g", loss);
        for (int i = 1; i < m->n_metrics; i++) printf("  %s %.6g", m->metric_names[i], metrics[i]);
        if (!isnan(elbo)) printf("  elbo %.6g", elbo);
        printf("  mse %.6g  psnr %.2f dB  (%lld samples)\n", mse, psnr, (long long)d->n);
    }
}

static int cmd_eval(const aec_model *m, const Args *a) {
    const Command *c = &commands[1];
    if (require(c, a->data, "--data") || require(c, a->weights, "--weights")) return EXIT_USAGE;
    Infer f;
    double metrics[AEC_MAX_METRICS];
    int st = infer_setup(m, a, a->data, 0, m->input_size, &f);
    if (!st) st = aec_eval_metrics(m, f.params, &f.data, f.batch, f.ws, f.out, metrics);
    if (!st) report_metrics(m, a, 1, &f.data, metrics, mse_of(&f.data, f.out));
    infer_free(&f);
    return exit_status(st);
}

/* encode or decode, batch by batch, into an .npy file. */
static int map_batches(const aec_model *m, const Args *a, int decode) {
    const Command *c = &commands[decode ? 3 : 2];
    const char *in = decode ? a->codes : a->data;
    if (require(c, in, decode ? "--codes" : "--data") || require(c, a->weights, "--weights") ||
        require(c, a->out, "-o/--out"))
        return EXIT_USAGE;
    if (decode ? !m->decode : !m->encode) {
        aec_error("model %s has no %s entry point", m->name, c->name);
        return 1;
    }
    int64_t out_dim = decode ? m->input_size : m->code_size;
    Infer f;
    int st = infer_setup(m, a, in, decode, out_dim, &f);
    size_t el = aec_dtype_size(m->dtype);
    for (int64_t i = 0; !st && i < f.data.n; i += f.batch) {
        int bs = (int)(f.data.n - i < f.batch ? f.data.n - i : f.batch);
        const char *x = (const char *)f.data.x + (size_t)(i * f.data.dim) * el;
        char *y = (char *)f.out + (size_t)(i * out_dim) * el;
        st = decode ? m->decode(f.params, x, y, bs, f.ws) : m->encode(f.params, x, y, bs, f.ws);
        if (st)
            aec_error("%s of samples %lld..%lld: %s", c->name, (long long)i,
                      (long long)(i + bs - 1), aec_strerror(st));
    }
    if (!st) st = aec_npy_write(a->out, m->dtype, f.out, f.data.n, out_dim);
    if (!st && !a->quiet)
        fprintf(stderr, "wrote %s: %lld x %lld\n", a->out, (long long)f.data.n, (long long)out_dim);
    infer_free(&f);
    return exit_status(st);
}

static int cmd_encode(const aec_model *m, const Args *a) {
    return map_batches(m, a, 0);
}

static int cmd_decode(const aec_model *m, const Args *a) {
    return map_batches(m, a, 1);
}

/* Pairs of rows: originals, then their reconstructions. */
static int write_grid(const aec_model *m, const Args *a, const Infer *f) {
    aec_grid g;
    aec_grid_for_model(&g, m);
    int cols = a->cols ? a->cols : 10;
    int64_t n = a->n ? a->n : a->rows ? (int64_t)a->rows * cols : 10;
    if (n > f->data.n) n = f->data.n;
    if (cols > n) cols = (int)n;
    int pairs = (int)((n + cols - 1) / cols);
    if (a->scale) g.scale = a->scale;
    g.cols = cols;
    g.rows = 2 * pairs;
    const void **rows = calloc((size_t)g.rows, sizeof *rows);
    int *counts = calloc((size_t)g.rows, sizeof *counts);
    int st = rows && counts ? AEC_OK : AEC_ENOMEM;
    size_t image = (size_t)m->input_size * aec_dtype_size(m->dtype);
    for (int p = 0; !st && p < pairs; p++) {
        rows[2 * p] = (const char *)f->data.x + (size_t)p * cols * image;
        rows[2 * p + 1] = (const char *)f->out + (size_t)p * cols * image;
        counts[2 * p] = counts[2 * p + 1] =
            (int)(n - (int64_t)p * cols < cols ? n - p * cols : cols);
    }
    if (!st) st = aec_write_png_grid(a->png, &g, rows, counts);
    free(rows);
    free(counts);
    return st;
}

static int cmd_reconstruct(const aec_model *m, const Args *a) {
    const Command *c = &commands[4];
    if (require(c, a->data, "--data") || require(c, a->weights, "--weights")) return EXIT_USAGE;
    if (!a->out && !a->png)
        return usage_error(c->name, "%s", "needs -o FILE and/or --png FILE", NULL);
    Infer f;
    double metrics[AEC_MAX_METRICS];
    int st = infer_setup(m, a, a->data, 0, m->input_size, &f);
    if (!st) st = aec_eval_metrics(m, f.params, &f.data, f.batch, f.ws, f.out, metrics);
    if (!st && a->out) st = aec_npy_write(a->out, m->dtype, f.out, f.data.n, m->input_size);
    if (!st && a->png) st = write_grid(m, a, &f);
    if (!st) report_metrics(m, a, 0, &f.data, metrics, mse_of(&f.data, f.out));
    infer_free(&f);
    return exit_status(st);
}

/* n images of x in rows of `cols`, as a PNG. */
static int write_images(const aec_model *m, const Args *a, const void *x, int64_t n, int cols) {
    aec_grid g;
    aec_grid_for_model(&g, m);
    if (a->scale) g.scale = a->scale;
    if (cols > n) cols = (int)n;
    g.cols = cols;
    g.rows = (int)((n + cols - 1) / cols);
    const void **rows = calloc((size_t)g.rows, sizeof *rows);
    int *counts = calloc((size_t)g.rows, sizeof *counts);
    int st = rows && counts ? AEC_OK : AEC_ENOMEM;
    size_t image = (size_t)m->input_size * aec_dtype_size(m->dtype);
    for (int r = 0; !st && r < g.rows; r++) {
        rows[r] = (const char *)x + (size_t)r * (size_t)cols * image;
        counts[r] = (int)(n - (int64_t)r * cols < cols ? n - (int64_t)r * cols : cols);
    }
    if (!st) st = aec_write_png_grid(a->png, &g, rows, counts);
    free(rows);
    free(counts);
    return st;
}

/* Decodes n codes (n x code_size) into out, in batches. */
static int decode_all(const aec_model *m, const void *params, const void *codes, int64_t n,
                      void *out) {
    int batch = m->max_batch < 256 ? m->max_batch : 256;
    if (n < batch) batch = (int)n;
    void *ws = aec_alloc(m->workspace_size(batch));
    if (!ws) return AEC_ENOMEM;
    size_t el = aec_dtype_size(m->dtype);
    int st = AEC_OK;
    for (int64_t i = 0; !st && i < n; i += batch) {
        int bs = (int)(n - i < batch ? n - i : batch);
        st = m->decode(params, (const char *)codes + (size_t)(i * m->code_size) * el,
                       (char *)out + (size_t)(i * m->input_size) * el, bs, ws);
        if (st) aec_error("decode: %s", aec_strerror(st));
    }
    free(ws);
    return st;
}

/* Writes -o and/or --png of n decoded images. */
static int write_outputs(const aec_model *m, const Args *a, const void *x, int64_t n, int cols) {
    int st = a->out ? aec_npy_write(a->out, m->dtype, x, n, m->input_size) : AEC_OK;
    if (!st && a->png) st = write_images(m, a, x, n, cols);
    if (!st && !a->quiet) {
        if (a->out)
            fprintf(stderr, "wrote %s: %lld x %lld\n", a->out, (long long)n,
                    (long long)m->input_size);
        if (a->png) fprintf(stderr, "wrote %s\n", a->png);
    }
    return st;
}

/* z ~ N(0, I) from (seed, "SAMPL", element index), decoded. */
static int cmd_sample(const aec_model *m, const Args *a) {
    const Command *c = find_command("sample");
    if (require(c, a->weights, "--weights")) return EXIT_USAGE;
    if (!a->out && !a->png)
        return usage_error(c->name, "%s", "needs -o FILE and/or --png FILE", NULL);
    if (!m->variational) {
        aec_error("model %s has no 'latent gaussian' code, so there is no prior N(0, I) to sample "
                  "(interpolate works for any model)", m->name);
        return 1;
    }
    int64_t n = a->n ? a->n : 10;
    uint64_t seed = a->has_seed ? a->seed : m->train.seed;
    size_t el = aec_dtype_size(m->dtype);
    void *params = aec_alloc((size_t)m->param_count * el);
    void *z = malloc((size_t)(n * m->code_size) * el + 1);
    void *x = malloc((size_t)(n * m->input_size) * el + 1);
    int st = params && z && x ? AEC_OK : AEC_ENOMEM;
    if (st) aec_error("out of memory for %lld samples", (long long)n);
    if (!st) st = aec_ckpt_load(a->weights, m, params, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; !st && i < n * m->code_size; i++)
        aec_set(z, m->dtype, i, aec_rng_normal(seed, AEC_STREAM_SAMPLE, (uint64_t)i));
    if (!st) st = decode_all(m, params, z, n, x);
    if (!st) st = write_outputs(m, a, x, n, a->cols ? a->cols : 10);
    free(params);
    free(z);
    free(x);
    return exit_status(st);
}

/* The codes a, b of samples I and J; the K points (1-t)·a + t·b for t = 0,
 * 1/(K-1), ..., 1, decoded. */
static int cmd_interpolate(const aec_model *m, const Args *a) {
    const Command *c = find_command("interpolate");
    if (require(c, a->data, "--data") || require(c, a->weights, "--weights")) return EXIT_USAGE;
    if (!a->out && !a->png)
        return usage_error(c->name, "%s", "needs -o FILE and/or --png FILE", NULL);
    int64_t from = a->from, to = a->has_to ? a->to : 1;
    int32_t k = a->steps ? a->steps : 10;
    if (k < 2) return usage_error(c->name, "%s", "--steps must be at least 2", NULL);
    Infer f;
    int st = infer_setup(m, a, a->data, 0, m->code_size, &f);
    if (!st && (from >= f.data.n || to >= f.data.n)) {
        aec_error("%s has %lld samples: --from %lld and --to %lld must be below that", a->data,
                  (long long)f.data.n, (long long)from, (long long)to);
        st = AEC_EMISMATCH;
    }
    size_t el = aec_dtype_size(m->dtype);
    void *codes = NULL, *line = NULL, *x = NULL;
    if (!st) {
        codes = malloc(2 * (size_t)m->code_size * el);
        line = malloc((size_t)(k * m->code_size) * el);
        x = malloc((size_t)(k * m->input_size) * el);
        if (!codes || !line || !x) st = AEC_ENOMEM;
    }
    for (int e = 0; !st && e < 2; e++) { /* the encoder in inference mode (mu for a VAE) */
        const char *row = (const char *)f.data.x + (size_t)((e ? to : from) * m->input_size) * el;
        st = m->encode(f.params, row, (char *)codes + (size_t)(e * m->code_size) * el, 1, f.ws);
        if (st) aec_error("encode: %s", aec_strerror(st));
    }
    for (int32_t s = 0; !st && s < k; s++) {
        double t = (double)s / (k - 1);
        for (int64_t j = 0; j < m->code_size; j++)
            aec_set(line, m->dtype, s * m->code_size + j,
                    (1 - t) * aec_get(codes, m->dtype, j) +
                        t * aec_get(codes, m->dtype, m->code_size + j));
    }
    if (!st) st = decode_all(m, f.params, line, k, x);
    if (!st) st = write_outputs(m, a, x, k, k);
    free(codes);
    free(line);
    free(x);
    infer_free(&f);
    return exit_status(st);
}

static const char *optimizer_name(int32_t opt) {
    static const char *names[] = {"sgd", "momentum", "adam", "adamw", "rmsprop"};
    return opt >= 0 && opt < (int32_t)COUNT(names) ? names[opt] : "?";
}

static const char *loss_name(int32_t loss) {
    static const char *names[] = {"mse", "rmse", "mae", "bce"};
    return loss >= 0 && loss < (int32_t)COUNT(names) ? names[loss] : "?";
}

static int cmd_summary(const aec_model *m, const Args *a) {
    (void)a;
    const aec_train_config *t = &m->train;
    char shape[64];
    aec_shape_str(shape, sizeof shape, m->input_ndim, m->input_shape);
    printf("model %s (%s)\n", m->name, m->dtype == AEC_F64 ? "f64" : "f32");
    if (m->summary)
        printf("\n%s%s\n", m->summary,
               m->summary[0] && m->summary[strlen(m->summary) - 1] == '\n' ? "" : "\n");
    printf("input      %s (%lld values)\n", shape, (long long)m->input_size);
    printf("code       %lld values\n", (long long)m->code_size);
    printf("params     %lld (%lld trainable)\n", (long long)m->param_count,
           (long long)m->trainable_count);
    printf("optimizer  %s lr=%g", optimizer_name(t->optimizer), t->lr);
    if (t->optimizer == AEC_OPT_MOMENTUM) printf(" momentum=%g", t->momentum);
    if (t->optimizer == AEC_OPT_ADAM || t->optimizer == AEC_OPT_ADAMW)
        printf(" beta1=%g beta2=%g eps=%g", t->beta1, t->beta2, t->eps);
    if (t->optimizer == AEC_OPT_RMSPROP) printf(" eps=%g", t->eps);
    if (t->decay) printf(" decay=%g", t->decay);
    printf(" (%lld state values)\n", (long long)m->opt_state_count);
    printf("train      loss %s, batch %d, epochs %d, seed %llu", loss_name(t->loss), t->batch,
           t->epochs, (unsigned long long)t->seed);
    if (t->validation > 0) printf(", validation %g", t->validation);
    if (t->early_stop > 0) printf(", early_stop %d min_delta=%g", t->early_stop, t->min_delta);
    if (t->pretrain_epochs > 0)
        printf(", pretrain layerwise %d (%d stages)", t->pretrain_epochs, m->n_stages);
    if (m->n_metrics > 1) {
        printf("\nobjective  loss =");
        for (int i = 1; i < m->n_metrics; i++)
            printf(" %s%s", i > 1 ? "+ w*" : "", m->metric_names[i]);
        printf("%s", m->variational ? " (the negative ELBO; code z ~ N(mu, sigma^2))" : "");
    }
    printf("\nmax batch  %d\n\ntensors:\n", m->max_batch);
    for (int i = 0; i < m->n_tensors; i++) {
        const aec_tensor_info *ti = &m->tensors[i];
        char dims[64] = "";
        size_t at = 0;
        for (int k = 0; k < ti->ndim && at < sizeof dims; k++)
            at += (size_t)snprintf(dims + at, sizeof dims - at, k ? ", %d" : "%d", ti->shape[k]);
        printf("  %-32s [%s]%s\n", ti->name, dims,
               ti->kind == AEC_TENSOR_BUFFER ? "  (buffer)" : "");
    }
    return 0;
}

/* ---------------------------------------------------------------- aec_main */

static const Command *find_command(const char *name) {
    for (size_t i = 0; i < COUNT(commands); i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
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
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        const Command *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (c)
            print_help(c);
        else
            print_usage(stdout);
        return 0;
    }
    const Command *c = find_command(name);
    if (!c) {
        const char *hint = NULL;
        int best = 3;
        for (size_t i = 0; i < COUNT(commands); i++)
            if (distance(name, commands[i].name) < best)
                best = distance(name, commands[i].name), hint = commands[i].name;
        fprintf(stderr, "%s: unknown command '%s'", prog, name);
        if (hint) fprintf(stderr, " (did you mean '%s'?)", hint);
        fprintf(stderr, "\n");
        print_usage(stderr);
        return EXIT_USAGE;
    }
    Args a = {0};
    int st = parse_args(c, argc - 2, argv + 2, &a);
    if (st) return st;
    if (a.help) {
        print_help(c);
        return 0;
    }
    return c->run(m, &a);
}
