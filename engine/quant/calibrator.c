/* The calibrator: runs the fp32 model over calibration batches, keeps a bounded histogram per
 * activation, and saves/loads them as a cache keyed by the model's hash. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "quant/quant.h"

#define QS_CAL_MAGIC "quantserve-calibration 2"

typedef struct {
    int32_t value;
    qs_histogram hist;
} cal_value;

struct qs_calibrator {
    qs_model *model;
    qs_session *session;
    qs_quant_options opts;
    char **keep;                 /* deep copy of opts.keep_fp32 */
    uint64_t model_hash;
    int32_t *slot;               /* per graph value: index into values, or -1 */
    cal_value *values;
    size_t n_values;
    uint64_t samples;
};

uint64_t qs_hash_bytes(uint64_t seed, const void *data, size_t size) {
    const uint8_t *p = data;
    uint64_t h = seed ? seed : 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void qs_quant_options_init(qs_quant_options *o) {
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->observer = QS_OBSERVER_MINMAX;
    o->percentile = 99.99f;
    o->averaging_constant = 0.01f;
}

const char *qs_observer_name(qs_observer_kind kind) {
    static const char *const names[] = {"minmax", "moving_minmax", "percentile", "entropy", "mse"};
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

void qs_calibrator_free(qs_calibrator *c) {
    if (!c)
        return;
    qs_session_free(c->session);
    qs_model_free(c->model);
    for (size_t i = 0; c->keep && i < c->opts.keep_fp32_count; i++)
        free(c->keep[i]);
    free(c->keep);
    free(c->slot);
    free(c->values);
    free(c);
}

qs_status qs_calibrator_create(const void *onnx, size_t size, const qs_quant_options *opts,
                               qs_calibrator **out, qs_error *err) {
    qs_status st;
    qs_calibrator *c = calloc(1, sizeof(*c));
    if (!out)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "calibrator", "out is NULL");
    *out = NULL;
    if (!c)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "calibrator", "out of memory");
    qs_quant_options_init(&c->opts);
    if (opts)
        c->opts = *opts;
    if (c->opts.averaging_constant <= 0.0f || c->opts.averaging_constant > 1.0f)
        c->opts.averaging_constant = 0.01f;
    if (!(c->opts.percentile > 50.0f && c->opts.percentile <= 100.0f))
        c->opts.percentile = 99.99f;
    if (c->opts.keep_fp32_count) {
        c->keep = calloc(c->opts.keep_fp32_count, sizeof(char *));
        if (!c->keep) {
            st = qs_error_set(err, QS_ERR_NO_MEMORY, "calibrator", "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < c->opts.keep_fp32_count; i++) {
            c->keep[i] = strdup(c->opts.keep_fp32[i]);
            if (!c->keep[i]) {
                st = qs_error_set(err, QS_ERR_NO_MEMORY, "calibrator", "out of memory");
                goto fail;
            }
        }
        c->opts.keep_fp32 = (const char *const *)c->keep;
    }
    c->model_hash = qs_hash_bytes(0, onnx, size);
    qs_model_options mo;
    qs_model_options_init(&mo);
    st = qs_model_load_internal(onnx, size, &mo, QS_LOAD_NO_RESIDUAL_FUSION, &c->model, err);
    if (st != QS_OK)
        goto fail;
    st = qs_session_create(c->model, NULL, &c->session, err);
    if (st != QS_OK)
        goto fail;
    const qs_graph *g = c->model->g;
    c->slot = malloc(sizeof(int32_t) * (g->n_values ? g->n_values : 1));
    if (!c->slot) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "calibrator", "out of memory");
        goto fail;
    }
    for (size_t v = 0; v < g->n_values; v++) {
        const qs_value *val = g->values[v];
        bool watch = val->kind != QS_VALUE_CONSTANT && val->dtype == QS_DTYPE_FLOAT32;
        c->slot[v] = watch ? (int32_t)c->n_values++ : -1;
    }
    c->values = calloc(c->n_values ? c->n_values : 1, sizeof(cal_value));
    if (!c->values) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "calibrator", "out of memory");
        goto fail;
    }
    for (size_t v = 0; v < g->n_values; v++) {
        if (c->slot[v] < 0)
            continue;
        c->values[c->slot[v]].value = (int32_t)v;
        qs_histogram_init(&c->values[c->slot[v]].hist);
    }
    *out = c;
    return QS_OK;
fail:
    qs_calibrator_free(c);
    return st;
}

static void observe_value(void *ctx, int32_t value, const qs_view *view) {
    qs_calibrator *c = ctx;
    if (c->slot[value] < 0 || view->dtype != QS_DTYPE_FLOAT32 || !view->data)
        return;
    qs_histogram_add(&c->values[c->slot[value]].hist, view->data, qs_view_numel(view),
                     c->opts.averaging_constant);
}

qs_status qs_calibrator_observe(qs_calibrator *c, const qs_tensor *inputs, size_t n_inputs,
                                qs_error *err) {
    if (!c || !inputs)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "calibrator", "NULL argument");
    qs_status st = qs_session_run_observed(c->session, inputs, n_inputs, observe_value, c, err);
    if (st == QS_OK && n_inputs && inputs[0].rank > 0)
        c->samples += (uint64_t)inputs[0].dims[0];
    return st;
}

uint64_t qs_calibrator_samples(const qs_calibrator *c) { return c ? c->samples : 0; }

