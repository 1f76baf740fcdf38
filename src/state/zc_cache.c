/*  zc_cache — the cluster's shared cache in Redis: the object, its errors,
    Redis names and replies; destroy, ttl, lists and locks. Save and load
    are in zc_cache_values.c, keys/size/clear in zc_cache_walk.c, dump and
    restore in zc_cache_dump.c (zc_cache_internal.h lists the files).

    Why it looks like this:

    The model is ActionHero's api.cache (save/load/destroy with TTLs, lists,
    node-owned locks, dump/restore), minus its weak spots. ActionHero takes a
    lock with SETNX and then EXPIRE in a second round trip, so a node that
    dies between the two leaves a lock that never expires; its lock TTLs are
    rounded to seconds; and its dumps drop TTLs. Here every operation that
    checks something and then writes is one Lua script, lock TTLs are
    milliseconds (SET PX), and dumps carry each key's remaining TTL.

    Values are the caller's msgpack bytes, stored as they are, so a Python or
    Node.js peer reads them with any msgpack library. A value must be one
    well-formed msgpack object (zc_msgpack_check.c walks it without
    allocating). Loaded values are checked too: bytes some other writer put
    under our prefix come back as ZC_ERR_CORRUPT rather than being handed on
    as msgpack.

    Keys: `zc:{CLUSTER}:cache:KEY` for values and lists, `zc:{CLUSTER}:lock:KEY`
    for locks, the prefix taken from zc_identity. The hash tag puts a cluster
    in one Redis Cluster slot, which is what makes the multi-key scripts
    legal there.

    Connections: both come from the Redis layer (zc_redis), made on first use,
    so zc_cache_new only checks its arguments. One carries commands and
    scripts; the other, created on the first blocking pop, carries BLPOP,
    which holds its connection, with a command timeout set past the pop's.
    A connection that fails is dropped and the next operation reconnects
    once zc_redis's backoff allows; the failed operation is not retried,
    because it may have reached Redis.
*/
#include "zc_cache_internal.h"
#include "zc_log.h"
#include "zc_msgpack_check.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Construction

zc_cache_t *zc_cache_new(const char *redis_url, const char *cluster, const char *owner_id)
{
    zc_cache_t *self = (zc_cache_t *)calloc(1, sizeof(zc_cache_t));
    assert(self);
    char err[300];
    if (zc_identity_init(&self->identity, redis_url, cluster, owner_id, err, sizeof err)) {
        zc_log(ZC_LOG_ERROR, "cache", "%s", err);
        free(self);
        return NULL;
    }
    zc_identity_t *identity = &self->identity;
    if (!*identity->node_id) {
        zuuid_t *uuid = zuuid_new();
        snprintf(identity->node_id, sizeof identity->node_id, "%.12s", zuuid_str_canonical(uuid));
        zuuid_destroy(&uuid);
    }
    //  SCAN's MATCH is a glob: escape the glob characters a cluster name may hold.
    char *m = self->match;
    for (const char *p = identity->prefix; *p; p++) {
        if (strchr("*?[]\\", *p)) *m++ = '\\';
        *m++ = *p;
    }
    self->match_prefix_len = (size_t)(m - self->match);
    strcpy(m, "cache:");
    self->names_prefix_len = identity->prefix_len + 6;
    self->redis = zc_redis_new(&identity->url, CACHE_TIMEOUT_MS);
    return self;
}

void zc_cache_destroy(zc_cache_t **self_p)
{
    assert(self_p);
    zc_cache_t *self = *self_p;
    if (!self) return;
    zc_redis_destroy(&self->redis);
    zc_redis_destroy(&self->blocking);
    zc_redis_args_free(&self->args);
    //  The URL as given may hold a password.
    memset(&self->identity, 0, sizeof self->identity);
    free(self);
    *self_p = NULL;
}

const char *zc_cache_owner(zc_cache_t *self)
{
    assert(self);
    return self->identity.node_id;
}

const char *zc_cache_cluster(zc_cache_t *self)
{
    assert(self);
    return self->identity.cluster;
}

