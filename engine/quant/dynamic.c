/* Dynamic quantization: convolutions (all but depthwise) and Gemm/MatMul with constant weights
 * keep int8 per-channel weights; each run measures the input's range, quantizes it to uint8
 * (asymmetric), runs the u8 x s8 GEMM and returns float. The per-run scales are the point of this
 * mode, so they are computed per call, in the op's scratch. Depthwise convolutions stay float:
 * they are memory-bound and their padding would need a zero point known in advance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/optimize.h"
#include "core/rewrite.h"
#include "kernels/q8.h"
#include "ops/op_util.h"
#include "quant/quant.h"

typedef struct {
    /* conv geometry (conv only) */
    bool conv;
    qs_conv2d_geometry geo;
    qs_act act;
    bool per_tensor;
    int32_t qmax;             /* activations quantized to 0..qmax (127: reduce_range) */
    /* prepared */
    bool prepared;
    size_t out_c, k_group;    /* GEMM K per group */
    qs_q8_packed_b *packed;   /* one per group */
    float *w_scale;           /* out_c */
    float *bias;              /* out_c (zeros when absent) */
    size_t bytes;
} dynq_params;

static void dynq_free(void *p) {
    dynq_params *d = p;
    if (!d)
        return;
    for (int64_t g = 0; d->packed && g < d->geo.group; g++)
        qs_q8_packed_b_free(&d->packed[g]);
    free(d->packed);
    free(d->w_scale);
    free(d->bias);
    free(d);
}


static qs_status dynq_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    dynq_params *p = calloc(1, sizeof(*p));
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    n->params = p;
    p->conv = strcmp(n->op_type, "DynQConvNHWC") == 0;
    p->geo.group = 1;
    p->per_tensor = qs_node_attr_int(n, "per_tensor", 0) != 0;
    p->qmax = qs_node_attr_int(n, "qmax", 255) <= 127 ? 127 : 255;
    qs_status st = qs_node_get_act_attrs(n, &p->act, err);
    if (st != QS_OK)
        return st;
    if (!p->conv)
        return QS_OK;
    return qs_conv2d_geometry_parse(n, &p->geo, err);
}

static qs_status dynq_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    const dynq_params *p = n->params;
    const qs_view *x = &in[0], *w = &in[1];
    if (x->dtype != QS_DTYPE_FLOAT32 || w->dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "float input and weights expected");
    if (p->conv) {
        if (x->rank != 4 || w->rank != 4 || x->dims[3] != w->dims[1] * p->geo.group)
            return qs_node_error(err, QS_ERR_SHAPE, n, "NHWC input does not match the weights");
        int64_t oh, ow;
        if (!qs_conv2d_geometry_output(&p->geo, x->dims[1], x->dims[2], &oh, &ow))
            return qs_node_error(err, QS_ERR_SHAPE, n, "empty output");
        out[0] = *x;
        out[0].dims[1] = oh;
        out[0].dims[2] = ow;
        out[0].dims[3] = w->dims[0];
        out[0].layout = QS_LAYOUT_NHWC;
    } else {
        /* Weights as N x K (prepared so); A is [..., K]. */
        if (x->rank < 1 || w->rank != 2 || x->dims[x->rank - 1] != w->dims[1])
            return qs_node_error(err, QS_ERR_SHAPE, n, "A does not match the weights");
        qs_view_copy_shape(&out[0], x);
        out[0].dims[x->rank - 1] = w->dims[0];
    }
    out[0].data = NULL;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status dynq_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    dynq_params *p = n->params;
    const qs_value *w = qs_node_input(g, n, 1), *b = qs_node_input(g, n, 2);
    if (!w || w->kind != QS_VALUE_CONSTANT)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "weights must be constant");
    size_t oc = (size_t)w->dims[0], total = qs_value_numel(w), per = oc ? total / oc : 0;
    p->out_c = oc;
    p->k_group = per;
    float *wr = malloc(total * sizeof(float));
    int8_t *q = malloc(total);
    p->w_scale = malloc(oc * sizeof(float));
    p->bias = calloc(oc, sizeof(float));
    p->packed = calloc((size_t)p->geo.group, sizeof(qs_q8_packed_b));
    qs_status st = QS_OK;
    if (!wr || !q || !p->w_scale || !p->bias || !p->packed) {
        st = qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        goto done;
    }
    const float *src = w->data;
    if (p->conv) {
        /* OIHW -> O (kh kw i): the order of the im2col rows. */
        size_t ci = (size_t)w->dims[1], kh = (size_t)w->dims[2], kw = (size_t)w->dims[3];
        for (size_t o = 0; o < oc; o++)
            for (size_t c = 0; c < ci; c++)
                for (size_t y = 0; y < kh; y++)
                    for (size_t x = 0; x < kw; x++)
                        wr[o * per + (y * kw + x) * ci + c] = src[((o * ci + c) * kh + y) * kw + x];
    } else {
        memcpy(wr, src, total * sizeof(float));
    }
    qs_quantize_weights(wr, oc, per, p->per_tensor, q, p->w_scale);
    if (b && b->kind == QS_VALUE_CONSTANT && qs_value_numel(b) == oc)
        memcpy(p->bias, b->data, oc * sizeof(float));
    size_t ng = oc / (size_t)p->geo.group;
    for (int64_t gi = 0; gi < p->geo.group; gi++) {
        st = (p->qmax <= 127 ? qs_q8_pack_b_u7 : qs_q8_pack_b)(
            qs_engine_isa(), q + (size_t)gi * ng * per, per, ng, &p->packed[gi]);
        if (st != QS_OK) {
            qs_node_error(err, st, n, "cannot pack weights");
            goto done;
        }
        p->bytes += p->packed[gi].bytes;
    }
    p->prepared = true;
