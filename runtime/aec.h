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

/* 2: aec_model.embedded_params; 3: metric names, stages, variational;
 * 4: metrics(), loss is one value; 5: masked; 6: aec_exec, the _ex entry
 * points, apply_grad; 7: the layer table, producer and GEMM backend;
 * 8: running_stats */
#define AEC_ABI_VERSION 8
/* Bytes: params and opt state should be aligned so (the workspace may be
 * anywhere: the model aligns it). */
#define AEC_ALIGN 64
#define AEC_MAX_BATCH 65536 /* the largest batch any entry point accepts */

/* Status codes of every generated entry point and runtime call. */
enum {
    AEC_OK = 0,
    AEC_EBATCH = 1,       /* batch < 1 or above the model's maximum */
    AEC_ENULL = 2,        /* a required buffer is NULL */
    AEC_EALIGN = 3,       /* workspace not aligned to AEC_ALIGN */
    AEC_ENONFINITE = 4,   /* the loss became NaN or infinite */
    AEC_EIO = 5,          /* runtime: file could not be read or written */
    AEC_EFORMAT = 6,      /* runtime: malformed data or checkpoint */
    AEC_EMISMATCH = 7,    /* runtime: data or checkpoint does not match the model */
    AEC_ENOMEM = 8,       /* runtime: out of memory */
    AEC_EUNSUPPORTED = 9, /* the model does not provide this entry point */
    AEC_ERANK = 10,       /* runtime, under MPI: another rank failed (its message says why) */
};

enum { AEC_F32 = 0, AEC_F64 = 1 };

enum {
    AEC_TENSOR_WEIGHT = 0, /* trainable, decayed by `l2 weights` etc. */
    AEC_TENSOR_BIAS = 1,   /* trainable, not decayed */
    AEC_TENSOR_BUFFER = 2, /* not trainable (batch-norm running statistics) */
};

/* The losses: X(enum, name), the name as specs, tables and checkpoints spell it. */
#define AEC_LOSSES(X) X(MSE, "mse") X(RMSE, "rmse") X(MAE, "mae") X(BCE, "bce")

/* The optimizers, torch.optim's: X(enum, name, lr, momentum, beta1, beta2,
 * eps, decay — PyTorch's defaults; rmsprop's smoothing constant, PyTorch's
 * alpha, is beta2 —, (the keys a spec may set), the optimizer state slots
 * it keeps (each trainable_count values), and whether momentum != 0 keeps
 * one more). */
#define AEC_OPTIMIZERS(X)                                                                          \
    X(SGD, "sgd", 0.01, 0, 0, 0, 0, 0, ("lr", "decay"), 0, 0)                                      \
    X(MOMENTUM, "momentum", 0.01, 0.9, 0, 0, 0, 0, ("lr", "momentum", "decay"), 1, 0)              \
    X(ADAM, "adam", 1e-3, 0, 0.9, 0.999, 1e-8, 0, ("lr", "beta1", "beta2", "eps", "decay"), 2, 0)  \
    X(ADAMW, "adamw", 1e-3, 0, 0.9, 0.999, 1e-8, 0.01, ("lr", "beta1", "beta2", "eps", "decay"),   \
      2, 0)                                                                                        \
    X(RMSPROP, "rmsprop", 0.01, 0, 0, 0.99, 1e-8, 0, ("lr", "momentum", "beta2", "eps", "decay"),  \
      1, 1)

#define AEC_X_LOSS_(e, name) AEC_LOSS_##e,
#define AEC_X_OPT_(e, ...) AEC_OPT_##e,
#define AEC_X_LOSS_NAME_(e, name) name,
#define AEC_X_OPT_NAME_(e, name, ...) name,
enum { AEC_LOSSES(AEC_X_LOSS_) AEC_N_LOSSES };
enum { AEC_OPTIMIZERS(AEC_X_OPT_) AEC_N_OPTIMIZERS };

