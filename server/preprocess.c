/* Preprocessing: Pillow-exact resize, torchvision center crop and normalization into a float tensor. */

#include "preprocess.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_PRE_MAX_SIZE 65536u
#define QS_PRE_MAX_FLOATS (UINT64_C(1) << 31)
/* Pillow's fixed point: 8 bits of result, 2 of headroom, 22 of fraction. */
#define QS_PRE_PRECISION_BITS 22
#define QS_PRE_ALIGN 16u

static qs_image_status fail(qs_image_error *err, qs_image_status code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static qs_image_status fail(qs_image_error *err, qs_image_status code, const char *where, const char *fmt,
                            ...) {
    if (err != NULL && err->code == QS_IMAGE_OK) {
        va_list ap;
        err->code = code;
        snprintf(err->where, sizeof err->where, "%s", where);
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void error_clear(qs_image_error *err) {
    if (err != NULL) {
        err->code = QS_IMAGE_OK;
        err->where[0] = '\0';
        err->message[0] = '\0';
    }
}

void qs_preprocess_spec_imagenet(qs_preprocess_spec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->color = QS_IMAGE_COLOR_RGB;
    spec->resize = QS_PREPROCESS_RESIZE_SHORTER_SIDE;
    spec->resize_size = 256;
    spec->crop_width = 224;
    spec->crop_height = 224;
    spec->interp = QS_PREPROCESS_INTERP_BILINEAR;
    spec->order = QS_PREPROCESS_ORDER_RGB;
    spec->scale = 1.0f / 255.0f;
    spec->mean[0] = 0.485f;
    spec->mean[1] = 0.456f;
    spec->mean[2] = 0.406f;
    spec->std[0] = 0.229f;
    spec->std[1] = 0.224f;
    spec->std[2] = 0.225f;
    spec->layout = QS_PREPROCESS_LAYOUT_NCHW;
}

static bool size_ok(uint32_t v) {
    return v >= 1 && v <= QS_PRE_MAX_SIZE;
}

static qs_image_status validate_spec(const qs_preprocess_spec *spec, qs_image_error *err) {
    const char *where = "preprocess spec";
    if (spec == NULL) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "no spec");
    }
    if (spec->color != QS_IMAGE_COLOR_RGB && spec->color != QS_IMAGE_COLOR_GRAY) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "unknown color %d", (int)spec->color);
    }
    switch (spec->resize) {
    case QS_PREPROCESS_RESIZE_NONE:
        break;
    case QS_PREPROCESS_RESIZE_SHORTER_SIDE:
        if (!size_ok(spec->resize_size)) {
            return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "resize size %u outside 1..%u", spec->resize_size,
                        QS_PRE_MAX_SIZE);
        }
        break;
    case QS_PREPROCESS_RESIZE_EXACT:
        if (!size_ok(spec->resize_width) || !size_ok(spec->resize_height)) {
            return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "resize %ux%u outside 1..%u", spec->resize_width,
                        spec->resize_height, QS_PRE_MAX_SIZE);
        }
        break;
    default:
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "unknown resize mode %d", (int)spec->resize);
    }
    if ((spec->crop_width != 0 || spec->crop_height != 0) &&
        (!size_ok(spec->crop_width) || !size_ok(spec->crop_height))) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "crop %ux%u: both 0 or both in 1..%u",
                    spec->crop_width, spec->crop_height, QS_PRE_MAX_SIZE);
    }
    if (spec->interp != QS_PREPROCESS_INTERP_BILINEAR && spec->interp != QS_PREPROCESS_INTERP_NEAREST) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "unknown interpolation %d", (int)spec->interp);
    }
    if (spec->order != QS_PREPROCESS_ORDER_RGB && spec->order != QS_PREPROCESS_ORDER_BGR) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "unknown channel order %d", (int)spec->order);
    }
    if (spec->layout != QS_PREPROCESS_LAYOUT_NCHW && spec->layout != QS_PREPROCESS_LAYOUT_NHWC) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "unknown layout %d", (int)spec->layout);
    }
    if (!isfinite(spec->scale) || spec->scale == 0.0f) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "scale must be finite and non-zero");
    }
    int channels = spec->color == QS_IMAGE_COLOR_RGB ? 3 : 1;
    for (int c = 0; c < channels; c++) {
        if (!isfinite(spec->mean[c]) || !isfinite(spec->std[c]) || spec->std[c] == 0.0f) {
            return fail(err, QS_IMAGE_INVALID_ARGUMENT, where, "channel %d: mean must be finite, std finite and non-zero",
                        c);
        }
    }
    return QS_IMAGE_OK;
}

