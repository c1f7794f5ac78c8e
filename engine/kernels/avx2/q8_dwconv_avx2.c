/* AVX2 int8 depthwise convolution (any kernel up to QS_Q8_DW_MAX_TAPS taps, stride, dilation):
 * taps in pairs, 32 channels per step; bytes of two taps interleaved and zero-extended so that
 * vpmaddwd forms x_t * w_t + x_t+1 * w_t+1 exactly. Weights are repacked at create time in the
 * channel order the in-lane unpacks produce, which the in-lane packs of the epilogue undo. */
#include <immintrin.h>
#include <string.h>

#include "kernels/q8_ukernels.h"

#define QS_DW_BLOCK 32

/* Channel of dword i (0..7) of vector q (0..3) in a block: unpacks work within 128-bit lanes. */
static inline size_t qs_dw_channel(size_t q, size_t i) {
    return 16 * (i / 4) + 4 * q + i % 4;
}

static size_t qs_dw_pairs(size_t taps) {
    return (taps + 1) / 2;
}

size_t qs_q8_dw_pack_bytes__avx2(size_t c, size_t taps) {
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK;
    return blocks * qs_dw_pairs(taps) * 4 * 8 * 4;
}

void qs_q8_dw_pack__avx2(const int8_t *w_tc, size_t c, size_t taps, int8_t *dst) {
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK, pairs = qs_dw_pairs(taps);
    int16_t *d = (int16_t *)(void *)dst;
    for (size_t b = 0; b < blocks; b++)
        for (size_t p = 0; p < pairs; p++)
            for (size_t q = 0; q < 4; q++)
                for (size_t i = 0; i < 8; i++) {
                    const size_t ch = b * QS_DW_BLOCK + qs_dw_channel(q, i);
                    const size_t t0 = 2 * p, t1 = 2 * p + 1;
                    *d++ = ch < c ? w_tc[t0 * c + ch] : 0;
                    *d++ = ch < c && t1 < taps ? w_tc[t1 * c + ch] : 0;
                }
}

/* 32 bytes at p, of which only n (< 32) may be read. */
static inline __m256i qs_load_partial(const uint8_t *p, size_t n) {
    if (n % 4 == 0) {
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n / 4)), idx);
        return _mm256_maskload_epi32((const int *)(const void *)p, m);
    }
    uint8_t t[QS_DW_BLOCK] = {0};
    memcpy(t, p, n);
    return _mm256_loadu_si256((const __m256i *)(const void *)t);
}

/* Lanes {4q..4q+3, 16+4q..16+4q+3} of 32 per-channel values, from a full 32-value array. */
static inline __m256i qs_perm_i32(const int32_t *p, size_t q) {
    return _mm256_loadu2_m128i((const __m128i *)(const void *)(p + 16 + 4 * q),
                               (const __m128i *)(const void *)(p + 4 * q));
}

static inline __m256 qs_perm_f32(const float *p, size_t q) {
    return _mm256_loadu2_m128(p + 16 + 4 * q, p + 4 * q);
}

static inline __m256 qs_dw_requant(__m256i acc, const int32_t *bias, const float *scale,
                                   size_t q, __m256 lo, __m256 hi) {
    const __m256i s = _mm256_add_epi32(acc, qs_perm_i32(bias, q));
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(s), qs_perm_f32(scale, q));
    return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
}

