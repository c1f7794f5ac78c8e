/* Internals shared by the operator files: input and attribute checks, broadcasting, windows. */
#ifndef QS_OPS_OP_UTIL_H
#define QS_OPS_OP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/op.h"

struct qs_threadpool;

/* ---- inputs and dtypes ---- */

/* X(dtype enum, C type, short suffix) over the element types the typed loops are generated for. */
#define QS_FOREACH_SINT_DTYPE(X)                                                                 \
    X(QS_DTYPE_INT8, int8_t, i8)                                                                 \
    X(QS_DTYPE_INT16, int16_t, i16)                                                              \
    X(QS_DTYPE_INT32, int32_t, i32)                                                              \
    X(QS_DTYPE_INT64, int64_t, i64)
#define QS_FOREACH_UINT_DTYPE(X)                                                                 \
    X(QS_DTYPE_UINT8, uint8_t, u8)                                                               \
    X(QS_DTYPE_UINT16, uint16_t, u16)                                                            \
    X(QS_DTYPE_UINT32, uint32_t, u32)                                                            \
    X(QS_DTYPE_UINT64, uint64_t, u64)
#define QS_FOREACH_INT_DTYPE(X) QS_FOREACH_SINT_DTYPE(X) QS_FOREACH_UINT_DTYPE(X)
#define QS_FOREACH_FLOAT_DTYPE(X)                                                                \
    X(QS_DTYPE_FLOAT32, float, f32)                                                              \
    X(QS_DTYPE_FLOAT64, double, f64)
#define QS_FOREACH_NUMERIC_DTYPE(X) QS_FOREACH_FLOAT_DTYPE(X) QS_FOREACH_INT_DTYPE(X)

/* True when input i exists and was not omitted. */
bool qs_op_has_input(const qs_node *n, const qs_view *in, int32_t i);
bool qs_dtype_is_float(qs_dtype t);   /* float32, float64 */
bool qs_dtype_is_int(qs_dtype t);     /* signed and unsigned integers (not bool) */
/* Numeric types the elementwise ops compute on: float32/64 and the integers. */
bool qs_dtype_is_numeric(qs_dtype t);

/* Element count from dims, false on a negative dim or overflow (also of the byte size for esize). */
bool qs_dims_numel(int32_t rank, const int64_t *dims, size_t esize, size_t *out);
/* Product of dims[from, to). Dims must already be validated. */
size_t qs_dims_prod(const int64_t *dims, int32_t from, int32_t to);

/* Map axis in [-rank, rank) to [0, rank); false if out of range. */
bool qs_axis_normalize(int64_t axis, int32_t rank, int32_t *out);

/* Shared infer checks: the output fits in memory (dims >= 0, bytes do not overflow). */
qs_status qs_op_check_output(const qs_node *n, const qs_view *out, qs_error *err);
/* Input i must be present with data known at infer time (a constant); `what` names it. */
qs_status qs_op_need_const(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                           qs_error *err);
/* Input i must not be NHWC (ops with NCHW/axis semantics). */
qs_status qs_op_need_plain(const qs_node *n, const qs_view *in, int32_t i, qs_error *err);

/* Read a known 1-D (or scalar) integer input into out[0, max); *count gets its length. */
qs_status qs_input_ints(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                        int64_t *out, size_t max, size_t *count, qs_error *err);
/* Read a scalar (1 element) of any numeric dtype as double. */
double qs_view_get_double(const qs_view *v, size_t i);

/* ---- attributes ---- */

/* INT attribute with a default; QS_ERR_MALFORMED_MODEL if present with another type. */
qs_status qs_attr_get_int(const qs_node *n, const char *name, int64_t def, int64_t *out,
                          qs_error *err);
qs_status qs_attr_get_float(const qs_node *n, const char *name, float def, float *out,
                            qs_error *err);
/* INTS attribute into out[0, max); *count = 0 when absent. Too long: QS_ERR_UNSUPPORTED. */
qs_status qs_attr_get_ints(const qs_node *n, const char *name, int64_t *out, size_t max,
                           size_t *count, qs_error *err);

/* ---- broadcasting ---- */

#define QS_BCAST_MAX_IN 3

/* Output walked as rows of dims[rank - 1] elements; each input's element strides per dim (0 on
 * broadcast dims). Dims of size 1 are dropped and compatible neighbours merged, so the innermost
 * stride of each input is 0 or 1. */
