/*  queue — enqueue jobs and drain them with a worker.

    Jobs are claimed atomically into the worker's in-flight set, so a job
    runs once in every run without a crash, and goes back to its queue if
    its worker dies. The worker runs handlers on threads of its own.

    Run: ZC_REDIS_URL=redis://127.0.0.1:6379 ./queue
*/
#include <zcluster.h>

#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define JOBS 5

static atomic_long s_total;

//  The "square" task: adds args^2 to the total.
static int s_square(zc_job_t *job, void *arg)
{
    size_t size;
    const void *args = zc_job_args(job, &size);
    msgpack_unpacked number;
    msgpack_unpacked_init(&number);
    int ok = msgpack_unpack_next(&number, args, size, NULL) == MSGPACK_UNPACK_SUCCESS &&
             number.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (ok) s_total += (long)(number.data.via.u64 * number.data.via.u64);
    msgpack_unpacked_destroy(&number);
    return ok ? 0 : -1;
}

int main(void)
{
    zc_queue_t *queue = zc_queue_new(NULL, "examples"); //  NULL: $ZC_REDIS_URL
    if (!queue) return 1;
    for (int i = 1; i <= JOBS; i++) {
        char args[1] = {(char)i}; //  a msgpack positive fixint
        if (zc_queue_enqueue(queue, "math", "square", args, 1, NULL, NULL)) {
            fprintf(stderr, "enqueue: %s\n", zc_queue_errstr(queue));
            zc_queue_destroy(&queue);
            return 1;
        }
    }
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, "queue-example");
    zc_queue_worker_register(worker, "square", s_square, NULL);
    zc_queue_worker_add_queue(worker, "math");
    if (zc_queue_worker_start(worker)) {
        fprintf(stderr, "worker: %s\n", zc_queue_worker_errstr(worker));
        zc_queue_worker_destroy(&worker);
        zc_queue_destroy(&queue);
        return 1;
    }
    zc_queue_stats_t stats = {0};
    for (int tries = 0; tries < 100; tries++) { //  up to 10 s
        zc_queue_stats(queue, "math", &stats);
        if (stats.queued == 0 && stats.inflight == 0) break;
        usleep(100 * 1000);
    }
    zc_queue_worker_destroy(&worker);
    printf("%lld jobs processed, sum of squares %ld\n", (long long)stats.processed, (long)s_total);
    zc_queue_destroy(&queue);
    return s_total == 55 ? 0 : 1;
}
