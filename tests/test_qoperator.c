/* QOperator models (QLinearConv, QLinearMatMul) lowered to the int8 kernels (INT8_QDQ variant)
 * against the reference operators (fp32 variant, QS_OPTIMIZE_NONE). */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/onnx_builder.h"
#include "quantserve/engine.h"

/* An integer constant: the builder writes float and int64 initializers only, so the values go in
 * as floats through a Cast, which constant folding turns into the typed constant at load. */
static void init_int(qst_model *m, const char *name, qs_dtype t, int32_t rank, const int64_t *dims,
                     const float *v) {
    char fname[64];
    snprintf(fname, sizeof(fname), "%s_f", name);
    qst_model_init_f32(m, fname, rank, dims, v);
    qst_node *n = qst_model_node(m, "Cast", fname, name);
    qst_node_int(n, "to", (int64_t)t);
}

static void init_scalar_f32(qst_model *m, const char *name, float v) {
    int64_t none[1] = {0};
    qst_model_init_f32(m, name, 0, none, &v);
}

static void init_scalar_int(qst_model *m, const char *name, qs_dtype t, float v) {
    int64_t none[1] = {0};
    init_int(m, name, t, 0, none, &v);
}

/* n integers in [lo, hi] as floats. */
static void fill_ints(float *v, size_t n, uint32_t seed, float lo, float hi) {
    qst_fill_random(v, n, seed, lo, hi + 1.0f);
    for (size_t i = 0; i < n; i++)
        v[i] = fminf(floorf(v[i]), hi);
}

enum { C_IN = 8, HW = 12, M1 = 16, BATCH = 2 };
static const float y2_scale = 0.03f;

typedef struct {
    bool u8_weights;   /* uint8 weights: per-channel zero points (conv1), one far from 128
                        * (depthwise): most rows need a weight offset in the kernels */
    bool depthwise;    /* append the depthwise QLinearConv */
    bool int8_act;     /* x quantized to int8 (not lowered) */
} chain_opts;

/* QuantizeLinear -> QLinearConv 3x3 stride 2 SAME_UPPER (per-channel scales, int32 bias) ->
 * [QLinearConv depthwise 3x3 pads 1 (per-tensor)] -> DequantizeLinear. */
