/**
 * The relay against real databases and a real RabbitMQ (DESIGN.md G1, Master section):
 * events leave with the properties of PROTOCOL.md, one row's events leave in revision order, several
 * relays on one outbox publish each event once, a process killed after commit has its events
 * published by the next relay, and a relay killed while it holds claimed rows gives them up.
 *
 * Every test has its own database, its own cqrs_id (`author_<random>`) and its own queue bound to it,
 * so tests running in parallel on the shared `cqrs` exchange never see each other's messages.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import net from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it, type TestContext } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { cqrsMaster, type CqrsMasterHandle } from '../../src/prisma/cqrs-master.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { AMQP_URL, createTestDatabase, DIALECTS, ROOT, type Dialect, type TestDatabase } from '../support/databases.js'
import { fixture } from '../support/fixtures.js'
import { committedEvents, outboxCount } from '../support/outbox.js'
import { eventCounts, revisionsByPk, testQueue, uniqueSuffix, type Received, type TestQueue } from '../support/rabbit.js'
import { TcpProxy } from '../support/tcp-proxy.js'

const NINE_KEYS = ['signal_type', 'cqrs_id', 'instance_data', 'previous_data', 'instance_pk', 'correlation_id', 'retries', 'expires', 'meta']
const DATETIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$/

// ---- per-test resources, released when the test finishes whatever happened ----------------------
// Tests of one scenario run concurrently for the three databases, so each test keeps its own list.
type Master = any & { $cqrs: CqrsMasterHandle }

/**
 * A PrismaClient on `db` with generous transaction limits: the tests share a busy machine, where
 * Prisma's defaults (2 s to start a transaction, 5 s to finish it) fail for reasons of load alone.
 */
async function patientClient(db: TestDatabase): Promise<any> {
  const { PrismaClient } = await import(`../../prisma/generated/${db.dialect}/client.ts`)
  return new PrismaClient({ adapter: await adapterFromUrl(db.url), transactionOptions: { maxWait: 15_000, timeout: 30_000 } })
}

/** A cleanup step that hangs must not keep the next ones (queues, databases) from running. */
const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`cleanup step still running after ${ms} ms`)), ms).unref())])

class Scope {
  private readonly cleanups: Array<() => Promise<unknown>> = []
  constructor(ctx: TestContext) {
    ctx.onTestFinished(async () => {
      for (const c of this.cleanups.splice(0).reverse()) await withTimeout(c(), 15_000).catch(() => {})
    }, 60_000)
  }

  defer(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn)
  }

  async database(dialect: Dialect): Promise<TestDatabase> {
    const db = await createTestDatabase(dialect, 'relay')
    this.defer(() => db.drop())
    return db
  }

  async queue(cqrsId: string): Promise<TestQueue> {
    const q = await testQueue([cqrsId], 'relay')
    this.defer(() => q.delete())
    return q
  }

  /** An extended client on `db` whose relay publishes to RabbitMQ (at `url`). */
  async master(db: TestDatabase, cqrsId: string, opts: { relay?: Record<string, unknown>; url?: string; keys?: 'field' | 'column' } = {}): Promise<Master> {
    const base = await patientClient(db)
    const prisma = base.$extends(
      cqrsMaster({
        capture: 'extension',
        transport: rabbitmq({ url: opts.url ?? AMQP_URL, logger: silentLogger }),
        models: { author: { cqrsId, ...(opts.keys ? { keys: opts.keys } : {}) } },
        relay: opts.relay ?? { enabled: true },
        logger: silentLogger,
      }),
    )
    this.defer(async () => {
      await prisma.$cqrs.close()
      await base.$disconnect()
    })
    return prisma
  }

  async proxy(): Promise<TcpProxy> {
    const p = await TcpProxy.start()
    this.defer(() => p.close())
    return p
  }

  spawn(script: string, job: Record<string, unknown>, args: string[] = []): Child {
    const child = spawnFixture(script, job, args)
    this.defer(async () => {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL')
      await child.exited
    })
    return child
  }
}


