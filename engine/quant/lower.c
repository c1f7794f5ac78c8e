/* QDQ lowering: DequantizeLinear -> op -> QuantizeLinear patterns become int8 operators that run
 * on uint8 activations end to end. Pre-quantized models and our own static quantization (which
 * inserts Q/DQ pairs) share this pass. Patterns that do not match stay in float. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optimize.h"
#include "core/rewrite.h"
#include "quant/quant.h"

/* A DequantizeLinear producing a value. */
typedef struct {
    int32_t node, q, scale, zero;
} dq_ref;

static bool find_dq(const qs_graph *g, int32_t v, dq_ref *r) {
    if (v < 0 || g->values[v]->producer < 0)
        return false;
    const qs_node *n = &g->nodes[g->values[v]->producer];
    if (!qs_node_is(n, "DequantizeLinear") || n->n_inputs < 2)
        return false;
    r->node = g->values[v]->producer;
    r->q = n->inputs[0];
    r->scale = n->inputs[1];
    r->zero = n->n_inputs > 2 ? n->inputs[2] : -1;
    return true;
}

/* A per-tensor uint8 activation DQ with constant parameters. */
static bool act_dq(const qs_graph *g, int32_t v, dq_ref *r, float *s, int32_t *z) {
    return find_dq(g, v, r) && g->values[r->q]->dtype == QS_DTYPE_UINT8 &&
           !qs_value_is_const(g, r->q) && qs_const_scalar_f32(g, r->scale, s) &&
           qs_const_scalar_int(g, r->zero, z);
}

static int32_t sole_consumer(const qs_graph *g, int32_t v) {
    const qs_value *val = g->values[v];
    if (val->n_consumers != 1 || val->is_output)
        return -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == v)
                return (int32_t)i;
    }
    return -1;
}

/* Output side: v -> [Relu|Clip] -> QuantizeLinear(per-tensor uint8, constant). */
typedef struct {
    int32_t act_node, q_node, out;
    float scale;
    int32_t zero, qmin, qmax;
} q_tail;

static bool find_q_tail(const qs_graph *g, int32_t v, q_tail *t) {
    qs_act act = {0};
    t->act_node = -1;
    int32_t c = sole_consumer(g, v);
    if (c >= 0 && qs_node_activation(g, &g->nodes[c], &act) &&
        (act.kind == QS_ACT_RELU || act.kind == QS_ACT_CLIP)) {
        t->act_node = c;
        c = sole_consumer(g, g->nodes[c].outputs[0]);
    } else {
        act.kind = QS_ACT_NONE;
    }
    if (c < 0)
        return false;
    const qs_node *q = &g->nodes[c];
    if (!qs_node_is(q, "QuantizeLinear") || q->n_inputs < 2 ||
        !qs_const_scalar_f32(g, q->inputs[1], &t->scale) ||
        !qs_const_scalar_int(g, q->n_inputs > 2 ? q->inputs[2] : -1, &t->zero) ||
        g->values[q->outputs[0]]->dtype != QS_DTYPE_UINT8 || !(t->scale > 0.0f))
        return false;
    t->q_node = c;
    t->out = q->outputs[0];
    t->qmin = 0;
    t->qmax = 255;
    if (act.kind == QS_ACT_RELU) {
        t->qmin = t->zero;
    } else if (act.kind == QS_ACT_CLIP) {
        float lo = nearbyintf(act.min / t->scale) + (float)t->zero;
        float hi = nearbyintf(act.max / t->scale) + (float)t->zero;
        t->qmin = isfinite(lo) && lo > 0.0f ? (int32_t)fminf(lo, 255.0f) : 0;
        t->qmax = isfinite(hi) && hi < 255.0f ? (int32_t)fmaxf(hi, 0.0f) : 255;
    }
    /* Our static quantization's 7-bit activations: the Q's own bound (internal attribute). */
    int64_t cap = qs_node_attr_int(q, "qmax", 255);
    t->qmax = cap >= 0 && cap < t->qmax ? (int32_t)cap : t->qmax;
    t->qmin = t->qmin < t->qmax ? t->qmin : t->qmax;
    return true;
}

static int32_t add_const(qs_graph *g, const char *base, const char *suffix, qs_dtype dtype,
                         int32_t rank, const int64_t *dims) {
    char name[256];
    snprintf(name, sizeof(name), "%.200s%s", base, suffix);
    int32_t idx = qs_graph_add_value(g, name);
    if (idx < 0)
        return -1;
    qs_value *v = g->values[idx];
    v->kind = QS_VALUE_CONSTANT;
    v->dtype = dtype;
    qs_value_set_shape(v, rank, dims);
    return qs_value_alloc_data(v) == QS_OK ? idx : -1;
}

static int32_t add_scalar_f32(qs_graph *g, const char *base, const char *suffix, float x) {
    int32_t v = add_const(g, base, suffix, QS_DTYPE_FLOAT32, 0, NULL);
    if (v >= 0)
        *(float *)g->values[v]->data = x;
    return v;
}

static int32_t add_scalar_u8(qs_graph *g, const char *base, const char *suffix, int32_t x) {
    int32_t v = add_const(g, base, suffix, QS_DTYPE_UINT8, 0, NULL);
    if (v >= 0)
        *(uint8_t *)g->values[v]->data = (uint8_t)x;
    return v;
}

