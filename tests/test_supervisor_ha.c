/*  Supervisor: the local HA setup. `zcluster start --redis-replicas 1`
    runs a private master, a replica and three sentinels instead of the
    single embedded server and gives its workers (two `zcluster worker`,
    one `zcluster node`) their sentinel URL. The private master is
    SIGKILLed: the sentinels promote the replica, the workers carry on
    (jobs enqueued after the failover run, no worker restarted), the dead
    server comes back once, as a replica, and the password never shows.
    Both servers killed at once: the one the sentinels name comes back as
    the master, empty, and the other as its replica.
    `zcluster shutdown all` leaves no process and no file behind. */
#include "hakit.h"
#include "supkit.h"

#define CLUSTER "ha"

typedef struct {
    zs_master_t *sup;
    char password[64];
    char url[512];         //  the workers' URL, with the password
    int ports[5], pids[5]; //  redis-1, redis-2, sentinel-1..3
    zh_jobs_t jobs;
    zc_queue_t *queue;
} s_ha_t;

//  Reads the processes from GET /health; returns how many.
static int s_processes(s_ha_t *ha)
{
    json_t *health = zs_get(ha->sup, "/health");
    json_t *list = json_object_get(json_object_get(health, "redis"), "processes");
    int count = (int)json_array_size(list);
    for (int i = 0; i < count && i < 5; i++) {
        ha->pids[i] = (int)zs_int(json_array_get(list, (size_t)i), "pid");
        ha->ports[i] = (int)zs_int(json_array_get(list, (size_t)i), "port");
    }
    json_decref(health);
    return count;
}

//  Reads the generated password from the first server's file (0600 in the
//  0700 runtime directory: the test runs as its user).
static void s_read_password(s_ha_t *ha)
{
    char path[256];
    snprintf(path, sizeof path, "%s/redis-1.conf", ha->sup->dir);
    char *conf = zs_slurp(path);
    const char *line = strstr(conf, "requirepass ");
    if (line) sscanf(line + 12, "%63s", ha->password);
    free(conf);
    struct stat st;
    ZT_CHECK(stat(path, &st) == 0 && (st.st_mode & 077) == 0);
}

//  A connection to one process of the set, with the password.
static redisReply *s_command(s_ha_t *ha, int port, const char *command)
{
    char url[128];
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", ha->password, port);
    return zs_redis(url, command);
}

//  1 if the reply's text contains want.
static int s_says(s_ha_t *ha, int port, const char *command, const char *want)
{
    redisReply *reply = s_command(ha, port, command);
    int ok = reply && reply->type == REDIS_REPLY_STRING && strstr(reply->str, want);
    ok |= reply && reply->type == REDIS_REPLY_STATUS && strstr(reply->str, want);
    ok |= reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
          reply->element[0]->str && strstr(reply->element[0]->str, want);
    if (reply) freeReplyObject(reply);
    return ok;
}

//  Polls s_says until it holds; 1, or 0 after timeout_ms.
static int s_wait_says(s_ha_t *ha, int port, const char *command, const char *want, int timeout_ms)
{
    int64_t end = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < end) {
        if (s_says(ha, port, command, want)) return 1;
        zs_sleep_ms(50);
    }
    fprintf(stderr, "  port %d never said '%s' to %s\n", port, want, command);
    return 0;
}

//  Enqueues count jobs (each acknowledged) and waits until every job so
//  far ran; returns 1, or 0 after timeout_ms. The first call after a
//  failover fails on the connection to the old master (the layer never
//  retries a call that may have run): the job is enqueued again.
static int s_run_jobs(s_ha_t *ha, int count, int timeout_ms)
{
    int64_t end = zt_now_ms() + timeout_ms;
    for (int i = 0; i < count; i++)
        while (zh_jobs_enqueue(&ha->jobs, ha->queue, "jobs")) {
            if (zt_now_ms() > end) {
                fprintf(stderr, "  enqueue: %s\n", zc_queue_errstr(ha->queue));
                return 0;
            }
            zs_sleep_ms(50);
        }
    while (zh_jobs_lost(&ha->jobs) > 0 && zt_now_ms() < end)
        zh_jobs_collect(&ha->jobs, ha->sup->proc);
    return zh_jobs_lost(&ha->jobs) == 0;
}

