/* ONNX external data: tensors read from files beside the model, and every way a model's
 * external_data entries can be wrong (each refused with an error naming the tensor). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers/onnx_builder.h"
#include "quantserve/engine.h"

/* y = x @ W + B + C with x [1, 4], W [4, 3], B and C [3]. */
static const float W[12] = {0.5f, -1.0f, 2.0f, 0.25f, 1.5f, -0.75f,
                            -2.0f, 0.125f, 1.0f, 3.0f, -0.5f, 0.0625f};
static const float B[3] = {0.1f, -0.2f, 0.3f};
static const float C[3] = {-1.0f, 2.0f, 0.5f};
static const int64_t W_DIMS[2] = {4, 3}, V_DIMS[1] = {3};

static char dir[64];

static void write_file(const char *rel, const void *data, size_t size) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    if (size)
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

static void remove_file(const char *rel) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    unlink(path);
}

/* A fresh directory holding weights.bin (16 bytes of padding, W, then C) and sub/bias.bin (B). */
static void setup(void) {
    uint8_t blob[16 + sizeof(W) + sizeof(C)];
    snprintf(dir, sizeof(dir), "/tmp/qs_extdata_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    memset(blob, 0xAB, 16);
    memcpy(blob + 16, W, sizeof(W));
    memcpy(blob + 16 + sizeof(W), C, sizeof(C));
    write_file("weights.bin", blob, sizeof(blob));
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    write_file("sub/bias.bin", B, sizeof(B));
}

static void teardown(void) {
    char sub[128];
    remove_file("weights.bin");
    remove_file("sub/bias.bin");
    remove_file("model.onnx");
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    rmdir(sub);
    rmdir(dir);
}

/* The model with W's external_data entries given by w_kv (n pairs); B and C are valid. */
static uint8_t *build(const char *const *w_kv, size_t n, size_t *size) {
    static const char *const b_kv[] = {"location", "sub/bias.bin"};
    static const char *const c_kv[] = {"location", "weights.bin", "offset", "64", "length", "12",
                                       "checksum", "not verified"};
    int64_t x_dims[2] = {1, 4};
    qst_model *m = qst_model_create(13);
    qst_model_input(m, "x", QS_DTYPE_FLOAT32, 2, x_dims);
    qst_model_output(m, "y");
    /* W and C share weights.bin with B in between: the importer reopens files as needed. */
    qst_model_init_external(m, "W", QS_DTYPE_FLOAT32, 2, W_DIMS, w_kv, n);
    qst_model_init_external(m, "B", QS_DTYPE_FLOAT32, 1, V_DIMS, b_kv, 1);
    qst_model_init_external(m, "C", QS_DTYPE_FLOAT32, 1, V_DIMS, c_kv, 4);
    qst_model_node(m, "MatMul", "x,W", "xw");
    qst_model_node(m, "Add", "xw,B", "xwb");
    qst_model_node(m, "Add", "xwb,C", "y");
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

/* Write the model with W's entries w_kv and load it from its file. */
static qs_status load(const char *const *w_kv, size_t n, qs_model **out, qs_error *err) {
    size_t size;
    char path[256];
    uint8_t *buf = build(w_kv, n, &size);
    write_file("model.onnx", buf, size);
    free(buf);
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    qs_error_clear(err);
    *out = NULL;
    return qs_model_load_file(path, NULL, out, err);
}

START_TEST(test_external_data_loads_and_runs) {
    static const char *const w_kv[] = {"location", "weights.bin", "offset", "16", "length", "48"};
    static const char *const w_kv_no_length[] = {"location", "./weights.bin", "offset", "16"};
    for (int variant = 0; variant < 2; variant++) {
        qs_model *m = NULL;
        qs_error err;
        qs_status st = variant ? load(w_kv_no_length, 2, &m, &err) : load(w_kv, 3, &m, &err);
        ck_assert_msg(st == QS_OK, "load failed: %s: %s", err.where, err.message);
        qs_model_info info;
        qs_model_get_info(m, &info);
        ck_assert_uint_ge(info.file_bytes, sizeof(W) + sizeof(B) + sizeof(C));

        qs_session *s = NULL;
        ck_assert_int_eq(qs_session_create(m, NULL, &s, &err), QS_OK);
        float x[4] = {1.0f, -2.0f, 0.5f, 3.0f};
        qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 2, .dims = {1, 4}, .data = x};
        ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_OK);
        qs_tensor out;
        ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
        ck_assert_uint_eq(qs_tensor_numel(&out), 3);
        for (int j = 0; j < 3; j++) {
            double want = (double)B[j] + (double)C[j];
            for (int k = 0; k < 4; k++)
                want += (double)x[k] * (double)W[k * 3 + j];
            double got = ((const float *)out.data)[j];
            ck_assert_msg(fabs(got - want) <= 1e-5 * (1.0 + fabs(want)), "y[%d] = %g, want %g", j,
                          got, want);
        }
        qs_session_free(s);
        qs_model_free(m);
    }
}
END_TEST

