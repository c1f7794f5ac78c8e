/* AVX2 u8 x s8 GEMM micro-kernel 4x64c2 (4 rows, up to four 16-column panels): exact products
 * through vpmaddwd on int16 (vpmaddubsw would saturate: 255 * 128 * 2 > 32767). Weights are packed
 * as int16 pairs of consecutive k per column (see qs_q8_pack__avx2); a call widens its A rows to
 * int16 on the stack once for all its panels (per K chunk when K is long), so the inner loop is
 * broadcast loads, vpmaddwd and vpaddd. Fused requant/dequant epilogue.
 * Measured on Zen 3 (no VNNI), loops hot in L1, one thread: this 4x16 k-pair loop 64-66 GMAC/s,
 * the fp32 6x16 FMA loop 45-49, a saturating vpmaddubsw 4x16c4 loop 97-99. Tiles of 5x16, 6x16,
 * 4x24 and a 3x8 tile over eight k (vbroadcasti128 rows, vphaddd at the end) ran slower: with
 * 12 or more accumulators the compiler spills.
 * Activations known to be 7-bit (0..127, static/dynamic quantization with reduce_range) take the
 * 4x64c4 kernel at the end instead: vpmaddubsw on the default c4 packing, then vpmaddwd by ones.
 * |a0*w0 + a1*w1| <= 127 * 128 * 2 = 32512 never saturates int16, so it is exact as well. */
#include <immintrin.h>
#include <string.h>

#include "kernels/q8_ukernels.h"

#define QS_MR 4
/* k per chunk of widened A: 4 x 512 int16 = 4 KiB of stack, in L1 with the weights. */
#define QS_KC 512

size_t qs_q8_pack_bytes__avx2(size_t k_padded, size_t panels) {
    return panels * k_padded * QS_Q8_NR * sizeof(int16_t);
}

void qs_q8_pack__avx2(const int8_t *w_nk, size_t k, size_t n, int8_t *dst) {
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    int16_t *d = (int16_t *)(void *)dst;
    for (size_t col = 0; col < n; col++) {
        int16_t *panel = d + (col / QS_Q8_NR) * k_padded * QS_Q8_NR;
        for (size_t kk = 0; kk < k; kk++)
            panel[(kk / 2) * QS_Q8_NR * 2 + (col % QS_Q8_NR) * 2 + kk % 2] = w_nk[col * k + kk];
    }
}

/* n bytes of A as int16, zero-padded to a multiple of 16 (dst has room for it). */
static inline void qs_widen(const uint8_t *a, size_t n, int16_t *dst) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(
            (__m256i *)(void *)(dst + i),
            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(a + i))));
    if (i < n) {
        uint8_t t[16] = {0};
        memcpy(t, a + i, n - i);
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(void *)t)));
    }
}

static inline __m256i qs_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

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

#define QS_STEP(x, r0, r1)                                          \
    do {                                                            \
        r0 = _mm256_add_epi32(r0, _mm256_madd_epi16(x, w0));        \
        r1 = _mm256_add_epi32(r1, _mm256_madd_epi16(x, w1));        \
    } while (0)

typedef struct {
    __m256i c00, c01, c10, c11, c20, c21, c30, c31;
} qs_acc;

/* acc += the widened rows x one panel over `pairs` k pairs, from wp on. */
static inline __attribute__((always_inline)) void
qs_accumulate(qs_acc *r, const int16_t *const aw[QS_MR], size_t pairs, const int16_t *wp) {
    __m256i c00 = r->c00, c01 = r->c01, c10 = r->c10, c11 = r->c11;
    __m256i c20 = r->c20, c21 = r->c21, c30 = r->c30, c31 = r->c31;
    const int16_t *x0p = aw[0], *x1p = aw[1], *x2p = aw[2], *x3p = aw[3];
    for (size_t kp = 0; kp < pairs; kp++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)wp);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + 16));
        wp += 2 * QS_Q8_NR;
        const __m256i x0 = qs_pair(x0p + 2 * kp);
        QS_STEP(x0, c00, c01);
        const __m256i x1 = qs_pair(x1p + 2 * kp);
        QS_STEP(x1, c10, c11);
        const __m256i x2 = qs_pair(x2p + 2 * kp);
        QS_STEP(x2, c20, c21);
        const __m256i x3 = qs_pair(x3p + 2 * kp);
        QS_STEP(x3, c30, c31);
    }
    *r = (qs_acc){c00, c01, c10, c11, c20, c21, c30, c31};
}

