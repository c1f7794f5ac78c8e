/* GET /models, /models/{name}, /models/{name}/size, /models/{name}/stats and
 * /models/{name}/quantization: what is served, how, and what int8 costs in accuracy. */
#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

#include "app.h"
#include "clock.h"
#include "handlers.h"
#include "json_util.h"

/* ---- shared pieces ------------------------------------------------------------------------------- */

static qs_model_entry *model_or_404(qs_request *req)
{
    qs_model_entry *m = qs_registry_find_model(req->app->registry, req->capture);
    if (!m) {
        qs_respond_fail(req, QS_API_MODEL_NOT_FOUND, "no model named \"%.64s\" (see GET /models)",
                        req->capture);
        return NULL;
    }
    req->model = m;
    return m;
}

/* A model's overall state: loading while any variant loads, then ready (all), degraded (some)
 * or failed (none). */
static const char *model_state(const qs_model_entry *m)
{
    size_t ready = 0, failed = 0;
    for (size_t j = 0; j < m->variant_count; j++) {
        qs_load_state st = qs_variant_state(&m->variants[j]);
        if (st == QS_LOAD_READY)
            ready++;
        else if (st == QS_LOAD_FAILED)
            failed++;
        else
            return "loading";
    }
    if (failed == 0)
        return "ready";
    return ready ? "degraded" : "failed";
}

static json_t *variant_brief(const qs_variant *v, bool is_default)
{
    qs_load_state st = qs_variant_state(v);
    json_t *jv = json_pack("{s:s,s:s,s:s,s:s,s:b}", "name", v->cfg->name, "mode",
                           qs_variant_mode_to_string(v->cfg->mode), "state",
                           qs_load_state_to_string(st), "phase", qs_load_state_phase(st),
                           "default", is_default);
    if (jv && st == QS_LOAD_FAILED)
        json_object_set_new(jv, "reason", json_string(v->reason));
    return jv;
}

static json_t *shape_json(const qs_tensor *t)
{
    json_t *a = json_array();
    for (int32_t d = 0; d < t->rank; d++)
        json_array_append_new(a, json_integer(t->dims[d]));
    return a;
}

static json_t *double_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *preprocess_json(const qs_model_entry *m, const qs_variant *ready)
{
    const qs_preprocess_config *p = &m->cfg->preprocess;
    int32_t channels = qs_preprocess_config_channels(p);
    json_t *j = json_pack("{s:s,s:s,s:f,s:s,s:o,s:o}", "color", qs_color_to_string(p->color),
                          "interpolation", qs_interp_to_string(p->interpolation), "scale",
                          p->scale, "layout", qs_layout_to_string(p->layout), "mean",
                          double_array(p->mean, (size_t)channels), "std",
                          double_array(p->std, (size_t)channels));
    switch (p->resize_mode) {
    case QS_RESIZE_SHORTER_SIDE:
        json_object_set_new(j, "resize", json_pack("{s:i}", "shorter_side", p->resize_shorter));
        break;
    case QS_RESIZE_EXACT:
        json_object_set_new(j, "resize", json_pack("{s:i,s:i}", "width", p->resize_width,
                                                   "height", p->resize_height));
        break;
    case QS_RESIZE_NONE:
    case QS_RESIZE_COUNT:
        json_object_set_new(j, "resize", json_null());
        break;
    }
    json_object_set_new(j, "crop", p->crop ? json_pack("{s:i,s:i}", "width", p->crop_width,
                                                       "height", p->crop_height)
                                           : json_null());
    if (ready)
        json_object_set_new(j, "tensor_shape", shape_json(&ready->input));
    return j;
}

