/* Add, Sub, Mul, Div, Mod and PRelu: elementwise arithmetic with numpy broadcasting, float and
 * int. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

/* QS_BIN_MOD is Mod with fmod=0 (Python's %: the sign of the divisor), QS_BIN_FMOD fmod=1 (C's
 * fmod: the sign of the dividend). */
typedef enum {
    QS_BIN_ADD = 0,
    QS_BIN_SUB,
    QS_BIN_MUL,
    QS_BIN_DIV,
    QS_BIN_MOD,
    QS_BIN_FMOD,
    QS_BIN_PRELU
} qs_bin_kind;

/* Resolved once at init. Before opset 7, broadcast=1 with `axis` lines B up with A's dims from
 * axis on. */
typedef struct {
    qs_bin_kind kind;
    bool legacy_axis;
    int64_t axis;
    bool legacy_slope; /* PRelu before opset 7: a 1-D slope runs along the channels */
} qs_binary_params;

/* Python's % on floats (numpy.mod): fmod moved into the divisor's sign; a zero remainder takes
 * the divisor's sign too. */
static inline float qs_pymod_f32(float x, float y) {
    float r = fmodf(x, y);
    if (r == 0.0f)
        return copysignf(0.0f, y);
    return (r < 0.0f) != (y < 0.0f) ? r + y : r;
}
static inline double qs_pymod_f64(double x, double y) {
    double r = fmod(x, y);
    if (r == 0.0)
        return copysign(0.0, y);
    return (r < 0.0) != (y < 0.0) ? r + y : r;
}
/* Every signed type widened to int64_t. */
static inline int64_t qs_pymod_int(int64_t x, int64_t y) {
    if (y == 0 || y == -1)
        return 0;
    int64_t r = x % y;
    return r != 0 && (r < 0) != (y < 0) ? r + y : r;
}

/* One row loop per (operation, type); the three cases let the compiler vectorize each. */
#define QS_BIN_ROW(NAME, T, EXPR)                                                                \
    static void NAME(const void *const *ins, const int *unit, void *vo, size_t n) {             \
        const T *a = ins[0], *b = ins[1];                                                        \
        T *o = vo;                                                                               \
        if (unit[0] && unit[1]) {                                                                \
            for (size_t i = 0; i < n; i++) {                                                     \
                T x = a[i], y = b[i];                                                            \
                o[i] = (T)(EXPR);                                                                \
            }                                                                                    \
        } else if (unit[0]) {                                                                    \
            T y = b[0];                                                                          \
            for (size_t i = 0; i < n; i++) {                                                     \
                T x = a[i];                                                                      \
                o[i] = (T)(EXPR);                                                                \
            }                                                                                    \
        } else if (unit[1]) {                                                                    \
            T x = a[0];                                                                          \
            for (size_t i = 0; i < n; i++) {                                                     \
                T y = b[i];                                                                      \
                o[i] = (T)(EXPR);                                                                \
            }                                                                                    \
        } else {                                                                                 \
            T x = a[0], y = b[0];                                                                \
            T v = (T)(EXPR);                                                                     \
            for (size_t i = 0; i < n; i++)                                                       \
                o[i] = v;                                                                        \
        }                                                                                        \
    }

/* Floats: IEEE semantics. Integers: wrap-around in uint64_t (signed overflow is undefined);
 * division by zero gives 0 and INT_MIN / -1 wraps instead of trapping; a remainder by 0 or -1 is
 * 0 (C's % traps on INT_MIN % -1). Mod moves a remainder whose sign differs from the divisor's
 * into it by adding the divisor, which cannot overflow since |x % y| < |y|. */
