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

/* exp(-x) <= exp(87) keeps the result a normal float: subnormal outputs would slow every later
 * operation that reads them. */
static inline __attribute__((always_inline)) QV qv_sigmoid(QV x) {
    const QV one = QV_SET1(1.0f);
    const QV nx = QV_MIN(QV_SUB(QV_SET1(0.0f), x), QV_SET1(87.0f));
    return QV_DIV(one, QV_ADD(one, qv_exp(nx)));
}

/* One vector of a non-clamp activation (clamp kinds are handled in the kernels' epilogues). */
static inline __attribute__((always_inline)) QV qv_act(const qs_act *act, QV x) {
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
    case QS_ACT_SIGMOID: return qv_sigmoid(x);
    case QS_ACT_SILU: return QV_MUL(x, qv_sigmoid(x));
    }
    return x;
}

/* The switch is hoisted out of the loops: one loop per activation kind. */
#define QV_ACT_LOOP(kind_value)                                                                \
    do {                                                                                       \
        const qs_act k_ = {.kind = kind_value, .min = act->min, .max = act->max,              \
                           .alpha = act->alpha, .beta = act->beta};                            \
        size_t i = 0;                                                                          \
        for (; i + QV_W <= n; i += QV_W)                                                       \
            QV_STORE(x + i, qv_act(&k_, QV_LOAD(x + i)));                                      \
        if (i < n) {                                                                           \
            const QM m = QV_MASK(n - i);                                                       \
            QV_STOREM(x + i, m, qv_act(&k_, QV_LOADM(x + i, m)));                              \
        }                                                                                      \
    } while (0)

static void qv_act_apply(const qs_act *act, float *x, size_t n) {
    if (!act)
        return;
    switch (act->kind) {
    case QS_ACT_NONE: return;
    case QS_ACT_RELU: QV_ACT_LOOP(QS_ACT_RELU); return;
    case QS_ACT_CLIP: QV_ACT_LOOP(QS_ACT_CLIP); return;
    case QS_ACT_LEAKY_RELU: QV_ACT_LOOP(QS_ACT_LEAKY_RELU); return;
    case QS_ACT_HARDSIGMOID: QV_ACT_LOOP(QS_ACT_HARDSIGMOID); return;
    case QS_ACT_HARDSWISH: QV_ACT_LOOP(QS_ACT_HARDSWISH); return;
    case QS_ACT_SIGMOID: QV_ACT_LOOP(QS_ACT_SIGMOID); return;
    case QS_ACT_SILU: QV_ACT_LOOP(QS_ACT_SILU); return;
    }
}
#undef QV_ACT_LOOP

/* ---- depthwise convolution ----
 * Output pixels outer, channels inner: every load walks along contiguous channels, so rows of
 * any width and channel count stream through L1. Weights are packed [C / QV_W][taps][QV_W] with
 * zero padding, so one pointer with constant offsets reaches all taps of a channel block. Taps
 * that fall into the padding read args->zero instead of branching. The load ports, not the FMA
 * units, limit this kernel: QV_PIN(v) (defined by the including file) keeps v in a register so
 * that the compiler does not fold one load into several FMAs as repeated memory operands. */

static inline __attribute__((always_inline)) void
qv_dw_finish(QV acc, float *o, const float *r, QM m, bool full, QV vmin, QV vmax) {
    if (r)
        acc = QV_ADD(acc, full ? QV_LOAD(r) : QV_LOADM(r, m));
    acc = QV_MIN(QV_MAX(acc, vmin), vmax);
    if (full)
        QV_STORE(o, acc);
    else
        QV_STOREM(o, m, acc);
}

