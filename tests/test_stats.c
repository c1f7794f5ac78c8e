/* Check tests for latency statistics: bucket layout, percentiles against exact ones, the window. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
    /* splitmix64: deterministic and good enough for test distributions */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0; /* [0, 1) */
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact quantile by the same definition: the ceil(q*n)-th smallest sample. */
static double exact_quantile(uint64_t *sorted, size_t n, double q)
{
    double want = q * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return (double)sorted[rank - 1];
}

/* Fill a histogram from samples and compare p50/p90/p99/p99.9 with the exact ones. Buckets are at
 * most 1/16 of their lower bound wide, so the estimate is within 6.25% (+1 us for tiny values). */
static void check_against_exact(uint64_t *samples, size_t n, double rel_tol)
{
    qs_histogram *h = malloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    qs_histogram_clear(h);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        qs_histogram_record(h, samples[i]);
        sum += samples[i];
    }
    qsort(samples, n, sizeof *samples, cmp_u64);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double want = exact_quantile(samples, n, qs[i]);
        double got = qs_histogram_quantile_us(h, qs[i]);
        double tol = rel_tol * want + 1.0;
        ck_assert_msg(fabs(got - want) <= tol, "q=%g: got %.1f, exact %.1f (tol %.1f)", qs[i], got,
                      want, tol);
    }
    ck_assert_uint_eq(h->count, n);
    ck_assert_double_eq_tol(qs_histogram_mean_us(h), (double)sum / (double)n, 1e-6);
    ck_assert_double_eq(qs_histogram_quantile_us(h, 1.0), (double)samples[n - 1]);
    ck_assert_uint_eq(h->max_us, samples[n - 1]);
    ck_assert_uint_eq(h->min_us, samples[0]);
    free(h);
}

/* ---- bucket layout ---- */

START_TEST(test_buckets_contiguous)
{
    uint64_t prev_upper = 0;
    for (size_t b = 0; b < QS_HIST_BUCKETS; b++) {
        uint64_t lo, hi;
        qs_histogram_bucket_range(b, &lo, &hi);
        ck_assert_uint_eq(lo, prev_upper);
        ck_assert_uint_gt(hi, lo);
        ck_assert_uint_eq(qs_histogram_bucket(lo), b);
        if (hi != UINT64_MAX) {
            ck_assert_uint_eq(qs_histogram_bucket(hi - 1), b);
            /* width <= lower/16 above the linear range */
            if (lo >= 32)
                ck_assert_uint_le((hi - lo) * 16, lo);
        }
        prev_upper = hi;
    }
    ck_assert_uint_eq(prev_upper, UINT64_MAX);
    ck_assert_uint_eq(qs_histogram_bucket(0), 0);
    ck_assert_uint_eq(qs_histogram_bucket(31), 31);
    ck_assert_uint_eq(qs_histogram_bucket(UINT64_MAX), QS_HIST_BUCKETS - 1);
    ck_assert_uint_eq(qs_histogram_bucket((uint64_t)1 << 40), QS_HIST_BUCKETS - 1);
}
END_TEST

/* ---- percentiles on known distributions ---- */

START_TEST(test_empty_and_single)
{
    qs_histogram h;
    qs_histogram_clear(&h);
    ck_assert_double_eq(qs_histogram_quantile_us(&h, 0.5), 0.0);
    ck_assert_double_eq(qs_histogram_mean_us(&h), 0.0);
    qs_histogram_record(&h, 12345);
    /* One sample: every quantile is that sample, exactly (clamped to min/max). */
    ck_assert_double_eq(qs_histogram_quantile_us(&h, 0.5), 12345.0);
    ck_assert_double_eq(qs_histogram_quantile_us(&h, 0.99), 12345.0);
    qs_latency_summary s;
    qs_histogram_summarize(&h, &s);
    ck_assert_uint_eq(s.count, 1);
    ck_assert_double_eq_tol(s.mean_ms, 12.345, 1e-9);
    ck_assert_double_eq_tol(s.max_ms, 12.345, 1e-9);
}
END_TEST

START_TEST(test_constant)
{
    static uint64_t samples[1000];
    for (size_t i = 0; i < 1000; i++)
        samples[i] = 4321;
    check_against_exact(samples, 1000, 0.0);
}
END_TEST

START_TEST(test_uniform)
{
    size_t n = 100000;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < n; i++)
        samples[i] = 1000 + (uint64_t)(rng_unit() * 99000.0); /* 1 ms .. 100 ms */
    check_against_exact(samples, n, 0.01);
    free(samples);
}
END_TEST

START_TEST(test_small_values_exact)
{
    /* Below 32 us every value has its own bucket: quantiles are exact. */
    size_t n = 3100;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < n; i++)
        samples[i] = i % 31;
    check_against_exact(samples, n, 0.0);
    free(samples);
}
END_TEST

START_TEST(test_exponential)
{
    size_t n = 50000;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < n; i++)
        samples[i] = 200 + (uint64_t)(-log(1.0 - rng_unit()) * 5000.0); /* mean ~5.2 ms, long tail */
    check_against_exact(samples, n, 0.0625);
    free(samples);
}
END_TEST

