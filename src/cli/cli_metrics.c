/*  cli_metrics — the counters of a long-running CLI process (see the
    header). */
#include "cli_metrics.h"

#include <czmq.h>
#include <stdio.h>

zc_metrics_t *cli_metrics_new(const char *command, const cli_cluster_t *where, const char *id,
                              int64_t port)
{
    zc_metrics_t *metrics = zc_metrics_new();
    if (zc_metrics_publish(metrics, cli_cluster_redis(where), where->cluster, id))
        fprintf(stderr, "zcluster %s: %s\n", command, zc_metrics_errstr(metrics));
    if (port >= 0 && zc_metrics_serve(metrics, NULL, (int)port)) {
        fprintf(stderr, "zcluster %s: %s\n", command, zc_metrics_errstr(metrics));
        zc_metrics_destroy(&metrics);
    }
    return metrics;
}

void cli_metrics_tick(zc_metrics_t *metrics, int64_t *due_ms)
{
    if (!metrics || zclock_mono() < *due_ms) return;
    zc_metrics_update(metrics);
    *due_ms = zclock_mono() + 1000;
}
