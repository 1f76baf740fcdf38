/*  zc_cache — the cluster's shared cache in Redis: values with TTLs, lists,
    locks owned by a node, and dump/restore to a file.

    Values are msgpack bytes (one well-formed msgpack object each) so peers in
    any language read them. Everything lives under the cluster's prefix,
    `zc:{CLUSTER}:cache:KEY` for values and lists and `zc:{CLUSTER}:lock:KEY`
    for locks (whose value is the owning node's id); the hash tag keeps one
    cluster in one Redis Cluster slot.

    Locks are advisory for other nodes' writes: while another node holds the
    lock on KEY, save, destroy and load of KEY fail with ZC_ERR_LOCKED (load
    can wait for the lock to clear). The lock's owner, and nodes that do not
    use the lock, are not slowed down. Lists (push/pop/length) are queues and
    ignore locks. A check and the write it guards are always one Lua script,
    so another client cannot act between them. Bulk operations (clear,
    restore) go in slices of at most 256 keys per call, so none holds Redis
    for more than a few milliseconds however large the cache.

    Errors follow zc_error.h: every call that can fail returns 0, or -1 and
    leaves the reason on the object, zc_cache_error(self) the kind
    (ZC_ERR_MISSING, ZC_ERR_LOCKED, ZC_ERR_TYPE, ZC_ERR_INVALID, ZC_ERR_REDIS,
    ZC_ERR_TIMEOUT, ZC_ERR_CORRUPT, ZC_ERR_IO; below, "fails with MISSING"
    means that kind) and zc_cache_errstr(self) the message. A call that
    succeeds sets ZC_OK and an empty message. Values come back through the
    pointer arguments.

    A cache object belongs to one thread at a time. zc_cache_new does not
    connect: the first operation does. A Redis that cannot be reached, or a
    lost connection, fails the operation in progress with ZC_ERR_REDIS; a
    later operation connects again, once the Redis layer's backoff (100 ms
    doubling to 1 s after each failed attempt) allows. A failed operation is
    not retried, since it may have reached Redis. Connecting sets SIGPIPE to
    be ignored if it has its default action, so a lost Redis connection fails
    a call rather than killing the process.

    Needs Redis 6.2 or later (SET ... GET, fractional BLPOP timeouts). The
    dump file format and the command-line console are described in
    docs/CACHE.md.
*/
#ifndef ZC_CACHE_H_INCLUDED
#define ZC_CACHE_H_INCLUDED

#include "zc_error.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zc_cache_t zc_cache_t;

//  Longest key, in bytes (keys are C strings, without NUL).
#define ZC_CACHE_KEY_MAX 1024

//  Options for zc_cache_load; a NULL pointer means all zero.
typedef struct {
    int64_t slide_ms; //  > 0: a value that has a TTL gets this TTL again from now
    int64_t wait_ms;  //  > 0: wait up to this long for another node's lock to clear
} zc_cache_load_opts_t;

//  One entry of a pipelined batch (zc_cache_save_many / zc_cache_load_many).
typedef struct {
    const char *key;
    void *value;    //  save: the msgpack bytes (not modified); load: set to a
                    //  malloc'd copy the caller frees, or NULL on failure
    size_t size;    //  size of value in bytes
    int64_t ttl_ms; //  save: expiry in ms, 0 for none; load: unused
    zc_error_t rc;  //  out: ZC_OK or the kind of this entry's failure
} zc_cache_entry_t;

//  Creates a cache on the Redis at redis_url (NULL: $ZC_REDIS_URL) for
//  cluster (NULL: $ZC_CLUSTER, else "zcluster") as node owner_id (NULL:
//  $ZC_NODE_ID, else a generated id), the defaults of every cluster-plane
//  object. Names follow zc_wire_name_valid; a cluster name has no '{' or '}'.
//  Does not connect (the first operation does), so it fails only on bad
//  arguments: it returns NULL, after logging which (zc_log, an error), if
//  there is no Redis URL or it is malformed, or a name is invalid.
zc_cache_t *zc_cache_new(const char *redis_url, const char *cluster, const char *owner_id);

