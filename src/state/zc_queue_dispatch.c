/*  zc_queue_dispatch — the worker's dispatcher thread: settle, claim, give back.

    One loop, one Redis connection. Each cycle collects the runs that
    finished, and the claims to give back (at stop, the ones no thread
    started; any time, those whose lease was lost), then does one
    pipelined round trip: ACK the runs that succeeded, FAIL those that
    failed, RELEASE the claims to give back, CLAIM up to the free slots.
    Runs that finish while a round trip is out travel together in the next,
    so acks batch themselves under load.

    Claiming ahead: a claim takes the slots free at the time it is sent,
    so with handler threads that finish their jobs before the round trip
    is back, the threads would wait for every round trip, one job each at
    concurrency 1. So while they run out of work (after a round trip that
    settled results, the jobs claimed before it have all started and a
    thread is idle) the worker claims more than its concurrency: a window
    of jobs ahead, doubled each time, up to ZC_QUEUE_AHEAD_MAX. Once jobs
    claimed before a round trip are still waiting for a thread when it is
    back (the handlers are the limit, not Redis), the window halves, so a
    job claimed ahead waits about one round trip, and slow jobs are not
    hoarded: they run with at most a job or two ahead. It grows only while
    claims take all they ask for, and closes when a claim finds nothing
    (an idle worker starts small on the next jobs, which may be slow) and
    while results are put off. Jobs claimed ahead are leased, renewed and
    given back at stop like any other.

    When a claim finds nothing the dispatcher goes idle ("hungry") and
    leaves the waiting to the keeper, which blocks on the queues' signal
    lists and wakes it; an idle dispatcher claims nothing until woken, so an
    idle worker costs Redis no polling.

    Failures, and why nothing spins: every call of a round trip is judged on
    its own reply, so a claim that succeeded is kept even if an ack next to
    it failed. A round trip that cannot reach Redis is sent again after a
    pause that grows with the failures. A call that Redis refuses (a key of
    the wrong type: the script wrote nothing) keeps its jobs' results and
    sends them again after a pause of their own that grows with their tries;
    a refused claim pauses claiming the same way. A result that the script
    put off (its job's hash unreadable) is retried alone in the same way.
    ACK and FAIL name the claim they settle, so a repeat of one that did
    reach Redis changes nothing but the lost_acks count.
    At stop the dispatcher leaves once it holds no claim; if results still
    cannot be delivered after S_STOP_GIVE_UP_MS it leaves them to their
    leases, which lapse and return the jobs to their queues.
*/
#include "zc_log.h"
#include "zc_queue_worker_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdlib.h>
#include <string.h>

#define S_STOP_GIVE_UP_MS 3000 //  at stop, stop retrying Redis after this long
#define S_RETRY_MAX_MS    1000 //  longest pause before a result or a claim is tried again

//  One call of a round trip and the jobs it settles, in argument order.
typedef struct {
    zc_redis_args_t args;
    zc_job_t **jobs;
    int count;
    zc_queue_alarm_t alarm;
} s_call_t;

enum { S_ACK, S_FAIL, S_RELEASE, S_SETTLE_CALLS };

typedef struct {
    s_call_t settle[S_SETTLE_CALLS];
    zc_redis_args_t claim;
    int ahead;              //  jobs claimed beyond the concurrency (the window)
    int idle;               //  the last claim found nothing
    int got;                //  jobs the last claim took
    int failures;           //  consecutive round trips that could not reach Redis
    int claim_failures;     //  consecutive claims Redis refused
    int64_t claim_after;    //  no claim before this time (zclock_mono ms)
    zc_queue_alarm_t reach; //  Redis unreachable
    zc_queue_alarm_t claim_alarm;
    zc_queue_alarm_t put_off; //  results put off, by job
} s_dispatch_t;

static const char *s_call_names[S_SETTLE_CALLS] = {"ack", "fail", "release"};
//  How many counts a reply of each call has before its put-off indexes.
static const size_t s_call_heads[S_SETTLE_CALLS] = {2, 3, 1};

//  --------------------------------------------------------------------------
//  Applying replies

//  Keeps a job whose result could not be settled, to try again later.
static void s_put_off(zc_job_t *job, int64_t now)
{
    job->state = ZC_JOB_DONE;
    job->retry_at = now + zc_queue_backoff(job->tries++, S_RETRY_MAX_MS);
}

