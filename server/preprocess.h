/* Preprocessing: decoded 8-bit pixels to a model's float input tensor, torchvision/Pillow-exact. */
#ifndef QS_SERVER_PREPROCESS_H
#define QS_SERVER_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef enum {
    QS_PREPROCESS_RESIZE_NONE = 0,
    QS_PREPROCESS_RESIZE_SHORTER_SIDE, /* torchvision Resize(int): shorter side -> size, longer = int(size*long/short) */
    QS_PREPROCESS_RESIZE_EXACT         /* torchvision Resize((h, w)) */
} qs_preprocess_resize;

typedef enum {
    QS_PREPROCESS_INTERP_BILINEAR = 0, /* Pillow's antialiased BILINEAR (triangle filter widened when shrinking) */
    QS_PREPROCESS_INTERP_NEAREST       /* Pillow's NEAREST */
} qs_preprocess_interp;

typedef enum { QS_PREPROCESS_ORDER_RGB = 0, QS_PREPROCESS_ORDER_BGR } qs_preprocess_order;

typedef enum { QS_PREPROCESS_LAYOUT_NCHW = 0, QS_PREPROCESS_LAYOUT_NHWC } qs_preprocess_layout;

/*
 * What a model expects. The pipeline is: resize, center crop (zero-padded when the crop is larger than
 * the image, as torchvision's CenterCrop), then per channel value = (pixel * scale - mean[c]) / std[c]
 * in float32, in the given channel order and layout, batch 1.
 *   color          RGB (3 channels) or GRAY (1 channel, mean[0]/std[0]); the image must match it
 *   resize         NONE, SHORTER_SIDE (resize_size) or EXACT (resize_width x resize_height); 1..65536
 *   crop_width/crop_height  both 0 for no crop, else both 1..65536
 *   scale          finite, non-zero. When 1/scale is a multiple of 0.5 (1/255, 1/127.5, 1), the pixel is
 *                  divided by it instead, which reproduces torchvision's ToTensor (x / 255) bit for bit.
 *   mean, std      per output channel, i.e. in the order of `order` (B first for BGR); std finite, non-zero
 *   order          RGB or BGR (ignored for GRAY)
 * Interpolation BICUBIC/LANCZOS and non-antialiased resizes are not provided.
 */
typedef struct {
    qs_image_color color;
    qs_preprocess_resize resize;
    uint32_t resize_size;
    uint32_t resize_width, resize_height;
    uint32_t crop_width, crop_height;
    qs_preprocess_interp interp;
    qs_preprocess_order order;
    float scale;
    float mean[3];
    float std[3];
    qs_preprocess_layout layout;
} qs_preprocess_spec;

/* Fills spec with torchvision's ImageNet evaluation recipe: RGB, Resize(256), CenterCrop(224),
 * ToTensor, Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), NCHW. */
void qs_preprocess_spec_imagenet(qs_preprocess_spec *spec);

/* Checks every field of spec. Returns QS_IMAGE_OK or QS_IMAGE_INVALID_ARGUMENT. */
qs_image_status qs_preprocess_validate(const qs_preprocess_spec *spec, qs_image_error *err);

/*
 * Output tensor shape for an image of the given size, in layout order: NCHW -> {1, C, H, W},
 * NHWC -> {1, H, W, C}. *count receives the number of floats. Without a crop the shape depends on
 * the image. Returns QS_IMAGE_OK, INVALID_ARGUMENT, or TOO_LARGE when the tensor would exceed
 * 2^31 floats.
 */
qs_image_status qs_preprocess_output_shape(const qs_preprocess_spec *spec, uint32_t image_width,
                                           uint32_t image_height, uint32_t shape[4], size_t *count,
                                           qs_image_error *err);

/* Bytes of scratch memory qs_preprocess_run needs for an image of this size. */
qs_image_status qs_preprocess_scratch_size(const qs_preprocess_spec *spec, uint32_t image_width,
                                           uint32_t image_height, size_t *bytes, qs_image_error *err);

/*
 * Runs the pipeline on image into out (out_len floats, at least the count from
 * qs_preprocess_output_shape). scratch may be NULL (then it is allocated and freed inside) or a
 * caller-owned buffer of scratch_size >= qs_preprocess_scratch_size() bytes; nothing is retained.
 * Only the pixels that survive the crop are resampled.
 * Returns QS_IMAGE_OK, INVALID_ARGUMENT (bad spec, channel mismatch, small out or scratch),
 * TOO_LARGE or NO_MEMORY.
 */
qs_image_status qs_preprocess_run(const qs_preprocess_spec *spec, const qs_image *image, float *out,
                                  size_t out_len, void *scratch, size_t scratch_size, qs_image_error *err);

#endif /* QS_SERVER_PREPROCESS_H */
