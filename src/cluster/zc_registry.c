/*  zc_registry — the background actor that keeps a node in the Redis registry.

    Why an actor: registry work is slow (Redis round trips, reconnect
    back-off, timers) and must never stall the data path, which lives on the
    application's thread in zc_mesh. The actor talks to the node over the
    CZMQ actor pipe (inproc), so the node sees membership as events it
    handles between messages.

    Keys (all under zc:{CLUSTER}: so a cluster's keys share one Redis Cluster
    slot and the Lua scripts below are legal there):

        nodes          set of registered node ids
        node:<id>      hash: the node's record (id, inc, host, pid, pub, router,
                       curve, groups, headers, started, version)
        lease:<id>     the node's lease, value = its incarnation, PX lease_ttl;
                       refreshed every lease_ttl/3 while the node lives
        leader         "<id> <epoch>", PX lease_ttl: the leader lease
        epoch          fencing epoch, INCR on each new leader, and never below
                       the highest epoch the electing node saw (a Redis
                       failover may lose writes: docs/REGISTRY.md)
        events         pub/sub channel: "join <id>", "update <id>",
                       "leave <id> <reason> <incarnation>"

    Each change is one Lua script, so a record, its set entry and its lease
    never disagree and the announcement goes out with the change. Removing a
    record is conditional on the incarnation the remover saw, so a survivor
    that reports a crash can never delete the record of the node's restarted
    successor. Any node reaps expired leases (nodes silent past their TTL)
    on its timer: the reap is idempotent, so there is no single reaper.

    Redis: two zc_redis_t connections, one for commands and scripts (run
    by SHA, zc_script_t) and one subscribed to the announcements, which
    takes no other command. Keys come from the node's zc_identity_t.
    Outages: the actor logs once, its connections retry with exponential
    back-off (100 ms doubling to 5 s; 1 s behind sentinels or a Redis
    Cluster) and it re-registers and resynchronises
    when Redis is back. Messaging between known peers carries on meanwhile.
    A leader that cannot renew its lease for a whole TTL demotes itself.

    What peers wrote (their records, the announcements) is parsed in
    zc_registry_record.c.
*/
#include "zc_registry.h"
#include "zc_log.h"
#include "zc_registry_record.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum {
    SCRIPT_REGISTER,
    SCRIPT_REFRESH,
    SCRIPT_UPDATE,
    SCRIPT_REMOVE,
    SCRIPT_REAP,
    SCRIPT_ELECT,
    SCRIPT_COUNT
};

