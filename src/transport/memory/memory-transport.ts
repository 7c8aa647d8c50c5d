import { TransportError } from '../../core/errors.js'
import { type Logger, stderrLogger } from '../../core/logger.js'
import { assertConsumeOptions, assertOutcomes, BatchPump } from '../batch-pump.js'
import { deadLetterId, deadLetterQueueName, deadLetterRoutingKey, directRoutingKey } from '../queue-names.js'
import type {
  BatchHandler,
  ConsumeOptions,
  DeadLetter,
  Delivery,
  OutgoingMessage,
  Outcome,
  QueueSpec,
  QueueStats,
  Subscription,
  Transport,
} from '../types.js'
import { type MemoryConsumer, MemoryBroker, type MemoryMessage, type MemoryQueue } from './memory-broker.js'

/** Options of {@link memory}. */
export interface MemoryTransportOptions {
  /** The broker this transport talks to; transports sharing one see each other's messages. Default: {@link MemoryBroker.shared}. */
  broker?: MemoryBroker
  /**
   * Queues to declare at once. As on RabbitMQ, a message published before its queue exists is
   * lost; declare ahead when publishing before anyone consumes (the demo).
   */
  queues?: Array<Pick<QueueSpec, 'queue' | 'cqrsIds'>>
  /** Where handler failures are reported. Default: JSON lines on stderr. */
  logger?: Logger
}

/**
 * An in-process transport with RabbitMQ's semantics: topic routing of `<cqrs_id>` and
 * `cqrs.<Q>.<cqrs_id>`, prefetch, micro-batches, retries that wait (in a timer of the broker, so
 * they outlive a subscription) and come back as `cqrs.<Q>.<cqrs_id>`, and dead letters in
 * `dead_letter_<Q>`. Nothing survives the process: for unit tests and the demo.
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory'
  readonly broker: MemoryBroker
  readonly #logger: Logger
  readonly #subscriptions = new Set<MemorySubscription>()
  #closed = false

  constructor(options: MemoryTransportOptions = {}) {
    this.broker = options.broker ?? MemoryBroker.shared()
    this.#logger = options.logger ?? stderrLogger()
    for (const spec of options.queues ?? []) this.declare(spec)
  }

  /** Declare a replica queue and its dead-letter queue now, so messages published from now on are kept. */
  declare(spec: Pick<QueueSpec, 'queue' | 'cqrsIds'>): void {
    this.broker.declare(spec)
  }

  async connect(): Promise<void> {
    this.#assertOpen('connect')
  }

  isConnected(): boolean {
    return !this.#closed
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    this.#assertOpen('publish')
    for (const m of messages) {
      this.broker.publish({ routingKey: m.routingKey, body: Buffer.from(m.body), messageId: m.messageId, headers: { ...m.headers } })
    }
  }

  async consume(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    this.#assertOpen('consume')
    assertConsumeOptions('memory', options)
    this.broker.declare(options)
    const sub = new MemorySubscription(this.broker, this.broker.queue(options.queue)!, options, handler, this.#logger, () => {
      this.#subscriptions.delete(sub)
    })
    this.#subscriptions.add(sub)
    this.broker.addConsumer(this.broker.queue(options.queue)!, sub)
    return sub
  }

  /** Stop this transport's subscriptions; retries already waiting stay in the broker. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#subscriptions].map((s) => s.stop()))
  }

  async listDeadLetters(spec: QueueSpec, limit: number): Promise<DeadLetter[]> {
    const q = this.broker.queue(deadLetterQueueName(spec.queue))
    return (q?.ready ?? []).slice(0, Math.max(0, limit)).map(toDeadLetter)
  }

  async drainDeadLetters(spec: QueueSpec, select: (d: DeadLetter) => boolean, fn: (d: DeadLetter) => Promise<void>): Promise<number> {
    const q = this.broker.queue(deadLetterQueueName(spec.queue))
    if (!q) return 0
    let taken = 0
    for (const m of [...q.ready]) {
      const d = toDeadLetter(m)
      if (!select(d)) continue
      // Out of the queue while `fn` runs, as a basic.get would; back in place if `fn` fails.
      const at = q.ready.indexOf(m)
      if (at < 0) continue
      q.ready.splice(at, 1)
      try {
        await fn(d)
      } catch (err) {
        q.ready.splice(Math.min(at, q.ready.length), 0, m)
        throw err
      }
      taken++
    }
    return taken
  }

  async queueStats(spec: QueueSpec): Promise<QueueStats> {
    const q = this.broker.queue(spec.queue)
    const dl = this.broker.queue(deadLetterQueueName(spec.queue))
    return {
      queue: spec.queue,
      messages: q?.ready.length ?? 0,
      consumers: q?.consumers.length ?? 0,
      retrying: q?.retrying ?? 0,
      deadLettered: dl?.ready.length ?? 0,
    }
  }

  #assertOpen(operation: string): void {
    if (this.#closed) {
      throw new TransportError(`${operation}() on a closed memory transport; create a new one with memory()`, { operation })
    }
  }
}

/** One consume() call: takes up to `prefetch` messages from the queue and hands them over in batches. */
class MemorySubscription implements Subscription, MemoryConsumer {
  readonly prefetch: number
  unacked = 0
  readonly #pump: BatchPump<MemoryMessage>
  #stopping: Promise<void> | undefined

