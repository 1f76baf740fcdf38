/*  Bulk operations in slices: deleting a queue of 30,000 jobs and returning
    a node's 20,000 claims must never hold Redis for long at a time, and
    must end as a single call would.

    What is asserted is the slicing itself: the work is cut into at least
    one script call per ZC_QS_SLICE items (counted by Redis's commandstats),
    so no call walks more than a slice. How long the calls held the server
    (Redis's SLOWLOG) and the longest PING round trip a client saw meanwhile
    are printed, not asserted: on a shared machine a preempted redis-server
    stretches any call. */
#include "testkit.h"
#include "zc_identity.h"
#include "zc_queue.h"
#include "zc_queue_scripts.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CLUSTER "b"
#define P       "zc:{" CLUSTER "}:"
#define CLAIMS  20000

//  --------------------------------------------------------------------------
//  The longest stall: SLOWLOG and a pinging client

static redisContext *s_c;

//  Starts logging every command that holds Redis for 200 µs or more (the
//  log also holds the commands scripts call, which take far less).
static void s_slowlog_reset(void)
{
    freeReplyObject(redisCommand(s_c, "CONFIG SET slowlog-log-slower-than 200"));
    freeReplyObject(redisCommand(s_c, "CONFIG SET slowlog-max-len 100000"));
    freeReplyObject(redisCommand(s_c, "SLOWLOG RESET"));
}

static int s_compare(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

//  Reads the script calls in the slow log: their number, the median and
//  the longest time they held Redis, in µs.
static int s_slowlog_scripts(long long *median, long long *max)
{
    redisReply *reply = (redisReply *)redisCommand(s_c, "SLOWLOG GET -1");
    long long *us = calloc(reply ? reply->elements + 1 : 1, sizeof *us);
    int n = 0;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 || e->element[3]->elements < 1)
            continue;
        const char *command = e->element[3]->element[0]->str;
        if (strncasecmp(command, "EVAL", 4) == 0) us[n++] = e->element[2]->integer;
    }
    if (reply) freeReplyObject(reply);
    qsort(us, (size_t)n, sizeof *us, s_compare);
    *median = n ? us[n / 2] : 0;
    *max = n ? us[n - 1] : 0;
    free(us);
    return n;
}

typedef struct {
    const char *socket;
    atomic_int stop;
    long long max_us; //  longest PING round trip
    pthread_t thread;
} s_pinger_t;

static int64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *s_ping(void *arg)
{
    s_pinger_t *self = (s_pinger_t *)arg;
    redisContext *c = redisConnectUnix(self->socket);
    while (c && !c->err && !atomic_load(&self->stop)) {
        int64_t start = s_now_us();
        redisReply *reply = (redisReply *)redisCommand(c, "PING");
        long long us = s_now_us() - start;
        if (reply) freeReplyObject(reply);
        if (us > self->max_us) self->max_us = us;
        usleep(1000);
    }
    if (c) redisFree(c);
    return NULL;
}

static void s_pinger_start(s_pinger_t *self, const char *socket)
{
    memset(self, 0, sizeof *self);
    self->socket = socket;
    pthread_create(&self->thread, NULL, s_ping, self);
}

static long long s_pinger_stop(s_pinger_t *self)
{
    atomic_store(&self->stop, 1);
    pthread_join(self->thread, NULL);
    return self->max_us;
}

//  --------------------------------------------------------------------------
//  Filling the queues

//  Enqueues count jobs on queue (ids PREFIX0...), delayed by delay_ms if > 0.
static void s_fill(zc_queue_t *queue, const char *name, const char *prefix, int count,
                   int64_t delay_ms)
{
    char(*ids)[32] = calloc((size_t)count, 32);
    zc_queue_item_t *items = calloc((size_t)count, sizeof *items);
    for (int i = 0; i < count; i++) {
        snprintf(ids[i], 32, "%s%d", prefix, i);
        items[i].id = ids[i];
    }
    if (delay_ms == 0)
        ZT_EQ(zc_queue_enqueue_many(queue, name, "t", items, (size_t)count, NULL, NULL), count);
    else
        for (int i = 0; i < count; i++) {
            zc_job_opts_t opts = {.id = ids[i]};
            ZT_EQ(zc_queue_enqueue_in(queue, name, "t", NULL, 0, delay_ms, &opts, NULL), 0);
        }
    free(ids);
    free(items);
}

//  Claims count jobs of queue for node (which never runs them), with a
//  lease of an hour, as the worker's CLAIM script does.
static int s_claim(const char *url, const char *node, const char *queue, int count)
{
    zc_identity_t identity;
    char err[256];
    if (zc_identity_init(&identity, url, CLUSTER, node, err, sizeof err)) return -1;
    zc_redis_t *redis = zc_qs_redis_new(&identity);
    zc_redis_args_t args = {0};
    int claimed = 0;
    while (claimed < count) {
        int want = count - claimed < ZC_QS_BATCH_MAX ? count - claimed : ZC_QS_BATCH_MAX;
        zc_qs_args_start(&args, ZC_QS_CLAIM, &identity);
        zc_redis_args_str(&args, node);
        zc_redis_args_int(&args, 3600000);
        zc_redis_args_int(&args, want);
        zc_redis_args_str(&args, queue);
        redisReply *reply = zc_redis_call(redis, &args);
        int got = reply && reply->type == REDIS_REPLY_ARRAY ? (int)reply->elements / 6 : 0;
        if (reply) freeReplyObject(reply);
        if (got == 0) break;
        claimed += got;
    }
    zc_redis_args_free(&args);
    zc_redis_destroy(&redis);
    return claimed;
}

