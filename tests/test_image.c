/* Check tests for the image pipeline: decoding, Pillow/torchvision-exact preprocessing, hostile inputs. */

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include "image.h"
#include "preprocess.h"

/* ---- allocation failure injection ----
 * The test is linked with -Wl,--wrap=malloc: calls to malloc from this program and from
 * libqsimage (including libpng's allocations, which go through the decoder's hook) land here.
 * libjpeg's internal allocations and libc's own are not wrapped. */

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

static long alloc_countdown = -1; /* -1: never fail; N: let N allocations through, fail the next */
static long alloc_failures;

void *__wrap_malloc(size_t n) {
    if (alloc_countdown == 0) {
        alloc_failures++;
        return NULL;
    }
    if (alloc_countdown > 0) {
        alloc_countdown--;
    }
    return __real_malloc(n);
}

/* ---- helpers ---- */

static const char *test_data_dir(void) {
    const char *d = getenv("QS_TEST_DATA");
    return d != NULL && d[0] != '\0' ? d : "tests/data";
}

/* Reads a whole file; returns NULL when it cannot. The caller frees. */
static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    uint8_t *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static uint8_t *read_data(const char *name, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/image/%s", test_data_dir(), name);
    uint8_t *buf = read_all(path, size);
    ck_assert_msg(buf != NULL, "cannot read %s", path);
    return buf;
}

static qs_image_status decode_buf(const uint8_t *data, size_t size, const qs_image_limits *limits,
                                  qs_image_color want, qs_image *img, qs_image_error *err) {
    qs_image_status st = qs_image_decode(data, size, limits, want, img, err);
    ck_assert_int_eq(err->code, st);
    if (st != QS_IMAGE_OK) {
        ck_assert_ptr_null(img->pixels);
        ck_assert_msg(err->message[0] != '\0', "an error without a message");
    }
    return st;
}

/* ---- golden manifest (tests/data/image/manifest.txt, written by tests/gen_image_golden.py) ---- */

#define MAX_CASES 64

typedef struct {
    char file[64];
    qs_image_color color;
    uint32_t width, height;
    char expect[80];
} decode_case;

typedef struct {
    char name[48];
    char file[64];
    qs_preprocess_spec spec;
    uint32_t shape[4];
    char expect[80];
} pre_case;

static decode_case decode_cases[MAX_CASES];
static int n_decode_cases;
static pre_case pre_cases[MAX_CASES];
static int n_pre_cases;

static bool parse_floats3(const char *s, float v[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        v[i] = strtof(s, &end);
        if (end == s) {
            return false;
        }
        s = *end == ',' ? end + 1 : end;
    }
    return true;
}

static bool parse_pre_token(pre_case *pc, const char *key, const char *val) {
    qs_preprocess_spec *s = &pc->spec;
    if (strcmp(key, "file") == 0) {
        snprintf(pc->file, sizeof pc->file, "%s", val);
    } else if (strcmp(key, "color") == 0) {
        s->color = strcmp(val, "gray") == 0 ? QS_IMAGE_COLOR_GRAY : QS_IMAGE_COLOR_RGB;
    } else if (strcmp(key, "resize") == 0) {
        char mode[16];
        unsigned a, b;
        if (sscanf(val, "%15[a-z]:%u:%u", mode, &a, &b) != 3) {
            return false;
        }
        if (strcmp(mode, "shorter") == 0) {
            s->resize = QS_PREPROCESS_RESIZE_SHORTER_SIDE;
            s->resize_size = a;
        } else if (strcmp(mode, "exact") == 0) {
            s->resize = QS_PREPROCESS_RESIZE_EXACT;
            s->resize_width = a;
            s->resize_height = b;
        } else {
            s->resize = QS_PREPROCESS_RESIZE_NONE;
        }
    } else if (strcmp(key, "crop") == 0) {
        return sscanf(val, "%ux%u", &s->crop_width, &s->crop_height) == 2;
    } else if (strcmp(key, "interp") == 0) {
        s->interp = strcmp(val, "nearest") == 0 ? QS_PREPROCESS_INTERP_NEAREST : QS_PREPROCESS_INTERP_BILINEAR;
    } else if (strcmp(key, "scale") == 0) {
        s->scale = strtof(val, NULL);
    } else if (strcmp(key, "mean") == 0) {
        return parse_floats3(val, s->mean);
    } else if (strcmp(key, "std") == 0) {
        return parse_floats3(val, s->std);
    } else if (strcmp(key, "order") == 0) {
        s->order = strcmp(val, "bgr") == 0 ? QS_PREPROCESS_ORDER_BGR : QS_PREPROCESS_ORDER_RGB;
    } else if (strcmp(key, "layout") == 0) {
        s->layout = strcmp(val, "nhwc") == 0 ? QS_PREPROCESS_LAYOUT_NHWC : QS_PREPROCESS_LAYOUT_NCHW;
    } else if (strcmp(key, "shape") == 0) {
        return sscanf(val, "%u,%u,%u,%u", &pc->shape[0], &pc->shape[1], &pc->shape[2], &pc->shape[3]) == 4;
    } else if (strcmp(key, "expect") == 0) {
        snprintf(pc->expect, sizeof pc->expect, "%s", val);
    } else {
        return false;
    }
    return true;
}

