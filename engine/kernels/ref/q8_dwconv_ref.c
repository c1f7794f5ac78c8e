/* Reference int8 depthwise convolution of one NHWC output row, any kernel/stride/dilation/padding,
 * and of one channel with a weight offset. */
#include "kernels/q8_ukernels.h"

/* acc of channel ch at output column ow: bias + sum_t x_t * (w_t + offset) - a_zero * offset *
 * taps, wrapping; padding taps read a_zero. */
static int32_t qs_q8_dw_acc(const qs_q8_dw_args *p, size_t oh, size_t ow, size_t ch,
                            int32_t offset) {
    const size_t c = p->c;
    uint32_t acc = (uint32_t)p->bias[ch];
    for (size_t kh = 0; kh < p->kernel_h; kh++) {
        /* Input coordinates may be "negative" (wrapped); those read the zero point. */
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        const bool row_ok = oh * p->stride_h + kh * p->dilation_h >= p->pad_top && ih < p->in_h;
        for (size_t kw = 0; kw < p->kernel_w; kw++) {
            const size_t iw = ow * p->stride_w + kw * p->dilation_w - p->pad_left;
            const bool ok = row_ok && ow * p->stride_w + kw * p->dilation_w >= p->pad_left &&
                            iw < p->in_w;
            const int32_t x = ok ? (int32_t)p->in[(ih * p->in_w + iw) * c + ch] : p->a_zero;
            const int32_t wv = p->w[(kh * p->kernel_w + kw) * c + ch];
            acc += (uint32_t)(x * wv) + (uint32_t)(x - p->a_zero) * (uint32_t)offset;
        }
    }
    return (int32_t)acc;
}

static void qs_q8_dw_store(const qs_q8_dw_args *p, int32_t acc, size_t ch, size_t ow,
                           void *out_row) {
    if (p->f32_out)
        ((float *)out_row)[ow * p->c + ch] = qs_q8_dequant_acc(acc, p->scale[ch], p->lo, p->hi);
    else
        ((uint8_t *)out_row)[ow * p->c + ch] =
            qs_q8_requant_one(acc, p->scale[ch], p->lo, p->hi, p->out_zero);
}

void qs_q8_dwconv__ref(const qs_q8_dw_args *p, size_t oh, void *out_row) {
    for (size_t ow = 0; ow < p->out_w; ow++)
        for (size_t ch = 0; ch < p->c; ch++)
            qs_q8_dw_store(p, qs_q8_dw_acc(p, oh, ow, ch, 0), ch, ow, out_row);
}

void qs_q8_dwconv_channel__ref(const qs_q8_dw_args *p, size_t oh, size_t ch, int32_t offset,
                               void *out_row) {
    for (size_t ow = 0; ow < p->out_w; ow++)
        qs_q8_dw_store(p, qs_q8_dw_acc(p, oh, ow, ch, offset), ch, ow, out_row);
}
