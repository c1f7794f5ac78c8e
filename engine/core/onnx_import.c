/* ONNX import with protobuf-c: model, graph, initializers, nodes and attributes into a qs_graph. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/onnx_import.h"
#include "onnx/onnx.pb-c.h"

#define QS_MIN_IR_VERSION 3
#define QS_MAX_IR_VERSION 10
#define QS_MIN_OPSET 1 /* older opsets: each op refuses the semantics it does not implement */
#define QS_MAX_OPSET 18

/* State of one import: where external data is looked up, and the external file last opened
 * (tensors usually share one file, in order). */
typedef struct {
    const char *base_dir; /* the model file's directory; NULL when loading from memory */
    int fd;               /* -1 when none is open */
    char *fd_location;    /* the location `fd` was opened for */
    uint64_t fd_size;
    uint64_t external_bytes; /* total read from external files */
} import_ctx;

static void import_ctx_init(import_ctx *c, const char *base_dir) {
    memset(c, 0, sizeof(*c));
    c->base_dir = base_dir;
    c->fd = -1;
}

static void import_ctx_close(import_ctx *c) {
    if (c->fd >= 0)
        close(c->fd);
    free(c->fd_location);
    c->fd = -1;
    c->fd_location = NULL;
}

/* A non-negative decimal integer as external_data stores it ("4096"); false for anything else
 * (sign, spaces, other characters, empty, overflow). */
static bool parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!s || !s[0])
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The spec's locations are POSIX paths relative to the model's directory: refuse absolute paths
 * and any ".." component, so a model cannot make the server read files outside its folder. */
static bool location_is_safe(const char *loc) {
    if (!loc[0] || loc[0] == '/')
        return false;
    for (const char *p = loc; *p;) {
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += len;
        if (*p == '/')
            p++;
    }
    return true;
}

/* Open (or reuse) the external file `loc` in the model's directory. */
static qs_status external_open(import_ctx *c, const char *loc, const char *where, qs_error *err) {
    char path[4096];
    struct stat sb;
    if (c->fd >= 0 && strcmp(c->fd_location, loc) == 0)
        return QS_OK;
    import_ctx_close(c);
    int n = snprintf(path, sizeof(path), "%s/%s", c->base_dir, loc);
    if (n < 0 || (size_t)n >= sizeof(path))
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data location is too "
                            "long");
    /* O_NONBLOCK: opening a FIFO must not hang; only regular files are accepted below. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return qs_error_set(err, QS_ERR_IO, where, "cannot open external data \"%.200s\": %s", loc,
                            strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return qs_error_set(err, QS_ERR_IO, where, "external data \"%.200s\" is not a regular file",
                            loc);
    }
    c->fd_location = strdup(loc);
    if (!c->fd_location) {
        close(fd);
        return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
    }
    c->fd = fd;
    c->fd_size = (uint64_t)sb.st_size;
    return QS_OK;
}

/* Check the external_data entries of an EXTERNAL tensor of `bytes` bytes against the spec (keys
 * location (required), offset and length (optional decimal strings), checksum (not verified))
 * and its file, which is left open in c; *offset gets where the data starts. Runs before the
 * tensor's buffer is allocated, so a bogus shape costs nothing unless the file really is that
 * large. */
