/* Int8 kernel tests: every ISA the CPU has, element by element against naive int32/float math.
 * Built a second time with QS_Q8_TEST_AVX512_EMU: the AVX-512 VNNI sources compiled against SIMDe
 * replace the AVX-512 VNNI table, so their logic is checked on CPUs without AVX-512 too. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* First, so that the emulated sources declare their renamed kernels. */
#ifdef QS_Q8_TEST_AVX512_EMU
#if __has_include(<simde/x86/avx512.h>)
#define QS_EMULATE_AVX512 1
#include "kernels/avx512/q8_gemm_avx512vnni.c"
#include "kernels/avx512/q8_dwconv_avx512vnni.c"
#include "kernels/avx512/q8_elementwise_avx512.c"
static const qs_q8_kernels tq_emu_table = {
    .isa = QS_ISA_AVX512VNNI,
    .gemm_name = "qs_q8_gemm_8x32c4__avx512vnniemu",
    .mr = QS_Q8_GEMM_AVX512VNNI_MR,
    .nb = 2,
    .gemm_u8 = qs_q8_gemm_u8_8x32c4__avx512vnniemu,
    .gemm_f32 = qs_q8_gemm_f32_8x32c4__avx512vnniemu,
    .dwconv_name = "qs_q8_dwconv__avx512vnniemu",
    .dwconv = qs_q8_dwconv__ref,
    .dwconv_packed = qs_q8_dwconv__avx512vnniemu,
    .dw_pack_bytes = qs_q8_dw_pack_bytes__avx512vnniemu,
    .dw_pack = qs_q8_dw_pack__avx512vnniemu,
    .quantize = qs_q8_quantize__avx512emu,
    .dequantize = qs_q8_dequantize__avx512emu,
    .minmax = qs_f32_minmax__avx512emu,
    .add = qs_q8_add__avx512emu,
    .avgpool = qs_q8_avgpool__avx512emu,
};
#else
#define TQ_NO_SIMDE 1
#endif
static const qs_isa tq_isas[] = {QS_ISA_AVX512VNNI};
#endif

#include "kernels/q8.h"
#include "kernels/q8_ukernels.h"

#ifndef QS_Q8_TEST_AVX512_EMU
static const qs_isa tq_isas[] = {QS_ISA_REF, QS_ISA_AVX2, QS_ISA_AVX512, QS_ISA_AVX512VNNI};
#endif
#define TQ_N_ISAS ((int)(sizeof tq_isas / sizeof tq_isas[0]))

static uint64_t tq_rng = 0x2545f4914f6cdd1du;

static uint32_t tq_next(void) {
    tq_rng ^= tq_rng << 13;
    tq_rng ^= tq_rng >> 7;
    tq_rng ^= tq_rng << 17;
    return (uint32_t)(tq_rng >> 32);
}

/* Integers in [lo, hi]. */
static int32_t tq_int(int32_t lo, int32_t hi) {
    return lo + (int32_t)(tq_next() % (uint32_t)(hi - lo + 1));
}

/* Uniform float in [lo, hi). */
static float tq_float(float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(tq_next() >> 8) / (double)(1u << 24));
}

/* Random bytes; one pattern in four is extreme values only (0/255, -128/127). */
static void tq_fill_u8(uint8_t *p, size_t n, int mode) {
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(mode == 1 ? (tq_next() & 1 ? 255 : 0) : mode == 2 ? 255 : tq_int(0, 255));
}

static void tq_fill_s8(int8_t *p, size_t n, int mode) {
    for (size_t i = 0; i < n; i++)
        p[i] = (int8_t)(mode == 1   ? (tq_next() & 1 ? 127 : -128)
                        : mode == 2 ? -128
                                    : tq_int(-128, 127));
}

static void *tq_alloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* The ISA the loop index stands for, or false when the CPU lacks it (emulated: always there). */
static bool tq_isa(int i, qs_isa *isa) {
    *isa = tq_isas[i];
#ifdef QS_Q8_TEST_AVX512_EMU
    return true;
#else
    return *isa <= qs_cpu_detect_isa();
#endif
}

/* The specification of requantization: round half to even, add the zero point, then clamp. */
static uint8_t tq_requant(int64_t acc, float scale, int32_t zero, int32_t qmin, int32_t qmax) {
    const float v = nearbyintf((float)(int32_t)acc * scale) + (float)zero;
    const float c = v < (float)qmin ? (float)qmin : v > (float)qmax ? (float)qmax : v;
    return (uint8_t)c;
}

static float tq_dequant(int64_t acc, float scale, const qs_act *act) {
    float v = (float)(int32_t)acc * scale;
    if (act)
        qs_act_apply_f32(act, &v, 1);
    return v;
}

/* ---- GEMM ---- */

typedef struct {
    size_t m, n, k;
    int32_t a_zero, out_zero, qmin, qmax;
    float scale_lo, scale_hi;
    int data_mode;
    bool bias;
    bool u7; /* activations in 0..127, weights packed with qs_q8_pack_b_u7 */
    bool offsets; /* per-column weight offsets (qs_q8_pack_b_offset), a third of them 0 */
} tq_gemm_case;

/* 7-bit activations: 255 (the extremes) becomes 127, other bytes lose their top bit. */
static void tq_to_u7(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] == 255 ? 127 : p[i] & 127;
}

/* Weights packed for 7-bit activations must select the vpmaddubsw kernel where there is one. */
static void tq_check_u7_kernel(qs_isa isa, const qs_q8_packed_b *pb) {
    const qs_q8_kernels *kern = qs_q8_kernels_packed(pb);
    const bool want = isa == QS_ISA_AVX2 || isa == QS_ISA_AVX512;
    ck_assert_msg(pb->u7 == want && (strstr(kern->gemm_name, "u7") != NULL) == want,
                  "%s: 7-bit packing runs %s", qs_isa_name(isa), kern->gemm_name);
}

/* Weight offsets as uint8 weights with zero points need them: -255..255, every third 0. */
static int32_t *tq_offsets(size_t n) {
    int32_t *off = tq_alloc(n * sizeof *off);
    for (size_t j = 0; j < n; j++)
        off[j] = j % 3 == 1 ? 0 : tq_int(-255, 255);
    return off;
}

