/* Int8 elementwise entry points: per-call constants, then the kernel of the process's ISA. */
#include "kernels/q8_ukernels.h"

void qs_q8_quantize(const float *x, size_t n, float scale, int32_t zero, uint8_t *y) {
    qs_q8_quantize_max(x, n, scale, zero, 255, y);
}

void qs_q8_quantize_max(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                        uint8_t *y) {
    /* Forced into 0 <= zero <= qmax <= 255 so that every ISA agrees (as the GEMM bounds). */
    qmax = qs_q8_clamp_u8(qmax);
    zero = qs_q8_clamp_u8(zero);
    zero = zero < qmax ? zero : qmax;
    qs_q8_kernels_get(qs_engine_isa())->quantize(x, n, scale, zero, qmax, y);
}

void qs_q8_dequantize(const uint8_t *x, size_t n, float scale, int32_t zero, float *y) {
    qs_q8_kernels_get(qs_engine_isa())->dequantize(x, n, scale, zero, y);
}

void qs_f32_minmax(const float *x, size_t n, float *min, float *max) {
    qs_q8_kernels_get(qs_engine_isa())->minmax(x, n, min, max);
}

void qs_q8_add(const uint8_t *a, float sa, int32_t za, const uint8_t *b, float sb, int32_t zb,
               size_t n, float sy, int32_t zy, int32_t qmin, int32_t qmax, uint8_t *y) {
    /* y = round((a - za) * (sa / sy) + (b - zb) * (sb / sy)) + zy: two ratios per call. */
    zy = qs_q8_clamp_u8(zy);
    const float lo = (float)(qs_q8_clamp_u8(qmin) - zy), hi = (float)(qs_q8_clamp_u8(qmax) - zy);
    qs_q8_kernels_get(qs_engine_isa())->add(a, za, sa / sy, b, zb, sb / sy, n, zy, lo, hi, y);
}

void qs_q8_global_avgpool_nhwc(const uint8_t *x, size_t n, size_t hw, size_t c, float sx,
                               int32_t zx, float sy, int32_t zy, uint8_t *y) {
    const qs_q8_kernels *kern = qs_q8_kernels_get(qs_engine_isa());
    /* hw == 0 has no mean: every output is the zero point. Past 2^23 the int32 sums could wrap. */
    const float mult = hw ? sx / (sy * (float)hw) : 0.0f;
    const qs_q8_avgpool_fn fn = hw <= QS_Q8_POOL_MAX_HW ? kern->avgpool : qs_q8_avgpool__ref;
    for (size_t i = 0; i < n; i++)
        fn(x + i * hw * c, hw, c, zx, mult, zy, y + i * c);
}
