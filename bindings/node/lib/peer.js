'use strict'
/*  peer — a zcluster node in plain JavaScript: the sockets of the wire
    protocol (docs/PROTOCOL.md), its place in the Redis registry
    (docs/REGISTRY.md) and RPC, without the C library.

    One PUB and one ROUTER bound; one SUB connected to every peer's PUB and
    one DEALER per peer connected to its ROUTER (routing id = this node's
    id). Every message it sends is one frame: topic (PUB path), header,
    payload; it reads batch frames too (docs/PROTOCOL.md section 8.1), and
    says so in its registry record (`wire`), so C nodes may batch to it.

    Events: 'message' (msg: {kind, type, sender, group, seq, corr, payload}),
    'added' (id, record), 'removed' (id, reason: left | expired | crashed),
    'unreachable' (id) and 'reachable' (id): a member whose connection from
    here dropped stays a member (only the registry removes it), and is back,
    'kill' (from, code), 'confirm' (from, name), 'warning' (error).
*/
const { EventEmitter } = require('node:events')
const crypto = require('node:crypto')
const zmq = require('zeromq')
const msgpack = require('@msgpack/msgpack')
const wire = require('./wire')
const { Registry } = require('./registry')
const { Rpc } = require('./rpc')
const security = require('./security')

const { KIND } = wire
const MAX_PAYLOAD_DEFAULT = 1048576
const TRANSPORT_SLACK = 65536
const HWM = 100000
const TOMBSTONE_MS = 60000
//  zc.leave must reach the peers before the PUB closes.
const LEAVE_LINGER_MS = 1000

function s_payload (data) {
  if (data === undefined || data === null) return Buffer.alloc(0)
  return Buffer.isBuffer(data) ? data : Buffer.from(data)
}

//  Sends frames one after the other on a socket: zeromq.js refuses a send
//  while another waits.
class s_Sender {
  constructor (socket) { this.socket = socket; this.chain = Promise.resolve() }
  send (frame) {
    const next = this.chain.then(() => this.socket.closed ? undefined : this.socket.send(frame))
    this.chain = next.catch(() => {})
    return next
  }
}

class Peer extends EventEmitter {
  //  options: {id, redis (URL), cluster, bind (host, default 127.0.0.1),
  //  groups, headers, leaseTtl, heartbeatInterval, heartbeatTimeout (ms;
  //  the C nodes' settings and defaults), maxPayload, keys (the cluster
  //  credentials file, else $ZC_KEYS; none: plaintext), wire (the highest
  //  protocol version it reads and says it reads: 2, or 1 to behave as a
  //  version-1 peer that refuses batch frames)}.
  constructor (options = {}) {
    super()
    this.id = options.id || process.env.ZC_NODE_ID || 'node-' + crypto.randomBytes(4).toString('hex')
    if (!wire.nameValid(this.id)) throw new Error(`invalid node id '${this.id}'`)
    this.redisUrl = options.redis || process.env.ZC_REDIS_URL
    this.cluster = options.cluster || process.env.ZC_CLUSTER || 'zcluster'
    this.bindHost = options.bind || '127.0.0.1'
    this.leaseTtl = options.leaseTtl || Number(process.env.ZC_LEASE_TTL) || 2000
    //  Heartbeats only time "unreachable from here" (a cut link, both ends
    //  alive): removal does not wait for them, and each one is a wake-up.
    this.heartbeatInterval = options.heartbeatInterval || Number(process.env.ZC_HEARTBEAT_INTERVAL) || 10000
    this.heartbeatTimeout = options.heartbeatTimeout || Number(process.env.ZC_HEARTBEAT_TIMEOUT) || 20000
    this.maxPayload = options.maxPayload || MAX_PAYLOAD_DEFAULT
    this.wire = options.wire || wire.READS
    this.headers = { ...(options.headers || {}) }
    this.groups = new Set()
    for (const g of options.groups || []) this.s_checkName(g, 'group name')
    for (const g of options.groups || []) this.groups.add(g)
    this.members = new Map() //  id -> {inc, record, dealer, sender, connected, seq}
    this.tombstones = new Map() //  incarnation -> expiry (ms)
    this.seqPublic = 0
    this.seqGroup = new Map()
    this.expected = new Map() //  sender + stream -> next seq
    this.confirmations = new Map() //  name -> Set of ids
    this.counters = {
      sent_public: 0, sent_group: 0, sent_private: 0, recv_public: 0, recv_group: 0, recv_private: 0,
      lost: 0, malformed: 0, bad_version: 0, oversized: 0, no_route: 0, peers_lost: 0,
      recv_batches: 0
    }
    this.keysPath = options.keys !== undefined ? options.keys : process.env.ZC_KEYS
    this.keys = null //  {publicKey, secretKey} once loaded
    this.mismatched = new Set() //  peers not added for their credentials, said once
    this.rpc = new Rpc(this)
    this.started = false
  }

