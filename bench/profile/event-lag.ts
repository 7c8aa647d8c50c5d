/**
 * Where one event's time to the broker goes, event by event: `tsx bench/profile/event-lag.ts [writes/s] [seconds]`.
 * The default setup (capture triggers, in-process relay) writes authors at a steady rate on PostgreSQL,
 * with `cqrs consume -w 1` draining the events into a replica (so the broker confirms as it does in
 * the end-to-end run). For each write it records when its create() resolved and when the relay wrote
 * its event to the channel, and, for the slowest, where that time went: waiting for the relay's
 * cycle in progress to end (its confirms, its DELETE and COMMIT), waiting to start the next claim,
 * the claim itself, rendering and sending.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cqrsMaster, installCaptureTriggers, rabbitmq, silentLogger } from '../package.js'
import { timeRelay } from '../relay-timing.js'
import { percentile } from '../stats.js'
import { AMQP_URL, authorData, createTestDatabase, deleteQueues, RELAY_GATHER_MS, replicaQueues, startConsume, steady, uniqueSuffix } from '../support.js'

const [rateArg = '1000', secondsArg = '5'] = process.argv.slice(2)
const RATE = Number(rateArg)
const [master, replicaDb] = await Promise.all([createTestDatabase('postgresql', 'elm'), createTestDatabase('postgresql', 'elr')])
const suffix = uniqueSuffix()
const cqrsId = `author_${suffix}`
const queue = `bench_elag_${suffix}`
const cli = await startConsume(1, { CQRS_TEST_DIALECT: 'postgresql', CQRS_REPLICA_URL: replicaDb.url, CQRS_QUEUE: queue, CQRS_ID_SUFFIX: `_${suffix}`, AMQP_URL })
try {
  const base = await master.client({ poolSize: 16 })
  await installCaptureTriggers(base, { models: { author: { cqrsId } } })
  const client: any = base.$extends(cqrsMaster({ transport: rabbitmq({ url: AMQP_URL, logger: silentLogger }), logger: silentLogger, models: { author: { cqrsId } }, relay: { gatherMs: RELAY_GATHER_MS } }))
  const relay = client.$cqrs.relay
  const timing = timeRelay(relay)
  const { store, transport } = relay.opts
  let on = false
  const resolved = new Map<number, number>()
  const sent = new Map<number, { at: number; claimStart: number; claimEnd: number; prevEnd: number }>()
  // Each claim of the relay: when it started, when its rows came back, and when the claim before it ended.
  type Claim = { start: number; claimEnd: number; prevEnd: number; end: number }
  const cycles: Claim[] = []
  // Which claim took each outbox row: claims may overlap (a flush, a pipelined batch).
  const claimOf = new Map<string, Claim>()
  const claim = store.claim.bind(store)
  store.claim = async (limit: number, publish: (rows: Array<{ id: bigint | number }>) => Promise<void>, o: unknown) => {
    const c: Claim = { start: performance.now(), claimEnd: 0, prevEnd: cycles.at(-1)?.end ?? 0, end: 0 }
    try {
      return await claim(
        limit,
        async (rows: Array<{ id: bigint | number }>) => {
          c.claimEnd = performance.now()
          for (const r of rows) claimOf.set(String(r.id), c)
          return publish(rows)
        },
        o,
      )
    } finally {
      c.end = performance.now()
      if (on) cycles.push(c)
    }
  }
  const send = transport.send.bind(transport)
  transport.send = async (messages: Array<{ body: string; messageId: string }>) => {
    const at = performance.now()
    for (const m of messages) {
      const c = claimOf.get(m.messageId)
      if (on && c) sent.set(Number(JSON.parse(m.body).instance_pk), { at, claimStart: c.start, claimEnd: c.claimEnd, prevEnd: c.prevEnd })
    }
    return send(messages)
  }
  const write = async (i: number) => {
    const row = await client.author.create({ data: authorData(i) })
    if (on) resolved.set(Number(row.id), performance.now())
  }
  await steady(RATE, 2000, 16, write)
  await client.$cqrs.flush()
  on = true
  timing.reset()
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  await steady(RATE, Number(secondsArg) * 1000, 16, write)
  await client.$cqrs.flush()
  on = false
  loop.disable()
  const rows: Array<{ total: number; waitCycle: number; toClaim: number; claim: number; send: number }> = []
  for (const [pk, r] of resolved) {
    const s = sent.get(pk)
    if (!s) continue
    // Was a cycle running when the write resolved? Then it waited for it to end.
    const running = s.prevEnd > r ? s.prevEnd - r : 0
    rows.push({ total: s.at - r, waitCycle: running, toClaim: s.claimStart - Math.max(r, s.prevEnd), claim: s.claimEnd - s.claimStart, send: s.at - s.claimEnd })
  }
  rows.sort((a, b) => a.total - b.total)
  const p = (f: (x: (typeof rows)[0]) => number, q: number) => percentile(rows.map(f), q).toFixed(2)
  console.log(`${rows.length} events at ${RATE}/s; resolve -> written to the channel p50 ${p((x) => x.total, 0.5)} p90 ${p((x) => x.total, 0.9)} p99 ${p((x) => x.total, 0.99)} ms; ${cycles.length} cycles (${timing.summary()}); event loop delay p50 ${(loop.percentile(50) / 1e6).toFixed(1)} p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms`)
  const tail = rows.slice(Math.floor(rows.length * 0.98))
  const mean = (f: (x: (typeof rows)[0]) => number, xs: typeof rows) => (xs.reduce((a, x) => a + f(x), 0) / xs.length).toFixed(2)
  for (const [name, xs] of [['all', rows], ['slowest 2%', tail]] as const) {
    console.log(`  ${name}: mean total ${mean((x) => x.total, xs)} = waiting for the cycle in progress ${mean((x) => x.waitCycle, xs)} + to the next claim ${mean((x) => x.toClaim, xs)} + claim ${mean((x) => x.claim, xs)} + render and send ${mean((x) => x.send, xs)} ms`)
  }
  await client.$cqrs.close()
  await base.$disconnect()
} finally {
  await cli.stop()
  await deleteQueues(replicaQueues(queue, [1000, 5000, 30000]))
  await Promise.all([master.drop(), replicaDb.drop()])
}
