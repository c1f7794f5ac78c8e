/* Pad: constant, reflect and edge modes; pads as attribute before opset 11, as an input from 11. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef enum { QS_PAD_CONSTANT = 0, QS_PAD_REFLECT, QS_PAD_EDGE } qs_pad_mode;

typedef struct {
    qs_pad_mode mode;
    bool pads_from_input;          /* opset >= 11 */
    size_t n_pads;
    int64_t pads[2 * QS_MAX_RANK]; /* attribute form */
    float value;                   /* attribute form */
} qs_pad_params;

static qs_status qs_pad_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_pad_params *p = calloc(1, sizeof(*p));
    qs_status st = QS_OK;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    const char *mode = qs_node_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") == 0)
        p->mode = QS_PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = QS_PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = QS_PAD_EDGE;
    else
        st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "mode \"%s\" is not supported", mode);
    p->pads_from_input = g->opset >= 11;
    if (st == QS_OK && !p->pads_from_input) {
        st = qs_attr_get_ints(n, "pads", p->pads, 2 * QS_MAX_RANK, &p->n_pads, err);
        if (st == QS_OK && p->n_pads == 0)
            st = qs_attr_get_ints(n, "paddings", p->pads, 2 * QS_MAX_RANK, &p->n_pads, err);
        if (st == QS_OK)
            st = qs_attr_get_float(n, "value", 0.0f, &p->value, err);
    }
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* Full begin/end pads per dim (pads[d], pads[d + rank]) from the attribute or inputs 1 and 3. */
static qs_status qs_pad_resolve(const qs_node *n, const qs_view *in, int64_t *pads,
                                qs_error *err) {
    const qs_pad_params *p = n->params;
    int32_t r = in[0].rank;
    int64_t given[2 * QS_MAX_RANK], axes[QS_MAX_RANK];
    size_t n_given, n_axes;
    qs_status st;
    memset(pads, 0, sizeof(int64_t) * 2 * QS_MAX_RANK);
    if (!p->pads_from_input) {
        if (p->n_pads != 2 * (size_t)r)
            return qs_node_error(err, QS_ERR_SHAPE, n, "pads has %zu values for rank %d",
                                 p->n_pads, (int)r);
        memcpy(pads, p->pads, p->n_pads * sizeof(int64_t));
        return QS_OK;
    }
    st = qs_input_ints(n, in, 1, "pads", given, 2 * QS_MAX_RANK, &n_given, err);
    if (st != QS_OK)
        return st;
    if (qs_op_has_input(n, in, 3)) {
        st = qs_input_ints(n, in, 3, "axes", axes, QS_MAX_RANK, &n_axes, err);
        if (st != QS_OK)
            return st;
    } else {
        n_axes = (size_t)r;
        for (int32_t i = 0; i < r; i++)
            axes[i] = i;
    }
    if (n_given != 2 * n_axes)
        return qs_node_error(err, QS_ERR_SHAPE, n, "pads has %zu values for %zu axes", n_given,
                             n_axes);
    for (size_t i = 0; i < n_axes; i++) {
        int32_t a;
        if (!qs_axis_normalize(axes[i], r, &a))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis %lld is out of range",
                                 (long long)axes[i]);
        pads[a] = given[i];
        pads[a + r] = given[i + n_axes];
    }
    return QS_OK;
}

static qs_status qs_pad_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    const qs_pad_params *p = n->params;
    int64_t pads[2 * QS_MAX_RANK];
    int32_t r = in[0].rank;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_pad_resolve(n, in, pads, err);
    if (st != QS_OK)
        return st;
    if (!qs_dtype_is_numeric(in[0].dtype) && in[0].dtype != QS_DTYPE_BOOL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (qs_op_has_input(n, in, 2) && p->pads_from_input &&
        (in[2].dtype != in[0].dtype || qs_view_numel(&in[2]) != 1))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                             "constant_value must be one element of the data type");
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t d = 0; d < r; d++) {
        int64_t lim = (int64_t)1 << 40;
        if (pads[d] < -lim || pads[d] > lim || pads[d + r] < -lim || pads[d + r] > lim)
            return qs_node_error(err, QS_ERR_SHAPE, n, "pad is out of range");
        out[0].dims[d] = in[0].dims[d] + pads[d] + pads[d + r];
        if (out[0].dims[d] < 0)
            return qs_node_error(err, QS_ERR_SHAPE, n, "dim %d would be negative", (int)d);
        if (p->mode != QS_PAD_CONSTANT && in[0].dims[d] == 0 && out[0].dims[d] > 0)
            return qs_node_error(err, QS_ERR_SHAPE, n, "cannot %s-pad an empty dim",
                                 p->mode == QS_PAD_EDGE ? "edge" : "reflect");
    }
    return qs_op_check_output(n, &out[0], err);
}

