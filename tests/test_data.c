/* test_data.c — loading IDX (plain and gzip), .npy and CSV, writing .npy,
 * and every malformed input's error: the message must name the file and say
 * what was expected.
 *
 * Each test writes small files into a fresh temporary directory.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "rt.h"
#include "tmpdir.h"

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_file(path, text, strlen(text));
}

/* An IDX file: magic 00 00 type ndim, big-endian dims, then `data`. */
static size_t make_idx(unsigned char *buf, int type, int ndim, const uint32_t *dims,
                       const void *data, size_t data_bytes) {
    buf[0] = buf[1] = 0;
    buf[2] = (unsigned char)type;
    buf[3] = (unsigned char)ndim;
    for (int k = 0; k < ndim; k++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * k + b] = (unsigned char)(dims[k] >> (24 - 8 * b));
    if (data_bytes) memcpy(buf + 4 + 4 * ndim, data, data_bytes);
    return 4 + 4 * (size_t)ndim + data_bytes;
}

static int expect_error(const char *a, const char *b, const char *c) {
    const char *msg = aec_last_error();
    if ((a && !strstr(msg, a)) || (b && !strstr(msg, b)) || (c && !strstr(msg, c))) {
        print_error("error message '%s' lacks '%s' / '%s' / '%s'\n", msg, a, b ? b : "",
                    c ? c : "");
        return 0;
    }
    return 1;
}

static int setup(void **state) {
    (void)state;
    return tmpdir_setup("data");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_teardown();
}

static const unsigned char pixels[12] = {0, 51, 102, 153, 204, 255, 0, 0, 255, 255, 1, 2};