  s_checkName (name, what) {
    if (!wire.nameValid(name)) throw new Error(`invalid ${what} '${name}'`)
  }

  //  The options zcluster sets (PROTOCOL.md section 1): linger 0, high-water
  //  marks of 100000 (on the directions a socket has), the largest frame.
  s_options (sends, receives, extra) {
    const o = { linger: 0, maxMessageSize: this.maxPayload + TRANSPORT_SLACK, ...extra }
    if (sends) o.sendHighWaterMark = HWM
    if (receives) o.receiveHighWaterMark = HWM
    return o
  }

  //  Binds the sockets, starts receiving and registers in the cluster.
  async start () {
    if (!this.redisUrl) throw new Error('no Redis URL (give one, or set ZC_REDIS_URL)')
    if (this.keysPath) {
      this.keys = security.loadKeys(this.keysPath)
      await security.zapAcquire()
    }
    const server = security.serverOptions(this.keys)
    this.pub = new zmq.Publisher(this.s_options(true, false, { linger: LEAVE_LINGER_MS, ...server }))
    this.router = new zmq.Router(this.s_options(true, true, { handover: true, ...server }))
    this.sub = new zmq.Subscriber(this.s_options(false, true, {
      heartbeatInterval: this.heartbeatInterval,
      heartbeatTimeout: this.heartbeatTimeout,
      heartbeatTimeToLive: this.heartbeatTimeout,
      handshakeInterval: this.heartbeatTimeout,
      ...security.clientOptions(this.keys)
    }))
    await this.pub.bind(`tcp://${this.bindHost}:*`)
    await this.router.bind(`tcp://${this.bindHost}:*`)
    this.pubEndpoint = this.pub.lastEndpoint
    this.routerEndpoint = this.router.lastEndpoint
    this.pubSender = new s_Sender(this.pub)
    this.sub.subscribe('P')
    for (const g of this.groups) this.sub.subscribe(wire.encodeTopic(g))
    //  Up once the handshake succeeded: a peer that cannot authenticate
    //  never connects, so it is never lost.
    this.sub.events.on('handshake', e => this.s_connection(e.address, true))
    this.sub.events.on('disconnect', e => this.s_connection(e.address, false))
    this.s_receive(this.sub, 'sub')
    this.s_receive(this.router, 'router')
    this.registry = new Registry({ url: this.redisUrl, cluster: this.cluster, id: this.id, leaseTtl: this.leaseTtl })
    this.registry.on('add', record => this.s_add(record))
    this.registry.on('update', record => { const m = this.members.get(record.id); if (m) m.record = record })
    this.registry.on('remove', (id, inc, reason, tombstone) => this.s_remove(id, inc, reason, tombstone))
    this.registry.on('warning', e => this.emit('warning', e))
    this.started = true
    try {
      await this.s_register()
    } catch (e) {
      //  Nothing stays open: a failed start leaves no socket nor timer.
      this.started = false
      await this.registry.stop().catch(() => {}) //  a record half made goes too
      this.rpc.close()
      for (const id of [...this.members.keys()]) this.s_drop(id)
      for (const socket of [this.sub, this.router, this.pub]) socket.close()
      if (this.keys) security.zapRelease()
      throw e
    }
  }

