/* Image sets for static int8 variants and their report: listing, hashing, feeding through the
 * model's preprocessing. */
#ifndef QS_SERVER_CALIBRATION_H
#define QS_SERVER_CALIBRATION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "preprocess.h"
#include "progress.h"
#include "quantserve/engine.h"

/* The image paths of a calibration source, owned (free with qs_calibration_set_free). */
typedef struct {
    char **paths;
    size_t count;
    size_t available; /* images the source has, before the count cut */
} qs_calibration_set;

/* List `source`: a directory (its .jpg/.jpeg/.png files, sorted by name) or a text file with one
 * image path per line (relative paths against the list's directory; blank lines and lines
 * starting with '#' skipped). Keeps the first `count`. On failure writes why into message. */
bool qs_calibration_set_load(const char *source, int32_t count, qs_calibration_set *set,
                             char *message, size_t message_size);
void qs_calibration_set_free(qs_calibration_set *set);

/* Hash of the set's contents for the calibration cache key: every image's bytes in order (not
 * its path, so a moved folder still hits), an unreadable file as a marker. Starts from seed. */
uint64_t qs_calibration_set_hash(const qs_calibration_set *set, uint64_t seed);

/* What to do with each preprocessed image: observe it (calibrator), compare it (report), ... */
typedef qs_status (*qs_image_feed_fn)(void *ctx, const qs_tensor *input, qs_error *err);

typedef struct {
    const qs_preprocess_spec *spec;
    const qs_tensor *input;       /* shape of the batch-1 tensor (data ignored) */
    size_t numel;                 /* its element count */
    const qs_image_limits *limits;
    const _Atomic bool *cancel;   /* checked between images; may be NULL */
    qs_progress *progress;        /* begun over the set, advanced per image, ended; may be NULL */
    const char *what;             /* in failure messages: "calibration", "report" */
    const char *label;            /* log prefix, e.g. "model m variant v: calibrating" */
} qs_image_feed_options;

/* Decode and preprocess every image of the set and feed it, one batch-1 tensor per image.
 * Unreadable or undecodable images are skipped and counted in *skipped; it fails (message) when
 * no image could be used, feed fails, or *cancel becomes true. *used receives the images fed.
 * While it runs, a line with percent, images/s and ETA is logged at most every 2 s. */
bool qs_image_set_feed(const qs_calibration_set *set, const qs_image_feed_options *opts,
                       qs_image_feed_fn feed, void *ctx, size_t *used, size_t *skipped,
                       char *message, size_t message_size);

#endif /* QS_SERVER_CALIBRATION_H */
