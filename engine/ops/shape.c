/* Shape (with start/end from opset 15) and Size: int64 facts about the input's dims. */
#include <stdlib.h>

#include "ops/op_util.h"

typedef struct {
    int64_t start, end;
    bool has_end;
} qs_shape_params;

static qs_status qs_shape_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_shape_params *p = calloc(1, sizeof(*p));
    qs_status st;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->has_end = qs_node_attr(n, "end") != NULL;
    if ((st = qs_attr_get_int(n, "start", 0, &p->start, err)) != QS_OK ||
        (st = qs_attr_get_int(n, "end", 0, &p->end, err)) != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* [start, end) of the dims, clamped as the spec says. */
static void qs_shape_range(const qs_shape_params *p, int32_t rank, int64_t *start, int64_t *end) {
    int64_t s = p->start, e = p->has_end ? p->end : rank;
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    s = s < 0 ? 0 : (s > rank ? rank : s);
    e = e < 0 ? 0 : (e > rank ? rank : e);
    *start = s;
    *end = e < s ? s : e;
}

static qs_status qs_shape_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    int64_t s, e;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    qs_shape_range(n->params, in[0].rank, &s, &e);
    out[0].dtype = QS_DTYPE_INT64;
    out[0].rank = 1;
    out[0].dims[0] = e - s;
    out[0].layout = QS_LAYOUT_PLAIN;
    return QS_OK;
}

static qs_status qs_shape_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    int64_t s, e;
    (void)ctx;
    qs_shape_range(n->params, in[0].rank, &s, &e);
    for (int64_t i = s; i < e; i++)
        ((int64_t *)out[0].data)[i - s] = in[0].dims[i];
    return QS_OK;
}

static qs_status qs_size_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    (void)in;
    (void)n;
    (void)err;
    out[0].dtype = QS_DTYPE_INT64;
    out[0].rank = 0;
    out[0].layout = QS_LAYOUT_PLAIN;
    return QS_OK;
}

static qs_status qs_size_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    (void)n;
    (void)ctx;
    *(int64_t *)out[0].data = (int64_t)qs_view_numel(&in[0]);
    return QS_OK;
}

const qs_op qs_op_shape = {
    .type = "Shape",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .flags = QS_OP_SHAPE_ONLY,
    .init = qs_shape_init,
    .infer = qs_shape_infer,
    .run = qs_shape_run,
};

const qs_op qs_op_size = {
    .type = "Size",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .flags = QS_OP_SHAPE_ONLY,
    .infer = qs_size_infer,
    .run = qs_size_run,
};