#define QS_BIN_FLOAT(E, T, S)                                                                    \
    QS_BIN_ROW(qs_add_##S, T, x + y)                                                             \
    QS_BIN_ROW(qs_sub_##S, T, x - y)                                                             \
    QS_BIN_ROW(qs_mul_##S, T, x * y)                                                             \
    QS_BIN_ROW(qs_div_##S, T, x / y)                                                             \
    QS_BIN_ROW(qs_mod_##S, T, qs_pymod_##S(x, y))                                                \
    QS_BIN_ROW(qs_fmod_##S, T, _Generic(x, float: fmodf, default: fmod)(x, y))                   \
    QS_BIN_ROW(qs_prelu_##S, T, x < 0 ? x * y : x)
#define QS_BIN_INT_COMMON(T, S)                                                                  \
    QS_BIN_ROW(qs_add_##S, T, (uint64_t)x + (uint64_t)y)                                         \
    QS_BIN_ROW(qs_sub_##S, T, (uint64_t)x - (uint64_t)y)                                         \
    QS_BIN_ROW(qs_mul_##S, T, (uint64_t)x * (uint64_t)y)
#define QS_BIN_SINT(E, T, S)                                                                     \
    QS_BIN_INT_COMMON(T, S)                                                                      \
    QS_BIN_ROW(qs_div_##S, T, y == 0 ? 0 : (y == -1 ? (T)(0 - (uint64_t)x) : x / y))             \
    QS_BIN_ROW(qs_mod_##S, T, qs_pymod_int(x, y))                                                \
    QS_BIN_ROW(qs_fmod_##S, T, y == 0 || y == -1 ? 0 : x % y)                                    \
    QS_BIN_ROW(qs_prelu_##S, T, x < 0 ? (uint64_t)x * (uint64_t)y : (uint64_t)x)
#define QS_BIN_UINT(E, T, S)                                                                     \
    QS_BIN_INT_COMMON(T, S)                                                                      \
    QS_BIN_ROW(qs_div_##S, T, y == 0 ? 0 : x / y)                                                \
    QS_BIN_ROW(qs_mod_##S, T, y == 0 ? 0 : x % y)                                                \
    QS_BIN_ROW(qs_fmod_##S, T, y == 0 ? 0 : x % y)                                               \
    QS_BIN_ROW(qs_prelu_##S, T, ((void)y, x))

QS_FOREACH_FLOAT_DTYPE(QS_BIN_FLOAT)
QS_FOREACH_SINT_DTYPE(QS_BIN_SINT)
QS_FOREACH_UINT_DTYPE(QS_BIN_UINT)

static qs_bcast_row_fn qs_binary_row(qs_bin_kind kind, qs_dtype dtype) {
#define QS_BIN_CASE(E, T, S)                                                                     \
    case E:                                                                                      \
        switch (kind) {                                                                          \
        case QS_BIN_ADD: return qs_add_##S;                                                      \
        case QS_BIN_SUB: return qs_sub_##S;                                                      \
        case QS_BIN_MUL: return qs_mul_##S;                                                      \
        case QS_BIN_DIV: return qs_div_##S;                                                      \
        case QS_BIN_MOD: return qs_mod_##S;                                                      \
        case QS_BIN_FMOD: return qs_fmod_##S;                                                    \
        case QS_BIN_PRELU: return qs_prelu_##S;                                                  \
        }                                                                                        \
        break;
    switch (dtype) {
        QS_FOREACH_NUMERIC_DTYPE(QS_BIN_CASE)
    default: break;
    }
#undef QS_BIN_CASE
    return NULL;
}

/* The operation of one of the op types registered below; Mod is QS_BIN_MOD until its fmod is
 * read. */
static qs_bin_kind qs_binary_kind_of(const char *type) {
    if (strcmp(type, "Add") == 0)
        return QS_BIN_ADD;
    if (strcmp(type, "Sub") == 0)
        return QS_BIN_SUB;
    if (strcmp(type, "Mul") == 0)
        return QS_BIN_MUL;
    if (strcmp(type, "Div") == 0)
        return QS_BIN_DIV;
    if (strcmp(type, "Mod") == 0)
        return QS_BIN_MOD;
    return QS_BIN_PRELU;
}

static qs_status qs_binary_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_binary_params *p = calloc(1, sizeof(*p));
    int64_t bcast = 0;
    qs_status st = QS_OK;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->kind = qs_binary_kind_of(n->op_type);
    p->legacy_slope = g->opset < 7 && p->kind == QS_BIN_PRELU;
    if (p->kind == QS_BIN_MOD) {
        int64_t fmod_attr = 0;
        st = qs_attr_get_int(n, "fmod", 0, &fmod_attr, err);
        if (st == QS_OK && fmod_attr != 0 && fmod_attr != 1)
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "fmod must be 0 or 1, not %lld",
                               (long long)fmod_attr);
        if (fmod_attr == 1)
            p->kind = QS_BIN_FMOD;
    } else if (g->opset < 7) {
        st = qs_attr_get_int(n, "broadcast", 0, &bcast, err);
        if (st == QS_OK && bcast && qs_node_attr(n, "axis") != NULL) {
            p->legacy_axis = true;
            st = qs_attr_get_int(n, "axis", 0, &p->axis, err);
        }
    }
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* B as it broadcasts: with a legacy axis, trailing unit dims make numpy rules line it up. */
static qs_status qs_binary_b_view(const qs_node *n, const qs_view *in, qs_view *b, qs_error *err) {
    const qs_binary_params *p = n->params;
    *b = in[1];
    if (p != NULL && p->legacy_slope && b->rank == 1 && in[0].rank > 2 &&
        b->dims[0] == in[0].dims[1]) {
        while (b->rank < in[0].rank - 1)
            b->dims[b->rank++] = 1;
        return QS_OK;
    }
    if (p == NULL || !p->legacy_axis)
        return QS_OK;
    int64_t axis = p->axis < 0 ? p->axis + in[0].rank : p->axis;
    if (axis < 0 || axis + b->rank > in[0].rank)
        return qs_node_error(err, QS_ERR_SHAPE, n, "axis %lld does not fit B in A",
                             (long long)p->axis);
    while (b->rank < in[0].rank - axis)
        b->dims[b->rank++] = 1;
    return QS_OK;
}

/* Output layout: NHWC only when every input that is more than a single element agrees. */
static qs_status qs_binary_layout(const qs_node *n, const qs_view *a, const qs_view *b,
                                  qs_layout *layout, qs_error *err) {
    bool a_scalar = qs_view_numel(a) == 1, b_scalar = qs_view_numel(b) == 1;
    if (a->layout == b->layout || b_scalar) {
        *layout = a->layout;
        return QS_OK;
    }
    if (a_scalar) {
        *layout = b->layout;
        return QS_OK;
    }
    return qs_node_error(err, QS_ERR_INTERNAL, n, "inputs have different layouts");
}

static qs_status qs_binary_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    qs_bin_kind kind = ((const qs_binary_params *)n->params)->kind;
    if (in[0].dtype != in[1].dtype)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "inputs have types %s and %s",
                             qs_dtype_name(in[0].dtype), qs_dtype_name(in[1].dtype));
    if (qs_binary_row(kind, in[0].dtype) == NULL ||
        (kind == QS_BIN_PRELU && !qs_dtype_is_float(in[0].dtype) &&
         !qs_dtype_is_int(in[0].dtype)))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view shape = {0}, b;
    qs_status st = qs_binary_b_view(n, in, &b, err);
    if (st != QS_OK)
        return st;
    if (!qs_broadcast_shape(&in[0], &b, &shape.rank, shape.dims))
        return qs_node_error(err, QS_ERR_SHAPE, n, "inputs cannot be broadcast together");
    if (kind == QS_BIN_PRELU) {
        /* slope broadcasts to X, never the other way */
        bool same = shape.rank == in[0].rank;
        for (int32_t i = 0; same && i < shape.rank; i++)
            same = shape.dims[i] == in[0].dims[i];
        if (!same)
            return qs_node_error(err, QS_ERR_SHAPE, n, "slope does not broadcast to X");
    }
    qs_layout layout = QS_LAYOUT_PLAIN;
    st = qs_binary_layout(n, &in[0], &in[1], &layout, err);
    if (st != QS_OK)
        return st;
    out[0].dtype = in[0].dtype;
    out[0].rank = shape.rank;
    for (int32_t i = 0; i < shape.rank; i++)
        out[0].dims[i] = shape.dims[i];
    out[0].layout = layout;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_binary_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    qs_view bv;
    if (qs_binary_b_view(n, in, &bv, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    const qs_view *ins[2] = {&in[0], &bv};
    const void *data[2] = {in[0].data, in[1].data};
    size_t es = qs_dtype_size(in[0].dtype);
    size_t esize[2] = {es, es};
    qs_bcast b;
    qs_bcast_init(&b, 2, ins, &out[0]);
    const qs_binary_params *p = n->params;
    qs_bcast_run(&b, data, esize, out[0].data, es, qs_binary_row(p->kind, in[0].dtype), ctx);
    return QS_OK;
}

#define QS_BINARY_OP(NAME, TYPE)                                                                 \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 2,                                                                         \
        .max_inputs = 2,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_binary_init,                                                                  \
        .infer = qs_binary_infer,                                                                \
        .run = qs_binary_run,                                                                    \
    };

QS_BINARY_OP(qs_op_add, "Add")
QS_BINARY_OP(qs_op_sub, "Sub")
QS_BINARY_OP(qs_op_mul, "Mul")
QS_BINARY_OP(qs_op_div, "Div")
QS_BINARY_OP(qs_op_mod, "Mod")
QS_BINARY_OP(qs_op_prelu, "PRelu")
