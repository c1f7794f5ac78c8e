/* Model loading: import, bind operators, optimize, annotate shapes, pack weights; signatures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/model.h"
#include "core/onnx_import.h"
#include "core/optimize.h"
#include "core/plan.h"
#include "quant/quant.h"

#define QS_MAX_MODEL_BYTES ((size_t)2 << 30)

void qs_model_options_init(qs_model_options *opts) {
    if (opts)
        memset(opts, 0, sizeof(*opts));
}

static qs_status freeze_inputs(qs_graph *g, const qs_model_options *o, qs_error *err) {
    for (size_t i = 0; i < o->frozen_input_count; i++) {
        const char *name = o->frozen_input_names[i];
        const qs_tensor *t = &o->frozen_inputs[i];
        size_t k;
        for (k = 0; k < g->n_inputs; k++)
            if (strcmp(g->values[g->inputs[k]]->name, name) == 0)
                break;
        if (k == g->n_inputs)
            return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, name, "no graph input of that name");
        qs_value *v = g->values[g->inputs[k]];
        if (t->rank < 0 || t->rank > QS_MAX_RANK || qs_dtype_size(t->dtype) == 0)
            return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, name, "invalid frozen tensor");
        if (t->dtype != v->dtype)
            return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, name, "frozen tensor is %s, the "
                                "input is %s", qs_dtype_name(t->dtype), qs_dtype_name(v->dtype));
        v->kind = QS_VALUE_CONSTANT;
        v->dtype = t->dtype;
        qs_value_set_shape(v, t->rank, t->dims);
        if (qs_value_alloc_data(v) != QS_OK)
            return qs_error_set(err, QS_ERR_NO_MEMORY, name, "out of memory");
        size_t bytes = qs_value_bytes(v);
        if (bytes)
            memcpy(v->data, t->data, bytes);
        memmove(&g->inputs[k], &g->inputs[k + 1], (g->n_inputs - k - 1) * sizeof(int32_t));
        g->n_inputs--;
    }
    return QS_OK;
}

/* Shapes for decisions: plan with every dynamic dim of the inputs set to 1 and copy the dims into
 * the graph's values. `ok` is false when the graph cannot be annotated that way (dynamic spatial
 * dims): the shape-dependent passes are then skipped. */
static qs_status annotate(qs_graph *g, qs_threadpool *pool, bool *ok, qs_error *err) {
    qs_status st;
    qs_tensor *in = calloc(g->n_inputs ? g->n_inputs : 1, sizeof(qs_tensor));
    qs_plan *p = NULL;
    *ok = false;
    if (!in)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "model", "out of memory");
    for (size_t i = 0; i < g->n_inputs; i++) {
        const qs_value *v = g->values[g->inputs[i]];
        in[i].dtype = v->dtype;
        in[i].rank = v->rank;
        if (v->rank < 0) {
            st = QS_OK; /* unknown rank: no annotation possible */
            goto cleanup;
        }
        for (int32_t d = 0; d < v->rank; d++) {
            if (v->dims[d] < 0 && d > 0) {
                st = QS_OK;
                goto cleanup;
            }
            in[i].dims[d] = v->dims[d] < 0 ? 1 : v->dims[d];
        }
    }
    st = qs_plan_build(g, in, g->n_inputs, pool, false, &p, err);
    if (st != QS_OK)
        goto cleanup;
    for (size_t v = 0; v < g->n_values; v++) {
        qs_value *val = g->values[v];
        if (val->kind == QS_VALUE_CONSTANT || val->kind == QS_VALUE_INPUT)
            continue;
        val->dtype = p->views[v].dtype;
        qs_value_set_shape(val, p->views[v].rank, p->views[v].dims);
    }
    *ok = true;
cleanup:
    qs_plan_free(p);
    free(in);
    return st;
}

