/*  zc_node — a cluster node: a mesh plus its place in the Redis registry.

    The node's thread owns the mesh; the registry actor (zc_registry.c) owns
    the Redis connections. Membership flows actor -> node as ADD / REMOVE
    events, which the node applies to the mesh between messages. Failure
    signs the node sees itself flow the other way: when the mesh reports a
    peer's connection dropped, the node marks the peer unreachable from here
    (whisper and RPC to it fail at once) and the actor casts a vote in
    Redis; the peer is removed for everyone when more than half of the other
    members voted (a killed process: within a second or so), when its lease
    expires (a frozen or cut-off host), or when it leaves. One node's bad
    link removes nobody (docs/REGISTRY.md).

    A removed incarnation is remembered for a while (a tombstone), so a
    registry read that raced with the removal cannot bring a dead peer back;
    a restarted node has a new incarnation and is added normally.

    A graceful leave is announced twice: a "zc.leave" public message, which
    travels ahead of the socket close on the same connection so peers never
    mistake a leave for a crash, and the registry's leave announcement.

    The reserved control messages (kill, confirmations, the reachability
    probe) are in zc_node_control.c; the state both share is in
    zc_node_internal.h.

    Extensions (zc_node_hook.h; RPC is one) attach to the node rather than
    the node knowing them: it hands them the message kinds they claim, tells
    them of removed peers, polls their socket and ticks their timers.
*/
#include "zc_node.h"
#include "zc_actor.h"
#include "zc_log.h"
#include "zc_failure.h"
#include "zc_node_hook.h"
#include "zc_node_internal.h"
#include "zc_registry.h"
#include "zc_version.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOMBSTONE_MS   60000
#define MISMATCHED_MAX 1024 //  peers with other credentials remembered for log-once

zc_error_t zc_node_error(zc_node_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_node_errstr(zc_node_t *self)
{
    assert(self);
    return self->failure.text;
}

static void s_peer_info_destroy(void **item)
{
    node_peer_t *info = (node_peer_t *)*item;
    if (info) {
        json_decref(info->record);
        free(info);
        *item = NULL;
    }
}

static void s_set_destroy(void **item)
{
    zhashx_destroy((zhashx_t **)item);
}

//  Reads a setting in ms from the environment; an invalid value is logged
//  and the default kept. Returns 0 if set, -1 if absent or invalid.
static int s_env_ms(const char *name, int min, int *out)
{
    const char *text = getenv(name);
    if (!text || !*text) return -1;
    char *end;
    long value = strtol(text, &end, 10);
    if (*end || value < min || value > 3600000) {
        zc_log(ZC_LOG_WARNING, NULL, "ignored %s='%.40s': not %d..3600000 ms", name, text, min);
        return -1;
    }
    *out = (int)value;
    return 0;
}

//  The settings a supervisor passes to its workers (zcluster start), or a
//  deployment sets for every node: lease TTL, heartbeats, bind and
//  advertised address, batching. The setters override them.
static void s_settings_from_env(zc_node_t *self)
{
    s_env_ms("ZC_LEASE_TTL", 300, &self->config.lease_ttl_ms);
    s_env_ms("ZC_HEARTBEAT_INTERVAL", 10, &self->heartbeat_ivl);
    s_env_ms("ZC_HEARTBEAT_TIMEOUT", 10, &self->heartbeat_timeout);
    const char *bind = getenv("ZC_BIND"), *advertise = getenv("ZC_ADVERTISE");
    if (bind && *bind) zc_node_set_bind(self, bind);
    if (advertise && *advertise) zc_mesh_set_advertise_host(self->mesh, advertise);
    const char *batch = getenv("ZC_BATCH");
    if (batch && strcmp(batch, "1") == 0) zc_mesh_set_batch(self->mesh, 1);
}

zc_node_t *zc_node_new(const char *id)
{
    const char *given = getenv("ZC_NODE_ID"); //  set by the supervisor for its workers
    zc_mesh_t *mesh = zc_mesh_new(id ? id : given && *given ? given : NULL);
    if (!mesh) return NULL;
    zc_node_t *self = (zc_node_t *)calloc(1, sizeof(zc_node_t));
    assert(self);
    self->mesh = mesh;
    zc_node_set_cluster(self, NULL);
    self->config.lease_ttl_ms = ZC_NODE_LEASE_TTL_DEFAULT;
    self->heartbeat_ivl = ZC_NODE_HEARTBEAT_IVL_DEFAULT;
    self->heartbeat_timeout = ZC_NODE_HEARTBEAT_TIMEOUT_DEFAULT;
    self->config.election = 1;
    s_settings_from_env(self);
    self->headers = json_object();
    self->groups = zhashx_new();
    self->peers = zhashx_new();
    zhashx_set_destructor(self->peers, s_peer_info_destroy);
    self->tombstones = zhashx_new();
    self->mismatched = zhashx_new();
    self->confirmations = zhashx_new();
    zhashx_set_destructor(self->confirmations, s_set_destroy);
    self->backlog = zlist_new();
    return self;
}

void zc_node_destroy(zc_node_t **self_p)
{
    assert(self_p);
    zc_node_t *self = *self_p;
    if (!self) return;
    if (self->started) zc_mesh_publish(self->mesh, "zc.leave", "", 0);
    void *ext = self->ext; //  an extension still attached lets go of the node now
    self->ext = NULL;
    if (ext && self->hook.closed) self->hook.closed(ext);
    zc_actor_destroy(&self->registry); //  deregisters and announces the leave
    zc_mesh_destroy(&self->mesh);
    zc_security_destroy(&self->owned_security);
    zhashx_destroy(&self->mismatched);
    json_decref(self->headers);
    zhashx_destroy(&self->groups);
    zhashx_destroy(&self->peers);
    zhashx_destroy(&self->tombstones);
    zhashx_destroy(&self->confirmations);
    for (zc_msg_t *msg = (zc_msg_t *)zlist_pop(self->backlog); msg;
         msg = (zc_msg_t *)zlist_pop(self->backlog))
        zc_msg_destroy(&msg);
    zlist_destroy(&self->backlog);
    zc_msg_destroy(&self->current);
    free(self);
    *self_p = NULL;
}

void zc_node_set_redis(zc_node_t *self, const char *url)
{
    assert(self && !self->started);
    snprintf(self->redis_url, sizeof self->redis_url, "%s", url ? url : "");
}

void zc_node_set_cluster(zc_node_t *self, const char *cluster)
{
    assert(self && !self->started);
    if (!cluster) {
        cluster = getenv("ZC_CLUSTER");
        if (!cluster || !*cluster) cluster = ZC_CLUSTER_DEFAULT;
    }
    snprintf(self->cluster, sizeof self->cluster, "%s", cluster);
}

int zc_node_set_header(zc_node_t *self, const char *key, const char *value)
{
    assert(self && !self->started);
    if (!key || !*key)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "a header needs a key");
    json_object_set_new(self->headers, key, json_string(value ? value : ""));
    return zc_failure_clear(&self->failure);
}