  constructor(
    private readonly broker: MemoryBroker,
    private readonly queue: MemoryQueue,
    options: ConsumeOptions,
    private readonly handler: BatchHandler,
    private readonly logger: Logger,
    private readonly onStopped: () => void,
  ) {
    this.prefetch = options.prefetch
    this.#pump = new BatchPump(options.batchSize, (batch) => this.#run(batch))
  }

  deliver(message: MemoryMessage): void {
    this.#pump.push(message)
  }

  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.broker.removeConsumer(this.queue, this)
      await this.#pump.stop()
      const unhandled = this.#pump.take()
      if (unhandled.length > 0) this.#handBack(unhandled)
      this.onStopped()
    })()
    return this.#stopping
  }

  async #run(batch: MemoryMessage[]): Promise<void> {
    let outcomes: Outcome[]
    try {
      outcomes = await this.handler(batch.map(toDelivery))
      assertOutcomes(outcomes, batch.length)
    } catch (err) {
      this.logger.error('batch handler failed; its messages go back to the queue', { queue: this.queue.name, size: batch.length, error: err })
      this.#handBack(batch)
      return
    }
    outcomes.forEach((o, i) => this.#carryOut(o, batch[i]))
    this.unacked -= batch.length
    this.broker.settled(this.queue)
  }

  #carryOut(o: Outcome, m: MemoryMessage): void {
    if (o.kind === 'retry') {
      const headers = { ...o.headers, 'cqrs-delay-queue': this.queue.name, 'cqrs-delay-ms': String(o.delayMs) }
      const message = { routingKey: directRoutingKey(this.queue.name, o.cqrsId), body: Buffer.from(o.body), messageId: m.messageId, headers }
      this.broker.publishLater(this.queue, o.delayMs, message)
    } else if (o.kind === 'deadLetter') {
      const routingKey = deadLetterRoutingKey(this.queue.name, o.cqrsId)
      this.broker.publish({ routingKey, body: Buffer.from(o.body), messageId: m.messageId, headers: { ...o.headers } })
    }
  }

  #handBack(messages: MemoryMessage[]): void {
    this.unacked -= messages.length
    this.broker.requeue(this.queue, messages)
  }
}

function toDelivery(m: MemoryMessage): Delivery {
  return { body: m.body, routingKey: m.routingKey, messageId: m.messageId, headers: { ...m.headers }, redelivered: m.redelivered }
}

function toDeadLetter(m: MemoryMessage): DeadLetter {
  return { id: deadLetterId(m.messageId, m.body), routingKey: m.routingKey, body: m.body.toString('utf8'), headers: { ...m.headers } }
}
