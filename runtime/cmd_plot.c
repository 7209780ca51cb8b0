/* cmd_plot.c — `plot`: a training log's loss curves as a PNG.
 *
 * Takes the JSON lines `train --json` printed (LOG.jsonl) and produces a
 * chart of the training and validation loss per epoch, and the loss's terms
 * when it has any (plot.c draws it with PLplot).
 */
#include "apps.h"

int aec_cmd_plot(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->input || !a->out)
        return aec_usage_error(c, "%s", "LOG.jsonl and -o curves.png are required", NULL);
    aec_curves curves;
    int st = aec_plot_log(a->input, &curves);
    curves.title = m->name;
    if (!st) st = aec_plot_curves(a->out, &curves);
    if (!st && !a->quiet)
        fprintf(stderr, "wrote %s: %d curves over %lld epochs\n", a->out, curves.n_series,
                (long long)curves.n);
    aec_curves_free(&curves);
    return aec_exit_status(st);
}