//  Adds the jobs of a claim reply to the held jobs and hands them out.
//  Returns how many. Call with the lock held.
static int s_take_claims(zc_queue_worker_t *self, const redisReply *claim, int64_t sent_ms)
{
    if (claim->type != REDIS_REPLY_ARRAY) return 0;
    int got = 0;
    for (size_t i = 0; i + 6 <= claim->elements; i += 6) {
        zc_job_t *job = self->held_count < zc_queue_worker_capacity(self)
                            ? zc_job_new_claimed(self, claim->element + i, ++self->next_seq)
                            : NULL;
        if (!job) {
            zc_log(ZC_LOG_WARNING, self->identity.node_id,
                   "unexpected claim reply; job left to its lease");
            continue;
        }
        zc_job_lease_renewed(job, sent_ms, self->lease_ms);
        self->held[self->held_count++] = job;
        zc_queue_worker_hand_out(self, job);
        got++;
    }
    return got;
}

//  Applies the reply to a CLAIM of want jobs sent at sent_ms. Call with the
//  lock held.
static void s_apply_claim(zc_queue_worker_t *self, s_dispatch_t *d, const redisReply *reply,
                          int want, int64_t sent_ms)
{
    int64_t now = zclock_mono();
    d->got = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        d->claim_after = now + zc_queue_backoff(d->claim_failures++, S_RETRY_MAX_MS);
        zc_queue_worker_alarm(self, &d->claim_alarm, reply->str, "claim refused: %s (retrying)",
                              reply->str);
        return;
    }
    d->claim_failures = 0;
    int got = s_take_claims(self, reply, sent_ms);
    self->stats.claimed += (uint64_t)got;
    d->idle = want > 0 && got == 0;
    d->got = got;
    const char *problem = zc_qs_reply_problem(reply, 6);
    if (problem)
        zc_queue_worker_alarm(self, &d->claim_alarm, problem, "claim: %s (skipped)", problem);
    else
        zc_queue_worker_alarm_clear(self, &d->claim_alarm, "claim");
}

//  Adds a settle call's counts to the worker's stats; count jobs were sent,
//  put_off of them put off.
static void s_count(zc_queue_worker_t *self, int call, const redisReply *reply, int count,
                    int put_off)
{
    int64_t v[3] = {0, 0, 0};
    for (size_t i = 0; i < s_call_heads[call]; i++)
        v[i] = zc_redis_reply_int(reply->element[i], 0);
    if (call == S_ACK) {
        self->stats.succeeded += (uint64_t)v[0];
        self->stats.lost += (uint64_t)v[1];
    } else if (call == S_FAIL) {
        self->stats.failed += (uint64_t)(v[0] + v[1]);
        self->stats.lost += (uint64_t)v[2];
    } else {
        //  A claim that was not given back had been taken back already.
        self->stats.released += (uint64_t)v[0];
        self->stats.lost += (uint64_t)(count - put_off - v[0]);
    }
}

//  Applies the reply to one settle call: its jobs are done with, but those
//  put off, or all of them if Redis refused the call, are kept to be sent
//  again. A job put off is reported on put_off once, and once more when
//  its result finally went through. Call with the lock held.
static void s_apply_settle(zc_queue_worker_t *self, int call, s_call_t *c, const redisReply *reply,
                           zc_queue_alarm_t *put_off_alarm)
{
    int64_t now = zclock_mono();
    size_t head = s_call_heads[call];
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < head) {
        const char *text = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
        for (int i = 0; i < c->count; i++)
            s_put_off(c->jobs[i], now);
        zc_queue_worker_alarm(self, &c->alarm, text, "%s refused: %s (results kept, retrying)",
                              s_call_names[call], text);
        return;
    }
    int put_off = 0;
    const char *problem = zc_qs_reply_problem(reply, 1);
    for (size_t i = head; i < reply->elements; i++) {
        int64_t k = zc_redis_reply_int(reply->element[i], 0);
        if (k < 1 || k > c->count || !c->jobs[k - 1]) continue;
        zc_job_t *job = c->jobs[k - 1];
        zc_queue_worker_alarm(self, put_off_alarm, job->id, "%s of job %s put off: %s (retrying)",
                              s_call_names[call], job->id, problem ? problem : "unusable keys");
        s_put_off(job, now);
        c->jobs[k - 1] = NULL;
        put_off++;
    }
    s_count(self, call, reply, c->count, put_off);
    zc_queue_worker_alarm_clear(self, &c->alarm, s_call_names[call]);
    for (int i = 0; i < c->count; i++) {
        zc_job_t *job = c->jobs[i];
        if (!job) continue;
        if (job->tries && strcmp(put_off_alarm->kind, job->id) == 0)
            zc_queue_worker_alarm_clear(self, put_off_alarm, "delivering put-off results");
        zc_queue_worker_forget(self, job);
    }
}

//  --------------------------------------------------------------------------
//  A round trip

