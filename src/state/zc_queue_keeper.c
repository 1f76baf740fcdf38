/*  zc_queue_keeper — the worker's keeper thread: leases, timeouts, ticks,
    wake-ups.

    The keeper keeps the worker honest and the cluster moving, on a Redis
    connection of its own, in one pipelined round trip per turn:

    - EXTEND, every lease/4: renews the leases of the claims the worker
      holds, whatever its handlers do, so a slow handler is never mistaken
      for a dead worker. A claim that turns out lost (taken back by
      zc_queue_requeue_node, or after the worker was cut off from Redis for
      longer than the lease) is dropped if it has not started, and its
      handler is told if it has (zc_job_lost).
    - FAIL, as soon as a run passes its timeout: the run is reported failed
      (retry or failed list) and cancelled; its handler's eventual result
      is ignored. If Redis cannot take the report, the job's lease, no
      longer renewed, lapses and returns it to its queue.
    - TICK, every ~200 ms plus jitter (at once again while there is a
      backlog): due delayed jobs to their queue, lapsed claims of dead
      workers back to theirs, and recurring tasks and a slice of the sweep
      for lost jobs if this worker holds (or takes) the scheduler lease.
      Every worker ticks, so the cluster has no single point of failure;
      the scripts make concurrent ticks safe.

    Each turn also looks at the leases the worker could not renew: once a
    held claim's lease has gone unrenewed for 7/8 of its length it counts
    it (stats.lease_lost) and its handler sees zc_job_lost(), which the job
    works out from the clock by itself, even while this thread waits on a
    hung Redis.

    Between turns, while the dispatcher is idle with free slots, the keeper
    blocks on the queues' signal lists (BLPOP: this is why it has its own
    connection) and wakes the dispatcher when work arrives; once a second
    it wakes it anyway, as a safety net. On leaving it resigns the scheduler
    lease so another worker takes it over at once.

    Failures are counted and logged through the worker's alarms (once per
    kind, and once at the end), and retried with a growing pause: a failed
    renewal in 100, 200, 400 ms (at most lease/4), a failed tick in 500 ms,
    a refused BLPOP after the wait it would have made.
*/
#include "zc_log.h"
#include "zc_queue_worker_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TICK_MS         200  //  TICK period, plus up to 50 ms of jitter
#define S_TICK_LIMIT      1000 //  most jobs one TICK moves
#define S_SWEEP_COUNT     500  //  keys one TICK's sweep looks at
#define S_SCHEDULER_LEASE 2000 //  scheduler lease, renewed every tick
#define S_SAFETY_POLL_MS  1000 //  an idle dispatcher tries a claim this often anyway

typedef struct {
    zc_redis_args_t fail, extend, tick, listen, resign;
    uint64_t *extend_seq; //  the job of each claim in k->extend
    uint64_t turn;        //  counts the EXTEND calls; the jobs of the last carry it
    int n_fail, n_extend;
    int extend_failures; //  consecutive renewals that failed
    unsigned jitter_seed;
    int64_t renew_every, next_extend, next_tick;
    zc_queue_alarm_t reach, extend_alarm, tick_alarm, fail_alarm, listen_alarm, lease_alarm;
} s_keep_t;

//  The replies of one round trip, by call (NULL for a call not made).
typedef struct {
    redisReply *fail, *extend, *tick;
} s_replies_t;

//  Marks a run past its timeout abandoned and adds it to k->fail. Call with
//  the lock held.
static void s_time_out(zc_queue_worker_t *self, s_keep_t *k, zc_job_t *job)
{
    job->state = ZC_JOB_ABANDONED;
    atomic_store(&job->cancelled, 1);
    self->stats.timed_out++;
    zc_job_args_claim(&k->fail, job);
    char error[64];
    snprintf(error, sizeof error, "timed out after %lld ms", (long long)job->timeout_ms);
    zc_redis_args_str(&k->fail, error);
    k->n_fail++;
}

//  Counts, once, a held claim whose lease may have lapsed, and makes sure
//  its handler is told. Call with the lock held.
static void s_check_lease(zc_queue_worker_t *self, s_keep_t *k, zc_job_t *job)
{
    if (job->lease_counted || job->state == ZC_JOB_ABANDONED) return;
    if (!job->taken_back && !zc_job_lost(job)) return;
    atomic_store(&job->lease_lost, 1);
    job->lease_counted = 1;
    self->stats.lease_lost++;
    zc_queue_worker_alarm(self, &k->lease_alarm, "lease",
                          "could not keep the lease of job %s%s; handlers are told (zc_job_lost)",
                          job->id, job->taken_back ? " (taken back)" : "");
}

