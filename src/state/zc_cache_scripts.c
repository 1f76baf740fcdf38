/*  zc_cache_scripts — the cache's Lua scripts.

    Every operation that checks something and then writes is one of these
    scripts, so no other client can act between the check and the write.
    Their SHA-1s are computed here once (zc_script_init): calls go out as
    EVALSHA, and the Redis layer sends EVAL when Redis has lost a script
    (restart, SCRIPT FLUSH, failover), so nothing is loaded ahead.

    Each answers {status, ...}, or one such answer per key, the status being
    a cache_status_t: 0 done, 1 missing, 2 locked (with the owner), 3 wrong
    type (with the type name), 4 the lock key holds another type; a
    restore's steps add 5 (its marker is gone) and 6 (a staging key is).
*/
#include "zc_cache_internal.h"

#include <pthread.h>

//  Scripts that write past locks start with this function: owners_of(names,
//  first, last) reads the locks names[first..last] and answers, per lock,
//  its owner, false for none, or true for a lock key of another type
//  (damaged data: held by nobody we can name, so a write must not pass it);
//  or an empty table when none of them exists, the common case, which costs
//  one EXISTS. Otherwise one MGET reads the owners: it reads a key of
//  another type as absent, which the EXISTS count spots.
#define S_OWNERS_OF                                                                                \
    "local function owners_of(names, first, last)\n"                                               \
    "  local present = redis.call('EXISTS', unpack(names, first, last))\n"                         \
    "  if present == 0 then return {} end\n"                                                       \
    "  local owners = redis.call('MGET', unpack(names, first, last))\n"                            \
    "  local held = 0\n"                                                                           \
    "  for i = 1, #owners do if owners[i] then held = held + 1 end end\n"                          \
    "  if present > held then\n"                                                                   \
    "    for i = 1, #owners do\n"                                                                  \
    "      if not owners[i] and redis.call('EXISTS', names[first + i - 1]) == 1 then\n"            \
    "        owners[i] = true\n"                                                                   \
    "      end\n"                                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return owners\n"                                                                            \
    "end\n"

