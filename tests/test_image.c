/* test_image.c — PNG grids: written with aec_write_png_grid, read back with
 * libpng, checked for size, cell placement, scaling, clamping, the border,
 * RGB interleaving, and the shapes chosen for a model's input.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "tmpdir.h"

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static int setup(void **state) {
    (void)state;
    return tmpdir_setup("image");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_teardown();
}

/* Reads a PNG into 8-bit pixels of `format`; the caller frees. */
static unsigned char *read_png(const char *path, png_uint_32 format, int *w, int *h) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) return NULL;
    image.format = format;
    unsigned char *pixels = malloc(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, NULL, pixels, 0, NULL)) {
        free(pixels);
        return NULL;
    }
    *w = (int)image.width;
    *h = (int)image.height;
    return pixels;
}

/* Two rows of 2x3 gray images, the second row one short; scale 2, border 1. */
static void test_gray_grid(void **state) {
    (void)state;
    float top[2][6] = {{0, 0.25f, 0.5f, 0.75f, 1, 1.5f}, {-1, 0.2f, 0.4f, 0.6f, 0.8f, 1}};
    float bottom[1][6] = {{1, 1, 1, 0, 0, 0}};
    const void *rows[] = {top, bottom};
    int counts[] = {2, 1};
    aec_grid g = {.dtype = AEC_F32,
                  .channels = 1,
                  .height = 2,
                  .width = 3,
                  .size = 6,
                  .rows = 2,
                  .cols = 2,
                  .scale = 2,
                  .border = 1};
    assert_int_equal(aec_write_png_grid(tmp_path("g.png"), &g, rows, counts), 0);

    int w, h;
    unsigned char *px = read_png(tmp_path("g.png"), PNG_FORMAT_GRAY, &w, &h);
    assert_non_null(px);
    assert_int_equal(w, 1 + 2 * (3 * 2 + 1)); /* 15 */
    assert_int_equal(h, 1 + 2 * (2 * 2 + 1)); /* 11 */
#define AT(x, y) px[(y)*w + (x)]
    /* Frame and separators are gray. */
    assert_int_equal(AT(0, 0), 128);
    assert_int_equal(AT(7, 3), 128);
    assert_int_equal(AT(5, 5), 128);
    /* Cell (0, 0) starts at (1, 1); each value covers 2x2 pixels. */
    assert_int_equal(AT(1, 1), 0);
    assert_int_equal(AT(3, 1), 64); /* 0.25 */
    assert_int_equal(AT(4, 2), 64);
    assert_int_equal(AT(5, 1), 128); /* 0.5 -> 127.5 -> 128 */
    assert_int_equal(AT(1, 3), 191); /* 0.75 */
    assert_int_equal(AT(3, 4), 255);
    assert_int_equal(AT(6, 4), 255); /* 1.5 clamped */
    /* Cell (0, 1) starts at x = 1 + 7 = 8. */
    assert_int_equal(AT(8, 1), 0); /* -1 clamped */
    assert_int_equal(AT(10, 1), 51);
    /* Cell (1, 0) starts at y = 1 + 5 = 6; cell (1, 1) is empty, gray. */
    assert_int_equal(AT(1, 6), 255);
    assert_int_equal(AT(1, 8), 0);
    assert_int_equal(AT(8, 6), 128);
    assert_int_equal(AT(13, 9), 128);
#undef AT
    free(px);
}

