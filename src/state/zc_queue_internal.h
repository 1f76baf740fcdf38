/*  zc_queue_internal — what zc_queue.c lends the queue's other public
    files (zc_queue_inspect.c): its connection, its reused argument list and
    its failure, so that every call of a zc_queue_t keeps one error pair.
    Private to libzcluster.
*/
#ifndef ZC_QUEUE_INTERNAL_H_INCLUDED
#define ZC_QUEUE_INTERNAL_H_INCLUDED

#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_queue.h"
#include "zc_redis.h"

//  The queue's cluster identity (key prefix).
const zc_identity_t *zc_queue_identity(zc_queue_t *self);

//  The queue's argument list, reused by every call.
zc_redis_args_t *zc_queue_args(zc_queue_t *self);

//  The queue's failure: the last call's outcome.
zc_failure_t *zc_queue_failure(zc_queue_t *self);

//  Runs the script in the queue's argument list. Returns the reply (caller
//  frees), or NULL with the failure recorded (an error reply included).
redisReply *zc_queue_call(zc_queue_t *self);

//  Checks a queue name and a job id (id may be NULL: not checked). Returns
//  0, or -1 with ZC_ERR_INVALID recorded.
int zc_queue_check(zc_queue_t *self, const char *queue, const char *id);

#endif