void zc_node_set_lease_ttl(zc_node_t *self, int ttl_ms)
{
    assert(self && !self->started);
    self->config.lease_ttl_ms = ttl_ms < 300 ? 300 : ttl_ms;
}

void zc_node_set_heartbeat(zc_node_t *self, int interval_ms, int timeout_ms)
{
    assert(self && !self->started);
    self->heartbeat_ivl = interval_ms < 10 ? 10 : interval_ms;
    self->heartbeat_timeout = timeout_ms < self->heartbeat_ivl ? self->heartbeat_ivl : timeout_ms;
}

int zc_node_set_bind(zc_node_t *self, const char *host)
{
    assert(self && !self->started);
    char endpoint[300];
    if (!host || !*host || strlen(host) > 253 || strpbrk(host, "/ \t"))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid bind address '%.100s'",
                              host ? host : "");
    //  An IPv6 address goes in brackets: tcp://[::1]:*
    snprintf(endpoint, sizeof endpoint, strchr(host, ':') ? "tcp://[%s]:*" : "tcp://%s:*",
             strcmp(host, "0.0.0.0") == 0 ? "*" : host);
    zc_mesh_set_endpoints(self->mesh, endpoint, endpoint);
    return zc_failure_clear(&self->failure);
}

void zc_node_set_election(zc_node_t *self, int enabled)
{
    assert(self && !self->started);
    self->config.election = enabled;
}

void zc_node_set_security(zc_node_t *self, zc_security_t *security)
{
    assert(self && !self->started);
    self->security = security;
    zc_mesh_set_security(self->mesh, security);
}

void zc_node_set_events(zc_node_t *self, const zc_node_events_t *events, void *arg)
{
    assert(self);
    if (events)
        self->events = *events;
    else
        memset(&self->events, 0, sizeof self->events);
    self->events_arg = arg;
}

void zc_node_on_reach(zc_node_t *self, zc_node_reach_fn *fn, void *arg)
{
    assert(self);
    self->reach_fn = fn;
    self->reach_arg = arg;
}

void zc_node_on_kill(zc_node_t *self, zc_node_kill_fn *fn, void *arg)
{
    assert(self);
    self->kill_fn = fn;
    self->kill_arg = arg;
}

zc_mesh_t *zc_node_mesh(zc_node_t *self)
{
    assert(self);
    return self->mesh;
}

const char *zc_node_id(zc_node_t *self)
{
    assert(self);
    return zc_mesh_id(self->mesh);
}