static json_t *strings_json(char *const *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

/* How a variant is (or will be) made: its mode, source file and quantization options. */
static json_t *made_json(const qs_variant *v)
{
    const qs_variant_config *c = v->cfg;
    json_t *j = json_pack("{s:s,s:s}", "mode", qs_variant_mode_to_string(c->mode), "source",
                          c->onnx);
    switch (c->mode) {
    case QS_MODE_FP32:
        json_object_set_new(j, "description",
                            json_string("the ONNX graph run in float32 (QDQ pairs, if any, "
                                        "folded into float weights)"));
        break;
    case QS_MODE_STATIC:
        json_object_set_new(j, "description",
                            json_string("int8 weights and activations, activation ranges "
                                        "calibrated on images before serving"));
        json_object_set_new(j, "observer", json_string(qs_cfg_observer_to_string(c->observer)));
        if (c->observer == QS_CFG_OBSERVER_PERCENTILE)
            json_object_set_new(j, "percentile", json_real(c->percentile));
        if (c->observer == QS_CFG_OBSERVER_MOVING_MINMAX)
            json_object_set_new(j, "averaging_constant", json_real(c->averaging_constant));
        json_t *cal = json_pack("{s:s,s:i}", "images", c->calibration.images, "count",
                                c->calibration.count);
        if (qs_variant_state(v) == QS_LOAD_READY) {
            bool cached = atomic_load(&v->calibration_progress.cached);
            json_object_set_new(cal, "source", json_string(cached ? "cache" : "images"));
            json_object_set_new(cal, "used", json_integer((json_int_t)v->calibration_used));
            json_object_set_new(cal, "skipped",
                                cached ? json_null()
                                       : json_integer((json_int_t)v->calibration_skipped));
            json_object_set_new(cal, "ms", json_real(v->calibration_ms));
            json_object_set_new(cal, "cache_file",
                                v->cache_path ? json_string(v->cache_path) : json_null());
        }
        json_object_set_new(j, "calibration", cal);
        break;
    case QS_MODE_DYNAMIC:
        json_object_set_new(j, "description",
                            json_string("int8 weights, activation ranges measured per request"));
        break;
    case QS_MODE_QDQ:
        json_object_set_new(j, "description",
                            json_string("int8 execution of the QuantizeLinear/DequantizeLinear "
                                        "pairs already in the ONNX file"));
        break;
    case QS_MODE_COUNT: break;
    }
    if (c->mode == QS_MODE_STATIC || c->mode == QS_MODE_DYNAMIC) {
        json_object_set_new(j, "per_channel", json_boolean(c->per_channel));
        json_object_set_new(j, "symmetric_activations", json_boolean(c->symmetric_activations));
        json_object_set_new(j, "signed_activations", json_boolean(c->signed_activations));
        json_object_set_new(j, "reduce_range", json_boolean(c->reduce_range));
    }
    if (c->mode != QS_MODE_FP32)
        json_object_set_new(j, "keep_fp32", strings_json(c->keep_fp32, c->keep_fp32_count));
    return j;
}

static json_t *signature_json(const qs_model *engine, bool inputs)
{
    json_t *a = json_array();
    size_t n = inputs ? qs_model_input_count(engine) : qs_model_output_count(engine);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        qs_tensor t;
        qs_status st = inputs ? qs_model_input(engine, i, &name, &t)
                              : qs_model_output(engine, i, &name, &t);
        if (st != QS_OK)
            continue;
        json_array_append_new(a, json_pack("{s:s,s:s,s:o}", "name", name ? name : "", "dtype",
                                           qs_dtype_name(t.dtype), "shape", shape_json(&t)));
    }
    return a;
}

/* The default variant when ready, else the first ready one, else NULL. */
static const qs_variant *first_ready(const qs_model_entry *m)
{
    const qs_variant *d = &m->variants[m->cfg->default_variant];
    if (qs_variant_state(d) == QS_LOAD_READY)
        return d;
    for (size_t j = 0; j < m->variant_count; j++)
        if (qs_variant_state(&m->variants[j]) == QS_LOAD_READY)
            return &m->variants[j];
    return NULL;
}

/* ---- GET /models ----------------------------------------------------------------------------------- */

void qs_handle_models(qs_request *req)
{
    qs_registry *reg = req->app->registry;
    json_t *models = json_array();
    for (size_t i = 0; i < qs_registry_model_count(reg); i++) {
        qs_model_entry *m = qs_registry_model(reg, i);
        json_t *variants = json_array();
        for (size_t j = 0; j < m->variant_count; j++)
            json_array_append_new(variants,
                                  variant_brief(&m->variants[j], j == m->cfg->default_variant));
        json_array_append_new(models, json_pack("{s:s,s:s,s:s,s:o}", "name", m->cfg->name,
                                                "state", model_state(m), "default_variant",
                                                m->cfg->variants[m->cfg->default_variant].name,
                                                "variants", variants));
    }
    qs_respond_json(req, 200, json_pack("{s:o}", "models", models));
}

