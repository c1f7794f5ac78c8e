/* Sessions: a thread pool and a plan per input shape; runs and output views. */
#include <stdlib.h>
#include <string.h>

#include "core/model.h"

void qs_session_options_init(qs_session_options *opts) {
    if (opts) {
        memset(opts, 0, sizeof(*opts));
        opts->threads = 1;
    }
}

qs_status qs_session_create(const qs_model *model, const qs_session_options *opts, qs_session **out,
                            qs_error *err) {
    int32_t threads = opts && opts->threads > 0 ? opts->threads : 1;
    if (!model || !out)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "session", "model or out is NULL");
    *out = NULL;
    if (threads > 256)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "session", "threads %d exceeds 256",
                            (int)threads);
    qs_session *s = calloc(1, sizeof(*s));
    if (!s)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "session", "out of memory");
    s->model = model;
    qs_status st = qs_threadpool_create(threads, &s->pool);
    if (st != QS_OK) {
        free(s);
        return qs_error_set(err, st, "session", "cannot start %d threads", (int)threads);
    }
    *out = s;
    return QS_OK;
}

void qs_session_free(qs_session *session) {
    if (!session)
        return;
    qs_plan_free(session->plan);
    qs_threadpool_free(session->pool);
    free(session);
}

qs_status qs_session_run(qs_session *s, const qs_tensor *inputs, size_t n_inputs, qs_error *err) {
    return qs_session_run_observed(s, inputs, n_inputs, NULL, NULL, err);
}

qs_status qs_session_run_observed(qs_session *s, const qs_tensor *inputs, size_t n_inputs,
                                  qs_value_observer observe, void *ctx, qs_error *err) {
    if (!s || (!inputs && n_inputs))
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "session", "session or inputs is NULL");
    const qs_graph *g = s->model->g;
    if (n_inputs != g->n_inputs)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "session", "%zu inputs given, the model "
                            "has %zu", n_inputs, g->n_inputs);
    if (!s->plan || !qs_plan_matches(s->plan, inputs, n_inputs)) {
        qs_plan *p = NULL;
        qs_status st = qs_plan_build(g, inputs, n_inputs, s->pool, true, &p, err);
        if (st != QS_OK)
            return st;
        qs_plan_free(s->plan);
        s->plan = p;
    }
    for (size_t i = 0; i < n_inputs; i++) {
        if (inputs[i].dtype != g->values[g->inputs[i]]->dtype)
            return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, g->values[g->inputs[i]]->name,
                                "input has type %s, the model expects %s",
                                qs_dtype_name(inputs[i].dtype),
                                qs_dtype_name(g->values[g->inputs[i]]->dtype));
    }
    return qs_plan_run_observed(s->plan, inputs, s->pool, observe, ctx, err);
}

qs_status qs_session_output(const qs_session *s, size_t i, qs_tensor *out) {
    if (!s || !out || !s->plan || i >= s->model->g->n_outputs)
        return QS_ERR_INVALID_ARGUMENT;
    const qs_view *v = &s->plan->views[s->model->g->outputs[i]];
    memset(out, 0, sizeof(*out));
    out->dtype = v->dtype;
    out->rank = v->rank;
    for (int32_t d = 0; d < v->rank; d++)
        out->dims[d] = v->dims[d];
    out->data = v->data;
    return QS_OK;
}

uint64_t qs_session_arena_bytes(const qs_session *s) {
    return s && s->plan ? (uint64_t)(s->plan->arena_bytes + s->plan->scratch_bytes) : 0;
}
