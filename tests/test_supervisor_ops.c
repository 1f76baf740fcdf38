/*  Supervisor, operating a cluster: the admin API's view into the task
    queue (jobs, failed, delayed, working, one job, stats, remove) and the
    cache locks, against a real queue in the master's Redis; the all-ready
    event after the first start and after reloads; restart and shutdown of
    a worker given by pid; GET /metrics of a bare node and of a queue
    worker (--metrics-port) and of a master (every worker and the totals),
    parsed by a real Prometheus parser (prometheus_client, see
    tests/prom_parse.py) while messages flow, counters checked to move. */
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

static void s_all_ready_and_pids(zs_master_t *sup)
{
    zt_section("all-ready after the first start and after a reload; workers by pid");
    json_t *event = zs_wait_event(sup, 0, "all-ready", NULL, "start", 10000);
    ZT_CHECK(event && zs_int(event, "workers") == 2);
    json_decref(event);
    long long since = zs_last_seq(sup);
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "POST", "/restart/all", &body), 200);
    json_decref(body);
    event = zs_wait_event(sup, since, "all-ready", NULL, "reload", 10000);
    ZT_CHECK(event && zs_int(event, "workers") == 2);
    json_decref(event);
    //  One all-ready per reload: none came twice.
    json_t *events = zs_events(sup, since);
    int count = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) count += strcmp(zs_str(e, "event"), "all-ready") == 0;
    json_decref(events);
    ZT_EQ(count, 1);

    char id[64], target[64];
    zs_worker_id(sup, 0, id, sizeof id);
    int pid = zs_pid(sup, id);
    ZT_CHECK(pid > 0);
    since = zs_last_seq(sup);
    snprintf(target, sizeof target, "/restart/%d", pid);
    ZT_EQ(zs_call(sup, "POST", target, &body), 200);
    json_decref(body);
    ZT_EQ(zs_wait_gone(&pid, 1, 5000), 0); //  replaced (its successor may take another id)
    ZT_CHECK(zs_wait_ready(sup, 2, 10000));
    event = zs_wait_event(sup, since, "all-ready", NULL, "restart", 10000);
    ZT_CHECK(event != NULL);
    json_decref(event);
    ZT_EQ(zs_call(sup, "POST", "/restart/999999999", &body), 404);
    json_decref(body);
    zs_worker_id(sup, 1, id, sizeof id);
    snprintf(target, sizeof target, "/shutdown/%d", zs_pid(sup, id));
    ZT_EQ(zs_call(sup, "POST", target, &body), 200);
    ZT_CHECK(body && strcmp(zs_str(body, "worker"), id) == 0);
    json_decref(body);
}

static char s_scraped[1 << 17];

//  Fetches a /metrics page with curl (extra: more curl arguments) and
//  parses it with prometheus_client into s_scraped. Returns 0 if it parsed.
static int s_scrape(const char *url, const char *extra)
{
    char command[1024];
    snprintf(command, sizeof command, "curl -sf %s '%s' | /usr/bin/python3 %s/tests/prom_parse.py",
             extra, url, getenv("ZC_SOURCE_DIR"));
    return zs_shell(s_scraped, sizeof s_scraped, command);
}

//  The value of sample (NAME{LABELS}, labels sorted) in s_scraped, or -1.
static double s_sample(const char *sample)
{
    char line[512];
    snprintf(line, sizeof line, "\n%s ", sample);
    const char *at = strstr(s_scraped, line);
    if (!at && strncmp(s_scraped, line + 1, strlen(line + 1)) == 0) at = s_scraped - 1;
    return at ? atof(at + strlen(line)) : -1;
}

//  Sends count public messages from node (a `zcluster node` console).
static void s_publish(zt_proc_t *node, int count)
{
    for (int i = 0; i < count; i++)
        ZT_EQ(zt_proc_command(node, "publish tick hello"), 0);
}

static void s_bare_node_metrics(const char *url)
{
    zt_section("GET /metrics of a bare node (--metrics-port), parsed, counters moving");
    zt_proc_t *a = zt_cli_start("node", "--redis", url, "--cluster", "m1", "--id", "a",
                                "--metrics-port", "0", NULL);
    const char *line = a ? zt_proc_expect(a, "metrics ", 10000) : NULL;
    int port = line ? atoi(line + 8) : 0;
    ZT_CHECK(port > 0);
    zt_proc_t *b = zt_cli_start("node", "--redis", url, "--cluster", "m1", "--id", "b", NULL);
    ZT_CHECK(b && zt_proc_expect(b, "ready ", 10000));
    ZT_CHECK(a && zt_proc_expect(a, "added b", 10000));
    ZT_CHECK(b && zt_proc_expect(b, "added a", 10000));
    char target[128];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/metrics", port);
    const char *received = "zcluster_messages_received_total{kind=\"public\"}";
    double before = -1, after = -1;
    //  Until a snapshot taken after the peer was added.
    for (int64_t until = zt_now_ms() + 10000; zt_now_ms() < until; zs_sleep_ms(100))
        if (s_scrape(target, "") == 0 && s_sample("zcluster_peers{}") == 1) {
            before = s_sample(received);
            break;
        }
    ZT_CHECK(before >= 0);
    ZT_EQ(s_sample("zcluster_peers{}"), 1);
    ZT_EQ(s_sample("zcluster_registry_events_total{event=\"added\"}"), 1);
    ZT_CHECK(s_sample("zcluster_rpc_call_duration_seconds_count{}") >= 0);
    s_publish(b, 5);
    for (int64_t until = zt_now_ms() + 10000; after < before + 5 && zt_now_ms() < until;
         zs_sleep_ms(200))
        if (s_scrape(target, "") == 0) after = s_sample(received);
    ZT_CHECK(after >= before + 5);
    printf("bare node: received public %g -> %g\n", before, after);
    ZT_EQ(zt_proc_command(a, "call t1 b echo 2000 hi"), 0);
    ZT_CHECK(zt_proc_expect(a, "result t1 status=ok", 5000) != NULL);
    double calls = -1;
    for (int64_t until = zt_now_ms() + 5000; calls < 1 && zt_now_ms() < until; zs_sleep_ms(200))
        if (s_scrape(target, "") == 0) calls = s_sample("zcluster_rpc_calls_total{outcome=\"ok\"}");
    ZT_EQ(calls, 1);
    ZT_EQ(s_sample("zcluster_rpc_call_duration_seconds_count{}"), 1);
    ZT_EQ(s_sample("zcluster_rpc_call_duration_seconds_bucket{le=\"+Inf\"}"), 1);
    zt_proc_destroy(&b);
    zt_proc_destroy(&a);
}

