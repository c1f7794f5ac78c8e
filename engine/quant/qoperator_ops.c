/* ONNX QOperator operators, reference kernels (NCHW): QLinearConv and ConvInteger (1-D to 3-D,
 * groups, strides, dilations, explicit or automatic pads), QLinearMatMul and MatMulInteger (numpy
 * matmul broadcasting, per-tensor/per-row/per-column parameters). Zero points are subtracted into
 * int16 copies in scratch (so padding reads as the zero point), products accumulate exactly and
 * wrap to int32 as the spec allows. Requantization follows the ONNX reference implementation: the
 * multiplier x_scale * w_scale / y_scale in float32, product and zero point in double, saturate,
 * round half to even. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"
#include "quant/quant.h"

/* ---- shared ---- */

static bool is_q8(qs_dtype t) { return t == QS_DTYPE_UINT8 || t == QS_DTYPE_INT8; }

/* Element i of an 8-bit integer tensor. */
static int32_t q8_at(const void *p, qs_dtype t, size_t i) {
    return t == QS_DTYPE_INT8 ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/* An exact sum as a 32-bit accumulator holds it (the spec lets accumulation overflow only in
 * 32 bits). */
static int32_t wrap32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

/* The reference requantization; NaN saturates to the low end. */
static int32_t requant(int32_t acc, float mult, int32_t zero, int32_t lo, int32_t hi) {
    double r = (double)acc * (double)mult + (double)zero;
    r = fmin(fmax(r, (double)lo), (double)hi);
    return (int32_t)nearbyint(r);
}

/* Store element i of a QLinear output (uint8/int8) or of an Integer output (int32). */
static void store(void *y, qs_dtype t, size_t i, int32_t v) {
    if (t == QS_DTYPE_INT32)
        ((int32_t *)y)[i] = v;
    else if (t == QS_DTYPE_INT8)
        ((int8_t *)y)[i] = (int8_t)v;
    else
        ((uint8_t *)y)[i] = (uint8_t)v;
}

/* dst[i] = src[i] - zero for n 8-bit values. */
static void sub_zero_i16(const void *src, qs_dtype t, size_t n, int32_t zero, int16_t *dst) {
    if (t == QS_DTYPE_INT8) {
        const int8_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = (int16_t)(s[i] - zero);
    } else {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = (int16_t)(s[i] - zero);
    }
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Scratch for the int16 copies of two 8-bit tensors. Input sizes are real tensors, so no
 * overflow. */
static size_t i16_pair_bytes(const qs_view *a, const qs_view *b) {
    return align64(qs_view_numel(a) * sizeof(int16_t)) + align64(qs_view_numel(b) * sizeof(int16_t));
}

/* Saturation bounds of an 8-bit output type. */
static void q8_bounds(qs_dtype t, int32_t *lo, int32_t *hi) {
    *lo = t == QS_DTYPE_INT8 ? -128 : 0;
    *hi = t == QS_DTYPE_INT8 ? 127 : 255;
}

/* A scale input: present, float32, one value or (when per_channel > 1) a 1-D of that many. */
static qs_status check_scale(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                             size_t per_channel, qs_error *err) {
    if (!qs_op_has_input(n, in, i))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s is missing", what);
    if (in[i].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%s must be float32", what);
    size_t c = qs_view_numel(&in[i]);
    if (c != 1 && (per_channel <= 1 || c != per_channel || in[i].rank != 1))
        return qs_node_error(err, QS_ERR_SHAPE, n, "%s has %zu values (1%s expected)", what, c,
                             per_channel > 1 ? " or one per output channel" : "");
    return QS_OK;
}

/* An optional zero point: absent, or of type t with one value or (per_channel > 1) a 1-D of that
 * many. */
static qs_status check_zero(const qs_node *n, const qs_view *in, int32_t i, const char *what,
                            qs_dtype t, size_t per_channel, qs_error *err) {
    if (!qs_op_has_input(n, in, i))
        return QS_OK;
    if (in[i].dtype != t)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s must be %s like its tensor",
                             what, qs_dtype_name(t));
    size_t c = qs_view_numel(&in[i]);
    if (c != 1 && (per_channel <= 1 || c != per_channel || in[i].rank != 1))
        return qs_node_error(err, QS_ERR_SHAPE, n, "%s has %zu values (1%s expected)", what, c,
                             per_channel > 1 ? " or one per output channel" : "");
    return QS_OK;
}

/* ---- QLinearConv, ConvInteger ---- */

typedef struct {
    qs_window_attrs win;
    int64_t group;
} qop_conv_params;

/* Input positions: QLinearConv (x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B) and ConvInteger (x, w, x_zero_point, w_zero_point). */
typedef struct {
    int32_t x, xz, w, wz;
    bool qlinear;
} conv_slots;

static const conv_slots qlinear_conv_slots = {0, 2, 3, 5, true};
static const conv_slots conv_integer_slots = {0, 2, 1, 3, false};

enum { QC_X_SCALE = 1, QC_W_SCALE = 4, QC_Y_SCALE = 6, QC_Y_ZERO = 7, QC_BIAS = 8 };

static qs_status conv_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qop_conv_params *p = calloc(1, sizeof(*p));
    qs_status st;
    (void)g;
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    st = qs_window_attrs_parse(n, false, &p->win, err);
    if (st == QS_OK)
        st = qs_attr_get_int(n, "group", 1, &p->group, err);
    if (st == QS_OK && (p->group < 1 || p->group > ((int64_t)1 << 30)))
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "group %lld is invalid",
                           (long long)p->group);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    n->params = p;
    return QS_OK;
}