/* ---- GET /models/{name} ------------------------------------------------------------------------------ */

void qs_handle_model(qs_request *req)
{
    qs_model_entry *m = model_or_404(req);
    if (!m)
        return;
    const qs_variant *any = first_ready(m);
    json_t *variants = json_array();
    for (size_t j = 0; j < m->variant_count; j++) {
        const qs_variant *v = &m->variants[j];
        json_t *jv = variant_brief(v, j == m->cfg->default_variant);
        json_object_set_new(jv, "made", made_json(v));
        if (qs_variant_state(v) == QS_LOAD_READY) {
            json_object_set_new(jv, "inputs", signature_json(v->engine, true));
            json_object_set_new(jv, "outputs", signature_json(v->engine, false));
            json_object_set_new(jv, "nodes", json_integer((json_int_t)v->info.node_count));
            json_object_set_new(jv, "onnx_nodes", json_integer((json_int_t)v->info.onnx_node_count));
            json_object_set_new(jv, "parameters",
                                json_integer((json_int_t)v->info.parameter_count));
            json_object_set_new(jv, "sessions", json_integer((json_int_t)v->session_count));
            json_object_set_new(jv, "load_ms", json_real(v->load_ms));
            json_object_set_new(jv, "warmup_ms", json_real(v->warmup_ms));
        }
        json_array_append_new(variants, jv);
    }
    json_t *body = json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:b,s:o,s:o,s:o,s:o}", "name", m->cfg->name, "state", model_state(m),
        "onnx", m->cfg->onnx, "labels", m->cfg->labels ? json_string(m->cfg->labels) : json_null(),
        "classes", any ? json_integer((json_int_t)any->class_count) : json_null(), "softmax",
        m->cfg->softmax, "inputs", any ? signature_json(any->engine, true) : json_null(),
        "outputs", any ? signature_json(any->engine, false) : json_null(), "preprocess",
        preprocess_json(m, any), "variants", variants);
    if (body)
        json_object_set_new(body, "default_variant",
                            json_string(m->cfg->variants[m->cfg->default_variant].name));
    qs_respond_json(req, 200, body);
}

/* ---- GET /models/{name}/size -------------------------------------------------------------------------- */

static json_t *bytes_pair(json_t *obj, const char *key, uint64_t bytes)
{
    char mb_key[64];
    snprintf(mb_key, sizeof mb_key, "%s_mb", key);
    char bytes_key[64];
    snprintf(bytes_key, sizeof bytes_key, "%s_bytes", key);
    json_object_set_new(obj, bytes_key, json_integer((json_int_t)bytes));
    /* MB = 10^6 bytes, rounded to the byte (6 decimals). */
    json_object_set_new(obj, mb_key, json_real(round((double)bytes) / 1e6));
    return obj;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

static json_t *ratio(uint64_t fp32, uint64_t other)
{
    return other ? json_real((double)fp32 / (double)other) : json_null();
}

/* What a ready variant keeps in memory: the kernels' packed weights, the constants a run reads
 * directly, and every session's activation arena. */
static uint64_t resident_bytes(const qs_variant *v)
{
    return v->info.packed_bytes + v->info.held_bytes + v->arena_bytes;
}

void qs_handle_model_size(qs_request *req)
{
    qs_model_entry *m = model_or_404(req);
    if (!m)
        return;
    /* The reference for ratios: the default variant if it is a ready fp32 one, else the first. */
    const qs_variant *fp32 = NULL;
    const qs_variant *d = &m->variants[m->cfg->default_variant];
    if (d->cfg->mode == QS_MODE_FP32 && qs_variant_state(d) == QS_LOAD_READY)
        fp32 = d;
    for (size_t j = 0; !fp32 && j < m->variant_count; j++)
        if (m->variants[j].cfg->mode == QS_MODE_FP32 &&
            qs_variant_state(&m->variants[j]) == QS_LOAD_READY)
            fp32 = &m->variants[j];
    json_t *variants = json_array();
    for (size_t j = 0; j < m->variant_count; j++) {
        const qs_variant *v = &m->variants[j];
        qs_load_state st = qs_variant_state(v);
        json_t *jv = json_pack("{s:s,s:s,s:s}", "name", v->cfg->name, "mode",
                               qs_variant_mode_to_string(v->cfg->mode), "state",
                               qs_load_state_to_string(st));
        bool ready = st == QS_LOAD_READY;
        bytes_pair(jv, "onnx_file", ready ? v->info.file_bytes : file_size(v->cfg->onnx));
        if (ready) {
            uint64_t resident = resident_bytes(v);
            bytes_pair(jv, "parameter", v->info.weight_bytes);
            bytes_pair(jv, "resident", resident);
            bytes_pair(jv, "packed_weight", v->info.packed_bytes);
            bytes_pair(jv, "held_weight", v->info.held_bytes);
            bytes_pair(jv, "arena", v->arena_bytes);
            json_object_set_new(jv, "sessions", json_integer((json_int_t)v->session_count));
            json_object_set_new(jv, "parameter_count",
                                json_integer((json_int_t)v->info.parameter_count));
            if (fp32 && v->cfg->mode != QS_MODE_FP32) {
                uint64_t fres = resident_bytes(fp32);
                json_object_set_new(
                    jv, "fp32_ratio",
                    json_pack("{s:s,s:o,s:o,s:o}", "reference", fp32->cfg->name, "parameter",
                              ratio(fp32->info.weight_bytes, v->info.weight_bytes), "resident",
                              ratio(fres, resident), "onnx_file",
                              ratio(fp32->info.file_bytes, v->info.file_bytes)));
            }
        } else if (st == QS_LOAD_FAILED) {
            json_object_set_new(jv, "reason", json_string(v->reason));
        }
        json_array_append_new(variants, jv);
    }
    qs_respond_json(req, 200,
                    json_pack("{s:s,s:s,s:o}", "model", m->cfg->name, "units",
                              "bytes; MB = 10^6 bytes", "variants", variants));
}

/* ---- GET /models/{name}/stats ---------------------------------------------------------------------------- */

static json_t *latency_json(const qs_latency_summary *s)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)s->count, "mean",
                     s->mean_ms, "p50", s->p50_ms, "p90", s->p90_ms, "p99", s->p99_ms, "max",
                     s->max_ms);
}

