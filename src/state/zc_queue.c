/*  zc_queue — putting jobs on queues and administering them.

    This is the producer's and the operator's side of the task queue; the
    consumer's side is the worker (zc_queue_worker.c), and every change
    either makes is one Lua script in zc_queue_scripts.c, so that the client
    code here stays a thin layer: check the arguments, build the script's
    argument list, read the reply.

    Why one connection, used from one thread: enqueueing is a request and
    a reply; a caller that wants more throughput batches with
    zc_queue_enqueue_many (one script call per ZC_QS_BATCH_MAX jobs, all
    batches pipelined) rather than sharing a connection between threads.

    Why dedupe refuses rather than replaces: a caller-given job id names
    one piece of work; enqueueing it again while the first is still queued,
    delayed, running or failed would run it twice. Once a job completes its
    hash is gone and the id may be used again.
*/
#include "zc_queue.h"
#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_log.h"
#include "zc_queue_internal.h"
#include "zc_queue_scripts.h"
#include "zc_wire.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(ZC_JOB_ID_MAX == ZC_NAME_MAX, "a job id is a wire name");

//  A delete starts over when jobs keep arriving on the queue; it gives up
//  after this many times.
#define S_DELETE_RESTARTS 16

struct _zc_queue_t {
    zc_identity_t identity;
    zc_redis_t *redis;
    zc_redis_args_t args; //  reused by every call
    zc_failure_t failure; //  the last call's outcome
};

zc_queue_t *zc_queue_new(const char *redis_url, const char *cluster)
{
    zc_identity_t identity;
    char err[300];
    //  "" is no cluster name (only NULL takes the default); the node id is
    //  the worker's business, so none is read from the environment here.
    if (cluster && !*cluster)
        snprintf(err, sizeof err, "invalid cluster name '' (1-255 bytes)");
    else if (zc_identity_init(&identity, redis_url, cluster, "", err, sizeof err) == 0) {
        zc_queue_t *self = (zc_queue_t *)calloc(1, sizeof(zc_queue_t));
        assert(self);
        self->identity = identity;
        self->redis = zc_qs_redis_new(&self->identity);
        //  With ?wait=MS, an enqueue no replica acknowledged is an error.
        zc_redis_set_durable(self->redis, 1);
        return self;
    }
    zc_log(ZC_LOG_ERROR, "queue", "%s", err);
    return NULL;
}

void zc_queue_destroy(zc_queue_t **self_p)
{
    assert(self_p);
    zc_queue_t *self = *self_p;
    if (!self) return;
    zc_redis_destroy(&self->redis);
    zc_redis_args_free(&self->args);
    memset(&self->identity, 0, sizeof self->identity); //  the URL may hold a password
    free(self);
    *self_p = NULL;
}

zc_error_t zc_queue_error(zc_queue_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_queue_errstr(zc_queue_t *self)
{
    assert(self);
    return self->failure.text;
}

const char *zc_queue_cluster(zc_queue_t *self)
{
    assert(self);
    return self->identity.cluster;
}

const char *zc_queue_redis_url(zc_queue_t *self)
{
    assert(self);
    return self->identity.redis_url;
}

//  Records an error reply; a key of the wrong type is told apart from the
//  rest. Returns -1.
static int s_reply_error(zc_queue_t *self, const redisReply *reply)
{
    return zc_failure_set(&self->failure, zc_qs_error_kind(reply), "Redis error: %s", reply->str);
}

//  Runs the script in self->args. Returns the reply (caller frees), or NULL
//  with the failure recorded; an error reply is turned into NULL too.
static redisReply *s_call(zc_queue_t *self)
{
    redisReply *reply = zc_redis_call(self->redis, &self->args);
    if (!reply) {
        zc_failure_set(&self->failure, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->redis));
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        s_reply_error(self, reply);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

int64_t zc_queue_now_ms(zc_queue_t *self)
{
    assert(self);
    zc_failure_clear(&self->failure);
    redisReply *reply = zc_redis_command(self->redis, "TIME");
    if (!reply)
        return zc_failure_set(&self->failure, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->redis));
    int64_t now = -1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        now = zc_redis_reply_int(reply->element[0], 0) * 1000 +
              zc_redis_reply_int(reply->element[1], 0) / 1000;
    else
        zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to TIME");
    freeReplyObject(reply);
    return now;
}

//  Checks a job's options and appends max_attempts, backoff and timeout.
static int s_add_opts(zc_queue_t *self, zc_redis_args_t *args, const zc_job_opts_t *opts)
{
    zc_job_opts_t none = {0};
    if (!opts) opts = &none;
    if (opts->max_attempts < 0 || opts->backoff_ms < 0 || opts->timeout_ms < 0)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "negative job option");
    zc_redis_args_int(args, opts->max_attempts ? opts->max_attempts : ZC_QS_DEFAULT_ATTEMPTS);
    zc_redis_args_int(args, opts->backoff_ms ? opts->backoff_ms : ZC_QS_DEFAULT_BACKOFF_MS);
    zc_redis_args_int(args, opts->timeout_ms);
    return 0;
}