static qs_status conv_geometry(const qs_node *n, const qs_view *in, const conv_slots *s,
                               qs_window *w, qs_error *err) {
    const qop_conv_params *p = n->params;
    const qs_view *x = &in[s->x], *wt = &in[s->w];
    qs_status st;
    if ((st = qs_op_need_plain(n, in, s->x, err)) != QS_OK)
        return st;
    if (!is_q8(x->dtype) || !is_q8(wt->dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "x and w must be uint8 or int8");
    if (x->rank < 3 || x->rank > 2 + QS_WINDOW_MAX_DIMS)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "x of rank %d is not supported",
                             (int)x->rank);
    if (wt->rank != x->rank)
        return qs_node_error(err, QS_ERR_SHAPE, n, "w must have the rank of x");
    if (wt->dims[0] < 1 || wt->dims[0] % p->group != 0 || x->dims[1] != wt->dims[1] * p->group)
        return qs_node_error(err, QS_ERR_SHAPE, n,
                             "channels do not match: x has %lld, w %lldx%lld, group %lld",
                             (long long)x->dims[1], (long long)wt->dims[0],
                             (long long)wt->dims[1], (long long)p->group);
    size_t m = (size_t)wt->dims[0];
    if ((st = check_zero(n, in, s->xz, "x_zero_point", x->dtype, 1, err)) != QS_OK ||
        (st = check_zero(n, in, s->wz, "w_zero_point", wt->dtype, m, err)) != QS_OK)
        return st;
    return qs_window_resolve(n, &p->win, x->rank - 2, x->dims + 2, wt->dims + 2, w, err);
}

static qs_status conv_infer(const qs_node *n, const qs_view *in, qs_view *out,
                            const conv_slots *s, qs_error *err) {
    qs_window w;
    qs_status st = conv_geometry(n, in, s, &w, err);
    if (st != QS_OK)
        return st;
    const qs_view *x = &in[s->x];
    size_t m = (size_t)in[s->w].dims[0];
    qs_dtype t = QS_DTYPE_INT32;
    if (s->qlinear) {
        if ((st = check_scale(n, in, QC_X_SCALE, "x_scale", 1, err)) != QS_OK ||
            (st = check_scale(n, in, QC_W_SCALE, "w_scale", m, err)) != QS_OK ||
            (st = check_scale(n, in, QC_Y_SCALE, "y_scale", 1, err)) != QS_OK)
            return st;
        t = x->dtype; /* without y_zero_point, as the reference: the type of x */
        if (qs_op_has_input(n, in, QC_Y_ZERO)) {
            t = in[QC_Y_ZERO].dtype;
            if (!is_q8(t) || qs_view_numel(&in[QC_Y_ZERO]) != 1)
                return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n,
                                     "y_zero_point must be one uint8 or int8 value");
        }
        if (qs_op_has_input(n, in, QC_BIAS) &&
            (in[QC_BIAS].dtype != QS_DTYPE_INT32 || in[QC_BIAS].rank != 1 ||
             in[QC_BIAS].dims[0] != (int64_t)m))
            return qs_node_error(err, QS_ERR_SHAPE, n, "B must be %zu int32 values", m);
    }
    out[0].dtype = t;
    out[0].rank = x->rank;
    out[0].layout = QS_LAYOUT_PLAIN;
    out[0].dims[0] = x->dims[0];
    out[0].dims[1] = (int64_t)m;
    for (int32_t i = 0; i < w.n_sp; i++)
        out[0].dims[2 + i] = w.out[i];
    return qs_op_check_output(n, &out[0], err);
}