static const char *s_sources[CACHE_SCRIPTS] = {
    //  CACHE_SAVE: KEYS n values then their n locks; ARGV owner, the TTL in
    //  ms of every key (0 = none) or 'each', the n values, then with 'each'
    //  the n TTLs. Answers only the keys it refused, each {status, info,
    //  index}: an empty array when every key was written.
    //
    //  Its cost is per argument and per call it makes (to Redis a call from
    //  a script costs about as much as a plain command, whatever it does),
    //  so the checks are a few calls for the whole window, none per key: one
    //  EXISTS of the locks (and their MGET only if some exist); a value key
    //  of another type is never replaced (EXISTS counts the keys, MGET the
    //  strings among them, TYPE names the odd ones out only when the two
    //  differ; MGET hands the script every old value, so when the new
    //  values average over 4 KiB, TYPE asks key by key instead). The keys
    //  without a TTL are written by one MSET per run between keys with one,
    //  in order, so a key saved twice in a batch ends as its last save left
    //  it; a key with a TTL takes a SET ... PX.
    S_OWNERS_OF "local n = #KEYS / 2\n"
                "local owners = owners_of(KEYS, n + 1, 2 * n)\n"
                "local out, refused = {}, {}\n"
                "local function refuse(i, status, info)\n"
                "  refused[i] = true\n"
                "  out[#out + 1] = {status, info, i}\n"
                "end\n"
                "for i, owner in ipairs(owners) do\n"
                "  if owner == true then refuse(i, 4, '')\n"
                "  elseif owner and owner ~= ARGV[1] then refuse(i, 2, owner) end\n"
                "end\n"
                "local present = redis.call('EXISTS', unpack(KEYS, 1, n))\n"
                "if present > 0 then\n"
                "  local bytes, olds = 0, {}\n"
                "  for i = 1, n do bytes = bytes + #ARGV[2 + i] end\n"
                "  if bytes <= 4096 * n then\n"
                "    olds = redis.call('MGET', unpack(KEYS, 1, n))\n"
                "    for i = 1, n do if olds[i] then present = present - 1 end end\n"
                "  end\n"
                "  for i = 1, n do\n"
                "    if present == 0 then break end\n"
                "    if not olds[i] then\n"
                "      local t = redis.call('TYPE', KEYS[i]).ok\n"
                "      if t ~= 'none' then\n"
                "        present = present - 1\n"
                "        if t ~= 'string' and not refused[i] then refuse(i, 3, t) end\n"
                "      end\n"
                "    end\n"
                "  end\n"
                "end\n"
                "local shared = ARGV[2] ~= 'each' and ARGV[2]\n"
                "local plain, p = {}, 0\n"
                "for i = 1, n do\n"
                "  if not refused[i] then\n"
                "    local ttl = shared or ARGV[2 + n + i]\n"
                "    if ttl == '0' then\n"
                "      plain[p + 1], plain[p + 2], p = KEYS[i], ARGV[2 + i], p + 2\n"
                "    else\n"
                "      if p > 0 then redis.call('MSET', unpack(plain, 1, p)); p = 0 end\n"
                "      redis.call('SET', KEYS[i], ARGV[2 + i], 'PX', ttl)\n"
                "    end\n"
                "  end\n"
                "end\n"
                "if p > 0 then redis.call('MSET', unpack(plain, 1, p)) end\n"
                "return out\n",
    //  CACHE_SAVE_ONE: CACHE_SAVE for one key (KEYS value, lock; ARGV owner,
    //  ttl_ms, value), in three calls where CACHE_SAVE makes four: GET reads
    //  the lock (WRONGTYPE for a lock key of another type), TYPE the key,
    //  SET writes it. (SET ... GET would check the type in the SET, but it
    //  hands the old value to the script: as fast for 64 bytes, twice as
    //  slow from 4 KiB.) Any error other than WRONGTYPE fails the script.
    "local owner = redis.pcall('GET', KEYS[2])\n"
    "if type(owner) == 'table' then\n"
    "  if not string.find(owner.err, 'WRONGTYPE') then return owner end\n"
    "  return {{4, '', 1}}\n"
    "end\n"
    "if owner and owner ~= ARGV[1] then return {{2, owner, 1}} end\n"
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'string' and t ~= 'none' then return {{3, t, 1}} end\n"
    "if ARGV[2] ~= '0' then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])\n"
    "else redis.call('SET', KEYS[1], ARGV[3]) end\n"
    "return {}\n",
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
    S_OWNERS_OF "local n = #KEYS / 2\n"
                "local owners = owners_of(KEYS, n + 1, 2 * n)\n"
                "local gone, kept = {}, 0\n"
                "for i = 1, n do\n"
                "  if owners[i] and owners[i] ~= ARGV[1] then kept = kept + 1\n"
                "  else gone[#gone + 1] = KEYS[i] end\n"
                "end\n"
                "local removed = 0\n"
                "if #gone > 0 then removed = redis.call('UNLINK', unpack(gone)) end\n"
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
    //  The restore's three steps (zc_cache_restore.c). Each takes first the
    //  restore's marker, whose TTL (ARGV[1]) it renews, and answers {5} and
    //  does nothing if the marker is gone (the restore is over for good).
    //
    //  CACHE_RESTORE_STAGE: KEYS marker, then staging names; ARGV marker ttl,
    //  then per name its kind ('value' or 'list'), item count, items. The
    //  values go in one MSET; a list too long for one call comes in parts,
    //  each appended.
    "if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return {5} end\n"
    "local values, a = {}, 2\n"
    "for i = 2, #KEYS do\n"
    "  local c = tonumber(ARGV[a + 1])\n"
    "  if ARGV[a] == 'value' then values[#values + 1] = KEYS[i]; values[#values + 1] = ARGV[a + "
    "2]\n"
    "  else redis.call('RPUSH', KEYS[i], unpack(ARGV, a + 2, a + 1 + c)) end\n"
    "  a = a + 2 + c\n"
    "end\n"
    "if #values > 0 then redis.call('MSET', unpack(values)) end\n"
    "return {0}\n",
    //  CACHE_RESTORE_CHECK: KEYS marker, then locks; ARGV marker ttl, owner.
    //  Answers {2, owner, i} for the first lock another node holds, {4, '', i}
    //  for the first lock key of another type, else {0}.
    S_OWNERS_OF "if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return {5} end\n"
                "local owners = owners_of(KEYS, 2, #KEYS)\n"
                "for i = 1, #KEYS - 1 do\n"
                "  if owners[i] == true then return {4, '', i} end\n"
                "  if owners[i] and owners[i] ~= ARGV[2] then return {2, owners[i], i} end\n"
                "end\n"
                "return {0}\n",
    //  CACHE_RESTORE_SWITCH: KEYS marker, then per key its staging name, its
    //  name and its lock; ARGV marker ttl, owner, then per key ttl_ms (-1 =
    //  none). Checks every staging key is there ({6, '', i} if not) before
    //  the first write. Then each key whose lock another node holds (or
    //  whose lock key has another type) is kept as it is; the others are
    //  UNLINKed (an old value of any size is freed off the main thread) and
    //  their staging keys RENAMEd into place, with their TTLs. Answers {0,
    //  switched, kept, first kept, its owner}.
    S_OWNERS_OF "if redis.call('PEXPIRE', KEYS[1], ARGV[1]) == 0 then return {5} end\n"
                "local n = (#KEYS - 1) / 3\n"
                "local stages, locks = {}, {}\n"
                "for i = 1, n do stages[i], locks[i] = KEYS[3 * i - 1], KEYS[3 * i + 1] end\n"
                "if redis.call('EXISTS', unpack(stages)) < n then\n"
                "  for i = 1, n do\n"
                "    if redis.call('EXISTS', stages[i]) == 0 then return {6, '', i} end\n"
                "  end\n"
                "end\n"
                "local owners = owners_of(locks, 1, n)\n"
                "local moving, olds, kept, first, holder = {}, {}, {}, 0, ''\n"
                "for i = 1, n do\n"
                "  local owner = owners[i]\n"
                "  if owner and owner ~= ARGV[2] then\n"
                "    kept[#kept + 1] = stages[i]\n"
                "    if first == 0 then first = i; if owner ~= true then holder = owner end end\n"
                "  else moving[#moving + 1] = i; olds[#olds + 1] = KEYS[3 * i] end\n"
                "end\n"
                "if #kept > 0 then redis.call('UNLINK', unpack(kept)) end\n"
                "if #olds > 0 then redis.call('UNLINK', unpack(olds)) end\n"
                "for _, i in ipairs(moving) do\n"
                "  redis.call('RENAME', stages[i], KEYS[3 * i])\n"
                "  local ttl = tonumber(ARGV[i + 2])\n"
                "  if ttl > 0 then redis.call('PEXPIRE', KEYS[3 * i], ttl) end\n"
                "end\n"
                "return {0, #moving, #kept, first, holder}\n",
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
