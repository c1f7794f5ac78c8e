/* Int8 NHWC convolution: algorithm choice, weight packing with the zero point folded into the
 * bias, and the threaded drivers (1x1 GEMM, depthwise rows, im2col tiles + GEMM per group). */
#include <string.h>

#include "kernels/q8_ukernels.h"

/* im2col tile: enough output pixels to reuse the packed weights, few enough bytes to stay in L2. */
#define QS_Q8_TILE_MIN 64
#define QS_Q8_TILE_MAX 512
#define QS_Q8_TILE_BYTES (64u * 1024u)

void qs_q8_conv2d_free(qs_q8_conv2d *conv) {
    if (!conv)
        return;
    if (conv->gemm) {
        for (size_t g = 0; g < conv->n_gemm; g++)
            qs_q8_packed_b_free(&conv->gemm[g]);
        qs_kernels_free(conv->gemm);
    }
    qs_kernels_free(conv->dw_weights);
    qs_kernels_free(conv->dw_packed);
    qs_kernels_free(conv->dw_bias);
    qs_kernels_free(conv->dw_offset);
    memset(conv, 0, sizeof *conv);
}

static qs_status qs_q8_conv2d_create_dw(const qs_q8_kernels *kern, const qs_conv2d_shape *s,
                                        const int8_t *w_oihw, const int32_t *bias,
                                        const int32_t *w_offset, qs_q8_conv2d *out) {
    const size_t taps = s->kernel_h * s->kernel_w, c = s->in_c;
    out->algo = QS_CONV_DEPTHWISE;
    out->dw_weights = qs_kernels_alloc(taps * c);
    if (!out->dw_weights)
        return QS_ERR_NO_MEMORY;
    out->bytes += taps * c;
    if (qs_q8_any_offset(w_offset, c)) {
        out->dw_offset = qs_kernels_alloc(c * sizeof(int32_t));
        if (!out->dw_offset)
            return QS_ERR_NO_MEMORY;
        memcpy(out->dw_offset, w_offset, c * sizeof(int32_t));
        out->bytes += c * sizeof(int32_t);
    }
    /* OIHW with I == 1 -> [tap][channel], so a vector of channels is one load. */
    for (size_t ch = 0; ch < c; ch++) {
        uint32_t sum = 0;
        for (size_t t = 0; t < taps; t++) {
            const int8_t wv = w_oihw[ch * taps + t];
            out->dw_weights[t * c + ch] = wv;
            sum += (uint32_t)(int32_t)wv;
        }
        out->dw_bias[ch] =
            (int32_t)((uint32_t)(bias ? bias[ch] : 0) - (uint32_t)out->a_zero * sum);
    }
    if (kern->dw_pack && taps <= QS_Q8_DW_MAX_TAPS) {
        const size_t bytes = kern->dw_pack_bytes(c, taps);
        out->dw_packed = qs_kernels_alloc(bytes);
        if (!out->dw_packed)
            return QS_ERR_NO_MEMORY;
        kern->dw_pack(out->dw_weights, c, taps, out->dw_packed);
        out->bytes += bytes;
    }
    return QS_OK;
}