/* Debugging aid (QUANTSERVE_DUMP_GRAPH=1): the optimized graph on stderr. */
static void dump_graph(const qs_graph *g) {
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        fprintf(stderr, "%3zu %s%s%s \"%s\" (", i, n->domain[0] ? n->domain : "",
                n->domain[0] ? "." : "", n->op_type, n->name);
        for (int32_t j = 0; j < n->n_inputs; j++) {
            const qs_value *v = n->inputs[j] >= 0 ? g->values[n->inputs[j]] : NULL;
            fprintf(stderr, "%s%s:%s%s", j ? ", " : "", v ? v->name : "-",
                    v ? qs_dtype_name(v->dtype) : "", v && v->kind == QS_VALUE_CONSTANT ? "c" : "");
        }
        fprintf(stderr, ") -> %s\n", n->outputs[0] >= 0 ? g->values[n->outputs[0]]->name : "-");
    }
}

/* Free the data of constants that only prepared operators read (their packed copy is what runs),
 * keeping dims for shape inference; marks them released in `released`. */
static void release_packed_constants(qs_graph *g, uint8_t *released) {
    uint8_t *needed = calloc(g->n_values ? g->n_values : 1, 1);
    if (!needed)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        if (n->op->flags & QS_OP_RUN_SKIPS_CONSTANTS)
            continue;
        for (int32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0)
                needed[n->inputs[j]] = 1;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]] = 1;
    for (size_t v = 0; v < g->n_values; v++) {
        qs_value *val = g->values[v];
        if (val->kind != QS_VALUE_CONSTANT || needed[v] || !val->data)
            continue;
        qs_aligned_free(val->data);
        val->data = NULL;
        released[v] = 1;
    }
    free(needed);
}

static void compute_info(qs_model *m) {
    qs_graph *g = m->g;
    qs_model_info *info = &m->info;
    uint8_t *seen = calloc(g->n_values ? g->n_values : 1, 1);
    uint8_t *released = calloc(g->n_values ? g->n_values : 1, 1);
    info->file_bytes = g->file_bytes;
    info->onnx_node_count = g->onnx_node_count;
    info->node_count = g->n_nodes;
    if (!seen || !released)
        goto done;
    release_packed_constants(g, released);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const qs_node *n = &g->nodes[i];
        for (int32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v < 0 || seen[v] || !qs_value_is_const(g, v))
                continue;
            seen[v] = 1;
            const qs_value *val = g->values[v];
            info->weight_bytes += qs_value_bytes(val); /* dims survive the release */
            if (!released[v])
                info->held_bytes += qs_value_bytes(val);
            if (val->dtype == QS_DTYPE_FLOAT32 || val->dtype == QS_DTYPE_INT8 ||
                val->dtype == QS_DTYPE_UINT8 || val->dtype == QS_DTYPE_INT32)
                info->parameter_count += qs_value_numel(val);
        }
        if (n->op->packed_bytes)
            info->packed_bytes += n->op->packed_bytes(n);
    }
done:
    free(seen);
    free(released);
}

qs_status qs_model_load_memory(const void *data, size_t size, const qs_model_options *opts,
                               qs_model **out, qs_error *err) {
    return qs_model_load_internal(data, size, opts, 0, out, err);
}

