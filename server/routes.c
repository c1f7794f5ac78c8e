/* Route table and path matching: exact segments plus one {} wildcard segment per pattern. */
#include "routes.h"

#include <stdbool.h>
#include <string.h>

#include "handlers.h"

static const qs_route routes[] = {
    {"/health", QS_METHOD_GET, NULL, qs_handle_health},
    {"/health/ready", QS_METHOD_GET, NULL, qs_handle_ready},
    {"/models", QS_METHOD_GET, NULL, qs_handle_models},
    {"/models/{}", QS_METHOD_GET, NULL, qs_handle_model},
    {"/models/{}/size", QS_METHOD_GET, NULL, qs_handle_model_size},
    {"/models/{}/stats", QS_METHOD_GET, NULL, qs_handle_model_stats},
    {"/models/{}/quantization", QS_METHOD_GET, NULL, qs_handle_model_quantization},
    {"/models/{}/predict", QS_METHOD_POST, qs_predict_begin, qs_handle_predict},
    {"/predict", QS_METHOD_POST, qs_predict_begin, qs_handle_predict},
};

qs_method qs_method_parse(const char *text)
{
    if (strcmp(text, "GET") == 0)
        return QS_METHOD_GET;
    if (strcmp(text, "HEAD") == 0)
        return QS_METHOD_HEAD;
    if (strcmp(text, "POST") == 0)
        return QS_METHOD_POST;
    return QS_METHOD_OTHER;
}

static bool match(const char *pattern, const char *path, char *capture, size_t capture_size)
{
    while (*pattern) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            size_t n = strcspn(path, "/");
            if (n == 0)
                return false;
            size_t c = n < capture_size - 1 ? n : capture_size - 1;
            memcpy(capture, path, c);
            capture[c] = '\0';
            path += n;
            pattern += 2;
            continue;
        }
        if (*pattern != *path)
            return false;
        pattern++;
        path++;
    }
    return *path == '\0';
}

static bool method_ok(qs_method route_method, qs_method method)
{
    return route_method == method || (route_method == QS_METHOD_GET && method == QS_METHOD_HEAD);
}

qs_route_result qs_routes_match(const char *path, qs_method method, const qs_route **route,
                                char *capture, size_t capture_size, const char **allow)
{
    const qs_route *path_match = NULL;
    capture[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, path, capture, capture_size))
            continue;
        if (method_ok(routes[i].method, method)) {
            *route = &routes[i];
            return QS_ROUTE_FOUND;
        }
        path_match = &routes[i];
    }
    if (!path_match)
        return QS_ROUTE_NOT_FOUND;
    *allow = path_match->method == QS_METHOD_GET ? "GET, HEAD" : "POST";
    return QS_ROUTE_METHOD_NOT_ALLOWED;
}
