/* Model registry and its loader thread: load, check, create sessions, warm up, publish the state. */
#include "registry.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib_cache.h"
#include "calibration.h"
#include "clock.h"
#include "log.h"

struct qs_registry {
    const qs_config *config;
    qs_model_entry *models;
    size_t model_count;
    size_t session_count;
    int32_t intra_op_threads;
    qs_image_limits limits;
    char *cache_dir;            /* calibration cache directory, NULL without a cache */
    pthread_t loader;
    bool loader_started;
    _Atomic bool stop;
    _Atomic bool settled;
};

typedef struct {
    const char *phase;
    const char *state;
} load_state_names;

static const load_state_names state_names[QS_LOAD_STATE_COUNT] = {
#define QS_LOAD_STATE_NAMES(name, phase, state) [name] = {phase, state},
    QS_LOAD_STATE_LIST(QS_LOAD_STATE_NAMES)
#undef QS_LOAD_STATE_NAMES
};

const char *qs_load_state_to_string(qs_load_state state)
{
    return (unsigned)state < QS_LOAD_STATE_COUNT ? state_names[state].state : "failed";
}

const char *qs_load_state_phase(qs_load_state state)
{
    return (unsigned)state < QS_LOAD_STATE_COUNT ? state_names[state].phase : "failed";
}

qs_load_state qs_variant_state(const qs_variant *variant)
{
    return (qs_load_state)atomic_load_explicit(&variant->state, memory_order_acquire);
}

static void set_state(qs_variant *v, qs_load_state state)
{
    atomic_store_explicit(&v->state, (int)state, memory_order_release);
}

void qs_preprocess_spec_from_config(const qs_preprocess_config *cfg, qs_preprocess_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->color = cfg->color == QS_COLOR_GRAY ? QS_IMAGE_COLOR_GRAY : QS_IMAGE_COLOR_RGB;
    spec->order = cfg->color == QS_COLOR_BGR ? QS_PREPROCESS_ORDER_BGR : QS_PREPROCESS_ORDER_RGB;
    switch (cfg->resize_mode) {
    case QS_RESIZE_SHORTER_SIDE:
        spec->resize = QS_PREPROCESS_RESIZE_SHORTER_SIDE;
        spec->resize_size = (uint32_t)cfg->resize_shorter;
        break;
    case QS_RESIZE_EXACT:
        spec->resize = QS_PREPROCESS_RESIZE_EXACT;
        spec->resize_width = (uint32_t)cfg->resize_width;
        spec->resize_height = (uint32_t)cfg->resize_height;
        break;
    case QS_RESIZE_NONE:
    case QS_RESIZE_COUNT:
        spec->resize = QS_PREPROCESS_RESIZE_NONE;
        break;
    }
    if (cfg->crop) {
        spec->crop_width = (uint32_t)cfg->crop_width;
        spec->crop_height = (uint32_t)cfg->crop_height;
    }
    spec->interp = cfg->interpolation == QS_INTERP_NEAREST ? QS_PREPROCESS_INTERP_NEAREST
                                                            : QS_PREPROCESS_INTERP_BILINEAR;
    spec->scale = (float)cfg->scale;
    for (int c = 0; c < 3; c++) {
        spec->mean[c] = (float)cfg->mean[c];
        spec->std[c] = (float)cfg->std[c];
    }
    spec->layout = cfg->layout == QS_LAYOUT_NHWC ? QS_PREPROCESS_LAYOUT_NHWC
                                                 : QS_PREPROCESS_LAYOUT_NCHW;
}

/* ---- creation and lookup ------------------------------------------------------------------- */

qs_registry *qs_registry_create(const qs_config *config, size_t session_count,
                                int32_t intra_op_threads, int64_t now_s)
{
    qs_registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->config = config;
    r->session_count = session_count;
    r->intra_op_threads = intra_op_threads;
    r->models = calloc(config->model_count, sizeof *r->models);
    if (!r->models)
        goto fail;
    r->model_count = config->model_count;
    r->cache_dir = qs_calib_cache_dir(config);
    for (size_t i = 0; i < config->model_count; i++) {
        qs_model_entry *m = &r->models[i];
        m->cfg = &config->models[i];
        qs_preprocess_spec_from_config(&m->cfg->preprocess, &m->spec);
        m->variants = calloc(m->cfg->variant_count, sizeof *m->variants);
        if (!m->variants)
            goto fail;
        m->variant_count = m->cfg->variant_count;
        for (size_t j = 0; j < m->variant_count; j++) {
            qs_variant *v = &m->variants[j];
            v->cfg = &m->cfg->variants[j];
            v->model = m;
            atomic_init(&v->state, QS_LOAD_QUEUED);
            v->stats = qs_stats_create(config->stats.window_s, now_s);
            if (!v->stats)
                goto fail;
        }
    }
    return r;
fail:
    qs_registry_free(r);
    return NULL;
}

