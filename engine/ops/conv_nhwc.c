/* ConvNHWC (domain "quantserve"): fused fp32 convolution on NHWC activations, made by the optimizer. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "ops/op.h"

/* Attribute bounds: far beyond any real model, small enough that size arithmetic cannot overflow. */
#define QS_CONV_ATTR_MAX 65536

typedef struct {
    qs_conv2d_shape shape;   /* kernel/stride/dilation/pads/groups; channels known at prepare */
    size_t pad_bottom, pad_right;
    qs_act act;
    bool packed;
    qs_f32_conv2d conv;
} qs_conv_nhwc_params;

static qs_status qs_conv_nhwc_ints(const qs_node *n, const char *name, size_t count, int64_t lo,
                                   size_t *dst, qs_error *err) {
    const qs_attr *a = qs_node_attr(n, name);
    if (!a || a->type != QS_ATTR_INTS || a->n != count)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "attribute %s: expected %zu ints",
                             name, count);
    for (size_t i = 0; i < count; i++) {
        if (a->ints[i] < lo || a->ints[i] > QS_CONV_ATTR_MAX)
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "attribute %s[%zu] = %lld out of range",
                                 name, i, (long long)a->ints[i]);
        dst[i] = (size_t)a->ints[i];
    }
    return QS_OK;
}

static void qs_conv_nhwc_free(void *params) {
    qs_conv_nhwc_params *p = params;
    if (!p)
        return;
    qs_f32_conv2d_free(&p->conv);
    free(p);
}

static qs_status qs_conv_nhwc_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    qs_status st = QS_OK;
    size_t ks[2], strides[2], dil[2], pads[4];
    qs_conv_nhwc_params *p = calloc(1, sizeof *p);
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "params");
    if ((st = qs_conv_nhwc_ints(n, "kernel_shape", 2, 1, ks, err)) != QS_OK ||
        (st = qs_conv_nhwc_ints(n, "strides", 2, 1, strides, err)) != QS_OK ||
        (st = qs_conv_nhwc_ints(n, "dilations", 2, 1, dil, err)) != QS_OK ||
        (st = qs_conv_nhwc_ints(n, "pads", 4, 0, pads, err)) != QS_OK)
        goto cleanup;
    const int64_t group = qs_node_attr_int(n, "group", 1);
    if (group < 1 || group > ((int64_t)1 << 24)) {
        st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "group %lld out of range", (long long)group);
        goto cleanup;
    }
    p->shape.kernel_h = ks[0];
    p->shape.kernel_w = ks[1];
    p->shape.stride_h = strides[0];
    p->shape.stride_w = strides[1];
    p->shape.dilation_h = dil[0];
    p->shape.dilation_w = dil[1];
    p->shape.pad_top = pads[0];
    p->shape.pad_left = pads[1];
    p->pad_bottom = pads[2];
    p->pad_right = pads[3];
    p->shape.groups = (size_t)group;

    static const struct {
        const char *name;
        qs_act_kind kind;
    } acts[] = {
        {"none", QS_ACT_NONE},           {"relu", QS_ACT_RELU},
        {"clip", QS_ACT_CLIP},           {"leaky_relu", QS_ACT_LEAKY_RELU},
        {"hardsigmoid", QS_ACT_HARDSIGMOID}, {"hardswish", QS_ACT_HARDSWISH},
        {"sigmoid", QS_ACT_SIGMOID},     {"silu", QS_ACT_SILU},
    };
    const char *act = qs_node_attr_string(n, "activation", "none");
    size_t i = 0;
    while (i < sizeof acts / sizeof acts[0] && strcmp(acts[i].name, act) != 0)
        i++;
    if (i == sizeof acts / sizeof acts[0]) {
        st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "activation \"%s\"", act);
        goto cleanup;
    }
    p->act.kind = acts[i].kind;
    p->act.min = qs_node_attr_float(n, "act_min", -3.402823466e38f);
    p->act.max = qs_node_attr_float(n, "act_max", 3.402823466e38f);
    p->act.alpha = qs_node_attr_float(n, "act_alpha", 0.01f);
    p->act.beta = qs_node_attr_float(n, "act_beta", 0.0f);
    n->params = p;
    return QS_OK;
cleanup:
    free(p);
    return st;
}

