/*  zcluster bench: the scenarios that go through Redis.

    redis-pubsub  Redis PUBLISH to K SUBSCRIBE clients (hiredis), the
                  transport of brokered clusters, for reference. There is no
                  raw path to compare it with, so its "baseline" row is the
                  zcluster publish rate (zc_mesh_publish to K receivers, via
                  bench_publish) measured in the same run: the ratio is Redis
                  pub/sub's rate over the broker-free path's.
    cache         zc_cache save and load, in pipelined batches (save_many /
                  load_many, BENCH_REDIS_DEPTH keys per round trip) and one
                  key per round trip; baseline raw SET / GET on one hiredis
                  connection with the same number of keys per round trip.
    tasks         enqueue (zc_queue_enqueue_many, ZC_QS_BATCH_MAX jobs per
                  call) and processing of no-op jobs by one zc_queue_worker
                  (concurrency 256, handlers inline); baseline raw LPUSH
                  pipelined in the same batches, and a raw RPOP drain
                  pipelined 256 per round trip (what one claim takes).
    tasks-default the same with the worker as a user runs it: concurrency 8
                  (BullMQ's in bindings/node/bench/tasks-vs-bullmq.js), a
                  handler thread per job held (the default), default lease;
                  its rate counts from the first finished run to the last
                  ack, as that comparison counts BullMQ's. Comparisons
                  default-enqueue and tasks-default.

    Redis moves every byte of these scenarios through one single-threaded
    server, so a million operations (the default --count) would make a run
    long: the scenarios cap their counts (and cap the bytes moved per
    measure, for large --size) and say so.

    Values and job arguments are one msgpack object of exactly --size bytes
    (a bin of size - header bytes), as the cache requires msgpack; the raw
    baselines move the same bytes. Keys are created under the cluster
    "bench" and "zc-bench:raw:" and removed at the end, so --redis may point
    at a Redis that holds other data.
*/
#include "cli_bench.h"
#include "zc_redis.h"
#include "zcluster.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_REDIS_DEPTH   100    //  cache keys per round trip, PUBLISHes per round trip
#define BENCH_QUEUE_BATCH   1000   //  jobs per enqueue_many call / LPUSHes per round trip
#define BENCH_DRAIN_DEPTH   256    //  RPOPs per round trip (the worker's concurrency)
#define BENCH_PUBSUB_MAX    200000 //  messages
#define BENCH_CACHE_MAX     200000 //  keys per batched measure
#define BENCH_CACHE_ONE_MAX 20000  //  keys per one-at-a-time measure
#define BENCH_TASKS_MAX     100000 //  jobs
#define BENCH_CONCURRENCY   8      //  tasks-default's worker: BullMQ's in its comparison
#define BENCH_BYTES_MAX     (64L * 1024 * 1024) //  payload bytes per measure
#define BENCH_REDIS_CLUSTER "bench"
#define BENCH_RAW_PREFIX    "zc-bench:raw:"
#define BENCH_QUEUE         "bench-tasks"

//  Caps opt->count at max operations and BENCH_BYTES_MAX bytes (at least
//  1000 operations) and says so when it did.
static long s_capped(const bench_options_t *opt, long max, const char *what)
{
    long by_bytes = BENCH_BYTES_MAX / (long)opt->size;
    if (by_bytes < 1000) by_bytes = 1000;
    long count = opt->count;
    if (count > max) count = max;
    if (count > by_bytes) count = by_bytes;
    if (count < opt->count)
        fprintf(opt->json || opt->summary ? stderr : stdout,
                "(%s: %ld operations, --count %ld capped to keep the run short)\n", what, count,
                opt->count);
    return count;
}

//  One msgpack object of exactly size bytes: a bin, or a fixint for 1 byte.
static char *s_msgpack_value(size_t size)
{
    char *value = (char *)calloc(1, size);
    if (!value) return NULL;
    if (size < 2) return value; //  0x00, positive fixint 0
    size_t n;
    if (size - 2 <= 0xff) {
        n = size - 2;
        value[0] = (char)0xc4;
        value[1] = (char)n;
    } else if (size - 3 <= 0xffff) {
        n = size - 3;
        value[0] = (char)0xc5;
        value[1] = (char)(n >> 8);
        value[2] = (char)n;
    } else {
        n = size - 5;
        value[0] = (char)0xc6;
        for (int i = 0; i < 4; i++)
            value[1 + i] = (char)(n >> (24 - 8 * i));
    }
    memset(value + (size - n), 'x', n);
    return value;
}

