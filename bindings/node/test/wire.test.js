'use strict'
/*  The JavaScript codec against every vector of docs/PROTOCOL.md, as
    tests/test_wire.c checks the C one: the result a receiver reaches, the
    fields, where the topic and header end, and the canonical bytes. */
const test = require('node:test')
const assert = require('node:assert')
const wire = require('../lib/wire')
const { decodeError, encodeError } = require('../lib/rpc')
const { loadVectors, hexBytes } = require('./helpers')

const vectors = loadVectors()

function fields (text) {
  const out = {}
  for (const pair of (text || '').split(' ').filter(p => p)) {
    const i = pair.indexOf('=')
    out[pair.slice(0, i)] = pair.slice(i + 1)
  }
  return out
}

//  What a receiver of section 9 concludes about vector v.
function receive (v) {
  const frames = v.frames.map(f => hexBytes(f))
  const first = frames[0] || { bytes: Buffer.alloc(0), marks: [] }
  if (v.via === 'pub') return { d: wire.decodeMessage(frames.map(f => f.bytes), 'sub'), first }
  if (v.via === 'router') {
    const id = hexBytes(v['routing-id']).bytes
    return { d: wire.decodeMessage([id, ...frames.map(f => f.bytes)], 'router'), first }
  }
  if (v.via === 'header') return { d: wire.decodeHeader(first.bytes, 0), first }
  return { d: wire.decodeTopic(first.bytes), first }
}

test('the document has the vectors', () => {
  assert.ok(vectors.length >= 70, `only ${vectors.length} vectors`)
})

for (const v of vectors.filter(x => x.batch !== 'yes')) {
  test(`vector ${v.name}`, () => {
    const { d, first } = receive(v)
    assert.strictEqual(d.result, v.result)
    const want = fields(v.decoded)
    if (d.result === 'bad_version') {
      if (want.version !== undefined) assert.strictEqual(String(d.version), want.version)
      if (want.sender !== undefined) assert.strictEqual(d.sender, want.sender)
      return
    }
    if (d.result !== 'ok') return
    if (v.via === 'topic') {
      assert.strictEqual(String(d.kind), want.kind)
      if (first.marks.length) assert.strictEqual(d.end, first.marks[0])
      return
    }
    const h = d.msg || d.header
    for (const key of ['version', 'kind', 'type', 'sender', 'seq', 'corr', 'group']) {
      if (want[key] !== undefined) assert.strictEqual(String(h[key]), want[key], key)
    }
    const headerEnd = v.via === 'header' ? d.end : first.bytes.length - d.msg.payload.length
    //  A `header` vector with nothing after its header has no mark.
    const marked = first.marks.length ? first.marks[first.marks.length - 1] : first.bytes.length
    assert.strictEqual(headerEnd, marked, 'where the header ends')
    if (v.canonical === 'yes') {
      const header = { kind: h.kind, type: h.type, sender: h.sender, seq: h.seq, corr: h.corr }
      const payload = first.bytes.subarray(headerEnd)
      const frame = v.via === 'header'
        ? Buffer.concat([wire.encodeHeader(header), payload])
        : wire.encodeFrame(header, payload, h.group)
      assert.ok(frame.equals(first.bytes), `canonical bytes: ${frame.toString('hex')}`)
    }
  })
}

//  Batch frames (section 8.1): the frame judged whole, then each entry.
for (const v of vectors.filter(x => x.batch === 'yes')) {
  test(`batch vector ${v.name}`, () => {
    const frames = v.frames.map(f => hexBytes(f).bytes)
    const router = v.via === 'router'
    const input = router ? [hexBytes(v['routing-id']).bytes, ...frames] : frames
    const outs = wire.decodeFrames(input, router ? 'router' : 'sub')
    if (v.result === 'malformed') {
      assert.deepStrictEqual(outs.map(o => o.result), ['malformed'])
      assert.strictEqual(v.entries, undefined)
      return
    }
    assert.strictEqual(outs.length, v.entries.length)
    outs.forEach((o, i) => {
      const [result, ...rest] = v.entries[i].split(' ')
      assert.strictEqual(o.result, result, `entry ${i}`)
      if (result !== 'ok') return
      const want = fields(rest.join(' '))
      for (const key of ['version', 'kind', 'type', 'sender', 'seq', 'corr', 'group']) {
        if (want[key] !== undefined) assert.strictEqual(String(o.msg[key]), want[key], key)
      }
      assert.strictEqual(o.msg.payload.toString('hex'), want.payload)
    })
    if (v.canonical === 'yes') {
      const messages = outs.map(o => Buffer.concat([wire.encodeHeader(o.msg), o.msg.payload]))
      const topic = router ? null : wire.encodeTopic(outs[0].msg.group === null ? undefined : outs[0].msg.group)
      const frame = wire.encodeBatch(outs[0].msg.sender, messages, topic)
      assert.ok(frame.equals(frames[0]), `canonical bytes: ${frame.toString('hex')}`)
    }
  })
}

test('a version-1 receiver refuses a batch frame whole, as a foreign version', () => {
  const v = vectors.find(x => x.name === 'batch-public')
  const outs = wire.decodeFrames([hexBytes(v.frames[0]).bytes], 'sub', 1)
  assert.deepStrictEqual(outs.map(o => o.result), ['bad_version'])
  assert.ok(!outs.batch)
  assert.ok(wire.decodeFrames([hexBytes(v.frames[0]).bytes], 'sub').batch)
})

test('zc.error payloads: the vectors of section 14.8, written and read', () => {
  for (const v of vectors.filter(x => (x.rpc || '').startsWith('error '))) {
    const { first } = receive(v)
    const payload = first.bytes.subarray(first.marks[first.marks.length - 1])
    const e = decodeError(payload)
    const m = v.rpc.match(/^error status=(\d+) code=(-?\d+) message=(.*)$/)
    assert.deepStrictEqual([e.status, e.code, e.message], [Number(m[1]), Number(m[2]), m[3]], v.name)
    if (fields(v.decoded).sender === 'beta') assert.ok(encodeError(e.status, e.code, e.message).equals(payload), v.name)
  }
})

test('names: 255 bytes pass, 256 do not, nor controls, space or DEL', () => {
  assert.ok(wire.nameValid('x'.repeat(255)))
  assert.ok(!wire.nameValid('x'.repeat(256)))
  for (const bad of ['', 'a b', 'a\x00b', 'a\x7f', 'a\tb']) assert.ok(!wire.nameValid(bad), JSON.stringify(bad))
  assert.throws(() => wire.encodeHeader({ kind: 1, type: 'a b', sender: 'x', seq: 1 }))
})

test('hostile lengths are malformed without allocating their size', () => {
  for (const hex of ['dd ff ff ff ff 01', '96 01 01 db ff ff ff ff 67', '97 01 01 a1 74 a1 73 01 00 df ff ff ff ff']) {
    assert.strictEqual(wire.decodeHeader(hexBytes(hex).bytes).result, 'malformed', hex)
  }
})
