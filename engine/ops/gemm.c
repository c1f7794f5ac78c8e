/* Gemm and MatMul: packed-B kernel GEMM when B is a constant matrix, reference loops otherwise. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "ops/op_util.h"

typedef struct {
    bool is_matmul;
    bool trans_a, trans_b;
    float alpha, beta;
    bool packed_ok;          /* prepare packed B */
    qs_f32_packed_b packed;
    float *bias;             /* Gemm: beta * C when C is a constant row (N floats), else NULL */
} qs_gemm_params;

static void qs_gemm_free(void *params) {
    qs_gemm_params *p = params;
    if (p == NULL)
        return;
    if (p->packed_ok)
        qs_f32_packed_b_free(&p->packed);
    free(p->bias);
    free(p);
}

static qs_status qs_gemm_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_gemm_params *p = calloc(1, sizeof(*p));
    int64_t ta = 0, tb = 0;
    qs_status st = QS_OK;
    (void)g;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    p->is_matmul = strcmp(n->op_type, "MatMul") == 0;
    p->alpha = p->beta = 1.0f;
    if (!p->is_matmul) {
        if ((st = qs_attr_get_int(n, "transA", 0, &ta, err)) != QS_OK ||
            (st = qs_attr_get_int(n, "transB", 0, &tb, err)) != QS_OK ||
            (st = qs_attr_get_float(n, "alpha", 1.0f, &p->alpha, err)) != QS_OK ||
            (st = qs_attr_get_float(n, "beta", 1.0f, &p->beta, err)) != QS_OK)
            goto fail;
    }
    p->trans_a = ta != 0;
    p->trans_b = tb != 0;
    n->params = p;
    return QS_OK;
fail:
    free(p);
    return st;
}

/* ---- shapes ---- */

/* Gemm: A (M x K or K x M), B (K x N or N x K), C broadcastable to M x N. */
static qs_status qs_gemm_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    const qs_gemm_params *p = n->params;
    if (in[0].dtype != QS_DTYPE_FLOAT32 || in[1].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "only float32 is supported");
    if (in[0].rank != 2 || in[1].rank != 2)
        return qs_node_error(err, QS_ERR_SHAPE, n, "A and B must be matrices");
    int64_t m = p->trans_a ? in[0].dims[1] : in[0].dims[0];
    int64_t k = p->trans_a ? in[0].dims[0] : in[0].dims[1];
    int64_t kb = p->trans_b ? in[1].dims[1] : in[1].dims[0];
    int64_t nn = p->trans_b ? in[1].dims[0] : in[1].dims[1];
    if (k != kb)
        return qs_node_error(err, QS_ERR_SHAPE, n, "inner dims differ: %lld and %lld",
                             (long long)k, (long long)kb);
    if (qs_op_has_input(n, in, 2)) {
        const qs_view *c = &in[2];
        bool ok = c->dtype == QS_DTYPE_FLOAT32 && c->rank <= 2;
        int64_t want[2] = {m, nn};
        for (int32_t i = 0; ok && i < c->rank; i++) {
            int64_t d = c->dims[i], w = want[2 - c->rank + i];
            ok = d == 1 || d == w;
        }
        if (!ok)
            return qs_node_error(err, QS_ERR_SHAPE, n, "C does not broadcast to %lldx%lld",
                                 (long long)m, (long long)nn);
    }
    out[0].dtype = QS_DTYPE_FLOAT32;
    out[0].rank = 2;
    out[0].dims[0] = m;
    out[0].dims[1] = nn;
    out[0].layout = QS_LAYOUT_PLAIN;
    return qs_op_check_output(n, &out[0], err);
}

/* MatMul: numpy semantics (1-D operands promoted, batch dims broadcast). */
static qs_status qs_matmul_shape(const qs_view *a, const qs_view *b, qs_view *abatch,
                                 qs_view *bbatch, qs_view *o, int64_t *mkn) {
    if (a->rank < 1 || b->rank < 1)
        return QS_ERR_SHAPE;
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1, k = a->dims[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t nn = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (k != kb)
        return QS_ERR_SHAPE;
    memset(abatch, 0, sizeof(*abatch));
    memset(bbatch, 0, sizeof(*bbatch));
    abatch->rank = a->rank > 2 ? a->rank - 2 : 0;
    bbatch->rank = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(abatch->dims, a->dims, sizeof(int64_t) * (size_t)abatch->rank);
    memcpy(bbatch->dims, b->dims, sizeof(int64_t) * (size_t)bbatch->rank);
    int32_t r;
    int64_t dims[QS_MAX_RANK];
    if (!qs_broadcast_shape(abatch, bbatch, &r, dims))
        return QS_ERR_SHAPE;
    memset(o, 0, sizeof(*o));
    o->rank = r;
    memcpy(o->dims, dims, sizeof(int64_t) * (size_t)r);
    mkn[0] = m;
    mkn[1] = k;
    mkn[2] = nn;
    return QS_OK;
}

static qs_status qs_matmul_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_error *err) {
    qs_view ab, bb, ob;
    int64_t mkn[3];
    if (in[0].dtype != QS_DTYPE_FLOAT32 || in[1].dtype != QS_DTYPE_FLOAT32)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "only float32 is supported");
    if (in[0].layout != QS_LAYOUT_PLAIN || in[1].layout != QS_LAYOUT_PLAIN)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "NHWC layout is not handled");
    if (qs_matmul_shape(&in[0], &in[1], &ab, &bb, &ob, mkn) != QS_OK)
        return qs_node_error(err, QS_ERR_SHAPE, n, "operands do not multiply");
    out[0] = ob;
    out[0].dtype = QS_DTYPE_FLOAT32;
    out[0].layout = QS_LAYOUT_PLAIN;
    if (in[0].rank >= 2)
        out[0].dims[out[0].rank++] = mkn[0];
    if (in[1].rank >= 2)
        out[0].dims[out[0].rank++] = mkn[2];
    if (out[0].rank > QS_MAX_RANK)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "rank too large");
    return qs_op_check_output(n, &out[0], err);
}

