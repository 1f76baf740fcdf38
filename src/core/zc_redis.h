/*  zc_redis — where the cluster's Redis is, and a connection to it.

    URLs: redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N]
    (also unix:/path). The default, when no URL is given anywhere, comes from
    the ZC_REDIS_URL environment variable.
*/
#ifndef ZC_REDIS_H_INCLUDED
#define ZC_REDIS_H_INCLUDED

#include <hiredis/hiredis.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char host[256]; //  TCP host, or "" for a unix socket
    int port;       //  TCP port (default 6379)
    char path[256]; //  unix socket path, or ""
    char password[256];
    int db;
} zc_redis_url_t;

//  Parses url into *out. Returns 0, or -1 with a reason in err.
int zc_redis_url_parse(const char *url, zc_redis_url_t *out, char *err, size_t errlen);

//  Connects, authenticates and selects the database, with timeout_ms bounding
//  the connect and every later command. Returns a context the caller frees
//  with redisFree, or NULL with a reason in err. If SIGPIPE still has its
//  default action it is ignored from then on, so a Redis that goes away
//  fails a call instead of killing the process.
redisContext *zc_redis_connect(const zc_redis_url_t *url, int timeout_ms, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
