/*  zc_admin_log — refused requests in the log. See zc_admin_log.h.

    Escaping is \xHH rather than dropping bytes so that an operator can
    still see what was sent; bytes beyond ASCII are escaped too because
    some terminals read 0x9b as a control sequence introducer.
*/
#include "zc_admin_log.h"
#include "zc_log.h"

#include <stdio.h>
#include <string.h>

char *admin_log_escape(char *out, size_t cap, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i = 0;
    for (; text[i] && i < ADMIN_LOG_TARGET_MAX && n + 8 < cap; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            out[n++] = '\\';
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        } else
            out[n++] = (char)c;
    }
    if (text[i]) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
    return out;
}

char *admin_log_target(char *out, size_t cap, const char *target)
{
    char masked[ADMIN_LOG_TARGET_MAX + 8];
    size_t n = 0;
    const char *p = target;
    int in_query = 0;
    while (*p && n + 4 < sizeof masked) {
        int param_start = in_query && (p[-1] == '?' || p[-1] == '&');
        in_query |= *p == '?';
        if (param_start && strncmp(p, "key=", 4) == 0) {
            memcpy(masked + n, "key=***", 7);
            n += 7;
            p += strcspn(p, "&");
            continue;
        }
        masked[n++] = *p++;
    }
    masked[n] = 0;
    //  A target cut here is longer than ADMIN_LOG_TARGET_MAX: escaping cuts
    //  it again, and says so.
    return admin_log_escape(out, cap, masked);
}

void admin_log_limited(admin_log_limit_t *limit, int64_t now, const char *message)
{
    admin_log_flush(limit, now);
    if (limit->window_end) {
        limit->suppressed++;
        return;
    }
    zc_log(ZC_LOG_WARNING, "admin", "%s", message);
    limit->window_end = now + limit->interval_ms;
}

void admin_log_flush(admin_log_limit_t *limit, int64_t now)
{
    if (!limit->window_end || now < limit->window_end) return;
    if (limit->suppressed)
        zc_log(ZC_LOG_WARNING, "admin", "%ld more request(s) %s in the last %lld ms",
               limit->suppressed, limit->what, (long long)limit->interval_ms);
    //  An interval that counted something opens the next one, so a steady
    //  flood writes one summary per interval and nothing else.
    limit->window_end = limit->suppressed ? now + limit->interval_ms : 0;
    limit->suppressed = 0;
}

int64_t admin_log_due(admin_log_limit_t *limit, int64_t now)
{
    if (!limit->window_end) return -1;
    return limit->window_end > now ? limit->window_end - now : 0;
}
