'use strict'
/*  wire — the zcluster wire protocol (docs/PROTOCOL.md): names, topics,
    headers and frames of version 1, and the batch frames of version 2
    (section 8.1), which this peer reads (it sends one message per frame).

    Why a hand-written reader: a generic msgpack decoder cannot tell a
    signed int from an unsigned one or bin from str (the protocol refuses
    both), and it allocates by whatever count a frame declares. This reader
    checks every length against the bytes present and skips unknown
    trailing header fields without building them.
*/

const VERSION = 1
//  Batch frames: [2, 6, "zc.batch", sender, count] then count bins.
const BATCH_VERSION = 2
const BATCH_KIND = 6
const BATCH_TYPE = 'zc.batch'
//  The highest version this peer reads, advertised in its registry record.
const READS = BATCH_VERSION
const KIND = { public: 1, group: 2, private: 3, request: 4, reply: 5 }
const KIND_NAMES = [null, 'public', 'group', 'private', 'request', 'reply']
const NAME_MAX = 255
const TOPIC_MAX = 1 + NAME_MAX + 1

//  A name: 1..255 bytes, none of them 00..20 or 7f (section 5).
function nameValid (name) {
  const bytes = typeof name === 'string' ? Buffer.from(name) : name
  if (!Buffer.isBuffer(bytes) || bytes.length < 1 || bytes.length > NAME_MAX) return false
  for (const b of bytes) if (b <= 0x20 || b === 0x7f) return false
  return true
}

//  --------------------------------------------------------------------------
//  Encoding (canonical: the smallest form of every value)

function s_uint (value) {
  const v = BigInt(value)
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError('not a uint64: ' + value)
  if (v <= 0x7fn) return Buffer.from([Number(v)])
  if (v <= 0xffn) return Buffer.from([0xcc, Number(v)])
  if (v <= 0xffffn) {
    const b = Buffer.alloc(3); b[0] = 0xcd; b.writeUInt16BE(Number(v), 1); return b
  }
  if (v <= 0xffffffffn) {
    const b = Buffer.alloc(5); b[0] = 0xce; b.writeUInt32BE(Number(v), 1); return b
  }
  const b = Buffer.alloc(9); b[0] = 0xcf; b.writeBigUInt64BE(v, 1); return b
}

function s_str (text) {
  const body = Buffer.from(text)
  if (body.length <= 31) return Buffer.concat([Buffer.from([0xa0 | body.length]), body])
  if (body.length <= 0xff) return Buffer.concat([Buffer.from([0xd9, body.length]), body])
  throw new RangeError('name too long')
}

//  The header [version, kind, type, sender, seq, corr] as bytes.
function encodeHeader ({ kind, type, sender, seq, corr = 0 }) {
  if (!(kind >= 1 && kind <= 5)) throw new RangeError('invalid kind ' + kind)
  if (!nameValid(type)) throw new RangeError(`invalid message type '${type}'`)
  if (!nameValid(sender)) throw new RangeError(`invalid sender '${sender}'`)
  return Buffer.concat([Buffer.from([0x96, VERSION, kind]), s_str(type), s_str(sender),
    s_uint(seq), s_uint(corr)])
}

//  The topic of a public (no group) or group message.
function encodeTopic (group) {
  if (group === undefined || group === null) return Buffer.from('P')
  if (!nameValid(group)) throw new RangeError(`invalid group name '${group}'`)
  return Buffer.concat([Buffer.from('G'), Buffer.from(group), Buffer.from([0])])
}

//  One frame: topic (PUB path only), header, payload.
function encodeFrame (header, payload = Buffer.alloc(0), group) {
  const parts = [encodeHeader(header), Buffer.from(payload)]
  if (header.kind === KIND.public) parts.unshift(encodeTopic())
  else if (header.kind === KIND.group) parts.unshift(encodeTopic(group))
  return Buffer.concat(parts)
}

