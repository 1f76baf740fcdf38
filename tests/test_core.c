/*  The shared layer of the cluster plane against a real redis-server: URL
    parsing (credentials never in a message), lazy connect, reconnect with
    backoff after a restart, AUTH and SELECT, scripts by SHA with the
    NOSCRIPT fallback (SCRIPT FLUSH, restart), pipelines with error replies,
    the cluster identity's one name rule, the worker pool, error names. */
#include "testkit.h"
#include "zc_error.h"
#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_pool.h"
#include "zc_redis.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static zt_redis_t *s_server;

static void s_urls(void)
{
    zt_section("URLs");
    zc_redis_url_t url;
    char err[256];
    ZT_EQ(zc_redis_url_parse("redis://:s3cret@example:7000/3", &url, err, sizeof err), 0);
    ZT_CHECK(strcmp(url.host, "example") == 0 && url.port == 7000 && url.db == 3);
    ZT_CHECK(strcmp(url.password, "s3cret") == 0);
    char where[300];
    ZT_CHECK(strcmp(zc_redis_url_where(&url, where, sizeof where), "example:7000") == 0);
    char shown[300];
    ZT_CHECK(strcmp(zc_redis_url_redact("redis://user:s3cret@h:1/2", shown, sizeof shown),
                    "redis://***@h:1/2") == 0);
    ZT_CHECK(strcmp(zc_redis_url_redact("redis:/:s3cret@h", shown, sizeof shown), "***@h") == 0);
    ZT_CHECK(strcmp(zc_redis_url_redact("unix:///tmp/r.sock", shown, sizeof shown),
                    "unix:///tmp/r.sock") == 0);
    ZT_EQ(zc_redis_url_parse("unix:///tmp/r.sock?db=2", &url, err, sizeof err), 0);
    ZT_CHECK(strcmp(url.path, "/tmp/r.sock") == 0 && url.db == 2);
    ZT_CHECK(strcmp(zc_redis_url_where(&url, where, sizeof where), "/tmp/r.sock") == 0);
    //  Bad URLs are refused with a reason that never repeats the password.
    const char *bad[] = {"redis://:s3cret@host:0",  "redis://:s3cret@host/x", "http://:s3cret@host",
                         "redis://:s3cret@",        "unix://relative?db=1",   "unix:///tmp/x?db=-1",
                         "redis://u:s3cret@h:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ZT_EQ(zc_redis_url_parse(bad[i], &url, err, sizeof err), -1);
        ZT_CHECK(*err && strstr(err, "s3cret") == NULL);
    }
}

static void s_ha_urls(void)
{
    zt_section("ACL users, Sentinel and Redis Cluster URLs; hash slots");
    zc_redis_url_t url;
    char err[256], where[300];
    ZT_EQ(zc_redis_url_parse("redis://app:s3:cr@t@h:1/2?wait=250", &url, err, sizeof err), 0);
    ZT_CHECK(strcmp(url.user, "app") == 0 && strcmp(url.password, "s3:cr@t") == 0);
    ZT_CHECK(url.mode == ZC_REDIS_DIRECT && url.db == 2 && url.wait_ms == 250);
    ZT_EQ(zc_redis_url_parse("redis://:s3cret@h", &url, err, sizeof err), 0);
    ZT_CHECK(*url.user == 0 && strcmp(url.password, "s3cret") == 0 && url.wait_ms == 0);
    ZT_EQ(zc_redis_url_parse("redis-sentinel://u:s3cret@s1:26379,s2:26380,s3/mymaster/4", &url, err,
                             sizeof err),
          0);
    ZT_CHECK(url.mode == ZC_REDIS_SENTINEL && url.seed_count == 3 && url.db == 4);
    ZT_CHECK(strcmp(url.master, "mymaster") == 0 && strcmp(url.seeds[2].host, "s3") == 0);
    ZT_CHECK(url.seeds[1].port == 26380 && url.seeds[2].port == 6379);
    ZT_CHECK(strcmp(zc_redis_url_where(&url, where, sizeof where),
                    "master mymaster of sentinels s1:26379,s2:26380,s3:6379") == 0);
    ZT_EQ(zc_redis_url_parse("redis-cluster://n1:7000,n2:7001?wait=100", &url, err, sizeof err), 0);
    ZT_CHECK(url.mode == ZC_REDIS_CLUSTER && url.seed_count == 2 && url.wait_ms == 100);
    ZT_CHECK(strcmp(zc_redis_url_where(&url, where, sizeof where), "cluster n1:7000,n2:7001") == 0);
    const char *bad[] = {"redis-sentinel://:s3cret@h:1",
                         "redis-sentinel://:s3cret@h:1/",
                         "redis-cluster://:s3cret@h:1/2",
                         "redis://:s3cret@h1,h2",
                         "redis://:s3cret@h?wait=0",
                         "redis://:s3cret@h?db=1",
                         "redis-cluster://:s3cret@a,b,c,d,e,f,g,h,i"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ZT_EQ(zc_redis_url_parse(bad[i], &url, err, sizeof err), -1);
        ZT_CHECK(*err && strstr(err, "s3cret") == NULL);
    }
    char shown[300];
    ZT_CHECK(strcmp(zc_redis_url_redact("redis-sentinel://u:s3cret@h:1,h:2/m?wait=5", shown,
                                        sizeof shown),
                    "redis-sentinel://***@h:1,h:2/m?wait=5") == 0);
    ZT_CHECK(strcmp(zc_redis_url_redact("redis-cluster://u:s3cret@h:1", shown, sizeof shown),
                    "redis-cluster://***@h:1") == 0);
    //  Slots as Redis Cluster computes them (CLUSTER KEYSLOT).
    ZT_EQ(zc_redis_key_slot("123456789", 9), 12739);
    ZT_EQ(zc_redis_key_slot("foo", 3), 12182);
    ZT_EQ(zc_redis_key_slot("zc:{foo}:nodes", 14), 12182);
    zc_identity_t id;
    ZT_EQ(zc_identity_init(&id, "redis-cluster://n1:7000", "foo", "", err, sizeof err), 0);
    ZT_EQ(id.url.slot, 12182);
}