/* One output pixel of a 3x3 kernel, x[t] = the input pixel of tap t (or the zero vector). */
static inline __attribute__((always_inline)) void
qv_dw3x3_pixel(const qs_dw_args *p, const float *const x[9], float *o, const float *r, QV vmin,
               QV vmax) {
    const size_t c = p->c;
    const float *w = p->w;
    size_t c0 = 0;
    for (; c0 + QV_W <= c; c0 += QV_W, w += 9 * QV_W) {
        QV acc = QV_LOAD(p->bias + c0);
        QV acc2 = QV_MUL(QV_LOAD(x[0] + c0), QV_LOAD(w));
        acc = QV_FMA(QV_LOAD(x[1] + c0), QV_LOAD(w + 1 * QV_W), acc);
        acc2 = QV_FMA(QV_LOAD(x[2] + c0), QV_LOAD(w + 2 * QV_W), acc2);
        acc = QV_FMA(QV_LOAD(x[3] + c0), QV_LOAD(w + 3 * QV_W), acc);
        acc2 = QV_FMA(QV_LOAD(x[4] + c0), QV_LOAD(w + 4 * QV_W), acc2);
        acc = QV_FMA(QV_LOAD(x[5] + c0), QV_LOAD(w + 5 * QV_W), acc);
        acc2 = QV_FMA(QV_LOAD(x[6] + c0), QV_LOAD(w + 6 * QV_W), acc2);
        acc = QV_FMA(QV_LOAD(x[7] + c0), QV_LOAD(w + 7 * QV_W), acc);
        acc2 = QV_FMA(QV_LOAD(x[8] + c0), QV_LOAD(w + 8 * QV_W), acc2);
        qv_dw_finish(QV_ADD(acc, acc2), o + c0, r ? r + c0 : NULL, QV_MASK(QV_W), true, vmin,
                     vmax);
    }
    if (c0 < c) {
        const QM m = QV_MASK(c - c0);
        QV acc = QV_LOADM(p->bias + c0, m);
        for (size_t t = 0; t < 9; t++)
            acc = QV_FMA(QV_LOADM(x[t] + c0, m), QV_LOAD(w + t * QV_W), acc);
        qv_dw_finish(acc, o + c0, r ? r + c0 : NULL, m, false, vmin, vmax);
    }
}

/* QV_QUAD adjacent output columns of a 3x3 kernel with dilation 1 and stride S (a literal): each
 * input vector is loaded once and used for every output that reads it, and the nine weights
 * of a channel block stay in registers, so loads per output fall from 18 to about 7 (S = 1). */
#ifndef QV_QUAD
#define QV_QUAD 4 /* columns per group; an ISA with more registers may define more */
#endif
static inline __attribute__((always_inline)) void
qv_dw3x3_quad_block(const float *const rp[3], size_t c, size_t S, const float *w, QV bias,
                    QM m, bool full, QV acc[QV_QUAD]) {
    QV wv[9];
#pragma GCC unroll 9
    for (size_t t = 0; t < 9; t++) {
        wv[t] = QV_LOAD(w + t * QV_W);
        QV_PIN(wv[t]);
    }
#pragma GCC unroll 16
    for (size_t g = 0; g < QV_QUAD; g++)
        acc[g] = bias;
#pragma GCC unroll 3
    for (size_t kh = 0; kh < 3; kh++) {
        const float *x = rp[kh];
#pragma GCC unroll 32
        for (size_t j = 0; j < (QV_QUAD - 1) * S + 3; j++) {
            QV xv = full ? QV_LOAD(x + j * c) : QV_LOADM(x + j * c, m);
            QV_PIN(xv);
#pragma GCC unroll 16
            for (size_t g = 0; g < QV_QUAD; g++) {
                if (j >= g * S && j - g * S < 3)
                    acc[g] = QV_FMA(xv, wv[kh * 3 + (j - g * S)], acc[g]);
            }
        }
    }
}

static inline __attribute__((always_inline)) void
qv_dw3x3_quad(const qs_dw_args *p, const float *const row[3], size_t ow, size_t S,
              float *out_row, const float *res_row, QV vmin, QV vmax) {
    const size_t c = p->c;
    const float *rp[3] = {row[0] + ow * S * c, row[1] + ow * S * c, row[2] + ow * S * c};
    float *o = out_row + ow * c;
    const float *r = res_row ? res_row + ow * c : NULL;
    const float *w = p->w;
    QV acc[QV_QUAD];
    size_t c0 = 0;
    for (; c0 + QV_W <= c; c0 += QV_W, w += 9 * QV_W) {
        qv_dw3x3_quad_block(rp, c, S, w, QV_LOAD(p->bias + c0), QV_MASK(QV_W), true, acc);
#pragma GCC unroll 16
        for (size_t g = 0; g < QV_QUAD; g++)
            qv_dw_finish(acc[g], o + g * c + c0, r ? r + g * c + c0 : NULL, QV_MASK(QV_W), true,
                         vmin, vmax);
        rp[0] += QV_W;
        rp[1] += QV_W;
        rp[2] += QV_W;
    }
    if (c0 < c) {
        const QM m = QV_MASK(c - c0);
        qv_dw3x3_quad_block(rp, c, S, w, QV_LOADM(p->bias + c0, m), m, false, acc);
        for (size_t g = 0; g < QV_QUAD; g++)
            qv_dw_finish(acc[g], o + g * c + c0, r ? r + g * c + c0 : NULL, m, false, vmin,
                         vmax);
    }
}

/* Output columns [ow0, ow1) of a 3x3 kernel whose taps are all inside the image, two at a time
 * (sharing the weight loads). Tap (kh, kw) of column ow is row[kh] + ow * sc + kw * d. */
