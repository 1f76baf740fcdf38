/*  zc_cache against a private redis-server: every operation, expiry and
    sliding expiry, bad Redis contents, dump/restore, batches, a Redis that
    goes away; and the `zcluster cache` console, including lock contention
    between two node processes (tests/test_cache_dump.c covers damaged dumps). */
#include "testkit.h"
#include "zc_redis.h"
#include "zc_cache.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static zt_redis_t *s_redis;

//  A string literal as bytes and size.
#define MP(literal) literal, sizeof(literal) - 1

//  Checks that a call on cache failed: it returned -1 and left kind on the cache.
#define S_FAILS(cache, call, kind)                                                                 \
    do {                                                                                           \
        ZT_EQ(call, -1);                                                                           \
        ZT_EQ(zc_cache_error(cache), kind);                                                        \
    } while (0)

//  Packs a short text as a msgpack str into buf; returns its size.
static size_t s_str(char *buf, const char *text)
{
    size_t len = strlen(text);
    if (len < 32) {
        buf[0] = (char)(0xa0 | len);
        memcpy(buf + 1, text, len);
        return len + 1;
    }
    buf[0] = (char)0xd9;
    buf[1] = (char)len;
    memcpy(buf + 2, text, len);
    return len + 2;
}

//  Saves a short text; returns 0 or -1 (the kind on the cache).
static int s_save_text(zc_cache_t *cache, const char *key, const char *text, int64_t ttl_ms)
{
    char buf[300];
    return zc_cache_save(cache, key, buf, s_str(buf, text), ttl_ms);
}

