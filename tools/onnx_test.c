/* quantserve-onnx-test: run ONNX backend test cases (model.onnx + test_data_set_N) on the engine. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx.pb-c.h"
#include "quantserve/engine.h"

#define RTOL 1e-3
#define ATOL 1e-5
#define MAX_TENSORS 64
#define MAX_DATA_SETS 64

typedef enum { RESULT_PASS = 0, RESULT_FAIL, RESULT_SKIP } case_result;

typedef struct {
    bool quiet;
    int32_t threads;
    bool no_optimize;
    const char *root; /* prefix for relative case paths */
} options;

/* A tensor read from a TensorProto file: name (may be empty) and owned data. */
typedef struct {
    char *name;
    qs_tensor t;
} test_tensor;

typedef struct {
    size_t n_inputs, n_outputs;
    char *inputs[MAX_TENSORS];  /* graph inputs that are not initializers, in order */
    char *outputs[MAX_TENSORS];
} model_names;

static void tensor_free(test_tensor *t) {
    free(t->name);
    free(t->t.data);
    memset(t, 0, sizeof(*t));
}

static void names_free(model_names *m) {
    for (size_t i = 0; i < m->n_inputs; i++)
        free(m->inputs[i]);
    for (size_t i = 0; i < m->n_outputs; i++)
        free(m->outputs[i]);
    memset(m, 0, sizeof(*m));
}

