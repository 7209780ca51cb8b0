/* cmd_compress.c — `compress` and `decompress`: data as quantized codes.
 *
 * compress takes data and weights and produces an .aez file (aez.c): the
 * codes, quantized per dimension to --bits; it reports the bytes in (as the
 * input file stores the values: one byte per pixel for IDX), the bytes out,
 * their ratio and the PSNR of the decompressed data against the input.
 * decompress takes the .aez file and the same weights and produces the
 * decoded data (.npy) and/or a PNG grid.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"

int aec_cmd_compress(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->data || !a->weights || !a->out) {
        return aec_usage_error(c, "%s", "--data, --weights and -o F.aez are required", NULL);
    }
    int bits = a->bits ? a->bits : 8;
    if (bits > 16)
        return aec_usage_error(c, "%s", "--bits: at most 16 (4, 8 or 16 are the usual choices)",
                               NULL);
    aec_infer f;
    aec_aez z = {0};
    size_t el = aec_dtype_size(m->dtype);
    void *codes = NULL, *back = NULL, *x = NULL;
    int st = aec_infer_open(m, a->weights, a->data, a->limit, &f);
    int64_t n = f.data.n, bytes_out = 0;
    if (!st) {
        codes = malloc((size_t)(n * m->code_size) * el + 1);
        back = malloc((size_t)(n * m->code_size) * el + 1);
        x = malloc((size_t)(n * m->input_size) * el + 1);
        st = codes && back && x ? AEC_OK : AEC_ENOMEM;
    }
    if (!st) st = aec_encode_batches(m, &f, &f.data, codes);
    if (!st) st = aec_aez_quantize(m, codes, n, bits, &z);
    if (!st) st = aec_aez_write(a->out, &z, &bytes_out);
    /* The PSNR is of what decompress will produce: the quantized codes decoded. */
    if (!st) aec_aez_dequantize(&z, m->dtype, back);
    if (!st) st = aec_decode_batches(m, &f, back, n, x);
    if (!st) {
        /* CSV holds text: count its values as float32, the smallest exact binary form. */
        int64_t bytes_in = n * f.data.dim * (f.data.elem_bytes ? f.data.elem_bytes : 4);
        double mse = aec_mse(m->dtype, x, f.data.x, n * f.data.dim), psnr = aec_psnr(mse);
        double ratio = (double)bytes_in / (double)bytes_out;
        if (a->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "samples", json_object_new_int64(n));
            json_object_object_add(o, "bytes_in", json_object_new_int64(bytes_in));
            json_object_object_add(o, "bytes_out", json_object_new_int64(bytes_out));
            json_object_object_add(o, "ratio", json_object_new_double(ratio));
            json_object_object_add(o, "psnr", json_object_new_double(psnr));
            json_object_object_add(o, "bits", json_object_new_int(bits));
            puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            json_object_put(o);
        } else {
            printf("%lld samples: %lld bytes in (%s), %lld bytes out (%s, %lld x %d bits): ratio "
                   "%.1f, PSNR %.2f dB\n",
                   (long long)n, (long long)bytes_in, f.data.format, (long long)bytes_out, a->out,
                   (long long)m->code_size, bits, ratio, psnr);
        }
    }
    free(codes);
    free(back);
    free(x);
    aec_aez_free(&z);
    aec_infer_free(&f);
    return aec_exit_status(st);
}

int aec_cmd_decompress(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->input || !a->weights || (!a->out && !a->png)) {
        return aec_usage_error(c, "%s",
                               "F.aez, --weights and -o out.npy and/or --png P are required", NULL);
    }
    aec_infer f;
    aec_aez z = {0};
    size_t el = aec_dtype_size(m->dtype);
    void *codes = NULL, *x = NULL;
    int st = aec_infer_open(m, a->weights, NULL, 0, &f);
    if (!st) st = aec_aez_read(a->input, m, &z);
    if (!st) {
        codes = malloc((size_t)(z.n * m->code_size) * el + 1);
        x = malloc((size_t)(z.n * m->input_size) * el + 1);
        st = codes && x ? AEC_OK : AEC_ENOMEM;
    }
    if (!st) aec_aez_dequantize(&z, m->dtype, codes);
    if (!st) st = aec_decode_batches(m, &f, codes, z.n, x);
    if (!st && a->out) st = aec_npy_write(a->out, m->dtype, x, z.n, m->input_size);
    if (!st && a->png) {
        int cols = 10, rows = (int)((z.n < 100 ? z.n : 100) + cols - 1) / cols;
        const void *ptr[10];
        int counts[10];
        for (int r = 0; r < rows; r++) {
            ptr[r] = (const char *)x + (size_t)(r * cols * m->input_size) * el;
            counts[r] = (int)(z.n - r * cols < cols ? z.n - r * cols : cols);
        }
        st = aec_png_rows(a->png, m, ptr, counts, rows, cols);
    }
    if (!st && !a->quiet)
        fprintf(stderr, "decompressed %lld samples of %s%s%s%s%s\n", (long long)z.n, a->input,
                a->out ? " into " : "", a->out ? a->out : "", a->png ? ", drew " : "",
                a->png ? a->png : "");
    free(codes);
    free(x);
    aec_aez_free(&z);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
