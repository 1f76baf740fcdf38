/*  zc_rpc — cluster RPC over the DEALER/ROUTER plane.

    Only registered methods can be called: a request names a method, and a
    node without it answers "unknown method" at once. Calls go to one node,
    to all nodes (the first reply, or every reply plus the list of nodes
    that did not answer in time), or to the node that holds a connection id
    (connection ids map to node ids in Redis, at zc:{CLUSTER}:conn).

    A zc_rpc_t attaches to a node (zc_rpc_new) and serves and calls through
    it; a node has at most one. A node without one drops RPC traffic, so
    its callers time out: attach one to answer, built-ins included.

    Every call is a zc_rpc_call_t: start it with zc_rpc_start (non-blocking;
    an optional callback runs on the node's thread when it completes) and
    wait with zc_rpc_wait, or use zc_rpc_call, which does both. Completion
    happens inside zc_node_recv, so an event-loop service keeps calling
    zc_node_recv (or polls zc_node_pollitems) and never blocks.

    Threading model. Requests arrive on the node's thread. Handlers run on a
    small pool of threads (zc_rpc_set_threads, default 2; 0 runs them inline
    on the node's thread), so a slow handler holds one thread, not the
    node's messaging, and other calls go to the free threads. The reply is
    sent from the node's thread when the handler returns (inline, a reply
    to a peer goes out as the handler answers). A handler must not
    call zc_node_* or zc_rpc_* functions (other than the request's): the
    node belongs to its own thread.

    Outcomes of calls are zc_error_t kinds (zc_error.h), and errors come
    back as errors, never as timeouts: ZC_ERR_UNKNOWN_METHOD, ZC_ERR_HANDLER
    (with the handler's code and message), ZC_ERR_PEER_GONE (the call fails
    as soon as the registry removes the target), ZC_ERR_NO_ROUTE (not a
    peer), ZC_ERR_UNKNOWN_CONNECTION, ZC_ERR_INVALID (bad method name or
    target), ZC_ERR_TIMEOUT. A reply that arrives after its call timed out
    is dropped and counted. zc_strerror names them.

    Failures of the rpc's own functions (register, connection_add/remove,
    set_threads) return -1 and leave the reason on the rpc: zc_rpc_error,
    a zc_error_t, and zc_rpc_errstr.

    Built-in methods on every node with an RPC: "ping" (result nil),
    "info" (msgpack map: id, groups, headers, uptime_ms, stats) and
    "methods" (msgpack array of method names).

    Wire: a request is a REQUEST message (type = method, corr = call id,
    payload = msgpack args); the reply is a REPLY message with the same corr,
    type "zc.ok" (payload = msgpack result) or "zc.error" (payload = msgpack
    [status, code, message], status a number: 1 unknown method, 2 handler
    error, 3 timeout, 4 peer gone, 5 no route, 6 unknown connection,
    7 invalid; code is the handler's, 0 unless status is 2). A peer in
    another language speaks this from docs/PROTOCOL.md section 12, whose
    vectors tests/test_rpc_wire.c checks against a C node.
*/
#ifndef ZC_RPC_H_INCLUDED
#define ZC_RPC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "zc_error.h"
#include "zc_histogram.h"
#include "zc_node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_RPC_TIMEOUT_DEFAULT 5000

typedef enum {
    ZC_RPC_NODE = 1,       //  one node, by id
    ZC_RPC_ALL_FIRST = 2,  //  every peer; done at the first successful reply
    ZC_RPC_ALL_GATHER = 3, //  every peer; every reply, or the timeout
    ZC_RPC_CONNECTION = 4  //  the node holding a connection id
} zc_rpc_target_t;

typedef struct _zc_rpc_t zc_rpc_t;
typedef struct _zc_rpc_call_t zc_rpc_call_t;
typedef struct _zc_rpc_request_t zc_rpc_request_t;

//  One node's answer to a call.
typedef struct {
    const char *node;  //  who answered
    zc_error_t status; //  ZC_OK, or what went wrong with this node
    int error_code;    //  the handler's code for ZC_ERR_HANDLER
    const char *error; //  message for any status but ZC_OK
    const void *data;  //  the result (msgpack) for ZC_OK
    size_t size;
} zc_rpc_reply_t;

//  A method handler: answer with zc_rpc_respond or zc_rpc_fail before
//  returning (returning without either fails the call with "no result").
typedef void(zc_rpc_method_fn)(zc_rpc_request_t *request, void *arg);

//  Called on the node's thread when a started call completes. It must not
//  destroy the call (destroy it afterwards, e.g. from the application loop).
typedef void(zc_rpc_done_fn)(zc_rpc_t *rpc, zc_rpc_call_t *call, void *arg);

//  Creates the node's RPC and attaches it to the node (before or after
//  zc_node_start). Returns NULL if the node already has one.
zc_rpc_t *zc_rpc_new(zc_node_t *node);

