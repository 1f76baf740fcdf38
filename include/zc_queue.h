/*  zc_queue — a reliable task queue in Redis, drained by workers on every node.

    A job is a task name, msgpack arguments and an id, put on a named queue.
    Workers on any number of nodes (zc_queue_worker.h) claim jobs into their
    own in-flight set with a lease they keep renewing; a job is acked when
    its handler returns 0, retried with exponential backoff when it fails,
    and moved to the queue's failed list, with its error, once it has failed
    max_attempts times. When a worker dies its lease lapses and any node's
    worker puts its jobs back on their queue (about 1.5 s);
    zc_queue_requeue_node() does so at once. Every change is one Lua script,
    so no job is lost or doubled by a race between nodes, and a job runs
    exactly once in a run without crashes. A script that finds a key it
    would write holding another kind of data writes nothing, so a damaged
    key never strands a job. docs/QUEUE.md describes the keys in Redis and
    the guarantees.

    A zc_queue_t puts jobs on queues and administers them, through one Redis
    connection: use it from one thread at a time. It connects on first use
    and reconnects after a failure.

    Errors: a call that fails returns -1 and leaves the reason on the handle:
    zc_queue_error() returns its kind and zc_queue_errstr() a message. The
    kinds: ZC_ERR_INVALID (a bad name, id or option), ZC_ERR_REDIS (Redis
    unreachable, or it answered an error), ZC_ERR_TYPE (a queue key holds
    another kind of data: nothing was changed, and the message names the
    key), ZC_ERR_DUPLICATE (a live job already has the id), ZC_ERR_MISSING
    (no such job on the failed list), ZC_ERR_STATE (a delete outrun by new
    jobs). A call that succeeds sets ZC_OK. Calls that return a count or a
    value return -1 on failure.

    Names: queue and task names are 1..ZC_QUEUE_NAME_MAX characters of
    [A-Za-z0-9_.-]; job ids (zc_job.h) and node ids are valid wire names
    (1..255 bytes, no spaces or control characters). Times given "at" are
    Redis's clock, in ms since the epoch (zc_queue_now_ms), so nodes with
    skewed clocks agree.
*/
#ifndef ZC_QUEUE_H_INCLUDED
#define ZC_QUEUE_H_INCLUDED

#include "zc_error.h"
#include "zc_job.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_QUEUE_NAME_MAX 100

typedef struct _zc_queue_t zc_queue_t;

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

//  Creates a handle on the queues of cluster (keys under zc:{CLUSTER}:) in
//  the Redis at redis_url. NULL takes $ZC_REDIS_URL, and for the cluster
//  $ZC_CLUSTER, else "zcluster". Does not connect yet. Returns NULL, after
//  logging why, if the URL or the cluster name is invalid. A URL with
//  ?wait=MS makes every call wait for a replica and fail if none
//  acknowledged in MS (docs/QUEUE.md, "Durability across a Redis failover").
zc_queue_t *zc_queue_new(const char *redis_url, const char *cluster);

//  Closes the connection, destroys the handle and sets *self_p to NULL;
//  idempotent.
void zc_queue_destroy(zc_queue_t **self_p);

//  Returns the kind of the last call's failure, or ZC_OK if it succeeded.
zc_error_t zc_queue_error(zc_queue_t *self);

//  Returns the message of the last call's failure ("" if it succeeded);
//  owned by the handle, valid until its next call. Never holds a password.
const char *zc_queue_errstr(zc_queue_t *self);

//  Returns the cluster name.
const char *zc_queue_cluster(zc_queue_t *self);

//  Returns the Redis URL as given (it may hold a password: do not print it).
const char *zc_queue_redis_url(zc_queue_t *self);

//  Returns Redis's clock in ms since the epoch, or -1 on failure.
int64_t zc_queue_now_ms(zc_queue_t *self);

//  Enqueues a job of task on queue to run now; args (msgpack, may be NULL)
//  are copied. If id_out is not NULL it receives the job id (ZC_JOB_ID_MAX +
//  1 bytes). Returns 0, or -1: ZC_ERR_DUPLICATE (nothing changed; id_out
//  receives opts->id) if a live job — queued, delayed, in flight or failed —
//  already has opts->id, else another kind.
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
//  results is not NULL, results[i] is ZC_OK or ZC_ERR_DUPLICATE. Returns the
//  number of jobs enqueued (duplicates are not a failure), or -1 (then some
//  batches may have been enqueued).
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

//  Removes the recurring task name. Returns the number removed: 1 if it
//  existed, 0 if not; -1 on failure.
int zc_queue_every_remove(zc_queue_t *self, const char *name);

//  Fills *stats for queue (zeros for a queue never used). Returns 0 or -1.
int zc_queue_stats(zc_queue_t *self, const char *queue, zc_queue_stats_t *stats);

//  Fills up to max entries of queue's failed list, newest first. Returns
//  the number filled, or -1.
int zc_queue_failed(zc_queue_t *self, const char *queue, zc_queue_failure_t *out, int max);

//  Puts a job from queue's failed list back on the queue with a fresh count
//  of attempts. Returns 0, or -1: ZC_ERR_MISSING if it is not on that
//  failed list, else another kind.
int zc_queue_retry(zc_queue_t *self, const char *queue, const char *id);

//  Deletes queue: its ready, delayed, in-flight and failed jobs, its
//  counters and the recurring tasks that feed it. Results of its jobs still
//  running are ignored. Works in slices (a few ms of Redis each), so Redis
//  stays responsive whatever the size; a job that moves meanwhile to a set
//  already gone through (a run that fails and waits for its retry) may
//  survive. Returns the number of jobs deleted, or -1 (ZC_ERR_STATE if
//  jobs keep arriving faster than they are deleted; the queue is then
//  partly deleted).
int64_t zc_queue_delete(zc_queue_t *self, const char *queue);

