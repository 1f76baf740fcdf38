/*  zc_queue_scripts — the task queue's Lua scripts and how they are called.

    Why Lua: every change to the queue moves a job between structures (a
    ready list, the delayed and in-flight sorted sets, a node's claim set, the
    failed list) and rewrites its hash. Done as separate commands, a node that
    dies half-way loses or doubles the job; done as one script, Redis runs it
    whole or not at all, and no other node sees the middle. So each state
    change below is one script, and a worker may crash between any two.

    Why Redis's clock: deadlines (claim leases, delayed jobs, the scheduler
    lease, recurring slots) are compared by whichever node runs a script.
    Taking "now" from redis.call('TIME') inside the script, rather than from
    the caller, means nodes with skewed clocks still agree. Redis 7
    replicates scripts by their effects, so this is allowed.

    Why a claim token: a job's hash holds "claim" = NODE#ATTEMPT while it is
    in flight. Ack, fail, release and lease renewal all check it, so a worker
    whose claim was taken back (its lease lapsed, or zc_queue_requeue_node)
    cannot ack or fail the job under the feet of the worker that now holds
    it: its result is counted as a lost ack and otherwise ignored.

    Why a signal list: idle workers block on q:QUEUE:signal (BLPOP on their
    own connection) instead of polling. Whatever makes jobs ready pushes one
    element there if none is waiting; a claim that leaves jobs behind pushes
    it again, so idle workers wake one another in turn.

    The key schema is described in docs/QUEUE.md.
*/
#include "zc_queue_scripts.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  The scripts. Each is the prelude followed by its own body.

static const char s_prelude[] =
    "local P = ARGV[1]\n"
    "local MAX_LOST = 5\n"
    "local function now_ms()\n"
    "  local t = redis.call('TIME')\n"
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local function qkey(queue, what) return P .. 'q:' .. queue .. ':' .. what end\n"
    "local function jkey(id) return P .. 'job:' .. id end\n"
    "local INFLIGHT = P .. 'q:inflight'\n"
    "local DELAYED = P .. 'q:delayed'\n"
    //  Wakes one idle worker of queue, if none is about to wake.
    "local function signal(queue)\n"
    "  local s = qkey(queue, 'signal')\n"
    "  if redis.call('EXISTS', s) == 0 then redis.call('RPUSH', s, '1') end\n"
    "end\n"
    //  Writes a new job's hash; state is 'queued' or 'delayed'. The counters
    //  attempt, failures and lost start absent: every reader takes absent as 0
    //  (each field costs the enqueue about a microsecond of Redis time).
    "local function new_job(id, queue, task, args, state, attempts, backoff, timeout, now)\n"
    "  redis.call('HSET', jkey(id), 'queue', queue, 'task', task, 'args', args,\n"
    "    'state', state, 'max_attempts', attempts, 'backoff_ms', backoff,\n"
    "    'timeout_ms', timeout, 'created_ms', now)\n"
    "end\n"
    //  Moves a job to its queue's failed list.
    "local function to_failed(id, queue, err, now)\n"
    "  redis.call('HSET', jkey(id), 'state', 'failed', 'error', err, 'failed_ms', now)\n"
    "  redis.call('HDEL', jkey(id), 'claim', 'node')\n"
    "  redis.call('LPUSH', qkey(queue, 'failed'), id)\n"
    "  redis.call('HINCRBY', qkey(queue, 'stats'), 'failed', 1)\n"
    "end\n"
    //  Takes a claim back from its node and puts the job at the head of its
    //  queue (or on the failed list once it was lost MAX_LOST times, so a job
    //  that kills its workers does not kill them all). Returns 1 if a job moved.
    "local function requeue_claim(id, now)\n"
    "  redis.call('ZREM', INFLIGHT, id)\n"
    "  local key = jkey(id)\n"
    "  local f = redis.call('HMGET', key, 'queue', 'node', 'lost', 'state')\n"
    "  if f[2] then redis.call('SREM', P .. 'q:node:' .. f[2], id) end\n"
    "  if not f[1] or f[4] ~= 'active' then return 0 end\n"
    "  local stats = qkey(f[1], 'stats')\n"
    "  redis.call('HINCRBY', stats, 'inflight', -1)\n"
    "  local lost = tonumber(f[3] or 0) + 1\n"
    "  redis.call('HSET', key, 'lost', lost)\n"
    "  if lost >= MAX_LOST then\n"
    "    to_failed(id, f[1], 'lost with its worker ' .. lost .. ' times', now)\n"
    "  else\n"
    "    redis.call('HSET', key, 'state', 'queued')\n"
    "    redis.call('HDEL', key, 'claim', 'node')\n"
    "    redis.call('RPUSH', qkey(f[1], 'ready'), id)\n"
    "    redis.call('HINCRBY', stats, 'requeued', 1)\n"
    "    signal(f[1])\n"
    "  end\n"
    "  return 1\n"
    "end\n";

