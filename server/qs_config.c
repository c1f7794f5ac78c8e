/* Configuration loading: JSON checked key by key against declarative tables (type, bounds, default). */
#include "qs_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- enum names ---------------------------------------------------------------------------- */

static const char *const mode_names[] = {
#define QS_NAME(name, text) [name] = text,
    QS_VARIANT_MODE_LIST(QS_NAME)
};
static const char *const observer_names[] = {QS_CFG_OBSERVER_LIST(QS_NAME)};
static const char *const color_names[] = {QS_COLOR_LIST(QS_NAME)};
static const char *const resize_names[] = {QS_RESIZE_LIST(QS_NAME)};
static const char *const interp_names[] = {QS_INTERP_LIST(QS_NAME)};
static const char *const layout_names[] = {QS_LAYOUT_LIST(QS_NAME)};
static const char *const level_names[] = {
#define QS_LEVEL_NAME(name, text) [name] = text,
    QS_LOG_LEVEL_LIST(QS_LEVEL_NAME)
#undef QS_LEVEL_NAME
};
#undef QS_NAME

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *enum_name(const char *const *names, size_t count, int value)
{
    if (value < 0 || (size_t)value >= count)
        return "?";
    return names[value];
}

const char *qs_variant_mode_to_string(qs_variant_mode mode)
{
    return enum_name(mode_names, COUNT_OF(mode_names), (int)mode);
}
const char *qs_cfg_observer_to_string(qs_cfg_observer observer)
{
    return enum_name(observer_names, COUNT_OF(observer_names), (int)observer);
}
const char *qs_color_to_string(qs_color color)
{
    return enum_name(color_names, COUNT_OF(color_names), (int)color);
}
const char *qs_resize_mode_to_string(qs_resize_mode mode)
{
    return enum_name(resize_names, COUNT_OF(resize_names), (int)mode);
}
const char *qs_interp_to_string(qs_interp interp)
{
    return enum_name(interp_names, COUNT_OF(interp_names), (int)interp);
}
const char *qs_layout_to_string(qs_layout layout)
{
    return enum_name(layout_names, COUNT_OF(layout_names), (int)layout);
}

int32_t qs_preprocess_config_channels(const qs_preprocess_config *pre)
{
    return pre->color == QS_COLOR_GRAY ? 1 : 3;
}

void qs_preprocess_config_output_size(const qs_preprocess_config *pre, int32_t *width,
                                      int32_t *height)
{
    if (pre->crop) {
        *width = pre->crop_width;
        *height = pre->crop_height;
    } else if (pre->resize_mode == QS_RESIZE_EXACT) {
        *width = pre->resize_width;
        *height = pre->resize_height;
    } else {
        *width = 0;
        *height = 0;
    }
}

/* ---- the declarative field tables ------------------------------------------------------------ */

typedef enum { F_I32, F_I64, F_DOUBLE, F_BOOL, F_STRING, F_PATH, F_ENUM } field_type;

typedef struct {
    const char *key;
    field_type type;
    size_t offset;
    bool required;
    int64_t imin, imax, idef;      /* F_I32, F_I64, and F_BOOL's default (0/1) */
    double dmin, dmax, ddef;       /* F_DOUBLE */
    const char *sdef;              /* F_STRING and F_PATH default (NULL = none) */
    const char *const *names;      /* F_ENUM: value names, the value is the index */
    size_t name_count;
} cfg_field;

#define FIELD_I32(k, st, m, lo, hi, d) \
    {.key = k, .type = F_I32, .offset = offsetof(st, m), .imin = lo, .imax = hi, .idef = d}
#define FIELD_I64(k, st, m, lo, hi, d) \
    {.key = k, .type = F_I64, .offset = offsetof(st, m), .imin = lo, .imax = hi, .idef = d}
#define FIELD_DOUBLE(k, st, m, lo, hi, d) \
    {.key = k, .type = F_DOUBLE, .offset = offsetof(st, m), .dmin = lo, .dmax = hi, .ddef = d}
#define FIELD_BOOL(k, st, m, d) {.key = k, .type = F_BOOL, .offset = offsetof(st, m), .idef = d}
#define FIELD_STRING(k, st, m, d) {.key = k, .type = F_STRING, .offset = offsetof(st, m), .sdef = d}
#define FIELD_PATH(k, st, m, req) \
    {.key = k, .type = F_PATH, .offset = offsetof(st, m), .required = req}
#define FIELD_ENUM(k, st, m, nm, d)                                                            \
    {.key = k, .type = F_ENUM, .offset = offsetof(st, m), .names = nm,                       \
     .name_count = COUNT_OF(nm), .idef = d}

static const cfg_field server_fields[] = {
    FIELD_STRING("listen", qs_config, server.listen, "127.0.0.1"),
    FIELD_I32("port", qs_config, server.port, 0, 65535, 8080),
    FIELD_I32("http_threads", qs_config, server.http_threads, 1, 64, 2),
    FIELD_I32("max_connections", qs_config, server.max_connections, 1, 65536, 256),
    FIELD_I32("connection_timeout_s", qs_config, server.connection_timeout_s, 1, 3600, 30),
    FIELD_I32("shutdown_timeout_s", qs_config, server.shutdown_timeout_s, 0, 3600, 30),
};

static const cfg_field workers_fields[] = {
    FIELD_I32("count", qs_config, workers.count, 1, 64, 1),
    FIELD_I32("intra_op_threads", qs_config, workers.intra_op_threads, 0, 256, 0),
};