//  Loads key and returns 1 if it holds the text.
static int s_holds(zc_cache_t *cache, const char *key, const char *text)
{
    char expected[300];
    size_t expected_size = s_str(expected, text);
    void *value = NULL;
    size_t size = 0;
    int rc = zc_cache_load(cache, key, NULL, &value, &size);
    int same = rc == 0 && size == expected_size && memcmp(value, expected, size) == 0;
    free(value);
    return same;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

//  Runs a raw Redis command and returns its reply (the caller frees).
static redisReply *s_raw(redisContext *c, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    redisReply *reply = (redisReply *)redisvCommand(c, format, args);
    va_end(args);
    return reply;
}

static void s_raw_ok(redisContext *c, const char *format, const char *a, const char *b)
{
    redisReply *reply = (redisReply *)redisCommand(c, format, a, b);
    ZT_CHECK(reply && reply->type != REDIS_REPLY_ERROR);
    if (reply) freeReplyObject(reply);
}

//  The number of clients connected to Redis.
static long long s_clients(redisContext *raw)
{
    redisReply *reply = s_raw(raw, "INFO clients");
    const char *field = reply && reply->type == REDIS_REPLY_STRING
                            ? strstr(reply->str, "connected_clients:")
                            : NULL;
    long long clients = field ? atoll(field + strlen("connected_clients:")) : -1;
    if (reply) freeReplyObject(reply);
    return clients;
}

static void s_test_construction(redisContext *raw)
{
    zt_section("construction checks the arguments and does not connect");
    const char *url = zt_redis_url(s_redis);
    ZT_CHECK(zc_cache_new(url, "bad name", "a") == NULL);
    ZT_CHECK(zc_cache_new(url, "a{b", "a") == NULL);
    ZT_CHECK(zc_cache_new(url, "", "a") == NULL);
    ZT_CHECK(zc_cache_new(url, "t", "bad id") == NULL);
    ZT_CHECK(zc_cache_new("http://x", "t", "a") == NULL);
    long long clients = s_clients(raw);
    setenv("ZC_REDIS_URL", url, 1);
    setenv("ZC_CLUSTER", "fromenv", 1);
    zc_cache_t *cache = zc_cache_new(NULL, NULL, NULL);
    ZT_CHECK(cache != NULL);
    if (cache) {
        ZT_CHECK(strcmp(zc_cache_cluster(cache), "fromenv") == 0);
        ZT_CHECK(strlen(zc_cache_owner(cache)) > 0);
        ZT_EQ(zc_cache_error(cache), ZC_OK);
        ZT_CHECK(strcmp(zc_cache_errstr(cache), "") == 0);
        ZT_EQ(s_clients(raw), clients); //  not connected yet
        size_t count = 99;
        ZT_EQ(zc_cache_size(cache, &count), 0); //  the first operation connects
        ZT_EQ(count, 0);
        ZT_EQ(s_clients(raw), clients + 1);
    }
    zc_cache_destroy(&cache);
    zc_cache_destroy(&cache);
    ZT_CHECK(cache == NULL);
    setenv("ZC_NODE_ID", "env-node", 1);
    cache = zc_cache_new(NULL, NULL, NULL);
    ZT_CHECK(cache && strcmp(zc_cache_owner(cache), "env-node") == 0);
    zc_cache_destroy(&cache);
    unsetenv("ZC_NODE_ID");
    unsetenv("ZC_CLUSTER");
    unsetenv("ZC_REDIS_URL");
    ZT_CHECK(zc_cache_new(NULL, "t", "a") == NULL);
    ZT_CHECK(strcmp(zc_strerror(ZC_ERR_LOCKED), "locked") == 0);
    ZT_CHECK(strcmp(zc_strerror(12345), "unknown") == 0);

    zt_section("a Redis that cannot be reached fails each operation, not construction");
    cache = zc_cache_new("unix:///nonexistent/redis.sock", "t", "a");
    ZT_CHECK(cache != NULL);
    if (cache) {
        S_FAILS(cache, s_save_text(cache, "k", "v", 0), ZC_ERR_REDIS);
        ZT_CHECK(strstr(zc_cache_errstr(cache), "cannot connect to Redis at "
                                                "/nonexistent/redis.sock") != NULL);
        void *value = NULL;
        size_t size = 0;
        S_FAILS(cache, zc_cache_load(cache, "k", NULL, &value, &size), ZC_ERR_REDIS);
        S_FAILS(cache, zc_cache_pop_wait(cache, "k", 100, &value, &size), ZC_ERR_REDIS);
        ZT_CHECK(strstr(zc_cache_errstr(cache), "cannot connect") != NULL);
        ZT_CHECK(value == NULL && size == 0);
    }
    zc_cache_destroy(&cache);
}

static void s_test_msgpack(zc_cache_t *cache)
{
    zt_section("values must be one msgpack object");
    static const struct {
        const char *bytes;
        size_t size;
        int valid;
    } cases[] = {
        {MP("\x01"), 1},
        {MP("\xc0"), 1},
        {MP("\xa3\x61\x62\x63"), 1},
        {MP("\x92\x01\xa1x"), 1},
        {MP("\x81\xa1k\x93\x01\x02\x03"), 1},
        {MP("\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18"), 1},
        {MP("\xc4\x02\x00\xff"), 1},
        {MP("\xd6\x01\x00\x00\x00\x00"), 1},
        {MP("\xdc\x00\x02\xc2\xc3"), 1},
        {MP(""), 0},
        {MP("\xc1"), 0},
        {MP("\x01\x02"), 0},             //  two objects
        {MP("\xa5\x61\x62"), 0},         //  str shorter than declared
        {MP("\x93\x01\x02"), 0},         //  array short of an item
        {MP("\xdd\xff\xff\xff\xff"), 0}, //  4 G items declared in 5 bytes
        {MP("\xdb\xff\xff\xff\xff\x61"), 0},
        {MP("\xcb\x00\x00"), 0},
        {MP("\x81\xa1k"), 0}, //  map without its value
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ZT_EQ(zc_cache_msgpack_valid(cases[i].bytes, cases[i].size), cases[i].valid);
        ZT_EQ(zc_cache_save(cache, "mp", cases[i].bytes, cases[i].size, 0),
              cases[i].valid ? 0 : -1);
        ZT_EQ(zc_cache_error(cache), cases[i].valid ? ZC_OK : ZC_ERR_INVALID);
        if (cases[i].valid) {
            void *value = NULL;
            size_t size = 0;
            ZT_EQ(zc_cache_load(cache, "mp", NULL, &value, &size), 0);
            ZT_CHECK(size == cases[i].size && memcmp(value, cases[i].bytes, size) == 0);
            free(value);
        }
    }
    ZT_CHECK(strstr(zc_cache_errstr(cache), "msgpack") != NULL);
    S_FAILS(cache, zc_cache_push(cache, "mplist", "\xc1", 1), ZC_ERR_INVALID);
    //  Deep nesting is fine: the check does not recurse.
    char deep[2001];
    memset(deep, 0x91, 2000);
    deep[2000] = 0x01;
    ZT_EQ(zc_cache_msgpack_valid(deep, sizeof deep), 1);
    ZT_EQ(zc_cache_msgpack_valid(deep, sizeof deep - 1), 0);
    ZT_EQ(zc_cache_destroy_key(cache, "mp"), 0);
}

static void s_test_values(zc_cache_t *cache)
{
    zt_section("save, load, destroy, ttl");
    ZT_EQ(s_save_text(cache, "k1", "hello", 0), 0);
    ZT_CHECK(s_holds(cache, "k1", "hello"));
    ZT_EQ(s_save_text(cache, "k1", "again", 0), 0);
    ZT_CHECK(s_holds(cache, "k1", "again"));
    int64_t ttl = 0;
    ZT_EQ(zc_cache_ttl(cache, "k1", &ttl), 0);
    ZT_EQ(ttl, -1);
    ZT_EQ(s_save_text(cache, "k2", "brief", 60000), 0);
    ZT_EQ(zc_cache_ttl(cache, "k2", &ttl), 0);
    ZT_CHECK(ttl > 50000 && ttl <= 60000);
    ZT_EQ(s_save_text(cache, "k2", "forever", 0), 0);
    ZT_EQ(zc_cache_ttl(cache, "k2", &ttl), 0);
    ZT_EQ(ttl, -1); //  a save replaces the TTL too

    void *value = (void *)1;
    size_t size = 99;
    S_FAILS(cache, zc_cache_load(cache, "nothing", NULL, &value, &size), ZC_ERR_MISSING);
    ZT_CHECK(value == NULL && size == 0);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "'nothing' does not exist") != NULL);
    S_FAILS(cache, zc_cache_ttl(cache, "nothing", &ttl), ZC_ERR_MISSING);
    ZT_EQ(zc_cache_destroy_key(cache, "k1"), 0);
    S_FAILS(cache, zc_cache_destroy_key(cache, "k1"), ZC_ERR_MISSING);
    S_FAILS(cache, zc_cache_load(cache, "k1", NULL, &value, &size), ZC_ERR_MISSING);

    zt_section("bad arguments");
    S_FAILS(cache, s_save_text(cache, "", "x", 0), ZC_ERR_INVALID);
    char long_key[ZC_CACHE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = 0;
    S_FAILS(cache, s_save_text(cache, long_key, "x", 0), ZC_ERR_INVALID);
    long_key[ZC_CACHE_KEY_MAX] = 0;
    ZT_EQ(s_save_text(cache, long_key, "x", 0), 0);
    ZT_EQ(zc_cache_destroy_key(cache, long_key), 0);
    S_FAILS(cache, s_save_text(cache, "k3", "x", -1), ZC_ERR_INVALID);
    S_FAILS(cache, zc_cache_lock(cache, "k3", 0), ZC_ERR_INVALID);
    S_FAILS(cache, zc_cache_pop_wait(cache, "k3", 0, &value, &size), ZC_ERR_INVALID);
    zc_cache_load_opts_t bad = {-5, 0};
    S_FAILS(cache, zc_cache_load(cache, "k2", &bad, &value, &size), ZC_ERR_INVALID);
    //  Keys are any bytes but NUL, spaces and glob characters included.
    ZT_EQ(s_save_text(cache, "a key*with [glob]?", "odd", 0), 0);
    ZT_CHECK(s_holds(cache, "a key*with [glob]?", "odd"));
    ZT_EQ(zc_cache_destroy_key(cache, "a key*with [glob]?"), 0);
    ZT_EQ(zc_cache_destroy_key(cache, "k2"), 0);
}