/* Geometry padded to three spatial dims (d, h, w) so one loop nest serves 1-D to 3-D. */
typedef struct {
    const int16_t *x, *w;      /* zero points subtracted */
    const int32_t *bias;       /* QLinearConv's B, or NULL */
    void *y;
    qs_dtype y_type;           /* INT32 for ConvInteger */
    float x_scale, y_scale;
    const float *w_scale;
    size_t n_w_scale;
    int32_t y_zero, lo, hi;
    size_t m, c, c_per_group, m_per_group;
    int64_t in[3], out[3], k[3], s[3], d[3], pad[3];
} conv_job;

/* Kernel taps [lo, hi) of one dim whose input position o * s - pad + t * d lies in [0, in). */
static void tap_range(int64_t o, int64_t s, int64_t pad, int64_t d, int64_t k, int64_t in,
                      int64_t *lo, int64_t *hi) {
    int64_t start = o * s - pad;
    int64_t l = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t h = start >= in ? 0 : (in - 1 - start) / d + 1;
    if (h > k)
        h = k;
    *lo = l < h ? l : h;
    *hi = h;
}

static void conv_tasks(void *ctx, size_t begin, size_t end) {
    const conv_job *j = ctx;
    const size_t in_plane = (size_t)(j->in[0] * j->in[1] * j->in[2]);
    const size_t out_plane = (size_t)(j->out[0] * j->out[1] * j->out[2]);
    const size_t k_size = (size_t)(j->k[0] * j->k[1] * j->k[2]);
    for (size_t task = begin; task < end; task++) {
        size_t batch = task / j->m, oc = task % j->m, grp = oc / j->m_per_group;
        const int16_t *xg = j->x + (batch * j->c + grp * j->c_per_group) * in_plane;
        const int16_t *wo = j->w + oc * j->c_per_group * k_size;
        float mult = 0.0f;
        if (j->y_type != QS_DTYPE_INT32)
            mult = j->x_scale * j->w_scale[j->n_w_scale == 1 ? 0 : oc] / j->y_scale;
        int64_t bias = j->bias ? j->bias[oc] : 0;
        size_t o = task * out_plane;
        for (int64_t od = 0; od < j->out[0]; od++) {
            int64_t d0, d1;
            tap_range(od, j->s[0], j->pad[0], j->d[0], j->k[0], j->in[0], &d0, &d1);
            for (int64_t oh = 0; oh < j->out[1]; oh++) {
                int64_t h0, h1;
                tap_range(oh, j->s[1], j->pad[1], j->d[1], j->k[1], j->in[1], &h0, &h1);
                for (int64_t ow = 0; ow < j->out[2]; ow++, o++) {
                    int64_t w0, w1;
                    tap_range(ow, j->s[2], j->pad[2], j->d[2], j->k[2], j->in[2], &w0, &w1);
                    int64_t acc = bias;
                    int64_t iw0 = ow * j->s[2] - j->pad[2];
                    for (size_t ci = 0; ci < j->c_per_group; ci++) {
                        const int16_t *xc = xg + ci * in_plane, *wc = wo + ci * k_size;
                        for (int64_t kd = d0; kd < d1; kd++) {
                            int64_t id = od * j->s[0] - j->pad[0] + kd * j->d[0];
                            for (int64_t kh = h0; kh < h1; kh++) {
                                int64_t ih = oh * j->s[1] - j->pad[1] + kh * j->d[1];
                                const int16_t *xr = xc + (id * j->in[1] + ih) * j->in[2];
                                const int16_t *wr = wc + (kd * j->k[1] + kh) * j->k[2];
                                for (int64_t kw = w0; kw < w1; kw++)
                                    acc += (int32_t)xr[iw0 + kw * j->d[2]] * (int32_t)wr[kw];
                            }
                        }
                    }
                    int32_t v = wrap32(acc);
                    if (j->y_type != QS_DTYPE_INT32)
                        v = requant(v, mult, j->y_zero, j->lo, j->hi);
                    store(j->y, j->y_type, o, v);
                }
            }
        }
    }
}