//  Counts the events after seq with this reason and server.
static int s_count_events(s_ha_t *ha, long long since, const char *reason, const char *server)
{
    json_t *events = zs_events(ha->sup, since);
    int count = 0;
    for (size_t i = 0; i < json_array_size(events); i++) {
        json_t *e = json_array_get(events, i);
        count += strcmp(zs_str(e, "event"), "redis") == 0 &&
                 strcmp(zs_str(e, "reason"), reason) == 0 &&
                 strcmp(zs_str(e, "server"), server) == 0;
    }
    json_decref(events);
    return count;
}

static int s_start(s_ha_t *ha)
{
    unsetenv("ZC_REDIS_URL");
    char workers[512], node[512];
    snprintf(workers, sizeof workers, "w:2:%s worker --queue jobs", getenv("ZC_CLI"));
    snprintf(node, sizeof node, "n:1:%s node", getenv("ZC_CLI"));
    const char *opts[] = {"--redis-replicas", "1", "--group", workers, "--group", node, NULL};
    ha->sup = zs_start(CLUSTER, opts, NULL);
    ZT_CHECK(ha->sup != NULL);
    if (!ha->sup) return -1;
    ZT_CHECK(strstr(ha->sup->first_line, "redis=redis-sentinel://***@127.0.0.1:") != NULL);
    ZT_CHECK(strstr(ha->sup->first_line, "/local") != NULL);
    ZT_CHECK(zs_wait_ready(ha->sup, 3, 30000));
    ZT_EQ(s_processes(ha), 5);
    s_read_password(ha);
    ZT_CHECK(strlen(ha->password) >= 32);
    snprintf(ha->url, sizeof ha->url,
             "redis-sentinel://:%s@127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/local", ha->password,
             ha->ports[2], ha->ports[3], ha->ports[4]);
    ha->queue = zc_queue_new(ha->url, CLUSTER);
    return ha->queue ? 0 : -1;
}