static void load_manifest(void) {
    char path[1024];
    snprintf(path, sizeof path, "%s/image/manifest.txt", test_data_dir());
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "test_image: cannot open %s (is QS_TEST_DATA set?)\n", path);
        return;
    }
    char line[1024];
    while (fgets(line, sizeof line, f) != NULL) {
        char kind[16], file[64], color[8], expect[80];
        unsigned w, h;
        if (line[0] == '#') {
            continue;
        }
        if (sscanf(line, "decode %63s %7s %u %u %79s", file, color, &w, &h, expect) == 5 &&
            n_decode_cases < MAX_CASES) {
            decode_case *dc = &decode_cases[n_decode_cases++];
            snprintf(dc->file, sizeof dc->file, "%s", file);
            dc->color = strcmp(color, "gray") == 0 ? QS_IMAGE_COLOR_GRAY : QS_IMAGE_COLOR_RGB;
            dc->width = w;
            dc->height = h;
            snprintf(dc->expect, sizeof dc->expect, "%s", expect);
        } else if (sscanf(line, "%15s", kind) == 1 && strcmp(kind, "pre") == 0 && n_pre_cases < MAX_CASES) {
            pre_case *pc = &pre_cases[n_pre_cases];
            memset(pc, 0, sizeof *pc);
            char *save = NULL;
            char *tok = strtok_r(line, " \t\n", &save); /* "pre" */
            tok = strtok_r(NULL, " \t\n", &save);
            if (tok == NULL) {
                continue;
            }
            snprintf(pc->name, sizeof pc->name, "%s", tok);
            bool ok = true;
            while ((tok = strtok_r(NULL, " \t\n", &save)) != NULL) {
                char *eq = strchr(tok, '=');
                if (eq == NULL) {
                    ok = false;
                    break;
                }
                *eq = '\0';
                ok = ok && parse_pre_token(pc, tok, eq + 1);
            }
            if (ok) {
                n_pre_cases++;
            } else {
                fprintf(stderr, "test_image: bad manifest line for %s\n", pc->name);
            }
        }
    }
    fclose(f);
}

/* ---- decoding against Pillow ---- */

START_TEST(test_decode_golden) {
    const decode_case *dc = &decode_cases[_i];
    size_t size, exp_size;
    uint8_t *data = read_data(dc->file, &size);
    uint8_t *exp = read_data(dc->expect, &exp_size);
    qs_image img;
    qs_image_error err;
    qs_image_status st = decode_buf(data, size, NULL, dc->color, &img, &err);
    ck_assert_msg(st == QS_IMAGE_OK, "%s: %s: %s", dc->file, err.where, err.message);
    uint32_t c = dc->color == QS_IMAGE_COLOR_GRAY ? 1 : 3;
    ck_assert_msg(img.width == dc->width && img.height == dc->height && img.channels == c,
                  "%s: got %ux%ux%u, want %ux%ux%u", dc->file, img.width, img.height, img.channels, dc->width,
                  dc->height, c);
    ck_assert_uint_eq(exp_size, (size_t)img.width * img.height * img.channels);
    size_t diff = 0;
    int max_diff = 0;
    for (size_t i = 0; i < exp_size; i++) {
        int d = abs((int)img.pixels[i] - (int)exp[i]);
        diff += d != 0;
        max_diff = d > max_diff ? d : max_diff;
    }
    ck_assert_msg(diff == 0, "%s (%s): %zu of %zu bytes differ from Pillow, max diff %d", dc->file,
                  c == 1 ? "gray" : "rgb", diff, exp_size, max_diff);
    qs_image_free(&img);
    qs_image_free(&img); /* idempotent */
    free(data);
    free(exp);
}
END_TEST

/* ---- preprocessing against Pillow + torchvision ---- */

static void compare_floats(const char *what, const float *got, const float *want, size_t n, double tol) {
    double max_abs = 0.0;
    size_t not_identical = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            not_identical++;
        }
        max_abs = d > max_abs ? d : max_abs;
    }
    fprintf(stderr, "test_image: %-28s %zu values, %zu not bit-identical, max abs diff %.3g\n", what, n,
            not_identical, max_abs);
    ck_assert_msg(max_abs <= tol, "%s: max abs diff %.9g > %.3g (%zu of %zu values not bit-identical)", what,
                  max_abs, tol, not_identical, n);
}

