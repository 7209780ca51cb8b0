/* ckpt.c — checkpoints as safetensors, and files written atomically.
 *
 * A checkpoint is a safetensors file: an 8-byte little-endian header length
 * N, N bytes of JSON (padded with spaces to a multiple of 8) mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]} plus
 * "__metadata__" (string to string), then the raw little-endian data.
 *
 * The model's tensors are stored under their PyTorch names and shapes, so a
 * file loads into the equivalent nn.Sequential. A training checkpoint adds
 * "optimizer.state" [opt_state_count] (the optimizer's moment buffers as one
 * block), "train.params" [param_count] when the named tensors hold early
 * stopping's best weights rather than the live ones, and the training state
 * (step, epoch, early-stopping counters, seed, batch) as metadata.
 *
 * Invariants: a file is only ever replaced whole (aec_atomic_*, file.c:
 * temporary + fsync + rename), so a crash leaves the previous checkpoint
 * intact; loading checks every name, dtype and shape before reading any
 * data, and names the first mismatch in the model's tensor order.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

/* ------------------------------------------------------------------ saving */

static json_object *json_shape(int ndim, const int64_t *shape) {
    json_object *a = json_object_new_array();
    for (int k = 0; k < ndim; k++)
        json_object_array_add(a, json_object_new_int64(shape[k]));
    return a;
}

/* Appends one tensor's entry; *offset advances past its data. */
static void add_entry(json_object *h, const char *name, int dtype, int ndim, const int64_t *shape,
                      int64_t numel, int64_t *offset) {
    json_object *e = json_object_new_object();
    int64_t end = *offset + numel * (int64_t)aec_dtype_size(dtype);
    json_object_object_add(e, "dtype", json_object_new_string(aec_dtype_name(dtype)));
    json_object_object_add(e, "shape", json_shape(ndim, shape));
    json_object *off = json_object_new_array();
    json_object_array_add(off, json_object_new_int64(*offset));
    json_object_array_add(off, json_object_new_int64(end));
    json_object_object_add(e, "data_offsets", off);
    json_object_object_add(h, name, e);
    *offset = end;
}

static void meta_int(json_object *meta, const char *key, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    json_object_object_add(meta, key, json_object_new_string(buf));
}

/* %.17g round-trips a double exactly, which exact resume relies on. */
static void meta_double(json_object *meta, const char *key, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    json_object_object_add(meta, key, json_object_new_string(buf));
}

static json_object *metadata(const aec_model *m, const aec_train_state *st) {
    json_object *meta = json_object_new_object();
    json_object_object_add(meta, "format", json_object_new_string("aec"));
    json_object_object_add(meta, "model", json_object_new_string(m->name ? m->name : ""));
    meta_int(meta, "abi_version", m->abi_version);
    if (!st) return meta;
    meta_int(meta, "step", st->step);
    meta_int(meta, "epoch", st->epoch);
    meta_int(meta, "batch", st->batch);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)st->seed);
    json_object_object_add(meta, "seed", json_object_new_string(seed));
    meta_double(meta, "best_val", st->best_val);
    meta_int(meta, "best_epoch", st->best_epoch);
    meta_int(meta, "bad_epochs", st->bad_epochs);
    meta_int(meta, "train_samples", st->n_train);
    meta_int(meta, "val_samples", st->n_val);
    meta_double(meta, "train_loss", st->train_loss);
    meta_double(meta, "val_loss", st->val_loss);
    if (st->ratings) json_object_object_add(meta, "ratings", json_object_new_string(st->ratings));
    return meta;
}

int aec_ckpt_save(const char *path, const aec_model *m, const void *weights, const void *opt_state,
                  const void *live_params, const aec_train_state *st) {
    size_t el = aec_dtype_size(m->dtype);
    if (m->opt_state_count == 0) opt_state = NULL;

    json_object *h = json_object_new_object();
    json_object_object_add(h, "__metadata__", metadata(m, st));
    int64_t offset = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const aec_tensor_info *t = &m->tensors[i];
        int64_t shape[4];
        for (int k = 0; k < t->ndim; k++)
            shape[k] = t->shape[k];
        add_entry(h, t->name, m->dtype, t->ndim, shape, t->numel, &offset);
    }
    if (opt_state)
        add_entry(h, AEC_CKPT_OPT_TENSOR, m->dtype, 1, &m->opt_state_count, m->opt_state_count,
                  &offset);
    if (live_params)
        add_entry(h, AEC_CKPT_TRAIN_TENSOR, m->dtype, 1, &m->param_count, m->param_count, &offset);

    const char *text = json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(text), padded = (len + 7) / 8 * 8; /* data starts 8-byte aligned */
    unsigned char n8[8];
    for (int k = 0; k < 8; k++)
        n8[k] = (unsigned char)((uint64_t)padded >> (8 * k));

    aec_atomic a;
    int status = aec_atomic_begin(&a, path);
    if (status) {
        json_object_put(h);
        return status;
    }
    fwrite(n8, 1, 8, a.f);
    fwrite(text, 1, len, a.f);
    for (size_t k = len; k < padded; k++)
        fputc(' ', a.f);
    json_object_put(h);
    for (int i = 0; i < m->n_tensors; i++) {
        const aec_tensor_info *t = &m->tensors[i];
        fwrite((const char *)weights + t->offset * el, el, (size_t)t->numel, a.f);
    }
    if (opt_state) fwrite(opt_state, el, (size_t)m->opt_state_count, a.f);
    if (live_params) fwrite(live_params, el, (size_t)m->param_count, a.f);
    return aec_atomic_commit(&a);
}

