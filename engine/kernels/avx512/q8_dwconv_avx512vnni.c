/* AVX-512 VNNI int8 depthwise convolution (any kernel up to QS_Q8_DW_MAX_TAPS taps, stride,
 * dilation): taps in groups of four, 64 channels per step; the bytes of four taps are interleaved
 * per channel so that one vpdpbusd adds x_t*w_t over the four. Weights are repacked at create
 * time in the channel order the in-lane unpacks produce, which the in-lane packs undo; padding
 * taps read a row of zero points, so the loads need no checks. */
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

/* Channels this kernel takes; wider layers go to the reference (none of the usual CNNs). */
#define QS_DW_MAX_C 4096

/* The four accumulators of one pixel and one block of 64 channels at offset off (n of them,
 * masked when fewer than 64). */
static inline __attribute__((always_inline)) void
qs_dw_block(const uint8_t *const *base, size_t off, __mmask64 km, bool full, const size_t quads,
            const __m512i *wv, __m512i acc[4]) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
#pragma GCC unroll 4
    for (size_t g = 0; g < quads; g++, wv += 4) {
        __m512i x[4];
#pragma GCC unroll 4
        for (size_t t = 0; t < 4; t++) {
            const void *src = base[4 * g + t] + off;
            x[t] = full ? _mm512_loadu_si512(src) : _mm512_maskz_loadu_epi8(km, src);
        }
        const __m512i b01l = _mm512_unpacklo_epi8(x[0], x[1]);
        const __m512i b01h = _mm512_unpackhi_epi8(x[0], x[1]);
        const __m512i b23l = _mm512_unpacklo_epi8(x[2], x[3]);
        const __m512i b23h = _mm512_unpackhi_epi8(x[2], x[3]);
        a0 = _mm512_dpbusd_epi32(a0, _mm512_unpacklo_epi16(b01l, b23l), _mm512_load_si512(wv));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_unpackhi_epi16(b01l, b23l), _mm512_load_si512(wv + 1));
        a2 = _mm512_dpbusd_epi32(a2, _mm512_unpacklo_epi16(b01h, b23h), _mm512_load_si512(wv + 2));
        a3 = _mm512_dpbusd_epi32(a3, _mm512_unpackhi_epi16(b01h, b23h), _mm512_load_si512(wv + 3));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Requantize (or dequantize) a block's accumulators and store its channels at out + off. */
static inline __attribute__((always_inline)) void
qs_dw_store(const qs_q8_dw_args *p, const __m512i acc[4], const int32_t *bias, const float *scale,
            void *out_pixel, size_t off, size_t n, __mmask64 km) {
    const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
    const __m512 v0 = qs_dw_scale(acc[0], _mm512_load_si512(bias), _mm512_load_ps(scale), lo, hi);
    const __m512 v1 =
        qs_dw_scale(acc[1], _mm512_load_si512(bias + 16), _mm512_load_ps(scale + 16), lo, hi);
    const __m512 v2 =
        qs_dw_scale(acc[2], _mm512_load_si512(bias + 32), _mm512_load_ps(scale + 32), lo, hi);
    const __m512 v3 =
        qs_dw_scale(acc[3], _mm512_load_si512(bias + 48), _mm512_load_ps(scale + 48), lo, hi);
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
        memcpy((float *)out_pixel + off, t, n * sizeof(float));
        return;
    }
    const __m512i z = _mm512_set1_epi32(p->out_zero);
    const __m512i r0 = _mm512_add_epi32(_mm512_cvtps_epi32(v0), z);
    const __m512i r1 = _mm512_add_epi32(_mm512_cvtps_epi32(v1), z);
    const __m512i r2 = _mm512_add_epi32(_mm512_cvtps_epi32(v2), z);
    const __m512i r3 = _mm512_add_epi32(_mm512_cvtps_epi32(v3), z);
    /* In-lane packs restore the natural channel order. */
    const __m512i bytes =
        _mm512_packus_epi16(_mm512_packs_epi32(r0, r1), _mm512_packs_epi32(r2, r3));
    _mm512_mask_storeu_epi8((uint8_t *)out_pixel + off, km, bytes);
}

