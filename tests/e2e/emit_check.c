/* emit_check.c — an emitted model object, linked into a program, checked
 * against the trainer built from the same spec (run by tests/e2e/emit.sh).
 *
 * Compiled against OBJ.o and OBJ.h from `aec build SPEC --emit obj`:
 *   cc -DHEADER='"OBJ.h"' -DPREFIX=NAME [-DEMBEDDED] emit_check.c OBJ.o libaecrt.a ...
 * The runtime library only loads the data, the checkpoint and the trainer's
 * .npy outputs; the model's entry points are the object's own.
 *
 * Usage: emit_check DATA LIMIT WEIGHTS CODES.npy REC.npy
 * where CODES and REC are the trainer's `encode` and `reconstruct` of the
 * first LIMIT samples of DATA with WEIGHTS. Checks, one `ok`/`not ok` line
 * each (exit status 1 if any failed):
 *   - no heap allocation inside encode, decode or eval, the very first call
 *     included (malloc and friends are interposed and counted);
 *   - encode at the trainer's batch size equals the trainer's codes bit for
 *     bit; eval's reconstruction and decode(encode) equal its reconstruct;
 *   - with -DEMBEDDED: the embedded parameters are the weights file's, bit
 *     for bit, and the *_embedded entry points give the same bits;
 *   - two threads, each with its own workspace, give what one thread gives;
 *   - bad arguments return status codes instead of crashing.
 * With -DNO_MALLOC_HOOK the interposer is left out (for valgrind).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include HEADER
#include "rt.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define F(name) CAT(PREFIX, name) /* F(_encode) is NAME_encode */

enum { TRAINER_BATCH = 256, THREADS = 2, MAX_METRICS = 16 /* room for m_metrics' values */ };

static int fails;
static void check(int cond, const char *what) {
    printf("%s - %s\n", cond ? "ok" : "not ok", what);
    if (!cond) fails++;
}

/* ---------------------------------------------------- counting allocator */

static atomic_int counting;
static atomic_long allocations;

#ifndef NO_MALLOC_HOOK
/* glibc's own entry points, so the interposers below can forward to them. */
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

static void count(void) {
    if (atomic_load(&counting)) atomic_fetch_add(&allocations, 1);
}
void *malloc(size_t n) {
    count();
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t size) {
    count();
    return __libc_calloc(n, size);
}
void *realloc(void *p, size_t n) {
    count();
    return __libc_realloc(p, n);
}
void *memalign(size_t align, size_t n) {
    count();
    return __libc_memalign(align, n);
}
void *aligned_alloc(size_t align, size_t n) {
    count();
    return __libc_memalign(align, n);
}
int posix_memalign(void **p, size_t align, size_t n) {
    count();
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}
#endif

/* ------------------------------------------------------------- the model */

static const aec_model *M = &F(_model);
static const float *params;
static int64_t n_samples;
static const float *x;

/* encode or eval (x_hat) of all samples in batches of `batch`. */
static int run_all(int eval, int batch, float *out, void *ws) {
    int64_t in = M->input_size, width = eval ? in : M->code_size;
    for (int64_t i = 0; i < n_samples; i += batch) {
        int bs = (int)(n_samples - i < batch ? n_samples - i : batch);
        float loss[MAX_METRICS];
        int st;
#ifdef EMBEDDED
        st = eval ? F(_eval_embedded)(x + i * in, NULL, bs, loss, out + i * width, ws)
                  : F(_encode_embedded)(x + i * in, out + i * width, bs, ws);
#else
        st = eval ? F(_eval)(params, x + i * in, NULL, bs, loss, out + i * width, ws)
                  : F(_encode)(params, x + i * in, out + i * width, bs, ws);
#endif
        if (st) return st;
    }
    return AEC_OK;
}

typedef struct Job {
    float *codes1, *codes256, *rec1;
    void *ws;
    int status;
} Job;

#ifdef NO_MALLOC_HOOK
enum { REPEATS = 1 }; /* under valgrind, which is slow */
#else
enum { REPEATS = 3 };
#endif

static void *job_run(void *arg) {
    Job *j = arg;
    for (int rep = 0; rep < REPEATS && !j->status; rep++) {
        j->status = run_all(0, 1, j->codes1, j->ws);
        if (!j->status) j->status = run_all(0, TRAINER_BATCH, j->codes256, j->ws);
        if (!j->status) j->status = run_all(1, 1, j->rec1, j->ws);
    }
    return NULL;
}