  s_register () {
    return this.registry.start({
      pub: this.pubEndpoint,
      router: this.routerEndpoint,
      curve: this.keys ? this.keys.publicKey : '',
      groups: [...this.groups].join(' '),
      headers: JSON.stringify(this.headers),
      started: String(Date.now()),
      version: 'node-' + require('../package.json').version,
      wire: String(this.wire)
    })
  }

  //  Leaves the cluster: zc.leave on the PUB first (it travels ahead of the
  //  socket close), then the registry's removal ("left"), then the sockets.
  async stop () {
    if (!this.started) return
    this.started = false
    await this.s_publish(KIND.public, null, 'zc.leave', Buffer.alloc(0)).catch(() => {})
    try {
      await this.registry.stop()
    } catch (e) {
      this.emit('warning', e)
    }
    this.rpc.close()
    for (const id of [...this.members.keys()]) this.s_drop(id)
    this.sub.close()
    this.router.close()
    await this.pubSender.chain
    this.pub.close()
    if (this.keys) security.zapRelease()
  }

  //  ------------------------------------------------------------------------
  //  Membership

  s_add (record) {
    const id = record.id
    if (this.tombstones.get(record.inc) > Date.now()) return //  a removal already seen
    if (!security.matches(this.keys, record.curve)) {
      //  It could never complete a handshake with us: adding it would only
      //  make both sides retry.
      if (!this.mismatched.has(id)) this.emit('warning', new Error(`peer ${id} not added: ${this.keys ? (record.curve ? "its CURVE key is not this cluster's key" : 'it has no CURVE key (plaintext)') : 'it uses CURVE and this peer has no keys'} (said once)`))
      this.mismatched.add(id)
      return
    }
    const known = this.members.get(id)
    if (known && known.inc === record.inc) return
    if (known) this.s_remove(id, null, 'crashed', true) //  it restarted
    const dealer = new zmq.Dealer(this.s_options(true, true, {
      //  No heartbeats: the SUB's connection to the same peer watches it.
      routingId: this.id, handshakeInterval: this.heartbeatTimeout,
      ...security.clientOptions(this.keys)
    }))
    try {
      dealer.connect(record.router)
      this.sub.connect(record.pub)
    } catch (e) {
      dealer.close()
      this.emit('warning', new Error(`cannot add peer ${id}: ${e.message}`))
      return
    }
    this.members.set(id, { inc: record.inc, record, dealer, sender: new s_Sender(dealer), connected: false, unreachable: false, seq: 0 })
    this.emit('added', id, record)
  }

  //  Forgets a peer's sockets and sequence state.
  s_drop (id) {
    const m = this.members.get(id)
    if (!m) return null
    this.members.delete(id)
    try { this.sub.disconnect(m.record.pub) } catch (e) {}
    m.dealer.close()
    for (const key of [...this.expected.keys()]) if (key.startsWith(id + '\0')) this.expected.delete(key)
    return m
  }

  //  Removes a peer if the incarnation matches (null: any). A removal the
  //  registry confirmed (or the peer's own leave) leaves a tombstone.
  s_remove (id, inc, reason, tombstone) {
    const m = this.members.get(id)
    if (!m || (inc && m.inc !== inc)) return
    if (tombstone) this.s_tombstone(m.inc)
    this.s_drop(id)
    this.rpc.peerRemoved(id)
    this.emit('removed', id, reason)
  }

  s_tombstone (inc) {
    const now = Date.now()
    for (const [k, t] of this.tombstones) if (t < now) this.tombstones.delete(k)
    this.tombstones.set(inc, now + TOMBSTONE_MS)
  }

