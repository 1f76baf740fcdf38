'use strict'
/*  The JavaScript peer in one cluster with C nodes (`zcluster node`
    consoles) over a real redis-server: every message kind both ways, RPC
    both ways with every error kind, joins, leaves and crashes seen both
    ways, kill both ways, and peer-cli.js driven like the C console. */
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert')
const path = require('node:path')
const Redis = require('ioredis')
const { Peer, STATUS } = require('..')
const { redisOptions } = require('../lib/registry')
const { until, cleanup, startRedis, startCNode, Console, recorder } = require('./helpers')

const CLUSTER = 'xl'
let redis, c1, n1, rec

//  Repeats send until cond holds: a subscription takes a moment to reach a
//  PUB ("slow joiner"), and what is published before is not delivered.
async function sendUntil (send, cond, what) {
  const deadline = Date.now() + 10000
  for (;;) {
    await send()
    try {
      return await cond(200)
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`never delivered: ${what}`)
    }
  }
}

function received (r, kind, type, text) {
  return ms => until(() => r.messages.find(m => m.kind === kind && m.type === type && m.payload.toString() === text), ms, `${kind} ${type} ${text}`)
}

//  Waits until n1's SUB has a connection up (handshake done) to the
//  peer's PUB: only the loss of such a connection is a vote.
function connected (peer, id) {
  return until(() => { const m = peer.members.get(id); return m && m.connected }, 5000, `${peer.id}'s connection to ${id}`)
}

function methods (peer) {
  peer.register('echo', args => args)
  peer.register('add', ([a, b]) => a + b)
  peer.register('sleep', ms => new Promise(resolve => setTimeout(() => resolve('slept'), Number(ms))))
  peer.register('fail', () => { throw Object.assign(new Error('asked to fail'), { code: 42 }) })
  peer.register('throws', () => { throw new Error('boom') })
}

