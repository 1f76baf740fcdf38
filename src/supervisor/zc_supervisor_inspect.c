/*  zc_supervisor_inspect — the admin API's view into the cluster's task
    queue and cache locks:

        GET  /queue/jobs/QUEUE      queued jobs, next to run first
        GET  /queue/failed/QUEUE    the failed list, newest first
        GET  /queue/delayed[/QUEUE] delayed jobs by due time (all queues without one)
        GET  /queue/working         claimed jobs: the node running each
        GET  /queue/job/ID          one job
        GET  /queue/stats/QUEUE     the queue's counters
        POST /queue/remove/QUEUE/ID delete a queued, delayed or failed job
        GET  /cache/locks           cache locks with owner and ttl_ms

    Listings take ?offset=N&count=N (default 0 and 100, count at most 1000)
    and answer {"ok":true,"total":N,"jobs":[...]}; a job is an object with
    the fields of zc_queue_job_t, its msgpack args as "args_hex".

    Each request opens its own connection to the cluster's Redis and closes
    it: the master holds none between requests, and these are rare,
    operator-driven calls (about a millisecond each). Before the master
    knows its Redis (zc_supervisor_run), they answer 503.
*/
#include "zc_supervisor_internal.h"
#include "zc_cache.h"
#include "zc_queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The HTTP status for a failure kind.
static int s_status(zc_error_t kind)
{
    return kind == ZC_ERR_INVALID   ? 400
           : kind == ZC_ERR_MISSING ? 404
           : kind == ZC_ERR_STATE   ? 409
                                    : 500;
}

static json_t *s_job_json(const zc_queue_job_t *job)
{
    char *hex = (char *)malloc(2 * job->args_size + 1);
    for (size_t i = 0; i < job->args_size; i++)
        sprintf(hex + 2 * i, "%02x", ((const unsigned char *)job->args)[i]);
    hex[2 * job->args_size] = 0;
    json_t *value = json_pack("{s:o, s:o, s:o, s:s, s:i, s:i, s:i, s:I, s:I, s:o, s:o, s:s}", "id",
                              sup_json_string(job->id), "queue", sup_json_string(job->queue),
                              "task", sup_json_string(job->task), "state", job->state, "attempt",
                              job->attempt, "failures", job->failures, "max_attempts",
                              job->max_attempts, "created_ms", (json_int_t)job->created_ms, "at_ms",
                              (json_int_t)job->at_ms, "node", sup_json_string(job->node), "error",
                              sup_json_string(job->error), "args_hex", hex);
    free(hex);
    return value;
}

//  Reads ?offset and ?count. Returns 0, or -1 after answering 400.
static int s_range(zc_admin_request_t *request, int64_t *offset, int *count)
{
    const char *o = zc_admin_request_param(request, "offset");
    const char *c = zc_admin_request_param(request, "count");
    char *end = NULL;
    *offset = o ? strtoll(o, &end, 10) : 0;
    int bad = o && (end == o || *end || *offset < 0);
    *count = c ? (int)strtol(c, &end, 10) : 100;
    bad = bad || (c && (end == c || *end || *count < 1 || *count > 1000));
    if (bad) sup_reply_error(request, 400, "offset must be >= 0 and count 1..1000");
    return bad ? -1 : 0;
}

static void s_answer_jobs(zc_admin_request_t *request, zc_queue_t *queue, int rc,
                          zc_queue_job_t *jobs, size_t count, int64_t total)
{
    if (rc) {
        sup_reply_error(request, s_status(zc_queue_error(queue)), zc_queue_errstr(queue));
        return;
    }
    json_t *array = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(array, s_job_json(&jobs[i]));
    zc_queue_jobs_free(&jobs, count);
    sup_reply_json(
        request, 200,
        json_pack("{s:b, s:I, s:o}", "ok", 1, "total", (json_int_t)total, "jobs", array));
}

static void s_stats(zc_admin_request_t *request, zc_queue_t *queue, const char *name)
{
    zc_queue_stats_t s;
    if (zc_queue_stats(queue, name, &s)) {
        sup_reply_error(request, s_status(zc_queue_error(queue)), zc_queue_errstr(queue));
        return;
    }
    sup_reply_json(request, 200,
                   json_pack("{s:b, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "ok", 1,
                             "stats", "queued", (json_int_t)s.queued, "delayed",
                             (json_int_t)s.delayed, "inflight", (json_int_t)s.inflight, "processed",
                             (json_int_t)s.processed, "failed", (json_int_t)s.failed, "failed_list",
                             (json_int_t)s.failed_list, "retried", (json_int_t)s.retried,
                             "requeued", (json_int_t)s.requeued, "lost_acks",
                             (json_int_t)s.lost_acks));
}