static void s_test_expiry(zc_cache_t *cache)
{
    zt_section("TTL expiry in milliseconds");
    int64_t start = zt_now_ms();
    ZT_EQ(s_save_text(cache, "short", "v", 800), 0);
    int64_t ttl = 0;
    ZT_EQ(zc_cache_ttl(cache, "short", &ttl), 0);
    ZT_CHECK(ttl > 0 && ttl <= 800);
    ZT_CHECK(s_holds(cache, "short", "v"));
    void *value = NULL;
    size_t size;
    int rc;
    while ((rc = zc_cache_load(cache, "short", NULL, &value, &size)) == 0 &&
           zt_now_ms() - start < 10000) {
        free(value);
        s_sleep_ms(20);
    }
    int64_t gone = zt_now_ms() - start;
    ZT_EQ(rc, -1);
    ZT_EQ(zc_cache_error(cache), ZC_ERR_MISSING);
    fprintf(stderr, "  an 800 ms value disappeared after %lld ms\n", (long long)gone);
    ZT_CHECK(gone >= 750 && gone < 5000);

    zt_section("sliding expiry");
    ZT_EQ(s_save_text(cache, "slide", "v", 2000), 0);
    start = zt_now_ms();
    zc_cache_load_opts_t opts = {2000, 0};
    int kept = 1;
    //  Read every 200 ms, each read sliding the 2 s TTL forward: alive at 3 s.
    while (zt_now_ms() - start < 3000) {
        s_sleep_ms(200);
        rc = zc_cache_load(cache, "slide", &opts, &value, &size);
        kept = kept && rc == 0;
        free(value);
        value = NULL;
    }
    ZT_CHECK(kept);
    ZT_EQ(zc_cache_ttl(cache, "slide", &ttl), 0);
    ZT_CHECK(ttl > 1000 && ttl <= 2000);
    //  A plain load does not slide it.
    int64_t last = zt_now_ms();
    while ((rc = zc_cache_ttl(cache, "slide", &ttl)) == 0 && zt_now_ms() - last < 10000) {
        ZT_EQ(zc_cache_load(cache, "slide", NULL, &value, &size), 0);
        free(value);
        value = NULL;
        s_sleep_ms(50);
    }
    ZT_EQ(rc, -1);
    ZT_EQ(zc_cache_error(cache), ZC_ERR_MISSING);
    ZT_CHECK(zt_now_ms() - last < 5000);
    //  Sliding never gives an expiry to a value that had none.
    ZT_EQ(s_save_text(cache, "forever", "v", 0), 0);
    ZT_EQ(zc_cache_load(cache, "forever", &opts, &value, &size), 0);
    free(value);
    ZT_EQ(zc_cache_ttl(cache, "forever", &ttl), 0);
    ZT_EQ(ttl, -1);
    ZT_EQ(zc_cache_destroy_key(cache, "forever"), 0);
}

static void s_test_lists(zc_cache_t *cache)
{
    zt_section("lists: push, pop, length");
    char buf[64];
    size_t length = 99;
    ZT_EQ(zc_cache_length(cache, "q", &length), 0);
    ZT_EQ(length, 0);
    const char *items[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        ZT_EQ(zc_cache_push(cache, "q", buf, s_str(buf, items[i])), 0);
    ZT_EQ(zc_cache_length(cache, "q", &length), 0);
    ZT_EQ(length, 3);
    for (int i = 0; i < 3; i++) {
        void *value = NULL;
        size_t size = 0;
        ZT_EQ(zc_cache_pop(cache, "q", &value, &size), 0);
        ZT_CHECK(size == s_str(buf, items[i]) && memcmp(value, buf, size) == 0);
        free(value);
    }
    void *value = NULL;
    size_t size = 0;
    S_FAILS(cache, zc_cache_pop(cache, "q", &value, &size), ZC_ERR_MISSING);

    zt_section("blocking pop");
    ZT_EQ(zc_cache_push(cache, "q", buf, s_str(buf, "ready")), 0);
    ZT_EQ(zc_cache_pop_wait(cache, "q", 5000, &value, &size), 0);
    ZT_CHECK(size == 6 && memcmp(value, "\xa5ready", 6) == 0);
    free(value);
    int64_t start = zt_now_ms();
    S_FAILS(cache, zc_cache_pop_wait(cache, "q", 300, &value, &size), ZC_ERR_TIMEOUT);
    int64_t waited = zt_now_ms() - start;
    ZT_CHECK(waited >= 250 && waited < 5000);
    //  The blocking connection stays usable after a timeout.
    ZT_EQ(zc_cache_push(cache, "q", buf, s_str(buf, "later")), 0);
    ZT_EQ(zc_cache_pop_wait(cache, "q", 1000, &value, &size), 0);
    free(value);

    //  Another process blocks on the list; this one pushes.
    zt_proc_t *waiter = zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "--cluster",
                                     zc_cache_cluster(cache), "--id", "waiter", NULL);
    ZT_CHECK(waiter && zt_proc_expect(waiter, "ready waiter", 10000));
    if (waiter) {
        zt_proc_send(waiter, "pop q 10000");
        s_sleep_ms(200); //  not needed for correctness: either order gives the item
        ZT_EQ(zc_cache_push(cache, "q", buf, s_str(buf, "delivered")), 0);
        const char *line = zt_proc_expect(waiter, "ok pop", 10000);
        ZT_CHECK(line && strcmp(line, "ok pop delivered") == 0);
        zt_proc_destroy(&waiter);
    }

    zt_section("type errors");
    ZT_EQ(s_save_text(cache, "scalar", "v", 0), 0);
    S_FAILS(cache, zc_cache_push(cache, "scalar", buf, s_str(buf, "x")), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "'scalar'") != NULL);
    S_FAILS(cache, zc_cache_pop(cache, "scalar", &value, &size), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_pop_wait(cache, "scalar", 100, &value, &size), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_length(cache, "scalar", &length), ZC_ERR_TYPE);
    ZT_EQ(zc_cache_push(cache, "list", buf, s_str(buf, "x")), 0);
    S_FAILS(cache, zc_cache_load(cache, "list", NULL, &value, &size), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "holds a list") != NULL);
    S_FAILS(cache, s_save_text(cache, "list", "v", 0), ZC_ERR_TYPE);
    ZT_EQ(zc_cache_length(cache, "list", &length), 0);
    ZT_EQ(length, 1); //  the refused save left the list alone
    ZT_EQ(zc_cache_destroy_key(cache, "list"), 0);
    ZT_EQ(zc_cache_destroy_key(cache, "scalar"), 0);
}