/* Run one GEMM case on an ISA (u8 and f32 outputs, with and without a pool) against naive math. */
static void tq_check_gemm(qs_isa isa, const tq_gemm_case *tc, qs_threadpool *pool,
                          const qs_act *act) {
    const size_t m = tc->m, n = tc->n, k = tc->k;
    const size_t lda = k + (m % 3), ldc = n + (n % 2);
    uint8_t *a = tq_alloc(m * lda);
    int8_t *w = tq_alloc(n * k);
    int32_t *bias = tq_alloc(n * sizeof *bias);
    float *scale = tq_alloc(n * sizeof *scale);
    uint8_t *c = tq_alloc(m * ldc);
    float *cf = tq_alloc(m * ldc * sizeof *cf);
    tq_fill_u8(a, m * lda, tc->data_mode);
    tq_fill_s8(w, n * k, tc->data_mode);
    if (tc->u7)
        tq_to_u7(a, m * lda);
    for (size_t j = 0; j < n; j++) {
        bias[j] = tq_int(-20000, 20000);
        scale[j] = tq_float(tc->scale_lo, tc->scale_hi);
    }
    int32_t *off = tc->offsets ? tq_offsets(n) : NULL;
    qs_q8_packed_b pb;
    if (tc->u7) {
        ck_assert_int_eq(qs_q8_pack_b_u7(isa, w, k, n, &pb), QS_OK);
        tq_check_u7_kernel(isa, &pb);
    } else {
        ck_assert_int_eq(qs_q8_pack_b_offset(isa, w, k, n, off, &pb), QS_OK);
    }
    const qs_q8_requant rq = {
        .bias = tc->bias ? bias : NULL,
        .scale = scale,
        .out_zero = tc->out_zero,
        .qmin = tc->qmin,
        .qmax = tc->qmax,
    };
    memset(c, 0xa5, m * ldc);
    qs_q8_gemm_u8(pool, m, a, lda, tc->a_zero, &pb, &rq, c, ldc);
    qs_q8_gemm_f32(pool, m, a, lda, tc->a_zero, &pb, &rq, act, cf, ldc);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            int64_t acc = tc->bias ? bias[j] : 0;
            const int32_t wo = off ? off[j] : 0;
            for (size_t kk = 0; kk < k; kk++)
                acc += ((int64_t)a[i * lda + kk] - tc->a_zero) * (w[j * k + kk] + wo);
            const uint8_t want = tq_requant(acc, scale[j], tc->out_zero, tc->qmin, tc->qmax);
            if (c[i * ldc + j] != want)
                ck_abort_msg("%s gemm u8 m=%zu n=%zu k=%zu az=%d: c[%zu][%zu] = %u, want %u",
                             qs_isa_name(isa), m, n, k, tc->a_zero, i, j, c[i * ldc + j], want);
            const float wf = tq_dequant(acc, scale[j], act);
            if (memcmp(&cf[i * ldc + j], &wf, sizeof wf) != 0)
                ck_abort_msg("%s gemm f32 m=%zu n=%zu k=%zu: c[%zu][%zu] = %.9g, want %.9g",
                             qs_isa_name(isa), m, n, k, i, j, (double)cf[i * ldc + j], (double)wf);
        }
        /* The padding between rows must be left alone. */
        for (size_t j = n; j < ldc; j++)
            ck_assert_uint_eq(c[i * ldc + j], 0xa5);
    }
    qs_q8_packed_b_free(&pb);
    free(off);
    free(a);
    free(w);
    free(bias);
    free(scale);
    free(c);
    free(cf);
}

static const size_t tq_sizes[] = {1, 3, 4, 5, 15, 16, 17, 31, 64, 100, 257};
#define TQ_N_SIZES (sizeof tq_sizes / sizeof tq_sizes[0])
static const int32_t tq_zeros[] = {0, 1, 128, 255};
static const int32_t tq_zeros7[] = {0, 1, 64, 127}; /* for activations in 0..127 */

/* Every M, N, K combination; zero points, bias and data patterns rotate through them. With u7,
 * activations and their zero point in 0..127 (odd K: the last group of four is partial). */
static void tq_gemm_shapes(qs_isa isa, bool u7) {
    size_t idx = 0;
    for (size_t mi = 0; mi < TQ_N_SIZES; mi++)
        for (size_t ni = 0; ni < TQ_N_SIZES; ni++)
            for (size_t ki = 0; ki < TQ_N_SIZES; ki++, idx++) {
                const tq_gemm_case tc = {
                    .m = tq_sizes[mi],
                    .n = tq_sizes[ni],
                    .k = tq_sizes[ki],
                    .a_zero = (u7 ? tq_zeros7 : tq_zeros)[idx % 4],
                    .out_zero = tq_zeros[(idx / 4) % 4],
                    .qmin = 0,
                    .qmax = u7 && (idx / 16) % 2 ? 127 : 255,
                    .scale_lo = 1e-4f,
                    .scale_hi = 4e-3f,
                    .data_mode = (int)(idx % 7 == 0),
                    .bias = idx % 3 != 0,
                    .u7 = u7,
                };
                tq_check_gemm(isa, &tc, NULL, NULL);
            }
}

START_TEST(test_gemm_shapes) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x1234567u + (uint64_t)_i;
    tq_gemm_shapes(isa, false);
}
END_TEST

START_TEST(test_gemm_u7_shapes) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x7777777u + (uint64_t)_i;
    tq_gemm_shapes(isa, true);
}
END_TEST

/* The int16 pair sums at their limits: 127 x -128 twice is -32512, 127 x 127 twice 32258; long K
 * so that the int32 sums get large too. */