/* Output extent of one spatial axis, or 0 when the (dilated) kernel does not fit. */
static int64_t qs_conv_nhwc_out_size(int64_t in, size_t pad0, size_t pad1, size_t kernel,
                                     size_t stride, size_t dilation) {
    const int64_t span = (int64_t)dilation * ((int64_t)kernel - 1) + 1;
    const int64_t padded = in + (int64_t)pad0 + (int64_t)pad1;
    if (padded < span)
        return 0;
    return (padded - span) / (int64_t)stride + 1;
}

static qs_status qs_conv_nhwc_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    const qs_conv_nhwc_params *p = n->params;
    if (!p)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "not initialized");
    const qs_view *x = &in[0], *w = &in[1];
    if (x->dtype != QS_DTYPE_FLOAT32 || x->rank != 4)
        return qs_node_error(err, QS_ERR_SHAPE, n, "input 0: expected a 4-D float32 NHWC tensor");
    if (w->dtype != QS_DTYPE_FLOAT32 || w->rank != 4)
        return qs_node_error(err, QS_ERR_SHAPE, n, "input 1: expected 4-D float32 OIHW weights");
    for (int32_t i = 0; i < 4; i++)
        if (x->dims[i] < 0 || x->dims[i] > ((int64_t)1 << 31) || w->dims[i] < 1 ||
            w->dims[i] > ((int64_t)1 << 28))
            return qs_node_error(err, QS_ERR_SHAPE, n, "dimension %d out of range", i);
    const int64_t group = (int64_t)p->shape.groups;
    const int64_t c = x->dims[3], o = w->dims[0];
    if (w->dims[1] * group != c || o % group != 0)
        return qs_node_error(err, QS_ERR_SHAPE, n,
                             "channels: input has %lld, weights %lld x group %lld -> %lld",
                             (long long)c, (long long)w->dims[1], (long long)group,
                             (long long)o);
    if (w->dims[2] != (int64_t)p->shape.kernel_h || w->dims[3] != (int64_t)p->shape.kernel_w)
        return qs_node_error(err, QS_ERR_SHAPE, n, "weights do not match kernel_shape");
    if (n->n_inputs > 2 && in[2].rank >= 0 && in[2].dtype != QS_DTYPE_UNDEFINED &&
        (in[2].dtype != QS_DTYPE_FLOAT32 || in[2].rank != 1 || in[2].dims[0] != o))
        return qs_node_error(err, QS_ERR_SHAPE, n, "input 2: bias must be float32 [%lld]",
                             (long long)o);
    const int64_t oh = qs_conv_nhwc_out_size(x->dims[1], p->shape.pad_top, p->pad_bottom,
                                             p->shape.kernel_h, p->shape.stride_h,
                                             p->shape.dilation_h);
    const int64_t ow = qs_conv_nhwc_out_size(x->dims[2], p->shape.pad_left, p->pad_right,
                                             p->shape.kernel_w, p->shape.stride_w,
                                             p->shape.dilation_w);
    if (oh < 1 || ow < 1)
        return qs_node_error(err, QS_ERR_SHAPE, n, "kernel larger than the padded input");
    out[0].dtype = QS_DTYPE_FLOAT32;
    out[0].rank = 4;
    memset(out[0].dims, 0, sizeof out[0].dims);
    out[0].dims[0] = x->dims[0];
    out[0].dims[1] = oh;
    out[0].dims[2] = ow;
    out[0].dims[3] = o;
    out[0].layout = QS_LAYOUT_NHWC;
    const qs_view *r = n->n_inputs > 3 ? &in[3] : NULL;
    if (r && r->rank >= 0 && r->dtype != QS_DTYPE_UNDEFINED) {
        if (r->dtype != QS_DTYPE_FLOAT32 || r->rank != 4)
            return qs_node_error(err, QS_ERR_SHAPE, n, "input 3: residual must be 4-D float32");
        for (int32_t i = 0; i < 4; i++)
            if (r->dims[i] != out[0].dims[i])
                return qs_node_error(err, QS_ERR_SHAPE, n,
                                     "input 3: residual dims differ from the output's");
    }
    return QS_OK;
}

static void qs_conv_nhwc_run_shape(const qs_conv_nhwc_params *p, const qs_view *in,
                                   const qs_view *out, qs_conv2d_shape *s) {
    *s = p->shape;
    s->n = (size_t)in[0].dims[0];
    s->in_h = (size_t)in[0].dims[1];
    s->in_w = (size_t)in[0].dims[2];
    s->in_c = (size_t)in[0].dims[3];
    s->out_h = (size_t)out[0].dims[1];
    s->out_w = (size_t)out[0].dims[2];
    s->out_c = (size_t)out[0].dims[3];
}

