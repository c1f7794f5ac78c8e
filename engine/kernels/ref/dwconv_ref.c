/* Reference depthwise convolution of one NHWC output row, any kernel/stride/dilation/padding. */
#include <math.h>

#include "kernels/ukernels.h"

void qs_f32_dwconv__ref(const qs_dw_args *p, size_t oh, float *out_row, const float *res_row) {
    const size_t c = p->c;
    size_t kh0, kh1;
    qs_dw_taps(oh, p->pad_top, p->stride_h, p->dilation_h, p->kernel_h, p->in_h, &kh0, &kh1);
    for (size_t ow = 0; ow < p->out_w; ow++) {
        size_t kw0, kw1;
        qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, p->kernel_w, p->in_w, &kw0, &kw1);
        float *o = out_row + ow * c;
        for (size_t ch = 0; ch < c; ch++)
            o[ch] = p->bias[ch];
        for (size_t kh = kh0; kh < kh1; kh++) {
            const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
            for (size_t kw = kw0; kw < kw1; kw++) {
                const size_t iw = ow * p->stride_w + kw * p->dilation_w - p->pad_left;
                const float *x = p->in + (ih * p->in_w + iw) * c;
                const size_t tap = kh * p->kernel_w + kw, taps = p->kernel_h * p->kernel_w;
                for (size_t ch = 0; ch < c; ch++)
                    o[ch] += x[ch] * p->w[((ch / p->w_block) * taps + tap) * p->w_block +
                                          ch % p->w_block];
            }
        }
        for (size_t ch = 0; ch < c; ch++) {
            float v = o[ch];
            if (res_row)
                v += res_row[ow * c + ch];
            o[ch] = fminf(fmaxf(v, p->clamp.min), p->clamp.max);
        }
    }
}