static uint8_t *build_conv_chain(const chain_opts *o, size_t *size) {
    qst_model *m = qst_model_create(13);
    int64_t in_dims[4] = {BATCH, C_IN, HW, HW};
    qst_model_input(m, "x", QS_DTYPE_FLOAT32, 4, in_dims);
    qst_model_output(m, "y");
    qs_dtype act = o->int8_act ? QS_DTYPE_INT8 : QS_DTYPE_UINT8;
    float zero_shift = o->int8_act ? -128.0f : 0.0f;

    init_scalar_f32(m, "xs", 2.0f / 255.0f);
    init_scalar_int(m, "xz", act, 128.0f + zero_shift);
    qst_model_node(m, "QuantizeLinear", "x,xs,xz", "xq");

    float w1[M1 * C_IN * 9], v[M1];
    int64_t w1d[4] = {M1, C_IN, 3, 3}, md[1] = {M1};
    if (o->u8_weights) {
        fill_ints(w1, M1 * C_IN * 9, 11, 0.0f, 255.0f);
        init_int(m, "w1", QS_DTYPE_UINT8, 4, w1d, w1);
        fill_ints(v, M1, 12, 100.0f, 156.0f);
        init_int(m, "w1z", QS_DTYPE_UINT8, 1, md, v);
    } else {
        fill_ints(w1, M1 * C_IN * 9, 11, -127.0f, 127.0f);
        init_int(m, "w1", QS_DTYPE_INT8, 4, w1d, w1);
        memset(v, 0, sizeof(v));
        init_int(m, "w1z", QS_DTYPE_INT8, 1, md, v);
    }
    qst_fill_random(v, M1, 13, 0.002f, 0.004f);
    qst_model_init_f32(m, "w1s", 1, md, v);
    fill_ints(v, M1, 14, -3000.0f, 3000.0f);
    init_int(m, "b1", QS_DTYPE_INT32, 1, md, v);
    init_scalar_f32(m, "y1s", 0.03f);
    init_scalar_int(m, "y1z", act, 120.0f + zero_shift);
    qst_node *n = qst_model_node(m, "QLinearConv", "xq,xs,xz,w1,w1s,w1z,y1s,y1z,b1",
                                 o->depthwise ? "y1" : "yq");
    int64_t s2[2] = {2, 2};
    qst_node_ints(n, "strides", 2, s2);
    qst_node_string(n, "auto_pad", "SAME_UPPER"); /* 12 -> 6: pads 0 before, 1 after */

    if (o->depthwise) {
        float w2[M1 * 9];
        int64_t w2d[4] = {M1, 1, 3, 3}, p1[4] = {1, 1, 1, 1};
        if (o->u8_weights) {
            fill_ints(w2, M1 * 9, 21, 0.0f, 255.0f);
            init_int(m, "w2", QS_DTYPE_UINT8, 4, w2d, w2);
            init_scalar_int(m, "w2z", QS_DTYPE_UINT8, 200.0f);
        } else {
            fill_ints(w2, M1 * 9, 21, -127.0f, 127.0f);
            init_int(m, "w2", QS_DTYPE_INT8, 4, w2d, w2);
            init_scalar_int(m, "w2z", QS_DTYPE_INT8, 0.0f);
        }
        init_scalar_f32(m, "w2s", o->u8_weights ? 0.002f : 0.004f);
        fill_ints(v, M1, 22, -2000.0f, 2000.0f);
        init_int(m, "b2", QS_DTYPE_INT32, 1, md, v);
        init_scalar_f32(m, "y2s", y2_scale);
        init_scalar_int(m, "y2z", act, 128.0f + zero_shift);
        n = qst_model_node(m, "QLinearConv", "y1,y1s,y1z,w2,w2s,w2z,y2s,y2z,b2", "yq");
        qst_node_int(n, "group", M1);
        qst_node_ints(n, "pads", 4, p1);
        qst_model_node(m, "DequantizeLinear", "yq,y2s,y2z", "y");
    } else {
        qst_model_node(m, "DequantizeLinear", "yq,y1s,y1z", "y");
    }
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

enum { MM_K = 20, MM_N = 24 };

/* QuantizeLinear -> QLinearMatMul (constant B [K, N], per-column scales and zero points) ->
 * DequantizeLinear. */
static uint8_t *build_matmul(bool u8_weights, size_t *size) {
    qst_model *m = qst_model_create(13);
    int64_t in_dims[3] = {2, 3, MM_K};
    qst_model_input(m, "a", QS_DTYPE_FLOAT32, 3, in_dims);
    qst_model_output(m, "y");
    init_scalar_f32(m, "as", 2.0f / 255.0f);
    init_scalar_int(m, "az", QS_DTYPE_UINT8, 128.0f);
    qst_model_node(m, "QuantizeLinear", "a,as,az", "aq");
    float b[MM_K * MM_N], v[MM_N];
    int64_t bd[2] = {MM_K, MM_N}, nd[1] = {MM_N};
    if (u8_weights) {
        fill_ints(b, MM_K * MM_N, 31, 0.0f, 255.0f);
        init_int(m, "b", QS_DTYPE_UINT8, 2, bd, b);
        fill_ints(v, MM_N, 32, 110.0f, 146.0f);
        init_int(m, "bz", QS_DTYPE_UINT8, 1, nd, v);
    } else {
        fill_ints(b, MM_K * MM_N, 31, -127.0f, 127.0f);
        init_int(m, "b", QS_DTYPE_INT8, 2, bd, b);
        memset(v, 0, sizeof(v));
        init_int(m, "bz", QS_DTYPE_INT8, 1, nd, v);
    }
    qst_fill_random(v, MM_N, 33, 0.002f, 0.004f);
    qst_model_init_f32(m, "bs", 1, nd, v);
    init_scalar_f32(m, "ys", y2_scale);
    init_scalar_int(m, "yz", QS_DTYPE_UINT8, 128.0f);
    qst_model_node(m, "QLinearMatMul", "aq,as,az,b,bs,bz,ys,yz", "yq");
    qst_model_node(m, "DequantizeLinear", "yq,ys,yz", "y");
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

static qs_model *load(const uint8_t *buf, size_t size, qs_variant_kind variant,
                      qs_optimize_level level) {
    qs_model_options o;
    qs_model_options_init(&o);
    o.variant = variant;
    o.optimize = level;
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    qs_status st = qs_model_load_memory(buf, size, &o, &m, &err);
    ck_assert_msg(st == QS_OK, "load: %s: %s", err.where, err.message);
    return m;
}

static float *run(const qs_model *model, int32_t threads, const float *x, int32_t rank,
                  const int64_t *dims, size_t *numel) {
    qs_session_options so;
    qs_session *s = NULL;
    qs_error err;
    qs_session_options_init(&so);
    so.threads = threads;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_session_create(model, &so, &s, &err), QS_OK);
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = rank, .data = (void *)x};
    memcpy(in.dims, dims, sizeof(int64_t) * (size_t)rank);
    qs_status st = qs_session_run(s, &in, 1, &err);
    ck_assert_msg(st == QS_OK, "run: %s: %s", err.where, err.message);
    qs_tensor out;
    ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
    *numel = qs_tensor_numel(&out);
    float *copy = malloc(*numel * sizeof(float));
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, out.data, *numel * sizeof(float));
    qs_session_free(s);
    return copy;
}

