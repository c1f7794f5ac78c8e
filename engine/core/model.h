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

#endif
