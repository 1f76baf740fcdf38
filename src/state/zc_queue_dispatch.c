/*  zc_queue_dispatch — the worker's dispatcher thread: settle, claim, give back.

    One loop, one Redis connection. Each cycle collects the runs that
    finished, and at stop the claims no thread started, then does one
    pipelined round trip: ACK the runs that succeeded, FAIL those that
    failed, RELEASE the unstarted claims (at stop), CLAIM up to the free
    slots. Runs that finish while a round trip is out travel together in
    the next, so acks batch themselves under load.

    When a claim finds nothing the dispatcher goes idle ("hungry") and
    leaves the waiting to the keeper, which blocks on the queues' signal
    lists and wakes it; an idle dispatcher claims nothing until woken, so an
    idle worker costs Redis no polling.

    After a failed round trip the results are sent again in the next
    cycle, after a pause that grows with the failures. ACK and FAIL name
    the claim they settle, so a repeat of one that did reach Redis changes
    nothing but the lost_acks count.
    At stop the dispatcher leaves once it holds no claim; if Redis stays
    away for S_STOP_GIVE_UP_MS it leaves the rest to their leases, which
    lapse and return them to their queues.
*/
#include "zc_log.h"
#include "zc_queue_worker_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_STOP_GIVE_UP_MS 3000 //  at stop, stop retrying Redis after this long

typedef struct {
    zc_redis_args_t ack, fail, release, claim;
    zc_job_t **settle, **release_jobs;
    int n_settle, n_release;
    int idle;     //  the last claim found nothing
    int failures; //  consecutive failed round trips
} s_dispatch_t;

//  The replies of one round trip, by call (NULL for a call not made).
typedef struct {
    redisReply *ack, *fail, *release, *claim;
} s_replies_t;

//  Adds the jobs of a claim reply to the held jobs and hands them out.
//  Returns how many. Call with the lock held.
static int s_take_claims(zc_queue_worker_t *self, const redisReply *claim)
{
    if (claim->type != REDIS_REPLY_ARRAY || claim->elements % 6 != 0) return 0;
    int got = 0;
    for (size_t i = 0; i < claim->elements; i += 6) {
        zc_job_t *job = zc_job_new_claimed(self, claim->element + i, ++self->next_seq);
        if (!job) {
            zc_log(ZC_LOG_WARNING, self->identity.node_id,
                   "malformed claim reply; job left to its lease");
            continue;
        }
        self->held[self->held_count++] = job;
        zc_queue_worker_hand_out(self, job);
        got++;
    }
    return got;
}

//  Applies the replies of one round trip. Call with the lock held.
static void s_apply(zc_queue_worker_t *self, s_dispatch_t *d, const s_replies_t *r, int want)
{
    if (r->ack && r->ack->type == REDIS_REPLY_ARRAY && r->ack->elements == 2) {
        self->stats.succeeded += (uint64_t)zc_redis_reply_int(r->ack->element[0], 0);
        self->stats.lost += (uint64_t)zc_redis_reply_int(r->ack->element[1], 0);
    }
    if (r->fail && r->fail->type == REDIS_REPLY_ARRAY && r->fail->elements == 3) {
        self->stats.failed += (uint64_t)(zc_redis_reply_int(r->fail->element[0], 0) +
                                         zc_redis_reply_int(r->fail->element[1], 0));
        self->stats.lost += (uint64_t)zc_redis_reply_int(r->fail->element[2], 0);
    }
    if (r->release) self->stats.released += (uint64_t)zc_redis_reply_int(r->release, 0);
    for (int i = 0; i < d->n_settle; i++)
        zc_queue_worker_forget(self, d->settle[i]);
    for (int i = 0; i < d->n_release; i++)
        zc_queue_worker_forget(self, d->release_jobs[i]);
    d->n_settle = d->n_release = 0;
    if (!r->claim) return;
    int got = s_take_claims(self, r->claim);
    self->stats.claimed += (uint64_t)got;
    d->idle = want > 0 && got == 0;
}

