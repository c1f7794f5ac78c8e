/* fp32 NHWC convolution: algorithm choice, weight packing, and the threaded drivers per algorithm. */
#include <string.h>

#include "kernels/ukernels.h"

/* im2col tile: at least this many output pixels per task so that packed weights are reused, and
 * at most this many bytes of patches per thread (held in L2 while the weight panels stream by). */
#define QS_CONV_TILE_MIN 48
#define QS_CONV_TILE_MAX 256
#define QS_CONV_TILE_BYTES (256u * 1024u)

bool qs_conv2d_shape_ok(const qs_conv2d_shape *s) {
    if (s->in_c == 0 || s->out_c == 0 || s->groups == 0 || s->kernel_h == 0 || s->kernel_w == 0 ||
        s->stride_h == 0 || s->stride_w == 0 || s->dilation_h == 0 || s->dilation_w == 0)
        return false;
    if (s->in_c % s->groups != 0 || s->out_c % s->groups != 0)
        return false;
    size_t taps, k;
    /* Bound everything so that index arithmetic in the kernels cannot overflow. */
    if (!qs_kmul(s->kernel_h, s->kernel_w, &taps) || !qs_kmul(taps, s->in_c, &k) ||
        k > ((size_t)1 << 28) || s->out_c > ((size_t)1 << 28) || s->kernel_h > 4096 ||
        s->kernel_w > 4096 || s->dilation_h > 4096 || s->dilation_w > 4096 ||
        s->pad_top > 65536 || s->pad_left > 65536 || s->stride_h > 65536 || s->stride_w > 65536)
        return false;
    return true;
}

bool qs_conv2d_is_pointwise(const qs_conv2d_shape *s) {
    return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 &&
           s->pad_top == 0 && s->pad_left == 0;
}

void qs_f32_conv2d_free(qs_f32_conv2d *conv) {
    if (!conv)
        return;
    if (conv->gemm) {
        for (size_t g = 0; g < conv->n_gemm; g++)
            qs_f32_packed_b_free(&conv->gemm[g]);
        qs_kernels_free(conv->gemm);
    }
    qs_kernels_free(conv->dw_weights);
    qs_kernels_free(conv->bias);
    memset(conv, 0, sizeof *conv);
}

qs_status qs_f32_conv2d_create(qs_isa isa, const qs_conv2d_shape *shape, const float *w_oihw,
                               const float *bias, qs_f32_conv2d *out) {
    qs_status st = QS_OK;
    float *tmp = NULL;
    if (!out)
        return QS_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (!shape || !w_oihw || !qs_conv2d_shape_ok(shape))
        return QS_ERR_INVALID_ARGUMENT;
    const qs_f32_kernels *kern = qs_f32_kernels_get(isa);
    const qs_conv2d_shape *s = shape;
    const size_t taps = s->kernel_h * s->kernel_w;
    const size_t cin_g = s->in_c / s->groups, cout_g = s->out_c / s->groups;
    out->shape = *s;
    out->isa = kern->isa;

    out->bias = qs_kernels_alloc(s->out_c * sizeof(float));
    if (!out->bias) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    out->bytes = s->out_c * sizeof(float);
    for (size_t o = 0; o < s->out_c; o++)
        out->bias[o] = bias ? bias[o] : 0.0f;

    if (s->groups == s->in_c && s->groups == s->out_c && s->groups > 1) {
        out->algo = QS_CONV_DEPTHWISE;
        const size_t blk = kern->dw_block;
        const size_t cpad = (s->in_c + blk - 1) / blk * blk;
        size_t bytes;
        /* Packed weights, then c + 16 zeros that padding taps read instead of the image. */
        if (!qs_kmul(taps * cpad + s->in_c + 16, sizeof(float), &bytes)) {
            st = QS_ERR_INVALID_ARGUMENT;
            goto cleanup;
        }
        out->dw_weights = qs_kernels_alloc(bytes);
        if (!out->dw_weights) {
            st = QS_ERR_NO_MEMORY;
            goto cleanup;
        }
        out->bytes += bytes;
        memset(out->dw_weights, 0, bytes);
        /* OIHW with I == 1 -> [channel block][tap][lane]: one vector load per tap and block. */
        for (size_t c = 0; c < s->in_c; c++)
            for (size_t t = 0; t < taps; t++)
                out->dw_weights[((c / blk) * taps + t) * blk + c % blk] = w_oihw[c * taps + t];
        return QS_OK;
    }

    out->algo = (s->groups == 1 && qs_conv2d_is_pointwise(s)) ? QS_CONV_GEMM_1X1 : QS_CONV_GENERIC;
    out->gemm = qs_kernels_alloc(s->groups * sizeof(qs_f32_packed_b));
    if (!out->gemm) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    memset(out->gemm, 0, s->groups * sizeof(qs_f32_packed_b));
    const size_t kg = taps * cin_g;
    tmp = qs_kernels_alloc(kg * cout_g * sizeof(float));
    if (!tmp) {
        st = QS_ERR_NO_MEMORY;
        goto cleanup;
    }
    for (size_t g = 0; g < s->groups; g++) {
        /* Reorder OIHW to N x K with K = (kh, kw, ci): the order im2col writes NHWC patches in. */
        for (size_t o = 0; o < cout_g; o++) {
            const float *src = w_oihw + (g * cout_g + o) * cin_g * taps;
            for (size_t t = 0; t < taps; t++)
                for (size_t ci = 0; ci < cin_g; ci++)
                    tmp[o * kg + t * cin_g + ci] = src[ci * taps + t];
        }
        st = qs_f32_pack_b(kern->isa, tmp, kg, cout_g, kg, true, &out->gemm[g]);
        if (st != QS_OK)
            goto cleanup;
        out->n_gemm = g + 1;
        out->bytes += out->gemm[g].bytes;
    }
    qs_kernels_free(tmp);
    return QS_OK;
cleanup:
    qs_kernels_free(tmp);
    qs_f32_conv2d_free(out);
    return st;
}

