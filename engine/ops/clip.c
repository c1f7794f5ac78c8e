/* Clip: min/max as attributes before opset 11, as optional scalar inputs from 11 (any numeric type). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "ops/op_util.h"

typedef struct {
    bool bounds_are_inputs; /* opset >= 11 */
    float attr_min, attr_max;
} qs_clip_params;

static qs_status qs_clip_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_clip_params *p = calloc(1, sizeof(*p));
    qs_status st;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->bounds_are_inputs = g->opset >= 11;
    if ((st = qs_attr_get_float(n, "min", -INFINITY, &p->attr_min, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "max", INFINITY, &p->attr_max, err)) != QS_OK) {
        free(p);
        return st;
    }
    if (!p->bounds_are_inputs && n->n_inputs > 1) {
        free(p);
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                             "min/max are attributes before opset 11");
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_clip_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    const qs_clip_params *p = n->params;
    if (!qs_dtype_is_numeric(in[0].dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (!p->bounds_are_inputs && in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    for (int32_t i = 1; i < 3; i++) {
        if (!qs_op_has_input(n, in, i))
            continue;
        if (in[i].dtype != in[0].dtype || qs_view_numel(&in[i]) != 1 || in[i].rank > 1)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                 "input %d must be a scalar of the input's type", (int)i);
    }
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    qs_dtype dtype;
    const void *x;
    void *y;
    const void *lo, *hi; /* NULL: unbounded */
    float flo, fhi;      /* float bounds before opset 11 */
} qs_clip_job;

#define QS_CLIP_CASE(E, T, LOWEST, HIGHEST)                                                      \
    case E: {                                                                                    \
        const T *x = (const T *)job->x + begin;                                                  \
        T *y = (T *)job->y + begin;                                                              \
        T lo = job->lo ? *(const T *)job->lo : (T)(LOWEST);                                      \
        T hi = job->hi ? *(const T *)job->hi : (T)(HIGHEST);                                     \
        for (size_t i = 0; i < end - begin; i++) {                                               \
            T v = x[i] < lo ? lo : x[i];                                                         \
            y[i] = v > hi ? hi : v;                                                              \
        }                                                                                        \
        break;                                                                                   \
    }

static void qs_clip_chunk(void *ctx, size_t begin, size_t end) {
    const qs_clip_job *job = ctx;
    if (job->dtype == QS_DTYPE_FLOAT32 && job->lo == NULL && job->hi == NULL) {
        const float *x = (const float *)job->x + begin;
        float *y = (float *)job->y + begin;
        for (size_t i = 0; i < end - begin; i++)
            y[i] = fminf(fmaxf(x[i], job->flo), job->fhi);
        return;
    }
    switch (job->dtype) {
        QS_CLIP_CASE(QS_DTYPE_FLOAT32, float, -INFINITY, INFINITY)
        QS_CLIP_CASE(QS_DTYPE_FLOAT64, double, -INFINITY, INFINITY)
        QS_CLIP_CASE(QS_DTYPE_INT8, int8_t, INT8_MIN, INT8_MAX)
        QS_CLIP_CASE(QS_DTYPE_UINT8, uint8_t, 0, UINT8_MAX)
        QS_CLIP_CASE(QS_DTYPE_INT16, int16_t, INT16_MIN, INT16_MAX)
        QS_CLIP_CASE(QS_DTYPE_UINT16, uint16_t, 0, UINT16_MAX)
        QS_CLIP_CASE(QS_DTYPE_INT32, int32_t, INT32_MIN, INT32_MAX)
        QS_CLIP_CASE(QS_DTYPE_UINT32, uint32_t, 0, UINT32_MAX)
        QS_CLIP_CASE(QS_DTYPE_INT64, int64_t, INT64_MIN, INT64_MAX)
        QS_CLIP_CASE(QS_DTYPE_UINT64, uint64_t, 0, UINT64_MAX)
    default: break;
    }
}

static qs_status qs_clip_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    const qs_clip_params *p = n->params;
    qs_clip_job job = {in[0].dtype, in[0].data, out[0].data, NULL, NULL, -INFINITY, INFINITY};
    if (p->bounds_are_inputs) {
        job.lo = qs_op_has_input(n, in, 1) ? in[1].data : NULL;
        job.hi = qs_op_has_input(n, in, 2) ? in[2].data : NULL;
    } else {
        job.flo = p->attr_min;
        job.fhi = p->attr_max;
    }
    qs_op_parallel(ctx->pool, ctx->n_threads, qs_view_numel(&in[0]), 16384, qs_clip_chunk, &job);
    return QS_OK;
}

const qs_op qs_op_clip = {
    .type = "Clip",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_clip_init,
    .infer = qs_clip_infer,
    .run = qs_clip_run,
};