void qs_registry_set_image_limits(qs_registry *registry, const qs_image_limits *limits)
{
    registry->limits = *limits;
}

size_t qs_registry_model_count(const qs_registry *registry)
{
    return registry->model_count;
}

qs_model_entry *qs_registry_model(qs_registry *registry, size_t index)
{
    return index < registry->model_count ? &registry->models[index] : NULL;
}

qs_model_entry *qs_registry_find_model(qs_registry *registry, const char *name)
{
    for (size_t i = 0; name && i < registry->model_count; i++)
        if (strcmp(registry->models[i].cfg->name, name) == 0)
            return &registry->models[i];
    return NULL;
}

qs_variant *qs_model_entry_find_variant(qs_model_entry *model, const char *name)
{
    if (!name)
        return &model->variants[model->cfg->default_variant];
    for (size_t i = 0; i < model->variant_count; i++)
        if (strcmp(model->variants[i].cfg->name, name) == 0)
            return &model->variants[i];
    return NULL;
}

const char *qs_model_entry_label(const qs_model_entry *model, size_t index)
{
    return index < model->labels.count ? model->labels.names[index] : NULL;
}

bool qs_registry_all_ready(qs_registry *registry)
{
    for (size_t i = 0; i < registry->model_count; i++)
        for (size_t j = 0; j < registry->models[i].variant_count; j++)
            if (qs_variant_state(&registry->models[i].variants[j]) != QS_LOAD_READY)
                return false;
    return true;
}

bool qs_registry_settled(qs_registry *registry)
{
    return atomic_load(&registry->settled);
}

/* ---- loading one variant ------------------------------------------------------------------- */

static void release_engine(qs_variant *v)
{
    for (size_t i = 0; v->sessions && i < v->session_count; i++)
        qs_session_free(v->sessions[i]);
    free(v->sessions);
    v->sessions = NULL;
    v->session_count = 0;
    qs_model_free(v->engine);
    v->engine = NULL;
}

__attribute__((format(printf, 2, 3))) static bool fail_variant(qs_variant *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
    release_engine(v);
    memset(&v->info, 0, sizeof v->info);
    set_state(v, QS_LOAD_FAILED);
    QS_WARN("model %s variant %s failed to load: %s", v->model->cfg->name, v->cfg->name,
            v->reason);
    return false;
}

static void format_engine_error(char *buf, size_t size, qs_status st, const qs_error *err)
{
    if (err->where[0])
        snprintf(buf, size, "%s: %s: %s", qs_status_to_string(st), err->where, err->message);
    else
        snprintf(buf, size, "%s: %s", qs_status_to_string(st),
                 err->message[0] ? err->message : "no details");
}

static void format_dims(char *buf, size_t size, const int64_t *dims, int32_t rank)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < rank && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%lld", i ? "," : "[", (long long)dims[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
    if (used < size)
        snprintf(buf + used, size - used, "%s", rank ? "]" : "[]");
}

/* The batch-1 tensor the model's preprocessing produces. */
static bool pipeline_input(qs_variant *v, qs_tensor *input, size_t *numel)
{
    uint32_t shape[4];
    qs_image_error ierr;
    if (qs_preprocess_output_shape(&v->model->spec, 256, 256, shape, numel, &ierr) !=
        QS_IMAGE_OK)
        return fail_variant(v, "preprocessing: %s", ierr.message);
    memset(input, 0, sizeof *input);
    input->dtype = QS_DTYPE_FLOAT32;
    input->rank = 4;
    for (int d = 0; d < 4; d++)
        input->dims[d] = shape[d];
    return true;
}

