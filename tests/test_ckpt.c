/* test_ckpt.c — safetensors checkpoints: round trips (weights, optimizer
 * state, live params, training state), the file layout, atomic replacement
 * when a write fails, every mismatch refused with the first one named, and
 * F32 <-> F64 conversion.
 *
 * Models here are bare tables: only names, shapes and sizes are read.
 */
/* cmocka 1.1 needs these first, in this order. */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rt.h"
#include "tmpdir.h"

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int expect_error(const char *a, const char *b) {
    const char *msg = aec_last_error();
    if (!strstr(msg, a) || (b && !strstr(msg, b))) {
        print_error("error message '%s' lacks '%s' / '%s'\n", msg, a, b ? b : "");
        return 0;
    }
    return 1;
}

static int setup(void **state) {
    (void)state;
    return tmpdir_setup("ckpt");
}

static int teardown(void **state) {
    (void)state;
    return tmpdir_teardown();
}

/* encoder.0 (3 <- 4), decoder.0 (4 <- 3), and a batch-norm buffer. */
static aec_tensor_info tensors[] = {
    {"encoder.0.weight", 2, {3, 4}, AEC_TENSOR_WEIGHT, 0, 0, 12},
    {"encoder.0.bias", 1, {3}, AEC_TENSOR_BIAS, 0, 12, 3},
    {"decoder.0.weight", 2, {4, 3}, AEC_TENSOR_WEIGHT, 0, 15, 12},
    {"decoder.0.bias", 1, {4}, AEC_TENSOR_BIAS, 0, 27, 4},
    {"encoder.1.running_mean", 1, {3}, AEC_TENSOR_BUFFER, 0, 31, 3},
};
enum { NP = 34, NOPT = 62 };

static aec_model model(int dtype, aec_tensor_info *t, int n) {
    aec_model m = {0};
    m.abi_version = AEC_ABI_VERSION;
    m.dtype = dtype;
    m.name = "tiny";
    m.param_count = NP;
    m.trainable_count = 31;
    m.opt_state_count = NOPT;
    m.n_tensors = n;
    m.tensors = t;
    return m;
}

static void fill(float *x, int n, float base) {
    for (int i = 0; i < n; i++)
        x[i] = base + 0.1f * (float)i;
}

static int count_temporaries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_round_trip(void **state) {
    (void)state;
    aec_model m = model(AEC_F32, tensors, 5);
    float w[NP], opt[NOPT], live[NP];
    fill(w, NP, 1);
    fill(opt, NOPT, -5);
    fill(live, NP, 100);
    aec_train_state st = {.step = 1234,
                          .epoch = 7,
                          .batch = 64,
                          .seed = 18446744073709551615ull,
                          .best_val = 0.1 + 0.2,
                          .best_epoch = 5,
                          .bad_epochs = 2,
                          .n_train = 900,
                          .n_val = 100,
                          .train_loss = 1.0 / 3,
                          .val_loss = NAN};
    assert_int_equal(aec_ckpt_save(tmp_path("a.safetensors"), &m, w, opt, live, &st), 0);
    assert_int_equal(count_temporaries(), 0);

    float w2[NP] = {0}, opt2[NOPT] = {0}, live2[NP] = {0};
    aec_train_state st2;
    int has = 0;
    assert_int_equal(aec_ckpt_load(tmp_path("a.safetensors"), &m, w2, opt2, live2, &st2, &has), 0);
    assert_int_equal(has, AEC_CKPT_STATE | AEC_CKPT_OPT | AEC_CKPT_TRAIN);
    assert_memory_equal(w, w2, sizeof w);
    assert_memory_equal(opt, opt2, sizeof opt);
    assert_memory_equal(live, live2, sizeof live);
    assert_int_equal(st2.step, 1234);
    assert_int_equal(st2.epoch, 7);
    assert_int_equal(st2.batch, 64);
    assert_true(st2.seed == st.seed);
    assert_true(st2.best_val == 0.1 + 0.2); /* exact, not close */
    assert_int_equal(st2.best_epoch, 5);
    assert_int_equal(st2.bad_epochs, 2);
    assert_int_equal(st2.n_train, 900);
    assert_int_equal(st2.n_val, 100);
    assert_true(st2.train_loss == 1.0 / 3);
    assert_true(isnan(st2.val_loss));

    /* Weights only: no optimizer state, no training state. */
    assert_int_equal(aec_ckpt_save(tmp_path("w.safetensors"), &m, w, NULL, NULL, NULL), 0);
    memset(w2, 0, sizeof w2);
    assert_int_equal(aec_ckpt_load(tmp_path("w.safetensors"), &m, w2, opt2, live2, &st2, &has), 0);
    assert_int_equal(has, 0);
    assert_memory_equal(w, w2, sizeof w);
    assert_true(file_size(tmp_path("w.safetensors")) < file_size(tmp_path("a.safetensors")));

    /* infinity survives the metadata too */
    st.best_val = INFINITY;
    assert_int_equal(aec_ckpt_save(tmp_path("a.safetensors"), &m, w, opt, NULL, &st), 0);
    assert_int_equal(aec_ckpt_load(tmp_path("a.safetensors"), &m, w2, NULL, NULL, &st2, &has), 0);
    assert_true(isinf(st2.best_val));
    assert_int_equal(has, AEC_CKPT_STATE | AEC_CKPT_OPT);
}

