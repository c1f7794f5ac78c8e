/* Load-time graph passes: constant folding, Identity removal, BatchNorm folding, convolution
 * fusion (activation, residual Add) and the NHWC layout pass. */
#ifndef QS_CORE_OPTIMIZE_H
#define QS_CORE_OPTIMIZE_H

#include "core/graph.h"
#include "kernels/kernels.h"

/* Evaluate every node whose inputs are all constants; its outputs become constants. With
 * keep_dequantize, DequantizeLinear nodes stay (int8 weights for the QDQ lowering). */
qs_status qs_pass_fold_constants(qs_graph *g, qs_threadpool *pool, bool keep_dequantize,
                                 qs_error *err);
/* Bypass Identity and inference-mode Dropout. */
qs_status qs_pass_remove_identity(qs_graph *g, qs_error *err);
/* Fold BatchNormalization into the Conv (or ConvNHWC) that feeds it. */
qs_status qs_pass_fold_batchnorm(qs_graph *g, qs_error *err);
/* Turn 2-D float Convs with constant weights into ConvNHWC and fuse a following residual Add
 * and activation. Needs annotated shapes (value dims). */
qs_status qs_pass_fuse_conv(qs_graph *g, bool residual, qs_error *err);
/* Give ConvNHWC chains NHWC activations: pools, elementwise ops and Concat follow them, and
 * Transposes are inserted where NCHW is needed again. Needs annotated shapes. */
qs_status qs_pass_layout(qs_graph *g, qs_error *err);

/* Bind every node to its qs_op and run op->init. */
qs_status qs_graph_bind_ops(qs_graph *g, qs_error *err);
/* (Re)bind one node: look up its op and run init, freeing earlier params. */
qs_status qs_node_bind(const qs_graph *g, qs_node *n, qs_error *err);

#endif
