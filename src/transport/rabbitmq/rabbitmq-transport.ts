import amqp, { type Channel, type ChannelModel, type Options } from 'amqplib'
import { TransportError } from '../../core/errors.js'
import { assertConsumeOptions } from '../batch-pump.js'
import { deadLetterQueueName } from '../queue-names.js'
import type {
  BatchHandler,
  ConsumeOptions,
  DeadLetter,
  OutgoingMessage,
  QueueSpec,
  QueueStats,
  Subscription,
  Transport,
} from '../types.js'
import { coalesceWrites, type WriteCoalescer } from './coalesce-writes.js'
import { ConfirmPublisher } from './confirm-publisher.js'
import { readDeadLetters, takeDeadLetters } from './dead-letters.js'
import { declareTopology } from './declare-topology.js'
import { type ConsumerHost, RabbitmqConsumer } from './rabbitmq-consumer.js'
import { type RabbitmqOptions, type ResolvedRabbitmqOptions, resolveRabbitmqOptions } from './rabbitmq-options.js'
import { delayQueueName, exchangePlan } from './topology.js'

// amqplib waits for the OS TCP timeout (minutes) on an unreachable host; fail sooner.
const CONNECT_TIMEOUT_MS = 10_000
/**
 * Batches of at least this many messages leave in one socket write (coalesce-writes.ts); smaller ones,
 * as an in-process relay sends at a steady rate, message by message, which cost its writer less.
 */
const COALESCE_MIN = 64

/**
 * The RabbitMQ transport, wire-compatible with django-cqrs (PROTOCOL.md). One connection; one
 * confirm channel for publishing; one channel per consume() call. When the connection drops it
 * reconnects with backoff until close(), declares the consumers' topology again and resumes them;
 * meanwhile publish() fails fast with a {@link TransportError} so callers retry later.
 */
export class RabbitmqTransport implements Transport {
  readonly name = 'rabbitmq'
  /** The validated options. */
  readonly options: ResolvedRabbitmqOptions
  #conn: ChannelModel | undefined
  #coalescer: WriteCoalescer | null = null
  #publisher: ConfirmPublisher | undefined
  #opening: Promise<ConfirmPublisher> | undefined
  #closing = false
  #reconnecting = false
  #blocked = false
  #attempt = 0
  #timer: NodeJS.Timeout | undefined
  readonly #consumers = new Set<RabbitmqConsumer>()
  readonly #host: ConsumerHost

  constructor(options: RabbitmqOptions = {}) {
    this.options = resolveRabbitmqOptions(options)
    this.#host = {
      options: this.options,
      connection: () => this.#conn,
      publishConfirmed: async (route, body, properties) => {
        const sent = await (await this.#getPublisher()).send(route.exchange, route.routingKey, body, properties)
        await sent.confirmed
      },
      stopped: (consumer) => this.#consumers.delete(consumer),
    }
  }

