/* AVX2 + FMA GEMM micro-kernel: a 6x16 tile of C in 12 ymm accumulators over one packed panel. */
#include <immintrin.h>

#include "kernels/ukernels.h"

static inline __m256i qs_mask8(size_t n) {
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(bits + 8 - n));
}

/* At most 8 columns left in the panel (e.g. N = 24): skip the all-masked upper half. */
static void qs_gemm_6x8(size_t mr, size_t kc, const float *a0, const float *a1, const float *a2,
                        const float *a3, const float *a4, const float *a5, const float *w,
                        float *c0, float *c1, float *c2, float *c3, float *c4, float *c5,
                        __m256i m0, bool full, const float *bias, const float *res, size_t ldr,
                        bool first, bool last, const qs_clamp *clamp) {
#define QS_LD(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m0))
    __m256 v0, v1, v2, v3, v4, v5;
    if (first) {
        v0 = bias ? QS_LD(bias) : _mm256_setzero_ps();
        v1 = v2 = v3 = v4 = v5 = v0;
    } else {
        v0 = QS_LD(c0);
        v1 = QS_LD(c1);
        v2 = QS_LD(c2);
        v3 = QS_LD(c3);
        v4 = QS_LD(c4);
        v5 = QS_LD(c5);
    }
    for (size_t k = 0; k < kc; k++) {
        const __m256 w0 = _mm256_load_ps(w);
        w += 16;
        v0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + k), w0, v0);
        v1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + k), w0, v1);
        v2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + k), w0, v2);
        v3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + k), w0, v3);
        v4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + k), w0, v4);
        v5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + k), w0, v5);
    }
    if (last) {
        if (res) {
            const float *r1 = mr > 1 ? res + ldr : res;
            const float *r2 = mr > 2 ? r1 + ldr : r1;
            const float *r3 = mr > 3 ? r2 + ldr : r2;
            const float *r4 = mr > 4 ? r3 + ldr : r3;
            const float *r5 = mr > 5 ? r4 + ldr : r4;
            v0 = _mm256_add_ps(v0, QS_LD(res));
            v1 = _mm256_add_ps(v1, QS_LD(r1));
            v2 = _mm256_add_ps(v2, QS_LD(r2));
            v3 = _mm256_add_ps(v3, QS_LD(r3));
            v4 = _mm256_add_ps(v4, QS_LD(r4));
            v5 = _mm256_add_ps(v5, QS_LD(r5));
        }
        const __m256 lo = _mm256_set1_ps(clamp->min), hi = _mm256_set1_ps(clamp->max);
        v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
        v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        v2 = _mm256_min_ps(_mm256_max_ps(v2, lo), hi);
        v3 = _mm256_min_ps(_mm256_max_ps(v3, lo), hi);
        v4 = _mm256_min_ps(_mm256_max_ps(v4, lo), hi);
        v5 = _mm256_min_ps(_mm256_max_ps(v5, lo), hi);
    }
#undef QS_LD
#define QS_ST(p, v) (full ? _mm256_storeu_ps(p, v) : _mm256_maskstore_ps(p, m0, v))
    QS_ST(c5, v5);
    QS_ST(c4, v4);
    QS_ST(c3, v3);
    QS_ST(c2, v2);
    QS_ST(c1, v1);
    QS_ST(c0, v0);
#undef QS_ST
}

