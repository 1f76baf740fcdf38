/*  zc_redis_url — what a Redis URL says: which servers, which credentials,
    which database, and how to find the one to talk to (directly, through
    Sentinel, or in a Redis Cluster). See zc_redis.h and docs/REDIS.md.

    A URL may hold a password, so every message about a URL shows it
    redacted, and the parsed password stays in the struct alone.
*/
#include "zc_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Masks everything between the scheme and the last '@': credentials, or
//  what may be credentials in a URL too malformed to tell (a mistyped
//  scheme, a stray "://").
const char *zc_redis_url_redact(const char *url, char *buf, size_t cap)
{
    const char *at = strrchr(url, '@');
    if (!at) {
        snprintf(buf, cap, "%s", url);
        return buf;
    }
    size_t scheme =
        strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
    int keep = scheme > 0 && url + scheme < at && strncmp(url + scheme, "://", 3) == 0
                   ? (int)scheme + 3
                   : 0;
    snprintf(buf, cap, "%.*s***%s", keep, url, at);
    return buf;
}

//  Says what is wrong with a URL, showing it redacted.
static int s_fail(char *err, size_t errlen, const char *what, const char *url)
{
    char shown[1100];
    snprintf(err, errlen, "%s in Redis URL '%s'", what,
             zc_redis_url_redact(url, shown, sizeof shown));
    return -1;
}

//  Reads a decimal number of exactly len characters within [min, max];
//  -1 if it is not one.
static long s_number(const char *text, size_t len, long min, long max)
{
    if (len == 0 || len > 9) return -1;
    long value = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value >= min && value <= max ? value : -1;
}

//  Reads the query: db=N (unix sockets only: elsewhere the path says it)
//  and wait=MS, separated by '&'. 0 or -1 with the reason in *what.
static int s_query(const char *query, zc_redis_url_t *out, const char **what)
{
    while (*query) {
        size_t len = strcspn(query, "&");
        const char *eq = memchr(query, '=', len);
        size_t name = eq ? (size_t)(eq - query) : len;
        size_t vlen = eq ? len - name - 1 : 0;
        if (eq && name == 2 && strncmp(query, "db", 2) == 0 && *out->path) {
            long db = s_number(eq + 1, vlen, 0, 65535);
            if (db < 0) return *what = "bad database number", -1;
            out->db = (int)db;
        } else if (eq && name == 4 && strncmp(query, "wait", 4) == 0) {
            long ms = s_number(eq + 1, vlen, 1, 60000);
            if (ms < 0) return *what = "bad wait (1-60000 ms)", -1;
            out->wait_ms = (int)ms;
        } else
            return *what = "unknown query parameter", -1;
        query += len + (query[len] == '&');
    }
    return 0;
}

//  Reads "user:password", ":password" or "password" (len bytes).
static int s_userinfo(const char *p, size_t len, zc_redis_url_t *out, const char **what)
{
    const char *colon = memchr(p, ':', len);
    const char *pass = colon ? colon + 1 : p;
    size_t user_len = colon ? (size_t)(colon - p) : 0;
    size_t pass_len = len - (size_t)(pass - p);
    if (user_len >= sizeof out->user) return *what = "user name too long", -1;
    if (pass_len >= sizeof out->password) return *what = "password too long", -1;
    memcpy(out->user, p, user_len);
    memcpy(out->password, pass, pass_len);
    return 0;
}

//  Reads "host[:port]" of len bytes into addr.
static int s_addr(const char *p, size_t len, zc_redis_addr_t *addr, const char **what)
{
    const char *colon = memchr(p, ':', len);
    size_t host_len = colon ? (size_t)(colon - p) : len;
    if (host_len == 0 || host_len >= sizeof addr->host) return *what = "missing or bad host", -1;
    memcpy(addr->host, p, host_len);
    addr->host[host_len] = 0;
    addr->port = 6379;
    if (colon) {
        long port = s_number(colon + 1, len - host_len - 1, 1, 65535);
        if (port < 0) return *what = "bad port", -1;
        addr->port = (int)port;
    }
    return 0;
}

//  Reads the comma-separated hosts of len bytes into the seeds.
static int s_hosts(const char *p, size_t len, zc_redis_url_t *out, const char **what)
{
    const char *end = p + len;
    while (1) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t one = comma ? (size_t)(comma - p) : (size_t)(end - p);
        if (out->seed_count == ZC_REDIS_SEEDS_MAX) return *what = "too many hosts", -1;
        if (s_addr(p, one, &out->seeds[out->seed_count], what)) return -1;
        out->seed_count++;
        if (!comma) break;
        p = comma + 1;
    }
    if (out->mode == ZC_REDIS_DIRECT && out->seed_count > 1)
        return *what = "several hosts (use redis-sentinel:// or redis-cluster://)", -1;
    snprintf(out->host, sizeof out->host, "%s", out->seeds[0].host);
    out->port = out->seeds[0].port;
    return 0;
}

