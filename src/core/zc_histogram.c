/*  zc_histogram — fixed-bucket histograms of durations (see the header). */
#include "zc_histogram.h"

#include <assert.h>

static const double s_bounds[ZC_HISTOGRAM_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

double zc_histogram_bound(int i)
{
    assert(i >= 0 && i < ZC_HISTOGRAM_BUCKETS);
    return s_bounds[i];
}

void zc_histogram_observe(zc_histogram_t *self, double seconds)
{
    assert(self);
    self->count++;
    self->sum += seconds;
    for (int i = 0; i < ZC_HISTOGRAM_BUCKETS; i++)
        if (seconds <= s_bounds[i]) {
            self->buckets[i]++;
            return;
        }
}