static const char *s_sources[SCRIPT_COUNT] = {
    //  REGISTER  KEYS: nodes node:id lease:id  ARGV: id ttl channel inc field value...
    "redis.call('DEL', KEYS[2])\n"
    "redis.call('HSET', KEYS[2], unpack(ARGV, 5))\n"
    "redis.call('SADD', KEYS[1], ARGV[1])\n"
    "redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[3], 'join ' .. ARGV[1])\n"
    "return 1\n",
    //  REFRESH  KEYS: node:id lease:id  ARGV: inc ttl
    "if redis.call('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n",
    //  UPDATE  KEYS: node:id  ARGV: inc field value channel id
    "if redis.call('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], 'update ' .. ARGV[5])\n"
    "return 1\n",
    //  REMOVE  KEYS: nodes node:id lease:id leader node:reporter
    //          ARGV: id inc channel reason reporter-inc
    //  Only a reporter in good standing may remove: a node that was itself
    //  frozen sees every peer's connection time out when it wakes, and must
    //  not remove the healthy peers that already removed it.
    "if redis.call('HGET', KEYS[5], 'inc') ~= ARGV[5] then return 0 end\n"
    "if redis.call('HGET', KEYS[2], 'inc') ~= ARGV[2] then return 0 end\n"
    "redis.call('SREM', KEYS[1], ARGV[1])\n"
    "redis.call('DEL', KEYS[2], KEYS[3])\n"
    "local holder = redis.call('GET', KEYS[4])\n"
    "if holder and string.match(holder, '^(%S+)') == ARGV[1] then redis.call('DEL', KEYS[4]) end\n"
    "redis.call('PUBLISH', ARGV[3], 'leave ' .. ARGV[1] .. ' ' .. ARGV[4] .. ' ' .. ARGV[2])\n"
    "return 1\n",
    //  REAP  KEYS: nodes leader  ARGV: prefix channel
    "local removed = 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  if redis.call('EXISTS', ARGV[1] .. 'lease:' .. id) == 0 then\n"
    "    local inc = redis.call('HGET', ARGV[1] .. 'node:' .. id, 'inc') or ''\n"
    "    redis.call('SREM', KEYS[1], id)\n"
    "    redis.call('DEL', ARGV[1] .. 'node:' .. id)\n"
    "    local holder = redis.call('GET', KEYS[2])\n"
    "    if holder and string.match(holder, '^(%S+)') == id then redis.call('DEL', KEYS[2]) end\n"
    "    redis.call('PUBLISH', ARGV[2], 'leave ' .. id .. ' expired ' .. inc)\n"
    "    removed = removed + 1\n"
    "  end\n"
    "end\n"
    "return removed\n",
    //  ELECT  KEYS: leader epoch  ARGV: id ttl seen  -> {is_leader, epoch, holder}
    //  A value that is not "<id> <epoch>" is corrupt and taken over. seen is
    //  the highest epoch the caller ever saw: a Redis that lost writes in a
    //  failover (an older leader value, a lower counter) never makes the
    //  epoch go back. A lease below seen is stale and taken over, and a new
    //  epoch is above both the counter and seen.
    "local cur = redis.call('GET', KEYS[1])\n"
    "local seen = tonumber(ARGV[3]) or 0\n"
    "local holder, epoch\n"
    "if cur then holder, epoch = string.match(cur, '^(%S+) (%d+)$') end\n"
    "if holder and tonumber(epoch) < seen then holder = nil end\n"
    "if not holder then\n"
    "  local e = redis.call('INCR', KEYS[2])\n"
    "  if e <= seen then\n"
    "    e = seen + 1\n"
    "    redis.call('SET', KEYS[2], e)\n"
    "  end\n"
    "  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])\n"
    "  return {1, e, ARGV[1]}\n"
    "end\n"
    "if holder == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return {1, tonumber(epoch), holder}\n"
    "end\n"
    "return {0, tonumber(epoch), holder}\n",
};

//  The scripts with their SHAs, shared by every node of the process.
static zc_script_t s_scripts[SCRIPT_COUNT];
static pthread_once_t s_scripts_once = PTHREAD_ONCE_INIT;

static void s_scripts_init(void)
{
    for (int i = 0; i < SCRIPT_COUNT; i++)
        zc_script_init(&s_scripts[i], s_sources[i]);
}

typedef struct {
    zsock_t *pipe;
    zc_registry_config_t config;
    const char *id;                  //  this node's id, in config.identity
    char channel[ZC_PREFIX_MAX + 8]; //  prefix + "events"
    zc_redis_t *cmd;                 //  commands and scripts
    zc_redis_t *sub;                 //  subscribed to the channel: takes no other command
    zc_redis_args_t fetch[2];        //  the two commands that read a peer's record
    int up;                          //  both connections made, subscribed and registered
    int reported_down;
    int tick_ms;
    int64_t retry_at, next_tick;
    zhashx_t *known; //  peer id -> incarnation (strdup'd), as last told to the node
    int leader;
    uint64_t epoch;
    char leader_id[256];
    int64_t last_renew;
    int64_t grace_until; //  after (re)connecting, peers missing from Redis are not removed yet
    int64_t reincarnated_at;
    int terminated;
} s_registry_t;

//  Keys are "zc:{CLUSTER}:" + kind + id, e.g. zc:{demo}:lease:web-1.
#define KEY_MAX (ZC_PREFIX_MAX + 16 + ZC_NAME_MAX)

