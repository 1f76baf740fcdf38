/*  zc_registry — the background actor that keeps a node in the Redis registry.

    Why an actor: registry work is slow (Redis round trips, reconnect
    back-off, timers) and must never stall the data path, which lives on the
    application's thread in zc_mesh. The actor talks to the node over the
    CZMQ actor pipe (inproc), so the node sees membership as events it
    handles between messages.

    Keys (all under zc:{CLUSTER}:, so a cluster's keys share one Redis
    Cluster slot and the Lua scripts are legal there; zc_registry_scripts.c
    has the scripts and the keys only they use: leases, suspects:<id>,
    gone:<id>):

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
    never disagree and the announcement goes out with the change.

    Self-healing: every refresh (PRESENCE) puts back whatever of the node's
    own presence is missing or damaged (record, fields, set entry, lease,
    deadline) under the same incarnation, unless the cluster removed that
    incarnation (gone:<id>): then the node registers anew. A known peer
    missing from the set is given a lease TTL to put itself back before it
    is taken as gone, so a damaged set removes nobody.

    Removal needs more than one voice: a node that loses its connection to
    a peer votes (SUSPECT) and renews its vote every tick while the peer
    stays unreachable; more than half of the other members remove it. A
    killed process is voted out at once by all; one bad link removes
    nobody. A node whose lease lapsed is reaped by any node (the reap reads
    only the deadlines that are due, so it is O(expired), not O(n)).

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
#include "zc_registry_scripts.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

//  The scripts with their SHAs, shared by every node of the process.
static zc_script_t s_scripts[ZC_SCRIPT_COUNT];
static pthread_once_t s_scripts_once = PTHREAD_ONCE_INIT;

static void s_scripts_init(void)
{
    for (int i = 0; i < ZC_SCRIPT_COUNT; i++)
        zc_script_init(&s_scripts[i], zc_registry_script_sources[i]);
}

//  How long a removed incarnation is remembered (gone:<id>), as the node's
//  tombstones: a node that finds its own there comes back anew.
#define GONE_MS "60000"

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
    int registered; //  registered once: later registrations restore, never overwrite
    unsigned ticks;
    int64_t reap_at;      //  when the next lease is due (0: at the tick)
    long long suspicions; //  peers that said they cannot reach this node, at the last refresh
    zhashx_t *missing;    //  known peer id -> when it was first missing from the set (ms)
    zhashx_t *suspects;   //  peer id -> incarnation: peers this node cannot reach
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

static void s_free(void **item)
{
    free(*item);
    *item = NULL;
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

//  Registers (fresh: the record written whole) or refreshes and repairs
//  this node's presence: record, groups, lease, membership set entry.
//  Returns 1 present, 0 this incarnation is not ours to keep (peers
//  removed it): register anew; -1 Redis down or refused.
static int s_presence(s_registry_t *self, int fresh)
{
    zc_registry_config_t *c = &self->config;
    char nodes[KEY_MAX], node[KEY_MAX], lease[KEY_MAX], leases[KEY_MAX], gone[KEY_MAX],
        suspects[KEY_MAX], ttl[16], pid[16], started[24];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, node, sizeof node, "node:", self->id);
    s_key(self, lease, sizeof lease, "lease:", self->id);
    s_key(self, leases, sizeof leases, "leases", NULL);
    s_key(self, gone, sizeof gone, "gone:", self->id);
    s_key(self, suspects, sizeof suspects, "suspects:", self->id);
    snprintf(ttl, sizeof ttl, "%d", c->lease_ttl_ms);
    snprintf(pid, sizeof pid, "%d", c->pid);
    snprintf(started, sizeof started, "%" PRId64, c->started_ms);
    const char *args[] = {nodes,
                          node,
                          lease,
                          leases,
                          gone,
                          suspects,
                          self->id,
                          ttl,
                          self->channel,
                          c->inc,
                          fresh ? "1" : "0",
                          "id",
                          self->id,
                          "inc",
                          c->inc,
                          "host",
                          c->host,
                          "pid",
                          pid,
                          "pub",
                          c->pub,
                          "router",
                          c->router,
                          "curve",
                          c->curve,
                          "groups",
                          c->groups,
                          "headers",
                          c->headers,
                          "started",
                          started,
                          "version",
                          c->version,
                          "wire", //  the highest protocol version it reads: batch frames
                          "2"};
    redisReply *reply =
        s_script(self, ZC_SCRIPT_PRESENCE, 6, args, (int)(sizeof args / sizeof args[0]));
    int rc = -1;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        const char *what = reply->element[1]->str;
        rc = zc_redis_reply_int(reply->element[0], 0) == 1;
        if (rc == 0)
            zc_log(ZC_LOG_WARNING, self->id, "registry: this incarnation is gone (%s)", what);
        else if (*what)
            zc_log(ZC_LOG_WARNING, self->id, "registry: put back this node's %s", what);
        long long voices = reply->elements >= 3 ? zc_redis_reply_int(reply->element[2], 0) : 0;
        if (rc == 1 && voices != self->suspicions)
            zc_log(ZC_LOG_INFO, self->id,
                   "%lld peer(s) cannot reach this node; its lease, renewed, keeps it a member",
                   voices);
        if (rc == 1) self->suspicions = voices;
    }
    if (reply) freeReplyObject(reply);
    if (rc == 1) {
        self->last_renew = zclock_mono();
        self->registered = 1;
    }
    return rc;
}

//  Registers again under a new incarnation, after peers removed this node
//  (it went silent): they remember the old one as dead. Returns as
//  s_presence.
static int s_reincarnate(s_registry_t *self)
{
    zuuid_t *uuid = zuuid_new();
    snprintf(self->config.inc, sizeof self->config.inc, "%s", zuuid_str(uuid));
    zuuid_destroy(&uuid);
    zstr_sendx(self->pipe, "INC", self->config.inc, NULL);
    self->reincarnated_at = zclock_mono();
    return s_presence(self, 1);
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
    //  Back after an outage: the same incarnation, unless peers removed it.
    int present = s_presence(self, !self->registered);
    if (present == 0) present = s_reincarnate(self);
    if (present != 1) {
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
//  verb: REMOVE, the registry removed it (the node keeps a tombstone), or
//  DROP, it only went missing (it may come back as the same incarnation).
static void s_tell_remove(s_registry_t *self, const char *verb, const char *id,
                          const char *removed_inc, const char *reason)
{
    const char *inc = (const char *)zhashx_lookup(self->known, id);
    if (!inc || (removed_inc && strcmp(inc, removed_inc) != 0)) return;
    zstr_sendx(self->pipe, verb, id, inc, reason, NULL);
    zhashx_delete(self->known, id);
    zhashx_delete(self->missing, id);
    zhashx_delete(self->suspects, id);
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
    //  It announced itself with its lease alive: whatever absence from the
    //  set s_missing saw is over (two short gaps a sync apart are not one).
    if (live) zhashx_delete(self->missing, id);
    if (record && live)
        s_tell_add(self, record);
    else
        zc_log(ZC_LOG_DEBUG, self->id, "no usable record for node %s", id);
    json_decref(record);
    freeReplyObject(replies[0]);
    freeReplyObject(replies[1]);
}

//  Takes a known peer that stays missing from the set for a lease TTL as
//  gone (its leave announcement was missed). Not sooner: a live node puts
//  itself back within a refresh interval when the set was damaged, and a
//  Redis that restarted empty fills up again as every node re-registers.
static void s_missing(s_registry_t *self, zhashx_t *present)
{
    int64_t now = zclock_mono();
    zlist_t *gone = zlist_new();
    zlist_autofree(gone);
    for (void *inc = zhashx_first(self->known); inc; inc = zhashx_next(self->known)) {
        const char *id = (const char *)zhashx_cursor(self->known);
        int64_t *since = (int64_t *)zhashx_lookup(self->missing, id);
        if (zhashx_lookup(present, id))
            zhashx_delete(self->missing, id);
        else if (!since) {
            since = (int64_t *)malloc(sizeof *since);
            assert(since);
            *since = now;
            zhashx_insert(self->missing, id, since);
        } else if (now - *since > self->config.lease_ttl_ms && now >= self->grace_until)
            zlist_append(gone, (void *)id);
    }
    for (char *id = (char *)zlist_first(gone); id; id = (char *)zlist_next(gone)) {
        s_tell_remove(self, "DROP", id, NULL, "expired");
    }
    zlist_destroy(&gone);
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
        //  Damaged: the next refresh of any node replaces it (and says so).
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
    s_missing(self, present);
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
    if (a.verb == ZC_ANNOUNCE_LEAVE) {
        s_tell_remove(self, "REMOVE", a.id, a.inc, a.reason);
        //  The leader is gone (its lease went with it): contend at once.
        if (strcmp(a.id, self->leader_id) == 0) s_elect(self);
    } else
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

//  Runs ELECT; returns its reply (caller frees) or NULL. A leader or epoch
//  key ELECT cannot read (another type, an epoch that is not a counter) is
//  replaced once and ELECT tried again, so damage costs one logged error.
static redisReply *s_elect_script(s_registry_t *self)
{
    char leader[KEY_MAX], epoch[KEY_MAX], ttl[16], seen[24];
    s_key(self, leader, sizeof leader, "leader", NULL);
    s_key(self, epoch, sizeof epoch, "epoch", NULL);
    snprintf(ttl, sizeof ttl, "%d", self->config.lease_ttl_ms);
    snprintf(seen, sizeof seen, "%" PRIu64, self->epoch);
    const char *args[] = {leader, epoch, self->id, ttl, seen};
    redisReply *reply = s_script(self, ZC_SCRIPT_ELECT, 2, args, 5);
    if (reply || !self->up) return reply; //  answered, or Redis is down
    const char *heal[] = {leader, epoch, seen};
    reply = s_script(self, ZC_SCRIPT_LEADER_HEAL, 2, heal, 3);
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len)
        zc_log(ZC_LOG_WARNING, self->id, "registry: replaced the damaged %s key(s)", reply->str);
    if (reply) freeReplyObject(reply);
    return s_script(self, ZC_SCRIPT_ELECT, 2, args, 5);
}

static void s_elect(s_registry_t *self)
{
    zc_registry_config_t *c = &self->config;
    int was_leader = self->leader;
    uint64_t was_epoch = self->epoch;
    if (c->election && self->up) {
        redisReply *reply = s_elect_script(self);
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

//  Past a deadline, so that the lease key has expired in Redis too.
#define REAP_SLACK_MS 5

//  Removes the nodes whose lease expired: the deadlines that are due, and
//  for the leader also members with no deadline at all.
static void s_reap(s_registry_t *self)
{
    char nodes[KEY_MAX], leases[KEY_MAX], leader[KEY_MAX];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, leases, sizeof leases, "leases", NULL);
    s_key(self, leader, sizeof leader, "leader", NULL);
    const char *args[] = {
        nodes, leases, leader, self->config.identity.prefix, GONE_MS, self->leader ? "1" : "0"};
    redisReply *reply = s_script(self, ZC_SCRIPT_REAP, 3, args, 6);
    self->reap_at = 0;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        if (reply->element[1]->type == REDIS_REPLY_STRING && reply->element[1]->len)
            zc_log(ZC_LOG_WARNING, self->id, "registry: %s; replaced", reply->element[1]->str);
        //  Reap again just after the next lease is due: a silent node goes at
        //  its lease TTL, not up to TTL/3 later, and while every lease is
        //  renewed in time a node reaps about once a TTL, not every tick.
        long long next = zc_redis_reply_int(reply->element[2], -1);
        if (next >= 0) self->reap_at = zclock_mono() + next + REAP_SLACK_MS;
    }
    if (reply) freeReplyObject(reply);
}

//  Says (again) that this node cannot reach peer id, incarnation inc: one
//  vote for its removal, which takes more than half of the other members.
//  Votes lapse after a lease TTL, so they are renewed every tick while the
//  peer stays unreachable. Returns the script's answer (SUSPECT), or -1.
static long long s_suspect(s_registry_t *self, const char *id, const char *inc)
{
    char nodes[KEY_MAX], leases[KEY_MAX], node[KEY_MAX], suspects[KEY_MAX], reporter[KEY_MAX],
        leader[KEY_MAX], window[16];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, leases, sizeof leases, "leases", NULL);
    s_key(self, node, sizeof node, "node:", id);
    s_key(self, suspects, sizeof suspects, "suspects:", id);
    s_key(self, reporter, sizeof reporter, "node:", self->id);
    s_key(self, leader, sizeof leader, "leader", NULL);
    snprintf(window, sizeof window, "%d", self->config.lease_ttl_ms);
    const char *args[] = {
        nodes,   leases, node, suspects, reporter,         leader, self->config.identity.prefix,
        GONE_MS, id,     inc,  self->id, self->config.inc, window};
    return s_script_int(self, ZC_SCRIPT_SUSPECT, 6, args, 13);
}

//  Renews this node's votes against the peers it cannot reach.
static void s_suspect_all(s_registry_t *self)
{
    zlistx_t *ids = zhashx_keys(self->suspects);
    for (char *id = (char *)zlistx_first(ids); id && self->up; id = (char *)zlistx_next(ids)) {
        const char *inc = (const char *)zhashx_lookup(self->suspects, id);
        if (s_suspect(self, id, inc) == 0) zhashx_delete(self->suspects, id); //  gone already
    }
    zlistx_destroy(&ids);
}

static void s_tick(s_registry_t *self)
{
    if (self->up && s_presence(self, 0) == 0) s_reincarnate(self);
    //  The leader's reap also sweeps members without a deadline, each tick.
    if (self->up && (self->leader || !self->reap_at)) s_reap(self);
    if (self->up) s_suspect_all(self);
    //  Announcements carry every change; the full read only catches those
    //  missed, so once a TTL is enough (it reads n ids: O(n) per node).
    if (self->up && ++self->ticks % 3 == 0) s_sync(self);
    //  The leader renews every tick; the others contend at once when the
    //  leader is removed (its leave announcement), else once a TTL, for a
    //  lease that lapsed without a removal.
    if (self->leader || self->ticks % 3 == 1 || !*self->leader_id) s_elect(self);
}

//  --------------------------------------------------------------------------
//  Commands from the node

//  Removes this node from the registry as it leaves. Returns 1 if removed,
//  0 if its record was not this incarnation's, -1 if Redis is down.
static long long s_leave(s_registry_t *self)
{
    char nodes[KEY_MAX], leases[KEY_MAX], node[KEY_MAX], lease[KEY_MAX], leader[KEY_MAX];
    s_key(self, nodes, sizeof nodes, "nodes", NULL);
    s_key(self, leases, sizeof leases, "leases", NULL);
    s_key(self, node, sizeof node, "node:", self->id);
    s_key(self, lease, sizeof lease, "lease:", self->id);
    s_key(self, leader, sizeof leader, "leader", NULL);
    const char *args[] = {
        nodes,    leases,           node,  lease, leader, self->config.identity.prefix, GONE_MS,
        self->id, self->config.inc, "left"};
    return s_script_int(self, ZC_SCRIPT_REMOVE, 5, args, 10);
}

//  SUSPECT <id> <inc>: this node lost its connection to the peer.
static void s_command_suspect(s_registry_t *self, zmsg_t *msg)
{
    char *id = zmsg_popstr(msg), *inc = zmsg_popstr(msg);
    //  Peers remove a node that froze, and it re-registers anew when it
    //  wakes; the connection losses it sees on waking are its own doing.
    int own_doing = zclock_mono() - self->reincarnated_at < 2 * self->config.lease_ttl_ms;
    if (id && inc && !own_doing && zc_wire_name_valid(id)) {
        zhashx_update(self->suspects, id, strdup(inc));
        if (s_suspect(self, id, inc) == 2)
            s_elect(self); //  it may have been the leader: contend at once
    }
    zstr_free(&id);
    zstr_free(&inc);
}

//  TRUST <id>: the connection to the peer is up again: withdraw the vote.
static void s_command_trust(s_registry_t *self, zmsg_t *msg)
{
    char *id = zmsg_popstr(msg);
    if (id && zhashx_lookup(self->suspects, id)) {
        zhashx_delete(self->suspects, id);
        char suspects[KEY_MAX];
        s_key(self, suspects, sizeof suspects, "suspects:", id);
        redisReply *reply =
            self->up ? zc_redis_command(self->cmd, "ZREM %s %s", suspects, self->id) : NULL;
        if (reply) freeReplyObject(reply); //  a wrong type: the owner's refresh replaces it
    }
    zstr_free(&id);
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
        s_script_int(self, ZC_SCRIPT_UPDATE, 1, args, 6);
    } else if (strcmp(command, "SUSPECT") == 0)
        s_command_suspect(self, msg);
    else if (strcmp(command, "TRUST") == 0)
        s_command_trust(self, msg);
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
    self->suspects = zhashx_new();
    zhashx_set_destructor(self->suspects, (zhashx_destructor_fn *)zstr_free);
    self->missing = zhashx_new();
    zhashx_set_destructor(self->missing, (zhashx_destructor_fn *)s_free);
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
    zhashx_destroy(&self->suspects);
    zhashx_destroy(&self->missing);
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
        if (self->up && self->reap_at && self->reap_at < wake) wake = self->reap_at;
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
        } else if (self->up && self->reap_at && now >= self->reap_at)
            s_reap(self);
    }
    s_leave(self);
    s_registry_destroy(&self);
}
