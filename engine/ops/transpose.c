/* Transpose: permute dims of any element type; also the NCHW<->NHWC converters of the layout pass. */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    size_t n_perm;
    int64_t perm[QS_MAX_RANK];
    bool out_nhwc; /* the graph marked the output NHWC: a converter inserted by the layout pass */
} qs_transpose_params;

static qs_status qs_transpose_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_transpose_params *p = calloc(1, sizeof(*p));
    qs_status st;
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    st = qs_attr_get_ints(n, "perm", p->perm, QS_MAX_RANK, &p->n_perm, err);
    if (st != QS_OK) {
        free(p);
        return st;
    }
    const qs_value *y = qs_node_output(g, n, 0);
    p->out_nhwc = y != NULL && y->layout == QS_LAYOUT_NHWC;
    n->params = p;
    return QS_OK;
}

static bool qs_perm_is(const int64_t *perm, int32_t r, const int64_t *want) {
    if (r != 4)
        return false;
    for (int32_t i = 0; i < 4; i++)
        if (perm[i] != want[i])
            return false;
    return true;
}

static qs_status qs_transpose_perm(const qs_node *n, const qs_view *x, int64_t *perm,
                                   qs_error *err) {
    const qs_transpose_params *p = n->params;
    bool seen[QS_MAX_RANK] = {false};
    int32_t r = x->rank;
    if (p->n_perm == 0) {
        for (int32_t i = 0; i < r; i++)
            perm[i] = r - 1 - i;
        return QS_OK;
    }
    if (p->n_perm != (size_t)r)
        return qs_node_error(err, QS_ERR_SHAPE, n, "perm has %zu entries for rank %d", p->n_perm,
                             (int)r);
    for (int32_t i = 0; i < r; i++) {
        int64_t a = p->perm[i];
        if (a < 0 || a >= r || seen[a])
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "perm is not a permutation");
        seen[a] = true;
        perm[i] = a;
    }
    return QS_OK;
}

static qs_status qs_transpose_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                    qs_error *err) {
    static const int64_t to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    const qs_transpose_params *p = n->params;
    int64_t perm[QS_MAX_RANK];
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_status st = qs_transpose_perm(n, &in[0], perm, err);
    if (st != QS_OK)
        return st;
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t i = 0; i < in[0].rank; i++)
        out[0].dims[i] = in[0].dims[perm[i]];
    if (in[0].layout == QS_LAYOUT_NHWC) {
        if (!qs_perm_is(perm, in[0].rank, to_nchw))
            return qs_node_error(err, QS_ERR_INTERNAL, n, "NHWC input with perm other than NCHW");
        out[0].layout = QS_LAYOUT_PLAIN;
    } else {
        out[0].layout = p->out_nhwc && qs_perm_is(perm, in[0].rank, to_nhwc) ? QS_LAYOUT_NHWC
                                                                              : QS_LAYOUT_PLAIN;
    }
    return qs_op_check_output(n, &out[0], err);
}

/* Output walked in rows of its (merged) innermost dim; `stride` is the input element stride
 * per output dim. */
typedef struct {
    const char *x;
    char *y;
    size_t esize;
    int32_t rank;
    int64_t dims[QS_MAX_RANK], stride[QS_MAX_RANK];
} qs_transpose_job;

#define QS_TRANSPOSE_ROW(T)                                                                      \
    {                                                                                            \
        const T *src = (const T *)(const void *)x;                                               \
        T *dst = (T *)(void *)y;                                                                 \
        for (size_t i = 0; i < inner; i++)                                                       \
            dst[i] = src[(size_t)i * s];                                                         \
    }

/* A 2-D transpose into rows of a few elements (NCHW -> NHWC of an image: 3 channels): the
 * planes are read in step, one output row after the other. */
#define QS_TRANSPOSE_SHORT(T)                                                                    \
    {                                                                                            \
        const T *src = (const T *)(const void *)j->x;                                            \
        T *dst = (T *)(void *)j->y + begin * inner;                                              \
        for (size_t row = begin; row < end; row++)                                               \
            for (size_t i = 0; i < inner; i++)                                                   \
                *dst++ = src[i * s + row];                                                       \
    }

