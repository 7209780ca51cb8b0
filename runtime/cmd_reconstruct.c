/* cmd_reconstruct.c — `reconstruct`: every sample through the model.
 *
 * Takes --data and --weights; writes the reconstructions as an .npy (-o)
 * and/or the first ones under their originals as a PNG grid (--png), and
 * reports the metrics as eval does (hidden by --quiet).
 */
#include <stdlib.h>

#include "cli.h"

/* Pairs of rows: originals, then their reconstructions. */
static int write_grid(const aec_model *m, const aec_args *a, const aec_infer *f) {
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

int aec_cmd_reconstruct(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->data, "--data") || aec_require(c, a->weights, "--weights"))
        return AEC_EXIT_USAGE;
    if (!a->out && !a->png)
        return aec_usage_error(c, "%s", "needs -o FILE and/or --png FILE", NULL);
    aec_infer f;
    double metrics[AEC_MAX_METRICS];
    int st = aec_infer_setup(m, a, a->data, 0, m->input_size, &f);
    if (!st) st = aec_eval_metrics(m, f.params, &f.data, f.batch, f.ws, f.out, metrics);
    if (!st && a->out) st = aec_npy_write(a->out, m->dtype, f.out, f.data.n, m->input_size);
    if (!st && a->png) st = write_grid(m, a, &f);
    if (!st) aec_report_metrics(m, a, 0, &f.data, metrics, aec_mse_of(&f.data, f.out));
    aec_infer_free(&f);
    return aec_exit_status(st);
}