qs_image_status qs_preprocess_validate(const qs_preprocess_spec *spec, qs_image_error *err) {
    error_clear(err);
    return validate_spec(spec, err);
}

/* ---- geometry ---- */

/* Python's round(d / 2.0) for an integer d >= 0: halves go to the even neighbour. */
static uint32_t half_round_even(uint32_t d) {
    uint32_t q = d / 2;
    return (d % 2 != 0 && q % 2 != 0) ? q + 1 : q;
}

static uint32_t ksize_for(uint32_t in_size, uint32_t out_size) {
    double scale = (double)(float)in_size / out_size;
    double support = scale < 1.0 ? 1.0 : scale;
    return (uint32_t)ceil(support) * 2 + 1;
}

typedef struct {
    uint32_t channels;
    uint32_t w, h;         /* source image */
    uint32_t rw, rh;       /* after resize */
    uint32_t out_w, out_h; /* tensor plane */
    int64_t off_x, off_y;  /* resized coordinates of tensor pixel (0, 0); negative inside padding */
    uint32_t x0, x1, y0, y1; /* resized pixels that survive the crop */
    bool resample;         /* a resize is actually performed */
    bool need_h, need_v;   /* Pillow skips a pass whose size does not change */
    uint32_t ksize_h, ksize_v;
    /* scratch layout, offsets in bytes from an aligned base */
    size_t off_hk, off_hb, off_vk, off_vb, off_tmp, off_work, off_win, total;
} plan;

static size_t align_up(size_t v) {
    return (v + QS_PRE_ALIGN - 1) / QS_PRE_ALIGN * QS_PRE_ALIGN;
}

