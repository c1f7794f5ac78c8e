/* The server's answer codes: one X-macro table gives each its HTTP status, stable code and retry hint. */
#ifndef QS_SERVER_API_STATUS_H
#define QS_SERVER_API_STATUS_H

#include <stdbool.h>

/* Columns: enum suffix, HTTP status, stable code string (the JSON error "code"), whether the
 * answer carries Retry-After (the condition is temporary). */
#define QS_API_STATUS_LIST(X)                                               \
    X(OK, 200, "ok", false)                                                 \
    X(BAD_REQUEST, 400, "bad_request", false)                               \
    X(INVALID_PARAMETER, 400, "invalid_parameter", false)                   \
    X(EMPTY_BODY, 400, "empty_body", false)                                 \
    X(MALFORMED_MULTIPART, 400, "malformed_multipart", false)               \
    X(CORRUPT_IMAGE, 400, "corrupt_image", false)                           \
    X(NOT_FOUND, 404, "not_found", false)                                   \
    X(MODEL_NOT_FOUND, 404, "model_not_found", false)                       \
    X(VARIANT_NOT_FOUND, 404, "variant_not_found", false)                   \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed", false)                 \
    X(BODY_TOO_LARGE, 413, "body_too_large", false)                         \
    X(IMAGE_TOO_LARGE, 413, "image_too_large", false)                       \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type", false)         \
    X(UNSUPPORTED_IMAGE_FORMAT, 415, "unsupported_image_format", false)     \
    X(UNPROCESSABLE_IMAGE, 422, "unprocessable_image", false)               \
    X(INTERNAL, 500, "internal_error", false)                               \
    X(QUEUE_FULL, 503, "queue_full", true)                                  \
    X(NOT_READY, 503, "variant_not_ready", true)                            \
    X(VARIANT_FAILED, 503, "variant_failed", false)                         \
    X(TIMEOUT, 503, "timeout", true)                                        \
    X(SHUTTING_DOWN, 503, "shutting_down", true)                            \
    X(OUT_OF_MEMORY, 503, "out_of_memory", true)

typedef enum {
#define QS_API_STATUS_ENUM(name, http, code, retry) QS_API_##name,
    QS_API_STATUS_LIST(QS_API_STATUS_ENUM)
#undef QS_API_STATUS_ENUM
    QS_API_STATUS_COUNT
} qs_api_status;

/* HTTP status (500 when out of range), stable code ("queue_full"; "internal_error" when out of
 * range) and whether to send Retry-After. */
unsigned qs_api_status_http(qs_api_status status);
const char *qs_api_status_code(qs_api_status status);
bool qs_api_status_retry(qs_api_status status);

/* Reason phrase of an HTTP status for logs ("Service Unavailable"); "Unknown" otherwise. */
const char *qs_http_reason(unsigned http_status);

/* Caller-provided error for request processing. The first error wins (later ones are ignored). */
typedef struct {
    qs_api_status status;
    char message[256];
} qs_api_error;

void qs_api_error_clear(qs_api_error *err);
/* Record an error unless one is already set; returns false so callers can `return qs_api_fail(...)`.
 * err may be NULL. */
bool qs_api_fail(qs_api_error *err, qs_api_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* QS_SERVER_API_STATUS_H */
