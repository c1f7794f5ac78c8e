/* Tables behind qs_api_status: HTTP status, code string and retry hint per answer, and reason phrases. */
#include "api_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    unsigned http;
    const char *code;
    bool retry;
} api_status_info;

static const api_status_info infos[QS_API_STATUS_COUNT] = {
#define QS_API_STATUS_INFO(name, http, code, retry) [QS_API_##name] = {http, code, retry},
    QS_API_STATUS_LIST(QS_API_STATUS_INFO)
#undef QS_API_STATUS_INFO
};

unsigned qs_api_status_http(qs_api_status status)
{
    return (unsigned)status < QS_API_STATUS_COUNT ? infos[status].http : 500;
}

const char *qs_api_status_code(qs_api_status status)
{
    return (unsigned)status < QS_API_STATUS_COUNT ? infos[status].code : "internal_error";
}

bool qs_api_status_retry(qs_api_status status)
{
    return (unsigned)status < QS_API_STATUS_COUNT && infos[status].retry;
}

/* The statuses this server sends. */
#define QS_HTTP_REASON_LIST(X)                 \
    X(200, "OK")                               \
    X(400, "Bad Request")                      \
    X(404, "Not Found")                        \
    X(405, "Method Not Allowed")               \
    X(413, "Content Too Large")                \
    X(415, "Unsupported Media Type")           \
    X(422, "Unprocessable Content")            \
    X(500, "Internal Server Error")            \
    X(503, "Service Unavailable")

const char *qs_http_reason(unsigned http_status)
{
    switch (http_status) {
#define QS_HTTP_REASON_CASE(code, text) \
    case code: return text;
        QS_HTTP_REASON_LIST(QS_HTTP_REASON_CASE)
#undef QS_HTTP_REASON_CASE
    default: return "Unknown";
    }
}

void qs_api_error_clear(qs_api_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

bool qs_api_fail(qs_api_error *err, qs_api_status status, const char *fmt, ...)
{
    if (!err || err->status != QS_API_OK)
        return false;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}