static void set_msg(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *msg, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

/* Whole file into a malloc'd buffer; false with errno on failure. */
static bool read_file(const char *path, uint8_t **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL)
        return false;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            uint8_t *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return false;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool ok = !ferror(f);
    fclose(f);
    if (!ok) {
        free(buf);
        return false;
    }
    *data = buf;
    *size = len;
    return true;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Element types the engine runs (float16, bfloat16, strings, ... are not among them). */
static bool dtype_known(int32_t dt) {
    return dt == QS_DTYPE_FLOAT32 || dt == QS_DTYPE_FLOAT64 || dt == QS_DTYPE_BOOL ||
           (dt >= QS_DTYPE_UINT8 && dt <= QS_DTYPE_INT64) || dt == QS_DTYPE_UINT32 ||
           dt == QS_DTYPE_UINT64;
}

/* Graph inputs and outputs must be tensors of a known type: sequences, optionals, maps and
 * float16 data would be misread as tensors. */
static bool value_info_ok(const Onnx__ValueInfoProto *vi, char *msg, size_t msg_size) {
    const Onnx__TypeProto *t = vi->type;
    if (t == NULL || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
        t->tensor_type == NULL) {
        set_msg(msg, msg_size, "graph value \"%s\" is not a tensor (sequence, optional or map)",
                vi->name ? vi->name : "");
        return false;
    }
    if (t->tensor_type->has_elem_type && !dtype_known(t->tensor_type->elem_type)) {
        set_msg(msg, msg_size, "graph value \"%s\" has ONNX type %d, not supported",
                vi->name ? vi->name : "", (int)t->tensor_type->elem_type);
        return false;
    }
    return true;
}

/* Decode a TensorProto into t. Returns RESULT_PASS, or SKIP for element types we do not run
 * (float16, strings, ...), or FAIL for a broken file; msg says why. */
static case_result tensor_load(const char *path, test_tensor *out, char *msg, size_t msg_size) {
    uint8_t *buf = NULL;
    size_t len = 0;
    case_result res = RESULT_FAIL;
    Onnx__TensorProto *tp = NULL;

    memset(out, 0, sizeof(*out));
    if (!read_file(path, &buf, &len)) {
        set_msg(msg, msg_size, "cannot read %s: %s", path, strerror(errno));
        return RESULT_FAIL;
    }
    tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (tp == NULL) {
        set_msg(msg, msg_size, "%s is not a TensorProto", path);
        goto cleanup;
    }
    qs_dtype dt = (qs_dtype)tp->data_type;
    size_t es = qs_dtype_size(dt);
    if (es == 0 || !dtype_known(tp->data_type)) {
        set_msg(msg, msg_size, "test data of ONNX type %d is not supported", (int)tp->data_type);
        res = RESULT_SKIP;
        goto cleanup;
    }
    if (tp->n_dims > QS_MAX_RANK) {
        set_msg(msg, msg_size, "%s has rank %zu", path, tp->n_dims);
        goto cleanup;
    }
    size_t numel = 1;
    out->t.dtype = dt;
    out->t.rank = (int32_t)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0 || __builtin_mul_overflow(numel, (size_t)tp->dims[i], &numel)) {
            set_msg(msg, msg_size, "%s has a bad shape", path);
            goto cleanup;
        }
        out->t.dims[i] = tp->dims[i];
    }
    size_t bytes;
    if (__builtin_mul_overflow(numel, es, &bytes)) {
        set_msg(msg, msg_size, "%s is too large", path);
        goto cleanup;
    }
    out->t.data = calloc(bytes ? bytes : 1, 1);
    out->name = strdup(tp->name ? tp->name : "");
    if (out->t.data == NULL || out->name == NULL) {
        set_msg(msg, msg_size, "out of memory");
        goto cleanup;
    }
    size_t have;
    if (tp->has_raw_data) {
        have = tp->raw_data.len;
        if (have == bytes && bytes > 0)
            memcpy(out->t.data, tp->raw_data.data, bytes);
    } else {
        switch (dt) {
        case QS_DTYPE_FLOAT32:
            have = tp->n_float_data * es;
            if (tp->n_float_data == numel && bytes > 0)
                memcpy(out->t.data, tp->float_data, bytes);
            break;
        case QS_DTYPE_FLOAT64:
            have = tp->n_double_data * es;
            if (tp->n_double_data == numel && bytes > 0)
                memcpy(out->t.data, tp->double_data, bytes);
            break;
        case QS_DTYPE_INT64:
            have = tp->n_int64_data * es;
            if (tp->n_int64_data == numel && bytes > 0)
                memcpy(out->t.data, tp->int64_data, bytes);
            break;
        case QS_DTYPE_UINT32:
        case QS_DTYPE_UINT64:
            have = tp->n_uint64_data * es;
            for (size_t i = 0; i < numel && tp->n_uint64_data == numel; i++) {
                if (dt == QS_DTYPE_UINT32)
                    ((uint32_t *)out->t.data)[i] = (uint32_t)tp->uint64_data[i];
                else
                    ((uint64_t *)out->t.data)[i] = tp->uint64_data[i];
            }
            break;
        default:
            /* int8/16/32, uint8/16 and bool are stored widened in int32_data */
            have = tp->n_int32_data * es;
            for (size_t i = 0; i < numel && tp->n_int32_data == numel; i++) {
                int32_t v = tp->int32_data[i];
                switch (dt) {
                case QS_DTYPE_INT32: ((int32_t *)out->t.data)[i] = v; break;
                case QS_DTYPE_INT16: ((int16_t *)out->t.data)[i] = (int16_t)v; break;
                case QS_DTYPE_UINT16: ((uint16_t *)out->t.data)[i] = (uint16_t)v; break;
                case QS_DTYPE_INT8: ((int8_t *)out->t.data)[i] = (int8_t)v; break;
                default: ((uint8_t *)out->t.data)[i] = (uint8_t)v; break;
                }
            }
            break;
        }
    }
    if (have != bytes) {
        set_msg(msg, msg_size, "%s holds %zu bytes of data, its shape needs %zu", path, have,
                bytes);
        goto cleanup;
    }
    res = RESULT_PASS;
cleanup:
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, NULL);
    free(buf);
    if (res != RESULT_PASS)
        tensor_free(out);
    return res;
}

