/* Internal to engine/kernels: int8 micro-kernel signatures, the per-ISA table, shared helpers. */
#ifndef QS_KERNELS_Q8_UKERNELS_H
#define QS_KERNELS_Q8_UKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/q8.h"
#include "kernels/ukernels.h"

/* Packed weights: panels of QS_Q8_NR columns, zero-padded in k (to a multiple of 4) and n. The
 * default layout (ref, VNNI) has, for each group of four consecutive k, QS_Q8_NR columns of 4
 * bytes (w[k..k+3][col]): 64 bytes per k-group, one zmm. A table may replace it (pack, pack_bytes:
 * AVX2 keeps int16 pairs); panel p starts at data + p * qs_q8_panel_bytes(). */
#define QS_Q8_NR 16
#define QS_Q8_KGROUP 4

/* Epilogue of one micro-kernel call; the per-column arrays are already offset to its first column,
 * rowsum to its first row.
 *   acc = sum_k a*w - a_zero * colsum + bias [+ rowsum[i] * offset[j]]   (int32, wrapping)
 *   u8 out:  q = (int)nearbyint(min(max(acc * scale, lo), hi)) + out_zero
 *            with lo = qmin - out_zero, hi = qmax - out_zero (clamping before rounding is the same
 *            as after: rounding is monotonic and the bounds are integers; NaN goes to lo, as
 *            vmaxps(v, lo) does)
 *   f32 out: y = min(max(acc * scale, lo), hi) with lo/hi the fused activation clamp. */
typedef struct {
    const int32_t *bias;   /* may be NULL */
    const float *scale;
    const int32_t *colsum;
    const int32_t *offset; /* per-column weight offsets, or NULL (then rowsum is not read) */
    const int32_t *rowsum; /* per row: sum_k a[i][k] (wrapping), when offset is set */
    int32_t a_zero;
    int32_t out_zero;
    float lo, hi;
} qs_q8_gemm_params;

/* C[mr x nc] for A (mr rows of k uint8, stride lda) times packed panels starting at w (panel p at
 * w + p * panel bytes). c is uint8_t* (u8) or float* (f32); ldc in elements.
 * 1 <= mr <= the kernel's MR, 1 <= nc <= MR's NB * QS_Q8_NR, k >= 1. Reads exactly k bytes of
 * each A row. */
typedef void (*qs_q8_gemm_ukernel_fn)(size_t mr, size_t nc, size_t k, const uint8_t *a,
                                      size_t lda, const int8_t *w, void *c, size_t ldc,
                                      const qs_q8_gemm_params *p);

/* Depthwise convolution of one NHWC image. */
typedef struct {
    const uint8_t *in;       /* in_h x in_w x c */
    const int8_t *w;         /* [kernel_h * kernel_w][c] */
    const int8_t *w_packed;  /* ISA-specific repack (qs_q8_conv2d.dw_packed) or NULL */
    const int32_t *bias;     /* c values: bias - a_zero * sum of the channel's weights */
    const float *scale;      /* c values */
    size_t c, in_h, in_w, out_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_left;
    int32_t a_zero;          /* the value padding reads as */
    int32_t out_zero;
    float lo, hi;            /* as in qs_q8_gemm_params */
    bool f32_out;
} qs_q8_dw_args;

/* One output row oh: out_row is out_w x c of uint8_t (or float when f32_out). */
typedef void (*qs_q8_dwconv_row_fn)(const qs_q8_dw_args *args, size_t oh, void *out_row);

/* Channel ch of one output row, weights w[.][ch] + offset, exactly (args->bias[ch] is the bias
 * minus a_zero * the sum of w[.][ch]); the reference for channels with a weight offset. */
void qs_q8_dwconv_channel__ref(const qs_q8_dw_args *args, size_t oh, size_t ch, int32_t offset,
                               void *out_row);