/* Whether this run can skip im2col: pointwise with output dims equal to input dims. */
static bool qs_conv_direct(const qs_f32_conv2d *conv, const qs_conv2d_shape *shape) {
    return qs_conv2d_is_pointwise(&conv->shape) && shape->out_h == shape->in_h &&
           shape->out_w == shape->in_w;
}

static size_t qs_conv_tile(const qs_f32_conv2d *conv) {
    const qs_conv2d_shape *s = &conv->shape;
    const size_t mr = qs_f32_kernels_get(conv->isa)->mr;
    const size_t kg = s->kernel_h * s->kernel_w * (s->in_c / s->groups);
    size_t t = QS_CONV_TILE_BYTES / (kg * sizeof(float));
    if (t < QS_CONV_TILE_MIN)
        t = QS_CONV_TILE_MIN;
    if (t > QS_CONV_TILE_MAX)
        t = QS_CONV_TILE_MAX;
    t -= t % mr;
    return t < mr ? mr : t;
}

size_t qs_f32_conv2d_scratch_bytes(const qs_f32_conv2d *conv, const qs_conv2d_shape *shape) {
    if (!conv || !shape || conv->algo == QS_CONV_DEPTHWISE || qs_conv_direct(conv, shape))
        return 0;
    const qs_conv2d_shape *s = &conv->shape;
    const size_t kg = s->kernel_h * s->kernel_w * (s->in_c / s->groups);
    size_t bytes;
    if (!qs_kmul(qs_conv_tile(conv) * sizeof(float), kg, &bytes) || bytes > SIZE_MAX - 64)
        return SIZE_MAX;
    return (bytes + 63) & ~(size_t)63;
}

typedef struct {
    const qs_f32_conv2d *conv;
    const qs_f32_kernels *kern;
    qs_conv2d_shape s;
    const float *in, *res;
    float *out;
    qs_clamp clamp;
    const qs_act *post;
    const float *zero; /* depthwise */
    /* generic */
    unsigned char *scratch;
    size_t scratch_per_thread, tile, pixels, n_tasks_n, panels, panels_per_task;
    bool direct;
} qs_conv_job;

