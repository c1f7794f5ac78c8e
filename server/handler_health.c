/* GET /health (the process answers) and GET /health/ready (every model can serve). */
#include <jansson.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "handlers.h"

void qs_handle_health(qs_request *req)
{
    qs_app *app = req->app;
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:f}", "status", "ok", "version", PACKAGE_VERSION,
                             "engine", qs_engine_version(), "isa", qs_isa_name(qs_engine_isa()),
                             "uptime_s", qs_ns_to_ms(qs_clock_ns() - app->start_ns) / 1000.0);
    qs_respond_json(req, 200, body);
}

/* An image step at load (calibration, report), running or done; NULL before it starts. */
static json_t *progress_json(const qs_progress *p, uint64_t now_ns)
{
    qs_progress_view pv;
    qs_progress_get(p, now_ns, &pv);
    if (!pv.started)
        return NULL;
    return json_pack("{s:I,s:I,s:f,s:f,s:f,s:o,s:b,s:s}", "done", (json_int_t)pv.done, "total",
                     (json_int_t)pv.total, "percent", pv.percent, "elapsed_s", pv.elapsed_s,
                     "images_per_s", pv.images_per_s, "eta_s",
                     pv.eta_s >= 0.0 ? json_real(pv.eta_s) : json_null(), "finished",
                     pv.finished, "source", pv.cached ? "cache" : "images");
}

/*
 * Ready means: the loader has finished with every variant, and every model's default variant is
 * READY (so every model answers POST /predict without a variant). A variant that failed to load
 * is listed with its reason but does not hold readiness back: it is settled, and retrying will not
 * change it. While anything is still loading the answer is 503 with the progress: variants
 * counted by state, and for each variant its calibration and report over images (done/total,
 * percent, images/s, ETA), running or finished.
 */
void qs_handle_ready(qs_request *req)
{
    qs_registry *reg = req->app->registry;
    json_t *models = json_array();
    size_t total = 0, ready = 0, failed = 0, loading = 0;
    bool defaults_ready = true;
    uint64_t now_ns = qs_clock_ns();
    for (size_t i = 0; i < qs_registry_model_count(reg); i++) {
        qs_model_entry *m = qs_registry_model(reg, i);
        json_t *variants = json_array();
        for (size_t j = 0; j < m->variant_count; j++) {
            qs_variant *v = &m->variants[j];
            qs_load_state st = qs_variant_state(v);
            json_t *jv = json_pack("{s:s,s:s,s:s,s:b}", "name", v->cfg->name, "state",
                                   qs_load_state_to_string(st), "phase", qs_load_state_phase(st),
                                   "default", j == m->cfg->default_variant);
            if (st == QS_LOAD_FAILED)
                json_object_set_new(jv, "reason", json_string(v->reason));
            json_t *cal = progress_json(&v->calibration_progress, now_ns);
            if (cal)
                json_object_set_new(jv, "calibration", cal);
            json_t *rep = progress_json(&v->report_progress, now_ns);
            if (rep)
                json_object_set_new(jv, "report", rep);
            json_array_append_new(variants, jv);
            total++;
            if (st == QS_LOAD_READY)
                ready++;
            else if (st == QS_LOAD_FAILED)
                failed++;
            else
                loading++;
            if (j == m->cfg->default_variant && st != QS_LOAD_READY)
                defaults_ready = false;
        }
        json_array_append_new(models, json_pack("{s:s,s:o}", "name", m->cfg->name, "variants",
                                                variants));
    }
    bool is_ready = loading == 0 && defaults_ready;
    json_t *body = json_pack("{s:b,s:o,s:{s:I,s:I,s:I,s:I}}", "ready", is_ready, "models", models,
                             "progress", "total", (json_int_t)total, "ready", (json_int_t)ready,
                             "loading", (json_int_t)loading, "failed", (json_int_t)failed);
    if (is_ready) {
        qs_respond_json(req, 200, body);
        return;
    }
    /* 503 with the progress in the body: the same document, flagged not ready. */
    qs_respond_json(req, 503, body);
}