//  The password is nowhere a person or another user sees: not on any
//  command line, in the first line, GET /health or the events.
static void s_password_hidden(s_ha_t *ha)
{
    ZT_CHECK(zs_ps_clean(ha->password));
    ZT_CHECK(strstr(ha->sup->first_line, ha->password) == NULL);
    json_t *health = zs_get(ha->sup, "/health");
    char *text = health ? json_dumps(health, 0) : NULL;
    ZT_CHECK(text && strstr(text, "redis-sentinel://***@") && !strstr(text, ha->password));
    free(text);
    json_decref(health);
    json_t *events = zs_events(ha->sup, 0);
    text = json_dumps(events, 0);
    ZT_CHECK(text && !strstr(text, ha->password));
    free(text);
    json_decref(events);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_section("--redis-replicas 1: a master, a replica, three sentinels; workers on their URL");
    static s_ha_t ha;
    if (s_start(&ha)) {
        zs_destroy(&ha.sup);
        return zt_done();
    }
    //  Nothing answers without the password.
    char open_url[64];
    snprintf(open_url, sizeof open_url, "redis://127.0.0.1:%d", ha.ports[0]);
    redisReply *reply = zs_redis(open_url, "GET x");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "NOAUTH"));
    if (reply) freeReplyObject(reply);
    //  The node registered through the sentinels; the queue workers run jobs.
    reply = zs_redis(ha.url, "SCARD zc:{" CLUSTER "}:nodes");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1);
    if (reply) freeReplyObject(reply);
    ZT_CHECK(s_run_jobs(&ha, 20, 20000));
    s_password_hidden(&ha);
    char out[4096], want[64];
    ZT_EQ(zs_cli(out, sizeof out, "health", "--runtime-dir", ha.sup->dir, "--key-file",
                 ha.sup->key_file, NULL),
          0);
    snprintf(want, sizeof want, "sentinel-3: pid %d, port %d", ha.pids[4], ha.ports[4]);
    ZT_CHECK(strstr(out, want) && !strstr(out, ha.password));
    //  Before the kill: the replica copies the master and the sentinels
    //  know each other, so a failover can happen.
    ZT_CHECK(s_wait_says(&ha, ha.ports[1], "INFO replication", "master_link_status:up", 10000));
    ZT_CHECK(s_wait_says(&ha, ha.ports[2], "SENTINEL ckquorum local", "OK", 15000));

    zt_section("SIGKILL the private master: the replica takes over, the workers carry on");
    int workers[8];
    int nworkers = zs_pids(ha.sup, workers, 8);
    ZT_EQ(nworkers, 3);
    long long seq = zs_last_seq(ha.sup);
    int64_t killed = zt_now_ms();
    ZT_EQ(kill(ha.pids[0], SIGKILL), 0);
    //  One job, enqueued as soon as a master takes it, and run.
    ZT_CHECK(s_run_jobs(&ha, 1, 30000));
    printf("a job enqueued and run %lld ms after the kill\n", (long long)(zt_now_ms() - killed));
    ZT_CHECK(s_wait_says(&ha, ha.ports[1], "ROLE", "master", 20000));
    json_t *back = zs_wait_event(ha.sup, seq, "redis", NULL, "started", 20000);
    ZT_CHECK(back && strcmp(zs_str(back, "server"), "redis-1") == 0);
    json_decref(back);
    printf("redis-1 back %lld ms after the kill\n", (long long)(zt_now_ms() - killed));
    //  It came back as a replica of the promoted one, not as an empty master.
    ZT_CHECK(s_wait_says(&ha, ha.ports[0], "ROLE", "slave", 5000));
    ZT_CHECK(s_run_jobs(&ha, 20, 20000));
    ZT_EQ(zh_jobs_twice(&ha.jobs), 0);

    zt_section("nothing respawned: one exit and one start of redis-1, the same workers");
    zs_sleep_ms(1000); //  a respawn loop would show within this
    ZT_EQ(s_count_events(&ha, seq, "exited", "redis-1"), 1);
    ZT_EQ(s_count_events(&ha, seq, "started", "redis-1"), 1);
    int now[8];
    ZT_EQ(zs_pids(ha.sup, now, 8), 3);
    for (int i = 0; i < nworkers; i++)
        ZT_EQ(now[i], workers[i]);
    int old_pids[5];
    memcpy(old_pids, ha.pids, sizeof old_pids);
    ZT_EQ(s_processes(&ha), 5);
    for (int i = 1; i < 5; i++)
        ZT_EQ(ha.pids[i], old_pids[i]);
    ZT_EQ(zs_ready_count(ha.sup), 3);

    zt_section("both servers die at once: the one the sentinels name is the master again");
    seq = zs_last_seq(ha.sup);
    ZT_EQ(kill(ha.pids[0], SIGKILL), 0);
    ZT_EQ(kill(ha.pids[1], SIGKILL), 0);
    json_t *first = zs_wait_event(ha.sup, seq, "redis", NULL, "started", 20000);
    ZT_CHECK(first && strcmp(zs_str(first, "server"), "redis-2") == 0);
    long long first_seq = first ? zs_int(first, "seq") : seq;
    json_decref(first);
    json_t *second = zs_wait_event(ha.sup, first_seq, "redis", NULL, "started", 20000);
    ZT_CHECK(second && strcmp(zs_str(second, "server"), "redis-1") == 0);
    json_decref(second);
    ZT_CHECK(s_wait_says(&ha, ha.ports[1], "ROLE", "master", 5000));
    ZT_CHECK(s_wait_says(&ha, ha.ports[0], "ROLE", "slave", 5000));
    ZT_CHECK(s_run_jobs(&ha, 20, 20000));
    ZT_EQ(s_processes(&ha), 5);

    zt_section("zcluster shutdown all: every process and file gone");
    zc_queue_destroy(&ha.queue);
    ZT_EQ(zs_cli(out, sizeof out, "shutdown", "all", "--runtime-dir", ha.sup->dir, "--key-file",
                 ha.sup->key_file, NULL),
          0);
    ZT_EQ(zs_stop(ha.sup, 0, 20000), 0);
    ZT_EQ(zs_wait_gone(ha.pids, 5, 5000), 0);
    ZT_EQ(zs_wait_gone(workers, nworkers, 5000), 0);
    struct stat st;
    ZT_CHECK(stat(ha.sup->dir, &st) != 0);
    zs_destroy(&ha.sup);
    return zt_done();
}
