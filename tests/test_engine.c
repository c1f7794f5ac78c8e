/* Engine tests: loading (valid, malformed, unsupported), optimized vs reference execution,
 * dynamic batch, threads, and real models against ONNX Runtime's outputs. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/npy.h"
#include "helpers/onnx_builder.h"
#include "quantserve/engine.h"

static const char *shared_data(void) {
    const char *d = getenv("QS_SHARED_DATA");
    return d && access(d, R_OK) == 0 ? d : NULL;
}

/* A small MobileNet-shaped network: stem conv+BN+ReLU6, depthwise+BN+ReLU, pointwise+BN,
 * residual Add, MaxPool, GlobalAveragePool, Flatten, Gemm, Softmax. Dynamic batch. */
static uint8_t *build_mini_net(size_t *size) {
    qst_model *m = qst_model_create(13);
    float w[8 * 8 * 9];
    int64_t in_dims[4] = {-1, 3, 17, 15};
    qst_model_input(m, "x", QS_DTYPE_FLOAT32, 4, in_dims);
    qst_model_output(m, "prob");

    int64_t w1d[4] = {8, 3, 3, 3}, vd[1] = {8};
    qst_fill_random(w, 8 * 3 * 9, 1, -0.5f, 0.5f);
    qst_model_init_f32(m, "w1", 4, w1d, w);
    const char *bn_names[3][4] = {{"s1", "b1", "m1", "v1"}, {"s2", "b2", "m2", "v2"},
                                  {"s3", "b3", "m3", "v3"}};
    for (int k = 0; k < 3; k++) {
        float p[8];
        qst_fill_random(p, 8, 10u + (uint32_t)k, 0.5f, 1.5f);
        qst_model_init_f32(m, bn_names[k][0], 1, vd, p);
        qst_fill_random(p, 8, 20u + (uint32_t)k, -0.2f, 0.2f);
        qst_model_init_f32(m, bn_names[k][1], 1, vd, p);
        qst_fill_random(p, 8, 30u + (uint32_t)k, -0.1f, 0.1f);
        qst_model_init_f32(m, bn_names[k][2], 1, vd, p);
        qst_fill_random(p, 8, 40u + (uint32_t)k, 0.5f, 2.0f);
        qst_model_init_f32(m, bn_names[k][3], 1, vd, p);
    }
    int64_t scalar_dims[1] = {0};
    float zero = 0.0f, six = 6.0f;
    qst_model_init_f32(m, "zero", 0, scalar_dims, &zero);
    qst_model_init_f32(m, "six", 0, scalar_dims, &six);

    qst_node *n = qst_model_node(m, "Conv", "x,w1", "c1");
    int64_t k3[2] = {3, 3}, s2[2] = {2, 2}, p1[4] = {1, 1, 1, 1}, p_asym[4] = {0, 1, 2, 1};
    qst_node_ints(n, "kernel_shape", 2, k3);
    qst_node_ints(n, "strides", 2, s2);
    qst_node_ints(n, "pads", 4, p1);
    qst_model_node(m, "BatchNormalization", "c1,s1,b1,m1,v1", "bn1");
    qst_model_node(m, "Clip", "bn1,zero,six", "a1");

    int64_t w2d[4] = {8, 1, 3, 3};
    qst_fill_random(w, 8 * 9, 2, -0.5f, 0.5f);
    qst_model_init_f32(m, "w2", 4, w2d, w);
    n = qst_model_node(m, "Conv", "a1,w2", "c2");
    qst_node_int(n, "group", 8);
    qst_node_ints(n, "pads", 4, p_asym);
    qst_model_node(m, "BatchNormalization", "c2,s2,b2,m2,v2", "bn2");
    qst_model_node(m, "Relu", "bn2", "a2");

    int64_t w3d[4] = {8, 8, 1, 1};
    qst_fill_random(w, 8 * 8, 3, -0.5f, 0.5f);
    qst_model_init_f32(m, "w3", 4, w3d, w);
    /* a2 is 9x9 after the asymmetric pads: pad a1 (9x8) back to its shape with a 1x1 conv of
     * a1 so the residual shapes match. */
    qst_model_node(m, "Conv", "a1,w3", "c3");
    qst_model_node(m, "BatchNormalization", "c3,s3,b3,m3,v3", "bn3");
    n = qst_model_node(m, "MaxPool", "a2", "mp");
    int64_t k2[2] = {2, 2}, s1[2] = {1, 1}, p01[4] = {0, 0, 0, 0};
    qst_node_ints(n, "kernel_shape", 2, k2);
    qst_node_ints(n, "strides", 2, s1);
    qst_node_ints(n, "pads", 4, p01);
    /* a2: (9 + 0 + 2 - 3) + 1 = 9 rows, (8 + 1 + 1 - 3) + 1 = 8 cols; maxpool 2x2 s1 -> 8x7;
     * bn3 is 9x8: slice-free residual needs equal shapes, so add bn3 to a2 instead. */
    qst_model_node(m, "Add", "bn3,a2", "res");
    qst_model_node(m, "GlobalAveragePool", "res", "gap");
    qst_model_node(m, "GlobalAveragePool", "mp", "gap2");
    qst_model_node(m, "Add", "gap,gap2", "gsum");
    n = qst_model_node(m, "Flatten", "gsum", "flat");
    qst_node_int(n, "axis", 1);

    int64_t wfd[2] = {10, 8}, bfd[1] = {10};
    float wf[80], bf[10];
    qst_fill_random(wf, 80, 4, -1.0f, 1.0f);
    qst_fill_random(bf, 10, 5, -0.1f, 0.1f);
    qst_model_init_f32(m, "wf", 2, wfd, wf);
    qst_model_init_f32(m, "bf", 1, bfd, bf);
    n = qst_model_node(m, "Gemm", "flat,wf,bf", "logits");
    qst_node_int(n, "transB", 1);
    n = qst_model_node(m, "Softmax", "logits", "prob");
    qst_node_int(n, "axis", 1);
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

static qs_model *load_buf(const uint8_t *buf, size_t size, qs_optimize_level level) {
    qs_model_options o;
    qs_error err;
    qs_model *model = NULL;
    qs_model_options_init(&o);
    o.optimize = level;
    qs_error_clear(&err);
    qs_status st = qs_model_load_memory(buf, size, &o, &model, &err);
    ck_assert_msg(st == QS_OK, "load failed: %s: %s", err.where, err.message);
    return model;
}

/* Run a single-input model on x; returns a malloc'ed copy of output 0. */
static float *run_once(const qs_model *model, int threads, const float *x, int32_t rank,
                       const int64_t *dims, size_t *out_numel) {
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
    ck_assert_msg(st == QS_OK, "run failed: %s: %s", err.where, err.message);
    /* A second run with the same shapes reuses the plan and must give the same answer. */
    ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_OK);
    qs_tensor out;
    ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
    size_t n = qs_tensor_numel(&out);
    float *copy = malloc(n * sizeof(float));
    memcpy(copy, out.data, n * sizeof(float));
    *out_numel = n;
    qs_session_free(s);
    return copy;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (1e-6 + fabs((double)b[i]));
        if (d > worst)
            worst = d;
    }
    return worst;
}

