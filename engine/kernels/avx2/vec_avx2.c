/* AVX2 + FMA activations and depthwise convolution (8 channels per vector), from simd_act.inc.h. */
#include <immintrin.h>

#include "kernels/ukernels.h"

#define QV __m256
#define QM __m256i
#define QV_W 8
#define QV_LOAD(p) _mm256_loadu_ps(p)
#define QV_STORE(p, v) _mm256_storeu_ps(p, v)
#define QV_LOADM(p, m) _mm256_maskload_ps(p, m)
#define QV_STOREM(p, m, v) _mm256_maskstore_ps(p, m, v)
#define QV_SET1(x) _mm256_set1_ps(x)
#define QV_ADD(a, b) _mm256_add_ps(a, b)
#define QV_SUB(a, b) _mm256_sub_ps(a, b)
#define QV_MUL(a, b) _mm256_mul_ps(a, b)
#define QV_DIV(a, b) _mm256_div_ps(a, b)
#define QV_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define QV_MIN(a, b) _mm256_min_ps(a, b)
#define QV_MAX(a, b) _mm256_max_ps(a, b)
#define QV_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define QV_POW2N(n)                                                                          \
    _mm256_castsi256_ps(                                                                     \
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))

/* Lane i is on when i < n (n <= 8). */
static inline __m256i qv_mask_avx2(size_t n) {
    static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(bits + 8 - n));
}
#define QV_MASK(n) qv_mask_avx2(n)
/* An empty asm that claims to change v: v must then live in a ymm register. */
#define QV_PIN(v) __asm__("" : "+x"(v))

#include "kernels/simd_act.inc.h"

void qs_f32_act__avx2(const qs_act *act, float *x, size_t n) {
    qv_act_apply(act, x, n);
}

void qs_f32_dwconv__avx2(const qs_dw_args *args, size_t oh, float *out_row, const float *res_row) {
    qv_dwconv_row(args, oh, out_row, res_row);
}