START_TEST(test_preprocess_golden) {
    const pre_case *pc = &pre_cases[_i];
    size_t size, exp_size;
    uint8_t *data = read_data(pc->file, &size);
    uint8_t *exp = read_data(pc->expect, &exp_size);
    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(data, size, NULL, pc->spec.color, &img, &err), QS_IMAGE_OK);

    uint32_t shape[4];
    size_t count = 0;
    ck_assert_int_eq(qs_preprocess_output_shape(&pc->spec, img.width, img.height, shape, &count, &err), QS_IMAGE_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_msg(shape[i] == pc->shape[i], "%s: shape[%d] = %u, want %u", pc->name, i, shape[i], pc->shape[i]);
    }
    ck_assert_uint_eq(count * sizeof(float), exp_size);
    float *want = malloc(exp_size);
    ck_assert_ptr_nonnull(want);
    memcpy(want, exp, exp_size);

    /* once with internal scratch, once with a caller buffer of exactly the reported size */
    float *out = malloc(exp_size);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(qs_preprocess_run(&pc->spec, &img, out, count, NULL, 0, &err), QS_IMAGE_OK);
    compare_floats(pc->name, out, want, count, 1e-6);

    size_t scratch_size = 0;
    ck_assert_int_eq(qs_preprocess_scratch_size(&pc->spec, img.width, img.height, &scratch_size, &err), QS_IMAGE_OK);
    void *scratch = scratch_size != 0 ? malloc(scratch_size) : NULL;
    memset(out, 0xAB, exp_size);
    ck_assert_int_eq(qs_preprocess_run(&pc->spec, &img, out, count, scratch, scratch_size, &err), QS_IMAGE_OK);
    compare_floats(pc->name, out, want, count, 1e-6);

    free(scratch);
    free(out);
    free(want);
    free(exp);
    free(data);
    qs_image_free(&img);
}
END_TEST

/* Crop offsets follow Python's round(): (5 - 2) / 2 = 1.5 -> 2, (3 - 2) / 2 = 0.5 -> 0, (7-2)/2 = 2.5 -> 2. */
START_TEST(test_center_crop_rounding) {
    static const struct {
        uint32_t width, crop;
        float first;
    } cases[] = {{5, 2, 2.0f}, {3, 2, 0.0f}, {7, 2, 2.0f}, {9, 2, 4.0f}, {4, 2, 1.0f}, {1, 4, 0.0f}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t px[16];
        for (uint32_t i = 0; i < cases[k].width; i++) {
            px[i] = (uint8_t)(i + 1);
        }
        qs_image img = {cases[k].width, 1, 1, px};
        qs_preprocess_spec spec;
        memset(&spec, 0, sizeof spec);
        spec.color = QS_IMAGE_COLOR_GRAY;
        spec.crop_width = cases[k].crop;
        spec.crop_height = 1;
        spec.scale = 1.0f;
        spec.std[0] = 1.0f;
        float out[8];
        qs_image_error err;
        ck_assert_int_eq(qs_preprocess_run(&spec, &img, out, 8, NULL, 0, &err), QS_IMAGE_OK);
        if (cases[k].crop > cases[k].width) {
            /* 1 pixel padded to 4: left pad (4 - 1) // 2 = 1 */
            ck_assert(out[0] == 0.0f && out[1] == 1.0f && out[2] == 0.0f && out[3] == 0.0f);
        } else {
            ck_assert_msg(out[0] == cases[k].first + 1.0f, "width %u crop %u: first %g", cases[k].width,
                          cases[k].crop, (double)out[0]);
        }
    }
}
END_TEST

START_TEST(test_output_shape) {
    qs_preprocess_spec spec;
    qs_preprocess_spec_imagenet(&spec);
    uint32_t shape[4];
    size_t count;
    qs_image_error err;
    ck_assert_int_eq(qs_preprocess_output_shape(&spec, 500, 375, shape, &count, &err), QS_IMAGE_OK);
    ck_assert(shape[0] == 1 && shape[1] == 3 && shape[2] == 224 && shape[3] == 224);
    ck_assert_uint_eq(count, 3u * 224 * 224);
    spec.crop_width = spec.crop_height = 0;
    spec.layout = QS_PREPROCESS_LAYOUT_NHWC;
    ck_assert_int_eq(qs_preprocess_output_shape(&spec, 500, 375, shape, &count, &err), QS_IMAGE_OK);
    /* shorter side 375 -> 256, longer int(256 * 500 / 375) = 341 */
    ck_assert(shape[0] == 1 && shape[1] == 256 && shape[2] == 341 && shape[3] == 3);
    ck_assert_int_eq(qs_preprocess_output_shape(&spec, 375, 500, shape, &count, &err), QS_IMAGE_OK);
    ck_assert(shape[1] == 341 && shape[2] == 256);
}
END_TEST