void qs_q8_dwconv__avx2(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    const size_t c = p->c, taps = p->kernel_h * p->kernel_w, pairs = qs_dw_pairs(taps);
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK;
    uint8_t pad[QS_DW_BLOCK];
    memset(pad, (int)p->a_zero, sizeof pad);
    /* Tap t of the current pixel reads base[t] + (offset & keep[t]): keep is 0 for padding. */
    const uint8_t *base[QS_Q8_DW_MAX_TAPS + 1];
    size_t keep[QS_Q8_DW_MAX_TAPS + 1];
    const __m256i zero = _mm256_setzero_si256();
    const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
    const __m256i out_zero = _mm256_set1_epi32(p->out_zero);
    /* Bias and scale of a partial last block, zero-padded to a whole block. */
    int32_t tail_bias[QS_DW_BLOCK] = {0};
    float tail_scale[QS_DW_BLOCK] = {0};
    if (c % QS_DW_BLOCK) {
        const size_t off = c - c % QS_DW_BLOCK;
        memcpy(tail_bias, p->bias + off, (c - off) * sizeof *tail_bias);
        memcpy(tail_scale, p->scale + off, (c - off) * sizeof *tail_scale);
    }
    /* Rows of the window: the image row, or NULL for padding. */
    const uint8_t *rows[QS_Q8_DW_MAX_TAPS];
    for (size_t kh = 0; kh < p->kernel_h; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        const bool ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top && ih < p->in_h;
        rows[kh] = ok ? p->in + ih * p->in_w * c : NULL;
    }
    for (size_t ow = 0; ow < p->out_w; ow++) {
        size_t kw0, kw1;
        qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, p->kernel_w, p->in_w, &kw0, &kw1);
        /* Input column of tap kw is iw0 + kw * dilation (wrapping below 0 for left padding). */
        const size_t iw0 = ow * p->stride_w - p->pad_left;
        for (size_t kh = 0, t = 0; kh < p->kernel_h; kh++) {
            for (size_t kw = 0; kw < p->kernel_w; kw++, t++) {
                const bool ok = rows[kh] && kw >= kw0 && kw < kw1;
                base[t] = ok ? rows[kh] + (iw0 + kw * p->dilation_w) * c : pad;
                keep[t] = ok ? ~(size_t)0 : 0;
            }
        }
        /* An odd tap count pairs the last tap with itself; its packed weight is 0. */
        base[taps] = base[taps - 1];
        keep[taps] = keep[taps - 1];
        const __m256i *wv = (const __m256i *)(const void *)p->w_packed;
        for (size_t b = 0; b < blocks; b++) {
            const size_t off = b * QS_DW_BLOCK;
            const size_t n = c - off < QS_DW_BLOCK ? c - off : QS_DW_BLOCK;
            __m256i acc0 = zero, acc1 = zero, acc2 = zero, acc3 = zero;
            for (size_t pr = 0; pr < pairs; pr++, wv += 4) {
                const uint8_t *p0 = base[2 * pr] + (off & keep[2 * pr]);
                const uint8_t *p1 = base[2 * pr + 1] + (off & keep[2 * pr + 1]);
                __m256i x0, x1;
                if (n == QS_DW_BLOCK) {
                    x0 = _mm256_loadu_si256((const __m256i *)(const void *)p0);
                    x1 = _mm256_loadu_si256((const __m256i *)(const void *)p1);
                } else {
                    x0 = keep[2 * pr] ? qs_load_partial(p0, n)
                                      : _mm256_loadu_si256((const __m256i *)(const void *)p0);
                    x1 = keep[2 * pr + 1] ? qs_load_partial(p1, n)
                                          : _mm256_loadu_si256((const __m256i *)(const void *)p1);
                }
                const __m256i blo = _mm256_unpacklo_epi8(x0, x1);
                const __m256i bhi = _mm256_unpackhi_epi8(x0, x1);
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi8(blo, zero),
                                                                _mm256_load_si256(wv)));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi8(blo, zero),
                                                                _mm256_load_si256(wv + 1)));
                acc2 = _mm256_add_epi32(acc2, _mm256_madd_epi16(_mm256_unpacklo_epi8(bhi, zero),
                                                                _mm256_load_si256(wv + 2)));
                acc3 = _mm256_add_epi32(acc3, _mm256_madd_epi16(_mm256_unpackhi_epi8(bhi, zero),
                                                                _mm256_load_si256(wv + 3)));
            }
            const int32_t *bias = n == QS_DW_BLOCK ? p->bias + off : tail_bias;
            const float *scale = n == QS_DW_BLOCK ? p->scale + off : tail_scale;
            __m256 v[4];
            v[0] = qs_dw_requant(acc0, bias, scale, 0, lo, hi);
            v[1] = qs_dw_requant(acc1, bias, scale, 1, lo, hi);
            v[2] = qs_dw_requant(acc2, bias, scale, 2, lo, hi);
            v[3] = qs_dw_requant(acc3, bias, scale, 3, lo, hi);
            if (p->f32_out) {
                float *o = (float *)out_row + ow * c + off;
                float t[QS_DW_BLOCK];
                float *dst = n == QS_DW_BLOCK ? o : t;
                for (size_t q = 0; q < 4; q++) {
                    _mm_storeu_ps(dst + 4 * q, _mm256_castps256_ps128(v[q]));
                    _mm_storeu_ps(dst + 16 + 4 * q, _mm256_extractf128_ps(v[q], 1));
                }
                if (dst == t)
                    memcpy(o, t, n * sizeof *o);
            } else {
                const __m256i r0 = _mm256_add_epi32(_mm256_cvtps_epi32(v[0]), out_zero);
                const __m256i r1 = _mm256_add_epi32(_mm256_cvtps_epi32(v[1]), out_zero);
                const __m256i r2 = _mm256_add_epi32(_mm256_cvtps_epi32(v[2]), out_zero);
                const __m256i r3 = _mm256_add_epi32(_mm256_cvtps_epi32(v[3]), out_zero);
                /* In-lane packs restore the natural channel order. */
                const __m256i w01 = _mm256_packs_epi32(r0, r1);
                const __m256i w23 = _mm256_packs_epi32(r2, r3);
                const __m256i bytes = _mm256_packus_epi16(w01, w23);
                uint8_t *o = (uint8_t *)out_row + ow * c + off;
                if (n == QS_DW_BLOCK) {
                    _mm256_storeu_si256((__m256i *)(void *)o, bytes);
                } else {
                    uint8_t t[QS_DW_BLOCK];
                    _mm256_storeu_si256((__m256i *)(void *)t, bytes);
                    memcpy(o, t, n);
                }
            }
        }
    }
}