static json_t *report_json(const qs_stats_report *r)
{
    return json_pack("{s:I,s:I,s:f,s:f,s:{s:o,s:o}}", "requests", (json_int_t)r->requests,
                     "errors", (json_int_t)r->errors, "seconds", r->seconds, "throughput_rps",
                     r->throughput_rps, "latency_ms", "total", latency_json(&r->total),
                     "inference", latency_json(&r->inference));
}

void qs_handle_model_stats(qs_request *req)
{
    qs_model_entry *m = model_or_404(req);
    if (!m)
        return;
    int64_t now = qs_clock_s();
    json_t *variants = json_array();
    for (size_t j = 0; j < m->variant_count; j++) {
        qs_variant *v = &m->variants[j];
        qs_stats_report all, win;
        qs_stats_report_get(v->stats, now, &all, &win);
        json_array_append_new(
            variants, json_pack("{s:s,s:s,s:o,s:o}", "name", v->cfg->name, "state",
                                qs_load_state_to_string(qs_variant_state(v)), "since_start",
                                report_json(&all), "window", report_json(&win)));
    }
    qs_respond_json(req, 200,
                    json_pack("{s:s,s:i,s:I,s:o}", "model", m->cfg->name, "window_s",
                              req->app->config->stats.window_s, "uptime_s",
                              (json_int_t)(now - req->app->start_s), "variants", variants));
}

/* ---- GET /models/{name}/quantization ------------------------------------------------------------------ */

/* How the ranges of a layer were chosen, as the recipe says. */
static void layer_observer(const qs_variant_config *c, char *buf, size_t size)
{
    switch (c->mode) {
    case QS_MODE_STATIC:
        if (c->observer == QS_CFG_OBSERVER_PERCENTILE)
            snprintf(buf, size, "percentile %g", c->percentile);
        else if (c->observer == QS_CFG_OBSERVER_MOVING_MINMAX)
            snprintf(buf, size, "moving_minmax %g", c->averaging_constant);
        else
            snprintf(buf, size, "%s", qs_cfg_observer_to_string(c->observer));
        break;
    case QS_MODE_QDQ: snprintf(buf, size, "from the QDQ file"); break;
    case QS_MODE_DYNAMIC: snprintf(buf, size, "per-run min/max"); break;
    case QS_MODE_FP32:
    case QS_MODE_COUNT: snprintf(buf, size, "none"); break;
    }
}

