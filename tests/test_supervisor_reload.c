/*  Supervisor: rolling reload gated on readiness (never fewer than N-1
    workers ready; in fact never fewer than N), aborted reloads that keep
    the old workers (replacement crashes, replacement never ready), restart
    of one worker, and upgrade to a new program. */
#include "supkit.h"

#define WORKERS 3

static char s_flags[64]; //  directory of the files that switch new workers' behaviour

static void s_flag(const char *name, int on)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_flags, name);
    if (on) {
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
    } else
        unlink(path);
}

//  The pids of every worker, sorted, into pids; returns the count.
static int s_pids(zs_master_t *sup, int *pids, int max)
{
    int n = zs_pids(sup, pids, max);
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (pids[b] < pids[a]) {
                int t = pids[a];
                pids[a] = pids[b];
                pids[b] = t;
            }
    return n;
}

static int s_same_pids(const int *a, const int *b, int n)
{
    return memcmp(a, b, sizeof(int) * (size_t)n) == 0;
}

//  1 if every worker's status has tag=TAG.
static int s_all_tagged(zs_master_t *sup, const char *tag)
{
    char want[64];
    snprintf(want, sizeof want, "tag=%s ", tag);
    json_t *reply = zs_get(sup, "/workers");
    int all = reply != NULL;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "workers"), i, w)
    {
        all &= strncmp(zs_str(w, "status"), want, strlen(want)) == 0;
    }
    json_decref(reply);
    return all;
}

static void s_encode(char *out, size_t cap, const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 4 < cap; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
    }
    out[n] = 0;
}

//  POST /upgrade with these program arguments; returns the status.
static int s_upgrade(zs_master_t *sup, const char *const *args, json_t **body)
{
    char target[8192] = "/upgrade?wait=1";
    for (int i = 0; args[i]; i++) {
        char arg[4096];
        s_encode(arg, sizeof arg, args[i]);
        strncat(target, "&arg=", sizeof target - strlen(target) - 1);
        strncat(target, arg, sizeof target - strlen(target) - 1);
    }
    return zs_call(sup, "POST", target, body);
}

//  The timeline after seq: start(reload) -> ready(new) -> exit(old), once per worker.
static void s_check_timeline(zs_master_t *sup, long long seq)
{
    json_t *events = zs_events(sup, seq);
    const char *fresh = NULL;
    int gate_open = 0, exits = 0, ordered = 1;
    long long base = zs_int(json_array_get(events, 0), "time");
    size_t i;
    json_t *e;
    printf("timeline (ms after the reload started):\n");
    json_array_foreach(events, i, e)
    {
        const char *type = zs_str(e, "event"), *worker = zs_str(e, "worker");
        if (!strcmp(type, "start") || !strcmp(type, "ready") || !strcmp(type, "exit"))
            printf("  %6lld  %-5s %s%s%s\n", zs_int(e, "time") - base, type, worker,
                   *zs_str(e, "reason") ? " " : "", zs_str(e, "reason"));
        if (!strcmp(type, "start")) {
            ordered &= !strcmp(zs_str(e, "reason"), "reload") && fresh == NULL;
            fresh = worker;
            gate_open = 0;
        } else if (!strcmp(type, "ready") && fresh && !strcmp(worker, fresh))
            gate_open = 1;
        else if (!strcmp(type, "exit")) {
            ordered &= gate_open && !strcmp(zs_str(e, "reason"), "reload");
            exits++;
            fresh = NULL;
            gate_open = 0;
        }
    }
    json_decref(events);
    ZT_CHECK(ordered);
    ZT_EQ(exits, WORKERS);
}