  /** Connect and declare the exchanges. A failure is a {@link TransportError} that says what to check. */
  async connect(): Promise<void> {
    this.#assertOpen('connect')
    if (this.#conn) return
    try {
      await this.#open()
    } catch (err) {
      throw connectError(this.options.safeUrl, err)
    }
  }

  /** True while publishing can succeed: connected, not blocked by the broker, not closed. */
  isConnected(): boolean {
    return this.#conn !== undefined && !this.#blocked && !this.#closing
  }

  /** Publish persistent JSON messages in order; resolves when RabbitMQ confirmed every one. */
  async publish(messages: OutgoingMessage[]): Promise<void> {
    await (await this.send(messages)).confirmed
  }

  /**
   * Write persistent JSON messages in order on the confirm channel; resolves once all are written,
   * and `confirmed` settles when RabbitMQ confirmed every one. Calls are written in call order only
   * when each waits for the previous one to resolve (the relay does).
   */
  async send(messages: OutgoingMessage[]): Promise<{ confirmed: Promise<void> }> {
    this.#assertOpen('publish')
    if (messages.length === 0) return { confirmed: Promise.resolve() }
    if (this.#blocked) {
      throw new TransportError(`publish(): RabbitMQ at ${this.options.safeUrl} blocks publishers (it is low on memory or disk); try again later`, { url: this.options.safeUrl })
    }
    const publisher = await this.#getPublisher()
    // Held until the last message is queued: past the confirm window they are queued as confirms come.
    const release = messages.length >= COALESCE_MIN ? this.#coalescer?.arm() : undefined
    const timestamp = Math.floor(Date.now() / 1000)
    const confirms: Promise<void>[] = []
    try {
      for (const m of messages) {
        const properties: Options.Publish = { persistent: true, contentType: 'application/json', messageId: m.messageId, timestamp, headers: m.headers }
        confirms.push((await publisher.send(this.options.exchange, m.routingKey, Buffer.from(m.body), properties)).confirmed)
      }
    } finally {
      release?.()
    }
    const confirmed = Promise.all(confirms).then(() => {})
    // The caller awaits it later; until then a refusal must not count as unhandled.
    confirmed.catch(() => {})
    return { confirmed }
  }

  /** Declare the queue's topology on a channel of its own and consume it; see {@link RabbitmqConsumer}. */
  async consume(options: ConsumeOptions, handler: BatchHandler): Promise<Subscription> {
    this.#assertOpen('consume')
    assertConsumeOptions('rabbitmq', options)
    const conn = this.#conn
    if (!conn && !this.#reconnecting) throw this.#notConnected('consume')
    const consumer = new RabbitmqConsumer(this.#host, options, handler)
    this.#consumers.add(consumer)
    // While reconnecting, the consumer starts with the others once the connection is back.
    if (conn) {
      try {
        await consumer.attach(conn)
      } catch (err) {
        await consumer.stop()
        throw declareError(options.queue, this.options.queueType, err)
      }
    }
    return consumer
  }

  /** Stop the consumers (their batches in flight finish), wait for outstanding confirms, close. */
  async close(): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    clearTimeout(this.#timer)
    await Promise.allSettled([...this.#consumers].map((c) => c.stop()))
    const conn = this.#conn
    this.#conn = undefined
    await this.#publisher?.close()
    await conn?.close().catch((err: unknown) => this.options.logger.debug('closing the connection failed', { error: err }))
  }

  /** Read up to `limit` dead letters of the queue without removing them (they go back unchanged). */
  async listDeadLetters(spec: QueueSpec, limit: number): Promise<DeadLetter[]> {
    return this.#withChannel('listDeadLetters', (ch) => readDeadLetters(ch, spec.queue, this.options.exchange, limit, this.options.queueType))
  }

  /** Take the dead letters `select` accepts out of the queue, each after `fn` succeeded; the rest stay. */
  async drainDeadLetters(spec: QueueSpec, select: (d: DeadLetter) => boolean, fn: (d: DeadLetter) => Promise<void>): Promise<number> {
    const result = await this.#withChannel('drainDeadLetters', (ch) => takeDeadLetters(ch, spec.queue, this.options.exchange, select, fn, this.options.queueType))
    // The caller's error as it threw it, not dressed up as a broker failure.
    if (result.failure) throw result.failure.error
    return result.taken
  }

  /** Counts of the queue, its delay queues (`retrying`) and its dead-letter queue; a missing queue counts 0. */
  async queueStats(spec: QueueSpec): Promise<QueueStats> {
    const count = (queue: string) =>
      this.#withChannel('queueStats', (ch) => ch.checkQueue(queue)).catch((err: unknown) => {
        if ((err as { cause?: { code?: number } }).cause?.code === 404) return { messageCount: 0, consumerCount: 0 }
        throw err
      })
    const [main, dead, ...delays] = await Promise.all([
      count(spec.queue),
      count(deadLetterQueueName(spec.queue)),
      ...[...new Set(spec.retryDelaysMs)].map((ms) => count(delayQueueName(spec.queue, ms))),
    ])
    return {
      queue: spec.queue,
      messages: main.messageCount,
      consumers: main.consumerCount,
      retrying: delays.reduce((n, d) => n + d.messageCount, 0),
      deadLettered: dead.messageCount,
    }
  }

  /** @internal For tests: the live amqplib connection, to break it on purpose. */
  get amqpConnection(): ChannelModel | undefined {
    return this.#conn
  }

  async #open(): Promise<void> {
    const { connectUrl, connectionName, logger, safeUrl } = this.options
    // noDelay: amqplib leaves Nagle's algorithm on. Then a small write (an ack, a publish) that follows
    // another not yet acknowledged by TCP waits for that acknowledgement, which the broker's kernel
    // delays up to 40 ms: a consumer's acks came late, and with them the publisher's confirms.
    const conn = await amqp.connect(connectUrl, { clientProperties: { connection_name: connectionName }, timeout: CONNECT_TIMEOUT_MS, noDelay: true })
    // Without Nagle each message would be a TCP segment of its own: a big batch leaves in one write instead.
    this.#coalescer = coalesceWrites(conn)
    let lost = false
    conn.on('error', (err: Error) => logger.warn('RabbitMQ connection error', { url: safeUrl, error: err }))
    conn.on('close', (err?: Error) => {
      lost = true
      if (this.#conn === conn) this.#connectionLost(err)
    })
    // A blocked connection accepts publishes but confirms nothing until unblocked: refuse them meanwhile.
    conn.on('blocked', (reason: string) => {
      this.#blocked = true
      logger.warn('RabbitMQ blocked publishing (low on memory or disk); publish() fails until it unblocks', { url: safeUrl, reason })
    })
    conn.on('unblocked', () => {
      this.#blocked = false
      logger.info('RabbitMQ unblocked publishing', { url: safeUrl })
    })
    try {
      const publisher = await this.#openPublisher(conn)
      if (lost || this.#closing) throw new Error(lost ? 'the connection closed while opening' : 'close() was called while connecting')
      this.#conn = conn
      this.#publisher = publisher
    } catch (err) {
      await conn.close().catch(() => {})
      throw err
    }
    this.#reconnecting = false
    this.#attempt = 0
    for (const consumer of this.#consumers) consumer.resume(conn)
  }

  async #openPublisher(conn: ChannelModel): Promise<ConfirmPublisher> {
    const channel = await conn.createConfirmChannel()
    channel.on('error', (err: Error) => this.options.logger.warn('publish channel error', { url: this.options.safeUrl, error: err }))
    await declareTopology(channel, exchangePlan(this.options.exchange))
    return new ConfirmPublisher(channel, this.options.publishConfirmWindow)
  }

  // The publish channel can die alone (e.g. a publish to a missing exchange): open a new one lazily.
  async #getPublisher(): Promise<ConfirmPublisher> {
    if (this.#publisher?.open) return this.#publisher
    const conn = this.#conn
    if (!conn) throw this.#notConnected('publish')
    this.#opening ??= this.#openPublisher(conn)
      .then((p) => (this.#publisher = p))
      .finally(() => {
        this.#opening = undefined
      })
    try {
      return await this.#opening
    } catch (err) {
      throw new TransportError(`cannot open a publish channel on RabbitMQ at ${this.options.safeUrl}; publish again later`, { url: this.options.safeUrl }, { cause: err })
    }
  }

  #connectionLost(err?: Error): void {
    this.#conn = undefined
    this.#publisher = undefined
    this.#blocked = false
    if (this.#closing) return
    this.#reconnecting = true
    this.options.logger.warn('lost the connection to RabbitMQ; reconnecting', { url: this.options.safeUrl, error: err })
    this.#scheduleReconnect()
  }

  // Background loop: never throws, reports through the logger, runs until close().
  #scheduleReconnect(): void {
    if (this.#closing) return
    const { initialMs, maxMs } = this.options.reconnect
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt++, 30))
    const delay = base / 2 + (Math.random() * base) / 2 // jitter, so restarted services do not reconnect in lockstep
    this.#timer = setTimeout(() => {
      this.#open().then(
        () => this.options.logger.info('reconnected to RabbitMQ', { url: this.options.safeUrl }),
        (err: unknown) => {
          if (this.#closing) return
          this.options.logger.warn('reconnecting to RabbitMQ failed; trying again', { url: this.options.safeUrl, attempt: this.#attempt, error: err })
          this.#scheduleReconnect()
        },
      )
    }, delay)
  }

  async #withChannel<T>(operation: string, fn: (ch: Channel) => Promise<T>): Promise<T> {
    this.#assertOpen(operation)
    const conn = this.#conn
    if (!conn) throw this.#notConnected(operation)
    const ch = await conn.createChannel()
    ch.on('error', () => {}) // the rejected operation carries the error
    try {
      return await fn(ch)
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      throw new TransportError(`${operation}() failed on RabbitMQ at ${this.options.safeUrl}: ${reason}`, { url: this.options.safeUrl }, { cause: err })
    } finally {
      await ch.close().catch(() => {})
    }
  }

  #assertOpen(operation: string): void {
    if (this.#closing) throw new TransportError(`${operation}() after close() on the rabbitmq transport; create a new one with rabbitmq()`, { operation })
  }

  #notConnected(operation: string): TransportError {
    const state = this.#reconnecting ? 'the connection was lost and is being re-established' : 'connect() has not succeeded yet'
    return new TransportError(`${operation}(): not connected to RabbitMQ at ${this.options.safeUrl} (${state}); try again later`, { url: this.options.safeUrl, operation })
  }
}

/** The error of a failed queue declaration, with what to do; a classic/quorum mismatch gets its own. */
export function declareError(queue: string, queueType: 'classic' | 'quorum', err: unknown): TransportError {
  const reason = err instanceof Error ? err.message : String(err)
  let hint = 'check that RabbitMQ is up and this user may declare queues, then call consume() again'
  if (/x-queue-type/.test(reason)) {
    const existing = queueType === 'quorum' ? 'classic' : 'quorum'
    hint =
      `a ${existing} queue of that name exists, and rabbitmq({ queueType: '${queueType}' }) declares ${queueType} queues; ` +
      `RabbitMQ cannot change a queue's type. Either keep queueType: '${existing}', or move the queue: stop the consumers, ` +
      `move its messages out (a shovel), delete it and its .retry.* and dead_letter_ queues, consume again, and move the messages back ` +
      `(README, "Transports and clusters")`
  } else if (/PRECONDITION_FAILED|inequivalent/.test(reason)) {
    hint = 'a queue of that name exists with other arguments: drain and delete it, or use another queue name'
  }
  return new TransportError(`cannot consume queue '${queue}' (${reason}); ${hint}`, { queue, queueType }, { cause: err })
}

/** The error of a failed first connect, with what to check. */
function connectError(safeUrl: string, err: unknown): TransportError {
  const e = err as { code?: string; message?: string }
  const reason = e.code ?? e.message ?? String(err)
  let hint = 'is the broker running? Set AMQP_URL or rabbitmq({ url })'
  if (/ACCESS.REFUSED|403/.test(e.message ?? '')) hint = 'check the user name and password in AMQP_URL or rabbitmq({ url })'
  else if (/NOT.ALLOWED|530|vhost/i.test(e.message ?? '')) hint = 'does the vhost exist, and may this user use it?'
  return new TransportError(`cannot connect to RabbitMQ at ${safeUrl} (${reason}); ${hint}`, { url: safeUrl }, { cause: err })
}
