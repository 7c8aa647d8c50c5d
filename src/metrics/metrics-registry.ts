import type { Counter, Gauge, Histogram, Registry, RegistryContentType } from 'prom-client'
import { ConfigError } from '../core/errors.js'
import { METRICS, type MetricKey, type MetricSpec } from './metric-catalogue.js'
import type { QueueStats } from '../transport/types.js'
import { metricsHub, type MetricsSink } from './metrics-hub.js'

type PromClient = typeof import('prom-client')
type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>

/** A scrape source that does not answer within this time is left out of that scrape (a broker or database down). */
const SOURCE_TIMEOUT_MS = 2000

let prom: Promise<PromClient> | null = null

/**
 * prom-client, imported on first use: it is an optional peer, so a user who never asks for metrics
 * loads nothing. Rejects with what to install when it is missing.
 */
export function loadPromClient(): Promise<PromClient> {
  prom ??= import('prom-client').then(
    (m) => ((m as { default?: PromClient }).default ?? m) as PromClient,
    (e: unknown) => {
      prom = null
      throw new ConfigError(`cqrs-sync metrics need the optional peer 'prom-client', which could not be loaded (${(e as Error).message}); install it with 'npm install prom-client'`)
    },
  )
  return prom
}

/**
 * Create cqrs-sync's metrics (the catalogue in metric-catalogue.ts) in `registry`. Counters and
 * histograms are fed through the returned sink; gauges read the outbox and the queues registered in
 * the hub when scraped.
 */
export function registerMetrics(client: PromClient, registry: Registry<RegistryContentType>): MetricsSink {
  const metrics = new Map<MetricKey, AnyMetric>()
  const backlog = memo(async () => {
    const all = await Promise.all([...metricsHub.outboxes].map((o) => withTimeout(o.backlog())))
    const found = all.filter((b) => b !== null)
    if (!found.length) return null
    const oldest = Math.min(...found.map((b) => b.oldestAt?.getTime() ?? Infinity))
    return { count: Math.max(...found.map((b) => b.count)), ageSeconds: Number.isFinite(oldest) ? Math.max(0, (Date.now() - oldest) / 1000) : 0 }
  })
  const queues = memo(() => Promise.all([...metricsHub.queues].map((q) => withTimeout(q.queueStats(q.spec)))))
  const collectors: Partial<Record<MetricKey, (g: Gauge<string>) => Promise<void>>> = {
    async outboxBacklog(g) {
      const b = await backlog()
      if (b) g.set(b.count)
    },
    async outboxOldestAge(g) {
      const b = await backlog()
      if (b) g.set(b.ageSeconds)
    },
    async relayLeader(g) {
      g.set([...metricsHub.relays].some((r) => r.role === 'leader' || r.wokenByCommits) ? 1 : 0)
    },
    queueMessages: queueGauge(queues, (s) => s.messages),
    queueConsumers: queueGauge(queues, (s) => s.consumers),
    retryQueueMessages: queueGauge(queues, (s) => s.retrying),
    deadLetterQueueMessages: queueGauge(queues, (s) => s.deadLettered),
  }
  for (const [key, spec] of Object.entries(METRICS) as Array<[MetricKey, MetricSpec]>) {
    const config = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [registry], aggregator: spec.aggregator ?? 'sum' }
    const collect = collectors[key]
    const metric =
      spec.kind === 'counter'
        ? new client.Counter(config)
        : spec.kind === 'histogram'
          ? new client.Histogram({ ...config, buckets: [...(spec.buckets ?? [])] })
          : new client.Gauge({
              ...config,
              ...(collect && {
                async collect(this: Gauge<string>) {
                  // Values of queues or outboxes no longer registered must not linger.
                  this.reset()
                  await collect(this)
                },
              }),
            })
    metrics.set(key, metric)
  }
  return {
    inc: (key, labels, n) => (metrics.get(key) as Counter<string>).inc(labels, n),
    observe: (key, labels, value) => (metrics.get(key) as Histogram<string>).observe(labels, value),
  }
}

function queueGauge(read: () => Promise<Array<QueueStats | null>>, value: (s: QueueStats) => number) {
  return async (g: Gauge<string>) => {
    for (const s of await read()) if (s) g.set({ queue: s.queue }, value(s))
  }
}

/** One call shared by the gauges of one scrape (prom-client collects them at once). */
function memo<T>(fn: () => Promise<T>, ttlMs = 500): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null
  return () => {
    if (!last || Date.now() - last.at > ttlMs) last = { at: Date.now(), value: fn() }
    return last.value
  }
}

/** The source's answer, or null when it fails or does not answer in time: a scrape must not hang on a broker outage. */
function withTimeout<T>(p: Promise<T>): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), SOURCE_TIMEOUT_MS)
    timer.unref?.()
  })
  return Promise.race([p.catch(() => null), timeout]).finally(() => clearTimeout(timer))
}
