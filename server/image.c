/* Image decoding: magic-byte detection, bounded JPEG (libjpeg) and PNG (libpng) decoders, EXIF orientation. */

#include "image.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* A progressive JPEG can hold thousands of tiny scans that each cost a full pass; libjpeg-turbo's
 * own TurboJPEG API stops at 500, and so do we. */
#define QS_JPEG_MAX_SCANS 500
/* Ancillary PNG chunks (text, ICC profiles) are ignored by us; cap what libpng may buffer for them. */
#define QS_PNG_CHUNK_MALLOC_MAX (8u * 1024u * 1024u)
#define QS_PNG_CHUNK_CACHE_MAX 128u

static const struct {
    const char *code;
    int http;
} status_table[QS_IMAGE_STATUS_COUNT] = {
#define QS_IMAGE_STATUS_ROW(name, code, http) [QS_IMAGE_##name] = {code, http},
    QS_IMAGE_STATUS_LIST(QS_IMAGE_STATUS_ROW)
#undef QS_IMAGE_STATUS_ROW
};

const char *qs_image_status_to_string(qs_image_status status) {
    if ((unsigned)status >= QS_IMAGE_STATUS_COUNT) {
        return "unknown";
    }
    return status_table[status].code;
}

int qs_image_status_http(qs_image_status status) {
    if ((unsigned)status >= QS_IMAGE_STATUS_COUNT) {
        return 500;
    }
    return status_table[status].http;
}

static void error_clear(qs_image_error *err) {
    if (err != NULL) {
        err->code = QS_IMAGE_OK;
        err->where[0] = '\0';
        err->message[0] = '\0';
    }
}

/* Records the first error only; returns code so that callers can `return fail(...)`. */
static qs_image_status fail(qs_image_error *err, qs_image_status code, const char *where, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));

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

void qs_image_free(qs_image *image) {
    if (image != NULL) {
        free(image->pixels);
        memset(image, 0, sizeof *image);
    }
}

static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

qs_image_format qs_image_detect(const uint8_t *data, size_t size) {
    if (data == NULL) {
        return QS_IMAGE_FORMAT_UNKNOWN;
    }
    if (size >= sizeof jpeg_magic && memcmp(data, jpeg_magic, sizeof jpeg_magic) == 0) {
        return QS_IMAGE_FORMAT_JPEG;
    }
    if (size >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0) {
        return QS_IMAGE_FORMAT_PNG;
    }
    return QS_IMAGE_FORMAT_UNKNOWN;
}

/* True when the (short) data is a strict prefix of a known magic: a truncated file, not a foreign one. */
static bool is_magic_prefix(const uint8_t *data, size_t size) {
    return (size < sizeof jpeg_magic && memcmp(data, jpeg_magic, size) == 0) ||
           (size < sizeof png_magic && memcmp(data, png_magic, size) == 0);
}

typedef struct {
    uint64_t max_pixels;
    uint32_t max_side;
    uint32_t dct_scale_min_side;
} limits_resolved;

static limits_resolved resolve_limits(const qs_image_limits *limits) {
    limits_resolved r = {QS_IMAGE_DEFAULT_MAX_PIXELS, QS_IMAGE_DEFAULT_MAX_SIDE, 0};
    if (limits != NULL) {
        if (limits->max_pixels != 0) {
            r.max_pixels = limits->max_pixels > (UINT64_C(1) << 40) ? UINT64_C(1) << 40 : limits->max_pixels;
        }
        if (limits->max_side != 0) {
            r.max_side = limits->max_side > INT32_MAX ? (uint32_t)INT32_MAX : limits->max_side;
        }
        r.dct_scale_min_side = limits->dct_scale_min_side;
    }
    return r;
}

