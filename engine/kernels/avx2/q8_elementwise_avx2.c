/* AVX2 int8 elementwise kernels (quantize, dequantize, min/max, add, global average pool); tails
 * go through the same scalar formulas as the reference, so results are bit-identical. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/q8_ukernels.h"

/* Eight int32 in [0, 255] of each of four vectors -> 32 bytes in order. */
static inline __m256i qs_pack4(__m256i r0, __m256i r1, __m256i r2, __m256i r3) {
    const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline __m256i qs_u8x8(const uint8_t *p) {
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
}

/* clamp(v, lo, hi) with NaN -> lo (vmaxps returns its second operand on NaN), round, + zero. */
static inline __m256i qs_round_clamp(__m256 v, __m256 lo, __m256 hi, __m256i zero) {
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(v), zero);
}

void qs_q8_quantize__avx2(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                          uint8_t *y) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 lo = _mm256_set1_ps((float)-zero), hi = _mm256_set1_ps((float)(qmax - zero));
    const __m256i z = _mm256_set1_epi32(zero);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i r0 = qs_round_clamp(_mm256_div_ps(_mm256_loadu_ps(x + i), s), lo, hi, z);
        const __m256i r1 = qs_round_clamp(_mm256_div_ps(_mm256_loadu_ps(x + i + 8), s), lo, hi, z);
        const __m256i r2 = qs_round_clamp(_mm256_div_ps(_mm256_loadu_ps(x + i + 16), s), lo, hi, z);
        const __m256i r3 = qs_round_clamp(_mm256_div_ps(_mm256_loadu_ps(x + i + 24), s), lo, hi, z);
        _mm256_storeu_si256((__m256i *)(void *)(y + i), qs_pack4(r0, r1, r2, r3));
    }
    qs_q8_quantize__ref(x + i, n - i, scale, zero, qmax, y + i);
}

void qs_q8_dequantize__avx2(const uint8_t *x, size_t n, float scale, int32_t zero, float *y) {
    const __m256 s = _mm256_set1_ps(scale);
    const __m256i z = _mm256_set1_epi32(zero);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_sub_epi32(qs_u8x8(x + i), z);
        const __m256i b = _mm256_sub_epi32(qs_u8x8(x + i + 8), z);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(a), s));
        _mm256_storeu_ps(y + i + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(b), s));
    }
    qs_q8_dequantize__ref(x + i, n - i, scale, zero, y + i);
}

void qs_f32_minmax__avx2(const float *x, size_t n, float *min, float *max) {
    __m256 lo0 = _mm256_set1_ps(INFINITY), lo1 = lo0;
    __m256 hi0 = _mm256_set1_ps(-INFINITY), hi1 = hi0;
    size_t i = 0;
    /* The data as first operand: vminps/vmaxps return the second one (the running value) on NaN. */
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        lo0 = _mm256_min_ps(a, lo0);
        lo1 = _mm256_min_ps(b, lo1);
        hi0 = _mm256_max_ps(a, hi0);
        hi1 = _mm256_max_ps(b, hi1);
    }
    float l[8], h[8];
    _mm256_storeu_ps(l, _mm256_min_ps(lo0, lo1));
    _mm256_storeu_ps(h, _mm256_max_ps(hi0, hi1));
    float tl, th;
    qs_f32_minmax__ref(x + i, n - i, &tl, &th);
    for (size_t j = 0; j < 8; j++) {
        tl = l[j] < tl ? l[j] : tl;
        th = h[j] > th ? h[j] : th;
    }
    *min = tl;
    *max = th;
}

void qs_q8_add__avx2(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb, float rb,
                     size_t n, int32_t zy, float lo, float hi, uint8_t *y) {
    const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
    const __m256i vzy = _mm256_set1_epi32(zy);
    const __m256 vra = _mm256_set1_ps(ra), vrb = _mm256_set1_ps(rb);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i r[4];
        for (size_t j = 0; j < 4; j++) {
            const __m256 va =
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qs_u8x8(a + i + 8 * j), vza)), vra);
            const __m256 vb =
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qs_u8x8(b + i + 8 * j), vzb)), vrb);
            r[j] = qs_round_clamp(_mm256_add_ps(va, vb), vlo, vhi, vzy);
        }
        _mm256_storeu_si256((__m256i *)(void *)(y + i), qs_pack4(r[0], r[1], r[2], r[3]));
    }
    qs_q8_add__ref(a + i, za, ra, b + i, zb, rb, n - i, zy, lo, hi, y + i);
}

void qs_q8_avgpool__avx2(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult, int32_t zy,
                         uint8_t *y) {
    const __m256 m = _mm256_set1_ps(mult);
    const __m256 lo = _mm256_set1_ps((float)-zy), hi = _mm256_set1_ps((float)(255 - zy));
    const __m256i z = _mm256_set1_epi32(zy);
    /* hw <= 2^23: the sums and hw * zx stay exact in int32. */
    const __m256i bias = _mm256_set1_epi32((int32_t)(0u - (uint32_t)hw * (uint32_t)zx));
    size_t ch = 0;
    for (; ch + 32 <= c; ch += 32) {
        __m256i s0 = bias, s1 = bias, s2 = bias, s3 = bias;
        for (size_t i = 0; i < hw; i++) {
            const uint8_t *row = x + i * c + ch;
            s0 = _mm256_add_epi32(s0, qs_u8x8(row));
            s1 = _mm256_add_epi32(s1, qs_u8x8(row + 8));
            s2 = _mm256_add_epi32(s2, qs_u8x8(row + 16));
            s3 = _mm256_add_epi32(s3, qs_u8x8(row + 24));
        }
        const __m256i r0 = qs_round_clamp(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), m), lo, hi, z);
        const __m256i r1 = qs_round_clamp(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), m), lo, hi, z);
        const __m256i r2 = qs_round_clamp(_mm256_mul_ps(_mm256_cvtepi32_ps(s2), m), lo, hi, z);
        const __m256i r3 = qs_round_clamp(_mm256_mul_ps(_mm256_cvtepi32_ps(s3), m), lo, hi, z);
        _mm256_storeu_si256((__m256i *)(void *)(y + ch), qs_pack4(r0, r1, r2, r3));
    }
    for (; ch < c; ch++) {
        uint32_t sum = 0;
        for (size_t i = 0; i < hw; i++)
            sum += x[i * c + ch];
        const int32_t acc = (int32_t)(sum - (uint32_t)hw * (uint32_t)zx);
        y[ch] = qs_q8_requant_one(acc, mult, (float)-zy, (float)(255 - zy), zy);
    }
}
