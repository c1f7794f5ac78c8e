/* The route table: which handler serves which method and path. */
#ifndef QS_SERVER_ROUTES_H
#define QS_SERVER_ROUTES_H

#include <stddef.h>

#include "request.h"

typedef enum {
    QS_ROUTE_FOUND,
    QS_ROUTE_NOT_FOUND,
    QS_ROUTE_METHOD_NOT_ALLOWED, /* the path exists: *allow lists its methods */
} qs_route_result;

/* Match a decoded path (no query string). The {} segment, if any, is copied into capture (cut to
 * capture_size - 1 bytes). */
qs_route_result qs_routes_match(const char *path, qs_method method, const qs_route **route,
                                char *capture, size_t capture_size, const char **allow);

/* "GET" -> QS_METHOD_GET, ...; QS_METHOD_OTHER for anything else. */
qs_method qs_method_parse(const char *text);

#endif /* QS_SERVER_ROUTES_H */
