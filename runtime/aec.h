/* aec.h — the public, stable header of aec's generated models and runtime.
 *
 * A model object emitted by `aec build SPEC --emit obj` defines one constant
 * `aec_model` table (named `<model>_model`) that describes its parameters,
 * its training settings and its entry points. Generated entry points return
 * 0 or an AEC_E* code and never abort; they write no globals and allocate
 * nothing: the caller owns params, optimizer state, data and workspace.
 *
 * Element type: every `void *` buffer below holds `float` for a model built
 * with the default dtype f32, or `double` for one built with `--dtype f64`
 * (see aec_model.dtype). The per-model header (`m.h`) declares typed
 * prototypes.
 *
 * This header is the ABI: fields are only ever appended (AEC_ABI_VERSION).
 */
#ifndef AEC_H
#define AEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AEC_ABI_VERSION 5 /* 2: aec_model.embedded_params; 3: metric names, stages,
                             variational; 4: metrics(), loss is one value; 5: masked */
#define AEC_ALIGN 64 /* bytes: params and opt state should be aligned so (the
                           workspace may be anywhere: the model aligns it) */
#define AEC_MAX_BATCH 65536 /* the largest batch any entry point accepts */

/* Status codes of every generated entry point and runtime call. */
enum {
    AEC_OK = 0,
    AEC_EBATCH = 1,    /* batch < 1 or above the model's maximum */
    AEC_ENULL = 2,     /* a required buffer is NULL */
    AEC_EALIGN = 3,    /* workspace not aligned to AEC_ALIGN */
    AEC_ENONFINITE = 4, /* the loss became NaN or infinite */
    AEC_EIO = 5,       /* runtime: file could not be read or written */
    AEC_EFORMAT = 6,   /* runtime: malformed data or checkpoint */
    AEC_EMISMATCH = 7, /* runtime: data or checkpoint does not match the model */
    AEC_ENOMEM = 8,    /* runtime: out of memory */
    AEC_EUNSUPPORTED = 9, /* the model does not provide this entry point */
};

enum { AEC_F32 = 0, AEC_F64 = 1 };

enum {
    AEC_TENSOR_WEIGHT = 0, /* trainable, decayed by `l2 weights` etc. */
    AEC_TENSOR_BIAS = 1,   /* trainable, not decayed */
    AEC_TENSOR_BUFFER = 2, /* not trainable (batch-norm running statistics) */
};

enum { AEC_LOSS_MSE, AEC_LOSS_RMSE, AEC_LOSS_MAE, AEC_LOSS_BCE };

enum { AEC_OPT_SGD, AEC_OPT_MOMENTUM, AEC_OPT_ADAM, AEC_OPT_ADAMW, AEC_OPT_RMSPROP };

/* One named parameter tensor, PyTorch nn.Sequential name and layout. */
typedef struct aec_tensor_info {
    const char *name;  /* "encoder.0.weight" */
    int32_t ndim;
    int32_t shape[4];  /* [out, in] for dense, [out, in, kh, kw] for conv */
    int32_t kind;      /* AEC_TENSOR_* */
    int32_t reserved;
    int64_t offset;    /* elements from the start of the params block */
    int64_t numel;
} aec_tensor_info;

/* Training settings of the spec's `train { }` block, with defaults applied. */
typedef struct aec_train_config {
    int32_t optimizer;   /* AEC_OPT_* */
    int32_t loss;        /* AEC_LOSS_* */
    double lr, momentum, beta1, beta2, eps, decay;
    int32_t batch, epochs;
    uint64_t seed;
    double validation;   /* fraction held out, 0 for none */
    int32_t early_stop;  /* patience in epochs, 0 for off */
    int32_t pretrain_epochs;
    double min_delta;
} aec_train_config;

