/* quantserve engine: the public API for loading ONNX models and running them on the CPU. */
#ifndef QUANTSERVE_ENGINE_H
#define QUANTSERVE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QS_MAX_RANK 8

/* Every fallible call returns one of these. Codes are stable: the server maps them to HTTP statuses. */
#define QS_STATUS_LIST(X)                                                        \
    X(QS_OK, "ok")                                                               \
    X(QS_ERR_INVALID_ARGUMENT, "invalid_argument")                               \
    X(QS_ERR_NO_MEMORY, "out_of_memory")                                         \
    X(QS_ERR_IO, "io_error")                                                     \
    X(QS_ERR_MALFORMED_MODEL, "malformed_model")                                 \
    X(QS_ERR_UNSUPPORTED, "unsupported")                                         \
    X(QS_ERR_SHAPE, "shape_mismatch")                                            \
    X(QS_ERR_INTERNAL, "internal_error")

typedef enum {
#define QS_STATUS_ENUM(name, code) name,
    QS_STATUS_LIST(QS_STATUS_ENUM)
#undef QS_STATUS_ENUM
    QS_STATUS_COUNT
} qs_status;

/* Stable lower-case code string ("malformed_model"); never NULL. */
const char *qs_status_to_string(qs_status status);

/* Caller-provided error report. The first error wins: later failures do not overwrite it.
 * `where` is a short path to the culprit (`node "conv1" (Conv): input 1`), `message` says why. */
typedef struct {
    qs_status status;
    char where[160];
    char message[320];
} qs_error;

/* Clear an error struct before reuse. NULL-safe. */
void qs_error_clear(qs_error *err);

/* Element types, numbered as ONNX TensorProto.DataType. */
typedef enum {
    QS_DTYPE_UNDEFINED = 0,
    QS_DTYPE_FLOAT32 = 1,
    QS_DTYPE_UINT8 = 2,
    QS_DTYPE_INT8 = 3,
    QS_DTYPE_UINT16 = 4,
    QS_DTYPE_INT16 = 5,
    QS_DTYPE_INT32 = 6,
    QS_DTYPE_INT64 = 7,
    QS_DTYPE_BOOL = 9,
    QS_DTYPE_FLOAT16 = 10,
    QS_DTYPE_FLOAT64 = 11,
    QS_DTYPE_UINT32 = 12,
    QS_DTYPE_UINT64 = 13,
} qs_dtype;

/* "float32", "int64", ...; "undefined" for anything else. */
const char *qs_dtype_name(qs_dtype dtype);
/* Bytes per element, 0 for an unknown type. */
size_t qs_dtype_size(qs_dtype dtype);

/* A tensor passed to or returned from a session. `data` is not owned by the struct.
 * dims[i] < 0 only in model signatures (qs_model_input), for a dynamic dimension. */
typedef struct {
    qs_dtype dtype;
    int32_t rank;
    int64_t dims[QS_MAX_RANK];
    void *data;
} qs_tensor;

/* Element count of a tensor with non-negative dims; 0 if any dim is negative. */
size_t qs_tensor_numel(const qs_tensor *t);

typedef enum {
    QS_OPTIMIZE_ALL = 0,  /* fold, fuse, NHWC layout, packed SIMD kernels (default) */
    QS_OPTIMIZE_NONE = 1, /* constant folding only; every op runs its reference kernel (debugging) */
} qs_optimize_level;

/* How a model's variant is made at load. */
typedef enum {
    QS_VARIANT_FP32 = 0,         /* run in float; a QDQ model is dequantized into float weights */
    QS_VARIANT_INT8_DYNAMIC = 1, /* int8 weights; each conv/gemm input quantized per run from its
                                  * actual range, output back to float */
    QS_VARIANT_INT8_STATIC = 2,  /* whole graph int8 with ranges from a calibrator */
    QS_VARIANT_INT8_QDQ = 3,     /* a pre-quantized model (QDQ or QOperator) run with int8 kernels */
} qs_variant_kind;

/* Range observers for static quantization. */
typedef enum {
    QS_OBSERVER_MINMAX = 0,         /* min and max over all calibration samples */
    QS_OBSERVER_MOVING_MINMAX = 1,  /* exponential moving average of per-batch min and max */
    QS_OBSERVER_PERCENTILE = 2,     /* clip to the given percentile of the value distribution */
    QS_OBSERVER_ENTROPY = 3,        /* threshold minimizing KL divergence (TensorRT-style) */
    QS_OBSERVER_MSE = 4,            /* range minimizing the expected squared quantization error */
} qs_observer_kind;

const char *qs_observer_name(qs_observer_kind kind);

