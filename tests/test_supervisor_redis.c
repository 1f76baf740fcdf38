/*  Supervisor: the embedded default. With no Redis URL the master starts a
    private redis-server on a unix socket in its runtime directory, hands
    its URL to the workers (here cluster nodes that register there under
    their ZC_NODE_ID), restarts it when it dies, and stops it after the
    last worker. */
#include "supkit.h"

//  The members of zc:{name}:nodes, as "id1 id2 ..." sorted, in out.
static void s_registry(const char *url, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    redisReply *reply = zs_redis(url, "SORT zc:{%s}:nodes ALPHA", name);
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        strncat(out, i ? " " : "", cap - strlen(out) - 1);
        strncat(out, reply->element[i]->str, cap - strlen(out) - 1);
    }
    if (reply) freeReplyObject(reply);
}

static int s_wait_registry(const char *url, const char *name, const char *want, int timeout_ms)
{
    char members[1024];
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        s_registry(url, name, members, sizeof members);
        if (strcmp(members, want) == 0) return 1;
        zs_sleep_ms(50);
    }
    fprintf(stderr, "  registry: '%s', expected '%s'\n", members, want);
    return 0;
}

//  Reads the master's `event ...` lines until it exits; returns them.
static char *s_read_events(zt_proc_t *proc, int timeout_ms)
{
    size_t cap = 1 << 20, used = 0;
    char *all = (char *)calloc(1, cap);
    const char *line;
    while ((line = zt_proc_expect(proc, "event ", timeout_ms)) != NULL) {
        int n = snprintf(all + used, cap - used, "%s\n", line);
        if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
    }
    return all;
}

//  A Redis URL's password never shows: not on the master's first line, in
//  its events (also published to Redis), in GET /health or in admin.json.
//  The Redis is unreachable on purpose: nothing here needs it.
static void s_password_hidden(void)
{
    zt_section("a Redis URL's password shows nowhere");
    const char *secret = "pw-Zq81x";
    //  Given through the environment: on a command line, ps would show it.
    const char *opts[] = {"-n", "1", "--print-events", NULL};
    const char *worker[] = {NULL};
    setenv("ZC_REDIS_URL", "redis://:pw-Zq81x@127.0.0.1:1/2", 1);
    zs_master_t *sup = zs_start("hidden", opts, worker);
    unsetenv("ZC_REDIS_URL");
    ZT_CHECK(sup != NULL);
    if (!sup) return;
    ZT_CHECK(strstr(sup->first_line, "redis=redis://***@127.0.0.1:1/2") != NULL);
    ZT_CHECK(strstr(sup->first_line, secret) == NULL);
    json_t *health = zs_get(sup, "/health");
    char *text = health ? json_dumps(health, 0) : NULL;
    ZT_CHECK(text && strstr(text, "redis://***@127.0.0.1:1/2") && !strstr(text, secret));
    free(text);
    json_decref(health);
    char path[256], file[4096] = "";
    snprintf(path, sizeof path, "%s/admin.json", sup->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        file[fread(file, 1, sizeof file - 1, f)] = 0;
        fclose(f);
    }
    ZT_CHECK(strstr(file, "redis://***@127.0.0.1:1/2") && !strstr(file, secret));
    zt_proc_signal(sup->proc, SIGTERM);
    char *events = s_read_events(sup->proc, 20000);
    ZT_CHECK(strstr(events, "event master - started") && !strstr(events, secret));
    free(events);
    zs_stop(sup, 0, 20000);
    zs_destroy(&sup);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_section("no Redis URL: a private redis-server, and workers that register in it");
    unsetenv("ZC_REDIS_URL");
    const char *opts[] = {"-n", "2", "--print-events", "--stop-timeout", "5s", NULL};
    const char *worker[] = {"--node", NULL};
    zs_master_t *sup = zs_start("embedded", opts, worker);
    ZT_CHECK(sup != NULL);
    if (!sup) return zt_done();
    ZT_CHECK(zs_wait_ready(sup, 2, 20000));
    json_t *health = zs_get(sup, "/health");
    json_t *redis = json_object_get(health, "redis");
    char url[512], expected[512];
    snprintf(url, sizeof url, "%s", zs_str(redis, "url"));
    snprintf(expected, sizeof expected, "unix://%s/redis.sock", sup->dir);
    ZT_CHECK(strcmp(url, expected) == 0);
    ZT_CHECK(json_is_true(json_object_get(redis, "embedded")));
    int redis_pid = (int)zs_int(redis, "pid");
    ZT_CHECK(redis_pid > 0);
    json_decref(health);
    struct stat st;
    char socket_path[512];
    snprintf(socket_path, sizeof socket_path, "%s/redis.sock", sup->dir);
    ZT_CHECK(stat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode));
    //  The workers got the URL and registered under the ids the master gave.
    ZT_CHECK(s_wait_registry(url, "embedded", "embedded-worker-1 embedded-worker-2", 10000));
    json_t *w = zs_worker(sup, "embedded-worker-1");
    ZT_CHECK(w && strstr(zs_str(w, "status"), expected));
    json_decref(w);

    zt_section("the embedded Redis dies: the master restarts it, the workers re-register");
    long long seq = zs_last_seq(sup);
    ZT_EQ(kill(redis_pid, SIGKILL), 0);
    json_t *started = zs_wait_event(sup, seq, "redis", NULL, "started", 10000);
    ZT_CHECK(started && zs_int(started, "pid") > 0 && zs_int(started, "pid") != redis_pid);
    json_decref(started);
    int64_t restarted = zt_now_ms();
    ZT_CHECK(s_wait_registry(url, "embedded", "embedded-worker-1 embedded-worker-2", 15000));
    printf("workers registered again %lld ms after the embedded Redis came back\n",
           (long long)(zt_now_ms() - restarted));
    ZT_EQ(zs_ready_count(sup), 2);

    zt_section("shutdown: workers first, the embedded Redis last, nothing left behind");
    zt_proc_signal(sup->proc, SIGTERM);
    char *events = s_read_events(sup->proc, 20000);
    ZT_EQ(zs_stop(sup, 0, 20000), 0);
    const char *exit1 = strstr(events, "event exit embedded-worker-1 shutdown");
    const char *exit2 = strstr(events, "event exit embedded-worker-2 shutdown");
    const char *stopping = strstr(events, "event master - stopping");
    const char *redis_exit = stopping ? strstr(stopping, "event redis - stopped") : NULL;
    ZT_CHECK(exit1 && exit2 && redis_exit);
    ZT_CHECK(redis_exit > exit1 && redis_exit > exit2);
    ZT_CHECK(strstr(events, "event master - stopped") > redis_exit);
    free(events);
    ZT_CHECK(stat(socket_path, &st) != 0);
    ZT_CHECK(stat(sup->dir, &st) != 0);
    ZT_CHECK(kill(redis_pid, 0) != 0);
    zs_destroy(&sup);
    s_password_hidden();
    return zt_done();
}