static qs_status qs_conv_nhwc_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_conv_nhwc_params *p = n->params;
    if (!p)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "not initialized");
    const qs_value *w = qs_node_input(g, n, 1);
    const qs_value *b = qs_node_input(g, n, 2);
    if (!w || !w->data || w->dtype != QS_DTYPE_FLOAT32 || w->rank != 4)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                             "input 1: weights must be a constant 4-D float32 tensor");
    if (b && (!b->data || b->dtype != QS_DTYPE_FLOAT32 || b->rank != 1 || b->dims[0] != w->dims[0]))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                             "input 2: bias must be a constant float32 [%lld]",
                             (long long)w->dims[0]);
    if (w->dims[0] < 1 || w->dims[1] < 1 || w->dims[0] > ((int64_t)1 << 28) ||
        w->dims[1] > ((int64_t)1 << 28) || w->dims[2] != (int64_t)p->shape.kernel_h ||
        w->dims[3] != (int64_t)p->shape.kernel_w)
        return qs_node_error(err, QS_ERR_SHAPE, n, "input 1: weights do not match kernel_shape");
    qs_conv2d_shape s = p->shape;
    s.out_c = (size_t)w->dims[0];
    s.in_c = (size_t)w->dims[1] * s.groups;
    if (s.out_c % s.groups != 0)
        return qs_node_error(err, QS_ERR_SHAPE, n, "output channels not divisible by group");
    qs_f32_conv2d_free(&p->conv);
    p->packed = false;
    qs_status st = qs_f32_conv2d_create(qs_engine_isa(), &s, w->data, b ? b->data : NULL, &p->conv);
    if (st != QS_OK)
        return qs_node_error(err, st, n, "packing the weights failed");
    p->shape = s;
    p->packed = true;
    return QS_OK;
}

static size_t qs_conv_nhwc_scratch_bytes(const qs_node *n, const qs_view *in, const qs_view *out,
                                         int32_t n_threads) {
    const qs_conv_nhwc_params *p = n->params;
    if (!p || !p->packed)
        return 0;
    qs_conv2d_shape s;
    qs_conv_nhwc_run_shape(p, in, out, &s);
    const size_t per = qs_f32_conv2d_scratch_bytes(&p->conv, &s);
    size_t total;
    if (__builtin_mul_overflow(per, (size_t)(n_threads > 0 ? n_threads : 1), &total))
        return SIZE_MAX;
    return total;
}

static qs_status qs_conv_nhwc_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    const qs_conv_nhwc_params *p = n->params;
    if (!p || !p->packed)
        return QS_ERR_INTERNAL;
    qs_conv2d_shape s;
    qs_conv_nhwc_run_shape(p, in, out, &s);
    if (s.in_c != p->conv.shape.in_c || s.out_c != p->conv.shape.out_c)
        return QS_ERR_INTERNAL;
    const size_t per = qs_f32_conv2d_scratch_bytes(&p->conv, &s);
    size_t need;
    if (__builtin_mul_overflow(per, (size_t)qs_threadpool_size(ctx->pool), &need) ||
        (need > 0 && (!ctx->scratch || ctx->scratch_bytes < need)))
        return QS_ERR_INTERNAL;
    const float *res = n->n_inputs > 3 && in[3].rank >= 0 ? in[3].data : NULL;
    qs_f32_conv2d_run(ctx->pool, &p->conv, &s, in[0].data, res, out[0].data, &p->act,
                      ctx->scratch);
    return QS_OK;
}

static uint64_t qs_conv_nhwc_packed_bytes(const qs_node *n) {
    const qs_conv_nhwc_params *p = n->params;
    return p && p->packed ? p->conv.bytes : 0;
}

/* run reads only the packed weights and bias (prepare's copies), never inputs 1 and 2. */
const qs_op qs_op_conv_nhwc = {
    .type = "ConvNHWC",
    .domain = "quantserve",
    .min_inputs = 2,
    .max_inputs = 4,
    .min_outputs = 1,
    .max_outputs = 1,
    .flags = QS_OP_RUN_SKIPS_CONSTANTS,
    .init = qs_conv_nhwc_init,
    .infer = qs_conv_nhwc_infer,
    .scratch_bytes = qs_conv_nhwc_scratch_bytes,
    .prepare = qs_conv_nhwc_prepare,
    .run = qs_conv_nhwc_run,
    .free_params = qs_conv_nhwc_free,
    .packed_bytes = qs_conv_nhwc_packed_bytes,
};
