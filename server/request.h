/* Per-request state, kept in MHD's req_cls from the first callback to the completion callback. */
#ifndef QS_SERVER_REQUEST_H
#define QS_SERVER_REQUEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api_status.h"
#include "inference.h"
#include "qs_config.h"
#include "registry.h"

struct MHD_Connection;
struct qs_app;
struct qs_request;

#define QS_REQUEST_ID_MAX 64
#define QS_REQUEST_PATH_MAX 256

typedef enum { QS_METHOD_GET, QS_METHOD_HEAD, QS_METHOD_POST, QS_METHOD_OTHER } qs_method;

/* Called once the whole request (headers and body) is in; must answer (qs_respond_*) or hand the
 * request to a worker and suspend it. */
typedef void (*qs_handler_fn)(struct qs_request *req);
/* Called when the headers are in, before any body byte, for routes that take a body: checks what
 * can be checked early. Returns false after answering (an error). */
typedef bool (*qs_begin_fn)(struct qs_request *req);

typedef struct {
    const char *pattern;   /* "/models/{}/stats": {} captures one path segment */
    qs_method method;      /* GET routes also answer HEAD */
    qs_begin_fn begin;     /* non-NULL for routes that take a body */
    qs_handler_fn handle;
} qs_route;

typedef enum {
    QS_PHASE_HEADERS,   /* first callback not done yet */
    QS_PHASE_BODY,      /* receiving the body */
    QS_PHASE_QUEUED,    /* suspended while a worker runs the job */
    QS_PHASE_ANSWERED,  /* a response is queued */
} qs_request_phase;

typedef struct qs_request {
    struct MHD_Connection *conn;
    struct qs_app *app;
    const qs_route *route;
    qs_request_phase phase;
    qs_method method;
    char method_text[16];
    char path[QS_REQUEST_PATH_MAX];     /* cut for logs when longer */
    char capture[QS_CONFIG_NAME_MAX + 2]; /* the {} segment, cut (so never a valid long name) */
    char id[QS_REQUEST_ID_MAX + 1];
    uint64_t start_ns;

    /* body: a buffer that grows up to limits.max_body_bytes; past that the rest is discarded */
    uint8_t *body;
    size_t body_len, body_cap;
    uint64_t body_seen;
    qs_api_error early;                 /* an error found while reading the body */

    /* what the request is about, for logs and stats */
    qs_model_entry *model;
    qs_variant *variant;

    /* predict */
    qs_job job;
    qs_prediction *predictions;
    int32_t topk;
    bool multipart;
    char boundary[72];
    _Atomic bool job_done;

    /* answer */
    unsigned http_status;
    const char *allow;                  /* Allow header for 405 */
    char server_timing[256];            /* Server-Timing header, "" for none */
} qs_request;

/* Query argument or header value, NULL when absent. */
const char *qs_request_query(const qs_request *req, const char *key);
const char *qs_request_header(const qs_request *req, const char *name);

/* Answer with a JSON body (stolen, may be NULL: then 500). Adds Content-Type, X-Request-Id, and
 * when set Allow, Server-Timing, Retry-After (for retryable errors) and Connection: close (while
 * shutting down). Records the variant's stats when the request has one. */
void qs_respond_json(qs_request *req, unsigned http_status, json_t *body);
/* Answer {"error": {"code", "message"}} with the status's HTTP code. */
void qs_respond_error(qs_request *req, const qs_api_error *err);
void qs_respond_fail(qs_request *req, qs_api_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuse a request found wrong from its headers. When a body is on its way (Content-Length > 0 or
 * chunked) and the refusal is not BODY_TOO_LARGE, the answer waits until the body has been read
 * and dropped: answering first and closing with unread bytes makes the kernel reset the
 * connection, and the client could lose the answer. Otherwise it answers now. */
void qs_reject(qs_request *req, qs_api_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* QS_SERVER_REQUEST_H */
