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

/* Round(min(hi, acc * scale)); the lower clamp comes later (qs_q8_qmin_byte). */
static inline __m256i qs_dw_requant(__m256i acc, __m256 scale, __m256 hi) {
    const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
    return _mm256_cvtps_epi32(_mm256_min_ps(hi, v));
}

/* Channels this kernel takes; wider layers go to the reference (none of the usual CNNs). */
#define QS_DW_MAX_C 4096

/* The four accumulators of one pixel and one block of 32 channels at offset off, starting from
 * the bias; full blocks load whole vectors, the last partial one loads n channels. */
static inline __attribute__((always_inline)) void
qs_dw_block(const uint8_t *const *base, size_t off, bool full, size_t n, const size_t pairs,
            const __m256i *wv, const __m256i *bias, __m256i acc[4]) {
    const __m256i zero = _mm256_setzero_si256();
    __m256i a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    /* Not unrolled: with the pairs interleaved the compiler spilled accumulators (3x3 over 32
     * channels at 112x112: 0.27 ms unrolled, 0.21 not). */
#pragma GCC unroll 1
    for (size_t pr = 0; pr < pairs; pr++, wv += 4) {
        const uint8_t *p0 = base[2 * pr] + off, *p1 = base[2 * pr + 1] + off;
        const __m256i x0 = full ? _mm256_loadu_si256((const __m256i *)(const void *)p0)
                                : qs_load_partial(p0, n);
        const __m256i x1 = full ? _mm256_loadu_si256((const __m256i *)(const void *)p1)
                                : qs_load_partial(p1, n);
        const __m256i blo = _mm256_unpacklo_epi8(x0, x1);
        const __m256i bhi = _mm256_unpackhi_epi8(x0, x1);
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_unpacklo_epi8(blo, zero),
                                                    _mm256_load_si256(wv)));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_unpackhi_epi8(blo, zero),
                                                    _mm256_load_si256(wv + 1)));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_unpacklo_epi8(bhi, zero),
                                                    _mm256_load_si256(wv + 2)));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_unpackhi_epi8(bhi, zero),
                                                    _mm256_load_si256(wv + 3)));
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Constants of the epilogue, made once per row. */
typedef struct {
    __m256 lo, hi;
    __m256i z16, qmin8;
} qs_dw_out;

static qs_dw_out qs_dw_out_make(const qs_q8_dw_args *p) {
    return (qs_dw_out){
        .lo = _mm256_set1_ps(p->lo),
        .hi = _mm256_set1_ps(p->hi),
        .z16 = _mm256_set1_epi16((int16_t)p->out_zero),
        .qmin8 = _mm256_set1_epi8((char)qs_q8_qmin_byte(p->lo, p->hi, p->out_zero)),
    };
}

/* Requantize (or dequantize) a block's accumulators and store n channels at out + off. */
static inline __attribute__((always_inline)) void
qs_dw_store(const qs_q8_dw_args *p, const qs_dw_out *k, const __m256i acc[4], const __m256 *scale,
            void *out_pixel, size_t off, size_t n) {
    if (p->f32_out) {
        float *o = (float *)out_pixel + off;
        float t[QS_DW_BLOCK];
        float *dst = n == QS_DW_BLOCK ? o : t;
        for (size_t q = 0; q < 4; q++) {
            __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[q]), scale[q]);
            v = _mm256_min_ps(_mm256_max_ps(v, k->lo), k->hi);
            _mm_storeu_ps(dst + 4 * q, _mm256_castps256_ps128(v));
            _mm_storeu_ps(dst + 16 + 4 * q, _mm256_extractf128_ps(v, 1));
        }
        if (dst == t)
            memcpy(o, t, n * sizeof *o);
        return;
    }
    const __m256i h01 = _mm256_adds_epi16(_mm256_packs_epi32(qs_dw_requant(acc[0], scale[0], k->hi),
                                                             qs_dw_requant(acc[1], scale[1], k->hi)),
                                          k->z16);
    const __m256i h23 = _mm256_adds_epi16(_mm256_packs_epi32(qs_dw_requant(acc[2], scale[2], k->hi),
                                                             qs_dw_requant(acc[3], scale[3], k->hi)),
                                          k->z16);
    /* In-lane packs restore the natural channel order. */
    const __m256i bytes = _mm256_max_epu8(_mm256_packus_epi16(h01, h23), k->qmin8);
    uint8_t *o = (uint8_t *)out_pixel + off;
    if (n == QS_DW_BLOCK) {
        _mm256_storeu_si256((__m256i *)(void *)o, bytes);
    } else {
        uint8_t t[QS_DW_BLOCK];
        _mm256_storeu_si256((__m256i *)(void *)t, bytes);
        memcpy(o, t, n);
    }
}

