/*  zc_queue_scripts — the task queue's Lua scripts and how they are called.

    Private to the zc_queue files: zc_queue.c (enqueue, administration) and
    zc_queue_worker.c (claim, ack, lease, scheduler) build argument lists
    here and run them with EVALSHA, falling back to EVAL when Redis does not
    know the script (after a restart or SCRIPT FLUSH).

    Every script is called as EVALSHA sha 1 <prefix>q:inflight <prefix> ...:
    the one declared key routes the call to the cluster's slot (all keys
    share the {CLUSTER} hash tag); ARGV[1] is the key prefix "zc:{C}:".
*/
#ifndef ZC_QUEUE_SCRIPTS_H_INCLUDED
#define ZC_QUEUE_SCRIPTS_H_INCLUDED

#include "zc_queue.h"
#include "zc_redis.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ZC_QS_ENQUEUE, //  queue, task, mode, when, max_attempts, backoff, timeout, (id, args)...
    ZC_QS_CLAIM, //  node, lease_ms, count, queue... -> (id, queue, task, args, attempt, timeout)...
    ZC_QS_ACK,   //  node, (id, attempt)... -> {acked, lost}
    ZC_QS_FAIL,  //  node, (id, attempt, error)... -> {retried, failed, lost}
    ZC_QS_RELEASE,      //  node, resign, (id, attempt)... -> released
    ZC_QS_EXTEND,       //  node, lease_ms, (id, attempt)... -> {index of each lost claim}
    ZC_QS_TICK,         //  node, scheduler_lease_ms, limit -> {promoted, reaped, leader, enqueued}
    ZC_QS_REQUEUE_NODE, //  node -> requeued
    ZC_QS_EVERY,        //  name, queue, task, args, every_ms, max_attempts, backoff, timeout
    ZC_QS_EVERY_REMOVE, //  name -> 1|0
    ZC_QS_STATS,        //  queue -> {queued, delayed, inflight, processed, failed, ...}
    ZC_QS_FAILED,       //  queue, max -> (id, task, error, attempts, failed_ms)...
    ZC_QS_RETRY,        //  queue, id -> 1|0
    ZC_QS_DELETE,       //  queue -> deleted
    ZC_QS_COUNT
} zc_qs_script_t;

//  Job defaults (also documented in zc_queue.h and docs/QUEUE.md).
#define ZC_QS_DEFAULT_ATTEMPTS   3
#define ZC_QS_DEFAULT_BACKOFF_MS 1000
//  Most jobs one script call takes (Lua's unpack() has a limit near 8000).
#define ZC_QS_BATCH_MAX 1000

//  An argument list for one script call, reused between calls.
typedef struct {
    char *buf; //  every argument, back to back
    size_t used, cap;
    size_t *offsets, *lens;
    const char **argv;
    int argc, cap_args;
    zc_qs_script_t script;
    int eval; //  1 once the list was turned into an EVAL (no SHA known)
} zc_qs_args_t;

//  Starts a list for script with the key prefix; frees nothing (reuses memory).
void zc_qs_args_start(zc_qs_args_t *self, zc_qs_script_t script, const char *prefix);

//  Appends one binary-safe argument.
void zc_qs_args_add(zc_qs_args_t *self, const void *data, size_t len);

//  Appends a string argument.
void zc_qs_args_str(zc_qs_args_t *self, const char *str);

//  Appends an integer argument.
void zc_qs_args_int(zc_qs_args_t *self, int64_t value);

//  Frees the list's memory.
void zc_qs_args_free(zc_qs_args_t *self);

//  Sends count calls in one round trip and fills replies[i] with each reply
//  (the caller frees them; error replies included), re-running with EVAL any
//  call whose script Redis did not know. Returns 0, or -1 if the connection
//  failed (then every replies[i] is NULL).
int zc_qs_pipeline(redisContext *c, zc_qs_args_t **args, int count, redisReply **replies);

//  Runs one call and returns its reply (caller frees), or NULL if the
//  connection failed.
redisReply *zc_qs_call(redisContext *c, zc_qs_args_t *args);

//  Returns 1 if name is a valid queue or task name.
int zc_qs_name_valid(const char *name);

//  Returns 1 if id is a valid job, node or cluster id.
int zc_qs_id_valid(const char *id);

//  Returns the integer of an integer or numeric string reply, else fallback.
int64_t zc_qs_int(const redisReply *reply, int64_t fallback);

//  A Redis connection that reconnects on use after an error, at most every
//  100 ms.
typedef struct {
    zc_redis_url_t url;
    int timeout_ms;
    redisContext *ctx;
    int64_t retry_at; //  monotonic ms before which no reconnect is tried
    char error[256];
} zc_qs_conn_t;

//  Returns a usable context, connecting if needed, or NULL with conn->error set.
redisContext *zc_qs_conn_get(zc_qs_conn_t *conn);

//  Drops the context after an error on it (the next get reconnects).
void zc_qs_conn_drop(zc_qs_conn_t *conn);

//  Returns monotonic milliseconds.
int64_t zc_qs_clock_ms(void);

#endif
