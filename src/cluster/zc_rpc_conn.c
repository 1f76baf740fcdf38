/*  zc_rpc_conn — the RPC connection map. See zc_rpc_conn.h. */
#include "zc_rpc_conn.h"
#include "zc_log.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Only the holder removes its connection: another node may have taken it
//  over, and its entry must stay.
//  KEYS: conn  ARGV: connection node-id
static zc_script_t s_remove;
static pthread_once_t s_remove_once = PTHREAD_ONCE_INIT;

static void s_remove_init(void)
{
    zc_script_init(&s_remove, "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
                              "  return redis.call('HDEL', KEYS[1], ARGV[1])\n"
                              "end\n"
                              "return 0\n");
}

struct _zc_rpc_conn_t {
    zc_identity_t identity;
    zc_redis_t *redis;
    char key[ZC_PREFIX_MAX + 8]; //  zc:{CLUSTER}:conn
    char error[400];
};

zc_rpc_conn_t *zc_rpc_conn_new(const zc_identity_t *identity)
{
    assert(identity);
    pthread_once(&s_remove_once, s_remove_init);
    zc_rpc_conn_t *self = (zc_rpc_conn_t *)calloc(1, sizeof *self);
    assert(self);
    self->identity = *identity;
    self->redis = zc_redis_new(&self->identity.url, 1000);
    zc_identity_key(&self->identity, self->key, sizeof self->key, "conn");
    return self;
}

void zc_rpc_conn_destroy(zc_rpc_conn_t **self_p)
{
    assert(self_p);
    zc_rpc_conn_t *self = *self_p;
    if (!self) return;
    zc_redis_destroy(&self->redis);
    memset(&self->identity, 0, sizeof self->identity); //  the URL may hold a password
    free(self);
    *self_p = NULL;
}

//  Keeps the reason of a failed command (and frees its reply); returns -1.
static int s_failed(zc_rpc_conn_t *self, redisReply *reply)
{
    if (!reply) {
        snprintf(self->error, sizeof self->error, "%s", zc_redis_errstr(self->redis));
        zc_log(ZC_LOG_WARNING, self->identity.node_id, "RPC connection registry: %s", self->error);
        return -1;
    }
    snprintf(self->error, sizeof self->error, "connection map command failed: %s",
             reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    freeReplyObject(reply);
    return -1;
}

int zc_rpc_conn_add(zc_rpc_conn_t *self, const char *connection)
{
    assert(self && connection);
    redisReply *reply = zc_redis_command(self->redis, "HSET %s %s %s", self->key, connection,
                                         self->identity.node_id);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return s_failed(self, reply);
    freeReplyObject(reply);
    return 0;
}

int zc_rpc_conn_remove(zc_rpc_conn_t *self, const char *connection)
{
    assert(self && connection);
    const char *argv[] = {self->key, connection, self->identity.node_id};
    redisReply *reply = zc_redis_eval(self->redis, &s_remove, 1, 3, argv, NULL);
    if (!reply || reply->type != REDIS_REPLY_INTEGER) return s_failed(self, reply);
    freeReplyObject(reply);
    return 0;
}

int zc_rpc_conn_owner(zc_rpc_conn_t *self, const char *connection, char *owner, size_t cap)
{
    assert(self && connection && owner);
    redisReply *reply = zc_redis_command(self->redis, "HGET %s %s", self->key, connection);
    if (reply && reply->type == REDIS_REPLY_NIL) {
        freeReplyObject(reply);
        return 1;
    }
    if (!reply || reply->type != REDIS_REPLY_STRING || !zc_wire_name_valid(reply->str))
        return s_failed(self, reply);
    snprintf(owner, cap, "%s", reply->str);
    freeReplyObject(reply);
    return 0;
}

const char *zc_rpc_conn_errstr(zc_rpc_conn_t *self)
{
    assert(self);
    return self->error;
}