done:
    free(wr);
    free(q);
    return st;
}

static bool is_pointwise(const dynq_params *p) {
    return p->geo.kernel[0] == 1 && p->geo.kernel[1] == 1 && p->geo.strides[0] == 1 && p->geo.strides[1] == 1 &&
           p->geo.pads[0] == 0 && p->geo.pads[1] == 0 && p->geo.pads[2] == 0 && p->geo.pads[3] == 0 &&
           p->geo.group == 1;
}

/* Scratch: quantized input, im2col rows (conv, not pointwise), per-run scales and biases. */
static size_t dynq_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                           int32_t n_threads) {
    const dynq_params *p = n->params;
    (void)n_threads;
    size_t bytes = (qs_view_numel(&in[0]) + 63) & ~(size_t)63;
    if (p->conv && !is_pointwise(p)) {
        size_t rows = (size_t)(out[0].dims[0] * out[0].dims[1] * out[0].dims[2]);
        size_t k = (size_t)(p->geo.kernel[0] * p->geo.kernel[1] * (in[1].rank == 4 ? in[1].dims[1] : 0));
        bytes += (rows * k + 63) & ~(size_t)63;
    }
    size_t oc = (size_t)in[1].dims[0];
    return bytes + oc * (sizeof(float) + sizeof(int32_t)) + 64;
}

/* One group's im2col rows (kh, kw, c order) from uint8 NHWC input; padding reads as zero. With
 * the whole channel range and no horizontal dilation a kernel row is one copy. */
static void im2col_u8(const dynq_params *p, const qs_view *x, const qs_view *y, const uint8_t *xq,
                      int64_t g, size_t cg, uint8_t zero, uint8_t *rows) {
    int64_t n = x->dims[0], h = x->dims[1], w = x->dims[2], c = x->dims[3];
    int64_t oh = y->dims[1], ow = y->dims[2];
    int64_t kh = p->geo.kernel[0], kw = p->geo.kernel[1];
    size_t k = (size_t)(kh * kw) * cg;
    bool runs = p->geo.dilations[1] == 1 && (int64_t)cg == c;
    for (int64_t b = 0; b < n; b++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                uint8_t *row = rows + (size_t)((b * oh + oy) * ow + ox) * k;
                int64_t ix0 = ox * p->geo.strides[1] - p->geo.pads[1];
                for (int64_t ky = 0; ky < kh; ky++) {
                    int64_t iy = oy * p->geo.strides[0] - p->geo.pads[0] + ky * p->geo.dilations[0];
                    uint8_t *dst = row + (size_t)(ky * kw) * cg;
                    if (iy < 0 || iy >= h) {
                        memset(dst, zero, (size_t)kw * cg);
                        continue;
                    }
                    const uint8_t *src = xq + ((b * h + iy) * w) * c + g * (int64_t)cg;
                    if (runs) {
                        int64_t k0 = ix0 < 0 ? -ix0 : 0, k1 = w - ix0 < kw ? w - ix0 : kw;
                        k0 = k0 < kw ? k0 : kw;
                        k1 = k1 > k0 ? k1 : k0;
                        memset(dst, zero, (size_t)k0 * cg);
                        if (k1 > k0)
                            memcpy(dst + (size_t)k0 * cg, src + (ix0 + k0) * c,
                                   (size_t)(k1 - k0) * cg);
                        memset(dst + (size_t)k1 * cg, zero, (size_t)(kw - k1) * cg);
                        continue;
                    }
                    for (int64_t kx = 0; kx < kw; kx++) {
                        int64_t ix = ix0 + kx * p->geo.dilations[1];
                        if (ix < 0 || ix >= w)
                            memset(dst + (size_t)kx * cg, zero, cg);
                        else
                            memcpy(dst + (size_t)kx * cg, src + ix * c, cg);
                    }
                }
            }
}

