/* apps.h — what a trained autoencoder is for: the application commands and
 * the numeric modules under them (internal to the runtime).
 *
 * The commands (score, search, compress/decompress, denoise, compare-pca,
 * recommend, plot; declared in cli.h, one cmd_*.c each) share the helpers
 * of apps.c. The numeric modules are pure functions of their inputs, tested on their own
 * (tests/test_apps.c). Sections follow the files that define what follows.
 */
#ifndef AEC_APPS_H
#define AEC_APPS_H

#include <stdint.h>

#include "cli.h"

/* ------------------------------------------------------------ apps.c */

/* Loads the weights (and `data` unless NULL) and a workspace for batches of
 * up to 256 (within the model's maximum); f->out stays NULL. aec_infer_free
 * releases it. */
int aec_infer_open(const aec_model *m, const char *weights, const char *data, int64_t limit,
                   aec_infer *f);
/* Codes (n, code_size) of d's rows, in batches; out is of the model's dtype. */
int aec_encode_batches(const aec_model *m, const aec_infer *f, const aec_data *d, void *codes);
/* Decodings (n, input_size) of n codes, in batches on f's workspace. */
int aec_decode_batches(const aec_model *m, const aec_infer *f, const void *codes, int64_t n,
                       void *out);
/* Mean squared error of a against b over n values (both of dtype), and its
 * PSNR for data in [0, 1]: 10·log10(1/MSE). */
double aec_mse(int dtype, const void *a, const void *b, int64_t n);
double aec_psnr(double mse);
/* n images, each followed by (or in rows of) `cols`, as a PNG grid. */
int aec_png_rows(const char *path, const aec_model *m, const void *const *rows, const int *counts,
                 int nrows, int cols);
/* Writes (n, dim) doubles as .npy or (by extension .csv) CSV with a header. */
int aec_table_write(const char *path, const double *x, int64_t n, int64_t dim,
                    const char *const *header);

/* ------------------------------------------------------------ rank.c */

/* ROC AUC of scores against positive[i] (1: a positive, higher scores should
 * rank it first): the Mann–Whitney statistic, ties counted half. NAN when a
 * class is empty. */
double aec_auc(const double *score, const int *positive, int64_t n);
/* Average precision, Σ (R_t − R_{t−1})·P_t over distinct thresholds t in
 * decreasing order (scikit-learn's definition; tied scores form one step). */
double aec_average_precision(const double *score, const int *positive, int64_t n);
/* The q-quantile (0..1) with linear interpolation between order statistics
 * (NumPy's default); v is not changed. */
double aec_quantile(const double *v, int64_t n, double q);

/* ------------------------------------------------------------ knn.c */

enum { AEC_KNN_L2 = 0, AEC_KNN_COSINE = 1 };
/* The exact k nearest rows of index (n, d) to each row of query (q, d):
 * nbr (q, k) indices and dist (q, k) distances (Euclidean, or 1 − cos),
 * nearest first, ties broken by the lower index. Distances come from
 * ‖a‖² + ‖b‖² − 2a·b, blocks of queries against the whole index through
 * cblas_sgemm. k <= n. */
int aec_knn(const float *index, int64_t n, const float *query, int64_t q, int64_t d, int k,
            int metric, int64_t *nbr, float *dist);

/* ------------------------------------------------------------ aez.c */

/* A quantized code file: see aez.c for the byte layout. */
typedef struct aec_aez {
    char model[128];
    uint32_t layout_hash;
    int64_t n, code_size;
    int32_t bits;
    float *lo, *hi; /* (code_size): each dimension's range */
    uint16_t *q;    /* (n, code_size): the quantized codes, 0 .. 2^bits − 1 */
} aec_aez;
/* The hash of a model's parameter layout: CRC-32 of its dtype, input shape,
 * code size and every tensor's name and shape. */
