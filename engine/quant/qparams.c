/* Quantization parameter helpers: affine uint8 parameters from ranges, symmetric int8 weights,
 * and reading scalar scale/zero-point constants. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rewrite.h"
#include "ops/op_util.h"
#include "quant/quant.h"

void qs_quant_params_from_range(float lo, float hi, bool symmetric, int32_t qmax, float *scale,
                                int32_t *zero) {
    lo = lo < 0.0f ? lo : 0.0f; /* zero must be exactly representable (padding, ReLU) */
    hi = hi > 0.0f ? hi : 0.0f;
    qmax = qmax < 1 ? 1 : qmax > 255 ? 255 : qmax;
    const float top = (float)qmax;
    if (symmetric) {
        /* zero in the middle, [-m, m] on [zero - half, zero + half] */
        const int32_t mid = (qmax + 1) / 2;
        float m = fmaxf(-lo, hi);
        *scale = m > 0.0f ? m / (float)(qmax - mid) : 1.0f;
        *zero = mid;
        return;
    }
    float s = (hi - lo) / top;
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zero = 0;
        return;
    }
    float z = nearbyintf(-lo / s);
    *scale = s;
    *zero = (int32_t)(z < 0.0f ? 0.0f : z > top ? top : z);
}

int32_t qs_quant_act_qmax(const qs_quant_options *o) {
    return !o || o->reduce_range >= 0 ? 127 : 255;
}

bool qs_quant_is_passthrough(const qs_node *n) {
    static const char *const onnx[] = {"MaxPool",   "Flatten",   "Reshape", "Squeeze",
                                       "Unsqueeze", "Transpose", "Identity"};
    for (size_t i = 0; i < sizeof onnx / sizeof onnx[0]; i++)
        if (qs_node_is(n, onnx[i]))
            return true;
    return false;
}

/* Ops whose uint8 output holds only values of their first input: the ONNX pass-through ops and
 * the lowered MaxPool. */
static bool moves_values(const qs_node *n) {
    if (qs_quant_is_passthrough(n))
        return true;
    return !n->dead && n->domain && strcmp(n->domain, QS_QDOMAIN) == 0 &&
           strcmp(n->op_type, "MaxPoolNHWC") == 0;
}

/* An int8 operator whose uint8 output is clamped to its qmin/qmax attributes. */
static bool op_clamps_u8(const qs_node *n) {
    static const char *const ops[] = {"QLinearConvNHWC", "QLinearAdd", "QGemm",
                                      "QLinearGlobalAveragePoolNHWC"};
    if (n->dead || !n->domain || strcmp(n->domain, QS_QDOMAIN) != 0)
        return false;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(n->op_type, ops[i]) == 0)
            return true;
    return false;
}

int32_t qs_quant_u8_bound(const qs_graph *g, int32_t v) {
    /* A chain of value-moving ops is short; the limit only guards against malformed graphs. */
    for (int hops = 0; hops < 64 && v >= 0 && (size_t)v < g->n_values; hops++) {
        const qs_value *val = g->values[v];
        if (val->dtype != QS_DTYPE_UINT8 || val->producer < 0)
            return 255;
        const qs_node *n = &g->nodes[val->producer];
        if (n->n_outputs != 1)
            return 255;
        /* QuantizeLinear: our own attribute, set by static quantization (qdq_pair in static.c)
         * for the 7-bit activations. */
        if (op_clamps_u8(n) || qs_node_is(n, "QuantizeLinear")) {
            int64_t q = qs_node_attr_int(n, "qmax", 255);
            return q < 0 ? 0 : q > 255 ? 255 : (int32_t)q;
        }
        if (!moves_values(n) || n->n_inputs < 1)
            return 255;
        v = n->inputs[0];
    }
    return 255;
}