static json_t *layers_json(const qs_variant *v)
{
    const qs_variant_report *rep = &v->report;
    char observer[64];
    layer_observer(v->cfg, observer, sizeof observer);
    json_t *a = json_array();
    for (size_t i = 0; i < rep->layer_count; i++) {
        json_t *row = qs_report_layer_json(&rep->layers[i], i + 1, observer);
        if (row)
            json_array_append_new(a, row);
    }
    return a;
}

/* The report of one int8 variant, in whatever state it is. */
static json_t *report_of(const qs_variant *v)
{
    qs_load_state st = qs_variant_state(v);
    if (st == QS_LOAD_FAILED)
        return json_pack("{s:s,s:s}", "status", "failed", "reason",
                         "the variant failed to load (see the variant's reason)");
    if (st != QS_LOAD_READY)
        return json_pack("{s:s,s:s}", "status", qs_report_status_to_string(QS_REPORT_PENDING),
                         "reason", "computed at load, after calibration and warm-up");
    const qs_variant_report *rep = &v->report;
    json_t *j = json_pack("{s:s}", "status", qs_report_status_to_string(rep->status));
    if (rep->status != QS_REPORT_READY) {
        json_object_set_new(j, "reason", json_string(rep->reason));
        return j;
    }
    const qs_model_agreement *a = &rep->agreement;
    json_object_set_new(j, "images",
                        json_pack("{s:s,s:s,s:I,s:I,s:I}", "source", rep->images, "from",
                                  rep->images_from, "listed", (json_int_t)rep->requested, "used",
                                  (json_int_t)rep->used, "skipped", (json_int_t)rep->skipped));
    json_object_set_new(j, "reference",
                        json_pack("{s:o,s:s}", "variant",
                                  rep->reference[0] ? json_string(rep->reference) : json_null(),
                                  "onnx", rep->reference_onnx));
    json_object_set_new(j, "source", json_string(atomic_load(&v->report_progress.cached)
                                                     ? "cache"
                                                     : "computed"));
    json_object_set_new(j, "ms", json_real(rep->ms));
    json_object_set_new(j, "model",
                        json_pack("{s:I,s:o,s:o,s:o}", "samples", (json_int_t)a->samples,
                                  "top1_agreement", qs_json_real_or_null(a->top1_agreement),
                                  "top5_overlap", qs_json_real_or_null(a->top5_overlap),
                                  "mean_kl", qs_json_real_or_null(a->mean_kl)));
    json_object_set_new(j, "layer_count", json_integer((json_int_t)rep->layer_count));
    json_object_set_new(j, "layers", layers_json(v));
    const char *note = NULL;
    if (v->cfg->mode == QS_MODE_DYNAMIC)
        note = "dynamic quantization picks activation ranges per run: there are no fixed "
               "per-layer scales to compare, only the model-level agreement";
    else if (v->cfg->mode == QS_MODE_QDQ)
        note = "a QDQ file is compared with the same file run in float (weights dequantized, "
               "the activations' quantize/dequantize pairs dropped): the rows show what int8 "
               "execution costs each layer";
    if (note)
        json_object_set_new(j, "note", json_string(note));
    return j;
}

void qs_handle_model_quantization(qs_request *req)
{
    qs_model_entry *m = model_or_404(req);
    if (!m)
        return;
    json_t *variants = json_array();
    for (size_t j = 0; j < m->variant_count; j++) {
        const qs_variant *v = &m->variants[j];
        if (v->cfg->mode == QS_MODE_FP32)
            continue;
        json_t *jv = variant_brief(v, j == m->cfg->default_variant);
        json_object_set_new(jv, "recipe", made_json(v));
        json_object_set_new(jv, "report", report_of(v));
        json_array_append_new(variants, jv);
    }
    json_t *body = json_pack("{s:s,s:s,s:o}", "model", m->cfg->name, "state", model_state(m),
                             "variants", variants);
    if (body && json_array_size(variants) == 0) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "model \"%s\" has no int8 variant (every variant is fp32): nothing is "
                 "quantized, so there is nothing to report",
                 m->cfg->name);
        json_object_set_new(body, "message", json_string(msg));
    }
    qs_respond_json(req, 200, body);
}