void qs_f32_gemm_6x16__avx2(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                            const float *w, float *c, size_t ldc, const float *bias,
                            const float *res, size_t ldr, bool first, bool last,
                            const qs_clamp *clamp) {
    /* Rows past mr alias the last real row: the same loads, results simply not stored. */
    const float *a0 = a;
    const float *a1 = mr > 1 ? a0 + lda : a0;
    const float *a2 = mr > 2 ? a1 + lda : a1;
    const float *a3 = mr > 3 ? a2 + lda : a2;
    const float *a4 = mr > 4 ? a3 + lda : a3;
    const float *a5 = mr > 5 ? a4 + lda : a4;
    float *c0 = c;
    float *c1 = mr > 1 ? c0 + ldc : c0;
    float *c2 = mr > 2 ? c1 + ldc : c1;
    float *c3 = mr > 3 ? c2 + ldc : c2;
    float *c4 = mr > 4 ? c3 + ldc : c3;
    float *c5 = mr > 5 ? c4 + ldc : c4;
    /* Masks for the two 8-column halves when the panel is partly outside N. */
    const __m256i m0 = qs_mask8(nc >= 8 ? 8 : nc);
    const __m256i m1 = qs_mask8(nc >= 16 ? 8 : (nc > 8 ? nc - 8 : 0));
    const bool full = nc == 16;

    if (nc <= 8) {
        qs_gemm_6x8(mr, kc, a0, a1, a2, a3, a4, a5, w, c0, c1, c2, c3, c4, c5, m0, nc == 8, bias,
                    res, ldr, first, last, clamp);
        return;
    }
    __m256 v00, v01, v10, v11, v20, v21, v30, v31, v40, v41, v50, v51;
    if (first) {
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        if (bias) {
            b0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, m0);
            b1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, m1);
        }
        v00 = v10 = v20 = v30 = v40 = v50 = b0;
        v01 = v11 = v21 = v31 = v41 = v51 = b1;
    } else {
#define QS_LD(p, o, m) (full ? _mm256_loadu_ps((p) + (o)) : _mm256_maskload_ps((p) + (o), m))
        v00 = QS_LD(c0, 0, m0); v01 = QS_LD(c0, 8, m1);
        v10 = QS_LD(c1, 0, m0); v11 = QS_LD(c1, 8, m1);
        v20 = QS_LD(c2, 0, m0); v21 = QS_LD(c2, 8, m1);
        v30 = QS_LD(c3, 0, m0); v31 = QS_LD(c3, 8, m1);
        v40 = QS_LD(c4, 0, m0); v41 = QS_LD(c4, 8, m1);
        v50 = QS_LD(c5, 0, m0); v51 = QS_LD(c5, 8, m1);
    }
    for (size_t k = 0; k < kc; k++) {
        const __m256 w0 = _mm256_load_ps(w);
        const __m256 w1 = _mm256_load_ps(w + 8);
        w += 16;
        __m256 x;
        x = _mm256_broadcast_ss(a0 + k);
        v00 = _mm256_fmadd_ps(x, w0, v00);
        v01 = _mm256_fmadd_ps(x, w1, v01);
        x = _mm256_broadcast_ss(a1 + k);
        v10 = _mm256_fmadd_ps(x, w0, v10);
        v11 = _mm256_fmadd_ps(x, w1, v11);
        x = _mm256_broadcast_ss(a2 + k);
        v20 = _mm256_fmadd_ps(x, w0, v20);
        v21 = _mm256_fmadd_ps(x, w1, v21);
        x = _mm256_broadcast_ss(a3 + k);
        v30 = _mm256_fmadd_ps(x, w0, v30);
        v31 = _mm256_fmadd_ps(x, w1, v31);
        x = _mm256_broadcast_ss(a4 + k);
        v40 = _mm256_fmadd_ps(x, w0, v40);
        v41 = _mm256_fmadd_ps(x, w1, v41);
        x = _mm256_broadcast_ss(a5 + k);
        v50 = _mm256_fmadd_ps(x, w0, v50);
        v51 = _mm256_fmadd_ps(x, w1, v51);
    }
    if (last) {
        if (res) {
            const float *r0 = res;
            const float *r1 = mr > 1 ? r0 + ldr : r0;
            const float *r2 = mr > 2 ? r1 + ldr : r1;
            const float *r3 = mr > 3 ? r2 + ldr : r2;
            const float *r4 = mr > 4 ? r3 + ldr : r3;
            const float *r5 = mr > 5 ? r4 + ldr : r4;
            v00 = _mm256_add_ps(v00, QS_LD(r0, 0, m0)); v01 = _mm256_add_ps(v01, QS_LD(r0, 8, m1));
            v10 = _mm256_add_ps(v10, QS_LD(r1, 0, m0)); v11 = _mm256_add_ps(v11, QS_LD(r1, 8, m1));
            v20 = _mm256_add_ps(v20, QS_LD(r2, 0, m0)); v21 = _mm256_add_ps(v21, QS_LD(r2, 8, m1));
            v30 = _mm256_add_ps(v30, QS_LD(r3, 0, m0)); v31 = _mm256_add_ps(v31, QS_LD(r3, 8, m1));
            v40 = _mm256_add_ps(v40, QS_LD(r4, 0, m0)); v41 = _mm256_add_ps(v41, QS_LD(r4, 8, m1));
            v50 = _mm256_add_ps(v50, QS_LD(r5, 0, m0)); v51 = _mm256_add_ps(v51, QS_LD(r5, 8, m1));
        }
#undef QS_LD
        const __m256 lo = _mm256_set1_ps(clamp->min), hi = _mm256_set1_ps(clamp->max);
#define QS_CL(v) v = _mm256_min_ps(_mm256_max_ps(v, lo), hi)
        QS_CL(v00); QS_CL(v01); QS_CL(v10); QS_CL(v11); QS_CL(v20); QS_CL(v21);
        QS_CL(v30); QS_CL(v31); QS_CL(v40); QS_CL(v41); QS_CL(v50); QS_CL(v51);
#undef QS_CL
    }
    /* Store from the last row down so aliased rows end up holding row 0..mr-1's values. */
#define QS_ST(p, v0, v1)                                                                   \
    do {                                                                                   \
        if (full) {                                                                        \
            _mm256_storeu_ps(p, v0);                                                       \
            _mm256_storeu_ps((p) + 8, v1);                                                 \
        } else {                                                                           \
            _mm256_maskstore_ps(p, m0, v0);                                                \
            _mm256_maskstore_ps((p) + 8, m1, v1);                                          \
        }                                                                                  \
    } while (0)
    QS_ST(c5, v50, v51);
    QS_ST(c4, v40, v41);
    QS_ST(c3, v30, v31);
    QS_ST(c2, v20, v21);
    QS_ST(c1, v10, v11);
    QS_ST(c0, v00, v01);
#undef QS_ST
}
