/* Load-time graph passes. Each pass rewrites the graph in place and leaves dead nodes for
 * qs_graph_sort to drop; shapes used for decisions come from the last annotation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optimize.h"
#include "core/plan.h"
#include "core/rewrite.h"
#include "ops/op.h"
#include "quant/quant.h"

#define QS_DOMAIN "quantserve"

qs_status qs_node_bind(const qs_graph *g, qs_node *n, qs_error *err) {
    const qs_op *op = qs_op_find(n->domain, n->op_type);
    if (!op)
        op = qs_quant_op_find(n->domain, n->op_type);
    if (!op) {
        if (n->domain && n->domain[0])
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "operator %s.%s is not supported",
                                 n->domain, n->op_type);
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "operator %s is not supported",
                             n->op_type);
    }
    if (n->op && n->op->free_params)
        n->op->free_params(n->params);
    else
        free(n->params);
    n->params = NULL;
    n->op = op;
    if (n->n_inputs < op->min_inputs || n->n_inputs > op->max_inputs)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "has %d inputs, %s takes %d to %d",
                             (int)n->n_inputs, op->type, (int)op->min_inputs, (int)op->max_inputs);
    if (n->n_outputs < op->min_outputs || n->n_outputs > op->max_outputs)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "has %d outputs, %s makes %d to %d",
                             (int)n->n_outputs, op->type, (int)op->min_outputs,
                             (int)op->max_outputs);
    for (int32_t i = 0; i < op->min_inputs; i++)
        if (n->inputs[i] < 0)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "required input %d is missing",
                                 (int)i);
    return op->init ? op->init(g, n, err) : QS_OK;
}

qs_status qs_graph_bind_ops(qs_graph *g, qs_error *err) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_status st = qs_node_bind(g, &g->nodes[i], err);
        if (st != QS_OK)
            return st;
    }
    return QS_OK;
}

qs_status qs_pass_fold_constants(qs_graph *g, qs_threadpool *pool, bool keep_dequantize,
                                 qs_error *err) {
    qs_view in[64], out[16];
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        bool all_const = !n->dead && n->n_inputs <= 64 && n->n_outputs <= 16 &&
                         !(keep_dequantize && qs_node_is(n, "DequantizeLinear"));
        for (int32_t j = 0; j < n->n_inputs && all_const; j++)
            all_const = n->inputs[j] < 0 || qs_value_is_const(g, n->inputs[j]);
        if (!all_const)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] < 0) {
                memset(&in[j], 0, sizeof(in[j]));
                in[j].rank = -1;
            } else {
                qs_view_from_value(&in[j], g->values[n->inputs[j]]);
            }
        }
        qs_status st = qs_node_eval(n, in, out, pool, err);
        if (st != QS_OK)
            return st;
        for (int32_t j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] < 0)
                continue;
            qs_value *v = g->values[n->outputs[j]];
            qs_aligned_free(v->data);
            v->kind = QS_VALUE_CONSTANT;
            v->dtype = out[j].dtype;
            qs_value_set_shape(v, out[j].rank, out[j].dims);
            v->data = out[j].data;
        }
        n->dead = true;
    }
    return qs_graph_sort(g, err);
}



qs_status qs_pass_remove_identity(qs_graph *g, qs_error *err) {
    qs_graph_link(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (!qs_node_is(n, "Identity") && !qs_node_is(n, "Dropout"))
            continue;
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
            continue;
        if (qs_node_is(n, "Dropout")) {
            /* Only inference mode is a no-op; a used mask output keeps the node. */
            if (n->n_inputs >= 3 && n->inputs[2] >= 0)
                continue;
            if (n->n_outputs >= 2 && n->outputs[1] >= 0 && g->values[n->outputs[1]]->n_consumers)
                continue;
        }
        qs_value *out = g->values[n->outputs[0]];
        if (out->is_output)
            continue; /* a graph output keeps its name: leave the copy */
        qs_graph_replace_uses(g, n->outputs[0], n->inputs[0], (int32_t)i);
        n->dead = true;
    }
    return qs_graph_sort(g, err);
}



