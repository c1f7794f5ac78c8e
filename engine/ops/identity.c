/* Identity and Dropout (inference: a copy, plus an all-true mask when asked for). */
#include <stdlib.h>
#include <string.h>

#include "ops/op_util.h"

typedef struct {
    qs_dtype mask_dtype; /* bool from opset 10, X's type before */
} qs_dropout_params;

static qs_status qs_identity_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                   qs_error *err) {
    if (qs_dtype_size(in[0].dtype) == 0)
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "type %s is not supported",
                             qs_dtype_name(in[0].dtype));
    qs_view_copy_shape(&out[0], &in[0]);
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_identity_run(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_exec_ctx *ctx) {
    (void)n;
    (void)ctx;
    if (out[0].data != in[0].data)
        memcpy(out[0].data, in[0].data, qs_view_numel(&in[0]) * qs_dtype_size(in[0].dtype));
    return QS_OK;
}

static qs_status qs_dropout_init(const qs_graph *g, qs_node *n, qs_error *err) {
    qs_dropout_params *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return qs_node_error(err, QS_ERR_NO_MEMORY, n, "out of memory");
    if (g->opset < 7 && qs_node_attr_int(n, "is_test", 0) == 0) {
        free(p);
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "is_test=0 (training) is not supported");
    }
    p->mask_dtype = g->opset >= 10 ? QS_DTYPE_BOOL : QS_DTYPE_UNDEFINED;
    n->params = p;
    return QS_OK;
}

static qs_status qs_dropout_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                  qs_error *err) {
    const qs_dropout_params *p = n->params;
    qs_status st = qs_identity_infer(n, in, out, err);
    if (st != QS_OK)
        return st;
    if (qs_op_has_input(n, in, 1) && !qs_dtype_is_float(in[1].dtype))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "ratio must be a float");
    if (qs_op_has_input(n, in, 2)) {
        /* training mode drops at random: not something an inference server does, except with
         * a constant ratio of 0, where the output is the input and the mask all true (as
         * exporters write dropout(p=0.0, training=True), e.g. torchvision's Swin) */
        st = qs_op_need_const(n, in, 2, "training_mode", err);
        if (st != QS_OK)
            return st;
        if (in[2].dtype != QS_DTYPE_BOOL || qs_view_numel(&in[2]) != 1)
            return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "training_mode must be a bool");
        bool ratio_zero = qs_op_has_input(n, in, 1) && in[1].data != NULL &&
                          qs_view_numel(&in[1]) == 1 && qs_view_get_double(&in[1], 0) == 0.0;
        if (((const uint8_t *)in[2].data)[0] && !ratio_zero)
            return qs_node_error(err, QS_ERR_UNSUPPORTED, n,
                                 "training_mode=true is not supported with a ratio other than 0");
    }
    if (n->n_outputs > 1) {
        qs_view_copy_shape(&out[1], &in[0]);
        out[1].dtype = p->mask_dtype != QS_DTYPE_UNDEFINED ? p->mask_dtype : in[0].dtype;
    }
    return QS_OK;
}

static qs_status qs_dropout_run(const qs_node *n, const qs_view *in, qs_view *out,
                                qs_exec_ctx *ctx) {
    qs_identity_run(n, in, out, ctx);
    if (n->n_outputs > 1 && out[1].data != NULL) {
        size_t count = qs_view_numel(&out[1]);
        switch (out[1].dtype) {
        case QS_DTYPE_FLOAT32:
            for (size_t i = 0; i < count; i++)
                ((float *)out[1].data)[i] = 1.0f;
            break;
        case QS_DTYPE_FLOAT64:
            for (size_t i = 0; i < count; i++)
                ((double *)out[1].data)[i] = 1.0;
            break;
        default:
            /* bool: every element kept */
            memset(out[1].data, 1, count);
            break;
        }
    }
    return QS_OK;
}

const qs_op qs_op_identity = {
    .type = "Identity",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .flags = QS_OP_ALIAS_INPUT0,
    .infer = qs_identity_infer,
    .run = qs_identity_run,
};

const qs_op qs_op_dropout = {
    .type = "Dropout",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 3,
    .min_outputs = 1,
    .max_outputs = 2,
    .flags = QS_OP_ALIAS_INPUT0,
    .init = qs_dropout_init,
    .infer = qs_dropout_infer,
    .run = qs_dropout_run,
};