static qs_status external_locate(import_ctx *c, const Onnx__TensorProto *t, size_t bytes,
                                 uint64_t *offset, const char *where, qs_error *err) {
    const char *loc = NULL;
    uint64_t length = bytes;
    bool has_offset = false, has_length = false;

    *offset = 0;
    if (!c || !c->base_dir)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "the tensor's data is in an external "
                            "file, which needs the model loaded from a file, not from memory");
    if (t->has_raw_data)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "tensor has both external data "
                            "and raw_data");
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        const char *key = e->key ? e->key : "", *val = e->value ? e->value : "";
        bool dup = false, bad = false;
        if (strcmp(key, "location") == 0) {
            dup = loc != NULL;
            loc = val;
        } else if (strcmp(key, "offset") == 0) {
            dup = has_offset;
            has_offset = true;
            bad = !parse_u64(val, offset);
        } else if (strcmp(key, "length") == 0) {
            dup = has_length;
            has_length = true;
            bad = !parse_u64(val, &length);
        }
        if (dup)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data key \"%s\" is "
                                "given twice", key);
        if (bad)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data %s \"%.40s\" is "
                                "not a non-negative integer", key, val);
    }
    if (!loc)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data has no location");
    if (!location_is_safe(loc))
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data location \"%.200s\" "
                            "must be a relative path inside the model's directory", loc);
    if (length != bytes)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data length is %llu "
                            "bytes, shape and type need %zu", (unsigned long long)length, bytes);
    qs_status st = external_open(c, loc, where, err);
    if (st != QS_OK)
        return st;
    if (*offset > c->fd_size || length > c->fd_size - *offset)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "external data (offset %llu, %llu "
                            "bytes) runs past the end of \"%.200s\" (%llu bytes)",
                            (unsigned long long)*offset, (unsigned long long)length, loc,
                            (unsigned long long)c->fd_size);
    return QS_OK; /* offset <= file size, which fits off_t */
}

/* Read `bytes` at `offset` of the file external_locate left open straight into dst. */
static qs_status external_read(import_ctx *c, void *dst, size_t bytes, uint64_t offset,
                               const char *where, qs_error *err) {
    uint8_t *p = dst;
    size_t left = bytes;
    while (left) {
        /* Linux reads at most about 2 GiB per call: loop over short reads. */
        ssize_t got = pread(c->fd, p, left, (off_t)offset);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return qs_error_set(err, QS_ERR_IO, where, "reading external data \"%.200s\" failed: "
                                "%s", c->fd_location, got < 0 ? strerror(errno) : "file shrank");
        p += got;
        left -= (size_t)got;
        offset += (uint64_t)got;
    }
    c->external_bytes += bytes;
    return QS_OK;
}

/* Convert a TensorProto into v (dtype, dims, data). `where` names it in errors; `c` says where
 * external data is found (NULL: external data is refused). */
static qs_status tensor_import(const Onnx__TensorProto *t, qs_value *v, import_ctx *c,
                               const char *where, qs_error *err) {
    qs_dtype dt = (qs_dtype)t->data_type;
    size_t esize = qs_dtype_size(dt);
    size_t numel = 1, bytes;
    bool external =
        t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;

    if (t->segment)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "segmented tensors are not supported");
    if (esize == 0)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "tensor data type %d is not supported",
                            (int)t->data_type);
    if (t->n_dims > QS_MAX_RANK)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "rank %zu exceeds %d", t->n_dims,
                            QS_MAX_RANK);
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || !qs_mul_size(numel, (size_t)t->dims[i], &numel))
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "invalid dimension %lld",
                                (long long)t->dims[i]);
    }
    if (!qs_mul_size(numel, esize, &bytes) || bytes > ((size_t)1 << 34))
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "tensor too large");
    uint64_t ext_offset = 0;
    if (external) {
        qs_status st = external_locate(c, t, bytes, &ext_offset, where, err);
        if (st != QS_OK)
            return st;
    }
    v->dtype = dt;
    v->rank = (int32_t)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        v->dims[i] = t->dims[i];
    v->kind = QS_VALUE_CONSTANT;
    if (qs_value_alloc_data(v) != QS_OK)
        return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory for %zu bytes", bytes);

    if (external)
        return external_read(c, v->data, bytes, ext_offset, where, err);
    if (t->has_raw_data) {
        if (t->raw_data.len != bytes)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where,
                                "raw_data has %zu bytes, shape and type need %zu",
                                (size_t)t->raw_data.len, bytes);
        if (bytes)
            memcpy(v->data, t->raw_data.data, bytes); /* ONNX raw_data is little-endian, as is x86 */
        return QS_OK;
    }
    size_t have;
    switch (dt) {
    case QS_DTYPE_FLOAT32:
        have = t->n_float_data;
        if (have == numel && numel)
            memcpy(v->data, t->float_data, bytes);
        break;
    case QS_DTYPE_INT64:
        have = t->n_int64_data;
        if (have == numel && numel)
            memcpy(v->data, t->int64_data, bytes);
        break;
    case QS_DTYPE_FLOAT64:
        have = t->n_double_data;
        if (have == numel && numel)
            memcpy(v->data, t->double_data, bytes);
        break;
    case QS_DTYPE_UINT32:
    case QS_DTYPE_UINT64:
        have = t->n_uint64_data;
        if (have == numel) {
            for (size_t i = 0; i < numel; i++) {
                if (dt == QS_DTYPE_UINT32)
                    ((uint32_t *)v->data)[i] = (uint32_t)t->uint64_data[i];
                else
                    ((uint64_t *)v->data)[i] = t->uint64_data[i];
            }
        }
        break;
    case QS_DTYPE_INT32:
    case QS_DTYPE_INT8:
    case QS_DTYPE_UINT8:
    case QS_DTYPE_INT16:
    case QS_DTYPE_UINT16:
    case QS_DTYPE_BOOL:
    case QS_DTYPE_FLOAT16:
        /* These types travel in int32_data, one element per entry (float16 as its bit pattern). */
        have = t->n_int32_data;
        if (have == numel) {
            for (size_t i = 0; i < numel; i++) {
                int32_t x = t->int32_data[i];
                switch (esize) {
                case 1: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
                case 2: ((uint16_t *)v->data)[i] = (uint16_t)x; break;
                default: ((int32_t *)v->data)[i] = x; break;
                }
            }
        }
        break;
    default:
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "tensor data type %s is not supported",
                            qs_dtype_name(dt));
    }
    if (have != numel)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where,
                            "tensor has %zu elements, its shape needs %zu", have, numel);
    return QS_OK;
}

