/* model.c — helpers over a model table that every layer above uses.
 *
 * Takes an aec_model (runtime/aec.h) and buffers; provides aligned
 * allocation, whether the model masks missing values, its inference loss
 * and metrics over a whole data set (in batches, weighted by batch size),
 * and a variational model's ELBO from its metrics (the terms found by the
 * names of the shared table, metrics.h). Uses log.c only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rt.h"

void *aec_alloc(size_t bytes) {
    void *p = NULL;
    /* Round up so vectorized loops over the block may read whole lines. */
    size_t size = (bytes + AEC_ALIGN - 1) / AEC_ALIGN * AEC_ALIGN;
    if (posix_memalign(&p, AEC_ALIGN, size ? size : AEC_ALIGN) != 0) return NULL;
    memset(p, 0, size ? size : AEC_ALIGN);
    return p;
}

/* `loss ... masked` (ABI 5): NaN inputs are missing values, zero-filled and
 * masked out of the loss; any other model refuses NaN in its data. */
int aec_model_masked(const aec_model *m) {
    return m->abi_version >= 5 && m->masked;
}

double aec_elbo(const aec_model *m, const double *metrics) {
    if (!m->variational) return NAN;
    double recon = NAN, kl = NAN;
    for (int i = 1; i < m->n_metrics; i++) {
        if (!strcmp(m->metric_names[i], aec_metric_name(AEC_METRIC_RECON))) recon = metrics[i];
        if (!strcmp(m->metric_names[i], aec_metric_name(AEC_METRIC_KL))) kl = metrics[i];
    }
    return -(recon + kl);
}

int aec_eval_data(const aec_model *m, const void *params, const aec_data *d, int batch, void *ws,
                  void *x_hat, double *loss) {
    double metrics[AEC_MAX_METRICS];
    int status = aec_eval_metrics(m, params, d, batch, ws, x_hat, metrics);
    *loss = metrics[0];
    return status;
}

int aec_eval_metrics(const aec_model *m, const void *params, const aec_data *d, int batch, void *ws,
                     void *x_hat, double *metrics) {
    int nm = m->n_metrics;
    for (int k = 0; k < nm; k++)
        metrics[k] = NAN;
    if (!m->eval) {
        aec_error("model %s has no eval entry point", m->name);
        return AEC_EUNSUPPORTED;
    }
    size_t row = (size_t)d->dim * aec_dtype_size(m->dtype);
    double sum[AEC_MAX_METRICS] = {0}, value[AEC_MAX_METRICS]; /* floats or doubles */
    for (int64_t i = 0; i < d->n; i += batch) {
        int bs = (int)(d->n - i < batch ? d->n - i : batch);
        int status = m->eval_ex(params, (const char *)d->x + i * row,
                                d->mask ? (const char *)d->mask + i * row : NULL, bs, value,
                                x_hat ? (char *)x_hat + i * row : NULL, ws, aec_trainer_exec());
        if (!status && nm > 1) status = m->metrics(ws, value); /* the terms beside the loss */
        if (status) {
            aec_error("eval of samples %lld..%lld: %s", (long long)i, (long long)(i + bs - 1),
                      aec_strerror(status));
            return status;
        }
        for (int k = 0; k < nm; k++)
            sum[k] += aec_get(value, m->dtype, k) * bs;
    }
    for (int k = 0; k < nm; k++)
        metrics[k] = d->n ? sum[k] / (double)d->n : NAN;
    return AEC_OK;
}
