'use strict'
/*  registry — the node's place in the Redis registry (docs/REGISTRY.md):
    its record and lease, the membership it reads, and the announcements it
    hears. The scripts are the documented ones, byte for byte, so they run
    by the same SHA as the C nodes' (test/docs.test.js checks them against
    the document).

    What this peer does, as the document asks of a peer that is not the C
    library: it runs the presence script every TTL/3 (which registers,
    refreshes and repairs its record, set entry, lease and deadline, and
    says when it must come back under a new incarnation), publishes group
    changes, reaps the leases that are due, votes against a peer whose
    connection dropped (and withdraws the vote when it is back), and
    removes its own record when it leaves. It takes no part in leader
    elections.
*/
const { EventEmitter } = require('node:events')
const crypto = require('node:crypto')
const os = require('node:os')
const Redis = require('ioredis')
const { nameValid } = require('./wire')

//  What every script that reads defensively begins with: the repairs it
//  made, Redis's clock, safe() (a key of the wrong type is replaced, once,
//  and named in the answer) and inc_of().
const LUA_COMMON = 'local repaired = {}\n' +
  'local function now_ms()\n' +
  "  local t = redis.call('TIME')\n" +
  '  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n' +
  'end\n' +
  'local function safe(what, cmd, k, ...)\n' +
  '  local r = redis.pcall(cmd, k, ...)\n' +
  "  if type(r) == 'table' and r.err then\n" +
  "    if string.sub(r.err, 1, 9) ~= 'WRONGTYPE' then error(r) end\n" +
  "    redis.call('DEL', k)\n" +
  "    table.insert(repaired, what .. ' ' .. k .. ' had the wrong type')\n" +
  '    r = redis.call(cmd, k, ...)\n' +
  '  end\n' +
  '  return r\n' +
  'end\n' +
  'local function inc_of(k)\n' +
  "  local r = redis.pcall('HGET', k, 'inc')\n" +
  "  if type(r) ~= 'string' then return nil end\n" +
  '  return r\n' +
  'end\n'

//  forget(id, reason): removes a node everywhere, keeps its incarnation
//  under gone:<id> for ARGV[2] ms and announces its leave.
const LUA_FORGET = 'local function forget(id, reason)\n' +
  '  local p = ARGV[1]\n' +
  "  local inc = inc_of(p .. 'node:' .. id) or ''\n" +
  "  safe('membership set', 'SREM', p .. 'nodes', id)\n" +
  "  safe('lease deadlines', 'ZREM', p .. 'leases', id)\n" +
  "  redis.call('DEL', p .. 'node:' .. id, p .. 'lease:' .. id, p .. 'suspects:' .. id)\n" +
  "  if inc ~= '' then redis.call('SET', p .. 'gone:' .. id, inc, 'PX', ARGV[2]) end\n" +
  "  local holder = redis.pcall('GET', p .. 'leader')\n" +
  "  if type(holder) == 'string' and string.match(holder, '^(%S+)') == id then\n" +
  "    redis.call('DEL', p .. 'leader')\n" +
  '  end\n' +
  "  redis.call('PUBLISH', p .. 'events', 'leave ' .. id .. ' ' .. reason .. ' ' .. inc)\n" +
  'end\n'


