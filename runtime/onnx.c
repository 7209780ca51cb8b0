/* onnx.c — a model's inference graph as an ONNX file (`PROG export`).
 *
 * Takes a model table (its layer table, ABI 7, and its tensors) and a
 * params block; writes the graph of the autoencoder (x -> x_hat), its
 * encoder (x -> code; mu for a variational model) or its decoder (code ->
 * x_hat) in standard ONNX operators of opset 13, the parameters as
 * initializers under their PyTorch names. Serialized by protobuf-c with
 * the onnx.proto that python3-onnx ships, compiled by protoc-c at build
 * time (the Makefile) — no hand-written encoder.
 *
 * Inference mode, as the model's encode/decode compute: dropout is gone,
 * batch norm uses its running statistics, a variational code is mu.
 * Operators: Gemm (a tied layer multiplies by the encoder's weight without
 * transposing it), Conv and ConvTranspose with explicit pads, MaxPool and
 * AveragePool, Resize (nearest, asymmetric, floor: plain repetition),
 * BatchNormalization, Flatten, Reshape, Relu, LeakyRelu, Sigmoid, Tanh,
 * Elu, Softplus, and the exact GELU as x·(1 + erf(x/√2))/2 (Erf; ONNX has
 * no Gelu before opset 20). The batch is a symbolic dimension "N".
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "onnx.pb-c.h"
#include "rt.h"

_Static_assert(sizeof(aec_layer_info) == 128, "aec_layer_info is 128 bytes, no padding (ABI)");

enum { OPSET = 13, IR_VERSION = 7 /* the IR of opset 13 */ };

/* Everything the graph allocates is freed at once, after packing. */
typedef struct Builder {
    const aec_model *m;
    const void *params;
    int32_t elem;  /* ONNX element type of the model's dtype */
    void **allocs; /* every allocation, freed by builder_free */
    size_t n_allocs, cap_allocs;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    int counter; /* for unique value names */
    int failed;  /* out of memory */
} Builder;

static void *b_alloc(Builder *b, size_t size) {
    if (b->n_allocs == b->cap_allocs) {
        size_t cap = b->cap_allocs ? 2 * b->cap_allocs : 256;
        void **grown = realloc(b->allocs, cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return NULL;
        }
        b->allocs = grown;
        b->cap_allocs = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        b->failed = 1;
        return NULL;
    }
    return b->allocs[b->n_allocs++] = p;
}

/* Appends p to a growable array of pointers. */
static void push(Builder *b, void ***items, size_t *n, size_t *cap, void *p) {
    if (!p) return;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        void **grown = realloc(*items, c * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return;
        }
        *items = grown;
        *cap = c;
    }
    (*items)[(*n)++] = p;
}

static char *b_printf(Builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *b_printf(Builder *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = b_alloc(b, (size_t)n + 1);
    if (!s) return "";
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ------------------------------------------------------------ attributes */

static Onnx__AttributeProto *attr(Builder *b, const char *name, int type) {
    Onnx__AttributeProto *a = b_alloc(b, sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    return a;
}

static Onnx__AttributeProto *attr_int(Builder *b, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_float(Builder *b, const char *name, double v) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = (float)v;
    return a;
}

static Onnx__AttributeProto *attr_ints(Builder *b, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *copy = b_alloc(b, sizeof *copy * (size_t)n);
    if (!a || !copy) return NULL;
    memcpy(copy, v, sizeof *copy * (size_t)n);
    a->n_ints = (size_t)n;
    a->ints = copy;
    return a;
}

static Onnx__AttributeProto *attr_string(Builder *b, const char *name, const char *s) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    if (a) a->has_s = 1, a->s.data = (uint8_t *)s, a->s.len = strlen(s);
    return a;
}

/* ----------------------------------------------------------------- nodes */

/* A node `op` of the inputs (NULL-terminated; "" for an omitted one) and
 * attributes (NULL-terminated); returns the name of its one output. */
static const char *node(Builder *b, const char *op, const char *const *in,
                        Onnx__AttributeProto *const *attrs) {
    Onnx__NodeProto *n = b_alloc(b, sizeof *n);
    if (!n) return "";
    onnx__node_proto__init(n);
    size_t nin = 0, nattr = 0;
    while (in[nin])
        nin++;
    while (attrs && attrs[nattr])
        nattr++;
    n->op_type = (char *)op;
    n->name = b_printf(b, "%s_%d", op, b->counter);
    n->n_input = nin;
    n->input = b_alloc(b, sizeof(char *) * nin);
    for (size_t i = 0; n->input && i < nin; i++)
        n->input[i] = (char *)in[i];
    n->n_output = 1;
    n->output = b_alloc(b, sizeof(char *));
    const char *out = b_printf(b, "t%d", b->counter++);
    if (n->output) n->output[0] = (char *)out;
    n->n_attribute = nattr;
    n->attribute = b_alloc(b, sizeof(Onnx__AttributeProto *) * nattr);
    for (size_t i = 0; n->attribute && i < nattr; i++)
        n->attribute[i] = attrs[i];
    push(b, (void ***)&b->nodes, &b->n_nodes, &b->cap_nodes, n);
    return out;
}

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})
#define ATTRS(...) ((Onnx__AttributeProto *const[]){__VA_ARGS__, NULL})

