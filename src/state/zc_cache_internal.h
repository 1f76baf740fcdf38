/*  zc_cache_internal — what the zc_cache files share (private to libzcluster).

    The cache is one class in several files, one concept each:
      zc_cache.c          the object, its errors, Redis names and replies;
                          destroy, ttl, lists and locks
      zc_cache_values.c   save and load, one key or a pipelined batch
      zc_cache_walk.c     walking the cache with SCAN: keys, size, clear
      zc_cache_locks.c    listing the locks, with owner and time left
      zc_cache_dump.c     the dump file: writing it, reading and checking it
      zc_cache_restore.c  writing a checked dump into Redis, in slices
      zc_cache_scripts.c  the Lua scripts
    and zc_msgpack_check.c reads the untrusted msgpack they all handle.

    Inside these files a step returns a zc_error_t (ZC_OK or the kind of its
    failure, with the message recorded by cache_fail); a public function
    turns the kind into 0 / -1 with cache_done, which leaves it on the object.
*/
#ifndef ZC_CACHE_INTERNAL_H_INCLUDED
#define ZC_CACHE_INTERNAL_H_INCLUDED

#include "zc_cache.h"
#include "zc_error.h"
#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_redis.h"

#include <stddef.h>
#include <stdint.h>

#define CACHE_TIMEOUT_MS 5000               //  connect and command timeout
#define CACHE_WINDOW     512                //  keys per round trip in a batch
#define CACHE_TTL_MAX    1000000000000000LL //  ms; keeps now + ttl far from overflow
#define CACHE_ARGS_KEEP  (1024 * 1024)      //  argument bytes kept for reuse after a call
#define CACHE_NAME_MAX   (ZC_PREFIX_MAX + 6 + ZC_CACHE_KEY_MAX) //  "zc:{C}:cache:KEY" + NUL
//  Most keys one script call of a bulk operation (clear, restore) touches:
//  a few hundred keys keep each call to about a millisecond of Redis time.
#define CACHE_SLICE     256
#define CACHE_TOKEN_LEN 16 //  hex digits of a restore's token
#define CACHE_STALE_MAX 4  //  failed restores a cache remembers to clean up after

//  The scripts (zc_cache_scripts.c).
typedef enum {
    CACHE_SAVE,
    CACHE_SAVE_ONE,
    CACHE_LOAD,
    CACHE_DESTROY,
    CACHE_LOCK,
    CACHE_UNLOCK,
    CACHE_CLEAR,
    CACHE_DUMP,
    CACHE_RESTORE_STAGE,
    CACHE_RESTORE_CHECK,
    CACHE_RESTORE_SWITCH,
    CACHE_SCRIPTS
} cache_script_id_t;

//  What a script answers for a key (the first element of {status, ...}).
typedef enum {
    CACHE_STATUS_DONE = 0,
    CACHE_STATUS_MISSING = 1,
    CACHE_STATUS_LOCKED = 2,    //  with the owner
    CACHE_STATUS_WRONGTYPE = 3, //  with the type's name
    CACHE_STATUS_BADLOCK = 4,   //  the lock key holds another type
    CACHE_STATUS_LAPSED = 5,    //  a restore's marker is gone (see zc_cache_restore.c)
    CACHE_STATUS_UNSTAGED = 6   //  a restore's staging key is gone
} cache_status_t;

struct _zc_cache_t {
    zc_identity_t identity;            //  cluster, key prefix, Redis URL, owner (node_id)
    zc_redis_t *redis;                 //  commands and scripts
    zc_redis_t *blocking;              //  blocking pops; NULL until needed
    zc_redis_args_t args;              //  the command being built, reused between calls
    char match[2 * ZC_PREFIX_MAX + 8]; //  prefix + "cache:", glob-escaped for SCAN
    size_t names_prefix_len;           //  strlen("zc:{C}:cache:")
    zc_failure_t failure;              //  the last call's outcome
    int hold_errstr;                   //  set while a batch keeps its first failure's message
    int wait_locked;         //  a batch load that will wait out locks: LOCKED does not hold
    size_t match_prefix_len; //  length of the escaped key prefix at the start of match
    //  Tokens of this cache's restores that failed and could not remove
    //  their staging keys: the next restore removes them at once.
    char stale[CACHE_STALE_MAX][CACHE_TOKEN_LEN + 1];
    int stale_count;
    zc_cache_stats_t stats; //  counted by cache_done
};

//  Returns the script id's zc_script_t (SHA computed on first use).
const zc_script_t *cache_script(cache_script_id_t id);

