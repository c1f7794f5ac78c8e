/* The HTTP front end on libmicrohttpd: the daemon, request callbacks, body intake, access log. */
#ifndef QS_SERVER_HTTP_H
#define QS_SERVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct qs_app;
typedef struct qs_http qs_http;

/* Listen on app->config's server.listen:port with server.http_threads threads. Returns NULL and
 * writes why into `message` when the socket cannot be opened. */
qs_http *qs_http_start(struct qs_app *app, char *message, size_t message_size);
uint16_t qs_http_port(const qs_http *http);
/* Stop accepting new connections; open ones keep being served. */
void qs_http_quiesce(qs_http *http);
/* Close every connection and stop the threads. NULL-safe. */
void qs_http_stop(qs_http *http);

#endif /* QS_SERVER_HTTP_H */
