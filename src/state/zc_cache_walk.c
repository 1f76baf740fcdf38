/*  zc_cache_walk — walking the cache with SCAN: keys, size, clear (and the
    walks that dump and restore use).

    Walks go through SCAN under the cluster's prefix, never KEYS, which
    stalls the server while it runs. SCAN may return a key twice, so a walk
    deduplicates, and it is no snapshot: keys written meanwhile may or may
    not be seen. A SCAN call does a bounded amount of work (COUNT), and the
    names it returns are handed on CACHE_SLICE at a time, so clear's script
    calls each remove at most a few hundred keys: no step of a walk holds
    Redis for more than about a millisecond, however large the cache.
*/
#include "zc_cache_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SCAN_COUNT "500" //  SCAN batch size hint

//  Returns 1 if a name SCAN returned can be a cache key of ours: no NUL
//  (keys are C strings), and a key neither empty nor too long.
static int s_cache_name(zc_cache_t *self, const redisReply *name)
{
    return name->type == REDIS_REPLY_STRING && strlen(name->str) == name->len &&
           name->len > self->names_prefix_len &&
           name->len - self->names_prefix_len <= ZC_CACHE_KEY_MAX;
}

//  Checks a SCAN reply: {cursor, {names...}}.
static zc_error_t s_check_scan(zc_cache_t *self, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to SCAN");
    return ZC_OK;
}

//  Hands the names of one SCAN reply not seen before to fn, CACHE_SLICE at
//  a time, so that what fn does with them in one call stays bounded; with
//  cache_names, only names that can be cache keys of ours.
static zc_error_t s_walk_batch(zc_cache_t *self, const redisReply *batch, int cache_names,
                               zhash_t *seen, cache_walk_fn *fn, void *arg)
{
    const redisReply **names = (const redisReply **)malloc((batch->elements + 1) * sizeof *names);
    assert(names);
    size_t count = 0;
    for (size_t i = 0; i < batch->elements; i++) {
        const redisReply *name = batch->element[i];
        if (name->type != REDIS_REPLY_STRING || (cache_names && !s_cache_name(self, name)))
            continue;
        if (zhash_insert(seen, name->str, (void *)1) == 0) names[count++] = name;
    }
    zc_error_t rc = ZC_OK;
    for (size_t first = 0; first < count && !rc; first += CACHE_SLICE)
        rc =
            fn(self, names + first, count - first < CACHE_SLICE ? count - first : CACHE_SLICE, arg);
    free(names);
    return rc;
}

//  SCANs the names matching match and hands them to fn.
static zc_error_t s_scan(zc_cache_t *self, const char *match, int cache_names, cache_walk_fn *fn,
                         void *arg)
{
    zhash_t *seen = zhash_new();
    char cursor[32] = "0";
    zc_error_t rc = ZC_OK;
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", match, "COUNT", S_SCAN_COUNT};
        zc_redis_args_reset(&self->args);
        for (int i = 0; i < 6; i++)
            zc_redis_args_str(&self->args, argv[i]);
        redisReply *reply = NULL;
        rc = cache_call(self, &self->args, "*", "scan", &reply);
        if (!rc) rc = s_check_scan(self, reply);
        if (!rc) {
            snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
            rc = s_walk_batch(self, reply->element[1], cache_names, seen, fn, arg);
        }
        if (reply) freeReplyObject(reply);
    } while (!rc && strcmp(cursor, "0") != 0);
    zhash_destroy(&seen);
    cache_args_trim(self);
    return rc;
}

zc_error_t cache_walk(zc_cache_t *self, const char *pattern, cache_walk_fn *fn, void *arg)
{
    char match[sizeof self->match + ZC_CACHE_KEY_MAX + 1];
    snprintf(match, sizeof match, "%s%s", self->match, pattern ? pattern : "*");
    return s_scan(self, match, 1, fn, arg);
}

zc_error_t cache_scan(zc_cache_t *self, const char *match, cache_walk_fn *fn, void *arg)
{
    return s_scan(self, match, 0, fn, arg);
}