  //  The SUB's connection to a peer's PUB came up or dropped. A drop of a
  //  connection that was up means the peer died, went silent, or only the
  //  link from here is bad: so it is not removed here but voted against
  //  (docs/REGISTRY.md), and it stays a member, unreachable from here, until
  //  the registry removes it or the connection is back. Meanwhile messages
  //  and calls to it fail at once, and those waiting on it as peer gone.
  s_connection (address, up) {
    const entry = [...this.members.entries()].find(([, m]) => m.record.pub === address)
    if (!entry) return
    const [id, m] = entry
    if (up) {
      m.connected = true
      if (!m.unreachable) return
      m.unreachable = false
      if (this.registry) this.registry.trust(id).catch(e => this.emit('warning', e))
      this.emit('reachable', id)
      return
    }
    if (!m.connected) return
    m.connected = false
    m.unreachable = true
    this.counters.peers_lost++
    this.rpc.peerRemoved(id, 'unreachable from this node')
    if (this.registry) this.registry.suspect(id).catch(e => this.emit('warning', e))
    this.emit('unreachable', id)
  }

  peers () { return [...this.members.keys()] }

  //  The members whose connection from here dropped (they stay members).
  unreachable () { return [...this.members].filter(([, m]) => m.unreachable).map(([id]) => id) }

  //  ------------------------------------------------------------------------
  //  Groups

  async join (group) {
    this.s_checkName(group, 'group name')
    if (this.groups.has(group)) return
    this.groups.add(group)
    if (this.sub) this.sub.subscribe(wire.encodeTopic(group))
    if (this.registry) await this.registry.update('groups', [...this.groups].join(' '))
  }

  async leave (group) {
    if (!this.groups.delete(group)) throw new Error(`not a member of group '${group}'`)
    if (this.sub) this.sub.unsubscribe(wire.encodeTopic(group))
    for (const key of [...this.expected.keys()]) if (key.endsWith('\0G' + group)) this.expected.delete(key)
    if (this.registry) await this.registry.update('groups', [...this.groups].join(' '))
  }

  //  ------------------------------------------------------------------------
  //  Sending. Payloads are bytes (a Buffer or a string); encode values with
  //  msgpack first to send them as msgpack.

  s_checkSize (payload) {
    if (payload.length > this.maxPayload) {
      const e = new Error(`payload of ${payload.length} bytes is larger than ${this.maxPayload}`)
      e.code = 'EMSGSIZE'
      throw e
    }
  }

  s_publish (kind, group, type, payload) {
    if (!this.pubSender) throw new Error('the peer is not started')
    this.s_checkSize(payload)
    let seq
    if (kind === KIND.public) seq = ++this.seqPublic
    else {
      seq = (this.seqGroup.get(group) || 0) + 1
      this.seqGroup.set(group, seq)
    }
    const frame = wire.encodeFrame({ kind, type, sender: this.id, seq }, payload, group)
    this.counters[kind === KIND.public ? 'sent_public' : 'sent_group']++
    return this.pubSender.send(frame)
  }

  publish (type, data) { return this.s_publish(KIND.public, null, type, s_payload(data)) }

  shout (group, type, data) {
    this.s_checkName(group, 'group name')
    return this.s_publish(KIND.group, group, type, s_payload(data))
  }

  //  Sends a private-plane message (private, request, reply) to a peer.
  //  Returns the send's promise, or null if id is not a peer or is
  //  unreachable from here.
  sendTo (id, kind, type, corr, payload) {
    const m = this.members.get(id)
    if (!m || m.unreachable) {
      this.counters.no_route++
      return null
    }
    this.s_checkSize(payload)
    const frame = wire.encodeFrame({ kind, type, sender: this.id, seq: ++m.seq, corr }, payload)
    this.counters.sent_private++
    const sent = m.sender.send(frame)
    sent.catch(e => this.emit('warning', e))
    return sent
  }

  whisper (id, type, data) {
    const sent = this.sendTo(id, KIND.private, type, 0, s_payload(data))
    if (!sent) {
      const m = this.members.get(id)
      const e = new Error(m ? `peer '${id}' is unreachable from this node` : `no route to node '${id}'`)
      if (m) e.code = 'ENOTCONN'
      return Promise.reject(e)
    }
    return sent
  }

  //  Asks a peer to exit with code (0..255); it leaves first.
  kill (id, code) {
    if (!(Number.isInteger(code) && code >= 0 && code <= 255)) throw new RangeError('exit code must be 0..255')
    return this.whisper(id, 'zc.kill', Buffer.from(msgpack.encode(code)))
  }

