/*  zc_redis — the cluster plane's one way to Redis. See zc_redis.h. */
#include "zc_redis.h"

#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
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

//  hiredis writes with write(2): a Redis that went away would kill the
//  process with SIGPIPE instead of failing the call. An application's own
//  SIGPIPE handling is left as it is.
static void s_ignore_sigpipe(void)
{
    struct sigaction pipe_action;
    if (sigaction(SIGPIPE, NULL, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
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

const char *zc_redis_url_where(const zc_redis_url_t *url, char *buf, size_t cap)
{
    if (*url->path)
        snprintf(buf, cap, "%s", url->path);
    else
        snprintf(buf, cap, "%s:%d", url->host, url->port);
    return buf;
}

//  --------------------------------------------------------------------------
//  A connection

struct _zc_redis_t {
    zc_redis_url_t url;
    int timeout_ms;
    redisContext *ctx;
    int backoff_initial_ms, backoff_max_ms;
    int backoff_ms;   //  the wait after the next failed attempt
    int64_t retry_at; //  monotonic ms before which no attempt is made
    int proven;       //  a reply came on this connection
    char error[300];
};

zc_redis_t *zc_redis_new(const zc_redis_url_t *url, int timeout_ms)
{
    assert(url);
    zc_redis_t *self = (zc_redis_t *)calloc(1, sizeof *self);
    assert(self);
    self->url = *url;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    zc_redis_set_backoff(self, 100, 1000);
    snprintf(self->error, sizeof self->error, "not connected yet");
    return self;
}

void zc_redis_destroy(zc_redis_t **self_p)
{
    assert(self_p);
    zc_redis_t *self = *self_p;
    if (!self) return;
    if (self->ctx) redisFree(self->ctx);
    memset(self->url.password, 0, sizeof self->url.password);
    free(self);
    *self_p = NULL;
}

void zc_redis_set_backoff(zc_redis_t *self, int initial_ms, int max_ms)
{
    assert(self);
    self->backoff_initial_ms = initial_ms > 0 ? initial_ms : 0;
    self->backoff_max_ms = max_ms > self->backoff_initial_ms ? max_ms : self->backoff_initial_ms;
    self->backoff_ms = self->backoff_initial_ms;
}

//  Sends one setup command (AUTH, SELECT); 0, or -1 with the error kept.
static int s_setup(zc_redis_t *self, redisContext *c, const char *what, int argc, const char **argv)
{
    redisReply *reply = (redisReply *)redisCommandArgv(c, argc, argv, NULL);
    int ok = reply && reply->type != REDIS_REPLY_ERROR;
    if (!ok) {
        char where[300];
        snprintf(self->error, sizeof self->error, "Redis at %s refused %s: %s",
                 zc_redis_url_where(&self->url, where, sizeof where), what,
                 reply ? reply->str : c->errstr);
    }
    if (reply) freeReplyObject(reply);
    return ok ? 0 : -1;
}

static redisContext *s_open(zc_redis_t *self)
{
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    const zc_redis_url_t *url = &self->url;
    redisContext *c = *url->path ? redisConnectUnixWithTimeout(url->path, tv)
                                 : redisConnectWithTimeout(url->host, url->port, tv);
    if (!c || c->err) {
        char where[300];
        snprintf(self->error, sizeof self->error, "cannot connect to Redis at %s: %s",
                 zc_redis_url_where(url, where, sizeof where), c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (*url->password) {
        const char *argv[] = {"AUTH", url->password};
        if (s_setup(self, c, "AUTH", 2, argv)) goto failed;
    }
    if (url->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", url->db);
        const char *argv[] = {"SELECT", db};
        if (s_setup(self, c, "SELECT", 2, argv)) goto failed;
    }
    return c;
failed:
    redisFree(c);
    return NULL;
}

//  A failed attempt: no other before the backoff, which doubles.
static void s_back_off(zc_redis_t *self, int64_t now)
{
    self->retry_at = now + self->backoff_ms;
    self->backoff_ms =
        self->backoff_ms * 2 > self->backoff_max_ms ? self->backoff_max_ms : self->backoff_ms * 2;
}

//  A reply came: the connection works, so the backoff starts over. Not at
//  connect: a server that accepts and then drops every connection must
//  still be retried with backoff, not in a loop.
static void s_proven(zc_redis_t *self)
{
    if (self->proven) return;
    self->proven = 1;
    self->backoff_ms = self->backoff_initial_ms;
    self->retry_at = 0;
}

redisContext *zc_redis_context(zc_redis_t *self)
{
    assert(self);
    if (self->ctx && self->ctx->err) zc_redis_drop(self);
    if (self->ctx) return self->ctx;
    int64_t now = zclock_mono();
    if (now < self->retry_at) return NULL; //  self->error still says why
    s_ignore_sigpipe();
    self->ctx = s_open(self);
    if (self->ctx) {
        self->proven = 0;
        return self->ctx;
    }
    s_back_off(self, now);
    return NULL;
}

int zc_redis_up(zc_redis_t *self)
{
    assert(self);
    return self->ctx && !self->ctx->err;
}

void zc_redis_drop(zc_redis_t *self)
{
    assert(self);
    if (!self->ctx) return;
    if (self->ctx->err) {
        char where[300];
        snprintf(self->error, sizeof self->error, "Redis at %s: %s",
                 zc_redis_url_where(&self->url, where, sizeof where), self->ctx->errstr);
    } else
        snprintf(self->error, sizeof self->error, "Redis connection closed");
    if (!self->proven) s_back_off(self, zclock_mono()); //  it never worked: a failed attempt
    redisFree(self->ctx);
    self->ctx = NULL;
}

const char *zc_redis_errstr(zc_redis_t *self)
{
    assert(self);
    return self->error;
}

const zc_redis_url_t *zc_redis_url(zc_redis_t *self)
{
    assert(self);
    return &self->url;
}

//  A NULL reply means the connection failed: drop it so the next use
//  reconnects.
static redisReply *s_checked(zc_redis_t *self, void *reply)
{
    if (!reply)
        zc_redis_drop(self);
    else
        s_proven(self);
    return (redisReply *)reply;
}

redisReply *zc_redis_command(zc_redis_t *self, const char *format, ...)
{
    redisContext *c = zc_redis_context(self);
    if (!c) return NULL;
    va_list ap;
    va_start(ap, format);
    void *reply = redisvCommand(c, format, ap);
    va_end(ap);
    return s_checked(self, reply);
}

redisReply *zc_redis_command_argv(zc_redis_t *self, int argc, const char **argv, const size_t *lens)
{
    redisContext *c = zc_redis_context(self);
    if (!c) return NULL;
    return s_checked(self, redisCommandArgv(c, argc, argv, lens));
}

//  --------------------------------------------------------------------------
//  Scripts

void zc_script_init(zc_script_t *self, const char *source)
{
    assert(self && source);
    self->source = source;
    self->len = strlen(source);
    zdigest_t *digest = zdigest_new();
    assert(digest);
    zdigest_update(digest, (const byte *)source, self->len);
    const char *hex = zdigest_string(digest);
    for (int i = 0; i < 40; i++)
        self->sha[i] = (char)tolower((unsigned char)hex[i]);
    self->sha[40] = 0;
    zdigest_destroy(&digest);
}

static int s_noscript(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

redisReply *zc_redis_eval(zc_redis_t *self, const zc_script_t *script, int numkeys, int argc,
                          const char **argv, const size_t *lens)
{
    zc_redis_args_t args = {0};
    zc_redis_args_eval(&args, script, numkeys);
    for (int i = 0; i < argc; i++)
        zc_redis_args_add(&args, argv[i], lens ? lens[i] : strlen(argv[i]));
    redisReply *reply = zc_redis_call(self, &args);
    zc_redis_args_free(&args);
    return reply;
}

//  --------------------------------------------------------------------------
//  Argument lists and pipelines

static void s_reserve(zc_redis_args_t *self, size_t len)
{
    if (self->used + len > self->cap) {
        size_t cap = self->cap ? self->cap : 1024;
        while (cap < self->used + len)
            cap *= 2;
        self->buf = (char *)realloc(self->buf, cap);
        assert(self->buf);
        self->cap = cap;
    }
    if (self->argc == self->cap_args) {
        int cap = self->cap_args ? self->cap_args * 2 : 32;
        self->offsets = (size_t *)realloc(self->offsets, (size_t)cap * sizeof(size_t));
        self->lens = (size_t *)realloc(self->lens, (size_t)cap * sizeof(size_t));
        self->argv = (const char **)realloc(self->argv, (size_t)cap * sizeof(char *));
        assert(self->offsets && self->lens && self->argv);
        self->cap_args = cap;
    }
}

void zc_redis_args_add(zc_redis_args_t *self, const void *data, size_t len)
{
    s_reserve(self, len);
    if (len) memcpy(self->buf + self->used, data, len);
    self->offsets[self->argc] = self->used;
    self->lens[self->argc] = len;
    self->argc++;
    self->used += len;
}

void zc_redis_args_str(zc_redis_args_t *self, const char *str)
{
    zc_redis_args_add(self, str, strlen(str));
}

void zc_redis_args_int(zc_redis_args_t *self, int64_t value)
{
    char text[24];
    int len = snprintf(text, sizeof text, "%lld", (long long)value);
    zc_redis_args_add(self, text, (size_t)len);
}

void zc_redis_args_reset(zc_redis_args_t *self)
{
    self->used = 0;
    self->argc = 0;
    self->script = NULL;
}

void zc_redis_args_eval(zc_redis_args_t *self, const zc_script_t *script, int numkeys)
{
    assert(script && script->source);
    zc_redis_args_reset(self);
    zc_redis_args_str(self, "EVALSHA");
    zc_redis_args_str(self, script->sha);
    zc_redis_args_int(self, numkeys);
    self->script = script;
}

void zc_redis_args_free(zc_redis_args_t *self)
{
    free(self->buf);
    free(self->offsets);
    free(self->lens);
    free(self->argv);
    memset(self, 0, sizeof *self);
}

//  Appends one command to the output buffer; eval sends a script's source
//  (EVAL) in place of its SHA (EVALSHA).
static int s_append(redisContext *c, zc_redis_args_t *args, int eval)
{
    for (int i = 0; i < args->argc; i++)
        args->argv[i] = args->buf + args->offsets[i];
    const char *head[2];
    size_t head_lens[2];
    if (eval) {
        memcpy(head, args->argv, sizeof head);
        memcpy(head_lens, args->lens, sizeof head_lens);
        args->argv[0] = "EVAL";
        args->lens[0] = 4;
        args->argv[1] = args->script->source;
        args->lens[1] = args->script->len;
    }
    int rc = redisAppendCommandArgv(c, args->argc, args->argv, args->lens);
    if (eval) {
        memcpy(args->argv, head, sizeof head);
        memcpy(args->lens, head_lens, sizeof head_lens);
    }
    return rc == REDIS_OK ? 0 : -1;
}

static void s_free_replies(redisReply **replies, int count)
{
    for (int i = 0; i < count; i++) {
        if (replies[i]) freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

int zc_redis_pipeline(zc_redis_t *self, zc_redis_args_t **args, int count, redisReply **replies)
{
    for (int i = 0; i < count; i++)
        replies[i] = NULL;
    redisContext *c = zc_redis_context(self);
    if (!c) return -1;
    for (int i = 0; i < count; i++)
        if (s_append(c, args[i], 0)) goto failed;
    for (int i = 0; i < count; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) goto failed;
        replies[i] = (redisReply *)reply;
    }
    s_proven(self);
    //  Only now that every pipelined reply is read can a call be sent again:
    //  EVAL runs the script and caches it, so later EVALSHAs find it.
    for (int i = 0; i < count; i++) {
        if (!s_noscript(replies[i]) || !args[i]->script) continue;
        freeReplyObject(replies[i]);
        replies[i] = NULL;
        void *reply = NULL;
        if (s_append(c, args[i], 1) || redisGetReply(c, &reply) != REDIS_OK) goto failed;
        replies[i] = (redisReply *)reply;
    }
    return 0;
failed:
    s_free_replies(replies, count);
    zc_redis_drop(self);
    return -1;
}

redisReply *zc_redis_call(zc_redis_t *self, zc_redis_args_t *args)
{
    redisReply *reply = NULL;
    if (zc_redis_pipeline(self, &args, 1, &reply)) return NULL;
    return reply;
}

//  --------------------------------------------------------------------------
//  Replies

int64_t zc_redis_reply_int(const redisReply *reply, int64_t fallback)
{
    if (!reply) return fallback;
    if (reply->type == REDIS_REPLY_INTEGER) return (int64_t)reply->integer;
    if (reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        char *end;
        long long value = strtoll(reply->str, &end, 10);
        if (*end == 0) return (int64_t)value;
    }
    return fallback;
}
