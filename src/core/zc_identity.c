/*  zc_identity — who a cluster-plane object is. See zc_identity.h. */
#include "zc_identity.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zc_identity_cluster_valid(const char *name)
{
    return zc_wire_name_valid(name) && !strpbrk(name, "{}");
}

int zc_identity_init(zc_identity_t *self, const char *redis_url, const char *cluster,
                     const char *node_id, char *err, size_t errlen)
{
    assert(self);
    memset(self, 0, sizeof *self);
    if (!redis_url) redis_url = getenv("ZC_REDIS_URL");
    //  Only a missing argument takes the default: an empty one is an invalid
    //  name (an empty $ZC_CLUSTER counts as unset).
    if (!cluster) {
        cluster = getenv("ZC_CLUSTER");
        if (!cluster || !*cluster) cluster = ZC_CLUSTER_DEFAULT;
    }
    if (!node_id) node_id = getenv("ZC_NODE_ID");
    if (!redis_url || !*redis_url) {
        snprintf(err, errlen, "no Redis URL (give one, or set ZC_REDIS_URL)");
        return -1;
    }
    if (strlen(redis_url) >= sizeof self->redis_url) {
        snprintf(err, errlen, "Redis URL too long");
        return -1;
    }
    if (zc_redis_url_parse(redis_url, &self->url, err, errlen)) return -1;
    if (!zc_identity_cluster_valid(cluster)) {
        snprintf(err, errlen,
                 "invalid cluster name '%.100s' (1-255 bytes, no spaces, control characters, "
                 "'{' or '}')",
                 cluster);
        return -1;
    }
    if (node_id && *node_id && !zc_wire_name_valid(node_id)) {
        snprintf(err, errlen,
                 "invalid node id '%.100s' (1-255 bytes, no spaces or control "
                 "characters)",
                 node_id);
        return -1;
    }
    snprintf(self->redis_url, sizeof self->redis_url, "%s", redis_url);
    snprintf(self->cluster, sizeof self->cluster, "%s", cluster);
    zc_redis_url_set_tag(&self->url, cluster); //  the slot a Redis Cluster URL follows
    self->prefix_len = (size_t)snprintf(self->prefix, sizeof self->prefix, "zc:{%s}:", cluster);
    snprintf(self->node_id, sizeof self->node_id, "%s", node_id ? node_id : "");
    return 0;
}

const char *zc_identity_key(const zc_identity_t *self, char *out, size_t cap, const char *suffix)
{
    assert(self && out);
    snprintf(out, cap, "%s%s", self->prefix, suffix ? suffix : "");
    return out;
}
