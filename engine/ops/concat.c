/* Concat: join tensors of any element type along one axis (NHWC inputs with a remapped axis too). */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    int64_t axis;
} qs_concat_params;

static qs_status qs_concat_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_concat_params *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if (qs_node_attr(n, "axis") == NULL && g->opset >= 4) {
        free(p);
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis is missing");
    }
    /* before opset 4 axis was optional, default 1 */
    qs_status st = qs_attr_get_int(n, "axis", 1, &p->axis, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_concat_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    const qs_concat_params *p = n->params;
    int32_t axis;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                             (long long)p->axis);
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dims[axis] = 0;
    for (int32_t i = 0; i < n->n_inputs; i++) {
        if (!qs_op_has_input(n, in, i))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "input %d is missing", (int)i);
        if (in[i].dtype != in[0].dtype || in[i].rank != in[0].rank ||
            in[i].layout != in[0].layout)
            return qs_node_error(err, QS_ERR_SHAPE, n, "input %d differs in type or rank", (int)i);
        for (int32_t d = 0; d < in[0].rank; d++)
            if (d != axis && in[i].dims[d] != in[0].dims[d])
                return qs_node_error(err, QS_ERR_SHAPE, n, "input %d differs in dim %d", (int)i,
                                     (int)d);
        if (in[i].dims[axis] < 0 || out[0].dims[axis] > INT64_MAX - in[i].dims[axis])
            return qs_node_error(err, QS_ERR_SHAPE, n, "axis dims overflow");
        out[0].dims[axis] += in[i].dims[axis];
    }
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_concat_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_concat_params *p = n->params;
    int32_t axis;
    (void)ctx;
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return QS_ERR_INTERNAL;
    size_t es = qs_dtype_size(in[0].dtype);
    size_t outer = qs_dims_prod(in[0].dims, 0, axis);
    size_t out_chunk = qs_dims_prod(out[0].dims, axis, out[0].rank) * es;
    size_t pos = 0;
    for (int32_t i = 0; i < n->n_inputs; i++) {
        size_t chunk = qs_dims_prod(in[i].dims, axis, in[i].rank) * es;
        const char *x = in[i].data;
        char *y = (char *)out[0].data + pos;
        for (size_t o = 0; o < outer && chunk > 0; o++)
            memcpy(y + o * out_chunk, x + o * chunk, chunk);
        pos += chunk;
    }
    return QS_OK;
}

const qs_op qs_op_concat = {
    .type = "Concat",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1024,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_concat_init,
    .infer = qs_concat_infer,
    .run = qs_concat_run,
};