static qs_status dynq_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    const dynq_params *p = n->params;
    if (!p->prepared)
        return QS_ERR_INTERNAL;
    size_t count = qs_view_numel(&in[0]);
    float lo = 0.0f, hi = 0.0f, scale;
    int32_t zero;
    if (count)
        qs_f32_minmax(in[0].data, count, &lo, &hi);
    qs_quant_params_from_range(lo, hi, false, p->qmax, &scale, &zero);
    uint8_t *xq = ctx->scratch;
    size_t off = (count + 63) & ~(size_t)63;
    qs_q8_quantize_max(in[0].data, count, scale, zero, p->qmax, xq);
    uint8_t *rows = NULL;
    if (p->conv && !is_pointwise(p)) {
        rows = (uint8_t *)ctx->scratch + off;
        size_t nrows = (size_t)(out[0].dims[0] * out[0].dims[1] * out[0].dims[2]);
        off += (nrows * p->k_group + 63) & ~(size_t)63;
    }
    float *rq_scale = (float *)((uint8_t *)ctx->scratch + off);
    int32_t *rq_bias = (int32_t *)(rq_scale + p->out_c);
    for (size_t o = 0; o < p->out_c; o++) {
        rq_scale[o] = scale * p->w_scale[o];
        double bq = nearbyint((double)p->bias[o] / (double)rq_scale[o]);
        rq_bias[o] = bq > 2147483647.0 ? INT32_MAX : bq < -2147483648.0 ? INT32_MIN : (int32_t)bq;
    }
    size_t ng = p->out_c / (size_t)p->geo.group;
    size_t m = p->conv ? (size_t)(out[0].dims[0] * out[0].dims[1] * out[0].dims[2])
                       : (p->k_group ? count / p->k_group : 0);
    for (int64_t g = 0; g < p->geo.group; g++) {
        const uint8_t *a = xq;
        size_t lda = p->k_group;
        if (rows) {
            size_t cg = (size_t)in[0].dims[3] / (size_t)p->geo.group;
            im2col_u8(p, &in[0], &out[0], xq, g, cg, (uint8_t)zero, rows);
            a = rows;
        }
        qs_q8_requant rq = {rq_bias + (size_t)g * ng, rq_scale + (size_t)g * ng, 0, 0, 255};
        qs_q8_gemm_f32(ctx->pool, m, a, lda, zero, &p->packed[g], &rq, &p->act,
                       (float *)out[0].data + (size_t)g * ng, p->out_c);
    }
    return QS_OK;
}

static uint64_t dynq_packed(const qs_node *n) {
    const dynq_params *p = n->params;
    return p && p->prepared ? p->bytes + p->out_c * 2 * sizeof(float) : 0;
}

const qs_op qs_op_dynq_conv_nhwc = {
    .type = "DynQConvNHWC", .domain = QS_QDOMAIN, .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = dynq_init, .infer = dynq_infer,
    .scratch_bytes = dynq_scratch, .prepare = dynq_prepare, .run = dynq_run,
    .free_params = dynq_free, .packed_bytes = dynq_packed,
};

const qs_op qs_op_dynq_gemm = {
    .type = "DynQGemm", .domain = QS_QDOMAIN, .min_inputs = 2, .max_inputs = 3,
    .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = dynq_init, .infer = dynq_infer,
    .scratch_bytes = dynq_scratch, .prepare = dynq_prepare, .run = dynq_run,
    .free_params = dynq_free, .packed_bytes = dynq_packed,
};

