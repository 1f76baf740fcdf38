/*  Redis Cluster (issue 14): three masters with a replica each
    (`redis-cli --cluster create --cluster-replicas 1`), and two zcluster
    clusters whose names hash to slots of different masters, each with two
    nodes and a queue worker on a redis-cluster:// URL, while this process
    enqueues jobs and writes the cache of both. MOVED and ASK are followed.
    Then the master of the first cluster's shard is SIGKILLed: the other
    cluster sees no error at all, the first one's nodes come back on the
    promoted replica without a restart, its jobs and cache writes go on, and
    every acknowledged job of both runs.
*/
#include "hakit.h"
#include "zc_cache.h"
#include "zc_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVERS  6
#define NODES    2 //  per zcluster cluster
#define LEASE_MS 3000

static zh_server_t *s_servers[SERVERS];
static char s_url[512];

static int s_cluster_ok(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING && strstr(reply->str, "cluster_state:ok");
}

//  Every server knows three shards, each with its replica.
static int s_slots_ready(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return 0;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->elements < 4) return 0;
    return 1;
}

static int s_replica_ready(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING &&
           (strstr(reply->str, "role:master") || strstr(reply->str, "master_link_status:up"));
}

//  Six servers made one Redis Cluster, every shard's replica in sync.
static int s_deploy(void)
{
    //  Without full coverage required, the shards that are up keep serving
    //  while one fails over (docs/REDIS.md).
    const char *args[] = {"--cluster-enabled",
                          "yes",
                          "--cluster-node-timeout",
                          "1000",
                          "--cluster-require-full-coverage",
                          "no",
                          NULL};
    char *create[SERVERS + 8] = {"redis-cli", "--cluster", "create"};
    static char addrs[SERVERS][32];
    for (int i = 0; i < SERVERS; i++) {
        if (!(s_servers[i] = zh_server_start(args))) return -1;
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", zh_port(s_servers[i]));
        create[3 + i] = addrs[i];
    }
    create[3 + SERVERS] = "--cluster-replicas";
    create[4 + SERVERS] = "1";
    create[5 + SERVERS] = "--cluster-yes";
    create[6 + SERVERS] = NULL;
    zt_proc_t *cli = zt_proc_start(create, NULL);
    int rc = cli ? zt_proc_wait(cli, 60000) : -1;
    zt_proc_destroy(&cli);
    if (rc != 0) return fprintf(stderr, "redis-cli --cluster create: %d\n", rc), -1;
    for (int i = 0; i < SERVERS; i++)
        if (!zh_wait_reply(zh_port(s_servers[i]), "CLUSTER INFO", s_cluster_ok, 20000)) return -1;
    for (int i = 0; i < SERVERS; i++)
        if (!zh_wait_reply(zh_port(s_servers[i]), "CLUSTER SLOTS", s_slots_ready, 20000) ||
            !zh_wait_reply(zh_port(s_servers[i]), "INFO replication", s_replica_ready, 20000))
            return -1;
    snprintf(s_url, sizeof s_url, "redis-cluster://%s,%s,%s", addrs[0], addrs[1], addrs[2]);
    return 0;
}

//  The ports of the master serving name's slot and of its first replica.
static int s_shard(const char *name, int *master, int *replica)
{
    char tag[300];
    int slot = zc_redis_key_slot(tag, (size_t)snprintf(tag, sizeof tag, "{%s}", name));
    zc_redis_t *redis = zh_connect(zh_port(s_servers[0]));
    redisReply *reply = zc_redis_command(redis, "CLUSTER SLOTS");
    *master = *replica = 0;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        redisReply *range = reply->element[i];
        if (range->elements < 4 || slot < range->element[0]->integer ||
            slot > range->element[1]->integer)
            continue;
        *master = (int)range->element[2]->element[1]->integer;
        *replica = (int)range->element[3]->element[1]->integer;
    }
    if (!*master || !*replica)
        fprintf(stderr, "CLUSTER SLOTS: %s\n",
                reply ? (reply->type == REDIS_REPLY_ERROR ? reply->str : "no such slot")
                      : zc_redis_errstr(redis));
    if (reply) freeReplyObject(reply);
    zc_redis_destroy(&redis);
    return *master && *replica ? 0 : -1;
}

static zh_server_t *s_server_at(int port)
{
    for (int i = 0; i < SERVERS; i++)
        if (s_servers[i] && zh_port(s_servers[i]) == port) return s_servers[i];
    return NULL;
}

//  --------------------------------------------------------------------------
//  MOVED and ASK

//  A command on the key of a cluster other than the one the connection
//  follows is answered MOVED, and the layer follows it.
static void s_moved(const char *here, const char *there)
{
    zt_section("MOVED is followed");
    zc_redis_url_t url;
    char err[256];
    ZT_EQ(zc_redis_url_parse(s_url, &url, err, sizeof err), 0);
    zc_redis_url_set_tag(&url, here);
    zc_redis_t *redis = zc_redis_new(&url, 2000);
    zc_redis_args_t args = {0};
    zc_redis_args_str(&args, "SET");
    char key[300];
    snprintf(key, sizeof key, "zc:{%s}:moved", there);
    zc_redis_args_str(&args, key);
    zc_redis_args_str(&args, "1");
    redisReply *reply = zc_redis_call(redis, &args);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply) freeReplyObject(reply);
    zc_redis_args_free(&args);
    zc_redis_destroy(&redis);
}