static const char *s_key(s_registry_t *self, char *out, size_t cap, const char *kind,
                         const char *id)
{
    char suffix[16 + ZC_NAME_MAX + 1];
    snprintf(suffix, sizeof suffix, "%s%s", kind, id ? id : "");
    return zc_identity_key(&self->config.identity, out, cap, suffix);
}

//  --------------------------------------------------------------------------
//  Connection

//  Both connections back off on their own (zc_redis_set_backoff: 100 ms
//  doubling to 5 s); while down, the actor looks every RETRY_MS whether
//  they let it try again.
#define RETRY_MS 100

static void s_down(s_registry_t *self, const char *reason)
{
    char why[320]; //  reason may be a connection's message, rewritten below
    snprintf(why, sizeof why, "%s", reason && *reason ? reason : "connection lost");
    zc_redis_drop(self->cmd);
    zc_redis_drop(self->sub);
    if (self->up || !self->reported_down) {
        zc_log(ZC_LOG_WARNING, self->id, "Redis registry unreachable (%s); retrying", why);
        self->reported_down = 1;
        zstr_sendx(self->pipe, "REDIS", "down", NULL);
    }
    self->up = 0;
    self->retry_at = zclock_mono() + RETRY_MS;
}

//  Runs a script (by SHA; zc_redis sends the source if Redis forgot it).
//  Returns the reply (caller frees) or NULL when Redis is down or refused.
static redisReply *s_script(s_registry_t *self, int script, int numkeys, const char **args,
                            int nargs)
{
    if (!self->up) return NULL; //  never reconnect behind the actor's back
    redisReply *reply = zc_redis_eval(self->cmd, &s_scripts[script], numkeys, nargs, args, NULL);
    if (!reply) {
        s_down(self, zc_redis_errstr(self->cmd));
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        zc_log(ZC_LOG_ERROR, self->id, "registry script failed: %s", reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

static long long s_script_int(s_registry_t *self, int script, int numkeys, const char **args,
                              int nargs)
{
    redisReply *reply = s_script(self, script, numkeys, args, nargs);
    long long value = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return value;
}

static int s_register(s_registry_t *self)
{
    zc_registry_config_t *c = &self->config;
    char nodes[KEY_MAX], node[KEY_MAX], lease[KEY_MAX], ttl[16], pid[16], started[24];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, node, sizeof node, "node:", self->id);
    s_key(self, lease, sizeof lease, "lease:", self->id);
    snprintf(ttl, sizeof ttl, "%d", c->lease_ttl_ms);
    snprintf(pid, sizeof pid, "%d", c->pid);
    snprintf(started, sizeof started, "%" PRId64, c->started_ms);
    const char *args[] = {nodes,      node,      lease,    self->id,  ttl,       self->channel,
                          c->inc,     "id",      self->id, "inc",     c->inc,    "host",
                          c->host,    "pid",     pid,      "pub",     c->pub,    "router",
                          c->router,  "curve",   c->curve, "groups",  c->groups, "headers",
                          c->headers, "started", started,  "version", c->version};
    int ok = s_script_int(self, SCRIPT_REGISTER, 3, args, sizeof args / sizeof args[0]) == 1;
    if (ok) self->last_renew = zclock_mono();
    return ok ? 0 : -1;
}

//  Registers again under a new incarnation, after peers removed this node
//  (it went silent): they remember the old one as dead.
static void s_reincarnate(s_registry_t *self)
{
    zuuid_t *uuid = zuuid_new();
    snprintf(self->config.inc, sizeof self->config.inc, "%s", zuuid_str(uuid));
    zuuid_destroy(&uuid);
    zstr_sendx(self->pipe, "INC", self->config.inc, NULL);
    self->reincarnated_at = zclock_mono();
    s_register(self);
}

static void s_sync(s_registry_t *self);
static void s_elect(s_registry_t *self);

//  Subscribes before the membership is read, so no announcement falls
//  between the read and the subscription. Returns 0 or -1 (down).
static int s_subscribe(s_registry_t *self)
{
    if (!zc_redis_context(self->cmd)) {
        s_down(self, zc_redis_errstr(self->cmd));
        return -1;
    }
    redisReply *reply = zc_redis_command(self->sub, "SUBSCRIBE %s", self->channel);
    int ok = reply && reply->type == REDIS_REPLY_ARRAY;
    char why[320];
    snprintf(why, sizeof why, "%s",
             !reply                             ? zc_redis_errstr(self->sub)
             : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                : "unexpected SUBSCRIBE reply");
    if (reply) freeReplyObject(reply);
    if (!ok) s_down(self, why);
    return ok ? 0 : -1;
}

static void s_connect(s_registry_t *self)
{
    if (s_subscribe(self)) return;
    self->up = 1;
    if (s_register(self) != 0) {
        if (self->up) {
            //  Redis answered but refused: try again at the next tick.
            s_down(self, "registration failed");
            self->retry_at = zclock_mono() + self->tick_ms;
        }
        return;
    }
    if (self->reported_down)
        zc_log(ZC_LOG_INFO, self->id, "Redis registry reachable again; re-registered");
    self->reported_down = 0;
    self->grace_until = zclock_mono() + self->config.lease_ttl_ms;
    zstr_sendx(self->pipe, "REDIS", "up", NULL);
    s_sync(self);
    s_elect(self);
}

//  --------------------------------------------------------------------------
//  Membership

static void s_tell_add(s_registry_t *self, json_t *record)
{
    const char *id = json_string_value(json_object_get(record, "id"));
    const char *inc = json_string_value(json_object_get(record, "inc"));
    json_t *curve = json_object_get(record, "curve");
    char *text = json_dumps(record, JSON_COMPACT);
    zstr_sendx(self->pipe, "ADD", id, inc, json_string_value(json_object_get(record, "pub")),
               json_string_value(json_object_get(record, "router")),
               json_is_string(curve) ? json_string_value(curve) : "", text, NULL);
    free(text);
    zhashx_update(self->known, id, strdup(inc));
}

//  Tells the node a peer is gone, if it is the incarnation we know (any, if
//  removed_inc is NULL): a late announcement about an earlier one is stale.
static void s_tell_remove(s_registry_t *self, const char *id, const char *removed_inc,
                          const char *reason)
{
    const char *inc = (const char *)zhashx_lookup(self->known, id);
    if (!inc || (removed_inc && strcmp(inc, removed_inc) != 0)) return;
    zstr_sendx(self->pipe, "REMOVE", id, inc, reason, NULL);
    zhashx_delete(self->known, id);
}

//  Fetches one peer's record and tells the node. The lease must be live:
//  a record whose lease lapsed is about to be reaped.
static void s_fetch(s_registry_t *self, const char *id)
{
    if (!self->up || strcmp(id, self->id) == 0) return;
    char node[KEY_MAX], lease[KEY_MAX];
    zc_redis_args_t *args[2] = {&self->fetch[0], &self->fetch[1]};
    zc_redis_args_reset(args[0]);
    zc_redis_args_str(args[0], "HGETALL");
    zc_redis_args_str(args[0], s_key(self, node, sizeof node, "node:", id));
    zc_redis_args_reset(args[1]);
    zc_redis_args_str(args[1], "EXISTS");
    zc_redis_args_str(args[1], s_key(self, lease, sizeof lease, "lease:", id));
    redisReply *replies[2];
    if (zc_redis_pipeline(self->cmd, args, 2, replies)) {
        s_down(self, zc_redis_errstr(self->cmd));
        return;
    }
    json_t *record = zc_registry_record_parse(replies[0], id);
    int live = zc_redis_reply_int(replies[1], 0) == 1;
    if (record && live)
        s_tell_add(self, record);
    else
        zc_log(ZC_LOG_DEBUG, self->id, "no usable record for node %s", id);
    json_decref(record);
    freeReplyObject(replies[0]);
    freeReplyObject(replies[1]);
}

//  Reads the whole membership and tells the node what changed since it
//  last knew: catches announcements missed while Redis was unreachable.
static void s_sync(s_registry_t *self)
{
    if (!self->up) return;
    char nodes[KEY_MAX];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    redisReply *reply = zc_redis_command(self->cmd, "SMEMBERS %s", nodes);
    if (!reply) {
        s_down(self, zc_redis_errstr(self->cmd));
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        zc_log(ZC_LOG_ERROR, self->id, "registry key %s is not a set", nodes);
        freeReplyObject(reply);
        return;
    }
    zhashx_t *present = zhashx_new();
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            zhashx_insert(present, reply->element[i]->str, (void *)1);
    for (size_t i = 0; i < reply->elements && self->up; i++) {
        const char *id = reply->element[i]->str;
        if (reply->element[i]->type == REDIS_REPLY_STRING && !zhashx_lookup(self->known, id))
            s_fetch(self, id);
    }
    freeReplyObject(reply);
    zlist_t *gone = zlist_new();
    zlist_autofree(gone);
    //  A Redis that restarted empty fills up again as every node re-registers
    //  within its lease TTL: until then, absence from the set proves nothing.
    int grace = zclock_mono() < self->grace_until;
    for (void *inc = zhashx_first(self->known); inc && !grace; inc = zhashx_next(self->known))
        if (!zhashx_lookup(present, zhashx_cursor(self->known)))
            zlist_append(gone, (void *)zhashx_cursor(self->known));
    for (char *id = (char *)zlist_first(gone); id; id = (char *)zlist_next(gone))
        s_tell_remove(self, id, NULL, "expired");
    zlist_destroy(&gone);
    zhashx_destroy(&present);
}

static void s_announcement(s_registry_t *self, redisReply *reply)
{
    zc_announcement_t a;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[2]->type != REDIS_REPLY_STRING ||
        zc_registry_announcement_parse(reply->element[2]->str, reply->element[2]->len, &a))
        return;
    if (strcmp(a.id, self->id) == 0) {
        //  Someone removed us (we went silent): come back as a new incarnation.
        if (a.verb == ZC_ANNOUNCE_LEAVE && strcmp(a.inc, self->config.inc) == 0) {
            zc_log(ZC_LOG_WARNING, self->id, "registry removed this node (%s); re-registering",
                   a.reason);
            s_reincarnate(self);
        }
        return;
    }
    if (a.verb == ZC_ANNOUNCE_LEAVE)
        s_tell_remove(self, a.id, a.inc, a.reason);
    else
        s_fetch(self, a.id);
}

static void s_read_announcements(s_registry_t *self)
{
    redisContext *c = zc_redis_context(self->sub); //  up: connected, no attempt made
    if (!c || redisBufferRead(c) != REDIS_OK) {
        s_down(self, c ? c->errstr : zc_redis_errstr(self->sub));
        return;
    }
    //  An announcement may take the registry down (s_down frees c): check first.
    redisReply *reply;
    while (self->up && redisGetReplyFromReader(c, (void **)&reply) == REDIS_OK && reply) {
        s_announcement(self, reply);
        freeReplyObject(reply);
    }
}

//  --------------------------------------------------------------------------
//  Timers

static void s_elect(s_registry_t *self)
{
    zc_registry_config_t *c = &self->config;
    int was_leader = self->leader;
    uint64_t was_epoch = self->epoch;
    if (c->election && self->up) {
        char leader[KEY_MAX], epoch[KEY_MAX], ttl[16];
        s_key(self, leader, sizeof leader, "leader", NULL);
        s_key(self, epoch, sizeof epoch, "epoch", NULL);
        snprintf(ttl, sizeof ttl, "%d", c->lease_ttl_ms);
        char seen[24];
        snprintf(seen, sizeof seen, "%" PRIu64, self->epoch);
        const char *args[] = {leader, epoch, self->id, ttl, seen};
        redisReply *reply = s_script(self, SCRIPT_ELECT, 2, args, 5);
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
            reply->element[2]->type == REDIS_REPLY_STRING) {
            self->leader = reply->element[0]->integer == 1;
            //  The script never answers below seen; a reply that does (a
            //  Redis with another script) does not lower what this node saw.
            uint64_t answer = (uint64_t)reply->element[1]->integer;
            if (answer > self->epoch) self->epoch = answer;
            snprintf(self->leader_id, sizeof self->leader_id, "%s", reply->element[2]->str);
            if (self->leader) self->last_renew = zclock_mono();
        }
        if (reply) freeReplyObject(reply);
    }
    //  Fencing: a leader that could not renew for a whole TTL may already
    //  have been replaced, so it steps down on its own.
    if (self->leader && zclock_mono() - self->last_renew > c->lease_ttl_ms) self->leader = 0;
    //  A leader that took the lease anew (it had lapsed, or Redis lost it
    //  in a failover) holds it under a new epoch: its node must fence with
    //  that one, so it hears of it as of a promotion.
    if (self->leader != was_leader || (self->leader && self->epoch != was_epoch)) {
        char epoch[24];
        snprintf(epoch, sizeof epoch, "%" PRIu64, self->epoch);
        zstr_sendx(self->pipe, "LEADER", self->leader ? "1" : "0", epoch, NULL);
    }
}

