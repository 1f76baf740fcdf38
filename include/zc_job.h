/*  zc_job — one job of the task queue, as its handler sees it.

    A job is a task name, msgpack arguments and an id, put on a named queue
    by zc_queue_enqueue (zc_queue.h) and run by a zc_queue_worker_t
    (zc_queue_worker.h), which hands it to the handler registered for its
    task and to the finish callback. The job belongs to the worker: it is
    valid during those calls only.

    A handler that fails returns -1 and says why with zc_job_set_error; the
    worker then records the kind of failure on the job (zc_job_error) and
    reports the message (zc_job_errstr) to Redis, where the failed list keeps
    it.

    A long handler checks zc_job_cancelled() (or zc_job_lost()) now and then
    and returns early once it is 1: the run passed its timeout, or the worker
    could not keep the job's lease and another worker may be running it.

    Job ids are given by the caller (for dedupe) or generated. A job id is a
    valid wire name, like a node id: 1..ZC_JOB_ID_MAX bytes, no spaces or
    control characters (zc_wire_name_valid).
*/
#ifndef ZC_JOB_H_INCLUDED
#define ZC_JOB_H_INCLUDED

#include "zc_error.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Longest job id in bytes (ZC_NAME_MAX of zc_wire.h: a job id is a wire name).
#define ZC_JOB_ID_MAX 255
//  Longest error message a job keeps, in bytes.
#define ZC_JOB_ERROR_MAX 255

typedef struct _zc_job_t zc_job_t;

//  Returns the job id.
const char *zc_job_id(const zc_job_t *self);

//  Returns the queue it came from.
const char *zc_job_queue(const zc_job_t *self);

//  Returns the task name.
const char *zc_job_task(const zc_job_t *self);

//  Returns the msgpack arguments and their size in *size (may be 0).
const void *zc_job_args(const zc_job_t *self, size_t *size);

//  Returns the attempt number, from 1 (claims of this job so far).
int zc_job_attempt(const zc_job_t *self);

//  Returns 1 once the worker may have lost the job's claim, and with it the
//  job: its lease could not be renewed in time (Redis down, hung or
//  unreachable: the lease has gone unrenewed for 7/8 of its length), or a
//  renewal found the claim taken back. Another worker may then run the
//  job, so a handler that has not yet made its work visible should stop
//  and return -1: the job is then given back to its queue (if the claim
//  was still held) rather than counted as a failed run. Once 1, stays 1.
//  A handler that returns 0 anyway is acked if the claim was still held;
//  if not, its result is ignored and counted (lost_acks), and the job may
//  have run twice.
int zc_job_lost(const zc_job_t *self);

//  Returns 1 once the run should stop early: it passed its timeout (its
//  result will be ignored), or zc_job_lost() is 1.
int zc_job_cancelled(const zc_job_t *self);

//  Sets the error message reported if the handler returns -1.
void zc_job_set_error(zc_job_t *self, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

//  Returns how the run went, once it is over (in the finish callback):
//  ZC_OK, ZC_ERR_HANDLER (the handler returned -1), ZC_ERR_TIMEOUT (the run
//  passed its timeout) or ZC_ERR_MISSING (no handler for its task on this
//  worker). ZC_OK while the handler runs.
zc_error_t zc_job_error(const zc_job_t *self);

//  Returns the error message set by the handler, or the worker's ("" if
//  none).
const char *zc_job_errstr(const zc_job_t *self);

#ifdef __cplusplus
}
#endif

#endif