/* Quantization recipe. Zeroed fields take the documented defaults (qs_quant_options_init). */
typedef struct {
    qs_observer_kind observer;        /* static: default MINMAX */
    float percentile;                 /* PERCENTILE: in (50, 100], default 99.99 */
    float averaging_constant;         /* MOVING_MINMAX: in (0, 1], default 0.01 */
    int32_t per_tensor_weights;       /* 0: per output channel (default); 1: one scale per tensor */
    int32_t symmetric_activations;    /* 0: asymmetric (default); 1: zero point at the middle */
    int32_t signed_activations;       /* 0: uint8 (default); 1: int8 (same grid, stored shifted) */
    int32_t reduce_range;             /* static, dynamic: activations on 7 bits (0..127), so that
                                       * CPUs without VNNI run an exact fast kernel (AVX2
                                       * vpmaddubsw); on every CPU alike, results do not depend
                                       * on it. 0: default (on, as PyTorch's x86 qconfig); 1: on;
                                       * -1: off (8 bits). QDQ models keep their given ranges. */
    const char *const *keep_fp32;     /* node names or op types left in float */
    size_t keep_fp32_count;
} qs_quant_options;

void qs_quant_options_init(qs_quant_options *opts);

/* A calibrator runs an fp32 model over samples and collects, for every activation, its range
 * and a bounded histogram (memory does not grow with the number of samples). */
typedef struct qs_calibrator qs_calibrator;

typedef struct {
    qs_variant_kind variant;
    qs_optimize_level optimize;
    /* Frozen inputs: graph inputs replaced by constants before optimization (for shape tensors fed
     * as inputs, e.g. in ONNX backend tests). Names and tensors are copied; NULL/0 for none. */
    const char *const *frozen_input_names;
    const qs_tensor *frozen_inputs;
    size_t frozen_input_count;
    /* int8 variants: the recipe (NULL: defaults) and, for STATIC, the calibration (required;
     * only read during the load call). */
    const qs_quant_options *quant;
    const qs_calibrator *calibration;
} qs_model_options;

/* Default options (fp32, nothing frozen). */
void qs_model_options_init(qs_model_options *opts);

/* A loaded, optimized model: immutable after load, safe to share between threads. */
typedef struct qs_model qs_model;

/* Load an ONNX model. `opts` may be NULL for defaults. On success *out owns the model (free with
 * qs_model_free). Tensors stored as ONNX external data (models over 2 GB) are read from files
 * beside the model: their locations must be relative paths inside the model's directory.
 * Errors: QS_ERR_IO (model or external data file), QS_ERR_MALFORMED_MODEL (bad protobuf, graph or
 * external_data entry), QS_ERR_UNSUPPORTED (op, attribute value or dtype we do not run),
 * QS_ERR_NO_MEMORY. */
qs_status qs_model_load_file(const char *path, const qs_model_options *opts, qs_model **out,
                             qs_error *err);
/* Same from memory; the bytes are not retained after the call. Models with external data need
 * qs_model_load_file (there is no directory to find the data in): QS_ERR_UNSUPPORTED. */
qs_status qs_model_load_memory(const void *data, size_t size, const qs_model_options *opts,
                               qs_model **out, qs_error *err);
void qs_model_free(qs_model *model);

/* Signatures: name (owned by the model), dtype and dims (-1 = dynamic). i < count. */
size_t qs_model_input_count(const qs_model *model);
size_t qs_model_output_count(const qs_model *model);
qs_status qs_model_input(const qs_model *model, size_t i, const char **name, qs_tensor *desc);
qs_status qs_model_output(const qs_model *model, size_t i, const char **name, qs_tensor *desc);

/* What a model holds, in bytes. */
typedef struct {
    uint64_t file_bytes;       /* size of the ONNX file or buffer it came from, plus the external
                                * data read for it */
    uint64_t weight_bytes;     /* parameters at their stored type: weights, biases, quant params
                                * (int8 weights count 1 byte each) */
    uint64_t packed_bytes;     /* resident bytes of the kernels' packed weight copies */
    uint64_t held_bytes;       /* constants still held because a run reads them directly;
                                * packed_bytes + held_bytes is what the weights keep resident */
    uint64_t parameter_count;  /* number of weight/bias elements */
    uint64_t node_count;       /* nodes after optimization */
    uint64_t onnx_node_count;  /* nodes in the ONNX file */
} qs_model_info;
void qs_model_get_info(const qs_model *model, qs_model_info *info);

/* A session runs a model. One per thread; it owns its activation arena and thread pool. */
typedef struct qs_session qs_session;

typedef struct {
    int32_t threads; /* intra-op threads, >= 1 (0 means 1) */
} qs_session_options;

void qs_session_options_init(qs_session_options *opts);