/* Pick the image input and check it against what the preprocessing produces. */
static bool bind_input(qs_variant *v)
{
    const qs_model_entry *m = v->model;
    size_t n = qs_model_input_count(v->engine);
    const char *name = NULL;
    qs_tensor desc;
    if (n != 1)
        return fail_variant(v, "the model has %zu inputs; quantserve feeds exactly one image tensor",
                            n);
    if (qs_model_input(v->engine, 0, &name, &desc) != QS_OK)
        return fail_variant(v, "cannot describe input 0");
    if (m->cfg->input && strcmp(m->cfg->input, name) != 0)
        return fail_variant(v, "the model has no input \"%s\" (its input is \"%s\")", m->cfg->input,
                            name);
    v->input_index = 0;
    if (desc.dtype != QS_DTYPE_FLOAT32)
        return fail_variant(v, "input \"%s\" is %s; the image pipeline produces float32", name,
                            qs_dtype_name(desc.dtype));
    qs_tensor want;
    size_t count = 0;
    if (!pipeline_input(v, &want, &count))
        return false;
    char have_s[96], want_s[96];
    format_dims(have_s, sizeof have_s, desc.dims, desc.rank);
    format_dims(want_s, sizeof want_s, want.dims, want.rank);
    if (desc.rank != want.rank)
        return fail_variant(v, "input \"%s\" has shape %s; the preprocessing produces %s", name,
                            have_s, want_s);
    for (int32_t d = 0; d < want.rank; d++) {
        if (desc.dims[d] >= 0 && desc.dims[d] != want.dims[d])
            return fail_variant(v,
                                "input \"%s\" has shape %s but the preprocessing produces %s "
                                "(check preprocess.color, resize, crop and layout)",
                                name, have_s, want_s);
    }
    v->input = want;
    v->input_numel = count;
    return true;
}

static bool bind_output(qs_variant *v)
{
    const qs_model_entry *m = v->model;
    size_t n = qs_model_output_count(v->engine);
    v->output_index = 0;
    if (n == 0)
        return fail_variant(v, "the model has no outputs");
    if (m->cfg->output) {
        size_t i;
        for (i = 0; i < n; i++) {
            const char *name = NULL;
            if (qs_model_output(v->engine, i, &name, NULL) == QS_OK && name &&
                strcmp(name, m->cfg->output) == 0)
                break;
        }
        if (i == n)
            return fail_variant(v, "the model has no output \"%s\"", m->cfg->output);
        v->output_index = i;
    }
    return true;
}

static bool create_sessions(qs_registry *r, qs_variant *v)
{
    qs_session_options so;
    qs_session_options_init(&so);
    so.threads = r->intra_op_threads;
    v->sessions = calloc(r->session_count, sizeof *v->sessions);
    if (!v->sessions)
        return fail_variant(v, "out of memory for sessions");
    v->session_count = r->session_count;
    for (size_t i = 0; i < r->session_count; i++) {
        qs_error err;
        qs_error_clear(&err);
        qs_status st = qs_session_create(v->engine, &so, &v->sessions[i], &err);
        if (st != QS_OK) {
            char msg[512];
            format_engine_error(msg, sizeof msg, st, &err);
            return fail_variant(v, "cannot create session %zu: %s", i, msg);
        }
    }
    return true;
}

/* One inference per session on a zero tensor: plans each session's arena now, so requests do not
 * allocate, and checks the output. */
static bool warm_up(qs_variant *v)
{
    const qs_model_entry *m = v->model;
    float *zeros = calloc(v->input_numel, sizeof *zeros);
    if (!zeros)
        return fail_variant(v, "out of memory for the warm-up input");
    qs_tensor in = v->input;
    in.data = zeros;
    bool ok = true;
    v->arena_bytes = 0;
    for (size_t i = 0; i < v->session_count && ok; i++) {
        qs_error err;
        qs_error_clear(&err);
        qs_status st = qs_session_run(v->sessions[i], &in, 1, &err);
        if (st != QS_OK) {
            char msg[512];
            format_engine_error(msg, sizeof msg, st, &err);
            ok = fail_variant(v, "warm-up inference failed: %s", msg);
            break;
        }
        v->arena_bytes += qs_session_arena_bytes(v->sessions[i]);
    }
    free(zeros);
    if (!ok)
        return false;
    qs_tensor out;
    const char *out_name = NULL;
    qs_model_output(v->engine, v->output_index, &out_name, NULL);
    if (qs_session_output(v->sessions[0], v->output_index, &out) != QS_OK)
        return fail_variant(v, "cannot read output %zu after the warm-up", v->output_index);
    if (out.dtype != QS_DTYPE_FLOAT32)
        return fail_variant(v, "output \"%s\" is %s; class scores must be float32",
                            out_name ? out_name : "?", qs_dtype_name(out.dtype));
    size_t classes = qs_tensor_numel(&out);
    if (out.rank < 1 || classes == 0)
        return fail_variant(v, "output \"%s\" is empty", out_name ? out_name : "?");
    v->class_count = classes;
    if (m->labels.count && m->labels.count != classes)
        return fail_variant(v, "the labels file has %zu labels but output \"%s\" has %zu classes",
                            m->labels.count, out_name ? out_name : "?", classes);
    return true;
}