static const cfg_field limits_fields[] = {
    FIELD_I64("max_body_bytes", qs_config, limits.max_body_bytes, 64, INT64_C(1) << 30,
              INT64_C(10) << 20),
    FIELD_I64("max_image_pixels", qs_config, limits.max_image_pixels, 1, INT64_C(1) << 40,
              40000000),
    FIELD_I32("max_image_side", qs_config, limits.max_image_side, 1, 1000000, 20000),
    FIELD_I32("queue_depth", qs_config, limits.queue_depth, 1, 65536, 16),
    FIELD_I32("request_timeout_ms", qs_config, limits.request_timeout_ms, 1, 3600000, 30000),
};

static const cfg_field log_fields[] = {
    FIELD_ENUM("level", qs_config, log.level, level_names, QS_LOG_INFO),
    FIELD_BOOL("access", qs_config, log.access, 1),
};

static const cfg_field stats_fields[] = {
    FIELD_I32("window_s", qs_config, stats.window_s, 1, 3600, 60),
};

static const cfg_field cache_fields[] = {
    FIELD_BOOL("enabled", qs_config, cache.enabled, 1),
    FIELD_PATH("dir", qs_config, cache.dir, false),
};

static const cfg_field model_fields[] = {
    {.key = "name", .type = F_STRING, .offset = offsetof(qs_model_config, name), .required = true},
    FIELD_PATH("onnx", qs_model_config, onnx, true),
    FIELD_PATH("labels", qs_model_config, labels, false),
    FIELD_STRING("input", qs_model_config, input, NULL),
    FIELD_STRING("output", qs_model_config, output, NULL),
    FIELD_BOOL("softmax", qs_model_config, softmax, 1),
};
static const char *const model_custom[] = {"preprocess", "variants", "default_variant", NULL};

static const cfg_field preprocess_fields[] = {
    FIELD_ENUM("color", qs_preprocess_config, color, color_names, QS_COLOR_RGB),
    FIELD_ENUM("interpolation", qs_preprocess_config, interpolation, interp_names,
               QS_INTERP_BILINEAR),
    FIELD_DOUBLE("scale", qs_preprocess_config, scale, 1e-12, 1e12, 1.0 / 255.0),
    FIELD_ENUM("layout", qs_preprocess_config, layout, layout_names, QS_LAYOUT_NCHW),
};
static const char *const preprocess_custom[] = {"resize", "crop", "mean", "std", NULL};

static const cfg_field variant_fields[] = {
    {.key = "name", .type = F_STRING, .offset = offsetof(qs_variant_config, name),
     .required = true},
    FIELD_ENUM("mode", qs_variant_config, mode, mode_names, QS_MODE_FP32),
    FIELD_PATH("onnx", qs_variant_config, onnx, false),
    FIELD_ENUM("observer", qs_variant_config, observer, observer_names, QS_CFG_OBSERVER_MINMAX),
    FIELD_DOUBLE("percentile", qs_variant_config, percentile, 50.0, 100.0, 99.99),
    FIELD_DOUBLE("averaging_constant", qs_variant_config, averaging_constant, 1e-9, 1.0, 0.01),
    FIELD_BOOL("per_channel", qs_variant_config, per_channel, 1),
    FIELD_BOOL("symmetric_activations", qs_variant_config, symmetric_activations, 0),
    FIELD_BOOL("signed_activations", qs_variant_config, signed_activations, 0),
    FIELD_BOOL("reduce_range", qs_variant_config, reduce_range, 1),
};
static const char *const variant_custom[] = {"calibration", "keep_fp32", "report", NULL};

static const cfg_field calibration_fields[] = {
    FIELD_PATH("images", qs_calibration_config, images, true),
    FIELD_I32("count", qs_calibration_config, count, 1, 100000, 100),
};

static const cfg_field report_fields[] = {
    FIELD_PATH("images", qs_calibration_config, images, false),
    FIELD_I32("count", qs_calibration_config, count, 1, 100000, 100),
};

/* Which int8 options each mode accepts (fp32 takes none of them). */
typedef struct {
    const char *key;
    bool allowed[QS_MODE_COUNT];
} mode_option;

static const mode_option mode_options[] = {
    {"observer", {[QS_MODE_STATIC] = true}},
    {"percentile", {[QS_MODE_STATIC] = true}},
    {"averaging_constant", {[QS_MODE_STATIC] = true}},
    {"calibration", {[QS_MODE_STATIC] = true}},
    {"per_channel", {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true}},
    {"symmetric_activations", {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true}},
    {"signed_activations", {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true}},
    {"reduce_range", {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true}},
    {"keep_fp32",
     {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true, [QS_MODE_QDQ] = true}},
    {"report", {[QS_MODE_STATIC] = true, [QS_MODE_DYNAMIC] = true, [QS_MODE_QDQ] = true}},
};

/* ---- parsing context and errors ------------------------------------------------------------- */

typedef struct {
    const char *dir;
    qs_config_error *err;
    qs_config_status status;
} parse_ctx;

