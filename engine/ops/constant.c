/* Constant (value, value_float(s), value_int(s)) and ConstantOfShape. */
#include <string.h>

#include "ops/op_util.h"

/* The one value attribute of a Constant node, or NULL. */
static const qs_attr *qs_constant_attr(const qs_node *n) {
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const qs_attr *a = qs_node_attr(n, names[i]);
        if (a != NULL)
            return a;
    }
    return NULL;
}

static qs_status qs_constant_init(const qs_graph *g, qs_node *n, qs_error *err) {
    (void)g;
    if (qs_node_attr(n, "sparse_value") || qs_node_attr(n, "value_string") ||
        qs_node_attr(n, "value_strings"))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "sparse and string constants");
    const qs_attr *a = qs_constant_attr(n);
    bool ok = a != NULL;
    if (ok) {
        if (strcmp(a->name, "value") == 0)
            ok = a->type == QS_ATTR_TENSOR && a->t != NULL;
        else if (strcmp(a->name, "value_float") == 0)
            ok = a->type == QS_ATTR_FLOAT;
        else if (strcmp(a->name, "value_floats") == 0)
            ok = a->type == QS_ATTR_FLOATS;
        else if (strcmp(a->name, "value_int") == 0)
            ok = a->type == QS_ATTR_INT;
        else
            ok = a->type == QS_ATTR_INTS;
    }
    if (!ok)
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "no valid value attribute");
    return QS_OK;
}

/* Shape, type and bytes of the constant. */
static bool qs_constant_describe(const qs_node *n, qs_view *v) {
    const qs_attr *a = qs_constant_attr(n);
    memset(v, 0, sizeof(*v));
    if (a == NULL)
        return false;
    switch (a->type) {
    case QS_ATTR_TENSOR:
        v->dtype = a->t->dtype;
        v->rank = a->t->rank;
        memcpy(v->dims, a->t->dims, sizeof(v->dims));
        v->data = a->t->data;
        break;
    case QS_ATTR_FLOAT:
        v->dtype = QS_DTYPE_FLOAT32;
        v->data = (void *)(uintptr_t)&a->f;
        break;
    case QS_ATTR_INT:
        v->dtype = QS_DTYPE_INT64;
        v->data = (void *)(uintptr_t)&a->i;
        break;
    case QS_ATTR_FLOATS:
        v->dtype = QS_DTYPE_FLOAT32;
        v->rank = 1;
        v->dims[0] = (int64_t)a->n;
        v->data = a->floats;
        break;
    case QS_ATTR_INTS:
        v->dtype = QS_DTYPE_INT64;
        v->rank = 1;
        v->dims[0] = (int64_t)a->n;
        v->data = a->ints;
        break;
    default: return false;
    }
    return true;
}

static qs_status qs_constant_infer(const qs_node *n, const qs_view *in, qs_view *out,
                                   qs_error *err) {
    qs_view v;
    (void)in;
    if (!qs_constant_describe(n, &v) || qs_dtype_size(v.dtype) == 0 ||
        (v.data == NULL && qs_view_numel(&v) > 0))
        return qs_node_error(err, QS_ERR_UNSUPPORTED, n, "constant of type %s",
                             qs_dtype_name(v.dtype));
    qs_view_copy_shape(&out[0], &v);
    out[0].layout = QS_LAYOUT_PLAIN;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_constant_run(const qs_node *n, const qs_view *in, qs_view *out,
                                 qs_exec_ctx *ctx) {
    qs_view v;
    (void)in;
    (void)ctx;
    if (!qs_constant_describe(n, &v))
        return QS_ERR_INTERNAL;
    size_t bytes = qs_view_numel(&v) * qs_dtype_size(v.dtype);
    if (bytes)
        memcpy(out[0].data, v.data, bytes);
    return QS_OK;
}

static qs_status qs_constant_of_shape_init(const qs_graph *g, qs_node *n, qs_error *err) {
    const qs_attr *a = qs_node_attr(n, "value");
    (void)g;
    if (a != NULL && (a->type != QS_ATTR_TENSOR || a->t == NULL || qs_value_numel(a->t) != 1 ||
                      qs_dtype_size(a->t->dtype) == 0 || a->t->data == NULL))
        return qs_node_error(err, QS_ERR_MALFORMED_MODEL, n, "value must be a one-element tensor");
    return QS_OK;
}

static qs_status qs_constant_of_shape_infer(const qs_node *n, const qs_view *in, qs_view *out,
                              qs_error *err) {
    const qs_attr *a = qs_node_attr(n, "value");
    int64_t shape[QS_MAX_RANK];
    size_t count;
    qs_status st = qs_input_ints(n, in, 0, "shape", shape, QS_MAX_RANK, &count, err);
    if (st != QS_OK)
        return st;
    out[0].dtype = a ? a->t->dtype : QS_DTYPE_FLOAT32;
    out[0].rank = (int32_t)count;
    memcpy(out[0].dims, shape, count * sizeof(int64_t));
    out[0].layout = QS_LAYOUT_PLAIN;
    return qs_op_check_output(n, &out[0], err);
}

static qs_status qs_constant_of_shape_run(const qs_node *n, const qs_view *in, qs_view *out,
                            qs_exec_ctx *ctx) {
    const qs_attr *a = qs_node_attr(n, "value");
    size_t count = qs_view_numel(&out[0]), es = qs_dtype_size(out[0].dtype);
    (void)in;
    (void)ctx;
    if (a == NULL) {
        memset(out[0].data, 0, count * es);
        return QS_OK;
    }
    for (size_t i = 0; i < count; i++)
        memcpy((char *)out[0].data + i * es, a->t->data, es);
    return QS_OK;
}

const qs_op qs_op_constant = {
    .type = "Constant",
    .domain = "",
    .min_inputs = 0,
    .max_inputs = 0,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_constant_init,
    .infer = qs_constant_infer,
    .run = qs_constant_run,
};

const qs_op qs_op_constant_of_shape = {
    .type = "ConstantOfShape",
    .domain = "",
    .min_inputs = 1,
    .max_inputs = 1,
    .min_outputs = 1,
    .max_outputs = 1,
    .init = qs_constant_of_shape_init,
    .infer = qs_constant_of_shape_infer,
    .run = qs_constant_of_shape_run,
};