static qs_observer_kind engine_observer(qs_cfg_observer o)
{
    switch (o) {
    case QS_CFG_OBSERVER_MINMAX: return QS_OBSERVER_MINMAX;
    case QS_CFG_OBSERVER_MOVING_MINMAX: return QS_OBSERVER_MOVING_MINMAX;
    case QS_CFG_OBSERVER_PERCENTILE: return QS_OBSERVER_PERCENTILE;
    case QS_CFG_OBSERVER_ENTROPY: return QS_OBSERVER_ENTROPY;
    case QS_CFG_OBSERVER_MSE: return QS_OBSERVER_MSE;
    case QS_CFG_OBSERVER_COUNT: break;
    }
    return QS_OBSERVER_MINMAX;
}

static void quant_options_from_config(const qs_variant_config *c, qs_quant_options *q)
{
    qs_quant_options_init(q);
    q->observer = engine_observer(c->observer);
    q->percentile = (float)c->percentile;
    q->averaging_constant = (float)c->averaging_constant;
    q->per_tensor_weights = c->per_channel ? 0 : 1;
    q->symmetric_activations = c->symmetric_activations ? 1 : 0;
    q->signed_activations = c->signed_activations ? 1 : 0;
    q->reduce_range = c->reduce_range ? 1 : -1;
    q->keep_fp32 = (const char *const *)c->keep_fp32;
    q->keep_fp32_count = c->keep_fp32_count;
}

static uint8_t *read_model_file(const char *path, size_t *size, char *message, size_t message_size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(message, message_size, "cannot read %s", path);
        goto cleanup;
    }
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(message, message_size, "cannot read %s%s", path, buf ? "" : ": out of memory");
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    *size = (size_t)n;
cleanup:
    if (f)
        fclose(f);
    return buf;
}

static qs_status feed_calibrator(void *ctx, const qs_tensor *input, qs_error *err)
{
    return qs_calibrator_observe(ctx, input, 1, err);
}

/* Calibration cache lookup: true when the calibrator now holds the cached statistics. */
static bool calibration_cache_hit(qs_registry *r, qs_variant *v, qs_calibrator *cal,
                                  const uint8_t *onnx, size_t size, const qs_calibration_set *set)
{
    const qs_model_entry *m = v->model;
    char path[4096];
    uint64_t key = qs_calib_cache_key(onnx, size, &m->spec, set, v->cfg->averaging_constant);
    v->calibration_key = key;
    if (!qs_calib_cache_path(r->cache_dir, m->cfg->name, v->cfg->name, key, QS_CACHE_CALIBRATION,
                             path, sizeof path))
        return false;
    free(v->cache_path);
    v->cache_path = strdup(path);
    if (!v->cache_path || access(path, R_OK) != 0)
        return false;
    qs_error err;
    qs_error_clear(&err);
    qs_status st = qs_calibrator_load(cal, path, &err);
    if (st != QS_OK) {
        QS_WARN("model %s variant %s: calibration cache %s unusable (%s: %s); calibrating again",
                m->cfg->name, v->cfg->name, path, qs_status_to_string(st), err.message);
        return false;
    }
    v->calibration_used = (size_t)qs_calibrator_samples(cal);
    v->calibration_skipped = 0;
    QS_INFO("model %s variant %s: calibration cache hit: %s (%zu images)", m->cfg->name,
            v->cfg->name, path, v->calibration_used);
    return true;
}

/* Static int8: the calibration cache, else observe the calibration images through an fp32 run
 * of the model (and save the statistics to the cache). */
