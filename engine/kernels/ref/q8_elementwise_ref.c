/* Reference int8 elementwise kernels: quantize, dequantize, min/max, add, global average pool. */
#include <math.h>

#include "kernels/q8_ukernels.h"

void qs_q8_quantize__ref(const float *x, size_t n, float scale, int32_t zero, int32_t qmax,
                         uint8_t *y) {
    /* Clamp before rounding (equal for finite values, see qs_q8_gemm_params); NaN gives 0. */
    const float lo = (float)-zero, hi = (float)(qmax - zero);
    for (size_t i = 0; i < n; i++) {
        float v = x[i] / scale;
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        y[i] = (uint8_t)((int32_t)__builtin_nearbyintf(v) + zero);
    }
}

void qs_q8_dequantize__ref(const uint8_t *x, size_t n, float scale, int32_t zero, float *y) {
    for (size_t i = 0; i < n; i++)
        y[i] = (float)((int32_t)x[i] - zero) * scale;
}

void qs_f32_minmax__ref(const float *x, size_t n, float *min, float *max) {
    /* NaNs are skipped (comparisons with them are false), as vminps(x, acc) does. */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *min = lo;
    *max = hi;
}

void qs_q8_add__ref(const uint8_t *a, int32_t za, float ra, const uint8_t *b, int32_t zb, float rb,
                    size_t n, int32_t zy, float lo, float hi, uint8_t *y) {
    for (size_t i = 0; i < n; i++) {
        /* Separate statements: no contraction into an FMA, whatever the compiler's default. */
        const float va = (float)((int32_t)a[i] - za) * ra;
        const float vb = (float)((int32_t)b[i] - zb) * rb;
        float v = va + vb;
        v = v > lo ? v : lo;
        v = v < hi ? v : hi;
        y[i] = (uint8_t)((int32_t)__builtin_nearbyintf(v) + zy);
    }
}

void qs_q8_avgpool__ref(const uint8_t *x, size_t hw, size_t c, int32_t zx, float mult, int32_t zy,
                        uint8_t *y) {
    const float lo = (float)-zy, hi = (float)(255 - zy);
    for (size_t ch = 0; ch < c; ch++) {
        uint32_t sum = 0;
        for (size_t i = 0; i < hw; i++)
            sum += x[i * c + ch];
        const int32_t acc = (int32_t)(sum - (uint32_t)hw * (uint32_t)zx);
        y[ch] = qs_q8_requant_one(acc, mult, lo, hi, zy);
    }
}