//  Returns the jobs claimed by node_id to their queues at once, for a node
//  known to be gone (one that left the registry, say). A live node's later
//  results for them are ignored. Works in slices (a few ms of Redis each);
//  a claim whose keys cannot be used now is left to its lease. Returns the
//  number returned, or -1 (then some may have been returned).
int64_t zc_queue_requeue_node(zc_queue_t *self, const char *node_id);

//  --------------------------------------------------------------------------
//  Inspection (read only, but zc_queue_remove): what is queued, delayed and
//  running, job by job. Jobs come back as zc_queue_job_t arrays the caller
//  frees with zc_queue_jobs_free. Ids whose job hash is gone or damaged are
//  listed too, with state "missing" or "damaged", so an operator sees them.

//  One job as Redis holds it.
typedef struct {
    char id[ZC_JOB_ID_MAX + 1];
    char queue[ZC_QUEUE_NAME_MAX + 1];
    char task[ZC_QUEUE_NAME_MAX + 1];
    //  queued | delayed | active | failed, or missing (no hash), damaged (a
    //  hash key of another type, or fields that are not this queue's)
    char state[12];
    int attempt;        //  claims so far
    int failures;       //  runs that failed
    int max_attempts;   //  failures allowed before the failed list
    int64_t created_ms; //  Redis time of the enqueue
    //  delayed: when it is due; active: its claim's lease deadline; failed:
    //  when it failed; else 0 (Redis time, ms since the epoch)
    int64_t at_ms;
    char node[ZC_JOB_ID_MAX + 1];     //  active: the node running it
    char error[ZC_JOB_ERROR_MAX + 1]; //  the last failure's message
    void *args;                       //  msgpack, owned by the array (NULL if none)
    size_t args_size;
} zc_queue_job_t;

//  What zc_queue_jobs lists.
typedef enum {
    ZC_QUEUE_READY = 1, //  queued jobs, next to run first
    ZC_QUEUE_FAILED = 2 //  the failed list, newest first
} zc_queue_list_t;

//  Lists up to count (1..1000) jobs of queue's ready or failed list,
//  skipping the first offset. Sets *jobs_p (free with zc_queue_jobs_free)
//  and *count_p, and *total_p (may be NULL) to the list's length. Returns
//  0, or -1: ZC_ERR_INVALID (bad name or range), ZC_ERR_TYPE (the list key
//  holds another type), ZC_ERR_REDIS.
int zc_queue_jobs(zc_queue_t *self, const char *queue, zc_queue_list_t list, int64_t offset,
                  int count, zc_queue_job_t **jobs_p, size_t *count_p, int64_t *total_p);

//  Lists up to count (1..1000) delayed jobs (retries in backoff included)
//  in the order they are due, skipping the first offset: of queue, or of
//  every queue if queue is NULL. With a queue, the delayed set of the whole
//  cluster is walked in slices of 500 until count jobs of it are found;
//  *total_p (may be NULL) is the set's size, all queues. Returns as
//  zc_queue_jobs.
int zc_queue_delayed(zc_queue_t *self, const char *queue, int64_t offset, int count,
                     zc_queue_job_t **jobs_p, size_t *count_p, int64_t *total_p);

//  Lists up to count (1..1000) claimed jobs of every queue, what each
//  worker runs now, skipping the first offset, ordered by node then lease
//  deadline (each job's node and at_ms say which worker and until when).
//  *total_p (may be NULL) is the number of claims. Returns as zc_queue_jobs.
int zc_queue_working(zc_queue_t *self, int64_t offset, int count, zc_queue_job_t **jobs_p,
                     size_t *count_p, int64_t *total_p);

//  Fills *job with job id (job->args: free with zc_queue_job_clear).
//  Returns 0, or -1: ZC_ERR_MISSING if there is no such job, ZC_ERR_TYPE if
//  its key holds another type, ZC_ERR_INVALID, ZC_ERR_REDIS.
int zc_queue_job(zc_queue_t *self, const char *id, zc_queue_job_t *job);

//  Deletes job id of queue if it is queued, delayed or failed (as
//  ActionHero's del and delDelayed, by id). Returns 0, or -1:
//  ZC_ERR_MISSING (no such job, or it is another queue's), ZC_ERR_STATE (a
//  worker runs it now: the message names the node), ZC_ERR_TYPE (a key it
//  would write holds another type: nothing changed), ZC_ERR_INVALID,
//  ZC_ERR_REDIS.
int zc_queue_remove(zc_queue_t *self, const char *queue, const char *id);

//  Sets *names_p to the names of the queues in use, sorted, as a
//  NULL-terminated array freed with zc_queue_names_free, and *count_p.
//  Returns 0, or -1 (ZC_ERR_TYPE if the set of queue names is damaged).
int zc_queue_names(zc_queue_t *self, char ***names_p, size_t *count_p);

//  Frees an array from zc_queue_names and sets *names_p to NULL; idempotent.
void zc_queue_names_free(char ***names_p);

//  Frees the args of one job filled by zc_queue_job.
void zc_queue_job_clear(zc_queue_job_t *job);

//  Frees an array of count jobs and sets *jobs_p to NULL; idempotent.
void zc_queue_jobs_free(zc_queue_job_t **jobs_p, size_t count);

#ifdef __cplusplus
}
#endif

#endif
