/*  zc_queue_inspect — looking into the queue: the jobs of a list, the
    delayed ones with their times, what each worker runs now, one job, and
    removing one job by id.

    Why scripts even to read: a job is an id in a list or a sorted set plus
    its hash, and the two are written together by the queue's scripts. A
    script reads both in one step, so a listed job's state and place agree.

    Why every job is described the same way (s_describe below): an operator
    looks into a queue because something is wrong, so ids whose hash is gone
    or holds another type are listed too ("missing", "damaged") rather than
    skipped, and nothing a script reads can make it fail: key types are
    checked (TYPE) before a read that would refuse them.

    Why slices for the delayed jobs of one queue: the delayed set holds the
    jobs of every queue, so finding one queue's means walking it. Each call
    walks S_DELAYED_SLICE entries and the caller loops, so no call holds
    Redis for more than about a millisecond however many jobs wait.

    Removing writes, so it checks the type of every key it will write before
    its first write, as every queue script does (zc_queue_scripts.c).
*/
#include "zc_queue_internal.h"
#include "zc_queue_scripts.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST_MAX      1000 //  most jobs one listing returns
#define S_DELAYED_SLICE 500  //  delayed-set entries one call walks
#define S_JOB_FIELDS    12   //  fields of one described job in a reply

//  Lua: describe(id) appends the job's S_JOB_FIELDS fields to out:
//  id queue task state attempt failures max_attempts created_ms at_ms node
//  error args. zscore() reads a score without failing on a damaged set.
#define S_DESCRIBE                                                                                 \
    "local function zscore(key, id)\n"                                                             \
    "  local r = redis.pcall('ZSCORE', key, id)\n"                                                 \
    "  if type(r) == 'table' then return 0 end\n"                                                  \
    "  return num(r, 0)\n"                                                                         \
    "end\n"                                                                                        \
    "local function describe(out, id)\n"                                                           \
    "  local t = redis.call('TYPE', jkey(id))['ok']\n"                                             \
    "  local f = {}\n"                                                                             \
    "  local state = t == 'none' and 'missing' or 'damaged'\n"                                     \
    "  if t == 'hash' then\n"                                                                      \
    "    f = redis.call('HMGET', jkey(id), 'queue', 'task', 'state', 'attempt', 'failures',\n"     \
    "                   'max_attempts', 'created_ms', 'node', 'error', 'args', 'failed_ms')\n"     \
    "    state = f[3] or 'damaged'\n"                                                              \
    "  end\n"                                                                                      \
    "  local at = 0\n"                                                                             \
    "  if state == 'delayed' then at = zscore(DELAYED, id)\n"                                      \
    "  elseif state == 'active' then at = zscore(INFLIGHT, id)\n"                                  \
    "  elseif state == 'failed' then at = num(f[11], 0) end\n"                                     \
    "  local row = {id, f[1] or '', f[2] or '', state, num(f[4], 0), num(f[5], 0),\n"              \
    "               num(f[6], 0), num(f[7], 0), at, f[8] or '', f[9] or '', f[10] or ''}\n"        \
    "  for _, v in ipairs(row) do out[#out + 1] = v end\n"                                         \
    "end\n"

//  ARGV: P queue list(ready|failed) offset count. Returns {length, job...};
//  the ready list next-to-run first (claims pop its right end).
static const char s_jobs[] =
    S_DESCRIBE "local key = qkey(ARGV[2], ARGV[3])\n"
               "local e = mistyped(key, 'list')\n"
               "if e then return refuse(e) end\n"
               "local offset, count = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
               "local out = {redis.call('LLEN', key)}\n"
               "local ids\n"
               "if ARGV[3] == 'ready' then\n"
               "  ids = redis.call('LRANGE', key, -(offset + count), -(offset + 1))\n"
               "  for i = #ids, 1, -1 do describe(out, ids[i]) end\n"
               "else\n"
               "  ids = redis.call('LRANGE', key, offset, offset + count - 1)\n"
               "  for _, id in ipairs(ids) do describe(out, id) end\n"
               "end\n"
               "return out\n";

//  ARGV: P queue('' = all) position skip count slice. Walks slice entries
//  of the delayed set from position, skipping skip jobs of queue, and
//  describes up to count. Returns {size, next position (-1 at the end),
//  skip left, job...}.
static const char s_delayed[] =
    S_DESCRIBE "local q, pos, skip, count = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), "
               "tonumber(ARGV[5])\n"
               "local e = mistyped(DELAYED, 'zset')\n"
               "if e then return refuse(e) end\n"
               "local total = redis.call('ZCARD', DELAYED)\n"
               "local ids = redis.call('ZRANGE', DELAYED, pos, pos + tonumber(ARGV[6]) - 1)\n"
               "local out = {total, 0, 0}\n"
               "local found = 0\n"
               "for i, id in ipairs(ids) do\n"
               "  local mine = q == ''\n"
               "  if not mine then mine = redis.pcall('HGET', jkey(id), 'queue') == q end\n"
               "  if mine and skip > 0 then skip = skip - 1\n"
               "  elseif mine then\n"
               "    describe(out, id)\n"
               "    found = found + 1\n"
               "    if found == count then pos = pos + i; ids = nil; break end\n"
               "  end\n"
               "end\n"
               "if ids then pos = #ids < tonumber(ARGV[6]) and -1 or pos + #ids end\n"
               "out[2], out[3] = pos, skip\n"
               "return out\n";

//  ARGV: P offset count. Returns {claims, job...} by lease deadline.
static const char s_working[] = S_DESCRIBE
    "local e = mistyped(INFLIGHT, 'zset')\n"
    "if e then return refuse(e) end\n"
    "local offset, count = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local out = {redis.call('ZCARD', INFLIGHT)}\n"
    "for _, id in ipairs(redis.call('ZRANGE', INFLIGHT, offset, offset + count - 1)) do\n"
    "  describe(out, id)\n"
    "end\n"
    "return out\n";

//  ARGV: P id. Returns the job's fields.
static const char s_job[] = S_DESCRIBE "local out = {}\n"
                                       "describe(out, ARGV[2])\n"
                                       "return out\n";

//  ARGV: P queue id. Returns {'removed', state}, {'missing'}, {'active',
//  node} or {'damaged', state}.
static const char s_remove[] =
    "local q, id = ARGV[2], ARGV[3]\n"
    "local e = check(jkey(id), 'hash')\n"
    "if e then return refuse(e) end\n"
    "local f = redis.call('HMGET', jkey(id), 'queue', 'state', 'node')\n"
    "if f[1] ~= q then return {'missing'} end\n"
    "local state = f[2]\n"
    "if state == 'active' then return {'active', f[3] or ''} end\n"
    "if state == 'queued' then e = check(qkey(q, 'ready'), 'list')\n"
    "elseif state == 'failed' then e = check(qkey(q, 'failed'), 'list')\n"
    "elseif state == 'delayed' then e = check(DELAYED, 'zset', qkey(q, 'stats'), 'stats')\n"
    "else return {'damaged', state or ''} end\n"
    "if e then return refuse(e) end\n"
    "if state == 'queued' then redis.call('LREM', qkey(q, 'ready'), 0, id)\n"
    "elseif state == 'failed' then redis.call('LREM', qkey(q, 'failed'), 0, id)\n"
    "elseif redis.call('ZREM', DELAYED, id) == 1 then\n"
    "  redis.call('HINCRBY', qkey(q, 'stats'), 'delayed', -1)\n"
    "end\n"
    "redis.call('DEL', jkey(id))\n"
    "return {'removed', state}\n";

//  ARGV: P. Returns the queue names.
static const char s_names[] = "local e = mistyped(QUEUES, 'set')\n"
                              "if e then return refuse(e) end\n"
                              "return redis.call('SMEMBERS', QUEUES)\n";

typedef enum { S_JOBS, S_DELAYED, S_WORKING, S_JOB, S_REMOVE, S_NAMES, S_SCRIPTS } s_script_t;

