/* layout.c — the checked layers as a Model: PyTorch names and the params block.
 *
 * Takes the checker's final drafts; produces Model.layers (encoder,
 * decoder, latent heads), every parameter tensor named as PyTorch's
 * nn.Sequential names it ("encoder.0.weight") with its shape, kind and
 * fan-in/out, placed in the params block (trainable tensors first, then
 * buffers, each offset the running sum), the counts of parameters and
 * FLOPs, and the facts later stages ask of a model: its C symbol prefix and
 * the layer-wise pretraining stages with the tensors each trains.
 */
#include <ctype.h>
#include <string.h>

#include "check.h"

static int add_tensor(Checker *c, int layer, const char *prefix, const char *what, int kind,
                      int ndim, const int *shape, long fan_in, long fan_out) {
    Model *m = c->m;
    ParamTensor t = {0};
    t.name = arena_printf(c->arena, "%s.%s", prefix, what);
    t.ndim = ndim;
    t.numel = 1;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        t.numel = lim_mul(t.numel, shape[i]); /* saturates: check_limits refuses it */
    }
    t.kind = kind;
    t.fan_in = fan_in;
    t.fan_out = fan_out;
    t.layer = layer;
    ensure(m->ntensors < 4 * m->nlayers + 8); /* at most 4 per layer, as allocated */
    m->tensors[m->ntensors] = t;
    return m->ntensors++;
}

/* A layer's tensors: trainable ones (buffers == false) or its buffers. */
static void layer_tensors(Checker *c, int li, const char *prefix, bool buffers) {
    Layer *l = &c->m->layers[li];
    int in_c = l->in.dim[0];
    switch (l->kind) {
    case LY_DENSE:
        if (buffers) break;
        if (l->tied_to < 0)
            l->weight = add_tensor(c, li, prefix, "weight", AEC_TENSOR_WEIGHT, 2,
                                   (int[]){l->units, in_c}, in_c, l->units);
        l->bias = add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, in_c,
                             l->units);
        break;
    case LY_CONV:
    case LY_DECONV: {
        if (buffers) break;
        long rf = lim_mul(l->kh, l->kw); /* saturating, as every size from a spec */
        /* PyTorch computes fans from the weight's dims 1 and 0: for a deconv,
         * whose weight is [in, out, kh, kw], fan_in is out·kh·kw. */
        long fan_in = lim_mul(l->kind == LY_CONV ? in_c : l->units, rf);
        long fan_out = lim_mul(l->kind == LY_CONV ? l->units : in_c, rf);
        int shape[4] = {l->units, in_c, l->kh, l->kw};
        if (l->kind == LY_DECONV) shape[0] = in_c, shape[1] = l->units;
        if (l->tied_to < 0)
            l->weight =
                add_tensor(c, li, prefix, "weight", AEC_TENSOR_WEIGHT, 4, shape, fan_in, fan_out);
        l->bias = add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, fan_in,
                             fan_out);
        break;
    }
    case LY_BATCHNORM:
        /* gamma and beta: trainable, not decayed (initialized to 1 and 0). */
        if (!buffers) {
            l->weight =
                add_tensor(c, li, prefix, "weight", AEC_TENSOR_BIAS, 1, (int[]){l->units}, 0, 0);
            l->bias =
                add_tensor(c, li, prefix, "bias", AEC_TENSOR_BIAS, 1, (int[]){l->units}, 0, 0);
        } else {
            l->running_mean = add_tensor(c, li, prefix, "running_mean", AEC_TENSOR_BUFFER, 1,
                                         (int[]){l->units}, 0, 0);
            l->running_var = add_tensor(c, li, prefix, "running_var", AEC_TENSOR_BUFFER, 1,
                                        (int[]){l->units}, 0, 0);
        }
        break;
    default: break;
    }
}

/* The PyTorch nn.Sequential module count of a layer: a dense/conv/deconv
 * with a non-linear activation is the Linear/Conv module then the
 * activation module; everything else is one module. */
static int modules_of(const Layer *l) {
    return has_act_field(l->kind) && l->act != ACT_LINEAR ? 2 : 1;
}

const char *layer_prefix(Arena *a, const Model *m, int i) {
    if (i == m->latent_mu) return "latent.mu";
    if (i == m->latent_logvar) return "latent.logvar";
    return arena_printf(a, "%s.%d", m->layers[i].in_decoder ? "decoder" : "encoder",
                        m->layers[i].module_index);
}

/* Layers in the order tensors are laid out: encoder, latent heads, decoder. */
int walk_order(const Model *m, int k) {
    int nh = m->nlayers - m->n_encoder - m->n_decoder;
    if (k < m->n_encoder) return k;
    if (k < m->n_encoder + nh) return m->n_encoder + m->n_decoder + (k - m->n_encoder);
    return k - nh;
}

/* The index of the k-th (from 1) dense layer in [from, to), or `to`. */
static int nth_dense(const Model *m, int from, int to, int k) {
    for (int i = from; i < to; i++)
        if (m->layers[i].kind == LY_DENSE && --k == 0) return i;
    return to;
}

/* What later stages ask of the model: its symbol prefix (a C identifier
 * from the name), the layer-wise pretraining stages and which tensors each
 * trains. */