START_TEST(test_optimized_matches_reference) {
    size_t size, n_opt, n_ref;
    uint8_t *buf = build_mini_net(&size);
    qs_model *opt = load_buf(buf, size, QS_OPTIMIZE_ALL);
    qs_model *ref = load_buf(buf, size, QS_OPTIMIZE_NONE);
    qs_model_info io, ir;
    qs_model_get_info(opt, &io);
    qs_model_get_info(ref, &ir);
    ck_assert_msg(io.node_count < ir.node_count, "fusion removed no nodes (%llu vs %llu)",
                  (unsigned long long)io.node_count, (unsigned long long)ir.node_count);
    for (int64_t batch = 1; batch <= 3; batch += 2) {
        int64_t dims[4] = {batch, 3, 17, 15};
        size_t numel = (size_t)batch * 3 * 17 * 15;
        float *x = malloc(numel * sizeof(float));
        qst_fill_random(x, numel, 7, -2.0f, 2.0f);
        for (int threads = 1; threads <= 2; threads++) {
            float *a = run_once(opt, threads, x, 4, dims, &n_opt);
            float *b = run_once(ref, threads, x, 4, dims, &n_ref);
            ck_assert_uint_eq(n_opt, (size_t)batch * 10);
            ck_assert_uint_eq(n_opt, n_ref);
            double d = max_rel_diff(a, b, n_opt);
            ck_assert_msg(d < 1e-4, "batch %lld threads %d: max rel diff %g", (long long)batch,
                          threads, d);
            free(a);
            free(b);
        }
        free(x);
    }
    qs_model_free(opt);
    qs_model_free(ref);
    free(buf);
}
END_TEST