static qs_image_status check_dimensions(uint64_t width, uint64_t height, const limits_resolved *lim,
                                        const char *where, const char *what, qs_image_error *err) {
    if (width == 0 || height == 0) {
        return fail(err, QS_IMAGE_CORRUPT, where, "%s: empty image (%llux%llu)", what,
                    (unsigned long long)width, (unsigned long long)height);
    }
    if (width > lim->max_side || height > lim->max_side) {
        return fail(err, QS_IMAGE_TOO_LARGE, where, "%s: %llux%llu exceeds the %u-pixel side limit", what,
                    (unsigned long long)width, (unsigned long long)height, lim->max_side);
    }
    if (width * height > lim->max_pixels) {
        return fail(err, QS_IMAGE_TOO_LARGE, where, "%s: %llux%llu exceeds the %llu-pixel limit", what,
                    (unsigned long long)width, (unsigned long long)height,
                    (unsigned long long)lim->max_pixels);
    }
    return QS_IMAGE_OK;
}

/* ---- pixel conversions shared by both decoders (Pillow's Convert.c semantics) ---- */

static uint8_t rgb_to_luma(uint8_t r, uint8_t g, uint8_t b) {
    return (uint8_t)(((uint32_t)r * 19595u + (uint32_t)g * 38470u + (uint32_t)b * 7471u + 0x8000u) >> 16);
}

/* Rounded a*b/255 for a, b in 0..255. */
static uint32_t mul_div255(uint32_t a, uint32_t b) {
    uint32_t t = a * b + 128u;
    return ((t >> 8) + t) >> 8;
}

/*
 * Converts n pixels in place from in_c to out_c channels. in_c is 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA,
 * or CMYK when cmyk is set, already Adobe-inverted back to plain ink values); out_c is 1 or 3.
 * The buffer must hold n*max(in_c, out_c) bytes. Expanding runs backwards so that it can be in place.
 */