static qs_calibrator *calibrate(qs_registry *r, qs_variant *v, const uint8_t *onnx, size_t size,
                                const qs_quant_options *q)
{
    const qs_model_entry *m = v->model;
    qs_calibration_set set;
    char msg[512], label[200];
    qs_calibrator *cal = NULL;
    uint64_t t0 = qs_clock_ns();
    set_state(v, QS_LOAD_CALIBRATING);
    if (!qs_calibration_set_load(v->cfg->calibration.images, v->cfg->calibration.count, &set, msg,
                                 sizeof msg)) {
        fail_variant(v, "%s", msg);
        return NULL;
    }
    if (set.available < (size_t)v->cfg->calibration.count)
        QS_WARN("model %s variant %s: calibration.count is %d but %s has %zu images; using them all",
                m->cfg->name, v->cfg->name, v->cfg->calibration.count, v->cfg->calibration.images,
                set.available);
    qs_tensor input;
    size_t numel = 0;
    qs_error err;
    qs_error_clear(&err);
    if (!pipeline_input(v, &input, &numel))
        goto cleanup;
    qs_status st = qs_calibrator_create(onnx, size, q, &cal, &err);
    if (st != QS_OK) {
        format_engine_error(msg, sizeof msg, st, &err);
        fail_variant(v, "cannot create the calibrator: %s", msg);
        goto cleanup;
    }
    if (r->cache_dir && calibration_cache_hit(r, v, cal, onnx, size, &set)) {
        qs_progress_cached(&v->calibration_progress, v->calibration_used, qs_clock_ns());
        v->calibration_ms = qs_ns_to_ms(qs_clock_ns() - t0);
        goto cleanup;
    }
    snprintf(label, sizeof label, "model %s variant %s: calibrating", m->cfg->name, v->cfg->name);
    qs_image_feed_options fo = {.spec = &m->spec, .input = &input, .numel = numel,
                                .limits = &r->limits, .cancel = &r->stop,
                                .progress = &v->calibration_progress, .what = "calibration",
                                .label = label};
    QS_INFO("%s on %zu images from %s", label, set.count, v->cfg->calibration.images);
    if (!qs_image_set_feed(&set, &fo, feed_calibrator, cal, &v->calibration_used,
                           &v->calibration_skipped, msg, sizeof msg)) {
        fail_variant(v, "%s", msg);
        qs_calibrator_free(cal);
        cal = NULL;
        goto cleanup;
    }
    v->calibration_ms = qs_ns_to_ms(qs_clock_ns() - t0);
    QS_INFO("model %s variant %s: calibrated on %zu images in %.0f ms (%zu skipped)",
            m->cfg->name, v->cfg->name, v->calibration_used, v->calibration_ms,
            v->calibration_skipped);
    if (v->cache_path) {
        if (qs_calib_cache_store(cal, r->cache_dir, m->cfg->name, v->cfg->name, v->cache_path,
                                 msg, sizeof msg)) {
            QS_INFO("model %s variant %s: calibration cache written: %s", m->cfg->name,
                    v->cfg->name, v->cache_path);
        } else {
            QS_WARN("model %s variant %s: calibration cache not written: %s (set cache.dir or "
                    "QUANTSERVE_CACHE_DIR to a writable folder, or cache.enabled to false)",
                    m->cfg->name, v->cfg->name, msg);
            free(v->cache_path);
            v->cache_path = NULL;
        }
    }
cleanup:
    qs_calibration_set_free(&set);
    return cal;
}

/* The float model an int8 variant is compared with. A QDQ file is compared with the same file
 * run in float (weights dequantized, the activations' quantize/dequantize pairs dropped): its
 * values keep their names, so every layer gets a row, and the report isolates what the int8
 * execution costs. Other variants: the model's first fp32 variant. NULL: none is configured (the
 * caller loads the report's reference_onnx in float). */
static qs_variant *reference_variant(qs_model_entry *m, const qs_variant *v)
{
    for (size_t j = 0; j < m->variant_count; j++) {
        const qs_variant_config *c = m->variants[j].cfg;
        if (c->mode == QS_MODE_FP32 &&
            (v->cfg->mode != QS_MODE_QDQ || strcmp(c->onnx, v->cfg->onnx) == 0))
            return &m->variants[j];
    }
    return NULL;
}

/* Key of a report in the cache: everything its numbers depend on, the build and the ISA (the
 * fp32 kernels round differently per ISA) included. 0 when a file cannot be read (no caching
 * then). */
static uint64_t report_key(const qs_variant *v, const char *reference_onnx,
                           const qs_calibration_set *set)
{
    const qs_variant_config *c = v->cfg;
    char text[256];
    int n = snprintf(text, sizeof text,
                     "report; build %016llx; isa %s; mode %d observer %d percentile %a ema %a "
                     "per_channel %d symmetric %d signed %d reduce_range %d; calibration %016llx; "
                     "keep",
                     (unsigned long long)qs_cache_build_id(), qs_isa_name(qs_engine_isa()),
                     (int)c->mode, (int)c->observer, c->percentile, c->averaging_constant,
                     c->per_channel,
                     c->symmetric_activations, c->signed_activations, c->reduce_range,
                     (unsigned long long)v->calibration_key);
    uint64_t h = qs_hash_bytes(0, text, n > 0 ? (size_t)n : 0);
    for (size_t i = 0; i < c->keep_fp32_count; i++)
        h = qs_hash_bytes(h, c->keep_fp32[i], strlen(c->keep_fp32[i]) + 1);
    if (!qs_cache_hash_file(c->onnx, &h) || !qs_cache_hash_file(reference_onnx, &h))
        return 0;
    h = qs_cache_hash_preprocess(h, &v->model->spec);
    h = qs_calibration_set_hash(set, h);
    return h ? h : 1;
}