START_TEST(test_preprocess_bad_arguments) {
    qs_preprocess_spec good, spec;
    qs_preprocess_spec_imagenet(&good);
    qs_image_error err;
    ck_assert_int_eq(qs_preprocess_validate(&good, &err), QS_IMAGE_OK);
    ck_assert_int_eq(qs_preprocess_validate(NULL, &err), QS_IMAGE_INVALID_ARGUMENT);

    spec = good;
    spec.std[1] = 0.0f;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_str_eq(qs_image_status_to_string(err.code), "invalid_argument");
    spec = good;
    spec.scale = NAN;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);
    spec = good;
    spec.crop_height = 0;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);
    spec = good;
    spec.resize_size = 0;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);
    spec = good;
    spec.resize = (qs_preprocess_resize)7;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);
    spec = good;
    spec.layout = (qs_preprocess_layout)9;
    ck_assert_int_eq(qs_preprocess_validate(&spec, &err), QS_IMAGE_INVALID_ARGUMENT);

    uint8_t px[4 * 4 * 3] = {0};
    qs_image rgb = {4, 4, 3, px}, gray = {4, 4, 1, px};
    float out[3 * 224 * 224];
    spec = good;
    spec.color = QS_IMAGE_COLOR_GRAY;
    ck_assert_int_eq(qs_preprocess_run(&spec, &rgb, out, 224 * 224, NULL, 0, &err), QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_preprocess_run(&good, &gray, out, 3 * 224 * 224, NULL, 0, &err), QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_preprocess_run(&good, &rgb, out, 3 * 224 * 224 - 1, NULL, 0, &err),
                     QS_IMAGE_INVALID_ARGUMENT);
    uint8_t small_scratch[8];
    ck_assert_int_eq(qs_preprocess_run(&good, &rgb, out, 3 * 224 * 224, small_scratch, sizeof small_scratch, &err),
                     QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_preprocess_run(&good, &rgb, out, 3 * 224 * 224, NULL, 0, &err), QS_IMAGE_OK);
    ck_assert_int_eq(qs_preprocess_run(&good, NULL, out, 3 * 224 * 224, NULL, 0, &err), QS_IMAGE_INVALID_ARGUMENT);
}
END_TEST

/* ---- status table ---- */

START_TEST(test_status_table) {
    ck_assert_str_eq(qs_image_status_to_string(QS_IMAGE_OK), "ok");
    ck_assert_int_eq(qs_image_status_http(QS_IMAGE_UNSUPPORTED_FORMAT), 415);
    ck_assert_int_eq(qs_image_status_http(QS_IMAGE_CORRUPT), 400);
    ck_assert_int_eq(qs_image_status_http(QS_IMAGE_TOO_LARGE), 413);
    ck_assert_str_eq(qs_image_status_to_string(QS_IMAGE_TOO_LARGE), "image_too_large");
    ck_assert_str_eq(qs_image_status_to_string((qs_image_status)99), "unknown");
    ck_assert_int_eq(qs_image_status_http((qs_image_status)-1), 500);
    for (int s = 0; s < QS_IMAGE_STATUS_COUNT; s++) {
        ck_assert_ptr_nonnull(qs_image_status_to_string((qs_image_status)s));
    }
}
END_TEST

/* ---- hostile and broken inputs ---- */

static void expect_error(const uint8_t *data, size_t size, const qs_image_limits *limits, qs_image_status want,
                         const char *what) {
    qs_image img;
    qs_image_error err;
    qs_image_status st = decode_buf(data, size, limits, QS_IMAGE_COLOR_RGB, &img, &err);
    ck_assert_msg(st == want, "%s: got %s (%s: %s), want %s", what, qs_image_status_to_string(st), err.where,
                  err.message, qs_image_status_to_string(want));
    qs_image_free(&img);
}

START_TEST(test_empty_and_foreign) {
    static const uint8_t jpeg2[] = {0xFF, 0xD8};
    static const uint8_t gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    static const char text[] = "{\"instances\": [[1, 2, 3]]}\nthis is not an image\n";
    expect_error(NULL, 0, NULL, QS_IMAGE_CORRUPT, "NULL body");
    expect_error((const uint8_t *)"", 0, NULL, QS_IMAGE_CORRUPT, "empty body");
    expect_error(jpeg2, sizeof jpeg2, NULL, QS_IMAGE_CORRUPT, "JPEG magic only");
    expect_error(gif, sizeof gif - 1, NULL, QS_IMAGE_UNSUPPORTED_FORMAT, "GIF");
    expect_error((const uint8_t *)text, sizeof text - 1, NULL, QS_IMAGE_UNSUPPORTED_FORMAT, "text");

    uint8_t noise[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        s = s * 1103515245u + 12345u;
        noise[i] = (uint8_t)(s >> 16);
    }
    noise[0] = 0x42;
    expect_error(noise, sizeof noise, NULL, QS_IMAGE_UNSUPPORTED_FORMAT, "random bytes");
    noise[0] = 0xFF, noise[1] = 0xD8, noise[2] = 0xFF;
    expect_error(noise, sizeof noise, NULL, QS_IMAGE_CORRUPT, "random bytes after a JPEG magic");
    memcpy(noise, "\x89PNG\r\n\x1a\n", 8);
    expect_error(noise, sizeof noise, NULL, QS_IMAGE_CORRUPT, "random bytes after a PNG magic");

    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(qs_image_decode(noise, sizeof noise, NULL, (qs_image_color)5, &img, &err),
                     QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_image_decode(noise, sizeof noise, NULL, QS_IMAGE_COLOR_RGB, NULL, NULL),
                     QS_IMAGE_INVALID_ARGUMENT);
    ck_assert_int_eq(qs_image_detect(noise, 3), QS_IMAGE_FORMAT_UNKNOWN);
}
END_TEST

