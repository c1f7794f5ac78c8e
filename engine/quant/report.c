/* The fp32-vs-int8 report: per quantized activation, SQNR, cosine similarity and clipping against
 * the fp32 model's value of the same name; for the whole model, top-1 agreement, top-5 overlap
 * and mean KL divergence. The int8 run is captured as uint8 (1 byte per element); the fp32 run
 * is compared on the fly, so memory stays small. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/model.h"
#include "quant/quant.h"

typedef struct {
    int32_t vq, vf;
    qs_layer_report pub;
    double f2, e2, fq, q2;
    uint64_t clipped;
    uint8_t *capture;
    size_t capture_len, capture_cap;
    int32_t rank;
    int64_t dims[QS_MAX_RANK];
    bool captured;
} layer_stats;

struct qs_quant_report {
    const qs_model *fm, *qm;
    qs_session *fs, *qs;
    layer_stats *layers;
    size_t n_layers;
    int32_t *q_slot, *f_slot;
    qs_layer_report *ranked;
    float *q_out;
    size_t q_out_len, q_out_cap;
    qs_model_agreement agree;
    double kl_sum, top1_sum, top5_sum;
};

void qs_quant_report_free(qs_quant_report *r) {
    if (!r)
        return;
    qs_session_free(r->fs);
    qs_session_free(r->qs);
    for (size_t i = 0; i < r->n_layers; i++)
        free(r->layers[i].capture);
    free(r->layers);
    free(r->q_slot);
    free(r->f_slot);
    free(r->ranked);
    free(r->q_out);
    free(r);
}

qs_status qs_quant_report_create(const qs_model *fp32, const qs_model *int8, qs_quant_report **out,
                                 qs_error *err) {
    qs_status st;
    if (!fp32 || !int8 || !out)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "report", "NULL argument");
    *out = NULL;
    qs_quant_report *r = calloc(1, sizeof(*r));
    if (!r)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "report", "out of memory");
    r->fm = fp32;
    r->qm = int8;
    const qs_graph *gq = int8->g, *gf = fp32->g;
    r->q_slot = malloc(sizeof(int32_t) * (gq->n_values ? gq->n_values : 1));
    r->f_slot = malloc(sizeof(int32_t) * (gf->n_values ? gf->n_values : 1));
    r->layers = calloc(gq->n_values ? gq->n_values : 1, sizeof(layer_stats));
    if (!r->q_slot || !r->f_slot || !r->layers) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "report", "out of memory");
        goto fail;
    }
    for (size_t v = 0; v < gf->n_values; v++)
        r->f_slot[v] = -1;
    for (size_t v = 0; v < gq->n_values; v++) {
        r->q_slot[v] = -1;
        const qs_value *val = gq->values[v];
        if (!val->quant || !val->quant->source || val->dtype != QS_DTYPE_UINT8 ||
            val->producer < 0)
            continue;
        int32_t vf = qs_graph_find_value(gf, val->quant->source);
        if (vf < 0 || gf->values[vf]->kind == QS_VALUE_CONSTANT || r->f_slot[vf] >= 0)
            continue;
        layer_stats *l = &r->layers[r->n_layers];
        l->vq = (int32_t)v;
        l->vf = vf;
        l->pub.name = val->quant->source;
        l->pub.op = gq->nodes[val->producer].op_type;
        l->pub.scale = val->quant->scale[0];
        l->pub.zero_point = val->quant->zero_point[0];
        r->q_slot[v] = (int32_t)r->n_layers;
        r->f_slot[vf] = (int32_t)r->n_layers;
        r->n_layers++;
    }
    st = qs_session_create(fp32, NULL, &r->fs, err);
    if (st == QS_OK)
        st = qs_session_create(int8, NULL, &r->qs, err);
    if (st != QS_OK)
        goto fail;
    *out = r;
    return QS_OK;
fail:
    qs_quant_report_free(r);
    return st;
}

static void capture_int8(void *ctx, int32_t value, const qs_view *view) {
    qs_quant_report *r = ctx;
    int32_t slot = r->q_slot[value];
    if (slot < 0 || !view->data)
        return;
    layer_stats *l = &r->layers[slot];
    size_t n = qs_view_numel(view);
    if (n > l->capture_cap) {
        uint8_t *c = realloc(l->capture, n);
        if (!c)
            return;
        l->capture = c;
        l->capture_cap = n;
    }
    memcpy(l->capture, view->data, n);
    l->capture_len = n;
    l->rank = view->rank;
    memcpy(l->dims, view->dims, sizeof(l->dims));
    l->captured = true;
}

static void compare_fp32(void *ctx, int32_t value, const qs_view *view) {
    qs_quant_report *r = ctx;
    int32_t slot = r->f_slot[value];
    if (slot < 0 || !view->data || view->dtype != QS_DTYPE_FLOAT32)
        return;
    layer_stats *l = &r->layers[slot];
    size_t n = qs_view_numel(view);
    if (!l->captured || n != l->capture_len || view->rank != l->rank)
        return;
    for (int32_t d = 0; d < view->rank; d++)
        if (view->dims[d] != l->dims[d])
            return; /* laid out differently in the two graphs: not comparable element-wise */
    const float *f = view->data;
    double s = l->pub.scale, z = l->pub.zero_point;
    double lo = (0.0 - z - 0.5) * s, hi = (255.0 - z + 0.5) * s;
    for (size_t i = 0; i < n; i++) {
        double fv = f[i], qv = ((double)l->capture[i] - z) * s;
        l->f2 += fv * fv;
        l->q2 += qv * qv;
        l->fq += fv * qv;
        l->e2 += (fv - qv) * (fv - qv);
        l->clipped += fv < lo || fv > hi;
    }
    l->pub.elements += n;
    l->captured = false;
}