//  Closes the connections, frees the cache and sets *self_p to NULL; idempotent.
void zc_cache_destroy(zc_cache_t **self_p);

//  Returns the node id that owns this cache's locks.
const char *zc_cache_owner(zc_cache_t *self);

//  Returns the cluster name.
const char *zc_cache_cluster(zc_cache_t *self);

//  Returns the kind of the last call's failure, ZC_OK if it succeeded.
zc_error_t zc_cache_error(zc_cache_t *self);

//  Returns the message of the last call's failure ("" if it succeeded),
//  owned by the cache and valid until its next call.
const char *zc_cache_errstr(zc_cache_t *self);

//  Stores value (size bytes, one msgpack object) under key, replacing a value
//  already there, with an expiry of ttl_ms (0: none). Fails with LOCKED if
//  another node holds key's lock, TYPE if key holds a list (or its lock key
//  holds something other than a node id).
int zc_cache_save(zc_cache_t *self, const char *key, const void *value, size_t size,
                  int64_t ttl_ms);

//  Loads key's value into *value_p (malloc'd, the caller frees) and *size_p.
//  Fails with MISSING, TYPE (a list), LOCKED (after opts->wait_ms), or CORRUPT
//  if the stored bytes are not one msgpack object. A lock key that holds
//  something other than a node id does not stop a load.
int zc_cache_load(zc_cache_t *self, const char *key, const zc_cache_load_opts_t *opts,
                  void **value_p, size_t *size_p);

//  Removes key (a value or a list). Fails with MISSING if absent, LOCKED if
//  another node holds its lock. The lock itself, if any, is left to its owner.
int zc_cache_destroy_key(zc_cache_t *self, const char *key);

//  Sets *ttl_ms_p to key's remaining time to live in ms, or -1 if it never
//  expires. Fails with MISSING if absent.
int zc_cache_ttl(zc_cache_t *self, const char *key, int64_t *ttl_ms_p);

//  Appends value (one msgpack object) to the list at key, creating it.
//  Fails with TYPE if key holds a value.
int zc_cache_push(zc_cache_t *self, const char *key, const void *value, size_t size);

//  Removes the list's first item into *value_p (malloc'd, the caller frees)
//  and *size_p. Fails with MISSING if the list is empty or absent.
int zc_cache_pop(zc_cache_t *self, const char *key, void **value_p, size_t *size_p);

//  As zc_cache_pop, but waits up to timeout_ms (> 0) for an item, on a
//  connection of its own; fails with TIMEOUT if none came.
int zc_cache_pop_wait(zc_cache_t *self, const char *key, int64_t timeout_ms, void **value_p,
                      size_t *size_p);

//  Sets *length_p to the number of items in the list at key (0 if absent).
int zc_cache_length(zc_cache_t *self, const char *key, size_t *length_p);

//  Takes key's lock for this node for ttl_ms (> 0), or extends it if this
//  node holds it already. Fails with LOCKED if another node holds it.
int zc_cache_lock(zc_cache_t *self, const char *key, int64_t ttl_ms);

//  Releases key's lock. Fails with MISSING if nobody holds it (it may have
//  expired), LOCKED if another node holds it.
int zc_cache_unlock(zc_cache_t *self, const char *key);

//  Sets *owner_p to a malloc'd copy of the id of the node holding key's lock
//  (the caller frees), or NULL if it is not locked. Fails with TYPE if the
//  lock key holds something other than a node id.
int zc_cache_locked(zc_cache_t *self, const char *key, char **owner_p);

//  Lists the keys matching pattern (a Redis glob over the key, NULL for all)
//  into *keys_p, a NULL-terminated array freed with zc_cache_keys_free, and
//  *count_p. Uses SCAN: keys changed meanwhile may or may not be listed.
int zc_cache_keys(zc_cache_t *self, const char *pattern, char ***keys_p, size_t *count_p);

