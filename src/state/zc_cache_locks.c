/*  zc_cache_locks — listing the cache's locks with their owners and the
    time they have left (ActionHero's api.cache.locks()).

    A lock is zc:{C}:lock:KEY holding its owner's node id, with a TTL. The
    listing SCANs those names and reads each slice of them in one script
    call (owner and PTTL together, so a lock that expires in between is
    simply absent), never failing on a lock key of another type: it is
    listed with no owner, as the operator needs to see it.
*/
#include "zc_cache_internal.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  KEYS: lock names. Answers (name, owner, pttl) per lock still there.
static const char s_read_locks[] =
    "local out = {}\n"
    "for _, k in ipairs(KEYS) do\n"
    "  local t = redis.call('TYPE', k)['ok']\n"
    "  if t ~= 'none' then\n"
    "    out[#out + 1] = k\n"
    "    out[#out + 1] = t == 'string' and redis.call('GET', k) or ''\n"
    "    out[#out + 1] = redis.call('PTTL', k)\n"
    "  end\n"
    "end\n"
    "return out\n";

static zc_script_t s_script;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    zc_script_init(&s_script, s_read_locks);
}

typedef struct {
    zc_cache_lock_info_t *locks;
    size_t count;
    size_t name_prefix_len; //  strlen("zc:{C}:lock:")
} s_lock_list_t;

//  Reads one slice of lock names and appends the locks still held.
static zc_error_t s_read_batch(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    s_lock_list_t *list = (s_lock_list_t *)arg;
    zc_redis_args_eval(&self->args, &s_script, (int)count);
    for (size_t i = 0; i < count; i++)
        zc_redis_args_add(&self->args, names[i]->str, names[i]->len);
    redisReply *reply = NULL;
    zc_error_t rc = cache_call(self, &self->args, "*", "locks", &reply);
    if (!rc && (reply->type != REDIS_REPLY_ARRAY || reply->elements % 3 != 0))
        rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to locks");
    for (size_t i = 0; !rc && i < reply->elements; i += 3) {
        redisReply **f = reply->element + i;
        if (f[0]->type != REDIS_REPLY_STRING || f[0]->len <= list->name_prefix_len) continue;
        list->locks =
            (zc_cache_lock_info_t *)realloc(list->locks, (list->count + 1) * sizeof *list->locks);
        assert(list->locks);
        zc_cache_lock_info_t *lock = &list->locks[list->count++];
        lock->key = strdup(f[0]->str + list->name_prefix_len);
        lock->owner = strdup(f[1]->type == REDIS_REPLY_STRING ? f[1]->str : "");
        lock->ttl_ms = zc_redis_reply_int(f[2], -1);
        if (lock->ttl_ms < 0) lock->ttl_ms = -1;
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

static int s_by_key(const void *a, const void *b)
{
    return strcmp(((const zc_cache_lock_info_t *)a)->key, ((const zc_cache_lock_info_t *)b)->key);
}

int zc_cache_locks(zc_cache_t *self, const char *pattern, zc_cache_lock_info_t **locks_p,
                   size_t *count_p)
{
    assert(self && locks_p && count_p);
    *locks_p = NULL;
    *count_p = 0;
    if (pattern && strlen(pattern) > ZC_CACHE_KEY_MAX)
        return cache_done(self, cache_fail(self, ZC_ERR_INVALID, "pattern longer than %d bytes",
                                           ZC_CACHE_KEY_MAX));
    pthread_once(&s_once, s_init);
    char name[CACHE_NAME_MAX];
    s_lock_list_t list = {NULL, 0, strlen(cache_name(self, name, "lock", ""))};
    char match[sizeof self->match + ZC_CACHE_KEY_MAX + 8];
    snprintf(match, sizeof match, "%.*slock:%s", (int)self->match_prefix_len, self->match,
             pattern ? pattern : "*");
    zc_error_t rc = cache_scan(self, match, s_read_batch, &list);
    if (rc) {
        zc_cache_locks_free(&list.locks, list.count);
        return cache_done(self, rc);
    }
    if (list.count) qsort(list.locks, list.count, sizeof *list.locks, s_by_key);
    *locks_p = list.locks;
    *count_p = list.count;
    return cache_done(self, ZC_OK);
}

void zc_cache_locks_free(zc_cache_lock_info_t **locks_p, size_t count)
{
    assert(locks_p);
    if (!*locks_p) return;
    for (size_t i = 0; i < count; i++) {
        free((*locks_p)[i].key);
        free((*locks_p)[i].owner);
    }
    free(*locks_p);
    *locks_p = NULL;
}
