/*  zc_redis — the cluster plane's one way to Redis (private to libzcluster).

    Every module that talks to Redis (registry, RPC connection map, cache,
    task queue, supervisor events, the embedded server's probe) goes through
    this layer, so there is one place that knows how to parse a URL, connect,
    authenticate, reconnect with backoff, run a Lua script by SHA with the
    NOSCRIPT fallback, and pipeline. It is also the one place where Redis
    high availability (Sentinel, Redis Cluster) belongs.

    A zc_redis_t is a connection that is made on first use and made again
    after a failure, no sooner than its backoff allows (100 ms, doubled per
    failed attempt up to 1 s by default; reset by a success). A call that
    finds the connection down, or loses it, returns NULL / -1 and leaves the
    reason in zc_redis_errstr; the failed call is never retried here, since
    it may have run. Error *replies* (type REDIS_REPLY_ERROR) are returned to
    the caller as they are: only the caller knows what they mean.

    A connection belongs to one thread at a time. Blocking commands (BLPOP,
    SUBSCRIBE) need a connection of their own, with a timeout longer than
    the blocking command's.

    URLs (docs/REDIS.md has the full form and the ACL to give a user):
      redis://[[user]:password@]host[:port][/db][?wait=MS]
      unix:///path/to/socket[?db=N][&wait=MS] (also unix:/path)
      redis-sentinel://[[user]:password@]host:port[,host:port...]/MASTER[/db][?wait=MS]
      redis-cluster://[[user]:password@]host:port[,host:port...][?wait=MS]
    A user sends AUTH user password (Redis 6 ACL users), a password alone
    AUTH password. A password never appears in an error message.

    Sentinel: the sentinels are asked for MASTER (SENTINEL
    get-master-addr-by-name), the answer is checked with ROLE, and a lost
    connection or a READONLY answer makes the next use ask again, so every
    module follows a failover. Cluster: the node serving the slot of the
    cluster's hash tag (zc_redis_url_set_tag) is found with CLUSTER SLOTS;
    MOVED and ASK are followed. Every command must touch that one slot.
*/
#ifndef ZC_REDIS_H_INCLUDED
#define ZC_REDIS_H_INCLUDED

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

//  How the server to talk to is found.
typedef enum {
    ZC_REDIS_DIRECT,   //  redis:// or unix://: the one server named
    ZC_REDIS_SENTINEL, //  redis-sentinel://: the master the sentinels name
    ZC_REDIS_CLUSTER   //  redis-cluster://: the node serving the tag's slot
} zc_redis_mode_t;

#define ZC_REDIS_SEEDS_MAX 8

//  A TCP address: a sentinel, a Redis Cluster node, the current master.
typedef struct {
    char host[256];
    int port;
} zc_redis_addr_t;

typedef struct {
    zc_redis_mode_t mode;
    char host[256]; //  TCP host (the first seed), or "" for a unix socket
    int port;       //  TCP port (default 6379)
    char path[256]; //  unix socket path, or ""
    char user[128]; //  ACL user, or "" for the password-only AUTH
    char password[256];
    int db;
    zc_redis_addr_t seeds[ZC_REDIS_SEEDS_MAX]; //  sentinels or cluster nodes
    int seed_count;
    char master[128]; //  the sentinels' name for the master
    int wait_ms;      //  ?wait=MS: durable writes (zc_redis_set_durable), 0 off
    int slot;         //  cluster slot of the hash tag, -1 when not set
} zc_redis_url_t;

//  Parses url into *out. Returns 0, or -1 with a reason in err (the reason
//  never repeats the password).
int zc_redis_url_parse(const char *url, zc_redis_url_t *out, char *err, size_t errlen);

//  Writes url into buf with everything between its scheme and its last '@'
//  masked ("redis://***@host:6379/2"): credentials, or what may be
//  credentials in a URL too malformed to tell. Returns buf. For every URL
//  shown to a person or written anywhere.
const char *zc_redis_url_redact(const char *url, char *buf, size_t cap);

//  Writes where the URL points, without secrets ("host:port", the socket
//  path, "master M of sentinels h:p,h:p", "cluster h:p,h:p"), into buf;
//  returns buf.
const char *zc_redis_url_where(const zc_redis_url_t *url, char *buf, size_t cap);

//  Sets the hash tag whose slot a redis-cluster:// connection follows (the
//  cluster name of "zc:{NAME}:"); any URL accepts it.
void zc_redis_url_set_tag(zc_redis_url_t *url, const char *tag);

//  The Redis Cluster slot of key (CRC16 of its hash tag, or of the whole
//  key without one), 0-16383.
int zc_redis_key_slot(const char *key, size_t len);

//  --------------------------------------------------------------------------
//  A connection

typedef struct _zc_redis_t zc_redis_t;

//  Creates a connection to url (copied) whose connect and every command are
//  bounded by timeout_ms. Does not connect yet. Never NULL.
zc_redis_t *zc_redis_new(const zc_redis_url_t *url, int timeout_ms);

//  Closes and frees the connection and sets *self_p to NULL; idempotent.
void zc_redis_destroy(zc_redis_t **self_p);

