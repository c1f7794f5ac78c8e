/* Reference int8 depthwise convolution of one NHWC output row, any kernel/stride/dilation/padding. */
#include "kernels/q8_ukernels.h"

void qs_q8_dwconv__ref(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    const size_t c = p->c;
    for (size_t ow = 0; ow < p->out_w; ow++) {
        for (size_t ch = 0; ch < c; ch++) {
            uint32_t acc = (uint32_t)p->bias[ch];
            for (size_t kh = 0; kh < p->kernel_h; kh++) {
                /* Input coordinates may be "negative" (wrapped); those read the zero point. */
                const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
                const bool row_ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top &&
                                    ih < p->in_h;
                for (size_t kw = 0; kw < p->kernel_w; kw++) {
                    const size_t iw = ow * p->stride_w + kw * p->dilation_w - p->pad_left;
                    const bool ok = row_ok &&
                                    ow * p->stride_w + kw * p->dilation_w >= p->pad_left &&
                                    iw < p->in_w;
                    const int32_t x = ok ? (int32_t)p->in[(ih * p->in_w + iw) * c + ch] : p->a_zero;
                    const int32_t wv = p->w[(kh * p->kernel_w + kw) * c + ch];
                    acc += (uint32_t)(x * wv);
                }
            }
            if (p->f32_out)
                ((float *)out_row)[ow * c + ch] =
                    qs_q8_dequant_acc((int32_t)acc, p->scale[ch], p->lo, p->hi);
            else
                ((uint8_t *)out_row)[ow * c + ch] =
                    qs_q8_requant_one((int32_t)acc, p->scale[ch], p->lo, p->hi, p->out_zero);
        }
    }
}
