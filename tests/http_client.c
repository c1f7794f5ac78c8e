/* Test helper: blocking HTTP/1.1 client: one connection per request, the answer read to EOF. */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int connect_local(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Write everything; a failure (the server closed early) is not fatal: the answer may be there. */
static void send_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size > 0) {
        ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        p += n;
        size -= (size_t)n;
    }
}

static char *read_all(int fd, size_t *len)
{
    size_t cap = 16384, used = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (used == cap) {
            char *p = realloc(buf, cap * 2 + 1);
            if (!p)
                break;
            buf = p;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + used, cap - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    buf[used] = '\0';
    *len = used;
    return buf;
}

/* Decode a chunked body in place; returns its length. */
static size_t dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end = NULL;
        unsigned long n = strtoul(body + in, &end, 16);
        char *crlf = strstr(body + in, "\r\n");
        if (!crlf || end == body + in)
            break;
        in = (size_t)(crlf - body) + 2;
        if (n == 0 || in + n > len)
            break;
        memmove(body + out, body + in, n);
        out += n;
        in += n + 2;
    }
    body[out] = '\0';
    return out;
}

static int parse(char *raw, size_t len, qst_http_response *out)
{
    out->raw = raw;
    char *hdr_end = strstr(raw, "\r\n\r\n");
    if (len < 12 || strncmp(raw, "HTTP/1.", 7) != 0 || !hdr_end)
        return -1;
    out->status = atoi(raw + 9);
    *hdr_end = '\0';
    out->body = hdr_end + 4;
    out->body_len = len - (size_t)(out->body - raw);
    char *line = strstr(raw, "\r\n");
    while (line && line < hdr_end && out->header_count < QST_HTTP_MAX_HEADERS) {
        line += 2;
        char *next = strstr(line, "\r\n");
        if (next)
            *next = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            out->names[out->header_count] = line;
            out->values[out->header_count] = v;
            out->header_count++;
        }
        line = next;
    }
    const char *te = qst_http_header(out, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") == 0)
        out->body_len = dechunk(out->body, out->body_len);
    return 0;
}

int qst_http_raw(uint16_t port, const void *bytes, size_t size, qst_http_response *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_local(port);
    if (fd < 0)
        return -1;
    send_all(fd, bytes, size);
    size_t len = 0;
    char *raw = read_all(fd, &len);
    close(fd);
    if (!raw)
        return -1;
    if (parse(raw, len, out) != 0) {
        out->status = 0;
        return -1;
    }
    return 0;
}

int qst_http_request(uint16_t port, const char *method, const char *path,
                     const char *const *headers, const void *body, size_t body_len, int chunked,
                     qst_http_response *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 1024 + body_len + (chunked ? 64 : 0);
    for (size_t i = 0; headers && headers[i]; i++)
        cap += strlen(headers[i]) + 2;
    char *req = malloc(cap);
    if (!req)
        return -1;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n",
                     method, path, (unsigned)port);
    size_t used = (size_t)n;
    for (size_t i = 0; headers && headers[i]; i++)
        used += (size_t)snprintf(req + used, cap - used, "%s\r\n", headers[i]);
    if (chunked && body_len)
        used += (size_t)snprintf(req + used, cap - used, "Transfer-Encoding: chunked\r\n\r\n%zx\r\n",
                                 body_len);
    else if (chunked)
        used += (size_t)snprintf(req + used, cap - used, "Transfer-Encoding: chunked\r\n\r\n");
    else if (body || body_len || strcmp(method, "POST") == 0)
        used += (size_t)snprintf(req + used, cap - used, "Content-Length: %zu\r\n\r\n", body_len);
    else
        used += (size_t)snprintf(req + used, cap - used, "\r\n");
    if (body_len)
        memcpy(req + used, body, body_len);
    used += body_len;
    if (chunked)
        used += (size_t)snprintf(req + used, cap - used, "%s0\r\n\r\n", body_len ? "\r\n" : "");

    int rc = qst_http_raw(port, req, used, out);
    free(req);
    return rc;
}

const char *qst_http_header(const qst_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

void qst_http_response_free(qst_http_response *r)
{
    free(r->raw);
    memset(r, 0, sizeof *r);
}