void qs_quantize_weights(const float *w, size_t channels, size_t per_channel, bool per_tensor,
                         int8_t *q, float *scales) {
    float all = 0.0f;
    for (size_t i = 0; i < channels * per_channel; i++)
        all = fmaxf(all, fabsf(w[i]));
    for (size_t c = 0; c < channels; c++) {
        float m = 0.0f;
        const float *row = w + c * per_channel;
        if (per_tensor) {
            m = all;
        } else {
            for (size_t k = 0; k < per_channel; k++)
                m = fmaxf(m, fabsf(row[k]));
        }
        float s = m > 0.0f ? m / 127.0f : 1.0f;
        scales[c] = s;
        for (size_t k = 0; k < per_channel; k++) {
            float v = nearbyintf(row[k] / s);
            v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
            q[c * per_channel + k] = (int8_t)v;
        }
    }
}

bool qs_const_scalar_f32(const qs_graph *g, int32_t v, float *out) {
    if (v < 0 || !qs_value_is_const(g, v))
        return false;
    const qs_value *val = g->values[v];
    if (val->dtype != QS_DTYPE_FLOAT32 || qs_value_numel(val) != 1)
        return false;
    *out = *(const float *)val->data;
    return true;
}

bool qs_const_scalar_int(const qs_graph *g, int32_t v, int32_t *out) {
    if (v < 0) {
        *out = 0; /* an omitted zero point is 0 */
        return true;
    }
    if (!qs_value_is_const(g, v))
        return false;
    const qs_value *val = g->values[v];
    if (qs_value_numel(val) != 1)
        return false;
    switch (val->dtype) {
    case QS_DTYPE_UINT8: *out = *(const uint8_t *)val->data; return true;
    case QS_DTYPE_INT8: *out = *(const int8_t *)val->data; return true;
    case QS_DTYPE_INT32: *out = *(const int32_t *)val->data; return true;
    default: return false;
    }
}

qs_status qs_quant_attr_clamp(const qs_node *n, int32_t *qmin, int32_t *qmax, qs_error *err) {
    int64_t lo, hi;
    qs_status st = qs_attr_get_int(n, "qmin", 0, &lo, err);
    if (st == QS_OK)
        st = qs_attr_get_int(n, "qmax", 255, &hi, err);
    if (st != QS_OK)
        return st;
    if (lo < 0 || hi > 255 || lo > hi)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "qmin/qmax must satisfy 0 <= qmin <= "
                             "qmax <= 255");
    *qmin = (int32_t)lo;
    *qmax = (int32_t)hi;
    return QS_OK;
}

static qs_status ints_exact(const qs_node *n, const char *name, int64_t *v, size_t want,
                            qs_error *err) {
    size_t count;
    qs_status st = qs_attr_get_ints(n, name, v, want, &count, err);
    if (st == QS_OK && count != want)
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute %s needs %zu values", name,
                           want);
    return st;
}

qs_status qs_conv2d_geometry_parse(const qs_node *n, qs_conv2d_geometry *geo, qs_error *err) {
    qs_status st = ints_exact(n, "kernel_shape", geo->kernel, 2, err);
    if (st == QS_OK)
        st = ints_exact(n, "strides", geo->strides, 2, err);
    if (st == QS_OK)
        st = ints_exact(n, "dilations", geo->dilations, 2, err);
    if (st == QS_OK)
        st = ints_exact(n, "pads", geo->pads, 4, err);
    if (st == QS_OK)
        st = qs_attr_get_int(n, "group", 1, &geo->group, err);
    if (st != QS_OK)
        return st;
    bool ok = geo->group >= 1;
    for (int i = 0; i < 2; i++)
        ok = ok && geo->kernel[i] >= 1 && geo->strides[i] >= 1 && geo->dilations[i] >= 1;
    for (int i = 0; i < 4; i++)
        ok = ok && geo->pads[i] >= 0;
    return ok ? QS_OK : qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "bad convolution geometry");
}