//  --------------------------------------------------------------------------
//  Keys and size

typedef struct {
    char **keys;
    size_t count, alloc;
} s_key_list_t;

static zc_error_t s_collect_keys(zc_cache_t *self, const redisReply **names, size_t count,
                                 void *arg)
{
    s_key_list_t *list = (s_key_list_t *)arg;
    for (size_t i = 0; i < count; i++) {
        if (list->count + 1 >= list->alloc) {
            list->alloc = list->alloc ? list->alloc * 2 : 64;
            list->keys = (char **)realloc(list->keys, list->alloc * sizeof(char *));
            assert(list->keys);
        }
        list->keys[list->count++] = strdup(names[i]->str + self->names_prefix_len);
        list->keys[list->count] = NULL;
    }
    return ZC_OK;
}

int zc_cache_keys(zc_cache_t *self, const char *pattern, char ***keys_p, size_t *count_p)
{
    assert(self);
    assert(keys_p);
    *keys_p = NULL;
    if (count_p) *count_p = 0;
    if (pattern && strlen(pattern) > ZC_CACHE_KEY_MAX)
        return cache_done(self, cache_fail(self, ZC_ERR_INVALID, "pattern longer than %d bytes",
                                           ZC_CACHE_KEY_MAX));
    s_key_list_t list = {NULL, 0, 0};
    zc_error_t rc = cache_walk(self, pattern, s_collect_keys, &list);
    if (!list.keys) {
        list.keys = (char **)calloc(1, sizeof(char *));
        assert(list.keys);
    }
    if (rc) {
        zc_cache_keys_free(&list.keys);
        return cache_done(self, rc);
    }
    *keys_p = list.keys;
    if (count_p) *count_p = list.count;
    return cache_done(self, ZC_OK);
}

void zc_cache_keys_free(char ***keys_p)
{
    assert(keys_p);
    char **keys = *keys_p;
    if (!keys) return;
    for (char **k = keys; *k; k++)
        free(*k);
    free(keys);
    *keys_p = NULL;
}

static zc_error_t s_count_keys(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    *(size_t *)arg += count;
    return ZC_OK;
}

int zc_cache_size(zc_cache_t *self, size_t *count_p)
{
    assert(self);
    assert(count_p);
    *count_p = 0;
    return cache_done(self, cache_walk(self, NULL, s_count_keys, count_p));
}

//  --------------------------------------------------------------------------
//  Clear

typedef struct {
    size_t removed, kept;
} s_clear_t;

//  Removes one SCAN batch of keys, except those another node has locked, in
//  one script call.
static zc_error_t s_clear_batch(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    s_clear_t *totals = (s_clear_t *)arg;
    zc_redis_args_t *args = &self->args;
    zc_redis_args_eval(args, cache_script(CACHE_CLEAR), (int)(2 * count));
    for (size_t i = 0; i < count; i++)
        zc_redis_args_add(args, names[i]->str, names[i]->len);
    for (size_t i = 0; i < count; i++)
        cache_args_name(self, args, "lock", names[i]->str + self->names_prefix_len);
    cache_args_owner(self, args);
    redisReply *reply = NULL;
    zc_error_t rc = cache_run(self, args, "*", "clear", &reply);
    if (!rc && reply->elements == 3 && reply->element[1]->type == REDIS_REPLY_INTEGER &&
        reply->element[2]->type == REDIS_REPLY_INTEGER) {
        totals->removed += (size_t)reply->element[1]->integer;
        totals->kept += (size_t)reply->element[2]->integer;
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

int zc_cache_clear(zc_cache_t *self, size_t *removed_p)
{
    assert(self);
    s_clear_t totals = {0, 0};
    zc_error_t rc = cache_walk(self, NULL, s_clear_batch, &totals);
    if (removed_p) *removed_p = totals.removed;
    if (!rc && totals.kept)
        rc = cache_fail(self, ZC_ERR_LOCKED, "%zu keys locked by other nodes were kept",
                        totals.kept);
    return cache_done(self, rc);
}