static void s_tick(s_registry_t *self)
{
    zc_registry_config_t *c = &self->config;
    char node[KEY_MAX], lease[KEY_MAX], ttl[16];
    s_key(self, node, sizeof node, "node:", self->id);
    s_key(self, lease, sizeof lease, "lease:", self->id);
    snprintf(ttl, sizeof ttl, "%d", c->lease_ttl_ms);
    const char *args[] = {node, lease, c->inc, ttl};
    long long refreshed = self->up ? s_script_int(self, SCRIPT_REFRESH, 2, args, 4) : -1;
    if (refreshed == 0) {
        zc_log(ZC_LOG_WARNING, self->id, "registry record lost (lease expired?); re-registering");
        s_reincarnate(self);
    }
    if (self->up) {
        char nodes[KEY_MAX], leader[KEY_MAX];
        s_key(self, nodes, sizeof nodes, "nodes", NULL);
        s_key(self, leader, sizeof leader, "leader", NULL);
        const char *reap[] = {nodes, leader, self->config.identity.prefix, self->channel};
        s_script_int(self, SCRIPT_REAP, 2, reap, 4);
    }
    if (self->up) s_sync(self);
    s_elect(self);
}

//  --------------------------------------------------------------------------
//  Commands from the node

//  Removes node id (incarnation inc) from the registry, reported by this
//  node. Returns 1 if removed, 0 if refused, -1 if Redis is down.
static long long s_remove(s_registry_t *self, const char *id, const char *inc, const char *reason)
{
    char nodes[KEY_MAX], node[KEY_MAX], lease[KEY_MAX], leader[KEY_MAX], reporter[KEY_MAX];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, node, sizeof node, "node:", id);
    s_key(self, lease, sizeof lease, "lease:", id);
    s_key(self, leader, sizeof leader, "leader", NULL);
    s_key(self, reporter, sizeof reporter, "node:", self->id);
    const char *args[] = {nodes, node, lease,         leader, reporter,
                          id,    inc,  self->channel, reason, self->config.inc};
    return s_script_int(self, SCRIPT_REMOVE, 5, args, 10);
}