//  Detaches from the node, fails the pending calls (ZC_ERR_PEER_GONE, their
//  callbacks run), waits for running handlers, frees the rpc and sets
//  *self_p to NULL; idempotent. Destroy it before or after the node: a node
//  destroyed first does the detaching, and the rpc then only frees.
void zc_rpc_destroy(zc_rpc_t **self_p);

//  The node this rpc is attached to, or NULL once the node is destroyed.
zc_node_t *zc_rpc_node(zc_rpc_t *self);

//  The kind of the last failure (ZC_OK after a success), and its message
//  (owned by the rpc, valid until its next call).
zc_error_t zc_rpc_error(zc_rpc_t *self);
const char *zc_rpc_errstr(zc_rpc_t *self);

//  Before the first request: handler threads, 0..64 (0 = inline). Default 2.
//  Returns 0, or -1 if out of range (ZC_ERR_INVALID) or the threads already
//  started (ZC_ERR_STATE).
int zc_rpc_set_threads(zc_rpc_t *self, int threads);

//  Registers a method. Returns 0, or -1 if the name is invalid or reserved
//  ("zc." prefix) or fn is NULL (ZC_ERR_INVALID), or the name is taken by a
//  method or a built-in (ZC_ERR_DUPLICATE).
int zc_rpc_register(zc_rpc_t *self, const char *method, zc_rpc_method_fn *fn, void *arg);

//  Request accessors, for handlers.
const char *zc_rpc_request_caller(zc_rpc_request_t *request);
const char *zc_rpc_request_method(zc_rpc_request_t *request);
const void *zc_rpc_request_args(zc_rpc_request_t *request);
size_t zc_rpc_request_size(zc_rpc_request_t *request);

//  Answers with a result (msgpack bytes, copied).
void zc_rpc_respond(zc_rpc_request_t *request, const void *result, size_t size);

//  Answers with an error code and message (copied): ZC_ERR_HANDLER.
void zc_rpc_fail(zc_rpc_request_t *request, int code, const char *message);

//  Starts a call: target kind, `to` (node id, connection id, or NULL for
//  all), method, msgpack args, timeout (0 = ZC_RPC_TIMEOUT_DEFAULT), and an
//  optional completion callback. Returns the call, owned by the caller, who
//  destroys it (even before it completes: the reply is then dropped). A
//  call that cannot start completes at once with its status.
zc_rpc_call_t *zc_rpc_start(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                            const char *method, const void *args, size_t size, int timeout_ms,
                            zc_rpc_done_fn *fn, void *arg);

//  Waits until the call completes, running the node meanwhile (unhandled
//  messages are kept for zc_node_recv). Returns the call's status.
zc_error_t zc_rpc_wait(zc_rpc_t *self, zc_rpc_call_t *call);

//  zc_rpc_start + zc_rpc_wait: a blocking call. Returns the completed call.
zc_rpc_call_t *zc_rpc_call(zc_rpc_t *self, zc_rpc_target_t target, const char *to,
                           const char *method, const void *args, size_t size, int timeout_ms);

//  Returns 1 once the call has completed.
int zc_rpc_call_done(zc_rpc_call_t *call);

//  The call's outcome: ZC_OK if a reply succeeded (for GATHER: every peer
//  answered OK), else the first failure's status, or ZC_ERR_TIMEOUT.
//  ZC_ERR_STATE while the call has not completed.
zc_error_t zc_rpc_call_status(zc_rpc_call_t *call);

//  Number of replies received, and the reply at index (owned by the call).
size_t zc_rpc_call_replies(zc_rpc_call_t *call);
const zc_rpc_reply_t *zc_rpc_call_reply(zc_rpc_call_t *call, size_t index);

//  Nodes that did not answer in time (GATHER and FIRST), and one by index.
size_t zc_rpc_call_missing(zc_rpc_call_t *call);
const char *zc_rpc_call_missing_node(zc_rpc_call_t *call, size_t index);

//  Destroys a call and sets *call_p to NULL; idempotent.
void zc_rpc_call_destroy(zc_rpc_call_t **call_p);

//  Records in Redis that this node holds a connection id (for
//  ZC_RPC_CONNECTION calls), or forgets it (only if this node holds it).
//  Returns 0, or -1: an empty id (ZC_ERR_INVALID), a node not started or
//  destroyed (ZC_ERR_STATE), Redis unreachable or refusing (ZC_ERR_REDIS).
int zc_rpc_connection_add(zc_rpc_t *self, const char *connection);
int zc_rpc_connection_remove(zc_rpc_t *self, const char *connection);

//  Counters of this node's RPC.
typedef struct {
    uint64_t calls_started, calls_ok, calls_failed, calls_timed_out;
    uint64_t requests_handled, late_replies;
    zc_histogram_t latency; //  completed calls, from start to completion
} zc_rpc_stats_t;
void zc_rpc_stats(zc_rpc_t *self, zc_rpc_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif
