/* GlobalAveragePool and GlobalMaxPool (NCHW, any spatial rank) and GlobalAveragePoolNHWC. */
#include <math.h>
#include <string.h>

#include "ops/op_util.h"

/* Channels per NHWC task: a block of output floats that stays in L1 while the image streams. */
#define QS_GPOOL_BLOCK 256

static bool qs_gpool_nhwc(const qs_node *n) { return strstr(n->op_type, "NHWC") != NULL; }

static qs_status qs_gpool_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    bool nhwc = qs_gpool_nhwc(n);
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (nhwc ? in[0].rank != 4 : in[0].rank < 3)
        return qs_node_error(err, QS_ERR_SHAPE, n, "X has rank %d", (int)in[0].rank);
    if (!nhwc && in[0].layout != QS_LAYOUT_PLAIN)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "NHWC layout is not handled");
    qs_view_copy_shape(&out[0], &in[0]);
    if (nhwc) {
        out[0].dims[1] = out[0].dims[2] = 1;
        out[0].layout = QS_LAYOUT_NHWC;
    } else {
        for (int32_t i = 2; i < in[0].rank; i++)
            out[0].dims[i] = 1;
    }
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    const float *x;
    float *y;
    size_t plane;    /* spatial elements */
    size_t channels; /* NHWC only */
    size_t blocks;   /* NHWC channel blocks per image */
    bool is_max;
} qs_gpool_job;

static void qs_gpool_planes(void *ctx, size_t begin, size_t end) {
    const qs_gpool_job *j = ctx;
    for (size_t p = begin; p < end; p++) {
        const float *x = j->x + p * j->plane;
        size_t i = 0;
        if (j->is_max) {
            float m = -INFINITY;
            for (; i < j->plane; i++)
                m = x[i] > m ? x[i] : m;
            j->y[p] = m;
            continue;
        }
        /* eight independent partial sums: a reduction the compiler can vectorize */
        float acc[8] = {0};
        for (; i + 8 <= j->plane; i += 8)
            for (size_t k = 0; k < 8; k++)
                acc[k] += x[i + k];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < j->plane; i++)
            sum += x[i];
        j->y[p] = j->plane ? sum / (float)j->plane : 0.0f;
    }
}

static void qs_gpool_nhwc_blocks(void *ctx, size_t begin, size_t end) {
    const qs_gpool_job *j = ctx;
    for (size_t t = begin; t < end; t++) {
        size_t img = t / j->blocks, c0 = (t % j->blocks) * QS_GPOOL_BLOCK;
        size_t cn = j->channels - c0 < QS_GPOOL_BLOCK ? j->channels - c0 : QS_GPOOL_BLOCK;
        const float *x = j->x + img * j->plane * j->channels + c0;
        float *y = j->y + img * j->channels + c0;
        for (size_t c = 0; c < cn; c++)
            y[c] = 0.0f;
        for (size_t p = 0; p < j->plane; p++) {
            const float *row = x + p * j->channels;
            for (size_t c = 0; c < cn; c++)
                y[c] += row[c];
        }
        float inv = j->plane ? 1.0f / (float)j->plane : 0.0f;
        for (size_t c = 0; c < cn; c++)
            y[c] *= inv;
    }
}

static qs_status qs_gpool_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    qs_gpool_job j = {in[0].data, out[0].data, 0, 0, 0, strncmp(n->op_type, "GlobalMax", 9) == 0};
    if (qs_gpool_nhwc(n)) {
        j.plane = (size_t)(in[0].dims[1] * in[0].dims[2]);
        j.channels = (size_t)in[0].dims[3];
        j.blocks = (j.channels + QS_GPOOL_BLOCK - 1) / QS_GPOOL_BLOCK;
        qs_op_parallel(ctx->pool, ctx->n_threads, (size_t)in[0].dims[0] * j.blocks, 1,
                       qs_gpool_nhwc_blocks, &j);
        return QS_OK;
    }
    j.plane = qs_dims_prod(in[0].dims, 2, in[0].rank);
    size_t grain = j.plane >= 16384 ? 1 : 16384 / (j.plane ? j.plane : 1);
    qs_op_parallel(ctx->pool, ctx->n_threads, qs_dims_prod(in[0].dims, 0, 2), grain,
                   qs_gpool_planes, &j);
    return QS_OK;
}

#define QS_GPOOL_OP(NAME, TYPE, DOMAIN)                                                          \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = DOMAIN,                                                                        \
        .min_inputs = 1,                                                                         \
        .max_inputs = 1,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .infer = qs_gpool_infer,                                                                 \
        .run = qs_gpool_run,                                                                     \
    };

QS_GPOOL_OP(qs_op_global_average_pool, "GlobalAveragePool", "")
QS_GPOOL_OP(qs_op_global_max_pool, "GlobalMaxPool", "")
QS_GPOOL_OP(qs_op_global_average_pool_nhwc, "GlobalAveragePoolNHWC", "quantserve")
