/* Internal to engine/kernels: micro-kernel signatures, per-ISA dispatch tables, shared helpers. */
#ifndef QS_KERNELS_UKERNELS_H
#define QS_KERNELS_UKERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Epilogue applied while a tile is still in registers: + bias, + residual, then clamp to
 * [min, max] (covers none/relu/clip). Other activations run as a post-pass (act_row) on the
 * freshly stored tile, which is still in L1. */
typedef struct {
    float min, max;
} qs_clamp;

/* C[mr x nc] (+)= A[mr x kc] * W[kc x nc] where W is one packed panel (kc rows of nr floats,
 * only the first nc < = nr columns meaningful). Strides are in floats.
 * first: C starts from bias (or 0 when bias is NULL) instead of being loaded.
 * last: add residual (if non-NULL) and clamp before storing.
 * mr <= the kernel's MR, 1 <= nc <= NR, kc >= 1. */
typedef void (*qs_f32_gemm_ukernel_fn)(size_t mr, size_t nc, size_t kc, const float *a,
                                       size_t lda, const float *w, float *c, size_t ldc,
                                       const float *bias, const float *res, size_t ldr,
                                       bool first, bool last, const qs_clamp *clamp);

/* Depthwise convolution arguments for one image (NHWC, C channels). */
typedef struct {
    const float *in;      /* in_h x in_w x c */
    const float *w;       /* [c / w_block][kernel_h * kernel_w][w_block], zero-padded */
    const float *bias;    /* c floats (never NULL) */
    const float *zero;    /* at least c + 16 zeros (for taps in the padding), or NULL */
    size_t w_block;       /* channels per weight block: the table's dw_block */
    size_t c, in_h, in_w, out_w;
    size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    size_t pad_top, pad_left;
    qs_clamp clamp;
} qs_dw_args;

/* One output row oh: out_row[out_w x c] = clamp(dwconv + bias + res_row); res_row may be NULL. */
typedef void (*qs_f32_dwconv_row_fn)(const qs_dw_args *args, size_t oh, float *out_row,
                                     const float *res_row);

/* Apply a non-clamp activation to n floats in place. */
typedef void (*qs_f32_act_fn)(const qs_act *act, float *x, size_t n);

typedef struct {
    qs_isa isa;
    const char *gemm_name;
    size_t mr, nr;
    qs_f32_gemm_ukernel_fn gemm;
    const char *dwconv_name;
    qs_f32_dwconv_row_fn dwconv;
    size_t dw_block;    /* channels per block of packed depthwise weights (the vector width) */
    qs_f32_act_fn act;
} qs_f32_kernels;

/* The table for an ISA as asked (the caller makes sure the CPU has it); VNNI maps to AVX-512. */
const qs_f32_kernels *qs_f32_kernels_get(qs_isa isa);

/* Tests only, before any kernel runs and from one thread: make qs_f32_kernels_get(QS_ISA_AVX512)
 * return `table` (NULL restores the real one), to run the AVX-512 sources built against SIMDe. */
void qs_f32_kernels_test_replace_avx512(const qs_f32_kernels *table);

/* Reference kernels (ref/). */
void qs_f32_gemm__ref(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                      const float *w, float *c, size_t ldc, const float *bias, const float *res,
                      size_t ldr, bool first, bool last, const qs_clamp *clamp);
void qs_f32_dwconv__ref(const qs_dw_args *args, size_t oh, float *out_row, const float *res_row);
void qs_f32_act__ref(const qs_act *act, float *x, size_t n);
#define QS_F32_GEMM_REF_MR 4
#define QS_F32_GEMM_REF_NR 8

/* AVX2 + FMA kernels (avx2/, compiled with QS_AVX2_CFLAGS). */
void qs_f32_gemm_6x16__avx2(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                            const float *w, float *c, size_t ldc, const float *bias,
                            const float *res, size_t ldr, bool first, bool last,
                            const qs_clamp *clamp);
void qs_f32_dwconv__avx2(const qs_dw_args *args, size_t oh, float *out_row, const float *res_row);
void qs_f32_act__avx2(const qs_act *act, float *x, size_t n);

/* AVX-512 kernels (avx512/, compiled with QS_AVX512_CFLAGS). */
void qs_f32_gemm_8x32__avx512(size_t mr, size_t nc, size_t kc, const float *a, size_t lda,
                              const float *w, float *c, size_t ldc, const float *bias,
                              const float *res, size_t ldr, bool first, bool last,
                              const qs_clamp *clamp);
void qs_f32_dwconv__avx512(const qs_dw_args *args, size_t oh, float *out_row,
                           const float *res_row);
void qs_f32_act__avx512(const qs_act *act, float *x, size_t n);

/* Split an activation into the in-register clamp and whether a post-pass is needed. */
bool qs_act_to_clamp(const qs_act *act, qs_clamp *clamp);

/* Horizontal extent of a depthwise row: the kw taps of output column ow that land inside the
 * input are [*kw0, *kw1). Shared by all ISAs so that padding is handled the same way. */
void qs_dw_taps(size_t pos, size_t pad, size_t stride, size_t dilation, size_t kernel,
                size_t in_size, size_t *k0, size_t *k1);

/* Single-threaded GEMM over rows [0, m) and panels [p0, p1) of packed B, with K blocking. */
void qs_f32_gemm_block(const qs_f32_kernels *k, size_t m, const float *a, size_t lda,
                       const qs_f32_packed_b *b, size_t p0, size_t p1, const float *bias,
                       const float *res, size_t ldr, float *c, size_t ldc, const qs_clamp *clamp,
                       const qs_act *post);

/* Task split for threads: rows per task (a multiple of mr) and panels per task. */
void qs_f32_gemm_split(size_t m, size_t mr, size_t panels, int32_t n_threads, size_t *rows_per_task,
                       size_t *panels_per_task);

/* Checked size arithmetic (kernels do not include core/). */
static inline bool qs_kmul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool qs_kadd(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* 64-byte aligned allocation for packed weights (kernels do not depend on core). */
void *qs_kernels_alloc(size_t bytes);
void qs_kernels_free(void *p);

/* Shared by the fp32 and int8 convolution drivers: a shape the kernels accept (channels divide
 * by groups, every size bounded so index arithmetic cannot overflow), and a plain 1x1 stride-1
 * unpadded convolution. */
bool qs_conv2d_shape_ok(const qs_conv2d_shape *s);
bool qs_conv2d_is_pointwise(const qs_conv2d_shape *s);

#endif
