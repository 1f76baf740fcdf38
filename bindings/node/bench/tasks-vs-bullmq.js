#!/usr/bin/env node
'use strict'
/*  tasks-vs-bullmq — zcluster's task queue at default settings against
    BullMQ, in the same run, against the same redis-server.

    Each round runs both sides on N no-op jobs of the same payload size, one
    after the other (zcluster first in odd rounds, BullMQ first in even
    ones, so neither always gets the fresher Redis):

    zcluster  `zcluster bench tasks-default`: zc_queue_enqueue_many in
              batches of 1000, then one zc_queue_worker as a user starts it
              (concurrency 8, the default handler thread per job held,
              default lease), no-op handler; jobs/s from its first finished
              run until Redis counts every job processed.
    BullMQ    Queue.addBulk in batches of 1000, then one Worker at
              concurrency 8 with an async no-op processor and BullMQ's own
              settings (removeOnComplete, maxRetriesPerRequest null); jobs/s
              from the first 'completed' event to the last.

    Each side's CPU per job is measured too, worker process (all its
    threads) and redis-server (INFO cpu) apart, from the worker's creation
    to its end: the machine's load stretches the times, much less the CPU.

    Payloads are the same size on both sides: zcluster's arguments are a
    msgpack bin of --size bytes, BullMQ's data a JSON object of --size
    bytes. docs/BENCH.md says why this is the fair comparison.

    Without --redis it starts a redis-server of its own on a free TCP port
    (no persistence) and stops it at the end. Prints a table, or with
    --json one object per round and a summary object, one per line.
*/
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { parseArgs } = require('node:util')
const Redis = require('ioredis')
const { redisOptions, redact } = require('../lib/registry')

const ROOT = path.resolve(__dirname, '..', '..', '..')
const CONCURRENCY = 8 //  BullMQ's worker, and zcluster bench tasks-default's
const BATCH = 1000 //  jobs per addBulk / enqueue_many call
const COUNT_MAX = 100000 //  what zcluster bench caps a tasks run at
const STALL_MS = 30000 //  a side that completes nothing for this long has failed

const USAGE = `usage: node bench/tasks-vs-bullmq.js [--count N] [--rounds R] [--size BYTES]
         [--redis URL | --redis-file FILE] [--cli PATH] [--json]

zcluster's task queue (zcluster bench tasks-default: a worker at default
settings, concurrency 8) against BullMQ (Worker, concurrency 8), N no-op jobs
each (default 20000, at most ${COUNT_MAX}) of --size bytes (default 64, at least 8),
R rounds (default 3) with the order alternated, on one redis-server: its own
on a free port unless --redis URL (no password: use --redis-file FILE) is given.
--cli: the zcluster binary (default $ZC_CLI, else build/zcluster, else PATH).`

class UsageError extends Error {}

function options (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      count: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      size: { type: 'string', default: '64' },
      redis: { type: 'string' },
      'redis-file': { type: 'string' },
      cli: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  const integer = (name, min, max) => {
    const n = Number(values[name])
    if (!/^\d+$/.test(values[name]) || n < min || n > max) throw new UsageError(`--${name} takes ${min}..${max}`)
    return n
  }
  const o = {
    help: values.help,
    json: values.json,
    count: integer('count', 1, COUNT_MAX),
    rounds: integer('rounds', 1, 100),
    size: integer('size', 8, 1024 * 1024),
    cli: values.cli || findCli(),
    redisFile: values['redis-file'],
    redis: values.redis
  }
  if (o.redis && o.redisFile) throw new UsageError('--redis or --redis-file, not both')
  if (o.redis && new URL(o.redis).password) {
    throw new UsageError('--redis holds a password, which `ps` shows to every user: use --redis-file FILE')
  }
  if (o.redisFile) o.redis = fs.readFileSync(o.redisFile, 'utf8').trim()
  return o
}

//  The zcluster binary: $ZC_CLI, else the README's build, else PATH.
function findCli () {
  if (process.env.ZC_CLI) return process.env.ZC_CLI
  const built = path.join(ROOT, 'build', 'zcluster')
  return fs.existsSync(built) ? built : 'zcluster'
}