START_TEST(test_gemm_u7_extremes) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x127128u + (uint64_t)_i;
    const size_t ks[] = {1, 2, 3, 4, 5, 8, 63, 64, 1000, 4099};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int mode = 1; mode <= 2; mode++) {
            const tq_gemm_case tc = {
                .m = 6, .n = 35, .k = ks[ki], .a_zero = tq_zeros7[ki % 4], .out_zero = 7,
                .qmin = 0, .qmax = 255, .scale_lo = 1e-7f, .scale_hi = 1e-5f,
                .data_mode = mode, .bias = true, .u7 = true,
            };
            tq_check_gemm(isa, &tc, NULL, NULL);
        }
    /* All weights 127 with all activations 127: the positive limit. */
    const size_t m = 5, n = 20, k = 77;
    uint8_t *a = tq_alloc(m * k), *c = tq_alloc(m * n);
    int8_t *w = tq_alloc(n * k);
    float *scale = tq_alloc(n * sizeof *scale);
    memset(a, 127, m * k);
    memset(w, 127, n * k);
    for (size_t j = 0; j < n; j++)
        scale[j] = 1.0f / 8192.0f;
    qs_q8_packed_b pb;
    ck_assert_int_eq(qs_q8_pack_b_u7(isa, w, k, n, &pb), QS_OK);
    const qs_q8_requant rq = {.scale = scale, .qmin = 0, .qmax = 255};
    qs_q8_gemm_u8(NULL, m, a, k, 0, &pb, &rq, c, n);
    const uint8_t want = tq_requant(127 * 127 * (int64_t)k, scale[0], 0, 0, 255);
    for (size_t i = 0; i < m * n; i++)
        ck_assert_uint_eq(c[i], want);
    /* Out of contract (bytes above 127): any bytes, but no crash. */
    memset(a, 255, m * k);
    qs_q8_gemm_u8(NULL, m, a, k, 0, &pb, &rq, c, n);
    qs_q8_packed_b_free(&pb);
    free(a);
    free(c);
    free(w);
    free(scale);
}
END_TEST

START_TEST(test_gemm_saturation) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x777u + (uint64_t)_i;
    /* Scales that push most outputs past 0 and 255, extreme data, fused clamps, ties. */
    const float scales[][2] = {{0.05f, 2.0f}, {0.5f, 0.5f}, {0.25f, 0.25f}, {1e-7f, 1e-6f}};
    const int32_t clamps[][2] = {{0, 255}, {0, 0}, {255, 255}, {10, 200}, {128, 255}};
    for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++)
        for (size_t q = 0; q < sizeof clamps / sizeof clamps[0]; q++)
            for (int mode = 0; mode < 3; mode++)
                for (size_t z = 0; z < 4; z++) {
                    const tq_gemm_case tc = {
                        .m = 9,
                        .n = 33,
                        .k = 7 + z * 30,
                        .a_zero = tq_zeros[z],
                        .out_zero = tq_zeros[(z + q) % 4],
                        .qmin = clamps[q][0],
                        .qmax = clamps[q][1],
                        .scale_lo = scales[s][0],
                        .scale_hi = scales[s][1],
                        .data_mode = mode,
                        .bias = mode != 2,
                    };
                    tq_check_gemm(isa, &tc, NULL, NULL);
                }
}
END_TEST

START_TEST(test_gemm_f32_acts) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x4242u + (uint64_t)_i;
    const qs_act acts[] = {
        {.kind = QS_ACT_NONE},
        {.kind = QS_ACT_RELU},
        {.kind = QS_ACT_CLIP, .min = -0.5f, .max = 6.0f},
        {.kind = QS_ACT_HARDSWISH},
        {.kind = QS_ACT_SIGMOID},
        {.kind = QS_ACT_SILU},
        {.kind = QS_ACT_LEAKY_RELU, .alpha = 0.1f},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        const tq_gemm_case tc = {
            .m = 13, .n = 47, .k = 45, .a_zero = 3, .qmax = 255,
            .scale_lo = 1e-4f, .scale_hi = 1e-3f, .bias = true,
        };
        tq_check_gemm(isa, &tc, NULL, &acts[i]);
    }
}
END_TEST

START_TEST(test_gemm_threads) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x999u + (uint64_t)_i;
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(3, &pool), QS_OK);
    /* Tall (split over M), short and wide (split over N), and tiny. */
    const size_t shapes[][3] = {{500, 40, 64}, {2, 300, 33}, {1, 1000, 96}, {7, 5, 3}, {49, 160, 960}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const tq_gemm_case tc = {
            .m = shapes[s][0], .n = shapes[s][1], .k = shapes[s][2], .a_zero = 128,
            .out_zero = 5, .qmax = 255, .scale_lo = 1e-4f, .scale_hi = 2e-3f, .bias = true,
        };
        tq_check_gemm(isa, &tc, pool, NULL);
    }
    qs_threadpool_free(pool);
}
END_TEST

/* Weights with offsets (uint8 weights with zero points): every shape class, threads, both
 * outputs, exact against w + offset. */
START_TEST(test_gemm_offsets) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x5eedu + (uint64_t)_i;
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(3, &pool), QS_OK);
    const qs_act relu = {.kind = QS_ACT_RELU};
    size_t idx = 0;
    for (size_t mi = 0; mi < TQ_N_SIZES; mi += 2)
        for (size_t ni = 0; ni < TQ_N_SIZES; ni++)
            for (size_t ki = 0; ki < TQ_N_SIZES; ki += 3, idx++) {
                const tq_gemm_case tc = {
                    .m = tq_sizes[mi], .n = tq_sizes[ni], .k = tq_sizes[ki],
                    .a_zero = tq_zeros[idx % 4], .out_zero = tq_zeros[(idx / 4) % 4],
                    .qmin = 0, .qmax = 255, .scale_lo = 1e-5f, .scale_hi = 1e-3f,
                    .data_mode = (int)(idx % 5 == 0), .bias = idx % 2 != 0, .offsets = true,
                };
                tq_check_gemm(isa, &tc, idx % 4 == 0 ? pool : NULL, idx % 3 ? NULL : &relu);
            }
    /* More rows than one block of row sums, split over threads. */
    const tq_gemm_case tall = {.m = 1000, .n = 40, .k = 24, .a_zero = 77, .out_zero = 128,
                               .qmax = 255, .scale_lo = 1e-5f, .scale_hi = 1e-3f, .bias = true,
                               .offsets = true};
    tq_check_gemm(isa, &tall, pool, NULL);
    tq_check_gemm(isa, &tall, NULL, NULL);
    qs_threadpool_free(pool);
}
END_TEST

/* Bounds outside the documented ranges (qmin < 0, qmax > 255, qmin > qmax, zero point past 255):
 * no meaning is promised, but every ISA must give the reference's bytes. */
