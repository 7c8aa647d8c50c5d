/**
 * What the relay's rendering of capture-trigger row images costs per event (it runs on the writer's
 * event loop when the relay is in-process): `tsx bench/profile/render.ts [rows] [dialect]`.
 * Writes `rows` authors through the default setup with the relay stopped, reads their row images
 * from the outbox, and times the relay's renderer over them (5 passes, best pass).
 */
import { cqrsMaster, installCaptureTriggers, memory, silentLogger } from '../package.js'
import { authorData, createTestDatabase, type Dialect } from '../support.js'

const [nArg = '2000', dialect = 'postgresql'] = process.argv.slice(2)
const n = Number(nArg)
const db = await createTestDatabase(dialect as Dialect, 'prof')
const base = await db.client({ poolSize: 4 })
const models = { author: { cqrsId: 'author_prof' } }
await installCaptureTriggers(base, { models })
const live = base.$extends(cqrsMaster({ transport: memory(), relay: { enabled: false }, logger: silentLogger, models }))
for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, j) => live.author.create({ data: authorData(i + j) })))
const rows: any[] = await base.$queryRawUnsafe('SELECT id, cqrs_id, routing_key, format, body FROM cqrs_outbox ORDER BY id')
const outboxRows = rows.map((r) => ({ id: r.id, cqrsId: r.cqrs_id, routingKey: r.routing_key, format: Number(r.format), body: r.body }))
const render = (live.$cqrs.relay as any).opts.render as (row: unknown) => Promise<{ body: string } | null>
let best = Infinity
for (let pass = 0; pass < 5; pass++) {
  const t = performance.now()
  for (const r of outboxRows) await render(r)
  best = Math.min(best, performance.now() - t)
}
console.log(`render ${dialect}: ${outboxRows.length} row images, best pass ${best.toFixed(1)} ms = ${((best * 1000) / outboxRows.length).toFixed(1)} µs per event; body ${outboxRows[0].body.length} chars`)
await live.$cqrs.close()
await db.drop()
