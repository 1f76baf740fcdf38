/*  zc_mesh_internal — the mesh's state, shared by its two halves (private
    to the messaging plane): zc_mesh.c (sockets, peers, receiving) and
    zc_mesh_send.c (sending, batching). See zc_mesh.h.
*/
#ifndef ZC_MESH_INTERNAL_H_INCLUDED
#define ZC_MESH_INTERNAL_H_INCLUDED

#include "zc_batch.h"
#include "zc_mesh.h"
#include "zc_msg.h"
#include "zc_refusals.h"

#include <czmq.h>
#include <poll.h>

#define ENDPOINT_MAX        256
#define MAX_TRACKED_SENDERS 4096 //  sequence state kept for at most this many senders
#define MAX_REPORTED        1024 //  sources remembered for log-once

//  The data sockets a node receives on, in the order of self->fds.
enum { SOCK_SUB, SOCK_ROUTER, SOCK_DATA };

typedef struct {
    char id[ZC_NAME_MAX + 1];
    char pub_endpoint[ENDPOINT_MAX];
    char router_endpoint[ENDPOINT_MAX];
    zsock_t *dealer;
    void *dealer_handle;
    uint64_t private_seq; //  last sequence number sent to this peer
    int connected;        //  our SUB's connection to its PUB is up
    int lost;             //  it was up and dropped, and has not come back yet
    int wire;             //  the highest protocol version it reads (1 unless told)
    zc_batch_t *batch;    //  private-plane messages held for it (zc_mesh_send.c)
    int64_t held_since;   //  when its batch's first message was held (us)
} mesh_peer_t;

//  What a receiver remembers of one sender's streams: next expected numbers.
typedef struct {
    uint64_t next_public;
    uint64_t next_private;
    zhashx_t *next_group; //  group name -> uint64_t *
} mesh_sender_t;

//  The start of the frames of the last kind, group and type sent on a path
//  (the PUB, the DEALERs): the topic, then the header up to seq, and room
//  after it for seq and corr, which each send writes (zc_mesh_send.c).
typedef struct {
    int kind; //  0: nothing kept
    char group[ZC_NAME_MAX + 1];
    char type[ZC_NAME_MAX + 1];
    uint8_t bytes[ZC_WIRE_TOPIC_MAX + ZC_WIRE_HEADER_MAX];
    size_t topic_len, len; //  len: topic and header head
} mesh_start_t;

typedef struct {
    zc_mesh_handler_fn *fn;
    void *arg;
} mesh_handler_t;

struct _zc_mesh_t {
    char id[ZC_NAME_MAX + 1];
    size_t id_len; //  measured once: every header carries the id
    char bind_pub[ENDPOINT_MAX], bind_router[ENDPOINT_MAX];
    char pub_endpoint[ENDPOINT_MAX], router_endpoint[ENDPOINT_MAX];
    char advertise_host[ENDPOINT_MAX];
    char monitor_endpoint[64];
    zc_security_t *security; //  borrowed, or owned_security
    zc_security_t *owned_security;
    size_t max_msg_size;
    int hwm, heartbeat_ivl, heartbeat_timeout;
    int started;

    zsock_t *pub, *router, *sub, *monitor;
    void *pub_handle, *router_handle, *sub_handle, *monitor_handle;
    zc_refusals_t *refusals; //  failed handshakes on every socket

    zhashx_t *peers;        //  id -> mesh_peer_t
    mesh_peer_t *last_peer; //  the last one sent to: private sends come in runs
    zhashx_t *groups;       //  joined groups (set)
    zhashx_t *group_seq;    //  group -> uint64_t *, last number this node sent there
    uint64_t public_seq;
    mesh_start_t pub_start, dealer_start; //  what the PUB and the DEALERs last sent
    zhashx_t *senders;                    //  sender id -> mesh_sender_t
    mesh_sender_t *last_sender;           //  the last one looked up: streams come in runs
    char last_sender_id[ZC_NAME_MAX + 1];
    mesh_handler_t *last_handler; //  the handler (or none) of the last type seen
    char last_type[ZC_NAME_MAX + 1];
    zhashx_t *handlers; //  type -> mesh_handler_t
    zhashx_t *reported; //  sources already logged (set)
    zc_mesh_peer_fn *peer_lost_fn;
    void *peer_lost_arg;
    zc_mesh_peer_fn *peer_back_fn;
    void *peer_back_arg;

    zc_mesh_stats_t stats;
    zc_msg_t msg;           //  the message last received (its payload: that frame)
    zmq_msg_t routing_id;   //  the ROUTER's frame before it
    const uint8_t *frame;   //  msg.payload's bytes, looked up once per frame
    zc_wire_memo_t memo;    //  the head of msg's header: streams repeat it
    int current;            //  socket being read: SOCK_SUB or SOCK_ROUTER
    int burst;              //  messages taken from it in a row
    int drained[SOCK_DATA]; //  read empty since: its descriptor signals news
    //  What a wait polls: the data sockets' descriptors, then the monitors'.
    struct pollfd fds[ZC_MESH_POLLITEMS_MAX];
    int fd_count;
    //  An outside poll of the items was reported (zc_mesh_polled): the
    //  next receive need not look for itself.
    int poll_reported;

    //  Batching (zc_mesh_send.c; docs/PROTOCOL.md section 8.1)
    int batch;               //  batch frames may be sent (zc_mesh_set_batch)
    size_t peers_v1;         //  peers that read version 1 only: no PUB batch while any
    zc_batch_t *pub_batch;   //  public or group messages held
    int64_t pub_held_since;  //  when its first message was held (us)
    int dealer_held;         //  a peer's batch may hold messages
    int64_t last_send_us;    //  the last send: the next soon after it is a burst
    zc_wire_batch_t inbatch; //  a batch frame being received (its frame: msg.payload)
    int inbatch_router, inbatch_kind;
};

//  Returns 1 if a batch may hold messages (zc_mesh_send.c).
static inline int zc_mesh_holding(zc_mesh_t *self)
{
    return (self->pub_batch && zc_batch_count(self->pub_batch)) || self->dealer_held;
}

//  Drops what peer's batch holds and what the sending half knows of it:
//  the peer is being removed (zc_mesh_send.c).
void zc_mesh_send_forget(zc_mesh_t *self, mesh_peer_t *peer);

#endif