static int s_check_names(zc_queue_t *self, const char *queue, const char *task)
{
    if (!zc_qs_name_valid(queue))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid queue name '%.100s'",
                              queue ? queue : "(null)");
    if (task && !zc_qs_name_valid(task))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid task name '%.100s'", task);
    return 0;
}

//  Checks a job id (a wire name, so it prints on one line and fits
//  ZC_JOB_ID_MAX).
static int s_check_id(zc_queue_t *self, const char *id)
{
    if (zc_wire_name_valid(id)) return 0;
    return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid job id '%.100s'",
                          id ? id : "(null)");
}

//  One ENQUEUE call: how it is done (mode "now", "at" or "in", when) and
//  what (items with opts); batches cut items into calls.
typedef struct {
    const char *queue, *task, *mode;
    int64_t when;
    const zc_queue_item_t *items;
    size_t count;
    const zc_job_opts_t *opts;
} s_enqueue_t;

//  Builds batch b of e into args. Returns 0 or -1.
static int s_enqueue_batch(zc_queue_t *self, const s_enqueue_t *e, size_t b, zc_redis_args_t *args)
{
    zc_qs_args_start(args, ZC_QS_ENQUEUE, &self->identity);
    zc_redis_args_str(args, e->queue);
    zc_redis_args_str(args, e->task);
    zc_redis_args_str(args, e->mode);
    zc_redis_args_int(args, e->when);
    if (s_add_opts(self, args, e->opts)) return -1;
    for (size_t i = b * ZC_QS_BATCH_MAX; i < e->count && i < (b + 1) * ZC_QS_BATCH_MAX; i++) {
        const zc_queue_item_t *item = &e->items[i];
        zc_redis_args_str(args, item->id ? item->id : "");
        zc_redis_args_add(args, item->args, item->args ? item->args_size : 0);
    }
    return 0;
}

//  Reads the reply to batch b: each job's id, or '' for a duplicate. Fills
//  results and, for a single item, id_out. Returns the number enqueued or -1.
static int s_enqueue_reply(zc_queue_t *self, const s_enqueue_t *e, size_t b,
                           const redisReply *reply, int *results, char *id_out)
{
    size_t first = b * ZC_QS_BATCH_MAX;
    size_t n = e->count - first < ZC_QS_BATCH_MAX ? e->count - first : ZC_QS_BATCH_MAX;
    if (reply->type == REDIS_REPLY_ERROR) return s_reply_error(self, reply);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n)
        return zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to enqueue");
    int enqueued = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = reply->element[i];
        int dup = id->type != REDIS_REPLY_STRING || id->len == 0;
        if (results) results[first + i] = dup ? ZC_ERR_DUPLICATE : ZC_OK;
        if (!dup) enqueued++;
        if (id_out && e->count == 1 && !dup) snprintf(id_out, ZC_JOB_ID_MAX + 1, "%s", id->str);
    }
    return enqueued;
}