static size_t conv_scratch(const qs_view *in, const conv_slots *s) {
    return i16_pair_bytes(&in[s->x], &in[s->w]);
}

static qs_status conv_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx,
                          const conv_slots *s) {
    const qop_conv_params *p = n->params;
    const qs_view *x = &in[s->x], *wt = &in[s->w];
    qs_window w;
    conv_job j;
    /* infer validated the shapes; resolving again cannot fail */
    if (qs_window_resolve(n, &p->win, x->rank - 2, x->dims + 2, wt->dims + 2, &w, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    size_t nx = qs_view_numel(x), nw = qs_view_numel(wt);
    memset(&j, 0, sizeof(j));
    j.m = (size_t)wt->dims[0];
    j.c = (size_t)x->dims[1];
    j.c_per_group = (size_t)wt->dims[1];
    j.m_per_group = j.m / (size_t)p->group;
    int16_t *x16 = ctx->scratch;
    int16_t *w16 = (int16_t *)((char *)ctx->scratch + align64(nx * sizeof(int16_t)));
    int32_t xz = qs_op_has_input(n, in, s->xz) ? q8_at(in[s->xz].data, in[s->xz].dtype, 0) : 0;
    sub_zero_i16(x->data, x->dtype, nx, xz, x16);
    size_t per = j.m ? nw / j.m : 0, n_wz = qs_op_has_input(n, in, s->wz) ? qs_view_numel(&in[s->wz]) : 0;
    for (size_t oc = 0; oc < j.m; oc++) {
        int32_t wz = n_wz ? q8_at(in[s->wz].data, in[s->wz].dtype, n_wz == 1 ? 0 : oc) : 0;
        sub_zero_i16((const uint8_t *)wt->data + oc * per, wt->dtype, per, wz, w16 + oc * per);
    }
    j.x = x16;
    j.w = w16;
    j.y = out[0].data;
    j.y_type = out[0].dtype;
    if (s->qlinear) {
        j.x_scale = *(const float *)in[QC_X_SCALE].data;
        j.w_scale = in[QC_W_SCALE].data;
        j.n_w_scale = qs_view_numel(&in[QC_W_SCALE]);
        j.y_scale = *(const float *)in[QC_Y_SCALE].data;
        j.y_zero = qs_op_has_input(n, in, QC_Y_ZERO)
                       ? q8_at(in[QC_Y_ZERO].data, in[QC_Y_ZERO].dtype, 0)
                       : 0;
        j.bias = qs_op_has_input(n, in, QC_BIAS) ? in[QC_BIAS].data : NULL;
        q8_bounds(j.y_type, &j.lo, &j.hi);
    }
    int32_t skip = 3 - w.n_sp; /* leading unit dims */
    for (int32_t i = 0; i < 3; i++) {
        int32_t d = i - skip;
        j.in[i] = d >= 0 ? w.in[d] : 1;
        j.out[i] = d >= 0 ? w.out[d] : 1;
        j.k[i] = d >= 0 ? w.kernel[d] : 1;
        j.s[i] = d >= 0 ? w.stride[d] : 1;
        j.d[i] = d >= 0 ? w.dilation[d] : 1;
        j.pad[i] = d >= 0 ? w.pad_begin[d] : 0;
    }
    /* one task: an output plane, c_per_group * kernel taps per output */
    size_t cost = (size_t)(j.out[0] * j.out[1] * j.out[2]) * per;
    qs_op_parallel(ctx->pool, ctx->n_threads, (size_t)x->dims[0] * j.m, qs_op_grain(cost + 1),
                   conv_tasks, &j);
    return QS_OK;
}

static qs_status qlinear_conv_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    return conv_infer(n, in, out, &qlinear_conv_slots, err);
}

static qs_status conv_integer_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    return conv_infer(n, in, out, &conv_integer_slots, err);
}

static size_t qlinear_conv_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                   int32_t n_threads) {
    (void)n;
    (void)out;
    (void)n_threads;
    return conv_scratch(in, &qlinear_conv_slots);
}

static size_t conv_integer_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                   int32_t n_threads) {
    (void)n;
    (void)out;
    (void)n_threads;
    return conv_scratch(in, &conv_integer_slots);
}

static qs_status qlinear_conv_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    return conv_run(n, in, out, ctx, &qlinear_conv_slots);
}

static qs_status conv_integer_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    return conv_run(n, in, out, ctx, &conv_integer_slots);
}

/* ---- QLinearMatMul, MatMulInteger ---- */

