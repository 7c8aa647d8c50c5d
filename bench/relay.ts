/**
 * Relay: events/s from a full outbox to the broker. N outbox rows (author SAVE events as the master
 * writes them) are drained by `createRelay(prisma, rabbitmq()).drain()`: claim a batch, publish with
 * confirms, delete, repeat. Baseline: raw amqplib publishing of N messages of the same bodies on a
 * confirm channel with at most 1000 unconfirmed. Both publish persistent messages to the cqrs
 * exchange, routed into one durable queue (so the broker stores them as in production).
 */
import { createRelay, rabbitmq, silentLogger } from './package.js'
import { rate } from './stats.js'
import {
  AMQP_URL,
  amqpConnect,
  authorEventBody,
  createTestDatabase,
  declareSink,
  deleteQueues,
  messageCount,
  publishRaw,
  purgeQueue,
  type BenchContext,
  type Measurement,
  type TestDatabase,
  uniqueSuffix,
  until,
} from './support.js'

const sqlString = (db: TestDatabase, s: string) => `'${(db.dialect === 'mysql' ? s.replace(/\\/g, '\\\\') : s).replace(/'/g, "''")}'`

/** Insert `bodies` into cqrs_outbox with plain SQL, in chunks (how they got there does not matter to the relay). */
export async function fillOutbox(db: TestDatabase, cqrsId: string, bodies: Array<{ pk: number; body: string }>, routingKey = cqrsId): Promise<void> {
  const chunk = db.dialect === 'sqlite' ? 400 : 1000
  for (let i = 0; i < bodies.length; i += chunk) {
    const values = bodies
      .slice(i, i + chunk)
      .map((b) => `(${sqlString(db, cqrsId)}, ${sqlString(db, String(b.pk))}, ${sqlString(db, routingKey)}, ${sqlString(db, b.body)})`)
      .join(', ')
    await db.exec(`INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) VALUES ${values}`)
  }
}

export const authorBodies = (cqrsId: string, from: number, n: number, revision = 0) =>
  Array.from({ length: n }, (_, k) => ({ pk: from + k, body: authorEventBody(cqrsId, from + k, revision) }))

export async function relay(ctx: BenchContext): Promise<Measurement[]> {
  const N = ctx.quick ? 2000 : 20_000
  const out: Measurement[] = []
  for (const dialect of ctx.dialects) {
    const db = await createTestDatabase(dialect, 'brl')
    const suffix = uniqueSuffix()
    const cqrsId = `author_${suffix}`
    const sink = `bench_relay_${suffix}`
    const conn = await amqpConnect('relay')
    const transport = rabbitmq({ url: AMQP_URL, logger: silentLogger })
    try {
      await declareSink(conn, sink, [cqrsId])
      const prisma = await db.client()
      const r = createRelay(prisma, transport, { logger: silentLogger })
      const confirm = await conn.createConfirmChannel()
      const bodies = authorBodies(cqrsId, 1, N)
      const raw = bodies.map((b) => ({ routingKey: cqrsId, body: Buffer.from(b.body), messageId: String(b.pk) }))
      // Warm up: the relay's connection and queries, the raw channel.
      await fillOutbox(db, cqrsId, bodies.slice(0, 200))
      await r.drain(60_000)
      await publishRaw(confirm, raw.slice(0, 200))
      await until(async () => (await messageCount(conn, sink)) === 400, 'warm-up messages in the sink', 30_000, 20)
      await purgeQueue(conn, sink)

      const cqrs: number[] = []
      const baseline: number[] = []
      const details: unknown[] = []
      for (let run = 0; run < ctx.runs; run++) {
        const measure = {
          cqrs: async () => {
            await fillOutbox(db, cqrsId, bodies)
            const batches0 = r.stats.batches
            const t0 = performance.now()
            const n = await r.drain(300_000)
            const ms = performance.now() - t0
            if (n !== N) throw new Error(`relay drained ${n} events, expected ${N}`)
            return { ms, batches: r.stats.batches - batches0 }
          },
          baseline: async () => {
            const t0 = performance.now()
            await publishRaw(confirm, raw, 1000)
            return { ms: performance.now() - t0 }
          },
        }
        const order = run % 2 === 0 ? (['cqrs', 'baseline'] as const) : (['baseline', 'cqrs'] as const)
        const res: Record<string, { ms: number; batches?: number }> = {}
        for (const who of order) {
          res[who] = await measure[who]()
          await until(async () => (await messageCount(conn, sink)) === N, `${N} messages in ${sink}`, 60_000, 20)
          await purgeQueue(conn, sink)
        }
        cqrs.push(rate(N, res.cqrs.ms))
        baseline.push(rate(N, res.baseline.ms))
        details.push({ events: N, bodyBytes: raw[0].body.length, cqrsMs: res.cqrs.ms, baselineMs: res.baseline.ms, relayBatches: res.cqrs.batches })
        ctx.log(`  relay ${dialect} run ${run + 1}/${ctx.runs}: relay ${cqrs.at(-1)!.toFixed(0)} events/s, raw confirm publish ${baseline.at(-1)!.toFixed(0)} msg/s`)
      }
      out.push({
        benchmark: 'relay',
        dialect,
        metric: `outbox -> broker, default relay (${N.toLocaleString('en')} events)`,
        unit: 'events/s',
        cqrs,
        baseline,
        baselineLabel: 'raw amqplib confirm publish, window 1000',
        goal: { kind: 'ratio>=', value: 0.85, text: '>= 0.85x (issue 12)' },
        details,
      })
      await r.stop()
    } finally {
      await transport.close().catch(() => {})
      await conn.close().catch(() => {})
      await deleteQueues([sink])
      await db.drop()
    }
  }
  return out
}