/* Names of the real graph inputs (initializers excluded) and outputs, from model.onnx. */
static bool model_names_load(const char *path, model_names *m, bool *skip, char *msg,
                             size_t msg_size) {
    uint8_t *buf = NULL;
    size_t len = 0;
    bool ok = false;
    Onnx__ModelProto *mp = NULL;
    memset(m, 0, sizeof(*m));
    if (!read_file(path, &buf, &len)) {
        set_msg(msg, msg_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    mp = onnx__model_proto__unpack(NULL, len, buf);
    if (mp == NULL || mp->graph == NULL) {
        set_msg(msg, msg_size, "%s is not an ONNX model", path);
        goto cleanup;
    }
    const Onnx__GraphProto *g = mp->graph;
    *skip = false;
    for (size_t i = 0; i < g->n_input && !*skip; i++)
        *skip = !value_info_ok(g->input[i], msg, msg_size);
    for (size_t i = 0; i < g->n_output && !*skip; i++)
        *skip = !value_info_ok(g->output[i], msg, msg_size);
    if (*skip)
        goto cleanup;
    for (size_t i = 0; i < g->n_input; i++) {
        bool init = false;
        for (size_t k = 0; k < g->n_initializer && !init; k++)
            init = g->initializer[k]->name && g->input[i]->name &&
                   strcmp(g->initializer[k]->name, g->input[i]->name) == 0;
        if (init)
            continue;
        if (m->n_inputs == MAX_TENSORS) {
            set_msg(msg, msg_size, "too many inputs");
            goto cleanup;
        }
        m->inputs[m->n_inputs] = strdup(g->input[i]->name ? g->input[i]->name : "");
        if (m->inputs[m->n_inputs++] == NULL) {
            set_msg(msg, msg_size, "out of memory");
            goto cleanup;
        }
    }
    for (size_t i = 0; i < g->n_output; i++) {
        if (m->n_outputs == MAX_TENSORS) {
            set_msg(msg, msg_size, "too many outputs");
            goto cleanup;
        }
        m->outputs[m->n_outputs] = strdup(g->output[i]->name ? g->output[i]->name : "");
        if (m->outputs[m->n_outputs++] == NULL) {
            set_msg(msg, msg_size, "out of memory");
            goto cleanup;
        }
    }
    ok = true;
cleanup:
    if (mp)
        onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    if (!ok)
        names_free(m);
    return ok;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* test_data_set_* subdirectories, sorted. */
static size_t data_sets_list(const char *dir, char **sets, size_t max) {
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        if (strncmp(e->d_name, "test_data_set_", 14) != 0)
            continue;
        sets[n] = strdup(e->d_name);
        if (sets[n])
            n++;
    }
    closedir(d);
    qsort(sets, n, sizeof(*sets), cmp_str);
    return n;
}

static double elem_double(const qs_tensor *t, size_t i) {
    switch (t->dtype) {
    case QS_DTYPE_FLOAT32: return (double)((const float *)t->data)[i];
    case QS_DTYPE_FLOAT64: return ((const double *)t->data)[i];
    case QS_DTYPE_INT8: return ((const int8_t *)t->data)[i];
    case QS_DTYPE_UINT8: case QS_DTYPE_BOOL: return ((const uint8_t *)t->data)[i];
    case QS_DTYPE_INT16: return ((const int16_t *)t->data)[i];
    case QS_DTYPE_UINT16: return ((const uint16_t *)t->data)[i];
    case QS_DTYPE_INT32: return ((const int32_t *)t->data)[i];
    case QS_DTYPE_UINT32: return ((const uint32_t *)t->data)[i];
    case QS_DTYPE_INT64: return (double)((const int64_t *)t->data)[i];
    case QS_DTYPE_UINT64: return (double)((const uint64_t *)t->data)[i];
    default: return NAN;
    }
}

static void dims_string(const qs_tensor *t, char *buf, size_t size) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, size - pos, "[");
    for (int32_t i = 0; i < t->rank && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%lld", i ? "," : "",
                                (long long)t->dims[i]);
    if (pos < size)
        snprintf(buf + pos, size - pos, "]");
}

/* Compare output k; false with a message naming the worst element. */
static bool output_compare(size_t k, const qs_tensor *got, const qs_tensor *exp, char *msg,
                           size_t msg_size) {
    if (got->dtype != exp->dtype) {
        set_msg(msg, msg_size, "output %zu: type %s, expected %s", k, qs_dtype_name(got->dtype),
                qs_dtype_name(exp->dtype));
        return false;
    }
    bool same = got->rank == exp->rank;
    for (int32_t i = 0; same && i < got->rank; i++)
        same = got->dims[i] == exp->dims[i];
    if (!same) {
        char a[128], b[128];
        dims_string(got, a, sizeof(a));
        dims_string(exp, b, sizeof(b));
        set_msg(msg, msg_size, "output %zu: shape %s, expected %s", k, a, b);
        return false;
    }
    size_t numel = qs_tensor_numel(exp);
    bool is_float = exp->dtype == QS_DTYPE_FLOAT32 || exp->dtype == QS_DTYPE_FLOAT64;
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < numel; i++) {
        double a, b, score;
        if (exp->dtype == QS_DTYPE_INT64 || exp->dtype == QS_DTYPE_UINT64) {
            /* exact, without going through double */
            bool eq = ((const int64_t *)got->data)[i] == ((const int64_t *)exp->data)[i];
            score = eq ? 0.0 : HUGE_VAL;
        } else {
            a = elem_double(got, i);
            b = elem_double(exp, i);
            if (!is_float) {
                score = a == b ? 0.0 : HUGE_VAL;
            } else if (isnan(b) || isnan(a)) {
                score = isnan(a) && isnan(b) ? 0.0 : HUGE_VAL;
            } else if (isinf(b) || isinf(a)) {
                score = a == b ? 0.0 : HUGE_VAL;
            } else {
                score = fabs(a - b) / (ATOL + RTOL * fabs(b));
            }
        }
        if (score > worst) {
            worst = score;
            worst_i = i;
        }
    }
    if (worst <= 1.0)
        return true;
    if (exp->dtype == QS_DTYPE_INT64)
        set_msg(msg, msg_size, "output %zu element %zu: got %lld expected %lld", k, worst_i,
                (long long)((const int64_t *)got->data)[worst_i],
                (long long)((const int64_t *)exp->data)[worst_i]);
    else if (exp->dtype == QS_DTYPE_UINT64)
        set_msg(msg, msg_size, "output %zu element %zu: got %llu expected %llu", k, worst_i,
                (unsigned long long)((const uint64_t *)got->data)[worst_i],
                (unsigned long long)((const uint64_t *)exp->data)[worst_i]);
    else
        set_msg(msg, msg_size, "output %zu element %zu: got %.9g expected %.9g", k, worst_i,
                elem_double(got, worst_i), elem_double(exp, worst_i));
    return false;
}

