'use strict'
/*  rpc — zcluster RPC over the private plane (docs/PROTOCOL.md, "RPC
    payloads"): serving registered methods and the built-ins, and calling
    one node, every node (first or gather) or the node holding a
    connection id.

    A request is a REQUEST message (type = method, corr = the call's id,
    payload = msgpack args). The reply is a REPLY with the same corr, type
    "zc.ok" (payload = msgpack result) or "zc.error" (payload = msgpack
    [status, code, message]). Outcomes that never cross the wire (timeout,
    peer gone, no route, ...) use the same status numbers.
*/
const msgpack = require('@msgpack/msgpack')
const { KIND, nameValid } = require('./wire')
const { refusedCount } = require('./security')

const STATUS = {
  ok: 0,
  unknownMethod: 1,
  handler: 2,
  timeout: 3,
  peerGone: 4,
  noRoute: 5,
  unknownConnection: 6,
  invalid: 7
}
//  What the C console prints for each (zc_strerror, three spelled out).
const STATUS_NAMES = ['ok', 'unknown method', 'handler error', 'timed out', 'peer gone',
  'no route to node', 'unknown connection', 'invalid call']
const BUILTINS = ['ping', 'info', 'methods']
const TIMEOUT_DEFAULT = 5000

//  A failed call or reply: status (a STATUS number), code (the handler's,
//  for status 2), message, node (who answered, if anyone).
class RpcError extends Error {
  constructor (status, code, message, node) {
    super(message)
    this.name = 'RpcError'
    this.status = status
    this.code = code
    this.node = node
  }
}

//  The zc.error payload: [status, code, message].
function encodeError (status, code, message) {
  return Buffer.from(msgpack.encode([status, code, String(message)]))
}

//  Reads a zc.error payload; what is not [uint, int, str] reads as a handler
//  error, keeping what parts it can (as the C nodes do).
function decodeError (payload) {
  const out = { status: STATUS.handler, code: 0, message: 'malformed error reply' }
  let value
  try {
    if (payload.length <= 4096) value = msgpack.decode(payload)
  } catch (e) {}
  if (!Array.isArray(value) || value.length !== 3) return out
  const [status, code, message] = value
  if (Number.isInteger(status) && status >= 0) out.status = status >= 1 && status <= 7 ? status : STATUS.handler
  if (Number.isInteger(code)) out.code = code
  if (typeof message === 'string') out.message = message
  return out
}

class Rpc {
  //  peer: the Peer this RPC serves and calls through.
  constructor (peer) {
    this.peer = peer
    this.methods = new Map()
    this.pending = new Map() //  corr -> call
    this.nextCorr = 0
    this.started = Date.now()
    this.stats = { calls_started: 0, calls_ok: 0, calls_failed: 0, calls_timed_out: 0, requests_handled: 0, late_replies: 0 }
  }

  register (method, fn) {
    if (!nameValid(method) || method.startsWith('zc.')) throw new RpcError(STATUS.invalid, 0, `invalid method name '${method}'`)
    if (typeof fn !== 'function') throw new RpcError(STATUS.invalid, 0, `method '${method}' has no handler`)
    if (BUILTINS.includes(method) || this.methods.has(method)) throw new RpcError(STATUS.invalid, 0, `method '${method}' is already registered`)
    this.methods.set(method, fn)
  }

  //  ------------------------------------------------------------------------
  //  Serving

  s_builtin (method) {
    if (method === 'ping') return null
    if (method === 'methods') return [...BUILTINS, ...this.methods.keys()]
    const s = this.peer.stats()
    return {
      id: this.peer.id,
      groups: [...this.peer.groups],
      headers: this.peer.headers,
      uptime_ms: Date.now() - this.started,
      stats: {
        sent_public: s.sent_public,
        sent_group: s.sent_group,
        sent_private: s.sent_private,
        recv_public: s.recv_public,
        recv_group: s.recv_group,
        recv_private: s.recv_private,
        lost: s.lost,
        malformed: s.malformed,
        refused: refusedCount(),
        requests: this.stats.requests_handled,
        calls: this.stats.calls_started
      }
    }
  }

  //  Answers a request from caller: {status, code, message} or {result}
  //  (msgpack bytes).
  async s_answer (caller, method, payload) {
    this.stats.requests_handled++
    if (BUILTINS.includes(method)) return { result: Buffer.from(msgpack.encode(this.s_builtin(method))) }
    const fn = this.methods.get(method)
    if (!fn) return { status: STATUS.unknownMethod, code: 0, message: 'unknown method' }
    let args
    try {
      args = payload.length ? msgpack.decode(payload) : undefined
    } catch (e) {
      return { status: STATUS.handler, code: -1, message: 'the arguments are not msgpack' }
    }
    try {
      const value = await fn(args, { caller, method, payload })
      return { result: Buffer.from(msgpack.encode(value === undefined ? null : value)) }
    } catch (e) {
      const code = Number.isInteger(e && e.code) ? e.code : -1
      return { status: STATUS.handler, code, message: (e && e.message) || String(e) }
    }
  }

  //  A REQUEST message for this node.
  async serve (msg) {
    const answer = await this.s_answer(msg.sender, msg.type, msg.payload)
    if (answer.result) this.peer.sendTo(msg.sender, KIND.reply, 'zc.ok', msg.corr, answer.result)
    else this.peer.sendTo(msg.sender, KIND.reply, 'zc.error', msg.corr, encodeError(answer.status, answer.code, answer.message))
  }