/* Quantization parameters of a matmul, in QLinearMatMul's input order. MatMulInteger has only
 * the two zero points. */
enum { MP_AS, MP_AZ, MP_BS, MP_BZ, MP_YS, MP_YZ, MP_COUNT };

typedef struct {
    int32_t a, b;
    int32_t param[MP_COUNT];   /* input index, -1 when the op has no such input */
    bool qlinear;
} mm_slots;

static const mm_slots qlinear_matmul_slots = {0, 3, {1, 2, 4, 5, 6, 7}, true};
static const mm_slots matmul_integer_slots = {0, 1, {-1, 2, -1, 3, -1, -1}, false};

/* Output [batch..., M, N] (M or N dropped for a 1-D a or b, numpy style) and the element strides
 * of everything read, per output batch dim and along M and N (0 where broadcast). */
typedef struct {
    int32_t nb;
    int64_t batch[QS_MAX_RANK];
    size_t m, k, n;
    int64_t a_batch[QS_MAX_RANK], b_batch[QS_MAX_RANK];
    bool has[MP_COUNT];
    int64_t p_batch[MP_COUNT][QS_MAX_RANK], p_m[MP_COUNT], p_n[MP_COUNT];
    /* a and b as matrices (a 1-D a is [1, K], a 1-D b [K, 1]) and their zero points' strides
     * over them, for the int16 copies */
    int32_t ra, rb;
    int64_t ad[QS_MAX_RANK], bd[QS_MAX_RANK];
    int64_t az_own[QS_MAX_RANK], bz_own[QS_MAX_RANK];
} mm_geom;

/* Strides of p broadcast (numpy rules, right-aligned) to a tensor of `rank` dims: 0 where p has
 * size 1. false if p does not broadcast to dims without growing them. */
static bool param_strides(const qs_view *p, int32_t rank, const int64_t *dims, int64_t *st) {
    for (int32_t i = 0; i < p->rank - rank; i++)
        if (p->dims[i] != 1)
            return false;
    int64_t s = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
        int32_t j = i - rank + p->rank;
        int64_t d = j >= 0 ? p->dims[j] : 1;
        if (d != 1 && d != dims[i])
            return false;
        st[i] = d == 1 ? 0 : s;
        s *= d;
    }
    return true;
}

static const char *const mm_param_names[MP_COUNT] = {"a_scale", "a_zero_point", "b_scale",
                                                     "b_zero_point", "y_scale", "y_zero_point"};

/* Validate parameter k and record its strides. Side a: constant along K (per tensor or per row of
 * a); side b: constant along K (per tensor or per column of b); y: broadcast to the output. */
