/* cross_run.c — a model's numbers on whatever machine runs it, to compare
 * two machines' code (tests/e2e/cross.sh: the x86 host's and the aarch64
 * object's under qemu). Linked with one model object; MODEL names its
 * descriptor (-DMODEL=fmnist_dense_model). From the model's own init (seed
 * 1) and a batch drawn by an integer generator (the same bits everywhere),
 * prints the loss of STEPS training steps, the codes of the batch and of
 * its first sample alone (batch 1: the matrix-vector path) — also with
 * the weights compiled in, if the object has them (--embed-weights: the
 * sparse-rows path) — and the inference loss, one number per line as
 * "name value".
 *
 * Usage: cross_run [STEPS]   (default 3)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aec.h"

extern const aec_model MODEL;

static uint64_t lcg = 0x9e3779b97f4a7c15u;

/* In [0, 1), multiples of 2^-8 (as pixel bytes / 256), half of them 0. */
static double next_pixel(void) {
    lcg = lcg * 6364136223846793005u + 1442695040888963407u;
    unsigned v = (unsigned)(lcg >> 55); /* 9 bits */
    return v < 256 ? 0.0 : (double)(v - 256) / 256.0;
}

static void *zeroed(size_t bytes) {
    void *p = aligned_alloc(AEC_ALIGN, (bytes + AEC_ALIGN - 1) / AEC_ALIGN * AEC_ALIGN);
    if (!p) {
        fprintf(stderr, "cross_run: out of memory\n");
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static double get(const void *v, int f64, size_t i) {
    return f64 ? ((const double *)v)[i] : ((const float *)v)[i];
}

static void check(int status, const char *what) {
    if (status) {
        fprintf(stderr, "cross_run: %s: %s\n", what, aec_strerror(status));
        exit(1);
    }
}

int main(int argc, char **argv) {
    const aec_model *m = &MODEL;
    int steps = argc > 1 ? atoi(argv[1]) : 3;
    int f64 = m->dtype == AEC_F64, batch = m->train.batch;
    size_t el = f64 ? 8 : 4;
    void *params = zeroed((size_t)m->param_count * el);
    void *opt = zeroed((size_t)m->opt_state_count * el);
    void *x = zeroed((size_t)batch * (size_t)m->input_size * el);
    void *code = zeroed((size_t)batch * (size_t)m->code_size * el);
    void *ws = zeroed(m->workspace_size(batch));
    void *loss = zeroed(16 * el);
    for (size_t i = 0; i < (size_t)batch * (size_t)m->input_size; i++)
        if (f64)
            ((double *)x)[i] = next_pixel();
        else
            ((float *)x)[i] = (float)next_pixel();
    check(m->init(params, 1), "init");
    for (int s = 1; s <= steps; s++) {
        check(m->train_step(params, opt, x, NULL, batch, (uint64_t)s, loss, ws), "train_step");
        printf("loss.%d %.17g\n", s, get(loss, f64, 0));
    }
    check(m->encode(params, x, code, batch, ws), "encode");
    for (size_t i = 0; i < (size_t)batch * (size_t)m->code_size; i += 7)
        printf("code.%zu %.17g\n", i, get(code, f64, i));
    check(m->encode(params, x, code, 1, ws), "encode, batch 1");
    for (size_t i = 0; i < (size_t)m->code_size; i++)
        printf("code1.%zu %.17g\n", i, get(code, f64, i));
    if (m->embedded_params) { /* batch 1 with the weights compiled in: the sparse-rows path */
        check(m->encode(m->embedded_params, x, code, 1, ws), "encode, embedded weights");
        for (size_t i = 0; i < (size_t)m->code_size; i++)
            printf("code_embedded.%zu %.17g\n", i, get(code, f64, i));
    }
    check(m->eval(params, x, NULL, batch, loss, NULL, ws), "eval");
    printf("eval %.17g\n", get(loss, f64, 0));
    free(params);
    free(opt);
    free(x);
    free(code);
    free(ws);
    free(loss);
    return 0;
}
