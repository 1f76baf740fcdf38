'use strict'
/*  What the peer reads from Redis, where anyone with access may have
    written anything: records and announcements, by the rules of
    docs/REGISTRY.md (the ones the C nodes apply). */
const test = require('node:test')
const assert = require('node:assert')
const { parseRecord, parseAnnouncement, redisOptions, redact } = require('../lib/registry')

const good = { id: 'web-1', inc: '5C0F8E0A0D5A4C6B9E8C1B7A2F3D4E5F', pub: 'tcp://h:1', router: 'tcp://h:2' }

test('a record needs id, inc, pub and router, and must be the key\'s', () => {
  const r = parseRecord({ ...good, groups: 'a  b\x01c d', headers: '{"role":"web"}', pid: '42', started: '7' }, 'web-1')
  assert.deepStrictEqual([r.groups, r.headers, r.pid, r.started, r.curve], [['a', 'd'], { role: 'web' }, 42, 7, ''])
  for (const field of ['id', 'inc', 'pub', 'router']) {
    const partial = { ...good }
    delete partial[field]
    assert.strictEqual(parseRecord(partial, 'web-1'), null, field)
  }
  assert.strictEqual(parseRecord(good, 'web-2'), null, 'another node\'s record')
  assert.strictEqual(parseRecord({ ...good, inc: 'x'.repeat(40) }, 'web-1'), null, 'incarnation too long')
  assert.strictEqual(parseRecord({ ...good, inc: 'a b' }, 'web-1'), null, 'incarnation not a name')
  assert.strictEqual(parseRecord({}, 'web-1'), null, 'no record')
  assert.deepStrictEqual(parseRecord({ ...good, headers: '[1]' }, 'web-1').headers, {})
  assert.deepStrictEqual(parseRecord({ ...good, headers: '{' }, 'web-1').headers, {})
})

test('announcements: join, update, leave with reason and incarnation, nothing else', () => {
  assert.deepStrictEqual(parseAnnouncement('join web-1'), { verb: 'join', id: 'web-1' })
  assert.deepStrictEqual(parseAnnouncement('update web-1'), { verb: 'update', id: 'web-1' })
  assert.deepStrictEqual(parseAnnouncement('leave web-1 crashed ABC'), { verb: 'leave', id: 'web-1', reason: 'crashed', inc: 'ABC' })
  assert.deepStrictEqual(parseAnnouncement('leave web-1'), { verb: 'leave', id: 'web-1', reason: 'left', inc: '' })
  for (const bad of ['', 'join', 'hello web-1', 'join web-1 extra', 'leave a b c d', 'join ' + 'x'.repeat(256)]) {
    assert.strictEqual(parseAnnouncement(bad), null, JSON.stringify(bad))
  }
})

test('Redis URLs as the C nodes take them, and never shown with credentials', () => {
  assert.deepStrictEqual((({ host, port, db, password }) => ({ host, port, db, password }))(redisOptions('redis://:pw@h:7000/2')),
    { host: 'h', port: 7000, db: 2, password: 'pw' })
  assert.deepStrictEqual((({ path, db }) => ({ path, db }))(redisOptions('unix:///tmp/r.sock?db=3')), { path: '/tmp/r.sock', db: 3 })
  assert.throws(() => redisOptions('http://h'))
  assert.strictEqual(redact('redis://user:pw@h:1/0'), 'redis://***@h:1/0')
})

//  Three registries of this peer in one cluster, over a real Redis: the
//  votes, their withdrawal, the majority, and the lease's expiry.
test('votes remove a peer only with a majority of the others; a silent one expires', async () => {
  const { Registry } = require('../lib/registry')
  const Redis = require('ioredis')
  const { startRedis, until, cleanup } = require('./helpers')
  const redis = await startRedis()
  const client = new Redis(redisOptions(redis.url))
  const started = []
  const start = async id => {
    const r = new Registry({ url: redis.url, cluster: 'votes', id, leaseTtl: 600 })
    r.removed = []
    r.warnings = []
    r.on('remove', (peer, inc, reason, tombstone) => r.removed.push(`${peer} ${reason} ${tombstone}`))
    r.on('warning', e => r.warnings.push(e.message))
    await r.start({ pub: 'tcp://127.0.0.1:1', router: 'tcp://127.0.0.1:2' })
    started.push(r)
    return r
  }
  try {
    const [a, b, c] = [await start('a'), await start('b'), await start('c')]
    await until(() => a.known.has('c') && b.known.has('c') && c.known.has('a'), 5000, 'all three to know each other')
    assert.notStrictEqual(await client.zscore('zc:{votes}:leases', 'c'), null, 'c has a lease deadline')
    //  One voice of two: c stays, and hears that it is suspected.
    await a.suspect('c')
    assert.deepStrictEqual(await client.zrange('zc:{votes}:suspects:c', 0, -1), ['a'])
    await until(() => c.warnings.some(w => w.startsWith('1 peer(s) cannot reach this node')), 5000, 'c to hear of the vote')
    await a.tick() //  the vote is renewed, never counted twice
    assert.deepStrictEqual([a.known.has('c'), b.known.has('c'), await client.sismember('zc:{votes}:nodes', 'c')], [true, true, 1])
    //  Withdrawn when the connection is back.
    await a.trust('c')
    assert.deepStrictEqual(await client.zrange('zc:{votes}:suspects:c', 0, -1), [])
    //  Two of two: removed as crashed, for everyone, and c comes back anew.
    const inc = c.inc
    await a.suspect('c')
    await b.suspect('c')
    await until(() => a.removed.includes('c crashed true') && b.removed.includes('c crashed true'), 5000, 'a and b to see c removed')
    assert.strictEqual(await client.get('zc:{votes}:gone:c'), inc, 'the removed incarnation is kept')
    await until(() => c.inc !== inc && a.known.get('c') === c.inc, 5000, 'c to come back as a new incarnation')
    //  A node that dies (no refresh, no Redis; its record left) expires.
    clearInterval(c.timer)
    c.timer = null
    c.sub.disconnect()
    c.cmd.disconnect()
    await until(() => a.removed.includes('c expired true') && b.removed.includes('c expired true'), 5000, 'c to expire')
    assert.strictEqual(await client.sismember('zc:{votes}:nodes', 'c'), 0)
  } finally {
    for (const r of started) await r.stop().catch(() => {})
    client.disconnect()
    await redis.stop()
    await cleanup()
  }
})