static void s_worker_metrics(const char *url)
{
    zt_section("GET /metrics of a queue worker: job outcomes and run time");
    zt_proc_t *w = zt_cli_start("worker", "--redis", url, "--cluster", "m3", "--id", "w1",
                                "--metrics-port", "0", NULL);
    const char *line = w ? zt_proc_expect(w, "metrics ", 10000) : NULL;
    int port = line ? atoi(line + 8) : 0;
    ZT_CHECK(port > 0);
    for (int i = 0; i < 3; i++)
        ZT_EQ(zt_proc_command(w, "enqueue default sleep 20"), 0);
    for (int i = 0; i < 3; i++)
        ZT_CHECK(zt_proc_expect(w, "done ", 10000) != NULL);
    char target[128];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/metrics", port);
    double done = -1;
    for (int64_t until = zt_now_ms() + 10000; done < 3 && zt_now_ms() < until; zs_sleep_ms(200))
        if (s_scrape(target, "") == 0)
            done = s_sample("zcluster_jobs_total{outcome=\"succeeded\"}");
    ZT_EQ(done, 3);
    ZT_EQ(s_sample("zcluster_job_run_duration_seconds_count{}"), 3);
    ZT_CHECK(s_sample("zcluster_job_run_duration_seconds_sum{}") >= 0.055);
    ZT_EQ(s_sample("zcluster_job_run_duration_seconds_bucket{le=\"0.01\"}"), 0);
    zt_proc_destroy(&w);
}

static void s_master_metrics(const char *url)
{
    zt_section("GET /metrics of a master: every worker and the totals, moving");
    char group[4200];
    snprintf(group, sizeof group, "w:2:%s node", getenv("ZC_CLI"));
    const char *opts[] = {"--redis", url, "--group", group, "--stop-timeout", "5s", NULL};
    zs_master_t *sup = zs_start("m2", opts, NULL);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    //  The sender joins with the credentials the master made for its workers.
    char keys[300];
    snprintf(keys, sizeof keys, "%s/cluster.keys", sup->dir);
    zt_proc_t *sender = zt_cli_start("node", "--redis", url, "--cluster", "m2", "--id", "sender",
                                     "--keys", keys, NULL);
    ZT_CHECK(sender && zt_proc_expect(sender, "added m2-worker-", 10000));
    ZT_CHECK(sender && zt_proc_expect(sender, "added m2-worker-", 10000));
    char target[128], header[128];
    snprintf(target, sizeof target, "http://127.0.0.1:%d/metrics", sup->port);
    snprintf(header, sizeof header, "-H 'X-Zcluster-Key: %s'", sup->key);
    const char *total = "zcluster_messages_received_total{kind=\"public\"}";
    const char *one = "zcluster_messages_received_total{kind=\"public\",worker=\"m2-worker-1\"}";
    double before = -1, after = -1;
    //  Until both workers' snapshots show the sender as a peer.
    const char *p1 = "zcluster_peers{worker=\"m2-worker-1\"}";
    const char *p2 = "zcluster_peers{worker=\"m2-worker-2\"}";
    for (int64_t until = zt_now_ms() + 10000; zt_now_ms() < until; zs_sleep_ms(200))
        if (s_scrape(target, header) == 0 && s_sample(p1) == 2 && s_sample(p2) == 2) {
            before = s_sample(total);
            break;
        }
    ZT_CHECK(before >= 0);
    ZT_EQ(s_sample("zcluster_workers{state=\"ready\"}"), 2);
    s_publish(sender, 4); //  to both workers: 8 more in total
    for (int64_t until = zt_now_ms() + 10000; after < before + 8 && zt_now_ms() < until;
         zs_sleep_ms(200))
        if (s_scrape(target, header) == 0) after = s_sample(total);
    ZT_CHECK(after >= before + 8);
    ZT_CHECK(s_sample(one) >= 4);
    printf("master: received public (all workers) %g -> %g\n", before, after);
    s_scrape(target, ""); //  no key: curl -f fails, nothing to parse
    ZT_EQ(strlen(s_scraped), 0);
    zt_proc_destroy(&sender);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_queue = zc_queue_new(zt_redis_url(redis), CLUSTER);
    const char *opts[] = {"-n", "2", "--redis", zt_redis_url(redis), "--stop-timeout", "5s", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start(CLUSTER, opts, worker);
    ZT_CHECK(sup != NULL);
    if (sup) {
        ZT_CHECK(zs_wait_ready(sup, 2, 20000));
        s_inspect(sup, zt_redis_url(redis));
        s_all_ready_and_pids(sup);
        ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    }
    zs_destroy(&sup);
    s_bare_node_metrics(zt_redis_url(redis));
    s_worker_metrics(zt_redis_url(redis));
    s_master_metrics(zt_redis_url(redis));
    zc_queue_destroy(&s_queue);
    zt_redis_destroy(&redis);
    return zt_done();
}