/* A weight given as DQ(constant) or as a float constant, as `rows` x `cols` (rows = output
 * channels): float values for a float constant, exact int8 values for a quantized one.
 * transpose: the tensor is stored cols x rows (Gemm without transB). */
typedef struct {
    float *f;          /* float weights only: malloc'ed rows x cols floats */
    int8_t *exact_q;   /* when the source is quantized: rows x cols, w - zero - offset[row] */
    float *exact_scale;
    size_t n_exact_scale;
    int32_t *offset;   /* rows values when a row's w - zero does not fit int8, else NULL */
} weight_src;

static void weight_src_free(weight_src *w) {
    free(w->f);
    free(w->exact_q);
    free(w->exact_scale);
    free(w->offset);
}

/* Row r of exact_q from v = w - zero (cols values): as it is when it fits int8, else shifted by
 * an offset the kernels add back exactly (an 8-bit source spans at most 255, so one fits). */
static bool weight_exact_row(weight_src *w, size_t rows, size_t r, size_t cols, const int32_t *v) {
    int32_t lo = 0, hi = 0, d = 0;
    for (size_t j = 0; j < cols; j++) {
        lo = v[j] < lo ? v[j] : lo;
        hi = v[j] > hi ? v[j] : hi;
    }
    if (hi > 127)
        d = hi - 127;
    else if (lo < -128)
        d = lo + 128;
    if (d != 0 && !w->offset && !(w->offset = calloc(rows, sizeof(int32_t))))
        return false;
    if (w->offset)
        w->offset[r] = d;
    for (size_t j = 0; j < cols; j++)
        w->exact_q[r * cols + j] = (int8_t)(v[j] - d);
    return true;
}

/* Quantized weights kept exact, whatever their type and zero points: q (int8 or uint8, rows x cols,
 * or cols x rows when transposed) minus its zero point z (int8 or uint8, one or one per row; NULL
 * for 0) into exact_q with per-row offsets where needed, and s's scales (one or one per row, all
 * checked by the caller) into exact_scale. */
static bool weight_exact(weight_src *w, const qs_value *q, const qs_value *s, const qs_value *z,
                         size_t rows, size_t cols, bool transpose) {
    size_t ns = qs_value_numel(s), nz = z ? qs_value_numel(z) : 0;
    w->exact_q = malloc(rows * cols);
    w->exact_scale = malloc(ns * sizeof(float));
    w->n_exact_scale = ns;
    int32_t *vrow = malloc(cols * sizeof(int32_t));
    bool ok = w->exact_q && w->exact_scale && vrow;
    if (ok)
        memcpy(w->exact_scale, s->data, ns * sizeof(float));
    for (size_t r = 0; r < rows && ok; r++) {
        int32_t zp = 0;
        if (nz)
            zp = z->dtype == QS_DTYPE_INT8 ? ((const int8_t *)z->data)[nz == 1 ? 0 : r]
                                           : ((const uint8_t *)z->data)[nz == 1 ? 0 : r];
        for (size_t j = 0; j < cols; j++) {
            size_t src = transpose ? j * rows + r : r * cols + j;
            vrow[j] = (q->dtype == QS_DTYPE_INT8 ? ((const int8_t *)q->data)[src]
                                                 : ((const uint8_t *)q->data)[src]) - zp;
        }
        ok = weight_exact_row(w, rows, r, cols, vrow);
    }
    free(vrow);
    return ok;
}

static bool weight_load(const qs_graph *g, int32_t v, size_t rows, size_t cols, bool transpose,
                        weight_src *w) {
    dq_ref r;
    const qs_value *q = NULL, *s = NULL, *z = NULL;
    memset(w, 0, sizeof(*w));
    if (qs_value_is_const(g, v) && g->values[v]->dtype == QS_DTYPE_FLOAT32) {
        if (qs_value_numel(g->values[v]) != rows * cols)
            return false;
    } else if (find_dq(g, v, &r) && qs_value_is_const(g, r.q) && qs_value_is_const(g, r.scale) &&
               (r.zero < 0 || qs_value_is_const(g, r.zero))) {
        q = g->values[r.q];
        s = g->values[r.scale];
        z = r.zero >= 0 ? g->values[r.zero] : NULL;
        if (qs_value_numel(q) != rows * cols || s->dtype != QS_DTYPE_FLOAT32 ||
            (q->dtype != QS_DTYPE_INT8 && q->dtype != QS_DTYPE_UINT8))
            return false;
    } else {
        return false;
    }
    size_t ns = s ? qs_value_numel(s) : 0, nz = z ? qs_value_numel(z) : 0;
    /* Per-axis scales and zero points must run along the output channels: axis 0 stored
     * rows-first, 1 if transposed. */
    if ((s && ns != 1 && ns != rows) || (nz > 1 && nz != rows) ||
        (z && z->dtype != QS_DTYPE_UINT8 && z->dtype != QS_DTYPE_INT8))
        return false;
    if (q)
        return weight_exact(w, q, s, z, rows, cols, transpose);
    w->f = malloc(rows * cols * sizeof(float));
    if (!w->f)
        return false;
    const float *f = g->values[v]->data;
    for (size_t r0 = 0; r0 < rows; r0++)
        for (size_t c = 0; c < cols; c++)
            w->f[r0 * cols + c] = f[transpose ? c * rows + r0 : r0 * cols + c];
    return true;
}