static void s_rolling_reload(zs_master_t *sup)
{
    zt_section("SIGHUP: rolling reload, each replacement ready before its predecessor stops");
    int before[WORKERS + 1], after[WORKERS + 1];
    ZT_EQ(s_pids(sup, before, WORKERS + 1), WORKERS);
    long long seq = zs_last_seq(sup);
    int64_t start = zt_now_ms();
    zt_proc_signal(sup->proc, SIGHUP);
    //  Sample the table as fast as the API answers until the reload is over.
    int min_ready = WORKERS, max_procs = 0, samples = 0;
    json_t *done = NULL;
    while (!done && zt_now_ms() - start < 30000) {
        json_t *reply = zs_get(sup, "/workers");
        int ready = 0, procs = 0;
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(reply, "workers"), i, w)
        {
            ready += !strcmp(zs_str(w, "state"), "ready");
            procs += zs_int(w, "pid") > 0;
        }
        json_decref(reply);
        samples++;
        if (ready < min_ready) min_ready = ready;
        if (procs > max_procs) max_procs = procs;
        json_t *events = zs_events(sup, seq);
        json_array_foreach(events, i, w)
        {
            if (!done && !strcmp(zs_str(w, "event"), "reload") &&
                strcmp(zs_str(w, "reason"), "started") != 0)
                done = json_deep_copy(w);
        }
        json_decref(events);
    }
    ZT_CHECK(done && !strcmp(zs_str(done, "reason"), "done"));
    ZT_EQ(done ? zs_int(done, "replaced") : 0, WORKERS);
    ZT_EQ(done ? zs_int(done, "expected") : 0, WORKERS);
    //  The issue asks for never fewer than N-1 ready; the gate gives N.
    ZT_CHECK(done && zs_int(done, "min_ready") >= WORKERS - 1);
    ZT_EQ(done ? zs_int(done, "min_ready") : 0, WORKERS);
    ZT_CHECK(min_ready >= WORKERS - 1);
    ZT_CHECK(max_procs <= WORKERS + 1);
    printf("reload of %d workers (each 300 ms to get ready): %lld ms; fewest ready: %lld by the "
           "master's count, %d in %d API samples; at most %d processes\n",
           WORKERS, done ? zs_int(done, "ms") : -1, done ? zs_int(done, "min_ready") : -1,
           min_ready, samples, max_procs);
    json_decref(done);

    s_check_timeline(sup, seq);
    ZT_EQ(s_pids(sup, after, WORKERS + 1), WORKERS);
    for (int a = 0; a < WORKERS; a++)
        for (int b = 0; b < WORKERS; b++)
            ZT_CHECK(before[a] != after[b]);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
}

static void s_aborted_reloads(zs_master_t *sup)
{
    zt_section("aborted reload: the replacement crashes, the old workers stay");
    int before[WORKERS + 1], after[WORKERS + 1];
    ZT_EQ(s_pids(sup, before, WORKERS + 1), WORKERS);
    s_flag("crash", 1);
    long long seq = zs_last_seq(sup);
    zt_proc_signal(sup->proc, SIGHUP);
    json_t *aborted = zs_wait_event(sup, seq, "reload", NULL, "aborted", 20000);
    ZT_CHECK(aborted != NULL);
    ZT_CHECK(aborted && strstr(zs_str(aborted, "text"), "exited with code 3 before it was ready"));
    ZT_EQ(aborted ? zs_int(aborted, "replaced") : -1, 0);
    ZT_EQ(aborted ? zs_int(aborted, "min_ready") : -1, WORKERS);
    if (aborted) printf("aborted: %s\n", zs_str(aborted, "text"));
    json_decref(aborted);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
    ZT_EQ(s_pids(sup, after, WORKERS + 1), WORKERS);
    ZT_CHECK(s_same_pids(before, after, WORKERS));
    json_t *health = zs_get(sup, "/health");
    ZT_CHECK(health && !strcmp(zs_str(health, "status"), "ok"));
    json_t *last = json_object_get(health, "last_reload");
    ZT_CHECK(last && !strcmp(zs_str(last, "reason"), "aborted"));
    ZT_EQ(zs_int(json_array_get(json_object_get(health, "groups"), 0), "restarts_in_window"), 0);
    json_decref(health);
    s_flag("crash", 0);

    zt_section("aborted reload: the replacement is never ready (ready timeout 2 s)");
    s_flag("hang", 1);
    int64_t start = zt_now_ms();
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "POST", "/restart/all", &body), 409);
    int64_t took = zt_now_ms() - start;
    ZT_CHECK(body && !strcmp(zs_str(body, "result"), "aborted"));
    ZT_CHECK(body && strstr(zs_str(body, "error"), "was not ready within 2000 ms"));
    if (body) printf("aborted after %lld ms: %s\n", (long long)took, zs_str(body, "error"));
    ZT_CHECK(took >= 2000);
    json_decref(body);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 10000));
    ZT_EQ(s_pids(sup, after, WORKERS + 1), WORKERS);
    ZT_CHECK(s_same_pids(before, after, WORKERS));
    s_flag("hang", 0);
}

static void s_restart_one(zs_master_t *sup)
{
    zt_section("restart one worker by id");
    int before[WORKERS + 1], after[WORKERS + 1];
    ZT_EQ(s_pids(sup, before, WORKERS + 1), WORKERS);
    char id[64];
    zs_worker_id(sup, 1, id, sizeof id);
    int old_pid = zs_pid(sup, id);
    char target[128];
    snprintf(target, sizeof target, "/restart/%s", id);
    json_t *body = NULL;
    ZT_EQ(zs_call(sup, "POST", target, &body), 200);
    ZT_CHECK(body && json_is_true(json_object_get(body, "ok")));
    ZT_EQ(body ? zs_int(body, "replaced") : 0, 1);
    json_decref(body);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
    ZT_EQ(s_pids(sup, after, WORKERS + 1), WORKERS);
    int kept = 0, gone = 1;
    for (int a = 0; a < WORKERS; a++)
        for (int b = 0; b < WORKERS; b++) {
            kept += before[a] == after[b];
            gone &= after[b] != old_pid;
        }
    ZT_EQ(kept, WORKERS - 1);
    ZT_CHECK(gone);
    ZT_EQ(zs_call(sup, "POST", "/restart/nobody-worker-9", &body), 404);
    json_decref(body);
}

