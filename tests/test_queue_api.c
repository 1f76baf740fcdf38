/*  zc_queue in one process against a real redis-server: every feature of
    the queue API, with workers running on their own threads. The
    multi-process behaviour (SIGKILLed workers, the CLI) is in
    test_queue_nodes.c and test_queue_chaos.c. */
#include "testkit.h"
#include "zc_redis.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  A record of every run, written by handlers on worker threads

#define MAX_RUNS 20000

typedef struct {
    char id[ZC_JOB_ID_MAX + 1];
    char queue[ZC_QUEUE_NAME_MAX + 1];
    char args[64];
    size_t args_size;
    int attempt;
    int64_t at_ms;
    int cancelled; //  the handler saw zc_job_cancelled()
    const char *node;
} s_run_t;

static s_run_t s_runs[MAX_RUNS];
static int s_run_count;
static pthread_mutex_t s_runs_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_flaky_failures = 2; //  flaky fails this many runs of each job
static int s_bad_fails = 1;      //  bad fails while this is 1

static s_run_t *s_record(zc_job_t *job, void *arg)
{
    pthread_mutex_lock(&s_runs_lock);
    s_run_t *run = s_run_count < MAX_RUNS ? &s_runs[s_run_count++] : NULL;
    if (run) {
        snprintf(run->id, sizeof run->id, "%s", zc_job_id(job));
        snprintf(run->queue, sizeof run->queue, "%s", zc_job_queue(job));
        size_t size;
        const void *args = zc_job_args(job, &size);
        run->args_size = size;
        memcpy(run->args, args, size < sizeof run->args ? size : sizeof run->args);
        run->attempt = zc_job_attempt(job);
        run->at_ms = zt_now_ms();
        run->node = (const char *)arg;
    }
    pthread_mutex_unlock(&s_runs_lock);
    return run;
}

//  How each run ended, as the finish callback saw it (the last run of an id).
typedef struct {
    char id[ZC_JOB_ID_MAX + 1];
    int rc;
    zc_error_t kind;
    char errstr[ZC_JOB_ERROR_MAX + 1];
} s_finish_t;

static s_finish_t s_finishes[MAX_RUNS];
static int s_finish_count;

static void s_on_finish(zc_job_t *job, int rc, void *arg)
{
    pthread_mutex_lock(&s_runs_lock);
    if (s_finish_count < MAX_RUNS) {
        s_finish_t *f = &s_finishes[s_finish_count++];
        snprintf(f->id, sizeof f->id, "%s", zc_job_id(job));
        f->rc = rc;
        f->kind = zc_job_error(job);
        snprintf(f->errstr, sizeof f->errstr, "%s", zc_job_errstr(job));
    }
    pthread_mutex_unlock(&s_runs_lock);
}

//  Returns the last finish of id, or NULL.
static const s_finish_t *s_finish(const char *id)
{
    const s_finish_t *found = NULL;
    pthread_mutex_lock(&s_runs_lock);
    for (int i = 0; i < s_finish_count; i++)
        if (strcmp(s_finishes[i].id, id) == 0) found = &s_finishes[i];
    pthread_mutex_unlock(&s_runs_lock);
    return found;
}

static int s_count_runs(const char *id)
{
    int n = 0;
    pthread_mutex_lock(&s_runs_lock);
    for (int i = 0; i < s_run_count; i++)
        if (strcmp(s_runs[i].id, id) == 0) n++;
    pthread_mutex_unlock(&s_runs_lock);
    return n;
}

//  Returns the index of the nth (from 0) run of id, or -1.
static int s_find_run(const char *id, int nth)
{
    int found = -1;
    pthread_mutex_lock(&s_runs_lock);
    for (int i = 0; i < s_run_count && found < 0; i++)
        if (strcmp(s_runs[i].id, id) == 0 && nth-- == 0) found = i;
    pthread_mutex_unlock(&s_runs_lock);
    return found;
}

//  Waits up to timeout_ms until id has run at least count times.
static int s_wait_runs(const char *id, int count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (s_count_runs(id) < count && zt_now_ms() < deadline)
        usleep(5000);
    return s_count_runs(id) >= count;
}

static int s_task_record(zc_job_t *job, void *arg)
{
    s_record(job, arg);
    return 0;
}

static int s_task_flaky(zc_job_t *job, void *arg)
{
    s_record(job, arg);
    if (zc_job_attempt(job) <= s_flaky_failures) {
        zc_job_set_error(job, "flaky failure %d", zc_job_attempt(job));
        return -1;
    }
    return 0;
}

static int s_task_bad(zc_job_t *job, void *arg)
{
    s_record(job, arg);
    if (s_bad_fails) {
        zc_job_set_error(job, "bad input");
        return -1;
    }
    return 0;
}

