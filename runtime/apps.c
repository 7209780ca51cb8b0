/* apps.c — what the application commands share: weights and data loaded for
 * inference, encoding and decoding in batches, error measures, PNG rows,
 * tables of numbers as .npy or CSV.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"
#include "pool.h"

int aec_infer_open(const aec_model *m, const char *weights, const char *data, int64_t limit,
                   aec_infer *f) {
    memset(f, 0, sizeof *f);
    int st = data ? aec_data_load_for(data, m, 0, limit, &f->data) : AEC_OK;
    if (st) return st;
    f->params = aec_alloc((size_t)m->param_count * aec_dtype_size(m->dtype));
    if (!f->params) return AEC_ENOMEM;
    st = aec_ckpt_load(weights, m, f->params, NULL, NULL, NULL, NULL);
    if (st) return st;
    f->batch = m->max_batch < 256 ? m->max_batch : 256;
    f->ws = aec_alloc(m->workspace_size(f->batch));
    if (!f->ws) {
        aec_error("out of memory for a workspace of batch %d", f->batch);
        return AEC_ENOMEM;
    }
    return AEC_OK;
}

int aec_encode_batches(const aec_model *m, const aec_infer *f, const aec_data *d, void *codes) {
    size_t el = aec_dtype_size(m->dtype);
    for (int64_t i = 0; i < d->n; i += f->batch) {
        int bs = (int)(d->n - i < f->batch ? d->n - i : f->batch);
        int st = m->encode_ex(f->params, (const char *)d->x + (size_t)(i * d->dim) * el,
                              (char *)codes + (size_t)(i * m->code_size) * el, bs, f->ws,
                              aec_trainer_exec());
        if (st) {
            aec_error("encode of samples %lld..%lld: %s", (long long)i, (long long)(i + bs - 1),
                      aec_strerror(st));
            return st;
        }
    }
    return AEC_OK;
}

int aec_decode_batches(const aec_model *m, const aec_infer *f, const void *codes, int64_t n,
                       void *out) {
    size_t el = aec_dtype_size(m->dtype);
    for (int64_t i = 0; i < n; i += f->batch) {
        int bs = (int)(n - i < f->batch ? n - i : f->batch);
        int st = m->decode_ex(f->params, (const char *)codes + (size_t)(i * m->code_size) * el,
                              (char *)out + (size_t)(i * m->input_size) * el, bs, f->ws,
                              aec_trainer_exec());
        if (st) {
            aec_error("decode of codes %lld..%lld: %s", (long long)i, (long long)(i + bs - 1),
                      aec_strerror(st));
            return st;
        }
    }
    return AEC_OK;
}

double aec_mse(int dtype, const void *a, const void *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = aec_get(a, dtype, i) - aec_get(b, dtype, i);
        s += e * e;
    }
    return n ? s / (double)n : NAN;
}

double aec_psnr(double mse) {
    return mse > 0 ? 10 * log10(1 / mse) : INFINITY;
}

int aec_png_rows(const char *path, const aec_model *m, const void *const *rows, const int *counts,
                 int nrows, int cols) {
    aec_grid g;
    aec_grid_for_model(&g, m);
    g.rows = nrows;
    g.cols = cols;
    return aec_write_png_grid(path, &g, rows, counts);
}

int aec_table_write(const char *path, const double *x, int64_t n, int64_t dim,
                    const char *const *header) {
    if (!aec_has_ext(path, ".csv")) return aec_npy_write(path, AEC_F64, x, n, dim);
    aec_atomic a;
    int st = aec_atomic_begin(&a, path);
    if (st) return st;
    for (int64_t j = 0; header && j < dim; j++)
        fprintf(a.f, "%s%s", j ? "," : "", header[j]);
    if (header) fputc('\n', a.f);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++)
            fprintf(a.f, "%.9g%c", x[i * dim + j], j + 1 < dim ? ',' : '\n');
    return aec_atomic_commit(&a);
}
