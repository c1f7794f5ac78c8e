/* Reference (portable C) activations, applied in place. */
#include <math.h>

#include "kernels/ukernels.h"

void qs_f32_act__ref(const qs_act *act, float *x, size_t n) {
    if (!act)
        return;
    switch (act->kind) {
    case QS_ACT_NONE: return;
    case QS_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return;
    case QS_ACT_CLIP:
        for (size_t i = 0; i < n; i++)
            x[i] = fminf(fmaxf(x[i], act->min), act->max);
        return;
    case QS_ACT_LEAKY_RELU:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] < 0.0f ? act->alpha * x[i] : x[i];
        return;
    case QS_ACT_HARDSIGMOID:
        for (size_t i = 0; i < n; i++)
            x[i] = fmaxf(0.0f, fminf(1.0f, act->alpha * x[i] + act->beta));
        return;
    case QS_ACT_HARDSWISH:
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] * (1.0f / 6.0f) + 0.5f));
        return;
    case QS_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0f / (1.0f + expf(fminf(-x[i], 87.0f))); /* normal result, as the SIMD */
        return;
    case QS_ACT_SILU:
        /* the sigmoid above times x: what the unfused Sigmoid and Mul compute */
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] * (1.0f / (1.0f + expf(fminf(-x[i], 87.0f))));
        return;
    }
}