//  Reads what follows the hosts up to the query: "/db" (direct),
//  "/MASTER[/db]" (sentinel), nothing (cluster: no databases there).
static int s_path(const char *p, size_t len, zc_redis_url_t *out, const char **what)
{
    if (len > 0 && p[0] == '/') p++, len--;
    if (out->mode == ZC_REDIS_SENTINEL) {
        const char *slash = memchr(p, '/', len);
        size_t name = slash ? (size_t)(slash - p) : len;
        if (name == 0 || name >= sizeof out->master || memchr(p, '@', name))
            return *what = "missing or bad master name", -1;
        memcpy(out->master, p, name);
        p += name + (slash != NULL);
        len -= name + (slash != NULL);
    }
    if (len == 0) return 0;
    if (out->mode == ZC_REDIS_CLUSTER) return *what = "a database in a Redis Cluster URL", -1;
    long db = s_number(p, len, 0, 65535);
    if (db < 0) return *what = "bad database number", -1;
    out->db = (int)db;
    return 0;
}

//  Parses a unix socket URL: unix:///path[?query] or unix:/path[?query].
static int s_parse_unix(const char *url, zc_redis_url_t *out, const char **what)
{
    const char *path = url + (strncmp(url, "unix://", 7) == 0 ? 7 : 5);
    size_t len = strcspn(path, "?");
    if (len == 0 || path[0] != '/' || len >= sizeof out->path) return *what = "bad socket path", -1;
    memcpy(out->path, path, len);
    return path[len] ? s_query(path + len + 1, out, what) : 0;
}

int zc_redis_url_parse(const char *url, zc_redis_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    out->slot = -1;
    if (!url || !*url) return s_fail(err, errlen, "empty URL", "");
    const char *what = NULL;
    if (strncmp(url, "unix:", 5) == 0)
        return s_parse_unix(url, out, &what) ? s_fail(err, errlen, what, url) : 0;
    const char *p;
    if (strncmp(url, "redis://", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "redis-sentinel://", 17) == 0)
        p = url + 17, out->mode = ZC_REDIS_SENTINEL;
    else if (strncmp(url, "redis-cluster://", 16) == 0)
        p = url + 16, out->mode = ZC_REDIS_CLUSTER;
    else
        return s_fail(err, errlen,
                      "unknown scheme (use redis://, unix://, redis-sentinel:// or "
                      "redis-cluster://)",
                      url);
    const char *at = strrchr(p, '@');
    if (at && s_userinfo(p, (size_t)(at - p), out, &what)) return s_fail(err, errlen, what, url);
    if (at) p = at + 1;
    size_t hosts = strcspn(p, "/?");
    if (s_hosts(p, hosts, out, &what)) return s_fail(err, errlen, what, url);
    p += hosts;
    size_t path = strcspn(p, "?");
    if (s_path(p, path, out, &what)) return s_fail(err, errlen, what, url);
    p += path;
    if (*p == '?' && s_query(p + 1, out, &what)) return s_fail(err, errlen, what, url);
    if (out->mode == ZC_REDIS_SENTINEL && !*out->master)
        return s_fail(err, errlen, "missing master name", url);
    return 0;
}

//  Writes the seeds as "h:p,h:p" (as many as fit) after prefix.
static const char *s_seeds(const zc_redis_url_t *url, const char *prefix, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", prefix);
    for (int i = 0; i < url->seed_count && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s:%d", i ? "," : "",
                                 url->seeds[i].host, url->seeds[i].port);
    return buf;
}

const char *zc_redis_url_where(const zc_redis_url_t *url, char *buf, size_t cap)
{
    if (*url->path)
        snprintf(buf, cap, "%s", url->path);
    else if (url->mode == ZC_REDIS_SENTINEL) {
        char prefix[200];
        snprintf(prefix, sizeof prefix, "master %s of sentinels ", url->master);
        s_seeds(url, prefix, buf, cap);
    } else if (url->mode == ZC_REDIS_CLUSTER)
        s_seeds(url, "cluster ", buf, cap);
    else
        snprintf(buf, cap, "%s:%d", url->host, url->port);
    return buf;
}

//  CRC16-CCITT (XModem), the checksum Redis Cluster takes modulo 16384.
static uint16_t s_crc16(const char *data, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)data[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

int zc_redis_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return s_crc16(key, len) & 16383;
}

void zc_redis_url_set_tag(zc_redis_url_t *url, const char *tag)
{
    char key[300];
    int len = snprintf(key, sizeof key, "{%s}", tag);
    url->slot = zc_redis_key_slot(key, len < (int)sizeof key ? (size_t)len : sizeof key - 1);
}
