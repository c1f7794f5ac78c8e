/* Elementwise unary operators: activations (Relu, Sigmoid, HardSwish, ...) and math (Exp, Sqrt, ...). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rewrite.h"
#include "kernels/kernels.h"
#include "ops/op_util.h"

typedef struct qs_unary_params qs_unary_params;
typedef void (*qs_unary_f32_fn)(const float *x, float *y, size_t n, const qs_unary_params *p);

struct qs_unary_params {
    float alpha, beta, gamma;
    qs_unary_f32_fn f32; /* the float loop, looked up once at init; NULL for activations */
    qs_act act;          /* activations: run by the kernels' vector loop, else QS_ACT_NONE */
};

/* Float loops: one per operator so each inner loop is a plain, vectorizable map. */
#define QS_UNARY_F32(NAME, EXPR)                                                                 \
    static void NAME(const float *x, float *y, size_t n, const qs_unary_params *p) {            \
        const float alpha = p->alpha, beta = p->beta, gamma = p->gamma;                          \
        (void)alpha, (void)beta, (void)gamma;                                                    \
        for (size_t i = 0; i < n; i++) {                                                         \
            const float v = x[i];                                                                \
            y[i] = (EXPR);                                                                       \
        }                                                                                        \
    }

static float qs_softplus(float v) { return v > 20.0f ? v : log1pf(expf(v)); }
static float qs_sign(float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v); }

QS_UNARY_F32(qs_tanh_f32, tanhf(v))
QS_UNARY_F32(qs_exp_f32, expf(v))
QS_UNARY_F32(qs_log_f32, logf(v))
QS_UNARY_F32(qs_sqrt_f32, sqrtf(v))
QS_UNARY_F32(qs_neg_f32, -v)
QS_UNARY_F32(qs_abs_f32, fabsf(v))
QS_UNARY_F32(qs_erf_f32, erff(v))
QS_UNARY_F32(qs_reciprocal_f32, 1.0f / v)
QS_UNARY_F32(qs_floor_f32, floorf(v))
QS_UNARY_F32(qs_ceil_f32, ceilf(v))
QS_UNARY_F32(qs_round_f32, nearbyintf(v)) /* half to even in the default rounding mode */
QS_UNARY_F32(qs_sign_f32, qs_sign(v))
QS_UNARY_F32(qs_softplus_f32, qs_softplus(v))
QS_UNARY_F32(qs_softsign_f32, v / (1.0f + fabsf(v)))
QS_UNARY_F32(qs_elu_f32, v < 0.0f ? alpha * expm1f(v) : v)
QS_UNARY_F32(qs_selu_f32, v <= 0.0f ? gamma * alpha * expm1f(v) : gamma * v)
QS_UNARY_F32(qs_celu_f32, fmaxf(0.0f, v) + fminf(0.0f, alpha * expm1f(v / alpha)))
QS_UNARY_F32(qs_thresholded_relu_f32, v > alpha ? v : 0.0f)
QS_UNARY_F32(qs_sin_f32, sinf(v))
QS_UNARY_F32(qs_cos_f32, cosf(v))

/* Integer variants (Relu, Abs, Neg, Sign); negation wraps through uint64_t. */
typedef void (*qs_unary_any_fn)(const void *x, void *y, size_t n);
#define QS_UNARY_INT(NAME, T, EXPR)                                                              \
    static void NAME(const void *vx, void *vy, size_t n) {                                       \
        const T *x = vx;                                                                         \
        T *y = vy;                                                                               \
        for (size_t i = 0; i < n; i++) {                                                         \
            const T v = x[i];                                                                    \
            y[i] = (T)(EXPR);                                                                    \
        }                                                                                        \
    }
