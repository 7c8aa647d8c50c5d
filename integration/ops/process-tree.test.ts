/**
 * `cqrs consume -w 2` as a process tree that cleans up after itself: each process in turn (a worker,
 * the supervisor, a wrapper such as `sh -c` or npx) is killed, and the consumers RabbitMQ reports on
 * the queue are counted. No orphan may keep consuming; a killed worker is replaced; a signal to any
 * process stops them all, with nothing lost.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import amqp from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { BIN, TEST_CONFIG } from '../support/cli.js'
import { eventually, tableDiff } from '../support/compare.js'
import { AMQP_URL, ROOT, createTestDatabase, type TestDatabase } from '../support/databases.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { masterClient } from '../support/master.js'

const dialect = 'postgresql'

/** A process of the tree under test, with everything it (and what it forked) wrote to stderr. */
interface Tree {
  top: ChildProcess
  stderr: () => string
  /** Resolves with the stderr so far once `pattern` matches it. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
}

/** A process is gone when it no longer exists or is a zombie nobody reaped. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

const pids = (text: string, pattern: RegExp) => [...text.matchAll(pattern)].map((m) => Number(m[1]))

// Each test starts several node processes: generous limits for a busy 2-core machine.
describe('cqrs consume process tree', { timeout: 150_000 }, () => {
  let master: TestDatabase
  let replica: TestDatabase
  let prisma: any
  let queue: string
  let env: Record<string, string>
  let amqpConn: amqp.ChannelModel
  const trees: Tree[] = []
  const spawned = new Set<number>()

  beforeAll(async () => {
    ;[master, replica] = await Promise.all([createTestDatabase(dialect, 'ptm'), createTestDatabase(dialect, 'ptr')])
    amqpConn = await amqp.connect(AMQP_URL)
    amqpConn.on('error', () => {})
  })
  afterAll(async () => {
    await amqpConn?.close().catch(() => {})
    await Promise.allSettled([master?.drop(), replica?.drop()])
  })
  afterEach(async () => {
    // Whatever a failed test left running: every pid the trees printed, then the tops.
    for (const t of trees.splice(0)) for (const pid of pids(t.stderr(), /\(pid (\d+)\)/g)) spawned.add(pid)
    for (const pid of spawned) if (alive(pid)) process.kill(pid, 'SIGKILL')
    spawned.clear()
    await prisma?.$cqrs.close()
    await deleteQueues(queue)
  })

  async function setup() {
    const suffix = `_p${Math.random().toString(36).slice(2, 8)}`
    queue = `tree${suffix}`
    env = { CQRS_CONFIG: TEST_CONFIG, CQRS_TEST_DIALECT: dialect, CQRS_REPLICA_URL: replica.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: suffix, AMQP_URL }
    prisma = await masterClient(await master.client(), { transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, models: { author: { cqrsId: `author${suffix}` } } })
    await master.exec('DELETE FROM author; DELETE FROM cqrs_outbox')
    await replica.exec('DELETE FROM author_ref; DELETE FROM cqrs_tombstone')
  }

  /** Start `command` (the CLI, or a wrapper around it) with pipes, collecting stderr of the whole tree. */
  function start(command: string, args: string[]): Tree {
    const top = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
    spawned.add(top.pid!)
    let text = ''
    let waiters: Array<() => void> = []
    top.stderr!.on('data', (d) => {
      text += d
      for (const w of waiters.splice(0)) w()
    })
    const tree: Tree = {
      top,
      stderr: () => text,
      waitFor: (pattern, timeoutMs = 60_000) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in stderr:\n${text}`)), timeoutMs)
          const check = () => {
            if (pattern.test(text)) {
              clearTimeout(timer)
              resolve(text)
            } else waiters.push(check)
          }
          check()
        }),
    }
    trees.push(tree)
    return tree
  }
  const consumeArgs = ['consume', '-w', '2']
  const cli = () => start(process.execPath, [BIN, ...consumeArgs])

  /** Waits for both workers to be ready; returns the supervisor's and the workers' pids. */
  async function ready(tree: Tree, workersSeen = 2) {
    await tree.waitFor(new RegExp(`(worker \\d: ready[^]*){${workersSeen}}`))
    const text = tree.stderr()
    const [supervisor] = pids(text, /supervising 2 workers \(pid (\d+)\)/g)
    const workers = new Map<string, number>()
    for (const m of text.matchAll(/worker (\d): ready.*\(pid (\d+)\)/g)) workers.set(m[1], Number(m[2]))
    return { supervisor, workers }
  }

  /** The consumers RabbitMQ reports on the queue, awaited until they are `n`. */
  async function consumersBecome(n: number, timeoutMs = 60_000) {
    let last = -1
    await eventually(
      async () => {
        const ch = await amqpConn.createChannel()
        try {
          last = (await ch.checkQueue(queue)).consumerCount
        } finally {
          await ch.close().catch(() => {})
        }
        return last === n ? [] : [`${last} consumers on ${queue}`]
      },
      timeoutMs,
      `${n} consumers on the queue`,
    )
  }
  const allGone = (list: number[]) => eventually(async () => list.filter(alive).map((p) => `pid ${p} still running`), 60_000, 'every process to exit')

  it('a worker killed with SIGKILL is replaced; the supervisor killed with SIGKILL takes its workers with it', async () => {
    await setup()
    const tree = cli()
    const first = await ready(tree)
    await consumersBecome(2)
    process.kill(first.workers.get('1')!, 'SIGKILL')
    await tree.waitFor(/worker 1 exited \(SIGKILL\); restarting/)
    const second = await ready(tree, 3)
    expect(second.workers.get('1')).not.toBe(first.workers.get('1'))
    await consumersBecome(2)
    process.kill(second.supervisor, 'SIGKILL')
    await consumersBecome(0)
    await allGone([...second.workers.values()])
    expect(tree.stderr()).toMatch(/worker \d: supervisor gone: drained and stopped/)
  })

  it('a shell wrapper killed with SIGKILL: the supervisor sees its parent go and stops its workers', async () => {
    await setup()
    // `; true` keeps the shell as the parent instead of exec'ing the CLI.
    const tree = start('sh', ['-c', `"${process.execPath}" "${BIN}" ${consumeArgs.join(' ')}; true`])
    const { supervisor, workers } = await ready(tree)
    await consumersBecome(2)
    tree.top.kill('SIGKILL')
    await consumersBecome(0)
    await allGone([supervisor, ...workers.values()])
    expect(tree.stderr()).toMatch(/cqrs consume: parent gone \(pid \d+\); stopping 2 worker\(s\)/)
  })

  it.each(['SIGTERM', 'SIGKILL'] as const)('%s to a node wrapper that does not pass it on (as npx did) ends the whole tree', async (signal) => {
    await setup()
    const wrapper = `require('child_process').spawn(process.execPath, ${JSON.stringify([BIN, ...consumeArgs])}, { stdio: 'inherit' }).on('exit', (c) => process.exit(c ?? 1))`
    const tree = start(process.execPath, ['-e', wrapper])
    const { supervisor, workers } = await ready(tree)
    await consumersBecome(2)
    tree.top.kill(signal)
    await consumersBecome(0)
    await allGone([supervisor, ...workers.values()])
  })

  it('a single consumer (-w 1) under a shell killed with SIGKILL stops too', async () => {
    await setup()
    const tree = start('sh', ['-c', `"${process.execPath}" "${BIN}" consume; true`])
    await tree.waitFor(/cqrs consume: ready/)
    const [pid] = pids(tree.stderr(), /ready.*\(pid (\d+)\)/g)
    await consumersBecome(1)
    tree.top.kill('SIGKILL')
    await consumersBecome(0)
    await allGone([pid])
    expect(tree.stderr()).toMatch(/parent gone \(pid \d+\): drained and stopped/)
  })

  it('SIGTERM to one worker stops the tree with exit 0, and nothing in flight is lost', async () => {
    await setup()
    const tree = cli()
    const { supervisor, workers } = await ready(tree)
    const ids: number[] = []
    for (let i = 0; i < 120; i++) ids.push((await prisma.author.create({ data: { name: `t${i}`, externalId: `e${i}` } })).id)
    // Writes keep flowing while the tree stops: some land before, some after.
    const writes = (async () => {
      for (let i = 0; i < 60; i++) await prisma.author.update({ where: { id: ids[i] }, data: { rating: { increment: 1 } } })
    })()
    await prisma.$cqrs.flush()
    process.kill(workers.get('2')!, 'SIGTERM')
    const exit = await new Promise<number | null>((resolve) => tree.top.once('exit', (code) => resolve(code)))
    expect(exit).toBe(0)
    await consumersBecome(0)
    await allGone([supervisor, ...workers.values()])
    expect(tree.stderr()).toMatch(/worker 2 got SIGTERM; stopping/)
    await writes
    await prisma.$cqrs.flush()
    // A fresh tree applies whatever the stopped one returned to the queue.
    const again = cli()
    await ready(again)
    await eventually(() => tableDiff(master, 'author', replica, 'author_ref'), 90_000)
    again.top.kill('SIGTERM')
    await consumersBecome(0)
  })
})