static qs_status qs_q8_conv2d_create_for(qs_isa isa, bool u7, const qs_conv2d_shape *shape,
                                         const int8_t *w_oihw, const int32_t *bias,
                                         int32_t a_zero, const int32_t *w_offset,
                                         qs_q8_conv2d *out) {
    qs_status st = QS_OK;
    int8_t *tmp = NULL;
    if (!out)
        return QS_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (!shape || !w_oihw || !qs_conv2d_shape_ok(shape) || a_zero < 0 ||
        a_zero > (u7 ? 127 : 255))
        return QS_ERR_INVALID_ARGUMENT;
    const qs_q8_kernels *kern = qs_q8_kernels_get(isa);
    const qs_conv2d_shape *s = shape;
    const size_t taps = s->kernel_h * s->kernel_w;
    const size_t cin_g = s->in_c / s->groups, cout_g = s->out_c / s->groups;
    out->shape = *s;
    out->isa = kern->isa;
    out->a_zero = a_zero;
    out->dw_bias = qs_kernels_alloc(s->out_c * sizeof(int32_t));
    if (!out->dw_bias) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    out->bytes = s->out_c * sizeof(int32_t);

    if (s->groups == s->in_c && s->groups == s->out_c && s->groups > 1) {
        st = qs_q8_conv2d_create_dw(kern, s, w_oihw, bias, w_offset, out);
        if (st != QS_OK)
            goto cleanup;
        return QS_OK;
    }

    out->algo = (s->groups == 1 && qs_conv2d_is_pointwise(s)) ? QS_CONV_GEMM_1X1 : QS_CONV_GENERIC;
    out->gemm = qs_kernels_alloc(s->groups * sizeof(qs_q8_packed_b));
    const size_t kg = taps * cin_g;
    tmp = qs_kernels_alloc(kg * cout_g);
    if (!out->gemm || !tmp) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    memset(out->gemm, 0, s->groups * sizeof(qs_q8_packed_b));
    for (size_t g = 0; g < s->groups; g++) {
        /* OIHW -> N x K with K = (kh, kw, ci): the order im2col writes NHWC patches in. */
        for (size_t o = 0; o < cout_g; o++) {
            const int8_t *src = w_oihw + (g * cout_g + o) * cin_g * taps;
            for (size_t t = 0; t < taps; t++)
                for (size_t ci = 0; ci < cin_g; ci++)
                    tmp[o * kg + t * cin_g + ci] = src[ci * taps + t];
        }
        st = u7 ? qs_q8_pack_b_u7(kern->isa, tmp, kg, cout_g, &out->gemm[g])
                : qs_q8_pack_b_offset(kern->isa, tmp, kg, cout_g,
                                      w_offset ? w_offset + g * cout_g : NULL, &out->gemm[g]);
        if (st != QS_OK)
            goto cleanup;
        out->n_gemm = g + 1;
        out->bytes += out->gemm[g].bytes;
        /* Padding reads as a_zero, so every tap contributes a_zero * w: fold it all here (the
         * column sums include the weight offsets). */
        for (size_t o = 0; o < cout_g; o++) {
            const size_t oc = g * cout_g + o;
            out->dw_bias[oc] = (int32_t)((uint32_t)(bias ? bias[oc] : 0) -
                                         (uint32_t)a_zero * (uint32_t)out->gemm[g].colsum[o]);
        }
    }
    qs_kernels_free(tmp);
    return QS_OK;
cleanup:
    qs_kernels_free(tmp);
    qs_q8_conv2d_free(out);
    return st;
}

qs_status qs_q8_conv2d_create(qs_isa isa, const qs_conv2d_shape *shape, const int8_t *w_oihw,
                              const int32_t *bias, int32_t a_zero, qs_q8_conv2d *out) {
    return qs_q8_conv2d_create_for(isa, false, shape, w_oihw, bias, a_zero, NULL, out);
}

qs_status qs_q8_conv2d_create_offset(qs_isa isa, const qs_conv2d_shape *shape,
                                     const int8_t *w_oihw, const int32_t *bias, int32_t a_zero,
                                     const int32_t *w_offset, qs_q8_conv2d *out) {
    return qs_q8_conv2d_create_for(isa, false, shape, w_oihw, bias, a_zero, w_offset, out);
}

qs_status qs_q8_conv2d_create_u7(qs_isa isa, const qs_conv2d_shape *shape, const int8_t *w_oihw,
                                 const int32_t *bias, int32_t a_zero, qs_q8_conv2d *out) {
    return qs_q8_conv2d_create_for(isa, true, shape, w_oihw, bias, a_zero, NULL, out);
}

/* The kernels the convolution runs with: its GEMMs' (7-bit or not), else the ISA's. */
static const qs_q8_kernels *qs_q8_conv_kernels(const qs_q8_conv2d *conv) {
    return conv->n_gemm ? qs_q8_kernels_packed(&conv->gemm[0]) : qs_q8_kernels_get(conv->isa);
}

/* Pointwise with output dims equal to input dims: the input is the GEMM's A as it is. */
static bool qs_q8_conv_direct(const qs_q8_conv2d *conv, const qs_conv2d_shape *shape) {
    return qs_conv2d_is_pointwise(&conv->shape) && shape->out_h == shape->in_h &&
           shape->out_w == shape->in_w;
}

