/* Quantization internals: quantization parameter helpers, the int8 operators' registry, and the
 * passes that turn a graph into its int8 form (QDQ lowering, static QDQ insertion, dynamic). */
#ifndef QS_QUANT_QUANT_H
#define QS_QUANT_QUANT_H

#include "core/graph.h"
#include "kernels/kernels.h"
#include "kernels/q8.h"
#include "ops/op.h"

#define QS_QDOMAIN "quantserve"

/* Int8 operators (domain "quantserve") and ONNX's QuantizeLinear/DequantizeLinear family. */
const qs_op *qs_quant_op_find(const char *domain, const char *type);

/* uint8 affine parameters for a real range [lo, hi] (widened to include 0) on the grid 0..qmax
 * (255, or 127 for 7-bit activations). symmetric puts the zero point at the middle ((qmax + 1) /
 * 2: 128, the int8 zero, for 8 bits). */
void qs_quant_params_from_range(float lo, float hi, bool symmetric, int32_t qmax, float *scale,
                                int32_t *zero);
/* The largest quantized activation of a recipe: 127 with reduce_range (the default), else 255. */
int32_t qs_quant_act_qmax(const qs_quant_options *o);
/* Upper bound of the uint8 values v holds at run time, proven from the graph: the fused clamp
 * (qmax) of the int8 operator that makes it, followed back through ops that only move or select
 * values; 255 when nothing smaller is known. Used at prepare time to pick 7-bit kernels. */
int32_t qs_quant_u8_bound(const qs_graph *g, int32_t v);
/* ONNX ops that only move or select the values of their first input (MaxPool, Flatten, Reshape,
 * Squeeze, Unsqueeze, Transpose, Identity): the QDQ lowering runs them on uint8, and
 * qs_quant_u8_bound follows a bound through them. One list, so the two cannot drift apart. */
bool qs_quant_is_passthrough(const qs_node *n);

/* Symmetric int8 weights: per output channel (axis 0) unless per_tensor; scales get
 * max|w| / 127 (1 for an all-zero channel). w has `channels` rows of `per_channel` values. */
void qs_quantize_weights(const float *w, size_t channels, size_t per_channel, bool per_tensor,
                         int8_t *q, float *scales);

/* 2-D convolution geometry of the internal NHWC operators: ints kernel_shape (2), strides (2),
 * dilations (2), pads (4: top, left, bottom, right), int group; all validated positive. */
typedef struct {
    int64_t kernel[2], strides[2], dilations[2], pads[4], group;
} qs_conv2d_geometry;

qs_status qs_conv2d_geometry_parse(const qs_node *n, qs_conv2d_geometry *geo, qs_error *err);
/* Output height/width for an input of h x w; false when empty. */
bool qs_conv2d_geometry_output(const qs_conv2d_geometry *geo, int64_t h, int64_t w, int64_t *oh,
                               int64_t *ow);

/* The fused clamp of an int8 operator: attributes qmin (default 0) and qmax (default 255),
 * 0 <= qmin <= qmax <= 255. */
qs_status qs_quant_attr_clamp(const qs_node *n, int32_t *qmin, int32_t *qmax, qs_error *err);

/* Output stage of the int8 operators that take QLinearConv's input order (x, x_scale, x_zero,
 * w, w_scale, w_zero, y_scale, y_zero, bias): the per-channel multipliers (x_scale * w_scale /
 * y_scale, or without y_scale the float-output x_scale * w_scale), the int32 bias, the output zero
 * point and clamp, all read from constants once at prepare time. The int8 weights' w_zero, when
 * present, is int32 (one value, or one per output channel: weights wider than int8, see
 * qs_q8_pack_b_offset); the kernels take its negation as weight offsets. */
typedef struct {
    float x_scale;
    int32_t x_zero;
    float *scale;      /* owned, one per output channel */
    int32_t *bias;     /* owned, NULL when the op has none */
    int32_t *w_offset; /* owned, one per output channel (-w_zero), NULL when all are 0 */
    qs_q8_requant rq;  /* points into scale/bias */
} qs_qlinear_output;

