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
