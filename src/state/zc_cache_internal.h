/*  zc_cache_internal — what the zc_cache files share (private to libzcluster).

    The cache is one class in several files, one concept each:
      zc_cache.c          the object, its errors, Redis names and replies;
                          destroy, ttl, lists and locks
      zc_cache_values.c   save and load, one key or a pipelined batch
      zc_cache_walk.c     walking the cache with SCAN: keys, size, clear
      zc_cache_dump.c     the dump file: writing it, checking and restoring it
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

//  The scripts (zc_cache_scripts.c).
typedef enum {
    CACHE_SAVE,
    CACHE_LOAD,
    CACHE_DESTROY,
    CACHE_LOCK,
    CACHE_UNLOCK,
    CACHE_CLEAR,
    CACHE_DUMP,
    CACHE_RESTORE,
    CACHE_SCRIPTS
} cache_script_id_t;

//  What a script answers for a key (the first element of {status, ...}).
typedef enum {
    CACHE_STATUS_DONE = 0,
    CACHE_STATUS_MISSING = 1,
    CACHE_STATUS_LOCKED = 2,    //  with the owner
    CACHE_STATUS_WRONGTYPE = 3, //  with the type's name
    CACHE_STATUS_BADLOCK = 4    //  the lock key holds another type
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
    int wait_locked; //  a batch load that will wait out locks: LOCKED does not hold
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
//  the key; NULL for all) and hands them to fn batch by batch, stopping at
//  the first failure.
zc_error_t cache_walk(zc_cache_t *self, const char *pattern, cache_walk_fn *fn, void *arg);

//  One record of a dump file as the reader checked it (zc_cache_dump.c): its
//  key, kind, TTL (ms, -1 for none) and count items (msgpack objects; one
//  for a value), which point into the dump's bytes.
typedef void(cache_dump_record_fn)(const char *key, int is_list, int64_t ttl,
                                   const uint8_t *const *items, const size_t *sizes, size_t count,
                                   void *arg);

//  Reads a dump held in memory (size bytes) with the checks of a restore —
//  header, checksum, every record — and hands each record to fn, in order,
//  once the whole dump passed. Writes nothing to Redis. Returns ZC_OK, or
//  the kind of the first check that refused it (its message recorded).
zc_error_t cache_dump_read(zc_cache_t *self, const uint8_t *data, size_t size,
                           cache_dump_record_fn *fn, void *arg);

#endif
