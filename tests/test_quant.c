/* Quantization unit tests: affine parameters, weight quantization round trips, calibration
 * histograms (exact merging as the range grows), every observer on known distributions, and the
 * int8 graph static quantization makes of a residual network, and dynamic quantization's
 * convolutions against integer arithmetic. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "helpers/onnx_builder.h"
#include "quant/quant.h"

static void fill_gaussian(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        double u1 = (rand_r(&seed) + 1.0) / ((double)RAND_MAX + 2.0);
        double u2 = (rand_r(&seed) + 1.0) / ((double)RAND_MAX + 2.0);
        x[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

START_TEST(test_params_from_range) {
    float s;
    int32_t z;
    qs_quant_params_from_range(0.0f, 6.0f, false, 255, &s, &z);
    ck_assert_float_eq_tol(s, 6.0f / 255.0f, 1e-7f);
    ck_assert_int_eq(z, 0);
    qs_quant_params_from_range(-1.0f, 1.0f, false, 255, &s, &z);
    ck_assert_float_eq_tol(s, 2.0f / 255.0f, 1e-7f);
    ck_assert(z == 127 || z == 128); /* -lo / scale is 127.5 up to float rounding */
    /* The range always contains 0, so padding and ReLU zeros are exact. */
    qs_quant_params_from_range(2.0f, 4.0f, false, 255, &s, &z);
    ck_assert_int_eq(z, 0);
    ck_assert_float_eq_tol(s, 4.0f / 255.0f, 1e-7f);
    qs_quant_params_from_range(-3.0f, 1.0f, true, 255, &s, &z);
    ck_assert_int_eq(z, 128);
    ck_assert_float_eq_tol(s, 3.0f / 127.0f, 1e-7f);
    qs_quant_params_from_range(0.0f, 0.0f, false, 255, &s, &z);
    ck_assert(s > 0.0f);
    /* 7 bits (reduce_range): the same on 0..127. */
    qs_quant_params_from_range(0.0f, 6.0f, false, 127, &s, &z);
    ck_assert_float_eq_tol(s, 6.0f / 127.0f, 1e-7f);
    ck_assert_int_eq(z, 0);
    qs_quant_params_from_range(-1.0f, 3.0f, false, 127, &s, &z);
    ck_assert_float_eq_tol(s, 4.0f / 127.0f, 1e-7f);
    ck_assert(z == 32);
    qs_quant_params_from_range(-3.0f, 1.0f, true, 127, &s, &z);
    ck_assert_int_eq(z, 64);
    ck_assert_float_eq_tol(s, 3.0f / 63.0f, 1e-7f);
    qs_quant_params_from_range(-5.0f, 0.0f, false, 127, &s, &z);
    ck_assert_int_eq(z, 127);
}
END_TEST

START_TEST(test_weights_round_trip) {
    float w[4 * 50], scales[4];
    int8_t q[4 * 50];
    fill_gaussian(w, 200, 3);
    for (int k = 0; k < 50; k++)
        w[150 + k] *= 100.0f; /* one channel much wider: per-channel scales must differ */
    qs_quantize_weights(w, 4, 50, false, q, scales);
    ck_assert(scales[3] > 50.0f * scales[0]);
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 50; k++) {
            float back = (float)q[c * 50 + k] * scales[c];
            ck_assert_msg(fabsf(back - w[c * 50 + k]) <= 0.5f * scales[c] * 1.0001f,
                          "channel %d element %d", c, k);
            ck_assert(q[c * 50 + k] >= -127 && q[c * 50 + k] <= 127);
        }
    qs_quantize_weights(w, 4, 50, true, q, scales);
    ck_assert_float_eq(scales[0], scales[3]);
}
END_TEST

