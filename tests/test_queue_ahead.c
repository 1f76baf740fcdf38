/*  Claiming ahead: a worker with handler threads claims more jobs than its
    concurrency while its threads run out of work between round trips, and
    no more than about one round trip's worth when its handlers are the
    limit.

    - Short jobs at the default settings (concurrency 1, one thread): the
      worker claims and acks them in batches, so Redis runs far fewer
      scripts than the two per job (a claim and an ack) that one job per
      round trip costs; every job runs once.
    - Slow jobs are not hoarded, even by a worker that was claiming far
      ahead for short jobs just before (its window closed when the queue
      ran dry): it never holds more than a couple of jobs beyond its
      concurrency while the others wait in Redis, where another worker
      could take them.
    - At stop, jobs claimed ahead and not started go back to their queue,
      not run. */
#include "testkit.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER "ahead"
#define FAST    3000 //  short jobs, ids 0..FAST-1
#define SLOW    16   //  slow jobs
#define SLOW_MS 60

static redisContext *s_c;
static atomic_int s_runs[FAST];

//  Counts the runs of job "N".
static int s_task_fast(zc_job_t *job, void *arg)
{
    int n = atoi(zc_job_id(job));
    if (n >= 0 && n < FAST) atomic_fetch_add(&s_runs[n], 1);
    return 0;
}

static int s_task_slow(zc_job_t *job, void *arg)
{
    usleep(SLOW_MS * 1000);
    return 0;
}

//  A worker at the default settings (concurrency 1, one handler thread).
static zc_queue_worker_t *s_worker(zc_queue_t *queue)
{
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, "w-ahead");
    zc_queue_worker_register(worker, "fast", s_task_fast, NULL);
    zc_queue_worker_register(worker, "slow", s_task_slow, NULL);
    zc_queue_worker_add_queue(worker, "jobs");
    if (zc_queue_worker_start(worker)) zc_queue_worker_destroy(&worker);
    return worker;
}

//  Returns the script calls Redis has run since its stats were reset.
static long long s_script_calls(void)
{
    redisReply *r = (redisReply *)redisCommand(s_c, "INFO commandstats");
    long long calls = 0;
    const char *at = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:") : NULL;
    if (at) sscanf(at, "cmdstat_evalsha:calls=%lld", &calls);
    const char *eval = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_eval:") : NULL;
    long long more = 0;
    if (eval) sscanf(eval, "cmdstat_eval:calls=%lld", &more);
    if (r) freeReplyObject(r);
    return calls + more;
}

//  Enqueues count jobs of task, ids PREFIX0...
static void s_enqueue(zc_queue_t *queue, const char *task, const char *prefix, int count)
{
    zc_queue_item_t *items = (zc_queue_item_t *)calloc((size_t)count, sizeof *items);
    char(*ids)[16] = calloc((size_t)count, 16);
    for (int i = 0; i < count; i++) {
        snprintf(ids[i], 16, "%s%d", prefix, i);
        items[i] = (zc_queue_item_t){NULL, 0, ids[i]};
    }
    ZT_EQ(zc_queue_enqueue_many(queue, "jobs", task, items, (size_t)count, NULL, NULL), count);
    free(ids);
    free(items);
}

static void s_fast_jobs(zc_queue_t *queue, zc_queue_worker_t *worker)
{
    zt_section("short jobs at the default settings are claimed and acked in batches");
    freeReplyObject(redisCommand(s_c, "CONFIG RESETSTAT"));
    s_enqueue(queue, "fast", "", FAST);
    zc_queue_worker_stats_t ws = {0};
    int64_t deadline = zt_now_ms() + 60000;
    while (ws.succeeded < FAST && zt_now_ms() < deadline) {
        usleep(5000);
        zc_queue_worker_stats(worker, &ws);
    }
    long long scripts = s_script_calls() - (FAST + 999) / 1000; //  less the enqueue's
    ZT_EQ(ws.succeeded, FAST);
    ZT_EQ(ws.claimed, FAST);
    int twice = 0, never = 0;
    for (int i = 0; i < FAST; i++) {
        twice += atomic_load(&s_runs[i]) > 1;
        never += atomic_load(&s_runs[i]) == 0;
    }
    ZT_EQ(twice, 0);
    ZT_EQ(never, 0);
    //  One job per round trip costs a CLAIM and an ACK per job.
    printf("%d jobs: %lld script calls\n", FAST, scripts);
    ZT_CHECK(scripts > 0 && scripts < FAST);
}

static void s_slow_jobs(zc_queue_t *queue, zc_queue_worker_t *worker)
{
    zt_section("slow jobs are not hoarded; unstarted claims go back at stop");
    zc_queue_worker_stats_t ws = {0};
    zc_queue_worker_stats(worker, &ws);
    uint64_t before = ws.succeeded, most = 0;
    s_enqueue(queue, "slow", "s", SLOW);
    int64_t deadline = zt_now_ms() + 30000;
    while (ws.succeeded < before + SLOW / 2 && zt_now_ms() < deadline) {
        usleep(2000);
        zc_queue_worker_stats(worker, &ws);
        if (ws.running > most) most = ws.running;
    }
    zc_queue_worker_stop(worker);
    zc_queue_worker_stats(worker, &ws);
    printf("%d jobs of %d ms: held at most %llu at once\n", SLOW, SLOW_MS,
           (unsigned long long)most);
    //  Concurrency 1, a job or two claimed ahead, and a finished run whose
    //  ack is on its way.
    ZT_CHECK(most >= 1 && most <= 4);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, "jobs", &stats), 0);
    ZT_EQ(stats.inflight, 0);
    ZT_EQ(stats.processed + stats.queued, FAST + SLOW);
    ZT_EQ(stats.processed, ws.succeeded);
    ZT_CHECK(ws.released <= most); //  the ones claimed and not started
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    s_c = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(s_c && !s_c->err);
    zc_queue_t *queue = zc_queue_new(zt_redis_url(redis), CLUSTER);

    zc_queue_worker_t *worker = s_worker(queue);
    ZT_CHECK(worker != NULL);
    s_fast_jobs(queue, worker);
    s_slow_jobs(queue, worker);
    zc_queue_worker_destroy(&worker);

    zc_queue_destroy(&queue);
    redisFree(s_c);
    zt_redis_destroy(&redis);
    return zt_done();
}
