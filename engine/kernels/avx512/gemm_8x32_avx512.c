/* AVX-512 GEMM micro-kernel: an 8x32 tile of C in 16 zmm accumulators over one packed panel
 * (8x16 when at most 16 columns remain, so narrow layers do not pay for a masked half). */
#include "kernels/avx512/simd512.h"

#include "kernels/ukernels.h"

#define QS_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

static inline __mmask16 qs_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}

void qs_f32_gemm_8x32__avx512(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                              const float *w, float *c, size_t ldc, const float *bias,
                              const float *res, size_t ldr, bool first, bool last,
                              const qs_clamp *clamp) {
    /* Rows past mr alias the previous row: same loads and values, stored over the real row. */
    const float *ap[8];
    float *cp[8];
    const float *rp[8];
    ap[0] = a;
    cp[0] = c;
    rp[0] = res;
    for (size_t i = 1; i < 8; i++) {
        ap[i] = mr > i ? ap[i - 1] + lda : ap[i - 1];
        cp[i] = mr > i ? cp[i - 1] + ldc : cp[i - 1];
        rp[i] = res ? (mr > i ? rp[i - 1] + ldr : rp[i - 1]) : NULL;
    }
    const __mmask16 k0 = qs_mask16(nc), k1 = qs_mask16(nc > 16 ? nc - 16 : 0);
    const __m512 lo = _mm512_set1_ps(clamp->min), hi = _mm512_set1_ps(clamp->max);
#define QS_A(i) const float *a##i = ap[i];
    QS_ROWS(QS_A)
#undef QS_A
    if (nc > 16) {
#define QS_DECL(i) __m512 v##i##0, v##i##1;
        QS_ROWS(QS_DECL)
#undef QS_DECL
        if (first) {
            __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
            if (bias) {
                b0 = _mm512_maskz_loadu_ps(k0, bias);
                b1 = _mm512_maskz_loadu_ps(k1, bias + 16);
            }
#define QS_INIT(i) v##i##0 = b0; v##i##1 = b1;
            QS_ROWS(QS_INIT)
#undef QS_INIT
        } else {
#define QS_INIT(i)                                                                         \
    v##i##0 = _mm512_maskz_loadu_ps(k0, cp[i]);                                            \
    v##i##1 = _mm512_maskz_loadu_ps(k1, cp[i] + 16);
            QS_ROWS(QS_INIT)
#undef QS_INIT
        }
        for (size_t k = 0; k < kc; k++) {
            const __m512 w0 = _mm512_load_ps(w);
            const __m512 w1 = _mm512_load_ps(w + 16);
            w += 32;
#define QS_FMA(i)                                                                          \
    {                                                                                      \
        const __m512 x = _mm512_set1_ps(a##i[k]);                                          \
        v##i##0 = _mm512_fmadd_ps(x, w0, v##i##0);                                         \
        v##i##1 = _mm512_fmadd_ps(x, w1, v##i##1);                                         \
    }
            QS_ROWS(QS_FMA)
#undef QS_FMA
        }
        if (last) {
            if (res) {
#define QS_RES(i)                                                                          \
    v##i##0 = _mm512_add_ps(v##i##0, _mm512_maskz_loadu_ps(k0, rp[i]));                    \
    v##i##1 = _mm512_add_ps(v##i##1, _mm512_maskz_loadu_ps(k1, rp[i] + 16));
                QS_ROWS(QS_RES)
#undef QS_RES
            }
#define QS_CL(i)                                                                           \
    v##i##0 = _mm512_min_ps(_mm512_max_ps(v##i##0, lo), hi);                               \
    v##i##1 = _mm512_min_ps(_mm512_max_ps(v##i##1, lo), hi);
            QS_ROWS(QS_CL)
#undef QS_CL
        }
        /* Store from the last row down so an aliased row is overwritten by its real one. */
#define QS_ST(i)                                                                           \
    _mm512_mask_storeu_ps(cp[i], k0, v##i##0);                                             \
    _mm512_mask_storeu_ps(cp[i] + 16, k1, v##i##1);
        QS_ST(7) QS_ST(6) QS_ST(5) QS_ST(4) QS_ST(3) QS_ST(2) QS_ST(1) QS_ST(0)
#undef QS_ST
        return;
    }
#define QS_DECL(i) __m512 v##i;
    QS_ROWS(QS_DECL)
#undef QS_DECL
    if (first) {
        const __m512 b0 = bias ? _mm512_maskz_loadu_ps(k0, bias) : _mm512_setzero_ps();
#define QS_INIT(i) v##i = b0;
        QS_ROWS(QS_INIT)
#undef QS_INIT
    } else {
#define QS_INIT(i) v##i = _mm512_maskz_loadu_ps(k0, cp[i]);
        QS_ROWS(QS_INIT)
#undef QS_INIT
    }
    for (size_t k = 0; k < kc; k++) {
        const __m512 w0 = _mm512_load_ps(w);
        w += 32;
#define QS_FMA(i) v##i = _mm512_fmadd_ps(_mm512_set1_ps(a##i[k]), w0, v##i);
        QS_ROWS(QS_FMA)
#undef QS_FMA
    }
    if (last) {
        if (res) {
#define QS_RES(i) v##i = _mm512_add_ps(v##i, _mm512_maskz_loadu_ps(k0, rp[i]));
            QS_ROWS(QS_RES)
#undef QS_RES
        }
#define QS_CL(i) v##i = _mm512_min_ps(_mm512_max_ps(v##i, lo), hi);
        QS_ROWS(QS_CL)
#undef QS_CL
    }
#define QS_ST(i) _mm512_mask_storeu_ps(cp[i], k0, v##i);
    QS_ST(7) QS_ST(6) QS_ST(5) QS_ST(4) QS_ST(3) QS_ST(2) QS_ST(1) QS_ST(0)
#undef QS_ST
}