static const char *s_bodies[S_SCRIPTS] = {s_jobs, s_delayed, s_working, s_job, s_remove, s_names};
static char *s_sources[S_SCRIPTS];
static zc_script_t s_scripts[S_SCRIPTS];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_free_sources(void)
{
    for (int i = 0; i < S_SCRIPTS; i++)
        free(s_sources[i]);
}

static void s_init_scripts(void)
{
    for (int i = 0; i < S_SCRIPTS; i++) {
        s_sources[i] = zc_qs_source(s_bodies[i]);
        zc_script_init(&s_scripts[i], s_sources[i]);
    }
    atexit(s_free_sources);
}

//  Starts the queue's argument list as a call of script.
static zc_redis_args_t *s_start(zc_queue_t *self, s_script_t script)
{
    pthread_once(&s_once, s_init_scripts);
    zc_redis_args_t *args = zc_queue_args(self);
    zc_qs_args_start_script(args, &s_scripts[script], zc_queue_identity(self));
    return args;
}

//  --------------------------------------------------------------------------
//  Replies

static void s_copy(char *out, size_t cap, const redisReply *reply)
{
    size_t len = reply->type == REDIS_REPLY_STRING ? reply->len : 0;
    if (len >= cap) len = cap - 1;
    if (len) memcpy(out, reply->str, len);
    out[len] = 0;
}

//  Fills job from S_JOB_FIELDS elements of a reply.
static void s_parse_job(redisReply **f, zc_queue_job_t *job)
{
    memset(job, 0, sizeof *job);
    s_copy(job->id, sizeof job->id, f[0]);
    s_copy(job->queue, sizeof job->queue, f[1]);
    s_copy(job->task, sizeof job->task, f[2]);
    s_copy(job->state, sizeof job->state, f[3]);
    job->attempt = (int)zc_redis_reply_int(f[4], 0);
    job->failures = (int)zc_redis_reply_int(f[5], 0);
    job->max_attempts = (int)zc_redis_reply_int(f[6], 0);
    job->created_ms = zc_redis_reply_int(f[7], 0);
    job->at_ms = zc_redis_reply_int(f[8], 0);
    s_copy(job->node, sizeof job->node, f[9]);
    s_copy(job->error, sizeof job->error, f[10]);
    if (f[11]->type == REDIS_REPLY_STRING && f[11]->len > 0) {
        job->args = malloc(f[11]->len);
        assert(job->args);
        memcpy(job->args, f[11]->str, f[11]->len);
        job->args_size = f[11]->len;
    }
}

//  A listing being gathered, possibly over several calls.
typedef struct {
    zc_queue_job_t *jobs;
    size_t count;
} s_listing_t;

//  Appends the jobs of reply from element first on. Returns 0, or -1 if
//  the reply is not whole jobs.
static int s_gather(s_listing_t *listing, const redisReply *reply, size_t first)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < first ||
        (reply->elements - first) % S_JOB_FIELDS != 0)
        return -1;
    size_t n = (reply->elements - first) / S_JOB_FIELDS;
    for (size_t i = 0; i < n * S_JOB_FIELDS; i++)
        if (reply->element[first + i]->type != REDIS_REPLY_STRING &&
            reply->element[first + i]->type != REDIS_REPLY_INTEGER)
            return -1;
    if (n == 0) return 0;
    listing->jobs =
        (zc_queue_job_t *)realloc(listing->jobs, (listing->count + n) * sizeof(zc_queue_job_t));
    assert(listing->jobs);
    for (size_t i = 0; i < n; i++)
        s_parse_job(reply->element + first + i * S_JOB_FIELDS, &listing->jobs[listing->count++]);
    return 0;
}

//  Checks a listing's arguments. Returns 0 or -1 (ZC_ERR_INVALID).
static int s_check_range(zc_queue_t *self, int64_t offset, int count, zc_queue_job_t **jobs_p,
                         size_t *count_p)
{
    assert(jobs_p && count_p);
    *jobs_p = NULL;
    *count_p = 0;
    zc_failure_clear(zc_queue_failure(self));
    if (offset < 0 || count < 1 || count > S_LIST_MAX)
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_INVALID,
                              "offset must be >= 0 and count 1..%d", S_LIST_MAX);
    return 0;
}

