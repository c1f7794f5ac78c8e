/* Where (select by a bool condition) and Expand (broadcast to a shape): broadcasting copies of
 * any element type. */
#include <string.h>

#include "ops/op_util.h"

#define QS_WHERE_ROW(NAME, T)                                                                    \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const uint8_t *c = ins[0];                                                               \
        const T *x = ins[1], *y = ins[2];                                                        \
        T *o = vo;                                                                               \
        size_t sc = (size_t)unit[0], sx = (size_t)unit[1], sy = (size_t)unit[2];                 \
        for (size_t i = 0; i < n; i++)                                                           \
            o[i] = c[i * sc] ? x[i * sx] : y[i * sy];                                            \
    }
QS_WHERE_ROW(qs_where_1, uint8_t)
QS_WHERE_ROW(qs_where_2, uint16_t)
QS_WHERE_ROW(qs_where_4, uint32_t)
QS_WHERE_ROW(qs_where_8, uint64_t)

#define QS_EXPAND_ROW(NAME, T)                                                                   \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const T *x = ins[0];                                                                     \
        T *o = vo;                                                                               \
        if (unit[0]) {                                                                           \
            memcpy(o, x, n * sizeof(T));                                                         \
            return;                                                                              \
        }                                                                                        \
        for (size_t i = 0; i < n; i++)                                                           \
            o[i] = x[0];                                                                         \
    }
QS_EXPAND_ROW(qs_expand_1, uint8_t)
QS_EXPAND_ROW(qs_expand_2, uint16_t)
QS_EXPAND_ROW(qs_expand_4, uint32_t)
QS_EXPAND_ROW(qs_expand_8, uint64_t)

static qs_status qs_where_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    const qs_view *ins[3] = {&in[0], &in[1], &in[2]};
    for (int32_t i = 0; i < 3; i++) {
        qs_status st = qs_op_need_plain(n, in, i, err);
        if (st != QS_OK)
            return st;
    }
    if (in[0].dtype != QS_DTYPE_BOOL)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "condition must be bool");
    if (in[1].dtype != in[2].dtype || qs_dtype_size(in[1].dtype) == 0)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "X and Y differ in type");
    memset(&out[0], 0, sizeof(out[0]));
    if (!qs_broadcast_shape_n(3, ins, &out[0].rank, out[0].dims))
        return qs_node_error(err, QS_ERR_SHAPE, n, "inputs cannot be broadcast together");
    out[0].dtype = in[1].dtype;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_where_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    const qs_view *ins[3] = {&in[0], &in[1], &in[2]};
    const void *data[3] = {in[0].data, in[1].data, in[2].data};
    size_t es = qs_dtype_size(in[1].dtype);
    size_t esize[3] = {1, es, es};
    qs_bcast b;
    (void)n;
    qs_bcast_init(&b, 3, ins, &out[0]);
    qs_bcast_run(&b, data, esize, out[0].data, es,
                 es == 1 ? qs_where_1 : es == 2 ? qs_where_2 : es == 4 ? qs_where_4 : qs_where_8,
                 ctx);
    return QS_OK;
}

static qs_status qs_expand_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    qs_view shape;
    size_t count;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    memset(&shape, 0, sizeof(shape));
    if (st == QS_OK)
        st = qs_input_ints(n, in, 1, "shape", shape.dims, QS_MAX_RANK, &count, err);
    if (st != QS_OK)
        return st;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    shape.rank = (int32_t)count;
    memset(&out[0], 0, sizeof(out[0]));
    if (!qs_broadcast_shape(&in[0], &shape, &out[0].rank, out[0].dims))
        return qs_node_error(err, QS_ERR_SHAPE, n, "input does not broadcast to the shape");
    out[0].dtype = in[0].dtype;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_expand_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_view *ins[1] = {&in[0]};
    const void *data[1] = {in[0].data};
    size_t es = qs_dtype_size(in[0].dtype);
    size_t esize[1] = {es};
    qs_bcast b;
    (void)n;
    qs_bcast_init(&b, 1, ins, &out[0]);
    qs_bcast_run(&b, data, esize, out[0].data, es,
                 es == 1   ? qs_expand_1
                 : es == 2 ? qs_expand_2
                 : es == 4 ? qs_expand_4
                           : qs_expand_8,
                 ctx);
    return QS_OK;
}

const qs_op qs_op_where = {
    .type = "Where",
    .domain = "",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = qs_where_infer,
    .run = qs_where_run,
};

const qs_op qs_op_expand = {
    .type = "Expand",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = qs_expand_infer,
    .run = qs_expand_run,
};
