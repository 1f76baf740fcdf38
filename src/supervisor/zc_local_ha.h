/*  zc_local_ha — a private Redis master, its replicas and three sentinels,
    the local HA setup a master starts for `zcluster start --redis-replicas N`
    (internal to libzcluster).

    Every process is a zc_embedded_redis (a child of the master, SIGTERMed
    if the master dies) listening on a loopback port chosen free at start,
    with its configuration file, mode 0600, in the runtime directory. The
    workers get redis-sentinel://:PASSWORD@127.0.0.1:S1,...:S3/local.
*/
#ifndef ZC_LOCAL_HA_H_INCLUDED
#define ZC_LOCAL_HA_H_INCLUDED

#include "zc_embedded_redis.h"

#include <stddef.h>

#define ZC_LOCAL_HA_REPLICAS_MAX 8 //  replicas at most
#define ZC_LOCAL_HA_SENTINELS    3 //  the smallest set that survives losing one

typedef struct _zc_local_ha_t zc_local_ha_t;

//  Prepares a master and replicas (1..ZC_LOCAL_HA_REPLICAS_MAX) with their
//  files in dir (which must exist). Returns NULL if replicas is out of
//  range or dir too long.
zc_local_ha_t *zc_local_ha_new(const char *dir, int replicas);

//  Stops every process, removes their files, frees the set and sets
//  *self_p to NULL; idempotent.
void zc_local_ha_destroy(zc_local_ha_t **self_p);

//  Generates the password, picks the ports, writes the configuration files
//  and starts the master, the replicas and the sentinels, each given
//  wait_ms to answer PING. Returns 0, or -1 with a reason in err (what was
//  started is stopped again).
int zc_local_ha_start(zc_local_ha_t *self, int wait_ms, char *err, size_t errlen);

//  The number of processes: the servers (index 0 started as the master),
//  then the sentinels.
int zc_local_ha_count(zc_local_ha_t *self);

//  Process index (0..count-1), owned by the set.
zc_embedded_redis_t *zc_local_ha_process(zc_local_ha_t *self, int index);

//  The name of process index: "redis-1" (the first master), "redis-2"...,
//  "sentinel-1"...
const char *zc_local_ha_name(zc_local_ha_t *self, int index);

//  The loopback port of process index.
int zc_local_ha_port(zc_local_ha_t *self, int index);

//  Gets process index ready to start again after it died. A sentinel is
//  started with the file it keeps up to date. A server starts as a replica
//  of the master the sentinels name now, never as an empty master that the
//  others would copy: while the sentinels still name it and another server
//  runs, while the master they name is dead too, or while none answers,
//  returns 1 (try later). Only when every server died does the one they
//  name start as the master again (empty: nothing was left to copy).
//  Returns 0 when ready; -1 with a reason in err.
int zc_local_ha_prepare_restart(zc_local_ha_t *self, int index, char *err, size_t errlen);

//  The sentinel URL for the workers, with the password (a secret).
const char *zc_local_ha_url(zc_local_ha_t *self);

//  Stops the sentinels, then the servers (so none fails over on the way
//  out), each as zc_embedded_redis_stop, and removes their files.
void zc_local_ha_stop(zc_local_ha_t *self, int timeout_ms);

#endif