/* Add the int8 weight, scale and (with offsets) int32 zero point constants for a weight; *wz is
 * -1 without offsets; *scales (n_scales of them) points at the new scales unless scales is NULL.
 * Returns false on failure. */
static bool weight_consts(qs_graph *g, const char *name, const weight_src *w, size_t rows,
                          size_t cols, int32_t rank, const int64_t *dims, int32_t *wq,
                          int32_t *ws, int32_t *wz, const float **scales, size_t *n_scales) {
    size_t ns = w->exact_q ? w->n_exact_scale : rows;
    int64_t sdims[1] = {(int64_t)ns}, zdims[1] = {(int64_t)rows};
    *wq = add_const(g, name, "_int8", QS_DTYPE_INT8, rank, dims);
    *ws = *wq < 0 ? -1 : add_const(g, name, "_wscale", QS_DTYPE_FLOAT32, ns == 1 ? 0 : 1, sdims);
    *wz = -1;
    if (*wq < 0 || *ws < 0)
        return false;
    if (w->offset) {
        *wz = add_const(g, name, "_wzero", QS_DTYPE_INT32, 1, zdims);
        if (*wz < 0)
            return false;
        int32_t *zd = g->values[*wz]->data;
        for (size_t r = 0; r < rows; r++)
            zd[r] = -w->offset[r]; /* |offset| <= 255 */
    }
    int8_t *qd = g->values[*wq]->data;
    float *sd = g->values[*ws]->data;
    if (w->exact_q) {
        memcpy(qd, w->exact_q, rows * cols);
        memcpy(sd, w->exact_scale, ns * sizeof(float));
    } else {
        /* Float weights: symmetric per-channel int8. */
        qs_quantize_weights(w->f, rows, cols, false, qd, sd);
    }
    if (scales) {
        *scales = sd;
        *n_scales = ns;
    }
    return true;
}

/* int32 bias for the int8 accumulator: reuse a DQ(int32) bias when its scale is exactly the
 * accumulator's, else quantize the float bias at input_scale * weight_scale. */
static int32_t bias_const(qs_graph *g, int32_t bv, const char *name, size_t n, float xs,
                          const float *ws, size_t nws) {
    if (bv < 0)
        return -1;
    float *bf = malloc(n * sizeof(float));
    if (!bf)
        return -2;
    dq_ref r;
    const qs_value *bval = g->values[bv];
    bool ok = false;
    if (qs_value_is_const(g, bv) && bval->dtype == QS_DTYPE_FLOAT32 && qs_value_numel(bval) == n) {
        memcpy(bf, bval->data, n * sizeof(float));
        ok = true;
    } else if (find_dq(g, bv, &r) && qs_value_is_const(g, r.q) && qs_value_is_const(g, r.scale) &&
               g->values[r.q]->dtype == QS_DTYPE_INT32 && qs_value_numel(g->values[r.q]) == n) {
        const int32_t *q = g->values[r.q]->data;
        const qs_value *s = g->values[r.scale];
        size_t ns = qs_value_numel(s);
        if (s->dtype == QS_DTYPE_FLOAT32 && (ns == 1 || ns == n)) {
            for (size_t i = 0; i < n; i++)
                bf[i] = (float)q[i] * ((const float *)s->data)[ns == 1 ? 0 : i];
            ok = true;
        }
    }
    if (!ok) {
        free(bf);
        return -2;
    }
    int64_t dims[1] = {(int64_t)n};
    int32_t out = add_const(g, name, "_bias_int32", QS_DTYPE_INT32, 1, dims);
    if (out >= 0) {
        int32_t *bq = g->values[out]->data;
        for (size_t i = 0; i < n; i++) {
            double acc_scale = (double)xs * (double)ws[nws == 1 ? 0 : i];
            double q = nearbyint((double)bf[i] / acc_scale);
            bq[i] = q > 2147483647.0 ? INT32_MAX : q < -2147483648.0 ? INT32_MIN : (int32_t)q;
        }
    }
    free(bf);
    return out;
}

static qs_status set_clamp(qs_node *n, int32_t qmin, int32_t qmax) {
    qs_status st = qs_node_set_attr_int(n, "qmin", qmin);
    return st == QS_OK ? qs_node_set_attr_int(n, "qmax", qmax) : st;
}

static qs_status oom(qs_error *err) {
    return qs_error_set(err, QS_ERR_NO_MEMORY, "quantization", "out of memory");
}


