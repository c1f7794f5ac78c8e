/* Reference GEMM micro-kernel (4x8 tile over one packed panel) in portable C. */
#include <math.h>

#include "kernels/ukernels.h"

void qs_f32_gemm__ref(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                      const float *w, float *c, size_t ldc, const float *bias, const float *res,
                      size_t ldr, bool first, bool last, const qs_clamp *clamp) {
    enum { MR = QS_F32_GEMM_REF_MR, NR = QS_F32_GEMM_REF_NR };
    float acc[MR][NR];
    for (size_t i = 0; i < mr; i++)
        for (size_t j = 0; j < NR; j++)
            acc[i][j] = first ? (bias && j < nc ? bias[j] : 0.0f) : (j < nc ? c[i * ldc + j] : 0.0f);
    for (size_t k = 0; k < kc; k++) {
        const float *wk = w + k * NR;
        for (size_t i = 0; i < mr; i++) {
            const float av = a[i * lda + k];
            for (size_t j = 0; j < NR; j++)
                acc[i][j] += av * wk[j];
        }
    }
    for (size_t i = 0; i < mr; i++) {
        for (size_t j = 0; j < nc; j++) {
            float v = acc[i][j];
            if (last) {
                if (res)
                    v += res[i * ldr + j];
                v = fminf(fmaxf(v, clamp->min), clamp->max);
            }
            c[i * ldc + j] = v;
        }
    }
}
