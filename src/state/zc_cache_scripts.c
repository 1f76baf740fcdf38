/*  zc_cache_scripts — the cache's Lua scripts.

    Every operation that checks something and then writes is one of these
    scripts, so no other client can act between the check and the write.
    Their SHA-1s are computed here once (zc_script_init): calls go out as
    EVALSHA, and the Redis layer sends EVAL when Redis has lost a script
    (restart, SCRIPT FLUSH, failover), so nothing is loaded ahead.

    Each answers {status, ...}, or one such answer per key, the status being
    a cache_status_t: 0 done, 1 missing, 2 locked (with the owner), 3 wrong
    type (with the type name), 4 the lock key holds another type.
*/
#include "zc_cache_internal.h"

#include <pthread.h>

static const char *s_sources[CACHE_SCRIPTS] = {
    //  CACHE_SAVE: KEYS n values then their n locks; ARGV owner, then value and
    //  ttl_ms (0 = none) per key. One MGET reads every lock (EXISTS, in the
    //  same call count, spots lock keys of another type, which MGET reads as
    //  absent); SET ... GET refuses to replace another type, so the type
    //  check costs no extra call. Answers a status per key.
    "local n = #KEYS / 2\n"
    "local owners = redis.call('MGET', unpack(KEYS, n + 1, 2 * n))\n"
    "local held = 0\n"
    "for i = 1, n do if owners[i] then held = held + 1 end end\n"
    "if redis.call('EXISTS', unpack(KEYS, n + 1, 2 * n)) > held then\n"
    "  for i = 1, n do\n"
    "    if not owners[i] and redis.call('EXISTS', KEYS[n + i]) == 1 then owners[i] = true end\n"
    "  end\n"
    "end\n"
    "local out = {}\n"
    "for i = 1, n do\n"
    "  local owner = owners[i]\n"
    "  if owner == true then out[i] = {4}\n"
    "  elseif owner and owner ~= ARGV[1] then out[i] = {2, owner}\n"
    "  else\n"
    "    local old\n"
    "    if ARGV[2 * i + 1] ~= '0' then\n"
    "      old = redis.pcall('SET', KEYS[i], ARGV[2 * i], 'PX', ARGV[2 * i + 1], 'GET')\n"
    "    else old = redis.pcall('SET', KEYS[i], ARGV[2 * i], 'GET') end\n"
    "    if type(old) == 'table' then out[i] = {3, redis.call('TYPE', KEYS[i]).ok}\n"
    "    else out[i] = {0} end\n"
    "  end\n"
    "end\n"
    "return out\n",
    //  CACHE_LOAD: KEYS n values then their n locks; ARGV owner, slide_ms (0 =
    //  none). A lock key of another type is no lock to a reader (as for
    //  MGET). Answers a status each, with the value when found.
    "local n = #KEYS / 2\n"
    "local out = {}\n"
    "for i = 1, n do\n"
    "  local owner = redis.pcall('GET', KEYS[n + i])\n"
    "  local v = redis.pcall('GET', KEYS[i])\n"
    "  if type(owner) == 'string' and owner ~= ARGV[1] then out[i] = {2, owner}\n"
    "  elseif not v then out[i] = {1}\n"
    "  elseif type(v) == 'table' then out[i] = {3, redis.call('TYPE', KEYS[i]).ok}\n"
    "  else\n"
    "    if ARGV[2] ~= '0' and redis.call('PTTL', KEYS[i]) > 0 then\n"
    "      redis.call('PEXPIRE', KEYS[i], ARGV[2])\n"
    "    end\n"
    "    out[i] = {0, v}\n"
    "  end\n"
    "end\n"
    "return out\n",
    //  CACHE_DESTROY: KEYS value, lock; ARGV owner
    "local owner = redis.call('GET', KEYS[2])\n"
    "if owner and owner ~= ARGV[1] then return {2, owner} end\n"
    "if redis.call('DEL', KEYS[1]) == 0 then return {1} end\n"
    "return {0}\n",
    //  CACHE_LOCK: KEYS lock; ARGV owner, ttl_ms
    "local owner = redis.call('GET', KEYS[1])\n"
    "if owner and owner ~= ARGV[1] then return {2, owner} end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return {0}\n",
    //  CACHE_UNLOCK: KEYS lock; ARGV owner
    "local owner = redis.call('GET', KEYS[1])\n"
    "if not owner then return {1} end\n"
    "if owner ~= ARGV[1] then return {2, owner} end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return {0}\n",
    //  CACHE_CLEAR: KEYS n values then their n locks; ARGV owner. A lock key of
    //  the wrong type counts as held by someone else: the key is kept.
    "local n = #KEYS / 2\n"
    "local removed, kept = 0, 0\n"
    "for i = 1, n do\n"
    "  local owner = redis.pcall('GET', KEYS[n + i])\n"
    "  if owner and owner ~= ARGV[1] then kept = kept + 1\n"
    "  else removed = removed + redis.call('UNLINK', KEYS[i]) end\n"
    "end\n"
    "return {0, removed, kept}\n",
    //  CACHE_DUMP: KEYS the keys of one SCAN batch; answers {type, pttl, data} each
    "local out = {}\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local t = redis.call('TYPE', k).ok\n"
    "  if t == 'string' then\n"
    "    out[i] = {t, redis.call('PTTL', k), redis.call('GET', k)}\n"
    "  elseif t == 'list' then\n"
    "    out[i] = {t, redis.call('PTTL', k), redis.call('LRANGE', k, 0, -1)}\n"
    "  else out[i] = {t} end\n"
    "end\n"
    "return out\n",
    //  CACHE_RESTORE: KEYS n values then their n locks; ARGV owner, then per key
    //  kind ('value' or 'list'), ttl_ms (-1 = none), item count, items.
    //  Every lock is checked before the first write.
    "local n = #KEYS / 2\n"
    "for i = 1, n do\n"
    "  local owner = redis.call('GET', KEYS[n + i])\n"
    "  if owner and owner ~= ARGV[1] then return {2, owner, i} end\n"
    "end\n"
    "local a = 2\n"
    "for i = 1, n do\n"
    "  local k, kind = KEYS[i], ARGV[a]\n"
    "  local ttl, c = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])\n"
    "  a = a + 3\n"
    "  redis.call('DEL', k)\n"
    "  if kind == 'value' then redis.call('SET', k, ARGV[a])\n"
    "  else\n"
    "    for j = a, a + c - 1, 1000 do\n"
    "      redis.call('RPUSH', k, unpack(ARGV, j, math.min(j + 999, a + c - 1)))\n"
    "    end\n"
    "  end\n"
    "  a = a + c\n"
    "  if ttl > 0 then redis.call('PEXPIRE', k, ttl) end\n"
    "end\n"
    "return {0, n}\n",
};

static zc_script_t s_scripts[CACHE_SCRIPTS];
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    for (int i = 0; i < CACHE_SCRIPTS; i++)
        zc_script_init(&s_scripts[i], s_sources[i]);
}

const zc_script_t *cache_script(cache_script_id_t id)
{
    pthread_once(&s_once, s_init);
    return &s_scripts[id];
}