const now = () => Number(process.hrtime.bigint()) / 1e9 //  seconds, monotonic

//  The processes this script started and that still run: none outlives it,
//  whether it ends, fails, or is interrupted (SIGINT, SIGTERM).
const children = new Set()
function started (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(1))

//  Runs a command to its end; resolves with its stdout, rejects with its
//  stderr if it fails.
function run (command, args) {
  return new Promise((resolve, reject) => {
    const child = started(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] }))
    let out = ''
    let err = ''
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    child.on('error', reject)
    child.on('close', (code, signal) => code === 0
      ? resolve(out)
      : reject(new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} exited ${code ?? signal}: ${err.trim()}`)))
  })
}

//  A free TCP port on loopback (the kernel's choice, released at once).
function freePort () {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

//  A redis-server of our own on a free port, without persistence; its
//  url, and stop(). Retries on another port if one was taken meanwhile.
async function startRedis () {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = started(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no'], { stdio: 'ignore' }))
    const exited = new Promise(resolve => child.once('exit', () => resolve(true)))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    }
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    const deadline = Date.now() + 5000
    let up = false
    while (!up && Date.now() < deadline && child.exitCode === null) {
      up = await client.connect().then(() => client.ping()).then(() => true, () => false)
      if (!up) {
        client.disconnect()
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    }
    client.disconnect()
    if (up) return { url: `redis://127.0.0.1:${port}`, stop }
    await stop()
    if (attempt >= 2) throw new Error('cannot start redis-server (is it installed?)')
  }
}

//  One zcluster side: `zcluster bench tasks-default`, whose JSON gives
//  the enqueue and processing rates.
async function zclusterSide (o, url) {
  const where = o.redisFile ? ['--redis-file', o.redisFile] : ['--redis', url]
  const out = await run(o.cli, ['bench', 'tasks-default', '--count', String(o.count), '--size', String(o.size), '--json', ...where])
  const rows = out.split('\n').filter(l => l.trim()).map(l => JSON.parse(l))
  const enqueue = rows.find(r => r.scenario === 'default-enqueue')
  const process_ = rows.find(r => r.scenario === 'tasks-default')
  if (!enqueue || !process_) throw new Error(`zcluster bench tasks-default printed no result:\n${out}`)
  if (process_.count !== o.count) throw new Error(`zcluster bench ran ${process_.count} jobs, not ${o.count}`)
  return {
    name: process_.name,
    processed: process_.received,
    rate: process_.rate,
    cpu_us: process_.cpu_us ?? -1,
    redis_cpu_us: process_.redis_cpu_us ?? -1,
    enqueue_rate: enqueue.rate
  }
}

//  CPU seconds redis-server has used so far (INFO cpu), or -1 if it does
//  not say.
async function redisCpu (client) {
  const info = await client.info('cpu').catch(() => '')
  const user = /^used_cpu_user:([\d.]+)/m.exec(info)
  const sys = /^used_cpu_sys:([\d.]+)/m.exec(info)
  return user && sys ? Number(user[1]) + Number(sys[1]) : -1
}

//  CPU seconds this process has used so far.
const processCpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6 }

//  ioredis options for BullMQ: its own connections (Queue one, Worker two),
//  with maxRetriesPerRequest null as BullMQ requires for a Worker.
function bullConnection (url) {
  const { lazyConnect, enableOfflineQueue, ...rest } = redisOptions(url)
  return { ...rest, maxRetriesPerRequest: null }
}