//  Frees an array from zc_cache_keys and sets *keys_p to NULL; idempotent.
void zc_cache_keys_free(char ***keys_p);

//  One lock as zc_cache_locks lists it.
typedef struct {
    char *key;      //  the cache key it locks
    char *owner;    //  the node holding it ("" if the lock key holds another type)
    int64_t ttl_ms; //  time left; -1 if it never expires (written by hand)
} zc_cache_lock_info_t;

//  Lists the locks held on keys matching pattern (as zc_cache_keys; NULL
//  for all), with owner and time left, sorted by key, into *locks_p (freed with
//  zc_cache_locks_free) and *count_p. zc_cache_keys lists values and lists
//  only: a lock is not a key of the cache but a claim on one. Uses SCAN.
int zc_cache_locks(zc_cache_t *self, const char *pattern, zc_cache_lock_info_t **locks_p,
                   size_t *count_p);

//  Frees an array from zc_cache_locks and sets *locks_p to NULL; idempotent.
void zc_cache_locks_free(zc_cache_lock_info_t **locks_p, size_t count);

//  Sets *count_p to the number of keys (values and lists) in the cache.
int zc_cache_size(zc_cache_t *self, size_t *count_p);

//  Removes every value and list, except keys locked by another node, and sets
//  *removed_p (may be NULL) to how many went: one SCAN batch at a time, at
//  most 256 keys per script call. Fails with LOCKED, after removing the
//  rest, if some keys were kept for that reason.
int zc_cache_clear(zc_cache_t *self, size_t *removed_p);

//  Writes every value and list, with its remaining TTL, to path (replaced
//  atomically by a rename) and sets *count_p (may be NULL) to the number of
//  keys written. Locks are not dumped.
int zc_cache_dump(zc_cache_t *self, const char *path, size_t *count_p);

//  Reads a dump from path and writes its keys, replacing what is there, with
//  the TTLs they had left (counted from when each key is switched in); other
//  keys are left alone. The whole file is checked first: a damaged file
//  (CORRUPT) changes nothing. The keys are then staged out of readers' sight
//  and switched into place, at most 256 keys per Redis call, so Redis is
//  never held for more than a few milliseconds. A failure before the switch
//  (LOCKED: a dumped key locked by another node; TYPE; REDIS; STATE)
//  changes nothing. During the switch each key is replaced whole: a
//  failure there (REDIS) leaves every key old or new, and a lock another
//  node took meanwhile keeps that key as it was and fails with LOCKED after
//  the rest went in. Sets *count_p (may be NULL) to the number of keys
//  switched in. docs/CACHE.md section 7 has the guarantees in full.
int zc_cache_restore(zc_cache_t *self, const char *path, size_t *count_p);

//  Saves count entries (key, value, size, ttl_ms), one round trip per 512
//  keys. Sets each entry's rc; returns 0 if all succeeded, else -1 with the
//  first failing entry's kind and message on the cache.
int zc_cache_save_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count);

//  Loads count entries by key, one round trip per 512 keys (more for keys
//  that are missing, of another type or locked with opts->wait_ms), setting
//  each entry's value (malloc'd, the caller frees; NULL on failure), size and
//  rc; opts as zc_cache_load. Returns 0 if all succeeded, else -1 with the
//  first failing entry's kind and message on the cache.
int zc_cache_load_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                       const zc_cache_load_opts_t *opts);

//  Operations of this cache object since it was created: every public call
//  that reaches an outcome, and those that failed (any kind).
typedef struct {
    uint64_t ops, failed;
} zc_cache_stats_t;

//  Copies the counters into *stats.
void zc_cache_stats(zc_cache_t *self, zc_cache_stats_t *stats);

//  Returns 1 if data (size bytes) is exactly one well-formed msgpack object.
int zc_cache_msgpack_valid(const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif
