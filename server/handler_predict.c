/* POST /predict and /models/{name}/predict: check early, queue the image for a worker, answer. */
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "clock.h"
#include "handlers.h"
#include "json_util.h"
#include "log.h"
#include "multipart.h"

#define DEFAULT_TOPK 5

/* ---- early checks (headers only) ------------------------------------------------------------------ */

/* Strict decimal: digits only, no sign, at most 9 of them. */
static bool parse_int(const char *text, long *out)
{
    size_t n = strlen(text);
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
}

/* "a, b, c" of the model names or of a model's variant names, for 404 messages. */
static void list_models(qs_registry *reg, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < qs_registry_model_count(reg) && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                         qs_registry_model(reg, i)->cfg->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static void list_variants(const qs_model_entry *m, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < m->variant_count && used < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", m->variants[i].cfg->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* The media type of a Content-Type value, lower-cased, without parameters. */
static void media_type(const char *value, char *out, size_t size)
{
    size_t i = 0, j = 0;
    while (value[i] == ' ' || value[i] == '\t')
        i++;
    for (; value[i] && value[i] != ';' && value[i] != ' ' && j + 1 < size; i++, j++)
        out[j] = (value[i] >= 'A' && value[i] <= 'Z') ? (char)(value[i] + 32) : value[i];
    out[j] = '\0';
}

static bool raw_image_type(const char *media)
{
    return strcmp(media, "image/jpeg") == 0 || strcmp(media, "image/png") == 0 ||
           strcmp(media, "application/octet-stream") == 0 || strcmp(media, "image/jpg") == 0;
}

bool qs_predict_begin(qs_request *req)
{
    qs_app *app = req->app;
    qs_registry *reg = app->registry;
    char list[256];

    const char *name = req->capture[0] ? req->capture : qs_request_query(req, "model");
    qs_model_entry *m = name ? qs_registry_find_model(reg, name) : qs_registry_model(reg, 0);
    if (!m) {
        list_models(reg, list, sizeof list);
        qs_reject(req, QS_API_MODEL_NOT_FOUND, "no model named \"%.64s\"; models: %s", name, list);
        return false;
    }
    req->model = m;
    const char *vname = qs_request_query(req, "variant");
    qs_variant *v = qs_model_entry_find_variant(m, vname);
    if (!v) {
        list_variants(m, list, sizeof list);
        qs_reject(req, QS_API_VARIANT_NOT_FOUND, "model \"%s\" has no variant \"%.64s\"; variants: %s",
                  m->cfg->name, vname, list);
        return false;
    }
    req->variant = v;

    const char *tk = qs_request_query(req, "topk");
    long topk = DEFAULT_TOPK;
    if (tk && !parse_int(tk, &topk)) {
        qs_reject(req, QS_API_INVALID_PARAMETER,
                  "topk=\"%.32s\" is not a number: use an integer from 1 to the number of classes",
                  tk);
        return false;
    }
    qs_load_state st = qs_variant_state(v);
    if (st == QS_LOAD_FAILED) {
        qs_reject(req, QS_API_VARIANT_FAILED, "model \"%s\" variant \"%s\" failed to load: %s",
                  m->cfg->name, v->cfg->name, v->reason);
        return false;
    }
    if (st != QS_LOAD_READY) {
        qs_reject(req, QS_API_NOT_READY, "model \"%s\" variant \"%s\" is not ready yet (%s)",
                  m->cfg->name, v->cfg->name, qs_load_state_phase(st));
        return false;
    }
    if (tk && (topk < 1 || (size_t)topk > v->class_count)) {
        qs_reject(req, QS_API_INVALID_PARAMETER, "topk=%ld is out of range: 1..%zu (the classes of "
                  "model \"%s\")", topk, v->class_count, m->cfg->name);
        return false;
    }
    if ((size_t)topk > v->class_count)
        topk = (long)v->class_count;
    req->topk = (int32_t)topk;

    const char *ct = qs_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct) {
        char media[64];
        media_type(ct, media, sizeof media);
        if (strcmp(media, "multipart/form-data") == 0) {
            qs_api_error err;
            qs_api_error_clear(&err);
            if (!qs_multipart_boundary(ct, req->boundary, sizeof req->boundary, &err)) {
                qs_reject(req, err.status, "%s", err.message);
                return false;
            }
            req->multipart = true;
        } else if (!raw_image_type(media)) {
            qs_reject(req, QS_API_UNSUPPORTED_MEDIA_TYPE,
                      "Content-Type \"%.64s\" is not accepted: send image/jpeg, image/png, "
                      "application/octet-stream or multipart/form-data",
                      media);
            return false;
        }
    }

    int64_t limit = app->config->limits.max_body_bytes;
    const char *cl = qs_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    long long length = -1;
    if (cl) {
        char *end = NULL;
        length = strtoll(cl, &end, 10);
        if (end == cl || *end != '\0' || length < 0)
            length = -1; /* MHD refuses a bad Content-Length before we get here */
    }
    if (length > limit) {
        qs_reject(req, QS_API_BODY_TOO_LARGE,
                  "Content-Length %lld is over limits.max_body_bytes (%lld bytes)", length,
                  (long long)limit);
        return false;
    }
    if (length > 0) {
        /* Known size: one allocation, exactly the body. */
        req->body = malloc((size_t)length);
        if (!req->body) {
            qs_reject(req, QS_API_OUT_OF_MEMORY, "no memory for a %lld-byte body", length);
            return false;
        }
        req->body_cap = (size_t)length;
    }
    return true;
}

/* ---- the whole body is in --------------------------------------------------------------------------- */

/*
 * Decoding and preprocessing run on the worker, not on the HTTP thread:
 *  - memory stays bounded by the worker count: a decoded photo can be 100+ MB of pixels, and only
 *    `workers.count` of them exist at once, however many uploads are in flight;
 *  - the input tensor and the preprocessing scratch are per-worker buffers reused by every job;
 *  - a full queue is refused before any decoding, so overload costs almost nothing;
 *  - HTTP threads only parse, route and serialize, so /health and /models stay fast under load.
 * The HTTP thread only sniffs the magic bytes, to refuse a non-image without taking a queue slot.
 */

/* Runs under the worker queue's lock, before any worker can pick the job up. */
static void suspend_request(void *arg)
{
    qs_request *req = arg;
    req->phase = QS_PHASE_QUEUED;
    MHD_suspend_connection(req->conn);
}

/* Runs on the worker thread when the job is finished. */
static void job_done(qs_job *job)
{
    qs_request *req = job->user;
    atomic_store(&req->job_done, true);
    MHD_resume_connection(req->conn);
}

void qs_handle_predict(qs_request *req)
{
    qs_app *app = req->app;
    const uint8_t *data = req->body;
    size_t size = req->body_len;
    if (size == 0) {
        qs_respond_fail(req, QS_API_EMPTY_BODY,
                        "the body is empty: send the image bytes, or a multipart form with one file");
        return;
    }
    if (req->multipart) {
        qs_multipart_file file;
        qs_api_error err;
        qs_api_error_clear(&err);
        if (!qs_multipart_find_file(req->body, req->body_len, req->boundary, &file, &err)) {
            qs_respond_error(req, &err);
            return;
        }
        char media[64];
        media_type(file.content_type, media, sizeof media);
        if (media[0] && !raw_image_type(media)) {
            qs_respond_fail(req, QS_API_UNSUPPORTED_MEDIA_TYPE,
                            "the file part's Content-Type \"%.64s\" is not accepted: send "
                            "image/jpeg, image/png or application/octet-stream",
                            media);
            return;
        }
        if (file.size == 0) {
            qs_respond_fail(req, QS_API_EMPTY_BODY, "the file part \"%.64s\" is empty", file.name);
            return;
        }
        data = file.data;
        size = file.size;
    }
    if (qs_image_detect(data, size) == QS_IMAGE_FORMAT_UNKNOWN) {
        qs_respond_fail(req, QS_API_UNSUPPORTED_IMAGE_FORMAT,
                        "the %s is neither a JPEG nor a PNG image",
                        req->multipart ? "file part" : "body");
        return;
    }
    req->predictions = calloc((size_t)req->topk, sizeof *req->predictions);
    if (!req->predictions) {
        qs_respond_fail(req, QS_API_OUT_OF_MEMORY, "no memory for the predictions");
        return;
    }
    qs_job *job = &req->job;
    job->data = data;
    job->size = size;
    job->variant = req->variant;
    job->topk = req->topk;
    job->predictions = req->predictions;
    job->deadline_ns = req->start_ns + (uint64_t)app->config->limits.request_timeout_ms * 1000000u;
    job->done = job_done;
    job->user = req;
    if (qs_workers_submit(app->workers, job, suspend_request, req)) {
        QS_DEBUG("request %s queued: model %s variant %s, %zu-byte image", req->id,
                 req->model->cfg->name, req->variant->cfg->name, size);
    } else {
        if (atomic_load(&app->shutting_down))
            qs_respond_fail(req, QS_API_SHUTTING_DOWN, "the server is shutting down");
        else
            qs_respond_fail(req, QS_API_QUEUE_FULL,
                            "the inference queue is full (%zu waiting, limits.queue_depth): retry "
                            "later",
                            qs_workers_queue_depth(app->workers));
    }
}

/* Milliseconds rounded to the microsecond. */
static double ms3(uint64_t ns)
{
    return round((double)ns / 1000.0) / 1000.0;
}

/* ---- the worker is done ----------------------------------------------------------------------------- */

void qs_predict_finish(qs_request *req)
{
    const qs_job *job = &req->job;
    uint64_t total_ns = qs_clock_ns() - req->start_ns;
    double total_ms = qs_ns_to_ms(total_ns);
    snprintf(req->server_timing, sizeof req->server_timing,
             "decode;dur=%.3f, preprocess;dur=%.3f, queue;dur=%.3f, inference;dur=%.3f, "
             "total;dur=%.3f",
             qs_ns_to_ms(job->decode_ns), qs_ns_to_ms(job->preprocess_ns),
             qs_ns_to_ms(job->queue_ns), qs_ns_to_ms(job->inference_ns), total_ms);
    if (job->error.status != QS_API_OK) {
        qs_respond_error(req, &job->error);
        return;
    }
    json_t *preds = json_array();
    for (int32_t i = 0; i < job->prediction_count; i++) {
        const qs_prediction *p = &job->predictions[i];
        const char *label = qs_model_entry_label(req->model, (size_t)p->index);
        json_t *jl = label ? json_string(label) : NULL;
        json_t *js = qs_json_real_or_null((double)p->score);
        json_array_append_new(preds, json_pack("{s:i,s:o,s:o}", "index", p->index, "label",
                                               jl ? jl : json_null(), "score", js));
    }
    json_t *body = json_pack(
        "{s:s,s:s,s:o,s:{s:f,s:f,s:f,s:f,s:f},s:{s:i,s:i},s:s}", "model", req->model->cfg->name,
        "variant", req->variant->cfg->name, "predictions", preds, "timing_ms", "decode",
        ms3(job->decode_ns), "preprocess", ms3(job->preprocess_ns), "queue", ms3(job->queue_ns),
        "inference", ms3(job->inference_ns), "total", ms3(total_ns),
        "image", "width", (int)job->image_width, "height", (int)job->image_height, "request_id",
        req->id);
    qs_respond_json(req, 200, body);
}