/* ---- packing ---- */

static qs_status qs_gemm_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_gemm_params *p = n->params;
    const qs_value *b = qs_node_input(g, n, 1);
    float *scaled = NULL;
    qs_status st = QS_OK;
    if (p->packed_ok || b == NULL || b->kind != QS_VALUE_CONSTANT || b->data == NULL ||
        b->dtype != QS_DTYPE_FLOAT32 || b->rank != 2 || b->dims[0] < 1 || b->dims[1] < 1)
        return QS_OK;
    size_t rows = (size_t)b->dims[0], cols = (size_t)b->dims[1], numel;
    if (!qs_mul_size(rows, cols, &numel))
        return QS_OK;
    const float *src = b->data;
    if (p->alpha != 1.0f) {
        /* alpha folds into the packed weights */
        scaled = malloc(numel * sizeof(float));
        if (scaled == NULL)
            return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
        for (size_t i = 0; i < numel; i++)
            scaled[i] = src[i] * p->alpha;
        src = scaled;
    }
    size_t k = p->trans_b ? cols : rows, nn = p->trans_b ? rows : cols;
    st = qs_f32_pack_b(qs_engine_isa(), src, k, nn, cols, p->trans_b, &p->packed);
    if (st != QS_OK) {
        st = qs_node_error(err, st, n, "cannot pack B");
        goto cleanup;
    }
    p->packed_ok = true;
    const qs_value *c = qs_node_input(g, n, 2);
    if (!p->is_matmul && c && c->kind == QS_VALUE_CONSTANT && c->data &&
        c->dtype == QS_DTYPE_FLOAT32 && c->rank >= 1 && c->dims[c->rank - 1] == (int64_t)nn &&
        (c->rank == 1 || c->dims[0] == 1)) {
        p->bias = malloc(nn * sizeof(float));
        if (p->bias == NULL) {
            st = qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
            goto cleanup;
        }
        for (size_t i = 0; i < nn; i++)
            p->bias[i] = p->beta * ((const float *)c->data)[i];
    }
cleanup:
    free(scaled);
    return st;
}

static uint64_t qs_gemm_packed_bytes(const qs_node *n) {
    const qs_gemm_params *p = n->params;
    return p && p->packed_ok ? (uint64_t)p->packed.bytes : 0;
}

/* ---- Gemm run ---- */

static size_t qs_gemm_scratch(const qs_node *n, const qs_view *in, const qs_view *out,
                              int32_t n_threads) {
    const qs_gemm_params *p = n->params;
    (void)out;
    (void)n_threads;
    return p->trans_a && p->packed_ok ? qs_view_numel(&in[0]) * sizeof(float) : 0;
}

typedef struct {
    const float *a, *b;
    float *y;
    size_t m, k, n;
    bool ta, tb;
    float alpha;
} qs_gemm_job;

/* Reference rows: y[i, :] = alpha * A[i, :] B. */
static void qs_gemm_rows(void *ctx, size_t begin, size_t end) {
    const qs_gemm_job *j = ctx;
    for (size_t i = begin; i < end; i++) {
        float *y = j->y + i * j->n;
        if (j->tb) {
            for (size_t c = 0; c < j->n; c++) {
                float acc = 0.0f;
                for (size_t t = 0; t < j->k; t++)
                    acc += (j->ta ? j->a[t * j->m + i] : j->a[i * j->k + t]) * j->b[c * j->k + t];
                y[c] = j->alpha * acc;
            }
            continue;
        }
        for (size_t c = 0; c < j->n; c++)
            y[c] = 0.0f;
        for (size_t t = 0; t < j->k; t++) {
            float av = j->alpha * (j->ta ? j->a[t * j->m + i] : j->a[i * j->k + t]);
            const float *br = j->b + t * j->n;
            for (size_t c = 0; c < j->n; c++)
                y[c] += av * br[c];
        }
    }
}

