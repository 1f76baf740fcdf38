/*  zc_node_internal — the node's state, shared by the files of the class:
    zc_node.c (membership, messages, the cluster view) and zc_node_control.c
    (kill requests, confirmations, the reachability probe). Private to
    src/cluster.
*/
#ifndef ZC_NODE_INTERNAL_H_INCLUDED
#define ZC_NODE_INTERNAL_H_INCLUDED

#include "zc_actor.h"
#include "zc_failure.h"
#include "zc_node.h"
#include "zc_node_hook.h"
#include "zc_registry.h"

#include <jansson.h>

typedef struct {
    char inc[40];
    json_t *record;
    int reached;     //  it answered a probe: our publishes reach it
    int unreachable; //  its connection dropped and has not come back: suspected from here
} node_peer_t;

struct _zc_node_t {
    zc_mesh_t *mesh;
    zc_actor_t *registry;
    zc_node_hook_t hook;         //  the attached extension's callbacks
    int warned_no_rpc;           //  a request came with no extension to take it
    void *ext;                   //  the attached extension, or NULL
    int64_t registry_looked;     //  when the data path last asked the registry actor (ms)
    int registry_ready;          //  the node's last poll saw the registry actor readable
    int registry_drained;        //  read empty, not handed out since: its descriptor signals
    zc_registry_config_t config; //  its identity is filled by zc_node_start
    //  As set, one byte longer than zc_identity_t takes, so that a name or
    //  URL too long is refused at start rather than cut short here.
    char cluster[ZC_NAME_MAX + 2];
    char redis_url[1025];          //  "" for the default
    zc_security_t *security;       //  as set, or owned_security
    zc_security_t *owned_security; //  the default: $ZC_KEYS
    zhashx_t *mismatched;          //  ids of peers with other credentials, logged (set)
    json_t *headers;
    zhashx_t *groups;        //  set
    zhashx_t *peers;         //  id -> node_peer_t
    zhashx_t *tombstones;    //  incarnation -> expiry (ms, as intptr)
    zhashx_t *confirmations; //  name -> set of ids
    zlist_t *backlog;        //  zc_msg_t copies kept during waits
    zc_msg_t *current;       //  the backlog message last returned
    zc_node_events_t events;
    void *events_arg;
    zc_node_kill_fn *kill_fn;
    void *kill_arg;
    zc_node_reach_fn *reach_fn;
    void *reach_arg;
    int kill_code, kill_requested;
    int leader;
    uint64_t epoch;
    int redis_up;
    int started;
    int heartbeat_ivl, heartbeat_timeout;
    uint64_t unreachable_events; //  peers this node lost its connection to, since start
    zc_failure_t failure;        //  the last call's outcome
    zc_node_stats_t stats;
};

//  Registers the handlers of the reserved control messages (zc.kill,
//  zc.confirm, zc.probe, zc.reached) on the node's mesh.
void node_control_attach(zc_node_t *self);

#endif