START_TEST(test_gemm_out_of_contract) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x3131u + (uint64_t)_i;
    const size_t m = 11, n = 37, k = 29;
    uint8_t *a = tq_alloc(m * k), *c = tq_alloc(m * n), *cr = tq_alloc(m * n);
    int8_t *w = tq_alloc(n * k);
    float *scale = tq_alloc(n * sizeof *scale);
    tq_fill_u8(a, m * k, 0);
    tq_fill_s8(w, n * k, 0);
    for (size_t j = 0; j < n; j++)
        scale[j] = tq_float(0.001f, 0.05f);
    qs_q8_packed_b pb, pr;
    ck_assert_int_eq(qs_q8_pack_b(isa, w, k, n, &pb), QS_OK);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, k, n, &pr), QS_OK);
    const int32_t bounds[][3] = {{-7, 400, 10}, {200, 100, 3}, {-50, -10, 0}, {0, 255, 300},
                                 {0, 255, -20}, {300, 500, 128}};
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        const qs_q8_requant rq = {.scale = scale, .qmin = bounds[b][0], .qmax = bounds[b][1],
                                  .out_zero = bounds[b][2]};
        qs_q8_gemm_u8(NULL, m, a, k, 9, &pb, &rq, c, n);
        qs_q8_gemm_u8(NULL, m, a, k, 9, &pr, &rq, cr, n);
        ck_assert_msg(memcmp(c, cr, m * n) == 0, "%s: bounds %d..%d zero %d differ from ref",
                      qs_isa_name(isa), bounds[b][0], bounds[b][1], bounds[b][2]);
    }
    qs_q8_packed_b_free(&pb);
    qs_q8_packed_b_free(&pr);
    free(a);
    free(c);
    free(cr);
    free(w);
    free(scale);
}
END_TEST

START_TEST(test_gemm_errors) {
    qs_q8_packed_b pb;
    int8_t w[4] = {1, 2, 3, 4};
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, NULL, 4, 1, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, 0, 1, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, 4, 0, &pb), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, 4, 1, NULL), QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, (size_t)1 << 40, (size_t)1 << 40, &pb),
                     QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_pack_b(QS_ISA_REF, w, 4, 1, &pb), QS_OK);
    ck_assert_int_eq(pb.colsum[0], 10);
    qs_q8_packed_b_free(&pb);
    qs_q8_packed_b_free(&pb);
    qs_q8_packed_b_free(NULL);
}
END_TEST