START_TEST(test_truncated) {
    size_t size;
    uint8_t *jpg = read_data("rgb.jpg", &size);
    expect_error(jpg, size / 2, NULL, QS_IMAGE_CORRUPT, "JPEG cut in half");
    expect_error(jpg, size - 2, NULL, QS_IMAGE_CORRUPT, "JPEG without EOI");
    expect_error(jpg, 40, NULL, QS_IMAGE_CORRUPT, "JPEG cut in the header");
    /* every prefix fails cleanly */
    for (size_t n = 1; n < size; n += 13) {
        expect_error(jpg, n, NULL, QS_IMAGE_CORRUPT, "JPEG prefix");
    }
    free(jpg);

    uint8_t *png = read_data("rgb_interlaced.png", &size);
    expect_error(png, size / 2, NULL, QS_IMAGE_CORRUPT, "PNG cut in half");
    expect_error(png, 30, NULL, QS_IMAGE_CORRUPT, "PNG cut in IHDR");
    for (size_t n = 1; n < size - 12; n += 7) { /* anything short of the IEND chunk */
        expect_error(png, n, NULL, QS_IMAGE_CORRUPT, "PNG prefix");
    }
    free(png);
}
END_TEST

/* Flipped bytes in the middle of the data must never crash; the result may be an image or CORRUPT. */
START_TEST(test_bit_flips) {
    static const char *files[] = {"rgb.jpg", "rgb444_progressive.jpg", "palette.png", "rgb_interlaced.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t size;
        uint8_t *orig = read_data(files[f], &size);
        uint8_t *buf = malloc(size);
        ck_assert_ptr_nonnull(buf);
        uint32_t s = 99u + (uint32_t)f;
        for (int round = 0; round < 60; round++) {
            memcpy(buf, orig, size);
            for (int k = 0; k < 4; k++) {
                s = s * 1103515245u + 12345u;
                size_t pos = 8 + (s >> 8) % (size - 8);
                buf[pos] ^= (uint8_t)(1u << (s % 8));
            }
            qs_image img;
            qs_image_error err;
            qs_image_status st = decode_buf(buf, size, NULL, QS_IMAGE_COLOR_RGB, &img, &err);
            ck_assert_msg(st == QS_IMAGE_OK || st == QS_IMAGE_CORRUPT || st == QS_IMAGE_TOO_LARGE ||
                              st == QS_IMAGE_UNSUPPORTED_FORMAT,
                          "%s: unexpected %s", files[f], qs_image_status_to_string(st));
            qs_image_free(&img);
        }
        free(buf);
        free(orig);
    }
}
END_TEST

/* Rewrites the SOF0 dimensions of a real JPEG: the header must be refused before any allocation. */
START_TEST(test_jpeg_huge_header) {
    size_t size;
    uint8_t *jpg = read_data("rgb.jpg", &size);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < size; i++) {
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            sof = i;
            break;
        }
    }
    ck_assert_msg(sof != 0, "no SOF marker in rgb.jpg");
    jpg[sof + 5] = 0xEA, jpg[sof + 6] = 0x60; /* height 60000 */
    jpg[sof + 7] = 0xEA, jpg[sof + 8] = 0x60; /* width 60000 */
    qs_image_limits limits = {40000000u, 65535u, 0};
    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(jpg, size, &limits, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_TOO_LARGE);
    ck_assert_msg(strstr(err.message, "60000x60000") != NULL && strstr(err.message, "40000000") != NULL,
                  "message: %s", err.message);
    ck_assert_str_eq(err.where, "body: JPEG header");
    ck_assert_int_eq(qs_image_status_http(err.code), 413);
    /* default limits refuse it on the side limit */
    ck_assert_int_eq(decode_buf(jpg, size, NULL, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_TOO_LARGE);
    free(jpg);
}
END_TEST

/* A progressive JPEG whose first scan is repeated 600 times: libjpeg only warns about the bogus
 * progression, so without a cap every scan would cost a pass. */