qs_status qs_pass_fold_batchnorm(qs_graph *g, qs_error *err) {
    qs_graph_link(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *bn = &g->nodes[i];
        if (!qs_node_is(bn, "BatchNormalization") || bn->n_outputs != 1 || bn->n_inputs != 5)
            continue;
        int32_t x = bn->inputs[0];
        qs_value *xv = g->values[x];
        if (xv->producer < 0 || xv->n_consumers != 1 || xv->is_output)
            continue;
        qs_node *conv = &g->nodes[xv->producer];
        if (!qs_node_is(conv, "Conv") || conv->n_outputs != 1)
            continue;
        int32_t w = conv->inputs[1];
        if (w < 0 || !qs_value_is_const(g, w) || g->values[w]->dtype != QS_DTYPE_FLOAT32 ||
            g->values[w]->rank < 3)
            continue;
        qs_value *wv = g->values[w];
        size_t oc = (size_t)wv->dims[0];
        size_t per_oc = oc ? qs_value_numel(wv) / oc : 0;
        int32_t b = conv->n_inputs > 2 ? conv->inputs[2] : -1;
        if (b >= 0 && !qs_value_is_const_f32(g, b, oc))
            continue;
        bool params_ok = true;
        for (int32_t k = 1; k < 5; k++)
            params_ok = params_ok && qs_value_is_const_f32(g, bn->inputs[k], oc);
        if (!params_ok)
            continue;
        float eps = qs_node_attr_float(bn, "epsilon", 1e-5f);
        const float *scale = g->values[bn->inputs[1]]->data, *shift = g->values[bn->inputs[2]]->data;
        const float *mean = g->values[bn->inputs[3]]->data, *var = g->values[bn->inputs[4]]->data;
        const float *w_old = wv->data, *b_old = b >= 0 ? g->values[b]->data : NULL;
        int64_t bdims[1] = {(int64_t)oc};
        int32_t nw = qs_graph_add_const_f32(g, wv->name, "_bnfolded", wv->rank, wv->dims);
        int32_t nb = nw < 0 ? -1 : qs_graph_add_const_f32(g, conv->name, "_bnfolded_bias", 1, bdims);
        if (nw < 0 || nb < 0)
            return qs_error_set(err, QS_ERR_NO_MEMORY, "batchnorm folding", "out of memory");
        float *w_new = g->values[nw]->data, *b_new = g->values[nb]->data;
        for (size_t o = 0; o < oc; o++) {
            /* Double precision: the folded weights should not add rounding beyond fp32's own. */
            double f = (double)scale[o] / sqrt((double)var[o] + (double)eps);
            for (size_t k = 0; k < per_oc; k++)
                w_new[o * per_oc + k] = (float)((double)w_old[o * per_oc + k] * f);
            b_new[o] = (float)(((b_old ? (double)b_old[o] : 0.0) - (double)mean[o]) * f +
                               (double)shift[o]);
        }
        /* Re-fetch: adding values does not move nodes, but keep the pointers honest. */
        conv = &g->nodes[g->values[x]->producer];
        bn = &g->nodes[i];
        int32_t ins[3] = {conv->inputs[0], nw, nb};
        int32_t outs[1] = {bn->outputs[0]};
        if (qs_node_set_io(conv, 3, ins, 1, outs) != QS_OK)
            return qs_error_set(err, QS_ERR_NO_MEMORY, "batchnorm folding", "out of memory");
        bn->dead = true;
        qs_graph_link(g);
    }
    return qs_graph_sort(g, err);
}








