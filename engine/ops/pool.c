/* MaxPool and AveragePool, NCHW (1-D to 3-D) and NHWC (2-D, from the layout pass), one kernel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    qs_window_attrs win;
    bool is_max;
    bool nhwc;
    bool count_include_pad;
    bool indices;      /* MaxPool's second output is used */
    bool column_major; /* storage_order=1 for the indices */
} qs_pool_params;

static qs_status qs_pool_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_pool_params *p = calloc(1, sizeof(*p));
    int64_t cip = 0;
    qs_status st;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->is_max = strncmp(n->op_type, "MaxPool", 7) == 0;
    p->nhwc = strstr(n->op_type, "NHWC") != NULL;
    st = qs_window_attrs_parse(n, true, &p->win, err);
    if (st == QS_OK)
        st = qs_attr_get_int(n, "count_include_pad", 0, &cip, err);
    if (st == QS_OK && p->win.n_kernel == 0)
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "kernel_shape is missing");
    int64_t order = 0;
    if (st == QS_OK)
        st = qs_attr_get_int(n, "storage_order", 0, &order, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    p->count_include_pad = cip != 0;
    p->indices = n->n_outputs > 1 && n->outputs[1] >= 0;
    p->column_major = order != 0;
    n->params = p;
    return QS_OK;
}

static qs_status qs_pool_geometry(const qs_node *n, const qs_view *x, qs_window *w,
                                  qs_error *err) {
    const qs_pool_params *p = n->params;
    if (p->nhwc) {
        int64_t sp[2];
        if (x->rank != 4)
            return qs_node_error(err, QS_ERR_SHAPE, n, "NHWC input must have rank 4");
        sp[0] = x->dims[1];
        sp[1] = x->dims[2];
        return qs_window_resolve(n, &p->win, 2, sp, NULL, w, err);
    }
    if (x->layout != QS_LAYOUT_PLAIN)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "NHWC layout is not handled");
    if (x->rank < 3)
        return qs_node_error(err, QS_ERR_SHAPE, n, "X must have rank >= 3");
    return qs_window_resolve(n, &p->win, x->rank - 2, x->dims + 2, NULL, w, err);
}

static qs_status qs_pool_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    const qs_pool_params *p = n->params;
    qs_window w;
    qs_dtype t = in[0].dtype;
    if (!(t == QS_DTYPE_FLOAT32 || (p->is_max && (t == QS_DTYPE_UINT8 || t == QS_DTYPE_INT8))))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(t));
    if (p->indices && (t != QS_DTYPE_FLOAT32 || p->nhwc))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "Indices only for float32 NCHW");
    qs_status st = qs_pool_geometry(n, &in[0], &w, err);
    if (st != QS_OK)
        return st;
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t i = 0; i < w.n_sp; i++)
        out[0].dims[(p->nhwc ? 1 : 2) + i] = w.out[i];
    out[0].layout = p->nhwc ? QS_LAYOUT_NHWC : QS_LAYOUT_PLAIN;
    if (p->indices) {
        out[1] = out[0];
        out[1].dtype = QS_DTYPE_INT64;
    }
    return qs_op_check_output(n, &out[0], err);
}

/* Window geometry padded to three spatial dims, plus element strides. A task is one output row
 * (all of the innermost spatial dim) of one "plane": an (n, c) pair in NCHW, an image in NHWC,
 * where `vec` contiguous channels are pooled together. */
typedef struct {
    const void *x;
    void *y;
    int64_t *idx;      /* MaxPool Indices (float32 NCHW), else NULL */
    bool column_major;
    qs_dtype dtype;
    bool is_max, include_pad;
    size_t vec;
    size_t rows;                       /* output rows per plane: out[0] * out[1] */
    size_t in_plane, out_plane;        /* elements between planes */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
    int64_t in_stride[3], out_stride[3];
} qs_pool_job;

/* Taps of dim i for output position o that land in [lo, hi): count and first/last tap. */
static int64_t qs_pool_taps(const qs_pool_job *j, int i, int64_t o, int64_t lo, int64_t hi) {
    int64_t start = o * j->s[i] - j->pb[i], count = 0;
    for (int64_t t = 0; t < j->k[i]; t++) {
        int64_t pos = start + t * j->d[i];
        count += pos >= lo && pos < hi;
    }
    return count;
}

