/**
 * The replica's PostgreSQL goes away for longer than the whole retry schedule while messages flow
 * (`cqrs consume` as a subprocess, the database a cluster of this test's own: a long shutdown, then
 * stopped, then started again): nothing is dead-lettered or retried, nothing is lost, the replica converges, and the
 * consumer needed no restart.
 */
import type { ChildProcess } from 'node:child_process'
import { afterAll, beforeAll, expect, it } from 'vitest'
import amqp from 'amqplib'
import { silentLogger } from '../../src/core/logger.js'
import { rabbitmq } from '../../src/transport/rabbitmq/index.js'
import { spawnCqrs, stderrOf, stop, waitForStderr } from '../support/cli.js'
import { eventually, snapshot, AUTHOR_COLUMNS } from '../support/compare.js'
import { AMQP_URL, createTestDatabase, type TestDatabase } from '../support/databases.js'
import { deleteQueues } from '../support/rabbit-cleanup.js'
import { canCreateClusters, ownPostgres, type OwnPostgres } from './own-postgres.js'
import { masterClient } from '../support/master.js'

if (!canCreateClusters) console.warn('database-outage.test.ts skipped: needs pg_createcluster (postgresql-common) to stop a PostgreSQL of its own')

let master: TestDatabase
let replica: OwnPostgres
let consumer: ChildProcess | undefined
let prisma: any
const suffix = `_o${Math.random().toString(36).slice(2, 8)}`
const queue = `outage${suffix}`

beforeAll(async () => {
  if (!canCreateClusters) return
  ;[master, replica] = await Promise.all([createTestDatabase('postgresql', 'dbom'), ownPostgres('outage')])
}, 120_000)
afterAll(async () => {
  if (consumer) await stop(consumer, 'SIGKILL')
  await prisma?.$cqrs.close()
  await deleteQueues(queue)
  await Promise.allSettled([master?.drop(), replica?.drop()])
}, 120_000)

/** Replica rows as the plain driver reads them (a fresh connection: the cluster restarts under us). */
async function replicaDiff(): Promise<string[]> {
  const pg = (await import('pg')).default
  const conn = new pg.Client({ connectionString: replica.url })
  await conn.connect()
  try {
    const view = { dialect: 'postgresql', query: async (sql: string) => (await conn.query(sql)).rows } as unknown as TestDatabase
    const [m, r] = await Promise.all([snapshot(master, 'author'), snapshot(view, 'author_ref', AUTHOR_COLUMNS)])
    const out: string[] = []
    for (const [id, row] of m) if (JSON.stringify(row) !== JSON.stringify(r.get(id))) out.push(`${r.has(id) ? 'differs' : 'missing'} ${id}`)
    for (const id of r.keys()) if (!m.has(id)) out.push(`extra ${id}`)
    return out
  } finally {
    await conn.end()
  }
}

it.skipIf(!canCreateClusters)('a replica database stopped for longer than the retry schedule is waited for', async () => {
  const cqrsId = `author${suffix}`
  prisma = await masterClient(await master.client(), { transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, models: { author: { cqrsId } } })
  // The whole retry schedule is 100 + 200 ms: the outage below lasts several times that.
  consumer = spawnCqrs(['consume', '--batch', '20', '--prefetch', '40'], { CQRS_TEST_DIALECT: 'postgresql', CQRS_REPLICA_URL: replica.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: suffix, AMQP_URL, CQRS_RETRY_DELAYS: '100,200', CQRS_MAX_RETRIES: '2', CQRS_LOG_LEVEL: 'info' })
  await waitForStderr(consumer, /ready/)

  const ids: number[] = []
  const write = async (n: number, tag: string) => {
    for (let i = 0; i < n; i++) {
      if (ids.length < 20 || i % 4 === 0) ids.push((await prisma.author.create({ data: { name: `${tag}${i}`, externalId: `${tag}${i}` } })).id)
      else if (i % 13 === 0) await prisma.author.delete({ where: { id: ids.splice(i % ids.length, 1)[0] } })
      else await prisma.author.update({ where: { id: ids[i % ids.length] }, data: { rating: { increment: 1 }, name: `${tag}${i}` } })
    }
  }
  await write(100, 'a')
  await prisma.$cqrs.flush()
  await eventually(replicaDiff, 90_000, 'the replica before the outage')

  // Messages keep flowing while the database shuts down (a long smart shutdown: sessions
  // terminated, new connections refused with "the database system is shutting down"), is down,
  // and starts again.
  const shutdown = await replica.shuttingDown()
  await write(100, 'b')
  await prisma.$cqrs.flush()
  // Backoff doubles from 200 ms: a wait of 1600 ms is logged after 1.4 s of outage, past the schedule.
  await waitForStderr(consumer, /the database system is shutting down[^\n]*"retryInMs":1600/, 90_000)
  await shutdown.finish()
  await write(50, 'c')
  await prisma.$cqrs.flush()
  // Refused connections: the adapter says DatabaseNotReachable, a batch sent as one script (its own pg client) ECONNREFUSED.
  await waitForStderr(consumer, /(DatabaseNotReachable|ECONNREFUSED)[^\n]*"retryInMs"/, 90_000)
  await replica.start()
  await eventually(replicaDiff, 120_000, 'the replica after the outage')
  expect(consumer.exitCode).toBeNull()
  expect(stderrOf(consumer).match(/ready/g)).toHaveLength(1)
  expect(stderrOf(consumer)).not.toMatch(/retrying in the broker|dead-lettered/)

  const conn = await amqp.connect(AMQP_URL)
  try {
    const ch = await conn.createChannel()
    expect((await ch.checkQueue(`dead_letter_${queue}`)).messageCount).toBe(0)
    for (const d of [100, 200]) expect((await ch.checkQueue(`${queue}.retry.${d}`)).messageCount).toBe(0)
  } finally {
    await conn.close()
  }
  expect((await stop(consumer, 'SIGTERM')).code).toBe(0)
  consumer = undefined
}, 420_000)
