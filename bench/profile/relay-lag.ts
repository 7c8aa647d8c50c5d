/**
 * Lag of `cqrs relay` in a process of its own, on any database:
 * `npx tsx bench/profile/relay-lag.ts <postgresql|mysql|sqlite> [perSec=1000] [seconds=10] [relay args...]`.
 * Plain Prisma writes at a steady rate (creates; the capture triggers, installed as a migration would,
 * make the events), `cqrs relay` publishes them, and this process consumes them from a queue: an
 * event's lag is its arrival here minus the moment its write resolved here (one clock). Prints the
 * lag's p50 / p99 / max, the rate reached, and the CPU per write of the relay, the database and
 * RabbitMQ. NOWAKE=1 drops PostgreSQL's wake-up trigger first (the relay then polls).
 */
import { installCaptureTriggers } from '../package.js'
import { percentile } from '../stats.js'
import { AMQP_URL, amqpConnect, authorData, createTestDatabase, declareSink, deleteQueues, startCli, steady, type Dialect, uniqueSuffix, until } from '../support.js'
import { cpuByKind, cpuPerEvent, serviceOf } from './cpu.js'

const [dialectArg = 'postgresql', perSecArg = '1000', secondsArg = '10', ...relayArgs] = process.argv.slice(2)
const dialect = dialectArg as Dialect
const perSec = Number(perSecArg)
const ms = Number(secondsArg) * 1000
const db = await createTestDatabase(dialect, 'rlag')
const prisma = await db.client({ poolSize: 16 })
const suffix = `_${uniqueSuffix()}`
const cqrsId = `author${suffix}`
await installCaptureTriggers(prisma, { models: { author: { cqrsId } } })
if (process.env.NOWAKE === '1' && dialect === 'postgresql') await prisma.$executeRawUnsafe('DROP TRIGGER IF EXISTS cqrs_outbox_wake ON cqrs_outbox')

const conn = await amqpConnect('relay-lag')
const queue = `relay_lag_${uniqueSuffix()}`
await declareSink(conn, queue, [cqrsId])
const written = new Map<string, number>()
const lags: number[] = []
const early = new Map<string, number>()
const ch = await conn.createChannel()
await ch.consume(
  queue,
  (m) => {
    if (!m) return
    const at = performance.now()
    const pk = String(JSON.parse(m.content.toString()).instance_pk)
    const w = written.get(pk)
    if (w === undefined) early.set(pk, at)
    else lags.push(at - w)
  },
  { noAck: true },
)

// The CLI tests' config: cqrs_id author + CQRS_ID_SUFFIX.
const relay = await startCli(['relay', ...relayArgs], { CQRS_TEST_DIALECT: dialect, CQRS_MASTER_URL: db.url, CQRS_ID_SUFFIX: suffix, AMQP_URL }, /running/)
const kindOf = (p: { pid: number; comm: string; cmdline: string }) => (p.pid === relay.child.pid ? 'relay' : p.pid === process.pid ? 'writer' : serviceOf(p))
const write = async (i: number) => {
  const a = await prisma.author.create({ data: authorData(i) })
  const at = performance.now()
  const pk = String(a.id)
  const e = early.get(pk)
  // Arrived before its write resolved here: no lag to speak of.
  if (e !== undefined) lags.push(Math.max(0, e - at))
  else written.set(pk, at)
}
const arrived = (n: number) => until(() => lags.length >= n, `${n} events to arrive`, 60_000, 20)
// Warm-up (the relay's first claims and broker connection, the pools, JIT): a second at the rate, not counted.
const warm = await steady(perSec, 1000, 16, (i) => write(1_000_000 + i))
await arrived(warm.issued)
lags.length = 0
const cpu0 = cpuByKind(kindOf)
const s = await steady(perSec, ms, 16, write)
await arrived(s.issued)
const perWrite = cpuPerEvent(cpu0, cpuByKind(kindOf), s.issued)
console.log(
  `${dialect} cqrs relay ${relayArgs.join(' ') || '(defaults)'}${process.env.NOWAKE === '1' ? ' NOWAKE' : ''}: ${s.issued} writes at ${((s.issued * 1000) / s.issueMs).toFixed(0)}/s, ` +
    `${lags.length} arrived; lag p50 ${percentile(lags, 0.5).toFixed(1)} ms, p99 ${percentile(lags, 0.99).toFixed(1)} ms, max ${percentile(lags, 1).toFixed(1)} ms; ` +
    `CPU µs per write: ${perWrite}`,
)
await relay.stop()
await ch.close()
await conn.close()
await deleteQueues([queue])
await prisma.$disconnect()
await db.drop()