/* y = clamp(nearbyint(x / scale) + zero, 0, qmax), 0 <= zero <= qmax <= 255. */
typedef void (*qs_q8_quantize_fn)(const float *x, size_t n, float scale, int32_t zero,
                                  int32_t qmax, uint8_t *y);
typedef void (*qs_q8_dequantize_fn)(const uint8_t *x, size_t n, float scale, int32_t zero,
                                    float *y);
typedef void (*qs_f32_minmax_fn)(const float *x, size_t n, float *min, float *max);
/* y = (int)nearbyint(min(max((a - za) * ra + (b - zb) * rb, lo), hi)) + zy, with ra = sa / sy,
 * rb = sb / sy computed by the caller, lo = qmin - zy, hi = qmax - zy. */
typedef void (*qs_q8_add_fn)(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb,
                             float rb, size_t n, int32_t zy, float lo, float hi, uint8_t *y);
/* One image: y[c] = requant(sum_hw x - hw * zx) with mult = sx / (sy * hw), clamp [0, 255];
 * hw <= QS_Q8_POOL_MAX_HW so that the sums are exact in int32. */
typedef void (*qs_q8_avgpool_fn)(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult,
                                 int32_t zy, uint8_t *y);
#define QS_Q8_POOL_MAX_HW ((size_t)1 << 23)
#define QS_Q8_DW_MAX_TAPS 64

typedef struct {
    qs_isa isa;
    const char *gemm_name;
    size_t mr, nb;           /* rows and panels per micro-kernel call */
    /* Own weight layout (NULL: the default c4 one): bytes for panels of k_padded, and packing. */
    size_t (*pack_bytes)(size_t k_padded, size_t panels);
    void (*pack)(const int8_t *w_nk, size_t k, size_t n, int8_t *dst);
    qs_q8_gemm_ukernel_fn gemm_u8;
    qs_q8_gemm_ukernel_fn gemm_f32;
    const char *dwconv_name;
    /* Depthwise over w (layout [tap][c]), any kernel; the reference. */
    qs_q8_dwconv_row_fn dwconv;
    /* Depthwise over w_packed (kernels of at most QS_Q8_DW_MAX_TAPS taps), or NULL; the packing
     * is made at create time with dw_pack into dw_pack_bytes(c, taps) bytes. */
    qs_q8_dwconv_row_fn dwconv_packed;
    size_t (*dw_pack_bytes)(size_t c, size_t taps);
    void (*dw_pack)(const int8_t *w_tc, size_t c, size_t taps, int8_t *dst);
    qs_q8_quantize_fn quantize;
    qs_q8_dequantize_fn dequantize;
    qs_f32_minmax_fn minmax;
    qs_q8_add_fn add;
    qs_q8_avgpool_fn avgpool;
} qs_q8_kernels;

/* The table for an ISA as asked (the caller makes sure the CPU has it). AVX-512 without VNNI uses
 * the AVX2 kernels. */
const qs_q8_kernels *qs_q8_kernels_get(qs_isa isa);
/* The table for activations known to be in 0..127: its GEMM may rely on it (AVX2: vpmaddubsw);
 * ISAs without such a kernel return their qs_q8_kernels_get table. */
const qs_q8_kernels *qs_q8_kernels_get_u7(qs_isa isa);
/* The table weights were packed for (qs_q8_pack_b or qs_q8_pack_b_u7). */
const qs_q8_kernels *qs_q8_kernels_packed(const qs_q8_packed_b *b);

/* Bytes of one packed panel of k_padded rows in a table's layout. */
size_t qs_q8_panel_bytes(const qs_q8_kernels *kern, size_t k_padded);

/* A GEMM call as the drivers see it (pointers are for column 0 of B). */
typedef struct {
    const qs_q8_kernels *kern;
    const qs_q8_packed_b *b;
    const int32_t *bias;   /* may be NULL */
    const float *scale;
    int32_t a_zero, out_zero;
    float lo, hi;
    bool f32_out;
    const qs_act *post;    /* non-clamp activation applied after the f32 epilogue, or NULL */
} qs_q8_gemm_op;

