/* Slice: starts/ends/axes as attributes before opset 10, as inputs (plus steps) from 10. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    bool from_inputs; /* opset >= 10 */
    size_t n_starts, n_ends, n_axes;
    int64_t starts[QS_MAX_RANK], ends[QS_MAX_RANK], axes[QS_MAX_RANK];
} qs_slice_params;

/* Per dim of the input: first element and signed step; out dims. */
typedef struct {
    int64_t start[QS_MAX_RANK], step[QS_MAX_RANK], len[QS_MAX_RANK];
} qs_slice_geom;

static qs_status qs_slice_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_slice_params *p = calloc(1, sizeof(*p));
    qs_status st = QS_OK;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->from_inputs = g->opset >= 10;
    if (!p->from_inputs) {
        if ((st = qs_attr_get_ints(n, "starts", p->starts, QS_MAX_RANK, &p->n_starts, err)) ==
                QS_OK &&
            (st = qs_attr_get_ints(n, "ends", p->ends, QS_MAX_RANK, &p->n_ends, err)) == QS_OK)
            st = qs_attr_get_ints(n, "axes", p->axes, QS_MAX_RANK, &p->n_axes, err);
        if (st == QS_OK && (p->n_starts == 0 || p->n_starts != p->n_ends))
            st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "starts and ends do not match");
    } else if (n->n_inputs < 3) {
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "starts and ends inputs are missing");
    }
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_slice_resolve(const qs_node *n, const qs_view *in, qs_slice_geom *geo,
                                  qs_error *err) {
    const qs_slice_params *p = n->params;
    int64_t starts[QS_MAX_RANK], ends[QS_MAX_RANK], axes[QS_MAX_RANK], steps[QS_MAX_RANK];
    size_t ns, ne, na, nt;
    bool seen[QS_MAX_RANK] = {false};
    int32_t r = in[0].rank;
    qs_status st;
    if (p->from_inputs) {
        if ((st = qs_input_ints(n, in, 1, "starts", starts, QS_MAX_RANK, &ns, err)) != QS_OK ||
            (st = qs_input_ints(n, in, 2, "ends", ends, QS_MAX_RANK, &ne, err)) != QS_OK)
            return st;
        na = 0;
        nt = 0;
        if (qs_op_has_input(n, in, 3) &&
            (st = qs_input_ints(n, in, 3, "axes", axes, QS_MAX_RANK, &na, err)) != QS_OK)
            return st;
        if (qs_op_has_input(n, in, 4) &&
            (st = qs_input_ints(n, in, 4, "steps", steps, QS_MAX_RANK, &nt, err)) != QS_OK)
            return st;
        if ((qs_op_has_input(n, in, 3) && na != ns) || (qs_op_has_input(n, in, 4) && nt != ns))
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                 "starts, ends, axes and steps differ in length");
    } else {
        ns = p->n_starts;
        ne = p->n_ends;
        na = p->n_axes;
        nt = 0;
        memcpy(starts, p->starts, ns * sizeof(int64_t));
        memcpy(ends, p->ends, ne * sizeof(int64_t));
        memcpy(axes, p->axes, na * sizeof(int64_t));
    }
    if (ne != ns || (na != 0 && na != ns) || ns > (size_t)r)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "starts/ends/axes do not match");
    for (int32_t d = 0; d < r; d++) {
        geo->start[d] = 0;
        geo->step[d] = 1;
        geo->len[d] = in[0].dims[d];
    }
    for (size_t i = 0; i < ns; i++) {
        int32_t a;
        if (!qs_axis_normalize(na ? axes[i] : (int64_t)i, r, &a) || seen[a])
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis is out of range or repeated");
        seen[a] = true;
        int64_t dim = in[0].dims[a], s = starts[i], e = ends[i], t = nt ? steps[i] : 1;
        if (t == 0)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "step is 0");
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        if (t > 0) {
            s = s < 0 ? 0 : (s > dim ? dim : s);
            e = e < 0 ? 0 : (e > dim ? dim : e);
        } else {
            s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
            e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
        }
        int64_t len = 0;
        if (t > 0 && e > s)
            len = (e - s - 1) / t + 1;
        else if (t < 0 && s > e)
            len = (s - e - 1) / -t + 1;
        geo->start[a] = len > 0 ? s : 0;
        geo->step[a] = t;
        geo->len[a] = len;
    }
    return QS_OK;
}

static qs_status qs_slice_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    qs_slice_geom geo;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_slice_resolve(n, in, &geo, err);
    if (st != QS_OK)
        return st;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t d = 0; d < in[0].rank; d++)
        out[0].dims[d] = geo.len[d];
    return qs_op_check_output(n, &out[0], err);
}

#define QS_SLICE_ROW(T)                                                                          \
    {                                                                                            \
        const T *src = (const T *)(const void *)(x + base * (int64_t)es);                        \
        T *dst = (T *)(void *)y;                                                                 \
        for (int64_t i = 0; i < inner; i++)                                                      \
            dst[i] = src[i * step];                                                              \
    }

static qs_status qs_slice_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    qs_slice_geom geo;
    int64_t stride[QS_MAX_RANK];
    int32_t r = in[0].rank;
    size_t es = qs_dtype_size(in[0].dtype);
    (void)ctx;
    if (qs_slice_resolve(n, in, &geo, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    size_t total = qs_view_numel(&out[0]);
    if (total == 0)
        return QS_OK;
    if (r == 0) {
        memcpy(out[0].data, in[0].data, es);
        return QS_OK;
    }
    int64_t s = 1;
    for (int32_t d = r - 1; d >= 0; d--) {
        stride[d] = s;
        s *= in[0].dims[d];
    }
    int64_t inner = geo.len[r - 1], step = geo.step[r - 1];
    size_t rows = total / (size_t)inner;
    const char *x = in[0].data;
    for (size_t row = 0; row < rows; row++) {
        size_t rem = row;
        int64_t base = geo.start[r - 1] * stride[r - 1];
        for (int32_t d = r - 2; d >= 0; d--) {
            int64_t o = (int64_t)(rem % (size_t)geo.len[d]);
            rem /= (size_t)geo.len[d];
            base += (geo.start[d] + o * geo.step[d]) * stride[d];
        }
        char *y = (char *)out[0].data + row * (size_t)inner * es;
        switch (es) {
        case 1: QS_SLICE_ROW(uint8_t) break;
        case 2: QS_SLICE_ROW(uint16_t) break;
        case 4: QS_SLICE_ROW(uint32_t) break;
        default: QS_SLICE_ROW(uint64_t) break;
        }
    }
    return QS_OK;
}

const qs_op qs_op_slice = {
    .type = "Slice",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 5,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_slice_init,
    .infer = qs_slice_infer,
    .run = qs_slice_run,
};
