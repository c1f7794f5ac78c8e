/* ArgMax and ArgMin: int64 index of the extreme value along an axis (first or last on ties). */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    int64_t axis;
    bool keepdims, last, is_max;
} qs_argmax_params;

static qs_status qs_argmax_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_argmax_params *p = calloc(1, sizeof(*p));
    int64_t keep = 1, last = 0;
    qs_status st;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if ((st = qs_attr_get_int(n, "axis", 0, &p->axis, err)) != QS_OK ||
        (st = qs_attr_get_int(n, "keepdims", 1, &keep, err)) != QS_OK ||
        (st = qs_attr_get_int(n, "select_last_index", 0, &last, err)) != QS_OK) {
        free(p);
        return st;
    }
    p->keepdims = keep != 0;
    p->last = last != 0;
    p->is_max = strcmp(n->op_type, "ArgMax") == 0;
    n->params = p;
    return QS_OK;
}

static qs_status qs_argmax_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    const qs_argmax_params *p = n->params;
    int32_t axis;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis) || in[0].dims[axis] < 1)
        return qs_node_error(err, QS_ERR_SHAPE, n, "axis is out of range or empty");
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = QS_DTYPE_INT64;
    if (p->keepdims) {
        out[0].dims[axis] = 1;
    } else {
        for (int32_t d = axis; d + 1 < in[0].rank; d++)
            out[0].dims[d] = in[0].dims[d + 1];
        out[0].rank--;
    }
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_argmax_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_argmax_params *p = n->params;
    int32_t axis;
    (void)ctx;
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return QS_ERR_INTERNAL;
    size_t outer = qs_dims_prod(in[0].dims, 0, axis), len = (size_t)in[0].dims[axis];
    size_t inner = qs_dims_prod(in[0].dims, axis + 1, in[0].rank);
    const float *x = in[0].data;
    int64_t *y = out[0].data;
    for (size_t o = 0; o < outer; o++)
        for (size_t i = 0; i < inner; i++) {
            const float *v = x + o * len * inner + i;
            size_t best = 0;
            for (size_t k = 1; k < len; k++) {
                float a = v[k * inner], b = v[best * inner];
                bool better = p->is_max ? (p->last ? a >= b : a > b) : (p->last ? a <= b : a < b);
                if (better)
                    best = k;
            }
            y[o * inner + i] = (int64_t)best;
        }
    return QS_OK;
}

#define QS_ARGMAX_OP(NAME, TYPE)                                                                 \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 1,                                                                         \
        .max_inputs = 1,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_argmax_init,                                                                  \
        .infer = qs_argmax_infer,                                                                \
        .run = qs_argmax_run,                                                                    \
    };

QS_ARGMAX_OP(qs_op_argmax, "ArgMax")
QS_ARGMAX_OP(qs_op_argmin, "ArgMin")