START_TEST(test_signature) {
    size_t size;
    uint8_t *buf = build_mini_net(&size);
    qs_model *m = load_buf(buf, size, QS_OPTIMIZE_ALL);
    const char *name;
    qs_tensor d;
    ck_assert_uint_eq(qs_model_input_count(m), 1);
    ck_assert_uint_eq(qs_model_output_count(m), 1);
    ck_assert_int_eq(qs_model_input(m, 0, &name, &d), QS_OK);
    ck_assert_str_eq(name, "x");
    ck_assert_int_eq(d.rank, 4);
    ck_assert_int_eq(d.dims[0], -1);
    ck_assert_int_eq(d.dims[1], 3);
    ck_assert_int_eq(qs_model_output(m, 0, &name, &d), QS_OK);
    ck_assert_str_eq(name, "prob");
    ck_assert_int_eq(d.dims[0], -1);
    ck_assert_int_eq(d.dims[1], 10);
    ck_assert_int_eq(qs_model_input(m, 1, &name, &d), QS_ERR_INVALID_ARGUMENT);
    qs_model_free(m);
    free(buf);
}
END_TEST

START_TEST(test_bad_inputs_at_run) {
    size_t size;
    uint8_t *buf = build_mini_net(&size);
    qs_model *m = load_buf(buf, size, QS_OPTIMIZE_ALL);
    qs_session *s = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_session_create(m, NULL, &s, &err), QS_OK);
    float x[3 * 17 * 16];
    memset(x, 0, sizeof(x));
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 3, 17, 16}, .data = x};
    ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_ERR_SHAPE);
    qs_error_clear(&err);
    in.dims[3] = 15;
    in.dtype = QS_DTYPE_INT64;
    ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_ERR_INVALID_ARGUMENT);
    qs_error_clear(&err);
    in.dtype = QS_DTYPE_FLOAT32;
    in.rank = 3;
    ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_ERR_SHAPE);
    qs_error_clear(&err);
    ck_assert_int_eq(qs_session_run(s, &in, 0, &err), QS_ERR_INVALID_ARGUMENT);
    qs_session_free(s);
    qs_model_free(m);
    free(buf);
}
END_TEST

START_TEST(test_malformed_models_never_crash) {
    size_t size;
    qs_error err;
    qs_model *m = NULL;
    uint8_t *buf = build_mini_net(&size);
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_memory(buf, 0, NULL, &m, &err), QS_ERR_MALFORMED_MODEL);
    qs_error_clear(&err);
    const char garbage[] = "this is not an onnx model at all";
    ck_assert_int_ne(qs_model_load_memory(garbage, sizeof(garbage), NULL, &m, &err), QS_OK);
    ck_assert_ptr_null(m);
    /* Every truncation and many single-byte corruptions: an error or a model, never a crash. */
    for (size_t len = 1; len < size; len += 1 + len / 64) {
        qs_error_clear(&err);
        if (qs_model_load_memory(buf, len, NULL, &m, &err) == QS_OK) {
            qs_model_free(m);
            m = NULL;
        } else {
            ck_assert_int_ne(err.status, QS_OK);
            ck_assert(err.message[0] != '\0');
        }
    }
    uint8_t *mut = malloc(size);
    uint32_t seed = 12345;
    for (int i = 0; i < 400; i++) {
        memcpy(mut, buf, size);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            mut[(seed >> 8) % size] ^= (uint8_t)(1u << ((seed >> 4) & 7));
        }
        qs_error_clear(&err);
        if (qs_model_load_memory(mut, size, NULL, &m, &err) == QS_OK) {
            qs_model_free(m);
            m = NULL;
        }
    }
    free(mut);
    free(buf);
}
END_TEST

