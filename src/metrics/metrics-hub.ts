import type { OutboxStore, RelayRole } from '../master/outbox-store.js'
import type { QueueSpec, QueueStats } from '../transport/types.js'
import type { MetricKey } from './metric-catalogue.js'

/** Label values by label name (`queue`, `cqrs_id`, `outcome`). */
export type Labels = Record<string, string>

/** Where counts and observations go once metrics were asked for: a prom-client registry (metrics-registry.ts). */
export interface MetricsSink {
  inc(key: MetricKey, labels: Labels, n: number): void
  observe(key: MetricKey, labels: Labels, value: number): void
}

/** A replica queue whose depths are read on scrape. */
export interface QueueSource {
  spec: QueueSpec
  queueStats(spec: QueueSpec): Promise<QueueStats>
}

/**
 * The one seam between the library's loops and metrics. The relay and the consumer report here with
 * plain calls, and register what gauges read on scrape; nothing here imports prom-client. Until a
 * registry is attached (`cqrsMetrics()`, `--metrics-port`), reports cost a null check.
 */
class MetricsHub {
  sink: MetricsSink | null = null
  readonly outboxes = new Set<Pick<OutboxStore, 'backlog'>>()
  readonly queues = new Set<QueueSource>()
  /** Running relays, whose part `cqrs_relay_leader` reads. */
  readonly relays = new Set<{ readonly role: RelayRole; readonly wokenByCommits: boolean }>()

  inc(key: MetricKey, labels: Labels = {}, n = 1): void {
    if (n > 0) this.sink?.inc(key, labels, n)
  }

  observe(key: MetricKey, labels: Labels, value: number): void {
    this.sink?.observe(key, labels, value)
  }

  /** Register a source for the scrape; returns its removal. */
  add<T>(set: Set<T>, source: T): () => void {
    set.add(source)
    return () => void set.delete(source)
  }
}

/** The process-wide hub (a process exports one set of metrics, as Prometheus clients do). */
export const metricsHub = new MetricsHub()