__attribute__((format(printf, 4, 5))) static bool fail(parse_ctx *ctx, qs_config_status status,
                                                       const char *key, const char *fmt, ...)
{
    if (ctx->status != QS_CONFIG_OK)
        return false;
    ctx->status = status;
    if (ctx->err) {
        snprintf(ctx->err->key, sizeof ctx->err->key, "%s", key);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err->message, sizeof ctx->err->message, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool fail_oom(parse_ctx *ctx, const char *key)
{
    return fail(ctx, QS_CONFIG_ERR_NO_MEMORY, key, "out of memory");
}

/* Append s to buf (of `size` bytes, NUL-terminated), cutting what does not fit: a path longer
 * than the buffer only shortens messages. */
static void append_cut(char *buf, size_t size, const char *s)
{
    size_t used = strlen(buf), n = strlen(s);
    if (used + 1 >= size)
        return;
    if (n > size - used - 1)
        n = size - used - 1;
    memcpy(buf + used, s, n);
    buf[used + n] = '\0';
}

/* "parent.key" (or "key" at the top level) into buf. */
static void join_key(char *buf, size_t size, const char *parent, const char *key)
{
    buf[0] = '\0';
    append_cut(buf, size, parent);
    if (parent[0] != '\0')
        append_cut(buf, size, ".");
    append_cut(buf, size, key);
}

/* "parent[3]" into buf. */
static void join_index(char *buf, size_t size, const char *parent, size_t index)
{
    char idx[32];
    snprintf(idx, sizeof idx, "[%zu]", index);
    buf[0] = '\0';
    append_cut(buf, size, parent);
    append_cut(buf, size, idx);
}

static const char *json_type_name(const json_t *v)
{
    if (!v)
        return "nothing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/' || dir == NULL || dir[0] == '\0')
        return strdup(path);
    size_t a = strlen(dir), b = strlen(path);
    if (a > SIZE_MAX - b - 2)
        return NULL;
    char *out = malloc(a + b + 2);
    if (!out)
        return NULL;
    memcpy(out, dir, a);
    out[a] = '/';
    memcpy(out + a + 1, path, b + 1);
    return out;
}

static bool key_in(const char *key, const char *const *list)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

static const cfg_field *find_field(const cfg_field *fields, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

/* Keys starting with '_' are comments. Any other key must be in the table or in `custom`. */
static bool check_keys(parse_ctx *ctx, const json_t *obj, const char *path,
                       const cfg_field *fields, size_t n, const char *const *custom)
{
    const char *key;
    json_t *value;
    char kp[160];
    json_object_foreach((json_t *)obj, key, value) {
        if (key[0] == '_' || find_field(fields, n, key) || key_in(key, custom))
            continue;
        join_key(kp, sizeof kp, path, key);
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "unknown key");
    }
    return true;
}

static bool set_string(parse_ctx *ctx, const cfg_field *f, void *base, const char *value,
                       const char *kp)
{
    char **slot = (char **)((char *)base + f->offset);
    free(*slot);
    *slot = NULL;
    if (!value)
        return true;
    *slot = f->type == F_PATH ? resolve_path(ctx->dir, value) : strdup(value);
    if (!*slot)
        return fail_oom(ctx, kp);
    return true;
}

static bool set_default(parse_ctx *ctx, const cfg_field *f, void *base, const char *kp)
{
    void *p = (char *)base + f->offset;
    switch (f->type) {
    case F_I32: *(int32_t *)p = (int32_t)f->idef; return true;
    case F_I64: *(int64_t *)p = f->idef; return true;
    case F_DOUBLE: *(double *)p = f->ddef; return true;
    case F_BOOL: *(bool *)p = f->idef != 0; return true;
    case F_ENUM: *(int *)p = (int)f->idef; return true;
    case F_STRING:
    case F_PATH: return set_string(ctx, f, base, f->sdef, kp);
    }
    return true;
}

static bool parse_field(parse_ctx *ctx, const cfg_field *f, void *base, const json_t *v,
                        const char *kp)
{
    void *p = (char *)base + f->offset;
    switch (f->type) {
    case F_I32:
    case F_I64: {
        if (!json_is_integer(v))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an integer, got %s",
                        json_type_name(v));
        json_int_t x = json_integer_value(v);
        if (x < f->imin || x > f->imax)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                        "%lld is out of range: expected %lld..%lld", (long long)x,
                        (long long)f->imin, (long long)f->imax);
        if (f->type == F_I32)
            *(int32_t *)p = (int32_t)x;
        else
            *(int64_t *)p = (int64_t)x;
        return true;
    }
    case F_DOUBLE: {
        if (!json_is_number(v))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected a number, got %s",
                        json_type_name(v));
        double x = json_number_value(v);
        if (!(x >= f->dmin && x <= f->dmax))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%g is out of range: expected %g..%g",
                        x, f->dmin, f->dmax);
        *(double *)p = x;
        return true;
    }
    case F_BOOL:
        if (!json_is_boolean(v))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected true or false, got %s",
                        json_type_name(v));
        *(bool *)p = json_is_true(v);
        return true;
    case F_ENUM: {
        if (json_is_string(v)) {
            for (size_t i = 0; i < f->name_count; i++) {
                if (strcmp(json_string_value(v), f->names[i]) == 0) {
                    *(int *)p = (int)i;
                    return true;
                }
            }
        }
        char allowed[160] = "";
        size_t used = 0;
        for (size_t i = 0; i < f->name_count && used < sizeof allowed; i++) {
            int n = snprintf(allowed + used, sizeof allowed - used, "%s\"%s\"", i ? ", " : "",
                             f->names[i]);
            if (n > 0)
                used += (size_t)n;
        }
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected one of %s", allowed);
    }
    case F_STRING:
    case F_PATH:
        if (!json_is_string(v))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected a string, got %s",
                        json_type_name(v));
        if (json_string_length(v) == 0)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "must not be empty");
        if (strlen(json_string_value(v)) != json_string_length(v))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "must not contain NUL bytes");
        return set_string(ctx, f, base, json_string_value(v), kp);
    }
    return true;
}

