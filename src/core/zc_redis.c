/*  zc_redis — the cluster plane's one way to Redis. See zc_redis.h.

    A connection is found anew each time it is made: directly from the URL,
    or by asking the sentinels / a Redis Cluster's nodes which server is
    the master now (s_locate). Finding it is part of connecting, so it is
    here, next to the one redisConnect of the project; everything above
    only sees a connection that fails and comes back, wherever it points.
*/
#include "zc_redis.h"

#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  hiredis writes with write(2): a Redis that went away would kill the
//  process with SIGPIPE instead of failing the call. An application's own
//  SIGPIPE handling is left as it is.
static void s_ignore_sigpipe(void)
{
    struct sigaction pipe_action;
    if (sigaction(SIGPIPE, NULL, &pipe_action) == 0 && pipe_action.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

//  --------------------------------------------------------------------------
//  A connection

#define SEED_TIMEOUT_MS 500 //  at most, for asking a sentinel or cluster node

struct _zc_redis_t {
    zc_redis_url_t url;
    int timeout_ms;
    redisContext *ctx;
    zc_redis_addr_t at;    //  the TCP server of the current or last connection
    zc_redis_addr_t moved; //  cluster: where a MOVED answer said to go, or ""
    int seed_next;         //  the sentinel or cluster node to ask first
    int backoff_initial_ms, backoff_max_ms;
    int backoff_ms;   //  the wait after the next failed attempt
    int64_t retry_at; //  monotonic ms before which no attempt is made
    int proven;       //  a reply came on this connection
    int durable, durable_required;
    uint64_t unreplicated;
    char error[512];
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
    //  Behind sentinels or a Redis Cluster an outage is usually a failover,
    //  over within seconds: no connection waits long to find the new master.
    if (self->url.mode != ZC_REDIS_DIRECT && max_ms > ZC_REDIS_HA_BACKOFF_MAX_MS)
        max_ms = ZC_REDIS_HA_BACKOFF_MAX_MS;
    self->backoff_max_ms = max_ms > self->backoff_initial_ms ? max_ms : self->backoff_initial_ms;
    self->backoff_ms = self->backoff_initial_ms;
}

void zc_redis_set_durable(zc_redis_t *self, int required)
{
    assert(self);
    self->durable = self->url.wait_ms > 0;
    self->durable_required = required;
}

uint64_t zc_redis_unreplicated(zc_redis_t *self)
{
    assert(self);
    return self->unreplicated;
}

//  Where this connection talks to, for messages: the server found last, or
//  what the URL names.
static const char *s_where(zc_redis_t *self, char *buf, size_t cap)
{
    if (!*self->url.path && *self->at.host)
        snprintf(buf, cap, "%s:%d", self->at.host, self->at.port);
    else
        zc_redis_url_where(&self->url, buf, cap);
    return buf;
}

//  Sends one setup command (AUTH, SELECT, ROLE, SENTINEL...) and returns its
//  reply, or NULL with the error kept (an error reply included).
static redisReply *s_ask(zc_redis_t *self, redisContext *c, const char *what, int argc,
                         const char **argv)
{
    redisReply *reply = (redisReply *)redisCommandArgv(c, argc, argv, NULL);
    if (reply && reply->type != REDIS_REPLY_ERROR) return reply;
    char where[300];
    snprintf(self->error, sizeof self->error, "Redis at %s refused %s: %s",
             s_where(self, where, sizeof where), what, reply ? reply->str : c->errstr);
    if (reply) freeReplyObject(reply);
    return NULL;
}

//  Sends one setup command whose answer only matters as ok or not.
static int s_setup(zc_redis_t *self, redisContext *c, const char *what, int argc, const char **argv)
{
    redisReply *reply = s_ask(self, c, what, argc, argv);
    if (reply) freeReplyObject(reply);
    return reply ? 0 : -1;
}

//  AUTH with the URL's credentials, the ACL user's if it names one.
static int s_auth(zc_redis_t *self, redisContext *c)
{
    const zc_redis_url_t *url = &self->url;
    if (!*url->password) return 0;
    const char *argv[] = {"AUTH", *url->user ? url->user : url->password, url->password};
    return s_setup(self, c, "AUTH", *url->user ? 3 : 2, argv);
}

//  Connects to the socket path, or else to addr, bounding the connect and
//  every command by timeout_ms; NULL with the error kept.
static redisContext *s_connect(zc_redis_t *self, const char *path, const zc_redis_addr_t *addr,
                               int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = *path ? redisConnectUnixWithTimeout(path, tv)
                            : redisConnectWithTimeout(addr->host, addr->port, tv);
    if (!c || c->err) {
        char where[300];
        if (*path)
            snprintf(where, sizeof where, "%s", path);
        else
            snprintf(where, sizeof where, "%s:%d", addr->host, addr->port);
        snprintf(self->error, sizeof self->error, "cannot connect to Redis at %.200s: %s", where,
                 c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

//  Reads a ["host", "port", ...] reply into addr; 0 or -1.
static int s_addr_reply(const redisReply *reply, zc_redis_addr_t *addr)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) return -1;
    const redisReply *host = reply->element[0], *port = reply->element[1];
    if (host->type != REDIS_REPLY_STRING || host->len == 0 || host->len >= sizeof addr->host)
        return -1;
    int64_t number = zc_redis_reply_int(port, 0);
    if (number < 1 || number > 65535) return -1;
    memcpy(addr->host, host->str, host->len);
    addr->host[host->len] = 0;
    addr->port = (int)number;
    return 0;
}

//  Asks one sentinel for the master's address. A sentinel that wants a
//  password gets the URL's credentials (docs/REDIS.md).
static int s_ask_sentinel(zc_redis_t *self, redisContext *c, zc_redis_addr_t *master)
{
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", self->url.master};
    redisReply *reply = s_ask(self, c, "SENTINEL get-master-addr-by-name", 3, argv);
    if (!reply && strstr(self->error, "NOAUTH") && s_auth(self, c) == 0)
        reply = s_ask(self, c, "SENTINEL get-master-addr-by-name", 3, argv);
    if (!reply) return -1;
    int rc = s_addr_reply(reply, master);
    if (rc) {
        char where[300];
        snprintf(self->error, sizeof self->error, "sentinel at %s knows no master named '%s'",
                 s_where(self, where, sizeof where), self->url.master);
    }
    freeReplyObject(reply);
    return rc;
}

//  Asks one Redis Cluster node which master serves the tag's slot.
static int s_ask_cluster(zc_redis_t *self, redisContext *c, zc_redis_addr_t *master)
{
    if (s_auth(self, c)) return -1;
    const char *argv[] = {"CLUSTER", "SLOTS"};
    redisReply *reply = s_ask(self, c, "CLUSTER SLOTS", 2, argv);
    if (!reply) return -1;
    long long slot = self->url.slot >= 0 ? self->url.slot : 0;
    int rc = -1;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && rc; i++) {
        const redisReply *range = reply->element[i];
        if (range->type != REDIS_REPLY_ARRAY || range->elements < 3) continue;
        if (slot < range->element[0]->integer || slot > range->element[1]->integer) continue;
        const redisReply *node = range->element[2];
        //  An empty address means the node asked, on the port given.
        int same = node->type == REDIS_REPLY_ARRAY && node->elements >= 2 &&
                   node->element[0]->type == REDIS_REPLY_STRING && node->element[0]->len == 0;
        rc = s_addr_reply(node, master);
        if (same && (master->port = (int)zc_redis_reply_int(node->element[1], 0)) > 0) {
            snprintf(master->host, sizeof master->host, "%s", self->at.host);
            rc = 0;
        }
    }
    if (rc) {
        char where[300];
        snprintf(self->error, sizeof self->error, "Redis Cluster node %s: no master for slot %lld",
                 s_where(self, where, sizeof where), slot);
    }
    freeReplyObject(reply);
    return rc;
}

//  A server found through sentinels or a cluster must say it is a master:
//  right after a failover a sentinel may still name the old one, now a
//  replica.
static int s_check_master(zc_redis_t *self, redisContext *c)
{
    const char *argv[] = {"ROLE"};
    redisReply *reply = s_ask(self, c, "ROLE", 1, argv);
    if (!reply) return -1;
    int master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                 reply->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(reply->element[0]->str, "master") == 0;
    freeReplyObject(reply);
    if (!master) {
        char where[300];
        snprintf(self->error, sizeof self->error, "Redis at %s is not a master (yet)",
                 s_where(self, where, sizeof where));
    }
    return master ? 0 : -1;
}

//  Connects to target (or the URL's socket), authenticates, checks that a
//  server found through sentinels or a cluster is a master, and selects the
//  database. NULL with the error kept.
static redisContext *s_open_at(zc_redis_t *self, const zc_redis_addr_t *target)
{
    const zc_redis_url_t *url = &self->url;
    self->at = *target;
    redisContext *c = s_connect(self, url->path, target, self->timeout_ms);
    if (!c) return NULL;
    if (s_auth(self, c)) goto failed;
    if (url->mode != ZC_REDIS_DIRECT && s_check_master(self, c)) goto failed;
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

//  Asks seed k (a sentinel, or a cluster node) which server is the master.
static int s_ask_seed(zc_redis_t *self, int k, zc_redis_addr_t *target)
{
    self->at = self->url.seeds[k];
    //  A seed answers at once or is away: one that does not must not hold
    //  the others up for a whole command timeout.
    int timeout_ms = self->timeout_ms < SEED_TIMEOUT_MS ? self->timeout_ms : SEED_TIMEOUT_MS;
    redisContext *c = s_connect(self, "", &self->at, timeout_ms);
    if (!c) return -1;
    int rc = self->url.mode == ZC_REDIS_SENTINEL ? s_ask_sentinel(self, c, target)
                                                 : s_ask_cluster(self, c, target);
    redisFree(c);
    return rc;
}

//  Opens the connection: to the URL's server, to where MOVED said, or to
//  the master the seeds name, asking them in turn (the one that led to the
//  master last time first). Right after a failover only some sentinels know
//  the new master, so a named server that does not answer as a master
//  sends us on to the next seed.
static redisContext *s_open(zc_redis_t *self)
{
    const zc_redis_url_t *url = &self->url;
    zc_redis_addr_t target = {{0}, 0};
    if (url->mode == ZC_REDIS_DIRECT) {
        snprintf(target.host, sizeof target.host, "%s", url->host);
        target.port = url->port;
        return s_open_at(self, &target);
    }
    if (*self->moved.host) {
        target = self->moved;
        self->moved.host[0] = 0;
        return s_open_at(self, &target);
    }
    for (int i = 0; i < url->seed_count; i++) {
        int k = (self->seed_next + i) % url->seed_count;
        redisContext *c = s_ask_seed(self, k, &target) == 0 ? s_open_at(self, &target) : NULL;
        if (c) {
            self->seed_next = k;
            return c;
        }
    }
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
                 s_where(self, where, sizeof where), self->ctx->errstr);
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

//  Reads "host:port" at the end of a MOVED or ASK answer into addr.
static int s_redirect_addr(const char *text, zc_redis_addr_t *addr)
{
    const char *space = strrchr(text, ' ');
    const char *colon = space ? strrchr(space, ':') : NULL;
    size_t len = colon ? (size_t)(colon - space - 1) : 0;
    if (len == 0 || len >= sizeof addr->host) return -1;
    memcpy(addr->host, space + 1, len);
    addr->host[len] = 0;
    addr->port = atoi(colon + 1);
    return addr->port > 0 && addr->port <= 65535 ? 0 : -1;
}

//  An error answer that means this server is not the one to talk to: a
//  master demoted by a failover (READONLY), a replica that lost its master
//  (MASTERDOWN), a Redis Cluster slot served elsewhere (MOVED) or being
//  moved there (ASK: only this command goes there). The command did not
//  run. Returns 1 and, but for ASK, drops the connection so the next use
//  finds the server again.
static int s_misdirected(zc_redis_t *self, const redisReply *reply, zc_redis_addr_t *ask)
{
    if (self->url.mode == ZC_REDIS_DIRECT || !reply || reply->type != REDIS_REPLY_ERROR) return 0;
    const char *text = reply->str;
    if (strncmp(text, "ASK ", 4) == 0) return ask && s_redirect_addr(text, ask) == 0;
    int moved = strncmp(text, "MOVED ", 6) == 0;
    if (moved && s_redirect_addr(text, &self->moved)) return 0;
    if (!moved && strncmp(text, "READONLY", 8) != 0 && strncmp(text, "MASTERDOWN", 10) != 0)
        return 0;
    char where[300];
    s_where(self, where, sizeof where);
    zc_redis_drop(self);
    snprintf(self->error, sizeof self->error, "Redis at %.200s answered %.60s", where, text);
    return 1;
}

//  A NULL reply means the connection failed: drop it so the next use
//  reconnects.
static redisReply *s_checked(zc_redis_t *self, void *reply)
{
    if (!reply)
        zc_redis_drop(self);
    else {
        s_proven(self);
        s_misdirected(self, (redisReply *)reply, NULL);
    }
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

//  Every argument waits in buf framed as the protocol sends it,
//  "$LEN\r\nDATA\r\n", after ARGS_HEAD bytes kept free for the command's
//  "*ARGC\r\n": sending a command is one copy into hiredis's output buffer.
//  redisAppendCommandArgv formats each argument anew with sdscatfmt, which
//  was a third of the client's time in a batched cache save.
#define ARGS_HEAD  24 //  room for "*ARGC\r\n"
#define ARGS_FRAME 25 //  most bytes of "$LEN\r\n" + "\r\n" around an argument

//  Writes value in decimal at out (at least 20 bytes); returns its length.
static size_t s_decimal(char *out, uint64_t value)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    return n;
}

static void s_reserve(zc_redis_args_t *self, size_t len)
{
    if (self->used < ARGS_HEAD) self->used = ARGS_HEAD;
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
    //  Framed as it will be sent, so a command goes out as one copy.
    s_reserve(self, len + ARGS_FRAME);
    char *at = self->buf + self->used;
    *at++ = '$';
    at += s_decimal(at, len);
    *at++ = '\r';
    *at++ = '\n';
    if (len) memcpy(at, data, len);
    at[len] = '\r';
    at[len + 1] = '\n';
    self->offsets[self->argc] = (size_t)(at - self->buf);
    self->lens[self->argc] = len;
    self->argc++;
    self->used = (size_t)(at - self->buf) + len + 2;
}

void zc_redis_args_str(zc_redis_args_t *self, const char *str)
{
    zc_redis_args_add(self, str, strlen(str));
}

void zc_redis_args_int(zc_redis_args_t *self, int64_t value)
{
    char text[24];
    size_t len = 0;
    if (value < 0) text[len++] = '-';
    len += s_decimal(text + len, value < 0 ? 0 - (uint64_t)value : (uint64_t)value);
    zc_redis_args_add(self, text, len);
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

//  Appends one command to the output buffer: its arguments as they wait in
//  buf, behind "*ARGC\r\n"; eval sends a script's source (EVAL) in place
//  of its SHA (EVALSHA), formatted by hiredis (a rare path).
static int s_append(redisContext *c, zc_redis_args_t *args, int eval)
{
    assert(args->argc > 0);
    if (!eval) {
        char head[ARGS_HEAD];
        size_t len = 0;
        head[len++] = '*';
        len += s_decimal(head + len, (uint64_t)args->argc);
        head[len++] = '\r';
        head[len++] = '\n';
        char *start = args->buf + ARGS_HEAD - len;
        memcpy(start, head, len);
        int rc = redisAppendFormattedCommand(c, start, args->used - ARGS_HEAD + len);
        return rc == REDIS_OK ? 0 : -1;
    }
    for (int i = 0; i < args->argc; i++)
        args->argv[i] = args->buf + args->offsets[i];
    const char *head[2];
    size_t head_lens[2];
    memcpy(head, args->argv, sizeof head);
    memcpy(head_lens, args->lens, sizeof head_lens);
    args->argv[0] = "EVAL";
    args->lens[0] = 4;
    args->argv[1] = args->script->source;
    args->lens[1] = args->script->len;
    int rc = redisAppendCommandArgv(c, args->argc, args->argv, args->lens);
    memcpy(args->argv, head, sizeof head);
    memcpy(args->lens, head_lens, sizeof head_lens);
    return rc == REDIS_OK ? 0 : -1;
}

static void s_free_replies(redisReply **replies, int count)
{
    for (int i = 0; i < count; i++) {
        if (replies[i]) freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

//  Sends count commands on c, each after ASKING if asking (a slot being
//  moved), and reads their replies; a script Redis did not know is sent
//  again as EVAL. 0, or -1 if the connection failed (replies then freed).
static int s_exchange(redisContext *c, zc_redis_args_t **args, int count, redisReply **replies,
                      int asking)
{
    for (int i = 0; i < count; i++)
        if ((asking && redisAppendCommand(c, "ASKING") != REDIS_OK) || s_append(c, args[i], 0))
            return -1;
    for (int i = 0; i < count; i++) {
        void *reply = NULL;
        if (asking && (redisGetReply(c, &reply) != REDIS_OK || !reply)) goto failed;
        if (reply) freeReplyObject(reply);
        reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK) goto failed;
        replies[i] = (redisReply *)reply;
    }
    //  Only now that every pipelined reply is read can a call be sent again:
    //  EVAL runs the script and caches it, so later EVALSHAs find it.
    for (int i = 0; i < count; i++) {
        if (!s_noscript(replies[i]) || !args[i]->script) continue;
        freeReplyObject(replies[i]);
        replies[i] = NULL;
        void *reply = NULL;
        if (asking && (redisAppendCommand(c, "ASKING") != REDIS_OK ||
                       redisGetReply(c, &reply) != REDIS_OK || !reply))
            goto failed;
        if (reply) freeReplyObject(reply);
        reply = NULL;
        if (s_append(c, args[i], 1) || redisGetReply(c, &reply) != REDIS_OK) goto failed;
        replies[i] = (redisReply *)reply;
    }
    return 0;
failed:
    s_free_replies(replies, count);
    return -1;
}

//  Runs the pipeline once more on the node an ASK answer named, after
//  ASKING, on a connection of its own (the slot is still served here).
static int s_follow_ask(zc_redis_t *self, const zc_redis_addr_t *ask, zc_redis_args_t **args,
                        int count, redisReply **replies)
{
    s_free_replies(replies, count);
    redisContext *c = s_connect(self, "", ask, self->timeout_ms);
    int rc = c && s_auth(self, c) == 0 ? s_exchange(c, args, count, replies, 1) : -1;
    if (c) redisFree(c);
    return rc;
}

//  Durable: WAIT until one replica has every write this connection made,
//  if the pipeline ran a script (the queue's state changes are scripts).
//  Returns 0, or -1 when none acknowledged in time and that is required, or
//  when the connection failed (the writes may or may not have happened).
static int s_wait_replica(zc_redis_t *self, zc_redis_args_t **args, int count)
{
    int scripts = 0;
    for (int i = 0; i < count; i++)
        scripts += args[i]->script != NULL;
    if (!self->durable || scripts == 0 || !self->ctx) return 0;
    redisReply *reply = (redisReply *)redisCommand(self->ctx, "WAIT 1 %d", self->url.wait_ms);
    if (!reply) {
        zc_redis_drop(self); //  keeps why: the write's fate is unknown
        return -1;
    }
    int acked = reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1;
    freeReplyObject(reply);
    if (acked) return 0;
    self->unreplicated++;
    if (!self->durable_required) return 0;
    char where[300];
    snprintf(self->error, sizeof self->error,
             "no replica of Redis at %s acknowledged the write within %d ms (WAIT); it may be "
             "lost in a failover",
             s_where(self, where, sizeof where), self->url.wait_ms);
    return -1;
}

int zc_redis_pipeline(zc_redis_t *self, zc_redis_args_t **args, int count, redisReply **replies)
{
    for (int i = 0; i < count; i++)
        replies[i] = NULL;
    //  A pipeline every command of which was misdirected did not run: it is
    //  sent again, once, where the answer said (MOVED, ASK) or to the server
    //  found again (READONLY after a failover).
    for (int attempt = 0; attempt < 2; attempt++) {
        redisContext *c = zc_redis_context(self);
        if (!c) return -1;
        if (s_exchange(c, args, count, replies, 0)) {
            zc_redis_drop(self);
            return -1;
        }
        s_proven(self);
        zc_redis_addr_t ask = {{0}, 0};
        int misdirected = count > 0;
        for (int i = 0; i < count && misdirected; i++)
            misdirected = s_misdirected(self, replies[i], &ask);
        if (misdirected && *ask.host) return s_follow_ask(self, &ask, args, count, replies);
        if (!misdirected) {
            if (s_wait_replica(self, args, count) == 0) return 0;
            s_free_replies(replies, count);
            return -1;
        }
        if (attempt == 0) s_free_replies(replies, count);
    }
    return 0;
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