//  A batch frame of version-1 messages (each a header and payload, as
//  encodeFrame writes them without a topic) for one sender and stream,
//  behind topic (a Buffer from encodeTopic; none on the DEALER path).
function encodeBatch (sender, messages, topic) {
  if (!nameValid(sender)) throw new RangeError(`invalid sender '${sender}'`)
  const parts = [Buffer.from([0x95, BATCH_VERSION, BATCH_KIND]), s_str(BATCH_TYPE), s_str(sender),
    s_uint(messages.length)]
  for (const m of messages) {
    const len = m.length
    if (len <= 0xff) parts.push(Buffer.from([0xc4, len]))
    else if (len <= 0xffff) parts.push(Buffer.from([0xc5, len >> 8, len & 0xff]))
    else { const b = Buffer.alloc(5); b[0] = 0xc6; b.writeUInt32BE(len, 1); parts.push(b) }
    parts.push(m)
  }
  if (topic) parts.unshift(topic)
  return Buffer.concat(parts)
}

//  --------------------------------------------------------------------------
//  Decoding: a cursor over untrusted bytes. Every read returns undefined
//  when the bytes run out or the type is not the one asked for.

class Reader {
  constructor (buf, pos = 0) { this.buf = buf; this.pos = pos }
  left () { return this.buf.length - this.pos }
  byte () { return this.left() >= 1 ? this.buf[this.pos++] : undefined }
  be (n) {
    if (this.left() < n) return undefined
    let v = 0n
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.buf[this.pos++])
    return v
  }

  array () {
    const t = this.byte()
    if (t === undefined) return undefined
    if (t >= 0x90 && t <= 0x9f) return t & 0x0f
    if (t === 0xdc || t === 0xdd) {
      const n = this.be(t === 0xdc ? 2 : 4)
      return n === undefined ? undefined : Number(n)
    }
    return undefined
  }

  //  An unsigned int in any width, as a Number when exact, else a BigInt.
  uint () {
    const t = this.byte()
    if (t === undefined) return undefined
    if (t <= 0x7f) return t
    const n = { 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8 }[t]
    const v = n ? this.be(n) : undefined
    if (v === undefined) return undefined
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
  }

  //  A bin's bytes (c4, c5, c6), or undefined.
  bin () {
    const t = this.byte()
    const n = { 0xc4: 1, 0xc5: 2, 0xc6: 4 }[t]
    const len = n ? this.be(n) : undefined
    if (len === undefined || len > BigInt(this.left())) return undefined
    const bytes = this.buf.subarray(this.pos, this.pos + Number(len))
    this.pos += Number(len)
    return bytes
  }

  str () {
    const t = this.byte()
    if (t === undefined) return undefined
    let len
    if (t >= 0xa0 && t <= 0xbf) len = t & 0x1f
    else if (t === 0xd9 || t === 0xda || t === 0xdb) {
      const n = this.be(t === 0xd9 ? 1 : t === 0xda ? 2 : 4)
      len = n === undefined ? undefined : Number(n)
    }
    if (len === undefined || len > this.left()) return undefined
    const bytes = this.buf.subarray(this.pos, this.pos + len)
    this.pos += len
    return bytes
  }

  //  Skips one msgpack object of any type, without recursion: `pending`
  //  counts the objects still to skip. Returns false if it runs out.
  skip () {
    let pending = 1
    while (pending > 0) {
      pending--
      const t = this.byte()
      if (t === undefined) return false
      let data = 0
      let add = 0
      if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) data = 0
      else if (t >= 0x80 && t <= 0x8f) add = 2 * (t & 0x0f)
      else if (t >= 0x90 && t <= 0x9f) add = t & 0x0f
      else if (t >= 0xa0 && t <= 0xbf) data = t & 0x1f
      else {
        const fixed = { 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8, 0xd4: 2, 0xd5: 3, 0xd6: 5, 0xd7: 9, 0xd8: 17 }[t]
        const lenBytes = { 0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4, 0xc7: 1, 0xc8: 2, 0xc9: 4 }[t]
        const countBytes = { 0xdc: 2, 0xdd: 4, 0xde: 2, 0xdf: 4 }[t]
        if (fixed !== undefined) data = fixed
        else if (lenBytes !== undefined) {
          const n = this.be(lenBytes)
          if (n === undefined) return false
          data = Number(n) + (t >= 0xc7 && t <= 0xc9 ? 1 : 0) //  ext: a type byte
        } else if (countBytes !== undefined) {
          const n = this.be(countBytes)
          if (n === undefined) return false
          add = Number(n) * (t >= 0xde ? 2 : 1)
        } else return false //  0xc1: never used
      }
      if (data > this.left()) return false
      this.pos += data
      //  Every object takes at least one byte: a count beyond what is left
      //  is malformed, whatever it claims.
      pending += add
      if (pending > this.left()) return false
    }
    return true
  }
}