static inline __attribute__((always_inline)) void
qv_dw3x3_interior(const qs_dw_args *p, const float *const row[3], size_t ow0, size_t ow1,
                  float *out_row, const float *res_row, QV vmin, QV vmax) {
    const size_t c = p->c, sc = p->stride_w * c, d = p->dilation_w * c;
    const size_t nfull = c / QV_W * QV_W;
    size_t ow = ow0;
    if (p->dilation_w == 1 && p->stride_w == 1)
        for (; ow + QV_QUAD <= ow1; ow += QV_QUAD)
            qv_dw3x3_quad(p, row, ow, 1, out_row, res_row, vmin, vmax);
    else if (p->dilation_w == 1 && p->stride_w == 2)
        for (; ow + QV_QUAD <= ow1; ow += QV_QUAD)
            qv_dw3x3_quad(p, row, ow, 2, out_row, res_row, vmin, vmax);
    for (; ow + 2 <= ow1; ow += 2) {
        const float *r0 = row[0] + ow * sc, *r1 = row[1] + ow * sc, *r2 = row[2] + ow * sc;
        float *o = out_row + ow * c;
        const float *r = res_row ? res_row + ow * c : NULL;
        const float *w = p->w;
    /* Three partial sums per pixel (one per kernel row): short FMA chains, so the latency of
     * one block does not hold up the next. */
#define QV_TAP2(x0, x1, rp, off, wi)                                                           \
    do {                                                                                       \
        QV wv = QV_LOAD(w + (wi) * QV_W);                                                      \
        QV_PIN(wv);                                                                            \
        x0 = QV_FMA(QV_LD((rp) + (off)), wv, x0);                                              \
        x1 = QV_FMA(QV_LD((rp) + (off) + sc), wv, x1);                                         \
    } while (0)
#define QV_BODY2                                                                               \
    QV w3 = QV_LOAD(w + 3 * QV_W), w6 = QV_LOAD(w + 6 * QV_W);                                 \
    QV_PIN(w3);                                                                                \
    QV_PIN(w6);                                                                                \
    QV b0 = QV_MUL(QV_LD(r1), w3);                                                             \
    QV b1 = QV_MUL(QV_LD(r1 + sc), w3);                                                        \
    QV e0 = QV_MUL(QV_LD(r2), w6);                                                             \
    QV e1 = QV_MUL(QV_LD(r2 + sc), w6);                                                        \
    QV_TAP2(a0, a1, r0, 0, 0); QV_TAP2(a0, a1, r0, d, 1); QV_TAP2(a0, a1, r0, 2 * d, 2);       \
    QV_TAP2(b0, b1, r1, d, 4); QV_TAP2(b0, b1, r1, 2 * d, 5);                                  \
    QV_TAP2(e0, e1, r2, d, 7); QV_TAP2(e0, e1, r2, 2 * d, 8);                                  \
    a0 = QV_ADD(a0, QV_ADD(b0, e0));                                                           \
    a1 = QV_ADD(a1, QV_ADD(b1, e1))
        size_t c0 = 0;
        for (; c0 < nfull; c0 += QV_W, w += 9 * QV_W, r0 += QV_W, r1 += QV_W, r2 += QV_W) {
#define QV_LD(ptr) QV_LOAD(ptr)
            QV a0 = QV_LOAD(p->bias + c0), a1 = a0;
            QV_BODY2;
            qv_dw_finish(a0, o + c0, r ? r + c0 : NULL, QV_MASK(QV_W), true, vmin, vmax);
            qv_dw_finish(a1, o + c + c0, r ? r + c + c0 : NULL, QV_MASK(QV_W), true, vmin, vmax);
#undef QV_LD
        }
        if (c0 < c) {
            const QM m = QV_MASK(c - c0);
#define QV_LD(ptr) QV_LOADM(ptr, m)
            QV a0 = QV_LOADM(p->bias + c0, m), a1 = a0;
            QV_BODY2;
            qv_dw_finish(a0, o + c0, r ? r + c0 : NULL, m, false, vmin, vmax);
            qv_dw_finish(a1, o + c + c0, r ? r + c + c0 : NULL, m, false, vmin, vmax);
#undef QV_LD
        }
#undef QV_BODY2
#undef QV_TAP2
    }
    if (ow < ow1) {
        const float *x[9];
        for (size_t kh = 0; kh < 3; kh++)
            for (size_t kw = 0; kw < 3; kw++)
                x[kh * 3 + kw] = row[kh] + ow * sc + kw * d;
        qv_dw3x3_pixel(p, x, out_row + ow * c, res_row ? res_row + ow * c : NULL, vmin, vmax);
    }
}