static size_t qs_q8_conv_lda(const qs_q8_conv2d *conv) {
    const qs_conv2d_shape *s = &conv->shape;
    const size_t kg = s->kernel_h * s->kernel_w * (s->in_c / s->groups);
    return (kg + QS_Q8_KGROUP - 1) / QS_Q8_KGROUP * QS_Q8_KGROUP;
}

static size_t qs_q8_conv_tile(const qs_q8_conv2d *conv) {
    const size_t mr = qs_q8_conv_kernels(conv)->mr;
    size_t t = QS_Q8_TILE_BYTES / qs_q8_conv_lda(conv);
    if (t < QS_Q8_TILE_MIN)
        t = QS_Q8_TILE_MIN;
    if (t > QS_Q8_TILE_MAX)
        t = QS_Q8_TILE_MAX;
    t -= t % mr;
    return t < mr ? mr : t;
}

size_t qs_q8_conv2d_scratch_bytes(const qs_q8_conv2d *conv, const qs_conv2d_shape *shape) {
    if (!conv || !shape || conv->algo == QS_CONV_DEPTHWISE || qs_q8_conv_direct(conv, shape))
        return 0;
    size_t bytes;
    if (!qs_kmul(qs_q8_conv_tile(conv), qs_q8_conv_lda(conv), &bytes) || bytes > SIZE_MAX - 64)
        return SIZE_MAX;
    return (bytes + 63) & ~(size_t)63;
}

typedef struct {
    const qs_q8_conv2d *conv;
    const qs_q8_kernels *kern;
    qs_conv2d_shape s;
    const uint8_t *in;
    const qs_q8_requant *rq;
    void *out;
    size_t esize;
    bool f32_out;
    int32_t out_zero;
    float lo, hi;
    const qs_act *post;
    qs_q8_dwconv_row_fn dw_fn;
    /* generic */
    unsigned char *scratch;
    size_t scratch_per_thread, tile, pixels, n_tasks_n, panels, panels_per_task, lda;
    bool direct;
} qs_q8_conv_job;

static void qs_q8_dw_task(void *ctx, size_t task, int32_t thread_index) {
    (void)thread_index;
    const qs_q8_conv_job *j = ctx;
    const qs_conv2d_shape *s = &j->s;
    const size_t n = task / s->out_h, oh = task % s->out_h;
    const qs_q8_dw_args args = {
        .in = j->in + n * s->in_h * s->in_w * s->in_c,
        .w = j->conv->dw_weights,
        .w_packed = j->conv->dw_packed,
        .bias = j->conv->dw_bias,
        .scale = j->rq->scale,
        .c = s->in_c,
        .in_h = s->in_h,
        .in_w = s->in_w,
        .out_w = s->out_w,
        .kernel_h = s->kernel_h,
        .kernel_w = s->kernel_w,
        .stride_h = s->stride_h,
        .stride_w = s->stride_w,
        .dilation_h = s->dilation_h,
        .dilation_w = s->dilation_w,
        .pad_top = s->pad_top,
        .pad_left = s->pad_left,
        .a_zero = j->conv->a_zero,
        .out_zero = j->out_zero,
        .lo = j->lo,
        .hi = j->hi,
        .f32_out = j->f32_out,
    };
    const size_t row = (n * s->out_h + oh) * s->out_w * s->out_c;
    unsigned char *out_row = (unsigned char *)j->out + row * j->esize;
    j->dw_fn(&args, oh, out_row);
    /* Channels with a weight offset: redone exactly by the reference (few: see create). */
    if (j->conv->dw_offset)
        for (size_t ch = 0; ch < s->in_c; ch++)
            if (j->conv->dw_offset[ch] != 0)
                qs_q8_dwconv_channel__ref(&args, oh, ch, j->conv->dw_offset[ch], out_row);
    if (j->post)
        qs_act_apply_f32(j->post, (float *)(void *)out_row, s->out_w * s->out_c);
}

/* memcpy for the short runs of im2col (a kernel row of a 3-channel stem is 9 bytes): fixed-size
 * overlapping copies instead of a libc call. */
static inline void qs_copy_small(uint8_t *dst, const uint8_t *src, size_t n) {
    if (n >= 8 && n <= 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4 && n < 8) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            dst[i] = src[i];
    } else {
        memcpy(dst, src, n);
    }
}

