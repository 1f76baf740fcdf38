/*  zc_queue_worker — drains task queues: claims, runs, acks, keeps leases.

    Threads. A worker has three kinds, each with one job:

    - the dispatcher (its own Redis connection) settles finished runs and
      claims new jobs, in one pipelined round trip: ACK + FAIL + CLAIM up to
      the free slots. While runs finish during a round trip, the next one
      carries all of them, so acks batch themselves under load and Redis,
      not round trips, sets the pace. With zero handler threads it also
      runs the handlers, one after another, between round trips.
    - handler threads (a fixed pool, as many as the concurrency by default)
      run handlers. The handler API is a plain function returning 0 or -1,
      so no thread is created per job; a worker may hold more jobs than it
      has threads, and those wait (leased) for a free thread.
    - the keeper (its own connection) keeps the worker honest and the
      cluster moving: every lease/4 it renews the leases of the claims it
      holds (so a slow handler is never mistaken for a dead worker); every
      ~200 ms it runs the TICK script (due delayed jobs to their queue,
      lapsed claims of dead workers back to theirs, recurring tasks if it
      holds the scheduler lease); it fails runs that pass their timeout;
      and while the dispatcher has free slots and found nothing to claim, it
      blocks on the queues' signal lists (BLPOP needs its own connection)
      and wakes the dispatcher when work arrives.

    Leases and timeouts are two different clocks. The lease says "this
    worker is alive": renewed by the keeper whatever the handler does, it
    lapses only when the process dies or cannot reach Redis, and then any
    node's TICK returns the job. The timeout says "this run took too long":
    the keeper reports the run failed (retry or failed list) and marks it
    cancelled; its handler's eventual result is ignored.

    Exactly once without crashes: a claim is only taken back if its lease
    lapses, which a live worker prevents, and every ack names the claim
    (NODE#ATTEMPT) it settles, so a result that arrives after its claim was
    taken back is counted (lost_acks) and changes nothing.
*/
#include "zc_log.h"
#include "zc_queue.h"
#include "zc_queue_scripts.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_TIMEOUT_MS      5000 //  bound on every Redis command
#define S_TICK_MS         200  //  TICK period, plus up to 50 ms of jitter
#define S_TICK_LIMIT      1000 //  most jobs one TICK moves
#define S_SCHEDULER_LEASE 2000 //  scheduler lease, renewed every tick
#define S_SAFETY_POLL_MS  1000 //  an idle dispatcher tries a claim this often anyway
#define S_STOP_GIVE_UP_MS 3000 //  at stop, stop retrying Redis after this long

typedef enum {
    S_CLAIMED,   //  waiting for a thread
    S_RUNNING,   //  handler running
    S_FINISHING, //  handler returned; the finish callback runs
    S_DONE,      //  result waiting for the dispatcher
    S_SETTLING,  //  result on its way to Redis
    S_ABANDONED  //  timed out and reported; handler still running
} s_state_t;

struct _zc_job_t {
    zc_queue_worker_t *worker;
    uint64_t seq; //  unique within the worker
    char *id, *queue, *task;
    unsigned char *args;
    size_t args_size;
    int attempt;
    int64_t timeout_ms;
    s_state_t state;
    int lost; //  claim lost before it started: never run it
    int rc;
    atomic_int cancelled;
    int64_t started_ms;
    char error[ZC_JOB_ERROR_MAX + 1];
    zc_job_t *next; //  in the run queue
};

typedef struct {
    char name[ZC_QUEUE_NAME_MAX + 1];
    zc_task_fn *fn;
    void *arg;
} s_task_t;

struct _zc_queue_worker_t {
    char node[ZC_JOB_ID_MAX + 1];
    char prefix[ZC_JOB_ID_MAX + 16];
    zc_redis_url_t url;
    s_task_t *tasks;
    int task_count;
    char (*queues)[ZC_QUEUE_NAME_MAX + 1];
    int queue_count;
    int concurrency, threads, threads_set, lease_ms;
    zc_job_finished_fn *on_finish;
    void *on_finish_arg;

    pthread_mutex_t lock;
    pthread_cond_t dispatch_cond; //  dispatcher: results, wake-ups, stop
    pthread_cond_t pool_cond;     //  handler threads: jobs to run
    pthread_cond_t keeper_cond;   //  keeper: dispatcher became hungry, exit
    pthread_t dispatcher, keeper;
    pthread_t *pool;
    int started, stopped;
    int stopping, pool_exit, keeper_exit;
    int64_t stopping_since;