  //  A REPLY message for this node.
  reply (msg) {
    if (msg.type === 'zc.ok') {
      this.s_deliver(msg.sender, msg.corr, { status: STATUS.ok, data: msg.payload })
      return
    }
    const e = decodeError(msg.payload)
    this.s_deliver(msg.sender, msg.corr, { status: e.status, code: e.code, error: e.message })
  }

  //  ------------------------------------------------------------------------
  //  Calling

  //  Starts a call and resolves when it completes, with {status, replies:
  //  [{node, status, code, error, data, value}], missing: [ids]}.
  //  target: a node id, {all: 'gather' | 'first'}, or {connection: id}.
  call (target, method, args, { timeout = TIMEOUT_DEFAULT, raw = false } = {}) {
    const corr = ++this.nextCorr
    this.stats.calls_started++
    const payload = raw ? Buffer.from(args || []) : Buffer.from(msgpack.encode(args === undefined ? null : args))
    return new Promise(resolve => {
      const call = { corr, first: !!(target && target.all === 'first'), waiting: new Set(), replies: [], resolve, done: false }
      this.pending.set(corr, call)
      call.timer = setTimeout(() => this.s_complete(call), timeout > 0 ? timeout : TIMEOUT_DEFAULT)
      this.s_start(call, target, method, payload).catch(e => this.s_complete(call, STATUS.invalid, e.message))
    })
  }

  //  A call to one node that resolves with its decoded result or throws an
  //  RpcError.
  async request (node, method, args, options) {
    const outcome = await this.call(node, method, args, options)
    const r = outcome.replies[0]
    if (outcome.status === STATUS.ok) return r.value
    throw new RpcError(outcome.status, r ? r.code : 0, r ? r.error : STATUS_NAMES[outcome.status], r ? r.node : node)
  }

  async s_targets (target, method) {
    if (!nameValid(method)) throw new RpcError(STATUS.invalid, 0, 'invalid method name')
    if (typeof target === 'string') {
      if (!nameValid(target)) throw new RpcError(STATUS.invalid, 0, 'invalid target')
      return [target]
    }
    if (target && target.connection !== undefined) {
      const owner = await this.peer.connectionOwner(target.connection)
      if (owner === null) throw new RpcError(STATUS.unknownConnection, 0, 'unknown connection')
      if (!nameValid(owner)) throw new RpcError(STATUS.noRoute, 0, 'bad connection map entry')
      return [owner]
    }
    if (target && (target.all === 'gather' || target.all === 'first')) return [this.peer.id, ...this.peer.peers()]
    throw new RpcError(STATUS.invalid, 0, 'invalid target')
  }

  async s_start (call, target, method, payload) {
    let targets
    try {
      targets = await this.s_targets(target, method)
    } catch (e) {
      this.s_complete(call, e instanceof RpcError ? e.status : STATUS.noRoute) //  Redis failed
      return
    }
    for (const id of targets) call.waiting.add(id)
    for (const id of targets) {
      if (call.done) break
      if (id === this.peer.id) {
        this.s_answer(id, method, payload).then(a => this.s_deliver(id, call.corr,
          a.result ? { status: STATUS.ok, data: a.result } : { status: a.status, code: a.code, error: a.message }))
      } else if (!this.peer.sendTo(id, KIND.request, method, call.corr, payload)) {
        const why = this.peer.unreachable().includes(id) ? 'unreachable from this node' : 'not a peer'
        this.s_deliver(id, call.corr, { status: STATUS.noRoute, code: 0, error: `cannot send to ${id}: ${why}` })
      }
    }
  }

  s_deliver (from, corr, answer) {
    const call = this.pending.get(corr)
    if (!call || !call.waiting.delete(from)) {
      this.stats.late_replies++
      return
    }
    const reply = { node: from, status: answer.status, code: answer.code || 0, error: answer.error, data: answer.data }
    if (answer.status === STATUS.ok) {
      try {
        reply.value = answer.data.length ? msgpack.decode(answer.data) : undefined
      } catch (e) {}
    }
    call.replies.push(reply)
    if (call.waiting.size === 0 || (call.first && answer.status === STATUS.ok)) this.s_complete(call)
  }

  //  A peer left (or turned unreachable from here: the reply cannot come):
  //  the calls still waiting on it fail for it at once.
  peerRemoved (id, why = 'the node left or died') {
    for (const call of [...this.pending.values()]) {
      if (call.waiting.has(id)) this.s_deliver(id, call.corr, { status: STATUS.peerGone, code: 0, error: why })
    }
  }

  //  Completes a call; status forces the outcome (a call that could not
  //  start, or the node going away).
  s_complete (call, status) {
    if (call.done) return
    call.done = true
    clearTimeout(call.timer)
    this.pending.delete(call.corr)
    const missing = [...call.waiting]
    if (status === undefined) {
      const ok = call.replies.filter(r => r.status === STATUS.ok).length
      const failure = call.replies.find(r => r.status !== STATUS.ok)
      if (call.first) status = ok ? STATUS.ok : failure ? failure.status : STATUS.timeout
      else status = failure ? failure.status : missing.length || !call.replies.length ? STATUS.timeout : STATUS.ok
    }
    if (status === STATUS.ok) this.stats.calls_ok++
    else if (status === STATUS.timeout) this.stats.calls_timed_out++
    else this.stats.calls_failed++
    call.resolve({ status, replies: call.replies, missing })
  }

  //  Fails every pending call: the node is going.
  close () {
    for (const call of [...this.pending.values()]) this.s_complete(call, STATUS.peerGone)
  }
}

module.exports = { Rpc, RpcError, STATUS, STATUS_NAMES, BUILTINS, encodeError, decodeError }