static Job job_new(void) {
    Job j = {malloc(sizeof(float) * (size_t)(n_samples * M->code_size)),
             malloc(sizeof(float) * (size_t)(n_samples * M->code_size)),
             malloc(sizeof(float) * (size_t)(n_samples * M->input_size)),
             malloc(M->workspace_size(TRAINER_BATCH)), 0};
    return j;
}

static int same(const void *a, const void *b, int64_t count) {
    return memcmp(a, b, sizeof(float) * (size_t)count) == 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: emit_check DATA LIMIT WEIGHTS CODES.npy REC.npy\n");
        return 2;
    }
    aec_data data, codes, rec;
    if (aec_data_load_for(argv[1], M, 0, atoll(argv[2]), &data) ||
        aec_data_load(argv[4], AEC_F32, 0, 0, &codes) ||
        aec_data_load(argv[5], AEC_F32, 0, 0, &rec))
        return 1;
    float *weights = aec_alloc(sizeof(float) * (size_t)M->param_count);
    if (aec_ckpt_load(argv[3], M, weights, NULL, NULL, NULL, NULL)) return 1;
    x = data.x;
    n_samples = data.n;
    params = weights;
    int64_t nc = n_samples * M->code_size, nx = n_samples * M->input_size;
    check(codes.n == n_samples && rec.n == n_samples, "the trainer's outputs have every sample");

    float *code = malloc(sizeof(float) * (size_t)nc), *x_hat = malloc(sizeof(float) * (size_t)nx);
    float *dec = malloc(sizeof(float) * (size_t)nx);
    void *ws = malloc(M->workspace_size(TRAINER_BATCH));
    /* a copy to train, with its optimizer state (zero: a first step) */
    float *trained = aligned_alloc(AEC_ALIGN, ((size_t)M->param_count * sizeof(float) + AEC_ALIGN) /
                                                  AEC_ALIGN * AEC_ALIGN);
    float *opt_state = calloc((size_t)M->opt_state_count + 1, sizeof(float));
    memcpy(trained, params, (size_t)M->param_count * sizeof(float));

    /* First calls, counted: nothing before them has run the model. */
    float loss[MAX_METRICS];
    check(M->n_metrics <= MAX_METRICS, "the loss has at most MAX_METRICS values");
    atomic_store(&counting, 1);
    int st = run_all(0, 1, code, ws);
    if (!st) st = run_all(0, TRAINER_BATCH, code, ws);
    if (!st) st = run_all(1, TRAINER_BATCH, x_hat, ws);
    if (!st)
        st = F(_decode)(params, code, dec,
                        n_samples < TRAINER_BATCH ? (int)n_samples : TRAINER_BATCH, ws);
    if (!st) st = F(_eval)(params, x, NULL, 1, loss, NULL, ws);
    atomic_store(&counting, 0);
    check(st == AEC_OK, "encode, eval and decode succeed");
#ifndef NO_MALLOC_HOOK
    check(atomic_load(&allocations) == 0, "no heap allocation inside encode, decode and eval");
    if (atomic_load(&allocations)) printf("# %ld allocations\n", atomic_load(&allocations));
#endif
    /* A training step, counted too: its products are the model's own. */
    atomic_store(&allocations, 0);
    atomic_store(&counting, 1);
    int trained_batch = n_samples < TRAINER_BATCH ? (int)n_samples : TRAINER_BATCH;
    st = F(_train_step)(trained, opt_state, x, NULL, trained_batch, 1, loss, ws);
    if (!st) st = F(_train_step)(trained, opt_state, x, NULL, trained_batch, 2, loss, ws);
    atomic_store(&counting, 0);
    check(st == AEC_OK, "train_step succeeds");
#ifndef NO_MALLOC_HOOK
    check(atomic_load(&allocations) == 0, "no heap allocation inside train_step");
    if (atomic_load(&allocations)) printf("# %ld allocations\n", atomic_load(&allocations));
