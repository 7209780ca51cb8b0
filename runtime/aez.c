/* aez.c — the .aez container: a data set stored as quantized codes.
 *
 * Takes a model's codes (n, c) and produces a file of their per-dimension
 * uniform quantization; reads one back, verified. Layout (little-endian):
 *
 *   offset  size    field
 *   0       8       magic  89 'A' 'E' 'Z' 0D 0A 1A 0A  (PNG's trick: text-mode
 *                   transfers and 7-bit channels visibly break it)
 *   8       4       version, 1
 *   12      4       layout hash: CRC-32 of the model's parameter layout
 *                   (aec_layout_hash), so another model's file is refused
 *   16      8       n, the sample count
 *   24      4       c, the code size
 *   28      4       b, bits per value (1..16; compress offers 4, 8, 16)
 *   32      2       L, the model name's length
 *   34      L       the model name (no NUL)
 *   34+L    8c      per dimension j: lo_j, hi_j (float32), its range over the data
 *   34+L+8c B       the codes, B = ceil(n·c·b / 8) bytes: value i of the
 *                   row-major (n, c) array is the unsigned integer in bits
 *                   [i·b, (i+1)·b) of the stream, least significant bit
 *                   first (bit k of the stream is bit k%8 of byte k/8)
 *   end−4   4       CRC-32 (zlib's crc32) of every byte before it
 *
 * Value q of dimension j stands for lo_j + q·(hi_j − lo_j)/(2^b − 1); a
 * code is off by at most half that step.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "apps.h"

static const unsigned char MAGIC[8] = {0x89, 'A', 'E', 'Z', 0x0D, 0x0A, 0x1A, 0x0A};
#define AEZ_VERSION 1
#define HEADER_FIXED 34 /* bytes before the model name */

uint32_t aec_layout_hash(const aec_model *m) {
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%s;%lld;%lld;", aec_dtype_name(m->dtype),
                       (long long)m->input_size, (long long)m->code_size);
    uLong crc = crc32(0L, (const Bytef *)buf, (uInt)len);
    for (int i = 0; i < m->n_tensors; i++) {
        const aec_tensor_info *t = &m->tensors[i];
        len = snprintf(buf, sizeof buf, "%s:%d,%d,%d,%d/%d;", t->name, t->shape[0],
                       t->ndim > 1 ? t->shape[1] : 0, t->ndim > 2 ? t->shape[2] : 0,
                       t->ndim > 3 ? t->shape[3] : 0, t->ndim);
        crc = crc32(crc, (const Bytef *)buf, (uInt)len);
    }
    return (uint32_t)crc;
}

static void alloc_fields(aec_aez *z) {
    z->lo = malloc((size_t)z->code_size * sizeof *z->lo + 1);
    z->hi = malloc((size_t)z->code_size * sizeof *z->hi + 1);
    z->q = malloc((size_t)(z->n * z->code_size) * sizeof *z->q + 1);
}

int aec_aez_quantize(const aec_model *m, const void *codes, int64_t n, int bits, aec_aez *z) {
    memset(z, 0, sizeof *z);
    snprintf(z->model, sizeof z->model, "%s", m->name);
    z->layout_hash = aec_layout_hash(m);
    z->n = n;
    z->code_size = m->code_size;
    z->bits = bits;
    alloc_fields(z);
    if (!z->lo || !z->hi || !z->q) {
        aec_error("out of memory for %lld codes", (long long)n);
        return AEC_ENOMEM;
    }
    int64_t c = z->code_size;
    double top = (double)((1u << bits) - 1);
    for (int64_t j = 0; j < c; j++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            double v = aec_get(codes, m->dtype, i * c + j);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        z->lo[j] = n ? (float)lo : 0;
        z->hi[j] = n ? (float)hi : 0;
        /* The range as stored (float32), so dequantizing inverts this exactly. */
        double step = ((double)z->hi[j] - z->lo[j]) / top;
        for (int64_t i = 0; i < n; i++) {
            double v = step > 0 ? (aec_get(codes, m->dtype, i * c + j) - z->lo[j]) / step : 0;
            long q = lround(v);
            z->q[i * c + j] = (uint16_t)(q < 0 ? 0 : q > (long)top ? (long)top : q);
        }
    }
    return AEC_OK;
}

