import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { METRICS, type MetricSpec } from '../../src/metrics/metric-catalogue.js'
import { metricsHub } from '../../src/metrics/metrics-hub.js'
import { registerMetrics, loadPromClient } from '../../src/metrics/metrics-registry.js'
import { ReplicaStats } from '../../src/replica/replica-stats.js'
import type { ApplyOp } from '../../src/replica/apply-op.js'

const specs = Object.values(METRICS) as MetricSpec[]

describe('metric names', () => {
  it('follow the Prometheus conventions: cqrs_ prefix, base units, _total on counters only, known labels', () => {
    for (const m of specs) {
      expect(m.name, m.name).toMatch(/^cqrs_[a-z][a-z_]*[a-z]$/)
      expect(m.name.endsWith('_total'), m.name).toBe(m.kind === 'counter')
      if (m.kind === 'histogram') expect(m.name, m.name).toMatch(/_seconds$/)
      expect(m.name, m.name).not.toMatch(/_(ms|milliseconds|minutes)(_|$)/)
      for (const l of m.labels) expect(['queue', 'cqrs_id', 'outcome'], `${m.name} label ${l}`).toContain(l)
      expect(m.help.length, m.name).toBeGreaterThan(10)
    }
    expect(new Set(specs.map((m) => m.name)).size).toBe(specs.length)
  })

  it('render in the text format with the catalogue names, help and types', async () => {
    const registry = new Registry()
    registerMetrics(await loadPromClient(), registry)
    const text = await registry.metrics()
    for (const m of specs) {
      expect(text).toContain(`# HELP ${m.name} `)
      expect(text).toContain(`# TYPE ${m.name} ${m.kind}`)
    }
  })
})

describe('replica counts', () => {
  const op = (pkKey: string, revision: number, signal: 'SAVE' | 'DELETE' = 'SAVE') => ({ pkKey, revision, signal, force: false, pk: pkKey, updated: null, values: new Map() }) as ApplyOp
  const delivery = (redelivered = false) => ({ body: Buffer.alloc(0), routingKey: 'author', headers: {}, redelivered })

  it('split what did not change the table into duplicate and stale, per queue and cqrs_id', async () => {
    const registry = new Registry()
    const sink = registerMetrics(await loadPromClient(), registry)
    const before = metricsHub.sink
    metricsHub.sink = sink
    try {
      const stats = new ReplicaStats('payments')
      const a2 = op('1', 2)
      const a2again = op('1', 2)
      const a1 = op('1', 1)
      const b5 = op('2', 5)
      const c3 = op('3', 3)
      // pk 1: the newest (rev 2) applied, the same revision again is a duplicate, rev 1 is stale;
      // pk 2: the gate kept a newer row (stale); pk 3: the gate skipped a redelivery (duplicate).
      const items = [
        { op: a1, delivery: delivery() },
        { op: a2, delivery: delivery() },
        { op: a2again, delivery: delivery() },
        { op: b5, delivery: delivery() },
        { op: c3, delivery: delivery(true) },
      ]
      stats.countBatch('author', items, new Map([[a1, 'skipped'], [a2, 'applied'], [a2again, 'skipped'], [b5, 'skipped'], [c3, 'skipped']] as const))
      stats.count('retried', 1, 'author')
      stats.count('deadLettered', 2, 'author')
      expect(stats.snapshot()).toMatchObject({ applied: 1, skipped: 4, retried: 1, deadLettered: 2 })
      const values = (await registry.getSingleMetric('cqrs_messages_total')!.get()).values
      const by = Object.fromEntries(values.map((v) => [v.labels.outcome, { n: v.value, queue: v.labels.queue, cqrs_id: v.labels.cqrs_id }]))
      expect(by).toEqual({
        applied: { n: 1, queue: 'payments', cqrs_id: 'author' },
        duplicate: { n: 2, queue: 'payments', cqrs_id: 'author' },
        stale: { n: 2, queue: 'payments', cqrs_id: 'author' },
        retried: { n: 1, queue: 'payments', cqrs_id: 'author' },
        dead_lettered: { n: 2, queue: 'payments', cqrs_id: 'author' },
      })
    } finally {
      metricsHub.sink = before
    }
  })

  it('gauges read the registered outbox on scrape and drop it once removed', async () => {
    const registry = new Registry()
    registerMetrics(await loadPromClient(), registry)
    const remove = metricsHub.add(metricsHub.outboxes, { backlog: async () => ({ count: 7, oldestAt: new Date(Date.now() - 90_000) }) })
    let text = await registry.metrics()
    expect(text).toMatch(/^cqrs_outbox_backlog 7$/m)
    const age = Number(/^cqrs_outbox_oldest_event_age_seconds (\S+)$/m.exec(text)![1])
    expect(age).toBeGreaterThanOrEqual(90)
    remove()
    await new Promise((r) => setTimeout(r, 600)) // past the per-scrape memo
    text = await registry.metrics()
    expect(text).toMatch(/^cqrs_outbox_backlog 0$/m)
  })

  it('cqrs_relay_leader is 1 while a running relay of the process leads, else 0', async () => {
    const registry = new Registry()
    registerMetrics(await loadPromClient(), registry)
    const relay = { role: 'follower' as 'leader' | 'follower' | 'alone', wokenByCommits: false }
    const remove = metricsHub.add(metricsHub.relays, relay)
    expect(await registry.metrics()).toMatch(/^cqrs_relay_leader 0$/m)
    relay.role = 'leader'
    expect(await registry.metrics()).toMatch(/^cqrs_relay_leader 1$/m)
    // The wake-up trigger's leader claims as every relay does, and commits wake it.
    Object.assign(relay, { role: 'alone', wokenByCommits: true })
    expect(await registry.metrics()).toMatch(/^cqrs_relay_leader 1$/m)
    relay.wokenByCommits = false
    expect(await registry.metrics()).toMatch(/^cqrs_relay_leader 0$/m)
    relay.wokenByCommits = true
    remove()
    expect(await registry.metrics(), 'a stopped relay leads nothing').toMatch(/^cqrs_relay_leader 0$/m)
  })
})