static void s_identity(void)
{
    zt_section("identity");
    zc_identity_t id;
    char err[256];
    ZT_EQ(zc_identity_init(&id, "redis://h:1", "shop", "web-1", err, sizeof err), 0);
    ZT_CHECK(strcmp(id.prefix, "zc:{shop}:") == 0 && id.prefix_len == 10);
    char key[128];
    ZT_CHECK(strcmp(zc_identity_key(&id, key, sizeof key, "nodes"), "zc:{shop}:nodes") == 0);
    ZT_CHECK(strcmp(id.node_id, "web-1") == 0);
    //  One rule for cluster names: a wire name without hash-tag braces.
    ZT_EQ(zc_identity_init(&id, "redis://h:1", "a{b", NULL, err, sizeof err), -1);
    ZT_CHECK(strstr(err, "cluster") != NULL);
    ZT_EQ(zc_identity_init(&id, "redis://h:1", "two words", NULL, err, sizeof err), -1);
    ZT_EQ(zc_identity_init(&id, "redis://h:1", "c", "bad id", err, sizeof err), -1);
    ZT_EQ(zc_identity_cluster_valid("x}"), 0);
    ZT_EQ(zc_identity_cluster_valid("ok.name-1"), 1);
    //  Defaults come from the environment.
    setenv("ZC_REDIS_URL", "redis://envhost:6390", 1);
    setenv("ZC_CLUSTER", "fromenv", 1);
    setenv("ZC_NODE_ID", "env-node", 1);
    ZT_EQ(zc_identity_init(&id, NULL, NULL, NULL, err, sizeof err), 0);
    ZT_CHECK(strcmp(id.url.host, "envhost") == 0 && id.url.port == 6390);
    ZT_CHECK(strcmp(id.cluster, "fromenv") == 0 && strcmp(id.node_id, "env-node") == 0);
    unsetenv("ZC_CLUSTER");
    unsetenv("ZC_NODE_ID");
    ZT_EQ(zc_identity_init(&id, NULL, NULL, NULL, err, sizeof err), 0);
    ZT_CHECK(strcmp(id.cluster, ZC_CLUSTER_DEFAULT) == 0 && id.node_id[0] == 0);
    unsetenv("ZC_REDIS_URL");
    ZT_EQ(zc_identity_init(&id, NULL, "c", NULL, err, sizeof err), -1);
    ZT_CHECK(strstr(err, "ZC_REDIS_URL") != NULL);
}

static zc_redis_t *s_connection(int timeout_ms)
{
    zc_redis_url_t url;
    char err[256];
    ZT_EQ(zc_redis_url_parse(zt_redis_url(s_server), &url, err, sizeof err), 0);
    return zc_redis_new(&url, timeout_ms);
}