//  Runs a listing script whose reply is {total, job...}; fills the outputs.
static int s_list(zc_queue_t *self, zc_queue_job_t **jobs_p, size_t *count_p, int64_t *total_p)
{
    redisReply *reply = zc_queue_call(self);
    if (!reply) return -1;
    s_listing_t listing = {NULL, 0};
    int rc = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 ? s_gather(&listing, reply, 1)
                                                                      : -1;
    if (rc == 0 && total_p) *total_p = zc_redis_reply_int(reply->element[0], 0);
    freeReplyObject(reply);
    if (rc) return zc_failure_set(zc_queue_failure(self), ZC_ERR_REDIS, "unexpected reply");
    *jobs_p = listing.jobs;
    *count_p = listing.count;
    return 0;
}

//  --------------------------------------------------------------------------
//  The calls

int zc_queue_jobs(zc_queue_t *self, const char *queue, zc_queue_list_t list, int64_t offset,
                  int count, zc_queue_job_t **jobs_p, size_t *count_p, int64_t *total_p)
{
    assert(self);
    //  "" for NULL: a queue is needed here, and "" is no valid name.
    if (s_check_range(self, offset, count, jobs_p, count_p) ||
        zc_queue_check(self, queue ? queue : "", NULL))
        return -1;
    if (list != ZC_QUEUE_READY && list != ZC_QUEUE_FAILED)
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_INVALID, "unknown list");
    zc_redis_args_t *args = s_start(self, S_JOBS);
    zc_redis_args_str(args, queue);
    zc_redis_args_str(args, list == ZC_QUEUE_READY ? "ready" : "failed");
    zc_redis_args_int(args, offset);
    zc_redis_args_int(args, count);
    return s_list(self, jobs_p, count_p, total_p);
}

int zc_queue_delayed(zc_queue_t *self, const char *queue, int64_t offset, int count,
                     zc_queue_job_t **jobs_p, size_t *count_p, int64_t *total_p)
{
    assert(self);
    if (s_check_range(self, offset, count, jobs_p, count_p) || zc_queue_check(self, queue, NULL))
        return -1;
    //  Without a queue every entry counts, so the offset is the position.
    int64_t position = queue ? 0 : offset, skip = queue ? offset : 0;
    s_listing_t listing = {NULL, 0};
    while (position >= 0 && listing.count < (size_t)count) {
        zc_redis_args_t *args = s_start(self, S_DELAYED);
        zc_redis_args_str(args, queue ? queue : "");
        zc_redis_args_int(args, position);
        zc_redis_args_int(args, skip);
        zc_redis_args_int(args, count - (int)listing.count);
        zc_redis_args_int(args, queue ? S_DELAYED_SLICE : count);
        redisReply *reply = zc_queue_call(self);
        if (!reply) break;
        int rc = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3
                     ? s_gather(&listing, reply, 3)
                     : -1;
        if (rc == 0) {
            if (total_p) *total_p = zc_redis_reply_int(reply->element[0], 0);
            position = zc_redis_reply_int(reply->element[1], -1);
            skip = zc_redis_reply_int(reply->element[2], 0);
        } else
            zc_failure_set(zc_queue_failure(self), ZC_ERR_REDIS, "unexpected reply");
        freeReplyObject(reply);
        if (rc) break;
    }
    if (zc_queue_failure(self)->kind != ZC_OK) {
        zc_queue_jobs_free(&listing.jobs, listing.count);
        return -1;
    }
    *jobs_p = listing.jobs;
    *count_p = listing.count;
    return 0;
}

int zc_queue_working(zc_queue_t *self, int64_t offset, int count, zc_queue_job_t **jobs_p,
                     size_t *count_p, int64_t *total_p)
{
    assert(self);
    if (s_check_range(self, offset, count, jobs_p, count_p)) return -1;
    zc_redis_args_t *args = s_start(self, S_WORKING);
    zc_redis_args_int(args, offset);
    zc_redis_args_int(args, count);
    return s_list(self, jobs_p, count_p, total_p);
}