/* Rewrite Conv node ci into ConvNHWC; false (and no change) when it does not qualify. */
static qs_status conv_to_nhwc(qs_graph *g, size_t ci, bool *done, qs_error *err) {
    qs_node *n = &g->nodes[ci];
    *done = false;
    if (n->n_outputs != 1 || n->inputs[0] < 0 || !qs_value_is_const(g, n->inputs[1]))
        return QS_OK;
    const qs_value *x = g->values[n->inputs[0]], *w = g->values[n->inputs[1]];
    if (x->rank != 4 || x->dtype != QS_DTYPE_FLOAT32 || w->rank != 4 ||
        w->dtype != QS_DTYPE_FLOAT32 || x->layout != QS_LAYOUT_PLAIN)
        return QS_OK;
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !qs_value_is_const_f32(g, n->inputs[2], (size_t)w->dims[0]))
        return QS_OK;
    int64_t k[2] = {w->dims[2], w->dims[3]}, s[2], d[2], pads[4];
    if (!qs_node_ints2(n, "strides", s) || !qs_node_ints2(n, "dilations", d) ||
        !qs_conv_pads(n, x, k, s, d, pads))
        return QS_OK;
    const qs_attr *ks = qs_node_attr(n, "kernel_shape");
    if (ks && (ks->type != QS_ATTR_INTS || ks->n != 2 || ks->ints[0] != k[0] || ks->ints[1] != k[1]))
        return QS_OK;
    int64_t group = qs_node_attr_int(n, "group", 1);
    if (group < 1 || x->dims[1] < 0 || x->dims[1] != w->dims[1] * group || w->dims[0] % group)
        return QS_OK;
    qs_status st = qs_node_set_type(n, QS_DOMAIN, "ConvNHWC");
    if (st == QS_OK)
        st = qs_node_set_attr_ints(n, "kernel_shape", k, 2);
    if (st == QS_OK)
        st = qs_node_set_attr_ints(n, "strides", s, 2);
    if (st == QS_OK)
        st = qs_node_set_attr_ints(n, "dilations", d, 2);
    if (st == QS_OK)
        st = qs_node_set_attr_ints(n, "pads", pads, 4);
    if (st == QS_OK)
        st = qs_node_set_attr_int(n, "group", group);
    if (st == QS_OK)
        st = qs_node_set_attr_string(n, "auto_pad", "NOTSET");
    qs_act none = {0};
    if (st == QS_OK)
        st = qs_node_set_act_attrs(n, &none);
    if (st != QS_OK)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    /* Inputs: X, W, B (optional), R (residual, set by fusion). */
    int32_t ins[4] = {n->inputs[0], n->inputs[1], n->n_inputs > 2 ? n->inputs[2] : -1, -1};
    int32_t outs[1] = {n->outputs[0]};
    if (qs_node_set_io(n, 3, ins, 1, outs) != QS_OK)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    *done = true;
    return QS_OK;
}

/* Conv -> Sigmoid -> Mul(conv, sigmoid), SiLU written out (EfficientNet): when the conv's output
 * has exactly those two readers, the conv takes the Mul's output and a silu activation. */
static qs_status fuse_silu(qs_graph *g, qs_node *conv, qs_error *err) {
    int32_t y = conv->outputs[0];
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *s = &g->nodes[i];
        if (s->dead || !qs_node_is(s, "Sigmoid") || s->n_inputs != 1 || s->inputs[0] != y ||
            s->n_outputs != 1)
            continue;
        const qs_value *sv = g->values[s->outputs[0]];
        if (sv->n_consumers != 1 || sv->is_output)
            return QS_OK;
        for (size_t j = 0; j < g->n_nodes; j++) {
            qs_node *m = &g->nodes[j];
            if (m->dead || !qs_node_is(m, "Mul") || m->n_inputs != 2 || m->n_outputs != 1 ||
                !((m->inputs[0] == y && m->inputs[1] == s->outputs[0]) ||
                  (m->inputs[1] == y && m->inputs[0] == s->outputs[0])))
                continue;
            qs_act silu = {.kind = QS_ACT_SILU};
            if (qs_node_set_act_attrs(conv, &silu) != QS_OK)
                return qs_node_error(err, QS_ERR_NO_MEMORY, conv, "out of memory");
            conv->outputs[0] = m->outputs[0];
            s->dead = true;
            m->dead = true;
            qs_graph_link(g);
            return QS_OK;
        }
        return QS_OK;
    }
    return QS_OK;
}

