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
