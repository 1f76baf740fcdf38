'use strict'
/*  registry — the node's place in the Redis registry (docs/REGISTRY.md):
    its record and lease, the membership it reads, and the announcements it
    hears. The scripts are the documented ones, byte for byte, so they run
    by the same SHA as the C nodes' (test/docs.test.js checks them against
    the document).

    What this peer does and does not do, as the document allows a peer
    that is not the C library: it registers, refreshes its lease every
    TTL/3 (registering anew under a new incarnation if peers removed it),
    publishes group changes, reaps expired records, reports a peer whose
    connection dropped, and removes its own record when it leaves. It takes
    no part in leader elections.
*/
const { EventEmitter } = require('node:events')
const crypto = require('node:crypto')
const os = require('node:os')
const Redis = require('ioredis')
const { nameValid } = require('./wire')

const SCRIPTS = {
  register: {
    keys: 3,
    lua: "redis.call('DEL', KEYS[2])\n" +
      "redis.call('HSET', KEYS[2], unpack(ARGV, 5))\n" +
      "redis.call('SADD', KEYS[1], ARGV[1])\n" +
      "redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])\n" +
      "redis.call('PUBLISH', ARGV[3], 'join ' .. ARGV[1])\n" +
      'return 1\n'
  },
  refresh: {
    keys: 2,
    lua: "if redis.call('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n" +
      "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n" +
      'return 1\n'
  },
  update: {
    keys: 1,
    lua: "if redis.call('HGET', KEYS[1], 'inc') ~= ARGV[1] then return 0 end\n" +
      "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n" +
      "redis.call('PUBLISH', ARGV[4], 'update ' .. ARGV[5])\n" +
      'return 1\n'
  },
  remove: {
    keys: 5,
    lua: "if redis.call('HGET', KEYS[5], 'inc') ~= ARGV[5] then return 0 end\n" +
      "if redis.call('HGET', KEYS[2], 'inc') ~= ARGV[2] then return 0 end\n" +
      "redis.call('SREM', KEYS[1], ARGV[1])\n" +
      "redis.call('DEL', KEYS[2], KEYS[3])\n" +
      "local holder = redis.call('GET', KEYS[4])\n" +
      "if holder and string.match(holder, '^(%S+)') == ARGV[1] then redis.call('DEL', KEYS[4]) end\n" +
      "redis.call('PUBLISH', ARGV[3], 'leave ' .. ARGV[1] .. ' ' .. ARGV[4] .. ' ' .. ARGV[2])\n" +
      'return 1\n'
  },
  reap: {
    keys: 2,
    lua: 'local removed = 0\n' +
      "for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n" +
      "  if redis.call('EXISTS', ARGV[1] .. 'lease:' .. id) == 0 then\n" +
      "    local inc = redis.call('HGET', ARGV[1] .. 'node:' .. id, 'inc') or ''\n" +
      "    redis.call('SREM', KEYS[1], id)\n" +
      "    redis.call('DEL', ARGV[1] .. 'node:' .. id)\n" +
      "    local holder = redis.call('GET', KEYS[2])\n" +
      "    if holder and string.match(holder, '^(%S+)') == id then redis.call('DEL', KEYS[2]) end\n" +
      "    redis.call('PUBLISH', ARGV[2], 'leave ' .. id .. ' expired ' .. inc)\n" +
      '    removed = removed + 1\n' +
      '  end\n' +
      'end\n' +
      'return removed\n'
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

class Registry extends EventEmitter {
  //  options: {url, cluster, id, leaseTtl}; record: the fields to publish.
  constructor (options) {
    super()
    this.url = options.url
    this.id = options.id
    this.ttl = options.leaseTtl || 3000
    this.prefix = `zc:{${options.cluster}}:`
    this.channel = this.prefix + 'events'
    this.inc = s_incarnation()
    this.record = null
    this.known = new Map() //  peer id -> incarnation, as last told
    this.timer = null
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
    await this.s_register()
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
    try {
      await this.tick()
      if (this.down) this.emit('warning', new Error('Redis registry reachable again'))
      this.down = false
    } catch (e) {
      if (!this.timer) return //  stopped meanwhile
      if (!this.down) this.emit('warning', new Error(`Redis registry unreachable (${e.message}); retrying`))
      this.down = true
    }
  }

  async s_register () {
    const fields = { id: this.id, inc: this.inc, host: os.hostname(), pid: String(process.pid), ...this.record }
    const argv = []
    for (const [k, v] of Object.entries(fields)) argv.push(k, String(v))
    await this.cmd.zc_register(this.key('nodes'), this.key('node:' + this.id), this.key('lease:' + this.id),
      this.id, String(this.ttl), this.channel, this.inc, ...argv)
  }

  async tick () {
    const refreshed = await this.cmd.zc_refresh(this.key('node:' + this.id), this.key('lease:' + this.id), this.inc, String(this.ttl))
    if (refreshed === 0) await this.s_reincarnate()
    await this.cmd.zc_reap(this.key('nodes'), this.key('leader'), this.prefix, this.channel)
    await this.sync()
  }

  //  Peers removed this node (it went silent): come back as a new
  //  incarnation, since they remember the old one as dead.
  async s_reincarnate () {
    this.inc = s_incarnation()
    this.emit('reincarnated', this.inc)
    await this.s_register()
  }

  //  Reads the whole membership; tells what changed since last time.
  async sync () {
    const ids = await this.cmd.smembers(this.key('nodes'))
    const present = new Set(ids)
    for (const id of ids) if (id !== this.id && !this.known.has(id)) await this.fetch(id)
    if (Date.now() < this.graceUntil) return
    for (const id of [...this.known.keys()]) if (!present.has(id)) this.s_remove(id, null, 'expired')
  }

  //  Fetches a peer's record; a record whose lease lapsed is about to be
  //  reaped and is not added.
  async fetch (id) {
    if (id === this.id) return
    const [[, hash], [, live]] = await this.cmd.pipeline().hgetall(this.key('node:' + id))
      .exists(this.key('lease:' + id)).exec()
    const record = parseRecord(hash, id)
    if (!record || live !== 1) return
    const known = this.known.get(id)
    if (known && known !== record.inc) this.s_remove(id, known, 'crashed') //  it restarted
    this.known.set(id, record.inc)
    this.emit(known === record.inc ? 'update' : 'add', record)
  }

  s_remove (id, inc, reason) {
    const known = this.known.get(id)
    if (!known || (inc && inc !== known)) return //  stale: about an earlier incarnation
    this.known.delete(id)
    this.emit('remove', id, known, reason)
  }

  s_announcement (text) {
    const a = parseAnnouncement(text)
    if (!a) return
    if (a.id === this.id) {
      if (a.verb === 'leave' && a.inc === this.inc) this.s_reincarnate().catch(e => this.emit('warning', e))
      return
    }
    if (a.verb === 'leave') this.s_remove(a.id, a.inc, a.reason)
    else this.fetch(a.id).catch(e => this.emit('warning', e))
  }

  //  Publishes a record field change (groups), announced as an update.
  async update (field, value) {
    if (this.record) this.record[field] = value
    if (!this.cmd) return
    await this.cmd.zc_update(this.key('node:' + this.id), this.inc, field, value, this.channel, this.id)
  }

  //  Removes node id (incarnation inc) with reason; this node is the
  //  reporter. Returns 1 if removed.
  async remove (id, inc, reason) {
    return this.cmd.zc_remove(this.key('nodes'), this.key('node:' + id), this.key('lease:' + id),
      this.key('leader'), this.key('node:' + this.id), id, inc, this.channel, reason, this.inc)
  }

  //  A peer's connection dropped: report it (the removal is announced to
  //  every node), and if the registry refuses, read it again.
  async reportCrash (id) {
    const inc = this.known.get(id)
    if (!inc) return
    this.known.delete(id)
    if ((await this.remove(id, inc, 'crashed')) !== 1) await this.fetch(id)
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
    this.timer = null
    try {
      if (this.cmd && this.cmd.status === 'ready') await this.remove(this.id, this.inc, 'left')
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
