/* data.c — data sets in, arrays out.
 *
 * Takes a file name and produces one contiguous (n, dim) block of the
 * model's element type. Formats, detected by content and then extension:
 *   IDX    (LeCun's MNIST format): magic 00 00 TT ND, ND big-endian uint32
 *          dimensions, then big-endian data; TT is 08 ubyte, 09 byte,
 *          0B short, 0C int, 0D float, 0E double.
 *   .npy   v1/v2/v3, C order, <f4 <f8 |u1 |i1 <i2 <i4 <i8 <u2.. (either
 *          byte order), one sample per leading index.
 *   CSV    one sample per line, comma-separated numbers; a first line that
 *          is not numeric is a header and skipped; an empty field or `nan`
 *          is NaN (a missing value); `#` lines are comments.
 * Any of them may be gzip-compressed: zlib's gzread reads plain files too.
 * Unsigned bytes are pixels, scaled to [0, 1] by 1/255 (unless AEC_DATA_RAW).
 *
 * Every error names the file and says what was expected and what was found
 * (byte offset, line, sample and feature as applicable).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "rt.h"

/* ---------------------------------------------------------------- reading */

typedef struct Bytes {
    unsigned char *p; /* NUL-terminated, so CSV parsing may use strtod */
    size_t n;
} Bytes;

