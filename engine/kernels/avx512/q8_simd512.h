/* Intrinsics for the int8 AVX-512 kernels; with QS_EMULATE_AVX512 the same sources build against
 * SIMDe under other names (suffix emu), so that tests check their logic on CPUs without AVX-512.
 * The shims below fill what the SIMDe release in Debian lacks; masked lanes are neither read nor
 * written, as on hardware, so the tests also catch out-of-bounds tails (under ASan). */
#ifndef QS_KERNELS_AVX512_Q8_SIMD512_H
#define QS_KERNELS_AVX512_Q8_SIMD512_H

#include <stddef.h>
#include <stdint.h>

#ifdef QS_EMULATE_AVX512
#include <math.h>
#include <string.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>

#define qs_q8_gemm_u8_8x32c4__avx512vnni qs_q8_gemm_u8_8x32c4__avx512vnniemu
#define qs_q8_gemm_f32_8x32c4__avx512vnni qs_q8_gemm_f32_8x32c4__avx512vnniemu
#define qs_q8_dwconv__avx512vnni qs_q8_dwconv__avx512vnniemu
#define qs_q8_dw_pack_bytes__avx512vnni qs_q8_dw_pack_bytes__avx512vnniemu
#define qs_q8_dw_pack__avx512vnni qs_q8_dw_pack__avx512vnniemu
#define qs_q8_quantize__avx512 qs_q8_quantize__avx512emu
#define qs_q8_dequantize__avx512 qs_q8_dequantize__avx512emu
#define qs_f32_minmax__avx512 qs_f32_minmax__avx512emu
#define qs_q8_add__avx512 qs_q8_add__avx512emu
#define qs_q8_avgpool__avx512 qs_q8_avgpool__avx512emu

typedef uint16_t qs_emu_mask16;
typedef uint64_t qs_emu_mask64;
#define __mmask16 qs_emu_mask16
#define __mmask64 qs_emu_mask64

static inline simde__m512i qs_emu_maskz_loadu_epi8(qs_emu_mask64 k, const void *p) {
    uint8_t v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (k >> i) & 1 ? ((const uint8_t *)p)[i] : 0;
    return simde_mm512_loadu_si512(v);
}
static inline void qs_emu_mask_storeu_epi8(void *p, qs_emu_mask64 k, simde__m512i x) {
    uint8_t v[64];
    simde_mm512_storeu_si512(v, x);
    for (int i = 0; i < 64; i++)
        if ((k >> i) & 1)
            ((uint8_t *)p)[i] = v[i];
}
static inline void qs_emu_mask_storeu_epi8_128(void *p, qs_emu_mask16 k, simde__m128i x) {
    uint8_t v[16];
    simde_mm_storeu_si128(v, x);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1)
            ((uint8_t *)p)[i] = v[i];
}
static inline simde__m512i qs_emu_maskz_loadu_epi32(qs_emu_mask16 k, const void *p) {
    int32_t v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (k >> i) & 1 ? ((const int32_t *)p)[i] : 0;
    return simde_mm512_loadu_si512(v);
}
static inline simde__m512 qs_emu_maskz_loadu_ps(qs_emu_mask16 k, const float *p) {
    float v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (k >> i) & 1 ? p[i] : 0.0f;
    return simde_mm512_loadu_ps(v);
}
static inline void qs_emu_mask_storeu_ps(float *p, qs_emu_mask16 k, simde__m512 x) {
    float v[16];
    simde_mm512_storeu_ps(v, x);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1)
            p[i] = v[i];
}
static inline simde__m512i qs_emu_cvtps_epi32(simde__m512 x) {
    float v[16];
    int32_t r[16];
    simde_mm512_storeu_ps(v, x);
    for (int i = 0; i < 16; i++) {
        /* Out of range and NaN give the "integer indefinite" value, as vcvtps2dq does. */
        r[i] = v[i] >= -2147483648.0f && v[i] < 2147483648.0f ? (int32_t)nearbyintf(v[i])
                                                              : INT32_MIN;
    }
    return simde_mm512_loadu_si512(r);
}
static inline simde__m512 qs_emu_cvtepi32_ps(simde__m512i x) {
    int32_t v[16];
    float r[16];
    simde_mm512_storeu_si512(v, x);
    for (int i = 0; i < 16; i++)
        r[i] = (float)v[i];
    return simde_mm512_loadu_ps(r);
}
static inline simde__m512i qs_emu_cvtepu8_epi32(simde__m128i x) {
    uint8_t v[16];
    int32_t r[16];
    simde_mm_storeu_si128(v, x);
    for (int i = 0; i < 16; i++)
        r[i] = v[i];
    return simde_mm512_loadu_si512(r);
}
static inline simde__m128i qs_emu_cvtusepi32_epi8(simde__m512i x) {
    uint32_t v[16];
    uint8_t r[16];
    simde_mm512_storeu_si512(v, x);
    for (int i = 0; i < 16; i++)
        r[i] = (uint8_t)(v[i] > 255u ? 255u : v[i]);
    return simde_mm_loadu_si128(r);
}
#define _mm512_maskz_loadu_epi8(k, p) qs_emu_maskz_loadu_epi8(k, p)
#define _mm512_mask_storeu_epi8(p, k, x) qs_emu_mask_storeu_epi8(p, k, x)
#define _mm_mask_storeu_epi8(p, k, x) qs_emu_mask_storeu_epi8_128(p, k, x)
#define _mm512_maskz_loadu_epi32(k, p) qs_emu_maskz_loadu_epi32(k, p)
#define _mm512_maskz_loadu_ps(k, p) qs_emu_maskz_loadu_ps(k, p)
#define _mm512_mask_storeu_ps(p, k, x) qs_emu_mask_storeu_ps(p, k, x)
#define _mm512_cvtps_epi32(x) qs_emu_cvtps_epi32(x)
#define _mm512_cvtepi32_ps(x) qs_emu_cvtepi32_ps(x)
#define _mm512_cvtepu8_epi32(x) qs_emu_cvtepu8_epi32(x)
#define _mm512_cvtusepi32_epi8(x) qs_emu_cvtusepi32_epi8(x)
#else
#include <immintrin.h>
#endif

/* Mask of the first n (<= 16 / 64) lanes. */
static inline __mmask16 qs_mask16(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}
static inline __mmask64 qs_mask64(size_t n) {
    return n >= 64 ? (__mmask64)~(uint64_t)0 : (__mmask64)(((uint64_t)1 << n) - 1u);
}

#endif
