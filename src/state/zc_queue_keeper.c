/*  zc_queue_keeper — the worker's keeper thread: leases, timeouts, ticks,
    wake-ups.

    The keeper keeps the worker honest and the cluster moving, on a Redis
    connection of its own, in one pipelined round trip per turn:

    - EXTEND, every lease/4: renews the leases of the claims the worker
      holds, whatever its handlers do, so a slow handler is never mistaken
      for a dead worker. A claim that turns out lost (taken back by
      zc_queue_requeue_node, or after the worker was cut off from Redis for
      longer than the lease) is dropped if it has not started.
    - FAIL, as soon as a run passes its timeout: the run is reported failed
      (retry or failed list) and cancelled; its handler's eventual result
      is ignored.
    - TICK, every ~200 ms plus jitter (at once again while there is a
      backlog): due delayed jobs to their queue, lapsed claims of dead
      workers back to theirs, and recurring tasks if this worker holds (or
      takes) the scheduler lease. Every worker ticks, so the cluster has no
      single point of failure; the scripts make concurrent ticks safe.

    Between turns, while the dispatcher is idle with free slots, the keeper
    blocks on the queues' signal lists (BLPOP: this is why it has its own
    connection) and wakes the dispatcher when work arrives; once a second
    it wakes it anyway, as a safety net. On leaving it resigns the scheduler
    lease so another worker takes it over at once.
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
#define S_SCHEDULER_LEASE 2000 //  scheduler lease, renewed every tick
#define S_SAFETY_POLL_MS  1000 //  an idle dispatcher tries a claim this often anyway

typedef struct {
    zc_redis_args_t fail, extend, tick, listen, resign;
    uint64_t *extend_seq; //  the job of each claim in k->extend
    int n_fail, n_extend;
    int failures; //  consecutive failed round trips
    unsigned jitter_seed;
    int64_t renew_every, next_extend, next_tick;
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

//  Collects runs past their timeout into k->fail and the claims to renew
//  into k->extend. Call with the lock held. Returns the ms until the next
//  timeout can fire (or a large number).
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
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        if (job->state == ZC_JOB_RUNNING && job->timeout_ms > 0) {
            int64_t left = job->started_ms + job->timeout_ms - now;
            if (left < 0) {
                s_time_out(self, k, job);
                continue;
            }
            if (left < next) next = left;
        }
        if (extend && job->state != ZC_JOB_ABANDONED) {
            zc_job_args_claim(&k->extend, job);
            k->extend_seq[k->n_extend++] = job->seq;
        }
    }
    return next;
}

//  Marks the claims EXTEND reported lost. Call with the lock held.
static void s_mark_lost(zc_queue_worker_t *self, s_keep_t *k, const redisReply *lost)
{
    if (lost->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < lost->elements; i++) {
        int64_t index = zc_redis_reply_int(lost->element[i], 0);
        if (index < 1 || index > k->n_extend) continue;
        uint64_t seq = k->extend_seq[index - 1];
        for (int j = 0; j < self->held_count; j++)
            if (self->held[j]->seq == seq && self->held[j]->state == ZC_JOB_CLAIMED) {
                self->held[j]->lost = 1;
                zc_log(ZC_LOG_WARNING, self->identity.node_id,
                       "queue: lost the claim on job %s before it ran", self->held[j]->id);
            }
    }
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
        slots[n] = &r->tick;
        calls[n++] = &k->tick;
    }
    if (n == 0) return 0;
    redisReply *replies[3];
    if (zc_redis_pipeline(self->keep_redis, calls, n, replies)) {
        if (k->failures++ == 0)
            zc_log(ZC_LOG_WARNING, self->identity.node_id, "queue: keeper cannot reach Redis: %s",
                   zc_redis_errstr(self->keep_redis));
        return -1;
    }
    k->failures = 0;
    for (int i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR)
            zc_log(ZC_LOG_WARNING, self->identity.node_id, "queue: Redis error: %s",
                   replies[i]->str);
        *slots[i] = replies[i];
    }
    return 0;
}

//  Reads a TICK reply; returns when to tick next. Call with the lock held.
static int64_t s_apply_tick(zc_queue_worker_t *self, s_keep_t *k, const redisReply *t, int64_t now)
{
    int full = 0;
    if (t->type == REDIS_REPLY_ARRAY && t->elements == 4) {
        int64_t promoted = zc_redis_reply_int(t->element[0], 0);
        int64_t reaped = zc_redis_reply_int(t->element[1], 0);
        self->stats.scheduler = (int)zc_redis_reply_int(t->element[2], 0);
        full = promoted >= S_TICK_LIMIT || reaped >= S_TICK_LIMIT;
        if (reaped > 0)
            zc_log(ZC_LOG_INFO, self->identity.node_id,
                   "queue: returned %lld lapsed claims to their queues", (long long)reaped);
    }
    return full ? now : now + S_TICK_MS + rand_r(&k->jitter_seed) % 50;
}

//  Applies a round trip's outcome and plans the next turn. Call with the
//  lock held.
static void s_apply(zc_queue_worker_t *self, s_keep_t *k, int rc, s_replies_t *r, int extend)
{
    int64_t now = zclock_mono();
    if (rc) {
        k->next_tick = now + 500;
        if (extend) k->next_extend = now + 100; //  try the renewal again soon
        return;
    }
    if (r->fail) self->stats.failed += (uint64_t)k->n_fail;
    if (r->extend) s_mark_lost(self, k, r->extend);
    if (r->tick) k->next_tick = s_apply_tick(self, k, r->tick, now);
    redisReply *replies[] = {r->fail, r->extend, r->tick};
    for (int i = 0; i < 3; i++)
        if (replies[i]) freeReplyObject(replies[i]);
}

//  Blocks on the queues' signal lists for up to ms; returns 1 if one was
//  popped. Called without the lock.
static int s_listen(zc_queue_worker_t *self, s_keep_t *k, int64_t ms)
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
    if (reply) freeReplyObject(reply);
    return popped;
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
    int popped = s_listen(self, k, wait);
    pthread_mutex_lock(&self->lock);
    if (popped || (self->hungry && zclock_mono() - self->hungry_since >= S_SAFETY_POLL_MS)) {
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
    int cap = self->concurrency > 0 ? self->concurrency : 1;
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
        s_apply(self, &k, rc, &r, extend);
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