    zc_job_t **held; //  every claim this worker holds
    int held_count;
    zc_job_t *run_head, *run_tail;
    int hungry; //  dispatcher has free slots and found nothing
    int64_t hungry_since;
    int wake; //  the keeper saw a signal: try a claim
    uint64_t next_seq;
    zc_queue_worker_stats_t stats;

    zc_qs_conn_t claim_conn; //  dispatcher's
    zc_qs_conn_t keep_conn;  //  keeper's
};

//  --------------------------------------------------------------------------
//  Construction and settings

zc_queue_worker_t *zc_queue_worker_new(zc_queue_t *queue, const char *node_id)
{
    assert(queue);
    char generated[ZC_JOB_ID_MAX + 1];
    if (!node_id) {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        host[strcspn(host, ". ")] = 0;
        snprintf(generated, sizeof generated, "%s-%d-%04x", host, (int)getpid(),
                 (unsigned)(zc_qs_clock_ms() * 7919) & 0xffff);
        node_id = generated;
    }
    if (!zc_qs_id_valid(node_id)) {
        zc_log(ZC_LOG_ERROR, "queue", "invalid node id '%s'", node_id);
        return NULL;
    }
    zc_queue_worker_t *self = (zc_queue_worker_t *)calloc(1, sizeof(zc_queue_worker_t));
    assert(self);
    char err[300];
    if (zc_redis_url_parse(zc_queue_redis_url(queue), &self->url, err, sizeof err)) {
        free(self);
        return NULL;
    }
    snprintf(self->node, sizeof self->node, "%s", node_id);
    snprintf(self->prefix, sizeof self->prefix, "zc:{%s}:", zc_queue_cluster(queue));
    self->concurrency = 1;
    self->lease_ms = 1500;
    self->claim_conn.url = self->url;
    self->claim_conn.timeout_ms = S_TIMEOUT_MS;
    self->keep_conn.url = self->url;
    self->keep_conn.timeout_ms = S_TIMEOUT_MS;
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->dispatch_cond, &attr);
    pthread_cond_init(&self->pool_cond, &attr);
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
    zc_qs_conn_drop(&self->claim_conn);
    zc_qs_conn_drop(&self->keep_conn);
    pthread_mutex_destroy(&self->lock);
    pthread_cond_destroy(&self->dispatch_cond);
    pthread_cond_destroy(&self->pool_cond);
    pthread_cond_destroy(&self->keeper_cond);
    free(self->tasks);
    free(self->queues);
    free(self->held);
    free(self->pool);
    free(self);
    *self_p = NULL;
}

const char *zc_queue_worker_id(zc_queue_worker_t *self)
{
    assert(self);
    return self->node;
}

int zc_queue_worker_register(zc_queue_worker_t *self, const char *task, zc_task_fn *fn, void *arg)
{
    assert(self);
    assert(fn);
    assert(!self->started);
    if (!zc_qs_name_valid(task)) return -1;
    for (int i = 0; i < self->task_count; i++)
        if (strcmp(self->tasks[i].name, task) == 0) return -1;
    self->tasks =
        (s_task_t *)realloc(self->tasks, (size_t)(self->task_count + 1) * sizeof(s_task_t));
    assert(self->tasks);
    s_task_t *t = &self->tasks[self->task_count++];
    snprintf(t->name, sizeof t->name, "%s", task);
    t->fn = fn;
    t->arg = arg;
    return 0;
}

int zc_queue_worker_add_queue(zc_queue_worker_t *self, const char *queue)
{
    assert(self);
    assert(!self->started);
    if (!zc_qs_name_valid(queue)) return -1;
    for (int i = 0; i < self->queue_count; i++)
        if (strcmp(self->queues[i], queue) == 0) return -1;
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
    self->lease_ms = lease_ms < 300 ? 300 : lease_ms;
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
    pthread_mutex_unlock(&self->lock);
}

//  --------------------------------------------------------------------------
//  Jobs

const char *zc_job_id(const zc_job_t *self)
{
    assert(self);
    return self->id;
}

const char *zc_job_queue(const zc_job_t *self)
{
    assert(self);
    return self->queue;
}

const char *zc_job_task(const zc_job_t *self)
{
    assert(self);
    return self->task;
}

