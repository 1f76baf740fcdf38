/*  zc_queue — putting jobs on queues and administering them.

    This is the producer's and the operator's side of the task queue; the
    consumer's side is zc_queue_worker.c, and every change either makes is
    one Lua script in zc_queue_scripts.c, so that the client code here stays
    a thin layer: check the arguments, build the script's argument list,
    read the reply.

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
#include "zc_log.h"
#include "zc_queue_scripts.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TIMEOUT_MS 5000

struct _zc_queue_t {
    char *url;
    char cluster[ZC_JOB_ID_MAX + 1];
    char prefix[ZC_JOB_ID_MAX + 16];
    zc_qs_conn_t conn;
    zc_qs_args_t args;
    char error[512];
};

static int s_error(zc_queue_t *self, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int s_error(zc_queue_t *self, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(self->error, sizeof self->error, format, args);
    va_end(args);
    return -1;
}

zc_queue_t *zc_queue_new(const char *redis_url, const char *cluster)
{
    if (!redis_url) redis_url = getenv("ZC_REDIS_URL");
    if (!redis_url || !*redis_url) {
        zc_log(ZC_LOG_ERROR, "queue", "no Redis URL given and ZC_REDIS_URL is not set");
        return NULL;
    }
    if (!zc_qs_id_valid(cluster)) {
        zc_log(ZC_LOG_ERROR, "queue", "invalid cluster name '%s'", cluster ? cluster : "(null)");
        return NULL;
    }
    zc_queue_t *self = (zc_queue_t *)calloc(1, sizeof(zc_queue_t));
    assert(self);
    char err[300];
    if (zc_redis_url_parse(redis_url, &self->conn.url, err, sizeof err)) {
        zc_log(ZC_LOG_ERROR, "queue", "%s", err);
        free(self);
        return NULL;
    }
    self->url = strdup(redis_url);
    assert(self->url);
    snprintf(self->cluster, sizeof self->cluster, "%s", cluster);
    snprintf(self->prefix, sizeof self->prefix, "zc:{%s}:", cluster);
    self->conn.timeout_ms = S_TIMEOUT_MS;
    return self;
}

void zc_queue_destroy(zc_queue_t **self_p)
{
    assert(self_p);
    zc_queue_t *self = *self_p;
    if (!self) return;
    zc_qs_conn_drop(&self->conn);
    zc_qs_args_free(&self->args);
    free(self->url);
    free(self);
    *self_p = NULL;
}

const char *zc_queue_error(zc_queue_t *self)
{
    assert(self);
    return self->error;
}

const char *zc_queue_cluster(zc_queue_t *self)
{
    assert(self);
    return self->cluster;
}

const char *zc_queue_redis_url(zc_queue_t *self)
{
    assert(self);
    return self->url;
}

//  Runs the script in self->args. Returns the reply (caller frees), or NULL
//  with self->error set; an error reply is turned into NULL too.
static redisReply *s_call(zc_queue_t *self)
{
    redisContext *c = zc_qs_conn_get(&self->conn);
    if (!c) {
        s_error(self, "%s", self->conn.error);
        return NULL;
    }
    redisReply *reply = zc_qs_call(c, &self->args);
    if (!reply) {
        s_error(self, "Redis connection failed: %s", c->errstr);
        zc_qs_conn_drop(&self->conn);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        s_error(self, "Redis error: %s", reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

int64_t zc_queue_now_ms(zc_queue_t *self)
{
    assert(self);
    redisContext *c = zc_qs_conn_get(&self->conn);
    if (!c) return s_error(self, "%s", self->conn.error);
    redisReply *reply = (redisReply *)redisCommand(c, "TIME");
    if (!reply) {
        s_error(self, "Redis connection failed: %s", c->errstr);
        zc_qs_conn_drop(&self->conn);
        return -1;
    }
    int64_t now = -1;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        now = zc_qs_int(reply->element[0], 0) * 1000 + zc_qs_int(reply->element[1], 0) / 1000;
    else
        s_error(self, "unexpected reply to TIME");
    freeReplyObject(reply);
    return now;
}

//  Checks a job's options and appends max_attempts, backoff and timeout.
static int s_add_opts(zc_queue_t *self, zc_qs_args_t *args, const zc_job_opts_t *opts)
{
    zc_job_opts_t none = {0};
    if (!opts) opts = &none;
    if (opts->max_attempts < 0 || opts->backoff_ms < 0 || opts->timeout_ms < 0)
        return s_error(self, "negative job option");
    zc_qs_args_int(args, opts->max_attempts ? opts->max_attempts : ZC_QS_DEFAULT_ATTEMPTS);
    zc_qs_args_int(args, opts->backoff_ms ? opts->backoff_ms : ZC_QS_DEFAULT_BACKOFF_MS);
    zc_qs_args_int(args, opts->timeout_ms);
    return 0;
}

static int s_check_names(zc_queue_t *self, const char *queue, const char *task)
{
    if (!zc_qs_name_valid(queue))
        return s_error(self, "invalid queue name '%s'", queue ? queue : "(null)");
    if (task && !zc_qs_name_valid(task)) return s_error(self, "invalid task name '%s'", task);
    return 0;
}

//  Enqueues count items in batches of ZC_QS_BATCH_MAX, pipelined. mode is
//  "now", "at" or "in". Fills results and, for a single item, id_out.
//  Returns the number enqueued or -1.
static int s_enqueue(zc_queue_t *self, const char *queue, const char *task, const char *mode,
                     int64_t when, const zc_queue_item_t *items, size_t count,
                     const zc_job_opts_t *opts, int *results, char *id_out)
{
    if (s_check_names(self, queue, task)) return -1;
    for (size_t i = 0; i < count; i++)
        if (items[i].id && !zc_qs_id_valid(items[i].id))
            return s_error(self, "invalid job id '%s'", items[i].id);
    if (count == 0) return 0;
    redisContext *c = zc_qs_conn_get(&self->conn);
    if (!c) return s_error(self, "%s", self->conn.error);
    size_t batches = (count + ZC_QS_BATCH_MAX - 1) / ZC_QS_BATCH_MAX;
    zc_qs_args_t *args = (zc_qs_args_t *)calloc(batches, sizeof(zc_qs_args_t));
    zc_qs_args_t **argp = (zc_qs_args_t **)calloc(batches, sizeof(zc_qs_args_t *));
    redisReply **replies = (redisReply **)calloc(batches, sizeof(redisReply *));
    assert(args && argp && replies);
    int rc = 0;
    for (size_t b = 0; b < batches && rc == 0; b++) {
        //  Batch 0 reuses self->args, so a single enqueue allocates nothing.
        argp[b] = b == 0 ? &self->args : &args[b];
        zc_qs_args_start(argp[b], ZC_QS_ENQUEUE, self->prefix);
        zc_qs_args_str(argp[b], queue);
        zc_qs_args_str(argp[b], task);
        zc_qs_args_str(argp[b], mode);
        zc_qs_args_int(argp[b], when);
        rc = s_add_opts(self, argp[b], opts);
        for (size_t i = b * ZC_QS_BATCH_MAX; i < count && i < (b + 1) * ZC_QS_BATCH_MAX; i++) {
            zc_qs_args_str(argp[b], items[i].id ? items[i].id : "");
            zc_qs_args_add(argp[b], items[i].args, items[i].args ? items[i].args_size : 0);
        }
    }
    int enqueued = 0;
    if (rc == 0 && zc_qs_pipeline(c, argp, (int)batches, replies)) {
        rc = s_error(self, "Redis connection failed: %s", c->errstr);
        zc_qs_conn_drop(&self->conn);
    }
    for (size_t b = 0; b < batches && rc == 0; b++) {
        redisReply *reply = replies[b];
        size_t first = b * ZC_QS_BATCH_MAX;
        size_t n = count - first < ZC_QS_BATCH_MAX ? count - first : ZC_QS_BATCH_MAX;
        if (reply->type == REDIS_REPLY_ERROR) {
            rc = s_error(self, "Redis error: %s", reply->str);
            break;
        }
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
            rc = s_error(self, "unexpected reply to enqueue");
            break;
        }
        for (size_t i = 0; i < n; i++) {
            redisReply *id = reply->element[i];
            int dup = id->type != REDIS_REPLY_STRING || id->len == 0;
            if (results) results[first + i] = dup ? ZC_QUEUE_DUPLICATE : 0;
            if (!dup) enqueued++;
            if (id_out && count == 1 && !dup) snprintf(id_out, ZC_JOB_ID_MAX + 1, "%s", id->str);
        }
    }
    for (size_t b = 0; b < batches; b++) {
        if (replies[b]) freeReplyObject(replies[b]);
        if (b > 0) zc_qs_args_free(&args[b]);
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
    int result = 0;
    int rc = s_enqueue(self, queue, task, mode, when, &item, 1, opts, &result, id_out);
    if (rc < 0) return -1;
    if (result == ZC_QUEUE_DUPLICATE) {
        if (id_out) snprintf(id_out, ZC_JOB_ID_MAX + 1, "%s", item.id);
        s_error(self, "a live job already has the id '%s'", item.id);
        return ZC_QUEUE_DUPLICATE;
    }
    return 0;
}

int zc_queue_enqueue(zc_queue_t *self, const char *queue, const char *task, const void *args,
                     size_t args_size, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    return s_enqueue_one(self, queue, task, "now", 0, args, args_size, opts, id_out);
}

int zc_queue_enqueue_at(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t at_ms, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    return s_enqueue_one(self, queue, task, "at", at_ms, args, args_size, opts, id_out);
}

int zc_queue_enqueue_in(zc_queue_t *self, const char *queue, const char *task, const void *args,
                        size_t args_size, int64_t delay_ms, const zc_job_opts_t *opts, char *id_out)
{
    assert(self);
    if (delay_ms < 0) return s_error(self, "negative delay");
    return s_enqueue_one(self, queue, task, "in", delay_ms, args, args_size, opts, id_out);
}

int zc_queue_enqueue_many(zc_queue_t *self, const char *queue, const char *task,
                          const zc_queue_item_t *items, size_t count, const zc_job_opts_t *opts,
                          int *results)
{
    assert(self);
    assert(items || count == 0);
    return s_enqueue(self, queue, task, "now", 0, items, count, opts, results, NULL);
}

int zc_queue_every(zc_queue_t *self, const char *name, const char *queue, const char *task,
                   const void *args, size_t args_size, int64_t every_ms, const zc_job_opts_t *opts)
{
    assert(self);
    if (!zc_qs_name_valid(name))
        return s_error(self, "invalid recurring task name '%s'", name ? name : "(null)");
    if (s_check_names(self, queue, task)) return -1;
    if (every_ms <= 0) return s_error(self, "the period must be positive");
    zc_qs_args_start(&self->args, ZC_QS_EVERY, self->prefix);
    zc_qs_args_str(&self->args, name);
    zc_qs_args_str(&self->args, queue);
    zc_qs_args_str(&self->args, task);
    zc_qs_args_add(&self->args, args, args ? args_size : 0);
    zc_qs_args_int(&self->args, every_ms);
    if (s_add_opts(self, &self->args, opts)) return -1;
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    freeReplyObject(reply);
    return 0;
}

int zc_queue_every_remove(zc_queue_t *self, const char *name)
{
    assert(self);
    if (!zc_qs_name_valid(name))
        return s_error(self, "invalid recurring task name '%s'", name ? name : "(null)");
    zc_qs_args_start(&self->args, ZC_QS_EVERY_REMOVE, self->prefix);
    zc_qs_args_str(&self->args, name);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int existed = zc_qs_int(reply, 0) > 0;
    freeReplyObject(reply);
    return existed;
}

int zc_queue_stats(zc_queue_t *self, const char *queue, zc_queue_stats_t *stats)
{
    assert(self);
    assert(stats);
    memset(stats, 0, sizeof *stats);
    if (s_check_names(self, queue, NULL)) return -1;
    zc_qs_args_start(&self->args, ZC_QS_STATS, self->prefix);
    zc_qs_args_str(&self->args, queue);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int rc = 0;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 9)
        rc = s_error(self, "unexpected reply to stats");
    else {
        int64_t *fields[] = {&stats->queued,    &stats->delayed,   &stats->inflight,
                             &stats->processed, &stats->failed,    &stats->retried,
                             &stats->requeued,  &stats->lost_acks, &stats->failed_list};
        //  Script order: queued, delayed, inflight, processed, failed, retried,
        //  requeued, lost_acks, failed_list.
        for (int i = 0; i < 9; i++)
            *fields[i] = zc_qs_int(reply->element[i], 0);
    }
    freeReplyObject(reply);
    return rc;
}

int zc_queue_failed(zc_queue_t *self, const char *queue, zc_queue_failure_t *out, int max)
{
    assert(self);
    assert(out || max == 0);
    if (s_check_names(self, queue, NULL)) return -1;
    if (max <= 0) return 0;
    zc_qs_args_start(&self->args, ZC_QS_FAILED, self->prefix);
    zc_qs_args_str(&self->args, queue);
    zc_qs_args_int(&self->args, max);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 5 != 0) {
        freeReplyObject(reply);
        return s_error(self, "unexpected reply to failed");
    }
    int n = (int)(reply->elements / 5);
    for (int i = 0; i < n && i < max; i++) {
        redisReply **f = reply->element + 5 * i;
        zc_queue_failure_t *entry = &out[i];
        snprintf(entry->id, sizeof entry->id, "%.*s", f[0]->str ? (int)f[0]->len : 0,
                 f[0]->str ? f[0]->str : "");
        snprintf(entry->task, sizeof entry->task, "%.*s", f[1]->str ? (int)f[1]->len : 0,
                 f[1]->str ? f[1]->str : "");
        snprintf(entry->error, sizeof entry->error, "%.*s", f[2]->str ? (int)f[2]->len : 0,
                 f[2]->str ? f[2]->str : "");
        entry->attempts = (int)zc_qs_int(f[3], 0);
        entry->failed_ms = zc_qs_int(f[4], 0);
    }
    freeReplyObject(reply);
    return n < max ? n : max;
}

int zc_queue_retry(zc_queue_t *self, const char *queue, const char *id)
{
    assert(self);
    if (s_check_names(self, queue, NULL)) return -1;
    if (!zc_qs_id_valid(id)) return s_error(self, "invalid job id '%s'", id ? id : "(null)");
    zc_qs_args_start(&self->args, ZC_QS_RETRY, self->prefix);
    zc_qs_args_str(&self->args, queue);
    zc_qs_args_str(&self->args, id);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int moved = zc_qs_int(reply, 0) == 1;
    freeReplyObject(reply);
    if (!moved) return s_error(self, "job '%s' is not on the failed list of queue '%s'", id, queue);
    return 0;
}

int64_t zc_queue_delete(zc_queue_t *self, const char *queue)
{
    assert(self);
    if (s_check_names(self, queue, NULL)) return -1;
    zc_qs_args_start(&self->args, ZC_QS_DELETE, self->prefix);
    zc_qs_args_str(&self->args, queue);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int64_t deleted = zc_qs_int(reply, 0);
    freeReplyObject(reply);
    return deleted;
}

int64_t zc_queue_requeue_node(zc_queue_t *self, const char *node_id)
{
    assert(self);
    if (!zc_qs_id_valid(node_id))
        return s_error(self, "invalid node id '%s'", node_id ? node_id : "(null)");
    zc_qs_args_start(&self->args, ZC_QS_REQUEUE_NODE, self->prefix);
    zc_qs_args_str(&self->args, node_id);
    redisReply *reply = s_call(self);
    if (!reply) return -1;
    int64_t requeued = zc_qs_int(reply, 0);
    freeReplyObject(reply);
    if (requeued > 0)
        zc_log(ZC_LOG_INFO, "queue", "returned %lld jobs of node %s to their queues",
               (long long)requeued, node_id);
    return requeued;
}