//  Enqueues e->count items in batches of ZC_QS_BATCH_MAX, pipelined. Fills
//  results and, for a single item, id_out. Returns the number enqueued or -1.
static int s_enqueue(zc_queue_t *self, const s_enqueue_t *e, int *results, char *id_out)
{
    if (s_check_names(self, e->queue, e->task)) return -1;
    for (size_t i = 0; i < e->count; i++)
        if (e->items[i].id && s_check_id(self, e->items[i].id)) return -1;
    if (e->count == 0) return 0;
    size_t batches = (e->count + ZC_QS_BATCH_MAX - 1) / ZC_QS_BATCH_MAX;
    zc_redis_args_t *args = (zc_redis_args_t *)calloc(batches, sizeof(zc_redis_args_t));
    zc_redis_args_t **argp = (zc_redis_args_t **)calloc(batches, sizeof(zc_redis_args_t *));
    redisReply **replies = (redisReply **)calloc(batches, sizeof(redisReply *));
    assert(args && argp && replies);
    int rc = 0;
    for (size_t b = 0; b < batches && rc == 0; b++) {
        //  Batch 0 reuses self->args, so a single enqueue allocates nothing.
        argp[b] = b == 0 ? &self->args : &args[b];
        rc = s_enqueue_batch(self, e, b, argp[b]);
    }
    if (rc == 0 && zc_redis_pipeline(self->redis, argp, (int)batches, replies))
        rc = zc_failure_set(&self->failure, ZC_ERR_REDIS, "%s", zc_redis_errstr(self->redis));
    int enqueued = 0;
    for (size_t b = 0; b < batches && rc == 0; b++) {
        int n = s_enqueue_reply(self, e, b, replies[b], results, id_out);
        if (n < 0)
            rc = -1;
        else
            enqueued += n;
    }
    for (size_t b = 0; b < batches; b++) {
        if (replies[b]) freeReplyObject(replies[b]);
        if (b > 0) zc_redis_args_free(&args[b]);
    }
    free(args);
    free(argp);
    free(replies);
    return rc ? -1 : enqueued;
}

static int s_enqueue_one(zc_queue_t *self, const char *queue, const char *task, const char *mode,
                         int64_t when, const void *args, size_t args_size,
                         const zc_job_opts_t *opts, char *id_out)
{
    zc_queue_item_t item = {args, args_size, opts ? opts->id : NULL};
    s_enqueue_t e = {queue, task, mode, when, &item, 1, opts};
    int result = ZC_OK;
    if (s_enqueue(self, &e, &result, id_out) < 0) return -1;
    if (result == ZC_ERR_DUPLICATE) {
        if (id_out) snprintf(id_out, ZC_JOB_ID_MAX + 1, "%s", item.id);
        return zc_failure_set(&self->failure, ZC_ERR_DUPLICATE,
                              "a live job already has the id '%.100s'", item.id);
    }
    return 0;
}

int zc_queue_enqueue(zc_queue_t *self, const char *queue, const char *task, const void *args,
                     size_t args_size, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    zc_failure_clear(&self->failure);
    return s_enqueue_one(self, queue, task, "now", 0, args, args_size, opts, id_out);
}

int zc_queue_enqueue_at(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t at_ms, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    zc_failure_clear(&self->failure);
    return s_enqueue_one(self, queue, task, "at", at_ms, args, args_size, opts, id_out);
}

int zc_queue_enqueue_in(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t delay_ms, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (delay_ms < 0) return zc_failure_set(&self->failure, ZC_ERR_INVALID, "negative delay");
    return s_enqueue_one(self, queue, task, "in", delay_ms, args, args_size, opts, id_out);
}

int zc_queue_enqueue_many(zc_queue_t *self, const char *queue, const char *task,
                          const zc_queue_item_t *items, size_t count, const zc_job_opts_t *opts,
                          int *results)
{
    assert(self);
    assert(items || count == 0);
    zc_failure_clear(&self->failure);
    s_enqueue_t e = {queue, task, "now", 0, items, count, opts};
    return s_enqueue(self, &e, results, NULL);
}

