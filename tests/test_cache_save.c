/*  zc_cache save and save_many on a real Redis, each path of the save
    scripts: one key; a window whose keys are all new, all present, or mixed
    with keys of another type, locked keys and damaged lock keys; a shared
    TTL and one TTL per key; a key saved twice in one batch; large values.
    Each entry must get its own outcome, and a refused key must be left
    exactly as it was. */
#include "testkit.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redisContext *s_raw;

//  Runs a raw Redis command on a key and a value; returns 1 if it succeeded.
static int s_raw_ok(const char *format, const char *key, const char *value)
{
    redisReply *reply = (redisReply *)redisCommand(s_raw, format, key, value);
    int ok = reply && reply->type != REDIS_REPLY_ERROR;
    if (reply) freeReplyObject(reply);
    return ok;
}

//  The value stored under a raw Redis name as a string, "(list)" for a list
//  of one item, or "" if absent; the caller frees.
static char *s_stored(const char *name)
{
    redisReply *reply = (redisReply *)redisCommand(s_raw, "TYPE %s", name);
    int list = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "list") == 0;
    if (reply) freeReplyObject(reply);
    if (list) return strdup("(list)");
    reply = (redisReply *)redisCommand(s_raw, "GET %s", name);
    char *text = strdup(reply && reply->type == REDIS_REPLY_STRING ? reply->str : "");
    if (reply) freeReplyObject(reply);
    return text;
}

//  Returns 1 if the cache key holds exactly the one-byte value (a fixint).
static int s_holds(zc_cache_t *cache, const char *key, int fixint)
{
    void *value = NULL;
    size_t size = 0;
    int same = zc_cache_load(cache, key, NULL, &value, &size) == 0 && size == 1 &&
               *(unsigned char *)value == fixint;
    free(value);
    return same;
}

//  Returns key's TTL in ms (-1 none), or -9 if it cannot be read.
static int64_t s_ttl(zc_cache_t *cache, const char *key)
{
    int64_t ttl = -9;
    return zc_cache_ttl(cache, key, &ttl) == 0 ? ttl : -9;
}

static void s_test_single(zc_cache_t *a, zc_cache_t *b)
{
    zt_section("one key: written, kept under another node's lock, never over a list");
    ZT_EQ(zc_cache_save(a, "one", "\x01", 1, 0), 0);
    ZT_CHECK(s_holds(b, "one", 1) && s_ttl(a, "one") == -1);
    ZT_EQ(zc_cache_save(a, "one", "\x02", 1, 60000), 0);
    ZT_CHECK(s_holds(b, "one", 2) && s_ttl(a, "one") > 59000);
    ZT_EQ(zc_cache_save(a, "one", "\x03", 1, 0), 0); //  a save without TTL clears it
    ZT_CHECK(s_holds(b, "one", 3) && s_ttl(a, "one") == -1);
    ZT_EQ(zc_cache_lock(b, "one", 60000), 0);
    ZT_EQ(zc_cache_save(a, "one", "\x04", 1, 0), -1);
    ZT_EQ(zc_cache_error(a), ZC_ERR_LOCKED);
    ZT_CHECK(strstr(zc_cache_errstr(a), "locked by node 'node-b'") != NULL);
    ZT_EQ(zc_cache_save(b, "one", "\x05", 1, 0), 0); //  the owner is not hindered
    ZT_CHECK(s_holds(b, "one", 5));                  //  (other nodes cannot read it while locked)
    ZT_EQ(zc_cache_unlock(b, "one"), 0);
    ZT_CHECK(s_raw_ok("RPUSH %s %s", "zc:{s}:cache:queue", "\x01"));
    ZT_EQ(zc_cache_save(a, "queue", "\x01", 1, 0), -1);
    ZT_EQ(zc_cache_error(a), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(a), "holds a list") != NULL);
    char *stored = s_stored("zc:{s}:cache:queue");
    ZT_CHECK(strcmp(stored, "(list)") == 0);
    free(stored);
}

