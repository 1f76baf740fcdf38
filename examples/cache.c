/*  cache — values with a TTL, a lock, a list.

    Values are msgpack bytes, so programs in other languages read them too.
    Every step that touches more than one key runs as one Lua script.

    Run: ZC_REDIS_URL=redis://127.0.0.1:6379 ./cache
*/
#include <zcluster.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

//  Packs a string as one msgpack object into sbuf.
static void s_pack_str(msgpack_sbuffer *sbuf, const char *text, size_t len)
{
    msgpack_sbuffer_init(sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_str_with_body(&pk, text, len);
}

int main(void)
{
    //  NULL Redis URL: $ZC_REDIS_URL; "example-owner" owns the locks it takes.
    zc_cache_t *cache = zc_cache_new(NULL, "examples", "example-owner");
    if (!cache) return 1;
    msgpack_sbuffer value;
    s_pack_str(&value, "hello", 5);
    int rc = zc_cache_save(cache, "greeting", value.data, value.size, 60000);
    msgpack_sbuffer_destroy(&value);
    if (rc) {
        fprintf(stderr, "save: %s\n", zc_cache_errstr(cache));
        zc_cache_destroy(&cache);
        return 1;
    }
    void *data;
    size_t size;
    int64_t ttl = 0;
    if (zc_cache_load(cache, "greeting", NULL, &data, &size) == 0 &&
        zc_cache_ttl(cache, "greeting", &ttl) == 0) {
        printf("greeting: %zu msgpack bytes, expires in %lld ms\n", size, (long long)ttl);
        free(data);
    }

    //  A lock: other owners' saves and loads wait or fail until it is released.
    if (zc_cache_lock(cache, "greeting", 5000) == 0) {
        char *owner = NULL;
        zc_cache_locked(cache, "greeting", &owner);
        printf("greeting locked by %s\n", owner ? owner : "nobody");
        free(owner);
        zc_cache_unlock(cache, "greeting");
    }

    //  A list: push at the end, pop from the front.
    const char *jobs[] = {"first", "second"};
    for (int i = 0; i < 2; i++) {
        s_pack_str(&value, jobs[i], 5 + (i == 1));
        zc_cache_push(cache, "inbox", value.data, value.size);
        msgpack_sbuffer_destroy(&value);
    }
    size_t length = 0;
    zc_cache_length(cache, "inbox", &length);
    printf("inbox holds %zu items\n", length);
    while (zc_cache_pop(cache, "inbox", &data, &size) == 0)
        free(data);

    rc = zc_cache_destroy_key(cache, "greeting") == 0 && length == 2 ? 0 : 1;
    zc_cache_destroy(&cache);
    return rc;
}