//  KEYS and ARGV of each: docs/REGISTRY.md "Scripts". This peer takes no
//  part in elections, so it has neither elect nor leaderHeal.
const SCRIPTS = {
  presence: {
    keys: 6,
    lua: LUA_COMMON + "local id, ttl, inc, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5] == '1'\n" +
      "if not fresh and safe('tombstone', 'GET', KEYS[5]) == inc then\n" +
      "  return {0, 'removed by its peers'}\n" +
      'end\n' +
      "local fields = safe('record', 'HGETALL', KEYS[2])\n" +
      'local have = {}\n' +
      'for i = 1, #fields, 2 do have[fields[i]] = fields[i + 1] end\n' +
      'if not fresh and have.inc and have.inc ~= inc then\n' +
      "  return {0, 'its record holds another incarnation'}\n" +
      'end\n' +
      'local verb = nil\n' +
      'if fresh or not have.inc then\n' +
      "  redis.call('DEL', KEYS[2])\n" +
      "  redis.call('HSET', KEYS[2], unpack(ARGV, 6))\n" +
      "  if not fresh then table.insert(repaired, 'record') end\n" +
      "  verb = 'join'\n" +
      'else\n' +
      '  for i = 6, #ARGV, 2 do\n' +
      '    if have[ARGV[i]] ~= ARGV[i + 1] then\n' +
      "      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])\n" +
      "      table.insert(repaired, 'field ' .. ARGV[i])\n" +
      "      verb = 'update'\n" +
      '    end\n' +
      '  end\n' +
      'end\n' +
      "if safe('membership set', 'SADD', KEYS[1], id) == 1 then\n" +
      "  if not fresh then table.insert(repaired, 'membership') end\n" +
      "  verb = 'join'\n" +
      'end\n' +
      "local old = safe('lease', 'SET', KEYS[3], inc, 'PX', ttl, 'GET')\n" +
      "if not old and not fresh then table.insert(repaired, 'lease') end\n" +
      "safe('lease deadlines', 'ZADD', KEYS[4], now_ms() + ttl, id)\n" +
      "if verb then redis.call('PUBLISH', ARGV[3], verb .. ' ' .. id) end\n" +
      "return {1, table.concat(repaired, ', '), safe('suspicions', 'ZCARD', KEYS[6])}\n"
  },
  update: {
    keys: 1,
    lua: "if redis.pcall('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n" +
      "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n" +
      "redis.call('PUBLISH', ARGV[4], 'update ' .. ARGV[5])\n" +
      'return 1\n'
  },
  remove: {
    keys: 5,
    lua: LUA_COMMON + LUA_FORGET + 'if inc_of(KEYS[3]) ~= ARGV[4] then return 0 end\n' +
      'forget(ARGV[3], ARGV[5])\n' +
      'return 1\n'
  },
  suspect: {
    keys: 6,
    lua: LUA_COMMON + LUA_FORGET + 'if inc_of(KEYS[5]) ~= ARGV[6] then return -1 end\n' +
      'if inc_of(KEYS[3]) ~= ARGV[4] then return 0 end\n' +
      'local now = now_ms()\n' +
      "safe('suspicions', 'ZADD', KEYS[4], now, ARGV[5])\n" +
      "redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))\n" +
      "redis.call('PEXPIRE', KEYS[4], ARGV[7])\n" +
      "local others = safe('membership set', 'SCARD', KEYS[1]) - 1\n" +
      "if redis.call('ZCARD', KEYS[4]) * 2 > others then\n" +
      "  forget(ARGV[3], 'crashed')\n" +
      '  return 2\n' +
      'end\n' +
      'return 1\n'
  },
  reap: {
    keys: 3,
    lua: LUA_COMMON + LUA_FORGET + 'local removed, now = 0, now_ms()\n' +
      'local function reap(id)\n' +
      "  local ttl = redis.call('PTTL', ARGV[1] .. 'lease:' .. id)\n" +
      '  if ttl == -2 then\n' +
      "    forget(id, 'expired')\n" +
      '    removed = removed + 1\n' +
      '  else\n' +
      "    safe('lease deadlines', 'ZADD', KEYS[2], now + math.max(ttl, 1000), id)\n" +
      '  end\n' +
      'end\n' +
      "for _, id in ipairs(safe('lease deadlines', 'ZRANGEBYSCORE', KEYS[2], '-inf', now,\n" +
      "                         'LIMIT', 0, 100)) do\n" +
      '  reap(id)\n' +
      'end\n' +
      "if ARGV[3] == '1' then\n" +
      "  for _, id in ipairs(safe('membership set', 'SMEMBERS', KEYS[1])) do\n" +
      "    if not redis.call('ZSCORE', KEYS[2], id) then reap(id) end\n" +
      '  end\n' +
      'end\n' +
      "local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')\n" +
      'local next_ms = -1\n' +
      'if first[2] then next_ms = math.max(0, tonumber(first[2]) - now) end\n' +
      "return {removed, table.concat(repaired, ', '), next_ms}\n"
  },
  //  "connection map" remove: only the holder removes its connection id.
  connRemove: {
    keys: 1,
    lua: "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n" +
      "  return redis.call('HDEL', KEYS[1], ARGV[1])\n" +
      'end\n' +
      'return 0\n'
  }
}

const INC_MAX = 39

//  ioredis options from a zcluster Redis URL: redis://[[user]:password@]
//  host[:port][/db] or unix:///path[?db=N] (also unix:/path).
function redisOptions (url) {
  const options = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true }
  if (url.startsWith('unix:')) {
    const u = new URL(url)
    return { ...options, path: decodeURIComponent(u.pathname), db: Number(u.searchParams.get('db') || 0) }
  }
  const u = new URL(url)
  if (u.protocol !== 'redis:') throw new Error('unsupported Redis URL scheme ' + u.protocol)
  return {
    ...options,
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number(u.pathname.slice(1) || 0)
  }
}

