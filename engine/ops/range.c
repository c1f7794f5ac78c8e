/* Range: start, start + delta, ... below limit; the scalars must be known at load (they size the
 * output). */
#include <math.h>
#include <string.h>

#include "ops/op_util.h"

#define QS_RANGE_MAX ((int64_t)1 << 40)

static bool qs_range_type(qs_dtype t) {
    return t == QS_DTYPE_FLOAT32 || t == QS_DTYPE_FLOAT64 || t == QS_DTYPE_INT16 ||
           t == QS_DTYPE_INT32 || t == QS_DTYPE_INT64;
}

/* Element count, or -1 when it cannot be represented. */
static int64_t qs_range_count(const qs_view *in) {
    if (qs_dtype_is_float(in[0].dtype)) {
        double s = qs_view_get_double(&in[0], 0), l = qs_view_get_double(&in[1], 0);
        double d = qs_view_get_double(&in[2], 0);
        double c = ceil((l - s) / d);
        if (isnan(c) || c > (double)QS_RANGE_MAX)
            return -1;
        return c < 0 ? 0 : (int64_t)c;
    }
    int64_t s = qs_view_get_int(&in[0], 0), l = qs_view_get_int(&in[1], 0);
    int64_t d = qs_view_get_int(&in[2], 0), diff;
    if (d == 0 || __builtin_sub_overflow(l, s, &diff))
        return -1;
    if ((diff > 0) != (d > 0) || diff == 0)
        return 0;
    /* ceil(diff / d) with both of the same sign */
    int64_t c = diff / d + (diff % d != 0);
    return c > QS_RANGE_MAX ? -1 : c;
}

static qs_status qs_range_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    static const char *const names[3] = {"start", "limit", "delta"};
    for (int32_t i = 0; i < 3; i++) {
        qs_status st = qs_op_need_const(n, in, i, names[i], err);
        if (st != QS_OK)
            return st;
        if (in[i].dtype != in[0].dtype || qs_view_numel(&in[i]) != 1)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s must be a scalar of one type",
                                 names[i]);
    }
    if (!qs_range_type(in[0].dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    int64_t count = qs_range_count(in);
    if (count < 0)
        return qs_node_error(err, QS_ERR_SHAPE, n, "the range is too large or delta is 0");
    memset(&out[0], 0, sizeof(out[0]));
    out[0].dtype = in[0].dtype;
    out[0].rank = 1;
    out[0].dims[0] = count;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_range_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    size_t count = qs_view_numel(&out[0]);
    (void)n;
    (void)ctx;
    switch (in[0].dtype) {
    case QS_DTYPE_FLOAT32: {
        float s = *(const float *)in[0].data, d = *(const float *)in[2].data;
        for (size_t i = 0; i < count; i++)
            ((float *)out[0].data)[i] = s + (float)i * d;
        break;
    }
    case QS_DTYPE_FLOAT64: {
        double s = *(const double *)in[0].data, d = *(const double *)in[2].data;
        for (size_t i = 0; i < count; i++)
            ((double *)out[0].data)[i] = s + (double)i * d;
        break;
    }
    default: {
        int64_t s = qs_view_get_int(&in[0], 0), d = qs_view_get_int(&in[2], 0);
        for (size_t i = 0; i < count; i++) {
            /* within [start, limit): no overflow */
            int64_t v = s + (int64_t)i * d;
            if (in[0].dtype == QS_DTYPE_INT64)
                ((int64_t *)out[0].data)[i] = v;
            else if (in[0].dtype == QS_DTYPE_INT32)
                ((int32_t *)out[0].data)[i] = (int32_t)v;
            else
                ((int16_t *)out[0].data)[i] = (int16_t)v;
        }
        break;
    }
    }
    return QS_OK;
}

const qs_op qs_op_range = {
    .type = "Range",
    .domain = "",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = qs_range_infer,
    .run = qs_range_run,
};
