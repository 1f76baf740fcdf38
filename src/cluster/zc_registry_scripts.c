/*  zc_registry_scripts — the registry's Lua scripts.

    Why they read defensively: Redis is shared, and anything may have been
    written (or deleted) under the cluster's keys. A script that trips over
    a key of the wrong type fails on every node, every tick, for ever; so
    every read that could meet one goes through safe(), which replaces the
    damaged key and names it in the script's answer (the actor logs that
    once; only for WRONGTYPE: any other error, such as an ACL's NOPERM,
    fails the script and deletes nothing), and every removal goes through
    forget().

    Keys under the prefix P ("zc:{CLUSTER}:"), besides those the registry
    always had (nodes, node:<id>, lease:<id>, leader, epoch, events):

        leases          sorted set: id -> lease deadline (ms, Redis clock),
                        so a reap reads only the leases that are due, never
                        the whole membership (O(expired), not O(n))
        suspects:<id>   sorted set: reporter id -> when it last said it
                        cannot reach <id>; a majority of the other members
                        removes <id>. Entries older than the window lapse.
        gone:<id>       the incarnation the cluster removed, for a while:
                        a node that finds its own there was removed and
                        comes back as a new incarnation; one that does not
                        (its record only vanished) restores it unchanged.

    Time is Redis's (TIME), so nodes on hosts with different clocks agree.
*/
#include "zc_registry_scripts.h"

//  What every script may use: the repairs it made, Redis's clock, safe().
#define LUA_COMMON                                                                                 \
    "local repaired = {}\n"                                                                        \
    "local function now_ms()\n"                                                                    \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function safe(what, cmd, k, ...)\n"                                                     \
    "  local r = redis.pcall(cmd, k, ...)\n"                                                       \
    "  if type(r) == 'table' and r.err then\n"                                                     \
    "    if string.sub(r.err, 1, 9) ~= 'WRONGTYPE' then error(r) end\n"                            \
    "    redis.call('DEL', k)\n"                                                                   \
    "    table.insert(repaired, what .. ' ' .. k .. ' had the wrong type')\n"                      \
    "    r = redis.call(cmd, k, ...)\n"                                                            \
    "  end\n"                                                                                      \
    "  return r\n"                                                                                 \
    "end\n"                                                                                        \
    "local function inc_of(k)\n"                                                                   \
    "  local r = redis.pcall('HGET', k, 'inc')\n"                                                  \
    "  if type(r) ~= 'string' then return nil end\n"                                               \
    "  return r\n"                                                                                 \
    "end\n"

//  forget(id, reason): removes a node everywhere and announces it; the
//  scripts that use it take ARGV[1] = prefix and ARGV[2] = how long (ms)
//  the removed incarnation is remembered under gone:<id>.
#define LUA_FORGET                                                                                 \
    "local function forget(id, reason)\n"                                                          \
    "  local p = ARGV[1]\n"                                                                        \
    "  local inc = inc_of(p .. 'node:' .. id) or ''\n"                                             \
    "  safe('membership set', 'SREM', p .. 'nodes', id)\n"                                         \
    "  safe('lease deadlines', 'ZREM', p .. 'leases', id)\n"                                       \
    "  redis.call('DEL', p .. 'node:' .. id, p .. 'lease:' .. id, p .. 'suspects:' .. id)\n"       \
    "  if inc ~= '' then redis.call('SET', p .. 'gone:' .. id, inc, 'PX', ARGV[2]) end\n"          \
    "  local holder = redis.pcall('GET', p .. 'leader')\n"                                         \
    "  if type(holder) == 'string' and string.match(holder, '^(%S+)') == id then\n"                \
    "    redis.call('DEL', p .. 'leader')\n"                                                       \
    "  end\n"                                                                                      \
    "  redis.call('PUBLISH', p .. 'events', 'leave ' .. id .. ' ' .. reason .. ' ' .. inc)\n"      \
    "end\n"

