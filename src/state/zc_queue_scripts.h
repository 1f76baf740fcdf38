/*  zc_queue_scripts — the task queue's Lua scripts and how they are called.

    Private to the queue: zc_queue.c (enqueue, administration), the worker's
    dispatcher (claim, ack, fail, release) and keeper (lease, tick) start a
    zc_redis_args_t here for one script, add its arguments and run it with
    zc_redis_call or zc_redis_pipeline, which send EVALSHA and fall back to
    EVAL when Redis does not know the script (after a restart or SCRIPT
    FLUSH).

    Every script is called as EVALSHA sha 1 <prefix>q:inflight <prefix> ...:
    the one declared key routes the call to the cluster's slot (all keys
    share the {CLUSTER} hash tag); ARGV[1] is the key prefix "zc:{C}:".
*/
#ifndef ZC_QUEUE_SCRIPTS_H_INCLUDED
#define ZC_QUEUE_SCRIPTS_H_INCLUDED

#include "zc_identity.h"
#include "zc_queue.h"
#include "zc_redis.h"

//  Replies: a script that finds one of its keys of the wrong type writes
//  nothing and answers an error "WRONGTYPE <key> holds a ..."; a problem
//  that concerns one job or one queue only (its hash or keys of the wrong
//  type) is reported in the reply below ("put off", "problem") and the rest
//  is done.
typedef enum {
    ZC_QS_ENQUEUE, //  queue, task, mode, when, max_attempts, backoff, timeout, (id, args)...
    ZC_QS_CLAIM,   //  node, lease_ms, count, queue...
                   //  -> (id, queue, task, args, attempt, timeout)..., [problem]
    ZC_QS_ACK,     //  node, (id, attempt)... -> {acked, lost, index put off..., [problem]}
    ZC_QS_FAIL,    //  node, (id, attempt, error)...
                   //  -> {retried, failed, lost, index put off..., [problem]}
    ZC_QS_RELEASE, //  node, resign, (id, attempt)... -> {released, index put off..., [problem]}
    ZC_QS_EXTEND,  //  node, lease_ms, (id, attempt)... -> {index of each lost claim..., [problem]}
    ZC_QS_TICK,    //  node, scheduler_lease_ms, limit, lease_ms, sweep_count
                   //  -> {promoted, reaped, leader, enqueued, more, swept, problem or ''}
    ZC_QS_REQUEUE_NODE, //  node, limit -> {requeued, seen, problem or ''}
    ZC_QS_EVERY,        //  name, queue, task, args, every_ms, max_attempts, backoff, timeout
    ZC_QS_EVERY_REMOVE, //  name -> 1|0
    ZC_QS_STATS,        //  queue -> {queued, delayed, inflight, processed, failed, ...}
    ZC_QS_FAILED,       //  queue, max -> (id, task, error, attempts, failed_ms)...
    ZC_QS_RETRY,        //  queue, id -> 1|0
    ZC_QS_DELETE,       //  queue, phase, cursor, limit -> {deleted, next phase|'done', cursor}
    ZC_QS_COUNT
} zc_qs_script_t;

//  Job defaults (also documented in zc_queue.h and docs/QUEUE.md).
#define ZC_QS_DEFAULT_ATTEMPTS   3
#define ZC_QS_DEFAULT_BACKOFF_MS 1000
//  Most jobs one script call takes (Lua's unpack() has a limit near 8000).
#define ZC_QS_BATCH_MAX 1000
//  Most items a bulk script (DELETE, REQUEUE_NODE) handles per call, so
//  that no call holds Redis for more than a few milliseconds (measured on
//  the development machine: a slice of REQUEUE_NODE ~3 ms, of DELETE ~1 ms).
#define ZC_QS_SLICE 250

//  Creates the queue's kind of Redis connection: every command bounded by
//  5 s, and a lost connection tried again every 100 ms rather than with
//  the default backoff (up to 1 s): a worker cut off from Redis must renew
//  its claims within their lease (1.5 s by default) or they may run twice.
//  With ?wait=MS in the URL its scripts wait for a replica (not required:
//  zc_redis_set_durable).
zc_redis_t *zc_qs_redis_new(const zc_identity_t *identity);

//  Starts args as a call of script for the cluster of identity, up to and
//  including ARGV[1] (the key prefix); add the script's own arguments next.
//  Reuses the list's memory.
void zc_qs_args_start(zc_redis_args_t *args, zc_qs_script_t script, const zc_identity_t *identity);

//  Returns a script of the queue's own made of the prelude (the helpers
//  every script above shares: qkey, jkey, check, refuse...) and body, as a
//  new string the caller keeps as long as the script is used.
char *zc_qs_source(const char *body);

//  zc_qs_args_start for a script built from zc_qs_source.
void zc_qs_args_start_script(zc_redis_args_t *args, const zc_script_t *script,
                             const zc_identity_t *identity);

//  Returns 1 if name is a valid queue or task name.
int zc_qs_name_valid(const char *name);

//  Returns the kind of a script's error reply: ZC_ERR_TYPE for a key that
//  holds another kind of data (WRONGTYPE), else ZC_ERR_REDIS.
zc_error_t zc_qs_error_kind(const redisReply *reply);

//  Returns the trailing problem string of a reply whose elements before it
//  come in groups of group (6 for CLAIM, 1 for the others), or NULL if
//  there is none.
const char *zc_qs_reply_problem(const redisReply *reply, size_t group);

#endif