const qs_quant_options *qs_calibrator_options(const qs_calibrator *c) { return &c->opts; }

bool qs_calibrator_range(const qs_calibrator *c, const char *name, float *lo, float *hi) {
    const qs_graph *g = c->model->g;
    int32_t v = qs_graph_find_value(g, name);
    if (v < 0 || c->slot[v] < 0 || c->values[c->slot[v]].hist.count == 0)
        return false;
    qs_observer_range(&c->values[c->slot[v]].hist, &c->opts, lo, hi);
    return true;
}

qs_status qs_calibrator_save(const qs_calibrator *c, const char *path, qs_error *err) {
    char tmp[4096];
    if (!c || !path)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "calibrator", "NULL argument");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return qs_error_set(err, QS_ERR_IO, path, "cannot write: %s", strerror(errno));
    const qs_graph *g = c->model->g;
    fprintf(f, "%s\nmodel %016" PRIx64 "\nsamples %" PRIu64 "\nvalues %zu\n", QS_CAL_MAGIC,
            c->model_hash, c->samples, c->n_values);
    for (size_t i = 0; i < c->n_values; i++) {
        const qs_histogram *h = &c->values[i].hist;
        const char *name = g->values[c->values[i].value]->name;
        size_t nnz = 0;
        for (int k = 0; k < QS_CAL_BINS; k++)
            nnz += h->bins[k] != 0;
        /* Hex floats: the cache reloads bit-exactly. */
        fprintf(f, "v %zu %s\ns %a %a %a %a %" PRIu64 " %" PRIu64 " %" PRIu64 " %a %" PRId64
                "\nb %zu",
                strlen(name), name, (double)h->min, (double)h->max, (double)h->ema_min,
                (double)h->ema_max, h->batches, h->count, h->zeros, h->width, h->first, nnz);
        for (int k = 0; k < QS_CAL_BINS; k++)
            if (h->bins[k])
                fprintf(f, " %d:%" PRIu64, k, h->bins[k]);
        fputc('\n', f);
    }
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return qs_error_set(err, QS_ERR_IO, path, "cannot write the calibration cache");
    }
    return QS_OK;
}

qs_status qs_calibrator_load(qs_calibrator *c, const char *path, qs_error *err) {
    qs_status st = QS_OK;
    char line[256], name[1024];
    cal_value *fresh = NULL;
    if (!c || !path)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "calibrator", "NULL argument");
    FILE *f = fopen(path, "r");
    if (!f)
        return qs_error_set(err, QS_ERR_IO, path, "cannot open: %s", strerror(errno));
    uint64_t hash, samples;
    size_t count;
    if (!fgets(line, sizeof(line), f) || strncmp(line, QS_CAL_MAGIC, strlen(QS_CAL_MAGIC)) != 0 ||
        fscanf(f, " model %" SCNx64 " samples %" SCNu64 " values %zu", &hash, &samples, &count) != 3) {
        st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, path, "not a calibration cache");
        goto done;
    }
    if (hash != c->model_hash) {
        st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, path, "cache is for another model");
        goto done;
    }
    fresh = calloc(c->n_values ? c->n_values : 1, sizeof(cal_value));
    if (!fresh) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, path, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c->n_values; i++) {
        fresh[i].value = c->values[i].value;
        qs_histogram_init(&fresh[i].hist);
    }
    const qs_graph *g = c->model->g;
    for (size_t i = 0; i < count; i++) {
        size_t len, nnz;
        double mn, mx, emn, emx, width;
        uint64_t batches, n, zeros;
        int64_t first;
        if (fscanf(f, " v %zu ", &len) != 1 || len >= sizeof(name) ||
            fread(name, 1, len, f) != len) {
            st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, path, "truncated cache");
            goto done;
        }
        name[len] = '\0';
        int32_t v = qs_graph_find_value(g, name);
        if (v < 0 || c->slot[v] < 0 ||
            fscanf(f, " s %la %la %la %la %" SCNu64 " %" SCNu64 " %" SCNu64 " %la %" SCNd64 " b %zu",
                   &mn, &mx, &emn, &emx, &batches, &n, &zeros, &width, &first, &nnz) != 10 || nnz > QS_CAL_BINS ||
            !(width >= 0.0) || !isfinite(width) || (width == 0.0 && (n || nnz))) {
            st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, path, "bad entry for \"%s\"", name);
            goto done;
        }
        qs_histogram *h = &fresh[c->slot[v]].hist;
        h->min = (float)mn;
        h->max = (float)mx;
        h->ema_min = (float)emn;
        h->ema_max = (float)emx;
        h->batches = batches;
        h->count = n;
        h->zeros = zeros;
        h->width = width;
        h->first = first;
        for (size_t k = 0; k < nnz; k++) {
            int idx;
            uint64_t cnt;
            if (fscanf(f, " %d:%" SCNu64, &idx, &cnt) != 2 || idx < 0 || idx >= QS_CAL_BINS) {
                st = qs_error_set(err, QS_ERR_INVALID_ARGUMENT, path, "bad histogram for \"%s\"",
                                  name);
                goto done;
            }
            h->bins[idx] = cnt;
        }
    }
    free(c->values);
    c->values = fresh;
    fresh = NULL;
    c->samples = samples;
done:
    free(fresh);
    fclose(f);
    return st;
}
