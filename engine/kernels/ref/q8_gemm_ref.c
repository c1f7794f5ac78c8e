/* Reference u8 x s8 GEMM micro-kernel over the shared c4 packing, with both epilogues. */
#include "kernels/q8_ukernels.h"

/* Wrapping int32 sum of a row of A times column j of the packed panels. */
static uint32_t qs_q8_dot_ref(size_t k, const uint8_t *a, const int8_t *w, size_t j) {
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const int8_t *panel = w + (j / QS_Q8_NR) * k_padded * QS_Q8_NR;
    const size_t col = j % QS_Q8_NR;
    uint32_t acc = 0;
    for (size_t kk = 0; kk < k; kk++) {
        const int8_t wv = panel[(kk / QS_Q8_KGROUP) * QS_Q8_NR * QS_Q8_KGROUP +
                                col * QS_Q8_KGROUP + kk % QS_Q8_KGROUP];
        acc += (uint32_t)((int32_t)a[kk] * (int32_t)wv);
    }
    return acc;
}

void qs_q8_gemm_u8_4x16c4__ref(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                               const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p) {
    uint8_t *out = c;
    for (size_t i = 0; i < mr; i++) {
        for (size_t j = 0; j < nc; j++) {
            const int32_t acc = qs_q8_fold(qs_q8_dot_ref(k, a + i * lda, w, j) +
                                               qs_q8_offset_term(p, i, j),
                                           p->bias ? p->bias[j] : 0, p->a_zero, p->colsum[j]);
            out[i * ldc + j] = qs_q8_requant_one(acc, p->scale[j], p->lo, p->hi, p->out_zero);
        }
    }
}

void qs_q8_gemm_f32_4x16c4__ref(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                const int8_t *w, void *c, size_t ldc,
                                const qs_q8_gemm_params *p) {
    float *out = c;
    for (size_t i = 0; i < mr; i++) {
        for (size_t j = 0; j < nc; j++) {
            const int32_t acc = qs_q8_fold(qs_q8_dot_ref(k, a + i * lda, w, j) +
                                               qs_q8_offset_term(p, i, j),
                                           p->bias ? p->bias[j] : 0, p->a_zero, p->colsum[j]);
            out[i * ldc + j] = qs_q8_dequant_acc(acc, p->scale[j], p->lo, p->hi);
        }
    }
}