//  One BullMQ side on queue name: enqueues count jobs with addBulk, then
//  processes them with one Worker; counts every completion and failure.
async function bullmqSide (o, url, name, count = o.count) {
  const { Queue, Worker } = require('bullmq')
  const connection = bullConnection(url)
  //  BullMQ's advice: remove completed jobs (zcluster deletes an acked job
  //  too), keep failed ones for a while.
  const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: 5000 } })
  const data = { p: 'x'.repeat(o.size - 8) } //  JSON.stringify: exactly o.size bytes
  let worker = null
  let client = null //  for INFO: BullMQ's own connections are its business
  try {
    await queue.waitUntilReady()
    await queue.obliterate({ force: true })
    const t0 = now()
    for (let done = 0; done < count; done += BATCH) {
      const n = Math.min(BATCH, count - done)
      await queue.addBulk(Array.from({ length: n }, () => ({ name: 'noop', data })))
    }
    const enqueueRate = count / (now() - t0)

    //  CPU from the worker's creation to its close, as zcluster's is from
    //  its worker's creation to its destruction.
    client = new Redis(connection)
    client.on('error', () => {})
    const cpuBefore = [processCpu(), await redisCpu(client)]
    let completed = 0
    let failed = 0
    let first = 0
    let last = 0
    let lastProgress = Date.now()
    let settle
    const finished = new Promise(resolve => { settle = resolve })
    const progress = () => {
      lastProgress = Date.now()
      if (completed + failed === count) settle()
    }
    worker = new Worker(name, async () => {}, { connection, concurrency: CONCURRENCY })
    worker.on('completed', () => {
      last = now()
      if (completed++ === 0) first = last
      progress()
    })
    worker.on('failed', () => { failed++; progress() })
    worker.on('error', () => {}) //  a lost connection: ioredis reconnects; a stall is caught below
    const stalled = setInterval(() => { if (Date.now() - lastProgress > STALL_MS) settle() }, 500)
    await finished
    clearInterval(stalled)
    await worker.close()
    worker = null
    const cpuAfter = [processCpu(), await redisCpu(client)]
    const left = await queue.getJobCounts('wait', 'active', 'delayed', 'failed')
    return {
      name: `bullmq-worker-c${CONCURRENCY}`,
      version: require('bullmq/package.json').version,
      processed: completed,
      failed,
      left: left.wait + left.active + left.delayed + left.failed,
      rate: last > first ? completed / (last - first) : 0,
      cpu_us: completed ? (cpuAfter[0] - cpuBefore[0]) * 1e6 / completed : -1,
      redis_cpu_us: completed && cpuBefore[1] >= 0 && cpuAfter[1] >= 0 ? (cpuAfter[1] - cpuBefore[1]) * 1e6 / completed : -1,
      enqueue_rate: enqueueRate
    }
  } finally {
    if (worker) await worker.close(true)
    if (client) client.disconnect()
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
  }
}

//  BullMQ's CPU per job over zcluster's, worker process and Redis together
//  (how many times more CPU BullMQ spends on a job), or -1 if either was not
//  measured.
function cpuRatio (round) {
  const total = s => s.cpu_us >= 0 && s.redis_cpu_us >= 0 ? s.cpu_us + s.redis_cpu_us : -1
  const zc = total(round.zcluster)
  const bull = total(round.bullmq)
  return zc > 0 && bull >= 0 ? fixed(bull / zc, 3) : -1
}