static qs_image_status plan_make(const qs_preprocess_spec *spec, uint32_t w, uint32_t h, plan *p,
                                 qs_image_error *err) {
    qs_image_status st = validate_spec(spec, err);
    if (st != QS_IMAGE_OK) {
        return st;
    }
    if (w == 0 || h == 0) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "preprocess", "empty image %ux%u", w, h);
    }
    memset(p, 0, sizeof *p);
    p->channels = spec->color == QS_IMAGE_COLOR_RGB ? 3 : 1;
    p->w = w;
    p->h = h;
    switch (spec->resize) {
    case QS_PREPROCESS_RESIZE_SHORTER_SIDE: {
        /* torchvision: int(size * long / short); exact integer division gives the same truncation. */
        uint64_t size = spec->resize_size;
        if (w <= h) {
            p->rw = (uint32_t)size;
            uint64_t rh = size * h / w;
            if (rh > QS_PRE_MAX_SIZE * 16u) {
                return fail(err, QS_IMAGE_TOO_LARGE, "preprocess", "resized height %llu is too large",
                            (unsigned long long)rh);
            }
            p->rh = (uint32_t)rh;
        } else {
            p->rh = (uint32_t)size;
            uint64_t rw = size * w / h;
            if (rw > QS_PRE_MAX_SIZE * 16u) {
                return fail(err, QS_IMAGE_TOO_LARGE, "preprocess", "resized width %llu is too large",
                            (unsigned long long)rw);
            }
            p->rw = (uint32_t)rw;
        }
        break;
    }
    case QS_PREPROCESS_RESIZE_EXACT:
        p->rw = spec->resize_width;
        p->rh = spec->resize_height;
        break;
    default:
        p->rw = w;
        p->rh = h;
        break;
    }
    p->resample = p->rw != w || p->rh != h;

    if (spec->crop_width != 0) {
        uint32_t cw = spec->crop_width, ch = spec->crop_height;
        p->out_w = cw;
        p->out_h = ch;
        /* torchvision CenterCrop: pad (left = diff // 2) when too small, then round((H - crop) / 2). */
        p->off_x = cw > p->rw ? -(int64_t)((cw - p->rw) / 2) : (int64_t)half_round_even(p->rw - cw);
        p->off_y = ch > p->rh ? -(int64_t)((ch - p->rh) / 2) : (int64_t)half_round_even(p->rh - ch);
    } else {
        p->out_w = p->rw;
        p->out_h = p->rh;
    }
    if ((uint64_t)p->out_w * p->out_h * p->channels > QS_PRE_MAX_FLOATS) {
        return fail(err, QS_IMAGE_TOO_LARGE, "preprocess", "output %ux%ux%u is too large", p->channels,
                    p->out_h, p->out_w);
    }
    int64_t x0 = p->off_x < 0 ? 0 : p->off_x, y0 = p->off_y < 0 ? 0 : p->off_y;
    int64_t x1 = p->off_x + p->out_w, y1 = p->off_y + p->out_h;
    if (x1 > p->rw) {
        x1 = p->rw;
    }
    if (y1 > p->rh) {
        y1 = p->rh;
    }
    p->x0 = (uint32_t)x0;
    p->y0 = (uint32_t)y0;
    p->x1 = (uint32_t)x1;
    p->y1 = (uint32_t)y1;

    const size_t nx = p->x1 - p->x0, ny = p->y1 - p->y0, c = p->channels;
    size_t off = 0;
    if (p->resample && spec->interp == QS_PREPROCESS_INTERP_BILINEAR) {
        p->need_h = p->rw != w;
        p->need_v = p->rh != h;
        p->ksize_h = ksize_for(w, p->rw);
        p->ksize_v = ksize_for(h, p->rh);
        uint32_t kmax = p->ksize_h > p->ksize_v ? p->ksize_h : p->ksize_v;
        p->off_hk = off;
        off = align_up(off + nx * p->ksize_h * sizeof(int32_t));
        p->off_hb = off;
        off = align_up(off + nx * 2 * sizeof(uint32_t));
        p->off_vk = off;
        off = align_up(off + ny * p->ksize_v * sizeof(int32_t));
        p->off_vb = off;
        off = align_up(off + ny * 2 * sizeof(uint32_t));
        p->off_tmp = off;
        off = align_up(off + kmax * sizeof(double));
        p->off_work = off; /* horizontal pass output: at most every source row */
        off = align_up(off + (p->need_h ? nx * h * c : 0));
        p->off_win = off;
        off = align_up(off + (p->need_v ? nx * ny * c : 0));
    } else if (p->resample) {
        p->off_hb = off;
        off = align_up(off + nx * sizeof(uint32_t));
        p->off_vb = off;
        off = align_up(off + ny * sizeof(uint32_t));
        p->off_win = off;
        off = align_up(off + nx * ny * c);
    }
    p->total = off == 0 ? 0 : off + QS_PRE_ALIGN; /* room to align the caller's pointer */
    return QS_IMAGE_OK;
}

qs_image_status qs_preprocess_output_shape(const qs_preprocess_spec *spec, uint32_t image_width,
                                           uint32_t image_height, uint32_t shape[4], size_t *count,
                                           qs_image_error *err) {
    plan p;
    error_clear(err);
    qs_image_status st = plan_make(spec, image_width, image_height, &p, err);
    if (st != QS_IMAGE_OK) {
        return st;
    }
    shape[0] = 1;
    if (spec->layout == QS_PREPROCESS_LAYOUT_NCHW) {
        shape[1] = p.channels;
        shape[2] = p.out_h;
        shape[3] = p.out_w;
    } else {
        shape[1] = p.out_h;
        shape[2] = p.out_w;
        shape[3] = p.channels;
    }
    if (count != NULL) {
        *count = (size_t)p.channels * p.out_h * p.out_w;
    }
    return QS_IMAGE_OK;
}

