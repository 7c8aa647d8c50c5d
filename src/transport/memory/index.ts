import { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js'

export { MemoryBroker, MemoryQueue, topicMatches, type MemoryConsumer, type MemoryMessage } from './memory-broker.js'
export { MemoryTransport, type MemoryTransportOptions } from './memory-transport.js'

/**
 * An in-process transport for unit tests and the demo. Transports made with the same `broker`
 * (default: one per process) exchange messages, so a master and a replica can run side by side:
 *
 * ```ts
 * const broker = new MemoryBroker()
 * const master = memory({ broker, queues: [{ queue: 'replica', cqrsIds: ['author'] }] })
 * const replica = memory({ broker })
 * ```
 */
export function memory(options: MemoryTransportOptions = {}): MemoryTransport {
  return new MemoryTransport(options)
}
