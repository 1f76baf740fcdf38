/*  zc_queue — a reliable task queue in Redis, drained by workers on every node.

    A job is a task name, msgpack arguments and an id, put on a named queue.
    Workers on any number of nodes claim jobs into their own in-flight set
    with a lease they keep renewing; a job is acked when its handler returns
    0, retried with exponential backoff when it fails, and moved to the
    queue's failed list, with its error, once it has failed max_attempts
    times. When a worker dies its lease lapses and any node's worker puts its
    jobs back on their queue (about 1.5 s); zc_queue_requeue_node() does so
    at once. Every change is one Lua script, so no job is lost or doubled by
    a race between nodes, and a job runs exactly once in a run without
    crashes. docs/QUEUE.md describes the keys in Redis and the guarantees.

    Two classes: zc_queue_t puts jobs on queues and administers them (one
    Redis connection; use it from one thread at a time); zc_queue_worker_t
    drains queues on background threads of its own. zc_job_t is a job as a
    handler sees it.

    Names: queue and task names are 1..ZC_QUEUE_NAME_MAX characters of
    [A-Za-z0-9_.-]; job ids and node ids are 1..ZC_JOB_ID_MAX printable
    characters without spaces or braces. Times given "at" are Redis's clock,
    in ms since the epoch (zc_queue_now_ms), so nodes with skewed clocks
    agree.
*/
#ifndef ZC_QUEUE_H_INCLUDED
#define ZC_QUEUE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_QUEUE_NAME_MAX 100
#define ZC_JOB_ID_MAX     200
#define ZC_JOB_ERROR_MAX  255

//  zc_queue_enqueue*() result when a live job already has the given id.
#define ZC_QUEUE_DUPLICATE 1

typedef struct _zc_queue_t zc_queue_t;
typedef struct _zc_queue_worker_t zc_queue_worker_t;
typedef struct _zc_job_t zc_job_t;

//  Options of a job; a zeroed struct (or NULL) means every default.
typedef struct {
    const char *id;     //  job id for dedupe; NULL generates one
    int max_attempts;   //  runs that may fail before the failed list; 0 = 3
    int64_t backoff_ms; //  delay before the first retry, doubled per retry; 0 = 1000
    int64_t timeout_ms; //  a run that takes longer fails ("timed out"); 0 = no limit
} zc_job_opts_t;

//  One job of a zc_queue_enqueue_many() batch.
typedef struct {
    const void *args; //  msgpack bytes, may be NULL
    size_t args_size;
    const char *id; //  job id, or NULL to generate one
} zc_queue_item_t;

//  Counters and gauges of one queue.
typedef struct {
    int64_t queued;      //  ready to run
    int64_t delayed;     //  waiting for their time, retries in backoff included
    int64_t inflight;    //  claimed by a worker
    int64_t processed;   //  runs that succeeded, ever
    int64_t failed;      //  jobs moved to the failed list, ever
    int64_t failed_list; //  jobs on the failed list now
    int64_t retried;     //  failed runs that were scheduled for a retry
    int64_t requeued;    //  claims returned to the queue after their worker was lost
    int64_t lost_acks;   //  results whose claim had been lost: ignored (a possible double)
} zc_queue_stats_t;

//  One job on a failed list.
typedef struct {
    char id[ZC_JOB_ID_MAX + 1];
    char task[ZC_QUEUE_NAME_MAX + 1];
    char error[ZC_JOB_ERROR_MAX + 1];
    int attempts;      //  runs started
    int64_t failed_ms; //  Redis time when it failed
} zc_queue_failure_t;

//  --------------------------------------------------------------------------
//  zc_queue_t: enqueue and administer

//  Creates a handle on the queues of cluster (keys under zc:{CLUSTER}:) in
//  the Redis at redis_url (NULL takes $ZC_REDIS_URL). Connects lazily and
//  reconnects after errors. Returns NULL if the URL or cluster name is invalid.
zc_queue_t *zc_queue_new(const char *redis_url, const char *cluster);

