/* The fp32-vs-int8 report at load: images through both models with the engine's comparer, the
 * result copied out so the engine objects can go. */
#include "quant_report.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json_util.h"

static const char *const status_names[] = {
#define QS_REPORT_STATUS_NAME(name, text) [name] = text,
    QS_REPORT_STATUS_LIST(QS_REPORT_STATUS_NAME)
#undef QS_REPORT_STATUS_NAME
};

const char *qs_report_status_to_string(qs_report_status status)
{
    return (unsigned)status < QS_REPORT_STATUS_COUNT ? status_names[status] : "?";
}

void qs_variant_report_free(qs_variant_report *r)
{
    for (size_t i = 0; r->layers && i < r->layer_count; i++) {
        free(r->layers[i].name);
        free(r->layers[i].op);
    }
    free(r->layers);
    r->layers = NULL;
    r->layer_count = 0;
}

static qs_status feed_report(void *ctx, const qs_tensor *input, qs_error *err)
{
    return qs_quant_report_add(ctx, input, 1, err);
}

static bool copy_layers(qs_variant_report *r, qs_quant_report *qr)
{
    const qs_layer_report *layers = NULL;
    size_t n = qs_quant_report_layers(qr, &layers);
    if (n == 0)
        return true;
    if (!layers)
        return false;
    r->layers = calloc(n, sizeof *r->layers);
    if (!r->layers)
        return false;
    for (size_t i = 0; i < n; i++) {
        qs_report_layer *l = &r->layers[i];
        l->name = strdup(layers[i].name ? layers[i].name : "");
        l->op = strdup(layers[i].op ? layers[i].op : "");
        r->layer_count = i + 1;
        if (!l->name || !l->op)
            return false;
        l->scale = layers[i].scale;
        l->zero_point = layers[i].zero_point;
        l->clipped = layers[i].clipped;
        l->sqnr_db = layers[i].sqnr_db;
        l->cosine = layers[i].cosine;
        l->elements = layers[i].elements;
    }
    return true;
}

bool qs_variant_report_compute(qs_variant_report *r, const qs_model *fp32, const qs_model *int8,
                               const qs_calibration_set *set, const qs_image_feed_options *opts)
{
    uint64_t t0 = qs_clock_ns();
    qs_quant_report *qr = NULL;
    qs_error err;
    qs_error_clear(&err);
    r->requested = set->count;
    qs_status st = qs_quant_report_create(fp32, int8, &qr, &err);
    if (st != QS_OK) {
        snprintf(r->reason, sizeof r->reason, "cannot compare with fp32: %s: %.150s%s%.260s",
                 qs_status_to_string(st), err.where, err.where[0] ? ": " : "", err.message);
        goto fail;
    }
    if (!qs_image_set_feed(set, opts, feed_report, qr, &r->used, &r->skipped, r->reason,
                           sizeof r->reason))
        goto fail;
    if (!copy_layers(r, qr)) {
        snprintf(r->reason, sizeof r->reason, "out of memory for the report's layers");
        goto fail;
    }
    qs_quant_report_agreement(qr, &r->agreement);
    qs_quant_report_free(qr);
    r->ms = qs_ns_to_ms(qs_clock_ns() - t0);
    r->status = QS_REPORT_READY;
    return true;
fail:
    qs_quant_report_free(qr);
    qs_variant_report_free(r);
    r->status = QS_REPORT_FAILED;
    return false;
}

#define REPORT_FORMAT "quantserve-report 1"

json_t *qs_report_layer_json(const qs_report_layer *l, size_t rank, const char *observer)
{
    json_t *j = json_object();
    /* json_object_set_new fails (and frees the value) on a NULL object or value. */
    int bad = 0;
    if (rank)
        bad |= json_object_set_new(j, "rank", json_integer((json_int_t)rank));
    bad |= json_object_set_new(j, "name", json_string(l->name));
    bad |= json_object_set_new(j, "op", json_string(l->op));
    bad |= json_object_set_new(j, "scale", qs_json_real_or_null(l->scale));
    bad |= json_object_set_new(j, "zero_point", json_integer(l->zero_point));
    if (observer)
        bad |= json_object_set_new(j, "observer", json_string(observer));
    bad |= json_object_set_new(j, "clipped", qs_json_real_or_null(l->clipped));
    bad |= json_object_set_new(j, "sqnr_db", qs_json_real_or_null(l->sqnr_db));
    bad |= json_object_set_new(j, "cosine", qs_json_real_or_null(l->cosine));
    bad |= json_object_set_new(j, "elements", json_integer((json_int_t)l->elements));
    if (bad) {
        json_decref(j);
        return NULL;
    }
    return j;
}

