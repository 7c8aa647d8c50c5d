/**
 * Master write overhead: `author.create` and `author.update` through a client extended with
 * `cqrsMaster({ relay: { enabled: false } })`, once per capture mode (the default one's rows say
 * `default`) (write + outbox row in one transaction; nothing is published, so this is the write path
 * alone), once more as the quick start runs the default, its in-process relay publishing to
 * RabbitMQ meanwhile, and on PostgreSQL with the outbox's NOTIFY trigger too (the in-process relay
 * leading); each against plain Prisma 7 on a database of its own on the same server (so that it pays
 * no capture trigger), at concurrency 1 and 16 with a pool of 16 connections each. A reference
 * without cqrs-sync: plain Prisma then a confirmed publish per write. Latency p50/p99 and throughput.
 */
import { cqrsMaster, installCaptureTriggers, outboxNotifyStatements, rabbitmq } from './package.js'
import { Latencies, rate } from './stats.js'
import { AMQP_URL, amqpConnect, RELAY_GATHER_MS, startCli, type CliWorkers, countRows, type TestDatabase, until, authorData, authorEventBody, captureTag, createTestDatabase, declareSink, deleteQueues, EXCHANGE, purgeQueue, type BenchContext, type Measurement, uniqueSuffix } from './support.js'

interface OpResult {
  ops: number
  ms: number
  opsPerSec: number
  p50: number
  p99: number
}

/** Run `total` ops with `concurrency` workers pulling the next index; time each op. */
async function runOps(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<OpResult> {
  const lat = new Latencies()
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++
        if (i >= total) return
        await lat.time(() => op(i))
      }
    }),
  )
  const ms = performance.now() - t0
  return { ops: total, ms, opsPerSec: rate(total, ms), p50: lat.p(0.5), p99: lat.p(0.99) }
}

/** Until the relay in its own process has published (and deleted) every outbox row. */
const outboxEmpty = (db: TestDatabase) => until(async () => (await countRows(db, 'cqrs_outbox')) === 0, 'cqrs relay to empty the outbox')

export async function masterWrites(ctx: BenchContext): Promise<Measurement[]> {
  // A side's writes take 1-2 s: windows of 500 and 2,000 (under half a second) moved with a
  // checkpoint or an autovacuum (update c1 0.75 in them, 0.87-0.89 over 5,000).
  const sizes = ctx.quick ? { 1: 30, 16: 120 } : { 1: 1500, 16: 5000 }
  const warm = ctx.quick ? 32 : 200
  const out: Measurement[] = []
  const conn = await amqpConnect('master-writes')
  try {
  for (const dialect of ctx.dialects) {
    const sink = `bench_mw_${uniqueSuffix()}`
    const db = await createTestDatabase(dialect, 'bmw')
    // Plain Prisma writes a database of its own on the same server: the capture triggers fire for
    // every client of the database they are installed in, so beside them plain Prisma would pay them too.
    const plainDb = await createTestDatabase(dialect, 'bmwp')
    try {
      const plain = await plainDb.client({ poolSize: 16 })
      const base = await db.client({ poolSize: 16 })
      const idSuffix = `_${uniqueSuffix()}`
      const models = { author: { cqrsId: `author${idSuffix}` } }
      // Each mode named, so the rows stay what they say if the default changes; captureTag() marks the default.
      const ext = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'extension', relay: { enabled: false }, models }))
      // capture: 'trigger' on its own client (the triggers fire for every client of this database,
      // so the plain and extension runs below happen before they are installed).
      const trigBase = await db.client({ poolSize: 16 })
      const trig = trigBase.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'trigger', relay: { enabled: false }, models }))
      // The same default setup as the quick start runs it: its in-process relay publishes every event
      // (confirmed, persistent, into a durable queue) while the app writes, on the same Node thread.
      // Made in its phase: its relay would publish (and delete) the other phases' outbox rows.
      // A reference, no cqrs-sync: plain Prisma (on its own database) then a confirmed, persistent
      // publish of the event, awaited, per write: what publishing every write costs on this machine.
      const pubCh = await conn.createConfirmChannel()
      const publishOne = (id: number) =>
        new Promise<void>((resolve, reject) => pubCh.publish(EXCHANGE, models.author.cqrsId, Buffer.from(authorEventBody(models.author.cqrsId, id, 0)), { persistent: true, contentType: 'application/json' }, (err) => (err ? reject(err) : resolve())))
      const plainPub = await plainDb.client({ poolSize: 16 })
      const thenPublish = (op: 'create' | 'update') => async (a: any) => {
        const row = await plainPub.author[op](a)
        await publishOne(row.id)
        return row
      }
      const published = { author: { create: thenPublish('create'), update: thenPublish('update') } }
      // The default setup with `cqrs relay` publishing from a process of its own (the integration tests'
      // config: cqrs_id author + CQRS_ID_SUFFIX), on the same machine: the writes are the trigger
      // client's, and each side waits for the relay to empty the outbox.
      let relayProcess: CliWorkers | null = null
      const clients: Record<'plain' | 'cqrs' | 'trigger' | 'sep' | 'live' | 'notify' | 'published', any> = { plain, cqrs: ext, trigger: trig, sep: trig, live: null, notify: null, published }
      type Who = keyof typeof clients
      // Warm up: connections, query plans, JIT.
      for (const c of [plain, ext]) {
        await runOps(warm, 16, (i) => c.author.create({ data: authorData(i) }))
        const ids: number[] = (await c.author.findMany({ select: { id: true }, take: warm })).map((a: { id: number }) => a.id)
        await runOps(ids.length, 4, (i) => c.author.update({ where: { id: ids[i] }, data: { rating: 1 } }))
      }
      await db.exec('DELETE FROM cqrs_outbox')

      // Each phase pairs plain Prisma with one variant, run for run under the same conditions.
      const phases: Array<{ who: Exclude<Who, 'plain'>; label: string }> = [
        { who: 'published', label: 'reference, no cqrs-sync: plain Prisma then a confirmed publish per write' },
        { who: 'cqrs', label: captureTag('extension') },
        { who: 'trigger', label: captureTag('trigger') },
        { who: 'sep', label: `${captureTag('trigger')}, cqrs relay publishing from its own process` },
        { who: 'live', label: `${captureTag('trigger')}, in-process relay publishing` },
        // PostgreSQL: plus the outbox's row-level NOTIFY trigger (`cqrs triggers --notify`), so the
        // in-process relay leads: it publishes each row as its notification arrives.
        ...(dialect === 'postgresql' ? [{ who: 'notify' as const, label: `${captureTag('trigger')} + NOTIFY trigger, in-process relay leading` }] : []),
      ]
      // metric key -> label -> { cqrs, plain }
      const results = new Map<string, { cqrs: OpResult[]; plain: OpResult[] }>()
      const put = (k: string, side: 'cqrs' | 'plain', r: OpResult) => {
        if (!results.has(k)) results.set(k, { cqrs: [], plain: [] })
        results.get(k)![side].push(r)
      }
      for (const { who: variant, label } of phases) {
        if (variant === 'trigger') {
          // From here the triggers are installed (they fire for every client of this database, so the
          // extension phase ran before); plain runs again beside each variant.
          await installCaptureTriggers(trigBase, { models })
          await runOps(warm, 16, (i) => trig.author.create({ data: authorData(900_000 + i) }))
          await db.exec('DELETE FROM cqrs_outbox')
        }
        if (variant === 'published') {
          await declareSink(conn, sink, [models.author.cqrsId])
          await runOps(warm, 16, (i) => published.author.create({ data: authorData(600_000 + i) }))
          await purgeQueue(conn, sink)
        }
        if (variant === 'sep') {
          await declareSink(conn, sink, [models.author.cqrsId])
          relayProcess = await startCli(['relay', ...(RELAY_GATHER_MS !== undefined ? ['--gather-ms', String(RELAY_GATHER_MS)] : [])], { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: idSuffix, AMQP_URL }, /running/)
          await runOps(warm, 16, (i) => trig.author.create({ data: authorData(850_000 + i) }))
          await outboxEmpty(db)
          await purgeQueue(conn, sink)
        }
        if (variant === 'live') {
          // The separate relay would take (and publish) the same rows: gone first.
          await relayProcess?.stop()
          relayProcess = null
          clients.live = (await db.client({ poolSize: 16 })).$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'trigger', relay: { gatherMs: RELAY_GATHER_MS }, models }))
          await runOps(warm, 16, (i) => clients.live.author.create({ data: authorData(800_000 + i) }))
          await clients.live.$cqrs.flush()
        }
        if (variant === 'notify') {
          // The quick start's relay would take (and be woken by) the same rows: gone first.
          await clients.live?.$cqrs.close()
          // And its 16 connections: with every phase's pool open, the server's 100 would run out.
          await clients.live?.$disconnect()
          clients.live = null
          for (const sql of outboxNotifyStatements(trigBase)) await db.exec(sql)
          clients.notify = (await db.client({ poolSize: 16 })).$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'trigger', relay: { gatherMs: RELAY_GATHER_MS }, models }))
          while (clients.notify.$cqrs.relay.role !== 'leader') await new Promise((r) => setTimeout(r, 10))
          await runOps(warm, 16, (i) => clients.notify.author.create({ data: authorData(700_000 + i) }))
          await clients.notify.$cqrs.flush()
        }
        for (let run = 0; run < ctx.runs; run++) {
          for (const conc of [1, 16] as const) {
            const n = sizes[conc]
            // Alternate who goes first, so drift (autovacuum, neighbours) does not favour one side.
            const order: Who[] = (run + conc) % 2 === 0 ? ['plain', variant] : [variant, 'plain']
            for (const who of order) {
              const c = clients[who]
              const created: number[] = new Array(n)
              const cr = await runOps(n, conc, async (i) => {
                const a = await c.author.create({ data: authorData(run * 100_000 + i) })
                created[i] = a.id
              })
              const up = await runOps(n, conc, (i) => c.author.update({ where: { id: created[i] }, data: { name: `Renamed ${i}`, rating: (i % 100) + 1 } }))
              // The relay's backlog is part of what the writes cost: wait for it before the next side runs.
              if (who === 'live' || who === 'notify') await clients[who].$cqrs.flush()
              if (who === 'sep') await outboxEmpty(db)
              if (who === 'live' || who === 'notify' || who === 'sep' || who === 'published') await purgeQueue(conn, sink)
              for (const [op, r] of [['create', cr], ['update', up]] as const) put(`${op} c${conc} (${label})`, who === 'plain' ? 'plain' : 'cqrs', r)
              ctx.log(`  master-writes ${dialect} run ${run + 1}/${ctx.runs} c${conc} ${who}: create ${cr.opsPerSec.toFixed(0)}/s p50 ${cr.p50.toFixed(2)} ms, update ${up.opsPerSec.toFixed(0)}/s p50 ${up.p50.toFixed(2)} ms`)
            }
            await db.exec('DELETE FROM cqrs_outbox')
          }
        }
      }
      for (const [k, r] of results) {
        const c16 = k.includes('c16')
        const details = r.cqrs.map((c, i) => ({ cqrs: c, plain: r.plain[i] }))
        out.push({
          benchmark: 'master-writes',
          dialect,
          metric: `${k} throughput`,
          unit: 'ops/s',
          cqrs: r.cqrs.map((x) => x.opsPerSec),
          baseline: r.plain.map((x) => x.opsPerSec),
          baselineLabel: 'plain Prisma 7',
          // Issue 12: the default setup at >= 0.85x of plain Prisma, at concurrency 1 and 16.
          goal: k.includes('default') ? { kind: 'ratio>=', value: 0.85, text: '>= 0.85x (issue 12)' } : c16 ? { kind: 'ratio>=', value: 1 / 1.5, text: '>= 0.67x (1.5x overhead)' } : undefined,
          details,
        })
        out.push({
          benchmark: 'master-writes',
          dialect,
          metric: `${k} latency p50`,
          unit: 'ms',
          cqrs: r.cqrs.map((x) => x.p50),
          baseline: r.plain.map((x) => x.p50),
          baselineLabel: 'plain Prisma 7',
          goal: c16 ? { kind: 'ratio<=', value: 1.5, text: '<= 1.5x' } : undefined,
        })
        out.push({
          benchmark: 'master-writes',
          dialect,
          metric: `${k} latency p99`,
          unit: 'ms',
          cqrs: r.cqrs.map((x) => x.p99),
          baseline: r.plain.map((x) => x.p99),
          baselineLabel: 'plain Prisma 7',
        })
      }
      await relayProcess?.stop()
      await ext.$cqrs.close()
      await trig.$cqrs.close()
      await clients.live?.$cqrs.close()
      await clients.notify?.$cqrs.close()
      await pubCh.close()
    } finally {
      await db.drop()
      await plainDb.drop()
      await deleteQueues([sink])
    }
  }
  } finally {
    await conn.close()
  }
  return out
}
