/*  zc_cache — the cluster's shared cache in Redis.

    Why it looks like this:

    The model is ActionHero's api.cache (save/load/destroy with TTLs, lists,
    node-owned locks, dump/restore), minus its weak spots. ActionHero takes a
    lock with SETNX and then EXPIRE in a second round trip, so a node that
    dies between the two leaves a lock that never expires; its lock TTLs are
    rounded to seconds; and its dumps drop TTLs. Here every operation that
    checks something and then writes is one Lua script (EVALSHA, with EVAL
    when Redis has lost the script), lock TTLs are milliseconds (SET PX), and
    dumps carry each key's remaining TTL.

    Values are the caller's msgpack bytes, stored as they are, so a Python or
    Node.js peer reads them with any msgpack library. A value must be one
    well-formed msgpack object: the check below walks the encoding without
    allocating (a count of objects still owed replaces recursion, and a
    declared length longer than the bytes left is refused at once), so a
    hostile header cannot make us allocate gigabytes. Loaded values are
    checked too: bytes some other writer put under our prefix come back as
    ZC_CACHE_CORRUPT rather than being handed on as msgpack.

    Keys: `zc:{CLUSTER}:cache:KEY` for values and lists, `zc:{CLUSTER}:lock:KEY`
    for locks. The hash tag puts a cluster in one Redis Cluster slot, which
    is what makes the multi-key scripts legal there. keys/size/clear/dump walk
    the prefix with SCAN (never KEYS, which stalls the server); SCAN may
    return a key twice, so walks deduplicate.

    Dumps are written to a temporary file and renamed into place, and carry a
    CRC-32 of everything before the trailer. A restore reads the whole file,
    checks magic, version, checksum, count and every record before it sends
    anything, then writes all keys in one script: a bad file, or a key locked
    by another node, changes nothing. The format is in docs/CACHE.md.

    Throughput: to Redis a script call costs about as much as several plain
    commands, whatever the script does, so one script per key would cap a
    batch far below raw SET/GET. A batch therefore goes in windows of up to
    S_WINDOW keys, each one round trip: saves are one script call per
    window (one MGET reads all the window's locks, then one SET per key),
    and loads without sliding are one MGET of every key's lock and value,
    which reads both at the same instant with no script at all. Only keys
    that MGET finds no value for (missing, or another type) and sliding
    loads go through the load script. A single save or load is a batch of
    one. The status of each key comes back in its place, and the batch's
    error message is the first failed key's.

    Connections: one for commands and, created on first use, one for blocking
    pops (BLPOP holds its connection, and hiredis's command timeout must be
    longer than the pop's). A connection that fails is dropped and the next
    operation reconnects; the failed operation is not retried, because it may
    have reached Redis.
*/
#include "zc_cache.h"
#include "zc_log.h"
#include "zc_redis.h"
#include "zc_wire.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_TIMEOUT_MS      5000                          //  connect and command timeout
#define S_SCAN_COUNT      "500"                         //  SCAN batch size hint
#define S_WINDOW          512                           //  keys per round trip in a batch
#define S_TTL_MAX         1000000000000000LL            //  ms; keeps now + ttl far from overflow
#define S_PREFIX_MAX      (3 + 1 + ZC_NAME_MAX + 2 + 1) //  "zc:{CLUSTER}:" and its NUL
#define S_NAME_MAX        (S_PREFIX_MAX + 6 + ZC_CACHE_KEY_MAX)
#define S_DUMP_MAGIC      "ZCCACHE"
#define S_DUMP_VERSION    1
#define S_DUMP_TRAILER    15 //  "crc32 xxxxxxxx\n"
#define S_DUMP_HEADER_MAX 80

//  --------------------------------------------------------------------------
//  Lua scripts. Each answers {status, ...}, or one per key: 0 done,
//  1 missing, 2 locked (with the owner), 3 wrong type (with the type
//  name), 4 the lock key holds another type.

enum { S_SAVE, S_LOAD, S_DESTROY, S_LOCK, S_UNLOCK, S_CLEAR, S_DUMP, S_RESTORE, S_SCRIPTS };

enum { S_DONE = 0, S_MISSING = 1, S_LOCKED = 2, S_WRONGTYPE = 3, S_BADLOCK = 4 };

