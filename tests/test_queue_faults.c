/*  Fault injection: every queue key of the wrong type for a moment.

    Two workers (threads of this process) drain two queues while a feeder
    enqueues a steady stream of jobs: plain ones, generated ids, delayed
    ones, ones that fail their first run, and a recurring task. Meanwhile
    each of the queue's keys in turn is replaced, atomically, by a value of
    another type for ~200 ms and then put back as it was: the ready, signal
    and failed lists, the stats hashes, the delayed and in-flight sets, the
    workers' claim sets, the queue set, the id counter, the scheduler keys
    and the hashes of a few live jobs (one queued, one delayed, one in
    flight).

    At the end: every job enqueued ran (none stranded, none refused as a
    duplicate for good), no job ran to completion twice unless its lease
    could not be renewed, Redis holds no job and no claim, and the errors
    were reported but not looped (the workers' error counts and log lines
    stay bounded). */
#include "testkit.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zcluster.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER  "f"
#define P        "zc:{" CLUSTER "}:"
#define JOBS     3000
#define FAULT_MS 200
#define GAP_MS   250

//  --------------------------------------------------------------------------
//  Runs, by job number (carried in the job's arguments)

static atomic_int s_commits[JOBS];
static atomic_int s_refused[JOBS]; //  enqueue answered "duplicate" after a failed try
static atomic_int s_feeding = 1;
static atomic_int s_fed;

#define BEATS_MAX 1000
static char s_beats[BEATS_MAX][64]; //  ids of the recurring task's runs
static int s_beat_count;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static int s_number(zc_job_t *job)
{
    size_t size;
    const unsigned char *a = (const unsigned char *)zc_job_args(job, &size);
    if (size != 5 || a[0] != 0xce) return -1;
    int n = (int)((uint32_t)a[1] << 24 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 8 | a[4]);
    return n >= 0 && n < JOBS ? n : -1;
}

static int s_task_work(zc_job_t *job, void *arg)
{
    usleep(2000);
    int n = s_number(job);
    if (n >= 0) atomic_fetch_add(&s_commits[n], 1);
    return 0;
}

//  Fails its first run.
static int s_task_flaky(zc_job_t *job, void *arg)
{
    if (zc_job_attempt(job) == 1) {
        zc_job_set_error(job, "first run fails");
        return -1;
    }
    return s_task_work(job, arg);
}

static int s_task_beat(zc_job_t *job, void *arg)
{
    pthread_mutex_lock(&s_lock);
    if (s_beat_count < BEATS_MAX)
        snprintf(s_beats[s_beat_count++], sizeof s_beats[0], "%s", zc_job_id(job));
    pthread_mutex_unlock(&s_lock);
    return 0;
}

static zc_queue_worker_t *s_worker(const char *url, const char *id)
{
    zc_queue_t *queue = zc_queue_new(url, CLUSTER);
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, id);
    zc_queue_destroy(&queue);
    zc_queue_worker_register(worker, "work", s_task_work, NULL);
    zc_queue_worker_register(worker, "flaky", s_task_flaky, NULL);
    zc_queue_worker_register(worker, "beat", s_task_beat, NULL);
    zc_queue_worker_add_queue(worker, "fa");
    zc_queue_worker_add_queue(worker, "fb");
    zc_queue_worker_set_concurrency(worker, 8);
    zc_queue_worker_set_threads(worker, 4);
    if (zc_queue_worker_start(worker)) zc_queue_worker_destroy(&worker);
    return worker;
}

//  --------------------------------------------------------------------------
//  The feeder: JOBS jobs, ~3 ms apart, each enqueued until Redis takes it

//  Enqueues job n; returns 0 once Redis took it (or refused it as a
//  duplicate of an earlier try), -1 to try again.
static int s_feed_one(zc_queue_t *queue, int n, int retry)
{
    unsigned char args[5] = {0xce, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                             (unsigned char)(n >> 8), (unsigned char)n};
    char id[16];
    snprintf(id, sizeof id, "j%d", n);
    zc_job_opts_t opts = {.id = n % 10 == 0 ? NULL : id, .backoff_ms = 50, .max_attempts = 5};
    const char *name = n % 2 ? "fb" : "fa";
    int rc;
    if (n % 10 == 1)
        rc = zc_queue_enqueue_in(queue, name, "work", args, 5, 100, &opts, NULL);
    else
        rc = zc_queue_enqueue(queue, name, n % 10 == 2 ? "flaky" : "work", args, 5, &opts, NULL);
    if (rc == 0) return 0;
    if (zc_queue_error(queue) == ZC_ERR_DUPLICATE && retry) {
        atomic_fetch_add(&s_refused[n], 1);
        return 0;
    }
    return -1;
}