static long long s_int(const char *command)
{
    redisReply *reply = (redisReply *)redisCommand(s_c, command);
    long long n = -1;
    if (reply && reply->type == REDIS_REPLY_INTEGER) n = reply->integer;
    if (reply && reply->type == REDIS_REPLY_ARRAY) n = (long long)reply->elements;
    if (reply) freeReplyObject(reply);
    return n;
}

//  Script calls Redis has run so far (EVAL and EVALSHA, from commandstats).
static long long s_script_calls(void)
{
    redisReply *reply = (redisReply *)redisCommand(s_c, "INFO commandstats");
    long long total =
        zt_info_script_calls(reply && reply->type == REDIS_REPLY_STRING ? reply->str : NULL);
    if (reply) freeReplyObject(reply);
    return total;
}

//  A measured stretch of Redis's life: the pinger, the slow log and the
//  number of script calls.
typedef struct {
    s_pinger_t pinger;
    int64_t started;
    long long calls_before;
} s_watch_t;

static void s_watch_start(s_watch_t *w, zt_redis_t *redis)
{
    s_slowlog_reset();
    s_pinger_start(&w->pinger, zt_redis_socket(redis));
    w->calls_before = s_script_calls();
    w->started = zt_now_ms();
}

//  Prints what the bulk operation over items cost and checks it was cut into
//  slices of at most ZC_QS_SLICE items.
static void s_watch_end(s_watch_t *w, const char *what, long long items)
{
    int64_t took = zt_now_ms() - w->started;
    long long calls = s_script_calls() - w->calls_before;
    long long ping_us = s_pinger_stop(&w->pinger), median_us, slow_us;
    int logged = s_slowlog_scripts(&median_us, &slow_us);
    printf("%s: %lld ms in all, %lld script calls (%d over 200 us: median %.1f ms, "
           "longest %.1f ms); longest PING %.1f ms\n",
           what, (long long)took, calls, logged, median_us / 1000.0, slow_us / 1000.0,
           ping_us / 1000.0);
    ZT_CHECK(calls >= items / ZC_QS_SLICE);
}

static void s_requeue(zt_redis_t *redis, zc_queue_t *queue)
{
    zt_section("requeue_node: 20,000 claims of a node back to their queue");
    s_fill(queue, "rq", "r", CLAIMS, 0);
    ZT_EQ(s_claim(zt_redis_url(redis), "ghost", "rq", CLAIMS), CLAIMS);
    ZT_EQ(s_int("SCARD " P "q:node:ghost"), CLAIMS);
    s_watch_t watch;
    s_watch_start(&watch, redis);
    ZT_EQ(zc_queue_requeue_node(queue, "ghost"), CLAIMS);
    s_watch_end(&watch, "requeue of 20,000 claims", CLAIMS);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, "rq", &stats), 0);
    ZT_EQ(stats.queued, CLAIMS);
    ZT_EQ(stats.inflight, 0);
    ZT_EQ(stats.requeued, CLAIMS);
    ZT_EQ(s_int("EXISTS " P "q:node:ghost"), 0);
    ZT_EQ(s_int("ZCARD " P "q:inflight"), 0);
}

static void s_delete(zt_redis_t *redis, zc_queue_t *queue)
{
    zt_section("delete: a queue of 30,000 jobs (ready, delayed, in flight), not its neighbour's");
    //  rq holds 20,000 ready jobs; add delayed ones, claims, and another
    //  queue's delayed and claimed jobs that must survive.
    const char *url = zt_redis_url(redis);
    s_fill(queue, "rq", "d", 5000, 3600000);
    s_fill(queue, "rq", "c", 5000, 0);
    ZT_EQ(s_claim(url, "ghost", "rq", 5000), 5000);
    s_fill(queue, "keep", "k", 200, 0);
    ZT_EQ(s_claim(url, "other", "keep", 100), 100);
    s_fill(queue, "keep", "kd", 100, 3600000);
    ZT_EQ(zc_queue_every(queue, "tidy", "rq", "t", NULL, 0, 60000, NULL), 0);
    ZT_EQ(zc_queue_every(queue, "stay", "keep", "t", NULL, 0, 60000, NULL), 0);
    s_watch_t watch;
    s_watch_start(&watch, redis);
    ZT_EQ(zc_queue_delete(queue, "rq"), 30000);
    s_watch_end(&watch, "delete of 30,000 jobs", 30000);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, "rq", &stats), 0);
    ZT_EQ(stats.queued + stats.delayed + stats.inflight + stats.processed + stats.requeued, 0);
    ZT_EQ(s_int("KEYS " P "job:[rdc]*"), 0);
    ZT_EQ(s_int("SCARD " P "q:node:ghost"), 0);
    ZT_EQ(s_int("SISMEMBER " P "q:queues rq"), 0);
    ZT_EQ(zc_queue_every_remove(queue, "tidy"), 0);
    ZT_EQ(zc_queue_every_remove(queue, "stay"), 1);
    ZT_EQ(zc_queue_stats(queue, "keep", &stats), 0);
    ZT_EQ(stats.queued, 100);
    ZT_EQ(stats.inflight, 100);
    ZT_EQ(stats.delayed, 100);
    ZT_EQ(s_int("ZCARD " P "q:inflight"), 100);
    ZT_EQ(s_int("ZCARD " P "q:delayed"), 100);
    ZT_EQ(s_int("KEYS " P "job:k*"), 300);
    ZT_EQ(zc_queue_delete(queue, "keep"), 300);
    ZT_EQ(s_int("DBSIZE"), 0); //  nothing left behind
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    s_c = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(s_c && !s_c->err);
    zc_queue_t *queue = zc_queue_new(zt_redis_url(redis), CLUSTER);
    s_requeue(redis, queue);
    s_delete(redis, queue);
    zc_queue_destroy(&queue);
    redisFree(s_c);
    zt_redis_destroy(&redis);
    return zt_done();
}
