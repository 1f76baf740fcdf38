/*  Supervisor: what workers are told, respawn after SIGKILL, exponential
    backoff, and the sliding-window restart limit, with real worker
    processes under `zcluster start`. */
#include "supkit.h"

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

//  What each worker was told.
static void s_environment(zs_master_t *sup, zt_redis_t *redis, int first_cpu)
{
    char cpu[16];
    snprintf(cpu, sizeof cpu, "%d", first_cpu);
    for (int n = 1; n <= 2; n++) {
        char id[32], value[256], expect[256];
        snprintf(id, sizeof id, "env-worker-%d", n);
        json_t *w = zs_worker(sup, id);
        ZT_CHECK(w != NULL);
        if (!w) continue;
        const char *status = zs_str(w, "status");
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
        ZT_EQ(zs_int(w, "cpu"), first_cpu);
        ZT_EQ(zs_int(w, "restarts"), 0);
        ZT_CHECK(strcmp(zs_str(w, "start_reason"), "start") == 0);
        json_decref(w);
    }
}

//  A worker killed by SIGKILL comes back with the same id; the other stays.
static void s_respawn(zs_master_t *sup, zt_redis_t *redis)
{
    long long seq = zs_last_seq(sup);
    int old_pid = zs_pid(sup, "env-worker-1");
    int other_pid = zs_pid(sup, "env-worker-2");
    int64_t killed_at = zt_now_ms();
    ZT_EQ(kill(old_pid, SIGKILL), 0);
    json_t *exit_event = zs_wait_event(sup, seq, "exit", "env-worker-1", NULL, 10000);
    ZT_CHECK(exit_event != NULL);
    ZT_CHECK(exit_event && strcmp(zs_str(exit_event, "reason"), "crash") == 0);
    ZT_EQ(exit_event ? zs_int(exit_event, "signal") : 0, SIGKILL);
    json_decref(exit_event);
    json_t *ready = zs_wait_event(sup, seq, "ready", "env-worker-1", NULL, 10000);
    ZT_CHECK(ready != NULL);
    printf("respawn: SIGKILL to ready again in %lld ms\n", (long long)(zt_now_ms() - killed_at));
    json_decref(ready);
    json_t *w = zs_worker(sup, "env-worker-1");
    ZT_CHECK(w && zs_int(w, "pid") != old_pid && zs_int(w, "pid") > 0);
    ZT_EQ(w ? zs_int(w, "restarts") : -1, 1);
    ZT_CHECK(w && strcmp(zs_str(w, "start_reason"), "crash") == 0);
    char value[64];
    ZT_CHECK(w && strcmp(s_status_field(zs_str(w, "status"), "reason", value, sizeof value),
                         "crash") == 0);
    ZT_CHECK(w && strcmp(s_status_field(zs_str(w, "status"), "restarts", value, sizeof value),
                         "1") == 0);
    json_decref(w);
    ZT_EQ(zs_pid(sup, "env-worker-2"), other_pid); //  the other worker was not touched

    //  The events were published to the cluster's Redis as well.
    json_t *events = zs_redis_events(zt_redis_url(redis), "env");
    int crash_seen = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        crash_seen |= !strcmp(zs_str(e, "event"), "exit") &&
                      !strcmp(zs_str(e, "reason"), "crash") &&
                      !strcmp(zs_str(e, "worker"), "env-worker-1");
    }
    json_decref(events);
    ZT_CHECK(crash_seen);
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
    zs_master_t *sup = zs_start("env", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    s_environment(sup, redis, first_cpu);
    s_respawn(sup, redis);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
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
    zs_master_t *sup = zs_start("backoff", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    int expected[] = {200, 400, 800, 800};
    for (int round = 0; round < 4; round++) {
        ZT_CHECK(zs_wait_ready(sup, 1, 20000));
        long long seq = zs_last_seq(sup);
        ZT_EQ(kill(zs_pid(sup, "backoff-worker-1"), SIGKILL), 0);
        json_t *exited = zs_wait_event(sup, seq, "exit", "backoff-worker-1", "crash", 10000);
        json_t *started = zs_wait_event(sup, seq, "start", "backoff-worker-1", "crash", 10000);
        ZT_CHECK(exited && started);
        if (exited && started) {
            long long delay = zs_int(started, "time") - zs_int(exited, "time");
            printf("backoff round %d: respawned %lld ms after the crash (nominal %d)\n", round + 1,
                   delay, expected[round]);
            ZT_CHECK(delay >= expected[round] - 5);
            ZT_CHECK(delay <= expected[round] + 1500);
        }
        json_decref(exited);
        json_decref(started);
    }
    ZT_CHECK(zs_wait_ready(sup, 1, 20000));
    json_t *w = zs_worker(sup, "backoff-worker-1");
    ZT_EQ(w ? zs_int(w, "restarts") : -1, 4);
    json_decref(w);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
}

//  Waits until group's worker was restarted count times; returns how often
//  it was, with the health seen then in *health (the caller decrefs it).
static long long s_wait_restarts(zs_master_t *sup, const char *group, long long count,
                                 int timeout_ms, json_t **health)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    long long restarts = 0;
    *health = NULL;
    while (zt_now_ms() < deadline && restarts < count) {
        json_decref(*health);
        *health = zs_get(sup, "/health");
        json_t *workers = zs_get(sup, "/workers");
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(workers, "workers"), i, item)
        {
            if (!strcmp(zs_str(item, "group"), group)) restarts = zs_int(item, "restarts");
        }
        json_decref(workers);
        zs_sleep_ms(100);
    }
    return restarts;
}