void aec_aez_dequantize(const aec_aez *z, int dtype, void *out) {
    double top = (double)((1u << z->bits) - 1);
    for (int64_t i = 0; i < z->n; i++)
        for (int64_t j = 0; j < z->code_size; j++) {
            double step = ((double)z->hi[j] - z->lo[j]) / top;
            aec_set(out, dtype, i * z->code_size + j, z->lo[j] + z->q[i * z->code_size + j] * step);
        }
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_le(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

static size_t packed_bytes(int64_t values, int bits) {
    return (size_t)(((uint64_t)values * (uint64_t)bits + 7) / 8);
}

int aec_aez_write(const char *path, const aec_aez *z, int64_t *bytes) {
    size_t name = strlen(z->model), c = (size_t)z->code_size;
    size_t total = HEADER_FIXED + name + 8 * c + packed_bytes(z->n * z->code_size, z->bits) + 4;
    unsigned char *b = calloc(total, 1);
    if (!b) {
        aec_error("%s: out of memory for %zu bytes", path, total);
        return AEC_ENOMEM;
    }
    memcpy(b, MAGIC, 8);
    put_le(b + 8, AEZ_VERSION, 4);
    put_le(b + 12, z->layout_hash, 4);
    put_le(b + 16, (uint64_t)z->n, 8);
    put_le(b + 24, c, 4);
    put_le(b + 28, (uint64_t)z->bits, 4);
    put_le(b + 32, name, 2);
    memcpy(b + HEADER_FIXED, z->model, name);
    unsigned char *p = b + HEADER_FIXED + name;
    for (size_t j = 0; j < c; j++) {
        memcpy(p + 8 * j, &z->lo[j], 4);
        memcpy(p + 8 * j + 4, &z->hi[j], 4);
    }
    p += 8 * c;
    uint64_t bit = 0;
    for (int64_t i = 0; i < z->n * z->code_size; i++)
        for (int k = 0; k < z->bits; k++, bit++)
            if (z->q[i] >> k & 1) p[bit / 8] |= (unsigned char)(1u << (bit % 8));
    put_le(b + total - 4, crc32(0L, b, (uInt)(total - 4)), 4);
    aec_atomic a;
    int st = aec_atomic_begin(&a, path);
    if (!st) {
        fwrite(b, 1, total, a.f);
        st = aec_atomic_commit(&a);
    }
    free(b);
    if (bytes) *bytes = (int64_t)total;
    return st;
}

/* The whole file, or an error naming it. */
static int read_all(const char *path, unsigned char **out, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        aec_error("%s: cannot open: %s", path, strerror(errno));
        return AEC_EIO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *q = realloc(b, cap *= 2);
        if (!q) free(b);
        b = q;
    }
    int err = ferror(f);
    fclose(f);
    if (!b || err) {
        free(b);
        aec_error("%s: %s", path, b ? "read failed" : "out of memory");
        return b ? AEC_EIO : AEC_ENOMEM;
    }
    *out = b;
    *size = n;
    return AEC_OK;
}

int aec_aez_read(const char *path, const aec_model *m, aec_aez *z) {
    memset(z, 0, sizeof *z);
    unsigned char *b;
    size_t size;
    int st = read_all(path, &b, &size);
    if (st) return st;
    st = AEC_EFORMAT;
    if (size < 8 || memcmp(b, MAGIC, 8) != 0) {
        aec_error("%s: not an .aez file (bytes 0..7 are not the magic 89 'AEZ' 0D 0A 1A 0A)", path);
        goto done;
    }
    if (size < HEADER_FIXED + 4) {
        aec_error("%s: truncated: %zu bytes, the header alone takes %d", path, size,
                  HEADER_FIXED + 4);
        goto done;
    }
    uint32_t version = (uint32_t)get_le(b + 8, 4);
    if (version != AEZ_VERSION) {
        aec_error("%s: .aez version %u at offset 8; this runtime reads version %d", path, version,
                  AEZ_VERSION);
        goto done;
    }
    z->layout_hash = (uint32_t)get_le(b + 12, 4);
    z->n = (int64_t)get_le(b + 16, 8);
    z->code_size = (int64_t)get_le(b + 24, 4);
    z->bits = (int32_t)get_le(b + 28, 4);
    size_t name = (size_t)get_le(b + 32, 2);
    /* The value count n·c is bounded too: n and c at their limits overflow
     * int64 (found by review of fuzz_aez: signed overflow computing `want`). */
    int64_t values;
    if (z->bits < 1 || z->bits > 16 || z->n < 0 || z->n > ((int64_t)1 << 40) || z->code_size < 1 ||
        z->code_size > (1 << 24) || __builtin_mul_overflow(z->n, z->code_size, &values) ||
        values > ((int64_t)1 << 40)) {
        aec_error("%s: header out of range at offset 16..31: %lld samples, code size %lld, "
                  "%d bits",
                  path, (long long)z->n, (long long)z->code_size, z->bits);
        goto done;
    }
    size_t want =
        HEADER_FIXED + name + 8 * (size_t)z->code_size + packed_bytes(values, z->bits) + 4;
    if (size != want) {
        aec_error("%s: %s: the header (%lld samples x %lld values x %d bits) needs %zu bytes, the "
                  "file has %zu",
                  path, size < want ? "truncated" : "trailing bytes", (long long)z->n,
                  (long long)z->code_size, z->bits, want, size);
        goto done;
    }
    uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(size - 4)),
             stored = (uint32_t)get_le(b + size - 4, 4);
    if (crc != stored) {
        aec_error("%s: corrupt: CRC-32 %08x of bytes 0..%zu, the file says %08x (offset %zu)", path,
                  crc, size - 5, stored, size - 4);
        goto done;
    }
    snprintf(z->model, sizeof z->model, "%.*s", (int)name, (const char *)b + HEADER_FIXED);
    if (m && (strcmp(z->model, m->name) || z->layout_hash != aec_layout_hash(m))) {
        aec_error("%s holds codes of model %s (layout %08x); this is model %s (layout %08x)", path,
                  z->model, z->layout_hash, m->name, aec_layout_hash(m));
        st = AEC_EMISMATCH;
        goto done;
    }
    if (m && z->code_size != m->code_size) {
        aec_error("%s: code size %lld, model %s has %lld", path, (long long)z->code_size, m->name,
                  (long long)m->code_size);
        st = AEC_EMISMATCH;
        goto done;
    }
    alloc_fields(z);
    if (!z->lo || !z->hi || !z->q) {
        aec_error("%s: out of memory for %lld codes", path, (long long)z->n);
        st = AEC_ENOMEM;
        goto done;
    }
    const unsigned char *p = b + HEADER_FIXED + name;
    for (int64_t j = 0; j < z->code_size; j++) {
        memcpy(&z->lo[j], p + 8 * j, 4);
        memcpy(&z->hi[j], p + 8 * j + 4, 4);
    }
    p += 8 * z->code_size;
    uint64_t bit = 0;
    for (int64_t i = 0; i < z->n * z->code_size; i++) {
        unsigned v = 0;
        for (int k = 0; k < z->bits; k++, bit++)
            v |= (unsigned)(p[bit / 8] >> (bit % 8) & 1) << k;
        z->q[i] = (uint16_t)v;
    }
    st = AEC_OK;
done:
    free(b);
    return st;
}

void aec_aez_free(aec_aez *z) {
    free(z->lo);
    free(z->hi);
    free(z->q);
    z->lo = z->hi = NULL;
    z->q = NULL;
}