static void s_test_locks(zc_cache_t *a, zc_cache_t *b)
{
    zt_section("locks in one process, two owners");
    char *owner = (char *)1;
    ZT_EQ(zc_cache_locked(a, "res", &owner), 0);
    ZT_CHECK(owner == NULL);
    ZT_EQ(s_save_text(a, "res", "v0", 0), 0);
    ZT_EQ(zc_cache_lock(a, "res", 10000), 0);
    ZT_EQ(zc_cache_locked(b, "res", &owner), 0);
    ZT_CHECK(owner && strcmp(owner, "node-a") == 0);
    free(owner);
    ZT_EQ(zc_cache_lock(a, "res", 20000), 0); //  extends its own
    S_FAILS(b, zc_cache_lock(b, "res", 1000), ZC_ERR_LOCKED);
    ZT_CHECK(strstr(zc_cache_errstr(b), "locked by node 'node-a'") != NULL);
    S_FAILS(b, s_save_text(b, "res", "vb", 0), ZC_ERR_LOCKED);
    S_FAILS(b, zc_cache_destroy_key(b, "res"), ZC_ERR_LOCKED);
    void *value = NULL;
    size_t size;
    S_FAILS(b, zc_cache_load(b, "res", NULL, &value, &size), ZC_ERR_LOCKED);
    zc_cache_load_opts_t wait = {0, 200};
    int64_t start = zt_now_ms();
    S_FAILS(b, zc_cache_load(b, "res", &wait, &value, &size), ZC_ERR_LOCKED);
    ZT_CHECK(zt_now_ms() - start >= 180);
    ZT_CHECK(strstr(zc_cache_errstr(b), "waited 200 ms") != NULL);
    S_FAILS(b, zc_cache_unlock(b, "res"), ZC_ERR_LOCKED);
    //  The owner is not hindered by its own lock.
    ZT_EQ(s_save_text(a, "res", "va", 0), 0);
    ZT_CHECK(s_holds(a, "res", "va"));
    //  Lists ignore locks.
    ZT_EQ(zc_cache_lock(a, "qlocked", 10000), 0);
    ZT_EQ(zc_cache_push(b, "qlocked", "\x01", 1), 0);
    S_FAILS(b, zc_cache_destroy_key(b, "qlocked"), ZC_ERR_LOCKED);
    ZT_EQ(zc_cache_unlock(a, "qlocked"), 0);
    ZT_EQ(zc_cache_destroy_key(b, "qlocked"), 0);

    ZT_EQ(zc_cache_unlock(a, "res"), 0);
    S_FAILS(a, zc_cache_unlock(a, "res"), ZC_ERR_MISSING);
    ZT_EQ(s_save_text(b, "res", "vb", 0), 0);
    ZT_CHECK(s_holds(a, "res", "vb"));

    zt_section("lock TTL in milliseconds");
    start = zt_now_ms();
    ZT_EQ(zc_cache_lock(a, "res", 300), 0);
    int rc;
    while ((rc = zc_cache_lock(b, "res", 5000)) == -1 && zc_cache_error(b) == ZC_ERR_LOCKED &&
           zt_now_ms() - start < 10000)
        s_sleep_ms(10);
    int64_t took = zt_now_ms() - start;
    ZT_EQ(rc, 0);
    fprintf(stderr, "  a 300 ms lock was free after %lld ms\n", (long long)took);
    ZT_CHECK(took >= 250 && took < 3000);
    S_FAILS(a, zc_cache_unlock(a, "res"), ZC_ERR_LOCKED);
    ZT_EQ(zc_cache_unlock(b, "res"), 0);
    ZT_EQ(zc_cache_destroy_key(a, "res"), 0);
}

static int s_has_key(char **keys, const char *key)
{
    for (size_t i = 0; keys && keys[i]; i++)
        if (strcmp(keys[i], key) == 0) return 1;
    return 0;
}

static void s_test_keys(zc_cache_t *a, zc_cache_t *b, redisContext *raw)
{
    zt_section("keys, size, clear: SCAN under the cluster's prefix");
    size_t count = 99;
    ZT_EQ(zc_cache_size(a, &count), 0);
    ZT_EQ(count, 0);
    char **keys = NULL;
    ZT_EQ(zc_cache_keys(a, NULL, &keys, &count), 0);
    ZT_CHECK(keys && keys[0] == NULL && count == 0);
    zc_cache_keys_free(&keys);
    ZT_CHECK(keys == NULL);
    char name[32];
    for (int i = 0; i < 1200; i++) {
        snprintf(name, sizeof name, "user:%d", i);
        ZT_EQ(s_save_text(a, name, "u", 0), 0);
    }
    ZT_EQ(s_save_text(a, "session:1", "s", 0), 0);
    ZT_EQ(zc_cache_push(a, "session:q", "\x01", 1), 0);
    //  Another cluster, and another cluster whose name is a glob.
    zc_cache_t *other = zc_cache_new(zt_redis_url(s_redis), "t*", "node-o");
    ZT_CHECK(other != NULL);
    ZT_EQ(s_save_text(other, "session:9", "o", 0), 0);
    s_raw_ok(raw, "SET %s %s", "zc:{tx}:cache:session:8", "\x01");
    s_raw_ok(raw, "SET %s %s", "unrelated", "\x01");

    ZT_EQ(zc_cache_size(a, &count), 0);
    ZT_EQ(count, 1202);
    ZT_EQ(zc_cache_keys(a, "session:*", &keys, &count), 0);
    ZT_EQ(count, 2);
    ZT_CHECK(s_has_key(keys, "session:1") && s_has_key(keys, "session:q"));
    zc_cache_keys_free(&keys);
    ZT_EQ(zc_cache_keys(a, "user:11?", &keys, &count), 0);
    ZT_EQ(count, 10);
    zc_cache_keys_free(&keys);
    ZT_EQ(zc_cache_keys(other, NULL, &keys, &count), 0);
    ZT_EQ(count, 1);
    ZT_CHECK(s_has_key(keys, "session:9"));
    zc_cache_keys_free(&keys);

    ZT_EQ(zc_cache_lock(b, "user:7", 10000), 0);
    size_t removed = 0;
    S_FAILS(a, zc_cache_clear(a, &removed), ZC_ERR_LOCKED);
    ZT_EQ(removed, 1201);
    ZT_CHECK(strstr(zc_cache_errstr(a), "1 keys locked") != NULL);
    ZT_EQ(zc_cache_keys(a, NULL, &keys, &count), 0);
    ZT_CHECK(count == 1 && s_has_key(keys, "user:7"));
    zc_cache_keys_free(&keys);
    ZT_EQ(zc_cache_clear(b, &removed), 0); //  the lock's owner may
    ZT_EQ(removed, 1);
    ZT_EQ(zc_cache_unlock(b, "user:7"), 0);
    ZT_EQ(zc_cache_size(other, &count), 0);
    ZT_EQ(count, 1); //  other clusters untouched
    redisReply *reply = s_raw(raw, "EXISTS unrelated zc:{tx}:cache:session:8");
    ZT_CHECK(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2);
    freeReplyObject(reply);
    ZT_EQ(zc_cache_clear(other, NULL), 0);
    zc_cache_destroy(&other);
    freeReplyObject(s_raw(raw, "DEL unrelated zc:{tx}:cache:session:8"));
}