//  A window of fresh keys, then the same keys again (present: the type
//  check reads them), with a shared TTL each time.
static void s_test_shared_ttl(zc_cache_t *a)
{
    zt_section("a window with one TTL for all: new keys, then present keys");
    enum { N = 40 };
    zc_cache_entry_t entries[N];
    char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "shared%d", i);
        entries[i] = (zc_cache_entry_t){keys[i], (void *)"\x07", 1, 60000, -99};
    }
    ZT_EQ(zc_cache_save_many(a, entries, N), 0);
    int all = 1;
    for (int i = 0; i < N; i++)
        all = all && entries[i].rc == ZC_OK && s_holds(a, keys[i], 7) && s_ttl(a, keys[i]) > 59000;
    ZT_CHECK(all);
    for (int i = 0; i < N; i++) {
        entries[i].value = (void *)"\x08";
        entries[i].ttl_ms = 0;
        entries[i].rc = -99;
    }
    ZT_EQ(zc_cache_save_many(a, entries, N), 0);
    all = 1;
    for (int i = 0; i < N; i++)
        all = all && entries[i].rc == ZC_OK && s_holds(a, keys[i], 8) && s_ttl(a, keys[i]) == -1;
    ZT_CHECK(all);
}

//  One window holding every kind of key a save can meet.
static void s_test_mixed(zc_cache_t *a, zc_cache_t *b)
{
    zt_section("a mixed window: each key its outcome, refused keys untouched");
    ZT_EQ(zc_cache_save(a, "old", "\x01", 1, 60000), 0);
    ZT_CHECK(s_raw_ok("RPUSH %s %s", "zc:{s}:cache:list", "\x01"));
    ZT_CHECK(s_raw_ok("HSET %s f %s", "zc:{s}:cache:hash", "v"));
    ZT_EQ(zc_cache_save(b, "held", "\x01", 1, 0), 0);
    ZT_EQ(zc_cache_lock(b, "held", 60000), 0);
    ZT_EQ(zc_cache_save(a, "mine", "\x01", 1, 0), 0);
    ZT_EQ(zc_cache_lock(a, "mine", 60000), 0);
    ZT_CHECK(s_raw_ok("HSET %s f %s", "zc:{s}:lock:damaged", "v"));
    zc_cache_entry_t entries[] = {
        {"new", (void *)"\x02", 1, 0, -99},      //  0 written
        {"list", (void *)"\x02", 1, 0, -99},     //  1 TYPE: a list
        {"old", (void *)"\x02", 1, 0, -99},      //  2 written, its TTL cleared
        {"held", (void *)"\x02", 1, 5000, -99},  //  3 LOCKED by node-b
        {"hash", (void *)"\x02", 1, 5000, -99},  //  4 TYPE: a hash
        {"mine", (void *)"\x02", 1, 30000, -99}, //  5 written: a's own lock
        {"damaged", (void *)"\x02", 1, 0, -99},  //  6 TYPE: its lock key is a hash
        {"", (void *)"\x02", 1, 0, -99},         //  7 INVALID, never sent
        {"late", (void *)"\x02", 1, 40000, -99}, //  8 written with its TTL
    };
    size_t n = sizeof entries / sizeof entries[0];
    ZT_EQ(zc_cache_save_many(a, entries, n), -1);
    ZT_EQ(zc_cache_error(a), ZC_ERR_TYPE); //  the first failure, in entry order
    ZT_CHECK(strstr(zc_cache_errstr(a), "key 'list' holds a list") != NULL);
    zc_error_t expected[] = {ZC_OK, ZC_ERR_TYPE, ZC_OK,          ZC_ERR_LOCKED, ZC_ERR_TYPE,
                             ZC_OK, ZC_ERR_TYPE, ZC_ERR_INVALID, ZC_OK};
    for (size_t i = 0; i < n; i++)
        if (entries[i].rc != expected[i]) {
            fprintf(stderr, "entry %zu (%s): rc %d, expected %d\n", i, entries[i].key,
                    entries[i].rc, expected[i]);
            ZT_CHECK(0);
        }
    ZT_CHECK(s_holds(a, "new", 2) && s_ttl(a, "new") == -1);
    ZT_CHECK(s_holds(a, "old", 2) && s_ttl(a, "old") == -1);
    ZT_CHECK(s_holds(b, "held", 1)); //  untouched
    ZT_CHECK(s_holds(a, "mine", 2) && s_ttl(a, "mine") > 29000 && s_ttl(a, "mine") <= 30000);
    ZT_CHECK(s_holds(a, "late", 2) && s_ttl(a, "late") > 39000 && s_ttl(a, "late") <= 40000);
    ZT_EQ(s_ttl(a, "damaged"), -9); //  never written
    char *list = s_stored("zc:{s}:cache:list");
    ZT_CHECK(strcmp(list, "(list)") == 0);
    free(list);
    redisReply *hash = (redisReply *)redisCommand(s_raw, "HGET zc:{s}:cache:hash f");
    ZT_CHECK(hash && hash->type == REDIS_REPLY_STRING && strcmp(hash->str, "v") == 0);
    if (hash) freeReplyObject(hash);
    ZT_EQ(zc_cache_unlock(b, "held"), 0);
    ZT_EQ(zc_cache_unlock(a, "mine"), 0);
}