static void s_command(s_registry_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg) {
        self->terminated = 1;
        return;
    }
    char *command = zmsg_popstr(msg);
    zc_registry_config_t *c = &self->config;
    if (!command || strcmp(command, "$TERM") == 0)
        self->terminated = 1;
    else if (strcmp(command, "GROUPS") == 0) {
        char *groups = zmsg_popstr(msg);
        snprintf(c->groups, sizeof c->groups, "%s", groups ? groups : "");
        zstr_free(&groups);
        char node[KEY_MAX];
        s_key(self, node, sizeof node, "node:", self->id);
        const char *args[] = {node, c->inc, "groups", c->groups, self->channel, self->id};
        s_script_int(self, SCRIPT_UPDATE, 1, args, 6);
    } else if (strcmp(command, "DEAD") == 0) {
        char *id = zmsg_popstr(msg), *inc = zmsg_popstr(msg), *reason = zmsg_popstr(msg);
        if (id && inc && reason) {
            zhashx_delete(self->known, id);
            //  Peers remove a node that froze, and it re-registers anew when it
            //  wakes; the connection losses it sees on waking are its own doing.
            int suspect = zclock_mono() - self->reincarnated_at < 2 * c->lease_ttl_ms;
            if (!suspect && s_remove(self, id, inc, reason) == 1)
                s_elect(self); //  the dead node may have been the leader: contend at once
            else
                s_fetch(self, id); //  refused: if it is still registered, the node re-adds it
        }
        zstr_free(&id);
        zstr_free(&inc);
        zstr_free(&reason);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
}