static void s_test_dump_restore(zc_cache_t *a, zc_cache_t *b, const char *dir)
{
    zt_section("dump and restore keep values, lists and TTLs");
    char path[300];
    snprintf(path, sizeof path, "%s/cache.dump", dir);
    ZT_EQ(s_save_text(a, "plain", "forever", 0), 0);
    ZT_EQ(s_save_text(a, "brief", "for a minute", 60000), 0);
    ZT_EQ(zc_cache_save(a, "map", MP("\x82\xa1x\x01\xa1y\x92\xc3\xc0"), 0), 0);
    char buf[64];
    for (int i = 0; i < 2500; i++) { //  past the script's 1000-item RPUSH chunks
        snprintf(buf + 32, 32, "item-%04d", i);
        ZT_EQ(zc_cache_push(a, "jobs", buf, s_str(buf, buf + 32)), 0);
    }
    ZT_EQ(zc_cache_lock(a, "plain", 60000), 0); //  locks are not dumped
    size_t count = 0;
    ZT_EQ(zc_cache_dump(a, path, &count), 0);
    ZT_EQ(count, 4);
    ZT_EQ(zc_cache_unlock(a, "plain"), 0);
    size_t removed = 0;
    ZT_EQ(zc_cache_clear(a, &removed), 0);
    ZT_EQ(removed, 4);
    ZT_EQ(s_save_text(a, "bystander", "kept", 0), 0);
    ZT_EQ(s_save_text(a, "brief", "changed", 0), 0);

    ZT_EQ(zc_cache_restore(b, path, &count), 0);
    ZT_EQ(count, 4);
    ZT_CHECK(s_holds(a, "plain", "forever"));
    ZT_CHECK(s_holds(a, "brief", "for a minute"));
    ZT_CHECK(s_holds(a, "bystander", "kept")); //  keys not in the dump are left alone
    void *value = NULL;
    size_t size = 0;
    ZT_EQ(zc_cache_load(a, "map", NULL, &value, &size), 0);
    ZT_CHECK(size == 9 && memcmp(value, "\x82\xa1x\x01\xa1y\x92\xc3\xc0", 9) == 0);
    free(value);
    int64_t ttl = 0;
    ZT_EQ(zc_cache_ttl(a, "plain", &ttl), 0);
    ZT_EQ(ttl, -1);
    ZT_EQ(zc_cache_ttl(a, "brief", &ttl), 0);
    ZT_CHECK(ttl > 30000 && ttl <= 60000);
    size_t length = 0;
    ZT_EQ(zc_cache_length(a, "jobs", &length), 0);
    ZT_EQ(length, 2500);
    int in_order = 1;
    for (int i = 0; i < 2500; i++) {
        ZT_EQ(zc_cache_pop(a, "jobs", &value, &size), 0);
        snprintf(buf + 32, 32, "item-%04d", i);
        in_order = in_order && size == s_str(buf, buf + 32) && memcmp(value, buf, size) == 0;
        free(value);
    }
    ZT_CHECK(in_order);

    zt_section("restore into another cluster, and an empty dump");
    zc_cache_t *other = zc_cache_new(zt_redis_url(s_redis), "elsewhere", "node-e");
    ZT_EQ(zc_cache_restore(other, path, &count), 0);
    ZT_EQ(count, 4);
    ZT_CHECK(s_holds(other, "brief", "for a minute"));
    ZT_EQ(zc_cache_clear(other, NULL), 0);
    ZT_EQ(zc_cache_dump(other, path, &count), 0);
    ZT_EQ(count, 0);
    ZT_EQ(zc_cache_restore(other, path, &count), 0);
    ZT_EQ(count, 0);
    zc_cache_destroy(&other);

    zt_section("dump and restore failures");
    S_FAILS(a, zc_cache_dump(a, "/nonexistent-dir/cache.dump", NULL), ZC_ERR_IO);
    S_FAILS(a, zc_cache_restore(a, "/nonexistent-dir/cache.dump", NULL), ZC_ERR_IO);
    S_FAILS(a, zc_cache_restore(a, dir, NULL), ZC_ERR_IO); //  a directory
    remove(path);
    ZT_EQ(zc_cache_clear(a, NULL), 0);
}

static void s_test_bad_contents(zc_cache_t *cache, redisContext *raw)
{
    zt_section("bad Redis contents give clear errors");
    void *value = NULL;
    size_t size = 0, length = 0;
    s_raw_ok(raw, "SET %s %s", "zc:{t}:cache:text", "plain text, not msgpack");
    S_FAILS(cache, zc_cache_load(cache, "text", NULL, &value, &size), ZC_ERR_CORRUPT);
    ZT_CHECK(value == NULL);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "not msgpack") != NULL);
    S_FAILS(cache, zc_cache_dump(cache, "/tmp/never-written.dump", NULL), ZC_ERR_CORRUPT);
    ZT_EQ(zc_cache_destroy_key(cache, "text"), 0);

    s_raw_ok(raw, "HSET %s f %s", "zc:{t}:cache:hash", "v");
    S_FAILS(cache, zc_cache_load(cache, "hash", NULL, &value, &size), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "holds a hash") != NULL);
    S_FAILS(cache, s_save_text(cache, "hash", "x", 0), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_push(cache, "hash", "\x01", 1), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_pop(cache, "hash", &value, &size), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_length(cache, "hash", &length), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_dump(cache, "/tmp/never-written.dump", NULL), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "only values and lists") != NULL);
    ZT_EQ(zc_cache_destroy_key(cache, "hash"), 0);

    s_raw_ok(raw, "RPUSH %s %s", "zc:{t}:cache:badq", "\xc1");
    S_FAILS(cache, zc_cache_pop(cache, "badq", &value, &size), ZC_ERR_CORRUPT);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "not msgpack") != NULL);

    s_raw_ok(raw, "HSET %s f %s", "zc:{t}:lock:guarded", "v");
    S_FAILS(cache, s_save_text(cache, "guarded", "x", 0), ZC_ERR_TYPE);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "the lock of key 'guarded'") != NULL);
    //  To a reader, a lock key of another type is no lock.
    s_raw_ok(raw, "SET %s %s", "zc:{t}:cache:guarded", "\x01");
    ZT_CHECK(s_holds(cache, "guarded", "") == 0);
    ZT_EQ(zc_cache_load(cache, "guarded", NULL, &value, &size), 0);
    free(value);
    zc_cache_load_opts_t slide = {1000, 0};
    ZT_EQ(zc_cache_load(cache, "guarded", &slide, &value, &size), 0);
    free(value);
    S_FAILS(cache, zc_cache_destroy_key(cache, "guarded"), ZC_ERR_TYPE);
    S_FAILS(cache, zc_cache_lock(cache, "guarded", 1000), ZC_ERR_TYPE);
    char *owner = NULL;
    S_FAILS(cache, zc_cache_locked(cache, "guarded", &owner), ZC_ERR_TYPE);
    freeReplyObject(s_raw(raw, "DEL zc:{t}:lock:guarded"));
    ZT_EQ(zc_cache_destroy_key(cache, "guarded"), 0);
    FILE *never = fopen("/tmp/never-written.dump", "r");
    ZT_CHECK(never == NULL);
    if (never) fclose(never);
    size_t count = 99;
    ZT_EQ(zc_cache_size(cache, &count), 0);
    ZT_EQ(count, 0);
}

