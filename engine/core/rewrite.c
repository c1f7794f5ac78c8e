/* Graph rewriting helpers shared by the optimization and quantization passes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rewrite.h"

/* Replace every read of value `from` by `to` (node inputs only). */
void qs_graph_replace_uses(qs_graph *g, int32_t from, int32_t to, int32_t except_node) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (n->dead || (int32_t)i == except_node)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == from)
                n->inputs[j] = to;
    }
}

bool qs_node_is(const qs_node *n, const char *type) {
    return !n->dead && (!n->domain || !n->domain[0]) && strcmp(n->op_type, type) == 0;
}

bool qs_value_is_const_f32(const qs_graph *g, int32_t v, size_t numel) {
    return v >= 0 && qs_value_is_const(g, v) && g->values[v]->dtype == QS_DTYPE_FLOAT32 &&
           qs_value_numel(g->values[v]) == numel;
}

/* A new constant float value with the given dims; data zeroed. Returns index or -1. */
int32_t qs_graph_add_const_f32(qs_graph *g, const char *base, const char *suffix, int32_t rank,
                             const int64_t *dims) {
    char name[256];
    snprintf(name, sizeof(name), "%.200s%s", base, suffix);
    int32_t idx = qs_graph_add_value(g, name);
    if (idx < 0)
        return -1;
    qs_value *v = g->values[idx];
    v->kind = QS_VALUE_CONSTANT;
    v->dtype = QS_DTYPE_FLOAT32;
    qs_value_set_shape(v, rank, dims);
    if (qs_value_alloc_data(v) != QS_OK)
        return -1;
    return idx;
}

/* Read a fusable activation from node n into act; false if n is not one we fuse. */
bool qs_node_activation(const qs_graph *g, const qs_node *n, qs_act *act) {
    memset(act, 0, sizeof(*act));
    if (qs_node_is(n, "Relu")) {
        act->kind = QS_ACT_RELU;
    } else if (qs_node_is(n, "Clip")) {
        act->kind = QS_ACT_CLIP;
        act->min = -INFINITY;
        act->max = INFINITY;
        if (g->opset < 11) {
            act->min = qs_node_attr_float(n, "min", -INFINITY);
            act->max = qs_node_attr_float(n, "max", INFINITY);
        } else {
            for (int32_t k = 1; k < n->n_inputs && k < 3; k++) {
                int32_t v = n->inputs[k];
                if (v < 0)
                    continue;
                if (!qs_value_is_const_f32(g, v, 1))
                    return false;
                float x = *(const float *)g->values[v]->data;
                if (k == 1)
                    act->min = x;
                else
                    act->max = x;
            }
        }
        if (act->min == 0.0f && isinf(act->max))
            act->kind = QS_ACT_RELU;
    } else if (qs_node_is(n, "LeakyRelu")) {
        act->kind = QS_ACT_LEAKY_RELU;
        act->alpha = qs_node_attr_float(n, "alpha", 0.01f);
    } else if (qs_node_is(n, "HardSigmoid")) {
        act->kind = QS_ACT_HARDSIGMOID;
        act->alpha = qs_node_attr_float(n, "alpha", 0.2f);
        act->beta = qs_node_attr_float(n, "beta", 0.5f);
    } else if (qs_node_is(n, "HardSwish")) {
        act->kind = QS_ACT_HARDSWISH;
    } else if (qs_node_is(n, "Sigmoid")) {
        act->kind = QS_ACT_SIGMOID;
    } else {
        return false;
    }
    return n->n_outputs == 1;
}

