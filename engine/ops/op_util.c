/* Helpers shared by the operators: shapes, attribute parsing, broadcasting, window geometry. */
#include "ops/op_util.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

/* Attribute values that size loops are bounded so that window arithmetic cannot overflow. */
#define QS_WINDOW_LIMIT ((int64_t)1 << 30)

size_t qs_view_numel(const qs_view *v) {
    size_t n = 1;
    if (v->rank < 0)
        return 0;
    for (int32_t i = 0; i < v->rank; i++) {
        if (v->dims[i] < 0)
            return 0;
        n *= (size_t)v->dims[i];
    }
    return n;
}

void qs_view_copy_shape(qs_view *dst, const qs_view *src) {
    dst->dtype = src->dtype;
    dst->rank = src->rank;
    for (int32_t i = 0; i < QS_MAX_RANK; i++)
        dst->dims[i] = i < src->rank ? src->dims[i] : 0;
    dst->layout = src->layout;
}

bool qs_broadcast_shape_n(int32_t n_in, const qs_view *const *ins, int32_t *rank, int64_t *dims) {
    int32_t r = 0;
    for (int32_t k = 0; k < n_in; k++) {
        if (ins[k]->rank < 0 || ins[k]->rank > QS_MAX_RANK)
            return false;
        if (ins[k]->rank > r)
            r = ins[k]->rank;
    }
    for (int32_t d = 0; d < r; d++) {
        int64_t size = 1;
        for (int32_t k = 0; k < n_in; k++) {
            int32_t pos = d - (r - ins[k]->rank);
            int64_t v = pos >= 0 ? ins[k]->dims[pos] : 1;
            if (v < 0)
                return false;
            if (v == 1)
                continue;
            if (size != 1 && size != v)
                return false;
            size = v;
        }
        dims[d] = size;
    }
    *rank = r;
    return true;
}

bool qs_broadcast_shape(const qs_view *a, const qs_view *b, int32_t *rank, int64_t *dims) {
    const qs_view *ins[2] = {a, b};
    return qs_broadcast_shape_n(2, ins, rank, dims);
}

