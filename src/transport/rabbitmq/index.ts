import type { RabbitmqOptions } from './rabbitmq-options.js'
import { RabbitmqTransport } from './rabbitmq-transport.js'

export { DEFAULT_AMQP_URL, resolveRabbitmqOptions, type RabbitmqOptions, type ResolvedRabbitmqOptions } from './rabbitmq-options.js'
export { RabbitmqTransport } from './rabbitmq-transport.js'
export {
  deadLetterPlan,
  deadLetterRoute,
  delayExchangeName,
  delayQueueName,
  delayQueuePlan,
  describeTopology,
  exchangePlan,
  queueTypeArguments,
  mergePlans,
  retryRoute,
  topologyPlan,
  type BindingDeclaration,
  type ExchangeDeclaration,
  type PublishRoute,
  type QueueType,
  type QueueDeclaration,
  type TopologyPlan,
} from './topology.js'

/**
 * The RabbitMQ transport (the default), wire-compatible with django-cqrs:
 *
 * ```ts
 * cqrsMaster({ transport: rabbitmq({ url: process.env.AMQP_URL }), models })
 * ```
 *
 * Options are validated here; a bad one throws a `ConfigError` naming it. Nothing connects until
 * the core calls `connect()`.
 */
export function rabbitmq(options: RabbitmqOptions = {}): RabbitmqTransport {
  return new RabbitmqTransport(options)
}