/* A loss's or optimizer's name ("?" for none). Inline, as aec_strerror. */
static inline const char *aec_loss_name(int loss) {
    static const char *const names[] = {AEC_LOSSES(AEC_X_LOSS_NAME_)};
    return loss >= 0 && loss < AEC_N_LOSSES ? names[loss] : "?";
}
static inline const char *aec_optimizer_name(int opt) {
    static const char *const names[] = {AEC_OPTIMIZERS(AEC_X_OPT_NAME_)};
    return opt >= 0 && opt < AEC_N_OPTIMIZERS ? names[opt] : "?";
}

/* One named parameter tensor, PyTorch nn.Sequential name and layout. */
typedef struct aec_tensor_info {
    const char *name; /* "encoder.0.weight" */
    int32_t ndim;
    int32_t shape[4]; /* [out, in] for dense, [out, in, kh, kw] for conv */
    int32_t kind;     /* AEC_TENSOR_* */
    int32_t reserved;
    int64_t offset; /* elements from the start of the params block */
    int64_t numel;
} aec_tensor_info;

/* Layer kinds and activations of aec_layer_info (the spec's words). */
enum {
    AEC_LAYER_DENSE,
    AEC_LAYER_CONV,
    AEC_LAYER_DECONV,
    AEC_LAYER_MAXPOOL,
    AEC_LAYER_AVGPOOL,
    AEC_LAYER_UPSAMPLE,
    AEC_LAYER_BATCHNORM,
    AEC_LAYER_DROPOUT,
    AEC_LAYER_FLATTEN,
    AEC_LAYER_RESHAPE,
    AEC_LAYER_ACT, /* an activation alone */
};
enum {
    AEC_ACT_LINEAR,
    AEC_ACT_RELU,
    AEC_ACT_LEAKY_RELU,
    AEC_ACT_SIGMOID,
    AEC_ACT_TANH,
    AEC_ACT_ELU,
    AEC_ACT_SOFTPLUS,
    AEC_ACT_GELU, /* exact: x·Φ(x) */
};
enum {
    AEC_PART_ENCODER = 0,
    AEC_PART_DECODER = 1,
    AEC_PART_LATENT_MU = 2,
    AEC_PART_LATENT_LOGVAR = 3, /* `latent gaussian` heads */
};

/* One layer of the inference graph (ABI 7), after mirror/tied expansion:
 * what a converter (the trainer's `export`, ONNX) needs to rebuild the
 * network from the parameters. Shapes are per sample (CxHxW or N). */
typedef struct aec_layer_info {
    int32_t kind;     /* AEC_LAYER_* */
    int32_t act;      /* AEC_ACT_* applied after the layer (LINEAR: none) */
    double act_alpha; /* leaky_relu slope, elu alpha */
    int32_t part;     /* AEC_PART_* */
    int32_t in_ndim;
    int32_t in_shape[3];
    int32_t out_ndim;
    int32_t out_shape[3];
    int32_t units;          /* dense outputs, conv/deconv output channels */
    int32_t kh, kw, stride; /* conv, deconv, pools; upsample's factor is kh x kw */
    int32_t pad_h, pad_w;   /* conv/deconv: padding at the top and left (deconv: PyTorch's) */
    int32_t pad_extra_h, pad_extra_w;  /* conv: one more pixel bottom/right (Keras `same`);
                                          deconv: PyTorch's output_padding */
    int32_t weight, bias;              /* indices into aec_model.tensors, -1 if none */
    int32_t running_mean, running_var; /* batchnorm's buffers (its scale and shift are
                                          weight and bias), -1 if none */
    int32_t transposed; /* tied decoder dense: `weight` is the encoder's [in, out], used as
                           W^T, i.e. y = x·W */
    int32_t reserved[2];
    double p;   /* dropout probability (training only) */
    double eps; /* batchnorm */
} aec_layer_info;

/* Training settings of the spec's `train { }` block, with defaults applied. */
typedef struct aec_train_config {
    int32_t optimizer; /* AEC_OPT_* */
    int32_t loss;      /* AEC_LOSS_* */
    double lr, momentum, beta1, beta2, eps, decay;
    int32_t batch, epochs;
    uint64_t seed;
    double validation;  /* fraction held out, 0 for none */
    int32_t early_stop; /* patience in epochs, 0 for off */
    int32_t pretrain_epochs;
    double min_delta;
} aec_train_config;