int64_t qs_view_get_int(const qs_view *v, size_t i) {
    switch (v->dtype) {
    case QS_DTYPE_INT64: return ((const int64_t *)v->data)[i];
    case QS_DTYPE_INT32: return ((const int32_t *)v->data)[i];
    case QS_DTYPE_INT16: return ((const int16_t *)v->data)[i];
    case QS_DTYPE_INT8: return ((const int8_t *)v->data)[i];
    case QS_DTYPE_UINT8: return ((const uint8_t *)v->data)[i];
    case QS_DTYPE_BOOL: return ((const uint8_t *)v->data)[i] != 0;
    case QS_DTYPE_UINT16: return ((const uint16_t *)v->data)[i];
    case QS_DTYPE_UINT32: return ((const uint32_t *)v->data)[i];
    case QS_DTYPE_UINT64: {
        uint64_t u = ((const uint64_t *)v->data)[i];
        return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    case QS_DTYPE_FLOAT32: {
        float f = ((const float *)v->data)[i];
        if (!(f > -9.2e18f && f < 9.2e18f))
            return f > 0 ? INT64_MAX : (f < 0 ? INT64_MIN : 0);
        return (int64_t)f;
    }
    case QS_DTYPE_FLOAT64: {
        double f = ((const double *)v->data)[i];
        if (!(f > -9.2e18 && f < 9.2e18))
            return f > 0 ? INT64_MAX : (f < 0 ? INT64_MIN : 0);
        return (int64_t)f;
    }
    default: return 0;
    }
}

double qs_view_get_double(const qs_view *v, size_t i) {
    switch (v->dtype) {
    case QS_DTYPE_FLOAT32: return (double)((const float *)v->data)[i];
    case QS_DTYPE_FLOAT64: return ((const double *)v->data)[i];
    case QS_DTYPE_UINT64: return (double)((const uint64_t *)v->data)[i];
    default: return (double)qs_view_get_int(v, i);
    }
}

bool qs_op_has_input(const qs_node *n, const qs_view *in, int32_t i) {
    return i < n->n_inputs && n->inputs[i] >= 0 && in[i].rank >= 0 &&
           in[i].dtype != QS_DTYPE_UNDEFINED;
}

bool qs_dtype_is_float(qs_dtype t) { return t == QS_DTYPE_FLOAT32 || t == QS_DTYPE_FLOAT64; }

bool qs_dtype_is_int(qs_dtype t) {
    switch (t) {
    case QS_DTYPE_UINT8: case QS_DTYPE_INT8: case QS_DTYPE_UINT16: case QS_DTYPE_INT16:
    case QS_DTYPE_INT32: case QS_DTYPE_INT64: case QS_DTYPE_UINT32: case QS_DTYPE_UINT64:
        return true;
    default: return false;
    }
}

bool qs_dtype_is_numeric(qs_dtype t) { return qs_dtype_is_float(t) || qs_dtype_is_int(t); }

bool qs_dims_numel(int32_t rank, const int64_t *dims, size_t esize, size_t *out) {
    size_t n = 1;
    if (rank < 0 || rank > QS_MAX_RANK)
        return false;
    for (int32_t i = 0; i < rank; i++) {
        if (dims[i] < 0 || !qs_mul_size(n, (size_t)dims[i], &n))
            return false;
    }
    size_t bytes;
    if (!qs_mul_size(n, esize ? esize : 1, &bytes) || bytes > (size_t)INT64_MAX)
        return false;
    *out = n;
    return true;
}

size_t qs_dims_prod(const int64_t *dims, int32_t from, int32_t to) {
    size_t n = 1;
    for (int32_t i = from; i < to; i++)
        n *= (size_t)dims[i];
    return n;
}

bool qs_axis_normalize(int64_t axis, int32_t rank, int32_t *out) {
    if (axis < -(int64_t)rank || axis >= (int64_t)rank)
        return false;
    *out = (int32_t)(axis < 0 ? axis + rank : axis);
    return true;
}

qs_status qs_op_check_output(const qs_node *n, const qs_view *out, qs_error *err) {
    size_t numel;
    if (out->rank < 0 || out->rank > QS_MAX_RANK)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "output rank %d is over %d",
                             (int)out->rank, QS_MAX_RANK);
    if (!qs_dims_numel(out->rank, out->dims, qs_dtype_size(out->dtype), &numel))
        return qs_node_error(err, QS_ERR_SHAPE, n, "output shape is negative or too large");
    return QS_OK;
}

qs_status qs_op_need_const(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                           qs_error *err) {
    if (!qs_op_has_input(n, in, i))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "input %d (%s) is missing", (int)i,
                             what);
    if (in[i].data == NULL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                             "input %d (%s) must be a constant known at load time", (int)i, what);
    return QS_OK;
}

qs_status qs_op_need_plain(const qs_node *n, const qs_view *in, int32_t i, qs_error *err) {
    if (in[i].layout != QS_LAYOUT_PLAIN)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "input %d: NHWC layout is not handled",
                             (int)i);
    return QS_OK;
}

qs_status qs_input_ints(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                        int64_t *out, size_t max, size_t *count, qs_error *err) {
    qs_status st = qs_op_need_const(n, in, i, what, err);
    if (st != QS_OK)
        return st;
    if (!qs_dtype_is_int(in[i].dtype) || in[i].rank > 1)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                             "input %d (%s) must be a 1-D integer tensor", (int)i, what);
    size_t len = qs_view_numel(&in[i]);
    if (len > max)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input %d (%s) has %zu values, over %zu",
                             (int)i, what, len, max);
    for (size_t k = 0; k < len; k++)
        out[k] = qs_view_get_int(&in[i], k);
    *count = len;
    return QS_OK;
}

qs_status qs_attr_get_int(const qs_node *n, const char *name, int64_t def, int64_t *out,
                          qs_error *err) {
    const qs_attr *a = qs_node_attr(n, name);
    if (a == NULL) {
        *out = def;
        return QS_OK;
    }
    if (a->type != QS_ATTR_INT)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute %s must be an int", name);
    *out = a->i;
    return QS_OK;
}

qs_status qs_attr_get_float(const qs_node *n, const char *name, float def, float *out,
                            qs_error *err) {
    const qs_attr *a = qs_node_attr(n, name);
    if (a == NULL) {
        *out = def;
        return QS_OK;
    }
    if (a->type != QS_ATTR_FLOAT)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute %s must be a float",
                             name);
    *out = a->f;
    return QS_OK;
}