/* Growing the range merges bins exactly: counts, min and max are preserved. */
START_TEST(test_histogram_growth) {
    qs_histogram *h = malloc(sizeof(*h));
    qs_histogram_init(h);
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)i / 1000.0f;
    qs_histogram_add(h, x, 1000, 0.01f);
    for (int i = 0; i < 1000; i++)
        x[i] = -50.0f + (float)i / 10.0f;
    qs_histogram_add(h, x, 1000, 0.01f);
    uint64_t total = 0;
    for (int i = 0; i < QS_CAL_BINS; i++)
        total += h->bins[i];
    ck_assert_uint_eq(total, 2000);
    ck_assert_uint_eq(h->count, 2000);
    ck_assert_float_eq(h->min, -50.0f);
    ck_assert_float_eq_tol(h->max, 49.9f, 1e-4f);
    /* The width is a power of two and covers the range within the bin budget. */
    double lg = log2(h->width);
    ck_assert(fabs(lg - nearbyint(lg)) < 1e-12);
    ck_assert((double)(h->first + QS_CAL_BINS) * h->width >= 49.9);
    ck_assert((double)h->first * h->width <= -50.0);
    free(h);
}
END_TEST

START_TEST(test_observers_on_gaussian) {
    size_t n = 200000;
    float *x = malloc(n * sizeof(float));
    qs_histogram *h = malloc(sizeof(*h));
    fill_gaussian(x, n, 7);
    qs_histogram_init(h);
    for (size_t b = 0; b < 10; b++)
        qs_histogram_add(h, x + b * (n / 10), n / 10, 0.01f);
    qs_quant_options o;
    qs_quant_options_init(&o);
    float lo, hi, mlo, mhi;
    o.observer = QS_OBSERVER_MINMAX;
    qs_observer_range(h, &o, &mlo, &mhi);
    ck_assert_float_eq(mlo, h->min);
    ck_assert_float_eq(mhi, h->max);
    ck_assert(mhi > 4.0f && mlo < -4.0f);
    o.observer = QS_OBSERVER_MOVING_MINMAX;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert(hi <= mhi && lo >= mlo && hi > 3.0f);
    /* 99.9th percentile of N(0,1) is 3.09; the 0.1th is -3.09. */
    o.observer = QS_OBSERVER_PERCENTILE;
    o.percentile = 99.9f;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(fabsf(hi - 3.09f) < 0.05f && fabsf(lo + 3.09f) < 0.05f, "[%f, %f]", lo, hi);
    o.observer = QS_OBSERVER_ENTROPY;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(hi > 2.5f && hi <= mhi && lo < -2.5f, "entropy [%f, %f]", lo, hi);
    o.observer = QS_OBSERVER_MSE;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(hi > 2.5f && hi < mhi && lo < -2.5f, "mse [%f, %f]", lo, hi);
    /* Half-normal (post-ReLU): ranges start at 0 and entropy keeps most of the tail. */
    for (size_t i = 0; i < n; i++)
        x[i] = fabsf(x[i]);
    qs_histogram_init(h);
    qs_histogram_add(h, x, n, 0.01f);
    o.observer = QS_OBSERVER_ENTROPY;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(lo == 0.0f && hi > 2.5f, "relu entropy [%f, %f]", lo, hi);
    ck_assert(qs_histogram_clipped(h, 0.0f, hi) < 0.02);
    ck_assert(qs_histogram_clipped(h, 0.0f, h->max) == 0.0);
    free(h);
    free(x);
}
END_TEST

/* Two residual blocks (Conv -> Relu -> Conv -> Add -> Relu) as ResNet builds them: the second
 * Add reads the first block's output, which the convolution before it already quantized. */
