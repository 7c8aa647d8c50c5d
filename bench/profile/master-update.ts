/**
 * What an update costs the writer's process: `tsx bench/profile/master-update.ts [updates] [rounds]`.
 * Prisma updates of authors at concurrency 16 (pool 16) on PostgreSQL with the capture triggers
 * installed, in four ways, interleaved round by round: plain Prisma; plain Prisma adding the
 * `cqrsRevision: { increment: 1 }` the extension used to add; a client with a query extension that
 * does nothing (Prisma's own cost of an extension); and the default setup (`cqrsMaster()`, relay off).
 * Prints each one's updates/s and Node CPU per update, then the medians over the rounds after the first.
 */
import { cqrsMaster, installCaptureTriggers, rabbitmq, silentLogger } from '../package.js'
import { AMQP_URL, authorData, createTestDatabase } from '../support.js'

const [nArg = '4000', roundsArg = '7'] = process.argv.slice(2)
const N = Number(nArg)
const db = await createTestDatabase('postgresql', 'mupd')
const base = await db.client({ poolSize: 16 })
const models = { author: { cqrsId: 'author_mupd' } }
await installCaptureTriggers(base, { models })
const cqrs = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { enabled: false }, logger: silentLogger, models }))
const noop = base.$extends({ query: { $allModels: { async $allOperations(a: any) { return a.query(a.args) } } } })
await base.author.createMany({ data: Array.from({ length: 2000 }, (_, i) => authorData(i)) })
const ids = (await base.author.findMany({ select: { id: true } })).map((a: { id: number }) => a.id)
let k = 0
const data = (i: number) => ({ name: `R${i}`, rating: i % 100 })
const variants: Record<string, () => Promise<unknown>> = {
  'plain Prisma': () => { const i = k++; return base.author.update({ where: { id: ids[i % ids.length] }, data: data(i) }) },
  'plain + increment': () => { const i = k++; return base.author.update({ where: { id: ids[i % ids.length] }, data: { ...data(i), cqrsRevision: { increment: 1 } } }) },
  'no-op extension': () => { const i = k++; return noop.author.update({ where: { id: ids[i % ids.length] }, data: data(i) }) },
  cqrsMaster: () => { const i = k++; return cqrs.author.update({ where: { id: ids[i % ids.length] }, data: data(i) }) },
}
const cpu: Record<string, number[]> = {}
const rate: Record<string, number[]> = {}
try {
  for (let round = 0; round < Number(roundsArg); round++) {
    for (const [name, update] of Object.entries(variants)) {
      const c0 = process.cpuUsage()
      const t0 = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: 16 }, async () => { while (next++ < N) await update() }))
      const ms = performance.now() - t0
      const c = process.cpuUsage(c0)
      if (round === 0) continue // warm-up
      ;(cpu[name] ??= []).push((c.user + c.system) / N)
      ;(rate[name] ??= []).push((N * 1000) / ms)
      console.log(`${name.padEnd(18)} ${((N * 1000) / ms).toFixed(0)} updates/s, Node CPU ${((c.user + c.system) / N).toFixed(0)} µs an update`)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  for (const name of Object.keys(variants)) console.log(`median ${name.padEnd(18)} ${median(rate[name]).toFixed(0)} updates/s, Node CPU ${median(cpu[name]).toFixed(0)} µs an update`)
} finally {
  await cqrs.$cqrs.close()
  await base.$disconnect()
  await db.drop()
}
