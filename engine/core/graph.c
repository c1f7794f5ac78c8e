/* Graph containers: values, nodes, attributes; linking and topological sort. */
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"
#include "ops/op.h"

void *qs_aligned_alloc(size_t size) {
    void *p = NULL;
    if (size == 0)
        size = 64;
    if (posix_memalign(&p, 64, (size + 63) & ~(size_t)63) != 0)
        return NULL;
    return p;
}

void qs_aligned_free(void *p) { free(p); }

qs_graph *qs_graph_create(void) { return calloc(1, sizeof(qs_graph)); }

qs_value *qs_value_create(const char *name) {
    qs_value *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->name = strdup(name ? name : "");
    if (!v->name) {
        free(v);
        return NULL;
    }
    v->rank = -1;
    v->producer = -1;
    return v;
}

static void quant_free(qs_quant *q) {
    if (!q)
        return;
    free(q->scale);
    free(q->zero_point);
    free(q->source);
    free(q);
}

void qs_value_free(qs_value *v) {
    if (!v)
        return;
    free(v->name);
    qs_aligned_free(v->data);
    quant_free(v->quant);
    free(v);
}

static void attr_clear(qs_attr *a) {
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    qs_value_free(a->t);
}

void qs_node_clear(qs_node *n) {
    if (!n)
        return;
    if (n->op && n->op->free_params)
        n->op->free_params(n->params);
    else
        free(n->params);
    for (size_t i = 0; i < n->n_attrs; i++)
        attr_clear(&n->attrs[i]);
    free(n->attrs);
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    memset(n, 0, sizeof(*n));
}

void qs_graph_free(qs_graph *g) {
    if (!g)
        return;
    for (size_t i = 0; i < g->n_values; i++)
        qs_value_free(g->values[i]);
    free(g->values);
    for (size_t i = 0; i < g->n_nodes; i++)
        qs_node_clear(&g->nodes[i]);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g);
}

int32_t qs_graph_add_value(qs_graph *g, const char *name) {
    if (g->n_values >= INT32_MAX)
        return -1;
    if (g->n_values == g->cap_values) {
        size_t cap = g->cap_values ? g->cap_values * 2 : 64;
        qs_value **vals = realloc(g->values, cap * sizeof(*vals));
        if (!vals)
            return -1;
        g->values = vals;
        g->cap_values = cap;
    }
    qs_value *v = qs_value_create(name);
    if (!v)
        return -1;
    g->values[g->n_values] = v;
    return (int32_t)g->n_values++;
}

int32_t qs_graph_find_value(const qs_graph *g, const char *name) {
    /* Linear scan from the end: callers look up recently added names; graphs have < 10^4 values. */
    for (size_t i = g->n_values; i-- > 0;) {
        if (strcmp(g->values[i]->name, name) == 0)
            return (int32_t)i;
    }
    return -1;
}

size_t qs_value_numel(const qs_value *v) {
    size_t n = 1;
    for (int32_t i = 0; i < v->rank; i++) {
        if (v->dims[i] < 0 || !qs_mul_size(n, (size_t)v->dims[i], &n))
            return 0;
    }
    return n;
}

size_t qs_value_bytes(const qs_value *v) {
    size_t bytes;
    if (!qs_mul_size(qs_value_numel(v), qs_dtype_size(v->dtype), &bytes))
        return 0;
    return bytes;
}

qs_status qs_value_alloc_data(qs_value *v) {
    size_t bytes = qs_value_bytes(v);
    qs_aligned_free(v->data);
    v->data = qs_aligned_alloc(bytes);
    if (!v->data)
        return QS_ERR_NO_MEMORY;
    memset(v->data, 0, bytes ? bytes : 1);
    return QS_OK;
}

bool qs_value_is_const(const qs_graph *g, int32_t idx) {
    return idx >= 0 && (size_t)idx < g->n_values && g->values[idx]->kind == QS_VALUE_CONSTANT;
}

void qs_value_set_shape(qs_value *v, int32_t rank, const int64_t *dims) {
    v->rank = rank;
    for (int32_t i = 0; i < rank && i < QS_MAX_RANK; i++)
        v->dims[i] = dims[i];
}

