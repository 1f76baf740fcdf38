/*  zc_rpc_conn — the RPC connection map (private to libzcluster; zc_rpc
    is its user).

    An application that holds client connections (websockets, sessions)
    records which node holds each connection id, so a call can be routed to
    "the node holding connection X" (ZC_RPC_CONNECTION). The map is one
    Redis hash per cluster, zc:{CLUSTER}:conn, connection id -> node id,
    reached through a zc_redis_t of its own (made on first use, remade with
    backoff after a failure).
*/
#ifndef ZC_RPC_CONN_H_INCLUDED
#define ZC_RPC_CONN_H_INCLUDED

#include "zc_identity.h"

typedef struct _zc_rpc_conn_t zc_rpc_conn_t;

//  Creates the map of identity's cluster, for identity's node (copied).
//  Does not connect yet. Never NULL.
zc_rpc_conn_t *zc_rpc_conn_new(const zc_identity_t *identity);

//  Closes and frees the map and sets *self_p to NULL; idempotent.
void zc_rpc_conn_destroy(zc_rpc_conn_t **self_p);

//  Records that this node holds connection. Returns 0, or -1 if Redis is
//  unreachable or refuses (zc_rpc_conn_errstr says why).
int zc_rpc_conn_add(zc_rpc_conn_t *self, const char *connection);

//  Forgets connection if this node holds it (another node may have taken
//  it over since). Returns 0, or -1 as zc_rpc_conn_add.
int zc_rpc_conn_remove(zc_rpc_conn_t *self, const char *connection);

//  Looks up the node holding connection. Returns 0 and fills owner, 1 if
//  no node holds it, or -1 if Redis is unreachable or the entry is bad.
int zc_rpc_conn_owner(zc_rpc_conn_t *self, const char *connection, char *owner, size_t cap);

//  The reason of the last -1 (never holds a password).
const char *zc_rpc_conn_errstr(zc_rpc_conn_t *self);

#endif