//  Closes the connection, destroys the handle and sets *self_p to NULL; idempotent.
void zc_queue_destroy(zc_queue_t **self_p);

//  Returns the message of the last error on this handle ("" if none); valid
//  until the next call.
const char *zc_queue_error(zc_queue_t *self);

//  Returns the cluster name.
const char *zc_queue_cluster(zc_queue_t *self);

//  Returns the Redis URL.
const char *zc_queue_redis_url(zc_queue_t *self);

//  Returns Redis's clock in ms since the epoch, or -1 on error.
int64_t zc_queue_now_ms(zc_queue_t *self);

//  Enqueues a job of task on queue to run now; args (msgpack, may be NULL)
//  are copied. If id_out is not NULL it receives the job id (ZC_JOB_ID_MAX +
//  1 bytes). Returns 0, ZC_QUEUE_DUPLICATE (nothing changed) if a live job
//  — queued, delayed, in flight or failed — already has opts->id, or -1.
int zc_queue_enqueue(zc_queue_t *self, const char *queue, const char *task, const void *args,
                     size_t args_size, const zc_job_opts_t *opts, char *id_out);

//  Like zc_queue_enqueue, to run at at_ms (Redis time, ms since the epoch).
int zc_queue_enqueue_at(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t at_ms, const zc_job_opts_t *opts, char *id_out);

//  Like zc_queue_enqueue, to run delay_ms from now (Redis time).
int zc_queue_enqueue_in(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t delay_ms, const zc_job_opts_t *opts,
                        char *id_out);

//  Enqueues count jobs of one task with the same options (opts->id is
//  ignored; each item has its own) in as few round trips as it can. If
//  results is not NULL, results[i] is 0 or ZC_QUEUE_DUPLICATE. Returns the
//  number of jobs enqueued, or -1 (then some batches may have been enqueued).
int zc_queue_enqueue_many(zc_queue_t *self, const char *queue, const char *task,
                          const zc_queue_item_t *items, size_t count, const zc_job_opts_t *opts,
                          int *results);

//  Defines (or redefines) the recurring task name: a job of task on queue
//  every every_ms, first at the next scheduler tick. One worker at a time
//  (the holder of the scheduler lease) enqueues it, with the id
//  "every:NAME:SLOT"; a slot is skipped while the previous job is still
//  live, so slow jobs never pile up. Returns 0 or -1.
int zc_queue_every(zc_queue_t *self, const char *name, const char *queue, const char *task,
                   const void *args, size_t args_size, int64_t every_ms, const zc_job_opts_t *opts);

//  Removes the recurring task name. Returns 1 if it existed, 0 if not, -1 on error.
int zc_queue_every_remove(zc_queue_t *self, const char *name);

//  Fills *stats for queue (zeros for a queue never used). Returns 0 or -1.
int zc_queue_stats(zc_queue_t *self, const char *queue, zc_queue_stats_t *stats);

//  Fills up to max entries of queue's failed list, newest first. Returns
//  the number filled, or -1.
int zc_queue_failed(zc_queue_t *self, const char *queue, zc_queue_failure_t *out, int max);

//  Puts a job from queue's failed list back on the queue with a fresh count
//  of attempts. Returns 0, or -1 if it is not on that failed list or on error.
int zc_queue_retry(zc_queue_t *self, const char *queue, const char *id);

//  Deletes queue: its ready, delayed, in-flight and failed jobs, its
//  counters and the recurring tasks that feed it. Results of its jobs still
//  running are ignored. Returns the number of jobs deleted, or -1.
int64_t zc_queue_delete(zc_queue_t *self, const char *queue);

//  Returns the jobs claimed by node_id to their queues at once (for a node
//  known to be gone; the registry calls it when a peer is removed). A live
//  node's later results for them are ignored. Returns the number, or -1.
int64_t zc_queue_requeue_node(zc_queue_t *self, const char *node_id);