qs_image_status qs_preprocess_scratch_size(const qs_preprocess_spec *spec, uint32_t image_width,
                                           uint32_t image_height, size_t *bytes, qs_image_error *err) {
    plan p;
    error_clear(err);
    qs_image_status st = plan_make(spec, image_width, image_height, &p, err);
    if (st == QS_IMAGE_OK) {
        *bytes = p.total;
    }
    return st;
}

/* ---- Pillow-exact bilinear resampling ---- */

static double triangle(double x) {
    if (x < 0.0) {
        x = -x;
    }
    return x < 1.0 ? 1.0 - x : 0.0;
}

/*
 * Fixed-point coefficients of output positions [first, first + count) for an in_size -> out_size
 * resize, computed the way Pillow's precompute_coeffs and normalize_coeffs_8bpc do (same double
 * expressions in the same order, so the same roundings). bounds receives (start, length) pairs.
 */
static void bilinear_coeffs(uint32_t in_size, uint32_t out_size, uint32_t first, uint32_t count,
                            uint32_t ksize, int32_t *kk, uint32_t *bounds, double *tmp) {
    const double scale = (double)(float)in_size / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    const double ss = 1.0 / filterscale;
    for (uint32_t i = 0; i < count; i++) {
        const int xx = (int)(first + i);
        const double center = 0.0 + (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        int xmax = (int)(center + support + 0.5);
        if (xmin < 0) {
            xmin = 0;
        }
        if (xmax > (int)in_size) {
            xmax = (int)in_size;
        }
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double wgt = triangle((x + xmin - center + 0.5) * ss);
            tmp[x] = wgt;
            ww += wgt;
        }
        int32_t *k = kk + (size_t)i * ksize;
        for (int x = 0; x < (int)ksize; x++) {
            double v = 0.0;
            if (x < xmax) {
                v = ww != 0.0 ? tmp[x] / ww : tmp[x];
            }
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << QS_PRE_PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << QS_PRE_PRECISION_BITS));
        }
        bounds[2 * i] = (uint32_t)xmin;
        bounds[2 * i + 1] = (uint32_t)xmax;
    }
}