int32_t qs_graph_add_node(qs_graph *g, const char *op_type, const char *name) {
    if (g->n_nodes >= INT32_MAX)
        return -1;
    if (g->n_nodes == g->cap_nodes) {
        size_t cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
        qs_node *nodes = realloc(g->nodes, cap * sizeof(*nodes));
        if (!nodes)
            return -1;
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    qs_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->op_type = strdup(op_type);
    n->domain = strdup("");
    n->name = strdup(name ? name : "");
    if (!n->op_type || !n->domain || !n->name) {
        qs_node_clear(n);
        return -1;
    }
    return (int32_t)g->n_nodes++;
}

qs_status qs_node_set_io(qs_node *n, int32_t n_inputs, const int32_t *inputs, int32_t n_outputs,
                         const int32_t *outputs) {
    int32_t *in = malloc(sizeof(int32_t) * (size_t)(n_inputs > 0 ? n_inputs : 1));
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(n_outputs > 0 ? n_outputs : 1));
    if (!in || !out) {
        free(in);
        free(out);
        return QS_ERR_NO_MEMORY;
    }
    if (n_inputs > 0)
        memcpy(in, inputs, sizeof(int32_t) * (size_t)n_inputs);
    if (n_outputs > 0)
        memcpy(out, outputs, sizeof(int32_t) * (size_t)n_outputs);
    free(n->inputs);
    free(n->outputs);
    n->inputs = in;
    n->outputs = out;
    n->n_inputs = n_inputs;
    n->n_outputs = n_outputs;
    return QS_OK;
}

void qs_graph_link(qs_graph *g) {
    for (size_t i = 0; i < g->n_values; i++) {
        g->values[i]->producer = -1;
        g->values[i]->n_consumers = 0;
        g->values[i]->is_output = false;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        qs_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0)
                g->values[n->inputs[j]]->n_consumers++;
        for (int32_t j = 0; j < n->n_outputs; j++)
            if (n->outputs[j] >= 0)
                g->values[n->outputs[j]]->producer = (int32_t)i;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        g->values[g->outputs[i]]->is_output = true;
}

qs_status qs_graph_sort(qs_graph *g, qs_error *err) {
    qs_status st = QS_OK;
    size_t live = 0;
    qs_node *sorted = NULL;
    uint8_t *ready = NULL, *placed = NULL;

    for (size_t i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].dead)
            qs_node_clear(&g->nodes[i]);
        else
            live++;
    }
    sorted = calloc(live ? live : 1, sizeof(*sorted));
    ready = calloc(g->n_values ? g->n_values : 1, 1);
    placed = calloc(g->n_nodes ? g->n_nodes : 1, 1);
    if (!sorted || !ready || !placed) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "graph", "out of memory sorting nodes");
        goto cleanup;
    }
    for (size_t i = 0; i < g->n_values; i++) {
        qs_value_kind k = g->values[i]->kind;
        ready[i] = k == QS_VALUE_CONSTANT || k == QS_VALUE_INPUT;
    }
    /* Kahn-style: repeat passes placing every node whose inputs are ready; graphs from exporters
     * are nearly sorted already so this is close to linear. */
    size_t count = 0;
    for (bool progress = true; progress && count < live;) {
        progress = false;
        for (size_t i = 0; i < g->n_nodes; i++) {
            qs_node *n = &g->nodes[i];
            if (!n->op_type || placed[i])
                continue;
            bool ok = true;
            for (int32_t j = 0; j < n->n_inputs && ok; j++)
                ok = n->inputs[j] < 0 || ready[n->inputs[j]];
            if (!ok)
                continue;
            for (int32_t j = 0; j < n->n_outputs; j++)
                if (n->outputs[j] >= 0)
                    ready[n->outputs[j]] = 1;
            placed[i] = 1;
            sorted[count++] = *n;
            progress = true;
        }
    }
    if (count < live) {
        for (size_t i = 0; i < g->n_nodes; i++) {
            qs_node *n = &g->nodes[i];
            if (!n->op_type || placed[i])
                continue;
            for (int32_t j = 0; j < n->n_inputs; j++) {
                if (n->inputs[j] >= 0 && !ready[n->inputs[j]]) {
                    st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                       "input %d \"%s\" is never produced (or the graph has a cycle)",
                                       j, g->values[n->inputs[j]]->name);
                    goto cleanup;
                }
            }
        }
        st = qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph", "graph has a cycle");
        goto cleanup;
    }
    free(g->nodes);
    g->nodes = sorted;
    g->n_nodes = g->cap_nodes = live;
    sorted = NULL;
    qs_graph_link(g);