START_TEST(test_unsupported_op_names_node) {
    qst_model *b = qst_model_create(13);
    int64_t dims[2] = {1, 4};
    qst_model_input(b, "x", QS_DTYPE_FLOAT32, 2, dims);
    qst_model_output(b, "y");
    qst_model_node(b, "Relu", "x", "r");
    qst_model_node(b, "NotARealOp", "r", "y");
    size_t size;
    uint8_t *buf = qst_model_pack(b, &size);
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_memory(buf, size, NULL, &m, &err), QS_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.where, "NotARealOp"));
    ck_assert_ptr_nonnull(strstr(err.where, "\"y\""));
    free(buf);
    qst_model_free(b);
}
END_TEST

START_TEST(test_missing_input_is_malformed) {
    qst_model *b = qst_model_create(13);
    int64_t dims[2] = {1, 4};
    qst_model_input(b, "x", QS_DTYPE_FLOAT32, 2, dims);
    qst_model_output(b, "y");
    qst_model_node(b, "Add", "x,nowhere", "y");
    size_t size;
    uint8_t *buf = qst_model_pack(b, &size);
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_memory(buf, size, NULL, &m, &err), QS_ERR_MALFORMED_MODEL);
    ck_assert_ptr_nonnull(strstr(err.message, "nowhere"));
    free(buf);
    qst_model_free(b);
}
END_TEST

START_TEST(test_file_errors) {
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_file("/nonexistent/model.onnx", NULL, &m, &err), QS_ERR_IO);
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_file("/", NULL, &m, &err), QS_ERR_IO);
    ck_assert_str_eq(qs_status_to_string(QS_ERR_MALFORMED_MODEL), "malformed_model");
    ck_assert_str_eq(qs_status_to_string((qs_status)999), "unknown");
}
END_TEST

/* Real model: load model_rel as `variant`, run one input (center-cropped to crop x crop when
 * crop > 0) at 1 and 2 threads and compare with ONNX Runtime's logits: every element within tol
 * (tol 0: all equal); a NaN on either side counts as a difference. */
static void compare_with_reference(const char *model_rel, qs_variant_kind variant,
                                   const char *input_npy, const char *expect_npy, int64_t crop,
                                   double tol) {
    const char *shared = shared_data();
    char path[1024];
    if (!shared)
        return;
    qst_npy x, want;
    snprintf(path, sizeof(path), "%s/%s", shared, input_npy);
    ck_assert_msg(qst_npy_load(path, &x) == 0, "cannot read %s", path);
    if (crop > 0 && crop < x.dims[2]) {
        /* Center crop of an NCHW batch-1 tensor, in place. */
        int64_t h = x.dims[2], w = x.dims[3], oy = (h - crop) / 2, ox = (w - crop) / 2;
        float *dst = x.data;
        for (int64_t c = 0; c < x.dims[1]; c++)
            for (int64_t y = 0; y < crop; y++)
                for (int64_t k = 0; k < crop; k++)
                    *dst++ = x.data[(c * h + y + oy) * w + k + ox];
        x.dims[2] = x.dims[3] = crop;
        x.numel = (size_t)(x.dims[1] * crop * crop);
    }
    if (expect_npy[0] == '/') {
        snprintf(path, sizeof(path), "%s", expect_npy);
    } else {
        const char *td = getenv("QS_TEST_DATA");
        snprintf(path, sizeof(path), "%s/%s", td ? td : "tests/data", expect_npy);
    }
    if (access(path, R_OK) != 0) {
        snprintf(path, sizeof(path), "%s/%s", shared, expect_npy);
    }
    ck_assert_msg(qst_npy_load(path, &want) == 0, "cannot read %s", path);
    snprintf(path, sizeof(path), "%s/%s", shared, model_rel);
    qs_model_options o;
    qs_model_options_init(&o);
    o.variant = variant;
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_msg(qs_model_load_file(path, &o, &m, &err) == QS_OK, "%s: %s: %s", path,
                  err.where, err.message);
    for (int threads = 1; threads <= 2; threads++) {
        size_t n;
        float *got = run_once(m, threads, x.data, x.rank, x.dims, &n);
        ck_assert_uint_eq(n, want.numel);
        /* Outside the tolerance: unequal and not |diff| <= tol, so NaN fails; the worst one
         * reported is the first NaN, else the largest |diff|. */
        double worst = 0;
        size_t at = 0, off = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)got[i] - (double)want.data[i]);
            if (got[i] == want.data[i] || d <= tol)
                continue;
            off++;
            if (!isnan(worst) && !(d <= worst)) {
                worst = d;
                at = i;
            }
        }
        ck_assert_msg(off == 0,
                      "%s (%d threads): %zu of %zu outputs off by more than %g, max |diff| %g "
                      "at %zu (got %g want %g)",
                      model_rel, threads, off, n, tol, worst, at, (double)got[at],
                      (double)want.data[at]);
        free(got);
    }
    qs_model_free(m);
    qst_npy_free(&x);
    qst_npy_free(&want);
}