//  Saves and loads count entries with the batch calls.
static void s_test_batches(zc_cache_t *a, zc_cache_t *b, redisContext *raw)
{
    zt_section("pipelined batches");
    enum { N = 1300 }; //  more than one pipeline window
    zc_cache_entry_t *entries = (zc_cache_entry_t *)calloc(N, sizeof *entries);
    char(*keys)[16] = (char(*)[16])calloc(N, 16);
    char(*values)[70] = (char(*)[70])calloc(N, 70);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], 16, "b%d", i);
        values[i][0] = (char)0xd9; //  str 8 of 64 bytes: a 66-byte value
        values[i][1] = 64;
        memset(values[i] + 2, 'a' + i % 26, 64);
        entries[i].key = keys[i];
        entries[i].value = values[i];
        entries[i].size = 66;
        entries[i].ttl_ms = i % 2 ? 60000 : 0;
    }
    ZT_EQ(zc_cache_save_many(a, entries, N), 0);
    int all_ok = 1;
    for (int i = 0; i < N; i++)
        all_ok = all_ok && entries[i].rc == ZC_OK;
    ZT_CHECK(all_ok);
    int64_t ttl = 0;
    ZT_EQ(zc_cache_ttl(a, "b1", &ttl), 0);
    ZT_CHECK(ttl > 0);
    for (int i = 0; i < N; i++) {
        entries[i].value = NULL;
        entries[i].size = 0;
    }
    ZT_EQ(zc_cache_load_many(b, entries, N, NULL), 0);
    int same = 1;
    for (int i = 0; i < N; i++) {
        same = same && entries[i].rc == ZC_OK && entries[i].size == 66 &&
               memcmp(entries[i].value, values[i], 66) == 0;
        free(entries[i].value);
    }
    ZT_CHECK(same);

    zt_section("batches report each entry's failure");
    ZT_EQ(zc_cache_lock(b, "b5", 10000), 0);
    zc_cache_entry_t mixed[4] = {{"b4", values[0], 66, 0, -99},
                                 {"b5", values[0], 66, 0, -99},
                                 {"b6", (void *)"\xc1", 1, 0, -99},
                                 {"", values[0], 66, 0, -99}};
    S_FAILS(a, zc_cache_save_many(a, mixed, 4), ZC_ERR_LOCKED);
    ZT_EQ(mixed[0].rc, ZC_OK);
    ZT_EQ(mixed[1].rc, ZC_ERR_LOCKED);
    ZT_EQ(mixed[2].rc, ZC_ERR_INVALID);
    ZT_EQ(mixed[3].rc, ZC_ERR_INVALID);
    ZT_CHECK(strstr(zc_cache_errstr(a), "'b5' is locked by node 'node-b'") != NULL);
    zc_cache_entry_t loads[3] = {{.key = "b4"}, {.key = "b5"}, {.key = "absent"}};
    S_FAILS(a, zc_cache_load_many(a, loads, 3, NULL), ZC_ERR_LOCKED);
    ZT_EQ(loads[0].rc, ZC_OK);
    ZT_EQ(loads[1].rc, ZC_ERR_LOCKED);
    ZT_EQ(loads[2].rc, ZC_ERR_MISSING);
    ZT_CHECK(loads[1].value == NULL && loads[2].value == NULL);
    ZT_CHECK(strstr(zc_cache_errstr(a), "'b5' is locked") != NULL); //  the first failure
    free(loads[0].value);
    zc_cache_load_opts_t wait = {0, 150};
    int64_t start = zt_now_ms();
    S_FAILS(a, zc_cache_load_many(a, loads + 1, 1, &wait), ZC_ERR_LOCKED);
    ZT_CHECK(zt_now_ms() - start >= 130);
    ZT_CHECK(strstr(zc_cache_errstr(a), "'b5' is locked by node 'node-b' (waited 150 ms)"));
    //  Waiting batches report the first failure in entry order, lock or not.
    S_FAILS(a, zc_cache_load_many(a, loads, 3, &wait), ZC_ERR_LOCKED);
    ZT_CHECK(loads[0].rc == ZC_OK && loads[1].rc == ZC_ERR_LOCKED && loads[2].rc == ZC_ERR_MISSING);
    ZT_CHECK(strstr(zc_cache_errstr(a), "'b5' is locked by node 'node-b' (waited 150 ms)"));
    free(loads[0].value);
    zc_cache_entry_t later[3] = {{.key = "absent"}, {.key = "b5"}, {.key = "b4"}};
    S_FAILS(a, zc_cache_load_many(a, later, 3, &wait), ZC_ERR_MISSING);
    ZT_CHECK(later[1].rc == ZC_ERR_LOCKED && later[2].rc == ZC_OK);
    ZT_CHECK(strstr(zc_cache_errstr(a), "'absent' does not exist"));
    free(later[2].value);

    zt_section("batch loads slide TTLs");
    zc_cache_load_opts_t slide = {120000, 0};
    ZT_EQ(zc_cache_load_many(a, entries, 4, &slide), 0);
    for (int i = 0; i < 4; i++) {
        ZT_CHECK(entries[i].size == 66 && memcmp(entries[i].value, values[i], 66) == 0);
        free(entries[i].value);
        ZT_EQ(zc_cache_ttl(a, keys[i], &ttl), 0);
        ZT_CHECK(i % 2 ? ttl > 60000 : ttl == -1);
    }

    zt_section("scripts flushed from Redis are sent again (NOSCRIPT)");
    ZT_EQ(zc_cache_unlock(b, "b5"), 0);
    for (int i = 0; i < 10; i++) {
        entries[i].value = values[i];
        entries[i].size = 66;
    }
    freeReplyObject(s_raw(raw, "SCRIPT FLUSH"));
    ZT_EQ(zc_cache_save_many(a, entries, 10), 0);
    freeReplyObject(s_raw(raw, "SCRIPT FLUSH"));
    ZT_EQ(zc_cache_load_many(a, entries, 10, NULL), 0);
    for (int i = 0; i < 10; i++)
        free(entries[i].value);
    freeReplyObject(s_raw(raw, "SCRIPT FLUSH"));
    ZT_EQ(s_save_text(a, "single", "x", 0), 0);
    ZT_CHECK(s_holds(a, "single", "x"));
    ZT_EQ(zc_cache_clear(a, NULL), 0);
    free(entries);
    free(keys);
    free(values);
}