/* kh_n x kw_n is the kernel; constants in the 3x3 instance, so that its tap loops unroll. */
static inline __attribute__((always_inline)) void
qs_dw_row(const qs_q8_dw_args *p, size_t oh, void *out_row, const size_t kh_n, const size_t kw_n) {
    const size_t c = p->c, taps = kh_n * kw_n, pairs = qs_dw_pairs(taps);
    const size_t full_blocks = c / QS_DW_BLOCK, tail = c % QS_DW_BLOCK;
    const size_t esize = p->f32_out ? sizeof(float) : sizeof(uint8_t);
    /* Padding taps read a row of zero points. */
    _Alignas(32) uint8_t pad[QS_DW_MAX_C];
    memset(pad, (int)p->a_zero, c);
    /* Bias and scale per block in the unpacked channel order, zero-padded past c. */
    _Alignas(32) int32_t pb[QS_DW_MAX_C];
    _Alignas(32) float ps[QS_DW_MAX_C];
    for (size_t b = 0; b * QS_DW_BLOCK < c; b++) {
        const size_t off = b * QS_DW_BLOCK, n = c - off < QS_DW_BLOCK ? c - off : QS_DW_BLOCK;
        int32_t tb[QS_DW_BLOCK] = {0};
        float ts[QS_DW_BLOCK] = {0};
        memcpy(tb, p->bias + off, n * sizeof *tb);
        memcpy(ts, p->scale + off, n * sizeof *ts);
        for (size_t q = 0; q < 4; q++) {
            _mm256_store_si256((__m256i *)(void *)(pb + off + 8 * q), qs_perm_i32(tb, q));
            _mm256_store_ps(ps + off + 8 * q, qs_perm_f32(ts, q));
        }
    }
    /* Rows of the window (NULL for padding), and tap offsets from the window's corner. */
    const uint8_t *rows[QS_Q8_DW_MAX_TAPS];
    size_t toff[QS_Q8_DW_MAX_TAPS + 1];
    bool all_rows = true;
    for (size_t kh = 0; kh < kh_n; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        const bool ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top && ih < p->in_h;
        rows[kh] = ok ? p->in + ih * p->in_w * c : NULL;
        all_rows = all_rows && ok;
        for (size_t kw = 0; kw < kw_n; kw++)
            toff[kh * kw_n + kw] = (kh * p->dilation_h * p->in_w + kw * p->dilation_w) * c;
    }
    /* An odd tap count pairs the last tap with itself; its packed weight is 0. */
    toff[taps] = toff[taps - 1];
    /* Output columns whose taps are all inside the image. */
    size_t ow_lo = (p->pad_left + p->stride_w - 1) / p->stride_w, ow_hi = 0;
    const size_t span = (kw_n - 1) * p->dilation_w;
    if (p->in_w > span)
        ow_hi = (p->in_w - span - 1 + p->pad_left) / p->stride_w + 1;
    if (ow_hi > p->out_w)
        ow_hi = p->out_w;
    if (!all_rows || ow_lo > ow_hi)
        ow_lo = ow_hi = 0;
    const uint8_t *base[QS_Q8_DW_MAX_TAPS + 1];
    const __m256i *wp = (const __m256i *)(const void *)p->w_packed;
    const qs_dw_out k = qs_dw_out_make(p);
    for (size_t ow = 0; ow < p->out_w; ow++) {
        const size_t iw0 = ow * p->stride_w - p->pad_left;
        if (ow >= ow_lo && ow < ow_hi) {
            const uint8_t *pix = rows[0] + iw0 * c;
#pragma GCC unroll 10
            for (size_t t = 0; t <= taps; t++)
                base[t] = pix + toff[t];
        } else {
            size_t kw0, kw1;
            qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, kw_n, p->in_w, &kw0, &kw1);
            for (size_t kh = 0, t = 0; kh < kh_n; kh++)
                for (size_t kw = 0; kw < kw_n; kw++, t++)
                    base[t] = rows[kh] && kw >= kw0 && kw < kw1
                                  ? rows[kh] + (iw0 + kw * p->dilation_w) * c
                                  : pad;
            base[taps] = base[taps - 1];
        }
        void *out_pixel = (unsigned char *)out_row + ow * c * esize;
        __m256i acc[4];
        for (size_t b = 0; b < full_blocks; b++) {
            const size_t off = b * QS_DW_BLOCK;
            qs_dw_block(base, off, true, QS_DW_BLOCK, pairs, wp + b * pairs * 4,
                        (const __m256i *)(const void *)(pb + off), acc);
            qs_dw_store(p, &k, acc, (const __m256 *)(const void *)(ps + off), out_pixel, off,
                        QS_DW_BLOCK);
        }
        if (tail) {
            const size_t off = full_blocks * QS_DW_BLOCK;
            qs_dw_block(base, off, false, tail, pairs, wp + full_blocks * pairs * 4,
                        (const __m256i *)(const void *)(pb + off), acc);
            qs_dw_store(p, &k, acc, (const __m256 *)(const void *)(ps + off), out_pixel, off,
                        tail);
        }
    }
}

void qs_q8_dwconv__avx2(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    if (p->c > QS_DW_MAX_C)
        qs_q8_dwconv__ref(p, oh, out_row);
    else if (p->kernel_h == 3 && p->kernel_w == 3)
        qs_dw_row(p, oh, out_row, 3, 3);
    else
        qs_dw_row(p, oh, out_row, p->kernel_h, p->kernel_w);
}
