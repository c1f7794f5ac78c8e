/* Activation helpers shared by all kernels: the reference activation and the clamp split. */
#include <math.h>

#include "kernels/ukernels.h"

bool qs_act_to_clamp(const qs_act *act, qs_clamp *clamp) {
    clamp->min = -INFINITY;
    clamp->max = INFINITY;
    if (!act)
        return false;
    switch (act->kind) {
    case QS_ACT_NONE: return false;
    case QS_ACT_RELU: clamp->min = 0.0f; return false;
    case QS_ACT_CLIP:
        clamp->min = act->min;
        clamp->max = act->max;
        return false;
    case QS_ACT_LEAKY_RELU:
    case QS_ACT_HARDSIGMOID:
    case QS_ACT_HARDSWISH:
    case QS_ACT_SIGMOID:
    case QS_ACT_SILU: return true;
    }
    return false;
}

void qs_act_apply_f32(const qs_act *act, float *x, size_t n) {
    qs_f32_kernels_get(qs_engine_isa())->act(act, x, n);
}

void qs_dw_taps(size_t pos, size_t pad, size_t stride, size_t dilation, size_t kernel,
                size_t in_size, size_t *k0, size_t *k1) {
    /* Input coordinate of tap k is pos * stride - pad + k * dilation; keep 0 <= it < in_size. */
    size_t base = pos * stride;
    size_t lo = 0;
    if (base < pad)
        lo = (pad - base + dilation - 1) / dilation;
    size_t hi = kernel;
    /* Largest k with base + k*dilation - pad < in_size. */
    if (base + (kernel - 1) * dilation >= in_size + pad) {
        size_t limit = in_size + pad; /* need base + k*d < limit */
        hi = limit > base ? (limit - base + dilation - 1) / dilation : 0;
        if (hi > kernel)
            hi = kernel;
    }
    if (lo > hi)
        lo = hi;
    *k0 = lo;
    *k1 = hi;
}
