import type { Channel, ChannelModel, ConsumeMessage, Options } from 'amqplib'
import type { Logger } from '../../core/logger.js'
import { assertOutcomes, BatchPump } from '../batch-pump.js'
import type { BatchHandler, ConsumeOptions, Delivery, Outcome, Subscription } from '../types.js'
import { declareTopology } from './declare-topology.js'
import type { ResolvedRabbitmqOptions } from './rabbitmq-options.js'
import { deadLetterRoute, delayQueuePlan, type PublishRoute, retryRoute, topologyPlan } from './topology.js'

/** What a consumer needs from its transport. */
export interface ConsumerHost {
  readonly options: ResolvedRabbitmqOptions
  /** The live connection, or undefined while reconnecting. */
  connection(): ChannelModel | undefined
  /** Publish on the transport's confirm channel; resolves when the broker confirmed. */
  publishConfirmed(route: PublishRoute, body: Buffer, properties: Options.Publish): Promise<void>
  /** The subscription stopped: forget it. */
  stopped(consumer: RabbitmqConsumer): void
}

interface Pending {
  message: ConsumeMessage
  channel: Channel
}

/**
 * One `consume()` call: a channel of its own with `prefetch`, the replica topology declared on it,
 * and deliveries handed to the handler in micro-batches. Outcomes are carried out before anything
 * is acked. When its channel dies it attaches again (on the new connection after a reconnect).
 */
export class RabbitmqConsumer implements Subscription {
  readonly #host: ConsumerHost
  readonly #options: ConsumeOptions
  readonly #handler: BatchHandler
  readonly #logger: Logger
  readonly #pump: BatchPump<Pending>
  readonly #delays: Set<number>
  #channel: Channel | undefined
  #consumerTag: string | undefined
  #attaching: Promise<void> | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #attempt = 0
  #stopping: Promise<void> | undefined
  /** Resolves when the batch handed over last has been settled (acked or nacked, or lost). */
  #settled: Promise<void> = Promise.resolve()

  constructor(host: ConsumerHost, options: ConsumeOptions, handler: BatchHandler) {
    this.#host = host
    this.#options = options
    this.#handler = handler
    this.#logger = host.options.logger
    this.#delays = new Set(options.retryDelaysMs)
    // With inFlight 2 the next batch is handed over while one is applied and committed; #run settles them in order.
    this.#pump = new BatchPump(options.batchSize, (batch) => this.#run(batch), options.inFlight ?? 1)
  }

