/* Reference int8 depthwise convolution of one NHWC output row, any kernel/stride/dilation/padding,
 * and of one channel with a weight offset. */
#include "kernels/q8_ukernels.h"

/* Taps of the fast channel path (weights on the stack); larger kernels take the checked one. */
#define QS_Q8_DW_REF_MAX_TAPS 256

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
    /* acc = bias + sum over the taps inside the image of (x - a_zero) * (w + offset): padding
     * taps add 0, and args->bias already holds - a_zero * sum w, which is added back. The same
     * value as qs_q8_dw_acc, modulo 2^32, with no per-tap checks. */
    const size_t c = p->c, taps = p->kernel_h * p->kernel_w;
    int32_t wt[QS_Q8_DW_REF_MAX_TAPS];
    uint32_t bias = (uint32_t)p->bias[ch];
    if (taps > QS_Q8_DW_REF_MAX_TAPS) {
        for (size_t ow = 0; ow < p->out_w; ow++)
            qs_q8_dw_store(p, qs_q8_dw_acc(p, oh, ow, ch, offset), ch, ow, out_row);
        return;
    }
    for (size_t t = 0; t < taps; t++) {
        wt[t] = (int32_t)p->w[t * c + ch];
        bias += (uint32_t)p->a_zero * (uint32_t)wt[t];
        wt[t] = (int32_t)((uint32_t)wt[t] + (uint32_t)offset);
    }
    size_t kh0, kh1;
    qs_dw_taps(oh, p->pad_top, p->stride_h, p->dilation_h, p->kernel_h, p->in_h, &kh0, &kh1);
    for (size_t ow = 0; ow < p->out_w; ow++) {
        size_t kw0, kw1;
        qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, p->kernel_w, p->in_w, &kw0, &kw1);
        uint32_t acc = bias;
        for (size_t kh = kh0; kh < kh1; kh++) {
            const uint8_t *row = p->in + (oh * p->stride_h + kh * p->dilation_h - p->pad_top) *
                                             p->in_w * c + ch;
            for (size_t kw = kw0; kw < kw1; kw++) {
                const int32_t x = row[(ow * p->stride_w + kw * p->dilation_w - p->pad_left) * c];
                acc += (uint32_t)(x - p->a_zero) * (uint32_t)wt[kh * p->kernel_w + kw];
            }
        }
        qs_q8_dw_store(p, (int32_t)acc, ch, ow, out_row);
    }
}
