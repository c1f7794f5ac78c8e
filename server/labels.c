/* Loading class label files into one buffer with an index of line starts. */
#include "labels.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void qs_labels_free(qs_labels *labels)
{
    if (!labels)
        return;
    free(labels->names);
    free(labels->storage);
    memset(labels, 0, sizeof *labels);
}

bool qs_labels_load(const char *path, qs_labels *labels, char *message, size_t message_size)
{
    bool ok = false;
    FILE *f = NULL;
    memset(labels, 0, sizeof *labels);
    struct stat st;
    errno = 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(message, message_size, "labels file %s: %s", path,
                 errno ? strerror(errno) : "not a regular file");
        goto cleanup;
    }
    if ((uint64_t)st.st_size > QS_LABELS_MAX_BYTES) {
        snprintf(message, message_size, "labels file %s: larger than %u bytes", path,
                 QS_LABELS_MAX_BYTES);
        goto cleanup;
    }
    size_t size = (size_t)st.st_size;
    f = fopen(path, "rb");
    labels->storage = malloc(size + 1);
    if (!f || !labels->storage) {
        snprintf(message, message_size, "labels file %s: %s", path,
                 f ? "out of memory" : strerror(errno));
        goto cleanup;
    }
    if (fread(labels->storage, 1, size, f) != size) {
        snprintf(message, message_size, "labels file %s: short read", path);
        goto cleanup;
    }
    labels->storage[size] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        if (labels->storage[i] == '\n')
            lines++;
    if (size > 0 && labels->storage[size - 1] != '\n')
        lines++;
    if (lines > QS_LABELS_MAX_COUNT) {
        snprintf(message, message_size, "labels file %s: more than %d lines", path,
                 QS_LABELS_MAX_COUNT);
        goto cleanup;
    }
    labels->names = calloc(lines ? lines : 1, sizeof *labels->names);
    if (!labels->names) {
        snprintf(message, message_size, "labels file %s: out of memory", path);
        goto cleanup;
    }
    char *p = labels->storage, *end = labels->storage + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end[-1] = '\0';
        *line_end = '\0';
        labels->names[labels->count++] = p;
        p = line_end + 1;
    }
    ok = true;
cleanup:
    if (f)
        fclose(f);
    if (!ok)
        qs_labels_free(labels);
    return ok;
}