qs_status qs_attr_get_ints(const qs_node *n, const char *name, int64_t *out, size_t max,
                           size_t *count, qs_error *err) {
    const qs_attr *a = qs_node_attr(n, name);
    *count = 0;
    if (a == NULL)
        return QS_OK;
    if (a->type != QS_ATTR_INTS)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute %s must be ints", name);
    if (a->n > max)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "attribute %s has %zu values, over %zu",
                             name, a->n, max);
    for (size_t k = 0; k < a->n; k++)
        out[k] = a->ints[k];
    *count = a->n;
    return QS_OK;
}

/* ---- broadcasting ---- */

void qs_bcast_init(qs_bcast *b, int32_t n_in, const qs_view *const *ins, const qs_view *out) {
    int32_t r = out->rank;
    int64_t sizes[QS_BCAST_MAX_IN][QS_MAX_RANK];
    memset(b, 0, sizeof(*b));
    b->n_in = n_in;
    /* merged dims, outermost first; full[k][d]: input k spans merged dim d */
    bool full[QS_BCAST_MAX_IN][QS_MAX_RANK];
    int32_t m = 0;
    for (int32_t d = 0; d < r; d++) {
        int64_t od = out->dims[d];
        if (od == 1)
            continue;
        bool pat[QS_BCAST_MAX_IN];
        for (int32_t k = 0; k < n_in; k++) {
            int32_t pos = d - (r - ins[k]->rank);
            pat[k] = pos >= 0 && ins[k]->dims[pos] == od;
        }
        bool same = m > 0;
        for (int32_t k = 0; k < n_in && same; k++)
            same = pat[k] == full[k][m - 1];
        if (same) {
            b->dims[m - 1] *= od;
        } else {
            b->dims[m] = od;
            for (int32_t k = 0; k < n_in; k++)
                full[k][m] = pat[k];
            m++;
        }
    }
    if (m == 0) {
        b->dims[0] = 1;
        for (int32_t k = 0; k < n_in; k++)
            full[k][0] = true;
        m = 1;
    }
    b->rank = m;
    for (int32_t k = 0; k < n_in; k++) {
        int64_t stride = 1;
        for (int32_t d = m - 1; d >= 0; d--) {
            sizes[k][d] = full[k][d] ? b->dims[d] : 1;
            b->strides[k][d] = full[k][d] ? stride : 0;
            stride *= sizes[k][d];
        }
    }
}

size_t qs_bcast_inner(const qs_bcast *b) { return (size_t)b->dims[b->rank - 1]; }

size_t qs_bcast_rows(const qs_bcast *b) { return qs_dims_prod(b->dims, 0, b->rank - 1); }

void qs_bcast_row_offsets(const qs_bcast *b, size_t row, size_t *off) {
    for (int32_t k = 0; k < b->n_in; k++)
        off[k] = 0;
    for (int32_t d = b->rank - 2; d >= 0; d--) {
        size_t idx = row % (size_t)b->dims[d];
        row /= (size_t)b->dims[d];
        for (int32_t k = 0; k < b->n_in; k++)
            off[k] += idx * (size_t)b->strides[k][d];
    }
}

typedef struct {
    const qs_bcast *b;
    const void *const *ins;
    const size_t *in_esize;
    char *out;
    size_t out_esize;
    qs_bcast_row_fn fn;
} qs_bcast_job;

static void qs_bcast_rows_run(void *ctx, size_t begin, size_t end) {
    const qs_bcast_job *job = ctx;
    const qs_bcast *b = job->b;
    size_t inner = qs_bcast_inner(b);
    int unit[QS_BCAST_MAX_IN];
    for (int32_t k = 0; k < b->n_in; k++)
        unit[k] = b->strides[k][b->rank - 1] != 0;
    for (size_t row = begin; row < end; row++) {
        size_t off[QS_BCAST_MAX_IN];
        const void *ptr[QS_BCAST_MAX_IN];
        qs_bcast_row_offsets(b, row, off);
        for (int32_t k = 0; k < b->n_in; k++)
            ptr[k] = (const char *)job->ins[k] + off[k] * job->in_esize[k];
        job->fn(ptr, unit, job->out + row * inner * job->out_esize, inner);
    }
}