/* Rows [0, m) of A against panels [p0, p1) of B, single-threaded, cache-blocked. c points at
 * row 0, column 0 (uint8_t or float); ldc in elements. */
void qs_q8_gemm_block(const qs_q8_gemm_op *op, size_t m, const uint8_t *a, size_t lda, size_t p0,
                      size_t p1, void *c, size_t ldc);
/* Task split: rows per task (a multiple of mr) and panels per task (a multiple of nb). */
void qs_q8_gemm_split(size_t m, size_t mr, size_t nb, size_t panels, int32_t n_threads,
                      size_t *rows_per_task, size_t *panels_per_task);
/* The whole GEMM over the pool. */
void qs_q8_gemm_run(qs_threadpool *pool, const qs_q8_gemm_op *op, size_t m, const uint8_t *a,
                    size_t lda, void *c, size_t ldc);

/* Zero points and clamp bounds of a uint8 output forced into 0..255, so that every ISA agrees
 * even on parameters outside the documented ranges (SIMD packs saturate, C casts wrap). */
static inline int32_t qs_q8_clamp_u8(int32_t v) {
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* The shared requantization of one value (see qs_q8_gemm_params). */
static inline uint8_t qs_q8_requant_one(int32_t acc, float scale, float lo, float hi,
                                        int32_t zero) {
    float v = (float)acc * scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (uint8_t)((int32_t)__builtin_nearbyintf(v) + zero);
}

/* The same clamp split for SIMD epilogues: min(hi, v) before rounding (keeping a NaN, which the
 * conversion turns into INT_MIN), then the saturating packs and a byte max with this lower bound;
 * bounds out of order give hi everywhere, as min(max(v, lo), hi) does. */
static inline uint8_t qs_q8_qmin_byte(float lo, float hi, int32_t zero) {
    return (uint8_t)((int32_t)(lo < hi ? lo : hi) + zero);
}

static inline float qs_q8_dequant_acc(int32_t acc, float scale, float lo, float hi) {
    float v = (float)acc * scale;
    v = v > lo ? v : lo;
    return v < hi ? v : hi;
}

/* rowsum[i] * offset[j] (wrapping), the term of weights with offsets; 0 without. */
static inline uint32_t qs_q8_offset_term(const qs_q8_gemm_params *p, size_t i, size_t j) {
    return p->offset ? (uint32_t)p->rowsum[i] * (uint32_t)p->offset[j] : 0u;
}

/* Wrapping sum of the k bytes of each of rows rows of A (the row sums of qs_q8_gemm_params). */
void qs_q8_row_sums(const uint8_t *a, size_t lda, size_t rows, size_t k, int32_t *out);

/* acc + bias - a_zero * colsum with int32 wrap-around (what SIMD integer adds do). */
static inline int32_t qs_q8_fold(uint32_t acc, int32_t bias, int32_t a_zero, int32_t colsum) {
    return (int32_t)(acc + (uint32_t)bias - (uint32_t)a_zero * (uint32_t)colsum);
}

/* Reference kernels (ref/). */
#define QS_Q8_GEMM_REF_MR 4
void qs_q8_gemm_u8_4x16c4__ref(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                               const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p);
void qs_q8_gemm_f32_4x16c4__ref(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                const int8_t *w, void *c, size_t ldc,
                                const qs_q8_gemm_params *p);
void qs_q8_dwconv__ref(const qs_q8_dw_args *args, size_t oh, void *out_row);
void qs_q8_quantize__ref(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                         uint8_t *y);
void qs_q8_dequantize__ref(const uint8_t *x, size_t n, float scale, int32_t zero, float *y);
void qs_f32_minmax__ref(const float *x, size_t n, float *min, float *max);
void qs_q8_add__ref(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb, float rb,
                    size_t n, int32_t zy, float lo, float hi, uint8_t *y);
void qs_q8_avgpool__ref(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult, int32_t zy,
                        uint8_t *y);

/* AVX2 kernels (avx2/, compiled with QS_AVX2_CFLAGS). */
#define QS_Q8_GEMM_AVX2_MR 4
void qs_q8_gemm_u8_4x64c2__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                const int8_t *w, void *c, size_t ldc, const qs_q8_gemm_params *p);
void qs_q8_gemm_f32_4x64c2__avx2(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                 const int8_t *w, void *c, size_t ldc,
                                 const qs_q8_gemm_params *p);