function median (values) {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const fixed = (x, d) => Number(x.toFixed(d))

//  Runs the rounds; returns [round objects..., summary object].
async function compare (o, url, say) {
  //  BullMQ's first jobs run while V8 is still compiling it: a few
  //  unmeasured ones first, so that no round pays for that.
  await bullmqSide(o, url, 'zc-bench-warm-up', Math.min(o.count, 2000))
  const rounds = []
  for (let r = 1; r <= o.rounds; r++) {
    const order = r % 2 ? ['zcluster', 'bullmq'] : ['bullmq', 'zcluster']
    const sides = {}
    for (const side of order) {
      sides[side] = side === 'zcluster' ? await zclusterSide(o, url) : await bullmqSide(o, url, `zc-bench-${r}`)
    }
    const round = {
      round: r,
      first: order[0],
      count: o.count,
      size: o.size,
      concurrency: CONCURRENCY,
      zcluster: sides.zcluster,
      bullmq: sides.bullmq,
      ratio: sides.bullmq.rate > 0 ? fixed(sides.zcluster.rate / sides.bullmq.rate, 3) : 0,
      enqueue_ratio: sides.bullmq.enqueue_rate > 0 ? fixed(sides.zcluster.enqueue_rate / sides.bullmq.enqueue_rate, 3) : 0
    }
    for (const side of [round.zcluster, round.bullmq]) {
      side.rate = fixed(side.rate, 0)
      side.enqueue_rate = fixed(side.enqueue_rate, 0)
      side.cpu_us = fixed(side.cpu_us, 2)
      side.redis_cpu_us = fixed(side.redis_cpu_us, 2)
    }
    round.cpu_ratio = cpuRatio(round)
    rounds.push(round)
    say(round)
  }
  const ratios = rounds.map(r => r.ratio)
  return [...rounds, {
    summary: 'tasks-vs-bullmq',
    rounds: rounds.length,
    count: o.count,
    size: o.size,
    ratio_min: Math.min(...ratios),
    ratio_median: fixed(median(ratios), 3),
    ratio_max: Math.max(...ratios),
    enqueue_ratio_median: fixed(median(rounds.map(r => r.enqueue_ratio)), 3),
    cpu_ratio_median: fixed(median(rounds.map(r => r.cpu_ratio)), 3),
    loadavg: os.loadavg().map(x => fixed(x, 2))
  }]
}

function printHeader (o, url, version) {
  console.log(`zcluster tasks (bench tasks-default) vs BullMQ ${version}, worker concurrency ${CONCURRENCY} each:`)
  console.log(`${o.count} no-op jobs of ${o.size} B per side and round, one redis-server (${redact(url)})\n`)
  console.log('                  processed jobs/s        CPU us per job, worker + Redis           enqueued jobs/s')
  console.log('round  first     zcluster   BullMQ  ratio      zcluster         BullMQ  ratio   zcluster   BullMQ  ratio')
}

function printRound (r) {
  const n = (x, w) => String(Math.round(x)).padStart(w)
  const ratio = x => (x >= 0 ? x.toFixed(2) : '-').padStart(6)
  const cpu = s => (s.cpu_us >= 0 && s.redis_cpu_us >= 0 ? `${s.cpu_us.toFixed(1)} + ${s.redis_cpu_us.toFixed(1)}` : '-').padStart(14)
  console.log(`${String(r.round).padStart(5)}  ${r.first.padEnd(8)} ${n(r.zcluster.rate, 9)} ${n(r.bullmq.rate, 8)} ${ratio(r.ratio)}` +
    ` ${cpu(r.zcluster)} ${cpu(r.bullmq)} ${ratio(r.cpu_ratio)}` +
    ` ${n(r.zcluster.enqueue_rate, 10)} ${n(r.bullmq.enqueue_rate, 8)} ${ratio(r.enqueue_ratio)}`)
}

function printSummary (s) {
  const three = (a, b, c) => `${a.toFixed(2)} / ${b.toFixed(2)} / ${c.toFixed(2)}`
  console.log(`\njobs/s, zcluster / BullMQ, min / median / max of ${s.rounds}: ${three(s.ratio_min, s.ratio_median, s.ratio_max)}`)
  console.log(`CPU per job (worker + Redis), BullMQ / zcluster, median: ${s.cpu_ratio_median.toFixed(2)}`)
  console.log(`load average ${s.loadavg.join(' ')}`)
}

async function main () {
  let o
  try {
    o = options(process.argv.slice(2))
  } catch (e) {
    console.error(`tasks-vs-bullmq: ${e.message}\n\n${USAGE}`)
    return 64
  }
  if (o.help) {
    console.log(USAGE)
    return 0
  }
  const own = o.redis ? null : await startRedis()
  const url = o.redis || own.url
  try {
    if (!o.json) printHeader(o, url, require('bullmq/package.json').version)
    const results = await compare(o, url, round => {
      if (o.json) console.log(JSON.stringify(round))
      else printRound(round)
    })
    const summary = results[results.length - 1]
    if (o.json) console.log(JSON.stringify(summary))
    else printSummary(summary)
    const short = results.slice(0, -1).find(r => r.zcluster.processed !== o.count || r.bullmq.processed !== o.count)
    if (short) {
      console.error(`tasks-vs-bullmq: round ${short.round}: not every job was processed`)
      return 1
    }
    return 0
  } catch (e) {
    console.error(`tasks-vs-bullmq: ${e.message}`)
    return 1
  } finally {
    if (own) await own.stop()
  }
}

main().then(code => { process.exitCode = code })
