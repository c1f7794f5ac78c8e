/* Static quantization: with the calibrated ranges, put QuantizeLinear/DequantizeLinear pairs on
 * the activations around every quantizable op and turn its weights into int8 + DequantizeLinear.
 * The result is a QDQ graph, which the QDQ lowering then turns into int8 operators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optimize.h"
#include "core/rewrite.h"
#include "quant/quant.h"

typedef enum { Q_NONE = 0, Q_COMPUTE, Q_PASSTHROUGH } q_role;

typedef struct {
    qs_graph *g;
    const qs_calibrator *cal;
    const qs_quant_options *o;
    /* per value: chosen parameters and the DQ output that stands for it (-1: none yet) */
    size_t cap;
    bool *has;
    bool *seven;   /* parameters on 0..127 (reduce_range, read by a GEMM) */
    float *scale;
    int32_t *zero;
    int32_t *dq;
} insert_ctx;

static qs_status grow(insert_ctx *c) {
    if (c->g->n_values + 16 <= c->cap)
        return QS_OK;
    size_t cap = (c->g->n_values + 16) * 2;
    bool *has = realloc(c->has, cap * sizeof(bool));
    if (!has)
        return QS_ERR_NO_MEMORY;
    c->has = has;
    bool *seven = realloc(c->seven, cap * sizeof(bool));
    if (!seven)
        return QS_ERR_NO_MEMORY;
    c->seven = seven;
    float *scale = realloc(c->scale, cap * sizeof(float));
    if (!scale)
        return QS_ERR_NO_MEMORY;
    c->scale = scale;
    int32_t *zero = realloc(c->zero, cap * sizeof(int32_t));
    if (!zero)
        return QS_ERR_NO_MEMORY;
    c->zero = zero;
    int32_t *dq = realloc(c->dq, cap * sizeof(int32_t));
    if (!dq)
        return QS_ERR_NO_MEMORY;
    c->dq = dq;
    for (size_t i = c->cap; i < cap; i++) {
        c->has[i] = false;
        c->seven[i] = false;
        c->dq[i] = -1;
    }
    c->cap = cap;
    return QS_OK;
}

static bool kept_in_fp32(const insert_ctx *c, const qs_node *n) {
    for (size_t i = 0; i < c->o->keep_fp32_count; i++) {
        const char *k = c->o->keep_fp32[i];
        if (strcmp(k, n->name) == 0 || strcmp(k, n->op_type) == 0)
            return true;
    }
    return false;
}

static bool is_float_act(const qs_graph *g, int32_t v) {
    return v >= 0 && !qs_value_is_const(g, v) && g->values[v]->dtype == QS_DTYPE_FLOAT32;
}

/* The float value an input stands for: an earlier op may already have rerouted it to the DQ of
 * its Q/DQ pair (a residual Add reads values that convolutions before it quantized), and the
 * calibrator knows the value by its original name. */
static int32_t float_source(const insert_ctx *c, int32_t v) {
    const qs_graph *g = c->g;
    int32_t dq = g->values[v]->producer;
    if (dq < 0 || !qs_node_is(&g->nodes[dq], "DequantizeLinear"))
        return v;
    int32_t q = g->values[g->nodes[dq].inputs[0]]->producer;
    if (q < 0 || !qs_node_is(&g->nodes[q], "QuantizeLinear"))
        return v;
    int32_t src = g->nodes[q].inputs[0];
    return src >= 0 && (size_t)src < c->cap && c->dq[src] == v ? src : v;
}