static uint8_t *build_residual_net(size_t *size) {
    qst_model *m = qst_model_create(13);
    int64_t in_dims[4] = {1, 8, 9, 7}, wd[4] = {8, 8, 3, 3}, bd[1] = {8}, fd[2] = {4, 8};
    int64_t k3[2] = {3, 3}, p1[4] = {1, 1, 1, 1};
    float w[8 * 8 * 9], b[8];
    qst_model_input(m, "x", QS_DTYPE_FLOAT32, 4, in_dims);
    qst_model_output(m, "y");
    const char *convs[5][4] = {{"x", "w0", "b0", "r0"},
                               {"r0", "w1", "b1", "c1"},
                               {"s1", "w2", "b2", "c2"},
                               {"c2r", "w3", "b3", "c3"},
                               {"s2", "w4", "b4", "c4"}};
    for (uint32_t i = 0; i < 5; i++) {
        qst_fill_random(w, sizeof(w) / sizeof(w[0]), 10 + i, -0.15f, 0.15f);
        qst_fill_random(b, 8, 20 + i, -0.1f, 0.1f);
        qst_model_init_f32(m, convs[i][1], 4, wd, w);
        qst_model_init_f32(m, convs[i][2], 1, bd, b);
        char ins[32], out[16];
        snprintf(ins, sizeof(ins), "%s,%s,%s", convs[i][0], convs[i][1], convs[i][2]);
        snprintf(out, sizeof(out), "%s%s", convs[i][3], i == 0 ? "c" : "");
        qst_node *n = qst_model_node(m, "Conv", ins, out);
        qst_node_ints(n, "kernel_shape", 2, k3);
        qst_node_ints(n, "pads", 4, p1);
    }
    qst_model_node(m, "Relu", "r0c", "r0");
    qst_model_node(m, "Add", "c1,r0", "a1");
    qst_model_node(m, "Relu", "a1", "s1");
    qst_model_node(m, "Relu", "c2", "c2r");
    qst_model_node(m, "Add", "c3,s1", "a2");
    qst_model_node(m, "Relu", "a2", "s2");
    qst_model_node(m, "GlobalAveragePool", "c4", "gap");
    qst_node_int(qst_model_node(m, "Flatten", "gap", "flat"), "axis", 1);
    float wf[32];
    qst_fill_random(wf, 32, 30, -1.0f, 1.0f);
    qst_model_init_f32(m, "wf", 2, fd, wf);
    qst_node_int(qst_model_node(m, "Gemm", "flat,wf", "y"), "transB", 1);
    uint8_t *buf = qst_model_pack(m, size);
    qst_model_free(m);
    return buf;
}

/* A calibrator (default options) for build_residual_net's model that has seen four seeded
 * batches in [-1, 1). */
static qs_calibrator *calibrate_residual_net(const uint8_t *buf, size_t size) {
    qs_error err;
    qs_error_clear(&err);
    qs_calibrator *cal = NULL;
    ck_assert_int_eq(qs_calibrator_create(buf, size, NULL, &cal, &err), QS_OK);
    float x[8 * 9 * 7];
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 8, 9, 7}, .data = x};
    for (uint32_t k = 0; k < 4; k++) {
        qst_fill_random(x, sizeof(x) / sizeof(x[0]), 100 + k, -1.0f, 1.0f);
        ck_assert_int_eq(qs_calibrator_observe(cal, &in, 1, &err), QS_OK);
    }
    return cal;
}

static size_t count_ops(const qs_model *m, const char *op_type) {
    size_t count = 0;
    for (size_t i = 0; i < m->g->n_nodes; i++)
        count += !m->g->nodes[i].dead && strcmp(m->g->nodes[i].op_type, op_type) == 0;
    return count;
}

/* Static quantization runs every residual Add in int8: no Add, DequantizeLinear or
 * QuantizeLinear is left between the int8 operators but the input's. */
