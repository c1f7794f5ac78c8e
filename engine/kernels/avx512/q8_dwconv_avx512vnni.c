/* AVX-512 VNNI int8 depthwise convolution (any kernel up to QS_Q8_DW_MAX_TAPS taps, stride,
 * dilation): taps in groups of four, 64 channels per step; the bytes of four taps are interleaved
 * per channel so that one vpdpbusd adds x_t*w_t over the four. Weights are repacked at create
 * time in the channel order the in-lane unpacks produce, which the in-lane packs undo. Channel
 * blocks are the outer loop, so a block's weights, bias and scale stay in registers along a row. */
#include <string.h>

#include "kernels/avx512/q8_simd512.h"

#include "kernels/q8_ukernels.h"

#define QS_DW_BLOCK 64

/* Channel of dword i (0..15) of vector q (0..3) in a block: unpacks work within 128-bit lanes. */
static inline size_t qs_dw_channel(size_t q, size_t i) {
    return 16 * (i / 4) + 4 * q + i % 4;
}

static size_t qs_dw_quads(size_t taps) {
    return (taps + 3) / 4;
}

size_t qs_q8_dw_pack_bytes__avx512vnni(size_t c, size_t taps) {
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK;
    return blocks * qs_dw_quads(taps) * 4 * 64;
}

void qs_q8_dw_pack__avx512vnni(const int8_t *w_tc, size_t c, size_t taps, int8_t *dst) {
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK, quads = qs_dw_quads(taps);
    for (size_t b = 0; b < blocks; b++)
        for (size_t g = 0; g < quads; g++)
            for (size_t q = 0; q < 4; q++)
                for (size_t i = 0; i < 16; i++) {
                    const size_t ch = b * QS_DW_BLOCK + qs_dw_channel(q, i);
                    for (size_t t = 4 * g; t < 4 * g + 4; t++)
                        *dst++ = ch < c && t < taps ? w_tc[t * c + ch] : 0;
                }
}

/* Vector q of a block's per-channel values in the unpacked order, from 64 values at p. */
static inline __m512i qs_perm_i32(const int32_t *p, size_t q) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(p + 4 * q)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 16 + 4 * q)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 32 + 4 * q)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(const void *)(p + 48 + 4 * q)),
                              3);
}

static inline __m512 qs_perm_f32(const float *p, size_t q) {
    return _mm512_castsi512_ps(qs_perm_i32((const int32_t *)(const void *)p, q));
}

static inline __m512 qs_dw_scale(__m512i acc, __m512i bias, __m512 scale, __m512 lo, __m512 hi) {
    const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), scale);
    return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
}

