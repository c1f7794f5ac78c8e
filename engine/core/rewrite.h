/* Graph rewriting helpers shared by the optimization and quantization passes. */
#ifndef QS_CORE_REWRITE_H
#define QS_CORE_REWRITE_H

#include "core/graph.h"
#include "kernels/kernels.h"

/* Replace every read of value `from` by `to` (node inputs only), except in node except_node. */
void qs_graph_replace_uses(qs_graph *g, int32_t from, int32_t to, int32_t except_node);
/* A live node of the default ONNX domain with this op_type. */
bool qs_node_is(const qs_node *n, const char *type);
/* Value v is a float32 constant with numel elements. */
bool qs_value_is_const_f32(const qs_graph *g, int32_t v, size_t numel);
/* A new zeroed float constant named base+suffix; index or -1. */
int32_t qs_graph_add_const_f32(qs_graph *g, const char *base, const char *suffix, int32_t rank,
                               const int64_t *dims);
/* Read a fusable activation (Relu, Clip with constant bounds, LeakyRelu, HardSigmoid,
 * HardSwish, Sigmoid) from node n; false if n is not one. */
bool qs_node_activation(const qs_graph *g, const qs_node *n, qs_act *act);
bool qs_value_same_dims(const qs_value *a, const qs_value *b);
/* Explicit [top, left, bottom, right] pads of a 2-D Conv/pool given the input's annotated NCHW
 * dims, kernel k, strides s, dilations d (resolves auto_pad). */
bool qs_conv_pads(const qs_node *n, const qs_value *x, const int64_t *k, const int64_t *s,
                  const int64_t *d, int64_t *pads);
/* Two positive ints attribute (strides, dilations), default {1, 1}; false if malformed. */
bool qs_node_ints2(const qs_node *n, const char *name, int64_t *v);
/* Activation attributes of fused operators: "activation" (none, relu, clip, leaky_relu,
 * hardsigmoid, hardswish, sigmoid) and act_min, act_max, act_alpha, act_beta. */
const char *qs_act_name(qs_act_kind kind);
qs_status qs_node_set_act_attrs(qs_node *n, const qs_act *act);
/* QS_ERR_MALFORMED_MODEL for an unknown activation name. */
qs_status qs_node_get_act_attrs(const qs_node *n, qs_act *act, qs_error *err);
/* Change a node's domain and op_type (rebind afterwards). */
qs_status qs_node_set_type(qs_node *n, const char *domain, const char *type);

#endif
