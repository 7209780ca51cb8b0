/* rt.h — the runtime's internal header: what the trainer's files share.
 *
 * The runtime is the generic trainer program (`aec_main`) and what it needs:
 * data loading, checkpoints, images, progress, the training loop. It links
 * into other people's programs, so everything it exports is `aec_`/`AEC_`.
 * Sections follow the files that define what follows them, bottom layer
 * first; a module uses only modules of the layers below its own, so they
 * form no cycle (`make layers` checks it on the objects):
 *
 *   log, suggest, rng, pool  <-  file  <-  model  <-  data, ckpt, image, progress, comm, onnx
 *     <-  aez, knn, pca, rank, plot, ratings  <-  train  <-  args  <-  infer, apps
 *     <-  autorec  <-  cmd_*  <-  commands  <-  cli  <-  mpi (its own archive, for --mpi)
 *
 * (The command line's own types are in cli.h and the applications' in
 * apps.h, which only the layers from args up include.)
 *
 * Conventions: functions return 0 (AEC_OK) or an AEC_E* status and never
 * exit; an error is reported once, where it is found, through aec_error()
 * (stderr, with the file name and what was expected); callers only pass the
 * status up. Buffers of model values hold float for AEC_F32 and double for
 * AEC_F64 (aec_model.dtype), always little-endian on disk.
 */
#ifndef AEC_RT_H
#define AEC_RT_H

#include <stdint.h>
#include <stdio.h>

#include "aec.h"
#include "metrics.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime reads and writes little-endian files by copying memory"
#endif

#define AEC_MAX_METRICS 16 /* room for aec_model.n_metrics values (the compiler writes <= 8) */

/* Model values, whatever the element type. */
static inline size_t aec_dtype_size(int dtype) {
    return dtype == AEC_F64 ? sizeof(double) : sizeof(float);
}
static inline const char *aec_dtype_name(int dtype) {
    return dtype == AEC_F64 ? "F64" : "F32";
}
static inline double aec_get(const void *p, int dtype, int64_t i) {
    return dtype == AEC_F64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}
