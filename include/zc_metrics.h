/*  zc_metrics — a process's counters in the Prometheus text format.

    A zc_metrics_t reads the counters of the objects added to it (a node and
    its mesh, an RPC, a queue worker, a queue handle for the depths of every
    queue, a cache) each time zc_metrics_update is called, on the thread
    that owns them (a node's is its own thread: call it from the node's
    loop, about once a second). The snapshot is then:

    - served over HTTP, `GET /metrics` (zc_metrics_serve; `zcluster node
      --metrics-port`), from a thread of its own that only reads it;
    - and/or published to Redis for a supervisor (zc_metrics_publish): the
      master's admin API `GET /metrics` shows every worker's counters with
      a label worker="ID", and their sums without it.

    The families (names, labels, types) are listed in docs/METRICS.md.
*/
#ifndef ZC_METRICS_H_INCLUDED
#define ZC_METRICS_H_INCLUDED

#include "zc_cache.h"
#include "zc_error.h"
#include "zc_node.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zc_rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_metrics_t zc_metrics_t;

//  Creates an empty set of sources.
zc_metrics_t *zc_metrics_new(void);

//  Stops serving and publishing, destroys the object and sets *self_p to
//  NULL; idempotent. The sources are not destroyed.
void zc_metrics_destroy(zc_metrics_t **self_p);

//  The kind and message of the last failure.
zc_error_t zc_metrics_error(zc_metrics_t *self);
const char *zc_metrics_errstr(zc_metrics_t *self);

//  Sources, borrowed (each must outlive its use; NULL removes it).
void zc_metrics_set_node(zc_metrics_t *self, zc_node_t *node);
void zc_metrics_set_rpc(zc_metrics_t *self, zc_rpc_t *rpc);
void zc_metrics_set_worker(zc_metrics_t *self, zc_queue_worker_t *worker);
void zc_metrics_set_queue(zc_metrics_t *self, zc_queue_t *queue);
void zc_metrics_set_cache(zc_metrics_t *self, zc_cache_t *cache);

//  Reads every source into a new snapshot (and hands it to the publishing
//  thread, if asked: a slow Redis never stalls the caller). With a queue
//  set, it reads the queue depths from Redis here (a round trip per
//  queue). Returns 0, or -1 if the queue depths could not be read (the
//  rest of the snapshot is kept).
int zc_metrics_update(zc_metrics_t *self);

//  Returns the last snapshot in the Prometheus text format (version
//  0.0.4), a new string the caller frees.
char *zc_metrics_text(zc_metrics_t *self);

//  Serves GET /metrics on address (NULL: 127.0.0.1) and port (0: any free
//  one; see zc_metrics_port). Returns 0, or -1 (ZC_ERR_SYSTEM).
int zc_metrics_serve(zc_metrics_t *self, const char *address, int port);

//  Returns the port served, or -1.
int zc_metrics_port(zc_metrics_t *self);

//  From now on each update also stores the snapshot in the cluster's Redis
//  for the supervisor (key zc:{CLUSTER}:metrics:NODE_ID, expiring 10 s
//  after the last update), from a thread of its own; failures are logged
//  when they start and when they end. NULL URL, cluster or id: the
//  defaults ($ZC_REDIS_URL, $ZC_CLUSTER, $ZC_NODE_ID). Returns 0, or -1
//  (ZC_ERR_INVALID; ZC_ERR_STATE if publishing already).
int zc_metrics_publish(zc_metrics_t *self, const char *redis_url, const char *cluster,
                       const char *node_id);

#ifdef __cplusplus
}
#endif

#endif