bool qs_value_same_dims(const qs_value *a, const qs_value *b) {
    if (a->rank != b->rank || a->rank < 0)
        return false;
    for (int32_t i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* Explicit [top, left, bottom, right] pads for a 2-D Conv with the annotated input dims. */
bool qs_conv_pads(const qs_node *n, const qs_value *x, const int64_t *k, const int64_t *s,
                      const int64_t *d, int64_t *pads) {
    const char *auto_pad = qs_node_attr_string(n, "auto_pad", "NOTSET");
    const qs_attr *p = qs_node_attr(n, "pads");
    memset(pads, 0, 4 * sizeof(*pads));
    if (strcmp(auto_pad, "NOTSET") == 0) {
        if (p && p->type == QS_ATTR_INTS && p->n == 4)
            memcpy(pads, p->ints, 4 * sizeof(*pads));
        else if (p)
            return false;
        for (int i = 0; i < 4; i++)
            if (pads[i] < 0)
                return false;
        return true;
    }
    if (strcmp(auto_pad, "VALID") == 0)
        return true;
    bool upper = strcmp(auto_pad, "SAME_UPPER") == 0;
    if (!upper && strcmp(auto_pad, "SAME_LOWER") != 0)
        return false;
    for (int i = 0; i < 2; i++) {
        int64_t in = x->dims[2 + i];
        if (in < 0)
            return false;
        int64_t out = (in + s[i] - 1) / s[i];
        int64_t total = (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in;
        if (total < 0)
            total = 0;
        int64_t small = total / 2, big = total - small;
        pads[i] = upper ? small : big;
        pads[i + 2] = upper ? big : small;
    }
    return true;
}

bool qs_node_ints2(const qs_node *n, const char *name, int64_t *v) {
    const qs_attr *a = qs_node_attr(n, name);
    v[0] = v[1] = 1;
    if (!a)
        return true;
    if (a->type != QS_ATTR_INTS || a->n != 2)
        return false;
    v[0] = a->ints[0];
    v[1] = a->ints[1];
    return v[0] > 0 && v[1] > 0;
}

qs_status qs_node_set_type(qs_node *n, const char *domain, const char *type) {
    char *d = strdup(domain), *t = strdup(type);
    if (!d || !t) {
        free(d);
        free(t);
        return QS_ERR_NO_MEMORY;
    }
    free(n->domain);
    free(n->op_type);
    n->domain = d;
    n->op_type = t;
    return QS_OK;
}

static const char *const act_names[] = {
    [QS_ACT_NONE] = "none",          [QS_ACT_RELU] = "relu",
    [QS_ACT_CLIP] = "clip",          [QS_ACT_LEAKY_RELU] = "leaky_relu",
    [QS_ACT_HARDSIGMOID] = "hardsigmoid", [QS_ACT_HARDSWISH] = "hardswish",
    [QS_ACT_SIGMOID] = "sigmoid",     [QS_ACT_SILU] = "silu",
};

const char *qs_act_name(qs_act_kind kind) {
    return (unsigned)kind < sizeof(act_names) / sizeof(act_names[0]) ? act_names[kind] : "none";
}

qs_status qs_node_set_act_attrs(qs_node *n, const qs_act *act) {
    qs_status st = qs_node_set_attr_string(n, "activation", qs_act_name(act->kind));
    if (st == QS_OK)
        st = qs_node_set_attr_float(n, "act_min", act->kind == QS_ACT_CLIP ? act->min : 0.0f);
    if (st == QS_OK)
        st = qs_node_set_attr_float(n, "act_max", act->kind == QS_ACT_CLIP ? act->max : 0.0f);
    if (st == QS_OK)
        st = qs_node_set_attr_float(n, "act_alpha", act->alpha);
    if (st == QS_OK)
        st = qs_node_set_attr_float(n, "act_beta", act->beta);
    return st;
}

qs_status qs_node_get_act_attrs(const qs_node *n, qs_act *act, qs_error *err) {
    const char *name = qs_node_attr_string(n, "activation", "none");
    memset(act, 0, sizeof(*act));
    size_t k;
    for (k = 0; k < sizeof(act_names) / sizeof(act_names[0]); k++)
        if (strcmp(name, act_names[k]) == 0)
            break;
    if (k == sizeof(act_names) / sizeof(act_names[0]))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "unknown activation \"%s\"", name);
    act->kind = (qs_act_kind)k;
    act->min = qs_node_attr_float(n, "act_min", 0.0f);
    act->max = qs_node_attr_float(n, "act_max", 0.0f);
    act->alpha = qs_node_attr_float(n, "act_alpha", 0.0f);
    act->beta = qs_node_attr_float(n, "act_beta", 0.0f);
    return QS_OK;
}