  //  Sends a named confirmation to every peer (zcluster's zc.confirm).
  confirm (name) {
    this.s_checkName(name, 'confirmation name')
    return this.publish('zc.confirm', Buffer.from(name))
  }

  //  ------------------------------------------------------------------------
  //  RPC

  register (method, fn) { this.rpc.register(method, fn) }
  call (target, method, args, options) { return this.rpc.call(target, method, args, options) }
  request (node, method, args, options) { return this.rpc.request(node, method, args, options) }
  connectionAdd (connection) { return this.registry.connectionAdd(connection) }
  connectionRemove (connection) { return this.registry.connectionRemove(connection) }
  connectionOwner (connection) { return this.registry.connectionOwner(connection) }

  //  ------------------------------------------------------------------------
  //  Receiving

  async s_receive (socket, via) {
    try {
      for await (const frames of socket) this.s_accept(frames, via)
    } catch (e) {
      if (!socket.closed) this.emit('warning', e)
    }
  }

  //  Section 7: a gap is counted lost; a backward jump or the first message
  //  of a stream sets the baseline.
  s_track (sender, stream, seq) {
    const key = sender + '\0' + stream
    const next = this.expected.get(key)
    if (next !== undefined && seq > next) this.counters.lost += Number(BigInt(seq) - BigInt(next))
    this.expected.set(key, typeof seq === 'bigint' ? seq + 1n : seq + 1)
  }

  //  One read from a socket: a message, or a batch of them, each counted
  //  and delivered on its own.
  s_accept (frames, via) {
    const outcomes = wire.decodeFrames(frames, via, this.wire)
    if (outcomes.batch) this.counters.recv_batches++
    for (const d of outcomes) {
      if (d.result !== 'ok') this.counters[d.result]++
      else this.s_deliver(d.msg)
    }
  }

  s_deliver (msg) {
    const stream = msg.kind === KIND.public ? 'P' : msg.kind === KIND.group ? 'G' + msg.group : 'D'
    this.s_track(msg.sender, stream, msg.seq)
    if (msg.payload.length > this.maxPayload) {
      this.counters.oversized++
      return
    }
    this.counters[msg.kind === KIND.public ? 'recv_public' : msg.kind === KIND.group ? 'recv_group' : 'recv_private']++
    msg.kind = wire.KIND_NAMES[msg.kind]
    this.s_dispatch(msg)
  }

  s_dispatch (msg) {
    if (msg.kind === 'request') {
      this.rpc.serve(msg).catch(e => this.emit('warning', e))
    } else if (msg.kind === 'reply') {
      this.rpc.reply(msg)
    } else if (msg.kind === 'public' && msg.type === 'zc.leave') {
      this.s_remove(msg.sender, null, 'left', true)
    } else if (msg.kind === 'public' && msg.type === 'zc.confirm') {
      const name = msg.payload.toString()
      if (!wire.nameValid(name)) return
      if (!this.confirmations.has(name)) this.confirmations.set(name, new Set())
      this.confirmations.get(name).add(msg.sender)
      this.emit('confirm', msg.sender, name)
    } else if (msg.kind === 'public' && msg.type === 'zc.probe') {
      //  A node waiting for its publishes to reach us (zc_node_wait_peers).
      this.whisper(msg.sender, 'zc.reached', Buffer.alloc(0)).catch(e => this.emit('warning', e))
    } else if (msg.kind === 'private' && msg.type === 'zc.reached') {
      //  The answer to a probe; this peer never waits for one.
    } else if (msg.kind === 'private' && msg.type === 'zc.kill') {
      let code
      try { code = msgpack.decode(msg.payload) } catch (e) {}
      if (Number.isInteger(code) && code >= 0 && code <= 255) this.emit('kill', msg.sender, code)
    } else {
      this.emit('message', msg)
    }
  }

  stats () { return { ...this.counters, peers: this.members.size } }
}

module.exports = { Peer }
