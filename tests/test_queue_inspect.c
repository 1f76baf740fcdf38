/*  Looking into a real queue: the ready and failed lists page by page, the
    delayed jobs with their times (one queue or all), what a worker runs
    now, one job, removing a queued, delayed or failed job by id (a running
    one is refused) — and all of it with ids whose hash is gone, job keys
    and queue keys of the wrong type: listed or refused, never a crash, and
    a refused removal writes nothing. */
#include "testkit.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define P "zc:{qi}:"

static redisContext *s_redis;
static atomic_int s_release; //  the hold task returns once set

static long long s_command_int(const char *command)
{
    redisReply *reply = (redisReply *)redisCommand(s_redis, command);
    long long value = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return value;
}

static int s_task_hold(zc_job_t *job, void *arg)
{
    while (!s_release && !zc_job_cancelled(job))
        usleep(5000);
    return 0;
}

static int s_task_fail(zc_job_t *job, void *arg)
{
    zc_job_set_error(job, "always fails");
    return -1;
}

static void s_enqueue(zc_queue_t *q, const char *queue, const char *task, const char *id,
                      int64_t delay_ms, int attempts)
{
    zc_job_opts_t opts = {.id = id, .max_attempts = attempts};
    const char args[] = "\xa2hi"; //  msgpack "hi"
    int rc = delay_ms ? zc_queue_enqueue_in(q, queue, task, args, 3, delay_ms, &opts, NULL)
                      : zc_queue_enqueue(q, queue, task, args, 3, &opts, NULL);
    ZT_EQ(rc, 0);
}

static void s_test_lists(zc_queue_t *q)
{
    zt_section("ready list, paged, next to run first");
    char id[8];
    for (int i = 1; i <= 5; i++) {
        snprintf(id, sizeof id, "j%d", i);
        s_enqueue(q, "a", "work", id, 0, 0);
    }
    zc_queue_job_t *jobs;
    size_t n;
    int64_t total = 0;
    ZT_EQ(zc_queue_jobs(q, "a", ZC_QUEUE_READY, 0, 2, &jobs, &n, &total), 0);
    ZT_EQ(n, 2);
    ZT_EQ(total, 5);
    ZT_CHECK(n == 2 && strcmp(jobs[0].id, "j1") == 0 && strcmp(jobs[1].id, "j2") == 0);
    ZT_CHECK(n == 2 && strcmp(jobs[0].state, "queued") == 0 && strcmp(jobs[0].task, "work") == 0);
    ZT_CHECK(n == 2 && jobs[0].args_size == 3 && memcmp(jobs[0].args, "\xa2hi", 3) == 0);
    ZT_CHECK(n == 2 && jobs[0].created_ms > 0 && jobs[0].max_attempts == 3);
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_jobs(q, "a", ZC_QUEUE_READY, 3, 10, &jobs, &n, NULL), 0);
    ZT_CHECK(n == 2 && strcmp(jobs[0].id, "j4") == 0 && strcmp(jobs[1].id, "j5") == 0);
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_jobs(q, "a", ZC_QUEUE_READY, 9, 10, &jobs, &n, NULL), 0);
    ZT_EQ(n, 0);
    ZT_EQ(zc_queue_jobs(q, "a", ZC_QUEUE_READY, 0, 0, &jobs, &n, NULL), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_INVALID);
    ZT_EQ(zc_queue_jobs(q, "no such!", ZC_QUEUE_READY, 0, 1, &jobs, &n, NULL), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_INVALID);

    zt_section("delayed jobs with their times, of one queue or all");
    int64_t now = zc_queue_now_ms(q);
    s_enqueue(q, "a", "later", "d1", 60000, 0);
    s_enqueue(q, "b", "later", "d2", 30000, 0);
    s_enqueue(q, "a", "later", "d3", 90000, 0);
    ZT_EQ(zc_queue_delayed(q, "a", 0, 10, &jobs, &n, &total), 0);
    ZT_EQ(total, 3);
    ZT_CHECK(n == 2 && strcmp(jobs[0].id, "d1") == 0 && strcmp(jobs[1].id, "d3") == 0);
    ZT_CHECK(n == 2 && jobs[0].at_ms >= now + 59000 && jobs[0].at_ms <= now + 61000);
    ZT_CHECK(n == 2 && strcmp(jobs[0].state, "delayed") == 0);
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_delayed(q, "a", 1, 10, &jobs, &n, NULL), 0);
    ZT_CHECK(n == 1 && strcmp(jobs[0].id, "d3") == 0);
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_delayed(q, NULL, 0, 10, &jobs, &n, NULL), 0);
    ZT_CHECK(n == 3 && strcmp(jobs[0].id, "d2") == 0 && strcmp(jobs[0].queue, "b") == 0);
    zc_queue_jobs_free(&jobs, n);

    zt_section("one job; removing queued and delayed jobs by id");
    zc_queue_job_t job;
    ZT_EQ(zc_queue_job(q, "d1", &job), 0);
    ZT_CHECK(strcmp(job.queue, "a") == 0 && strcmp(job.state, "delayed") == 0);
    zc_queue_job_clear(&job);
    ZT_EQ(zc_queue_job(q, "nope", &job), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_MISSING);
    ZT_EQ(zc_queue_remove(q, "a", "j2"), 0);
    ZT_EQ(zc_queue_remove(q, "a", "j2"), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_MISSING);
    ZT_EQ(zc_queue_remove(q, "b", "j1"), -1); //  another queue's
    ZT_EQ(zc_queue_error(q), ZC_ERR_MISSING);
    ZT_EQ(zc_queue_remove(q, "a", "d1"), 0);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(q, "a", &stats), 0);
    ZT_EQ(stats.queued, 4);
    ZT_EQ(stats.delayed, 1);
    ZT_EQ(s_command_int("ZCARD " P "q:delayed"), 2);
    ZT_EQ(s_command_int("EXISTS " P "job:j2 " P "job:d1"), 0);
}