zc_error_t zc_cache_error(zc_cache_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_cache_errstr(zc_cache_t *self)
{
    assert(self);
    return self->failure.text;
}

int zc_cache_msgpack_valid(const void *data, size_t size)
{
    return zc_msgpack_valid(data, size);
}

//  --------------------------------------------------------------------------
//  Errors, names, replies

zc_error_t cache_fail(zc_cache_t *self, zc_error_t kind, const char *format, ...)
{
    if (self->hold_errstr) return kind; //  a batch keeps its first failure's message
    va_list args;
    va_start(args, format);
    vsnprintf(self->failure.text, sizeof self->failure.text, format, args);
    va_end(args);
    return kind;
}

void cache_note(zc_cache_t *self, const char *format, ...)
{
    if (self->hold_errstr) return;
    size_t len = strlen(self->failure.text);
    va_list args;
    va_start(args, format);
    vsnprintf(self->failure.text + len, sizeof self->failure.text - len, format, args);
    va_end(args);
}

int cache_done(zc_cache_t *self, zc_error_t kind)
{
    self->stats.ops++;
    self->stats.failed += kind != ZC_OK;
    self->failure.kind = kind;
    if (kind == ZC_OK) self->failure.text[0] = 0;
    return kind == ZC_OK ? 0 : -1;
}

void zc_cache_stats(zc_cache_t *self, zc_cache_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
}

int cache_key_ok(const char *key)
{
    size_t len = strlen(key);
    return len > 0 && len <= ZC_CACHE_KEY_MAX;
}

zc_error_t cache_check_key(zc_cache_t *self, const char *key)
{
    assert(key);
    size_t len = strlen(key);
    if (len == 0) return cache_fail(self, ZC_ERR_INVALID, "empty key");
    if (len > ZC_CACHE_KEY_MAX)
        return cache_fail(self, ZC_ERR_INVALID, "key longer than %d bytes", ZC_CACHE_KEY_MAX);
    return ZC_OK;
}

//  Writes key's full name in space, "<prefix><space>:<key>" with the key
//  cut so that the name and its NUL fit CACHE_NAME_MAX (prefix and space
//  always do), into buf. Part by part: a batch names two keys per entry,
//  and a formatted print of each was a fifth of a batched save's client
//  time. Returns the name's length.
static size_t s_name(zc_cache_t *self, char *buf, const char *space, const char *key)
{
    size_t prefix_len = self->identity.prefix_len, space_len = strlen(space);
    size_t len = prefix_len + space_len + 1;
    size_t key_len = strnlen(key, CACHE_NAME_MAX - 1 - len);
    memcpy(buf, self->identity.prefix, prefix_len);
    memcpy(buf + prefix_len, space, space_len);
    buf[len - 1] = ':';
    memcpy(buf + len, key, key_len);
    buf[len + key_len] = 0;
    return len + key_len;
}

const char *cache_name(zc_cache_t *self, char *buf, const char *space, const char *key)
{
    s_name(self, buf, space, key);
    return buf;
}

void cache_args_name(zc_cache_t *self, zc_redis_args_t *args, const char *space, const char *key)
{
    char name[CACHE_NAME_MAX];
    zc_redis_args_add(args, name, s_name(self, name, space, key));
}

void cache_args_owner(zc_cache_t *self, zc_redis_args_t *args)
{
    zc_redis_args_str(args, self->identity.node_id);
}

void cache_args_trim(zc_cache_t *self)
{
    if (self->args.cap > CACHE_ARGS_KEEP) zc_redis_args_free(&self->args);
}

//  Checks a reply to a plain command or a script call (not its status).
static zc_error_t s_check_reply(zc_cache_t *self, zc_redis_t *redis, const redisReply *reply,
                                const char *key, const char *op)
{
    if (!reply) return cache_fail(self, ZC_ERR_REDIS, "%s", zc_redis_errstr(redis));
    if (reply->type != REDIS_REPLY_ERROR) return ZC_OK;
    if (strstr(reply->str, "WRONGTYPE"))
        return cache_fail(self, ZC_ERR_TYPE,
                          "key '%.100s' (or its lock) holds the wrong kind of data for %s", key,
                          op);
    return cache_fail(self, ZC_ERR_REDIS, "Redis refused %s of key '%.100s': %s", op, key,
                      reply->str);
}

//  Hands reply to the caller through reply_p (may be NULL) if rc is ZC_OK,
//  else frees it; returns rc.
static zc_error_t s_hand_over(redisReply *reply, zc_error_t rc, redisReply **reply_p)
{
    if (reply_p) *reply_p = rc == ZC_OK ? reply : NULL;
    if (reply && (rc != ZC_OK || !reply_p)) freeReplyObject(reply);
    return rc;
}

zc_error_t cache_call(zc_cache_t *self, zc_redis_args_t *args, const char *key, const char *op,
                      redisReply **reply_p)
{
    redisReply *reply = zc_redis_call(self->redis, args);
    return s_hand_over(reply, s_check_reply(self, self->redis, reply, key, op), reply_p);
}

zc_error_t cache_pipeline(zc_cache_t *self, zc_redis_args_t **args, int count, redisReply **replies,
                          const char *op)
{
    if (zc_redis_pipeline(self->redis, args, count, replies))
        return cache_fail(self, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->redis));
    zc_error_t rc = ZC_OK;
    for (int i = 0; i < count && !rc; i++)
        rc = s_check_reply(self, self->redis, replies[i], "*", op);
    return rc;
}

