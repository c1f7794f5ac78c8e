/* Request statistics: log-bucketed latency histograms, since start and over a sliding window. */
#ifndef QS_SERVER_STATS_H
#define QS_SERVER_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Latency histogram in microseconds with HDR-style buckets: values below 2^(SUB_BITS+1) get one
 * bucket each, above that every power of two is split into 2^SUB_BITS equal buckets, so a bucket
 * is at most 1/16 of its lower bound wide (percentiles within ~3% after interpolation). Values
 * from 2^QS_HIST_MAX_LOG2 us (268 s) up share the last bucket; the exact maximum is kept aside.
 */
#define QS_HIST_SUB_BITS 4
#define QS_HIST_MAX_LOG2 28
#define QS_HIST_LINEAR ((uint64_t)1 << (QS_HIST_SUB_BITS + 1))
#define QS_HIST_BUCKETS \
    (QS_HIST_LINEAR + (QS_HIST_MAX_LOG2 - QS_HIST_SUB_BITS - 1) * ((uint64_t)1 << QS_HIST_SUB_BITS))

typedef struct {
    uint64_t count;
    uint64_t sum_us;
    uint64_t min_us;
    uint64_t max_us;
    uint64_t buckets[QS_HIST_BUCKETS];
} qs_histogram;

/* Bucket of a value, 0 .. QS_HIST_BUCKETS-1. */
size_t qs_histogram_bucket(uint64_t us);
/* Half-open value range [lower, upper) of a bucket (the last one's upper is UINT64_MAX). */
void qs_histogram_bucket_range(size_t bucket, uint64_t *lower, uint64_t *upper);

void qs_histogram_clear(qs_histogram *h);
void qs_histogram_record(qs_histogram *h, uint64_t us);
/* Add every count of src into dst. */
void qs_histogram_merge(qs_histogram *dst, const qs_histogram *src);
/* Value at quantile q (0 < q <= 1): the smallest v with at least q*count samples <= v, estimated by
 * linear interpolation inside its bucket and clamped to [min, max]. 0 for an empty histogram. */
double qs_histogram_quantile_us(const qs_histogram *h, double q);
double qs_histogram_mean_us(const qs_histogram *h);

/* Summary of one latency histogram, in milliseconds. */
typedef struct {
    uint64_t count;
    double mean_ms, p50_ms, p90_ms, p99_ms, max_ms;
} qs_latency_summary;

void qs_histogram_summarize(const qs_histogram *h, qs_latency_summary *out);

/* What one variant did over a period. Latencies cover successful requests only. */
typedef struct {
    uint64_t requests;      /* answered requests, successful or not */
    uint64_t errors;        /* answered with a 4xx or 5xx */
    double seconds;         /* length of the period */
    double throughput_rps;  /* successful requests per second over the period */
    qs_latency_summary total;
    qs_latency_summary inference;
} qs_stats_report;

/* Per-variant counters. Thread-safe: record and report take an internal mutex. */
typedef struct qs_stats qs_stats;

/* window_s: the recent window in seconds (1..3600), kept as one bucket per second.
 * now_s: the current time in whole seconds of a monotonic clock. Returns NULL when out of memory. */
qs_stats *qs_stats_create(int32_t window_s, int64_t now_s);
void qs_stats_free(qs_stats *stats);

/* One answered request. inference_us is ignored for errors and when has_inference is false. */
void qs_stats_record(qs_stats *stats, int64_t now_s, bool ok, uint64_t total_us,
                     bool has_inference, uint64_t inference_us);

/* Since creation, and over the last window_s seconds (or since creation when that is shorter). */
void qs_stats_report_get(qs_stats *stats, int64_t now_s, qs_stats_report *since_start,
                         qs_stats_report *window);
int32_t qs_stats_window_s(const qs_stats *stats);

#endif /* QS_SERVER_STATS_H */
