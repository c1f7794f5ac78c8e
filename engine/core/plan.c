/* Execution planning: shape inference for concrete input dims, plan-time evaluation of shape
 * subgraphs, liveness-based arena layout, and the run loop. */
#include <stdlib.h>
#include <string.h>

#include "core/plan.h"

enum { KIND_CONST = 0, KIND_PLAN_CONST, KIND_INPUT, KIND_ACTIVATION };

#define QS_ARENA_ALIGN 64

void qs_view_from_value(qs_view *view, const qs_value *v) {
    memset(view, 0, sizeof(*view));
    view->dtype = v->dtype;
    view->rank = v->rank;
    for (int32_t i = 0; i < v->rank && i < QS_MAX_RANK; i++)
        view->dims[i] = v->dims[i];
    view->layout = v->layout;
    view->quant = v->quant;
    view->data = v->kind == QS_VALUE_CONSTANT ? v->data : NULL;
}

static size_t view_bytes(const qs_view *v) {
    size_t b;
    if (!qs_mul_size(qs_view_numel(v), qs_dtype_size(v->dtype), &b))
        return SIZE_MAX;
    return b;
}

static void omitted_view(qs_view *v) {
    memset(v, 0, sizeof(*v));
    v->dtype = QS_DTYPE_UNDEFINED;
    v->rank = -1;
}

qs_status qs_node_eval(const qs_node *n, const qs_view *in, qs_view *out, qs_threadpool *pool,
                       qs_error *err) {
    qs_status st;
    void *scratch = NULL;
    size_t scratch_bytes = 0;

    for (int32_t i = 0; i < n->n_outputs; i++)
        omitted_view(&out[i]);
    st = n->op->infer(n, in, out, err);
    if (st != QS_OK)
        return st;
    for (int32_t i = 0; i < n->n_outputs; i++) {
        if (n->outputs[i] < 0)
            continue;
        size_t b = view_bytes(&out[i]);
        if (b == SIZE_MAX || b > ((size_t)1 << 34)) {
            st = qs_node_error(err, QS_ERR_NO_MEMORY, n, "output %d is too large", i);
            goto fail;
        }
        out[i].data = qs_aligned_alloc(b);
        if (!out[i].data) {
            st = qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
            goto fail;
        }
    }
    if (n->op->scratch_bytes)
        scratch_bytes = n->op->scratch_bytes(n, in, out, qs_threadpool_size(pool));
    if (scratch_bytes) {
        scratch = qs_aligned_alloc(scratch_bytes);
        if (!scratch) {
            st = qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory for scratch");
            goto fail;
        }
    }
    qs_exec_ctx ctx = {pool, qs_threadpool_size(pool), scratch, scratch_bytes};
    st = n->op->run(n, in, out, &ctx);
    qs_aligned_free(scratch);
    if (st != QS_OK) {
        qs_node_error(err, st, n, "evaluation failed");
        goto fail;
    }
    return QS_OK;
fail:
    for (int32_t i = 0; i < n->n_outputs; i++) {
        qs_aligned_free(out[i].data);
        out[i].data = NULL;
    }
    return st;
}

void qs_plan_free(qs_plan *p) {
    if (!p)
        return;
    for (size_t i = 0; i < p->n_owned; i++)
        qs_aligned_free(p->owned[i]);
    free(p->owned);
    for (size_t i = 0; i < p->n_steps; i++) {
        free(p->steps[i].in);
        free(p->steps[i].out);
    }
    free(p->steps);
    free(p->views);
    qs_aligned_free(p->arena);
    qs_aligned_free(p->scratch);
    free(p->input_dims);
    free(p);
}

static qs_status check_input(const qs_value *decl, const qs_tensor *t, qs_error *err) {
    if (t->dtype != decl->dtype)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, decl->name,
                            "input has type %s, the model expects %s", qs_dtype_name(t->dtype),
                            qs_dtype_name(decl->dtype));
    if (t->rank < 0 || t->rank > QS_MAX_RANK || (decl->rank >= 0 && t->rank != decl->rank))
        return qs_error_set(err, QS_ERR_SHAPE, decl->name, "input has rank %d, the model expects %d",
                            (int)t->rank, (int)decl->rank);
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 || (decl->rank >= 0 && decl->dims[i] >= 0 && t->dims[i] != decl->dims[i]))
            return qs_error_set(err, QS_ERR_SHAPE, decl->name,
                                "input dimension %d is %lld, the model expects %lld", (int)i,
                                (long long)t->dims[i], (long long)decl->dims[i]);
    }
    return QS_OK;
}

