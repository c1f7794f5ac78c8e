/* Test helper: a minimal .npy reader for float32 reference tensors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/npy.h"

int qst_npy_load(const char *path, qst_npy *out) {
    int rc = -1;
    unsigned char magic[8];
    char *header = NULL;
    FILE *f = fopen(path, "rb");
    memset(out, 0, sizeof(*out));
    if (!f)
        return -1;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0)
        goto cleanup;
    size_t hlen;
    if (magic[6] == 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2)
            goto cleanup;
        hlen = (size_t)b[0] | (size_t)b[1] << 8;
    } else {
        unsigned char b[4];
        if (fread(b, 1, 4, f) != 4)
            goto cleanup;
        hlen = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
    }
    if (hlen > 65536 || !(header = calloc(hlen + 1, 1)) || fread(header, 1, hlen, f) != hlen)
        goto cleanup;
    if (!strstr(header, "'<f4'") || strstr(header, "'fortran_order': True"))
        goto cleanup;
    char *shape = strstr(header, "'shape': (");
    if (!shape)
        goto cleanup;
    shape += strlen("'shape': (");
    out->numel = 1;
    while (*shape && *shape != ')') {
        char *end;
        long long d = strtoll(shape, &end, 10);
        if (end == shape)
            break;
        if (out->rank == 8)
            goto cleanup;
        out->dims[out->rank++] = d;
        out->numel *= (size_t)d;
        shape = end;
        while (*shape == ',' || *shape == ' ')
            shape++;
    }
    out->data = malloc(out->numel * sizeof(float) + 1);
    if (!out->data || fread(out->data, sizeof(float), out->numel, f) != out->numel)
        goto cleanup;
    rc = 0;
cleanup:
    if (rc != 0)
        qst_npy_free(out);
    free(header);
    fclose(f);
    return rc;
}

void qst_npy_free(qst_npy *a) {
    free(a->data);
    memset(a, 0, sizeof(*a));
}