static bool kept(const qs_quant_options *o, const qs_node *n) {
    for (size_t i = 0; o && i < o->keep_fp32_count; i++)
        if (strcmp(o->keep_fp32[i], n->name) == 0 || strcmp(o->keep_fp32[i], n->op_type) == 0 ||
            (strcmp(o->keep_fp32[i], "Conv") == 0 && strcmp(n->op_type, "ConvNHWC") == 0))
            return true;
    return false;
}

/* A Gemm/MatMul weight as a new N x K constant (transposed from K x N when needed). */
static int32_t weight_nk(qs_graph *g, int32_t v, bool is_nk) {
    const qs_value *w = g->values[v];
    if (is_nk)
        return v;
    int64_t dims[2] = {w->dims[1], w->dims[0]};
    int32_t nv = qs_graph_add_const_f32(g, w->name, "_nk", 2, dims);
    if (nv < 0)
        return -1;
    w = g->values[v];
    const float *src = w->data;
    float *dst = g->values[nv]->data;
    size_t k = (size_t)w->dims[0], nn = (size_t)w->dims[1];
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < nn; j++)
            dst[j * k + i] = src[i * nn + j];
    return nv;
}

qs_status qs_pass_dynamic(qs_graph *g, const qs_quant_options *o, qs_error *err) {
    qs_status st;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (n->dead || kept(o, n))
            continue;
        if (n->domain && strcmp(n->domain, QS_QDOMAIN) == 0 && strcmp(n->op_type, "ConvNHWC") == 0) {
            if (n->n_inputs > 3 && n->inputs[3] >= 0)
                continue; /* residual fused: loaded without residual fusion, so not expected */
            const qs_value *w = g->values[n->inputs[1]];
            int64_t group = qs_node_attr_int(n, "group", 1);
            if (group > 1 && group == w->dims[0] && w->dims[1] == 1)
                continue; /* depthwise stays float */
            if (qs_node_set_type(n, QS_QDOMAIN, "DynQConvNHWC") != QS_OK ||
                qs_node_set_attr_int(n, "per_tensor", o && o->per_tensor_weights) != QS_OK ||
                qs_node_set_attr_int(n, "qmax", qs_quant_act_qmax(o)) != QS_OK)
                return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
            n->n_inputs = n->n_inputs > 3 ? 3 : n->n_inputs;
        } else if (qs_node_is(n, "Gemm") || qs_node_is(n, "MatMul")) {
            bool gemm = qs_node_is(n, "Gemm");
            int32_t b = n->inputs[1];
            if (!qs_value_is_const(g, b) || g->values[b]->dtype != QS_DTYPE_FLOAT32 ||
                g->values[b]->rank != 2)
                continue;
            if (gemm && (qs_node_attr_int(n, "transA", 0) || qs_node_attr_float(n, "alpha", 1) != 1.0f ||
                         qs_node_attr_float(n, "beta", 1) != 1.0f))
                continue;
            bool is_nk = gemm && qs_node_attr_int(n, "transB", 0);
            size_t nn = (size_t)g->values[b]->dims[is_nk ? 0 : 1];
            int32_t c = gemm && n->n_inputs > 2 ? n->inputs[2] : -1;
            if (c >= 0 && (!qs_value_is_const(g, c) || g->values[c]->dtype != QS_DTYPE_FLOAT32 ||
                           qs_value_numel(g->values[c]) != nn))
                continue;
            int32_t wv = weight_nk(g, b, is_nk);
            if (wv < 0)
                return qs_error_set(err, QS_ERR_NO_MEMORY, "dynamic quantization", "out of memory");
            n = &g->nodes[i];
            int32_t ins[3] = {n->inputs[0], wv, c}, outs[1] = {n->outputs[0]};
            if (qs_node_set_type(n, QS_QDOMAIN, "DynQGemm") != QS_OK ||
                qs_node_set_io(n, c >= 0 ? 3 : 2, ins, 1, outs) != QS_OK ||
                qs_node_set_attr_int(n, "per_tensor", o && o->per_tensor_weights) != QS_OK ||
                qs_node_set_attr_int(n, "qmax", qs_quant_act_qmax(o)) != QS_OK)
                return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        } else {
            continue;
        }
        st = qs_node_bind(g, &g->nodes[i], err);
        if (st != QS_OK)
            return st;
    }
    return QS_OK;
}