const OK = 'ok'
const MALFORMED = 'malformed'
const BAD_VERSION = 'bad_version'

//  Reads a header at buf[pos]. Returns {result: 'ok', header, end} (end: the
//  offset of the payload), {result: 'bad_version', version, sender?} or
//  {result: 'malformed'}.
function decodeHeader (buf, pos = 0) {
  const r = new Reader(buf, pos)
  const count = r.array()
  if (count === undefined || count < 1) return { result: MALFORMED }
  const version = r.uint()
  if (version === undefined) return { result: MALFORMED }
  if (version !== VERSION) {
    //  The sender may still be named, for the log; nothing else is trusted.
    const out = { result: BAD_VERSION, version }
    const kind = count >= 4 ? r.uint() : undefined
    const type = kind !== undefined ? r.str() : undefined
    const sender = type !== undefined ? r.str() : undefined
    if (sender && nameValid(sender)) out.sender = sender.toString()
    return out
  }
  if (count < 6) return { result: MALFORMED }
  const kind = r.uint()
  const type = r.str()
  const sender = type !== undefined ? r.str() : undefined
  const seq = sender !== undefined ? r.uint() : undefined
  const corr = seq !== undefined ? r.uint() : undefined
  if (corr === undefined || !(kind >= 1 && kind <= 5) || !nameValid(type) || !nameValid(sender)) return { result: MALFORMED }
  for (let i = 6; i < count; i++) if (!r.skip()) return { result: MALFORMED }
  return {
    result: OK,
    header: { version, kind, type: type.toString(), sender: sender.toString(), seq, corr },
    end: r.pos
  }
}

//  Reads a topic at the start of frame. Returns {result: 'ok', kind, group,
//  end} or {result: 'malformed'}.
function decodeTopic (frame) {
  if (frame.length >= 1 && frame[0] === 0x50) return { result: OK, kind: KIND.public, group: null, end: 1 }
  if (frame.length < 3 || frame[0] !== 0x47) return { result: MALFORMED }
  const limit = Math.min(frame.length, TOPIC_MAX)
  const nul = frame.subarray(1, limit).indexOf(0)
  if (nul <= 0) return { result: MALFORMED }
  const name = frame.subarray(1, 1 + nul)
  if (!nameValid(name)) return { result: MALFORMED }
  return { result: OK, kind: KIND.group, group: name.toString(), end: nul + 2 }
}

//  Reads a batch frame at buf[pos] (after the topic) and checks it whole
//  (section 8.1). Returns {result: 'ok', sender, entries: [Buffer...]},
//  {result: 'bad_version'} when it is not a batch (version not 2: judge it
//  as a message), or {result: 'malformed'}.
function decodeBatch (buf, pos = 0) {
  const r = new Reader(buf, pos)
  const count = r.array()
  const version = count === undefined || count < 1 ? undefined : r.uint()
  if (version === undefined) return { result: MALFORMED }
  if (version !== BATCH_VERSION) return { result: BAD_VERSION, version }
  if (count < 5) return { result: MALFORMED }
  const kind = r.uint()
  const type = kind === BATCH_KIND ? r.str() : undefined
  const sender = type !== undefined && type.toString() === BATCH_TYPE ? r.str() : undefined
  const entries = sender !== undefined && nameValid(sender) ? r.uint() : undefined
  //  Every entry takes two bytes at least: a larger count is refused first.
  if (!(typeof entries === 'number' && entries >= 1 && entries <= r.left() / 2)) return { result: MALFORMED }
  for (let i = 5; i < count; i++) if (!r.skip()) return { result: MALFORMED }
  const out = []
  for (let i = 0; i < entries; i++) {
    const entry = r.bin()
    if (entry === undefined) return { result: MALFORMED }
    out.push(entry)
  }
  if (r.left() !== 0) return { result: MALFORMED }
  return { result: OK, sender: sender.toString(), entries: out }
}