static size_t qs_pad_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                             int32_t n_threads) {
    size_t total = 0;
    (void)n;
    (void)in;
    (void)n_threads;
    for (int32_t d = 0; d < out[0].rank; d++)
        total += (size_t)out[0].dims[d];
    return (total + 1) * sizeof(int64_t);
}

/* Input index for output index o of a dim of size len with begin pad pb; -1 for the constant. */
static int64_t qs_pad_map(qs_pad_mode mode, int64_t o, int64_t pb, int64_t len) {
    int64_t i = o - pb;
    if (i >= 0 && i < len)
        return i;
    if (mode == QS_PAD_CONSTANT)
        return -1;
    if (mode == QS_PAD_EDGE)
        return i < 0 ? 0 : len - 1;
    if (len == 1)
        return 0;
    /* reflect without repeating the edge: period 2 * (len - 1) */
    int64_t period = 2 * (len - 1);
    int64_t m = i % period;
    if (m < 0)
        m += period;
    return m < len ? m : period - m;
}

#define QS_PAD_ROW(T)                                                                            \
    {                                                                                            \
        const T *src = (const T *)(const void *)x;                                               \
        T *dst = (T *)(void *)y;                                                                 \
        T c;                                                                                     \
        memcpy(&c, cval, sizeof(T));                                                             \
        for (size_t i = 0; i < inner; i++)                                                       \
            dst[i] = map[i] < 0 ? c : src[map[i]];                                               \
    }

static qs_status qs_pad_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    const qs_pad_params *p = n->params;
    int64_t pads[2 * QS_MAX_RANK];
    int64_t *maps[QS_MAX_RANK];
    int32_t r = in[0].rank;
    size_t es = qs_dtype_size(in[0].dtype);
    uint8_t cval[8] = {0};
    if (qs_pad_resolve(n, in, pads, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    if (qs_view_numel(&out[0]) == 0)
        return QS_OK;
    if (p->pads_from_input && qs_op_has_input(n, in, 2)) {
        memcpy(cval, in[2].data, es);
    } else if (!p->pads_from_input) {
        /* the attribute is a float: store it in the data type */
        double v = (double)p->value;
        switch (in[0].dtype) {
        case QS_DTYPE_FLOAT32: { float f = p->value; memcpy(cval, &f, 4); break; }
        case QS_DTYPE_FLOAT64: memcpy(cval, &v, 8); break;
        default: {
            int64_t iv = (v > -9.2e18 && v < 9.2e18) ? (int64_t)v : 0;
            memcpy(cval, &iv, es); /* little endian: the low bytes */
            break;
        }
        }
    }
    if (r == 0) {
        memcpy(out[0].data, in[0].data, es);
        return QS_OK;
    }
    int64_t *next = ctx->scratch;
    for (int32_t d = 0; d < r; d++) {
        maps[d] = next;
        for (int64_t o = 0; o < out[0].dims[d]; o++)
            maps[d][o] = qs_pad_map(p->mode, o, pads[d], in[0].dims[d]);
        next += out[0].dims[d];
    }
    size_t inner = (size_t)out[0].dims[r - 1];
    size_t rows = qs_view_numel(&out[0]) / inner;
    for (size_t row = 0; row < rows; row++) {
        size_t rem = row, off = 0, stride = (size_t)in[0].dims[r - 1];
        bool constant_row = false;
        for (int32_t d = r - 2; d >= 0; d--) {
            int64_t o = (int64_t)(rem % (size_t)out[0].dims[d]);
            rem /= (size_t)out[0].dims[d];
            int64_t i = maps[d][o];
            if (i < 0)
                constant_row = true;
            else
                off += (size_t)i * stride;
            stride *= (size_t)in[0].dims[d];
        }
        const char *x = (const char *)in[0].data + off * es;
        char *y = (char *)out[0].data + row * inner * es;
        const int64_t *map = maps[r - 1];
        if (constant_row) {
            for (size_t i = 0; i < inner; i++)
                memcpy(y + i * es, cval, es);
            continue;
        }
        switch (es) {
        case 1: QS_PAD_ROW(uint8_t) break;
        case 2: QS_PAD_ROW(uint16_t) break;
        case 4: QS_PAD_ROW(uint32_t) break;
        default: QS_PAD_ROW(uint64_t) break;
        }
    }
    return QS_OK;
}

const qs_op qs_op_pad = {
    .type = "Pad",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 4,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_pad_init,
    .infer = qs_pad_infer,
    .scratch_bytes = qs_pad_scratch,
    .run = qs_pad_run,
};