/* Arena layout: each buffer (an activation, or a chain of aliases) lives from its first write to
 * its last read; buffers whose lifetimes overlap get disjoint offsets. Greedy by size, largest
 * first, lowest fitting offset: near-optimal for the chain-like graphs of classifiers. */
typedef struct {
    size_t bytes, offset;
    size_t first, last;
    int32_t root;
} arena_buf;

static int cmp_buf_size(const void *a, const void *b) {
    const arena_buf *x = *(const arena_buf *const *)a, *y = *(const arena_buf *const *)b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int cmp_buf_offset(const void *a, const void *b) {
    const arena_buf *x = *(const arena_buf *const *)a, *y = *(const arena_buf *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static qs_status plan_memory(qs_plan *p, const uint8_t *kind, qs_error *err) {
    const qs_graph *g = p->g;
    qs_status st = QS_OK;
    size_t nv = g->n_values;
    int32_t *root = malloc(sizeof(int32_t) * (nv ? nv : 1));
    arena_buf *bufs = calloc(nv ? nv : 1, sizeof(*bufs));
    arena_buf **order = calloc(nv ? nv : 1, sizeof(*order));
    arena_buf **live = calloc(nv ? nv : 1, sizeof(*live));
    size_t n_bufs = 0, total = 0;

    if (!root || !bufs || !order || !live) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory");
        goto cleanup;
    }
    for (size_t v = 0; v < nv; v++)
        root[v] = -1;
    /* One buffer per produced activation; alias outputs join their input's buffer. */
    for (size_t s = 0; s < p->n_steps; s++) {
        const qs_node *n = &g->nodes[p->steps[s].node];
        for (int32_t j = 0; j < n->n_outputs; j++) {
            int32_t v = n->outputs[j];
            if (v < 0 || kind[v] != KIND_ACTIVATION)
                continue;
            int32_t in0 = n->n_inputs > 0 ? n->inputs[0] : -1;
            if (j == 0 && (n->op->flags & QS_OP_ALIAS_INPUT0) && in0 >= 0 &&
                kind[in0] == KIND_ACTIVATION && root[in0] >= 0 &&
                view_bytes(&p->views[in0]) == view_bytes(&p->views[v])) {
                root[v] = root[in0];
                continue;
            }
            arena_buf *b = &bufs[n_bufs];
            b->bytes = (view_bytes(&p->views[v]) + QS_ARENA_ALIGN - 1) & ~(size_t)(QS_ARENA_ALIGN - 1);
            b->first = b->last = s;
            b->root = (int32_t)n_bufs;
            root[v] = (int32_t)n_bufs++;
        }
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v >= 0 && kind[v] == KIND_ACTIVATION && root[v] >= 0 && bufs[root[v]].last < s)
                bufs[root[v]].last = s;
        }
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        int32_t v = g->outputs[i];
        if (kind[v] == KIND_ACTIVATION && root[v] >= 0)
            bufs[root[v]].last = p->n_steps; /* outputs stay readable after the run */
    }
    for (size_t i = 0; i < n_bufs; i++)
        order[i] = &bufs[i];
    qsort(order, n_bufs, sizeof(*order), cmp_buf_size);
    for (size_t i = 0; i < n_bufs; i++) {
        arena_buf *b = order[i];
        size_t n_live = 0, offset = 0;
        for (size_t j = 0; j < i; j++) {
            if (order[j]->first <= b->last && b->first <= order[j]->last)
                live[n_live++] = order[j];
        }
        qsort(live, n_live, sizeof(*live), cmp_buf_offset);
        for (size_t j = 0; j < n_live; j++) {
            if (offset + b->bytes <= live[j]->offset)
                break;
            if (live[j]->offset + live[j]->bytes > offset)
                offset = live[j]->offset + live[j]->bytes;
        }
        b->offset = offset;
        if (offset + b->bytes > total)
            total = offset + b->bytes;
    }
    p->arena_bytes = total;
    p->arena = qs_aligned_alloc(total);
    if (!p->arena) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory for a %zu-byte arena", total);
        goto cleanup;
    }
    /* Touch every page now: first-touch page faults are expensive here, runs must not pay them. */
    memset(p->arena, 0, total ? total : 1);
    for (size_t v = 0; v < nv; v++) {
        if (kind[v] == KIND_ACTIVATION && root[v] >= 0)
            p->views[v].data = p->arena + bufs[root[v]].offset;
    }