static qs_status lower_conv(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    dq_ref xr;
    float xs;
    int32_t xz;
    if (c->n_outputs != 1 || c->n_inputs < 2 || !act_dq(g, c->inputs[0], &xr, &xs, &xz))
        return QS_OK;
    const qs_value *xv = g->values[c->inputs[0]], *wv = g->values[c->inputs[1]];
    dq_ref wr;
    const qs_value *wshape = wv;
    if (!qs_value_is_const(g, c->inputs[1])) {
        if (!find_dq(g, c->inputs[1], &wr))
            return QS_OK;
        wshape = g->values[wr.q];
    }
    if (wshape->rank != 4 || xv->rank != 4)
        return QS_OK;
    int64_t k[2] = {wshape->dims[2], wshape->dims[3]}, s[2], d[2], pads[4];
    if (!qs_node_ints2(c, "strides", s) || !qs_node_ints2(c, "dilations", d) ||
        !qs_conv_pads(c, xv, k, s, d, pads))
        return QS_OK;
    int64_t group = qs_node_attr_int(c, "group", 1);
    size_t oc = (size_t)wshape->dims[0], per = oc ? qs_value_numel(wshape) / oc : 0;
    weight_src w;
    if (!weight_load(g, c->inputs[1], oc, per, false, &w)) {
        weight_src_free(&w);
        return QS_OK;
    }
    q_tail t;
    bool u8_out = find_q_tail(g, c->outputs[0], &t);
    qs_act act = {0};
    int32_t act_node = -1, out = c->outputs[0];
    if (!u8_out) {
        int32_t a = sole_consumer(g, c->outputs[0]);
        if (a >= 0 && qs_node_activation(g, &g->nodes[a], &act)) {
            act_node = a;
            out = g->nodes[a].outputs[0];
        } else {
            act.kind = QS_ACT_NONE;
        }
    }
    char name[200];
    snprintf(name, sizeof(name), "%.180s", c->name);
    int32_t wq, ws, wz;
    const float *scales;
    size_t n_scales;
    int64_t wdims[4] = {wshape->dims[0], wshape->dims[1], wshape->dims[2], wshape->dims[3]};
    bool ok = weight_consts(g, name, &w, oc, per, 4, wdims, &wq, &ws, &wz, &scales, &n_scales);
    weight_src_free(&w);
    if (!ok)
        return oom(err);
    c = &g->nodes[ci];
    int32_t bias = bias_const(g, c->n_inputs > 2 ? c->inputs[2] : -1, name, oc, xs, scales, n_scales);
    if (bias == -2)
        return QS_OK; /* a bias we cannot read: leave the conv in float */
    int32_t xsv = add_scalar_f32(g, name, "_xscale", xs), xzv = add_scalar_u8(g, name, "_xzero", xz);
    int32_t ysv = -1, yzv = -1;
    if (u8_out) {
        ysv = add_scalar_f32(g, name, "_yscale", t.scale);
        yzv = add_scalar_u8(g, name, "_yzero", t.zero);
        out = t.out;
    }
    if (xsv < 0 || xzv < 0 || (u8_out && (ysv < 0 || yzv < 0)))
        return oom(err);
    int32_t ni = qs_graph_add_node(g, "QLinearConvNHWC", name);
    if (ni < 0)
        return oom(err);
    qs_node *q = &g->nodes[ni];
    c = &g->nodes[ci];
    int32_t ins[9] = {xr.q, xsv, xzv, wq, ws, wz, ysv, yzv, bias};
    int32_t outs[1] = {out};
    if (qs_node_set_type(q, QS_QDOMAIN, "QLinearConvNHWC") != QS_OK ||
        qs_node_set_io(q, 9, ins, 1, outs) != QS_OK ||
        qs_node_set_attr_ints(q, "kernel_shape", k, 2) != QS_OK ||
        qs_node_set_attr_ints(q, "strides", s, 2) != QS_OK ||
        qs_node_set_attr_ints(q, "dilations", d, 2) != QS_OK ||
        qs_node_set_attr_ints(q, "pads", pads, 4) != QS_OK ||
        qs_node_set_attr_int(q, "group", group) != QS_OK ||
        set_clamp(q, u8_out ? t.qmin : 0, u8_out ? t.qmax : 255) != QS_OK ||
        qs_node_set_act_attrs(q, &act) != QS_OK)
        return oom(err);
    c->dead = true;
    if (u8_out) {
        g->nodes[t.q_node].dead = true;
        if (t.act_node >= 0)
            g->nodes[t.act_node].dead = true;
    } else if (act_node >= 0) {
        g->nodes[act_node].dead = true;
    }
    qs_status st = qs_node_bind(g, &g->nodes[ni], err);
    qs_graph_link(g);
    return st;
}

