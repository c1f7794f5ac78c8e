/* Execution plan: shapes for concrete input dims, plan-time evaluation of shape subgraphs, the
 * activation memory plan (liveness-based arena offsets) and the step list a run walks. */
#ifndef QS_CORE_PLAN_H
#define QS_CORE_PLAN_H

#include "core/graph.h"
#include "kernels/kernels.h"
#include "ops/op.h"

typedef struct {
    int32_t node;      /* index in g->nodes */
    qs_view *in;       /* node->n_inputs views, data resolved (graph inputs patched per run) */
    qs_view *out;
    size_t scratch_bytes;
} qs_plan_step;

typedef struct qs_plan {
    const qs_graph *g;
    qs_view *views;            /* one per value */
    qs_plan_step *steps;
    size_t n_steps;
    void **owned;              /* buffers of values computed at plan time */
    size_t n_owned;
    uint8_t *arena;
    size_t arena_bytes;
    void *scratch;
    size_t scratch_bytes;
    int64_t (*input_dims)[QS_MAX_RANK]; /* the input dims this plan was built for */
} qs_plan;

/* Build a plan for the given input dims (inputs[i].dims; data ignored except for rank/dims).
 * With allocate == false only shapes are computed (used at load to annotate the graph); the arena
 * and scratch are not allocated and the plan cannot run. */
qs_status qs_plan_build(const qs_graph *g, const qs_tensor *inputs, size_t n_inputs,
                        qs_threadpool *pool, bool allocate, qs_plan **out, qs_error *err);
void qs_plan_free(qs_plan *p);
/* True if the plan was built for exactly these input dims. */
bool qs_plan_matches(const qs_plan *p, const qs_tensor *inputs, size_t n_inputs);
qs_status qs_plan_run(qs_plan *p, const qs_tensor *inputs, qs_threadpool *pool, qs_error *err);

/* Called with every value a run produces (and the graph inputs), right after it is computed:
 * calibration and the int8 report watch activations this way. */
typedef void (*qs_value_observer)(void *ctx, int32_t value, const qs_view *view);
qs_status qs_plan_run_observed(qs_plan *p, const qs_tensor *inputs, qs_threadpool *pool,
                               qs_value_observer observe, void *ctx, qs_error *err);

/* Evaluate one node whose inputs all have data, writing freshly allocated outputs into out_data
 * (aligned, caller frees with qs_aligned_free). Used for constant folding. */
qs_status qs_node_eval(const qs_node *n, const qs_view *in, qs_view *out, qs_threadpool *pool,
                       qs_error *err);

/* A view of a graph value's declared shape and (for constants) data. */
void qs_view_from_value(qs_view *view, const qs_value *v);

#endif
