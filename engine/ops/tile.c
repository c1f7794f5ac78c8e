/* Tile: repeat a tensor of any element type along each dim; repeats must be known at load. */
#include <string.h>

#include "ops/op_util.h"

static qs_status qs_tile_infer(const qs_node *n, const qs_view *in, qs_view *out,
                               qs_error *err) {
    int64_t reps[QS_MAX_RANK];
    size_t count;
    qs_status st = qs_op_need_plain(n, in, 0, err);
    if (st == QS_OK)
        st = qs_input_ints(n, in, 1, "repeats", reps, QS_MAX_RANK, &count, err);
    if (st != QS_OK)
        return st;
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    if (count != (size_t)in[0].rank)
        return qs_node_error(err, QS_ERR_SHAPE, n, "repeats has %zu values for rank %d", count,
                             (int)in[0].rank);
    qs_view_copy_shape(&out[0], &in[0]);
    for (int32_t d = 0; d < in[0].rank; d++) {
        if (reps[d] < 0 || (in[0].dims[d] > 0 && reps[d] > INT64_MAX / in[0].dims[d]))
            return qs_node_error(err, QS_ERR_SHAPE, n, "repeat %lld is invalid",
                                 (long long)reps[d]);
        out[0].dims[d] = in[0].dims[d] * reps[d];
    }
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_tile_run(const qs_node *n, const qs_view *in, qs_view *out,
                             qs_exec_ctx *ctx) {
    int32_t r = in[0].rank;
    size_t es = qs_dtype_size(in[0].dtype), total = qs_view_numel(&out[0]);
    (void)n;
    (void)ctx;
    if (total == 0)
        return QS_OK;
    if (r == 0) {
        memcpy(out[0].data, in[0].data, es);
        return QS_OK;
    }
    size_t inner = (size_t)out[0].dims[r - 1], in_inner = (size_t)in[0].dims[r - 1];
    for (size_t row = 0; row < total / inner; row++) {
        size_t rem = row, off = 0, stride = in_inner;
        for (int32_t d = r - 2; d >= 0; d--) {
            off += ((rem % (size_t)out[0].dims[d]) % (size_t)in[0].dims[d]) * stride;
            rem /= (size_t)out[0].dims[d];
            stride *= (size_t)in[0].dims[d];
        }
        const char *x = (const char *)in[0].data + off * es;
        char *y = (char *)out[0].data + row * inner * es;
        for (size_t i = 0; i < inner; i += in_inner)
            memcpy(y + i * es, x, in_inner * es);
    }
    return QS_OK;
}

const qs_op qs_op_tile = {
    .type = "Tile",
    .domain = "",
    .min_inputs = 2,
    .max_inputs = 2,
    .min_outputs = 1,
    .max_outputs = 1,
    .infer = qs_tile_infer,
    .run = qs_tile_run,
};