const char *zc_node_cluster(zc_node_t *self)
{
    assert(self);
    return self->cluster;
}

//  --------------------------------------------------------------------------
//  Membership

static void s_tombstone(zc_node_t *self, const char *inc)
{
    int64_t now = zclock_mono();
    //  Purge old tombstones while here; there are few.
    zlist_t *old = zlist_new();
    for (void *t = zhashx_first(self->tombstones); t; t = zhashx_next(self->tombstones))
        if ((int64_t)(intptr_t)t < now) zlist_append(old, (void *)zhashx_cursor(self->tombstones));
    for (char *key = (char *)zlist_first(old); key; key = (char *)zlist_next(old))
        zhashx_delete(self->tombstones, key);
    zlist_destroy(&old);
    zhashx_update(self->tombstones, inc, (void *)(intptr_t)(now + TOMBSTONE_MS));
}

//  Removes a peer if the incarnation matches (NULL inc: any). A removal the
//  registry confirmed leaves a tombstone; one this node only suspects does
//  not, so the registry can give the peer back if it is alive after all.
//  Returns 1 if removed.
static int s_remove_peer(zc_node_t *self, const char *id, const char *inc, zc_removed_t reason,
                         int tombstone)
{
    node_peer_t *info = (node_peer_t *)zhashx_lookup(self->peers, id);
    if (!info || (inc && strcmp(info->inc, inc) != 0)) return 0;
    char peer_id[ZC_NAME_MAX + 1];
    snprintf(peer_id, sizeof peer_id, "%s", id);
    if (tombstone) s_tombstone(self, info->inc);
    zhashx_delete(self->peers, peer_id);
    zc_mesh_peer_remove(self->mesh, peer_id);
    static const char *reasons[] = {"", "left", "expired", "crashed"};
    zc_log(ZC_LOG_INFO, zc_node_id(self), "peer %s removed (%s)", peer_id, reasons[reason]);
    uint64_t *counts[] = {NULL, &self->stats.removed_left, &self->stats.removed_expired,
                          &self->stats.removed_crashed};
    (*counts[reason])++;
    if (self->ext && self->hook.peer_removed) self->hook.peer_removed(self->ext, peer_id);
    if (self->events.peer_removed)
        self->events.peer_removed(self, peer_id, reason, self->events_arg);
    return 1;
}

//  Returns 1 if a peer advertising this CURVE key ("" for none) holds our
//  credentials; else logs it once per peer and returns 0. A mismatched
//  peer could never complete a handshake: adding it would only make it
//  retry, and it must never count as lost (which removes a record).
static int s_credentials_match(zc_node_t *self, const char *id, const char *curve)
{
    if (zc_security_matches(self->security, curve)) return 1;
    if (zhashx_lookup(self->mismatched, id) || zhashx_size(self->mismatched) >= MISMATCHED_MAX)
        return 0;
    zhashx_insert(self->mismatched, id, (void *)1);
    const char *why = !zc_security_curve(self->security) ? "it uses CURVE and this node has no keys"
                      : *curve                           ? "its CURVE key is not this cluster's key"
                                                         : "it has no CURVE key (plaintext)";
    zc_log(ZC_LOG_WARNING, zc_node_id(self), "peer %s not added: %s (said once)", id, why);
    return 0;
}

//  Returns 1 if a record with these endpoints is the process we know: the
//  same endpoints, and the connection to it never dropped meanwhile (a
//  restarted process drops it, even when it binds the same ports again).
static int s_same_process(node_peer_t *info, const char *pub, const char *router)
{
    const char *known_pub = json_string_value(json_object_get(info->record, "pub"));
    const char *known_router = json_string_value(json_object_get(info->record, "router"));
    return !info->unreachable && known_pub && known_router && strcmp(known_pub, pub) == 0 &&
           strcmp(known_router, router) == 0;
}

//  Tells the mesh which protocol version a peer reads, from its record's
//  wire field (docs/REGISTRY.md): batch frames go only to those that read
//  them. A record without one reads version 1.
static void s_peer_wire(zc_node_t *self, const char *id, const json_t *record)
{
    const char *wire = json_string_value(json_object_get(record, "wire"));
    long version = wire ? strtol(wire, NULL, 10) : 1;
    zc_mesh_peer_set_wire(self->mesh, id, version >= 1 && version <= 255 ? (int)version : 1);
}

static void s_add_peer(zc_node_t *self, const char *id, const char *inc, const char *pub,
                       const char *router, const char *curve, const char *record_text)
{
    if (zhashx_lookup(self->tombstones, inc))
        return; //  a removal already seen for this incarnation
    if (!s_credentials_match(self, id, curve)) return;
    node_peer_t *info = (node_peer_t *)zhashx_lookup(self->peers, id);
    json_t *record = json_loads(record_text, 0, NULL);
    if (info && (strcmp(info->inc, inc) == 0 || s_same_process(info, pub, router))) {
        //  A record update (groups), or the same process registered anew
        //  (its record was lost from Redis) while its connection held.
        snprintf(info->inc, sizeof info->inc, "%s", inc);
        json_decref(info->record);
        info->record = record;
        s_peer_wire(self, id, record);
        return;
    }
    if (info) s_remove_peer(self, id, NULL, ZC_REMOVED_CRASHED, 1); //  it restarted
    if (zc_mesh_peer_add(self->mesh, id, pub, router, *curve ? curve : NULL) != 0) {
        zc_log(ZC_LOG_WARNING, zc_node_id(self), "cannot add peer %s (%s, %s)", id, pub, router);
        json_decref(record);
        return;
    }
    info = (node_peer_t *)calloc(1, sizeof(node_peer_t));
    assert(info);
    snprintf(info->inc, sizeof info->inc, "%s", inc);
    info->record = record;
    zhashx_insert(self->peers, id, info);
    s_peer_wire(self, id, record);
    zc_log(ZC_LOG_INFO, zc_node_id(self), "peer %s added", id);
    self->stats.peers_added++;
    if (self->events.peer_added) self->events.peer_added(self, id, self->events_arg);
}

static zc_removed_t s_reason(const char *reason)
{
    return strcmp(reason, "left") == 0      ? ZC_REMOVED_LEFT
           : strcmp(reason, "expired") == 0 ? ZC_REMOVED_EXPIRED
                                            : ZC_REMOVED_CRASHED;
}

//  Sends a command (and one or two arguments) to the registry actor.
//  Sending runs the pipe's pending commands, which may take the signal of
//  its descriptor: the pipe is read again before the node waits on that.
static void s_tell_registry(zc_node_t *self, const char *command, const char *arg1,
                            const char *arg2)
{
    zstr_sendx(zc_actor_sock(self->registry), command, arg1, arg2, NULL);
    self->registry_drained = 0;
}

//  Applies one event from the registry actor.
static void s_registry_event(zc_node_t *self)
{
    zmsg_t *msg = zmsg_recv(zc_actor_sock(self->registry));
    if (!msg) return;
    char *frames[7] = {0};
    size_t n = zmsg_size(msg);
    for (size_t i = 0; i < n && i < 7; i++)
        frames[i] = zmsg_popstr(msg);
    const char *event = frames[0] ? frames[0] : "";
    if (strcmp(event, "ADD") == 0 && n == 7)
        s_add_peer(self, frames[1], frames[2], frames[3], frames[4], frames[5], frames[6]);
    else if (strcmp(event, "REMOVE") == 0 && n == 4)
        s_remove_peer(self, frames[1], frames[2], s_reason(frames[3]), 1);
    else if (strcmp(event, "DROP") == 0 && n == 4)
        s_remove_peer(self, frames[1], frames[2], s_reason(frames[3]), 0);
    else if (strcmp(event, "LEADER") == 0 && n == 3) {
        self->leader = strcmp(frames[1], "1") == 0;
        self->stats.leader_changes++;
        self->epoch = strtoull(frames[2], NULL, 10);
        zc_log(ZC_LOG_INFO, zc_node_id(self), "%s (epoch %" PRIu64 ")",
               self->leader ? "promoted to leader" : "demoted", self->epoch);
        if (self->leader && self->events.promoted)
            self->events.promoted(self, self->epoch, self->events_arg);
        else if (!self->leader && self->events.demoted)
            self->events.demoted(self, self->epoch, self->events_arg);
    } else if (strcmp(event, "REDIS") == 0 && n == 2)
        self->redis_up = strcmp(frames[1], "up") == 0;
    else if (strcmp(event, "INC") == 0 && n == 2)
        snprintf(self->config.inc, sizeof self->config.inc, "%s", frames[1]);
    for (int i = 0; i < 7; i++)
        zstr_free(&frames[i]);
    zmsg_destroy(&msg);
}

//  The connection to a peer dropped: it died, froze, or only the path
//  between the two is broken. One node cannot tell which, so it does not
//  remove the peer: it marks it unreachable from here and votes for its
//  removal in the registry, which removes it once more than half of the
//  other members cannot reach it either (a killed process: at once, as
//  every peer sees its connection close).
static void s_on_peer_lost(zc_mesh_t *mesh, const char *peer_id, void *arg)
{
    zc_node_t *self = (zc_node_t *)arg;
    node_peer_t *info = (node_peer_t *)zhashx_lookup(self->peers, peer_id);
    if (!info || info->unreachable) return;
    info->unreachable = 1;
    self->unreachable_events++;
    zc_log(ZC_LOG_INFO, zc_node_id(self), "peer %s unreachable from here", peer_id);
    s_tell_registry(self, "SUSPECT", peer_id, info->inc);
    if (self->ext && self->hook.peer_unreachable) self->hook.peer_unreachable(self->ext, peer_id);
    if (self->reach_fn) self->reach_fn(self, peer_id, 1, self->reach_arg);
}

//  The connection to a peer is up again: withdraw the vote.
static void s_on_peer_back(zc_mesh_t *mesh, const char *peer_id, void *arg)
{
    zc_node_t *self = (zc_node_t *)arg;
    node_peer_t *info = (node_peer_t *)zhashx_lookup(self->peers, peer_id);
    if (!info || !info->unreachable) return;
    info->unreachable = 0;
    zc_log(ZC_LOG_INFO, zc_node_id(self), "peer %s reachable again", peer_id);
    s_tell_registry(self, "TRUST", peer_id, NULL);
    if (self->reach_fn) self->reach_fn(self, peer_id, 0, self->reach_arg);
}

//  --------------------------------------------------------------------------
//  Reserved message types

static void s_on_leave(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    s_remove_peer((zc_node_t *)arg, zc_msg_sender(msg), NULL, ZC_REMOVED_LEFT, 1);
}

//  --------------------------------------------------------------------------
//  Start

static void s_groups_text(zc_node_t *self, char *out, size_t cap)
{
    out[0] = 0;
    size_t used = 0;
    for (void *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups)) {
        const char *name = (const char *)zhashx_cursor(self->groups);
        int n = snprintf(out + used, cap - used, "%s%s", used ? " " : "", name);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
}

//  Fills what the registry publishes in the node's record.
static void s_record_config(zc_node_t *self)
{
    zc_registry_config_t *c = &self->config;
    zuuid_t *uuid = zuuid_new();
    snprintf(c->inc, sizeof c->inc, "%s", zuuid_str(uuid));
    zuuid_destroy(&uuid);
    gethostname(c->host, sizeof c->host - 1);
    c->pid = (int)getpid();
    c->started_ms = zclock_time();
    snprintf(c->pub, sizeof c->pub, "%s", zc_mesh_pub_endpoint(self->mesh));
    snprintf(c->router, sizeof c->router, "%s", zc_mesh_router_endpoint(self->mesh));
    snprintf(c->curve, sizeof c->curve, "%s",
             self->security ? zc_security_public_key(self->security) : "");
    s_groups_text(self, c->groups, sizeof c->groups);
    char *headers = json_dumps(self->headers, JSON_COMPACT);
    snprintf(c->headers, sizeof c->headers, "%s", headers);
    free(headers);
    snprintf(c->version, sizeof c->version, "%s", zcluster_version());
}

int zc_node_start(zc_node_t *self)
{
    assert(self && !self->started);
    char err[512];
    if (zc_identity_init(&self->config.identity, *self->redis_url ? self->redis_url : NULL,
                         self->cluster, zc_node_id(self), err, sizeof err)) {
        zc_log(ZC_LOG_ERROR, zc_node_id(self), "%s", err);
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "%s", err);
    }
    if (!self->security) {
        //  The default, as the mesh's, but loaded here to keep the reason.
        self->owned_security = zc_security_new();
        if (zc_security_load(self->owned_security, NULL)) {
            zc_log(ZC_LOG_ERROR, zc_node_id(self), "%s", zc_security_errstr(self->owned_security));
            return zc_failure_set(&self->failure, ZC_ERR_INVALID, "%s",
                                  zc_security_errstr(self->owned_security));
        }
        zc_node_set_security(self, self->owned_security);
    }
    //  Heartbeats make a silent peer's connection drop within the timeout.
    zc_mesh_set_heartbeat(self->mesh, self->heartbeat_ivl, self->heartbeat_timeout);
    if (zc_mesh_start(self->mesh))
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot bind the node's sockets: %s",
                              strerror(errno));
    for (void *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups))
        zc_mesh_join(self->mesh, (const char *)zhashx_cursor(self->groups));
    zc_mesh_on_peer_lost(self->mesh, s_on_peer_lost, self);
    zc_mesh_on_peer_back(self->mesh, s_on_peer_back, self);
    zc_mesh_on(self->mesh, "zc.leave", s_on_leave, self);
    node_control_attach(self);
    s_record_config(self);
    self->registry = zc_actor_new(zc_registry_actor, &self->config);
    if (!self->registry)
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot start the registry thread");
    self->started = 1;
    return zc_failure_clear(&self->failure);
}

//  --------------------------------------------------------------------------
//  Groups and sending

static void s_groups_changed(zc_node_t *self)
{
    if (!self->started) return;
    char groups[sizeof self->config.groups];
    s_groups_text(self, groups, sizeof groups);
    s_tell_registry(self, "GROUPS", groups, NULL);
}

int zc_node_join(zc_node_t *self, const char *group)
{
    assert(self);
    if (!zc_wire_name_valid(group))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid group name '%.100s'",
                              group ? group : "");
    if (zhashx_lookup(self->groups, group)) return zc_failure_clear(&self->failure);
    zhashx_insert(self->groups, group, (void *)1);
    if (self->started && zc_mesh_join(self->mesh, group))
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot subscribe to group '%s': %s",
                              group, strerror(errno));
    s_groups_changed(self);
    return zc_failure_clear(&self->failure);
}

int zc_node_leave(zc_node_t *self, const char *group)
{
    assert(self);
    if (!group || !zhashx_lookup(self->groups, group))
        return zc_failure_set(&self->failure, ZC_ERR_MISSING, "not a member of group '%.100s'",
                              group ? group : "");
    zhashx_delete(self->groups, group);
    if (self->started) zc_mesh_leave(self->mesh, group);
    s_groups_changed(self);
    return zc_failure_clear(&self->failure);
}

int zc_node_publish(zc_node_t *self, const char *type, const void *data, size_t size)
{
    assert(self);
    return zc_mesh_publish(self->mesh, type, data, size);
}

int zc_node_shout(zc_node_t *self, const char *group, const char *type, const void *data,
                  size_t size)
{
    assert(self);
    return zc_mesh_shout(self->mesh, group, type, data, size);
}

int zc_node_whisper(zc_node_t *self, const char *peer, const char *type, const void *data,
                    size_t size)
{
    assert(self);
    if (!zc_node_peer_reachable(self, peer) && zc_node_peer_exists(self, peer)) {
        errno = ENOTCONN; //  at once, rather than queued for a peer that cannot be reached
        return -1;
    }
    return zc_mesh_whisper(self->mesh, peer, type, data, size);
}

//  --------------------------------------------------------------------------
//  Receiving

//  Leaves the cluster and exits, as a peer asked (default kill action).
static void s_exit(zc_node_t *self)
{
    int code = self->kill_code;
    zc_node_destroy(&self);
    exit(code);
}

//  Fills items with what the node waits on: the registry actor's pipe
//  first, then the mesh's items and the extension's. For the node's own
//  wait the pipe, once read empty, is its descriptor (libzmq signals it
//  when the pipe has news). An outside poller gets the socket, whose
//  events it asks for; that may take the signal, so the pipe is no longer
//  counted read empty.
static int s_pollitems(zc_node_t *self, zmq_pollitem_t *items, int own, int *mesh_items)
{
    if (own && self->registry_drained)
        items[0] =
            (zmq_pollitem_t){.fd = zsock_fd(zc_actor_sock(self->registry)), .events = ZMQ_POLLIN};
    else {
        items[0] = (zmq_pollitem_t){.socket = zsock_resolve(zc_actor_sock(self->registry)),
                                    .events = ZMQ_POLLIN};
        self->registry_drained = 0;
    }
    *mesh_items = zc_mesh_pollitems(self->mesh, items + 1);
    int n = 1 + *mesh_items;
    if (self->ext && self->hook.pollitem) n += self->hook.pollitem(self->ext, items + n);
    return n;
}

int zc_node_pollitems(zc_node_t *self, zmq_pollitem_t *items)
{
    assert(self && self->started);
    int mesh_items;
    return s_pollitems(self, items, 0, &mesh_items);
}

//  Waits up to wait ms (-1: for ever) on items. When every item is a file
//  descriptor this is one poll() system call; zmq_poll would first look
//  without waiting, and ask each socket item for its events (a system call
//  each) before and after. Returns as zmq_poll.
static int s_poll(zmq_pollitem_t *items, int n, long wait)
{
    struct pollfd fds[ZC_NODE_POLLITEMS_MAX];
    for (int i = 0; i < n; i++) {
        if (items[i].socket) return zmq_poll(items, n, wait);
        fds[i] = (struct pollfd){.fd = items[i].fd, .events = POLLIN};
    }
    int rc = poll(fds, (nfds_t)n, (int)wait);
    for (int i = 0; i < n; i++)
        items[i].revents = rc > 0 && fds[i].revents ? ZMQ_POLLIN : 0;
    return rc;
}

