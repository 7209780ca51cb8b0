/* infer.c — what the inference commands (eval, encode, decode, reconstruct,
 * sample, interpolate) share.
 *
 * Takes the model and the parsed options; loads data and weights, sizes a
 * workspace, runs the model's inference entry points in batches, and writes
 * or reports what they produce. Every failure is reported where it is found
 * (aec_error) and returned as a status.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "pool.h"

void aec_infer_free(aec_infer *f) {
    aec_data_free(&f->data);
    free(f->params);
    free(f->ws);
    free(f->out);
}

/* Loads `path` (codes when `codes`), the weights, and allocates out_dim
 * values per sample of output. */
int aec_infer_setup(const aec_model *m, const aec_args *a, const char *path, int codes,
                    int64_t out_dim, aec_infer *f) {
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
double aec_mse_of(const aec_data *d, const void *x_hat) {
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
void aec_report_metrics(const aec_model *m, const aec_args *a, int always, const aec_data *d,
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
            json_object_object_add(o, m->metric_names[i],
                                   isfinite(metrics[i]) ? json_object_new_double(metrics[i])
                                                        : NULL);
        if (!isnan(elbo)) json_object_object_add(o, "elbo", json_object_new_double(elbo));
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (always || !a->quiet) {
        printf("loss %.6g", loss);
        for (int i = 1; i < m->n_metrics; i++)
            printf("  %s %.6g", m->metric_names[i], metrics[i]);
        if (!isnan(elbo)) printf("  elbo %.6g", elbo);
        printf("  mse %.6g  psnr %.2f dB  (%lld samples)\n", mse, psnr, (long long)d->n);
    }
}

/* encode or decode, batch by batch, into an .npy file. */
int aec_map_batches(const aec_command *c, const aec_model *m, const aec_args *a, int decode) {
    const char *in = decode ? a->codes : a->data;
    if (aec_require(c, in, decode ? "--codes" : "--data") ||
        aec_require(c, a->weights, "--weights") || aec_require(c, a->out, "-o/--out"))
        return AEC_EXIT_USAGE;
    if (decode ? !m->decode : !m->encode) {
        aec_error("model %s has no %s entry point", m->name, c->name);
        return 1;
    }
    int64_t out_dim = decode ? m->input_size : m->code_size;
    aec_infer f;
    int st = aec_infer_setup(m, a, in, decode, out_dim, &f);
    size_t el = aec_dtype_size(m->dtype);
    for (int64_t i = 0; !st && i < f.data.n; i += f.batch) {
        int bs = (int)(f.data.n - i < f.batch ? f.data.n - i : f.batch);
        const char *x = (const char *)f.data.x + (size_t)(i * f.data.dim) * el;
        char *y = (char *)f.out + (size_t)(i * out_dim) * el;
        st = decode ? m->decode_ex(f.params, x, y, bs, f.ws, aec_trainer_exec())
                    : m->encode_ex(f.params, x, y, bs, f.ws, aec_trainer_exec());
        if (st)
            aec_error("%s of samples %lld..%lld: %s", c->name, (long long)i,
                      (long long)(i + bs - 1), aec_strerror(st));
    }
    if (!st)
        st = aec_has_ext(a->out, ".csv")
                 ? aec_csv_write(a->out, m->dtype, f.out, f.data.n, out_dim, decode ? "x" : "z")
                 : aec_npy_write(a->out, m->dtype, f.out, f.data.n, out_dim);
    if (!st && !a->quiet)
        fprintf(stderr, "wrote %s: %lld x %lld\n", a->out, (long long)f.data.n, (long long)out_dim);
    aec_infer_free(&f);
    return aec_exit_status(st);
}

/* n images of x in rows of `cols`, as a PNG. */
static int write_images(const aec_model *m, const aec_args *a, const void *x, int64_t n, int cols) {
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
int aec_decode_all(const aec_model *m, const void *params, const void *codes, int64_t n,
                   void *out) {
    int batch = m->max_batch < 256 ? m->max_batch : 256;
    if (n < batch) batch = (int)n;
    void *ws = aec_alloc(m->workspace_size(batch));
    if (!ws) return AEC_ENOMEM;
    size_t el = aec_dtype_size(m->dtype);
    int st = AEC_OK;
    for (int64_t i = 0; !st && i < n; i += batch) {
        int bs = (int)(n - i < batch ? n - i : batch);
        st = m->decode_ex(params, (const char *)codes + (size_t)(i * m->code_size) * el,
                          (char *)out + (size_t)(i * m->input_size) * el, bs, ws,
                          aec_trainer_exec());
        if (st) aec_error("decode: %s", aec_strerror(st));
    }
    free(ws);
    return st;
}

/* Writes -o and/or --png of n decoded images. */
int aec_write_outputs(const aec_model *m, const aec_args *a, const void *x, int64_t n, int cols) {
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
