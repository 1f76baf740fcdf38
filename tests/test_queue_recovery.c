/*  Nothing stranded: the queue's scripts against keys of the wrong type,
    and the sweep that finds jobs no claim or timer holds.

    - With q:inflight briefly a string, a worker's claim must leave the
      queued job as it was (a claim used to pop it and mark it active, then
      fail: the job never ran and its id stayed taken); the worker reports
      the error without looping, and the job runs once the key is back.
    - Every script that writes refuses, writing nothing, when a key it
      would write holds another type.
    - A job marked active that no in-flight entry holds (as that failed
      claim left them) is found by the scheduler's sweep and runs again.
    - A live worker whose job lost its in-flight entry keeps it: the sweep
      gives the entry back and the holder renews it; the job runs once. */
#include "testkit.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER "r"
#define P       "zc:{" CLUSTER "}:"

static redisContext *s_c;
static atomic_int s_runs[8];

//  Fails every run.
static int s_task_fail(zc_job_t *job, void *arg)
{
    zc_job_set_error(job, "fails");
    return -1;
}

//  Runs of job "jN" counted in s_runs[N]; a job with "slow" in its id
//  lasts 2.5 s.
static int s_task(zc_job_t *job, void *arg)
{
    const char *id = zc_job_id(job);
    if (strstr(id, "slow")) usleep(2500000);
    int n = atoi(id + strcspn(id, "0123456789"));
    if (n >= 0 && n < 8) atomic_fetch_add(&s_runs[n], 1);
    return 0;
}

static zc_queue_worker_t *s_worker(zc_queue_t *queue, const char *id)
{
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, id);
    zc_queue_worker_register(worker, "t", s_task, NULL);
    zc_queue_worker_register(worker, "fail", s_task_fail, NULL);
    zc_queue_worker_add_queue(worker, "q");
    zc_queue_worker_set_concurrency(worker, 4);
    if (zc_queue_worker_start(worker)) zc_queue_worker_destroy(&worker);
    return worker;
}

static redisReply *s_cmd(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = (redisReply *)redisvCommand(s_c, format, args);
    va_end(args);
    return reply;
}

static long long s_int(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = (redisReply *)redisvCommand(s_c, format, args);
    va_end(args);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return n;
}

//  Returns 1 if field of job id's hash equals value.
static int s_field_is(const char *id, const char *field, const char *value)
{
    redisReply *reply = s_cmd("HGET " P "job:%s %s", id, field);
    int same = reply && reply->type == REDIS_REPLY_STRING && strcmp(reply->str, value) == 0;
    if (reply) freeReplyObject(reply);
    return same;
}

static void s_break(const char *key)
{
    freeReplyObject(s_cmd("RENAME %s %s:saved", key, key));
    freeReplyObject(s_cmd("SET %s wrong", key));
}

static void s_mend(const char *key)
{
    freeReplyObject(s_cmd("DEL %s", key));
    freeReplyObject(s_cmd("RENAME %s:saved %s", key, key));
}

static int s_wait_runs(int n, int count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (atomic_load(&s_runs[n]) < count && zt_now_ms() < deadline)
        usleep(10000);
    return atomic_load(&s_runs[n]) >= count;
}

