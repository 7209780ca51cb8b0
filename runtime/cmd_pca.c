/* cmd_pca.c — `compare-pca`: the autoencoder against PCA, measured.
 *
 * Takes data (and test data) and weights; fits PCA with k = the code size on
 * the data (pca.c; PCA centres the data, as PCA does) and produces, for both,
 * the reconstruction MSE on the data and the test data and the time to
 * fit (PCA) and to encode; PCA's explained variance; and when the model's
 * decoder is affine (a linear autoencoder, found by testing it, not by its
 * spec) the principal angles between its decoder's subspace and PCA's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"

/* The model's reconstruction MSE over d's values. */
static int ae_mse(const aec_model *m, const aec_infer *f, const aec_data *d, double *mse) {
    void *x_hat = malloc((size_t)(d->n * d->dim) * aec_dtype_size(m->dtype) + 1);
    double loss;
    int st = x_hat ? aec_eval_data(m, f->params, d, f->batch, f->ws, x_hat, &loss) : AEC_ENOMEM;
    if (!st) *mse = aec_mse(m->dtype, x_hat, d->x, d->n * d->dim);
    free(x_hat);
    return st;
}

/* Whether decode is affine, and then its directions dec(e_i) − dec(0) as
 * rows of dirs (k, d). Checked on random codes: dec(a·z1 + (1−a)·z2) must
 * equal a·dec(z1) + (1−a)·dec(z2) to float precision. */
static int decoder_subspace(const aec_model *m, const aec_infer *f, double *dirs, int *affine) {
    int64_t k = m->code_size, d = m->input_size;
    size_t el = aec_dtype_size(m->dtype);
    int64_t rows = k + 4; /* 0, e_1..e_k, z1, z2, their mix */
    void *z = calloc((size_t)(rows * k), el), *x = malloc((size_t)(rows * d) * el);
    if (!z || !x) {
        free(z);
        free(x);
        return AEC_ENOMEM;
    }
    for (int64_t i = 0; i < k; i++)
        aec_set(z, m->dtype, (1 + i) * k + i, 1);
    for (int64_t j = 0; j < k; j++) {
        double z1 = aec_rng_normal(7, 1, (uint64_t)j), z2 = aec_rng_normal(7, 2, (uint64_t)j);
        aec_set(z, m->dtype, (k + 1) * k + j, z1);
        aec_set(z, m->dtype, (k + 2) * k + j, z2);
        aec_set(z, m->dtype, (k + 3) * k + j, 0.3 * z1 + 0.7 * z2);
    }
    int st = aec_decode_batches(m, f, z, rows, x);
    double err = 0, scale = 0;
    for (int64_t j = 0; !st && j < d; j++) {
        double mix = 0.3 * aec_get(x, m->dtype, (k + 1) * d + j) +
                     0.7 * aec_get(x, m->dtype, (k + 2) * d + j);
        err = fmax(err, fabs(mix - aec_get(x, m->dtype, (k + 3) * d + j)));
        scale = fmax(scale, fabs(mix));
        for (int64_t i = 0; i < k; i++)
            dirs[i * d + j] = aec_get(x, m->dtype, (1 + i) * d + j) - aec_get(x, m->dtype, j);
    }
    *affine = !st && err <= 1e-4 * (scale + 1e-3);
    free(z);
    free(x);
    return st;
}

static json_object *num(double v) {
    return isfinite(v) ? json_object_new_double(v) : NULL;
}