static void qs_dw_task(void *ctx, size_t task, int32_t thread_index) {
    (void)thread_index;
    const qs_conv_job *j = ctx;
    const qs_conv2d_shape *s = &j->s;
    const size_t n = task / s->out_h, oh = task % s->out_h;
    qs_dw_args args = {
        .in = j->in + n * s->in_h * s->in_w * s->in_c,
        .w = j->conv->dw_weights,
        .bias = j->conv->bias,
        .zero = j->zero,
        .w_block = j->kern->dw_block,
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
        .clamp = j->clamp,
    };
    const size_t row = (n * s->out_h + oh) * s->out_w * s->out_c;
    float *out_row = j->out + row;
    j->kern->dwconv(&args, oh, out_row, j->res ? j->res + row : NULL);
    if (j->post)
        j->kern->act(j->post, out_row, s->out_w * s->out_c);
}

/* Gather the patches of output pixels [q0, q0 + rows) of group g into a rows x kg matrix. */
static void qs_im2col(const qs_conv_job *j, size_t q0, size_t rows, size_t g, float *dst) {
    const qs_conv2d_shape *s = &j->s;
    const size_t cin_g = s->in_c / s->groups;
    const size_t kg = s->kernel_h * s->kernel_w * cin_g;
    const size_t plane = s->out_h * s->out_w;
    const bool contiguous = s->groups == 1 && s->dilation_w == 1;
    const size_t span_w = (s->kernel_w - 1) * s->dilation_w;
    /* Walk pixels incrementally: divisions only once per tile and per output row. */
    size_t n = q0 / plane, oh = (q0 % plane) / s->out_w, ow = q0 % s->out_w;
    size_t kh0, kh1;
    qs_dw_taps(oh, s->pad_top, s->stride_h, s->dilation_h, s->kernel_h, s->in_h, &kh0, &kh1);
    for (size_t r = 0; r < rows; r++, ow++) {
        if (ow == s->out_w) {
            ow = 0;
            if (++oh == s->out_h) {
                oh = 0;
                n++;
            }
            qs_dw_taps(oh, s->pad_top, s->stride_h, s->dilation_h, s->kernel_h, s->in_h, &kh0,
                       &kh1);
        }
        const float *img = j->in + n * s->in_h * s->in_w * s->in_c + g * cin_g;
        float *d = dst + r * kg;
        size_t kw0 = 0, kw1 = s->kernel_w;
        const size_t x0 = ow * s->stride_w;
        if (x0 < s->pad_left || x0 - s->pad_left + span_w >= s->in_w)
            qs_dw_taps(ow, s->pad_left, s->stride_w, s->dilation_w, s->kernel_w, s->in_w, &kw0,
                       &kw1);
        for (size_t kh = 0; kh < s->kernel_h; kh++) {
            float *drow = d + kh * s->kernel_w * cin_g;
            if (kh < kh0 || kh >= kh1) {
                memset(drow, 0, s->kernel_w * cin_g * sizeof(float));
                continue;
            }
            const size_t ih = oh * s->stride_h + kh * s->dilation_h - s->pad_top;
            if (kw0 > 0)
                memset(drow, 0, kw0 * cin_g * sizeof(float));
            if (contiguous) {
                /* Adjacent taps of one image row are adjacent in memory: one copy for all. */
                const size_t iw = ow * s->stride_w + kw0 - s->pad_left;
                const float *src = img + (ih * s->in_w + iw) * s->in_c;
                float *to = drow + kw0 * cin_g;
                const size_t len = (kw1 - kw0) * cin_g;
                for (size_t e = 0; e < len; e++)
                    to[e] = src[e];
            } else {
                for (size_t kw = kw0; kw < kw1; kw++) {
                    const size_t iw = ow * s->stride_w + kw * s->dilation_w - s->pad_left;
                    memcpy(drow + kw * cin_g, img + (ih * s->in_w + iw) * s->in_c,
                           cin_g * sizeof(float));
                }
            }
            if (kw1 < s->kernel_w)
                memset(drow + kw1 * cin_g, 0, (s->kernel_w - kw1) * cin_g * sizeof(float));
        }
    }
}