START_TEST(test_mobilenet_v2_matches_ort) {
    compare_with_reference(
        "models/mobilenet_v2/mobilenet_v2_fp32.onnx", QS_VARIANT_FP32,
        "models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy",
        "models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_logits_fp32_onnx.npy", 0, 1e-3);
}
END_TEST

/* The TF MobileNets (asymmetric SAME pads) on the same input; references from ONNX Runtime
 * 1.30 (tests/data/reference, made with ../shared/anchors/ort-run). */
START_TEST(test_tf_mobilenet_v2_matches_ort) {
    compare_with_reference(
        "models/tf_mobilenet_v2_1.0_224_quant/mobilenet_v2_1.0_224_quant_fp32.onnx",
        QS_VARIANT_FP32,
        "models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy",
        "reference/tf_mobilenet_v2_fp32_logits_347.npy", 0, 1e-3);
}
END_TEST

START_TEST(test_tf_mobilenet_v1_matches_ort) {
    compare_with_reference(
        "models/tf_mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant_fp32.onnx",
        QS_VARIANT_FP32,
        "models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy",
        "reference/tf_mobilenet_v1_025_fp32_logits_347crop128.npy", 128, 1e-3);
}
END_TEST

/* A real QDQ file with uint8 weights and non-zero weight zero points (TF MobileNetV1 0.25, no
 * residual Adds): run on the int8 kernels, its logits are ONNX Runtime 1.30's bit for bit
 * (reference made with ../shared/anchors/ort-run on the 347 test vector's center 128x128). */
START_TEST(test_tf_mobilenet_v1_qdq_matches_ort_exactly) {
    compare_with_reference(
        "models/tf_mobilenet_v1_0.25_128_quant/mobilenet_v1_0.25_128_quant_qdq.onnx",
        QS_VARIANT_INT8_QDQ,
        "models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy",
        "reference/tf_mobilenet_v1_025_qdq_logits_347crop128.npy", 128, 0);
}
END_TEST

/* The pre-quantized MobileNetV2 (QDQ) run by the int8 kernels, against ONNX Runtime's int8
 * logits. Both requantize in float but round differently in places, so logits may differ by a
 * few output quantization steps (0.153 each); the top-1 class must agree. */
START_TEST(test_mobilenet_v2_qdq_int8_matches_ort) {
    const char *shared = shared_data();
    char path[1024];
    if (!shared)
        return;
    qst_npy x, want;
    snprintf(path, sizeof(path), "%s/models/mobilenet_v2/test_vectors/"
             "ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy", shared);
    ck_assert_int_eq(qst_npy_load(path, &x), 0);
    snprintf(path, sizeof(path), "%s/models/mobilenet_v2/test_vectors/"
             "ILSVRC2012_val_00000347_logits_int8_qdq_onnx_ort.npy", shared);
    ck_assert_int_eq(qst_npy_load(path, &want), 0);
    snprintf(path, sizeof(path), "%s/models/mobilenet_v2/mobilenet_v2_int8_qdq.onnx", shared);
    qs_model_options o;
    qs_model_options_init(&o);
    o.variant = QS_VARIANT_INT8_QDQ;
    qs_model *m = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_msg(qs_model_load_file(path, &o, &m, &err) == QS_OK, "%s: %s", err.where,
                  err.message);
    qs_model_info info;
    qs_model_get_info(m, &info);
    ck_assert_msg(info.weight_bytes < 5000000, "int8 weights take %llu bytes",
                  (unsigned long long)info.weight_bytes);
    size_t n;
    float *got = run_once(m, 1, x.data, x.rank, x.dims, &n);
    ck_assert_uint_eq(n, want.numel);
    size_t arg_got = 0, arg_want = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (got[i] > got[arg_got])
            arg_got = i;
        if (want.data[i] > want.data[arg_want])
            arg_want = i;
        double d = fabs((double)got[i] - (double)want.data[i]);
        worst = d > worst ? d : worst;
    }
    ck_assert_uint_eq(arg_got, arg_want);
    ck_assert_msg(worst <= 1.0, "max |diff| %g vs ORT int8", worst);
    free(got);
    qs_model_free(m);
    qst_npy_free(&x);
    qst_npy_free(&want);
}
END_TEST

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * (double)b[i];
        aa += (double)a[i] * (double)a[i];
        bb += (double)b[i] * (double)b[i];
    }
    return ab / (sqrt(aa * bb) + 1e-30);
}