//  Builds the settle calls for the jobs collected in d. Returns how many
//  calls it added to calls.
static int s_build_settle(zc_queue_worker_t *self, s_dispatch_t *d, zc_redis_args_t **calls,
                          int *kinds)
{
    int n = 0;
    for (int call = 0; call < S_SETTLE_CALLS; call++) {
        s_call_t *c = &d->settle[call];
        if (!c->count) continue;
        zc_qs_args_start(&c->args,
                         call == S_ACK    ? ZC_QS_ACK
                         : call == S_FAIL ? ZC_QS_FAIL
                                          : ZC_QS_RELEASE,
                         &self->identity);
        zc_redis_args_str(&c->args, self->identity.node_id);
        if (call == S_RELEASE) zc_redis_args_str(&c->args, "0");
        for (int i = 0; i < c->count; i++) {
            zc_job_args_claim(&c->args, c->jobs[i]);
            if (call == S_FAIL) zc_redis_args_str(&c->args, c->jobs[i]->errstr);
        }
        kinds[n] = call;
        calls[n++] = &c->args;
    }
    return n;
}

//  One round trip: the settle calls of d, and a CLAIM of want jobs. Called
//  without the lock. Fills replies and kinds (the settle call of each
//  reply, or -1 for the claim). Returns how many calls were made, or -1 if
//  Redis could not be reached (the connection's error says why).
static int s_round_trip(zc_queue_worker_t *self, s_dispatch_t *d, int want, redisReply **replies,
                        int *kinds)
{
    zc_redis_args_t *calls[S_SETTLE_CALLS + 1];
    int n = s_build_settle(self, d, calls, kinds);
    if (want > 0) {
        zc_qs_args_start(&d->claim, ZC_QS_CLAIM, &self->identity);
        zc_redis_args_str(&d->claim, self->identity.node_id);
        zc_redis_args_int(&d->claim, self->lease_ms);
        zc_redis_args_int(&d->claim, want);
        for (int i = 0; i < self->queue_count; i++)
            zc_redis_args_str(&d->claim, self->queues[i]);
        kinds[n] = -1;
        calls[n++] = &d->claim;
    }
    if (n == 0) return 0;
    return zc_redis_pipeline(self->claim_redis, calls, n, replies) ? -1 : n;
}

//  Collects the results to settle (those whose retry time came) and, at
//  stop, the claims to give back. Returns 1 once the worker is stopping
//  and holds nothing. Call with the lock held.
static int s_collect(zc_queue_worker_t *self, s_dispatch_t *d)
{
    int64_t now = zclock_mono();
    if (self->stopping) {
        zc_queue_worker_take_back(self);
        zc_job_t *job;
        while ((job = zc_queue_worker_run_pop(self)) != NULL) {
            if (job->taken_back) {
                self->stats.lost++;
                zc_queue_worker_forget(self, job);
            } else {
                job->give_back = 1;
                job->state = ZC_JOB_DONE;
            }
        }
    }
    int give_up = self->stopping && now - self->stopping_since > S_STOP_GIVE_UP_MS;
    for (int call = 0; call < S_SETTLE_CALLS; call++)
        d->settle[call].count = 0;
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        if (job->state != ZC_JOB_DONE) continue;
        if (give_up && job->tries > 0) {
            zc_queue_worker_forget(self, job); //  left to its lease
            i--;
            continue;
        }
        if (job->retry_at > now) continue;
        job->state = ZC_JOB_SETTLING;
        s_call_t *c = &d->settle[job->give_back ? S_RELEASE : job->rc == 0 ? S_ACK : S_FAIL];
        c->jobs[c->count++] = job;
    }
    return self->stopping && self->held_count == 0;
}

//  After a round trip that could not reach Redis: keeps the results for
//  the next cycle and pauses, or at stop, once Redis stayed away too long,
//  leaves them to their leases. Call with the lock held.
static void s_recover(zc_queue_worker_t *self, s_dispatch_t *d)
{
    int give_up = self->stopping && zclock_mono() - self->stopping_since > S_STOP_GIVE_UP_MS;
    for (int call = 0; call < S_SETTLE_CALLS; call++)
        for (int i = 0; i < d->settle[call].count; i++) {
            zc_job_t *job = d->settle[call].jobs[i];
            if (give_up)
                zc_queue_worker_forget(self, job);
            else
                job->state = ZC_JOB_DONE;
        }
    zc_queue_worker_alarm(self, &d->reach, "unreachable", "%s (retrying)",
                          zc_redis_errstr(self->claim_redis));
    if (give_up) return;
    zc_queue_worker_wait(self, &self->dispatch_cond, zc_queue_backoff(d->failures++, 1000));
}

//  Returns how long an idle dispatcher may wait: until the next result or
//  claim to retry, at most a second. Call with the lock held.
static int64_t s_idle_wait(zc_queue_worker_t *self, s_dispatch_t *d, int want_claim)
{
    int64_t now = zclock_mono(), wait = 1000;
    for (int i = 0; i < self->held_count; i++)
        if (self->held[i]->state == ZC_JOB_DONE && self->held[i]->retry_at - now < wait)
            wait = self->held[i]->retry_at - now;
    if (want_claim && d->claim_after > now && d->claim_after - now < wait)
        wait = d->claim_after - now;
    return wait < 1 ? 1 : wait;
}