/* RGB from planar CHW data, in doubles. */
static void test_rgb(void **state) {
    (void)state;
    double img[3][1][2] = {{{1, 0}}, {{0, 1}}, {{0, 0.5}}}; /* red, then teal */
    const void *rows[] = {img};
    int counts[] = {1};
    aec_grid g = {.dtype = AEC_F64,
                  .channels = 3,
                  .height = 1,
                  .width = 2,
                  .size = 6,
                  .rows = 1,
                  .cols = 1,
                  .scale = 1,
                  .border = 2};
    assert_int_equal(aec_write_png_grid(tmp_path("c.png"), &g, rows, counts), 0);
    int w, h;
    unsigned char *px = read_png(tmp_path("c.png"), PNG_FORMAT_RGB, &w, &h);
    assert_non_null(px);
    assert_int_equal(w, 2 + 2 + 2);
    assert_int_equal(h, 2 + 1 + 2);
    const unsigned char *p = px + (2 * w + 2) * 3;
    assert_int_equal(p[0], 255);
    assert_int_equal(p[1], 0);
    assert_int_equal(p[2], 0);
    assert_int_equal(p[3], 0);
    assert_int_equal(p[4], 255);
    assert_int_equal(p[5], 128);
    free(px);
}

/* A vector of 17 values drawn 4 rows of 5: the last three pixels are empty. */
static void test_padding(void **state) {
    (void)state;
    float v[17];
    for (int i = 0; i < 17; i++)
        v[i] = 1;
    const void *rows[] = {v};
    int counts[] = {1};
    aec_grid g = {.dtype = AEC_F32,
                  .channels = 1,
                  .height = 4,
                  .width = 5,
                  .size = 17,
                  .rows = 1,
                  .cols = 1,
                  .scale = 1,
                  .border = 1};
    assert_int_equal(aec_write_png_grid(tmp_path("p.png"), &g, rows, counts), 0);
    int w, h;
    unsigned char *px = read_png(tmp_path("p.png"), PNG_FORMAT_GRAY, &w, &h);
    assert_non_null(px);
    assert_int_equal(px[4 * w + 2], 255); /* value 16: row 3, column 1 */
    assert_int_equal(px[4 * w + 3], 0);   /* past the vector */
    free(px);
}

static void test_grid_for_model(void **state) {
    (void)state;
    aec_model m = {0};
    aec_grid g;
    m.input_ndim = 3;
    m.input_shape[0] = 1, m.input_shape[1] = 28, m.input_shape[2] = 28;
    m.input_size = 784;
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.channels, 1);
    assert_int_equal(g.height, 28);
    assert_int_equal(g.width, 28);
    assert_int_equal(g.scale, 2);

    m.input_shape[0] = 3, m.input_shape[1] = 32, m.input_shape[2] = 32;
    m.input_size = 3072;
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.channels, 3);

    m.input_shape[0] = 2, m.input_shape[1] = 4, m.input_shape[2] = 5;
    m.input_size = 40;
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.channels, 1);
    assert_int_equal(g.height, 8);
    assert_int_equal(g.width, 5);
    assert_int_equal(g.scale, 4);

    m.input_ndim = 1;
    m.input_shape[0] = 784;
    m.input_size = 784;
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.height * g.width, 784);
    assert_int_equal(g.height, 28);

    m.input_shape[0] = m.input_size = 32;
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.height, 4);
    assert_int_equal(g.width, 8);

    m.input_shape[0] = m.input_size = 17; /* prime: nearly square, padded */
    aec_grid_for_model(&g, &m);
    assert_int_equal(g.width, 5);
    assert_int_equal(g.height, 4);
    assert_int_equal(g.size, 17);
}

static void test_errors(void **state) {
    (void)state;
    float v[4] = {0};
    const void *rows[] = {v};
    int counts[] = {1};
    aec_grid g = {.dtype = AEC_F32,
                  .channels = 2,
                  .height = 1,
                  .width = 2,
                  .size = 4,
                  .rows = 1,
                  .cols = 1,
                  .scale = 1,
                  .border = 1};
    assert_int_equal(aec_write_png_grid(tmp_path("e.png"), &g, rows, counts), AEC_EUNSUPPORTED);
    g.channels = 1;
    assert_int_equal(aec_write_png_grid("/nonexistent/dir/e.png", &g, rows, counts), AEC_EIO);
    assert_non_null(strstr(aec_last_error(), "/nonexistent/dir/e.png"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_grid), cmocka_unit_test(test_rgb),
        cmocka_unit_test(test_padding),   cmocka_unit_test(test_grid_for_model),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
