/*  zc_cache_values — save and load: one key, or a pipelined batch.

    Throughput: Redis pays for a script by its calls, arguments and the
    commands it makes, not by its Lua (measured with callgrind on Redis 7.0:
    a plain SET takes about 5,400 instructions of the server; a script call
    about 10,000 before it does anything, plus 1,000-1,500 per argument and
    4,000-9,000 per command it makes). A script per key, or a command per
    key inside a script, would cap a batch far below raw SET/GET. A batch
    therefore goes in windows of up to CACHE_WINDOW keys, each one round
    trip. A save window is one script call that makes a few calls for the
    whole window (one EXISTS of the locks, one EXISTS and maybe one MGET of
    the keys for their type, one MSET of the keys without a TTL) and one
    SET per key with a TTL; a TTL shared by the whole batch is sent once.
    A single save takes a script of three calls (GET of the lock, TYPE,
    SET). Loads without
    sliding are one MGET of every key's lock and value, which reads both at
    the same instant with no script at all; only keys that MGET finds no
    value for (missing, or another type) and sliding loads go through the
    load script. The status of each key comes back in its place (a save
    answers only the keys it refused), and the batch's error (kind and
    message) is the first failed key's.
*/
#include "zc_cache_internal.h"
#include "zc_msgpack_check.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  --------------------------------------------------------------------------
//  Checks

//  The checks of a save, recording why one fails.
static zc_error_t s_check_save(zc_cache_t *self, const zc_cache_entry_t *entry)
{
    zc_error_t rc = cache_check_key(self, entry->key);
    if (!rc && !zc_msgpack_valid(entry->value, entry->size))
        rc = cache_fail(self, ZC_ERR_INVALID,
                        "value for key '%.100s' is not one well-formed msgpack object", entry->key);
    if (!rc && (entry->ttl_ms < 0 || entry->ttl_ms > CACHE_TTL_MAX))
        rc = cache_fail(self, ZC_ERR_INVALID, "TTL %" PRId64 " ms out of range", entry->ttl_ms);
    return rc;
}

//  The checks of s_check_save, without a message.
static int s_save_ok(const zc_cache_entry_t *entry)
{
    return cache_key_ok(entry->key) && zc_msgpack_valid(entry->value, entry->size) &&
           entry->ttl_ms >= 0 && entry->ttl_ms <= CACHE_TTL_MAX;
}

static zc_error_t s_check_load_opts(zc_cache_t *self, const zc_cache_load_opts_t *opts)
{
    if (opts && (opts->slide_ms < 0 || opts->slide_ms > CACHE_TTL_MAX || opts->wait_ms < 0))
        return cache_fail(self, ZC_ERR_INVALID, "load options out of range");
    return ZC_OK;
}

//  Copies a loaded value into the entry, if it is msgpack.
static zc_error_t s_take_value(zc_cache_t *self, const redisReply *value, zc_cache_entry_t *entry)
{
    if (!value || value->type != REDIS_REPLY_STRING)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to load");
    if (!zc_msgpack_valid(value->str, value->len))
        return cache_fail(self, ZC_ERR_CORRUPT, "key '%.100s' holds bytes that are not msgpack",
                          entry->key);
    entry->value = malloc(value->len);
    assert(entry->value);
    memcpy(entry->value, value->str, value->len);
    entry->size = value->len;
    return ZC_OK;
}

//  Marks the end of an entry: its failure, if any, keeps the batch's message
//  (except a lock that a waiting load will retry).
static void s_entry_done(zc_cache_t *self, const zc_cache_entry_t *entry)
{
    if (entry->rc && !(self->wait_locked && entry->rc == ZC_ERR_LOCKED)) self->hold_errstr = 1;
}

//  --------------------------------------------------------------------------
//  Windows

//  Appends the value names then the lock names of n entries to args.
static void s_args_names(zc_cache_t *self, zc_cache_entry_t *const *batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cache_args_name(self, &self->args, "cache", batch[i]->key);
    for (size_t i = 0; i < n; i++)
        cache_args_name(self, &self->args, "lock", batch[i]->key);
}