//  Applies the replies of a round trip. Call with the lock held.
static void s_apply(zc_queue_worker_t *self, s_dispatch_t *d, redisReply **replies, int *kinds,
                    int n, int want, int64_t sent_ms)
{
    if (d->failures) zc_queue_worker_alarm_clear(self, &d->reach, "Redis");
    d->failures = 0;
    for (int i = 0; i < n; i++) {
        if (kinds[i] < 0)
            s_apply_claim(self, d, replies[i], want, sent_ms);
        else
            s_apply_settle(self, kinds[i], &d->settle[kinds[i]], replies[i], &d->put_off);
        freeReplyObject(replies[i]);
    }
    for (int call = 0; call < S_SETTLE_CALLS; call++)
        d->settle[call].count = 0;
}

//  Sizes the window of jobs claimed ahead after a round trip that claimed
//  want jobs and settled settled results; the jobs claimed before it have
//  seq up to before. It grows only while the claims take all they ask for
//  (else the queue, not the window, was the limit), and closes when a claim
//  finds nothing, so that an idle worker starts small on the next jobs
//  (which may be slow). Call with the lock held.
static void s_size_window(zc_queue_worker_t *self, s_dispatch_t *d, int want, int settled,
                          uint64_t before)
{
    int max = zc_queue_worker_ahead_max(self);
    int waiting = 0, put_off = 0;
    for (int i = 0; i < self->held_count; i++) {
        zc_job_t *job = self->held[i];
        put_off |= job->tries > 0;
        waiting += job->state == ZC_JOB_CLAIMED && job->seq <= before;
    }
    if (put_off || max == 0 || d->got == 0)
        d->ahead = 0;
    else if (waiting)
        d->ahead /= 2;
    else if (settled > 0 && d->got == want && self->executing < self->threads)
        d->ahead = d->ahead == 0 ? 1 : d->ahead * 2 > max ? max : d->ahead * 2;
}

//  Runs one cycle. Call with the lock held; releases it during the round
//  trip and the handlers it runs.
static void s_cycle(zc_queue_worker_t *self, s_dispatch_t *d)
{
    int settling = 0;
    for (int call = 0; call < S_SETTLE_CALLS; call++)
        settling += d->settle[call].count;
    //  The claim takes the slots of the results on their way too, so that
    //  the next jobs arrive with the acks; if some results are put off
    //  instead, the worker holds more than its concurrency for a while, up
    //  to twice its window (the window is closed while results are put off).
    int limit = self->concurrency > 0 ? self->concurrency + d->ahead : 0;
    int free_slots = self->stopping ? 0 : limit - (self->held_count - settling);
    int room = 2 * (limit > 0 ? limit : 1) - self->held_count;
    if (free_slots > room) free_slots = room;
    int may_claim = free_slots > 0 && zclock_mono() >= d->claim_after;
    int want = may_claim && (!d->idle || self->wake) ? free_slots : 0;
    if (settling == 0 && want == 0) {
        if (free_slots > 0 && !self->hungry) {
            self->hungry = 1;
            self->hungry_since = zclock_mono();
            pthread_cond_signal(&self->keeper_cond);
        }
        zc_queue_worker_wait(self, &self->dispatch_cond, s_idle_wait(self, d, free_slots > 0));
        return;
    }
    if (want) self->wake = self->hungry = 0;
    uint64_t before = self->next_seq;
    pthread_mutex_unlock(&self->lock);
    redisReply *replies[S_SETTLE_CALLS + 1];
    int kinds[S_SETTLE_CALLS + 1];
    int64_t sent_ms = zclock_mono();
    int n = s_round_trip(self, d, want, replies, kinds);
    pthread_mutex_lock(&self->lock);
    if (n >= 0) {
        s_apply(self, d, replies, kinds, n, want, sent_ms);
        if (want) s_size_window(self, d, want, settling, before);
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
    int cap = zc_queue_worker_capacity(self);
    for (int call = 0; call < S_SETTLE_CALLS; call++) {
        d.settle[call].jobs = (zc_job_t **)calloc((size_t)cap, sizeof(zc_job_t *));
        assert(d.settle[call].jobs);
    }

    pthread_mutex_lock(&self->lock);
    while (!s_collect(self, &d))
        s_cycle(self, &d);
    pthread_mutex_unlock(&self->lock);
    for (int call = 0; call < S_SETTLE_CALLS; call++) {
        zc_redis_args_free(&d.settle[call].args);
        free(d.settle[call].jobs);
    }
    zc_redis_args_free(&d.claim);
    return NULL;
}
