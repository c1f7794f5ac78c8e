/* ONNX QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear (opsets 10-18): per-tensor and
 * per-axis, uint8/int8 (and int32 for dequantization). Per-tensor uint8 uses the int8 kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/q8.h"
#include "ops/op_util.h"
#include "quant/quant.h"

typedef struct {
    int64_t axis;
    int64_t qmax; /* uint8 QuantizeLinear: clamp (an internal attribute of 7-bit recipes) */
} qdq_params;

static qs_status qdq_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    qdq_params *p = calloc(1, sizeof(*p));
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    n->params = p;
    /* Opset 10 had no axis: scales were per-tensor only. */
    qs_status st = qs_attr_get_int(n, "axis", 1, &p->axis, err);
    if (st == QS_OK)
        st = qs_attr_get_int(n, "qmax", 255, &p->qmax, err);
    if (st == QS_OK && (p->qmax < 0 || p->qmax > 255))
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "qmax must be in 0..255");
    return st;
}

/* Resolve per-axis geometry: outer x axis_len x inner; axis_len 1 for per-tensor. */
static qs_status qdq_geometry(const qs_node *n, const qs_view *x, const qs_view *scale,
                              const qs_view *zero, size_t *outer, size_t *axis_len, size_t *inner,
                              qs_error *err) {
    size_t ns = qs_view_numel(scale);
    if (scale->rank > 1)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "scale must be a scalar or 1-D");
    if (zero && (zero->rank != scale->rank || qs_view_numel(zero) != ns))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "zero point and scale shapes differ");
    *outer = 1;
    *inner = qs_view_numel(x);
    *axis_len = 1;
    if (scale->rank == 1 && ns != 1) { /* a 1-element scale is per-tensor, as in ORT */
        int32_t axis;
        const qdq_params *p = n->params;
        if (!qs_axis_normalize(p->axis, x->rank, &axis))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld out of range",
                                 (long long)p->axis);
        if ((size_t)x->dims[axis] != ns)
            return qs_node_error(err, QS_ERR_SHAPE, n, "%zu scales for axis of length %lld", ns,
                                 (long long)x->dims[axis]);
        *outer = qs_dims_prod(x->dims, 0, axis);
        *axis_len = ns;
        *inner = qs_dims_prod(x->dims, axis + 1, x->rank);
    }
    return QS_OK;
}

static qs_status quantize_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    size_t o, a, i;
    const qs_view *zero = qs_op_has_input(n, in, 2) ? &in[2] : NULL;
    if (in[0].dtype != QS_DTYPE_FLOAT32 && in[0].dtype != QS_DTYPE_INT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input type %s", qs_dtype_name(in[0].dtype));
    if (in[1].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "scale must be float32");
    qs_dtype t = zero ? zero->dtype : QS_DTYPE_UINT8;
    if (t != QS_DTYPE_UINT8 && t != QS_DTYPE_INT8)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output type %s (uint8 and int8 are "
                             "supported)", qs_dtype_name(t));
    qs_status st = qdq_geometry(n, &in[0], &in[1], zero, &o, &a, &i, err);
    if (st != QS_OK)
        return st;
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = t;
    return QS_OK;
}

static qs_status quantize_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    size_t outer, axis_len, inner;
    const qs_view *zero = qs_op_has_input(n, in, 2) ? &in[2] : NULL;
    (void)ctx;
    if (qdq_geometry(n, &in[0], &in[1], zero, &outer, &axis_len, &inner, NULL) != QS_OK)
        return QS_ERR_SHAPE;
    const float *scale = in[1].data;
    bool u8 = out[0].dtype == QS_DTYPE_UINT8;
    int32_t lo = u8 ? 0 : -128, hi = u8 ? (int32_t)((const qdq_params *)n->params)->qmax : 127;
    for (size_t b = 0; b < outer; b++) {
        for (size_t c = 0; c < axis_len; c++) {
            int32_t zp = zero ? (int32_t)qs_view_get_int(zero, c) : 0;
            size_t base = (b * axis_len + c) * inner;
            if (u8 && in[0].dtype == QS_DTYPE_FLOAT32) {
                qs_q8_quantize_max((const float *)in[0].data + base, inner, scale[c], zp, hi,
                                   (uint8_t *)out[0].data + base);
                continue;
            }
            for (size_t k = 0; k < inner; k++) {
                float x = in[0].dtype == QS_DTYPE_FLOAT32 ? ((const float *)in[0].data)[base + k]
                                                          : (float)((const int32_t *)in[0].data)[base + k];
                float q = nearbyintf(x / scale[c]) + (float)zp;
                q = q < (float)lo ? (float)lo : q > (float)hi ? (float)hi : q;
                if (u8)
                    ((uint8_t *)out[0].data)[base + k] = (uint8_t)q;
                else
                    ((int8_t *)out[0].data)[base + k] = (int8_t)q;
            }
        }
    }
    return QS_OK;
}

