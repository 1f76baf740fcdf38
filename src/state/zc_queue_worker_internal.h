/*  zc_queue_worker_internal — what the worker's files share (private).

    A worker is three concepts, one file each, around one lock:
    zc_queue_worker.c (its life: settings, start, stop, and running a job on
    a handler thread), zc_queue_dispatch.c (the dispatcher thread: settle
    results, claim jobs, give them back at stop) and zc_queue_keeper.c (the
    keeper thread: leases, timeouts, ticks, wake-ups). zc_job.c is the job
    they pass around.

    Every field below the lock is guarded by it; the settings above it are
    fixed once the worker starts.
*/
#ifndef ZC_QUEUE_WORKER_INTERNAL_H_INCLUDED
#define ZC_QUEUE_WORKER_INTERNAL_H_INCLUDED

#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_job.h"
#include "zc_pool.h"
#include "zc_queue_scripts.h"
#include "zc_queue_worker.h"
#include "zc_redis.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

//  Where a held job is in its life.
typedef enum {
    ZC_JOB_CLAIMED,   //  waiting for a thread
    ZC_JOB_RUNNING,   //  handler running
    ZC_JOB_FINISHING, //  handler returned; the finish callback runs
    ZC_JOB_DONE,      //  result waiting for the dispatcher
    ZC_JOB_SETTLING,  //  result (or release) on its way to Redis
    ZC_JOB_ABANDONED  //  timed out and reported; handler still running
} zc_job_state_t;

struct _zc_job_t {
    zc_queue_worker_t *worker;
    uint64_t seq; //  unique within the worker
    char *id, *queue, *task;
    unsigned char *args;
    size_t args_size;
    int attempt;
    int64_t timeout_ms;
    zc_job_state_t state;
    int taken_back; //  a renewal found the claim taken back: never start it
    int give_back;  //  settle by RELEASE: not started in time, or stopped with its lease lost
    int rc;
    zc_error_t error;  //  how the run went
    int tries;         //  failed attempts to settle its result
    int64_t retry_at;  //  settle it again no sooner (zclock_mono ms)
    uint64_t renewal;  //  the keeper's EXTEND call that carries its lease
    int lease_counted; //  counted in stats.lease_lost
    atomic_int cancelled;
    atomic_int lease_lost;      //  sticky: zc_job_lost() said so
    atomic_llong lease_held_to; //  zclock_mono ms until which the lease surely holds
    int64_t started_ms;
    char errstr[ZC_JOB_ERROR_MAX + 1];
    zc_job_t *next; //  in the worker's run queue
};

//  Makes a job from one claim reply (id queue task args attempt timeout_ms),
//  held by worker, in state ZC_JOB_CLAIMED. Returns NULL if the reply is
//  malformed. The caller frees it with free().
zc_job_t *zc_job_new_claimed(zc_queue_worker_t *worker, redisReply **fields, uint64_t seq);

//  Appends the job's claim, (id, attempt), to a script call.
void zc_job_args_claim(zc_redis_args_t *args, const zc_job_t *job);

//  Notes that job's lease is surely held until held_to (a renewal or claim
//  sent at sent_ms reached Redis); keeps the later of the two.
void zc_job_lease_renewed(zc_job_t *job, int64_t sent_ms, int lease_ms);

typedef struct {
    char name[ZC_QUEUE_NAME_MAX + 1];
    zc_task_fn *fn;
    void *arg;
} zc_queue_task_t;

//  One kind of trouble that a thread of the worker runs into, reported the
//  way every failure of a running worker is: counted in the worker's
//  errors each time, logged when it starts or changes kind, and logged
//  once more when it ends, rather than on every retry.
typedef struct {
    char kind[128]; //  what was last logged, "" while all is well
    uint64_t count; //  failures since then
} zc_queue_alarm_t;

struct _zc_queue_worker_t {
    zc_identity_t identity; //  node_id is the worker's
    zc_queue_task_t *tasks;
    int task_count;
    char (*queues)[ZC_QUEUE_NAME_MAX + 1];
    int queue_count;
    int concurrency, threads, threads_set, lease_ms;
    zc_job_finished_fn *on_finish;
    void *on_finish_arg;
    zc_failure_t failure; //  the last call's outcome

