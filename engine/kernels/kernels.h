/* Compute kernels: CPU dispatch, the thread pool, and fp32 GEMM / convolution kernels (NHWC).
 * Each family has a portable reference (kernels/ref/) and SIMD versions (kernels/avx2/,
 * kernels/avx512/) chosen once per process by CPUID; results agree with the reference to rounding. */
#ifndef QS_KERNELS_H
#define QS_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quantserve/engine.h"

/* ---- CPU features ---- */

/* What the CPU and OS support (CPUID + XGETBV), ignoring QUANTSERVE_ISA. */
qs_isa qs_cpu_detect_isa(void);
/* qs_engine_isa() (public) applies the QUANTSERVE_ISA cap to this, once. */

/* ---- thread pool ---- */

typedef struct qs_threadpool qs_threadpool;

/* A pool that runs tasks on n_threads threads: the caller plus n_threads - 1 workers. */
qs_status qs_threadpool_create(int32_t n_threads, qs_threadpool **out);
void qs_threadpool_free(qs_threadpool *pool);
int32_t qs_threadpool_size(const qs_threadpool *pool);
/* Call fn(ctx, task, thread_index) for task in [0, n_tasks), spread over the threads; returns
 * when all are done. thread_index < qs_threadpool_size(); the calling thread takes part. */
typedef void (*qs_task_fn)(void *ctx, size_t task, int32_t thread_index);
void qs_threadpool_run(qs_threadpool *pool, qs_task_fn fn, void *ctx, size_t n_tasks);

/* ---- activation epilogue, fused into kernels ---- */

typedef enum {
    QS_ACT_NONE = 0,
    QS_ACT_RELU,        /* max(x, 0) */
    QS_ACT_CLIP,        /* min(max(x, min), max) */
    QS_ACT_LEAKY_RELU,  /* x < 0 ? alpha * x : x */
    QS_ACT_HARDSIGMOID, /* max(0, min(1, alpha * x + beta)) */
    QS_ACT_HARDSWISH,   /* x * max(0, min(1, x / 6 + 0.5)) */
    QS_ACT_SIGMOID,     /* 1 / (1 + exp(-x)) */
    QS_ACT_SILU,        /* x * sigmoid(x) (EfficientNet's Conv -> Sigmoid -> Mul) */
} qs_act_kind;

typedef struct {
    qs_act_kind kind;
    float min, max;     /* CLIP */
    float alpha, beta;  /* LEAKY_RELU, HARDSIGMOID */
} qs_act;

/* Apply an activation to n floats in place with the engine ISA's vector loop (for ops that do not
 * fuse it into a kernel). */
void qs_act_apply_f32(const qs_act *act, float *x, size_t n);

/* ---- fp32 GEMM with B (the weights) packed once at load ---- */

typedef struct {
    size_t k, n;        /* B is logically K x N */
    qs_isa isa;         /* micro-kernel the packing was made for */
    size_t nr;          /* panel width */
    float *data;        /* owned, 64-byte aligned */
    size_t bytes;
} qs_f32_packed_b;

/* Pack B. If b_is_nk, b is N x K row-major (ldb >= K), e.g. Conv OIHW 1x1 weights or Gemm with
 * transB; else K x N row-major (ldb >= N). Errors: QS_ERR_NO_MEMORY, QS_ERR_INVALID_ARGUMENT. */
qs_status qs_f32_pack_b(qs_isa isa, const float *b, size_t k, size_t n, size_t ldb, bool b_is_nk,
                        qs_f32_packed_b *out);
void qs_f32_packed_b_free(qs_f32_packed_b *p);

/* C = act(A * B + bias + residual) for rows [0, m) of A (M x K, lda >= K), C (M x N, ldc >= N).
 * bias (N floats) and residual (M x N, ldr) may be NULL. Splits work over the pool (pool may be
 * NULL: single thread). Does not allocate. */
void qs_f32_gemm(qs_threadpool *pool, size_t m, const float *a, size_t lda,
                 const qs_f32_packed_b *b, const float *bias, const float *residual, size_t ldr,
                 float *c, size_t ldc, const qs_act *act);

/* ---- fp32 2-D convolution, NHWC activations ---- */

typedef struct {
    size_t n, in_h, in_w, in_c;
    size_t out_h, out_w, out_c;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t dilation_h, dilation_w;
    size_t pad_top, pad_left;    /* bottom/right padding follows from out_h/out_w */
    size_t groups;
} qs_conv2d_shape;

typedef enum {
    QS_CONV_GEMM_1X1 = 0,  /* 1x1, stride 1, no pad, groups 1: a plain GEMM over N*H*W rows */
    QS_CONV_DEPTHWISE,     /* groups == in_c == out_c */
    QS_CONV_GENERIC,       /* anything else: im2col tiles + GEMM, per group */
} qs_conv_algo;

typedef struct {
    qs_conv_algo algo;
    qs_conv2d_shape shape;    /* as packed: n, in_h/in_w/out_h/out_w are set again per run */
    qs_f32_packed_b *gemm;    /* GEMM_1X1 / GENERIC: one per group */
    size_t n_gemm;
    float *dw_weights;        /* DEPTHWISE: [C / B][kernel_h * kernel_w][B], B = the ISA's
                                 vector width, zero-padded (owned, aligned) */
    float *bias;              /* out_c floats (owned, aligned); zeros when the conv had none */
    qs_isa isa;
    size_t bytes;             /* resident bytes of everything above */
} qs_f32_conv2d;

/* Choose the algorithm and pack weights given in ONNX OIHW order (O = out_c, I = in_c / groups);
 * bias may be NULL. Only the channel/kernel/stride/dilation/pad/group fields of shape matter. */
qs_status qs_f32_conv2d_create(qs_isa isa, const qs_conv2d_shape *shape, const float *w_oihw,
                               const float *bias, qs_f32_conv2d *out);
void qs_f32_conv2d_free(qs_f32_conv2d *conv);

/* Per-thread scratch bytes qs_f32_conv2d_run needs (times n_threads in total). */
size_t qs_f32_conv2d_scratch_bytes(const qs_f32_conv2d *conv, const qs_conv2d_shape *shape);

/* out (N, out_h, out_w, out_c) = act(conv(in (N, in_h, in_w, in_c)) + bias + residual), residual
 * NHWC like out or NULL. scratch: n_threads * qs_f32_conv2d_scratch_bytes(...), 64-byte aligned. */
void qs_f32_conv2d_run(qs_threadpool *pool, const qs_f32_conv2d *conv,
                       const qs_conv2d_shape *shape, const float *in, const float *residual,
                       float *out, const qs_act *act, void *scratch);

#endif
