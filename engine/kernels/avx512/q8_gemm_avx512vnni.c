/* AVX-512 VNNI u8 x s8 GEMM micro-kernel 8x32c4: vpdpbusd of a broadcast k-group of A against a
 * 16-column panel row, up to 8 x 2 zmm accumulators; every smaller tile is its own unrolled
 * instance so that row and column tails cost what they compute. Fused requant/dequant epilogue. */
#include <string.h>

#include "kernels/avx512/q8_simd512.h"

#include "kernels/q8_ukernels.h"

static inline __m512i qs_bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

static inline __m512i qs_bcast_tail(const uint8_t *p, size_t n) {
    int32_t v = 0;
    memcpy(&v, p, n);
    return _mm512_set1_epi32(v);
}

/* MR rows x NB panels; MR and NB are constants in every instance. */
static inline __attribute__((always_inline)) void
qs_tile(const size_t MR, const size_t NB, size_t nc, size_t k, const uint8_t *a, size_t lda,
        const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p, bool f32_out) {
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const size_t panel = k_padded * QS_Q8_NR;
    const size_t groups = k / QS_Q8_KGROUP, rest = k % QS_Q8_KGROUP;
    __m512i acc[8][2];
#pragma GCC unroll 8
    for (size_t i = 0; i < MR; i++)
#pragma GCC unroll 2
        for (size_t j = 0; j < NB; j++)
            acc[i][j] = _mm512_setzero_si512();
    for (size_t g = 0; g < groups; g++) {
        __m512i wv[2];
#pragma GCC unroll 2
        for (size_t j = 0; j < NB; j++)
            wv[j] = _mm512_loadu_si512((const void *)(w + j * panel + g * 64));
#pragma GCC unroll 8
        for (size_t i = 0; i < MR; i++) {
            const __m512i x = qs_bcast4(a + i * lda + 4 * g);
#pragma GCC unroll 2
            for (size_t j = 0; j < NB; j++)
                acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, wv[j]);
        }
    }
    if (rest) {
        __m512i wv[2];
#pragma GCC unroll 2
        for (size_t j = 0; j < NB; j++)
            wv[j] = _mm512_loadu_si512((const void *)(w + j * panel + groups * 64));
#pragma GCC unroll 8
        for (size_t i = 0; i < MR; i++) {
            const __m512i x = qs_bcast_tail(a + i * lda + 4 * groups, rest);
#pragma GCC unroll 2
            for (size_t j = 0; j < NB; j++)
                acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x, wv[j]);
        }
    }
    /* acc + bias - a_zero * colsum (int32, wrapping), then scale and clamp. */
    __mmask16 km[2];
    __m512i off[2], dv[2];
    __m512 sc[2];
    const __m512i az = _mm512_set1_epi32(p->a_zero);
#pragma GCC unroll 2
    for (size_t j = 0; j < NB; j++) {
        km[j] = qs_mask16(nc - 16 * j);
        const __m512i b = p->bias ? _mm512_maskz_loadu_epi32(km[j], p->bias + 16 * j)
                                  : _mm512_setzero_si512();
        off[j] = _mm512_sub_epi32(
            b, _mm512_mullo_epi32(az, _mm512_maskz_loadu_epi32(km[j], p->colsum + 16 * j)));
        sc[j] = _mm512_maskz_loadu_ps(km[j], p->scale + 16 * j);
        /* Weights with offsets: + rowsum[i] * offset (wrapping). */
        dv[j] = p->offset ? _mm512_maskz_loadu_epi32(km[j], p->offset + 16 * j)
                          : _mm512_setzero_si512();
    }
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    const __m512i zero = _mm512_set1_epi32(p->out_zero);
#pragma GCC unroll 8
    for (size_t i = 0; i < MR; i++) {
#pragma GCC unroll 2
        for (size_t j = 0; j < NB; j++) {
            __m512i x = _mm512_add_epi32(acc[i][j], off[j]);
            if (p->offset)
                x = _mm512_add_epi32(x, _mm512_mullo_epi32(_mm512_set1_epi32(p->rowsum[i]), dv[j]));
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(x), sc[j]);
            v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
            if (f32_out) {
                _mm512_mask_storeu_ps((float *)c + i * ldc + 16 * j, km[j], v);
            } else {
                const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zero);
                _mm_mask_storeu_epi8((uint8_t *)c + i * ldc + 16 * j, km[j],
                                     _mm512_cvtusepi32_epi8(q));
            }
        }
    }
}

#define QS_TILE_FN(MR, NB)                                                                     \
    static void qs_tile_##MR##x##NB(size_t nc, size_t k, const uint8_t *a, size_t lda,         \
                                    const int8_t *w, void *c, size_t ldc,                      \
                                    const qs_q8_gemm_params *p, bool f32_out) {                \
        if (f32_out)                                                                           \
            qs_tile(MR, NB, nc, k, a, lda, w, c, ldc, p, true);                                \
        else                                                                                   \
            qs_tile(MR, NB, nc, k, a, lda, w, c, ldc, p, false);                               \
    }
#define QS_TILE_FNS(MR) QS_TILE_FN(MR, 1) QS_TILE_FN(MR, 2)
QS_TILE_FNS(1)
QS_TILE_FNS(2)
QS_TILE_FNS(3)
QS_TILE_FNS(4)
QS_TILE_FNS(5)
QS_TILE_FNS(6)
QS_TILE_FNS(7)
QS_TILE_FNS(8)

typedef void (*qs_tile_fn)(size_t nc, size_t k, const uint8_t *a, size_t lda, const int8_t *w,
                           void *c, size_t ldc, const qs_q8_gemm_params *p, bool f32_out);
static const qs_tile_fn qs_tiles[8][2] = {
    {qs_tile_1x1, qs_tile_1x2}, {qs_tile_2x1, qs_tile_2x2}, {qs_tile_3x1, qs_tile_3x2},
    {qs_tile_4x1, qs_tile_4x2}, {qs_tile_5x1, qs_tile_5x2}, {qs_tile_6x1, qs_tile_6x2},
    {qs_tile_7x1, qs_tile_7x2}, {qs_tile_8x1, qs_tile_8x2},
};

void qs_q8_gemm_u8_8x32c4__avx512vnni(size_t mr, size_t nc, size_t k, const uint8_t *a,
                                      size_t lda, const int8_t *w, void *c, size_t ldc,
                                      const qs_q8_gemm_params *p) {
    qs_tiles[mr - 1][nc > 16](nc, k, a, lda, w, c, ldc, p, false);
}

void qs_q8_gemm_f32_8x32c4__avx512vnni(size_t mr, size_t nc, size_t k, const uint8_t *a,
                                       size_t lda, const int8_t *w, void *c, size_t ldc,
                                       const qs_q8_gemm_params *p) {
    qs_tiles[mr - 1][nc > 16](nc, k, a, lda, w, c, ldc, p, true);
}