//  Sleeps for the ms in the job's id suffix ("...-MS"), until cancelled.
static int s_task_slow(zc_job_t *job, void *arg)
{
    s_run_t *run = s_record(job, arg);
    const char *dash = strrchr(zc_job_id(job), '-');
    int64_t ms = dash ? atoll(dash + 1) : 100;
    int64_t end = zt_now_ms() + ms;
    while (zt_now_ms() < end && !zc_job_cancelled(job))
        usleep(2000);
    if (zc_job_cancelled(job)) {
        pthread_mutex_lock(&s_runs_lock);
        if (run) run->cancelled = 1;
        pthread_mutex_unlock(&s_runs_lock);
    }
    return 0;
}

static zc_queue_worker_t *s_worker(zc_queue_t *queue, const char *node, const char *queues[],
                                   int concurrency, int threads)
{
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, node);
    if (!worker) return NULL;
    zc_queue_worker_register(worker, "record", s_task_record, (void *)node);
    zc_queue_worker_register(worker, "flaky", s_task_flaky, (void *)node);
    zc_queue_worker_register(worker, "bad", s_task_bad, (void *)node);
    zc_queue_worker_register(worker, "slow", s_task_slow, (void *)node);
    zc_queue_worker_on_finish(worker, s_on_finish, NULL);
    for (int i = 0; queues[i]; i++)
        zc_queue_worker_add_queue(worker, queues[i]);
    zc_queue_worker_set_concurrency(worker, concurrency);
    if (threads >= 0) zc_queue_worker_set_threads(worker, threads);
    if (zc_queue_worker_start(worker)) {
        zc_queue_worker_destroy(&worker);
        return NULL;
    }
    return worker;
}

static zc_queue_stats_t s_stats(zc_queue_t *queue, const char *name)
{
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, name, &stats), 0);
    return stats;
}