static void qv_dw3x3_row(const qs_dw_args *p, size_t oh, size_t ow_lo, size_t ow_hi,
                         float *out_row, const float *res_row, QV vmin, QV vmax) {
    const size_t c = p->c;
    const float *rows[3];
    bool rows_ok = true;
    for (size_t kh = 0; kh < 3; kh++) {
        const size_t ih = oh * p->stride_h + kh * p->dilation_h;
        rows[kh] = ih >= p->pad_top && ih - p->pad_top < p->in_h
                       ? p->in + (ih - p->pad_top) * p->in_w * c
                       : NULL;
        rows_ok = rows_ok && rows[kh];
    }
    if (!rows_ok)
        ow_lo = ow_hi = p->out_w;
    const float *x[9];
    for (size_t ow = 0; ow < p->out_w; ow++) {
        if (ow == ow_lo && ow_lo < ow_hi) {
            /* Row pointers at the first tap of column 0 (only offset by >= ow_lo columns). */
            const float *row[3];
            for (size_t kh = 0; kh < 3; kh++)
                row[kh] = rows[kh] - p->pad_left * c;
            qv_dw3x3_interior(p, row, ow_lo, ow_hi, out_row, res_row, vmin, vmax);
            ow = ow_hi - 1;
            continue;
        }
        for (size_t kw = 0; kw < 3; kw++) {
            const size_t iw = ow * p->stride_w + kw * p->dilation_w;
            const bool col_ok = iw >= p->pad_left && iw - p->pad_left < p->in_w;
            for (size_t kh = 0; kh < 3; kh++)
                x[kh * 3 + kw] = rows[kh] && col_ok ? rows[kh] + (iw - p->pad_left) * c : p->zero;
        }
        qv_dw3x3_pixel(p, x, out_row + ow * c, res_row ? res_row + ow * c : NULL, vmin, vmax);
    }
}

/* Any kernel size: taps limited to the image, channel blocks inner. */
static void qv_dw_generic_row(const qs_dw_args *p, size_t oh, float *out_row,
                              const float *res_row, QV vmin, QV vmax) {
    const size_t c = p->c, taps = p->kernel_h * p->kernel_w;
    size_t kh0, kh1;
    qs_dw_taps(oh, p->pad_top, p->stride_h, p->dilation_h, p->kernel_h, p->in_h, &kh0, &kh1);
    for (size_t ow = 0; ow < p->out_w; ow++) {
        size_t kw0, kw1;
        qs_dw_taps(ow, p->pad_left, p->stride_w, p->dilation_w, p->kernel_w, p->in_w, &kw0, &kw1);
        float *o = out_row + ow * c;
        const float *r = res_row ? res_row + ow * c : NULL;
        for (size_t c0 = 0; c0 < c; c0 += QV_W) {
            const bool full = c - c0 >= QV_W;
            const QM m = QV_MASK(full ? QV_W : c - c0);
            const float *w = p->w + c0 * taps;
            QV acc = full ? QV_LOAD(p->bias + c0) : QV_LOADM(p->bias + c0, m);
            for (size_t kh = kh0; kh < kh1; kh++) {
                const size_t ih = oh * p->stride_h + kh * p->dilation_h - p->pad_top;
                const float *xrow = p->in + ih * p->in_w * c + c0;
                for (size_t kw = kw0; kw < kw1; kw++) {
                    const size_t iw = ow * p->stride_w + kw * p->dilation_w - p->pad_left;
                    const QV xv = full ? QV_LOAD(xrow + iw * c) : QV_LOADM(xrow + iw * c, m);
                    acc = QV_FMA(xv, QV_LOAD(w + (kh * p->kernel_w + kw) * QV_W), acc);
                }
            }
            qv_dw_finish(acc, o + c0, r ? r + c0 : NULL, m, full, vmin, vmax);
        }
    }
}

static void qv_dwconv_row(const qs_dw_args *p, size_t oh, float *out_row, const float *res_row) {
    const QV vmin = QV_SET1(p->clamp.min), vmax = QV_SET1(p->clamp.max);
    if (p->kernel_h == 3 && p->kernel_w == 3) {
        /* Columns whose taps all fall inside the row: [ow_lo, ow_hi). */
        size_t ow_lo = 0, ow_hi = 0;
        const size_t span = 2 * p->dilation_w;
        if (p->in_w + p->pad_left > span) {
            ow_lo = (p->pad_left + p->stride_w - 1) / p->stride_w;
            const size_t last = (p->in_w + p->pad_left - 1 - span) / p->stride_w;
            ow_hi = last + 1 < p->out_w ? last + 1 : p->out_w;
        }
        qv_dw3x3_row(p, oh, ow_lo, ow_hi, out_row, res_row, vmin, vmax);
        return;
    }
    qv_dw_generic_row(p, oh, out_row, res_row, vmin, vmax);
}
