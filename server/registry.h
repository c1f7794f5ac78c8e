/* The model registry: every configured model and variant, its load state, engine model and sessions. */
#ifndef QS_SERVER_REGISTRY_H
#define QS_SERVER_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "preprocess.h"
#include "progress.h"
#include "qs_config.h"
#include "quant_report.h"
#include "quantserve/engine.h"
#include "stats.h"

/* Life of a variant: queued -> loading (-> calibrating, static int8) -> warming (-> reporting,
 * int8 with a report) -> ready, or failed from any step. Columns: enum, phase, public state. */
#define QS_LOAD_STATE_LIST(X)                        \
    X(QS_LOAD_QUEUED, "queued", "loading")           \
    X(QS_LOAD_LOADING, "loading", "loading")         \
    X(QS_LOAD_CALIBRATING, "calibrating", "loading") \
    X(QS_LOAD_WARMING, "warming", "loading")         \
    X(QS_LOAD_REPORTING, "reporting", "loading")     \
    X(QS_LOAD_READY, "ready", "ready")               \
    X(QS_LOAD_FAILED, "failed", "failed")

typedef enum {
#define QS_LOAD_STATE_ENUM(name, phase, state) name,
    QS_LOAD_STATE_LIST(QS_LOAD_STATE_ENUM)
#undef QS_LOAD_STATE_ENUM
    QS_LOAD_STATE_COUNT
} qs_load_state;

/* The public state ("loading", "ready", "failed") and the finer phase ("queued", "warming"). */
const char *qs_load_state_to_string(qs_load_state state);
const char *qs_load_state_phase(qs_load_state state);

struct qs_model_entry;

/*
 * One variant. Everything but `state` is written by the loader thread before it publishes READY
 * or FAILED (release); readers load the state (acquire) and then read the fields of a READY or
 * FAILED variant freely: they never change again until qs_registry_free.
 */
typedef struct qs_variant {
    const qs_variant_config *cfg;
    struct qs_model_entry *model;
    _Atomic int state;          /* qs_load_state */
    char reason[480];           /* why it failed */
    qs_model *engine;
    qs_session **sessions;      /* one per worker: worker i runs sessions[i] */
    size_t session_count;
    size_t input_index;         /* the model input that takes the image */
    size_t output_index;        /* the model output that holds the class scores */
    qs_tensor input;            /* its shape with the batch set to 1 (data NULL) */
    size_t input_numel;
    size_t class_count;
    qs_model_info info;
    uint64_t arena_bytes;       /* sum of qs_session_arena_bytes over the sessions, after warm-up */
    double load_ms, warmup_ms;
    size_t calibration_used;    /* static int8: images observed, and skipped (unreadable) */
    size_t calibration_skipped;
    double calibration_ms;
    uint64_t calibration_key;   /* their cache key (0 without a cache) */
    char *cache_path;           /* the cache file read or written; NULL without a cache */
    qs_progress calibration_progress; /* the image steps at load, readable at any time; their
                                       * `cached` says the result came from the cache */
    qs_progress report_progress;
    qs_variant_report report;   /* the fp32-vs-int8 report (int8 modes) */
    qs_stats *stats;
} qs_variant;

typedef struct qs_model_entry {
    const qs_model_config *cfg;
    qs_preprocess_spec spec;    /* the image pipeline's form of cfg->preprocess */
    qs_labels labels;           /* empty when not configured; written before any variant is ready */
    qs_variant *variants;
    size_t variant_count;
} qs_model_entry;

typedef struct qs_registry qs_registry;

/* Build the registry for `config` (borrowed: it must outlive the registry). Every variant starts
 * QUEUED; nothing is loaded yet. session_count: sessions per variant (the worker count);
 * intra_op_threads: threads of each session. Returns NULL when out of memory. */
qs_registry *qs_registry_create(const qs_config *config, size_t session_count,
                                int32_t intra_op_threads, int64_t now_s);

/* Decoder limits used for calibration images (default: the image library's). */
void qs_registry_set_image_limits(qs_registry *registry, const qs_image_limits *limits);

/* Start the loader thread: models in config order; in each, its fp32 variants in order, then the
 * others in order (so int8 reports reuse the loaded fp32 model). Each is loaded (static int8:
 * calibrated first on its images), checked against its preprocessing, given its sessions and
 * warmed up with one inference per session.
 * A failure marks only that variant FAILED with the reason. Returns false if the thread cannot
 * start (then every variant is FAILED). */
bool qs_registry_start(qs_registry *registry);

/* Ask the loader to stop after its current step and wait for it. Variants not reached are marked
 * FAILED ("shutting down"). Idempotent. */
void qs_registry_stop(qs_registry *registry);

/* Stops the loader if needed and frees every model, session and stats. NULL-safe. */
void qs_registry_free(qs_registry *registry);

size_t qs_registry_model_count(const qs_registry *registry);
qs_model_entry *qs_registry_model(qs_registry *registry, size_t index);
/* NULL when no model has that name. */
qs_model_entry *qs_registry_find_model(qs_registry *registry, const char *name);
/* NULL when the model has no variant of that name; name NULL gives the default variant. */
qs_variant *qs_model_entry_find_variant(qs_model_entry *model, const char *name);

qs_load_state qs_variant_state(const qs_variant *variant);
/* True when every variant of every model is READY. */
bool qs_registry_all_ready(qs_registry *registry);
/* True once the loader has gone through every variant (each READY or FAILED). */
bool qs_registry_settled(qs_registry *registry);

/* Label of a class, NULL when the model has no labels. */
const char *qs_model_entry_label(const qs_model_entry *model, size_t index);

/* Map a model's preprocessing config onto the image pipeline's spec. */
void qs_preprocess_spec_from_config(const qs_preprocess_config *cfg, qs_preprocess_spec *spec);

#endif /* QS_SERVER_REGISTRY_H */