static void s_upgrades(zs_master_t *sup)
{
    zt_section("upgrade to a new program, gated the same way");
    const char *v2[] = {zs_self, "worker", "--tag", "v2", "--ready-delay", "100", NULL};
    json_t *body = NULL;
    ZT_EQ(s_upgrade(sup, v2, &body), 200);
    ZT_CHECK(body && !strcmp(zs_str(body, "result"), "done"));
    ZT_EQ(body ? zs_int(body, "min_ready") : 0, WORKERS);
    json_decref(body);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
    ZT_CHECK(s_all_tagged(sup, "v2"));
    json_t *health = zs_get(sup, "/health");
    ZT_CHECK(health &&
             strstr(zs_str(json_array_get(json_object_get(health, "groups"), 0), "program"),
                    "--tag v2"));
    json_decref(health);

    zt_section("an upgraded worker that crashes comes back running the new program");
    char id[64];
    zs_worker_id(sup, 0, id, sizeof id);
    long long seq = zs_last_seq(sup);
    kill(zs_pid(sup, id), SIGKILL);
    json_t *ready = zs_wait_event(sup, seq, "ready", id, NULL, 10000);
    ZT_CHECK(ready != NULL);
    json_decref(ready);
    ZT_CHECK(s_all_tagged(sup, "v2"));

    zt_section("failed upgrades keep the running workers: missing program, crashing program");
    int before[WORKERS + 1], after[WORKERS + 1];
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
    ZT_EQ(s_pids(sup, before, WORKERS + 1), WORKERS);
    const char *missing[] = {"/nonexistent/zcluster-worker", NULL};
    ZT_EQ(s_upgrade(sup, missing, &body), 409);
    ZT_CHECK(body && strstr(zs_str(body, "error"), "cannot execute /nonexistent/zcluster-worker"));
    json_decref(body);
    const char *broken[] = {zs_self, "worker", "--tag", "v3", "--crash-file", "/", NULL};
    ZT_EQ(s_upgrade(sup, broken, &body), 409);
    ZT_CHECK(body && strstr(zs_str(body, "error"), "exited with code 3"));
    json_decref(body);
    ZT_EQ(s_pids(sup, after, WORKERS + 1), WORKERS);
    ZT_CHECK(s_same_pids(before, after, WORKERS));
    ZT_CHECK(s_all_tagged(sup, "v2"));

    zt_section("one reload at a time");
    ZT_EQ(zs_call(sup, "POST", "/restart/all?wait=0", &body), 202);
    json_decref(body);
    ZT_EQ(s_upgrade(sup, v2, &body), 409);
    ZT_CHECK(body && strstr(zs_str(body, "error"), "already running"));
    json_decref(body);
    json_t *done = zs_wait_event(sup, seq, "reload", NULL, "done", 30000);
    ZT_CHECK(done != NULL);
    json_decref(done);
    ZT_CHECK(zs_wait_ready(sup, WORKERS, 5000));
    ZT_CHECK(s_all_tagged(sup, "v2"));
    ZT_EQ(s_upgrade(sup, (const char *[]){"", NULL}, &body), 400);
    json_decref(body);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    snprintf(s_flags, sizeof s_flags, "/tmp/zc-test-flags-XXXXXX");
    ZT_CHECK(redis != NULL && mkdtemp(s_flags) != NULL);
    if (!redis) return zt_done();
    char crash[128], hang[128];
    snprintf(crash, sizeof crash, "%s/crash", s_flags);
    snprintf(hang, sizeof hang, "%s/hang", s_flags);
    const char *opts[] = {
        "-n", "3", "--redis", zt_redis_url(redis), "--ready-timeout", "2s", "--stop-timeout",
        "3s", NULL};
    const char *worker[] = {"--ready-delay", "300",         "--term-delay", "100", "--crash-file",
                            crash,           "--hang-file", hang,           NULL};
    zs_master_t *sup = zs_start("reload", opts, worker);
    ZT_CHECK(sup != NULL);
    if (sup) {
        ZT_CHECK(zs_wait_ready(sup, WORKERS, 20000));
        s_rolling_reload(sup);
        s_aborted_reloads(sup);
        s_restart_one(sup);
        s_upgrades(sup);
        ZT_EQ(zs_stop(sup, SIGTERM, 20000), 0);
        zs_destroy(&sup);
    }
    s_flag("crash", 0);
    s_flag("hang", 0);
    rmdir(s_flags);
    zt_redis_destroy(&redis);
    return zt_done();
}
