/* The calibration cache: a calibrator's statistics saved under a key of everything they depend
 * on, so a restart with the same model, preprocessing and images skips the calibration run. */
#ifndef QS_SERVER_CALIB_CACHE_H
#define QS_SERVER_CALIB_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calibration.h"
#include "preprocess.h"
#include "qs_config.h"
#include "quantserve/engine.h"

/* Key of a calibration: the ONNX bytes, the preprocessing, the images' contents (in order), the
 * moving-average constant (it shapes the recorded statistics), the build (qs_cache_build_id)
 * and the ISA (the fp32 kernels round differently per ISA). The
 * observer and its percentile are not in it: they are applied to the same statistics after, so
 * switching observers reuses the cache. (The engine also checks the model's hash on load.) */
uint64_t qs_calib_cache_key(const void *onnx, size_t size, const qs_preprocess_spec *spec,
                            const qs_calibration_set *set, double averaging_constant);

/* The cache directory: cache.dir, else $XDG_CACHE_HOME/quantserve, else $HOME/.cache/quantserve.
 * NULL when the cache is disabled or no directory can be named. Caller frees. */
char *qs_calib_cache_dir(const qs_config *config);

/* Hash of the preprocessing (every field, floats exactly), continuing from seed. */
uint64_t qs_cache_hash_preprocess(uint64_t seed, const qs_preprocess_spec *spec);

/* Identity of the running build: a hash of the executable's bytes (/proc/self/exe, where the
 * engine is linked in), else of the engine version. Part of every cache key, so a rebuilt
 * engine (another branch, a fix in a kernel) never reads statistics or reports made by another
 * build. Computed once; thread-safe. */
uint64_t qs_cache_build_id(void);

/* Hash of a file's bytes, continuing from *h. False when it cannot be read. */
bool qs_cache_hash_file(const char *path, uint64_t *h);

/* File suffixes: the calibrator's statistics, and the fp32-vs-int8 report of the variant. */
#define QS_CACHE_CALIBRATION ".qscal"
#define QS_CACHE_REPORT ".report.json"

/* "<dir>/<model>@<variant>@<key, 16 hex digits><suffix>" ('@' never occurs in names). False
 * when it does not fit. */
bool qs_calib_cache_path(const char *dir, const char *model, const char *variant, uint64_t key,
                         const char *suffix, char *out, size_t size);

/* Create the directory and its parents when missing. False with the reason in message. */
bool qs_cache_make_dir(const char *dir, char *message, size_t message_size);

/* Remove the files "<model>@<variant>@*<suffix>" in dir other than `keep` (stale keys). */
void qs_cache_remove_stale(const char *dir, const char *model, const char *variant,
                           const char *suffix, const char *keep);

/* Save the calibrator's statistics at `path` (in `dir`, created with its parents when missing)
 * and remove the other caches of the same model and variant (stale keys). False with the
 * reason in message when it cannot be written; the server then runs without the cache. */
bool qs_calib_cache_store(const qs_calibrator *cal, const char *dir, const char *model,
                          const char *variant, const char *path, char *message,
                          size_t message_size);

#endif /* QS_SERVER_CALIB_CACHE_H */
