/*  zc_mesh — the broker-free messaging plane: one node's sockets and peers.

    A mesh binds a PUB socket (public and group traffic) and a ROUTER socket
    (private messages and RPC), connects one SUB socket to every peer's PUB
    and one DEALER per peer to that peer's ROUTER. It knows nothing of how
    peers are found: zc_mesh_peer_add/remove are called by the application,
    a static list, or the Redis registry in the cluster plane.

    Threading: a mesh belongs to the thread that calls it. Sends go straight
    onto the sockets that thread owns and receives poll them, so no message
    crosses an actor pipe. Background control work (registry, timers) lives
    in other threads and reaches the mesh only through this API on the
    owner's thread.

    Messages have a kind (public, group, private), a type string used for
    dispatch (like ActionHero's messageType) and an opaque payload. Every
    drop is counted in zc_mesh_stats_t; nothing is dropped silently.
*/
#ifndef ZC_MESH_H_INCLUDED
#define ZC_MESH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "zc_security.h"
#include "zc_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_mesh_t zc_mesh_t;
typedef struct _zc_msg_t zc_msg_t;

//  Default largest payload accepted or sent, in bytes.
#define ZC_MESH_MAX_MSG_SIZE_DEFAULT (1024 * 1024)
//  Frames above max_msg_size + this slack make libzmq drop the connection
//  before the frame is read into memory (ZMQ_MAXMSGSIZE); frames in between
//  are read, dropped and counted as oversized.
#define ZC_MESH_TRANSPORT_SLACK (64 * 1024)

//  Counters of one mesh since it was created.
typedef struct {
    uint64_t sent_public, sent_group, sent_private, sent_request, sent_reply;
    uint64_t recv_public, recv_group, recv_private, recv_request, recv_reply;
    uint64_t bytes_sent, bytes_received; //  payload bytes
    uint64_t lost;                       //  messages missing from a sender's sequence
    uint64_t malformed;                  //  frames that are not this protocol, or spoofed senders
    uint64_t bad_version;                //  well-formed headers of another protocol version
    uint64_t oversized;                  //  payloads above max_msg_size, dropped
    uint64_t send_dropped;               //  private sends refused: the peer's queue was full
    uint64_t no_route;                   //  private sends to a node id that is not a peer
    uint64_t peers_lost;                 //  peer connections that dropped (closed or silent)
    uint64_t refused;                    //  handshakes that failed: no cluster credentials
} zc_mesh_stats_t;

//  Called for each received message whose type has this handler. The message
//  is valid only during the call.
typedef void(zc_mesh_handler_fn)(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg);

//  Called when the connection to a peer drops: its process closed the
//  socket, died, or went silent past the heartbeat timeout. Only a
//  connection whose handshake had succeeded can drop: a peer that never
//  authenticates is counted as refused, never reported lost. The peer
//  stays known (libzmq keeps reconnecting) until zc_mesh_peer_remove.
typedef void(zc_mesh_peer_fn)(zc_mesh_t *mesh, const char *peer_id, void *arg);

//  Creates a mesh for node id (a valid name, see zc_wire_name_valid), or a
//  generated id if NULL. Returns NULL if the id is invalid.
zc_mesh_t *zc_mesh_new(const char *id);

//  Closes all sockets, destroys the mesh and sets *self_p to NULL; idempotent.
void zc_mesh_destroy(zc_mesh_t **self_p);

//  Returns this node's id.
const char *zc_mesh_id(zc_mesh_t *self);

//  Before start: endpoints to bind, default "tcp://127.0.0.1:*" for both
//  ("*" port = ephemeral). "tcp://*:*" binds every interface.
void zc_mesh_set_endpoints(zc_mesh_t *self, const char *pub, const char *router);

//  Before start: host name or address peers are told to connect to, in
//  place of the bound address's host (default: the bound address, or this
//  host's name for a wildcard bind).
void zc_mesh_set_advertise_host(zc_mesh_t *self, const char *host);

//  Before start: the security configuration every socket is created from.
//  The mesh borrows it; it must outlive the mesh. Default: the credentials
//  file named by $ZC_KEYS (zc_security_load), else the NULL mechanism,
//  which zc_mesh_start logs as unauthenticated.
void zc_mesh_set_security(zc_mesh_t *self, zc_security_t *security);

//  Before start: largest payload in bytes (default ZC_MESH_MAX_MSG_SIZE_DEFAULT).
void zc_mesh_set_max_msg_size(zc_mesh_t *self, size_t max_size);