//  A Redis URL fit for a message: its credentials masked, as the C nodes
//  do ("redis://***@host:6379/2").
function redact (url) {
  return String(url).replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1***@')
}

//  A peer's record (HGETALL) as {id, inc, pub, router, curve, groups,
//  headers, ...}, or null when it is not usable: missing id, inc, pub or
//  router, an id that is not the key's, an incarnation that is not a name of
//  at most 39 bytes (the rules the C nodes apply).
function parseRecord (hash, id) {
  if (!hash || typeof hash !== 'object') return null
  for (const f of ['id', 'inc', 'pub', 'router']) if (typeof hash[f] !== 'string') return null
  if (hash.id !== id || !nameValid(id)) return null
  if (!nameValid(hash.inc) || Buffer.byteLength(hash.inc) > INC_MAX) return null
  let headers = {}
  try {
    const h = JSON.parse(hash.headers || '{}')
    if (h && typeof h === 'object' && !Array.isArray(h)) headers = h
  } catch (e) {}
  return {
    ...hash,
    curve: hash.curve || '',
    pid: Number(hash.pid || 0),
    started: Number(hash.started || 0),
    groups: (hash.groups || '').split(' ').filter(nameValid),
    headers
  }
}

//  An announcement: "join ID", "update ID", "leave ID [REASON [INC]]".
function parseAnnouncement (text) {
  const words = text.split(/\s+/).filter(w => w.length)
  const [verb, id] = words
  if (!id || !nameValid(id)) return null
  if ((verb === 'join' || verb === 'update') && words.length === 2) return { verb, id }
  if (verb === 'leave' && words.length <= 4) return { verb, id, reason: words[2] || 'left', inc: words[3] || '' }
  return null
}

//  How long the cluster remembers a removed incarnation (gone:<id>), as
//  the C nodes do: a node that finds its own there comes back anew.
const GONE_MS = '60000'
//  Past a lease deadline, so that the lease key has expired in Redis too.
const REAP_SLACK_MS = 5

class Registry extends EventEmitter {
  //  options: {url, cluster, id, leaseTtl}; record: the fields to publish.
  constructor (options) {
    super()
    this.url = options.url
    this.id = options.id
    this.ttl = options.leaseTtl || 2000
    this.prefix = `zc:{${options.cluster}}:`
    this.channel = this.prefix + 'events'
    this.inc = s_incarnation()
    this.record = null
    this.known = new Map() //  peer id -> incarnation, as last told
    this.missing = new Map() //  known peer id -> when it was first missing from the set (ms)
    this.suspects = new Map() //  peer id -> incarnation: peers this node cannot reach
    this.suspicions = 0 //  peers that said they cannot reach this node, at the last refresh
    this.reincarnatedAt = 0
    this.timer = null
    this.ticking = false
    this.reapTimer = null
    this.graceUntil = 0
    this.down = false
  }

  key (suffix) { return this.prefix + suffix }

  //  Connects both connections, subscribes, registers with the given
  //  record fields and reads the membership.
  async start (record) {
    this.record = record
    const options = redisOptions(this.url)
    this.cmd = new Redis(options)
    this.sub = new Redis(options)
    let failure = null //  why a connection failed, which connect() does not say
    for (const c of [this.cmd, this.sub]) c.on('error', e => { failure = e })
    for (const [name, s] of Object.entries(SCRIPTS)) this.cmd.defineCommand('zc_' + name, { numberOfKeys: s.keys, lua: s.lua })
    try {
      await this.cmd.connect()
      await this.sub.connect()
    } catch (e) {
      this.cmd.disconnect()
      this.sub.disconnect()
      throw new Error(`cannot reach the Redis registry at ${redact(this.url)}: ${(failure || e).message}`)
    }
    this.sub.on('message', (channel, text) => this.s_announcement(text))
    await this.sub.subscribe(this.channel) //  before the membership is read
    await this.s_presence(true)
    this.graceUntil = Date.now() + this.ttl
    await this.sync()
    //  For one TTL after a reconnection, a peer missing from Redis is not
    //  taken as gone: a Redis that restarted empty fills up again as every
    //  node registers anew.
    this.cmd.on('ready', () => { this.graceUntil = Date.now() + this.ttl })
    this.timer = setInterval(() => this.s_tickSafely(), Math.max(100, Math.floor(this.ttl / 3)))
  }