cleanup:
    free(root);
    free(bufs);
    free(order);
    free(live);
    return st;
}

static qs_status own_buffer(qs_plan *p, void *data) {
    void **owned = realloc(p->owned, (p->n_owned + 1) * sizeof(*owned));
    if (!owned)
        return QS_ERR_NO_MEMORY;
    p->owned = owned;
    p->owned[p->n_owned++] = data;
    return QS_OK;
}

qs_status qs_plan_build(const qs_graph *g, const qs_tensor *inputs, size_t n_inputs,
                        qs_threadpool *pool, bool allocate, qs_plan **out, qs_error *err) {
    qs_status st = QS_OK;
    qs_plan *p = calloc(1, sizeof(*p));
    uint8_t *kind = calloc(g->n_values ? g->n_values : 1, 1);
    qs_view *in = malloc(sizeof(qs_view) * 1024), *outv = malloc(sizeof(qs_view) * 64);

    *out = NULL;
    if (!p || !kind || !in || !outv) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory");
        goto fail;
    }
    p->g = g;
    if (n_inputs != g->n_inputs) {
        st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "inputs", "%zu inputs given, the model has %zu",
                          n_inputs, g->n_inputs);
        goto fail;
    }
    p->views = calloc(g->n_values ? g->n_values : 1, sizeof(qs_view));
    p->steps = calloc(g->n_nodes ? g->n_nodes : 1, sizeof(qs_plan_step));
    p->input_dims = calloc(n_inputs ? n_inputs : 1, sizeof(*p->input_dims));
    if (!p->views || !p->steps || !p->input_dims) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory");
        goto fail;
    }
    for (size_t v = 0; v < g->n_values; v++) {
        const qs_value *val = g->values[v];
        qs_view_from_value(&p->views[v], val);
        kind[v] = val->kind == QS_VALUE_CONSTANT ? KIND_CONST
                  : val->kind == QS_VALUE_INPUT  ? KIND_INPUT
                                                 : KIND_ACTIVATION;
    }
    for (size_t i = 0; i < n_inputs; i++) {
        const qs_value *decl = g->values[g->inputs[i]];
        st = check_input(decl, &inputs[i], err);
        if (st != QS_OK)
            goto fail;
        qs_view *v = &p->views[g->inputs[i]];
        v->rank = inputs[i].rank;
        memcpy(v->dims, inputs[i].dims, sizeof(v->dims));
        memcpy(p->input_dims[i], inputs[i].dims, sizeof(p->input_dims[i]));
    }

    for (size_t ni = 0; ni < g->n_nodes; ni++) {
        const qs_node *n = &g->nodes[ni];
        bool known = true;
        if (n->n_inputs > 1024 || n->n_outputs > 64) {
            st = qs_node_error(err, QS_ERR_UNSUPPORTED, n, "too many inputs or outputs");
            goto fail;
        }
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v < 0) {
                omitted_view(&in[j]);
                continue;
            }
            in[j] = p->views[v];
            if (kind[v] != KIND_CONST && kind[v] != KIND_PLAN_CONST)
                known = false;
        }
        if (known || (n->op->flags & QS_OP_SHAPE_ONLY)) {
            /* Everything this node reads is known now: compute it once, here. */
            st = qs_node_eval(n, in, outv, pool, err);
            if (st != QS_OK)
                goto fail;
            for (int32_t j = 0; j < n->n_outputs; j++) {
                int32_t v = n->outputs[j];
                if (v < 0)
                    continue;
                if (own_buffer(p, outv[j].data) != QS_OK) {
                    qs_aligned_free(outv[j].data);
                    st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory");
                    goto fail;
                }
                p->views[v] = outv[j];
                kind[v] = KIND_PLAN_CONST;
            }
            continue;
        }
        for (int32_t j = 0; j < n->n_outputs; j++)
            omitted_view(&outv[j]);
        st = n->op->infer(n, in, outv, err);
        if (st != QS_OK)
            goto fail;
        for (int32_t j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] >= 0) {
                outv[j].data = NULL;
                p->views[n->outputs[j]] = outv[j];
            }
        }
        qs_plan_step *step = &p->steps[p->n_steps++];
        step->node = (int32_t)ni;
        if (n->op->scratch_bytes)
            step->scratch_bytes = n->op->scratch_bytes(n, in, outv, qs_threadpool_size(pool));
        if (step->scratch_bytes > p->scratch_bytes)
            p->scratch_bytes = step->scratch_bytes;
    }
    if (!allocate)
        goto done;

    st = plan_memory(p, kind, err);
    if (st != QS_OK)
        goto fail;
    if (p->scratch_bytes) {
        p->scratch = qs_aligned_alloc(p->scratch_bytes);
        if (!p->scratch) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory for scratch");
            goto fail;
        }
        memset(p->scratch, 0, p->scratch_bytes);
    }
    for (size_t s = 0; s < p->n_steps; s++) {
        qs_plan_step *step = &p->steps[s];
        const qs_node *n = &g->nodes[step->node];
        step->in = calloc((size_t)(n->n_inputs ? n->n_inputs : 1), sizeof(qs_view));
        step->out = calloc((size_t)(n->n_outputs ? n->n_outputs : 1), sizeof(qs_view));
        if (!step->in || !step->out) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "plan", "out of memory");
            goto fail;
        }
        for (int32_t j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] < 0)
                omitted_view(&step->in[j]);
            else
                step->in[j] = p->views[n->inputs[j]];
        }
        for (int32_t j = 0; j < n->n_outputs; j++) {
            if (n->outputs[j] < 0)
                omitted_view(&step->out[j]);
            else
                step->out[j] = p->views[n->outputs[j]];
        }
    }
