/* Comparisons (Equal, Less, Greater, ...) and logic (And, Or, Xor, Not): broadcasting, bool out. */
#include <string.h>

#include "ops/op_util.h"

typedef enum { QS_CMP_EQ = 0, QS_CMP_LT, QS_CMP_GT, QS_CMP_LE, QS_CMP_GE, QS_CMP_AND, QS_CMP_OR,
               QS_CMP_XOR } qs_cmp_kind;

#define QS_CMP_ROW(NAME, T, EXPR)                                                                \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const T *a = ins[0], *b = ins[1];                                                        \
        uint8_t *o = vo;                                                                         \
        size_t sa = (size_t)unit[0], sb = (size_t)unit[1];                                       \
        for (size_t i = 0; i < n; i++) {                                                         \
            T x = a[i * sa], y = b[i * sb];                                                      \
            o[i] = (uint8_t)(EXPR);                                                              \
        }                                                                                        \
    }

#define QS_CMP_TYPE(E, T, S)                                                                     \
    QS_CMP_ROW(qs_eq_##S, T, x == y)                                                             \
    QS_CMP_ROW(qs_lt_##S, T, x < y)                                                              \
    QS_CMP_ROW(qs_gt_##S, T, x > y)                                                              \
    QS_CMP_ROW(qs_le_##S, T, x <= y)                                                             \
    QS_CMP_ROW(qs_ge_##S, T, x >= y)
QS_FOREACH_NUMERIC_DTYPE(QS_CMP_TYPE)
QS_CMP_ROW(qs_eq_b, uint8_t, (x != 0) == (y != 0))
QS_CMP_ROW(qs_and_b, uint8_t, x && y)
QS_CMP_ROW(qs_or_b, uint8_t, x || y)
QS_CMP_ROW(qs_xor_b, uint8_t, (x != 0) != (y != 0))

static qs_cmp_kind qs_cmp_kind_of(const char *type) {
    if (strcmp(type, "Less") == 0)
        return QS_CMP_LT;
    if (strcmp(type, "Greater") == 0)
        return QS_CMP_GT;
    if (strcmp(type, "LessOrEqual") == 0)
        return QS_CMP_LE;
    if (strcmp(type, "GreaterOrEqual") == 0)
        return QS_CMP_GE;
    if (strcmp(type, "And") == 0)
        return QS_CMP_AND;
    if (strcmp(type, "Or") == 0)
        return QS_CMP_OR;
    if (strcmp(type, "Xor") == 0)
        return QS_CMP_XOR;
    return QS_CMP_EQ;
}

static qs_bcast_row_fn qs_cmp_row(qs_cmp_kind k, qs_dtype t) {
    if (t == QS_DTYPE_BOOL) {
        switch (k) {
        case QS_CMP_EQ: return qs_eq_b;
        case QS_CMP_AND: return qs_and_b;
        case QS_CMP_OR: return qs_or_b;
        case QS_CMP_XOR: return qs_xor_b;
        default: return NULL;
        }
    }
#define QS_CMP_CASE(E, T, S)                                                                     \
    case E:                                                                                      \
        switch (k) {                                                                             \
        case QS_CMP_EQ: return qs_eq_##S;                                                        \
        case QS_CMP_LT: return qs_lt_##S;                                                        \
        case QS_CMP_GT: return qs_gt_##S;                                                        \
        case QS_CMP_LE: return qs_le_##S;                                                        \
        case QS_CMP_GE: return qs_ge_##S;                                                        \
        default: return NULL;                                                                    \
        }
    switch (t) {
        QS_FOREACH_NUMERIC_DTYPE(QS_CMP_CASE)
    default: return NULL;
    }
#undef QS_CMP_CASE
}

static qs_status qs_cmp_init(const qs_graph *g, qs_node *n, qs_error *err) {
    /* before opset 7: broadcast with an explicit axis lines B up differently */
    if (g->opset < 7 && qs_node_attr_int(n, "broadcast", 0) != 0 && qs_node_attr(n, "axis"))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "legacy broadcast with axis");
    return QS_OK;
}

static qs_status qs_cmp_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_op_need_plain(n, in, 1, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != in[1].dtype)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "inputs have types %s and %s",
                             qs_dtype_name(in[0].dtype), qs_dtype_name(in[1].dtype));
    if (qs_cmp_row(qs_cmp_kind_of(n->op_type), in[0].dtype) == NULL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    memset(&out[0], 0, sizeof(out[0]));
    if (!qs_broadcast_shape(&in[0], &in[1], &out[0].rank, out[0].dims))
        return qs_node_error(err, QS_ERR_SHAPE, n, "inputs cannot be broadcast together");
    out[0].dtype = QS_DTYPE_BOOL;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_cmp_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    const qs_view *ins[2] = {&in[0], &in[1]};
    const void *data[2] = {in[0].data, in[1].data};
    size_t es = qs_dtype_size(in[0].dtype);
    size_t esize[2] = {es, es};
    qs_bcast b;
    qs_bcast_init(&b, 2, ins, &out[0]);
    qs_bcast_run(&b, data, esize, out[0].data, 1, qs_cmp_row(qs_cmp_kind_of(n->op_type), in[0].dtype),
                 ctx);
    return QS_OK;
}

static qs_status qs_not_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    if (in[0].dtype != QS_DTYPE_BOOL)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "input must be bool");
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_not_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    size_t count = qs_view_numel(&in[0]);
    const uint8_t *x = in[0].data;
    uint8_t *y = out[0].data;
    (void)n;
    (void)ctx;
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] == 0;
    return QS_OK;
}

#define QS_CMP_OP(NAME, TYPE)                                                                    \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 2,                                                                         \
        .max_inputs = 2,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_cmp_init,                                                                     \
        .infer = qs_cmp_infer,                                                                   \
        .run = qs_cmp_run,                                                                       \
    };

QS_CMP_OP(qs_op_equal, "Equal")
QS_CMP_OP(qs_op_less, "Less")
QS_CMP_OP(qs_op_greater, "Greater")
QS_CMP_OP(qs_op_less_or_equal, "LessOrEqual")
QS_CMP_OP(qs_op_greater_or_equal, "GreaterOrEqual")
QS_CMP_OP(qs_op_and, "And")
QS_CMP_OP(qs_op_or, "Or")
QS_CMP_OP(qs_op_xor, "Xor")

const qs_op qs_op_not = {
    .type = "Not",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = qs_not_infer,
    .run = qs_not_run,
};