static void error_text(const qs_error *err, char *msg, size_t size) {
    if (err->where[0])
        set_msg(msg, size, "%s: %s", err->where, err->message);
    else
        set_msg(msg, size, "%s: %s", qs_status_to_string(err->status), err->message);
}

/* Load the data set's inputs; input k without a name takes the k-th graph input's name. */
static case_result inputs_load(const char *set_dir, const model_names *names, test_tensor *ins,
                               size_t *n_ins, char *msg, size_t msg_size) {
    char path[4096 + 64];
    *n_ins = 0;
    for (size_t k = 0; k < MAX_TENSORS; k++) {
        snprintf(path, sizeof(path), "%s/input_%zu.pb", set_dir, k);
        if (!file_exists(path))
            break;
        case_result r = tensor_load(path, &ins[k], msg, msg_size);
        if (r != RESULT_PASS)
            return r;
        *n_ins = k + 1;
        if (ins[k].name[0] == '\0' && k < names->n_inputs) {
            free(ins[k].name);
            ins[k].name = strdup(names->inputs[k]);
            if (ins[k].name == NULL) {
                set_msg(msg, msg_size, "out of memory");
                return RESULT_FAIL;
            }
        }
    }
    return RESULT_PASS;
}

/* Run one data set on a freshly loaded model. */
static case_result data_set_run(const options *opt, const char *case_dir, const char *set_dir,
                                const model_names *names, char *msg, size_t msg_size) {
    test_tensor ins[MAX_TENSORS], exp;
    size_t n_ins = 0;
    const char *frozen_names[MAX_TENSORS];
    qs_tensor frozen[MAX_TENSORS], run_in[MAX_TENSORS];
    size_t n_frozen = 0;
    qs_model *model = NULL;
    qs_session *session = NULL;
    qs_error err;
    char path[4096 + 64];
    case_result res = RESULT_FAIL;

    memset(ins, 0, sizeof(ins));
    memset(&exp, 0, sizeof(exp));
    res = inputs_load(set_dir, names, ins, &n_ins, msg, msg_size);
    if (res != RESULT_PASS)
        goto cleanup;
    res = RESULT_FAIL;
    /* non-float inputs (shape tensors, indices, ...) become constants at load */
    for (size_t k = 0; k < n_ins; k++) {
        if (ins[k].t.dtype == QS_DTYPE_FLOAT32)
            continue;
        frozen_names[n_frozen] = ins[k].name;
        frozen[n_frozen++] = ins[k].t;
    }
    qs_model_options mopts;
    qs_model_options_init(&mopts);
    mopts.optimize = opt->no_optimize ? QS_OPTIMIZE_NONE : QS_OPTIMIZE_ALL;
    mopts.frozen_input_names = frozen_names;
    mopts.frozen_inputs = frozen;
    mopts.frozen_input_count = n_frozen;
    snprintf(path, sizeof(path), "%s/model.onnx", case_dir);
    qs_error_clear(&err);
    qs_status st = qs_model_load_file(path, &mopts, &model, &err);
    if (st != QS_OK) {
        error_text(&err, msg, msg_size);
        res = st == QS_ERR_UNSUPPORTED ? RESULT_SKIP : RESULT_FAIL;
        goto cleanup;
    }
    size_t n_model_in = qs_model_input_count(model);
    if (n_model_in > MAX_TENSORS) {
        set_msg(msg, msg_size, "too many inputs");
        goto cleanup;
    }
    for (size_t i = 0; i < n_model_in; i++) {
        const char *name = NULL;
        qs_tensor desc;
        size_t k;
        qs_model_input(model, i, &name, &desc);
        for (k = 0; k < n_ins; k++)
            if (strcmp(ins[k].name, name) == 0)
                break;
        if (k == n_ins) {
            set_msg(msg, msg_size, "no test data for model input \"%s\"", name);
            goto cleanup;
        }
        run_in[i] = ins[k].t;
    }
    qs_session_options sopts;
    qs_session_options_init(&sopts);
    sopts.threads = opt->threads;
    qs_error_clear(&err);
    st = qs_session_create(model, &sopts, &session, &err);
    if (st == QS_OK)
        st = qs_session_run(session, run_in, n_model_in, &err);
    if (st != QS_OK) {
        error_text(&err, msg, msg_size);
        res = st == QS_ERR_UNSUPPORTED ? RESULT_SKIP : RESULT_FAIL;
        goto cleanup;
    }
    size_t n_model_out = qs_model_output_count(model);
    for (size_t k = 0;; k++) {
        snprintf(path, sizeof(path), "%s/output_%zu.pb", set_dir, k);
        if (!file_exists(path))
            break;
        res = tensor_load(path, &exp, msg, msg_size);
        if (res != RESULT_PASS)
            goto cleanup;
        res = RESULT_FAIL;
        /* by name when the file has one, else by position */
        const char *want = exp.name[0] ? exp.name : (k < names->n_outputs ? names->outputs[k] : "");
        size_t oi = n_model_out;
        for (size_t i = 0; i < n_model_out; i++) {
            const char *name = NULL;
            qs_model_output(model, i, &name, NULL);
            if (name && strcmp(name, want) == 0)
                oi = i;
        }
        if (oi == n_model_out && k < n_model_out)
            oi = k;
        qs_tensor got;
        if (oi == n_model_out || qs_session_output(session, oi, &got) != QS_OK) {
            set_msg(msg, msg_size, "output %zu (\"%s\") is missing", k, want);
            goto cleanup;
        }
        if (!output_compare(k, &got, &exp.t, msg, msg_size))
            goto cleanup;
        tensor_free(&exp);
    }
    res = RESULT_PASS;
cleanup:
    tensor_free(&exp);
    for (size_t k = 0; k < n_ins; k++)
        tensor_free(&ins[k]);
    qs_session_free(session);
    qs_model_free(model);
    return res;
}