/* Gather the patches of output pixels [q0, q0 + rows) of group g into rows x lda bytes; padding
 * reads as the input zero point, columns past K as 0. */
static void qs_q8_im2col(const qs_q8_conv_job *j, size_t q0, size_t rows, size_t g, uint8_t *dst) {
    const qs_conv2d_shape *s = &j->s;
    const size_t cin_g = s->in_c / s->groups;
    const size_t kg = s->kernel_h * s->kernel_w * cin_g;
    const size_t plane = s->out_h * s->out_w;
    const size_t row_bytes = s->kernel_w * cin_g;
    const int az = (int)j->conv->a_zero;
    /* A whole kernel row is one copy when its taps are adjacent in the input. */
    const bool contiguous = s->dilation_w == 1 && cin_g == s->in_c;
    size_t n = q0 / plane, oh = (q0 % plane) / s->out_w, ow = q0 % s->out_w;
    size_t kh0 = 0, kh1 = 0;
    qs_dw_taps(oh, s->pad_top, s->stride_h, s->dilation_h, s->kernel_h, s->in_h, &kh0, &kh1);
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *img = j->in + n * s->in_h * s->in_w * s->in_c + g * cin_g;
        uint8_t *d = dst + r * j->lda;
        size_t kw0, kw1;
        qs_dw_taps(ow, s->pad_left, s->stride_w, s->dilation_w, s->kernel_w, s->in_w, &kw0, &kw1);
        const size_t iw0 = ow * s->stride_w - s->pad_left; /* wraps when padded: used from kw0 */
        for (size_t kh = 0; kh < s->kernel_h; kh++) {
            uint8_t *drow = d + kh * row_bytes;
            if (kh < kh0 || kh >= kh1) {
                memset(drow, az, row_bytes);
                continue;
            }
            const uint8_t *src = img + (oh * s->stride_h + kh * s->dilation_h - s->pad_top) *
                                           s->in_w * s->in_c;
            if (kw0 > 0)
                memset(drow, az, kw0 * cin_g);
            if (contiguous) {
                if (kw1 > kw0)
                    qs_copy_small(drow + kw0 * cin_g, src + (iw0 + kw0) * s->in_c,
                                  (kw1 - kw0) * cin_g);
            } else {
                for (size_t kw = kw0; kw < kw1; kw++)
                    qs_copy_small(drow + kw * cin_g,
                                  src + (iw0 + kw * s->dilation_w) * s->in_c, cin_g);
            }
            if (kw1 < s->kernel_w)
                memset(drow + kw1 * cin_g, az, (s->kernel_w - kw1) * cin_g);
        }
        if (j->lda > kg)
            memset(d + kg, 0, j->lda - kg);
        if (++ow == s->out_w) {
            ow = 0;
            if (++oh == s->out_h) {
                oh = 0;
                n++;
            }
            qs_dw_taps(oh, s->pad_top, s->stride_h, s->dilation_h, s->kernel_h, s->in_h, &kh0,
                       &kh1);
        }
    }
}

static void qs_q8_generic_task(void *ctx, size_t task, int32_t thread_index) {
    const qs_q8_conv_job *j = ctx;
    const qs_conv2d_shape *s = &j->s;
    const size_t mi = task / j->n_tasks_n, ni = task % j->n_tasks_n;
    const size_t q0 = mi * j->tile;
    const size_t rows = j->pixels - q0 < j->tile ? j->pixels - q0 : j->tile;
    const size_t cin_g = s->in_c / s->groups, cout_g = s->out_c / s->groups;
    uint8_t *col = j->scratch + (size_t)thread_index * j->scratch_per_thread;
    const size_t p0 = ni * j->panels_per_task;
    const size_t p1 = j->panels - p0 < j->panels_per_task ? j->panels : p0 + j->panels_per_task;
    if (p0 >= p1)
        return;
    for (size_t g = 0; g < s->groups; g++) {
        const size_t oc = g * cout_g;
        const qs_q8_gemm_op op = {
            .kern = j->kern,
            .b = &j->conv->gemm[g],
            .bias = j->conv->dw_bias + oc,
            .scale = j->rq->scale + oc,
            .a_zero = 0,
            .out_zero = j->out_zero,
            .lo = j->lo,
            .hi = j->hi,
            .f32_out = j->f32_out,
            .post = j->post,
        };
        const uint8_t *a;
        size_t lda;
        if (j->direct) {
            a = j->in + q0 * s->in_c + g * cin_g;
            lda = s->in_c;
        } else {
            qs_q8_im2col(j, q0, rows, g, col);
            a = col;
            lda = j->lda;
        }
        unsigned char *c = (unsigned char *)j->out + (q0 * s->out_c + oc) * j->esize;
        qs_q8_gemm_block(&op, rows, a, lda, p0, p1, c, s->out_c);
    }
}

