#!/usr/bin/env node
'use strict'
/*  peer-cli — one Node.js peer driven by line commands on stdin, printing
    what it receives on stdout: the same commands and lines as the C
    `zcluster node` console, so a test drives either the same way.

    Every command answers exactly one line ("ok CMD ..." or "error CMD:
    ..."), in order; messages, membership and call results print as they
    happen. The end of stdin or `quit` leaves the cluster and exits 0.
*/
const readline = require('node:readline')
const { Peer, STATUS, STATUS_NAMES, encode } = require('./index')

const USAGE = `usage: node peer-cli.js [--id ID] [--redis URL] [--cluster NAME] [--bind HOST]
                        [--keys FILE] [--group NAME]... [--header KEY=VALUE]...
                        [--lease-ttl MS] [--heartbeat-interval MS] [--heartbeat-timeout MS]
                        [--max-msg-size BYTES]

Starts a peer, prints \`ready ID PUB-ENDPOINT ROUTER-ENDPOINT\`, then reads commands
on stdin, one per line; each answers one line, \`ok ...\` or \`error ...\`.
Redis: --redis or $ZC_REDIS_URL; cluster: --cluster or $ZC_CLUSTER (default
'zcluster'); id: --id or $ZC_NODE_ID, else a generated one; cluster credentials
(CURVE, the file \`zcluster keygen\` writes): --keys or $ZC_KEYS, else plaintext.
  join GROUP | leave GROUP        group membership
  publish TYPE TEXT               public message to every node
  shout GROUP TYPE TEXT           message to a group's members
  whisper ID TYPE TEXT            private message to one node
  stats                           counters as key=value pairs
  info                            the cluster as JSON (\`ok info {...}\`)
  kill ID CODE                    ask node ID to exit with CODE
  confirm NAME                    send a named confirmation to every peer
  wait NAME COUNT MS              wait for COUNT peers' NAME confirmations
  call TAG TARGET METHOD MS [TEXT] RPC to ID, * (all, gather), *first or
                                  @CONNECTION; prints \`reply TAG NODE STATUS RESULT\`
                                  lines, then \`result TAG status=S replies=N missing=IDS\`
  conn add|remove ID              hold a connection id (for @ID calls)
  rpcstats                        RPC counters
  quit
The peer serves the RPC methods echo, sleep (args: ms) and fail, besides the
built-in ping, info and methods.
Received messages print as \`msg KIND SENDER GROUP|- TYPE SEQ TEXT\`; membership
as \`added ID\`, \`removed ID left|expired|crashed\`, and a member whose connection
from here dropped as \`unreachable ID\` (it stays a member) and \`reachable ID\`.
`

//  Reads the command line. Returns the Peer options, or exits on an error.
function s_parse (argv) {
  const o = { groups: [], headers: {} }
  const takes = { '--id': 'id', '--redis': 'redis', '--cluster': 'cluster', '--bind': 'bind', '--keys': 'keys', '--lease-ttl': 'leaseTtl', '--heartbeat-interval': 'heartbeatInterval', '--heartbeat-timeout': 'heartbeatTimeout', '--max-msg-size': 'maxPayload' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = argv[i + 1]
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE)
      process.exit(0)
    } else if (value === undefined) {
      s_usage(`${a}: unknown option or missing value`)
    } else if (a === '--group') {
      o.groups.push(value)
    } else if (a === '--header') {
      const eq = value.indexOf('=')
      if (eq < 1) s_usage('--header takes KEY=VALUE')
      o.headers[value.slice(0, eq)] = value.slice(eq + 1)
    } else if (takes[a]) {
      o[takes[a]] = ['leaseTtl', 'heartbeatInterval', 'heartbeatTimeout', 'maxPayload'].includes(takes[a]) ? Number(value) : value
    } else s_usage(`unknown option ${a}`)
    i++
  }
  return o
}

function s_usage (why) {
  process.stderr.write(`peer-cli: ${why}\n${USAGE}`)
  process.exit(2)
}

//  Printable text of a payload, as the C console prints it.
function s_text (bytes) {
  let text = ''
  for (const b of bytes.subarray(0, 200)) text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.'
  return text
}