//  Before start: high-water mark, in messages, of every socket (default 100000).
void zc_mesh_set_hwm(zc_mesh_t *self, int hwm);

//  Before start: ZMTP heartbeat interval and timeout in ms on the
//  connection to each peer's PUB (default 500 and 1500); a peer silent for
//  timeout_ms, or that does not finish the ZMTP handshake within it, drops
//  (reported lost if its connection had been up). The connection to its
//  ROUTER sends none (a dead peer is seen once; half the idle cost) but
//  its handshake is bounded the same way.
void zc_mesh_set_heartbeat(zc_mesh_t *self, int interval_ms, int timeout_ms);

//  Binds the sockets. Returns 0, or -1 if an endpoint cannot be bound, or
//  the default credentials file ($ZC_KEYS) is unusable (errno EACCES,
//  the reason logged).
int zc_mesh_start(zc_mesh_t *self);

//  Returns the advertised PUB endpoint once started, else "".
const char *zc_mesh_pub_endpoint(zc_mesh_t *self);

//  Returns the advertised ROUTER endpoint once started, else "".
const char *zc_mesh_router_endpoint(zc_mesh_t *self);

//  Adds a peer: connects to its PUB and ROUTER endpoints. With CURVE,
//  curve_key is the key the peer must prove it holds (Z85), NULL for the
//  cluster key this mesh holds (every member has it); ignored without
//  CURVE. Adding a known id again with
//  other endpoints reconnects it. Returns 0, or -1 with errno EINVAL on an
//  invalid id, endpoint or key (not 40 Z85 characters), or the mesh's own
//  id; ENOTSUP for a key while CURVE is off (never plaintext instead).
int zc_mesh_peer_add(zc_mesh_t *self, const char *id, const char *pub_endpoint,
                     const char *router_endpoint, const char *curve_key);

//  Removes a peer: disconnects and forgets its sequence state. Returns 0, or
//  -1 if the id is not a peer.
int zc_mesh_peer_remove(zc_mesh_t *self, const char *id);

//  Returns 1 if id is a peer.
int zc_mesh_peer_exists(zc_mesh_t *self, const char *id);

//  Returns the number of peers.
size_t zc_mesh_peer_count(zc_mesh_t *self);

//  Sets the callback for dropped peer connections (NULL to clear).
void zc_mesh_on_peer_lost(zc_mesh_t *self, zc_mesh_peer_fn *fn, void *arg);

//  Sets the callback for a peer whose connection had dropped and is up
//  again (its handshake succeeded once more); NULL to clear.
void zc_mesh_on_peer_back(zc_mesh_t *self, zc_mesh_peer_fn *fn, void *arg);

//  Joins a group: group messages to it are delivered from now on. Returns 0,
//  or -1 if the name is invalid. Joining twice is harmless.
int zc_mesh_join(zc_mesh_t *self, const char *group);

//  Leaves a group: no message to it is delivered after this returns, even
//  one already queued (the SUB socket filters its queue too). Returns 0, or
//  -1 if not a member.
int zc_mesh_leave(zc_mesh_t *self, const char *group);

//  Returns 1 if this node is in the group.
int zc_mesh_in_group(zc_mesh_t *self, const char *group);

//  Sends a public message to every peer. Returns 0, or -1 with errno set
//  (EINVAL bad type, EMSGSIZE payload above the maximum).
int zc_mesh_publish(zc_mesh_t *self, const char *type, const void *data, size_t size);

//  Sends a group message to the members of group (members need not include
//  this node). Returns 0 or -1 as zc_mesh_publish.
int zc_mesh_shout(zc_mesh_t *self, const char *group, const char *type, const void *data,
                  size_t size);

//  Sends a private message to one peer. Returns 0, or -1 with errno set:
//  EHOSTUNREACH unknown peer (counted no_route), EAGAIN the peer's queue is
//  full (counted send_dropped; retry later), EINVAL, EMSGSIZE.
int zc_mesh_whisper(zc_mesh_t *self, const char *peer, const char *type, const void *data,
                    size_t size);

//  Sends a private-plane message of any DEALER kind (PRIVATE, REQUEST,
//  REPLY) with a correlation id; the cluster plane builds RPC on it.
//  Returns 0 or -1 as zc_mesh_whisper.
int zc_mesh_send_to(zc_mesh_t *self, const char *peer, int kind, const char *type, uint64_t corr,
                    const void *data, size_t size);