/* ABI 6: how a model runs its tasks and where its rows sit in a larger batch. */
typedef void (*aec_task_fn)(void *arg, int64_t task);
typedef struct aec_exec {
    /* Runs fn(arg, t) for every t in [0, ntasks), on any threads in any
     * order, and returns when all have finished. NULL (or a NULL exec)
     * means the model runs the tasks itself, in order. */
    void (*parallel_for)(void *pool, int64_t ntasks, aec_task_fn fn, void *arg);
    void *pool;
    /* This call's first row's index in a larger global batch: random draws
     * (corruption noise, dropout masks, the VAE's eps) are keyed by the
     * global row, so a batch split over processes draws what it would draw
     * whole (data-parallel training). 0 normally. */
    int64_t row_offset;
    int64_t reserved[4];
} aec_exec;

/* The model table, field by field, in order: the one list the struct
 * below, the compiler's LLVM table and signatures and the per-model header
 * (m.h) are all generated from. FIELD(type, name) is a value;
 * ENTRY(name, return, (ARG(type, name), ...)) an entry point. Types:
 * U32 I32 I64 (integers), I32X4 (int32_t[4]), STR (const char *), STRS
 * (const char *const *), TENSORS (const aec_tensor_info *), LAYERS (const
 * aec_layer_info *), TRAIN
 * (aec_train_config), CPTR (const void *); arguments BUF / CBUF (a buffer
 * of the element type, written / read), WS / CWS (the workspace), INT
 * (int), U64 (uint64_t), EXEC (const aec_exec *); returns INT or SIZE
 * (size_t). Fields are only ever appended (AEC_ABI_VERSION). */