//  The case: the claim meets a wrong-typed q:inflight.
static void s_claim_on_broken_inflight(zc_queue_t *queue)
{
    zt_section("a claim that meets a wrong-typed q:inflight leaves the job queued");
    zc_job_opts_t opts = {.id = "j0"};
    ZT_EQ(zc_queue_enqueue(queue, "q", "t", NULL, 0, &opts, NULL), 0);
    zc_job_opts_t other = {.id = "j1"};
    ZT_EQ(zc_queue_enqueue(queue, "q", "t", NULL, 0, &other, NULL), 0);
    s_break(P "q:inflight");
    zc_queue_worker_t *worker = s_worker(queue, "w1");
    usleep(1500000);
    zc_queue_worker_stats_t stats;
    zc_queue_worker_stats(worker, &stats);
    ZT_CHECK(s_field_is("j0", "state", "queued"));
    ZT_EQ(s_int("LLEN " P "q:q:ready"), 2);
    ZT_EQ(atomic_load(&s_runs[0]), 0);
    //  Reported and retried with a growing pause: a few errors, not hundreds.
    printf("1.5 s of a wrong-typed q:inflight: %llu errors, %llu claimed\n",
           (unsigned long long)stats.errors, (unsigned long long)stats.claimed);
    ZT_CHECK(stats.errors >= 2 && stats.errors <= 40);
    ZT_EQ(stats.claimed, 0);
    s_mend(P "q:inflight");
    ZT_CHECK(s_wait_runs(0, 1, 5000));
    ZT_CHECK(s_wait_runs(1, 1, 5000));
    zc_queue_worker_destroy(&worker);
    ZT_EQ(zc_queue_enqueue(queue, "q", "t", NULL, 0, &opts, NULL), 0); //  the id is free
    freeReplyObject(s_cmd("DEL " P "job:j0 " P "q:q:ready"));
}

