/* Operator interface: every ONNX (and internal fused) operator is one qs_op table in its own file. */
#ifndef QS_OPS_OP_H
#define QS_OPS_OP_H

#include "core/graph.h"

struct qs_threadpool;

/* A tensor bound for shape inference or execution. dims are in the value's layout order.
 * An omitted optional input has dtype QS_DTYPE_UNDEFINED, rank -1 and data NULL.
 * During inference `data` is non-NULL only for inputs known before run time (constants and
 * values computed at plan time); during run every present input has data. */
typedef struct {
    qs_dtype dtype;
    int32_t rank;
    int64_t dims[QS_MAX_RANK];
    void *data;
    qs_layout layout;
    const qs_quant *quant;
} qs_view;

/* Per-run execution context handed to op->run. */
typedef struct {
    struct qs_threadpool *pool; /* never NULL; may have a single thread */
    int32_t n_threads;
    void *scratch;              /* op->scratch_bytes() bytes, 64-byte aligned, or NULL if 0 */
    size_t scratch_bytes;
} qs_exec_ctx;

enum {
    /* Reads only the shapes of its inputs (Shape, Size): it can run at plan time even when its
     * inputs are activations. */
    QS_OP_SHAPE_ONLY = 1u << 0,
    /* Output may alias input 0 (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout): same
     * bytes, new dims. The planner then makes the output a view of the input. */
    QS_OP_ALIAS_INPUT0 = 1u << 1,
    /* After prepare, run reads no constant input's data (prepare packed what it needs; infer
     * reads only their dims). The loader then frees constants only such ops read. */
    QS_OP_RUN_SKIPS_CONSTANTS = 1u << 2,
};

typedef struct qs_op {
    const char *type;        /* ONNX op_type, e.g. "Conv" */
    const char *domain;      /* "" for ONNX, "quantserve" for internal fused ops */
    int32_t min_inputs, max_inputs;
    int32_t min_outputs, max_outputs;
    uint32_t flags;

    /* Load time, once per node: validate attributes (opset in g->opset), store what run needs in
     * n->params. Must not depend on input shapes. Refuse unsupported attribute values with
     * QS_ERR_UNSUPPORTED and malformed ones with QS_ERR_MALFORMED_MODEL via qs_node_error.
     * NULL when the op has no attributes. */
    qs_status (*init)(const qs_graph *g, qs_node *n, qs_error *err);

    /* Shape inference: set dtype, rank, dims (and layout, usually in[0]'s) of every out[i] from
     * the inputs. Inputs whose data is needed (Reshape's shape, Slice's starts, ...) must be
     * known (data non-NULL), else QS_ERR_UNSUPPORTED. Called at load (batch 1) and at planning
     * time for the real input dims. Must validate everything run relies on (ranks, broadcast
     * compatibility, index ranges of constant inputs) so that run cannot fail on shapes. */
    qs_status (*infer)(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err);

    /* Optional: bytes of scratch run needs for these shapes and thread count. */
    size_t (*scratch_bytes)(const qs_node *n, const qs_view *in, const qs_view *out,
                            int32_t n_threads);

    /* Optional, load time after optimization: pack constant inputs (weights) into n->params. */
    qs_status (*prepare)(const qs_graph *g, qs_node *n, qs_error *err);

    /* Compute. out[i].data is preallocated with the inferred dims. Must not allocate. */
    qs_status (*run)(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx);

    /* Free n->params. NULL-safe. NULL when params are a plain free()-able block or absent. */
    void (*free_params)(void *params);

    /* Optional: resident bytes of what prepare packed (reported in model sizes). */
    uint64_t (*packed_bytes)(const qs_node *n);
} qs_op;

/* Registry lookup: the op implementing (domain, type), or NULL. domain NULL or "ai.onnx" means "". */
const qs_op *qs_op_find(const char *domain, const char *type);

/* Small helpers shared by ops. */
size_t qs_view_numel(const qs_view *v);
/* Copy dtype/rank/dims/layout from src to dst (not data). */
void qs_view_copy_shape(qs_view *dst, const qs_view *src);
/* Numpy-style multidirectional broadcast of a and b into out dims; false if incompatible. */
bool qs_broadcast_shape(const qs_view *a, const qs_view *b, int32_t *rank, int64_t *dims);
/* Read element i of an integer tensor (int32/int64/uint8/...) as int64. */
int64_t qs_view_get_int(const qs_view *v, size_t i);

#endif