bool qs_conv2d_geometry_output(const qs_conv2d_geometry *geo, int64_t h, int64_t w, int64_t *oh,
                               int64_t *ow) {
    *oh = (h + geo->pads[0] + geo->pads[2] - (geo->kernel[0] - 1) * geo->dilations[0] - 1) /
              geo->strides[0] + 1;
    *ow = (w + geo->pads[1] + geo->pads[3] - (geo->kernel[1] - 1) * geo->dilations[1] - 1) /
              geo->strides[1] + 1;
    return *oh >= 1 && *ow >= 1;
}

qs_status qs_qlinear_output_prepare(const qs_graph *g, const qs_node *n, size_t channels,
                                    int32_t qmin, int32_t qmax, qs_qlinear_output *o,
                                    qs_error *err) {
    enum { X_SCALE = 1, X_ZERO = 2, W_SCALE = 4, W_ZERO = 5, Y_SCALE = 6, Y_ZERO = 7, BIAS = 8 };
    float ys = 1.0f;
    int32_t yz = 0;
    bool float_out = n->n_inputs <= Y_SCALE || n->inputs[Y_SCALE] < 0;
    const qs_value *ws = qs_node_input(g, n, W_SCALE), *b = qs_node_input(g, n, BIAS);
    const qs_value *wz = qs_node_input(g, n, W_ZERO);
    if (!qs_const_scalar_f32(g, n->inputs[X_SCALE], &o->x_scale) ||
        !qs_const_scalar_int(g, n->inputs[X_ZERO], &o->x_zero) || !ws ||
        ws->kind != QS_VALUE_CONSTANT || ws->dtype != QS_DTYPE_FLOAT32 ||
        (!float_out && (!qs_const_scalar_f32(g, n->inputs[Y_SCALE], &ys) ||
                        !qs_const_scalar_int(g, n->inputs[Y_ZERO], &yz))))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "scales and zero points must be "
                             "constants");
    size_t nws = qs_value_numel(ws), nwz = wz ? qs_value_numel(wz) : 0;
    if (nws != 1 && nws != channels)
        return qs_node_error(err, QS_ERR_SHAPE, n, "%zu weight scales for %zu channels", nws,
                             channels);
    if (wz && (wz->kind != QS_VALUE_CONSTANT || wz->dtype != QS_DTYPE_INT32 ||
               (nwz != 1 && nwz != channels)))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "weight zero point must be a constant "
                             "int32 [1] or [%zu]", channels);
    bool any_wz = qs_q8_any_offset(wz ? (const int32_t *)wz->data : NULL, nwz);
    if (b && (b->kind != QS_VALUE_CONSTANT || b->dtype != QS_DTYPE_INT32 ||
              qs_value_numel(b) != channels))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "bias must be a constant int32 [%zu]",
                             channels);
    o->scale = malloc(channels * sizeof(float));
    o->bias = b ? malloc(channels * sizeof(int32_t)) : NULL;
    o->w_offset = any_wz ? malloc(channels * sizeof(int32_t)) : NULL;
    if (!o->scale || (b && !o->bias) || (any_wz && !o->w_offset))
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    for (size_t c = 0; any_wz && c < channels; c++) /* 0u - v: no overflow on INT32_MIN */
        o->w_offset[c] = (int32_t)(0u - (uint32_t)((const int32_t *)wz->data)[nwz == 1 ? 0 : c]);
    const float *wsd = ws->data;
    for (size_t c = 0; c < channels; c++) {
        float s = o->x_scale * wsd[nws == 1 ? 0 : c];
        o->scale[c] = float_out ? s : s / ys;
    }
    if (b)
        memcpy(o->bias, b->data, channels * sizeof(int32_t));
    o->rq.bias = o->bias;
    o->rq.scale = o->scale;
    o->rq.out_zero = yz;
    o->rq.qmin = qmin;
    o->rq.qmax = qmax;
    return QS_OK;
}

void qs_qlinear_output_free(qs_qlinear_output *o) {
    free(o->scale);
    free(o->bias);
    free(o->w_offset);
    memset(o, 0, sizeof(*o));
}