/* Fill every field of the table from obj (a JSON object, or NULL for all defaults). */
static bool parse_fields(parse_ctx *ctx, const json_t *obj, const char *path,
                         const cfg_field *fields, size_t n, const char *const *custom, void *base)
{
    char kp[160];
    if (obj && !check_keys(ctx, obj, path, fields, n, custom))
        return false;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = obj ? json_object_get(obj, fields[i].key) : NULL;
        join_key(kp, sizeof kp, path, fields[i].key);
        if (!v || json_is_null(v)) {
            if (fields[i].required)
                return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "missing (required)");
            if (!set_default(ctx, &fields[i], base, kp))
                return false;
        } else if (!parse_field(ctx, &fields[i], base, v, kp)) {
            return false;
        }
    }
    return true;
}

/* Optional sub-object: absent or null gives the defaults. */
static const json_t *get_object(parse_ctx *ctx, const json_t *parent, const char *key,
                                const char *kp, bool *ok)
{
    const json_t *v = json_object_get(parent, key);
    *ok = true;
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        *ok = fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an object, got %s",
                   json_type_name(v));
        return NULL;
    }
    return v;
}

static bool valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > QS_CONFIG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static bool check_name(parse_ctx *ctx, const char *name, const char *path)
{
    char kp[160];
    join_key(kp, sizeof kp, path, "name");
    if (!valid_name(name))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                    "\"%.64s\" is not a valid name: use 1..%d characters from A-Z a-z 0-9 _ . -",
                    name, QS_CONFIG_NAME_MAX);
    return true;
}

/* ---- preprocess --------------------------------------------------------------------------- */

static bool parse_dim(parse_ctx *ctx, const json_t *obj, const char *key, const char *path,
                      int32_t *out)
{
    char kp[160];
    join_key(kp, sizeof kp, path, key);
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "missing (required)");
    if (!json_is_integer(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an integer, got %s",
                    json_type_name(v));
    json_int_t x = json_integer_value(v);
    if (x < 1 || x > 65535)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%lld is out of range: expected 1..65535",
                    (long long)x);
    *out = (int32_t)x;
    return true;
}

static bool only_keys(parse_ctx *ctx, const json_t *obj, const char *path,
                      const char *const *allowed)
{
    const char *key;
    json_t *value;
    char kp[160];
    json_object_foreach((json_t *)obj, key, value) {
        if (key[0] == '_' || key_in(key, allowed))
            continue;
        join_key(kp, sizeof kp, path, key);
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "unknown key");
    }
    return true;
}

static bool parse_resize(parse_ctx *ctx, const json_t *pre, const char *path,
                         qs_preprocess_config *out)
{
    static const char *const keys[] = {"shorter_side", "width", "height", NULL};
    char kp[160];
    join_key(kp, sizeof kp, path, "resize");
    const json_t *v = json_object_get(pre, "resize");
    out->resize_mode = QS_RESIZE_NONE;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        /* Shorthand for {"shorter_side": N}, as torchvision's Resize(N). */
        json_int_t x = json_integer_value(v);
        if (x < 1 || x > 65535)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%lld is out of range: expected 1..65535",
                        (long long)x);
        out->resize_mode = QS_RESIZE_SHORTER_SIDE;
        out->resize_shorter = (int32_t)x;
        return true;
    }
    if (!json_is_object(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                    "expected {\"shorter_side\": N} or {\"width\": W, \"height\": H}, got %s",
                    json_type_name(v));
    if (!only_keys(ctx, v, kp, keys))
        return false;
    bool has_short = json_object_get(v, "shorter_side") != NULL;
    bool has_wh = json_object_get(v, "width") || json_object_get(v, "height");
    if (has_short == has_wh)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                    "give either \"shorter_side\" or both \"width\" and \"height\"");
    if (has_short) {
        out->resize_mode = QS_RESIZE_SHORTER_SIDE;
        return parse_dim(ctx, v, "shorter_side", kp, &out->resize_shorter);
    }
    out->resize_mode = QS_RESIZE_EXACT;
    return parse_dim(ctx, v, "width", kp, &out->resize_width) &&
           parse_dim(ctx, v, "height", kp, &out->resize_height);
}

static bool parse_crop(parse_ctx *ctx, const json_t *pre, const char *path,
                       qs_preprocess_config *out)
{
    static const char *const keys[] = {"width", "height", NULL};
    char kp[160];
    join_key(kp, sizeof kp, path, "crop");
    const json_t *v = json_object_get(pre, "crop");
    out->crop = false;
    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 1 || x > 65535)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%lld is out of range: expected 1..65535",
                        (long long)x);
        out->crop = true;
        out->crop_width = out->crop_height = (int32_t)x;
        return true;
    }
    if (!json_is_object(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                    "expected N or {\"width\": W, \"height\": H}, got %s", json_type_name(v));
    if (!only_keys(ctx, v, kp, keys))
        return false;
    out->crop = true;
    return parse_dim(ctx, v, "width", kp, &out->crop_width) &&
           parse_dim(ctx, v, "height", kp, &out->crop_height);
}

/* mean/std: a number or an array of 1 or `channels` numbers; std must be positive. */
static bool parse_channel_values(parse_ctx *ctx, const json_t *pre, const char *key,
                                 const char *path, int32_t channels, bool positive, double def,
                                 double out[3])
{
    char kp[160];
    join_key(kp, sizeof kp, path, key);
    const json_t *v = json_object_get(pre, key);
    out[0] = out[1] = out[2] = def;
    if (!v || json_is_null(v))
        return true;
    double vals[3];
    size_t n;
    if (json_is_number(v)) {
        vals[0] = json_number_value(v);
        n = 1;
    } else if (json_is_array(v)) {
        n = json_array_size(v);
        if (n != 1 && n != (size_t)channels)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                        "expected 1%s number%s, got %zu", channels == 3 ? " or 3" : "",
                        channels == 3 ? "s" : "", n);
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            if (!json_is_number(e)) {
                char ek[160];
                join_index(ek, sizeof ek, kp, i);
                return fail(ctx, QS_CONFIG_ERR_INVALID, ek, "expected a number, got %s",
                            json_type_name(e));
            }
            vals[i] = json_number_value(e);
        }
    } else {
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected a number or an array, got %s",
                    json_type_name(v));
    }
    for (size_t i = 0; i < n; i++) {
        bool ok = positive ? (vals[i] > 0.0 && vals[i] <= 1e12) : (vals[i] >= -1e12 && vals[i] <= 1e12);
        if (!ok)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%g is out of range: expected %s", vals[i],
                        positive ? "a positive number" : "a finite number");
    }
    for (int32_t c = 0; c < 3; c++)
        out[c] = vals[n == 1 ? 0 : (size_t)c];
    return true;
}