//  Sends the argument list and checks that the reply is an array of n
//  answers (at most n unless exact); on ZC_OK *reply_p holds it.
static zc_error_t s_call_window(zc_cache_t *self, size_t n, int exact, const char *key,
                                const char *op, redisReply **reply_p)
{
    zc_error_t rc = cache_call(self, &self->args, key, op, reply_p);
    if (!rc && ((*reply_p)->type != REDIS_REPLY_ARRAY ||
                (exact ? (*reply_p)->elements != n : (*reply_p)->elements > n))) {
        rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to %s", op);
        freeReplyObject(*reply_p);
        *reply_p = NULL;
    }
    cache_args_trim(self);
    return rc;
}

//  Reads the save script's answer, one {status, info, index} per key it
//  refused, into refusals[0..n): each key's refusal, or NULL for a key
//  written.
static zc_error_t s_save_refusals(zc_cache_t *self, const redisReply *reply, size_t n,
                                  const redisReply **refusals)
{
    memset(refusals, 0, n * sizeof *refusals);
    for (size_t k = 0; k < reply->elements; k++) {
        const redisReply *refusal = reply->element[k];
        if (refusal->type != REDIS_REPLY_ARRAY || refusal->elements != 3 ||
            refusal->element[2]->type != REDIS_REPLY_INTEGER || refusal->element[2]->integer < 1 ||
            (size_t)refusal->element[2]->integer > n)
            return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to save");
        refusals[refusal->element[2]->integer - 1] = refusal;
    }
    return ZC_OK;
}

//  Builds the save script call for n entries with usable keys and values:
//  KEYS the values' names then the locks', ARGV the owner, the TTL shared
//  by every entry (most batches give all keys the same TTL: it then goes
//  once) or 'each', the values, then with 'each' every entry's TTL.
static void s_save_args(zc_cache_t *self, zc_cache_entry_t *const *batch, size_t n)
{
    zc_redis_args_eval(&self->args, cache_script(n == 1 ? CACHE_SAVE_ONE : CACHE_SAVE),
                       (int)(2 * n));
    s_args_names(self, batch, n);
    cache_args_owner(self, &self->args);
    int shared = 1;
    for (size_t i = 1; i < n && shared; i++)
        shared = batch[i]->ttl_ms == batch[0]->ttl_ms;
    if (shared)
        zc_redis_args_int(&self->args, batch[0]->ttl_ms);
    else
        zc_redis_args_str(&self->args, "each");
    for (size_t i = 0; i < n; i++)
        zc_redis_args_add(&self->args, batch[i]->value, batch[i]->size);
    for (size_t i = 0; i < n && !shared; i++)
        zc_redis_args_int(&self->args, batch[i]->ttl_ms);
}

//  Saves entries [0, count) (count <= CACHE_WINDOW) in one script call, and
//  sets each entry's rc in order (so the message tells of the first failure).
static void s_save_window(zc_cache_t *self, zc_cache_entry_t *entries, size_t count)
{
    zc_cache_entry_t *batch[CACHE_WINDOW];
    const redisReply *refusals[CACHE_WINDOW];
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (s_save_ok(&entries[i])) batch[n++] = &entries[i];
    redisReply *reply = NULL;
    zc_error_t rc = ZC_OK;
    if (n) {
        s_save_args(self, batch, n);
        rc = s_call_window(self, n, 0, batch[0]->key, "save", &reply);
        if (!rc) rc = s_save_refusals(self, reply, n, refusals);
    }
    for (size_t i = 0, j = 0; i < count; i++) {
        zc_cache_entry_t *entry = &entries[i];
        if (j < n && batch[j] == entry) {
            entry->rc = rc            ? rc
                        : refusals[j] ? cache_status(self, refusals[j], entry->key, "save")
                                      : ZC_OK;
            j++;
        } else
            entry->rc = s_check_save(self, entry);
        s_entry_done(self, entry);
    }
    if (reply) freeReplyObject(reply);
}

//  A load window: the entries, and what Redis answered for each (by index).
typedef struct {
    zc_cache_entry_t *entries;
    size_t count;
    zc_cache_entry_t *batch[CACHE_WINDOW];   //  entries with a usable key
    zc_cache_entry_t *pending[CACHE_WINDOW]; //  entries for the load script
    size_t n, need;
    const redisReply *found[CACHE_WINDOW];  //  MGET: the value, or nil
    const redisReply *lock[CACHE_WINDOW];   //  MGET: the lock's owner, or nil
    const redisReply *status[CACHE_WINDOW]; //  the load script's answer
    redisReply *mget, *script;
} s_load_t;