//  Batching (docs/PROTOCOL.md section 8.1): with on, small messages sent
//  in a burst to the same socket are held and sent as one batch frame (to
//  peers that read them: zc_mesh_peer_set_wire), many more per second. A
//  send that does not follow another within microseconds goes at once;
//  held messages go within 50 us while sends go on, when the batch is
//  full, and whenever this thread calls zc_mesh_recv, zc_mesh_pollitems
//  or zc_mesh_flush. Off by default. Off again: what is held goes now.
void zc_mesh_set_batch(zc_mesh_t *self, int on);

//  Says which protocol version peer id reads, as its registry record's
//  wire field does (docs/REGISTRY.md): 2 or more reads batch frames. A
//  peer reads version 1 until told. Returns 0, or -1 (errno EINVAL) if id
//  is not a peer or version < 1.
int zc_mesh_peer_set_wire(zc_mesh_t *self, const char *id, int version);

//  Sends every message held in a batch now. An application that keeps
//  this thread away from the mesh after a burst calls it. Returns 0, or -1
//  with errno EAGAIN if a peer's queue is full (those stay held and go at
//  the next flush).
int zc_mesh_flush(zc_mesh_t *self);

//  Registers fn for public, group and private messages of this type (NULL
//  fn removes it). Handled messages are passed to fn inside zc_mesh_recv
//  and not returned by it; RPC requests and replies are always returned.
//  Returns 0, or -1 if the type is invalid.
int zc_mesh_on(zc_mesh_t *self, const char *type, zc_mesh_handler_fn *fn, void *arg);

//  Receives the next message that no handler consumed, waiting up to
//  timeout_ms (-1 forever, 0 not at all). Returns a message owned by the
//  mesh and valid until the next call, or NULL on timeout (errno EAGAIN) or
//  interruption (errno EINTR).
zc_msg_t *zc_mesh_recv(zc_mesh_t *self, int timeout_ms);

//  Most poll items zc_mesh_pollitems fills.
#define ZC_MESH_POLLITEMS_MAX 5

//  Fills items (room for ZC_MESH_POLLITEMS_MAX) with what zc_mesh_recv
//  polls, for callers that run their own zmq_poll loop; call
//  zc_mesh_recv(self, 0) when any is readable. Fill them anew before every
//  poll: a socket that may still hold messages is an item as a socket, one
//  read empty is its file descriptor (which libzmq signals when it has
//  news; polling it costs no system call of its own). Returns the number
//  of items.
int zc_mesh_pollitems(zc_mesh_t *self, zmq_pollitem_t *items);

//  Optional, after such a poll: tells the mesh what it saw in the count
//  items zc_mesh_pollitems filled (their revents). The next
//  zc_mesh_recv(self, 0) then reads what fired and does not look at the
//  descriptors itself (a poll() system call it makes for a caller that does
//  not say); the report is good for that one receive only, so a caller that
//  receives again without polling first is never left blind.
void zc_mesh_polled(zc_mesh_t *self, const zmq_pollitem_t *items, int count);

//  Copies the counters into *stats. Reads the refusal monitors first (a
//  system call or two).
void zc_mesh_stats(zc_mesh_t *self, zc_mesh_stats_t *stats);

//  Returns the number of messages received and delivered so far, to a
//  handler or to the caller (the recv_ counters summed): for a loop that
//  asks after every receive whether anything arrived, at no system call.
uint64_t zc_mesh_received(zc_mesh_t *self);

//  Received message accessors. Strings are NUL-terminated and owned by msg.
int zc_msg_kind(const zc_msg_t *msg);
const char *zc_msg_type(const zc_msg_t *msg);
const char *zc_msg_sender(const zc_msg_t *msg);
//  The group for group messages, else NULL.
const char *zc_msg_group(const zc_msg_t *msg);
uint64_t zc_msg_seq(const zc_msg_t *msg);
uint64_t zc_msg_corr(const zc_msg_t *msg);
const void *zc_msg_data(const zc_msg_t *msg);
size_t zc_msg_size(const zc_msg_t *msg);

//  Returns a copy of msg that outlives the next receive (the payload is
//  shared, not copied); the caller frees it with zc_msg_destroy.
zc_msg_t *zc_msg_dup(const zc_msg_t *msg);

//  Frees a copy made by zc_msg_dup and sets *msg_p to NULL; idempotent.
void zc_msg_destroy(zc_msg_t **msg_p);

#ifdef __cplusplus
}
#endif

#endif
