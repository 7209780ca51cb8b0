/* cmd_denoise.c — `denoise`: corrupt, reconstruct, measure.
 *
 * Takes data, weights and a noise (gaussian=S: add S·N(0, 1); mask=P: zero
 * each value with probability P; saltpepper=P: with probability P set a
 * value to 0 or 1, even odds) and produces the reconstruction of the
 * corrupted data, with the PSNR of the noisy and of the denoised data
 * against the clean data. The noise is the counter-based generator's
 * (seed, "DENOI", value index), so a run is reproducible; noisy values are
 * not clipped.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apps.h"

typedef enum Noise { NOISE_GAUSSIAN, NOISE_MASK, NOISE_SALTPEPPER } Noise;

static int parse_noise(const aec_command *c, const char *s, Noise *kind, double *v) {
    static const char *names[] = {"gaussian=", "mask=", "saltpepper="};
    for (int k = 0; k < 3; k++) {
        size_t len = strlen(names[k]);
        if (strncmp(s, names[k], len)) continue;
        char *end;
        *v = strtod(s + len, &end);
        if (end == s + len || *end || !(*v >= 0) || (k > 0 && *v > 1)) break;
        *kind = (Noise)k;
        return 0;
    }
    return aec_usage_error(c,
                           "--noise %s: expected gaussian=S (S >= 0), mask=P or saltpepper=P "
                           "(0 <= P <= 1)",
                           s, NULL);
}

static void corrupt(aec_data *d, Noise kind, double v, uint64_t seed) {
    for (int64_t i = 0; i < d->n * d->dim; i++) {
        double x = aec_get(d->x, d->dtype, i);
        uint64_t c = (uint64_t)i;
        if (kind == NOISE_GAUSSIAN)
            x += v * aec_rng_normal(seed, AEC_STREAM_DENOISE, c);
        else if (aec_rng_uniform(seed, AEC_STREAM_DENOISE, 2 * c) < v)
            x = kind == NOISE_MASK ? 0 : aec_rng_uniform(seed, AEC_STREAM_DENOISE, 2 * c + 1) < 0.5;
        aec_set(d->x, d->dtype, i, x);
    }
}

int aec_cmd_denoise(const aec_command *c, const aec_model *m, const aec_args *a) {
    if (!a->data || !a->weights || !a->noise) {
        return aec_usage_error(c, "%s", "--data, --weights and --noise are required", NULL);
    }
    Noise kind = NOISE_GAUSSIAN;
    double v = 0;
    if (parse_noise(c, a->noise, &kind, &v)) return AEC_EXIT_USAGE;
    aec_infer f;
    aec_data noisy;
    size_t el = aec_dtype_size(m->dtype);
    void *clean = NULL, *out = NULL;
    int st = aec_infer_open(m, a->weights, a->data, a->limit, &f);
    int64_t n = f.data.n, values = n * f.data.dim;
    if (!st) {
        clean = malloc((size_t)values * el + 1);
        out = malloc((size_t)values * el + 1);
        st = clean && out ? AEC_OK : AEC_ENOMEM;
    }
    if (!st) {
        memcpy(clean, f.data.x, (size_t)values * el);
        noisy = f.data; /* corrupted in place; the clean copy is kept aside */
        corrupt(&noisy, kind, v, a->has_seed ? a->seed : m->train.seed);
        double loss;
        st = aec_eval_data(m, f.params, &noisy, f.batch, f.ws, out, &loss);
    }
    if (!st && a->out) st = aec_npy_write(a->out, m->dtype, out, n, f.data.dim);
    if (!st && a->png) {
        int cols = n < 10 ? (int)n : 10;
        const void *rows[] = {clean, f.data.x, out};
        int counts[] = {cols, cols, cols};
        st = aec_png_rows(a->png, m, rows, counts, 3, cols);
    }
    if (!st) {
        double noisy_psnr = aec_psnr(aec_mse(m->dtype, f.data.x, clean, values));
        double out_psnr = aec_psnr(aec_mse(m->dtype, out, clean, values));
        if (a->json) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "samples", json_object_new_int64(n));
            json_object_object_add(o, "psnr_noisy", json_object_new_double(noisy_psnr));
            json_object_object_add(o, "psnr_denoised", json_object_new_double(out_psnr));
            puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
            json_object_put(o);
        } else {
            printf("%lld samples, noise %s: PSNR noisy %.2f dB, denoised %.2f dB\n", (long long)n,
                   a->noise, noisy_psnr, out_psnr);
        }
        if (!a->quiet && a->png) fprintf(stderr, "wrote %s: clean, noisy, denoised\n", a->png);
    }
    free(clean);
    free(out);
    aec_infer_free(&f);
    return aec_exit_status(st);
}