static q_role role_of(const insert_ctx *c, const qs_node *n) {
    const qs_graph *g = c->g;
    if (n->dead || kept_in_fp32(c, n) || n->n_inputs < 1 || !is_float_act(g, n->inputs[0]))
        return Q_NONE;
    if (qs_node_is(n, "Conv"))
        return n->n_inputs >= 2 && qs_value_is_const(g, n->inputs[1]) &&
                       g->values[n->inputs[1]]->rank == 4 &&
                       g->values[n->inputs[1]]->dtype == QS_DTYPE_FLOAT32 &&
                       g->values[n->inputs[0]]->rank == 4
                   ? Q_COMPUTE
                   : Q_NONE;
    if (qs_node_is(n, "Gemm") || qs_node_is(n, "MatMul")) {
        bool gemm = qs_node_is(n, "Gemm");
        if (gemm && (qs_node_attr_int(n, "transA", 0) || qs_node_attr_float(n, "alpha", 1) != 1.0f ||
                     qs_node_attr_float(n, "beta", 1) != 1.0f))
            return Q_NONE;
        return qs_value_is_const(g, n->inputs[1]) && g->values[n->inputs[1]]->rank == 2 &&
                       g->values[n->inputs[1]]->dtype == QS_DTYPE_FLOAT32
                   ? Q_COMPUTE
                   : Q_NONE;
    }
    if (qs_node_is(n, "Add"))
        return n->n_inputs == 2 && is_float_act(g, n->inputs[1]) &&
                       qs_value_same_dims(g->values[float_source(c, n->inputs[0])],
                                          g->values[float_source(c, n->inputs[1])])
                   ? Q_COMPUTE
                   : Q_NONE;
    if (qs_node_is(n, "GlobalAveragePool"))
        return g->values[n->inputs[0]]->rank == 4 ? Q_COMPUTE : Q_NONE;
    if ((qs_node_is(n, "MaxPool") && n->n_outputs == 1) || qs_node_is(n, "Flatten") ||
        qs_node_is(n, "Reshape"))
        return Q_PASSTHROUGH;
    return Q_NONE;
}

static int32_t add_scalar(qs_graph *g, const char *base, const char *suffix, qs_dtype dt) {
    char name[256];
    snprintf(name, sizeof(name), "%.200s%s", base, suffix);
    int32_t v = qs_graph_add_value(g, name);
    if (v < 0)
        return -1;
    g->values[v]->kind = QS_VALUE_CONSTANT;
    g->values[v]->dtype = dt;
    g->values[v]->rank = 0;
    return qs_value_alloc_data(g->values[v]) == QS_OK ? v : -1;
}

/* Q -> DQ on value v with its chosen parameters; returns the DQ output (cached). */
static int32_t qdq_pair(insert_ctx *c, int32_t v, qs_error *err) {
    qs_graph *g = c->g;
    if (c->dq[v] >= 0)
        return c->dq[v];
    char base[220];
    snprintf(base, sizeof(base), "%.200s", g->values[v]->name);
    int32_t s = add_scalar(g, base, "_scale", QS_DTYPE_FLOAT32);
    int32_t z = s < 0 ? -1 : add_scalar(g, base, "_zero", QS_DTYPE_UINT8);
    char qn[256], dn[256];
    snprintf(qn, sizeof(qn), "%s_quantized", base);
    snprintf(dn, sizeof(dn), "%s_dequantized", base);
    int32_t qv = z < 0 ? -1 : qs_graph_add_value(g, qn);
    int32_t dv = qv < 0 ? -1 : qs_graph_add_value(g, dn);
    if (dv < 0 || grow(c) != QS_OK) {
        qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        return -1;
    }
    *(float *)g->values[s]->data = c->scale[v];
    *(uint8_t *)g->values[z]->data = (uint8_t)c->zero[v];
    const bool seven = c->seven[v];
    g->values[qv]->dtype = QS_DTYPE_UINT8;
    g->values[dv]->dtype = QS_DTYPE_FLOAT32;
    int32_t qi = qs_graph_add_node(g, "QuantizeLinear", qn);
    int32_t di = qi < 0 ? -1 : qs_graph_add_node(g, "DequantizeLinear", dn);
    if (di < 0) {
        qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        return -1;
    }
    int32_t qin[3] = {v, s, z}, qout[1] = {qv}, din[3] = {qv, s, z}, dout[1] = {dv};
    if (qs_node_set_io(&g->nodes[qi], 3, qin, 1, qout) != QS_OK ||
        qs_node_set_io(&g->nodes[di], 3, din, 1, dout) != QS_OK ||
        (seven && qs_node_set_attr_int(&g->nodes[qi], "qmax", 127) != QS_OK) ||
        qs_node_bind(g, &g->nodes[qi], err) != QS_OK || qs_node_bind(g, &g->nodes[di], err) != QS_OK) {
        qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        return -1;
    }
    c->dq[v] = dv;
    return dv;
}

/* Whether a GEMM (a Conv other than depthwise, Gemm, MatMul) quantized here reads v, directly or
 * through ops that keep its parameters: those inputs are the ones 7-bit activations speed up. */