//  ARGV: P queue task mode(now|at|in) when max_attempts backoff timeout (id args)...
//  Returns each job's id, or '' for a duplicate.
static const char s_enqueue[] =
    "local queue, task, mode, when = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])\n"
    "local now = now_ms()\n"
    "local due = now\n"
    "if mode == 'at' then due = when elseif mode == 'in' then due = now + when end\n"
    "local delayed = due > now\n"
    "local out, ready, ndelayed = {}, {}, 0\n"
    "for i = 9, #ARGV, 2 do\n"
    "  local id = ARGV[i]\n"
    "  local taken = 0\n"
    "  if id == '' then\n"
    "    repeat id = tostring(redis.call('INCR', P .. 'q:seq'))\n"
    "    until redis.call('EXISTS', jkey(id)) == 0\n"
    "  else\n"
    "    taken = redis.call('EXISTS', jkey(id))\n"
    "  end\n"
    "  if taken == 1 then\n"
    "    out[#out + 1] = ''\n"
    "  else\n"
    "    new_job(id, queue, task, ARGV[i + 1], delayed and 'delayed' or 'queued',\n"
    "            ARGV[6], ARGV[7], ARGV[8], now)\n"
    "    if delayed then\n"
    "      redis.call('ZADD', DELAYED, due, id)\n"
    "      ndelayed = ndelayed + 1\n"
    "    else\n"
    "      ready[#ready + 1] = id\n"
    "    end\n"
    "    out[#out + 1] = id\n"
    "  end\n"
    "end\n"
    "if #ready > 0 then\n"
    "  redis.call('LPUSH', qkey(queue, 'ready'), unpack(ready))\n"
    "  signal(queue)\n"
    "end\n"
    "if ndelayed > 0 then redis.call('HINCRBY', qkey(queue, 'stats'), 'delayed', ndelayed) end\n"
    "redis.call('SADD', P .. 'q:queues', queue)\n"
    "return out\n";

//  ARGV: P node lease_ms count queue...
//  Claims up to count jobs, earlier queues first. Returns
//  (id queue task args attempt timeout_ms)...
static const char s_claim[] =
    "local node, lease, want = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local deadline = now_ms() + lease\n"
    "local out, scored, ids = {}, {}, {}\n"
    "for qi = 5, #ARGV do\n"
    "  if want <= 0 then break end\n"
    "  local queue = ARGV[qi]\n"
    "  local ready = qkey(queue, 'ready')\n"
    "  local popped = redis.call('RPOP', ready, want)\n"
    "  if popped then\n"
    "    local got = 0\n"
    "    for _, id in ipairs(popped) do\n"
    "      local key = jkey(id)\n"
    "      local f = redis.call('HMGET', key, 'task', 'args', 'attempt', 'timeout_ms', 'state')\n"
    "      if f[1] and f[5] == 'queued' then\n"
    "        local attempt = tonumber(f[3] or 0) + 1\n"
    "        redis.call('HSET', key, 'state', 'active', 'attempt', attempt,\n"
    "                   'claim', node .. '#' .. attempt, 'node', node)\n"
    "        scored[#scored + 1] = deadline\n"
    "        scored[#scored + 1] = id\n"
    "        ids[#ids + 1] = id\n"
    "        out[#out + 1] = id\n"
    "        out[#out + 1] = queue\n"
    "        out[#out + 1] = f[1]\n"
    "        out[#out + 1] = f[2] or ''\n"
    "        out[#out + 1] = attempt\n"
    "        out[#out + 1] = tonumber(f[4] or 0)\n"
    "        got = got + 1\n"
    "      end\n"
    "    end\n"
    "    want = want - got\n"
    "    if got > 0 then redis.call('HINCRBY', qkey(queue, 'stats'), 'inflight', got) end\n"
    "    if redis.call('LLEN', ready) > 0 then signal(queue) end\n"
    "  end\n"
    "end\n"
    "if #ids > 0 then\n"
    "  redis.call('ZADD', INFLIGHT, unpack(scored))\n"
    "  redis.call('SADD', P .. 'q:node:' .. node, unpack(ids))\n"
    "end\n"
    "return out\n";

