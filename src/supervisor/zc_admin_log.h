/*  zc_admin_log — what the admin endpoint writes about requests it refuses
    (private to zc_admin).

    A refused request is someone else's bytes: its target is logged as it
    came on the wire (before percent-decoding), with every control byte,
    DEL, byte beyond ASCII and backslash written as \xHH, so it can neither
    end the log line nor reach a terminal as an escape sequence, and with
    the value of a `key` query parameter masked (it may be a near miss of
    the real key).

    Refusals are rate-limited: the first of an interval is logged, the
    others are counted and summed up in one line when the interval is over,
    so a flood of bad requests writes a bounded number of lines whatever
    its size.
*/
#ifndef ZC_ADMIN_LOG_H_INCLUDED
#define ZC_ADMIN_LOG_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  The longest part of a target that is logged, before escaping.
#define ADMIN_LOG_TARGET_MAX 200

typedef struct {
    const char *what;    //  "refused", "closed": the summary line's verb
    int64_t interval_ms; //  one line per interval at most, plus its summary
    int64_t window_end;  //  0: no interval open
    long suppressed;     //  counted, not logged, in the open interval
} admin_log_limit_t;

//  Writes text into out (cap >= 8) as it may be logged: the escaping above,
//  at most ADMIN_LOG_TARGET_MAX bytes of text, "..." if cut. Returns out.
char *admin_log_escape(char *out, size_t cap, const char *text);

//  Writes the request target into out as admin_log_escape, `key` query
//  values replaced by "***". Returns out.
char *admin_log_target(char *out, size_t cap, const char *target);

//  Logs one event (a warning, source "admin", message formatted already
//  safe) if the limit allows, else counts it. now is a monotonic ms clock.
void admin_log_limited(admin_log_limit_t *limit, int64_t now, const char *message);

//  Writes the summary line of an interval that is over, if it counted
//  anything. Call it from the loop's timer.
void admin_log_flush(admin_log_limit_t *limit, int64_t now);

//  Returns the ms until admin_log_flush has a summary to write, or -1.
int64_t admin_log_due(admin_log_limit_t *limit, int64_t now);

#endif
