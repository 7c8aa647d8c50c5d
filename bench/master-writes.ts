/**
 * Master write overhead: `author.create` and `author.update` through a client extended with
 * `cqrsMaster({ relay: { enabled: false } })`, once per capture mode (the default one's rows say
 * `default`) (write + outbox row in one transaction; nothing is
 * published, so this is the write path alone) against plain Prisma 7 on the same database, at
 * concurrency 1 and 16 with a pool of 16 connections each. Latency p50/p99 and throughput.
 */
import { cqrsMaster, installCaptureTriggers } from '../src/prisma/cqrs-master.js'
import { rabbitmq } from '../src/transport/rabbitmq/index.js'
import { Latencies, rate } from './stats.js'
import { AMQP_URL, authorData, captureTag, createTestDatabase, type BenchContext, type Measurement, uniqueSuffix } from './support.js'

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

export async function masterWrites(ctx: BenchContext): Promise<Measurement[]> {
  const sizes = ctx.quick ? { 1: 30, 16: 120 } : { 1: 500, 16: 2000 }
  const warm = ctx.quick ? 32 : 200
  const out: Measurement[] = []
  for (const dialect of ctx.dialects) {
    const db = await createTestDatabase(dialect, 'bmw')
    try {
      const plain = await db.client({ poolSize: 16 })
      const base = await db.client({ poolSize: 16 })
      const models = { author: { cqrsId: `author_${uniqueSuffix()}` } }
      // Each mode named, so the rows stay what they say if the default changes; captureTag() marks the default.
      const ext = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'extension', relay: { enabled: false }, models }))
      // capture: 'trigger' on its own client (the triggers fire for every client of this database,
      // so the plain and extension runs below happen before they are installed).
      const trigBase = await db.client({ poolSize: 16 })
      const trig = trigBase.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL }), capture: 'trigger', relay: { enabled: false }, models }))
      const clients = { plain, cqrs: ext, trigger: trig } as const
      // Warm up: connections, query plans, JIT.
      for (const c of [plain, ext]) {
        await runOps(warm, 16, (i) => c.author.create({ data: authorData(i) }))
        const ids: number[] = (await c.author.findMany({ select: { id: true }, take: warm })).map((a: { id: number }) => a.id)
        await runOps(ids.length, 4, (i) => c.author.update({ where: { id: ids[i] }, data: { rating: 1 } }))
      }
      await db.exec('DELETE FROM cqrs_outbox')

      type Key = `${'create' | 'update'} c${1 | 16}`
      const results: Record<string, { plain: OpResult[]; cqrs: OpResult[]; trigger: OpResult[] }> = {}
      const phases: Array<readonly ['plain' | 'cqrs' | 'trigger', 'plain' | 'cqrs' | 'trigger']> = [['plain', 'cqrs'], ['plain', 'trigger']]
      for (const [phase, pair] of phases.entries()) {
      if (phase === 1) {
        // Trigger phase: install the triggers, warm the trigger client; plain runs again beside it.
        await installCaptureTriggers(trigBase, { models })
        await runOps(warm, 16, (i) => trig.author.create({ data: authorData(900_000 + i) }))
        await db.exec('DELETE FROM cqrs_outbox')
      }
      for (let run = 0; run < ctx.runs; run++) {
        for (const conc of [1, 16] as const) {
          const n = sizes[conc]
          // Alternate who goes first, so drift (autovacuum, neighbours) does not favour one side.
          const order = (run + conc) % 2 === 0 ? [pair[0], pair[1]] : [pair[1], pair[0]]
          for (const who of order) {
            const c = clients[who]
            const created: number[] = new Array(n)
            const cr = await runOps(n, conc, async (i) => {
              const a = await c.author.create({ data: authorData(run * 100_000 + i) })
              created[i] = a.id
            })
            const up = await runOps(n, conc, (i) => c.author.update({ where: { id: created[i] }, data: { name: `Renamed ${i}`, rating: (i % 100) + 1 } }))
            for (const [op, r] of [['create', cr], ['update', up]] as const) {
              const k: Key = `${op} c${conc}`
              results[k] ??= { plain: [], cqrs: [], trigger: [] }
              // The plain runs of the trigger phase pair with the trigger runs (same conditions).
              results[k][phase === 1 && who === 'plain' ? ('plainT' as 'plain') : who] ??= []
              ;(results[k] as any)[phase === 1 && who === 'plain' ? 'plainT' : who].push(r)
            }
            ctx.log(`  master-writes ${dialect} run ${run + 1}/${ctx.runs} c${conc} ${who}: create ${cr.opsPerSec.toFixed(0)}/s p50 ${cr.p50.toFixed(2)} ms, update ${up.opsPerSec.toFixed(0)}/s p50 ${up.p50.toFixed(2)} ms`)
          }
          await db.exec('DELETE FROM cqrs_outbox')
        }
      }
      }
      for (const [k0, r0] of Object.entries(results).flatMap(([k, r]: [string, any]) => [
        [`${k} (${captureTag('extension')})`, { cqrs: r.cqrs, plain: r.plain }],
        [`${k} (${captureTag('trigger')})`, { cqrs: r.trigger, plain: r.plainT ?? [] }],
      ] as Array<[string, { cqrs: OpResult[]; plain: OpResult[] }]>)) {
        const k = k0
        const r = r0
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
      await ext.$cqrs.close()
      await trig.$cqrs.close()
    } finally {
      await db.drop()
    }
  }
  return out
}