/* ----------------------------------------------------------------- loading */

/* One header entry, validated against the data section's size. */
typedef struct Entry {
    int dtype;
    int ndim;
    int64_t shape[8];
    int64_t begin, end;
} Entry;

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t at = (size_t)snprintf(buf, size, "[");
    for (int k = 0; k < ndim && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, k ? ", %lld" : "%lld", (long long)shape[k]);
    if (at < size) snprintf(buf + at, size - at, "]");
}

static int parse_entry(const char *path, const char *name, json_object *o, int64_t data_size,
                       Entry *e) {
    json_object *dtype, *shape, *offs;
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "dtype", &dtype) ||
        !json_object_object_get_ex(o, "shape", &shape) ||
        !json_object_object_get_ex(o, "data_offsets", &offs) ||
        !json_object_is_type(dtype, json_type_string) ||
        !json_object_is_type(shape, json_type_array) ||
        !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2 ||
        json_object_array_length(shape) > 8) {
        aec_error("%s: header: tensor %s: expected {\"dtype\": string, \"shape\": [...], "
                  "\"data_offsets\": [begin, end]}",
                  path, name);
        return AEC_EFORMAT;
    }
    const char *d = json_object_get_string(dtype);
    if (strcmp(d, "F32") == 0)
        e->dtype = AEC_F32;
    else if (strcmp(d, "F64") == 0)
        e->dtype = AEC_F64;
    else {
        aec_error("%s: tensor %s has dtype %s, aec reads F32 or F64", path, name, d);
        return AEC_EMISMATCH;
    }
    e->ndim = (int)json_object_array_length(shape);
    int64_t numel = 1, need = 0;
    bool counted = true; /* no negative dimension, and no count past 64 bits */
    for (int k = 0; k < e->ndim; k++) {
        e->shape[k] = json_object_get_int64(json_object_array_get_idx(shape, (size_t)k));
        counted =
            counted && e->shape[k] >= 0 && !__builtin_mul_overflow(numel, e->shape[k], &numel);
    }
    counted = counted && !__builtin_mul_overflow(numel, (int64_t)aec_dtype_size(e->dtype), &need);
    if (!counted) {
        aec_error("%s: tensor %s: its shape has a negative dimension or more bytes than a file can "
                  "hold",
                  path, name);
        return AEC_EFORMAT;
    }
    e->begin = json_object_get_int64(json_object_array_get_idx(offs, 0));
    e->end = json_object_get_int64(json_object_array_get_idx(offs, 1));
    if (e->begin < 0 || e->end < e->begin) { /* (then end − begin may not even be a number) */
        aec_error("%s: tensor %s: data_offsets [%lld, %lld] are not a range of the data", path,
                  name, (long long)e->begin, (long long)e->end);
        return AEC_EFORMAT;
    }
    if (e->end - e->begin != need) {
        aec_error("%s: tensor %s: data_offsets [%lld, %lld] hold %lld bytes, its shape and dtype "
                  "need %lld",
                  path, name, (long long)e->begin, (long long)e->end,
                  (long long)(e->end - e->begin), (long long)need);
        return AEC_EFORMAT;
    }
    if (e->end > data_size) {
        aec_error("%s: truncated: tensor %s needs bytes up to %lld of the data, the file has %lld",
                  path, name, (long long)e->end, (long long)data_size);
        return AEC_EFORMAT;
    }
    return AEC_OK;
}

