/**
 * Replica: consume-and-apply events/s from a backlog of N author SAVE events (distinct pks, as the
 * master writes them) until author_ref holds all N rows at their final revision.
 *
 * - in-process: `cqrsReplica({ prisma, transport: rabbitmq(), queue, handlers })` with its defaults
 *   (prefetch 200, batch 200), in this process. PostgreSQL and MariaDB: started once and warmed up,
 *   then measured as the CLI workers are (below), timed from the unlock until it applied all N, as a
 *   replica that runs for days drains a backlog. SQLite (one writer: no table lock to wait on): a
 *   new replica per run, started on the full queue, timed from start() (its connections and topology
 *   included) to the last apply.
 * - `cqrs consume -w 1` and `-w 2`: worker processes (the CLI as users run it, on the integration
 *   test config) started once and warmed up; for each run the table is locked while the backlog is
 *   published (the workers take their prefetch and wait on the lock), timed from the unlock until
 *   the table holds all N rows. PostgreSQL and MariaDB (SQLite has one writer).
 * - baseline: raw amqplib consume with prefetch 100 and 1000; whatever arrived while the previous
 *   batch ran is applied in one version-gated upsert with the plain driver (PostgreSQL:
 *   `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE ... WHERE revision <`), then acked
 *   with multiple=true. No tombstones, no locks, no retries: the floor of the same work.
 */
import { cqrsReplica, rabbitmq, silentLogger } from './package.js'
import { rate } from './stats.js'
import {
  AMQP_URL,
  amqpConnect,
  authorEventBody,
  type BenchContext,
  type CliWorkers,
  countRows,
  createTestDatabase,
  deleteQueues,
  type Dialect,
  type Measurement,
  messageCount,
  publishRaw,
  rawApplier,
  rawConsume,
  replicaQueues,
  startConsume,
  type TestDatabase,
  uniqueSuffix,
  until,
} from './support.js'

const REVISION = 1
const RETRY_DELAYS = [1000]
const CLI_RETRY_DELAYS = [200, 400] // the test config's default

export const truncateSql = (d: Dialect, table: string) => (d === 'sqlite' ? `DELETE FROM ${table}` : `TRUNCATE TABLE ${table}`)
export const lockSql = (d: Dialect) => (d === 'postgresql' ? 'BEGIN; LOCK TABLE author_ref IN EXCLUSIVE MODE' : 'LOCK TABLES author_ref WRITE')
export const unlockSql = (d: Dialect) => (d === 'postgresql' ? 'COMMIT' : 'UNLOCK TABLES')

type Variant = 'in-process' | 'cli -w 1' | 'cli -w 2' | 'raw p100' | 'raw p1000'