/* The layout other tools read: 8-byte length, JSON, aligned data. */
static void test_layout(void **state) {
    (void)state;
    aec_model m = model(AEC_F32, tensors, 5);
    float w[NP];
    fill(w, NP, 0);
    assert_int_equal(aec_ckpt_save(tmp_path("l.safetensors"), &m, w, NULL, NULL, NULL), 0);
    FILE *f = fopen(tmp_path("l.safetensors"), "rb");
    unsigned char n8[8];
    assert_int_equal(fread(n8, 1, 8, f), 8);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = n << 8 | n8[k];
    assert_int_equal(n % 8, 0);
    char *text = calloc(1, n + 1);
    assert_int_equal(fread(text, 1, n, f), n);
    float data[NP];
    assert_int_equal(fread(data, sizeof(float), NP, f), NP);
    fclose(f);
    json_object *h = json_tokener_parse(text), *e, *v, *meta;
    assert_non_null(h);
    assert_true(json_object_object_get_ex(h, "decoder.0.weight", &e));
    assert_true(json_object_object_get_ex(e, "dtype", &v));
    assert_string_equal(json_object_get_string(v), "F32");
    assert_true(json_object_object_get_ex(e, "shape", &v));
    assert_int_equal(json_object_array_length(v), 2);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 0)), 4);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 1)), 3);
    assert_true(json_object_object_get_ex(e, "data_offsets", &v));
    int64_t begin = json_object_get_int64(json_object_array_get_idx(v, 0));
    assert_int_equal(begin, 15 * 4);
    assert_int_equal(json_object_get_int64(json_object_array_get_idx(v, 1)), 27 * 4);
    assert_true(data[begin / 4] == w[15]);
    assert_true(json_object_object_get_ex(h, "__metadata__", &meta));
    assert_true(json_object_object_get_ex(meta, "format", &v));
    assert_string_equal(json_object_get_string(v), "aec");
    assert_true(json_object_object_get_ex(meta, "model", &v));
    assert_string_equal(json_object_get_string(v), "tiny");
    assert_false(json_object_object_get_ex(h, AEC_CKPT_OPT_TENSOR, &v));
    json_object_put(h);
    free(text);
}

/* A write that fails part way (here: the file size limit) leaves the old
 * checkpoint byte for byte, and no temporary behind. */
static void test_atomic_failure(void **state) {
    (void)state;
    aec_model m = model(AEC_F32, tensors, 5);
    float w[NP], opt[NOPT], w2[NP];
    fill(w, NP, 1);
    fill(opt, NOPT, 2);
    const char *path = tmp_path("atomic.safetensors");
    assert_int_equal(aec_ckpt_save(path, &m, w, opt, NULL, NULL), 0);
    long before = file_size(path);

    struct rlimit old, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small = old;
    small.rlim_cur = (rlim_t)before - 100; /* the header fits, the data does not */
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    float changed[NP];
    fill(changed, NP, 50);
    int status = aec_ckpt_save(path, &m, changed, opt, NULL, NULL);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);

    assert_int_equal(status, AEC_EIO);
    assert_true(expect_error("atomic.safetensors", "writing failed"));
    assert_int_equal(count_temporaries(), 0);
    assert_int_equal(file_size(path), before);
    assert_int_equal(aec_ckpt_load(path, &m, w2, NULL, NULL, NULL, NULL), 0);
    assert_memory_equal(w, w2, sizeof w);

    /* A directory that does not exist: nothing is created. */
    assert_int_equal(aec_ckpt_save(tmp_path("no/such/dir.safetensors"), &m, w, NULL, NULL, NULL),
                     AEC_EIO);
    assert_true(expect_error("no/such/dir.safetensors", "cannot create"));
}