/* ---------------------------------------------------------- initializers */

static Onnx__TensorProto *tensor(Builder *b, const char *name, int32_t type, int ndim,
                                 const int64_t *dims) {
    Onnx__TensorProto *t = b_alloc(b, sizeof *t);
    int64_t *d = b_alloc(b, sizeof *d * (size_t)(ndim ? ndim : 1));
    if (!t || !d) return NULL;
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = type;
    if (ndim) memcpy(d, dims, sizeof *d * (size_t)ndim); /* a scalar has no dims (NULL) */
    t->n_dims = (size_t)ndim;
    t->dims = d;
    push(b, (void ***)&b->inits, &b->n_inits, &b->cap_inits, t);
    return t;
}

/* Parameter tensor i of the model, its values straight from params (the
 * host's byte order, which ONNX's raw_data shares on little-endian hosts). */
static const char *param(Builder *b, int i) {
    const aec_tensor_info *ti = &b->m->tensors[i];
    for (size_t k = 0; k < b->n_inits; k++) /* a tied decoder shares the encoder's weight */
        if (!strcmp(b->inits[k]->name, ti->name)) return ti->name;
    int64_t dims[4];
    for (int k = 0; k < ti->ndim; k++)
        dims[k] = ti->shape[k];
    Onnx__TensorProto *t = tensor(b, ti->name, b->elem, ti->ndim, dims);
    if (!t) return "";
    size_t el = aec_dtype_size(b->m->dtype);
    t->has_raw_data = 1;
    t->raw_data.len = (size_t)ti->numel * el;
    t->raw_data.data = (uint8_t *)b->params + (size_t)ti->offset * el;
    return ti->name;
}

/* A named scalar constant of the model's element type. */
static const char *scalar(Builder *b, const char *name, double v) {
    for (size_t i = 0; i < b->n_inits; i++)
        if (!strcmp(b->inits[i]->name, name)) return name; /* made already */
    Onnx__TensorProto *t = tensor(b, name, b->elem, 0, NULL);
    if (!t) return "";
    if (b->m->dtype == AEC_F64) {
        double *d = b_alloc(b, sizeof *d);
        if (d) *d = v, t->n_double_data = 1, t->double_data = d;
    } else {
        float *f = b_alloc(b, sizeof *f);
        if (f) *f = (float)v, t->n_float_data = 1, t->float_data = f;
    }
    return name;
}

/* A 1-D constant: int64 values (shapes) or float ones (Resize's scales). */
static const char *vector(Builder *b, int32_t type, int n, const int64_t *i64, const float *f32) {
    const char *name = b_printf(b, "c%d", b->counter++);
    int64_t dim = n;
    Onnx__TensorProto *t = tensor(b, name, type, 1, &dim);
    if (!t) return "";
    if (i64) {
        int64_t *v = b_alloc(b, sizeof *v * (size_t)n);
        if (v)
            memcpy(v, i64, sizeof *v * (size_t)n), t->n_int64_data = (size_t)n, t->int64_data = v;
    } else {
        float *v = b_alloc(b, sizeof *v * (size_t)n);
        if (v)
            memcpy(v, f32, sizeof *v * (size_t)n), t->n_float_data = (size_t)n, t->float_data = v;
    }
    return name;
}

/* --------------------------------------------------------------- layers */

static const char *activation(Builder *b, const aec_layer_info *l, const char *x) {
    switch (l->act) {
    case AEC_ACT_LINEAR: return x;
    case AEC_ACT_RELU: return node(b, "Relu", IN(x), NULL);
    case AEC_ACT_LEAKY_RELU:
        return node(b, "LeakyRelu", IN(x), ATTRS(attr_float(b, "alpha", l->act_alpha)));
    case AEC_ACT_SIGMOID: return node(b, "Sigmoid", IN(x), NULL);
    case AEC_ACT_TANH: return node(b, "Tanh", IN(x), NULL);
    case AEC_ACT_ELU: return node(b, "Elu", IN(x), ATTRS(attr_float(b, "alpha", l->act_alpha)));
    case AEC_ACT_SOFTPLUS: return node(b, "Softplus", IN(x), NULL);
    case AEC_ACT_GELU: { /* x·Φ(x) = x·(1 + erf(x/√2))/2 */
        const char *e =
            node(b, "Erf", IN(node(b, "Div", IN(x, scalar(b, "sqrt2", sqrt(2))), NULL)), NULL);
        const char *p = node(b, "Add", IN(e, scalar(b, "one", 1)), NULL);
        return node(b, "Mul", IN(node(b, "Mul", IN(x, p), NULL), scalar(b, "half", 0.5)), NULL);
    }
    default: return NULL;
    }
}

