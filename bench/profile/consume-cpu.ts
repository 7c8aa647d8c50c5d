/**
 * Where the CPU of a replica drain goes, per process: `tsx bench/profile/consume-cpu.ts [workers|raw] [events] [dialect]`.
 * `cqrs consume -w N` (or the raw consumer, bench/raw-consumer.ts) is started once; per run the table
 * is locked while a backlog of author SAVEs is published, then unlocked and drained. CPU is read from
 * /proc before and after the drain, summed by process: the consumer's processes, the database
 * server's, RabbitMQ's (beam.smp), this script. On two cores a drain at full speed is bound by the sum.
 * Linux only.
 */
import { cpuByKind, cpuPerEvent, serviceOf } from './cpu.js'
import { AMQP_URL, amqpConnect, authorEventBody, countRows, createTestDatabase, deleteQueues, type Dialect, messageCount, publishRaw, replicaQueues, startConsume, startRawConsumer, uniqueSuffix, until } from '../support.js'

const [who = '2', nArg = '20000', dialect = 'postgresql'] = process.argv.slice(2)
const N = Number(nArg)
const raw = who === 'raw'
const db = await createTestDatabase(dialect as Dialect, 'ccpu')
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const queue = `bench_ccpu_${suffix}`
const conn = await amqpConnect('ccpu')
const ch = await conn.createConfirmChannel()
await ch.assertQueue(queue, { durable: true })

const consumer = raw ? await startRawConsumer({ RAW_DIALECT: dialect, RAW_DB_URL: db.url, RAW_QUEUE: queue, RAW_KEYS: '', RAW_PREFETCH: '1000' }) : await startConsume(Number(who), { CQRS_TEST_DIALECT: dialect, CQRS_REPLICA_URL: db.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL })

/** CPU ms so far by process kind: the consumer's, the database server's, RabbitMQ's, this script's. */
const kinds = () =>
  cpuByKind((p) => serviceOf(p) ?? (p.cmdline.includes('consume') || p.cmdline.includes('raw-consumer') ? 'consumer' : p.pid === process.pid ? 'this script' : null))

const lock = dialect === 'postgresql' ? 'BEGIN; LOCK TABLE author_ref IN EXCLUSIVE MODE' : 'LOCK TABLES author_ref WRITE'
const unlock = dialect === 'postgresql' ? 'COMMIT' : 'UNLOCK TABLES'
const bodies = Array.from({ length: N }, (_, k) => Buffer.from(authorEventBody(cqrsId, k + 1, 1)))
try {
  for (let run = 0; run < 4; run++) {
    const n = run === 0 ? Math.min(2000, N) : N // the first run warms up
    await db.exec(lock)
    await publishRaw(ch, bodies.slice(0, n).map((body, k) => ({ routingKey: queue, body, messageId: String(k + 1) })), 1000, '')
    const before = kinds()
    await db.exec(unlock)
    const t0 = performance.now()
    // The queue first (a passive declare), then the table: a count of the table every few ms would
    // be PostgreSQL CPU of its own, counted with the replica's.
    await until(async () => (await messageCount(conn, queue)) === 0, `${queue} to empty`, 300_000, 10)
    await until(async () => (await countRows(db, 'author_ref', 'cqrs_revision = 1')) === n, `${n} rows`, 300_000, 2)
    const ms = performance.now() - t0
    const after = kinds()
    if (run > 0) {
      console.log(`${raw ? 'raw consumer' : `cqrs consume -w ${who}`} (${dialect}): ${n} events in ${ms.toFixed(0)} ms = ${((n * 1000) / ms).toFixed(0)}/s; CPU µs per event: ${cpuPerEvent(before, after, n)}`)
    }
    await db.exec(dialect === 'postgresql' ? 'TRUNCATE author_ref' : 'TRUNCATE TABLE author_ref')
  }
} finally {
  await consumer.stop()
  await conn.close()
  await deleteQueues(replicaQueues(queue, [200, 400]))
  await db.drop()
}