static void s_test_redis_restart(zc_cache_t *cache)
{
    zt_section("Redis goes away and comes back");
    ZT_EQ(s_save_text(cache, "before", "x", 0), 0);
    zt_redis_stop(s_redis, 1);
    void *value = NULL;
    size_t size;
    S_FAILS(cache, zc_cache_load(cache, "before", NULL, &value, &size), ZC_ERR_REDIS);
    ZT_CHECK(strlen(zc_cache_errstr(cache)) > 0);
    S_FAILS(cache, s_save_text(cache, "during", "x", 0), ZC_ERR_REDIS);
    zc_cache_entry_t entries[2] = {{.key = "a", .value = (void *)"\x01", .size = 1},
                                   {.key = "b", .value = (void *)"\x01", .size = 1}};
    S_FAILS(cache, zc_cache_save_many(cache, entries, 2), ZC_ERR_REDIS);
    ZT_EQ(entries[1].rc, ZC_ERR_REDIS);
    S_FAILS(cache, zc_cache_pop_wait(cache, "q", 100, &value, &size), ZC_ERR_REDIS);
    ZT_EQ(zt_redis_restart(s_redis), 0);
    //  The Redis layer waits between attempts (100 ms, doubled per failed
    //  attempt, at most 1 s): once that has passed, the next call reconnects.
    s_sleep_ms(1100);
    ZT_EQ(s_save_text(cache, "after", "x", 0), 0);
    ZT_CHECK(s_holds(cache, "after", "x"));
    ZT_EQ(zc_cache_push(cache, "q", "\x01", 1), 0);
    ZT_EQ(zc_cache_pop_wait(cache, "q", 1000, &value, &size), 0);
    free(value);
    ZT_EQ(zc_cache_clear(cache, NULL), 0);
}

//  --------------------------------------------------------------------------
//  The console, and two node processes contending for a lock

//  Sends a command line and returns its answer line ("ok CMD..." or
//  "error CMD..."), or "" if none came.
static const char *s_ask(zt_proc_t *proc, const char *line)
{
    char command[64];
    snprintf(command, sizeof command, "%.*s", (int)strcspn(line, " "), line);
    zt_proc_send(proc, "%s", line);
    int64_t deadline = zt_now_ms() + 10000;
    const char *answer;
    while ((answer = zt_proc_expect(proc, "", (int)(deadline - zt_now_ms()))) != NULL) {
        if ((strncmp(answer, "ok ", 3) == 0 &&
             strncmp(answer + 3, command, strlen(command)) == 0) ||
            (strncmp(answer, "error ", 6) == 0 &&
             strncmp(answer + 6, command, strlen(command)) == 0))
            return answer;
    }
    return "";
}

//  Sends a command line and checks its answer, printing it if unexpected.
static int s_answer_is(zt_proc_t *proc, const char *line, const char *expected)
{
    const char *answer = s_ask(proc, line);
    if (strcmp(answer, expected) == 0) return 1;
    fprintf(stderr, "  '%s' answered '%s', expected '%s'\n", line, answer, expected);
    return 0;
}

static int s_starts(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static zt_proc_t *s_node(const char *id)
{
    zt_proc_t *proc =
        zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "--cluster", "t", "--id", id, NULL);
    char ready[64];
    snprintf(ready, sizeof ready, "ready %s t", id);
    ZT_CHECK(proc && zt_proc_expect(proc, ready, 10000));
    return proc;
}

static void s_test_console(const char *dir)
{
    zt_section("console answers");
    zt_proc_t *a = s_node("a");
    ZT_CHECK(s_answer_is(a, "save greeting hello 60000", "ok save"));
    ZT_CHECK(s_answer_is(a, "load greeting", "ok load hello"));
    const char *ttl = s_ask(a, "ttl greeting");
    ZT_CHECK(s_starts(ttl, "ok ttl ") && atoll(ttl + 7) > 50000 && atoll(ttl + 7) <= 60000);
    ZT_CHECK(s_answer_is(a, "load greeting slide=120000", "ok load hello"));
    ttl = s_ask(a, "ttl greeting");
    ZT_CHECK(s_starts(ttl, "ok ttl ") && atoll(ttl + 7) > 110000 && atoll(ttl + 7) <= 120000);
    ZT_CHECK(s_answer_is(a, "load nothing", "error load: missing: key 'nothing' does not exist"));
    ZT_CHECK(s_answer_is(a, "push q first", "ok push"));
    ZT_CHECK(s_answer_is(a, "push q second", "ok push"));
    ZT_CHECK(s_answer_is(a, "length q", "ok length 2"));
    ZT_CHECK(s_answer_is(a, "pop q", "ok pop first"));
    ZT_CHECK(s_answer_is(a, "pop q 100", "ok pop second"));
    ZT_CHECK(s_starts(s_ask(a, "pop q 100"), "error pop: timeout"));
    ZT_CHECK(s_starts(s_ask(a, "push greeting x"), "error push: wrong type"));
    ZT_CHECK(s_answer_is(a, "keys", "ok keys greeting"));
    ZT_CHECK(s_answer_is(a, "size", "ok size 1"));
    ZT_CHECK(s_answer_is(a, "id", "ok id a"));
    ZT_CHECK(s_answer_is(a, "locked greeting", "ok locked -"));
    ZT_CHECK(s_starts(s_ask(a, "save"), "error save: usage"));
    ZT_CHECK(s_starts(s_ask(a, "lock greeting soon"), "error lock: usage"));
    ZT_CHECK(s_starts(s_ask(a, "load greeting slide=-1"), "error load: usage"));
    ZT_CHECK(s_starts(s_ask(a, "frobnicate"), "error frobnicate: usage"));
    char line[400];
    snprintf(line, sizeof line, "dump %s/console.dump", dir);
    ZT_CHECK(s_answer_is(a, line, "ok dump count=1"));
    ZT_CHECK(s_answer_is(a, "clear", "ok clear removed=1"));
    snprintf(line, sizeof line, "restore %s/console.dump", dir);
    ZT_CHECK(s_answer_is(a, line, "ok restore count=1"));
    ZT_CHECK(s_answer_is(a, "load greeting", "ok load hello"));
    //  A value written by another program shows in msgpack notation, escaped.
    zc_cache_t *cache = zc_cache_new(zt_redis_url(s_redis), "t", "writer");
    ZT_EQ(zc_cache_save(cache, "struct", MP("\x82\xa1n\x01\xa1s\xa2\x0a\x7f"), 0), 0);
    ZT_EQ(zc_cache_save(cache, "lines", MP("\xa3\x61\x0a\x62"), 0), 0);
    zc_cache_destroy(&cache);
    ZT_CHECK(s_answer_is(a, "load struct", "ok load {\"n\"=>1, \"s\"=>\"\\n\\x7f\"}"));
    ZT_CHECK(s_answer_is(a, "load lines", "ok load a\\nb"));
    ZT_CHECK(s_answer_is(a, "clear", "ok clear removed=3"));
    ZT_CHECK(s_answer_is(a, "quit", "ok quit"));
    ZT_EQ(zt_proc_wait(a, 5000), 0);
    zt_proc_destroy(&a);

    zt_section("one-shot commands and exit codes");
    char *save[] = {getenv("ZC_CLI"), "cache", "--redis", (char *)zt_redis_url(s_redis),
                    "--cluster",      "t",     "save",    "oneshot",
                    "-dash value",    "5000",  NULL};
    zt_proc_t *p = zt_proc_start(save, NULL);
    ZT_EQ(zt_proc_wait(p, 10000), 0);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "--cluster", "t", "load", "oneshot",
                     NULL);
    const char *out = zt_proc_expect(p, "", 10000);
    ZT_CHECK(out && strcmp(out, "-dash value") == 0);
    ZT_EQ(zt_proc_wait(p, 10000), 0);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "--cluster", "t", "destroy",
                     "oneshot", NULL);
    ZT_EQ(zt_proc_wait(p, 10000), 0);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "--cluster", "t", "load", "absent",
                     NULL);
    int status = zt_proc_wait(p, 10000);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--redis", zt_redis_url(s_redis), "lock", "x", NULL);
    status = zt_proc_wait(p, 10000);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 64);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--redis", "unix:///nonexistent/redis.sock", "size", NULL);
    status = zt_proc_wait(p, 10000);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    zt_proc_destroy(&p);
    p = zt_cli_start("cache", "--bogus", NULL);
    status = zt_proc_wait(p, 10000);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 64);
    zt_proc_destroy(&p);
}