qs_status qs_pass_fuse_conv(qs_graph *g, bool residual, qs_error *err) {
    qs_status st;
    qs_graph_link(g);
    for (size_t i = 0; i < g->n_nodes; i++) {
        bool done;
        if (!qs_node_is(&g->nodes[i], "Conv"))
            continue;
        st = conv_to_nhwc(g, i, &done, err);
        if (st != QS_OK)
            return st;
        if (!done)
            continue;
        qs_node *n = &g->nodes[i];
        /* Residual Add: act(conv + bias + R) is one kernel call. */
        qs_value *y = g->values[n->outputs[0]];
        if (residual && y->n_consumers == 1 && !y->is_output) {
            for (size_t c = 0; c < g->n_nodes; c++) {
                qs_node *add = &g->nodes[c];
                if (!qs_node_is(add, "Add") || add->n_inputs != 2 || add->n_outputs != 1)
                    continue;
                int32_t other = add->inputs[0] == n->outputs[0]   ? add->inputs[1]
                                : add->inputs[1] == n->outputs[0] ? add->inputs[0]
                                                                   : -2;
                if (other == -2)
                    continue;
                if (other < 0 || qs_value_is_const(g, other) || other == n->outputs[0] ||
                    !qs_value_same_dims(g->values[other], y) || g->values[other]->dtype != QS_DTYPE_FLOAT32)
                    break;
                int32_t ins[4] = {n->inputs[0], n->inputs[1], n->inputs[2], other};
                int32_t outs[1] = {add->outputs[0]};
                if (qs_node_set_io(n, 4, ins, 1, outs) != QS_OK)
                    return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
                add->dead = true;
                qs_graph_link(g);
                break;
            }
        }
        y = g->values[n->outputs[0]];
        if (y->n_consumers == 1 && !y->is_output) {
            for (size_t c = 0; c < g->n_nodes; c++) {
                qs_node *a = &g->nodes[c];
                qs_act act;
                if (a->dead || a->n_inputs < 1 || a->inputs[0] != n->outputs[0] ||
                    !qs_node_activation(g, a, &act))
                    continue;
                if (qs_node_set_act_attrs(n, &act) != QS_OK)
                    return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
                n->outputs[0] = a->outputs[0];
                a->dead = true;
                qs_graph_link(g);
                break;
            }
        }
        y = g->values[n->outputs[0]];
        if (y->n_consumers == 2 && !y->is_output &&
            strcmp(qs_node_attr_string(n, "activation", "none"), "none") == 0) {
            st = fuse_silu(g, n, err);
            if (st != QS_OK)
                return st;
        }
        st = qs_node_bind(g, n, err);
        if (st != QS_OK)
            return st;
    }
    return qs_graph_sort(g, err);
}

/* ---- layout pass ---- */

typedef struct {
    qs_graph *g;
    int32_t *to_nhwc, *to_nchw; /* cached converted copies, per value index (or -1) */
    size_t cap;
} layout_ctx;

static const int64_t perm_to_nhwc[4] = {0, 2, 3, 1};
static const int64_t perm_to_nchw[4] = {0, 3, 1, 2};

static qs_status layout_grow(layout_ctx *c) {
    if (c->g->n_values + 8 <= c->cap)
        return QS_OK;
    size_t cap = (c->g->n_values + 8) * 2;
    int32_t *a = realloc(c->to_nhwc, cap * sizeof(int32_t));
    if (!a)
        return QS_ERR_NO_MEMORY;
    c->to_nhwc = a;
    int32_t *b = realloc(c->to_nchw, cap * sizeof(int32_t));
    if (!b)
        return QS_ERR_NO_MEMORY;
    c->to_nchw = b;
    for (size_t i = c->cap; i < cap; i++)
        c->to_nhwc[i] = c->to_nchw[i] = -1;
    c->cap = cap;
    return QS_OK;
}

static void permute_dims(qs_value *v, const int64_t *perm) {
    int64_t d[4];
    for (int i = 0; i < 4; i++)
        d[i] = v->dims[perm[i]];
    memcpy(v->dims, d, sizeof(d));
}

/* A Transpose of value v with perm; returns the new value (cached per direction). */
static int32_t insert_transpose(layout_ctx *c, int32_t v, bool to_nhwc, qs_error *err) {
    qs_graph *g = c->g;
    if (layout_grow(c) != QS_OK)
        return -1;
    int32_t *cache = to_nhwc ? c->to_nhwc : c->to_nchw;
    if (cache[v] >= 0)
        return cache[v];
    char name[256];
    snprintf(name, sizeof(name), "%.200s%s", g->values[v]->name, to_nhwc ? "__nhwc" : "__nchw");
    int32_t nv = qs_graph_add_value(g, name);
    int32_t ni = nv < 0 ? -1 : qs_graph_add_node(g, "Transpose", name);
    if (ni < 0) {
        qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
        return -1;
    }
    qs_value *src = g->values[v], *dst = g->values[nv];
    dst->dtype = src->dtype;
    qs_value_set_shape(dst, src->rank, src->dims);
    permute_dims(dst, to_nhwc ? perm_to_nhwc : perm_to_nchw);
    dst->layout = to_nhwc ? QS_LAYOUT_NHWC : QS_LAYOUT_PLAIN;
    qs_node *n = &g->nodes[ni];
    int32_t ins[1] = {v}, outs[1] = {nv};
    if (qs_node_set_io(n, 1, ins, 1, outs) != QS_OK ||
        qs_node_set_attr_ints(n, "perm", to_nhwc ? perm_to_nhwc : perm_to_nchw, 4) != QS_OK) {
        qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
        return -1;
    }
    if (qs_node_bind(g, n, err) != QS_OK)
        return -1;
    cache[v] = nv;
    return nv;
}

