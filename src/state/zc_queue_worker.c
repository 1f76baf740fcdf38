/*  zc_queue_worker — drains task queues: claims, runs, acks, keeps leases.

    Threads. A worker has three kinds, each with one job:

    - the dispatcher (zc_queue_dispatch.c, its own Redis connection)
      settles finished runs and claims new jobs, in one pipelined round
      trip: ACK + FAIL + CLAIM up to the free slots. While runs finish
      during a round trip, the next one carries all of them, so acks batch
      themselves under load and Redis, not round trips, sets the pace. With
      zero handler threads it also runs the handlers, one after another,
      between round trips. With handler threads it claims ahead of the
      concurrency while they run out of work between round trips.
    - handler threads (a zc_pool, as many threads as the concurrency by
      default) run handlers: each claimed job is one item submitted to the
      pool. The handler API is a plain function returning 0 or -1, so no
      thread is created per job; a worker may hold more jobs than it has
      threads, and those wait (leased) in the pool's queue for a free
      thread.
    - the keeper (zc_queue_keeper.c, its own connection) keeps the worker
      honest and the cluster moving: every lease/4 it renews the leases of
      the claims it holds (so a slow handler is never mistaken for a dead
      worker); every ~200 ms it runs the TICK script (due delayed jobs to
      their queue, lapsed claims of dead workers back to theirs, recurring
      tasks if it holds the scheduler lease); it fails runs that pass their
      timeout; and while the dispatcher has free slots and found nothing to
      claim, it blocks on the queues' signal lists (BLPOP needs its own
      connection) and wakes the dispatcher when work arrives.

    Leases and timeouts are two different clocks. The lease says "this
    worker is alive": renewed by the keeper whatever the handler does, it
    lapses only when the process dies or cannot reach Redis, and then any
    node's TICK returns the job. The timeout says "this run took too long":
    the keeper reports the run failed (retry or failed list) and marks it
    cancelled; its handler's eventual result is ignored.

    Exactly once without crashes: a claim is only taken back if its lease
    lapses, which a live worker prevents, and every ack names the claim
    (NODE#ATTEMPT) it settles, so a result that arrives after its claim was
    taken back is counted (lost_acks) and changes nothing. At stop, a job
    that no thread has started is given back to its queue, not run.

    When the lease cannot be kept (Redis away for longer than the lease,
    or a renewal finds the claim taken back), the handler is told
    (zc_job_lost, zc_job_cancelled): another worker may now run the job. A
    handler that stops and returns -1 has its job given back (RELEASE: no
    failure counted); a job whose lease was lost before a thread started it
    is given back unstarted.

    This file holds the worker's life (settings, start, stop) and the
    running of one job on a handler thread.
*/
#include "zc_log.h"
#include "zc_queue_worker_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Construction and settings

//  Fills identity from queue with node_id, or a generated node id
//  (host-pid-random) when node_id is NULL and $ZC_NODE_ID is not set.
//  Returns 0, or -1 with the reason in err.
static int s_identity(zc_identity_t *identity, zc_queue_t *queue, const char *node_id, char *err,
                      size_t errlen)
{
    if (node_id && !*node_id) {
        snprintf(err, errlen, "invalid node id '' (1-255 bytes)");
        return -1;
    }
    if (zc_identity_init(identity, zc_queue_redis_url(queue), zc_queue_cluster(queue), node_id, err,
                         errlen))
        return -1;
    if (!*identity->node_id) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[strcspn(host, ". ")] = 0;
        snprintf(identity->node_id, sizeof identity->node_id, "%s-%d-%04x", host, (int)getpid(),
                 (unsigned)(zclock_mono() * 7919) & 0xffff);
    }
    return 0;
}

zc_queue_worker_t *zc_queue_worker_new(zc_queue_t *queue, const char *node_id)
{
    assert(queue);
    zc_identity_t identity;
    char err[300];
    if (s_identity(&identity, queue, node_id, err, sizeof err)) {
        zc_log(ZC_LOG_ERROR, "queue", "%s", err);
        return NULL;
    }
    zc_queue_worker_t *self = (zc_queue_worker_t *)calloc(1, sizeof(zc_queue_worker_t));
    assert(self);
    self->identity = identity;
    self->concurrency = 1;
    self->lease_ms = 1500;
    self->claim_redis = zc_qs_redis_new(&self->identity);
    self->keep_redis = zc_qs_redis_new(&self->identity);
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->dispatch_cond, &attr);
    pthread_cond_init(&self->keeper_cond, &attr);
    pthread_condattr_destroy(&attr);
    return self;
}