/* The mini net's logits (before Softmax they matter more): int8 variants against fp32 on fresh
 * inputs. Calibration on 16 random batches; the output must keep cosine similarity >= 0.99. */
START_TEST(test_int8_variants_track_fp32) {
    size_t size;
    uint8_t *buf = build_mini_net(&size);
    qs_error err;
    qs_error_clear(&err);
    for (int observer = QS_OBSERVER_MINMAX; observer <= QS_OBSERVER_MSE; observer++) {
        qs_quant_options qo;
        qs_quant_options_init(&qo);
        qo.observer = (qs_observer_kind)observer;
        qs_calibrator *cal = NULL;
        ck_assert_int_eq(qs_calibrator_create(buf, size, &qo, &cal, &err), QS_OK);
        float x[2 * 3 * 17 * 15];
        qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {2, 3, 17, 15}, .data = x};
        for (uint32_t k = 0; k < 16; k++) {
            qst_fill_random(x, sizeof(x) / sizeof(x[0]), 100 + k, -2.0f, 2.0f);
            ck_assert_int_eq(qs_calibrator_observe(cal, &in, 1, &err), QS_OK);
        }
        ck_assert_uint_eq(qs_calibrator_samples(cal), 32);
        /* The cache round trip gives the same statistics. */
        char path[] = "/tmp/qs_test_calib_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(qs_calibrator_save(cal, path, &err), QS_OK);
        ck_assert_msg(qs_calibrator_load(cal, path, &err) == QS_OK, "%s: %s", err.where,
                      err.message);
        unlink(path);

        qs_model_options o;
        qs_model_options_init(&o);
        o.variant = QS_VARIANT_INT8_STATIC;
        o.calibration = cal;
        qs_model *q = NULL, *f = load_buf(buf, size, QS_OPTIMIZE_ALL);
        ck_assert_msg(qs_model_load_memory(buf, size, &o, &q, &err) == QS_OK, "%s: %s", err.where,
                      err.message);
        qst_fill_random(x, sizeof(x) / sizeof(x[0]), 999, -2.0f, 2.0f);
        size_t nq, nf;
        float *yq = run_once(q, 1, x, 4, in.dims, &nq);
        float *yf = run_once(f, 1, x, 4, in.dims, &nf);
        ck_assert_uint_eq(nq, nf);
        double c = cosine(yq, yf, nq);
        /* Entropy calibration clips hard on uniform random data (it is meant for bell-shaped
         * activations): hold it to a lower bar here; real images are checked by the accuracy
         * sweep. */
        double bar = qo.observer == QS_OBSERVER_ENTROPY ? 0.8 : 0.99;
        ck_assert_msg(c >= bar, "observer %s: cosine %f", qs_observer_name(qo.observer), c);
        free(yq);
        free(yf);
        qs_model_free(q);
        qs_model_free(f);
        qs_calibrator_free(cal);
    }
    /* Dynamic mode needs no calibration. */
    qs_model_options o;
    qs_model_options_init(&o);
    o.variant = QS_VARIANT_INT8_DYNAMIC;
    qs_model *q = NULL, *f = load_buf(buf, size, QS_OPTIMIZE_ALL);
    ck_assert_msg(qs_model_load_memory(buf, size, &o, &q, &err) == QS_OK, "%s", err.message);
    float x[3 * 17 * 15];
    int64_t dims[4] = {1, 3, 17, 15};
    qst_fill_random(x, sizeof(x) / sizeof(x[0]), 5, -2.0f, 2.0f);
    size_t nq, nf;
    float *yq = run_once(q, 2, x, 4, dims, &nq);
    float *yf = run_once(f, 1, x, 4, dims, &nf);
    double c = cosine(yq, yf, nq);
    ck_assert_msg(c >= 0.99, "dynamic: cosine %f", c);
    free(yq);
    free(yf);
    qs_model_free(q);
    qs_model_free(f);
    /* Static without a calibration is refused, clearly. */
    o.variant = QS_VARIANT_INT8_STATIC;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_memory(buf, size, &o, &q, &err), QS_ERR_INVALID_ARGUMENT);
    free(buf);
}
END_TEST