//  Returns 1 if the MGET answer for an entry is a lock held by another node.
static int s_locked_by_other(zc_cache_t *self, const redisReply *lock)
{
    return lock->type == REDIS_REPLY_STRING && strcmp(lock->str, self->identity.node_id) != 0;
}

//  One MGET of every key's value and lock; keys found without a value and
//  not locked by another node go to the load script.
static zc_error_t s_load_mget(zc_cache_t *self, s_load_t *w)
{
    zc_redis_args_reset(&self->args);
    zc_redis_args_str(&self->args, "MGET");
    s_args_names(self, w->batch, w->n);
    zc_error_t rc = s_call_window(self, 2 * w->n, 1, w->batch[0]->key, "load", &w->mget);
    for (size_t j = 0; !rc && j < w->n; j++) {
        size_t i = (size_t)(w->batch[j] - w->entries);
        w->found[i] = w->mget->element[j];
        w->lock[i] = w->mget->element[w->n + j];
        if (w->found[i]->type == REDIS_REPLY_NIL && !s_locked_by_other(self, w->lock[i]))
            w->pending[w->need++] = w->batch[j];
    }
    return rc;
}

//  The load script for the pending entries (sliding, or no value found).
static zc_error_t s_load_script(zc_cache_t *self, s_load_t *w, int64_t slide_ms)
{
    zc_redis_args_eval(&self->args, cache_script(CACHE_LOAD), (int)(2 * w->need));
    s_args_names(self, w->pending, w->need);
    cache_args_owner(self, &self->args);
    zc_redis_args_int(&self->args, slide_ms);
    zc_error_t rc = s_call_window(self, w->need, 1, w->pending[0]->key, "load", &w->script);
    for (size_t j = 0; !rc && j < w->need; j++)
        w->status[w->pending[j] - w->entries] = w->script->element[j];
    return rc;
}

//  Sets entry i's rc (and value) from what Redis answered; rc is the
//  window's failure, if any.
static void s_load_result(zc_cache_t *self, s_load_t *w, size_t i, zc_error_t rc)
{
    zc_cache_entry_t *entry = &w->entries[i];
    const redisReply *status = w->status[i];
    if (!cache_key_ok(entry->key))
        entry->rc = cache_check_key(self, entry->key);
    else if (rc)
        entry->rc = rc;
    else if (status) {
        entry->rc = cache_status(self, status, entry->key, "load");
        if (!entry->rc)
            entry->rc = s_take_value(self, status->elements > 1 ? status->element[1] : NULL, entry);
    } else if (s_locked_by_other(self, w->lock[i]))
        entry->rc = cache_fail(self, ZC_ERR_LOCKED, "key '%.100s' is locked by node '%.255s'",
                               entry->key, w->lock[i]->str);
    else
        entry->rc = s_take_value(self, w->found[i], entry);
    s_entry_done(self, entry);
}

//  Loads entries [0, count) (count <= CACHE_WINDOW). Without sliding, one
//  MGET reads every key's lock and value at the same instant; keys it finds
//  no value for (missing, or another type) and sliding loads go through the
//  load script. Sets each entry's rc in order.
static void s_load_window(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                          int64_t slide_ms)
{
    s_load_t w;
    w.entries = entries;
    w.count = count;
    w.n = w.need = 0;
    w.mget = w.script = NULL;
    for (size_t i = 0; i < count; i++) {
        entries[i].value = NULL;
        entries[i].size = 0;
        w.found[i] = w.lock[i] = w.status[i] = NULL;
        if (cache_key_ok(entries[i].key)) w.batch[w.n++] = &entries[i];
    }
    zc_error_t rc = ZC_OK;
    if (w.n && slide_ms == 0)
        rc = s_load_mget(self, &w);
    else if (w.n) {
        memcpy(w.pending, w.batch, w.n * sizeof *w.batch);
        w.need = w.n;
    }
    if (!rc && w.need) rc = s_load_script(self, &w, slide_ms);
    for (size_t i = 0; i < count; i++)
        s_load_result(self, &w, i, rc);
    if (w.mget) freeReplyObject(w.mget);
    if (w.script) freeReplyObject(w.script);
}

//  Runs the window function over all entries; returns the first failure.
static zc_error_t s_batch(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                          int64_t slide_ms, int load)
{
    self->hold_errstr = 0;
    zc_error_t first = ZC_OK;
    for (size_t start = 0; start < count; start += CACHE_WINDOW) {
        size_t n = count - start < CACHE_WINDOW ? count - start : CACHE_WINDOW;
        if (load)
            s_load_window(self, entries + start, n, slide_ms);
        else
            s_save_window(self, entries + start, n);
        for (size_t i = start; i < start + n && !first; i++)
            first = entries[i].rc;
    }
    self->hold_errstr = 0;
    return first;
}

