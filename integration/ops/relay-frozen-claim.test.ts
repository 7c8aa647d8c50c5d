/**
 * A relay that stops mid-claim (frozen here with SIGSTOP; a network partition looks the same to the
 * database) holds its claim's row locks in a transaction the server sees as idle. Every other relay's
 * claim waits for those rows (claims lock, so that a row's events never leave out of order), so
 * without a limit the whole outbox would stall until TCP noticed, hours later. PostgreSQL and MariaDB
 * end the idle claim after its limit (15 s at the default publish timeout), and the other relay
 * publishes.
 */
import { randomUUID } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import { createRelay, cqrsMaster } from '../../src/prisma/cqrs-master.js'
import { modelsOf } from '../../src/prisma/internals.js'
import { findModel } from '../../src/prisma/model-plans.js'
import { PrismaOutboxStore } from '../../src/prisma/prisma-outbox-store.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { spawnCqrs, stop, waitForStderr } from '../support/cli.js'
import { AMQP_URL, createTestDatabase, DIALECTS, type Dialect, type TestDatabase } from '../support/databases.js'
import { testQueue, uniqueSuffix, type TestQueue } from '../support/rabbit.js'
import { TcpProxy } from '../support/tcp-proxy.js'

/** Transactions of this database that are open while their session waits for its client: the frozen claim. */
const IDLE_TRANSACTIONS: Record<'postgresql' | 'mysql', string> = {
  postgresql: "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
  mysql: "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id WHERE p.DB = DATABASE() AND p.COMMAND = 'Sleep'",
}

describe.each((['postgresql', 'mysql'] as const).filter((d: Dialect) => DIALECTS.includes(d)))('%s: a relay frozen mid-claim', (dialect) => {
  let db: TestDatabase
  let proxy: TcpProxy
  let q: TestQueue
  let frozen: ChildProcess | undefined
  const closers: Array<() => Promise<unknown>> = []
  const suffix = `_${uniqueSuffix()}`
  const cqrsId = `author${suffix}`

  beforeAll(async () => {
    db = await createTestDatabase(dialect, 'frozen')
    proxy = await TcpProxy.start()
    q = await testQueue([cqrsId], 'frozen')
  })
  afterAll(async () => {
    if (frozen) {
      frozen.kill('SIGCONT')
      await stop(frozen, 'SIGKILL').catch(() => {})
    }
    for (const c of closers.reverse()) await c().catch(() => {})
    await q?.delete()
    await proxy?.close()
    await db?.drop()
  }, 60_000)

  it("does not keep its rows from another relay: the database ends its claim, and the other relay publishes them", async () => {
    const prisma = await db.client()
    closers.push(() => prisma.$disconnect())
    const models = { author: { cqrsId } }
    const app = prisma.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), capture: 'extension', models, relay: { enabled: false }, logger: silentLogger }))
    closers.push(() => app.$cqrs.close())

    // `cqrs relay`, its broker behind a proxy that will swallow what it sends.
    frozen = spawnCqrs(['relay', '--poll-ms', '50'], { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: suffix, AMQP_URL: proxy.amqpUrl })
    await waitForStderr(frozen, /running/)
    // A first event, through the proxy: the relay connects to the broker on its first publish.
    await app.author.create({ data: { name: 'first', externalId: randomUUID() } })
    await q.until(1)
    proxy.blackhole()
    const a = await app.author.create({ data: { name: 'held', externalId: randomUUID() } })
    // Its publish went into the blackhole: it waits for confirms, its claim open. Frozen there.
    await proxy.swallowedAtLeast(200)
    frozen.kill('SIGSTOP')
    const idle = async () => Number((await db.query<{ n: number | bigint }>(IDLE_TRANSACTIONS[dialect]))[0].n)
    expect(await idle(), "the frozen relay's claim is open").toBe(1)

    // Another relay, with a broker that works: its claims wait for the frozen one's rows until the
    // database ends that transaction.
    const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
    const relay = createRelay(prisma, transport, { pollIntervalMs: 50, logger: silentLogger, master: { models } })
    closers.push(() => transport.close())
    closers.push(() => relay.stop())
    relay.start()
    const got = await q.until(2, 60_000)
    expect(got.slice(1).map((m) => [m.body.instance_pk, m.body.instance_data.name])).toEqual([[a.id, 'held']])
    await relay.stop()
    expect(await idle(), 'the frozen claim was ended').toBe(0)
  }, 120_000)
})

/**
 * MySQL has no limit on an idle transaction: there the claim's session sets `wait_timeout` instead
 * (the server closes a session idle that long, which rolls its transaction back). There is no MySQL
 * here, so the MySQL path runs on MariaDB, which has `wait_timeout` too: a store told it is not on
 * MariaDB claims a row and freezes in its publish; another store's claim waits for that row until
 * the server ends the frozen session (after 15 s), before its own lock wait would give up (50 s).
 */
describe.runIf(DIALECTS.includes('mysql'))("MySQL's path (wait_timeout), run on MariaDB: a claim frozen in its publish", () => {
  it("is ended by the server, and another relay's claim takes its row", async () => {
    const db = await createTestDatabase('mysql', 'frozenmy')
    const clients: any[] = []
    try {
      const client = async () => {
        const c = await db.client()
        clients.push(c)
        return c
      }
      const a = await client()
      const meta = findModel(modelsOf(a), 'CqrsOutbox')!
      await db.exec("INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, format, body) VALUES ('frozen', '1', 'frozen', 0, '{}')")
      const frozen = new PrismaOutboxStore(a, 'mysql', meta)
      // As on MySQL, which has no idle_transaction_timeout (white-box: the store reads it once).
      ;(frozen as unknown as { mariadb: Promise<boolean> }).mariadb = Promise.resolve(false)
      let inPublish!: () => void
      const publishing = new Promise<void>((resolve) => (inPublish = resolve))
      void frozen
        .claim(10, () => {
          inPublish()
          return new Promise<void>(() => {}) // frozen: never confirmed, never failed
        })
        .catch(() => {})
      await publishing
      // Its transaction holds the row.
      await expect(db.query('SELECT id FROM cqrs_outbox FOR UPDATE NOWAIT'), 'the frozen claim holds the row').rejects.toThrow(/lock/i)
      const other = new PrismaOutboxStore(await client(), 'mysql', meta)
      const published: string[] = []
      const n = await other.claim(10, async (rows) => void published.push(...rows.map((r) => r.cqrsId)))
      expect({ n, published }).toEqual({ n: 1, published: ['frozen'] })
      expect(await db.query('SELECT id FROM cqrs_outbox'), 'published and deleted').toEqual([])
      await other.close()
    } finally {
      for (const c of clients) await c.$disconnect().catch(() => {})
      await db.drop()
    }
  }, 45_000)
})
