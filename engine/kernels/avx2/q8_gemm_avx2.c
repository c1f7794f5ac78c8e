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

/* Accumulators of one 4x16 tile: acc[i][0] columns 0-7 of row i, acc[i][1] columns 8-15. Every
 * loop over its rows is unrolled with constant indices, so that it stays in registers (indexed
 * at run time it went to the stack: the K-chunked 8-bit kernel ran at half speed). */
typedef struct {
    __m256i c[QS_MR][2];
} qs_acc;

/* Starting value of every row of a panel's accumulators: bias - a_zero * colsum (wrapping), so
 * that the epilogue has nothing left to add. */
static inline __attribute__((always_inline)) void
qs_acc_init(qs_acc *r, const qs_q8_gemm_params *p, size_t col, size_t nc) {
    __m256i lo = _mm256_setzero_si256(), hi = lo;
    if (p->bias)
        qs_load16_i32(p->bias + col, nc, &lo, &hi);
    if (p->a_zero != 0) {
        __m256i s_lo, s_hi;
        qs_load16_i32(p->colsum + col, nc, &s_lo, &s_hi);
        const __m256i az = _mm256_set1_epi32(p->a_zero);
        lo = _mm256_sub_epi32(lo, _mm256_mullo_epi32(az, s_lo));
        hi = _mm256_sub_epi32(hi, _mm256_mullo_epi32(az, s_hi));
    }
#pragma GCC unroll 4
    for (size_t i = 0; i < QS_MR; i++) {
        r->c[i][0] = lo;
        r->c[i][1] = hi;
    }
}

/* acc = sum_k a*w + (bias - a_zero * colsum) from rows a (pairs of k widened to int16) and one
 * panel over `pairs` k pairs, from wp on. */
static inline __attribute__((always_inline)) void
qs_accumulate(qs_acc *r, const int16_t *const aw[QS_MR], size_t pairs, const int16_t *wp) {
    __m256i c00 = r->c[0][0], c01 = r->c[0][1], c10 = r->c[1][0], c11 = r->c[1][1];
    __m256i c20 = r->c[2][0], c21 = r->c[2][1], c30 = r->c[3][0], c31 = r->c[3][1];
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
    *r = (qs_acc){{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}}};
}

/* Weights with offsets: + rowsum[i] * offset (wrapping), rows [0, mr). */
static inline __attribute__((always_inline)) void
qs_acc_offset(qs_acc *r, size_t mr, size_t nc, const qs_q8_gemm_params *p, size_t col) {
    __m256i d_lo, d_hi;
    qs_load16_i32(p->offset + col, nc, &d_lo, &d_hi);
#pragma GCC unroll 4
    for (size_t i = 0; i < QS_MR; i++) {
        if (i >= mr)
            break;
        const __m256i rs = _mm256_set1_epi32(p->rowsum[i]);
        r->c[i][0] = _mm256_add_epi32(r->c[i][0], _mm256_mullo_epi32(rs, d_lo));
        r->c[i][1] = _mm256_add_epi32(r->c[i][1], _mm256_mullo_epi32(rs, d_hi));
    }
}

/* Round(min(hi, acc * scale)) in int32; the lower clamp comes later (qs_q8_qmin_byte). */
static inline __m256i qs_requant8(__m256i acc, __m256 scale, __m256 hi) {
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    return _mm256_cvtps_epi32(_mm256_min_ps(hi, v));
}

/* Two rows (i, i + 1) of a tile as uint8: int16 packs (saturating, in lane), + out_zero, byte
 * packs, one dword permute back to column order, the qmin clamp on 32 bytes at once. */
static inline __attribute__((always_inline)) __m256i
qs_rows_u8(const qs_acc *r, size_t i, __m256 sc_lo, __m256 sc_hi, __m256 hi, __m256i z16,
           __m256i qmin8) {
    const __m256i p0 = _mm256_adds_epi16(
        _mm256_packs_epi32(qs_requant8(r->c[i][0], sc_lo, hi), qs_requant8(r->c[i][1], sc_hi, hi)),
        z16);
    const __m256i p1 = _mm256_adds_epi16(_mm256_packs_epi32(qs_requant8(r->c[i + 1][0], sc_lo, hi),
                                                            qs_requant8(r->c[i + 1][1], sc_hi, hi)),
                                         z16);
    /* dwords: row i 0-3, 8-11, row i+1 0-3, 8-11 | row i 4-7, 12-15, row i+1 4-7, 12-15. */
    const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p0, p1),
                                                  _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_max_epu8(b, qmin8);
}