static void test_mismatches(void **state) {
    (void)state;
    aec_model m = model(AEC_F32, tensors, 5);
    float w[NP], opt[NOPT];
    fill(w, NP, 1);
    fill(opt, NOPT, 0);
    const char *path = tmp_path("m.safetensors");
    assert_int_equal(aec_ckpt_save(path, &m, w, opt, NULL, NULL), 0);
    float out[64];

    /* Two tensors differ: the first in the model's order is named. */
    aec_tensor_info t[5];
    memcpy(t, tensors, sizeof t);
    t[0].shape[0] = 5;
    t[0].numel = 20;
    t[2].shape[1] = 9;
    aec_model m2 = model(AEC_F32, t, 5);
    assert_int_equal(aec_ckpt_load(path, &m2, out, NULL, NULL, NULL, NULL), AEC_EMISMATCH);
    assert_true(expect_error("m.safetensors: tensor encoder.0.weight has shape [3, 4]",
                             "the model needs [5, 4]"));

    /* A tensor the file lacks. */
    aec_tensor_info t6[6];
    memcpy(t6, tensors, sizeof tensors);
    t6[5] = (aec_tensor_info){"decoder.2.weight", 2, {2, 2}, AEC_TENSOR_WEIGHT, 0, 34, 4};
    aec_model m3 = model(AEC_F32, t6, 6);
    m3.param_count = NP + 4;
    assert_int_equal(aec_ckpt_load(path, &m3, out, NULL, NULL, NULL, NULL), AEC_EMISMATCH);
    assert_true(expect_error("m.safetensors: tensor decoder.2.weight is missing", "[2, 2]"));

    /* A tensor the model lacks. */
    aec_model m4 = model(AEC_F32, tensors, 4);
    assert_int_equal(aec_ckpt_load(path, &m4, out, NULL, NULL, NULL, NULL), AEC_EMISMATCH);
    assert_true(expect_error("m.safetensors: unexpected tensor encoder.1.running_mean", NULL));

    /* Another optimizer's state. */
    aec_model m5 = model(AEC_F32, tensors, 5);
    m5.opt_state_count = 31;
    assert_int_equal(aec_ckpt_load(path, &m5, out, out, NULL, NULL, NULL), AEC_EMISMATCH);
    assert_true(expect_error("tensor optimizer.state has shape [62]", "needs [31]"));
}

static void write_raw(const char *path, const char *header, size_t data_bytes) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    for (int k = 0; k < 8; k++)
        fputc((int)(n >> (8 * k)) & 0xff, f);
    fputs(header, f);
    for (size_t i = 0; i < data_bytes; i++)
        fputc(0, f);
    fclose(f);
}

