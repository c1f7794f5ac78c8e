/* Activation and depthwise-convolution bodies shared by the SIMD ISAs, written against a few vector
 * macros (QV_*) that the including file defines for its register width QV_W. Included, not
 * compiled on its own: one source of truth, so the AVX2 tests also exercise the AVX-512 logic. */

/* exp(x) for one vector: 2^n * p(r) with r = x - n ln2 and a degree-6 Taylor polynomial
 * (relative error about 2e-7 on the reduced range), inputs clamped to the finite range. */
static inline QV qv_exp(QV x) {
    x = QV_MIN(QV_MAX(x, QV_SET1(-87.0f)), QV_SET1(88.0f));
    const QV n = QV_ROUND(QV_MUL(x, QV_SET1(1.44269504088896341f)));
    QV r = QV_FMA(n, QV_SET1(-0.693145751953125f), x);
    r = QV_FMA(n, QV_SET1(-1.428606765330187045e-6f), r);
    QV p = QV_SET1(1.0f / 720.0f);
    p = QV_FMA(p, r, QV_SET1(1.0f / 120.0f));
    p = QV_FMA(p, r, QV_SET1(1.0f / 24.0f));
    p = QV_FMA(p, r, QV_SET1(1.0f / 6.0f));
    p = QV_FMA(p, r, QV_SET1(0.5f));
    p = QV_FMA(p, r, QV_SET1(1.0f));
    p = QV_FMA(p, r, QV_SET1(1.0f));
    return QV_MUL(p, QV_POW2N(n));
}

/* One vector of a non-clamp activation (clamp kinds are handled in the kernels' epilogues). */
static inline QV qv_act(const qs_act *act, QV x) {
    switch (act->kind) {
    case QS_ACT_NONE: return x;
    case QS_ACT_RELU: return QV_MAX(x, QV_SET1(0.0f));
    case QS_ACT_CLIP: return QV_MIN(QV_MAX(x, QV_SET1(act->min)), QV_SET1(act->max));
    case QS_ACT_LEAKY_RELU:
        /* x >= 0: x + alpha * 0; x < 0: 0 + alpha * x. */
        return QV_FMA(QV_MIN(x, QV_SET1(0.0f)), QV_SET1(act->alpha), QV_MAX(x, QV_SET1(0.0f)));
    case QS_ACT_HARDSIGMOID:
        return QV_MAX(QV_SET1(0.0f),
                      QV_MIN(QV_SET1(1.0f),
                             QV_FMA(x, QV_SET1(act->alpha), QV_SET1(act->beta))));
    case QS_ACT_HARDSWISH:
        return QV_MUL(x, QV_MAX(QV_SET1(0.0f),
                                QV_MIN(QV_SET1(1.0f),
                                       QV_FMA(x, QV_SET1(1.0f / 6.0f), QV_SET1(0.5f)))));
    case QS_ACT_SIGMOID: {
        const QV one = QV_SET1(1.0f);
        return QV_DIV(one, QV_ADD(one, qv_exp(QV_SUB(QV_SET1(0.0f), x))));
    }
    }
    return x;
}

static void qv_act_apply(const qs_act *act, float *x, size_t n) {
    if (!act || act->kind == QS_ACT_NONE)
        return;
    size_t i = 0;
    for (; i + QV_W <= n; i += QV_W)
        QV_STORE(x + i, qv_act(act, QV_LOAD(x + i)));
    if (i < n) {
        const QM m = QV_MASK(n - i);
        QV_STOREM(x + i, m, qv_act(act, QV_LOADM(x + i, m)));
    }
}

/* Depthwise: one channel vector (c0, mask m) of output column ow, taps [kh0,kh1) x [kw0,kw1). */
static inline QV qv_dw_pixel(const qs_dw_args *p, size_t oh, size_t ow, size_t kh0, size_t kh1,
                             size_t c0, QM m, bool full) {
    size_t kw0, kw1;
    qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, p->kernel_w, p->in_w, &kw0, &kw1);
    QV acc = full ? QV_LOAD(p->bias + c0) : QV_LOADM(p->bias + c0, m);
    for (size_t kh = kh0; kh < kh1; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
        for (size_t kw = kw0; kw < kw1; kw++) {
            const size_t iw = ow * p->stride_w + kw * p->dilation_w - p->pad_left;
            const float *x = p->in + (ih * p->in_w + iw) * p->c + c0;
            const float *w = p->w + (kh * p->kernel_w + kw) * p->c + c0;
            acc = full ? QV_FMA(QV_LOAD(x), QV_LOAD(w), acc)
                       : QV_FMA(QV_LOADM(x, m), QV_LOADM(w, m), acc);
        }
    }
    return acc;
}

static inline void qv_dw_store(const qs_dw_args *p, float *o, const float *r, QV acc, QM m,
                               bool full, QV vmin, QV vmax) {
    if (r)
        acc = QV_ADD(acc, full ? QV_LOAD(r) : QV_LOADM(r, m));
    acc = QV_MIN(QV_MAX(acc, vmin), vmax);
    (void)p;
    if (full)
        QV_STORE(o, acc);
    else
        QV_STOREM(o, m, acc);
}