static bool read_by_gemm(const insert_ctx *c, int32_t v, int depth) {
    const qs_graph *g = c->g;
    if (depth > 16)
        return true; /* long pass-through chains: assume so (7 bits are always correct) */
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        if (n->dead || n->n_inputs < 1 || n->inputs[0] != v)
            continue;
        q_role role = role_of(c, n);
        if (role == Q_PASSTHROUGH && read_by_gemm(c, n->outputs[0], depth + 1))
            return true;
        if (role != Q_COMPUTE || qs_node_is(n, "Add") || qs_node_is(n, "GlobalAveragePool"))
            continue;
        const qs_value *w = g->values[n->inputs[1]];
        const int64_t group = qs_node_attr_int(n, "group", 1);
        if (!qs_node_is(n, "Conv") || !(group > 1 && w->dims[0] == group && w->dims[1] == 1))
            return true;
    }
    return false;
}

/* Calibrated parameters for v; false if the calibrator never saw it. */
static bool choose_params(insert_ctx *c, int32_t v) {
    float lo, hi;
    if (c->has[v])
        return true;
    if (!qs_calibrator_range(c->cal, c->g->values[v]->name, &lo, &hi))
        return false;
    c->seven[v] = qs_quant_act_qmax(c->o) <= 127 && read_by_gemm(c, v, 0);
    qs_quant_params_from_range(lo, hi, c->o->symmetric_activations != 0, c->seven[v] ? 127 : 255,
                               &c->scale[v], &c->zero[v]);
    c->has[v] = true;
    return true;
}

/* Replace the weight input `slot` (a float constant) by DQ(int8 constant) with per-channel
 * (along `axis`) or per-tensor scales. */
static qs_status quantize_weight(insert_ctx *c, int32_t node, int32_t slot, int32_t axis,
                                 qs_error *err) {
    qs_graph *g = c->g;
    const qs_value *w = g->values[g->nodes[node].inputs[slot]];
    size_t rows = (size_t)w->dims[axis], total = qs_value_numel(w), cols = rows ? total / rows : 0;
    bool per_tensor = c->o->per_tensor_weights != 0;
    float *f = malloc(total * sizeof(float)), *scales = malloc(rows * sizeof(float));
    int8_t *q = malloc(total);
    qs_status st = QS_OK;
    if (!f || !scales || !q) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        goto done;
    }
    /* Rows along `axis` (0 for OIHW conv weights and N x K; 1 for a K x N Gemm weight). */
    const float *src = w->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++)
            f[r * cols + k] = axis == 0 ? src[r * cols + k] : src[k * rows + r];
    qs_quantize_weights(f, rows, cols, per_tensor, q, scales);
    char base[220];
    snprintf(base, sizeof(base), "%.200s", w->name);
    char name[256];
    snprintf(name, sizeof(name), "%s_int8", base);
    int32_t qv = qs_graph_add_value(g, name);
    snprintf(name, sizeof(name), "%s_wscale", base);
    int32_t sv = qv < 0 ? -1 : qs_graph_add_value(g, name);
    snprintf(name, sizeof(name), "%s_dq", base);
    int32_t dv = sv < 0 ? -1 : qs_graph_add_value(g, name);
    int32_t di = dv < 0 ? -1 : qs_graph_add_node(g, "DequantizeLinear", name);
    if (di < 0 || grow(c) != QS_OK) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        goto done;
    }
    w = g->values[g->nodes[node].inputs[slot]];
    qs_value *qval = g->values[qv], *sval = g->values[sv];
    qval->kind = sval->kind = QS_VALUE_CONSTANT;
    qval->dtype = QS_DTYPE_INT8;
    qs_value_set_shape(qval, w->rank, w->dims);
    sval->dtype = QS_DTYPE_FLOAT32;
    int64_t sd[1] = {(int64_t)rows};
    qs_value_set_shape(sval, per_tensor ? 0 : 1, sd);
    if (qs_value_alloc_data(qval) != QS_OK || qs_value_alloc_data(sval) != QS_OK) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        goto done;
    }
    int8_t *qd = qval->data;
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++)
            qd[axis == 0 ? r * cols + k : k * rows + r] = q[r * cols + k];
    memcpy(sval->data, scales, (per_tensor ? 1 : rows) * sizeof(float));
    g->values[dv]->dtype = QS_DTYPE_FLOAT32;
    qs_node *dn = &g->nodes[di];
    int32_t din[2] = {qv, sv}, dout[1] = {dv};
    if (qs_node_set_io(dn, 2, din, 1, dout) != QS_OK || qs_node_set_attr_int(dn, "axis", axis) != QS_OK) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
        goto done;
    }
    st = qs_node_bind(g, dn, err);
    if (st == QS_OK)
        g->nodes[node].inputs[slot] = dv;
