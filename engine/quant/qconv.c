/* QLinearConvNHWC: the int8 convolution built by the QDQ lowering. uint8 NHWC activations,
 * int8 per-channel weights (zero point 0, or an int32 one per channel for wider weights), int32
 * bias, fused clamp (uint8 out) or float output with an activation. Requantization parameters are
 * computed once, in prepare. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/plan.h"
#include "core/rewrite.h"
#include "kernels/q8.h"
#include "ops/op_util.h"
#include "quant/quant.h"

/* Inputs follow ONNX QLinearConv: x, x_scale, x_zero, w, w_scale, w_zero, y_scale, y_zero, bias.
 * Without y_scale/y_zero the output is float. */
enum { QX = 0, QX_SCALE, QX_ZERO, QW, QW_SCALE, QW_ZERO, QY_SCALE, QY_ZERO, QBIAS };

typedef struct {
    qs_conv2d_geometry geo;
    int32_t qmin, qmax;
    qs_act act;
    bool prepared;
    qs_q8_conv2d conv;
    qs_qlinear_output out;
} qconv_params;

static void qconv_free(void *p) {
    qconv_params *q = p;
    if (!q)
        return;
    if (q->prepared)
        qs_q8_conv2d_free(&q->conv);
    qs_qlinear_output_free(&q->out);
    free(q);
}



static qs_status qconv_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qconv_params *p = calloc(1, sizeof(*p));
    (void)g;
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    n->params = p;
    qs_status st = qs_conv2d_geometry_parse(n, &p->geo, err);
    if (st == QS_OK)
        st = qs_quant_attr_clamp(n, &p->qmin, &p->qmax, err);
    if (st == QS_OK)
        st = qs_node_get_act_attrs(n, &p->act, err);
    return st;
}

static bool float_out(const qs_node *n) { return n->n_inputs <= QY_SCALE || n->inputs[QY_SCALE] < 0; }

static qs_status qconv_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    const qconv_params *p = n->params;
    const qs_view *x = &in[QX], *w = &in[QW];
    if (x->dtype != QS_DTYPE_UINT8 || x->rank != 4)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "input must be uint8 NHWC");
    if (w->dtype != QS_DTYPE_INT8 || w->rank != 4 || w->dims[2] != p->geo.kernel[0] ||
        w->dims[3] != p->geo.kernel[1])
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "weights must be int8 OIHW");
    if (x->dims[3] != w->dims[1] * p->geo.group || w->dims[0] % p->geo.group)
        return qs_node_error(err, QS_ERR_SHAPE, n, "channels do not match the weights");
    int64_t oh, ow;
    if (!qs_conv2d_geometry_output(&p->geo, x->dims[1], x->dims[2], &oh, &ow))
        return qs_node_error(err, QS_ERR_SHAPE, n, "empty output");
    out[0].rank = 4;
    out[0].dims[0] = x->dims[0];
    out[0].dims[1] = oh;
    out[0].dims[2] = ow;
    out[0].dims[3] = w->dims[0];
    out[0].layout = QS_LAYOUT_NHWC;
    out[0].dtype = float_out(n) ? QS_DTYPE_FLOAT32 : QS_DTYPE_UINT8;
    return qs_op_check_output(n, &out[0], err);
}

static qs_conv2d_shape conv_shape(const qconv_params *p, const qs_view *x, const qs_view *w,
                                  const qs_view *y) {
    qs_conv2d_shape s = {0};
    s.n = (size_t)x->dims[0];
    s.in_h = (size_t)x->dims[1];
    s.in_w = (size_t)x->dims[2];
    s.in_c = (size_t)x->dims[3];
    s.out_h = y ? (size_t)y->dims[1] : 0;
    s.out_w = y ? (size_t)y->dims[2] : 0;
    s.out_c = (size_t)w->dims[0];
    s.kernel_h = (size_t)p->geo.kernel[0];
    s.kernel_w = (size_t)p->geo.kernel[1];
    s.stride_h = (size_t)p->geo.strides[0];
    s.stride_w = (size_t)p->geo.strides[1];
    s.dilation_h = (size_t)p->geo.dilations[0];
    s.dilation_w = (size_t)p->geo.dilations[1];
    s.pad_top = (size_t)p->geo.pads[0];
    s.pad_left = (size_t)p->geo.pads[1];
    s.groups = (size_t)p->geo.group;
    return s;
}

static qs_status qconv_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qconv_params *p = n->params;
    const qs_value *w = qs_node_input(g, n, QW);
    if (!w || w->kind != QS_VALUE_CONSTANT)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "weights must be constant");
    qs_status st = qs_qlinear_output_prepare(g, n, (size_t)w->dims[0], p->qmin, p->qmax, &p->out,
                                             err);
    if (st != QS_OK)
        return st;
    qs_view xv = {.dtype = QS_DTYPE_UINT8, .rank = 4}, wv;
    memcpy(xv.dims, qs_node_input(g, n, QX)->dims, sizeof(xv.dims));
    qs_view_from_value(&wv, w);
    qs_conv2d_shape shape = conv_shape(p, &xv, &wv, NULL);
    /* Input proven 7-bit (a reduce_range recipe), weights without offsets: the kernels may use
     * it. */
    const bool u7 = !p->out.w_offset && qs_quant_u8_bound(g, n->inputs[QX]) <= 127 &&
                    p->out.x_zero >= 0 && p->out.x_zero <= 127;
    st = u7 ? qs_q8_conv2d_create_u7(qs_engine_isa(), &shape, w->data, p->out.bias,
                                     p->out.x_zero, &p->conv)
            : qs_q8_conv2d_create_offset(qs_engine_isa(), &shape, w->data, p->out.bias,
                                         p->out.x_zero, p->out.w_offset, &p->conv);
    if (st != QS_OK)
        return qs_node_error(err, st, n, "cannot pack weights");
    p->prepared = true;
    return QS_OK;
}

static size_t qconv_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                            int32_t n_threads) {
    const qconv_params *p = n->params;
    if (!p->prepared)
        return 0;
    qs_conv2d_shape s = conv_shape(p, &in[QX], &in[QW], &out[0]);
    return (size_t)n_threads * qs_q8_conv2d_scratch_bytes(&p->conv, &s);
}

static qs_status qconv_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    const qconv_params *p = n->params;
    if (!p->prepared)
        return QS_ERR_INTERNAL;
    qs_conv2d_shape s = conv_shape(p, &in[QX], &in[QW], &out[0]);
    bool fo = out[0].dtype == QS_DTYPE_FLOAT32;
    qs_q8_conv2d_run(ctx->pool, &p->conv, &s, in[QX].data, &p->out.rq, fo ? NULL : out[0].data,
                     fo ? &p->act : NULL, fo ? out[0].data : NULL, ctx->scratch);
    return QS_OK;
}

static uint64_t qconv_packed(const qs_node *n) {
    const qconv_params *p = n->params;
    return p && p->prepared ? p->conv.bytes : 0;
}

const qs_op qs_op_qlinear_conv_nhwc = {
    .type = "QLinearConvNHWC", .domain = QS_QDOMAIN, .min_inputs = 5, .max_inputs = 9,
    .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = qconv_init, .infer = qconv_infer,
    .scratch_bytes = qconv_scratch, .prepare = qconv_prepare, .run = qconv_run,
    .free_params = qconv_free, .packed_bytes = qconv_packed,
};