/* One layer of x; NULL for a layer this exporter does not know. */
static const char *layer(Builder *b, const aec_layer_info *l, const char *x) {
    int64_t k[2] = {l->kh, l->kw}, s[2] = {l->stride, l->stride};
    const char *y;
    switch (l->kind) {
    case AEC_LAYER_DENSE: /* x·Wᵀ + b; a tied layer: x·W of the encoder's W */
        y = node(b, "Gemm", IN(x, param(b, l->weight), param(b, l->bias)),
                 ATTRS(attr_int(b, "transB", l->transposed ? 0 : 1)));
        break;
    case AEC_LAYER_CONV: {
        int64_t pads[4] = {l->pad_h, l->pad_w, l->pad_h + l->pad_extra_h,
                           l->pad_w + l->pad_extra_w};
        y = node(b, "Conv", IN(x, param(b, l->weight), param(b, l->bias)),
                 ATTRS(attr_ints(b, "kernel_shape", 2, k), attr_ints(b, "strides", 2, s),
                       attr_ints(b, "pads", 4, pads)));
        break;
    }
    case AEC_LAYER_DECONV: {
        int64_t pads[4] = {l->pad_h, l->pad_w, l->pad_h, l->pad_w};
        int64_t extra[2] = {l->pad_extra_h, l->pad_extra_w};
        y = node(b, "ConvTranspose", IN(x, param(b, l->weight), param(b, l->bias)),
                 ATTRS(attr_ints(b, "kernel_shape", 2, k), attr_ints(b, "strides", 2, s),
                       attr_ints(b, "pads", 4, pads), attr_ints(b, "output_padding", 2, extra)));
        break;
    }
    case AEC_LAYER_MAXPOOL:
    case AEC_LAYER_AVGPOOL:
        y = node(b, l->kind == AEC_LAYER_MAXPOOL ? "MaxPool" : "AveragePool", IN(x),
                 ATTRS(attr_ints(b, "kernel_shape", 2, k), attr_ints(b, "strides", 2, s)));
        break;
    case AEC_LAYER_UPSAMPLE: {
        float scales[4] = {1, 1, (float)l->kh, (float)l->kw};
        y = node(b, "Resize",
                 IN(x, "", vector(b, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, NULL, scales)),
                 ATTRS(attr_string(b, "mode", "nearest"),
                       attr_string(b, "coordinate_transformation_mode", "asymmetric"),
                       attr_string(b, "nearest_mode", "floor")));
        break;
    }
    case AEC_LAYER_BATCHNORM:
        y = node(b, "BatchNormalization",
                 IN(x, param(b, l->weight), param(b, l->bias), param(b, l->running_mean),
                    param(b, l->running_var)),
                 ATTRS(attr_float(b, "epsilon", l->eps)));
        break;
    case AEC_LAYER_DROPOUT: y = x; break; /* training only */
    case AEC_LAYER_FLATTEN: y = node(b, "Flatten", IN(x), ATTRS(attr_int(b, "axis", 1))); break;
    case AEC_LAYER_RESHAPE: {
        int64_t shape[4] = {0}; /* 0: the batch, copied from the input (keeps "N") */
        for (int i = 0; i < l->out_ndim; i++)
            shape[i + 1] = l->out_shape[i];
        y = node(
            b, "Reshape",
            IN(x, vector(b, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, l->out_ndim + 1, shape, NULL)),
            NULL);
        break;
    }
    case AEC_LAYER_ACT: y = x; break;
    default: return NULL;
    }
    return activation(b, l, y);
}

/* ----------------------------------------------------------------- graph */

