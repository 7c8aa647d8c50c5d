/**
 * cqrs-sync: the root entry. It loads no broker client: the RabbitMQ transport is `cqrs-sync/rabbitmq`,
 * the NATS JetStream one `cqrs-sync/nats`, the in-memory one `cqrs-sync/memory`.
 */
export { cqrsMaster, createRelay, type CqrsMasterHandle } from './prisma/cqrs-master.js'
export { cqrsReplica, Replica } from './prisma/cqrs-replica.js'
export { adapterFromUrl } from './prisma/adapter-from-url.js'
export { cqrsStatus, type StatusReport } from './prisma/cqrs-status.js'
export { DEFAULTS } from './config/defaults.js'
export { defineConfig, type CqrsConfig } from './config/define-config.js'
export type { MasterOptions, MasterModelOptions, CaptureContext } from './config/master-options.js'
export type { ReplicaOptions, HandlerContext } from './config/replica-options.js'
export { CqrsError, ConfigError, NonRetryableError, MessageValidationError, TransportError } from './core/errors.js'
export { decodeMessage, encodeMessage, type CqrsMessage, type SignalType } from './core/message.js'
export { stderrLogger, silentLogger, type Logger } from './core/logger.js'
export { Relay, type RelayStats } from './master/relay.js'
export type { RelayRole } from './master/outbox-store.js'
export { cqrsMetrics, cqrsMetricsText, type MetricsRegistry } from './metrics/cqrs-metrics.js'
export { METRICS, type MetricSpec, type MessageOutcome } from './metrics/metric-catalogue.js'
export { listDeadLetters, retryDeadLetters, purgeDeadLetters, type DeadLetterInfo, type DeadLetterSelector } from './replica/dead-letters.js'
export type { Transport, OutgoingMessage, Delivery, Outcome, QueueSpec, ConsumeOptions, Subscription } from './transport/types.js'