/** Each expected event arrived exactly once, and nothing else arrived. */
function expectExactlyOnce(received: Received[], expected: Set<string>) {
  const counts = eventCounts(received)
  const dupes = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`)
  const missing = [...expected].filter((k) => !counts.has(k))
  const extra = [...counts.keys()].filter((k) => !expected.has(k))
  expect({ dupes, missing, extra }, 'every committed event published exactly once').toEqual({ dupes: [], missing: [], extra: [] })
  expect(received.length).toBe(expected.size)
  const ids = received.map((r) => r.properties.messageId)
  expect(new Set(ids).size, 'one message per outbox id (messageId)').toBe(received.length)
}

// ---- child processes (integration/master/fixtures) ---------------------------------------------
interface Child {
  proc: ChildProcessWithoutNullStreams
  lines: string[]
  stderr: () => string
  /** Resolves with the first line (from the start) matching `re`, and every line so far. */
  line(re: RegExp, timeoutMs?: number): Promise<string>
  /** Resolves once `n` lines match `re`. */
  lineCount(re: RegExp, n: number, timeoutMs?: number): Promise<string[]>
  send(line: string): void
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

function spawnFixture(script: string, job: Record<string, unknown>, args: string[] = []): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'integration/master/fixtures', script), ...args], {
    cwd: ROOT,
    env: { ...process.env, CQRS_FIXTURE: JSON.stringify(job) },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let err = ''
  let waiters: Array<() => void> = []
  let dead = false
  const notify = () => {
    const w = waiters
    waiters = []
    for (const f of w) f()
  }
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l)
    notify()
  })
  proc.stderr.on('data', (d) => (err += String(d)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      dead = true
      notify()
      resolve({ code, signal })
    }),
  )
  const waitFor = <T>(get: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script}: no ${what} after ${timeoutMs} ms; stdout:\n${lines.slice(-20).join('\n')}\nstderr:\n${err}`)), timeoutMs)
      const check = () => {
        const v = get()
        if (v !== undefined) {
          clearTimeout(timer)
          resolve(v)
        } else if (dead) {
          clearTimeout(timer)
          reject(new Error(`${script} exited before ${what}; stdout:\n${lines.slice(-20).join('\n')}\nstderr:\n${err}`))
        } else waiters.push(check)
      }
      check()
    })
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    line: (re, timeoutMs = 45_000) => waitFor(() => lines.find((l) => re.test(l)), `line matching ${re}`, timeoutMs),
    lineCount: (re, n, timeoutMs = 45_000) =>
      waitFor(
        () => {
          const m = lines.filter((l) => re.test(l))
          return m.length >= n ? m : undefined
        },
        `${n} lines matching ${re}`,
        timeoutMs,
      ),
    send: (l) => proc.stdin.write(`${l}\n`),
    exited,
  }
  return child
}

async function sigkill(child: Child) {
  child.proc.kill('SIGKILL')
  const { signal } = await child.exited
  expect(signal).toBe('SIGKILL')
}

/** A port nothing listens on: the broker of a process that cannot publish. */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** True when another session holds the outbox rows (PostgreSQL, MariaDB) or the write lock (SQLite). */
async function outboxIsLocked(db: TestDatabase): Promise<boolean> {
  if (db.dialect === 'sqlite') {
    const Database = (await import('better-sqlite3')).default
    const probe = new Database(db.url.replace(/^file:/, ''), { timeout: 0 })
    try {
      probe.exec('BEGIN IMMEDIATE')
      probe.exec('ROLLBACK')
      return false
    } catch (e) {
      if (/SQLITE_BUSY|locked/i.test(`${(e as { code?: string }).code} ${(e as Error).message}`)) return true
      throw e
    } finally {
      probe.close()
    }
  }
  try {
    await db.query('SELECT id FROM cqrs_outbox FOR UPDATE NOWAIT')
    return false
  } catch (e) {
    if (/lock/i.test((e as Error).message)) return true
    throw e
  }
}

/** The shape of a JSON value: key order and the type of every leaf (null stays 'null'). */
function shape(v: unknown): unknown {
  if (v === null) return 'null'
  if (Array.isArray(v)) return v.map(shape)
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, shape(x)]))
  return typeof v
}

const bodyOf = (name: string) => JSON.parse(fixture(name).body)

