/* cmd_export.c — `export`: the model with its trained weights (--weights) as
 * an ONNX file (-o), the whole autoencoder or one --part (onnx.c). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int aec_cmd_export(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (aec_require(c, a->weights, "--weights") || aec_require(c, a->out, "-o/--out"))
        return AEC_EXIT_USAGE;
    int part = 0;
    if (a->part) {
        while (aec_onnx_parts[part] && strcmp(aec_onnx_parts[part], a->part))
            part++;
        if (!aec_onnx_parts[part])
            return aec_usage_error(c, "unknown --part '%s' (autoencoder, encoder, decoder)",
                                   a->part, NULL);
    }
    void *params = aec_alloc((size_t)m->param_count * aec_dtype_size(m->dtype));
    if (!params) {
        aec_error("out of memory for %lld parameters", (long long)m->param_count);
        return 1;
    }
    int st = aec_ckpt_load(a->weights, m, params, NULL, NULL, NULL, NULL);
    if (!st) st = aec_onnx_export(m, params, part, a->out);
    if (!st && !a->quiet)
        fprintf(stderr, "wrote %s: %s of %s\n", a->out, aec_onnx_parts[part], m->name);
    free(params);
    return aec_exit_status(st);
}