/* Requantization on exact ties and past the int32 range, against the written-out rule. */
START_TEST(test_requant_rounding) {
    const struct {
        int32_t acc;
        float scale;
        int32_t zero;
        uint8_t want;
    } cases[] = {
        {5, 0.5f, 0, 2},      {7, 0.5f, 0, 4},     {-1, 0.5f, 10, 10}, {-3, 0.5f, 10, 8},
        {1, 0.5f, 0, 0},      {3, 0.5f, 0, 2},     {-5, 0.5f, 3, 1},   {10, 0.25f, 0, 2},
        {14, 0.25f, 0, 4},    {2, 0.25f, 0, 0},    {6, 0.25f, 0, 2},   {509, 0.5f, 0, 254},
        {511, 0.5f, 0, 255},  {513, 0.5f, 0, 255}, {-1, 1e30f, 0, 0},  {1, 1e30f, 0, 255},
        {INT32_MAX, 1.0f, 0, 255}, {INT32_MIN, 1.0f, 255, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const float lo = (float)(0 - cases[i].zero), hi = (float)(255 - cases[i].zero);
        ck_assert_uint_eq(qs_q8_requant_one(cases[i].acc, cases[i].scale, lo, hi, cases[i].zero),
                          cases[i].want);
        ck_assert_uint_eq(tq_requant(cases[i].acc, cases[i].scale, cases[i].zero, 0, 255),
                          cases[i].want);
    }
    /* Every tie k + 0.5 for k in [-300, 300] through each ISA's GEMM: acc = 2k + 1, scale 0.5. */
    for (int i = 0; i < TQ_N_ISAS; i++) {
        qs_isa isa;
        if (!tq_isa(i, &isa))
            continue;
        const size_t m = 601;
        uint8_t *a = tq_alloc(m);
        uint8_t *c = tq_alloc(m);
        int8_t w1 = 1;
        qs_q8_packed_b pb;
        ck_assert_int_eq(qs_q8_pack_b(isa, &w1, 1, 1, &pb), QS_OK);
        for (size_t r = 0; r < m; r++)
            a[r] = (uint8_t)(r % 256);
        for (int32_t zero = 0; zero <= 255; zero += 85) {
            for (size_t r = 0; r < m; r++) {
                /* acc = a - 100 + bias with bias = 2 * (r - 300) + 1 - (a - 100) */
                const int32_t want_acc = 2 * ((int32_t)r - 300) + 1;
                int32_t bias = want_acc - ((int32_t)a[r] - 100);
                const float sc = 0.5f;
                const qs_q8_requant rq = {.bias = &bias, .scale = &sc, .out_zero = zero, .qmax = 255};
                qs_q8_gemm_u8(NULL, 1, a + r, 1, 100, &pb, &rq, c + r, 1);
                ck_assert_uint_eq(c[r], tq_requant(want_acc, 0.5f, zero, 0, 255));
            }
        }
        qs_q8_packed_b_free(&pb);
        free(a);
        free(c);
    }
}
END_TEST

/* ---- convolution ---- */

typedef struct {
    size_t n, h, w, cin, cout, kh, kw, stride, dil, pt, pl, pb, pr, groups;
} tq_conv_case;

static const tq_conv_case tq_convs[] = {
    /* n  h   w cin cout kh kw s d pt pl pb pr g */
    {1, 7, 7, 16, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1},      /* pointwise */
    {2, 5, 3, 17, 33, 1, 1, 1, 1, 0, 0, 0, 0, 1},      /* pointwise, odd channels, batch */
    {1, 9, 9, 8, 20, 1, 1, 2, 1, 0, 0, 0, 0, 1},       /* pointwise stride 2 */
    {1, 15, 15, 3, 32, 3, 3, 2, 1, 1, 1, 1, 1, 1},     /* stem */
    {1, 16, 16, 3, 16, 3, 3, 2, 1, 0, 0, 1, 1, 1},     /* stem, TF-style asymmetric pad */
    {1, 12, 10, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 32},   /* depthwise s1 */
    {1, 13, 11, 64, 64, 3, 3, 2, 1, 1, 1, 1, 1, 64},   /* depthwise s2 */
    {1, 14, 14, 96, 96, 3, 3, 2, 1, 0, 0, 1, 1, 96},   /* depthwise s2, asymmetric pad */
    {2, 6, 9, 100, 100, 3, 3, 1, 1, 1, 1, 1, 1, 100},  /* depthwise, channel tail */
    {1, 5, 5, 17, 17, 3, 3, 1, 1, 2, 0, 0, 2, 17},     /* depthwise, odd padding */
    {1, 3, 2, 144, 144, 3, 3, 1, 1, 1, 1, 1, 1, 144},  /* depthwise, image smaller than kernel */
    {1, 11, 11, 24, 24, 3, 3, 1, 2, 2, 2, 2, 2, 24},   /* depthwise, dilation 2 */
    {1, 10, 10, 40, 40, 5, 5, 2, 1, 2, 2, 2, 2, 40},   /* depthwise 5x5 */
    {1, 8, 8, 2, 2, 3, 3, 1, 1, 1, 1, 1, 1, 2},        /* depthwise, two channels */
    {1, 7, 7, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 4},       /* grouped */
    {1, 6, 6, 8, 16, 1, 1, 1, 1, 0, 0, 0, 0, 2},       /* grouped pointwise */
    {1, 9, 8, 4, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4},        /* depthwise, multiplier 2 */
    {1, 10, 12, 5, 7, 3, 2, 2, 3, 1, 0, 3, 2, 1},      /* generic, dilation 3, odd kernel */
    {1, 4, 4, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},      /* generic 3x3, large K */
    {1, 20, 20, 1280, 1280, 3, 3, 2, 1, 0, 0, 1, 1, 1280}, /* depthwise, many channels */
    {1, 3, 4, 4100, 4100, 3, 3, 1, 1, 1, 1, 1, 1, 4100},   /* depthwise past the SIMD channel cap */
};

static size_t tq_out_size(size_t in, size_t k, size_t s, size_t d, size_t p0, size_t p1) {
    return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

/* offsets: per-output-channel weight offsets (qs_q8_conv2d_create_offset); u7: inputs in
 * 0..127 (qs_q8_conv2d_create_u7). */
static void tq_check_conv_with(qs_isa isa, const tq_conv_case *cc, int32_t a_zero,
                               int32_t out_zero, int32_t qmin, int32_t qmax, qs_threadpool *pool,
                               bool f32_out, bool offsets, bool u7) {
    qs_conv2d_shape s = {
        .n = cc->n, .in_h = cc->h, .in_w = cc->w, .in_c = cc->cin, .out_c = cc->cout,
        .kernel_h = cc->kh, .kernel_w = cc->kw, .stride_h = cc->stride, .stride_w = cc->stride,
        .dilation_h = cc->dil, .dilation_w = cc->dil, .pad_top = cc->pt, .pad_left = cc->pl,
        .groups = cc->groups,
    };
    s.out_h = tq_out_size(cc->h, cc->kh, cc->stride, cc->dil, cc->pt, cc->pb);
    s.out_w = tq_out_size(cc->w, cc->kw, cc->stride, cc->dil, cc->pl, cc->pr);
    const size_t cin_g = cc->cin / cc->groups, cout_g = cc->cout / cc->groups;
    const size_t in_n = cc->n * cc->h * cc->w * cc->cin;
    const size_t out_n = cc->n * s.out_h * s.out_w * cc->cout;
    const size_t w_n = cc->cout * cin_g * cc->kh * cc->kw;
    uint8_t *in = tq_alloc(in_n);
    int8_t *w = tq_alloc(w_n);
    int32_t *bias = tq_alloc(cc->cout * sizeof *bias);
    float *scale = tq_alloc(cc->cout * sizeof *scale);
    uint8_t *out = tq_alloc(out_n);
    float *outf = tq_alloc(out_n * sizeof *outf);
    tq_fill_u8(in, in_n, 0);
    tq_fill_s8(w, w_n, 0);
    if (u7)
        tq_to_u7(in, in_n);
    for (size_t o = 0; o < cc->cout; o++) {
        bias[o] = tq_int(-30000, 30000);
        scale[o] = tq_float(2e-4f, 2e-3f);
    }
    int32_t *off = offsets ? tq_offsets(cc->cout) : NULL;
    qs_q8_conv2d conv;
    if (u7)
        ck_assert_int_eq(qs_q8_conv2d_create_u7(isa, &s, w, bias, a_zero, &conv), QS_OK);
    else
        ck_assert_int_eq(qs_q8_conv2d_create_offset(isa, &s, w, bias, a_zero, off, &conv), QS_OK);
    if (u7 && conv.n_gemm)
        tq_check_u7_kernel(isa, &conv.gemm[0]);
    const int32_t threads = qs_threadpool_size(pool);
    const size_t sb = qs_q8_conv2d_scratch_bytes(&conv, &s);
    void *scratch = qs_kernels_alloc(sb * (size_t)threads);
    ck_assert_ptr_nonnull(scratch);
    /* The bias in rq must be ignored (it is folded at create). */
    const qs_q8_requant rq = {.bias = bias, .scale = scale, .out_zero = out_zero,
                              .qmin = qmin, .qmax = qmax};
    const qs_act relu = {.kind = QS_ACT_RELU};
    if (f32_out)
        qs_q8_conv2d_run(pool, &conv, &s, in, &rq, NULL, &relu, outf, scratch);
    else
        qs_q8_conv2d_run(pool, &conv, &s, in, &rq, out, NULL, NULL, scratch);
    for (size_t b = 0; b < cc->n; b++)
        for (size_t oh = 0; oh < s.out_h; oh++)
            for (size_t ow = 0; ow < s.out_w; ow++)
                for (size_t o = 0; o < cc->cout; o++) {
                    const size_t g = o / cout_g;
                    int64_t acc = bias[o];
                    for (size_t ci = 0; ci < cin_g; ci++)
                        for (size_t kh = 0; kh < cc->kh; kh++)
                            for (size_t kw = 0; kw < cc->kw; kw++) {
                                const long ih = (long)(oh * cc->stride + kh * cc->dil) - (long)cc->pt;
                                const long iw = (long)(ow * cc->stride + kw * cc->dil) - (long)cc->pl;
                                if (ih < 0 || iw < 0 || ih >= (long)cc->h || iw >= (long)cc->w)
                                    continue; /* padding: (a_zero - a_zero) * w */
                                const int32_t x =
                                    in[((b * cc->h + (size_t)ih) * cc->w + (size_t)iw) * cc->cin +
                                       g * cin_g + ci];
                                acc += (int64_t)(x - a_zero) *
                                       (w[((o * cin_g + ci) * cc->kh + kh) * cc->kw + kw] +
                                        (off ? off[o] : 0));
                            }
                    const size_t idx = ((b * s.out_h + oh) * s.out_w + ow) * cc->cout + o;
                    if (f32_out) {
                        const float want = tq_dequant(acc, scale[o], &relu);
                        if (memcmp(&outf[idx], &want, sizeof want) != 0)
                            ck_abort_msg("%s conv f32 case %zux%zux%zu g%zu k%zu s%zu: [%zu,%zu,%zu] "
                                         "= %.9g, want %.9g",
                                         qs_isa_name(isa), cc->h, cc->w, cc->cin, cc->groups, cc->kh,
                                         cc->stride, oh, ow, o, (double)outf[idx], (double)want);
                    } else {
                        const uint8_t want = tq_requant(acc, scale[o], out_zero, qmin, qmax);
                        if (out[idx] != want)
                            ck_abort_msg("%s conv case %zux%zux%zu->%zu g%zu k%zu s%zu d%zu az=%d: "
                                         "[%zu,%zu,%zu,%zu] = %u, want %u",
                                         qs_isa_name(isa), cc->h, cc->w, cc->cin, cc->cout,
                                         cc->groups, cc->kh, cc->stride, cc->dil, a_zero, b, oh, ow,
                                         o, out[idx], want);
                    }
                }
    qs_kernels_free(scratch);
    qs_q8_conv2d_free(&conv);
    free(off);
    free(in);
    free(w);
    free(bias);
    free(scale);
    free(out);
    free(outf);
}

static void tq_check_conv(qs_isa isa, const tq_conv_case *cc, int32_t a_zero, int32_t out_zero,
                          int32_t qmin, int32_t qmax, qs_threadpool *pool, bool f32_out) {
    tq_check_conv_with(isa, cc, a_zero, out_zero, qmin, qmax, pool, f32_out, false, false);
}

START_TEST(test_conv_cases) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0xabcdefu + (uint64_t)_i;
    for (size_t c = 0; c < sizeof tq_convs / sizeof tq_convs[0]; c++) {
        const int32_t az = tq_zeros[c % 4];
        tq_check_conv(isa, &tq_convs[c], az, tq_zeros[(c + 1) % 4], 0, 255, NULL, false);
        tq_check_conv(isa, &tq_convs[c], tq_zeros[(c + 2) % 4], 3, 3, 250, NULL, false);
        tq_check_conv(isa, &tq_convs[c], az, 0, 0, 255, NULL, true);
    }
}
END_TEST

START_TEST(test_conv_threads) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0xfeedu + (uint64_t)_i;
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(2, &pool), QS_OK);
    for (size_t c = 0; c < sizeof tq_convs / sizeof tq_convs[0]; c++)
        tq_check_conv(isa, &tq_convs[c], 128, 128, 0, 255, pool, c % 5 == 0);
    qs_threadpool_free(pool);
}
END_TEST

