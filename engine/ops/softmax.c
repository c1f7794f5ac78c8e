/* Softmax and LogSoftmax: 2-D coercion before opset 13, a single axis from 13. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    int64_t axis;
    bool coerce_2d; /* opset < 13: flatten to [prod(dims[:axis]), prod(dims[axis:])] */
    bool is_log;
} qs_softmax_params;

static qs_status qs_softmax_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_softmax_params *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->coerce_2d = g->opset < 13;
    p->is_log = strcmp(n->op_type, "LogSoftmax") == 0;
    qs_status st = qs_attr_get_int(n, "axis", p->coerce_2d ? 1 : -1, &p->axis, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* outer x len x inner view of X for the softmax axis. */
static bool qs_softmax_split(const qs_softmax_params *p, const qs_view *x, size_t *outer,
                             size_t *len, size_t *inner) {
    int32_t axis;
    if (!qs_axis_normalize(p->axis, x->rank, &axis))
        return false;
    *outer = qs_dims_prod(x->dims, 0, axis);
    if (p->coerce_2d) {
        *len = qs_dims_prod(x->dims, axis, x->rank);
        *inner = 1;
    } else {
        *len = (size_t)x->dims[axis];
        *inner = qs_dims_prod(x->dims, axis + 1, x->rank);
    }
    return true;
}

static qs_status qs_softmax_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    size_t outer, len, inner;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (!qs_softmax_split(n->params, &in[0], &outer, &len, &inner))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis is out of range");
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    const float *x;
    float *y;
    size_t len, inner;
    bool is_log;
} qs_softmax_job;

static void qs_softmax_lines(void *ctx, size_t begin, size_t end) {
    const qs_softmax_job *j = ctx;
    for (size_t t = begin; t < end; t++) {
        size_t o = t / j->inner, i = t % j->inner;
        const float *x = j->x + o * j->len * j->inner + i;
        float *y = j->y + o * j->len * j->inner + i;
        size_t s = j->inner;
        float m = -INFINITY;
        for (size_t k = 0; k < j->len; k++)
            m = x[k * s] > m ? x[k * s] : m;
        float sum = 0.0f;
        if (j->is_log) {
            for (size_t k = 0; k < j->len; k++)
                sum += expf(x[k * s] - m);
            float ls = logf(sum);
            for (size_t k = 0; k < j->len; k++)
                y[k * s] = x[k * s] - m - ls;
        } else {
            for (size_t k = 0; k < j->len; k++) {
                float e = expf(x[k * s] - m);
                y[k * s] = e;
                sum += e;
            }
            float inv = 1.0f / sum;
            for (size_t k = 0; k < j->len; k++)
                y[k * s] *= inv;
        }
    }
}

static qs_status qs_softmax_run(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_exec_ctx *ctx) {
    const qs_softmax_params *p = n->params;
    qs_softmax_job j = {in[0].data, out[0].data, 0, 0, p->is_log};
    size_t outer;
    if (!qs_softmax_split(p, &in[0], &outer, &j.len, &j.inner))
        return QS_ERR_INTERNAL;
    if (j.len == 0)
        return QS_OK;
    qs_op_parallel(ctx->pool, ctx->n_threads, outer * j.inner, qs_op_grain(j.len * 3),
                   qs_softmax_lines, &j);
    return QS_OK;
}

#define QS_SOFTMAX_OP(NAME, TYPE)                                                                \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 1,                                                                         \
        .max_inputs = 1,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_softmax_init,                                                                 \
        .infer = qs_softmax_infer,                                                               \
        .run = qs_softmax_run,                                                                   \
    };

QS_SOFTMAX_OP(qs_op_softmax, "Softmax")
QS_SOFTMAX_OP(qs_op_log_softmax, "LogSoftmax")