static uint8_t clip8(int32_t acc) {
    if (acc < 0) {
        return 0;
    }
    acc >>= QS_PRE_PRECISION_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

/* Horizontal pass over rows [r0, r1) of the source, for the nx output columns described by kk/bounds. */
static void resample_rows(const uint8_t *src, size_t src_stride, uint32_t r0, uint32_t r1, uint32_t c,
                          uint32_t nx, uint32_t ksize, const int32_t *kk, const uint32_t *bounds, uint8_t *dst) {
    const size_t dst_stride = (size_t)nx * c;
    for (uint32_t r = r0; r < r1; r++) {
        const uint8_t *row = src + (size_t)r * src_stride;
        uint8_t *out = dst + (size_t)(r - r0) * dst_stride;
        for (uint32_t i = 0; i < nx; i++) {
            const int32_t *k = kk + (size_t)i * ksize;
            const uint8_t *in = row + (size_t)bounds[2 * i] * c;
            const uint32_t n = bounds[2 * i + 1];
            for (uint32_t ch = 0; ch < c; ch++) {
                int32_t acc = 1 << (QS_PRE_PRECISION_BITS - 1);
                for (uint32_t t = 0; t < n; t++) {
                    acc += in[(size_t)t * c + ch] * k[t];
                }
                out[(size_t)i * c + ch] = clip8(acc);
            }
        }
    }
}

/* Vertical pass: src rows start at absolute row src_row0; bytes per output row = row_bytes. */
static void resample_cols(const uint8_t *src, size_t src_stride, uint32_t src_row0, size_t row_bytes,
                          uint32_t ny, uint32_t ksize, const int32_t *kk, const uint32_t *bounds, uint8_t *dst) {
    for (uint32_t j = 0; j < ny; j++) {
        const int32_t *k = kk + (size_t)j * ksize;
        const uint8_t *in = src + (size_t)(bounds[2 * j] - src_row0) * src_stride;
        const uint32_t n = bounds[2 * j + 1];
        uint8_t *out = dst + (size_t)j * row_bytes;
        for (size_t i = 0; i < row_bytes; i++) {
            int32_t acc = 1 << (QS_PRE_PRECISION_BITS - 1);
            for (uint32_t t = 0; t < n; t++) {
                acc += in[(size_t)t * src_stride + i] * k[t];
            }
            out[i] = clip8(acc);
        }
    }
}

/* Pillow's NEAREST (ImagingScaleAffine): the source position is accumulated step by step in double. */
static void nearest_index(uint32_t in_size, uint32_t out_size, uint32_t first, uint32_t count, uint32_t *idx) {
    const double step = (double)(float)in_size / out_size;
    double pos = 0.0 + step * 0.5;
    for (uint32_t o = 0; o < first + count; o++) {
        if (o >= first) {
            int v = pos < 0.0 ? -1 : (int)pos;
            if (v < 0) {
                v = 0;
            }
            if (v >= (int)in_size) {
                v = (int)in_size - 1;
            }
            idx[o - first] = (uint32_t)v;
        }
        pos += step;
    }
}

/* ---- normalization ---- */

/* The divisor that reproduces x / d when scale == 1/d for d a multiple of 0.5, else 0 (multiply). */
static float scale_divisor(float scale) {
    double d = 1.0 / (double)scale;
    double dr = nearbyint(d * 2.0) / 2.0;
    if (dr >= 0.5 && fabs(d - dr) <= 1e-6 * dr) {
        return (float)dr;
    }
    return 0.0f;
}

static void build_lut(const qs_preprocess_spec *spec, uint32_t channels, float lut[3][256]) {
    const float div = scale_divisor(spec->scale);
    for (uint32_t oc = 0; oc < channels; oc++) {
        const float mean = spec->mean[oc], std = spec->std[oc];
        for (int v = 0; v < 256; v++) {
            float x = div != 0.0f ? (float)v / div : (float)v * spec->scale;
            lut[oc][v] = (x - mean) / std;
        }
    }
}

qs_image_status qs_preprocess_run(const qs_preprocess_spec *spec, const qs_image *image, float *out,
                                  size_t out_len, void *scratch, size_t scratch_size, qs_image_error *err) {
    error_clear(err);
    if (image == NULL || image->pixels == NULL || out == NULL) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "preprocess", "missing image or output");
    }
    plan p;
    qs_image_status st = plan_make(spec, image->width, image->height, &p, err);
    if (st != QS_IMAGE_OK) {
        return st;
    }
    if (image->channels != p.channels) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "preprocess", "image has %u channels, the spec wants %u",
                    image->channels, p.channels);
    }
    const size_t plane = (size_t)p.out_w * p.out_h;
    if (out_len < plane * p.channels) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "preprocess", "output holds %zu floats, %zu needed", out_len,
                    plane * p.channels);
    }
    void *owned = NULL;
    if (p.total != 0 && scratch == NULL) {
        owned = scratch = malloc(p.total);
        if (owned == NULL) {
            return fail(err, QS_IMAGE_NO_MEMORY, "preprocess", "cannot allocate %zu bytes of scratch", p.total);
        }
        scratch_size = p.total;
    }
    if (scratch_size < p.total) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "preprocess", "scratch holds %zu bytes, %zu needed",
                    scratch_size, p.total);
    }
    uint8_t *base = NULL;
    if (scratch != NULL) {
        base = (uint8_t *)scratch + (QS_PRE_ALIGN - (uintptr_t)scratch % QS_PRE_ALIGN) % QS_PRE_ALIGN;
    }

    const uint32_t c = p.channels, nx = p.x1 - p.x0, ny = p.y1 - p.y0;
    const size_t src_stride = (size_t)image->width * c;
    /* The resized window: pixel (rx, ry) is at fin[(ry - fin_y) * fin_stride + (rx - fin_x) * c]. */
    const uint8_t *fin = image->pixels;
    size_t fin_stride = src_stride;
    uint32_t fin_x = 0, fin_y = 0;

    if (p.resample && spec->interp == QS_PREPROCESS_INTERP_BILINEAR && nx > 0 && ny > 0) {
        int32_t *hk = (int32_t *)(void *)(base + p.off_hk), *vk = (int32_t *)(void *)(base + p.off_vk);
        uint32_t *hb = (uint32_t *)(void *)(base + p.off_hb), *vb = (uint32_t *)(void *)(base + p.off_vb);
        double *tmp = (double *)(void *)(base + p.off_tmp);
        uint32_t r0 = p.y0, r1 = p.y1;
        if (p.need_v) {
            bilinear_coeffs(p.h, p.rh, p.y0, ny, p.ksize_v, vk, vb, tmp);
            r0 = vb[0];
            r1 = vb[2 * (ny - 1)] + vb[2 * (ny - 1) + 1];
        }
        if (p.need_h) {
            uint8_t *work = base + p.off_work;
            bilinear_coeffs(p.w, p.rw, p.x0, nx, p.ksize_h, hk, hb, tmp);
            resample_rows(image->pixels, src_stride, r0, r1, c, nx, p.ksize_h, hk, hb, work);
            fin = work;
            fin_stride = (size_t)nx * c;
            fin_x = p.x0;
            fin_y = r0;
        }
        if (p.need_v) {
            uint8_t *win = base + p.off_win;
            const uint8_t *src = fin + (size_t)(p.x0 - fin_x) * c;
            resample_cols(src, fin_stride, fin_y, (size_t)nx * c, ny, p.ksize_v, vk, vb, win);
            fin = win;
            fin_stride = (size_t)nx * c;
            fin_x = p.x0;
            fin_y = p.y0;
        }
    } else if (p.resample && nx > 0 && ny > 0) {
        uint32_t *xi = (uint32_t *)(void *)(base + p.off_hb), *yi = (uint32_t *)(void *)(base + p.off_vb);
        uint8_t *win = base + p.off_win;
        nearest_index(p.w, p.rw, p.x0, nx, xi);
        nearest_index(p.h, p.rh, p.y0, ny, yi);
        for (uint32_t j = 0; j < ny; j++) {
            const uint8_t *row = image->pixels + (size_t)yi[j] * src_stride;
            uint8_t *o = win + (size_t)j * nx * c;
            for (uint32_t i = 0; i < nx; i++) {
                memcpy(o + (size_t)i * c, row + (size_t)xi[i] * c, c);
            }
        }
        fin = win;
        fin_stride = (size_t)nx * c;
        fin_x = p.x0;
        fin_y = p.y0;
    }

    float lut[3][256];
    build_lut(spec, c, lut);
    const bool bgr = spec->order == QS_PREPROCESS_ORDER_BGR && c == 3;
    for (uint32_t oy = 0; oy < p.out_h; oy++) {
        const int64_t ry = p.off_y + oy;
        const bool row_in = ry >= p.y0 && ry < p.y1;
        const uint8_t *row = row_in ? fin + (size_t)(ry - fin_y) * fin_stride : NULL;
        for (uint32_t ox = 0; ox < p.out_w; ox++) {
            const int64_t rx = p.off_x + ox;
            const uint8_t *px = row != NULL && rx >= p.x0 && rx < p.x1 ? row + (size_t)(rx - fin_x) * c : NULL;
            for (uint32_t oc = 0; oc < c; oc++) {
                const uint32_t sc = bgr ? 2 - oc : oc;
                const float v = lut[oc][px != NULL ? px[sc] : 0];
                if (spec->layout == QS_PREPROCESS_LAYOUT_NCHW) {
                    out[oc * plane + (size_t)oy * p.out_w + ox] = v;
                } else {
                    out[((size_t)oy * p.out_w + ox) * c + oc] = v;
                }
            }
        }
    }
    free(owned);
    return QS_IMAGE_OK;
}
