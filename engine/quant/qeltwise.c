/* Int8 elementwise and pooling operators built by the QDQ lowering: QLinearAdd (same-shape
 * residual add with a fused clamp) and QLinearGlobalAveragePoolNHWC. */
#include <stdlib.h>
#include <string.h>

#include "kernels/q8.h"
#include "ops/op_util.h"
#include "quant/quant.h"

typedef struct {
    int32_t qmin, qmax;
    bool prepared;
    float sa, sb, sy;
    int32_t za, zb, zy;
} qelt_params;

static qs_status qelt_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    qelt_params *p = calloc(1, sizeof(*p));
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    n->params = p;
    return qs_quant_attr_clamp(n, &p->qmin, &p->qmax, err);
}

/* QLinearAdd: A, A_scale, A_zero, B, B_scale, B_zero, C_scale, C_zero. */
static qs_status qadd_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    if (in[0].dtype != QS_DTYPE_UINT8 || in[3].dtype != QS_DTYPE_UINT8)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "inputs must be uint8");
    if (in[0].rank != in[3].rank)
        return qs_node_error(err, QS_ERR_SHAPE, n, "inputs differ in rank");
    for (int32_t i = 0; i < in[0].rank; i++)
        if (in[0].dims[i] != in[3].dims[i])
            return qs_node_error(err, QS_ERR_SHAPE, n, "inputs differ in shape");
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dtype = QS_DTYPE_UINT8;
    return QS_OK;
}

static qs_status qadd_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qelt_params *p = n->params;
    if (!qs_const_scalar_f32(g, n->inputs[1], &p->sa) || !qs_const_scalar_int(g, n->inputs[2], &p->za) ||
        !qs_const_scalar_f32(g, n->inputs[4], &p->sb) || !qs_const_scalar_int(g, n->inputs[5], &p->zb) ||
        !qs_const_scalar_f32(g, n->inputs[6], &p->sy) || !qs_const_scalar_int(g, n->inputs[7], &p->zy))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "scales and zero points must be constants");
    p->prepared = true;
    return QS_OK;
}

static qs_status qadd_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    const qelt_params *p = n->params;
    (void)ctx;
    if (!p->prepared)
        return QS_ERR_INTERNAL;
    qs_q8_add(in[0].data, p->sa, p->za, in[3].data, p->sb, p->zb, qs_view_numel(&out[0]), p->sy,
              p->zy, p->qmin, p->qmax, out[0].data);
    return QS_OK;
}

const qs_op qs_op_qlinear_add = {
    .type = "QLinearAdd", .domain = QS_QDOMAIN, .min_inputs = 8, .max_inputs = 8,
    .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = qelt_init, .infer = qadd_infer,
    .prepare = qadd_prepare, .run = qadd_run,
};

/* QLinearGlobalAveragePoolNHWC: X, X_scale, X_zero, Y_scale, Y_zero; X is NHWC uint8. */
static qs_status qgap_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    if (in[0].dtype != QS_DTYPE_UINT8 || in[0].rank != 4)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input must be uint8 NHWC");
    qs_view_copy_shape(&out[0], &in[0]);
    out[0].dims[1] = out[0].dims[2] = 1;
    out[0].layout = QS_LAYOUT_NHWC;
    return QS_OK;
}

static qs_status qgap_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qelt_params *p = n->params;
    if (!qs_const_scalar_f32(g, n->inputs[1], &p->sa) || !qs_const_scalar_int(g, n->inputs[2], &p->za) ||
        !qs_const_scalar_f32(g, n->inputs[3], &p->sy) || !qs_const_scalar_int(g, n->inputs[4], &p->zy))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "scales and zero points must be constants");
    p->prepared = true;
    return QS_OK;
}

static qs_status qgap_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    const qelt_params *p = n->params;
    (void)ctx;
    if (!p->prepared)
        return QS_ERR_INTERNAL;
    const qs_view *x = &in[0];
    qs_q8_global_avgpool_nhwc(x->data, (size_t)x->dims[0], (size_t)(x->dims[1] * x->dims[2]),
                              (size_t)x->dims[3], p->sa, p->za, p->sy, p->zy, out[0].data);
    /* qmin/qmax (7-bit recipes set qmax 127): one byte per channel, clamped here. */
    if (p->qmin > 0 || p->qmax < 255) {
        uint8_t *y = out[0].data;
        for (size_t i = 0, count = qs_view_numel(&out[0]); i < count; i++)
            y[i] = (uint8_t)(y[i] < p->qmin ? p->qmin : y[i] > p->qmax ? p->qmax : y[i]);
    }
    return QS_OK;
}

const qs_op qs_op_qlinear_global_average_pool_nhwc = {
    .type = "QLinearGlobalAveragePoolNHWC", .domain = QS_QDOMAIN, .min_inputs = 5,
    .max_inputs = 5, .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = qelt_init, .infer = qgap_infer,
    .prepare = qgap_prepare, .run = qgap_run,
};