zc_error_t cache_status(zc_cache_t *self, const redisReply *status, const char *key, const char *op)
{
    if (status->type != REDIS_REPLY_ARRAY || status->elements < 1 ||
        status->element[0]->type != REDIS_REPLY_INTEGER)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to %s", op);
    const redisReply *info = status->elements > 1 ? status->element[1] : NULL;
    const char *text = info && info->type == REDIS_REPLY_STRING ? info->str : "?";
    switch (status->element[0]->integer) {
    case CACHE_STATUS_DONE:
        return ZC_OK;
    case CACHE_STATUS_MISSING:
        return cache_fail(self, ZC_ERR_MISSING, "key '%.100s' does not exist", key);
    case CACHE_STATUS_LOCKED:
        return cache_fail(self, ZC_ERR_LOCKED, "key '%.100s' is locked by node '%.255s'", key,
                          text);
    case CACHE_STATUS_WRONGTYPE:
        return cache_fail(self, ZC_ERR_TYPE, "key '%.100s' holds a %.20s, not a value", key, text);
    case CACHE_STATUS_BADLOCK:
        return cache_fail(self, ZC_ERR_TYPE,
                          "the lock of key '%.100s' holds the wrong kind of data", key);
    default:
        return cache_fail(self, ZC_ERR_REDIS, "unexpected status from Redis to %s", op);
    }
}

zc_error_t cache_run(zc_cache_t *self, zc_redis_args_t *args, const char *key, const char *op,
                     redisReply **reply_p)
{
    redisReply *reply = NULL;
    zc_error_t rc = cache_call(self, args, key, op, &reply);
    if (rc == ZC_OK) rc = cache_status(self, reply, key, op);
    return s_hand_over(reply, rc, reply_p);
}

//  Runs COMMAND on the Redis name of key in space; on ZC_OK *reply_p holds
//  the reply for the caller to read and free.
static zc_error_t s_key_command(zc_cache_t *self, const char *command, const char *space,
                                const char *key, const char *op, redisReply **reply_p)
{
    *reply_p = NULL;
    zc_error_t rc = cache_check_key(self, key);
    if (rc) return rc;
    zc_redis_args_reset(&self->args);
    zc_redis_args_str(&self->args, command);
    cache_args_name(self, &self->args, space, key);
    return cache_call(self, &self->args, key, op, reply_p);
}

//  Runs COMMAND on key's value name and reads its integer answer.
static zc_error_t s_key_integer(zc_cache_t *self, const char *command, const char *key,
                                const char *op, long long *value)
{
    redisReply *reply;
    zc_error_t rc = s_key_command(self, command, "cache", key, op, &reply);
    if (!rc && reply->type != REDIS_REPLY_INTEGER)
        rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to %s", command);
    if (!rc) *value = reply->integer;
    if (reply) freeReplyObject(reply);
    return rc;
}

