/* shape.c — shape arithmetic: sizes, spellings and the conv/pool output rules.
 *
 * Takes per-sample shapes and layer geometry (pure functions, no checker
 * state); produces element counts, "1x28x28"-style text, output sizes along
 * one dimension (conv, deconv, pooling, with Keras `same` and PyTorch
 * padding) and the padding PyTorch needs for `same`.
 */
#include <limits.h>

#include "check.h"

char *shape_str(Arena *a, Shape s) {
    switch (s.ndim) {
    case 1: return arena_printf(a, "%d", s.dim[0]);
    case 3: return arena_printf(a, "%dx%dx%d", s.dim[0], s.dim[1], s.dim[2]);
    default: return arena_strdup(a, "?");
    }
}

Shape shape_vec(int n) {
    return (Shape){1, {n, 0, 0}};
}

Shape shape_chw(int c, int h, int w) {
    return (Shape){3, {c, h, w}};
}

bool shape_eq(Shape a, Shape b) {
    if (a.ndim != b.ndim) return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

int clamp_int(long x) {
    return x > INT_MAX ? INT_MAX : x < INT_MIN ? INT_MIN : (int)x;
}

/* Keras `same`: ceil(in/stride); otherwise floor((in + 2·pad − k)/stride) + 1. */
int conv_out_size(int in, int k, int stride, int pad) {
    if (pad == CONV_PAD_SAME) return (int)(((long)in + stride - 1) / stride);
    long padded = (long)in + 2L * pad;
    return padded < k ? 0 : clamp_int((padded - k) / stride + 1);
}

/* Keras `same`: in·stride; otherwise PyTorch's (in − 1)·stride + k − 2·pad. */
int deconv_out_size(int in, int k, int stride, int pad) {
    if (pad == CONV_PAD_SAME) return clamp_int((long)in * stride);
    return clamp_int(((long)in - 1) * stride + k - 2L * pad);
}

int pool_out_size(int in, int k, int stride) {
    return in < k ? 0 : (in - k) / stride + 1;
}

/* The padding PyTorch needs along one dimension for pad mode `mode`:
 * `before` pixels at the top/left, and `extra` — for conv the one more pixel
 * at the bottom/right that Keras `same` adds when the total is odd, for
 * deconv PyTorch's output_padding. */
void conv_padding(LayerKind kind, int in, int k, int stride, int mode, int *before, int *extra) {
    *before = mode == CONV_PAD_SAME ? 0 : mode;
    *extra = 0;
    if (mode != CONV_PAD_SAME) return;
    if (kind == LY_CONV) {
        long out = conv_out_size(in, k, stride, CONV_PAD_SAME);
        long total = (out - 1) * stride + k - in;
        if (total < 0) total = 0;
        *before = (int)(total / 2);
        *extra = (int)(total - total / 2 * 2);
    } else {
        /* (in−1)·S − 2P + K + extra = in·S  with  extra in [0, S). */
        int total = k - stride;
        *before = total > 0 ? (total + 1) / 2 : 0;
        *extra = 2 * *before - total;
    }
}