/* Report cache lookup: true when the report was read from the cache. Sets *path (empty when
 * there is no cache for this report). */
static bool report_cache_hit(qs_registry *r, qs_variant *v, const qs_calibration_set *set,
                             uint64_t *key, char *path, size_t path_size)
{
    const qs_model_entry *m = v->model;
    char msg[512];
    path[0] = '\0';
    /* A static variant's report is only cacheable when its calibration was keyed. */
    if (!r->cache_dir || (v->cfg->mode == QS_MODE_STATIC && !v->calibration_key))
        return false;
    *key = report_key(v, v->report.reference_onnx, set);
    if (!*key || !qs_calib_cache_path(r->cache_dir, m->cfg->name, v->cfg->name, *key,
                                      QS_CACHE_REPORT, path, path_size)) {
        path[0] = '\0';
        return false;
    }
    if (access(path, R_OK) != 0)
        return false;
    if (!qs_variant_report_load(&v->report, *key, path, msg, sizeof msg)) {
        QS_WARN("model %s variant %s: report cache unusable (%s); computing it again",
                m->cfg->name, v->cfg->name, msg);
        return false;
    }
    qs_progress_cached(&v->report_progress, v->report.used, qs_clock_ns());
    QS_INFO("model %s variant %s: report cache hit: %s", m->cfg->name, v->cfg->name, path);
    return true;
}

static void log_report(const qs_variant *v, const char *label)
{
    const qs_variant_report *rep = &v->report;
    char worst[200] = "no per-layer rows";
    if (rep->layer_count)
        snprintf(worst, sizeof worst, "worst layer %.150s (SQNR %.1f dB)", rep->layers[0].name,
                 rep->layers[0].sqnr_db);
    QS_INFO("%s on %zu images in %.0f ms: top-1 agreement %.2f%%, top-5 overlap %.2f%%, "
            "mean KL %.3g; %s",
            label, rep->used, rep->ms, 100.0 * rep->agreement.top1_agreement,
            100.0 * rep->agreement.top5_overlap, rep->agreement.mean_kl, worst);
}

/* The fp32-vs-int8 report of an int8 variant, on its report images (by default the calibration
 * images), from the cache when it holds one for exactly this variant and these images. Its
 * failure is recorded in the report; the variant still serves. */
