/*  zc_rpc — cluster RPC over the DEALER/ROUTER plane.

    Only registered methods can be called: a request names a method, and a
    node without it answers "unknown method" at once. Calls go to one node,
    to all nodes (the first reply, or every reply plus the list of nodes
    that did not answer in time), or to the node that holds a connection id
    (connection ids map to node ids in Redis, at zc:{CLUSTER}:conn).

    Every call is a zc_rpc_call_t: start it with zc_rpc_start (non-blocking;
    an optional callback runs on the node's thread when it completes) and
    wait with zc_rpc_wait, or use zc_rpc_call, which does both. Completion
    happens inside zc_node_recv, so an event-loop service keeps calling
    zc_node_recv (or polls zc_node_pollitems) and never blocks.

    Threading model. Requests arrive on the node's thread. Handlers run on a
    small pool of RPC threads (zc_rpc_set_threads, default 2; 0 runs them
    inline on the node's thread), so a slow handler holds one RPC thread,
    not the node's messaging, and other calls go to the free threads. The
    reply is sent from the node's thread when the handler returns. A handler
    must not call zc_node_* functions: the node belongs to its own thread.

    Errors come back as errors, never as timeouts: unknown method, handler
    error (code + message), peer gone (the call fails as soon as the
    registry removes the target), no route (not a peer), unknown connection.
    A reply that arrives after its call timed out is dropped and counted.

    Built-in methods on every node: "ping" (empty result), "info" (msgpack map:
    id, groups, headers, uptime_ms, stats) and "methods" (msgpack array of
    method names).

    Wire: a request is a REQUEST message (type = method, corr = call id,
    payload = msgpack args); the reply is a REPLY message with the same corr,
    type "zc.ok" (payload = msgpack result) or "zc.error" (payload = msgpack
    [code, message]); see docs/PROTOCOL.md.
*/
#ifndef ZC_RPC_H_INCLUDED
#define ZC_RPC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zc_node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_RPC_TIMEOUT_DEFAULT 5000

typedef enum {
    ZC_RPC_OK = 0,
    ZC_RPC_UNKNOWN_METHOD = 1,     //  the node has no such method
    ZC_RPC_HANDLER_ERROR = 2,      //  the handler failed (error_code, error)
    ZC_RPC_TIMEOUT = 3,            //  no reply in time
    ZC_RPC_PEER_GONE = 4,          //  the target left or died during the call
    ZC_RPC_NO_ROUTE = 5,           //  the target is not a peer
    ZC_RPC_UNKNOWN_CONNECTION = 6, //  no node holds that connection id
    ZC_RPC_INVALID = 7             //  bad method name, arguments or target
} zc_rpc_status_t;

typedef enum {
    ZC_RPC_NODE = 1,       //  one node, by id
    ZC_RPC_ALL_FIRST = 2,  //  every peer; done at the first successful reply
    ZC_RPC_ALL_GATHER = 3, //  every peer; every reply, or the timeout
    ZC_RPC_CONNECTION = 4  //  the node holding a connection id
} zc_rpc_target_t;

typedef struct _zc_rpc_call_t zc_rpc_call_t;
typedef struct _zc_rpc_request_t zc_rpc_request_t;

//  One node's answer to a call.
typedef struct {
    const char *node;  //  who answered
    int status;        //  zc_rpc_status_t
    int error_code;    //  the handler's code for ZC_RPC_HANDLER_ERROR
    const char *error; //  message for any status but OK
    const void *data;  //  the result (msgpack) for OK
    size_t size;
} zc_rpc_reply_t;

//  A method handler: answer with zc_rpc_respond or zc_rpc_fail before
//  returning (returning without either fails the call with "no result").
typedef void(zc_rpc_method_fn)(zc_rpc_request_t *request, void *arg);

//  Called on the node's thread when a started call completes. It must not
//  destroy the call (destroy it afterwards, e.g. from the application loop).
typedef void(zc_rpc_done_fn)(zc_node_t *node, zc_rpc_call_t *call, void *arg);

//  Before the first RPC use: handler threads (0 = inline). Default 2.
void zc_rpc_set_threads(zc_node_t *node, int threads);

//  Registers a method (a valid name, not a built-in). Returns 0, or -1 if the
//  name is invalid or taken.
int zc_rpc_register(zc_node_t *node, const char *method, zc_rpc_method_fn *fn, void *arg);

//  Request accessors, for handlers.
const char *zc_rpc_request_caller(zc_rpc_request_t *request);
const char *zc_rpc_request_method(zc_rpc_request_t *request);
const void *zc_rpc_request_args(zc_rpc_request_t *request);
size_t zc_rpc_request_size(zc_rpc_request_t *request);

//  Answers with a result (msgpack bytes, copied).
void zc_rpc_respond(zc_rpc_request_t *request, const void *result, size_t size);

//  Answers with an error code and message (copied).
void zc_rpc_fail(zc_rpc_request_t *request, int code, const char *message);

//  Starts a call: target kind, `to` (node id, connection id, or NULL for
//  all), method, msgpack args, timeout (0 = ZC_RPC_TIMEOUT_DEFAULT), and an
//  optional completion callback. Returns the call, owned by the caller, who
//  destroys it (even before it completes: the reply is then dropped).
zc_rpc_call_t *zc_rpc_start(zc_node_t *node, zc_rpc_target_t target, const char *to,
                            const char *method, const void *args, size_t size, int timeout_ms,
                            zc_rpc_done_fn *fn, void *arg);

//  Waits until the call completes, running the node meanwhile (unhandled
//  messages are kept for zc_node_recv). Returns the call's status.
int zc_rpc_wait(zc_node_t *node, zc_rpc_call_t *call);

//  zc_rpc_start + zc_rpc_wait: a blocking call. Returns the completed call.
zc_rpc_call_t *zc_rpc_call(zc_node_t *node, zc_rpc_target_t target, const char *to,
                           const char *method, const void *args, size_t size, int timeout_ms);

//  Returns 1 once the call has completed.
int zc_rpc_call_done(zc_rpc_call_t *call);

//  The call's status: OK if a reply succeeded (for GATHER: every peer
//  answered OK), else the first failure's status, or TIMEOUT.
int zc_rpc_call_status(zc_rpc_call_t *call);

//  Number of replies received, and the reply at index (owned by the call).
size_t zc_rpc_call_replies(zc_rpc_call_t *call);
const zc_rpc_reply_t *zc_rpc_call_reply(zc_rpc_call_t *call, size_t index);

//  Nodes that did not answer in time (GATHER and FIRST), and one by index.
size_t zc_rpc_call_missing(zc_rpc_call_t *call);
const char *zc_rpc_call_missing_node(zc_rpc_call_t *call, size_t index);

//  Destroys a call and sets *call_p to NULL; idempotent.
void zc_rpc_call_destroy(zc_rpc_call_t **call_p);

//  Returns a readable name for a status.
const char *zc_rpc_strstatus(int status);

//  Records in Redis that this node holds a connection id (for
//  ZC_RPC_CONNECTION calls), or forgets it. Returns 0, or -1 on a Redis error.
int zc_rpc_connection_add(zc_node_t *node, const char *connection);
int zc_rpc_connection_remove(zc_node_t *node, const char *connection);

//  Counters of this node's RPC.
typedef struct {
    uint64_t calls_started, calls_ok, calls_failed, calls_timed_out;
    uint64_t requests_handled, late_replies;
} zc_rpc_stats_t;
void zc_rpc_stats(zc_node_t *node, zc_rpc_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif
