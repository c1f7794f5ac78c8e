/* Test helper: read float32 .npy files (versions 1-3, little-endian, C order). */
#ifndef QST_NPY_H
#define QST_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t rank;
    int64_t dims[8];
    float *data; /* malloc'ed, numel floats */
    size_t numel;
} qst_npy;

/* 0 on success; fills *out. Only '<f4' arrays in C order are accepted. */
int qst_npy_load(const char *path, qst_npy *out);
void qst_npy_free(qst_npy *a);

#endif
