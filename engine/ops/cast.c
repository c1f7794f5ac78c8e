/* Cast between float32/64, the integer types and bool (float16 and strings are refused). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    qs_dtype to;
} qs_cast_params;

static bool qs_cast_supported(qs_dtype t) { return qs_dtype_is_numeric(t) || t == QS_DTYPE_BOOL; }

static qs_status qs_cast_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_cast_params *p;
    const qs_attr *a = qs_node_attr(n, "to");
    (void)g;
    if (a != NULL && a->type == QS_ATTR_STRING)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "cast with a string type (opset < 6)");
    if (a == NULL || a->type != QS_ATTR_INT)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute to must be an int");
    if (a->i < 0 || a->i > 64 || !qs_cast_supported((qs_dtype)a->i))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "cast to ONNX type %lld is not supported",
                             (long long)a->i);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->to = (qs_dtype)a->i;
    n->params = p;
    return QS_OK;
}

static qs_status qs_cast_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    const qs_cast_params *p = n->params;
    if (!qs_cast_supported(in[0].dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "cast from %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = p->to;
    return qs_op_check_output(n, &out[0], err);
}

/* An element in transit: floats as double, integers as int64 (uint64 keeps its own). */
typedef struct {
    bool is_float, is_u64;
    double f;
    int64_t i;
    uint64_t u;
} qs_scalar;

static qs_scalar qs_scalar_read(qs_dtype t, const void *data, size_t i) {
    qs_scalar s = {false, false, 0.0, 0, 0};
    switch (t) {
    case QS_DTYPE_FLOAT32: s.is_float = true; s.f = (double)((const float *)data)[i]; break;
    case QS_DTYPE_FLOAT64: s.is_float = true; s.f = ((const double *)data)[i]; break;
    case QS_DTYPE_UINT64: s.is_u64 = true; s.u = ((const uint64_t *)data)[i]; break;
    case QS_DTYPE_BOOL: s.i = ((const uint8_t *)data)[i] != 0; break;
    default: {
        qs_view v = {.dtype = t, .data = (void *)(uintptr_t)data};
        s.i = qs_view_get_int(&v, i);
        break;
    }
    }
    return s;
}

/* Float to integer saturates (NaN gives 0): out-of-range conversion is undefined in C. */
static int64_t qs_scalar_to_int(const qs_scalar *s, double lo, double hi) {
    if (s->is_float) {
        if (isnan(s->f))
            return 0;
        double v = s->f < lo ? lo : (s->f > hi ? hi : s->f);
        return v >= 9.2233720368547748e18 ? INT64_MAX : (int64_t)v;
    }
    if (s->is_u64)
        return s->u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s->u;
    return s->i;
}

static void qs_scalar_write(qs_dtype t, void *data, size_t i, const qs_scalar *s) {
    switch (t) {
    case QS_DTYPE_FLOAT32:
        ((float *)data)[i] = s->is_float ? (float)s->f : s->is_u64 ? (float)s->u : (float)s->i;
        break;
    case QS_DTYPE_FLOAT64:
        ((double *)data)[i] = s->is_float ? s->f : s->is_u64 ? (double)s->u : (double)s->i;
        break;
    case QS_DTYPE_BOOL:
        ((uint8_t *)data)[i] = s->is_float ? s->f != 0.0 : s->is_u64 ? s->u != 0 : s->i != 0;
        break;
    case QS_DTYPE_UINT64:
        if (s->is_float)
            ((uint64_t *)data)[i] = isnan(s->f) || s->f <= 0.0 ? 0
                                    : s->f >= 1.8446744073709552e19 ? UINT64_MAX
                                                                    : (uint64_t)s->f;
        else
            ((uint64_t *)data)[i] = s->is_u64 ? s->u : (uint64_t)s->i;
        break;
    /* integer narrowing wraps, as numpy does */
    case QS_DTYPE_INT64: ((int64_t *)data)[i] = qs_scalar_to_int(s, -9.3e18, 9.3e18); break;
    case QS_DTYPE_INT32:
        ((int32_t *)data)[i] = (int32_t)qs_scalar_to_int(s, INT32_MIN, INT32_MAX);
        break;
    case QS_DTYPE_UINT32:
        ((uint32_t *)data)[i] = (uint32_t)qs_scalar_to_int(s, 0, UINT32_MAX);
        break;
    case QS_DTYPE_INT16:
        ((int16_t *)data)[i] = (int16_t)qs_scalar_to_int(s, INT16_MIN, INT16_MAX);
        break;
    case QS_DTYPE_UINT16:
        ((uint16_t *)data)[i] = (uint16_t)qs_scalar_to_int(s, 0, UINT16_MAX);
        break;
    case QS_DTYPE_INT8:
        ((int8_t *)data)[i] = (int8_t)qs_scalar_to_int(s, INT8_MIN, INT8_MAX);
        break;
    case QS_DTYPE_UINT8:
        ((uint8_t *)data)[i] = (uint8_t)qs_scalar_to_int(s, 0, UINT8_MAX);
        break;
    default: break;
    }
}

static qs_status qs_cast_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    size_t count = qs_view_numel(&in[0]);
    (void)n;
    (void)ctx;
    if (in[0].dtype == out[0].dtype) {
        memcpy(out[0].data, in[0].data, count * qs_dtype_size(in[0].dtype));
        return QS_OK;
    }
    if (in[0].dtype == QS_DTYPE_INT64 && out[0].dtype == QS_DTYPE_FLOAT32) {
        for (size_t i = 0; i < count; i++)
            ((float *)out[0].data)[i] = (float)((const int64_t *)in[0].data)[i];
        return QS_OK;
    }
    for (size_t i = 0; i < count; i++) {
        qs_scalar s = qs_scalar_read(in[0].dtype, in[0].data, i);
        qs_scalar_write(out[0].dtype, out[0].data, i, &s);
    }
    return QS_OK;
}

const qs_op qs_op_cast = {
    .type = "Cast",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_cast_init,
    .infer = qs_cast_infer,
    .run = qs_cast_run,
};
