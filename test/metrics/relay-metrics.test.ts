import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/core/logger.js'
import type { OutboxRow, OutboxStore } from '../../src/master/outbox-store.js'
import { Relay } from '../../src/master/relay.js'
import { metricsHub } from '../../src/metrics/metrics-hub.js'
import { loadPromClient, registerMetrics } from '../../src/metrics/metrics-registry.js'
import { memory } from '../../src/transport/memory/index.js'
import { runtime } from '../../src/transport/runtime-transport.js'

/** An outbox in memory: claim takes the oldest rows and deletes them once published, one claim at a time (as a row lock would). */
function memoryOutbox(rows: OutboxRow[]): OutboxStore {
  let lock: Promise<unknown> = Promise.resolve()
  return {
    claim(limit, publish) {
      const claimed = lock.then(async () => {
        const batch = rows.slice(0, limit)
        if (!batch.length) return 0
        await publish(batch)
        rows.splice(0, batch.length)
        return batch.length
      })
      lock = claimed.catch(() => {})
      return claimed
    },
    async backlog() {
      return { count: rows.length, oldestAt: rows.length ? new Date(Date.now() - 5000) : null }
    },
  }
}

const row = (id: number, cqrsId: string): OutboxRow => ({ id, cqrsId, routingKey: cqrsId, format: 0, body: `{"n":${id}}` })

describe('relay metrics (in-memory outbox and broker)', () => {
  const before = metricsHub.sink
  afterEach(() => {
    metricsHub.sink = before
  })

  it('count published events per cqrs_id, one publish duration per batch, and read the backlog on scrape', async () => {
    const registry = new Registry()
    metricsHub.sink = registerMetrics(await loadPromClient(), registry)
    const rows = [row(1, 'account'), row(2, 'account'), row(3, 'book')]
    const relay = new Relay({ store: memoryOutbox(rows), transport: runtime(memory()), batchSize: 2, pollIntervalMs: 10_000, logger: silentLogger })
    relay.start()
    try {
      await relay.drain(5000)
      const get = async (name: string) => (await registry.getSingleMetric(name)!.get()).values
      expect(Object.fromEntries((await get('cqrs_events_published_total')).map((v) => [v.labels.cqrs_id, v.value]))).toEqual({ account: 2, book: 1 })
      expect((await get('cqrs_publish_duration_seconds')).find((v: any) => v.metricName === 'cqrs_publish_duration_seconds_count')?.value).toBe(2)
      rows.push(row(4, 'book'))
      expect((await get('cqrs_outbox_backlog'))[0].value).toBe(1)
      expect((await get('cqrs_outbox_oldest_event_age_seconds'))[0].value).toBeGreaterThanOrEqual(5)
    } finally {
      await relay.stop()
    }
    // A stopped relay's outbox is no longer read.
    expect(metricsHub.outboxes.size).toBe(0)
  })

  it('count a failed batch as a relay error; its events stay in the outbox', async () => {
    const registry = new Registry()
    metricsHub.sink = registerMetrics(await loadPromClient(), registry)
    const rows = [row(1, 'account')]
    const broken = { name: 'broken', connect: async () => {}, close: async () => {}, consume: async () => ({ stop: async () => {} }), publish: async () => Promise.reject(new Error('no broker')) }
    const relay = new Relay({ store: memoryOutbox(rows), transport: runtime(broken), batchSize: 10, pollIntervalMs: 10_000, logger: silentLogger })
    relay.start()
    try {
      while (relay.stats.errors === 0) await new Promise((r) => setTimeout(r, 10))
    } finally {
      await relay.stop()
    }
    const errors = (await registry.getSingleMetric('cqrs_relay_errors_total')!.get()).values[0].value
    expect(errors).toBe(relay.stats.errors)
    expect(rows).toHaveLength(1)
  })
})