describe('publishes persistent messages routed by cqrs_id, with the nine keys of the django-cqrs fixtures', () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const scope = new Scope(ctx)
    const db = await scope.database(dialect)
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await scope.queue(cqrsId)
    const prisma = await scope.master(db, cqrsId, { keys: 'column' })

    const a = await prisma.author.create({ data: { name: 'Author 0', externalId: '593e94de-aae7-4eed-8e91-a9a32f1abd3b', nickname: 'nick-0' } })
    await prisma.author.update({
      where: { id: a.id },
      data: { name: 'Author 1', birthDate: new Date('1951-02-02T00:00:00Z'), rating: 2, balance: '1.02', lastSeen: new Date(), isActive: false, profile: { updated: true, rating: 2 }, nickname: 'updated' },
    })
    await prisma.author.delete({ where: { id: a.id } })
    const [created, updated, deleted] = await q.until(3)

    for (const m of [created, updated, deleted]) {
      expect(m.properties.deliveryMode, 'persistent (delivery_mode 2)').toBe(2)
      expect(m.fields.exchange).toBe('cqrs')
      expect(m.fields.routingKey, 'routing key is the cqrs_id').toBe(cqrsId)
      expect(m.properties.messageId).toMatch(/^\d+$/)
      expect(Object.keys(m.body), 'the nine keys, in order').toEqual(NINE_KEYS)
      expect(m.body).toMatchObject({ cqrs_id: cqrsId, instance_pk: a.id, correlation_id: null, retries: 0, expires: null, meta: {}, previous_data: null })
      expect(m.body.instance_data.cqrs_updated).toMatch(DATETIME)
    }
    // The same shape as what django-cqrs sent (only `expires` differs: cqrs-sync sends null unless told).
    const like = (ours: any, theirs: any) => [shape({ ...ours, expires: 'string' }), shape({ ...theirs, expires: 'string' })]
    const [c1, c2] = like(created.body, bodyOf('save-create.json'))
    expect(c1, 'SAVE on create is shaped like protocol/save-create.json').toEqual(c2)
    const [u1, u2] = like(updated.body, bodyOf('save-update.json'))
    expect(u1, 'SAVE on update is shaped like protocol/save-update.json').toEqual(u2)
    // toEqual ignores key order; the order of instance_data's keys matches django-cqrs too.
    expect(Object.keys(created.body.instance_data), 'instance_data keys in the order of protocol/save-create.json').toEqual(Object.keys(bodyOf('save-create.json').instance_data))
    expect(Object.keys(updated.body.instance_data)).toEqual(Object.keys(bodyOf('save-update.json').instance_data))
    expect(Object.keys(deleted.body.instance_data), 'DELETE instance_data keys in the order of protocol/delete.json').toEqual(Object.keys(bodyOf('delete.json').instance_data))
    const del = bodyOf('delete.json')
    expect(shape({ ...deleted.body, expires: 'x' }), 'DELETE is shaped like protocol/delete.json').toEqual(shape({ ...del, expires: 'x' }))

    expect([created, updated, deleted].map((m) => [m.body.signal_type, m.body.instance_data.cqrs_revision])).toEqual([
      ['SAVE', 0],
      ['SAVE', 1],
      ['DELETE', 1],
    ])
    expect(created.body.instance_data).toMatchObject({ id: a.id, name: 'Author 0', nickname: 'nick-0', birth_date: null, is_active: true, balance: 0 })
    expect(updated.body.instance_data).toMatchObject({ name: 'Author 1', rating: 2, balance: 1.02, is_active: false, profile: { updated: true, rating: 2 } })
    if (dialect !== 'sqlite') expect(updated.body.instance_data.birth_date).toBe('1951-02-02')
    expect(deleted.body.instance_data).toEqual({ id: a.id, cqrs_revision: 1, cqrs_updated: expect.stringMatching(DATETIME) })
    await q.barrier()
    expect(q.received).toHaveLength(3)
  })
})

describe('publishes the events of one row in revision order while several callers update it concurrently', () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const scope = new Scope(ctx)
    const db = await scope.database(dialect)
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await scope.queue(cqrsId)
    // Two clients, each with its in-process relay (small batches, so the relays interleave). SQLite has
    // one writer and a synchronous driver: two clients in one process would block each other, so one.
    const relay = { enabled: true, batchSize: 5, pollIntervalMs: 50 }
    const clients: Master[] = [await scope.master(db, cqrsId, { relay })]
    if (dialect !== 'sqlite') clients.push(await scope.master(db, cqrsId, { relay }))
    const rows = await Promise.all([0, 1, 2].map((i) => clients[0].author.create({ data: { name: `r${i}`, externalId: `r${i}` } })))

    const CALLERS = 6
    const UPDATES = 15
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, c) => {
        const prisma = clients[c % clients.length]
        for (let i = 0; i < UPDATES; i++) {
          const row = rows[(c + i) % rows.length]
          await prisma.author.update({ where: { id: row.id }, data: { rating: { increment: 1 }, nickname: `c${c}-${i}` } })
        }
      }),
    )
    const total = rows.length + CALLERS * UPDATES
    await q.until(total)
    await Promise.all(clients.map((c) => c.$cqrs.flush()))
    await q.barrier()

    expectExactlyOnce(q.received, await committedEvents(db))
    for (const [pk, revisions] of revisionsByPk(q.received)) {
      const increasing = revisions.every((r, i) => i === 0 || r > revisions[i - 1])
      expect(increasing, `revisions of pk ${pk} arrive strictly increasing: ${revisions.join(',')}`).toBe(true)
      expect(revisions[0]).toBe(0)
    }
  })
})

describe('two relays on one outbox (in two processes, at once) publish each event once', () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const scope = new Scope(ctx)
    const db = await scope.database(dialect)
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await scope.queue(cqrsId)
    const writer = await scope.master(db, cqrsId, { relay: { enabled: false, batchSize: 7 } })
    const ROWS = 50
    // In chunks: on MySQL createMany is one insert per row inside one transaction (Prisma's 5 s limit).
    for (let c = 0; c < ROWS; c += 10) await writer.author.createMany({ data: Array.from({ length: 10 }, (_, i) => ({ name: `n${c + i}`, externalId: `n${c + i}` })) })
    await writer.author.updateMany({ data: { rating: 1 } })
    await writer.author.updateMany({ data: { rating: 2 } })
    const N = ROWS * 3
    expect(await outboxCount(db)).toBe(N)

    // A relay in a process of its own (`cqrs relay`) and this process's relay, at the same time.
    const other = scope.spawn('relay.ts', { dialect, url: db.url, amqpUrl: AMQP_URL, cqrsId, batchSize: 7 })
    await other.line(/^READY$/)
    other.send('GO')
    await other.line(/^PUBLISH /)
    const mine = await writer.$cqrs.flush()
    const theirs = Number((await other.line(/^DONE \d+$/)).split(' ')[1])
    expect(mine + theirs, `published by the other process ${theirs}, by this one ${mine}`).toBe(N)
    // Both took turns (row locks hand the next rows to the waiting relay) on MySQL. SQLite's writer lock may
    // let one starve, and on PostgreSQL a pipelining relay claims its next batch before the waiting one
    // gets the lock, so one relay may publish all: there, once each (above) is the guarantee.
    if (dialect === 'mysql') expect(Math.min(mine, theirs), `both relays published: other process ${theirs}, this one ${mine}`).toBeGreaterThan(0)

    await q.barrier()
    expectExactlyOnce(q.received, await committedEvents(db))
    expect(await outboxCount(db)).toBe(0)
  })
})

describe('a process killed (SIGKILL) after commit and before publishing has its events published by the next relay', () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const scope = new Scope(ctx)
    const db = await scope.database(dialect)
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await scope.queue(cqrsId)
    // The child's relay runs, but its broker is a closed port: commits succeed, nothing is published.
    const child = scope.spawn('writer.ts', { dialect, url: db.url, amqpUrl: `amqp://guest:guest@127.0.0.1:${await closedPort()}`, cqrsId, writers: 3 })
    const reported = await child.lineCount(/^COMMITTED /, 20)
    await sigkill(child)

    const expected = await committedEvents(db)
    for (const l of reported) {
      const [, pk, rev] = l.split(' ')
      expect(expected.has(`${pk}:${rev}:SAVE`), `reported commit ${pk}@${rev} is in the database`).toBe(true)
    }
    expect(await outboxCount(db), 'every committed event waits in the outbox').toBe(expected.size)
    await q.barrier()
    expect(q.received, 'the killed process published nothing').toHaveLength(0)

    const next = await scope.master(db, cqrsId, { relay: { enabled: false } })
    expect(await next.$cqrs.flush()).toBe(expected.size)
    await q.barrier()
    expectExactlyOnce(q.received, expected)
    for (const [pk, revisions] of revisionsByPk(q.received)) expect(revisions, `pk ${pk} in order`).toEqual(revisions.map((_, i) => i))
  })
})

describe("a relay killed (SIGKILL) while it holds claimed rows has them published by the next relay", () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const scope = new Scope(ctx)
    const db = await scope.database(dialect)
    const cqrsId = `author_${uniqueSuffix()}`
    const q = await scope.queue(cqrsId)
    const writer = await scope.master(db, cqrsId, { relay: { enabled: false } })
    await writer.author.createMany({ data: Array.from({ length: 10 }, (_, i) => ({ name: `k${i}`, externalId: `k${i}` })) })
    await writer.author.updateMany({ data: { rating: 1 } })
    const expected = await committedEvents(db)
    expect(await outboxCount(db)).toBe(expected.size)

    // The child's broker is behind a proxy that, once the child is connected, forwards nothing:
    // its publish is written, never confirmed, and the claim transaction stays open.
    const proxy = await scope.proxy()
    const child = scope.spawn('relay.ts', { dialect, url: db.url, amqpUrl: proxy.amqpUrl, cqrsId, batchSize: 500 }, ['loop'])
    await child.line(/^READY$/)
    proxy.blackhole()
    child.send('GO')
    const claimed = (await child.line(/^PUBLISH /)).slice(8).split(',')
    expect(claimed).toHaveLength(expected.size)
    await proxy.swallowedAtLeast(1)
    expect(await outboxIsLocked(db), 'the child holds its claim (rows locked) while its publish hangs').toBe(true)
    await sigkill(child)

    await q.barrier()
    expect(q.received, 'nothing reached the broker from the killed relay').toHaveLength(0)
    const next = await scope.master(db, cqrsId, { relay: { enabled: false } })
    expect(await next.$cqrs.flush()).toBe(expected.size)
    await q.barrier()
    expectExactlyOnce(q.received, expected)
    expect(q.received.map((r) => r.properties.messageId).sort(), 'the rows the killed relay had claimed').toEqual([...claimed].sort())
  })
})
