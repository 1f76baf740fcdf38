'use strict'
/*  bench/tasks-vs-bullmq.js must not rot: at tiny counts, every line of
    --json parses, both sides processed every job in every round, the order
    alternates, and the table prints. Never how fast either side was (the
    machine may be busy). */
const test = require('node:test')
const assert = require('node:assert')
const { spawn, execFileSync } = require('node:child_process')
const net = require('node:net')
const path = require('node:path')
const { cliPath, until } = require('./helpers')

const DRIVER = path.join(__dirname, '..', 'bench', 'tasks-vs-bullmq.js')
const COUNT = 200

//  Runs the driver to its end: {code, stdout, stderr}.
function driver (...args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DRIVER, '--cli', cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
}

function checkSide (side, what) {
  for (const field of ['name', 'processed', 'rate', 'enqueue_rate', 'cpu_us', 'redis_cpu_us']) {
    assert.strictEqual(typeof side[field], field === 'name' ? 'string' : 'number', `${what}: ${field}`)
  }
  assert.strictEqual(side.processed, COUNT, `${what} processed every job`)
  assert.ok(side.rate > 0 && side.enqueue_rate > 0, `${what}: rates measured`)
  assert.ok(side.cpu_us > 0 && side.redis_cpu_us > 0, `${what}: CPU measured (the test's Redis allows INFO)`)
}

test('--json: one object per round and a summary, every job processed on both sides', async () => {
  const { code, stdout, stderr } = await driver('--count', String(COUNT), '--rounds', '2', '--json')
  assert.strictEqual(code, 0, stderr)
  const lines = stdout.split('\n').filter(l => l.trim())
  const rows = lines.map(l => {
    try { return JSON.parse(l) } catch (e) { assert.fail(`not JSON: ${l}`) }
  })
  assert.strictEqual(rows.length, 3, stdout)
  const [one, two, summary] = rows
  assert.deepStrictEqual([one.round, two.round], [1, 2])
  assert.deepStrictEqual([one.first, two.first], ['zcluster', 'bullmq'], 'the order alternates')
  for (const r of [one, two]) {
    assert.strictEqual(r.count, COUNT)
    assert.strictEqual(r.size, 64)
    assert.strictEqual(r.concurrency, 8)
    checkSide(r.zcluster, `round ${r.round} zcluster`)
    checkSide(r.bullmq, `round ${r.round} bullmq`)
    assert.strictEqual(r.bullmq.failed, 0)
    assert.strictEqual(r.bullmq.left, 0, 'nothing left on the BullMQ queue')
    assert.match(r.bullmq.version, /^\d+\.\d+\.\d+$/)
    assert.ok(Math.abs(r.ratio - r.zcluster.rate / r.bullmq.rate) < 0.01 * r.ratio + 0.001, 'ratio is zcluster / BullMQ')
    const cpu = s => s.cpu_us + s.redis_cpu_us
    assert.ok(Math.abs(r.cpu_ratio - cpu(r.bullmq) / cpu(r.zcluster)) < 0.01 * r.cpu_ratio + 0.001, 'cpu_ratio is BullMQ / zcluster')
  }
  assert.strictEqual(summary.summary, 'tasks-vs-bullmq')
  assert.strictEqual(summary.rounds, 2)
  assert.ok(summary.ratio_min <= summary.ratio_median && summary.ratio_median <= summary.ratio_max, 'min <= median <= max')
  assert.strictEqual(summary.ratio_min, Math.min(one.ratio, two.ratio))
  assert.strictEqual(typeof summary.cpu_ratio_median, 'number')
  assert.strictEqual(summary.loadavg.length, 3)
})

test('the table: a row per round and the ratios', async () => {
  const { code, stdout, stderr } = await driver('--count', String(COUNT), '--rounds', '1', '--size', '100')
  assert.strictEqual(code, 0, stderr)
  assert.match(stdout, /200 no-op jobs of 100 B per side/)
  const cpu = '[\\d.]+ \\+ [\\d.]+'
  assert.match(stdout, new RegExp(`^\\s+1 {2}zcluster\\s+\\d+\\s+\\d+\\s+[\\d.]+\\s+${cpu}\\s+${cpu}\\s+[\\d.]+\\s+\\d+\\s+\\d+\\s+[\\d.]+$`, 'm'))
  assert.match(stdout, /zcluster \/ BullMQ, min \/ median \/ max of 1: [\d.]+ \/ [\d.]+ \/ [\d.]+/)
  assert.match(stdout, /CPU per job \(worker \+ Redis\), BullMQ \/ zcluster, median: [\d.]+/)
})

test('bad options are refused before anything runs', async () => {
  for (const args of [['--count', '0'], ['--count', 'abc'], ['--size', '4'], ['--redis', 'redis://:secret@127.0.0.1:1']]) {
    const { code, stderr } = await driver(...args)
    assert.strictEqual(code, 64, args.join(' '))
    assert.match(stderr, /^tasks-vs-bullmq: /)
    assert.doesNotMatch(stderr, /secret/, 'the password is not repeated')
  }
})

test('interrupted, it leaves no redis-server or zcluster behind', async () => {
  const child = spawn(process.execPath, [DRIVER, '--cli', cliPath(), '--count', '20000', '--rounds', '1'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  let out = ''
  child.stdout.on('data', d => { out += d })
  await until(() => /redis-server \(redis:\/\/127\.0\.0\.1:(\d+)\)/.test(out), 15000, 'the header')
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)[1])
  const pids = execFileSync('pgrep', ['-P', String(child.pid)]).toString().trim().split('\n').map(Number)
  assert.ok(pids.length >= 1, 'its redis-server runs')
  child.kill('SIGTERM')
  assert.deepStrictEqual(await exited, { code: 1, signal: null })
  await until(() => pids.every(pid => { try { process.kill(pid, 0); return false } catch (e) { return e.code === 'ESRCH' } }), 5000, 'its children to end')
  const refused = await new Promise(resolve => {
    const c = net.createConnection(port, '127.0.0.1', () => { c.end(); resolve(false) })
    c.on('error', () => resolve(true))
  })
  assert.ok(refused, 'nothing listens on its Redis port any more')
})