typedef struct {
    size_t n, differ, saturated;
    long max_steps;
    double mean_steps;
} step_diff;

/* Compare two dequantized outputs in output quantization steps. */
static step_diff compare_steps(const float *a, const float *b, size_t n, float scale) {
    step_diff d = {.n = n};
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        long steps = labs(lroundf((a[i] - b[i]) / scale));
        if (steps)
            d.differ++;
        if (steps > d.max_steps)
            d.max_steps = steps;
        sum += (double)steps;
        float q = b[i] / scale; /* zero point 128: the ends are -128 and 127 */
        if (q <= -127.5f || q >= 126.5f)
            d.saturated++;
    }
    d.mean_steps = n ? sum / (double)n : 0;
    return d;
}

/* Lowered (int8 kernels) and reference runs of one model on one random input. */
static step_diff lowered_vs_reference(const uint8_t *buf, size_t size, int32_t rank,
                                      const int64_t *dims, uint64_t *packed, const char *what) {
    qs_model *low = load(buf, size, QS_VARIANT_INT8_QDQ, QS_OPTIMIZE_ALL);
    qs_model *ref = load(buf, size, QS_VARIANT_FP32, QS_OPTIMIZE_NONE);
    qs_model_info il, ir;
    qs_model_get_info(low, &il);
    qs_model_get_info(ref, &ir);
    ck_assert_uint_eq(ir.packed_bytes, 0); /* the reference operators pack nothing */
    *packed = il.packed_bytes;
    size_t count = 1;
    for (int32_t i = 0; i < rank; i++)
        count *= (size_t)dims[i];
    float *x = malloc(count * sizeof(float));
    ck_assert_ptr_nonnull(x);
    qst_fill_random(x, count, 99, -1.0f, 1.0f);
    size_t nl, nr, n2;
    float *yl = run(low, 1, x, rank, dims, &nl);
    float *yr = run(ref, 1, x, rank, dims, &nr);
    float *y2 = run(low, 2, x, rank, dims, &n2);
    ck_assert_uint_eq(nl, nr);
    ck_assert_uint_eq(nl, n2);
    ck_assert_int_eq(memcmp(yl, y2, nl * sizeof(float)), 0); /* threads do not change results */
    step_diff d = compare_steps(yl, yr, nl, y2_scale);
    printf("%s: %zu values, %zu differ (max %ld, mean %.4f steps), %zu saturated; packed %llu "
           "bytes\n", what, d.n, d.differ, d.max_steps, d.mean_steps, d.saturated,
           (unsigned long long)il.packed_bytes);
    free(x);
    free(yl);
    free(yr);
    free(y2);
    qs_model_free(low);
    qs_model_free(ref);
    return d;
}

