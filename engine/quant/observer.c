/* Calibration histograms and the range observers: min/max, moving average, percentile,
 * entropy (KL divergence, TensorRT-style) and MSE-optimal clipping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/quant.h"

void qs_histogram_init(qs_histogram *h) {
    memset(h, 0, sizeof(*h));
    h->min = INFINITY;
    h->max = -INFINITY;
}

static int64_t floor_div(double x, double w) { return (int64_t)floor(x / w); }

/* Floor division of integers by 2^shift, rounding toward negative infinity. */
static int64_t shift_floor(int64_t k, int shift) {
    return k >= 0 ? k >> shift : -((-k + ((int64_t)1 << shift) - 1) >> shift);
}

/* Make the histogram cover [lo, hi], merging bins by powers of two when it must grow. */
static void cover(qs_histogram *h, float lo, float hi) {
    if (h->width == 0.0) {
        double span = (double)hi - (double)lo;
        double w = span > 0.0 ? span / (QS_CAL_BINS - 2) : 1.0 / 65536.0;
        h->width = pow(2.0, ceil(log2(w)));
        h->first = floor_div(lo, h->width);
        return;
    }
    double w = h->width;
    int64_t old_last = h->first + QS_CAL_BINS - 1;
    double cur_lo = (double)h->first * w, cur_hi = (double)(old_last + 1) * w;
    double need_lo = fmin(cur_lo, lo), need_hi = fmax(cur_hi - w * 0.5, hi);
    int shift = 0;
    while (floor_div(need_hi, w) - floor_div(need_lo, w) + 1 > QS_CAL_BINS) {
        w *= 2.0;
        shift++;
    }
    int64_t first = floor_div(need_lo, w);
    if (shift == 0 && first >= h->first)
        return; /* need_lo <= the current start, so this means: already covered */
    uint64_t merged[QS_CAL_BINS];
    memset(merged, 0, sizeof(merged));
    for (int64_t i = 0; i < QS_CAL_BINS; i++) {
        if (!h->bins[i])
            continue;
        int64_t k = shift_floor(h->first + i, shift) - first;
        k = k < 0 ? 0 : k >= QS_CAL_BINS ? QS_CAL_BINS - 1 : k;
        merged[k] += h->bins[i];
    }
    memcpy(h->bins, merged, sizeof(merged));
    h->width = w;
    h->first = first;
}

void qs_histogram_add(qs_histogram *h, const float *x, size_t n, float averaging_constant) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < lo)
            lo = x[i];
        if (x[i] > hi)
            hi = x[i];
    }
    if (!(lo <= hi))
        return; /* empty or all NaN */
    if (h->batches == 0) {
        h->ema_min = lo;
        h->ema_max = hi;
    } else {
        h->ema_min += averaging_constant * (lo - h->ema_min);
        h->ema_max += averaging_constant * (hi - h->ema_max);
    }
    h->batches++;
    h->min = fminf(h->min, lo);
    h->max = fmaxf(h->max, hi);
    cover(h, lo, hi);
    double inv = 1.0 / h->width;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != x[i])
            continue;
        h->zeros += x[i] == 0.0f;
        int64_t k = (int64_t)floor((double)x[i] * inv) - h->first;
        k = k < 0 ? 0 : k >= QS_CAL_BINS ? QS_CAL_BINS - 1 : k;
        h->bins[k]++;
    }
    h->count += n;
}

static double bin_lo(const qs_histogram *h, int64_t i) { return (double)(h->first + i) * h->width; }

/* Value below which a share q of the samples lies. */
static float quantile(const qs_histogram *h, double q) {
    double target = q * (double)h->count, acc = 0.0;
    for (int64_t i = 0; i < QS_CAL_BINS; i++) {
        double c = (double)h->bins[i];
        if (acc + c >= target && c > 0) {
            double frac = (target - acc) / c;
            return (float)(bin_lo(h, i) + frac * h->width);
        }
        acc += c;
    }
    return h->max;
}

double qs_histogram_clipped(const qs_histogram *h, float lo, float hi) {
    if (!h->count)
        return 0.0;
    double out = 0.0;
    for (int64_t i = 0; i < QS_CAL_BINS; i++) {
        double center = bin_lo(h, i) + 0.5 * h->width;
        if (center < (double)lo || center > (double)hi)
            out += (double)h->bins[i];
    }
    return out / (double)h->count;
}

/* Expected squared error of uint8 affine quantization over [lo, hi], from bin centers. */
static double mse_of_range(const qs_histogram *h, float lo, float hi) {
    float scale;
    int32_t zero;
    qs_quant_params_from_range(lo, hi, false, 255, &scale, &zero);
    double err = 0.0;
    for (int64_t i = 0; i < QS_CAL_BINS; i++) {
        if (!h->bins[i])
            continue;
        double x = bin_lo(h, i) + 0.5 * h->width;
        double q = nearbyint(x / (double)scale) + zero;
        q = q < 0 ? 0 : q > 255 ? 255 : q;
        double d = x - (q - zero) * (double)scale;
        err += (double)h->bins[i] * d * d;
    }
    return err;
}