//  A decoded msgpack value the way msgpack-c prints it.
function s_value (v) {
  if (v === null || v === undefined) return 'nil'
  if (typeof v === 'string') return JSON.stringify(v)
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return '(bin)'
  if (Array.isArray(v)) return '[' + v.map(s_value).join(', ') + ']'
  if (typeof v === 'object') return '{' + Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}=>${s_value(x)}`).join(', ') + '}'
  return String(v)
}

function s_print (line) {
  process.stdout.write(line.replace(/\n/g, ' ') + '\n')
}

//  The RPC methods the C console serves too.
function s_methods (peer) {
  peer.register('echo', args => args)
  peer.register('sleep', async args => {
    const ms = Math.min(60000, Math.max(0, Number(args) || 0))
    await new Promise(resolve => setTimeout(resolve, ms))
    return 'slept'
  })
  peer.register('fail', () => {
    const e = new Error('asked to fail')
    e.code = 42
    throw e
  })
}

function s_printCall (tag, outcome) {
  for (const r of outcome.replies) {
    const text = r.status === STATUS.ok ? (r.data && r.data.length ? s_value(r.value) : '') : `${r.code} ${r.error}`
    s_print(`reply ${tag} ${r.node} ${STATUS_NAMES[r.status]} ${text}`)
  }
  s_print(`result ${tag} status=${STATUS_NAMES[outcome.status]} replies=${outcome.replies.length} missing=${outcome.missing.join(',')}`)
}

//  Splits a line into at most max words, the last taking the rest (rest).
function s_words (line, max, rest) {
  const words = []
  let p = line.replace(/^[ \t]+/, '')
  while (p.length) {
    if (rest && words.length === max - 1) {
      words.push(p)
      break
    }
    const m = p.match(/^[^ \t]+/)
    words.push(m[0])
    p = p.slice(m[0].length).replace(/^[ \t]+/, '')
  }
  return words
}

//  Each command: [min args, max args, takes the rest of the line, run].
//  run returns the answer text after "ok CMD" (or a whole line, {line}).
function s_commands (peer, stop) {
  const info = () => {
    const self = { id: peer.id, pub: peer.pubEndpoint, router: peer.routerEndpoint, groups: [...peer.groups], headers: peer.headers }
    const nodes = [self, ...[...peer.members.values()].map(m => m.record)]
    const groups = {}
    for (const n of nodes) for (const g of n.groups || []) (groups[g] = groups[g] || []).push({ id: n.id, pid: n.pid })
    return JSON.stringify({ cluster: peer.cluster, self: peer.id, leader: false, epoch: 0, nodes, groups })
  }
  return {
    join: [1, 1, false, async ([g]) => peer.join(g)],
    leave: [1, 1, false, async ([g]) => peer.leave(g)],
    publish: [1, 2, true, async ([t, x]) => peer.publish(t, x || '')],
    shout: [2, 3, true, async ([g, t, x]) => peer.shout(g, t, x || '')],
    whisper: [2, 3, true, async ([id, t, x]) => peer.whisper(id, t, x || '')],
    stats: [0, 0, false, async () => ({ line: 'stats ' + Object.entries(peer.stats()).map(([k, v]) => `${k}=${v}`).join(' ') })],
    info: [0, 0, false, async () => info()],
    leader: [0, 0, false, async () => '0 0'],
    kill: [2, 2, false, async ([id, code]) => peer.kill(id, Number(code))],
    confirm: [1, 1, false, async ([name]) => peer.confirm(name)],
    wait: [3, 3, false, async ([name, count, ms]) => {
      const deadline = Date.now() + Number(ms)
      while (Date.now() < deadline) {
        const got = peer.confirmations.get(name)
        if (got && got.size >= Number(count)) return [...got].join(',')
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      throw new Error('timed out')
    }],
    call: [4, 5, true, async ([tag, target, method, ms, text]) => {
      const t = target === '*' ? { all: 'gather' } : target === '*first' ? { all: 'first' } : target[0] === '@' ? { connection: target.slice(1) } : target
      peer.call(t, method, text || '', { timeout: Number(ms) }).then(outcome => s_printCall(tag, outcome))
    }],
    conn: [2, 2, false, async ([op, id]) => {
      if (op === 'add') return peer.connectionAdd(id)
      if (op === 'remove') return peer.connectionRemove(id)
      throw new Error('unknown command or wrong arguments')
    }],
    rpcstats: [0, 0, false, async () => ({ line: 'rpcstats ' + Object.entries(peer.rpc.stats).map(([k, v]) => `${k}=${v}`).join(' ') })],
    quit: [0, 0, false, async () => { stop() }]
  }
}

async function s_execute (commands, line) {
  const name = (line.match(/^[ \t]*([^ \t]+)/) || [])[1]
  if (!name) return
  const command = commands[name]
  const words = command ? s_words(line, command[1] + 1, command[2]) : []
  if (!command || words.length - 1 < command[0] || words.length - 1 > command[1]) {
    s_print(`error ${name}: unknown command or wrong arguments`)
    return
  }
  try {
    const answer = await command[3](words.slice(1))
    if (answer && answer.line) s_print(answer.line)
    else s_print(`ok ${name}${typeof answer === 'string' && answer ? ' ' + answer : ''}`)
  } catch (e) {
    s_print(`error ${name}: ${e.message}`)
  }
}

async function main () {
  const peer = new Peer(s_parse(process.argv.slice(2)))
  //  What happens while the peer starts prints after its `ready` line.
  let early = []
  const event = line => early ? early.push(line) : s_print(line)
  peer.on('message', m => event(`msg ${m.kind} ${m.sender} ${m.group || '-'} ${m.type} ${m.seq} ${s_text(m.payload)}`))
  peer.on('added', id => event(`added ${id}`))
  peer.on('removed', (id, reason) => event(`removed ${id} ${reason}`))
  peer.on('unreachable', id => event(`unreachable ${id}`))
  peer.on('reachable', id => event(`reachable ${id}`))
  peer.on('warning', e => process.stderr.write(`peer-cli: ${e.message}\n`))
  s_methods(peer)
  let stopping = null
  const stop = (code = 0) => {
    if (!stopping) stopping = peer.stop().finally(() => process.exit(code))
    return stopping
  }
  peer.on('kill', (from, code) => stop(code))
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))
  await peer.start()
  s_print(`ready ${peer.id} ${peer.pubEndpoint} ${peer.routerEndpoint}`)
  for (const line of early) s_print(line)
  early = null
  const commands = s_commands(peer, stop)
  const input = readline.createInterface({ input: process.stdin, terminal: false })
  let queue = Promise.resolve()
  input.on('line', line => { queue = queue.then(() => stopping ? undefined : s_execute(commands, line)) })
  input.on('close', () => { queue.then(() => stop(0)) })
}

main().catch(e => {
  process.stderr.write(`peer-cli: ${e.message}\n`)
  process.exit(1)
})
