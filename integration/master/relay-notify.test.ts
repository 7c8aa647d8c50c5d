/**
 * A separate relay (`createRelay`, what `cqrs relay` runs) is woken by commits on PostgreSQL: the
 * outbox's NOTIFY trigger fires at commit and the relay LISTENs. The relay here polls every ten
 * minutes, so an event that arrives within the test's timeout was published because of the
 * notification. Without the trigger, and on MySQL and SQLite, the poll alone still publishes.
 */
import { randomUUID } from 'node:crypto'
import { describe, expect, it, type TestContext } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { adapterFromUrl } from '../../src/prisma/adapter-from-url.js'
import { createRelay, cqrsMaster, outboxNotifyStatements } from '../../src/prisma/cqrs-master.js'
import { cqrsStatus } from '../../src/prisma/cqrs-status.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { cqrs, spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type Dialect, type TestDatabase } from '../support/databases.js'
import { committedEvents, outboxCount } from '../support/outbox.js'
import { recordingLogger } from '../support/recording-logger.js'
import { allArrived, eventCounts, revisionsByPk, testQueue, uniqueSuffix, type Received } from '../support/rabbit.js'
import { TcpProxy } from '../support/tcp-proxy.js'

const LONG_POLL_MS = 10 * 60_000

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
  /** Another separate relay on this outbox, with its own client, transport and log. */
  const newRelay = async (c?: any, amqpUrl = AMQP_URL) => {
    const log = recordingLogger()
    const transport = rabbitmq({ url: amqpUrl, logger: silentLogger, reconnect: { initialMs: 50, maxMs: 250 } })
    const relay = createRelay(c ?? (await client()), transport, { pollIntervalMs: opts.pollIntervalMs, logger: log.logger, master: { models } })
    defer(() => transport.close())
    defer(() => relay.stop())
    return { relay, log }
  }
  const { relay, log } = await newRelay(relayClient)
  const cliEnv = { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: `_${cqrsId.split('_')[1]}`, AMQP_URL }
  return { db, q, app, relay, log, newRelay, cliEnv, defer, client, models }
}


/**
 * Until the outbox is empty: the relay deleted (and so counted) what it published. A message can reach
 * the queue before its confirm reaches the relay.
 */
