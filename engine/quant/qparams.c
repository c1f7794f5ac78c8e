/* Quantization parameter helpers: affine uint8 parameters from ranges, symmetric int8 weights,
 * and reading scalar scale/zero-point constants. */
#include <math.h>
#include <string.h>

#include "quant/quant.h"

void qs_quant_params_from_range(float lo, float hi, bool symmetric, float *scale, int32_t *zero) {
    lo = lo < 0.0f ? lo : 0.0f; /* zero must be exactly representable (padding, ReLU) */
    hi = hi > 0.0f ? hi : 0.0f;
    if (symmetric) {
        float m = fmaxf(-lo, hi);
        *scale = m > 0.0f ? m / 127.0f : 1.0f;
        *zero = 128;
        return;
    }
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s)) {
        *scale = 1.0f;
        *zero = 0;
        return;
    }
    float z = nearbyintf(-lo / s);
    *scale = s;
    *zero = (int32_t)(z < 0.0f ? 0.0f : z > 255.0f ? 255.0f : z);
}

void qs_quantize_weights(const float *w, size_t channels, size_t per_channel, bool per_tensor,
                         int8_t *q, float *scales) {
    float all = 0.0f;
    for (size_t i = 0; i < channels * per_channel; i++)
        all = fmaxf(all, fabsf(w[i]));
    for (size_t c = 0; c < channels; c++) {
        float m = 0.0f;
        const float *row = w + c * per_channel;
        if (per_tensor) {
            m = all;
        } else {
            for (size_t k = 0; k < per_channel; k++)
                m = fmaxf(m, fabsf(row[k]));
        }
        float s = m > 0.0f ? m / 127.0f : 1.0f;
        scales[c] = s;
        for (size_t k = 0; k < per_channel; k++) {
            float v = nearbyintf(row[k] / s);
            v = v < -127.0f ? -127.0f : v > 127.0f ? 127.0f : v;
            q[c * per_channel + k] = (int8_t)v;
        }
    }
}

bool qs_const_scalar_f32(const qs_graph *g, int32_t v, float *out) {
    if (v < 0 || !qs_value_is_const(g, v))
        return false;
    const qs_value *val = g->values[v];
    if (val->dtype != QS_DTYPE_FLOAT32 || qs_value_numel(val) != 1)
        return false;
    *out = *(const float *)val->data;
    return true;
}

bool qs_const_scalar_int(const qs_graph *g, int32_t v, int32_t *out) {
    if (v < 0) {
        *out = 0; /* an omitted zero point is 0 */
        return true;
    }
    if (!qs_value_is_const(g, v))
        return false;
    const qs_value *val = g->values[v];
    if (qs_value_numel(val) != 1)
        return false;
    switch (val->dtype) {
    case QS_DTYPE_UINT8: *out = *(const uint8_t *)val->data; return true;
    case QS_DTYPE_INT8: *out = *(const int8_t *)val->data; return true;
    case QS_DTYPE_INT32: *out = *(const int32_t *)val->data; return true;
    default: return false;
    }
}