static void convert_pixels(uint8_t *buf, size_t n, uint32_t in_c, uint32_t out_c, bool cmyk) {
    if (in_c == out_c && !cmyk) {
        return;
    }
    if (out_c > in_c) { /* gray (L or LA) to RGB */
        for (size_t i = n; i-- > 0;) {
            uint8_t v = buf[i * in_c];
            buf[i * 3 + 0] = v;
            buf[i * 3 + 1] = v;
            buf[i * 3 + 2] = v;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = buf + i * in_c;
        uint8_t r, g, b;
        if (in_c <= 2) {
            buf[i] = p[0];
            continue;
        }
        if (cmyk) {
            uint32_t nk = 255u - p[3];
            r = (uint8_t)(nk - mul_div255(p[0], nk));
            g = (uint8_t)(nk - mul_div255(p[1], nk));
            b = (uint8_t)(nk - mul_div255(p[2], nk));
        } else {
            r = p[0];
            g = p[1];
            b = p[2];
        }
        if (out_c == 1) {
            buf[i] = rgb_to_luma(r, g, b);
        } else {
            buf[i * 3 + 0] = r;
            buf[i * 3 + 1] = g;
            buf[i * 3 + 2] = b;
        }
    }
}

/* ---- EXIF orientation ---- */

static uint32_t read_u16(const uint8_t *p, bool big_endian) {
    return big_endian ? ((uint32_t)p[0] << 8 | p[1]) : ((uint32_t)p[1] << 8 | p[0]);
}

static uint32_t read_u32(const uint8_t *p, bool big_endian) {
    return big_endian ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
                      : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/*
 * Returns the orientation tag (1..8) of IFD0 in an APP1 payload, or 1 when absent or malformed.
 * Every offset comes from the file, so every read is checked against len.
 */
static int exif_orientation(const uint8_t *app1, size_t len) {
    static const uint8_t exif_id[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (len < sizeof exif_id + 8 || memcmp(app1, exif_id, sizeof exif_id) != 0) {
        return 1;
    }
    const uint8_t *tiff = app1 + sizeof exif_id;
    size_t tlen = len - sizeof exif_id;
    bool be;
    if (tiff[0] == 'I' && tiff[1] == 'I') {
        be = false;
    } else if (tiff[0] == 'M' && tiff[1] == 'M') {
        be = true;
    } else {
        return 1;
    }
    if (read_u16(tiff + 2, be) != 42) {
        return 1;
    }
    size_t ifd = read_u32(tiff + 4, be);
    if (ifd > tlen || tlen - ifd < 2) {
        return 1;
    }
    size_t count = read_u16(tiff + ifd, be);
    if ((tlen - ifd - 2) / 12 < count) {
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        const uint8_t *entry = tiff + ifd + 2 + 12 * i;
        if (read_u16(entry, be) != 0x0112) {
            continue;
        }
        /* SHORT, count 1: the value sits in the first two bytes of the value field. */
        if (read_u16(entry + 2, be) != 3 || read_u32(entry + 4, be) != 1) {
            return 1;
        }
        uint32_t v = read_u16(entry + 8, be);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/*
 * Applies an EXIF orientation (2..8) to a decoded image, as Pillow's ImageOps.exif_transpose does.
 * Allocates the upright copy and frees the original.
 */
static qs_image_status apply_orientation(qs_image *img, int orientation, qs_image_error *err) {
    if (orientation <= 1 || orientation > 8) {
        return QS_IMAGE_OK;
    }
    const size_t w = img->width, h = img->height, c = img->channels;
    const bool swap = orientation >= 5;
    const size_t ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *dst = malloc(w * h * c);
    if (dst == NULL) {
        return fail(err, QS_IMAGE_NO_MEMORY, "image: orientation", "cannot allocate %zu bytes", w * h * c);
    }
    for (size_t y = 0; y < oh; y++) {
        for (size_t x = 0; x < ow; x++) {
            size_t sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;         /* mirror left-right */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break; /* rotate 180 */
            case 4: sx = x; sy = h - 1 - y; break;         /* mirror top-bottom */
            case 5: sx = y; sy = x; break;                 /* transpose */
            case 6: sx = y; sy = h - 1 - x; break;         /* rotate 90 clockwise */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break; /* transverse */
            default: sx = w - 1 - y; sy = x; break;        /* 8: rotate 90 counter-clockwise */
            }
            memcpy(dst + (y * ow + x) * c, img->pixels + (sy * w + sx) * c, c);
        }
    }
    free(img->pixels);
    img->pixels = dst;
    img->width = (uint32_t)ow;
    img->height = (uint32_t)oh;
    return QS_IMAGE_OK;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    qs_image_status code; /* status to report after the longjmp */
    char message[JMSG_LENGTH_MAX];
    bool truncated;
    uint8_t *pixels; /* owned here until handed to the caller */
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    ctx->pub.format_message(cinfo, ctx->message);
    switch (ctx->pub.msg_code) {
    case JERR_OUT_OF_MEMORY:
        ctx->code = QS_IMAGE_NO_MEMORY;
        break;
    case JERR_NO_BACKING_STORE: /* our max_memory_to_use cap was hit */
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        ctx->code = QS_IMAGE_TOO_LARGE;
        break;
    case JERR_BAD_PRECISION:
    case JERR_CONVERSION_NOTIMPL:
        ctx->code = QS_IMAGE_UNSUPPORTED_FORMAT;
        break;
    default:
        ctx->code = QS_IMAGE_CORRUPT;
        break;
    }
    longjmp(ctx->jump, 1);
}

/* Warnings are tolerated as Pillow tolerates them, except running out of data: a truncated
 * body is an error (Pillow raises "image file is truncated" too). */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (level < 0) {
        if (ctx->pub.msg_code == JWRN_JPEG_EOF) {
            ctx->truncated = true;
        }
        ctx->pub.num_warnings++;
    }
}

static void jpeg_on_output(j_common_ptr cinfo) {
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo) {
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > QS_JPEG_MAX_SCANS) {
        snprintf(ctx->message, sizeof ctx->message, "more than %d progressive scans", QS_JPEG_MAX_SCANS);
        ctx->code = QS_IMAGE_CORRUPT;
        longjmp(ctx->jump, 1);
    }
}

/* Picks 1/2, 1/4 or 1/8 so that the shorter decoded side stays >= min_side; 1 when disabled. */
static unsigned jpeg_pick_denom(uint32_t width, uint32_t height, uint32_t min_side) {
    if (min_side == 0) {
        return 1;
    }
    uint32_t shorter = width < height ? width : height;
    for (unsigned denom = 8; denom > 1; denom /= 2) {
        if ((shorter + denom - 1) / denom >= min_side) {
            return denom;
        }
    }
    return 1;
}

/*
 * The libjpeg part, kept apart so that nothing local to this function changes between setjmp and
 * longjmp: all state lives in *ctx and *cinfo, owned by the caller.
 */
static qs_image_status jpeg_run(struct jpeg_decompress_struct *cinfo, jpeg_ctx *ctx, const uint8_t *data,
                                size_t size, const limits_resolved *lim, qs_image_color want, qs_image *out,
                                int *orientation, qs_image_error *err) {
    if (setjmp(ctx->jump) != 0) {
        return fail(err, ctx->code, "body: JPEG", "%s", ctx->message);
    }
    jpeg_create_decompress(cinfo);
    cinfo->progress = &ctx->progress; /* after create: it zeroes everything but err */
    /* Bounded by the pixel limit: whole-image coefficient buffers for progressive files are
     * 2 bytes per sample, plus fixed overhead. */
    uint64_t mem_cap = lim->max_pixels * 8u + 64u * 1024u * 1024u; /* max_pixels <= 2^40: no overflow */
    cinfo->mem->max_memory_to_use = mem_cap > (uint64_t)LONG_MAX ? LONG_MAX : (long)mem_cap;
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        return fail(err, QS_IMAGE_CORRUPT, "body: JPEG header", "no image in the JPEG stream");
    }
    if (ctx->truncated) {
        return fail(err, QS_IMAGE_CORRUPT, "body: JPEG header", "JPEG data ends inside the header");
    }
    qs_image_status st = check_dimensions(cinfo->image_width, cinfo->image_height, lim, "body: JPEG header",
                                          "JPEG header", err);
    if (st != QS_IMAGE_OK) {
        return st;
    }
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m != NULL; m = m->next) {
        if (m->marker == JPEG_APP0 + 1) {
            *orientation = exif_orientation(m->data, m->data_length);
            if (*orientation != 1) {
                break;
            }
        }
    }

    bool cmyk = false;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo->out_color_space = want == QS_IMAGE_COLOR_GRAY ? JCS_GRAYSCALE : JCS_RGB;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo->out_color_space = JCS_RGB; /* gray comes from Pillow's luma of RGB, not from Y */
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo->out_color_space = JCS_CMYK;
        cmyk = true;
        break;
    default:
        return fail(err, QS_IMAGE_UNSUPPORTED_FORMAT, "body: JPEG header",
                    "unsupported JPEG color space with %d components", cinfo->num_components);
    }
    unsigned denom = jpeg_pick_denom(cinfo->image_width, cinfo->image_height, lim->dct_scale_min_side);
    cinfo->scale_num = 1;
    cinfo->scale_denom = denom;

    jpeg_start_decompress(cinfo);
    const uint32_t in_c = (uint32_t)cinfo->output_components;
    const uint32_t out_c = want == QS_IMAGE_COLOR_GRAY ? 1u : 3u;
    const uint32_t w = cinfo->output_width, h = cinfo->output_height;
    const uint32_t buf_c = in_c > out_c ? in_c : out_c;
    if (w == 0 || h == 0 || in_c == 0 || in_c > 4) {
        return fail(err, QS_IMAGE_CORRUPT, "body: JPEG", "unexpected output geometry");
    }
    ctx->pixels = malloc((size_t)w * h * buf_c);
    if (ctx->pixels == NULL) {
        return fail(err, QS_IMAGE_NO_MEMORY, "body: JPEG", "cannot allocate %ux%u pixels", w, h);
    }
    const size_t stride = (size_t)w * in_c;
    while (cinfo->output_scanline < h) {
        JSAMPROW row = ctx->pixels + (size_t)cinfo->output_scanline * stride;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) {
            break;
        }
    }
    if (ctx->truncated || cinfo->output_scanline < h) {
        return fail(err, QS_IMAGE_CORRUPT, "body: JPEG", "JPEG data is truncated (%u of %u rows)",
                    cinfo->output_scanline, h);
    }
    jpeg_finish_decompress(cinfo);
    if (cmyk) {
        /* Pillow reads every 4-component JPEG as Adobe-inverted ("CMYK;I"). */
        size_t n = (size_t)w * h * 4;
        for (size_t i = 0; i < n; i++) {
            ctx->pixels[i] = (uint8_t)(255u - ctx->pixels[i]);
        }
    }
    convert_pixels(ctx->pixels, (size_t)w * h, in_c, out_c, cmyk);
    out->width = w;
    out->height = h;
    out->channels = out_c;
    out->pixels = ctx->pixels;
    ctx->pixels = NULL;
    return QS_IMAGE_OK;
}

