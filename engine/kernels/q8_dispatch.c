/* The int8 kernel table of each ISA (chosen once per packed operator or per call by the ISA). */
#include "kernels/q8_ukernels.h"

static const qs_q8_kernels qs_q8_kernels_ref = {
    .isa = QS_ISA_REF,
    .gemm_name = "qs_q8_gemm_4x16c4__ref",
    .mr = QS_Q8_GEMM_REF_MR,
    .nb = 1,
    .gemm_u8 = qs_q8_gemm_u8_4x16c4__ref,
    .gemm_f32 = qs_q8_gemm_f32_4x16c4__ref,
    .dwconv_name = "qs_q8_dwconv__ref",
    .dwconv = qs_q8_dwconv__ref,
    .quantize = qs_q8_quantize__ref,
    .dequantize = qs_q8_dequantize__ref,
    .minmax = qs_f32_minmax__ref,
    .add = qs_q8_add__ref,
    .avgpool = qs_q8_avgpool__ref,
};

static const qs_q8_kernels qs_q8_kernels_avx2 = {
    .isa = QS_ISA_AVX2,
    .gemm_name = "qs_q8_gemm_2x16c4__avx2",
    .mr = QS_Q8_GEMM_AVX2_MR,
    .nb = 1,
    .gemm_u8 = qs_q8_gemm_u8_2x16c4__avx2,
    .gemm_f32 = qs_q8_gemm_f32_2x16c4__avx2,
    .dwconv_name = "qs_q8_dwconv__avx2",
    .dwconv = qs_q8_dwconv__ref,
    .dwconv_packed = qs_q8_dwconv__avx2,
    .dw_pack_bytes = qs_q8_dw_pack_bytes__avx2,
    .dw_pack = qs_q8_dw_pack__avx2,
    .quantize = qs_q8_quantize__ref,
    .dequantize = qs_q8_dequantize__ref,
    .minmax = qs_f32_minmax__ref,
    .add = qs_q8_add__ref,
    .avgpool = qs_q8_avgpool__ref,
};

const qs_q8_kernels *qs_q8_kernels_get(qs_isa isa) {
    switch (isa) {
    case QS_ISA_AVX2:
    case QS_ISA_AVX512: return &qs_q8_kernels_avx2;
    case QS_ISA_AVX512VNNI: return &qs_q8_kernels_avx2;
    case QS_ISA_REF: break;
    }
    return &qs_q8_kernels_ref;
}
