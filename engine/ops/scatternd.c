/* ScatterND: a copy of data with slices at index tuples replaced (or combined, opsets 16/18) by
 * updates. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef enum {
    QS_SCATTER_NONE = 0,
    QS_SCATTER_ADD,
    QS_SCATTER_MUL,
    QS_SCATTER_MAX,
    QS_SCATTER_MIN,
} qs_scatter_reduction;

typedef struct {
    qs_scatter_reduction reduction;
} qs_scatternd_params;

/* dst[i] = dst[i] (op) src[i] over one slice. Integers wrap around in uint64_t. */
typedef void (*qs_scatter_fn)(void *dst, const void *src, size_t n);

#define QS_SCATTER_FN(NAME, T, EXPR)                                                             \
    static void NAME(void *vd, const void *vs, size_t n) {                                      \
        T *d = vd;                                                                               \
        const T *s = vs;                                                                         \
        for (size_t i = 0; i < n; i++) {                                                         \
            T x = d[i], y = s[i];                                                                \
            d[i] = (T)(EXPR);                                                                    \
        }                                                                                        \
    }
#define QS_SCATTER_MINMAX(T, S)                                                                  \
    QS_SCATTER_FN(qs_scatter_max_##S, T, y > x ? y : x)                                          \
    QS_SCATTER_FN(qs_scatter_min_##S, T, y < x ? y : x)
#define QS_SCATTER_FLOAT(E, T, S)                                                                \
    QS_SCATTER_FN(qs_scatter_add_##S, T, x + y)                                                  \
    QS_SCATTER_FN(qs_scatter_mul_##S, T, x * y)                                                  \
    QS_SCATTER_MINMAX(T, S)
#define QS_SCATTER_INT(E, T, S)                                                                  \
    QS_SCATTER_FN(qs_scatter_add_##S, T, (uint64_t)x + (uint64_t)y)                              \
    QS_SCATTER_FN(qs_scatter_mul_##S, T, (uint64_t)x * (uint64_t)y)                              \
    QS_SCATTER_MINMAX(T, S)
QS_FOREACH_FLOAT_DTYPE(QS_SCATTER_FLOAT)
QS_FOREACH_INT_DTYPE(QS_SCATTER_INT)

/* The combining loop of a reduction for a type, NULL for none or an unsupported type. */
static qs_scatter_fn qs_scatter_reduce_fn(qs_scatter_reduction r, qs_dtype dtype) {
#define QS_SCATTER_CASE(E, T, S)                                                                 \
    case E:                                                                                      \
        switch (r) {                                                                             \
        case QS_SCATTER_ADD: return qs_scatter_add_##S;                                          \
        case QS_SCATTER_MUL: return qs_scatter_mul_##S;                                          \
        case QS_SCATTER_MAX: return qs_scatter_max_##S;                                          \
        case QS_SCATTER_MIN: return qs_scatter_min_##S;                                          \
        case QS_SCATTER_NONE: return NULL;                                                       \
        }                                                                                        \
        break;
    switch (dtype) {
        QS_FOREACH_NUMERIC_DTYPE(QS_SCATTER_CASE)
    default: break;
    }
#undef QS_SCATTER_CASE
    return NULL;
}

static qs_status qs_scatternd_init(const qs_graph *g, qs_node *n, qs_error *err) {
    /* add and mul came with opset 16, max and min with 18; an older model that names one gets
     * it rather than a refusal of a well-defined operation */
    static const struct {
        const char *name;
        qs_scatter_reduction r;
    } names[] = {
        {"none", QS_SCATTER_NONE}, {"add", QS_SCATTER_ADD}, {"mul", QS_SCATTER_MUL},
        {"max", QS_SCATTER_MAX},   {"min", QS_SCATTER_MIN},
    };
    const char *s = qs_node_attr_string(n, "reduction", "none");
    (void)g;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) != 0)
            continue;
        qs_scatternd_params *p = calloc(1, sizeof(*p));
        if (p == NULL)
            return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        p->reduction = names[i].r;
        n->params = p;
        return QS_OK;
    }
    return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "reduction \"%s\" is not valid", s);
}

/* Check index tuple values against data's dims; false on the first out of range. */
static bool qs_scatternd_indices_ok(const qs_view *data, const qs_view *idx, size_t *bad) {
    size_t k = (size_t)idx->dims[idx->rank - 1], count = qs_view_numel(idx);
    for (size_t i = 0; i < count; i++) {
        int64_t v = qs_view_get_int(idx, i), len = data->dims[k ? i % k : 0];
        if (v < -len || v >= len) {
            *bad = i;
            return false;
        }
    }
    return true;
}

static qs_status qs_scatternd_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    const qs_scatternd_params *p = n->params;
    const qs_view *data = &in[0], *idx = &in[1], *upd = &in[2];
    for (int32_t i = 0; i < 3; i++) {
        qs_status st = qs_op_need_plain(n, in, i, err);
        if (st != QS_OK)
            return st;
    }
    if (qs_dtype_size(data->dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(data->dtype));
    if (upd->dtype != data->dtype)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "updates are %s, data is %s",
                             qs_dtype_name(upd->dtype), qs_dtype_name(data->dtype));
    if (p->reduction != QS_SCATTER_NONE && qs_scatter_reduce_fn(p->reduction, data->dtype) == NULL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "reduction on type %s is not supported",
                             qs_dtype_name(data->dtype));
    if (idx->dtype != QS_DTYPE_INT64 && idx->dtype != QS_DTYPE_INT32)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "indices must be int64 or int32");
    if (data->rank < 1 || idx->rank < 1)
        return qs_node_error(err, QS_ERR_SHAPE, n, "data and indices need rank >= 1");
    int64_t k = idx->dims[idx->rank - 1];
    int32_t q = idx->rank;
    if (k < 0 || k > data->rank)
        return qs_node_error(err, QS_ERR_SHAPE, n,
                             "index tuples of %lld values do not fit data of rank %d",
                             (long long)k, (int)data->rank);
    /* updates: indices.shape[:-1] followed by data.shape[k:] */
    bool ok = upd->rank == q - 1 + data->rank - (int32_t)k;
    for (int32_t d = 0; ok && d < q - 1; d++)
        ok = upd->dims[d] == idx->dims[d];
    for (int32_t d = (int32_t)k; ok && d < data->rank; d++)
        ok = upd->dims[q - 1 + d - (int32_t)k] == data->dims[d];
    if (!ok)
        return qs_node_error(err, QS_ERR_SHAPE, n,
                             "updates shape is not indices.shape[:-1] + data.shape[k:]");
    size_t bad;
    if (idx->data != NULL && !qs_scatternd_indices_ok(data, idx, &bad))
        return qs_node_error(err, QS_ERR_SHAPE, n, "index %lld (element %zu) is out of range",
                             (long long)qs_view_get_int(idx, bad), bad);
    qs_view_copy_shape(&out[0], data);
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_scatternd_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    const qs_scatternd_params *p = n->params;
    const qs_view *data = &in[0], *idx = &in[1], *upd = &in[2];
    size_t es = qs_dtype_size(data->dtype), bad;
    (void)ctx;
    if (!qs_scatternd_indices_ok(data, idx, &bad))
        return QS_ERR_INVALID_ARGUMENT;
    if (out[0].data != data->data)
        memcpy(out[0].data, data->data, qs_view_numel(data) * es);
    int32_t k = (int32_t)idx->dims[idx->rank - 1];
    size_t slice = qs_dims_prod(data->dims, k, data->rank);
    size_t tuples = qs_dims_prod(idx->dims, 0, idx->rank - 1);
    qs_scatter_fn fn = qs_scatter_reduce_fn(p->reduction, data->dtype);
    char *y = out[0].data;
    const char *u = upd->data;
    /* In order, so that with reduction none the last of duplicate indices wins, as in the
     * reference. */
    for (size_t t = 0; t < tuples; t++) {
        size_t off = 0;
        for (int32_t d = 0; d < k; d++) {
            int64_t v = qs_view_get_int(idx, t * (size_t)k + (size_t)d);
            if (v < 0)
                v += data->dims[d];
            off = off * (size_t)data->dims[d] + (size_t)v;
        }
        off *= slice;
        if (fn != NULL)
            fn(y + off * es, u + t * slice * es, slice);
        else
            memcpy(y + off * es, u + t * slice * es, slice * es);
    }
    return QS_OK;
}

const qs_op qs_op_scatter_nd = {
    .type = "ScatterND",
    .domain = "",
    .min_inputs = 3,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_scatternd_init,
    .infer = qs_scatternd_infer,
    .run = qs_scatternd_run,
};
