/*  cli_metrics — the counters of a long-running CLI process (`zcluster
    node`, `zcluster worker`): published to Redis each second (for a
    master's GET /metrics and for `zcluster top`) and, with
    --metrics-port, served over HTTP. */
#ifndef CLI_METRICS_H_INCLUDED
#define CLI_METRICS_H_INCLUDED

#include "cli_args.h"
#include "zc_metrics.h"

//  Creates the process's metrics, published under node id in the cluster of
//  where, and served on port if it is >= 0. Returns NULL after saying why
//  ("zcluster COMMAND: ...") if the port cannot be served; a failure to
//  publish is said and not fatal. Set its sources next.
zc_metrics_t *cli_metrics_new(const char *command, const cli_cluster_t *where, const char *id,
                              int64_t port);

//  Takes a snapshot if *due_ms (zclock_mono ms) has passed, and sets the
//  next one a second later. metrics may be NULL.
void cli_metrics_tick(zc_metrics_t *metrics, int64_t *due_ms);

#endif
