/*  zc_histogram — a fixed-bucket histogram of durations, as the counters
    of zc_rpc (call latency) and zc_queue_worker (job run time) keep them
    and zc_metrics exposes them (Prometheus histograms).

    The bounds are fixed, in seconds, from 0.5 ms to 10 s, so that the
    histograms of every node and worker add up bucket by bucket.
*/
#ifndef ZC_HISTOGRAM_H_INCLUDED
#define ZC_HISTOGRAM_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_HISTOGRAM_BUCKETS 14

typedef struct {
    //  observations <= zc_histogram_bound(i) and above the bound before
    //  (not cumulative); longer than the last bound only count in count
    uint64_t buckets[ZC_HISTOGRAM_BUCKETS];
    uint64_t count; //  every observation
    double sum;     //  their sum, in seconds
} zc_histogram_t;

//  Returns the upper bound of bucket i, in seconds.
double zc_histogram_bound(int i);

//  Records one duration in seconds.
void zc_histogram_observe(zc_histogram_t *self, double seconds);

#ifdef __cplusplus
}
#endif

#endif