START_TEST(test_static_residual_adds_in_int8) {
    size_t size;
    uint8_t *buf = build_residual_net(&size);
    qs_error err;
    qs_error_clear(&err);
    qs_calibrator *cal = calibrate_residual_net(buf, size);
    float x[8 * 9 * 7];
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 8, 9, 7}, .data = x};
    qs_model_options o;
    qs_model_options_init(&o);
    o.variant = QS_VARIANT_INT8_STATIC;
    o.calibration = cal;
    qs_model *q = NULL, *f = NULL;
    ck_assert_msg(qs_model_load_memory(buf, size, &o, &q, &err) == QS_OK, "%s: %s", err.where,
                  err.message);
    ck_assert_uint_eq(count_ops(q, "QLinearAdd"), 2);
    ck_assert_uint_eq(count_ops(q, "Add"), 0);
    ck_assert_uint_eq(count_ops(q, "Relu"), 0);
    ck_assert_uint_eq(count_ops(q, "DequantizeLinear"), 0);
    ck_assert_uint_eq(count_ops(q, "QuantizeLinear"), 1);
    /* And it still computes the network. */
    qs_model_options_init(&o);
    ck_assert_int_eq(qs_model_load_memory(buf, size, &o, &f, &err), QS_OK);
    qst_fill_random(x, sizeof(x) / sizeof(x[0]), 7, -1.0f, 1.0f);
    float y[2][4];
    const qs_model *models[2] = {q, f};
    for (int i = 0; i < 2; i++) {
        qs_session *s = NULL;
        ck_assert_int_eq(qs_session_create(models[i], NULL, &s, &err), QS_OK);
        ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_OK);
        qs_tensor out;
        ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
        ck_assert_uint_eq(qs_tensor_numel(&out), 4);
        memcpy(y[i], out.data, sizeof(y[i]));
        qs_session_free(s);
    }
    double dot = 0, n0 = 0, n1 = 0;
    for (int i = 0; i < 4; i++) {
        dot += (double)y[0][i] * y[1][i];
        n0 += (double)y[0][i] * y[0][i];
        n1 += (double)y[1][i] * y[1][i];
    }
    ck_assert_msg(dot / sqrt(n0 * n1 + 1e-30) > 0.98, "cosine %f", dot / sqrt(n0 * n1 + 1e-30));
    qs_model_free(q);
    qs_model_free(f);
    qs_calibrator_free(cal);
    free(buf);
}
END_TEST

/* Largest uint8 value of each graph value over runs (ctx: one int32 per value). */
static void watch_u8_max(void *ctx, int32_t value, const qs_view *v) {
    if (v->dtype != QS_DTYPE_UINT8 || !v->data)
        return;
    int32_t *max = ctx;
    const uint8_t *p = v->data;
    for (size_t i = 0, n = qs_view_numel(v); i < n; i++)
        max[value] = p[i] > max[value] ? p[i] : max[value];
}

/* reduce_range (the default): every uint8 activation a GEMM of the static int8 graph reads stays
 * in 0..127, even for inputs far outside the calibrated ranges, and every GEMM proves its input
 * 7-bit; the one read by the global average pool only keeps 8 bits. With reduce_range off, the
 * same inputs reach past 127 and no GEMM takes the 7-bit kernels. */