/* A constant broadcast against a rank-4 NCHW tensor, as the same broadcast against NHWC. */
static int32_t permute_const(qs_graph *g, int32_t v) {
    qs_value *src = g->values[v];
    if (src->rank > 4 || src->dtype != QS_DTYPE_FLOAT32)
        return -1;
    int64_t d4[4] = {1, 1, 1, 1};
    for (int32_t i = 0; i < src->rank; i++)
        d4[4 - src->rank + i] = src->dims[i];
    int64_t nd[4] = {d4[0], d4[2], d4[3], d4[1]};
    int32_t nv = qs_graph_add_const_f32(g, src->name, "__nhwc", 4, nd);
    if (nv < 0)
        return -1;
    src = g->values[v];
    const float *in = src->data;
    float *out = g->values[nv]->data;
    for (int64_t n = 0; n < nd[0]; n++)
        for (int64_t h = 0; h < nd[1]; h++)
            for (int64_t w = 0; w < nd[2]; w++)
                for (int64_t ch = 0; ch < nd[3]; ch++)
                    out[((n * nd[1] + h) * nd[2] + w) * nd[3] + ch] =
                        in[((n * d4[1] + ch) * d4[2] + h) * d4[3] + w];
    g->values[nv]->layout = QS_LAYOUT_NHWC;
    return nv;
}

typedef enum { LAYOUT_NONE = 0, LAYOUT_CONV, LAYOUT_FOLLOW, LAYOUT_BINARY, LAYOUT_POOL,
               LAYOUT_CONCAT } layout_role;

/* How each operator relates to the NHWC layout. `bound` is the mask of inputs that must share the
 * node's layout (data inputs); other inputs (weights, scales, bounds) are left alone.
 *   CONV: always NHWC (the op exists only in NHWC form);
 *   FOLLOW: NHWC when input 0 is (elementwise unary);
 *   BINARY: NHWC when a bound input is and all bound inputs are rank 4 (constants are permuted);
 *   POOL: becomes its <type>NHWC twin when input 0 is NHWC;
 *   CONCAT: NHWC when its inputs are, axis remapped. */
typedef struct {
    const char *domain, *type;
    layout_role role;
    uint32_t bound;
} layout_rule;

static const layout_rule layout_rules[] = {
    {QS_DOMAIN, "ConvNHWC", LAYOUT_CONV, 1u << 0 | 1u << 3},
    {QS_DOMAIN, "QLinearConvNHWC", LAYOUT_CONV, 1u << 0},
    {QS_DOMAIN, "QLinearGlobalAveragePoolNHWC", LAYOUT_CONV, 1u << 0},
    {QS_DOMAIN, "QLinearAdd", LAYOUT_BINARY, 1u << 0 | 1u << 3},
    {"", "Relu", LAYOUT_FOLLOW, 1u}, {"", "Clip", LAYOUT_FOLLOW, 1u},
    {"", "LeakyRelu", LAYOUT_FOLLOW, 1u}, {"", "Sigmoid", LAYOUT_FOLLOW, 1u},
    {"", "HardSigmoid", LAYOUT_FOLLOW, 1u}, {"", "HardSwish", LAYOUT_FOLLOW, 1u},
    {"", "Tanh", LAYOUT_FOLLOW, 1u}, {"", "Identity", LAYOUT_FOLLOW, 1u},
    {"", "Abs", LAYOUT_FOLLOW, 1u}, {"", "Neg", LAYOUT_FOLLOW, 1u},
    {"", "Exp", LAYOUT_FOLLOW, 1u}, {"", "Sqrt", LAYOUT_FOLLOW, 1u},
    {"", "QuantizeLinear", LAYOUT_FOLLOW, 1u}, {"", "DequantizeLinear", LAYOUT_FOLLOW, 1u},
    {"", "Add", LAYOUT_BINARY, 3u}, {"", "Sub", LAYOUT_BINARY, 3u},
    {"", "Mul", LAYOUT_BINARY, 3u}, {"", "Div", LAYOUT_BINARY, 3u},
    {"", "MaxPool", LAYOUT_POOL, 1u}, {"", "AveragePool", LAYOUT_POOL, 1u},
    {"", "GlobalAveragePool", LAYOUT_POOL, 1u},
    {"", "Concat", LAYOUT_CONCAT, ~0u},
};