//  A connection for the raw baseline, made now so that a bad URL or an
//  unreachable Redis is reported before any measure; *raw_p is its hiredis
//  context. Returns NULL after printing why.
static zc_redis_t *s_raw_redis(const char *redis_url, int timeout_ms, redisContext **raw_p)
{
    zc_redis_url_t url;
    char err[256];
    *raw_p = NULL;
    if (zc_redis_url_parse(redis_url, &url, err, sizeof err)) {
        fprintf(stderr, "zcluster bench: %s\n", err);
        return NULL;
    }
    zc_redis_t *redis = zc_redis_new(&url, timeout_ms);
    *raw_p = zc_redis_context(redis);
    if (!*raw_p) {
        fprintf(stderr, "zcluster bench: %s\n", zc_redis_errstr(redis));
        zc_redis_destroy(&redis);
    }
    return redis;
}

//  Reads n pipelined replies; returns how many were not errors (nil counts
//  as not an error only if nil_ok), or -1 if the connection failed.
static long s_replies(redisContext *c, long n, int nil_ok)
{
    long good = 0;
    for (long i = 0; i < n; i++) {
        redisReply *reply = NULL;
        if (redisGetReply(c, (void **)&reply) != REDIS_OK || !reply) return -1;
        if (reply->type != REDIS_REPLY_ERROR && (nil_ok || reply->type != REDIS_REPLY_NIL)) good++;
        freeReplyObject(reply);
    }
    return good;
}

//  --------------------------------------------------------------------------
//  redis-pubsub

//  Returns the role byte of the next published message, '?' for another
//  reply, 0 on a timeout or a lost connection.
static char s_next_message(redisContext *c)
{
    redisReply *reply = NULL;
    if (redisGetReply(c, (void **)&reply) != REDIS_OK || !reply) return 0;
    char role = '?';
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "message") == 0 && reply->element[2]->len > 0)
        role = reply->element[2]->str[0];
    freeReplyObject(reply);
    return role;
}

//  A subscriber's connection, and the read timeout it has now.
typedef struct {
    redisContext *c;
    int timeout_ms;
} s_subscription_t;

//  The next published message's role byte (bench_next_fn over an
//  s_subscription_t); the timeout changes only between phases, so the
//  socket option is set only then.
static char s_next(void *arg, int timeout_ms, const char **data)
{
    s_subscription_t *sub = (s_subscription_t *)arg;
    *data = NULL; //  redis-pubsub has no --rate
    if (timeout_ms != sub->timeout_ms) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        redisSetTimeout(sub->c, tv);
        sub->timeout_ms = timeout_ms;
    }
    return s_next_message(sub->c);
}

//  A subscriber: counts the messages on channel arg (bench_count).
static int s_subscriber(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    s_subscription_t sub = {NULL, 10000};
    zc_redis_t *conn = s_raw_redis(opt->redis_url, sub.timeout_ms, &sub.c);
    redisReply *reply =
        sub.c ? (redisReply *)redisCommand(sub.c, "SUBSCRIBE %s", (const char *)arg) : NULL;
    freeReplyObject(reply);
    int rc = reply ? bench_count(opt, out_fd, s_next, &sub) : 1;
    zc_redis_destroy(&conn);
    return rc;
}

//  The parent's side of redis-pubsub: a connection, the channel, the payload.
typedef struct {
    redisContext *c;
    const char *channel;
    const char *payload;
    size_t size;
} s_publisher_t;

//  Publishes one warm-up (bench_send_fn over an s_publisher_t).
static int s_publish_warm_up(void *arg)
{
    s_publisher_t *pub = (s_publisher_t *)arg;
    redisReply *reply =
        (redisReply *)redisCommand(pub->c, "PUBLISH %s %b", pub->channel, pub->payload, pub->size);
    freeReplyObject(reply);
    return reply ? 0 : -1;
}

//  Publishes count measured messages, BENCH_REDIS_DEPTH per round trip.
//  Returns 0 or -1.
static int s_publish_measured(s_publisher_t *pub, long count)
{
    for (long done = 0; done < count;) {
        long n = count - done < BENCH_REDIS_DEPTH ? count - done : BENCH_REDIS_DEPTH;
        for (long i = 0; i < n; i++)
            redisAppendCommand(pub->c, "PUBLISH %s %b", pub->channel, pub->payload, pub->size);
        if (s_replies(pub->c, n, 0) != n) return -1;
        done += n;
    }
    return 0;
}