static void make_report(qs_registry *r, qs_variant *v)
{
    qs_model_entry *m = v->model;
    qs_variant_report *rep = &v->report;
    const qs_variant_config *c = v->cfg;
    if (c->mode == QS_MODE_FP32 || !c->report_enabled) {
        rep->status = QS_REPORT_OFF;
        snprintf(rep->reason, sizeof rep->reason, "%s",
                 c->mode == QS_MODE_FP32 ? "an fp32 variant has nothing to compare"
                                         : "switched off in the config (\"report\": false)");
        return;
    }
    rep->images = c->report.images ? c->report.images
                                   : c->has_calibration ? c->calibration.images : NULL;
    rep->images_from = c->report.images ? "report.images" : "calibration";
    if (!rep->images) {
        rep->status = QS_REPORT_NONE;
        snprintf(rep->reason, sizeof rep->reason,
                 "no images to compare on: mode %s has no calibration images; set "
                 "\"report\": {\"images\": PATH} to get one",
                 qs_variant_mode_to_string(c->mode));
        return;
    }
    set_state(v, QS_LOAD_REPORTING);
    qs_variant *ref = reference_variant(m, v);
    const qs_model *fp32 = NULL;
    qs_model *own = NULL;
    qs_calibration_set set = {0};
    char label[200], path[4096], msg[512];
    uint64_t key = 0;
    rep->reference_onnx = ref ? ref->cfg->onnx : c->mode == QS_MODE_QDQ ? c->onnx : m->cfg->onnx;
    if (ref)
        snprintf(rep->reference, sizeof rep->reference, "%s", ref->cfg->name);
    if (!qs_calibration_set_load(rep->images, c->report.count, &set, rep->reason,
                                 sizeof rep->reason)) {
        rep->status = QS_REPORT_FAILED;
        goto done;
    }
    if (report_cache_hit(r, v, &set, &key, path, sizeof path))
        goto done;
    /* The loader loads fp32 variants first, so a configured reference is READY (or FAILED) by
     * now; the file is loaded here only without one (or when it failed to load). */
    if (ref && qs_variant_state(ref) == QS_LOAD_READY) {
        fp32 = ref->engine;
    } else {
        qs_error err;
        qs_error_clear(&err);
        qs_status st = qs_model_load_file(rep->reference_onnx, NULL, &own, &err);
        if (st != QS_OK) {
            format_engine_error(msg, sizeof msg, st, &err);
            rep->status = QS_REPORT_FAILED;
            snprintf(rep->reason, sizeof rep->reason,
                     "cannot load the fp32 reference %.200s: %.240s", rep->reference_onnx, msg);
            goto done;
        }
        fp32 = own;
    }
    snprintf(label, sizeof label, "model %s variant %s: report", m->cfg->name, c->name);
    qs_image_feed_options fo = {.spec = &m->spec, .input = &v->input, .numel = v->input_numel,
                                .limits = &r->limits, .cancel = &r->stop,
                                .progress = &v->report_progress, .what = "report",
                                .label = label};
    if (!qs_variant_report_compute(rep, fp32, v->engine, &set, &fo))
        goto done;
    log_report(v, label);
    if (path[0] && (!qs_cache_make_dir(r->cache_dir, msg, sizeof msg) ||
                    !qs_variant_report_save(rep, key, path, msg, sizeof msg)))
        QS_WARN("model %s variant %s: report cache not written: %s", m->cfg->name, c->name,
                msg);
    else if (path[0])
        qs_cache_remove_stale(r->cache_dir, m->cfg->name, c->name, QS_CACHE_REPORT, path);
done:
    if (rep->status == QS_REPORT_FAILED)
        QS_WARN("model %s variant %s: no fp32-vs-int8 report: %s", m->cfg->name, c->name,
                rep->reason);
    qs_calibration_set_free(&set);
    qs_model_free(own);
}

static qs_variant_kind engine_variant(qs_variant_mode mode)
{
    switch (mode) {
    case QS_MODE_STATIC: return QS_VARIANT_INT8_STATIC;
    case QS_MODE_DYNAMIC: return QS_VARIANT_INT8_DYNAMIC;
    case QS_MODE_QDQ: return QS_VARIANT_INT8_QDQ;
    case QS_MODE_FP32:
    case QS_MODE_COUNT: break;
    }
    return QS_VARIANT_FP32;
}

/* Build the engine model of a variant: fp32 and int8 modes load the file; static int8 reads it
 * once, calibrates on it, and loads the same bytes. */
static bool build_engine_model(qs_registry *r, qs_variant *v)
{
    qs_model_options opts;
    qs_quant_options q;
    qs_calibrator *cal = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    char msg[512];
    bool ok = false;
    qs_model_options_init(&opts);
    quant_options_from_config(v->cfg, &q);
    opts.variant = engine_variant(v->cfg->mode);
    if (v->cfg->mode != QS_MODE_FP32)
        opts.quant = &q;
    qs_error err;
    qs_error_clear(&err);
    qs_status st;
    if (v->cfg->mode == QS_MODE_STATIC) {
        bytes = read_model_file(v->cfg->onnx, &size, msg, sizeof msg);
        if (!bytes) {
            fail_variant(v, "%s", msg);
            goto cleanup;
        }
        cal = calibrate(r, v, bytes, size, &q);
        if (!cal)
            goto cleanup;
        opts.calibration = cal;
        set_state(v, QS_LOAD_LOADING);
        st = qs_model_load_memory(bytes, size, &opts, &v->engine, &err);
    } else {
        st = qs_model_load_file(v->cfg->onnx, &opts, &v->engine, &err);
    }
    if (st != QS_OK) {
        format_engine_error(msg, sizeof msg, st, &err);
        fail_variant(v, "cannot load %s as %s: %s", v->cfg->onnx,
                     qs_variant_mode_to_string(v->cfg->mode), msg);
        goto cleanup;
    }
    ok = true;
cleanup:
    qs_calibrator_free(cal);
    free(bytes);
    return ok;
}

