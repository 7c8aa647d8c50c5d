/**
 * Where the replica's time goes: `tsx bench/profile/replica.ts [events] [prefetch] [batch] [dialect]`.
 * An in-process cqrsReplica drains a backlog of author SAVEs; the version-gated batch apply (one
 * transaction: locks, tombstone read, upsert) is timed apart from the rest (decode, acks, waiting
 * for deliveries), under the CPU profiler. With CQRS_PROFILE_SQL=1, each statement of the apply
 * transaction is timed too.
 */
import { execFileSync } from 'node:child_process'
import { cqrsReplica, rabbitmq, silentLogger } from '../package.js'
import { AMQP_URL, amqpConnect, authorEventBody, countRows, createTestDatabase, deleteQueues, type Dialect, publishRaw, replicaQueues, uniqueSuffix } from '../support.js'
import { processCpu, profiled } from './cpu.js'

const [nArg = '20000', prefetchArg = '200', batchArg = '200', dialect = 'postgresql'] = process.argv.slice(2)
const N = Number(nArg)
const db = await createTestDatabase(dialect as Dialect, 'prof')
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const queue = `bench_prof_${suffix}`
const conn = await amqpConnect('prof')
const ch = await conn.createConfirmChannel()
await ch.assertQueue(queue, { durable: true })
const prisma = await db.client()
const stmt = new Map<string, { n: number; ms: number }>()
const timed = (k: string, ms: number) => {
  const e = stmt.get(k) ?? { n: 0, ms: 0 }
  e.n++
  e.ms += ms
  stmt.set(k, e)
}
/** Time each statement of the store's apply transactions (its SQL runner, src/prisma/sql-runner.ts). */
function timeStatements(store: any): void {
  const runner = store.fast
  if (!runner?.transaction) return void console.log('(the replica store has no SQL runner to time; statement timings skipped)')
  const wrapRunner = (tx: any) => ({
    ...tx,
    transaction: (fn: any, o: any) => tx.transaction((t: any) => fn(wrapRunner(t)), o),
    query: async (sql: string, params?: unknown[]) => {
      const t = performance.now()
      try {
        return await tx.query(sql, params)
      } finally {
        timed(sql.replace(/\s+/g, ' ').slice(0, 48), performance.now() - t)
      }
    },
    execute: async (sql: string, params?: unknown[]) => {
      const t = performance.now()
      try {
        return await tx.execute(sql, params)
      } finally {
        timed(sql.replace(/\s+/g, ' ').slice(0, 48), performance.now() - t)
      }
    },
  })
  const orig = runner.transaction.bind(runner)
  runner.transaction = (fn: any, o: any) => orig((tx: any) => fn(wrapRunner(tx)), o)
}
/** CPU ms used so far by the PostgreSQL backends of this database (Linux /proc; 0 elsewhere or for MySQL). */
function databaseCpuMs(): number {
  if (dialect !== 'postgresql') return 0
  const name = new URL(db.url).pathname.slice(1)
  return processCpu()
    .filter((p) => p.cmdline.startsWith('postgres: ') && p.cmdline.includes(` ${name} `))
    .reduce((ms, p) => ms + p.cpuMs, 0)
}
const publish = (from: number, n: number) =>
  publishRaw(ch, Array.from({ length: n }, (_, k) => ({ routingKey: queue, body: Buffer.from(authorEventBody(cqrsId, from + k, 1)), messageId: String(from + k) })), 1000, '')
const make = () => cqrsReplica({ prisma, transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), queue, handlers: { [cqrsId]: { model: 'authorRef' } }, prefetch: Number(prefetchArg), batchSize: Number(batchArg), retry: { delaysMs: [1000] }, logger: silentLogger })
const drain = async (n: number) => {
  const rep = make()
  if (process.env.CQRS_PROFILE_SQL) timeStatements(rep.store)
  let applyMs = 0
  let applies = 0
  let ops = 0
  const orig = rep.store.applyBatch.bind(rep.store)
  rep.store.applyBatch = async (target, o) => {
    const t = performance.now()
    try {
      return await orig(target, o)
    } finally {
      applyMs += performance.now() - t
      applies++
      ops += o.length
    }
  }
  const t0 = performance.now()
  // The store's backends start with the replica, so they count from 0; read before stop() ends them.
  const dbCpu0 = databaseCpuMs()
  await rep.start()
  while (rep.stats.applied + rep.stats.skipped < n) await new Promise((r) => setTimeout(r, 1))
  const ms = performance.now() - t0
  const dbCpu = databaseCpuMs() - dbCpu0
  await rep.stop()
  return { ms, applyMs, applies, ops, dbCpu }
}
await publish(1, 1000)
await drain(1000)
await db.exec(dialect === 'sqlite' ? 'DELETE FROM author_ref' : 'TRUNCATE author_ref')
stmt.clear()
await publish(1, N)
const cpu0 = process.cpuUsage()
const { result: r, file } = await profiled(`replica-${dialect}-p${prefetchArg}-b${batchArg}`, () => drain(N))
const cpu = process.cpuUsage(cpu0)
if ((await countRows(db, 'author_ref', 'cqrs_revision = 1')) !== N) throw new Error('not all rows applied')
console.log(`replica ${dialect} prefetch ${prefetchArg} batch ${batchArg}: ${N} events in ${r.ms.toFixed(0)} ms = ${((N * 1000) / r.ms).toFixed(0)}/s; ${r.applies} batch applies of ${(r.ops / r.applies).toFixed(0)} on average; ` +
  `apply transaction ${r.applyMs.toFixed(0)} ms (${((100 * r.applyMs) / r.ms).toFixed(0)}%), the rest ${(r.ms - r.applyMs).toFixed(0)} ms; node CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms = ${((cpu.user + cpu.system) / 10 / r.ms).toFixed(0)}% of a core; ` +
  `per event: node CPU ${((cpu.user + cpu.system) / N).toFixed(0)} µs, database CPU ${((1000 * r.dbCpu) / N).toFixed(0)} µs (PostgreSQL backends, from /proc)`)
for (const [k, s] of stmt) console.log(`  ${s.n} x ${k}...: ${s.ms.toFixed(0)} ms, ${(s.ms / s.n).toFixed(2)} ms each`)
await conn.close()
await deleteQueues(replicaQueues(queue, [1000]))
await db.drop()
console.log(execFileSync(process.execPath, ['--import', 'tsx', 'bench/profile/summarize.ts', file, '25'], { encoding: 'utf8' }))