//  ARGV: P node (id attempt)...
//  Completes the jobs still claimed by node#attempt. Returns {acked, lost}.
static const char s_ack[] =
    "local node = ARGV[2]\n"
    "local done, acked, lost = {}, {}, {}\n"
    "local nlost = 0\n"
    "for i = 3, #ARGV, 2 do\n"
    "  local id = ARGV[i]\n"
    "  local f = redis.call('HMGET', jkey(id), 'claim', 'queue')\n"
    "  if f[1] == node .. '#' .. ARGV[i + 1] then\n"
    "    redis.call('DEL', jkey(id))\n"
    "    done[#done + 1] = id\n"
    "    acked[f[2]] = (acked[f[2]] or 0) + 1\n"
    "  else\n"
    "    nlost = nlost + 1\n"
    "    if f[2] then lost[f[2]] = (lost[f[2]] or 0) + 1 end\n"
    "  end\n"
    "end\n"
    "if #done > 0 then\n"
    "  redis.call('ZREM', INFLIGHT, unpack(done))\n"
    "  redis.call('SREM', P .. 'q:node:' .. node, unpack(done))\n"
    "end\n"
    "for q, n in pairs(acked) do\n"
    "  redis.call('HINCRBY', qkey(q, 'stats'), 'processed', n)\n"
    "  redis.call('HINCRBY', qkey(q, 'stats'), 'inflight', -n)\n"
    "end\n"
    "for q, n in pairs(lost) do redis.call('HINCRBY', qkey(q, 'stats'), 'lost_acks', n) end\n"
    "return {#done, nlost}\n";

//  ARGV: P node (id attempt error)...
//  Retries each failed run after its backoff, or moves it to the failed list
//  once it failed max_attempts times. Returns {retried, failed, lost}.
static const char s_fail[] =
    "local node = ARGV[2]\n"
    "local now = now_ms()\n"
    "local retried, failed, nlost = 0, 0, 0\n"
    "for i = 3, #ARGV, 3 do\n"
    "  local id, err = ARGV[i], ARGV[i + 2]\n"
    "  local key = jkey(id)\n"
    "  local f = redis.call('HMGET', key, 'claim', 'queue', 'failures', 'max_attempts',\n"
    "                       'backoff_ms')\n"
    "  if f[1] ~= node .. '#' .. ARGV[i + 1] then\n"
    "    nlost = nlost + 1\n"
    "    if f[2] then redis.call('HINCRBY', qkey(f[2], 'stats'), 'lost_acks', 1) end\n"
    "  else\n"
    "    local queue = f[2]\n"
    "    local stats = qkey(queue, 'stats')\n"
    "    redis.call('ZREM', INFLIGHT, id)\n"
    "    redis.call('SREM', P .. 'q:node:' .. node, id)\n"
    "    redis.call('HINCRBY', stats, 'inflight', -1)\n"
    "    local failures = tonumber(f[3] or 0) + 1\n"
    "    redis.call('HSET', key, 'failures', failures)\n"
    "    if failures < tonumber(f[4] or 1) then\n"
    "      local delay = tonumber(f[5] or 1000) * 2 ^ (failures - 1)\n"
    "      if delay > 3600000 then delay = 3600000 end\n"
    "      redis.call('HSET', key, 'state', 'delayed', 'error', err)\n"
    "      redis.call('HDEL', key, 'claim', 'node')\n"
    "      redis.call('ZADD', DELAYED, now + math.floor(delay), id)\n"
    "      redis.call('HINCRBY', stats, 'delayed', 1)\n"
    "      redis.call('HINCRBY', stats, 'retried', 1)\n"
    "      retried = retried + 1\n"
    "    else\n"
    "      to_failed(id, queue, err, now)\n"
    "      failed = failed + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {retried, failed, nlost}\n";