static void s_connection_life(void)
{
    zt_section("connect, lose, reconnect");
    zc_redis_t *redis = s_connection(500);
    ZT_EQ(zc_redis_up(redis), 0); //  lazy: nothing until first use
    redisReply *reply = zc_redis_command(redis, "PING");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0);
    freeReplyObject(reply);
    ZT_EQ(zc_redis_up(redis), 1);

    zt_redis_stop(s_server, 1);
    ZT_CHECK(zc_redis_command(redis, "PING") == NULL); //  lost: dropped, reason kept
    ZT_EQ(zc_redis_up(redis), 0);
    ZT_CHECK(strstr(zc_redis_errstr(redis), "Redis") != NULL);
    //  Down: attempts are spaced by the backoff, so a burst of calls does
    //  not hammer the server; each fails at once with the reason.
    zc_redis_set_backoff(redis, 300, 300);
    ZT_CHECK(zc_redis_command(redis, "PING") == NULL);
    int64_t start = zt_now_ms();
    for (int i = 0; i < 1000; i++)
        ZT_CHECK(zc_redis_context(redis) == NULL);
    ZT_CHECK(zt_now_ms() - start < 250);
    ZT_CHECK(strstr(zc_redis_errstr(redis), "cannot connect") != NULL);

    ZT_EQ(zt_redis_restart(s_server), 0);
    redisReply *back = NULL;
    for (int i = 0; i < 40 && !back; i++) {
        back = zc_redis_command(redis, "PING");
        if (!back) usleep(50 * 1000);
    }
    ZT_CHECK(back != NULL);
    if (back) freeReplyObject(back);
    zc_redis_destroy(&redis);
    zc_redis_destroy(&redis); //  idempotent
    ZT_CHECK(redis == NULL);
}

static void s_auth_and_db(void)
{
    zt_section("AUTH and SELECT; the password never in a message");
    zc_redis_t *admin = s_connection(500);
    redisReply *reply = zc_redis_command(admin, "CONFIG SET requirepass %s", "pw-zq81");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply) freeReplyObject(reply);

    char text[512];
    zc_redis_url_t url;
    char err[256];
    snprintf(text, sizeof text, "%s?db=5", zt_redis_url(s_server));
    ZT_EQ(zc_redis_url_parse(text, &url, err, sizeof err), 0);
    snprintf(url.password, sizeof url.password, "wrong-pw-77");
    zc_redis_t *wrong = zc_redis_new(&url, 500);
    ZT_CHECK(zc_redis_command(wrong, "PING") == NULL);
    ZT_CHECK(strstr(zc_redis_errstr(wrong), "AUTH") != NULL);
    ZT_CHECK(strstr(zc_redis_errstr(wrong), "wrong-pw-77") == NULL);
    zc_redis_destroy(&wrong);

    snprintf(url.password, sizeof url.password, "pw-zq81");
    zc_redis_t *right = zc_redis_new(&url, 500);
    reply = zc_redis_command(right, "SET %s %s", "dbkey", "five");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STATUS);
    if (reply) freeReplyObject(reply);
    reply = zc_redis_command(right, "CLIENT INFO");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_STRING && strstr(reply->str, "db=5"));
    if (reply) freeReplyObject(reply);
    reply = zc_redis_command(right, "CONFIG SET requirepass %s", "");
    if (reply) freeReplyObject(reply);
    zc_redis_destroy(&right);
    zc_redis_destroy(&admin);
}

static void s_scripts(void)
{
    zt_section("scripts: EVALSHA, NOSCRIPT fallback, pipelines");
    zc_script_t incr;
    zc_script_init(&incr, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
    ZT_EQ(strlen(incr.sha), 40);
    zc_redis_t *redis = s_connection(500);
    redisReply *flush = zc_redis_command(redis, "SCRIPT FLUSH");
    if (flush) freeReplyObject(flush);
    const char *argv[] = {"zc:{t}:counter", "5"};
    redisReply *reply = zc_redis_eval(redis, &incr, 1, 2, argv, NULL);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 5);
    if (reply) freeReplyObject(reply);
    //  Now cached: the script is known by its SHA.
    reply = zc_redis_command(redis, "SCRIPT EXISTS %s", incr.sha);
    ZT_CHECK(reply && reply->elements == 1 && reply->element[0]->integer == 1);
    if (reply) freeReplyObject(reply);

    //  A pipeline mixing script calls (after a flush), an error reply and a
    //  plain command: every reply in order, the scripts re-sent with EVAL.
    flush = zc_redis_command(redis, "SCRIPT FLUSH");
    if (flush) freeReplyObject(flush);
    zc_redis_args_t a = {0}, b = {0}, c = {0};
    zc_redis_args_eval(&a, &incr, 1);
    zc_redis_args_str(&a, "zc:{t}:counter");
    zc_redis_args_int(&a, 10);
    zc_redis_args_reset(&b);
    zc_redis_args_str(&b, "LPUSH");
    zc_redis_args_str(&b, "zc:{t}:counter"); //  wrong type: an error reply
    zc_redis_args_add(&b, "x\0y", 3);
    zc_redis_args_eval(&c, &incr, 1);
    zc_redis_args_str(&c, "zc:{t}:counter");
    zc_redis_args_int(&c, -1);
    zc_redis_args_t *list[] = {&a, &b, &c};
    redisReply *replies[3];
    ZT_EQ(zc_redis_pipeline(redis, list, 3, replies), 0);
    ZT_CHECK(replies[0] && replies[0]->type == REDIS_REPLY_INTEGER && replies[0]->integer == 15);
    ZT_CHECK(replies[1] && replies[1]->type == REDIS_REPLY_ERROR &&
             strstr(replies[1]->str, "WRONGTYPE"));
    ZT_CHECK(replies[2] && replies[2]->type == REDIS_REPLY_INTEGER && replies[2]->integer == 14);
    for (int i = 0; i < 3; i++)
        if (replies[i]) freeReplyObject(replies[i]);
    ZT_EQ(zc_redis_reply_int(NULL, -7), -7);

    //  A restarted, empty Redis: the script runs again without SCRIPT LOAD.
    zt_redis_stop(s_server, 1);
    ZT_EQ(zt_redis_restart(s_server), 0);
    zc_redis_set_backoff(redis, 0, 0);
    reply = zc_redis_call(redis, &a); //  the first use notices the lost connection
    if (!reply) reply = zc_redis_call(redis, &a);
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 10);
    if (reply) freeReplyObject(reply);
    zc_redis_args_free(&a);
    zc_redis_args_free(&b);
    zc_redis_args_free(&c);

    //  Down: a pipeline fails as a whole, every reply NULL.
    zt_redis_stop(s_server, 1);
    zc_redis_args_t d = {0};
    zc_redis_args_str(&d, "PING");
    zc_redis_args_t *one[] = {&d};
    ZT_EQ(zc_redis_pipeline(redis, one, 1, replies), -1);
    ZT_CHECK(replies[0] == NULL);
    zc_redis_args_free(&d);
    ZT_EQ(zt_redis_restart(s_server), 0);
    zc_redis_destroy(&redis);
}