/* A tensor the model needs: present, a float type, and the model's shape. */
static int check_entry(const char *path, json_object *h, const char *name, int ndim,
                       const int64_t *shape, int64_t data_size, const char *hint, Entry *e) {
    json_object *o;
    char want[128], got[128];
    shape_text(want, sizeof want, ndim, shape);
    if (!json_object_object_get_ex(h, name, &o)) {
        aec_error("%s: tensor %s is missing (the model needs %s)", path, name, want);
        return AEC_EMISMATCH;
    }
    int st = parse_entry(path, name, o, data_size, e);
    if (st) return st;
    int same = e->ndim == ndim;
    for (int k = 0; same && k < ndim; k++)
        same = e->shape[k] == shape[k];
    if (!same) {
        shape_text(got, sizeof got, e->ndim, e->shape);
        aec_error("%s: tensor %s has shape %s, the model needs %s%s", path, name, got, want, hint);
        return AEC_EMISMATCH;
    }
    return AEC_OK;
}

/* Reads count values stored as e->dtype into dst of dtype, converting. */
static int read_values(FILE *f, const char *path, const char *name, int64_t at, const Entry *e,
                       int64_t count, void *dst, int dtype) {
    if (fseeko(f, (off_t)at, SEEK_SET) != 0) goto fail;
    size_t el = aec_dtype_size(e->dtype);
    if (e->dtype == dtype) {
        if (fread(dst, el, (size_t)count, f) != (size_t)count) goto fail;
        return AEC_OK;
    }
    double chunk[512];
    for (int64_t i = 0; i < count;) {
        int64_t k = count - i < 512 ? count - i : 512;
        if (fread(chunk, el, (size_t)k, f) != (size_t)k) goto fail;
        for (int64_t j = 0; j < k; j++)
            aec_set(dst, dtype, i + j, aec_get(chunk, e->dtype, j));
        i += k;
    }
    return AEC_OK;
fail:
    aec_error("%s: cannot read tensor %s: %s", path, name,
              ferror(f) ? strerror(errno) : "unexpected end of file");
    return AEC_EIO;
}

static const char *meta_get(json_object *meta, const char *key) {
    json_object *v;
    if (!meta || !json_object_object_get_ex(meta, key, &v)) return NULL;
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void read_state(json_object *meta, aec_train_state *st, int *has) {
    const char *step = meta_get(meta, "step"), *epoch = meta_get(meta, "epoch");
    if (!step || !epoch) return;
    const char *v;
    memset(st, 0, sizeof *st);
    st->step = strtoll(step, NULL, 10);
    st->epoch = (int32_t)strtol(epoch, NULL, 10);
    st->batch = (v = meta_get(meta, "batch")) ? (int32_t)strtol(v, NULL, 10) : 0;
    st->seed = (v = meta_get(meta, "seed")) ? strtoull(v, NULL, 10) : 0;
    st->best_val = (v = meta_get(meta, "best_val")) ? strtod(v, NULL) : INFINITY;
    st->best_epoch = (v = meta_get(meta, "best_epoch")) ? (int32_t)strtol(v, NULL, 10) : 0;
    st->bad_epochs = (v = meta_get(meta, "bad_epochs")) ? (int32_t)strtol(v, NULL, 10) : 0;
    st->n_train = (v = meta_get(meta, "train_samples")) ? strtoll(v, NULL, 10) : 0;
    st->n_val = (v = meta_get(meta, "val_samples")) ? strtoll(v, NULL, 10) : 0;
    st->train_loss = (v = meta_get(meta, "train_loss")) ? strtod(v, NULL) : NAN;
    st->val_loss = (v = meta_get(meta, "val_loss")) ? strtod(v, NULL) : NAN;
    *has |= AEC_CKPT_STATE;
}

/* Parses the header; *h is the JSON object, *data_at where the data begins. */
static int read_header(FILE *f, const char *path, json_object **h, int64_t *data_at,
                       int64_t *data_size) {
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) return AEC_EIO;
    unsigned char n8[8];
    size_t got = fread(n8, 1, 8, f);
    if (got != 8) {
        aec_error("%s: truncated: expected an 8-byte header length, got %zu bytes", path, got);
        return AEC_EFORMAT;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | n8[k];
    if (n > (uint64_t)sb.st_size - 8 || n > (100u << 20)) {
        aec_error("%s: not a safetensors file: header length %llu, but the file has %lld bytes",
                  path, (unsigned long long)n, (long long)sb.st_size);
        return AEC_EFORMAT;
    }
    char *text = malloc(n + 1);
    if (!text) return AEC_ENOMEM;
    if (fread(text, 1, n, f) != n) {
        free(text);
        aec_error("%s: cannot read the header: %s", path, strerror(errno));
        return AEC_EIO;
    }
    json_tokener *tok = json_tokener_new();
    *h = json_tokener_parse_ex(tok, text, (int)n);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) jerr = json_tokener_error_parse_eof;
    size_t at = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    free(text);
    if (jerr != json_tokener_success || !json_object_is_type(*h, json_type_object)) {
        if (jerr == json_tokener_success)
            aec_error("%s: the safetensors header is not a JSON object", path);
        else
            aec_error("%s: the safetensors header is not valid JSON: %s (at byte %zu of the "
                      "header)",
                      path, json_tokener_error_desc(jerr), at);
        json_object_put(*h);
        *h = NULL;
        return AEC_EFORMAT;
    }
    *data_at = 8 + (int64_t)n;
    *data_size = (int64_t)sb.st_size - *data_at;
    return AEC_OK;
}

