'use strict'
/*  The registry scripts of docs/REGISTRY.md are the bytes that both the
    JavaScript peer and the C nodes run: the peer's by comparison, the C
    nodes' by asking a Redis that only a C node used whether it knows the
    SHA-1 of each documented script. */
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const Redis = require('ioredis')
const { SCRIPTS, redisOptions } = require('../lib/registry')
const { ROOT, startRedis, startCNode, until, cleanup } = require('./helpers')

test.after(cleanup)

function documentedScripts () {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'REGISTRY.md'), 'utf8')
  const scripts = {}
  for (const m of text.matchAll(/^```lua (\S+)\n([\s\S]*?)^```$/gm)) scripts[m[1]] = m[2]
  return scripts
}

test('the peer runs the documented scripts, byte for byte', () => {
  const documented = documentedScripts()
  for (const name of Object.keys(SCRIPTS)) assert.strictEqual(SCRIPTS[name].lua, documented[name], name)
})

test('a C node runs the documented scripts, byte for byte', async () => {
  const documented = documentedScripts()
  assert.deepStrictEqual(Object.keys(documented).sort(),
    ['connRemove', 'elect', 'leaderHeal', 'presence', 'reap', 'remove', 'suspect', 'update'])
  const redis = await startRedis()
  const client = new Redis(redisOptions(redis.url))
  try {
    const shas = Object.fromEntries(Object.entries(documented).map(([n, lua]) => [n, crypto.createHash('sha1').update(lua).digest('hex')]))
    const ran = async names => (await client.script('EXISTS', ...names.map(n => shas[n]))).every(x => x === 1)
    //  A leader key ELECT cannot read: the C node heals it (leaderHeal).
    await client.hset('zc:{docs}:leader', 'not', 'a string')
    //  One C node: it registers and refreshes (presence), reaps and elects
    //  on its timer, updates its record on a join, forgets a connection id,
    //  votes against a second node that is killed (suspect), and removes
    //  itself when it leaves.
    const c = await startCNode(redis, 'scripts-1', 'docs', ['--lease-ttl', '600'])
    const d = await startCNode(redis, 'scripts-2', 'docs', ['--lease-ttl', '600'])
    await c.expect('added scripts-2')
    assert.match(await c.command('join g1'), /^ok join/)
    assert.match(await c.command('conn add k1'), /^ok conn/)
    assert.match(await c.command('conn remove k1'), /^ok conn/)
    await until(() => ran(['presence', 'update', 'reap', 'elect', 'leaderHeal', 'connRemove']), 5000, 'the C node to run its scripts')
    await client.script('FLUSH') //  what follows is scripts-1's alone
    await d.kill('SIGKILL')
    await c.expect('removed scripts-2 crashed')
    assert.deepStrictEqual(await c.close(), { code: 0, signal: null })
    assert.ok(await ran(['suspect', 'remove']), 'the C node voted and left with the documented scripts')
  } finally {
    client.disconnect()
    await redis.stop()
  }
})
