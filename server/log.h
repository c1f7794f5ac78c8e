/* Leveled, timestamped logging to stderr; the macros test the level before formatting anything. */
#ifndef QS_SERVER_LOG_H
#define QS_SERVER_LOG_H

#include <stdbool.h>

/* Levels from most to least severe; a message is written when its level <= the current level. */
#define QS_LOG_LEVEL_LIST(X) \
    X(QS_LOG_ERROR, "error")  \
    X(QS_LOG_WARN, "warn")    \
    X(QS_LOG_INFO, "info")    \
    X(QS_LOG_DEBUG, "debug")

typedef enum {
#define QS_LOG_LEVEL_ENUM(name, text) name,
    QS_LOG_LEVEL_LIST(QS_LOG_LEVEL_ENUM)
#undef QS_LOG_LEVEL_ENUM
    QS_LOG_LEVEL_COUNT
} qs_log_level;

/* Name of a level ("warn"); "?" when out of range. */
const char *qs_log_level_to_string(qs_log_level level);
/* Parse "error", "warn", "info" or "debug" (exact, lower case). Returns false when unknown. */
bool qs_log_level_parse(const char *text, qs_log_level *out);

/* Current threshold (default QS_LOG_INFO). Safe to call from any thread. */
void qs_log_set_level(qs_log_level level);
qs_log_level qs_log_get_level(void);
bool qs_log_enabled(qs_log_level level);

/* Write one line "2024-05-01T12:00:00.123Z level message\n" with a single write, so lines from
 * different threads never interleave. Long messages are cut at 2 KiB. Use the macros below. */
void qs_log_write(qs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define QS_LOG_AT(level, ...)                  \
    do {                                       \
        if (qs_log_enabled(level))             \
            qs_log_write((level), __VA_ARGS__); \
    } while (0)

#define QS_ERROR(...) QS_LOG_AT(QS_LOG_ERROR, __VA_ARGS__)
#define QS_WARN(...) QS_LOG_AT(QS_LOG_WARN, __VA_ARGS__)
#define QS_INFO(...) QS_LOG_AT(QS_LOG_INFO, __VA_ARGS__)
#define QS_DEBUG(...) QS_LOG_AT(QS_LOG_DEBUG, __VA_ARGS__)

#endif /* QS_SERVER_LOG_H */