  //  A failed tick (Redis unreachable) is reported once per outage; the
  //  next ticks retry, and the first that works says so.
  async s_tickSafely () {
    if (this.ticking) return //  a slow Redis: the previous tick is not done
    this.ticking = true
    try {
      await this.tick()
      if (this.down) this.emit('warning', new Error('Redis registry reachable again'))
      this.down = false
    } catch (e) {
      if (!this.timer) return //  stopped meanwhile
      if (!this.down) this.emit('warning', new Error(`Redis registry unreachable (${e.message}); retrying`))
      this.down = true
    } finally {
      this.ticking = false
    }
  }

  //  Registers (fresh: the record written whole) or refreshes and repairs
  //  this node's presence: record, fields, set entry, lease, deadline (the
  //  presence script). Returns 1 present, 0 this incarnation is not ours to
  //  keep (peers removed it): register anew.
  async s_presence (fresh) {
    const fields = { id: this.id, inc: this.inc, host: os.hostname(), pid: String(process.pid), ...this.record }
    const argv = []
    for (const [k, v] of Object.entries(fields)) argv.push(k, String(v))
    const [present, what, voices] = await this.cmd.zc_presence(this.key('nodes'), this.key('node:' + this.id),
      this.key('lease:' + this.id), this.key('leases'), this.key('gone:' + this.id), this.key('suspects:' + this.id),
      this.id, String(this.ttl), this.channel, this.inc, fresh ? '1' : '0', ...argv)
    if (present !== 1) {
      this.emit('warning', new Error(`registry: this incarnation is gone (${what})`))
      return 0
    }
    if (what) this.emit('warning', new Error(`registry: put back this node's ${what}`))
    if (voices !== this.suspicions) {
      this.emit('warning', new Error(`${voices} peer(s) cannot reach this node; its lease, renewed, keeps it a member`))
    }
    this.suspicions = voices
    return 1
  }

  async tick () {
    //  The announcement of this node's removal may have brought it back
    //  meanwhile: only the incarnation the refresh was about is renewed.
    const inc = this.inc
    if ((await this.s_presence(false)) === 0 && this.inc === inc) await this.s_reincarnate()
    if (!this.reapTimer) await this.s_reap()
    for (const [id, inc] of [...this.suspects]) await this.s_suspect(id, inc)
    await this.sync()
  }

  //  Peers removed this node (it went silent): come back as a new
  //  incarnation, since they remember the old one as dead.
  async s_reincarnate () {
    this.inc = s_incarnation()
    this.reincarnatedAt = Date.now()
    this.suspects.clear() //  the connections it lost while silent: its own doing
    this.emit('reincarnated', this.inc)
    await this.s_presence(true)
  }

  //  Removes the nodes whose lease expired (only the deadlines that are
  //  due), then again just after the next deadline: a silent node goes at
  //  its lease TTL, whichever node is left to see it.
  async s_reap () {
    clearTimeout(this.reapTimer)
    this.reapTimer = null
    const [, what, next] = await this.cmd.zc_reap(this.key('nodes'), this.key('leases'), this.key('leader'),
      this.prefix, GONE_MS, '0')
    if (what) this.emit('warning', new Error(`registry: ${what}; replaced`))
    if (next >= 0 && this.timer) {
      this.reapTimer = setTimeout(() => {
        this.reapTimer = null
        this.s_reap().catch(e => this.emit('warning', e))
      }, next + REAP_SLACK_MS)
    }
  }

  //  Reads the whole membership; tells what changed since last time. A
  //  known peer missing from the set is given a lease TTL to put itself
  //  back (a damaged set removes nobody) before it is taken as gone.
  async sync () {
    const ids = await this.cmd.smembers(this.key('nodes'))
    const present = new Set(ids)
    for (const id of ids) if (id !== this.id && !this.known.has(id)) await this.fetch(id)
    const now = Date.now()
    for (const id of [...this.known.keys()]) {
      if (present.has(id)) {
        this.missing.delete(id)
      } else if (!this.missing.has(id)) {
        this.missing.set(id, now)
      } else if (now - this.missing.get(id) > this.ttl && now >= this.graceUntil) {
        this.s_remove(id, null, 'expired', false)
      }
    }
  }

