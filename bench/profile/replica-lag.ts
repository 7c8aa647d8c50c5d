/**
 * The replica's lag at a steady rate: `tsx bench/profile/replica-lag.ts [events/s] [seconds] [dialect]`.
 * An in-process cqrsReplica (the code `cqrs consume` runs) takes author SAVEs published at a steady
 * rate, each stamped with its publish time as `cqrs_updated`; it reports the lag (ack time minus
 * that stamp, the consumer's own lag sample) and how long each applyBatch took, with the batch sizes.
 * SERIAL=1 makes the store apply one batch after the other (ReplicaStore.concurrentBatches off), to compare.
 */
import { cqrsReplica, rabbitmq, silentLogger } from '../package.js'
import { percentile } from '../stats.js'
import { AMQP_URL, amqpConnect, authorEventBody, createTestDatabase, deleteQueues, type Dialect, replicaQueues, uniqueSuffix } from '../support.js'

const [rateArg = '1000', secondsArg = '5', dialect = 'postgresql'] = process.argv.slice(2)
const RATE = Number(rateArg)
const db = await createTestDatabase(dialect as Dialect, 'rlag')
const prisma = await db.client()
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const queue = `bench_rlag_${suffix}`
const conn = await amqpConnect('rlag')
const ch = await conn.createConfirmChannel()
await ch.assertQueue(queue, { durable: true })
const rep = cqrsReplica({ prisma, transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), queue, handlers: { [cqrsId]: { model: 'authorRef' } }, retry: { delaysMs: [1000] }, logger: silentLogger })
if (process.env.SERIAL === '1') Object.defineProperty(rep.store, 'concurrentBatches', { value: false })
const applies: number[] = []
const sizes: number[] = []
const apply = rep.store.applyBatch.bind(rep.store)
rep.store.applyBatch = async (target, ops) => {
  const t = performance.now()
  try {
    return await apply(target, ops)
  } finally {
    applies.push(performance.now() - t)
    sizes.push(ops.length)
  }
}
await rep.start()
const t0 = performance.now()
let sent = 0
while (performance.now() - t0 < Number(secondsArg) * 1000) {
  const due = Math.floor(((performance.now() - t0) / 1000) * RATE)
  for (; sent < due; sent++) ch.publish('', queue, Buffer.from(authorEventBody(cqrsId, sent + 1, 1, new Date())), { persistent: true, messageId: String(sent + 1) })
  await new Promise((r) => setTimeout(r, 1))
}
await ch.waitForConfirms()
while (rep.stats.applied < sent) await new Promise((r) => setTimeout(r, 5))
const lag = rep.stats.lag()
const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length
console.log(
  `replica ${dialect}${process.env.SERIAL === '1' ? ' (serial batches)' : ''} at ${RATE} events/s: lag (ack - publish) p50 ${lag.p50} ms, p99 ${lag.p99} ms; applyBatch p50 ${percentile(applies, 0.5).toFixed(2)} ms, ` +
    `p99 ${percentile(applies, 0.99).toFixed(2)} ms over ${applies.length} batches of ${mean.toFixed(1)} on average`,
)
await rep.stop()
await conn.close()
await deleteQueues(replicaQueues(queue, [1000]))
await db.drop()