//  Runs `zcluster queue --redis URL --cluster qi ARGS...`, checks that a
//  line starting with expect (if any) comes and returns the exit code.
static int s_cli(const char *url, const char *expect, const char *a1, const char *a2,
                 const char *a3)
{
    zt_proc_t *cli = zt_cli_start("queue", "--redis", url, "--cluster", "qi", a1, a2, a3, NULL);
    if (!cli) return -1;
    if (expect) ZT_CHECK(zt_proc_expect(cli, expect, 10000) != NULL);
    int status = zt_proc_wait(cli, 10000);
    zt_proc_destroy(&cli);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void s_test_cli(const char *url)
{
    zt_section("zcluster queue: jobs, delayed, show, stats, working, remove");
    ZT_EQ(s_cli(url, "j1 a work queued attempt=0 failures=0 at=0 args=hi", "jobs", "a", NULL), 0);
    ZT_EQ(s_cli(url, "total=4", "jobs", "a", "1"), 0);
    ZT_EQ(s_cli(url, "d2 b later delayed", "delayed", "-", NULL), 0);
    ZT_EQ(s_cli(url, "j3 a work queued", "show", "j3", NULL), 0);
    ZT_EQ(s_cli(url, "queued=4 delayed=1", "stats", "a", NULL), 0);
    ZT_EQ(s_cli(url, "total=0", "working", NULL, NULL), 0);
    ZT_EQ(s_cli(url, "removed j5", "remove", "a", "j5"), 0);
    ZT_EQ(s_cli(url, NULL, "remove", "a", "j5"), 1);
    ZT_EQ(s_cli(url, NULL, "show", "nope", NULL), 1);
    ZT_EQ(s_cli(url, NULL, "jobs", NULL, NULL), 64);
    ZT_EQ(s_cli(url, NULL, "jobs", "a", "-1"), 64);
}

static void s_test_working(zc_queue_t *q)
{
    zt_section("what each worker runs now; a running job is not removed");
    s_enqueue(q, "c", "hold", "h1", 0, 0);
    s_enqueue(q, "c", "hold", "h2", 0, 0);
    s_enqueue(q, "c", "fail", "f1", 0, 1);
    zc_queue_worker_t *worker = zc_queue_worker_new(q, "worker-1");
    zc_queue_worker_register(worker, "hold", s_task_hold, NULL);
    zc_queue_worker_register(worker, "fail", s_task_fail, NULL);
    zc_queue_worker_add_queue(worker, "c");
    zc_queue_worker_set_concurrency(worker, 4);
    ZT_EQ(zc_queue_worker_start(worker), 0);
    zc_queue_job_t *jobs = NULL;
    size_t n = 0;
    int64_t total = 0;
    for (int64_t until = zt_now_ms() + 10000; zt_now_ms() < until; usleep(20000)) {
        zc_queue_jobs_free(&jobs, n);
        if (zc_queue_working(q, 0, 10, &jobs, &n, &total) == 0 && n == 2) break;
    }
    ZT_EQ(n, 2);
    ZT_EQ(total, 2);
    int64_t now = zc_queue_now_ms(q);
    for (size_t i = 0; i < n; i++) {
        ZT_CHECK(strcmp(jobs[i].node, "worker-1") == 0 && strcmp(jobs[i].state, "active") == 0);
        ZT_CHECK(jobs[i].at_ms > now && jobs[i].attempt == 1);
    }
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_remove(q, "c", "h1"), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_STATE);
    ZT_CHECK(strstr(zc_queue_errstr(q), "worker-1") != NULL);

    zt_section("the failed list; removing a failed job");
    for (int64_t until = zt_now_ms() + 10000; zt_now_ms() < until; usleep(20000)) {
        zc_queue_jobs_free(&jobs, n);
        if (zc_queue_jobs(q, "c", ZC_QUEUE_FAILED, 0, 10, &jobs, &n, NULL) == 0 && n == 1) break;
    }
    ZT_CHECK(n == 1 && strcmp(jobs[0].id, "f1") == 0 && strcmp(jobs[0].state, "failed") == 0);
    ZT_CHECK(n == 1 && strcmp(jobs[0].error, "always fails") == 0 && jobs[0].at_ms > 0);
    zc_queue_jobs_free(&jobs, n);
    ZT_EQ(zc_queue_remove(q, "c", "f1"), 0);
    ZT_EQ(s_command_int("LLEN " P "q:c:failed"), 0);
    s_release = 1;
    zc_queue_worker_destroy(&worker);
}

