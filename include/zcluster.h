/*  zcluster — one include for the whole library.

    Messaging plane (no Redis): zc_wire, zc_security, zc_mesh, zc_log.
    Cluster plane: zc_redis (where Redis is), zc_node (registry membership,
    failure detection, leader election), zc_rpc (cluster RPC), zc_cache
    (shared cache: values, lists, locks, dump/restore), zc_queue (task queue),
    zc_queue_worker (drains it), zc_job (a job as its handler sees it),
    zc_supervisor (worker processes under a master, and their ready signal).
*/
#ifndef ZCLUSTER_H_INCLUDED
#define ZCLUSTER_H_INCLUDED

#include "zc_version.h"
#include "zc_error.h"
#include "zc_log.h"
#include "zc_wire.h"
#include "zc_security.h"
#include "zc_mesh.h"

#include "zc_node.h"
#include "zc_rpc.h"
#include "zc_cache.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zc_supervisor.h"
#include "zc_metrics.h"

#endif