//  Answers the node id of the server at port.
static void s_myid(int port, char *id, size_t cap)
{
    zc_redis_t *redis = zh_connect(port);
    redisReply *reply = zc_redis_command(redis, "CLUSTER MYID");
    snprintf(id, cap, "%s", reply && reply->type == REDIS_REPLY_STRING ? reply->str : "");
    if (reply) freeReplyObject(reply);
    zc_redis_destroy(&redis);
}

//  While name's slot migrates from its master to another, a key not yet
//  moved is answered ASK, and the layer sends the command there after
//  ASKING.
static void s_ask(const char *name, int other)
{
    zt_section("ASK is followed");
    int source, replica;
    ZT_EQ(s_shard(name, &source, &replica), 0);
    char tag[300], source_id[64], target_id[64];
    int slot = zc_redis_key_slot(tag, (size_t)snprintf(tag, sizeof tag, "{%s}", name));
    s_myid(source, source_id, sizeof source_id);
    s_myid(other, target_id, sizeof target_id);
    ZT_CHECK(zh_command_ok(other, "CLUSTER SETSLOT %d IMPORTING %s", slot, source_id));
    ZT_CHECK(zh_command_ok(source, "CLUSTER SETSLOT %d MIGRATING %s", slot, target_id));
    zc_redis_url_t url;
    char err[256];
    ZT_EQ(zc_redis_url_parse(s_url, &url, err, sizeof err), 0);
    zc_redis_url_set_tag(&url, name);
    zc_redis_t *redis = zc_redis_new(&url, 2000);
    zc_redis_args_t args = {0};
    char key[300];
    snprintf(key, sizeof key, "zc:{%s}:asked", name);
    const char *set[] = {"SET", key, "1"};
    for (int i = 0; i < 3; i++)
        zc_redis_args_str(&args, set[i]);
    redisReply *reply = zc_redis_call(redis, &args);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply) freeReplyObject(reply);
    //  The key went to the importing node.
    zc_redis_t *target = zh_connect(other);
    reply = zc_redis_command(target, "ASKING");
    if (reply) freeReplyObject(reply);
    reply = zc_redis_command(target, "EXISTS %s", key);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1);
    if (reply) freeReplyObject(reply);
    reply = zc_redis_command(target, "DEL %s", key);
    if (reply) freeReplyObject(reply);
    zc_redis_destroy(&target);
    zc_redis_args_free(&args);
    zc_redis_destroy(&redis);
    ZT_CHECK(zh_command_ok(source, "CLUSTER SETSLOT %d STABLE", slot));
    ZT_CHECK(zh_command_ok(other, "CLUSTER SETSLOT %d STABLE", slot));
}

//  --------------------------------------------------------------------------
//  Two zcluster clusters under load

typedef struct {
    char name[32];
    int master, replica; //  ports of its shard
    const char *ids[NODES];
    char id_text[NODES][48];
    zt_proc_t *nodes[NODES], *worker;
    zc_queue_t *queue;
    zc_cache_t *cache;
    zh_jobs_t jobs;
    int errors;
    zh_watch_t watch;
} s_tenant_t;

static int s_tenant_start(s_tenant_t *t)
{
    for (int i = 0; i < NODES; i++) {
        snprintf(t->id_text[i], sizeof t->id_text[i], "%s-node-%d", t->name, i + 1);
        t->ids[i] = t->id_text[i];
        t->nodes[i] = zt_cli_start("node", "--id", t->ids[i], "--cluster", t->name, "--lease-ttl",
                                   "3000", NULL);
        if (!t->nodes[i] || !zt_proc_expect(t->nodes[i], "ready ", 10000)) return -1;
    }
    t->worker = zt_cli_start("worker", "--cluster", t->name, "--queue", "jobs", NULL);
    if (!t->worker || !zt_proc_expect(t->worker, "ready ", 10000)) return -1;
    t->queue = zc_queue_new(NULL, t->name);
    t->cache = zc_cache_new(NULL, t->name, "tester");
    return t->queue && t->cache ? 0 : -1;
}

static void s_tenant_stop(s_tenant_t *t)
{
    for (int i = 0; i < NODES; i++) {
        ZT_CHECK(t->nodes[i] && zt_proc_command(t->nodes[i], "leader") == 0);
        zt_proc_destroy(&t->nodes[i]);
    }
    ZT_CHECK(t->worker && zt_proc_command(t->worker, "stats") == 0);
    zt_proc_destroy(&t->worker);
    zc_queue_destroy(&t->queue);
    zc_cache_destroy(&t->cache);
}

