/**
 * cqrs-sync: the root entry. It does not load amqplib: the RabbitMQ transport is `cqrs-sync/rabbitmq`,
 * the in-memory one `cqrs-sync/memory`.
 */
export { cqrsMaster, createRelay, type CqrsMasterHandle } from './prisma/cqrs-master.ts'
export { cqrsReplica, Replica } from './prisma/cqrs-replica.ts'
export { adapterFromUrl } from './prisma/adapter-from-url.ts'
export { defineConfig, type CqrsConfig } from './config/define-config.ts'
export type { MasterOptions, MasterModelOptions, CaptureContext } from './config/master-options.ts'
export type { ReplicaOptions, HandlerContext } from './config/replica-options.ts'
export { CqrsError, ConfigError, NonRetryableError, MessageValidationError, TransportError } from './core/errors.ts'
export { decodeMessage, encodeMessage, type CqrsMessage, type SignalType } from './core/message.ts'
export { stderrLogger, silentLogger, type Logger } from './core/logger.ts'
export { Relay, type RelayStats } from './master/relay.ts'
export { listDeadLetters, retryDeadLetters, purgeDeadLetters, type DeadLetterInfo, type DeadLetterSelector } from './replica/dead-letters.ts'
export type { Transport, OutgoingMessage, Delivery, Outcome, QueueSpec, ConsumeOptions, Subscription } from './transport/types.ts'