static void *s_feeder(void *arg)
{
    zc_queue_t *queue = zc_queue_new((const char *)arg, CLUSTER);
    for (int n = 0; n < JOBS; n++) {
        int tries = 0;
        while (s_feed_one(queue, n, tries++))
            usleep(10000);
        atomic_store(&s_fed, n + 1);
        usleep(3000);
    }
    zc_queue_destroy(&queue);
    atomic_store(&s_feeding, 0);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Faults

//  Replaces KEYS[1] with a value of another type (a string, or a list if
//  ARGV[1] is 'list'), keeping the original in KEYS[2].
static const char s_break[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end\n"
    "if ARGV[1] == 'list' then redis.call('RPUSH', KEYS[1], 'wrong')\n"
    "else redis.call('SET', KEYS[1], 'wrong') end\n"
    "return 1\n";

//  Puts the original back.
static const char s_mend[] =
    "redis.call('DEL', KEYS[1])\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end\n"
    "return 1\n";

static void s_eval(redisContext *c, const char *script, const char *key, const char *arg)
{
    redisReply *reply =
        (redisReply *)redisCommand(c, "EVAL %s 2 %s " P "fault:saved %s", script, key, arg);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER);
    if (reply && reply->type == REDIS_REPLY_ERROR) fprintf(stderr, "fault: %s\n", reply->str);
    if (reply) freeReplyObject(reply);
}

//  Gives key a value of the wrong type for FAULT_MS, then its own back.
static void s_fault(redisContext *c, const char *key, int is_string)
{
    s_eval(c, s_break, key, is_string ? "list" : "string");
    usleep(FAULT_MS * 1000);
    s_eval(c, s_mend, key, "-");
    usleep(GAP_MS * 1000);
}

//  Fills key with the key of a live job found by command (a range of ids
//  of one element); returns 0 if one was found.
static int s_live_job(redisContext *c, const char *command, char *key, size_t cap)
{
    redisReply *reply = (redisReply *)redisCommand(c, command);
    int found = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                reply->element[0]->type == REDIS_REPLY_STRING;
    if (found) snprintf(key, cap, P "job:%s", reply->element[0]->str);
    if (reply) freeReplyObject(reply);
    return found ? 0 : -1;
}

//  Every key the queue's scripts name, for this test's queues and workers.
static const struct {
    const char *key;
    int is_string;
} s_keys[] = {
    {P "q:fa:ready", 0},   {P "q:fb:ready", 0},  {P "q:fa:signal", 0}, {P "q:fb:signal", 0},
    {P "q:fa:failed", 0},  {P "q:fb:failed", 0}, {P "q:fa:stats", 0},  {P "q:fb:stats", 0},
    {P "q:delayed", 0},    {P "q:inflight", 0},  {P "q:node:w1", 0},   {P "q:node:w2", 0},
    {P "q:queues", 0},     {P "q:seq", 1},       {P "q:scheduler", 1}, {P "q:recurring", 0},
    {P "q:every:beat", 0}, {P "q:ticked", 1},    {P "q:reap_hold", 1}, {P "q:sweep", 1},
};

//  The hashes of live jobs: one in flight, one queued, one delayed.
static const char *s_job_finders[] = {
    "ZRANGE " P "q:inflight 0 0",
    "LRANGE " P "q:fa:ready -1 -1",
    "ZRANGE " P "q:delayed 0 0",
};

static int s_inject_all(redisContext *c)
{
    int faults = 0;
    for (size_t i = 0; i < sizeof s_keys / sizeof s_keys[0]; i++, faults++)
        s_fault(c, s_keys[i].key, s_keys[i].is_string);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof s_job_finders / sizeof s_job_finders[0]; i++) {
            char key[128];
            if (s_live_job(c, s_job_finders[i], key, sizeof key) == 0) {
                s_fault(c, key, 0);
                faults++;
            }
        }
    return faults;
}

//  --------------------------------------------------------------------------
//  Checks at the end

static long long s_count(redisContext *c, const char *command)
{
    redisReply *reply = (redisReply *)redisCommand(c, command);
    long long n = -1;
    if (reply && reply->type == REDIS_REPLY_INTEGER) n = reply->integer;
    if (reply && reply->type == REDIS_REPLY_ARRAY) n = (long long)reply->elements;
    if (reply) freeReplyObject(reply);
    return n;
}

static int s_missing(void)
{
    int missing = 0;
    for (int n = 0; n < atomic_load(&s_fed); n++)
        missing += atomic_load(&s_commits[n]) == 0;
    return missing;
}

//  Counts the lines of the captured log that name a worker.
static int s_log_lines(const char *path, int echo_fd)
{
    FILE *f = fopen(path, "r");
    int lines = 0;
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, "[w1]") || strstr(line, "[w2]")) lines++;
        if (write(echo_fd, line, strlen(line)) < 0) break;
    }
    if (f) fclose(f);
    return lines;
}

//  Returns 1 once every job fed ran and both queues are empty.
static int s_drained(zc_queue_t *queue)
{
    zc_queue_stats_t sa, sb;
    return !s_missing() && zc_queue_stats(queue, "fa", &sa) == 0 &&
           zc_queue_stats(queue, "fb", &sb) == 0 &&
           sa.queued + sa.delayed + sa.inflight + sb.queued + sb.delayed + sb.inflight == 0;
}

