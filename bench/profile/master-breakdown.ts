/**
 * Where the master's write overhead goes: `tsx bench/profile/master-breakdown.ts [ops] [dialect] [create|update]`.
 * The same write, built up step by step, interleaved for 3 rounds at concurrency 1 and 16 (pool 16):
 *   plain  Prisma's author.create / update
 *   itx    the same inside an interactive $transaction (what the extension wraps every write in)
 *   itx2   itx plus an outbox row through tx.cqrsOutbox.createMany (the extension's statements, without it)
 *   raw2   itx plus the outbox row through tx.$executeRawUnsafe (a cheaper way to write it)
 *   cqrs   the cqrsMaster() extension, relay disabled
 * Prints median throughput and the Node process's CPU time per write (user + system).
 */
import { cqrsMaster, rabbitmq, silentLogger } from '../package.js'
import { spread } from '../stats.js'
import { AMQP_URL, authorData, createTestDatabase, type Dialect } from '../support.js'

const [nArg = '1000', dialect = 'postgresql', op = 'create'] = process.argv.slice(2)
const n = Number(nArg)
const db = await createTestDatabase(dialect as Dialect, 'prof')
const base = await db.client({ poolSize: 16 })
const ext = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { enabled: false }, logger: silentLogger, models: { author: { cqrsId: 'author_prof' } } }))
const seedIds: number[] = []
await base.author.createMany({ data: Array.from({ length: n }, (_, i) => authorData(i)) })
seedIds.push(...(await base.author.findMany({ select: { id: true } })).map((a: { id: number }) => a.id))
const outboxSql = dialect === 'postgresql' ? 'INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) VALUES ($1, $2, $3, $4)' : 'INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) VALUES (?, ?, ?, ?)'
let k = 0
const write = (x: any) => {
  const i = k++
  return op === 'create' ? x.author.create({ data: authorData(i) }) : x.author.update({ where: { id: seedIds[i % seedIds.length] }, data: { name: `R${i}`, rating: i % 100 } })
}
const variants: Record<string, () => Promise<unknown>> = {
  plain: () => write(base),
  itx: () => base.$transaction((tx: any) => write(tx)),
  itx2: () =>
    base.$transaction(async (tx: any) => {
      const r = await write(tx)
      await tx.cqrsOutbox.createMany({ data: [{ cqrsId: 'author_prof', pk: String(r.id), routingKey: 'author_prof', body: JSON.stringify(r) }] })
      return r
    }),
  raw2: () =>
    base.$transaction(async (tx: any) => {
      const r = await write(tx)
      await tx.$executeRawUnsafe(outboxSql, 'author_prof', String(r.id), 'author_prof', JSON.stringify(r))
      return r
    }),
  cqrs: () => write(ext),
}
const measure = async (fn: () => Promise<unknown>, conc: number) => {
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: conc }, async () => { while (next++ < n) await fn() }))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { opsPerSec: (n * 1000) / ms, cpuMsPerOp: (cpu.user + cpu.system) / 1000 / n }
}
for (const fn of Object.values(variants)) await measure(fn, 16) // warm-up
for (const conc of [1, 16]) {
  const res: Record<string, Array<{ opsPerSec: number; cpuMsPerOp: number }>> = {}
  for (let round = 0; round < 3; round++) for (const [name, fn] of Object.entries(variants)) (res[name] ??= []).push(await measure(fn, conc))
  console.log(`${op} c${conc} ${dialect}, ${n} ops x 3 rounds (median):`)
  for (const [name, rs] of Object.entries(res)) {
    const t = spread(rs.map((r) => r.opsPerSec)).median
    const c = spread(rs.map((r) => r.cpuMsPerOp)).median
    console.log(`  ${name.padEnd(6)} ${t.toFixed(0).padStart(6)} ops/s   node CPU ${c.toFixed(3)} ms/write`)
  }
}
await ext.$cqrs.close()
await db.drop()