/* Each malformed entry for W: the expected status and a piece of the message. */
typedef struct {
    const char *kv[8];
    size_t n;
    qs_status status;
    const char *message;
} bad_case;

static const bad_case BAD[] = {
    {{"location", "/etc/passwd"}, 1, QS_ERR_MALFORMED_MODEL, "relative path"},
    {{"location", "../weights.bin"}, 1, QS_ERR_MALFORMED_MODEL, "relative path"},
    {{"location", "sub/../../weights.bin"}, 1, QS_ERR_MALFORMED_MODEL, "relative path"},
    {{"location", "sub/.."}, 1, QS_ERR_MALFORMED_MODEL, "relative path"},
    {{"location", ""}, 1, QS_ERR_MALFORMED_MODEL, "relative path"},
    {{"offset", "16"}, 1, QS_ERR_MALFORMED_MODEL, "no location"},
    {{"location", "weights.bin", "location", "weights.bin"}, 2, QS_ERR_MALFORMED_MODEL, "twice"},
    {{"location", "missing.bin"}, 1, QS_ERR_IO, "cannot open"},
    {{"location", "sub"}, 1, QS_ERR_IO, "not a regular file"},
    {{"location", "weights.bin", "offset", "-16"}, 2, QS_ERR_MALFORMED_MODEL, "non-negative"},
    {{"location", "weights.bin", "offset", "16 "}, 2, QS_ERR_MALFORMED_MODEL, "non-negative"},
    {{"location", "weights.bin", "offset", ""}, 2, QS_ERR_MALFORMED_MODEL, "non-negative"},
    {{"location", "weights.bin", "offset", "99999999999999999999999"}, 2, QS_ERR_MALFORMED_MODEL,
     "non-negative"},
    {{"location", "weights.bin", "length", "0x30"}, 2, QS_ERR_MALFORMED_MODEL, "non-negative"},
    {{"location", "weights.bin", "offset", "18446744073709551615"}, 2, QS_ERR_MALFORMED_MODEL,
     "past the end"},
    {{"location", "weights.bin", "offset", "40"}, 2, QS_ERR_MALFORMED_MODEL, "past the end"},
    {{"location", "sub/bias.bin"}, 1, QS_ERR_MALFORMED_MODEL, "past the end"},
    {{"location", "weights.bin", "offset", "16", "length", "44"}, 3, QS_ERR_MALFORMED_MODEL,
     "length"},
    {{"location", "weights.bin", "offset", "16", "length", "18446744073709551615"}, 3,
     QS_ERR_MALFORMED_MODEL, "length"},
};

START_TEST(test_external_data_errors_name_the_tensor) {
    const bad_case *c = &BAD[_i];
    qs_model *m = NULL;
    qs_error err;
    qs_status st = load(c->kv, c->n, &m, &err);
    ck_assert_ptr_null(m);
    ck_assert_msg(st == c->status, "case %d: status %s, want %s (%s: %s)", _i,
                  qs_status_to_string(st), qs_status_to_string(c->status), err.where,
                  err.message);
    ck_assert_msg(strstr(err.where, "initializer \"W\"") != NULL, "case %d: where is \"%s\"", _i,
                  err.where);
    ck_assert_msg(strstr(err.message, c->message) != NULL, "case %d: message \"%s\" lacks \"%s\"",
                  _i, err.message, c->message);
}
END_TEST

START_TEST(test_external_data_needs_a_file) {
    static const char *const w_kv[] = {"location", "weights.bin", "offset", "16"};
    size_t size;
    uint8_t *buf = build(w_kv, 2, &size);
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_memory(buf, size, NULL, &m, &err), QS_ERR_UNSUPPORTED);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.where, "initializer \"W\""));
    ck_assert_ptr_nonnull(strstr(err.message, "from a file"));
    free(buf);
}
END_TEST

/* Data files cut short after the model was written: an error, never a crash or a partial model. */
START_TEST(test_external_data_truncated_file) {
    static const char *const w_kv[] = {"location", "weights.bin", "offset", "16", "length", "48"};
    qs_model *m = NULL;
    qs_error err;
    write_file("weights.bin", W, 30);
    ck_assert_int_eq(load(w_kv, 3, &m, &err), QS_ERR_MALFORMED_MODEL);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(err.message, "past the end"));
}
END_TEST

static Suite *external_data_suite(void) {
    Suite *s = suite_create("external_data");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_external_data_loads_and_runs);
    tcase_add_loop_test(tc, test_external_data_errors_name_the_tensor, 0,
                        (int)(sizeof(BAD) / sizeof(BAD[0])));
    tcase_add_test(tc, test_external_data_needs_a_file);
    tcase_add_test(tc, test_external_data_truncated_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(external_data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