START_TEST(test_static_reduce_range) {
    size_t size;
    uint8_t *buf = build_residual_net(&size);
    qs_error err;
    qs_error_clear(&err);
    qs_calibrator *cal = calibrate_residual_net(buf, size);
    float x[8 * 9 * 7];
    qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, 8, 9, 7}, .data = x};
    for (int setting = 0; setting < 2; setting++) {
        qs_quant_options qo;
        qs_quant_options_init(&qo);
        qo.reduce_range = setting == 0 ? 0 : -1;
        qs_model_options o;
        qs_model_options_init(&o);
        o.variant = QS_VARIANT_INT8_STATIC;
        o.calibration = cal;
        o.quant = &qo;
        qs_model *q = NULL;
        ck_assert_msg(qs_model_load_memory(buf, size, &o, &q, &err) == QS_OK, "%s: %s",
                      err.where, err.message);
        const qs_graph *g = q->g;
        qs_session *s = NULL;
        ck_assert_int_eq(qs_session_create(q, NULL, &s, &err), QS_OK);
        int32_t *max = calloc(g->n_values, sizeof(int32_t));
        ck_assert_ptr_nonnull(max);
        for (uint32_t k = 0; k < 3; k++) {
            /* Three times the calibrated input range: clamps are reached. */
            qst_fill_random(x, sizeof(x) / sizeof(x[0]), 200 + k, -3.0f, 3.0f);
            ck_assert_int_eq(qs_session_run_observed(s, &in, 1, watch_u8_max, max, &err), QS_OK);
        }
        size_t gemms = 0;
        int32_t all = 0, gap = -1;
        for (size_t i = 0; i < g->n_nodes; i++) {
            const qs_node *n = &g->nodes[i];
            if (!n->dead && strcmp(n->op_type, "QLinearGlobalAveragePoolNHWC") == 0)
                gap = max[n->inputs[0]];
            if (n->dead || (strcmp(n->op_type, "QLinearConvNHWC") != 0 &&
                            strcmp(n->op_type, "QGemm") != 0))
                continue;
            gemms++;
            const int32_t bound = qs_quant_u8_bound(g, n->inputs[0]);
            all = max[n->inputs[0]] > all ? max[n->inputs[0]] : all;
            if (setting == 0) {
                ck_assert_msg(bound <= 127, "%s: input bound %d", n->name, bound);
                ck_assert_msg(max[n->inputs[0]] <= 127, "%s: input reached %d", n->name,
                              max[n->inputs[0]]);
            } else {
                ck_assert_int_eq(bound, 255);
            }
        }
        ck_assert_uint_eq(gemms, 6);
        if (setting == 0)
            ck_assert_int_eq(all, 127);
        else
            ck_assert_int_gt(all, 127);
        ck_assert_int_gt(gap, 127); /* 8 bits where no GEMM reads */
        free(max);
        qs_session_free(s);
        qs_model_free(q);
    }
    qs_calibrator_free(cal);
    free(buf);
}
END_TEST

/* Dynamic quantization's convolutions against integer arithmetic done here: per-tensor input
 * parameters from the input's range, per-channel int8 weights, padding that reads as the zero
 * point. Two geometries: grouped with horizontal dilation (a copy per tap) and plain with
 * asymmetric padding on every side (a copy per kernel row). */