static qs_image_status decode_jpeg(const uint8_t *data, size_t size, const limits_resolved *lim,
                                   qs_image_color want, qs_image *out, qs_image_error *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx ctx;
    int orientation = 1;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_on_error;
    ctx.pub.emit_message = jpeg_on_message;
    ctx.pub.output_message = jpeg_on_output;
    ctx.progress.progress_monitor = jpeg_on_progress;

    qs_image_status st = jpeg_run(&cinfo, &ctx, data, size, lim, want, out, &orientation, err);
    jpeg_destroy_decompress(&cinfo);
    free(ctx.pixels);
    if (st == QS_IMAGE_OK) {
        st = apply_orientation(out, orientation, err);
    }
    if (st != QS_IMAGE_OK) {
        qs_image_free(out);
    }
    return st;
}

/* ---- PNG ---- */

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    qs_image_status code; /* set by the callbacks before libpng longjmps */
    char message[160];
    uint8_t *pixels;
    png_bytep *rows;
} png_ctx;

static void png_on_read(png_structp png, png_bytep dst, size_t n) {
    png_ctx *ctx = png_get_io_ptr(png);
    if (ctx->size - ctx->pos < n) {
        ctx->code = QS_IMAGE_CORRUPT;
        png_error(png, "PNG data is truncated");
    }
    memcpy(dst, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    if (ctx->code == QS_IMAGE_OK) {
        ctx->code = strstr(msg, "user limit") != NULL ? QS_IMAGE_TOO_LARGE : QS_IMAGE_CORRUPT;
    }
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    png_longjmp(png, 1);
}

/* libpng reports a user-limit hit as a warning followed by a generic "Invalid IHDR data" error. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    if (ctx->code == QS_IMAGE_OK && strstr(msg, "user limit") != NULL) {
        ctx->code = QS_IMAGE_TOO_LARGE;
    }
}

static png_voidp png_on_malloc(png_structp png, png_alloc_size_t n) {
    void *p = malloc(n);
    if (p == NULL) {
        png_ctx *ctx = png_get_mem_ptr(png);
        ctx->code = QS_IMAGE_NO_MEMORY;
    }
    return p;
}

static void png_on_free(png_structp png, png_voidp p) {
    (void)png;
    free(p);
}

/* See jpeg_run: state lives in *ctx so that the longjmp back here loses nothing. */
static qs_image_status png_run(png_structp png, png_infop info, png_ctx *ctx, const limits_resolved *lim,
                               qs_image_color want, qs_image *out, qs_image_error *err) {
    if (setjmp(png_jmpbuf(png)) != 0) {
        return fail(err, ctx->code, "body: PNG", "%s", ctx->message);
    }
    png_set_user_limits(png, lim->max_side, lim->max_side);
    png_set_chunk_cache_max(png, QS_PNG_CHUNK_CACHE_MAX);
    png_set_chunk_malloc_max(png, QS_PNG_CHUNK_MALLOC_MAX);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, color_type, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
    qs_image_status st = check_dimensions(w32, h32, lim, "body: PNG header", "PNG header", err);
    if (st != QS_IMAGE_OK) {
        return st;
    }
    /* Expand to 8-bit L, LA, RGB or RGBA; tRNS is ignored as Pillow's convert('RGB') ignores it. */
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_set_palette_to_rgb(png);
    }
    if (color_type == PNG_COLOR_TYPE_GRAY && depth < 8) {
        png_set_expand_gray_1_2_4_to_8(png);
    }
    if (depth == 16) {
        png_set_strip_16(png); /* keeps the high byte, like Pillow's ";16B" unpackers */
    }
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const uint32_t in_c = png_get_channels(png, info);
    const uint32_t out_c = want == QS_IMAGE_COLOR_GRAY ? 1u : 3u;
    const uint32_t buf_c = in_c > out_c ? in_c : out_c;
    const size_t w = w32, h = h32;
    if (in_c < 1 || in_c > 4 || png_get_rowbytes(png, info) != w * in_c) {
        return fail(err, QS_IMAGE_CORRUPT, "body: PNG", "unexpected row layout after expansion");
    }
    ctx->pixels = malloc(w * h * buf_c);
    ctx->rows = malloc(h * sizeof *ctx->rows);
    if (ctx->pixels == NULL || ctx->rows == NULL) {
        return fail(err, QS_IMAGE_NO_MEMORY, "body: PNG", "cannot allocate %zux%zu pixels", w, h);
    }
    for (size_t y = 0; y < h; y++) {
        ctx->rows[y] = ctx->pixels + y * w * in_c;
    }
    png_read_image(png, ctx->rows);
    /* The trailing chunks (IEND) are not needed: a missing IEND alone should not fail a request. */
    convert_pixels(ctx->pixels, w * h, in_c, out_c, false);
    out->width = (uint32_t)w;
    out->height = (uint32_t)h;
    out->channels = out_c;
    out->pixels = ctx->pixels;
    ctx->pixels = NULL;
    return QS_IMAGE_OK;
}

