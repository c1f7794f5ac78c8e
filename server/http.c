/* libmicrohttpd plumbing: daemon options, the access and completion callbacks, body intake, access log. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "clock.h"
#include "handlers.h"
#include "log.h"
#include "request.h"
#include "routes.h"

struct qs_http {
    struct MHD_Daemon *daemon;
    qs_app *app;
    uint16_t port;
    MHD_socket quiesced_fd;
};

/* Initial body buffer when the client does not announce a Content-Length (chunked uploads). */
#define BODY_INITIAL_CAP ((size_t)64 << 10)

/* ---- request ids ------------------------------------------------------------------------------ */

/* A client's id is echoed when it is 1..64 characters from [A-Za-z0-9._:-]. */
static bool sane_request_id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > QS_REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ---- request lifetime -------------------------------------------------------------------------- */

static qs_request *request_new(qs_app *app, struct MHD_Connection *conn, const char *url,
                               const char *method)
{
    qs_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->conn = conn;
    req->app = app;
    req->start_ns = qs_clock_ns();
    req->phase = QS_PHASE_HEADERS;
    req->method = qs_method_parse(method);
    snprintf(req->method_text, sizeof req->method_text, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    atomic_init(&req->job_done, false);
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (sane_request_id(given))
        snprintf(req->id, sizeof req->id, "%s", given);
    else
        qs_app_new_request_id(app, req->id, sizeof req->id);
    return req;
}

static void request_free(qs_request *req)
{
    free(req->body);
    free(req->predictions);
    free(req);
}

static void access_log(const qs_request *req, enum MHD_RequestTerminationCode toe)
{
    if (!req->app->config->log.access || !qs_log_enabled(QS_LOG_INFO))
        return;
    double ms = qs_ns_to_ms(qs_clock_ns() - req->start_ns);
    const char *model = req->model ? req->model->cfg->name : "-";
    const char *variant = req->variant ? req->variant->cfg->name : "-";
    /* The path is client input: print it with %.*s after cutting at the first control byte. */
    size_t plen = 0;
    while (req->path[plen] && (unsigned char)req->path[plen] >= 0x20 &&
           (unsigned char)req->path[plen] != 0x7f && req->path[plen] != ' ')
        plen++;
    if (req->http_status)
        qs_log_write(QS_LOG_INFO,
                     "access id=%s method=%.15s path=%.*s model=%s variant=%s status=%u "
                     "latency_ms=%.3f body_bytes=%llu",
                     req->id, req->method_text, (int)plen, req->path, model, variant,
                     req->http_status, ms, (unsigned long long)req->body_seen);
    else
        qs_log_write(QS_LOG_INFO,
                     "access id=%s method=%.15s path=%.*s model=%s variant=%s status=- "
                     "latency_ms=%.3f body_bytes=%llu closed=%s",
                     req->id, req->method_text, (int)plen, req->path, model, variant, ms,
                     (unsigned long long)req->body_seen,
                     toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout" : "client");
}

/* ---- body intake ------------------------------------------------------------------------------- */

/* Store a chunk, or count and drop it once the body is over the limit. Returns false when the
 * client keeps sending far past the limit: the connection is then closed. */
static bool body_consume(qs_request *req, const char *data, size_t size)
{
    uint64_t limit = (uint64_t)req->app->config->limits.max_body_bytes;
    req->body_seen += size;
    if (req->early.status != QS_API_OK)
        return req->body_seen <= 2 * limit + ((uint64_t)1 << 20);
    if (req->body_seen > limit) {
        qs_api_fail(&req->early, QS_API_BODY_TOO_LARGE,
                    "the body is larger than limits.max_body_bytes (%llu bytes)",
                    (unsigned long long)limit);
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return true;
    }
    size_t need = req->body_len + size; /* <= limit <= 1 GiB: no overflow */
    if (need > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : BODY_INITIAL_CAP;
        while (cap < need)
            cap *= 2;
        if (cap > limit)
            cap = (size_t)limit;
        uint8_t *p = realloc(req->body, cap);
        if (!p) {
            qs_api_fail(&req->early, QS_API_OUT_OF_MEMORY, "no memory for a %zu-byte body", need);
            free(req->body);
            req->body = NULL;
            req->body_len = req->body_cap = 0;
            return true;
        }
        req->body = p;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len = need;
    return true;
}

/* ---- callbacks ----------------------------------------------------------------------------------- */

/* First callback: route the request and either answer at once or get ready for the body. */
static void request_start(qs_request *req, const char *url)
{
    if (atomic_load(&req->app->shutting_down)) {
        qs_reject(req, QS_API_SHUTTING_DOWN, "the server is shutting down");
        return;
    }
    const char *allow = NULL;
    qs_route_result r = qs_routes_match(url, req->method, &req->route, req->capture,
                                        sizeof req->capture, &allow);
    if (r == QS_ROUTE_NOT_FOUND) {
        qs_reject(req, QS_API_NOT_FOUND, "no endpoint at this path");
        return;
    }
    if (r == QS_ROUTE_METHOD_NOT_ALLOWED) {
        req->allow = allow;
        qs_reject(req, QS_API_METHOD_NOT_ALLOWED, "%.15s is not allowed here; use %s",
                  req->method_text, allow);
        return;
    }
    if (req->route->begin) {
        req->phase = QS_PHASE_BODY;
        req->route->begin(req);
        return;
    }
    req->route->handle(req);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    (void)version;
    qs_app *app = cls;
    qs_request *req = *req_cls;
    if (!req) {
        req = request_new(app, conn, url, method);
        if (!req)
            return MHD_NO;
        *req_cls = req;
        atomic_fetch_add(&app->in_flight, 1);
        request_start(req, url);
        /* Every path above answers, or moves to the body phase. */
        return req->phase == QS_PHASE_HEADERS ? MHD_NO : MHD_YES;
    }
    switch (req->phase) {
    case QS_PHASE_BODY:
        if (*upload_data_size > 0) {
            bool keep = body_consume(req, upload_data, *upload_data_size);
            *upload_data_size = 0;
            return keep ? MHD_YES : MHD_NO;
        }
        if (req->early.status != QS_API_OK)
            qs_respond_error(req, &req->early);
        else
            req->route->handle(req);
        break;
    case QS_PHASE_QUEUED:
        if (!atomic_load(&req->job_done))
            return MHD_YES;
        qs_predict_finish(req);
        return req->phase == QS_PHASE_ANSWERED ? MHD_YES : MHD_NO;
    case QS_PHASE_ANSWERED:
    case QS_PHASE_HEADERS:
        /* Body bytes after an early answer are dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* A handler that could neither answer nor queue (out of memory): close the connection. */
    return req->phase == QS_PHASE_BODY ? MHD_NO : MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    qs_app *app = cls;
    qs_request *req = *req_cls;
    if (!req)
        return;
    access_log(req, toe);
    request_free(req);
    *req_cls = NULL;
    atomic_fetch_sub(&app->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!qs_log_enabled(QS_LOG_WARN))
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    qs_log_write(QS_LOG_WARN, "http: %s", line);
}

/* ---- daemon ------------------------------------------------------------------------------------------ */

qs_http *qs_http_start(qs_app *app, char *message, size_t message_size)
{
    const qs_config *cfg = app->config;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    memset(&sin, 0, sizeof sin);
    memset(&sin6, 0, sizeof sin6);
    if (inet_pton(AF_INET, cfg->server.listen, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons((uint16_t)cfg->server.port);
        addr = (struct sockaddr *)&sin;
    } else if (inet_pton(AF_INET6, cfg->server.listen, &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons((uint16_t)cfg->server.port);
        addr = (struct sockaddr *)&sin6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(message, message_size, "server.listen: \"%s\" is not an IP address",
                 cfg->server.listen);
        return NULL;
    }
    qs_http *http = calloc(1, sizeof *http);
    if (!http) {
        snprintf(message, message_size, "out of memory");
        return NULL;
    }
    http->app = app;
    http->quiesced_fd = MHD_INVALID_SOCKET;
    struct MHD_OptionItem opts[] = {
        /* The logger first, so that MHD routes every later message through it. */
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, addr},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->server.max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->server.connection_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, app},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        /* One thread is MHD's default; a pool only from two on. */
        {cfg->server.http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)cfg->server.http_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    http->daemon = MHD_start_daemon(flags, (uint16_t)cfg->server.port, NULL, NULL, on_access, app,
                                    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!http->daemon) {
        snprintf(message, message_size, "cannot listen on %s port %d (the reason is logged above)",
                 cfg->server.listen, cfg->server.port);
        free(http);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
    http->port = info ? info->port : (uint16_t)cfg->server.port;
    return http;
}

uint16_t qs_http_port(const qs_http *http)
{
    return http->port;
}

void qs_http_quiesce(qs_http *http)
{
    if (http && http->daemon && http->quiesced_fd == MHD_INVALID_SOCKET)
        http->quiesced_fd = MHD_quiesce_daemon(http->daemon);
}

void qs_http_stop(qs_http *http)
{
    if (!http)
        return;
    if (http->daemon)
        MHD_stop_daemon(http->daemon);
    /* MHD leaves a quiesced socket to us, to close only after the threads are gone. */
    if (http->quiesced_fd != MHD_INVALID_SOCKET)
        close(http->quiesced_fd);
    free(http);
}
