/*  zc_job — one claimed job, as its handler sees it.

    A job is made from one element group of a CLAIM reply and lives in one
    allocation (the struct, then its id, queue, task and arguments), since
    a busy worker makes and frees tens of thousands a second. The worker
    (zc_queue_worker_internal.h) owns it; handlers only read it, and write
    its error message.

    Why the handler can tell whether the lease holds without asking the
    keeper: when Redis hangs, the keeper's renewal hangs with it, so it
    cannot tell anyone anything. The job keeps the time until which its
    lease surely holds (the send time of the last renewal that reached
    Redis, plus the lease, less a margin), and zc_job_lost() compares the
    clock with it.
*/
#include "zc_queue_worker_internal.h"

#include <assert.h>
#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

zc_job_t *zc_job_new_claimed(zc_queue_worker_t *worker, redisReply **fields, uint64_t seq)
{
    for (int i = 0; i < 4; i++)
        if (fields[i]->type != REDIS_REPLY_STRING) return NULL;
    size_t size =
        sizeof(zc_job_t) + fields[0]->len + fields[1]->len + fields[2]->len + fields[3]->len + 3;
    zc_job_t *job = (zc_job_t *)calloc(1, size);
    assert(job);
    char *p = (char *)(job + 1);
    char **strings[] = {&job->id, &job->queue, &job->task};
    for (int i = 0; i < 3; i++) {
        *strings[i] = p;
        memcpy(p, fields[i]->str, fields[i]->len);
        p[fields[i]->len] = 0;
        p += fields[i]->len + 1;
    }
    job->args = (unsigned char *)p;
    job->args_size = fields[3]->len;
    memcpy(p, fields[3]->str, fields[3]->len);
    job->attempt = (int)zc_redis_reply_int(fields[4], 1);
    job->timeout_ms = zc_redis_reply_int(fields[5], 0);
    job->worker = worker;
    job->seq = seq;
    job->state = ZC_JOB_CLAIMED;
    job->error = ZC_OK;
    atomic_init(&job->cancelled, 0);
    atomic_init(&job->lease_lost, 0);
    atomic_init(&job->lease_held_to, 0);
    return job;
}

void zc_job_lease_renewed(zc_job_t *job, int64_t sent_ms, int lease_ms)
{
    //  The margin leaves the handler time to stop before the lease lapses.
    long long held_to = sent_ms + lease_ms - lease_ms / 8;
    if (held_to > atomic_load(&job->lease_held_to)) atomic_store(&job->lease_held_to, held_to);
}

void zc_job_args_claim(zc_redis_args_t *args, const zc_job_t *job)
{
    zc_redis_args_str(args, job->id);
    zc_redis_args_int(args, job->attempt);
}

const char *zc_job_id(const zc_job_t *self)
{
    assert(self);
    return self->id;
}

const char *zc_job_queue(const zc_job_t *self)
{
    assert(self);
    return self->queue;
}

const char *zc_job_task(const zc_job_t *self)
{
    assert(self);
    return self->task;
}

const void *zc_job_args(const zc_job_t *self, size_t *size)
{
    assert(self);
    if (size) *size = self->args_size;
    return self->args;
}

int zc_job_attempt(const zc_job_t *self)
{
    assert(self);
    return self->attempt;
}

int zc_job_lost(const zc_job_t *self)
{
    assert(self);
    zc_job_t *job = (zc_job_t *)self;
    if (atomic_load(&job->lease_lost)) return 1;
    if (zclock_mono() < atomic_load(&job->lease_held_to)) return 0;
    atomic_store(&job->lease_lost, 1);
    return 1;
}

int zc_job_cancelled(const zc_job_t *self)
{
    assert(self);
    return atomic_load(&((zc_job_t *)self)->cancelled) || zc_job_lost(self);
}

void zc_job_set_error(zc_job_t *self, const char *format, ...)
{
    assert(self);
    va_list args;
    va_start(args, format);
    vsnprintf(self->errstr, sizeof self->errstr, format, args);
    va_end(args);
}

zc_error_t zc_job_error(const zc_job_t *self)
{
    assert(self);
    return self->error;
}

const char *zc_job_errstr(const zc_job_t *self)
{
    assert(self);
    return self->errstr;
}
