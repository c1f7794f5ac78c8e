/* AVX2 u8 x s8 GEMM micro-kernel 2x16c4: exact products through vpmaddwd on zero-/sign-extended
 * int16 (vpmaddubsw would saturate: 255 * 128 * 2 > 32767), fused requant/dequant epilogue. */
#include <immintrin.h>
#include <string.h>

#include "kernels/q8_ukernels.h"

#define QS_MR 2

/* Four u8 of A as int16 (a0, a1, a2, a3) in every 64-bit lane. */
static inline __m256i qs_a4(const uint8_t *p, __m256i spread) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_shuffle_epi8(_mm256_set1_epi32(v), spread);
}

static inline __m256i qs_a4_tail(const uint8_t *p, size_t n, __m256i spread) {
    int32_t v = 0;
    memcpy(&v, p, n);
    return _mm256_shuffle_epi8(_mm256_set1_epi32(v), spread);
}

/* Columns 4j..4j+3 of a c4 k-group row as int16 quads. */
static inline __m256i qs_w4(const int8_t *w, int j) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 16 * j)));
}

/* Per-column int32 values of the epilogue (16 of them, fewer at the right edge). */
static inline void qs_load16_i32(const int32_t *p, size_t nc, __m256i *lo, __m256i *hi) {
    if (nc == 16) {
        *lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
        *hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 8));
        return;
    }
    int32_t t[16] = {0};
    memcpy(t, p, nc * sizeof *p);
    *lo = _mm256_loadu_si256((const __m256i *)(const void *)t);
    *hi = _mm256_loadu_si256((const __m256i *)(const void *)(t + 8));
}

static inline void qs_load16_f32(const float *p, size_t nc, __m256 *lo, __m256 *hi) {
    if (nc == 16) {
        *lo = _mm256_loadu_ps(p);
        *hi = _mm256_loadu_ps(p + 8);
        return;
    }
    float t[16] = {0};
    memcpy(t, p, nc * sizeof *p);
    *lo = _mm256_loadu_ps(t);
    *hi = _mm256_loadu_ps(t + 8);
}

/* Sum the two halves of each column: accumulators hold columns {4j..4j+3} x {k pair 0, 1}. */
static inline __m256i qs_reduce8(__m256i x, __m256i y) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(x, y), 0xd8);
}

static inline __attribute__((always_inline)) void
qs_q8_gemm_2x16(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda, const int8_t *w,
                void *c, size_t ldc, const qs_q8_gemm_params *p, bool f32_out) {
    const uint8_t *a0 = a;
    const uint8_t *a1 = mr > 1 ? a0 + lda : a0;
    const __m256i spread = _mm256_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1,
                                            0, -1, 1, -1, 2, -1, 3, -1, 0, -1, 1, -1, 2, -1, 3, -1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00;
    __m256i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
    const size_t groups = k / QS_Q8_KGROUP, rest = k % QS_Q8_KGROUP;
    for (size_t g = 0; g < groups; g++) {
        const __m256i w0 = qs_w4(w, 0), w1 = qs_w4(w, 1), w2 = qs_w4(w, 2), w3 = qs_w4(w, 3);
        const __m256i x0 = qs_a4(a0 + 4 * g, spread);
        const __m256i x1 = qs_a4(a1 + 4 * g, spread);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, w0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x0, w1));
        c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(x0, w2));
        c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(x0, w3));
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x1, w0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, w1));
        c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(x1, w2));
        c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(x1, w3));
        w += QS_Q8_NR * QS_Q8_KGROUP;
    }
    if (rest) {
        const __m256i w0 = qs_w4(w, 0), w1 = qs_w4(w, 1), w2 = qs_w4(w, 2), w3 = qs_w4(w, 3);
        const __m256i x0 = qs_a4_tail(a0 + 4 * groups, rest, spread);
        const __m256i x1 = qs_a4_tail(a1 + 4 * groups, rest, spread);
        c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, w0));
        c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x0, w1));
        c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(x0, w2));
        c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(x0, w3));
        c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x1, w0));
        c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, w1));
        c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(x1, w2));
        c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(x1, w3));
    }
    /* acc + bias - a_zero * colsum, in int32 with wrap-around like the reference. */
    __m256i b_lo = _mm256_setzero_si256(), b_hi = b_lo, s_lo, s_hi;
    if (p->bias)
        qs_load16_i32(p->bias, nc, &b_lo, &b_hi);
    qs_load16_i32(p->colsum, nc, &s_lo, &s_hi);
    const __m256i az = _mm256_set1_epi32(p->a_zero);
    const __m256i off_lo = _mm256_sub_epi32(b_lo, _mm256_mullo_epi32(az, s_lo));
    const __m256i off_hi = _mm256_sub_epi32(b_hi, _mm256_mullo_epi32(az, s_hi));
    __m256 sc_lo, sc_hi;
    qs_load16_f32(p->scale, nc, &sc_lo, &sc_hi);
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    __m256i r[QS_MR][2];
    r[0][0] = _mm256_add_epi32(qs_reduce8(c00, c01), off_lo);
    r[0][1] = _mm256_add_epi32(qs_reduce8(c02, c03), off_hi);
    r[1][0] = _mm256_add_epi32(qs_reduce8(c10, c11), off_lo);
    r[1][1] = _mm256_add_epi32(qs_reduce8(c12, c13), off_hi);
    const size_t rows = mr < QS_MR ? mr : QS_MR;
    for (size_t i = 0; i < rows; i++) {
        __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(r[i][0]), sc_lo);
        __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(r[i][1]), sc_hi);
        v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
        v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        if (f32_out) {
            float *out = (float *)c + i * ldc;
            if (nc == 16) {
                _mm256_storeu_ps(out, v0);
                _mm256_storeu_ps(out + 8, v1);
            } else {
                float t[16];
                _mm256_storeu_ps(t, v0);
                _mm256_storeu_ps(t + 8, v1);
                memcpy(out, t, nc * sizeof(float));
            }
        } else {
            const __m256i z = _mm256_set1_epi32(p->out_zero);
            const __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(v0), z);
            const __m256i q1 = _mm256_add_epi32(_mm256_cvtps_epi32(v1), z);
            const __m128i h0 = _mm_packs_epi32(_mm256_castsi256_si128(q0),
                                               _mm256_extracti128_si256(q0, 1));
            const __m128i h1 = _mm_packs_epi32(_mm256_castsi256_si128(q1),
                                               _mm256_extracti128_si256(q1, 1));
            const __m128i b = _mm_packus_epi16(h0, h1);
            uint8_t *out = (uint8_t *)c + i * ldc;
            if (nc == 16) {
                _mm_storeu_si128((__m128i *)(void *)out, b);
            } else {
                uint8_t t[16];
                _mm_storeu_si128((__m128i *)(void *)t, b);
                memcpy(out, t, nc);
            }
        }
    }
}

void qs_q8_gemm_u8_2x16c4__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p) {
    qs_q8_gemm_2x16(mr, nc, k, a, lda, w, c, ldc, p, false);
}

void qs_q8_gemm_f32_2x16c4__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                 const int8_t *w, void *c, size_t ldc,
                                 const qs_q8_gemm_params *p) {
    qs_q8_gemm_2x16(mr, nc, k, a, lda, w, c, ldc, p, true);
}