#define QS_POOL_MAX(NAME, T, LOWEST)                                                             \
    static void NAME(const qs_pool_job *j, const T *x, T *y, int64_t od, int64_t oh) {           \
        for (int64_t ow = 0; ow < j->out[2]; ow++) {                                             \
            T *o = y + od * j->out_stride[0] + oh * j->out_stride[1] + ow * j->out_stride[2];    \
            for (size_t c = 0; c < j->vec; c++)                                                  \
                o[c] = LOWEST;                                                                   \
            for (int64_t kd = 0; kd < j->k[0]; kd++) {                                           \
                int64_t id = od * j->s[0] - j->pb[0] + kd * j->d[0];                             \
                if (id < 0 || id >= j->in[0])                                                    \
                    continue;                                                                    \
                for (int64_t kh = 0; kh < j->k[1]; kh++) {                                       \
                    int64_t ih = oh * j->s[1] - j->pb[1] + kh * j->d[1];                         \
                    if (ih < 0 || ih >= j->in[1])                                                \
                        continue;                                                                \
                    for (int64_t kw = 0; kw < j->k[2]; kw++) {                                   \
                        int64_t iw = ow * j->s[2] - j->pb[2] + kw * j->d[2];                     \
                        if (iw < 0 || iw >= j->in[2])                                            \
                            continue;                                                            \
                        const T *v = x + id * j->in_stride[0] + ih * j->in_stride[1] +           \
                                     iw * j->in_stride[2];                                       \
                        for (size_t c = 0; c < j->vec; c++)                                      \
                            o[c] = v[c] > o[c] ? v[c] : o[c];                                    \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

QS_POOL_MAX(qs_pool_max_f32, float, -INFINITY)
QS_POOL_MAX(qs_pool_max_u8, uint8_t, 0)
QS_POOL_MAX(qs_pool_max_i8, int8_t, INT8_MIN)

/* Max with the flat input index of the winner (first one on ties), one NCHW plane. */
static void qs_pool_argmax_f32(const qs_pool_job *j, const float *x, float *y, int64_t *idx,
                               int64_t base, int64_t od, int64_t oh) {
    for (int64_t ow = 0; ow < j->out[2]; ow++) {
        int64_t at = (od * j->out[1] + oh) * j->out[2] + ow, best_pos = -1;
        float best = -INFINITY;
        for (int64_t kd = 0; kd < j->k[0]; kd++) {
            int64_t id = od * j->s[0] - j->pb[0] + kd * j->d[0];
            if (id < 0 || id >= j->in[0])
                continue;
            for (int64_t kh = 0; kh < j->k[1]; kh++) {
                int64_t ih = oh * j->s[1] - j->pb[1] + kh * j->d[1];
                if (ih < 0 || ih >= j->in[1])
                    continue;
                for (int64_t kw = 0; kw < j->k[2]; kw++) {
                    int64_t iw = ow * j->s[2] - j->pb[2] + kw * j->d[2];
                    if (iw < 0 || iw >= j->in[2])
                        continue;
                    float v = x[(id * j->in[1] + ih) * j->in[2] + iw];
                    if (best_pos < 0 || v > best) {
                        best = v;
                        best_pos = j->column_major ? (iw * j->in[1] + ih) * j->in[0] + id
                                                   : (id * j->in[1] + ih) * j->in[2] + iw;
                    }
                }
            }
        }
        y[at] = best;
        idx[at] = best_pos < 0 ? 0 : base + best_pos;
    }
}

static void qs_pool_avg_f32(const qs_pool_job *j, const float *x, float *y, int64_t od,
                            int64_t oh) {
    int64_t cd, ch;
    if (j->include_pad) {
        cd = qs_pool_taps(j, 0, od, -j->pb[0], j->in[0] + j->pe[0]);
        ch = qs_pool_taps(j, 1, oh, -j->pb[1], j->in[1] + j->pe[1]);
    } else {
        cd = qs_pool_taps(j, 0, od, 0, j->in[0]);
        ch = qs_pool_taps(j, 1, oh, 0, j->in[1]);
    }
    for (int64_t ow = 0; ow < j->out[2]; ow++) {
        float *o = y + od * j->out_stride[0] + oh * j->out_stride[1] + ow * j->out_stride[2];
        int64_t cw = j->include_pad ? qs_pool_taps(j, 2, ow, -j->pb[2], j->in[2] + j->pe[2])
                                    : qs_pool_taps(j, 2, ow, 0, j->in[2]);
        int64_t count = cd * ch * cw;
        for (size_t c = 0; c < j->vec; c++)
            o[c] = 0.0f;
        for (int64_t kd = 0; kd < j->k[0]; kd++) {
            int64_t id = od * j->s[0] - j->pb[0] + kd * j->d[0];
            if (id < 0 || id >= j->in[0])
                continue;
            for (int64_t kh = 0; kh < j->k[1]; kh++) {
                int64_t ih = oh * j->s[1] - j->pb[1] + kh * j->d[1];
                if (ih < 0 || ih >= j->in[1])
                    continue;
                for (int64_t kw = 0; kw < j->k[2]; kw++) {
                    int64_t iw = ow * j->s[2] - j->pb[2] + kw * j->d[2];
                    if (iw < 0 || iw >= j->in[2])
                        continue;
                    const float *v =
                        x + id * j->in_stride[0] + ih * j->in_stride[1] + iw * j->in_stride[2];
                    for (size_t c = 0; c < j->vec; c++)
                        o[c] += v[c];
                }
            }
        }
        /* a window wholly in the padding averages nothing: 0 rather than 0/0 */
        float inv = count > 0 ? 1.0f / (float)count : 0.0f;
        for (size_t c = 0; c < j->vec; c++)
            o[c] *= inv;
    }
}

static void qs_pool_tasks(void *ctx, size_t begin, size_t end) {
    const qs_pool_job *j = ctx;
    size_t es = qs_dtype_size(j->dtype);
    for (size_t t = begin; t < end; t++) {
        size_t plane = t / j->rows, row = t % j->rows;
        const char *x = (const char *)j->x + plane * j->in_plane * es;
        char *y = (char *)j->y + plane * j->out_plane * es;
        int64_t od = (int64_t)row / j->out[1], oh = (int64_t)row % j->out[1];
        if (j->idx)
            qs_pool_argmax_f32(j, (const float *)(const void *)x, (float *)(void *)y,
                               j->idx + plane * j->out_plane, (int64_t)(plane * j->in_plane), od,
                               oh);
        else if (!j->is_max)
            qs_pool_avg_f32(j, (const float *)(const void *)x, (float *)(void *)y, od, oh);
        else if (j->dtype == QS_DTYPE_FLOAT32)
            qs_pool_max_f32(j, (const float *)(const void *)x, (float *)(void *)y, od, oh);
        else if (j->dtype == QS_DTYPE_UINT8)
            qs_pool_max_u8(j, (const uint8_t *)x, (uint8_t *)y, od, oh);
        else
            qs_pool_max_i8(j, (const int8_t *)x, (int8_t *)y, od, oh);
    }
}

static qs_status qs_pool_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    const qs_pool_params *p = n->params;
    qs_window w;
    qs_pool_job j;
    size_t planes;
    if (qs_pool_geometry(n, &in[0], &w, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    memset(&j, 0, sizeof(j));
    j.x = in[0].data;
    j.y = out[0].data;
    j.dtype = in[0].dtype;
    j.idx = p->indices ? out[1].data : NULL;
    j.column_major = p->column_major;
    j.is_max = p->is_max;
    j.include_pad = p->count_include_pad;
    int32_t skip = 3 - w.n_sp;
    for (int32_t i = 0; i < 3; i++) {
        int32_t s = i - skip;
        j.in[i] = s >= 0 ? w.in[s] : 1;
        j.out[i] = s >= 0 ? w.out[s] : 1;
        j.k[i] = s >= 0 ? w.kernel[s] : 1;
        j.s[i] = s >= 0 ? w.stride[s] : 1;
        j.d[i] = s >= 0 ? w.dilation[s] : 1;
        j.pb[i] = s >= 0 ? w.pad_begin[s] : 0;
        j.pe[i] = s >= 0 ? w.pad_end[s] : 0;
    }
    if (p->nhwc) {
        j.vec = (size_t)in[0].dims[3];
        planes = (size_t)in[0].dims[0];
    } else {
        j.vec = 1;
        planes = qs_dims_prod(in[0].dims, 0, 2);
    }
    /* innermost spatial dim first; NHWC strides skip over the channels */
    int64_t is = (int64_t)j.vec, os = (int64_t)j.vec;
    for (int32_t i = 2; i >= 0; i--) {
        j.in_stride[i] = is;
        j.out_stride[i] = os;
        is *= j.in[i];
        os *= j.out[i];
    }
    j.in_plane = (size_t)is;
    j.out_plane = (size_t)os;
    j.rows = (size_t)(j.out[0] * j.out[1]);
    size_t row_cost = (size_t)(j.out[2] * j.k[0] * j.k[1] * j.k[2]) * j.vec;
    size_t grain = row_cost >= 8192 ? 1 : 8192 / (row_cost ? row_cost : 1);
    qs_op_parallel(ctx->pool, ctx->n_threads, planes * j.rows, grain, qs_pool_tasks, &j);
    return QS_OK;
}

#define QS_POOL_OP(NAME, TYPE, DOMAIN, MAXOUT)                                                   \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = DOMAIN,                                                                        \
        .min_inputs = 1,                                                                         \
        .max_inputs = 1,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = MAXOUT,                                                                   \
        .init = qs_pool_init,                                                                    \
        .infer = qs_pool_infer,                                                                  \
        .run = qs_pool_run,                                                                      \
    };

QS_POOL_OP(qs_op_max_pool, "MaxPool", "", 2)
QS_POOL_OP(qs_op_average_pool, "AveragePool", "", 1)
QS_POOL_OP(qs_op_max_pool_nhwc, "MaxPoolNHWC", "quantserve", 1)
QS_POOL_OP(qs_op_average_pool_nhwc, "AveragePoolNHWC", "quantserve", 1)