qs_status qs_onnx_tensor_decode(const void *data, size_t size, qs_value **out, qs_error *err) {
    qs_status st;
    qs_value *v = NULL;
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, size, data);
    *out = NULL;
    if (!t)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "tensor", "not a valid TensorProto");
    v = qs_value_create(t->name);
    if (!v) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "tensor", "out of memory");
        goto cleanup;
    }
    st = tensor_import(t, v, NULL, "tensor", err);
    if (st != QS_OK)
        goto cleanup;
    *out = v;
    v = NULL;
cleanup:
    qs_value_free(v);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return st;
}

/* Find a value by name or create it as a not-yet-produced activation. */
static int32_t value_ref(qs_graph *g, const char *name) {
    int32_t idx = qs_graph_find_value(g, name);
    return idx >= 0 ? idx : qs_graph_add_value(g, name);
}

static qs_status value_info_import(const Onnx__ValueInfoProto *vi, qs_value *v, qs_error *err) {
    char where[160];
    snprintf(where, sizeof(where), "graph input \"%s\"", v->name);
    if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        !vi->type->tensor_type)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "only tensor inputs are supported");
    const Onnx__TypeProto__Tensor *tt = vi->type->tensor_type;
    v->dtype = (qs_dtype)tt->elem_type;
    if (!tt->shape) {
        v->rank = -1;
        return QS_OK;
    }
    if (tt->shape->n_dim > QS_MAX_RANK)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "rank %zu exceeds %d",
                            tt->shape->n_dim, QS_MAX_RANK);
    v->rank = (int32_t)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "negative dimension");
            v->dims[i] = d->dim_value;
        } else {
            v->dims[i] = -1; /* symbolic or unknown: bound at run time */
        }
    }
    return QS_OK;
}

static qs_status attr_import(const Onnx__AttributeProto *a, qs_attr *out, import_ctx *c,
                             const char *where, qs_error *err) {
    out->name = strdup(a->name ? a->name : "");
    if (!out->name)
        return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
    if (a->ref_attr_name)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "attribute \"%s\" refers to a function "
                            "attribute", out->name);
    out->type = (qs_attr_type)a->type;
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: out->f = a->f; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: out->i = a->i; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        out->s = malloc(a->s.len + 1);
        if (!out->s)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        if (a->s.len)
            memcpy(out->s, a->s.data, a->s.len);
        out->s[a->s.len] = '\0';
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        out->n = a->n_ints;
        out->ints = malloc(sizeof(int64_t) * (a->n_ints ? a->n_ints : 1));
        if (!out->ints)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        if (a->n_ints)
            memcpy(out->ints, a->ints, sizeof(int64_t) * a->n_ints);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        out->n = a->n_floats;
        out->floats = malloc(sizeof(float) * (a->n_floats ? a->n_floats : 1));
        if (!out->floats)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        if (a->n_floats)
            memcpy(out->floats, a->floats, sizeof(float) * a->n_floats);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        if (!a->t)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "tensor attribute \"%s\" is "
                                "empty", out->name);
        out->t = qs_value_create(a->t->name);
        if (!out->t)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        return tensor_import(a->t, out->t, c, where, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
        /* Kept as a count only: no supported operator reads string lists. */
        out->n = a->n_strings;
        break;
    default:
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where,
                            "attribute \"%s\" has unsupported type %d (graphs, sparse tensors)",
                            out->name, (int)a->type);
    }
    return QS_OK;
}