/* 7-bit inputs (and padding at zero points up to 127) through the pointwise, im2col and grouped
 * drivers, one and two threads. */
START_TEST(test_conv_u7_cases) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0x7c7c7cu + (uint64_t)_i;
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(2, &pool), QS_OK);
    for (size_t c = 0; c < sizeof tq_convs / sizeof tq_convs[0]; c++) {
        const int32_t az = tq_zeros7[c % 4];
        tq_check_conv_with(isa, &tq_convs[c], az, tq_zeros[(c + 1) % 4], 0, 127, NULL, false,
                           false, true);
        tq_check_conv_with(isa, &tq_convs[c], tq_zeros7[(c + 2) % 4], 0, 0, 255, pool, true,
                           false, true);
    }
    qs_threadpool_free(pool);
    qs_q8_conv2d conv;
    int8_t w[9] = {0};
    const qs_conv2d_shape s = {.n = 1, .in_h = 1, .in_w = 1, .in_c = 1, .out_c = 1, .out_h = 1,
                               .out_w = 1, .kernel_h = 1, .kernel_w = 1, .stride_h = 1,
                               .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 1};
    ck_assert_int_eq(qs_q8_conv2d_create_u7(isa, &s, w, NULL, 128, &conv),
                     QS_ERR_INVALID_ARGUMENT);
}
END_TEST

/* Weight offsets through every algorithm: 1x1 GEMM, im2col with padding (row sums include the
 * padding's zero points), groups, and depthwise (offset channels redone by the reference). */
START_TEST(test_conv_offsets) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    tq_rng = 0xc0ffeeu + (uint64_t)_i;
    qs_threadpool *pool = NULL;
    ck_assert_int_eq(qs_threadpool_create(2, &pool), QS_OK);
    for (size_t c = 0; c < sizeof tq_convs / sizeof tq_convs[0]; c++) {
        tq_check_conv_with(isa, &tq_convs[c], tq_zeros[c % 4], tq_zeros[(c + 1) % 4], 0, 255,
                           NULL, false, true, false);
        tq_check_conv_with(isa, &tq_convs[c], tq_zeros[(c + 2) % 4], 3, 3, 250, pool, false,
                           true, false);
        tq_check_conv_with(isa, &tq_convs[c], 128, 0, 0, 255, c % 2 ? pool : NULL, true, true,
                           false);
    }
    qs_threadpool_free(pool);
}
END_TEST