int aec_cmd_compare_pca(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->data || !a->weights) {
        return aec_usage_error(c, "%s", "--data and --weights are required", NULL);
    }
    int64_t k = m->code_size, d = m->input_size;
    if (k > d) {
        aec_error("compare-pca: the code (%lld values) is larger than the input (%lld): PCA keeps "
                  "at most %lld components",
                  (long long)k, (long long)d, (long long)d);
        return 1;
    }
    aec_infer f;
    aec_data test = {0};
    double *mean = malloc((size_t)d * sizeof *mean), *dirs = malloc((size_t)(k * d) * sizeof *dirs);
    double *eig = malloc((size_t)d * sizeof *eig), *dec = malloc((size_t)(k * d) * sizeof *dec);
    double *angles = malloc((size_t)k * sizeof *angles);
    void *codes = NULL;
    int st = aec_infer_open(m, a->weights, a->data, a->limit, &f);
    if (!st && !(mean && dirs && eig && dec && angles)) st = AEC_ENOMEM;
    if (!st && a->test) st = aec_data_load_for(a->test, m, 0, a->limit, &test);
    double ae = NAN, pca = NAN, ae_test = NAN, pca_test = NAN, explained = NAN;
    double ae_seconds = NAN, pca_seconds = NAN, pca_encode_seconds = NAN;
    int affine = 0;
    if (!st) {
        codes = malloc((size_t)(f.data.n * k) * aec_dtype_size(m->dtype) + 1);
        double t0 = aec_now();
        st = codes ? aec_encode_batches(m, &f, &f.data, codes) : AEC_ENOMEM;
        ae_seconds = aec_now() - t0;
    }
    if (!st) {
        double t0 = aec_now();
        st = aec_pca_fit(f.data.x, m->dtype, f.data.n, d, k, mean, dirs, eig);
        pca_seconds = aec_now() - t0;
    }
    if (!st) {
        double t0 = aec_now();
        pca = aec_pca_mse(f.data.x, m->dtype, f.data.n, d, k, mean, dirs);
        pca_encode_seconds = aec_now() - t0; /* an encode and a decode */
        double top = 0, all = 0;
        for (int64_t j = 0; j < d; j++) {
            all += eig[j];
            top += j < k ? eig[j] : 0;
        }
        explained = all > 0 ? top / all : NAN;
        st = ae_mse(m, &f, &f.data, &ae);
    }
    if (!st && a->test) {
        pca_test = aec_pca_mse(test.x, m->dtype, test.n, d, k, mean, dirs);
        st = ae_mse(m, &f, &test, &ae_test);
    }
    if (!st) st = decoder_subspace(m, &f, dec, &affine);
    if (!st && affine) st = aec_principal_angles(dec, dirs, k, d, angles);
    if (!st && a->json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "k", json_object_new_int64(k));
        json_object_object_add(o, "ae_mse", num(ae));
        json_object_object_add(o, "pca_mse", num(pca));
        json_object_object_add(o, "ae_test_mse", num(ae_test));
        json_object_object_add(o, "pca_test_mse", num(pca_test));
        json_object_object_add(o, "pca_explained_variance", num(explained));
        json_object_object_add(o, "ae_seconds", num(ae_seconds));
        json_object_object_add(o, "pca_seconds", num(pca_seconds));
        json_object_object_add(o, "pca_encode_seconds", num(pca_encode_seconds));
        json_object *ang = NULL;
        if (affine) {
            ang = json_object_new_array();
            for (int64_t i = 0; i < k; i++)
                json_object_array_add(ang, json_object_new_double(angles[i]));
        }
        json_object_object_add(o, "principal_angles_deg", ang);
        json_object_object_add(o, "samples", json_object_new_int64(f.data.n));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (!st) {
        printf("k = %lld, %lld samples (PCA centres the data, as PCA does; the autoencoder "
               "sees it as is)\n",
               (long long)k, (long long)f.data.n);
        char at[32] = "", pt[32] = ""; /* the test column, when there is test data */
        if (a->test)
            snprintf(at, sizeof at, "%.6g", ae_test), snprintf(pt, sizeof pt, "%.6g", pca_test);
        printf("%-12s %-12s %-12s %s\n", "", "MSE", a->test ? "test MSE" : "", "seconds");
        printf("%-12s %-12.6g %-12s %.3f to encode\n", "autoencoder", ae, at, ae_seconds);
        printf("%-12s %-12.6g %-12s %.3f to fit, %.3f to encode+decode\n", "PCA", pca, pt,
               pca_seconds, pca_encode_seconds);
        printf("PCA explains %.2f %% of the variance with %lld components\n", 100 * explained,
               (long long)k);
        if (affine) {
            printf("the decoder is affine: principal angles to PCA's subspace (degrees):");
            for (int64_t i = 0; i < k; i++)
                printf(" %.2f", angles[i]);
            printf("\n");
        }
    }
    free(mean);
    free(dirs);
    free(eig);
    free(dec);
    free(angles);
    free(codes);
    aec_data_free(&test);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