/* Requantize (or dequantize) rows [0, mr) of one panel's accumulators into c (nc columns). */
static inline __attribute__((always_inline)) void
qs_epilogue(const qs_acc *r, size_t mr, size_t nc, void *c, size_t ldc,
            const qs_q8_gemm_params *p, size_t col, bool f32_out) {
    const __m256i acc[QS_MR][2] = {
        {r->c00, r->c01}, {r->c10, r->c11}, {r->c20, r->c21}, {r->c30, r->c31}};
    /* acc + bias - a_zero * colsum, in int32 with wrap-around like the reference. */
    __m256i b_lo = _mm256_setzero_si256(), b_hi = b_lo, s_lo, s_hi;
    if (p->bias)
        qs_load16_i32(p->bias + col, nc, &b_lo, &b_hi);
    qs_load16_i32(p->colsum + col, nc, &s_lo, &s_hi);
    const __m256i az = _mm256_set1_epi32(p->a_zero);
    const __m256i off_lo = _mm256_sub_epi32(b_lo, _mm256_mullo_epi32(az, s_lo));
    const __m256i off_hi = _mm256_sub_epi32(b_hi, _mm256_mullo_epi32(az, s_hi));
    /* Weights with offsets: + rowsum[i] * offset (wrapping). */
    __m256i d_lo = _mm256_setzero_si256(), d_hi = d_lo;
    if (p->offset)
        qs_load16_i32(p->offset + col, nc, &d_lo, &d_hi);
    __m256 sc_lo, sc_hi;
    qs_load16_f32(p->scale + col, nc, &sc_lo, &sc_hi);
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    const __m256i z = _mm256_set1_epi32(p->out_zero);
    const size_t rows = mr < QS_MR ? mr : QS_MR;
    for (size_t i = 0; i < rows; i++) {
        __m256i x0 = _mm256_add_epi32(acc[i][0], off_lo), x1 = _mm256_add_epi32(acc[i][1], off_hi);
        if (p->offset) {
            const __m256i rs = _mm256_set1_epi32(p->rowsum[i]);
            x0 = _mm256_add_epi32(x0, _mm256_mullo_epi32(rs, d_lo));
            x1 = _mm256_add_epi32(x1, _mm256_mullo_epi32(rs, d_hi));
        }
        __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(x0), sc_lo);
        __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(x1), sc_hi);
        v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
        v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        if (f32_out) {
            float *out = (float *)c + i * ldc + col;
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
            const __m256i q0 = _mm256_add_epi32(_mm256_cvtps_epi32(v0), z);
            const __m256i q1 = _mm256_add_epi32(_mm256_cvtps_epi32(v1), z);
            const __m128i h0 = _mm_packs_epi32(_mm256_castsi256_si128(q0),
                                               _mm256_extracti128_si256(q0, 1));
            const __m128i h1 = _mm_packs_epi32(_mm256_castsi256_si128(q1),
                                               _mm256_extracti128_si256(q1, 1));
            const __m128i bytes = _mm_packus_epi16(h0, h1);
            uint8_t *out = (uint8_t *)c + i * ldc + col;
            if (nc == 16) {
                _mm_storeu_si128((__m128i *)(void *)out, bytes);
            } else {
                uint8_t t[16];
                _mm_storeu_si128((__m128i *)(void *)t, bytes);
                memcpy(out, t, nc);
            }
        }
    }
}

/* Row pointers of A; rows past mr alias the previous row (same loads; stores go over the real
 * row). */
static inline void qs_rows(const uint8_t *a, size_t lda, size_t mr, const uint8_t *ap[QS_MR]) {
    ap[0] = a;
    for (size_t i = 1; i < QS_MR; i++)
        ap[i] = mr > i ? ap[i - 1] + lda : ap[i - 1];
}

static inline __attribute__((always_inline)) void
qs_gemm(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda, const int8_t *w, void *c,
        size_t ldc, const qs_q8_gemm_params *p, bool f32_out) {
    int16_t buf[QS_MR][QS_KC + 16];
    const int16_t *aw[QS_MR] = {buf[0], buf[1], buf[2], buf[3]};
    const uint8_t *ap[QS_MR];
    qs_rows(a, lda, mr, ap);
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const size_t panel = k_padded * QS_Q8_NR;
    const int16_t *w16 = (const int16_t *)(const void *)w;
    const bool once = k <= QS_KC;
    if (once)
        for (size_t i = 0; i < QS_MR; i++)
            qs_widen(ap[i], k, buf[i]);
    for (size_t col = 0; col < nc; col += QS_Q8_NR) {
        const int16_t *wp = w16 + (col / QS_Q8_NR) * panel;
        qs_acc r;
        r.c00 = r.c01 = r.c10 = r.c11 = r.c20 = r.c21 = r.c30 = r.c31 = _mm256_setzero_si256();
        if (once) {
            qs_accumulate(&r, aw, (k + 1) / 2, wp);
        } else {
            for (size_t k0 = 0; k0 < k; k0 += QS_KC) {
                const size_t kc = k - k0 < QS_KC ? k - k0 : QS_KC;
                for (size_t i = 0; i < QS_MR; i++)
                    qs_widen(ap[i] + k0, kc, buf[i]);
                qs_accumulate(&r, aw, (kc + 1) / 2, wp + k0 * QS_Q8_NR);
            }
        }
        const size_t ncp = nc - col < QS_Q8_NR ? nc - col : QS_Q8_NR;
        qs_epilogue(&r, mr, ncp, c, ldc, p, col, f32_out);
    }
}