START_TEST(test_conv_errors) {
    qs_q8_conv2d conv;
    int8_t w[9] = {0};
    qs_conv2d_shape s = {.in_c = 3, .out_c = 2, .kernel_h = 1, .kernel_w = 1, .stride_h = 1,
                         .stride_w = 1, .dilation_h = 1, .dilation_w = 1, .groups = 2};
    ck_assert_int_eq(qs_q8_conv2d_create(QS_ISA_REF, &s, w, NULL, 0, &conv),
                     QS_ERR_INVALID_ARGUMENT);
    s.groups = 1;
    ck_assert_int_eq(qs_q8_conv2d_create(QS_ISA_REF, &s, w, NULL, 256, &conv),
                     QS_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_q8_conv2d_create(QS_ISA_REF, &s, NULL, NULL, 0, &conv),
                     QS_ERR_INVALID_ARGUMENT);
    s.kernel_h = (size_t)1 << 40;
    ck_assert_int_eq(qs_q8_conv2d_create(QS_ISA_REF, &s, w, NULL, 0, &conv),
                     QS_ERR_INVALID_ARGUMENT);
    qs_q8_conv2d_free(&conv);
    qs_q8_conv2d_free(NULL);
}
END_TEST

/* ---- elementwise ---- */

static const size_t tq_lengths[] = {0, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 4099};
#define TQ_N_LENGTHS (sizeof tq_lengths / sizeof tq_lengths[0])

START_TEST(test_quantize) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    tq_rng = 0x5151u + (uint64_t)_i;
    const float scales[] = {1.0f / 255.0f, 0.5f, 0.02f, 3.0f, 1e-3f};
    for (size_t li = 0; li < TQ_N_LENGTHS; li++) {
        const size_t n = tq_lengths[li];
        float *x = tq_alloc(n * sizeof *x);
        float *back = tq_alloc(n * sizeof *back);
        uint8_t *q = tq_alloc(n + 1);
        uint8_t *q2 = tq_alloc(n);
        for (size_t si = 0; si < sizeof scales / sizeof scales[0]; si++) {
            const float sc = scales[si];
            const int32_t zero = tq_zeros[(li + si) % 4];
            for (size_t i = 0; i < n; i++) {
                switch (i % 4) {
                case 0: x[i] = tq_float(-300.0f, 300.0f) * sc; break;
                case 1: x[i] = ((float)tq_int(-400, 400) + 0.5f) * sc; break; /* ties */
                case 2: x[i] = (float)tq_int(-300, 300) * sc; break;
                default: x[i] = i % 8 == 3 ? 1e30f : -1e30f; break;
                }
            }
            q[n] = 0x5a;
            kern->quantize(x, n, sc, zero, 255, q);
            ck_assert_uint_eq(q[n], 0x5a);
            for (size_t i = 0; i < n; i++)
                if (q[i] != qs_q8_quantize_one(x[i], sc, zero))
                    ck_abort_msg("%s quantize n=%zu: x[%zu]=%.9g scale %g zero %d -> %u, want %u",
                                 qs_isa_name(isa), n, i, (double)x[i], (double)sc, zero, q[i],
                                 qs_q8_quantize_one(x[i], sc, zero));
            /* Round trip: dequantize then quantize gives the same bytes. */
            kern->dequantize(q, n, sc, zero, back);
            for (size_t i = 0; i < n; i++) {
                const float want = (float)((int32_t)q[i] - zero) * sc;
                ck_assert(memcmp(&back[i], &want, sizeof want) == 0);
            }
            kern->quantize(back, n, sc, zero, 255, q2);
            ck_assert(n == 0 || memcmp(q, q2, n) == 0);
            /* 7-bit: the same values capped at 127 (zero points up to 127). */
            const int32_t z7 = zero < 127 ? zero : 127;
            kern->quantize(x, n, sc, z7, 127, q2);
            for (size_t i = 0; i < n; i++) {
                const uint8_t full = qs_q8_quantize_one(x[i], sc, z7);
                if (q2[i] != (full < 127 ? full : 127))
                    ck_abort_msg("%s quantize 7-bit n=%zu: x[%zu]=%.9g scale %g zero %d -> %u",
                                 qs_isa_name(isa), n, i, (double)x[i], (double)sc, z7, q2[i]);
            }
        }
        free(x);
        free(back);
        free(q);
        free(q2);
    }
    /* NaN quantizes to 0 in every ISA (defined here; ONNX leaves it open). */
    float nanv[20];
    uint8_t qn[20];
    for (size_t i = 0; i < 20; i++)
        nanv[i] = NAN;
    kern->quantize(nanv, 20, 0.1f, 7, 255, qn);
    for (size_t i = 0; i < 20; i++)
        ck_assert_uint_eq(qn[i], 0);
    ck_assert_uint_eq(qs_q8_quantize_one(NAN, 0.1f, 7), 0);
    ck_assert_uint_eq(qs_q8_quantize_one(INFINITY, 0.1f, 7), 255);
    ck_assert_uint_eq(qs_q8_quantize_one(-INFINITY, 0.1f, 7), 0);
}
END_TEST

START_TEST(test_minmax) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    tq_rng = 0x6161u + (uint64_t)_i;
    for (size_t li = 0; li < TQ_N_LENGTHS; li++) {
        const size_t n = tq_lengths[li];
        float *x = tq_alloc(n * sizeof *x);
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            x[i] = tq_float(-10.0f, 10.0f) + (i == n / 2 ? 50.0f : 0.0f);
            if (i % 11 == 5)
                x[i] = NAN;
            if (!isnan(x[i])) {
                lo = x[i] < lo ? x[i] : lo;
                hi = x[i] > hi ? x[i] : hi;
            }
        }
        float mn, mx;
        kern->minmax(x, n, &mn, &mx);
        ck_assert(mn == lo && mx == hi);
        free(x);
    }
}
END_TEST