int zc_queue_every(zc_queue_t *self, const char *name, const char *queue, const char *task,
                   const void *args, size_t args_size, int64_t every_ms, const zc_job_opts_t *opts)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (!zc_qs_name_valid(name))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID,
                              "invalid recurring task name '%.100s'", name ? name : "(null)");
    if (s_check_names(self, queue, task)) return -1;
    if (every_ms <= 0)
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "the period must be positive");
    zc_qs_args_start(&self->args, ZC_QS_EVERY, &self->identity);
    zc_redis_args_str(&self->args, name);
    zc_redis_args_str(&self->args, queue);
    zc_redis_args_str(&self->args, task);
    zc_redis_args_add(&self->args, args, args ? args_size : 0);
    zc_redis_args_int(&self->args, every_ms);
    if (s_add_opts(self, &self->args, opts)) return -1;
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    freeReplyObject(reply);
    return 0;
}

int zc_queue_every_remove(zc_queue_t *self, const char *name)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (!zc_qs_name_valid(name))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID,
                              "invalid recurring task name '%.100s'", name ? name : "(null)");
    zc_qs_args_start(&self->args, ZC_QS_EVERY_REMOVE, &self->identity);
    zc_redis_args_str(&self->args, name);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int existed = zc_redis_reply_int(reply, 0) > 0;
    freeReplyObject(reply);
    return existed;
}

int zc_queue_stats(zc_queue_t *self, const char *queue, zc_queue_stats_t *stats)
{
    assert(self);
    assert(stats);
    zc_failure_clear(&self->failure);
    memset(stats, 0, sizeof *stats);
    if (s_check_names(self, queue, NULL)) return -1;
    zc_qs_args_start(&self->args, ZC_QS_STATS, &self->identity);
    zc_redis_args_str(&self->args, queue);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int rc = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 9)
        rc = zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to stats");
    else {
        //  In the script's order.
        int64_t *fields[] = {&stats->queued,    &stats->delayed,   &stats->inflight,
                             &stats->processed, &stats->failed,    &stats->retried,
                             &stats->requeued,  &stats->lost_acks, &stats->failed_list};
        for (int i = 0; i < 9; i++)
            *fields[i] = zc_redis_reply_int(reply->element[i], 0);
    }
    freeReplyObject(reply);
    return rc;
}

//  Copies a string reply into out (cap bytes), "" for any other reply.
static void s_copy(char *out, size_t cap, const redisReply *reply)
{
    int is_string = reply->type == REDIS_REPLY_STRING;
    snprintf(out, cap, "%.*s", is_string ? (int)reply->len : 0, is_string ? reply->str : "");
}

int zc_queue_failed(zc_queue_t *self, const char *queue, zc_queue_failure_t *out, int max)
{
    assert(self);
    assert(out || max == 0);
    zc_failure_clear(&self->failure);
    if (s_check_names(self, queue, NULL)) return -1;
    if (max <= 0) return 0;
    zc_qs_args_start(&self->args, ZC_QS_FAILED, &self->identity);
    zc_redis_args_str(&self->args, queue);
    zc_redis_args_int(&self->args, max);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 5 != 0) {
        freeReplyObject(reply);
        return zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to failed");
    }
    int n = (int)(reply->elements / 5);
    for (int i = 0; i < n && i < max; i++) {
        redisReply **f = reply->element + 5 * i;
        zc_queue_failure_t *entry = &out[i];
        s_copy(entry->id, sizeof entry->id, f[0]);
        s_copy(entry->task, sizeof entry->task, f[1]);
        s_copy(entry->error, sizeof entry->error, f[2]);
        entry->attempts = (int)zc_redis_reply_int(f[3], 0);
        entry->failed_ms = zc_redis_reply_int(f[4], 0);
    }
    freeReplyObject(reply);
    return n < max ? n : max;
}

int zc_queue_retry(zc_queue_t *self, const char *queue, const char *id)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (s_check_names(self, queue, NULL) || s_check_id(self, id)) return -1;
    zc_qs_args_start(&self->args, ZC_QS_RETRY, &self->identity);
    zc_redis_args_str(&self->args, queue);
    zc_redis_args_str(&self->args, id);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int moved = zc_redis_reply_int(reply, 0) == 1;
    freeReplyObject(reply);
    if (!moved)
        return zc_failure_set(&self->failure, ZC_ERR_MISSING,
                              "job '%.100s' is not on the failed list of queue '%s'", id, queue);
    return 0;
}