START_TEST(test_lognormal_wide)
{
    /* Six decades, from microseconds to seconds. */
    size_t n = 50000;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < n; i++) {
        double u1 = rng_unit(), u2 = rng_unit();
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
        samples[i] = (uint64_t)exp(8.0 + 2.0 * z);
    }
    check_against_exact(samples, n, 0.0625);
    free(samples);
}
END_TEST

START_TEST(test_bimodal)
{
    /* 90% fast (2 ms), 10% slow (50 ms): p50 is fast, p99 is slow. */
    size_t n = 10000;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < n; i++)
        samples[i] = i % 10 == 0 ? 50000 + i % 7 : 2000 + i % 5;
    check_against_exact(samples, n, 0.0625);
    free(samples);
}
END_TEST

START_TEST(test_merge)
{
    qs_histogram *a = malloc(sizeof *a), *b = malloc(sizeof *b), *c = malloc(sizeof *c);
    qs_histogram_clear(a);
    qs_histogram_clear(b);
    qs_histogram_clear(c);
    for (uint64_t i = 1; i <= 1000; i++) {
        qs_histogram_record(i % 2 ? a : b, i * 37);
        qs_histogram_record(c, i * 37);
    }
    qs_histogram_merge(a, b);
    ck_assert_mem_eq(a, c, sizeof *a);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* ---- per-variant counters and the window ---- */

START_TEST(test_stats_window)
{
    qs_stats *s = qs_stats_create(10, 1000);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(qs_stats_window_s(s), 10);
    /* Seconds 1000..1004: 10 ok requests of 1 ms (inference 0.5 ms) per second, one error. */
    for (int64_t t = 1000; t < 1005; t++) {
        for (int i = 0; i < 10; i++)
            qs_stats_record(s, t, true, 1000, true, 500);
        qs_stats_record(s, t, false, 99999, false, 0);
    }
    qs_stats_report all, win;
    qs_stats_report_get(s, 1004, &all, &win);
    ck_assert_uint_eq(all.requests, 55);
    ck_assert_uint_eq(all.errors, 5);
    ck_assert_double_eq(all.seconds, 5.0);
    ck_assert_double_eq_tol(all.throughput_rps, 10.0, 1e-9);
    ck_assert_uint_eq(all.total.count, 50);
    ck_assert_double_eq_tol(all.total.p50_ms, 1.0, 1e-9);
    ck_assert_double_eq_tol(all.inference.p99_ms, 0.5, 1e-9);
    /* Errors do not enter latencies. */
    ck_assert_double_eq_tol(all.total.max_ms, 1.0, 1e-9);
    ck_assert_uint_eq(win.requests, 55);
    ck_assert_double_eq(win.seconds, 5.0);

    /* Later, slower traffic: at 1012 the window (1003..1012) holds 2 old seconds and the new. */
    for (int i = 0; i < 30; i++)
        qs_stats_record(s, 1012, true, 20000, true, 15000);
    qs_stats_report_get(s, 1012, &all, &win);
    ck_assert_uint_eq(all.requests, 85);
    ck_assert_uint_eq(win.requests, 2 * 11 + 30);
    ck_assert_uint_eq(win.errors, 2);
    ck_assert_double_eq(win.seconds, 10.0);
    ck_assert_double_eq_tol(win.throughput_rps, 5.0, 1e-9);
    ck_assert_double_eq_tol(win.total.p50_ms, 20.0, 20.0 * 0.0625);
    ck_assert_double_eq_tol(win.total.max_ms, 20.0, 1e-9);
    ck_assert_double_eq_tol(all.total.p50_ms, 1.0, 1.0 * 0.0625);

    /* Much later: the window is empty, the totals stay. */
    qs_stats_report_get(s, 5000, &all, &win);
    ck_assert_uint_eq(win.requests, 0);
    ck_assert_uint_eq(win.total.count, 0);
    ck_assert_double_eq(win.total.p99_ms, 0.0);
    ck_assert_uint_eq(all.requests, 85);
    /* A slot reused for a new second forgets the old one. */
    qs_stats_record(s, 5002, true, 3000, false, 0);
    qs_stats_report_get(s, 5002, &all, &win);
    ck_assert_uint_eq(win.requests, 1);
    ck_assert_uint_eq(win.inference.count, 0);
    qs_stats_free(s);
    qs_stats_free(NULL);
    ck_assert_ptr_null(qs_stats_create(0, 0));
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("histogram");
    tcase_add_test(tc, test_buckets_contiguous);
    tcase_add_test(tc, test_empty_and_single);
    tcase_add_test(tc, test_constant);
    tcase_add_test(tc, test_uniform);
    tcase_add_test(tc, test_small_values_exact);
    tcase_add_test(tc, test_exponential);
    tcase_add_test(tc, test_lognormal_wide);
    tcase_add_test(tc, test_bimodal);
    tcase_add_test(tc, test_merge);
    suite_add_tcase(s, tc);
    TCase *tw = tcase_create("window");
    tcase_add_test(tw, test_stats_window);
    suite_add_tcase(s, tw);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stats_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
