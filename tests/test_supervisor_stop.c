/*  Supervisor: graceful shutdown on SIGTERM/SIGINT, the stop timeout and
    SIGKILL, a second signal, and the exit code saying how it went. The
    events of a master that is gone are read back from Redis. */
#include "test_supervisor.h"
#include "zc_redis.h"

//  The events of cluster name from Redis, oldest first (the caller decrefs).
static json_t *s_redis_events(zt_redis_t *redis, const char *name)
{
    json_t *events = json_array();
    zc_redis_url_t url;
    char err[256];
    zc_redis_url_parse(zt_redis_url(redis), &url, err, sizeof err);
    redisContext *rc = zc_redis_connect(&url, 2000, err, sizeof err);
    if (!rc) return events;
    redisReply *reply =
        (redisReply *)redisCommand(rc, "LRANGE zc:{%s}:supervisor:events 0 -1", name);
    for (size_t i = reply ? reply->elements : 0; i > 0; i--) {
        json_t *e = json_loads(reply->element[i - 1]->str, 0, NULL);
        if (e) json_array_append_new(events, e);
    }
    if (reply) freeReplyObject(reply);
    redisFree(rc);
    return events;
}

//  The exit event of worker in events, or NULL (borrowed).
static json_t *s_exit_of(json_t *events, const char *worker)
{
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        if (!strcmp(sup_jstr(e, "event"), "exit") && !strcmp(sup_jstr(e, "worker"), worker))
            return e;
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
    sup_t *sup = sup_start(name, opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    int64_t start = zt_now_ms();
    ZT_EQ(sup_stop(sup, sig, 20000), 0);
    int64_t took = zt_now_ms() - start;
    printf("%s: stopped in %lld ms (workers take 300 ms to finish)\n", name, (long long)took);
    ZT_CHECK(took >= 300);
    ZT_CHECK(took < 5000);
    json_t *events = s_redis_events(redis, name);
    for (int n = 1; n <= 2; n++) {
        char id[64];
        snprintf(id, sizeof id, "%s-worker-%d", name, n);
        json_t *e = s_exit_of(events, id);
        ZT_CHECK(e && !strcmp(sup_jstr(e, "reason"), "shutdown"));
        ZT_EQ(e ? sup_jint(e, "code") : -1, 0);
        ZT_EQ(e ? sup_jint(e, "signal") : -1, 0);
    }
    json_decref(events);
    struct stat st;
    ZT_CHECK(stat(sup->dir, &st) != 0); //  the runtime dir is cleaned up
    sup_destroy(&sup);
}

static void s_stop_timeout(zt_redis_t *redis)
{
    zt_section("a worker that ignores SIGTERM is killed after the stop timeout, exit code 2");
    char polite[5000], stubborn[5000];
    snprintf(polite, sizeof polite, "polite:1:%s worker", s_self);
    snprintf(stubborn, sizeof stubborn, "stubborn:1:%s worker --ignore-term", s_self);
    const char *opts[] = {"--redis", zt_redis_url(redis), "--group", polite, "--group",
                          stubborn,  "--stop-timeout",    "700ms",   NULL};
    sup_t *sup = sup_start("timeout", opts, NULL);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    int64_t start = zt_now_ms();
    ZT_EQ(sup_stop(sup, SIGTERM, 20000), 2);
    int64_t took = zt_now_ms() - start;
    printf("stop timeout 700 ms: the master exited after %lld ms\n", (long long)took);
    ZT_CHECK(took >= 700);
    ZT_CHECK(took < 5000);
    json_t *events = s_redis_events(redis, "timeout");
    json_t *p = s_exit_of(events, "timeout-worker-1"), *s = s_exit_of(events, "timeout-worker-2");
    ZT_CHECK(p && !strcmp(sup_jstr(p, "reason"), "shutdown") && sup_jint(p, "signal") == 0);
    ZT_CHECK(s && !strcmp(sup_jstr(s, "reason"), "shutdown"));
    ZT_EQ(s ? sup_jint(s, "signal") : 0, SIGKILL);
    ZT_CHECK(s && sup_jint(s, "time") - sup_jint(p, "time") >= 600);
    json_decref(events);
    sup_destroy(&sup);

    zt_section("a second SIGTERM kills at once");
    const char *opts2[] = {"-n",  "2", "--redis", zt_redis_url(redis), "--stop-timeout",
                           "60s", NULL};
    const char *worker[] = {"--ignore-term", NULL};
    sup = sup_start("second", opts2, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    start = zt_now_ms();
    zt_proc_signal(sup->proc, SIGTERM);
    ZT_EQ(sup_stop(sup, 0, 300), -1); //  still waiting for the workers
    ZT_EQ(sup_stop(sup, SIGTERM, 10000), 2);
    took = zt_now_ms() - start;
    printf("second SIGTERM: the master exited after %lld ms (stop timeout 60 s)\n",
           (long long)took);
    ZT_CHECK(took < 10000);
    sup_destroy(&sup);
}

//  1 if pid runs (a zombie does not: its parent may not be there to reap it).
static int s_alive(int pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

static void s_orphans(zt_redis_t *redis)
{
    zt_section("workers get SIGTERM when their master is SIGKILLed");
    const char *opts[] = {"-n", "2", "--redis", zt_redis_url(redis), NULL};
    const char *worker[] = {NULL};
    sup_t *sup = sup_start("orphans", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    int pids[2] = {sup_pid(sup, "orphans-worker-1"), sup_pid(sup, "orphans-worker-2")};
    ZT_EQ(sup_stop(sup, SIGKILL, 10000), 128 + SIGKILL);
    int64_t deadline = zt_now_ms() + 10000;
    int alive = 2;
    while (alive && zt_now_ms() < deadline) {
        alive = (pids[0] > 0 && s_alive(pids[0])) + (pids[1] > 0 && s_alive(pids[1]));
        sup_sleep_ms(20);
    }
    ZT_EQ(alive, 0);
    sup_destroy(&sup);
}

static void s_transient_and_ready_after(zt_redis_t *redis)
{
    zt_section("--transient: workers that exit 0 are done; the master exits 0 when all are");
    const char *opts[] = {
        "-n",        "3",  "--redis", zt_redis_url(redis), "--transient", "--group-name", "batch",
        "--backoff", "20", NULL};
    const char *worker[] = {"--crash-after", "200", "0", NULL};
    sup_t *sup = sup_start("batch", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(sup_stop(sup, 0, 20000), 0);
    json_t *events = s_redis_events(redis, "batch");
    int done = 0, starts = 0;
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        done += !strcmp(sup_jstr(e, "event"), "exit") && !strcmp(sup_jstr(e, "reason"), "done") &&
                !strcmp(sup_jstr(e, "group"), "batch");
        starts += !strcmp(sup_jstr(e, "event"), "start");
    }
    json_decref(events);
    ZT_EQ(done, 3);
    ZT_EQ(starts, 3);
    sup_destroy(&sup);

    zt_section("--transient still respawns a worker that fails");
    const char *worker2[] = {"--crash-after", "100", "1", NULL};
    const char *opts2[] = {
        "-n",        "1",  "--redis", zt_redis_url(redis), "--transient", "--max-restarts", "2",
        "--backoff", "20", NULL};
    sup = sup_start("batch2", opts2, worker2);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_EQ(sup_stop(sup, 0, 20000), 3);
    sup_destroy(&sup);

    zt_section(
        "--ready-after: a program that never signals counts as ready once it lived that long");
    const char *opts3[] = {
        "-n", "2", "--redis", zt_redis_url(redis), "--ready-after", "300ms", "--ready-timeout",
        "5s", NULL};
    const char *worker3[] = {"--never-ready", NULL};
    sup = sup_start("after", opts3, worker3);
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(sup_wait_ready(sup, 2, 20000));
    json_t *w = sup_worker(sup, "after-worker-1");
    ZT_CHECK(w && sup_jint(w, "ready_ms") >= 300);
    json_decref(w);
    ZT_EQ(sup_stop(sup, SIGTERM, 20000), 0);
    sup_destroy(&sup);
}

int main(int argc, char **argv)
{
    sup_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (!redis) return zt_done();
    s_clean_stop(redis, SIGTERM);
    s_clean_stop(redis, SIGINT);
    s_stop_timeout(redis);
    s_orphans(redis);
    s_transient_and_ready_after(redis);
    zt_redis_destroy(&redis);
    return zt_done();
}