  //  Fetches a peer's record; a record whose lease lapsed is about to be
  //  reaped and is not added.
  async fetch (id) {
    if (id === this.id) return
    const [[, hash], [, live]] = await this.cmd.pipeline().hgetall(this.key('node:' + id))
      .exists(this.key('lease:' + id)).exec()
    const record = parseRecord(hash, id)
    //  It announced itself with its lease alive: whatever absence from the
    //  set was seen is over (two short gaps a sync apart are not one).
    if (live === 1) this.missing.delete(id)
    if (!record || live !== 1) return
    const known = this.known.get(id)
    if (known && known !== record.inc) this.s_remove(id, known, 'crashed', true) //  it restarted
    this.known.set(id, record.inc)
    this.emit(known === record.inc ? 'update' : 'add', record)
  }

  //  Forgets a peer if it is the incarnation known (any, if inc is null):
  //  a late announcement about an earlier one is stale. tombstone: the
  //  registry removed it, rather than it only went missing.
  s_remove (id, inc, reason, tombstone) {
    const known = this.known.get(id)
    if (!known || (inc && inc !== known)) return
    this.known.delete(id)
    this.missing.delete(id)
    this.suspects.delete(id)
    this.emit('remove', id, known, reason, tombstone)
  }

  s_announcement (text) {
    const a = parseAnnouncement(text)
    if (!a) return
    if (a.id === this.id) {
      if (a.verb === 'leave' && a.inc === this.inc) this.s_reincarnate().catch(e => this.emit('warning', e))
      return
    }
    if (a.verb === 'leave') this.s_remove(a.id, a.inc, a.reason, true)
    else this.fetch(a.id).catch(e => this.emit('warning', e))
  }

  //  Publishes a record field change (groups), announced as an update.
  async update (field, value) {
    if (this.record) this.record[field] = value
    if (!this.cmd) return
    await this.cmd.zc_update(this.key('node:' + this.id), this.inc, field, value, this.channel, this.id)
  }

  //  One vote (renewed every tick, since votes lapse after a TTL) for the
  //  removal of peer id, incarnation inc; more than half of the other
  //  members remove it. Returns the suspect script's answer.
  async s_suspect (id, inc) {
    const answer = await this.cmd.zc_suspect(this.key('nodes'), this.key('leases'), this.key('node:' + id),
      this.key('suspects:' + id), this.key('node:' + this.id), this.key('leader'),
      this.prefix, GONE_MS, id, inc, this.id, this.inc, String(this.ttl))
    //  0: that incarnation is gone already; -1: this node's own record is
    //  not current (it was removed), so its vote does not count.
    if (answer === 0 || answer === -1) this.suspects.delete(id)
    return answer
  }

  //  This node lost its connection to a peer: it votes for its removal,
  //  and keeps voting while the peer stays unreachable. Not just after it
  //  came back as a new incarnation: peers removed it because it froze,
  //  and the connections it sees drop on waking are its own doing.
  async suspect (id) {
    const inc = this.known.get(id)
    if (!inc || Date.now() - this.reincarnatedAt < 2 * this.ttl) return
    this.suspects.set(id, inc)
    await this.s_suspect(id, inc)
  }

  //  The connection to the peer is up again: withdraw the vote.
  async trust (id) {
    if (!this.suspects.delete(id)) return
    await this.cmd.zrem(this.key('suspects:' + id), this.id)
  }

  async connectionAdd (connection) {
    await this.cmd.hset(this.key('conn'), connection, this.id)
  }

  async connectionRemove (connection) {
    await this.cmd.zc_connRemove(this.key('conn'), connection, this.id)
  }

  async connectionOwner (connection) {
    return this.cmd.hget(this.key('conn'), connection)
  }

  //  Leaves: removes this node's record ("left") and closes Redis.
  async stop () {
    clearInterval(this.timer)
    clearTimeout(this.reapTimer)
    this.timer = null
    this.reapTimer = null
    try {
      if (this.cmd && this.cmd.status === 'ready') {
        await this.cmd.zc_remove(this.key('nodes'), this.key('leases'), this.key('node:' + this.id),
          this.key('lease:' + this.id), this.key('leader'), this.prefix, GONE_MS, this.id, this.inc, 'left')
      }
    } finally {
      if (this.sub) this.sub.disconnect()
      if (this.cmd) this.cmd.disconnect()
    }
  }
}

function s_incarnation () {
  return crypto.randomUUID().replace(/-/g, '').toUpperCase()
}

module.exports = { Registry, SCRIPTS, parseRecord, parseAnnouncement, redisOptions, redact }