START_TEST(test_dynamic_conv_exact) {
    const struct {
        int64_t group, stride[2], dil[2], pads[4];
    } cases[2] = {{2, {2, 1}, {1, 2}, {1, 0, 2, 1}}, {1, {1, 2}, {1, 1}, {2, 1, 0, 2}}};
    const int64_t cin = 4, cout = 6, h = 9, w = 8, kh = 3, kw = 3;
    for (int run = 0; run < 4; run++) {
        const int ci = run % 2;
        const int32_t qmax = run < 2 ? 127 : 255; /* reduce_range default (on), then off */
        const int64_t grp = cases[ci].group, cg = cin / grp, og = cout / grp;
        int64_t xd[4] = {1, cin, h, w}, wd[4] = {cout, cg, kh, kw}, bd[1] = {cout};
        float wf[6 * 4 * 9], bf[6], x[4 * 9 * 8];
        qst_fill_random(wf, (size_t)(cout * cg * kh * kw), 40u + (uint32_t)ci, -0.5f, 0.5f);
        qst_fill_random(bf, (size_t)cout, 50u + (uint32_t)ci, -0.2f, 0.2f);
        qst_fill_random(x, sizeof(x) / sizeof(x[0]), 60u + (uint32_t)ci, -0.7f, 1.3f);
        qst_model *m = qst_model_create(13);
        qst_model_input(m, "x", QS_DTYPE_FLOAT32, 4, xd);
        qst_model_output(m, "y");
        qst_model_init_f32(m, "w", 4, wd, wf);
        qst_model_init_f32(m, "b", 1, bd, bf);
        qst_node *n = qst_model_node(m, "Conv", "x,w,b", "y");
        int64_t ks[2] = {kh, kw};
        qst_node_ints(n, "kernel_shape", 2, ks);
        qst_node_ints(n, "strides", 2, cases[ci].stride);
        qst_node_ints(n, "dilations", 2, cases[ci].dil);
        qst_node_ints(n, "pads", 4, cases[ci].pads);
        qst_node_int(n, "group", grp);
        size_t size;
        uint8_t *buf = qst_model_pack(m, &size);
        qst_model_free(m);
        qs_model_options o;
        qs_model_options_init(&o);
        o.variant = QS_VARIANT_INT8_DYNAMIC;
        qs_quant_options qo;
        qs_quant_options_init(&qo);
        qo.reduce_range = qmax == 127 ? 0 : -1;
        o.quant = &qo;
        qs_model *q = NULL;
        qs_error err;
        qs_error_clear(&err);
        ck_assert_msg(qs_model_load_memory(buf, size, &o, &q, &err) == QS_OK, "%s", err.message);
        ck_assert_uint_eq(count_ops(q, "DynQConvNHWC"), 1);
        qs_session *s = NULL;
        ck_assert_int_eq(qs_session_create(q, NULL, &s, &err), QS_OK);
        qs_tensor in = {.dtype = QS_DTYPE_FLOAT32, .rank = 4, .dims = {1, cin, h, w}, .data = x};
        ck_assert_int_eq(qs_session_run(s, &in, 1, &err), QS_OK);
        qs_tensor out;
        ck_assert_int_eq(qs_session_output(s, 0, &out), QS_OK);
        const float *y = out.data;

        float lo = 0.0f, hi = 0.0f, xs;
        int32_t xz;
        for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
            lo = fminf(lo, x[i]);
            hi = fmaxf(hi, x[i]);
        }
        qs_quant_params_from_range(lo, hi, false, qmax, &xs, &xz);
        int8_t wq[6 * 4 * 9];
        float ws[6];
        qs_quantize_weights(wf, (size_t)cout, (size_t)(cg * kh * kw), false, wq, ws);
        const int64_t oh = out.dims[2], ow = out.dims[3];
        ck_assert_int_eq(out.dims[1], cout);
        for (int64_t oc = 0; oc < cout; oc++)
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    int64_t acc = 0, g = oc / og;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t ky = 0; ky < kh; ky++)
                            for (int64_t kx = 0; kx < kw; kx++) {
                                int64_t iy = oy * cases[ci].stride[0] - cases[ci].pads[0] +
                                             ky * cases[ci].dil[0];
                                int64_t ix = ox * cases[ci].stride[1] - cases[ci].pads[1] +
                                             kx * cases[ci].dil[1];
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                    continue; /* reads the zero point: contributes 0 */
                                int32_t xq = qs_q8_quantize_one(
                                    x[((g * cg + c) * h + iy) * w + ix], xs, xz);
                                xq = xq < qmax ? xq : qmax;
                                acc += (int64_t)(xq - xz) *
                                       wq[((oc * cg + c) * kh + ky) * kw + kx];
                            }
                    float sc = xs * ws[oc];
                    float ref = (float)(acc + (int64_t)nearbyint((double)bf[oc] / (double)sc)) * sc;
                    float got = y[(oc * oh + oy) * ow + ox];
                    ck_assert_msg(fabsf(got - ref) <= 1e-5f * (1.0f + fabsf(ref)),
                                  "case %d: y[%lld][%lld][%lld] = %g, expected %g", ci,
                                  (long long)oc, (long long)oy, (long long)ox, got, ref);
                }
        qs_session_free(s);
        qs_model_free(q);
        free(buf);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_add_test(tc, test_params_from_range);
    tcase_add_test(tc, test_weights_round_trip);
    tcase_add_test(tc, test_histogram_growth);
    tcase_add_test(tc, test_observers_on_gaussian);
    tcase_add_test(tc, test_static_residual_adds_in_int8);
    tcase_add_test(tc, test_static_reduce_range);
    tcase_add_test(tc, test_dynamic_conv_exact);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