bool qs_variant_report_save(const qs_variant_report *r, uint64_t key, const char *path,
                            char *message, size_t message_size)
{
    char hex[17], tmp[4200];
    snprintf(hex, sizeof hex, "%016" PRIx64, key);
    json_t *layers = json_array();
    for (size_t i = 0; layers && i < r->layer_count; i++)
        json_array_append_new(layers, qs_report_layer_json(&r->layers[i], 0, NULL));
    const qs_model_agreement *a = &r->agreement;
    json_t *root = json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:{s:I,s:o,s:o,s:o},s:o}", "format",
                             REPORT_FORMAT, "key", hex, "requested", (json_int_t)r->requested,
                             "used", (json_int_t)r->used, "skipped", (json_int_t)r->skipped, "ms",
                             r->ms, "agreement", "samples", (json_int_t)a->samples,
                             "top1_agreement", qs_json_real_or_null(a->top1_agreement),
                             "top5_overlap", qs_json_real_or_null(a->top5_overlap), "mean_kl",
                             qs_json_real_or_null(a->mean_kl),
                             "layers", layers);
    bool ok = false;
    if (!root || json_array_size(layers) != r->layer_count) {
        snprintf(message, message_size, "out of memory");
        goto cleanup;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(root, tmp, JSON_COMPACT | JSON_REAL_PRECISION(17)) != 0 ||
        rename(tmp, path) != 0) {
        remove(tmp);
        snprintf(message, message_size, "cannot write %s", path);
        goto cleanup;
    }
    ok = true;
cleanup:
    json_decref(root);
    return ok;
}

static bool get_count(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

/* A number, or null read back as NaN (what qs_json_real_or_null wrote for a non-finite value). */
static bool get_real(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_null(v)) {
        *out = NAN;
        return true;
    }
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

static bool layer_from_json(const json_t *j, qs_report_layer *l)
{
    const json_t *name = json_object_get(j, "name"), *op = json_object_get(j, "op");
    const json_t *zp = json_object_get(j, "zero_point");
    double scale;
    if (!json_is_string(name) || !json_is_string(op) || !json_is_integer(zp) ||
        !get_real(j, "scale", &scale) || !get_real(j, "clipped", &l->clipped) ||
        !get_real(j, "sqnr_db", &l->sqnr_db) || !get_real(j, "cosine", &l->cosine) ||
        !get_count(j, "elements", &l->elements) || json_integer_value(zp) < INT32_MIN ||
        json_integer_value(zp) > INT32_MAX)
        return false;
    l->scale = (float)scale;
    l->zero_point = (int32_t)json_integer_value(zp);
    l->name = strdup(json_string_value(name));
    l->op = strdup(json_string_value(op));
    return l->name && l->op;
}

bool qs_variant_report_load(qs_variant_report *r, uint64_t key, const char *path,
                            char *message, size_t message_size)
{
    char hex[17];
    json_error_t jerr;
    qs_variant_report fresh;
    memset(&fresh, 0, sizeof fresh);
    snprintf(hex, sizeof hex, "%016" PRIx64, key);
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(message, message_size, "%s: %s", path, jerr.text);
        return false;
    }
    const char *format = json_string_value(json_object_get(root, "format"));
    const char *k = json_string_value(json_object_get(root, "key"));
    const json_t *agree = json_object_get(root, "agreement");
    const json_t *layers = json_object_get(root, "layers");
    uint64_t requested, used, skipped;
    bool ok = false;
    if (!format || strcmp(format, REPORT_FORMAT) != 0 || !k || strcmp(k, hex) != 0) {
        snprintf(message, message_size, "%s: not a report for this key", path);
        goto cleanup;
    }
    if (!get_count(root, "requested", &requested) || !get_count(root, "used", &used) ||
        !get_count(root, "skipped", &skipped) || !get_real(root, "ms", &fresh.ms) ||
        !json_is_object(agree) || !get_count(agree, "samples", &fresh.agreement.samples) ||
        !get_real(agree, "top1_agreement", &fresh.agreement.top1_agreement) ||
        !get_real(agree, "top5_overlap", &fresh.agreement.top5_overlap) ||
        !get_real(agree, "mean_kl", &fresh.agreement.mean_kl) || !json_is_array(layers)) {
        snprintf(message, message_size, "%s: malformed report", path);
        goto cleanup;
    }
    size_t n = json_array_size(layers);
    if (n) {
        fresh.layers = calloc(n, sizeof *fresh.layers);
        if (!fresh.layers) {
            snprintf(message, message_size, "%s: out of memory", path);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < n; i++) {
        fresh.layer_count = i + 1;
        if (!layer_from_json(json_array_get(layers, i), &fresh.layers[i])) {
            snprintf(message, message_size, "%s: malformed layer %zu", path, i);
            goto cleanup;
        }
    }
    fresh.requested = (size_t)requested;
    fresh.used = (size_t)used;
    fresh.skipped = (size_t)skipped;
    qs_variant_report_free(r);
    r->requested = fresh.requested;
    r->used = fresh.used;
    r->skipped = fresh.skipped;
    r->ms = fresh.ms;
    r->agreement = fresh.agreement;
    r->layers = fresh.layers;
    r->layer_count = fresh.layer_count;
    r->status = QS_REPORT_READY;
    fresh.layers = NULL;
    fresh.layer_count = 0;
    ok = true;
cleanup:
    qs_variant_report_free(&fresh);
    json_decref(root);
    return ok;
}
