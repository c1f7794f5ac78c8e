/* Status codes, the caller-provided error struct, and small public helpers (dtypes, tensors). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "core/graph.h"

static const char *const status_codes[QS_STATUS_COUNT] = {
#define QS_STATUS_STRING(name, code) code,
    QS_STATUS_LIST(QS_STATUS_STRING)
#undef QS_STATUS_STRING
};

const char *qs_status_to_string(qs_status status) {
    if ((unsigned)status >= QS_STATUS_COUNT)
        return "unknown";
    return status_codes[status];
}

void qs_error_clear(qs_error *err) {
    if (err)
        memset(err, 0, sizeof(*err));
}

static qs_status error_vset(qs_error *err, qs_status status, const char *where, const char *fmt,
                            va_list ap) {
    if (!err || err->status != QS_OK)
        return status;
    err->status = status;
    snprintf(err->where, sizeof(err->where), "%s", where ? where : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    return status;
}

qs_status qs_error_set(qs_error *err, qs_status status, const char *where, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, status, where, fmt, ap);
    va_end(ap);
    return status;
}

qs_status qs_node_error(qs_error *err, qs_status status, const qs_node *n, const char *fmt, ...) {
    char where[160];
    va_list ap;
    snprintf(where, sizeof(where), "node \"%s\" (%s)", n && n->name ? n->name : "?",
             n && n->op_type ? n->op_type : "?");
    va_start(ap, fmt);
    error_vset(err, status, where, fmt, ap);
    va_end(ap);
    return status;
}

typedef struct {
    const char *name;
    size_t size;
} dtype_traits;

static const dtype_traits dtype_table[] = {
    [QS_DTYPE_FLOAT32] = {"float32", 4}, [QS_DTYPE_UINT8] = {"uint8", 1},
    [QS_DTYPE_INT8] = {"int8", 1},       [QS_DTYPE_UINT16] = {"uint16", 2},
    [QS_DTYPE_INT16] = {"int16", 2},     [QS_DTYPE_INT32] = {"int32", 4},
    [QS_DTYPE_INT64] = {"int64", 8},     [QS_DTYPE_BOOL] = {"bool", 1},
    [QS_DTYPE_FLOAT16] = {"float16", 2}, [QS_DTYPE_FLOAT64] = {"float64", 8},
    [QS_DTYPE_UINT32] = {"uint32", 4},   [QS_DTYPE_UINT64] = {"uint64", 8},
};

const char *qs_dtype_name(qs_dtype dtype) {
    if ((unsigned)dtype >= sizeof(dtype_table) / sizeof(dtype_table[0]) || !dtype_table[dtype].name)
        return "undefined";
    return dtype_table[dtype].name;
}

size_t qs_dtype_size(qs_dtype dtype) {
    if ((unsigned)dtype >= sizeof(dtype_table) / sizeof(dtype_table[0]))
        return 0;
    return dtype_table[dtype].size;
}

size_t qs_tensor_numel(const qs_tensor *t) {
    size_t n = 1;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 || !qs_mul_size(n, (size_t)t->dims[i], &n))
            return 0;
    }
    return n;
}

const char *qs_engine_version(void) { return PACKAGE_VERSION; }
