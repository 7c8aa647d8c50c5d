/**
 * `npx tsx bench/metrics-overhead.ts [--batches N]`: what the metrics and trace hooks cost the
 * consumer per message, without services. Each round handles the same batches three ways, in the same
 * run: hooks with no registry (the default), with a prom-client registry attached, and with the
 * trace wrapper on deliveries that carry a traceparent (API without an SDK: non-recording spans).
 * Prints ns per message for each; compare within one run only.
 */
import { cqrsMetrics } from '../src/metrics/cqrs-metrics.js'
import { metricsHub } from '../src/metrics/metrics-hub.js'
import { ReplicaStats } from '../src/replica/replica-stats.js'
import type { ApplyOp } from '../src/replica/apply-op.js'
import { traceApply } from '../src/tracing/tracing.js'
import type { Delivery, Outcome } from '../src/transport/types.js'

const batches = Number(process.argv[process.argv.indexOf('--batches') + 1]) || 2000
const SIZE = 200
const now = new Date().toISOString()
const items = Array.from({ length: SIZE }, (_, i) => {
  const op = { pkKey: String(i), revision: 1, signal: 'SAVE', force: false, pk: i, updated: null, values: new Map() } as ApplyOp
  const delivery: Delivery = { body: Buffer.alloc(0), routingKey: 'account', headers: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` }, redelivered: false }
  const message = { cqrs_id: 'account', instance_data: { cqrs_updated: now } } as any
  return { op, delivery, message }
})
const ops = items.map((it) => it.op)
const results = new Map(ops.map((op) => [op, 'applied' as const]))
const acks: Outcome[] = items.map(() => ({ kind: 'ack' }))

async function run(label: string, traced: boolean): Promise<void> {
  const stats = new ReplicaStats('bench')
  const handle = async (_batch: Delivery[]) => {
    stats.countBatch('account', items, results)
    for (const it of items) stats.observeLag(it.message)
    return acks
  }
  const handler = traced ? traceApply('bench', handle) : handle
  const batch = items.map((it) => it.delivery)
  for (let i = 0; i < 50; i++) await handler(batch) // warm-up
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < batches; i++) await handler(batch)
  const ns = Number(process.hrtime.bigint() - t0) / (batches * SIZE)
  process.stdout.write(`${label.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/message\n`)
}

for (let round = 1; round <= 3; round++) {
  process.stdout.write(`round ${round} (${batches} batches of ${SIZE})\n`)
  const sink = metricsHub.sink
  metricsHub.sink = null
  await run('hooks, no registry (default)', false)
  metricsHub.sink = sink
  await cqrsMetrics()
  await run('hooks, prom-client registry attached', false)
  await run('hooks + trace wrapper (API, no SDK)', true)
}
