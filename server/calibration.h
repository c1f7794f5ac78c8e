/* Calibration for static int8 variants: the image set, run through the model's preprocessing. */
#ifndef QS_SERVER_CALIBRATION_H
#define QS_SERVER_CALIBRATION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "preprocess.h"
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

/* Decode and preprocess every image of the set and feed it to the calibrator, one batch-1 tensor
 * per image (`input` gives the shape, numel floats). Unreadable or undecodable images are skipped
 * and counted in *skipped; it fails (message) when no image could be used, the calibrator
 * refuses a tensor, or *cancel becomes true (checked between images; cancel may be NULL).
 * *used receives the images observed. */
bool qs_calibration_run(qs_calibrator *cal, const qs_calibration_set *set,
                        const qs_preprocess_spec *spec, const qs_tensor *input, size_t numel,
                        const qs_image_limits *limits, const _Atomic bool *cancel, size_t *used,
                        size_t *skipped, char *message, size_t message_size);

#endif /* QS_SERVER_CALIBRATION_H */
