/* Intrinsics for the AVX-512 kernels; with QS_EMULATE_AVX512 the same sources build against SIMDe
 * under other names, so that tests can check their logic on CPUs without AVX-512. */
#ifndef QS_KERNELS_AVX512_SIMD512_H
#define QS_KERNELS_AVX512_SIMD512_H

#ifdef QS_EMULATE_AVX512
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#define qs_f32_gemm_8x32__avx512 qs_f32_gemm_8x32__avx512emu
#define qs_f32_dwconv__avx512 qs_f32_dwconv__avx512emu
#define qs_f32_act__avx512 qs_f32_act__avx512emu
#else
#include <immintrin.h>
#endif

#endif