//  ARGV: P node resign (id attempt)...
//  Gives unstarted claims back to the head of their queue, as if never
//  claimed; with resign=1 also gives up the scheduler lease. Returns the count.
static const char s_release[] =
    "local node = ARGV[2]\n"
    "local released = 0\n"
    "for i = 4, #ARGV, 2 do\n"
    "  local id, attempt = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local key = jkey(id)\n"
    "  local f = redis.call('HMGET', key, 'claim', 'queue')\n"
    "  if f[1] == node .. '#' .. attempt then\n"
    "    redis.call('ZREM', INFLIGHT, id)\n"
    "    redis.call('SREM', P .. 'q:node:' .. node, id)\n"
    "    redis.call('HSET', key, 'state', 'queued', 'attempt', attempt - 1)\n"
    "    redis.call('HDEL', key, 'claim', 'node')\n"
    "    redis.call('RPUSH', qkey(f[2], 'ready'), id)\n"
    "    redis.call('HINCRBY', qkey(f[2], 'stats'), 'inflight', -1)\n"
    "    signal(f[2])\n"
    "    released = released + 1\n"
    "  end\n"
    "end\n"
    "if ARGV[3] == '1' and redis.call('GET', P .. 'q:scheduler') == node then\n"
    "  redis.call('DEL', P .. 'q:scheduler')\n"
    "end\n"
    "return released\n";

//  ARGV: P node lease_ms (id attempt)...
//  Renews the leases still held; returns the 1-based index of each lost one.
static const char s_extend[] =
    "local node = ARGV[2]\n"
    "local deadline = now_ms() + tonumber(ARGV[3])\n"
    "local lost, k = {}, 0\n"
    "for i = 4, #ARGV, 2 do\n"
    "  k = k + 1\n"
    "  if redis.call('HGET', jkey(ARGV[i]), 'claim') == node .. '#' .. ARGV[i + 1] then\n"
    "    redis.call('ZADD', INFLIGHT, 'XX', deadline, ARGV[i])\n"
    "  else\n"
    "    lost[#lost + 1] = k\n"
    "  end\n"
    "end\n"
    "return lost\n";

//  ARGV: P node scheduler_lease_ms limit
//  The periodic work any node may do, safely at the same time as others:
//  moves due delayed jobs to their queue, returns claims whose lease lapsed,
//  and, if this node holds (or can take) the scheduler lease, enqueues due
//  recurring tasks. Returns {promoted, reaped, leader, enqueued}.
static const char s_tick[] =
    "local node, lease, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local now = now_ms()\n"
    "local promoted, reaped, enqueued, leader = 0, 0, 0, 0\n"
    "local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, limit)\n"
    "for _, id in ipairs(due) do\n"
    "  redis.call('ZREM', DELAYED, id)\n"
    "  local f = redis.call('HMGET', jkey(id), 'queue', 'state')\n"
    "  if f[1] and f[2] == 'delayed' then\n"
    "    redis.call('HSET', jkey(id), 'state', 'queued')\n"
    "    redis.call('LPUSH', qkey(f[1], 'ready'), id)\n"
    "    redis.call('HINCRBY', qkey(f[1], 'stats'), 'delayed', -1)\n"
    "    signal(f[1])\n"
    "    promoted = promoted + 1\n"
    "  end\n"
    "end\n"
    "local expired = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', now, 'LIMIT', 0, limit)\n"
    "for _, id in ipairs(expired) do reaped = reaped + requeue_claim(id, now) end\n"
    "local holder = redis.call('GET', P .. 'q:scheduler')\n"
    "if lease > 0 and (not holder or holder == node) then\n"
    "  redis.call('SET', P .. 'q:scheduler', node, 'PX', lease)\n"
    "  leader = 1\n"
    "  local names = redis.call('ZRANGEBYSCORE', P .. 'q:recurring', '-inf', now,\n"
    "                           'LIMIT', 0, limit)\n"
    "  for _, name in ipairs(names) do\n"
    "    local def = P .. 'q:every:' .. name\n"
    "    local d = redis.call('HMGET', def, 'queue', 'task', 'args', 'every_ms', 'last_id',\n"
    "                         'next_ms', 'max_attempts', 'backoff_ms', 'timeout_ms')\n"
    "    if not d[1] then\n"
    "      redis.call('ZREM', P .. 'q:recurring', name)\n"
    "    else\n"
    "      local every, slot = tonumber(d[4]), tonumber(d[6])\n"
    "      if d[5] and redis.call('EXISTS', jkey(d[5])) == 1 then\n"
    "        redis.call('HINCRBY', def, 'skipped', 1)\n"
    "      else\n"
    "        local id = 'every:' .. name .. ':' .. slot\n"
    "        if redis.call('EXISTS', jkey(id)) == 0 then\n"
    "          new_job(id, d[1], d[2], d[3], 'queued', d[7], d[8], d[9], now)\n"
    "          redis.call('LPUSH', qkey(d[1], 'ready'), id)\n"
    "          redis.call('SADD', P .. 'q:queues', d[1])\n"
    "          signal(d[1])\n"
    "          redis.call('HSET', def, 'last_id', id)\n"
    "          enqueued = enqueued + 1\n"
    "        end\n"
    "      end\n"
    //  The next slot, even if already due (a tick came late); slots more
    //  than a period overdue (no node was up) are skipped, not caught up.
    "      local nxt = slot + every\n"
    "      if nxt <= now - every then\n"
    "        nxt = slot + every * (math.floor((now - slot) / every) + 1)\n"
    "      end\n"
    "      redis.call('HSET', def, 'next_ms', nxt)\n"
    "      redis.call('ZADD', P .. 'q:recurring', nxt, name)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {promoted, reaped, leader, enqueued}\n";

//  ARGV: P node. Returns the node's claims to their queues; returns the count.
static const char s_requeue_node[] =
    "local set = P .. 'q:node:' .. ARGV[2]\n"
    "local now = now_ms()\n"
    "local n = 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', set)) do n = n + requeue_claim(id, now) end\n"
    "redis.call('DEL', set)\n"
    "return n\n";

//  ARGV: P name queue task args every_ms max_attempts backoff timeout
static const char s_every[] =
    "local name, every = ARGV[2], tonumber(ARGV[6])\n"
    "local def = P .. 'q:every:' .. name\n"
    "local now = now_ms()\n"
    "local nxt = now\n"
    "local old = tonumber(redis.call('HGET', def, 'next_ms'))\n"
    "if old and old < now + every then nxt = old end\n"
    "redis.call('HSET', def, 'queue', ARGV[3], 'task', ARGV[4], 'args', ARGV[5],\n"
    "           'every_ms', every, 'next_ms', nxt, 'max_attempts', ARGV[7],\n"
    "           'backoff_ms', ARGV[8], 'timeout_ms', ARGV[9])\n"
    "redis.call('ZADD', P .. 'q:recurring', nxt, name)\n"
    "redis.call('SADD', P .. 'q:queues', ARGV[3])\n"
    "return 1\n";

//  ARGV: P name
static const char s_every_remove[] = "redis.call('ZREM', P .. 'q:recurring', ARGV[2])\n"
                                     "return redis.call('DEL', P .. 'q:every:' .. ARGV[2])\n";

//  ARGV: P queue. A consistent snapshot of the queue's counters.
static const char s_stats[] =
    "local q = ARGV[2]\n"
    "local s = redis.call('HMGET', qkey(q, 'stats'), 'delayed', 'inflight', 'processed',\n"
    "                     'failed', 'retried', 'requeued', 'lost_acks')\n"
    "local out = {redis.call('LLEN', qkey(q, 'ready'))}\n"
    "for i = 1, 7 do out[#out + 1] = tonumber(s[i] or 0) end\n"
    "out[#out + 1] = redis.call('LLEN', qkey(q, 'failed'))\n"
    "return out\n";

//  ARGV: P queue max. Returns (id task error attempt failed_ms)... newest first.
static const char s_failed[] =
    "local out = {}\n"
    "local ids = redis.call('LRANGE', qkey(ARGV[2], 'failed'), 0, tonumber(ARGV[3]) - 1)\n"
    "for _, id in ipairs(ids) do\n"
    "  local f = redis.call('HMGET', jkey(id), 'task', 'error', 'attempt', 'failed_ms')\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = f[1] or ''\n"
    "  out[#out + 1] = f[2] or ''\n"
    "  out[#out + 1] = tonumber(f[3] or 0)\n"
    "  out[#out + 1] = tonumber(f[4] or 0)\n"
    "end\n"
    "return out\n";

//  ARGV: P queue id. Returns 1 if the job left the failed list for the queue.
static const char s_retry[] =
    "local q, id = ARGV[2], ARGV[3]\n"
    "if redis.call('LREM', qkey(q, 'failed'), 1, id) == 0 then return 0 end\n"
    "if redis.call('EXISTS', jkey(id)) == 0 then return 0 end\n"
    "redis.call('HSET', jkey(id), 'state', 'queued', 'failures', 0, 'lost', 0)\n"
    "redis.call('HDEL', jkey(id), 'failed_ms')\n"
    "redis.call('LPUSH', qkey(q, 'ready'), id)\n"
    "signal(q)\n"
    "return 1\n";