/* KL-divergence threshold on the magnitudes |x| (TensorRT's entropy calibration): the T that
 * best preserves the distribution when [0, T] is squeezed into `levels` levels. */
static float entropy_threshold(const qs_histogram *h, int levels) {
    /* Scratch on the heap, not static: models may calibrate on several threads at once. */
    double *mag = calloc(QS_CAL_BINS * 2 * 3, sizeof(double));
    if (mag == NULL)
        return fmaxf(h->max, -h->min); /* out of memory: fall back to min/max */
    double *p = mag + QS_CAL_BINS * 2, *qd = p + QS_CAL_BINS * 2;
    int64_t nm = 0;
    for (int64_t i = 0; i < QS_CAL_BINS; i++) {
        int64_t k = h->first + i, m = k >= 0 ? k : -k - 1;
        if (m >= QS_CAL_BINS * 2)
            m = QS_CAL_BINS * 2 - 1;
        mag[m] += (double)h->bins[i];
        if (m + 1 > nm && h->bins[i])
            nm = m + 1;
    }
    /* The spike of exact zeros after a ReLU says nothing about where to clip, and squeezing it
     * into a group with its neighbours would dominate the divergence: leave it out. */
    mag[0] -= (double)h->zeros;
    if (mag[0] < 0.0)
        mag[0] = 0.0;
    if (nm <= levels) {
        free(mag);
        return (float)((double)nm * h->width);
    }
    double best = INFINITY;
    int64_t best_i = nm;
    int64_t step = nm / 256 > 1 ? nm / 256 : 1;
    for (int64_t i = levels; i <= nm; i += step) {
        double outliers = 0.0, total = 0.0;
        for (int64_t j = i; j < nm; j++)
            outliers += mag[j];
        for (int64_t j = 0; j < i; j++) {
            p[j] = mag[j];
            total += mag[j];
        }
        p[i - 1] += outliers;
        total += outliers;
        if (total <= 0)
            continue;
        /* Q: the in-range histogram (without the outliers P carries in its last bin) squeezed
         * into `levels` groups, each group's mass spread over its non-empty bins. */
        for (int l = 0; l < levels; l++) {
            int64_t a = (int64_t)((double)l * (double)i / levels);
            int64_t b = (int64_t)((double)(l + 1) * (double)i / levels);
            if (b <= a)
                b = a + 1;
            double sum = 0.0;
            int64_t nz = 0;
            for (int64_t j = a; j < b && j < i; j++) {
                sum += mag[j];
                nz += mag[j] > 0;
            }
            for (int64_t j = a; j < b && j < i; j++)
                qd[j] = mag[j] > 0 && nz ? sum / (double)nz : 0.0;
        }
        double kl = 0.0;
        for (int64_t j = 0; j < i; j++) {
            if (p[j] <= 0)
                continue;
            double pj = p[j] / total, qj = qd[j] / (total - outliers > 0 ? total - outliers : 1);
            kl += pj * log(pj / (qj > 0 ? qj : 1e-12));
        }
        if (kl < best) {
            best = kl;
            best_i = i;
        }
    }
    free(mag);
    return (float)((double)best_i * h->width);
}

void qs_observer_range(const qs_histogram *h, const qs_quant_options *o, float *lo, float *hi) {
    *lo = h->count ? h->min : 0.0f;
    *hi = h->count ? h->max : 0.0f;
    if (!h->count)
        return;
    switch (o->observer) {
    case QS_OBSERVER_MINMAX:
        break;
    case QS_OBSERVER_MOVING_MINMAX:
        *lo = h->ema_min;
        *hi = h->ema_max;
        break;
    case QS_OBSERVER_PERCENTILE: {
        double p = o->percentile > 50.0f && o->percentile <= 100.0f ? (double)o->percentile : 99.99;
        *lo = fmaxf(h->min, quantile(h, 1.0 - p / 100.0));
        *hi = fminf(h->max, quantile(h, p / 100.0));
        break;
    }
    case QS_OBSERVER_ENTROPY: {
        float t = entropy_threshold(h, h->min >= 0.0f ? 255 : 128);
        *lo = fmaxf(h->min, -t);
        *hi = fminf(h->max, t);
        break;
    }
    case QS_OBSERVER_MSE: {
        double best = INFINITY;
        float blo = *lo, bhi = *hi;
        for (int t = 100; t >= 20; t -= 1) {
            float a = (float)t / 100.0f;
            double e = mse_of_range(h, h->min * a, h->max * a);
            if (e < best) {
                best = e;
                blo = h->min * a;
                bhi = h->max * a;
            }
        }
        *lo = blo;
        *hi = bhi;
        break;
    }
    }
    *lo = fminf(*lo, 0.0f);
    *hi = fmaxf(*hi, 0.0f);
}