/* int8 weights with zero point 0 pass through unchanged: the only difference is requantization
 * (float in the kernels, double in the reference), at most one step. */
START_TEST(test_qlinearconv_chain_lowered) {
    size_t size1, size2;
    chain_opts one = {.depthwise = false}, two = {.depthwise = true};
    uint8_t *b1 = build_conv_chain(&one, &size1), *b2 = build_conv_chain(&two, &size2);
    int64_t dims[4] = {BATCH, C_IN, HW, HW};
    uint64_t p1, p2;
    step_diff d1 = lowered_vs_reference(b1, size1, 4, dims, &p1, "QLinearConv");
    step_diff d2 = lowered_vs_reference(b2, size2, 4, dims, &p2, "QLinearConv -> depthwise");
    ck_assert_uint_gt(p1, 0);  /* the first conv runs packed */
    ck_assert_uint_gt(p2, p1); /* and so does the depthwise one */
    ck_assert_int_le(d1.max_steps, 1);
    ck_assert_int_le(d2.max_steps, 1);
    ck_assert_uint_lt(d2.saturated, d2.n / 10);
    free(b1);
    free(b2);
}
END_TEST

/* uint8 weights with zero points stay exact (w - zero, with weight offsets where that does not
 * fit int8): as with int8 weights, only requantization differs, at most one step. */
START_TEST(test_qlinearconv_u8_weights_exact) {
    size_t size;
    chain_opts o = {.u8_weights = true, .depthwise = true};
    uint8_t *b = build_conv_chain(&o, &size);
    int64_t dims[4] = {BATCH, C_IN, HW, HW};
    uint64_t packed;
    step_diff d = lowered_vs_reference(b, size, 4, dims, &packed, "uint8 weights");
    ck_assert_uint_gt(packed, 0);
    ck_assert_int_le(d.max_steps, 1);
    ck_assert(d.mean_steps < 0.05);
    ck_assert_uint_lt(d.saturated, d.n / 10);
    free(b);
}
END_TEST

START_TEST(test_qlinearmatmul_lowered) {
    size_t size;
    int64_t dims[3] = {2, 3, MM_K};
    uint64_t packed;
    uint8_t *b = build_matmul(false, &size);
    step_diff d = lowered_vs_reference(b, size, 3, dims, &packed, "QLinearMatMul");
    ck_assert_uint_gt(packed, 0);
    ck_assert_int_le(d.max_steps, 1);
    free(b);
    b = build_matmul(true, &size);
    d = lowered_vs_reference(b, size, 3, dims, &packed, "QLinearMatMul uint8 B");
    ck_assert_uint_gt(packed, 0);
    ck_assert_int_le(d.max_steps, 1);
    ck_assert_uint_le(d.differ, 1); /* requantized weights gave 4 of 144 */
    free(b);
}
END_TEST

/* int8 activations are left to the reference operator: same results, nothing packed. */
START_TEST(test_int8_activations_stay_reference) {
    size_t size;
    chain_opts o = {.depthwise = true, .int8_act = true};
    uint8_t *b = build_conv_chain(&o, &size);
    int64_t dims[4] = {BATCH, C_IN, HW, HW};
    uint64_t packed;
    step_diff d = lowered_vs_reference(b, size, 4, dims, &packed, "int8 activations");
    ck_assert_uint_eq(packed, 0);
    ck_assert_uint_eq(d.differ, 0);
    free(b);
}
END_TEST

static Suite *qoperator_suite(void) {
    Suite *s = suite_create("qoperator");
    TCase *tc = tcase_create("lowering");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_qlinearconv_chain_lowered);
    tcase_add_test(tc, test_qlinearconv_u8_weights_exact);
    tcase_add_test(tc, test_qlinearmatmul_lowered);
    tcase_add_test(tc, test_int8_activations_stay_reference);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(qoperator_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