void qs_q8_conv2d_run(qs_threadpool *pool, const qs_q8_conv2d *conv, const qs_conv2d_shape *shape,
                      const uint8_t *in, const qs_q8_requant *rq, uint8_t *out_u8,
                      const qs_act *act, float *out_f32, void *scratch) {
    if (!conv || !shape || !rq || shape->n == 0 || shape->out_h == 0 || shape->out_w == 0)
        return;
    qs_q8_conv_job j;
    memset(&j, 0, sizeof j);
    j.conv = conv;
    j.kern = qs_q8_conv_kernels(conv);
    j.s = conv->shape;
    j.s.n = shape->n;
    j.s.in_h = shape->in_h;
    j.s.in_w = shape->in_w;
    j.s.out_h = shape->out_h;
    j.s.out_w = shape->out_w;
    j.in = in;
    j.rq = rq;
    j.f32_out = out_f32 != NULL;
    if (j.f32_out) {
        qs_clamp clamp;
        j.post = qs_act_to_clamp(act, &clamp) ? act : NULL;
        j.lo = clamp.min;
        j.hi = clamp.max;
        j.out = out_f32;
        j.esize = sizeof(float);
    } else {
        j.out_zero = qs_q8_clamp_u8(rq->out_zero);
        j.lo = (float)(qs_q8_clamp_u8(rq->qmin) - j.out_zero);
        j.hi = (float)(qs_q8_clamp_u8(rq->qmax) - j.out_zero);
        j.out = out_u8;
        j.esize = sizeof(uint8_t);
    }
    const size_t pixels = j.s.n * j.s.out_h * j.s.out_w;

    if (conv->algo == QS_CONV_DEPTHWISE) {
        j.dw_fn = j.kern->dwconv;
        if (j.kern->dwconv_packed && conv->dw_packed)
            j.dw_fn = j.kern->dwconv_packed;
        qs_threadpool_run(pool, qs_q8_dw_task, &j, j.s.n * j.s.out_h);
        return;
    }
    j.direct = qs_q8_conv_direct(conv, &j.s);
    if (conv->algo == QS_CONV_GEMM_1X1 && j.direct) {
        const qs_q8_gemm_op op = {
            .kern = j.kern,
            .b = &conv->gemm[0],
            .bias = conv->dw_bias,
            .scale = rq->scale,
            .a_zero = 0,
            .out_zero = j.out_zero,
            .lo = j.lo,
            .hi = j.hi,
            .f32_out = j.f32_out,
            .post = j.post,
        };
        qs_q8_gemm_run(pool, &op, pixels, in, j.s.in_c, j.out, j.s.out_c);
        return;
    }
    j.scratch = scratch;
    j.scratch_per_thread = qs_q8_conv2d_scratch_bytes(conv, &j.s);
    j.lda = qs_q8_conv_lda(conv);
    j.pixels = pixels;
    const size_t cout_g = j.s.out_c / j.s.groups;
    j.panels = cout_g / QS_Q8_NR + (cout_g % QS_Q8_NR != 0);
    size_t rows_per_task, panels_per_task;
    qs_q8_gemm_split(pixels, j.kern->mr, j.kern->nb, j.panels, qs_threadpool_size(pool),
                     &rows_per_task, &panels_per_task);
    j.tile = j.direct ? rows_per_task : qs_q8_conv_tile(conv);
    if (rows_per_task < j.tile)
        j.tile = rows_per_task;
    j.panels_per_task = panels_per_task;
    j.n_tasks_n = j.panels / panels_per_task + (j.panels % panels_per_task != 0);
    const size_t m_tasks = pixels / j.tile + (pixels % j.tile != 0);
    qs_threadpool_run(pool, qs_q8_generic_task, &j, m_tasks * j.n_tasks_n);
}