const void *zc_job_args(const zc_job_t *self, size_t *size)
{
    assert(self);
    if (size) *size = self->args_size;
    return self->args;
}

int zc_job_attempt(const zc_job_t *self)
{
    assert(self);
    return self->attempt;
}

int zc_job_cancelled(const zc_job_t *self)
{
    assert(self);
    return atomic_load(&((zc_job_t *)self)->cancelled);
}

void zc_job_set_error(zc_job_t *self, const char *format, ...)
{
    assert(self);
    va_list args;
    va_start(args, format);
    vsnprintf(self->error, sizeof self->error, format, args);
    va_end(args);
}

const char *zc_job_error(const zc_job_t *self)
{
    assert(self);
    return self->error;
}

//  Makes a job from one claim reply: id queue task args attempt timeout_ms.
//  Returns NULL if the reply is malformed.
static zc_job_t *s_job_new(zc_queue_worker_t *self, redisReply **f)
{
    for (int i = 0; i < 4; i++)
        if (f[i]->type != REDIS_REPLY_STRING) return NULL;
    size_t size = sizeof(zc_job_t) + f[0]->len + f[1]->len + f[2]->len + f[3]->len + 3;
    zc_job_t *job = (zc_job_t *)calloc(1, size);
    assert(job);
    char *p = (char *)(job + 1);
    char **strings[] = {&job->id, &job->queue, &job->task};
    for (int i = 0; i < 3; i++) {
        *strings[i] = p;
        memcpy(p, f[i]->str, f[i]->len);
        p[f[i]->len] = 0;
        p += f[i]->len + 1;
    }
    job->args = (unsigned char *)p;
    job->args_size = f[3]->len;
    memcpy(p, f[3]->str, f[3]->len);
    job->attempt = (int)zc_qs_int(f[4], 1);
    job->timeout_ms = zc_qs_int(f[5], 0);
    job->worker = self;
    job->seq = ++self->next_seq;
    job->state = S_CLAIMED;
    atomic_init(&job->cancelled, 0);
    return job;
}

//  Forgets a held job and frees it. Call with the lock held.
static void s_job_drop(zc_queue_worker_t *self, zc_job_t *job)
{
    for (int i = 0; i < self->held_count; i++)
        if (self->held[i] == job) {
            self->held[i] = self->held[--self->held_count];
            break;
        }
    free(job);
}

//  Waits on cond for up to ms milliseconds. Call with the lock held.
static void s_wait(zc_queue_worker_t *self, pthread_cond_t *cond, int64_t ms)
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

//  Runs one job from the run queue. Call with the lock held; releases it
//  while the handler runs.
static void s_execute(zc_queue_worker_t *self, zc_job_t *job)
{
    if (job->lost) {
        //  The lease was lost before the job started: someone else has it.
        self->stats.lost++;
        s_job_drop(self, job);
        pthread_cond_signal(&self->dispatch_cond);
        return;
    }
    job->state = S_RUNNING;
    job->started_ms = zc_qs_clock_ms();
    pthread_mutex_unlock(&self->lock);

    s_task_t *task = NULL;
    for (int i = 0; i < self->task_count; i++)
        if (strcmp(self->tasks[i].name, job->task) == 0) task = &self->tasks[i];
    int rc;
    if (!task) {
        zc_job_set_error(job, "no handler for task '%s' on node %s", job->task, self->node);
        rc = -1;
    } else {
        rc = task->fn(job, task->arg) == 0 ? 0 : -1;
        if (rc && !job->error[0]) zc_job_set_error(job, "task '%s' failed", job->task);
    }

    pthread_mutex_lock(&self->lock);
    int abandoned = job->state == S_ABANDONED;
    if (!abandoned) job->state = S_FINISHING; //  the keeper no longer times it out
    pthread_mutex_unlock(&self->lock);
    if (abandoned) {
        rc = -1;
        zc_job_set_error(job, "timed out after %lld ms", (long long)job->timeout_ms);
    }
    if (self->on_finish) self->on_finish(job, rc, self->on_finish_arg);
    pthread_mutex_lock(&self->lock);
    if (abandoned)
        s_job_drop(self, job); //  already reported failed by the keeper
    else {
        job->rc = rc;
        job->state = S_DONE;
    }
    pthread_cond_signal(&self->dispatch_cond);
}