static qs_image_status decode_png(const uint8_t *data, size_t size, const limits_resolved *lim,
                                  qs_image_color want, qs_image *out, qs_image_error *err) {
    /* IHDR must come first: check its dimensions before libpng allocates anything for them. */
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        qs_image_status st = check_dimensions(read_u32(data + 16, true), read_u32(data + 20, true), lim,
                                              "body: PNG header", "PNG header", err);
        if (st != QS_IMAGE_OK) {
            return st;
        }
    }
    png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.size = size;
    qs_image_status st;
    png_infop info = NULL;
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning,
                                               &ctx, png_on_malloc, png_on_free);
    if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
        st = fail(err, QS_IMAGE_NO_MEMORY, "body: PNG", "cannot allocate the PNG decoder");
        goto cleanup;
    }
    png_set_read_fn(png, &ctx, png_on_read);
    st = png_run(png, info, &ctx, lim, want, out, err);

cleanup:
    png_destroy_read_struct(png != NULL ? &png : NULL, info != NULL ? &info : NULL, NULL);
    free(ctx.rows);
    free(ctx.pixels);
    if (st != QS_IMAGE_OK) {
        qs_image_free(out);
    }
    return st;
}

qs_image_status qs_image_decode(const uint8_t *data, size_t size, const qs_image_limits *limits,
                                qs_image_color want, qs_image *out, qs_image_error *err) {
    error_clear(err);
    if (out == NULL) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "image", "no output image");
    }
    memset(out, 0, sizeof *out);
    if (want != QS_IMAGE_COLOR_RGB && want != QS_IMAGE_COLOR_GRAY) {
        return fail(err, QS_IMAGE_INVALID_ARGUMENT, "image", "unknown color model %d", (int)want);
    }
    if (data == NULL || size == 0) {
        return fail(err, QS_IMAGE_CORRUPT, "body", "empty body: expected a JPEG or PNG image");
    }
    limits_resolved lim = resolve_limits(limits);
    switch (qs_image_detect(data, size)) {
    case QS_IMAGE_FORMAT_JPEG:
        return decode_jpeg(data, size, &lim, want, out, err);
    case QS_IMAGE_FORMAT_PNG:
        return decode_png(data, size, &lim, want, out, err);
    default:
        break;
    }
    if (is_magic_prefix(data, size)) {
        return fail(err, QS_IMAGE_CORRUPT, "body", "image data is truncated (%zu bytes)", size);
    }
    return fail(err, QS_IMAGE_UNSUPPORTED_FORMAT, "body",
                "not a JPEG or PNG image (starts with %02x %02x %02x %02x)", data[0], size > 1 ? data[1] : 0,
                size > 2 ? data[2] : 0, size > 3 ? data[3] : 0);
}