//  Builds the ACK and FAIL calls for d->settle into calls, each with the
//  slot of r for its reply in slots. Returns how many calls it built.
static int s_build_settle(zc_queue_worker_t *self, s_dispatch_t *d, zc_redis_args_t **calls,
                          redisReply ***slots, s_replies_t *r)
{
    int acks = 0, fails = 0, n = 0;
    zc_qs_args_start(&d->ack, ZC_QS_ACK, &self->identity);
    zc_redis_args_str(&d->ack, self->identity.node_id);
    zc_qs_args_start(&d->fail, ZC_QS_FAIL, &self->identity);
    zc_redis_args_str(&d->fail, self->identity.node_id);
    for (int i = 0; i < d->n_settle; i++) {
        zc_job_t *job = d->settle[i];
        if (job->rc == 0) {
            zc_job_args_claim(&d->ack, job);
            acks++;
        } else {
            zc_job_args_claim(&d->fail, job);
            zc_redis_args_str(&d->fail, job->errstr);
            fails++;
        }
    }
    if (acks) {
        slots[n] = &r->ack;
        calls[n++] = &d->ack;
    }
    if (fails) {
        slots[n] = &r->fail;
        calls[n++] = &d->fail;
    }
    return n;
}

//  One round trip: settles d->settle, releases d->release_jobs, claims
//  want jobs; fills *r. Called without the lock. Returns 0, or -1 if Redis
//  failed (nothing to apply; the caller keeps the jobs for the next cycle).
static int s_round_trip(zc_queue_worker_t *self, s_dispatch_t *d, int want, s_replies_t *r)
{
    zc_redis_args_t *calls[4];
    redisReply **slots[4];
    memset(r, 0, sizeof *r);
    int n = s_build_settle(self, d, calls, slots, r);
    if (d->n_release) {
        zc_qs_args_start(&d->release, ZC_QS_RELEASE, &self->identity);
        zc_redis_args_str(&d->release, self->identity.node_id);
        zc_redis_args_str(&d->release, "0");
        for (int i = 0; i < d->n_release; i++)
            zc_job_args_claim(&d->release, d->release_jobs[i]);
        slots[n] = &r->release;
        calls[n++] = &d->release;
    }
    if (want > 0) {
        zc_qs_args_start(&d->claim, ZC_QS_CLAIM, &self->identity);
        zc_redis_args_str(&d->claim, self->identity.node_id);
        zc_redis_args_int(&d->claim, self->lease_ms);
        zc_redis_args_int(&d->claim, want);
        for (int i = 0; i < self->queue_count; i++)
            zc_redis_args_str(&d->claim, self->queues[i]);
        slots[n] = &r->claim;
        calls[n++] = &d->claim;
    }
    if (n == 0) return 0;
    redisReply *replies[4];
    const char *failure = NULL, *what = "";
    if (zc_redis_pipeline(self->claim_redis, calls, n, replies))
        failure = zc_redis_errstr(self->claim_redis);
    for (int i = 0; i < n && !failure; i++)
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            failure = replies[i]->str;
            what = "Redis error: ";
        }
    if (failure) {
        if (d->failures++ == 0)
            zc_log(ZC_LOG_WARNING, self->identity.node_id, "queue: %s%s", what, failure);
        for (int i = 0; i < n; i++)
            if (replies[i]) freeReplyObject(replies[i]);
        return -1;
    }
    if (d->failures) zc_log(ZC_LOG_INFO, self->identity.node_id, "queue: Redis reachable again");
    d->failures = 0;
    for (int i = 0; i < n; i++)
        *slots[i] = replies[i];
    return 0;
}

