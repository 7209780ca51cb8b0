/* conv_direct.c — the measurement behind lowering convolutions to GEMM.
 *
 * mnist_conv's second layer (64 -> 128 channels, 28x28, 3x3, pad 1) on one
 * sample, two ways: a direct loop nest written to vectorize (output rows
 * accumulated with one weight at a time, the inner loop contiguous), as
 * LLVM would get it from aec's loop kernels, and im2col + cblas_sgemm, as
 * aec generates it. Checks they agree and prints ms and GFLOPS for each.
 *   cc -O3 -march=native bench/conv_direct.c -lopenblas -o conv_direct
 *   OPENBLAS_NUM_THREADS=1 ./conv_direct
 * See docs/internals.md ("Convolutions") and docs/bench.md.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define BENCH_NAME "conv_direct"
#include "common.h"
enum { C = 64, R = 128, H = 28, W = 28, K = 3 };
/* direct: output-stationary, vectorizable over x (the inner loop) */
static void direct(const float *x, const float *w, float *y) {
    memset(y, 0, sizeof(float) * R * H * W);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < K; i++)
                for (int j = 0; j < K; j++) {
                    float wv = w[((r * C + c) * K + i) * K + j];
                    for (int oy = 0; oy < H; oy++) {
                        int iy = oy - 1 + i;
                        if (iy < 0 || iy >= H) continue;
                        int x0 = j == 0 ? 1 : 0, x1 = j == 2 ? W - 1 : W;
                        const float *src = x + (c * H + iy) * W - 1 + j;
                        float *dst = y + (r * H + oy) * W;
                        for (int ox = x0; ox < x1; ox++)
                            dst[ox] += wv * src[ox];
                    }
                }
}
static void im2col_gemm(const float *x, const float *w, float *y, float *cols) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                float *row = cols + ((c * K + i) * K + j) * H * W;
                for (int oy = 0; oy < H; oy++)
                    for (int ox = 0; ox < W; ox++) {
                        int iy = oy - 1 + i, ix = ox - 1 + j;
                        row[oy * W + ox] =
                            (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[(c * H + iy) * W + ix] : 0;
                    }
            }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, H * W, C * K * K, 1, w, C * K * K,
                cols, H * W, 0, y, H * W);
}
int main(void) {
    float *x = malloc(4 * C * H * W), *w = malloc(4 * R * C * K * K), *y = malloc(4 * R * H * W),
          *y2 = malloc(4 * R * H * W), *cols = malloc(4 * C * K * K * H * W);
    for (int i = 0; i < C * H * W; i++)
        x[i] = (i % 13) * 0.1f;
    for (int i = 0; i < R * C * K * K; i++)
        w[i] = (i % 7) * 0.01f;
    direct(x, w, y);
    im2col_gemm(x, w, y2, cols);
    double md = 0;
    for (int i = 0; i < R * H * W; i++) {
        double d = y[i] - y2[i];
        if (d < 0) d = -d;
        if (d > md) md = d;
    }
    int n = 20;
    double t = now();
    for (int k = 0; k < n; k++)
        direct(x, w, y);
    double td = (now() - t) / n;
    t = now();
    for (int k = 0; k < n; k++)
        im2col_gemm(x, w, y2, cols);
    double tg = (now() - t) / n;
    double fl = 2.0 * R * C * K * K * H * W;
    printf("maxdiff %g  direct %.2f ms (%.1f GFLOPS)  im2col+sgemm %.2f ms (%.1f GFLOPS)\n", md,
           td * 1e3, fl / td / 1e9, tg * 1e3, fl / tg / 1e9);
}