/* Rows [begin, end): the input offset of the first is computed once, then carried like an
 * odometer (a division per dim and row cost 6 ns a pixel on the 3-channel NCHW -> NHWC input
 * transpose, several times the copy itself). */
static void qs_transpose_rows(void *ctx, size_t begin, size_t end) {
    const qs_transpose_job *j = ctx;
    size_t inner = (size_t)j->dims[j->rank - 1], s = (size_t)j->stride[j->rank - 1];
    if (j->rank == 2 && j->stride[0] == 1 && inner <= 4 && (j->esize == 1 || j->esize == 4)) {
        if (j->esize == 1)
            QS_TRANSPOSE_SHORT(uint8_t)
        else
            QS_TRANSPOSE_SHORT(uint32_t)
        return;
    }
    size_t idx[QS_MAX_RANK] = {0}, off = 0, r = begin;
    for (int32_t d = j->rank - 2; d >= 0; d--) {
        idx[d] = r % (size_t)j->dims[d];
        off += idx[d] * (size_t)j->stride[d];
        r /= (size_t)j->dims[d];
    }
    for (size_t row = begin; row < end; row++) {
        const char *x = j->x + off * j->esize;
        char *y = j->y + row * inner * j->esize;
        if (s == 1) {
            memcpy(y, x, inner * j->esize);
        } else {
            switch (j->esize) {
            case 1: QS_TRANSPOSE_ROW(uint8_t) break;
            case 2: QS_TRANSPOSE_ROW(uint16_t) break;
            case 4: QS_TRANSPOSE_ROW(uint32_t) break;
            default: QS_TRANSPOSE_ROW(uint64_t) break;
            }
        }
        for (int32_t d = j->rank - 2; d >= 0; d--) {
            off += (size_t)j->stride[d];
            if (++idx[d] < (size_t)j->dims[d])
                break;
            off -= idx[d] * (size_t)j->stride[d];
            idx[d] = 0;
        }
    }
}

static qs_status qs_transpose_run(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_exec_ctx *ctx) {
    int64_t perm[QS_MAX_RANK], in_stride[QS_MAX_RANK];
    qs_transpose_job j;
    if (qs_transpose_perm(n, &in[0], perm, NULL) != QS_OK)
        return QS_ERR_INTERNAL;
    if (qs_view_numel(&in[0]) == 0)
        return QS_OK;
    memset(&j, 0, sizeof(j));
    j.x = in[0].data;
    j.y = out[0].data;
    j.esize = qs_dtype_size(in[0].dtype);
    int64_t s = 1;
    for (int32_t i = in[0].rank - 1; i >= 0; i--) {
        in_stride[i] = s;
        s *= in[0].dims[i];
    }
    /* drop unit dims, merge output dims that are also adjacent in the input */
    for (int32_t i = 0; i < in[0].rank; i++) {
        int64_t d = in[0].dims[perm[i]], st = in_stride[perm[i]];
        if (d == 1)
            continue;
        if (j.rank > 0 && j.stride[j.rank - 1] == st * d) {
            j.dims[j.rank - 1] *= d;
            j.stride[j.rank - 1] = st;
            continue;
        }
        j.dims[j.rank] = d;
        j.stride[j.rank] = st;
        j.rank++;
    }
    if (j.rank == 0) {
        j.dims[0] = 1;
        j.stride[0] = 1;
        j.rank = 1;
    }
    size_t inner = (size_t)j.dims[j.rank - 1];
    size_t rows = qs_view_numel(&in[0]) / inner;
    qs_op_parallel(ctx->pool, ctx->n_threads, rows, qs_op_grain(inner), qs_transpose_rows, &j);
    return QS_OK;
}

const qs_op qs_op_transpose = {
    .type = "Transpose",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_transpose_init,
    .infer = qs_transpose_infer,
    .run = qs_transpose_run,
};
