/* BatchNormalization in inference mode: y = (x - mean) / sqrt(var + eps) * scale + B per channel. */
#include <math.h>
#include <stdlib.h>

#include "ops/op_util.h"

typedef struct {
    float epsilon;
} qs_batchnorm_params;

static qs_status qs_batchnorm_init(const qs_graph *g, qs_node *n, qs_error *err) {
    int64_t training = 0, spatial = 1;
    qs_batchnorm_params *p;
    qs_status st;
    (void)g;
    if ((st = qs_attr_get_int(n, "training_mode", 0, &training, err)) != QS_OK ||
        (st = qs_attr_get_int(n, "spatial", 1, &spatial, err)) != QS_OK)
        return st;
    if (training != 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "training_mode=1 is not supported");
    if (spatial != 1)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "spatial=0 is not supported");
    for (int32_t i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0)
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                                 "output %d (training statistics) is not supported", (int)i);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    st = qs_attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_batchnorm_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    static const char *const names[5] = {"X", "scale", "B", "mean", "var"};
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (in[0].rank < 2)
        return qs_node_error(err, QS_ERR_SHAPE, n, "X must have rank >= 2");
    for (int32_t i = 0; i < 5; i++) {
        if (in[i].dtype != QS_DTYPE_FLOAT32)
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input %s: type %s is not supported",
                                 names[i], qs_dtype_name(in[i].dtype));
        if (i > 0 && (in[i].rank != 1 || in[i].dims[0] != in[0].dims[1]))
            return qs_node_error(err, QS_ERR_SHAPE, n, "input %s must have %lld elements",
                                 names[i], (long long)in[0].dims[1]);
    }
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    const float *x, *scale, *bias, *mean, *var;
    float *y;
    float eps;
    size_t channels, plane;
} qs_batchnorm_job;

static void qs_batchnorm_planes(void *ctx, size_t begin, size_t end) {
    const qs_batchnorm_job *job = ctx;
    for (size_t p = begin; p < end; p++) {
        size_t c = p % job->channels;
        float a = (float)((double)job->scale[c] / sqrt((double)job->var[c] + (double)job->eps));
        float b = job->bias[c] - job->mean[c] * a;
        const float *x = job->x + p * job->plane;
        float *y = job->y + p * job->plane;
        for (size_t i = 0; i < job->plane; i++)
            y[i] = x[i] * a + b;
    }
}

static qs_status qs_batchnorm_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    const qs_batchnorm_params *p = n->params;
    qs_batchnorm_job job = {in[0].data, in[1].data, in[2].data, in[3].data, in[4].data,
                            out[0].data, p->epsilon, (size_t)in[0].dims[1],
                            qs_dims_prod(in[0].dims, 2, in[0].rank)};
    size_t planes = qs_dims_prod(in[0].dims, 0, 2);
    size_t grain = job.plane >= 16384 ? 1 : 16384 / (job.plane ? job.plane : 1);
    qs_op_parallel(ctx->pool, ctx->n_threads, planes, grain, qs_batchnorm_planes, &job);
    return QS_OK;
}

const qs_op qs_op_batchnorm = {
    .type = "BatchNormalization",
    .domain = "",
    .min_inputs = 5,
    .max_inputs = 5,
    .min_outputs = 1,
    .max_outputs = 5,
    .init = qs_batchnorm_init,
    .infer = qs_batchnorm_infer,
    .run = qs_batchnorm_run,
};
