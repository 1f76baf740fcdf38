'use strict'
/*  helpers — what the tests share: a private redis-server, the C
    `zcluster node` console driven line by line, and waiting for conditions
    (never for a fixed time).
*/
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')

const ROOT = path.resolve(__dirname, '..', '..', '..')

//  The zcluster binary: $ZC_CLI, else the build that .ci/test makes.
function cliPath () {
  const candidates = [process.env.ZC_CLI, path.join(ROOT, 'build-test', 'zcluster')]
  const found = candidates.find(p => p && fs.existsSync(p))
  if (!found) throw new Error('no zcluster binary: build it (.ci/test) or set ZC_CLI')
  return found
}

//  Polls cond every 10 ms until it returns a truthy value; rejects after ms.
async function until (cond, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await cond()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

//  Every process a test starts, until it exits: cleanup() ends those left
//  (a test that failed half-way), so that none outlives its test file.
const children = new Set()
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

async function cleanup () {
  const left = [...children]
  await Promise.all(left.map(c => new Promise(resolve => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.once('exit', resolve)
    c.kill('SIGKILL')
  })))
  children.clear()
}

//  A redis-server on a unix socket in a temporary directory.
async function startRedis () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zc-node-test-'))
  const socket = path.join(dir, 'redis.sock')
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  children.add(child)
  await until(() => new Promise(resolve => {
    const c = net.createConnection(socket, () => { c.end(); resolve(true) })
    c.on('error', () => resolve(false))
  }), 5000, 'redis-server')
  return {
    url: 'unix://' + socket,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        await gone
      }
      children.delete(child)
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

//  A process that answers lines: the C console or peer-cli.js. Lines it
//  prints are kept until a test takes them with expect().
class Console {
  constructor (command, args, env = {}) {
    this.lines = []
    this.waiters = []
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } })
    children.add(this.child)
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => {
      children.delete(this.child)
      resolve({ code, signal })
    }))
    let partial = ''
    this.child.stdout.on('data', data => {
      const parts = (partial + data.toString()).split('\n')
      partial = parts.pop()
      for (const line of parts) this.lines.push(line)
      for (const w of this.waiters.splice(0)) w()
    })
  }

  send (line) { this.child.stdin.write(line + '\n') }

  //  Takes the first line kept that matches (a prefix or a RegExp), waiting
  //  up to ms for it.
  async expect (match, ms = 5000) {
    const test = line => typeof match === 'string' ? line.startsWith(match) : match.test(line)
    const deadline = Date.now() + ms
    for (;;) {
      const i = this.lines.findIndex(test)
      if (i >= 0) return this.lines.splice(i, 1)[0]
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for '${match}'; kept: ${JSON.stringify(this.lines.slice(-20))}`)
      await new Promise(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  //  Sends a command and returns its answer line ("ok NAME..." or "error NAME...").
  async command (line, ms = 5000) {
    const name = line.split(' ')[0]
    this.send(line)
    return this.expect(new RegExp(`^(ok|error) ${name}\\b|^${name} `), ms)
  }

  //  Ends stdin (the console leaves and exits) and waits for the exit.
  async close () {
    this.child.stdin.end()
    return this.exited
  }

  kill (signal = 'SIGKILL') {
    this.child.kill(signal)
    return this.exited
  }
}

//  A C node: `zcluster node` with the registry, ready.
async function startCNode (redis, id, cluster, extra = []) {
  const c = new Console(cliPath(), ['node', '--id', id, '--redis', redis.url, '--cluster', cluster, ...extra],
    { ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1' })
  await c.expect('ready ', 10000)
  return c
}

//  Collects a Peer's events so that a test can wait for one.
function recorder (peer) {
  const r = { messages: [], added: [], removed: [], kills: [] }
  peer.on('message', m => r.messages.push(m))
  peer.on('added', id => r.added.push(id))
  peer.on('removed', (id, reason) => r.removed.push(`${id} ${reason}`))
  peer.on('kill', (from, code) => r.kills.push(`${from} ${code}`))
  return r
}

//  The vectors of docs/PROTOCOL.md (section 14's format).
function loadVectors () {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'PROTOCOL.md'), 'utf8')
  const vectors = []
  for (const block of text.matchAll(/^```vector\n([\s\S]*?)^```$/gm)) {
    const v = { frames: [] }
    for (const line of block[1].split('\n').filter(l => l)) {
      const i = line.indexOf(':')
      const key = line.slice(0, i)
      const value = line.slice(i + 1).trim()
      if (key === 'frame') v.frames.push(value)
      else if (key === 'entry') (v.entries = v.entries || []).push(value)
      else v[key] = value
    }
    vectors.push(v)
  }
  return vectors
}

//  "96 01 | 02" as bytes, and the offsets of its `|` marks.
function hexBytes (text) {
  const bytes = []
  const marks = []
  for (const word of text.split(' ').filter(w => w)) {
    if (word === '|') marks.push(bytes.length)
    else bytes.push(parseInt(word, 16))
  }
  return { bytes: Buffer.from(bytes), marks }
}

module.exports = { ROOT, cliPath, until, cleanup, startRedis, Console, startCNode, recorder, loadVectors, hexBytes }