//  ARGV: P queue. Deletes the queue and every job on it; returns the count.
//  O(jobs of the cluster in the delayed and in-flight sets + the queue's).
static const char s_delete[] =
    "local q = ARGV[2]\n"
    "local n = 0\n"
    "for _, what in ipairs({'ready', 'failed'}) do\n"
    "  for _, id in ipairs(redis.call('LRANGE', qkey(q, what), 0, -1)) do\n"
    "    n = n + redis.call('DEL', jkey(id))\n"
    "  end\n"
    "end\n"
    "for _, id in ipairs(redis.call('ZRANGE', DELAYED, 0, -1)) do\n"
    "  if redis.call('HGET', jkey(id), 'queue') == q then\n"
    "    redis.call('ZREM', DELAYED, id)\n"
    "    n = n + redis.call('DEL', jkey(id))\n"
    "  end\n"
    "end\n"
    "for _, id in ipairs(redis.call('ZRANGE', INFLIGHT, 0, -1)) do\n"
    "  local f = redis.call('HMGET', jkey(id), 'queue', 'node')\n"
    "  if f[1] == q then\n"
    "    redis.call('ZREM', INFLIGHT, id)\n"
    "    if f[2] then redis.call('SREM', P .. 'q:node:' .. f[2], id) end\n"
    "    n = n + redis.call('DEL', jkey(id))\n"
    "  end\n"
    "end\n"
    "for _, name in ipairs(redis.call('ZRANGE', P .. 'q:recurring', 0, -1)) do\n"
    "  if redis.call('HGET', P .. 'q:every:' .. name, 'queue') == q then\n"
    "    redis.call('ZREM', P .. 'q:recurring', name)\n"
    "    redis.call('DEL', P .. 'q:every:' .. name)\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', qkey(q, 'ready'), qkey(q, 'failed'), qkey(q, 'stats'), qkey(q, 'signal'))\n"
    "redis.call('SREM', P .. 'q:queues', q)\n"
    "return n\n";

static const char *s_bodies[ZC_QS_COUNT] = {
    s_enqueue,      s_claim, s_ack,          s_fail,  s_release, s_extend, s_tick,
    s_requeue_node, s_every, s_every_remove, s_stats, s_failed,  s_retry,  s_delete};

//  --------------------------------------------------------------------------
//  How they are called

static char *s_source[ZC_QS_COUNT]; //  prelude + body, kept for the process
static zc_script_t s_scripts[ZC_QS_COUNT];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_free_sources(void)
{
    for (int i = 0; i < ZC_QS_COUNT; i++)
        free(s_source[i]);
}

//  Builds each script's full text and its SHA-1, as Redis will name it.
static void s_init_scripts(void)
{
    size_t prelude_len = strlen(s_prelude);
    for (int i = 0; i < ZC_QS_COUNT; i++) {
        size_t body_len = strlen(s_bodies[i]);
        s_source[i] = (char *)malloc(prelude_len + body_len + 1);
        assert(s_source[i]);
        memcpy(s_source[i], s_prelude, prelude_len);
        memcpy(s_source[i] + prelude_len, s_bodies[i], body_len + 1);
        zc_script_init(&s_scripts[i], s_source[i]);
    }
    atexit(s_free_sources);
}

void zc_qs_args_start(zc_redis_args_t *args, zc_qs_script_t script, const zc_identity_t *identity)
{
    assert(script >= 0 && script < ZC_QS_COUNT);
    pthread_once(&s_once, s_init_scripts);
    zc_redis_args_eval(args, &s_scripts[script], 1);
    char key[ZC_PREFIX_MAX + 16];
    zc_redis_args_str(args, zc_identity_key(identity, key, sizeof key, "q:inflight"));
    zc_redis_args_add(args, identity->prefix, identity->prefix_len);
}

zc_redis_t *zc_qs_redis_new(const zc_identity_t *identity)
{
    zc_redis_t *redis = zc_redis_new(&identity->url, 5000);
    zc_redis_set_backoff(redis, 100, 100);
    return redis;
}

//  --------------------------------------------------------------------------
//  Names

int zc_qs_name_valid(const char *name)
{
    if (!name || !*name) return 0;
    size_t len = 0;
    for (const char *p = name; *p; p++, len++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok || len >= ZC_QUEUE_NAME_MAX) return 0;
    }
    return 1;
}
