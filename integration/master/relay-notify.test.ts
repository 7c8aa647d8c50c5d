/**
 * A separate relay (`createRelay`, what `cqrs relay` runs) is woken by commits on PostgreSQL: the
 * outbox's NOTIFY trigger fires at commit and the relay LISTENs. The relay here polls every ten
 * minutes, so an event that arrives within the test's timeout was published because of the
 * notification. Without the trigger, and on MySQL and SQLite, the poll alone still publishes.
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it, type TestContext } from 'vitest'
import type { Logger } from '../../src/core/logger.js'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { createRelay, cqrsMaster, outboxNotifyStatements } from '../../src/prisma/cqrs-master.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { cqrs } from '../support/cli.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type Dialect, type TestDatabase } from '../support/databases.js'
import { testQueue, uniqueSuffix } from '../support/rabbit.js'

const LONG_POLL_MS = 10 * 60_000

/** A logger that keeps every line and lets a test await one. */
function recordingLogger() {
  const lines: string[] = []
  let waiters: Array<() => void> = []
  const add = (level: string) => (msg: string) => {
    lines.push(`${level} ${msg}`)
    const w = waiters
    waiters = []
    for (const f of w) f()
  }
  const logger: Logger = { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') }
  /** Resolves once `n` lines match `re`. */
  const until = (re: RegExp, n = 1, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${n} log line(s) matching ${re} after ${timeoutMs} ms; log:\n${lines.join('\n')}`)), timeoutMs)
      const check = () => {
        if (lines.filter((l) => re.test(l)).length >= n) {
          clearTimeout(timer)
          resolve()
        } else waiters.push(check)
      }
      check()
    })
  return { logger, lines, until }
}

/** Everything a test opened, closed in reverse order when it finishes. */
function cleanups(ctx: TestContext) {
  const list: Array<() => Promise<unknown>> = []
  ctx.onTestFinished(async () => {
    for (const c of list.splice(0).reverse()) await c().catch(() => {})
  }, 60_000)
  return (fn: () => Promise<unknown>) => list.push(fn)
}

async function setupSeparateRelay(dialect: Dialect, ctx: TestContext, opts: { pollIntervalMs: number; notifyTrigger: boolean }) {
  const defer = cleanups(ctx)
  const db: TestDatabase = await createTestDatabase(dialect, 'notify')
  defer(() => db.drop())
  const cqrsId = `author_${uniqueSuffix()}`
  const q = await testQueue([cqrsId], 'notify')
  defer(() => q.delete())
  const { PrismaClient } = await import(`../../prisma/generated/${dialect}/client.ts`)
  const client = async () => {
    const c = new PrismaClient({ adapter: await adapterFromUrl(db.url), transactionOptions: { maxWait: 15_000, timeout: 30_000 } })
    defer(() => c.$disconnect())
    return c
  }
  const models = { author: { cqrsId } }
  // The app: writes events to the outbox, publishes nothing itself.
  const app = (await client()).$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { enabled: false }, logger: silentLogger }))
  defer(() => app.$cqrs.close())
  const relayClient = await client()
  if (opts.notifyTrigger) {
    // As a user installs it: `cqrs triggers --notify-only` prints it for a migration, `--apply` installs it.
    const env = { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: `_${cqrsId.split('_')[1]}`, AMQP_URL }
    const printed = await cqrs(['triggers', '--notify-only'], env)
    expect(printed.code, printed.stderr).toBe(0)
    expect(printed.stdout).toEqual(expect.stringContaining(outboxNotifyStatements(relayClient).at(-1)!))
    expect(printed.stdout, 'no capture triggers with --notify-only').not.toMatch(/cqrs_author/)
    const applied = await cqrs(['triggers', '--notify-only', '--apply'], env)
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.stderr).toMatch(/installed the outbox NOTIFY trigger/)
  }
  const log = recordingLogger()
  const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
  const relay = createRelay(relayClient, transport, { pollIntervalMs: opts.pollIntervalMs, logger: log.logger, master: { models } })
  defer(() => transport.close())
  defer(() => relay.stop())
  return { db, q, app, relay, log }
}

describe('a separate relay on PostgreSQL is woken by the outbox NOTIFY trigger', () => {
  it.runIf(DIALECTS.includes('postgresql'))('publishes a committed event without waiting for its poll, also after its LISTEN connection was killed', async (ctx) => {
    const { db, q, app, relay, log } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: true })
    relay.start()
    await log.until(/listening for outbox notifications/)
    expect(log.lines.join('\n'), 'the trigger is installed: no warning about polling only').not.toMatch(/no NOTIFY trigger/)

    const a = await app.author.create({ data: { name: 'first', externalId: randomUUID() } })
    await q.until(1)
    await app.author.update({ where: { id: a.id }, data: { name: 'second' } })
    await q.until(2)

    // Kill the LISTEN session: the relay reconnects, LISTENs again, and is woken as before.
    const killed = await db.query<{ ok: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN cqrs_outbox' AND pid <> pg_backend_pid()",
    )
    expect(killed.map((r) => r.ok), 'exactly one LISTEN session, terminated').toEqual([true])
    await log.until(/listening for outbox notifications/, 2)
    expect(log.lines.join('\n')).toMatch(/LISTEN connection was lost/)

    await app.author.update({ where: { id: a.id }, data: { name: 'third' } })
    const received = await q.until(3)
    expect(received.map((m) => [m.body.instance_pk, m.body.instance_data.cqrs_revision, m.body.instance_data.name])).toEqual([
      [a.id, 0, 'first'],
      [a.id, 1, 'second'],
      [a.id, 2, 'third'],
    ])
    await q.barrier()
    expect(q.received.length, 'each event once').toBe(3)
    // A message can arrive before the relay deleted its row; stop() waits for the batch in flight.
    await relay.stop()
    expect(Number((await db.query<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM cqrs_outbox'))[0].n), 'the outbox is empty').toBe(0)
  })
})

describe('without the NOTIFY trigger a separate relay finds events by its poll', () => {
  it.concurrent.for(DIALECTS)('on %s', async (dialect, ctx) => {
    const { q, app, relay, log } = await setupSeparateRelay(dialect, ctx, { pollIntervalMs: 100, notifyTrigger: false })
    relay.start()
    const a = await app.author.create({ data: { name: 'polled', externalId: randomUUID() } })
    await app.author.update({ where: { id: a.id }, data: { name: 'polled again' } })
    const received = await q.until(2)
    expect(received.map((m) => m.body.instance_data.cqrs_revision)).toEqual([0, 1])
    if (dialect === 'postgresql') {
      await log.until(/no NOTIFY trigger/)
      expect(log.lines.filter((l) => l.startsWith('warn')), 'the one warning names the fix').toEqual([expect.stringContaining('cqrs triggers --notify-only --apply')])
    } else expect(log.lines.filter((l) => /LISTEN|NOTIFY/.test(l)), 'no LISTEN on this database').toEqual([])
  })
})