static inline void qs_store16_u8(uint8_t *out, __m128i v, size_t nc) {
    if (nc == QS_Q8_NR) {
        _mm_storeu_si128((__m128i *)(void *)out, v);
    } else {
        uint8_t t[QS_Q8_NR];
        _mm_storeu_si128((__m128i *)(void *)t, v);
        memcpy(out, t, nc);
    }
}

/* Requantize (or dequantize) rows [0, mr) of one panel's accumulators into c (nc columns). */
static inline __attribute__((always_inline)) void
qs_epilogue(const qs_acc *r, size_t mr, size_t nc, void *c, size_t ldc,
            const qs_q8_gemm_params *p, size_t col, bool f32_out) {
    __m256 sc_lo, sc_hi;
    qs_load16_f32(p->scale + col, nc, &sc_lo, &sc_hi);
    const __m256 hi = _mm256_set1_ps(p->hi);
    const size_t rows = mr < QS_MR ? mr : QS_MR;
    if (f32_out) {
        const __m256 lo = _mm256_set1_ps(p->lo);
#pragma GCC unroll 4
        for (size_t i = 0; i < QS_MR; i++) {
            if (i >= rows)
                break;
            __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(r->c[i][0]), sc_lo);
            __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(r->c[i][1]), sc_hi);
            v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
            v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
            float *out = (float *)c + i * ldc + col;
            if (nc == QS_Q8_NR) {
                _mm256_storeu_ps(out, v0);
                _mm256_storeu_ps(out + 8, v1);
            } else {
                float t[QS_Q8_NR];
                _mm256_storeu_ps(t, v0);
                _mm256_storeu_ps(t + 8, v1);
                memcpy(out, t, nc * sizeof(float));
            }
        }
        return;
    }
    const __m256i z16 = _mm256_set1_epi16((int16_t)p->out_zero);
    const __m256i qmin8 = _mm256_set1_epi8((char)qs_q8_qmin_byte(p->lo, p->hi, p->out_zero));
    uint8_t *out = (uint8_t *)c + col;
    const __m256i b01 = qs_rows_u8(r, 0, sc_lo, sc_hi, hi, z16, qmin8);
    qs_store16_u8(out, _mm256_castsi256_si128(b01), nc);
    if (rows > 1)
        qs_store16_u8(out + ldc, _mm256_extracti128_si256(b01, 1), nc);
    if (rows > 2) {
        const __m256i b23 = qs_rows_u8(r, 2, sc_lo, sc_hi, hi, z16, qmin8);
        qs_store16_u8(out + 2 * ldc, _mm256_castsi256_si128(b23), nc);
        if (rows > 3)
            qs_store16_u8(out + 3 * ldc, _mm256_extracti128_si256(b23, 1), nc);
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
        const size_t ncp = nc - col < QS_Q8_NR ? nc - col : QS_Q8_NR;
        qs_acc r;
        qs_acc_init(&r, p, col, ncp);
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
        if (p->offset)
            qs_acc_offset(&r, mr, ncp, p, col);
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
    __m256i c00 = r->c[0][0], c01 = r->c[0][1], c10 = r->c[1][0], c11 = r->c[1][1];
    __m256i c20 = r->c[2][0], c21 = r->c[2][1], c30 = r->c[3][0], c31 = r->c[3][1];
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
    *r = (qs_acc){{{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}}};
}

static inline __attribute__((always_inline)) void
qs_gemm7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda, const int8_t *w, void *c,
         size_t ldc, const qs_q8_gemm_params *p, bool f32_out) {
    const uint8_t *ap[QS_MR];
    qs_rows(a, lda, mr, ap);
    const size_t k_padded = (k + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
    const size_t panel = k_padded * QS_Q8_NR;
    for (size_t col = 0; col < nc; col += QS_Q8_NR) {
        const size_t ncp = nc - col < QS_Q8_NR ? nc - col : QS_Q8_NR;
        qs_acc r;
        qs_acc_init(&r, p, col, ncp);
        qs_accumulate7(&r, ap, k, w + (col / QS_Q8_NR) * panel);
        if (p->offset)
            qs_acc_offset(&r, mr, ncp, p, col);
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