describe('a Node.js peer and C nodes in one cluster', () => {
  before(async () => {
    redis = await startRedis()
    c1 = await startCNode(redis, 'c1', CLUSTER, ['--group', 'g1', '--batch'])
    n1 = new Peer({ id: 'n1', redis: redis.url, cluster: CLUSTER, groups: ['g1'] })
    rec = recorder(n1)
    methods(n1)
    await n1.start()
    await c1.expect('added n1')
    await until(() => rec.added.includes('c1'), 5000, 'n1 to add c1')
  })

  after(async () => {
    if (n1) await n1.stop()
    await cleanup()
    if (redis) await redis.stop()
  })

  it('receives public, group and private messages from a C node', async () => {
    assert.match(await c1.command('whisper n1 pt from-c'), /^ok whisper/)
    const m = await received(rec, 'private', 'pt', 'from-c')(5000)
    assert.deepStrictEqual([m.sender, m.seq, m.corr, m.group], ['c1', 1, 0, null])
    await sendUntil(() => c1.command('publish pt hello-c'), received(rec, 'public', 'pt', 'hello-c'), 'C publish')
    await sendUntil(() => c1.command('shout g1 gt group-c'), received(rec, 'group', 'gt', 'group-c'), 'C shout')
    assert.strictEqual(rec.messages.find(m => m.type === 'gt').group, 'g1')
    const s = n1.stats()
    assert.deepStrictEqual([s.lost, s.malformed, s.bad_version, s.oversized], [0, 0, 0, 0])
  })

  it('sends public, group and private messages to a C node', async () => {
    await n1.whisper('c1', 'pt', 'from-js')
    await c1.expect('msg private n1 - pt 1 from-js')
    await sendUntil(() => n1.publish('pt', 'hello-js'), ms => c1.expect(/^msg public n1 - pt \d+ hello-js$/, ms), 'JS publish')
    await sendUntil(() => n1.shout('g1', 'gt', 'group-js'), ms => c1.expect(/^msg group n1 g1 gt \d+ group-js$/, ms), 'JS shout')
    assert.match(await c1.command('stats'), /lost=0 malformed=0 bad_version=0 oversized=0/)
  })

  it('takes a flood from a C node in order, every sequence number once', async () => {
    const count = type => rec.messages.filter(m => m.type === type).length
    assert.match(await c1.command('flood private n1 fp 5000 64', 30000), /^ok flood/)
    assert.match(await c1.command('flood public fq 5000 64', 30000), /^ok flood/)
    await until(() => count('fp') === 5000 && count('fq') === 5000, 30000, 'the flood')
    for (const type of ['fp', 'fq']) {
      const seqs = rec.messages.filter(m => m.type === type).map(m => m.seq)
      assert.ok(seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1), `${type} in order`)
      assert.ok(rec.messages.filter(m => m.type === type).every(m => m.payload.equals(Buffer.alloc(64, 'x'))))
    }
    assert.strictEqual(n1.stats().lost, 0)
    rec.messages = rec.messages.filter(m => m.type !== 'fp' && m.type !== 'fq')
  })

  it('batches only to peers that read batch frames: a version-1 peer beside it', async () => {
    //  c1 batches (--batch); n2 says it reads version 1 and refuses batch
    //  frames as such a peer would. While n2 is a member, c1's PUB sends no
    //  batch (it would reach n2); its DEALER still batches to n1.
    const n2 = new Peer({ id: 'n2', redis: redis.url, cluster: CLUSTER, wire: 1 })
    const rec2 = recorder(n2)
    const count = (r, type) => r.messages.filter(m => m.type === type).length
    await n2.start()
    try {
      await c1.expect('added n2')
      await sendUntil(() => c1.command('publish warm x'), received(rec2, 'public', 'warm', 'x'), 'c1 to reach n2')
      const batches = n1.stats().recv_batches
      assert.match(await c1.command('flood public vq 3000 64', 30000), /^ok flood/)
      assert.match(await c1.command('flood private n2 vp 3000 64', 30000), /^ok flood/)
      assert.match(await c1.command('flood private n1 vp1 3000 64', 30000), /^ok flood/)
      await until(() => count(rec2, 'vq') === 3000 && count(rec2, 'vp') === 3000 && count(rec, 'vq') === 3000 && count(rec, 'vp1') === 3000, 30000, 'the floods')
      const s2 = n2.stats()
      assert.deepStrictEqual([s2.recv_batches, s2.bad_version, s2.malformed, s2.lost], [0, 0, 0, 0])
      assert.ok(n1.stats().recv_batches > batches, 'c1 batched to n1')
      assert.strictEqual(n1.stats().lost, 0)
    } finally {
      await n2.stop()
      rec.messages = rec.messages.filter(m => !['vq', 'vp1', 'warm'].includes(m.type))
    }
    await c1.expect('removed n2')
  })

  it('joins a group after it started: the C node sees it in the record and reaches it', async () => {
    await n1.join('g2')
    await until(async () => {
      const info = JSON.parse((await c1.command('info')).slice('ok info '.length))
      const me = info.nodes.find(n => n.id === 'n1')
      return me && me.groups.includes('g2')
    }, 5000, 'the C node to see n1 in g2')
    await sendUntil(() => c1.command('shout g2 gt2 late'), received(rec, 'group', 'gt2', 'late'), 'C shout to g2')
  })

  it('calls a C node: results, the built-ins and every error kind', async () => {
    assert.strictEqual(await n1.request('c1', 'echo', 'hi'), 'hi')
    assert.strictEqual(await n1.request('c1', 'ping'), null)
    assert.ok((await n1.request('c1', 'methods')).includes('echo'))
    const info = await n1.request('c1', 'info')
    assert.deepStrictEqual([info.id, info.groups], ['c1', ['g1']])
    await assert.rejects(n1.request('c1', 'fail'), { status: STATUS.handler, code: 42, message: 'asked to fail', node: 'c1' })
    await assert.rejects(n1.request('c1', 'nope'), { status: STATUS.unknownMethod, code: 0, message: 'unknown method' })
    const slow = await n1.call('c1', 'sleep', 3000, { timeout: 300 })
    assert.deepStrictEqual([slow.status, slow.missing], [STATUS.timeout, ['c1']])
    assert.strictEqual((await n1.call('ghost', 'ping')).status, STATUS.noRoute)
    assert.strictEqual((await n1.call({ connection: 'nobody-holds-this' }, 'ping')).status, STATUS.unknownConnection)
    assert.strictEqual((await n1.call('c1', 'bad name')).status, STATUS.invalid)
    assert.match(await c1.command('conn add k1'), /^ok conn/)
    const byConnection = await n1.call({ connection: 'k1' }, 'echo', 'via-k1')
    assert.deepStrictEqual([byConnection.status, byConnection.replies[0].node, byConnection.replies[0].value], [STATUS.ok, 'c1', 'via-k1'])
    const all = await n1.call({ all: 'gather' }, 'ping')
    assert.deepStrictEqual([all.status, all.replies.map(r => r.node).sort(), all.missing], [STATUS.ok, ['c1', 'n1'], []])
    assert.strictEqual((await n1.call({ all: 'first' }, 'ping')).status, STATUS.ok)
  })

  it('is called by a C node: results, the built-ins and every error kind', async () => {
    const call = async (tag, args) => {
      c1.send(`call ${tag} ${args}`)
      const result = await c1.expect(`result ${tag} `)
      const replies = []
      for (let line; (line = c1.lines.find(l => l.startsWith(`reply ${tag} `)));) replies.push(await c1.expect(line))
      return { result, replies }
    }
    let r = await call('t1', 'n1 echo 2000 hi')
    assert.deepStrictEqual(r.replies, ['reply t1 n1 ok "hi"'])
    assert.strictEqual(r.result, 'result t1 status=ok replies=1 missing=')
    r = await call('t2', 'n1 fail 2000')
    assert.deepStrictEqual(r.replies, ['reply t2 n1 handler error 42 asked to fail'])
    r = await call('t3', 'n1 throws 2000')
    assert.deepStrictEqual(r.replies, ['reply t3 n1 handler error -1 boom'])
    r = await call('t4', 'n1 nope 2000')
    assert.deepStrictEqual(r.replies, ['reply t4 n1 unknown method 0 unknown method'])
    r = await call('t5', 'n1 sleep 300 2000')
    assert.strictEqual(r.result, 'result t5 status=timed out replies=0 missing=n1')
    r = await call('t6', 'n1 ping 2000')
    assert.deepStrictEqual(r.replies, ['reply t6 n1 ok nil'])
    r = await call('t7', 'n1 methods 2000')
    assert.match(r.replies[0], /^reply t7 n1 ok \["ping", "info", "methods", "echo", "add", "sleep", "fail", "throws"\]$/)
    r = await call('t8', 'n1 info 2000')
    assert.match(r.replies[0], /^reply t8 n1 ok \{"id"=>"n1", "groups"=>\["g1", "g2"\], .*"uptime_ms"=>\d+, "stats"=>\{.*"requests"=>\d+/)
    await n1.connectionAdd('k2')
    r = await call('t9', '@k2 echo 2000 via-k2')
    assert.deepStrictEqual(r.replies, ['reply t9 n1 ok "via-k2"'])
    await n1.connectionRemove('k2')
    r = await call('t10', '@k2 echo 2000 x')
    assert.strictEqual(r.result, 'result t10 status=unknown connection replies=0 missing=')
    r = await call('t11', '* ping 2000')
    assert.strictEqual(r.result, 'result t11 status=ok replies=2 missing=')
  })

  it('reads a batch frame on its ROUTER, each message counted alone', async () => {
    const zmq = require('zeromq')
    const wire = require('../lib/wire')
    const batcher = new zmq.Dealer({ routingId: 'batcher', linger: 0 })
    batcher.connect(n1.routerEndpoint)
    const before = n1.stats()
    const message = (seq, text) => Buffer.concat([wire.encodeHeader({ kind: wire.KIND.private, type: 'batched', sender: 'batcher', seq }), Buffer.from(text)])
    //  Two good messages around a bad one (a map, not a header).
    await batcher.send(wire.encodeBatch('batcher', [message(1, 'one'), Buffer.from('810101', 'hex'), message(2, 'two')]))
    await until(() => rec.messages.filter(m => m.type === 'batched').length === 2, 5000, 'the batched messages')
    assert.deepStrictEqual(rec.messages.filter(m => m.type === 'batched').map(m => m.payload.toString()), ['one', 'two'])
    const after = n1.stats()
    assert.deepStrictEqual([after.recv_private - before.recv_private, after.malformed - before.malformed, after.lost - before.lost], [2, 1, 0])
    batcher.close()
  })

  it('counts bad frames on its ROUTER and goes on serving', async () => {
    const zmq = require('zeromq')
    const evil = new zmq.Dealer({ routingId: 'evil', linger: 0 })
    evil.connect(n1.routerEndpoint)
    const before = n1.stats()
    //  A spoofed sender (docs/PROTOCOL.md vector spoofed-sender), two
    //  frames, a hostile length, a foreign version.
    await evil.send(Buffer.from('960103a6736563726574a5616c7068610700', 'hex'))
    await evil.send([Buffer.from('9601', 'hex'), Buffer.from('00', 'hex')])
    await evil.send(Buffer.from('ddffffffff0101', 'hex'))
    await evil.send(Buffer.from('9603', 'hex'))
    await until(() => n1.stats().malformed === before.malformed + 3 && n1.stats().bad_version === before.bad_version + 1, 5000, 'the drops to be counted')
    evil.close()
    assert.strictEqual(await n1.request('c1', 'echo', 'still here'), 'still here')
  })

  it('answers a C node waiting for its publishes to reach it (zc.probe, zc.reached)', async () => {
    assert.match(await c1.command('reach 1 5000', 7000), /^ok reach/)
  })

  it('takes a kill request from a C node as an event', async () => {
    assert.match(await c1.command('kill n1 5'), /^ok kill/)
    await until(() => rec.kills.includes('c1 5'), 5000, 'the kill event')
  })

  it('sees another JavaScript peer, and a C node sees it leave during a call: peer gone, left', async () => {
    const n2 = new Peer({ id: 'n2', redis: redis.url, cluster: CLUSTER })
    methods(n2)
    await n2.start()
    await c1.expect('added n2')
    await until(() => rec.added.includes('n2'), 5000, 'n1 to add n2')
    assert.strictEqual(await n1.request('n2', 'add', [2, 3]), 5)
    c1.send('call g1 n2 sleep 5000 3000')
    await until(() => n2.rpc.stats.requests_handled === 2, 5000, 'n2 to take the call') //  after n1's add
    await n2.stop()
    assert.match(await c1.expect('reply g1 n2 '), /^reply g1 n2 peer gone /)
    await c1.expect('removed n2 left')
    await until(() => rec.removed.includes('n2 left'), 5000, 'n1 to see n2 leave')
  })

  it('sees a C node crash during a call: peer gone, crashed', async () => {
    const c2 = await startCNode(redis, 'c2', CLUSTER)
    await until(() => rec.added.includes('c2'), 5000, 'n1 to add c2')
    await c1.expect('added c2')
    //  A crash is removed at once only by a majority of votes (c1's and
    //  n1's), and only a connection that was up is a vote: both SUBs must
    //  hear c2 before it dies, else the lease decides (expired).
    assert.match(await c2.command('reach 2 5000', 7000), /^ok reach/)
    await connected(n1, 'c2')
    const pending = n1.call('c2', 'sleep', 5000, { timeout: 4000 })
    await c2.kill('SIGKILL')
    const outcome = await pending
    assert.deepStrictEqual([outcome.status, outcome.replies[0].node], [STATUS.peerGone, 'c2'])
    await until(() => rec.removed.includes('c2 crashed'), 5000, 'n1 to see c2 crash')
    await c1.expect('removed c2 crashed')
  })

  it('peer-cli.js: the console a test drives, seen crashing by a C node', async () => {
    const cli = new Console(process.execPath, [path.join(__dirname, '..', 'peer-cli.js'), '--id', 'n3', '--redis', redis.url, '--cluster', CLUSTER])
    assert.match(await cli.expect('ready '), /^ready n3 tcp:\/\/127\.0\.0\.1:\d+ tcp:\/\/127\.0\.0\.1:\d+$/)
    await cli.expect('added c1')
    await c1.expect('added n3')
    cli.send('call x c1 echo 2000 hi')
    await cli.expect('reply x c1 ok "hi"')
    await cli.expect('result x status=ok replies=1 missing=')
    assert.match(await cli.command('whisper c1 pt from-cli'), /^ok whisper/)
    await c1.expect('msg private n3 - pt 2 from-cli') //  the call took seq 1
    assert.match(await cli.command('bogus'), /^error bogus: /)
    //  As for c2 above: c1's and n1's connections to n3's PUB must be up.
    await sendUntil(() => cli.command('publish pt from-n3'), ms => c1.expect(/^msg public n3 - pt \d+ from-n3$/, ms), 'n3 publish')
    await connected(n1, 'n3')
    await sendUntil(() => c1.command('confirm ready-1'), async ms => {
      const answer = await cli.command(`wait ready-1 1 ${ms}`)
      if (answer !== 'ok wait c1') throw new Error(answer)
    }, 'a confirmation')
    await cli.kill('SIGKILL')
    await c1.expect('removed n3 crashed')
    await until(() => rec.removed.includes('n3 crashed'), 5000, 'n1 to see n3 crash')
  })

  it('puts its presence back when the registry\'s keys are deleted, and nobody is removed', async () => {
    const client = new Redis(redisOptions(redis.url))
    try {
      const key = suffix => `zc:{${CLUSTER}}:${suffix}`
      const present = async id => (await client.sismember(key('nodes'), id)) === 1 &&
        (await client.hget(key('node:' + id), 'id')) === id && (await client.zscore(key('leases'), id)) !== null
      assert.ok(await present('n1'), 'n1 has a record, a set entry and a lease deadline')
      const inc = await client.hget(key('node:n1'), 'inc')
      const lost = c1.lines.length
      await client.del(...await client.keys(key('*')))
      await until(async () => (await present('n1')) && (await present('c1')), 5000, 'n1 and c1 to put themselves back')
      assert.strictEqual(await client.hget(key('node:n1'), 'inc'), inc, 'the same incarnation')
      //  A known peer missing from the set is taken as gone after a lease
      //  TTL (2000 ms): wait past it, then nobody may have been removed.
      await new Promise(resolve => setTimeout(resolve, 3000))
      assert.deepStrictEqual(rec.removed.filter(r => r.startsWith('c1 ')), [])
      assert.deepStrictEqual(c1.lines.slice(lost).filter(l => l.startsWith('removed n1')), [])
      assert.deepStrictEqual(n1.peers(), ['c1'])
    } finally {
      client.disconnect()
    }
  })

  it('a frozen peer is removed at its lease\'s expiry, and comes back as a new incarnation', async () => {
    const cli = new Console(process.execPath, [path.join(__dirname, '..', 'peer-cli.js'), '--id', 'n4', '--redis', redis.url, '--cluster', CLUSTER])
    await cli.expect('ready ')
    await c1.expect('added n4')
    await until(() => rec.added.includes('n4'), 5000, 'n1 to add n4')
    cli.child.kill('SIGSTOP')
    //  Its connections stay up (heartbeats time out after 20 s): nobody
    //  votes, and the lease (2000 ms) decides.
    await c1.expect('removed n4 expired', 8000)
    await until(() => rec.removed.includes('n4 expired'), 5000, 'n1 to see n4 expire')
    cli.child.kill('SIGCONT')
    await c1.expect('added n4', 8000)
    await until(() => rec.added.filter(id => id === 'n4').length === 2, 5000, 'n1 to add n4 again')
    assert.deepStrictEqual(await cli.close(), { code: 0, signal: null })
    await c1.expect('removed n4 left')
    await until(() => rec.removed.includes('n4 left'), 5000, 'n1 to see n4 leave')
  })

  it('asks a C node to exit: it leaves with the code', async () => {
    await n1.kill('c1', 3)
    assert.deepStrictEqual(await c1.exited, { code: 3, signal: null })
    await until(() => rec.removed.includes('c1 left'), 5000, 'n1 to see c1 leave')
    assert.deepStrictEqual(n1.peers(), [])
  })
})