static qs_status mm_param(const qs_node *n, const qs_view *in, const mm_slots *s, int32_t k,
                          const qs_view *a, const qs_view *b, mm_geom *g, qs_error *err) {
    int32_t slot = s->param[k];
    const char *what = mm_param_names[k];
    bool scale = k == MP_AS || k == MP_BS || k == MP_YS;
    if (slot < 0 || !qs_op_has_input(n, in, slot)) {
        if (scale && slot >= 0)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s is missing", what);
        return QS_OK;
    }
    const qs_view *p = &in[slot];
    if (scale && p->dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%s must be float32", what);
    if (k == MP_AZ && p->dtype != a->dtype)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s must have the type of a", what);
    if (k == MP_BZ && p->dtype != b->dtype)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "%s must have the type of b", what);
    if (k == MP_YZ && !is_q8(p->dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%s must be uint8 or int8", what);
    g->has[k] = true;
    size_t count = qs_view_numel(p);
    if (count == 1)
        return QS_OK; /* per tensor: strides stay 0 */
    if (a->rank < 2 || b->rank < 2)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "%s: only per-tensor parameters with a "
                             "1-D input", what);
    int64_t st[QS_MAX_RANK + 1];
    bool ok;
    if (k == MP_AS || k == MP_AZ) {
        qs_view row = *p;
        if (row.rank == 1) { /* an M-element vector: per row */
            row.rank = 2;
            row.dims[1] = 1;
        }
        ok = row.rank <= QS_MAX_RANK && param_strides(&row, g->ra, g->ad, st) && st[g->ra - 1] == 0;
        if (ok) {
            int32_t off = g->nb - (g->ra - 2);
            for (int32_t i = 0; i < g->nb; i++)
                g->p_batch[k][i] = i >= off ? st[i - off] : 0;
            g->p_m[k] = st[g->ra - 2];
            if (k == MP_AZ)
                memcpy(g->az_own, st, (size_t)g->ra * sizeof(int64_t));
        }
    } else if (k == MP_BS || k == MP_BZ) {
        ok = param_strides(p, g->rb, g->bd, st) && st[g->rb - 2] == 0;
        if (ok) {
            int32_t off = g->nb - (g->rb - 2);
            for (int32_t i = 0; i < g->nb; i++)
                g->p_batch[k][i] = i >= off ? st[i - off] : 0;
            g->p_n[k] = st[g->rb - 1];
            if (k == MP_BZ)
                memcpy(g->bz_own, st, (size_t)g->rb * sizeof(int64_t));
        }
    } else {
        int64_t od[QS_MAX_RANK];
        memcpy(od, g->batch, (size_t)g->nb * sizeof(int64_t));
        od[g->nb] = (int64_t)g->m;
        od[g->nb + 1] = (int64_t)g->n;
        ok = param_strides(p, g->nb + 2, od, st);
        if (ok) {
            memcpy(g->p_batch[k], st, (size_t)g->nb * sizeof(int64_t));
            g->p_m[k] = st[g->nb];
            g->p_n[k] = st[g->nb + 1];
        }
    }
    if (!ok)
        return qs_node_error(err, QS_ERR_SHAPE, n, "%s: shape is not per tensor, per row of a or "
                             "per column of b", what);
    return QS_OK;
}

static qs_status mm_geometry(const qs_node *n, const qs_view *in, const mm_slots *s, mm_geom *g,
                             qs_error *err) {
    const qs_view *a = &in[s->a], *b = &in[s->b];
    qs_status st;
    memset(g, 0, sizeof(*g));
    if ((st = qs_op_need_plain(n, in, s->a, err)) != QS_OK ||
        (st = qs_op_need_plain(n, in, s->b, err)) != QS_OK)
        return st;
    if (!is_q8(a->dtype) || !is_q8(b->dtype))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "a and b must be uint8 or int8");
    if (a->rank < 1 || b->rank < 1)
        return qs_node_error(err, QS_ERR_SHAPE, n, "a and b must have rank 1 or more");
    g->ra = a->rank < 2 ? 2 : a->rank;
    g->rb = b->rank < 2 ? 2 : b->rank;
    if (a->rank == 1) {
        g->ad[0] = 1;
        g->ad[1] = a->dims[0];
    } else {
        memcpy(g->ad, a->dims, (size_t)a->rank * sizeof(int64_t));
    }
    if (b->rank == 1) {
        g->bd[0] = b->dims[0];
        g->bd[1] = 1;
    } else {
        memcpy(g->bd, b->dims, (size_t)b->rank * sizeof(int64_t));
    }
    if (g->ad[g->ra - 1] != g->bd[g->rb - 2])
        return qs_node_error(err, QS_ERR_SHAPE, n, "a has K=%lld, b has K=%lld",
                             (long long)g->ad[g->ra - 1], (long long)g->bd[g->rb - 2]);
    g->m = (size_t)g->ad[g->ra - 2];
    g->k = (size_t)g->ad[g->ra - 1];
    g->n = (size_t)g->bd[g->rb - 1];
    int32_t nba = g->ra - 2, nbb = g->rb - 2;
    g->nb = nba > nbb ? nba : nbb;
    int64_t sa = (int64_t)(g->m * g->k), sb = (int64_t)(g->k * g->n);
    for (int32_t i = g->nb - 1; i >= 0; i--) {
        int32_t ia = i - (g->nb - nba), ib = i - (g->nb - nbb);
        int64_t da = ia >= 0 ? g->ad[ia] : 1, db = ib >= 0 ? g->bd[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return qs_node_error(err, QS_ERR_SHAPE, n, "batch dims %lld and %lld do not broadcast",
                                 (long long)da, (long long)db);
        g->batch[i] = da == 1 ? db : da;
        g->a_batch[i] = da == 1 ? 0 : sa;
        g->b_batch[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
    }
    for (int32_t k = 0; k < MP_COUNT; k++)
        if ((st = mm_param(n, in, s, k, a, b, g, err)) != QS_OK)
            return st;
    return QS_OK;
}

static qs_status mm_infer(const qs_node *n, const qs_view *in, qs_view *out, const mm_slots *s,
                          qs_error *err) {
    mm_geom g;
    qs_status st = mm_geometry(n, in, s, &g, err);
    if (st != QS_OK)
        return st;
    int32_t r = g.nb;
    memcpy(out[0].dims, g.batch, (size_t)g.nb * sizeof(int64_t));
    if (in[s->a].rank > 1)
        out[0].dims[r++] = (int64_t)g.m;
    if (in[s->b].rank > 1)
        out[0].dims[r++] = (int64_t)g.n;
    out[0].rank = r;
    out[0].layout = QS_LAYOUT_PLAIN;
    if (!s->qlinear)
        out[0].dtype = QS_DTYPE_INT32;
    else /* without y_zero_point, as the reference: the type of a */
        out[0].dtype = g.has[MP_YZ] ? in[s->param[MP_YZ]].dtype : in[s->a].dtype;
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    const mm_geom *g;
    const int16_t *a, *b;       /* zero points subtracted */
    const void *p[MP_COUNT];    /* parameter data, NULL when absent */
    qs_dtype yz_type;
    void *y;
    qs_dtype y_type;
    int32_t lo, hi;
} mm_job;

#define MM_BLOCK 64

static void mm_rows(void *ctx, size_t begin, size_t end) {
    const mm_job *j = ctx;
    const mm_geom *g = j->g;
    int64_t acc[MM_BLOCK];
    for (size_t r = begin; r < end; r++) {
        size_t bi = r / g->m, m = r % g->m;
        int64_t a_off = 0, b_off = 0, p_off[MP_COUNT] = {0};
        for (int32_t i = g->nb - 1; i >= 0; i--) {
            int64_t idx = (int64_t)(bi % (size_t)g->batch[i]);
            bi /= (size_t)g->batch[i];
            a_off += idx * g->a_batch[i];
            b_off += idx * g->b_batch[i];
            for (int k = 0; k < MP_COUNT; k++)
                p_off[k] += idx * g->p_batch[k][i];
        }
        for (int k = 0; k < MP_COUNT; k++)
            p_off[k] += (int64_t)m * g->p_m[k];
        const int16_t *arow = j->a + a_off + (int64_t)(m * g->k);
        const int16_t *bm = j->b + b_off;
        for (size_t n0 = 0; n0 < g->n; n0 += MM_BLOCK) {
            size_t nn = g->n - n0 < MM_BLOCK ? g->n - n0 : MM_BLOCK;
            memset(acc, 0, nn * sizeof(acc[0]));
            for (size_t k = 0; k < g->k; k++) {
                int32_t av = arow[k];
                if (av == 0)
                    continue;
                const int16_t *brow = bm + k * g->n + n0;
                for (size_t c = 0; c < nn; c++)
                    acc[c] += av * (int32_t)brow[c];
            }
            for (size_t c = 0; c < nn; c++) {
                size_t col = n0 + c;
                int32_t v = wrap32(acc[c]);
                if (j->y_type != QS_DTYPE_INT32) {
                    int64_t o[MP_COUNT];
                    for (int k = 0; k < MP_COUNT; k++)
                        o[k] = p_off[k] + (int64_t)col * g->p_n[k];
                    float mult = ((const float *)j->p[MP_AS])[o[MP_AS]] *
                                 ((const float *)j->p[MP_BS])[o[MP_BS]] /
                                 ((const float *)j->p[MP_YS])[o[MP_YS]];
                    int32_t yz = j->p[MP_YZ] ? q8_at(j->p[MP_YZ], j->yz_type, (size_t)o[MP_YZ]) : 0;
                    v = requant(v, mult, yz, j->lo, j->hi);
                }
                store(j->y, j->y_type, r * g->n + col, v);
            }
        }
    }
}

/* dst = x - zero over x's rows ([batch..., rows] x `inner`), the zero point read with strides
 * zs over dims (rank dims; the last is the inner one). */
static void mm_sub_zero(const qs_view *x, const qs_view *zero, int32_t rank, const int64_t *dims,
                        const int64_t *zs, int16_t *dst) {
    size_t inner = (size_t)dims[rank - 1], rows = inner ? qs_view_numel(x) / inner : 0;
    if (!zero || qs_view_numel(zero) == 1) {
        sub_zero_i16(x->data, x->dtype, qs_view_numel(x), zero ? q8_at(zero->data, zero->dtype, 0) : 0,
                     dst);
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        size_t rem = r;
        int64_t off = 0;
        for (int32_t i = rank - 2; i >= 0; i--) {
            off += (int64_t)(rem % (size_t)dims[i]) * zs[i];
            rem /= (size_t)dims[i];
        }
        for (size_t c = 0; c < inner; c++) {
            int32_t z = q8_at(zero->data, zero->dtype, (size_t)(off + (int64_t)c * zs[rank - 1]));
            dst[r * inner + c] = (int16_t)(q8_at(x->data, x->dtype, r * inner + c) - z);
        }
    }
}

static qs_status mm_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx,
                        const mm_slots *s) {
    mm_geom g;
    if (mm_geometry(n, in, s, &g, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    const qs_view *a = &in[s->a], *b = &in[s->b];
    int16_t *a16 = ctx->scratch;
    int16_t *b16 = (int16_t *)((char *)ctx->scratch + align64(qs_view_numel(a) * sizeof(int16_t)));
    mm_job j;
    memset(&j, 0, sizeof(j));
    for (int k = 0; k < MP_COUNT; k++)
        j.p[k] = g.has[k] ? in[s->param[k]].data : NULL;
    mm_sub_zero(a, g.has[MP_AZ] ? &in[s->param[MP_AZ]] : NULL, g.ra, g.ad, g.az_own, a16);
    mm_sub_zero(b, g.has[MP_BZ] ? &in[s->param[MP_BZ]] : NULL, g.rb, g.bd, g.bz_own, b16);
    j.g = &g;
    j.a = a16;
    j.b = b16;
    j.y = out[0].data;
    j.y_type = out[0].dtype;
    if (g.has[MP_YZ])
        j.yz_type = in[s->param[MP_YZ]].dtype;
    if (s->qlinear)
        q8_bounds(j.y_type, &j.lo, &j.hi);
    size_t rows = qs_dims_prod(g.batch, 0, g.nb) * g.m;
    qs_op_parallel(ctx->pool, ctx->n_threads, rows, qs_op_grain(g.k * g.n + 1), mm_rows, &j);
    return QS_OK;
}

static qs_status qlinear_matmul_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                      qs_error *err) {
    return mm_infer(n, in, out, &qlinear_matmul_slots, err);
}

static qs_status matmul_integer_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                      qs_error *err) {
    return mm_infer(n, in, out, &matmul_integer_slots, err);
}

static size_t qlinear_matmul_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                     int32_t n_threads) {
    (void)n;
    (void)out;
    (void)n_threads;
    return i16_pair_bytes(&in[qlinear_matmul_slots.a], &in[qlinear_matmul_slots.b]);
}