//  --------------------------------------------------------------------------
//  zc_queue_worker_t: drain queues

//  Runs one job. Returns 0 on success or -1 on failure (with
//  zc_job_set_error to say why). Runs on a worker thread; a handler that
//  may run long should return early once zc_job_cancelled() is true.
typedef int(zc_task_fn)(zc_job_t *job, void *arg);

//  Called on the handler's thread after each run, before the result is
//  sent to Redis, with the handler's result; rc is -1 for a run that timed
//  out. The job is valid during the call.
typedef void(zc_job_finished_fn)(zc_job_t *job, int rc, void *arg);

//  Local counters of a worker.
typedef struct {
    uint64_t claimed;   //  jobs claimed
    uint64_t succeeded; //  runs acked
    uint64_t failed;    //  runs reported failed (timeouts included)
    uint64_t timed_out; //  runs that passed their timeout
    uint64_t lost;      //  claims lost before their result was accepted
    uint64_t released;  //  claims given back unstarted at stop
    uint64_t running;   //  claims held now
    int scheduler;      //  1 if this worker holds the scheduler lease
} zc_queue_worker_stats_t;

//  Creates a worker with node id node_id (NULL generates one) that uses the
//  Redis and cluster of queue (copied: queue may be destroyed after).
//  Returns NULL if node_id is invalid.
zc_queue_worker_t *zc_queue_worker_new(zc_queue_t *queue, const char *node_id);

//  Stops the worker (as zc_queue_worker_stop), destroys it and sets *self_p
//  to NULL; idempotent.
void zc_queue_worker_destroy(zc_queue_worker_t **self_p);

//  Returns the worker's node id.
const char *zc_queue_worker_id(zc_queue_worker_t *self);

//  Registers fn for task (before start). A job of an unknown task fails.
//  Returns 0, or -1 on an invalid or already registered name.
int zc_queue_worker_register(zc_queue_worker_t *self, const char *task, zc_task_fn *fn, void *arg);

//  Adds queue to the queues drained (before start); earlier queues have
//  priority. Returns 0 or -1 on an invalid or repeated name.
int zc_queue_worker_add_queue(zc_queue_worker_t *self, const char *queue);

//  Sets how many jobs the worker holds at once (claimed in one round trip
//  when free), 1..1000; default 1. 0 drains nothing: the worker only
//  promotes delayed jobs, returns lost claims and runs the scheduler.
void zc_queue_worker_set_concurrency(zc_queue_worker_t *self, int concurrency);

//  Sets the handler threads, 0..256; default: as many as the concurrency.
//  0 runs handlers one after another on the claiming thread (fastest for
//  short jobs).
void zc_queue_worker_set_threads(zc_queue_worker_t *self, int threads);

//  Sets the claim lease in ms (default 1500, at least 300): the worker
//  renews it every lease/4; a lease that lapses returns the job to its queue.
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

//  --------------------------------------------------------------------------
//  zc_job_t: a job as its handler sees it

//  Returns the job id.
const char *zc_job_id(const zc_job_t *self);

//  Returns the queue it came from.
const char *zc_job_queue(const zc_job_t *self);

//  Returns the task name.
const char *zc_job_task(const zc_job_t *self);

//  Returns the msgpack arguments and their size in *size (may be 0).
const void *zc_job_args(const zc_job_t *self, size_t *size);

//  Returns the attempt number, from 1 (claims of this job so far).
int zc_job_attempt(const zc_job_t *self);

//  Returns 1 once the run passed its timeout (its result will be ignored).
int zc_job_cancelled(const zc_job_t *self);

//  Sets the error reported if the handler returns -1.
void zc_job_set_error(zc_job_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

//  Returns the error set by the handler ("" if none).
const char *zc_job_error(const zc_job_t *self);

#ifdef __cplusplus
}
#endif

#endif