#endif
    free(trained);
    free(opt_state);

    /* The trainer's batches are 256 samples (the last one shorter). */
    check(run_all(0, TRAINER_BATCH, code, ws) == AEC_OK && same(code, codes.x, nc),
          "encode equals the trainer's encode bit for bit");
    check(run_all(1, TRAINER_BATCH, x_hat, ws) == AEC_OK && same(x_hat, rec.x, nx),
          "eval's reconstruction equals the trainer's reconstruct bit for bit");
    st = AEC_OK;
    for (int64_t i = 0; !st && i < n_samples; i += TRAINER_BATCH) {
        int bs = (int)(n_samples - i < TRAINER_BATCH ? n_samples - i : TRAINER_BATCH);
        st = F(_decode)(params, code + i * M->code_size, dec + i * M->input_size, bs, ws);
    }
    check(st == AEC_OK && same(dec, rec.x, nx),
          "decode(encode(x)) equals the trainer's reconstruct");

#ifdef EMBEDDED
    check(M->embedded_params == (const void *)F(_embedded_params) &&
              same(F(_embedded_params), weights, M->param_count),
          "the embedded parameters are the weights file's, bit for bit");
    check(((uintptr_t)F(_embedded_params) % AEC_ALIGN) == 0, "the embedded parameters are aligned");
    float *dec2 = malloc(sizeof(float) * (size_t)nx);
    int bs0 = n_samples < TRAINER_BATCH ? (int)n_samples : TRAINER_BATCH;
    check(F(_decode_embedded)(code, dec2, bs0, ws) == AEC_OK &&
              same(dec2, dec, (int64_t)bs0 * M->input_size),
          "decode_embedded equals decode with the weights");
    free(dec2);
#else
    check(M->embedded_params == NULL, "no embedded parameters without --embed-weights");
#endif

    /* One thread, then two at once on their own workspaces. */
    Job one = job_new(), two[THREADS];
    job_run(&one);
    check(one.status == AEC_OK && same(one.codes256, code, nc),
          "repeated calls give the same bits");
    /* Batch 1 takes another path (a GEMV, or with embedded weights one that
     * skips zeros), so it agrees with the trainer to rounding only. */
    double worst = 0;
    for (int64_t i = 0; i < nc; i++) {
        double d = fabs((double)one.codes1[i] - ((const float *)codes.x)[i]);
        d /= fmax(1, fabs(((const float *)codes.x)[i]));
        if (d > worst) worst = d;
    }
    check(worst < 1e-4, "batch-1 codes agree with the trainer's to rounding");
    pthread_t tid[THREADS];
    for (int t = 0; t < THREADS; t++) {
        two[t] = job_new();
        pthread_create(&tid[t], NULL, job_run, &two[t]);
    }
    int agree = 1;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(tid[t], NULL);
        agree &= two[t].status == AEC_OK && same(two[t].codes1, one.codes1, nc) &&
                 same(two[t].codes256, one.codes256, nc) && same(two[t].rec1, one.rec1, nx);
    }
    check(agree, "two threads on separate workspaces give what one thread gives");

    /* Status codes, never a crash. */
    check(F(_encode)(params, x, code, 0, ws) == AEC_EBATCH, "batch 0 is AEC_EBATCH");
    check(F(_encode)(params, x, code, AEC_MAX_BATCH + 1, ws) == AEC_EBATCH,
          "a batch above the maximum is AEC_EBATCH");
    check(F(_encode)(NULL, x, code, 1, ws) == AEC_ENULL, "NULL params is AEC_ENULL");
    check(F(_decode)(params, code, dec, 1, NULL) == AEC_ENULL, "a NULL workspace is AEC_ENULL");
    check(F(_eval)(params, x, NULL, 1, NULL, NULL, ws) == AEC_ENULL, "a NULL loss is AEC_ENULL");
    check(strcmp(aec_strerror(AEC_EBATCH), "batch size out of range") == 0,
          "aec_strerror names codes");

    free(one.codes1), free(one.codes256), free(one.rec1), free(one.ws);
    for (int t = 0; t < THREADS; t++)
        free(two[t].codes1), free(two[t].codes256), free(two[t].rec1), free(two[t].ws);
    free(code), free(x_hat), free(dec), free(ws), free(weights);
    aec_data_free(&data), aec_data_free(&codes), aec_data_free(&rec);
    return fails ? 1 : 0;
}