static bool parse_preprocess(parse_ctx *ctx, const json_t *model, const char *path,
                             qs_preprocess_config *out)
{
    char kp[160];
    join_key(kp, sizeof kp, path, "preprocess");
    const json_t *pre = json_object_get(model, "preprocess");
    if (!pre)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "missing (required)");
    if (!json_is_object(pre))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an object, got %s",
                    json_type_name(pre));
    if (!parse_fields(ctx, pre, kp, preprocess_fields, COUNT_OF(preprocess_fields),
                      preprocess_custom, out))
        return false;
    if (!parse_resize(ctx, pre, kp, out) || !parse_crop(ctx, pre, kp, out))
        return false;
    int32_t channels = qs_preprocess_config_channels(out);
    if (!parse_channel_values(ctx, pre, "mean", kp, channels, false, 0.0, out->mean) ||
        !parse_channel_values(ctx, pre, "std", kp, channels, true, 1.0, out->std))
        return false;
    char ck[160];
    join_key(ck, sizeof ck, kp, "crop");
    if (!out->crop && out->resize_mode != QS_RESIZE_EXACT)
        return fail(ctx, QS_CONFIG_ERR_INVALID, ck,
                    "required unless resize is {\"width\", \"height\"}: the tensor needs a fixed "
                    "size");
    if (out->crop && out->resize_mode == QS_RESIZE_EXACT &&
        (out->crop_width > out->resize_width || out->crop_height > out->resize_height))
        return fail(ctx, QS_CONFIG_ERR_INVALID, ck, "%dx%d is larger than the resize (%dx%d)",
                    out->crop_width, out->crop_height, out->resize_width, out->resize_height);
    if (out->crop && out->resize_mode == QS_RESIZE_SHORTER_SIDE &&
        (out->crop_width > out->resize_shorter || out->crop_height > out->resize_shorter))
        return fail(ctx, QS_CONFIG_ERR_INVALID, ck,
                    "%dx%d is larger than resize.shorter_side (%d)", out->crop_width,
                    out->crop_height, out->resize_shorter);
    return true;
}

/* ---- variants ----------------------------------------------------------------------------- */

static bool parse_keep_fp32(parse_ctx *ctx, const json_t *var, const char *path,
                            qs_variant_config *out)
{
    char kp[160];
    join_key(kp, sizeof kp, path, "keep_fp32");
    const json_t *v = json_object_get(var, "keep_fp32");
    if (!v || json_is_null(v))
        return true;
    if (!json_is_array(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an array of strings, got %s",
                    json_type_name(v));
    size_t n = json_array_size(v);
    if (n > QS_CONFIG_MAX_KEEP_FP32)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "%zu entries: at most %d", n,
                    QS_CONFIG_MAX_KEEP_FP32);
    if (n == 0)
        return true;
    out->keep_fp32 = calloc(n, sizeof *out->keep_fp32);
    if (!out->keep_fp32)
        return fail_oom(ctx, kp);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        char ek[160];
        join_index(ek, sizeof ek, kp, i);
        if (!json_is_string(e) || json_string_length(e) == 0)
            return fail(ctx, QS_CONFIG_ERR_INVALID, ek, "expected a non-empty string, got %s",
                        json_type_name(e));
        out->keep_fp32[i] = strdup(json_string_value(e));
        if (!out->keep_fp32[i])
            return fail_oom(ctx, ek);
        out->keep_fp32_count = i + 1;
    }
    return true;
}

/* "report": true or absent (on: calibration images for static), false (off), or
 * {"images": PATH, "count": N}. Called after the calibration is parsed. */