static int is_model_tensor(const aec_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return 1;
    return 0;
}

int aec_ckpt_load(const char *path, const aec_model *m, void *weights, void *opt_state,
                  void *live_params, aec_train_state *st, int *has) {
    int found = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        aec_error("%s: cannot open: %s", path, strerror(errno));
        return AEC_EIO;
    }
    json_object *h = NULL;
    int64_t data_at = 0, data_size = 0;
    int status = read_header(f, path, &h, &data_at, &data_size);
    Entry *entries = calloc((size_t)m->n_tensors + 1, sizeof *entries);
    if (!status && !entries) status = AEC_ENOMEM;

    /* Names, dtypes and shapes first, in the model's order, then extras. */
    for (int i = 0; !status && i < m->n_tensors; i++) {
        const aec_tensor_info *t = &m->tensors[i];
        int64_t shape[4];
        for (int k = 0; k < t->ndim; k++)
            shape[k] = t->shape[k];
        status = check_entry(path, h, t->name, t->ndim, shape, data_size, "", &entries[i]);
    }
    Entry opt = {0}, live = {0};
    if (!status) {
        json_object_object_foreach(h, key, val) {
            int st2 = AEC_OK;
            (void)val;
            if (strcmp(key, "__metadata__") == 0 || is_model_tensor(m, key)) continue;
            if (strcmp(key, AEC_CKPT_OPT_TENSOR) == 0) {
                st2 = check_entry(path, h, key, 1, &m->opt_state_count, data_size,
                                  " (was it trained with another optimizer?)", &opt);
                found |= AEC_CKPT_OPT;
            } else if (strcmp(key, AEC_CKPT_TRAIN_TENSOR) == 0) {
                st2 = check_entry(path, h, key, 1, &m->param_count, data_size, "", &live);
                found |= AEC_CKPT_TRAIN;
            } else {
                aec_error("%s: unexpected tensor %s (model %s has no tensor of that name)", path,
                          key, m->name);
                st2 = AEC_EMISMATCH;
            }
            if (st2) {
                status = st2;
                break;
            }
        }
    }

    size_t el = aec_dtype_size(m->dtype);
    for (int i = 0; !status && i < m->n_tensors; i++) {
        const aec_tensor_info *t = &m->tensors[i];
        status = read_values(f, path, t->name, data_at + entries[i].begin, &entries[i], t->numel,
                             (char *)weights + t->offset * el, m->dtype);
    }
    if (!status && opt_state && (found & AEC_CKPT_OPT))
        status = read_values(f, path, AEC_CKPT_OPT_TENSOR, data_at + opt.begin, &opt,
                             m->opt_state_count, opt_state, m->dtype);
    if (!status && live_params && (found & AEC_CKPT_TRAIN))
        status = read_values(f, path, AEC_CKPT_TRAIN_TENSOR, data_at + live.begin, &live,
                             m->param_count, live_params, m->dtype);
    if (!status && st) {
        json_object *meta = NULL;
        json_object_object_get_ex(h, "__metadata__", &meta);
        read_state(meta, st, &found);
    }
    if (has) *has = found;
    free(entries);
    json_object_put(h);
    fclose(f);
    return status;
}

int aec_ckpt_meta(const char *path, const char *key, char **value) {
    *value = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        aec_error("%s: cannot open: %s", path, strerror(errno));
        return AEC_EIO;
    }
    json_object *h = NULL, *meta = NULL;
    int64_t data_at = 0, data_size = 0;
    int status = read_header(f, path, &h, &data_at, &data_size);
    fclose(f);
    if (status) return status;
    json_object_object_get_ex(h, "__metadata__", &meta);
    const char *v = meta_get(meta, key);
    if (v && !(*value = strdup(v))) status = AEC_ENOMEM;
    json_object_put(h);
    return status;
}
