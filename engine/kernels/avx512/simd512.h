/* Intrinsics for the AVX-512 kernels; with QS_EMULATE_AVX512 the same sources build against SIMDe
 * under other names, so that tests can check their logic on CPUs without AVX-512. */
#ifndef QS_KERNELS_AVX512_SIMD512_H
#define QS_KERNELS_AVX512_SIMD512_H

#ifdef QS_EMULATE_AVX512
#include <math.h>
#include <stdint.h>
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define qs_f32_gemm_8x32__avx512 qs_f32_gemm_8x32__avx512emu
#define qs_f32_dwconv__avx512 qs_f32_dwconv__avx512emu
#define qs_f32_act__avx512 qs_f32_act__avx512emu

/* What the SIMDe release in Debian lacks. Masked lanes are neither read nor written, as on
 * hardware, so the tests also catch out-of-bounds accesses of masked tails (under ASan). */
#define __mmask16 simde__mmask16
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
static inline simde__m512 qs_emu_maskz_loadu_ps(simde__mmask16 k, const float *p) {
    float v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (k >> i) & 1 ? p[i] : 0.0f;
    return simde_mm512_loadu_ps(v);
}
static inline void qs_emu_mask_storeu_ps(float *p, simde__mmask16 k, simde__m512 x) {
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
    for (int i = 0; i < 16; i++)
        r[i] = (int32_t)lrintf(v[i]);
    return simde_mm512_loadu_si512(r);
}
#define _mm512_maskz_loadu_ps(k, p) qs_emu_maskz_loadu_ps(k, p)
#define _mm512_mask_storeu_ps(p, k, x) qs_emu_mask_storeu_ps(p, k, x)
#define _mm512_cvtps_epi32(x) qs_emu_cvtps_epi32(x)
#else
#include <immintrin.h>
#endif

#endif