uint32_t aec_layout_hash(const aec_model *m);
/* Quantizes codes (n, c) of dtype per dimension, uniform on [min, max]. */
int aec_aez_quantize(const aec_model *m, const void *codes, int64_t n, int bits, aec_aez *z);
/* The codes back: lo + q·(hi − lo)/(2^bits − 1), into out (n, c) of dtype. */
void aec_aez_dequantize(const aec_aez *z, int dtype, void *out);
int aec_aez_write(const char *path, const aec_aez *z, int64_t *bytes);
/* Reads and verifies (magic, version, CRC-32, sizes); with m, refuses
 * another model's file naming both. */
int aec_aez_read(const char *path, const aec_model *m, aec_aez *z);
void aec_aez_free(aec_aez *z);

/* ------------------------------------------------------------ ratings.c */

typedef struct aec_ratings { /* a ratings file, as read */
    int64_t n;
    int64_t *user, *item; /* the ids in the file */
    double *value;
} aec_ratings;
/* Ids to matrix columns: the sorted distinct ids of the training file. */
typedef struct aec_ratings_map {
    int by_item; /* a sample is an item's ratings by every user (else a user's) */
    int64_t n_users, n_items;
    int64_t *users, *items; /* sorted */
} aec_ratings_map;
int aec_ratings_load(const char *path, aec_ratings *r);
void aec_ratings_free(aec_ratings *r);
int aec_ratings_map_build(const aec_ratings *r, int by_item, aec_ratings_map *map);
void aec_ratings_map_free(aec_ratings_map *map);
/* The column of `id` among ids (n, sorted), or -1. */
int64_t aec_ratings_column(const int64_t *ids, int64_t n, int64_t id);
/* The mapping as checkpoint metadata text, and back (path names the checkpoint). */
char *aec_ratings_map_text(const aec_ratings_map *map);
int aec_ratings_map_parse(const char *path, const char *text, aec_ratings_map *map);
/* The matrix of r's ratings under map, NaN where unknown; ratings of ids the
 * map does not have are counted in *skipped. */
int aec_ratings_matrix(const aec_ratings *r, const aec_ratings_map *map, int dtype, aec_data *d,
                       int64_t *skipped);
/* The model's predictions (d's shape) from the known ratings of file `known`:
 * d is their matrix (masked), *pred its reconstruction. */
int aec_ratings_predict(const aec_model *m, const aec_infer *f, const char *known,
                        const aec_ratings_map *map, aec_data *d, void **pred);

/* ------------------------------------------------------------ autorec.c */

/* train --ratings and eval --ratings (cmd_train.c, cmd_eval.c hand over). */
int aec_ratings_train(const aec_command *c, const aec_model *m, const aec_args *a,
                      aec_train_opts *o);
int aec_ratings_eval(const aec_command *c, const aec_model *m, const aec_args *a);
/* The weights, the mapping in their metadata, the matrix d of the known
 * ratings in file `known`, and the model's predictions *pred (d's shape). */
int aec_ratings_open(const aec_model *m, const char *weights, const char *known, aec_infer *f,
                     aec_ratings_map *map, aec_data *d, void **pred);

/* ------------------------------------------------------------ pca.c */

/* PCA of x (n, d) of dtype: the mean (d), the top k principal directions
 * (k, d) as rows, and every eigenvalue of the covariance (d, descending).
 * Through the covariance matrix (cblas_dsyrk) and LAPACKE_dsyevd. */
int aec_pca_fit(const void *x, int dtype, int64_t n, int64_t d, int64_t k, double *mean,
                double *dirs, double *eigenvalues);
/* MSE of the rank-k PCA reconstruction of x (n, d) of dtype. */
double aec_pca_mse(const void *x, int dtype, int64_t n, int64_t d, int64_t k, const double *mean,
                   const double *dirs);
/* Principal angles (degrees, ascending) between the spans of the rows of
 * a (k, d) and b (k, d). */
int aec_principal_angles(const double *a, const double *b, int64_t k, int64_t d, double *deg);

#endif
