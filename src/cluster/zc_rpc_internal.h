/*  zc_rpc_internal — what the two halves of zc_rpc share (private).

    zc_rpc.c is the rpc itself and the serving side: the node's hook,
    methods, requests and their handler pool, built-ins, replies sent.
    zc_rpc_call.c is the calling side: calls, their targets, the replies
    they collect, deadlines. A call to this node is served here, and a
    reply to this node delivered here, through the functions below.
*/
#ifndef ZC_RPC_INTERNAL_H_INCLUDED
#define ZC_RPC_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <pthread.h>

#include "zc_failure.h"
#include "zc_pool.h"
#include "zc_rpc.h"
#include "zc_rpc_conn.h"

struct _zc_rpc_t {
    zc_node_t *node;       //  NULL once the node is destroyed
    zhashx_t *methods;     //  name -> s_method_t
    zhashx_t *pending;     //  corr as hex -> zc_rpc_call_t (not owned)
    int64_t next_deadline; //  no pending call expires before (zclock_mono ms): no scan until then
    uint64_t next_corr;
    int threads;
    zc_pool_t *pool;            //  started by the first request a handler serves
    zsock_t *done;              //  PULL: finished requests, read on the node's thread
    zsock_t *done_push;         //  PUSH: shared by the pool's threads, one at a time
    pthread_mutex_t done_lock;  //  guards done_push
    long in_pool;               //  requests on the pool whose answer done has not given back
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

//  The connection map, made on first use; NULL (ZC_ERR_STATE on the rpc)
//  if the node is not started or is gone.
zc_rpc_conn_t *zc_rpc_connections(zc_rpc_t *self);

#endif