//  Values of 8 KiB: the script asks each present key's type rather than
//  read the old values.
static void s_test_large(zc_cache_t *a)
{
    zt_section("a window of large values over present keys and a list");
    enum { N = 6, SIZE = 8192 };
    char *value = (char *)malloc(SIZE); //  a bin 16 of SIZE - 3 bytes
    ZT_CHECK(value != NULL);
    if (!value) return;
    value[0] = (char)0xc5;
    value[1] = (char)((SIZE - 3) >> 8);
    value[2] = (char)((SIZE - 3) & 0xff);
    memset(value + 3, 'v', SIZE - 3);
    ZT_EQ(zc_cache_save(a, "big1", "\x01", 1, 0), 0);
    ZT_EQ(zc_cache_save(a, "big3", "\x01", 1, 0), 0);
    ZT_CHECK(s_raw_ok("RPUSH %s %s", "zc:{s}:cache:big4", "\x01"));
    zc_cache_entry_t entries[N];
    char keys[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "big%d", i);
        entries[i] = (zc_cache_entry_t){keys[i], value, SIZE, 0, -99};
    }
    freeReplyObject(redisCommand(s_raw, "CONFIG RESETSTAT"));
    ZT_EQ(zc_cache_save_many(a, entries, N), -1);
    ZT_EQ(zc_cache_error(a), ZC_ERR_TYPE);
    //  The old values were not read (no MGET): TYPE asked for each key.
    redisReply *stats = (redisReply *)redisCommand(s_raw, "INFO commandstats");
    ZT_CHECK(stats && stats->type == REDIS_REPLY_STRING && !strstr(stats->str, "cmdstat_mget:") &&
             strstr(stats->str, "cmdstat_type:calls=5,"));
    if (stats) freeReplyObject(stats);
    int right = 1;
    for (int i = 0; i < N; i++) {
        right = right && entries[i].rc == (i == 4 ? ZC_ERR_TYPE : ZC_OK);
        if (i == 4) continue;
        void *loaded = NULL;
        size_t size = 0;
        right = right && zc_cache_load(a, keys[i], NULL, &loaded, &size) == 0 && size == SIZE &&
                memcmp(loaded, value, SIZE) == 0;
        free(loaded);
    }
    ZT_CHECK(right);
    char *list = s_stored("zc:{s}:cache:big4");
    ZT_CHECK(strcmp(list, "(list)") == 0);
    free(list);
    free(value);
}

static void s_test_twice(zc_cache_t *a)
{
    zt_section("a key saved twice in one batch ends as its last save left it");
    zc_cache_entry_t entries[] = {
        {"twice", (void *)"\x01", 1, 0, -99},     {"other", (void *)"\x01", 1, 0, -99},
        {"twice", (void *)"\x02", 1, 60000, -99}, {"again", (void *)"\x01", 1, 60000, -99},
        {"again", (void *)"\x02", 1, 0, -99},
    };
    ZT_EQ(zc_cache_save_many(a, entries, 5), 0);
    ZT_CHECK(s_holds(a, "twice", 2) && s_ttl(a, "twice") > 59000);
    ZT_CHECK(s_holds(a, "again", 2) && s_ttl(a, "again") == -1);
    ZT_CHECK(s_holds(a, "other", 1));
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis);
    if (!redis) return zt_done();
    s_raw = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(s_raw && !s_raw->err);
    zc_cache_t *a = zc_cache_new(zt_redis_url(redis), "s", "node-a");
    zc_cache_t *b = zc_cache_new(zt_redis_url(redis), "s", "node-b");
    ZT_CHECK(a && b);
    if (a && b && s_raw && !s_raw->err) {
        s_test_single(a, b);
        s_test_shared_ttl(a);
        s_test_mixed(a, b);
        s_test_twice(a);
        s_test_large(a);
    }
    zc_cache_destroy(&a);
    zc_cache_destroy(&b);
    if (s_raw) redisFree(s_raw);
    zt_redis_destroy(&redis);
    return zt_done();
}
