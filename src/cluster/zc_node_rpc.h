/*  The seam between zc_node and zc_rpc (internal to libzcluster).

    The node owns its RPC state and drives it from zc_node_recv: RPC traffic
    is taken out of the message stream, completions of handler threads and
    call timeouts are processed on every pass, and the RPC completion socket
    is polled with the node's sockets.
*/
#ifndef ZC_NODE_RPC_H_INCLUDED
#define ZC_NODE_RPC_H_INCLUDED

#include "zc_node.h"
#include "zc_redis.h"

typedef struct _zc_rpc_t zc_rpc_t;

//  --- provided by zc_rpc.c, called by the node ----------------------------

//  Creates the node's RPC state (threads start on first use of a handler).
zc_rpc_t *zc_rpc_new(zc_node_t *node);

//  Stops the handler threads, fails pending calls, frees everything.
void zc_rpc_destroy(zc_rpc_t **self_p);

//  Takes REQUEST and REPLY messages; returns 1 if msg was RPC traffic.
int zc_rpc_consume(zc_rpc_t *self, const zc_msg_t *msg);

//  Fails the pending calls that wait on a removed peer.
void zc_rpc_peer_removed(zc_rpc_t *self, const char *peer);

//  Sends the replies of finished handlers and expires calls past their
//  deadline. Returns ms until the next deadline, or -1 if none.
int zc_rpc_process(zc_rpc_t *self);

//  Fills one poll item (the completion socket); returns 1, or 0 if none.
int zc_rpc_pollitem(zc_rpc_t *self, zmq_pollitem_t *item);

//  --- provided by zc_node.c, called by RPC --------------------------------

//  The node's RPC state, created on first use.
zc_rpc_t *zc_node_rpc(zc_node_t *node);

//  Runs the node until something happened or timeout_ms passed, keeping
//  unhandled messages for later zc_node_recv calls.
void zc_node_step(zc_node_t *node, int timeout_ms);

//  The Redis the node registered with.
const zc_redis_url_t *zc_node_redis_url(zc_node_t *node);

#endif
