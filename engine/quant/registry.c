/* Registry of the quantization operators (looked up after the main operator table). */
#include <string.h>

#include "quant/quant.h"

extern const qs_op qs_op_quantize_linear, qs_op_dequantize_linear, qs_op_dynamic_quantize_linear;
extern const qs_op qs_op_dynq_conv_nhwc, qs_op_dynq_gemm;
extern const qs_op qs_op_qlinear_conv_nhwc, qs_op_qgemm, qs_op_qlinear_add,
    qs_op_qlinear_global_average_pool_nhwc;
extern const qs_op qs_op_qlinear_conv, qs_op_qlinear_matmul, qs_op_conv_integer,
    qs_op_matmul_integer;

static const qs_op *const quant_ops[] = {
    &qs_op_quantize_linear,   &qs_op_dequantize_linear, &qs_op_dynamic_quantize_linear,
    &qs_op_qlinear_conv_nhwc, &qs_op_qgemm,             &qs_op_qlinear_add,
    &qs_op_qlinear_global_average_pool_nhwc, &qs_op_dynq_conv_nhwc, &qs_op_dynq_gemm,
    &qs_op_qlinear_conv,      &qs_op_qlinear_matmul,    &qs_op_conv_integer,
    &qs_op_matmul_integer,
};

const qs_op *qs_quant_op_find(const char *domain, const char *type) {
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < sizeof(quant_ops) / sizeof(quant_ops[0]); i++)
        if (strcmp(quant_ops[i]->domain, domain) == 0 && strcmp(quant_ops[i]->type, type) == 0)
            return quant_ops[i];
    return NULL;
}
