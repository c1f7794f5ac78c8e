/* Quantization unit tests: affine parameters, weight quantization round trips, calibration
 * histograms (exact merging as the range grows) and every observer on known distributions. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

static void fill_gaussian(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        double u1 = (rand_r(&seed) + 1.0) / ((double)RAND_MAX + 2.0);
        double u2 = (rand_r(&seed) + 1.0) / ((double)RAND_MAX + 2.0);
        x[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

START_TEST(test_params_from_range) {
    float s;
    int32_t z;
    qs_quant_params_from_range(0.0f, 6.0f, false, &s, &z);
    ck_assert_float_eq_tol(s, 6.0f / 255.0f, 1e-7f);
    ck_assert_int_eq(z, 0);
    qs_quant_params_from_range(-1.0f, 1.0f, false, &s, &z);
    ck_assert_float_eq_tol(s, 2.0f / 255.0f, 1e-7f);
    ck_assert(z == 127 || z == 128); /* -lo / scale is 127.5 up to float rounding */
    /* The range always contains 0, so padding and ReLU zeros are exact. */
    qs_quant_params_from_range(2.0f, 4.0f, false, &s, &z);
    ck_assert_int_eq(z, 0);
    ck_assert_float_eq_tol(s, 4.0f / 255.0f, 1e-7f);
    qs_quant_params_from_range(-3.0f, 1.0f, true, &s, &z);
    ck_assert_int_eq(z, 128);
    ck_assert_float_eq_tol(s, 3.0f / 127.0f, 1e-7f);
    qs_quant_params_from_range(0.0f, 0.0f, false, &s, &z);
    ck_assert(s > 0.0f);
}
END_TEST

START_TEST(test_weights_round_trip) {
    float w[4 * 50], scales[4];
    int8_t q[4 * 50];
    fill_gaussian(w, 200, 3);
    for (int k = 0; k < 50; k++)
        w[150 + k] *= 100.0f; /* one channel much wider: per-channel scales must differ */
    qs_quantize_weights(w, 4, 50, false, q, scales);
    ck_assert(scales[3] > 50.0f * scales[0]);
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 50; k++) {
            float back = (float)q[c * 50 + k] * scales[c];
            ck_assert_msg(fabsf(back - w[c * 50 + k]) <= 0.5f * scales[c] * 1.0001f,
                          "channel %d element %d", c, k);
            ck_assert(q[c * 50 + k] >= -127 && q[c * 50 + k] <= 127);
        }
    qs_quantize_weights(w, 4, 50, true, q, scales);
    ck_assert_float_eq(scales[0], scales[3]);
}
END_TEST

/* Growing the range merges bins exactly: counts, min and max are preserved. */
START_TEST(test_histogram_growth) {
    qs_histogram *h = malloc(sizeof(*h));
    qs_histogram_init(h);
    float x[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)i / 1000.0f;
    qs_histogram_add(h, x, 1000, 0.01f);
    for (int i = 0; i < 1000; i++)
        x[i] = -50.0f + (float)i / 10.0f;
    qs_histogram_add(h, x, 1000, 0.01f);
    uint64_t total = 0;
    for (int i = 0; i < QS_CAL_BINS; i++)
        total += h->bins[i];
    ck_assert_uint_eq(total, 2000);
    ck_assert_uint_eq(h->count, 2000);
    ck_assert_float_eq(h->min, -50.0f);
    ck_assert_float_eq_tol(h->max, 49.9f, 1e-4f);
    /* The width is a power of two and covers the range within the bin budget. */
    double lg = log2(h->width);
    ck_assert(fabs(lg - nearbyint(lg)) < 1e-12);
    ck_assert((double)(h->first + QS_CAL_BINS) * h->width >= 49.9);
    ck_assert((double)h->first * h->width <= -50.0);
    free(h);
}
END_TEST

START_TEST(test_observers_on_gaussian) {
    size_t n = 200000;
    float *x = malloc(n * sizeof(float));
    qs_histogram *h = malloc(sizeof(*h));
    fill_gaussian(x, n, 7);
    qs_histogram_init(h);
    for (size_t b = 0; b < 10; b++)
        qs_histogram_add(h, x + b * (n / 10), n / 10, 0.01f);
    qs_quant_options o;
    qs_quant_options_init(&o);
    float lo, hi, mlo, mhi;
    o.observer = QS_OBSERVER_MINMAX;
    qs_observer_range(h, &o, &mlo, &mhi);
    ck_assert_float_eq(mlo, h->min);
    ck_assert_float_eq(mhi, h->max);
    ck_assert(mhi > 4.0f && mlo < -4.0f);
    o.observer = QS_OBSERVER_MOVING_MINMAX;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert(hi <= mhi && lo >= mlo && hi > 3.0f);
    /* 99.9th percentile of N(0,1) is 3.09; the 0.1th is -3.09. */
    o.observer = QS_OBSERVER_PERCENTILE;
    o.percentile = 99.9f;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(fabsf(hi - 3.09f) < 0.05f && fabsf(lo + 3.09f) < 0.05f, "[%f, %f]", lo, hi);
    o.observer = QS_OBSERVER_ENTROPY;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(hi > 2.5f && hi <= mhi && lo < -2.5f, "entropy [%f, %f]", lo, hi);
    o.observer = QS_OBSERVER_MSE;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(hi > 2.5f && hi < mhi && lo < -2.5f, "mse [%f, %f]", lo, hi);
    /* Half-normal (post-ReLU): ranges start at 0 and entropy keeps most of the tail. */
    for (size_t i = 0; i < n; i++)
        x[i] = fabsf(x[i]);
    qs_histogram_init(h);
    qs_histogram_add(h, x, n, 0.01f);
    o.observer = QS_OBSERVER_ENTROPY;
    qs_observer_range(h, &o, &lo, &hi);
    ck_assert_msg(lo == 0.0f && hi > 2.5f, "relu entropy [%f, %f]", lo, hi);
    ck_assert(qs_histogram_clipped(h, 0.0f, hi) < 0.02);
    ck_assert(qs_histogram_clipped(h, 0.0f, h->max) == 0.0);
    free(h);
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_add_test(tc, test_params_from_range);
    tcase_add_test(tc, test_weights_round_trip);
    tcase_add_test(tc, test_histogram_growth);
    tcase_add_test(tc, test_observers_on_gaussian);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
