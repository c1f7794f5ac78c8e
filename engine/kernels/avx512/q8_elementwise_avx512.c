/* AVX-512 int8 elementwise kernels (quantize, dequantize, min/max, add, global average pool),
 * masked tails; the same operations in the same order as the reference, so bit-identical. */
#include <math.h>

#include "kernels/avx512/q8_simd512.h"

#include "kernels/q8_ukernels.h"

/* clamp(v, lo, hi) with NaN -> lo (vmaxps returns its second operand on NaN), round, + zero,
 * then the 16 values (within [0, 255]) as bytes. */
static inline __m128i qs_round_clamp_u8(__m512 v, __m512 lo, __m512 hi, __m512i zero) {
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    return _mm512_cvtusepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(v), zero));
}

static inline __m512i qs_u8x16(const uint8_t *p, __mmask16 k) {
    return _mm512_cvtepu8_epi32(_mm512_castsi512_si128(_mm512_maskz_loadu_epi8(k, p)));
}

void qs_q8_quantize__avx512(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                            uint8_t *y) {
    const __m512 s = _mm512_set1_ps(scale);
    const __m512 lo = _mm512_set1_ps((float)-zero), hi = _mm512_set1_ps((float)(qmax - zero));
    const __m512i z = _mm512_set1_epi32(zero);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = qs_mask16(n - i);
        const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(k, x + i), s);
        _mm_mask_storeu_epi8(y + i, k, qs_round_clamp_u8(v, lo, hi, z));
    }
}

void qs_q8_dequantize__avx512(const uint8_t *x, size_t n, float scale, int32_t zero, float *y) {
    const __m512 s = _mm512_set1_ps(scale);
    const __m512i z = _mm512_set1_epi32(zero);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = qs_mask16(n - i);
        const __m512i v = _mm512_sub_epi32(qs_u8x16(x + i, k), z);
        _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
    }
}

void qs_f32_minmax__avx512(const float *x, size_t n, float *min, float *max) {
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY);
    /* The data as first operand: vminps/vmaxps return the second one (the running value) on NaN.
     * Masked-off lanes load as 0, so the tail is loaded with the running values instead. */
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 a = _mm512_loadu_ps(x + i);
        lo = _mm512_min_ps(a, lo);
        hi = _mm512_max_ps(a, hi);
    }
    float l[16], h[16];
    _mm512_storeu_ps(l, lo);
    _mm512_storeu_ps(h, hi);
    float tl, th;
    qs_f32_minmax__ref(x + i, n - i, &tl, &th);
    for (size_t j = 0; j < 16; j++) {
        tl = l[j] < tl ? l[j] : tl;
        th = h[j] > th ? h[j] : th;
    }
    *min = tl;
    *max = th;
}

void qs_q8_add__avx512(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb,
                       float rb, size_t n, int32_t zy, float lo, float hi, uint8_t *y) {
    const __m512i vza = _mm512_set1_epi32(za), vzb = _mm512_set1_epi32(zb);
    const __m512i vzy = _mm512_set1_epi32(zy);
    const __m512 vra = _mm512_set1_ps(ra), vrb = _mm512_set1_ps(rb);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 k = qs_mask16(n - i);
        const __m512 va =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(qs_u8x16(a + i, k), vza)), vra);
        const __m512 vb =
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(qs_u8x16(b + i, k), vzb)), vrb);
        _mm_mask_storeu_epi8(y + i, k, qs_round_clamp_u8(_mm512_add_ps(va, vb), vlo, vhi, vzy));
    }
}

void qs_q8_avgpool__avx512(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult,
                           int32_t zy, uint8_t *y) {
    const __m512 m = _mm512_set1_ps(mult);
    const __m512 lo = _mm512_set1_ps((float)-zy), hi = _mm512_set1_ps((float)(255 - zy));
    const __m512i z = _mm512_set1_epi32(zy);
    /* hw <= 2^23: the sums and hw * zx stay exact in int32. */
    const __m512i bias = _mm512_set1_epi32((int32_t)(0u - (uint32_t)hw * (uint32_t)zx));
    for (size_t ch = 0; ch < c; ch += 64) {
        const size_t nc = c - ch < 64 ? c - ch : 64;
        const __mmask16 k0 = qs_mask16(nc), k1 = qs_mask16(nc > 16 ? nc - 16 : 0);
        const __mmask16 k2 = qs_mask16(nc > 32 ? nc - 32 : 0);
        const __mmask16 k3 = qs_mask16(nc > 48 ? nc - 48 : 0);
        __m512i s0 = bias, s1 = bias, s2 = bias, s3 = bias;
        for (size_t i = 0; i < hw; i++) {
            const uint8_t *row = x + i * c + ch;
            s0 = _mm512_add_epi32(s0, qs_u8x16(row, k0));
            s1 = _mm512_add_epi32(s1, qs_u8x16(row + 16, k1));
            s2 = _mm512_add_epi32(s2, qs_u8x16(row + 32, k2));
            s3 = _mm512_add_epi32(s3, qs_u8x16(row + 48, k3));
        }
        _mm_mask_storeu_epi8(y + ch, k0,
                             qs_round_clamp_u8(_mm512_mul_ps(_mm512_cvtepi32_ps(s0), m), lo, hi, z));
        _mm_mask_storeu_epi8(y + ch + 16, k1,
                             qs_round_clamp_u8(_mm512_mul_ps(_mm512_cvtepi32_ps(s1), m), lo, hi, z));
        _mm_mask_storeu_epi8(y + ch + 32, k2,
                             qs_round_clamp_u8(_mm512_mul_ps(_mm512_cvtepi32_ps(s2), m), lo, hi, z));
        _mm_mask_storeu_epi8(y + ch + 48, k3,
                             qs_round_clamp_u8(_mm512_mul_ps(_mm512_cvtepi32_ps(s3), m), lo, hi, z));
    }
}