static void softmax(const float *x, size_t n, double *p) {
    double m = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, (double)x[i]);
    for (size_t i = 0; i < n; i++)
        sum += (p[i] = exp((double)x[i] - m));
    for (size_t i = 0; i < n; i++)
        p[i] /= sum;
}

static void top5(const float *x, size_t n, size_t *idx, size_t *k) {
    *k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pos = *k < 5 ? (*k)++ : 5;
        while (pos > 0 && x[i] > x[idx[pos - 1]]) {
            if (pos < 5)
                idx[pos] = idx[pos - 1];
            pos--;
        }
        if (pos < 5)
            idx[pos] = i;
    }
}

qs_status qs_quant_report_add(qs_quant_report *r, const qs_tensor *inputs, size_t n_inputs,
                              qs_error *err) {
    qs_status st = qs_session_run_observed(r->qs, inputs, n_inputs, capture_int8, r, err);
    if (st != QS_OK)
        return st;
    qs_tensor qo;
    qs_session_output(r->qs, 0, &qo);
    size_t n = qs_tensor_numel(&qo);
    if (qo.dtype == QS_DTYPE_FLOAT32 && n > r->q_out_cap) {
        float *b = realloc(r->q_out, n * sizeof(float));
        if (!b)
            return qs_error_set(err, QS_ERR_NO_MEMORY, "report", "out of memory");
        r->q_out = b;
        r->q_out_cap = n;
    }
    if (qo.dtype == QS_DTYPE_FLOAT32)
        memcpy(r->q_out, qo.data, n * sizeof(float));
    st = qs_session_run_observed(r->fs, inputs, n_inputs, compare_fp32, r, err);
    if (st != QS_OK)
        return st;
    qs_tensor fo;
    qs_session_output(r->fs, 0, &fo);
    if (qo.dtype != QS_DTYPE_FLOAT32 || fo.dtype != QS_DTYPE_FLOAT32 || qs_tensor_numel(&fo) != n ||
        fo.rank < 1)
        return QS_OK;
    size_t rows = fo.rank > 1 ? (size_t)fo.dims[0] : 1, classes = rows ? n / rows : 0;
    double *pf = malloc(classes * sizeof(double)), *pq = malloc(classes * sizeof(double));
    if (!pf || !pq) {
        free(pf);
        free(pq);
        return qs_error_set(err, QS_ERR_NO_MEMORY, "report", "out of memory");
    }
    for (size_t b = 0; b < rows; b++) {
        const float *yf = (const float *)fo.data + b * classes, *yq = r->q_out + b * classes;
        size_t tf[5], tq[5], kf, kq, common = 0;
        top5(yf, classes, tf, &kf);
        top5(yq, classes, tq, &kq);
        for (size_t i = 0; i < kf; i++)
            for (size_t j = 0; j < kq; j++)
                common += tf[i] == tq[j];
        r->top1_sum += kf && kq && tf[0] == tq[0];
        r->top5_sum += kf ? (double)common / (double)kf : 0.0;
        softmax(yf, classes, pf);
        softmax(yq, classes, pq);
        double kl = 0.0;
        for (size_t i = 0; i < classes; i++)
            if (pf[i] > 0)
                kl += pf[i] * log(pf[i] / fmax(pq[i], 1e-30));
        r->kl_sum += kl;
        r->agree.samples++;
    }
    free(pf);
    free(pq);
    return QS_OK;
}

static int cmp_sqnr(const void *a, const void *b) {
    const qs_layer_report *x = a, *y = b;
    return x->sqnr_db < y->sqnr_db ? -1 : x->sqnr_db > y->sqnr_db;
}

size_t qs_quant_report_layers(qs_quant_report *r, const qs_layer_report **layers) {
    free(r->ranked);
    r->ranked = calloc(r->n_layers ? r->n_layers : 1, sizeof(qs_layer_report));
    size_t k = 0;
    for (size_t i = 0; r->ranked && i < r->n_layers; i++) {
        layer_stats *l = &r->layers[i];
        if (!l->pub.elements)
            continue;
        qs_layer_report p = l->pub;
        p.clipped = (double)l->clipped / (double)l->pub.elements;
        p.sqnr_db = l->e2 > 0 ? 10.0 * log10(l->f2 / l->e2) : 99.0;
        if (p.sqnr_db > 99.0)
            p.sqnr_db = 99.0;
        p.cosine = l->f2 > 0 && l->q2 > 0 ? l->fq / sqrt(l->f2 * l->q2) : 1.0;
        r->ranked[k++] = p;
    }
    if (r->ranked)
        qsort(r->ranked, k, sizeof(qs_layer_report), cmp_sqnr);
    *layers = r->ranked;
    return k;
}

void qs_quant_report_agreement(const qs_quant_report *r, qs_model_agreement *out) {
    *out = r->agree;
    double n = r->agree.samples ? (double)r->agree.samples : 1.0;
    out->top1_agreement = r->top1_sum / n;
    out->top5_overlap = r->top5_sum / n;
    out->mean_kl = r->kl_sum / n;
}
