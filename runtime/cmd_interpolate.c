/* cmd_interpolate.c — `interpolate`: the decoded straight line between two codes.
 *
 * Encodes samples --from and --to of --data (inference mode: mu for a VAE)
 * and decodes --steps points on the line between them into -o and/or --png.
 */
#include <stdlib.h>

#include "cli.h"
#include "pool.h"

/* The codes a, b of samples I and J; the K points (1-t)·a + t·b for t = 0,
 * 1/(K-1), ..., 1, decoded. */
int aec_cmd_interpolate(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->data, "--data") || aec_require(c, a->weights, "--weights"))
        return AEC_EXIT_USAGE;
    if (!a->out && !a->png)
        return aec_usage_error(c, "%s", "needs -o FILE and/or --png FILE", NULL);
    int64_t from = a->from, to = a->has_to ? a->to : 1;
    int32_t k = a->steps ? a->steps : 10;
    if (k < 2) return aec_usage_error(c, "%s", "--steps must be at least 2", NULL);
    aec_infer f;
    int st = aec_infer_setup(m, a, a->data, 0, m->code_size, &f);
    if (!st && (from >= f.data.n || to >= f.data.n)) {
        aec_error("%s has %lld samples: --from %lld and --to %lld must be below that", a->data,
                  (long long)f.data.n, (long long)from, (long long)to);
        st = AEC_EMISMATCH;
    }
    size_t el = aec_dtype_size(m->dtype);
    void *codes = NULL, *line = NULL, *x = NULL;
    if (!st) {
        codes = malloc(2 * (size_t)m->code_size * el);
        line = malloc((size_t)(k * m->code_size) * el);
        x = malloc((size_t)(k * m->input_size) * el);
        if (!codes || !line || !x) st = AEC_ENOMEM;
    }
    for (int e = 0; !st && e < 2; e++) { /* the encoder in inference mode (mu for a VAE) */
        const char *row = (const char *)f.data.x + (size_t)((e ? to : from) * m->input_size) * el;
        st = m->encode_ex(f.params, row, (char *)codes + (size_t)(e * m->code_size) * el, 1, f.ws,
                          aec_trainer_exec());
        if (st) aec_error("encode: %s", aec_strerror(st));
    }
    for (int32_t s = 0; !st && s < k; s++) {
        double t = (double)s / (k - 1);
        for (int64_t j = 0; j < m->code_size; j++)
            aec_set(line, m->dtype, s * m->code_size + j,
                    (1 - t) * aec_get(codes, m->dtype, j) +
                        t * aec_get(codes, m->dtype, m->code_size + j));
    }
    if (!st) st = aec_decode_all(m, f.params, line, k, x);
    if (!st) st = aec_write_outputs(m, a, x, k, k);
    free(codes);
    free(line);
    free(x);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