/* Gemm (alpha = beta = 1, no transA) and MatMul with a constant 2-D B. */
static qs_status lower_gemm(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    bool gemm = qs_node_is(c, "Gemm");
    dq_ref ar, br;
    float as;
    int32_t az;
    if (c->n_outputs != 1 || c->n_inputs < 2 || !act_dq(g, c->inputs[0], &ar, &as, &az))
        return QS_OK;
    if (gemm && (qs_node_attr_int(c, "transA", 0) != 0 ||
                 qs_node_attr_float(c, "alpha", 1.0f) != 1.0f ||
                 qs_node_attr_float(c, "beta", 1.0f) != 1.0f))
        return QS_OK;
    bool trans_b = gemm && qs_node_attr_int(c, "transB", 0) != 0;
    const qs_value *bshape = g->values[c->inputs[1]];
    if (!qs_value_is_const(g, c->inputs[1])) {
        if (!find_dq(g, c->inputs[1], &br))
            return QS_OK;
        bshape = g->values[br.q];
    }
    if (bshape->rank != 2 || g->values[ar.q]->rank < 1 || (gemm && g->values[ar.q]->rank != 2))
        return QS_OK;
    size_t nn = (size_t)(trans_b ? bshape->dims[0] : bshape->dims[1]);
    size_t kk = (size_t)(trans_b ? bshape->dims[1] : bshape->dims[0]);
    weight_src w;
    if (!weight_load(g, c->inputs[1], nn, kk, !trans_b, &w)) {
        weight_src_free(&w);
        return QS_OK;
    }
    q_tail t;
    bool u8_out = find_q_tail(g, c->outputs[0], &t);
    if (u8_out && t.act_node >= 0) {
        weight_src_free(&w);
        return QS_OK; /* keep it simple: clamps after a Gemm stay float */
    }
    char name[200];
    snprintf(name, sizeof(name), "%.180s", c->name);
    int32_t wq, ws, wz;
    const float *scales;
    size_t n_scales;
    int64_t wdims[2] = {(int64_t)nn, (int64_t)kk};
    bool ok = weight_consts(g, name, &w, nn, kk, 2, wdims, &wq, &ws, &wz, &scales, &n_scales);
    weight_src_free(&w);
    if (!ok)
        return oom(err);
    c = &g->nodes[ci];
    int32_t bias = gemm && c->n_inputs > 2 ? bias_const(g, c->inputs[2], name, nn, as, scales,
                                                        n_scales)
                                           : -1;
    if (bias == -2)
        return QS_OK;
    int32_t asv = add_scalar_f32(g, name, "_ascale", as), azv = add_scalar_u8(g, name, "_azero", az);
    int32_t ysv = -1, yzv = -1, out = c->outputs[0];
    if (u8_out) {
        ysv = add_scalar_f32(g, name, "_yscale", t.scale);
        yzv = add_scalar_u8(g, name, "_yzero", t.zero);
        out = t.out;
    }
    int32_t ni = qs_graph_add_node(g, "QGemm", name);
    if (ni < 0 || asv < 0 || azv < 0)
        return oom(err);
    qs_node *q = &g->nodes[ni];
    int32_t ins[9] = {ar.q, asv, azv, wq, ws, wz, ysv, yzv, bias};
    int32_t outs[1] = {out};
    if (qs_node_set_type(q, QS_QDOMAIN, "QGemm") != QS_OK ||
        qs_node_set_io(q, 9, ins, 1, outs) != QS_OK ||
        (u8_out && set_clamp(q, t.qmin, t.qmax) != QS_OK))
        return oom(err);
    g->nodes[ci].dead = true;
    if (u8_out)
        g->nodes[t.q_node].dead = true;
    qs_status st = qs_node_bind(g, &g->nodes[ni], err);
    qs_graph_link(g);
    return st;
}

static qs_status lower_add(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    dq_ref ar, br;
    float as, bs;
    int32_t az, bz;
    q_tail t;
    if (c->n_inputs != 2 || !act_dq(g, c->inputs[0], &ar, &as, &az) ||
        !act_dq(g, c->inputs[1], &br, &bs, &bz) ||
        !qs_value_same_dims(g->values[ar.q], g->values[br.q]) ||
        !find_q_tail(g, c->outputs[0], &t))
        return QS_OK;
    char name[200];
    snprintf(name, sizeof(name), "%.180s", c->name);
    int32_t v[6] = {add_scalar_f32(g, name, "_ascale", as), add_scalar_u8(g, name, "_azero", az),
                    add_scalar_f32(g, name, "_bscale", bs), add_scalar_u8(g, name, "_bzero", bz),
                    add_scalar_f32(g, name, "_yscale", t.scale),
                    add_scalar_u8(g, name, "_yzero", t.zero)};
    for (int i = 0; i < 6; i++)
        if (v[i] < 0)
            return oom(err);
    int32_t ni = qs_graph_add_node(g, "QLinearAdd", name);
    if (ni < 0)
        return oom(err);
    qs_node *q = &g->nodes[ni];
    int32_t ins[8] = {ar.q, v[0], v[1], br.q, v[2], v[3], v[4], v[5]};
    int32_t outs[1] = {t.out};
    if (qs_node_set_type(q, QS_QDOMAIN, "QLinearAdd") != QS_OK ||
        qs_node_set_io(q, 8, ins, 1, outs) != QS_OK || set_clamp(q, t.qmin, t.qmax) != QS_OK)
        return oom(err);
    g->nodes[ci].dead = true;
    g->nodes[t.q_node].dead = true;
    if (t.act_node >= 0)
        g->nodes[t.act_node].dead = true;
    qs_status st = qs_node_bind(g, &g->nodes[ni], err);
    qs_graph_link(g);
    return st;
}

