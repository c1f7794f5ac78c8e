/* Small jansson helpers shared by the handlers and the report file. */
#ifndef QS_SERVER_JSON_UTIL_H
#define QS_SERVER_JSON_UTIL_H

#include <jansson.h>
#include <math.h>

/* A JSON real, or null for NaN and infinities (which JSON cannot carry). New reference. */
static inline json_t *qs_json_real_or_null(double x)
{
    return isfinite(x) ? json_real(x) : json_null();
}

#endif /* QS_SERVER_JSON_UTIL_H */