static qs_status node_import(qs_graph *g, const Onnx__NodeProto *np, size_t index, import_ctx *c,
                             qs_error *err) {
    char fallback[64], where[192];
    const char *name = np->name && np->name[0] ? np->name : NULL;
    if (!np->op_type || !np->op_type[0])
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph", "node %zu has no op_type", index);
    if (!name) {
        snprintf(fallback, sizeof(fallback), "%.40s_%zu", np->op_type, index);
        name = fallback;
    }
    snprintf(where, sizeof(where), "node \"%.100s\" (%.60s)", name, np->op_type);
    const char *domain = np->domain ? np->domain : "";
    if (strcmp(domain, "ai.onnx") == 0)
        domain = "";
    if (domain[0])
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "operator domain \"%s\" is not supported",
                            domain);
    if (np->n_input > 1024 || np->n_output > 64)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, where, "too many inputs or outputs");

    int32_t ni = qs_graph_add_node(g, np->op_type, name);
    if (ni < 0)
        return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
    int32_t ins[1024], outs[64];
    for (size_t i = 0; i < np->n_input; i++) {
        const char *in = np->input[i];
        ins[i] = in && in[0] ? value_ref(g, in) : -1;
        if (in && in[0] && ins[i] < 0)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
    }
    for (size_t i = 0; i < np->n_output; i++) {
        const char *o = np->output[i];
        if (!o || !o[0]) {
            outs[i] = -1;
            continue;
        }
        int32_t existing = qs_graph_find_value(g, o);
        if (existing >= 0 && (g->values[existing]->kind != QS_VALUE_ACTIVATION ||
                              g->values[existing]->producer >= 0))
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where,
                                "output \"%s\" is already defined elsewhere", o);
        outs[i] = existing >= 0 ? existing : qs_graph_add_value(g, o);
        if (outs[i] < 0)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        g->values[outs[i]]->producer = ni; /* marks it produced, for the duplicate check above */
    }
    qs_node *n = &g->nodes[ni];
    if (qs_node_set_io(n, (int32_t)np->n_input, ins, (int32_t)np->n_output, outs) != QS_OK)
        return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
    if (np->n_attribute) {
        n->attrs = calloc(np->n_attribute, sizeof(qs_attr));
        if (!n->attrs)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        for (size_t i = 0; i < np->n_attribute; i++) {
            n->n_attrs = i + 1;
            qs_status st = attr_import(np->attribute[i], &n->attrs[i], c, where, err);
            if (st != QS_OK)
                return st;
        }
    }
    return QS_OK;
}