static void qs_generic_task(void *ctx, size_t task, int32_t thread_index) {
    const qs_conv_job *j = ctx;
    const qs_conv2d_shape *s = &j->s;
    const size_t mi = task / j->n_tasks_n, ni = task % j->n_tasks_n;
    const size_t q0 = mi * j->tile;
    const size_t rows = j->pixels - q0 < j->tile ? j->pixels - q0 : j->tile;
    const size_t cin_g = s->in_c / s->groups, cout_g = s->out_c / s->groups;
    const size_t kg = s->kernel_h * s->kernel_w * cin_g;
    float *col = (float *)(void *)(j->scratch + (size_t)thread_index * j->scratch_per_thread);
    for (size_t g = 0; g < s->groups; g++) {
        const qs_f32_packed_b *b = &j->conv->gemm[g];
        const size_t panels = cout_g / b->nr + (cout_g % b->nr != 0);
        const size_t p0 = ni * j->panels_per_task;
        const size_t p1 = panels - p0 < j->panels_per_task ? panels : p0 + j->panels_per_task;
        if (p0 >= p1)
            continue;
        const float *a;
        size_t lda;
        if (j->direct) {
            a = j->in + q0 * s->in_c + g * cin_g;
            lda = s->in_c;
        } else {
            qs_im2col(j, q0, rows, g, col);
            a = col;
            lda = kg;
        }
        const size_t off = q0 * s->out_c + g * cout_g;
        qs_f32_gemm_block(j->kern, rows, a, lda, b, p0, p1, j->conv->bias + g * cout_g,
                          j->res ? j->res + off : NULL, s->out_c, j->out + off, s->out_c,
                          &j->clamp, j->post);
    }
}

void qs_f32_conv2d_run(qs_threadpool *pool, const qs_f32_conv2d *conv,
                       const qs_conv2d_shape *shape, const float *in, const float *residual,
                       float *out, const qs_act *act, void *scratch) {
    if (!conv || !shape || shape->n == 0 || shape->out_h == 0 || shape->out_w == 0)
        return;
    qs_conv_job j;
    memset(&j, 0, sizeof j);
    j.conv = conv;
    j.kern = qs_f32_kernels_get(conv->isa);
    j.s = conv->shape;
    j.s.n = shape->n;
    j.s.in_h = shape->in_h;
    j.s.in_w = shape->in_w;
    j.s.out_h = shape->out_h;
    j.s.out_w = shape->out_w;
    j.in = in;
    j.res = residual;
    j.out = out;
    j.post = qs_act_to_clamp(act, &j.clamp) ? act : NULL;
    const size_t pixels = j.s.n * j.s.out_h * j.s.out_w;

    if (conv->algo == QS_CONV_DEPTHWISE) {
        const size_t blk = j.kern->dw_block;
        j.zero = conv->dw_weights +
                 j.s.kernel_h * j.s.kernel_w * ((j.s.in_c + blk - 1) / blk * blk);
        qs_threadpool_run(pool, qs_dw_task, &j, j.s.n * j.s.out_h);
        return;
    }
    j.direct = qs_conv_direct(conv, &j.s);
    if (conv->algo == QS_CONV_GEMM_1X1 && j.direct) {
        qs_f32_gemm(pool, pixels, in, j.s.in_c, &conv->gemm[0], conv->bias, residual, j.s.out_c,
                    out, j.s.out_c, act);
        return;
    }
    j.scratch = scratch;
    j.scratch_per_thread = qs_f32_conv2d_scratch_bytes(conv, &j.s);
    j.pixels = pixels;
    const size_t cout_g = j.s.out_c / j.s.groups;
    const size_t nr = conv->gemm[0].nr;
    j.panels = cout_g / nr + (cout_g % nr != 0);
    size_t rows_per_task, panels_per_task;
    qs_f32_gemm_split(pixels, j.kern->mr, j.panels, qs_threadpool_size(pool), &rows_per_task,
                      &panels_per_task);
    /* The tile bounds the im2col buffer; threads may want smaller tiles on small images. */
    j.tile = j.direct ? rows_per_task : qs_conv_tile(conv);
    if (rows_per_task < j.tile)
        j.tile = rows_per_task;
    j.panels_per_task = panels_per_task;
    j.n_tasks_n = j.panels / panels_per_task + (j.panels % panels_per_task != 0);
    const size_t m_tasks = pixels / j.tile + (pixels % j.tile != 0);
    qs_threadpool_run(pool, qs_generic_task, &j, m_tasks * j.n_tasks_n);
}