static qs_status lower_gap(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    dq_ref xr;
    float xs;
    int32_t xz;
    q_tail t;
    if (!act_dq(g, c->inputs[0], &xr, &xs, &xz) || g->values[xr.q]->rank != 4 ||
        !find_q_tail(g, c->outputs[0], &t) || t.act_node >= 0)
        return QS_OK;
    char name[200];
    snprintf(name, sizeof(name), "%.180s", c->name);
    int32_t v[4] = {add_scalar_f32(g, name, "_xscale", xs), add_scalar_u8(g, name, "_xzero", xz),
                    add_scalar_f32(g, name, "_yscale", t.scale),
                    add_scalar_u8(g, name, "_yzero", t.zero)};
    for (int i = 0; i < 4; i++)
        if (v[i] < 0)
            return oom(err);
    int32_t ni = qs_graph_add_node(g, "QLinearGlobalAveragePoolNHWC", name);
    if (ni < 0)
        return oom(err);
    qs_node *q = &g->nodes[ni];
    int32_t ins[5] = {xr.q, v[0], v[1], v[2], v[3]};
    int32_t outs[1] = {t.out};
    if (qs_node_set_type(q, QS_QDOMAIN, "QLinearGlobalAveragePoolNHWC") != QS_OK ||
        qs_node_set_io(q, 5, ins, 1, outs) != QS_OK || set_clamp(q, t.qmin, t.qmax) != QS_OK)
        return oom(err);
    g->nodes[ci].dead = true;
    g->nodes[t.q_node].dead = true;
    qs_status st = qs_node_bind(g, &g->nodes[ni], err);
    qs_graph_link(g);
    return st;
}

/* Ops that only move or select values run on uint8 directly when the Q after them uses the DQ's
 * parameters (the exporters' convention for MaxPool, Flatten, Reshape, ...). */
static qs_status lower_passthrough(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    dq_ref xr;
    float xs;
    int32_t xz;
    q_tail t;
    if (c->n_outputs != 1 || c->n_inputs < 1 || !act_dq(g, c->inputs[0], &xr, &xs, &xz))
        return QS_OK;
    if (find_q_tail(g, c->outputs[0], &t) && t.act_node < 0 && t.scale == xs && t.zero == xz) {
        c->inputs[0] = xr.q;
        c->outputs[0] = t.out;
        g->nodes[t.q_node].dead = true;
        qs_graph_link(g);
        return QS_OK;
    }
    /* No Q after it (a Flatten before a Gemm): swap the op and the DQ, so the consumer sees
     * DQ(uint8) and can be lowered too. */
    char name[256];
    snprintf(name, sizeof(name), "%.200s_q", g->values[c->outputs[0]]->name);
    int32_t yq = qs_graph_add_value(g, name);
    int32_t di = yq < 0 ? -1 : qs_graph_add_node(g, "DequantizeLinear", name);
    if (di < 0)
        return oom(err);
    c = &g->nodes[ci];
    g->values[yq]->dtype = QS_DTYPE_UINT8;
    qs_value_set_shape(g->values[yq], g->values[c->outputs[0]]->rank, g->values[c->outputs[0]]->dims);
    const qs_node *dq = &g->nodes[xr.node];
    int32_t din[3] = {yq, dq->inputs[1], dq->n_inputs > 2 ? dq->inputs[2] : -1};
    int32_t dout[1] = {c->outputs[0]};
    if (qs_node_set_io(&g->nodes[di], din[2] >= 0 ? 3 : 2, din, 1, dout) != QS_OK)
        return oom(err);
    c->inputs[0] = xr.q;
    c->outputs[0] = yq;
    qs_status st = qs_node_bind(g, &g->nodes[di], err);
    qs_graph_link(g);
    return st;
}

/* QOperator models: QLinearConv (2-D, uint8 x and y) -> QLinearConvNHWC and QLinearMatMul with a
 * constant 2-D B (uint8 a and y, per-tensor a) -> QGemm; both internal ops take the same input
 * order. Weights, scales and zero points must be constants. Weights stay exact: w - zero as int8,
 * with an int32 zero point per channel where that does not fit (uint8 weights, non-zero zero
 * points); scales and the int32 bias pass through. Anything else (int8 activations, int8 output)
 * stays on the reference operator. */