//  Counts an error, and shows the first of each hundred.
static void s_error(s_tenant_t *t, const char *what, const char *message)
{
    if (t->errors++ % 100 == 0) fprintf(stderr, "%s: %s: %s\n", t->name, what, message);
}

//  One enqueue and one cache write, and the worker's lines since.
static void s_tenant_step(s_tenant_t *t, int n)
{
    if (zh_jobs_enqueue(&t->jobs, t->queue, "jobs"))
        s_error(t, "enqueue", zc_queue_errstr(t->queue));
    char key[32];
    snprintf(key, sizeof key, "k-%d", n % 50);
    if (zc_cache_save(t->cache, key, "\xa1x", 2, 60000) != 0)
        s_error(t, "cache", zc_cache_errstr(t->cache));
    zh_jobs_collect(&t->jobs, t->worker);
}

//  Steps both for ms, or until a's nodes are back on its replica (watch).
static void s_steady(s_tenant_t *a, s_tenant_t *b, int ms, zc_redis_t *watch)
{
    int64_t end = zt_now_ms() + ms;
    for (int n = 0; zt_now_ms() < end; n++) {
        s_tenant_step(a, n);
        s_tenant_step(b, n);
        if (watch && zh_watch(&a->watch, watch, a->name, a->ids, NODES, LEASE_MS) == NODES) return;
        usleep(8000);
    }
}

static void s_load_and_kill(s_tenant_t *a, s_tenant_t *b);

static void s_failover(s_tenant_t *a, s_tenant_t *b)
{
    zt_section("a shard's master fails over: only its zcluster cluster notices");
    int started = s_tenant_start(a) == 0 && s_tenant_start(b) == 0;
    ZT_CHECK(started);
    if (started) s_load_and_kill(a, b);
    s_tenant_stop(a);
    s_tenant_stop(b);
}

//  Load on both, then the kill of a's shard master, and what each saw.
static void s_load_and_kill(s_tenant_t *a, s_tenant_t *b)
{
    s_steady(a, b, 1500, NULL);
    ZT_EQ(a->errors + b->errors, 0);
    int a_before = a->jobs.enqueued;
    zc_redis_t *watch = zh_connect(a->replica);
    int64_t killed = zt_now_ms();
    zh_kill(s_server_at(a->master));
    s_steady(a, b, 30000, watch);
    int64_t back = zh_watch_done(&a->watch, NODES);
    ZT_CHECK(back > 0);
    ZT_EQ(b->errors, 0); //  the other shard's cluster saw nothing
    //  The first one works again: each connection finds the promoted
    //  replica on its next attempt (up to 1 s of backoff away), then no
    //  more errors.
    int64_t quiet_since = zt_now_ms();
    for (int64_t end = quiet_since + 10000; zt_now_ms() < end;) {
        int errors = a->errors;
        s_steady(a, b, 50, NULL);
        if (a->errors != errors) quiet_since = zt_now_ms();
        if (zt_now_ms() - quiet_since >= 1500) break;
    }
    printf("%s: no error since %lld ms after its nodes came back\n", a->name,
           (long long)(quiet_since - back));
    int a_errors = a->errors, a_during = a->jobs.enqueued;
    s_steady(a, b, 1000, NULL);
    ZT_EQ(a->errors, a_errors);
    ZT_CHECK(a->jobs.enqueued > a_during);
    for (int64_t end = zt_now_ms() + 15000;
         zt_now_ms() < end && zh_jobs_lost(&a->jobs) + zh_jobs_lost(&b->jobs);)
        s_steady(a, b, 100, NULL);
    printf("cluster failover: recovery_ms=%lld (after promotion %lld) %s: enqueued=%d (before the "
           "kill %d) errors=%d lost=%d; %s: enqueued=%d errors=%d lost=%d\n",
           (long long)(back - killed), (long long)(back - a->watch.promoted_at), a->name,
           a->jobs.enqueued, a_before, a->errors, zh_jobs_lost(&a->jobs), b->name, b->jobs.enqueued,
           b->errors, zh_jobs_lost(&b->jobs));
    ZT_EQ(zh_jobs_lost(&b->jobs), 0);
    zc_redis_destroy(&watch);
}

int main(void)
{
    int deployed = s_deploy() == 0;
    ZT_CHECK(deployed);
    static s_tenant_t a, b;
    //  Two names whose slots two different masters serve.
    for (int i = 0; deployed && i < 100 && (!a.master || !b.master || b.master == a.master); i++) {
        s_tenant_t *t = a.master ? &b : &a;
        snprintf(t->name, sizeof t->name, "tenant-%d", i);
        ZT_EQ(s_shard(t->name, &t->master, &t->replica), 0);
    }
    ZT_CHECK(a.master && b.master && a.master != b.master);
    if (deployed && a.master != b.master) {
        setenv("ZC_REDIS_URL", s_url, 1);
        s_moved(a.name, b.name);
        s_ask(b.name, a.master);
        s_failover(&a, &b);
    }
    for (int i = 0; i < SERVERS; i++)
        zh_destroy(&s_servers[i]);
    return zt_done();
}
