/* Reshape, Flatten, Squeeze, Unsqueeze: new dims over the same bytes (the output may alias X). */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    int64_t axis;                 /* Flatten */
    bool allowzero;               /* Reshape */
    bool axes_from_input;         /* Squeeze/Unsqueeze from opset 13 */
    size_t n_axes;
    int64_t axes[QS_MAX_RANK];    /* Squeeze/Unsqueeze attribute before opset 13 */
} qs_reshape_params;

static qs_status qs_reshape_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_reshape_params *p = calloc(1, sizeof(*p));
    int64_t allowzero = 0;
    qs_status st = QS_OK;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if (strcmp(n->op_type, "Reshape") == 0) {
        if (g->opset < 5)
            st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "Reshape before opset 5");
        else
            st = qs_attr_get_int(n, "allowzero", 0, &allowzero, err);
        p->allowzero = allowzero != 0;
    } else if (strcmp(n->op_type, "Flatten") == 0) {
        st = qs_attr_get_int(n, "axis", 1, &p->axis, err);
    } else {
        p->axes_from_input = g->opset >= 13;
        if (!p->axes_from_input)
            st = qs_attr_get_ints(n, "axes", p->axes, QS_MAX_RANK, &p->n_axes, err);
        else if (qs_node_attr(n, "axes") != NULL)
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                               "axes is an input from opset 13");
        if (st == QS_OK && !p->axes_from_input && p->n_axes == 0 &&
            strcmp(n->op_type, "Unsqueeze") == 0)
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axes is missing");
    }
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_reshape_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    const qs_reshape_params *p = n->params;
    int64_t shape[QS_MAX_RANK];
    size_t count, known = 1, total = qs_view_numel(&in[0]);
    int32_t infer_at = -1;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_input_ints(n, in, 1, "shape", shape, QS_MAX_RANK, &count, err);
    if (st != QS_OK)
        return st;
    if (in[1].rank != 1)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "shape must be 1-D");
    for (size_t i = 0; i < count; i++) {
        if (shape[i] == 0 && !p->allowzero) {
            if ((int32_t)i >= in[0].rank)
                return qs_node_error(err, QS_ERR_SHAPE, n, "shape[%zu] = 0 copies a missing dim",
                                     i);
            shape[i] = in[0].dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return qs_node_error(err, QS_ERR_SHAPE, n, "shape has two -1 entries");
            infer_at = (int32_t)i;
            continue;
        }
        if (shape[i] < 0 || !qs_mul_size(known, (size_t)shape[i], &known))
            return qs_node_error(err, QS_ERR_SHAPE, n, "shape[%zu] = %lld is invalid", i,
                                 (long long)shape[i]);
    }
    if (infer_at >= 0) {
        if (known == 0 || total % known != 0)
            return qs_node_error(err, QS_ERR_SHAPE, n, "cannot infer the -1 dim");
        shape[infer_at] = (int64_t)(total / known);
    } else if (known != total) {
        return qs_node_error(err, QS_ERR_SHAPE, n, "shape has %zu elements, the input %zu", known,
                             total);
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = (int32_t)count;
    memcpy(out[0].dims, shape, count * sizeof(int64_t));
    out[0].layout = QS_LAYOUT_PLAIN;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_flatten_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    const qs_reshape_params *p = n->params;
    int32_t r = in[0].rank, axis;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    /* axis may equal rank: everything goes to the first dim */
    if (p->axis == r)
        axis = r;
    else if (!qs_axis_normalize(p->axis, r, &axis))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                             (long long)p->axis);
    out[0].dtype = in[0].dtype;
    out[0].rank = 2;
    out[0].dims[0] = (int64_t)qs_dims_prod(in[0].dims, 0, axis);
    out[0].dims[1] = (int64_t)qs_dims_prod(in[0].dims, axis, r);
    out[0].layout = QS_LAYOUT_PLAIN;
    return qs_op_check_output(n, &out[0], err);
}