/* A graph input or output: name, [N, shape...] of the element type. */
static Onnx__ValueInfoProto *value_info(Builder *b, const char *name, int ndim,
                                        const int32_t *shape) {
    Onnx__ValueInfoProto *v = b_alloc(b, sizeof *v);
    Onnx__TypeProto *t = b_alloc(b, sizeof *t);
    Onnx__TypeProto__Tensor *tt = b_alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sp = b_alloc(b, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dims = b_alloc(b, sizeof *dims * (size_t)(ndim + 1));
    if (!v || !t || !tt || !sp || !dims) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(t);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    for (int i = 0; i <= ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = b_alloc(b, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (i == 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = "N";
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = shape[i - 1];
        }
        dims[i] = d;
    }
    sp->n_dim = (size_t)ndim + 1;
    sp->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = b->elem;
    tt->shape = sp;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->name = (char *)name;
    v->type = t;
    return v;
}

/* The layers of `part` in order, from x; NULL after reporting one it
 * cannot express. */
static const char *run_part(Builder *b, int part, const char *x) {
    const aec_model *m = b->m;
    for (int i = 0; i < m->n_layers && x; i++) {
        const aec_layer_info *l = &m->layers[i];
        if (l->part != part) continue;
        const char *y = layer(b, l, x);
        if (!y)
            aec_error("export: layer %d of model %s has kind %d, which has no ONNX form", i,
                      m->name, l->kind);
        x = y;
    }
    return x;
}

static void builder_free(Builder *b) {
    for (size_t i = 0; i < b->n_allocs; i++)
        free(b->allocs[i]);
    free(b->allocs);
    free(b->nodes);
    free(b->inits);
}

const char *const aec_onnx_parts[] = {"autoencoder", "encoder", "decoder", NULL};

int aec_onnx_export(const aec_model *m, const void *params, int part, const char *path) {
    if (!m->layers || m->n_layers < 1) {
        aec_error("model %s has no layer table (built by an aec before ABI 7?)", m->name);
        return AEC_EUNSUPPORTED;
    }
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1) { /* raw_data is little-endian */
        aec_error("export: ONNX initializers are little-endian; this host is not");
        return AEC_EUNSUPPORTED;
    }
    Builder b = {.m = m,
                 .params = params,
                 .elem = m->dtype == AEC_F64 ? ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE
                                             : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT};
    int32_t code_shape[1] = {(int32_t)m->code_size};
    const aec_layer_info *last = NULL; /* the decoder's last layer gives x_hat's shape */
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].part == AEC_PART_DECODER) last = &m->layers[i];
    bool from_code = part == 2, to_code = part == 1;
    const char *in = from_code ? "code" : "x", *x = in;
    if (!from_code) {
        x = run_part(&b, AEC_PART_ENCODER, x);
        if (x && m->variational) x = run_part(&b, AEC_PART_LATENT_MU, x);
    }
    if (x && !to_code) x = run_part(&b, AEC_PART_DECODER, x);
    int st = x ? AEC_OK : AEC_EUNSUPPORTED;
    /* The output is named by an Identity, so that it has its own name even
     * when the graph is empty (a part with no layers). */
    const char *out_name = to_code ? "code" : "x_hat";
    Onnx__ValueInfoProto *inputs[1], *outputs[1];
    if (!st) {
        Onnx__NodeProto *n = b_alloc(&b, sizeof *n);
        char **ins = b_alloc(&b, sizeof *ins), **outs = b_alloc(&b, sizeof *outs);
        if (n && ins && outs) {
            onnx__node_proto__init(n);
            n->op_type = "Identity";
            n->name = "output";
            ins[0] = (char *)x;
            outs[0] = (char *)out_name;
            n->n_input = n->n_output = 1;
            n->input = ins;
            n->output = outs;
            push(&b, (void ***)&b.nodes, &b.n_nodes, &b.cap_nodes, n);
        }
        inputs[0] = from_code ? value_info(&b, in, 1, code_shape)
                              : value_info(&b, in, m->input_ndim, m->input_shape);
        outputs[0] = to_code ? value_info(&b, out_name, 1, code_shape)
                     : last  ? value_info(&b, out_name, last->out_ndim, last->out_shape)
                             : value_info(&b, out_name, m->input_ndim, m->input_shape);
    }
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    if (!st && b.failed) st = AEC_ENOMEM;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!st) {
        g.name = b_printf(&b, "%s_%s", m->name, aec_onnx_parts[part]);
        g.doc_string = (char *)(m->summary ? m->summary : "");
        g.n_node = b.n_nodes;
        g.node = b.nodes;
        g.n_initializer = b.n_inits;
        g.initializer = b.inits;
        g.n_input = g.n_output = 1;
        g.input = inputs;
        g.output = outputs;
        opset.domain = "";
        opset.has_version = 1;
        opset.version = OPSET;
        model.has_ir_version = 1;
        model.ir_version = IR_VERSION;
        model.n_opset_import = 1;
        model.opset_import = opsets;
        model.producer_name = "aec";
        model.producer_version = AEC_VERSION;
        model.graph = &g;
        len = onnx__model_proto__get_packed_size(&model);
        buf = malloc(len ? len : 1);
        if (!buf || b.failed)
            st = AEC_ENOMEM;
        else
            onnx__model_proto__pack(&model, buf);
    }
    if (st == AEC_ENOMEM) aec_error("export: out of memory building the ONNX graph");
    aec_atomic file;
    if (!st) st = aec_atomic_begin(&file, path);
    if (!st) {
        fwrite(buf, 1, len, file.f);
        st = aec_atomic_commit(&file);
    }
    free(buf);
    builder_free(&b);
    return st;
}
