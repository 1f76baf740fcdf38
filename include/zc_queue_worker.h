/*  zc_queue_worker — drains task queues (zc_queue.h) on threads of its own.

    A worker claims jobs from its queues, earlier queues first, runs each
    with the handler registered for its task, and reports the result to
    Redis: ack, retry with backoff, or the failed list. It holds up to
    `concurrency` jobs at once and runs their handlers on `threads` threads
    (a shared zc_pool; 0 runs them one after another on the claiming
    thread); a job it holds beyond its threads waits, leased, for a free
    one. With handler threads it also claims ahead: while its threads
    finish their jobs faster than a round trip to Redis, it holds up to 256
    more, claimed and acked in batches; once jobs wait for a thread it
    claims ahead at most what its threads finish in a round trip (slow jobs
    are not hoarded). While it holds a job it keeps renewing the job's
    lease, so a slow handler is never mistaken for a dead worker; a run
    that passes its timeout is reported failed and cancelled
    (zc_job_cancelled). Every worker also moves the cluster's delayed jobs
    and lost claims back to their queues and, one at a time, enqueues
    recurring tasks.

    Stopping (zc_queue_worker_stop or destroy) finishes the running
    handlers and gives the jobs not yet started back to their queues, so no
    job runs twice in a run without crashes.

    Errors: register, add_queue and start return -1 and leave the reason on
    the worker: zc_queue_worker_error() returns its kind (ZC_ERR_INVALID for
    a bad or repeated name, ZC_ERR_STATE when called after start or started
    twice, ZC_ERR_REDIS when Redis cannot be reached at start,
    ZC_ERR_SYSTEM when no thread could be started) and
    zc_queue_worker_errstr() a message. A call that succeeds sets ZC_OK.
    Once started, the worker rides out Redis failures by itself: a call
    that fails, or that Redis refuses (a queue key of the wrong type), is
    retried with a growing pause; each failure is counted (stats.errors),
    and logged when it starts or changes and when it ends, not on every
    retry. A job's result that cannot be delivered is kept and sent again.
*/
#ifndef ZC_QUEUE_WORKER_H_INCLUDED
#define ZC_QUEUE_WORKER_H_INCLUDED

#include "zc_error.h"
#include "zc_histogram.h"
#include "zc_job.h"
#include "zc_queue.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_queue_worker_t zc_queue_worker_t;

//  Runs one job. Returns 0 on success or -1 on failure (with
//  zc_job_set_error to say why). Runs on a worker thread; a handler that
//  may run long should return early once zc_job_cancelled() is true.
typedef int(zc_task_fn)(zc_job_t *job, void *arg);

//  Called on the handler's thread after each run, before the result is
//  sent to Redis, with the handler's result; rc is -1 for a run that timed
//  out (zc_job_error says which failure it was). The job is valid during
//  the call.
typedef void(zc_job_finished_fn)(zc_job_t *job, int rc, void *arg);

//  Local counters of a worker.
typedef struct {
    uint64_t claimed;    //  jobs claimed
    uint64_t succeeded;  //  runs acked
    uint64_t failed;     //  runs reported failed (timeouts included)
    uint64_t timed_out;  //  runs that passed their timeout
    uint64_t lost;       //  claims lost before their result was accepted
    uint64_t released;   //  claims given back: unstarted at stop, or stopped with their lease lost
    uint64_t running;    //  claims held now
    int scheduler;       //  1 if this worker holds the scheduler lease
    uint64_t lease_lost; //  claims held whose lease could not be renewed in time or was
                         //  taken back (their handlers were told: zc_job_lost)
    uint64_t errors;     //  calls to Redis that failed or were refused (a key of the wrong
                         //  type), and results put off; each was retried
    uint64_t executing;  //  handlers running now (the rest of `running` wait for a thread)
    zc_histogram_t run_time; //  handler runs, from start to return
} zc_queue_worker_stats_t;

//  Creates a worker with node id node_id that uses the Redis and cluster of
//  queue (copied: queue may be destroyed after). NULL takes $ZC_NODE_ID,
//  else generates an id. Node ids must be unique among live workers.
//  Returns NULL, after logging why, if node_id is invalid.
zc_queue_worker_t *zc_queue_worker_new(zc_queue_t *queue, const char *node_id);

//  Stops the worker (as zc_queue_worker_stop), destroys it and sets *self_p
//  to NULL; idempotent.
void zc_queue_worker_destroy(zc_queue_worker_t **self_p);

//  Returns the kind of the last failure of register, add_queue or start,
//  or ZC_OK if the last of those calls succeeded.
zc_error_t zc_queue_worker_error(zc_queue_worker_t *self);

//  Returns the message of that failure ("" if none); owned by the worker,
//  valid until its next call.
const char *zc_queue_worker_errstr(zc_queue_worker_t *self);

//  Returns the worker's node id.
const char *zc_queue_worker_id(zc_queue_worker_t *self);

//  Registers fn for task (before start). A job of an unknown task fails.
//  Returns 0, or -1 on an invalid or already registered name, or after start.
int zc_queue_worker_register(zc_queue_worker_t *self, const char *task, zc_task_fn *fn, void *arg);

//  Adds queue to the queues drained (before start); earlier queues have
//  priority. Returns 0, or -1 on an invalid or repeated name, or after start.
int zc_queue_worker_add_queue(zc_queue_worker_t *self, const char *queue);

//  Sets how many jobs the worker holds at once (claimed in one round trip
//  when free), besides those claimed ahead for its threads (see above),
//  1..1000; default 1. 0 drains nothing: the worker only promotes delayed
//  jobs, returns lost claims and runs the scheduler.
void zc_queue_worker_set_concurrency(zc_queue_worker_t *self, int concurrency);

//  Sets the handler threads, 0..256; default: as many as the concurrency.
//  0 runs handlers one after another on the claiming thread (fastest for
//  short jobs).
void zc_queue_worker_set_threads(zc_queue_worker_t *self, int threads);

//  Sets the claim lease in ms (before start; default 1500, 300..3600000):
//  the worker renews it every lease/4; a lease that lapses returns the job
//  to its queue, so a worker cut off from Redis for longer may lose its
//  jobs to other workers (its handlers are told: zc_job_lost). A longer
//  lease rides out longer outages; a shorter one returns the jobs of a
//  dead worker sooner.
void zc_queue_worker_set_lease(zc_queue_worker_t *self, int lease_ms);

//  Sets a callback for every finished run (before start).
void zc_queue_worker_on_finish(zc_queue_worker_t *self, zc_job_finished_fn *fn, void *arg);

//  Starts the worker's threads. Returns 0, or -1 if Redis cannot be reached
//  or it was started before.
int zc_queue_worker_start(zc_queue_worker_t *self);

//  Stops claiming, gives unstarted claims back, waits for running handlers
//  and reports their results, resigns the scheduler lease. Idempotent.
void zc_queue_worker_stop(zc_queue_worker_t *self);

//  Fills *stats with the worker's counters.
void zc_queue_worker_stats(zc_queue_worker_t *self, zc_queue_worker_stats_t *stats);

#ifdef __cplusplus
}
#endif

#endif