static void derive_facts(Checker *c) {
    Model *m = c->m;
    char *s = arena_strdup(c->arena, m->name);
    for (char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p)) *p = '_';
    if (isdigit((unsigned char)s[0])) s = arena_printf(c->arena, "m_%s", s);
    m->symbol = s;

    m->nstages = 0;
    if (m->train.pretrain_epochs > 0)
        for (int i = 0; i < m->n_encoder; i++)
            m->nstages += m->layers[i].kind == LY_DENSE;
    int K = m->nstages, dec0 = m->n_encoder, dec_end = m->n_encoder + m->n_decoder;
    m->stages = arena_alloc(c->arena, sizeof(ModelStage) * (size_t)(K + 1));
    for (int k = 1; k <= K; k++) {
        ModelStage *st = &m->stages[k - 1];
        st->in_to = st->enc_from = nth_dense(m, 0, m->n_encoder, k);
        st->enc_to = nth_dense(m, 0, m->n_encoder, k + 1);
        st->dec_from = nth_dense(m, dec0, dec_end, K + 1 - k);
        st->dec_to = k > 1 ? nth_dense(m, dec0, dec_end, K + 2 - k) : dec_end;
        ensure(st->dec_from < dec_end);
        for (int t = 0; t < m->ntensors; t++) {
            int l = m->tensors[t].layer;
            if (m->tensors[t].kind != AEC_TENSOR_BUFFER &&
                ((l >= st->enc_from && l < st->enc_to) || (l >= st->dec_from && l < st->dec_to)))
                m->tensors[t].stage = k;
        }
    }
}

bool model_trains(const Model *m, int stage, int tensor) {
    if (m->tensors[tensor].kind == AEC_TENSOR_BUFFER) return false;
    return stage == 0 || m->tensors[tensor].stage == stage;
}

/* The limits of docs/reliability.md: sizes that no machine (LIM_BYTES) or
 * not this one (its physical memory) can hold are refused at check time,
 * named, rather than failing at an allocation or overflowing later. Bytes
 * are counted at 4 per value (f32; --dtype f64 doubles them). */
static void check_limits(Checker *c, long acts) {
    Model *m = c->m;
    Arena *A = c->arena;
    long mem = limits_memory();
    int batch = m->train.batch > 0 ? m->train.batch : 1;
    struct {
        const char *what;
        long bytes;
    } sizes[] = {
        {arena_printf(A, "its parameters (%s values)", lim_commas(A, m->param_count)),
         lim_mul(m->param_count, 4)},
        {arena_printf(A, "the activations of one training batch (%s values per sample, batch %d)",
                      lim_commas(A, acts), batch),
         lim_mul(lim_mul(acts, batch), 4)},
    };
    for (int i = 0; i < countof(sizes); i++) {
        long b = sizes[i].bytes;
        if (b > LIM_BYTES)
            diag_error(m->loc, "model %s is too large: %s take %s, more than aec's limit of %s",
                       m->name, sizes[i].what, lim_bytes_str(A, b), lim_bytes_str(A, LIM_BYTES));
        else if (b > mem)
            diag_error(m->loc,
                       "model %s is too large: %s take %s, more than this machine's "
                       "memory (%s)",
                       m->name, sizes[i].what, lim_bytes_str(A, b), lim_bytes_str(A, mem));
        else
            continue;
        return; /* the first size over is the one to fix */
    }
    if (m->flops == LIM_INF)
        diag_error(m->loc,
                   "model %s is too large: its forward FLOPs per sample overflow a "
                   "64-bit count",
                   m->name);
}

void assemble(Checker *c) {
    Model *m = c->m;
    Arena *A = c->arena;
    m->n_encoder = c->enc.n;
    m->n_decoder = c->dec.n;
    m->nlayers = c->enc.n + c->dec.n + c->heads.n;
    m->layers = arena_alloc(A, sizeof(Layer) * (size_t)(m->nlayers ? m->nlayers : 1));
    int n = 0, module = 0;
    for (int i = 0; i < c->enc.n; i++, n++) {
        m->layers[n] = c->enc.items[i].l;
        m->layers[n].module_index = module;
        module += modules_of(&m->layers[n]);
    }
    module = 0;
    for (int i = 0; i < c->dec.n; i++, n++) {
        m->layers[n] = c->dec.items[i].l;
        m->layers[n].module_index = module;
        module += modules_of(&m->layers[n]);
    }
    m->latent_mu = m->latent_logvar = -1;
    if (c->heads.n == 2) {
        m->latent_mu = n;
        m->latent_logvar = n + 1;
        m->layers[n++] = c->heads.items[0].l;
        m->layers[n++] = c->heads.items[1].l;
    }
    for (int i = 0; i < c->dec.n; i++) {
        int tie = c->dec.items[i].tie;
        m->layers[m->n_encoder + i].tied_to = tie == TIE_LATENT_MU ? m->latent_mu : tie;
    }

    m->tensors = arena_alloc(A, sizeof(ParamTensor) * (size_t)(4 * m->nlayers + 8));
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < m->nlayers; k++)
            layer_tensors(c, walk_order(m, k), layer_prefix(A, m, walk_order(m, k)), pass == 1);
    long offset = 0;
    for (int i = 0; i < m->ntensors; i++) {
        ParamTensor *t = &m->tensors[i];
        t->offset = offset;
        offset = lim_add(offset, t->numel);
        if (t->kind != AEC_TENSOR_BUFFER)
            m->trainable_count = lim_add(m->trainable_count, t->numel);
    }
    m->param_count = offset;
    long acts = 0; /* every layer's output, per sample: what a training step keeps */
    for (int i = 0; i < m->nlayers; i++) {
        Layer *l = &m->layers[i];
        if (l->tied_to >= 0) l->params = l->units; /* only the bias is its own */
        m->flops = lim_add(m->flops, l->flops);
        acts = lim_add(acts, shape_numel(l->out));
    }
    check_limits(c, acts);
    derive_facts(c);
}