static case_result case_run(const options *opt, const char *dir, char *msg, size_t msg_size) {
    model_names names;
    char *sets[MAX_DATA_SETS];
    char path[4096];
    case_result res = RESULT_PASS;
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    bool skip = false;
    if (!model_names_load(path, &names, &skip, msg, msg_size))
        return skip ? RESULT_SKIP : RESULT_FAIL;
    size_t n_sets = data_sets_list(dir, sets, MAX_DATA_SETS);
    if (n_sets == 0) {
        set_msg(msg, msg_size, "no test_data_set_* in %s", dir);
        res = RESULT_FAIL;
    }
    for (size_t s = 0; s < n_sets && res == RESULT_PASS; s++) {
        char set_dir[4096];
        snprintf(set_dir, sizeof(set_dir), "%s/%s", dir, sets[s]);
        res = data_set_run(opt, dir, set_dir, &names, msg, msg_size);
        if (res == RESULT_FAIL && n_sets > 1) {
            /* name the data set in the message */
            char tmp[1024];
            snprintf(tmp, sizeof(tmp), "%s: %s", sets[s], msg);
            snprintf(msg, msg_size, "%s", tmp);
        }
    }
    for (size_t s = 0; s < n_sets; s++)
        free(sets[s]);
    names_free(&names);
    return res;
}

static const char *base_name(const char *path) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    const char *p = path + len;
    while (p > path && p[-1] != '/')
        p--;
    return p;
}

typedef struct {
    size_t passed, failed, skipped;
} summary;

