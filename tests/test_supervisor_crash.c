/*  Supervisor: what workers are told, respawn after SIGKILL, exponential
    backoff, and the sliding-window restart limit, with real worker
    processes under `zcluster start`. */
#include "test_supervisor.h"
#include "zc_redis.h"

//  Finds "key=VALUE" in a status line; returns VALUE in out.
static const char *s_status_field(const char *status, const char *key, char *out, size_t cap)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "%s=", key);
    const char *p = strstr(status, pattern);
    out[0] = 0;
    if (p) {
        p += strlen(pattern);
        snprintf(out, cap, "%.*s", (int)strcspn(p, " "), p);
    }
    return out;
}

static void s_respawn_and_environment(zt_redis_t *redis)
{
    zt_section("environment, --cluster- options, CPU pinning, respawn after SIGKILL");
    char cpu[16];
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    int first_cpu = 0;
    while (first_cpu < CPU_SETSIZE && !CPU_ISSET(first_cpu, &set))
        first_cpu++;
    snprintf(cpu, sizeof cpu, "%d", first_cpu);
    const char *opts[] = {"-n", "2",         "--redis", zt_redis_url(redis), "--cpus",
                          cpu,  "--backoff", "50",      "--cluster-verbose", "--cluster-port=7",
                          NULL};
    const char *worker[] = {NULL};
    sup_t *sup = sup_start("env", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    for (int n = 1; n <= 2; n++) {
        char id[32], value[256], expect[256];
        snprintf(id, sizeof id, "env-worker-%d", n);
        json_t *w = sup_worker(sup, id);
        ZT_CHECK(w != NULL);
        if (!w) continue;
        const char *status = sup_jstr(w, "status");
        ZT_CHECK(strcmp(s_status_field(status, "id", value, sizeof value), id) == 0);
        snprintf(expect, sizeof expect, "%d", n);
        ZT_CHECK(strcmp(s_status_field(status, "idx", value, sizeof value), expect) == 0);
        ZT_CHECK(strcmp(s_status_field(status, "cluster", value, sizeof value), "env") == 0);
        ZT_CHECK(strcmp(s_status_field(status, "group", value, sizeof value), "worker") == 0);
        snprintf(expect, sizeof expect, "%d", sup->pid);
        ZT_CHECK(strcmp(s_status_field(status, "master", value, sizeof value), expect) == 0);
        ZT_CHECK(
            strcmp(s_status_field(status, "redis", value, sizeof value), zt_redis_url(redis)) == 0);
        ZT_CHECK(strcmp(s_status_field(status, "reason", value, sizeof value), "start") == 0);
        ZT_CHECK(strcmp(s_status_field(status, "args", value, sizeof value),
                        "--cluster-verbose,--cluster-port=7") == 0);
        ZT_CHECK(strcmp(s_status_field(status, "cpu", value, sizeof value), cpu) == 0);
        ZT_EQ(sup_jint(w, "cpu"), first_cpu);
        ZT_EQ(sup_jint(w, "restarts"), 0);
        ZT_CHECK(strcmp(sup_jstr(w, "start_reason"), "start") == 0);
        json_decref(w);
    }

    long long seq = sup_last_seq(sup);
    int old_pid = sup_pid(sup, "env-worker-1");
    int other_pid = sup_pid(sup, "env-worker-2");
    int64_t killed_at = zt_now_ms();
    ZT_EQ(kill(old_pid, SIGKILL), 0);
    json_t *exit_event = sup_wait_event(sup, seq, "exit", "env-worker-1", NULL, 10000);
    ZT_CHECK(exit_event != NULL);
    ZT_CHECK(exit_event && strcmp(sup_jstr(exit_event, "reason"), "crash") == 0);
    ZT_EQ(exit_event ? sup_jint(exit_event, "signal") : 0, SIGKILL);
    json_decref(exit_event);
    json_t *ready = sup_wait_event(sup, seq, "ready", "env-worker-1", NULL, 10000);
    ZT_CHECK(ready != NULL);
    printf("respawn: SIGKILL to ready again in %lld ms\n", (long long)(zt_now_ms() - killed_at));
    json_decref(ready);
    json_t *w = sup_worker(sup, "env-worker-1");
    ZT_CHECK(w && sup_jint(w, "pid") != old_pid && sup_jint(w, "pid") > 0);
    ZT_EQ(w ? sup_jint(w, "restarts") : -1, 1);
    ZT_CHECK(w && strcmp(sup_jstr(w, "start_reason"), "crash") == 0);
    char value[64];
    ZT_CHECK(w && strcmp(s_status_field(sup_jstr(w, "status"), "reason", value, sizeof value),
                         "crash") == 0);
    ZT_CHECK(w && strcmp(s_status_field(sup_jstr(w, "status"), "restarts", value, sizeof value),
                         "1") == 0);
    json_decref(w);
    ZT_EQ(sup_pid(sup, "env-worker-2"), other_pid); //  the other worker was not touched

    //  The events were published to the cluster's Redis as well.
    zc_redis_url_t url;
    char err[256];
    zc_redis_url_parse(zt_redis_url(redis), &url, err, sizeof err);
    redisContext *rc = zc_redis_connect(&url, 2000, err, sizeof err);
    ZT_CHECK(rc != NULL);
    if (rc) {
        redisReply *reply =
            (redisReply *)redisCommand(rc, "LRANGE zc:{env}:supervisor:events 0 -1");
        int crash_seen = 0;
        for (size_t i = 0; reply && i < reply->elements; i++) {
            json_t *e = json_loads(reply->element[i]->str, 0, NULL);
            crash_seen |= e && !strcmp(sup_jstr(e, "event"), "exit") &&
                          !strcmp(sup_jstr(e, "reason"), "crash") &&
                          !strcmp(sup_jstr(e, "worker"), "env-worker-1");
            json_decref(e);
        }
        ZT_CHECK(crash_seen);
        if (reply) freeReplyObject(reply);
        redisFree(rc);
    }
    ZT_EQ(sup_stop(sup, SIGTERM, 20000), 0);
    sup_destroy(&sup);
}

static void s_backoff(zt_redis_t *redis)
{
    zt_section("exponential backoff between respawns: 200, 400, 800, 800 ms");
    const char *opts[] = {"-n",
                          "1",
                          "--redis",
                          zt_redis_url(redis),
                          "--backoff",
                          "200",
                          "--backoff-max",
                          "800",
                          "--max-restarts",
                          "20",
                          "--restart-window",
                          "60s",
                          NULL};
    const char *worker[] = {NULL};
    sup_t *sup = sup_start("backoff", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    int expected[] = {200, 400, 800, 800};
    for (int round = 0; round < 4; round++) {
        ZT_CHECK(sup_wait_ready(sup, 1, 20000));
        long long seq = sup_last_seq(sup);
        ZT_EQ(kill(sup_pid(sup, "backoff-worker-1"), SIGKILL), 0);
        json_t *exited = sup_wait_event(sup, seq, "exit", "backoff-worker-1", "crash", 10000);
        json_t *started = sup_wait_event(sup, seq, "start", "backoff-worker-1", "crash", 10000);
        ZT_CHECK(exited && started);
        if (exited && started) {
            long long delay = sup_jint(started, "time") - sup_jint(exited, "time");
            printf("backoff round %d: respawned %lld ms after the crash (nominal %d)\n", round + 1,
                   delay, expected[round]);
            ZT_CHECK(delay >= expected[round] - 5);
            ZT_CHECK(delay <= expected[round] + 1500);
        }
        json_decref(exited);
        json_decref(started);
    }
    ZT_CHECK(sup_wait_ready(sup, 1, 20000));
    json_t *w = sup_worker(sup, "backoff-worker-1");
    ZT_EQ(w ? sup_jint(w, "restarts") : -1, 4);
    json_decref(w);
    ZT_EQ(sup_stop(sup, SIGTERM, 20000), 0);
    sup_destroy(&sup);
}

static void s_sliding_window(zt_redis_t *redis)
{
    zt_section("restart limit in a sliding window: a slow crasher lives on, a fast one stops");
    //  Limit: 1 restart in any 2 s. "slow" crashes every ~2.3 s: never two
    //  restarts in one window, so it runs on however often it crashed in
    //  total (a limit counted from start would stop it at its second crash).
    //  "fast" crashes within ~100 ms of each start and is stopped.
    char slow[5000], fast[5000];
    snprintf(slow, sizeof slow, "slow:1:%s worker --crash-after 2200 1", s_self);
    snprintf(fast, sizeof fast, "fast:1:%s worker --crash-after 50 1", s_self);
    const char *opts[] = {
        "--redis", zt_redis_url(redis), "--group", slow,        "--group", fast, "--max-restarts",
        "1",       "--restart-window",  "2s",      "--backoff", "50",      NULL};
    sup_t *sup = sup_start("window", opts, NULL);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    json_t *failed = sup_wait_event(sup, 0, "group", NULL, "failed", 20000);
    ZT_CHECK(failed && strcmp(sup_jstr(failed, "group"), "fast") == 0);
    if (failed) printf("group fast stopped: %s\n", sup_jstr(failed, "text"));
    json_decref(failed);
    //  Wait for slow's third restart, still running.
    int64_t deadline = zt_now_ms() + 30000;
    long long slow_restarts = 0;
    const char *slow_state = "";
    json_t *health = NULL;
    while (zt_now_ms() < deadline && slow_restarts < 3) {
        json_decref(health);
        health = sup_get(sup, "/health");
        json_t *w = NULL;
        json_t *workers = sup_get(sup, "/workers");
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(workers, "workers"), i, item)
        {
            if (!strcmp(sup_jstr(item, "group"), "slow")) w = item;
        }
        slow_restarts = w ? sup_jint(w, "restarts") : 0;
        json_decref(workers);
        sup_sleep_ms(100);
    }
    ZT_CHECK(slow_restarts >= 3);
    json_t *groups = json_object_get(health, "groups");
    for (size_t i = 0; i < json_array_size(groups); i++) {
        json_t *g = json_array_get(groups, i);
        if (!strcmp(sup_jstr(g, "name"), "slow")) slow_state = sup_jstr(g, "state");
        if (!strcmp(sup_jstr(g, "name"), "fast"))
            ZT_CHECK(strcmp(sup_jstr(g, "state"), "failed") == 0);
    }
    ZT_CHECK(strcmp(slow_state, "running") == 0);
    ZT_CHECK(strcmp(sup_jstr(health, "status"), "degraded") == 0);
    printf("slow group: %lld restarts so far, still %s\n", slow_restarts, slow_state);
    json_decref(health);
    //  Only one restart of fast was allowed before its group was stopped.
    json_t *events = sup_events(sup, 0);
    int fast_starts = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        fast_starts +=
            !strcmp(sup_jstr(e, "event"), "start") && !strcmp(sup_jstr(e, "group"), "fast");
    }
    json_decref(events);
    ZT_EQ(fast_starts, 2);
    ZT_EQ(sup_stop(sup, SIGTERM, 20000), 3); //  a group hit its limit
    sup_destroy(&sup);

    zt_section("a crash loop ends the master by itself (exit code 3), never loops for ever");
    const char *opts2[] = {"-n",
                           "2",
                           "--redis",
                           zt_redis_url(redis),
                           "--max-restarts",
                           "3",
                           "--restart-window",
                           "10s",
                           "--backoff",
                           "20",
                           NULL};
    const char *worker[] = {"--crash-after", "0", "7", NULL};
    int64_t start = zt_now_ms();
    sup = sup_start("loop", opts2, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(sup_stop(sup, 0, 30000), 3);
    printf("crash loop stopped after %lld ms\n", (long long)(zt_now_ms() - start));
    sup_destroy(&sup);

    zt_section("a program that cannot be executed fails its group at once");
    const char *opts3[] = {"-n", "2", "--redis", zt_redis_url(redis), NULL};
    const char *argv[] = {getenv("ZC_CLI"),
                          "start",
                          "--name",
                          "noexec",
                          "--runtime-dir",
                          "/tmp/zc-test-sup-noexec",
                          "--redis",
                          zt_redis_url(redis),
                          "--",
                          "/nonexistent/program",
                          NULL};
    (void)opts3;
    zt_proc_t *proc = zt_proc_start((char *const *)argv, NULL);
    int status = proc ? zt_proc_wait(proc, 20000) : -1;
    ZT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 3);
    zt_proc_destroy(&proc);
}

int main(int argc, char **argv)
{
    sup_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_respawn_and_environment(redis);
    s_backoff(redis);
    s_sliding_window(redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
