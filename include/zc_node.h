/*  zc_node — a cluster node: a mesh plus its place in the Redis registry.

    A node registers itself under zc:{CLUSTER}: with a record (id, host, pid,
    endpoints, groups, headers, start time, version) and a lease it refreshes
    every lease_ttl/3, learns every live peer from the registry and connects
    to it, and hears joins and leaves as they are announced. A background
    actor does the Redis work; the node's own thread keeps the data path
    (see zc_mesh.h) and handles membership events inside zc_node_recv, so
    call zc_node_recv regularly (or poll zc_node_pollitems).

    A peer is removed when it leaves (reason LEFT), when its lease expires
    (EXPIRED: silent past the TTL), or when more than half of the other
    members lost their connection to it: it died or stopped answering
    heartbeats (CRASHED). One node's lost connection alone removes nobody:
    that peer is "unreachable from here" (zc_node_peer_reachable,
    zc_node_unreachable, the info's "unreachable"), private messages and
    RPC to it fail at once, and it is reachable again when the connection
    comes back. A killed process is removed everywhere at once (every peer
    sees its connection close); a frozen or cut-off one within the
    heartbeat timeout, or at the latest when its lease expires.

    One node per cluster is the leader, holding a lease in Redis renewed
    atomically; each new leader gets a higher fencing epoch.

    RPC (zc_rpc.h) is a class of its own that attaches to a node.

    Errors: a function that can fail (set_header, start, join, leave,
    wait_confirmations, wait_peers) returns -1 or NULL and leaves the reason on the
    node: zc_node_error, one of zc_error_t (zc_error.h), and
    zc_node_errstr. Sending and receiving (publish, shout, whisper, kill,
    confirm, recv) are the mesh's hot path and report through errno, as
    zc_mesh does.

    Message types starting with "zc." are reserved for the node itself.
*/
#ifndef ZC_NODE_H_INCLUDED
#define ZC_NODE_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "zc_error.h"
#include "zc_mesh.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_node_t zc_node_t;

typedef enum {
    ZC_REMOVED_LEFT = 1,    //  the peer left the cluster
    ZC_REMOVED_EXPIRED = 2, //  its lease expired: silent past the lease TTL
    ZC_REMOVED_CRASHED = 3  //  its connection dropped: died or stopped answering
} zc_removed_t;

//  Membership callbacks, called on the node's thread inside zc_node_recv.
//  Any may be NULL.
typedef struct {
    void (*peer_added)(zc_node_t *node, const char *peer_id, void *arg);
    void (*peer_removed)(zc_node_t *node, const char *peer_id, zc_removed_t reason, void *arg);
    //  Also called again, with the higher epoch, when the leader takes its
    //  lease anew (it had lapsed, or Redis lost it in a failover).
    void (*promoted)(zc_node_t *node, uint64_t epoch, void *arg);
    void (*demoted)(zc_node_t *node, uint64_t epoch, void *arg);
} zc_node_events_t;

//  Called when a member becomes unreachable from this node (unreachable 1:
//  its connection dropped) or reachable again (0); it stays a member
//  meanwhile. On the node's thread, inside zc_node_recv.
typedef void(zc_node_reach_fn)(zc_node_t *node, const char *peer_id, int unreachable, void *arg);

//  Defaults of the membership settings. A killed process is seen at once
//  (its connection closes and every peer votes); a frozen or cut-off host
//  when its lease expires (within TTL + TTL/3: under 3 s with these).
//  Heartbeats time only "unreachable from here", and they are the one idle
//  cost that grows as n^2 for the cluster: hence their slow default.
#define ZC_NODE_LEASE_TTL_DEFAULT         2000
#define ZC_NODE_HEARTBEAT_IVL_DEFAULT     10000
#define ZC_NODE_HEARTBEAT_TIMEOUT_DEFAULT 20000

//  Called when a peer asks this node to exit (zc_node_kill). Without one,
//  the node leaves the cluster and the process exits with the code.
typedef void(zc_node_kill_fn)(zc_node_t *node, const char *from, int exit_code, void *arg);

//  Creates a node with this id; if NULL, $ZC_NODE_ID (the id a supervisor
//  gives its worker), else a generated one. NULL if invalid.
zc_node_t *zc_node_new(const char *id);

//  Leaves the cluster (announced at once to peers), stops and destroys the
//  node, and sets *self_p to NULL; idempotent. An RPC still attached lets
//  go of the node first (its pending calls fail as peer gone); destroy it
//  afterwards with zc_rpc_destroy.
void zc_node_destroy(zc_node_t **self_p);