/* kh_n x kw_n is the kernel; constants in the 3x3 instance, so that its tap loops unroll. */
static inline __attribute__((always_inline)) void
qs_dw_row(const qs_q8_dw_args *p, size_t oh, void *out_row, const size_t kh_n, const size_t kw_n) {
    const size_t c = p->c, taps = kh_n * kw_n, quads = qs_dw_quads(taps);
    const size_t blocks = (c + QS_DW_BLOCK - 1) / QS_DW_BLOCK;
    const __m512i pad = _mm512_set1_epi8((char)p->a_zero);
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    const __m512i out_zero = _mm512_set1_epi32(p->out_zero);
    /* Rows of the window: the image row, or NULL for padding. */
    const uint8_t *rows[QS_Q8_DW_MAX_TAPS];
    for (size_t kh = 0; kh < kh_n; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        const bool ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top && ih < p->in_h;
        rows[kh] = ok ? p->in + ih * p->in_w * c : NULL;
    }
    for (size_t b = 0; b < blocks; b++) {
        const size_t off = b * QS_DW_BLOCK;
        const size_t n = c - off < QS_DW_BLOCK ? c - off : QS_DW_BLOCK;
        const __mmask64 km = qs_mask64(n);
        /* Bias and scale of the block in the unpacked order, zero-padded past c. */
        int32_t tb[QS_DW_BLOCK] = {0};
        float ts[QS_DW_BLOCK] = {0};
        memcpy(tb, p->bias + off, n * sizeof *tb);
        memcpy(ts, p->scale + off, n * sizeof *ts);
        const __m512i b0 = qs_perm_i32(tb, 0), b1 = qs_perm_i32(tb, 1);
        const __m512i b2 = qs_perm_i32(tb, 2), b3 = qs_perm_i32(tb, 3);
        const __m512 s0 = qs_perm_f32(ts, 0), s1 = qs_perm_f32(ts, 1);
        const __m512 s2 = qs_perm_f32(ts, 2), s3 = qs_perm_f32(ts, 3);
        const __m512i *wb = (const __m512i *)(const void *)p->w_packed + b * quads * 4;
        for (size_t ow = 0; ow < p->out_w; ow++) {
            size_t kw0, kw1;
            qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, kw_n, p->in_w, &kw0, &kw1);
            const size_t iw0 = ow * p->stride_w - p->pad_left;
            __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
            const __m512i *wv = wb;
            __m512i x[4];
            size_t nx = 0;
#pragma GCC unroll 4
            for (size_t kh = 0; kh < kh_n; kh++) {
#pragma GCC unroll 4
                for (size_t kw = 0; kw < kw_n; kw++) {
                    if (rows[kh] && kw >= kw0 && kw < kw1)
                        x[nx++] = _mm512_maskz_loadu_epi8(
                            km, rows[kh] + (iw0 + kw * p->dilation_w) * c + off);
                    else
                        x[nx++] = pad;
                    if (nx == 4 || (kh + 1 == kh_n && kw + 1 == kw_n)) {
                        /* Missing taps of the last group have weight 0: any bytes do. */
                        for (size_t t = nx; t < 4; t++)
                            x[t] = pad;
                        const __m512i b01l = _mm512_unpacklo_epi8(x[0], x[1]);
                        const __m512i b01h = _mm512_unpackhi_epi8(x[0], x[1]);
                        const __m512i b23l = _mm512_unpacklo_epi8(x[2], x[3]);
                        const __m512i b23h = _mm512_unpackhi_epi8(x[2], x[3]);
                        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_unpacklo_epi16(b01l, b23l),
                                                   _mm512_load_si512(wv));
                        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_unpackhi_epi16(b01l, b23l),
                                                   _mm512_load_si512(wv + 1));
                        acc2 = _mm512_dpbusd_epi32(acc2, _mm512_unpacklo_epi16(b01h, b23h),
                                                   _mm512_load_si512(wv + 2));
                        acc3 = _mm512_dpbusd_epi32(acc3, _mm512_unpackhi_epi16(b01h, b23h),
                                                   _mm512_load_si512(wv + 3));
                        wv += 4;
                        nx = 0;
                    }
                }
            }
            const __m512 v0 = qs_dw_scale(acc0, b0, s0, lo, hi);
            const __m512 v1 = qs_dw_scale(acc1, b1, s1, lo, hi);
            const __m512 v2 = qs_dw_scale(acc2, b2, s2, lo, hi);
            const __m512 v3 = qs_dw_scale(acc3, b3, s3, lo, hi);
            if (p->f32_out) {
                /* Back to channel order through a block-sized buffer. */
                float t[QS_DW_BLOCK];
                const __m512 vs[4] = {v0, v1, v2, v3};
                for (size_t q = 0; q < 4; q++) {
                    float u[16];
                    _mm512_storeu_ps(u, vs[q]);
                    for (size_t i = 0; i < 16; i++)
                        t[qs_dw_channel(q, i)] = u[i];
                }
                memcpy((float *)out_row + ow * c + off, t, n * sizeof(float));
            } else {
                const __m512i r0 = _mm512_add_epi32(_mm512_cvtps_epi32(v0), out_zero);
                const __m512i r1 = _mm512_add_epi32(_mm512_cvtps_epi32(v1), out_zero);
                const __m512i r2 = _mm512_add_epi32(_mm512_cvtps_epi32(v2), out_zero);
                const __m512i r3 = _mm512_add_epi32(_mm512_cvtps_epi32(v3), out_zero);
                /* In-lane packs restore the natural channel order. */
                const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(r0, r1),
                                                          _mm512_packs_epi32(r2, r3));
                _mm512_mask_storeu_epi8((uint8_t *)out_row + ow * c + off, km, bytes);
            }
        }
    }
}

void qs_q8_dwconv__avx512vnni(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    if (p->kernel_h == 3 && p->kernel_w == 3)
        qs_dw_row(p, oh, out_row, 3, 3);
    else
        qs_dw_row(p, oh, out_row, p->kernel_h, p->kernel_w);
}