int zc_queue_job(zc_queue_t *self, const char *id, zc_queue_job_t *job)
{
    assert(self && job);
    memset(job, 0, sizeof *job);
    zc_failure_clear(zc_queue_failure(self));
    if (zc_queue_check(self, NULL, id)) return -1;
    zc_redis_args_str(s_start(self, S_JOB), id);
    redisReply *reply = zc_queue_call(self);
    if (!reply) return -1;
    s_listing_t listing = {NULL, 0};
    int rc = s_gather(&listing, reply, 0);
    freeReplyObject(reply);
    if (rc || listing.count != 1) {
        zc_queue_jobs_free(&listing.jobs, listing.count);
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_REDIS, "unexpected reply");
    }
    *job = listing.jobs[0];
    free(listing.jobs);
    if (strcmp(job->state, "missing") == 0)
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_MISSING, "no job '%.100s'", id);
    if (strcmp(job->state, "damaged") == 0)
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_TYPE,
                              "job '%.100s': its key is not a job's hash", id);
    return 0;
}

int zc_queue_remove(zc_queue_t *self, const char *queue, const char *id)
{
    assert(self);
    zc_failure_clear(zc_queue_failure(self));
    if (zc_queue_check(self, queue ? queue : "", id)) return -1;
    zc_redis_args_t *args = s_start(self, S_REMOVE);
    zc_redis_args_str(args, queue);
    zc_redis_args_str(args, id);
    redisReply *reply = zc_queue_call(self);
    if (!reply) return -1;
    char outcome[16] = "", detail[ZC_JOB_ID_MAX + 1] = "";
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1) {
        s_copy(outcome, sizeof outcome, reply->element[0]);
        if (reply->elements >= 2) s_copy(detail, sizeof detail, reply->element[1]);
    }
    freeReplyObject(reply);
    zc_failure_t *failure = zc_queue_failure(self);
    if (strcmp(outcome, "removed") == 0) return 0;
    if (strcmp(outcome, "missing") == 0)
        return zc_failure_set(failure, ZC_ERR_MISSING, "no job '%.100s' in queue '%s'", id, queue);
    if (strcmp(outcome, "active") == 0)
        return zc_failure_set(failure, ZC_ERR_STATE, "job '%.100s' is running on %.100s", id,
                              detail);
    if (strcmp(outcome, "damaged") == 0)
        return zc_failure_set(failure, ZC_ERR_TYPE, "job '%.100s' has no valid state ('%.20s')", id,
                              detail);
    return zc_failure_set(failure, ZC_ERR_REDIS, "unexpected reply");
}

static int s_by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int zc_queue_names(zc_queue_t *self, char ***names_p, size_t *count_p)
{
    assert(self && names_p && count_p);
    *names_p = NULL;
    *count_p = 0;
    zc_failure_clear(zc_queue_failure(self));
    s_start(self, S_NAMES);
    redisReply *reply = zc_queue_call(self);
    if (!reply) return -1;
    if (reply->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(reply);
        return zc_failure_set(zc_queue_failure(self), ZC_ERR_REDIS, "unexpected reply");
    }
    char **names = (char **)calloc(reply->elements + 1, sizeof(char *));
    assert(names);
    size_t n = 0;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            names[n++] = strdup(reply->element[i]->str);
    freeReplyObject(reply);
    qsort(names, n, sizeof(char *), s_by_name);
    *names_p = names;
    *count_p = n;
    return 0;
}

void zc_queue_names_free(char ***names_p)
{
    assert(names_p);
    if (!*names_p) return;
    for (char **name = *names_p; *name; name++)
        free(*name);
    free(*names_p);
    *names_p = NULL;
}

void zc_queue_job_clear(zc_queue_job_t *job)
{
    if (!job) return;
    free(job->args);
    job->args = NULL;
    job->args_size = 0;
}

void zc_queue_jobs_free(zc_queue_job_t **jobs_p, size_t count)
{
    assert(jobs_p);
    if (!*jobs_p) return;
    for (size_t i = 0; i < count; i++)
        zc_queue_job_clear(&(*jobs_p)[i]);
    free(*jobs_p);
    *jobs_p = NULL;
}