done:
    free(kind);
    free(in);
    free(outv);
    *out = p;
    return QS_OK;
fail:
    free(kind);
    free(in);
    free(outv);
    qs_plan_free(p);
    return st;
}

bool qs_plan_matches(const qs_plan *p, const qs_tensor *inputs, size_t n_inputs) {
    if (n_inputs != p->g->n_inputs)
        return false;
    for (size_t i = 0; i < n_inputs; i++) {
        const qs_view *v = &p->views[p->g->inputs[i]];
        if (inputs[i].rank != v->rank)
            return false;
        for (int32_t d = 0; d < v->rank; d++)
            if (inputs[i].dims[d] != p->input_dims[i][d])
                return false;
    }
    return true;
}

qs_status qs_plan_run(qs_plan *p, const qs_tensor *inputs, qs_threadpool *pool, qs_error *err) {
    return qs_plan_run_observed(p, inputs, pool, NULL, NULL, err);
}

qs_status qs_plan_run_observed(qs_plan *p, const qs_tensor *inputs, qs_threadpool *pool,
                               qs_value_observer observe, void *octx, qs_error *err) {
    const qs_graph *g = p->g;
    for (size_t i = 0; i < g->n_inputs; i++) {
        if (!inputs[i].data && qs_tensor_numel(&inputs[i]) > 0)
            return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, g->values[g->inputs[i]]->name,
                                "input data is NULL");
        p->views[g->inputs[i]].data = inputs[i].data;
        if (observe)
            observe(octx, g->inputs[i], &p->views[g->inputs[i]]);
    }
    qs_exec_ctx ctx = {pool, qs_threadpool_size(pool), p->scratch, p->scratch_bytes};
    for (size_t s = 0; s < p->n_steps; s++) {
        qs_plan_step *step = &p->steps[s];
        const qs_node *n = &g->nodes[step->node];
        /* Graph inputs are the caller's memory: rebind them every run. */
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v >= 0 && g->values[v]->kind == QS_VALUE_INPUT)
                step->in[j].data = p->views[v].data;
        }
        qs_status st = n->op->run(n, step->in, step->out, &ctx);
        if (st != QS_OK)
            return qs_node_error(err, st, n, "run failed");
        for (int32_t j = 0; observe && j < n->n_outputs; j++)
            if (n->outputs[j] >= 0)
                observe(octx, n->outputs[j], &step->out[j]);
    }
    return QS_OK;
}