//  Checks the end state: runs by job, what Redis holds, how the workers
//  reported the faults (log_lines lines in their log).
static void s_check_end(redisContext *c, zc_queue_t *queue, zc_queue_worker_t **workers, int faults,
                        int log_lines)
{
    int stranded = s_missing(), doubles = 0, refused = 0, beat_doubles = 0;
    for (int n = 0; n < JOBS; n++) {
        int runs = atomic_load(&s_commits[n]);
        doubles += runs > 1 ? runs - 1 : 0;
        refused += atomic_load(&s_refused[n]);
    }
    for (int i = 0; i < s_beat_count; i++)
        for (int j = 0; j < i; j++)
            beat_doubles += strcmp(s_beats[i], s_beats[j]) == 0;
    uint64_t lease_lost = 0, errors = 0;
    for (int w = 0; w < 2; w++) {
        zc_queue_worker_stats_t s;
        zc_queue_worker_stats(workers[w], &s);
        printf("w%d: claimed %llu, lost %llu, leases not kept %llu, errors %llu\n", w + 1,
               (unsigned long long)s.claimed, (unsigned long long)s.lost,
               (unsigned long long)s.lease_lost, (unsigned long long)s.errors);
        lease_lost += s.lease_lost;
        errors += s.errors;
    }
    long long jobs_left = s_count(c, "KEYS " P "job:*");
    long long claims = s_count(c, "ZCARD " P "q:inflight") + s_count(c, "SCARD " P "q:node:w1") +
                       s_count(c, "SCARD " P "q:node:w2");
    printf("%d jobs fed, %d faults of %d ms: %d stranded, %d doubles, %d duplicate refusals, "
           "%d recurring runs (%d doubled); %lld job hashes and %lld claims left; "
           "%llu errors, %d worker log lines\n",
           atomic_load(&s_fed), faults, FAULT_MS, stranded, doubles, refused, s_beat_count,
           beat_doubles, jobs_left, claims, (unsigned long long)errors, log_lines);
    ZT_EQ(atomic_load(&s_fed), JOBS);
    ZT_EQ(stranded, 0);
    ZT_EQ(beat_doubles, 0);
    ZT_CHECK(s_beat_count > 0);
    ZT_EQ(jobs_left, 0);
    ZT_EQ(claims, 0);
    ZT_CHECK(s_drained(queue));
    //  A double is only allowed where a lease could not be kept; errors are
    //  retried with a growing pause, so each fault costs a few, not a flood.
    ZT_CHECK(doubles <= (int)lease_lost);
    ZT_CHECK(errors > 0 && errors <= (uint64_t)faults * 20);
    ZT_CHECK(log_lines <= faults * 10); //  each worker: a line when it starts, one when it ends
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    const char *url = zt_redis_url(redis);
    redisContext *c = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(c && !c->err);

    //  The workers' log goes to a file, to be counted.
    char log_path[] = "/tmp/zc-test-faults-XXXXXX";
    int log_fd = mkstemp(log_path);
    int stderr_fd = dup(2);
    dup2(log_fd, 2);

    zt_section("jobs flow through two workers while each key is broken in turn");
    zc_queue_worker_t *workers[2] = {s_worker(url, "w1"), s_worker(url, "w2")};
    ZT_CHECK(workers[0] && workers[1]);
    zc_queue_t *queue = zc_queue_new(url, CLUSTER);
    ZT_EQ(zc_queue_every(queue, "beat", "fa", "beat", NULL, 0, 250, NULL), 0);
    pthread_t feeder;
    pthread_create(&feeder, NULL, s_feeder, (void *)url);
    int64_t started = zt_now_ms();
    usleep(300000);
    int faults = s_inject_all(c);
    int64_t faults_done = zt_now_ms();
    ZT_EQ(zc_queue_every_remove(queue, "beat"), 1);
    pthread_join(feeder, NULL);
    //  Everything must run, whatever was broken when.
    int64_t deadline = zt_now_ms() + 20000;
    while (!s_drained(queue) && zt_now_ms() < deadline)
        usleep(20000);
    int64_t drained = zt_now_ms();
    zc_queue_worker_stop(workers[0]);
    zc_queue_worker_stop(workers[1]);

    fflush(stderr);
    dup2(stderr_fd, 2);
    int log_lines = s_log_lines(log_path, stderr_fd);
    unlink(log_path);
    close(log_fd);
    printf("faults took %lld ms; drained %lld ms after the last\n",
           (long long)(faults_done - started), (long long)(drained - faults_done));
    s_check_end(c, queue, workers, faults, log_lines);

    zc_queue_worker_destroy(&workers[0]);
    zc_queue_worker_destroy(&workers[1]);
    zc_queue_destroy(&queue);
    redisFree(c);
    zt_redis_destroy(&redis);
    return zt_done();
}
