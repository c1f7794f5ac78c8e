/* QGemm: int8 matrix multiply built by the QDQ lowering from Gemm/MatMul with constant weights:
 * uint8 A [..., K] x int8 B (stored N x K) + int32 bias, uint8 (requantized, clamped) or float
 * output. Weights packed and requantization computed once, in prepare. */
#include <stdlib.h>
#include <string.h>

#include "kernels/q8.h"
#include "ops/op_util.h"
#include "quant/quant.h"

enum { GA = 0, GA_SCALE, GA_ZERO, GB, GB_SCALE, GB_ZERO, GY_SCALE, GY_ZERO, GBIAS };

typedef struct {
    int32_t qmin, qmax;
    bool prepared;
    qs_q8_packed_b b;
    qs_qlinear_output out;
} qgemm_params;

static void qgemm_free(void *p) {
    qgemm_params *q = p;
    if (!q)
        return;
    if (q->prepared)
        qs_q8_packed_b_free(&q->b);
    qs_qlinear_output_free(&q->out);
    free(q);
}

static qs_status qgemm_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    qgemm_params *p = calloc(1, sizeof(*p));
    if (!p)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    n->params = p;
    return qs_quant_attr_clamp(n, &p->qmin, &p->qmax, err);
}

static bool float_out(const qs_node *n) { return n->n_inputs <= GY_SCALE || n->inputs[GY_SCALE] < 0; }

static qs_status qgemm_infer(const qs_node *n, const qs_view *in, qs_view *out, qs_error *err) {
    const qs_view *a = &in[GA], *b = &in[GB];
    if (a->dtype != QS_DTYPE_UINT8 || a->rank < 1 || b->dtype != QS_DTYPE_INT8 || b->rank != 2)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "needs uint8 A and int8 2-D B");
    if (a->dims[a->rank - 1] != b->dims[1])
        return qs_node_error(err, QS_ERR_SHAPE, n, "A has K=%lld, B has K=%lld",
                             (long long)a->dims[a->rank - 1], (long long)b->dims[1]);
    qs_view_copy_shape(&out[0], a);
    out[0].dims[a->rank - 1] = b->dims[0];
    out[0].layout = QS_LAYOUT_PLAIN;
    out[0].dtype = float_out(n) ? QS_DTYPE_FLOAT32 : QS_DTYPE_UINT8;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qgemm_prepare(const qs_graph *g, qs_node *n, qs_error *err) {
    qgemm_params *p = n->params;
    const qs_value *b = qs_node_input(g, n, GB);
    if (!b || b->kind != QS_VALUE_CONSTANT)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "weights must be constant");
    size_t nn = (size_t)b->dims[0], k = (size_t)b->dims[1];
    qs_status st = qs_qlinear_output_prepare(g, n, nn, p->qmin, p->qmax, &p->out, err);
    if (st != QS_OK)
        return st;
    /* A proven 7-bit (a reduce_range recipe), weights without offsets: the kernels may use it. */
    const bool u7 = !p->out.w_offset && qs_quant_u8_bound(g, n->inputs[GA]) <= 127;
    st = u7 ? qs_q8_pack_b_u7(qs_engine_isa(), b->data, k, nn, &p->b)
            : qs_q8_pack_b_offset(qs_engine_isa(), b->data, k, nn, p->out.w_offset, &p->b);
    if (st != QS_OK)
        return qs_node_error(err, st, n, "cannot pack weights");
    p->prepared = true;
    return QS_OK;
}

static qs_status qgemm_run(const qs_node *n, const qs_view *in, qs_view *out, qs_exec_ctx *ctx) {
    const qgemm_params *p = n->params;
    if (!p->prepared)
        return QS_ERR_INTERNAL;
    size_t k = (size_t)in[GB].dims[1], nn = (size_t)in[GB].dims[0];
    size_t m = k ? qs_view_numel(&in[GA]) / k : 0;
    if (out[0].dtype == QS_DTYPE_FLOAT32)
        qs_q8_gemm_f32(ctx->pool, m, in[GA].data, k, p->out.x_zero, &p->b, &p->out.rq, NULL, out[0].data, nn);
    else
        qs_q8_gemm_u8(ctx->pool, m, in[GA].data, k, p->out.x_zero, &p->b, &p->out.rq, out[0].data, nn);
    return QS_OK;
}

static uint64_t qgemm_packed(const qs_node *n) {
    const qgemm_params *p = n->params;
    return p && p->prepared ? p->b.bytes : 0;
}

const qs_op qs_op_qgemm = {
    .type = "QGemm", .domain = QS_QDOMAIN, .min_inputs = 5, .max_inputs = 9,
    .min_outputs = 1, .max_outputs = 1, .flags = QS_OP_RUN_SKIPS_CONSTANTS, .init = qgemm_init, .infer = qgemm_infer,
    .prepare = qgemm_prepare, .run = qgemm_run, .free_params = qgemm_free,
    .packed_bytes = qgemm_packed,
};
