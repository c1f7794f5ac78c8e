/* Pow: base (float32/64, int32/64) to an exponent of any of those or uint32/64, broadcasting. */
#include <math.h>

#include "ops/op_util.h"

/* Integer results saturate: converting an out-of-range double is undefined in C. */
static int64_t qs_pow_int(double v) {
    if (isnan(v))
        return 0;
    if (v >= 9.2233720368547748e18)
        return INT64_MAX;
    if (v <= -9.2233720368547748e18)
        return INT64_MIN;
    return (int64_t)v;
}

#define QS_POW_ROW(NAME, TB, TE, CONV)                                                           \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const TB *a = ins[0];                                                                    \
        const TE *b = ins[1];                                                                    \
        TB *o = vo;                                                                              \
        size_t sa = (size_t)unit[0], sb = (size_t)unit[1];                                       \
        for (size_t i = 0; i < n; i++)                                                           \
            o[i] = (TB)CONV(pow((double)a[i * sa], (double)b[i * sb]));                          \
    }
#define QS_POW_ID(v) (v)
#define QS_POW_BASES(E, TE, S)                                                                   \
    QS_POW_ROW(qs_pow_f32_##S, float, TE, QS_POW_ID)                                             \
    QS_POW_ROW(qs_pow_f64_##S, double, TE, QS_POW_ID)                                            \
    QS_POW_ROW(qs_pow_i32_##S, int32_t, TE, qs_pow_int)                                          \
    QS_POW_ROW(qs_pow_i64_##S, int64_t, TE, qs_pow_int)
#define QS_POW_EXPONENTS(X)                                                                      \
    X(QS_DTYPE_FLOAT32, float, f32)                                                              \
    X(QS_DTYPE_FLOAT64, double, f64)                                                             \
    X(QS_DTYPE_INT32, int32_t, i32)                                                              \
    X(QS_DTYPE_INT64, int64_t, i64)                                                              \
    X(QS_DTYPE_UINT32, uint32_t, u32)                                                            \
    X(QS_DTYPE_UINT64, uint64_t, u64)
QS_POW_EXPONENTS(QS_POW_BASES)

static qs_bcast_row_fn qs_pow_row(qs_dtype base, qs_dtype exp) {
#define QS_POW_CASE(E, TE, S)                                                                    \
    case E:                                                                                      \
        switch (base) {                                                                          \
        case QS_DTYPE_FLOAT32: return qs_pow_f32_##S;                                            \
        case QS_DTYPE_FLOAT64: return qs_pow_f64_##S;                                            \
        case QS_DTYPE_INT32: return qs_pow_i32_##S;                                              \
        case QS_DTYPE_INT64: return qs_pow_i64_##S;                                              \
        default: return NULL;                                                                    \
        }
    switch (exp) {
        QS_POW_EXPONENTS(QS_POW_CASE)
    default: return NULL;
    }
#undef QS_POW_CASE
}

static qs_status qs_pow_init(const qs_graph *g, qs_node *n, qs_error *err) {
    /* before opset 7: broadcast with an explicit axis lines B up differently */
    if (g->opset < 7 && qs_node_attr_int(n, "broadcast", 0) != 0 && qs_node_attr(n, "axis"))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "legacy broadcast with axis");
    return QS_OK;
}

static qs_status qs_pow_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_op_need_plain(n, in, 1, err);
    if (st != QS_OK)
        return st;
    if (qs_pow_row(in[0].dtype, in[1].dtype) == NULL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%s to the power of %s",
                             qs_dtype_name(in[0].dtype), qs_dtype_name(in[1].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    if (!qs_broadcast_shape(&in[0], &in[1], &out[0].rank, out[0].dims))
        return qs_node_error(err, QS_ERR_SHAPE, n, "inputs cannot be broadcast together");
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_pow_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    const qs_view *ins[2] = {&in[0], &in[1]};
    const void *data[2] = {in[0].data, in[1].data};
    size_t esize[2] = {qs_dtype_size(in[0].dtype), qs_dtype_size(in[1].dtype)};
    qs_bcast b;
    (void)n;
    qs_bcast_init(&b, 2, ins, &out[0]);
    qs_bcast_run(&b, data, esize, out[0].data, esize[0], qs_pow_row(in[0].dtype, in[1].dtype),
                 ctx);
    return QS_OK;
}

const qs_op qs_op_pow = {
    .type = "Pow",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_pow_init,
    .infer = qs_pow_infer,
    .run = qs_pow_run,
};