//  --------------------------------------------------------------------------
//  Save

int zc_cache_save(zc_cache_t *self, const char *key, const void *value, size_t size, int64_t ttl_ms)
{
    assert(self);
    assert(key);
    zc_cache_entry_t entry = {key, (void *)value, size, ttl_ms, ZC_OK};
    return cache_done(self, s_batch(self, &entry, 1, 0, 0));
}

int zc_cache_save_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count)
{
    assert(self);
    assert(entries || count == 0);
    for (size_t i = 0; i < count; i++)
        assert(entries[i].key);
    return cache_done(self, s_batch(self, entries, count, 0, 0));
}

//  --------------------------------------------------------------------------
//  Load

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

//  Loads one entry, waiting up to opts->wait_ms for another node's lock on
//  it to clear.
static zc_error_t s_load_waiting(zc_cache_t *self, zc_cache_entry_t *entry,
                                 const zc_cache_load_opts_t *opts)
{
    int64_t slide_ms = opts ? opts->slide_ms : 0;
    int64_t wait_ms = opts ? opts->wait_ms : 0;
    int64_t deadline = zclock_mono() + wait_ms;
    int64_t pause = 2;
    zc_error_t rc;
    //  A lock is waited out by polling: a lock lasts milliseconds to seconds,
    //  and polling needs nothing of Redis (no keyspace notifications).
    while ((rc = s_batch(self, entry, 1, slide_ms, 1)) == ZC_ERR_LOCKED) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) break;
        s_sleep_ms(pause < left ? pause : left);
        pause = pause * 2 > 50 ? 50 : pause * 2;
    }
    if (rc == ZC_ERR_LOCKED && wait_ms > 0) {
        size_t len = strlen(self->failure.text);
        snprintf(self->failure.text + len, sizeof self->failure.text - len,
                 " (waited %" PRId64 " ms)", wait_ms);
    }
    return rc;
}

int zc_cache_load(zc_cache_t *self, const char *key, const zc_cache_load_opts_t *opts,
                  void **value_p, size_t *size_p)
{
    assert(self);
    assert(key);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    zc_error_t rc = s_check_load_opts(self, opts);
    if (rc) return cache_done(self, rc);
    zc_cache_entry_t entry = {key, NULL, 0, 0, ZC_OK};
    rc = s_load_waiting(self, &entry, opts);
    *value_p = entry.value;
    *size_p = entry.size;
    return cache_done(self, rc);
}

//  After a batch load that found keys locked by other nodes, waits for each
//  in turn as zc_cache_load does. Returns the first failure, and leaves its
//  message: the batch kept the first failure other than a lock.
static zc_error_t s_wait_locked(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                                const zc_cache_load_opts_t *opts)
{
    char message[sizeof self->failure.text];
    snprintf(message, sizeof message, "%s", self->failure.text);
    zc_error_t first = ZC_OK;
    for (size_t i = 0; i < count; i++) {
        if (entries[i].rc == ZC_ERR_LOCKED) {
            entries[i].rc = s_load_waiting(self, &entries[i], opts);
            if (entries[i].rc && !first)
                snprintf(message, sizeof message, "%s", self->failure.text);
        }
        if (!first) first = entries[i].rc;
    }
    snprintf(self->failure.text, sizeof self->failure.text, "%s", message);
    return first;
}

int zc_cache_load_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                       const zc_cache_load_opts_t *opts)
{
    assert(self);
    assert(entries || count == 0);
    for (size_t i = 0; i < count; i++)
        assert(entries[i].key);
    if (s_check_load_opts(self, opts)) {
        for (size_t i = 0; i < count; i++) {
            entries[i].value = NULL;
            entries[i].size = 0;
            entries[i].rc = ZC_ERR_INVALID;
        }
        return cache_done(self, ZC_ERR_INVALID);
    }
    int waiting = opts && opts->wait_ms > 0;
    self->wait_locked = waiting;
    zc_error_t rc = s_batch(self, entries, count, opts ? opts->slide_ms : 0, 1);
    self->wait_locked = 0;
    if (rc && waiting) rc = s_wait_locked(self, entries, count, opts);
    return cache_done(self, rc);
}
