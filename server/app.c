/* Daemon lifecycle: start the parts in an order that lets /health answer during loading; stop gently. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "http.h"
#include "log.h"

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void qs_app_new_request_id(qs_app *app, char *buf, size_t size)
{
    uint64_t n = atomic_fetch_add(&app->id_counter, 1);
    /* A bijection of the counter keyed by the start-up seed: unique, and not guessable in order. */
    snprintf(buf, size, "%016llx", (unsigned long long)mix64(app->id_seed + n * 0x9e3779b97f4a7c15u));
}

qs_app *qs_app_start(const qs_config *config, char *message, size_t message_size)
{
    qs_app *app = calloc(1, sizeof *app);
    if (!app) {
        snprintf(message, message_size, "out of memory");
        return NULL;
    }
    app->config = config;
    app->start_ns = qs_clock_ns();
    app->start_s = qs_clock_s();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    app->id_seed = mix64((uint64_t)rt.tv_nsec ^ ((uint64_t)rt.tv_sec << 20) ^
                         ((uint64_t)getpid() << 40));
    atomic_init(&app->id_counter, 0);
    atomic_init(&app->in_flight, 0);
    atomic_init(&app->shutting_down, false);

    int32_t threads = qs_config_intra_op_threads(config);
    qs_image_limits limits = {
        .max_pixels = (uint64_t)config->limits.max_image_pixels,
        .max_side = (uint32_t)config->limits.max_image_side,
        .dct_scale_min_side = 0,
    };
    app->registry = qs_registry_create(config, (size_t)config->workers.count, threads, app->start_s);
    if (!app->registry) {
        snprintf(message, message_size, "out of memory for the model registry");
        goto fail;
    }
    qs_registry_set_image_limits(app->registry, &limits);
    app->workers = qs_workers_create((size_t)config->workers.count,
                                     (size_t)config->limits.queue_depth, &limits);
    if (!app->workers) {
        snprintf(message, message_size, "cannot start %d worker threads", config->workers.count);
        goto fail;
    }
    app->http = qs_http_start(app, message, message_size);
    if (!app->http)
        goto fail;
    QS_INFO("quantserve %s listening on http://%s%s%s:%u/ (%d http threads, %d workers x %d "
            "intra-op threads, queue depth %d, engine %s, isa %s)",
            PACKAGE_VERSION, strchr(config->server.listen, ':') ? "[" : "", config->server.listen,
            strchr(config->server.listen, ':') ? "]" : "", (unsigned)qs_http_port(app->http),
            config->server.http_threads, config->workers.count, threads,
            config->limits.queue_depth, qs_engine_version(), qs_isa_name(qs_engine_isa()));
    qs_registry_start(app->registry);
    return app;
fail:
    qs_app_free(app);
    return NULL;
}

uint16_t qs_app_port(const qs_app *app)
{
    return qs_http_port(app->http);
}

void qs_app_shutdown(qs_app *app)
{
    if (!app || atomic_exchange(&app->shutting_down, true))
        return;
    QS_INFO("shutting down: no new connections; waiting for %ld request(s) in flight",
            atomic_load(&app->in_flight));
    qs_http_quiesce(app->http);
    uint64_t deadline = qs_clock_ns() + (uint64_t)app->config->server.shutdown_timeout_s * 1000000000u;
    while (atomic_load(&app->in_flight) > 0 && qs_clock_ns() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    long left = atomic_load(&app->in_flight);
    if (left > 0)
        QS_WARN("shutdown: %ld request(s) still in flight after %d s; closing them",
                left, app->config->server.shutdown_timeout_s);
    qs_registry_stop(app->registry);
    /* Jobs still queued are answered 503; every suspended connection gets resumed. */
    qs_workers_stop(app->workers);
    qs_http_stop(app->http);
    app->http = NULL;
    QS_INFO("shutdown complete");
}

void qs_app_free(qs_app *app)
{
    if (!app)
        return;
    if (app->http)
        qs_app_shutdown(app);
    qs_http_stop(app->http);
    qs_workers_free(app->workers);
    qs_registry_free(app->registry);
    free(app);
}
