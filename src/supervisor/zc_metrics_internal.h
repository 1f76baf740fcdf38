/*  zc_metrics_internal — what zc_metrics lends the supervisor's GET
    /metrics (zc_supervisor_metrics.c): samples as data, and their
    rendering. Private to libzcluster.
*/
#ifndef ZC_METRICS_INTERNAL_H_INCLUDED
#define ZC_METRICS_INTERNAL_H_INCLUDED

#include "zc_queue.h"

#include <jansson.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

//  Appends the sample [name, labels, value] to samples (labels: the text
//  inside the braces, e.g. kind="public"; NULL or "" for none).
void metrics_add(json_t *samples, const char *name, const char *labels, double value);

//  Appends the depth and counters of every queue of the cluster. Returns
//  0, or -1 (the queue's failure says why).
int metrics_add_queues(json_t *samples, zc_queue_t *queue);

//  Renders samples in the Prometheus text format, family by family with
//  their HELP and TYPE; a new string the caller frees (NULL if out of
//  memory). Samples of no known family are left out.
char *metrics_render(const json_t *samples);

#endif