static bool parse_report(parse_ctx *ctx, const json_t *var, const char *path,
                         qs_variant_config *out)
{
    char kp[160];
    join_key(kp, sizeof kp, path, "report");
    const json_t *v = json_object_get(var, "report");
    out->report_enabled = out->mode != QS_MODE_FP32;
    out->report.count = out->has_calibration ? out->calibration.count : 100;
    if (!v || json_is_null(v) || json_is_true(v))
        return true;
    if (json_is_false(v)) {
        out->report_enabled = false;
        return true;
    }
    if (!json_is_object(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp,
                    "expected true, false or {\"images\": PATH, \"count\": N}, got %s",
                    json_type_name(v));
    if (!parse_fields(ctx, v, kp, report_fields, COUNT_OF(report_fields), NULL, &out->report))
        return false;
    const json_t *count = json_object_get(v, "count");
    if (!out->report.images && (!count || json_is_null(count)))
        out->report.count = out->has_calibration ? out->calibration.count : 100;
    return true;
}

static bool parse_variant(parse_ctx *ctx, const json_t *var, const char *path,
                          const qs_model_config *model, qs_variant_config *out)
{
    if (!json_is_object(var))
        return fail(ctx, QS_CONFIG_ERR_INVALID, path, "expected an object, got %s",
                    json_type_name(var));
    if (!parse_fields(ctx, var, path, variant_fields, COUNT_OF(variant_fields), variant_custom,
                      out))
        return false;
    if (!check_name(ctx, out->name, path))
        return false;
    char kp[160];
    for (size_t i = 0; i < COUNT_OF(mode_options); i++) {
        const json_t *v = json_object_get(var, mode_options[i].key);
        if (v && !json_is_null(v) && !mode_options[i].allowed[out->mode]) {
            join_key(kp, sizeof kp, path, mode_options[i].key);
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "not an option of mode \"%s\"",
                        qs_variant_mode_to_string(out->mode));
        }
    }
    if (json_object_get(var, "percentile") && out->observer != QS_CFG_OBSERVER_PERCENTILE) {
        join_key(kp, sizeof kp, path, "percentile");
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "only with \"observer\": \"percentile\"");
    }
    if (out->percentile <= 50.0) {
        join_key(kp, sizeof kp, path, "percentile");
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "must be above 50 (and at most 100)");
    }
    if (json_object_get(var, "averaging_constant") &&
        out->observer != QS_CFG_OBSERVER_MOVING_MINMAX) {
        join_key(kp, sizeof kp, path, "averaging_constant");
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "only with \"observer\": \"moving_minmax\"");
    }
    join_key(kp, sizeof kp, path, "calibration");
    bool ok;
    const json_t *cal = get_object(ctx, var, "calibration", kp, &ok);
    if (!ok)
        return false;
    if (out->mode == QS_MODE_STATIC && !cal)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "required by mode \"static\"");
    if (cal) {
        if (!parse_fields(ctx, cal, kp, calibration_fields, COUNT_OF(calibration_fields), NULL,
                          &out->calibration))
            return false;
        out->has_calibration = true;
    }
    if (!parse_keep_fp32(ctx, var, path, out) || !parse_report(ctx, var, path, out))
        return false;
    out->onnx_overridden = out->onnx != NULL;
    if (!out->onnx) {
        out->onnx = strdup(model->onnx);
        if (!out->onnx)
            return fail_oom(ctx, path);
    }
    return true;
}

static bool parse_variants(parse_ctx *ctx, const json_t *model_json, const char *path,
                           qs_model_config *out)
{
    char kp[160];
    join_key(kp, sizeof kp, path, "variants");
    const json_t *v = json_object_get(model_json, "variants");
    if (!v || json_is_null(v)) {
        /* No list: one fp32 variant of the model's file. */
        out->variants = calloc(1, sizeof *out->variants);
        if (!out->variants)
            return fail_oom(ctx, kp);
        out->variant_count = 1;
        out->variants[0].mode = QS_MODE_FP32;
        out->variants[0].name = strdup("fp32");
        out->variants[0].onnx = strdup(out->onnx);
        if (!out->variants[0].name || !out->variants[0].onnx)
            return fail_oom(ctx, kp);
        return true;
    }
    if (!json_is_array(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected an array, got %s",
                    json_type_name(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > QS_CONFIG_MAX_VARIANTS)
        return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected 1..%d variants, got %zu",
                    QS_CONFIG_MAX_VARIANTS, n);
    out->variants = calloc(n, sizeof *out->variants);
    if (!out->variants)
        return fail_oom(ctx, kp);
    for (size_t i = 0; i < n; i++) {
        char ik[160];
        join_index(ik, sizeof ik, kp, i);
        out->variant_count = i + 1;
        if (!parse_variant(ctx, json_array_get(v, i), ik, out, &out->variants[i]))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out->variants[j].name, out->variants[i].name) == 0) {
                char nk[160];
                join_key(nk, sizeof nk, ik, "name");
                return fail(ctx, QS_CONFIG_ERR_INVALID, nk, "\"%s\" is already used by %s[%zu]",
                            out->variants[i].name, kp, j);
            }
        }
    }
    return true;
}

/* ---- models and the whole file ------------------------------------------------------------- */

static bool parse_model(parse_ctx *ctx, const json_t *m, const char *path, qs_model_config *out)
{
    if (!json_is_object(m))
        return fail(ctx, QS_CONFIG_ERR_INVALID, path, "expected an object, got %s",
                    json_type_name(m));
    if (!parse_fields(ctx, m, path, model_fields, COUNT_OF(model_fields), model_custom, out))
        return false;
    if (!check_name(ctx, out->name, path))
        return false;
    if (!parse_preprocess(ctx, m, path, &out->preprocess) ||
        !parse_variants(ctx, m, path, out))
        return false;
    char kp[160];
    join_key(kp, sizeof kp, path, "default_variant");
    const json_t *dv = json_object_get(m, "default_variant");
    out->default_variant = 0;
    if (dv && !json_is_null(dv)) {
        if (!json_is_string(dv))
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "expected a string, got %s",
                        json_type_name(dv));
        long idx = qs_config_find_variant(out, json_string_value(dv));
        if (idx < 0)
            return fail(ctx, QS_CONFIG_ERR_INVALID, kp, "no variant is named \"%.64s\"",
                        json_string_value(dv));
        out->default_variant = (size_t)idx;
    }
    return true;
}