async function outboxEmptied(db: TestDatabase, what: string): Promise<void> {
  for (let i = 0; (await outboxCount(db)) > 0; i++) {
    if (i > 1500) throw new Error(`the outbox did not empty within 30 s (${what})`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** What arrived against what was committed: copies, events missing, events nobody committed. */
function tally(received: Received[], expected: Set<string>) {
  const counts = eventCounts(received)
  return {
    dupes: [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`),
    missing: [...expected].filter((k) => !counts.has(k)),
    extra: [...counts.keys()].filter((k) => !expected.has(k)),
  }
}

/**
 * `writers` concurrent loops, each creating a row and updating it `updates` times (every update its
 * own commit), until `until` resolves or `rounds` rounds are done. Resolves with the rows written.
 */
async function writeLoad(app: any, opts: { writers: number; rounds: number; updates: number; until?: Promise<unknown> }): Promise<number> {
  let stopped = false
  void opts.until?.then(
    () => (stopped = true),
    () => (stopped = true),
  )
  let rows = 0
  await Promise.all(
    Array.from({ length: opts.writers }, async (_, w) => {
      for (let i = 0; i < opts.rounds && !stopped; i++) {
        const a = await app.author.create({ data: { name: `w${w}-${i}`, externalId: randomUUID() } })
        rows++
        for (let u = 1; u <= opts.updates; u++) await app.author.update({ where: { id: a.id }, data: { name: `w${w}-${i}-${u}` } })
      }
    }),
  )
  return rows
}

describe('a separate relay on PostgreSQL is woken by the outbox NOTIFY trigger', () => {
  it.runIf(DIALECTS.includes('postgresql'))('publishes a committed event without waiting for its poll, also after its LISTEN connection was killed', async (ctx) => {
    const { db, q, app, relay, log } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: true })
    relay.start()
    await log.until(/listening for outbox notifications/)
    expect(log.lines.join('\n'), 'the trigger is installed: no warning about polling only').not.toMatch(/no trigger that wakes relays/)

    const a = await app.author.create({ data: { name: 'first', externalId: randomUUID() } })
    await q.until(1)
    await outboxEmptied(db, 'first')
    // The first may have gone with the claim a relay makes as it starts listening; not the next.
    const notified = relay.stats.notified
    await app.author.update({ where: { id: a.id }, data: { name: 'second' } })
    await q.until(2)
    await outboxEmptied(db, 'second')
    expect(relay.stats.notified - notified, 'published from its notification, not claimed (the poll is ten minutes away)').toBe(1)

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
      await log.until(/no trigger that wakes relays/)
      expect(log.lines.filter((l) => l.startsWith('warn')), 'the one warning names the fix').toEqual([expect.stringContaining('cqrs triggers --wake-only --apply')])
    } else expect(log.lines.filter((l) => /LISTEN|NOTIFY/.test(l)), 'no LISTEN on this database').toEqual([])
  })
})

describe('relays of one PostgreSQL outbox with the row-level trigger elect a leader, which publishes rows as they commit', () => {
  it.runIf(DIALECTS.includes('postgresql'))("in-process relays of two app processes: one leads and publishes the other's commits too, each once", async (ctx) => {
    const { db, q, client, models, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: true })
    // Two apps with the quick start's in-process relay (polling every ten minutes), as two processes would be.
    const apps = await Promise.all(
      [0, 1].map(async () => {
        const log = recordingLogger()
        const app = (await client()).$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { pollIntervalMs: LONG_POLL_MS }, logger: log.logger }))
        defer(() => app.$cqrs.close())
        return { app, log }
      }),
    )
    await Promise.all(apps.map((a) => a.log.until(/leading|another relay leads/)))
    const leaders = apps.filter((a) => a.log.lines.some((l) => /leading/.test(l)))
    expect(leaders, 'exactly one leads').toHaveLength(1)
    // A first event, which the claim the leader makes as it starts may take; the count starts after it.
    await apps[1].app.author.create({ data: { name: 'warm-up', externalId: randomUUID() } })
    await q.until(1)
    await outboxEmptied(db, 'warm-up')
    const notified = leaders[0].app.$cqrs.relay.stats.notified

    await Promise.all(apps.map((a) => writeLoad(a.app, { writers: 2, rounds: 10, updates: 2 })))
    const expected = await committedEvents(db)
    expect(expected.size).toBe(2 * 2 * 10 * 3 + 1)
    await q.until(expected.size)
    for (const a of apps) await a.app.$cqrs.close()
    await q.barrier()
    expect(tally(q.received, expected)).toEqual({ dupes: [], missing: [], extra: [] })
    for (const [pk, revs] of revisionsByPk(q.received.slice(1))) expect(revs, `revisions of author ${pk} in order`).toEqual([0, 1, 2])
    const [leader, follower] = apps[0] === leaders[0] ? apps : [apps[1], apps[0]]
    expect(leader.app.$cqrs.relay.stats.notified - notified, "the leader published every event after the first, the other app's too, from its notification").toBe(expected.size - 1)
    expect(follower.app.$cqrs.relay.stats.published, "the follower's commits did not make it claim").toBe(0)
    expect(await outboxCount(db), 'the outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('two relays: one leads, the other leaves its rows alone; each event arrives once, in revision order', async (ctx) => {
    const { db, q, app, relay, log, newRelay, client } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 50, notifyTrigger: true })
    relay.start()
    await log.until(/leading/)
    const other = await newRelay()
    other.relay.start()
    await other.log.until(/another relay leads/)
    expect([relay.role, other.relay.role]).toEqual(['leader', 'follower'])
    // `cqrs status` names the leader's session: the one that LISTENs.
    const statusClient = await client()
    const listening = await db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN cqrs_outbox'")
    expect(listening).toHaveLength(1)
    const status = await cqrsStatus({ master: { prisma: statusClient } })
    expect(status.master?.relays).toEqual({ notifyTrigger: 'row', leader: expect.objectContaining({ pid: Number(listening[0].pid) }) })
    // A first event, which the claim the leader makes as it starts may take; the count starts after it.
    await app.author.create({ data: { name: 'warm-up', externalId: randomUUID() } })
    await q.until(1)
    await outboxEmptied(db, 'warm-up')
    const notified = relay.stats.notified

    await writeLoad(app, { writers: 4, rounds: 25, updates: 2 })
    const expected = await committedEvents(db)
    expect(expected.size).toBe(4 * 25 * 3 + 1)
    await q.until(expected.size)
    await relay.stop()
    await other.relay.stop()
    expect((await cqrsStatus({ master: { prisma: statusClient } })).master?.relays, 'stopped, nobody leads').toEqual({ notifyTrigger: 'row', leader: null })
    await q.barrier()
    expect(tally(q.received, expected)).toEqual({ dupes: [], missing: [], extra: [] })
    for (const [pk, revs] of revisionsByPk(q.received.slice(1))) expect(revs, `revisions of author ${pk} in order`).toEqual([0, 1, 2])
    expect(relay.stats.notified - notified, 'the leader published every event after the first from its notification (its polls look for rows a second old)').toBe(expected.size - 1)
    expect(other.relay.stats.published, 'the follower had nothing to take').toBe(0)
    expect(await outboxCount(db), 'the outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('a leader killed (SIGKILL) while rows flow: the follower takes the lead and every event arrives', async (ctx) => {
    const { db, q, app, relay, log, cliEnv, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 50, notifyTrigger: true })
    // The leader: `cqrs relay` in a process of its own.
    const leader = spawnCqrs(['relay', '--poll-ms', '50'], { ...cliEnv, CQRS_LOG_LEVEL: 'info' })
    defer(() => stop(leader, 'SIGKILL'))
    await waitForStderr(leader, /leading/)
    relay.start()
    await log.until(/another relay leads/)

    let killed!: () => void
    const afterKill = new Promise<void>((resolve) => (killed = resolve))
    const writing = writeLoad(app, { writers: 3, rounds: 1_000_000, updates: 1, until: afterKill.then(() => log.until(/leading/)).then(() => q.until(q.received.length + 30)) })
    await q.until(60)
    await stop(leader, 'SIGKILL')
    killed()
    await writing
    // Rows the killed leader left behind (sent or not, unconfirmed or undeleted) go with the first claim
    // of the new leader, or with a flush.
    await relay.drain()
    await q.barrier()
    const expected = await committedEvents(db)
    const { missing, extra } = tally(q.received, expected)
    expect({ missing, extra }, "every committed event arrived (copies of the killed leader's last rows allowed)").toEqual({ missing: [], extra: [] })
    expect(log.lines.join('\n')).toMatch(/leading/)
    expect(relay.stats.notified, 'the new leader published rows as they committed').toBeGreaterThan(0)
    expect(await outboxCount(db), 'the outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('a leader stopped while the confirms of rows it published are late hands the lead on only once it deleted them: no copies', async (ctx) => {
    const { db, q, app, relay: follower, log, client, models, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 50, notifyTrigger: true })
    // The leader's broker confirms 400 ms late: its published rows stay in the outbox that long.
    const rabbit = rabbitmq({ url: AMQP_URL, logger: silentLogger })
    defer(() => rabbit.close())
    const slow = { name: 'slow-confirms', connect: () => rabbit.connect(), close: () => rabbit.close(), consume: rabbit.consume.bind(rabbit), publish: async (m: any) => {
      await rabbit.publish(m)
      await new Promise((r) => setTimeout(r, 400))
    } }
    const leaderLog = recordingLogger()
    const leader = createRelay(await client(), slow as any, { pollIntervalMs: 50, logger: leaderLog.logger, master: { models } })
    defer(() => leader.stop())
    leader.start()
    await leaderLog.until(/leading/)
    follower.start()
    await log.until(/another relay leads/)

    await app.author.create({ data: { name: 'in flight', externalId: randomUUID() } })
    // Published (it reached the queue), its confirm not yet back: the leader stops now. The follower
    // tries the lead every 100 ms, so before the confirm comes back.
    await q.until(1)
    expect(await outboxCount(db), 'the row stays in the outbox until its confirm').toBe(1)
    await leader.stop()
    expect(await outboxCount(db), 'deleted before the lead went').toBe(0)
    await log.until(/listening for outbox notifications, leading/)
    await app.author.create({ data: { name: 'after', externalId: randomUUID() } })
    await q.until(2)
    await q.barrier()
    expect(q.received.map((m) => m.body.instance_data.name), 'each event once').toEqual(['in flight', 'after'])
  })

  it.runIf(DIALECTS.includes('postgresql'))('a leader frozen (SIGSTOP) while rows commit: once its socket stops taking notifications, PostgreSQL ends its session and the follower leads', async (ctx) => {
    const { db, q, app, relay, log, cliEnv, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 100, notifyTrigger: true })
    const leader = spawnCqrs(['relay', '--poll-ms', '100'], { ...cliEnv, CQRS_LOG_LEVEL: 'info' })
    defer(async () => {
      leader.kill('SIGCONT')
      await stop(leader, 'SIGKILL')
    })
    await waitForStderr(leader, /leading/)
    relay.start()
    await log.until(/another relay leads/)
    await app.author.create({ data: { name: 'warm-up', externalId: randomUUID() } })
    await q.until(1)

    leader.kill('SIGSTOP')
    const started = Date.now()
    const led = log.until(/listening for outbox notifications, leading/, 1, 120_000)
    // Enough commits to fill its socket's buffers: from then on what PostgreSQL sends it goes unacknowledged.
    await writeLoad(app, { writers: 2, rounds: 1_000_000, updates: 1, until: led })
    await led
    console.log(`frozen leader: the follower led ${Math.round((Date.now() - started) / 1000)} s after the freeze`)
    const expected = await committedEvents(db)
    await q.untilMatch(allArrived(expected), 'every committed event', 60_000)
    const { missing, extra } = tally(q.received, expected)
    expect({ missing, extra }).toEqual({ missing: [], extra: [] })
  }, 180_000)

  it.runIf(DIALECTS.includes('postgresql'))('a broker outage while leading: the rows committed meanwhile wait in the outbox and all arrive once it is back', async (ctx) => {
    const { db, q, app, newRelay, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 100, notifyTrigger: true })
    const proxy = await TcpProxy.start()
    defer(() => proxy.close())
    const { relay, log } = await newRelay(undefined, proxy.amqpUrl)
    relay.start()
    await log.until(/leading/)
    await writeLoad(app, { writers: 2, rounds: 5, updates: 1 })
    await q.until(20)
    await outboxEmptied(db, 'before the outage')
    const notifiedBefore = relay.stats.notified

    // The broker goes away while rows keep committing: the leader's publishes of them fail.
    proxy.cut()
    await writeLoad(app, { writers: 2, rounds: 10, updates: 1 })
    await log.until(/publish failed/)
    expect(await outboxCount(db), 'the rows of the outage wait in the outbox').toBeGreaterThanOrEqual(40)

    proxy.restore()
    // Its claims publish the backlog; once the outbox is empty, the next rows come by notification.
    const duringOutage = await committedEvents(db)
    await q.untilMatch(allArrived(duringOutage), 'every event of the outage', 30_000)
    await outboxEmptied(db, 'after the outage')
    const notifiedAfterOutage = relay.stats.notified
    await writeLoad(app, { writers: 2, rounds: 5, updates: 1 })
    const expected = await committedEvents(db)
    expect(expected.size).toBe(80)
    await q.untilMatch(allArrived(expected), 'every committed event', 30_000)
    await relay.drain()
    await q.barrier()
    const { missing, extra } = tally(q.received, expected)
    expect({ missing, extra }).toEqual({ missing: [], extra: [] })
    expect(notifiedBefore, 'before the outage it published from notifications').toBeGreaterThan(0)
    expect(relay.stats.notified - notifiedAfterOutage, 'after the outage it leads as before: the new rows come by notification').toBeGreaterThan(0)
    expect(await outboxCount(db), 'the outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('a leader that loses its broker gives up the lead: a follower that has one takes it and publishes rows as they commit; every event arrives', async (ctx) => {
    const { db, q, app, newRelay, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: 100, notifyTrigger: true })
    const proxy = await TcpProxy.start()
    defer(() => proxy.close())
    // The leader reaches the broker through the proxy; the follower directly.
    const a = await newRelay(undefined, proxy.amqpUrl)
    a.relay.start()
    await a.log.until(/leading/)
    const b = await newRelay()
    b.relay.start()
    await b.log.until(/another relay leads/)
    await writeLoad(app, { writers: 2, rounds: 5, updates: 1 })
    await q.until(20)
    await outboxEmptied(db, 'before the cut')
    expect(a.relay.stats.notified, 'the leader published rows as they committed').toBeGreaterThan(0)

    // Only the leader's broker connection is cut.
    proxy.cut()
    const handedOver = Promise.all([a.log.until(/without its broker, this relay leaves the lead/), b.log.until(/listening for outbox notifications, leading/)])
    await writeLoad(app, { writers: 2, rounds: 100_000, updates: 1, until: handedOver })
    await handedOver
    expect([a.relay.role, b.relay.role]).toEqual(['follower', 'leader'])
    const cut = await committedEvents(db)
    await q.untilMatch(allArrived(cut), 'every event committed around the cut', 30_000)
    await outboxEmptied(db, 'after the hand-over')
    const notified = b.relay.stats.notified
    const before = cut.size
    await writeLoad(app, { writers: 2, rounds: 5, updates: 1 })
    const expected = await committedEvents(db)
    await q.untilMatch(allArrived(expected), 'every committed event', 30_000)
    await outboxEmptied(db, 'after the last writes')
    expect(b.relay.stats.notified - notified, 'the new leader published them as they committed').toBe(expected.size - before)

    // The broker back for the old leader: it stays a follower while the other leads.
    proxy.restore()
    await a.relay.stop()
    await b.relay.stop()
    await q.barrier()
    const { missing, extra } = tally(q.received, expected)
    expect({ missing, extra }).toEqual({ missing: [], extra: [] })
    expect(await outboxCount(db), 'the outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))("rows of another schema's outbox on the same channel are left to that outbox's relays", async (ctx) => {
    const { db, q, app, relay, log } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: true })
    // Another service's outbox in the same database: same table name, another schema, same trigger function.
    await db.query('CREATE SCHEMA other')
    await db.query('CREATE TABLE other.cqrs_outbox (LIKE public.cqrs_outbox INCLUDING ALL)')
    await db.query('CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON other.cqrs_outbox FOR EACH ROW EXECUTE FUNCTION cqrs_outbox_notify()')
    relay.start()
    await log.until(/leading/)
    await app.author.create({ data: { name: 'first', externalId: randomUUID() } })
    const cqrsId = (await q.until(1))[0].routingKey
    // Its rows take the ids this outbox gives next, and would reach this test's queue if published.
    for (let id = 2; id <= 4; id++)
      await db.query(`INSERT INTO other.cqrs_outbox (id, cqrs_id, pk, format, routing_key, body) VALUES (${id}, '${cqrsId}', '${id}', 0, '${cqrsId}', '{"foreign":true}')`)
    const mine = []
    for (let i = 0; i < 3; i++) mine.push(await app.author.create({ data: { name: `mine ${i}`, externalId: randomUUID() } }))
    const got = await q.until(4)
    await relay.stop()
    await q.barrier()
    expect(q.received.map((m) => m.body.instance_data?.name ?? m.text), "this outbox's events, each once; none of the other's").toEqual(['first', 'mine 0', 'mine 1', 'mine 2'])
    expect(got.map((m) => Number(m.properties.messageId)), 'the ids the other outbox used too').toEqual([1, 2, 3, 4])
    expect(relay.stats.notified, 'the three after the first came by notification').toBeGreaterThanOrEqual(3)
    expect(Number((await db.query<{ n: number | bigint }>('SELECT COUNT(*) AS n FROM other.cqrs_outbox'))[0].n), "the other outbox's rows are still there").toBe(3)
    expect(await outboxCount(db), 'this outbox is empty').toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('the trigger installed, then dropped, while a separate and an in-process relay run: they elect a leader, then both claim again; no event is missing', async (ctx) => {
    // Both poll every ten minutes, and look at the trigger every five seconds.
    const { db, q, relay, log, client, models, cliEnv, defer } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: false })
    relay.start()
    await log.until(/no trigger that wakes relays/)
    // The quick start's in-process relay: kicked by its own commits.
    const appLog = recordingLogger()
    const app = (await client()).$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { pollIntervalMs: LONG_POLL_MS }, logger: appLog.logger }))
    defer(() => app.$cqrs.close())
    const inProcess = app.$cqrs.relay
    const arrived = (events: Set<string>, what: string) => q.untilMatch(allArrived(events), what)
    /** Events of rows written from here on, committed while no relay changes its part: each must arrive once. */
    const quietPhase = async (what: string) => {
      const before = await committedEvents(db)
      await writeLoad(app, { writers: 2, rounds: 3, updates: 1 })
      const phase = new Set([...(await committedEvents(db))].filter((k) => !before.has(k)))
      expect(phase.size).toBe(2 * 3 * 2)
      await arrived(phase, what)
      await outboxEmptied(db, what)
      return phase
    }
    const once = new Set<string>()
    for (const k of await quietPhase('events before the trigger')) once.add(k)
    expect([relay.role, inProcess.role]).toEqual(['alone', 'alone'])

    // Installed while both run and the app writes: each relay sees it, and exactly one leads.
    const applied = await cqrs(['triggers', '--notify-only', '--apply'], cliEnv)
    expect(applied.code, applied.stderr).toBe(0)
    const elected = Promise.all([log.until(/leading|another relay leads/), appLog.until(/leading|another relay leads/)])
    await writeLoad(app, { writers: 2, rounds: 100_000, updates: 1, until: elected })
    await elected
    expect(appLog.lines.join('\n')).toMatch(/triggers that wake relays changed \(no trigger, now the row-level NOTIFY trigger\)/)
    expect([relay.role, inProcess.role].sort()).toEqual(['follower', 'leader'])
    await arrived(await committedEvents(db), 'events written while the trigger was installed')
    await outboxEmptied(db, 'after the install')
    const leader = relay.role === 'leader' ? relay : inProcess
    const notified = leader.stats.notified
    const led = await quietPhase('events with a leader')
    for (const k of led) once.add(k)
    expect(leader.stats.notified - notified, 'the leader published them from their notifications').toBe(led.size)

    // Dropped while both run: the leader must not wait for notifications that no longer come.
    await db.query('DROP TRIGGER cqrs_outbox_notify ON cqrs_outbox')
    const dropped = Promise.all([log.until(/now no trigger/), appLog.until(/now no trigger/)])
    await writeLoad(app, { writers: 2, rounds: 100_000, updates: 1, until: dropped })
    await dropped
    expect([relay.role, inProcess.role]).toEqual(['alone', 'alone'])
    // The separate relay polls every ten minutes: these leave because the app's commits kick its relay.
    for (const k of await quietPhase('events after the drop')) once.add(k)

    await relay.stop()
    await app.$cqrs.close()
    const got = await q.barrier()
    const expected = await committedEvents(db)
    const { missing, extra, dupes } = tally(got, expected)
    expect({ missing, extra }).toEqual({ missing: [], extra: [] })
    // Copies are possible only while the relays changed parts (the version gate drops them).
    expect(dupes.filter((d) => once.has(d.split(' ')[0])), 'events of the quiet phases arrived once').toEqual([])
    expect(await outboxCount(db)).toBe(0)
  })

  it.runIf(DIALECTS.includes('postgresql'))('a row too big for a notification is claimed; the statement-level trigger of earlier versions still wakes the relay', async (ctx) => {
    const { db, q, app, relay, log } = await setupSeparateRelay('postgresql', ctx, { pollIntervalMs: LONG_POLL_MS, notifyTrigger: true })
    relay.start()
    await log.until(/leading/)
    // A name of 9,000 characters: its event is past PostgreSQL's 8,000-byte payload limit.
    // The write succeeds (a payload of 8,000 bytes or more would make PostgreSQL refuse the commit).
    const big = await app.author.create({ data: { name: 'x'.repeat(9000), externalId: randomUUID() } })
    await q.until(1)
    expect(relay.stats.notified, 'its notification carried no row: it was claimed').toBe(0)
    const small = await app.author.create({ data: { name: 'small', externalId: randomUUID() } })
    const got = await q.until(2)
    expect(got.map((m) => [m.body.instance_pk, m.body.instance_data.name.length])).toEqual([
      [big.id, 9000],
      [small.id, 5],
    ])
    expect(relay.role).toBe('leader')
    await relay.stop()
    expect(relay.role, 'a stopped relay leads nothing: started again, it takes the part its watch finds').toBe('alone')

    // An outbox whose trigger is the statement-level one of an earlier version: commits wake the relay.
    await db.query('DROP TRIGGER cqrs_outbox_notify ON cqrs_outbox')
    await db.query('CREATE TRIGGER cqrs_outbox_notify AFTER INSERT ON cqrs_outbox FOR EACH STATEMENT EXECUTE FUNCTION cqrs_outbox_notify()')
    relay.start()
    await log.until(/statement-level one of an earlier version/)
    await log.until(/listening for outbox notifications/, 2)
    await app.author.update({ where: { id: small.id }, data: { name: 'woken' } })
    const after = await q.until(3)
    expect(after[2].body.instance_data.name).toBe('woken')
    expect(relay.role, 'with the statement-level trigger nobody leads').toBe('alone')
    await q.barrier()
    expect(q.received.length, 'each event once').toBe(3)
  })
})