// clang-format off: the table is aligned by hand, one column per kind of fact
#define AEC_MODEL_FIELDS(FIELD, ENTRY, ARG)                                                        \
    FIELD(U32, abi_version) /* AEC_ABI_VERSION of the compiler that emitted it */                  \
    FIELD(I32, dtype)       /* AEC_F32 or AEC_F64 */                                               \
    FIELD(STR, name)        /* the spec's model name */                                            \
    FIELD(I32, input_ndim)                                                                         \
    FIELD(I32X4, input_shape) /* per sample, e.g. {1, 28, 28} */                                   \
    FIELD(I32, max_batch)                                                                          \
    FIELD(I64, input_size)  /* elements per sample */                                              \
    FIELD(I64, code_size)   /* elements of the code per sample */                                  \
    FIELD(I64, param_count) /* elements of the params block (trainable first) */                   \
    FIELD(I64, trainable_count)                                                                    \
    FIELD(I64, opt_state_count) /* elements of the optimizer state block */                        \
    FIELD(I32, n_tensors)                                                                          \
    FIELD(I32, reserved)                                                                           \
    FIELD(TENSORS, tensors)                                                                        \
    FIELD(TRAIN, train)                                                                            \
    FIELD(STR, summary) /* the layer table `aec check` prints */                                   \
    /* Entry points. `step` counts optimizer steps from 1; it keys the                          */ \
    /* counter-based random generator and Adam's bias correction.                               */ \
    ENTRY(workspace_size, SIZE, (ARG(INT, batch)))                                                 \
    ENTRY(init, INT, (ARG(BUF, params), ARG(U64, seed)))                                           \
    ENTRY(encode, INT,                                                                             \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(BUF, code), ARG(INT, batch), ARG(WS, ws)))         \
    ENTRY(decode, INT,                                                                             \
          (ARG(CBUF, params), ARG(CBUF, code), ARG(BUF, x_hat), ARG(INT, batch), ARG(WS, ws)))     \
    ENTRY(train_step, INT,                                                                         \
          (ARG(BUF, params), ARG(BUF, opt_state), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch),  \
           ARG(U64, step), ARG(BUF, loss), ARG(WS, ws)))                                           \
    /* Training-mode loss and its gradient w.r.t. every trainable parameter,                    */ \
    /* written to grad (trainable_count elements); no update.                                   */ \
    ENTRY(loss_grad, INT,                                                                          \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch), ARG(U64, step),      \
           ARG(BUF, loss), ARG(BUF, grad), ARG(WS, ws)))                                           \
    /* Inference-mode reconstruction and loss (x_hat may be NULL).                              */ \
    ENTRY(eval, INT,                                                                               \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch), ARG(BUF, loss),      \
           ARG(BUF, x_hat), ARG(WS, ws)))                                                          \
    /* ABI 2. With `--embed-weights`, the trained params block (param_count                     */ \
    /* values, constant data in the object, AEC_ALIGN-aligned), usable as                       */ \
    /* the params argument of the entry points above; NULL otherwise.                           */ \
    FIELD(CPTR, embedded_params)                                                                   \
    /* ABI 3. The objective's terms, read with metrics() below: [0] is the                      */ \
    /* objective; when it has more than one term, [1] is the reconstruction                     */ \
    /* loss and the others each regularizer or KL term, unweighted, as                          */ \
    /* metric_names names them ("loss", "recon", "kl", "l1_code",                               */ \
    /* "kl_sparsity", "contractive", "l2_weights", "l1_weights"). A model                       */ \
    /* with one term has n_metrics 1.                                                           */ \
    FIELD(I32, n_metrics)                                                                          \
    FIELD(I32, n_stages) /* greedy layer-wise pretraining stages (0: none) */                      \
    FIELD(STRS, metric_names)                                                                      \
    FIELD(I32, variational) /* `latent gaussian`: the code is mu, z ~ N(0, I) decodes */           \
    FIELD(I32, reserved3)                                                                          \
    /* train_step for pretraining stage 1..n_stages: trains that stage's                        */ \
    /* encoder/decoder layer pair only, as a shallow autoencoder of the codes                   */ \
    /* below it; writes loss[0]. AEC_EUNSUPPORTED for another stage.                            */ \
    ENTRY(stage_step, INT,                                                                         \
          (ARG(INT, stage), ARG(BUF, params), ARG(BUF, opt_state), ARG(CBUF, x), ARG(CBUF, mask),  \
           ARG(INT, batch), ARG(U64, step), ARG(BUF, loss), ARG(WS, ws)))                          \
    /* ABI 4. The n_metrics values (the loss, then its terms) of the last                       */ \
    /* train_step, loss_grad, eval or stage_step call on workspace `ws`;                        */ \
    /* those calls write only loss[0] to their `loss` argument.                                 */ \
    ENTRY(metrics, INT, (ARG(CWS, ws), ARG(BUF, out)))                                             \
    /* ABI 5. `loss ... masked`: NaN inputs are missing values; pass a mask                     */ \
    /* (1 present, 0 missing) and x zero-filled where it is 0 - the missing                     */ \
    /* elements are left out of the loss. A NULL mask means none missing.                       */ \
    FIELD(I32, masked)                                                                             \
    FIELD(I32, reserved5)                                                                          \
    /* ABI 6. The entry points above with an aec_exec (NULL: run alone, row                     */ \
    /* offset 0; the versions without it call these with NULL), and                             */ \
    /* apply_grad: train_step's update (the optimizer) from a caller's                          */ \
    /* gradient of trainable_count elements, so loss_grad, an allreduce of                      */ \
    /* grad, then apply_grad is train_step bit for bit.                                         */ \
    ENTRY(encode_ex, INT,                                                                          \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(BUF, code), ARG(INT, batch), ARG(WS, ws),          \
           ARG(EXEC, exec)))                                                                       \
    ENTRY(decode_ex, INT,                                                                          \
          (ARG(CBUF, params), ARG(CBUF, code), ARG(BUF, x_hat), ARG(INT, batch), ARG(WS, ws),      \
           ARG(EXEC, exec)))                                                                       \
    ENTRY(eval_ex, INT,                                                                            \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch), ARG(BUF, loss),      \
           ARG(BUF, x_hat), ARG(WS, ws), ARG(EXEC, exec)))                                         \
    ENTRY(train_step_ex, INT,                                                                      \
          (ARG(BUF, params), ARG(BUF, opt_state), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch),  \
           ARG(U64, step), ARG(BUF, loss), ARG(WS, ws), ARG(EXEC, exec)))                          \
    ENTRY(loss_grad_ex, INT,                                                                       \
          (ARG(CBUF, params), ARG(CBUF, x), ARG(CBUF, mask), ARG(INT, batch), ARG(U64, step),      \
           ARG(BUF, loss), ARG(BUF, grad), ARG(WS, ws), ARG(EXEC, exec)))                          \
    ENTRY(apply_grad, INT,                                                                         \
          (ARG(BUF, params), ARG(BUF, opt_state), ARG(CBUF, grad), ARG(U64, step), ARG(WS, ws),    \
           ARG(EXEC, exec)))                                                                       \
    /* ABI 7. The layers in order: the encoder's n_encoder_layers (the last                     */ \
    /* one's output is the code, or the input of the latent heads), then the                    */ \
    /* decoder's n_decoder_layers, then for a variational model the mu and                      */ \
    /* logvar heads (latent_mu, latent_logvar: their indices, else -1; the                      */ \
    /* code is mu). producer: "aec VERSION, LLVM VERSION"; gemm: the GEMM                       */ \
    /* backend of the kernels ("blas" or "aec").                                                */ \
    FIELD(I32, n_layers)                                                                           \
    FIELD(I32, n_encoder_layers)                                                                   \
    FIELD(I32, n_decoder_layers)                                                                   \
    FIELD(I32, latent_mu)                                                                          \
    FIELD(I32, latent_logvar)                                                                      \
    FIELD(I32, reserved7)                                                                          \
    FIELD(LAYERS, layers)                                                                          \
    FIELD(STR, producer)                                                                           \
    FIELD(STR, gemm)                                                                               \
    /* ABI 8. The batch-norm running statistics (param_count -                                  */ \
    /* trainable_count values: the params block's tail, in its order) as                        */ \
    /* the last loss_grad or loss_grad_ex call on ws, with this batch,                          */ \
    /* moved them towards its rows' statistics (read them before another                        */ \
    /* call but metrics on ws). loss_grad leaves params' running statistics:                    */ \
    /* copying these there makes loss_grad + apply_grad train_step bit for                      */ \
    /* bit; a data-parallel trainer averages them over its processes                            */ \
    /* first. A model without batch norm writes nothing (out may be NULL).                      */ \
    ENTRY(running_stats, INT, (ARG(CWS, ws), ARG(INT, batch), ARG(BUF, out)))