/* The whole (decompressed) file. */
static int slurp(const char *path, Bytes *b) {
    gzFile g = gzopen(path, "rb");
    if (!g) {
        aec_error("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return AEC_EIO;
    }
    /* Buffers start small (below the allocators' mmap threshold) and grow
     * by doubling: a small file costs no page faults (the fuzzer's speed). */
    gzbuffer(g, 1 << 16);
    size_t cap = 1 << 16, n = 0;
    unsigned char *p = malloc(cap + 1);
    for (;;) {
        if (!p) {
            gzclose(g);
            aec_error("%s: out of memory reading %zu bytes", path, n);
            return AEC_ENOMEM;
        }
        if (n == cap) {
            cap *= 2;
            unsigned char *q = realloc(p, cap + 1);
            if (!q) free(p);
            p = q;
            continue;
        }
        size_t want = cap - n < (1u << 30) ? cap - n : (1u << 30);
        int got = gzread(g, p + n, (unsigned)want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(g, &zerr);
            aec_error("%s: read failed after %zu bytes: %s", path, n,
                      zerr == Z_ERRNO ? strerror(errno) : msg);
            gzclose(g);
            free(p);
            return AEC_EIO;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    /* A gzip stream cut short ends the reads early without a negative count. */
    int zerr;
    const char *msg = gzerror(g, &zerr);
    if (zerr != Z_OK) {
        aec_error("%s: the compressed data is truncated or corrupt after %zu bytes: %s", path, n,
                  msg);
        gzclose(g);
        free(p);
        return AEC_EFORMAT;
    }
    gzclose(g);
    p[n] = 0;
    b->p = p;
    b->n = n;
    return AEC_OK;
}

/* ------------------------------------------------------- element decoding */

typedef enum ElemType {
    EL_U8,
    EL_I8,
    EL_U16,
    EL_I16,
    EL_U32,
    EL_I32,
    EL_U64,
    EL_I64,
    EL_F32,
    EL_F64,
} ElemType;

static const int elem_size[] = {1, 1, 2, 2, 4, 4, 8, 8, 4, 8};

static double read_elem(const unsigned char *s, ElemType t, int big_endian) {
    int size = elem_size[t];
    uint64_t u = 0;
    for (int k = 0; k < size; k++) {
        int at = big_endian ? k : size - 1 - k;
        u = u << 8 | s[at];
    }
    switch (t) {
    case EL_U8: return (double)(uint8_t)u;
    case EL_I8: return (double)(int8_t)u;
    case EL_U16: return (double)(uint16_t)u;
    case EL_I16: return (double)(int16_t)u;
    case EL_U32: return (double)(uint32_t)u;
    case EL_I32: return (double)(int32_t)u;
    case EL_U64: return (double)u;
    case EL_I64: return (double)(int64_t)u;
    case EL_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, sizeof f);
        return f;
    }
    case EL_F64: {
        double f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    }
    return NAN;
}

/* Fills d->x with count elements from src; unsigned bytes scale to [0, 1]. */
static int decode_block(const char *path, const unsigned char *src, ElemType t, int big_endian,
                        int flags, aec_data *d) {
    int64_t count = d->n * d->dim;
    d->x = malloc((size_t)(count ? count : 1) * aec_dtype_size(d->dtype));
    if (!d->x) {
        aec_error("%s: out of memory for %lld values", path, (long long)count);
        return AEC_ENOMEM;
    }
    double scale = (t == EL_U8 && !(flags & AEC_DATA_RAW)) ? 1.0 / 255.0 : 1.0;
    int size = elem_size[t];
    d->elem_bytes = size;
    for (int64_t i = 0; i < count; i++)
        aec_set(d->x, d->dtype, i, read_elem(src + i * size, t, big_endian) * scale);
    return AEC_OK;
}

/* Samples are the leading dimension; the rest is one sample's shape. */
static int set_shape(const char *path, aec_data *d, int ndim, const int64_t *dims, int64_t limit) {
    if (ndim < 1) {
        aec_error("%s: holds a scalar, expected an array of samples", path);
        return AEC_EFORMAT;
    }
    d->n = dims[0];
    d->dim = 1;
    d->ndim = ndim - 1 <= 4 ? ndim - 1 : 0;
    for (int k = 1; k < ndim; k++) {
        if (dims[k] > 0 && d->dim > INT64_MAX / 4 / dims[k]) {
            aec_error("%s: dimensions are too large", path);
            return AEC_EFORMAT;
        }
        d->dim *= dims[k];
        if (k - 1 < 4) d->shape[k - 1] = dims[k];
    }
    if (limit > 0 && d->n > limit) d->n = limit;
    return AEC_OK;
}

/* n·dim·size bytes, or INT64_MAX when that overflows (a header's sizes
 * are the file's claim, not yet checked against its length). */
static long long bytes_of(int64_t n, int64_t dim, size_t size) {
    int64_t v;
    if (__builtin_mul_overflow(n, dim, &v) || __builtin_mul_overflow(v, (int64_t)size, &v))
        return INT64_MAX;
    return v;
}

/* The data must hold all of the (possibly limited) samples. */
static int check_length(const char *path, const Bytes *b, size_t header, ElemType t, int64_t n_file,
                        const aec_data *d) {
    long long want = bytes_of(d->n, d->dim, elem_size[t]);
    long long have = (long long)(b->n - header);
    if (want == INT64_MAX) {
        aec_error("%s: %lld samples of %lld values claim more bytes than a file can hold", path,
                  (long long)d->n, (long long)d->dim);
        return AEC_EFORMAT;
    }
    if (have < want) {
        aec_error("%s: truncated: %lld samples of %lld values need %lld bytes of data after the "
                  "%zu-byte header, got %lld",
                  path, (long long)d->n, (long long)d->dim, want, header, have);
        return AEC_EFORMAT;
    }
    long long full = bytes_of(n_file, d->dim, elem_size[t]);
    if (have > full)
        aec_warn("%s: %lld bytes after the data (at byte %lld) are ignored", path, have - full,
                 (long long)header + full);
    return AEC_OK;
}

/* ------------------------------------------------------------------- IDX */

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int load_idx(const char *path, const Bytes *b, int64_t limit, int flags, aec_data *d) {
    if (b->n < 4 || b->p[0] != 0 || b->p[1] != 0) {
        aec_error("%s: byte 0: not an IDX file: magic 0x%08x, expected 0x000008TT..0x00000ETT "
                  "(TT the number of dimensions)",
                  path, b->n >= 4 ? be32(b->p) : 0);
        return AEC_EFORMAT;
    }
    ElemType t;
    switch (b->p[2]) {
    case 0x08: t = EL_U8; break;
    case 0x09: t = EL_I8; break;
    case 0x0B: t = EL_I16; break;
    case 0x0C: t = EL_I32; break;
    case 0x0D: t = EL_F32; break;
    case 0x0E: t = EL_F64; break;
    default:
        aec_error("%s: byte 2: IDX type 0x%02x, expected 08 (ubyte), 09 (byte), 0B (short), "
                  "0C (int), 0D (float) or 0E (double)",
                  path, b->p[2]);
        return AEC_EFORMAT;
    }
    int ndim = b->p[3];
    size_t header = 4 + 4 * (size_t)ndim;
    if (ndim < 1) {
        aec_error("%s: byte 3: an IDX file with 0 dimensions, expected at least 1", path);
        return AEC_EFORMAT;
    }
    if (b->n < header) {
        aec_error("%s: truncated: the header of %d dimensions needs %zu bytes, got %zu", path, ndim,
                  header, b->n);
        return AEC_EFORMAT;
    }
    int64_t dims[256];
    for (int k = 0; k < ndim; k++)
        dims[k] = be32(b->p + 4 + 4 * k);
    int st = set_shape(path, d, ndim, dims, limit);
    if (!st) st = check_length(path, b, header, t, dims[0], d);
    if (!st) st = decode_block(path, b->p + header, t, 1, flags, d);
    d->format = "IDX";
    return st;
}

/* ------------------------------------------------------------------- npy */

/* The value after `'key':` in the header dict, or NULL. */
static const char *npy_field(const char *header, const char *key) {
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", key);
    const char *s = strstr(header, quoted);
    if (!s) {
        snprintf(quoted, sizeof quoted, "\"%s\"", key);
        s = strstr(header, quoted);
    }
    if (!s) return NULL;
    s += strlen(quoted);
    while (isspace((unsigned char)*s))
        s++;
    if (*s++ != ':') return NULL;
    while (isspace((unsigned char)*s))
        s++;
    return s;
}

static int npy_descr(const char *path, const char *s, ElemType *t, int *big_endian, int *is_bool) {
    char descr[16] = "";
    if (s && (*s == '\'' || *s == '"')) {
        const char *end = strchr(s + 1, *s);
        if (end && end - s - 1 < (long)sizeof descr) memcpy(descr, s + 1, (size_t)(end - s - 1));
    }
    static const struct {
        char kind;
        int size;
        ElemType t;
    } types[] = {
        {'u', 1, EL_U8},  {'i', 1, EL_I8},  {'b', 1, EL_U8},  {'u', 2, EL_U16},
        {'i', 2, EL_I16}, {'u', 4, EL_U32}, {'i', 4, EL_I32}, {'u', 8, EL_U64},
        {'i', 8, EL_I64}, {'f', 4, EL_F32}, {'f', 8, EL_F64},
    };
    char order = descr[0], kind = descr[1];
    int size = atoi(descr + 2);
    if (strchr("<>|=", order) && kind)
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
            if (types[k].kind == kind && types[k].size == size && descr[2] >= '0' &&
                descr[2] <= '9') {
                *t = types[k].t;
                *big_endian = order == '>';
                *is_bool = kind == 'b';
                return AEC_OK;
            }
    aec_error("%s: .npy dtype '%s', expected a number type: <f4 <f8 |u1 |i1 <i2 <i4 <i8 (or "
              "unsigned, either byte order)",
              path, descr);
    return AEC_EFORMAT;
}

static int load_npy(const char *path, const Bytes *b, int64_t limit, int flags, aec_data *d) {
    if (b->n < 10 || memcmp(b->p, "\x93NUMPY", 6) != 0) {
        aec_error("%s: byte 0: not a .npy file, expected the magic \\x93NUMPY", path);
        return AEC_EFORMAT;
    }
    int major = b->p[6];
    if (major < 1 || major > 3) {
        aec_error("%s: byte 6: .npy format version %d, expected 1, 2 or 3", path, major);
        return AEC_EFORMAT;
    }
    size_t at = major == 1 ? 10 : 12;
    if (b->n < at) {
        aec_error("%s: truncated: the .npy preamble needs %zu bytes, got %zu", path, at, b->n);
        return AEC_EFORMAT;
    }
    size_t hlen =
        major == 1 ? (size_t)(b->p[8] | b->p[9] << 8)
                   : (size_t)(b->p[8] | b->p[9] << 8 | b->p[10] << 16 | (uint32_t)b->p[11] << 24);
    if (b->n < at + hlen) {
        aec_error("%s: truncated: the .npy header needs %zu bytes, got %zu", path, at + hlen, b->n);
        return AEC_EFORMAT;
    }
    char *header = strndup((const char *)b->p + at, hlen);
    if (!header) return AEC_ENOMEM;

    ElemType t = EL_F32;
    int big_endian = 0, is_bool = 0;
    int st = npy_descr(path, npy_field(header, "descr"), &t, &big_endian, &is_bool);
    const char *fo = npy_field(header, "fortran_order");
    if (!st && (!fo || strncmp(fo, "False", 5) != 0)) {
        aec_error("%s: .npy header: fortran_order is %s, expected False (C order; save with "
                  "np.ascontiguousarray)",
                  path, fo && !strncmp(fo, "True", 4) ? "True" : "missing");
        st = AEC_EFORMAT;
    }
    const char *s = npy_field(header, "shape");
    int64_t dims[16];
    int ndim = 0;
    if (!st && (!s || *s != '(')) {
        aec_error("%s: .npy header: no 'shape' tuple", path);
        st = AEC_EFORMAT;
    }
    for (s = st ? NULL : s + 1; s && *s != ')';) {
        while (isspace((unsigned char)*s) || *s == ',')
            s++;
        if (*s == ')') break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || ndim == 16) {
            aec_error("%s: .npy header: malformed shape near '%.20s'", path, s);
            st = AEC_EFORMAT;
            break;
        }
        dims[ndim++] = v;
        s = end;
    }
    free(header);
    if (!st) st = set_shape(path, d, ndim, dims, limit);
    if (!st) st = check_length(path, b, at + hlen, t, dims[0], d);
    if (!st)
        st = decode_block(path, b->p + at + hlen, t, big_endian,
                          flags | (is_bool ? AEC_DATA_RAW : 0), d);
    d->format = "npy";
    return st;
}

/* ------------------------------------------------------------------- CSV */

/* A field's value: NaN for empty or "nan"; returns 0 when it is not a number. */
static int csv_number(const char *s, const char *end, double *v) {
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (end - s >= 2 && (*s == '"' || *s == '\'') && end[-1] == *s) s++, end--;
    if (s == end || (end - s == 3 && strncasecmp(s, "nan", 3) == 0)) {
        *v = NAN;
        return 1;
    }
    char *stop;
    *v = strtod(s, &stop);
    return stop == end;
}

static int load_csv(const char *path, const Bytes *b, int64_t limit, aec_data *d) {
    int64_t cap = 0, count = 0, rows = 0, width = 0, width_line = 0;
    int header_seen = 0;
    /* The header's first field that is not a number: named if no sample follows. */
    int64_t header_line = 0, header_field = 0;
    const char *header_text = NULL;
    int header_len = 0;
    size_t el = aec_dtype_size(d->dtype);
    d->format = "CSV";
    const char *s = (const char *)b->p, *end = s + b->n;
    for (int64_t line = 1; s < end && (limit <= 0 || rows < limit); line++) {
        const char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        const char *next = eol < end ? eol + 1 : end;
        const char *t = s;
        while (t < eol && isspace((unsigned char)*t))
            t++;
        if (t == eol || *t == '#') { /* blank line or comment */
            s = next;
            continue;
        }
        int64_t fields = 0, start = count;
        for (const char *f = s; f <= eol; fields++) {
            const char *comma = memchr(f, ',', (size_t)(eol - f));
            const char *fend = comma ? comma : eol;
            double v;
            if (!csv_number(f, fend, &v)) {
                if (rows == 0 && !header_seen) { /* the first line names the columns */
                    header_line = line;
                    header_field = fields + 1;
                    header_text = f;
                    header_len = (int)(fend - f > 40 ? 40 : fend - f);
                    count = start;
                    fields = -1;
                    break;
                }
                aec_error("%s:%lld: field %lld is '%.*s', expected a number", path, (long long)line,
                          (long long)fields + 1, (int)(fend - f > 40 ? 40 : fend - f), f);
                return AEC_EFORMAT;
            }
            if (count == cap) {
                cap = cap ? 2 * cap : 1 << 12;
                void *grown = realloc(d->x, (size_t)cap * el);
                if (!grown) {
                    aec_error("%s:%lld: out of memory", path, (long long)line);
                    return AEC_ENOMEM;
                }
                d->x = grown;
            }
            aec_set(d->x, d->dtype, count++, v);
            f = fend + 1;
        }
        if (fields == -1) {
            header_seen = 1;
            s = next;
            continue;
        }
        if (rows == 0) {
            width = fields;
            width_line = line;
        } else if (fields != width) {
            aec_error("%s:%lld: %lld fields, expected %lld as on line %lld (one sample per line)",
                      path, (long long)line, (long long)fields, (long long)width,
                      (long long)width_line);
            return AEC_EFORMAT;
        }
        rows++;
        s = next;
    }
    if (rows == 0 && header_seen) {
        /* A lone line with a word in it is a header to the rule above, but
         * more likely a sample with a bad field: say which. */
        aec_error("%s:%lld: field %lld is '%.*s', expected a number (a first line of column "
                  "names needs samples after it; none follow)",
                  path, (long long)header_line, (long long)header_field, header_len, header_text);
        return AEC_EFORMAT;
    }
    d->n = rows;
    d->dim = width;
    d->ndim = 1;
    d->shape[0] = width;
    return AEC_OK;
}

/* ---------------------------------------------------------------- loading */

/* The file's name without directories and a trailing ".gz", lower case. */
static void base_name(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    snprintf(buf, size, "%s", slash ? slash + 1 : path);
    size_t len = strlen(buf);
    if (len > 3 && strcasecmp(buf + len - 3, ".gz") == 0) buf[len - 3] = 0;
    for (char *c = buf; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int looks_like_text(const Bytes *b) {
    for (size_t i = 0; i < b->n && i < 512; i++)
        if (!isprint(b->p[i]) && !isspace(b->p[i])) return 0;
    return b->n > 0;
}

int aec_data_load(const char *path, int dtype, int64_t limit, int flags, aec_data *d) {
    memset(d, 0, sizeof *d);
    d->dtype = dtype;
    Bytes b;
    int st = slurp(path, &b);
    if (st) return st;
    char name[256];
    base_name(path, name, sizeof name);
    if (b.n >= 6 && memcmp(b.p, "\x93NUMPY", 6) == 0)
        st = load_npy(path, &b, limit, flags, d);
    else if (ends_with(name, ".npy"))
        st = load_npy(path, &b, limit, flags, d); /* says what the magic should be */
    else if (ends_with(name, ".csv") || ends_with(name, ".txt") || ends_with(name, ".tsv"))
        st = load_csv(path, &b, limit, d);
    else if ((b.n >= 2 && b.p[0] == 0 && b.p[1] == 0) || strstr(name, "idx") ||
             strstr(name, "ubyte"))
        st = load_idx(path, &b, limit, flags, d);
    else if (looks_like_text(&b))
        st = load_csv(path, &b, limit, d);
    else {
        aec_error("%s: not a data file aec reads: expected IDX (magic 0x00000803...), NumPy "
                  ".npy (\\x93NUMPY) or CSV text",
                  path);
        st = AEC_EFORMAT;
    }
    free(b.p);
    if (st) aec_data_free(d);
    return st;
}

int aec_data_check_dim(const char *path, const aec_data *d, int64_t want, const char *what) {
    if (d->n == 0) {
        aec_error("%s: holds no samples", path);
        return AEC_EMISMATCH;
    }
    if (d->dim != want) {
        aec_error("%s: each sample has %lld value%s, %s needs %lld", path, (long long)d->dim,
                  d->dim == 1 ? "" : "s", what, (long long)want);
        return AEC_EMISMATCH;
    }
    return AEC_OK;
}

int aec_data_check_values(const char *path, aec_data *d, int allow_missing) {
    int64_t count = d->n * d->dim, missing = 0;
    for (int64_t i = 0; i < count; i++) {
        double v = aec_get(d->x, d->dtype, i);
        if (isfinite(v)) continue;
        long long sample = (long long)(i / d->dim), feature = (long long)(i % d->dim);
        if (!isnan(v)) {
            aec_error("%s: sample %lld, feature %lld (from 0) is %s, expected a finite number",
                      path, sample, feature, v > 0 ? "inf" : "-inf");
            return AEC_EFORMAT;
        }
        if (!allow_missing) {
            aec_error("%s: sample %lld, feature %lld (from 0) is NaN (a missing value), but the "
                      "model's loss is not masked (write `loss ... masked` in the spec to train "
                      "with missing values)",
                      path, sample, feature);
            return AEC_EMISMATCH;
        }
        missing++;
    }
    if (!missing) return AEC_OK;
    /* The model reads zero-filled inputs and leaves mask-0 values out of the loss. */
    d->mask = malloc((size_t)count * aec_dtype_size(d->dtype));
    if (!d->mask) {
        aec_error("%s: out of memory for the missing-value mask", path);
        return AEC_ENOMEM;
    }
    for (int64_t i = 0; i < count; i++) {
        int present = !isnan(aec_get(d->x, d->dtype, i));
        aec_set(d->mask, d->dtype, i, present);
        if (!present) aec_set(d->x, d->dtype, i, 0.0);
    }
    return AEC_OK;
}

void aec_shape_str(char *buf, size_t size, int ndim, const int32_t *shape) {
    size_t at = 0;
    buf[0] = 0;
    for (int k = 0; k < ndim && at < size; k++)
        at += (size_t)snprintf(buf + at, size - at, k ? "x%d" : "%d", shape[k]);
}

int aec_data_load_for(const char *path, const aec_model *m, int codes, int64_t limit, aec_data *d) {
    int st = aec_data_load(path, m->dtype, limit, 0, d);
    if (st) return st;
    char what[96], shape[64];
    aec_shape_str(shape, sizeof shape, m->input_ndim, m->input_shape);
    if (codes)
        snprintf(what, sizeof what, "the model's code");
    else
        snprintf(what, sizeof what, "the model's input %s", shape);
    st = aec_data_check_dim(path, d, codes ? m->code_size : m->input_size, what);
    if (!st) st = aec_data_check_values(path, d, !codes && aec_model_masked(m));
    if (st) aec_data_free(d);
    return st;
}

void aec_data_free(aec_data *d) {
    free(d->x);
    free(d->mask);
    d->x = d->mask = NULL;
    d->n = 0;
}

int aec_labels_load(const char *path, int64_t *n, int32_t **labels) {
    aec_data d;
    int st = aec_data_load(path, AEC_F64, 0, AEC_DATA_RAW, &d);
    if (st) return st;
    if (d.dim != 1) {
        aec_error("%s: each sample has %lld values, expected one label per sample", path,
                  (long long)d.dim);
        aec_data_free(&d);
        return AEC_EMISMATCH;
    }
    int32_t *out = malloc((size_t)(d.n ? d.n : 1) * sizeof *out);
    if (!out) {
        aec_data_free(&d);
        return AEC_ENOMEM;
    }
    for (int64_t i = 0; i < d.n; i++) {
        double v = ((double *)d.x)[i];
        if (v != floor(v) || fabs(v) > INT32_MAX) {
            aec_error("%s: label %lld is %g, expected an integer", path, (long long)i, v);
            free(out);
            aec_data_free(&d);
            return AEC_EFORMAT;
        }
        out[i] = (int32_t)v;
    }
    *n = d.n;
    *labels = out;
    aec_data_free(&d);
    return AEC_OK;
}

/* ---------------------------------------------------------------- writing */

int aec_npy_write(const char *path, int dtype, const void *x, int64_t n, int64_t dim) {
    char header[128];
    int len = snprintf(header, sizeof header,
                       "{'descr': '%s', 'fortran_order': False, "
                       "'shape': (%lld, %lld), }",
                       dtype == AEC_F64 ? "<f8" : "<f4", (long long)n, (long long)dim);
    /* numpy pads with spaces and ends with \n so the data starts 64-byte aligned. */
    while ((10 + len + 1) % 64)
        header[len++] = ' ';
    header[len++] = '\n';
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(len & 0xff),
                             (unsigned char)(len >> 8)};
    aec_atomic a;
    int st = aec_atomic_begin(&a, path);
    if (st) return st;
    fwrite(pre, 1, sizeof pre, a.f);
    fwrite(header, 1, (size_t)len, a.f);
    fwrite(x, aec_dtype_size(dtype), (size_t)(n * dim), a.f);
    return aec_atomic_commit(&a);
}

int aec_has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), k = strlen(ext);
    return n >= k && strcasecmp(path + n - k, ext) == 0;
}

int aec_csv_write(const char *path, int dtype, const void *x, int64_t n, int64_t dim,
                  const char *prefix) {
    aec_atomic a;
    int st = aec_atomic_begin(&a, path);
    if (st) return st;
    for (int64_t j = 0; j < dim; j++)
        fprintf(a.f, "%s%s%lld", j ? "," : "", prefix, (long long)j);
    fputc('\n', a.f);
    /* %.9g and %.17g print a float and a double exactly (they read back bit for bit). */
    const char *fmt = dtype == AEC_F64 ? "%.17g" : "%.9g";
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < dim; j++) {
            fprintf(a.f, fmt, aec_get(x, dtype, i * dim + j));
            fputc(j + 1 < dim ? ',' : '\n', a.f);
        }
    return aec_atomic_commit(&a);
}
