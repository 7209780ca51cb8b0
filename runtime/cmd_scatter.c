/* cmd_scatter.c — `scatter`: the codes of a data set in 2-D, coloured by label.
 *
 * Takes data (encoded with --weights) or codes, and one label per sample;
 * projects the codes onto their first two principal components (pca.c; a
 * 2-number code is drawn as it is) and draws them with PLplot (plot.c), one
 * colour per label. What examples/latent_scatter.py does with matplotlib,
 * so `make demo` needs no Python.
 */
#include <stdlib.h>
#include <string.h>

#include "apps.h"

int aec_cmd_scatter(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->data == !a->codes || !a->labels || !a->out || (a->data && !a->weights))
        return aec_usage_error(
            c, "%s", "give --data X --weights W (or --codes Z), --labels L and -o latent.png",
            NULL);
    aec_infer f;
    memset(&f, 0, sizeof f);
    aec_data codes = {0};
    int32_t *labels = NULL;
    int64_t n_labels = 0, k = m->code_size;
    size_t el = aec_dtype_size(m->dtype);
    void *z = NULL;
    double *xy = NULL, dirs[2 * 4096], var[4096], explained[2] = {0, 0};
    int st = a->data ? aec_infer_open(m, a->weights, a->data, a->limit, &f)
                     : aec_data_load_for(a->codes, m, 1, a->limit, &codes);
    int64_t n = a->data ? f.data.n : codes.n;
    if (!st && k > 4096) {
        aec_error("scatter: a code of %lld values is more than this projection takes (4096)",
                  (long long)k);
        st = AEC_EUNSUPPORTED;
    }
    if (!st && !(z = a->data ? malloc((size_t)(n * k) * el + 1) : codes.x)) st = AEC_ENOMEM;
    if (!st && a->data) st = aec_encode_batches(m, &f, &f.data, z);
    if (!st) st = aec_labels_load(a->labels, &n_labels, &labels);
    if (!st && n_labels < n) {
        aec_error("%s has %lld labels for %lld samples", a->labels, (long long)n_labels,
                  (long long)n);
        st = AEC_EMISMATCH;
    }
    if (!st && !(xy = malloc((size_t)n * 2 * sizeof *xy))) st = AEC_ENOMEM;
    if (!st && k == 2) {
        for (int64_t i = 0; i < 2 * n; i++)
            xy[i] = aec_get(z, m->dtype, i);
    } else if (!st) {
        double *mu = malloc((size_t)k * sizeof *mu);
        st = mu ? aec_pca_fit(z, m->dtype, n, k, k < 2 ? k : 2, mu, dirs, var) : AEC_ENOMEM;
        double total = 0;
        for (int64_t j = 0; !st && j < k; j++)
            total += var[j];
        for (int64_t i = 0; !st && i < n; i++)
            for (int d = 0; d < 2; d++) {
                double s = 0;
                for (int64_t j = 0; d < k && j < k; j++)
                    s += (aec_get(z, m->dtype, i * k + j) - mu[j]) * dirs[d * k + j];
                xy[2 * i + d] = s;
            }
        if (!st) explained[0] = var[0] / total, explained[1] = k > 1 ? var[1] / total : 0;
        free(mu);
    }
    char xl[64], yl[64], title[160];
    snprintf(xl, sizeof xl, k == 2 ? "code 1" : "PC 1 (%.0f %% of the variance)",
             100 * explained[0]);
    snprintf(yl, sizeof yl, k == 2 ? "code 2" : "PC 2 (%.0f %%)", 100 * explained[1]);
    snprintf(title, sizeof title, "%s: the codes of %lld samples", m->name, (long long)n);
    if (!st) st = aec_plot_scatter(a->out, xy, labels, n, title, xl, yl);
    if (!st && !a->quiet) fprintf(stderr, "wrote %s: %lld codes in 2-D\n", a->out, (long long)n);
    if (a->data) free(z);
    free(xy);
    free(labels);
    aec_data_free(&codes);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
