/* The daemon's configuration: a JSON file validated against declarative tables, plus env overrides. */
#ifndef QS_SERVER_QS_CONFIG_H
#define QS_SERVER_QS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Bounds on names and list sizes; every other bound lives in the field tables of config.c. */
#define QS_CONFIG_NAME_MAX 64       /* model and variant names: [A-Za-z0-9_.-], 1..64 chars */
#define QS_CONFIG_MAX_MODELS 64
#define QS_CONFIG_MAX_VARIANTS 16   /* per model */
#define QS_CONFIG_MAX_KEEP_FP32 1024

/* Caller-provided error: `key` is the path of the culprit ("models[0].preprocess.mean", or an
 * environment variable's name), `message` says what is wrong. The first error wins. */
typedef struct {
    char key[160];
    char message[320];
} qs_config_error;

/* How a variant is made at load time. Only FP32 runs in this build; the int8 modes are parsed and
 * validated so configs written for them keep working once quantization lands. */
#define QS_VARIANT_MODE_LIST(X)              \
    X(QS_MODE_FP32, "fp32")                  \
    X(QS_MODE_STATIC, "static")              \
    X(QS_MODE_DYNAMIC, "dynamic")            \
    X(QS_MODE_QDQ, "qdq")

typedef enum {
#define QS_MODE_ENUM(name, text) name,
    QS_VARIANT_MODE_LIST(QS_MODE_ENUM)
#undef QS_MODE_ENUM
    QS_MODE_COUNT
} qs_variant_mode;

#define QS_CFG_OBSERVER_LIST(X)                        \
    X(QS_CFG_OBSERVER_MINMAX, "minmax")                \
    X(QS_CFG_OBSERVER_MOVING_MINMAX, "moving_minmax")  \
    X(QS_CFG_OBSERVER_PERCENTILE, "percentile")        \
    X(QS_CFG_OBSERVER_ENTROPY, "entropy")              \
    X(QS_CFG_OBSERVER_MSE, "mse")

typedef enum {
#define QS_CFG_OBSERVER_ENUM(name, text) name,
    QS_CFG_OBSERVER_LIST(QS_CFG_OBSERVER_ENUM)
#undef QS_CFG_OBSERVER_ENUM
    QS_CFG_OBSERVER_COUNT
} qs_cfg_observer;

#define QS_COLOR_LIST(X)         \
    X(QS_COLOR_RGB, "rgb")       \
    X(QS_COLOR_BGR, "bgr")       \
    X(QS_COLOR_GRAY, "gray")

typedef enum {
#define QS_COLOR_ENUM(name, text) name,
    QS_COLOR_LIST(QS_COLOR_ENUM)
#undef QS_COLOR_ENUM
    QS_COLOR_COUNT
} qs_color;

#define QS_RESIZE_LIST(X)                          \
    X(QS_RESIZE_NONE, "none")                      \
    X(QS_RESIZE_SHORTER_SIDE, "shorter_side")      \
    X(QS_RESIZE_EXACT, "exact")

typedef enum {
#define QS_RESIZE_ENUM(name, text) name,
    QS_RESIZE_LIST(QS_RESIZE_ENUM)
#undef QS_RESIZE_ENUM
    QS_RESIZE_COUNT
} qs_resize_mode;

#define QS_INTERP_LIST(X)                  \
    X(QS_INTERP_BILINEAR, "bilinear")      \
    X(QS_INTERP_NEAREST, "nearest")

typedef enum {
#define QS_INTERP_ENUM(name, text) name,
    QS_INTERP_LIST(QS_INTERP_ENUM)
#undef QS_INTERP_ENUM
    QS_INTERP_COUNT
} qs_interp;

#define QS_LAYOUT_LIST(X)          \
    X(QS_LAYOUT_NCHW, "NCHW")      \
    X(QS_LAYOUT_NHWC, "NHWC")

typedef enum {
#define QS_LAYOUT_ENUM(name, text) name,
    QS_LAYOUT_LIST(QS_LAYOUT_ENUM)
#undef QS_LAYOUT_ENUM
    QS_LAYOUT_COUNT
} qs_layout;

/* Lower-case names of the enums above ("static", "shorter_side", "NCHW"); "?" when out of range. */
const char *qs_variant_mode_to_string(qs_variant_mode mode);
const char *qs_cfg_observer_to_string(qs_cfg_observer observer);
const char *qs_color_to_string(qs_color color);
const char *qs_resize_mode_to_string(qs_resize_mode mode);
const char *qs_interp_to_string(qs_interp interp);
const char *qs_layout_to_string(qs_layout layout);

/* Image to tensor, torchvision style: resize, center crop, x*scale, (x-mean)/std, layout. */
typedef struct {
    qs_color color;
    qs_resize_mode resize_mode;
    int32_t resize_shorter; /* QS_RESIZE_SHORTER_SIDE: target of the shorter side */
    int32_t resize_width;   /* QS_RESIZE_EXACT */
    int32_t resize_height;
    bool crop;              /* center crop to crop_width x crop_height after the resize */
    int32_t crop_width;
    int32_t crop_height;
    qs_interp interpolation; /* bilinear is Pillow's (antialiased when shrinking), as torchvision */
    double scale;
    double mean[3];         /* one value per channel; a single configured value is repeated */
    double std[3];
    qs_layout layout;
} qs_preprocess_config;