cleanup:
    free(sorted);
    free(ready);
    free(placed);
    return st;
}

const qs_attr *qs_node_attr(const qs_node *n, const char *name) {
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t qs_node_attr_int(const qs_node *n, const char *name, int64_t def) {
    const qs_attr *a = qs_node_attr(n, name);
    return a && a->type == QS_ATTR_INT ? a->i : def;
}

float qs_node_attr_float(const qs_node *n, const char *name, float def) {
    const qs_attr *a = qs_node_attr(n, name);
    return a && a->type == QS_ATTR_FLOAT ? a->f : def;
}

const char *qs_node_attr_string(const qs_node *n, const char *name, const char *def) {
    const qs_attr *a = qs_node_attr(n, name);
    return a && a->type == QS_ATTR_STRING && a->s ? a->s : def;
}

qs_value *qs_node_input(const qs_graph *g, const qs_node *n, int32_t i) {
    if (i < 0 || i >= n->n_inputs || n->inputs[i] < 0)
        return NULL;
    return g->values[n->inputs[i]];
}

qs_value *qs_node_output(const qs_graph *g, const qs_node *n, int32_t i) {
    if (i < 0 || i >= n->n_outputs || n->outputs[i] < 0)
        return NULL;
    return g->values[n->outputs[i]];
}

/* Find or append the attribute slot `name`, cleared and typed. */
static qs_attr *attr_slot(qs_node *n, const char *name, qs_attr_type type) {
    for (size_t i = 0; i < n->n_attrs; i++) {
        if (strcmp(n->attrs[i].name, name) == 0) {
            qs_attr *a = &n->attrs[i];
            char *keep = a->name;
            a->name = NULL;
            attr_clear(a);
            memset(a, 0, sizeof(*a));
            a->name = keep;
            a->type = type;
            return a;
        }
    }
    qs_attr *attrs = realloc(n->attrs, (n->n_attrs + 1) * sizeof(*attrs));
    if (!attrs)
        return NULL;
    n->attrs = attrs;
    qs_attr *a = &attrs[n->n_attrs];
    memset(a, 0, sizeof(*a));
    a->name = strdup(name);
    if (!a->name)
        return NULL;
    n->n_attrs++;
    a->type = type;
    return a;
}

qs_status qs_node_set_attr_int(qs_node *n, const char *name, int64_t v) {
    qs_attr *a = attr_slot(n, name, QS_ATTR_INT);
    if (!a)
        return QS_ERR_NO_MEMORY;
    a->i = v;
    return QS_OK;
}

qs_status qs_node_set_attr_float(qs_node *n, const char *name, float v) {
    qs_attr *a = attr_slot(n, name, QS_ATTR_FLOAT);
    if (!a)
        return QS_ERR_NO_MEMORY;
    a->f = v;
    return QS_OK;
}

qs_status qs_node_set_attr_string(qs_node *n, const char *name, const char *v) {
    qs_attr *a = attr_slot(n, name, QS_ATTR_STRING);
    if (!a || !(a->s = strdup(v)))
        return QS_ERR_NO_MEMORY;
    return QS_OK;
}

qs_status qs_node_set_attr_ints(qs_node *n, const char *name, const int64_t *v, size_t count) {
    qs_attr *a = attr_slot(n, name, QS_ATTR_INTS);
    if (!a || !(a->ints = malloc(sizeof(int64_t) * (count ? count : 1))))
        return QS_ERR_NO_MEMORY;
    if (count)
        memcpy(a->ints, v, sizeof(int64_t) * count);
    a->n = count;
    return QS_OK;
}
