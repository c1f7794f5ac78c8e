/* Class labels: a text file with one class name per line, index i on line i+1. */
#ifndef QS_SERVER_LABELS_H
#define QS_SERVER_LABELS_H

#include <stdbool.h>
#include <stddef.h>

#define QS_LABELS_MAX_COUNT 100000
#define QS_LABELS_MAX_BYTES (16u << 20)

/* Names point into one owned buffer. Free with qs_labels_free. */
typedef struct {
    char **names;
    size_t count;
    char *storage;
} qs_labels;

/* Read `path`: lines end with LF or CRLF, a final empty line is ignored, every other line is a
 * label (an empty one too: its class simply has no name). On failure `labels` is zeroed and
 * `message` (message_size bytes) says why. Files over QS_LABELS_MAX_BYTES or with more than
 * QS_LABELS_MAX_COUNT lines are refused. */
bool qs_labels_load(const char *path, qs_labels *labels, char *message, size_t message_size);
void qs_labels_free(qs_labels *labels);

#endif /* QS_SERVER_LABELS_H */