//  Applies the receiver's checks of section 9 to one message as read from a
//  socket: `frames` (an array of Buffers) from the SUB, or from the ROUTER
//  (routing id first). Returns {result: 'ok', msg} with msg {kind, type,
//  sender, seq, corr, group, payload}, or {result: 'malformed' |
//  'bad_version', sender?}.
function decodeMessage (frames, via) {
  const router = via === 'router'
  if (frames.length !== (router ? 2 : 1)) return { result: MALFORMED }
  const frame = frames[frames.length - 1]
  let topic = { kind: null, group: null, end: 0 }
  if (!router) {
    topic = decodeTopic(frame)
    if (topic.result !== OK) return topic
  }
  const decoded = decodeHeader(frame, topic.end)
  if (decoded.result !== OK) return decoded
  const h = decoded.header
  if (router) {
    if (!frames[0].equals(Buffer.from(h.sender))) return { result: MALFORMED, sender: h.sender }
    if (h.kind < KIND.private) return { result: MALFORMED, sender: h.sender }
  } else if (h.kind !== topic.kind) return { result: MALFORMED, sender: h.sender }
  return {
    result: OK,
    msg: { ...h, group: topic.group, payload: frame.subarray(decoded.end) }
  }
}

//  The header and payload of one message (a frame without its topic, or a
//  batch entry) judged for its path: the topic's kind on the SUB, the
//  private-plane kinds and the routing id (or batch sender) on the ROUTER.
function s_judge (bytes, pos, topic, router, sender) {
  const decoded = decodeHeader(bytes, pos)
  if (decoded.result !== OK) return decoded
  const h = decoded.header
  if (sender !== null && !sender.equals(Buffer.from(h.sender))) return { result: MALFORMED, sender: h.sender }
  if (router ? h.kind < KIND.private : h.kind !== topic.kind) return { result: MALFORMED, sender: h.sender }
  return { result: OK, msg: { ...h, group: topic.group, payload: bytes.subarray(decoded.end) } }
}

//  The receiver of sections 8.1 and 9: what one read from the SUB or the
//  ROUTER (routing id first) holds, as a list of outcomes, one per message
//  ({result: 'ok', msg} or {result: 'malformed' | 'bad_version', sender?});
//  a batch frame whose framing is broken is one 'malformed'. The list has
//  batch: true when the frame was a batch. reads: the highest version the
//  receiver reads; 1 refuses batch frames as a version-1 receiver does.
function decodeFrames (frames, via, reads = READS) {
  const router = via === 'router'
  if (frames.length !== (router ? 2 : 1)) return [{ result: MALFORMED }]
  const frame = frames[frames.length - 1]
  let topic = { kind: null, group: null, end: 0 }
  if (!router) {
    topic = decodeTopic(frame)
    if (topic.result !== OK) return [topic]
  }
  const batch = reads >= BATCH_VERSION ? decodeBatch(frame, topic.end) : { result: BAD_VERSION }
  if (batch.result === BAD_VERSION) return [s_judge(frame, topic.end, topic, router, router ? frames[0] : null)]
  if (batch.result !== OK) return Object.assign([batch], { batch: true })
  const sender = Buffer.from(batch.sender)
  if (router && !frames[0].equals(sender)) return Object.assign([{ result: MALFORMED, sender: batch.sender }], { batch: true })
  return Object.assign(batch.entries.map(entry => s_judge(entry, 0, topic, router, sender)), { batch: true })
}

module.exports = {
  VERSION,
  BATCH_VERSION,
  READS,
  KIND,
  KIND_NAMES,
  NAME_MAX,
  nameValid,
  encodeHeader,
  encodeTopic,
  encodeFrame,
  decodeHeader,
  decodeTopic,
  decodeMessage,
  encodeBatch,
  decodeBatch,
  decodeFrames,
  Reader
}