export async function replica(ctx: BenchContext): Promise<Measurement[]> {
  // --quick still drains several times what the consumers take in before the unlock (-w 2: two
  // prefetches of 1,000), or the drain would time their database work alone.
  const N = ctx.quick ? 6000 : 20_000
  const WARM = ctx.quick ? 500 : 2000
  const out: Measurement[] = []
  for (const dialect of ctx.dialects) {
    const db = await createTestDatabase(dialect, 'brp')
    const suffix = uniqueSuffix()
    const cqrsId = `author_${suffix}`
    const conn = await amqpConnect('replica')
    const variants: Variant[] = ['raw p100', 'raw p1000', 'in-process', ...(dialect === 'sqlite' ? [] : (['cli -w 1', 'cli -w 2'] as const))]
    const queueOf = (v: Variant) => `bench_rep_${suffix}_${v.replace(/\W+/g, '')}`
    const workers = new Map<Variant, CliWorkers>()
    /** The in-process replica (PostgreSQL, MariaDB), started once like the workers. */
    let running: ReturnType<typeof cqrsReplica> | undefined
    const queues: string[] = []
    try {
      const confirm = await conn.createConfirmChannel()
      const setup = await conn.createChannel()
      for (const v of variants) {
        await setup.assertQueue(queueOf(v), { durable: true })
        queues.push(...replicaQueues(queueOf(v), v.startsWith('cli') ? CLI_RETRY_DELAYS : RETRY_DELAYS))
      }
      await setup.close()
      const bodies = Array.from({ length: N }, (_, k) => Buffer.from(authorEventBody(cqrsId, k + 1, REVISION)))
      const publish = (q: string, n: number) => publishRaw(confirm, bodies.slice(0, n).map((body, k) => ({ routingKey: q, body, messageId: String(k + 1) })), 1000, '')
      const prisma = await db.client()
      const appliers = { 'raw p100': await rawApplier(db), 'raw p1000': await rawApplier(db) }
      const done = (n: number) => async () => (await countRows(db, 'author_ref', `cqrs_revision = ${REVISION}`)) === n
      const inProcess = (q: string) => cqrsReplica({ prisma, transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), queue: q, handlers: { [cqrsId]: { model: 'authorRef' } }, retry: { delaysMs: RETRY_DELAYS }, logger: silentLogger })

      /**
       * Publish n events while the table is locked (the running consumers take their prefetch and wait
       * on the lock), then unlock; returns the time of the unlock, where a drain's timing starts.
       */
      const publishLocked = async (q: string, n: number): Promise<number> => {
        await db.exec(lockSql(dialect))
        try {
          await publish(q, n)
        } finally {
          await db.exec(unlockSql(dialect))
        }
        return performance.now()
      }

      /** One timed drain of an n-event backlog; returns ms. Leaves author_ref empty. */
      const drain = async (v: Variant, n: number): Promise<{ ms: number; extra?: Record<string, number> }> => {
        const q = queueOf(v)
        let result: { ms: number; extra?: Record<string, number> }
        if (v === 'raw p100' || v === 'raw p1000') {
          await publish(q, n)
          let applied = 0
          const t0 = performance.now()
          const stop = await rawConsume(conn, q, v === 'raw p100' ? 100 : 1000, appliers[v], (k) => (applied += k))
          await until(() => applied >= n, `${v} to apply ${n}`, 300_000, 1)
          const ms = performance.now() - t0
          await stop()
          result = { ms }
        } else if (v === 'in-process' && dialect === 'sqlite') {
          await publish(q, n)
          const rep = inProcess(q)
          const t0 = performance.now()
          await rep.start()
          await until(() => rep.stats.applied + rep.stats.skipped >= n, `in-process replica to apply ${n}`, 300_000, 1)
          const ms = performance.now() - t0
          await rep.stop()
          if (rep.stats.retried || rep.stats.deadLettered) throw new Error(`in-process replica retried ${rep.stats.retried} and dead-lettered ${rep.stats.deadLettered}`)
          result = { ms }
        } else if (v === 'in-process') {
          const rep = (running ??= inProcess(q))
          await rep.start()
          const before = rep.stats.applied + rep.stats.skipped
          const t0 = await publishLocked(q, n)
          // Its own count, not the table's: a query every few ms would take this process's CPU from it.
          await until(() => rep.stats.applied + rep.stats.skipped >= before + n, `in-process replica to apply ${n}`, 300_000, 1)
          result = { ms: performance.now() - t0 }
          if (rep.stats.retried || rep.stats.deadLettered) throw new Error(`in-process replica retried ${rep.stats.retried} and dead-lettered ${rep.stats.deadLettered}`)
        } else {
          const t0 = await publishLocked(q, n)
          await until(async () => (await messageCount(conn, q)) === 0, `${q} to empty`, 300_000, 10)
          const emptyMs = performance.now() - t0
          await until(done(n), `${n} rows in author_ref`, 300_000, 2)
          result = { ms: performance.now() - t0, extra: { queueEmptyMs: emptyMs } }
        }
        if (!(await done(n)())) throw new Error(`${v}: author_ref does not hold ${n} rows at revision ${REVISION}`)
        await db.exec(truncateSql(dialect, 'author_ref'))
        return result
      }

      for (const v of variants) {
        if (v.startsWith('cli')) {
          ctx.log(`  replica ${dialect}: starting cqrs consume -w ${v.slice(-1)}`)
          workers.set(v, await startConsume(Number(v.slice(-1)), { CQRS_TEST_DIALECT: dialect, CQRS_REPLICA_URL: db.url, CQRS_QUEUE: queueOf(v), CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL }))
        }
        await drain(v, WARM)
      }

      const figures = new Map<Variant, number[]>(variants.map((v) => [v, []]))
      const details: unknown[] = []
      for (let run = 0; run < ctx.runs; run++) {
        const order = variants.map((_, i) => variants[(i + run) % variants.length])
        const d: Record<string, unknown> = { events: N, order }
        for (const v of order) {
          const r = await drain(v, N)
          figures.get(v)!.push(rate(N, r.ms))
          d[v] = { ms: r.ms, ...r.extra }
        }
        details.push(d)
        ctx.log(`  replica ${dialect} run ${run + 1}/${ctx.runs}: ${variants.map((v) => `${v} ${figures.get(v)!.at(-1)!.toFixed(0)}/s`).join(', ')}`)
      }
      const base = figures.get('raw p1000')!
      const goal = { kind: 'ratio>=', value: 0.7, text: '>= 0.70x' } as const
      const label = 'raw amqplib prefetch 1000 + batched upsert'
      // Issue 12: `cqrs consume -w 2` at >= 0.85x of raw, in-process at >= 0.7x.
      const cliGoal = { kind: 'ratio>=', value: 0.85, text: '>= 0.85x (issue 12)' } as const
      const row = (metric: string, v: Variant): Measurement => ({ benchmark: 'replica', dialect, metric, unit: 'events/s', cqrs: figures.get(v)!, baseline: base, baselineLabel: label, goal: v === 'cli -w 2' ? cliGoal : goal })
      // Each with its default settings, as the quick start sets them up.
      out.push({ ...row('in-process cqrsReplica (default)', 'in-process'), details })
      if (figures.has('cli -w 1')) out.push(row('cqrs consume -w 1 (default)', 'cli -w 1'), row('cqrs consume -w 2 (default)', 'cli -w 2'))
      out.push({ benchmark: 'replica', dialect, metric: 'raw, prefetch 100 (baseline only)', unit: 'events/s', cqrs: [], baseline: figures.get('raw p100')!, baselineLabel: 'raw amqplib prefetch 100 + batched upsert' })
      out.push({ benchmark: 'replica', dialect, metric: 'raw, prefetch 1000 (baseline only)', unit: 'events/s', cqrs: [], baseline: base, baselineLabel: label })
      for (const a of Object.values(appliers)) await a.close()
    } finally {
      await running?.stop().catch(() => {})
      for (const w of workers.values()) await w.stop().catch(() => {})
      await conn.close().catch(() => {})
      await deleteQueues(queues)
      await db.drop()
    }
  }
  return out
}

export type { TestDatabase }
