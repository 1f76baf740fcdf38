'use strict'
/*  CURVE with the cluster credentials (docs/SECURITY.md): the credentials
    file checked as the C nodes check it, peers that hold the pair talking,
    a client with another pair refused by the ZAP handler before any
    message passes, peers with other credentials never added, and, where
    the zcluster binary has `keygen` and `--keys`, a C node and a
    JavaScript peer in one authenticated cluster. */
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zmq = require('zeromq')
const { Peer } = require('..')
const { loadKeys } = require('../lib/security')
const { until, cleanup, startRedis, startCNode, cliPath, recorder } = require('./helpers')

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zc-node-keys-'))

//  A credentials file as `zcluster keygen` writes it.
function writeKeys (name, pair = zmq.curveKeyPair(), mode = 0o600) {
  const file = path.join(dir, name)
  fs.writeFileSync(file, `#   test credentials\ncurve\n    public-key = "${pair.publicKey}"\n    secret-key = "${pair.secretKey}"\n`, { mode })
  fs.chmodSync(file, mode)
  return file
}

describe('CURVE with the cluster credentials', () => {
  let redis
  before(async () => { redis = await startRedis() })
  after(async () => {
    await cleanup()
    await redis.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('reads a credentials file only if it is private, well formed and a real pair', () => {
    const pair = zmq.curveKeyPair()
    assert.deepStrictEqual(loadKeys(writeKeys('good.keys', pair)), pair)
    assert.throws(() => loadKeys(writeKeys('open.keys', pair, 0o644)), /mode 0644: group or others .*chmod 600/)
    fs.symlinkSync(path.join(dir, 'good.keys'), path.join(dir, 'link.keys'))
    assert.throws(() => loadKeys(path.join(dir, 'link.keys')), /cannot open credentials file/)
    assert.throws(() => loadKeys(path.join(dir, 'none.keys')), /cannot open credentials file/)
    const other = zmq.curveKeyPair()
    assert.throws(() => loadKeys(writeKeys('mixed.keys', { publicKey: pair.publicKey, secretKey: other.secretKey })), /does not belong to its public key/)
    fs.writeFileSync(path.join(dir, 'bad.keys'), 'curve\n    public-key = "short"\n', { mode: 0o600 })
    assert.throws(() => loadKeys(path.join(dir, 'bad.keys')), /malformed/)
    try {
      loadKeys(writeKeys('mixed2.keys', { publicKey: pair.publicKey, secretKey: other.secretKey }))
    } catch (e) {
      assert.ok(!e.message.includes(other.secretKey), 'the secret key is never shown')
    }
  })

  it('peers with the pair talk; other credentials are never added, and refused', async () => {
    const keys = writeKeys('cluster.keys')
    const a = new Peer({ id: 'ka', redis: redis.url, cluster: 'sec', keys })
    const b = new Peer({ id: 'kb', redis: redis.url, cluster: 'sec', keys })
    const stranger = new Peer({ id: 'kx', redis: redis.url, cluster: 'sec', keys: writeKeys('other.keys') })
    const plain = new Peer({ id: 'kp', redis: redis.url, cluster: 'sec', keys: '' })
    const warnings = []
    a.on('warning', e => warnings.push(e.message))
    const rb = recorder(b)
    b.register('echo', x => x)
    for (const p of [a, b, stranger, plain]) await p.start()
    try {
      await until(() => a.peers().includes('kb') && b.peers().includes('ka'), 5000, 'ka and kb to add each other')
      await until(() => warnings.some(w => /peer kx not added: its CURVE key is not this cluster's key/.test(w)) &&
        warnings.some(w => /peer kp not added: it has no CURVE key/.test(w)), 5000, 'the refusals to be said')
      assert.deepStrictEqual(a.peers(), ['kb'])
      assert.deepStrictEqual(stranger.peers(), [])
      assert.deepStrictEqual(plain.peers(), [])
      assert.strictEqual(await a.request('kb', 'echo', 'sealed'), 'sealed')
      await a.whisper('kb', 'pt', 'over curve')
      await until(() => rb.messages.some(m => m.payload.toString() === 'over curve'), 5000, 'the whisper')

      //  A client with another pair, which knows the cluster public key,
      //  is refused by the ZAP handler: its handshake fails, nothing passes.
      const intruderPair = zmq.curveKeyPair()
      const intruder = new zmq.Dealer({ routingId: 'kb', linger: 0, curvePublicKey: intruderPair.publicKey, curveSecretKey: intruderPair.secretKey, curveServerKey: a.keys.publicKey })
      let refused = false
      intruder.events.on('handshake:error:auth', () => { refused = true })
      intruder.connect(a.routerEndpoint)
      const before = a.stats()
      intruder.send('spoof').catch(() => {})
      try {
        await until(() => refused, 5000, 'the ZAP handler to refuse the intruder')
      } finally {
        intruder.close()
      }
      assert.deepStrictEqual(a.stats(), before)
    } finally {
      for (const p of [a, b, stranger, plain]) await p.stop()
    }
  })

  it('a C node and a JavaScript peer in one authenticated cluster', async t => {
    const keys = path.join(dir, 'c.keys')
    const made = spawnSync(cliPath(), ['keygen', '-o', keys], { stdio: 'ignore' })
    if (made.status !== 0) return t.skip('this zcluster has no keygen (no cluster credentials)')
    const c = await startCNode(redis, 'kc', 'csec', ['--keys', keys])
    const n = new Peer({ id: 'kn', redis: redis.url, cluster: 'csec', keys })
    n.register('echo', x => x)
    const rec = recorder(n)
    await n.start()
    try {
      await c.expect('added kn')
      await until(() => n.peers().includes('kc'), 5000, 'kn to add kc')
      assert.strictEqual(await n.request('kc', 'echo', 'both ways'), 'both ways')
      c.send('call t kn echo 2000 back')
      await c.expect('reply t kn ok "back"')
      assert.match(await c.command('whisper kn pt sealed'), /^ok whisper/)
      await until(() => rec.messages.some(m => m.payload.toString() === 'sealed'), 5000, 'the whisper')
      await n.stop()
      await c.expect('removed kn left')
      assert.deepStrictEqual(await c.close(), { code: 0, signal: null })
    } finally {
      await n.stop()
    }
  })
})