//  Records a failure message (unless a batch holds an earlier one); returns kind.
zc_error_t cache_fail(zc_cache_t *self, zc_error_t kind, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

//  Ends a public call: leaves kind on the object (and clears the message on
//  success); returns 0 for ZC_OK, else -1.
int cache_done(zc_cache_t *self, zc_error_t kind);

//  Returns ZC_OK if key is usable, else records why and returns ZC_ERR_INVALID.
zc_error_t cache_check_key(zc_cache_t *self, const char *key);

//  Returns 1 if key is usable (cache_check_key without a message).
int cache_key_ok(const char *key);

//  Writes the Redis name of key in space ("cache" or "lock") into buf
//  (CACHE_NAME_MAX bytes); returns buf.
const char *cache_name(zc_cache_t *self, char *buf, const char *space, const char *key);

//  Appends the Redis name of key in space to args.
void cache_args_name(zc_cache_t *self, zc_redis_args_t *args, const char *space, const char *key);

//  Appends this cache's owner id to args.
void cache_args_owner(zc_cache_t *self, zc_redis_args_t *args);

//  Sends args on the command connection and checks the reply: no reply
//  (Redis unreachable) is ZC_ERR_REDIS, an error reply ZC_ERR_TYPE for
//  WRONGTYPE, else ZC_ERR_REDIS. On ZC_OK *reply_p (may be NULL) holds the
//  reply for the caller to read and free; otherwise it is freed.
zc_error_t cache_call(zc_cache_t *self, zc_redis_args_t *args, const char *key, const char *op,
                      redisReply **reply_p);

//  Sends count commands in one round trip (zc_redis_pipeline) and checks
//  the replies as cache_call does, the first failure giving the kind.
//  replies[0..count) hold the replies whatever the outcome (all NULL if
//  Redis could not be reached), for the caller to read and free.
zc_error_t cache_pipeline(zc_cache_t *self, zc_redis_args_t **args, int count, redisReply **replies,
                          const char *op);

//  Appends text to the last failure's message (unless a batch holds it).
void cache_note(zc_cache_t *self, const char *format, ...) __attribute__((format(printf, 2, 3)));

//  Turns one {status, info} answer of a script into a kind.
zc_error_t cache_status(zc_cache_t *self, const redisReply *status, const char *key,
                        const char *op);

//  cache_call for a script that answers one {status, ...}: ZC_OK when the
//  status is done.
zc_error_t cache_run(zc_cache_t *self, zc_redis_args_t *args, const char *key, const char *op,
                     redisReply **reply_p);

//  Frees the reused argument list's memory if a large call grew it.
void cache_args_trim(zc_cache_t *self);

//  Called with each batch of full Redis names a SCAN returned, deduplicated.
typedef zc_error_t(cache_walk_fn)(zc_cache_t *self, const redisReply **names, size_t count,
                                  void *arg);

//  SCANs the names under the cache prefix that match pattern (a glob over
//  the key; NULL for all) and hands them to fn in batches of at most
//  CACHE_SLICE, stopping at the first failure.
zc_error_t cache_walk(zc_cache_t *self, const char *pattern, cache_walk_fn *fn, void *arg);

//  The same for every Redis name matching match (a full glob, already
//  escaped), whatever its form.
zc_error_t cache_scan(zc_cache_t *self, const char *match, cache_walk_fn *fn, void *arg);

//  --------------------------------------------------------------------------
//  A dump file, read and checked (zc_cache_dump.c), to restore
//  (zc_cache_restore.c)

typedef struct {
    char *key;    //  NUL-terminated copy
    int is_list;  //  else a value
    int64_t ttl;  //  ms, -1 for none
    size_t first; //  index of the first item in the item arrays
    size_t count; //  items (1 for a value)
} cache_record_t;

typedef struct {
    uint8_t *file; //  the whole file
    size_t size;
    cache_record_t *records;
    size_t record_count;
    const uint8_t **items; //  every record's items, in order; point into file
    size_t *item_sizes;
    size_t item_count, item_alloc;
} cache_dump_file_t;

//  Reads the dump at path and checks all of it (magic, version, header,
//  checksum, every record and item) into *dump, which the caller frees
//  with cache_dump_file_free whatever the outcome.
zc_error_t cache_dump_read(zc_cache_t *self, const char *path, cache_dump_file_t *dump);

//  Frees what cache_dump_read filled in.
void cache_dump_file_free(cache_dump_file_t *dump);

//  Writes a checked dump's records into Redis in bounded slices, through a
//  staging key space, and sets *restored to the number of keys switched
//  into place. zc_cache_restore.c says what is guaranteed.
zc_error_t cache_restore_apply(zc_cache_t *self, const cache_dump_file_t *dump, size_t *restored);

//  One record of a dump file as the reader checked it (zc_cache_dump.c): its
//  key, kind, TTL (ms, -1 for none) and count items (msgpack objects; one
//  for a value), which point into the dump's bytes.
typedef void(cache_dump_record_fn)(const char *key, int is_list, int64_t ttl,
                                   const uint8_t *const *items, const size_t *sizes, size_t count,
                                   void *arg);

//  Checks a dump held in memory (size bytes) as cache_dump_read does and
//  hands each record to fn, in order, once the whole dump passed. Writes
//  nothing to Redis. Returns ZC_OK, or the kind of the first check that
//  refused it (its message recorded). The fuzz target's way in.
zc_error_t cache_dump_parse(zc_cache_t *self, const uint8_t *data, size_t size,
                            cache_dump_record_fn *fn, void *arg);

#endif