/* 3x3 interior columns [ow0, ow1) with all taps inside: nine weight vectors stay in registers
 * and two columns are computed per step for two independent FMA chains. */
static inline void qv_dw3x3_interior(const qs_dw_args *p, size_t oh, size_t ow0, size_t ow1,
                                     size_t c0, QM m, bool full, float *out_row,
                                     const float *res_row, QV vmin, QV vmax) {
    const size_t c = p->c, sw = p->stride_w * c, dw = p->dilation_w * c;
    const size_t rs = p->dilation_h * p->in_w * c;
    QV w[9];
    for (size_t t = 0; t < 9; t++)
        w[t] = full ? QV_LOAD(p->w + t * c + c0) : QV_LOADM(p->w + t * c + c0, m);
    const QV bias = full ? QV_LOAD(p->bias + c0) : QV_LOADM(p->bias + c0, m);
    const size_t ih0 = oh * p->stride_h - p->pad_top;
    const float *row0 = p->in + ih0 * p->in_w * c + c0;
#define QV_LD(ptr) (full ? QV_LOAD(ptr) : QV_LOADM(ptr, m))
#define QV_TAPS(acc, x)                                                                        \
    do {                                                                                       \
        acc = QV_FMA(QV_LD(x), w[0], acc);                                                     \
        acc = QV_FMA(QV_LD(x + dw), w[1], acc);                                                \
        acc = QV_FMA(QV_LD(x + 2 * dw), w[2], acc);                                            \
        acc = QV_FMA(QV_LD(x + rs), w[3], acc);                                                \
        acc = QV_FMA(QV_LD(x + rs + dw), w[4], acc);                                           \
        acc = QV_FMA(QV_LD(x + rs + 2 * dw), w[5], acc);                                       \
        acc = QV_FMA(QV_LD(x + 2 * rs), w[6], acc);                                            \
        acc = QV_FMA(QV_LD(x + 2 * rs + dw), w[7], acc);                                       \
        acc = QV_FMA(QV_LD(x + 2 * rs + 2 * dw), w[8], acc);                                   \
    } while (0)
    size_t ow = ow0;
    for (; ow + 2 <= ow1; ow += 2) {
        const float *x0 = row0 + (ow * p->stride_w - p->pad_left) * c;
        const float *x1 = x0 + sw;
        QV a0 = bias, a1 = bias;
        QV_TAPS(a0, x0);
        QV_TAPS(a1, x1);
        float *o = out_row + ow * c + c0;
        const float *r = res_row ? res_row + ow * c + c0 : NULL;
        qv_dw_store(p, o, r, a0, m, full, vmin, vmax);
        qv_dw_store(p, o + c, r ? r + c : NULL, a1, m, full, vmin, vmax);
    }
    if (ow < ow1) {
        const float *x0 = row0 + (ow * p->stride_w - p->pad_left) * c;
        QV a0 = bias;
        QV_TAPS(a0, x0);
        qv_dw_store(p, out_row + ow * c + c0, res_row ? res_row + ow * c + c0 : NULL, a0, m, full,
                    vmin, vmax);
    }
#undef QV_TAPS
#undef QV_LD
}

static void qv_dwconv_row(const qs_dw_args *p, size_t oh, float *out_row, const float *res_row) {
    const size_t c = p->c;
    size_t kh0, kh1;
    qs_dw_taps(oh, p->pad_top, p->stride_h, p->dilation_h, p->kernel_h, p->in_h, &kh0, &kh1);
    /* Columns whose taps all fall inside the row: [ow_lo, ow_hi). */
    size_t ow_lo = 0, ow_hi = 0;
    const size_t span = (p->kernel_w - 1) * p->dilation_w;
    if (p->in_w + p->pad_left > span) {
        ow_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
        const size_t last = (p->in_w + p->pad_left - 1 - span) / p->stride_w; /* inclusive */
        ow_hi = last + 1 < p->out_w ? last + 1 : p->out_w;
        if (ow_lo > ow_hi)
            ow_lo = ow_hi;
    }
    const bool fast3x3 = p->kernel_h == 3 && p->kernel_w == 3 && kh0 == 0 && kh1 == 3;
    const QV vmin = QV_SET1(p->clamp.min), vmax = QV_SET1(p->clamp.max);
    for (size_t c0 = 0; c0 < c; c0 += QV_W) {
        const bool full = c - c0 >= QV_W;
        const QM m = QV_MASK(full ? QV_W : c - c0);
        size_t ow = 0;
        if (fast3x3) {
            for (; ow < ow_lo; ow++)
                qv_dw_store(p, out_row + ow * c + c0, res_row ? res_row + ow * c + c0 : NULL,
                            qv_dw_pixel(p, oh, ow, kh0, kh1, c0, m, full), m, full, vmin, vmax);
            qv_dw3x3_interior(p, oh, ow_lo, ow_hi, c0, m, full, out_row, res_row, vmin, vmax);
            ow = ow_hi;
        }
        for (; ow < p->out_w; ow++)
            qv_dw_store(p, out_row + ow * c + c0, res_row ? res_row + ow * c + c0 : NULL,
                        qv_dw_pixel(p, oh, ow, kh0, kh1, c0, m, full), m, full, vmin, vmax);
    }
}
