/* Image decoding for request bodies: JPEG and PNG bytes in, 8-bit interleaved pixels out. */
#ifndef QS_SERVER_IMAGE_H
#define QS_SERVER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Status codes shared by the image decoder and the preprocessing step.
 * Columns: enum suffix, stable code string (for JSON errors), HTTP status.
 */
#define QS_IMAGE_STATUS_LIST(X)                                   \
    X(OK, "ok", 200)                                              \
    X(INVALID_ARGUMENT, "invalid_argument", 500)                  \
    X(UNSUPPORTED_FORMAT, "unsupported_image_format", 415)        \
    X(CORRUPT, "corrupt_image", 400)                              \
    X(TOO_LARGE, "image_too_large", 413)                          \
    X(NO_MEMORY, "out_of_memory", 503)

typedef enum {
#define QS_IMAGE_STATUS_ENUM(name, code, http) QS_IMAGE_##name,
    QS_IMAGE_STATUS_LIST(QS_IMAGE_STATUS_ENUM)
#undef QS_IMAGE_STATUS_ENUM
    QS_IMAGE_STATUS_COUNT
} qs_image_status;

/* Stable lower-case code string ("corrupt_image"); "unknown" for values out of range. */
const char *qs_image_status_to_string(qs_image_status status);
/* HTTP status to answer a client with; 500 for values out of range. */
int qs_image_status_http(qs_image_status status);

/*
 * Caller-provided error report. Functions that take one clear it on entry and fill it at the
 * first error only (later failures on the way out never overwrite it). No allocation.
 */
typedef struct {
    qs_image_status code;
    char where[48];    /* short path to the culprit, e.g. "body: JPEG header" */
    char message[192]; /* human-readable sentence, no trailing newline */
} qs_image_error;

typedef enum { QS_IMAGE_COLOR_RGB = 0, QS_IMAGE_COLOR_GRAY = 1 } qs_image_color;

typedef enum { QS_IMAGE_FORMAT_UNKNOWN = 0, QS_IMAGE_FORMAT_JPEG, QS_IMAGE_FORMAT_PNG } qs_image_format;

/*
 * Decoder limits. Dimensions are checked against the file header before any pixel is decoded.
 *   max_pixels          width*height ceiling (1 .. 2^40); 0 means the default (QS_IMAGE_DEFAULT_MAX_PIXELS)
 *   max_side            ceiling for width and for height (1 .. 2^31-1); 0 means QS_IMAGE_DEFAULT_MAX_SIDE
 *   dct_scale_min_side  JPEG only, a speed option for very large photos: let libjpeg decode at 1/2, 1/4
 *                       or 1/8 size (the smallest such scale) as long as the shorter side stays
 *                       >= this value. 0 disables it; keep it 0 to match Pillow bit for bit.
 */
typedef struct {
    uint64_t max_pixels;
    uint32_t max_side;
    uint32_t dct_scale_min_side;
} qs_image_limits;

#define QS_IMAGE_DEFAULT_MAX_PIXELS 40000000u
#define QS_IMAGE_DEFAULT_MAX_SIDE 20000u

/* A decoded image: rows top to bottom, no padding, channels interleaved (1 = gray, 3 = RGB). */
typedef struct {
    uint32_t width, height, channels;
    uint8_t *pixels; /* width*height*channels bytes, owned by the image; free with qs_image_free */
} qs_image;

/* Releases the pixels and zeroes the struct. NULL-safe, idempotent. */
void qs_image_free(qs_image *image);

/* Guesses the container from the leading magic bytes (never from a content type). */
qs_image_format qs_image_detect(const uint8_t *data, size_t size);

/*
 * Decodes a JPEG or PNG held in memory into 8-bit pixels in the requested color model.
 *   data, size  the encoded bytes (not retained)
 *   limits      may be NULL for the defaults
 *   want        RGB (3 channels) or GRAY (1 channel)
 *   out         receives the image on success; left zeroed on failure. Free with qs_image_free.
 *   err         may be NULL
 * Conversions follow Pillow's Image.open(...).convert(mode): grayscale is replicated into RGB,
 * RGB to gray uses L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, CMYK/YCCK JPEGs are taken as
 * Adobe-inverted, alpha is dropped (not composited), palettes are expanded, 16-bit samples keep
 * their high byte. JPEG EXIF orientation (APP1) is applied, so width/height are the upright ones.
 * Returns QS_IMAGE_OK, UNSUPPORTED_FORMAT (neither JPEG nor PNG, or an exotic JPEG such as 12-bit),
 * CORRUPT (empty, truncated or malformed data), TOO_LARGE (header dimensions over the limits),
 * NO_MEMORY, or INVALID_ARGUMENT (NULL out, bad want).
 */
qs_image_status qs_image_decode(const uint8_t *data, size_t size, const qs_image_limits *limits,
                                qs_image_color want, qs_image *out, qs_image_error *err);

#endif /* QS_SERVER_IMAGE_H */
