/* Monotonic time for latencies, deadlines and the stats window. */
#ifndef QS_SERVER_CLOCK_H
#define QS_SERVER_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
static inline uint64_t qs_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whole seconds of CLOCK_MONOTONIC (the stats clock). */
static inline int64_t qs_clock_s(void)
{
    return (int64_t)(qs_clock_ns() / 1000000000u);
}

static inline double qs_ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

#endif /* QS_SERVER_CLOCK_H */
