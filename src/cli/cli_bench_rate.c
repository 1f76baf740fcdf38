/*  zcluster bench --rate: a fixed offered load, without coordinated omission.

    The sender works out when each message is due (start + i / rate) and
    writes that intended time into the payload; whoever takes the message
    (a receiver, or the caller when an echo returns) measures latency from
    it, not from when the message actually left. A sender that falls behind
    sends at once and its lateness counts as latency, as a user at that
    offered load would see it; a sender that waits for a reply before the
    next call would instead hide the queue it builds (coordinated omission).

    Every process runs on one machine, so CLOCK_MONOTONIC is one clock for
    senders and receivers alike.
*/
#include "cli_bench.h"

#include <string.h>
#include <sys/prctl.h>
#include <time.h>

void bench_stamp(char *payload, int64_t intended)
{
    memcpy(payload + 1, &intended, sizeof intended);
}

int64_t bench_stamp_read(const char *payload)
{
    int64_t intended;
    memcpy(&intended, payload + 1, sizeof intended);
    return intended;
}

int64_t bench_intended(const bench_options_t *opt, int64_t start, long i)
{
    return start + (int64_t)((double)i * 1e9 / opt->rate);
}

//  wait's millisecond timeouts stop 2 ms early: a wake-up can come late by
//  that much on a busy machine, and a late send counts as latency. Closer
//  in, the sender naps BENCH_PACE_NAP_NS at a time rather than spin: on a
//  small machine a spinning sender would take the CPU that the receivers
//  and libzmq's I/O threads need. A reply that comes during a nap is taken
//  up to that much late, on both sides alike.
#define BENCH_PACE_NEAR_NS 2000000
#define BENCH_PACE_NAP_NS  20000

void bench_pace(int64_t intended, bench_wait_fn *wait, void *arg)
{
    static int slack_set;
    if (!slack_set) {
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); //  naps of 20 us, not 20 + 50
        slack_set = 1;
    }
    int64_t now;
    while ((now = bench_now_ns()) < intended) {
        int64_t ahead = intended - now;
        if (ahead > BENCH_PACE_NEAR_NS) {
            wait(arg, (int)((ahead - BENCH_PACE_NEAR_NS) / 1000000) + 1);
            continue;
        }
        wait(arg, 0);
        int64_t nap = intended - bench_now_ns();
        if (nap <= 0) break;
        struct timespec ts = {0, nap < BENCH_PACE_NAP_NS ? nap : BENCH_PACE_NAP_NS};
        nanosleep(&ts, NULL);
    }
}