const char *zc_registry_script_sources[ZC_SCRIPT_COUNT] = {
    //  PRESENCE  KEYS: nodes node:id lease:id leases gone:id suspects:id
    //            ARGV: id ttl channel inc fresh field value...
    //  -> {0, why}: this incarnation is not ours to keep (peers removed it,
    //  or the record holds another): register anew;
    //  {1, repairs, suspicions}: present, with what had to be put back.
    //  fresh=1 registers: the record is written whole, whatever was there.
    LUA_COMMON "local id, ttl, inc, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5] == '1'\n"
               "if not fresh and safe('tombstone', 'GET', KEYS[5]) == inc then\n"
               "  return {0, 'removed by its peers'}\n"
               "end\n"
               "local fields = safe('record', 'HGETALL', KEYS[2])\n"
               "local have = {}\n"
               "for i = 1, #fields, 2 do have[fields[i]] = fields[i + 1] end\n"
               "if not fresh and have.inc and have.inc ~= inc then\n"
               "  return {0, 'its record holds another incarnation'}\n"
               "end\n"
               "local verb = nil\n"
               "if fresh or not have.inc then\n"
               "  redis.call('DEL', KEYS[2])\n"
               "  redis.call('HSET', KEYS[2], unpack(ARGV, 6))\n"
               "  if not fresh then table.insert(repaired, 'record') end\n"
               "  verb = 'join'\n"
               "else\n"
               "  for i = 6, #ARGV, 2 do\n"
               "    if have[ARGV[i]] ~= ARGV[i + 1] then\n"
               "      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n"
               "      table.insert(repaired, 'field ' .. ARGV[i])\n"
               "      verb = 'update'\n"
               "    end\n"
               "  end\n"
               "end\n"
               "if safe('membership set', 'SADD', KEYS[1], id) == 1 then\n"
               "  if not fresh then table.insert(repaired, 'membership') end\n"
               "  verb = 'join'\n"
               "end\n"
               "local old = safe('lease', 'SET', KEYS[3], inc, 'PX', ttl, 'GET')\n"
               "if not old and not fresh then table.insert(repaired, 'lease') end\n"
               "safe('lease deadlines', 'ZADD', KEYS[4], now_ms() + ttl, id)\n"
               "if verb then redis.call('PUBLISH', ARGV[3], verb .. ' ' .. id) end\n"
               "return {1, table.concat(repaired, ', '), safe('suspicions', 'ZCARD', KEYS[6])}\n",

    //  UPDATE  KEYS: node:id  ARGV: inc field value channel id
    "if redis.pcall('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], 'update ' .. ARGV[5])\n"
    "return 1\n",

    //  REMOVE  KEYS: nodes leases node:id lease:id leader
    //          ARGV: prefix gone-ms id inc reason
    //  Only the incarnation named: never a restarted successor.
    LUA_COMMON LUA_FORGET "if inc_of(KEYS[3]) ~= ARGV[4] then return 0 end\n"
                          "forget(ARGV[3], ARGV[5])\n"
                          "return 1\n",

    //  SUSPECT  KEYS: nodes leases node:id suspects:id node:reporter leader
    //           ARGV: prefix gone-ms id inc reporter reporter-inc window-ms
    //  -> -1 the reporter is not in good standing (it was removed itself:
    //  a node that froze sees every connection time out when it wakes),
    //  0 the incarnation is gone already, 1 counted, 2 removed: more than
    //  half of the other members cannot reach it.
    LUA_COMMON LUA_FORGET
    "if inc_of(KEYS[5]) ~= ARGV[6] then return -1 end\n"
    "if inc_of(KEYS[3]) ~= ARGV[4] then return 0 end\n"
    "local now = now_ms()\n"
    "safe('suspicions', 'ZADD', KEYS[4], now, ARGV[5])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))\n"
    "redis.call('PEXPIRE', KEYS[4], ARGV[7])\n"
    "local others = safe('membership set', 'SCARD', KEYS[1]) - 1\n"
    "if redis.call('ZCARD', KEYS[4]) * 2 > others then\n"
    "  forget(ARGV[3], 'crashed')\n"
    "  return 2\n"
    "end\n"
    "return 1\n",

    //  REAP  KEYS: nodes leases leader  ARGV: prefix gone-ms full
    //  -> {removed, repairs, ms until the next deadline or -1}. Reads the
    //  deadlines that are due only; with full=1 (the leader, once a tick)
    //  also sweeps members that have no deadline at all (written by hand,
    //  or their deadline was deleted).
    LUA_COMMON LUA_FORGET
    "local removed, now = 0, now_ms()\n"
    "local function reap(id)\n"
    "  local ttl = redis.call('PTTL', ARGV[1] .. 'lease:' .. id)\n"
    "  if ttl == -2 then\n"
    "    forget(id, 'expired')\n"
    "    removed = removed + 1\n"
    "  else\n"
    "    safe('lease deadlines', 'ZADD', KEYS[2], now + math.max(ttl, 1000), id)\n"
    "  end\n"
    "end\n"
    "for _, id in ipairs(safe('lease deadlines', 'ZRANGEBYSCORE', KEYS[2], '-inf', now,\n"
    "                         'LIMIT', 0, 100)) do\n"
    "  reap(id)\n"
    "end\n"
    "if ARGV[3] == '1' then\n"
    "  for _, id in ipairs(safe('membership set', 'SMEMBERS', KEYS[1])) do\n"
    "    if not redis.call('ZSCORE', KEYS[2], id) then reap(id) end\n"
    "  end\n"
    "end\n"
    "local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n"
    "local next_ms = -1\n"
    "if first[2] then next_ms = math.max(0, tonumber(first[2]) - now) end\n"
    "return {removed, table.concat(repaired, ', '), next_ms}\n",

    //  ELECT  KEYS: leader epoch  ARGV: id ttl seen  -> {is_leader, epoch, holder}
    //  A value that is not "<id> <epoch>" is corrupt and taken over. seen is
    //  the highest epoch the caller ever saw: a Redis that lost writes in a
    //  failover (an older leader value, a lower counter) never makes the
    //  epoch go back. A lease below seen is stale and taken over, and a new
    //  epoch is above both the counter and seen.
    "local cur = redis.call('GET', KEYS[1])\n"
    "local seen = tonumber(ARGV[3]) or 0\n"
    "local holder, epoch\n"
    "if cur then holder, epoch = string.match(cur, '^(%S+) (%d+)$') end\n"
    "if holder and tonumber(epoch) < seen then holder = nil end\n"
    "if not holder then\n"
    "  local e = redis.call('INCR', KEYS[2])\n"
    "  if e <= seen then\n"
    "    e = seen + 1\n"
    "    redis.call('SET', KEYS[2], e)\n"
    "  end\n"
    "  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])\n"
    "  return {1, e, ARGV[1]}\n"
    "end\n"
    "if holder == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return {1, tonumber(epoch), holder}\n"
    "end\n"
    "return {0, tonumber(epoch), holder}\n",

    //  LEADER_HEAL  KEYS: leader epoch  ARGV: highest epoch this node saw
    //  Run when ELECT failed: a leader key of another type is deleted (the
    //  next ELECT takes the lease), an epoch that is not a counter is set
    //  to the highest epoch seen, so it never goes back. -> what it healed.
    "local healed = {}\n"
    "if type(redis.pcall('GET', KEYS[1])) == 'table' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  table.insert(healed, 'leader')\n"
    "end\n"
    "local e = redis.pcall('GET', KEYS[2])\n"
    "if type(e) == 'table' or (type(e) == 'string' and not string.match(e, '^%d+$')) then\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  redis.call('SET', KEYS[2], ARGV[1])\n"
    "  table.insert(healed, 'epoch')\n"
    "end\n"
    "return table.concat(healed, ', ')\n",
};