    pthread_mutex_t lock;
    pthread_cond_t dispatch_cond; //  dispatcher: results, wake-ups, stop
    pthread_cond_t keeper_cond;   //  keeper: dispatcher became hungry, exit
    pthread_t dispatcher, keeper;
    zc_pool_t *pool; //  handler threads; NULL runs handlers on the dispatcher
    int started, stopped;
    int stopping, keeper_exit;
    int64_t stopping_since;

    zc_job_t **held; //  every claim this worker holds
    int held_count;
    int executing;                 //  handlers running now
    zc_job_t *run_head, *run_tail; //  to run inline, or to give back at stop
    int hungry;                    //  dispatcher has free slots and found nothing
    int64_t hungry_since;
    int wake; //  the keeper saw a signal: try a claim
    uint64_t next_seq;
    zc_queue_worker_stats_t stats;

    zc_redis_t *claim_redis; //  dispatcher's
    zc_redis_t *keep_redis;  //  keeper's (BLPOP blocks it)
};

//  Reports a failure of kind (a short fixed text, or Redis's error) on
//  alarm: counts it, and logs what (printf format) if kind is new. Call
//  with the lock held.
void zc_queue_worker_alarm(zc_queue_worker_t *self, zc_queue_alarm_t *alarm, const char *kind,
                           const char *format, ...) __attribute__((format(printf, 4, 5)));

//  Reports that what works again, if alarm had failures. Call with the lock
//  held.
void zc_queue_worker_alarm_clear(zc_queue_worker_t *self, zc_queue_alarm_t *alarm,
                                 const char *what);

//  Returns how long to wait before the next try after failures failed
//  ones in a row: 50 ms doubled per failure, at most cap_ms.
int64_t zc_queue_backoff(int failures, int64_t cap_ms);

//  Most jobs a worker with handler threads claims ahead of its concurrency
//  while its threads run out of work between round trips (see
//  zc_queue_dispatch.c).
#define ZC_QUEUE_AHEAD_MAX 256

//  Returns how many jobs the worker may claim ahead at most: ZC_QUEUE_AHEAD_MAX
//  with handler threads, 0 with handlers inline or concurrency 0.
int zc_queue_worker_ahead_max(zc_queue_worker_t *self);

//  Returns the most claims the worker may hold at once: its concurrency
//  and the most it claims ahead, and as many again whose results were put
//  off while the claims that replaced them were on their way (see
//  zc_queue_dispatch.c).
int zc_queue_worker_capacity(zc_queue_worker_t *self);

//  Hands a claimed job to a handler thread, or to the run queue when
//  handlers run inline. Call with the lock held.
void zc_queue_worker_hand_out(zc_queue_worker_t *self, zc_job_t *job);

//  Takes the first job off the run queue, or NULL. Call with the lock held.
zc_job_t *zc_queue_worker_run_pop(zc_queue_worker_t *self);

//  Puts a job back at the head of the run queue. Call with the lock held.
void zc_queue_worker_run_push_front(zc_queue_worker_t *self, zc_job_t *job);

//  Moves the jobs waiting for a handler thread to the run queue, to be given
//  back. Call with the lock held.
void zc_queue_worker_take_back(zc_queue_worker_t *self);

//  Runs one claimed job: its handler, the finish callback, then marks its
//  result for the dispatcher. Call with the lock held; releases it while
//  user code runs.
void zc_queue_worker_execute(zc_queue_worker_t *self, zc_job_t *job);

//  Forgets a held job and frees it. Call with the lock held.
void zc_queue_worker_forget(zc_queue_worker_t *self, zc_job_t *job);

//  Waits on cond for up to ms milliseconds. Call with the lock held.
void zc_queue_worker_wait(zc_queue_worker_t *self, pthread_cond_t *cond, int64_t ms);

//  The dispatcher thread (zc_queue_dispatch.c): settles results, claims
//  jobs, gives unstarted claims back at stop; returns when none is held.
void *zc_queue_dispatcher(void *worker);

//  The keeper thread (zc_queue_keeper.c): renews leases, times runs out,
//  ticks, wakes the dispatcher; returns once keeper_exit is set.
void *zc_queue_keeper(void *worker);

#endif