/* Create a session. `opts` may be NULL. The model must outlive the session. */
qs_status qs_session_create(const qs_model *model, const qs_session_options *opts, qs_session **out,
                            qs_error *err);
void qs_session_free(qs_session *session);

/* Run with one tensor per model input, in model order. Input dims must match the signature (a
 * dynamic dim takes any positive size). The first run with new input dims plans memory (and
 * allocates); later runs with the same dims do not allocate. Errors: QS_ERR_INVALID_ARGUMENT,
 * QS_ERR_SHAPE, QS_ERR_NO_MEMORY (when planning). */
qs_status qs_session_run(qs_session *session, const qs_tensor *inputs, size_t n_inputs,
                         qs_error *err);

/* Output i of the last successful run: a view into session memory, valid until the next run or
 * qs_session_free. */
qs_status qs_session_output(const qs_session *session, size_t i, qs_tensor *out);

/* Bytes the session holds for activations and scratch at its current plan. */
uint64_t qs_session_arena_bytes(const qs_session *session);

/* ---- calibration (static quantization) ---- */

/* Create a calibrator for an ONNX model (bytes not retained). opts may be NULL. */
qs_status qs_calibrator_create(const void *onnx, size_t size, const qs_quant_options *opts,
                               qs_calibrator **out, qs_error *err);
void qs_calibrator_free(qs_calibrator *cal);
/* Run the fp32 model on one batch (one tensor per model input) and record every activation. */
qs_status qs_calibrator_observe(qs_calibrator *cal, const qs_tensor *inputs, size_t n_inputs,
                                qs_error *err);
/* Samples (batch items) observed so far. */
uint64_t qs_calibrator_samples(const qs_calibrator *cal);
/* Save the observed statistics to a file, or load them (replacing what was observed). The file
 * records a hash of the model so a cache from another model is refused (QS_ERR_INVALID_ARGUMENT). */
qs_status qs_calibrator_save(const qs_calibrator *cal, const char *path, qs_error *err);
qs_status qs_calibrator_load(qs_calibrator *cal, const char *path, qs_error *err);
/* 64-bit FNV-1a hash of bytes, for cache keys (model, preprocessing, calibration set). */
uint64_t qs_hash_bytes(uint64_t seed, const void *data, size_t size);

/* ---- fp32 vs int8 report ---- */

/* One quantized activation of an int8 model, compared with the fp32 model's value of the same
 * name over the samples added. */
typedef struct {
    const char *name;        /* the float value it stands for (owned by the report) */
    const char *op;          /* op type producing it in the int8 graph */
    float scale;
    int32_t zero_point;
    double clipped;          /* share of fp32 values outside the int8 range */
    double sqnr_db;          /* 10 log10(sum f^2 / sum (f - q)^2); 99 when identical */
    double cosine;           /* cosine similarity of the int8 and fp32 tensors */
    uint64_t elements;
} qs_layer_report;

typedef struct qs_quant_report qs_quant_report;

/* Compare an int8 model with its fp32 counterpart (same inputs and outputs). Both must outlive
 * the report. */
qs_status qs_quant_report_create(const qs_model *fp32, const qs_model *int8,
                                 qs_quant_report **out, qs_error *err);
void qs_quant_report_free(qs_quant_report *r);
/* Run both models on one batch and accumulate. */
qs_status qs_quant_report_add(qs_quant_report *r, const qs_tensor *inputs, size_t n_inputs,
                              qs_error *err);
/* Layers, ranked by SQNR (worst first); pointers valid until the next add or free. */
size_t qs_quant_report_layers(qs_quant_report *r, const qs_layer_report **layers);
/* Whole model over the samples: top-1 agreement, top-5 overlap (mean share of common classes)
 * and mean KL divergence of the int8 softmax from the fp32 softmax, on output 0. */
typedef struct {
    uint64_t samples;
    double top1_agreement;
    double top5_overlap;
    double mean_kl;
} qs_model_agreement;
void qs_quant_report_agreement(const qs_quant_report *r, qs_model_agreement *out);

/* Instruction sets the kernels may use. */
typedef enum {
    QS_ISA_REF = 0,      /* portable C */
    QS_ISA_AVX2 = 1,     /* AVX2 + FMA */
    QS_ISA_AVX512 = 2,   /* AVX-512 F/BW/DQ/VL */
    QS_ISA_AVX512VNNI = 3,
} qs_isa;

/* The ISA the kernels use: the best the CPU and OS support, capped by the environment variable
 * QUANTSERVE_ISA (ref, avx2, avx512, avx512vnni) when set. Decided once per process. */
qs_isa qs_engine_isa(void);
const char *qs_isa_name(qs_isa isa);
const char *qs_engine_version(void);

#ifdef __cplusplus
}
#endif
#endif
