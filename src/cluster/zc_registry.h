/*  zc_registry — the background actor that keeps a node in the Redis
    registry (internal to libzcluster; zc_node is its only user).

    Pipe protocol (CZMQ zstr frames):

    node -> actor:  GROUPS <space-separated groups>   record update, announced
                    SUSPECT <id> <inc>                 a peer's connection dropped: vote
                                                       for its removal (renewed every tick)
                    TRUST <id>                         its connection is back: withdraw it
                    $TERM                              deregister and exit
    actor -> node:  ADD <id> <inc> <pub> <router> <curve> <record-json>
                    REMOVE <id> <inc> <reason>         reason: left, expired, crashed
                    DROP <id> <inc> <reason>           missing from the registry for a
                                                       TTL: removed, no tombstone
                    LEADER <1|0> <epoch>               this node was promoted/demoted
                    REDIS <up|down>                    the registry connection changed
                    INC <incarnation>                  this node re-registered anew
*/
#ifndef ZC_REGISTRY_H_INCLUDED
#define ZC_REGISTRY_H_INCLUDED

#include <czmq.h>

#include "zc_identity.h"

typedef struct {
    zc_identity_t identity; //  Redis URL, cluster and key prefix, node id
    char inc[40];           //  incarnation: tells a restarted node from its earlier self
    char host[256];
    char pub[256], router[256], curve[41];
    char groups[4096];
    char headers[4096]; //  JSON object
    char version[32];
    int pid;
    int64_t started_ms;
    int lease_ttl_ms;
    int election; //  compete for leadership
} zc_registry_config_t;

//  The actor body for zc_actor_new; args is a zc_registry_config_t * that the
//  actor copies before signalling ready.
void zc_registry_actor(zsock_t *pipe, void *args);

#endif
