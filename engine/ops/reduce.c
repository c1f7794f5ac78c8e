/* ReduceMean, ReduceSum, ReduceMax/Min/Prod, ReduceL1/L2, ReduceSumSquare, ReduceLogSum(Exp). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef enum {
    QS_RED_MEAN = 0, QS_RED_SUM, QS_RED_MAX, QS_RED_MIN, QS_RED_PROD, QS_RED_SUM_SQUARE,
    QS_RED_L1, QS_RED_L2, QS_RED_LOG_SUM, QS_RED_LOG_SUM_EXP,
} qs_reduce_kind;

static const struct {
    const char *type;
    qs_reduce_kind kind;
} qs_reduce_names[] = {
    {"ReduceMean", QS_RED_MEAN}, {"ReduceSum", QS_RED_SUM}, {"ReduceMax", QS_RED_MAX},
    {"ReduceMin", QS_RED_MIN}, {"ReduceProd", QS_RED_PROD}, {"ReduceSumSquare", QS_RED_SUM_SQUARE},
    {"ReduceL1", QS_RED_L1}, {"ReduceL2", QS_RED_L2}, {"ReduceLogSum", QS_RED_LOG_SUM},
    {"ReduceLogSumExp", QS_RED_LOG_SUM_EXP},
};

typedef struct {
    qs_reduce_kind kind;
    bool keepdims, noop_with_empty_axes;
    bool axes_from_input; /* ReduceSum from opset 13, the others from 18 */
    size_t n_axes;
    int64_t axes[QS_MAX_RANK];
} qs_reduce_params;

static qs_status qs_reduce_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_reduce_params *p = calloc(1, sizeof(*p));
    int64_t keep = 1, noop = 0;
    qs_status st = QS_OK;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    for (size_t i = 0; i < sizeof(qs_reduce_names) / sizeof(qs_reduce_names[0]); i++)
        if (strcmp(n->op_type, qs_reduce_names[i].type) == 0)
            p->kind = qs_reduce_names[i].kind;
    p->axes_from_input = g->opset >= (p->kind == QS_RED_SUM ? 13 : 18);
    if ((st = qs_attr_get_int(n, "keepdims", 1, &keep, err)) == QS_OK &&
        (st = qs_attr_get_int(n, "noop_with_empty_axes", 0, &noop, err)) == QS_OK &&
        !p->axes_from_input)
        st = qs_attr_get_ints(n, "axes", p->axes, QS_MAX_RANK, &p->n_axes, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    p->keepdims = keep != 0;
    p->noop_with_empty_axes = noop != 0;
    n->params = p;
    return QS_OK;
}

/* Which dims are reduced; *noop when nothing is (empty axes with noop_with_empty_axes). */
static qs_status qs_reduce_axes(const qs_node *n, const qs_view *in, bool *reduced, bool *noop,
                                qs_error *err) {
    const qs_reduce_params *p = n->params;
    int64_t axes[QS_MAX_RANK];
    size_t count = 0;
    memset(reduced, 0, sizeof(bool) * QS_MAX_RANK);
    *noop = false;
    if (!p->axes_from_input) {
        count = p->n_axes;
        memcpy(axes, p->axes, count * sizeof(int64_t));
    } else if (qs_op_has_input(n, in, 1)) {
        qs_status st = qs_input_ints(n, in, 1, "axes", axes, QS_MAX_RANK, &count, err);
        if (st != QS_OK)
            return st;
    }
    if (count == 0) {
        *noop = p->noop_with_empty_axes;
        for (int32_t d = 0; d < in[0].rank && !*noop; d++)
            reduced[d] = true;
        return QS_OK;
    }
    for (size_t i = 0; i < count; i++) {
        int32_t a;
        if (!qs_axis_normalize(axes[i], in[0].rank, &a))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                                 (long long)axes[i]);
        reduced[a] = true;
    }
    return QS_OK;
}

static qs_status qs_reduce_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    const qs_reduce_params *p = n->params;
    bool reduced[QS_MAX_RANK], noop;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_reduce_axes(n, in, reduced, &noop, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    if (!noop) {
        out[0].rank = 0;
        for (int32_t d = 0; d < in[0].rank; d++) {
            if (!reduced[d])
                out[0].dims[out[0].rank++] = in[0].dims[d];
            else if (p->keepdims)
                out[0].dims[out[0].rank++] = 1;
            /* max/min of nothing has no value */
            if (reduced[d] && in[0].dims[d] == 0 &&
                (p->kind == QS_RED_MAX || p->kind == QS_RED_MIN))
                return qs_node_error(err, QS_ERR_SHAPE, n, "reducing an empty dim");
        }
    }
    return qs_op_check_output(n, &out[0], err);
}

static size_t qs_reduce_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                int32_t n_threads) {
    const qs_reduce_params *p = n->params;
    (void)in;
    (void)n_threads;
    return p->kind == QS_RED_LOG_SUM_EXP ? qs_view_numel(&out[0]) * sizeof(float) : 0;
}