static void test_idx_ubyte(void **state) {
    (void)state;
    unsigned char buf[64];
    uint32_t dims[] = {3, 2, 2};
    size_t n = make_idx(buf, 0x08, 3, dims, pixels, sizeof pixels);
    write_file(tmp_path("img.idx"), buf, n);
    aec_data d;
    assert_int_equal(aec_data_load(tmp_path("img.idx"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 4);
    assert_int_equal(d.ndim, 2);
    assert_int_equal(d.shape[0], 2);
    assert_int_equal(d.shape[1], 2);
    assert_string_equal(d.format, "IDX");
    float *x = d.x;
    for (int i = 0; i < 12; i++)
        assert_float_equal(x[i], pixels[i] / 255.0f, 1e-7);
    aec_data_free(&d);

    /* F64, the first two samples only, raw bytes. */
    assert_int_equal(aec_data_load(tmp_path("img.idx"), AEC_F64, 2, AEC_DATA_RAW, &d), 0);
    assert_int_equal(d.n, 2);
    assert_true(((double *)d.x)[5] == 255.0);
    aec_data_free(&d);
}

static void test_idx_gzip(void **state) {
    (void)state;
    unsigned char buf[64];
    uint32_t dims[] = {3, 4};
    size_t n = make_idx(buf, 0x08, 2, dims, pixels, sizeof pixels);
    gzFile g = gzopen(tmp_path("img-idx2-ubyte.gz"), "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, buf, (unsigned)n), (int)n);
    gzclose(g);
    aec_data d;
    assert_int_equal(aec_data_load(tmp_path("img-idx2-ubyte.gz"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 4);
    assert_float_equal(((float *)d.x)[5], 1.0f, 0);
    aec_data_free(&d);
}

/* Every IDX element type, big-endian; only ubyte is scaled. */
static void test_idx_types(void **state) {
    (void)state;
    unsigned char buf[128], data[64];
    uint32_t dims[] = {2, 2};
    aec_data d;
    /* byte */
    signed char sb[4] = {-3, 4, 127, -128};
    size_t n = make_idx(buf, 0x09, 2, dims, sb, 4);
    write_file(tmp_path("b.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("b.idx"), AEC_F32, 0, 0, &d), 0);
    assert_float_equal(((float *)d.x)[0], -3, 0);
    assert_float_equal(((float *)d.x)[3], -128, 0);
    aec_data_free(&d);
    /* short: -2, 300, ... */
    unsigned char sh[8] = {0xff, 0xfe, 0x01, 0x2c, 0, 1, 0x80, 0};
    n = make_idx(buf, 0x0B, 2, dims, sh, 8);
    write_file(tmp_path("s.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("s.idx"), AEC_F64, 0, 0, &d), 0);
    assert_true(((double *)d.x)[0] == -2 && ((double *)d.x)[1] == 300);
    assert_true(((double *)d.x)[3] == -32768);
    aec_data_free(&d);
    /* int */
    unsigned char in[16] = {0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff};
    n = make_idx(buf, 0x0C, 2, dims, in, 16);
    write_file(tmp_path("i.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("i.idx"), AEC_F64, 0, 0, &d), 0);
    assert_true(((double *)d.x)[0] == 7 && ((double *)d.x)[1] == -1);
    assert_true(((double *)d.x)[2] == 65536 && ((double *)d.x)[3] == 2147483647.0);
    aec_data_free(&d);
    /* float and double, big-endian */
    float fv[4] = {0.5f, -1.25f, 3e5f, 0};
    double dv[4] = {0.1, -2.5, 1e-300, 7};
    for (int k = 0; k < 4; k++) {
        unsigned char *f = (unsigned char *)&fv[k], *e = (unsigned char *)&dv[k];
        for (int b = 0; b < 4; b++)
            data[4 * k + b] = f[3 - b];
        for (int b = 0; b < 8; b++)
            data[16 + 8 * k + b] = e[7 - b];
    }
    n = make_idx(buf, 0x0D, 2, dims, data, 16);
    write_file(tmp_path("f.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("f.idx"), AEC_F32, 0, 0, &d), 0);
    assert_memory_equal(d.x, fv, sizeof fv);
    aec_data_free(&d);
    n = make_idx(buf, 0x0E, 2, dims, data + 16, 32);
    write_file(tmp_path("d.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("d.idx"), AEC_F64, 0, 0, &d), 0);
    assert_memory_equal(d.x, dv, sizeof dv);
    aec_data_free(&d);
}

static void test_idx_errors(void **state) {
    (void)state;
    aec_data d;
    unsigned char bad[20] = {0x12, 0x34, 0x56, 0x78};
    write_file(tmp_path("bad.idx"), bad, sizeof bad);
    assert_int_equal(aec_data_load(tmp_path("bad.idx"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("bad.idx", "magic 0x12345678", "expected 0x000008"));

    unsigned char type[20] = {0, 0, 0x07, 1, 0, 0, 0, 1};
    write_file(tmp_path("type.idx"), type, 9);
    assert_int_equal(aec_data_load(tmp_path("type.idx"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("type.idx", "type 0x07", "expected 08 (ubyte)"));

    /* 3 samples of 2x2 need 12 bytes; give 10. */
    unsigned char buf[64];
    uint32_t dims[] = {3, 2, 2};
    size_t n = make_idx(buf, 0x08, 3, dims, pixels, 10);
    write_file(tmp_path("short.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("short.idx"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("short.idx", "truncated", "need 12 bytes"));
    assert_true(expect_error("got 10", "16-byte header", NULL));
    /* ...but the first two samples are all there. */
    assert_int_equal(aec_data_load(tmp_path("short.idx"), AEC_F32, 2, 0, &d), 0);
    aec_data_free(&d);

    /* A header cut short. */
    write_file(tmp_path("hdr.idx"), buf, 9);
    assert_int_equal(aec_data_load(tmp_path("hdr.idx"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("hdr.idx", "truncated", "needs 16 bytes, got 9"));

    assert_int_equal(aec_data_load(tmp_path("none.idx"), AEC_F32, 0, 0, &d), AEC_EIO);
    assert_true(expect_error("none.idx", "cannot open", "No such file"));

    /* A gzip stream cut in the middle. */
    unsigned char big[4096 + 16];
    uint32_t bigdims[] = {64, 64};
    for (int i = 0; i < 4096; i++)
        big[12 + i] = (unsigned char)(i * 7919 >> 3);
    make_idx(big, 0x08, 2, bigdims, NULL, 0); /* the header before the data */
    gzFile g = gzopen(tmp_path("cut.gz"), "wb");
    gzwrite(g, big, 12 + 4096);
    gzclose(g);
    FILE *f = fopen(tmp_path("cut.gz"), "rb");
    unsigned char z[8192];
    size_t zn = fread(z, 1, sizeof z, f);
    fclose(f);
    write_file(tmp_path("cut.gz"), z, zn / 2);
    assert_int_equal(aec_data_load(tmp_path("cut.gz"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("cut.gz", "truncated or corrupt", NULL));

    /* Found by fuzz_data: dimensions whose product fits but whose byte
     * count (n·dim·4) overflows int64 (was signed overflow in check_length). */
    uint32_t huge[] = {0x40000000, 0x10000, 0x10000};
    n = make_idx(buf, 0x0D, 3, huge, pixels, 12);
    write_file(tmp_path("huge.idx"), buf, n);
    assert_int_equal(aec_data_load(tmp_path("huge.idx"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("huge.idx", "1073741824 samples", "more bytes than a file can hold"));
}

/* A .npy file of the given version with a header dict and data. */
static void write_npy(const char *path, int version, const char *dict, const void *data,
                      size_t bytes) {
    unsigned char buf[512];
    size_t pre = version == 1 ? 10 : 12, len = strlen(dict);
    size_t hlen = (pre + len + 1 + 63) / 64 * 64 - pre;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)version;
    buf[7] = 0;
    for (size_t b = 0; b < pre - 8; b++)
        buf[8 + b] = (unsigned char)(hlen >> (8 * b));
    memset(buf + pre, ' ', hlen);
    memcpy(buf + pre, dict, len);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, bytes);
    write_file(path, buf, pre + hlen + bytes);
}

static void test_npy(void **state) {
    (void)state;
    aec_data d;
    float f4[6] = {0, 0.5f, 1, -1, 2, 3};
    write_npy(tmp_path("a.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
              f4, sizeof f4);
    assert_int_equal(aec_data_load(tmp_path("a.npy"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.dim, 3);
    assert_string_equal(d.format, "npy");
    assert_memory_equal(d.x, f4, sizeof f4);
    aec_data_free(&d);

    /* Version 2, doubles, samples of 1x2x2 flattened. */
    double f8[8] = {1, 2, 3, 4, 5, 6, 7, 8.5};
    write_npy(tmp_path("b.npy"), 2,
              "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1, 2, 2), }", f8, sizeof f8);
    assert_int_equal(aec_data_load(tmp_path("b.npy"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(d.dim, 4);
    assert_int_equal(d.ndim, 3);
    assert_float_equal(((float *)d.x)[7], 8.5f, 0);
    aec_data_free(&d);

    /* Pixels as |u1 are scaled like IDX ubyte; <i4 and >f4 are not. */
    unsigned char u1[4] = {0, 255, 51, 102};
    write_npy(tmp_path("c.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", u1,
              4);
    assert_int_equal(aec_data_load(tmp_path("c.npy"), AEC_F64, 0, 0, &d), 0);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.dim, 1);
    assert_true(((double *)d.x)[1] == 1.0 && ((double *)d.x)[2] == 0.2);
    aec_data_free(&d);
    int32_t i4[2] = {-5, 1000};
    write_npy(tmp_path("d.npy"), 3, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }",
              i4, sizeof i4);
    assert_int_equal(aec_data_load(tmp_path("d.npy"), AEC_F32, 0, 0, &d), 0);
    assert_true(((float *)d.x)[0] == -5 && ((float *)d.x)[1] == 1000);
    aec_data_free(&d);
    unsigned char be[4] = {0x3f, 0xc0, 0, 0}; /* 1.5f big-endian */
    write_npy(tmp_path("e.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }",
              be, 4);
    assert_int_equal(aec_data_load(tmp_path("e.npy"), AEC_F32, 0, 0, &d), 0);
    assert_float_equal(((float *)d.x)[0], 1.5f, 0);
    aec_data_free(&d);
}

static void test_npy_errors(void **state) {
    (void)state;
    aec_data d;
    float f4[6] = {0};
    write_npy(tmp_path("fo.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
              f4, sizeof f4);
    assert_int_equal(aec_data_load(tmp_path("fo.npy"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("fo.npy", "fortran_order is True", "expected False"));

    write_npy(tmp_path("tr.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
              f4, 20);
    assert_int_equal(aec_data_load(tmp_path("tr.npy"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("tr.npy", "truncated", "need 24 bytes"));
    assert_true(expect_error("got 20", NULL, NULL));

    write_npy(tmp_path("ty.npy"), 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
              f4, 8);
    assert_int_equal(aec_data_load(tmp_path("ty.npy"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("ty.npy", "'<c8'", "expected a number type"));

    write_text(tmp_path("magic.npy"), "PK\003\004 this is a zip, not an array");
    assert_int_equal(aec_data_load(tmp_path("magic.npy"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("magic.npy", "not a .npy file", "\\x93NUMPY"));
}

static void test_csv(void **state) {
    (void)state;
    aec_data d;
    write_text(tmp_path("a.csv"),
               "x0, x1 ,x2\n# a comment\n1,2,3\r\n4.5, nan ,\n\n-1e-3,0,\"7\"\n");
    assert_int_equal(aec_data_load(tmp_path("a.csv"), AEC_F64, 0, 0, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 3);
    assert_string_equal(d.format, "CSV");
    double *x = d.x;
    assert_true(x[0] == 1 && x[2] == 3 && x[3] == 4.5);
    assert_true(isnan(x[4]) && isnan(x[5]));
    assert_true(x[6] == -1e-3 && x[8] == 7);
    aec_data_free(&d);
    assert_int_equal(aec_data_load(tmp_path("a.csv"), AEC_F32, 1, 0, &d), 0);
    assert_int_equal(d.n, 1);
    aec_data_free(&d);

    /* Detected by content without an extension. */
    write_text(tmp_path("plain"), "1,2\n3,4\n");
    assert_int_equal(aec_data_load(tmp_path("plain"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(d.n * d.dim, 4);
    aec_data_free(&d);
}

static void test_csv_errors(void **state) {
    (void)state;
    aec_data d;
    write_text(tmp_path("rag.csv"), "a,b,c\n1,2,3\n4,5,6\n7,8\n");
    assert_int_equal(aec_data_load(tmp_path("rag.csv"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("rag.csv:4:", "2 fields, expected 3", "line 2"));

    write_text(tmp_path("word.csv"), "1,2\n3,oops\n");
    assert_int_equal(aec_data_load(tmp_path("word.csv"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("word.csv:2:", "field 2 is 'oops'", "expected a number"));

    /* Two header lines: the second is data that is not numeric. */
    write_text(tmp_path("hdr2.csv"), "a,b\nc,d\n1,2\n");
    assert_int_equal(aec_data_load(tmp_path("hdr2.csv"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("hdr2.csv:2:", "'c'", NULL));

    /* One line ending in a word: taken as a header, so no sample follows it.
     * The message names the line and the field (fuzzing's weak message). */
    write_text(tmp_path("one.csv"), "0.5,0.25,x7\n");
    assert_int_equal(aec_data_load(tmp_path("one.csv"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("one.csv:1:", "field 3 is 'x7'", "expected a number"));
    write_text(tmp_path("names.csv"), "\n# only names\na,b\n");
    assert_int_equal(aec_data_load(tmp_path("names.csv"), AEC_F32, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("names.csv:3:", "field 1 is 'a'", "none follow"));
}

/* A model table with only what data checks read. */
static aec_model image_model(void) {
    aec_model m = {0};
    m.abi_version = AEC_ABI_VERSION;
    m.dtype = AEC_F32;
    m.name = "t";
    m.input_ndim = 3;
    m.input_shape[0] = 1;
    m.input_shape[1] = 28;
    m.input_shape[2] = 28;
    m.input_size = 784;
    m.code_size = 32;
    return m;
}

static void test_size_mismatch(void **state) {
    (void)state;
    aec_model m = image_model();
    aec_data d;
    unsigned char buf[64];
    uint32_t dims[] = {3, 2, 2};
    size_t n = make_idx(buf, 0x08, 3, dims, pixels, sizeof pixels);
    write_file(tmp_path("t.idx"), buf, n);
    assert_int_equal(aec_data_load_for(tmp_path("t.idx"), &m, 0, 0, &d), AEC_EMISMATCH);
    assert_true(
        expect_error("t.idx: each sample has 4 values", "the model's input 1x28x28", "needs 784"));
    assert_null(d.x);
    assert_int_equal(aec_data_load_for(tmp_path("t.idx"), &m, 1, 0, &d), AEC_EMISMATCH);
    assert_true(expect_error("t.idx", "the model's code needs 32", NULL));

    write_text(tmp_path("empty.csv"), "a,b\n");
    assert_int_equal(aec_data_load_for(tmp_path("empty.csv"), &m, 0, 0, &d), AEC_EFORMAT);
    assert_true(expect_error("empty.csv:1:", "field 1 is 'a'", "none follow"));
    write_text(tmp_path("blank.csv"), "\n# nothing\n");
    assert_int_equal(aec_data_load_for(tmp_path("blank.csv"), &m, 0, 0, &d), AEC_EMISMATCH);
    assert_true(expect_error("blank.csv", "no samples", NULL));
}

static void test_nan(void **state) {
    (void)state;
    aec_data d;
    write_text(tmp_path("nan.csv"), "1,2,3\n4,5,\n7,nan,9\n");
    assert_int_equal(aec_data_load(tmp_path("nan.csv"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(aec_data_check_values(tmp_path("nan.csv"), &d, 0), AEC_EMISMATCH);
    assert_true(expect_error("nan.csv", "sample 1, feature 2", "NaN"));
    assert_true(expect_error("not masked", NULL, NULL));
    assert_null(d.mask);

    /* With mask support: zero-filled, and the mask marks what is missing. */
    assert_int_equal(aec_data_check_values(tmp_path("nan.csv"), &d, 1), 0);
    assert_non_null(d.mask);
    const float *x = d.x, *mask = d.mask;
    const float want_x[9] = {1, 2, 3, 4, 5, 0, 7, 0, 9};
    const float want_m[9] = {1, 1, 1, 1, 1, 0, 1, 0, 1};
    assert_memory_equal(x, want_x, sizeof want_x);
    assert_memory_equal(mask, want_m, sizeof want_m);
    aec_data_free(&d);

    /* Nothing missing: no mask. */
    write_text(tmp_path("ok.csv"), "1,2\n");
    assert_int_equal(aec_data_load(tmp_path("ok.csv"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(aec_data_check_values(tmp_path("ok.csv"), &d, 1), 0);
    assert_null(d.mask);
    aec_data_free(&d);

    write_text(tmp_path("inf.csv"), "1,2\n3,-inf\n");
    assert_int_equal(aec_data_load(tmp_path("inf.csv"), AEC_F32, 0, 0, &d), 0);
    assert_int_equal(aec_data_check_values(tmp_path("inf.csv"), &d, 1), AEC_EFORMAT);
    assert_true(expect_error("inf.csv", "sample 1, feature 1", "-inf"));
    aec_data_free(&d);
}

static void test_labels(void **state) {
    (void)state;
    unsigned char buf[64], lab[5] = {3, 1, 4, 1, 5};
    uint32_t dims[] = {5};
    size_t n = make_idx(buf, 0x08, 1, dims, lab, 5);
    write_file(tmp_path("lab.idx"), buf, n);
    int64_t count;
    int32_t *labels;
    assert_int_equal(aec_labels_load(tmp_path("lab.idx"), &count, &labels), 0);
    assert_int_equal(count, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(labels[i], lab[i]);
    free(labels);

    uint32_t idims[] = {3, 2, 2};
    n = make_idx(buf, 0x08, 3, idims, pixels, sizeof pixels);
    write_file(tmp_path("img.idx"), buf, n);
    assert_int_equal(aec_labels_load(tmp_path("img.idx"), &count, &labels), AEC_EMISMATCH);
    assert_true(expect_error("img.idx", "4 values", "one label per sample"));
}

static void test_npy_write_round_trip(void **state) {
    (void)state;
    double x[6] = {1.0 / 3, -2, 1e-310, 4, 5, 6};
    assert_int_equal(aec_npy_write(tmp_path("out.npy"), AEC_F64, x, 2, 3), 0);
    FILE *f = fopen(tmp_path("out.npy"), "rb");
    unsigned char head[10];
    assert_int_equal(fread(head, 1, 10, f), 10);
    fclose(f);
    assert_int_equal((10 + head[8] + 256 * head[9]) % 64, 0);
    aec_data d;
    assert_int_equal(aec_data_load(tmp_path("out.npy"), AEC_F64, 0, 0, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.dim, 3);
    assert_memory_equal(d.x, x, sizeof x);
    aec_data_free(&d);

    float y[2] = {0.25f, 8};
    assert_int_equal(aec_npy_write(tmp_path("out32.npy"), AEC_F32, y, 2, 1), 0);
    assert_int_equal(aec_data_load(tmp_path("out32.npy"), AEC_F32, 0, 0, &d), 0);
    assert_memory_equal(d.x, y, sizeof y);
    aec_data_free(&d);
    assert_int_equal(access(tmp_path("out32.npy.tmp"), F_OK), -1);
}

/* The real data set, when its package is installed. */
static void test_fashion_mnist(void **state) {
    (void)state;
    const char *images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) skip();
    aec_model m = image_model();
    aec_data d;
    assert_int_equal(aec_data_load_for(images, &m, 0, 100, &d), 0);
    assert_int_equal(d.n, 100);
    assert_int_equal(d.dim, 784);
    for (int64_t i = 0; i < d.n * d.dim; i++)
        assert_true(((float *)d.x)[i] >= 0 && ((float *)d.x)[i] <= 1);
    aec_data_free(&d);
    int64_t n;
    int32_t *lab;
    assert_int_equal(aec_labels_load(labels, &n, &lab), 0);
    assert_int_equal(n, 10000);
    assert_int_equal(lab[0], 9); /* the first test image is an ankle boot */
    free(lab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_ubyte),     cmocka_unit_test(test_idx_gzip),
        cmocka_unit_test(test_idx_types),     cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_npy),           cmocka_unit_test(test_npy_errors),
        cmocka_unit_test(test_csv),           cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_size_mismatch), cmocka_unit_test(test_nan),
        cmocka_unit_test(test_labels),        cmocka_unit_test(test_npy_write_round_trip),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