/* Number of channels the preprocessing produces (1 for gray, else 3). */
int32_t qs_preprocess_config_channels(const qs_preprocess_config *pre);
/* Width and height of the tensor it produces: the crop, else the exact resize. */
void qs_preprocess_config_output_size(const qs_preprocess_config *pre, int32_t *width,
                                      int32_t *height);

typedef struct {
    char *images;           /* a directory of images, or a file listing one image path a line */
    int32_t count;          /* images to use, 1..100000 */
} qs_calibration_config;

typedef struct {
    char *name;
    qs_variant_mode mode;
    char *onnx;             /* absolute path: the variant's own file, else the model's */
    bool onnx_overridden;   /* the variant names its own file */
    /* int8 options (modes other than fp32) */
    qs_cfg_observer observer;
    double percentile;      /* observer "percentile": (50, 100] */
    double averaging_constant; /* observer "moving_minmax": (0, 1] */
    bool per_channel;
    bool symmetric_activations;
    bool signed_activations;
    bool reduce_range;   /* 7-bit activations (default true) */
    bool has_calibration;
    qs_calibration_config calibration;
    /* The fp32-vs-int8 report computed at load (int8 modes). report_enabled false: none.
     * report.images NULL: the calibration images (static), else no report for lack of images;
     * report.count: images used (defaults to calibration.count when they are the images). */
    bool report_enabled;
    qs_calibration_config report;
    char **keep_fp32;       /* node names or op types left in float */
    size_t keep_fp32_count;
} qs_variant_config;

typedef struct {
    char *name;
    char *onnx;             /* absolute path */
    char *labels;           /* absolute path, NULL when not configured (labels are the indices) */
    char *input;            /* model input to feed, NULL for the first one */
    char *output;           /* model output holding the scores, NULL for the first one */
    bool softmax;           /* apply softmax to the output (false when the model outputs probabilities) */
    qs_preprocess_config preprocess;
    qs_variant_config *variants;
    size_t variant_count;
    size_t default_variant; /* index into variants */
} qs_model_config;

typedef struct {
    char *path;             /* the config file, as given */
    char *dir;              /* its directory, absolute: relative paths resolve against it */
    struct {
        char *listen;       /* IPv4 or IPv6 literal */
        int32_t port;       /* 0 = any free port */
        int32_t http_threads;
        int32_t max_connections;
        int32_t connection_timeout_s;
        int32_t shutdown_timeout_s;
    } server;
    struct {
        int32_t count;
        int32_t intra_op_threads; /* 0 = auto: online CPUs / count, at least 1 */
    } workers;
    struct {
        int64_t max_body_bytes;
        int64_t max_image_pixels;
        int32_t max_image_side;
        int32_t queue_depth;
        int32_t request_timeout_ms;
    } limits;
    struct {
        qs_log_level level;
        bool access;
    } log;
    struct {
        int32_t window_s;
    } stats;
    struct {
        bool enabled;       /* calibration cache on (default) */
        char *dir;          /* absolute or as given by QUANTSERVE_CACHE_DIR; NULL: the default
                             * ($XDG_CACHE_HOME/quantserve, else $HOME/.cache/quantserve) */
    } cache;
    qs_model_config *models;
    size_t model_count;
} qs_config;

typedef enum {
    QS_CONFIG_OK = 0,
    QS_CONFIG_ERR_IO,      /* file missing or unreadable */
    QS_CONFIG_ERR_SYNTAX,  /* not JSON */
    QS_CONFIG_ERR_INVALID, /* a key is unknown, missing, of the wrong type or out of bounds */
    QS_CONFIG_ERR_NO_MEMORY,
} qs_config_status;

/* Read and validate `path`. On success *out owns everything it points to (free with
 * qs_config_free). On failure *out is NULL and err names the key. err may be NULL. */
qs_config_status qs_config_load_file(const char *path, qs_config **out, qs_config_error *err);
/* Same from a JSON string; `dir` is the directory relative paths resolve against. */
qs_config_status qs_config_load_string(const char *json, const char *dir, qs_config **out,
                                       qs_config_error *err);
void qs_config_free(qs_config *config);

/* Environment lookup used for overrides; tests pass their own. Returns NULL when unset. */
typedef const char *(*qs_getenv_fn)(const char *name);

/* Apply QUANTSERVE_PORT, QUANTSERVE_LISTEN, QUANTSERVE_THREADS (workers.intra_op_threads),
 * QUANTSERVE_WORKERS (workers.count), QUANTSERVE_LOG_LEVEL and QUANTSERVE_CACHE_DIR (cache.dir;
 * "off" disables the cache) with the bounds of the keys they replace. `getenv_fn` NULL means getenv. On error the config is left unchanged and err.key is the
 * variable's name. */
qs_config_status qs_config_apply_env(qs_config *config, qs_getenv_fn getenv_fn,
                                     qs_config_error *err);

/* Index of the model or of a variant by name; -1 when absent. */
long qs_config_find_model(const qs_config *config, const char *name);
long qs_config_find_variant(const qs_model_config *model, const char *name);

/* Intra-op threads after resolving 0 (auto). */
int32_t qs_config_intra_op_threads(const qs_config *config);

#endif /* QS_SERVER_QS_CONFIG_H */