static qs_status graph_import(qs_graph *g, const Onnx__GraphProto *gp, import_ctx *c,
                              qs_error *err) {
    qs_status st;
    char where[192];

    if (gp->n_sparse_initializer)
        return qs_error_set(err, QS_ERR_UNSUPPORTED, "graph", "sparse initializers are not supported");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0])
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph", "initializer %zu has no name", i);
        snprintf(where, sizeof(where), "initializer \"%.160s\"", t->name);
        if (qs_graph_find_value(g, t->name) >= 0)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "defined twice");
        int32_t vi = qs_graph_add_value(g, t->name);
        if (vi < 0)
            return qs_error_set(err, QS_ERR_NO_MEMORY, where, "out of memory");
        st = tensor_import(t, g->values[vi], c, where, err);
        if (st != QS_OK)
            return st;
    }
    g->inputs = malloc(sizeof(int32_t) * (gp->n_input ? gp->n_input : 1));
    if (!g->inputs)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "graph", "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !vi->name[0])
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph", "input %zu has no name", i);
        int32_t idx = qs_graph_find_value(g, vi->name);
        if (idx >= 0 && g->values[idx]->kind == QS_VALUE_CONSTANT)
            continue; /* IR < 4 lists initializers among the inputs: they stay constants */
        if (idx >= 0) {
            snprintf(where, sizeof(where), "graph input \"%.160s\"", vi->name);
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, where, "listed twice");
        }
        idx = qs_graph_add_value(g, vi->name);
        if (idx < 0)
            return qs_error_set(err, QS_ERR_NO_MEMORY, "graph", "out of memory");
        g->values[idx]->kind = QS_VALUE_INPUT;
        st = value_info_import(vi, g->values[idx], err);
        if (st != QS_OK)
            return st;
        g->inputs[g->n_inputs++] = idx;
    }
    for (size_t i = 0; i < gp->n_node; i++) {
        st = node_import(g, gp->node[i], i, c, err);
        if (st != QS_OK)
            return st;
    }
    if (gp->n_output == 0)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph", "the graph has no outputs");
    g->outputs = malloc(sizeof(int32_t) * gp->n_output);
    if (!g->outputs)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "graph", "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name;
        int32_t idx = name ? qs_graph_find_value(g, name) : -1;
        if (idx < 0)
            return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "graph",
                                "output \"%s\" is not produced by any node", name ? name : "");
        g->outputs[g->n_outputs++] = idx;
    }
    g->onnx_node_count = gp->n_node;
    return QS_OK;
}

qs_status qs_onnx_import(const void *data, size_t size, const char *base_dir, qs_graph **out,
                         qs_error *err) {
    qs_status st = QS_OK;
    qs_graph *g = NULL;
    Onnx__ModelProto *m = NULL;
    import_ctx ctx;

    import_ctx_init(&ctx, base_dir);

    *out = NULL;
    if (!data || size == 0)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "model", "empty model file");
    m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return qs_error_set(err, QS_ERR_MALFORMED_MODEL, "model",
                            "not a valid ONNX protobuf (ModelProto failed to parse)");
    if (!m->graph) {
        st = qs_error_set(err, QS_ERR_MALFORMED_MODEL, "model", "the model has no graph");
        goto cleanup;
    }
    if (!m->has_ir_version || m->ir_version < QS_MIN_IR_VERSION ||
        m->ir_version > QS_MAX_IR_VERSION) {
        st = qs_error_set(err, QS_ERR_UNSUPPORTED, "model", "IR version %lld is not supported "
                          "(%d to %d are)", (long long)m->ir_version, QS_MIN_IR_VERSION,
                          QS_MAX_IR_VERSION);
        goto cleanup;
    }
    if (m->n_functions) {
        st = qs_error_set(err, QS_ERR_UNSUPPORTED, "model", "model-local functions are not supported");
        goto cleanup;
    }
    g = qs_graph_create();
    if (!g) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, "model", "out of memory");
        goto cleanup;
    }
    g->ir_version = m->ir_version;
    g->opset = -1;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (!d || !d[0] || strcmp(d, "ai.onnx") == 0)
            g->opset = m->opset_import[i]->has_version ? m->opset_import[i]->version : 1;
    }
    if (g->opset < 0) /* IR 3 files may omit opset_import; ONNX then means opset 1 */
        g->opset = 1;
    if (g->opset < QS_MIN_OPSET || g->opset > QS_MAX_OPSET) {
        st = qs_error_set(err, QS_ERR_UNSUPPORTED, "model", "opset %lld is not supported (%d to %d "
                          "are)", (long long)g->opset, QS_MIN_OPSET, QS_MAX_OPSET);
        goto cleanup;
    }
    st = graph_import(g, m->graph, &ctx, err);
    if (st != QS_OK)
        goto cleanup;
    g->file_bytes = size + ctx.external_bytes;
    *out = g;
    g = NULL;
cleanup:
    import_ctx_close(&ctx);
    qs_graph_free(g);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}