static void case_report(const options *opt, const char *path, summary *sum) {
    char msg[1024] = "";
    char name[512];
    const char *b = base_name(path);
    size_t len = strcspn(b, "/");
    snprintf(name, sizeof(name), "%.*s", (int)len, b);
    case_result r = case_run(opt, path, msg, sizeof(msg));
    switch (r) {
    case RESULT_PASS:
        sum->passed++;
        if (!opt->quiet)
            printf("PASS %s\n", name);
        break;
    case RESULT_SKIP:
        sum->skipped++;
        if (!opt->quiet)
            printf("SKIP %s: %s\n", name, msg);
        break;
    default:
        sum->failed++;
        printf("FAIL %s: %s\n", name, msg);
        break;
    }
    fflush(stdout);
}

static void case_path(const options *opt, const char *entry, char *out, size_t size) {
    if (opt->root && entry[0] != '/')
        snprintf(out, size, "%s/%s", opt->root, entry);
    else
        snprintf(out, size, "%s", entry);
}

/* Each non-empty line of the list, minus comments and surrounding blanks, is a case dir. */
static bool list_run(const options *opt, const char *list, summary *sum) {
    FILE *f = fopen(list, "r");
    char line[4096], path[8192];
    if (f == NULL) {
        fprintf(stderr, "quantserve-onnx-test: cannot open %s: %s\n", list, strerror(errno));
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line;
        line[strcspn(line, "#\r\n")] = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            p[--len] = '\0';
        if (len == 0)
            continue;
        case_path(opt, p, path, sizeof(path));
        case_report(opt, path, sum);
    }
    fclose(f);
    return true;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: quantserve-onnx-test [options] [CASE_DIR...]\n"
            "\n"
            "Runs ONNX backend test cases: CASE_DIR holds model.onnx and test_data_set_N/ with\n"
            "input_K.pb and output_K.pb TensorProtos. Every output is compared with\n"
            "|got - expected| <= 1e-5 + 1e-3 * |expected| (floats; NaN matches NaN) or exactly\n"
            "(integers and bools); shapes and types must match.\n"
            "\n"
            "Inputs whose type is not float32 (shape tensors, indices, axes, ...) are frozen at\n"
            "load time (qs_model_options.frozen_input_*): they become constants, so they fold like\n"
            "initializers. The model is loaded once per data set.\n"
            "\n"
            "Prints PASS/FAIL/SKIP per case (SKIP: the engine reports the model unsupported) and\n"
            "a final 'N passed, M failed, K skipped'. Exit status 1 when any case fails.\n"
            "\n"
            "options:\n"
            "  --list FILE    read case dirs from FILE, one per line ('#' starts a comment)\n"
            "  --root DIR     prefix for relative case dirs (given or listed)\n"
            "  --quiet        print only failures and the summary\n"
            "  --threads N    intra-op threads per session (default 1)\n"
            "  --no-optimize  load with QS_OPTIMIZE_NONE (reference kernels only)\n"
            "  --help         this text\n");
}

int main(int argc, char **argv) {
    options opt = {false, 1, false, NULL};
    summary sum = {0, 0, 0};
    const char *lists[64];
    size_t n_lists = 0;
    int first_case = argc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opt.quiet = true;
        } else if (strcmp(a, "--no-optimize") == 0) {
            opt.no_optimize = true;
        } else if ((strcmp(a, "--list") == 0 || strcmp(a, "--root") == 0 ||
                    strcmp(a, "--threads") == 0) && i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(a, "--list") == 0) {
                if (n_lists == sizeof(lists) / sizeof(lists[0])) {
                    fprintf(stderr, "quantserve-onnx-test: too many --list options\n");
                    return 2;
                }
                lists[n_lists++] = v;
            } else if (strcmp(a, "--root") == 0) {
                opt.root = v;
            } else {
                char *end;
                long t = strtol(v, &end, 10);
                if (*end != '\0' || t < 1 || t > 256) {
                    fprintf(stderr, "quantserve-onnx-test: bad --threads %s\n", v);
                    return 2;
                }
                opt.threads = (int32_t)t;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "quantserve-onnx-test: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else {
            first_case = i;
            break;
        }
    }
    if (n_lists == 0 && first_case == argc) {
        usage(stderr);
        return 2;
    }
    for (size_t l = 0; l < n_lists; l++)
        if (!list_run(&opt, lists[l], &sum))
            return 2;
    for (int i = first_case; i < argc; i++) {
        char path[8192];
        case_path(&opt, argv[i], path, sizeof(path));
        case_report(&opt, path, &sum);
    }
    printf("%zu passed, %zu failed, %zu skipped\n", sum.passed, sum.failed, sum.skipped);
    return sum.failed ? 1 : 0;
}