/* Activations in 0..127 only (vpmaddubsw cannot saturate), default c4 packing. */
void qs_q8_gemm_u8_4x64c4__avx2u7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                  const int8_t *w, void *c, size_t ldc,
                                  const qs_q8_gemm_params *p);
void qs_q8_gemm_f32_4x64c4__avx2u7(size_t mr, size_t nc, size_t k, const uint8_t *a, size_t lda,
                                   const int8_t *w, void *c, size_t ldc,
                                   const qs_q8_gemm_params *p);
size_t qs_q8_pack_bytes__avx2(size_t k_padded, size_t panels);
void qs_q8_pack__avx2(const int8_t *w_nk, size_t k, size_t n, int8_t *dst);
void qs_q8_dwconv__avx2(const qs_q8_dw_args *args, size_t oh, void *out_row);
size_t qs_q8_dw_pack_bytes__avx2(size_t c, size_t taps);
void qs_q8_dw_pack__avx2(const int8_t *w_tc, size_t c, size_t taps, int8_t *dst);
void qs_q8_quantize__avx2(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                          uint8_t *y);
void qs_q8_dequantize__avx2(const uint8_t *x, size_t n, float scale, int32_t zero, float *y);
void qs_f32_minmax__avx2(const float *x, size_t n, float *min, float *max);
void qs_q8_add__avx2(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb, float rb,
                     size_t n, int32_t zy, float lo, float hi, uint8_t *y);
void qs_q8_avgpool__avx2(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult, int32_t zy,
                         uint8_t *y);

/* AVX-512 kernels (avx512/, compiled with QS_AVX512_CFLAGS). */
#define QS_Q8_GEMM_AVX512VNNI_MR 8
void qs_q8_gemm_u8_8x32c4__avx512vnni(size_t mr, size_t nc, size_t k, const uint8_t *a,
                                      size_t lda, const int8_t *w, void *c, size_t ldc,
                                      const qs_q8_gemm_params *p);
void qs_q8_gemm_f32_8x32c4__avx512vnni(size_t mr, size_t nc, size_t k, const uint8_t *a,
                                       size_t lda, const int8_t *w, void *c, size_t ldc,
                                       const qs_q8_gemm_params *p);
void qs_q8_dwconv__avx512vnni(const qs_q8_dw_args *args, size_t oh, void *out_row);
size_t qs_q8_dw_pack_bytes__avx512vnni(size_t c, size_t taps);
void qs_q8_dw_pack__avx512vnni(const int8_t *w_tc, size_t c, size_t taps, int8_t *dst);
void qs_q8_quantize__avx512(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                            uint8_t *y);
void qs_q8_dequantize__avx512(const uint8_t *x, size_t n, float scale, int32_t zero, float *y);
void qs_f32_minmax__avx512(const float *x, size_t n, float *min, float *max);
void qs_q8_add__avx512(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb,
                       float rb, size_t n, int32_t zy, float lo, float hi, uint8_t *y);
void qs_q8_avgpool__avx512(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult,
                           int32_t zy, uint8_t *y);

/* Tests only: use this table for QS_ISA_AVX512VNNI (NULL restores the built-in one), e.g. the
 * AVX-512 sources compiled against SIMDe on a CPU without AVX-512. */
void qs_q8_kernels_test_replace_avx512vnni(const qs_q8_kernels *table);

#endif