static qs_status dequantize_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    size_t o, a, i;
    const qs_view *zero = qs_op_has_input(n, in, 2) ? &in[2] : NULL;
    qs_dtype t = in[0].dtype;
    if (t != QS_DTYPE_UINT8 && t != QS_DTYPE_INT8 && t != QS_DTYPE_INT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input type %s", qs_dtype_name(t));
    if (in[1].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "scale must be float32");
    if (zero && zero->dtype != t)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "zero point type differs from input");
    qs_status st = qdq_geometry(n, &in[0], &in[1], zero, &o, &a, &i, err);
    if (st != QS_OK)
        return st;
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = QS_DTYPE_FLOAT32;
    return QS_OK;
}

static qs_status dequantize_run(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_exec_ctx *ctx) {
    size_t outer, axis_len, inner;
    const qs_view *zero = qs_op_has_input(n, in, 2) ? &in[2] : NULL;
    (void)ctx;
    if (qdq_geometry(n, &in[0], &in[1], zero, &outer, &axis_len, &inner, NULL) != QS_OK)
        return QS_ERR_SHAPE;
    const float *scale = in[1].data;
    float *y = out[0].data;
    for (size_t b = 0; b < outer; b++) {
        for (size_t c = 0; c < axis_len; c++) {
            int32_t zp = zero ? (int32_t)qs_view_get_int(zero, c) : 0;
            size_t base = (b * axis_len + c) * inner;
            if (in[0].dtype == QS_DTYPE_UINT8) {
                qs_q8_dequantize((const uint8_t *)in[0].data + base, inner, scale[c], zp, y + base);
            } else if (in[0].dtype == QS_DTYPE_INT8) {
                const int8_t *x = (const int8_t *)in[0].data + base;
                for (size_t k = 0; k < inner; k++)
                    y[base + k] = (float)((int32_t)x[k] - zp) * scale[c];
            } else {
                const int32_t *x = (const int32_t *)in[0].data + base;
                for (size_t k = 0; k < inner; k++)
                    y[base + k] = (float)((int64_t)x[k] - zp) * scale[c];
            }
        }
    }
    return QS_OK;
}

static qs_status dynq_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input must be float32");
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = QS_DTYPE_UINT8;
    for (int k = 1; k < 3; k++) {
        out[k].rank = 0;
        out[k].layout = QS_LAYOUT_PLAIN;
    }
    out[1].dtype = QS_DTYPE_FLOAT32;
    out[2].dtype = QS_DTYPE_UINT8;
    return QS_OK;
}

static qs_status dynq_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    size_t count = qs_view_numel(&in[0]);
    float lo = 0.0f, hi = 0.0f;
    (void)n;
    (void)ctx;
    if (count)
        qs_f32_minmax(in[0].data, count, &lo, &hi);
    lo = lo < 0.0f ? lo : 0.0f;
    hi = hi > 0.0f ? hi : 0.0f;
    float scale = (hi - lo) / 255.0f;
    int32_t zp = 0;
    if (scale > 0.0f) {
        float z = nearbyintf(-lo / scale);
        zp = (int32_t)(z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z);
        qs_q8_quantize(in[0].data, count, scale, zp, out[0].data);
    } else {
        memset(out[0].data, 0, count);
    }
    *(float *)out[1].data = scale;
    *(uint8_t *)out[2].data = (uint8_t)zp;
    return QS_OK;
}

const qs_op qs_op_quantize_linear = {
    .type = "QuantizeLinear", .domain = "", .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1, .init = qdq_init, .infer = quantize_infer,
    .run = quantize_run,
};

const qs_op qs_op_dequantize_linear = {
    .type = "DequantizeLinear", .domain = "", .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1, .init = qdq_init, .infer = dequantize_infer,
    .run = dequantize_run,
};

const qs_op qs_op_dynamic_quantize_linear = {
    .type = "DynamicQuantizeLinear", .domain = "", .min_inputs = 1, .max_inputs = 1,
    .min_outputs = 3, .max_outputs = 3, .infer = dynq_infer, .run = dynq_run,
};
