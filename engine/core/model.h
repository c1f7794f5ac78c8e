/* The loaded model (immutable after load) and the session that runs it. */
#ifndef QS_CORE_MODEL_H
#define QS_CORE_MODEL_H

#include "core/graph.h"
#include "core/plan.h"

struct qs_model {
    qs_graph *g;          /* optimized graph with packed weights in node params */
    qs_model_info info;
    bool dynamic_batch;   /* some input has a dynamic leading dim */
};

struct qs_session {
    const qs_model *model;
    qs_threadpool *pool;
    qs_plan *plan;        /* for the input dims of the last run; rebuilt when they change */
};

/* Internal load flags. */
enum {
    /* Keep residual Adds out of the fused convolutions, so the conv outputs before the Add stay
     * observable values (calibration needs their ranges). */
    QS_LOAD_NO_RESIDUAL_FUSION = 1u << 0,
};

qs_status qs_model_load_internal(const void *data, size_t size, const qs_model_options *opts,
                                 uint32_t flags, qs_model **out, qs_error *err);
/* Run with a per-value observer (see qs_plan_run_observed). */
qs_status qs_session_run_observed(qs_session *s, const qs_tensor *inputs, size_t n_inputs,
                                  qs_value_observer observe, void *ctx, qs_error *err);

#endif
