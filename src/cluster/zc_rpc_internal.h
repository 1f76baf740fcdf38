/*  zc_rpc_internal — what the two halves of zc_rpc share (private).

    zc_rpc.c is the rpc itself and the serving side: the node's hook,
    methods, requests and their handler pool, built-ins, replies sent.
    zc_rpc_call.c is the calling side: calls, their targets, the replies
    they collect, deadlines. A call to this node is served here, and a
    reply to this node delivered here, through the functions below.

    Pending calls live in a slot table: a call's corr is its slot's index
    (low 32 bits, never 0, so no corr is 0) and how many calls the slot
    held before it (high 32 bits). A reply finds its call by indexing the
    table, with no key to format or hash, and a slot's count moves on when
    its call ends, so a late reply never matches the next call in that
    slot.
*/
#ifndef ZC_RPC_INTERNAL_H_INCLUDED
#define ZC_RPC_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <stdatomic.h>

#include "zc_failure.h"
#include "zc_pool.h"
#include "zc_rpc.h"
#include "zc_rpc_conn.h"

//  One entry of the pending-call table.
typedef struct {
    zc_rpc_call_t *call; //  NULL while free
    uint32_t generation; //  the high half of the corr of the call in it
} zc_rpc_slot_t;

struct _zc_rpc_t {
    zc_node_t *node;       //  NULL once the node is destroyed
    zhashx_t *methods;     //  name -> s_method_t
    zc_rpc_slot_t *slots;  //  pending calls, by the low half of their corr
    uint32_t slot_count;   //  slots allocated
    uint32_t slot_cursor;  //  the slot taken last
    size_t pending;        //  calls in the table
    int64_t next_deadline; //  no pending call expires before (zclock_mono ms): no scan until then
    int threads;
    zc_pool_t *pool; //  started by the first request a handler serves
    //  Finished requests come back from the pool on a lock-free stack; the
    //  thread that pushes onto an empty stack wakes the node's thread with
    //  wake_fd (an eventfd it polls), and counts that in wakes_sent so the
    //  node's thread knows when to clear it, without a system call to ask.
    _Atomic(zc_rpc_request_t *) finished;
    atomic_ulong wakes_sent;
    unsigned long wakes_cleared;
    int wake_fd;
    long in_pool;               //  requests on the pool not yet taken back from finished
    zc_rpc_conn_t *connections; //  the connection map, made on first use
    int64_t started;
    zc_rpc_stats_t stats;
    zc_failure_t failure; //  the last call's outcome
};

//  Serves a request for method from caller (this node's id for a call to
//  itself): at once for a built-in or an unknown method, else on the pool
//  or inline. The answer goes back with zc_rpc_deliver for a local caller.
void zc_rpc_serve(zc_rpc_t *self, const char *caller, const char *method, uint64_t corr,
                  const void *args, size_t size);

//  Gives one node's answer to the call with corr; an answer no call waits
//  for is counted late and dropped.
void zc_rpc_deliver(zc_rpc_t *self, const char *from, uint64_t corr, zc_error_t status, int code,
                    const char *error, const void *data, size_t size);

//  Fails the pending calls that wait on peer (removed, or unreachable
//  from here) with status and why.
void zc_rpc_calls_peer_failed(zc_rpc_t *self, const char *peer, zc_error_t status, const char *why);

//  Completes the calls past their deadline. Returns ms until the next
//  deadline, or -1 if none.
int zc_rpc_calls_expire(zc_rpc_t *self);

//  Completes every pending call as peer gone: the node is going.
void zc_rpc_calls_close(zc_rpc_t *self);

//  Frees the pending-call table (the rpc is being destroyed; no call is
//  pending any more).
void zc_rpc_calls_destroy(zc_rpc_t *self);

//  The connection map, made on first use; NULL (ZC_ERR_STATE on the rpc)
//  if the node is not started or is gone.
zc_rpc_conn_t *zc_rpc_connections(zc_rpc_t *self);

#endif