//  Reads the registry actor's events. Asking it costs a system call
//  (libzmq polls its mailbox), once per message on a busy node, so it is
//  asked when the node's last poll saw it readable, and otherwise at most
//  once a millisecond: a node that never waits, under a stream of
//  messages, still applies membership news (not that urgent), and an
//  outside poll that saw it (zc_node_pollitems) waits that long.
static void s_registry_events(zc_node_t *self)
{
    if (!self->registry_ready) {
        int64_t now = zclock_mono();
        if (now - self->registry_looked < 1) return;
        self->registry_looked = now;
    }
    self->registry_ready = 0;
    while (zsock_events(zc_actor_sock(self->registry)) & ZMQ_POLLIN)
        s_registry_event(self);
    self->registry_drained = 1;
}

//  Hands msg to the extension that claims its kind. Requests and replies
//  never reach the application, claimed or not. Returns 1 if msg was taken.
static int s_take(zc_node_t *self, const zc_msg_t *msg)
{
    int kind = zc_msg_kind(msg);
    if (self->ext && (self->hook.kinds & (1u << kind)) && self->hook.message) {
        self->hook.message(self->ext, msg);
        return 1;
    }
    if (kind != ZC_KIND_REQUEST && kind != ZC_KIND_REPLY) return 0;
    //  Not silent: the caller will time out, so say why, once.
    if (kind == ZC_KIND_REQUEST && !self->warned_no_rpc) {
        zc_log(ZC_LOG_WARNING, zc_node_id(self),
               "RPC request '%s' from %s dropped: no zc_rpc_t is attached to this node "
               "(said once)",
               zc_msg_type(msg), zc_msg_sender(msg));
        self->warned_no_rpc = 1;
    }
    return 1;
}

//  Receives from the mesh, the registry and the extension until a message
//  no handler took. With once, it returns (NULL, errno EAGAIN) after the
//  first pass that did any work, so a waiter can check whether what it
//  waits for happened.
static zc_msg_t *s_recv(zc_node_t *self, int timeout_ms, int once)
{
    int64_t deadline = timeout_ms > 0 ? zclock_mono() + timeout_ms : 0;
    int polled = 0;
    while (1) {
        s_registry_events(self);
        int due = self->ext && self->hook.tick ? self->hook.tick(self->ext) : -1;
        uint64_t received = zc_mesh_received(self->mesh); //  handled or not
        zc_msg_t *msg = zc_mesh_recv(self->mesh, 0);
        if (self->kill_requested) s_exit(self);
        if (msg && s_take(self, msg)) {
            if (once) {
                errno = EAGAIN;
                return NULL;
            }
            continue;
        }
        if (msg) return msg;
        //  Once: a handler that ran on a message already queued (a
        //  confirmation, say) may be what the caller waits for, so it looks
        //  before this polls for the rest of its time.
        if (once && zc_mesh_received(self->mesh) != received) {
            errno = EAGAIN;
            return NULL;
        }
        if (errno == EINTR) return NULL;
        long wait = timeout_ms < 0 ? -1 : (long)(deadline - zclock_mono());
        if ((timeout_ms >= 0 && wait <= 0) || (once && polled)) {
            errno = EAGAIN;
            return NULL;
        }
        if (due >= 0 && (wait < 0 || due < wait)) wait = due;
        zmq_pollitem_t items[ZC_NODE_POLLITEMS_MAX];
        int mesh_items;
        int n = s_pollitems(self, items, 1, &mesh_items);
        if (s_poll(items, n, wait) < 0) {
            errno = EINTR;
            return NULL;
        }
        //  The mesh then reads what fired without a look of its own.
        zc_mesh_polled(self->mesh, items + 1, mesh_items);
        self->registry_ready = (items[0].revents & ZMQ_POLLIN) != 0; //  items[0]: the registry
        polled = 1;
    }
}

zc_msg_t *zc_node_recv(zc_node_t *self, int timeout_ms)
{
    assert(self && self->started);
    zc_msg_destroy(&self->current);
    self->current = (zc_msg_t *)zlist_pop(self->backlog);
    if (self->current) return self->current;
    return s_recv(self, timeout_ms, 0);
}

//  --------------------------------------------------------------------------
//  Extensions (zc_node_hook.h)

int zc_node_attach(zc_node_t *self, const zc_node_hook_t *hook, void *ext)
{
    assert(self && hook && ext);
    if (self->ext)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "the node already has an extension");
    self->hook = *hook;
    self->ext = ext;
    return zc_failure_clear(&self->failure);
}

void zc_node_detach(zc_node_t *self, void *ext)
{
    assert(self);
    if (ext && self->ext == ext) self->ext = NULL;
}

void zc_node_run(zc_node_t *self, int timeout_ms)
{
    assert(self && self->started);
    zc_msg_t *msg = s_recv(self, timeout_ms, 1);
    if (msg) zlist_append(self->backlog, zc_msg_dup(msg));
}

const zc_identity_t *zc_node_identity(zc_node_t *self)
{
    assert(self);
    return self->started ? &self->config.identity : NULL;
}