START_TEST(test_jpeg_scan_bomb) {
    size_t size;
    uint8_t *jpg = read_data("rgb444_progressive.jpg", &size);
    size_t sos = 0, end = 0;
    for (size_t i = 2; i + 4 < size;) { /* walk the marker segments up to the first SOS */
        ck_assert_uint_eq(jpg[i], 0xFF);
        size_t len = (size_t)jpg[i + 2] << 8 | jpg[i + 3];
        if (jpg[i + 1] == 0xDA) {
            sos = i;
            break;
        }
        i += 2 + len;
    }
    ck_assert_uint_ne(sos, 0);
    for (size_t i = sos + 2; i + 1 < size; i++) { /* entropy data ends at a marker other than FF00/RSTn */
        if (jpg[i] == 0xFF && jpg[i + 1] != 0x00 && (jpg[i + 1] < 0xD0 || jpg[i + 1] > 0xD7)) {
            end = i;
            break;
        }
    }
    ck_assert_uint_ne(end, 0);
    const size_t copies = 600, block = end - sos;
    uint8_t *bomb = malloc(size + copies * block);
    ck_assert_ptr_nonnull(bomb);
    memcpy(bomb, jpg, sos);
    for (size_t k = 0; k < copies; k++) {
        memcpy(bomb + sos + k * block, jpg + sos, block);
    }
    memcpy(bomb + sos + copies * block, jpg + sos, size - sos);
    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(bomb, size + copies * block, NULL, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_CORRUPT);
    ck_assert_msg(strstr(err.message, "progressive scans") != NULL, "message: %s", err.message);
    /* the same file with a few extra scans is still fine */
    memcpy(bomb + sos + 3 * block, jpg + sos, size - sos);
    ck_assert_int_eq(decode_buf(bomb, size + 3 * block, NULL, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_OK);
    qs_image_free(&img);
    free(bomb);
    free(jpg);
}
END_TEST

START_TEST(test_limits) {
    size_t size, jsize;
    uint8_t *jpg = read_data("rgb.jpg", &jsize);   /* 67x45 */
    uint8_t *png = read_data("palette.png", &size); /* 30x20 */
    qs_image_limits px = {1000, 0, 0}, side = {0, 40, 0}, ok = {67 * 45, 67, 0};
    expect_error(jpg, jsize, &px, QS_IMAGE_TOO_LARGE, "JPEG over the pixel limit");
    expect_error(jpg, jsize, &side, QS_IMAGE_TOO_LARGE, "JPEG over the side limit");
    expect_error(png, size, &(qs_image_limits){599, 0, 0}, QS_IMAGE_TOO_LARGE, "PNG over the pixel limit");
    expect_error(png, size, &(qs_image_limits){0, 29, 0}, QS_IMAGE_TOO_LARGE, "PNG over the side limit");
    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(jpg, jsize, &ok, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_OK);
    qs_image_free(&img);
    free(jpg);
    free(png);
}
END_TEST

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Appends a chunk (length, type, data, CRC) at buf + *len. */
static void put_chunk(uint8_t *buf, size_t *len, const char *type, const uint8_t *data, uint32_t n) {
    put_be32(buf + *len, n);
    memcpy(buf + *len + 4, type, 4);
    if (n != 0) {
        memcpy(buf + *len + 8, data, n);
    }
    uLong crc = crc32(0L, buf + *len + 4, 4 + n);
    put_be32(buf + *len + 8 + n, (uint32_t)crc);
    *len += 12 + n;
}

/*
 * A real decompression bomb: 20000x20000 1-bit gray, all zero, deflated to ~50 KB. It would need
 * 400 MB as 8-bit pixels (1.2 GB as RGB); the decoder must refuse it from IHDR alone, quickly.
 */
static uint8_t *make_png_bomb(uint32_t side, size_t *out_len) {
    const size_t row = 1 + (side + 7) / 8;
    uint8_t *zeros = calloc(row, 1);
    size_t cap = 1024 * 1024;
    uint8_t *idat = malloc(cap);
    ck_assert(zeros != NULL && idat != NULL);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit(&zs, 9), Z_OK);
    zs.next_out = idat;
    zs.avail_out = (uInt)cap;
    for (uint32_t y = 0; y < side; y++) {
        zs.next_in = zeros;
        zs.avail_in = (uInt)row;
        ck_assert_int_eq(deflate(&zs, y + 1 == side ? Z_FINISH : Z_NO_FLUSH), y + 1 == side ? Z_STREAM_END : Z_OK);
    }
    size_t idat_len = zs.total_out;
    deflateEnd(&zs);
    free(zeros);

    uint8_t *png = malloc(idat_len + 64);
    ck_assert_ptr_nonnull(png);
    size_t len = 8;
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13];
    put_be32(ihdr, side);
    put_be32(ihdr + 4, side);
    ihdr[8] = 1, ihdr[9] = 0, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
    put_chunk(png, &len, "IHDR", ihdr, 13);
    put_chunk(png, &len, "IDAT", idat, (uint32_t)idat_len);
    put_chunk(png, &len, "IEND", NULL, 0);
    free(idat);
    *out_len = len;
    return png;
}

