/*  zc_redis — where the cluster's Redis is, and a connection to it. */
#include "zc_redis.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_fail(char *err, size_t errlen, const char *what, const char *url)
{
    snprintf(err, errlen, "%s in Redis URL '%s'", what, url);
    return -1;
}

int zc_redis_url_parse(const char *url, zc_redis_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (!url || !*url) return s_fail(err, errlen, "empty URL", "");
    if (strncmp(url, "unix://", 7) == 0 || strncmp(url, "unix:", 5) == 0) {
        const char *path = url + (strncmp(url, "unix://", 7) == 0 ? 7 : 5);
        size_t len = strcspn(path, "?");
        if (len == 0 || path[0] != '/' || len >= sizeof out->path)
            return s_fail(err, errlen, "bad socket path", url);
        memcpy(out->path, path, len);
        if (path[len]) {
            const char *query = path + len + 1;
            char *end;
            if (strncmp(query, "db=", 3) != 0)
                return s_fail(err, errlen, "unknown query parameter", url);
            long db = strtol(query + 3, &end, 10);
            if (*end || end == query + 3 || db < 0 || db > 65535)
                return s_fail(err, errlen, "bad database number", url);
            out->db = (int)db;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return s_fail(err, errlen, "unknown scheme (use redis:// or unix://)", url);
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pass = colon ? colon + 1 : p;
        size_t len = (size_t)(at - pass);
        if (len >= sizeof out->password) return s_fail(err, errlen, "password too long", url);
        memcpy(out->password, pass, len);
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0 || hostlen >= sizeof out->host)
        return s_fail(err, errlen, "missing or bad host", url);
    memcpy(out->host, p, hostlen);
    p += hostlen;
    char *end;
    if (*p == ':') {
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) return s_fail(err, errlen, "bad port", url);
        out->port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        long db = strtol(p + 1, &end, 10);
        if (*end || end == p + 1 || db < 0 || db > 65535)
            return s_fail(err, errlen, "bad database number", url);
        out->db = (int)db;
    } else if (*p && strcmp(p, "/") != 0)
        return s_fail(err, errlen, "unexpected characters", url);
    return 0;
}

static redisContext *s_command_ok(redisContext *c, char *err, size_t errlen, const char *format,
                                  const char *arg)
{
    redisReply *reply = (redisReply *)redisCommand(c, format, arg);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", reply ? reply->str : c->errstr);
        if (reply) freeReplyObject(reply);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(reply);
    return c;
}

redisContext *zc_redis_connect(const zc_redis_url_t *url, int timeout_ms, char *err, size_t errlen)
{
    //  hiredis writes with write(2): a Redis that went away would kill the
    //  process with SIGPIPE instead of failing the call. An application's
    //  own SIGPIPE handling is left as it is.
    struct sigaction pipe_action;
    if (sigaction(SIGPIPE, NULL, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = *url->path ? redisConnectUnixWithTimeout(url->path, tv)
                                 : redisConnectWithTimeout(url->host, url->port, tv);
    if (!c || c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s%s%.0d: %s",
                 *url->path ? url->path : url->host, *url->path ? "" : ":",
                 *url->path ? 0 : url->port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (*url->password && !(c = s_command_ok(c, err, errlen, "AUTH %s", url->password)))
        return NULL;
    if (url->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", url->db);
        if (!(c = s_command_ok(c, err, errlen, "SELECT %s", db))) return NULL;
    }
    return c;
}