static bool parse_models(parse_ctx *ctx, const json_t *root, qs_config *cfg)
{
    const json_t *v = json_object_get(root, "models");
    if (!v)
        return fail(ctx, QS_CONFIG_ERR_INVALID, "models", "missing (required)");
    if (!json_is_array(v))
        return fail(ctx, QS_CONFIG_ERR_INVALID, "models", "expected an array, got %s",
                    json_type_name(v));
    size_t n = json_array_size(v);
    if (n == 0 || n > QS_CONFIG_MAX_MODELS)
        return fail(ctx, QS_CONFIG_ERR_INVALID, "models", "expected 1..%d models, got %zu",
                    QS_CONFIG_MAX_MODELS, n);
    cfg->models = calloc(n, sizeof *cfg->models);
    if (!cfg->models)
        return fail_oom(ctx, "models");
    for (size_t i = 0; i < n; i++) {
        char ik[160];
        join_index(ik, sizeof ik, "models", i);
        cfg->model_count = i + 1;
        if (!parse_model(ctx, json_array_get(v, i), ik, &cfg->models[i]))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->models[j].name, cfg->models[i].name) == 0) {
                char nk[160];
                join_key(nk, sizeof nk, ik, "name");
                return fail(ctx, QS_CONFIG_ERR_INVALID, nk,
                            "\"%s\" is already used by models[%zu]", cfg->models[i].name, j);
            }
        }
    }
    return true;
}

static bool valid_listen(const char *addr)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1;
}

static const char *const top_custom[] = {"server", "workers", "limits", "log", "stats", "cache",
                                         "models", NULL};

typedef struct {
    const char *key;
    const cfg_field *fields;
    size_t count;
} section_table;

static bool parse_root(parse_ctx *ctx, const json_t *root, qs_config *cfg)
{
    static const section_table sections[] = {
        {"server", server_fields, COUNT_OF(server_fields)},
        {"workers", workers_fields, COUNT_OF(workers_fields)},
        {"limits", limits_fields, COUNT_OF(limits_fields)},
        {"log", log_fields, COUNT_OF(log_fields)},
        {"stats", stats_fields, COUNT_OF(stats_fields)},
        {"cache", cache_fields, COUNT_OF(cache_fields)},
    };
    if (!json_is_object(root))
        return fail(ctx, QS_CONFIG_ERR_INVALID, "(top level)", "expected an object, got %s",
                    json_type_name(root));
    if (!check_keys(ctx, root, "", NULL, 0, top_custom))
        return false;
    for (size_t i = 0; i < COUNT_OF(sections); i++) {
        bool ok;
        const json_t *obj = get_object(ctx, root, sections[i].key, sections[i].key, &ok);
        if (!ok || !parse_fields(ctx, obj, sections[i].key, sections[i].fields, sections[i].count,
                                 NULL, cfg))
            return false;
    }
    if (!valid_listen(cfg->server.listen))
        return fail(ctx, QS_CONFIG_ERR_INVALID, "server.listen",
                    "\"%.64s\" is not an IPv4 or IPv6 address", cfg->server.listen);
    return parse_models(ctx, root, cfg);
}

static qs_config_status load_json(json_t *root, const char *path, const char *dir,
                                  qs_config **out, qs_config_error *err)
{
    parse_ctx ctx = {.dir = dir, .err = err, .status = QS_CONFIG_OK};
    qs_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        fail_oom(&ctx, "(top level)");
        goto cleanup;
    }
    cfg->path = path ? strdup(path) : NULL;
    cfg->dir = dir ? strdup(dir) : NULL;
    if ((path && !cfg->path) || (dir && !cfg->dir)) {
        fail_oom(&ctx, "(top level)");
        goto cleanup;
    }
    parse_root(&ctx, root, cfg);
cleanup:
    if (ctx.status != QS_CONFIG_OK) {
        qs_config_free(cfg);
        cfg = NULL;
    }
    *out = cfg;
    return ctx.status;
}

qs_config_status qs_config_load_string(const char *json, const char *dir, qs_config **out,
                                       qs_config_error *err)
{
    json_error_t jerr;
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err) {
            snprintf(err->key, sizeof err->key, "line %d, column %d", jerr.line, jerr.column);
            snprintf(err->message, sizeof err->message, "%s", jerr.text);
        }
        return QS_CONFIG_ERR_SYNTAX;
    }
    qs_config_status st = load_json(root, NULL, dir, out, err);
    json_decref(root);
    return st;
}

/* Absolute directory of `path` (realpath of its dirname). Caller frees. */
static char *config_dir(const char *path)
{
    char *copy = strdup(path);
    char *dir = NULL;
    if (!copy)
        return NULL;
    char *slash = strrchr(copy, '/');
    if (!slash)
        dir = realpath(".", NULL);
    else if (slash == copy)
        dir = strdup("/");
    else {
        *slash = '\0';
        dir = realpath(copy, NULL);
    }
    free(copy);
    return dir;
}

qs_config_status qs_config_load_file(const char *path, qs_config **out, qs_config_error *err)
{
    json_error_t jerr;
    qs_config_status st = QS_CONFIG_OK;
    json_t *root = NULL;
    char *dir = NULL;
    *out = NULL;
    if (err)
        memset(err, 0, sizeof *err);
    if (access(path, R_OK) != 0) {
        if (err) {
            snprintf(err->key, sizeof err->key, "%s", path);
            snprintf(err->message, sizeof err->message, "cannot read the config file: %s",
                     strerror(errno));
        }
        st = QS_CONFIG_ERR_IO;
        goto cleanup;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (err) {
            snprintf(err->key, sizeof err->key, "line %d, column %d", jerr.line, jerr.column);
            snprintf(err->message, sizeof err->message, "%s", jerr.text);
        }
        st = jerr.line < 0 ? QS_CONFIG_ERR_IO : QS_CONFIG_ERR_SYNTAX;
        goto cleanup;
    }
    dir = config_dir(path);
    if (!dir) {
        if (err) {
            snprintf(err->key, sizeof err->key, "%s", path);
            snprintf(err->message, sizeof err->message, "cannot resolve the config directory: %s",
                     strerror(errno));
        }
        st = QS_CONFIG_ERR_IO;
        goto cleanup;
    }
    st = load_json(root, path, dir, out, err);
cleanup:
    free(dir);
    json_decref(root);
    return st;
}

