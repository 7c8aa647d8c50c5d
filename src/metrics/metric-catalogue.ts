/**
 * Every metric cqrs-sync exports, as data: one place for names, help, labels and how a supervisor
 * sums its workers. Names follow Prometheus conventions: `cqrs_` prefix, base units (`_seconds`),
 * `_total` on counters, labels `queue`, `cqrs_id`, `outcome`.
 */
export type MetricKind = 'counter' | 'gauge' | 'histogram'

/** How `cqrs consume -w N` combines its workers' values (prom-client's aggregators). */
export type Aggregation = 'sum' | 'max'

export interface MetricSpec {
  name: string
  kind: MetricKind
  help: string
  labels: readonly string[]
  /** Gauges read from a shared source (the queue, the outbox) are the same in every worker: take the max. */
  aggregator?: Aggregation
  buckets?: readonly number[]
}

/** What happened to one consumed message: the values of the `outcome` label. */
export type MessageOutcome = 'applied' | 'duplicate' | 'stale' | 'retried' | 'dead_lettered'

/** Lags and latencies from a few milliseconds to an outage of ten minutes. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600] as const

export const METRICS = {
  outboxBacklog: { name: 'cqrs_outbox_backlog', kind: 'gauge', help: 'Events waiting in the master outbox (read on scrape; 0 in a process without a relay).', labels: [], aggregator: 'max' },
  outboxOldestAge: {
    name: 'cqrs_outbox_oldest_event_age_seconds',
    kind: 'gauge',
    help: 'Age of the oldest event in the master outbox, 0 when it is empty (read on scrape).',
    labels: [],
    aggregator: 'max',
  },
  eventsPublished: { name: 'cqrs_events_published_total', kind: 'counter', help: 'Events the relay published and the broker confirmed.', labels: ['cqrs_id'] },
  publishDuration: {
    name: 'cqrs_publish_duration_seconds',
    kind: 'histogram',
    help: 'Time to publish one relay batch until the broker confirmed all of it.',
    labels: [],
    buckets: SECONDS_BUCKETS,
  },
  relayErrors: { name: 'cqrs_relay_errors_total', kind: 'counter', help: 'Relay batches that failed (broker or database); their events stay in the outbox.', labels: [] },
  relayLeader: {
    name: 'cqrs_relay_leader',
    kind: 'gauge',
    help: "1 while a relay of this process leads its outbox (PostgreSQL: with the outbox's row-level NOTIFY trigger it publishes rows as they commit; with the wake-up trigger commits wake it when it sleeps), else 0 (read on scrape).",
    labels: [],
    aggregator: 'max',
  },
  messages: {
    name: 'cqrs_messages_total',
    kind: 'counter',
    help: 'Consumed messages by outcome: applied; duplicate (a redelivery, or the same revision twice in a batch) or stale (the version gate kept a newer or equal row), both skipped; retried; dead_lettered.',
    labels: ['queue', 'cqrs_id', 'outcome'],
  },
  applyLag: {
    name: 'cqrs_apply_lag_seconds',
    kind: 'histogram',
    help: "From the master's cqrs_updated of the row to the replica's commit of the message (includes clock skew between the hosts).",
    labels: ['queue', 'cqrs_id'],
    buckets: SECONDS_BUCKETS,
  },
  queueMessages: { name: 'cqrs_queue_messages', kind: 'gauge', help: "Messages ready in the replica's queue (read on scrape).", labels: ['queue'], aggregator: 'max' },
  queueConsumers: { name: 'cqrs_queue_consumers', kind: 'gauge', help: "Consumers on the replica's queue (read on scrape).", labels: ['queue'], aggregator: 'max' },
  retryQueueMessages: { name: 'cqrs_retry_queue_messages', kind: 'gauge', help: "Messages waiting in the queue's retry (delay) queues (read on scrape).", labels: ['queue'], aggregator: 'max' },
  deadLetterQueueMessages: { name: 'cqrs_dead_letter_queue_messages', kind: 'gauge', help: "Messages in the queue's dead-letter queue (read on scrape).", labels: ['queue'], aggregator: 'max' },
  workerRestarts: { name: 'cqrs_worker_restarts_total', kind: 'counter', help: 'Consumer workers the supervisor restarted after they died.', labels: [] },
} as const satisfies Record<string, MetricSpec>

export type MetricKey = keyof typeof METRICS