//  Waits until the queue has processed count jobs and holds none in flight.
static int s_wait_processed(zc_queue_t *queue, const char *name, int64_t count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    zc_queue_stats_t stats;
    do {
        if (zc_queue_stats(queue, name, &stats) == 0 && stats.processed >= count &&
            stats.inflight == 0)
            return 1;
        usleep(5000);
    } while (zt_now_ms() < deadline);
    return 0;
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    const char *url = zt_redis_url(redis);

    zt_section("construction and bad input");
    ZT_CHECK(zc_queue_new("nonsense://x", "t") == NULL);
    ZT_CHECK(zc_queue_new(url, "bad{cluster}") == NULL);
    ZT_CHECK(zc_queue_new(url, "") == NULL);
    zc_queue_t *queue = zc_queue_new(url, "t");
    ZT_CHECK(queue != NULL);
    ZT_CHECK(strcmp(zc_queue_cluster(queue), "t") == 0);
    ZT_EQ(zc_queue_error(queue), ZC_OK);
    ZT_CHECK(strcmp(zc_queue_errstr(queue), "") == 0);
    ZT_EQ(zc_queue_enqueue(queue, "bad queue", "record", NULL, 0, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    ZT_CHECK(strstr(zc_queue_errstr(queue), "queue name") != NULL);
    ZT_EQ(zc_queue_enqueue(queue, "q", "bad/task", NULL, 0, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    zc_job_opts_t bad_id = {.id = "has space"};
    ZT_EQ(zc_queue_enqueue(queue, "q", "record", NULL, 0, &bad_id, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    ZT_CHECK(strstr(zc_queue_errstr(queue), "job id") != NULL);
    zc_job_opts_t negative = {.timeout_ms = -1};
    ZT_EQ(zc_queue_enqueue(queue, "q", "record", NULL, 0, &negative, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    ZT_EQ(zc_queue_enqueue_in(queue, "q", "record", NULL, 0, -5, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    ZT_CHECK(zc_queue_worker_new(queue, "bad id") == NULL);
    ZT_CHECK(zc_queue_worker_new(queue, "") == NULL);
    ZT_EQ(zc_queue_retry(queue, "q", "nothing"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_MISSING);
    ZT_EQ(zc_queue_every(queue, "e", "q", "record", NULL, 0, 0, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_INVALID);
    int64_t now = zc_queue_now_ms(queue);
    ZT_CHECK(now > 1600000000000LL);
    ZT_EQ(zc_queue_error(queue), ZC_OK); //  a success clears the last failure
    ZT_CHECK(strcmp(zc_queue_errstr(queue), "") == 0);
    zc_queue_t *unreachable = zc_queue_new("unix:///nonexistent/redis.sock", "t");
    ZT_EQ(zc_queue_enqueue(unreachable, "q", "record", NULL, 0, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(unreachable), ZC_ERR_REDIS);
    ZT_CHECK(strstr(zc_queue_errstr(unreachable), "cannot connect") != NULL);
    zc_queue_worker_t *orphan = zc_queue_worker_new(unreachable, "orphan");
    ZT_EQ(zc_queue_worker_start(orphan), -1);
    ZT_EQ(zc_queue_worker_error(orphan), ZC_ERR_REDIS);
    ZT_CHECK(strstr(zc_queue_worker_errstr(orphan), "cannot connect") != NULL);
    zc_queue_worker_destroy(&orphan);
    zc_queue_destroy(&unreachable);
    zc_queue_destroy(&unreachable);

    zt_section("enqueue, generated ids, dedupe by job id");
    char id1[ZC_JOB_ID_MAX + 1], id2[ZC_JOB_ID_MAX + 1];
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", NULL, 0, NULL, id1), 0);
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", NULL, 0, NULL, id2), 0);
    ZT_CHECK(strcmp(id1, id2) != 0);
    zc_job_opts_t named = {.id = "order-42"};
    char got[ZC_JOB_ID_MAX + 1];
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", "\x01", 1, &named, got), 0);
    ZT_CHECK(strcmp(got, "order-42") == 0);
    got[0] = 0;
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", "\x02", 1, &named, got), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_DUPLICATE);
    ZT_CHECK(strcmp(got, "order-42") == 0);
    //  A live id is refused wherever the job is: also on another queue, or delayed.
    ZT_EQ(zc_queue_enqueue_in(queue, "other", "record", NULL, 0, 1000, &named, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_DUPLICATE);
    //  A generated id never takes a caller's id that happens to look the same.
    zc_job_opts_t numeric = {.id = "3"};
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", NULL, 0, &numeric, NULL), 0);
    char id4[ZC_JOB_ID_MAX + 1];
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", NULL, 0, NULL, id4), 0);
    ZT_CHECK(strcmp(id4, "3") != 0);
    zc_queue_stats_t stats = s_stats(queue, "dedupe");
    ZT_EQ(stats.queued, 5);
    ZT_EQ(stats.delayed, 0);

    zt_section("enqueue_many in batches, with duplicates");
    enum { MANY = 2500 };
    zc_queue_item_t *items = (zc_queue_item_t *)calloc(MANY, sizeof *items);
    char(*ids)[16] = calloc(MANY, 16);
    int *results = (int *)calloc(MANY, sizeof(int));
    for (int i = 0; i < MANY; i++) {
        snprintf(ids[i], 16, "m%d", i % 2000 == 7 && i > 2000 ? 7 : i);
        items[i].id = ids[i];
        items[i].args = "\xc0"; //  msgpack nil
        items[i].args_size = 1;
    }
    ZT_EQ(zc_queue_enqueue_many(queue, "many", "record", items, MANY, NULL, results), MANY - 1);
    ZT_EQ(zc_queue_error(queue), ZC_OK); //  a duplicate in a batch is no failure
    ZT_EQ(results[7], ZC_OK);
    ZT_EQ(results[2007], ZC_ERR_DUPLICATE);
    ZT_EQ(results[MANY - 1], ZC_OK);
    ZT_EQ(s_stats(queue, "many").queued, MANY - 1);
    free(items);
    free(ids);
    free(results);

    zt_section("workers drain queues; args reach the handler; jobs are acked");
    const char *drain_queues[] = {"dedupe", "many", NULL};
    zc_queue_worker_t *w1 = s_worker(queue, "w1", drain_queues, 64, 0);
    ZT_CHECK(w1 != NULL);
    ZT_CHECK(strcmp(zc_queue_worker_id(w1), "w1") == 0);
    ZT_EQ(zc_queue_worker_error(w1), ZC_OK);
    ZT_EQ(zc_queue_worker_register(w1, "late", s_task_record, NULL), -1);
    ZT_EQ(zc_queue_worker_error(w1), ZC_ERR_STATE);
    ZT_EQ(zc_queue_worker_add_queue(w1, "late"), -1);
    ZT_EQ(zc_queue_worker_error(w1), ZC_ERR_STATE);
    ZT_EQ(zc_queue_worker_start(w1), -1);
    ZT_EQ(zc_queue_worker_error(w1), ZC_ERR_STATE);
    ZT_CHECK(s_wait_processed(queue, "many", MANY - 1, 20000));
    ZT_CHECK(s_wait_processed(queue, "dedupe", 5, 5000));
    ZT_EQ(s_count_runs("order-42"), 1);
    int r = s_find_run("order-42", 0);
    ZT_CHECK(r >= 0 && s_runs[r].args_size == 1 && s_runs[r].args[0] == 1);
    ZT_CHECK(r >= 0 && strcmp(s_runs[r].queue, "dedupe") == 0 && s_runs[r].attempt == 1);
    stats = s_stats(queue, "many");
    ZT_EQ(stats.queued, 0);
    ZT_EQ(stats.processed, MANY - 1);
    ZT_EQ(stats.lost_acks, 0);
    //  Once completed, an id may be used again.
    ZT_EQ(zc_queue_enqueue(queue, "dedupe", "record", NULL, 0, &named, NULL), 0);
    ZT_CHECK(s_wait_runs("order-42", 2, 5000));
    zc_queue_worker_stats_t wstats;
    zc_queue_worker_stats(w1, &wstats);
    ZT_EQ(wstats.claimed, MANY - 1 + 6);
    zc_queue_worker_destroy(&w1);
    zc_queue_worker_destroy(&w1);
    ZT_CHECK(w1 == NULL);

    zt_section("priority across the queues a worker drains");
    for (int i = 0; i < 5; i++) {
        char id[32];
        zc_job_opts_t opts = {.id = id};
        snprintf(id, sizeof id, "low-%d", i);
        ZT_EQ(zc_queue_enqueue(queue, "low", "record", NULL, 0, &opts, NULL), 0);
        snprintf(id, sizeof id, "high-%d", i);
        ZT_EQ(zc_queue_enqueue(queue, "high", "record", NULL, 0, &opts, NULL), 0);
    }
    const char *priority_queues[] = {"high", "low", NULL};
    int first = s_run_count;
    zc_queue_worker_t *w2 = s_worker(queue, "w2", priority_queues, 1, 1);
    ZT_CHECK(s_wait_runs("low-4", 1, 5000));
    int order_ok = s_run_count - first == 10;
    for (int i = 0; i < 10 && order_ok; i++) {
        char expect[32];
        snprintf(expect, sizeof expect, "%s-%d", i < 5 ? "high" : "low", i % 5);
        order_ok = strcmp(s_runs[first + i].id, expect) == 0;
    }
    ZT_CHECK(order_ok);

    zt_section("enqueue_in and enqueue_at wait for their time");
    zc_job_opts_t later_opts = {.id = "later"};
    int64_t enqueued_at = zt_now_ms();
    ZT_EQ(zc_queue_enqueue_in(queue, "high", "record", NULL, 0, 600, &later_opts, NULL), 0);
    zc_job_opts_t at_opts = {.id = "at"};
    ZT_EQ(zc_queue_enqueue_at(queue, "high", "record", NULL, 0, zc_queue_now_ms(queue) + 400,
                              &at_opts, NULL),
          0);
    stats = s_stats(queue, "high");
    ZT_EQ(stats.delayed, 2);
    ZT_EQ(stats.queued, 0);
    usleep(250000);
    ZT_EQ(s_count_runs("later") + s_count_runs("at"), 0);
    ZT_CHECK(s_wait_runs("at", 1, 3000));
    ZT_CHECK(s_wait_runs("later", 1, 3000));
    int64_t at_late = s_runs[s_find_run("at", 0)].at_ms - enqueued_at;
    int64_t later_late = s_runs[s_find_run("later", 0)].at_ms - enqueued_at;
    ZT_CHECK(at_late >= 390 && at_late < 1500);
    ZT_CHECK(later_late >= 590 && later_late < 1700);
    printf("delayed jobs ran %lld ms (at +400) and %lld ms (in 600) after enqueue\n",
           (long long)at_late, (long long)later_late);
    ZT_CHECK(s_wait_processed(queue, "high", 7, 2000));
    ZT_EQ(s_stats(queue, "high").delayed, 0);
    //  A time in the past runs at once.
    zc_job_opts_t past_opts = {.id = "past"};
    ZT_EQ(zc_queue_enqueue_at(queue, "high", "record", NULL, 0, 1000, &past_opts, NULL), 0);
    ZT_CHECK(s_wait_runs("past", 1, 2000));
    zc_queue_worker_destroy(&w2);

    zt_section("retries with backoff, then the failed list; retry from it");
    const char *retry_queues[] = {"retry", NULL};
    zc_queue_worker_t *w3 = s_worker(queue, "w3", retry_queues, 4, 4);
    zc_job_opts_t flaky_opts = {.id = "flaky-1", .max_attempts = 3, .backoff_ms = 100};
    ZT_EQ(zc_queue_enqueue(queue, "retry", "flaky", NULL, 0, &flaky_opts, NULL), 0);
    zc_job_opts_t bad_opts = {.id = "bad-1", .max_attempts = 2, .backoff_ms = 50};
    ZT_EQ(zc_queue_enqueue(queue, "retry", "bad", NULL, 0, &bad_opts, NULL), 0);
    ZT_CHECK(s_wait_runs("flaky-1", 3, 5000));
    ZT_CHECK(s_wait_processed(queue, "retry", 1, 3000));
    int a1 = s_find_run("flaky-1", 0), a2 = s_find_run("flaky-1", 1), a3 = s_find_run("flaky-1", 2);
    ZT_CHECK(a1 >= 0 && a2 >= 0 && a3 >= 0);
    if (a1 >= 0 && a2 >= 0 && a3 >= 0) {
        ZT_EQ(s_runs[a3].attempt, 3);
        int64_t gap1 = s_runs[a2].at_ms - s_runs[a1].at_ms;
        int64_t gap2 = s_runs[a3].at_ms - s_runs[a2].at_ms;
        ZT_CHECK(gap1 >= 95 && gap1 < 1000);
        ZT_CHECK(gap2 >= 195 && gap2 < 1200); //  doubled
        printf("backoff 100 ms: retries after %lld and %lld ms\n", (long long)gap1,
               (long long)gap2);
    }
    ZT_CHECK(s_wait_runs("bad-1", 2, 3000));
    zc_queue_failure_t failures[4];
    int64_t deadline = zt_now_ms() + 3000;
    while (s_stats(queue, "retry").failed_list < 1 && zt_now_ms() < deadline)
        usleep(5000);
    ZT_EQ(zc_queue_failed(queue, "retry", failures, 4), 1);
    ZT_CHECK(strcmp(failures[0].id, "bad-1") == 0);
    ZT_CHECK(strcmp(failures[0].task, "bad") == 0);
    ZT_CHECK(strcmp(failures[0].error, "bad input") == 0);
    ZT_EQ(failures[0].attempts, 2);
    ZT_CHECK(failures[0].failed_ms >= now);
    stats = s_stats(queue, "retry");
    ZT_EQ(stats.failed, 1);
    ZT_EQ(stats.failed_list, 1);
    ZT_EQ(stats.retried, 3); //  flaky twice, bad once
    ZT_EQ(stats.processed, 1);
    //  A failed job is still live: its id is refused.
    ZT_EQ(zc_queue_enqueue(queue, "retry", "bad", NULL, 0, &bad_opts, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_DUPLICATE);
    usleep(300000);
    ZT_EQ(s_count_runs("bad-1"), 2); //  no more retries
    s_bad_fails = 0;
    const s_finish_t *finish = s_finish("bad-1");
    ZT_CHECK(finish && finish->rc == -1 && finish->kind == ZC_ERR_HANDLER);
    ZT_CHECK(finish && strcmp(finish->errstr, "bad input") == 0);
    ZT_EQ(zc_queue_retry(queue, "other", "bad-1"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_MISSING);
    ZT_EQ(zc_queue_retry(queue, "retry", "bad-1"), 0);
    ZT_EQ(zc_queue_retry(queue, "retry", "bad-1"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_MISSING);
    ZT_CHECK(s_wait_runs("bad-1", 3, 3000));
    ZT_CHECK(s_wait_processed(queue, "retry", 2, 3000));
    finish = s_finish("bad-1");
    ZT_CHECK(finish && finish->rc == 0 && finish->kind == ZC_OK);
    ZT_EQ(s_stats(queue, "retry").failed_list, 0);
    ZT_EQ(zc_queue_failed(queue, "retry", failures, 4), 0);

    zt_section("a run past its timeout fails and is cancelled");
    zc_job_opts_t slow_opts = {.id = "timeout-3000", .max_attempts = 1, .timeout_ms = 300};
    int64_t started = zt_now_ms();
    ZT_EQ(zc_queue_enqueue(queue, "retry", "slow", NULL, 0, &slow_opts, NULL), 0);
    deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "retry").failed_list < 1 && zt_now_ms() < deadline)
        usleep(5000);
    int64_t failed_after = zt_now_ms() - started;
    ZT_EQ(zc_queue_failed(queue, "retry", failures, 4), 1);
    ZT_CHECK(strcmp(failures[0].error, "timed out after 300 ms") == 0);
    ZT_CHECK(failed_after >= 300 && failed_after < 2000);
    printf("a 300 ms timeout failed the run after %lld ms\n", (long long)failed_after);
    deadline = zt_now_ms() + 3000;
    while (zt_now_ms() < deadline) {
        zc_queue_worker_stats(w3, &wstats);
        if (wstats.running == 0) break;
        usleep(5000);
    }
    r = s_find_run("timeout-3000", 0);
    ZT_CHECK(r >= 0 && s_runs[r].cancelled);
    finish = s_finish("timeout-3000");
    ZT_CHECK(finish && finish->rc == -1 && finish->kind == ZC_ERR_TIMEOUT);
    ZT_CHECK(finish && strcmp(finish->errstr, "timed out after 300 ms") == 0);
    ZT_EQ(wstats.timed_out, 1);
    ZT_EQ(wstats.running, 0);
    ZT_EQ(s_stats(queue, "retry").inflight, 0);

    zt_section("a job of a task no handler is registered for fails");
    zc_job_opts_t orphan_opts = {.id = "orphan-1", .max_attempts = 1};
    ZT_EQ(zc_queue_enqueue(queue, "retry", "nobody", NULL, 0, &orphan_opts, NULL), 0);
    deadline = zt_now_ms() + 3000;
    while (s_stats(queue, "retry").failed_list < 2 && zt_now_ms() < deadline)
        usleep(5000);
    ZT_EQ(zc_queue_failed(queue, "retry", failures, 4), 2);
    ZT_CHECK(strcmp(failures[0].id, "orphan-1") == 0);
    ZT_CHECK(strcmp(failures[0].error, "no handler for task 'nobody' on node w3") == 0);
    finish = s_finish("orphan-1");
    ZT_CHECK(finish && finish->rc == -1 && finish->kind == ZC_ERR_MISSING);
    zc_queue_worker_destroy(&w3);

    zt_section("a slow but live worker keeps its claim (lease renewed)");
    const char *lease_queues[] = {"lease", NULL};
    zc_queue_worker_t *w4 = zc_queue_worker_new(queue, "w4");
    ZT_EQ(zc_queue_worker_register(w4, "slow", s_task_slow, "w4"), 0);
    ZT_EQ(zc_queue_worker_register(w4, "slow", s_task_slow, "w4"), -1);
    ZT_EQ(zc_queue_worker_error(w4), ZC_ERR_INVALID);
    ZT_CHECK(strstr(zc_queue_worker_errstr(w4), "already registered") != NULL);
    ZT_EQ(zc_queue_worker_register(w4, "bad/task", s_task_slow, "w4"), -1);
    ZT_EQ(zc_queue_worker_error(w4), ZC_ERR_INVALID);
    ZT_EQ(zc_queue_worker_add_queue(w4, "lease"), 0);
    ZT_EQ(zc_queue_worker_error(w4), ZC_OK);
    ZT_EQ(zc_queue_worker_add_queue(w4, "lease"), -1);
    ZT_EQ(zc_queue_worker_error(w4), ZC_ERR_INVALID);
    ZT_EQ(zc_queue_worker_add_queue(w4, "bad queue"), -1);
    ZT_EQ(zc_queue_worker_error(w4), ZC_ERR_INVALID);
    zc_queue_worker_set_lease(w4, 400);
    ZT_EQ(zc_queue_worker_start(w4), 0);
    ZT_EQ(zc_queue_worker_error(w4), ZC_OK);
    zc_queue_worker_t *w5 = s_worker(queue, "w5", lease_queues, 2, 2); //  would take it
    zc_job_opts_t long_opts = {.id = "long-1500"};
    ZT_EQ(zc_queue_enqueue(queue, "lease", "slow", NULL, 0, &long_opts, NULL), 0);
    ZT_CHECK(s_wait_processed(queue, "lease", 1, 5000));
    usleep(200000);
    ZT_EQ(s_count_runs("long-1500"), 1);
    stats = s_stats(queue, "lease");
    ZT_EQ(stats.requeued, 0);
    ZT_EQ(stats.lost_acks, 0);

    zt_section("requeue_node takes claims back; a late ack is a counted no-op");
    zc_job_opts_t held_opts = {.id = "held-600"};
    zc_queue_worker_destroy(&w5);
    ZT_EQ(zc_queue_enqueue(queue, "lease", "slow", NULL, 0, &held_opts, NULL), 0);
    ZT_CHECK(s_wait_runs("held-600", 1, 3000));
    ZT_EQ(zc_queue_requeue_node(queue, "w4"), 1);
    ZT_EQ(zc_queue_requeue_node(queue, "w4"), 0);
    stats = s_stats(queue, "lease");
    ZT_EQ(stats.queued + stats.inflight, 1);
    ZT_EQ(stats.requeued, 1);
    //  w4 finishes the first run (its ack is refused), then claims the job again.
    ZT_CHECK(s_wait_runs("held-600", 2, 5000));
    ZT_CHECK(s_wait_processed(queue, "lease", 2, 5000));
    stats = s_stats(queue, "lease");
    ZT_EQ(stats.lost_acks, 1);
    ZT_EQ(stats.processed, 2);
    r = s_find_run("held-600", 1);
    ZT_CHECK(r >= 0 && s_runs[r].attempt == 2);
    zc_queue_worker_stats(w4, &wstats);
    ZT_EQ(wstats.lost, 1);
    ZT_EQ(zc_queue_requeue_node(queue, "bad node"), -1);

    zt_section("stop finishes running jobs and gives unstarted claims back");
    zc_queue_worker_destroy(&w4);
    const char *stop_queues[] = {"stop", NULL};
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "stop%d-300", i);
        zc_job_opts_t opts = {.id = id};
        ZT_EQ(zc_queue_enqueue(queue, "stop", "slow", NULL, 0, &opts, NULL), 0);
    }
    zc_queue_worker_t *w6 = s_worker(queue, "w6", stop_queues, 4, 1);
    ZT_CHECK(s_wait_runs("stop0-300", 1, 3000));
    zc_queue_worker_stop(w6);
    zc_queue_worker_stats(w6, &wstats);
    ZT_EQ(wstats.claimed, 4);
    ZT_EQ(wstats.succeeded, 1);
    ZT_EQ(wstats.released, 3);
    ZT_EQ(wstats.running, 0);
    stats = s_stats(queue, "stop");
    ZT_EQ(stats.processed, 1);
    ZT_EQ(stats.queued, 3);
    ZT_EQ(stats.inflight, 0);
    zc_queue_worker_stop(w6); //  idempotent
    zc_queue_worker_destroy(&w6);
    zc_queue_worker_t *w7 = s_worker(queue, "w7", stop_queues, 4, 4);
    ZT_CHECK(s_wait_processed(queue, "stop", 4, 5000));
    ZT_EQ(s_count_runs("stop1-300"), 1);
    r = s_find_run("stop1-300", 0);
    ZT_CHECK(r >= 0 && s_runs[r].attempt == 1); //  a released claim is not an attempt
    zc_queue_worker_destroy(&w7);

    zt_section("recurring tasks: one enqueuer at a time, takeover when it stops");
    zc_queue_t *rq = zc_queue_new(url, "rec");
    const char *rec_queues[] = {"rec", NULL};
    zc_queue_worker_t *ra = s_worker(rq, "ra", rec_queues, 2, 2);
    zc_queue_worker_t *rb = s_worker(rq, "rb", rec_queues, 2, 2);
    ZT_EQ(zc_queue_every(rq, "beat", "rec", "record", NULL, 0, 300, NULL), 0);
    ZT_EQ(zc_queue_every(rq, "beat", "rec", "record", NULL, 0, 300, NULL), 0); //  redefine
    int start_runs = s_run_count;
    usleep(2000000);
    zc_queue_worker_stats_t sa, sb;
    zc_queue_worker_stats(ra, &sa);
    zc_queue_worker_stats(rb, &sb);
    ZT_EQ(sa.scheduler + sb.scheduler, 1);
    pthread_mutex_lock(&s_runs_lock);
    int beats = 0, doubled = 0;
    int64_t last_slot = 0, min_gap = 1 << 30;
    for (int i = start_runs; i < s_run_count; i++) {
        if (strncmp(s_runs[i].id, "every:beat:", 11) != 0) continue;
        beats++;
        int64_t slot = atoll(s_runs[i].id + 11);
        if (last_slot && slot - last_slot < min_gap) min_gap = slot - last_slot;
        last_slot = slot;
        for (int j = start_runs; j < i; j++)
            doubled += strcmp(s_runs[j].id, s_runs[i].id) == 0;
    }
    pthread_mutex_unlock(&s_runs_lock);
    printf("recurring every 300 ms: %d runs in 2 s, slots >= %lld ms apart\n", beats,
           (long long)min_gap);
    ZT_CHECK(beats >= 4 && beats <= 8);
    ZT_EQ(doubled, 0);
    ZT_CHECK(min_gap >= 300 && min_gap % 300 == 0); //  on the period's phase
    //  The holder stops (resigning its lease): the other one takes over.
    zc_queue_worker_t **holder = sa.scheduler ? &ra : &rb;
    zc_queue_worker_t *other = sa.scheduler ? rb : ra;
    zc_queue_worker_destroy(holder);
    int before = s_run_count;
    deadline = zt_now_ms() + 3000;
    int takeover = 0;
    while (!takeover && zt_now_ms() < deadline) {
        usleep(20000);
        pthread_mutex_lock(&s_runs_lock);
        for (int i = before; i < s_run_count; i++)
            takeover += strncmp(s_runs[i].id, "every:beat:", 11) == 0;
        pthread_mutex_unlock(&s_runs_lock);
    }
    ZT_CHECK(takeover > 0);
    zc_queue_worker_stats(other, &sb);
    ZT_EQ(sb.scheduler, 1);
    ZT_EQ(zc_queue_every_remove(rq, "beat"), 1);
    ZT_EQ(zc_queue_every_remove(rq, "beat"), 0);
    usleep(400000);
    before = s_run_count;
    usleep(700000);
    ZT_EQ(s_run_count, before);
    zc_queue_worker_destroy(&ra);
    zc_queue_worker_destroy(&rb);
    zc_queue_destroy(&rq);

    zt_section("delete a queue with ready, delayed and failed jobs");
    zc_job_opts_t d1 = {.id = "doomed-1"}, d2 = {.id = "doomed-2"};
    zc_job_opts_t d3 = {.id = "doomed-3", .max_attempts = 1};
    ZT_EQ(zc_queue_enqueue(queue, "doomed", "record", NULL, 0, &d1, NULL), 0);
    ZT_EQ(zc_queue_enqueue_in(queue, "doomed", "record", NULL, 0, 60000, &d2, NULL), 0);
    ZT_EQ(zc_queue_enqueue(queue, "doomed", "bad", NULL, 0, &d3, NULL), 0);
    s_bad_fails = 1;
    const char *doomed_queues[] = {"doomed", NULL};
    zc_queue_worker_t *w8 = s_worker(queue, "w8", doomed_queues, 1, 1);
    deadline = zt_now_ms() + 3000;
    while (s_stats(queue, "doomed").failed_list < 1 && zt_now_ms() < deadline)
        usleep(5000);
    zc_queue_worker_destroy(&w8);
    ZT_EQ(zc_queue_enqueue(queue, "doomed", "record", NULL, 0, &d1, NULL), 0); //  re-run
    ZT_EQ(zc_queue_every(queue, "doomed-beat", "doomed", "record", NULL, 0, 60000, NULL), 0);
    ZT_EQ(zc_queue_delete(queue, "doomed"), 3);
    stats = s_stats(queue, "doomed");
    ZT_EQ(stats.queued + stats.delayed + stats.inflight + stats.failed_list + stats.processed, 0);
    ZT_EQ(zc_queue_every_remove(queue, "doomed-beat"), 0);
    ZT_EQ(zc_queue_enqueue(queue, "doomed", "record", NULL, 0, &d2, NULL), 0); //  id free again
    ZT_EQ(zc_queue_delete(queue, "doomed"), 1);
    ZT_EQ(zc_queue_delete(queue, "never-used"), 0);

    zt_section("a queue key that holds another type of data");
    redisContext *c = redisConnectUnix(zt_redis_socket(redis));
    redisReply *reply = (redisReply *)redisCommand(c, "SET zc:{t}:q:typed:ready text");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    ZT_EQ(zc_queue_enqueue(queue, "typed", "record", NULL, 0, NULL, NULL), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
    ZT_EQ(zc_queue_delete(queue, "typed"), -1);
    ZT_EQ(zc_queue_error(queue), ZC_ERR_TYPE);
    reply = (redisReply *)redisCommand(c, "DEL zc:{t}:q:typed:ready");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER);
    freeReplyObject(reply);
    ZT_EQ(zc_queue_enqueue(queue, "typed", "record", NULL, 0, NULL, NULL), 0);
    ZT_EQ(zc_queue_delete(queue, "typed"), 1);

    zt_section("scripts flushed: pipelined calls fall back to EVAL together");
    const char *flush_queues[] = {"flush", NULL};
    zc_job_opts_t f1 = {.id = "flush1-300"}, f2 = {.id = "flush2-10"};
    ZT_EQ(zc_queue_enqueue(queue, "flush", "slow", NULL, 0, &f1, NULL), 0);
    ZT_EQ(zc_queue_enqueue(queue, "flush", "slow", NULL, 0, &f2, NULL), 0);
    zc_queue_worker_t *wf = s_worker(queue, "wf", flush_queues, 1, 0);
    ZT_CHECK(s_wait_runs("flush1-300", 1, 3000));
    //  Its next round trip pipelines ACK and CLAIM: both now unknown to Redis.
    reply = (redisReply *)redisCommand(c, "SCRIPT FLUSH");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    ZT_CHECK(s_wait_processed(queue, "flush", 2, 3000));
    stats = s_stats(queue, "flush");
    ZT_EQ(stats.lost_acks + stats.requeued, 0);
    ZT_EQ(s_count_runs("flush1-300") + s_count_runs("flush2-10"), 2);
    zc_queue_worker_destroy(&wf);

    zt_section("scripts flushed and Redis restarted: EVAL fallback and reconnect");
    reply = (redisReply *)redisCommand(c, "SCRIPT FLUSH");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(c);
    ZT_EQ(zc_queue_enqueue(queue, "after", "record", NULL, 0, NULL, NULL), 0);
    ZT_EQ(s_stats(queue, "after").queued, 1);
    ZT_EQ(zt_redis_restart(redis), 0);
    zc_queue_enqueue(queue, "after", "record", NULL, 0, NULL,
                     NULL); //  may see the old connection fail
    ZT_EQ(zc_queue_enqueue(queue, "after", "record", NULL, 0, NULL, NULL), 0);
    int64_t waiting = s_stats(queue, "after").queued;
    ZT_CHECK(waiting >= 1);
    const char *after_queues[] = {"after", NULL};
    zc_queue_worker_t *w9 = s_worker(queue, "w9", after_queues, 2, 0);
    ZT_CHECK(s_wait_processed(queue, "after", waiting, 3000));
    zc_queue_worker_destroy(&w9);

    zc_queue_destroy(&queue);
    zt_redis_destroy(&redis);
    return zt_done();
}