//  Sets the reconnect backoff: initial_ms doubled per failed attempt up to
//  max_ms (at most ZC_REDIS_HA_BACKOFF_MAX_MS with a Sentinel or Cluster
//  URL, where an outage is usually a failover). 0, 0 retries on every use.
#define ZC_REDIS_HA_BACKOFF_MAX_MS 1000
void zc_redis_set_backoff(zc_redis_t *self, int initial_ms, int max_ms);

//  Makes every pipeline (zc_redis_pipeline, zc_redis_call, zc_redis_eval) on
//  this connection end with WAIT 1 <wait_ms> when the URL has ?wait=MS, so
//  its writes reached a replica before the call returns. required: a call
//  no replica acknowledged in time fails (-1 / NULL, errstr says so; the
//  write may still have happened); else it returns as usual and is counted
//  (zc_redis_unreplicated). Nothing changes for a URL without ?wait.
void zc_redis_set_durable(zc_redis_t *self, int required);

//  The calls whose writes no replica acknowledged in time (durable only).
uint64_t zc_redis_unreplicated(zc_redis_t *self);

//  Returns the connected hiredis context, connecting (AUTH, SELECT) if
//  needed and the backoff allows; NULL with zc_redis_errstr set otherwise.
//  The context stays owned by the connection; after an I/O error on it,
//  call zc_redis_drop.
redisContext *zc_redis_context(zc_redis_t *self);

//  Returns 1 if the connection is up (no attempt to connect).
int zc_redis_up(zc_redis_t *self);

//  Closes the context after a failure on it (keeping its error message);
//  the next use reconnects once the backoff allows.
void zc_redis_drop(zc_redis_t *self);

//  The last connection error ("cannot connect to Redis at host:port: ...").
const char *zc_redis_errstr(zc_redis_t *self);

//  The URL this connection uses.
const zc_redis_url_t *zc_redis_url(zc_redis_t *self);

//  Runs one command (redisCommand format). Returns the reply, which the
//  caller frees (error replies included), or NULL if Redis cannot be reached
//  (the connection is then dropped and errstr says why).
redisReply *zc_redis_command(zc_redis_t *self, const char *format, ...);

//  The same with an argument vector; lens may be NULL for C strings.
redisReply *zc_redis_command_argv(zc_redis_t *self, int argc, const char **argv,
                                  const size_t *lens);

//  --------------------------------------------------------------------------
//  Scripts

//  A Lua script and its SHA-1, computed here, so no SCRIPT LOAD is needed:
//  EVALSHA is tried first and EVAL (which also caches the script) follows a
//  NOSCRIPT answer (a restarted, flushed or failed-over Redis).
typedef struct {
    const char *source; //  borrowed; usually a string literal
    size_t len;
    char sha[41];
} zc_script_t;

//  Fills self with source (borrowed) and its SHA-1. Cheap; call once, e.g.
//  from a pthread_once or a constructor, before the script is shared.
void zc_script_init(zc_script_t *self, const char *source);

//  Runs a script: argv holds numkeys keys, then the arguments (lens may be
//  NULL for C strings). Returns the reply as zc_redis_command does.
redisReply *zc_redis_eval(zc_redis_t *self, const zc_script_t *script, int numkeys, int argc,
                          const char **argv, const size_t *lens);

//  --------------------------------------------------------------------------
//  Argument lists and pipelines

//  A binary-safe argument list for one command, reused between calls so a
//  hot path allocates nothing once the list has grown.
typedef struct {
    char *buf; //  every argument, back to back, framed as sent (zc_redis.c)
    size_t used, cap;
    size_t *offsets, *lens;
    const char **argv;
    int argc, cap_args;
    const zc_script_t *script; //  set by zc_redis_args_eval
} zc_redis_args_t;

//  Empties the list (keeps its memory) for a plain command.
void zc_redis_args_reset(zc_redis_args_t *self);

//  Empties the list and starts a script call: EVALSHA sha numkeys. Add the
//  numkeys keys, then the arguments.
void zc_redis_args_eval(zc_redis_args_t *self, const zc_script_t *script, int numkeys);

//  Appends one binary-safe argument / a C string / an integer.
void zc_redis_args_add(zc_redis_args_t *self, const void *data, size_t len);
void zc_redis_args_str(zc_redis_args_t *self, const char *str);
void zc_redis_args_int(zc_redis_args_t *self, int64_t value);

//  Frees the list's memory (the list can be used again).
void zc_redis_args_free(zc_redis_args_t *self);

//  Sends count commands in one round trip and fills replies[i] with each
//  reply (the caller frees them; error replies included). A script call that
//  Redis did not know is sent again with EVAL. Returns 0, or -1 if Redis
//  cannot be reached (every replies[i] is then NULL and the connection is
//  dropped).
int zc_redis_pipeline(zc_redis_t *self, zc_redis_args_t **args, int count, redisReply **replies);

//  One command from an argument list; returns the reply as zc_redis_command.
redisReply *zc_redis_call(zc_redis_t *self, zc_redis_args_t *args);

//  --------------------------------------------------------------------------
//  Replies

//  The integer of an integer reply or of a numeric string reply, else
//  fallback.
int64_t zc_redis_reply_int(const redisReply *reply, int64_t fallback);

#endif