static const layout_rule *rule_of(const qs_graph *g, const qs_node *n) {
    const char *domain = n->domain ? n->domain : "";
    for (size_t i = 0; i < sizeof(layout_rules) / sizeof(layout_rules[0]); i++) {
        const layout_rule *r = &layout_rules[i];
        if (strcmp(r->domain, domain) != 0 || strcmp(r->type, n->op_type) != 0)
            continue;
        if ((r->role == LAYOUT_FOLLOW || r->role == LAYOUT_POOL) && n->n_outputs != 1)
            return NULL;
        /* Per-axis (de)quantization has an axis in NCHW terms: keep it NCHW. */
        if ((strcmp(n->op_type, "QuantizeLinear") == 0 ||
             strcmp(n->op_type, "DequantizeLinear") == 0) &&
            (n->n_inputs < 2 || n->inputs[1] < 0 || qs_value_numel(g->values[n->inputs[1]]) != 1))
            return NULL;
        return r;
    }
    return NULL;
}

static layout_role role_of(const qs_graph *g, const qs_node *n) {
    const layout_rule *r = rule_of(g, n);
    return r ? r->role : LAYOUT_NONE;
}

static qs_status layout_node(layout_ctx *c, size_t ni, qs_error *err) {
    qs_graph *g = c->g;
    qs_node *n = &g->nodes[ni];
    const layout_rule *rule = rule_of(g, n);
    layout_role role = rule ? rule->role : LAYOUT_NONE;
    uint32_t bound = rule ? rule->bound : 0;
    bool any_nhwc = false, all_ok = true;

    for (int32_t j = 0; j < n->n_inputs; j++) {
        int32_t v = n->inputs[j];
        if (v < 0 || j >= 32 || !(bound & (1u << j)))
            continue;
        qs_value *val = g->values[v];
        if (val->layout == QS_LAYOUT_NHWC)
            any_nhwc = true;
        else if (!qs_value_is_const(g, v) && val->rank != 4)
            all_ok = false;
    }
    bool go_nhwc = false;
    switch (role) {
    case LAYOUT_CONV: go_nhwc = true; break;
    case LAYOUT_FOLLOW: go_nhwc = any_nhwc && g->values[n->inputs[0]]->layout == QS_LAYOUT_NHWC; break;
    case LAYOUT_BINARY:
    case LAYOUT_CONCAT: go_nhwc = any_nhwc && all_ok; break;
    case LAYOUT_POOL: go_nhwc = any_nhwc && g->values[n->inputs[0]]->rank == 4; break;
    default: break;
    }
    if (role == LAYOUT_CONCAT && go_nhwc) {
        for (int32_t j = 0; j < n->n_inputs && go_nhwc; j++)
            go_nhwc = n->inputs[j] >= 0 && !qs_value_is_const(g, n->inputs[j]);
    }
    if (!go_nhwc) {
        /* This node reads NCHW: convert any NHWC input back. Data inputs of Clip etc. are
         * constants and never NHWC. */
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v < 0 || g->values[v]->layout != QS_LAYOUT_NHWC)
                continue;
            int32_t t = insert_transpose(c, v, false, err);
            if (t < 0)
                return err && err->status ? err->status : QS_ERR_NO_MEMORY;
            n = &g->nodes[ni]; /* inserting a node may move the node array */
            n->inputs[j] = t;
        }
        return QS_OK;
    }
    /* Inputs to NHWC: activations through a Transpose, broadcast constants permuted. Only the
     * data inputs of a conv (X, residual) and every input of binary/concat ops are layout-bound;
     * other inputs (weights, Clip bounds) are left alone. */
    for (int32_t j = 0; j < n->n_inputs; j++) {
        int32_t v = n->inputs[j];
        if (v < 0)
            continue;
        if (j >= 32 || !(bound & (1u << j)) || g->values[v]->layout == QS_LAYOUT_NHWC)
            continue;
        int32_t nv;
        if (qs_value_is_const(g, v)) {
            nv = permute_const(g, v);
            if (nv < 0)
                return qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "cannot permute constant");
        } else {
            nv = insert_transpose(c, v, true, err);
            if (nv < 0)
                return err && err->status ? err->status : QS_ERR_NO_MEMORY;
        }
        n = &g->nodes[ni]; /* inserting a node may move the node array */
        n->inputs[j] = nv;
    }
    n = &g->nodes[ni];
    if (role == LAYOUT_POOL) {
        char type[64];
        snprintf(type, sizeof(type), "%sNHWC", n->op_type);
        if (qs_node_set_type(n, QS_DOMAIN, type) != QS_OK)
            return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        qs_status st = qs_node_bind(g, n, err);
        if (st != QS_OK)
            return st;
    } else if (role == LAYOUT_CONCAT) {
        int64_t axis = qs_node_attr_int(n, "axis", 0);
        if (axis < 0)
            axis += 4;
        static const int64_t nchw_to_nhwc_axis[4] = {0, 3, 1, 2};
        if (axis < 0 || axis > 3)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "axis out of range");
        if (qs_node_set_attr_int(n, "axis", nchw_to_nhwc_axis[axis]) != QS_OK)
            return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        qs_status st = qs_node_bind(g, n, err);
        if (st != QS_OK)
            return st;
    }
    for (int32_t j = 0; j < n->n_outputs; j++) {
        int32_t v = n->outputs[j];
        if (v < 0)
            continue;
        qs_value *val = g->values[v];
        if (val->rank == 4 && val->layout != QS_LAYOUT_NHWC) {
            permute_dims(val, perm_to_nhwc);
            val->layout = QS_LAYOUT_NHWC;
        }
    }
    return QS_OK;
}