//  Calls of the public API whose script must refuse, writing nothing, when
//  key holds a string.
static void s_refusals(zc_queue_t *queue)
{
    zt_section("a script refuses, writing nothing, when a key it writes holds another type");
    const char *keys[] = {P "q:queues", P "q:q:ready", P "q:delayed", P "q:q:stats", P "q:seq"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        s_break(keys[i]);
        zc_job_opts_t opts = {.id = strcmp(keys[i], P "q:seq") ? "x1" : NULL};
        int delayed = strcmp(keys[i], P "q:delayed") == 0 || strcmp(keys[i], P "q:q:stats") == 0;
        int rc = delayed ? zc_queue_enqueue_in(queue, "q", "t", NULL, 0, 60000, &opts, NULL)
                         : zc_queue_enqueue(queue, "q", "t", NULL, 0, &opts, NULL);
        ZT_EQ(rc, -1);
        ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
        ZT_CHECK(strstr(zc_queue_errstr(queue), keys[i]) != NULL);
        ZT_EQ(s_int("EXISTS " P "job:x1"), 0);
        ZT_EQ(s_int("EXISTS " P "job:1"), 0);
        s_mend(keys[i]);
    }
    ZT_EQ(zc_queue_every(queue, "e", "q", "t", NULL, 0, 60000, NULL), 0);
    s_break(P "q:recurring");
    ZT_EQ(zc_queue_every_remove(queue, "e"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
    ZT_EQ(s_int("EXISTS " P "q:every:e"), 1);
    s_mend(P "q:recurring");
    ZT_EQ(zc_queue_every_remove(queue, "e"), 1);
    s_break(P "q:node:gone");
    ZT_EQ(zc_queue_requeue_node(queue, "gone"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
    s_mend(P "q:node:gone");
    //  A counter that is not an integer is refused before anything is written.
    freeReplyObject(s_cmd("HSET " P "q:q:stats delayed abc"));
    ZT_EQ(zc_queue_enqueue_in(queue, "q", "t", NULL, 0, 60000, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
    ZT_EQ(s_int("ZCARD " P "q:delayed"), 0);
    freeReplyObject(s_cmd("DEL " P "q:q:stats"));
}

//  A job marked active that nothing holds, as the old claim left them.
static void s_sweep_orphan(zc_queue_t *queue)
{
    zt_section("the sweep finds an active job that no in-flight entry holds");
    //  As the claim left them: popped, marked active and counted in flight,
    //  but in no in-flight set.
    freeReplyObject(s_cmd("HSET " P "job:j2 queue q task t args - state active attempt 1 "
                          "claim ghost#1 node ghost max_attempts 3 backoff_ms 10 timeout_ms 0"));
    freeReplyObject(s_cmd("HINCRBY " P "q:q:stats inflight 1"));
    freeReplyObject(s_cmd("HSET " P "job:j3 queue q task t args - state delayed "
                          "max_attempts 3 backoff_ms 10 timeout_ms 0"));
    freeReplyObject(s_cmd("HINCRBY " P "q:q:stats delayed 1"));
    freeReplyObject(s_cmd("SADD " P "q:queues q"));
    int64_t started = zt_now_ms();
    zc_queue_worker_t *worker = s_worker(queue, "w2");
    ZT_CHECK(s_wait_runs(2, 1, 6000));
    int64_t recovered_ms = zt_now_ms() - started;
    ZT_CHECK(s_wait_runs(3, 1, 3000));
    printf("an orphaned active job ran again %lld ms after the first worker started\n",
           (long long)recovered_ms);
    zc_queue_worker_destroy(&worker);
    ZT_EQ(s_int("EXISTS " P "job:j2"), 0);
    ZT_EQ(s_int("EXISTS " P "job:j3"), 0);
    ZT_EQ(atomic_load(&s_runs[2]), 1);
}

//  The race the sweep must never lose: a live holder's job.
static void s_sweep_live(zc_queue_t *queue)
{
    zt_section("a live worker's job that lost its in-flight entry is not taken from it");
    zc_queue_stats_t before;
    ZT_EQ(zc_queue_stats(queue, "q", &before), 0);
    zc_queue_worker_t *worker = s_worker(queue, "w3");
    zc_queue_worker_t *other = s_worker(queue, "w4");
    zc_job_opts_t opts = {.id = "slow4"};
    ZT_EQ(zc_queue_enqueue(queue, "q", "t", NULL, 0, &opts, NULL), 0);
    int64_t deadline = zt_now_ms() + 3000;
    while (s_int("ZCARD " P "q:inflight") < 1 && zt_now_ms() < deadline)
        usleep(5000);
    usleep(100000);
    ZT_EQ(s_int("ZREM " P "q:inflight slow4"), 1);
    ZT_CHECK(s_wait_runs(4, 1, 6000));
    usleep(300000);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, "q", &stats), 0);
    ZT_EQ(atomic_load(&s_runs[4]), 1);
    ZT_EQ(stats.requeued, before.requeued);
    ZT_EQ(stats.lost_acks, before.lost_acks);
    ZT_EQ(stats.inflight, 0);
    zc_queue_worker_destroy(&worker);
    zc_queue_worker_destroy(&other);
}

//  Results put off (the failed list of their queue holds a string) while
//  claims go on: the worker holds more than its concurrency for a while,
//  never more than it can, and every job ends on the failed list.
static void s_put_off(zc_queue_t *queue)
{
    zt_section("results put off while claims go on");
    for (int i = 0; i < 40; i++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", i);
        zc_job_opts_t opts = {.id = id, .max_attempts = 1};
        ZT_EQ(zc_queue_enqueue(queue, "q", "fail", NULL, 0, &opts, NULL), 0);
    }
    s_break(P "q:q:failed");
    zc_queue_worker_t *worker = s_worker(queue, "w5");
    usleep(800000);
    zc_queue_worker_stats_t stats;
    zc_queue_worker_stats(worker, &stats);
    ZT_CHECK(stats.running <= 8);
    ZT_CHECK(stats.errors > 0);
    s_mend(P "q:q:failed");
    int64_t deadline = zt_now_ms() + 5000;
    while (s_int("LLEN " P "q:q:failed") < 40 && zt_now_ms() < deadline)
        usleep(10000);
    ZT_EQ(s_int("LLEN " P "q:q:failed"), 40);
    zc_queue_worker_stats(worker, &stats);
    ZT_EQ(stats.failed, 40);
    ZT_EQ(stats.running, 0);
    zc_queue_worker_destroy(&worker);
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    s_c = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(s_c && !s_c->err);
    zc_queue_t *queue = zc_queue_new(zt_redis_url(redis), CLUSTER);

    s_claim_on_broken_inflight(queue);
    s_refusals(queue);
    s_sweep_orphan(queue);
    s_sweep_live(queue);
    s_put_off(queue);

    zc_queue_destroy(&queue);
    redisFree(s_c);
    zt_redis_destroy(&redis);
    return zt_done();
}