//  Runs a one-key script (destroy, lock, unlock): KEYS the key's value name
//  (with_value) and its lock name, ARGV the owner and extra (may be NULL).
static zc_error_t s_key_script(zc_cache_t *self, cache_script_id_t script, const char *key,
                               int with_value, const char *extra, const char *op)
{
    zc_error_t rc = cache_check_key(self, key);
    if (rc) return rc;
    zc_redis_args_eval(&self->args, cache_script(script), with_value ? 2 : 1);
    if (with_value) cache_args_name(self, &self->args, "cache", key);
    cache_args_name(self, &self->args, "lock", key);
    cache_args_owner(self, &self->args);
    if (extra) zc_redis_args_str(&self->args, extra);
    return cache_run(self, &self->args, key, op, NULL);
}

//  --------------------------------------------------------------------------
//  Destroy and TTL

int zc_cache_destroy_key(zc_cache_t *self, const char *key)
{
    assert(self);
    return cache_done(self, s_key_script(self, CACHE_DESTROY, key, 1, NULL, "destroy"));
}

int zc_cache_ttl(zc_cache_t *self, const char *key, int64_t *ttl_ms_p)
{
    assert(self);
    assert(ttl_ms_p);
    long long ttl = 0;
    zc_error_t rc = s_key_integer(self, "PTTL", key, "ttl", &ttl);
    if (!rc && ttl == -2) //  no such key; -1 is a key without expiry
        rc = cache_fail(self, ZC_ERR_MISSING, "key '%.100s' does not exist", key);
    if (!rc) *ttl_ms_p = ttl < 0 ? -1 : ttl;
    return cache_done(self, rc);
}

//  --------------------------------------------------------------------------
//  Lists

int zc_cache_push(zc_cache_t *self, const char *key, const void *value, size_t size)
{
    assert(self);
    zc_error_t rc = cache_check_key(self, key);
    if (!rc && !zc_msgpack_valid(value, size))
        rc = cache_fail(self, ZC_ERR_INVALID,
                        "value for key '%.100s' is not one well-formed msgpack object", key);
    if (rc) return cache_done(self, rc);
    zc_redis_args_reset(&self->args);
    zc_redis_args_str(&self->args, "RPUSH");
    cache_args_name(self, &self->args, "cache", key);
    zc_redis_args_add(&self->args, value, size);
    rc = cache_call(self, &self->args, key, "push", NULL);
    cache_args_trim(self);
    return cache_done(self, rc);
}

//  Takes a popped item (a bulk string, or nil: nil_kind) into *value_p.
static zc_error_t s_take_item(zc_cache_t *self, const redisReply *item, const char *key,
                              zc_error_t nil_kind, void **value_p, size_t *size_p)
{
    if (item->type == REDIS_REPLY_NIL)
        return nil_kind == ZC_ERR_TIMEOUT
                   ? cache_fail(self, nil_kind, "no item came to list '%.100s' in time", key)
                   : cache_fail(self, nil_kind, "list '%.100s' is empty or does not exist", key);
    if (item->type != REDIS_REPLY_STRING)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to pop");
    if (!zc_msgpack_valid(item->str, item->len))
        return cache_fail(self, ZC_ERR_CORRUPT,
                          "list '%.100s' held an item that is not msgpack (it was removed)", key);
    *value_p = malloc(item->len ? item->len : 1);
    assert(*value_p);
    memcpy(*value_p, item->str, item->len);
    *size_p = item->len;
    return ZC_OK;
}

int zc_cache_pop(zc_cache_t *self, const char *key, void **value_p, size_t *size_p)
{
    assert(self);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    redisReply *reply;
    zc_error_t rc = s_key_command(self, "LPOP", "cache", key, "pop", &reply);
    if (!rc) rc = s_take_item(self, reply, key, ZC_ERR_MISSING, value_p, size_p);
    if (reply) freeReplyObject(reply);
    return cache_done(self, rc);
}

