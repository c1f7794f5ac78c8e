/* Hand-run driver for tests/compare_preprocess_pillow.py: one image in, its ImageNet tensor (f32 NCHW) on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "preprocess.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE > tensor.f32\n"
                        "Writes the 1x3x224x224 float32 tensor of the ImageNet recipe (Resize(256), "
                        "CenterCrop(224), /255, mean/std, NCHW).\n",
                argv[0]);
        return 2;
    }
    int rc = 1;
    uint8_t *data = NULL;
    float *out = NULL;
    qs_image img = {0};
    qs_image_error err;
    FILE *f = fopen(argv[1], "rb");
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        goto cleanup;
    }
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", argv[1]);
        goto cleanup;
    }
    if (qs_image_decode(data, (size_t)n, NULL, QS_IMAGE_COLOR_RGB, &img, &err) != QS_IMAGE_OK) {
        fprintf(stderr, "%s: %s: %s (%s)\n", argv[1], err.where, err.message, qs_image_status_to_string(err.code));
        goto cleanup;
    }
    qs_preprocess_spec spec;
    qs_preprocess_spec_imagenet(&spec);
    uint32_t shape[4];
    size_t count = 0;
    if (qs_preprocess_output_shape(&spec, img.width, img.height, shape, &count, &err) != QS_IMAGE_OK ||
        (out = malloc(count * sizeof *out)) == NULL ||
        qs_preprocess_run(&spec, &img, out, count, NULL, 0, &err) != QS_IMAGE_OK) {
        fprintf(stderr, "%s: preprocessing failed: %s\n", argv[1], err.message);
        goto cleanup;
    }
    if (fwrite(out, sizeof *out, count, stdout) != count) {
        fprintf(stderr, "short write\n");
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (f != NULL) {
        fclose(f);
    }
    free(out);
    free(data);
    qs_image_free(&img);
    return rc;
}
