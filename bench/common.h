/* bench/common.h — what the benchmarks share: the clocks, medians and
 * quantiles of timings, aligned buffers, and Fashion-MNIST's images.
 *
 * Header-only: each benchmark is one .c file that bench/run.sh or the
 * Makefile compiles and links against a model object. Define BENCH_NAME
 * (the program's name, for its error messages) before including it. Fatal
 * errors print "BENCH_NAME: ..." and exit 1.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench/common.h"
#endif

/* Seconds on `clock` (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, ...). */
static inline double clock_s(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Wall-clock seconds, monotonic. */
static inline double now(void) {
    return clock_s(CLOCK_MONOTONIC);
}

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n values (the mean of the middle two for even n), sorting them. */
static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The q-quantile of n values, the nearest rank (0.5: v[n / 2]), sorting them. */
static inline double quantile(double *v, int n, double q) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(q * (n - 1) + 0.5)];
}

/* `bytes` of zeroed memory, 64-byte aligned (AEC_ALIGN). */
static inline void *xalloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, BENCH_NAME ": out of memory\n");
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

#ifdef BENCH_IDX /* the benchmarks that read images link zlib */
#include <zlib.h>

/* The images of an IDX3 ubyte file (gzip or plain), `size` values each, as
 * floats in [0, 1]: the first `want`, or every image for want 0. *count
 * (when not NULL) says how many. */
static inline float *load_idx(const char *path, long size, int want, int *count) {
    gzFile f = gzopen(path, "rb");
    unsigned char h[16];
    if (!f || gzread(f, h, 16) != 16 || h[2] != 0x08 || h[3] != 3) {
        fprintf(stderr, BENCH_NAME ": %s: not an IDX3 ubyte file\n", path);
        exit(1);
    }
    long dim[3];
    for (int i = 0; i < 3; i++)
        dim[i] = (long)h[4 + 4 * i] << 24 | h[5 + 4 * i] << 16 | h[6 + 4 * i] << 8 | h[7 + 4 * i];
    if (dim[1] * dim[2] != size || dim[0] < want) {
        fprintf(stderr,
                BENCH_NAME ": %s: %ld images of %ldx%ld, the model wants %d of %ld values\n", path,
                dim[0], dim[1], dim[2], want, size);
        exit(1);
    }
    long images = want ? want : dim[0];
    size_t n = (size_t)images * (size_t)size;
    unsigned char *raw = malloc(n);
    float *x = xalloc(n * sizeof *x);
    if (!raw || gzread(f, raw, (unsigned)n) != (int)n) {
        fprintf(stderr, BENCH_NAME ": %s: truncated\n", path);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        x[i] = raw[i] / 255.0f;
    free(raw);
    gzclose(f);
    if (count) *count = (int)images;
    return x;
}
#endif

#endif