static size_t matmul_integer_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                                     int32_t n_threads) {
    (void)n;
    (void)out;
    (void)n_threads;
    return i16_pair_bytes(&in[matmul_integer_slots.a], &in[matmul_integer_slots.b]);
}

static qs_status qlinear_matmul_run(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_exec_ctx *ctx) {
    return mm_run(n, in, out, ctx, &qlinear_matmul_slots);
}

static qs_status matmul_integer_run(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_exec_ctx *ctx) {
    return mm_run(n, in, out, ctx, &matmul_integer_slots);
}

const qs_op qs_op_qlinear_conv = {
    .type = "QLinearConv", .domain = "", .min_inputs = 8, .max_inputs = 9,
    .min_outputs = 1, .max_outputs = 1, .init = conv_init, .infer = qlinear_conv_infer,
    .scratch_bytes = qlinear_conv_scratch, .run = qlinear_conv_run,
};

const qs_op qs_op_conv_integer = {
    .type = "ConvInteger", .domain = "", .min_inputs = 2, .max_inputs = 4,
    .min_outputs = 1, .max_outputs = 1, .init = conv_init, .infer = conv_integer_infer,
    .scratch_bytes = conv_integer_scratch, .run = conv_integer_run,
};

const qs_op qs_op_qlinear_matmul = {
    .type = "QLinearMatMul", .domain = "", .min_inputs = 8, .max_inputs = 8,
    .min_outputs = 1, .max_outputs = 1, .infer = qlinear_matmul_infer,
    .scratch_bytes = qlinear_matmul_scratch, .run = qlinear_matmul_run,
};

const qs_op qs_op_matmul_integer = {
    .type = "MatMulInteger", .domain = "", .min_inputs = 2, .max_inputs = 4,
    .min_outputs = 1, .max_outputs = 1, .infer = matmul_integer_infer,
    .scratch_bytes = matmul_integer_scratch, .run = matmul_integer_run,
};