//  Takes the first job off the run queue. Call with the lock held.
static zc_job_t *s_run_pop(zc_queue_worker_t *self)
{
    zc_job_t *job = self->run_head;
    if (job) {
        self->run_head = job->next;
        if (!self->run_head) self->run_tail = NULL;
        job->next = NULL;
    }
    return job;
}

static void *s_runner(void *arg)
{
    zc_queue_worker_t *self = (zc_queue_worker_t *)arg;
    pthread_mutex_lock(&self->lock);
    while (1) {
        while (!self->run_head && !self->pool_exit)
            pthread_cond_wait(&self->pool_cond, &self->lock);
        zc_job_t *job = s_run_pop(self);
        if (!job) break;
        s_execute(self, job);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The dispatcher: settle results, release, claim

typedef struct {
    zc_qs_args_t ack, fail, release, claim;
    zc_job_t **settle, **release_jobs;
    int n_settle, n_release;
    int idle;     //  the last claim found nothing
    int failures; //  consecutive failed round trips
} s_dispatch_t;

//  Appends a (id, attempt) pair.
static void s_args_claim(zc_qs_args_t *args, const zc_job_t *job)
{
    zc_qs_args_str(args, job->id);
    zc_qs_args_int(args, job->attempt);
}

//  Applies the replies of one round trip. Call with the lock held.
static void s_dispatch_apply(zc_queue_worker_t *self, s_dispatch_t *d, redisReply *ack,
                             redisReply *fail, redisReply *release, redisReply *claim, int want)
{
    if (ack && ack->type == REDIS_REPLY_ARRAY && ack->elements == 2) {
        self->stats.succeeded += (uint64_t)zc_qs_int(ack->element[0], 0);
        self->stats.lost += (uint64_t)zc_qs_int(ack->element[1], 0);
    }
    if (fail && fail->type == REDIS_REPLY_ARRAY && fail->elements == 3) {
        self->stats.failed +=
            (uint64_t)(zc_qs_int(fail->element[0], 0) + zc_qs_int(fail->element[1], 0));
        self->stats.lost += (uint64_t)zc_qs_int(fail->element[2], 0);
    }
    if (release) self->stats.released += (uint64_t)zc_qs_int(release, 0);
    for (int i = 0; i < d->n_settle; i++)
        s_job_drop(self, d->settle[i]);
    for (int i = 0; i < d->n_release; i++)
        s_job_drop(self, d->release_jobs[i]);
    d->n_settle = d->n_release = 0;
    if (!claim) return;
    int got = 0;
    if (claim->type == REDIS_REPLY_ARRAY && claim->elements % 6 == 0) {
        for (size_t i = 0; i < claim->elements; i += 6) {
            zc_job_t *job = s_job_new(self, claim->element + i);
            if (!job) {
                zc_log(ZC_LOG_WARNING, self->node, "malformed claim reply; job left to its lease");
                continue;
            }
            self->held[self->held_count++] = job;
            if (self->run_tail)
                self->run_tail->next = job;
            else
                self->run_head = job;
            self->run_tail = job;
            got++;
        }
    }
    self->stats.claimed += (uint64_t)got;
    d->idle = want > 0 && got == 0;
    if (got > 1)
        pthread_cond_broadcast(&self->pool_cond);
    else if (got == 1)
        pthread_cond_signal(&self->pool_cond);
}

//  One round trip: settles d->settle, releases d->release_jobs, claims
//  want jobs. Called without the lock. Returns 0, or -1 if Redis failed
//  (nothing applied; the caller puts the jobs back).
static int s_dispatch_round(zc_queue_worker_t *self, s_dispatch_t *d, int want,
                            redisReply **replies, int *slots)
{
    zc_qs_args_t *calls[4];
    int n = 0;
    slots[0] = slots[1] = slots[2] = slots[3] = -1;
    int acks = 0, fails = 0;
    zc_qs_args_start(&d->ack, ZC_QS_ACK, self->prefix);
    zc_qs_args_str(&d->ack, self->node);
    zc_qs_args_start(&d->fail, ZC_QS_FAIL, self->prefix);
    zc_qs_args_str(&d->fail, self->node);
    for (int i = 0; i < d->n_settle; i++) {
        zc_job_t *job = d->settle[i];
        if (job->rc == 0) {
            s_args_claim(&d->ack, job);
            acks++;
        } else {
            s_args_claim(&d->fail, job);
            zc_qs_args_str(&d->fail, job->error);
            fails++;
        }
    }
    if (acks) {
        slots[0] = n;
        calls[n++] = &d->ack;
    }
    if (fails) {
        slots[1] = n;
        calls[n++] = &d->fail;
    }
    if (d->n_release) {
        zc_qs_args_start(&d->release, ZC_QS_RELEASE, self->prefix);
        zc_qs_args_str(&d->release, self->node);
        zc_qs_args_str(&d->release, "0");
        for (int i = 0; i < d->n_release; i++)
            s_args_claim(&d->release, d->release_jobs[i]);
        slots[2] = n;
        calls[n++] = &d->release;
    }
    if (want > 0) {
        zc_qs_args_start(&d->claim, ZC_QS_CLAIM, self->prefix);
        zc_qs_args_str(&d->claim, self->node);
        zc_qs_args_int(&d->claim, self->lease_ms);
        zc_qs_args_int(&d->claim, want);
        for (int i = 0; i < self->queue_count; i++)
            zc_qs_args_str(&d->claim, self->queues[i]);
        slots[3] = n;
        calls[n++] = &d->claim;
    }
    if (n == 0) return 0;
    redisContext *c = zc_qs_conn_get(&self->claim_conn);
    if (!c) {
        if (d->failures++ == 0)
            zc_log(ZC_LOG_WARNING, self->node, "queue: %s", self->claim_conn.error);
        return -1;
    }
    if (zc_qs_pipeline(c, calls, n, replies)) {
        if (d->failures++ == 0)
            zc_log(ZC_LOG_WARNING, self->node, "queue: Redis connection failed: %s", c->errstr);
        zc_qs_conn_drop(&self->claim_conn);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            if (d->failures++ == 0)
                zc_log(ZC_LOG_WARNING, self->node, "queue: Redis error: %s", replies[i]->str);
            for (int j = 0; j < n; j++)
                freeReplyObject(replies[j]);
            return -1;
        }
    if (d->failures) zc_log(ZC_LOG_INFO, self->node, "queue: Redis reachable again");
    d->failures = 0;
    return 0;
}

static void *s_dispatcher(void *arg)
{
    zc_queue_worker_t *self = (zc_queue_worker_t *)arg;
    s_dispatch_t d;
    memset(&d, 0, sizeof d);
    int cap = self->concurrency > 0 ? self->concurrency : 1;
    d.settle = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    d.release_jobs = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    assert(d.settle && d.release_jobs);

    pthread_mutex_lock(&self->lock);
    while (1) {
        //  Results to settle, and at stop the unstarted claims to give back.
        d.n_settle = d.n_release = 0;
        for (int i = 0; i < self->held_count; i++)
            if (self->held[i]->state == S_DONE) {
                self->held[i]->state = S_SETTLING;
                d.settle[d.n_settle++] = self->held[i];
            }
        if (self->stopping) {
            zc_job_t *job;
            while ((job = s_run_pop(self)) != NULL) {
                if (job->lost) {
                    self->stats.lost++;
                    s_job_drop(self, job);
                    continue;
                }
                job->state = S_SETTLING;
                d.release_jobs[d.n_release++] = job;
            }
            if (self->held_count == 0) break;
        }
        int busy = self->held_count - d.n_settle;
        int free_slots = self->stopping ? 0 : self->concurrency - busy;
        int want = free_slots > 0 && (!d.idle || self->wake) ? free_slots : 0;
        if (d.n_settle == 0 && d.n_release == 0 && want == 0) {
            if (free_slots > 0 && !self->hungry) {
                self->hungry = 1;
                self->hungry_since = zc_qs_clock_ms();
                pthread_cond_signal(&self->keeper_cond);
            }
            s_wait(self, &self->dispatch_cond, 1000);
            continue;
        }
        if (want) self->wake = self->hungry = 0;
        pthread_mutex_unlock(&self->lock);

        redisReply *replies[4] = {NULL, NULL, NULL, NULL};
        int slots[4];
        int rc = s_dispatch_round(self, &d, want, replies, slots);

        pthread_mutex_lock(&self->lock);
        if (rc == 0) {
            s_dispatch_apply(self, &d, slots[0] >= 0 ? replies[slots[0]] : NULL,
                             slots[1] >= 0 ? replies[slots[1]] : NULL,
                             slots[2] >= 0 ? replies[slots[2]] : NULL,
                             slots[3] >= 0 ? replies[slots[3]] : NULL, want);
            for (int i = 0; i < 4; i++)
                if (slots[i] >= 0) freeReplyObject(replies[slots[i]]);
        } else if (self->stopping && zc_qs_clock_ms() - self->stopping_since > S_STOP_GIVE_UP_MS) {
            //  Redis stays away at stop: leave these jobs to their leases,
            //  which lapse and return them to their queues.
            for (int i = 0; i < d.n_settle; i++)
                s_job_drop(self, d.settle[i]);
            for (int i = 0; i < d.n_release; i++)
                s_job_drop(self, d.release_jobs[i]);
        } else {
            for (int i = 0; i < d.n_settle; i++)
                d.settle[i]->state = S_DONE;
            for (int i = 0; i < d.n_release; i++) {
                //  Back on the run queue; the stop path takes them again.
                zc_job_t *job = d.release_jobs[i];
                job->state = S_CLAIMED;
                job->next = self->run_head;
                self->run_head = job;
                if (!self->run_tail) self->run_tail = job;
            }
            int64_t pause = 50 << (d.failures < 5 ? d.failures : 5);
            s_wait(self, &self->dispatch_cond, pause > 1000 ? 1000 : pause);
        }
        //  Zero handler threads: run what was claimed here, in order.
        if (self->threads == 0) {
            zc_job_t *job;
            while (!self->stopping && (job = s_run_pop(self)) != NULL)
                s_execute(self, job);
        }
    }
    pthread_mutex_unlock(&self->lock);
    zc_qs_args_free(&d.ack);
    zc_qs_args_free(&d.fail);
    zc_qs_args_free(&d.release);
    zc_qs_args_free(&d.claim);
    free(d.settle);
    free(d.release_jobs);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The keeper: leases, timeouts, ticks, wake-ups

typedef struct {
    zc_qs_args_t fail, extend, tick, release;
    uint64_t *extend_seq;
    int n_fail, n_extend;
    int failures;
} s_keep_t;

//  Collects runs past their timeout into k->fail and the claims to renew
//  into k->extend. Call with the lock held. Returns the ms until the next
//  timeout can fire (or a large number).
static int64_t s_keep_collect(zc_queue_worker_t *self, s_keep_t *k, int64_t now, int extend)
{
    int64_t next = 1000000;
    k->n_fail = k->n_extend = 0;
    zc_qs_args_start(&k->fail, ZC_QS_FAIL, self->prefix);
    zc_qs_args_str(&k->fail, self->node);
    zc_qs_args_start(&k->extend, ZC_QS_EXTEND, self->prefix);
    zc_qs_args_str(&k->extend, self->node);
    zc_qs_args_int(&k->extend, self->lease_ms);
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        if (job->state == S_RUNNING && job->timeout_ms > 0) {
            int64_t left = job->started_ms + job->timeout_ms - now;
            if (left < 0) {
                job->state = S_ABANDONED;
                atomic_store(&job->cancelled, 1);
                self->stats.timed_out++;
                s_args_claim(&k->fail, job);
                char error[64];
                snprintf(error, sizeof error, "timed out after %lld ms",
                         (long long)job->timeout_ms);
                zc_qs_args_str(&k->fail, error);
                k->n_fail++;
                continue;
            }
            if (left < next) next = left;
        }
        if (extend && job->state != S_ABANDONED) {
            s_args_claim(&k->extend, job);
            k->extend_seq[k->n_extend++] = job->seq;
        }
    }
    return next;
}

//  Marks the claims EXTEND reported lost. Call with the lock held.
static void s_keep_lost(zc_queue_worker_t *self, s_keep_t *k, redisReply *lost)
{
    if (lost->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < lost->elements; i++) {
        int64_t index = zc_qs_int(lost->element[i], 0);
        if (index < 1 || index > k->n_extend) continue;
        uint64_t seq = k->extend_seq[index - 1];
        for (int j = 0; j < self->held_count; j++)
            if (self->held[j]->seq == seq && self->held[j]->state == S_CLAIMED) {
                self->held[j]->lost = 1;
                zc_log(ZC_LOG_WARNING, self->node, "queue: lost the claim on job %s before it ran",
                       self->held[j]->id);
            }
    }
}

//  Blocks on the queues' signal lists for up to ms; returns 1 if one was popped.
static int s_keep_listen(zc_queue_worker_t *self, int64_t ms)
{
    redisContext *c = zc_qs_conn_get(&self->keep_conn);
    if (!c) return 0;
    int argc = 0;
    const char **argv = (const char **)calloc((size_t)self->queue_count + 2, sizeof(char *));
    char **keys = (char **)calloc((size_t)self->queue_count, sizeof(char *));
    assert(argv && keys);
    argv[argc++] = "BLPOP";
    for (int i = 0; i < self->queue_count; i++) {
        size_t len = strlen(self->prefix) + strlen(self->queues[i]) + 16;
        keys[i] = (char *)malloc(len);
        assert(keys[i]);
        snprintf(keys[i], len, "%sq:%s:signal", self->prefix, self->queues[i]);
        argv[argc++] = keys[i];
    }
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%.3f", (double)(ms < 10 ? 10 : ms) / 1000.0);
    argv[argc++] = timeout;
    redisReply *reply = (redisReply *)redisCommandArgv(c, argc, argv, NULL);
    int popped = 0;
    if (!reply)
        zc_qs_conn_drop(&self->keep_conn);
    else {
        popped = reply->type == REDIS_REPLY_ARRAY;
        freeReplyObject(reply);
    }
    for (int i = 0; i < self->queue_count; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    return popped;
}

static void *s_keeper(void *arg)
{
    zc_queue_worker_t *self = (zc_queue_worker_t *)arg;
    s_keep_t k;
    memset(&k, 0, sizeof k);
    int cap = self->concurrency > 0 ? self->concurrency : 1;
    k.extend_seq = (uint64_t *)calloc((size_t)cap, sizeof(uint64_t));
    assert(k.extend_seq);
    unsigned jitter_seed = (unsigned)(zc_qs_clock_ms() ^ (uintptr_t)self);
    int64_t renew_every = self->lease_ms / 4;
    int64_t next_extend = zc_qs_clock_ms() + renew_every;
    int64_t next_tick = 0;

    pthread_mutex_lock(&self->lock);
    while (!self->keeper_exit) {
        int64_t now = zc_qs_clock_ms();
        int extend = now >= next_extend;
        int64_t timeout_in = s_keep_collect(self, &k, now, extend);
        if (extend) next_extend = now + renew_every;
        int tick = now >= next_tick;
        pthread_mutex_unlock(&self->lock);

        zc_qs_args_t *calls[3];
        int n = 0, fail_slot = -1, extend_slot = -1, tick_slot = -1;
        if (k.n_fail) {
            fail_slot = n;
            calls[n++] = &k.fail;
        }
        if (k.n_extend) {
            extend_slot = n;
            calls[n++] = &k.extend;
        }
        if (tick) {
            zc_qs_args_start(&k.tick, ZC_QS_TICK, self->prefix);
            zc_qs_args_str(&k.tick, self->node);
            zc_qs_args_int(&k.tick, S_SCHEDULER_LEASE);
            zc_qs_args_int(&k.tick, S_TICK_LIMIT);
            tick_slot = n;
            calls[n++] = &k.tick;
        }
        redisReply *replies[3] = {NULL, NULL, NULL};
        int rc = 0;
        if (n > 0) {
            redisContext *c = zc_qs_conn_get(&self->keep_conn);
            if (!c)
                rc = -1;
            else if (zc_qs_pipeline(c, calls, n, replies)) {
                zc_qs_conn_drop(&self->keep_conn);
                rc = -1;
            }
            if (rc && k.failures++ == 0)
                zc_log(ZC_LOG_WARNING, self->node, "queue: keeper cannot reach Redis: %s",
                       self->keep_conn.error);
            if (rc == 0) k.failures = 0;
        }

        pthread_mutex_lock(&self->lock);
        now = zc_qs_clock_ms();
        if (rc == 0) {
            for (int i = 0; i < n; i++)
                if (replies[i]->type == REDIS_REPLY_ERROR)
                    zc_log(ZC_LOG_WARNING, self->node, "queue: Redis error: %s", replies[i]->str);
            if (fail_slot >= 0) self->stats.failed += (uint64_t)k.n_fail;
            if (extend_slot >= 0) s_keep_lost(self, &k, replies[extend_slot]);
            if (tick_slot >= 0) {
                redisReply *t = replies[tick_slot];
                int full = 0;
                if (t->type == REDIS_REPLY_ARRAY && t->elements == 4) {
                    self->stats.scheduler = (int)zc_qs_int(t->element[2], 0);
                    full = zc_qs_int(t->element[0], 0) >= S_TICK_LIMIT ||
                           zc_qs_int(t->element[1], 0) >= S_TICK_LIMIT;
                    int64_t reaped = zc_qs_int(t->element[1], 0);
                    if (reaped > 0)
                        zc_log(ZC_LOG_INFO, self->node,
                               "queue: returned %lld lapsed claims to their queues",
                               (long long)reaped);
                }
                next_tick = full ? now : now + S_TICK_MS + rand_r(&jitter_seed) % 50;
            }
            for (int i = 0; i < n; i++)
                freeReplyObject(replies[i]);
        } else {
            next_tick = now + 500;
            if (extend) next_extend = now + 100; //  try the renewal again soon
        }
        if (self->keeper_exit) break;
        int64_t wait = next_tick - now;
        if (next_extend - now < wait) wait = next_extend - now;
        if (timeout_in < wait) wait = timeout_in;
        if (self->hungry && !self->stopping && self->queue_count > 0 && wait > 0) {
            pthread_mutex_unlock(&self->lock);
            int popped = s_keep_listen(self, wait);
            pthread_mutex_lock(&self->lock);
            if (popped ||
                (self->hungry && zc_qs_clock_ms() - self->hungry_since >= S_SAFETY_POLL_MS)) {
                self->wake = 1;
                self->hungry_since = zc_qs_clock_ms();
                pthread_cond_signal(&self->dispatch_cond);
            }
        } else
            s_wait(self, &self->keeper_cond, wait);
    }
    pthread_mutex_unlock(&self->lock);

    //  Leaving: give the scheduler lease to another node at once.
    redisContext *c = zc_qs_conn_get(&self->keep_conn);
    if (c) {
        zc_qs_args_start(&k.release, ZC_QS_RELEASE, self->prefix);
        zc_qs_args_str(&k.release, self->node);
        zc_qs_args_str(&k.release, "1");
        redisReply *reply = zc_qs_call(c, &k.release);
        if (reply) freeReplyObject(reply);
    }
    zc_qs_args_free(&k.fail);
    zc_qs_args_free(&k.extend);
    zc_qs_args_free(&k.tick);
    zc_qs_args_free(&k.release);
    free(k.extend_seq);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Start and stop

int zc_queue_worker_start(zc_queue_worker_t *self)
{
    assert(self);
    if (self->started) return -1;
    if (!zc_qs_conn_get(&self->claim_conn) || !zc_qs_conn_get(&self->keep_conn)) {
        zc_log(ZC_LOG_ERROR, self->node, "queue: %s",
               self->claim_conn.ctx ? self->keep_conn.error : self->claim_conn.error);
        return -1;
    }
    if (!self->threads_set) self->threads = self->concurrency > 256 ? 256 : self->concurrency;
    int cap = self->concurrency > 0 ? self->concurrency : 1;
    self->held = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    self->pool =
        (pthread_t *)calloc((size_t)(self->threads ? self->threads : 1), sizeof(pthread_t));
    assert(self->held && self->pool);
    self->started = 1;
    pthread_create(&self->dispatcher, NULL, s_dispatcher, self);
    pthread_create(&self->keeper, NULL, s_keeper, self);
    for (int i = 0; i < self->threads; i++)
        pthread_create(&self->pool[i], NULL, s_runner, self);
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
    self->stopping = 1;
    self->stopping_since = zc_qs_clock_ms();
    pthread_cond_broadcast(&self->dispatch_cond);
    pthread_cond_broadcast(&self->keeper_cond);
    pthread_mutex_unlock(&self->lock);
    //  The dispatcher leaves once every claim is settled or given back; the
    //  keeper renews leases until then.
    pthread_join(self->dispatcher, NULL);
    pthread_mutex_lock(&self->lock);
    self->pool_exit = 1;
    pthread_cond_broadcast(&self->pool_cond);
    pthread_mutex_unlock(&self->lock);
    for (int i = 0; i < self->threads; i++)
        pthread_join(self->pool[i], NULL);
    pthread_mutex_lock(&self->lock);
    self->keeper_exit = 1;
    pthread_cond_broadcast(&self->keeper_cond);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->keeper, NULL);
    self->stopped = 1;
    self->stats.scheduler = 0;
}
