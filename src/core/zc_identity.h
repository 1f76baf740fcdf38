/*  zc_identity — who a cluster-plane object is (private to libzcluster).

    Registry, RPC connection map, cache, queue, queue worker and supervisor
    events all name the same things: the cluster (one rule for its name),
    its key prefix in Redis, the Redis URL and the node acting. They take
    them from here, so the rule and the defaults are written once.

    Defaults, for an argument given as NULL: the URL from $ZC_REDIS_URL, the
    cluster from $ZC_CLUSTER, else "zcluster"; the node id from $ZC_NODE_ID,
    else none ("").

    Keys: every key of a cluster is "zc:{CLUSTER}:" + a suffix. The hash tag
    keeps a cluster's keys in one Redis Cluster slot, which also makes
    multi-key Lua scripts legal there. A cluster name is a valid wire name
    (1-255 bytes, no spaces or control characters, zc_wire_name_valid)
    without '{' or '}', which would break the hash tag.
*/
#ifndef ZC_IDENTITY_H_INCLUDED
#define ZC_IDENTITY_H_INCLUDED

#include "zc_redis.h"
#include "zc_wire.h"

#define ZC_CLUSTER_DEFAULT "zcluster"
//  "zc:{" + name + "}:" and a NUL.
#define ZC_PREFIX_MAX (4 + ZC_NAME_MAX + 2 + 1)

typedef struct {
    char redis_url[1024]; //  as given (may hold a password: never print it)
    zc_redis_url_t url;   //  parsed
    char cluster[ZC_NAME_MAX + 1];
    char prefix[ZC_PREFIX_MAX]; //  "zc:{CLUSTER}:"
    size_t prefix_len;
    char node_id[ZC_NAME_MAX + 1]; //  "" when none was given
} zc_identity_t;

//  Fills self from the arguments, each NULL taking its default (above).
//  Returns 0, or -1 with a reason in err: no Redis URL, a bad URL, an
//  invalid cluster name or node id.
int zc_identity_init(zc_identity_t *self, const char *redis_url, const char *cluster,
                     const char *node_id, char *err, size_t errlen);

//  Returns 1 if name is a valid cluster name.
int zc_identity_cluster_valid(const char *name);

//  Writes prefix + suffix into out (truncated to cap); returns out.
const char *zc_identity_key(const zc_identity_t *self, char *out, size_t cap, const char *suffix);

#endif