/* Axes of Squeeze/Unsqueeze, from the attribute or the (constant) second input. */
static qs_status qs_axes_get(const qs_node *n, const qs_view *in, int64_t *axes, size_t *count,
                             qs_error *err) {
    const qs_reshape_params *p = n->params;
    if (!p->axes_from_input) {
        memcpy(axes, p->axes, p->n_axes * sizeof(int64_t));
        *count = p->n_axes;
        return QS_OK;
    }
    if (!qs_op_has_input(n, in, 1)) {
        *count = 0;
        return QS_OK;
    }
    return qs_input_ints(n, in, 1, "axes", axes, QS_MAX_RANK, count, err);
}

static qs_status qs_squeeze_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    int64_t axes[QS_MAX_RANK];
    bool drop[QS_MAX_RANK] = {false};
    size_t count;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_axes_get(n, in, axes, &count, err);
    if (st != QS_OK)
        return st;
    for (size_t i = 0; i < count; i++) {
        int32_t a;
        if (!qs_axis_normalize(axes[i], in[0].rank, &a))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                                 (long long)axes[i]);
        if (in[0].dims[a] != 1)
            return qs_node_error(err, QS_ERR_SHAPE, n, "dim %d is %lld, not 1", (int)a,
                                 (long long)in[0].dims[a]);
        drop[a] = true;
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = 0;
    out[0].layout = QS_LAYOUT_PLAIN;
    for (int32_t i = 0; i < in[0].rank; i++) {
        if (count ? drop[i] : in[0].dims[i] == 1)
            continue;
        out[0].dims[out[0].rank++] = in[0].dims[i];
    }
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_unsqueeze_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    int64_t axes[QS_MAX_RANK];
    bool add[QS_MAX_RANK] = {false};
    size_t count;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_axes_get(n, in, axes, &count, err);
    if (st != QS_OK)
        return st;
    if (count == 0)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axes is missing");
    int64_t r = (int64_t)in[0].rank + (int64_t)count;
    if (r > QS_MAX_RANK)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output rank %lld is over %d",
                             (long long)r, QS_MAX_RANK);
    for (size_t i = 0; i < count; i++) {
        int32_t a;
        if (!qs_axis_normalize(axes[i], (int32_t)r, &a) || add[a])
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                 "axis %lld is out of range or repeated", (long long)axes[i]);
        add[a] = true;
    }
    out[0].dtype = in[0].dtype;
    out[0].rank = (int32_t)r;
    out[0].layout = QS_LAYOUT_PLAIN;
    for (int32_t i = 0, k = 0; i < (int32_t)r; i++)
        out[0].dims[i] = add[i] ? 1 : in[0].dims[k++];
    return qs_op_check_output(n, &out[0], err);
}

/* Shared by every aliasing op: nothing to do when the planner made the output a view of X. */
static qs_status qs_reshape_run(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_exec_ctx *ctx) {
    (void)n;
    (void)ctx;
    if (out[0].data != in[0].data)
        memcpy(out[0].data, in[0].data, qs_view_numel(&in[0]) * qs_dtype_size(in[0].dtype));
    return QS_OK;
}

#define QS_RESHAPE_OP(NAME, TYPE, MININ, MAXIN, INFER)                                           \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = MININ,                                                                     \
        .max_inputs = MAXIN,                                                                     \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .flags = QS_OP_ALIAS_INPUT0,                                                             \
        .init = qs_reshape_init,                                                                 \
        .infer = INFER,                                                                          \
        .run = qs_reshape_run,                                                                   \
    };

QS_RESHAPE_OP(qs_op_reshape, "Reshape", 2, 2, qs_reshape_infer)
QS_RESHAPE_OP(qs_op_flatten, "Flatten", 1, 1, qs_flatten_infer)
QS_RESHAPE_OP(qs_op_squeeze, "Squeeze", 1, 2, qs_squeeze_infer)
QS_RESHAPE_OP(qs_op_unsqueeze, "Unsqueeze", 1, 2, qs_unsqueeze_infer)
