/*  zc_cache_restore — writing a checked dump into Redis in bounded slices,
    through a staging key space, so that no step stalls Redis and a restore
    that fails before its switch changes nothing.

    Why not one script: a script holds Redis for as long as it runs, and
    one script writing 500k keys held it for seconds, long enough for every
    node's registry lease to lapse. Here no Redis call touches more than
    CACHE_SLICE keys (a few hundred, about a millisecond of Redis time), and
    calls are pipelined S_PIPELINE at a time: Redis may read and run a whole
    round trip's calls before it serves another client, so that many calls
    bound its longest stall (a few ms), while the round trips stay few.

    The steps (docs/CACHE.md section 7 states the guarantees):
      sweep   remove what earlier restores left behind (below);
      begin   take a token, set its marker zc:{C}:restore:TOKEN (PX, renewed
              by every later call) and add the token to zc:{C}:restores;
      stage   write every record under zc:{C}:restore:TOKEN:KEY, a key space
              no reader, walk or dump looks at;
      check   check that no dumped key is locked by another node;
      switch  per key, atomically in its slice: drop the old key, RENAME the
              staging key into place, set its TTL (counted from then);
      finish  delete the marker, remove the token from the set.
    Until the switch begins, no cache key has changed, so a failure then
    (Redis lost, a lock, a marker gone) is all-or-nothing: the restore
    removes its staging keys and nothing was restored. A failure during the
    switch leaves each key whole, old or new. Locks taken by another node
    during the switch are honoured: the key keeps its state, the rest goes
    in, and the restore fails with LOCKED (as clear does).

    Leftovers: a restore that fails tries once to remove its staging keys;
    if Redis cannot be reached, its cache remembers the token and its next
    restore removes them first. Every restore also removes the staging keys
    of tokens in zc:{C}:restores whose marker has lapsed (their restore is
    dead: every step needs the marker, and nobody recreates it), so a
    process that died mid-restore is cleaned up after by the next restore
    of any node, once S_MARKER_TTL has passed.
*/
#include "zc_cache_internal.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PIPELINE    4       //  calls per round trip (Redis may read and run them in one go)
#define S_SLICE_ITEMS 1024    //  list items per staging call
#define S_SLICE_BYTES 262144  //  value bytes per staging call (one larger value goes alone)
#define S_MARKER_TTL  "30000" //  ms a restore's marker lives without a call renewing it
#define S_NAME_MAX    (CACHE_NAME_MAX + CACHE_TOKEN_LEN + 3) //  zc:{C}:restore:TOKEN:KEY

//  Where a step is: the next record, and the next item of that record.
typedef struct {
    size_t record, item;
} s_cursor_t;

typedef struct {
    zc_cache_t *cache;
    const cache_dump_file_t *dump;
    char token[CACHE_TOKEN_LEN + 1];
    zc_redis_args_t calls[S_PIPELINE]; //  the calls of the next round trip
    size_t first[S_PIPELINE];          //  each call's first record
    size_t keys[S_PIPELINE];           //  and number of records
    int queued;
    size_t end;         //  the running step stops before this record
    size_t staged;      //  records whose staging keys may exist: [0, staged)
    size_t switch_done; //  records whose switch call answered: [0, switch_done)
    int switching;      //  the switch began: cache keys may have changed
    size_t switched, kept;
    char kept_key[ZC_CACHE_KEY_MAX + 1]; //  the first key kept for a lock, and its owner
    char kept_owner[256];
} s_restore_t;

//  Builds one call from the cursor, moving it past what the call holds.
typedef void(s_build_fn)(s_restore_t *r, zc_redis_args_t *args, s_cursor_t *at);

//  Reads the reply to call number call of a round trip.
typedef zc_error_t(s_reply_fn)(s_restore_t *r, int call, const redisReply *reply);

//  --------------------------------------------------------------------------
//  Names