static inline void aec_set(void *p, int dtype, int64_t i, double v) {
    if (dtype == AEC_F64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* ------------------------------------------------------------ log.c */

/* Messages: "error: ..." / "warning: ..." on stderr. The last error's text is
 * kept so tests can check it. */
void aec_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void aec_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *aec_last_error(void);
void aec_set_quiet_errors(int quiet); /* tests: keep errors off stderr */
/* Under MPI: errors say "rank R: ", and ranks above 0 do not warn. */
void aec_log_rank(int rank, int size);
double aec_now(void); /* seconds, monotonic */

/* ------------------------------------------------------------ file.c */

/* Files that replace an old one only once complete: write to
 * `path.tmp.PID` beside it, flush, fsync, rename over `path`. */
typedef struct aec_atomic {
    FILE *f;
    char *tmp; /* the temporary's name */
    const char *path;
} aec_atomic;
int aec_atomic_begin(aec_atomic *a, const char *path);
int aec_atomic_commit(aec_atomic *a); /* checks every write's error; on failure, aborts */
void aec_atomic_abort(aec_atomic *a); /* removes the temporary; the old file stays */

/* ------------------------------------------------------------ rng.c */

/* The counter-based generator shared with generated code, bit for bit:
 * a value is a pure function of (seed, stream, counter). */
uint64_t aec_mix64(uint64_t z); /* the splitmix64 finalizer, after adding the golden gamma */
uint64_t aec_rng_u64(uint64_t seed, uint64_t stream, uint64_t counter);
double aec_rng_uniform(uint64_t seed, uint64_t stream, uint64_t counter); /* in [0, 1) */

/* Streams the runtime draws from (the model's own streams are disjoint). */
#define AEC_STREAM_SHUFFLE 0x5348554646000000ull  /* "SHUFF" + epoch index (from 0) */
#define AEC_STREAM_VALID 0x56414C4944000000ull    /* "VALID": the validation split */
#define AEC_STREAM_PRETRAIN 0x5052455452000000ull /* "PRETR" + stage << 24 + epoch index */
#define AEC_STREAM_SAMPLE 0x53414D504C000000ull   /* "SAMPL": `sample`'s codes z ~ N(0, I) */
#define AEC_STREAM_DENOISE 0x44454E4F49000000ull  /* "DENOI": `denoise`'s corruption */
#define AEC_STREAM_SPLIT 0x53504C4954000000ull    /* "SPLIT": `train --ratings --split` */
/* The model's noise (corruption, dropout, the VAE's ε): "NOISE" + the RAND
 * stream (the graph's stage << 16 | a layer index or a fixed use), equal to
 * the compiler's IR_STREAM_NOISE. */
#define AEC_STREAM_NOISE 0x4E4F495345000000ull

/* Element `counter` of a stream at optimizer step `step`, as generated code
 * draws it: aec_mix64(aec_rng_u64(seed, stream, step) ^ counter). The seed
 * is the spec's `seed`, compiled into the model. */
uint64_t aec_rng_noise(uint64_t seed, uint64_t stream, uint64_t step, uint64_t counter);
/* N(0, 1) from counters 2i and 2i+1 of (seed, stream) by Box–Muller, as init does. */
double aec_rng_normal(uint64_t seed, uint64_t stream, uint64_t i);

/* Fisher-Yates: for i = n-1 down to 1, j = floor(uniform(seed, stream, i) * (i+1)),
 * swap idx[i] and idx[j]. */
void aec_shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream);

/* ------------------------------------------------------------ suggest.c */

/* Edit distance for "did you mean": insertions, deletions and substitutions
 * cost 1; with AEC_EDIT_SWAP so does a swap of neighbours (`rleu` -> `relu`,
 * the optimal-string-alignment distance), with AEC_EDIT_NOCASE letters
 * compare case-insensitively. A word over 63 characters is AEC_EDIT_FAR. */
enum { AEC_EDIT_SWAP = 1, AEC_EDIT_NOCASE = 2, AEC_EDIT_FAR = 1000 };
int aec_edit_distance(const char *a, const char *b, int flags);

/* ------------------------------------------------------------ model.c */

/* A data set in memory: n samples of dim values, row-major, one block. */
typedef struct aec_data {
    void *x;    /* (n, dim) of dtype */
    void *mask; /* NULL, or (n, dim): 1 where x is present, 0 where missing (NaN) */
    int64_t n, dim;
    int32_t dtype; /* AEC_F32 or AEC_F64 */
    int32_t ndim;  /* per-sample shape as the file stores it (dim = its product) */
    int64_t shape[4];
    const char *format; /* "IDX", "npy" or "CSV", for messages */
    int32_t elem_bytes; /* bytes per value as the file stores them (IDX, npy); 0 for CSV */
} aec_data;

void *aec_alloc(size_t bytes); /* zeroed, AEC_ALIGN-aligned; free() it */
/* Whether NaN inputs are missing values the model masks out (loss ... masked). */
int aec_model_masked(const aec_model *m);
/* The model's inference loss over a data set (x_hat: NULL or (n, input_size)),
 * in batches of `batch`, weighted by batch size; ws sized for `batch`. */
int aec_eval_data(const aec_model *m, const void *params, const aec_data *d, int batch, void *ws,
                  void *x_hat, double *loss);
/* The same, with every metric: metrics[0 .. n_metrics-1] (the loss, then its
 * terms, each weighted by batch size as the loss is). */
int aec_eval_metrics(const aec_model *m, const void *params, const aec_data *d, int batch, void *ws,
                     void *x_hat, double *metrics);
/* A variational model's ELBO, -(recon + kl), from its metrics; NAN otherwise. */
double aec_elbo(const aec_model *m, const double *metrics);

/* ------------------------------------------------------------ data.c */

enum {
    AEC_DATA_RAW = 1, /* keep bytes as 0..255 (labels); default scales ubyte by 1/255 */
};

/* Loads IDX (plain or gzip), .npy or CSV, detected by content, then by
 * extension. `limit` > 0 keeps the first `limit` samples. */
int aec_data_load(const char *path, int dtype, int64_t limit, int flags, aec_data *d);
/* Refuses a data set whose samples do not have `want` values; `what` names
 * the consumer: "the model's input 1x28x28". */
int aec_data_check_dim(const char *path, const aec_data *d, int64_t want, const char *what);
/* NaN is a missing value: with `allow_missing`, zero-fill it and build
 * d->mask; without, refuse naming the first NaN. Infinities are refused. */
int aec_data_check_values(const char *path, aec_data *d, int allow_missing);
/* The above three for a model's input (or code, with `codes`). */
int aec_data_load_for(const char *path, const aec_model *m, int codes, int64_t limit, aec_data *d);
void aec_data_free(aec_data *d);

/* An IDX (or .npy) label file: n integer labels. */
int aec_labels_load(const char *path, int64_t *n, int32_t **labels);

/* Writes a (n, dim) array of dtype as .npy (<f4 or <f8), atomically. */
int aec_npy_write(const char *path, int dtype, const void *x, int64_t n, int64_t dim);

/* Whether a file name ends with `ext` (".csv"), ignoring case. */
int aec_has_ext(const char *path, const char *ext);
/* The same as CSV, one sample per line, after a header line of column
 * names PREFIX0, PREFIX1, ... (so other tools and our reader skip it). */
int aec_csv_write(const char *path, int dtype, const void *x, int64_t n, int64_t dim,
                  const char *prefix);

/* "1x28x28" */
void aec_shape_str(char *buf, size_t size, int ndim, const int32_t *shape);

/* ------------------------------------------------------------ ckpt.c */

/* The training state a checkpoint carries (its safetensors metadata), so
 * that `--resume` continues exactly where the run stopped. */
typedef struct aec_train_state {
    int64_t step;  /* optimizer steps done */
    int32_t epoch; /* epochs completed */
    int32_t batch; /* training batch size */
    uint64_t seed;
    double best_val;    /* early stopping: best validation loss, INFINITY if none */
    int32_t best_epoch; /* the epoch (from 1) that reached best_val, 0 if none */
    int32_t bad_epochs; /* epochs since the last improvement */
    int64_t n_train, n_val;
    double train_loss, val_loss; /* of the last epoch, for the record (NAN if none) */
    const char *ratings;         /* NULL, or train --ratings' id mapping, metadata key "ratings" */
} aec_train_state;

/* What a checkpoint holds (the tensors beyond the model's). */
enum {
    AEC_CKPT_STATE = 1, /* training metadata (aec_train_state) */
    AEC_CKPT_OPT = 2,   /* tensor "optimizer.state" [opt_state_count] */
    AEC_CKPT_TRAIN = 4, /* tensor "train.params" [param_count]: the live params when
                         * the model's tensors hold the best (early stopping) */
};
#define AEC_CKPT_OPT_TENSOR "optimizer.state"
#define AEC_CKPT_TRAIN_TENSOR "train.params"

/* The string value of metadata key `key` of a checkpoint, malloc'ed (NULL
 * when absent: *value NULL and AEC_OK). */
int aec_ckpt_meta(const char *path, const char *key, char **value);
/* Writes `weights` under the model's tensor names; opt_state (with
 * opt_state_count > 0), live_params and st are optional (NULL). */
int aec_ckpt_save(const char *path, const aec_model *m, const void *weights, const void *opt_state,
                  const void *live_params, const aec_train_state *st);
/* Reads the model's tensors into `weights` (checking every name, dtype and
 * shape); fills the optional outputs that the file has, and *has with
 * AEC_CKPT_* bits. A NULL output is not read. */
int aec_ckpt_load(const char *path, const aec_model *m, void *weights, void *opt_state,
                  void *live_params, aec_train_state *st, int *has);

/* ------------------------------------------------------------ image.c */

/* A grid of images: cell (r, c) is image c of row r. */
typedef struct aec_grid {
    int32_t dtype;
    int32_t channels;      /* 1 (gray) or 3 (RGB; the data is planar CHW) */
    int32_t height, width; /* of one image, in data pixels */
    int64_t size;          /* values per image; cells past it are background */
    int32_t rows, cols;
    int32_t scale;  /* each value becomes scale x scale pixels (>= 1) */
    int32_t border; /* pixels of gray between and around cells */
} aec_grid;

/* How to show a model's input: CxHxW with C = 1 or 3 as is, other C stacked
 * vertically in gray, HxW gray, a vector as the nearest square-ish rectangle.
 * Sets channels, height, width, size, and a readable scale and border. */
void aec_grid_for_model(aec_grid *g, const aec_model *m);
/* rows[r] holds counts[r] <= g->cols images (values clamped to [0, 1]). */
int aec_write_png_grid(const char *path, const aec_grid *g, const void *const *rows,
                       const int *counts);

/* ------------------------------------------------------------ progress.c */

typedef struct aec_progress {
    int tty, quiet, json;
    const aec_model *terms_of; /* aec_progress_terms: the model, or NULL for none */
    double terms[AEC_MAX_METRICS], val_terms[AEC_MAX_METRICS];
    int has_val_terms;
    int32_t epochs;
    int64_t batches, samples; /* per epoch */
    int64_t samples_done;     /* this run (since start or resume) */
    int64_t samples_left;     /* this run, for the ETA */
    double t_start, t_epoch, t_print;
    int live; /* a \r line is on screen */
} aec_progress;

void aec_progress_start(aec_progress *p, int32_t epochs, int32_t first_epoch, int64_t batches,
                        int64_t samples, int quiet, int json);
/* After batch `b` (from 1) of `epoch` (from 1); `loss` is the epoch's running mean. */
void aec_progress_batch(aec_progress *p, int32_t epoch, int64_t b, int bs, double loss);
/* The epoch's summary: a line (stderr) and with --json an object (stdout).
 * val_loss is NAN without validation; `note` is appended ("best", ...). */
void aec_progress_epoch(aec_progress *p, int32_t epoch, int64_t step, double train_loss,
                        double val_loss, const char *note);
/* The loss's terms for the next aec_progress_epoch (a model with n_metrics
 * > 1): shown after the loss, and in JSON as "terms"/"val_terms" objects;
 * elbo (NAN unless variational) as "elbo". val may be NULL. */
void aec_progress_terms(aec_progress *p, const aec_model *m, const double *train,
                        const double *val);
/* One epoch of a layer-wise pretraining stage: a line, and JSON "pretrain". */
void aec_progress_stage(aec_progress *p, int32_t stage, int32_t stages, int32_t epoch,
                        int32_t epochs, double loss, double seconds);
void aec_progress_clear(aec_progress *p); /* ends a live line before other output */

/* ------------------------------------------------------------ plot.c */

#define AEC_MAX_CURVES 10
/* Per-epoch series: y[s][i] is series s at epoch x[i], NaN where absent. */
typedef struct aec_curves {
    int64_t n;
    double *x;
    int n_series;
    char *names[AEC_MAX_CURVES]; /* "train_loss", "val_loss", then the terms */
    double *y[AEC_MAX_CURVES];
    const char *title;
} aec_curves;
/* Draws the series against the epoch into a PNG (PLplot, pngcairo). */
int aec_plot_curves(const char *path, const aec_curves *c);
/* The epoch events of a `train --json` log: train_loss, val_loss, terms. */
int aec_plot_log(const char *log, aec_curves *c);
void aec_curves_free(aec_curves *c);
/* n points xy (n, 2), coloured by label (up to AEC_MAX_CURVES colours), with a legend. */
int aec_plot_scatter(const char *path, const double *xy, const int32_t *labels, int64_t n,
                     const char *title, const char *xlabel, const char *ylabel);

/* ------------------------------------------------------------ comm.c */

/* The ranks a run is spread over. One process unless the trainer was built
 * with `--mpi`: then runtime/mpi.c (its own archive, libaecrt_mpi.a)
 * installs MPI's collectives here before aec_main runs. Every collective
 * is called by every rank in the same order; a rank that fails still
 * calls the next one with its status, so no rank waits forever. */
typedef struct aec_comm {
    int rank, size;
    void *ctx; /* the implementation's (MPI's communicator) */
    /* Sums n values of dtype over the ranks, in place; every rank gets the
     * same bits. */
    int (*allreduce_sum)(void *ctx, void *buf, int64_t n, int dtype);
    /* The largest `value` over the ranks, and the lowest rank holding it. */
    int (*max_loc)(void *ctx, int value, int *max, int *at);
    /* The smallest and largest `value` over the ranks. */
    int (*min_max_u64)(void *ctx, uint64_t value, uint64_t *min, uint64_t *max);
    int (*bcast)(void *ctx, void *buf, size_t bytes, int root);
    /* Measured by allreduce_sum. */
    double allreduce_seconds;
    int64_t allreduce_bytes, allreduce_calls;
    int failed; /* the ranks agreed that one failed (aec_mpi_main then just exits) */
} aec_comm;

aec_comm *aec_comm_world(void); /* the process's ranks: one unless aec_comm_set was called */
void aec_comm_set(aec_comm *c);
/* Every rank's status after a stretch of local work: returns this rank's
 * own (nonzero: it printed why), else AEC_ERANK if another rank failed
 * (rank 0 says which), else 0. */
int aec_comm_agree(int status);
/* Whether every rank has the same `value` (a hash of what must agree);
 * rank 0 says what differs (`what`) if not. */
int aec_comm_same(uint64_t value, const char *what);
/* This rank's contiguous share [*lo, *lo + *count) of n rows; the first
 * n % size ranks take one more, so rank 0 has a row whenever n >= 1. */
void aec_comm_share(const aec_comm *c, int64_t n, int64_t *lo, int64_t *count);
/* aec_eval_metrics over every rank's share of d, reduced over the ranks;
 * x_hat (NULL, or room for d's n rows) gets this rank's share of rows, and
 * *mse (mse NULL: not computed) the MSE over every present value. */
int aec_comm_eval_metrics(const aec_model *m, const void *params, const aec_data *d, int batch,
                          void *ws, void *x_hat, double *metrics, double *mse);
/* A hash of n bytes (FNV-1a, 64 bits), to compare the ranks' parameters. */
uint64_t aec_hash_bytes(const void *p, size_t n, uint64_t h);

/* The data-parallel step: every rank computes the loss and gradient of its
 * share of the global batch (loss_grad_ex, with the share's row offset so
 * the noise follows the sample), weighted by its share of the batch's loss
 * (aec_dp_weight: its rows / the batch's, or its present values / the
 * batch's for a masked loss);
 * one allreduce (sum) of [gradient, loss terms, failure flags, batch-norm
 * running statistics, weighted the same]; then every rank stores the
 * averaged running statistics and applies the same update (apply_grad), so
 * the parameters stay equal. */
typedef struct aec_dp {
    const aec_model *m;
    aec_comm *c;
    void *red; /* [gradient (trainable_count)][n_metrics terms][3 flags]
                  [running statistics (param_count - trainable_count)], of dtype */
    int64_t n_red;
    int exact_rmse; /* rmse alone: reduce the mse and apply sqrt's chain rule after */
    int by_present; /* a masked mean loss (with weight terms at most): weight by present values */
} aec_dp;

int aec_dp_init(aec_dp *dp, const aec_model *m, aec_comm *c);
void aec_dp_free(aec_dp *dp);
/* The share of the loss of a global batch of bs rows (rows[k] of d, k <
 * bs) that this rank's rows [lo, lo + nr) carry: nr / bs, or for a masked
 * mean loss (dp->by_present) their present values / the batch's. Every
 * rank holds all the data, so this needs no communication. */
double aec_dp_weight(const aec_dp *dp, const aec_data *d, const int64_t *rows, int bs, int64_t lo,
                     int64_t nr);
/* One optimizer step `step` of a global batch of which this rank holds
 * rows [lo, lo + nr) in x (and mask), weighted w (aec_dp_weight). Writes
 * the global batch's n_metrics values (of dtype) to `loss`. */
int aec_dp_step(aec_dp *dp, void *params, void *opt, const void *x, const void *mask, int64_t lo,
                int64_t nr, double w, uint64_t step, void *loss, void *ws, const aec_exec *exec);
/* After an epoch: the ranks compare a hash of their parameters and
 * optimizer state; a mismatch is an error. *hash gets the hash. */
int aec_dp_sync(aec_dp *dp, void *params, const void *opt, int32_t epoch, uint64_t *hash);

/* ------------------------------------------------------------ train.c */

typedef struct aec_train_opts {
    const char *data, *val, *out, *resume;
    int32_t epochs, batch; /* 0: the spec's */
    int64_t limit;         /* 0: every sample */
    uint64_t seed;
    int has_seed;
    int32_t early_stop; /* patience; used when has_early_stop */
    int has_early_stop;
    int32_t pretrain_epochs; /* per stage; used when has_pretrain_epochs (0: no pretraining) */
    int has_pretrain_epochs;
    double min_delta;
    int has_min_delta;
    int json, quiet;
    const char *plot;        /* NULL, or a PNG redrawn with the loss curves after every epoch */
    const aec_data *dataset; /* NULL, or the training data itself (instead of the file `data`,
                              * which then only names it in messages): train --ratings */
    const char *meta;        /* NULL, or the checkpoint metadata "ratings" (the id mapping) */
} aec_train_opts;

int aec_train(const aec_model *m, const aec_train_opts *o);

/* ------------------------------------------------------------ cli.c */

/* The trainer program: `PROG train|eval|encode|decode|reconstruct|summary`.
 * Returns the exit status: 0, 1 for a failure, 2 for a usage error. */
int aec_main(const aec_model *m, int argc, char **argv);

/* ------------------------------------------------------------ onnx.c */

/* "autoencoder", "encoder", "decoder" (NULL-terminated): the parts of
 * aec_onnx_export, by index. */
extern const char *const aec_onnx_parts[];
/* The inference graph of part 0..2 of model m with these params, as an
 * ONNX model (opset 13) written atomically to path; reports its errors. */
int aec_onnx_export(const aec_model *m, const void *params, int part, const char *path);

#endif