/* base_dir: the directory external tensor data is read from (NULL: loaded from memory). */
static qs_status model_load(const void *data, size_t size, const char *base_dir,
                            const qs_model_options *opts, uint32_t flags, qs_model **out,
                            qs_error *err) {
    qs_status st;
    qs_model_options defaults;
    qs_model *m = NULL;
    qs_threadpool *pool = NULL;
    bool annotated = false;

    if (!out)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "model", "out is NULL");
    *out = NULL;
    if (!opts) {
        qs_model_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->variant == QS_VARIANT_INT8_STATIC && !opts->calibration)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "model",
                            "static quantization needs a calibration");
    if (opts->variant != QS_VARIANT_FP32 && opts->variant != QS_VARIANT_INT8_QDQ &&
        opts->variant != QS_VARIANT_INT8_DYNAMIC && opts->variant != QS_VARIANT_INT8_STATIC)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "model", "unknown variant kind %d",
                            (int)opts->variant);
    m = calloc(1, sizeof(*m));
    if (!m)
        return qs_error_set(err, QS_ERR_NO_MEMORY, "model", "out of memory");
    st = qs_threadpool_create(1, &pool);
    if (st != QS_OK) {
        qs_error_set(err, st, "model", "cannot create a thread pool");
        goto fail;
    }
    st = qs_onnx_import(data, size, base_dir, &m->g, err);
    if (st != QS_OK)
        goto fail;
    st = freeze_inputs(m->g, opts, err);
    if (st != QS_OK)
        goto fail;
    st = qs_graph_bind_ops(m->g, err);
    if (st != QS_OK)
        goto fail;
    st = qs_graph_sort(m->g, err);
    if (st != QS_OK)
        goto fail;
    /* int8: the whole graph goes through the QDQ lowering. Dynamic mode is float in between and
     * rewrites the fused float graph at the end. */
    bool int8 = opts->variant == QS_VARIANT_INT8_QDQ || opts->variant == QS_VARIANT_INT8_STATIC;
    bool dynamic = opts->variant == QS_VARIANT_INT8_DYNAMIC;
    if (dynamic)
        flags |= QS_LOAD_NO_RESIDUAL_FUSION;
    st = qs_pass_fold_constants(m->g, pool, int8, err);
    if (st != QS_OK)
        goto fail;
    if (opts->optimize == QS_OPTIMIZE_ALL) {
        st = qs_pass_remove_identity(m->g, err);
        if (st == QS_OK)
            st = qs_pass_fold_batchnorm(m->g, err);
        if (st != QS_OK)
            goto fail;
    }
    if (!int8) {
        /* The fp32 variant of a QDQ model: weights were dequantized by folding; drop the
         * activations' quantize/dequantize round trips too. */
        st = qs_pass_strip_activation_qdq(m->g, err);
        if (st != QS_OK)
            goto fail;
    } else {
        st = annotate(m->g, pool, &annotated, err);
        if (st == QS_OK && opts->variant == QS_VARIANT_INT8_STATIC) {
            const qs_quant_options *qo = opts->quant ? opts->quant
                                                     : qs_calibrator_options(opts->calibration);
            st = qs_pass_insert_qdq(m->g, opts->calibration, qo, err);
            if (st == QS_OK)
                st = annotate(m->g, pool, &annotated, err);
        }
        if (st == QS_OK)
            st = qs_pass_activations_to_u8(m->g, err);
        if (st == QS_OK)
            st = qs_pass_mark_quant_points(m->g, err);
        if (st == QS_OK)
            st = qs_pass_lower_qdq(m->g, err);
        /* Weights of the ops left in float are dequantized now. */
        if (st == QS_OK)
            st = qs_pass_fold_constants(m->g, pool, false, err);
        if (st != QS_OK)
            goto fail;
    }
    /* Annotation also validates every shape, so a broken model fails here, at load. (The int8
     * graph was annotated before lowering; its NHWC operators need the layout pass first.) */
    if (!int8) {
        st = annotate(m->g, pool, &annotated, err);
        if (st != QS_OK)
            goto fail;
    }
    if (int8 && !annotated) {
        st = qs_error_set(err, QS_ERR_UNSUPPORTED, "model", "int8 variants need fixed input "
                          "dimensions except the batch");
        goto fail;
    }
    /* The int8 operators exist only in NHWC form: int8 variants always get the layout pass. */
    if (annotated && (opts->optimize == QS_OPTIMIZE_ALL || int8 || dynamic)) {
        /* Fusion makes ConvNHWC nodes that still read NCHW values: the layout pass must run
         * before shapes are inferred again. */
        st = qs_pass_fuse_conv(m->g, !(flags & QS_LOAD_NO_RESIDUAL_FUSION), err);
        if (st == QS_OK)
            st = qs_pass_layout(m->g, err);
        if (st == QS_OK)
            st = annotate(m->g, pool, &annotated, err);
        if (st != QS_OK)
            goto fail;
    }
    if (dynamic) {
        st = qs_pass_dynamic(m->g, opts->quant, err);
        if (st == QS_OK)
            st = annotate(m->g, pool, &annotated, err);
        if (st != QS_OK)
            goto fail;
    }
    for (size_t i = 0; i < m->g->n_nodes; i++) {
        qs_node *n = &m->g->nodes[i];
        if (n->op->prepare) {
            st = n->op->prepare(m->g, n, err);
            if (st != QS_OK)
                goto fail;
        }
    }
    for (size_t i = 0; i < m->g->n_inputs; i++) {
        const qs_value *v = m->g->values[m->g->inputs[i]];
        if (v->rank > 0 && v->dims[0] < 0)
            m->dynamic_batch = true;
    }
    compute_info(m);
    if (getenv("QUANTSERVE_DUMP_GRAPH"))
        dump_graph(m->g);
    qs_threadpool_free(pool);
    *out = m;
    return QS_OK;