//  The connection timeout: a third of the lease TTL, at least 200 ms, so a
//  hung Redis cannot hold the refresh past the lease.
static s_registry_t *s_registry_new(zsock_t *pipe, const zc_registry_config_t *config)
{
    pthread_once(&s_scripts_once, s_scripts_init);
    s_registry_t *self = (s_registry_t *)calloc(1, sizeof(s_registry_t));
    assert(self);
    self->pipe = pipe;
    self->config = *config;
    self->id = self->config.identity.node_id;
    zc_identity_key(&self->config.identity, self->channel, sizeof self->channel, "events");
    self->tick_ms = self->config.lease_ttl_ms / 3;
    int timeout = self->tick_ms > 200 ? self->tick_ms : 200;
    self->cmd = zc_redis_new(&self->config.identity.url, timeout);
    self->sub = zc_redis_new(&self->config.identity.url, timeout);
    zc_redis_set_backoff(self->cmd, 100, 5000);
    zc_redis_set_backoff(self->sub, 100, 5000);
    self->known = zhashx_new();
    zhashx_set_destructor(self->known, (zhashx_destructor_fn *)zstr_free);
    return self;
}

static void s_registry_destroy(s_registry_t **self_p)
{
    s_registry_t *self = *self_p;
    zc_redis_destroy(&self->cmd);
    zc_redis_destroy(&self->sub);
    zc_redis_args_free(&self->fetch[0]);
    zc_redis_args_free(&self->fetch[1]);
    zhashx_destroy(&self->known);
    free(self);
    *self_p = NULL;
}

