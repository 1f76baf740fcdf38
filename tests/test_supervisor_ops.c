/*  Supervisor, operating a cluster: the admin API's view into the task
    queue (jobs, failed, delayed, working, one job, stats, remove) and the
    cache locks, against a real queue in the master's Redis. */
#include "supkit.h"

#define CLUSTER "ops"

static zc_queue_t *s_queue;

//  GETs target and returns the body (decref it), checking the status.
static json_t *s_get(zs_master_t *sup, const char *target, int status)
{
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "GET", target, &body), status);
    return body;
}

static void s_inspect(zs_master_t *sup, const char *url)
{
    zt_section("admin API: /queue and /cache/locks");
    zc_job_opts_t opts = {.id = "j1"};
    ZT_EQ(zc_queue_enqueue(s_queue, "a", "work", "\x01", 1, &opts, NULL), 0);
    opts.id = "j2";
    ZT_EQ(zc_queue_enqueue(s_queue, "a", "work", "\x02", 1, &opts, NULL), 0);
    opts.id = "d1";
    ZT_EQ(zc_queue_enqueue_in(s_queue, "a", "later", NULL, 0, 60000, &opts, NULL), 0);

    json_t *body = s_get(sup, "/queue/jobs/a?count=1", 200);
    json_t *jobs = json_object_get(body, "jobs");
    ZT_EQ(zs_int(body, "total"), 2);
    ZT_EQ(json_array_size(jobs), 1);
    json_t *job = json_array_get(jobs, 0);
    ZT_CHECK(job && strcmp(zs_str(job, "id"), "j1") == 0);
    ZT_CHECK(job && strcmp(zs_str(job, "args_hex"), "01") == 0);
    ZT_CHECK(job && strcmp(zs_str(job, "state"), "queued") == 0);
    json_decref(body);
    body = s_get(sup, "/queue/delayed", 200);
    job = json_array_get(json_object_get(body, "jobs"), 0);
    ZT_CHECK(job && strcmp(zs_str(job, "id"), "d1") == 0 && zs_int(job, "at_ms") > 0);
    json_decref(body);
    body = s_get(sup, "/queue/job/j2", 200);
    ZT_CHECK(strcmp(zs_str(json_object_get(body, "job"), "queue"), "a") == 0);
    json_decref(body);
    body = s_get(sup, "/queue/stats/a", 200);
    ZT_EQ(zs_int(json_object_get(body, "stats"), "queued"), 2);
    json_decref(body);
    json_decref(s_get(sup, "/queue/working", 200));
    json_decref(s_get(sup, "/queue/job/nope", 404));
    json_decref(s_get(sup, "/queue/jobs/a?count=0", 400));
    json_decref(s_get(sup, "/queue/bogus", 400));
    json_decref(s_get(sup, "/queue/remove/a/j1", 405));
    ZT_EQ(zs_call(sup, "POST", "/queue/remove/a/j1", &body), 200);
    json_decref(body);
    ZT_EQ(zs_call(sup, "POST", "/queue/remove/a/j1", &body), 404);
    json_decref(body);
    body = s_get(sup, "/queue/jobs/a", 200);
    ZT_EQ(zs_int(body, "total"), 1);
    json_decref(body);

    zc_cache_t *cache = zc_cache_new(url, CLUSTER, "node-7");
    ZT_EQ(zc_cache_lock(cache, "k", 30000), 0);
    body = s_get(sup, "/cache/locks", 200);
    json_t *lock = json_array_get(json_object_get(body, "locks"), 0);
    ZT_CHECK(lock && strcmp(zs_str(lock, "key"), "k") == 0);
    ZT_CHECK(lock && strcmp(zs_str(lock, "owner"), "node-7") == 0 && zs_int(lock, "ttl_ms") > 0);
    json_decref(body);
    zc_cache_destroy(&cache);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_queue = zc_queue_new(zt_redis_url(redis), CLUSTER);
    const char *opts[] = {"-n", "1", "--redis", zt_redis_url(redis), "--stop-timeout", "5s", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start(CLUSTER, opts, worker);
    ZT_CHECK(sup != NULL);
    if (sup) {
        ZT_CHECK(zs_wait_ready(sup, 1, 20000));
        s_inspect(sup, zt_redis_url(redis));
        ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    }
    zs_destroy(&sup);
    zc_queue_destroy(&s_queue);
    zt_redis_destroy(&redis);
    return zt_done();
}
