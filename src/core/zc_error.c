/*  zc_error — names of the error kinds shared by the public API. */
#include "zc_error.h"

const char *zc_strerror(int kind)
{
    static const char *names[] = {"ok",
                                  "invalid",
                                  "redis",
                                  "missing",
                                  "locked",
                                  "type",
                                  "timeout",
                                  "corrupt",
                                  "io",
                                  "duplicate",
                                  "state",
                                  "system",
                                  "unknown method",
                                  "handler error",
                                  "peer gone",
                                  "no route",
                                  "unknown connection"};
    if (kind < 0 || kind >= (int)(sizeof names / sizeof names[0])) return "unknown";
    return names[kind];
}