static qs_status lower_qoperator(qs_graph *g, size_t ci, qs_error *err) {
    qs_node *c = &g->nodes[ci];
    bool conv = qs_node_is(c, "QLinearConv");
    float xs, ys;
    int32_t xz, yz;
    if (c->n_outputs != 1 || c->n_inputs < 8)
        return QS_OK;
    int32_t xv = c->inputs[0], wv = c->inputs[3], wsv = c->inputs[4], wzv = c->inputs[5];
    int32_t bv = conv && c->n_inputs > 8 ? c->inputs[8] : -1;
    int32_t xsv = c->inputs[1], xzv = c->inputs[2], ysv = c->inputs[6], yzv = c->inputs[7];
    int32_t out = c->outputs[0];
    if (xv < 0 || wv < 0 || wsv < 0 || out < 0 || qs_value_is_const(g, xv) ||
        !qs_value_is_const(g, wv) || !qs_value_is_const(g, wsv) ||
        (wzv >= 0 && !qs_value_is_const(g, wzv)) || g->values[xv]->dtype != QS_DTYPE_UINT8 ||
        g->values[out]->dtype != QS_DTYPE_UINT8 || !qs_const_scalar_f32(g, xsv, &xs) ||
        !qs_const_scalar_int(g, xzv, &xz) || !qs_const_scalar_f32(g, ysv, &ys) ||
        !qs_const_scalar_int(g, yzv, &yz) || !(ys > 0.0f))
        return QS_OK;
    const qs_value *x = g->values[xv], *wq = g->values[wv], *wsc = g->values[wsv];
    const qs_value *wz = wzv >= 0 ? g->values[wzv] : NULL;
    int64_t k[2], s[2], d[2], pads[4], group = 1;
    size_t rows, cols;
    if (conv) {
        const qs_attr *ks = qs_node_attr(c, "kernel_shape");
        if (x->rank != 4 || wq->rank != 4 || wq->dims[0] < 1)
            return QS_OK;
        k[0] = wq->dims[2];
        k[1] = wq->dims[3];
        if ((ks && (ks->type != QS_ATTR_INTS || ks->n != 2 || ks->ints[0] != k[0] ||
                    ks->ints[1] != k[1])) ||
            !qs_node_ints2(c, "strides", s) || !qs_node_ints2(c, "dilations", d) ||
            !qs_conv_pads(c, x, k, s, d, pads))
            return QS_OK;
        group = qs_node_attr_int(c, "group", 1);
        rows = (size_t)wq->dims[0];
        cols = qs_value_numel(wq) / rows;
    } else {
        if (wq->rank != 2 || x->rank < 1 || x->dims[x->rank - 1] != wq->dims[0])
            return QS_OK;
        rows = (size_t)wq->dims[1];
        cols = (size_t)wq->dims[0];
    }
    size_t ns = qs_value_numel(wsc), nz = wz ? qs_value_numel(wz) : 0;
    if (cols == 0 || wsc->dtype != QS_DTYPE_FLOAT32 || (ns != 1 && ns != rows) ||
        (nz > 1 && nz != rows) ||
        (wq->dtype != QS_DTYPE_INT8 && wq->dtype != QS_DTYPE_UINT8) ||
        (wz && wz->dtype != wq->dtype))
        return QS_OK;
    const qs_value *bias = bv >= 0 ? g->values[bv] : NULL;
    if (bias && (!qs_value_is_const(g, bv) || bias->dtype != QS_DTYPE_INT32 ||
                 qs_value_numel(bias) != rows))
        return QS_OK;
    /* The weights exactly, rows x cols (rows = output channels; B is K x N, so transposed), with
     * per-row offsets where w - zero does not fit int8. */
    weight_src w;
    memset(&w, 0, sizeof(w));
    bool ok = weight_exact(&w, wq, wsc, wz, rows, cols, !conv);
    char name[200];
    snprintf(name, sizeof(name), "%.180s", c->name);
    int32_t nwq, nws, nwz;
    int64_t wdims[4] = {(int64_t)rows, (int64_t)cols, 0, 0};
    if (conv)
        memcpy(wdims, wq->dims, sizeof(wdims));
    ok = ok &&
         weight_consts(g, name, &w, rows, cols, conv ? 4 : 2, wdims, &nwq, &nws, &nwz, NULL, NULL);
    weight_src_free(&w);
    if (!ok)
        return oom(err);
    const char *type = conv ? "QLinearConvNHWC" : "QGemm";
    int32_t ni = qs_graph_add_node(g, type, name);
    if (ni < 0)
        return oom(err);
    qs_node *q = &g->nodes[ni];
    int32_t ins[9] = {xv, xsv, xzv, nwq, nws, nwz, ysv, yzv, bv};
    int32_t outs[1] = {out};
    if (qs_node_set_type(q, QS_QDOMAIN, type) != QS_OK || qs_node_set_io(q, 9, ins, 1, outs) != QS_OK ||
        set_clamp(q, 0, 255) != QS_OK)
        return oom(err);
    if (conv && (qs_node_set_attr_ints(q, "kernel_shape", k, 2) != QS_OK ||
                 qs_node_set_attr_ints(q, "strides", s, 2) != QS_OK ||
                 qs_node_set_attr_ints(q, "dilations", d, 2) != QS_OK ||
                 qs_node_set_attr_ints(q, "pads", pads, 4) != QS_OK ||
                 qs_node_set_attr_int(q, "group", group) != QS_OK))
        return oom(err);
    g->nodes[ci].dead = true;
    qs_status st = qs_node_bind(g, &g->nodes[ni], err);
    qs_graph_link(g);
    return st;
}

qs_status qs_pass_lower_qdq(qs_graph *g, qs_error *err) {
    qs_graph_link(g);
    size_t n_orig = g->n_nodes;
    for (size_t i = 0; i < n_orig; i++) {
        qs_node *n = &g->nodes[i];
        qs_status st = QS_OK;
        if (n->dead)
            continue;
        if (qs_node_is(n, "Conv"))
            st = lower_conv(g, i, err);
        else if (qs_node_is(n, "Gemm") || qs_node_is(n, "MatMul"))
            st = lower_gemm(g, i, err);
        else if (qs_node_is(n, "Add"))
            st = lower_add(g, i, err);
        else if (qs_node_is(n, "GlobalAveragePool"))
            st = lower_gap(g, i, err);
        else if (qs_node_is(n, "QLinearConv") || qs_node_is(n, "QLinearMatMul"))
            st = lower_qoperator(g, i, err);
        else if (qs_quant_is_passthrough(n))
            st = lower_passthrough(g, i, err);
        if (st != QS_OK)
            return st;
    }
    qs_status st = qs_graph_sort(g, err);
    return st == QS_OK ? qs_pass_dead_code(g, err) : st;
}

