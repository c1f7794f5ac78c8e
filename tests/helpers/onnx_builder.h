/* Test helper: build small ONNX models in memory with protobuf-c (for engine and fuzz tests). */
#ifndef QST_ONNX_BUILDER_H
#define QST_ONNX_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "quantserve/engine.h"

typedef struct qst_model qst_model;
typedef struct qst_node qst_node;

qst_model *qst_model_create(int64_t opset);
void qst_model_free(qst_model *m);
/* dims may contain -1 for a dynamic dimension. */
void qst_model_input(qst_model *m, const char *name, qs_dtype dtype, int32_t rank,
                     const int64_t *dims);
void qst_model_output(qst_model *m, const char *name);
void qst_model_init_f32(qst_model *m, const char *name, int32_t rank, const int64_t *dims,
                        const float *data);
void qst_model_init_i64(qst_model *m, const char *name, int32_t rank, const int64_t *dims,
                        const int64_t *data);
/* An initializer whose data lives outside the model (data_location EXTERNAL): kv holds n_kv
 * key/value pairs as given ("location", "w.bin", "offset", "0", ...), copied as they are, so
 * tests can write malformed entries too. */
void qst_model_init_external(qst_model *m, const char *name, qs_dtype dtype, int32_t rank,
                             const int64_t *dims, const char *const *kv, size_t n_kv);
/* inputs/outputs: comma-separated names, "" for an omitted optional input ("X,,B"). */
qst_node *qst_model_node(qst_model *m, const char *op_type, const char *inputs,
                         const char *outputs);
void qst_node_int(qst_node *n, const char *name, int64_t v);
void qst_node_float(qst_node *n, const char *name, float v);
void qst_node_string(qst_node *n, const char *name, const char *v);
void qst_node_ints(qst_node *n, const char *name, size_t count, const int64_t *v);
/* Serialize; *size gets the length. Caller frees the buffer. */
uint8_t *qst_model_pack(qst_model *m, size_t *size);

/* Deterministic pseudo-random floats in [lo, hi). */
void qst_fill_random(float *x, size_t n, uint32_t seed, float lo, float hi);

#endif