static const char *s_script_text[S_SCRIPTS] = {
    //  S_SAVE: KEYS n values then their n locks; ARGV owner, then value and
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
    //  S_LOAD: KEYS n values then their n locks; ARGV owner, slide_ms (0 =
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
    //  S_DESTROY: KEYS value, lock; ARGV owner
    "local owner = redis.call('GET', KEYS[2])\n"
    "if owner and owner ~= ARGV[1] then return {2, owner} end\n"
    "if redis.call('DEL', KEYS[1]) == 0 then return {1} end\n"
    "return {0}\n",
    //  S_LOCK: KEYS lock; ARGV owner, ttl_ms
    "local owner = redis.call('GET', KEYS[1])\n"
    "if owner and owner ~= ARGV[1] then return {2, owner} end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "return {0}\n",
    //  S_UNLOCK: KEYS lock; ARGV owner
    "local owner = redis.call('GET', KEYS[1])\n"
    "if not owner then return {1} end\n"
    "if owner ~= ARGV[1] then return {2, owner} end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return {0}\n",
    //  S_CLEAR: KEYS n values then their n locks; ARGV owner. A lock key of
    //  the wrong type counts as held by someone else: the key is kept.
    "local n = #KEYS / 2\n"
    "local removed, kept = 0, 0\n"
    "for i = 1, n do\n"
    "  local owner = redis.pcall('GET', KEYS[n + i])\n"
    "  if owner and owner ~= ARGV[1] then kept = kept + 1\n"
    "  else removed = removed + redis.call('UNLINK', KEYS[i]) end\n"
    "end\n"
    "return {0, removed, kept}\n",
    //  S_DUMP: KEYS the keys of one SCAN batch; answers {type, pttl, data} each
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
    //  S_RESTORE: KEYS n values then their n locks; ARGV owner, then per key
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

//  --------------------------------------------------------------------------
//  The object

struct _zc_cache_t {
    zc_redis_url_t url;
    redisContext *redis;    //  commands; NULL while disconnected
    redisContext *blocking; //  blocking pops; NULL until needed
    char cluster[ZC_NAME_MAX + 1];
    char owner[ZC_NAME_MAX + 1];
    char prefix[S_PREFIX_MAX];        //  "zc:{CLUSTER}:"
    char match[2 * S_PREFIX_MAX + 8]; //  prefix + "cache:", glob-escaped for SCAN
    char sha[S_SCRIPTS][41];
    int scripts_loaded;
    char value_name[S_NAME_MAX]; //  scratch: the Redis name of a value or list
    char lock_name[S_NAME_MAX];  //  scratch: the Redis name of a lock
    char errstr[512];
    int hold_errstr; //  set while a batch keeps its first failure's message
};

//  Records a failure message and returns rc.
static int s_fail(zc_cache_t *self, int rc, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(zc_cache_t *self, int rc, const char *format, ...)
{
    if (self->hold_errstr) return rc; //  a batch keeps its first failure's message
    va_list args;
    va_start(args, format);
    vsnprintf(self->errstr, sizeof self->errstr, format, args);
    va_end(args);
    return rc;
}

const char *zc_cache_strerror(int rc)
{
    switch (rc) {
    case ZC_CACHE_OK:
        return "ok";
    case ZC_CACHE_MISSING:
        return "missing";
    case ZC_CACHE_LOCKED:
        return "locked";
    case ZC_CACHE_TYPE:
        return "wrong type";
    case ZC_CACHE_INVALID:
        return "invalid";
    case ZC_CACHE_REDIS:
        return "redis error";
    case ZC_CACHE_TIMEOUT:
        return "timeout";
    case ZC_CACHE_CORRUPT:
        return "corrupt";
    case ZC_CACHE_IO:
        return "i/o error";
    default:
        return "unknown error";
    }
}

//  --------------------------------------------------------------------------
//  msgpack: checking that bytes are exactly one object

//  Reads a big-endian unsigned integer of n bytes.
static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  The first bytes 0xc0..0xdf: how each is followed. A length or count field
//  of `width` bytes (a count of `children` objects each, or of payload
//  bytes when children is 0), then `skip` fixed payload bytes.
typedef struct {
    uint8_t valid, width, skip, children;
} s_msgpack_format_t;

static const s_msgpack_format_t s_msgpack_formats[32] = {
    {1, 0, 0, 0},  {0, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, //  nil, (never used), false, true
    {1, 1, 0, 0},  {1, 2, 0, 0}, {1, 4, 0, 0},               //  bin 8/16/32
    {1, 1, 1, 0},  {1, 2, 1, 0}, {1, 4, 1, 0},               //  ext 8/16/32 (+ type byte)
    {1, 0, 4, 0},  {1, 0, 8, 0},                             //  float 32/64
    {1, 0, 1, 0},  {1, 0, 2, 0}, {1, 0, 4, 0}, {1, 0, 8, 0}, //  uint 8..64
    {1, 0, 1, 0},  {1, 0, 2, 0}, {1, 0, 4, 0}, {1, 0, 8, 0}, //  int 8..64
    {1, 0, 2, 0},  {1, 0, 3, 0}, {1, 0, 5, 0}, {1, 0, 9, 0}, //  fixext 1..16 (+ type byte)
    {1, 0, 17, 0}, {1, 1, 0, 0}, {1, 2, 0, 0}, {1, 4, 0, 0}, //  fixext 16, str 8/16/32
    {1, 2, 0, 1},  {1, 4, 0, 1},                             //  array 16/32
    {1, 2, 0, 2},  {1, 4, 0, 2},                             //  map 16/32
};

//  Returns the length of the msgpack object at the start of data, or 0 if
//  data does not start with one complete, well-formed object.
static size_t s_msgpack_object_size(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    uint64_t owed = 1; //  objects still to read, counting nested ones
    while (owed > 0) {
        if (pos >= size) return 0;
        uint8_t b = data[pos++];
        owed--;
        uint64_t skip = 0;
        if (b <= 0x7f || b >= 0xe0)
            ; //  positive and negative fixint
        else if (b <= 0x8f)
            owed += 2 * (uint64_t)(b & 0x0f); //  fixmap
        else if (b <= 0x9f)
            owed += b & 0x0f; //  fixarray
        else if (b <= 0xbf)
            skip = b & 0x1f; //  fixstr
        else {
            s_msgpack_format_t f = s_msgpack_formats[b - 0xc0];
            if (!f.valid || size - pos < f.width) return 0;
            uint64_t n = s_be(data + pos, f.width);
            pos += f.width;
            if (f.children)
                owed += f.children * n;
            else
                skip = n + f.skip;
        }
        if (skip > size - pos) return 0;
        pos += (size_t)skip;
        if (owed > size - pos) //  every object takes at least one byte
            return 0;
    }
    return pos;
}

int zc_cache_msgpack_valid(const void *data, size_t size)
{
    return data && size > 0 && s_msgpack_object_size((const uint8_t *)data, size) == size;
}

//  --------------------------------------------------------------------------
//  CRC-32 (IEEE 802.3, as zlib's crc32 and Python's zlib.crc32)

//  Continues crc (0 to start) over size bytes of data.
static uint32_t s_crc32(uint32_t crc, const uint8_t *data, size_t size)
{
    static const uint32_t table[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                       0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                       0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                       0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

//  --------------------------------------------------------------------------
//  Names and arguments

//  Returns 0 if key is usable, else records why and returns INVALID.
static int s_check_key(zc_cache_t *self, const char *key)
{
    assert(key);
    size_t len = strlen(key);
    if (len == 0) return s_fail(self, ZC_CACHE_INVALID, "empty key");
    if (len > ZC_CACHE_KEY_MAX)
        return s_fail(self, ZC_CACHE_INVALID, "key longer than %d bytes", ZC_CACHE_KEY_MAX);
    return ZC_CACHE_OK;
}

static int s_check_value(zc_cache_t *self, const char *key, const void *value, size_t size)
{
    if (!zc_cache_msgpack_valid(value, size))
        return s_fail(self, ZC_CACHE_INVALID,
                      "value for key '%.100s' is not one well-formed msgpack object", key);
    return ZC_CACHE_OK;
}

//  Writes the Redis name of key ("cache" or "lock" space) into buf.
static const char *s_name(zc_cache_t *self, char *buf, const char *space, const char *key)
{
    snprintf(buf, S_NAME_MAX, "%s%s:%s", self->prefix, space, key);
    return buf;
}

//  Formats n into buf (at least 24 bytes) and returns buf.
static const char *s_itoa(char *buf, int64_t n)
{
    snprintf(buf, 24, "%" PRId64, n);
    return buf;
}

//  Returns a malloc'd copy of size bytes (never NULL for size 0).
static void *s_copy(const void *data, size_t size)
{
    void *copy = malloc(size ? size : 1);
    assert(copy);
    memcpy(copy, data, size);
    return copy;
}

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

//  --------------------------------------------------------------------------
//  Connections and replies

static void s_drop(zc_cache_t *self)
{
    if (self->redis) redisFree(self->redis);
    self->redis = NULL;
}

//  Records a failed connection (NULL reply): takes its message and drops it.
static int s_connection_failed(zc_cache_t *self, redisContext **context_p)
{
    redisContext *c = *context_p;
    s_fail(self, ZC_CACHE_REDIS, "Redis connection failed: %s",
           c && c->err ? c->errstr : "no reply");
    if (c) redisFree(c);
    *context_p = NULL;
    return ZC_CACHE_REDIS;
}

//  Loads the scripts into Redis's script cache and keeps their SHA-1s.
static int s_load_scripts(zc_cache_t *self)
{
    for (int i = 0; i < S_SCRIPTS; i++) {
        redisReply *reply =
            (redisReply *)redisCommand(self->redis, "SCRIPT LOAD %s", s_script_text[i]);
        if (!reply) return s_connection_failed(self, &self->redis);
        int ok = reply->type == REDIS_REPLY_STRING && reply->len == 40;
        if (ok)
            memcpy(self->sha[i], reply->str, 41);
        else
            s_fail(self, ZC_CACHE_REDIS, "cannot load cache scripts into Redis: %s",
                   reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        freeReplyObject(reply);
        if (!ok) {
            s_drop(self);
            return ZC_CACHE_REDIS;
        }
    }
    self->scripts_loaded = 1;
    return ZC_CACHE_OK;
}

//  Makes sure the command connection is up. Returns OK or REDIS.
static int s_connect(zc_cache_t *self)
{
    if (self->redis) return ZC_CACHE_OK;
    char err[300];
    self->redis = zc_redis_connect(&self->url, S_TIMEOUT_MS, err, sizeof err);
    if (!self->redis) return s_fail(self, ZC_CACHE_REDIS, "%s", err);
    return self->scripts_loaded ? ZC_CACHE_OK : s_load_scripts(self);
}

//  Checks a reply to a plain command: NULL (connection lost) and error
//  replies become REDIS, or TYPE for WRONGTYPE. Does not free the reply.
static int s_check_reply(zc_cache_t *self, redisReply *reply, const char *key, const char *op)
{
    if (!reply) return s_connection_failed(self, &self->redis);
    if (reply->type != REDIS_REPLY_ERROR) return ZC_CACHE_OK;
    if (strstr(reply->str, "WRONGTYPE"))
        return s_fail(self, ZC_CACHE_TYPE,
                      "key '%.100s' (or its lock) holds the wrong kind of data for %s", key, op);
    return s_fail(self, ZC_CACHE_REDIS, "Redis refused %s of key '%.100s': %s", op, key,
                  reply->str);
}

//  Turns one {status, info} answer of a script into a result code.
static int s_entry_status(zc_cache_t *self, const redisReply *status, const char *key,
                          const char *op)
{
    if (status->type != REDIS_REPLY_ARRAY || status->elements < 1 ||
        status->element[0]->type != REDIS_REPLY_INTEGER)
        return s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to %s", op);
    const redisReply *info = status->elements > 1 ? status->element[1] : NULL;
    const char *text = info && info->type == REDIS_REPLY_STRING ? info->str : "?";
    switch (status->element[0]->integer) {
    case S_DONE:
        return ZC_CACHE_OK;
    case S_MISSING:
        return s_fail(self, ZC_CACHE_MISSING, "key '%.100s' does not exist", key);
    case S_LOCKED:
        return s_fail(self, ZC_CACHE_LOCKED, "key '%.100s' is locked by node '%.255s'", key, text);
    case S_WRONGTYPE:
        return s_fail(self, ZC_CACHE_TYPE, "key '%.100s' holds a %.20s, not a value", key, text);
    case S_BADLOCK:
        return s_fail(self, ZC_CACHE_TYPE, "the lock of key '%.100s' holds the wrong kind of data",
                      key);
    default:
        return s_fail(self, ZC_CACHE_REDIS, "unexpected status from Redis to %s", op);
    }
}

//  Checks a script's {status, ...} reply; OK when the status is 0.
static int s_check_status(zc_cache_t *self, redisReply *reply, const char *key, const char *op)
{
    int rc = s_check_reply(self, reply, key, op);
    return rc ? rc : s_entry_status(self, reply, key, op);
}

//  Builds EVALSHA sha numkeys + argv into the arrays v/l (argc + 3 long).
static void s_script_argv(zc_cache_t *self, int script, int nkeys, int argc, const char **argv,
                          const size_t *lens, const char **v, size_t *l, char *numkeys)
{
    snprintf(numkeys, 16, "%d", nkeys);
    v[0] = "EVALSHA";
    v[1] = self->sha[script];
    v[2] = numkeys;
    for (int i = 0; i < 3; i++)
        l[i] = strlen(v[i]);
    memcpy(v + 3, argv, (size_t)argc * sizeof *v);
    memcpy(l + 3, lens, (size_t)argc * sizeof *l);
}

//  Returns 1 if reply says Redis does not have the script (flushed, failover).
static int s_noscript(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
}

//  Runs a script: argv holds nkeys keys then the arguments. Returns the
//  reply (NULL if the connection failed, which is then dropped by the
//  checks) for s_check_status. Falls back to EVAL on NOSCRIPT.
static redisReply *s_script(zc_cache_t *self, int script, int nkeys, int argc, const char **argv,
                            const size_t *lens)
{
    if (s_connect(self)) return NULL;
    const char *stack_v[16];
    size_t stack_l[16];
    int total = argc + 3;
    const char **v = total <= 16 ? stack_v : (const char **)malloc((size_t)total * sizeof *v);
    size_t *l = total <= 16 ? stack_l : (size_t *)malloc((size_t)total * sizeof *l);
    assert(v && l);
    char numkeys[16];
    s_script_argv(self, script, nkeys, argc, argv, lens, v, l, numkeys);
    redisReply *reply = (redisReply *)redisCommandArgv(self->redis, total, v, l);
    if (s_noscript(reply)) {
        freeReplyObject(reply);
        v[0] = "EVAL";
        v[1] = s_script_text[script];
        l[0] = 4;
        l[1] = strlen(v[1]);
        reply = (redisReply *)redisCommandArgv(self->redis, total, v, l);
    }
    if (v != stack_v) {
        free(v);
        free(l);
    }
    return reply;
}

//  Runs a script and checks its status; on OK *reply_p holds the reply for
//  the caller to read and free, otherwise it is freed.
static int s_run(zc_cache_t *self, int script, int nkeys, int argc, const char **argv,
                 const size_t *lens, const char *key, const char *op, redisReply **reply_p)
{
    redisReply *reply = s_script(self, script, nkeys, argc, argv, lens);
    if (!reply && !self->redis) return ZC_CACHE_REDIS; //  could not connect; the reason is recorded
    int rc = s_check_status(self, reply, key, op);
    if (reply && (rc || !reply_p))
        freeReplyObject(reply);
    else if (reply_p)
        *reply_p = reply;
    return rc;
}

//  Runs a plain command (argv form) on the command connection.
static redisReply *s_command(zc_cache_t *self, int argc, const char **argv, const size_t *lens)
{
    if (s_connect(self)) return NULL;
    return (redisReply *)redisCommandArgv(self->redis, argc, argv, lens);
}

//  --------------------------------------------------------------------------
//  Construction

zc_cache_t *zc_cache_new(const char *redis_url, const char *cluster, const char *owner_id)
{
    if (!redis_url) redis_url = getenv("ZC_REDIS_URL");
    if (!cluster) {
        cluster = getenv("ZC_CLUSTER");
        if (!cluster || !*cluster) cluster = "zcluster";
    }
    if (!redis_url || !*redis_url) {
        zc_log(ZC_LOG_ERROR, "cache", "no Redis URL given and ZC_REDIS_URL is not set");
        return NULL;
    }
    if (!zc_wire_name_valid(cluster) || strpbrk(cluster, "{}")) {
        zc_log(ZC_LOG_ERROR, "cache",
               "invalid cluster name '%.100s' (1-%d printable bytes, no space, '{' or '}')",
               cluster, ZC_NAME_MAX);
        return NULL;
    }
    char generated[16];
    if (!owner_id) {
        zuuid_t *uuid = zuuid_new();
        snprintf(generated, sizeof generated, "%.12s", zuuid_str_canonical(uuid));
        zuuid_destroy(&uuid);
        owner_id = generated;
    }
    if (!zc_wire_name_valid(owner_id)) {
        zc_log(ZC_LOG_ERROR, "cache", "invalid node id '%.100s'", owner_id);
        return NULL;
    }
    zc_cache_t *self = (zc_cache_t *)calloc(1, sizeof(zc_cache_t));
    assert(self);
    char err[300];
    if (zc_redis_url_parse(redis_url, &self->url, err, sizeof err)) {
        zc_log(ZC_LOG_ERROR, "cache", "%s", err);
        free(self);
        return NULL;
    }
    snprintf(self->cluster, sizeof self->cluster, "%s", cluster);
    snprintf(self->owner, sizeof self->owner, "%s", owner_id);
    snprintf(self->prefix, sizeof self->prefix, "zc:{%s}:", cluster);
    //  SCAN's MATCH is a glob: escape the glob characters a cluster name may hold.
    char *m = self->match;
    for (const char *p = self->prefix; *p; p++) {
        if (strchr("*?[]\\", *p)) *m++ = '\\';
        *m++ = *p;
    }
    strcpy(m, "cache:");
    if (s_connect(self)) {
        zc_log(ZC_LOG_ERROR, "cache", "%s", self->errstr);
        zc_cache_destroy(&self);
        return NULL;
    }
    return self;
}

void zc_cache_destroy(zc_cache_t **self_p)
{
    assert(self_p);
    zc_cache_t *self = *self_p;
    if (!self) return;
    s_drop(self);
    if (self->blocking) redisFree(self->blocking);
    free(self);
    *self_p = NULL;
}

const char *zc_cache_owner(zc_cache_t *self)
{
    assert(self);
    return self->owner;
}

const char *zc_cache_cluster(zc_cache_t *self)
{
    assert(self);
    return self->cluster;
}

const char *zc_cache_errstr(zc_cache_t *self)
{
    assert(self);
    return self->errstr;
}

//  --------------------------------------------------------------------------
//  Values

static int s_check_save(zc_cache_t *self, const char *key, const void *value, size_t size,
                        int64_t ttl_ms)
{
    int rc = s_check_key(self, key);
    if (!rc) rc = s_check_value(self, key, value, size);
    if (!rc && (ttl_ms < 0 || ttl_ms > S_TTL_MAX))
        rc = s_fail(self, ZC_CACHE_INVALID, "TTL %" PRId64 " ms out of range", ttl_ms);
    return rc;
}

//  The checks of s_check_key and s_check_save, without a message.
static int s_key_ok(const char *key)
{
    size_t len = strlen(key);
    return len > 0 && len <= ZC_CACHE_KEY_MAX;
}

static int s_save_ok(const zc_cache_entry_t *entry)
{
    return s_key_ok(entry->key) && zc_cache_msgpack_valid(entry->value, entry->size) &&
           entry->ttl_ms >= 0 && entry->ttl_ms <= S_TTL_MAX;
}

static int s_check_load_opts(zc_cache_t *self, const zc_cache_load_opts_t *opts)
{
    if (opts && (opts->slide_ms < 0 || opts->slide_ms > S_TTL_MAX || opts->wait_ms < 0))
        return s_fail(self, ZC_CACHE_INVALID, "load options out of range");
    return ZC_CACHE_OK;
}

//  Copies a loaded value into the entry, if it is msgpack.
static int s_take_value(zc_cache_t *self, const redisReply *value, zc_cache_entry_t *entry)
{
    if (!value || value->type != REDIS_REPLY_STRING)
        return s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to load");
    if (!zc_cache_msgpack_valid(value->str, value->len))
        return s_fail(self, ZC_CACHE_CORRUPT, "key '%.100s' holds bytes that are not msgpack",
                      entry->key);
    entry->value = s_copy(value->str, value->len);
    entry->size = value->len;
    return ZC_CACHE_OK;
}

//  Arguments for a command over n keys: at v[first..first+n) the keys'
//  value names, at v[first+n..first+2n) their lock names, then room for
//  extra arguments.
typedef struct {
    const char **v;
    size_t *l;
    char *names;
} s_args_t;

static void s_args_new(zc_cache_t *self, s_args_t *args, zc_cache_entry_t *const *batch, size_t n,
                       size_t first, size_t extra)
{
    size_t prefix = strlen(self->prefix), total = 0;
    for (size_t i = 0; i < n; i++)
        total += 2 * (prefix + 7 + strlen(batch[i]->key));
    args->v = (const char **)malloc((first + 2 * n + extra) * sizeof *args->v);
    args->l = (size_t *)malloc((first + 2 * n + extra) * sizeof *args->l);
    args->names = (char *)malloc(total + 1);
    assert(args->v && args->l && args->names);
    char *p = args->names;
    for (size_t i = 0; i < n; i++)
        for (size_t lock = 0; lock < 2; lock++) {
            int len = sprintf(p, "%s%s:%s", self->prefix, lock ? "lock" : "cache", batch[i]->key);
            args->v[first + lock * n + i] = p;
            args->l[first + lock * n + i] = (size_t)len;
            p += len + 1;
        }
}

static void s_args_destroy(s_args_t *args)
{
    free(args->v);
    free(args->l);
    free(args->names);
}

//  Checks the reply to a whole window; OK if it is an array of n answers.
static int s_check_window(zc_cache_t *self, redisReply *reply, size_t n, const char *key,
                          const char *op)
{
    int rc = !reply && !self->redis ? ZC_CACHE_REDIS : s_check_reply(self, reply, key, op);
    if (!rc && (reply->type != REDIS_REPLY_ARRAY || reply->elements != n))
        rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to %s", op);
    return rc;
}

//  Saves entries [0, count) (count <= S_WINDOW) in one script call, and
//  sets each entry's rc in order (so errstr tells of the first failure).
static void s_save_window(zc_cache_t *self, zc_cache_entry_t *entries, size_t count)
{
    zc_cache_entry_t *batch[S_WINDOW];
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (s_save_ok(&entries[i])) batch[n++] = &entries[i];
    redisReply *reply = NULL;
    int rc = ZC_CACHE_OK;
    if (n) {
        s_args_t args;
        s_args_new(self, &args, batch, n, 0, 1 + 2 * n);
        char *ttls = (char *)malloc(n * 24);
        assert(ttls);
        size_t a = 2 * n;
        args.v[a] = self->owner;
        args.l[a++] = strlen(self->owner);
        for (size_t i = 0; i < n; i++) {
            args.v[a] = (const char *)batch[i]->value;
            args.l[a++] = batch[i]->size;
            args.v[a] = s_itoa(ttls + 24 * i, batch[i]->ttl_ms);
            args.l[a] = strlen(args.v[a]);
            a++;
        }
        reply = s_script(self, S_SAVE, (int)(2 * n), (int)a, args.v, args.l);
        rc = s_check_window(self, reply, n, batch[0]->key, "save");
        s_args_destroy(&args);
        free(ttls);
    }
    for (size_t i = 0, j = 0; i < count; i++) {
        zc_cache_entry_t *entry = &entries[i];
        if (j < n && batch[j] == entry) {
            entry->rc = rc ? rc : s_entry_status(self, reply->element[j], entry->key, "save");
            j++;
        } else
            entry->rc = s_check_save(self, entry->key, entry->value, entry->size, entry->ttl_ms);
        if (entry->rc) self->hold_errstr = 1;
    }
    if (reply) freeReplyObject(reply);
}

//  Loads entries [0, count) (count <= S_WINDOW). Without sliding, one MGET
//  reads every key's lock and value at the same instant; keys it finds no
//  value for (missing, or another type) and sliding loads go through the
//  load script. Sets each entry's rc in order.
static void s_load_window(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                          int64_t slide_ms)
{
    zc_cache_entry_t *batch[S_WINDOW], *pending[S_WINDOW];
    const redisReply *found[S_WINDOW], *lock[S_WINDOW], *status[S_WINDOW];
    size_t n = 0, need = 0;
    for (size_t i = 0; i < count; i++) {
        entries[i].value = NULL;
        entries[i].size = 0;
        found[i] = lock[i] = status[i] = NULL;
        if (s_key_ok(entries[i].key)) batch[n++] = &entries[i];
    }
    redisReply *mget = NULL, *script = NULL;
    int rc = ZC_CACHE_OK;
    s_args_t args;
    if (n && slide_ms == 0) {
        s_args_new(self, &args, batch, n, 1, 0);
        args.v[0] = "MGET";
        args.l[0] = 4;
        mget = s_command(self, (int)(1 + 2 * n), args.v, args.l);
        rc = s_check_window(self, mget, 2 * n, batch[0]->key, "load");
        s_args_destroy(&args);
        for (size_t j = 0; !rc && j < n; j++) {
            size_t i = (size_t)(batch[j] - entries);
            found[i] = mget->element[j];
            lock[i] = mget->element[n + j];
            int locked = lock[i]->type == REDIS_REPLY_STRING && strcmp(lock[i]->str, self->owner);
            if (found[i]->type == REDIS_REPLY_NIL && !locked) pending[need++] = batch[j];
        }
    } else if (n) {
        memcpy(pending, batch, n * sizeof *batch);
        need = n;
    }
    if (!rc && need) {
        char slide[24];
        s_args_new(self, &args, pending, need, 0, 2);
        args.v[2 * need] = self->owner;
        args.l[2 * need] = strlen(self->owner);
        args.v[2 * need + 1] = s_itoa(slide, slide_ms);
        args.l[2 * need + 1] = strlen(slide);
        script = s_script(self, S_LOAD, (int)(2 * need), (int)(2 * need + 2), args.v, args.l);
        rc = s_check_window(self, script, need, pending[0]->key, "load");
        s_args_destroy(&args);
        for (size_t j = 0; !rc && j < need; j++)
            status[pending[j] - entries] = script->element[j];
    }
    for (size_t i = 0; i < count; i++) {
        zc_cache_entry_t *entry = &entries[i];
        if (!s_key_ok(entry->key))
            entry->rc = s_check_key(self, entry->key);
        else if (rc)
            entry->rc = rc;
        else if (status[i]) {
            entry->rc = s_entry_status(self, status[i], entry->key, "load");
            if (!entry->rc)
                entry->rc = s_take_value(
                    self, status[i]->elements > 1 ? status[i]->element[1] : NULL, entry);
        } else if (lock[i]->type == REDIS_REPLY_STRING && strcmp(lock[i]->str, self->owner))
            entry->rc = s_fail(self, ZC_CACHE_LOCKED, "key '%.100s' is locked by node '%.255s'",
                               entry->key, lock[i]->str);
        else
            entry->rc = s_take_value(self, found[i], entry);
        if (entry->rc) self->hold_errstr = 1;
    }
    if (mget) freeReplyObject(mget);
    if (script) freeReplyObject(script);
}

//  Runs a window function over all entries; returns OK or the first failure.
static int s_batch(zc_cache_t *self, zc_cache_entry_t *entries, size_t count, int64_t slide_ms,
                   int load)
{
    self->hold_errstr = 0;
    int first = ZC_CACHE_OK;
    for (size_t start = 0; start < count; start += S_WINDOW) {
        size_t n = count - start < S_WINDOW ? count - start : S_WINDOW;
        if (load)
            s_load_window(self, entries + start, n, slide_ms);
        else
            s_save_window(self, entries + start, n);
        for (size_t i = start; i < start + n && !first; i++)
            first = entries[i].rc;
    }
    self->hold_errstr = 0;
    return first;
}

int zc_cache_save(zc_cache_t *self, const char *key, const void *value, size_t size, int64_t ttl_ms)
{
    assert(self);
    assert(key);
    zc_cache_entry_t entry = {key, (void *)value, size, ttl_ms, 0};
    return s_batch(self, &entry, 1, 0, 0);
}

int zc_cache_save_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count)
{
    assert(self);
    assert(entries || count == 0);
    for (size_t i = 0; i < count; i++)
        assert(entries[i].key);
    return s_batch(self, entries, count, 0, 0);
}

int zc_cache_load(zc_cache_t *self, const char *key, const zc_cache_load_opts_t *opts,
                  void **value_p, size_t *size_p)
{
    assert(self);
    assert(key);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    int rc = s_check_load_opts(self, opts);
    if (rc) return rc;
    int64_t slide_ms = opts ? opts->slide_ms : 0;
    int64_t wait_ms = opts ? opts->wait_ms : 0;
    int64_t deadline = zclock_mono() + wait_ms;
    int64_t pause = 2;
    zc_cache_entry_t entry = {key, NULL, 0, 0, 0};
    //  A lock is waited out by polling: a lock lasts milliseconds to seconds,
    //  and polling needs nothing of Redis (no keyspace notifications).
    while ((rc = s_batch(self, &entry, 1, slide_ms, 1)) == ZC_CACHE_LOCKED) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) break;
        s_sleep_ms(pause < left ? pause : left);
        pause = pause * 2 > 50 ? 50 : pause * 2;
    }
    if (rc == ZC_CACHE_LOCKED && wait_ms > 0) {
        size_t len = strlen(self->errstr);
        snprintf(self->errstr + len, sizeof self->errstr - len, " (waited %" PRId64 " ms)",
                 wait_ms);
    }
    *value_p = entry.value;
    *size_p = entry.size;
    return rc;
}

int zc_cache_load_many(zc_cache_t *self, zc_cache_entry_t *entries, size_t count,
                       const zc_cache_load_opts_t *opts)
{
    assert(self);
    assert(entries || count == 0);
    for (size_t i = 0; i < count; i++)
        assert(entries[i].key);
    if (s_check_load_opts(self, opts)) {
        for (size_t i = 0; i < count; i++) {
            entries[i].value = NULL;
            entries[i].size = 0;
            entries[i].rc = ZC_CACHE_INVALID;
        }
        return ZC_CACHE_INVALID;
    }
    int rc = s_batch(self, entries, count, opts ? opts->slide_ms : 0, 1);
    //  Keys locked by another node are waited for one by one, as zc_cache_load does.
    if (rc && opts && opts->wait_ms > 0) {
        rc = ZC_CACHE_OK;
        for (size_t i = 0; i < count; i++) {
            if (entries[i].rc == ZC_CACHE_LOCKED)
                entries[i].rc =
                    zc_cache_load(self, entries[i].key, opts, &entries[i].value, &entries[i].size);
            if (entries[i].rc && !rc) rc = entries[i].rc;
        }
    }
    return rc;
}

int zc_cache_destroy_key(zc_cache_t *self, const char *key)
{
    assert(self);
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[3] = {s_name(self, self->value_name, "cache", key),
                        s_name(self, self->lock_name, "lock", key), self->owner};
    size_t l[3] = {strlen(v[0]), strlen(v[1]), strlen(v[2])};
    return s_run(self, S_DESTROY, 2, 3, v, l, key, "destroy", NULL);
}

int zc_cache_ttl(zc_cache_t *self, const char *key, int64_t *ttl_ms_p)
{
    assert(self);
    assert(ttl_ms_p);
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[2] = {"PTTL", s_name(self, self->value_name, "cache", key)};
    size_t l[2] = {4, strlen(v[1])};
    redisReply *reply = s_command(self, 2, v, l);
    if (!reply && !self->redis) return ZC_CACHE_REDIS;
    rc = s_check_reply(self, reply, key, "ttl");
    if (!rc && reply->type != REDIS_REPLY_INTEGER)
        rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to PTTL");
    if (!rc && reply->integer == -2)
        rc = s_fail(self, ZC_CACHE_MISSING, "key '%.100s' does not exist", key);
    if (!rc) *ttl_ms_p = reply->integer < 0 ? -1 : reply->integer;
    if (reply) freeReplyObject(reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  Lists

int zc_cache_push(zc_cache_t *self, const char *key, const void *value, size_t size)
{
    assert(self);
    int rc = s_check_key(self, key);
    if (!rc) rc = s_check_value(self, key, value, size);
    if (rc) return rc;
    const char *v[3] = {"RPUSH", s_name(self, self->value_name, "cache", key), (const char *)value};
    size_t l[3] = {5, strlen(v[1]), size};
    redisReply *reply = s_command(self, 3, v, l);
    if (!reply && !self->redis) return ZC_CACHE_REDIS;
    rc = s_check_reply(self, reply, key, "push");
    if (reply) freeReplyObject(reply);
    return rc;
}

//  Takes a popped item (a bulk string, or nil) out of reply.
static int s_take_item(zc_cache_t *self, const redisReply *item, const char *key, int nil_rc,
                       void **value_p, size_t *size_p)
{
    if (item->type == REDIS_REPLY_NIL)
        return nil_rc == ZC_CACHE_TIMEOUT
                   ? s_fail(self, nil_rc, "no item came to list '%.100s' in time", key)
                   : s_fail(self, nil_rc, "list '%.100s' is empty or does not exist", key);
    if (item->type != REDIS_REPLY_STRING)
        return s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to pop");
    if (!zc_cache_msgpack_valid(item->str, item->len))
        return s_fail(self, ZC_CACHE_CORRUPT,
                      "list '%.100s' held an item that is not msgpack (it was removed)", key);
    *value_p = s_copy(item->str, item->len);
    *size_p = item->len;
    return ZC_CACHE_OK;
}

int zc_cache_pop(zc_cache_t *self, const char *key, void **value_p, size_t *size_p)
{
    assert(self);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[2] = {"LPOP", s_name(self, self->value_name, "cache", key)};
    size_t l[2] = {4, strlen(v[1])};
    redisReply *reply = s_command(self, 2, v, l);
    if (!reply && !self->redis) return ZC_CACHE_REDIS;
    rc = s_check_reply(self, reply, key, "pop");
    if (!rc) rc = s_take_item(self, reply, key, ZC_CACHE_MISSING, value_p, size_p);
    if (reply) freeReplyObject(reply);
    return rc;
}

int zc_cache_pop_wait(zc_cache_t *self, const char *key, int64_t timeout_ms, void **value_p,
                      size_t *size_p)
{
    assert(self);
    assert(value_p && size_p);
    *value_p = NULL;
    *size_p = 0;
    int rc = s_check_key(self, key);
    if (rc) return rc;
    if (timeout_ms <= 0 || timeout_ms > INT32_MAX)
        return s_fail(self, ZC_CACHE_INVALID, "pop timeout %" PRId64 " ms out of range",
                      timeout_ms);
    if (!self->blocking) {
        char err[300];
        self->blocking = zc_redis_connect(&self->url, S_TIMEOUT_MS, err, sizeof err);
        if (!self->blocking) return s_fail(self, ZC_CACHE_REDIS, "%s", err);
    }
    //  hiredis's timeout bounds every command: keep it past BLPOP's own.
    int64_t limit = timeout_ms + S_TIMEOUT_MS;
    struct timeval tv = {(time_t)(limit / 1000), (suseconds_t)(limit % 1000) * 1000};
    redisSetTimeout(self->blocking, tv);
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%" PRId64 ".%03d", timeout_ms / 1000,
             (int)(timeout_ms % 1000));
    const char *name = s_name(self, self->value_name, "cache", key);
    const char *v[3] = {"BLPOP", name, seconds};
    size_t l[3] = {5, strlen(name), strlen(seconds)};
    redisReply *reply = (redisReply *)redisCommandArgv(self->blocking, 3, v, l);
    if (!reply) return s_connection_failed(self, &self->blocking);
    if (reply->type == REDIS_REPLY_ERROR)
        rc = strstr(reply->str, "WRONGTYPE")
                 ? s_fail(self, ZC_CACHE_TYPE, "key '%.100s' holds a value, not a list", key)
                 : s_fail(self, ZC_CACHE_REDIS, "Redis refused pop of '%.100s': %s", key,
                          reply->str);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        rc = s_take_item(self, reply->element[1], key, ZC_CACHE_TIMEOUT, value_p, size_p);
    else
        rc = s_take_item(self, reply, key, ZC_CACHE_TIMEOUT, value_p, size_p);
    freeReplyObject(reply);
    return rc;
}

int zc_cache_length(zc_cache_t *self, const char *key, size_t *length_p)
{
    assert(self);
    assert(length_p);
    *length_p = 0;
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[2] = {"LLEN", s_name(self, self->value_name, "cache", key)};
    size_t l[2] = {4, strlen(v[1])};
    redisReply *reply = s_command(self, 2, v, l);
    if (!reply && !self->redis) return ZC_CACHE_REDIS;
    rc = s_check_reply(self, reply, key, "length");
    if (!rc && reply->type != REDIS_REPLY_INTEGER)
        rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to LLEN");
    if (!rc) *length_p = (size_t)reply->integer;
    if (reply) freeReplyObject(reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  Locks

int zc_cache_lock(zc_cache_t *self, const char *key, int64_t ttl_ms)
{
    assert(self);
    int rc = s_check_key(self, key);
    if (rc) return rc;
    if (ttl_ms <= 0 || ttl_ms > S_TTL_MAX)
        return s_fail(self, ZC_CACHE_INVALID, "lock TTL %" PRId64 " ms out of range", ttl_ms);
    char ttl[24];
    const char *v[3] = {s_name(self, self->lock_name, "lock", key), self->owner,
                        s_itoa(ttl, ttl_ms)};
    size_t l[3] = {strlen(v[0]), strlen(v[1]), strlen(v[2])};
    return s_run(self, S_LOCK, 1, 3, v, l, key, "lock", NULL);
}

int zc_cache_unlock(zc_cache_t *self, const char *key)
{
    assert(self);
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[2] = {s_name(self, self->lock_name, "lock", key), self->owner};
    size_t l[2] = {strlen(v[0]), strlen(v[1])};
    rc = s_run(self, S_UNLOCK, 1, 2, v, l, key, "unlock", NULL);
    if (rc == ZC_CACHE_MISSING)
        s_fail(self, rc, "key '%.100s' is not locked (did the lock expire?)", key);
    return rc;
}

int zc_cache_locked(zc_cache_t *self, const char *key, char **owner_p)
{
    assert(self);
    assert(owner_p);
    *owner_p = NULL;
    int rc = s_check_key(self, key);
    if (rc) return rc;
    const char *v[2] = {"GET", s_name(self, self->lock_name, "lock", key)};
    size_t l[2] = {3, strlen(v[1])};
    redisReply *reply = s_command(self, 2, v, l);
    if (!reply && !self->redis) return ZC_CACHE_REDIS;
    rc = s_check_reply(self, reply, key, "locked");
    if (!rc && reply->type == REDIS_REPLY_STRING)
        *owner_p = strdup(reply->str);
    else if (!rc && reply->type != REDIS_REPLY_NIL)
        rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to GET");
    if (reply) freeReplyObject(reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  Walking the cache with SCAN

//  The length of the prefix every cache name starts with ("zc:{C}:cache:").
static size_t s_cache_prefix_len(zc_cache_t *self)
{
    return strlen(self->prefix) + 6;
}

//  Called with each batch of full Redis names SCAN returned, deduplicated.
typedef int(s_batch_fn)(zc_cache_t *self, const redisReply **names, size_t count, void *arg);

//  SCANs the names under the cache prefix that match pattern (a glob over
//  the key; NULL for all) and hands them to fn batch by batch. Names with a
//  NUL byte (not ours: keys are C strings) are skipped.
static int s_walk(zc_cache_t *self, const char *pattern, s_batch_fn *fn, void *arg)
{
    char match[sizeof self->match + ZC_CACHE_KEY_MAX + 1];
    snprintf(match, sizeof match, "%s%s", self->match, pattern ? pattern : "*");
    zhash_t *seen = zhash_new();
    char cursor[32] = "0";
    int rc = ZC_CACHE_OK;
    do {
        const char *v[6] = {"SCAN", cursor, "MATCH", match, "COUNT", S_SCAN_COUNT};
        size_t l[6];
        for (int i = 0; i < 6; i++)
            l[i] = strlen(v[i]);
        redisReply *reply = s_command(self, 6, v, l);
        if (!reply && !self->redis) {
            rc = ZC_CACHE_REDIS;
            break;
        }
        rc = s_check_reply(self, reply, "*", "scan");
        if (!rc && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
                    reply->element[0]->type != REDIS_REPLY_STRING ||
                    reply->element[1]->type != REDIS_REPLY_ARRAY))
            rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to SCAN");
        if (!rc) {
            snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
            const redisReply *batch = reply->element[1];
            const redisReply **names =
                (const redisReply **)malloc((batch->elements + 1) * sizeof *names);
            assert(names);
            size_t count = 0;
            for (size_t i = 0; i < batch->elements; i++) {
                const redisReply *name = batch->element[i];
                //  Not cache keys: names with a NUL, and keys empty or too long.
                if (name->type != REDIS_REPLY_STRING || strlen(name->str) != name->len ||
                    name->len <= s_cache_prefix_len(self) ||
                    name->len - s_cache_prefix_len(self) > ZC_CACHE_KEY_MAX)
                    continue;
                if (zhash_insert(seen, name->str, (void *)1) == 0) names[count++] = name;
            }
            if (count) rc = fn(self, names, count, arg);
            free(names);
        }
        if (reply) freeReplyObject(reply);
    } while (!rc && strcmp(cursor, "0") != 0);
    zhash_destroy(&seen);
    return rc;
}

typedef struct {
    char **keys;
    size_t count, alloc;
} s_key_list_t;

static int s_collect_keys(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    s_key_list_t *list = (s_key_list_t *)arg;
    size_t skip = s_cache_prefix_len(self);
    for (size_t i = 0; i < count; i++) {
        if (list->count + 1 >= list->alloc) {
            list->alloc = list->alloc ? list->alloc * 2 : 64;
            list->keys = (char **)realloc(list->keys, list->alloc * sizeof(char *));
            assert(list->keys);
        }
        list->keys[list->count++] = strdup(names[i]->str + skip);
        list->keys[list->count] = NULL;
    }
    return ZC_CACHE_OK;
}

int zc_cache_keys(zc_cache_t *self, const char *pattern, char ***keys_p, size_t *count_p)
{
    assert(self);
    assert(keys_p);
    *keys_p = NULL;
    if (count_p) *count_p = 0;
    if (pattern && strlen(pattern) > ZC_CACHE_KEY_MAX)
        return s_fail(self, ZC_CACHE_INVALID, "pattern longer than %d bytes", ZC_CACHE_KEY_MAX);
    s_key_list_t list = {NULL, 0, 0};
    int rc = s_walk(self, pattern, s_collect_keys, &list);
    if (!list.keys) {
        list.keys = (char **)calloc(1, sizeof(char *));
        assert(list.keys);
    }
    if (rc) {
        zc_cache_keys_free(&list.keys);
        return rc;
    }
    *keys_p = list.keys;
    if (count_p) *count_p = list.count;
    return ZC_CACHE_OK;
}

void zc_cache_keys_free(char ***keys_p)
{
    assert(keys_p);
    char **keys = *keys_p;
    if (!keys) return;
    for (char **k = keys; *k; k++)
        free(*k);
    free(keys);
    *keys_p = NULL;
}

static int s_count_keys(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    *(size_t *)arg += count;
    return ZC_CACHE_OK;
}

int zc_cache_size(zc_cache_t *self, size_t *count_p)
{
    assert(self);
    assert(count_p);
    *count_p = 0;
    return s_walk(self, NULL, s_count_keys, count_p);
}

typedef struct {
    size_t removed, kept;
} s_clear_t;

static int s_clear_batch(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    s_clear_t *totals = (s_clear_t *)arg;
    size_t skip = s_cache_prefix_len(self);
    int argc = (int)(2 * count + 1);
    const char **v = (const char **)malloc((size_t)argc * sizeof *v);
    size_t *l = (size_t *)malloc((size_t)argc * sizeof *l);
    char *locks = (char *)malloc(count * S_NAME_MAX);
    assert(v && l && locks);
    for (size_t i = 0; i < count; i++) {
        char *lock = locks + i * S_NAME_MAX;
        s_name(self, lock, "lock", names[i]->str + skip);
        v[i] = names[i]->str;
        l[i] = names[i]->len;
        v[count + i] = lock;
        l[count + i] = strlen(lock);
    }
    v[2 * count] = self->owner;
    l[2 * count] = strlen(self->owner);
    redisReply *reply = NULL;
    int rc = s_run(self, S_CLEAR, (int)(2 * count), argc, v, l, "*", "clear", &reply);
    if (!rc && reply->elements == 3 && reply->element[1]->type == REDIS_REPLY_INTEGER &&
        reply->element[2]->type == REDIS_REPLY_INTEGER) {
        totals->removed += (size_t)reply->element[1]->integer;
        totals->kept += (size_t)reply->element[2]->integer;
    }
    if (reply) freeReplyObject(reply);
    free(v);
    free(l);
    free(locks);
    return rc;
}

int zc_cache_clear(zc_cache_t *self, size_t *removed_p)
{
    assert(self);
    s_clear_t totals = {0, 0};
    int rc = s_walk(self, NULL, s_clear_batch, &totals);
    if (removed_p) *removed_p = totals.removed;
    if (!rc && totals.kept)
        rc = s_fail(self, ZC_CACHE_LOCKED, "%zu keys locked by other nodes were kept", totals.kept);
    return rc;
}

//  --------------------------------------------------------------------------
//  Dump

typedef struct {
    msgpack_sbuffer body;
    msgpack_packer packer;
    size_t count;
} s_dump_t;

//  Appends one dumped key's record; entry is the script's {type, pttl, data}.
static int s_dump_record(zc_cache_t *self, s_dump_t *dump, const char *key, const redisReply *entry)
{
    const char *type = entry->elements >= 1 && entry->element[0]->type == REDIS_REPLY_STRING
                           ? entry->element[0]->str
                           : "?";
    if (strcmp(type, "none") == 0) return ZC_CACHE_OK; //  expired or removed since SCAN saw it
    if (strcmp(type, "string") != 0 && strcmp(type, "list") != 0)
        return s_fail(self, ZC_CACHE_TYPE,
                      "key '%.100s' holds a %.20s; only values and lists can be dumped", key, type);
    if (entry->elements != 3 || entry->element[1]->type != REDIS_REPLY_INTEGER)
        return s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to dump");
    int is_list = strcmp(type, "list") == 0;
    const redisReply *data = entry->element[2];
    const redisReply *const *items = is_list ? (const redisReply *const *)data->element : &data;
    size_t n = is_list ? data->elements : 1;
    if ((is_list && data->type != REDIS_REPLY_ARRAY) ||
        (!is_list && data->type != REDIS_REPLY_STRING))
        return s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to dump");
    if (n == 0) return ZC_CACHE_OK;
    for (size_t i = 0; i < n; i++)
        if (items[i]->type != REDIS_REPLY_STRING ||
            !zc_cache_msgpack_valid(items[i]->str, items[i]->len))
            return s_fail(self, ZC_CACHE_CORRUPT,
                          "key '%.100s' holds bytes that are not msgpack; nothing was dumped", key);
    int64_t ttl = entry->element[1]->integer;
    ttl = ttl < 0 ? -1 : ttl == 0 ? 1 : ttl;
    msgpack_packer *pk = &dump->packer;
    size_t key_len = strlen(key);
    msgpack_pack_array(pk, 4);
    msgpack_pack_str(pk, key_len);
    msgpack_pack_str_body(pk, key, key_len);
    msgpack_pack_str(pk, is_list ? 4 : 5);
    msgpack_pack_str_body(pk, is_list ? "list" : "value", is_list ? 4 : 5);
    msgpack_pack_int64(pk, ttl);
    if (is_list) msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_write(&dump->body, items[i]->str, items[i]->len);
    dump->count++;
    return ZC_CACHE_OK;
}

static int s_dump_batch(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    s_dump_t *dump = (s_dump_t *)arg;
    const char **v = (const char **)malloc(count * sizeof *v);
    size_t *l = (size_t *)malloc(count * sizeof *l);
    assert(v && l);
    for (size_t i = 0; i < count; i++) {
        v[i] = names[i]->str;
        l[i] = names[i]->len;
    }
    int rc = ZC_CACHE_OK;
    redisReply *reply = s_script(self, S_DUMP, (int)count, (int)count, v, l);
    if (!reply && !self->redis)
        rc = ZC_CACHE_REDIS;
    else
        rc = s_check_reply(self, reply, "*", "dump");
    if (!rc && (reply->type != REDIS_REPLY_ARRAY || reply->elements != count))
        rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to dump");
    size_t skip = s_cache_prefix_len(self);
    for (size_t i = 0; !rc && i < count; i++) {
        if (reply->element[i]->type != REDIS_REPLY_ARRAY)
            rc = s_fail(self, ZC_CACHE_REDIS, "unexpected reply from Redis to dump");
        else
            rc = s_dump_record(self, dump, names[i]->str + skip, reply->element[i]);
    }
    if (reply) freeReplyObject(reply);
    free(v);
    free(l);
    return rc;
}

//  Writes header, body and trailer to path through a temporary file.
static int s_dump_write(zc_cache_t *self, const char *path, s_dump_t *dump)
{
    char header[S_DUMP_HEADER_MAX];
    int header_len = snprintf(header, sizeof header, "%s %d %zu %" PRId64 "\n", S_DUMP_MAGIC,
                              S_DUMP_VERSION, dump->count, zclock_time());
    uint32_t crc = s_crc32(0, (const uint8_t *)header, (size_t)header_len);
    crc = s_crc32(crc, (const uint8_t *)dump->body.data, dump->body.size);
    char trailer[S_DUMP_TRAILER + 1];
    snprintf(trailer, sizeof trailer, "crc32 %08x\n", crc);

    char *tmp = (char *)malloc(strlen(path) + 32);
    assert(tmp);
    sprintf(tmp, "%s.tmp.%d", path, (int)getpid());
    int rc = ZC_CACHE_OK;
    FILE *file = fopen(tmp, "wb");
    if (!file)
        rc = s_fail(self, ZC_CACHE_IO, "cannot create %.200s: %s", tmp, strerror(errno));
    else {
        int ok = fwrite(header, 1, (size_t)header_len, file) == (size_t)header_len &&
                 (dump->body.size == 0 ||
                  fwrite(dump->body.data, 1, dump->body.size, file) == dump->body.size) &&
                 fwrite(trailer, 1, S_DUMP_TRAILER, file) == S_DUMP_TRAILER && fflush(file) == 0 &&
                 fsync(fileno(file)) == 0;
        int saved = errno;
        if (fclose(file) != 0 && ok) {
            ok = 0;
            saved = errno;
        }
        if (ok && rename(tmp, path) != 0) {
            ok = 0;
            saved = errno;
        }
        if (!ok) {
            unlink(tmp);
            rc = s_fail(self, ZC_CACHE_IO, "cannot write %.200s: %s", path, strerror(saved));
        }
    }
    free(tmp);
    return rc;
}

int zc_cache_dump(zc_cache_t *self, const char *path, size_t *count_p)
{
    assert(self);
    assert(path);
    if (count_p) *count_p = 0;
    s_dump_t dump;
    memset(&dump, 0, sizeof dump);
    msgpack_sbuffer_init(&dump.body);
    msgpack_packer_init(&dump.packer, &dump.body, msgpack_sbuffer_write);
    self->errstr[0] = 0;
    int rc = s_walk(self, NULL, s_dump_batch, &dump);
    if (!rc) rc = s_dump_write(self, path, &dump);
    if (!rc && count_p) *count_p = dump.count;
    msgpack_sbuffer_destroy(&dump.body);
    return rc;
}

//  --------------------------------------------------------------------------
//  Restore: read and check the whole file, then write it in one script

//  A cursor over untrusted msgpack bytes.
typedef struct {
    const uint8_t *p;
    size_t left;
} s_reader_t;

//  Reads an array header; returns 0 or -1.
static int s_read_array(s_reader_t *r, uint64_t *n)
{
    if (r->left < 1) return -1;
    uint8_t b = r->p[0];
    size_t width = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if ((b & 0xf0) == 0x90)
        *n = b & 0x0f;
    else if (!width || r->left < 1 + width)
        return -1;
    else
        *n = s_be(r->p + 1, width);
    r->p += 1 + width;
    r->left -= 1 + width;
    return 0;
}

//  Reads a str; returns 0 or -1.
static int s_read_str(s_reader_t *r, const char **s, size_t *len)
{
    if (r->left < 1) return -1;
    uint8_t b = r->p[0];
    size_t width = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
    uint64_t n;
    if ((b & 0xe0) == 0xa0)
        n = b & 0x1f;
    else if (!width || r->left < 1 + width)
        return -1;
    else
        n = s_be(r->p + 1, width);
    if (n > r->left - 1 - width) return -1;
    *s = (const char *)r->p + 1 + width;
    *len = (size_t)n;
    r->p += 1 + width + n;
    r->left -= 1 + width + n;
    return 0;
}

//  Reads an integer that fits int64; returns 0 or -1.
static int s_read_int(s_reader_t *r, int64_t *value)
{
    if (r->left < 1) return -1;
    uint8_t b = r->p[0];
    if (b <= 0x7f || b >= 0xe0) {
        *value = (int8_t)b;
        r->p++;
        r->left--;
        return 0;
    }
    size_t width = b == 0xcc || b == 0xd0   ? 1
                   : b == 0xcd || b == 0xd1 ? 2
                   : b == 0xce || b == 0xd2 ? 4
                   : b == 0xcf || b == 0xd3 ? 8
                                            : 0;
    if (!width || r->left < 1 + width) return -1;
    uint64_t u = s_be(r->p + 1, width);
    if (b >= 0xd0) { //  signed: sign-extend
        if (width < 8 && (u >> (8 * width - 1))) u |= ~(uint64_t)0 << (8 * width);
        *value = (int64_t)u;
    } else if (u > INT64_MAX)
        return -1;
    else
        *value = (int64_t)u;
    r->p += 1 + width;
    r->left -= 1 + width;
    return 0;
}

//  Reads one msgpack object as raw bytes; returns 0 or -1.
static int s_read_object(s_reader_t *r, const uint8_t **data, size_t *size)
{
    size_t n = s_msgpack_object_size(r->p, r->left);
    if (!n) return -1;
    *data = r->p;
    *size = n;
    r->p += n;
    r->left -= n;
    return 0;
}

typedef struct {
    char *key; //  NUL-terminated copy
    int is_list;
    int64_t ttl;
    size_t first; //  index of the first item in the item arrays
    size_t count; //  items (1 for a value)
} s_record_t;

typedef struct {
    uint8_t *file;
    size_t size;
    s_record_t *records;
    size_t record_count;
    const uint8_t **items;
    size_t *item_sizes;
    size_t item_count;
} s_restore_t;

static void s_restore_free(s_restore_t *r)
{
    for (size_t i = 0; i < r->record_count; i++)
        free(r->records[i].key);
    free(r->records);
    free(r->items);
    free(r->item_sizes);
    free(r->file);
}

static int s_read_file(zc_cache_t *self, const char *path, s_restore_t *restore)
{
    FILE *file = fopen(path, "rb");
    if (!file) return s_fail(self, ZC_CACHE_IO, "cannot open %.200s: %s", path, strerror(errno));
    struct stat st;
    int rc = ZC_CACHE_OK;
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode))
        rc = s_fail(self, ZC_CACHE_IO, "%.200s is not a regular file", path);
    else {
        restore->size = (size_t)st.st_size;
        restore->file = (uint8_t *)malloc(restore->size + 1);
        assert(restore->file);
        if (fread(restore->file, 1, restore->size, file) != restore->size)
            rc = s_fail(self, ZC_CACHE_IO, "cannot read %.200s: %s", path,
                        ferror(file) ? strerror(errno) : "file shrank while read");
    }
    fclose(file);
    return rc;
}

//  Parses the header line; sets *count and *body_start. Returns 0 or CORRUPT.
static int s_parse_header(zc_cache_t *self, const s_restore_t *restore, uint64_t *count,
                          size_t *body_start)
{
    const char *text = (const char *)restore->file;
    size_t magic_len = strlen(S_DUMP_MAGIC);
    if (restore->size < magic_len + 1 || memcmp(text, S_DUMP_MAGIC " ", magic_len + 1) != 0)
        return s_fail(self, ZC_CACHE_CORRUPT, "not a zcluster cache dump (bad magic)");
    const char *eol = (const char *)memchr(
        text, '\n', restore->size < S_DUMP_HEADER_MAX ? restore->size : S_DUMP_HEADER_MAX);
    if (!eol) return s_fail(self, ZC_CACHE_CORRUPT, "dump header line is truncated or too long");
    uint64_t fields[3];
    const char *p = text + magic_len + 1;
    for (int i = 0; i < 3; i++) {
        if (p >= eol || *p < '0' || *p > '9')
            return s_fail(self, ZC_CACHE_CORRUPT, "dump header is malformed");
        fields[i] = 0;
        for (; p < eol && *p >= '0' && *p <= '9'; p++) {
            uint64_t digit = (uint64_t)(*p - '0');
            if (fields[i] > (UINT64_MAX - digit) / 10)
                return s_fail(self, ZC_CACHE_CORRUPT, "dump header is malformed");
            fields[i] = fields[i] * 10 + digit;
        }
        if (i == 0 && fields[0] != S_DUMP_VERSION)
            return s_fail(self, ZC_CACHE_CORRUPT,
                          "unsupported dump version %" PRIu64 " (this build reads version %d)",
                          fields[0], S_DUMP_VERSION);
        //  Fields are separated by one space; the last one ends the line.
        if (i < 2 ? *p++ != ' ' : p != eol)
            return s_fail(self, ZC_CACHE_CORRUPT, "dump header is malformed");
    }
    *count = fields[1];
    *body_start = (size_t)(eol - text) + 1;
    return ZC_CACHE_OK;
}

//  Checks the trailer's CRC-32 over everything before it.
static int s_check_trailer(zc_cache_t *self, const s_restore_t *restore, size_t body_start)
{
    if (restore->size < body_start + S_DUMP_TRAILER)
        return s_fail(self, ZC_CACHE_CORRUPT, "dump has no checksum trailer (truncated?)");
    const char *trailer = (const char *)restore->file + restore->size - S_DUMP_TRAILER;
    if (memcmp(trailer, "crc32 ", 6) != 0 || trailer[S_DUMP_TRAILER - 1] != '\n')
        return s_fail(self, ZC_CACHE_CORRUPT, "dump has no checksum trailer (truncated?)");
    uint32_t stored = 0;
    for (int i = 6; i < 14; i++) {
        char c = trailer[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0) return s_fail(self, ZC_CACHE_CORRUPT, "dump checksum trailer is malformed");
        stored = (stored << 4) | (uint32_t)digit;
    }
    uint32_t actual = s_crc32(0, restore->file, restore->size - S_DUMP_TRAILER);
    if (stored != actual)
        return s_fail(self, ZC_CACHE_CORRUPT,
                      "dump checksum mismatch (file says %08x, contents give %08x)", stored,
                      actual);
    return ZC_CACHE_OK;
}

static void s_add_item(s_restore_t *restore, size_t *alloc, const uint8_t *data, size_t size)
{
    if (restore->item_count == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 64;
        restore->items = (const uint8_t **)realloc(restore->items, *alloc * sizeof(uint8_t *));
        restore->item_sizes = (size_t *)realloc(restore->item_sizes, *alloc * sizeof(size_t));
        assert(restore->items && restore->item_sizes);
    }
    restore->items[restore->item_count] = data;
    restore->item_sizes[restore->item_count++] = size;
}

//  Parses and checks count records in the body.
static int s_parse_records(zc_cache_t *self, s_restore_t *restore, uint64_t count,
                           size_t body_start)
{
    s_reader_t r = {restore->file + body_start, restore->size - S_DUMP_TRAILER - body_start};
    if (count > r.left) //  a record takes more than one byte
        return s_fail(self, ZC_CACHE_CORRUPT, "dump header counts more records than it holds");
    restore->records = (s_record_t *)calloc(count ? count : 1, sizeof(s_record_t));
    assert(restore->records);
    size_t item_alloc = 0;
    zhash_t *seen = zhash_new();
    int rc = ZC_CACHE_OK;
    for (uint64_t i = 0; i < count && !rc; i++) {
        uint64_t fields, n = 1;
        const char *key, *kind;
        size_t key_len, kind_len;
        int64_t ttl;
        if (s_read_array(&r, &fields) || fields != 4 || s_read_str(&r, &key, &key_len) ||
            s_read_str(&r, &kind, &kind_len) || s_read_int(&r, &ttl)) {
            rc = s_fail(self, ZC_CACHE_CORRUPT, "dump record %" PRIu64 " is malformed", i + 1);
            break;
        }
        s_record_t *record = &restore->records[restore->record_count++];
        record->key = (char *)malloc(key_len + 1);
        assert(record->key);
        memcpy(record->key, key, key_len);
        record->key[key_len] = 0;
        record->is_list = kind_len == 4 && memcmp(kind, "list", 4) == 0;
        record->ttl = ttl;
        record->first = restore->item_count;
        if (key_len == 0 || key_len > ZC_CACHE_KEY_MAX || strlen(record->key) != key_len)
            rc =
                s_fail(self, ZC_CACHE_CORRUPT, "dump record %" PRIu64 " has an invalid key", i + 1);
        else if (!record->is_list && !(kind_len == 5 && memcmp(kind, "value", 5) == 0))
            rc = s_fail(self, ZC_CACHE_CORRUPT, "dump record %" PRIu64 " has an unknown type",
                        i + 1);
        else if (ttl != -1 && (ttl < 1 || ttl > S_TTL_MAX))
            rc =
                s_fail(self, ZC_CACHE_CORRUPT, "dump record %" PRIu64 " has an invalid TTL", i + 1);
        else if (zhash_insert(seen, record->key, (void *)1) != 0)
            rc = s_fail(self, ZC_CACHE_CORRUPT, "dump holds key '%.100s' twice", record->key);
        else if (record->is_list && (s_read_array(&r, &n) || n == 0 || n > r.left))
            rc = s_fail(self, ZC_CACHE_CORRUPT, "dump record %" PRIu64 " has a malformed list",
                        i + 1);
        for (uint64_t j = 0; j < n && !rc; j++) {
            const uint8_t *data;
            size_t size;
            if (s_read_object(&r, &data, &size))
                rc = s_fail(self, ZC_CACHE_CORRUPT,
                            "dump record %" PRIu64 " holds a value that is not msgpack", i + 1);
            else
                s_add_item(restore, &item_alloc, data, size);
        }
        record->count = (size_t)n;
    }
    if (!rc && r.left) rc = s_fail(self, ZC_CACHE_CORRUPT, "dump has bytes after its last record");
    zhash_destroy(&seen);
    return rc;
}

//  Writes every record in one script: locks checked first, then all keys.
static int s_restore_apply(zc_cache_t *self, s_restore_t *restore)
{
    size_t n = restore->record_count;
    if (n == 0) return ZC_CACHE_OK;
    size_t argc = 2 * n + 1 + 3 * n + restore->item_count;
    if (argc > INT32_MAX - 8)
        return s_fail(self, ZC_CACHE_INVALID, "dump too large to restore in one step");
    const char **v = (const char **)malloc(argc * sizeof *v);
    size_t *l = (size_t *)malloc(argc * sizeof *l);
    char *names = (char *)malloc(2 * n * S_NAME_MAX);
    char *numbers = (char *)malloc(2 * n * 24);
    assert(v && l && names && numbers);
    size_t a = 2 * n;
    v[a] = self->owner;
    l[a++] = strlen(self->owner);
    for (size_t i = 0; i < n; i++) {
        const s_record_t *record = &restore->records[i];
        char *value_name = names + 2 * i * S_NAME_MAX;
        char *lock_name = value_name + S_NAME_MAX;
        v[i] = s_name(self, value_name, "cache", record->key);
        l[i] = strlen(v[i]);
        v[n + i] = s_name(self, lock_name, "lock", record->key);
        l[n + i] = strlen(v[n + i]);
        char *ttl = numbers + 2 * i * 24, *items = ttl + 24;
        v[a++] = record->is_list ? "list" : "value";
        v[a++] = s_itoa(ttl, record->ttl);
        v[a++] = s_itoa(items, (int64_t)record->count);
        for (size_t k = 3; k > 0; k--)
            l[a - k] = strlen(v[a - k]);
        for (size_t j = 0; j < record->count; j++) {
            v[a] = (const char *)restore->items[record->first + j];
            l[a++] = restore->item_sizes[record->first + j];
        }
    }
    redisReply *reply = s_script(self, S_RESTORE, (int)(2 * n), (int)argc, v, l);
    int rc = !reply && !self->redis ? ZC_CACHE_REDIS : s_check_status(self, reply, "*", "restore");
    if (rc == ZC_CACHE_TYPE)
        s_fail(self, rc, "the lock of a dumped key holds the wrong kind of data");
    if (rc == ZC_CACHE_LOCKED && reply->elements == 3 &&
        reply->element[2]->type == REDIS_REPLY_INTEGER && reply->element[2]->integer >= 1 &&
        (size_t)reply->element[2]->integer <= n)
        s_fail(self, rc, "key '%.100s' is locked by node '%.255s'",
               restore->records[reply->element[2]->integer - 1].key, reply->element[1]->str);
    if (reply) freeReplyObject(reply);
    free(v);
    free(l);
    free(names);
    free(numbers);
    return rc;
}

int zc_cache_restore(zc_cache_t *self, const char *path, size_t *count_p)
{
    assert(self);
    assert(path);
    if (count_p) *count_p = 0;
    s_restore_t restore;
    memset(&restore, 0, sizeof restore);
    uint64_t count = 0;
    size_t body_start = 0;
    int rc = s_read_file(self, path, &restore);
    if (!rc) rc = s_parse_header(self, &restore, &count, &body_start);
    if (!rc) rc = s_check_trailer(self, &restore, body_start);
    if (!rc) rc = s_parse_records(self, &restore, count, body_start);
    if (!rc) rc = s_restore_apply(self, &restore);
    if (!rc && count_p) *count_p = restore.record_count;
    if (rc && rc != ZC_CACHE_REDIS) { //  refused before anything was written
        size_t len = strlen(self->errstr);
        snprintf(self->errstr + len, sizeof self->errstr - len, "; nothing was restored");
    }
    s_restore_free(&restore);
    return rc;
}