typedef struct aec_model {
    uint32_t abi_version;   /* AEC_ABI_VERSION of the compiler that emitted it */
    int32_t dtype;          /* AEC_F32 or AEC_F64 */
    const char *name;       /* the spec's model name */
    int32_t input_ndim;
    int32_t input_shape[4]; /* per sample, e.g. {1, 28, 28} */
    int32_t max_batch;
    int64_t input_size;     /* elements per sample */
    int64_t code_size;      /* elements of the code per sample */
    int64_t param_count;    /* elements of the params block (trainable first) */
    int64_t trainable_count;
    int64_t opt_state_count; /* elements of the optimizer state block */
    int32_t n_tensors;
    int32_t reserved;
    const aec_tensor_info *tensors;
    aec_train_config train;
    const char *summary;    /* the layer table `aec check` prints */

    /* Entry points. `step` counts optimizer steps from 1; it keys the
     * counter-based random generator and Adam's bias correction. */
    size_t (*workspace_size)(int batch);
    int (*init)(void *params, uint64_t seed);
    int (*encode)(const void *params, const void *x, void *code, int batch, void *ws);
    int (*decode)(const void *params, const void *code, void *x_hat, int batch, void *ws);
    int (*train_step)(void *params, void *opt_state, const void *x, const void *mask, int batch,
                      uint64_t step, void *loss, void *ws);
    /* Training-mode loss and its gradient w.r.t. every trainable parameter,
     * written to grad (trainable_count elements); no update. */
    int (*loss_grad)(const void *params, const void *x, const void *mask, int batch,
                     uint64_t step, void *loss, void *grad, void *ws);
    /* Inference-mode reconstruction and loss (x_hat may be NULL). */
    int (*eval)(const void *params, const void *x, const void *mask, int batch, void *loss,
                void *x_hat, void *ws);

    /* ABI 2. With `--embed-weights`, the trained params block (param_count
     * values, constant data in the object, AEC_ALIGN-aligned), usable as
     * the params argument of the entry points above; NULL otherwise. */
    const void *embedded_params;

    /* ABI 3. The objective's terms, read with metrics() below: [0] is the
     * objective; when it has more than one term, [1] is the reconstruction
     * loss and the others each regularizer or KL term, unweighted, as
     * metric_names names them ("loss", "recon",
     * "kl", "l1_code", "kl_sparsity", "contractive", "l2_weights",
     * "l1_weights"). A model with one term has n_metrics 1. */
    int32_t n_metrics;
    int32_t n_stages;      /* greedy layer-wise pretraining stages (0: none) */
    const char *const *metric_names;
    int32_t variational;   /* `latent gaussian`: the code is μ, and z ~ N(0, I) decodes to samples */
    int32_t reserved3;
    /* train_step for pretraining stage 1..n_stages: trains that stage's
     * encoder/decoder layer pair only, as a shallow autoencoder of the codes
     * below it; writes loss[0]. AEC_EUNSUPPORTED for another stage. */
    int (*stage_step)(int stage, void *params, void *opt_state, const void *x, const void *mask,
                      int batch, uint64_t step, void *loss, void *ws);
    /* ABI 4. The n_metrics values (the loss, then its terms) of the last
     * train_step, loss_grad, eval or stage_step call on workspace `ws`;
     * those calls write only loss[0] to their `loss` argument. */
    int (*metrics)(const void *ws, void *out);
    /* ABI 5. `loss ... masked`: NaN inputs are missing values; pass a mask
     * (1 present, 0 missing) and x zero-filled where it is 0 — the missing
     * elements are left out of the loss. A NULL mask means none missing. */
    int32_t masked;
    int32_t reserved5;
} aec_model;

/* A message for a status code. Inline, so a program that links only model
 * objects needs no part of the runtime. */
static inline const char *aec_strerror(int status) {
    switch (status) {
    case AEC_OK: return "success";
    case AEC_EBATCH: return "batch size out of range";
    case AEC_ENULL: return "a required buffer is NULL";
    case AEC_EALIGN: return "workspace is not aligned to AEC_ALIGN bytes";
    case AEC_ENONFINITE: return "loss is not finite";
    case AEC_EIO: return "input/output error";
    case AEC_EFORMAT: return "malformed file";
    case AEC_EMISMATCH: return "does not match the model";
    case AEC_ENOMEM: return "out of memory";
    case AEC_EUNSUPPORTED: return "not supported by this model";
    default: return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif
#endif
