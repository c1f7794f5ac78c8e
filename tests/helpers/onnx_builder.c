/* Test helper: ONNX ModelProto construction with protobuf-c's generated structs. Everything is
 * allocated from a per-model list and freed at once. */
#include <stdlib.h>
#include <string.h>

#include "helpers/onnx_builder.h"
#include "onnx/onnx.pb-c.h"

struct qst_node {
    Onnx__NodeProto proto;
    qst_model *model;
};

struct qst_model {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    void **allocs;
    size_t n_allocs;
};

static void *track(qst_model *m, void *p) {
    m->allocs = realloc(m->allocs, (m->n_allocs + 1) * sizeof(void *));
    m->allocs[m->n_allocs++] = p;
    return p;
}

static void *alloc(qst_model *m, size_t size) { return track(m, calloc(1, size ? size : 1)); }

static char *dup(qst_model *m, const char *s) { return track(m, strdup(s)); }

/* Grow a protobuf-c repeated pointer field by one element. */
#define QST_PUSH(m, arr, count, item)                                                   \
    do {                                                                                \
        void *grown = alloc((m), sizeof(*(arr)) * ((count) + 1));                       \
        if ((count))                                                                    \
            memcpy(grown, (arr), sizeof(*(arr)) * (count));                             \
        (arr) = grown;                                                                  \
        (arr)[(count)++] = (item);                                                      \
    } while (0)

qst_model *qst_model_create(int64_t opset) {
    qst_model *m = calloc(1, sizeof(*m));
    onnx__model_proto__init(&m->model);
    onnx__graph_proto__init(&m->graph);
    onnx__operator_set_id_proto__init(&m->opset);
    m->model.has_ir_version = 1;
    m->model.ir_version = opset >= 15 ? 8 : 7;
    m->opset.domain = dup(m, "");
    m->opset.has_version = 1;
    m->opset.version = opset;
    m->opsets[0] = &m->opset;
    m->model.opset_import = m->opsets;
    m->model.n_opset_import = 1;
    m->model.graph = &m->graph;
    m->graph.name = dup(m, "test");
    return m;
}

void qst_model_free(qst_model *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n_allocs; i++)
        free(m->allocs[i]);
    free(m->allocs);
    free(m);
}

static char **split(qst_model *m, const char *list, size_t *count) {
    char **out = NULL;
    *count = 0;
    if (!list || !list[0])
        return NULL;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *s = alloc(m, len + 1);
        memcpy(s, p, len);
        QST_PUSH(m, out, *count, s);
        if (!comma)
            break;
        p = comma + 1;
    }
    return out;
}

void qst_model_input(qst_model *m, const char *name, qs_dtype dtype, int32_t rank,
                     const int64_t *dims) {
    Onnx__ValueInfoProto *vi = alloc(m, sizeof(*vi));
    Onnx__TypeProto *tp = alloc(m, sizeof(*tp));
    Onnx__TypeProto__Tensor *tt = alloc(m, sizeof(*tt));
    Onnx__TensorShapeProto *sh = alloc(m, sizeof(*sh));
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int32_t i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = alloc(m, sizeof(*d));
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = dup(m, "N");
        }
        QST_PUSH(m, sh->dim, sh->n_dim, d);
    }
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)dtype;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = dup(m, name);
    vi->type = tp;
    QST_PUSH(m, m->graph.input, m->graph.n_input, vi);
}

void qst_model_output(qst_model *m, const char *name) {
    Onnx__ValueInfoProto *vi = alloc(m, sizeof(*vi));
    onnx__value_info_proto__init(vi);
    vi->name = dup(m, name);
    QST_PUSH(m, m->graph.output, m->graph.n_output, vi);
}

static Onnx__TensorProto *tensor(qst_model *m, const char *name, qs_dtype dtype, int32_t rank,
                                 const int64_t *dims, const void *data, size_t esize) {
    Onnx__TensorProto *t = alloc(m, sizeof(*t));
    onnx__tensor_proto__init(t);
    size_t numel = 1;
    for (int32_t i = 0; i < rank; i++) {
        QST_PUSH(m, t->dims, t->n_dims, dims[i]);
        numel *= (size_t)dims[i];
    }
    t->name = dup(m, name);
    t->has_data_type = 1;
    t->data_type = (int32_t)dtype;
    t->has_raw_data = 1;
    t->raw_data.len = numel * esize;
    t->raw_data.data = alloc(m, numel * esize);
    if (numel)
        memcpy(t->raw_data.data, data, numel * esize);
    return t;
}