qs_status qs_pass_dead_code(qs_graph *g, qs_error *err) {
    for (bool changed = true; changed;) {
        changed = false;
        qs_graph_link(g);
        for (size_t i = 0; i < g->n_nodes; i++) {
            qs_node *n = &g->nodes[i];
            bool used = false;
            for (int32_t j = 0; j < n->n_outputs && !used; j++) {
                int32_t v = n->outputs[j];
                used = v >= 0 && (g->values[v]->n_consumers > 0 || g->values[v]->is_output);
            }
            if (!n->dead && !used) {
                n->dead = true;
                changed = true;
            }
        }
        qs_status st = qs_graph_sort(g, err);
        if (st != QS_OK)
            return st;
    }
    return QS_OK;
}

qs_status qs_pass_activations_to_u8(qs_graph *g, qs_error *err) {
    qs_graph_link(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (!qs_node_is(n, "QuantizeLinear") || n->n_inputs < 3 || n->inputs[2] < 0 ||
            qs_value_is_const(g, n->inputs[0]))
            continue;
        const qs_value *z = g->values[n->inputs[2]];
        if (z->dtype != QS_DTYPE_INT8 || !qs_value_is_const(g, n->inputs[2]) ||
            qs_value_numel(z) != 1)
            continue;
        int32_t y = n->outputs[0];
        /* Every reader must be a DequantizeLinear with constant parameters we can shift too. */
        bool ok = true;
        for (size_t k = 0; k < g->n_nodes && ok; k++) {
            const qs_node *c = &g->nodes[k];
            for (int32_t j = 0; j < c->n_inputs && ok; j++)
                if (c->inputs[j] == y)
                    ok = qs_node_is(c, "DequantizeLinear") && j == 0 && c->n_inputs > 2 &&
                         qs_value_is_const(g, c->inputs[2]) &&
                         g->values[c->inputs[2]]->dtype == QS_DTYPE_INT8;
        }
        if (!ok || g->values[y]->is_output)
            continue;
        int32_t zp = *(const int8_t *)z->data + 128;
        int32_t nz = add_scalar_u8(g, g->values[y]->name, "_u8zero", zp);
        if (nz < 0)
            return oom(err);
        g->nodes[i].inputs[2] = nz;
        g->values[y]->dtype = QS_DTYPE_UINT8;
        for (size_t k = 0; k < g->n_nodes; k++) {
            qs_node *c = &g->nodes[k];
            if (c->n_inputs > 0 && c->inputs[0] == y && qs_node_is(c, "DequantizeLinear"))
                c->inputs[2] = nz;
        }
    }
    return QS_OK;
}

qs_status qs_pass_strip_activation_qdq(qs_graph *g, qs_error *err) {
    qs_graph_link(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *dq = &g->nodes[i];
        if (!qs_node_is(dq, "DequantizeLinear") || qs_value_is_const(g, dq->inputs[0]))
            continue;
        int32_t qv = dq->inputs[0];
        int32_t p = g->values[qv]->producer;
        if (p < 0 || !qs_node_is(&g->nodes[p], "QuantizeLinear") || g->values[dq->outputs[0]]->is_output)
            continue;
        qs_graph_replace_uses(g, dq->outputs[0], g->nodes[p].inputs[0], -1);
        dq->dead = true;
    }
    qs_status st = qs_graph_sort(g, err);
    return st == QS_OK ? qs_pass_dead_code(g, err) : st;
}


/* Remember, on each uint8 activation a QuantizeLinear makes, its parameters and the float value it
 * stands for: lowering keeps these values as the int8 operators' outputs, and the int8 report
 * pairs them with the fp32 model's values of the same name. */
qs_status qs_pass_mark_quant_points(qs_graph *g, qs_error *err) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        float s;
        int32_t z;
        if (n->dead || !qs_node_is(n, "QuantizeLinear") || n->n_inputs < 2 ||
            !qs_const_scalar_f32(g, n->inputs[1], &s) ||
            !qs_const_scalar_int(g, n->n_inputs > 2 ? n->inputs[2] : -1, &z))
            continue;
        qs_value *y = g->values[n->outputs[0]];
        if (y->quant || y->dtype != QS_DTYPE_UINT8)
            continue;
        qs_quant *q = calloc(1, sizeof(*q));
        if (q) {
            q->count = 1;
            q->scale = malloc(sizeof(float));
            q->zero_point = malloc(sizeof(int32_t));
            q->source = strdup(g->values[n->inputs[0]]->name);
        }
        if (!q || !q->scale || !q->zero_point || !q->source) {
            if (q) {
                free(q->scale);
                free(q->zero_point);
                free(q->source);
                free(q);
            }
            return qs_error_set(err, QS_ERR_NO_MEMORY, "quantization", "out of memory");
        }
        q->scale[0] = s;
        q->zero_point[0] = z;
        y->quant = q;
    }
    return QS_OK;
}
