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

/* Everything but the GEMM of the two AVX2 tables. */
#define QS_Q8_AVX2_OTHERS                                                                        \
    .dwconv_name = "qs_q8_dwconv__avx2", .dwconv = qs_q8_dwconv__ref,                            \
    .dwconv_packed = qs_q8_dwconv__avx2, .dw_pack_bytes = qs_q8_dw_pack_bytes__avx2,             \
    .dw_pack = qs_q8_dw_pack__avx2, .quantize = qs_q8_quantize__avx2,                            \
    .dequantize = qs_q8_dequantize__avx2, .minmax = qs_f32_minmax__avx2, .add = qs_q8_add__avx2, \
    .avgpool = qs_q8_avgpool__avx2,

static const qs_q8_kernels qs_q8_kernels_avx2 = {
    .isa = QS_ISA_AVX2,
    .gemm_name = "qs_q8_gemm_4x64c2__avx2",
    .mr = QS_Q8_GEMM_AVX2_MR,
    .nb = 4,
    .pack_bytes = qs_q8_pack_bytes__avx2,
    .pack = qs_q8_pack__avx2,
    .gemm_u8 = qs_q8_gemm_u8_4x64c2__avx2,
    .gemm_f32 = qs_q8_gemm_f32_4x64c2__avx2,
    QS_Q8_AVX2_OTHERS
};

/* AVX2 for 7-bit activations: only the GEMM differs (and the packing, which is the default). */
static const qs_q8_kernels qs_q8_kernels_avx2u7 = {
    .isa = QS_ISA_AVX2,
    .gemm_name = "qs_q8_gemm_4x64c4__avx2u7",
    .mr = QS_Q8_GEMM_AVX2_MR,
    .nb = 4,
    .gemm_u8 = qs_q8_gemm_u8_4x64c4__avx2u7,
    .gemm_f32 = qs_q8_gemm_f32_4x64c4__avx2u7,
    QS_Q8_AVX2_OTHERS
};

static const qs_q8_kernels qs_q8_kernels_avx512vnni = {
    .isa = QS_ISA_AVX512VNNI,
    .gemm_name = "qs_q8_gemm_8x32c4__avx512vnni",
    .mr = QS_Q8_GEMM_AVX512VNNI_MR,
    .nb = 2,
    .gemm_u8 = qs_q8_gemm_u8_8x32c4__avx512vnni,
    .gemm_f32 = qs_q8_gemm_f32_8x32c4__avx512vnni,
    .dwconv_name = "qs_q8_dwconv__avx512vnni",
    .dwconv = qs_q8_dwconv__ref,
    .dwconv_packed = qs_q8_dwconv__avx512vnni,
    .dw_pack_bytes = qs_q8_dw_pack_bytes__avx512vnni,
    .dw_pack = qs_q8_dw_pack__avx512vnni,
    .quantize = qs_q8_quantize__avx512,
    .dequantize = qs_q8_dequantize__avx512,
    .minmax = qs_f32_minmax__avx512,
    .add = qs_q8_add__avx512,
    .avgpool = qs_q8_avgpool__avx512,
};

/* Written only by tests, before any kernel runs. */
static const qs_q8_kernels *qs_q8_kernels_avx512vnni_active = &qs_q8_kernels_avx512vnni;

void qs_q8_kernels_test_replace_avx512vnni(const qs_q8_kernels *table) {
    qs_q8_kernels_avx512vnni_active = table ? table : &qs_q8_kernels_avx512vnni;
}

const qs_q8_kernels *qs_q8_kernels_get(qs_isa isa) {
    switch (isa) {
    /* AVX-512 without VNNI has no u8 x s8 dot product: the AVX2 kernels are as good. */
    case QS_ISA_AVX2:
    case QS_ISA_AVX512: return &qs_q8_kernels_avx2;
    case QS_ISA_AVX512VNNI: return qs_q8_kernels_avx512vnni_active;
    case QS_ISA_REF: break;
    }
    return &qs_q8_kernels_ref;
}

const qs_q8_kernels *qs_q8_kernels_get_u7(qs_isa isa) {
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    return kern == &qs_q8_kernels_avx2 ? &qs_q8_kernels_avx2u7 : kern;
}

const qs_q8_kernels *qs_q8_kernels_packed(const qs_q8_packed_b *b) {
    return b->u7 ? qs_q8_kernels_get_u7(b->isa) : qs_q8_kernels_get(b->isa);
}
