/* The fp32-vs-int8 report of an int8 variant, computed once at load and kept for
 * GET /models/NAME/quantization. */
#ifndef QS_SERVER_QUANT_REPORT_H
#define QS_SERVER_QUANT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "calibration.h"
#include "quantserve/engine.h"

#define QS_REPORT_STATUS_LIST(X)                  \
    X(QS_REPORT_PENDING, "pending")  /* the variant is still loading */ \
    X(QS_REPORT_OFF, "off")          /* "report": false */ \
    X(QS_REPORT_NONE, "none")        /* no images to compute it on */ \
    X(QS_REPORT_READY, "ready")                   \
    X(QS_REPORT_FAILED, "failed")    /* could not be computed; the variant still serves */

typedef enum {
#define QS_REPORT_STATUS_ENUM(name, text) name,
    QS_REPORT_STATUS_LIST(QS_REPORT_STATUS_ENUM)
#undef QS_REPORT_STATUS_ENUM
    QS_REPORT_STATUS_COUNT
} qs_report_status;

const char *qs_report_status_to_string(qs_report_status status);

/* One quantized activation: the engine's qs_layer_report with owned strings. */
typedef struct {
    char *name;
    char *op;
    float scale;
    int32_t zero_point;
    double clipped;
    double sqnr_db;
    double cosine;
    uint64_t elements;
} qs_report_layer;

/* Zeroed = PENDING with nothing computed. Strings in it are owned (free with
 * qs_variant_report_free), except `images` and `reference_onnx`, borrowed from the config. */
typedef struct {
    qs_report_status status;
    char reason[480];             /* OFF, NONE, FAILED: why */
    const char *images;           /* the image source it ran on */
    const char *images_from;      /* "calibration" or "report.images" */
    size_t requested;             /* images listed (after the count cut), used and skipped */
    size_t used, skipped;
    char reference[80];           /* the fp32 variant compared with ("" when the model has none:
                                   * then its `onnx` file run in fp32) */
    const char *reference_onnx;
    double ms;
    qs_model_agreement agreement;
    qs_report_layer *layers;      /* ranked by SQNR, worst first */
    size_t layer_count;
} qs_variant_report;

void qs_variant_report_free(qs_variant_report *r);

/* One layer as a JSON object: name, op, scale, zero_point, clipped, sqnr_db, cosine, elements
 * (non-finite reals as null), as the report file holds it. For GET /models/NAME/quantization,
 * rank > 0 adds "rank" first and a non-NULL observer adds "observer" after zero_point. New
 * reference; NULL when out of memory or a string is not UTF-8. */
json_t *qs_report_layer_json(const qs_report_layer *l, size_t rank, const char *observer);

/* Run the fp32 and the int8 model on every image of the set (options as for calibration) and
 * fill layers and agreement; status READY. On failure returns false with the reason in
 * r->reason (status FAILED). Both models must be loaded and compatible (same input/output). */
bool qs_variant_report_compute(qs_variant_report *r, const qs_model *fp32, const qs_model *int8,
                               const qs_calibration_set *set, const qs_image_feed_options *opts);

/* The results of a READY report (counts, agreement, layers, ms) as JSON at `path` under `key`,
 * written to a temporary file and renamed. False with the reason in message. */
bool qs_variant_report_save(const qs_variant_report *r, uint64_t key, const char *path,
                            char *message, size_t message_size);

/* Read what qs_variant_report_save wrote: true (status READY) only when the file
 * holds `key` and is well formed; otherwise r is left as it was and message says why. */
bool qs_variant_report_load(qs_variant_report *r, uint64_t key, const char *path,
                            char *message, size_t message_size);

#endif /* QS_SERVER_QUANT_REPORT_H */
