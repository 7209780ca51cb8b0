/* aec.h (compiler) — the compiler's API, one section per module.
 *
 * Sections follow the pipeline, each headed by the file(s) that define
 * what follows: util (arena, diagnostics), ast + parser, check (the checked
 * Model, and the tables of activations, inits, corruptions, optimizers),
 * ir, lower, autodiff, fuse, plan, pipeline (the pass list and its
 * Program), codegen, header, driver. Every stage takes the previous stage's
 * product and returns its own; pipeline.c runs the middle in order, the
 * driver the rest. The groups check, lower and codegen share check.h,
 * lower.h and cg.h among their own files. docs/internals.md has the map.
 */
#ifndef AEC_COMPILER_H
#define AEC_COMPILER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/aec.h"
#include "gemm.h"

#define countof(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Internal errors are bugs in aec, never the user's: say where and stop. */
#define internal_error(...) internal_error_at(__FILE__, __LINE__, __VA_ARGS__)
#define ensure(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) internal_error("assertion failed: %s", #cond);                                \
    } while (0)

/* ---------------------------------------------------------------- util.c */

/* A source span: every token, AST node, layer and IR node carries one. */
typedef struct Loc {
    const char *file;
    int line, col, len; /* 1-based line and column, length in characters */
} Loc;

/* Bump allocator: memory is zeroed and freed all at once (never per node). */
typedef struct Arena Arena;
Arena *arena_new(void);
void *arena_alloc(Arena *a, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Growable array helper: `ARRAY_PUSH(arena, items, count, cap, value)`. */
#define ARRAY_PUSH(arena, items, count, cap, value)                                                \
    do {                                                                                           \
        if ((count) == (cap)) {                                                                    \
            int new_cap_ = (cap) ? 2 * (cap) : 16;                                                 \
            void *grown_ = arena_alloc((arena), sizeof(*(items)) * (size_t)new_cap_);              \
            if (count) memcpy(grown_, (items), sizeof(*(items)) * (size_t)(count));                \
            (items) = grown_;                                                                      \
            (cap) = new_cap_;                                                                      \
        }                                                                                          \
        (items)[(count)++] = (value);                                                              \
    } while (0)

/* Diagnostics, printed C-compiler style:
 *   file.ae:12:9: error: message
 *       12 |     dense 128 rleu
 *          |               ^~~~
 * The source text of each file is registered so the line can be shown. */
void diag_register_source(const char *file, const char *text);
void diag_error(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_error_count(void);
void diag_reset(void);
void diag_set_stream(FILE *f); /* stderr by default; tests capture to a file */
/* The closest of `candidates` to `word` by edit distance, or NULL if none is close. */
const char *suggest(const char *word, const char *const *candidates, int n);

_Noreturn void internal_error_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
char *read_file_text(const char *path, size_t *len); /* malloc'd, NUL-terminated; NULL on error */
/* IEEE binary16 (--embed-half): x rounded to nearest, ties to even (±inf
 * past the range, NaN kept), and back exactly. F16_MAX: the largest finite. */
#define F16_MAX 65504.0
uint16_t f16_from_double(double x);
double f16_to_double(uint16_t h);
/* Run argv (argv[0] looked up in PATH) and wait: its exit status, 127 when
 * it cannot be run, -1 when it could not be started or was killed. */
int run_command(char *const argv[]);

/* ------------------------------------------------------ ast.c, parser.y */

#include "ast.h"

/* ------------------------------------------------------------- limits.c */

/* Sizes from a spec: non-negative, saturating at LIM_INF instead of overflowing. */
#define LIM_INF LONG_MAX
#define LIM_BYTES (1L << 48) /* 256 TiB: a params block or a batch's activations beyond it */
long lim_mul(long a, long b);
long lim_add(long a, long b);
long limits_memory(void);                  /* the machine's physical memory, bytes */
char *lim_bytes_str(Arena *a, long bytes); /* "1.5 GiB" */
char *lim_commas(Arena *a, long n);        /* "1,234,567" */

/* ------------- check: check, form, check_layer, expand, layout, report, shape, act (check.h) */

/* The activations: ACT(enum, name, its parameter's name or NULL, the
 * parameter's default (PyTorch's), when f'(x) can be computed from y = f(x)
 * alone — so the backward pass need not keep x — (ALWAYS, IF_POSITIVE:
 * when the parameter is > 0, so y > 0 exactly when x > 0, or NEVER), and
 * whether f'' = 0 (piecewise linear)). Their formulas are cg_math.c's. */
#define ACTIVATIONS(ACT)                                                                           \
    ACT(LINEAR, "linear", NULL, 0.0, NEVER, true)                   /* identity */                 \
    ACT(RELU, "relu", NULL, 0.0, ALWAYS, true)                      /* max(0, x) */                \
    ACT(LEAKY_RELU, "leaky_relu", "slope", 0.01, IF_POSITIVE, true) /* x > 0 ? x : slope·x */     \
    ACT(SIGMOID, "sigmoid", NULL, 0.0, ALWAYS, false)               /* 1 / (1 + e^-x) */           \
    ACT(TANH, "tanh", NULL, 0.0, ALWAYS, false)                                                    \
    ACT(ELU, "elu", "alpha", 1.0, IF_POSITIVE, false)  /* x > 0 ? x : alpha·(e^x - 1) */          \
    ACT(SOFTPLUS, "softplus", NULL, 0.0, NEVER, false) /* log(1 + e^x) */                          \
    ACT(GELU, "gelu", NULL, 0.0, NEVER, false)         /* x·Φ(x), exact (erf), as PyTorch */

typedef enum ActKind {
#define ACT(e, name, param, alpha, from_y, linear) ACT_##e,
    ACTIVATIONS(ACT)
#undef ACT
        ACT_COUNT
} ActKind;
typedef enum { FROM_Y_NEVER, FROM_Y_ALWAYS, FROM_Y_IF_POSITIVE } ActFromY;
typedef struct ActInfo {
    const char *param; /* "slope", "alpha", or NULL: takes none */
    double alpha;      /* the parameter's default */
    ActFromY from_y;
    bool second_zero; /* f'' = 0 */
} ActInfo;
/* tables.c: the columns of ACTIVATIONS, by ActKind. */
extern const char *const act_names[ACT_COUNT];
extern const ActInfo act_info[ACT_COUNT];
bool act_takes_param(ActKind a);     /* leaky_relu's slope, elu's alpha */
double act_default_alpha(ActKind a); /* PyTorch's */
/* Whether f' of activation `act` with parameter alpha is computed from y alone. */
bool act_prime_from_y(ActKind act, double alpha);

/* The language's words by class, from the checker's own tables (the editor
 * grammars are generated from them, tools/aecgen.c): fills `out` (at most
 * max, no duplicates) and returns how many. */
typedef enum VocabClass {
    VOCAB_STATEMENT,  /* model, input, encoder, ..., optimizer, ..., l1, kl */
    VOCAB_LAYER,      /* dense, conv, ... */
    VOCAB_ACTIVATION, /* relu, ... */
    VOCAB_KEY,        /* the keys of key=value: stride, pad, lr, ... */
    VOCAB_VALUE,      /* words a statement takes: mirror, mse, adam, same, ... */
    VOCAB_COUNT
} VocabClass;
int check_vocabulary(VocabClass cls, const char **out, int max);

/* A per-sample shape: N (ndim 1) or CxHxW (ndim 3). The batch is implicit. */
typedef struct Shape {
    int ndim;
    int dim[3];
} Shape;
static inline long shape_numel(Shape s) { /* 0 for an unknown shape */
    long n = s.ndim > 0;
    for (int i = 0; i < s.ndim; i++)
        n = lim_mul(n, s.dim[i]); /* three INT_MAX dimensions overflow a long */
    return n;
}
char *shape_str(Arena *a, Shape s); /* "784", "1x28x28" */

typedef enum LayerKind {
    LY_DENSE,     /* units; weight [units, in], bias [units]; optional act */
    LY_CONV,      /* units=channels, k, stride, pad; weight [units, in_c, kh, kw] */
    LY_DECONV,    /* transposed conv; weight [in_c, units, kh, kw] as PyTorch */
    LY_MAXPOOL,   /* k, stride */
    LY_AVGPOOL,   /* k, stride */
    LY_UPSAMPLE,  /* k: nearest-neighbour factor */
    LY_BATCHNORM, /* weight, bias, running_mean, running_var [C] */
    LY_DROPOUT,   /* p */
    LY_FLATTEN,   /* view to a vector */
    LY_RESHAPE,   /* view to `out` */
    LY_ACT,       /* act alone */
} LayerKind;

/* One layer after checking: shapes known, defaults applied, mirror/tied
 * decoders expanded. Layers are stored encoder first, then decoder. */
typedef struct Layer {
    LayerKind kind;
    Loc loc; /* where the layer (or the mirror/tied keyword) was written */
    bool in_decoder;
    int module_index; /* PyTorch nn.Sequential index of this layer's first module */
    Shape in, out;
    ActKind act;             /* activation applied after the layer (ACT_LINEAR: none) */
    double act_alpha;        /* leaky_relu slope / elu alpha */
    int units;               /* dense outputs / conv channels */
    int kh, kw, stride, pad; /* conv/deconv/pool; pad in pixels (top/left), after `same` */
    int pad_extra;           /* conv `same` with even kernels: extra pixel bottom/right;
                                deconv: PyTorch's output_padding */
    int pad_w, pad_extra_w;  /* the same for the width (pad, pad_extra are the height's) */
    bool pad_same;           /* conv/deconv: the padding was written `same` */
    double p;                /* dropout probability */
    double momentum, eps;    /* batchnorm */
    int tied_to; /* tied decoder dense: index of the encoder layer whose W^T it uses, else -1 */
    int weight, bias;              /* indices into Model.tensors, -1 if none */
    int running_mean, running_var; /* batchnorm buffers, -1 if none */
    long params;                   /* parameter elements this layer owns */
    long flops;                    /* forward FLOPs per sample (a multiply-add counts 2) */
} Layer;

typedef struct ParamTensor {
    const char *name; /* "encoder.0.weight" */
    int ndim;
    int shape[4];
    int kind; /* AEC_TENSOR_* */
    long numel;
    long offset;          /* elements into the params block; trainable tensors come first */
    long fan_in, fan_out; /* for init */
    int layer;            /* owning layer index */
    int stage;            /* the pretraining stage that trains it (1..Model.nstages), 0: none */
} ParamTensor;

/* Greedy layer-wise pretraining stage k pairs encoder dense k with decoder
 * dense K+1-k (the checker made sure the sizes match): layers [0, in_to)
 * give its input (frozen, inference mode), [enc_from, enc_to) and
 * [dec_from, dec_to) are trained. */
typedef struct ModelStage {
    int in_to, enc_from, enc_to, dec_from, dec_to;
} ModelStage;

/* `corrupt KIND P` and `init SCHEME`: X(enum, name). */
#define CORRUPTIONS(X)                                                                             \
    X(NONE, "none") X(GAUSSIAN, "gaussian") X(MASK, "mask") X(SALTPEPPER, "saltpepper")
#define INITS(X) X(XAVIER, "xavier") X(HE, "he") X(NORMAL, "normal")
#define X(e, name) CORRUPT_##e,
typedef enum { CORRUPTIONS(X) CORRUPT_COUNT } CorruptKind;
#undef X
#define X(e, name) INIT_##e,
typedef enum { INITS(X) INIT_COUNT } InitKind;
#undef X
extern const char *const corrupt_names[CORRUPT_COUNT]; /* tables.c */
extern const char *const init_names[INIT_COUNT];

/* The optimizers' facts (runtime/aec.h's AEC_OPTIMIZERS), by AEC_OPT_*. */
typedef struct OptInfo {
    const char *name;
    double lr, momentum, beta1, beta2, eps, decay; /* PyTorch's defaults */
    const char *keys[6];                           /* those a spec may set */
    int slots;                                     /* state slots */
    bool momentum_slot;                            /* one more when momentum != 0 */
} OptInfo;
extern const OptInfo opt_info[AEC_N_OPTIMIZERS];

#define AEC_CONTRACTIVE_MAX_DENSE 64

typedef struct Model {
    const char *name;
    Loc loc;
    Shape input;
    Layer *layers;
    int nlayers;
    int n_encoder; /* layers[0 .. n_encoder-1] are the encoder; its last output is the code */
    Shape code;
    bool latent_gaussian; /* `latent gaussian N` */
    int latent_size;
    int latent_mu, latent_logvar; /* `latent gaussian`: layer indices of the two dense heads,
                                     stored after the decoder (see n_decoder); else -1 */
    int n_decoder;                /* layers[n_encoder .. n_encoder+n_decoder-1] are the decoder */
    int loss;                     /* AEC_LOSS_* */
    bool masked;
    CorruptKind corrupt;
    double corrupt_value;
    /* regularize { } (the contractive term: the encoder's Jacobian as a
     * product over at most AEC_CONTRACTIVE_MAX_DENSE dense layers, the
     * gaussian code's mean included) */
    double l2_weights, l1_weights, l1_code, kl_rho, kl_beta_sparsity, contractive, kl_beta;
    aec_train_config train; /* with defaults applied */
    InitKind init;
    double init_std;
    ParamTensor *tensors;
    int ntensors;
    long param_count, trainable_count;
    long flops;         /* forward FLOPs per sample */
    const char *symbol; /* the C symbol prefix of its entry points, from the name */
    int nstages;        /* `pretrain layerwise` stages, 0 without */
    ModelStage *stages; /* stage k at [k - 1] */
} Model;

/* Whether `stage` (0: the whole model) trains tensor `tensor`. */
bool model_trains(const Model *m, int stage, int tensor);

/* Check a parsed spec. Reports every error it finds through diag_error and
 * returns NULL if there was any; otherwise the checked model. */
Model *check_model(Arena *a, const AstModel *ast);
/* The layer table `aec check` prints: layer, output shape, params, FLOPs, totals. */
void check_print_table(FILE *out, const Model *m);
void check_dump_shapes(FILE *out, const Model *m);
/* The layer as a spec line, e.g. "dense 512 relu", "conv 64 3x3 pad=same". */
char *check_layer_str(Arena *a, const Layer *l);

/* Shape arithmetic along one spatial dimension (pure; <= 0 means no output).
 * pad: pixels of zero padding, or CONV_PAD_SAME (Keras `same`). */
#define CONV_PAD_SAME (-1)
int conv_out_size(int in, int k, int stride, int pad);   /* same: ceil(in/stride) */
int deconv_out_size(int in, int k, int stride, int pad); /* same: in*stride */
int pool_out_size(int in, int k, int stride);            /* floor((in-k)/stride) + 1 */

/* The geometry of a conv or deconv layer as one convolution: it maps an
 * image of c channels, h x w, to r channels at p = oh·ow positions, the
 * window kh x kw moving by `stride` over the image padded by pad_h rows on
 * top and pad_w columns on the left (zeros; the far side pads as far as the
 * windows reach). A deconv is this convolution's adjoint: its output is the
 * image and its input the r channels. Pooling and upsampling use c, h, w
 * (input), oh, ow (output), kh, kw and stride. Defined in ir.c. */
typedef struct ConvGeom {
    int c, h, w, r, oh, ow, kh, kw, stride, pad_h, pad_w;
} ConvGeom;
ConvGeom conv_geom(const Layer *l);
/* im2col is the identity (1x1 window, stride 1, no padding): no scratch. */
bool conv_geom_is_identity(const ConvGeom *g);
/* A batch's convolution runs as this many tasks of whole samples, each in
 * its own slot of the node's scratch (a batch of one splits its sample):
 * a fixed grid, whatever the threads. */
enum { CONV_SLOTS = 8 };

/* ----------------------------------------------------------------- ir.c */

/* The attributes an op may carry besides its inputs, in the order the IR
 * dump prints them: ATTR(enum, IrNode field). Each op uses those its
 * IR_OPS entry lists; the others stay zero. Hashing, equality, the dump
 * and the verifier go by that list. */
#define IR_ATTRS(ATTR)                                                                             \
    ATTR(LAYER, layer)       /* NEST: the Layer whose geometry they use (ConvGeom) */              \
    ATTR(ROLE, role)         /* INPUT: InputRole */                                                \
    ATTR(OPT_SLOT, opt_slot) /* OPTSTATE: which state slot */                                      \
    ATTR(TENSOR, tensor)     /* a tensor index, or -1 for the whole trainable block */             \
    ATTR(RAND, rand)         /* RAND: RandKind */                                                  \
    ATTR(STREAM, stream)     /* RAND: the stream, the graph's stage in the high bits */            \
    ATTR(P, p)               /* RAND_BERNOULLI: the probability of a 1 */                          \
    ATTR(COPIES, copies)     /* TILE, SUM_TILES: the number of copies m */                         \
    ATTR(HW, hw)             /* CHAN_EXPAND, CHAN_SUM: positions per channel */                    \
    ATTR(VALUE, value)       /* CONST */                                                           \
    ATTR(ACT, act)           /* ActKind */                                                         \
    ATTR(ALPHA, alpha)       /* the activation's parameter (leaky_relu's slope, elu's alpha) */    \
    ATTR(FROM_Y, from_y)     /* ACT_GRAD(2): computed from (y, y), not (x, y) */                   \
    ATTR(TRANS, ta)          /* GEMM: transpose A (ta), B (tb) */                                  \
    ATTR(MNK, m)             /* GEMM: C is m x n, inner dimension k */                             \
    ATTR(GIVEN_TYPE, type)   /* the type is given, not inferred */

enum {
#define ATTR(e, field) IR_ATTR_BIT_##e,
    IR_ATTRS(ATTR)
#undef ATTR
};
#define ATTR(e, field) AT_##e = 1u << IR_ATTR_BIT_##e,
enum { IR_ATTRS(ATTR) };
#undef ATTR

/* A reduction's index map: where element (row, j) of its domain accumulates.
 *   RED_COLS  [B, n] -> [n]: at j          RED_ALL   -> scalar: per column j, folded after
 *   RED_TILES [B, m·n] -> [B, n]: at row·n + j mod n
 *   RED_CHAN  [C·hw] -> [C]: at j / hw (the channel) */
typedef enum { RED_NONE, RED_COLS, RED_ALL, RED_TILES, RED_CHAN } IrRedMap;
/* A map that accumulates one value per column of the domain (COLS, ALL):
 * the tasks of a split kernel can each sum their own rows into their own
 * column sums (Plan.task_sums), which the kernel adds up after them. */
static inline bool red_per_column(IrRedMap r) {
    return r == RED_COLS || r == RED_ALL;
}

/* Base pointers a buffer can live in; an address is
 * base + off_batch * batch + off_const elements. */
typedef enum {
    BASE_NONE,   /* inline: never stored */
    BASE_WS,     /* the workspace */
    BASE_X,      /* the input data argument (or the code, for decode) */
    BASE_PARAMS, /* the params block */
    BASE_GRADS,  /* the gradient block */
    BASE_OPT,    /* the optimizer state block */
    BASE_CODE,   /* the code output argument */
    BASE_XHAT,   /* the reconstruction output argument */
    BASE_LOSS,   /* the loss output argument */
    BASE_MASK,   /* the mask argument (ones when the caller passes none) */
} BufBase;

/* The op table, one row per op: OP(enum, printed name, number of inputs
 * (in), class, attributes, index map, leaf, unit, commutes).
 * - class: LEAF (no inputs: data, parameters, scalars), GEMM (a matrix
 *   product), EW (elementwise, with broadcasting of scalars and rows), RED
 *   (reduction), NEST (its own kernel, a hand-written loop nest).
 * - attributes: the IR_ATTRS it uses (AT_*).
 * - index map: a reduction's (IrRedMap, RED_*), from which its type, its
 *   loop and its plan follow; NONE for every other op.
 * - leaf: the argument a leaf reads (BufBase, BASE_*; X is the data, or the
 *   mask for role INPUT_MASK), from which its type and place follow; NONE
 *   for a scalar leaf (computed where it is used) and for every other op.
 * - unit, commutes: x op unit = x, and unit op x = x when the op commutes:
 *   the identities ir_binary folds away (NAN: none).
 * The enum, printer, hashing, verifier, types, folding, gradient rules,
 * fuser, plan and loop kernels all follow it. */
// clang-format off
#define IR_OPS(OP)                                                                                                        \
    /* enum           name            in  class attributes                                  map    leaf    unit comm */   \
    /* the data x (or the code, for decode) [B, n] */                                                                     \
    OP(INPUT,         "input",         0, LEAF, AT_ROLE,                                    NONE,  X,      NAN, 0)        \
    /* a parameter tensor or the trainable block */                                                                       \
    OP(PARAM,         "param",         0, LEAF, AT_TENSOR,                                  NONE,  PARAMS, NAN, 0)        \
    /* the gradient block, read by the optimizer */                                                                       \
    OP(GRADIN,        "grads",         0, LEAF, AT_TENSOR,                                  NONE,  GRADS,  NAN, 0)        \
    /* as long as the block */                                                                                            \
    OP(OPTSTATE,      "optstate",      0, LEAF, AT_OPT_SLOT | AT_TENSOR,                    NONE,  OPT,    NAN, 0)        \
    /* scalar constant `value` */                                                                                         \
    OP(CONST,         "const",         0, LEAF, AT_VALUE,                                   NONE,  NONE,   NAN, 0)        \
    /* scalar: the batch size */                                                                                          \
    OP(BATCH,         "batch",         0, LEAF, 0,                                          NONE,  NONE,   NAN, 0)        \
    /* scalar: the optimizer step, from 1 */                                                                              \
    OP(STEP,          "step",          0, LEAF, 0,                                          NONE,  NONE,   NAN, 0)        \
    /* op(A)·op(B) */                                                                                                     \
    OP(GEMM,          "gemm",          2, GEMM, AT_TRANS | AT_MNK,                          NONE,  NONE,   NAN, 0)        \
    OP(ADD,           "add",           2, EW,   0,                                          NONE,  NONE,   0,   1)        \
    OP(SUB,           "sub",           2, EW,   0,                                          NONE,  NONE,   0,   0)        \
    OP(MUL,           "mul",           2, EW,   0,                                          NONE,  NONE,   1,   1)        \
    OP(DIV,           "div",           2, EW,   0,                                          NONE,  NONE,   1,   0)        \
    /* a^b, for scalars (Adam's bias correction) */                                                                       \
    OP(POW,           "pow",           2, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(NEG,           "neg",           1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(ABS,           "abs",           1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    /* -1, 0 or 1 */                                                                                                      \
    OP(SIGN,          "sign",          1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(SQRT,          "sqrt",          1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(LOG,           "log",           1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(EXP,           "exp",           1, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    /* a scalar/row broadcast to its type */                                                                              \
    OP(EXPAND,        "expand",        1, EW,   AT_GIVEN_TYPE,                              NONE,  NONE,   NAN, 0)        \
    /* the activation `act` */                                                                                            \
    OP(ACT,           "act",           1, EW,   AT_ACT | AT_ALPHA,                          NONE,  NONE,   NAN, 0)        \
    /* f'(x) from (x, y) */                                                                                               \
    OP(ACT_GRAD,      "act_grad",      2, EW,   AT_ACT | AT_ALPHA | AT_FROM_Y,              NONE,  NONE,   NAN, 0)        \
    /* -(t log p + (1-t) log(1-p)), each log >= -100; its d/dp = (p - t) / max(p (1-p), 1e-12) */                         \
    OP(BCE,           "bce",           2, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    OP(BCE_GRAD,      "bce_grad",      2, EW,   0,                                          NONE,  NONE,   NAN, 0)        \
    /* [B, n] -> [n]: sum over the batch */                                                                               \
    OP(SUM_ROWS,      "sum_rows",      1, RED,  0,                                          COLS,  NONE,   NAN, 0)        \
    /* anything -> scalar */                                                                                              \
    OP(SUM_ALL,       "sum_all",       1, RED,  0,                                          ALL,   NONE,   NAN, 0)        \
    /* noise, regularizers and variational codes (docs/regularizers.md) */                                                \
    /* draws */                                                                                                           \
    OP(RAND,          "rand",          0, EW,   AT_RAND | AT_STREAM | AT_P | AT_GIVEN_TYPE, NONE,  NONE,   NAN, 0)        \
    /* f''(x); d f'/dy */                                                                                                 \
    OP(ACT_GRAD2,     "act_grad2",     2, EW,   AT_ACT | AT_ALPHA | AT_FROM_Y,              NONE,  NONE,   NAN, 0)        \
    /* [B, n] -> [B, m*n]: each row m times */                                                                            \
    OP(TILE,          "tile",          1, EW,   AT_COPIES,                                  NONE,  NONE,   NAN, 0)        \
    /* [B, m*n] -> [B, n] */                                                                                              \
    OP(SUM_TILES,     "sum_tiles",     1, RED,  AT_COPIES,                                  TILES, NONE,   NAN, 0)        \
    /* image layers (docs/internals.md, "Convolutions"): geometry of Layer `layer` (ConvGeom) */                          \
    /* (img, W): per sample W·im2col(img) */                                                                              \
    OP(CONV,          "conv",          2, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* (d, W): per sample col2im(Wᵀ·d) */                                                                                 \
    OP(CONV_T,        "conv_t",        2, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* (d, img): Σ_b d_b·im2col(img_b)ᵀ */                                                                                \
    OP(CONV_W,        "conv_w",        2, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    OP(MAXPOOL,       "maxpool",       1, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* (x, dy) -> dx, argmax from x */                                                                                    \
    OP(MAXPOOL_GRAD,  "maxpool_grad",  2, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    OP(AVGPOOL,       "avgpool",       1, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* dy -> dx */                                                                                                        \
    OP(AVGPOOL_GRAD,  "avgpool_grad",  1, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* nearest neighbour */                                                                                               \
    OP(UPSAMPLE,      "upsample",      1, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* dy -> dx: K x K blocks summed */                                                                                   \
    OP(UPSAMPLE_GRAD, "upsample_grad", 1, NEST, AT_LAYER,                                   NONE,  NONE,   NAN, 0)        \
    /* [C] -> [C·hw], j -> in[j / hw]: never a kernel of its own, a load */                                               \
    OP(CHAN_EXPAND,   "chan_expand",   1, EW,   AT_HW,                                      NONE,  NONE,   NAN, 0)        \
    /* [C·hw] -> [C]: each channel summed */                                                                              \
    OP(CHAN_SUM,      "chan_sum",      1, RED,  AT_HW,                                      CHAN,  NONE,   NAN, 0)
// clang-format on

typedef enum IrOp {
#define OP(e, name, nin, cls, attrs, red, leaf, unit, comm) IR_##e,
    IR_OPS(OP)
#undef OP
        IR_OP_COUNT
} IrOp;

typedef enum { OPC_LEAF, OPC_GEMM, OPC_EW, OPC_RED, OPC_NEST } IrOpClass;
extern const char *const ir_op_names[IR_OP_COUNT];
extern const int ir_op_nin[IR_OP_COUNT];
extern const IrOpClass ir_op_class[IR_OP_COUNT];
extern const unsigned ir_op_attrs[IR_OP_COUNT]; /* AT_* */
extern const IrRedMap ir_op_red[IR_OP_COUNT];
extern const BufBase ir_op_leaf[IR_OP_COUNT];
extern const double ir_op_unit[IR_OP_COUNT];
extern const bool ir_op_commutes[IR_OP_COUNT];

#define IR_BATCH_DIM (-1L) /* a GEMM dimension equal to the (symbolic) batch */
/* More generally a negative GEMM dimension -r is r·B: r rows per sample of a
 * batched operand (the stacked per-sample matrices of the contractive term). */

/* RAND draws, keyed by (the spec's seed, the step, the stream, the element's
 * index): aec_rng_noise in runtime/rt.h, bit for bit. The stream is "NOISE"
 * plus the RAND stream, AEC_STREAM_NOISE of rt.h. */
#define IR_STREAM_NOISE 0x4E4F495345000000ull
/* `init` draws: stream "INIT" + the tensor's index, counter the element's. */
#define IR_STREAM_INIT 0x494E495400000000ull
typedef enum {
    RAND_UNIFORM,   /* in [0, 1) */
    RAND_NORMAL,    /* N(0, 1), Box–Muller from counters 2i and 2i+1 */
    RAND_BERNOULLI, /* 1 with probability `p`, else 0 */
} RandKind;

/* The type of an IR value: `batched` rows of n elements each ([B, n]), or one
 * row ([n]); a scalar is an unbatched value with n = 1. Views (flatten,
 * reshape) do not change it: every per-sample tensor is n contiguous values. */
typedef struct IrType {
    bool batched;
    long n;
} IrType;

typedef enum {
    INPUT_X,
    INPUT_CODE,
    INPUT_MASK /* 1 where x is present (`loss ... masked`) */
} InputRole;

typedef struct IrNode {
    IrOp op;
    Loc loc;     /* the spec line that gave rise to it */
    int in[2];   /* inputs: node indices (earlier in the array) */
    IrType type; /* inferred, or given (AT_GIVEN_TYPE) */
    /* attributes (IR_ATTRS): each op uses those IR_OPS lists, all others are zero */
    int layer;
    InputRole role;
    int opt_slot;
    int tensor;
    RandKind rand;
    int stream;
    double p;
    long copies;
    long hw;
    double value;
    ActKind act;
    double alpha;
    bool from_y;
    int ta, tb;   /* AT_TRANS */
    long m, n, k; /* AT_MNK: IR_BATCH_DIM (or -r) for the batch */
} IrNode;

typedef enum {
    OUT_LOSS,     /* scalar loss */
    OUT_CODE,     /* [B, code] */
    OUT_XHAT,     /* [B, input] reconstruction */
    OUT_GRAD,     /* gradient of trainable tensor `index` */
    OUT_PARAMS,   /* optimizer: the updated trainable block */
    OUT_OPTSTATE, /* optimizer: updated state slot `index` */
    OUT_METRIC,   /* scalar term `index` >= 1 of the loss, stored at loss[index] (lower_metrics) */
    OUT_BUFFER,   /* train: the new value of buffer tensor `index` (batchnorm running stats),
                     copied into the params block once the step's loss is known finite */
} OutKind;

typedef struct GraphOutput {
    OutKind kind;
    int node;
    int index;
    int tensor; /* OUT_PARAMS, OUT_OPTSTATE: that tensor's range of the block; -1: all of it */
} GraphOutput;

typedef enum {
    GRAPH_TRAIN,  /* training-mode forward, loss and gradients */
    GRAPH_EVAL,   /* inference-mode forward: loss and reconstruction */
    GRAPH_ENCODE, /* x -> code */
    GRAPH_DECODE, /* code -> x_hat */
    GRAPH_OPTIM,  /* the optimizer update over the trainable block */
} GraphKind;

/* A graph of tensor ops. Nodes live in one array in creation order, which is
 * topological; creating a node hash-conses it, so equal nodes are shared. */
typedef struct Graph {
    GraphKind kind;
    const Model *model;
    Arena *arena;
    IrNode *nodes;
    int nnodes, cap;
    int *hash; /* open addressing: node index + 1, 0 = empty */
    int hash_cap;
    int n_forward; /* nodes before autodiff added the backward pass */
    int stage;     /* 0: the model; k >= 1: layer-wise pretraining stage k (train, optim) */
    GraphOutput *outs;
    int nouts, outs_cap;
} Graph;

Graph *ir_new(Arena *a, const Model *m, GraphKind kind);
/* Create (or find) a node. Inputs and attributes come from `proto`; the
 * type is inferred, and a type error is an internal error. */
int ir_add(Graph *g, IrNode proto);
int ir_const(Graph *g, double v);
int ir_unary(Graph *g, IrOp op, int a);
int ir_binary(Graph *g, IrOp op, int a, int b);
int ir_gemm(Graph *g, int a, int b, int ta, int tb, long m, long n, long k);
void ir_output(Graph *g, OutKind kind, int node, int index);
/* An OUT_PARAMS or OUT_OPTSTATE output for one tensor's range of the block. */
void ir_output_tensor(Graph *g, OutKind kind, int node, int index, int tensor);
bool ir_is_scalar(IrType t);
void ir_verify(const Graph *g); /* internal error on a malformed graph */
void ir_dump(FILE *out, const Graph *g);
const char *ir_graph_name(GraphKind k);
/* f'(x) of the activation node `y` (an IR_ACT), as its VJP uses it: from y
 * alone where it can be (so autodiff and the contractive term share it). */
int ir_act_prime(Graph *g, int y);

/* ------------------------------------- lower: lower, forward, objective, optim (lower.h) */

/* Build the graph of one entry point from the checked model. GRAPH_TRAIN
 * gets the forward pass and the loss; autodiff adds the rest. */
Graph *lower_model(Arena *a, const Model *m, GraphKind kind);
int lower_opt_slots(const Model *m); /* optimizer state slots, each trainable_count long */
/* The optimizer update of the trainable block (tensor -1) or of one
 * tensor's range of it, as outputs of a GRAPH_OPTIM graph (optim.c). */
void lower_optimizer(Graph *g, int tensor);
/* Greedy layer-wise pretraining: stage k >= 1 of Model.nstages trains
 * encoder dense k and its mirrored decoder dense as a shallow autoencoder of
 * the (frozen, inference-mode) codes below it; GRAPH_TRAIN and GRAPH_OPTIM only. */
Graph *lower_model_stage(Arena *a, const Model *m, GraphKind kind, int stage);
/* The values train/eval graphs write to `loss`: "loss", then (when the loss
 * has more than one term) "recon" and each term, unweighted. names may be
 * NULL; returns the count (at most LOWER_MAX_METRICS). */
enum { LOWER_MAX_METRICS = 8 };
int lower_metrics(const Model *m, const char **names);

/* ----------------------------------------------------------- autodiff.c */

/* Append the backward pass of the loss to a GRAPH_TRAIN graph: one VJP rule
 * per op, and an OUT_GRAD output for every trainable tensor. */
void grad_build(Graph *g);

/* --------------------------------------------------------------- fuse.c */

typedef enum {
    K_GEMM, /* one cblas call for `node` */
    K_LOOP, /* one loop nest over `domain` computing `nodes` */
    K_NEST, /* one NEST `node`: its own loop nest, see codegen's nest_kernel */
} KernelKind;

typedef struct Kernel {
    KernelKind kind;
    int node;      /* K_GEMM, K_NEST: the node it computes */
    IrType domain; /* K_LOOP: rows (batch or 1) x n */
    int *nodes;    /* K_LOOP: member nodes in order */
    int nnodes;
    bool epilogue; /* K_LOOP: may run as the GEMM kernel before it's epilogue, block by block of
                      its output (see fuse.c); the plan keeps that GEMM's operands live */
} Kernel;

/* Where each node's value lives after fusion (indexed by node). */
typedef struct NodeInfo {
    int kernel;         /* the kernel computing it; -1 for leaves and inline scalars */
    bool inline_scalar; /* a scalar recomputed wherever used (cheap, loop-invariant) */
    bool materialized;  /* stored to memory (used by a later kernel, or an output) */
    int last_use;       /* last kernel reading it */
} NodeInfo;

typedef struct Fusion {
    const Graph *graph;
    Kernel *kernels;
    int nkernels;
    NodeInfo *info;
} Fusion;

Fusion *fuse_graph(Arena *a, const Graph *g);
void fuse_dump(FILE *out, const Fusion *f);
/* A loop kernel's positions per channel when its columns loop as channel x
 * position (it reads a CHAN_EXPAND or computes a CHAN_SUM); 1 for none. */
long kernel_hw(const Graph *g, const Kernel *k);

/* ----------------------------------------------------------- winograd.c */

/* Winograd's F(m x m, 3 x 3): Bᵀ (a x a), G (a x 3), Aᵀ (m x a), a = m + 2. */
typedef struct WinogradF {
    int m, a;
    double bt[4][4], g[4][3], at[2][4];
} WinogradF;

/* One CONV, CONV_T or CONV_W node as Winograd's: the transformed channels
 * in and out (V's and M's; CONV_W: c and r), the tiles, and the parts of
 * its scratch per element ξ of the transformed tile (elements, each a
 * multiple of 16): U (CONV_W: dU), V, M (CONV_W: A dy Aᵀ), pack.
 *
 * The scratch: first the shared part — U (not for CONV_W) and a pack per
 * ξ, for a batch of one, whose sample's products run as tasks of ξ — then
 * CONV_SLOTS slots (the first here, the others after the workspace), each
 * a task's own V, M, pack (and CONV_W's dU of the task's samples) when
 * each task takes whole samples. */
typedef struct WinogradNode {
    const WinogradF *f;
    ConvGeom q;
    int op;
    long in, out;
    long th, tw, tiles; /* tiles down, across, per sample */
    long u, v, mm, pe;
    long shared, slot; /* elements of the shared part, and of each slot */
    GemmSpec s;        /* the product of one ξ */
} WinogradNode;

/* The convolution runs as Winograd's F(2x2, 3x3) with --gemm aec (3x3,
 * stride 1, pad 1, 8 or more channels in and out, planes up to 60). */
bool conv_winograd(const ConvGeom *q);
WinogradNode winograd_node(const ConvGeom *q, int op, bool f64);
/* Its scratch, elements: shared + the first slot (the others follow the
 * workspace, Plan.ws_slot). */
long winograd_scratch(const ConvGeom *q, int op);
/* U, a²·u elements of the node's type, from the layer's weight W
 * ([r][c][3][3]), with the generated filter transform's bits: a CONV or
 * CONV_T of weights embedded at compile time. */
void winograd_filter(const WinogradNode *w, const void *W, void *U);

/* --------------------------------------------------------------- plan.c */

typedef struct BufLoc {
    BufBase base;
    long off_batch, off_const;
} BufLoc;

typedef struct Plan {
    const Fusion *fusion;
    BufLoc *loc;             /* per node */
    BufLoc *partial;         /* per SUM_ALL node: its per-column partial sums; per conv
                                (CONV, CONV_T, CONV_W): its im2col scratch of one sample */
    BufLoc *pack;            /* per GEMM and conv node: the generated GEMM's packed panels */
    long *split;             /* per kernel: a loop kernel run as tasks of this many rows (a
                                batched domain) or columns (one row); 0: one loop nest */
    long *col_split;         /* per kernel: a batched loop kernel with sums over rows run as
                                tasks of this many columns, all rows each (split is 0) */
    BufLoc *task_sums;       /* per SUM_ROWS / SUM_ALL node of a split or epilogue kernel:
                                each task's column sums, [task][n], added up in task order
                                after them */
    BufLoc *out_loc;         /* per graph output: its own place (BASE_NONE for a metric or a
                                buffer); an output whose node an earlier output already
                                placed (equal gradients are one node) is copied there */
    long ws_batch, ws_const; /* workspace elements = ws_batch * batch + ws_const */
    long ws_slot; /* a convolution's slot of a task of samples: the largest, elements; the
                     slots after the first follow the workspace (min(batch, CONV_SLOTS) − 1) */
} Plan;

Plan *plan_memory(Arena *a, const Fusion *f);
/* Tasks of a split loop kernel: ceil(rows or columns / split). */
#define PLAN_SPLIT_MIN 32768  /* elements (at the spec's batch) worth a round of tasks */
#define PLAN_TASK_ELEMS 16384 /* elements per task, about */
#define PLAN_TASK_COLS 1024   /* columns per task of a kernel split by columns, about */
/* The product a GEMM node computes, or a convolution for one sample, for
 * the kernel generator (gemm.h); false for another node. */
bool plan_gemm_spec(const Graph *g, int node, bool f64, GemmSpec *s);
/* The slot of a convolution that runs as im2col and a generated product
 * (nest.c), elements, each part a multiple of 16: its columns (none for
 * a 1x1), the product's pack buffer, CONV_W's sum of dW over the slot's
 * samples. Its scratch (`partial`) is the first slot, the others follow
 * the workspace (Plan.ws_slot) — but for a convolution Winograd's may
 * take (conv_winograd), whose scratch it is. */
typedef struct ConvSlot {
    long cols, pack, dw, size;
} ConvSlot;
ConvSlot conv_slot(const Graph *g, int node);
void plan_dump(FILE *out, const Plan *p);
/* Internal error unless the plan is sound: every value a kernel reads was
 * written by an earlier kernel (or is a leaf) and is still live there, and
 * no two workspace buffers live at the same time overlap, at any batch. */
void plan_verify(const Plan *p);

/* ----------------------------------------------------------- pipeline.c */

/* One entry point's graph after every pass. */
typedef struct Entry {
    GraphKind kind;
    int stage;    /* 0, or the pretraining stage k >= 1 (train and optim only) */
    Graph *graph; /* lowered; a training graph with its backward pass */
    Fusion *fusion;
    Plan *plan;
} Entry;

/* A compiled model: every entry point's graph, fused and planned, and the
 * facts of it that codegen and the driver print or lay out. */
typedef struct Program {
    const Model *model;
    Entry *entries; /* train, optim, eval, encode, decode; then train, optim per stage */
    int nentries;
    long ws_batch, ws_const; /* the largest plan's workspace, elements */
    long ws_slot;            /* the largest plan's ws_slot */
    int opt_slots;           /* optimizer state slots, each trainable_count long */
    int nmetrics;            /* the values train/eval write to `loss` (lower_metrics) */
    const char *metric_names[LOWER_MAX_METRICS];
    const char *summary; /* the layer table `aec check` prints */
} Program;

/* The pass list: for each entry point lower -> autodiff (training graphs)
 * -> verify -> fuse -> plan -> verify the plan. */
Program *compile_model(Arena *a, const Model *m);
static inline const Entry *program_entry(const Program *p, GraphKind kind, int stage) {
    for (int e = 0; e < p->nentries; e++)
        if (p->entries[e].kind == kind && p->entries[e].stage == stage) return &p->entries[e];
    internal_error("no graph %d of stage %d", (int)kind, stage);
}
/* What `aec check --dump=WHAT` prints of the Program: "ir" (the eval and
 * optim graphs), "grad" (the train graph with its backward pass) or
 * "kernels" (each graph's kernels and memory plan). */
void program_dump(FILE *out, const Program *p, const char *what);

/* ---------------------------- codegen: cg, cg_math, kernels, nest, abi, emit (cg.h) */

typedef enum {
    GEMM_DEFAULT, /* AEC_GEMM from the environment (aec or blas), else the build's default */
    GEMM_AEC,     /* generated kernels */
    GEMM_BLAS,    /* cblas_sgemm/dgemm: the reference */
} GemmBackend;

typedef struct CodegenOptions {
    bool f64;             /* element type double instead of float */
    const char *triple;   /* NULL: the host */
    const char *cpu;      /* NULL: the host's */
    const char *features; /* NULL: the host's */
    int opt_level;        /* 0..3 */
    bool debug;           /* -g: DWARF line tables mapping code to the spec's lines */
    const void *embed;    /* --embed-weights: the params block (param_count values of the
                             element type) to embed as constant data, or NULL */
    GemmBackend gemm;     /* --gemm: the generated kernels (compiler/gemm.c) or cblas */
    bool im2col;          /* --conv im2col: no Winograd (compiler/winograd.c) */
    bool embed_half;      /* --embed-half: batch-1 embedded calls read f16 weight rows */
} CodegenOptions;

/* The model table of runtime/aec.h (its AEC_MODEL_FIELDS X-macro), as
 * data: each field's type and name, an entry point's return and arguments.
 * abi.c builds the LLVM table and signatures from it, header.c the
 * declarations of m.h. */
typedef enum {
    ABI_U32,
    ABI_I32,
    ABI_I64,
    ABI_I32X4,
    ABI_STR,
    ABI_STRS,
    ABI_TENSORS,
    ABI_LAYERS,
    ABI_TRAIN,
    ABI_CPTR,
    ABI_ENTRY, /* a field that is an entry point */
    ABI_BUF,
    ABI_CBUF,
    ABI_WS,
    ABI_CWS,
    ABI_INT,
    ABI_U64,
    ABI_EXEC, /* argument types */
} AbiType;
typedef enum { ABI_RET_INT, ABI_RET_SIZE } AbiRet;
typedef struct AbiArg {
    AbiType type;
    const char *name;
} AbiArg;
typedef struct AbiField {
    AbiType kind;
    const char *name;
    AbiRet ret; /* ABI_ENTRY: */
    const AbiArg *args;
    int nargs;
} AbiField;
extern const AbiField abi_fields[];
extern const int abi_nfields;
const AbiField *abi_entry(const char *name);          /* internal error when there is none */
int abi_arg(const AbiField *entry, const char *name); /* its index; internal error when none */

typedef struct Codegen Codegen;
/* Emit every entry point of the Program into one LLVM module (the Program
 * need not outlive the call); NULL after reporting an unknown target. */
Codegen *cg_program(const Program *p, const CodegenOptions *opt);
void cg_dump_llvm(FILE *out, Codegen *cg);
int cg_emit_file(Codegen *cg, const char *path, bool assembly); /* 0 on success */
void cg_free(Codegen *cg);
/* The LLVM options every module of this process is compiled with (once;
 * cg_program calls it, and so must another user of the generators). */
void cg_llvm_options(void);
/* JIT-compile the module in this process; the address of `symbol` or NULL. */
void *cg_jit_lookup(Codegen *cg, const char *symbol);
const char *cg_prefix(const Codegen *cg);
/* Where field `field` of abi_fields lies in the model table codegen lays
 * out for this target, in bytes; and the table's size (tests compare them
 * with offsetof and sizeof of aec_model). */
long cg_table_offset(Codegen *cg, int field);
long cg_table_size(Codegen *cg);

/* ------------------------------------------------------------- header.c */

/* Write the header of the object at obj_path (its name with .h: header_path);
 * inc (the directory of the runtime's aec.h) and libs (what a model object
 * links with) are for its build line. 0 on success, 1 after saying what
 * could not be written. */
int header_write(Arena *a, const Program *p, const char *obj_path, const char *spec,
                 const CodegenOptions *opt, const char *weights, const char *inc, const char *libs);
char *header_path(Arena *a, const char *obj_path); /* m.o -> m.h; m -> m.h */

/* ------------------------------------------------------------ options.c */

/* The `aec` command line as data (main.c parses it; completion is generated
 * from it). */
typedef enum CliCommandId { CLI_CHECK, CLI_BUILD, CLI_RUN, CLI_N_COMMANDS } CliCommandId;
typedef struct CliCommand {
    const char *name, *args, *summary;
} CliCommand;
typedef enum CliOptionId {
    CLI_OPT_DUMP,
    CLI_OPT_OUT,
    CLI_OPT_EMIT,
    CLI_OPT_EMBED_WEIGHTS,
    CLI_OPT_EMBED_HALF,
    CLI_OPT_TARGET,
    CLI_OPT_CPU,
    CLI_OPT_FEATURES,
    CLI_OPT_DTYPE,
    CLI_OPT_GEMM,
    CLI_OPT_CONV,
    CLI_OPT_OPT,   /* -O0..-O3: the value is attached */
    CLI_OPT_DEBUG, /* -g */
    CLI_OPT_MPI,   /* a trainer for mpirun (runtime/mpi.c) */
    CLI_N_OPTIONS
} CliOptionId;
typedef struct CliOption {
    const char *name;     /* "--emit", "-o" */
    const char *metavar;  /* NULL: a flag */
    const char *values;   /* the words it takes, space-separated; "FILE"; NULL: free */
    const char *commands; /* the commands that take it, space-separated */
    const char *help;
} CliOption;
extern const CliCommand cli_commands[CLI_N_COMMANDS];
extern const CliOption cli_options[CLI_N_OPTIONS];

/* ------------------------------------------------------------- driver.c */

/* The whole pipeline for the command line: each returns an exit status. */
int driver_check(const char *spec, const char *dump);
/* emit: NULL (a trainer), "obj" (+ header), "asm" or "llvm"; weights: a
 * safetensors file to embed (--embed-weights), or NULL; mpi: the trainer
 * links the runtime's MPI layer (--mpi). */
int driver_build(const char *spec, const char *out, const char *emit, const CodegenOptions *opt,
                 const char *weights, bool mpi);
/* `aec run`: JIT the trainer and run it on argv (the arguments after `--`). */
int driver_run(const char *spec, const CodegenOptions *opt, int argc, char **argv);
/* Front end only: parse and check; NULL after reporting errors. */
Model *driver_load(Arena *a, const char *spec_path);
/* The runtime library's directory and the directory of its aec.h (each
 * PATH_MAX bytes): beside an installed aec, else the build tree's. */
bool driver_runtime_paths(char *lib, char *inc);

#endif
