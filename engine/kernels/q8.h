/* Int8 kernels: uint8 activations x int8 weights with int32 accumulation, NHWC, and the
 * requantization, quantize/dequantize, elementwise and pooling kernels of the int8 path.
 * Every SIMD kernel (AVX2, AVX-512 VNNI) is bit-exact with the reference: accumulation is exact in
 * int32 and requantization is one float multiply, round-half-to-even, add, clamp — the same
 * operations in every ISA. */
#ifndef QS_KERNELS_Q8_H
#define QS_KERNELS_Q8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

/* Output stage of an int8 GEMM/conv, computed once at prepare time (never per call).
 *   acc[m][n] = sum_k (a[m][k] - a_zero) * w[k][n]          (exact int32)
 *   uint8 output:  q = clamp(nearbyint((float)(acc + bias[n]) * scale[n]) + out_zero, qmin, qmax)
 *   float output:  y = (float)(acc + bias[n]) * scale[n] (+ act applied by the caller's act)
 * The a_zero term is folded into the packed weights' column sums (see qs_q8_packed_b). */
typedef struct {
    const int32_t *bias;   /* N values, quantized at input_scale * weight_scale[n]; may be NULL */
    const float *scale;    /* N values: input_scale * weight_scale[n] / output_scale (uint8 out)
                            * or input_scale * weight_scale[n] (float out) */
    int32_t out_zero;      /* uint8 output zero point, 0..255 */
    int32_t qmin, qmax;    /* clamp in the quantized domain (fused Relu/Clip), within 0..255 */
} qs_q8_requant;

/* uint8 quantized value of x: clamp(nearbyint(x / scale) + zero, 0, 255), as ONNX
 * QuantizeLinear (division, not multiplication by a reciprocal, so results match exactly). */
static inline uint8_t qs_q8_quantize_one(float x, float scale, int32_t zero);

/* Weights packed for the u8 x s8 micro-kernels: K is padded to a multiple of 4 (VNNI groups of
 * four consecutive k), N to the panel width. colsum[n] = sum_k w[k][n], used to fold the
 * activation zero point: acc = sum a*w - a_zero * colsum[n]. */
typedef struct {
    size_t k, n;
    size_t k_padded, nr;
    qs_isa isa;
    int8_t *data;          /* owned, 64-byte aligned */
    int32_t *colsum;       /* owned, n values; includes k * offset[n] when there are offsets */
    int32_t *offset;       /* owned, n values, or NULL: see qs_q8_pack_b_offset */
    size_t bytes;
    bool u7;               /* packed for activations in 0..127 (qs_q8_pack_b_u7) */
} qs_q8_packed_b;

/* Pack int8 weights given as N x K row-major (Conv OI[HW] flattened with K = I*kh*kw in the
 * kernel's im2col order (kh, kw, c), or Gemm with transB). Errors: QS_ERR_NO_MEMORY. */
qs_status qs_q8_pack_b(qs_isa isa, const int8_t *w_nk, size_t k, size_t n, qs_q8_packed_b *out);
/* Same for weights that need more than int8: column n stands for w_nk[n][k] + offset[n] (int32,
 * e.g. uint8 weights w_u8 - zero stored as (w_u8 - 128) with offset 128 - zero). The GEMMs then
 * add offset[n] * sum_k (a[m][k] - a_zero) exactly, from row sums of A they compute; an all-zero
 * or NULL offset packs exactly as qs_q8_pack_b (no cost at run time). */
qs_status qs_q8_pack_b_offset(qs_isa isa, const int8_t *w_nk, size_t k, size_t n,
                              const int32_t *offset, qs_q8_packed_b *out);
/* Whether any of n weight offsets (or zero points; NULL: none) is non-zero; all-zero ones cost
 * nothing, so callers drop them. */
static inline bool qs_q8_any_offset(const int32_t *offset, size_t n) {
    for (size_t i = 0; offset && i < n; i++)
        if (offset[i] != 0)
            return true;
    return false;
}
/* Same for a GEMM whose A bytes are all in 0..127 (7-bit activations, "reduce_range"): the ISA
 * may use a faster kernel that is exact only then (AVX2: vpmaddubsw). A byte above 127 gives
 * wrong (saturated) results, never a crash. */
qs_status qs_q8_pack_b_u7(qs_isa isa, const int8_t *w_nk, size_t k, size_t n,
                          qs_q8_packed_b *out);
void qs_q8_packed_b_free(qs_q8_packed_b *p);

/* C[m][n] for rows [0, m): uint8 output with requantization. a is M x K uint8 (lda >= K). */
void qs_q8_gemm_u8(qs_threadpool *pool, size_t m, const uint8_t *a, size_t lda, int32_t a_zero,
                   const qs_q8_packed_b *b, const qs_q8_requant *rq, uint8_t *c, size_t ldc);
