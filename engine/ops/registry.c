/* The operator registry: every qs_op table the engine knows, found by (domain, op_type). */
#include <string.h>

#include "ops/op.h"

extern const qs_op qs_op_add, qs_op_sub, qs_op_mul, qs_op_div, qs_op_mod, qs_op_prelu;
extern const qs_op qs_op_relu, qs_op_leaky_relu, qs_op_sigmoid, qs_op_hard_sigmoid,
    qs_op_hard_swish, qs_op_tanh, qs_op_exp, qs_op_log, qs_op_sqrt, qs_op_neg, qs_op_abs,
    qs_op_erf, qs_op_reciprocal, qs_op_floor, qs_op_ceil, qs_op_round, qs_op_sign, qs_op_softplus,
    qs_op_softsign, qs_op_elu, qs_op_selu, qs_op_celu, qs_op_thresholded_relu, qs_op_sin,
    qs_op_cos;
extern const qs_op qs_op_conv_nhwc; /* engine/ops/conv_nhwc.c, built by kernels/local.mk */
extern const qs_op qs_op_clip, qs_op_batchnorm, qs_op_conv, qs_op_gemm, qs_op_matmul;
extern const qs_op qs_op_max_pool, qs_op_average_pool, qs_op_max_pool_nhwc,
    qs_op_average_pool_nhwc, qs_op_global_average_pool, qs_op_global_max_pool,
    qs_op_global_average_pool_nhwc;
extern const qs_op qs_op_reshape, qs_op_flatten, qs_op_squeeze, qs_op_unsqueeze, qs_op_identity,
    qs_op_dropout, qs_op_transpose, qs_op_concat, qs_op_softmax, qs_op_log_softmax;
extern const qs_op qs_op_pad, qs_op_reduce_mean, qs_op_reduce_sum, qs_op_reduce_max,
    qs_op_reduce_min, qs_op_reduce_prod, qs_op_reduce_sum_square, qs_op_reduce_l1,
    qs_op_reduce_l2, qs_op_reduce_log_sum, qs_op_reduce_log_sum_exp;
extern const qs_op qs_op_shape, qs_op_size, qs_op_gather, qs_op_slice, qs_op_cast,
    qs_op_constant, qs_op_constant_of_shape, qs_op_equal, qs_op_less, qs_op_greater,
    qs_op_less_or_equal, qs_op_greater_or_equal, qs_op_and, qs_op_or, qs_op_xor, qs_op_not,
    qs_op_where, qs_op_expand, qs_op_range;
extern const qs_op qs_op_split, qs_op_sum, qs_op_mean, qs_op_max, qs_op_min, qs_op_pow,
    qs_op_argmax, qs_op_argmin, qs_op_lrn, qs_op_layer_norm, qs_op_tile, qs_op_scatter_nd,
    qs_op_einsum;

static const qs_op *const qs_op_table[] = {
    &qs_op_add, &qs_op_sub, &qs_op_mul, &qs_op_div, &qs_op_mod, &qs_op_prelu,
    &qs_op_relu, &qs_op_leaky_relu, &qs_op_sigmoid, &qs_op_hard_sigmoid, &qs_op_hard_swish,
    &qs_op_tanh, &qs_op_exp, &qs_op_log, &qs_op_sqrt, &qs_op_neg, &qs_op_abs, &qs_op_erf,
    &qs_op_reciprocal, &qs_op_floor, &qs_op_ceil, &qs_op_round, &qs_op_sign, &qs_op_softplus,
    &qs_op_softsign, &qs_op_elu, &qs_op_selu, &qs_op_celu, &qs_op_thresholded_relu, &qs_op_sin,
    &qs_op_cos,
    &qs_op_conv_nhwc,
    &qs_op_clip, &qs_op_batchnorm, &qs_op_conv, &qs_op_gemm, &qs_op_matmul,
    &qs_op_max_pool, &qs_op_average_pool, &qs_op_max_pool_nhwc, &qs_op_average_pool_nhwc,
    &qs_op_global_average_pool, &qs_op_global_max_pool, &qs_op_global_average_pool_nhwc,
    &qs_op_reshape, &qs_op_flatten, &qs_op_squeeze, &qs_op_unsqueeze, &qs_op_identity,
    &qs_op_dropout, &qs_op_transpose, &qs_op_concat, &qs_op_softmax, &qs_op_log_softmax,
    &qs_op_pad, &qs_op_reduce_mean, &qs_op_reduce_sum, &qs_op_reduce_max, &qs_op_reduce_min,
    &qs_op_reduce_prod, &qs_op_reduce_sum_square, &qs_op_reduce_l1, &qs_op_reduce_l2,
    &qs_op_reduce_log_sum, &qs_op_reduce_log_sum_exp,
    &qs_op_shape, &qs_op_size, &qs_op_gather, &qs_op_slice, &qs_op_cast, &qs_op_constant,
    &qs_op_constant_of_shape, &qs_op_equal, &qs_op_less, &qs_op_greater, &qs_op_less_or_equal,
    &qs_op_greater_or_equal, &qs_op_and, &qs_op_or, &qs_op_xor, &qs_op_not, &qs_op_where,
    &qs_op_expand, &qs_op_range,
    &qs_op_split, &qs_op_sum, &qs_op_mean, &qs_op_max, &qs_op_min, &qs_op_pow, &qs_op_argmax,
    &qs_op_argmin, &qs_op_lrn, &qs_op_layer_norm, &qs_op_tile, &qs_op_scatter_nd, &qs_op_einsum,
};

const qs_op *qs_op_find(const char *domain, const char *type) {
    if (type == NULL)
        return NULL;
    /* the default ONNX domain may be spelled "" or "ai.onnx" */
    if (domain == NULL || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < sizeof(qs_op_table) / sizeof(qs_op_table[0]); i++) {
        const qs_op *op = qs_op_table[i];
        if (strcmp(op->type, type) == 0 && strcmp(op->domain, domain) == 0)
            return op;
    }
    return NULL;
}