qs_status qs_pass_layout(qs_graph *g, qs_error *err) {
    qs_status st = QS_OK;
    layout_ctx c = {g, NULL, NULL, 0};
    bool any_conv = false;
    for (size_t i = 0; i < g->n_nodes && !any_conv; i++)
        any_conv = role_of(g, &g->nodes[i]) == LAYOUT_CONV;
    if (!any_conv)
        return QS_OK;
    if (layout_grow(&c) != QS_OK)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
    size_t n_orig = g->n_nodes; /* inserted Transposes are appended and need no visit */
    for (size_t i = 0; i < n_orig; i++) {
        st = layout_node(&c, i, err);
        if (st != QS_OK)
            goto cleanup;
    }
    /* Graph outputs keep their names and NCHW layout: produce an NHWC twin, transpose back. */
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t v = g->outputs[i];
        if (g->values[v]->layout != QS_LAYOUT_NHWC)
            continue;
        char name[256];
        snprintf(name, sizeof(name), "%.200s__nhwc_out", g->values[v]->name);
        int32_t twin = qs_graph_add_value(g, name);
        if (twin < 0 || layout_grow(&c) != QS_OK) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
            goto cleanup;
        }
        qs_value *orig = g->values[v], *tw = g->values[twin];
        tw->dtype = orig->dtype;
        qs_value_set_shape(tw, orig->rank, orig->dims);
        tw->layout = QS_LAYOUT_NHWC;
        for (size_t k = 0; k < g->n_nodes; k++) {
            qs_node *n = &g->nodes[k];
            for (int32_t j = 0; j < n->n_outputs; j++)
                if (n->outputs[j] == v)
                    n->outputs[j] = twin;
        }
        qs_graph_replace_uses(g, v, twin, -1);
        c.to_nchw[twin] = v; /* the transpose below writes straight into the output */
        int32_t ni = qs_graph_add_node(g, "Transpose", name);
        if (ni < 0) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
            goto cleanup;
        }
        qs_node *t = &g->nodes[ni];
        int32_t ins[1] = {twin}, outs[1] = {v};
        if (qs_node_set_io(t, 1, ins, 1, outs) != QS_OK ||
            qs_node_set_attr_ints(t, "perm", perm_to_nchw, 4) != QS_OK) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "layout", "out of memory");
            goto cleanup;
        }
        st = qs_node_bind(g, t, err);
        if (st != QS_OK)
            goto cleanup;
        orig = g->values[v];
        permute_dims(orig, perm_to_nchw);
        orig->layout = QS_LAYOUT_PLAIN;
    }
    st = qs_graph_sort(g, err);
cleanup:
    free(c.to_nhwc);
    free(c.to_nchw);
    return st;
}