static void s_test_contention(void)
{
    zt_section("lock contention between two node processes");
    zt_proc_t *a = s_node("a");
    zt_proc_t *b = s_node("b");
    ZT_CHECK(s_answer_is(a, "save res v0", "ok save"));
    ZT_CHECK(s_answer_is(a, "lock res 10000", "ok lock"));
    ZT_CHECK(s_answer_is(b, "locked res", "ok locked a"));
    ZT_CHECK(s_starts(s_ask(b, "lock res 10000"),
                      "error lock: locked: key 'res' is locked by node 'a'"));
    ZT_CHECK(s_starts(s_ask(b, "save res fromB"), "error save: locked"));
    ZT_CHECK(s_starts(s_ask(b, "destroy res"), "error destroy: locked"));
    ZT_CHECK(s_starts(s_ask(b, "load res"), "error load: locked"));
    ZT_CHECK(s_starts(s_ask(b, "unlock res"), "error unlock: locked"));
    //  B waits on the lock while A writes and unlocks; B then sees A's write.
    zt_proc_send(b, "load res wait=10000");
    ZT_CHECK(s_answer_is(a, "save res fromA", "ok save"));
    ZT_CHECK(s_answer_is(a, "unlock res", "ok unlock"));
    const char *line = zt_proc_expect(b, "ok load", 10000);
    ZT_CHECK(line && strcmp(line, "ok load fromA") == 0);

    //  Both nodes hammer the same lock at once. Whoever holds it must see
    //  its own write: nobody else can write while it is held.
    enum { ROUNDS = 150 };
    for (int i = 0; i < ROUNDS; i++) {
        zt_proc_send(a, "lock res 10000\nsave res A\nload res\nunlock res");
        zt_proc_send(b, "lock res 10000\nsave res B\nload res\nunlock res");
    }
    zt_proc_t *procs[2] = {a, b};
    const char *own[2] = {"ok load A", "ok load B"};
    int held[2] = {0, 0}, refused[2] = {0, 0}, violations = 0, unexpected = 0;
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < ROUNDS; i++) {
            char answers[4][128];
            for (int k = 0; k < 4; k++) {
                const char *answer = zt_proc_expect(procs[p], "", 20000);
                snprintf(answers[k], sizeof answers[k], "%s", answer ? answer : "");
            }
            if (strcmp(answers[0], "ok lock") == 0) {
                held[p]++;
                violations += strcmp(answers[1], "ok save") != 0 ||
                              strcmp(answers[2], own[p]) != 0 ||
                              strcmp(answers[3], "ok unlock") != 0;
            } else if (s_starts(answers[0], "error lock: locked"))
                refused[p]++;
            else
                unexpected++;
        }
    }
    fprintf(stderr, "  a held the lock %d times (refused %d), b %d times (refused %d)\n", held[0],
            refused[0], held[1], refused[1]);
    ZT_EQ(violations, 0);
    ZT_EQ(unexpected, 0);
    ZT_EQ(held[0] + refused[0] + held[1] + refused[1], 2 * ROUNDS);
    ZT_CHECK(held[0] + held[1] > 0);
    ZT_CHECK(s_answer_is(a, "locked res", "ok locked -"));

    zt_section("a crashed owner's lock expires on its millisecond TTL");
    int64_t start = zt_now_ms();
    ZT_CHECK(s_answer_is(a, "lock res 700", "ok lock"));
    zt_proc_signal(a, SIGKILL);
    zt_proc_wait(a, 5000);
    const char *answer = "";
    while (zt_now_ms() - start < 10000) {
        answer = s_ask(b, "lock res 10000");
        if (!s_starts(answer, "error lock: locked")) break;
        s_sleep_ms(20);
    }
    int64_t took = zt_now_ms() - start;
    ZT_CHECK(strcmp(answer, "ok lock") == 0);
    fprintf(stderr, "  b took a dead node's 700 ms lock after %lld ms\n", (long long)took);
    ZT_CHECK(took >= 650 && took < 5000);
    ZT_CHECK(s_answer_is(b, "save res fromB", "ok save"));
    ZT_CHECK(s_answer_is(b, "unlock res", "ok unlock"));
    ZT_CHECK(s_answer_is(b, "clear", "ok clear removed=1"));
    zt_proc_destroy(&a);
    zt_proc_destroy(&b);
}

int main(void)
{
    s_redis = zt_redis_start();
    ZT_CHECK(s_redis != NULL);
    if (!s_redis) return zt_done();
    char dir[] = "/tmp/zc-test-cache-XXXXXX";
    ZT_CHECK(mkdtemp(dir) != NULL);
    redisContext *raw = redisConnectUnix(zt_redis_socket(s_redis));
    ZT_CHECK(raw && !raw->err);

    s_test_construction(raw);
    zc_cache_t *a = zc_cache_new(zt_redis_url(s_redis), "t", "node-a");
    zc_cache_t *b = zc_cache_new(zt_redis_url(s_redis), "t", "node-b");
    ZT_CHECK(a && b);
    if (a && b) {
        ZT_CHECK(strcmp(zc_cache_owner(a), "node-a") == 0);
        s_test_msgpack(a);
        s_test_values(a);
        s_test_expiry(a);
        s_test_lists(a);
        s_test_locks(a, b);
        s_test_keys(a, b, raw);
        s_test_dump_restore(a, b, dir);
        s_test_bad_contents(a, raw);
        s_test_batches(a, b, raw);
        s_test_console(dir);
        s_test_contention();
        redisFree(raw);
        raw = NULL;
        s_test_redis_restart(a);
    }
    zc_cache_destroy(&a);
    zc_cache_destroy(&b);
    if (raw) redisFree(raw);
    char path[400];
    snprintf(path, sizeof path, "%s/console.dump", dir);
    remove(path);
    rmdir(dir);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
