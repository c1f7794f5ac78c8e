/* Split: cut along one axis into parts given by `split` (attribute before opset 13, input from 13)
 * or into equal parts (the last one smaller with num_outputs, opset 18). */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

#define QS_SPLIT_MAX_OUTPUTS 64

typedef struct {
    int64_t axis;
    bool split_from_input;
    size_t n_split;
    int64_t split[QS_SPLIT_MAX_OUTPUTS];
} qs_split_params;

static qs_status qs_split_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_split_params *p = calloc(1, sizeof(*p));
    qs_status st;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->split_from_input = g->opset >= 13;
    st = qs_attr_get_int(n, "axis", 0, &p->axis, err);
    if (st == QS_OK && !p->split_from_input)
        st = qs_attr_get_ints(n, "split", p->split, QS_SPLIT_MAX_OUTPUTS, &p->n_split, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* Size of each output along the axis. */
static qs_status qs_split_sizes(const qs_node *n, const qs_view *in, int32_t *axis,
                                int64_t *sizes, qs_error *err) {
    const qs_split_params *p = n->params;
    int64_t split[QS_SPLIT_MAX_OUTPUTS];
    size_t count = p->n_split;
    int32_t outs = n->n_outputs;
    qs_status st;
    if (!qs_axis_normalize(p->axis, in[0].rank, axis))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis is out of range");
    if (outs > QS_SPLIT_MAX_OUTPUTS)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "more than %d outputs",
                             QS_SPLIT_MAX_OUTPUTS);
    memcpy(split, p->split, count * sizeof(int64_t));
    if (p->split_from_input && qs_op_has_input(n, in, 1)) {
        st = qs_input_ints(n, in, 1, "split", split, QS_SPLIT_MAX_OUTPUTS, &count, err);
        if (st != QS_OK)
            return st;
    }
    int64_t dim = in[0].dims[*axis];
    if (count == 0) {
        /* equal parts; with an uneven dim the last part is smaller (opset 18 num_outputs) */
        int64_t part = (dim + outs - 1) / outs;
        for (int32_t i = 0; i < outs; i++) {
            int64_t left = dim - part * i;
            sizes[i] = left < 0 ? 0 : (left < part ? left : part);
        }
        if (qs_node_attr(n, "num_outputs") == NULL && dim % outs != 0)
            return qs_node_error(err, QS_ERR_SHAPE, n, "dim %lld does not split in %d parts",
                                 (long long)dim, (int)outs);
        return QS_OK;
    }
    if (count != (size_t)outs)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "split has %zu parts for %d outputs",
                             count, (int)outs);
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if (split[i] < 0 || split[i] > dim)
            return qs_node_error(err, QS_ERR_SHAPE, n, "split part %lld is invalid",
                                 (long long)split[i]);
        sizes[i] = split[i];
        total += split[i];
    }
    if (total != dim)
        return qs_node_error(err, QS_ERR_SHAPE, n, "split parts sum to %lld, the dim is %lld",
                             (long long)total, (long long)dim);
    return QS_OK;
}

static qs_status qs_split_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    int64_t sizes[QS_SPLIT_MAX_OUTPUTS];
    int32_t axis;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_split_sizes(n, in, &axis, sizes, err);
    if (st != QS_OK)
        return st;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    for (int32_t i = 0; i < n->n_outputs; i++) {
        qs_view_copy_shape(&out[i], &in[0]);
        out[i].dims[axis] = sizes[i];
    }
    return QS_OK;
}

static qs_status qs_split_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    int64_t sizes[QS_SPLIT_MAX_OUTPUTS];
    int32_t axis;
    (void)ctx;
    if (qs_split_sizes(n, in, &axis, sizes, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    size_t es = qs_dtype_size(in[0].dtype);
    size_t outer = qs_dims_prod(in[0].dims, 0, axis);
    size_t inner = qs_dims_prod(in[0].dims, axis + 1, in[0].rank) * es;
    size_t row = (size_t)in[0].dims[axis] * inner, pos = 0;
    for (int32_t i = 0; i < n->n_outputs; i++) {
        size_t chunk = (size_t)sizes[i] * inner;
        if (out[i].data != NULL && chunk > 0)
            for (size_t o = 0; o < outer; o++)
                memcpy((char *)out[i].data + o * chunk, (const char *)in[0].data + o * row + pos,
                       chunk);
        pos += chunk;
    }
    return QS_OK;
}

const qs_op qs_op_split = {
    .type = "Split",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = QS_SPLIT_MAX_OUTPUTS,
    .init = qs_split_init,
    .infer = qs_split_infer,
    .run = qs_split_run,
};
