/*  zc_log — one-line log records on stderr. */
#include "zc_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int s_level = -1;

static int s_level_from_env(void)
{
    const char *env = getenv("ZC_LOG_LEVEL");
    if (!env) return ZC_LOG_INFO;
    static const char *names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(env, names[i]) == 0) return i;
    return ZC_LOG_INFO;
}

void zc_log_set_level(zc_log_level_t level)
{
    atomic_store(&s_level, (int)level);
}

int zc_log_enabled(zc_log_level_t level)
{
    int current = atomic_load(&s_level);
    if (current < 0) {
        current = s_level_from_env();
        atomic_store(&s_level, current);
    }
    return (int)level <= current;
}

void zc_log(zc_log_level_t level, const char *source, const char *format, ...)
{
    if (!zc_log_enabled(level)) return;
    static const char *tags[] = {"E", "W", "I", "D"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld zcluster %s [%s] ", tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000, tags[level], source ? source : "-");
    va_list args;
    va_start(args, format);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, format, args);
    va_end(args);
    //  One fputs per record keeps lines from different threads whole.
    size_t len = strlen(line);
    if (len < sizeof line - 1) {
        line[len] = '\n';
        line[len + 1] = 0;
    }
    fputs(line, stderr);
}
