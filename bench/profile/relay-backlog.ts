/**
 * A big backlog drained by the relay, optionally while a snapshot is held:
 * `tsx bench/profile/relay-backlog.ts [events]`. Fills the outbox of a fresh PostgreSQL database
 * with `events` ready author SAVEs, then `createRelay(...).drain()` publishes them into a durable
 * queue that a consumer empties as they come. HOLD=1 keeps a REPEATABLE READ snapshot open in another session
 * meanwhile (a report, a dump), so every row the relay deletes stays in the outbox's index. Prints
 * the drain's rate.
 */
import pg from 'pg'
import { createRelay, rabbitmq, silentLogger } from '../package.js'
import { authorBodies, fillOutbox } from '../relay.js'
import { AMQP_URL, amqpConnect, createTestDatabase, declareSink, deleteQueues, uniqueSuffix } from '../support.js'

const N = Number(process.argv[2] ?? 300_000)
const db = await createTestDatabase('postgresql', 'rbacklog')
const cqrsId = `author_${uniqueSuffix()}`
const sink = `bench_rbacklog_${cqrsId}`
const conn = await amqpConnect('rbacklog')
const holder = new pg.Client({ connectionString: db.url })
try {
  // A durable queue takes the events, emptied as they come (a consumer that does nothing with them).
  await declareSink(conn, sink, [cqrsId])
  const ch = await conn.createChannel()
  const { consumerTag } = await ch.consume(sink, () => {}, { noAck: true })
  const prisma = await db.client()
  const relay = createRelay(prisma, rabbitmq({ url: AMQP_URL, logger: silentLogger }), { logger: silentLogger, listen: false })
  for (let i = 0; i < N; i += 50_000) await fillOutbox(db, cqrsId, authorBodies(cqrsId, i + 1, Math.min(50_000, N - i)))
  await db.exec('VACUUM ANALYZE cqrs_outbox')
  await holder.connect()
  if (process.env.HOLD === '1') {
    await holder.query('BEGIN ISOLATION LEVEL REPEATABLE READ')
    await holder.query('SELECT count(*) FROM cqrs_outbox')
  }
  const t0 = performance.now()
  const n = await relay.drain()
  const ms = performance.now() - t0
  console.log(`relay drained ${n} events in ${ms.toFixed(0)} ms = ${((n * 1000) / ms).toFixed(0)} events/s${process.env.HOLD === '1' ? ', a snapshot held' : ''}`)
  await relay.stop()
  await prisma.$disconnect()
  await ch.cancel(consumerTag)
} finally {
  await holder.end().catch(() => {})
  await conn.close().catch(() => {})
  await deleteQueues([sink])
  await db.drop()
}
// Messages still in flight from the broker can keep the connection's socket busy: end here.
process.exit(0)
