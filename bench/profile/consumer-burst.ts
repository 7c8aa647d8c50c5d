/**
 * The replica's own lag, broker to replica commit: `tsx bench/profile/consumer-burst.ts [events/s] [burst] [seconds]`.
 * Publishes author SAVEs in bursts of `burst` (as the relay sends its batches) at a steady rate, each
 * burst to two queues at once: one drained by `cqrs consume -w 1`, the other by the raw consumer
 * (amqplib and one batched upsert), each into its own PostgreSQL replica. A NOTIFY trigger on each
 * replica table stamps the commit here, so both lags are read on this process's clock.
 */
import pg from 'pg'
import { percentile } from '../stats.js'
import { AMQP_URL, amqpConnect, authorEventBody, createTestDatabase, deleteQueues, EXCHANGE, notifyTrigger, replicaQueues, startConsume, startRawConsumer, uniqueSuffix } from '../support.js'

const [rateArg = '1000', burstArg = '10', secondsArg = '5'] = process.argv.slice(2)
const [RATE, BURST] = [Number(rateArg), Number(burstArg)]
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const rawKey = `author_${suffix}_raw`
const [dbCqrs, dbRaw] = await Promise.all([createTestDatabase('postgresql', 'cbc'), createTestDatabase('postgresql', 'cbr')])
const trigger = notifyTrigger('author_ref', 'bench_r')
await Promise.all([dbCqrs.exec(trigger), dbRaw.exec(trigger)])
const seen = { cqrs: new Map<number, number>(), raw: new Map<number, number>() }
const listeners: pg.Client[] = []
for (const [db, map] of [[dbCqrs, seen.cqrs], [dbRaw, seen.raw]] as const) {
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  c.on('notification', (n) => map.set(Number(n.payload), performance.now()))
  await c.query('LISTEN bench_r')
  listeners.push(c)
}
const qCqrs = `bench_cb_${suffix}_cqrs`
const qRaw = `bench_cb_${suffix}_raw`
const cli = await startConsume(1, { CQRS_TEST_DIALECT: 'postgresql', CQRS_REPLICA_URL: dbCqrs.url, CQRS_QUEUE: qCqrs, CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL })
const raw = await startRawConsumer({ RAW_DIALECT: 'postgresql', RAW_DB_URL: dbRaw.url, RAW_QUEUE: qRaw, RAW_KEYS: rawKey, RAW_PREFETCH: '1000' })
const conn = await amqpConnect('cburst')
const ch = await conn.createConfirmChannel()
const sent = new Map<number, number>()
try {
  const t0 = performance.now()
  let id = 0
  while (performance.now() - t0 < Number(secondsArg) * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * RATE)
    while (id + BURST <= due) {
      const at = performance.now()
      for (let k = 0; k < BURST; k++) {
        id++
        sent.set(id, at)
        ch.publish(EXCHANGE, cqrsId, Buffer.from(authorEventBody(cqrsId, id, 1)), { persistent: true, contentType: 'application/json', messageId: String(id) })
        ch.publish(EXCHANGE, rawKey, Buffer.from(authorEventBody(rawKey, id, 1)), { persistent: true, contentType: 'application/json', messageId: String(id) })
      }
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  await ch.waitForConfirms()
  const end = Date.now() + 60_000
  while (Date.now() < end && (seen.cqrs.size < id || seen.raw.size < id)) await new Promise((r) => setTimeout(r, 5))
  for (const who of ['cqrs', 'raw'] as const) {
    const lags = [...seen[who]].map(([k, at]) => at - sent.get(k)!)
    console.log(`${who === 'cqrs' ? 'cqrs consume -w 1' : 'raw consumer     '}: ${lags.length}/${id} events in bursts of ${BURST} at ${RATE}/s, publish -> replica commit p50 ${percentile(lags, 0.5).toFixed(2)} p90 ${percentile(lags, 0.9).toFixed(2)} p99 ${percentile(lags, 0.99).toFixed(2)} ms`)
  }
} finally {
  await cli.stop()
  await raw.stop()
  for (const c of listeners) await c.end()
  await conn.close()
  await deleteQueues([...replicaQueues(qCqrs, [1000, 5000, 30000]), qRaw])
  await Promise.all([dbCqrs.drop(), dbRaw.drop()])
}