//  Collects runs past their timeout into k->fail and the claims to renew
//  into k->extend, and checks every lease. Call with the lock held.
//  Returns the ms until the next timeout can fire (or a large number).
static int64_t s_collect(zc_queue_worker_t *self, s_keep_t *k, int64_t now, int extend)
{
    int64_t next = 1000000;
    const char *node = self->identity.node_id;
    k->n_fail = k->n_extend = 0;
    zc_qs_args_start(&k->fail, ZC_QS_FAIL, &self->identity);
    zc_redis_args_str(&k->fail, node);
    zc_qs_args_start(&k->extend, ZC_QS_EXTEND, &self->identity);
    zc_redis_args_str(&k->extend, node);
    zc_redis_args_int(&k->extend, self->lease_ms);
    if (extend) k->turn++;
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        s_check_lease(self, k, job);
        if (job->state == ZC_JOB_RUNNING && job->timeout_ms > 0) {
            int64_t left = job->started_ms + job->timeout_ms - now;
            if (left < 0) {
                s_time_out(self, k, job);
                continue;
            }
            if (left < next) next = left;
        }
        if (extend && job->state != ZC_JOB_ABANDONED && !job->taken_back) {
            zc_job_args_claim(&k->extend, job);
            k->extend_seq[k->n_extend++] = job->seq;
            job->renewal = k->turn;
        }
    }
    return next;
}

//  Returns the held job with this seq, or NULL. Call with the lock held.
static zc_job_t *s_held(zc_queue_worker_t *self, uint64_t seq)
{
    for (int j = 0; j < self->held_count; j++)
        if (self->held[j]->seq == seq) return self->held[j];
    return NULL;
}

//  Applies an EXTEND reply to the claims renewed by a call sent at sent_ms:
//  the lost ones are marked taken back, the others renewed. Call with the
//  lock held.
static void s_apply_extend(zc_queue_worker_t *self, s_keep_t *k, const redisReply *r,
                           int64_t sent_ms)
{
    int64_t now = zclock_mono();
    if (r->type != REDIS_REPLY_ARRAY) {
        const char *text = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
        k->next_extend = now + zc_queue_backoff(k->extend_failures++ + 1, k->renew_every);
        zc_queue_worker_alarm(self, &k->extend_alarm, text, "lease renewal refused: %s (retrying)",
                              text);
        return;
    }
    k->extend_failures = 0;
    for (size_t i = 0; i < r->elements; i++) {
        int64_t index = zc_redis_reply_int(r->element[i], 0);
        zc_job_t *job =
            index >= 1 && index <= k->n_extend ? s_held(self, k->extend_seq[index - 1]) : NULL;
        if (!job) continue;
        job->taken_back = 1;
        atomic_store(&job->lease_lost, 1);
    }
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        if (job->renewal == k->turn && !job->taken_back)
            zc_job_lease_renewed(job, sent_ms, self->lease_ms);
    }
    const char *problem = zc_qs_reply_problem(r, 1);
    if (problem)
        zc_queue_worker_alarm(self, &k->extend_alarm, problem, "lease renewal: %s (lease kept)",
                              problem);
    else
        zc_queue_worker_alarm_clear(self, &k->extend_alarm, "lease renewal");
}

//  One round trip: FAIL the timed-out runs, EXTEND the leases, TICK if
//  tick; fills *r. Called without the lock. Returns 0, or -1 if Redis
//  cannot be reached.
static int s_round_trip(zc_queue_worker_t *self, s_keep_t *k, int tick, s_replies_t *r)
{
    zc_redis_args_t *calls[3];
    redisReply **slots[3];
    int n = 0;
    memset(r, 0, sizeof *r);
    if (k->n_fail) {
        slots[n] = &r->fail;
        calls[n++] = &k->fail;
    }
    if (k->n_extend) {
        slots[n] = &r->extend;
        calls[n++] = &k->extend;
    }
    if (tick) {
        zc_qs_args_start(&k->tick, ZC_QS_TICK, &self->identity);
        zc_redis_args_str(&k->tick, self->identity.node_id);
        zc_redis_args_int(&k->tick, S_SCHEDULER_LEASE);
        zc_redis_args_int(&k->tick, S_TICK_LIMIT);
        zc_redis_args_int(&k->tick, self->lease_ms);
        zc_redis_args_int(&k->tick, S_SWEEP_COUNT);
        slots[n] = &r->tick;
        calls[n++] = &k->tick;
    }
    if (n == 0) return 0;
    redisReply *replies[3];
    if (zc_redis_pipeline(self->keep_redis, calls, n, replies)) return -1;
    for (int i = 0; i < n; i++)
        *slots[i] = replies[i];
    return 0;
}