static void s_sliding_window(zt_redis_t *redis)
{
    zt_section("restart limit in a sliding window: a slow crasher lives on, a fast one stops");
    //  Limit: 1 restart in any 2 s. "slow" crashes every ~2.3 s: never two
    //  restarts in one window, so it runs on however often it crashed in
    //  total (a limit counted from start would stop it at its second crash).
    //  "fast" crashes within ~100 ms of each start and is stopped.
    char slow[5000], fast[5000];
    snprintf(slow, sizeof slow, "slow:1:%s worker --crash-after 2200 1", zs_self);
    snprintf(fast, sizeof fast, "fast:1:%s worker --crash-after 50 1", zs_self);
    const char *opts[] = {
        "--redis", zt_redis_url(redis), "--group", slow,        "--group", fast, "--max-restarts",
        "1",       "--restart-window",  "2s",      "--backoff", "50",      NULL};
    zs_master_t *sup = zs_start("window", opts, NULL);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    json_t *failed = zs_wait_event(sup, 0, "group", NULL, "failed", 20000);
    ZT_CHECK(failed && strcmp(zs_str(failed, "group"), "fast") == 0);
    if (failed) printf("group fast stopped: %s\n", zs_str(failed, "text"));
    json_decref(failed);
    //  Wait for slow's third restart, still running.
    json_t *health = NULL;
    long long slow_restarts = s_wait_restarts(sup, "slow", 3, 30000, &health);
    const char *slow_state = "";
    ZT_CHECK(slow_restarts >= 3);
    json_t *groups = json_object_get(health, "groups");
    for (size_t i = 0; i < json_array_size(groups); i++) {
        json_t *g = json_array_get(groups, i);
        if (!strcmp(zs_str(g, "name"), "slow")) slow_state = zs_str(g, "state");
        if (!strcmp(zs_str(g, "name"), "fast")) ZT_CHECK(strcmp(zs_str(g, "state"), "failed") == 0);
    }
    ZT_CHECK(strcmp(slow_state, "running") == 0);
    ZT_CHECK(strcmp(zs_str(health, "status"), "degraded") == 0);
    printf("slow group: %lld restarts so far, still %s\n", slow_restarts, slow_state);
    json_decref(health);
    //  Only one restart of fast was allowed before its group was stopped.
    json_t *events = zs_events(sup, 0);
    int fast_starts = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        fast_starts += !strcmp(zs_str(e, "event"), "start") && !strcmp(zs_str(e, "group"), "fast");
    }
    json_decref(events);
    ZT_EQ(fast_starts, 2);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 3); //  a group hit its limit
    zs_destroy(&sup);
}

static void s_crash_loop(zt_redis_t *redis)
{
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
    zs_master_t *sup = zs_start("loop", opts2, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(zs_stop(sup, 0, 30000), 3);
    printf("crash loop stopped after %lld ms\n", (long long)(zt_now_ms() - start));
    zs_destroy(&sup);

    zt_section("a program that cannot be executed fails its group at once");
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
    zt_proc_t *proc = zt_proc_start((char *const *)argv, NULL);
    int status = proc ? zt_proc_wait(proc, 20000) : -1;
    ZT_CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 3);
    zt_proc_destroy(&proc);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_respawn_and_environment(redis);
    s_backoff(redis);
    s_sliding_window(redis);
    s_crash_loop(redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