//  The kind of the last failure (ZC_OK after a success), and its message
//  (owned by the node, valid until its next call).
zc_error_t zc_node_error(zc_node_t *self);
const char *zc_node_errstr(zc_node_t *self);

//  Before start: the Redis URL, redis://[[user]:password@]host[:port][/db]
//  or unix:///path/to/socket[?db=N]. Default: $ZC_REDIS_URL.
void zc_node_set_redis(zc_node_t *self, const char *url);

//  Before start: the cluster name; NULL restores the default, $ZC_CLUSTER,
//  else "zcluster". An invalid name makes zc_node_start fail.
void zc_node_set_cluster(zc_node_t *self, const char *cluster);

//  Before start: a header published in the node's record. Returns 0, or -1
//  if the key is empty (ZC_ERR_INVALID).
int zc_node_set_header(zc_node_t *self, const char *key, const char *value);

//  Before start: lease TTL in ms (default ZC_NODE_LEASE_TTL_DEFAULT, or
//  $ZC_LEASE_TTL); also the leader lease. The node refreshes it every
//  ttl/3; a node silent for ttl is removed (EXPIRED).
void zc_node_set_lease_ttl(zc_node_t *self, int ttl_ms);

//  Before start: heartbeat interval and timeout in ms on the connection to
//  each peer (defaults ZC_NODE_HEARTBEAT_IVL_DEFAULT and _TIMEOUT_DEFAULT,
//  or $ZC_HEARTBEAT_INTERVAL and $ZC_HEARTBEAT_TIMEOUT). A peer silent for
//  the timeout is unreachable from here. Idle cost grows with the rate:
//  every node sends n-1 heartbeats per interval.
void zc_node_set_heartbeat(zc_node_t *self, int interval_ms, int timeout_ms);

//  Before start: the address (IP, host name or interface) the node's
//  sockets bind, on ephemeral ports; "0.0.0.0" or "*" binds every
//  interface. Default: $ZC_BIND, else 127.0.0.1 (this host only).
//  Returns 0, or -1 if it is not an address (ZC_ERR_INVALID). The address
//  peers connect to is the mesh's (zc_mesh_set_advertise_host; default
//  $ZC_ADVERTISE, else the bound address, else this host's name).
int zc_node_set_bind(zc_node_t *self, const char *host);

//  Before start: take part in leader election (default 1).
void zc_node_set_election(zc_node_t *self, int enabled);

//  Before start: the security configuration (borrowed; must outlive the
//  node). Its public key is published in the record. Default: the cluster
//  credentials file named by $ZC_KEYS, else none (unauthenticated, logged
//  once). A peer whose record advertises other credentials (another key,
//  or none while this node has one) is not added, and logged once.
void zc_node_set_security(zc_node_t *self, zc_security_t *security);

//  Sets the membership callbacks (copied) and their argument.
void zc_node_set_events(zc_node_t *self, const zc_node_events_t *events, void *arg);

//  Sets the reachability callback (NULL: none).
void zc_node_on_reach(zc_node_t *self, zc_node_reach_fn *fn, void *arg);

//  Sets the kill handler (NULL restores the default: leave and exit).
void zc_node_on_kill(zc_node_t *self, zc_node_kill_fn *fn, void *arg);

//  The node's mesh, to set endpoints, limits and handlers before start or
//  to send and receive directly; batching too (zc_mesh_set_batch, on
//  from the start with $ZC_BATCH=1): the node tells its mesh which peers
//  read batch frames from their registry records.
zc_mesh_t *zc_node_mesh(zc_node_t *self);

//  Binds the sockets and starts the registry actor. Returns 0, or -1 if
//  there is no usable Redis URL, cluster name or credentials file
//  ($ZC_KEYS: missing, malformed, or open to group or others)
//  (ZC_ERR_INVALID, also logged) or binding fails (ZC_ERR_SYSTEM). Redis being unreachable is not
//  an error: the node retries in the background.
int zc_node_start(zc_node_t *self);

//  Returns the node id.
const char *zc_node_id(zc_node_t *self);

//  Returns the cluster name.
const char *zc_node_cluster(zc_node_t *self);

//  Joins a group (before or after start); the registry record and the
//  cluster's view follow. Returns 0, or -1 on an invalid name
//  (ZC_ERR_INVALID) or if the subscription fails (ZC_ERR_SYSTEM).
int zc_node_join(zc_node_t *self, const char *group);

//  Leaves a group. Returns 0, or -1 if not a member (ZC_ERR_MISSING).
int zc_node_leave(zc_node_t *self, const char *group);