//  Reads a TICK reply; returns when to tick next. Call with the lock held.
static int64_t s_apply_tick(zc_queue_worker_t *self, s_keep_t *k, const redisReply *t, int64_t now)
{
    if (t->type != REDIS_REPLY_ARRAY || t->elements != 7) {
        const char *text = t->type == REDIS_REPLY_ERROR ? t->str : "unexpected reply";
        zc_queue_worker_alarm(self, &k->tick_alarm, text, "tick refused: %s (retrying)", text);
        return now + 500;
    }
    int64_t reaped = zc_redis_reply_int(t->element[1], 0);
    self->stats.scheduler = (int)zc_redis_reply_int(t->element[2], 0);
    int more = zc_redis_reply_int(t->element[4], 0) != 0;
    int64_t swept = zc_redis_reply_int(t->element[5], 0);
    const redisReply *problem = t->element[6];
    if (reaped > 0)
        zc_log(ZC_LOG_INFO, self->identity.node_id,
               "queue: returned %lld lapsed claims to their queues", (long long)reaped);
    if (swept > 0)
        zc_log(ZC_LOG_WARNING, self->identity.node_id,
               "queue: found %lld jobs that no claim or timer held; they will run again",
               (long long)swept);
    if (problem->type == REDIS_REPLY_STRING && problem->len > 0)
        zc_queue_worker_alarm(self, &k->tick_alarm, problem->str, "tick: %s (skipped)",
                              problem->str);
    else
        zc_queue_worker_alarm_clear(self, &k->tick_alarm, "tick");
    return more ? now : now + S_TICK_MS + rand_r(&k->jitter_seed) % 50;
}

//  Reads the reply to the FAIL of timed-out runs. Call with the lock held.
static void s_apply_fail(zc_queue_worker_t *self, s_keep_t *k, const redisReply *f)
{
    if (f->type == REDIS_REPLY_ARRAY && f->elements == 3) {
        self->stats.failed += (uint64_t)k->n_fail;
        zc_queue_worker_alarm_clear(self, &k->fail_alarm, "timeout report");
        return;
    }
    const char *text = f->type == REDIS_REPLY_ERROR ? f->str : "a job's hash holds another type";
    zc_queue_worker_alarm(self, &k->fail_alarm, text,
                          "timeout report refused: %s (left to the lease)", text);
}

//  Applies a round trip's outcome and plans the next turn. Call with the
//  lock held.
static void s_apply(zc_queue_worker_t *self, s_keep_t *k, int rc, s_replies_t *r, int extend,
                    int64_t sent_ms)
{
    int64_t now = zclock_mono();
    if (rc) {
        const char *why = zc_redis_errstr(self->keep_redis);
        zc_queue_worker_alarm(self, &k->reach, "unreachable", "keeper cannot reach Redis: %s", why);
        k->next_tick = now + 500;
        if (extend) k->next_extend = now + 100; //  try the renewal again soon
        return;
    }
    zc_queue_worker_alarm_clear(self, &k->reach, "keeper's Redis");
    if (r->fail) s_apply_fail(self, k, r->fail);
    if (r->extend) s_apply_extend(self, k, r->extend, sent_ms);
    if (r->tick) k->next_tick = s_apply_tick(self, k, r->tick, now);
    redisReply *replies[] = {r->fail, r->extend, r->tick};
    for (int i = 0; i < 3; i++)
        if (replies[i]) freeReplyObject(replies[i]);
}

