import type { NatsOptions } from './nats-options.js'
import { NatsTransport } from './nats-transport.js'

export { DEFAULT_NATS_URL, resolveNatsOptions, type NatsOptions, type ResolvedNatsOptions } from './nats-options.js'
export { NatsTransport } from './nats-transport.js'
export {
  deadLetterFilter,
  durableName,
  durablePlans,
  retrySubject,
  streamSubjects,
  subjectFor,
  type DurablePlan,
  type NatsLayout,
} from './subjects.js'

/**
 * The NATS JetStream transport (NATS >= 2.9 with JetStream):
 *
 * ```ts
 * cqrsMaster({ transport: nats({ servers: process.env.NATS_URL }), models })
 * ```
 *
 * Options are validated here; a bad one throws a `ConfigError` naming it. Nothing connects until
 * the core calls `connect()`, which creates the streams `CQRS`, `CQRS_RETRY` and `CQRS_DLQ` if
 * they do not exist.
 */
export function nats(options: NatsOptions = {}): NatsTransport {
  return new NatsTransport(options)
}
