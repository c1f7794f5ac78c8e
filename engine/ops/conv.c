/* Conv (NCHW reference): 1-D to 3-D, groups, strides, dilations, explicit or automatic pads. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    qs_window_attrs win;
    int64_t group;
} qs_conv_params;

static qs_status qs_conv_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_conv_params *p = calloc(1, sizeof(*p));
    qs_status st;
    (void)g;
    if (p == NULL)
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

static qs_status qs_conv_geometry(const qs_node *n, const qs_view *in, qs_window *w,
                                  qs_error *err) {
    const qs_conv_params *p = n->params;
    const qs_view *x = &in[0], *wt = &in[1];
    qs_status st;
    if ((st = qs_op_need_plain(n, in, 0, err)) != QS_OK)
        return st;
    if (x->dtype != QS_DTYPE_FLOAT32 || wt->dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "only float32 is supported");
    if (x->rank < 3 || x->rank > 2 + QS_WINDOW_MAX_DIMS)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "X of rank %d is not supported",
                             (int)x->rank);
    if (wt->rank != x->rank)
        return qs_node_error(err, QS_ERR_SHAPE, n, "W must have the rank of X");
    if (wt->dims[0] < 1 || wt->dims[0] % p->group != 0 || x->dims[1] != wt->dims[1] * p->group)
        return qs_node_error(err, QS_ERR_SHAPE, n,
                             "channels do not match: X has %lld, W %lldx%lld, group %lld",
                             (long long)x->dims[1], (long long)wt->dims[0],
                             (long long)wt->dims[1], (long long)p->group);
    if (qs_op_has_input(n, in, 2) &&
        (in[2].dtype != QS_DTYPE_FLOAT32 || in[2].rank != 1 || in[2].dims[0] != wt->dims[0]))
        return qs_node_error(err, QS_ERR_SHAPE, n, "B must be %lld floats",
                             (long long)wt->dims[0]);
    return qs_window_resolve(n, &p->win, x->rank - 2, x->dims + 2, wt->dims + 2, w, err);
}

static qs_status qs_conv_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    qs_window w;
    qs_status st = qs_conv_geometry(n, in, &w, err);
    if (st != QS_OK)
        return st;
    out[0].dtype = QS_DTYPE_FLOAT32;
    out[0].rank = in[0].rank;
    out[0].layout = QS_LAYOUT_PLAIN;
    out[0].dims[0] = in[0].dims[0];
    out[0].dims[1] = in[1].dims[0];
    for (int32_t i = 0; i < w.n_sp; i++)
        out[0].dims[2 + i] = w.out[i];
    return qs_op_check_output(n, &out[0], err);
}

/* Geometry padded to three spatial dims (d, h, w) so one loop nest serves 1-D to 3-D. */
typedef struct {
    const float *x, *w, *b;
    float *y;
    size_t m, c_per_group, m_per_group, c;
    int64_t in[3], out[3], k[3], s[3], d[3], pad[3];
} qs_conv_job;

static void qs_conv_tasks(void *ctx, size_t begin, size_t end) {
    const qs_conv_job *j = ctx;
    const size_t in_plane = (size_t)(j->in[0] * j->in[1] * j->in[2]);
    const size_t out_plane = (size_t)(j->out[0] * j->out[1] * j->out[2]);
    const size_t k_size = (size_t)(j->k[0] * j->k[1] * j->k[2]);
    for (size_t task = begin; task < end; task++) {
        size_t batch = task / j->m, oc = task % j->m;
        size_t grp = oc / j->m_per_group;
        float *y = j->y + task * out_plane;
        float bias = j->b ? j->b[oc] : 0.0f;
        for (size_t i = 0; i < out_plane; i++)
            y[i] = bias;
        for (size_t ci = 0; ci < j->c_per_group; ci++) {
            const float *x = j->x + (batch * j->c + grp * j->c_per_group + ci) * in_plane;
            const float *wk = j->w + (oc * j->c_per_group + ci) * k_size;
            for (int64_t kd = 0; kd < j->k[0]; kd++)
                for (int64_t kh = 0; kh < j->k[1]; kh++)
                    for (int64_t kw = 0; kw < j->k[2]; kw++) {
                        float wv = wk[(kd * j->k[1] + kh) * j->k[2] + kw];
                        int64_t off_w = kw * j->d[2] - j->pad[2];
                        /* output columns whose input column is inside [0, in_w) */
                        int64_t lo = off_w >= 0 ? 0 : (-off_w + j->s[2] - 1) / j->s[2];
                        int64_t last = j->in[2] - 1 - off_w;
                        int64_t hi = last < 0 ? 0 : last / j->s[2] + 1;
                        if (hi > j->out[2])
                            hi = j->out[2];
                        if (lo >= hi)
                            continue;
                        for (int64_t od = 0; od < j->out[0]; od++) {
                            int64_t id = od * j->s[0] + kd * j->d[0] - j->pad[0];
                            if (id < 0 || id >= j->in[0])
                                continue;
                            for (int64_t oh = 0; oh < j->out[1]; oh++) {
                                int64_t ih = oh * j->s[1] + kh * j->d[1] - j->pad[1];
                                if (ih < 0 || ih >= j->in[1])
                                    continue;
                                const float *xr = x + (id * j->in[1] + ih) * j->in[2];
                                float *yr = y + (od * j->out[1] + oh) * j->out[2];
                                int64_t sw = j->s[2];
                                if (sw == 1) {
                                    for (int64_t ow = lo; ow < hi; ow++)
                                        yr[ow] += wv * xr[ow + off_w];
                                } else {
                                    for (int64_t ow = lo; ow < hi; ow++)
                                        yr[ow] += wv * xr[ow * sw + off_w];
                                }
                            }
                        }
                    }
        }
    }
}

static qs_status qs_conv_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    const qs_conv_params *p = n->params;
    qs_window w;
    qs_conv_job j;
    /* infer validated the shapes; resolving again cannot fail */
    if (qs_window_resolve(n, &p->win, in[0].rank - 2, in[0].dims + 2, in[1].dims + 2, &w, NULL) !=
        QS_OK)
        return QS_ERR_INTERNAL;
    memset(&j, 0, sizeof(j));
    j.x = in[0].data;
    j.w = in[1].data;
    j.b = qs_op_has_input(n, in, 2) ? in[2].data : NULL;
    j.y = out[0].data;
    j.m = (size_t)in[1].dims[0];
    j.c = (size_t)in[0].dims[1];
    j.c_per_group = (size_t)in[1].dims[1];
    j.m_per_group = j.m / (size_t)p->group;
    int32_t skip = 3 - w.n_sp; /* leading unit dims */
    for (int32_t i = 0; i < 3; i++) {
        int32_t s = i - skip;
        j.in[i] = s >= 0 ? w.in[s] : 1;
        j.out[i] = s >= 0 ? w.out[s] : 1;
        j.k[i] = s >= 0 ? w.kernel[s] : 1;
        j.s[i] = s >= 0 ? w.stride[s] : 1;
        j.d[i] = s >= 0 ? w.dilation[s] : 1;
        j.pad[i] = s >= 0 ? w.pad_begin[s] : 0;
    }
    qs_op_parallel(ctx->pool, ctx->n_threads, (size_t)in[0].dims[0] * j.m, 1, qs_conv_tasks, &j);
    return QS_OK;
}

const qs_op qs_op_conv = {
    .type = "Conv",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_conv_init,
    .infer = qs_conv_infer,
    .run = qs_conv_run,
};