static void test_malformed(void **state) {
    (void)state;
    aec_tensor_info one[] = {{"w", 1, {2}, AEC_TENSOR_WEIGHT, 0, 0, 2}};
    aec_model m = model(AEC_F32, one, 1);
    m.param_count = 2;
    m.opt_state_count = 0;
    float out[2];

    write_raw(tmp_path("json.safetensors"), "{\"w\": {\"dtype\": \"F32\",", 8);
    assert_int_equal(aec_ckpt_load(tmp_path("json.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("json.safetensors", "not valid JSON"));

    write_raw(tmp_path("arr.safetensors"), "[1, 2]", 8);
    assert_int_equal(aec_ckpt_load(tmp_path("arr.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("arr.safetensors", "not a JSON object"));

    write_raw(tmp_path("f16.safetensors"),
              "{\"w\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4);
    assert_int_equal(aec_ckpt_load(tmp_path("f16.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EMISMATCH);
    assert_true(expect_error("f16.safetensors: tensor w has dtype F16", "F32 or F64"));

    write_raw(tmp_path("cut.safetensors"),
              "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4);
    assert_int_equal(aec_ckpt_load(tmp_path("cut.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("cut.safetensors: truncated", "tensor w needs bytes up to 8"));

    write_raw(tmp_path("off.safetensors"),
              "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 8);
    assert_int_equal(aec_ckpt_load(tmp_path("off.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("off.safetensors: tensor w", "need 8"));

    /* a fuzzer's find: a negative begin with an end of 2^63 − 1, whose
     * difference overflowed while the error was being written */
    write_raw(tmp_path("range.safetensors"),
              "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-4, "
              "9223372036854775807]}}",
              8);
    assert_int_equal(aec_ckpt_load(tmp_path("range.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("range.safetensors: tensor w: data_offsets [-4, 9223372036854775807]",
                             "not a range"));

    FILE *f = fopen(tmp_path("tiny.safetensors"), "wb");
    fputs("abc", f);
    fclose(f);
    assert_int_equal(aec_ckpt_load(tmp_path("tiny.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EFORMAT);
    assert_true(expect_error("tiny.safetensors: truncated", "8-byte header length"));

    assert_int_equal(aec_ckpt_load(tmp_path("none.safetensors"), &m, out, NULL, NULL, NULL, NULL),
                     AEC_EIO);
    assert_true(expect_error("none.safetensors: cannot open", NULL));
}

/* An F64 file into an F32 model and back, with the optimizer state. */
static void test_dtype_conversion(void **state) {
    (void)state;
    aec_model m32 = model(AEC_F32, tensors, 5), m64 = model(AEC_F64, tensors, 5);
    double w64[NP], opt64[NOPT];
    for (int i = 0; i < NP; i++)
        w64[i] = 0.5 + 0.25 * i;
    for (int i = 0; i < NOPT; i++)
        opt64[i] = -i;
    assert_int_equal(aec_ckpt_save(tmp_path("d.safetensors"), &m64, w64, opt64, NULL, NULL), 0);
    float w32[NP], opt32[NOPT];
    assert_int_equal(aec_ckpt_load(tmp_path("d.safetensors"), &m32, w32, opt32, NULL, NULL, NULL),
                     0);
    for (int i = 0; i < NP; i++)
        assert_true(w32[i] == (float)w64[i]);
    for (int i = 0; i < NOPT; i++)
        assert_true(opt32[i] == (float)opt64[i]);

    w32[3] = 1.0f / 3;
    assert_int_equal(aec_ckpt_save(tmp_path("s.safetensors"), &m32, w32, NULL, NULL, NULL), 0);
    double back[NP];
    assert_int_equal(aec_ckpt_load(tmp_path("s.safetensors"), &m64, back, NULL, NULL, NULL, NULL),
                     0);
    for (int i = 0; i < NP; i++)
        assert_true(back[i] == (double)w32[i]);
}

/* Parameters may sit anywhere in the block: offsets, not order, place them. */
static void test_offsets(void **state) {
    (void)state;
    aec_tensor_info t[] = {
        {"b", 1, {2}, AEC_TENSOR_BIAS, 0, 4, 2},
        {"a", 2, {2, 2}, AEC_TENSOR_WEIGHT, 0, 0, 4},
    };
    aec_model m = model(AEC_F32, t, 2);
    m.param_count = 6;
    m.opt_state_count = 0;
    float w[6] = {1, 2, 3, 4, 5, 6}, opt[1] = {9}, back[6] = {0};
    assert_int_equal(aec_ckpt_save(tmp_path("o.safetensors"), &m, w, opt, NULL, NULL), 0);
    int has = -1;
    assert_int_equal(aec_ckpt_load(tmp_path("o.safetensors"), &m, back, NULL, NULL, NULL, &has), 0);
    assert_memory_equal(w, back, sizeof w);
    assert_int_equal(has, 0); /* opt_state_count 0: no optimizer tensor written */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_layout),
        cmocka_unit_test(test_atomic_failure), cmocka_unit_test(test_mismatches),
        cmocka_unit_test(test_malformed),      cmocka_unit_test(test_dtype_conversion),
        cmocka_unit_test(test_offsets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