void qs_bcast_run(const qs_bcast *b, const void *const *ins, const size_t *in_esize, void *out,
                  size_t out_esize, qs_bcast_row_fn fn, const qs_exec_ctx *ctx) {
    qs_bcast_job job = {b, ins, in_esize, out, out_esize, fn};
    size_t inner = qs_bcast_inner(b);
    size_t rows = qs_bcast_rows(b);
    if (inner == 0 || rows == 0)
        return;
    /* about 16K elements per task keeps the pool overhead small */
    size_t grain = inner >= 16384 ? 1 : 16384 / inner;
    qs_op_parallel(ctx ? ctx->pool : NULL, ctx ? ctx->n_threads : 1, rows, grain,
                   qs_bcast_rows_run, &job);
}

/* ---- windows ---- */

qs_status qs_window_attrs_parse(const qs_node *n, bool allow_ceil, qs_window_attrs *a,
                                qs_error *err) {
    qs_status st;
    memset(a, 0, sizeof(*a));
    const char *ap = qs_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") == 0 || ap[0] == '\0')
        a->auto_pad = QS_AUTO_PAD_NOTSET;
    else if (strcmp(ap, "SAME_UPPER") == 0)
        a->auto_pad = QS_AUTO_PAD_SAME_UPPER;
    else if (strcmp(ap, "SAME_LOWER") == 0)
        a->auto_pad = QS_AUTO_PAD_SAME_LOWER;
    else if (strcmp(ap, "VALID") == 0)
        a->auto_pad = QS_AUTO_PAD_VALID;
    else
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "auto_pad \"%s\" is not valid", ap);
    if ((st = qs_attr_get_ints(n, "kernel_shape", a->kernel, QS_WINDOW_MAX_DIMS, &a->n_kernel,
                               err)) != QS_OK ||
        (st = qs_attr_get_ints(n, "strides", a->strides, QS_WINDOW_MAX_DIMS, &a->n_strides,
                               err)) != QS_OK ||
        (st = qs_attr_get_ints(n, "dilations", a->dilations, QS_WINDOW_MAX_DIMS,
                               &a->n_dilations, err)) != QS_OK ||
        (st = qs_attr_get_ints(n, "pads", a->pads, 2 * QS_WINDOW_MAX_DIMS, &a->n_pads, err)) !=
            QS_OK)
        return st;
    if (allow_ceil) {
        int64_t c = 0;
        if ((st = qs_attr_get_int(n, "ceil_mode", 0, &c, err)) != QS_OK)
            return st;
        a->ceil_mode = c != 0;
    }
    for (size_t i = 0; i < a->n_kernel; i++)
        if (a->kernel[i] < 1 || a->kernel[i] > QS_WINDOW_LIMIT)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "kernel_shape %lld is invalid",
                                 (long long)a->kernel[i]);
    for (size_t i = 0; i < a->n_strides; i++)
        if (a->strides[i] < 1 || a->strides[i] > QS_WINDOW_LIMIT)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "stride %lld is invalid",
                                 (long long)a->strides[i]);
    for (size_t i = 0; i < a->n_dilations; i++)
        if (a->dilations[i] < 1 || a->dilations[i] > QS_WINDOW_LIMIT)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "dilation %lld is invalid",
                                 (long long)a->dilations[i]);
    for (size_t i = 0; i < a->n_pads; i++)
        if (a->pads[i] < 0 || a->pads[i] > QS_WINDOW_LIMIT)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "pad %lld is invalid",
                                 (long long)a->pads[i]);
    return QS_OK;
}