void qs_q8_gemm_u8_4x64c2__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p) {
    qs_gemm(mr, nc, k, a, lda, w, c, ldc, p, false);
}

void qs_q8_gemm_f32_4x64c2__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                 const int8_t *w, void *c, size_t ldc,
                                 const qs_q8_gemm_params *p) {
    qs_gemm(mr, nc, k, a, lda, w, c, ldc, p, true);
}

/* ---- 7-bit activations: u8 (<= 127) x s8 through vpmaddubsw, default c4 packing ---- */

static inline __m256i qs_quad(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

#define QS_STEP7(x, r0, r1)                                                                \
    do {                                                                                   \
        r0 = _mm256_add_epi32(r0, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));   \
        r1 = _mm256_add_epi32(r1, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));   \
    } while (0)

/* acc += rows ap[] x one c4 panel over k (the last partial group of four read through a copy,
 * so no byte past k is read). */
static inline __attribute__((always_inline)) void
qs_accumulate7(qs_acc *r, const uint8_t *const ap[QS_MR], size_t k, const int8_t *wp) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = r->c00, c01 = r->c01, c10 = r->c10, c11 = r->c11;
    __m256i c20 = r->c20, c21 = r->c21, c30 = r->c30, c31 = r->c31;
    const uint8_t *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3];
    size_t kk = 0;
    for (; kk + QS_Q8_KGROUP <= k; kk += QS_Q8_KGROUP) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)wp);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + 32));
        wp += QS_Q8_NR * QS_Q8_KGROUP;
        const __m256i x0 = qs_quad(a0 + kk);
        QS_STEP7(x0, c00, c01);
        const __m256i x1 = qs_quad(a1 + kk);
        QS_STEP7(x1, c10, c11);
        const __m256i x2 = qs_quad(a2 + kk);
        QS_STEP7(x2, c20, c21);
        const __m256i x3 = qs_quad(a3 + kk);
        QS_STEP7(x3, c30, c31);
    }
    if (kk < k) {
        uint8_t t[QS_MR][QS_Q8_KGROUP] = {{0}};
        for (size_t i = 0; i < QS_MR; i++)
            memcpy(t[i], ap[i] + kk, k - kk);
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)wp);
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + 32));
        const __m256i x0 = qs_quad(t[0]);
        QS_STEP7(x0, c00, c01);
        const __m256i x1 = qs_quad(t[1]);
        QS_STEP7(x1, c10, c11);
        const __m256i x2 = qs_quad(t[2]);
        QS_STEP7(x2, c20, c21);
        const __m256i x3 = qs_quad(t[3]);
        QS_STEP7(x3, c30, c31);
    }
    *r = (qs_acc){c00, c01, c10, c11, c20, c21, c30, c31};
}

static inline __attribute__((always_inline)) void
qs_gemm7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda, const int8_t *w, void *c,
         size_t ldc, const qs_q8_gemm_params *p, bool f32_out) {
    const uint8_t *ap[QS_MR];
    qs_rows(a, lda, mr, ap);
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const size_t panel = k_padded * QS_Q8_NR;
    for (size_t col = 0; col < nc; col += QS_Q8_NR) {
        qs_acc r;
        r.c00 = r.c01 = r.c10 = r.c11 = r.c20 = r.c21 = r.c30 = r.c31 = _mm256_setzero_si256();
        qs_accumulate7(&r, ap, k, w + (col / QS_Q8_NR) * panel);
        const size_t ncp = nc - col < QS_Q8_NR ? nc - col : QS_Q8_NR;
        qs_epilogue(&r, mr, ncp, c, ldc, p, col, f32_out);
    }
}

void qs_q8_gemm_u8_4x64c4__avx2u7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                  const int8_t *w, void *c, size_t ldc,
                                  const qs_q8_gemm_params *p) {
    qs_gemm7(mr, nc, k, a, lda, w, c, ldc, p, false);
}

void qs_q8_gemm_f32_4x64c4__avx2u7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                   const int8_t *w, void *c, size_t ldc,
                                   const qs_q8_gemm_params *p) {
    qs_gemm7(mr, nc, k, a, lda, w, c, ldc, p, true);
}