void zc_queue_worker_destroy(zc_queue_worker_t **self_p)
{
    assert(self_p);
    zc_queue_worker_t *self = *self_p;
    if (!self) return;
    zc_queue_worker_stop(self);
    zc_redis_destroy(&self->claim_redis);
    zc_redis_destroy(&self->keep_redis);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->dispatch_cond);
    pthread_cond_destroy(&self->keeper_cond);
    free(self->tasks);
    free(self->queues);
    free(self->held);
    memset(&self->identity, 0, sizeof self->identity); //  the URL may hold a password
    free(self);
    *self_p = NULL;
}

zc_error_t zc_queue_worker_error(zc_queue_worker_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_queue_worker_errstr(zc_queue_worker_t *self)
{
    assert(self);
    return self->failure.text;
}

const char *zc_queue_worker_id(zc_queue_worker_t *self)
{
    assert(self);
    return self->identity.node_id;
}

int zc_queue_worker_register(zc_queue_worker_t *self, const char *task, zc_task_fn *fn, void *arg)
{
    assert(self);
    assert(fn);
    zc_failure_clear(&self->failure);
    if (self->started)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "register a task before start");
    if (!zc_qs_name_valid(task))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid task name '%.100s'",
                              task ? task : "(null)");
    for (int i = 0; i < self->task_count; i++)
        if (strcmp(self->tasks[i].name, task) == 0)
            return zc_failure_set(&self->failure, ZC_ERR_INVALID, "task '%s' is already registered",
                                  task);
    self->tasks = (zc_queue_task_t *)realloc(self->tasks, (size_t)(self->task_count + 1) *
                                                              sizeof(zc_queue_task_t));
    assert(self->tasks);
    zc_queue_task_t *t = &self->tasks[self->task_count++];
    snprintf(t->name, sizeof t->name, "%s", task);
    t->fn = fn;
    t->arg = arg;
    return 0;
}

int zc_queue_worker_add_queue(zc_queue_worker_t *self, const char *queue)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (self->started)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "add a queue before start");
    if (!zc_qs_name_valid(queue))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid queue name '%.100s'",
                              queue ? queue : "(null)");
    for (int i = 0; i < self->queue_count; i++)
        if (strcmp(self->queues[i], queue) == 0)
            return zc_failure_set(&self->failure, ZC_ERR_INVALID, "queue '%s' is already drained",
                                  queue);
    self->queues = realloc(self->queues, (size_t)(self->queue_count + 1) * sizeof *self->queues);
    assert(self->queues);
    snprintf(self->queues[self->queue_count++], ZC_QUEUE_NAME_MAX + 1, "%s", queue);
    return 0;
}

void zc_queue_worker_set_concurrency(zc_queue_worker_t *self, int concurrency)
{
    assert(self);
    assert(!self->started);
    self->concurrency = concurrency < 0                 ? 0
                        : concurrency > ZC_QS_BATCH_MAX ? ZC_QS_BATCH_MAX
                                                        : concurrency;
}

void zc_queue_worker_set_threads(zc_queue_worker_t *self, int threads)
{
    assert(self);
    assert(!self->started);
    self->threads = threads < 0 ? 0 : threads > 256 ? 256 : threads;
    self->threads_set = 1;
}

void zc_queue_worker_set_lease(zc_queue_worker_t *self, int lease_ms)
{
    assert(self);
    assert(!self->started);
    self->lease_ms = lease_ms < 300 ? 300 : lease_ms > 3600000 ? 3600000 : lease_ms;
}

void zc_queue_worker_on_finish(zc_queue_worker_t *self, zc_job_finished_fn *fn, void *arg)
{
    assert(self);
    assert(!self->started);
    self->on_finish = fn;
    self->on_finish_arg = arg;
}

void zc_queue_worker_stats(zc_queue_worker_t *self, zc_queue_worker_stats_t *stats)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    *stats = self->stats;
    stats->running = (uint64_t)self->held_count;
    stats->executing = (uint64_t)self->executing;
    pthread_mutex_unlock(&self->lock);
}

//  --------------------------------------------------------------------------
//  Reporting trouble

void zc_queue_worker_alarm(zc_queue_worker_t *self, zc_queue_alarm_t *alarm, const char *kind,
                           const char *format, ...)
{
    self->stats.errors++;
    alarm->count++;
    if (strncmp(alarm->kind, kind, sizeof alarm->kind - 1) == 0) return;
    snprintf(alarm->kind, sizeof alarm->kind, "%s", kind);
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    zc_log(ZC_LOG_WARNING, self->identity.node_id, "queue: %s", text);
}