START_TEST(test_add) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    tq_rng = 0x7171u + (uint64_t)_i;
    const float sc[][3] = {{0.1f, 0.05f, 0.12f}, {0.02f, 0.02f, 0.01f}, {1.0f, 1.0f, 0.5f}};
    for (size_t li = 0; li < TQ_N_LENGTHS; li++) {
        const size_t n = tq_lengths[li];
        uint8_t *a = tq_alloc(n), *b = tq_alloc(n), *y = tq_alloc(n + 1);
        tq_fill_u8(a, n, (int)(li % 3));
        tq_fill_u8(b, n, 0);
        for (size_t s = 0; s < sizeof sc / sizeof sc[0]; s++) {
            const int32_t za = tq_zeros[(li + s) % 4], zb = tq_zeros[(li + 2 * s) % 4];
            const int32_t zy = tq_zeros[(li + 3) % 4];
            const int32_t qmin = s == 1 ? zy : 0, qmax = s == 2 ? 200 : 255;
            const float ra = sc[s][0] / sc[s][2], rb = sc[s][1] / sc[s][2];
            y[n] = 0x5a;
            kern->add(a, za, ra, b, zb, rb, n, zy, (float)(qmin - zy), (float)(qmax - zy), y);
            ck_assert_uint_eq(y[n], 0x5a);
            for (size_t i = 0; i < n; i++) {
                const float va = (float)((int32_t)a[i] - za) * ra;
                const float vb = (float)((int32_t)b[i] - zb) * rb;
                const float v = nearbyintf(va + vb) + (float)zy;
                const uint8_t want =
                    (uint8_t)(v < (float)qmin ? (float)qmin : v > (float)qmax ? (float)qmax : v);
                if (y[i] != want)
                    ck_abort_msg("%s add n=%zu i=%zu: %u, want %u", qs_isa_name(isa), n, i, y[i],
                                 want);
            }
        }
        free(a);
        free(b);
        free(y);
    }
}
END_TEST

START_TEST(test_avgpool) {
    qs_isa isa;
    if (!tq_isa(_i, &isa))
        return;
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    tq_rng = 0x8181u + (uint64_t)_i;
    const size_t hws[] = {1, 4, 49, 50, 196};
    const size_t cs[] = {1, 3, 16, 17, 64, 100, 1280};
    for (size_t h = 0; h < sizeof hws / sizeof hws[0]; h++)
        for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
            const size_t hw = hws[h], c = cs[ci];
            uint8_t *x = tq_alloc(hw * c), *y = tq_alloc(c + 1);
            tq_fill_u8(x, hw * c, (int)((h + ci) % 3));
            const int32_t zx = tq_zeros[(h + ci) % 4], zy = tq_zeros[(h + 2 * ci) % 4];
            const float sx = 0.05f, sy = ci % 2 ? 0.02f : 0.1f;
            const float mult = sx / (sy * (float)hw);
            y[c] = 0x5a;
            kern->avgpool(x, hw, c, zx, mult, zy, y);
            ck_assert_uint_eq(y[c], 0x5a);
            for (size_t ch = 0; ch < c; ch++) {
                int64_t acc = 0;
                for (size_t i = 0; i < hw; i++)
                    acc += (int32_t)x[i * c + ch] - zx;
                ck_assert_uint_eq(y[ch], tq_requant(acc, mult, zy, 0, 255));
            }
            free(x);
            free(y);
        }
}
END_TEST

/* The public entry points (the process's ISA) agree with the reference. */
START_TEST(test_public_elementwise) {
    tq_rng = 0x9191u;
    const size_t n = 777;
    float *x = tq_alloc(n * sizeof *x), *y = tq_alloc(n * sizeof *y);
    uint8_t *q = tq_alloc(n), *qr = tq_alloc(n), *b = tq_alloc(n);
    for (size_t i = 0; i < n; i++)
        x[i] = tq_float(-2.3f, 2.6f);
    qs_q8_quantize(x, n, 0.02f, 120, q);
    qs_q8_quantize__ref(x, n, 0.02f, 120, 255, qr);
    ck_assert(memcmp(q, qr, n) == 0);
    qs_q8_dequantize(q, n, 0.02f, 120, y);
    for (size_t i = 0; i < n; i++)
        ck_assert(fabsf(y[i] - x[i]) <= 0.0100001f);
    qs_q8_quantize_max(x, n, 0.02f, 100, 127, q);
    qs_q8_quantize__ref(x, n, 0.02f, 100, 127, qr);
    ck_assert(memcmp(q, qr, n) == 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_le(q[i], 127);
    float mn, mx;
    qs_f32_minmax(x, n, &mn, &mx);
    qs_f32_minmax(x, 0, &mn, &mx);
    ck_assert(mn == INFINITY && mx == -INFINITY);
    tq_fill_u8(b, n, 0);
    qs_q8_add(q, 0.02f, 120, b, 0.03f, 7, n, 0.05f, 100, 100, 255, qr);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_ge(qr[i], 100);
    qs_q8_global_avgpool_nhwc(b, 3, 37, 7, 0.03f, 7, 0.01f, 9, qr);
    uint8_t zpool[7];
    qs_q8_global_avgpool_nhwc(b, 1, 0, 7, 0.03f, 7, 0.01f, 9, zpool);
    for (size_t i = 0; i < 7; i++)
        ck_assert_uint_eq(zpool[i], 9);
    free(x);
    free(y);
    free(q);
    free(qr);
    free(b);
}
END_TEST

static Suite *tq_suite(void) {
    Suite *s = suite_create("q8_kernels");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gemm_errors);
    tcase_add_test(tc, test_conv_errors);
    tcase_add_test(tc, test_requant_rounding);
    tcase_add_test(tc, test_public_elementwise);
    tcase_add_loop_test(tc, test_gemm_shapes, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_saturation, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_u7_shapes, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_u7_extremes, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_f32_acts, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_threads, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_out_of_contract, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_conv_cases, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_conv_threads, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_conv_u7_cases, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_gemm_offsets, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_conv_offsets, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_quantize, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_minmax, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_add, 0, TQ_N_ISAS);
    tcase_add_loop_test(tc, test_avgpool, 0, TQ_N_ISAS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
#ifdef TQ_NO_SIMDE
    printf("1..0 # SKIP SIMDe (libsimde-dev) is not installed\n");
    return 77;
#endif
#if defined(QS_Q8_TEST_AVX512_EMU) && !defined(TQ_NO_SIMDE)
    qs_q8_kernels_test_replace_avx512vnni(&tq_emu_table);
    printf("q8 kernels: AVX-512 VNNI sources emulated with SIMDe (%s)\n", tq_emu_table.gemm_name);
#endif
    printf("q8 kernels: CPU ISA %s\n", qs_isa_name(qs_cpu_detect_isa()));
    SRunner *sr = srunner_create(tq_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
