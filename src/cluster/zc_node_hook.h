/*  zc_node_hook — how a class extends a node (private to libzcluster).

    The node knows nothing of what runs on top of it. An extension (RPC is
    the one today) attaches with a table of callbacks, all called on the
    node's thread from inside zc_node_recv (or zc_node_run):

    - message:      every message of the kinds it claims, instead of the
                    application (RPC claims REQUEST and REPLY);
    - peer_removed: a peer left the node's view, whatever the reason;
    - pollitem:     one item the node polls with its own sockets (e.g. the
                    socket where handler threads hand back their results);
    - tick:         called on every pass: does the work that is due and
                    returns the ms until its next deadline, or -1;
    - closed:       the node is being destroyed: the extension lets go of
                    it (it may still be destroyed later on its own);
    - peer_unreachable: a member's connection from here dropped (it stays a
                    member): what waits on it from here will not come.

    Why private: only libzcluster's own classes extend a node; keeping the
    seam out of include/ leaves it free to change with them. An extension
    includes this header; the node includes no extension's header, so the
    dependency runs one way (extension -> node).

    One extension at a time: ZC_NODE_POLLITEMS_MAX counts its poll item.
*/
#ifndef ZC_NODE_HOOK_H_INCLUDED
#define ZC_NODE_HOOK_H_INCLUDED

#include <jansson.h>

#include "zc_identity.h"
#include "zc_node.h"

typedef struct {
    unsigned kinds; //  bit (1u << kind) for each message kind claimed
    void (*message)(void *ext, const zc_msg_t *msg);
    void (*peer_removed)(void *ext, const char *peer_id);
    int (*pollitem)(void *ext, zmq_pollitem_t *item); //  fills item; returns 1, or 0 if none
    int (*tick)(void *ext);
    void (*closed)(void *ext);
    void (*peer_unreachable)(void *ext, const char *peer_id);
} zc_node_hook_t;

//  Attaches an extension: hook (copied) and its object ext, passed to every
//  callback (any callback may be NULL). Returns 0, or -1 if an extension is
//  already attached (zc_node_error says ZC_ERR_STATE).
int zc_node_attach(zc_node_t *node, const zc_node_hook_t *hook, void *ext);

//  Detaches the extension ext, if attached; its callbacks are not called
//  again.
void zc_node_detach(zc_node_t *node, void *ext);

//  Runs the node until something happened or timeout_ms passed, keeping
//  the messages no handler took for later zc_node_recv calls. An extension
//  that waits (zc_rpc_wait) calls this in a loop.
void zc_node_run(zc_node_t *node, int timeout_ms);

//  The node's identity (Redis URL, cluster, key prefix, node id) once
//  started; NULL before.
const zc_identity_t *zc_node_identity(zc_node_t *node);

//  The groups this node joined, as a new list of names the caller destroys.
zlist_t *zc_node_groups(zc_node_t *node);

//  The node's headers, a JSON object of strings (owned by the node; read
//  only).
const json_t *zc_node_headers(zc_node_t *node);

#endif
