/* The running daemon: config, registry, workers and HTTP front end, started and stopped together. */
#ifndef QS_SERVER_APP_H
#define QS_SERVER_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qs_config.h"
#include "registry.h"
#include "workers.h"

struct qs_http;

typedef struct qs_app {
    const qs_config *config;      /* borrowed: outlives the app */
    qs_registry *registry;
    qs_workers *workers;
    struct qs_http *http;
    int64_t start_s;              /* monotonic seconds at start (the stats clock) */
    uint64_t start_ns;
    _Atomic bool shutting_down;
    _Atomic long in_flight;       /* requests between their first and their completion callback */
    uint64_t id_seed;
    _Atomic uint64_t id_counter;
} qs_app;

/* Start in this order: registry (nothing loaded), workers, the HTTP socket, then the loader
 * thread, so /health answers while models load. On failure returns NULL and writes why into
 * `message`. `config` must outlive the app. */
qs_app *qs_app_start(const qs_config *config, char *message, size_t message_size);

/* The bound TCP port (useful with port 0). */
uint16_t qs_app_port(const qs_app *app);

/* Graceful stop: stop accepting connections, answer new requests on open connections with 503,
 * wait up to server.shutdown_timeout_s for requests in flight, stop the loader and the workers,
 * close the HTTP daemon. Idempotent. */
void qs_app_shutdown(qs_app *app);

/* Shuts down if needed and frees everything. NULL-safe. */
void qs_app_free(qs_app *app);

/* A fresh request id: 16 hex digits, unique within the process. buf holds at least 17 bytes. */
void qs_app_new_request_id(qs_app *app, char *buf, size_t size);

#endif /* QS_SERVER_APP_H */
