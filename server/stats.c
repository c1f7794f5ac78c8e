/* Latency histograms and per-variant counters: totals since start plus a ring of per-second slots. */
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SUB_COUNT ((uint64_t)1 << QS_HIST_SUB_BITS)

size_t qs_histogram_bucket(uint64_t us)
{
    if (us < QS_HIST_LINEAR)
        return (size_t)us;
    unsigned e = 63u - (unsigned)__builtin_clzll(us); /* us >= 32, so e >= SUB_BITS + 1 */
    if (e >= QS_HIST_MAX_LOG2)
        return QS_HIST_BUCKETS - 1;
    uint64_t sub = (us >> (e - QS_HIST_SUB_BITS)) & (SUB_COUNT - 1);
    return (size_t)(QS_HIST_LINEAR + (e - QS_HIST_SUB_BITS - 1) * SUB_COUNT + sub);
}

void qs_histogram_bucket_range(size_t bucket, uint64_t *lower, uint64_t *upper)
{
    if (bucket < QS_HIST_LINEAR) {
        *lower = bucket;
        *upper = bucket + 1;
        return;
    }
    uint64_t k = bucket - QS_HIST_LINEAR;
    unsigned e = (unsigned)(QS_HIST_SUB_BITS + 1 + k / SUB_COUNT);
    uint64_t sub = k % SUB_COUNT;
    *lower = (SUB_COUNT + sub) << (e - QS_HIST_SUB_BITS);
    *upper = bucket == QS_HIST_BUCKETS - 1 ? UINT64_MAX
                                           : *lower + ((uint64_t)1 << (e - QS_HIST_SUB_BITS));
}

void qs_histogram_clear(qs_histogram *h)
{
    memset(h, 0, sizeof *h);
}