//  Public, group and private messages: see zc_mesh_publish/shout/whisper.
//  A private message to a member unreachable from here fails at once with
//  errno ENOTCONN.
int zc_node_publish(zc_node_t *self, const char *type, const void *data, size_t size);
int zc_node_shout(zc_node_t *self, const char *group, const char *type, const void *data,
                  size_t size);
int zc_node_whisper(zc_node_t *self, const char *peer, const char *type, const void *data,
                    size_t size);

//  Handles registry events, dispatches handled messages and returns the
//  next unhandled message (owned by the node, valid until the next call),
//  or NULL after timeout_ms (-1 forever) with errno EAGAIN, or EINTR. RPC
//  requests and replies never come out: an attached zc_rpc_t takes them
//  (a node without one drops them).
zc_msg_t *zc_node_recv(zc_node_t *self, int timeout_ms);

//  Most poll items zc_node_pollitems fills.
#define ZC_NODE_POLLITEMS_MAX (2 + ZC_MESH_POLLITEMS_MAX)

//  Fills items (room for ZC_NODE_POLLITEMS_MAX) with what zc_node_recv
//  polls (an attached RPC's socket included); returns the count. Fill them
//  before every poll: the set changes (the RPC's completion socket is in
//  it only while handlers run on its threads).
int zc_node_pollitems(zc_node_t *self, zmq_pollitem_t *items);

//  Returns the ids of the live peers as a new list the caller destroys.
zlist_t *zc_node_peers(zc_node_t *self);

//  Waits up to timeout_ms until at least `count` peers are known and
//  reachable: each has answered a probe this node published, so its SUB is
//  subscribed to this node's PUB and a publish or shout from now on reaches
//  it (ZeroMQ drops what a PUB sends before a subscriber's subscription has
//  arrived: the "slow joiner"). Returns 0, or -1 on timeout (ZC_ERR_TIMEOUT).
//  Messages without a handler that arrive meanwhile are kept for later
//  zc_node_recv calls. Peers that do not answer "zc.probe" (see
//  docs/PROTOCOL.md) are never counted.
int zc_node_wait_peers(zc_node_t *self, size_t count, int timeout_ms);

//  Returns 1 if id is a live peer.
int zc_node_peer_exists(zc_node_t *self, const char *id);

//  Returns 1 if id is a peer and its connection is up (not unreachable
//  from here).
int zc_node_peer_reachable(zc_node_t *self, const char *id);

//  Returns the ids of the members unreachable from here (their connection
//  dropped; not enough other members confirmed it to remove them) as a
//  new list the caller destroys.
zlist_t *zc_node_unreachable(zc_node_t *self);

//  Returns how many times a member became unreachable from here since start.
uint64_t zc_node_unreachable_events(zc_node_t *self);

//  Returns the number of live peers.
size_t zc_node_peer_count(zc_node_t *self);

//  Membership events this node has seen since it started.
typedef struct {
    uint64_t peers_added;     //  peers that joined (or came back)
    uint64_t removed_left;    //  peers removed: they left
    uint64_t removed_expired; //  their lease expired
    uint64_t removed_crashed; //  their connection dropped
    uint64_t leader_changes;  //  this node was promoted or demoted
} zc_node_stats_t;

//  Copies the membership counters into *stats.
void zc_node_stats(zc_node_t *self, zc_node_stats_t *stats);

//  Returns 1 if this node is the leader.
int zc_node_leader(zc_node_t *self);

//  Returns the fencing epoch of the current leadership as last seen.
uint64_t zc_node_epoch(zc_node_t *self);

//  Returns 1 while the registry connection to Redis is up.
int zc_node_redis_up(zc_node_t *self);

//  Returns the cluster as this node sees it, as JSON the caller frees:
//  {"cluster","self","leader","epoch","nodes":[records],"groups":{group:[{"id","pid"}]},
//   "unreachable":[ids],"unreachable_events":N}
char *zc_node_cluster_info(zc_node_t *self);

//  Asks a peer to exit with exit_code. Returns 0 or -1 as zc_mesh_whisper.
int zc_node_kill(zc_node_t *self, const char *peer, int exit_code);

//  Sends the named confirmation to every peer. Returns 0, or -1 with errno
//  (EINVAL for an invalid name).
int zc_node_confirm(zc_node_t *self, const char *name);

//  Waits up to timeout_ms until `count` distinct peers have sent the named
//  confirmation. Returns a list of their ids (the caller destroys it), or
//  NULL on timeout (ZC_ERR_TIMEOUT). Messages without a handler that arrive
//  meanwhile are kept for later zc_node_recv calls.
zlist_t *zc_node_wait_confirmations(zc_node_t *self, const char *name, size_t count,
                                    int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