//  Deletes the queue one slice per call (ZC_QS_SLICE jobs at most), so that
//  Redis is never held for long: the lists first, then the jobs of the
//  queue found in the cluster's in-flight and delayed sets, its recurring
//  tasks, its own keys. Returns the number of jobs deleted, or -1.
int64_t zc_queue_delete(zc_queue_t *self, const char *queue)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (s_check_names(self, queue, NULL)) return -1;
    char phase[16] = "ready", cursor[32] = "0";
    int64_t deleted = 0;
    int restarts = 0;
    while (strcmp(phase, "done") != 0) {
        zc_qs_args_start(&self->args, ZC_QS_DELETE, &self->identity);
        zc_redis_args_str(&self->args, queue);
        zc_redis_args_str(&self->args, phase);
        zc_redis_args_str(&self->args, cursor);
        zc_redis_args_int(&self->args, ZC_QS_SLICE);
        redisReply *reply = s_call(self);
        if (!reply) return -1;
        int ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                 reply->element[1]->type == REDIS_REPLY_STRING &&
                 reply->element[2]->type == REDIS_REPLY_STRING;
        if (ok) {
            deleted += zc_redis_reply_int(reply->element[0], 0);
            restarts += strcmp(phase, "final") == 0 && strcmp(reply->element[1]->str, "ready") == 0;
            snprintf(phase, sizeof phase, "%s", reply->element[1]->str);
            snprintf(cursor, sizeof cursor, "%s", reply->element[2]->str);
        }
        freeReplyObject(reply);
        if (!ok) return zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to delete");
        if (restarts > S_DELETE_RESTARTS)
            return zc_failure_set(&self->failure, ZC_ERR_STATE,
                                  "queue '%s' gets new jobs faster than it is deleted", queue);
    }
    return deleted;
}

//  Returns the node's claims one slice per call (ZC_QS_SLICE at most).
int64_t zc_queue_requeue_node(zc_queue_t *self, const char *node_id)
{
    assert(self);
    zc_failure_clear(&self->failure);
    if (!zc_wire_name_valid(node_id))
        return zc_failure_set(&self->failure, ZC_ERR_INVALID, "invalid node id '%.100s'",
                              node_id ? node_id : "(null)");
    int64_t requeued = 0, seen = ZC_QS_SLICE;
    while (seen == ZC_QS_SLICE) {
        zc_qs_args_start(&self->args, ZC_QS_REQUEUE_NODE, &self->identity);
        zc_redis_args_str(&self->args, node_id);
        zc_redis_args_int(&self->args, ZC_QS_SLICE);
        redisReply *reply = s_call(self);
        if (!reply) return -1;
        int ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 3;
        if (ok) {
            requeued += zc_redis_reply_int(reply->element[0], 0);
            seen = zc_redis_reply_int(reply->element[1], 0);
            if (reply->element[2]->type == REDIS_REPLY_STRING && reply->element[2]->len)
                zc_log(ZC_LOG_WARNING, "queue", "requeue of node %s: %s (left to their lease)",
                       node_id, reply->element[2]->str);
        }
        freeReplyObject(reply);
        if (!ok) return zc_failure_set(&self->failure, ZC_ERR_REDIS, "unexpected reply to requeue");
    }
    if (requeued > 0)
        zc_log(ZC_LOG_INFO, "queue", "returned %lld jobs of node %s to their queues",
               (long long)requeued, node_id);
    return requeued;
}

//  --------------------------------------------------------------------------
//  Lent to the queue's other files (zc_queue_internal.h)

const zc_identity_t *zc_queue_identity(zc_queue_t *self)
{
    return &self->identity;
}

zc_redis_args_t *zc_queue_args(zc_queue_t *self)
{
    return &self->args;
}

zc_failure_t *zc_queue_failure(zc_queue_t *self)
{
    return &self->failure;
}

redisReply *zc_queue_call(zc_queue_t *self)
{
    return s_call(self);
}

int zc_queue_check(zc_queue_t *self, const char *queue, const char *id)
{
    if (queue && s_check_names(self, queue, NULL)) return -1;
    return id ? s_check_id(self, id) : 0;
}