/* channels: output channels (w's dims[0]). QS_ERR_UNSUPPORTED for non-constant parameters. */
qs_status qs_qlinear_output_prepare(const qs_graph *g, const qs_node *n, size_t channels,
                                    int32_t qmin, int32_t qmax, qs_qlinear_output *o,
                                    qs_error *err);
void qs_qlinear_output_free(qs_qlinear_output *o);

/* Read a scalar constant input of a node as float / int (scale, zero point). */
bool qs_const_scalar_f32(const qs_graph *g, int32_t v, float *out);
bool qs_const_scalar_int(const qs_graph *g, int32_t v, int32_t *out);

/* ---- calibration statistics ---- */

#define QS_CAL_BINS 2048

/* A value's statistics over a calibration set: exact min/max, a moving average of per-batch
 * ranges, and a histogram on the grid k * width (width a power of two, so growing the range
 * merges bins exactly); memory is fixed whatever the number of samples. */
typedef struct {
    float min, max;
    float ema_min, ema_max;
    uint64_t batches, count;
    uint64_t zeros;          /* exact zeros (ReLU outputs), kept apart for the entropy observer */
    double width;
    int64_t first;
    uint64_t bins[QS_CAL_BINS];
} qs_histogram;

void qs_histogram_init(qs_histogram *h);
/* Record one batch of values (NaNs ignored). */
void qs_histogram_add(qs_histogram *h, const float *x, size_t n, float averaging_constant);
/* The clipping range the observer picks (widened to include 0). Defaults applied for zeroed
 * option fields. */
void qs_observer_range(const qs_histogram *h, const qs_quant_options *o, float *lo, float *hi);
/* Share of the recorded values outside [lo, hi]. */
double qs_histogram_clipped(const qs_histogram *h, float lo, float hi);

/* The calibrated range of a named value; false if it was never observed. */
bool qs_calibrator_range(const qs_calibrator *cal, const char *name, float *lo, float *hi);
const qs_quant_options *qs_calibrator_options(const qs_calibrator *cal);

/* Passes. */
/* Static quantization: Q/DQ pairs on the activations of quantizable ops (ranges from the
 * calibrator) and int8 weights, in the form the QDQ lowering takes. With reduce_range, the
 * activations a GEMM reads (non-depthwise Conv, Gemm, MatMul) get 0..127 parameters and their
 * QuantizeLinear an internal qmax attribute of 127, which the lowering turns into the clamp of
 * the int8 op that makes them; the others (e.g. depthwise inputs) keep 8 bits. */
qs_status qs_pass_insert_qdq(qs_graph *g, const qs_calibrator *cal, const qs_quant_options *o,
                             qs_error *err);
/* int8 activations (QuantizeLinear with an int8 zero point) become uint8 with zero point + 128:
 * the same grid, the representation our kernels use. */
qs_status qs_pass_activations_to_u8(qs_graph *g, qs_error *err);
/* Record on each QuantizeLinear output its scale, zero point and source float value. */
qs_status qs_pass_mark_quant_points(qs_graph *g, qs_error *err);
/* Replace DQ -> op -> Q patterns by int8 operators (QLinearConvNHWC, QGemm, QLinearAdd, ...). */
qs_status qs_pass_lower_qdq(qs_graph *g, qs_error *err);
/* Remove DequantizeLinear(QuantizeLinear(x)) round trips on activations (fp32 variant of a QDQ
 * model). */
qs_status qs_pass_strip_activation_qdq(qs_graph *g, qs_error *err);
/* Dynamic quantization of the optimized (NHWC) fp32 graph: ConvNHWC (not depthwise, no fused
 * residual) -> DynQConvNHWC, Gemm/MatMul with constant weights -> DynQGemm. */
qs_status qs_pass_dynamic(qs_graph *g, const qs_quant_options *o, qs_error *err);
/* Drop nodes whose outputs nobody reads. */
qs_status qs_pass_dead_code(qs_graph *g, qs_error *err);

#endif