//  Collects the results to settle, and at stop the claims to give back.
//  Returns 1 once the worker is stopping and holds nothing. Call with the
//  lock held.
static int s_collect(zc_queue_worker_t *self, s_dispatch_t *d)
{
    d->n_settle = d->n_release = 0;
    for (int i = 0; i < self->held_count; i++)
        if (self->held[i]->state == ZC_JOB_DONE) {
            self->held[i]->state = ZC_JOB_SETTLING;
            d->settle[d->n_settle++] = self->held[i];
        }
    if (!self->stopping) return 0;
    zc_queue_worker_take_back(self);
    zc_job_t *job;
    while ((job = zc_queue_worker_run_pop(self)) != NULL) {
        if (job->lost) {
            self->stats.lost++;
            zc_queue_worker_forget(self, job);
            continue;
        }
        job->state = ZC_JOB_SETTLING;
        d->release_jobs[d->n_release++] = job;
    }
    return self->held_count == 0;
}

//  After a failed round trip: keeps the jobs for the next cycle and pauses,
//  or at stop, once Redis stayed away too long, leaves them to their
//  leases. Call with the lock held.
static void s_recover(zc_queue_worker_t *self, s_dispatch_t *d)
{
    int give_up = self->stopping && zclock_mono() - self->stopping_since > S_STOP_GIVE_UP_MS;
    for (int i = 0; i < d->n_settle; i++) {
        if (give_up)
            zc_queue_worker_forget(self, d->settle[i]);
        else
            d->settle[i]->state = ZC_JOB_DONE;
    }
    for (int i = 0; i < d->n_release; i++) {
        zc_job_t *job = d->release_jobs[i];
        if (give_up)
            zc_queue_worker_forget(self, job);
        else {
            //  Back on the run queue; the stop path takes them again.
            job->state = ZC_JOB_CLAIMED;
            zc_queue_worker_run_push_front(self, job);
        }
    }
    d->n_settle = d->n_release = 0;
    if (give_up) return;
    int64_t pause = 50 << (d->failures < 5 ? d->failures : 5);
    zc_queue_worker_wait(self, &self->dispatch_cond, pause > 1000 ? 1000 : pause);
}

//  Runs one cycle. Call with the lock held; releases it during the round
//  trip and the handlers it runs.
static void s_cycle(zc_queue_worker_t *self, s_dispatch_t *d)
{
    int busy = self->held_count - d->n_settle;
    int free_slots = self->stopping ? 0 : self->concurrency - busy;
    int want = free_slots > 0 && (!d->idle || self->wake) ? free_slots : 0;
    if (d->n_settle == 0 && d->n_release == 0 && want == 0) {
        if (free_slots > 0 && !self->hungry) {
            self->hungry = 1;
            self->hungry_since = zclock_mono();
            pthread_cond_signal(&self->keeper_cond);
        }
        zc_queue_worker_wait(self, &self->dispatch_cond, 1000);
        return;
    }
    if (want) self->wake = self->hungry = 0;
    pthread_mutex_unlock(&self->lock);
    s_replies_t r;
    int rc = s_round_trip(self, d, want, &r);
    pthread_mutex_lock(&self->lock);
    if (rc == 0) {
        s_apply(self, d, &r, want);
        redisReply *replies[] = {r.ack, r.fail, r.release, r.claim};
        for (int i = 0; i < 4; i++)
            if (replies[i]) freeReplyObject(replies[i]);
    } else
        s_recover(self, d);
    //  No handler threads: run what was claimed here, in order.
    if (!self->pool) {
        zc_job_t *job;
        while (!self->stopping && (job = zc_queue_worker_run_pop(self)) != NULL)
            zc_queue_worker_execute(self, job);
    }
}

void *zc_queue_dispatcher(void *worker)
{
    zc_queue_worker_t *self = (zc_queue_worker_t *)worker;
    s_dispatch_t d;
    memset(&d, 0, sizeof d);
    int cap = self->concurrency > 0 ? self->concurrency : 1;
    d.settle = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    d.release_jobs = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
    assert(d.settle && d.release_jobs);

    pthread_mutex_lock(&self->lock);
    while (!s_collect(self, &d))
        s_cycle(self, &d);
    pthread_mutex_unlock(&self->lock);
    zc_redis_args_free(&d.ack);
    zc_redis_args_free(&d.fail);
    zc_redis_args_free(&d.release);
    zc_redis_args_free(&d.claim);
    free(d.settle);
    free(d.release_jobs);
    return NULL;
}
