/*  zc_queue_scripts — the task queue's Lua scripts and how they are called.

    Why Lua: every change to the queue moves a job between structures (a
    ready list, the delayed and in-flight sorted sets, a node's claim set, the
    failed list) and rewrites its hash. Done as separate commands, a node that
    dies half-way loses or doubles the job; done as one script, no other node
    sees the middle. So each state change below is one script, and a worker
    may crash between any two.

    Why every script checks before it writes: Redis does not undo a script
    that fails half-way. A redis.call fails on a key of the wrong type
    (WRONGTYPE), on HINCRBY or INCR of a value that is not an integer, and a
    Lua expression fails on arithmetic with a missing number. A claim that
    popped jobs and marked them active, then failed on a wrong-typed
    q:inflight, stranded those jobs for good. So each script first checks
    the type of every key it will write (check(), remembered for the rest of
    the call) and only then writes; numbers read from hashes go through
    num(), which never fails; and the writes themselves cannot fail. A
    structural key of the wrong type makes the script refuse with a
    "WRONGTYPE <key> holds a ..." error and write nothing. A job's hash of
    the wrong type only concerns that job: batch scripts read job hashes
    with redis.pcall and put that one job off (its result is sent again,
    its id parked to be looked at again, its lease kept), so one damaged
    job never stops a queue.

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
    it again, so idle workers wake one another in turn. The signal is a
    hint: a signal key of another type is left alone.

    Why slices: a script blocks Redis while it runs. Every script that walks
    a set of unbounded size (DELETE, REQUEUE_NODE, the sweep) takes at most
    a slice of it per call, and its caller loops.

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
    "local PARK_MS = 1000\n"
    "local INFLIGHT = P .. 'q:inflight'\n"
    "local DELAYED = P .. 'q:delayed'\n"
    "local QUEUES = P .. 'q:queues'\n"
    "local RECURRING = P .. 'q:recurring'\n"
    "local function now_ms()\n"
    "  local t = redis.call('TIME')\n"
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local function qkey(queue, what) return P .. 'q:' .. queue .. ':' .. what end\n"
    "local function jkey(id) return P .. 'job:' .. id end\n"
    "local function nkey(node) return P .. 'q:node:' .. node end\n"
    "local function num(v, default) return tonumber(v) or default end\n"
    //  Small numbers as strings: a number passed to redis.call or joined to
    //  a string is formatted with sprintf, which costs more per job than
    //  the command it goes to.
    "local DIGITS = {'1', '2', '3', '4', '5', '6', '7', '8', '9'}\n"
    //  The first problem met that did not stop the script, for its reply.
    "local problem\n"
    "local function note(text) if not problem then problem = text end end\n"
    //  What is wrong with key for a script that will write it as want, or
    //  false: it may be absent or of that type; a 'counter' is a string
    //  holding an integer (INCR), 'stats' a hash of integers (HINCRBY).
    "local function is_int(v) return #v < 19 and string.find(v, '^%-?%d+$') ~= nil end\n"
    "local function mistyped(key, want)\n"
    "  local base = want\n"
    "  if want == 'counter' then base = 'string' elseif want == 'stats' then base = 'hash' end\n"
    "  local t = redis.call('TYPE', key)['ok']\n"
    "  if t == 'none' then return false end\n"
    "  if t ~= base then return key .. ' holds a ' .. t .. ', not a ' .. base end\n"
    "  local values = {}\n"
    "  if want == 'counter' then values = {redis.call('GET', key)}\n"
    "  elseif want == 'stats' then values = redis.call('HVALS', key) end\n"
    "  for _, v in ipairs(values) do\n"
    "    if not is_int(v) then return key .. ' holds a value that is not an integer' end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    //  Checks (key, type) pairs; returns the first problem, or nil. The
    //  answers hold for the rest of the call: the script's own writes keep
    //  every key's type.
    "local checked = {}\n"
    "local function check(...)\n"
    "  local a = {...}\n"
    "  for i = 1, #a, 2 do\n"
    "    if checked[a[i]] == nil then checked[a[i]] = mistyped(a[i], a[i + 1]) end\n"
    "    if checked[a[i]] then return checked[a[i]] end\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local function refuse(text) return redis.error_reply('WRONGTYPE ' .. text) end\n"
    //  Reads fields of a job's hash (all false if there is none), or nil if
    //  the key holds something else.
    "local function job_fields(id, ...)\n"
    "  local f = redis.pcall('HMGET', jkey(id), ...)\n"
    "  if f.err then note(jkey(id) .. ' is not a hash'); return nil end\n"
    "  return f\n"
    "end\n"
    //  Wakes one idle worker of queue, if none is about to wake.
    "local function signal(queue)\n"
    "  local s = qkey(queue, 'signal')\n"
    "  if redis.call('EXISTS', s) == 0 then redis.call('RPUSH', s, '1') end\n"
    "end\n"
    //  Puts an id that cannot be handled now in the delayed set, for TICK to
    //  look at again in PARK_MS. DELAYED must have been checked.
    "local function park(id, now) redis.call('ZADD', DELAYED, now + PARK_MS, id) end\n"
    //  Writes a new job's hash (the key must not exist); state is 'queued' or
    //  'delayed'. The counters attempt, failures and lost start absent: every
    //  reader takes absent as 0 (each field costs the enqueue about a
    //  microsecond of Redis time).
    "local function new_job(id, queue, task, args, state, attempts, backoff, timeout, now)\n"
    "  redis.call('HSET', jkey(id), 'queue', queue, 'task', task, 'args', args,\n"
    "    'state', state, 'max_attempts', attempts, 'backoff_ms', backoff,\n"
    "    'timeout_ms', timeout, 'created_ms', now)\n"
    "end\n"
    //  Moves a job to its queue's failed list; its hash, the failed list and
    //  the stats must have been checked.
    "local function to_failed(id, queue, err, now)\n"
    "  redis.call('HSET', jkey(id), 'state', 'failed', 'error', err, 'failed_ms', now)\n"
    "  redis.call('HDEL', jkey(id), 'claim', 'node')\n"
    "  redis.call('LPUSH', qkey(queue, 'failed'), id)\n"
    "  redis.call('HINCRBY', qkey(queue, 'stats'), 'failed', 1)\n"
    "end\n"
    //  Takes a claim back from its node (only from node only_of, if given)
    //  and puts the job at the head of its queue, or on the failed list once
    //  it was lost MAX_LOST times (so a job that kills its workers does not
    //  kill them all). INFLIGHT must have been checked. Returns 1 if a job
    //  moved, 0 if there was no such claim (a stale in-flight entry goes),
    //  nil if a key it needs cannot be used now (noted; nothing written).
    "local function requeue_claim(id, now, only_of)\n"
    "  local f = job_fields(id, 'queue', 'node', 'lost', 'state')\n"
    "  if not f then return nil end\n"
    "  local queue, node = f[1], f[2]\n"
    "  local live = queue and f[4] == 'active' and (not only_of or node == only_of)\n"
    "  local e = node and check(nkey(node), 'set')\n"
    "  if live then\n"
    "    e = e or check(qkey(queue, 'stats'), 'stats', qkey(queue, 'ready'), 'list',\n"
    "                   qkey(queue, 'failed'), 'list')\n"
    "  end\n"
    "  if e then note(e); return nil end\n"
    "  if not live then\n"
    "    if not only_of then\n"
    "      redis.call('ZREM', INFLIGHT, id)\n"
    "      if node then redis.call('SREM', nkey(node), id) end\n"
    "    end\n"
    "    return 0\n"
    "  end\n"
    "  local key = jkey(id)\n"
    "  redis.call('ZREM', INFLIGHT, id)\n"
    "  if node then redis.call('SREM', nkey(node), id) end\n"
    "  redis.call('HINCRBY', qkey(queue, 'stats'), 'inflight', -1)\n"
    "  local lost = num(f[3], 0) + 1\n"
    "  if lost >= MAX_LOST then\n"
    "    redis.call('HSET', key, 'lost', lost)\n"
    "    to_failed(id, queue, 'lost with its worker ' .. lost .. ' times', now)\n"
    "  else\n"
    "    redis.call('HSET', key, 'lost', lost, 'state', 'queued')\n"
    "    redis.call('HDEL', key, 'claim', 'node')\n"
    "    redis.call('RPUSH', qkey(queue, 'ready'), id)\n"
    "    redis.call('HINCRBY', qkey(queue, 'stats'), 'requeued', 1)\n"
    "    signal(queue)\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    //  Reads the job hashes of a batch (ARGV from first, step apart) and
    //  checks the keys of their queues (qkeys: what, type pairs). Returns
    //  each job's fields, or false for a job to put off: its hash, or a key
    //  of its queue, cannot be used now (noted), so that one damaged job or
    //  queue does not hold up the others.
    "local function read_batch(first, step, qkeys, ...)\n"
    "  local jobs, usable = {}, {}\n"
    "  for i = first, #ARGV, step do\n"
    "    local f = job_fields(ARGV[i], ...)\n"
    "    local q = f and f[2]\n"
    "    if q and usable[q] == nil then\n"
    "      local e\n"
    "      for j = 1, #qkeys, 2 do e = e or check(qkey(q, qkeys[j]), qkeys[j + 1]) end\n"
    "      if e then note(e) end\n"
    "      usable[q] = not e\n"
    "    end\n"
    "    if q and not usable[q] then f = nil end\n"
    "    jobs[#jobs + 1] = f or false\n"
    "  end\n"
    "  return jobs\n"
    "end\n";

//  ARGV: P queue task mode(now|at|in) when max_attempts backoff timeout (id args)...
//  Returns each job's id, or '' for a duplicate.
static const char s_enqueue[] =
    "local queue, task, mode, when = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])\n"
    "local now = now_ms()\n"
    "local due = now\n"
    "if mode == 'at' then due = when elseif mode == 'in' then due = now + when end\n"
    "local delayed = due > now\n"
    "local e = check(QUEUES, 'set')\n"
    "if delayed then e = e or check(DELAYED, 'zset', qkey(queue, 'stats'), 'stats')\n"
    "else e = e or check(qkey(queue, 'ready'), 'list') end\n"
    "local generated = 0\n"
    "for i = 9, #ARGV, 2 do\n"
    "  if ARGV[i] == '' then generated = generated + 1 end\n"
    "end\n"
    "if generated > 0 then e = e or check(P .. 'q:seq', 'counter') end\n"
    "if e then return refuse(e) end\n"
    //  Generated ids come from q:seq as one range, taken with a GET and a
    //  SET (the documented ACL has no INCRBY; q:seq was checked to hold an
    //  integer), then one more INCR for each id of it a caller already took.
    "local seq_next, seq_last = 1, 0\n"
    "if generated > 0 then\n"
    "  seq_next = num(redis.call('GET', P .. 'q:seq'), 0) + 1\n"
    "  seq_last = seq_next + generated - 1\n"
    "  redis.call('SET', P .. 'q:seq', seq_last)\n"
    "end\n"
    "local function generate()\n"
    "  while true do\n"
    "    local id\n"
    "    if seq_next <= seq_last then\n"
    "      id = tostring(seq_next)\n"
    "      seq_next = seq_next + 1\n"
    "    else\n"
    "      id = tostring(redis.call('INCR', P .. 'q:seq'))\n"
    "    end\n"
    "    if redis.call('EXISTS', jkey(id)) == 0 then return id end\n"
    "  end\n"
    "end\n"
    "local out, ready, ndelayed = {}, {}, 0\n"
    "for i = 9, #ARGV, 2 do\n"
    "  local id = ARGV[i]\n"
    "  local taken = 0\n"
    "  if id == '' then\n"
    "    id = generate()\n"
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
    "redis.call('SADD', QUEUES, queue)\n"
    "return out\n";

//  ARGV: P node lease_ms count queue...
//  Claims up to count jobs, earlier queues first; a queue whose keys cannot
//  be used is skipped, a job whose hash cannot be read parked. Returns
//  (id queue task args attempt timeout_ms)..., then the problem met if any.
static const char s_claim[] =
    "local node, lease, want = ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local now = now_ms()\n"
    "local deadline = string.format('%d', now + tonumber(lease))\n"
    "local e = check(INFLIGHT, 'zset', nkey(node), 'set', DELAYED, 'zset')\n"
    "if e then return refuse(e) end\n"
    "local out, scored, ids = {}, {}, {}\n"
    "for qi = 5, #ARGV do\n"
    "  if want <= 0 then break end\n"
    "  local queue = ARGV[qi]\n"
    "  local ready = qkey(queue, 'ready')\n"
    "  local qe = check(ready, 'list', qkey(queue, 'stats'), 'stats')\n"
    "  local popped = false\n"
    "  if qe then note(qe) else popped = redis.call('RPOP', ready, want) end\n"
    "  if popped then\n"
    "    local got, drained = 0, #popped < want\n"
    "    for _, id in ipairs(popped) do\n"
    "      local f = job_fields(id, 'task', 'args', 'attempt', 'timeout_ms', 'state')\n"
    "      if not f then\n"
    "        park(id, now)\n"
    "      elseif f[1] and f[5] == 'queued' then\n"
    "        local attempt = num(f[3], 0) + 1\n"
    "        local a = DIGITS[attempt] or tostring(attempt)\n"
    "        redis.call('HSET', jkey(id), 'state', 'active', 'attempt', a,\n"
    "                   'claim', node .. '#' .. a, 'node', node, 'lease', lease)\n"
    "        scored[#scored + 1] = deadline\n"
    "        scored[#scored + 1] = id\n"
    "        ids[#ids + 1] = id\n"
    "        out[#out + 1] = id\n"
    "        out[#out + 1] = queue\n"
    "        out[#out + 1] = f[1]\n"
    "        out[#out + 1] = f[2] or ''\n"
    "        out[#out + 1] = attempt\n"
    "        out[#out + 1] = num(f[4], 0)\n"
    "        got = got + 1\n"
    "      end\n"
    "    end\n"
    "    want = want - got\n"
    "    if got > 0 then redis.call('HINCRBY', qkey(queue, 'stats'), 'inflight', got) end\n"
    "    if not drained and redis.call('LLEN', ready) > 0 then signal(queue) end\n"
    "  end\n"
    "end\n"
    "if #ids > 0 then\n"
    "  redis.call('ZADD', INFLIGHT, unpack(scored))\n"
    "  redis.call('SADD', nkey(node), unpack(ids))\n"
    "end\n"
    "if problem then out[#out + 1] = problem end\n"
    "return out\n";

//  ARGV: P node (id attempt)...
//  Completes the jobs still claimed by node#attempt. Returns {acked, lost,
//  index of each job put off..., then the problem met if any}.
static const char s_ack[] =
    "local node = ARGV[2]\n"
    "local e = check(INFLIGHT, 'zset', nkey(node), 'set')\n"
    "if e then return refuse(e) end\n"
    "local jobs = read_batch(3, 2, {'stats', 'stats'}, 'claim', 'queue')\n"
    "local out, done, keys, acked, lost = {0, 0}, {}, {}, {}, {}\n"
    "for k, f in ipairs(jobs) do\n"
    "  local id = ARGV[1 + 2 * k]\n"
    "  if not f then\n"
    "    out[#out + 1] = k\n"
    "  elseif f[1] == node .. '#' .. ARGV[2 + 2 * k] then\n"
    "    done[#done + 1] = id\n"
    "    keys[#keys + 1] = jkey(id)\n"
    "    acked[f[2]] = (acked[f[2]] or 0) + 1\n"
    "  else\n"
    "    out[2] = out[2] + 1\n"
    "    if f[2] then lost[f[2]] = (lost[f[2]] or 0) + 1 end\n"
    "  end\n"
    "end\n"
    "if #done > 0 then\n"
    "  redis.call('DEL', unpack(keys))\n"
    "  redis.call('ZREM', INFLIGHT, unpack(done))\n"
    "  redis.call('SREM', nkey(node), unpack(done))\n"
    "end\n"
    "for q, n in pairs(acked) do\n"
    "  redis.call('HINCRBY', qkey(q, 'stats'), 'processed', n)\n"
    "  redis.call('HINCRBY', qkey(q, 'stats'), 'inflight', -n)\n"
    "end\n"
    "for q, n in pairs(lost) do redis.call('HINCRBY', qkey(q, 'stats'), 'lost_acks', n) end\n"
    "out[1] = #done\n"
    "if problem then out[#out + 1] = problem end\n"
    "return out\n";

//  ARGV: P node (id attempt error)...
//  Retries each failed run after its backoff, or moves it to the failed list
//  once it failed max_attempts times. Returns {retried, failed, lost, index
//  of each job put off..., then the problem met if any}.
static const char s_fail[] =
    "local node = ARGV[2]\n"
    "local now = now_ms()\n"
    "local e = check(INFLIGHT, 'zset', nkey(node), 'set', DELAYED, 'zset')\n"
    "if e then return refuse(e) end\n"
    "local jobs = read_batch(3, 3, {'stats', 'stats', 'failed', 'list'}, 'claim', 'queue',\n"
    "                       'failures', 'max_attempts', 'backoff_ms')\n"
    "local out = {0, 0, 0}\n"
    "for k, f in ipairs(jobs) do\n"
    "  local i = 3 * k\n"
    "  local id, err = ARGV[i], ARGV[i + 2]\n"
    "  if not f then\n"
    "    out[#out + 1] = k\n"
    "  elseif f[1] ~= node .. '#' .. ARGV[i + 1] then\n"
    "    out[3] = out[3] + 1\n"
    "    if f[2] then redis.call('HINCRBY', qkey(f[2], 'stats'), 'lost_acks', 1) end\n"
    "  else\n"
    "    local key, queue, stats = jkey(id), f[2], qkey(f[2], 'stats')\n"
    "    redis.call('ZREM', INFLIGHT, id)\n"
    "    redis.call('SREM', nkey(node), id)\n"
    "    redis.call('HINCRBY', stats, 'inflight', -1)\n"
    "    local failures = num(f[3], 0) + 1\n"
    "    redis.call('HSET', key, 'failures', failures)\n"
    "    if failures < num(f[4], 1) then\n"
    "      local delay = num(f[5], 1000) * 2 ^ (failures - 1)\n"
    "      if delay > 3600000 then delay = 3600000 end\n"
    "      redis.call('HSET', key, 'state', 'delayed', 'error', err)\n"
    "      redis.call('HDEL', key, 'claim', 'node')\n"
    "      redis.call('ZADD', DELAYED, now + math.floor(delay), id)\n"
    "      redis.call('HINCRBY', stats, 'delayed', 1)\n"
    "      redis.call('HINCRBY', stats, 'retried', 1)\n"
    "      out[1] = out[1] + 1\n"
    "    else\n"
    "      to_failed(id, queue, err, now)\n"
    "      out[2] = out[2] + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if problem then out[#out + 1] = problem end\n"
    "return out\n";

//  ARGV: P node resign (id attempt)...
//  Gives claims back to the head of their queue, as if never claimed; with
//  resign=1 also gives up the scheduler lease. Returns {released, index of
//  each job put off..., then the problem met if any}.
static const char s_release[] =
    "local node = ARGV[2]\n"
    "local e = check(INFLIGHT, 'zset', nkey(node), 'set')\n"
    "if e then return refuse(e) end\n"
    "local jobs = read_batch(4, 2, {'stats', 'stats', 'ready', 'list'}, 'claim', 'queue')\n"
    "local out = {0}\n"
    "for k, f in ipairs(jobs) do\n"
    "  local id, attempt = ARGV[2 + 2 * k], num(ARGV[3 + 2 * k], 1)\n"
    "  if not f then\n"
    "    out[#out + 1] = k\n"
    "  elseif f[1] == node .. '#' .. attempt then\n"
    "    redis.call('ZREM', INFLIGHT, id)\n"
    "    redis.call('SREM', nkey(node), id)\n"
    "    redis.call('HSET', jkey(id), 'state', 'queued', 'attempt', attempt - 1)\n"
    "    redis.call('HDEL', jkey(id), 'claim', 'node')\n"
    "    redis.call('RPUSH', qkey(f[2], 'ready'), id)\n"
    "    redis.call('HINCRBY', qkey(f[2], 'stats'), 'inflight', -1)\n"
    "    signal(f[2])\n"
    "    out[1] = out[1] + 1\n"
    "  end\n"
    "end\n"
    "local sched = P .. 'q:scheduler'\n"
    "if ARGV[3] == '1' and not check(sched, 'string') and redis.call('GET', sched) == node then\n"
    "  redis.call('DEL', sched)\n"
    "end\n"
    "if problem then out[#out + 1] = problem end\n"
    "return out\n";

//  ARGV: P node lease_ms (id attempt)...
//  Renews the leases still held; a lease whose job hash cannot be read is
//  renewed too (nothing says it was taken back). Returns the 1-based index
//  of each lost claim, then the problem met if any.
static const char s_extend[] =
    "local node = ARGV[2]\n"
    "local deadline = string.format('%d', now_ms() + tonumber(ARGV[3]))\n"
    "local e = check(INFLIGHT, 'zset')\n"
    "if e then return refuse(e) end\n"
    "local out, k = {}, 0\n"
    "for i = 4, #ARGV, 2 do\n"
    "  k = k + 1\n"
    "  local f = job_fields(ARGV[i], 'claim')\n"
    "  if not f or f[1] == node .. '#' .. ARGV[i + 1] then\n"
    "    redis.call('ZADD', INFLIGHT, 'XX', deadline, ARGV[i])\n"
    "  else\n"
    "    out[#out + 1] = k\n"
    "  end\n"
    "end\n"
    "if problem then out[#out + 1] = problem end\n"
    "return out\n";

//  ARGV: P node scheduler_lease_ms limit lease_ms sweep_count
//  The periodic work any node may do, safely at the same time as others,
//  in parts that each check their own keys (a part whose keys cannot be
//  used is skipped and the problem reported; the others still run):
//  - due delayed jobs, and ids parked by CLAIM, to their queue;
//  - claims whose lease lapsed back to their queue; held back for one
//    lease after no node ticked for GAP_MS (Redis was down or hung, or
//    every node cut off), since no holder could renew a lease meanwhile;
//  - if this node holds (or can take) the scheduler lease: due recurring
//    tasks, then one slice of the sweep.
//  Returns {promoted, reaped, leader, enqueued, more, swept, problem or ''};
//  more is 1 when a part stopped at its limit.
static const char s_tick[] =
    "local node, slease, limit = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local lease, sweep_count = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local GAP_MS = 1000\n"
    "local now = now_ms()\n"
    "local promoted, reaped, leader, enqueued, more, swept = 0, 0, 0, 0, 0, 0\n"
    //  A due delayed job, or an id parked by CLAIM (still 'queued'), goes to
    //  its queue; one whose keys cannot be used now is parked again.
    "local function promote(id)\n"
    "  local f = job_fields(id, 'queue', 'state')\n"
    "  if not f then park(id, now); return 0 end\n"
    "  if not f[1] or (f[2] ~= 'delayed' and f[2] ~= 'queued') then\n"
    "    redis.call('ZREM', DELAYED, id)\n"
    "    return 0\n"
    "  end\n"
    "  local e = check(qkey(f[1], 'ready'), 'list', qkey(f[1], 'stats'), 'stats')\n"
    "  if e then note(e); park(id, now); return 0 end\n"
    "  redis.call('ZREM', DELAYED, id)\n"
    "  if f[2] == 'delayed' then\n"
    "    redis.call('HSET', jkey(id), 'state', 'queued')\n"
    "    redis.call('LPUSH', qkey(f[1], 'ready'), id)\n"
    "    redis.call('HINCRBY', qkey(f[1], 'stats'), 'delayed', -1)\n"
    "  else\n"
    "    redis.call('RPUSH', qkey(f[1], 'ready'), id)\n"
    "  end\n"
    "  signal(f[1])\n"
    "  return 1\n"
    "end\n"
    //  Enqueues the due slot of recurring task name, unless the previous
    //  job is still live, and plans the next slot; a definition that cannot
    //  be used now is looked at again in PARK_MS.
    "local function recur(name)\n"
    "  local def = P .. 'q:every:' .. name\n"
    "  local d = redis.pcall('HMGET', def, 'queue', 'task', 'args', 'every_ms', 'last_id',\n"
    "                        'next_ms', 'max_attempts', 'backoff_ms', 'timeout_ms', 'skipped')\n"
    "  local e = d.err and def .. ' is not a hash'\n"
    "  if not e and not d[1] then redis.call('ZREM', RECURRING, name); return 0 end\n"
    "  local every, slot = tonumber(d[4]), tonumber(d[6])\n"
    "  if not e and (not every or every <= 0 or not slot) then\n"
    "    e = def .. ' has no valid every_ms or next_ms'\n"
    "  end\n"
    "  e = e or check(qkey(d[1], 'ready'), 'list', QUEUES, 'set')\n"
    "  if e then note(e); redis.call('ZADD', RECURRING, now + PARK_MS, name); return 0 end\n"
    "  local n = 0\n"
    "  if d[5] and redis.call('EXISTS', jkey(d[5])) == 1 then\n"
    "    redis.call('HSET', def, 'skipped', num(d[10], 0) + 1)\n"
    "  else\n"
    "    local id = 'every:' .. name .. ':' .. slot\n"
    "    if redis.call('EXISTS', jkey(id)) == 0 then\n"
    "      new_job(id, d[1], d[2], d[3], 'queued', d[7], d[8], d[9], now)\n"
    "      redis.call('LPUSH', qkey(d[1], 'ready'), id)\n"
    "      redis.call('SADD', QUEUES, d[1])\n"
    "      signal(d[1])\n"
    "      redis.call('HSET', def, 'last_id', id)\n"
    "      n = 1\n"
    "    end\n"
    "  end\n"
    //  The next slot, even if already due (a tick came late); slots more
    //  than a period overdue (no node was up) are skipped, not caught up.
    "  local nxt = slot + every\n"
    "  if nxt <= now - every then\n"
    "    nxt = slot + every * (math.floor((now - slot) / every) + 1)\n"
    "  end\n"
    "  redis.call('HSET', def, 'next_ms', nxt)\n"
    "  redis.call('ZADD', RECURRING, nxt, name)\n"
    "  return n\n"
    "end\n"
    //  One slice of the walk through the cluster's job hashes (the cursor
    //  is kept in q:sweep, so a new scheduler continues it), for jobs no
    //  script would move again: an 'active' job without an in-flight entry
    //  (a claim cut short half-way by an older version, an entry removed
    //  by hand) gets one, a lease of its own length, so that it lapses and
    //  returns like any other unless a live holder renews it; a 'delayed'
    //  job without a delayed entry is made due. A job with an in-flight
    //  entry is never touched: its lease decides.
    "local function sweep(count)\n"
    "  if check(INFLIGHT, 'zset', DELAYED, 'zset') then return 0 end\n"
    "  local cursor = redis.pcall('GET', P .. 'q:sweep')\n"
    "  if type(cursor) ~= 'string' or not string.find(cursor, '^%d+$') then cursor = '0' end\n"
    "  local pattern = string.gsub(P, '[%*%?%[%]\\\\]', '\\\\%0') .. 'job:*'\n"
    "  local r = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', count)\n"
    "  redis.call('SET', P .. 'q:sweep', r[1])\n"
    "  local n = 0\n"
    "  for _, key in ipairs(r[2]) do\n"
    "    local id = string.sub(key, #P + 5)\n"
    "    local f = redis.pcall('HMGET', key, 'state', 'lease')\n"
    "    if f.err then\n"
    "    elseif f[1] == 'active' and not redis.call('ZSCORE', INFLIGHT, id) then\n"
    "      redis.call('ZADD', INFLIGHT, now + num(f[2], 1500), id)\n"
    "      n = n + 1\n"
    "    elseif f[1] == 'delayed' and not redis.call('ZSCORE', DELAYED, id) then\n"
    "      redis.call('ZADD', DELAYED, now, id)\n"
    "      n = n + 1\n"
    "    end\n"
    "  end\n"
    "  return n\n"
    "end\n"
    "local e = check(DELAYED, 'zset')\n"
    "if e then note(e) else\n"
    "  local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, limit)\n"
    "  if #due >= limit then more = 1 end\n"
    "  for _, id in ipairs(due) do promoted = promoted + promote(id) end\n"
    "end\n"
    //  The cluster's clock: a gap since the last tick of any node holds the
    //  reaping back for one lease. Both keys are overwritten whatever they
    //  held, and a value that is not a number counts as absent.
    "local last = redis.pcall('GET', P .. 'q:ticked')\n"
    "redis.call('SET', P .. 'q:ticked', now)\n"
    "if type(last) == 'string' and tonumber(last) and now - tonumber(last) > GAP_MS then\n"
    "  redis.call('SET', P .. 'q:reap_hold', now + lease, 'PX', lease)\n"
    "end\n"
    "local hold = redis.pcall('GET', P .. 'q:reap_hold')\n"
    "hold = type(hold) == 'string' and tonumber(hold) and now < tonumber(hold)\n"
    "e = check(INFLIGHT, 'zset')\n"
    "if e then note(e) elseif not hold then\n"
    "  local expired = redis.call('ZRANGEBYSCORE', INFLIGHT, '-inf', now, 'LIMIT', 0, limit)\n"
    "  if #expired >= limit then more = 1 end\n"
    "  for _, id in ipairs(expired) do\n"
    "    local moved = requeue_claim(id, now)\n"
    "    if moved then\n"
    "      reaped = reaped + moved\n"
    "    else\n"
    "      redis.call('ZADD', INFLIGHT, now + PARK_MS, id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local sched = P .. 'q:scheduler'\n"
    "e = check(sched, 'string', RECURRING, 'zset')\n"
    "if e then note(e) else\n"
    "  local holder = redis.call('GET', sched)\n"
    "  if slease > 0 and (not holder or holder == node) then\n"
    "    redis.call('SET', sched, node, 'PX', slease)\n"
    "    leader = 1\n"
    "    local names = redis.call('ZRANGEBYSCORE', RECURRING, '-inf', now, 'LIMIT', 0, limit)\n"
    "    if #names >= limit then more = 1 end\n"
    "    for _, name in ipairs(names) do enqueued = enqueued + recur(name) end\n"
    "    if sweep_count > 0 then swept = sweep(sweep_count) end\n"
    "  end\n"
    "end\n"
    "return {promoted, reaped, leader, enqueued, more, swept, problem or ''}\n";

//  ARGV: P node limit
//  Returns up to limit of the node's claims to their queues (a claim whose
//  keys cannot be used now is left to its lease). Returns {requeued, seen,
//  problem or ''}: the caller calls again while seen == limit.
static const char s_requeue_node[] = "local node, limit = ARGV[2], tonumber(ARGV[3])\n"
                                     "local e = check(nkey(node), 'set', INFLIGHT, 'zset')\n"
                                     "if e then return refuse(e) end\n"
                                     "local now = now_ms()\n"
                                     "local ids = redis.call('SRANDMEMBER', nkey(node), limit)\n"
                                     "local n = 0\n"
                                     "for _, id in ipairs(ids) do\n"
                                     "  if requeue_claim(id, now, node) == 1 then n = n + 1\n"
                                     "  else redis.call('SREM', nkey(node), id) end\n"
                                     "end\n"
                                     "return {n, #ids, problem or ''}\n";

//  ARGV: P name queue task args every_ms max_attempts backoff timeout
static const char s_every[] =
    "local name, every = ARGV[2], tonumber(ARGV[6])\n"
    "local def = P .. 'q:every:' .. name\n"
    "local e = check(def, 'hash', RECURRING, 'zset', QUEUES, 'set')\n"
    "if e then return refuse(e) end\n"
    "local now = now_ms()\n"
    "local nxt = now\n"
    "local old = tonumber(redis.call('HGET', def, 'next_ms'))\n"
    "if old and old < now + every then nxt = old end\n"
    "redis.call('HSET', def, 'queue', ARGV[3], 'task', ARGV[4], 'args', ARGV[5],\n"
    "           'every_ms', every, 'next_ms', nxt, 'max_attempts', ARGV[7],\n"
    "           'backoff_ms', ARGV[8], 'timeout_ms', ARGV[9])\n"
    "redis.call('ZADD', RECURRING, nxt, name)\n"
    "redis.call('SADD', QUEUES, ARGV[3])\n"
    "return 1\n";

//  ARGV: P name
static const char s_every_remove[] = "local e = check(RECURRING, 'zset')\n"
                                     "if e then return refuse(e) end\n"
                                     "redis.call('ZREM', RECURRING, ARGV[2])\n"
                                     "return redis.call('DEL', P .. 'q:every:' .. ARGV[2])\n";

//  ARGV: P queue. A consistent snapshot of the queue's counters.
static const char s_stats[] =
    "local q = ARGV[2]\n"
    "local s = redis.call('HMGET', qkey(q, 'stats'), 'delayed', 'inflight', 'processed',\n"
    "                     'failed', 'retried', 'requeued', 'lost_acks')\n"
    "local out = {redis.call('LLEN', qkey(q, 'ready'))}\n"
    "for i = 1, 7 do out[#out + 1] = num(s[i], 0) end\n"
    "out[#out + 1] = redis.call('LLEN', qkey(q, 'failed'))\n"
    "return out\n";

//  ARGV: P queue max. Returns (id task error attempt failed_ms)... newest first.
static const char s_failed[] =
    "local out = {}\n"
    "local ids = redis.call('LRANGE', qkey(ARGV[2], 'failed'), 0, tonumber(ARGV[3]) - 1)\n"
    "for _, id in ipairs(ids) do\n"
    "  local f = job_fields(id, 'task', 'error', 'attempt', 'failed_ms') or {}\n"
    "  out[#out + 1] = id\n"
    "  out[#out + 1] = f[1] or ''\n"
    "  out[#out + 1] = f[2] or ''\n"
    "  out[#out + 1] = num(f[3], 0)\n"
    "  out[#out + 1] = num(f[4], 0)\n"
    "end\n"
    "return out\n";

//  ARGV: P queue id. Returns 1 if the job left the failed list for the queue.
static const char s_retry[] =
    "local q, id = ARGV[2], ARGV[3]\n"
    "local e = check(qkey(q, 'failed'), 'list', qkey(q, 'ready'), 'list', jkey(id), 'hash')\n"
    "if e then return refuse(e) end\n"
    "if redis.call('EXISTS', jkey(id)) == 0 then return 0 end\n"
    "if redis.call('LREM', qkey(q, 'failed'), 1, id) == 0 then return 0 end\n"
    "redis.call('HSET', jkey(id), 'state', 'queued', 'failures', 0, 'lost', 0)\n"
    "redis.call('HDEL', jkey(id), 'failed_ms')\n"
    "redis.call('LPUSH', qkey(q, 'ready'), id)\n"
    "signal(q)\n"
    "return 1\n";

//  ARGV: P queue phase cursor limit
//  One slice of deleting a queue: phase 'ready' and 'failed' pop up to limit
//  ids from that list, 'inflight' and 'delayed' scan up to about limit
//  entries of that set, 'recurring' the recurring tasks, deleting the jobs
//  and tasks of the queue; 'final' deletes the queue's own keys, once its
//  lists hold no more than limit ids (else it starts over). Returns
//  {deleted, next phase ('done' at the end), next cursor}.
static const char s_delete[] =
    "local q, phase, cursor, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])\n"
    "local e = check(qkey(q, 'ready'), 'list', qkey(q, 'failed'), 'list', DELAYED, 'zset',\n"
    "                INFLIGHT, 'zset', RECURRING, 'zset', QUEUES, 'set')\n"
    "if e then return refuse(e) end\n"
    "local n = 0\n"
    //  Deletes job id if it is one of the queue's; returns 1 if it was.
    "local function drop(id)\n"
    "  local f = job_fields(id, 'queue', 'node')\n"
    "  if not f or f[1] ~= q then return 0 end\n"
    "  if f[2] and not check(nkey(f[2]), 'set') then redis.call('SREM', nkey(f[2]), id) end\n"
    "  n = n + redis.call('DEL', jkey(id))\n"
    "  return 1\n"
    "end\n"
    "local function scan(key, nxt)\n"
    "  local r = redis.call('ZSCAN', key, cursor, 'COUNT', limit)\n"
    "  for i = 1, #r[2], 2 do\n"
    "    if drop(r[2][i]) == 1 then redis.call('ZREM', key, r[2][i]) end\n"
    "  end\n"
    "  if r[1] == '0' then return {n, nxt, '0'} end\n"
    "  return {n, phase, r[1]}\n"
    "end\n"
    "if phase == 'ready' or phase == 'failed' then\n"
    "  local ids = redis.call('RPOP', qkey(q, phase), limit) or {}\n"
    "  for _, id in ipairs(ids) do drop(id) end\n"
    "  if #ids == limit then return {n, phase, '0'} end\n"
    "  return {n, phase == 'ready' and 'failed' or 'inflight', '0'}\n"
    "elseif phase == 'inflight' then return scan(INFLIGHT, 'delayed')\n"
    "elseif phase == 'delayed' then return scan(DELAYED, 'recurring')\n"
    "elseif phase == 'recurring' then\n"
    "  local r = redis.call('ZSCAN', RECURRING, cursor, 'COUNT', limit)\n"
    "  for i = 1, #r[2], 2 do\n"
    "    local def = P .. 'q:every:' .. r[2][i]\n"
    "    local f = redis.pcall('HGET', def, 'queue')\n"
    "    if f == q then\n"
    "      redis.call('ZREM', RECURRING, r[2][i])\n"
    "      redis.call('DEL', def)\n"
    "    end\n"
    "  end\n"
    "  return {n, r[1] == '0' and 'final' or phase, r[1]}\n"
    "end\n"
    "local ready, failed = qkey(q, 'ready'), qkey(q, 'failed')\n"
    "if redis.call('LLEN', ready) + redis.call('LLEN', failed) > limit then\n"
    "  return {n, 'ready', '0'}\n"
    "end\n"
    "for _, list in ipairs({ready, failed}) do\n"
    "  for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do drop(id) end\n"
    "end\n"
    "redis.call('DEL', ready, failed, qkey(q, 'stats'), qkey(q, 'signal'))\n"
    "redis.call('SREM', QUEUES, q)\n"
    "return {n, 'done', '0'}\n";

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
    for (int i = 0; i < ZC_QS_COUNT; i++) {
        s_source[i] = zc_qs_source(s_bodies[i]);
        zc_script_init(&s_scripts[i], s_source[i]);
    }
    atexit(s_free_sources);
}

void zc_qs_args_start(zc_redis_args_t *args, zc_qs_script_t script, const zc_identity_t *identity)
{
    assert(script >= 0 && script < ZC_QS_COUNT);
    pthread_once(&s_once, s_init_scripts);
    zc_qs_args_start_script(args, &s_scripts[script], identity);
}

char *zc_qs_source(const char *body)
{
    size_t prelude_len = strlen(s_prelude), body_len = strlen(body);
    char *source = (char *)malloc(prelude_len + body_len + 1);
    assert(source);
    memcpy(source, s_prelude, prelude_len);
    memcpy(source + prelude_len, body, body_len + 1);
    return source;
}

void zc_qs_args_start_script(zc_redis_args_t *args, const zc_script_t *script,
                             const zc_identity_t *identity)
{
    zc_redis_args_eval(args, script, 1);
    char key[ZC_PREFIX_MAX + 16];
    zc_redis_args_str(args, zc_identity_key(identity, key, sizeof key, "q:inflight"));
    zc_redis_args_add(args, identity->prefix, identity->prefix_len);
}

zc_redis_t *zc_qs_redis_new(const zc_identity_t *identity)
{
    zc_redis_t *redis = zc_redis_new(&identity->url, 5000);
    zc_redis_set_backoff(redis, 100, 100);
    //  A worker's claims and acks wait for a replica too (a claim that
    //  reached one is not run again after a failover), but do not fail when
    //  none answers: the job is claimed either way (docs/QUEUE.md).
    zc_redis_set_durable(redis, 0);
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

//  --------------------------------------------------------------------------
//  Replies

zc_error_t zc_qs_error_kind(const redisReply *reply)
{
    return strncmp(reply->str, "WRONGTYPE", 9) == 0 ? ZC_ERR_TYPE : ZC_ERR_REDIS;
}

const char *zc_qs_reply_problem(const redisReply *reply, size_t group)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return NULL;
    if (group > 1 && reply->elements % group != 1) return NULL;
    const redisReply *last = reply->element[reply->elements - 1];
    return last->type == REDIS_REPLY_STRING ? last->str : NULL;
}