  /** Open a channel on `conn`, declare the topology and start consuming. Throws if any step fails. */
  attach(conn: ChannelModel): Promise<void> {
    if (this.#stopping || this.#channel) return Promise.resolve()
    this.#attaching ??= this.#attach(conn).finally(() => {
      this.#attaching = undefined
    })
    return this.#attaching
  }

  /** Like {@link attach}, for background use: a failure is logged and tried again with backoff. */
  resume(conn: ChannelModel): void {
    this.attach(conn).then(
      () => {
        this.#attempt = 0
      },
      (err: unknown) => {
        this.#logger.error('cannot resume consuming; trying again', { queue: this.#options.queue, url: this.#host.options.safeUrl, error: err })
        this.#scheduleResume()
      },
    )
  }

  /** Cancel the consumer, let the batch in flight finish and its acks go out, then close the channel. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  async #attach(conn: ChannelModel): Promise<void> {
    const channel = await conn.createChannel()
    channel.on('error', (err: Error) => this.#logger.warn('consumer channel error', { queue: this.#options.queue, error: err }))
    channel.on('close', () => this.#onChannelClosed(channel))
    try {
      await channel.prefetch(this.#options.prefetch)
      await declareTopology(channel, topologyPlan(this.#options, this.#host.options.exchange, this.#host.options.queueType))
      this.#channel = channel
      const { consumerTag } = await channel.consume(this.#options.queue, (m) => this.#onMessage(channel, m), { noAck: false })
      this.#consumerTag = consumerTag
    } catch (err) {
      if (this.#channel === channel) this.#channel = undefined
      await channel.close().catch(() => {})
      throw err
    }
  }

  #onMessage(channel: Channel, message: ConsumeMessage | null): void {
    if (message) return this.#pump.push({ message, channel })
    // The broker cancelled us (the queue was deleted): start over on a fresh channel, which declares it again.
    this.#logger.warn('RabbitMQ cancelled the consumer; declaring the queue again', { queue: this.#options.queue })
    channel.close().catch(() => {})
  }

  #onChannelClosed(channel: Channel): void {
    if (this.#channel !== channel) return
    this.#channel = undefined
    this.#consumerTag = undefined
    // Unacked deliveries of a dead channel go back to the queue by themselves; drop our copies.
    this.#pump.take()
    if (this.#stopping) return
    this.#logger.warn('consumer channel closed; attaching again', { queue: this.#options.queue })
    this.#scheduleResume()
  }

  #scheduleResume(): void {
    if (this.#stopping || this.#retryTimer) return
    const { initialMs, maxMs } = this.#host.options.reconnect
    const delay = Math.min(maxMs, initialMs * 2 ** this.#attempt++)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      // Without a connection the transport resumes every consumer once it has reconnected.
      const conn = this.#host.connection()
      if (conn) this.resume(conn)
    }, delay)
  }

  /**
   * Hand a batch to the handler, carry out its outcomes, then ack or nack it once the batch before it
   * has been settled: acks go out in delivery order, so a multiple ack covers only settled batches
   * (the handler may be running the next batch meanwhile).
   */
  async #run(batch: Pending[]): Promise<void> {
    const before = this.#settled
    let done!: () => void
    this.#settled = new Promise((resolve) => (done = resolve))
    try {
      await this.#runInOrder(batch, before)
    } finally {
      done()
    }
  }

  async #runInOrder(batch: Pending[], before: Promise<void>): Promise<void> {
    const { channel } = batch[0]
    let outcomes: Outcome[]
    try {
      outcomes = await this.#handler(batch.map((p) => toDelivery(p.message)))
      assertOutcomes(outcomes, batch.length)
    } catch (err) {
      this.#logger.error('batch handler failed; its messages go back to the queue', { queue: this.#options.queue, size: batch.length, error: err })
      await before
      // Every earlier batch is settled, so this one holds the oldest unsettled tags: settle them all at once.
      this.#settle(() => channel.nack(batch[batch.length - 1].message, true, true))
      return
    }
    if (channel !== this.#channel) return this.#lost(batch.length)
    // Retries and dead letters are re-published first; an ack needs nothing (no promise per message).
    const failed = new Map<number, unknown>()
    const work: Promise<void>[] = []
    outcomes.forEach((o, i) => {
      if (o.kind !== 'ack') work.push(this.#carryOut(o, batch[i].message, channel).catch((e: unknown) => void failed.set(i, e)))
    })
    if (work.length) await Promise.all(work)
    await before
    if (channel !== this.#channel) return this.#lost(batch.length)
    if (failed.size === 0) {
      this.#settle(() => channel.ack(batch[batch.length - 1].message, true))
      return
    }
    batch.forEach(({ message }, i) => {
      if (!failed.has(i)) return this.#settle(() => channel.ack(message))
      this.#logger.warn('could not re-publish a retry or dead letter; the message goes back to the queue', {
        queue: this.#options.queue,
        messageId: message.properties.messageId,
        error: failed.get(i),
      })
      this.#settle(() => channel.nack(message, false, true))
    })
  }

  async #carryOut(o: Exclude<Outcome, { kind: 'ack' }>, original: ConsumeMessage, channel: Channel): Promise<void> {
    const { exchange, deadLetterExpirationMs, queueType } = this.#host.options
    let route: PublishRoute
    if (o.kind === 'retry') {
      const delayMs = Math.max(0, Math.round(o.delayMs))
      // A delay nobody declared would route to no queue and vanish: declare its queue on first use.
      if (!this.#delays.has(delayMs)) {
        await declareTopology(channel, delayQueuePlan(this.#options.queue, delayMs, exchange, queueType))
        this.#delays.add(delayMs)
      }
      route = retryRoute(this.#options.queue, o.cqrsId, delayMs, exchange, o.headers)
    } else {
      route = deadLetterRoute(this.#options.queue, o.cqrsId, exchange, o.headers, deadLetterExpirationMs)
    }
    const properties: Options.Publish = {
      persistent: true,
      contentType: 'application/json',
      messageId: original.properties.messageId,
      timestamp: Math.floor(Date.now() / 1000),
      headers: route.headers,
      expiration: route.expiration,
    }
    await this.#host.publishConfirmed(route, Buffer.from(o.body), properties)
  }

  #lost(size: number): void {
    this.#logger.warn('the channel closed while a batch was handled; RabbitMQ will deliver it again', { queue: this.#options.queue, size })
  }

  #settle(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.#logger.warn('could not ack or nack; RabbitMQ will deliver the messages again', { queue: this.#options.queue, error: err })
    }
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#retryTimer)
    const inFlight = this.#pump.stop()
    await this.#attaching?.catch(() => {})
    const channel = this.#channel
    if (channel && this.#consumerTag) {
      await channel.cancel(this.#consumerTag).catch((err: unknown) => this.#logger.debug('cancel failed', { queue: this.#options.queue, error: err }))
    }
    await inFlight
    const unhandled = this.#pump.take()
    if (channel && this.#channel === channel) {
      for (const p of unhandled) this.#settle(() => channel.nack(p.message, false, true))
      await channel.close().catch(() => {})
    }
    this.#channel = undefined
    this.#host.stopped(this)
  }
}

function toDelivery(m: ConsumeMessage): Delivery {
  return {
    body: m.content,
    routingKey: m.fields.routingKey,
    messageId: typeof m.properties.messageId === 'string' ? m.properties.messageId : undefined,
    headers: m.properties.headers ?? {},
    redelivered: m.fields.redelivered,
  }
}