void qst_model_init_f32(qst_model *m, const char *name, int32_t rank, const int64_t *dims,
                        const float *data) {
    Onnx__TensorProto *t = tensor(m, name, QS_DTYPE_FLOAT32, rank, dims, data, 4);
    QST_PUSH(m, m->graph.initializer, m->graph.n_initializer, t);
}

void qst_model_init_i64(qst_model *m, const char *name, int32_t rank, const int64_t *dims,
                        const int64_t *data) {
    Onnx__TensorProto *t = tensor(m, name, QS_DTYPE_INT64, rank, dims, data, 8);
    QST_PUSH(m, m->graph.initializer, m->graph.n_initializer, t);
}

void qst_model_init_external(qst_model *m, const char *name, qs_dtype dtype, int32_t rank,
                             const int64_t *dims, const char *const *kv, size_t n_kv) {
    Onnx__TensorProto *t = alloc(m, sizeof(*t));
    onnx__tensor_proto__init(t);
    for (int32_t i = 0; i < rank; i++)
        QST_PUSH(m, t->dims, t->n_dims, dims[i]);
    t->name = dup(m, name);
    t->has_data_type = 1;
    t->data_type = (int32_t)dtype;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    for (size_t i = 0; i < n_kv; i++) {
        Onnx__StringStringEntryProto *e = alloc(m, sizeof(*e));
        onnx__string_string_entry_proto__init(e);
        e->key = dup(m, kv[2 * i]);
        e->value = dup(m, kv[2 * i + 1]);
        QST_PUSH(m, t->external_data, t->n_external_data, e);
    }
    QST_PUSH(m, m->graph.initializer, m->graph.n_initializer, t);
}

qst_node *qst_model_node(qst_model *m, const char *op_type, const char *inputs,
                         const char *outputs) {
    qst_node *n = alloc(m, sizeof(*n));
    onnx__node_proto__init(&n->proto);
    n->proto.op_type = dup(m, op_type);
    n->proto.name = dup(m, outputs);
    n->proto.input = split(m, inputs, &n->proto.n_input);
    n->proto.output = split(m, outputs, &n->proto.n_output);
    n->model = m;
    Onnx__NodeProto *np = &n->proto;
    QST_PUSH(m, m->graph.node, m->graph.n_node, np);
    return n;
}

static Onnx__AttributeProto *attr(qst_node *n, const char *name,
                                  Onnx__AttributeProto__AttributeType type) {
    qst_model *m = n->model;
    Onnx__AttributeProto *a = alloc(m, sizeof(*a));
    onnx__attribute_proto__init(a);
    a->name = dup(m, name);
    a->has_type = 1;
    a->type = type;
    QST_PUSH(m, n->proto.attribute, n->proto.n_attribute, a);
    return a;
}

void qst_node_int(qst_node *n, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void qst_node_float(qst_node *n, const char *name, float v) {
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void qst_node_string(qst_node *n, const char *name, const char *v) {
    qst_model *m = n->model;
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)dup(m, v);
}

void qst_node_ints(qst_node *n, const char *name, size_t count, const int64_t *v) {
    qst_model *m = n->model;
    Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->ints = alloc(m, count * sizeof(int64_t));
    memcpy(a->ints, v, count * sizeof(int64_t));
    a->n_ints = count;
}

uint8_t *qst_model_pack(qst_model *m, size_t *size) {
    size_t len = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *buf = malloc(len ? len : 1);
    onnx__model_proto__pack(&m->model, buf);
    *size = len;
    return buf;
}

void qst_fill_random(float *x, size_t n, uint32_t seed, float lo, float hi) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = lo + (hi - lo) * (float)(s >> 8) / 16777216.0f;
    }
}