fail:
    qs_threadpool_free(pool);
    qs_model_free(m);
    return st;
}

qs_status qs_model_load_internal(const void *data, size_t size, const qs_model_options *opts,
                                 uint32_t flags, qs_model **out, qs_error *err) {
    return model_load(data, size, NULL, opts, flags, out, err);
}

/* The directory part of path ("." for a bare file name); malloc'ed, NULL when out of memory. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, path, len);
        d[len] = '\0';
    }
    return d;
}

qs_status qs_model_load_file(const char *path, const qs_model_options *opts, qs_model **out,
                             qs_error *err) {
    qs_status st;
    FILE *f = NULL;
    uint8_t *buf = NULL;
    char *dir = NULL;
    struct stat sb;

    if (!path || !out)
        return qs_error_set(err, QS_ERR_INVALID_ARGUMENT, "model", "path or out is NULL");
    *out = NULL;
    f = fopen(path, "rb");
    if (!f)
        return qs_error_set(err, QS_ERR_IO, path, "cannot open: %s", strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = qs_error_set(err, QS_ERR_IO, path, "not a regular file");
        goto cleanup;
    }
    if ((uint64_t)sb.st_size > QS_MAX_MODEL_BYTES) {
        st = qs_error_set(err, QS_ERR_UNSUPPORTED, path, "file is larger than 2 GiB");
        goto cleanup;
    }
    size_t size = (size_t)sb.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, path, "out of memory reading %zu bytes", size);
        goto cleanup;
    }
    if (size && fread(buf, 1, size, f) != size) {
        st = qs_error_set(err, QS_ERR_IO, path, "read failed");
        goto cleanup;
    }
    dir = dir_of(path);
    if (!dir) {
        st = qs_error_set(err, QS_ERR_NO_MEMORY, path, "out of memory");
        goto cleanup;
    }
    st = model_load(buf, size, dir, opts, 0, out, err);
cleanup:
    free(dir);
    free(buf);
    fclose(f);
    return st;
}

void qs_model_free(qs_model *model) {
    if (!model)
        return;
    qs_graph_free(model->g);
    free(model);
}

size_t qs_model_input_count(const qs_model *model) { return model->g->n_inputs; }
size_t qs_model_output_count(const qs_model *model) { return model->g->n_outputs; }

static void describe(const qs_value *v, const char **name, qs_tensor *desc) {
    if (name)
        *name = v->name;
    if (desc) {
        memset(desc, 0, sizeof(*desc));
        desc->dtype = v->dtype;
        desc->rank = v->rank;
        for (int32_t i = 0; i < v->rank; i++)
            desc->dims[i] = v->dims[i];
    }
}

qs_status qs_model_input(const qs_model *model, size_t i, const char **name, qs_tensor *desc) {
    if (!model || i >= model->g->n_inputs)
        return QS_ERR_INVALID_ARGUMENT;
    describe(model->g->values[model->g->inputs[i]], name, desc);
    return QS_OK;
}

qs_status qs_model_output(const qs_model *model, size_t i, const char **name, qs_tensor *desc) {
    if (!model || i >= model->g->n_outputs)
        return QS_ERR_INVALID_ARGUMENT;
    describe(model->g->values[model->g->outputs[i]], name, desc);
    /* Annotation ran with batch 1: report the declared dynamic batch as dynamic. */
    if (desc && model->dynamic_batch && desc->rank > 0)
        desc->dims[0] = -1;
    return QS_OK;
}

void qs_model_get_info(const qs_model *model, qs_model_info *info) { *info = model->info; }