static void variant_config_free(qs_variant_config *v)
{
    free(v->name);
    free(v->onnx);
    free(v->calibration.images);
    free(v->report.images);
    for (size_t i = 0; i < v->keep_fp32_count; i++)
        free(v->keep_fp32[i]);
    free(v->keep_fp32);
}

void qs_config_free(qs_config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->model_count; i++) {
        qs_model_config *m = &config->models[i];
        free(m->name);
        free(m->onnx);
        free(m->labels);
        free(m->input);
        free(m->output);
        for (size_t j = 0; j < m->variant_count; j++)
            variant_config_free(&m->variants[j]);
        free(m->variants);
    }
    free(config->models);
    free(config->server.listen);
    free(config->cache.dir);
    free(config->path);
    free(config->dir);
    free(config);
}

/* ---- environment overrides ------------------------------------------------------------------ */

static bool env_int(const char *name, const char *text, const char *section,
                    const cfg_field *f, int32_t *out, qs_config_error *err)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || x < f->imin || x > f->imax) {
        if (err) {
            snprintf(err->key, sizeof err->key, "%s", name);
            snprintf(err->message, sizeof err->message,
                     "\"%.40s\" is not an integer in %lld..%lld (it replaces %s.%s)", text,
                     (long long)f->imin, (long long)f->imax, section, f->key);
        }
        return false;
    }
    *out = (int32_t)x;
    return true;
}

static const char *process_getenv(const char *name)
{
    return getenv(name);
}

qs_config_status qs_config_apply_env(qs_config *config, qs_getenv_fn getenv_fn,
                                     qs_config_error *err)
{
    if (!getenv_fn)
        getenv_fn = process_getenv;
    if (err)
        memset(err, 0, sizeof *err);
    int32_t port = config->server.port, threads = config->workers.intra_op_threads;
    int32_t workers = config->workers.count;
    qs_log_level level = config->log.level;
    const char *v;
    if ((v = getenv_fn("QUANTSERVE_PORT")) &&
        !env_int("QUANTSERVE_PORT", v, "server", find_field(server_fields, COUNT_OF(server_fields), "port"),
                 &port, err))
        return QS_CONFIG_ERR_INVALID;
    if ((v = getenv_fn("QUANTSERVE_THREADS")) &&
        !env_int("QUANTSERVE_THREADS", v, "workers",
                 find_field(workers_fields, COUNT_OF(workers_fields), "intra_op_threads"),
                 &threads, err))
        return QS_CONFIG_ERR_INVALID;
    if ((v = getenv_fn("QUANTSERVE_WORKERS")) &&
        !env_int("QUANTSERVE_WORKERS", v, "workers",
                 find_field(workers_fields, COUNT_OF(workers_fields), "count"), &workers, err))
        return QS_CONFIG_ERR_INVALID;
    if ((v = getenv_fn("QUANTSERVE_LOG_LEVEL")) && !qs_log_level_parse(v, &level)) {
        if (err) {
            snprintf(err->key, sizeof err->key, "QUANTSERVE_LOG_LEVEL");
            snprintf(err->message, sizeof err->message,
                     "\"%.40s\" is not one of error, warn, info, debug", v);
        }
        return QS_CONFIG_ERR_INVALID;
    }
    char *cache_dir = NULL;
    bool cache_off = false;
    if ((v = getenv_fn("QUANTSERVE_CACHE_DIR")) && v[0]) {
        if (strcmp(v, "off") == 0) {
            cache_off = true;
        } else {
            cache_dir = strdup(v);
            if (!cache_dir)
                return QS_CONFIG_ERR_NO_MEMORY;
        }
    }
    char *listen = NULL;
    if ((v = getenv_fn("QUANTSERVE_LISTEN"))) {
        if (!valid_listen(v)) {
            if (err) {
                snprintf(err->key, sizeof err->key, "QUANTSERVE_LISTEN");
                snprintf(err->message, sizeof err->message,
                         "\"%.64s\" is not an IPv4 or IPv6 address", v);
            }
            free(cache_dir);
            return QS_CONFIG_ERR_INVALID;
        }
        listen = strdup(v);
        if (!listen) {
            free(cache_dir);
            return QS_CONFIG_ERR_NO_MEMORY;
        }
        free(config->server.listen);
        config->server.listen = listen;
    }
    if (cache_dir) {
        free(config->cache.dir);
        config->cache.dir = cache_dir;
        config->cache.enabled = true;
    } else if (cache_off) {
        config->cache.enabled = false;
    }
    config->server.port = port;
    config->workers.intra_op_threads = threads;
    config->workers.count = workers;
    config->log.level = level;
    return QS_CONFIG_OK;
}

long qs_config_find_model(const qs_config *config, const char *name)
{
    for (size_t i = 0; name && i < config->model_count; i++)
        if (strcmp(config->models[i].name, name) == 0)
            return (long)i;
    return -1;
}

long qs_config_find_variant(const qs_model_config *model, const char *name)
{
    for (size_t i = 0; name && i < model->variant_count; i++)
        if (model->variants[i].name && strcmp(model->variants[i].name, name) == 0)
            return (long)i;
    return -1;
}

int32_t qs_config_intra_op_threads(const qs_config *config)
{
    if (config->workers.intra_op_threads > 0)
        return config->workers.intra_op_threads;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    long per = cpus / config->workers.count;
    return per < 1 ? 1 : (int32_t)(per > 256 ? 256 : per);
}
