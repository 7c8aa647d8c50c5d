/**
 * CPU profile of master writes: `tsx bench/profile/master-writes.ts <who> <create|update> <concurrency> <ops> [dialect] [noprof]`.
 * who: plain (Prisma), itx (the write alone in an interactive $transaction), itx2 (the write plus a
 * hand-made outbox row through tx.cqrsOutbox.create, what the extension does without the extension),
 * raw2 (the same with the outbox row through tx.$executeRawUnsafe), cqrs (the default setup, relay
 * off), live (the default setup with its in-process relay publishing to RabbitMQ), sep (the default
 * setup with `cqrs relay` publishing from a process of its own; its CPU shows as `relay`). NOWAKE=1
 * drops the outbox's wake-up trigger (PostgreSQL) that comes with the capture triggers; SEP_ARGS, more
 * arguments for `cqrs relay` (`--poll-ms 5`).
 * Prints throughput, the CPU per op of this process, PostgreSQL (or MariaDB) and RabbitMQ, and where the JS time went.
 */
import { cqrsMaster, installCaptureTriggers, rabbitmq, silentLogger } from '../package.js'
import { AMQP_URL, amqpConnect, authorData, startCli, createTestDatabase, declareSink, deleteQueues, type Dialect, uniqueSuffix } from '../support.js'
import { cpuByKind, cpuPerEvent, profiled, serviceOf } from './cpu.js'
import { execFileSync } from 'node:child_process'

const [who = 'cqrs', op = 'create', concArg = '16', nArg = '3000', dialect = 'postgresql', noprof] = process.argv.slice(2)
const conc = Number(concArg)
const n = Number(nArg)
const db = await createTestDatabase(dialect as Dialect, 'prof')
const base = await db.client({ poolSize: 16 })
const models = { author: { cqrsId: 'author_prof' } }
// The default setup (trigger capture) needs its triggers, as a migration would install them.
if (who === 'cqrs' || who === 'live' || who === 'sep') await installCaptureTriggers(base, { models })
// NOWAKE=1: without the outbox's wake-up trigger (PostgreSQL), to see what it costs.
if (process.env.NOWAKE === '1' && dialect === 'postgresql') await base.$executeRawUnsafe('DROP TRIGGER IF EXISTS cqrs_outbox_wake ON cqrs_outbox')
// With a relay publishing, a durable queue takes its events, as a replica's would.
const sink = `prof_sink_${uniqueSuffix()}`
if (who === 'live' || who === 'sep') {
  const conn = await amqpConnect('profile-sink')
  await declareSink(conn, sink, [models.author.cqrsId])
  await conn.close()
}
// `cqrs relay` on this database (the CLI tests' config: cqrs_id author + CQRS_ID_SUFFIX).
const sep = who === 'sep' ? await startCli(['relay', ...(process.env.SEP_ARGS?.split(' ').filter(Boolean) ?? [])], { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: '_prof', AMQP_URL }, /running/) : null
const c = who === 'plain' ? base : base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), relay: { enabled: who === 'live' }, logger: silentLogger, models }))
const ids: number[] = []
const run = async (count: number, offset: number) => {
  let next = 0
  await Promise.all(
    Array.from({ length: conc }, async () => {
      for (;;) {
        const i = next++
        if (i >= count) return
        const write = (x: any) =>
          op === 'create' ? x.author.create({ data: authorData(offset + i) }) : x.author.update({ where: { id: ids[(offset + i) % ids.length] }, data: { name: `R${i}`, rating: i % 100 } })
        let row: any
        if (who === 'itx') row = await base.$transaction((tx: any) => write(tx))
        else if (who === 'itx2')
          row = await base.$transaction(async (tx: any) => {
            const r = await write(tx)
            await tx.cqrsOutbox.createMany({ data: [{ cqrsId: 'author_prof', pk: String(r.id), routingKey: 'author_prof', body: JSON.stringify(r) }] })
            return r
          })
        else if (who === 'raw2')
          row = await base.$transaction(async (tx: any) => {
            const r = await write(tx)
            await tx.$executeRawUnsafe('INSERT INTO cqrs_outbox (cqrs_id, pk, routing_key, body) VALUES ($1, $2, $3, $4)', 'author_prof', String(r.id), 'author_prof', JSON.stringify(r))
            return r
          })
        else row = await write(c)
        if (op === 'create') ids.push(row.id)
      }
    }),
  )
}
// Warm up, and rows to update.
const seed = op === 'update' ? n : 300
await base.author.createMany({ data: Array.from({ length: seed }, (_, i) => authorData(i)) })
ids.push(...(await base.author.findMany({ select: { id: true } })).map((a: { id: number }) => a.id))
await run(300, 0)
/** CPU ms so far by process kind: the database server's, RabbitMQ's, this process's. */
const kinds = () =>
  cpuByKind((p) => (p.pid === process.pid ? 'node' : p.pid === sep?.child.pid ? 'relay' : serviceOf(p)))
const k0 = kinds()
const t0 = performance.now()
const cpu0 = process.cpuUsage()
const { file } = noprof ? { file: '' } : await profiled(`master-${who}-${op}-c${conc}-${dialect}`, () => run(n, 1000))
if (noprof) await run(n, 1000)
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
// With a relay publishing, what it left in the outbox is part of the writes' cost.
if (who === 'live') await (c as any).$cqrs.flush()
while (sep && (await base.$queryRawUnsafe('SELECT count(*)::int AS n FROM cqrs_outbox'))[0].n > 0) await new Promise((r) => setTimeout(r, 5))
const k1 = kinds()
const relayStats = who === 'live' ? (c as any).$cqrs.relay.stats : null
if (relayStats) console.log(`relay: ${relayStats.published} events in ${relayStats.batches} batches (${(relayStats.published / relayStats.batches).toFixed(1)} a batch)`)
console.log(`${who} ${op} c${conc} ${dialect}: ${n} ops in ${ms.toFixed(0)} ms = ${((n * 1000) / ms).toFixed(0)} ops/s; node CPU ${((cpu.user + cpu.system) / 1000 / n).toFixed(3)} ms/op; CPU µs per op by process (flush included): ${cpuPerEvent(k0, k1, n)}`)
if (who === 'cqrs' || who === 'live' || who === 'sep') await (c as any).$cqrs.close()
await sep?.stop()
await db.drop()
if (who === 'live' || who === 'sep') await deleteQueues([sink])
if (file) console.log(execFileSync(process.execPath, ['--import', 'tsx', 'bench/profile/summarize.ts', file, '22'], { encoding: 'utf8' }))