zlist_t *zc_node_groups(zc_node_t *self)
{
    assert(self);
    zlist_t *names = zlist_new();
    zlist_autofree(names);
    for (void *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups))
        zlist_append(names, (void *)zhashx_cursor(self->groups));
    return names;
}

const json_t *zc_node_headers(zc_node_t *self)
{
    assert(self);
    return self->headers;
}

//  --------------------------------------------------------------------------
//  Queries

zlist_t *zc_node_peers(zc_node_t *self)
{
    assert(self);
    zlist_t *ids = zlist_new();
    zlist_autofree(ids);
    for (void *p = zhashx_first(self->peers); p; p = zhashx_next(self->peers))
        zlist_append(ids, (void *)zhashx_cursor(self->peers));
    return ids;
}

int zc_node_peer_exists(zc_node_t *self, const char *id)
{
    assert(self);
    return id && zhashx_lookup(self->peers, id) != NULL;
}

int zc_node_peer_reachable(zc_node_t *self, const char *id)
{
    assert(self);
    node_peer_t *info = id ? (node_peer_t *)zhashx_lookup(self->peers, id) : NULL;
    return info && !info->unreachable;
}

zlist_t *zc_node_unreachable(zc_node_t *self)
{
    assert(self);
    zlist_t *ids = zlist_new();
    zlist_autofree(ids);
    for (node_peer_t *info = (node_peer_t *)zhashx_first(self->peers); info;
         info = (node_peer_t *)zhashx_next(self->peers))
        if (info->unreachable) zlist_append(ids, (void *)zhashx_cursor(self->peers));
    return ids;
}

uint64_t zc_node_unreachable_events(zc_node_t *self)
{
    assert(self);
    return self->unreachable_events;
}

size_t zc_node_peer_count(zc_node_t *self)
{
    assert(self);
    return zhashx_size(self->peers);
}

void zc_node_stats(zc_node_t *self, zc_node_stats_t *stats)
{
    assert(self && stats);
    *stats = self->stats;
}

int zc_node_leader(zc_node_t *self)
{
    assert(self);
    return self->leader;
}

uint64_t zc_node_epoch(zc_node_t *self)
{
    assert(self);
    return self->epoch;
}

int zc_node_redis_up(zc_node_t *self)
{
    assert(self);
    return self->redis_up;
}

static json_t *s_self_record(zc_node_t *self)
{
    zc_registry_config_t *c = &self->config;
    const char *id = c->identity.node_id;
    json_t *groups = json_array();
    for (void *g = zhashx_first(self->groups); g; g = zhashx_next(self->groups))
        json_array_append_new(groups, json_string((const char *)zhashx_cursor(self->groups)));
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:O, s:I, s:s}", "id", id, "inc", c->inc,
                     "host", c->host, "pid", c->pid, "pub", c->pub, "router", c->router, "groups",
                     groups, "headers", self->headers, "started", (json_int_t)c->started_ms,
                     "version", c->version);
}

char *zc_node_cluster_info(zc_node_t *self)
{
    assert(self && self->started);
    json_t *nodes = json_array();
    json_t *groups = json_object();
    json_array_append_new(nodes, s_self_record(self));
    for (node_peer_t *info = (node_peer_t *)zhashx_first(self->peers); info;
         info = (node_peer_t *)zhashx_next(self->peers))
        if (info->record) json_array_append(nodes, info->record);
    size_t i;
    json_t *record;
    json_array_foreach(nodes, i, record)
    {
        size_t j;
        json_t *group;
        json_array_foreach(json_object_get(record, "groups"), j, group)
        {
            const char *name = json_string_value(group);
            if (!name) continue;
            json_t *members = json_object_get(groups, name);
            if (!members) {
                members = json_array();
                json_object_set_new(groups, name, members);
            }
            json_array_append_new(members,
                                  json_pack("{s:O, s:O}", "id", json_object_get(record, "id"),
                                            "pid", json_object_get(record, "pid")));
        }
    }
    json_t *unreachable = json_array();
    for (node_peer_t *peer = (node_peer_t *)zhashx_first(self->peers); peer;
         peer = (node_peer_t *)zhashx_next(self->peers))
        if (peer->unreachable)
            json_array_append_new(unreachable,
                                  json_string((const char *)zhashx_cursor(self->peers)));
    json_t *info =
        json_pack("{s:s, s:s, s:b, s:I, s:o, s:o, s:o, s:I}", "cluster", self->cluster, "self",
                  self->config.identity.node_id, "leader", self->leader, "epoch",
                  (json_int_t)self->epoch, "nodes", nodes, "groups", groups, "unreachable",
                  unreachable, "unreachable_events", (json_int_t)self->unreachable_events);
    char *text = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    return text;
}