void zc_queue_worker_alarm_clear(zc_queue_worker_t *self, zc_queue_alarm_t *alarm, const char *what)
{
    if (!alarm->count) return;
    zc_log(ZC_LOG_INFO, self->identity.node_id, "queue: %s works again (after %llu failures)", what,
           (unsigned long long)alarm->count);
    alarm->count = 0;
    alarm->kind[0] = 0;
}

int zc_queue_worker_ahead_max(zc_queue_worker_t *self)
{
    //  Inline handlers run between round trips: nothing to keep busy then.
    return self->threads > 0 && self->concurrency > 0 ? ZC_QUEUE_AHEAD_MAX : 0;
}

int zc_queue_worker_capacity(zc_queue_worker_t *self)
{
    return 2 * ((self->concurrency > 0 ? self->concurrency : 1) + zc_queue_worker_ahead_max(self));
}

int64_t zc_queue_backoff(int failures, int64_t cap_ms)
{
    int64_t pause = (int64_t)50 << (failures < 8 ? failures : 8);
    return pause < cap_ms ? pause : cap_ms;
}

//  --------------------------------------------------------------------------
//  Running a job

//  Appends a job to the run queue. Call with the lock held.
static void s_run_push(zc_queue_worker_t *self, zc_job_t *job)
{
    job->next = NULL;
    if (self->run_tail)
        self->run_tail->next = job;
    else
        self->run_head = job;
    self->run_tail = job;
}

zc_job_t *zc_queue_worker_run_pop(zc_queue_worker_t *self)
{
    zc_job_t *job = self->run_head;
    if (job) {
        self->run_head = job->next;
        if (!self->run_head) self->run_tail = NULL;
        job->next = NULL;
    }
    return job;
}

void zc_queue_worker_run_push_front(zc_queue_worker_t *self, zc_job_t *job)
{
    job->next = self->run_head;
    self->run_head = job;
    if (!self->run_tail) self->run_tail = job;
}

//  Pool work: runs a job on a handler thread, unless the worker is
//  stopping, in which case the job goes back to the dispatcher to be given
//  back unstarted.
static void s_run_pooled(void *item)
{
    zc_job_t *job = (zc_job_t *)item;
    zc_queue_worker_t *self = job->worker;
    pthread_mutex_lock(&self->lock);
    if (self->stopping) {
        s_run_push(self, job);
        pthread_cond_signal(&self->dispatch_cond);
    } else
        zc_queue_worker_execute(self, job);
    pthread_mutex_unlock(&self->lock);
}

//  Pool cancel: a job no thread has started, to be given back. Runs on the
//  dispatcher, which holds the lock.
static void s_give_back(void *item)
{
    zc_job_t *job = (zc_job_t *)item;
    s_run_push(job->worker, job);
}

void zc_queue_worker_hand_out(zc_queue_worker_t *self, zc_job_t *job)
{
    //  The pool refuses work only while it is destroyed, which is after the
    //  dispatcher (the only caller) has left.
    if (self->pool && zc_pool_submit(self->pool, s_run_pooled, job) == 0) return;
    s_run_push(self, job);
}

void zc_queue_worker_take_back(zc_queue_worker_t *self)
{
    if (self->pool) zc_pool_cancel(self->pool, s_give_back);
}

//  Runs the job's handler (called without the lock). Returns its result,
//  with the kind of failure on the job.
static int s_run_handler(zc_queue_worker_t *self, zc_job_t *job)
{
    zc_queue_task_t *task = NULL;
    for (int i = 0; i < self->task_count && !task; i++)
        if (strcmp(self->tasks[i].name, job->task) == 0) task = &self->tasks[i];
    if (!task) {
        job->error = ZC_ERR_MISSING;
        zc_job_set_error(job, "no handler for task '%s' on node %s", job->task,
                         self->identity.node_id);
        return -1;
    }
    if (task->fn(job, task->arg) == 0) return 0;
    job->error = ZC_ERR_HANDLER;
    if (!job->errstr[0]) zc_job_set_error(job, "task '%s' failed", job->task);
    return -1;
}

//  Marks a job's result ready for the dispatcher and wakes it. Call with
//  the lock held.
static void s_result(zc_queue_worker_t *self, zc_job_t *job, int rc, int give_back)
{
    job->rc = rc;
    job->give_back = give_back;
    job->state = ZC_JOB_DONE;
    pthread_cond_signal(&self->dispatch_cond);
}