//  Appends the name of the restore token's marker ("zc:{C}:restore:TOKEN").
static void s_args_marker(zc_cache_t *self, zc_redis_args_t *args, const char *token)
{
    char name[S_NAME_MAX];
    int len = snprintf(name, sizeof name, "%srestore:%s", self->identity.prefix, token);
    zc_redis_args_add(args, name, (size_t)len);
}

//  Appends the staging name of key ("zc:{C}:restore:TOKEN:KEY").
static void s_args_stage(s_restore_t *r, zc_redis_args_t *args, const char *key)
{
    char name[S_NAME_MAX];
    int len =
        snprintf(name, sizeof name, "%srestore:%s:%s", r->cache->identity.prefix, r->token, key);
    zc_redis_args_add(args, name, (size_t)len < sizeof name ? (size_t)len : sizeof name - 1);
}

//  Appends the name of the set of running (or dead, not yet swept) restores.
static void s_args_restores(zc_cache_t *self, zc_redis_args_t *args)
{
    char name[S_NAME_MAX];
    int len = snprintf(name, sizeof name, "%srestores", self->identity.prefix);
    zc_redis_args_add(args, name, (size_t)len);
}

//  Returns 1 if text is a token as s_new_token makes them.
static int s_token_ok(const char *text, size_t len)
{
    if (len != CACHE_TOKEN_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", text[i]) || !text[i]) return 0;
    return 1;
}

//  Writes a fresh random token (CACHE_TOKEN_LEN hex digits) into token.
static void s_new_token(char *token)
{
    zuuid_t *uuid = zuuid_new();
    const byte *data = zuuid_data(uuid);
    for (int i = 0; i < CACHE_TOKEN_LEN / 2; i++)
        sprintf(token + 2 * i, "%02x", data[i]);
    zuuid_destroy(&uuid);
}

//  --------------------------------------------------------------------------
//  Slices and round trips

//  Sends the queued calls in one round trip and hands each answer to fn,
//  every one (Redis ran them all), the first failure giving the kind and
//  the message.
static zc_error_t s_flush(s_restore_t *r, s_reply_fn *fn)
{
    if (!r->queued) return ZC_OK;
    zc_cache_t *self = r->cache;
    zc_redis_args_t *calls[S_PIPELINE];
    redisReply *replies[S_PIPELINE];
    for (int i = 0; i < r->queued; i++)
        calls[i] = &r->calls[i];
    zc_error_t rc = cache_pipeline(self, calls, r->queued, replies, "restore");
    int held = self->hold_errstr;
    for (int i = 0; i < r->queued; i++) {
        if (!replies[i]) continue;
        if (replies[i]->type != REDIS_REPLY_ERROR) {
            self->hold_errstr = held || rc;
            zc_error_t one = fn(r, i, replies[i]);
            rc = rc ? rc : one;
        }
        freeReplyObject(replies[i]);
    }
    self->hold_errstr = held;
    r->queued = 0;
    return rc;
}

//  Reads an answer that needs no reading.
static zc_error_t s_reply_ignored(s_restore_t *r, int call, const redisReply *reply)
{
    return ZC_OK;
}

//  Runs a step over records [begin, end): builds calls with build, sends
//  them S_PIPELINE per round trip, and reads each reply with fn.
static zc_error_t s_run(s_restore_t *r, size_t begin, size_t end, s_build_fn *build, s_reply_fn *fn)
{
    s_cursor_t at = {begin, 0};
    r->end = end;
    zc_error_t rc = ZC_OK;
    while (!rc && at.record < end) {
        int call = r->queued++;
        r->first[call] = at.record;
        build(r, &r->calls[call], &at);
        r->keys[call] = at.record - r->first[call];
        if (r->queued == S_PIPELINE) rc = s_flush(r, fn);
    }
    if (!rc) rc = s_flush(r, fn);
    return rc;
}

//  The record a step's answer {status, info, i} names, i counting from 1
//  in its call; NULL if it names none.
static const char *s_named_key(s_restore_t *r, int call, const redisReply *reply)
{
    if (reply->elements < 3 || reply->element[2]->type != REDIS_REPLY_INTEGER) return NULL;
    long long i = reply->element[2]->integer;
    if (i < 1 || (size_t)i > r->keys[call]) return NULL;
    return r->dump->records[r->first[call] + (size_t)i - 1].key;
}

//  Turns a step's answer into a kind: a status of its own, or the cache's.
static zc_error_t s_status(s_restore_t *r, int call, const redisReply *reply)
{
    zc_cache_t *self = r->cache;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to restore");
    const char *key = s_named_key(r, call, reply);
    switch (reply->element[0]->integer) {
    case CACHE_STATUS_LAPSED:
        return cache_fail(self, ZC_ERR_STATE,
                          "restore %s lost its marker (no call for %s ms, or Redis lost it)",
                          r->token, S_MARKER_TTL);
    case CACHE_STATUS_UNSTAGED:
        return cache_fail(self, ZC_ERR_STATE,
                          "the staged copy of key '%.100s' vanished before it was switched in",
                          key ? key : "?");
    default:
        return cache_status(self, reply, key ? key : "*", "restore");
    }
}

//  Reads a reply that only says done or not.
static zc_error_t s_reply_done(s_restore_t *r, int call, const redisReply *reply)
{
    return s_status(r, call, reply);
}

//  --------------------------------------------------------------------------
//  Stage: every record under its staging name

//  Moves the cursor past the items one staging call takes from it, writing
//  each entry (record, first item, end item) to entries; returns how many.
static size_t s_plan(const cache_dump_file_t *dump, size_t end, s_cursor_t *at,
                     size_t (*entries)[3])
{
    size_t n = 0, items = 0, bytes = 0;
    while (at->record < end && n < CACHE_SLICE) {
        const cache_record_t *record = &dump->records[at->record];
        size_t from = at->item;
        //  At least one item per call; past that, within the slice's bounds.
        while (at->item < record->count) {
            size_t size = dump->item_sizes[record->first + at->item];
            if (items && (items == S_SLICE_ITEMS || bytes + size > S_SLICE_BYTES)) break;
            items++;
            bytes += size;
            at->item++;
        }
        if (at->item > from) {
            entries[n][0] = at->record;
            entries[n][1] = from;
            entries[n++][2] = at->item;
        }
        if (at->item < record->count) break; //  the call is full
        at->record++;
        at->item = 0;
    }
    return n;
}

//  Builds a staging call: KEYS marker and staging names, ARGV as
//  CACHE_RESTORE_STAGE reads them.
static void s_build_stage(s_restore_t *r, zc_redis_args_t *args, s_cursor_t *at)
{
    const cache_dump_file_t *dump = r->dump;
    size_t entries[CACHE_SLICE][3];
    size_t n = s_plan(dump, r->end, at, entries);
    r->staged = at->record + (at->item > 0);
    zc_redis_args_eval(args, cache_script(CACHE_RESTORE_STAGE), (int)n + 1);
    s_args_marker(r->cache, args, r->token);
    for (size_t i = 0; i < n; i++)
        s_args_stage(r, args, dump->records[entries[i][0]].key);
    zc_redis_args_str(args, S_MARKER_TTL);
    for (size_t i = 0; i < n; i++) {
        const cache_record_t *record = &dump->records[entries[i][0]];
        zc_redis_args_str(args, record->is_list ? "list" : "value");
        zc_redis_args_int(args, (int64_t)(entries[i][2] - entries[i][1]));
        for (size_t j = record->first + entries[i][1]; j < record->first + entries[i][2]; j++)
            zc_redis_args_add(args, dump->items[j], dump->item_sizes[j]);
    }
}

//  --------------------------------------------------------------------------
//  Check and switch, CACHE_SLICE records per call

//  Moves the cursor past one call's records; returns the first.
static size_t s_take(s_restore_t *r, s_cursor_t *at)
{
    size_t first = at->record;
    size_t left = r->end - first;
    at->record += left < CACHE_SLICE ? left : CACHE_SLICE;
    return first;
}

//  Builds a check call: the marker and one call's worth of locks.
static void s_build_check(s_restore_t *r, zc_redis_args_t *args, s_cursor_t *at)
{
    size_t first = s_take(r, at);
    zc_redis_args_eval(args, cache_script(CACHE_RESTORE_CHECK), (int)(at->record - first) + 1);
    s_args_marker(r->cache, args, r->token);
    for (size_t i = first; i < at->record; i++)
        cache_args_name(r->cache, args, "lock", r->dump->records[i].key);
    zc_redis_args_str(args, S_MARKER_TTL);
    cache_args_owner(r->cache, args);
}

//  Builds a switch call: the marker, then per record its staging name, name
//  and lock; ARGV the owner and every record's TTL.
static void s_build_switch(s_restore_t *r, zc_redis_args_t *args, s_cursor_t *at)
{
    size_t first = s_take(r, at);
    zc_redis_args_eval(args, cache_script(CACHE_RESTORE_SWITCH), 3 * (int)(at->record - first) + 1);
    s_args_marker(r->cache, args, r->token);
    for (size_t i = first; i < at->record; i++) {
        const char *key = r->dump->records[i].key;
        s_args_stage(r, args, key);
        cache_args_name(r->cache, args, "cache", key);
        cache_args_name(r->cache, args, "lock", key);
    }
    zc_redis_args_str(args, S_MARKER_TTL);
    cache_args_owner(r->cache, args);
    for (size_t i = first; i < at->record; i++)
        zc_redis_args_int(args, r->dump->records[i].ttl);
}

//  Reads a switch call's {0, switched, kept, first kept, its owner}.
static zc_error_t s_reply_switch(s_restore_t *r, int call, const redisReply *reply)
{
    zc_error_t rc = s_status(r, call, reply);
    if (rc) return rc;
    if (reply->elements != 5 || reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER ||
        reply->element[3]->type != REDIS_REPLY_INTEGER ||
        reply->element[4]->type != REDIS_REPLY_STRING)
        return cache_fail(r->cache, ZC_ERR_REDIS, "unexpected reply from Redis to restore");
    r->switched += (size_t)reply->element[1]->integer;
    long long kept = reply->element[2]->integer, first = reply->element[3]->integer;
    if (kept > 0 && !r->kept && first >= 1 && (size_t)first <= r->keys[call]) {
        snprintf(r->kept_key, sizeof r->kept_key, "%s",
                 r->dump->records[r->first[call] + (size_t)first - 1].key);
        snprintf(r->kept_owner, sizeof r->kept_owner, "%s", reply->element[4]->str);
    }
    r->kept += (size_t)kept;
    //  switch_done only grows over calls that all switched: after a failed
    //  call in the same round trip, its slice and the ones after it stay for
    //  s_abort to clean (unlinking a staging key already switched is a no-op).
    if (r->first[call] == r->switch_done) r->switch_done = r->first[call] + r->keys[call];
    return ZC_OK;
}

//  --------------------------------------------------------------------------
//  Begin, finish, clean up

//  Sends count plain commands built in r->calls[0..count); returns ZC_OK
//  if Redis ran them all.
static zc_error_t s_send(s_restore_t *r, int count)
{
    r->queued = count;
    return s_flush(r, s_reply_ignored);
}

//  Sets the marker (first: a token in the set without a marker is taken
//  for dead) and adds the token to the set of restores.
static zc_error_t s_begin(s_restore_t *r)
{
    zc_cache_t *self = r->cache;
    zc_redis_args_reset(&r->calls[0]);
    zc_redis_args_str(&r->calls[0], "SET");
    s_args_marker(self, &r->calls[0], r->token);
    cache_args_owner(self, &r->calls[0]);
    zc_redis_args_str(&r->calls[0], "PX");
    zc_redis_args_str(&r->calls[0], S_MARKER_TTL);
    zc_redis_args_reset(&r->calls[1]);
    zc_redis_args_str(&r->calls[1], "SADD");
    s_args_restores(self, &r->calls[1]);
    zc_redis_args_str(&r->calls[1], r->token);
    return s_send(r, 2);
}

//  Deletes the token's marker and removes it from the set.
static void s_build_end(zc_cache_t *self, zc_redis_args_t *calls, const char *token)
{
    zc_redis_args_reset(&calls[0]);
    zc_redis_args_str(&calls[0], "DEL");
    s_args_marker(self, &calls[0], token);
    zc_redis_args_reset(&calls[1]);
    zc_redis_args_str(&calls[1], "SREM");
    s_args_restores(self, &calls[1]);
    zc_redis_args_str(&calls[1], token);
}

//  Remembers a token whose staging keys may remain, for the next restore.
static void s_remember(zc_cache_t *self, const char *token)
{
    if (self->stale_count == CACHE_STALE_MAX) { //  the oldest goes once its marker lapses
        memmove(self->stale[0], self->stale[1], sizeof self->stale[0] * (CACHE_STALE_MAX - 1));
        self->stale_count--;
    }
    snprintf(self->stale[self->stale_count++], sizeof self->stale[0], "%s", token);
}

//  Builds an UNLINK of one call's worth of staging names.
static void s_build_unlink(s_restore_t *r, zc_redis_args_t *args, s_cursor_t *at)
{
    size_t first = s_take(r, at);
    zc_redis_args_reset(args);
    zc_redis_args_str(args, "UNLINK");
    for (size_t i = first; i < at->record; i++)
        s_args_stage(r, args, r->dump->records[i].key);
}

//  After a failure: removes the staging keys that may exist, the marker
//  and the token, keeping the failure's message; if Redis cannot be
//  reached, remembers the token for the next restore.
static void s_abort(s_restore_t *r)
{
    zc_cache_t *self = r->cache;
    int held = self->hold_errstr;
    self->hold_errstr = 1;
    r->queued = 0;
    zc_error_t rc = s_run(r, r->switch_done, r->staged, s_build_unlink, s_reply_ignored);
    if (!rc) {
        s_build_end(self, r->calls, r->token);
        rc = s_send(r, 2);
    }
    if (rc) s_remember(self, r->token);
    self->hold_errstr = held;
}

//  --------------------------------------------------------------------------
//  Sweep: what earlier restores left behind

//  Removes one SCAN batch of a dead restore's staging keys.
static zc_error_t s_unlink_batch(zc_cache_t *self, const redisReply **names, size_t count,
                                 void *arg)
{
    zc_redis_args_reset(&self->args);
    zc_redis_args_str(&self->args, "UNLINK");
    for (size_t i = 0; i < count; i++)
        zc_redis_args_add(&self->args, names[i]->str, names[i]->len);
    return cache_call(self, &self->args, "*", "restore", NULL);
}

//  Removes a dead restore's staging keys (SCAN, in slices), then its marker
//  and token; with force, also if its marker is still there (a restore of
//  this cache that failed).
static zc_error_t s_sweep_token(s_restore_t *r, const char *token, int force)
{
    zc_cache_t *self = r->cache;
    zc_redis_args_t *args = &r->calls[0];
    zc_redis_args_reset(args);
    zc_redis_args_str(args, force ? "DEL" : "EXISTS");
    s_args_marker(self, args, token);
    redisReply *reply = NULL;
    zc_error_t rc = cache_call(self, args, "*", "restore", &reply);
    int live = !rc && !force && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
    if (reply) freeReplyObject(reply);
    if (rc || live) return rc;
    char match[2 * ZC_PREFIX_MAX + CACHE_TOKEN_LEN + 16];
    snprintf(match, sizeof match, "%.*srestore:%s:*", (int)self->match_prefix_len, self->match,
             token);
    rc = cache_scan(self, match, s_unlink_batch, NULL);
    if (!rc) {
        s_build_end(self, r->calls, token);
        rc = s_send(r, 2);
    }
    return rc;
}

//  Sweeps this cache's failed restores, then every dead one in the set.
static zc_error_t s_sweep(s_restore_t *r)
{
    zc_cache_t *self = r->cache;
    zc_error_t rc = ZC_OK;
    while (!rc && self->stale_count) {
        rc = s_sweep_token(r, self->stale[self->stale_count - 1], 1);
        if (!rc) self->stale_count--;
    }
    zc_redis_args_t *args = &r->calls[0];
    zc_redis_args_reset(args);
    zc_redis_args_str(args, "SMEMBERS");
    s_args_restores(self, args);
    redisReply *tokens = NULL;
    if (!rc) rc = cache_call(self, args, "*", "restore", &tokens);
    if (!rc && tokens->type != REDIS_REPLY_ARRAY)
        rc = cache_fail(self, ZC_ERR_TYPE, "%srestores is not a set", self->identity.prefix);
    for (size_t i = 0; !rc && i < tokens->elements; i++) {
        const redisReply *token = tokens->element[i];
        if (token->type == REDIS_REPLY_STRING && s_token_ok(token->str, token->len))
            rc = s_sweep_token(r, token->str, 0);
        else { //  not a token of ours: it names no staging keys
            zc_redis_args_reset(args);
            zc_redis_args_str(args, "SREM");
            s_args_restores(self, args);
            zc_redis_args_add(args, token->str, token->len);
            rc = cache_call(self, args, "*", "restore", NULL);
        }
    }
    if (tokens) freeReplyObject(tokens);
    return rc;
}

//  --------------------------------------------------------------------------
//  The restore

//  Ends a restore that went through: deletes the marker and the token. If
//  Redis does not answer now, everything is in place all the same; the
//  marker lapses and the next restore drops the token.
static void s_finish(s_restore_t *r)
{
    zc_cache_t *self = r->cache;
    s_build_end(self, r->calls, r->token);
    int held = self->hold_errstr;
    self->hold_errstr = 1;
    if (s_send(r, 2)) s_remember(self, r->token);
    self->hold_errstr = held;
}

//  Says in the message what changed, and returns the restore's outcome.
static zc_error_t s_outcome(s_restore_t *r, zc_error_t rc)
{
    if (!rc && r->kept)
        return cache_fail(r->cache, ZC_ERR_LOCKED,
                          "key '%.100s' is locked by node '%.255s' (it and %zu other locked keys "
                          "kept their state; the %zu other keys were restored)",
                          r->kept_key, r->kept_owner, r->kept - 1, r->switched);
    if (rc && !r->switching)
        cache_note(r->cache, "; nothing was restored");
    else if (rc)
        cache_note(r->cache,
                   "; the restore stopped after switching at least %zu of %zu keys into place "
                   "(each key holds its old or its new state)",
                   r->switched, r->dump->record_count);
    return rc;
}

zc_error_t cache_restore_apply(zc_cache_t *self, const cache_dump_file_t *dump, size_t *restored)
{
    s_restore_t *r = (s_restore_t *)calloc(1, sizeof(s_restore_t));
    assert(r);
    r->cache = self;
    r->dump = dump;
    s_new_token(r->token);
    size_t n = dump->record_count;
    zc_error_t rc = s_sweep(r);
    if (!rc && n) {
        rc = s_begin(r); //  from here on, a failure cleans up after itself
        if (!rc) rc = s_run(r, 0, n, s_build_stage, s_reply_done);
        if (!rc) rc = s_run(r, 0, n, s_build_check, s_reply_done);
        r->switching = !rc;
        if (!rc) rc = s_run(r, 0, n, s_build_switch, s_reply_switch);
        if (rc)
            s_abort(r);
        else
            s_finish(r);
    }
    rc = s_outcome(r, rc);
    *restored = r->switched;
    for (int i = 0; i < S_PIPELINE; i++)
        zc_redis_args_free(&r->calls[i]);
    free(r);
    return rc;
}