void qs_histogram_record(qs_histogram *h, uint64_t us)
{
    if (h->count == 0 || us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
    h->count++;
    h->sum_us += us;
    h->buckets[qs_histogram_bucket(us)]++;
}

void qs_histogram_merge(qs_histogram *dst, const qs_histogram *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    for (size_t i = 0; i < QS_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

double qs_histogram_quantile_us(const qs_histogram *h, double q)
{
    if (h->count == 0)
        return 0.0;
    if (q <= 0.0)
        return (double)h->min_us;
    if (q >= 1.0)
        return (double)h->max_us;
    /* 1-based rank of the sample we want: ceil(q * count). */
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    double value = (double)h->max_us;
    for (size_t b = 0; b < QS_HIST_BUCKETS; b++) {
        uint64_t c = h->buckets[b];
        if (c == 0 || seen + c < rank) {
            seen += c;
            continue;
        }
        uint64_t lower, upper;
        qs_histogram_bucket_range(b, &lower, &upper);
        if (upper == UINT64_MAX || upper - lower <= 1) {
            value = (double)lower;
        } else {
            /* The samples of a bucket are taken as spread evenly over it: the i-th of c sits at
             * the middle of its 1/c share. */
            double frac = ((double)(rank - seen) - 0.5) / (double)c;
            value = (double)lower + frac * (double)(upper - lower);
        }
        break;
    }
    if (value < (double)h->min_us)
        value = (double)h->min_us;
    if (value > (double)h->max_us)
        value = (double)h->max_us;
    return value;
}

double qs_histogram_mean_us(const qs_histogram *h)
{
    return h->count ? (double)h->sum_us / (double)h->count : 0.0;
}

void qs_histogram_summarize(const qs_histogram *h, qs_latency_summary *out)
{
    out->count = h->count;
    out->mean_ms = qs_histogram_mean_us(h) / 1000.0;
    out->p50_ms = qs_histogram_quantile_us(h, 0.50) / 1000.0;
    out->p90_ms = qs_histogram_quantile_us(h, 0.90) / 1000.0;
    out->p99_ms = qs_histogram_quantile_us(h, 0.99) / 1000.0;
    out->max_ms = (double)h->max_us / 1000.0;
}

/* ---- per-variant counters ------------------------------------------------------------------- */

/* A histogram with 32-bit counts: a one-second slot never sees 2^32 requests, and the window holds
 * window_s * 2 of them, so halving them matters. */
typedef struct {
    uint32_t count;
    uint64_t sum_us, min_us, max_us;
    uint32_t buckets[QS_HIST_BUCKETS];
} slot_histogram;

typedef struct {
    int64_t second; /* which second this slot holds; stale when older than the window */
    uint32_t requests, errors;
    slot_histogram total, inference;
} slot;

struct qs_stats {
    pthread_mutex_t lock;
    int64_t start_s;
    int32_t window_s;
    uint64_t requests, errors;
    qs_histogram total, inference;
    slot *slots; /* window_s of them, slot i holds seconds s with s % window_s == i */
};

qs_stats *qs_stats_create(int32_t window_s, int64_t now_s)
{
    if (window_s < 1 || window_s > 3600)
        return NULL;
    qs_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->slots = calloc((size_t)window_s, sizeof *s->slots);
    if (!s->slots || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->slots);
        free(s);
        return NULL;
    }
    for (int32_t i = 0; i < window_s; i++)
        s->slots[i].second = INT64_MIN;
    s->window_s = window_s;
    s->start_s = now_s;
    return s;
}

void qs_stats_free(qs_stats *stats)
{
    if (!stats)
        return;
    pthread_mutex_destroy(&stats->lock);
    free(stats->slots);
    free(stats);
}

int32_t qs_stats_window_s(const qs_stats *stats)
{
    return stats->window_s;
}

static void slot_record(slot_histogram *h, uint64_t us)
{
    if (h->count == 0 || us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
    h->count++;
    h->sum_us += us;
    h->buckets[qs_histogram_bucket(us)]++;
}

static void slot_merge(qs_histogram *dst, const slot_histogram *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0 || src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    for (size_t i = 0; i < QS_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
}

static size_t slot_index(const qs_stats *s, int64_t second)
{
    int64_t m = second % s->window_s;
    return (size_t)(m < 0 ? m + s->window_s : m);
}

void qs_stats_record(qs_stats *stats, int64_t now_s, bool ok, uint64_t total_us,
                     bool has_inference, uint64_t inference_us)
{
    pthread_mutex_lock(&stats->lock);
    slot *sl = &stats->slots[slot_index(stats, now_s)];
    if (sl->second != now_s) {
        memset(sl, 0, sizeof *sl);
        sl->second = now_s;
    }
    stats->requests++;
    sl->requests++;
    if (!ok) {
        stats->errors++;
        sl->errors++;
    } else {
        qs_histogram_record(&stats->total, total_us);
        slot_record(&sl->total, total_us);
        if (has_inference) {
            qs_histogram_record(&stats->inference, inference_us);
            slot_record(&sl->inference, inference_us);
        }
    }
    pthread_mutex_unlock(&stats->lock);
}

static void finish_report(qs_stats_report *r, const qs_histogram *total,
                          const qs_histogram *inference, double seconds)
{
    r->seconds = seconds;
    r->throughput_rps = seconds > 0.0 ? (double)(r->requests - r->errors) / seconds : 0.0;
    qs_histogram_summarize(total, &r->total);
    qs_histogram_summarize(inference, &r->inference);
}

void qs_stats_report_get(qs_stats *stats, int64_t now_s, qs_stats_report *since_start,
                         qs_stats_report *window)
{
    /* Two histograms of ~3 KiB each: too big for a worker's stack budget, so heap them. */
    qs_histogram *tmp = malloc(2 * sizeof *tmp);
    memset(since_start, 0, sizeof *since_start);
    memset(window, 0, sizeof *window);
    pthread_mutex_lock(&stats->lock);
    int64_t up = now_s - stats->start_s + 1;
    if (up < 1)
        up = 1;
    since_start->requests = stats->requests;
    since_start->errors = stats->errors;
    finish_report(since_start, &stats->total, &stats->inference, (double)up);
    if (tmp) {
        qs_histogram_clear(&tmp[0]);
        qs_histogram_clear(&tmp[1]);
        for (int32_t i = 0; i < stats->window_s; i++) {
            const slot *sl = &stats->slots[i];
            if (sl->second > now_s || sl->second <= now_s - stats->window_s)
                continue;
            window->requests += sl->requests;
            window->errors += sl->errors;
            slot_merge(&tmp[0], &sl->total);
            slot_merge(&tmp[1], &sl->inference);
        }
        int64_t span = up < stats->window_s ? up : stats->window_s;
        finish_report(window, &tmp[0], &tmp[1], (double)span);
    }
    pthread_mutex_unlock(&stats->lock);
    free(tmp);
}