/* kh_n x kw_n is the kernel; constants in the 3x3 instance, so that its tap loops unroll. */
static inline __attribute__((always_inline)) void
qs_dw_row(const qs_q8_dw_args *p, size_t oh, void *out_row, const size_t kh_n, const size_t kw_n) {
    const size_t c = p->c, taps = kh_n * kw_n, quads = qs_dw_quads(taps);
    const size_t full_blocks = c / QS_DW_BLOCK, tail = c % QS_DW_BLOCK;
    const size_t esize = p->f32_out ? sizeof(float) : sizeof(uint8_t);
    /* Padding taps read a row of zero points. */
    _Alignas(64) uint8_t pad[QS_DW_MAX_C];
    memset(pad, (int)p->a_zero, c);
    /* Bias and scale per block in the unpacked channel order, zero-padded past c. */
    _Alignas(64) int32_t pb[QS_DW_MAX_C];
    _Alignas(64) float ps[QS_DW_MAX_C];
    for (size_t b = 0; b * QS_DW_BLOCK < c; b++) {
        const size_t off = b * QS_DW_BLOCK, n = c - off < QS_DW_BLOCK ? c - off : QS_DW_BLOCK;
        _Alignas(64) int32_t tb[QS_DW_BLOCK] = {0};
        _Alignas(64) float ts[QS_DW_BLOCK] = {0};
        memcpy(tb, p->bias + off, n * sizeof *tb);
        memcpy(ts, p->scale + off, n * sizeof *ts);
        for (size_t q = 0; q < 4; q++) {
            _mm512_store_si512(pb + off + 16 * q, qs_perm_i32(tb, q));
            _mm512_store_ps(ps + off + 16 * q, qs_perm_f32(ts, q));
        }
    }
    /* Rows of the window (NULL for padding), and tap offsets from the window's corner. */
    const uint8_t *rows[QS_Q8_DW_MAX_TAPS];
    size_t toff[QS_Q8_DW_MAX_TAPS];
    bool all_rows = true;
    for (size_t kh = 0; kh < kh_n; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        const bool ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top && ih < p->in_h;
        rows[kh] = ok ? p->in + ih * p->in_w * c : NULL;
        all_rows = all_rows && ok;
        for (size_t kw = 0; kw < kw_n; kw++)
            toff[kh * kw_n + kw] = (kh * p->dilation_h * p->in_w + kw * p->dilation_w) * c;
    }
    /* Output columns whose taps are all inside the image. */
    size_t ow_lo = (p->pad_left + p->stride_w - 1) / p->stride_w, ow_hi = 0;
    const size_t span = (kw_n - 1) * p->dilation_w;
    if (p->in_w > span)
        ow_hi = (p->in_w - span - 1 + p->pad_left) / p->stride_w + 1;
    if (ow_hi > p->out_w)
        ow_hi = p->out_w;
    if (!all_rows || ow_lo > ow_hi)
        ow_lo = ow_hi = 0;
    /* Missing taps of the last group read the pad row: their packed weights are 0. */
    const uint8_t *base[QS_Q8_DW_MAX_TAPS + 3];
    for (size_t t = taps; t < 4 * quads; t++)
        base[t] = pad;
    const __m512i *wp = (const __m512i *)(const void *)p->w_packed;
    const __mmask64 ktail = qs_mask64(tail);
    for (size_t ow = 0; ow < p->out_w; ow++) {
        const size_t iw0 = ow * p->stride_w - p->pad_left;
        if (ow >= ow_lo && ow < ow_hi) {
            const uint8_t *pix = rows[0] + iw0 * c;
#pragma GCC unroll 9
            for (size_t t = 0; t < taps; t++)
                base[t] = pix + toff[t];
        } else {
            size_t kw0, kw1;
            qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, kw_n, p->in_w, &kw0, &kw1);
            for (size_t kh = 0, t = 0; kh < kh_n; kh++)
                for (size_t kw = 0; kw < kw_n; kw++, t++)
                    base[t] = rows[kh] && kw >= kw0 && kw < kw1
                                  ? rows[kh] + (iw0 + kw * p->dilation_w) * c
                                  : pad;
        }
        void *out_pixel = (unsigned char *)out_row + ow * c * esize;
        __m512i acc[4];
        for (size_t b = 0; b < full_blocks; b++) {
            const size_t off = b * QS_DW_BLOCK;
            qs_dw_block(base, off, ~(__mmask64)0, true, quads, wp + b * quads * 4, acc);
            qs_dw_store(p, acc, pb + off, ps + off, out_pixel, off, QS_DW_BLOCK, ~(__mmask64)0);
        }
        if (tail) {
            const size_t off = full_blocks * QS_DW_BLOCK;
            qs_dw_block(base, off, ktail, false, quads, wp + full_blocks * quads * 4, acc);
            qs_dw_store(p, acc, pb + off, ps + off, out_pixel, off, tail, ktail);
        }
    }
}

void qs_q8_dwconv__avx512vnni(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    if (p->c > QS_DW_MAX_C)
        qs_q8_dwconv__ref(p, oh, out_row);
    else if (p->kernel_h == 3 && p->kernel_w == 3)
        qs_dw_row(p, oh, out_row, 3, 3);
    else
        qs_dw_row(p, oh, out_row, p->kernel_h, p->kernel_w);
}