// clang-format on

/* The C spelling of each type (AEC_C_<type>(name) declares name). */
#define AEC_C_U32(n) uint32_t n
#define AEC_C_I32(n) int32_t n
#define AEC_C_I64(n) int64_t n
#define AEC_C_I32X4(n) int32_t n[4]
#define AEC_C_STR(n) const char *n
#define AEC_C_STRS(n) const char *const *n
#define AEC_C_TENSORS(n) const aec_tensor_info *n
#define AEC_C_LAYERS(n) const aec_layer_info *n
#define AEC_C_TRAIN(n) aec_train_config n
#define AEC_C_CPTR(n) const void *n
#define AEC_C_BUF(n) void *n
#define AEC_C_CBUF(n) const void *n
#define AEC_C_WS(n) void *n
#define AEC_C_CWS(n) const void *n
#define AEC_C_INT(n) int n
#define AEC_C_U64(n) uint64_t n
#define AEC_C_EXEC(n) const aec_exec *n
#define AEC_C_RET_INT int
#define AEC_C_RET_SIZE size_t
#define AEC_C_ARG_(type, name) AEC_C_##type(name)
#define AEC_C_NONE_(type, name)
#define AEC_C_FIELD_(type, name) AEC_C_##type(name);
#define AEC_C_TYPEDEF_(name, ret, args) typedef AEC_C_RET_##ret(*aec_##name##_fn) args;
#define AEC_C_ENTRY_(name, ret, args) aec_##name##_fn name;

/* aec_encode_fn, aec_train_step_fn, ...: the type of each entry point. */
AEC_MODEL_FIELDS(AEC_C_NONE_, AEC_C_TYPEDEF_, AEC_C_ARG_)

typedef struct aec_model {
    AEC_MODEL_FIELDS(AEC_C_FIELD_, AEC_C_ENTRY_, AEC_C_ARG_)
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
    case AEC_ERANK: return "another rank failed";
    default: return "unknown error";
    }
}

#ifdef __cplusplus
}
#endif
#endif