done:
    free(f);
    free(scales);
    free(q);
    return st;
}

/* The value a compute op's result is quantized at: after a Relu/Clip it feeds alone. */
static int32_t output_point(const qs_graph *g, int32_t v) {
    const qs_value *val = g->values[v];
    if (val->n_consumers != 1 || val->is_output)
        return v;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        qs_act act;
        if (!n->dead && n->n_inputs > 0 && n->inputs[0] == v && qs_node_activation(g, n, &act) &&
            (act.kind == QS_ACT_RELU || act.kind == QS_ACT_CLIP))
            return n->outputs[0];
    }
    return v;
}

/* Every reader of v except the Q that quantizes it reads the DQ instead. */
static void reroute(insert_ctx *c, int32_t v, int32_t dq) {
    qs_graph *g = c->g;
    int32_t dq_node = g->values[dq]->producer;
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (n->dead || qs_node_is(n, "QuantizeLinear") || (int32_t)i == dq_node)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == v)
                n->inputs[j] = dq;
    }
}

qs_status qs_pass_insert_qdq(qs_graph *g, const qs_calibrator *cal, const qs_quant_options *o,
                             qs_error *err) {
    qs_status st = QS_OK;
    insert_ctx c = {g, cal, o, 0, NULL, NULL, NULL, NULL, NULL};
    if (grow(&c) != QS_OK)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "static quantization", "out of memory");
    qs_graph_link(g);
    size_t n_orig = g->n_nodes;
    for (size_t i = 0; i < n_orig; i++) {
        q_role role = role_of(&c, &g->nodes[i]);
        if (role == Q_NONE)
            continue;
        bool add = qs_node_is(&g->nodes[i], "Add");
        int32_t n_data = add ? 2 : 1;
        bool ok = true;
        int32_t src[2];
        for (int32_t j = 0; j < n_data && ok; j++) {
            src[j] = float_source(&c, g->nodes[i].inputs[j]);
            ok = choose_params(&c, src[j]);
        }
        if (!ok)
            continue; /* never observed: stays float */
        int32_t x0 = src[0];
        for (int32_t j = 0; j < n_data; j++) {
            int32_t dq = qdq_pair(&c, src[j], err);
            if (dq < 0) {
                st = err && err->status ? err->status : QS_ERR_NO_MEMORY;
                goto done;
            }
            g->nodes[i].inputs[j] = dq;
        }
        qs_node *n = &g->nodes[i];
        if (qs_node_is(n, "Conv")) {
            st = quantize_weight(&c, (int32_t)i, 1, 0, err);
        } else if (qs_node_is(n, "Gemm") || qs_node_is(n, "MatMul")) {
            bool trans_b = qs_node_is(n, "Gemm") && qs_node_attr_int(n, "transB", 0);
            st = quantize_weight(&c, (int32_t)i, 1, trans_b ? 0 : 1, err);
        }
        if (st != QS_OK)
            goto done;
        n = &g->nodes[i];
        int32_t y = n->outputs[0];
        int32_t t = role == Q_PASSTHROUGH ? y : output_point(g, y);
        if (g->values[t]->is_output)
            continue; /* results leave in float: no requantization error on the logits */
        if (role == Q_PASSTHROUGH) {
            /* The output keeps the input's parameters so the op runs on uint8 directly. */
            c.has[t] = true;
            c.seven[t] = c.seven[x0];
            c.scale[t] = c.scale[x0];
            c.zero[t] = c.zero[x0];
        } else if (!choose_params(&c, t)) {
            continue;
        }
        int32_t dq = qdq_pair(&c, t, err);
        if (dq < 0) {
            st = err && err->status ? err->status : QS_ERR_NO_MEMORY;
            goto done;
        }
        reroute(&c, t, dq);
        qs_graph_link(g);
    }
    st = qs_graph_sort(g, err);
done:
    free(c.has);
    free(c.seven);
    free(c.scale);
    free(c.zero);
    free(c.dq);
    return st;
}