static void s_test_damage(zc_queue_t *q)
{
    zt_section("gone and damaged jobs are listed, damaged keys refused");
    s_command_int("LPUSH " P "q:g:ready gone");
    s_command_int("SET " P "job:bad garbage");
    s_command_int("LPUSH " P "q:g:ready bad");
    s_command_int("HSET " P "job:odd queue g");
    s_command_int("LPUSH " P "q:g:ready odd");
    zc_queue_job_t *jobs;
    size_t n;
    ZT_EQ(zc_queue_jobs(q, "g", ZC_QUEUE_READY, 0, 10, &jobs, &n, NULL), 0);
    ZT_CHECK(n == 3 && strcmp(jobs[0].state, "missing") == 0);
    ZT_CHECK(n == 3 && strcmp(jobs[1].state, "damaged") == 0);
    ZT_CHECK(n == 3 && strcmp(jobs[2].state, "damaged") == 0 && strcmp(jobs[2].queue, "g") == 0);
    zc_queue_jobs_free(&jobs, n);
    zc_queue_job_t job;
    ZT_EQ(zc_queue_job(q, "bad", &job), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    ZT_EQ(zc_queue_remove(q, "g", "bad"), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    ZT_EQ(zc_queue_remove(q, "g", "odd"), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    ZT_EQ(s_command_int("LLEN " P "q:g:ready"), 3);

    s_command_int("SET " P "q:h:ready notalist");
    ZT_EQ(zc_queue_jobs(q, "h", ZC_QUEUE_READY, 0, 10, &jobs, &n, NULL), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    s_command_int("RENAME " P "q:delayed " P "q:delayed-saved");
    s_command_int("SET " P "q:delayed garbage");
    ZT_EQ(zc_queue_delayed(q, "a", 0, 10, &jobs, &n, NULL), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    //  A delayed job whose delayed set is damaged: refused, nothing written.
    ZT_EQ(zc_queue_remove(q, "a", "d3"), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    ZT_EQ(s_command_int("EXISTS " P "job:d3"), 1);
    s_command_int("DEL " P "q:delayed");
    s_command_int("RENAME " P "q:delayed-saved " P "q:delayed");
    s_command_int("SET " P "q:inflight garbage");
    ZT_EQ(zc_queue_working(q, 0, 10, &jobs, &n, NULL), -1);
    ZT_EQ(zc_queue_error(q), ZC_ERR_TYPE);
    s_command_int("DEL " P "q:inflight");
    ZT_EQ(zc_queue_remove(q, "a", "d3"), 0);
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis);
    if (!redis) return zt_done();
    s_redis = redisConnectUnix(zt_redis_socket(redis));
    zc_queue_t *q = zc_queue_new(zt_redis_url(redis), "qi");
    ZT_CHECK(q && s_redis && !s_redis->err);
    s_test_lists(q);
    s_test_cli(zt_redis_url(redis));
    s_test_working(q);
    s_test_damage(q);
    zc_queue_destroy(&q);
    redisFree(s_redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
