/* LRN (across channels) and LayerNormalization (over the trailing dims from axis). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    float alpha, beta, bias, epsilon;
    int64_t size, axis;
} qs_norm_params;

static qs_status qs_lrn_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_norm_params *p = calloc(1, sizeof(*p));
    qs_status st;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if ((st = qs_attr_get_float(n, "alpha", 1e-4f, &p->alpha, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "beta", 0.75f, &p->beta, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "bias", 1.0f, &p->bias, err)) != QS_OK ||
        (st = qs_attr_get_int(n, "size", 0, &p->size, err)) != QS_OK) {
        free(p);
        return st;
    }
    if (p->size < 1 || p->size > 65536) {
        free(p);
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "size must be in [1, 65536]");
    }
    n->params = p;
    return QS_OK;
}

static qs_status qs_lrn_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != QS_DTYPE_FLOAT32 || in[0].rank < 2)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "X must be float32 of rank >= 2");
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_lrn_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    const qs_norm_params *p = n->params;
    size_t batch = (size_t)in[0].dims[0], ch = (size_t)in[0].dims[1];
    size_t plane = qs_dims_prod(in[0].dims, 2, in[0].rank);
    int64_t before = (p->size - 1) / 2, after = p->size - 1 - before;
    const float *x = in[0].data;
    float *y = out[0].data;
    float scale = p->alpha / (float)p->size;
    (void)ctx;
    for (size_t b = 0; b < batch; b++)
        for (size_t c = 0; c < ch; c++) {
            int64_t lo = (int64_t)c - before, hi = (int64_t)c + after;
            lo = lo < 0 ? 0 : lo;
            hi = hi >= (int64_t)ch ? (int64_t)ch - 1 : hi;
            for (size_t i = 0; i < plane; i++) {
                float sq = 0.0f;
                for (int64_t k = lo; k <= hi; k++) {
                    float v = x[(b * ch + (size_t)k) * plane + i];
                    sq += v * v;
                }
                size_t at = (b * ch + c) * plane + i;
                y[at] = x[at] / powf(p->bias + scale * sq, p->beta);
            }
        }
    return QS_OK;
}

static qs_status qs_layer_norm_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_norm_params *p = calloc(1, sizeof(*p));
    qs_status st;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if ((st = qs_attr_get_int(n, "axis", -1, &p->axis, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "epsilon", 1e-5f, &p->epsilon, err)) != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

/* Scale and B must cover the normalized block exactly (trailing dims of X) or be one value. */
static bool qs_layer_norm_param_ok(const qs_view *v, const qs_view *x, int32_t axis) {
    if (v->dtype != QS_DTYPE_FLOAT32)
        return false;
    if (qs_view_numel(v) == 1)
        return true;
    int32_t lead = 0;
    while (lead < v->rank && v->dims[lead] == 1 && v->rank - lead > x->rank - axis)
        lead++;
    if (v->rank - lead != x->rank - axis)
        return false;
    for (int32_t i = lead; i < v->rank; i++)
        if (v->dims[i] != x->dims[axis + i - lead])
            return false;
    return true;
}

static qs_status qs_layer_norm_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                     qs_error *err) {
    const qs_norm_params *p = n->params;
    int32_t axis;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st != QS_OK)
        return st;
    if (in[0].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis is out of range");
    if (!qs_layer_norm_param_ok(&in[1], &in[0], axis) ||
        (qs_op_has_input(n, in, 2) && !qs_layer_norm_param_ok(&in[2], &in[0], axis)))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                             "Scale and B must match the normalized dims or be scalars");
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t i = 1; i < n->n_outputs && i < 3; i++) {
        qs_view_copy_shape(&out[i], &in[0]);
        for (int32_t d = axis; d < in[0].rank; d++)
            out[i].dims[d] = 1;
    }
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_layer_norm_run(const qs_node *n, const qs_view *in, qs_view *out,
                                   qs_exec_ctx *ctx) {
    const qs_norm_params *p = n->params;
    int32_t axis;
    (void)ctx;
    if (!qs_axis_normalize(p->axis, in[0].rank, &axis))
        return QS_ERR_INTERNAL;
    size_t rows = qs_dims_prod(in[0].dims, 0, axis);
    size_t len = qs_dims_prod(in[0].dims, axis, in[0].rank);
    const float *scale = in[1].data;
    const float *bias = qs_op_has_input(n, in, 2) ? in[2].data : NULL;
    size_t ss = qs_view_numel(&in[1]) == 1 ? 0 : 1;
    size_t bs = bias && qs_view_numel(&in[2]) != 1 ? 1 : 0;
    float *mean_out = n->n_outputs > 1 ? out[1].data : NULL;
    float *inv_out = n->n_outputs > 2 ? out[2].data : NULL;
    for (size_t r = 0; r < rows; r++) {
        const float *x = (const float *)in[0].data + r * len;
        float *y = (float *)out[0].data + r * len;
        double sum = 0.0, sq = 0.0;
        for (size_t i = 0; i < len; i++)
            sum += (double)x[i];
        double mean = len ? sum / (double)len : 0.0;
        for (size_t i = 0; i < len; i++)
            sq += ((double)x[i] - mean) * ((double)x[i] - mean);
        double inv = 1.0 / sqrt((len ? sq / (double)len : 0.0) + (double)p->epsilon);
        for (size_t i = 0; i < len; i++) {
            float v = (float)(((double)x[i] - mean) * inv) * scale[i * ss];
            y[i] = bias ? v + bias[i * bs] : v;
        }
        if (mean_out)
            mean_out[r] = (float)mean;
        if (inv_out)
            inv_out[r] = (float)inv;
    }
    return QS_OK;
}

const qs_op qs_op_lrn = {
    .type = "LRN",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_lrn_init,
    .infer = qs_lrn_infer,
    .run = qs_lrn_run,
};

const qs_op qs_op_layer_norm = {
    .type = "LayerNormalization",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 3,
    .init = qs_layer_norm_init,
    .infer = qs_layer_norm_infer,
    .run = qs_layer_norm_run,
};
