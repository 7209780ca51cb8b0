/* cmd_sample.c — `sample`: new samples of a variational model.
 *
 * Draws n codes z ~ N(0, I) from (the seed, AEC_STREAM_SAMPLE, element
 * index) and decodes them into -o and/or --png.
 */
#include <stdlib.h>

#include "cli.h"

/* z ~ N(0, I) from (seed, "SAMPL", element index), decoded. */
int aec_cmd_sample(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->weights, "--weights")) return AEC_EXIT_USAGE;
    if (!a->out && !a->png)
        return aec_usage_error(c, "%s", "needs -o FILE and/or --png FILE", NULL);
    if (!m->variational) {
        aec_error("model %s has no 'latent gaussian' code, so there is no prior N(0, I) to sample "
                  "(interpolate works for any model)",
                  m->name);
        return 1;
    }
    int64_t n = a->n ? a->n : 10;
    uint64_t seed = a->has_seed ? a->seed : m->train.seed;
    size_t el = aec_dtype_size(m->dtype);
    void *params = aec_alloc((size_t)m->param_count * el);
    void *z = malloc((size_t)(n * m->code_size) * el + 1);
    void *x = malloc((size_t)(n * m->input_size) * el + 1);
    int st = params && z && x ? AEC_OK : AEC_ENOMEM;
    if (st) aec_error("out of memory for %lld samples", (long long)n);
    if (!st) st = aec_ckpt_load(a->weights, m, params, NULL, NULL, NULL, NULL);
    for (int64_t i = 0; !st && i < n * m->code_size; i++)
        aec_set(z, m->dtype, i, aec_rng_normal(seed, AEC_STREAM_SAMPLE, (uint64_t)i));
    if (!st) st = aec_decode_all(m, params, z, n, x);
    if (!st) st = aec_write_outputs(m, a, x, n, a->cols ? a->cols : 10);
    free(params);
    free(z);
    free(x);
    return aec_exit_status(st);
}