/* Same, float output (dynamic quantization, and the last layer). act may be NULL. */
void qs_q8_gemm_f32(qs_threadpool *pool, size_t m, const uint8_t *a, size_t lda, int32_t a_zero,
                    const qs_q8_packed_b *b, const qs_q8_requant *rq, const qs_act *act, float *c,
                    size_t ldc);

/* Int8 2-D convolution, NHWC uint8 activations; padding reads as the input zero point. */
typedef struct {
    qs_conv_algo algo;        /* as for fp32: 1x1 GEMM, depthwise, generic im2col */
    qs_conv2d_shape shape;
    qs_q8_packed_b *gemm;     /* per group */
    size_t n_gemm;
    int8_t *dw_weights;       /* DEPTHWISE: [kh * kw][C] */
    int32_t *dw_bias;         /* every algorithm: bias - a_zero * sum of the output channel's
                               * weights (out_c values; padding reads as a_zero) */
    int32_t a_zero;
    qs_isa isa;
    size_t bytes;
    int8_t *dw_packed;        /* DEPTHWISE: ISA-specific repack of dw_weights, or NULL */
    int32_t *dw_offset;       /* DEPTHWISE: per-channel weight offsets (out_c), or NULL */
} qs_q8_conv2d;

/* w_oihw: int8 weights in ONNX OIHW order. bias: int32, out_c values or NULL. */
qs_status qs_q8_conv2d_create(qs_isa isa, const qs_conv2d_shape *shape, const int8_t *w_oihw,
                              const int32_t *bias, int32_t a_zero, qs_q8_conv2d *out);
/* Same with out_c per-output-channel weight offsets (NULL: none): output channel o computes with
 * w_oihw[o] + w_offset[o], exactly (see qs_q8_pack_b_offset). Depthwise channels with a
 * non-zero offset are computed by the reference code after the ISA's kernel: keep offsets to the
 * channels whose weights do not fit int8 otherwise. */
qs_status qs_q8_conv2d_create_offset(qs_isa isa, const qs_conv2d_shape *shape,
                                     const int8_t *w_oihw, const int32_t *bias, int32_t a_zero,
                                     const int32_t *w_offset, qs_q8_conv2d *out);
/* Same for inputs whose bytes and a_zero are all in 0..127 (see qs_q8_pack_b_u7);
 * QS_ERR_INVALID_ARGUMENT when a_zero > 127. */
qs_status qs_q8_conv2d_create_u7(qs_isa isa, const qs_conv2d_shape *shape, const int8_t *w_oihw,
                                 const int32_t *bias, int32_t a_zero, qs_q8_conv2d *out);
void qs_q8_conv2d_free(qs_q8_conv2d *conv);
/* Per-thread scratch bytes (times n_threads in total, 64-byte aligned), as for fp32. */
size_t qs_q8_conv2d_scratch_bytes(const qs_q8_conv2d *conv, const qs_conv2d_shape *shape);
/* uint8 out (requant) or float out (out_f32 non-NULL, rq->scale as float-out scales).
 * rq->bias is not used: the bias given to create is folded into dw_bias. */
void qs_q8_conv2d_run(qs_threadpool *pool, const qs_q8_conv2d *conv, const qs_conv2d_shape *shape,
                      const uint8_t *in, const qs_q8_requant *rq, uint8_t *out_u8,
                      const qs_act *act, float *out_f32, void *scratch);

/* Elementwise. */
void qs_q8_quantize(const float *x, size_t n, float scale, int32_t zero, uint8_t *y);
/* Same clamped to [0, qmax] (7-bit activations: qmax 127); zero must be in [0, qmax]. */
void qs_q8_quantize_max(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                        uint8_t *y);
void qs_q8_dequantize(const uint8_t *x, size_t n, float scale, int32_t zero, float *y);
/* Min and max of n floats (dynamic quantization ranges). */
void qs_f32_minmax(const float *x, size_t n, float *min, float *max);
/* y = requant(sa * (a - za) + sb * (b - zb)), same shape, no broadcast; clamp to [qmin, qmax]. */
void qs_q8_add(const uint8_t *a, float sa, int32_t za, const uint8_t *b, float sb, int32_t zb,
               size_t n, float sy, int32_t zy, int32_t qmin, int32_t qmax, uint8_t *y);
/* Global average pool over H*W per channel of NHWC uint8, requantized to (sy, zy). */
void qs_q8_global_avgpool_nhwc(const uint8_t *x, size_t n, size_t hw, size_t c, float sx,
                               int32_t zx, float sy, int32_t zy, uint8_t *y);

static inline uint8_t qs_q8_quantize_one(float x, float scale, int32_t zero) {
    float q = __builtin_nearbyintf(x / scale) + (float)zero;
    /* Written so that NaN becomes 0 (converting NaN to an integer is undefined), as in the kernels. */
    q = q > 0.0f ? q : 0.0f;
    q = q < 255.0f ? q : 255.0f;
    return (uint8_t)q;
}

#endif
