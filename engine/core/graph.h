/* The engine's in-memory graph: values (tensors), nodes and attributes, built from ONNX at load. */
#ifndef QS_CORE_GRAPH_H
#define QS_CORE_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantserve/engine.h"

struct qs_op;

/* Memory layout of a 4-D activation. The graph stores dims in the order of the layout:
 * a NHWC value has dims {N, H, W, C}. Everything arrives NCHW; the layout pass moves conv chains
 * to NHWC. */
typedef enum { QS_LAYOUT_PLAIN = 0, QS_LAYOUT_NHWC = 1 } qs_layout;

/* Quantization parameters of a value (int8/uint8 tensors). Per-tensor when count == 1, else per
 * channel along `axis`. Owned by the value. */
typedef struct {
    int32_t axis;
    size_t count;
    float *scale;
    int32_t *zero_point;
    char *source;      /* name of the float value this quantizes (for the int8 report), or NULL */
} qs_quant;

typedef enum {
    QS_VALUE_ACTIVATION = 0, /* computed at run time, lives in the arena */
    QS_VALUE_CONSTANT,       /* initializer or folded: `data` owned by the value */
    QS_VALUE_INPUT,          /* graph input, bound by the caller */
} qs_value_kind;

typedef struct qs_value {
    char *name;
    qs_value_kind kind;
    qs_dtype dtype;
    int32_t rank;            /* -1 while unknown */
    int64_t dims[QS_MAX_RANK];
    qs_layout layout;
    void *data;              /* constants only; 64-byte aligned, owned */
    qs_quant *quant;         /* optional */
    int32_t producer;        /* node index or -1 */
    int32_t n_consumers;     /* number of node input slots that read it */
    bool is_output;          /* a graph output */
} qs_value;

typedef enum {
    QS_ATTR_UNDEFINED = 0,
    QS_ATTR_FLOAT = 1,
    QS_ATTR_INT = 2,
    QS_ATTR_STRING = 3,
    QS_ATTR_TENSOR = 4,
    QS_ATTR_GRAPH = 5,
    QS_ATTR_FLOATS = 6,
    QS_ATTR_INTS = 7,
    QS_ATTR_STRINGS = 8,
} qs_attr_type;

/* An attribute as it came from ONNX. Tensor attributes are imported as a constant qs_value
 * (not registered in the graph's value list) in `t`. */
typedef struct {
    char *name;
    qs_attr_type type;
    float f;
    int64_t i;
    char *s;
    size_t n;        /* element count of ints/floats */
    int64_t *ints;
    float *floats;
    qs_value *t;
} qs_attr;

typedef struct qs_node {
    char *name;          /* never NULL: ONNX name, or "<op_type>_<index>" when the file had none */
    char *op_type;
    char *domain;        /* "" for the default ONNX domain */
    const struct qs_op *op;
    int32_t n_inputs;
    int32_t *inputs;     /* value index, -1 for an omitted optional input */
    int32_t n_outputs;
    int32_t *outputs;
    size_t n_attrs;
    qs_attr *attrs;
    void *params;        /* op-specific, made by op->init, freed by op->free_params */
    bool dead;           /* removed by an optimization pass */
} qs_node;

typedef struct qs_graph {
    int64_t opset;           /* default-domain opset */
    int64_t ir_version;
    size_t n_values, cap_values;
    qs_value **values;
    size_t n_nodes, cap_nodes;
    qs_node *nodes;          /* in topological order after qs_graph_sort */
    size_t n_inputs;
    int32_t *inputs;         /* value indices of real graph inputs (initializers excluded) */
    size_t n_outputs;
    int32_t *outputs;
    uint64_t file_bytes;
    uint64_t onnx_node_count;
} qs_graph;

/* Creation and destruction. */
qs_graph *qs_graph_create(void);
void qs_graph_free(qs_graph *g);

/* Value helpers. qs_graph_add_value takes ownership of nothing; name is copied. Returns the index
 * or -1 on allocation failure. */
int32_t qs_graph_add_value(qs_graph *g, const char *name);
int32_t qs_graph_find_value(const qs_graph *g, const char *name);
qs_value *qs_value_create(const char *name);
void qs_value_free(qs_value *v);
/* Allocate (aligned, zeroed) storage for a constant of the value's dtype and dims. */
qs_status qs_value_alloc_data(qs_value *v);
size_t qs_value_numel(const qs_value *v);
size_t qs_value_bytes(const qs_value *v);
bool qs_value_is_const(const qs_graph *g, int32_t idx);
/* Set rank/dims from an array. */
void qs_value_set_shape(qs_value *v, int32_t rank, const int64_t *dims);

/* Append a node; op_type/name copied. Returns its index or -1. Inputs/outputs are set after. */
int32_t qs_graph_add_node(qs_graph *g, const char *op_type, const char *name);
qs_status qs_node_set_io(qs_node *n, int32_t n_inputs, const int32_t *inputs, int32_t n_outputs,
                         const int32_t *outputs);
void qs_node_clear(qs_node *n);

/* Recount producers/consumers after rewriting. */
void qs_graph_link(qs_graph *g);
/* Topologically sort live nodes; drops dead ones. QS_ERR_MALFORMED_MODEL on a cycle or a value
 * read before any node produces it. */
qs_status qs_graph_sort(qs_graph *g, qs_error *err);

/* Attribute lookup by name (NULL if absent). */
const qs_attr *qs_node_attr(const qs_node *n, const char *name);
int64_t qs_node_attr_int(const qs_node *n, const char *name, int64_t def);
float qs_node_attr_float(const qs_node *n, const char *name, float def);
const char *qs_node_attr_string(const qs_node *n, const char *name, const char *def);
/* Set (replace or append) an attribute on a node, for rewriting passes. */
qs_status qs_node_set_attr_int(qs_node *n, const char *name, int64_t v);
qs_status qs_node_set_attr_float(qs_node *n, const char *name, float v);
qs_status qs_node_set_attr_string(qs_node *n, const char *name, const char *v);
qs_status qs_node_set_attr_ints(qs_node *n, const char *name, const int64_t *v, size_t count);
/* Input value of a node, or NULL for an omitted optional input / out of range. */
qs_value *qs_node_input(const qs_graph *g, const qs_node *n, int32_t i);
qs_value *qs_node_output(const qs_graph *g, const qs_node *n, int32_t i);

/* Aligned allocation used for all tensor data (64 bytes, for AVX-512). */
void *qs_aligned_alloc(size_t size);
void qs_aligned_free(void *p);

/* Error helpers: set err (if non-NULL and still clear) and return status. */
qs_status qs_error_set(qs_error *err, qs_status status, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same, with where = `node "NAME" (OP)`. */
qs_status qs_node_error(qs_error *err, qs_status status, const qs_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Checked size arithmetic: false on overflow. */
static inline bool qs_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool qs_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

#endif