static atomic_int s_ran;
static atomic_int s_cancelled;

static void s_work(void *item)
{
    usleep(2000);
    atomic_fetch_add(&s_ran, *(int *)item);
}

static void s_cancel(void *item)
{
    atomic_fetch_add(&s_cancelled, *(int *)item);
}

static void s_pool(void)
{
    zt_section("pool");
    ZT_CHECK(zc_pool_new(0) == NULL);
    ZT_CHECK(zc_pool_new(257) == NULL);
    zc_pool_t *pool = zc_pool_new(3);
    ZT_CHECK(pool && zc_pool_threads(pool) == 3);
    static int one = 1;
    for (int i = 0; i < 100; i++)
        ZT_EQ(zc_pool_submit(pool, s_work, &one), 0);
    zc_pool_destroy(&pool); //  runs everything submitted first
    ZT_EQ(atomic_load(&s_ran), 100);
    ZT_CHECK(pool == NULL);

    atomic_store(&s_ran, 0);
    pool = zc_pool_new(1);
    for (int i = 0; i < 50; i++)
        zc_pool_submit(pool, s_work, &one);
    size_t cancelled = zc_pool_cancel(pool, s_cancel);
    zc_pool_destroy(&pool);
    //  Each item either ran or was cancelled, never both, never lost.
    ZT_EQ(atomic_load(&s_ran) + atomic_load(&s_cancelled), 50);
    ZT_EQ((int)cancelled, atomic_load(&s_cancelled));
    ZT_CHECK(cancelled > 0);
}

static void s_errors(void)
{
    zt_section("error kinds");
    ZT_CHECK(strcmp(zc_strerror(ZC_OK), "ok") == 0);
    ZT_CHECK(strcmp(zc_strerror(ZC_ERR_LOCKED), "locked") == 0);
    ZT_CHECK(strcmp(zc_strerror(ZC_ERR_UNKNOWN_CONNECTION), "unknown connection") == 0);
    ZT_CHECK(strcmp(zc_strerror(-1), "unknown") == 0);
    ZT_CHECK(strcmp(zc_strerror(999), "unknown") == 0);
    zc_failure_t failure = {ZC_OK, ""};
    ZT_EQ(zc_failure_set(&failure, ZC_ERR_LOCKED, "key '%s' is locked by %s", "k", "n1"), -1);
    ZT_EQ(failure.kind, ZC_ERR_LOCKED);
    ZT_CHECK(strcmp(failure.text, "key 'k' is locked by n1") == 0);
    char long_name[2000];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    zc_failure_set(&failure, ZC_ERR_INVALID, "bad name '%s'", long_name); //  truncated, not overrun
    ZT_EQ(strlen(failure.text), sizeof failure.text - 1);
    ZT_EQ(zc_failure_clear(&failure), 0);
    ZT_CHECK(failure.kind == ZC_OK && failure.text[0] == 0);
}

int main(void)
{
    s_urls();
    s_ha_urls();
    s_identity();
    s_errors();
    s_pool();
    s_server = zt_redis_start();
    ZT_CHECK(s_server != NULL);
    if (s_server) {
        s_connection_life();
        s_auth_and_db();
        s_scripts();
    }
    zt_redis_destroy(&s_server);
    return zt_done();
}
