/* cli.h — the trainer's command line as data, and what the command files share.
 *
 * The trainer program (`aec_main`, cli.c) runs one command. Every command is
 * one row of `aec_commands` (commands.c): its name, a one-line usage, a
 * summary, the options it takes (a list of rows of `aec_options`) and its
 * handler, which lives in its own file, runtime/cmd_<name>.c. Parsing
 * (args.c), `--help`, "did you mean" — and, generated from the same two
 * tables, shell completion and man pages — all follow the tables, so a
 * command or an option is written down once. docs/internals.md says how to
 * add one.
 *
 * A handler gets the parsed options (aec_args) and returns the exit status:
 * 0, 1 when the work failed (the error was printed where it was found,
 * through aec_error), or AEC_EXIT_USAGE after aec_usage_error.
 */
#ifndef AEC_CLI_H
#define AEC_CLI_H

#include <stddef.h>

#include "rt.h"

#define AEC_EXIT_USAGE 2

/* Every option's value; a command reads the ones it takes. */
typedef struct aec_args {
    const char *data, *val, *out, *resume, *weights, *codes, *png, *part;
    int32_t epochs, batch, n, rows, cols, scale, early_stop, steps, pretrain_epochs, threads;
    int64_t limit, from, to;
    uint64_t seed;
    double min_delta;
    int has_seed, has_early_stop, has_min_delta, has_to, has_pretrain_epochs, json, quiet, help;
    /* the application commands (apps.h) */
    const char *input; /* the positional argument of a command that takes one */
    const char *labels, *normal, *calibrate, *index, *query, *query_labels, *index_codes,
        *query_codes, *metric, *noise, *test, *ratings, *known, *by, *plot;
    const char *users[64]; /* --user, each time it is given */
    int n_users, all;
    int32_t k, bits;
    double threshold, quantile, split;
    int has_threshold, has_quantile, has_split;
} aec_args;

typedef enum aec_opt_kind {
    AEC_OPT_FLAG,     /* no value: sets an int to 1 */
    AEC_OPT_STR,      /* a file name */
    AEC_OPT_POSITIVE, /* an int32 >= 1 */
    AEC_OPT_COUNT,    /* an int32 or int64 >= 0 (size says which) */
    AEC_OPT_U64,      /* an unsigned 64-bit number (decimal, 0x hex or 0 octal) */
    AEC_OPT_REAL,     /* a double >= 0 */
    AEC_OPT_LIST,     /* a string each time it is given, appended to an array (has: the count) */
} aec_opt_kind;

typedef struct aec_option {
    const char *name, *alias; /* "--out", "-o" (alias NULL if none) */
    aec_opt_kind kind;
    size_t at, size;            /* the field of aec_args it sets */
    ptrdiff_t has;              /* an int of aec_args set to 1 when given, or -1 */
    const char *metavar, *help; /* metavar NULL for a flag */
} aec_option;

/* The rows of aec_options, so that commands can list the ones they take. */
typedef enum aec_opt_id {
    AEC_OPT_DATA,
    AEC_OPT_VAL,
    AEC_OPT_EPOCHS,
    AEC_OPT_BATCH,
    AEC_OPT_SEED,
    AEC_OPT_EARLY_STOP,
    AEC_OPT_MIN_DELTA,
    AEC_OPT_PRETRAIN_EPOCHS,
    AEC_OPT_OUT,
    AEC_OPT_RESUME,
    AEC_OPT_WEIGHTS,
    AEC_OPT_CODES,
    AEC_OPT_PNG,
    AEC_OPT_N,
    AEC_OPT_FROM,
    AEC_OPT_TO,
    AEC_OPT_STEPS,
    AEC_OPT_COLS,
    AEC_OPT_ROWS,
    AEC_OPT_SCALE,
    AEC_OPT_LIMIT,
    AEC_OPT_JSON,
    AEC_OPT_THREADS,
    AEC_OPT_QUIET,
    AEC_OPT_HELP,
    AEC_OPT_LABELS,
    AEC_OPT_NORMAL,
    AEC_OPT_THRESHOLD,
    AEC_OPT_CALIBRATE,
    AEC_OPT_QUANTILE,
    AEC_OPT_INDEX,
    AEC_OPT_QUERY,
    AEC_OPT_INDEX_CODES,
    AEC_OPT_QUERY_CODES,
    AEC_OPT_QUERY_LABELS,
    AEC_OPT_K,
    AEC_OPT_METRIC,
    AEC_OPT_BITS,
    AEC_OPT_NOISE,
    AEC_OPT_TEST,
    AEC_OPT_RATINGS,
    AEC_OPT_KNOWN,
    AEC_OPT_BY,
    AEC_OPT_SPLIT,
    AEC_OPT_PLOT,
    AEC_OPT_USER,
    AEC_OPT_ALL,
    AEC_OPT_PART,
    AEC_N_OPTIONS
} aec_opt_id;