START_TEST(test_png_bomb) {
    size_t len;
    uint8_t *png = make_png_bomb(20000, &len);
    ck_assert_uint_lt(len, 200 * 1024);
    clock_t t0 = clock();
    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(png, len, NULL, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_TOO_LARGE);
    /* a generous side limit still leaves the pixel limit */
    qs_image_limits wide = {0, 30000, 0};
    ck_assert_int_eq(decode_buf(png, len, &wide, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_TOO_LARGE);
    ck_assert_msg(strstr(err.message, "20000x20000") != NULL, "message: %s", err.message);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    ck_assert_msg(secs < 1.0, "refusing the bomb took %.2f s", secs);
    free(png);

    /* the same construction at a harmless size decodes: the bytes are a valid PNG */
    png = make_png_bomb(64, &len);
    ck_assert_int_eq(decode_buf(png, len, NULL, QS_IMAGE_COLOR_GRAY, &img, &err), QS_IMAGE_OK);
    ck_assert(img.width == 64 && img.height == 64 && img.pixels[64 * 64 - 1] == 0);
    qs_image_free(&img);
    free(png);
}
END_TEST

START_TEST(test_png_bad_crc) {
    size_t size;
    uint8_t *png = read_data("gray.png", &size);
    png[8 + 8 + 2] ^= 0x01; /* inside IHDR's width: the CRC no longer matches */
    expect_error(png, size, NULL, QS_IMAGE_CORRUPT, "PNG with a bad IHDR CRC");
    free(png);
}
END_TEST

START_TEST(test_dct_scaling) {
    size_t size;
    uint8_t *jpg = read_data("big.jpg", &size); /* 240x160 */
    static const struct {
        uint32_t min_side, w, h;
    } cases[] = {{0, 240, 160}, {20, 30, 20}, {40, 60, 40}, {41, 120, 80}, {80, 120, 80}, {81, 240, 160}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        qs_image_limits lim = {0, 0, cases[k].min_side};
        qs_image img;
        qs_image_error err;
        ck_assert_int_eq(decode_buf(jpg, size, &lim, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_OK);
        ck_assert_msg(img.width == cases[k].w && img.height == cases[k].h, "min side %u: got %ux%u",
                      cases[k].min_side, img.width, img.height);
        qs_image_free(&img);
    }
    free(jpg);
}
END_TEST

/* Makes the Nth allocation fail for N = 0, 1, 2... until the call succeeds: every failure must come
 * back as NO_MEMORY with nothing leaked (valgrind checks the leaks). */
START_TEST(test_alloc_failures) {
    static const char *files[] = {"exif_6.jpg", "cmyk.jpg", "palette_trns.png", "rgb_interlaced.png", "rgb16.png"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t size;
        uint8_t *data = read_data(files[f], &size);
        long n;
        for (n = 0; n < 10000; n++) {
            qs_image img;
            qs_image_error err;
            alloc_countdown = n;
            alloc_failures = 0;
            qs_image_status st = qs_image_decode(data, size, NULL, QS_IMAGE_COLOR_RGB, &img, &err);
            alloc_countdown = -1;
            if (alloc_failures == 0) {
                ck_assert_msg(st == QS_IMAGE_OK, "%s: %s", files[f], err.message);
                qs_image_free(&img);
                break;
            }
            /* libpng tolerates some failures (ancillary chunks) and goes on */
            ck_assert_msg(st == QS_IMAGE_NO_MEMORY || st == QS_IMAGE_OK, "%s, allocation %ld: got %s (%s)", files[f],
                          n, qs_image_status_to_string(st), err.message);
            ck_assert_ptr_null(st == QS_IMAGE_OK ? NULL : img.pixels);
            qs_image_free(&img);
        }
        ck_assert_msg(n > 0 && n < 10000, "%s: %ld allocations", files[f], n);
        free(data);
    }

    uint8_t px[40 * 30 * 3] = {0};
    qs_image img = {40, 30, 3, px};
    qs_preprocess_spec spec;
    qs_preprocess_spec_imagenet(&spec);
    spec.resize_size = 20;
    spec.crop_width = spec.crop_height = 16;
    float out[3 * 16 * 16];
    qs_image_error err;
    alloc_countdown = 0;
    qs_image_status st = qs_preprocess_run(&spec, &img, out, 3 * 16 * 16, NULL, 0, &err);
    alloc_countdown = -1;
    ck_assert_int_eq(st, QS_IMAGE_NO_MEMORY);
    ck_assert_int_eq(qs_image_status_http(err.code), 503);
    ck_assert_int_eq(qs_preprocess_run(&spec, &img, out, 3 * 16 * 16, NULL, 0, &err), QS_IMAGE_OK);
}
END_TEST

/* ---- ImageNet reference tensor from ../shared/data (skipped when absent) ---- */

/* Parses a little-endian float32 C-order .npy; returns the data pointer inside buf or NULL. */
static const uint8_t *npy_f32(const uint8_t *buf, size_t size, uint32_t shape[4], int *ndim) {
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        return NULL;
    }
    size_t hlen, hstart;
    if (buf[6] == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        hstart = 10;
    } else {
        if (size < 12) {
            return NULL;
        }
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hstart = 12;
    }
    if (hlen > size - hstart) {
        return NULL;
    }
    char header[512];
    size_t n = hlen < sizeof header - 1 ? hlen : sizeof header - 1;
    memcpy(header, buf + hstart, n);
    header[n] = '\0';
    if (strstr(header, "'descr': '<f4'") == NULL || strstr(header, "'fortran_order': False") == NULL) {
        return NULL;
    }
    const char *p = strstr(header, "'shape': (");
    if (p == NULL) {
        return NULL;
    }
    p += strlen("'shape': (");
    *ndim = 0;
    while (*ndim < 4 && *p >= '0' && *p <= '9') {
        shape[(*ndim)++] = (uint32_t)strtoul(p, (char **)&p, 10);
        while (*p == ',' || *p == ' ') {
            p++;
        }
    }
    return buf + hstart + hlen;
}

START_TEST(test_imagenet_reference) {
    const char *shared = getenv("QS_SHARED_DATA");
    char img_path[1024], npy_path[1024];
    struct stat st;
    if (shared == NULL || stat(shared, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "test_image: SKIP imagenet reference (no shared data at %s)\n",
                shared != NULL ? shared : "$QS_SHARED_DATA");
        return;
    }
    snprintf(img_path, sizeof img_path, "%s/images/imagenet-val/ILSVRC2012_val_00000347.JPEG", shared);
    snprintf(npy_path, sizeof npy_path,
             "%s/models/mobilenet_v2/test_vectors/ILSVRC2012_val_00000347_input_1x3x224x224_f32.npy", shared);
    size_t jsize, nsize;
    uint8_t *jpg = read_all(img_path, &jsize);
    uint8_t *npy = read_all(npy_path, &nsize);
    if (jpg == NULL || npy == NULL) {
        fprintf(stderr, "test_image: SKIP imagenet reference (missing %s or %s)\n", img_path, npy_path);
        free(jpg);
        free(npy);
        return;
    }
    uint32_t shape[4] = {0};
    int ndim = 0;
    const uint8_t *ref = npy_f32(npy, nsize, shape, &ndim);
    ck_assert_msg(ref != NULL && ndim == 4 && shape[0] == 1 && shape[1] == 3 && shape[2] == 224 && shape[3] == 224,
                  "unexpected .npy header in %s", npy_path);
    const size_t count = 3u * 224 * 224;
    ck_assert_uint_ge(nsize - (size_t)(ref - npy), count * sizeof(float));

    qs_image img;
    qs_image_error err;
    ck_assert_int_eq(decode_buf(jpg, jsize, NULL, QS_IMAGE_COLOR_RGB, &img, &err), QS_IMAGE_OK);
    qs_preprocess_spec spec;
    qs_preprocess_spec_imagenet(&spec);
    float *out = malloc(count * sizeof(float));
    float *want = malloc(count * sizeof(float));
    ck_assert(out != NULL && want != NULL);
    memcpy(want, ref, count * sizeof(float));
    ck_assert_int_eq(qs_preprocess_run(&spec, &img, out, count, NULL, 0, &err), QS_IMAGE_OK);
    compare_floats("ILSVRC2012_val_00000347", out, want, count, 1e-5);
    free(out);
    free(want);
    qs_image_free(&img);
    free(jpg);
    free(npy);
}
END_TEST

static Suite *image_suite(void) {
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("decode");
    tcase_set_timeout(tc, 60);
    if (n_decode_cases > 0) {
        tcase_add_loop_test(tc, test_decode_golden, 0, n_decode_cases);
    }
    tcase_add_test(tc, test_status_table);
    tcase_add_test(tc, test_dct_scaling);
    suite_add_tcase(s, tc);

    tc = tcase_create("preprocess");
    tcase_set_timeout(tc, 60);
    if (n_pre_cases > 0) {
        tcase_add_loop_test(tc, test_preprocess_golden, 0, n_pre_cases);
    }
    tcase_add_test(tc, test_center_crop_rounding);
    tcase_add_test(tc, test_output_shape);
    tcase_add_test(tc, test_preprocess_bad_arguments);
    tcase_add_test(tc, test_imagenet_reference);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_empty_and_foreign);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_bit_flips);
    tcase_add_test(tc, test_jpeg_huge_header);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_jpeg_scan_bomb);
    tcase_add_test(tc, test_png_bomb);
    tcase_add_test(tc, test_png_bad_crc);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    load_manifest();
    if (n_decode_cases == 0 || n_pre_cases == 0) {
        fprintf(stderr, "test_image: no golden cases loaded from %s/image/manifest.txt\n", test_data_dir());
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(image_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
