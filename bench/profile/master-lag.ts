/**
 * The master process at a steady write rate: `tsx bench/profile/master-lag.ts [writes/s] [seconds]`.
 * Prisma creates of authors (16 in flight at most) on PostgreSQL with the capture triggers installed,
 * in three setups: plain Prisma (the triggers still write the outbox), the client extended with
 * cqrsMaster() and its relay off, and the default setup (its in-process relay publishing to
 * RabbitMQ). Prints the process's CPU per write, its event loop delay, and the relay's batches: what
 * a relay in the writer's process costs at a rate that does not saturate it. PROFILE=1 also writes a
 * CPU profile of each measured part; ONLY=1, 2 or 3 runs that setup alone. SINK=1 binds a durable
 * queue to the events, so the broker confirms a message only once it has stored it, as in production
 * (without a queue it confirms at once). CQRS_RELAY_GATHER_MS sets the in-process relay's gatherMs.
 * NOTIFY=1 installs the outbox's row-level NOTIFY trigger, so the in-process relay leads.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cqrsMaster, installCaptureTriggers, outboxNotifyStatements, rabbitmq, silentLogger } from '../package.js'
import { AMQP_URL, amqpConnect, RELAY_GATHER_MS, authorData, createTestDatabase, declareSink, deleteQueues, steady, uniqueSuffix } from '../support.js'
import { profiled } from './cpu.js'

const [rateArg = '1000', secondsArg = '5'] = process.argv.slice(2)
const RATE = Number(rateArg)
const master = await createTestDatabase('postgresql', 'mlag')
const cqrsId = `author_${uniqueSuffix()}`
const models = { author: { cqrsId } }
const sink = process.env.SINK === '1' ? `bench_mlag_${cqrsId}` : null
const conn = sink ? await amqpConnect('mlag') : null
if (conn && sink) await declareSink(conn, sink, [cqrsId])

try {
  const setups = ['plain Prisma', 'cqrsMaster, relay off', 'default setup (in-process relay)'] as const
  // ONLY=<n>: the setup of that number alone (1-3), e.g. to record it with perf.
  for (const setup of process.env.ONLY ? [setups[Number(process.env.ONLY) - 1]] : setups) {
    const base = await master.client({ poolSize: 16 })
    await installCaptureTriggers(base, { models })
    // NOTIFY=1: the outbox's row-level NOTIFY trigger too, so the in-process relay leads.
    if (process.env.NOTIFY === '1') for (const sql of outboxNotifyStatements(base)) await master.exec(sql)
    const client: any = setup === 'plain Prisma' ? base : base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, models, relay: { enabled: setup !== 'cqrsMaster, relay off', gatherMs: RELAY_GATHER_MS } }))
    const write = async (i: number) => void (await client.author.create({ data: authorData(i) }))
    await steady(RATE, 2000, 16, write) // warm up
    const relay = client.$cqrs?.relay
    const b0 = relay ? { ...relay.stats } : null
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    const cpu0 = process.cpuUsage()
    const run = async () => (await steady(RATE, Number(secondsArg) * 1000, 16, write)).issued
    const n = process.env.PROFILE === '1' ? (await profiled(`master-lag-${setup.replace(/\W+/g, '-')}`, run)).result : await run()
    const cpu = process.cpuUsage(cpu0)
    loop.disable()
    const batches = relay && b0 ? `; relay: ${relay.stats.batches - b0.batches} batches of ${((relay.stats.published - b0.published) / Math.max(1, relay.stats.batches - b0.batches)).toFixed(1)} events on average` : ''
    console.log(`${setup}: ${n} writes at ${RATE}/s; node CPU per write ${((cpu.user + cpu.system) / n).toFixed(0)} µs (user ${(cpu.user / n).toFixed(0)}, system ${(cpu.system / n).toFixed(0)}); event loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms${batches}`)
    if (relay) await client.$cqrs.flush()
    await client.$cqrs?.close()
    await base.$disconnect()
    await master.exec('TRUNCATE author, cqrs_outbox CASCADE')
  }
} finally {
  if (sink) await deleteQueues([sink])
  await conn?.close()
  await master.drop()
}