/* The fp32-vs-int8 report on the QDQ MobileNetV2 (its fp32 variant against its int8 variant):
 * every quantized activation is paired, errors are finite and ranked, the image agrees. */
START_TEST(test_quant_report_mobilenet_v2) {
    const char *shared = shared_data();
    char path[1024];
    if (!shared)
        return;
    qst_npy x;
    snprintf(path, sizeof(path), "%s/models/mobilenet_v2/test_vectors/"
             "ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy", shared);
    ck_assert_int_eq(qst_npy_load(path, &x), 0);
    snprintf(path, sizeof(path), "%s/models/mobilenet_v2/mobilenet_v2_int8_qdq.onnx", shared);
    qs_model_options o;
    qs_model_options_init(&o);
    qs_model *f = NULL, *q = NULL;
    qs_error err;
    qs_error_clear(&err);
    ck_assert_int_eq(qs_model_load_file(path, &o, &f, &err), QS_OK);
    o.variant = QS_VARIANT_INT8_QDQ;
    ck_assert_int_eq(qs_model_load_file(path, &o, &q, &err), QS_OK);
    qs_quant_report *r = NULL;
    ck_assert_int_eq(qs_quant_report_create(f, q, &r, &err), QS_OK);
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 3, 224, 224}, .data = x.data};
    ck_assert_int_eq(qs_quant_report_add(r, &in, 1, &err), QS_OK);
    const qs_layer_report *layers;
    size_t n = qs_quant_report_layers(r, &layers);
    ck_assert_uint_ge(n, 50); /* 52 convolutions, 10 adds, the pool: most are comparable */
    for (size_t i = 0; i < n; i++) {
        ck_assert(isfinite(layers[i].sqnr_db) && layers[i].sqnr_db > 10.0);
        ck_assert(layers[i].cosine > 0.95 && layers[i].cosine <= 1.0 + 1e-9);
        if (i)
            ck_assert(layers[i].sqnr_db >= layers[i - 1].sqnr_db);
    }
    qs_model_agreement a;
    qs_quant_report_agreement(r, &a);
    ck_assert_uint_eq(a.samples, 1);
    ck_assert(a.top1_agreement == 1.0);
    ck_assert(a.mean_kl >= 0.0 && a.mean_kl < 0.05);
    qs_quant_report_free(r);
    qs_model_free(f);
    qs_model_free(q);
    qst_npy_free(&x);
}
END_TEST

static Suite *engine_suite(void) {
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_signature);
    tcase_add_test(tc, test_malformed_models_never_crash);
    tcase_add_test(tc, test_unsupported_op_names_node);
    tcase_add_test(tc, test_missing_input_is_malformed);
    tcase_add_test(tc, test_file_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_optimized_matches_reference);
    tcase_add_test(tc, test_bad_inputs_at_run);
    tcase_add_test(tc, test_int8_variants_track_fp32);
    suite_add_tcase(s, tc);
    tc = tcase_create("real_models");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mobilenet_v2_matches_ort);
    tcase_add_test(tc, test_tf_mobilenet_v2_matches_ort);
    tcase_add_test(tc, test_tf_mobilenet_v1_matches_ort);
    tcase_add_test(tc, test_tf_mobilenet_v1_qdq_matches_ort_exactly);
    tcase_add_test(tc, test_mobilenet_v2_qdq_int8_matches_ort);
    tcase_add_test(tc, test_quant_report_mobilenet_v2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    if (!shared_data())
        fprintf(stderr, "test_engine: ../shared/data absent: real-model checks are skipped\n");
    SRunner *sr = srunner_create(engine_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
