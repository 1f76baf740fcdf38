/*  zc_cache_locks on a real Redis: every lock with its owner and time left,
    filtered by pattern; a lock key of another type is listed without an
    owner; zc_cache_keys goes on listing values and lists only. */
#include "testkit.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

static const zc_cache_lock_info_t *s_find(const zc_cache_lock_info_t *locks, size_t n,
                                          const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(locks[i].key, key) == 0) return &locks[i];
    return NULL;
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis);
    if (!redis) return zt_done();
    zc_cache_t *n1 = zc_cache_new(zt_redis_url(redis), "cl", "node-1");
    zc_cache_t *n2 = zc_cache_new(zt_redis_url(redis), "cl", "node-2");
    ZT_EQ(zc_cache_save(n1, "alpha", "\x01", 1, 0), 0);
    ZT_EQ(zc_cache_save(n1, "beta", "\x02", 1, 0), 0);
    ZT_EQ(zc_cache_lock(n1, "alpha", 60000), 0);
    ZT_EQ(zc_cache_lock(n2, "beta", 5000), 0);
    redisContext *c = redisConnectUnix(zt_redis_socket(redis));
    freeReplyObject(redisCommand(c, "RPUSH zc:{cl}:lock:gamma x")); //  damaged data

    zt_section("every lock, with owner and time left");
    zc_cache_lock_info_t *locks;
    size_t n;
    ZT_EQ(zc_cache_locks(n1, NULL, &locks, &n), 0);
    ZT_EQ(n, 3);
    const zc_cache_lock_info_t *a = s_find(locks, n, "alpha"), *b = s_find(locks, n, "beta");
    const zc_cache_lock_info_t *g = s_find(locks, n, "gamma");
    ZT_CHECK(a && strcmp(a->owner, "node-1") == 0 && a->ttl_ms > 55000 && a->ttl_ms <= 60000);
    ZT_CHECK(b && strcmp(b->owner, "node-2") == 0 && b->ttl_ms > 0 && b->ttl_ms <= 5000);
    ZT_CHECK(g && strcmp(g->owner, "") == 0 && g->ttl_ms == -1);
    zc_cache_locks_free(&locks, n);
    ZT_CHECK(locks == NULL);

    zt_section("by pattern; released locks are gone; keys lists no lock");
    ZT_EQ(zc_cache_locks(n1, "al*", &locks, &n), 0);
    ZT_CHECK(n == 1 && strcmp(locks[0].key, "alpha") == 0);
    zc_cache_locks_free(&locks, n);
    ZT_EQ(zc_cache_unlock(n1, "alpha"), 0);
    ZT_EQ(zc_cache_locks(n1, "al*", &locks, &n), 0);
    ZT_EQ(n, 0);
    zc_cache_locks_free(&locks, n);
    char **keys;
    size_t count;
    ZT_EQ(zc_cache_keys(n1, NULL, &keys, &count), 0);
    ZT_EQ(count, 2);
    zc_cache_keys_free(&keys);

    zt_section("zcluster cache locks");
    ZT_EQ(zc_cache_lock(n1, "alpha", 60000), 0);
    zt_proc_t *cli =
        zt_cli_start("cache", "--redis", zt_redis_url(redis), "--cluster", "cl", "locks", NULL);
    const char *line = cli ? zt_proc_expect(cli, "alpha node-1 ", 10000) : NULL;
    ZT_CHECK(line && atoll(line + strlen("alpha node-1 ")) > 50000);
    ZT_CHECK(cli && zt_proc_expect(cli, "beta node-2 ", 10000) != NULL);
    zt_proc_destroy(&cli);
    cli = zt_cli_start("cache", "--redis", zt_redis_url(redis), "--cluster", "cl", "locks", "gam*",
                       NULL);
    ZT_CHECK(cli && zt_proc_expect(cli, "gamma - -1", 10000) != NULL);
    zt_proc_destroy(&cli);

    redisFree(c);
    zc_cache_destroy(&n2);
    zc_cache_destroy(&n1);
    zt_redis_destroy(&redis);
    return zt_done();
}