void zc_registry_actor(zsock_t *pipe, void *args)
{
    s_registry_t *self = s_registry_new(pipe, (zc_registry_config_t *)args);
    zsock_signal(pipe, 0);
    s_connect(self);
    self->next_tick = zclock_mono() + self->tick_ms;
    while (!self->terminated) {
        int64_t now = zclock_mono();
        int64_t wake =
            self->up || self->next_tick < self->retry_at ? self->next_tick : self->retry_at;
        redisContext *sub = self->up ? zc_redis_context(self->sub) : NULL;
        zmq_pollitem_t items[2] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
                                   {NULL, sub ? sub->fd : -1, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, sub ? 2 : 1, wake > now ? wake - now : 0);
        if (rc < 0 && zmq_errno() != EINTR) break;
        if (items[0].revents & ZMQ_POLLIN) s_command(self);
        if (self->up && sub && (items[1].revents & ZMQ_POLLIN)) s_read_announcements(self);
        now = zclock_mono();
        if (!self->up && now >= self->retry_at && !self->terminated) {
            s_connect(self);
            self->next_tick = zclock_mono() + self->tick_ms;
        } else if (now >= self->next_tick) {
            s_tick(self); //  while Redis is down this only checks leader fencing
            self->next_tick = now + self->tick_ms;
        }
    }
    s_remove(self, self->id, self->config.inc, "left");
    s_registry_destroy(&self);
}