static qs_status qs_gemm_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    const qs_gemm_params *p = n->params;
    size_t m = (size_t)out[0].dims[0], nn = (size_t)out[0].dims[1];
    size_t k = (size_t)(p->trans_a ? in[0].dims[0] : in[0].dims[1]);
    float *y = out[0].data;
    bool c_done = false;
    if (p->packed_ok && k > 0) {
        const float *a = in[0].data;
        if (p->trans_a) {
            float *t = ctx->scratch;
            for (size_t r = 0; r < k; r++)
                for (size_t c = 0; c < m; c++)
                    t[c * k + r] = a[r * m + c];
            a = t;
        }
        qs_f32_gemm(ctx->pool, m, a, k, &p->packed, p->bias, NULL, 0, y, nn, NULL);
        c_done = p->bias != NULL;
    } else {
        qs_gemm_job j = {in[0].data, in[1].data, y, m, k, nn, p->trans_a, p->trans_b, p->alpha};
        size_t grain = qs_op_grain(k * nn);
        qs_op_parallel(ctx->pool, ctx->n_threads, m, grain, qs_gemm_rows, &j);
    }
    if (!c_done && qs_op_has_input(n, in, 2) && p->beta != 0.0f) {
        const qs_view *c = &in[2];
        const float *cv = c->data;
        /* C is [], [N], [1|M, 1|N]: element (i, j) sits at i * si + j * sj */
        size_t si = 0, sj = 0;
        if (c->rank >= 1 && c->dims[c->rank - 1] != 1)
            sj = 1;
        if (c->rank == 2 && c->dims[0] != 1)
            si = (size_t)c->dims[1];
        for (size_t i = 0; i < m; i++)
            for (size_t jj = 0; jj < nn; jj++)
                y[i * nn + jj] += p->beta * cv[i * si + jj * sj];
    }
    return QS_OK;
}

/* ---- MatMul run ---- */

typedef struct {
    const float *a, *b;
    float *y;
    size_t m, k, n;
    qs_bcast bc;       /* batch broadcasting of A and B */
    size_t batch_inner;
} qs_matmul_job;

static void qs_matmul_rows(void *ctx, size_t begin, size_t end) {
    const qs_matmul_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        size_t batch = r / j->m, i = r % j->m;
        size_t off[QS_BCAST_MAX_IN];
        qs_bcast_row_offsets(&j->bc, batch / j->batch_inner, off);
        size_t e = batch % j->batch_inner;
        size_t ai = off[0] + e * (j->bc.strides[0][j->bc.rank - 1] != 0);
        size_t bi = off[1] + e * (j->bc.strides[1][j->bc.rank - 1] != 0);
        const float *a = j->a + (ai * j->m + i) * j->k;
        const float *b = j->b + bi * j->k * j->n;
        float *y = j->y + r * j->n;
        for (size_t c = 0; c < j->n; c++)
            y[c] = 0.0f;
        for (size_t t = 0; t < j->k; t++) {
            float av = a[t];
            const float *br = b + t * j->n;
            for (size_t c = 0; c < j->n; c++)
                y[c] += av * br[c];
        }
    }
}

static qs_status qs_matmul_run(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_exec_ctx *ctx) {
    const qs_gemm_params *p = n->params;
    qs_view ab, bb, ob;
    int64_t mkn[3];
    if (qs_matmul_shape(&in[0], &in[1], &ab, &bb, &ob, mkn) != QS_OK)
        return QS_ERR_INTERNAL;
    size_t m = (size_t)mkn[0], k = (size_t)mkn[1], nn = (size_t)mkn[2];
    size_t batches = qs_view_numel(&ob);
    if (p->packed_ok && in[1].rank == 2 && k > 0) {
        /* A's batch dims and rows are one contiguous run of rows */
        qs_f32_gemm(ctx->pool, batches * m, in[0].data, k, &p->packed, NULL, NULL, 0,
                    out[0].data, nn, NULL);
        return QS_OK;
    }
    qs_matmul_job j;
    const qs_view *ins[2] = {&ab, &bb};
    memset(&j, 0, sizeof(j));
    j.a = in[0].data;
    j.b = in[1].data;
    j.y = out[0].data;
    j.m = m;
    j.k = k;
    j.n = nn;
    qs_bcast_init(&j.bc, 2, ins, &ob);
    j.batch_inner = qs_bcast_inner(&j.bc);
    if (batches * m == 0 || nn == 0)
        return QS_OK;
    size_t grain = qs_op_grain(k * nn);
    qs_op_parallel(ctx->pool, ctx->n_threads, batches * m, grain, qs_matmul_rows, &j);
    return QS_OK;
}

const qs_op qs_op_gemm = {
    .type = "Gemm",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_gemm_init,
    .infer = qs_gemm_infer,
    .scratch_bytes = qs_gemm_scratch,
    .prepare = qs_gemm_prepare,
    .run = qs_gemm_run,
    .free_params = qs_gemm_free,
    .packed_bytes = qs_gemm_packed_bytes,
};

const qs_op qs_op_matmul = {
    .type = "MatMul",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_gemm_init,
    .infer = qs_matmul_infer,
    .prepare = qs_gemm_prepare,
    .run = qs_matmul_run,
    .free_params = qs_gemm_free,
    .packed_bytes = qs_gemm_packed_bytes,
};
