/* image.c — a grid of images as one PNG.
 *
 * Takes rows of images in the model's layout (CHW, values nominally in
 * [0, 1]) and produces an 8-bit gray or RGB PNG through libpng's simplified
 * API: cells of scale x scale pixels per value, separated and framed by a
 * gray border, so that originals and reconstructions can be compared by eye.
 * Values are clamped to [0, 1]; cells past a row's count stay border gray.
 */
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

#define BORDER_GRAY 128

/* The nearest square-ish rectangle for a vector of n values: the divisor
 * pair closest to a square, unless that is very thin (a prime n), then
 * ceil(sqrt n) columns with the last row partly empty. */
static void rect_for(int64_t n, int32_t *h, int32_t *w) {
    int64_t best = 1;
    for (int64_t d = 1; d * d <= n; d++)
        if (n % d == 0) best = d;
    if (n / best <= 4 * best) {
        *h = (int32_t)best;
        *w = (int32_t)(n / best);
        return;
    }
    int64_t cols = (int64_t)ceil(sqrt((double)n));
    *w = (int32_t)cols;
    *h = (int32_t)((n + cols - 1) / cols);
}

void aec_grid_for_model(aec_grid *g, const aec_model *m) {
    const int32_t *s = m->input_shape;
    g->dtype = m->dtype;
    g->size = m->input_size;
    g->channels = 1;
    if (m->input_ndim == 3 && (s[0] == 1 || s[0] == 3)) {
        g->channels = s[0];
        g->height = s[1];
        g->width = s[2];
    } else if (m->input_ndim == 3) { /* other channel counts: planes stacked vertically */
        g->height = s[0] * s[1];
        g->width = s[2];
    } else if (m->input_ndim == 2) {
        g->height = s[0];
        g->width = s[1];
    } else {
        rect_for(m->input_size, &g->height, &g->width);
    }
    /* Small images are hard to read at 1:1. */
    int32_t side = g->height > g->width ? g->height : g->width;
    g->scale = side <= 16 ? 4 : side <= 64 ? 2 : 1;
    g->border = g->scale > 1 ? 2 : 1;
}

static unsigned char to_byte(double v) {
    if (!(v > 0)) return 0; /* NaN too */
    if (v >= 1) return 255;
    return (unsigned char)lrint(v * 255.0);
}

/* Paints image `img` with its top-left corner at pixel (x0, y0). */
static void paint(unsigned char *pixels, size_t stride, const aec_grid *g, const void *img,
                  int64_t x0, int64_t y0) {
    int64_t plane = (int64_t)g->height * g->width;
    for (int64_t y = 0; y < g->height; y++)
        for (int64_t x = 0; x < g->width; x++)
            for (int c = 0; c < g->channels; c++) {
                int64_t i = c * plane + y * g->width + x;
                unsigned char v = i < g->size ? to_byte(aec_get(img, g->dtype, i)) : 0;
                for (int dy = 0; dy < g->scale; dy++) {
                    unsigned char *row = pixels + (size_t)(y0 + y * g->scale + dy) * stride;
                    for (int dx = 0; dx < g->scale; dx++)
                        row[(x0 + x * g->scale + dx) * g->channels + c] = v;
                }
            }
}

int aec_write_png_grid(const char *path, const aec_grid *g, const void *const *rows,
                       const int *counts) {
    if (g->channels != 1 && g->channels != 3) {
        aec_error("%s: images with %d channels, expected 1 (gray) or 3 (RGB)", path, g->channels);
        return AEC_EUNSUPPORTED;
    }
    int64_t cell_w = (int64_t)g->width * g->scale, cell_h = (int64_t)g->height * g->scale;
    int64_t width = g->border + g->cols * (cell_w + g->border);
    int64_t height = g->border + g->rows * (cell_h + g->border);
    if (width <= 0 || height <= 0 || width > 1 << 20 || height > 1 << 20) {
        aec_error("%s: a grid of %lld x %lld pixels is out of range", path, (long long)width,
                  (long long)height);
        return AEC_EUNSUPPORTED;
    }
    size_t stride = (size_t)width * (size_t)g->channels;
    unsigned char *pixels = malloc(stride * (size_t)height);
    if (!pixels) {
        aec_error("%s: out of memory for a %lld x %lld image", path, (long long)width,
                  (long long)height);
        return AEC_ENOMEM;
    }
    memset(pixels, BORDER_GRAY, stride * (size_t)height);
    size_t image_bytes = (size_t)g->size * aec_dtype_size(g->dtype);
    for (int r = 0; r < g->rows; r++)
        for (int c = 0; c < counts[r] && c < g->cols; c++)
            paint(pixels, stride, g, (const char *)rows[r] + (size_t)c * image_bytes,
                  g->border + c * (cell_w + g->border), g->border + r * (cell_h + g->border));

    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = g->channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    aec_atomic a;
    int status = aec_atomic_begin(&a, path);
    if (!status) {
        if (png_image_write_to_stdio(&image, a.f, 0, pixels, (png_int_32)stride, NULL)) {
            status = aec_atomic_commit(&a);
        } else {
            aec_error("%s: libpng: %s", path, image.message);
            aec_atomic_abort(&a);
            status = AEC_EIO;
        }
    }
    png_image_free(&image);
    free(pixels);
    return status;
}
