/* Leveled logging: one timestamped line per message, written to stderr in a single call. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[QS_LOG_LEVEL_COUNT] = {
#define QS_LOG_LEVEL_NAME(name, text) [name] = text,
    QS_LOG_LEVEL_LIST(QS_LOG_LEVEL_NAME)
#undef QS_LOG_LEVEL_NAME
};

static _Atomic int current_level = QS_LOG_INFO;

const char *qs_log_level_to_string(qs_log_level level)
{
    if ((unsigned)level >= QS_LOG_LEVEL_COUNT)
        return "?";
    return level_names[level];
}

bool qs_log_level_parse(const char *text, qs_log_level *out)
{
    if (!text)
        return false;
    for (int i = 0; i < QS_LOG_LEVEL_COUNT; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (qs_log_level)i;
            return true;
        }
    }
    return false;
}

void qs_log_set_level(qs_log_level level)
{
    atomic_store(&current_level, (int)level);
}

qs_log_level qs_log_get_level(void)
{
    return (qs_log_level)atomic_load(&current_level);
}

bool qs_log_enabled(qs_log_level level)
{
    return (int)level <= atomic_load_explicit(&current_level, memory_order_relaxed);
}

void qs_log_write(qs_log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, now.tv_nsec / 1000000L, qs_log_level_to_string(level));
    if (n < 0)
        return;
    size_t used = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof line - used - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    used += (size_t)m;
    if (used > sizeof line - 2)
        used = sizeof line - 2;
    line[used++] = '\n';
    /* One write(2) per line keeps concurrent lines whole; a failed log write has nowhere to go. */
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