//  Blocks on the queues' signal lists for up to ms; returns 1 if one was
//  popped, 0 if not, -1 if Redis refused or failed (what with the reason
//  in errbuf). Called without the lock.
static int s_listen(zc_queue_worker_t *self, s_keep_t *k, int64_t ms, char *errbuf, size_t cap)
{
    zc_redis_args_reset(&k->listen);
    zc_redis_args_str(&k->listen, "BLPOP");
    for (int i = 0; i < self->queue_count; i++) {
        char suffix[ZC_QUEUE_NAME_MAX + 16], key[ZC_PREFIX_MAX + ZC_QUEUE_NAME_MAX + 16];
        snprintf(suffix, sizeof suffix, "q:%s:signal", self->queues[i]);
        zc_redis_args_str(&k->listen, zc_identity_key(&self->identity, key, sizeof key, suffix));
    }
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%.3f", (double)(ms < 10 ? 10 : ms) / 1000.0);
    zc_redis_args_str(&k->listen, timeout);
    redisReply *reply = zc_redis_call(self->keep_redis, &k->listen);
    int popped = reply && reply->type == REDIS_REPLY_ARRAY;
    if (!reply) snprintf(errbuf, cap, "%s", zc_redis_errstr(self->keep_redis));
    if (reply && reply->type == REDIS_REPLY_ERROR) snprintf(errbuf, cap, "%s", reply->str);
    int failed = !reply || reply->type == REDIS_REPLY_ERROR;
    if (reply) freeReplyObject(reply);
    return failed ? -1 : popped;
}

//  Waits until the next turn is due, listening for work while the
//  dispatcher is hungry. Call with the lock held.
static void s_idle(zc_queue_worker_t *self, s_keep_t *k, int64_t timeout_in)
{
    int64_t now = zclock_mono();
    int64_t wait = k->next_tick - now;
    if (k->next_extend - now < wait) wait = k->next_extend - now;
    if (timeout_in < wait) wait = timeout_in;
    if (!self->hungry || self->stopping || self->queue_count == 0 || wait <= 0) {
        zc_queue_worker_wait(self, &self->keeper_cond, wait);
        return;
    }
    pthread_mutex_unlock(&self->lock);
    char err[256];
    int popped = s_listen(self, k, wait, err, sizeof err);
    pthread_mutex_lock(&self->lock);
    if (popped < 0) {
        //  A signal key of another type, or Redis away: wait as BLPOP would have.
        if (zc_redis_up(self->keep_redis))
            zc_queue_worker_alarm(self, &k->listen_alarm, err, "waiting for work: %s", err);
        zc_queue_worker_wait(self, &self->keeper_cond, wait - (zclock_mono() - now));
    } else
        zc_queue_worker_alarm_clear(self, &k->listen_alarm, "waiting for work");
    if (popped > 0 || (self->hungry && zclock_mono() - self->hungry_since >= S_SAFETY_POLL_MS)) {
        self->wake = 1;
        self->hungry_since = zclock_mono();
        pthread_cond_signal(&self->dispatch_cond);
    }
}

//  Gives the scheduler lease to another node at once. Called without the
//  lock, when leaving.
static void s_resign(zc_queue_worker_t *self, s_keep_t *k)
{
    zc_qs_args_start(&k->resign, ZC_QS_RELEASE, &self->identity);
    zc_redis_args_str(&k->resign, self->identity.node_id);
    zc_redis_args_str(&k->resign, "1");
    redisReply *reply = zc_redis_call(self->keep_redis, &k->resign);
    if (reply) freeReplyObject(reply);
}

void *zc_queue_keeper(void *worker)
{
    zc_queue_worker_t *self = (zc_queue_worker_t *)worker;
    s_keep_t k;
    memset(&k, 0, sizeof k);
    int cap = zc_queue_worker_capacity(self);
    k.extend_seq = (uint64_t *)calloc((size_t)cap, sizeof(uint64_t));
    assert(k.extend_seq);
    k.jitter_seed = (unsigned)(zclock_mono() ^ (uintptr_t)self);
    k.renew_every = self->lease_ms / 4;
    k.next_extend = zclock_mono() + k.renew_every;

    pthread_mutex_lock(&self->lock);
    while (!self->keeper_exit) {
        int64_t now = zclock_mono();
        int extend = now >= k.next_extend;
        int64_t timeout_in = s_collect(self, &k, now, extend);
        if (extend) k.next_extend = now + k.renew_every;
        int tick = now >= k.next_tick;
        pthread_mutex_unlock(&self->lock);
        s_replies_t r;
        int rc = s_round_trip(self, &k, tick, &r);
        pthread_mutex_lock(&self->lock);
        s_apply(self, &k, rc, &r, extend, now);
        if (!self->keeper_exit) s_idle(self, &k, timeout_in);
    }
    pthread_mutex_unlock(&self->lock);

    s_resign(self, &k);
    zc_redis_args_free(&k.fail);
    zc_redis_args_free(&k.extend);
    zc_redis_args_free(&k.tick);
    zc_redis_args_free(&k.listen);
    zc_redis_args_free(&k.resign);
    free(k.extend_seq);
    return NULL;
}
