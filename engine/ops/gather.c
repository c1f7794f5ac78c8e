/* Gather: pick slices of any element type along one axis with int32/int64 (negative) indices. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    int64_t axis;
} qs_gather_params;

static qs_status qs_gather_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_gather_params *p = calloc(1, sizeof(*p));
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    qs_status st = qs_attr_get_int(n, "axis", 0, &p->axis, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_gather_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    const qs_gather_params *p = n->params;
    int32_t axis;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (in[1].dtype != QS_DTYPE_INT64 && in[1].dtype != QS_DTYPE_INT32)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "indices must be int32 or int64");
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                             (long long)p->axis);
    if (in[0].rank - 1 + in[1].rank > QS_MAX_RANK)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output rank is over %d", QS_MAX_RANK);
    int64_t len = in[0].dims[axis];
    if (in[1].data != NULL) {
        /* known indices are checked now; run checks the others */
        size_t count = qs_view_numel(&in[1]);
        for (size_t i = 0; i < count; i++) {
            int64_t v = qs_view_get_int(&in[1], i);
            if (v < -len || v >= len)
                return qs_node_error(err, QS_ERR_SHAPE, n, "index %lld is out of range [%lld, %lld)",
                                     (long long)v, (long long)-len, (long long)len);
        }
    }
    out[0].dtype = in[0].dtype;
    out[0].layout = QS_LAYOUT_PLAIN;
    out[0].rank = 0;
    for (int32_t d = 0; d < axis; d++)
        out[0].dims[out[0].rank++] = in[0].dims[d];
    for (int32_t d = 0; d < in[1].rank; d++)
        out[0].dims[out[0].rank++] = in[1].dims[d];
    for (int32_t d = axis + 1; d < in[0].rank; d++)
        out[0].dims[out[0].rank++] = in[0].dims[d];
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_gather_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_gather_params *p = n->params;
    int32_t axis;
    (void)ctx;
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return QS_ERR_INTERNAL;
    size_t es = qs_dtype_size(in[0].dtype);
    size_t outer = qs_dims_prod(in[0].dims, 0, axis);
    size_t chunk = qs_dims_prod(in[0].dims, axis + 1, in[0].rank) * es;
    int64_t len = in[0].dims[axis];
    size_t count = qs_view_numel(&in[1]);
    const char *x = in[0].data;
    char *y = out[0].data;
    for (size_t i = 0; i < count; i++) {
        int64_t v = qs_view_get_int(&in[1], i);
        if (v < -len || v >= len)
            return QS_ERR_INVALID_ARGUMENT;
    }
    for (size_t o = 0; o < outer; o++) {
        for (size_t i = 0; i < count; i++) {
            int64_t v = qs_view_get_int(&in[1], i);
            if (v < 0)
                v += len;
            memcpy(y + (o * count + i) * chunk, x + (o * (size_t)len + (size_t)v) * chunk, chunk);
        }
    }
    return QS_OK;
}

const qs_op qs_op_gather = {
    .type = "Gather",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_gather_init,
    .infer = qs_gather_infer,
    .run = qs_gather_run,
};