#define QS_UNARY_SINT(E, T, S)                                                                   \
    QS_UNARY_INT(qs_relu_##S, T, v < 0 ? 0 : v)                                                  \
    QS_UNARY_INT(qs_abs_##S, T, v < 0 ? 0 - (uint64_t)v : (uint64_t)v)                           \
    QS_UNARY_INT(qs_neg_##S, T, 0 - (uint64_t)v)                                                 \
    QS_UNARY_INT(qs_sign_##S, T, (v > 0) - (v < 0))
#define QS_UNARY_UINT(E, T, S)                                                                   \
    QS_UNARY_INT(qs_abs_##S, T, v)                                                               \
    QS_UNARY_INT(qs_sign_##S, T, v > 0)
QS_FOREACH_SINT_DTYPE(QS_UNARY_SINT)
QS_FOREACH_UINT_DTYPE(QS_UNARY_UINT)

typedef enum { QS_INT_NONE = 0, QS_INT_SIGNED = 1, QS_INT_ALL = 2 } qs_unary_ints;

/* f32 NULL marks an activation: qs_node_activation reads its kind and attributes (defaults
 * included), the ones the graph rewrites fuse into a Conv or Gemm. */
typedef struct {
    const char *type;
    qs_unary_f32_fn f32;
    qs_unary_ints ints;      /* which integer types it accepts */
    float alpha, beta, gamma; /* attribute defaults of the float loops */
} qs_unary_desc;

static const qs_unary_desc qs_unary_table[] = {
    {"Relu", NULL, QS_INT_SIGNED, 0, 0, 0},
    {"LeakyRelu", NULL, QS_INT_NONE, 0, 0, 0},
    {"Sigmoid", NULL, QS_INT_NONE, 0, 0, 0},
    {"HardSigmoid", NULL, QS_INT_NONE, 0, 0, 0},
    {"HardSwish", NULL, QS_INT_NONE, 0, 0, 0},
    {"Tanh", qs_tanh_f32, QS_INT_NONE, 0, 0, 0},
    {"Exp", qs_exp_f32, QS_INT_NONE, 0, 0, 0},
    {"Log", qs_log_f32, QS_INT_NONE, 0, 0, 0},
    {"Sqrt", qs_sqrt_f32, QS_INT_NONE, 0, 0, 0},
    {"Neg", qs_neg_f32, QS_INT_SIGNED, 0, 0, 0},
    {"Abs", qs_abs_f32, QS_INT_ALL, 0, 0, 0},
    {"Erf", qs_erf_f32, QS_INT_NONE, 0, 0, 0},
    {"Reciprocal", qs_reciprocal_f32, QS_INT_NONE, 0, 0, 0},
    {"Floor", qs_floor_f32, QS_INT_NONE, 0, 0, 0},
    {"Ceil", qs_ceil_f32, QS_INT_NONE, 0, 0, 0},
    {"Round", qs_round_f32, QS_INT_NONE, 0, 0, 0},
    {"Sign", qs_sign_f32, QS_INT_ALL, 0, 0, 0},
    {"Softplus", qs_softplus_f32, QS_INT_NONE, 0, 0, 0},
    {"Softsign", qs_softsign_f32, QS_INT_NONE, 0, 0, 0},
    {"Elu", qs_elu_f32, QS_INT_NONE, 1.0f, 0, 0},
    {"Selu", qs_selu_f32, QS_INT_NONE, 1.67326319217681884765625f, 0,
     1.05070102214813232421875f},
    {"Celu", qs_celu_f32, QS_INT_NONE, 1.0f, 0, 0},
    {"ThresholdedRelu", qs_thresholded_relu_f32, QS_INT_NONE, 1.0f, 0, 0},
    {"Sin", qs_sin_f32, QS_INT_NONE, 0, 0, 0},
    {"Cos", qs_cos_f32, QS_INT_NONE, 0, 0, 0},
};

static const qs_unary_desc *qs_unary_lookup(const char *type) {
    for (size_t i = 0; i < sizeof(qs_unary_table) / sizeof(qs_unary_table[0]); i++)
        if (strcmp(qs_unary_table[i].type, type) == 0)
            return &qs_unary_table[i];
    return NULL;
}

static qs_unary_any_fn qs_unary_int_fn(const char *type, qs_dtype dtype) {
    bool relu = strcmp(type, "Relu") == 0, abs_ = strcmp(type, "Abs") == 0;
    bool neg = strcmp(type, "Neg") == 0, sign = strcmp(type, "Sign") == 0;
#define QS_SCASE(E, T, S)                                                                        \
    case E: return relu ? qs_relu_##S : abs_ ? qs_abs_##S : neg ? qs_neg_##S                     \
                                              : sign ? qs_sign_##S : NULL;
#define QS_UCASE(E, T, S)                                                                        \
    case E: return abs_ ? qs_abs_##S : sign ? qs_sign_##S : NULL;
    switch (dtype) {
        QS_FOREACH_SINT_DTYPE(QS_SCASE)
        QS_FOREACH_UINT_DTYPE(QS_UCASE)
    default: return NULL;
    }
#undef QS_SCASE
#undef QS_UCASE
}

static qs_status qs_unary_init(const qs_graph *g, qs_node *n, qs_error *err) {
    const qs_unary_desc *d = qs_unary_lookup(n->op_type);
    qs_unary_params *p;
    qs_status st;
    if (d == NULL)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "not a unary operator");
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if ((st = qs_attr_get_float(n, "alpha", d->alpha, &p->alpha, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "beta", d->beta, &p->beta, err)) != QS_OK ||
        (st = qs_attr_get_float(n, "gamma", d->gamma, &p->gamma, err)) != QS_OK)
        goto fail;
    if (strcmp(n->op_type, "Celu") == 0 && p->alpha == 0.0f) {
        st = qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "alpha must not be 0");
        goto fail;
    }
    p->f32 = d->f32;
    if (d->f32 == NULL && !qs_node_activation(g, n, &p->act)) {
        st = qs_node_error(err, QS_ERR_INTERNAL, n, "not an activation");
        goto fail;
    }
    n->params = p;
    return QS_OK;
fail:
    free(p);
    return st;
}

static qs_status qs_unary_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_error *err) {
    const qs_unary_desc *d = qs_unary_lookup(n->op_type);
    if (d == NULL)
        return qs_node_error(err, QS_ERR_INTERNAL, n, "not a unary operator");
    if (in[0].dtype != QS_DTYPE_FLOAT32 && qs_unary_int_fn(n->op_type, in[0].dtype) == NULL)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

typedef struct {
    const qs_act *act;
    qs_unary_f32_fn f32;
    qs_unary_any_fn any;
    const qs_unary_params *p;
    const char *x;
    char *y;
    size_t esize;
} qs_unary_job;

static void qs_unary_chunk(void *ctx, size_t begin, size_t end) {
    const qs_unary_job *job = ctx;
    const char *x = job->x + begin * job->esize;
    char *y = job->y + begin * job->esize;
    if (job->act) {
        /* Vectorized, and free of the subnormal slow paths a scalar expf hits. */
        if (y != x)
            memcpy(y, x, (end - begin) * sizeof(float));
        qs_act_apply_f32(job->act, (float *)(void *)y, end - begin);
    } else if (job->f32)
        job->f32((const float *)(const void *)x, (float *)(void *)y, end - begin, job->p);
    else
        job->any(x, y, end - begin);
}

static qs_status qs_unary_run(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_exec_ctx *ctx) {
    qs_unary_job job = {0};
    job.p = n->params;
    job.x = in[0].data;
    job.y = out[0].data;
    job.esize = qs_dtype_size(in[0].dtype);
    if (in[0].dtype == QS_DTYPE_FLOAT32) {
        job.f32 = job.p->f32;
        job.act = job.p->act.kind != QS_ACT_NONE ? &job.p->act : NULL;
    } else {
        job.any = qs_unary_int_fn(n->op_type, in[0].dtype);
    }
    qs_op_parallel(ctx->pool, ctx->n_threads, qs_view_numel(&in[0]), 16384, qs_unary_chunk, &job);
    return QS_OK;
}

#define QS_UNARY_OP(NAME, TYPE)                                                                  \
    const qs_op NAME = {                                                                         \
        .type = TYPE,                                                                            \
        .domain = "",                                                                            \
        .min_inputs = 1,                                                                         \
        .max_inputs = 1,                                                                         \
        .min_outputs = 1,                                                                        \
        .max_outputs = 1,                                                                        \
        .init = qs_unary_init,                                                                   \
        .infer = qs_unary_infer,                                                                 \
        .run = qs_unary_run,                                                                     \
    };

QS_UNARY_OP(qs_op_relu, "Relu")
QS_UNARY_OP(qs_op_leaky_relu, "LeakyRelu")
QS_UNARY_OP(qs_op_sigmoid, "Sigmoid")
QS_UNARY_OP(qs_op_hard_sigmoid, "HardSigmoid")
QS_UNARY_OP(qs_op_hard_swish, "HardSwish")
QS_UNARY_OP(qs_op_tanh, "Tanh")
QS_UNARY_OP(qs_op_exp, "Exp")
QS_UNARY_OP(qs_op_log, "Log")
QS_UNARY_OP(qs_op_sqrt, "Sqrt")
QS_UNARY_OP(qs_op_neg, "Neg")
QS_UNARY_OP(qs_op_abs, "Abs")
QS_UNARY_OP(qs_op_erf, "Erf")
QS_UNARY_OP(qs_op_reciprocal, "Reciprocal")
QS_UNARY_OP(qs_op_floor, "Floor")
QS_UNARY_OP(qs_op_ceil, "Ceil")
QS_UNARY_OP(qs_op_round, "Round")
QS_UNARY_OP(qs_op_sign, "Sign")
QS_UNARY_OP(qs_op_softplus, "Softplus")
QS_UNARY_OP(qs_op_softsign, "Softsign")
QS_UNARY_OP(qs_op_elu, "Elu")
QS_UNARY_OP(qs_op_selu, "Selu")
QS_UNARY_OP(qs_op_celu, "Celu")
QS_UNARY_OP(qs_op_thresholded_relu, "ThresholdedRelu")
QS_UNARY_OP(qs_op_sin, "Sin")
QS_UNARY_OP(qs_op_cos, "Cos")
