/* Test helper: a minimal blocking HTTP/1.1 client over a plain socket to 127.0.0.1. */
#ifndef QST_HTTP_CLIENT_H
#define QST_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define QST_HTTP_MAX_HEADERS 32

typedef struct {
    int status;                /* 0 when no status line came back (connection reset, timeout) */
    size_t header_count;
    char *names[QST_HTTP_MAX_HEADERS];
    char *values[QST_HTTP_MAX_HEADERS];
    char *body;                /* NUL-terminated, body_len bytes before the NUL */
    size_t body_len;
    char *raw;                 /* the whole answer; names/values/body point into it */
} qst_http_response;

/*
 * Send one request with "Connection: close" and read the answer until the server closes.
 *   headers     NULL or a NULL-terminated list of "Name: value" lines (no CRLF)
 *   body        body bytes (may be NULL when body_len is 0)
 *   chunked     send the body with Transfer-Encoding: chunked instead of Content-Length
 * Returns 0 when an answer was parsed, -1 on a socket error (out->status is then 0).
 * Reads time out after 30 s.
 */
int qst_http_request(uint16_t port, const char *method, const char *path,
                     const char *const *headers, const void *body, size_t body_len, int chunked,
                     qst_http_response *out);

/* Send raw bytes (a hand-made request, possibly incomplete) and read the answer. */
int qst_http_raw(uint16_t port, const void *bytes, size_t size, qst_http_response *out);

/* Case-insensitive header lookup; NULL when absent. */
const char *qst_http_header(const qst_http_response *r, const char *name);

void qst_http_response_free(qst_http_response *r);

#endif /* QST_HTTP_CLIENT_H */
