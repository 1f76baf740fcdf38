/*  Supervisor: graceful shutdown on SIGTERM/SIGINT, the stop timeout and
    SIGKILL, a second signal, and the exit code saying how it went. The
    events of a master that is gone are read back from Redis. */
#include "supkit.h"

//  The exit event of worker in events, or NULL (borrowed).
static json_t *s_exit_of(json_t *events, const char *worker)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!strcmp(zs_str(e, "event"), "exit") && !strcmp(zs_str(e, "worker"), worker)) return e;
    }
    return NULL;
}

static void s_clean_stop(zt_redis_t *redis, int sig)
{
    zt_section(sig == SIGINT ? "SIGINT: workers finish within the timeout, exit code 0"
                             : "SIGTERM: workers finish within the timeout, exit code 0");
    const char *name = sig == SIGINT ? "clean-int" : "clean-term";
    const char *opts[] = {"-n", "2", "--redis", zt_redis_url(redis), "--stop-timeout", "5s", NULL};
    const char *worker[] = {"--term-delay", "300", NULL};
    zs_master_t *sup = zs_start(name, opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    int64_t start = zt_now_ms();
    ZT_EQ(zs_stop(sup, sig, 20000), 0);
    int64_t took = zt_now_ms() - start;
    printf("%s: stopped in %lld ms (workers take 300 ms to finish)\n", name, (long long)took);
    ZT_CHECK(took >= 300);
    ZT_CHECK(took < 5000);
    json_t *events = zs_redis_events(zt_redis_url(redis), name);
    for (int n = 1; n <= 2; n++) {
        char id[64];
        snprintf(id, sizeof id, "%s-worker-%d", name, n);
        json_t *e = s_exit_of(events, id);
        ZT_CHECK(e && !strcmp(zs_str(e, "reason"), "shutdown"));
        ZT_EQ(e ? zs_int(e, "code") : -1, 0);
        ZT_EQ(e ? zs_int(e, "signal") : -1, 0);
    }
    json_decref(events);
    struct stat st;
    ZT_CHECK(stat(sup->dir, &st) != 0); //  the runtime dir is cleaned up
    zs_destroy(&sup);
}

static void s_stop_timeout(zt_redis_t *redis)
{
    zt_section("a worker that ignores SIGTERM is killed after the stop timeout, exit code 2");
    char polite[5000], stubborn[5000];
    snprintf(polite, sizeof polite, "polite:1:%s worker", zs_self);
    snprintf(stubborn, sizeof stubborn, "stubborn:1:%s worker --ignore-term", zs_self);
    const char *opts[] = {"--redis", zt_redis_url(redis), "--group", polite, "--group",
                          stubborn,  "--stop-timeout",    "700ms",   NULL};
    zs_master_t *sup = zs_start("timeout", opts, NULL);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    int64_t start = zt_now_ms();
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 2);
    int64_t took = zt_now_ms() - start;
    printf("stop timeout 700 ms: the master exited after %lld ms\n", (long long)took);
    ZT_CHECK(took >= 700);
    ZT_CHECK(took < 5000);
    json_t *events = zs_redis_events(zt_redis_url(redis), "timeout");
    json_t *p = s_exit_of(events, "timeout-worker-1"), *s = s_exit_of(events, "timeout-worker-2");
    ZT_CHECK(p && !strcmp(zs_str(p, "reason"), "shutdown") && zs_int(p, "signal") == 0);
    ZT_CHECK(s && !strcmp(zs_str(s, "reason"), "shutdown"));
    ZT_EQ(s ? zs_int(s, "signal") : 0, SIGKILL);
    ZT_CHECK(s && zs_int(s, "time") - zs_int(p, "time") >= 600);
    json_decref(events);
    zs_destroy(&sup);

    zt_section("a second SIGTERM kills at once");
    const char *opts2[] = {"-n",  "2", "--redis", zt_redis_url(redis), "--stop-timeout",
                           "60s", NULL};
    const char *worker[] = {"--ignore-term", NULL};
    sup = zs_start("second", opts2, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    start = zt_now_ms();
    zt_proc_signal(sup->proc, SIGTERM);
    ZT_EQ(zs_stop(sup, 0, 300), -1); //  still waiting for the workers
    ZT_EQ(zs_stop(sup, SIGTERM, 10000), 2);
    took = zt_now_ms() - start;
    printf("second SIGTERM: the master exited after %lld ms (stop timeout 60 s)\n",
           (long long)took);
    ZT_CHECK(took < 10000);
    zs_destroy(&sup);
}

static void s_orphans(void)
{
    zt_section("workers and the embedded Redis get SIGTERM when their master is SIGKILLed");
    unsetenv("ZC_REDIS_URL"); //  the embedded default
    const char *opts[] = {"-n", "2", NULL};
    const char *worker[] = {NULL};
    zs_master_t *sup = zs_start("orphans", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    json_t *health = zs_get(sup, "/health");
    int pids[3] = {zs_pid(sup, "orphans-worker-1"), zs_pid(sup, "orphans-worker-2"),
                   (int)zs_int(json_object_get(health, "redis"), "pid")};
    json_decref(health);
    ZT_CHECK(pids[0] > 0 && pids[1] > 0 && pids[2] > 0);
    int64_t start = zt_now_ms();
    ZT_EQ(zs_stop(sup, SIGKILL, 10000), 128 + SIGKILL);
    int left = zs_wait_gone(pids, 3, 3000);
    ZT_EQ(left, 0);
    if (left == 0)
        printf("master SIGKILLed: its 2 workers and its redis-server were gone after %lld ms\n",
               (long long)(zt_now_ms() - start));
    for (int i = 0; i < 3 && left; i++)
        if (pids[i] > 0 && zs_alive(pids[i])) kill(pids[i], SIGKILL); //  leave nothing behind
    zs_destroy(&sup);
}

static void s_transient_and_ready_after(zt_redis_t *redis)
{
    zt_section("--transient: workers that exit 0 are done; the master exits 0 when all are");
    const char *opts[] = {
        "-n",        "3",  "--redis", zt_redis_url(redis), "--transient", "--group-name", "batch",
        "--backoff", "20", NULL};
    const char *worker[] = {"--crash-after", "200", "0", NULL};
    zs_master_t *sup = zs_start("batch", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(zs_stop(sup, 0, 20000), 0);
    json_t *events = zs_redis_events(zt_redis_url(redis), "batch");
    int done = 0, starts = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        done += !strcmp(zs_str(e, "event"), "exit") && !strcmp(zs_str(e, "reason"), "done") &&
                !strcmp(zs_str(e, "group"), "batch");
        starts += !strcmp(zs_str(e, "event"), "start");
    }
    json_decref(events);
    ZT_EQ(done, 3);
    ZT_EQ(starts, 3);
    zs_destroy(&sup);

    zt_section("--transient still respawns a worker that fails");
    const char *worker2[] = {"--crash-after", "100", "1", NULL};
    const char *opts2[] = {
        "-n",        "1",  "--redis", zt_redis_url(redis), "--transient", "--max-restarts", "2",
        "--backoff", "20", NULL};
    sup = zs_start("batch2", opts2, worker2);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(zs_stop(sup, 0, 20000), 3);
    zs_destroy(&sup);

    zt_section(
        "--ready-after: a program that never signals counts as ready once it lived that long");
    const char *opts3[] = {
        "-n", "2", "--redis", zt_redis_url(redis), "--ready-after", "300ms", "--ready-timeout",
        "5s", NULL};
    const char *worker3[] = {"--never-ready", NULL};
    sup = zs_start("after", opts3, worker3);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    json_t *w = zs_worker(sup, "after-worker-1");
    ZT_CHECK(w && zs_int(w, "ready_ms") >= 300);
    json_decref(w);
    ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
    zs_destroy(&sup);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_clean_stop(redis, SIGTERM);
    s_clean_stop(redis, SIGINT);
    s_stop_timeout(redis);
    s_orphans();
    s_transient_and_ready_after(redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