static int s_pubsub_redis(const bench_options_t *opt, bench_result_t *result)
{
    const char *channel = "zc-bench:pubsub";
    bench_children_t children;
    if (bench_spawn(&children, opt->nodes, s_subscriber, opt, (void *)channel)) return -1;
    s_publisher_t pub = {NULL, channel, NULL, opt->size};
    zc_redis_t *conn = s_raw_redis(opt->redis_url, 10000, &pub.c);
    char *payload = (char *)calloc(1, opt->size);
    pub.payload = payload;
    int rc = pub.c && payload ? 0 : -1;
    if (rc == 0) {
        payload[0] = 'w';
        rc = bench_warm_up(&children, s_publish_warm_up, &pub);
    }
    if (rc == 0) {
        payload[0] = 'b';
        rc = s_publish_measured(&pub, opt->count);
    }
    if (rc == 0) bench_collect(&children, result);
    result->sent = opt->count;
    zc_redis_destroy(&conn);
    free(payload);
    bench_reap(&children, rc != 0);
    return rc == 0 && result->received >= 0 ? 0 : -1;
}

int bench_redis_pubsub(const bench_options_t *opt)
{
    bench_options_t capped = *opt;
    capped.count = s_capped(opt, BENCH_PUBSUB_MAX, "redis-pubsub");
    bench_result_t redis = BENCH_RESULT("redis-pubsub");
    bench_result_t mesh = BENCH_RESULT("zcluster-publish");
    bench_result_t raw = BENCH_RESULT("zmq-pubsub");
    if (bench_publish(&capped, 0, &mesh, &raw) || s_pubsub_redis(&capped, &redis)) return -1;
    bench_report("redis-pubsub", &capped, &redis, &mesh, 0);
    if (!opt->json && !opt->summary && redis.rate > 0) {
        printf("(baseline: zcluster's own publish, over tcp loopback; Redis is reached over its\n"
               " unix socket unless --redis says otherwise. zcluster rate / Redis pub/sub rate: "
               "%.2f)\n\n",
               mesh.rate / redis.rate);
        fflush(stdout);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  cache

typedef enum { S_SAVE, S_LOAD } s_cache_op_t;

//  Runs count operations, depth keys per round trip, through the cache (or
//  raw SET/GET on raw when raw is not NULL). One key per round trip also
//  gives p50/p99 per operation. Returns 0 or -1.
static int s_cache_pass(zc_cache_t *cache, redisContext *raw, s_cache_op_t op, long count,
                        int depth, const char *value, size_t size, bench_result_t *result)
{
    zc_cache_entry_t entries[BENCH_REDIS_DEPTH];
    char keys[BENCH_REDIS_DEPTH][48];
    int64_t *samples = depth == 1 ? (int64_t *)calloc((size_t)count, sizeof(int64_t)) : NULL;
    if (depth == 1 && !samples) return -1;
    int64_t start = bench_now_ns();
    long done = 0;
    int rc = 0;
    while (rc == 0 && done < count) {
        int n = count - done < depth ? (int)(count - done) : depth;
        for (int i = 0; i < n; i++) {
            snprintf(keys[i], sizeof keys[i], "%sk%ld", raw ? BENCH_RAW_PREFIX : "", done + i);
            entries[i] = (zc_cache_entry_t){keys[i], (void *)value, size, 0, 0};
        }
        int64_t t0 = bench_now_ns();
        if (raw) {
            for (int i = 0; i < n; i++)
                if (op == S_SAVE)
                    redisAppendCommand(raw, "SET %s %b", keys[i], value, size);
                else
                    redisAppendCommand(raw, "GET %s", keys[i]);
            rc = s_replies(raw, n, 0) == n ? 0 : -1;
        } else if (op == S_SAVE)
            rc = n == 1 ? zc_cache_save(cache, keys[0], value, size, 0)
                        : zc_cache_save_many(cache, entries, (size_t)n);
        else if (n == 1) {
            void *loaded = NULL;
            size_t loaded_size = 0;
            rc = zc_cache_load(cache, keys[0], NULL, &loaded, &loaded_size);
            rc = rc == 0 && loaded_size == size ? 0 : -1;
            free(loaded);
        } else {
            rc = zc_cache_load_many(cache, entries, (size_t)n, NULL);
            for (int i = 0; i < n; i++) {
                if (entries[i].size != size) rc = -1;
                free(entries[i].value);
            }
        }
        if (samples) samples[done] = bench_now_ns() - t0;
        done += n;
    }
    int64_t ns = bench_now_ns() - start;
    if (rc)
        fprintf(stderr, "zcluster bench: cache %s failed: %s\n", op == S_SAVE ? "save" : "load",
                raw ? (raw->err ? raw->errstr : "an error reply") : zc_cache_errstr(cache));
    result->received = rc ? 0 : count;
    result->rate = ns > 0 ? count / (ns / 1e9) : 0;
    if (samples)
        bench_percentiles(samples, count, result);
    else
        result->p50_us = result->p99_us = result->p999_us = -1;
    free(samples);
    return rc;
}

//  Removes the raw keys k0..k(count-1).
static void s_raw_cleanup(redisContext *raw, long count)
{
    for (long done = 0; done < count; done += 1000) {
        long n = count - done < 1000 ? count - done : 1000;
        for (long i = 0; i < n; i++)
            redisAppendCommand(raw, "DEL %sk%ld", BENCH_RAW_PREFIX, done + i);
        if (s_replies(raw, n, 1) < 0) return;
    }
}

int bench_cache(const bench_options_t *opt)
{
    long batch_count = s_capped(opt, BENCH_CACHE_MAX, "cache, batches");
    long one_count = s_capped(opt, BENCH_CACHE_ONE_MAX, "cache, one key per round trip");
    char *value = s_msgpack_value(opt->size);
    zc_cache_t *cache = zc_cache_new(opt->redis_url, BENCH_REDIS_CLUSTER, "bench-cache");
    redisContext *raw = NULL;
    zc_redis_t *raw_redis = s_raw_redis(opt->redis_url, 10000, &raw);
    int rc = value && cache && raw ? 0 : -1;
    static const struct {
        const char *scenario, *project, *baseline;
        s_cache_op_t op;
        int depth;
    } measures[] = {
        {"cache-save-batch", "zc-save-many", "raw-set-pipe100", S_SAVE, BENCH_REDIS_DEPTH},
        {"cache-load-batch", "zc-load-many", "raw-get-pipe100", S_LOAD, BENCH_REDIS_DEPTH},
        {"cache-save", "zc-save", "raw-set", S_SAVE, 1},
        {"cache-load", "zc-load", "raw-get", S_LOAD, 1},
    };
    for (size_t m = 0; rc == 0 && m < sizeof measures / sizeof measures[0]; m++) {
        bench_options_t used = *opt;
        used.count = measures[m].depth == 1 ? one_count : batch_count;
        used.nodes = 1; //  connections
        bench_result_t project = BENCH_RESULT(measures[m].project);
        bench_result_t baseline = BENCH_RESULT(measures[m].baseline);
        rc = s_cache_pass(NULL, raw, measures[m].op, used.count, measures[m].depth, value,
                          opt->size, &baseline) ||
                     s_cache_pass(cache, NULL, measures[m].op, used.count, measures[m].depth, value,
                                  opt->size, &project)
                 ? -1
                 : 0;
        if (rc == 0) bench_report(measures[m].scenario, &used, &project, &baseline, 0);
    }
    if (cache) zc_cache_clear(cache, NULL);
    if (raw) s_raw_cleanup(raw, batch_count > one_count ? batch_count : one_count);
    zc_redis_destroy(&raw_redis);
    zc_cache_destroy(&cache);
    free(value);
    return rc;
}

//  --------------------------------------------------------------------------
//  tasks

static int s_noop(zc_job_t *job, void *arg)
{
    return 0;
}

//  Enqueues count jobs: raw LPUSH (raw not NULL) or zc_queue_enqueue_many,
//  BENCH_QUEUE_BATCH per round trip. Returns 0 or -1.
static int s_enqueue_pass(zc_queue_t *queue, redisContext *raw, long count, const char *args,
                          size_t size, bench_result_t *result)
{
    zc_queue_item_t items[BENCH_QUEUE_BATCH];
    for (int i = 0; i < BENCH_QUEUE_BATCH; i++)
        items[i] = (zc_queue_item_t){args, size, NULL};
    int64_t start = bench_now_ns();
    int rc = 0;
    for (long done = 0; rc == 0 && done < count;) {
        long n = count - done < BENCH_QUEUE_BATCH ? count - done : BENCH_QUEUE_BATCH;
        if (raw) {
            for (long i = 0; i < n; i++)
                redisAppendCommand(raw, "LPUSH %s%s %b", BENCH_RAW_PREFIX, "list", args, size);
            rc = s_replies(raw, n, 0) == n ? 0 : -1;
        } else
            rc =
                zc_queue_enqueue_many(queue, BENCH_QUEUE, "noop", items, (size_t)n, NULL, NULL) == n
                    ? 0
                    : -1;
        done += n;
    }
    int64_t ns = bench_now_ns() - start;
    if (rc)
        fprintf(stderr, "zcluster bench: enqueue failed: %s\n",
                raw ? (raw->err ? raw->errstr : "an error reply") : zc_queue_errstr(queue));
    result->received = rc ? 0 : count;
    result->rate = ns > 0 ? count / (ns / 1e9) : 0;
    return rc;
}

//  Drains the raw list with pipelined RPOPs. Returns 0 or -1.
static int s_raw_drain(redisContext *raw, long count, bench_result_t *result)
{
    int64_t start = bench_now_ns();
    long popped = 0;
    while (popped < count) {
        for (int i = 0; i < BENCH_DRAIN_DEPTH; i++)
            redisAppendCommand(raw, "RPOP %s%s", BENCH_RAW_PREFIX, "list");
        long got = s_replies(raw, BENCH_DRAIN_DEPTH, 0);
        if (got <= 0) break; //  empty (or a failure)
        popped += got;
    }
    int64_t ns = bench_now_ns() - start;
    result->received = popped;
    result->rate = ns > 0 ? popped / (ns / 1e9) : 0;
    return popped == count ? 0 : -1;
}

//  CPU seconds used so far by this process (all its threads) and, from
//  INFO, by the redis-server behind raw (-1 if it does not say: an ACL
//  without INFO, say).
static void s_cpu_seconds(redisContext *raw, double cpu[2])
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    cpu[0] = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
             (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    cpu[1] = -1;
    redisReply *reply = (redisReply *)redisCommand(raw, "INFO cpu");
    if (reply && reply->type == REDIS_REPLY_STRING) {
        const char *user = strstr(reply->str, "used_cpu_user:");
        const char *sys = strstr(reply->str, "used_cpu_sys:");
        if (user && sys)
            cpu[1] = strtod(user + strlen("used_cpu_user:"), NULL) +
                     strtod(sys + strlen("used_cpu_sys:"), NULL);
    }
    freeReplyObject(reply);
}

//  Fills result's CPU per operation since before (s_cpu_seconds), over the
//  operations it received. Only one side runs at a time, so Redis's CPU in
//  that time is that side's.
static void s_cpu_per_op(redisContext *raw, const double before[2], bench_result_t *result)
{
    double after[2];
    s_cpu_seconds(raw, after);
    if (result->received <= 0) return;
    result->cpu_us = (after[0] - before[0]) * 1e6 / (double)result->received;
    if (before[1] >= 0 && after[1] >= 0)
        result->redis_cpu_us = (after[1] - before[1]) * 1e6 / (double)result->received;
}

//  How a tasks scenario runs its worker, and what it calls its comparisons.
typedef struct {
    const char *enqueue, *process; //  the comparisons' names
    const char *worker;            //  the worker row's name
    int concurrency;
    int threads;    //  handler threads; -1 leaves the worker's default (one per job held)
    int from_first; //  time from the first completed run, not from the worker's start
} s_tasks_setup_t;

//  The monotonic time of the first finished run, 0 before one.
static _Atomic int64_t s_first_finish_ns;

//  Notes the first finished run (zc_job_finished_fn; on handler threads).
static void s_on_finish(zc_job_t *job, int rc, void *arg)
{
    int64_t none = 0;
    if (atomic_load_explicit(&s_first_finish_ns, memory_order_relaxed) == 0)
        atomic_compare_exchange_strong(&s_first_finish_ns, &none, bench_now_ns());
}

//  Processes the queued jobs with one worker set up as setup says; times
//  until Redis counts them all as processed, from the worker's start or its
//  first finished run. Returns 0 or -1.
static int s_worker_drain(zc_queue_t *queue, long count, const s_tasks_setup_t *setup,
                          bench_result_t *result)
{
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, "bench-worker");
    if (!worker || zc_queue_worker_register(worker, "noop", s_noop, NULL) ||
        zc_queue_worker_add_queue(worker, BENCH_QUEUE)) {
        zc_queue_worker_destroy(&worker);
        return -1;
    }
    zc_queue_worker_set_concurrency(worker, setup->concurrency);
    if (setup->threads >= 0) zc_queue_worker_set_threads(worker, setup->threads);
    atomic_store(&s_first_finish_ns, 0);
    if (setup->from_first) zc_queue_worker_on_finish(worker, s_on_finish, NULL);
    int64_t start = bench_now_ns();
    int rc = zc_queue_worker_start(worker);
    zc_queue_stats_t stats = {0};
    int64_t last_progress = bench_now_ns(), processed = -1;
    while (rc == 0 && stats.processed < count) {
        usleep(2000);
        if (zc_queue_stats(queue, BENCH_QUEUE, &stats))
            rc = -1;
        else if (stats.processed != processed) {
            processed = stats.processed;
            last_progress = bench_now_ns();
        } else if (bench_now_ns() - last_progress > 10 * 1000000000LL) {
            fprintf(stderr, "zcluster bench: the worker made no progress for 10 s\n");
            rc = -1;
        }
    }
    int64_t end = bench_now_ns();
    if (setup->from_first && atomic_load(&s_first_finish_ns) > 0)
        start = atomic_load(&s_first_finish_ns);
    zc_queue_worker_destroy(&worker);
    result->received = stats.processed;
    result->rate = end > start ? stats.processed / ((end - start) / 1e9) : 0;
    return rc;
}

//  A tasks scenario: enqueue (raw LPUSH, then enqueue_many), then drain
//  (raw RPOP, then the worker). Returns 0 or -1.
static int s_tasks(const bench_options_t *opt, const s_tasks_setup_t *setup)
{
    bench_options_t used = *opt;
    used.count = s_capped(opt, BENCH_TASKS_MAX, "tasks");
    used.nodes = 1; //  workers / connections
    char *args = s_msgpack_value(opt->size);
    zc_queue_t *queue = zc_queue_new(opt->redis_url, BENCH_REDIS_CLUSTER);
    redisContext *raw;
    zc_redis_t *conn = s_raw_redis(opt->redis_url, 10000, &raw);
    int rc = args && queue && raw && zc_queue_delete(queue, BENCH_QUEUE) >= 0 ? 0 : -1;
    if (queue && rc) fprintf(stderr, "zcluster bench: tasks: %s\n", zc_queue_errstr(queue));
    if (raw) freeReplyObject(redisCommand(raw, "DEL %s%s", BENCH_RAW_PREFIX, "list"));
    bench_result_t enqueue = BENCH_RESULT("zc-enqueue-many");
    bench_result_t lpush = BENCH_RESULT("raw-lpush-pipe");
    bench_result_t process = BENCH_RESULT(setup->worker);
    bench_result_t rpop = BENCH_RESULT("raw-rpop-drain");
    if (rc == 0)
        rc = s_enqueue_pass(NULL, raw, used.count, args, opt->size, &lpush) ||
                     s_enqueue_pass(queue, NULL, used.count, args, opt->size, &enqueue)
                 ? -1
                 : 0;
    if (rc == 0) bench_report(setup->enqueue, &used, &enqueue, &lpush, 0);
    double cpu[2];
    if (rc == 0) {
        s_cpu_seconds(raw, cpu);
        rc = s_raw_drain(raw, used.count, &rpop);
        s_cpu_per_op(raw, cpu, &rpop);
    }
    if (rc == 0) {
        s_cpu_seconds(raw, cpu);
        rc = s_worker_drain(queue, used.count, setup, &process);
        s_cpu_per_op(raw, cpu, &process);
    }
    if (rc == 0) bench_report(setup->process, &used, &process, &rpop, 0);
    if (queue) zc_queue_delete(queue, BENCH_QUEUE);
    if (raw) {
        freeReplyObject(redisCommand(raw, "DEL %s%s", BENCH_RAW_PREFIX, "list"));
        zc_redis_destroy(&conn);
    }
    zc_queue_destroy(&queue);
    free(args);
    return rc;
}

int bench_tasks(const bench_options_t *opt)
{
    static const s_tasks_setup_t inline_setup = {
        "tasks-enqueue", "tasks-process", "zc-worker-c256", 256, 0, 0};
    return s_tasks(opt, &inline_setup);
}

int bench_tasks_default(const bench_options_t *opt)
{
    static const s_tasks_setup_t default_setup = {
        "default-enqueue", "tasks-default", "zc-worker-default", BENCH_CONCURRENCY, -1, 1};
    return s_tasks(opt, &default_setup);
}