//  Sends BLPOP on the blocking connection, whose command timeout is set past
//  the pop's so that hiredis does not give up first; returns the reply or
//  NULL with the reason recorded.
static redisReply *s_blpop(zc_cache_t *self, const char *key, int64_t timeout_ms)
{
    if (!self->blocking) self->blocking = zc_redis_new(&self->identity.url, CACHE_TIMEOUT_MS);
    redisContext *c = zc_redis_context(self->blocking);
    if (!c) {
        cache_fail(self, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->blocking));
        return NULL;
    }
    int64_t limit = timeout_ms + CACHE_TIMEOUT_MS;
    struct timeval tv = {(time_t)(limit / 1000), (suseconds_t)(limit % 1000) * 1000};
    redisSetTimeout(c, tv);
    char name[CACHE_NAME_MAX], seconds[32];
    snprintf(seconds, sizeof seconds, "%" PRId64 ".%03d", timeout_ms / 1000,
             (int)(timeout_ms % 1000));
    const char *argv[3] = {"BLPOP", cache_name(self, name, "cache", key), seconds};
    redisReply *reply = zc_redis_command_argv(self->blocking, 3, argv, NULL);
    if (!reply) cache_fail(self, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->blocking));
    return reply;
}

int zc_cache_pop_wait(zc_cache_t *self, const char *key, int64_t timeout_ms, void **value_p,
                      size_t *size_p)
{
    assert(self);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    zc_error_t rc = cache_check_key(self, key);
    if (rc) return cache_done(self, rc);
    if (timeout_ms <= 0 || timeout_ms > INT32_MAX)
        return cache_done(self, cache_fail(self, ZC_ERR_INVALID,
                                           "pop timeout %" PRId64 " ms out of range", timeout_ms));
    redisReply *reply = s_blpop(self, key, timeout_ms);
    if (!reply) return cache_done(self, ZC_ERR_REDIS);
    if (reply->type == REDIS_REPLY_ERROR)
        rc = strstr(reply->str, "WRONGTYPE")
                 ? cache_fail(self, ZC_ERR_TYPE, "key '%.100s' holds a value, not a list", key)
                 : cache_fail(self, ZC_ERR_REDIS, "Redis refused pop of '%.100s': %s", key,
                              reply->str);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        rc = s_take_item(self, reply->element[1], key, ZC_ERR_TIMEOUT, value_p, size_p);
    else
        rc = s_take_item(self, reply, key, ZC_ERR_TIMEOUT, value_p, size_p);
    freeReplyObject(reply);
    return cache_done(self, rc);
}

int zc_cache_length(zc_cache_t *self, const char *key, size_t *length_p)
{
    assert(self);
    assert(length_p);
    *length_p = 0;
    long long length = 0;
    zc_error_t rc = s_key_integer(self, "LLEN", key, "length", &length);
    if (!rc) *length_p = (size_t)length;
    return cache_done(self, rc);
}

//  --------------------------------------------------------------------------
//  Locks

int zc_cache_lock(zc_cache_t *self, const char *key, int64_t ttl_ms)
{
    assert(self);
    zc_error_t rc = cache_check_key(self, key);
    if (!rc && (ttl_ms <= 0 || ttl_ms > CACHE_TTL_MAX))
        rc = cache_fail(self, ZC_ERR_INVALID, "lock TTL %" PRId64 " ms out of range", ttl_ms);
    if (rc) return cache_done(self, rc);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    return cache_done(self, s_key_script(self, CACHE_LOCK, key, 0, ttl, "lock"));
}

int zc_cache_unlock(zc_cache_t *self, const char *key)
{
    assert(self);
    zc_error_t rc = s_key_script(self, CACHE_UNLOCK, key, 0, NULL, "unlock");
    if (rc == ZC_ERR_MISSING)
        cache_fail(self, rc, "key '%.100s' is not locked (did the lock expire?)", key);
    return cache_done(self, rc);
}

int zc_cache_locked(zc_cache_t *self, const char *key, char **owner_p)
{
    assert(self);
    assert(owner_p);
    *owner_p = NULL;
    redisReply *reply;
    zc_error_t rc = s_key_command(self, "GET", "lock", key, "locked", &reply);
    if (!rc && reply->type == REDIS_REPLY_STRING)
        *owner_p = strdup(reply->str);
    else if (!rc && reply->type != REDIS_REPLY_NIL)
        rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to GET");
    if (reply) freeReplyObject(reply);
    return cache_done(self, rc);
}