typedef struct aec_command aec_command;
typedef int aec_cmd_fn(const aec_command *c, const aec_model *m, const aec_args *a);

struct aec_command {
    const char *name;
    const char *args;    /* the usage after the name: "--data X [options]" */
    const char *summary; /* one sentence, for the command list and --help */
    /* The options it takes, NULL-terminated, in the order --help lists them
     * (and "did you mean" prefers on a tie). */
    const aec_option *const *options;
    aec_cmd_fn *run;
    int positional; /* takes one argument without an option name, into aec_args.input */
    /* A trainer built with --mpi runs it on every rank, which split the work
     * (train, eval); otherwise rank 0 alone runs it while the others wait. */
    int all_ranks;
};

/* ------------------------------------------------------------ commands.c */

extern const aec_option aec_options[AEC_N_OPTIONS];
extern const aec_command aec_commands[];
extern const size_t aec_n_commands;

/* ------------------------------------------------------------ args.c */

void aec_set_prog(const char *name); /* the program's name in messages (aec_main sets it) */
const char *aec_prog(void);
/* Parses argv (argc of them, after the command's name) into *a from the
 * command's options; 0, or AEC_EXIT_USAGE after printing why. */
int aec_parse_args(const aec_command *c, int argc, char **argv, aec_args *a);
/* Prints "PROG CMD: <fmt with arg>[ (did you mean 'HINT'?)]" and a pointer
 * to --help on stderr; returns AEC_EXIT_USAGE. */
int aec_usage_error(const aec_command *c, const char *fmt, const char *arg, const char *hint);
/* 0 if `value` is set, else the usage error "NAME is required". */
int aec_require(const aec_command *c, const char *value, const char *name);
/* The closest of `names` (n strings, `stride` bytes apart) to `word` within
 * an edit distance of 2 (exact letters, no swaps), the first on a tie; or
 * NULL. */
const char *aec_closest(const char *word, const char *const *names, size_t n, size_t stride);

/* ------------------------------------------------------------ cli.c */

const aec_command *aec_find_command(const char *name);

/* A runtime status as an exit status. */
static inline int aec_exit_status(int status) {
    return status ? 1 : 0;
}

/* ------------------------------------------------------------ infer.c */

/* What the inference commands share: data, weights, a workspace, outputs. */
typedef struct aec_infer {
    aec_data data;
    void *params, *ws, *out;
    int batch;
} aec_infer;

/* Loads `path` (codes when `codes`) and --weights, and allocates a workspace
 * and out_dim values of output per sample. */
int aec_infer_setup(const aec_model *m, const aec_args *a, const char *path, int codes,
                    int64_t out_dim, aec_infer *f);
void aec_infer_free(aec_infer *f);
/* MSE over the present values of d->x. */
double aec_mse_of(const aec_data *d, const void *x_hat);
/* The loss, its terms, the ELBO, the MSE and the PSNR, as text or --json.
 * `always`: print even with --quiet (eval's result, not reconstruct's
 * by-product). metrics: the loss, then its terms (aec_model.n_metrics). */
void aec_report_metrics(const aec_model *m, const aec_args *a, int always, const aec_data *d,
                        const double *metrics, double mse);
/* encode (decode = 0) or decode every sample of --data / --codes into -o. */
int aec_map_batches(const aec_command *c, const aec_model *m, const aec_args *a, int decode);
/* Decodes n codes (n x code_size) into out (n x input_size), in batches. */
int aec_decode_all(const aec_model *m, const void *params, const void *codes, int64_t n, void *out);
/* Writes -o and/or --png (rows of `cols` images) of n decoded images x. */
int aec_write_outputs(const aec_model *m, const aec_args *a, const void *x, int64_t n, int cols);

/* ------------------------------------------------------------ cmd_*.c */

aec_cmd_fn aec_cmd_train, aec_cmd_eval, aec_cmd_encode, aec_cmd_decode, aec_cmd_reconstruct,
    aec_cmd_sample, aec_cmd_interpolate, aec_cmd_summary;
/* What a trained autoencoder is for (apps.h has what they share). */
aec_cmd_fn aec_cmd_score, aec_cmd_search, aec_cmd_compress, aec_cmd_decompress, aec_cmd_denoise,
    aec_cmd_compare_pca, aec_cmd_plot, aec_cmd_recommend, aec_cmd_scatter, aec_cmd_export;

#endif
