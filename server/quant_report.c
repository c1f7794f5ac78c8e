/* The fp32-vs-int8 report at load: images through both models with the engine's comparer, the
 * result copied out so the engine objects can go. */
#include "quant_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

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
