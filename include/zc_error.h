/*  zc_error — the one error convention of the cluster plane's public API.

    A function that can fail returns -1 (or NULL where it returns a pointer)
    and leaves the reason on its object, as hiredis does on its context:
    zc_X_error(self) returns the kind, one of zc_error_t below, and
    zc_X_errstr(self) a message that says what failed (owned by the object,
    valid until its next call). A call that succeeds sets the kind to ZC_OK.
    Distinct kinds stay distinct, so a caller can tell "locked" from "Redis
    down" without parsing text.

    The messaging plane (zc_mesh_*) keeps errno instead: its send and
    receive are the hot path, and errno costs nothing there. A completed
    RPC call carries its own outcome (zc_rpc_call_status), one of the same
    kinds.
*/
#ifndef ZC_ERROR_H_INCLUDED
#define ZC_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZC_OK = 0,
    ZC_ERR_INVALID = 1,            //  a bad argument: name, key, option, value
    ZC_ERR_REDIS = 2,              //  Redis unreachable, timed out, or answered an error
    ZC_ERR_MISSING = 3,            //  no such key, job, worker, lock or method
    ZC_ERR_LOCKED = 4,             //  the key is locked by another node
    ZC_ERR_TYPE = 5,               //  the key holds another kind of data
    ZC_ERR_TIMEOUT = 6,            //  nothing came in time
    ZC_ERR_CORRUPT = 7,            //  a file or a stored value is damaged
    ZC_ERR_IO = 8,                 //  a file cannot be read or written
    ZC_ERR_DUPLICATE = 9,          //  a live job already has that id
    ZC_ERR_STATE = 10,             //  not now: not started, already started, stopping
    ZC_ERR_SYSTEM = 11,            //  the operating system refused (bind, fork, ...)
    ZC_ERR_UNKNOWN_METHOD = 12,    //  RPC: the node has no such method
    ZC_ERR_HANDLER = 13,           //  RPC: the handler failed (code and message)
    ZC_ERR_PEER_GONE = 14,         //  RPC: the target left or died during the call
    ZC_ERR_NO_ROUTE = 15,          //  the target is not a peer
    ZC_ERR_UNKNOWN_CONNECTION = 16 //  RPC: no node holds that connection id
} zc_error_t;

//  Returns a short lowercase name for an error kind ("locked", "redis"...),
//  or "unknown" for a value that is not a kind.
const char *zc_strerror(int kind);

#ifdef __cplusplus
}
#endif

#endif
