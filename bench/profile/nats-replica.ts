/**
 * Where the CPU of a NATS replica drain goes: `tsx bench/profile/nats-replica.ts [events] [--profile]`.
 * An in-process `cqrsReplica` on `nats()` is started once and warmed up; per run the table is locked
 * while a backlog of author SAVEs is published (the replica fetches its prefetch and waits on the
 * lock), then unlocked, and the drain is timed from the unlock. CPU is read from /proc by process:
 * this one (the replica), nats-server, PostgreSQL. With --profile, the last run is under V8's CPU
 * profiler. Linux only.
 */
import { cqrsReplica, nats, silentLogger } from '../package.js'
import { authorEventBody, countRows, createTestDatabase, until, uniqueSuffix } from '../support.js'
import { cpuByKind, cpuPerEvent, profiled, serviceOf } from './cpu.js'
import { cleanNats } from '../nats.js'

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222'
const N = Number(process.argv[2] ?? 20000)
const db = await createTestDatabase('postgresql', 'natsprof')
const prisma = await db.client()
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const queue = `bench_natsprof_${suffix}`
const publisher = nats({ servers: NATS_URL, logger: silentLogger })
await publisher.connect()
const rep = cqrsReplica({ prisma, transport: nats({ servers: NATS_URL, logger: silentLogger }), queue, handlers: { [cqrsId]: { model: 'authorRef' } }, logger: silentLogger })
await rep.start()

const kinds = () => cpuByKind((p) => (p.pid === process.pid ? 'replica' : serviceOf(p)))
const bodies = Array.from({ length: N }, (_, k) => authorEventBody(cqrsId, k + 1, 1))
const profile = process.argv.includes('--profile')
try {
  for (let run = 0; run < 4; run++) {
    const n = run === 0 ? Math.min(2000, N) : N
    const before0 = rep.stats.applied + rep.stats.skipped
    await db.exec('BEGIN; LOCK TABLE author_ref IN EXCLUSIVE MODE')
    await publisher.publish(bodies.slice(0, n).map((body, k) => ({ routingKey: cqrsId, body, messageId: `${run}-${k}` })))
    const before = kinds()
    await db.exec('COMMIT')
    const t0 = performance.now()
    const drain = () => until(() => rep.stats.applied + rep.stats.skipped >= before0 + n, `${n} applied`, 300_000, 1)
    if (profile && run === 3) console.log((await profiled('nats-replica', drain)).file)
    else await drain()
    const ms = performance.now() - t0
    const after = kinds()
    if (run > 0) console.log(`NATS replica: ${n} events in ${ms.toFixed(0)} ms = ${((n * 1000) / ms).toFixed(0)}/s; CPU µs per event: ${cpuPerEvent(before, after, n)}`)
    if ((await countRows(db, 'author_ref', 'cqrs_revision = 1')) !== n) throw new Error('rows missing')
    await db.exec('TRUNCATE author_ref')
  }
} finally {
  await rep.stop()
  await publisher.close()
  await cleanNats([queue], cqrsId, [`cqrs.${cqrsId}`])
  await prisma.$disconnect()
  await db.drop()
}