typedef struct {
    int32_t rank;
    int32_t n_in;
    int64_t dims[QS_MAX_RANK];
    int64_t strides[QS_BCAST_MAX_IN][QS_MAX_RANK];
} qs_bcast;

/* Plan broadcasting of ins[0..n_in) to out (already validated as compatible). */
void qs_bcast_init(qs_bcast *b, int32_t n_in, const qs_view *const *ins, const qs_view *out);
/* Inner row length and row count. */
size_t qs_bcast_inner(const qs_bcast *b);
size_t qs_bcast_rows(const qs_bcast *b);
/* Element offsets of each input at the start of a row. */
void qs_bcast_row_offsets(const qs_bcast *b, size_t row, size_t *off);
/* A row of broadcast elementwise work: ins[k] points at the row start of input k, unit[k] is 1
 * when that input advances by one element per output element and 0 when it stays put. */
typedef void (*qs_bcast_row_fn)(const void *const *ins, const int *unit, void *out, size_t n);
/* Run fn over every output row, split over the pool. esize: bytes per element of each input
 * (in_esize[k]) and of the output. */
void qs_bcast_run(const qs_bcast *b, const void *const *ins, const size_t *in_esize, void *out,
                  size_t out_esize, qs_bcast_row_fn fn, const qs_exec_ctx *ctx);
/* Broadcast shape of n views; false if incompatible. */
bool qs_broadcast_shape_n(int32_t n_in, const qs_view *const *ins, int32_t *rank, int64_t *dims);

/* ---- sliding windows (Conv, pools) ---- */

#define QS_WINDOW_MAX_DIMS 3

typedef enum {
    QS_AUTO_PAD_NOTSET = 0,
    QS_AUTO_PAD_SAME_UPPER,
    QS_AUTO_PAD_SAME_LOWER,
    QS_AUTO_PAD_VALID,
} qs_auto_pad;

/* Window attributes as parsed at init. Counts are 0 when absent (defaults: kernel from the
 * weights, strides/dilations 1, pads 0). */
typedef struct {
    qs_auto_pad auto_pad;
    bool ceil_mode;
    size_t n_kernel, n_strides, n_dilations, n_pads;
    int64_t kernel[QS_WINDOW_MAX_DIMS];
    int64_t strides[QS_WINDOW_MAX_DIMS];
    int64_t dilations[QS_WINDOW_MAX_DIMS];
    int64_t pads[2 * QS_WINDOW_MAX_DIMS];
} qs_window_attrs;

/* Window geometry resolved for an input: every array has n_sp valid entries. */
typedef struct {
    int32_t n_sp;
    int64_t in[QS_WINDOW_MAX_DIMS], out[QS_WINDOW_MAX_DIMS];
    int64_t kernel[QS_WINDOW_MAX_DIMS], stride[QS_WINDOW_MAX_DIMS];
    int64_t dilation[QS_WINDOW_MAX_DIMS];
    int64_t pad_begin[QS_WINDOW_MAX_DIMS], pad_end[QS_WINDOW_MAX_DIMS];
} qs_window;

/* Parse auto_pad, kernel_shape, strides, dilations, pads (and ceil_mode if allow_ceil). */
qs_status qs_window_attrs_parse(const qs_node *n, bool allow_ceil, qs_window_attrs *a,
                                qs_error *err);
/* Resolve for n_sp spatial dims of sizes in_sp; kernel comes from the attribute or, when kernel
 * is non-NULL, from the weights (and must agree with the attribute). Checks every value. */
qs_status qs_window_resolve(const qs_node *n, const qs_window_attrs *a, int32_t n_sp,
                            const int64_t *in_sp, const int64_t *kernel, qs_window *w,
                            qs_error *err);

/* ---- threading ---- */

/* Run fn over [0, n_items) split into contiguous chunks of at least `grain` items on the pool;
 * fn(ctx, begin, end). Single-threaded when the work is small. */
typedef void (*qs_range_fn)(void *ctx, size_t begin, size_t end);
/* Items per task so that a task does about 16K units of work, given the cost of one item. */
size_t qs_op_grain(size_t item_cost);
void qs_op_parallel(struct qs_threadpool *pool, int32_t n_threads, size_t n_items, size_t grain,
                    qs_range_fn fn, void *ctx);

#endif