static void s_job(zc_admin_request_t *request, zc_queue_t *queue, const char *id)
{
    zc_queue_job_t job;
    if (zc_queue_job(queue, id, &job))
        sup_reply_error(request, s_status(zc_queue_error(queue)), zc_queue_errstr(queue));
    else
        sup_reply_json(request, 200, json_pack("{s:b, s:o}", "ok", 1, "job", s_job_json(&job)));
    zc_queue_job_clear(&job);
}

static void s_remove(zc_admin_request_t *request, zc_queue_t *queue, const char *name,
                     const char *id)
{
    if (zc_queue_remove(queue, name, id))
        sup_reply_error(request, s_status(zc_queue_error(queue)), zc_queue_errstr(queue));
    else
        sup_reply_json(request, 200, json_pack("{s:b, s:s}", "ok", 1, "result", "removed"));
}

//  Runs a listing (jobs, failed, delayed, working) on queue.
static void s_listing(zc_admin_request_t *request, zc_queue_t *queue, const char *what,
                      const char *name)
{
    int64_t offset, total = 0;
    int count;
    if (s_range(request, &offset, &count)) return;
    zc_queue_job_t *jobs = NULL;
    size_t n = 0;
    int rc;
    if (strcmp(what, "working") == 0)
        rc = zc_queue_working(queue, offset, count, &jobs, &n, &total);
    else if (strcmp(what, "delayed") == 0)
        rc = zc_queue_delayed(queue, name, offset, count, &jobs, &n, &total);
    else
        rc =
            zc_queue_jobs(queue, name, strcmp(what, "jobs") == 0 ? ZC_QUEUE_READY : ZC_QUEUE_FAILED,
                          offset, count, &jobs, &n, &total);
    s_answer_jobs(request, queue, rc, jobs, n, total);
}

void sup_admin_queue(zc_supervisor_t *self, zc_admin_request_t *request)
{
    int argc = zc_admin_request_argc(request);
    const char *what = argc > 1 ? zc_admin_request_arg(request, 1) : "";
    const char *a2 = argc > 2 ? zc_admin_request_arg(request, 2) : NULL;
    int post = strcmp(zc_admin_request_method(request), "POST") == 0;
    int one = argc == 3, listing = strcmp(what, "jobs") == 0 || strcmp(what, "failed") == 0;
    int known = (listing && one) || (strcmp(what, "delayed") == 0 && argc <= 3) ||
                (strcmp(what, "working") == 0 && argc == 2) ||
                ((strcmp(what, "job") == 0 || strcmp(what, "stats") == 0) && one) ||
                (strcmp(what, "remove") == 0 && argc == 4);
    if (!known) {
        sup_reply_error(request, 400,
                        "usage: GET /queue/jobs|failed|stats/QUEUE, /queue/delayed[/QUEUE], "
                        "/queue/working, /queue/job/ID; POST /queue/remove/QUEUE/ID");
        return;
    }
    if (strcmp(what, "remove") == 0 && !post) {
        sup_reply_error(request, 405, "this command changes things: use POST");
        return;
    }
    zc_queue_t *queue = *self->redis_url ? zc_queue_new(self->redis_url, self->name) : NULL;
    if (!queue) {
        sup_reply_error(request, 503, "no Redis (yet)");
        return;
    }
    if (strcmp(what, "job") == 0)
        s_job(request, queue, a2);
    else if (strcmp(what, "stats") == 0)
        s_stats(request, queue, a2);
    else if (strcmp(what, "remove") == 0)
        s_remove(request, queue, a2, zc_admin_request_arg(request, 3));
    else
        s_listing(request, queue, what, a2);
    zc_queue_destroy(&queue);
}

void sup_admin_cache(zc_supervisor_t *self, zc_admin_request_t *request)
{
    int argc = zc_admin_request_argc(request);
    if (argc != 2 || strcmp(zc_admin_request_arg(request, 1), "locks") != 0) {
        sup_reply_error(request, 400, "usage: GET /cache/locks[?pattern=GLOB]");
        return;
    }
    zc_cache_t *cache =
        *self->redis_url ? zc_cache_new(self->redis_url, self->name, "admin") : NULL;
    if (!cache) {
        sup_reply_error(request, 503, "no Redis (yet)");
        return;
    }
    zc_cache_lock_info_t *locks = NULL;
    size_t count = 0;
    if (zc_cache_locks(cache, zc_admin_request_param(request, "pattern"), &locks, &count)) {
        sup_reply_error(request, s_status(zc_cache_error(cache)), zc_cache_errstr(cache));
        zc_cache_destroy(&cache);
        return;
    }
    json_t *array = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(array,
                              json_pack("{s:o, s:o, s:I}", "key", sup_json_string(locks[i].key),
                                        "owner", sup_json_string(locks[i].owner), "ttl_ms",
                                        (json_int_t)locks[i].ttl_ms));
    zc_cache_locks_free(&locks, count);
    zc_cache_destroy(&cache);
    sup_reply_json(request, 200, json_pack("{s:b, s:o}", "ok", 1, "locks", array));
}