qs_status qs_window_resolve(const qs_node *n, const qs_window_attrs *a, int32_t n_sp,
                            const int64_t *in_sp, const int64_t *kernel, qs_window *w,
                            qs_error *err) {
    if (n_sp < 1 || n_sp > QS_WINDOW_MAX_DIMS)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%d spatial dims (1 to %d supported)",
                             (int)n_sp, QS_WINDOW_MAX_DIMS);
    size_t ns = (size_t)n_sp;
    if ((a->n_kernel != 0 && a->n_kernel != ns) || (a->n_strides != 0 && a->n_strides != ns) ||
        (a->n_dilations != 0 && a->n_dilations != ns) || (a->n_pads != 0 && a->n_pads != 2 * ns))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                             "kernel_shape/strides/dilations/pads do not match %d spatial dims",
                             (int)n_sp);
    if (kernel == NULL && a->n_kernel == 0)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "kernel_shape is missing");
    memset(w, 0, sizeof(*w));
    w->n_sp = n_sp;
    for (int32_t i = 0; i < n_sp; i++) {
        int64_t k = kernel ? kernel[i] : a->kernel[i];
        if (kernel && a->n_kernel && a->kernel[i] != k)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                 "kernel_shape does not match the weights");
        if (k < 1 || k > QS_WINDOW_LIMIT)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "kernel size %lld is invalid",
                                 (long long)k);
        int64_t s = a->n_strides ? a->strides[i] : 1;
        int64_t d = a->n_dilations ? a->dilations[i] : 1;
        int64_t in = in_sp[i];
        int64_t ext = (k - 1) * d + 1;
        int64_t pb = 0, pe = 0, out;
        if (in < 0 || in > ((int64_t)1 << 56))
            return qs_node_error(err, QS_ERR_SHAPE, n, "spatial size %lld is invalid",
                                 (long long)in);
        switch (a->auto_pad) {
        case QS_AUTO_PAD_SAME_UPPER:
        case QS_AUTO_PAD_SAME_LOWER: {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ext - in;
            if (total < 0)
                total = 0;
            pb = a->auto_pad == QS_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            break;
        }
        case QS_AUTO_PAD_VALID:
            if (in < ext)
                return qs_node_error(err, QS_ERR_SHAPE, n,
                                     "window of %lld is larger than the input (%lld)",
                                     (long long)ext, (long long)in);
            out = (in - ext) / s + 1;
            break;
        default: {
            pb = a->n_pads ? a->pads[i] : 0;
            pe = a->n_pads ? a->pads[i + n_sp] : 0;
            int64_t span = in + pb + pe;
            if (span < ext)
                return qs_node_error(err, QS_ERR_SHAPE, n,
                                     "window of %lld is larger than the padded input (%lld)",
                                     (long long)ext, (long long)span);
            if (a->ceil_mode) {
                out = (span - ext + s - 1) / s + 1;
                /* as PyTorch: the last window must start inside the input or its left pad */
                if ((out - 1) * s >= in + pb)
                    out--;
            } else {
                out = (span - ext) / s + 1;
            }
            break;
        }
        }
        w->in[i] = in;
        w->out[i] = out;
        w->kernel[i] = k;
        w->stride[i] = s;
        w->dilation[i] = d;
        w->pad_begin[i] = pb;
        w->pad_end[i] = pe;
    }
    return QS_OK;
}

/* ---- threading ---- */

typedef struct {
    qs_range_fn fn;
    void *ctx;
    size_t n_items, chunk;
} qs_parallel_job;

static void qs_parallel_task(void *ctx, size_t task, int32_t thread_index) {
    const qs_parallel_job *job = ctx;
    size_t begin = task * job->chunk;
    size_t end = begin + job->chunk < job->n_items ? begin + job->chunk : job->n_items;
    (void)thread_index;
    job->fn(job->ctx, begin, end);
}

size_t qs_op_grain(size_t item_cost) {
    return item_cost >= 16384 ? 1 : 16384 / (item_cost ? item_cost : 1);
}

void qs_op_parallel(struct qs_threadpool *pool, int32_t n_threads, size_t n_items, size_t grain,
                    qs_range_fn fn, void *ctx) {
    if (n_items == 0)
        return;
    if (grain == 0)
        grain = 1;
    size_t tasks = n_threads > 1 ? (size_t)n_threads * 4 : 1;
    size_t max_tasks = (n_items + grain - 1) / grain;
    if (tasks > max_tasks)
        tasks = max_tasks;
    if (pool == NULL || tasks <= 1) {
        fn(ctx, 0, n_items);
        return;
    }
    qs_parallel_job job = {fn, ctx, n_items, (n_items + tasks - 1) / tasks};
    qs_threadpool_run(pool, qs_parallel_task, &job, (n_items + job.chunk - 1) / job.chunk);
}
