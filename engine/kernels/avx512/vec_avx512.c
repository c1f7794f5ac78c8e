/* AVX-512 activations and depthwise convolution (16 channels per vector), from simd_act.inc.h. */
#include "kernels/avx512/simd512.h"

#include "kernels/ukernels.h"

#define QV __m512
#define QM __mmask16
#define QV_W 16
#define QV_LOAD(p) _mm512_loadu_ps(p)
#define QV_STORE(p, v) _mm512_storeu_ps(p, v)
#define QV_LOADM(p, m) _mm512_maskz_loadu_ps(m, p)
#define QV_STOREM(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define QV_SET1(x) _mm512_set1_ps(x)
#define QV_ADD(a, b) _mm512_add_ps(a, b)
#define QV_SUB(a, b) _mm512_sub_ps(a, b)
#define QV_MUL(a, b) _mm512_mul_ps(a, b)
#define QV_DIV(a, b) _mm512_div_ps(a, b)
#define QV_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define QV_MIN(a, b) _mm512_min_ps(a, b)
#define QV_MAX(a, b) _mm512_max_ps(a, b)
#define QV_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define QV_POW2N(n)                                                                          \
    _mm512_castsi512_ps(                                                                     \
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))

/* Lane i is on when i < n (n <= 16). */
static inline __mmask16 qv_mask_avx512(size_t n) {
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
}
#define QV_MASK(n) qv_mask_avx512(n)
/* An empty asm that claims to change v: v must then live in a zmm register (any of the 32). */
#ifdef QS_EMULATE_AVX512
#define QV_PIN(v) ((void)0)
#else
#define QV_PIN(v) __asm__("" : "+v"(v))
#endif

/* 32 registers: nine weights, eight accumulators and an input fit. */
#define QV_QUAD 8

#include "kernels/simd_act.inc.h"

void qs_f32_act__avx512(const qs_act *act, float *x, size_t n) {
    qv_act_apply(act, x, n);
}

void qs_f32_dwconv__avx512(const qs_dw_args *args, size_t oh, float *out_row,
                           const float *res_row) {
    qv_dwconv_row(args, oh, out_row, res_row);
}