/* acc = f(acc, x) for one element. */
static inline float qs_reduce_step(qs_reduce_kind k, float acc, float x, float shift) {
    switch (k) {
    case QS_RED_MAX: return x > acc ? x : acc;
    case QS_RED_MIN: return x < acc ? x : acc;
    case QS_RED_PROD: return acc * x;
    case QS_RED_SUM_SQUARE:
    case QS_RED_L2: return acc + x * x;
    case QS_RED_L1: return acc + fabsf(x);
    case QS_RED_LOG_SUM_EXP: return acc + expf(x - shift);
    default: return acc + x;
    }
}

/* Walk the input once, in rows of its last dim, accumulating into the output element each input
 * element maps to (ostride: output element stride per input dim, 0 when reduced). */
static void qs_reduce_pass(qs_reduce_kind k, const qs_view *x, const int64_t *ostride, float *y,
                           const float *shift) {
    int32_t r = x->rank;
    size_t inner = r ? (size_t)x->dims[r - 1] : 1;
    size_t rows = inner ? qs_view_numel(x) / inner : 0;
    size_t last = r ? (size_t)ostride[r - 1] : 0;
    const float *xd = x->data;
    for (size_t row = 0; row < rows; row++) {
        size_t rem = row, off = 0;
        for (int32_t d = r - 2; d >= 0; d--) {
            off += (rem % (size_t)x->dims[d]) * (size_t)ostride[d];
            rem /= (size_t)x->dims[d];
        }
        const float *xr = xd + row * inner;
        if (last == 0) {
            float acc = y[off], s = shift ? shift[off] : 0.0f;
            for (size_t i = 0; i < inner; i++)
                acc = qs_reduce_step(k, acc, xr[i], s);
            y[off] = acc;
        } else {
            for (size_t i = 0; i < inner; i++)
                y[off + i] = qs_reduce_step(k, y[off + i], xr[i], shift ? shift[off + i] : 0.0f);
        }
    }
}

static qs_status qs_reduce_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_reduce_params *p = n->params;
    bool reduced[QS_MAX_RANK], noop;
    int64_t ostride[QS_MAX_RANK];
    float *y = out[0].data;
    size_t out_n = qs_view_numel(&out[0]), count = 1;
    if (qs_reduce_axes(n, in, reduced, &noop, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    if (noop) {
        if (out[0].data != in[0].data)
            memcpy(out[0].data, in[0].data, qs_view_numel(&in[0]) * sizeof(float));
        return QS_OK;
    }
    /* output strides in input dim order (kept dims only) */
    int64_t s = 1;
    for (int32_t d = in[0].rank - 1; d >= 0; d--) {
        if (reduced[d]) {
            ostride[d] = 0;
            count *= (size_t)in[0].dims[d];
        } else {
            ostride[d] = s;
            s *= in[0].dims[d];
        }
    }
    float init = 0.0f;
    if (p->kind == QS_RED_MAX)
        init = -INFINITY;
    else if (p->kind == QS_RED_MIN)
        init = INFINITY;
    else if (p->kind == QS_RED_PROD)
        init = 1.0f;
    const float *shift = NULL;
    if (p->kind == QS_RED_LOG_SUM_EXP) {
        /* log(sum(exp(x - max))) + max, so large inputs do not overflow */
        float *m = ctx->scratch;
        for (size_t i = 0; i < out_n; i++)
            m[i] = -INFINITY;
        qs_reduce_pass(QS_RED_MAX, &in[0], ostride, m, NULL);
        for (size_t i = 0; i < out_n; i++)
            if (isinf(m[i]))
                m[i] = 0.0f;
        shift = m;
    }
    for (size_t i = 0; i < out_n; i++)
        y[i] = init;
    qs_reduce_pass(p->kind, &in[0], ostride, y, shift);
    for (size_t i = 0; i < out_n; i++) {
        switch (p->kind) {
        case QS_RED_MEAN: y[i] = count ? y[i] / (float)count : NAN; break;
        case QS_RED_L2: y[i] = sqrtf(y[i]); break;
        case QS_RED_LOG_SUM: y[i] = logf(y[i]); break;
        case QS_RED_LOG_SUM_EXP: y[i] = logf(y[i]) + shift[i]; break;
        default: break;
        }
    }
    return QS_OK;
}

#define QS_REDUCE_OP(NAME, TYPE)                                                                 \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 1,                                                                         \
        .max_inputs = 2,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_reduce_init,                                                                  \
        .infer = qs_reduce_infer,                                                                \
        .scratch_bytes = qs_reduce_scratch,                                                      \
        .run = qs_reduce_run,                                                                    \
    };

QS_REDUCE_OP(qs_op_reduce_mean, "ReduceMean")
QS_REDUCE_OP(qs_op_reduce_sum, "ReduceSum")
QS_REDUCE_OP(qs_op_reduce_max, "ReduceMax")
QS_REDUCE_OP(qs_op_reduce_min, "ReduceMin")
QS_REDUCE_OP(qs_op_reduce_prod, "ReduceProd")
QS_REDUCE_OP(qs_op_reduce_sum_square, "ReduceSumSquare")
QS_REDUCE_OP(qs_op_reduce_l1, "ReduceL1")
QS_REDUCE_OP(qs_op_reduce_l2, "ReduceL2")
QS_REDUCE_OP(qs_op_reduce_log_sum, "ReduceLogSum")
QS_REDUCE_OP(qs_op_reduce_log_sum_exp, "ReduceLogSumExp")
