/* Responses: JSON bodies with the standard headers, the error envelope, and per-variant stats. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "log.h"
#include "request.h"

static const char fallback_body[] =
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"cannot build the response\"}}\n";

static void record_stats(qs_request *req, unsigned http_status)
{
    if (!req->variant || !req->variant->stats)
        return;
    uint64_t total_ns = qs_clock_ns() - req->start_ns;
    bool ok = http_status == 200;
    bool has_inference = ok && req->job.inference_ns > 0;
    qs_stats_record(req->variant->stats, qs_clock_s(), ok, total_ns / 1000u, has_inference,
                    req->job.inference_ns / 1000u);
}

static void add_header(struct MHD_Response *resp, const char *name, const char *value)
{
    if (MHD_add_response_header(resp, name, value) != MHD_YES)
        QS_WARN("cannot add response header %s", name);
}

/* Serialize body (stolen) with a trailing newline; NULL when out of memory. */
static char *serialize(json_t *body, size_t *len)
{
    /* Nine significant digits: enough for scores and milliseconds, without float noise. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    char *with_nl = realloc(text, n + 2);
    if (with_nl) {
        text = with_nl;
        text[n++] = '\n';
        text[n] = '\0';
    }
    *len = n;
    return text;
}

static void send_json(qs_request *req, unsigned http_status, json_t *body, bool retry_after)
{
    size_t len = 0;
    char *text = serialize(body, &len);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) {
        free(text);
        http_status = 500;
        retry_after = false;
        resp = MHD_create_response_from_buffer(sizeof fallback_body - 1, (void *)fallback_body,
                                               MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return; /* the access handler sees no answer and closes the connection */
    }
    add_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    add_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_header(resp, "X-Request-Id", req->id);
    if (req->allow)
        add_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (req->server_timing[0])
        add_header(resp, "Server-Timing", req->server_timing);
    if (retry_after)
        add_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (atomic_load(&req->app->shutting_down))
        add_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (MHD_queue_response(req->conn, http_status, resp) == MHD_YES) {
        req->http_status = http_status;
        req->phase = QS_PHASE_ANSWERED;
        record_stats(req, http_status);
    } else {
        QS_WARN("request %s: cannot queue the %u response", req->id, http_status);
    }
    MHD_destroy_response(resp);
}

void qs_respond_json(qs_request *req, unsigned http_status, json_t *body)
{
    send_json(req, body ? http_status : 500, body, false);
}

/* Messages may quote client input: keep printable ASCII only, so the JSON is always valid. */
static void sanitize(char *out, size_t size, const char *in)
{
    size_t i = 0;
    for (; in[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[i] = '\0';
}

void qs_respond_error(qs_request *req, const qs_api_error *err)
{
    qs_api_status status = err->status == QS_API_OK ? QS_API_INTERNAL : err->status;
    char message[sizeof err->message];
    sanitize(message, sizeof message, err->message[0] ? err->message : qs_api_status_code(status));
    json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", qs_api_status_code(status),
                             "message", message);
    unsigned http = qs_api_status_http(status);
    QS_DEBUG("request %s: %u %s: %s", req->id, http, qs_api_status_code(status), message);
    send_json(req, body ? http : 500, body, qs_api_status_retry(status));
}

void qs_respond_fail(qs_request *req, qs_api_status status, const char *fmt, ...)
{
    qs_api_error err;
    qs_api_error_clear(&err);
    err.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    qs_respond_error(req, &err);
}

static bool body_on_its_way(const qs_request *req)
{
    const char *cl = qs_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strcmp(cl, "0") != 0)
        return true;
    return qs_request_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

void qs_reject(qs_request *req, qs_api_status status, const char *fmt, ...)
{
    qs_api_error err;
    qs_api_error_clear(&err);
    err.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    bool before_body = req->phase == QS_PHASE_HEADERS || req->phase == QS_PHASE_BODY;
    if (before_body && status != QS_API_BODY_TOO_LARGE && body_on_its_way(req)) {
        req->early = err;
        req->phase = QS_PHASE_BODY;
        return;
    }
    qs_respond_error(req, &err);
}