static void load_variant(qs_registry *r, qs_variant *v)
{
    uint64_t t0 = qs_clock_ns();
    set_state(v, QS_LOAD_LOADING);
    QS_INFO("loading model %s variant %s (%s) from %s", v->model->cfg->name, v->cfg->name,
            qs_variant_mode_to_string(v->cfg->mode), v->cfg->onnx);
    if (!build_engine_model(r, v))
        return;
    qs_model_get_info(v->engine, &v->info);
    if (!bind_input(v) || !bind_output(v) || !create_sessions(r, v))
        return;
    uint64_t t1 = qs_clock_ns();
    v->load_ms = qs_ns_to_ms(t1 - t0);
    set_state(v, QS_LOAD_WARMING);
    if (!warm_up(v))
        return;
    v->warmup_ms = qs_ns_to_ms(qs_clock_ns() - t1);
    make_report(r, v);
    /* Publish first: whoever reads the log line can use the variant at once. */
    set_state(v, QS_LOAD_READY);
    QS_INFO("model %s variant %s ready: %zu classes, loaded in %.1f ms, warmed up in %.1f ms",
            v->model->cfg->name, v->cfg->name, v->class_count, v->load_ms, v->warmup_ms);
}

static void *loader_main(void *arg)
{
    qs_registry *r = arg;
    for (size_t i = 0; i < r->model_count && !atomic_load(&r->stop); i++) {
        qs_model_entry *m = &r->models[i];
        char msg[400] = "";
        bool usable = true;
        qs_image_error ierr;
        if (qs_preprocess_validate(&m->spec, &ierr) != QS_IMAGE_OK) {
            snprintf(msg, sizeof msg, "preprocessing: %s", ierr.message);
            usable = false;
        } else if (m->cfg->labels && !qs_labels_load(m->cfg->labels, &m->labels, msg, sizeof msg)) {
            usable = false;
        }
        /* fp32 variants first: an int8 variant's report then finds its fp32 reference loaded
         * and does not load the same file a second time. The listed order stays as configured. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = 0; j < m->variant_count && !atomic_load(&r->stop); j++) {
                qs_variant *v = &m->variants[j];
                if ((v->cfg->mode == QS_MODE_FP32) != (pass == 0))
                    continue;
                if (usable)
                    load_variant(r, v);
                else
                    fail_variant(v, "%s", msg);
            }
        }
    }
    for (size_t i = 0; i < r->model_count; i++)
        for (size_t j = 0; j < r->models[i].variant_count; j++)
            if (qs_variant_state(&r->models[i].variants[j]) == QS_LOAD_QUEUED)
                fail_variant(&r->models[i].variants[j], "not loaded: the server is shutting down");
    atomic_store(&r->settled, true);
    return NULL;
}

bool qs_registry_start(qs_registry *registry)
{
    if (registry->loader_started)
        return true;
    bool quantizes = false;
    for (size_t i = 0; i < registry->model_count; i++)
        for (size_t j = 0; j < registry->models[i].variant_count; j++)
            quantizes |= registry->models[i].variants[j].cfg->mode != QS_MODE_FP32;
    if (quantizes)
        QS_INFO("cache (calibrations, reports): %s",
                registry->cache_dir ? registry->cache_dir
                                    : "off (cache.enabled is false, or no cache.dir and no $HOME)");
    if (pthread_create(&registry->loader, NULL, loader_main, registry) != 0) {
        for (size_t i = 0; i < registry->model_count; i++)
            for (size_t j = 0; j < registry->models[i].variant_count; j++)
                fail_variant(&registry->models[i].variants[j], "cannot start the loader thread");
        atomic_store(&registry->settled, true);
        return false;
    }
    registry->loader_started = true;
    return true;
}

void qs_registry_stop(qs_registry *registry)
{
    if (!registry || !registry->loader_started)
        return;
    atomic_store(&registry->stop, true);
    pthread_join(registry->loader, NULL);
    registry->loader_started = false;
}

void qs_registry_free(qs_registry *registry)
{
    if (!registry)
        return;
    qs_registry_stop(registry);
    for (size_t i = 0; registry->models && i < registry->model_count; i++) {
        qs_model_entry *m = &registry->models[i];
        for (size_t j = 0; m->variants && j < m->variant_count; j++) {
            release_engine(&m->variants[j]);
            qs_stats_free(m->variants[j].stats);
            qs_variant_report_free(&m->variants[j].report);
            free(m->variants[j].cache_path);
        }
        free(m->variants);
        qs_labels_free(&m->labels);
    }
    free(registry->models);
    free(registry->cache_dir);
    free(registry);
}
