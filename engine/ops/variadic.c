/* Sum, Mean, Max, Min: elementwise over any number of inputs with numpy broadcasting. */
#include <string.h>

#include "ops/op_util.h"

typedef enum { QS_VAR_SUM = 0, QS_VAR_MEAN, QS_VAR_MAX, QS_VAR_MIN } qs_var_kind;

/* acc (the output, unit stride) op= b; b advances with unit[1]. */
#define QS_VAR_ROW(NAME, T, EXPR)                                                                \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const T *b = ins[1];                                                                     \
        T *o = vo;                                                                               \
        size_t sb = (size_t)unit[1];                                                             \
        for (size_t i = 0; i < n; i++) {                                                         \
            T x = o[i], y = b[i * sb];                                                           \
            o[i] = (T)(EXPR);                                                                    \
        }                                                                                        \
    }
#define QS_VAR_FLOAT(E, T, S)                                                                    \
    QS_VAR_ROW(qs_var_add_##S, T, x + y)                                                         \
    QS_VAR_ROW(qs_var_max_##S, T, y > x || y != y ? y : x)                                       \
    QS_VAR_ROW(qs_var_min_##S, T, y < x || y != y ? y : x)
#define QS_VAR_INT(E, T, S)                                                                      \
    QS_VAR_ROW(qs_var_add_##S, T, (uint64_t)x + (uint64_t)y)                                     \
    QS_VAR_ROW(qs_var_max_##S, T, y > x ? y : x)                                                 \
    QS_VAR_ROW(qs_var_min_##S, T, y < x ? y : x)
QS_FOREACH_FLOAT_DTYPE(QS_VAR_FLOAT)
QS_FOREACH_INT_DTYPE(QS_VAR_INT)

/* Broadcast copy of input 0 into the output. */
#define QS_VAR_COPY(NAME, T)                                                                     \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const T *x = ins[0];                                                                     \
        T *o = vo;                                                                               \
        for (size_t i = 0; i < n; i++)                                                           \
            o[i] = x[i * (size_t)unit[0]];                                                       \
    }
QS_VAR_COPY(qs_var_copy_1, uint8_t)
QS_VAR_COPY(qs_var_copy_2, uint16_t)
QS_VAR_COPY(qs_var_copy_4, uint32_t)
QS_VAR_COPY(qs_var_copy_8, uint64_t)

static qs_var_kind qs_var_kind_of(const char *type) {
    if (strcmp(type, "Mean") == 0)
        return QS_VAR_MEAN;
    if (strcmp(type, "Max") == 0)
        return QS_VAR_MAX;
    if (strcmp(type, "Min") == 0)
        return QS_VAR_MIN;
    return QS_VAR_SUM;
}

static qs_bcast_row_fn qs_var_row(qs_var_kind k, qs_dtype t) {
#define QS_VAR_CASE(E, T, S)                                                                     \
    case E: return k == QS_VAR_MAX ? qs_var_max_##S : k == QS_VAR_MIN ? qs_var_min_##S            \
                                                                       : qs_var_add_##S;
    switch (t) {
        QS_FOREACH_NUMERIC_DTYPE(QS_VAR_CASE)
    default: return NULL;
    }
#undef QS_VAR_CASE
}

static qs_status qs_var_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    const qs_view *ins[QS_MAX_RANK];
    qs_var_kind k = qs_var_kind_of(n->op_type);
    int32_t rank = 0;
    int64_t dims[QS_MAX_RANK];
    if (qs_var_row(k, in[0].dtype) == NULL || (k == QS_VAR_MEAN && !qs_dtype_is_float(in[0].dtype)))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    for (int32_t i = 0; i < n->n_inputs; i++) {
        qs_status st = qs_op_need_plain(n, in, i, err);
        if (st != QS_OK)
            return st;
        if (!qs_op_has_input(n, in, i) || in[i].dtype != in[0].dtype)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "input %d is missing or differs",
                                 (int)i);
        /* fold the broadcast shape two at a time */
        qs_view acc = {0};
        acc.rank = rank;
        memcpy(acc.dims, dims, sizeof(dims));
        ins[0] = &acc;
        ins[1] = &in[i];
        if (!qs_broadcast_shape_n(i == 0 ? 1 : 2, i == 0 ? &ins[1] : ins, &rank, dims))
            return qs_node_error(err, QS_ERR_SHAPE, n, "inputs cannot be broadcast together");
    }
    memset(&out[0], 0, sizeof(out[0]));
    out[0].dtype = in[0].dtype;
    out[0].rank = rank;
    memcpy(out[0].dims, dims, sizeof(dims));
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_var_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    qs_var_kind k = qs_var_kind_of(n->op_type);
    size_t es = qs_dtype_size(in[0].dtype);
    qs_bcast b;
    const qs_view *first[1] = {&in[0]};
    const void *d0[1] = {in[0].data};
    size_t e0[1] = {es};
    qs_bcast_init(&b, 1, first, &out[0]);
    qs_bcast_run(&b, d0, e0, out[0].data, es,
                 es == 1   ? qs_var_copy_1
                 : es == 2 ? qs_var_copy_2
                 : es == 4 ? qs_var_copy_4
                           : qs_var_copy_8,
                 ctx);
    for (int32_t i = 1; i < n->n_inputs; i++) {
        const qs_view *ins[2] = {&out[0], &in[i]};
        const void *data[2] = {out[0].data, in[i].data};
        size_t esize[2] = {es, es};
        qs_bcast_init(&b, 2, ins, &out[0]);
        qs_bcast_run(&b, data, esize, out[0].data, es, qs_var_row(k, in[0].dtype), ctx);
    }
    if (k == QS_VAR_MEAN) {
        size_t count = qs_view_numel(&out[0]);
        if (out[0].dtype == QS_DTYPE_FLOAT32)
            for (size_t i = 0; i < count; i++)
                ((float *)out[0].data)[i] /= (float)n->n_inputs;
        else
            for (size_t i = 0; i < count; i++)
                ((double *)out[0].data)[i] /= (double)n->n_inputs;
    }
    return QS_OK;
}

#define QS_VAR_OP(NAME, TYPE)                                                                    \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 1,                                                                         \
        .max_inputs = 64,                                                                        \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .infer = qs_var_infer,                                                                   \
        .run = qs_var_run,                                                                       \
    };

QS_VAR_OP(qs_op_sum, "Sum")
QS_VAR_OP(qs_op_mean, "Mean")
QS_VAR_OP(qs_op_max, "Max")
QS_VAR_OP(qs_op_min, "Min")
