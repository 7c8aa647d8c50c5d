/**
 * The relay's CPU per batch against the floor of the same protocol: `tsx bench/profile/relay-batch.ts [events] [batchSize]`.
 * A full outbox (author SAVEs, ready messages) is drained in small batches, as an in-process relay
 * does at a low write rate, by the library's relay (`createRelay`, the compiled package) and by a raw
 * loop of `pg` and amqplib doing the same protocol: `BEGIN; SET LOCAL synchronous_commit TO off;
 * SELECT ... FOR UPDATE` as one message, publish on a confirm channel and wait for the confirms,
 * then `DELETE ...; COMMIT`. Prints this process's CPU per batch for both, alternated, and the ratio.
 */
import pg from 'pg'
import { createRelay, rabbitmq, silentLogger } from '../package.js'
import { authorBodies, fillOutbox } from '../relay.js'
import { AMQP_URL, amqpConnect, createTestDatabase, declareSink, deleteQueues, messageCount, purgeQueue, uniqueSuffix, until } from '../support.js'

const [nArg = '4000', batchArg = '2'] = process.argv.slice(2)
const N = Number(nArg)
const B = Number(batchArg)
const db = await createTestDatabase('postgresql', 'rbatch')
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const sink = `bench_rbatch_${suffix}`
const conn = await amqpConnect('rbatch')
await declareSink(conn, sink, [cqrsId])
const prisma = await db.client()
const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
const relay = createRelay(prisma, transport, { logger: silentLogger, batchSize: B, listen: false })
const client = new pg.Client({ connectionString: db.url })
await client.connect()
const ch = await conn.createConfirmChannel()
const bodies = authorBodies(cqrsId, 1, N)

const drains: Record<'cqrs-sync relay' | 'raw pg + amqplib', () => Promise<number>> = {
  'cqrs-sync relay': () => relay.drain(300_000),
  'raw pg + amqplib': async () => {
    let n = 0
    for (;;) {
      const res = (await client.query(`BEGIN; SET LOCAL synchronous_commit TO off; SELECT id, cqrs_id, routing_key, format, body, trace_context FROM cqrs_outbox ORDER BY id LIMIT ${B} FOR UPDATE`)) as unknown as pg.QueryResult[]
      const rows = res[2].rows
      if (!rows.length) {
        await client.query('COMMIT')
        return n
      }
      for (const row of rows) ch.publish('cqrs', row.routing_key, Buffer.from(row.body), { persistent: true, messageId: String(row.id), contentType: 'text/plain' })
      await ch.waitForConfirms()
      await client.query(`DELETE FROM cqrs_outbox WHERE id IN (${rows.map((r) => r.id).join(',')}); COMMIT`)
      n += rows.length
    }
  },
}
const perBatch: Record<string, number[]> = {}
try {
  for (let run = 0; run < 4; run++) {
    // The first run warms up; then the order alternates.
    const order = Object.keys(drains) as Array<keyof typeof drains>
    if (run % 2) order.reverse()
    for (const who of order) {
      await fillOutbox(db, cqrsId, bodies)
      const c0 = process.cpuUsage()
      const n = await drains[who]()
      const cpu = process.cpuUsage(c0)
      if (n !== N) throw new Error(`${who} published ${n} of ${N}`)
      await until(async () => (await messageCount(conn, sink)) === N, `${N} messages in the sink`, 60_000, 20)
      await purgeQueue(conn, sink)
      if (run === 0) continue
      const us = (cpu.user + cpu.system) / (N / B)
      ;(perBatch[who] ??= []).push(us)
      console.log(`${who}: ${N / B} batches of ${B}; CPU per batch ${us.toFixed(0)} µs (user ${(cpu.user / (N / B)).toFixed(0)}, system ${(cpu.system / (N / B)).toFixed(0)})`)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  console.log(`median CPU per batch: cqrs-sync ${median(perBatch['cqrs-sync relay']).toFixed(0)} µs, raw ${median(perBatch['raw pg + amqplib']).toFixed(0)} µs, ratio ${(median(perBatch['cqrs-sync relay']) / median(perBatch['raw pg + amqplib'])).toFixed(2)}`)
} finally {
  await relay.stop()
  await transport.close().catch(() => {})
  await client.end()
  await conn.close().catch(() => {})
  await deleteQueues([sink])
  await prisma.$disconnect()
  await db.drop()
}