void zc_queue_worker_execute(zc_queue_worker_t *self, zc_job_t *job)
{
    if (job->taken_back) {
        //  Redis said so: someone else has the job.
        self->stats.lost++;
        zc_queue_worker_forget(self, job);
        pthread_cond_signal(&self->dispatch_cond);
        return;
    }
    if (zc_job_lost(job)) {
        //  Its lease lapsed while it waited: give it back unstarted.
        s_result(self, job, -1, 1);
        return;
    }
    job->state = ZC_JOB_RUNNING;
    job->started_ms = zclock_mono();
    self->executing++;
    pthread_mutex_unlock(&self->lock);

    int rc = s_run_handler(self, job);

    pthread_mutex_lock(&self->lock);
    self->executing--;
    zc_histogram_observe(&self->stats.run_time, (zclock_mono() - job->started_ms) / 1e3);
    int abandoned = job->state == ZC_JOB_ABANDONED;
    if (!abandoned) job->state = ZC_JOB_FINISHING; //  the keeper no longer times it out
    pthread_mutex_unlock(&self->lock);
    if (abandoned) {
        rc = -1;
        job->error = ZC_ERR_TIMEOUT;
        zc_job_set_error(job, "timed out after %lld ms", (long long)job->timeout_ms);
    }
    if (self->on_finish) self->on_finish(job, rc, self->on_finish_arg);
    pthread_mutex_lock(&self->lock);
    if (abandoned) {
        zc_queue_worker_forget(self, job); //  already reported failed by the keeper
        pthread_cond_signal(&self->dispatch_cond);
    } else
        //  A run that failed once its lease was lost most likely stopped
        //  because of it: the job goes back to its queue, not to a retry.
        s_result(self, job, rc, rc != 0 && atomic_load(&job->lease_lost));
}

void zc_queue_worker_forget(zc_queue_worker_t *self, zc_job_t *job)
{
    for (int i = 0; i < self->held_count; i++)
        if (self->held[i] == job) {
            self->held[i] = self->held[--self->held_count];
            break;
        }
    free(job);
}

void zc_queue_worker_wait(zc_queue_worker_t *self, pthread_cond_t *cond, int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cond, &self->lock, &ts);
}

//  --------------------------------------------------------------------------
//  Start and stop

//  Connects both Redis connections now, so a worker that cannot reach
//  Redis fails to start rather than waiting silently. Returns 0 or -1.
static int s_connect(zc_queue_worker_t *self)
{
    zc_redis_t *connections[] = {self->claim_redis, self->keep_redis};
    for (int i = 0; i < 2; i++)
        if (!zc_redis_context(connections[i]))
            return zc_failure_set(&self->failure, ZC_ERR_REDIS, "%s",
                                  zc_redis_errstr(connections[i]));
    return 0;
}

int zc_queue_worker_start(zc_queue_worker_t *self)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (self->started)
        return zc_failure_set(&self->failure, ZC_ERR_STATE, "the worker was started before");
    if (s_connect(self)) return -1;
    if (!self->threads_set) self->threads = self->concurrency > 256 ? 256 : self->concurrency;
    if (self->threads > 0 && !(self->pool = zc_pool_new(self->threads)))
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot start %d handler threads",
                              self->threads);
    int cap = zc_queue_worker_capacity(self);
    self->held = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    assert(self->held);
    self->started = 1;
    if (pthread_create(&self->dispatcher, NULL, zc_queue_dispatcher, self)) {
        zc_pool_destroy(&self->pool);
        self->stopped = 1;
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot start the dispatcher thread");
    }
    if (pthread_create(&self->keeper, NULL, zc_queue_keeper, self)) {
        self->keeper_exit = 1; //  so stop does not wait for it
        zc_queue_worker_stop(self);
        return zc_failure_set(&self->failure, ZC_ERR_SYSTEM, "cannot start the keeper thread");
    }
    return 0;
}

void zc_queue_worker_stop(zc_queue_worker_t *self)
{
    assert(self);
    pthread_mutex_lock(&self->lock);
    if (!self->started || self->stopped) {
        pthread_mutex_unlock(&self->lock);
        return;
    }
    int keeper_running = !self->keeper_exit;
    self->stopping = 1;
    self->stopping_since = zclock_mono();
    pthread_cond_broadcast(&self->dispatch_cond);
    pthread_cond_broadcast(&self->keeper_cond);
    pthread_mutex_unlock(&self->lock);
    //  The dispatcher leaves once every claim is settled or given back (so
    //  every handler has returned); the keeper renews leases until then.
    pthread_join(self->dispatcher, NULL);
    zc_pool_destroy(&self->pool);
    pthread_mutex_lock(&self->lock);
    self->keeper_exit = 1;
    pthread_cond_broadcast(&self->keeper_cond);
    pthread_mutex_unlock(&self->lock);
    if (keeper_running) pthread_join(self->keeper, NULL);
    self->stopped = 1;
    self->stats.scheduler = 0;
}
